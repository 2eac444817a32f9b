"""Step items, shared forward passes and first-error sets: hand-made solutions with
hand-computed answers, then the real phase-1 test."""

from __future__ import annotations

import numpy as np
import pytest

from prm_lib.items import (as_item_probs, first_error_sets, item_frame, item_problems,
                           item_ratings, plan_sequences, scoring_sequences, step_items)
from prm_lib.schema import LabeledSolution, Step

from .step_solutions import C, sol_a, sol_c, sol_d


def test_step_items_by_hand():
    items = step_items([sol_a()])
    got = [(it.position, it.prefix, it.text, it.rating, it.role) for it in items]
    assert got == [
        (0, (), "a0", 1, "trajectory"),
        (0, (), "b0", -1, "alternative"),
        (1, ("a0",), "a1", 1, "trajectory"),
        (1, ("a0",), "b1", 0, "alternative"),
        (2, ("a0", "a1"), "c2", -1, "alternative"),  # h2 is labeler-written: no item
        (3, ("a0", "a1", "h2"), "a3 # Answer 4", 1, "trajectory"),
    ]
    assert {it.problem for it in items} == {"P1"} and {it.solution_index for it in items} == {0}
    assert items[5].steps == ("a0", "a1", "h2", "a3 # Answer 4")


def test_every_rated_candidate_is_one_item():
    sols = [sol_a(), sol_c(), sol_d()]
    items = step_items(sols)
    assert len(items) == sum(s.n_rated for s in sols) == 6 + 4 + 2
    d_items = [it for it in items if it.problem == "P3"]
    assert [(it.text, it.rating, it.role) for it in d_items] == [
        ("p0", 1, "trajectory"), ("p1", -1, "trajectory")]
    np.testing.assert_array_equal(item_ratings(items[:6]), [1, -1, 1, 0, -1, 1])
    frame = item_frame(items, np.tile([0.2, 0.3, 0.5], (len(items), 1)))
    assert list(frame["role"])[:2] == ["trajectory", "alternative"]
    assert frame["p_negative"].eq(0.2).all()


# --------------------------------------------------------------------------- forward passes


def test_scoring_sequences_share_passes_and_deduplicate():
    sols = [sol_a(), sol_a(), sol_c()]  # the second is a duplicate session
    items = step_items(sols)
    seqs = scoring_sequences(items)
    by_steps = {(s.problem, s.steps): s.item_indices_per_step for s in seqs}
    # P1: the trajectory (all its rated steps in one pass) + one pass per alternative;
    # the duplicate adds no pass. P2: the trajectory (d0,) is a prefix of (d0, d1, f2).
    assert by_steps == {
        ("P1", ("a0", "a1", "h2", "a3 # Answer 4")): ((0, 6), (2, 8), (), (5, 11)),
        ("P1", ("b0",)): ((1, 7),),
        ("P1", ("a0", "b1")): ((), (3, 9)),
        ("P1", ("a0", "a1", "c2")): ((), (), (4, 10)),
        ("P2", ("d0", "d1", "f2")): ((12,), (), (14,)),
        ("P2", ("d0", "d1", "g2")): ((), (), (15,)),
        ("P2", ("e0",)): ((13,),),
    }
    slots = sorted(i for s in seqs for step in s.item_indices_per_step for i in step)
    assert slots == list(range(len(items)))  # every item in exactly one slot


def test_plan_sequences_reads_prefixes_from_the_longer_pass():
    seqs, where = plan_sequences(["P", "P", "Q", "P", "P"],
                                 [("a", "b"), ("a",), ("a",), (), ("a", "b")])
    assert seqs == [("P", ("a", "b")), ("Q", ("a",))]
    assert where == [(0, 1), (0, 0), (1, 0), None, (0, 1)]


def test_item_probs_are_checked_for_shape():
    items = step_items([sol_a()])
    np.testing.assert_array_equal(as_item_probs([[0.2, 0.3, 0.5]], 1), [[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        item_frame(items, np.zeros((len(items) - 1, 3)))
    assert item_problems(items) == ["P1"] * len(items)


# --------------------------------------------------------------------------- first error


def test_first_error_sets_by_hand():
    fe = first_error_sets([sol_a(), sol_a(), sol_c(), sol_d()])
    got = [(s.problem, s.steps, s.first_error) for s in fe.solutions]
    assert got == [
        ("P1", ("b0",), 0),
        ("P1", ("a0", "a1", "c2"), 2),  # the -1 alternative beside the labeler's h2
        ("P1", ("a0", "a1", "h2", "a3 # Answer 4"), -1),
        ("P2", ("e0",), 0),
        ("P3", ("p0", "p1"), 1),
    ]
    assert (fe.n_erroneous, fe.n_correct) == (4, 1)
    assert fe.skipped == {
        "duplicate": 3,
        "-1 step behind a prefix with an unrated step": 2,  # f2, g2 after unrated d1
        "trajectory not finished as a solution (found_error)": 2,
    }
    np.testing.assert_array_equal(fe.first_errors, [0, 2, -1, 0, 1])
    assert "4 erroneous + 1 correct" in fe.summary()


def test_first_error_prefix_rules():
    neutral_then_bad = LabeledSolution("P4", [
        Step((C("n0", 0),), chosen=0),
        Step((C("q1", 1), C("bad1", -1)), chosen=0, human_completion=None),
    ], finish_reason="solution")
    fe = first_error_sets([neutral_then_bad])
    # Neutral is not an error: the -1 behind it counts, and the trajectory is correct.
    assert [(s.steps, s.first_error) for s in fe.solutions] == [
        (("n0", "bad1"), 1), (("n0", "q1"), -1)]
    bad_trajectory = LabeledSolution("P5", [
        Step((C("t0", -1),), chosen=0),
        Step((C("t1", 1), C("t1b", -1)), chosen=0),
    ], finish_reason="solution")
    fe = first_error_sets([bad_trajectory])
    assert [(s.steps, s.first_error) for s in fe.solutions] == [(("t0",), 0)]
    assert fe.skipped == {"-1 step behind a prefix with a -1 step": 1,
                          "finished trajectory with a -1 step": 1}
    assert len(first_error_sets([sol_a(), sol_a()], deduplicate=False).solutions) == 6


# --------------------------------------------------------------------------- real data


def test_real_phase1_test(data_dir):
    from prm_lib.data import load_prm800k

    data = load_prm800k("test", data_dir=data_dir, join_answers=False)
    items = step_items(data)
    assert len(items) == data.reports[0].counts["rated step"] == 5_082
    r = item_ratings(items)
    assert (r == -1).sum() == 1_970
    # Phase 1: every rated trajectory step is +1; the -1 labels are all alternatives.
    assert {it.rating for it in items if it.role == "trajectory"} == {1}
    seqs = scoring_sequences(items)
    assert len(seqs) == 3_202
    assert sum(len(i) for s in seqs for i in s.item_indices_per_step) == len(items)
    fe = first_error_sets(data)
    assert (fe.n_erroneous, fe.n_correct) == (1_698, 90)
    assert fe.skipped["duplicate"] == 272  # five labeling sessions appear twice in the file
