"""Step-level evaluation of a PRM on PRM800K labels, with the baselines a PRM must beat.

Nothing here knows about models. A PRM enters only as a **score function**::

    score_fn(problems: list[str], steps: list[list[str]]) -> list[np.ndarray]

which returns, for each solution, an array ``[n_steps, 3]`` of (P(negative), P(neutral),
P(positive)) for every step, the columns in the order of :data:`prm_lib.schema.RATINGS`
(-1, 0, +1). The paper's PRM gives all of them in one forward pass.

**Causal scoring.** Every function here assumes the scorer is causal: the probabilities
of step ``k`` depend only on the problem and steps ``0..k``. That is how the paper's PRM
reads a solution, and it is what lets one pass over a trajectory score all its steps.
It also lets any sequence that is a prefix of another share that one's pass
(:func:`scoring_sequences`).

The chapter's walk, top to bottom::

    items = step_items(test)                       # one item per rated candidate step
    probs = score_items(items, score_fn)           # [n_items, 3]
    step_auc(item_ratings(items), probs[:, 0], groups=item_problems(items))
    calibration_table(item_ratings(items), probs[:, 0])

    fe = first_error_sets(test)                    # ProcessBench-style solutions
    step_probs = score_steps(fe.problems, fe.steps, score_fn)
    t = best_threshold(train_fe.first_errors, train_step_probs)   # tuned on train only
    first_error_metrics(fe.first_errors, predict_first_error(step_probs, t))

The baselines (:func:`constant_baseline`, :func:`position_prior_baseline`) are score
functions too, so they run through exactly the same code; an untrained PRM is one more
``score_items(items, untrained_prm_score_fn)``.

**Phase 1 in particular.** Every rated trajectory step of phase 1 is +1 (the labeler
continued with a good step), so all -1 labels sit among the *alternatives*: candidates
rated at a position but not followed. The role of an item is therefore a consequence of
its label, and no PRM sees it; only the position prior's optional ``by_role`` variant uses
it, as a reference for how much the role alone gives away, never as a floor.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from collections.abc import Sequence as _Seq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .schema import RATINGS, LabeledSolution

__all__ = [
    "ScoreFn",
    "StepItem",
    "step_items",
    "item_ratings",
    "item_problems",
    "item_frame",
    "ScoringSequence",
    "scoring_sequences",
    "score_steps",
    "score_items",
    "reuse_scores",
    "AUCResult",
    "step_auc",
    "calibration_table",
    "FirstErrorSolution",
    "FirstErrorSet",
    "first_error_sets",
    "first_error_step_probs",
    "predict_first_error",
    "first_error_metrics",
    "best_threshold",
    "ConstantScorer",
    "constant_baseline",
    "constant_first_error",
    "PositionPrior",
    "position_prior_baseline",
]

#: ``score_fn(problems, steps) -> [array [n_steps, 3] of P(-1), P(0), P(+1)] per solution``.
ScoreFn = Callable[[list[str], list[list[str]]], list[np.ndarray]]

_ROLES = ("trajectory", "alternative")


# --------------------------------------------------------------------------- items


@dataclass(frozen=True)
class StepItem:
    """One rated candidate step with the context a PRM sees when scoring it.

    Attributes:
        solution_index: index of its solution in the list given to :func:`step_items`.
        position: 0-based step position (= ``len(prefix)``).
        prefix: the trajectory steps before it.
        text: the candidate step.
        rating: -1, 0 or +1 (unrated candidates are not items).
        role: ``"trajectory"`` (the solution continues with it) or ``"alternative"``
            (rated here, not followed).
        problem: the problem text.
    """

    solution_index: int
    position: int
    prefix: tuple[str, ...]
    text: str
    rating: int
    role: str
    problem: str

    @property
    def steps(self) -> tuple[str, ...]:
        """The sequence to score: ``prefix + (text,)``; the item is its last step."""
        return self.prefix + (self.text,)


def step_items(solutions: Iterable[LabeledSolution]) -> list[StepItem]:
    """One :class:`StepItem` per rated candidate, trajectory step or alternative.

    Items come solution by solution, position by position; at each position the
    trajectory step (if rated) first, then the alternatives in the order shown. A
    position after the trajectory stops has no prefix a PRM could read; the schema
    never produces one from the loaders, and any that does occur is left out with a
    warning counting its rated candidates.
    """
    items: list[StepItem] = []
    unreachable = 0
    for si, sol in enumerate(solutions):
        traj = tuple(sol.step_texts)
        for pos, step in enumerate(sol.steps):
            if pos > len(traj):
                unreachable += sum(c.rating is not None for c in step.completions)
                continue
            prefix = traj[:pos]
            cont = step.continuation
            if cont is not None and cont.rating is not None:
                items.append(StepItem(si, pos, prefix, cont.text, cont.rating, "trajectory",
                                      sol.problem))
            for alt in step.alternatives:
                if alt.rating is not None:
                    items.append(StepItem(si, pos, prefix, alt.text, alt.rating,
                                          "alternative", sol.problem))
    if unreachable:
        warnings.warn(f"left out {unreachable} rated candidate(s) at positions after the "
                      "trajectory stops (no prefix to score them with)", stacklevel=2)
    return items


def item_ratings(items: _Seq[StepItem]) -> np.ndarray:
    """The items' ratings, int array ``[n_items]`` of -1/0/+1."""
    return np.array([it.rating for it in items], dtype=int)


def item_problems(items: _Seq[StepItem]) -> list[str]:
    """The items' problems: the clusters for :func:`step_auc`'s bootstrap."""
    return [it.problem for it in items]


def item_frame(items: _Seq[StepItem], probs: np.ndarray | None = None) -> pd.DataFrame:
    """One row per item (solution_index, position, role, rating, n_chars, problem), plus
    ``p_negative``, ``p_neutral``, ``p_positive`` when ``probs [n_items, 3]`` is given."""
    frame = pd.DataFrame({
        "solution_index": [it.solution_index for it in items],
        "position": [it.position for it in items],
        "role": [it.role for it in items],
        "rating": item_ratings(items),
        "n_chars": [len(it.text) for it in items],
        "problem": item_problems(items),
    })
    if probs is not None:
        probs = _check_probs(probs, len(items))
        frame["p_negative"], frame["p_neutral"], frame["p_positive"] = probs.T
    return frame


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoringSequence:
    """One forward pass: a solution to score and which inputs read which of its steps.

    Attributes:
        problem: the problem text.
        steps: the steps to score, in order.
        item_indices_per_step: for each step, the indices of the inputs (items, for
            :func:`scoring_sequences`) whose probabilities are read at that step; an
            empty tuple where none is. Several inputs can share a step: identical
            sequences (the same candidate after the same prefix, e.g. a solution that
            appears twice in the file) are scored once.
    """

    problem: str
    steps: tuple[str, ...]
    item_indices_per_step: tuple[tuple[int, ...], ...]


def _plan(problems: _Seq[str], steps: _Seq[tuple[str, ...]]):
    """Distinct maximal sequences and, for each input, (sequence index, step index).

    An input whose steps are a prefix of a longer input's steps (same problem) is read
    from the longer one's pass; that is safe only for a causal scorer (module docstring).
    """
    by_problem: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        by_problem.setdefault(p, []).append(i)
    seqs: list[tuple[str, tuple[str, ...]]] = []
    where: list[tuple[int, int] | None] = [None] * len(problems)
    for problem, idxs in by_problem.items():
        distinct = dict.fromkeys(steps[i] for i in idxs if len(steps[i]))
        # Longest first, so every shorter sequence finds the pass that contains it.
        index: dict[tuple[str, ...], tuple[int, int]] = {}
        for s in sorted(distinct, key=len, reverse=True):
            if s in index:
                continue
            sid = len(seqs)
            seqs.append((problem, s))
            for k in range(len(s)):
                index.setdefault(s[: k + 1], (sid, k))
        for i in idxs:
            if len(steps[i]):
                where[i] = index[steps[i]]
    return seqs, where


def scoring_sequences(items: _Seq[StepItem]) -> list[ScoringSequence]:
    """The distinct forward passes that score every item, with each item's slot.

    A trajectory needs one pass for all its rated steps; an alternative needs its own
    (prefix + alternative); identical sequences, and sequences that are a prefix of
    another, share a pass (causal scorer assumed, see the module docstring). Every item
    appears in exactly one slot.
    """
    seqs, where = _plan([it.problem for it in items], [it.steps for it in items])
    slots = [[[] for _ in s] for _, s in seqs]
    for i, (sid, k) in enumerate(where):
        slots[sid][k].append(i)
    return [
        ScoringSequence(p, s, tuple(tuple(x) for x in sl)) for (p, s), sl in zip(seqs, slots)
    ]


def _check_step_scores(arr, n_steps: int, where: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=float)
    if arr.shape != (n_steps, 3):
        raise ValueError(
            f"score_fn returned shape {arr.shape} for {where} with {n_steps} steps; expected "
            f"({n_steps}, 3) = P(-1), P(0), P(+1) per step (a 2-class scorer can return "
            "[P(bad), 0, P(good)])"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
        raise ValueError(f"score_fn returned values outside [0, 1] or NaN for {where}")
    # Loose: half-precision softmax outputs sum to 1 only to about 1e-2.
    if not np.allclose(arr.sum(axis=1), 1.0, atol=2e-2):
        raise ValueError(f"score_fn's rows for {where} do not sum to 1 (probabilities of "
                         "the three ratings)")
    return arr


def score_steps(
    problems: _Seq[str],
    steps: _Seq[_Seq[str]],
    score_fn: ScoreFn,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Per-step probabilities for many solutions, sharing forward passes where possible.

    Args:
        problems: one problem text per solution.
        steps: one list of step texts per solution.
        score_fn: the scorer (module docstring); it is called with at most
            ``batch_size`` solutions at a time.
        batch_size: solutions per ``score_fn`` call.

    Returns:
        one float array ``[len(steps[i]), 3]`` of P(-1), P(0), P(+1) per solution. Each
        distinct solution is scored once, and a solution that is a prefix of another
        (same problem) is read from the longer one's pass (causal scorer assumed).

    Raises:
        ValueError: ``score_fn`` returned the wrong number of arrays, a wrong shape, or
            values that are not probabilities.
    """
    if len(problems) != len(steps):
        raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    steps = [tuple(s) for s in steps]
    seqs, where = _plan(list(problems), steps)
    # Similar lengths in a batch waste less padding in the scorer.
    order = sorted(range(len(seqs)), key=lambda j: -sum(len(t) for t in seqs[j][1]))
    scored: list[np.ndarray | None] = [None] * len(seqs)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        out = score_fn([seqs[j][0] for j in batch], [list(seqs[j][1]) for j in batch])
        if len(out) != len(batch):
            raise ValueError(f"score_fn returned {len(out)} arrays for {len(batch)} solutions")
        for j, arr in zip(batch, out):
            scored[j] = _check_step_scores(arr, len(seqs[j][1]), f"sequence {j}")
    return [
        np.zeros((0, 3)) if w is None else scored[w[0]][: w[1] + 1].copy() for w in where
    ]


def score_items(items: _Seq[StepItem], score_fn: ScoreFn, batch_size: int = 16) -> np.ndarray:
    """P(-1), P(0), P(+1) of every item, float array ``[n_items, 3]``.

    Each item is read at the last step of ``item.steps``; passes are shared as in
    :func:`scoring_sequences`. ``score_items(items, prm_score_fn)`` is all an untrained
    or trained PRM needs to be evaluated.
    """
    per_item = score_steps([it.problem for it in items], [it.steps for it in items],
                           score_fn, batch_size)
    return np.array([p[-1] for p in per_item], dtype=float).reshape(len(items), 3)


def reuse_scores(
    known_items: _Seq[StepItem], known_scores: np.ndarray,
    score_items_fn: Callable[[list[StepItem]], np.ndarray],
) -> Callable[[list[StepItem]], np.ndarray]:
    """A ``score_items_fn`` that looks items up among ones already scored and scores only
    the others with ``score_items_fn``.

    An item is found when its problem, prefix and step text are those of a known item
    (its rating and role do not matter: a causal PRM's verdict depends on the text
    only), e.g. to evaluate first-error detection (:func:`first_error_step_probs`) with
    the scores the step-level AUC already computed, instead of running the model again.

    Args:
        known_items, known_scores: items and their ``[n, 3]`` probabilities (NaN rows,
            for steps beyond the model's length limit, are reused as they are).
        score_items_fn: ``items -> [n, 3]`` for the items not found.
    """
    known_scores = _check_probs(known_scores, len(known_items))
    index = {(it.problem, tuple(it.prefix), it.text): i for i, it in enumerate(known_items)}

    def fn(items: list[StepItem]) -> np.ndarray:
        out = np.full((len(items), 3), np.nan)
        missing = []
        for j, it in enumerate(items):
            i = index.get((it.problem, tuple(it.prefix), it.text))
            if i is None:
                missing.append(j)
            else:
                out[j] = known_scores[i]
        if missing:
            out[missing] = _check_probs(score_items_fn([items[j] for j in missing]),
                                        len(missing))
        return out

    return fn


def _check_probs(probs, n: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    if probs.shape != (n, 3):
        raise ValueError(f"probs must have shape ({n}, 3), got {probs.shape}")
    return probs


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
    ratings: _Seq[int] | np.ndarray,
    p_negative: _Seq[float] | np.ndarray,
    groups: _Seq | None = None,
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
            (:func:`item_problems`). Steps of one problem share a prefix and a labeler,
            so they are not independent; the bootstrap resamples whole problems.
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


# --------------------------------------------------------------------------- calibration


def calibration_table(
    ratings: _Seq[int] | np.ndarray,
    p_negative: _Seq[float] | np.ndarray,
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


@dataclass(frozen=True)
class FirstErrorSolution:
    """A solution for first-error detection.

    Attributes:
        problem: the problem text.
        steps: the steps, in order.
        first_error: index of the first wrong step (always the last step here), or -1
            for a correct solution.
        solution_index: the labeled solution it was built from.
    """

    problem: str
    steps: tuple[str, ...]
    first_error: int
    solution_index: int


@dataclass
class FirstErrorSet:
    """Erroneous and correct solutions for ProcessBench-style first-error detection.

    Attributes:
        solutions: erroneous ones (``first_error >= 0``) and correct ones (-1).
        skipped: what was left out and why: reason -> count.
    """

    solutions: list[FirstErrorSolution]
    skipped: Counter = field(default_factory=Counter)

    @property
    def problems(self) -> list[str]:
        return [s.problem for s in self.solutions]

    @property
    def steps(self) -> list[tuple[str, ...]]:
        return [s.steps for s in self.solutions]

    @property
    def first_errors(self) -> np.ndarray:
        """int array ``[n_solutions]``: first error index, -1 for correct."""
        return np.array([s.first_error for s in self.solutions], dtype=int)

    @property
    def n_erroneous(self) -> int:
        return sum(s.first_error >= 0 for s in self.solutions)

    @property
    def n_correct(self) -> int:
        return sum(s.first_error < 0 for s in self.solutions)

    def summary(self) -> str:
        text = f"{self.n_erroneous:,} erroneous + {self.n_correct:,} correct solutions"
        if self.skipped:
            text += "; left out: " + "; ".join(
                f"{v:,} x {k}" for k, v in self.skipped.most_common())
        return text


def first_error_sets(
    solutions: Iterable[LabeledSolution], deduplicate: bool = True
) -> FirstErrorSet:
    """Build first-error detection solutions from labeled solutions (ProcessBench sense).

    * **Erroneous**: trajectory steps ``0..k-1`` followed by a step rated -1 at position
      ``k`` (a -1 alternative, or a -1 trajectory step as in phase 2); first error = k.
      The prefix must hold no error: every step rated +1 or 0 (neutral is not an error,
      as in ProcessBench) or written by the labeler (the instructions only allowed
      writing good steps). A -1 candidate behind a prefix with a -1 or an unrated step is
      left out and counted.
    * **Correct**: trajectories with ``finish_reason == "solution"`` whose steps are all
      +1, 0 or labeler-written.

    Erroneous solutions stop at their error. For a causal PRM this changes nothing:
    the steps after a first error cannot make a prediction right. A judge that reads the
    whole solution could exploit it (an erroneous solution often lacks a final
    ``# Answer`` step), so use this set for causal scorers only.

    Args:
        solutions: labeled solutions.
        deduplicate: drop a solution identical (problem, steps, first error) to one
            already kept; counted as ``"duplicate"``. PRM800K's phase-1 test file holds
            a few labeling sessions twice.
    """
    out: list[FirstErrorSolution] = []
    skipped: Counter = Counter()
    seen: set = set()

    def keep(fe: FirstErrorSolution) -> None:
        key = (fe.problem, fe.steps, fe.first_error)
        if deduplicate and key in seen:
            skipped["duplicate"] += 1
            return
        seen.add(key)
        out.append(fe)

    for si, sol in enumerate(solutions):
        traj = tuple(sol.step_texts)
        blocker = None  # why the prefix from here on is not error-free
        for pos, step in enumerate(sol.steps):
            if pos > len(traj):
                break
            cont = step.continuation
            bad = [c for c in step.alternatives if c.rating == -1]
            if cont is not None and cont.rating == -1:
                bad.insert(0, cont)
            for c in bad:
                if blocker is None:
                    keep(FirstErrorSolution(sol.problem, traj[:pos] + (c.text,), pos, si))
                else:
                    skipped[f"-1 step behind a prefix with {blocker}"] += 1
            if blocker is None and cont is not None:
                if cont.rating == -1:
                    blocker = "a -1 step"
                elif cont.rating is None and not step.is_human:
                    blocker = "an unrated step"
        if sol.finish_reason != "solution":
            skipped[f"trajectory not finished as a solution ({sol.finish_reason})"] += 1
        elif blocker is not None:
            skipped[f"finished trajectory with {blocker}"] += 1
        elif traj:
            keep(FirstErrorSolution(sol.problem, traj, -1, si))
    return FirstErrorSet(out, skipped)


def first_error_step_probs(
    fe: FirstErrorSet, score_items_fn: Callable[[list[StepItem]], np.ndarray]
) -> list[np.ndarray]:
    """Every step's probabilities for each solution of a first-error set.

    Each solution is turned into one item per step (its prefix, then the step) and
    scored with ``score_items_fn(items) -> [n_items, 3]``, e.g.
    ``lambda items: score_items(items, score_fn)`` or the shared-prefix scorer of
    :mod:`prm_lib.scoring`; identical sequences are scored once by either. The items'
    ``rating`` is a placeholder (0): only the probabilities are used.

    Returns:
        one array ``[n_steps, 3]`` per solution, in ``fe.solutions`` order.
    """
    items: list[StepItem] = []
    spans = []
    for sol in fe.solutions:
        start = len(items)
        for i, text in enumerate(sol.steps):
            items.append(StepItem(sol.solution_index, i, sol.steps[:i], text, 0,
                                  "first-error", sol.problem))
        spans.append((start, len(items)))
    probs = np.asarray(score_items_fn(items), dtype=float) if items else np.zeros((0, 3))
    return [probs[a:b] for a, b in spans]


def _p_bad(probs: np.ndarray, neutral: str) -> np.ndarray:
    if neutral == "positive":
        return probs[:, 0]
    if neutral == "negative":
        return probs[:, 0] + probs[:, 1]
    raise ValueError(f"neutral must be 'positive' or 'negative', not {neutral!r}")


def predict_first_error(
    step_probs: np.ndarray | _Seq[np.ndarray],
    threshold: float = 0.5,
    neutral: str = "positive",
) -> int | np.ndarray:
    """The first step whose P(bad) exceeds ``threshold``, else -1 ("no error").

    Args:
        step_probs: one array ``[n_steps, 3]`` (P(-1), P(0), P(+1)), or a list of them.
        threshold: a step is flagged when P(bad) > threshold (strictly). The paper's
            Figure 4 calls a step wrong at P(-1) > 0.2; tune it with
            :func:`best_threshold` on training data, never on the test set.
        neutral: ``"positive"``: P(bad) = P(-1) (the paper's best rule counts neutral
            as correct); ``"negative"``: P(bad) = P(-1) + P(0).

    Returns:
        an int for one array, an int array ``[n_solutions]`` for a list.
    """
    if isinstance(step_probs, np.ndarray) and step_probs.ndim == 2:
        flagged = np.flatnonzero(_p_bad(step_probs, neutral) > threshold)
        return int(flagged[0]) if len(flagged) else -1
    return np.array([predict_first_error(np.asarray(p, dtype=float).reshape(-1, 3),
                                         threshold, neutral) for p in step_probs], dtype=int)


def first_error_metrics(
    true_first_error: _Seq[int] | np.ndarray, predicted_first_error: _Seq[int] | np.ndarray
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
    true_first_error: _Seq[int] | np.ndarray,
    step_probs: _Seq[np.ndarray],
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


# --------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class ConstantScorer:
    """A score function giving every step the same (P(-1), P(0), P(+1))."""

    probs: tuple[float, float, float]

    def __call__(self, problems: list[str], steps: list[list[str]]) -> list[np.ndarray]:
        row = np.asarray(self.probs, dtype=float)
        return [np.tile(row, (len(s), 1)) for s in steps]


def constant_baseline(p_negative: float = 0.5, p_neutral: float = 0.0) -> ConstantScorer:
    """The no-information scorer: the same probabilities for every step.

    Its step AUC is exactly 0.5 (all scores tie). For first-error detection it predicts
    "error at step 0" everywhere when ``p_negative`` exceeds the threshold and "no
    error" everywhere otherwise; F1 is 0 either way (see :func:`constant_first_error`).
    """
    p_pos = 1.0 - p_negative - p_neutral
    if min(p_negative, p_neutral, p_pos) < 0:
        raise ValueError("p_negative + p_neutral must lie in [0, 1]")
    return ConstantScorer((p_negative, p_neutral, p_pos))


def constant_first_error(n_or_set: int | FirstErrorSet, predict: str = "no error") -> np.ndarray:
    """The two constant first-error predictions: ``"no error"`` (-1 everywhere) or
    ``"step 0"`` (0 everywhere), int array ``[n_solutions]``."""
    n = len(n_or_set.solutions) if isinstance(n_or_set, FirstErrorSet) else int(n_or_set)
    if predict not in ("no error", "step 0"):
        raise ValueError(f"predict must be 'no error' or 'step 0', not {predict!r}")
    return np.full(n, -1 if predict == "no error" else 0, dtype=int)


@dataclass(frozen=True)
class PositionPrior:
    """Rating frequencies as a function of step position, fitted on training items.

    Attributes:
        table: ``{role: array [n_positions, 3]}`` of P(-1), P(0), P(+1) for positions
            ``0..n_positions-1``; the last row serves every later position. The key is
            ``"any"`` unless the prior was fitted ``by_role``.
        counts: ``{role: int array [n_positions, 3]}``, the training counts behind it.
        by_role: whether the prior also conditions on the item's role.
    """

    table: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    by_role: bool = False

    def _rows(self, role: str, positions: np.ndarray) -> np.ndarray:
        t = self.table[role]
        return t[np.minimum(positions, len(t) - 1)]

    def __call__(self, problems: list[str], steps: list[list[str]]) -> list[np.ndarray]:
        """Score functions see no roles, so only the position-only prior is one."""
        if self.by_role:
            raise TypeError("a by_role prior needs each item's role, which a scorer never "
                            "sees; use predict_items(items)")
        return [self._rows("any", np.arange(len(s))) for s in steps]

    def predict_items(self, items: _Seq[StepItem]) -> np.ndarray:
        """P(-1), P(0), P(+1) per item, float array ``[n_items, 3]``."""
        pos = np.array([it.position for it in items], dtype=int)
        if not self.by_role:
            return self._rows("any", pos).reshape(len(items), 3)
        out = np.empty((len(items), 3))
        roles = np.array([it.role for it in items])
        for role in self.table:
            mask = roles == role
            out[mask] = self._rows(role, pos[mask])
        return out


def position_prior_baseline(
    train_items: _Seq[StepItem],
    by_role: bool = False,
    min_count: int = 100,
    smoothing: float = 20.0,
) -> PositionPrior:
    """Fit P(rating | step position) on training items.

    Positions are kept apart while at least ``min_count`` training items sit at that
    position or later; later positions share the last row. Each row is shrunk toward the
    overall rating frequencies with ``smoothing`` pseudo-items, so sparse positions do not
    swing.

    ``by_role=True`` also conditions on role (trajectory / alternative). In phase 1 that
    nearly reveals the label (every rated trajectory step is +1), and no PRM sees roles:
    report it as a measure of the leak, not as a floor.
    """
    if not len(train_items):
        raise ValueError("no training items to fit the position prior on")
    col = {r: j for j, r in enumerate(RATINGS)}
    roles = sorted({it.role for it in train_items}) if by_role else ["any"]
    overall = np.zeros(3)
    for it in train_items:
        overall[col[it.rating]] += 1
    overall /= overall.sum()
    table, counts = {}, {}
    for role in roles:
        sel = [it for it in train_items if not by_role or it.role == role]
        pos = np.array([it.position for it in sel], dtype=int)
        per_pos = np.bincount(pos)
        tail = np.cumsum(per_pos[::-1])[::-1]  # items at this position or later
        last = int(np.flatnonzero(tail >= min_count).max()) if (tail >= min_count).any() else 0
        c = np.zeros((last + 1, 3), dtype=int)
        for p, it in zip(np.minimum(pos, last), sel):
            c[p, col[it.rating]] += 1
        table[role] = (c + smoothing * overall) / (c.sum(axis=1, keepdims=True) + smoothing)
        counts[role] = c
    return PositionPrior(table, counts, by_role)
