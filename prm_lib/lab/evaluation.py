"""Best-of-N on the laboratory's test pool (chapters 4 and 7).

The laboratory's reward models for these chapters are the three that chapter 5 trains at
its largest data size (one per kind of supervision, on the same uniformly drawn training
samples, seed ``seed``), so they come from chapter 5's cache when it has run:

    runs = lab_reward_models(lab, seed=seed)          # {"prm", "orm", "orm_checker"}
    pool = scored_test_pool(lab, runs, oracle=True)   # + prm_score, orm_score, ...
    results = evaluate_methods(pool, score_columns(runs, oracle=True), ns=..., ...)

:func:`prm_lib.pools.evaluation_pool` falls back on this pool for chapter 4 when the paper's
released samples cannot be found. The rest are small computations the chapters print:
the Table 4 scoring rules, the neutral steps of the pool, examples for the step-score
widget (the statistics of best-of-N results are in :mod:`prm_lib.best_of_n`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..best_of_n import best_of_n
from ..paper import PAPER_TABLE_4
from ..reward_model import SCORING_RULES
from .experiments import SUPERVISIONS, LabRun, select_uniform, train_lab_rms
from .build import Laboratory

__all__ = [
    "RUN_NAMES",
    "LABELS",
    "powers_of_two",
    "lab_reward_models",
    "scored_test_pool",
    "score_columns",
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
    runs = train_lab_rms(lab, [(rows, s, seed) for s in supervisions], progress=progress)
    return {RUN_NAMES[s]: run for s, run in zip(supervisions, runs)}


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


# --------------------------------------------------------------------------- summaries


def scoring_rule_table(pool: pd.DataFrame, prm: LabRun, n: int | None = None,
                       n_trials: int = 200, seed: int = 0) -> pd.DataFrame:
    """Best-of-``n`` % solved under each of the paper's Table 4 scoring rules.

    Args:
        pool: the test pool the run scored (``lab.pools["test"]``, row order).
        prm: a PRM run (``kind == "prm"``).
        n: N (default: the largest pool of a problem).

    Returns:
        one row per rule of :data:`~prm_lib.reward_model.SCORING_RULES` (index: its name):
        ``aggregate``, ``neutral``, ``mean``, ``std`` (over trials) and ``paper``
        (:data:`~prm_lib.paper.PAPER_TABLE_4`, best-of-1860). Every rule sees the same
        shuffles. At N = the whole pool also ``difference``, each rule minus the paper's
        choice (product, neutral = correct) in points, with ``low``/``high``, its paired
        90% bootstrap interval over the test problems (2,000 resamples, seeded).
    """
    if prm.kind != "prm":
        raise ValueError("scoring rules apply to a PRM run (kind 'prm')")
    n = n or int(pool.groupby("problem").size().max())
    rows, per = [], {}
    for name, (rule, neutral) in SCORING_RULES.items():
        res = best_of_n(pool.assign(rule_score=prm.scores(rule, neutral)), "rule_score",
                        ns=[n], n_trials=n_trials, seed=seed)
        rows.append({"rule": name, "aggregate": rule, "neutral": neutral,
                     "mean": float(res.mean[0]), "std": float(res.std[0]),
                     "paper": PAPER_TABLE_4.get(name, np.nan)})
        per[name] = 100.0 * res.per_problem[:, 0]  # its mean over problems is `mean`
    table = pd.DataFrame(rows).set_index("rule")
    if n >= int(pool.groupby("problem").size().max()):
        base = per[next(iter(SCORING_RULES))]
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(base), (2000, len(base)))
        for name, v in per.items():
            boot = (v - base)[draws].mean(1)
            table.loc[name, ["difference", "low", "high"]] = [
                float((v - base).mean()), *np.percentile(boot, [5, 95])]
    return table


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
