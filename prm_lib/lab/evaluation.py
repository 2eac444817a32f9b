"""Best-of-N on the laboratory's test pool (chapters 4 and 7).

The laboratory's reward models for these chapters are the three that chapter 5 trains at
its largest data size (one per kind of supervision, on the same uniformly drawn training
samples, seed ``seed``), so they come from chapter 5's cache when it has run:

    runs = lab_reward_models(lab, seed=seed)          # {"prm", "orm", "orm_checker"}
    pool = scored_test_pool(lab, runs, oracle=True)   # + prm_score, orm_score, ...
    results = evaluate_methods(pool, score_columns(runs, oracle=True), ns=..., ...)

:func:`evaluation_pool` picks chapter 4's pool: the paper's released samples (Figure 3)
when they can be found, else the laboratory's test pool scored by its PRM and ORM. The
rest are small computations the chapters print: standard errors against trials, paired
differences between methods, the Table 4 scoring rules, the neutral steps of the pool,
examples for the step-score widget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..best_of_n import (PAPER_BEST_OF_1860, PAPER_N_TRIALS, PAPER_NS, PAPER_POOL_SIZE,
                         PAPER_SOURCE, BestOfNResult, best_of_n)
from ..reward_model import SCORING_RULES
from .config import LabScale, lab_scale
from .experiments import SUPERVISIONS, LabRun, select_uniform, train_lab_rm
from .pipeline import Laboratory

__all__ = [
    "RUN_NAMES",
    "LABELS",
    "PAPER_TABLE_4",
    "PAPER_TABLE_4_SOURCE",
    "powers_of_two",
    "lab_reward_models",
    "scored_test_pool",
    "score_columns",
    "EvaluationPool",
    "evaluation_pool",
    "figure3_note",
    "at_largest_n",
    "trial_standard_errors",
    "paired_difference",
    "describe_difference",
    "problem_bootstrap",
    "scoring_rule_table",
    "neutral_step_summary",
    "neutral_penalty",
    "widget_examples",
]

#: Short name of the reward model trained under each supervision: its score column is
#: ``<name>_score``.
RUN_NAMES: dict[str, str] = {
    "process": "prm",
    "outcome (final answer)": "orm",
    "outcome (checker)": "orm_checker",
}
#: Display names of the score columns' methods ("oracle": any correct sample among N).
LABELS: dict[str, str] = {
    "prm": "PRM (process)",
    "orm": "ORM (final answer)",
    "orm_checker": "ORM (checker)",
    "oracle": "any correct in the first N",
}
#: The paper's Table 4: % of MATH500 solved by best-of-1860 under each PRM scoring rule
#: (keys as in :data:`prm_lib.reward_model.SCORING_RULES`).
PAPER_TABLE_4: dict[str, float] = {
    "product, neutral = correct": 78.2,
    "min, neutral = correct": 77.6,
    "product, neutral = wrong": 77.4,
    "min, neutral = wrong": 77.8,
}
PAPER_TABLE_4_SOURCE = "Lightman et al. 2023, Table 4"


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to ``n``, ending with ``n`` itself when it is not a power of two
    (so the largest N is always the whole pool)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = [2**k for k in range(int(math.log2(n)) + 1)]
    return out if out[-1] == n else out + [n]


# --------------------------------------------------------------------------- the runs


def lab_reward_models(lab: Laboratory, seed: int = 0, size: int | None = None,
                      supervisions: Sequence[str] = SUPERVISIONS,
                      progress: bool = False) -> dict[str, LabRun]:
    """The laboratory's reward models, one per supervision, keyed by :data:`RUN_NAMES`.

    Each is trained on the same ``size`` uniformly drawn samples per training problem
    (default the largest of ``lab.scale.data_sizes``), drawn and trained with ``seed``:
    exactly chapter 5's runs at that size and seed, so they load from its cache.
    """
    size = size or lab.scale.data_sizes[-1]
    rows = select_uniform(lab.pools["train"], size, seed=seed)
    unknown = [s for s in supervisions if s not in RUN_NAMES]
    if unknown:
        raise ValueError(f"unknown supervision(s) {unknown}; choose from {SUPERVISIONS}")
    return {RUN_NAMES[s]: train_lab_rm(lab, rows, s, seed=seed, progress=progress)
            for s in supervisions}


def scored_test_pool(lab: Laboratory, runs: Mapping[str, LabRun], rule: str = "product",
                     neutral: str = "positive", oracle: bool = False) -> pd.DataFrame:
    """A copy of the test pool with one ``<name>_score`` column per run.

    A PRM's column is its solution score under ``rule``/``neutral``; an ORM's is its
    P(correct) (the rule does not apply). NaN for a sample without steps. ``oracle=True``
    adds ``oracle_score`` = ``is_correct`` (1.0/0.0): best-of-N by it solves a problem
    exactly when some sample among the first N has the right answer, the ceiling of every
    reward model.
    """
    pool = lab.pools["test"].copy()
    for name, run in runs.items():
        scores = run.scores(rule, neutral)
        if len(scores) != len(pool):
            raise ValueError(f"run {name!r} scored {len(scores)} samples, the test pool has "
                             f"{len(pool)}: was it trained on another laboratory?")
        pool[f"{name}_score"] = scores
    if oracle:
        pool["oracle_score"] = pool["is_correct"].astype(float)
    return pool


def score_columns(names: Sequence[str] | Mapping, oracle: bool = False) -> dict[str, str]:
    """Label -> score column for :func:`prm_lib.best_of_n.evaluate_methods`, e.g.
    ``{"PRM (process)": "prm_score", ...}`` (names of runs, or the runs dict itself)."""
    names = list(names) + (["oracle"] if oracle else [])
    return {LABELS.get(n, n): f"{n}_score" for n in names}


# --------------------------------------------------------------------------- chapter 4's pool


@dataclass
class EvaluationPool:
    """The sample pool chapter 4 evaluates, and how.

    Attributes:
        samples: the sample table with ``prm_score`` and ``orm_score``.
        source: ``"paper"`` (OpenAI's released samples) or ``"laboratory"``.
        ns: the N values; n_trials: trials; pad_to: the pool size.
        description: one line on what the pool is, for captions and notes.
        unavailable: why the paper's samples were not used (None when they were).
        lab, runs: the laboratory and its reward models (laboratory pool only).
    """

    samples: pd.DataFrame
    source: str
    ns: tuple[int, ...]
    n_trials: int
    pad_to: int
    description: str
    unavailable: str | None = None
    lab: Laboratory | None = None
    runs: dict[str, LabRun] | None = None

    @property
    def is_paper(self) -> bool:
        """True when this is the paper's pool, whose Figure 3 numbers may stand beside ours."""
        return self.source == "paper"

    @property
    def spread_ns(self) -> tuple[int, ...]:
        """A few N, from 1 to the pool size, at which to show the spread over trials."""
        if self.is_paper:
            return (1, 10, 100, PAPER_POOL_SIZE)
        middle = 2 ** (int(math.log2(self.pad_to)) // 2)
        return tuple(sorted({1, middle, self.pad_to}))


def evaluation_pool(scale: str | LabScale, data_dir=None, seed: int = 0,
                    download: bool | None = None, progress: bool = False) -> EvaluationPool:
    """The paper's scored samples if they can be had, else the laboratory's test pool.

    The paper's pool: :func:`prm_lib.samples.load_scored_samples` (a local copy in
    ``data_dir`` / ``$PRM_DATA_DIR`` / the cache, else a download; ``download=None``
    downloads except at scale ``"tiny"``, which must run offline), evaluated at the
    paper's N with :data:`~prm_lib.best_of_n.PAPER_N_TRIALS` trials (the tiny scale's
    ``trials`` at tiny). When it cannot be found
    (:class:`~prm_lib.sources.DataNotFoundError`), the laboratory of ``scale`` and
    ``seed``: its test pool scored by its PRM (``prm_score``, process supervision) and ORM
    (``orm_score``, final-answer supervision) of :func:`lab_reward_models`, N = powers of
    two up to the pool size, ``trials`` of the scale.
    """
    from ..samples import load_scored_samples
    from ..sources import DataNotFoundError
    from .pipeline import build_lab

    cfg = lab_scale(scale) if isinstance(scale, str) else scale
    if download is None:
        download = cfg.name != "tiny"
    try:
        samples = load_scored_samples(data_dir=data_dir, download=download, with_steps=False,
                                      progress=progress)
    except DataNotFoundError as exc:
        reason = str(exc)
    else:
        n_problems = samples["problem"].nunique()
        return EvaluationPool(
            samples, "paper", PAPER_NS,
            cfg.trials if cfg.name == "tiny" else PAPER_N_TRIALS, PAPER_POOL_SIZE,
            f"OpenAI's released samples ({n_problems} MATH500 problems, up to "
            f"{PAPER_POOL_SIZE:,} samples each) scored by the paper's large-scale PRM and ORM")
    lab = build_lab(cfg, seed=seed, progress=progress)
    runs = lab_reward_models(lab, seed=seed, supervisions=("process", "outcome (final answer)"),
                             progress=progress)
    samples = scored_test_pool(lab, runs)
    size = cfg.data_sizes[-1]
    return EvaluationPool(
        samples, "laboratory", tuple(powers_of_two(cfg.test_pool)), cfg.trials, cfg.test_pool,
        f"the laboratory's test pool ({cfg.test_problems} problems, {cfg.test_pool} samples "
        f"each) scored by its PRM and ORM, trained on {size} labeled samples per training "
        f"problem ({cfg.name} scale)", unavailable=reason, lab=lab, runs=runs)


# --------------------------------------------------------------------------- summaries


def figure3_note() -> str:
    """The paper's Figure 3 numbers as a line for a figure whose pool is not the paper's
    (so they are written, not drawn as points on the same axes)."""
    values = ", ".join(f"{k} {v:g}%" for k, v in PAPER_BEST_OF_1860.items())
    return (f"paper ({PAPER_SOURCE}), best-of-{PAPER_POOL_SIZE:,} on MATH500: {values}; "
            f"another generator and pool: compare the shape, not the level")


def at_largest_n(results: Sequence[BestOfNResult]) -> pd.DataFrame:
    """Mean and std of % solved at each result's largest N, one row per method
    (index: label; columns N, mean, std, n_trials)."""
    return pd.DataFrame(
        [{"label": r.label, "N": int(r.ns[-1]), "mean": float(r.mean[-1]),
          "std": float(r.std[-1]), "n_trials": r.n_trials} for r in results]
    ).set_index("label")


def trial_standard_errors(result: BestOfNResult, trials: Sequence[int] | None = None
                          ) -> pd.DataFrame:
    """Standard error of the mean % solved estimated from the first ``t`` trials.

    Args:
        trials: trial counts ``t`` (default: about ten from 2 to all, geometric).

    Returns:
        one row per (N, t): ``N``, ``trials``, ``mean`` (of the first t trials) and
        ``sem`` = std (ddof=1) / sqrt(t). It shrinks like 1/sqrt(t); it is 0 where every
        shuffle gives the same result (N = the pool size: nothing left to shuffle).
    """
    total = result.n_trials
    if total < 2:
        raise ValueError("a standard error needs at least 2 trials")
    if trials is None:
        trials = np.unique(np.geomspace(2, total, num=min(10, total - 1)).round().astype(int))
    rows = []
    for t in trials:
        if not 2 <= t <= total:
            raise ValueError(f"trial counts must be between 2 and {total}, got {t}")
        part = result.solved[:t]
        sem = part.std(axis=0, ddof=1) / math.sqrt(t)
        for n, m, s in zip(result.ns, part.mean(axis=0), sem):
            rows.append({"N": int(n), "trials": int(t), "mean": float(m), "sem": float(s)})
    return pd.DataFrame(rows)


def paired_difference(a: BestOfNResult, b: BestOfNResult) -> pd.DataFrame:
    """``a`` minus ``b`` in % solved per N, trial by trial.

    Both must come from the same shuffles (same ``seed`` and table, as
    :func:`~prm_lib.best_of_n.evaluate_methods` gives), so trial t of each saw the same
    samples and the difference is paired.

    Returns:
        one row per N: ``N``, ``difference`` (mean over trials), ``std`` (over trials),
        ``a_ahead`` / ``b_ahead``: share of trials in which each solved strictly more.
    """
    if a.solved.shape != b.solved.shape or not np.array_equal(a.ns, b.ns):
        raise ValueError("the two results need the same N values and number of trials")
    if a.seed is None or a.seed != b.seed:
        raise ValueError("the two results must come from the same shuffles (same seed)")
    d = a.solved - b.solved
    return pd.DataFrame({"N": a.ns.astype(int), "difference": d.mean(axis=0),
                         "std": d.std(axis=0), "a_ahead": (d > 0).mean(axis=0),
                         "b_ahead": (d < 0).mean(axis=0)})


def describe_difference(a: BestOfNResult, b: BestOfNResult) -> str:
    """One sentence on :func:`paired_difference` of ``a`` and ``b``: the difference at the
    largest N, how often each was ahead there, and at how many N each was ahead."""
    d = paired_difference(a, b)
    last = d.iloc[-1]
    ahead = int((d["difference"] > 1e-9).sum())
    behind = int((d["difference"] < -1e-9).sum())
    return (f"{a.label} minus {b.label}: {last['difference']:+.1f} points at "
            f"N={int(last['N'])} (more solved in {last['a_ahead']:.0%} of trials, fewer in "
            f"{last['b_ahead']:.0%}); {a.label} is ahead at {ahead} of {len(d)} values of N, "
            f"behind at {behind}, level at {len(d) - ahead - behind}")


def problem_bootstrap(a: BestOfNResult, b: BestOfNResult, n_boot: int = 2000,
                      level: float = 0.9, seed: int = 0) -> dict:
    """How much ``a`` minus ``b`` at the largest N depends on which problems were drawn:
    the problems are resampled with replacement (the trials' spread says nothing about
    that, and at N = the pool size it is zero).

    Returns ``{"N", "difference", "low", "high", "level", "n_problems"}`` in points of %
    solved; ``low``/``high`` bound the central ``level`` share of the bootstrap.
    """
    if not a.problems.equals(b.problems) or not np.array_equal(a.ns, b.ns):
        raise ValueError("the two results need the same problems and N values")
    d = 100.0 * (a.per_problem[:, -1] - b.per_problem[:, -1])
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return {"N": int(a.ns[-1]), "difference": float(d.mean()), "low": float(lo),
            "high": float(hi), "level": level, "n_problems": len(d)}


def scoring_rule_table(pool: pd.DataFrame, prm: LabRun, n: int | None = None,
                       n_trials: int = 200, seed: int = 0) -> pd.DataFrame:
    """Best-of-``n`` % solved under each of the paper's Table 4 scoring rules.

    Args:
        pool: the test pool the run scored (``lab.pools["test"]``, row order).
        prm: a PRM run (``kind == "prm"``).
        n: N (default: the largest pool of a problem).

    Returns:
        one row per rule of :data:`~prm_lib.reward_model.SCORING_RULES` (index: its name):
        ``aggregate``, ``neutral``, ``mean``, ``std`` (over trials) and ``paper`` (Table 4,
        best-of-1860). Every rule sees the same shuffles.
    """
    if prm.kind != "prm":
        raise ValueError("scoring rules apply to a PRM run (kind 'prm')")
    n = n or int(pool.groupby("problem").size().max())
    rows = []
    for name, (rule, neutral) in SCORING_RULES.items():
        res = best_of_n(pool.assign(rule_score=prm.scores(rule, neutral)), "rule_score",
                        ns=[n], n_trials=n_trials, seed=seed)
        rows.append({"rule": name, "aggregate": rule, "neutral": neutral,
                     "mean": float(res.mean[0]), "std": float(res.std[0]),
                     "paper": PAPER_TABLE_4.get(name, np.nan)})
    return pd.DataFrame(rows).set_index("rule")


def neutral_step_summary(pool: pd.DataFrame) -> pd.Series:
    """How many samples of a pool contain a neutral step (checker rating 0), and what
    those samples are: the ones that "neutral = wrong" scores differently."""
    neutral = pool["ratings"].map(lambda r: 0 in r).to_numpy(bool)
    right = pool["is_correct"].to_numpy(bool)
    clean = pool["process_correct"].to_numpy(bool)
    problems = pool.loc[neutral, "problem"].nunique()
    return pd.Series({
        "samples": len(pool),
        "samples with a neutral step": int(neutral.sum()),
        "... with the right answer": int((neutral & right).sum()),
        "... with no bad step (process correct)": int((neutral & clean).sum()),
        "problems with such a sample": int(problems),
        "problems": int(pool["problem"].nunique()),
    }, name="count")


def neutral_penalty(pool: pd.DataFrame, prm: LabRun) -> pd.Series:
    """Mean ratio of the PRM's product score with "neutral = wrong" to its score with
    "neutral = correct", for samples with a neutral step and samples without (NaN when a
    group is empty): how much the stricter rule costs a solution that restates."""
    neutral = pool["ratings"].map(lambda r: 0 in r).to_numpy(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = prm.scores("product", "negative") / prm.scores("product", "positive")
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)

    def mean(mask):
        vals = ratio[mask]
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan

    return pd.Series({"with a neutral step": mean(neutral), "without": mean(~neutral)},
                     name="score kept by 'neutral = wrong'")


def _describe(row) -> str:
    if row.is_correct and row.process_correct:
        return "right answer, right steps"
    if row.is_correct:
        return f"right answer, wrong steps (first error: step {row.first_error + 1})"
    if row.answer is None:
        return "no final answer"
    return "wrong answer"


def widget_examples(pool: pd.DataFrame, n: int = 6, seed: int = 0) -> list[tuple]:
    """About ``n`` samples of the pool for :func:`prm_lib.widgets.step_score_widget`, as
    ``(problem, steps, label)``: taken in turn from the right-answer-wrong-steps samples
    (the ones an ORM is fooled by), the fully correct ones and the wrong ones, with any
    group too small filled from the others. Samples without steps are skipped.
    """
    rows = pool[pool["steps"].map(len) > 0]
    rng = np.random.default_rng(seed)
    right = rows["is_correct"].to_numpy(bool)
    clean = rows["process_correct"].to_numpy(bool)
    groups = [rows[right & ~clean], rows[right & clean], rows[~right]]
    queues = [list(g.index[rng.permutation(len(g))]) for g in groups]
    picked = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return [(r.problem, list(r.steps), _describe(r))
            for r in rows.loc[picked].itertuples(index=False)]
