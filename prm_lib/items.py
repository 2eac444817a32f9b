"""Step items and first-error sets: what a PRM is evaluated on, as plain data.

This is the data end of **score -> evaluate**: it turns labeled solutions
(:class:`~prm_lib.schema.LabeledSolution`) into the units a PRM scores and the metrics
read, and knows nothing about models (no torch). :mod:`prm_lib.scoring` computes their
probabilities; :mod:`prm_lib.metrics` and :mod:`prm_lib.baselines` read those.

* :func:`step_items`: one :class:`StepItem` per rated candidate step (trajectory step or
  alternative), with the prefix a PRM reads before it; for the step-level AUC and
  calibration.
* :func:`first_error_sets`: ProcessBench-style solutions whose first wrong step is known;
  for first-error detection.
* :func:`scoring_sequences`: the distinct forward passes that score a list of items.
  A causal PRM's verdict on step ``k`` depends only on the problem and steps ``0..k``,
  so any sequence that is a prefix of another (same problem) is read from that one's
  pass; :func:`plan_sequences` is that plan for any list of step sequences.

**Phase 1 in particular.** Every rated trajectory step of phase 1 is +1 (the labeler
continued with a good step), so all -1 labels sit among the *alternatives*: candidates
rated at a position but not followed. The role of an item is therefore a consequence of
its label, and no PRM sees it; only the position prior's optional ``by_role`` variant
(:func:`prm_lib.baselines.position_prior_baseline`) uses it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .schema import LabeledSolution

__all__ = [
    "StepItem",
    "step_items",
    "item_ratings",
    "item_problems",
    "item_frame",
    "as_item_probs",
    "ScoringSequence",
    "plan_sequences",
    "scoring_sequences",
    "FirstErrorSolution",
    "FirstErrorSet",
    "first_error_sets",
]


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


def item_ratings(items: Sequence[StepItem]) -> np.ndarray:
    """The items' ratings, int array ``[n_items]`` of -1/0/+1."""
    return np.array([it.rating for it in items], dtype=int)


def item_problems(items: Sequence[StepItem]) -> list[str]:
    """The items' problems: the clusters for :func:`step_auc`'s bootstrap."""
    return [it.problem for it in items]


def item_frame(items: Sequence[StepItem], probs: np.ndarray | None = None) -> pd.DataFrame:
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
        probs = as_item_probs(probs, len(items))
        frame["p_negative"], frame["p_neutral"], frame["p_positive"] = probs.T
    return frame



def as_item_probs(probs, n: int) -> np.ndarray:
    """``probs`` as a float array ``[n, 3]`` (P(-1), P(0), P(+1) of ``n`` items), or
    ValueError for another shape."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape != (n, 3):
        raise ValueError(f"probs must have shape ({n}, 3), got {probs.shape}")
    return probs


# --------------------------------------------------------------------------- forward passes


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



def plan_sequences(problems: Sequence[str], steps: Sequence[tuple[str, ...]]):
    """The distinct maximal sequences to score and where each input is read from.

    An input whose steps are a prefix of a longer input's steps (same problem) is read
    from the longer one's pass; that is safe only for a causal scorer (module docstring).

    Returns:
        ``(sequences, where)``: ``sequences`` a list of ``(problem, steps)``, the passes
        to run; ``where[i]`` = ``(sequence index, step index)`` at which input ``i`` is
        read, or None for an input without steps.
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


def scoring_sequences(items: Sequence[StepItem]) -> list[ScoringSequence]:
    """The distinct forward passes that score every item, with each item's slot.

    A trajectory needs one pass for all its rated steps; an alternative needs its own
    (prefix + alternative); identical sequences, and sequences that are a prefix of
    another, share a pass (causal scorer assumed, see the module docstring). Every item
    appears in exactly one slot.
    """
    seqs, where = plan_sequences([it.problem for it in items], [it.steps for it in items])
    slots = [[[] for _ in s] for _, s in seqs]
    for i, (sid, k) in enumerate(where):
        slots[sid][k].append(i)
    return [
        ScoringSequence(p, s, tuple(tuple(x) for x in sl)) for (p, s), sl in zip(seqs, slots)
    ]



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
