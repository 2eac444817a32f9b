"""The laboratory's experiments: reward models under three kinds of supervision, the data
curves of the paper's Figure 4, active learning (Section 4.2) and scoring rules.

Every reward model starts from the generator's weights (as the paper's reward models start
from the base model). The laboratory's ``rm_head`` says where it reads a step's verdict:
``"likelihood"`` (the default), from the fine-tuned generator's probability of the tokens
the step writes (:mod:`prm_lib.lab.readout`); ``"label_token"``, the paper's label token
after each step, trained with :func:`prm_lib.training.train_reward_model`, the same code
that trains the PRM800K models of chapters 2-3. The three kinds of supervision label the
**same samples**:

* ``"process"``: every step rated by the checker, up to the first bad step (the
  stand-in for the paper's PRM_large, which is exact here);
* ``"outcome (final answer)"``: one label per sample, is the final answer right;
* ``"outcome (checker)"``: one label per sample, is every step right (the paper's
  "outcome supervision from PRM_large").

A run is cached in the laboratory's folder by a hash of what it was trained on, with the
step probabilities it gives every sample of the test pool, so later chapters reuse it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..best_of_n import best_of_n
from ..formatting import CompleteSolution, FormatConfig, outcome_examples, prm_examples
from ..paper import PAPER_ACTIVE_LEARNING_WRONG_SHARE
from ..progress import quiet_loading
from ..reward_model import solution_scores
from ..schema import Completion, LabeledSolution, Step
from ..training import RewardRun, add_top_layers, train_reward_model
from .build import Laboratory
from .generator import PROMPT, one_thread
from .readout import SCORING_BATCH_SIZE

__all__ = [
    "SUPERVISIONS",
    "lab_format",
    "labeled_solutions",
    "supervision_examples",
    "LabRun",
    "train_lab_rm",
    "train_lab_rms",
    "one_thread",
    "rm_workers",
    "pool_step_probs",
    "distinct_samples",
    "solved_at_pool",
    "solved_per_problem",
    "select_uniform",
    "select_active",
    "active_learning_sizes",
    "data_curve",
    "fit_log_lines",
    "efficiency_ratio",
    "sample_shares",
    "reference_lines",
    "generator_loglik",
    "pick_profile",
    "readout_targets",
]

SUPERVISIONS: tuple[str, ...] = ("process", "outcome (final answer)", "outcome (checker)")


def lab_format(lab: Laboratory) -> FormatConfig:
    """How the laboratory's reward models read a solution (the generator's prompt)."""
    return FormatConfig(max_length=lab.scale.generator.max_length, alternatives=False,
                        prompt_template=PROMPT)


def labeled_solutions(rows: pd.DataFrame) -> list[LabeledSolution]:
    """Samples as :class:`~prm_lib.schema.LabeledSolution` with the checker's ratings."""
    out = []
    for r in rows.itertuples(index=False):
        steps = [Step((Completion(t, int(g)),), chosen=0) for t, g in zip(r.steps, r.ratings)]
        out.append(LabeledSolution(r.problem, steps, source=f"sample {r.problem_index}/{r.sample_id}"))
    return out


def supervision_examples(tokenizer, rows: pd.DataFrame, supervision: str, fmt: FormatConfig):
    """Training examples of one kind of supervision over the sample rows.

    Returns ``(examples, report)`` (see :mod:`prm_lib.formatting`).
    """
    if supervision == "process":
        return prm_examples(tokenizer, labeled_solutions(rows), fmt)
    if supervision not in SUPERVISIONS:
        raise ValueError(f"unknown supervision {supervision!r}; choose one of {SUPERVISIONS}")
    column = "is_correct" if supervision == "outcome (final answer)" else "process_correct"
    complete = [CompleteSolution(r.problem, tuple(r.steps), r.answer or "", bool(getattr(r, column)),
                                 f"sample {r.problem_index}/{r.sample_id}")
                for r in rows.itertuples(index=False) if len(r.steps)]
    return outcome_examples(tokenizer, complete, fmt)


#: The column each kind of supervision takes its labels from.
_LABEL_COLUMNS = {"process": "ratings", "outcome (final answer)": "is_correct",
                  "outcome (checker)": "process_correct"}


def _supervised_rows(rows: pd.DataFrame, supervision: str) -> list[list]:
    """What ``supervision`` trains on, row by row, sorted by (problem_index, sample_id):
    the row, its problem, steps and answer, and its label(s) (the ratings, or one
    outcome). A cache key built from it changes when a relabeled row does."""
    if supervision not in _LABEL_COLUMNS:
        raise ValueError(f"unknown supervision {supervision!r}; choose one of {SUPERVISIONS}")
    column = _LABEL_COLUMNS[supervision]
    label = (lambda v: [int(g) for g in v]) if column == "ratings" else bool
    out = [[int(i), int(s), p, list(steps), a, label(v)] for i, s, p, steps, a, v in zip(
        rows["problem_index"], rows["sample_id"], rows["problem"], rows["steps"],
        rows["answer"], rows[column])]
    return sorted(out, key=lambda r: (r[0], r[1]))


@dataclass
class LabRun(RewardRun):
    """A laboratory reward model (a :class:`~prm_lib.training.RewardRun`: ``path``,
    ``summary`` with ``kind``, examples, labels, steps, seconds; ``history``;
    ``reward_model``, loaded from ``path / "final"`` on first use) and its verdicts on the
    test pool.

    Attributes:
        supervision: one of :data:`SUPERVISIONS`.
        step_probs: label probabilities per step, one array [n_steps, n_labels] per test
            sample, in the test pool's row order.
    """

    supervision: str = "process"
    step_probs: list = field(default_factory=list, repr=False)

    @property
    def reward_model(self):
        """The model (a :class:`~prm_lib.lab.readout.LikelihoodReadout` when the run read
        its verdicts from token probabilities), loaded on first use."""
        if self._reward_model is None and (self.model_dir / "readout.json").is_file():
            from .readout import LikelihoodReadout

            self._reward_model = LikelihoodReadout.from_pretrained(self.model_dir)
        return RewardRun.reward_model.fget(self)

    def scores(self, rule: str = "product", neutral: str = "positive") -> np.ndarray:
        """One score per test sample: the PRM's solution score under ``rule``/``neutral``
        (the paper's Table 4), or the ORM's P(correct). NaN for a sample with no step."""
        return solution_scores(self.kind, self.step_probs, rule, neutral)

    def pool_scores(self, pool: pd.DataFrame, rule: str = "product",
                    neutral: str = "positive") -> np.ndarray:
        """Scores of any sample table (e.g. the training pool, for active learning),
        computed with the saved model; cached beside it by the pool's content (problems
        and steps, in row order) and the rule."""
        cache = self.path / _scores_file(pool, rule, neutral)
        if cache.is_file():
            return np.load(cache)
        with one_thread():  # as the run was scored: the same numbers on any machine
            probs = pool_step_probs(self.reward_model, pool)
        scores = solution_scores(self.kind, probs, rule, neutral)
        np.save(cache, scores)
        return scores


def _scores_file(pool: pd.DataFrame, rule: str = "product", neutral: str = "positive") -> str:
    """The file in a run's folder that caches its :meth:`LabRun.pool_scores` of ``pool``."""
    return f"scores_{_pool_digest(pool)}_{rule}_{neutral}.npy"


def _pool_digest(pool: pd.DataFrame) -> str:
    """A hash of what a reward model scores in ``pool``: each row's problem and steps, in
    row order (two pools of the same size are told apart by what they hold)."""
    rows = [[p, list(steps)] for p, steps in zip(pool["problem"], pool["steps"])]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def _save_probs(path: Path, probs: list[np.ndarray]) -> None:
    lengths = np.array([len(p) for p in probs])
    width = max((p.shape[1] for p in probs if p.ndim == 2), default=1)
    flat = np.concatenate([p.reshape(-1, width) for p in probs]) if lengths.sum() else \
        np.zeros((0, width))
    np.savez(path, lengths=lengths, flat=flat)


def _load_probs(path: Path) -> list[np.ndarray]:
    z = np.load(path)
    return np.split(z["flat"], np.cumsum(z["lengths"])[:-1])


def distinct_samples(pool: pd.DataFrame) -> tuple[list[int], np.ndarray]:
    """The rows of ``pool`` to read and where every row's answer is: ``(first, of)``,
    ``first`` the first row of each distinct (problem, steps) in row order, ``of[i]`` the
    position in ``first`` of row ``i``'s copy. A generator that has learned its table
    writes the same solution again and again (the laptop laboratory's test pool holds
    538 distinct samples among 3,200), and a model reads a copy as it reads the first."""
    first: list[int] = []
    seen: dict[tuple, int] = {}
    of = np.empty(len(pool), dtype=int)
    for i, key in enumerate(zip(pool["problem"], map(tuple, pool["steps"]))):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        of[i] = seen[key]
    return first, of


def pool_step_probs(rm, pool: pd.DataFrame,
                    batch_size: int = SCORING_BATCH_SIZE) -> list[np.ndarray]:
    """Label probabilities per step for every sample of ``pool`` (row order). Identical
    samples are read once (:func:`distinct_samples`): the same numbers as reading every
    row, 4 to 5 times as fast on the laptop laboratory's pools
    (``benchmarks/bench_lab_pools.py``)."""
    first, of = distinct_samples(pool)
    idx = [i for i in first if len(pool["steps"].iloc[i])]
    got = dict(zip(idx, rm.step_probabilities([pool["problem"].iloc[i] for i in idx],
                                              [pool["steps"].iloc[i] for i in idx],
                                              batch_size=batch_size)))
    empty = np.zeros((0, len(rm.labels)))
    return [got.get(first[j], empty) for j in of]


def _run_path(lab: Laboratory, rows: pd.DataFrame, supervision: str, seed: int,
              tag: str = "") -> Path:
    """The cache folder of a :func:`train_lab_rm` run: a hash of what it trains on, how,
    and the pool it is evaluated on."""
    scale = lab.scale
    # the pool the run is evaluated on is part of what it saves (its step probabilities)
    key = {"supervision": supervision, "rows": _supervised_rows(rows, supervision),
           "seed": seed, "rm": [scale.rm_steps_min, asdict(scale.rm)],
           "evaluated_on": _pool_digest(lab.pools["test"])}
    if scale.rm_new_layers:
        key["new_layers"] = scale.rm_new_layers
    if scale.rm_head != "label_token":
        key["head"] = scale.rm_head
    key = json.dumps(key)
    return lab.path / "rms" / (tag + hashlib.sha256(key.encode()).hexdigest()[:12])


def train_lab_rm(lab: Laboratory, rows: pd.DataFrame, supervision: str, seed: int = 0,
                 progress: bool = False, tag: str = "") -> LabRun:
    """Train a reward model from the generator's weights on ``rows`` (samples of the
    training pool) under ``supervision``, and score the test pool with it; cached.
    ``lab.scale.rm_head`` picks the reward model (see the module's docstring); with
    ``rm_new_layers`` a label-token model gets new layers on the frozen generator
    (:func:`~prm_lib.training.add_top_layers`).

    The training settings are the laboratory's ``rm``: the number of optimizer steps is
    ``rm.num_train_epochs`` passes over the examples, but at least ``rm_steps_min`` (small
    sets are repeated rather than barely trained). It trains and scores on one thread
    (:func:`one_thread`): the same numbers on any number of cores.
    """
    scale = lab.scale
    path = _run_path(lab, rows, supervision, seed, tag)
    if (path / "summary.json").is_file():
        history = path / "history.csv"
        return LabRun(path, json.loads((path / "summary.json").read_text()),
                      pd.read_csv(history) if history.is_file() else pd.DataFrame(),
                      cached=True, supervision=supervision,
                      step_probs=_load_probs(path / "test_probs.npz"))
    if scale.rm_head not in ("label_token", "likelihood"):
        raise ValueError(f"rm_head must be 'label_token' or 'likelihood', not {scale.rm_head!r}")
    with one_thread():
        if scale.rm_head == "likelihood":
            return _train_readout(lab, rows, supervision, seed, progress, path)
        return _train_label_token(lab, rows, supervision, seed, progress, path)


def _train_label_token(lab: Laboratory, rows: pd.DataFrame, supervision: str, seed: int,
                       progress: bool, path: Path) -> LabRun:
    """:func:`train_lab_rm` for ``rm_head="label_token"``: the paper's head, trained by
    :func:`~prm_lib.training.train_reward_model`."""
    import torch
    from transformers import LlamaForCausalLM

    scale = lab.scale
    kind = "prm" if supervision == "process" else "orm"
    fmt = lab_format(lab)
    examples, report = supervision_examples(lab.tokenizer, rows, supervision, fmt)
    rm = scale.rm
    steps = max(scale.rm_steps_min,
                math.ceil(rm.num_train_epochs * len(examples) / rm.per_device_train_batch_size))
    torch.manual_seed(seed)
    with quiet_loading():
        model = LlamaForCausalLM.from_pretrained(lab.path / "generator")
    fields = {}
    if scale.rm_new_layers:
        model = add_top_layers(model, scale.rm_new_layers, seed=seed)
        fields["train_top_layers"] = scale.rm_new_layers
    args = rm.args(path, max_steps=steps, seed=seed, disable_tqdm=not progress,
                   logging_steps=max(1, steps // scale.rm_logs_per_run), **fields)
    run = train_reward_model(model, lab.tokenizer, examples, args=args, format_config=fmt,
                             kind=kind)
    probs = pool_step_probs(run.reward_model, lab.pools["test"])
    summary = {"supervision": supervision, "kind": kind, "seed": seed,
               "samples": len(rows), "examples": len(examples),
               "labels": int(sum(len(e.labels) for e in examples)), "steps": steps,
               "seconds": round(run.summary["seconds"], 2),
               "format_counts": dict(report.counts)}
    _save_probs(path / "test_probs.npz", probs)
    run.history.to_csv(path / "history.csv", index=False)
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    return LabRun(path, summary, run.history, supervision=supervision, step_probs=probs,
                  _reward_model=run.reward_model)


def rm_workers(lab: Laboratory, jobs: int) -> int:
    """Processes :func:`train_lab_rms` uses for ``jobs`` runs: ``lab.scale.rm_workers``,
    or one per CPU core this process may use; never more than there are runs."""
    import os

    n = lab.scale.rm_workers
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(int(n or 1), jobs))


def _train_job(lab: Laboratory, rows: pd.DataFrame, supervision: str, seed: int,
               score_pool: pd.DataFrame | None = None) -> str:
    """One run of :func:`train_lab_rms` in a worker process (and its scores of
    ``score_pool``); the run is written to the laboratory's cache, where the parent reads
    it."""
    run = train_lab_rm(lab, rows, supervision, seed=seed)
    if score_pool is not None:
        run.pool_scores(score_pool)
    return str(run.path)


def train_lab_rms(lab: Laboratory, jobs: Sequence[tuple], progress: bool = True,
                  desc: str = "reward models",
                  score_pool: pd.DataFrame | None = None) -> list[LabRun]:
    """:func:`train_lab_rm` for every ``(rows, supervision, seed)`` in ``jobs``, in order.
    A job may carry a fourth element, a variant of ``lab`` to train that run with (another
    reward-model recipe: ``dataclasses.replace(lab, scale=lab.scale.with_(...))``).

    Every run trains on one thread (:func:`one_thread`), so runs not in the cache train
    side by side in :func:`rm_workers` processes, one per core: the numbers are those of
    the runs one after another, in less time (``benchmarks/bench_lab_workers.py``
    measures how much).

    ``score_pool``: a sample table every run also scores (:meth:`LabRun.pool_scores`,
    product rule) where it trained, so that ``run.pool_scores(score_pool)`` then reads a
    file (active learning's selectors score the whole training pool this way).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..progress import progress_bar

    labs = [job[3] if len(job) > 3 else lab for job in jobs]
    jobs = [tuple(job[:3]) for job in jobs]
    todo, seen = [], set()
    scores_file = None if score_pool is None else _scores_file(score_pool)
    scored = lambda path: scores_file is None or (path / scores_file).is_file()  # noqa: E731
    for i, job in enumerate(jobs):  # each run once, however often it is asked for
        path = _run_path(labs[i], *job)
        if path not in seen and not ((path / "summary.json").is_file() and scored(path)):
            todo.append(i)
        seen.add(path)
    trained: dict[int, LabRun] = {}
    workers = rm_workers(lab, len(todo))
    bar = progress_bar(total=len(jobs), desc=desc, enabled=progress)
    bar.update(len(jobs) - len(todo))  # read from the cache, or asked for twice
    if workers > 1:
        # the workers read the generator from the laboratory's folder, as every run does
        light = [dataclasses.replace(v, generator=None) for v in labs]
        # the largest runs first, so that the last to finish are short ones (each run's
        # numbers do not depend on when it trains)
        longest_first = sorted(todo, key=lambda i: -len(jobs[i][0]))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            futures = [ex.submit(_train_job, light[i], *jobs[i], score_pool)
                       for i in longest_first]
            for f in as_completed(futures):
                f.result()
                bar.update(1)
    else:
        for i in todo:
            trained[i] = train_lab_rm(labs[i], *jobs[i][:2], seed=jobs[i][2])
            if score_pool is not None:
                trained[i].pool_scores(score_pool)
            bar.update(1)
    bar.close()
    return [trained.get(i) or train_lab_rm(labs[i], rows, sup, seed=seed)
            for i, (rows, sup, seed) in enumerate(jobs)]


def readout_targets(rows: pd.DataFrame, supervision: str) -> list:
    """What a :class:`~prm_lib.lab.readout.LikelihoodReadout` trains on, per sample row:
    process, 1/0 per step (good or neutral / bad) up to and including the first bad
    step; outcome, one 1/0 (the final answer's, or the checker's verdict on every step)."""
    if supervision == "process":
        out = []
        for ratings in rows["ratings"]:
            r = [int(g) for g in ratings]
            n = r.index(-1) + 1 if -1 in r else len(r)
            out.append([int(g >= 0) for g in r[:n]])
        return out
    if supervision not in _LABEL_COLUMNS:
        raise ValueError(f"unknown supervision {supervision!r}; choose one of {SUPERVISIONS}")
    return [int(bool(v)) for v in rows[_LABEL_COLUMNS[supervision]]]


def _train_readout(lab: Laboratory, rows: pd.DataFrame, supervision: str, seed: int,
                   progress: bool, path: Path) -> LabRun:
    """:func:`train_lab_rm` for ``rm_head="likelihood"`` (see :mod:`prm_lib.lab.readout`)."""
    import torch
    from transformers import LlamaForCausalLM

    from .readout import train_readout

    scale, rm = lab.scale, lab.scale.rm
    n_samples = len(rows)
    rows = rows[rows["steps"].map(len) > 0]  # a sample without a step has nothing to read
    kind = "prm" if supervision == "process" else "orm"
    steps = max(scale.rm_steps_min,
                math.ceil(rm.num_train_epochs * len(rows) / rm.per_device_train_batch_size))
    torch.manual_seed(seed)
    with quiet_loading():
        model = LlamaForCausalLM.from_pretrained(lab.path / "generator")
    targets = readout_targets(rows, supervision)
    readout, history = train_readout(
        model, lab.tokenizer, list(rows["problem"]), [list(s) for s in rows["steps"]],
        targets, kind, max_steps=steps, learning_rate=rm.learning_rate,
        batch_size=rm.per_device_train_batch_size, warmup_ratio=rm.warmup_ratio, seed=seed,
        max_length=scale.generator.max_length,
        logging_steps=max(1, steps // scale.rm_logs_per_run), progress=progress)
    readout.save_pretrained(path / "final")
    probs = pool_step_probs(readout, lab.pools["test"])
    summary = {"supervision": supervision, "kind": kind, "head": "likelihood", "seed": seed,
               "samples": n_samples, "examples": len(rows),
               "labels": int(sum(len(t) if isinstance(t, list) else 1 for t in targets)),
               "steps": steps, "seconds": round(float(history["seconds"].iloc[-1]), 2),
               "alpha": readout.alpha.item(), "beta": readout.beta.item()}
    _save_probs(path / "test_probs.npz", probs)
    history.to_csv(path / "history.csv", index=False)
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    return LabRun(path, summary, history, supervision=supervision, step_probs=probs,
                  _reward_model=readout)


def solved_at_pool(lab: Laboratory, scores: np.ndarray, n: int | None = None,
                   n_trials: int | None = None, seed: int = 0) -> float:
    """% of test problems solved by best-of-``n`` (default: the whole test pool) under
    ``scores`` (one per test sample), with the book's best-of-N protocol."""
    pool = lab.pools["test"].assign(score=scores)
    n = n or lab.scale.test_pool
    res = best_of_n(pool, "score", ns=[n], n_trials=n_trials or lab.scale.trials, seed=seed)
    return float(res.mean[0])


def solved_per_problem(lab: Laboratory, scores: np.ndarray, n: int | None = None,
                       n_trials: int | None = None, seed: int = 0) -> np.ndarray:
    """Per test problem (in problem order), % of best-of-``n`` trials that solve it
    (default N: the whole test pool), with the book's best-of-N protocol: its mean over
    problems is exactly :func:`solved_at_pool` with the same arguments, and resampling its
    entries resamples problems (:func:`efficiency_ratio`)."""
    return top_pick_solved(lab.pools["test"], scores, n=n or lab.scale.test_pool,
                           n_trials=n_trials or lab.scale.trials, seed=seed)


def top_pick_solved(pool: pd.DataFrame, scores: np.ndarray, n: int | None = None,
                    n_trials: int = 200, seed: int = 0) -> np.ndarray:
    """:func:`solved_per_problem` for any sample table (default N: its largest problem
    pool): :attr:`~prm_lib.best_of_n.BestOfNResult.per_problem` in %, so samples without
    an answer and NaN scores are passed over and ties are broken as best-of-N breaks
    them."""
    n = n or int(pool.groupby("problem").size().max())
    res = best_of_n(pool.assign(_score=np.asarray(scores, float)), "_score", ns=[n],
                    n_trials=n_trials, seed=seed)
    return 100.0 * res.per_problem[:, 0]


def select_uniform(pool: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """``k`` samples per problem drawn uniformly at random (without replacement)."""
    rng = np.random.default_rng(seed)
    keep = pool.groupby("problem_index", sort=True)["sample_id"].transform(
        lambda s: rng.permutation(len(s)) < k)
    return pool[keep.to_numpy(bool)]


def select_active(pool: pd.DataFrame, selector_scores: np.ndarray, k: int,
                  wrong_fraction: float = PAPER_ACTIVE_LEARNING_WRONG_SHARE) -> pd.DataFrame:
    """The paper's active-learning selection: per problem, ``round(wrong_fraction * k)``
    of the most convincing wrong-answer samples (highest selector score among samples
    whose final answer is wrong) and the rest from the most convincing samples that
    remain (right or wrong answer). A problem with too few wrong-answer samples gets
    more of the remaining ones, so every problem still contributes ``k``.

    Args:
        selector_scores: the selector PRM's score of each pool row (row order).
    """
    df = pool.assign(_score=np.asarray(selector_scores, float)).reset_index(drop=True)
    n_wrong = int(round(wrong_fraction * k))
    picked = []
    for _, g in df.groupby("problem_index", sort=True):
        g = g.sort_values("_score", ascending=False, kind="stable")
        wrong = g[~g["is_correct"].astype(bool)].index[:n_wrong].tolist()
        rest = [i for i in g.index if i not in set(wrong)][: k - len(wrong)]
        picked.extend(wrong + rest)
    return df.loc[sorted(picked)].drop(columns="_score")


def active_learning_sizes(scale, margin: int = 5) -> tuple[int, ...]:
    """The data sizes of the active-learning comparison: those of ``scale.data_sizes``
    whose selection is at most ``1 / margin`` of the training pool (the paper chose 200
    of 1,000 samples per problem; a selection that takes most of the pool is the pool,
    whatever the selector thinks). A pool too small for two such sizes gets the first
    two sizes (a first look, as at the tiny scale)."""
    sizes = tuple(k for k in scale.data_sizes if margin * k <= scale.train_pool)
    return sizes if len(sizes) >= 2 else tuple(scale.data_sizes[:2])


def data_curve(lab: Laboratory, supervisions: Sequence[str] = SUPERVISIONS,
               sizes: Sequence[int] | None = None, seeds: int | None = None,
               selection: str = "uniform", selector_scores: dict | None = None,
               progress: bool = True, n: int | None = None) -> pd.DataFrame:
    """% solved by best-of-N (N = ``n``, default the test pool) against labeled samples
    per problem.

    One reward model per (supervision, size, seed); seed ``s`` also draws the uniform
    sample set. ``selection="active"`` takes the samples with :func:`select_active`
    from ``selector_scores[s]`` (scores of the training pool by the selector of seed s).

    With ``n`` below the test pool, each problem's entry is the share of the protocol's
    trials (random draws of ``n`` of its samples) that it solves: a fraction rather than
    one top pick's 0 or 1, so runs differ less by the luck of single picks.

    Returns one row per run: supervision, selection, size, seed, samples, solved (%),
    seconds, per_problem (:func:`solved_per_problem`, for intervals over problems).
    The runs train side by side (:func:`train_lab_rms`).
    """
    sizes = tuple(sizes or lab.scale.data_sizes)
    n_seeds = seeds or lab.scale.seeds
    pool = lab.pools["train"]
    if selection not in ("uniform", "active"):
        raise ValueError(f"selection must be 'uniform' or 'active', not {selection!r}")
    jobs = [(sup, k, s) for sup in supervisions for k in sizes for s in range(n_seeds)]
    chosen_sets = [select_uniform(pool, k, seed=s) if selection == "uniform"
                   else select_active(pool, selector_scores[s], k) for _, k, s in jobs]
    runs = train_lab_rms(lab, [(c, sup, s) for c, (sup, _, s) in zip(chosen_sets, jobs)],
                         progress=progress, desc=f"reward models ({selection})")
    rows = []
    for (sup, k, s), chosen, run in zip(jobs, chosen_sets, runs):
        per_problem = solved_per_problem(lab, run.scores(), n=n)
        rows.append({"supervision": sup, "selection": selection, "size": k, "seed": s,
                     "samples": len(chosen), "solved": float(per_problem.mean()),
                     "seconds": run.summary["seconds"], "per_problem": per_problem})
    return pd.DataFrame(rows)


def fit_log_lines(curve: pd.DataFrame, by: str = "supervision") -> pd.DataFrame:
    """Least-squares line ``solved = a + b * log2(size)`` per group, on every run.

    Returns columns ``by``, ``intercept``, ``slope`` (% per doubling of the data) and
    ``slope_se`` (its standard error).
    """
    out = []
    for name, g in curve.groupby(by, sort=False):
        x, y = np.log2(g["size"].to_numpy(float)), g["solved"].to_numpy(float)
        X = np.column_stack([np.ones_like(x), x])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ coef
        dof = max(1, len(y) - 2)
        cov = (resid @ resid / dof) * np.linalg.inv(X.T @ X)
        out.append({by: name, "intercept": coef[0], "slope": coef[1],
                    "slope_se": float(np.sqrt(cov[1, 1]))})
    return pd.DataFrame(out)


#: Slopes (% solved per doubling of the data) smaller than this in absolute value are
#: flat: :func:`efficiency_ratio` does not divide by them.
FLAT_SLOPE = 1e-9


def efficiency_ratio(curve: pd.DataFrame, better: str, baseline: str, by: str = "selection",
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """How much more data-efficient ``better`` is than ``baseline``: the ratio of the
    slopes of their best-fit lines against log data size (the paper's measure, about
    2.6 for active learning), with a bootstrap 90% interval.

    Each resample draws the runs of each size with replacement and, when ``curve`` has a
    ``per_problem`` column (:func:`data_curve`'s), the test problems too, the same
    problems for both curves (a paired comparison: another draw of test problems moves
    both lines). Without it, only the runs are resampled.

    Returns ``{"ratio", "low", "high", "slopes", "over"}`` (``over``: what was
    resampled). The ratio is NaN (no warning) when the baseline's slope is 0, e.g. when
    no run solves anything or every run solves the same share (a slope under
    :data:`FLAT_SLOPE` in absolute value counts as 0: a least-squares fit of a flat line
    returns rounding error, not 0, and dividing by it gave ratios of 1e14); resamples
    with a flat baseline are left out of the interval. The ratio only means "times as
    data-efficient" when both slopes are positive.
    """
    rng = np.random.default_rng(seed)
    by_problem = "per_problem" in curve.columns

    def parts(g):  # log2 sizes, and per run its per-problem results (or its % solved)
        x = np.log2(g["size"].to_numpy(float))
        if not by_problem:
            return x, g["solved"].to_numpy(float)[:, None]
        return x, np.stack(g["per_problem"].to_numpy())

    def slope(x, y):
        return np.polyfit(x, y, 1)[0]

    def runs(x):  # the runs of each size, drawn with replacement
        return np.concatenate([rng.choice(np.flatnonzero(x == v), size=(x == v).sum())
                               for v in np.unique(x)])

    def divide(a, b):
        return a / b if abs(b) > FLAT_SLOPE else float("nan")

    (xa, ya), (xb, yb) = parts(curve[curve[by] == better]), parts(curve[curve[by] == baseline])
    ratio = divide(slope(xa, ya.mean(1)), slope(xb, yb.mean(1)))
    boots = []
    for _ in range(n_boot):
        cols = rng.integers(0, ya.shape[1], ya.shape[1]) if by_problem else np.arange(1)
        ia, ib = runs(xa), runs(xb)
        boots.append(divide(slope(xa[ia], ya[ia][:, cols].mean(1)),
                            slope(xb[ib], yb[ib][:, cols].mean(1))))
    boots = np.array(boots)
    boots = boots[np.isfinite(boots)]
    lo, hi = np.percentile(boots, [5, 95]) if len(boots) else (np.nan, np.nan)
    return {"ratio": float(ratio), "low": float(lo), "high": float(hi),
            "slopes": {better: float(slope(xa, ya.mean(1))),
                       baseline: float(slope(xb, yb.mean(1)))},
            "over": "runs and test problems" if by_problem else "runs"}


def sample_shares(rows: pd.DataFrame) -> pd.Series:
    """What a set of samples holds, in % of its samples (a pool, or a set selected for
    labeling).

    Returns a Series indexed by: ``"final answer correct"``, ``"every step correct"``
    (the checker finds no bad step and an answer is given), ``"right answer, wrong
    steps"`` (the case that fools final-answer outcome labels), ``"wrong answer"``, ``"a
    bad step"`` (at least one step rated -1), ``"no answer"`` and ``"unfinished"`` (the
    generator hit its length limit). NaN for an empty table.
    """
    correct = rows["is_correct"].astype(bool)
    process = rows["process_correct"].astype(bool)
    shares = {
        "final answer correct": correct,
        "every step correct": process,
        "right answer, wrong steps": correct & ~process,
        "wrong answer": ~correct,
        "a bad step": rows["first_error"] >= 0,
        "no answer": rows["answer"].isna(),
        "unfinished": rows["finish_reason"] == "length",
    }
    return pd.Series({k: 100 * float(v.mean()) if len(rows) else float("nan")
                      for k, v in shares.items()}, name="% of samples")


def reference_lines(lab: Laboratory, seed: int = 0, n: int | None = None) -> dict[str, float]:
    """Reference levels of the test pool (% of test problems), to draw beside the curves
    of reward models that pick one sample of N (``n``, default the test pool).

    Returns ``{label: %}`` for: majority voting at N (the book's protocol,
    ``lab.scale.trials`` trials); the ceiling, problems with at least one sample whose
    final answer is correct among the N drawn (no reward model can do better); a random
    pick, the mean per-problem pass rate (what an uninformative reward model gets).
    """
    from ..best_of_n import majority_vote

    pool = lab.pools["test"]
    n = n or lab.scale.test_pool
    vote = majority_vote(pool, ns=[n], n_trials=lab.scale.trials, seed=seed)
    rate = pool.groupby("problem_index")["is_correct"].mean()
    if n >= lab.scale.test_pool:
        ceiling = 100 * float((rate > 0).mean())
    else:  # an oracle's best-of-N: the share of draws of N holding a right answer
        oracle = pool.assign(_oracle=pool["is_correct"].astype(float))
        ceiling = float(best_of_n(oracle, "_oracle", ns=[n], n_trials=lab.scale.trials,
                                  seed=seed).mean[0])
    return {f"majority voting, N={n}": float(vote.mean[0]),
            "any correct sample (ceiling)": ceiling,
            "random pick": 100 * float(rate.mean())}


def generator_loglik(lab: Laboratory, pool: pd.DataFrame,
                     batch_size: int = SCORING_BATCH_SIZE) -> np.ndarray:
    """The generator's own log-likelihood of every sample of ``pool`` (row order): the
    sum over the solution's tokens and its end token of log P(token | what precedes),
    in nats (a sample cut off at the length limit is scored as if it ended there). No
    training: a baseline that says how much the generator's weights already
    know about which samples are right (a reward model starts from those weights).
    """
    import torch

    from .generator import encode_solution

    gen, tok = lab.generator, lab.tokenizer
    first, of = distinct_samples(pool)  # identical samples read once
    out = np.zeros(len(first))
    rows = [(pool["problem"].iloc[i], pool["steps"].iloc[i]) for i in first]
    gen.eval()
    for start in range(0, len(rows), batch_size):
        enc = [encode_solution(tok, p, steps) for p, steps in rows[start: start + batch_size]]
        width = max(len(ids) for ids, _ in enc)
        ids = torch.full((len(enc), width), tok.pad_token_id)
        for r, (seq, _) in enumerate(enc):
            ids[r, : len(seq)] = torch.tensor(seq)
        with torch.inference_mode():
            logp = gen(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long()
                       ).logits.float().log_softmax(-1)
        for r, (seq, n_prompt) in enumerate(enc):
            target = torch.tensor(seq[n_prompt:])
            out[start + r] = logp[r, n_prompt - 1: len(seq) - 1].gather(
                -1, target[:, None]).sum().item()
    return out[of]


def pick_profile(lab: Laboratory, scores: np.ndarray, split: str = "test") -> pd.Series:
    """What a ranking picks: for every problem of ``split``, the sample with the highest
    score among all of its samples (best-of-N at N = the pool; NaN scores never picked,
    ties to the first), described in % of problems, next to what a uniformly random pick
    would give (the pool's per-problem means, averaged).

    Returns a Series indexed by (``"picked"`` | ``"random pick"``, statistic) with
    statistics ``"final answer right"``, ``"every step right"``, ``"unfinished"``,
    ``"skips an operation"`` (fewer arithmetic steps than the problem has operations) and
    ``"steps"`` (mean number of steps, not in %).
    """
    pool = lab.pools[split].reset_index(drop=True)
    problems = lab.problems[split]
    n_ops = pool["problem_index"].map(lambda i: problems[i].n_ops)
    arithmetic = pool["steps"].map(lambda st: sum(not x.startswith("# Answer") for x in st))
    stats = pd.DataFrame({
        "final answer right": 100.0 * pool["is_correct"].astype(bool),
        "every step right": 100.0 * pool["process_correct"].astype(bool),
        "unfinished": 100.0 * (pool["finish_reason"] == "length"),
        "skips an operation": 100.0 * (arithmetic < n_ops),
        "steps": pool["steps"].map(len).astype(float),
    })
    s = pd.Series(np.asarray(scores, float)).fillna(-np.inf)
    picked = s.groupby(pool["problem_index"]).idxmax()  # first of the highest
    return pd.concat({"picked": stats.loc[picked.to_numpy()].mean(),
                      "random pick": stats.groupby(pool["problem_index"]).mean().mean()})
