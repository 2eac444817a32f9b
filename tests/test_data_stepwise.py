"""The stepwise-critic layout: small written files, then the real phase-1 data."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from prm_lib.data import DataFormatError, load_prm800k, read_stepwise_critic
from prm_lib.splits import LeakError, is_math500

P, Q = "What is $2+2$?", "What is $3+3$?"


def row(problem, prefix, text, rating, *, human=False, preferred=False, solution=False,
        answer=None):
    return {"instruction": problem, "responses": list(prefix), "next_response": text,
            "answer": answer, "is_human_response": human, "is_solution": solution,
            "is_preferred_response": preferred, "rating": rating}


# Two solutions of P share their first position text; one of Q stops with no choice.
ROWS = [
    row(P, [], "Add.", 1.0, preferred=True),
    row(P, [], "Multiply.", -1.0),
    row(P, ["Add."], "2+2=5.", -1.0),
    row(P, ["Add."], "2+2=4.", None, human=True, preferred=True),
    row(P, ["Add.", "2+2=4."], "So 4.", 1.0, preferred=True, solution=True, answer="4"),
    row(P, [], "Add.", 1.0, preferred=True),  # a second labeler, same first step
    row(P, ["Add."], "So 4.", 0.0, preferred=True, answer="4", solution=True),
    row(Q, [], "Six? No, 7.", -1.0),
    row(Q, [], "It is 9.", -1.0),
]


def write(tmp_path, rows, name="swc.parquet"):
    path = tmp_path / name
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_rebuilds_solutions_in_order(tmp_path):
    data = read_stepwise_critic(write(tmp_path, ROWS))
    assert len(data) == 3
    a, b, c = data
    assert a.step_texts == ["Add.", "2+2=4.", "So 4.\n\n# Answer\n\n4"]
    assert a.ratings == [1, None, 1] and a.steps[1].is_human
    assert [x.text for x in a.steps[0].alternatives] == ["Multiply."]
    assert a.finish_reason == "solution" and a.final_answer == "4"
    assert b.step_texts == ["Add.", "So 4.\n\n# Answer\n\n4"] and b.ratings == [1, 0]
    assert c.trajectory == [] and c.finish_reason == "found_error"
    assert len(c.steps[0].alternatives) == 2
    assert a.source.endswith("rows 0-4") and b.source.endswith("rows 5-6")
    rep = data.reports[0]
    assert rep.counts == {"rated step": 8, "labeler-written step": 1} and rep.accounted


def test_back_to_back_sessions_with_the_same_first_step_are_split(tmp_path):
    rows = [row(P, [], "Add.", 1.0, preferred=True), row(P, [], "Add.", 1.0, preferred=True)]
    data = read_stepwise_critic(write(tmp_path, rows))
    assert [s.step_texts for s in data] == [["Add."], ["Add."]]


@pytest.mark.parametrize(
    "bad, message",
    [
        (row(P, [], "Add.", 3.0), "unknown rating 3.0"),
        (row(P, [], "   ", 1.0), "next_response is empty"),
        (row(P, ["Never chosen."], "x", 1.0), "do not continue the solution"),
    ],
)
def test_bad_rows_raise_with_row_number(tmp_path, bad, message):
    path = write(tmp_path, ROWS[:5] + [bad] + ROWS[5:])
    with pytest.raises(DataFormatError, match=message) as info:
        read_stepwise_critic(path)
    assert "row 5" in str(info.value)


def test_skip_mode_accounts_for_every_row(tmp_path):
    rows = ROWS[:2] + [row(P, [], "Add.", 7.0)] + ROWS[2:] + [row(Q, ["ghost"], "x", 1.0)]
    with pytest.warns(UserWarning, match="2 skipped"):
        data = read_stepwise_critic(write(tmp_path, rows), on_error="skip")
    rep = data.reports[0]
    assert len(data) == 3 and rep.total == len(rows) and rep.accounted
    assert rep.counts["skipped"] == 2


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, [{k: v for k, v in ROWS[0].items() if k != "rating"}])
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['rating'\]"):
        read_stepwise_critic(path)


# ----------------------------------------------------------------- the real phase-1 data


@pytest.fixture(scope="module")
def phase1(data_dir):
    return (
        load_prm800k("train", data_dir=data_dir, download=False),
        load_prm800k("test", data_dir=data_dir, download=False),
    )


def test_phase1_train_every_row_accounted(phase1):
    train, _ = phase1
    rep = train.reports[0]
    assert rep.total == 51_835 and rep.accounted
    assert rep.counts == {"rated step": 48_672, "labeler-written step": 2_341, "unrated step": 822}
    assert len(train.problems) == 900
    # The file's rows agree with the rebuilt solutions, candidate by candidate.
    n_candidates = sum(len(p.completions) for s in train for p in s.steps)
    n_human = sum(p.human_completion is not None for s in train for p in s.steps)
    assert n_candidates + n_human == 51_835


def test_phase1_test_and_answers_join(phase1):
    train, test = phase1
    assert len(test.problems) == 101 and test.reports[0].accounted
    assert all(is_math500(p) for p in test.problems)  # phase-1 test is MATH500 problems
    for data in (train, test):
        assert all(s.ground_truth_answer for s in data)
        assert all(s.subject and s.level in range(1, 6) for s in data)
    assert len(set(train.problems) | set(test.problems)) == 1_001


def test_phase1_trajectories_look_right(phase1):
    train, _ = phase1
    finish = Counter(s.finish_reason for s in train)
    assert finish["solution"] == 808  # rows marked is_solution, one per finished solution
    solved = [s for s in train if s.finish_reason == "solution"]
    assert all(s.final_answer is not None for s in solved)
    # No step in a rebuilt trajectory is empty, and every step before the last is a
    # continuation the labeler chose or wrote.
    assert all(t.strip() for s in train for t in s.step_texts)


def test_training_on_phase1_test_is_refused(data_dir):
    path = data_dir / "prm800k" / "phase1_test.stepwise-critic.parquet"
    with pytest.raises(LeakError, match="101 MATH500 problem"):
        load_prm800k("train", path=path, data_dir=data_dir, download=False)


def test_max_problems_keeps_the_first_problems(data_dir):
    small = load_prm800k("train", data_dir=data_dir, download=False, max_problems=5)
    assert len(small.problems) == 5
    assert all(s.ground_truth_answer for s in small)
