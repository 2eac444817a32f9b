"""Hand-made labeled solutions and scorers shared by the tests of items, scoring, metrics
and baselines (a helper module, not a test module)."""

from __future__ import annotations

import zlib

import numpy as np

from prm_lib.items import step_items
from prm_lib.schema import Completion, LabeledSolution, Step


def C(text, rating):
    return Completion(text, rating)


def sol_a(problem="P1") -> LabeledSolution:
    """Phase-1 style: alternatives at each position, a labeler-written step, an answer."""
    return LabeledSolution(problem, [
        Step((C("a0", 1), C("b0", -1)), chosen=0),
        Step((C("b1", 0), C("a1", 1), C("x1", None)), chosen=1),
        Step((C("c2", -1),), chosen=None, human_completion="h2"),
        Step((C("a3 # Answer 4", 1),), chosen=0),
    ], finish_reason="solution", phase=1)


def sol_c() -> LabeledSolution:
    """An unrated trajectory step, then a stop with two -1 candidates and none chosen."""
    return LabeledSolution("P2", [
        Step((C("d0", 1), C("e0", -1)), chosen=0),
        Step((C("d1", None),), chosen=0),
        Step((C("f2", -1), C("g2", -1))),
    ], finish_reason="found_error", phase=1)


def sol_d() -> LabeledSolution:
    """Phase-2 style: the pre-generated last step is the trajectory's, rated -1."""
    return LabeledSolution("P3", [
        Step((C("p0", 1),), chosen=0),
        Step((C("p1", -1),)),
    ], finish_reason="found_error", phase=2)


def oracle(solutions):
    """A perfect causal scorer: the rating of the last step is known for every item
    sequence; other steps (labeler-written, unrated) count as good."""
    label = {(it.problem, it.steps): it.rating for it in step_items(solutions)}
    onehot = {-1: [1.0, 0, 0], 0: [0, 1.0, 0], 1: [0, 0, 1.0], None: [0, 0, 1.0]}

    def score_fn(problems, steps):
        return [np.array([onehot[label.get((p, tuple(s[: k + 1])))] for k in range(len(s))])
                for p, s in zip(problems, steps)]

    return score_fn


def hashed_scorer(calls=None):
    """A causal scorer whose step-k output depends on (problem, steps[:k+1]) only."""

    def score_fn(problems, steps):
        if calls is not None:
            calls.append(len(steps))
        out = []
        for p, s in zip(problems, steps):
            rows = []
            for k in range(len(s)):
                key = "\x00".join([p, *s[: k + 1]]).encode()
                h = np.random.default_rng(zlib.crc32(key)).random(3) + 0.01
                rows.append(h / h.sum())
            out.append(np.array(rows))
        return out

    return score_fn
