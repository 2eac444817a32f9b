"""Metrics of a reward model's probabilities: step AUC, calibration, first-error F1.

The **evaluate** stage of load -> format -> train -> score -> evaluate -> plot. Every
function here reads probabilities (from :mod:`prm_lib.scoring`, or a baseline of
:mod:`prm_lib.baselines`) and labels (from :mod:`prm_lib.items`); none runs a model.

* :func:`step_auc`: ROC AUC of P(-1) for "rated -1 vs not", with a bootstrap over
  problems; :func:`within_problem_auc`: how well scores rank the samples of one problem.
* :func:`calibration_table`: reliability of P(-1) per bin.
* :func:`predict_first_error`, :func:`best_threshold`, :func:`first_error_metrics`:
  ProcessBench-style first-error detection. P(bad) = 1 - P(correct) of
  :func:`prm_lib.reward_model.step_correct_probability`, the same P(correct) the solution
  score multiplies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .reward_model import step_correct_probability

__all__ = [
    "AUCResult",
    "step_auc",
    "within_problem_auc",
    "solution_auc",
    "labeled_step_auc",
    "grouped_auc",
    "calibration_table",
    "predict_first_error",
    "first_error_metrics",
    "best_threshold",
]


# --------------------------------------------------------------------------- AUC


@dataclass(frozen=True)
class AUCResult:
    """ROC AUC of P(-1) for "rated -1 vs not", with a bootstrap confidence interval.

    Attributes:
        auc: the point estimate (sklearn's ``roc_auc_score``; ties count one half).
        ci_low, ci_high: percentile interval at ``level`` over bootstrap resamples of
            the groups (problems); NaN when no resample has both classes.
        n_positive: items rated -1.
        n_total: items.
        n_groups: clusters resampled (problems).
        n_boot: resamples used (ones without both classes are dropped).
        level: the interval's coverage, e.g. 0.95.
    """

    auc: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_total: int
    n_groups: int
    n_boot: int
    level: float

    def __str__(self) -> str:
        return (f"AUC {self.auc:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] "
                f"({self.n_positive:,} of {self.n_total:,} steps rated -1, "
                f"{self.n_groups:,} problems, {self.n_boot:,} resamples)")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _weighted_auc(inv: np.ndarray, y: np.ndarray, w: np.ndarray, n_unique: int) -> float:
    """AUC of items with multiplicities ``w`` (what a bootstrap resample is).

    ``inv`` ranks each item's score among the distinct scores; a negative below a positive
    counts 1, a tie 1/2, as in sklearn.
    """
    pos = np.bincount(inv, weights=w * y, minlength=n_unique)
    neg = np.bincount(inv, weights=w * (1 - y), minlength=n_unique)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return np.nan
    below = np.cumsum(neg) - neg
    return float(np.dot(pos, below + 0.5 * neg) / (n_pos * n_neg))


def step_auc(
    ratings: Sequence[int] | np.ndarray,
    p_negative: Sequence[float] | np.ndarray,
    groups: Sequence | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> AUCResult:
    """ROC AUC of ``p_negative`` for telling steps rated -1 from the rest (0 and +1).

    Args:
        ratings: ``[n]`` ratings, -1/0/+1.
        p_negative: ``[n]`` predicted P(-1).
        groups: ``[n]`` cluster of each item, normally its problem
            (:func:`~prm_lib.items.item_problems`). Steps of one problem share a prefix
            and a labeler, so they are not independent; the bootstrap resamples whole
            problems.
            None: every item is its own cluster (too narrow an interval for PRM800K).
        n_boot: bootstrap resamples (0: no interval).
        seed: seeds the resampling.
        level: coverage of the percentile interval.

    Returns:
        an :class:`AUCResult`; AUC is NaN when only one class is present.
    """
    from sklearn.metrics import roc_auc_score

    y = (np.asarray(ratings) == -1).astype(float)
    s = np.asarray(p_negative, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"ratings and p_negative must be 1-D of one length: {y.shape}, {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("p_negative has NaN or infinite values")
    n_pos = int(y.sum())
    if groups is None:
        codes = np.arange(len(y))
    else:
        if len(groups) != len(y):
            raise ValueError(f"{len(groups)} groups for {len(y)} items")
        codes = pd.factorize(pd.Series(list(groups), dtype=object))[0]
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if n_pos == 0 or n_pos == len(y):
        return AUCResult(np.nan, np.nan, np.nan, n_pos, len(y), n_groups, 0, level)
    auc = float(roc_auc_score(y, s))
    uniq, inv = np.unique(s, return_inverse=True)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        # Drawing n_groups problems with replacement = a multinomial count per problem.
        mult = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups))
        boots.append(_weighted_auc(inv, y, mult[codes].astype(float), len(uniq)))
    boots = np.array(boots)
    boots = boots[np.isfinite(boots)]
    if len(boots):
        lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    else:
        lo = hi = np.nan
    return AUCResult(auc, float(lo), float(hi), n_pos, len(y), n_groups, len(boots), level)



def within_problem_auc(pool: pd.DataFrame, scores: np.ndarray,
                       column: str = "is_correct") -> float:
    """How well ``scores`` rank the samples of the **same** problem: the ROC AUC for
    ``column`` (default: final answer right) within each problem, averaged over the
    problems that have samples of both kinds (NaN if none has). 0.5 is chance; this is
    the skill best-of-N needs, unlike an AUC over the whole pool, which a score also
    earns by telling easy problems from hard ones.

    Args:
        pool: one row per sample with ``problem_index`` and ``column``.
        scores: ``[len(pool)]`` one score per sample, in row order.
    """
    from sklearn.metrics import roc_auc_score

    aucs = []
    frame = pd.DataFrame({"p": pool["problem_index"].to_numpy(),
                          "y": pool[column].astype(bool).to_numpy(),
                          "s": np.asarray(scores, float)})
    for _, g in frame.groupby("p", sort=True):
        if 0 < g["y"].sum() < len(g) and g["s"].notna().all():
            aucs.append(roc_auc_score(g["y"], g["s"]))
    return float(np.mean(aucs)) if aucs else float("nan")


def solution_auc(labels: Sequence[bool] | np.ndarray,
                 scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC of ``scores`` for the boolean ``labels`` (e.g. final answer correct), over
    the solutions whose score is not NaN; NaN when those hold only one class. Pooled over
    problems: see :func:`within_problem_auc` for the ranking best-of-N needs."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, bool)
    s = np.asarray(scores, float)
    ok = np.isfinite(s)
    if len(set(y[ok].tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y[ok], s[ok]))


def _pair_counts(y_bad: np.ndarray, s_bad: np.ndarray) -> tuple[float, int]:
    """Concordant pairs (a bad step scored more suspicious than a good one, ties half) and
    all bad-good pairs."""
    from scipy.stats import rankdata

    n_bad = int(y_bad.sum())
    n_good = len(y_bad) - n_bad
    if not n_bad or not n_good:
        return 0.0, 0
    ranks = rankdata(s_bad)
    return float(ranks[y_bad].sum() - n_bad * (n_bad + 1) / 2), n_bad * n_good


def grouped_auc(bad: Sequence[bool] | np.ndarray, suspicion: Sequence[float] | np.ndarray,
                groups: Sequence, clusters: Sequence | None = None, n_boot: int = 0,
                level: float = 0.95, seed: int = 0) -> dict:
    """ROC AUC counted only over pairs of a bad and another step **of the same group**
    (ties count half): with groups of steps that share their problem and everything
    before them, only the steps' own content differs inside a group, so a scorer cannot
    earn it by knowing where errors tend to happen (the position prior reads exactly 0.5).

    Args:
        bad, suspicion, groups: one entry per step (NaN suspicions are left out).
        clusters: per step, the unit a bootstrap resamples (e.g. the problem: groups of
            one problem are not independent); default: the groups themselves.
        n_boot: bootstrap resamples of the clusters, with replacement (0: no interval).
        level, seed: the interval's level and the resampling's seed.

    Returns ``{"auc", "pairs", "groups", "group_steps"}`` (``groups``: those holding
    both a bad and another step, ``group_steps`` their steps; ``auc`` NaN when there is
    none), plus ``ci_low``, ``ci_high`` (percentile interval) and ``clusters`` when
    ``n_boot`` > 0.
    """
    y, s = np.asarray(bad, bool), np.asarray(suspicion, float)
    keys = list(groups)
    cl = keys if clusters is None else list(clusters)
    if not len(keys) == len(cl) == len(y) == len(s):
        raise ValueError(f"{len(y)} labels, {len(s)} suspicions, {len(keys)} groups and "
                         f"{len(cl)} clusters: one of each per step")
    frame = pd.DataFrame({"key": keys, "cluster": cl, "y": y, "s": s})[np.isfinite(s)]
    per_cluster: dict = {}
    concordant, pairs, n_groups, group_steps = 0.0, 0, 0, 0
    for _, g in frame.groupby("key", sort=False):
        c, n = _pair_counts(g["y"].to_numpy(), g["s"].to_numpy())
        if n:
            concordant, pairs = concordant + c, pairs + n
            n_groups, group_steps = n_groups + 1, group_steps + len(g)
            a = per_cluster.setdefault(g["cluster"].iloc[0], [0.0, 0])
            a[0], a[1] = a[0] + c, a[1] + n
    out = {"auc": concordant / pairs if pairs else float("nan"), "pairs": pairs,
           "groups": n_groups, "group_steps": group_steps}
    if n_boot > 0:
        cn = np.array(list(per_cluster.values()), float).reshape(-1, 2)
        lo = hi = float("nan")
        if len(cn):
            rng = np.random.default_rng(seed)
            draws = rng.integers(0, len(cn), size=(n_boot, len(cn)))
            c_b, n_b = cn[draws, 0].sum(1), cn[draws, 1].sum(1)
            boots = c_b[n_b > 0] / n_b[n_b > 0]
            tail = 100 * (1 - level) / 2
            lo, hi = (float(v) for v in np.percentile(boots, [tail, 100 - tail]))
        out |= {"ci_low": lo, "ci_high": hi, "clusters": len(cn)}
    return out


def labeled_step_auc(pool: pd.DataFrame, step_probs: Sequence[np.ndarray],
                     neutral: str = "positive") -> dict:
    """How well step verdicts separate bad steps from the rest, pooled and among steps
    that share their problem and everything before them.

    The labeled steps of a sample are those a process label covers: up to and including
    its first bad step (all of them when it has none). A step is *bad* when the checker
    rates it -1. The suspicion of a step is 1 - P(step is correct) (``neutral`` as in
    :func:`~prm_lib.reward_model.step_correct_probability`).

    * ``pooled``: the ROC AUC over every labeled step of the pool. A scorer earns it also by
      knowing *where* errors tend to happen (late steps, hard operations).
    * ``same_prefix``: the same AUC counted only over pairs of steps of the same problem
      after the same earlier steps, so that only the step's own content differs: the
      measure of verification.

    Args:
        pool: sample rows with ``problem_index``, ``steps``, ``ratings``, ``first_error``.
        step_probs: one array ``[n_steps, 3]`` (bad, neutral, good) per row, in row order
            (a two-label ORM array ``[n_steps, 2]`` is read as (wrong, correct)).

    Returns:
        ``{"pooled", "same_prefix", "steps", "bad_steps", "groups", "group_steps"}``,
        ``groups`` counting the prefixes with both a bad and another step.
    """
    from sklearn.metrics import roc_auc_score

    y, s, keys = [], [], []
    for idx, steps, ratings, first, probs in zip(pool["problem_index"], pool["steps"],
                                                 pool["ratings"], pool["first_error"],
                                                 step_probs):
        probs = np.asarray(probs, dtype=float)
        if not len(steps) or probs.ndim != 2 or not len(probs):
            continue
        p_ok = (probs[:, 1] if probs.shape[1] == 2
                else step_correct_probability(probs, neutral))
        last = len(steps) - 1 if first < 0 else int(first)
        for i in range(min(last + 1, len(p_ok))):
            if np.isnan(p_ok[i]):
                continue
            y.append(int(ratings[i]) == -1)
            s.append(1.0 - p_ok[i])
            keys.append((int(idx), tuple(steps[:i])))
    y, s = np.array(y, bool), np.array(s, float)
    pooled = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    same = grouped_auc(y, s, keys)
    return {"pooled": pooled, "same_prefix": same["auc"], "steps": int(len(y)),
            "bad_steps": int(y.sum()), "groups": same["groups"],
            "group_steps": same["group_steps"]}


# --------------------------------------------------------------------------- calibration


def calibration_table(
    ratings: Sequence[int] | np.ndarray,
    p_negative: Sequence[float] | np.ndarray,
    n_bins: int = 10,
) -> pd.DataFrame:
    """Reliability of P(-1): per equal-width bin, mean prediction against observed rate.

    Args:
        ratings: ``[n]`` ratings, -1/0/+1.
        p_negative: ``[n]`` predicted P(-1), in [0, 1].
        n_bins: equal-width bins on [0, 1] (the last one includes 1.0).

    Returns:
        one row per bin: ``bin_low``, ``bin_high``, ``n`` (items), ``mean_predicted``,
        ``observed`` (share rated -1), ``ci_low`` / ``ci_high`` (95% Wilson interval of
        ``observed``); NaN in empty bins. ``attrs["ece"]`` is the expected calibration
        error (count-weighted mean of ``|observed - mean_predicted|``) and
        ``attrs["n_total"]`` the number of items.
    """
    y = (np.asarray(ratings) == -1).astype(float)
    s = np.asarray(p_negative, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"ratings and p_negative differ in shape: {y.shape}, {s.shape}")
    if len(s) and (s.min() < 0 or s.max() > 1):
        raise ValueError("p_negative must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(b, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(b, weights=s, minlength=n_bins) / n
        obs = np.bincount(b, weights=y, minlength=n_bins) / n
        z = 1.959963984540054
        centre = (obs + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(obs * (1 - obs) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    table = pd.DataFrame({
        "bin_low": edges[:-1], "bin_high": edges[1:], "n": n.astype(int),
        "mean_predicted": mean_pred, "observed": obs,
        "ci_low": centre - half, "ci_high": centre + half,
    })
    total = int(n.sum())
    filled = n > 0
    table.attrs["ece"] = (
        float(np.sum(n[filled] * np.abs(obs[filled] - mean_pred[filled])) / total)
        if total else np.nan
    )
    table.attrs["n_total"] = total
    return table



# --------------------------------------------------------------------------- first error


def _p_bad(probs: np.ndarray, neutral: str) -> np.ndarray:
    """P(bad) per step = 1 - P(correct) (neutral counted as ``neutral`` says)."""
    return 1.0 - step_correct_probability(probs, neutral)


def predict_first_error(
    step_probs: np.ndarray | Sequence[np.ndarray],
    threshold: float = 0.5,
    neutral: str = "positive",
) -> int | np.ndarray:
    """The first step whose P(bad) exceeds ``threshold``, else -1 ("no error").

    Args:
        step_probs: one array ``[n_steps, 3]`` (P(-1), P(0), P(+1)), or a list of them.
        threshold: a step is flagged when P(bad) > threshold (strictly). The paper's
            Figure 4 calls a step wrong at P(-1) > 0.2
            (:data:`~prm_lib.paper.PAPER_FIGURE_4_WRONG_STEP_THRESHOLD`); tune it with
            :func:`best_threshold` on training data, never on the test set.
        neutral: P(bad) = 1 - P(correct) of
            :func:`~prm_lib.reward_model.step_correct_probability`. ``"positive"``:
            1 - P(0) - P(+1), i.e. P(-1) (the paper's best rule counts neutral as
            correct); ``"negative"``: 1 - P(+1), i.e. P(-1) + P(0).

    Returns:
        an int for one array, an int array ``[n_solutions]`` for a list.
    """
    if isinstance(step_probs, np.ndarray) and step_probs.ndim == 2:
        flagged = np.flatnonzero(_p_bad(step_probs, neutral) > threshold)
        return int(flagged[0]) if len(flagged) else -1
    return np.array([predict_first_error(np.asarray(p, dtype=float).reshape(-1, 3),
                                         threshold, neutral) for p in step_probs], dtype=int)


def first_error_metrics(
    true_first_error: Sequence[int] | np.ndarray, predicted_first_error: Sequence[int] | np.ndarray
) -> dict:
    """ProcessBench's scores: exact first-error accuracy on erroneous solutions,
    "no error" accuracy on correct ones, and F1 = their harmonic mean.

    Args:
        true_first_error: ``[n]`` first error index, -1 for correct solutions.
        predicted_first_error: ``[n]`` predictions in the same encoding.

    Returns:
        ``{"acc_erroneous", "acc_correct", "f1"}`` as fractions in [0, 1] (NaN when a
        kind is absent) and ``{"n_erroneous", "n_correct"}``.
    """
    t = np.asarray(true_first_error, dtype=int)
    p = np.asarray(predicted_first_error, dtype=int)
    if t.shape != p.shape:
        raise ValueError(f"true and predicted differ in shape: {t.shape}, {p.shape}")
    err, cor = t >= 0, t < 0
    acc_e = float(np.mean(p[err] == t[err])) if err.any() else np.nan
    acc_c = float(np.mean(p[cor] == -1)) if cor.any() else np.nan
    f1 = 0.0 if acc_e + acc_c == 0 else 2 * acc_e * acc_c / (acc_e + acc_c)
    return {"acc_erroneous": acc_e, "acc_correct": acc_c, "f1": float(f1),
            "n_erroneous": int(err.sum()), "n_correct": int(cor.sum())}


def best_threshold(
    true_first_error: Sequence[int] | np.ndarray,
    step_probs: Sequence[np.ndarray],
    neutral: str = "positive",
) -> float:
    """The threshold for :func:`predict_first_error` with the highest F1 on these solutions.

    Call it on a **training** set and apply the result to the test set; a threshold
    tuned on the test set reports an optimistic F1.

    The search is exact: an erroneous solution with first error ``k`` is predicted right
    exactly for thresholds in ``[max P(bad) of steps before k, P(bad) of step k)``, a
    correct one for thresholds ``>= max P(bad)`` over its steps, so F1 is piecewise
    constant between these breakpoints. Of the best stretch (ties: the widest) the
    midpoint is returned, which leaves room on both sides for new data.

    Returns:
        a threshold in [0, 1].
    """
    t = np.asarray(true_first_error, dtype=int)
    if len(t) != len(step_probs):
        raise ValueError(f"{len(t)} labels for {len(step_probs)} solutions")
    lo_e, hi_e, m_c = [], [], []
    for k, probs in zip(t, step_probs):
        pb = _p_bad(np.asarray(probs, dtype=float).reshape(-1, 3), neutral)
        if k >= 0:
            lo_e.append(pb[:k].max() if k > 0 else -np.inf)
            hi_e.append(pb[k])
        else:
            m_c.append(pb.max() if len(pb) else -np.inf)
    lo_e, hi_e, m_c = np.array(lo_e), np.array(hi_e), np.sort(np.array(m_c))
    cuts = np.unique(np.clip(np.concatenate([[0.0, 1.0], lo_e, hi_e, m_c]), 0.0, 1.0))
    # F1 at threshold = each cut (constant until the next cut). An interval [lo, hi) with
    # lo < hi holds t iff lo <= t minus hi <= t; an empty one (lo >= hi) never does.
    ok = lo_e < hi_e
    if len(lo_e):
        inside = (np.searchsorted(np.sort(lo_e[ok]), cuts, side="right")
                  - np.searchsorted(np.sort(hi_e[ok]), cuts, side="right"))
        acc_e = inside / len(lo_e)
    else:
        acc_e = np.full(len(cuts), np.nan)
    acc_c = (np.searchsorted(m_c, cuts, side="right") / len(m_c)
             if len(m_c) else np.full(len(cuts), np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(acc_e + acc_c > 0, 2 * acc_e * acc_c / (acc_e + acc_c), 0.0)
    if not np.isfinite(f1).any():
        raise ValueError("best_threshold needs both erroneous and correct solutions")
    ends = np.append(cuts[1:], 1.0)
    width = ends - cuts
    best = np.flatnonzero(f1 == np.nanmax(f1))
    j = best[np.argmax(width[best])]
    return float((cuts[j] + ends[j]) / 2) if width[j] > 0 else float(cuts[j])

