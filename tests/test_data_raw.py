"""The official raw PRM800K layout, on small files the tests write themselves."""

from __future__ import annotations

import json

import pytest

from prm_lib.data import DataFormatError, load_prm800k, read_raw_jsonl
from prm_lib.splits import LeakError

from .conftest import completion, raw_line, write_jsonl

PROBLEM = "What is $2+2$?"

# Phase 1: alternatives at each position, a labeler-written step, then the solution.
PHASE1 = raw_line(
    PROBLEM,
    [
        {
            "completions": [
                completion("I add the numbers.", 1),
                completion("I multiply the numbers.", -1),
                completion("Let me think.", 0, flagged=True),
            ],
            "human_completion": None,
            "chosen_completion": 0,
        },
        {
            "completions": [completion("$2+2=5$.", -1), completion("$2+2=22$.", -1)],
            "human_completion": "$2+2=4$.",
            "chosen_completion": None,
        },
        {
            "completions": [completion("So the answer is 4.\n\n# Answer\n\n4", 1)],
            "human_completion": None,
            "chosen_completion": 0,
        },
    ],
)

# Phase 2: one pre-generated step per position, labeled up to the first error.
PRE = ["I add: $2+2$.", "That is $5$.", "So the answer is 5.\n\n# Answer\n\n5"]
PHASE2 = raw_line(
    PROBLEM,
    [
        {"completions": [completion(PRE[0], 1)], "human_completion": None, "chosen_completion": 0},
        {"completions": [completion(PRE[1], -1)], "human_completion": None,
         "chosen_completion": None},
    ],
    finish="found_error",
    generation=3,
    pre_generated_steps=PRE,
)


def test_phase1_alternatives_and_human_steps(tmp_path):
    data = read_raw_jsonl(write_jsonl(tmp_path / "p1.jsonl", [PHASE1]))
    (s,) = data
    assert s.phase == 1 and s.generation is None and s.finish_reason == "solution"
    assert s.step_texts == ["I add the numbers.", "$2+2=4$.", "So the answer is 4.\n\n# Answer\n\n4"]
    assert s.ratings == [1, None, 1]  # the labeler-written step carries no rating
    assert [p.is_human for p in s.steps] == [False, True, False]
    assert [c.rating for c in s.steps[0].alternatives] == [-1, 0]
    assert s.steps[0].completions[2].flagged
    assert [c.text for c in s.steps[1].alternatives] == ["$2+2=5$.", "$2+2=22$."]
    assert s.final_answer == "4" and s.ground_truth_answer == "4"
    assert s.first_error is None
    assert s.n_rated == 6
    assert s.source == "p1.jsonl:1"
    assert data.reports[0].counts == {"solution": 1} and data.reports[0].accounted


def test_phase2_found_error_keeps_the_bad_step(tmp_path):
    (s,) = read_raw_jsonl(write_jsonl(tmp_path / "p2.jsonl", [PHASE2]))
    assert s.phase == 2 and s.generation == 3 and s.finish_reason == "found_error"
    # The rated -1 step ends the trajectory even though nothing was "chosen" there.
    assert s.step_texts == PRE[:2]
    assert s.ratings == [1, -1]
    assert s.first_error == 1
    assert s.steps[1].alternatives == ()
    assert s.final_answer is None


def test_phase1_stop_with_several_candidates_keeps_them_as_alternatives(tmp_path):
    line = raw_line(PROBLEM, [
        {"completions": [completion("Good.", 1)], "human_completion": None, "chosen_completion": 0},
        {"completions": [completion("Bad.", -1), completion("Worse.", -1)],
         "human_completion": None, "chosen_completion": None},
    ], finish="found_error")
    (s,) = read_raw_jsonl(write_jsonl(tmp_path / "x.jsonl", [line]))
    assert s.step_texts == ["Good."]
    assert [c.text for c in s.steps[1].alternatives] == ["Bad.", "Worse."]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda o: o["label"]["steps"][0]["completions"][0].update(rating=2), "unknown rating 2"),
        (lambda o: o["label"]["steps"][0]["completions"][0].update(rating="good"), "unknown rating"),
        (lambda o: o["label"]["steps"][0]["completions"][0].update(text="  "), "is empty"),
        (lambda o: o["question"].pop("problem"), "missing field 'problem'"),
        (lambda o: o.pop("label"), "missing field 'label'"),
        (lambda o: o["label"]["steps"][0].update(chosen_completion=7), "chosen_completion 7"),
        (lambda o: o["label"]["steps"][0].update(completions=[]), "no completions"),
        (lambda o: o["label"].update(finish_reason="tired"), "unknown finish_reason"),
    ],
)
def test_bad_lines_raise_with_file_and_line(tmp_path, mutate, message):
    bad = json.loads(json.dumps(PHASE1))
    mutate(bad)
    path = write_jsonl(tmp_path / "bad.jsonl", [PHASE1, bad])
    with pytest.raises(DataFormatError, match=message) as info:
        read_raw_jsonl(path)
    assert "bad.jsonl:2" in str(info.value)


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "broken.jsonl", [PHASE1, '{"question": {"problem": "x"', PHASE2])
    with pytest.raises(DataFormatError, match=r"broken.jsonl:2: not valid JSON"):
        read_raw_jsonl(path)


def test_skip_mode_counts_everything_and_warns(tmp_path):
    bad_rating = json.loads(json.dumps(PHASE1))
    bad_rating["label"]["steps"][0]["completions"][0]["rating"] = 5
    path = write_jsonl(tmp_path / "mixed.jsonl", [PHASE1, "not json", "", bad_rating, PHASE2, "[1]"])
    with pytest.warns(UserWarning, match="skipped bad input"):
        data = read_raw_jsonl(path, on_error="skip")
    report = data.reports[0]
    assert len(data) == 2
    assert report.total == 6 and report.accounted
    assert report.counts == {"solution": 2, "blank": 1, "skipped": 3}
    assert sum(report.skipped.values()) == 3
    assert "mixed.jsonl:2" in report.summary()


def test_load_prm800k_reads_a_given_raw_file_and_guards_training(tmp_path, data_dir):
    path = write_jsonl(tmp_path / "phase1_train.jsonl", [PHASE1, PHASE2])
    data = load_prm800k("train", path=path, join_answers=False)
    assert len(data) == 2
    # A MATH500 problem in a training file is refused, whatever its spacing.
    m500 = json.loads((data_dir / "math" / "math500_test.jsonl").open().readline())["problem"]
    leak = raw_line("  " + m500.replace(" ", "  ") + "\n", PHASE1["label"]["steps"])
    path = write_jsonl(tmp_path / "leaky.jsonl", [PHASE1, leak])
    with pytest.raises(LeakError, match="1 MATH500 problem"):
        load_prm800k("train", path=path, join_answers=False)
    # The same file is fine as test data.
    assert len(load_prm800k("test", path=path, join_answers=False)) == 2
