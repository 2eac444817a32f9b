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


def _set(path: str, value):
    """A mutation that sets the field at ``path`` (dots and [i]) of a raw line."""
    names = path.replace("[", ".").replace("]", "").split(".")
    keys = [int(k) if k.isdigit() else k for k in names]

    def mutate(obj):
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return mutate


RATING = "label.steps[0].completions[0].rating"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_set(RATING, 2), r"unknown rating 2 \(field 'label.steps\[0\].completions\[0\].rating'"),
        (_set(RATING, "good"), "unknown rating 'good'"),
        (_set(RATING, "1"), "unknown rating '1'"),
        (_set(RATING, 1.5), "unknown rating 1.5"),
        (_set(RATING, float("nan")), "unknown rating nan"),  # NaN is not "unrated" in JSON
        (_set(RATING, True), "unknown rating True"),
        (_set(RATING, [1]), "unknown rating"),
        (_set("label.steps[0].completions[0].text", "  "), "is empty"),
        (_set("label.steps[0].completions[0].text", 7), r"completions\[0\].text must be a string"),
        (_set("label.steps[0].completions[0].flagged", "yes"), r"completions\[0\].flagged must be"),
        (_set("label.steps[0].completions[1]", "a step"),
         r"completions\[1\] must be a JSON object"),
        (_set("label.steps[1]", None), r"label.steps\[1\] must be a JSON object"),
        (_set("label.steps[0].completions", {"text": "x"}), r"completions' must be a JSON array"),
        (_set("label.steps", {}), "'label.steps' must be a JSON array"),
        (lambda o: o["question"].pop("problem"), "missing field 'question.problem'"),
        (_set("question.problem", ["What?"]), "question.problem must be a string, got list"),
        (_set("question", "What?"), "'question' must be a JSON object"),
        (lambda o: o.pop("label"), "missing field 'label'"),
        (_set("label.steps[0].chosen_completion", 7), "chosen_completion 7"),
        (_set("label.steps[0].chosen_completion", "0"), "chosen_completion must be an integer"),
        (_set("label.steps[0].chosen_completion", False), "chosen_completion must be an integer"),
        (_set("label.steps[0].completions", []), "no completions"),
        (_set("label.steps[1].human_completion", {"txt": "x"}), "human_completion.text"),
        (_set("label.steps[1].human_completion", ""), "human_completion is empty"),
        (_set("label.finish_reason", "tired"), "unknown label.finish_reason"),
        (_set("label.finish_reason", ["solution"]), "unknown label.finish_reason"),
        (_set("label.total_time", "1234"), "label.total_time must be an integer"),
        (_set("generation", 2.5), "generation must be an integer"),
        (_set("question.pre_generated_verifier_score", {"p": 1}),
         "pre_generated_verifier_score must be a finite number"),
        (_set("question.pre_generated_verifier_score", ""),
         "pre_generated_verifier_score must be a finite number"),
        (_set("question.pre_generated_verifier_score", float("inf")),
         "pre_generated_verifier_score must be a finite number"),
        (_set("question.pre_generated_verifier_score", 10 ** 400),
         "pre_generated_verifier_score must be a finite number"),
        (_set("question.pre_generated_steps", "one step"), "pre_generated_steps must be a list"),
        (_set("question.pre_generated_steps", ["a", 2]), r"pre_generated_steps\[1\] must be"),
        (_set("question.ground_truth_answer", 4), "ground_truth_answer must be a string"),
        (_set("labeler", {"id": 1}), "labeler must be a string"),
        (_set("is_quality_control_question", "no"), "is_quality_control_question must be"),
        (_set("question.problem", "What is \ud800?"), "problem is not valid UTF-8"),
    ],
)
def test_bad_lines_raise_with_file_and_line(tmp_path, mutate, message):
    bad = json.loads(json.dumps(PHASE1))
    mutate(bad)
    path = write_jsonl(tmp_path / "bad.jsonl", [PHASE1, bad])
    with pytest.raises(DataFormatError, match=message) as info:
        read_raw_jsonl(path)
    assert "bad.jsonl:2" in str(info.value)


def test_integral_numbers_and_flags_are_read_as_such(tmp_path):
    line = json.loads(json.dumps(PHASE1))
    line["label"]["steps"][0]["completions"][0]["rating"] = 1.0  # a float writer's 1
    line["label"]["steps"][0]["chosen_completion"] = 0.0
    line["question"]["pre_generated_verifier_score"] = 1  # an int score is a number
    line["is_quality_control_question"] = True
    (s,) = read_raw_jsonl(write_jsonl(tmp_path / "ok.jsonl", [line]))
    assert s.steps[0].completions[0].rating == 1 and type(s.steps[0].chosen) is int
    assert s.pre_generated_verifier_score == 1.0 and s.is_quality_control


def test_undecodable_bytes_name_the_line(tmp_path):
    lines = write_jsonl(tmp_path / "bytes.jsonl", [PHASE1, PHASE1]).read_bytes().splitlines()
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[1].replace(b"What is", b"What \xff is") + b"\n")
    with pytest.raises(DataFormatError, match=r"bytes.jsonl:2: question.problem is not valid"):
        read_raw_jsonl(path)


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "broken.jsonl", [PHASE1, '{"question": {"problem": "x"', PHASE2])
    with pytest.raises(DataFormatError, match=r"broken.jsonl:2: not valid JSON"):
        read_raw_jsonl(path)


def test_skip_mode_counts_everything_and_warns(tmp_path):
    bad_rating = json.loads(json.dumps(PHASE1))
    bad_rating["label"]["steps"][0]["completions"][0]["rating"] = 5
    nan_rating = json.loads(json.dumps(PHASE1))
    nan_rating["label"]["steps"][0]["completions"][0]["rating"] = float("nan")
    bad_score = json.loads(json.dumps(PHASE2))
    bad_score["question"]["pre_generated_verifier_score"] = {"p": 0.5}
    path = write_jsonl(tmp_path / "mixed.jsonl", [PHASE1, "not json", "", bad_rating, PHASE2,
                                                  "[1]", nan_rating, bad_score])
    with pytest.warns(UserWarning, match="skipped bad input"):
        data = read_raw_jsonl(path, on_error="skip")
    report = data.reports[0]
    assert len(data) == 2
    assert report.total == 8 and report.accounted
    assert report.counts == {"solution": 2, "blank": 1, "skipped": 5}
    assert sum(report.skipped.values()) == 5
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
