"""Best-of-N on the laboratory (chapters 4 and 7): the reward models, the scored pool,
chapter 4's pool when the paper's samples are missing, and the summaries the chapters
print."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prm_lib.lab import evaluation as ev
from prm_lib.lab import experiments as ex
from prm_lib.paper import PAPER_TABLE_4
from prm_lib.pools import evaluation_pool
from prm_lib.reward_model import SCORING_RULES


@pytest.fixture(scope="module")
def lab(tiny_lab):
    return tiny_lab


@pytest.fixture(scope="module")
def runs(lab):
    return ev.lab_reward_models(lab, seed=0)


# --------------------------------------------------------------------------- small helpers


def test_powers_of_two_end_with_the_pool():
    assert ev.powers_of_two(8) == [1, 2, 4, 8]
    assert ev.powers_of_two(1) == [1]
    assert ev.powers_of_two(6) == [1, 2, 4, 6]
    with pytest.raises(ValueError):
        ev.powers_of_two(0)


def test_score_columns():
    assert ev.score_columns(["prm", "orm"], oracle=True) == {
        "PRM (process)": "prm_score", "ORM (final answer)": "orm_score",
        "any correct in the first N": "oracle_score"}


# --------------------------------------------------------------------------- the runs


def test_reward_models_are_chapter_5s_largest_runs(lab, runs):
    assert list(runs) == ["prm", "orm", "orm_checker"]
    assert [r.kind for r in runs.values()] == ["prm", "orm", "orm"]
    size = lab.scale.data_sizes[-1]
    rows = ex.select_uniform(lab.pools["train"], size, seed=0)
    for sup, name in ev.RUN_NAMES.items():
        assert runs[name].supervision == sup
        assert runs[name].summary["samples"] == size * lab.scale.train_problems
        # chapter 5's call, same data and seed: the same cached run
        assert ex.train_lab_rm(lab, rows, sup, seed=0).path == runs[name].path


def test_scored_test_pool_adds_one_column_per_run(lab, runs):
    before = lab.pools["test"].copy()
    pool = ev.scored_test_pool(lab, runs, oracle=True)
    pd.testing.assert_frame_equal(lab.pools["test"], before)  # the lab's pool is untouched
    for name, run in runs.items():
        np.testing.assert_array_equal(pool[f"{name}_score"], run.scores())
    np.testing.assert_array_equal(pool["oracle_score"], before["is_correct"].astype(float))
    strict = ev.scored_test_pool(lab, runs, rule="min", neutral="negative")
    np.testing.assert_array_equal(strict["prm_score"], runs["prm"].scores("min", "negative"))
    np.testing.assert_array_equal(strict["orm_score"], pool["orm_score"])  # no rule for ORMs
    with pytest.raises(ValueError, match="scored"):
        short = SimpleNamespace(scores=lambda *a: np.zeros(3))
        ev.scored_test_pool(lab, {"x": short})


# --------------------------------------------------------------------------- chapter 4's pool


def test_offline_the_pool_is_the_laboratorys(lab, runs, tmp_path):
    # prm_lib.pools falls back on the laboratory: tested here, where its runs are cached
    pool = evaluation_pool("tiny", data_dir=tmp_path, seed=0)
    assert not pool.is_paper and pool.source == "laboratory"
    assert "scored samples" in pool.unavailable
    assert pool.ns == tuple(ev.powers_of_two(lab.scale.test_pool))
    assert pool.pad_to == lab.scale.test_pool and pool.n_trials == lab.scale.trials
    assert {"prm_score", "orm_score"} <= set(pool.samples) and \
        "orm_checker_score" not in pool.samples
    np.testing.assert_array_equal(pool.samples["prm_score"], runs["prm"].scores())
    assert pool.runs["orm"].path == runs["orm"].path
    assert pool.spread_ns[0] == 1 and pool.spread_ns[-1] == lab.scale.test_pool


# --------------------------------------------------------------------------- summaries


def test_scoring_rule_table_has_the_four_rules_beside_table_4(lab, runs):
    table = ev.scoring_rule_table(lab.pools["test"], runs["prm"], n_trials=7, seed=2)
    assert list(table.index) == list(SCORING_RULES)
    assert table["paper"].tolist() == [78.2, 77.6, 77.4, 77.8] == list(PAPER_TABLE_4.values())
    first = table.loc["product, neutral = correct", "mean"]
    assert first == ex.solved_at_pool(lab, runs["prm"].scores(), n_trials=7, seed=2)
    # at N = the pool: each rule's paired difference from the paper's choice, interval
    assert table.loc["product, neutral = correct", ["difference", "low", "high"]].tolist() \
        == [0, 0, 0]
    assert ((table["low"] <= table["difference"] + 1e-9)
            & (table["difference"] <= table["high"] + 1e-9)).all()
    assert "difference" not in ev.scoring_rule_table(lab.pools["test"], runs["prm"], n=1,
                                                     n_trials=3)
    with pytest.raises(ValueError):
        ev.scoring_rule_table(lab.pools["test"], runs["orm"])


def test_neutral_steps_are_counted_and_penalised():
    pool = pd.DataFrame({
        "problem": ["a", "a", "b"], "ratings": [(1, 0, 1), (1, 1), (0, -1)],
        "is_correct": [True, True, False], "process_correct": [True, True, False]})
    s = ev.neutral_step_summary(pool)
    assert s["samples with a neutral step"] == 2 and s["... with the right answer"] == 1
    assert s["... with no bad step (process correct)"] == 1
    assert s["problems with such a sample"] == 2
    # one step each: bad, neutral, good probabilities
    probs = [np.array([[0.0, 0.5, 0.5]]), np.array([[0.0, 0.0, 1.0]]),
             np.array([[0.2, 0.4, 0.4]])]
    run = ex.LabRun(".", {"kind": "prm"}, supervision="process", step_probs=probs)
    pen = ev.neutral_penalty(pool, run)
    assert pen["with a neutral step"] == pytest.approx((0.5 + 0.5) / 2)
    assert pen["without"] == pytest.approx(1.0)


def test_widget_examples_take_each_group_in_turn(lab):
    pool = pd.DataFrame({
        "problem": ["q"] * 7,
        "steps": [["1"], ["2"], ["3"], ["4"], ["5"], [], ["7"]],
        "answer": ["1", "1", "1", "9", None, "1", "1"],
        "is_correct": [True, True, True, False, False, True, True],
        "process_correct": [False, True, True, False, False, True, False],
        "first_error": [0, -1, -1, 0, 0, -1, 0]})
    got = ev.widget_examples(pool, n=4, seed=0)
    labels = [label for _, _, label in got]
    assert labels[0].startswith("right answer, wrong steps (first error: step 1)")
    assert labels[1] == "right answer, right steps"
    assert labels[2] in ("wrong answer", "no final answer")
    assert labels[3].startswith("right answer, wrong steps")
    assert all(steps for _, steps, _ in got)  # the sample without steps is never shown
    assert len(ev.widget_examples(pool, n=10)) == 6
    real = ev.widget_examples(lab.pools["test"], n=6, seed=0)
    assert len(real) == 6 and all(isinstance(p, str) and s for p, s, _ in real)
