"""Best-of-N, majority voting and RM-weighted voting, as the paper's official script does them.

The protocol (OpenAI's ``prm800k/eval/eval.py``, paper Section 3 and Figure 3): every test
problem has a *pool* of up to 1,860 scored solution samples. For each of 400 trials and each
N in :data:`~prm_lib.paper.PAPER_NS`:

1. pad the problem's list of samples with missing entries up to the pool size (1,860), so a
   problem with fewer samples simply has fewer candidates among the first N;
2. shuffle the padded list and take the first N entries;
3. drop missing entries and samples without a final answer;
4. **best-of-N**: keep the sample with the highest RM score; the problem is solved if that
   sample's answer is correct. **Majority voting**: the most common final answer wins.
   **RM-weighted voting**: the answer with the largest total RM score wins;
5. % solved = solved problems / all problems (a problem with no usable sample among its N
   is unsolved). Report the mean and standard deviation (``ddof=0``, as ``np.std``) over
   trials.

Precise rules where the official script leaves room (each one is tested):

* **NaN scores** count as missing: such a sample is dropped like a padding entry. (The
  official ``max`` would keep a NaN sample only when it happens to come first; that is an
  accident of Python's comparison, not a rule worth copying.)
* **Ties in score** go to the sample that comes first in the shuffled order, which is what
  the official ``max(...)`` does and what ``argmax`` over the shuffled order does.
* **Voting ties** go to the tied answer whose first sample comes earliest in the shuffled
  order. For majority voting this *is* a uniformly random choice among the tied answers:
  given which samples are among the first N, their order is a uniform shuffle, so the
  earliest of the tied answers' samples (each tied answer owns the same number of them)
  belongs to each tied answer with equal probability. It needs no extra random numbers, so
  the loop and vectorised versions agree exactly. For weighted voting exact ties are rare
  (real-valued sums), and the same rule applies.
* **Answers** are grouped for voting by the ``answer_key`` column when there is one (use
  :func:`fill_answer_key` to compute it with :mod:`prm_lib.grading`), else by the answer
  string with surrounding whitespace stripped. A voted answer is correct when most of the
  pool's samples with that answer are marked correct (they all agree when ``is_correct``
  was graded from the same answer string; a warning counts the groups that disagree).
* **One shuffle per trial serves every N.** The official script reshuffles for every N;
  here the first N of a single shuffle are used for all N at once. Each N still sees a
  uniformly random subset, trials stay independent, so mean and std per N have the same
  distribution; only the (unreported) correlation between N values inside one trial
  changes. The same seed gives every method the same shuffles, so differences between PRM,
  ORM and voting are paired (less noisy) comparisons.

Randomness: trial ``t`` draws its shuffles from ``np.random.SeedSequence(seed,
spawn_key=(t,))``, so a trial's shuffles do not depend on how many trials run or how they
are batched; :func:`draw_permutations` returns exactly the shuffles the evaluators use, and
every evaluator also accepts them back through ``permutations=`` (tests use this to compare
against a plain loop).

Statistics of the results, at the end of the module: :func:`at_largest_n`,
:func:`trial_standard_errors` (how the standard error shrinks with trials),
:func:`paired_difference` and :func:`describe_difference` (two methods on the same
shuffles), :func:`problem_bootstrap` (how much a difference depends on the problems drawn).

This is the **evaluate** stage for whole solutions (load -> format -> train -> score ->
evaluate -> plot): it reads a sample table with score columns
(:mod:`prm_lib.samples`) and gives :class:`BestOfNResult` to :mod:`prm_lib.plots`.

Vectorisation: per batch of trials, one ``(trials, problems, pool)`` permutation array;
best-of-N gathers a sortable key (score rank, then earliest position) into shuffled order
and takes a maximum over each stretch between consecutive N, then a cumulative maximum
across N, so all N come from one pass. Voting counts each answer group's samples per
stretch with one ``bincount``. Batches are sized to stay under ``max_chunk_bytes``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .paper import PAPER_N_TRIALS, PAPER_NS, PAPER_POOL_SIZE

__all__ = [
    "BestOfNResult",
    "best_of_n",
    "majority_vote",
    "evaluate_methods",
    "results_frame",
    "draw_permutations",
    "answer_groups",
    "fill_answer_key",
    "at_largest_n",
    "trial_standard_errors",
    "paired_difference",
    "describe_difference",
    "problem_bootstrap",
]

# Small batches keep the working set near the CPU caches: 32 MiB ran fastest on 2 cores.
_DEFAULT_CHUNK_BYTES = 32 * 2**20


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BestOfNResult:
    """The outcome of one evaluation method over many trials.

    Attributes:
        label: display name, e.g. ``"PRM"`` or ``"Majority voting"``.
        method: ``"best-of-N"``, ``"majority voting"`` or ``"RM-weighted voting"``.
        score: the score column used (None for plain majority voting).
        ns: the N values, increasing, shape ``(K,)``.
        solved: % of problems solved, shape ``(n_trials, K)``; row ``t`` is trial ``t``.
        per_problem: fraction of trials in which each problem was solved, shape
            ``(n_problems, K)``, rows in the order of :attr:`problems`.
        problems: problem ids in order of first appearance in the input table.
        pad_to: the pool size every problem was padded to.
        seed: the seed that reproduces the shuffles (the drawn entropy when ``seed=None``
            was passed); None when the permutations were supplied by the caller.
    """

    label: str
    method: str
    score: str | None
    ns: np.ndarray
    solved: np.ndarray
    per_problem: np.ndarray
    problems: pd.Index
    pad_to: int
    seed: int | None

    @property
    def n_trials(self) -> int:
        return int(self.solved.shape[0])

    @property
    def n_problems(self) -> int:
        return len(self.problems)

    @property
    def mean(self) -> np.ndarray:
        """Mean % solved over trials, shape ``(K,)``."""
        return self.solved.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of % solved over trials (``ddof=0``, as the official script)."""
        return self.solved.std(axis=0)

    def __repr__(self) -> str:  # the arrays would drown a notebook cell
        return (
            f"BestOfNResult({self.label!r}, {self.n_problems} problems, {self.n_trials} trials, "
            f"N={int(self.ns[0])}..{int(self.ns[-1])}: {self.mean[0]:.1f}% -> "
            f"{self.mean[-1]:.1f}% ± {self.std[-1]:.1f})"
        )

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per N: label, method, score, N, mean, std, n_trials, n_problems."""
        k = len(self.ns)
        return pd.DataFrame(
            {
                "label": [self.label] * k,
                "method": [self.method] * k,
                "score": [self.score] * k,
                "N": self.ns.astype(int),
                "mean": self.mean,
                "std": self.std,
                "n_trials": self.n_trials,
                "n_problems": self.n_problems,
            }
        )


def results_frame(results: Sequence[BestOfNResult]) -> pd.DataFrame:
    """All results stacked into one tidy table (see :meth:`BestOfNResult.to_frame`)."""
    return pd.concat([r.to_frame() for r in results], ignore_index=True)


# --------------------------------------------------------------------------- the pool


@dataclass(frozen=True)
class _Pool:
    """The sample table laid out as problems x slots.

    Problem ``p`` is the p-th distinct ``problem`` in order of first appearance; its slot
    ``i < counts[p]`` holds its i-th row in table order, slots ``>= counts[p]`` are padding.
    """

    problems: pd.Index
    code: np.ndarray  # (n_rows,) problem index of each row
    slot: np.ndarray  # (n_rows,) slot of each row inside its problem
    counts: np.ndarray  # (P,)
    pad_to: int

    @property
    def flat_slot(self) -> np.ndarray:
        """Row -> index into a flattened (P, pad_to) array."""
        return self.code * self.pad_to + self.slot


def _build_pool(samples: pd.DataFrame, pad_to: int | None, needed: Sequence[str]) -> _Pool:
    if not isinstance(samples, pd.DataFrame):
        raise TypeError(f"samples must be a pandas DataFrame, got {type(samples).__name__}")
    missing = [c for c in ("problem", "answer", "is_correct", *needed) if c not in samples]
    if missing:
        raise KeyError(
            f"the sample table has no column(s) {missing}; it needs 'problem', 'answer', "
            f"'is_correct' and the score column(s) used. Columns present: {list(samples.columns)}"
        )
    if len(samples) == 0:
        raise ValueError("the sample table is empty: there is nothing to evaluate")
    if samples["problem"].isna().any():
        rows = list(samples.index[samples["problem"].isna()][:5])
        raise ValueError(f"'problem' is missing on rows {rows}; every sample needs its problem")
    code, problems = pd.factorize(samples["problem"], sort=False)
    slot = pd.Series(code).groupby(code).cumcount().to_numpy()
    counts = np.bincount(code, minlength=len(problems))
    biggest = int(counts.max())
    if pad_to is None:
        pad_to = biggest
    if pad_to < biggest:
        worst = problems[int(counts.argmax())]
        raise ValueError(
            f"pad_to={pad_to} is smaller than the largest pool ({biggest} samples, problem "
            f"{str(worst)[:60]!r}); pass pad_to >= {biggest} or leave it as None"
        )
    return _Pool(pd.Index(problems), code.astype(np.int64), slot.astype(np.int64), counts,
                 int(pad_to))


def _has_answer(samples: pd.DataFrame) -> np.ndarray:
    return samples["answer"].notna().to_numpy().copy()


def _correct(samples: pd.DataFrame, usable: np.ndarray) -> np.ndarray:
    """``is_correct`` as bool; a missing value on a usable sample is an error."""
    col = samples["is_correct"]
    bad = col.isna().to_numpy() & usable
    if bad.any():
        rows = list(samples.index[bad][:5])
        raise ValueError(
            f"'is_correct' is missing on {int(bad.sum())} sample(s) that have an answer "
            f"(rows {rows}); grade them first (prm_lib.grading.grade_answer)"
        )
    return col.fillna(False).astype(bool).to_numpy()


def _scores(samples: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return samples[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"score column {column!r} must be numeric: {exc}") from None


def _check_ns(ns: Sequence[int], pad_to: int) -> np.ndarray:
    arr = np.asarray(list(ns))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ns must be a non-empty list of integers, got {ns!r}")
    arr = np.sort(arr.astype(np.int64))
    if arr[0] < 1 or np.any(np.diff(arr) == 0):
        raise ValueError(f"ns must hold distinct positive integers, got {list(ns)}")
    if arr[-1] > pad_to:
        raise ValueError(
            f"N={int(arr[-1])} is larger than the pool size pad_to={pad_to}: best-of-N cannot "
            f"draw more samples than a padded pool holds. Drop the larger N values or pass "
            f"pad_to >= {int(arr[-1])} (the paper pads to {PAPER_POOL_SIZE})"
        )
    return arr


# --------------------------------------------------------------------------- randomness


def _root_seed(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


def _perm_dtype(pad_to: int):
    return np.int16 if pad_to <= np.iinfo(np.int16).max else np.int64


def _draw_into(out: np.ndarray, seed: int, trials: Sequence[int]) -> None:
    """Fill ``out[i]`` (problems x pad_to) with trial ``trials[i]``'s shuffles."""
    n_problems, pad_to = out.shape[1:]
    base = np.broadcast_to(np.arange(pad_to, dtype=out.dtype), (n_problems, pad_to))
    for i, t in enumerate(trials):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(t),)))
        rng.permuted(base, axis=1, out=out[i])


def draw_permutations(
    seed: int, trials: int | Sequence[int], n_problems: int, pad_to: int
) -> np.ndarray:
    """The shuffles the evaluators use for ``seed``.

    Args:
        seed: the evaluators' ``seed``.
        trials: a trial count (trials ``0..trials-1``) or a list of trial indices.
        n_problems: number of distinct problems in the sample table.
        pad_to: the pool size.

    Returns:
        int array ``perm`` of shape ``(len(trials), n_problems, pad_to)``: in trial ``t``,
        problem ``p``'s shuffled list is ``[slot perm[t, p, 0], slot perm[t, p, 1], ...]``,
        where problems are numbered in order of first appearance in the table and slot
        ``i`` is the problem's i-th row (slots past its sample count are padding).
    """
    trials = range(trials) if isinstance(trials, (int, np.integer)) else list(trials)
    out = np.empty((len(trials), n_problems, pad_to), dtype=_perm_dtype(pad_to))
    _draw_into(out, _root_seed(seed), trials)
    return out


def _permutation_chunks(
    pool: _Pool,
    n_trials: int,
    seed: int,
    permutations: np.ndarray | None,
    bytes_per_trial: int,
    max_chunk_bytes: int,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(trial slice, perm)`` batches, perm of shape ``(trials, P, pad_to)``."""
    P, M = len(pool.problems), pool.pad_to
    chunk = max(1, min(n_trials, max_chunk_bytes // max(bytes_per_trial, 1)))
    buf = None if permutations is not None else np.empty((chunk, P, M), dtype=_perm_dtype(M))
    for start in range(0, n_trials, chunk):
        stop = min(n_trials, start + chunk)
        if permutations is not None:
            yield slice(start, stop), permutations[start:stop]
        else:
            perm = buf[: stop - start]
            _draw_into(perm, seed, range(start, stop))
            yield slice(start, stop), perm


def _check_permutations(permutations, pool: _Pool) -> np.ndarray:
    perm = np.asarray(permutations)
    P, M = len(pool.problems), pool.pad_to
    if perm.ndim != 3 or perm.shape[1:] != (P, M) or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(
            f"permutations must be an int array of shape (n_trials, {P}, {M}) "
            f"(trials, problems, pad_to), got {perm.dtype} {perm.shape}"
        )
    if not (np.sort(perm, axis=-1) == np.arange(M)).all():
        raise ValueError("every permutations[t, p] must be a permutation of range(pad_to)")
    return perm


# --------------------------------------------------------------------------- best-of-N


def _row_offsets(P: int, M: int) -> np.ndarray:
    """Offsets ``(1, P, 1)`` that turn slot indices into indices of a flat (P, M) array."""
    dtype = np.int32 if P * M < np.iinfo(np.int32).max else np.int64
    return (np.arange(P, dtype=dtype) * M)[None, :, None]


def _best_of_n_chunk(
    perm: np.ndarray, key_slot: np.ndarray, correct_slot: np.ndarray, ns: np.ndarray
) -> np.ndarray:
    """Solved flags ``(T, P, K)`` for one batch of shuffles ``perm`` ``(T, P, M)``.

    ``key_slot`` ``(P, M)`` holds each slot's score rank inside its problem (0 = lowest) or
    -1 for padding / unusable samples.
    """
    P, M = key_slot.shape
    nmax = int(ns[-1])
    # Key = rank * M + (M - 1 - position): the maximum over a prefix is the best score,
    # and among equal scores the earliest position, exactly the official max().
    # A flat take is about twice as fast as take_along_axis here.
    keys = key_slot.ravel().take(perm[..., :nmax] + _row_offsets(P, M))
    keys *= M
    keys += np.arange(M - 1, M - 1 - nmax, -1, dtype=keys.dtype)
    starts = np.concatenate([[0], ns[:-1]])
    best = np.maximum.accumulate(np.maximum.reduceat(keys, starts, axis=-1), axis=-1)
    has = best >= 0  # unusable entries have keys -1..-M
    position = np.where(has, (M - 1) - best % M, 0)
    chosen = np.take_along_axis(perm, position.astype(np.intp), axis=-1)
    return np.take_along_axis(correct_slot[None], chosen.astype(np.intp), axis=-1) & has


def best_of_n(
    samples: pd.DataFrame,
    score: str = "prm_score",
    ns: Sequence[int] = PAPER_NS,
    n_trials: int = PAPER_N_TRIALS,
    seed: int | None = 0,
    pad_to: int | None = None,
    *,
    label: str | None = None,
    permutations: np.ndarray | None = None,
    max_chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
) -> BestOfNResult:
    """% of problems solved when the RM picks the best of N samples (official protocol).

    Args:
        samples: one row per sample with ``problem``, ``answer`` (None/NaN: no answer),
            ``is_correct`` (bool) and the ``score`` column (float; NaN = missing).
        score: the score column to rank by, e.g. ``"prm_score"`` or ``"orm_score"``.
        ns: N values (sorted in the result); each must be ``<= pad_to``.
        n_trials: number of independent shuffles (the paper: 400).
        seed: reproduces the shuffles exactly; None draws fresh entropy (kept in the
            result's ``seed``).
        pad_to: pool size; default the largest number of samples of any problem (1,860 on
            the paper's file).
        label: display name; default ``"best-of-N (<score>)"``.
        permutations: shuffles to use instead of drawing them, shape ``(n_trials, P,
            pad_to)`` as returned by :func:`draw_permutations`; overrides ``n_trials`` and
            ``seed``.
        max_chunk_bytes: memory bound for one batch of trials.

    Returns:
        a :class:`BestOfNResult` with ``solved`` of shape ``(n_trials, len(ns))`` in %.

    Raises:
        KeyError: a needed column is missing. ValueError: N larger than ``pad_to``, a
        pool larger than ``pad_to``, or ``is_correct`` missing on a sample with an answer.
    """
    pool = _build_pool(samples, pad_to, [score])
    ns_arr = _check_ns(ns, pool.pad_to)
    scores = _scores(samples, score)
    usable = _has_answer(samples) & ~np.isnan(scores)
    correct = _correct(samples, usable)

    P, M = len(pool.problems), pool.pad_to
    # Dense rank of the score inside its problem, so keys stay small integers.
    rank = np.full(len(samples), -1, dtype=np.int64)
    if usable.any():
        ranked = pd.DataFrame({"p": pool.code[usable], "s": scores[usable]})
        rank[usable] = ranked.groupby("p")["s"].rank(method="dense").to_numpy(np.int64) - 1
    key_dtype = np.int32 if M * (M + 1) < np.iinfo(np.int32).max else np.int64
    key_slot = np.full(P * M, -1, dtype=key_dtype)
    key_slot[pool.flat_slot] = rank
    correct_slot = np.zeros(P * M, dtype=bool)
    correct_slot[pool.flat_slot] = correct & usable

    return _run(
        pool, ns_arr, n_trials, seed, permutations, max_chunk_bytes,
        bytes_per_trial=P * int(ns_arr[-1]) * (np.dtype(key_dtype).itemsize + 2) + P * M * 2,
        chunk_fn=lambda perm: _best_of_n_chunk(
            perm, key_slot.reshape(P, M), correct_slot.reshape(P, M), ns_arr
        ),
        label=label or f"best-of-N ({score})", method="best-of-N", score=score,
    )


def _run(pool, ns, n_trials, seed, permutations, max_chunk_bytes, bytes_per_trial, chunk_fn,
         label, method, score) -> BestOfNResult:
    """Drive ``chunk_fn`` over batches of trials and collect a :class:`BestOfNResult`."""
    if permutations is not None:
        permutations = _check_permutations(permutations, pool)
        n_trials, root = permutations.shape[0], None
    else:
        if (isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer))
                or n_trials < 1):
            raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
        root = _root_seed(seed)
    P = len(pool.problems)
    solved = np.empty((n_trials, len(ns)))
    per_problem = np.zeros((P, len(ns)))
    for trials, perm in _permutation_chunks(pool, n_trials, root, permutations,
                                            bytes_per_trial, max_chunk_bytes):
        flags = chunk_fn(perm)  # (T, P, K) bool
        solved[trials] = flags.sum(axis=1) * 100.0 / P
        per_problem += flags.sum(axis=0)
    return BestOfNResult(
        label=label, method=method, score=score, ns=ns, solved=solved,
        per_problem=per_problem / n_trials, problems=pool.problems, pad_to=pool.pad_to,
        seed=root,
    )


# --------------------------------------------------------------------------- voting


def answer_groups(samples: pd.DataFrame) -> pd.Series:
    """The key majority voting groups answers by: ``answer_key`` when present and not
    null, else the answer string stripped of surrounding whitespace; None without answer."""
    answer = samples["answer"]
    key = answer.where(answer.isna(), answer.astype(str).str.strip())
    if "answer_key" in samples:
        given = samples["answer_key"]
        key = given.where(given.notna() & answer.notna(), key)
    return key


def fill_answer_key(samples: pd.DataFrame, column: str = "answer_key") -> pd.DataFrame:
    """A copy of ``samples`` with ``column`` = :func:`prm_lib.grading.answer_key` of each
    answer, so voting groups equivalent answers (``"1/2"``, ``"\\frac12"``) together."""
    from .grading import answer_key  # lazy: the evaluator itself does not need grading

    out = samples.copy()
    out[column] = [None if pd.isna(a) else answer_key(a) for a in out["answer"]]
    return out


def _vote_chunk(perm, usable_flat, gid, group_starts, weights, problem_starts, n_groups_of,
                group_problems, group_correct, seg_of_pos, K, P) -> np.ndarray:
    """Solved flags ``(T, P, K)`` for voting over one batch of shuffles ``perm``.

    Usable samples are laid out sorted by (problem, group): ``usable_flat`` (U,) indexes a
    flattened (P, M) array, ``gid`` (U,) their group, ``group_starts`` (G,) where each
    group begins, ``problem_starts`` (P',) where each problem with usable samples begins
    among the groups.
    """
    T, _, M = perm.shape
    G = len(group_starts)
    # Position of every slot in the shuffled order (the inverse permutation).
    rows = T * perm.shape[1]
    index_dtype = np.int32 if perm.size < np.iinfo(np.int32).max else np.int64
    flat = perm + (np.arange(rows, dtype=index_dtype) * M).reshape(T, -1, 1)
    pos = np.empty(perm.size, dtype=perm.dtype)
    pos[flat] = np.arange(M, dtype=perm.dtype)  # scatter: pos[slot] = its position
    pos_u = pos.reshape(T, -1)[:, usable_flat].astype(np.int64)  # (T, U)
    # Stretch k holds positions in [N_{k-1}, N_k); K = beyond the largest N.
    bins = (np.arange(T)[:, None] * G + gid[None, :]) * (K + 1) + seg_of_pos[pos_u]
    size = T * G * (K + 1)
    count = np.bincount(bins.ravel(), minlength=size).reshape(T, G, K + 1)
    count = np.cumsum(count, axis=2)[:, :, :K]
    if weights is None:
        total = count.astype(np.float64)
    else:
        total = np.bincount(bins.ravel(), weights=np.tile(weights, T), minlength=size)
        total = np.cumsum(total.reshape(T, G, K + 1), axis=2)[:, :, :K]
    present = count > 0
    first = np.minimum.reduceat(pos_u, group_starts, axis=1)  # (T, G) earliest position
    total = np.where(present, total, -np.inf)
    top_total = np.repeat(np.maximum.reduceat(total, problem_starts, axis=1), n_groups_of, axis=1)
    top = present & (total == top_total)
    first_top = np.where(top, first[:, :, None], M)
    earliest = np.repeat(np.minimum.reduceat(first_top, problem_starts, axis=1), n_groups_of,
                         axis=1)
    winner = top & (first_top == earliest)
    won = np.logical_or.reduceat(winner & group_correct[None, :, None], problem_starts, axis=1)
    flags = np.zeros((T, P, K), dtype=bool)
    flags[:, group_problems[problem_starts], :] = won
    return flags


def majority_vote(
    samples: pd.DataFrame,
    ns: Sequence[int] = PAPER_NS,
    n_trials: int = PAPER_N_TRIALS,
    seed: int | None = 0,
    pad_to: int | None = None,
    weights: str | None = None,
    *,
    label: str | None = None,
    permutations: np.ndarray | None = None,
    max_chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
) -> BestOfNResult:
    """% of problems solved by majority voting (or RM-weighted voting) over N samples.

    Same protocol, shuffles and arguments as :func:`best_of_n`. Among the first N
    samples (padding and samples without an answer dropped) answers are grouped by
    :func:`answer_groups`; the group with the most samples wins (with ``weights``: the
    largest sum of that score column; samples with a NaN weight are dropped). Ties go to
    the tied answer seen first in the shuffled order, which for plain majority voting is
    a uniformly random choice (see the module notes).

    Args:
        weights: None for majority voting; a score column (non-negative, e.g. PRM
            probabilities) for RM-weighted voting.

    Returns:
        a :class:`BestOfNResult` with ``solved`` of shape ``(n_trials, len(ns))`` in %.
    """
    pool = _build_pool(samples, pad_to, [weights] if weights else [])
    ns_arr = _check_ns(ns, pool.pad_to)
    usable = _has_answer(samples)
    w = None
    if weights is not None:
        w = _scores(samples, weights)
        usable = usable & ~np.isnan(w)
        if (w[usable] < 0).any():
            raise ValueError(
                f"RM-weighted voting sums the scores in {weights!r}, which needs them to be "
                f"non-negative (probabilities); it has negative values. Map them to "
                f"probabilities first (e.g. a sigmoid of logits)"
            )
    correct = _correct(samples, usable)
    P, M, K = len(pool.problems), pool.pad_to, len(ns_arr)

    keys = answer_groups(samples)[usable].astype(str)
    code = pool.code[usable]
    # One group per (problem, answer key), numbered in problem order so that each
    # problem's groups are contiguous (reduceat needs that).
    key_code, key_values = pd.factorize(keys, sort=False)
    group_values, gid_rows = np.unique(code * len(key_values) + key_code, return_inverse=True)
    order = np.argsort(gid_rows, kind="stable")
    gid = gid_rows[order]
    G = len(group_values)
    group_starts = np.searchsorted(gid, np.arange(G))
    group_problems = group_values // max(len(key_values), 1)
    # A voted answer is correct when most of its pool samples are marked correct.
    n_in_group = np.bincount(gid, minlength=G)
    n_correct = np.bincount(gid, weights=correct[usable][order], minlength=G)
    group_correct = n_correct * 2 > n_in_group
    mixed = int(((n_correct > 0) & (n_correct < n_in_group)).sum())
    if mixed:
        warnings.warn(
            f"{mixed} answer group(s) mix samples marked correct and incorrect (the answer "
            f"key merges answers the grader told apart); each counts as its majority label",
            stacklevel=2,
        )
    # Where each problem's groups begin (problems without a usable sample have none).
    problem_starts = np.flatnonzero(np.r_[True, np.diff(group_problems) != 0]) if G else []
    problem_starts = np.asarray(problem_starts, dtype=np.int64)
    n_groups_of = np.diff(np.r_[problem_starts, G])
    seg_of_pos = np.searchsorted(ns_arr, np.arange(M), side="right").astype(np.int64)
    usable_flat = pool.flat_slot[usable][order]
    weights_u = None if w is None else w[usable][order]

    def chunk_fn(perm):
        if G == 0:
            return np.zeros((perm.shape[0], P, K), dtype=bool)
        return _vote_chunk(perm, usable_flat, gid, group_starts, weights_u, problem_starts,
                           n_groups_of, group_problems, group_correct, seg_of_pos, K, P)

    U = int(usable.sum())
    method = "majority voting" if weights is None else "RM-weighted voting"
    return _run(
        pool, ns_arr, n_trials, seed, permutations, max_chunk_bytes,
        bytes_per_trial=P * M * 4 + U * 40 + G * (K + 1) * 64,
        chunk_fn=chunk_fn,
        label=label or (method.capitalize() if weights is None else f"{method} ({weights})"),
        method=method, score=weights,
    )


# --------------------------------------------------------------------------- all methods


def evaluate_methods(
    samples: pd.DataFrame,
    scores: Mapping[str, str] | None = None,
    majority_voting: str | None = "Majority voting",
    weighted_voting: Mapping[str, str] | None = None,
    **kwargs,
) -> list[BestOfNResult]:
    """Run several methods on the same shuffles (same ``seed``), as in Figure 3.

    Args:
        scores: label -> score column for best-of-N; default every ``*_score`` column,
            labelled by its prefix in capitals (``prm_score`` -> ``"PRM"``).
        majority_voting: label for plain majority voting, or None to skip it.
        weighted_voting: label -> score column for RM-weighted voting.
        **kwargs: passed to :func:`best_of_n` and :func:`majority_vote` (``ns``,
            ``n_trials``, ``seed``, ``pad_to``, ...).

    Returns:
        one :class:`BestOfNResult` per method; :func:`results_frame` makes them a table.
    """
    if scores is None:
        scores = {c[: -len("_score")].upper(): c for c in samples.columns
                  if isinstance(c, str) and c.endswith("_score")}
    results = [best_of_n(samples, score=col, label=lab, **kwargs) for lab, col in scores.items()]
    if majority_voting:
        results.append(majority_vote(samples, label=majority_voting, **kwargs))
    for lab, col in (weighted_voting or {}).items():
        results.append(majority_vote(samples, weights=col, label=lab, **kwargs))
    return results


# --------------------------------------------------------------------------- statistics


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
    :func:`evaluate_methods` gives), so trial t of each saw the same
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
