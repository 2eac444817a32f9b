"""Generating best-of-N pools: the step format, the table, seeds, resuming, grading.

Two models: the random tiny Llama of :func:`prm_lib.models.tiny_model` (random tokens, so
every sample is different and seeds matter), and a *scripted* one, the same network with
its logits replaced so it can only write ``x = 2``, ``# Answer`` and then 4 or 5 (even
odds), so answers, steps and grades have known values.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import LlamaForCausalLM

from prm_lib import generation as gen
from prm_lib.best_of_n import majority_vote
from prm_lib.data import DataFormatError
from prm_lib.generation import (
    GENERATION_COLUMNS,
    choose_backend,
    generate_samples,
    join_steps,
    split_steps,
)
from prm_lib.grading import extract_answer
from prm_lib.models import tiny_model

PROBLEMS = ["What is 1+1?", "Solve $x^2 = 4$ for $x > 0$.", "Wie viel ist 2·3? ∑ ≤ π"]
KW = {"max_new_tokens": 24, "batch_size": 3, "progress": False, "backend": "transformers"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


# --------------------------------------------------------------------------- steps


@pytest.mark.parametrize("text, steps", [
    ("a\nb\n# Answer\n\n42", ["a", "b", "# Answer\n\n42"]),
    # blank lines between steps dropped, trailing whitespace stripped, answer step kept whole
    ("\n\nFirst step.  \n\n\nSecond step.\t\n# Answer\n\n42  \n\n", ["First step.",
                                                                   "Second step.",
                                                                   "# Answer\n\n42"]),
    # unicode and LaTeX survive untouched
    (("Let $x = \\frac{1}{2}$ — so $x^2 = \\tfrac14$.\nÄhnlich: ∑ ≤ π\n"
      "# Answer\n\n\\frac{1}{4}"),
     ["Let $x = \\frac{1}{2}$ — so $x^2 = \\tfrac14$.", "Ähnlich: ∑ ≤ π",
      "# Answer\n\n\\frac{1}{4}"]),
    # no answer: every line is a step
    ("Step one\nStep two, cut off mid-", ["Step one", "Step two, cut off mid-"]),
    ("", []),
    # everything after the first heading belongs to the answer step
    ("s\n# Answer\n\n3\n# Answer\n\n4", ["s", "# Answer\n\n3\n# Answer\n\n4"]),
    # an answer heading with nothing below it is still the last step
    ("s\n# Answer\n", ["s", "# Answer"]),
])
def test_split_steps(text, steps):
    assert split_steps(text) == steps
    # The answer is the same whether read from the text or from the rejoined steps.
    assert extract_answer(join_steps(split_steps(text))) == extract_answer(text)


def test_join_steps_is_the_inverse():
    steps = ["Let $y = 3$.", "Then $2y = 6$ — done.", "# Answer\n\n6"]
    assert join_steps(steps) == "Let $y = 3$.\nThen $2y = 6$ — done.\n# Answer\n\n6"
    assert split_steps(join_steps(steps)) == steps
    assert join_steps([]) == ""


# --------------------------------------------------------------------------- table, seeds


def test_layout_and_dtypes(tiny):
    model, tok = tiny
    table = generate_samples(model, tok, PROBLEMS, 4, answers=["2", "2", "6"], **KW)
    assert list(table.columns) == list(GENERATION_COLUMNS)
    assert len(table) == 12
    assert table["problem"].tolist() == [p for p in PROBLEMS for _ in range(4)]
    assert table["sample_id"].tolist() == [0, 1, 2, 3] * 3
    assert table["sample_id"].dtype == np.int64 and table["n_tokens"].dtype == np.int64
    assert table["is_correct"].dtype == bool
    assert all(isinstance(s, list) and all(isinstance(x, str) for x in s) for s in table["steps"])
    assert set(table["finish_reason"]) <= {"eos", "length"}
    assert table["n_tokens"].between(1, 24).all()
    # a random model almost never ends a sample: cut-off samples used every token
    cut = table["finish_reason"] == "length"
    assert cut.sum() >= 10 and (table.loc[cut, "n_tokens"] == 24).all()
    # random text has no answer, so nothing is correct
    assert table["answer"].isna().all() and not table["is_correct"].any()
    assert table.attrs["generation"]["backend"] == "transformers"
    assert table.attrs["generation"]["generated"] == 12


def test_without_answers_is_correct_is_missing(tiny):
    table = generate_samples(*tiny, PROBLEMS[:1], 2, **KW)
    assert str(table["is_correct"].dtype) == "boolean"
    assert table["is_correct"].isna().all()


def test_same_seed_same_samples(tiny, tmp_path):
    model, tok = tiny
    torch.manual_seed(123)
    before = torch.rand(1)
    a = generate_samples(model, tok, PROBLEMS, 4, seed=7, out_path=tmp_path / "a.jsonl", **KW)
    b = generate_samples(model, tok, PROBLEMS, 4, seed=7, **KW)
    c = generate_samples(model, tok, PROBLEMS, 4, seed=8, **KW)
    pd.testing.assert_frame_equal(a, b)

    def texts(table):
        return [join_steps(s) for s in table["steps"]]

    assert texts(a) != texts(c)
    # every sample differs from the others (the seed is not reused across batches)
    assert len(set(texts(a))) == 12
    # the caller's torch RNG is untouched
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)


def test_batching_does_not_change_samples(tiny):
    model, tok = tiny
    a = generate_samples(model, tok, PROBLEMS, 4, seed=5, **KW)
    b = generate_samples(model, tok, PROBLEMS, 4, seed=5, **{**KW, "batch_size": 5})
    # other problems, in another order: each problem's samples stay the same
    c = generate_samples(model, tok, [PROBLEMS[2], PROBLEMS[1]], 4, seed=5, **KW)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(c, pd.concat([a.iloc[8:], a.iloc[4:8]], ignore_index=True))


def test_the_models_generation_config_does_not_reshape_sampling(tiny, monkeypatch):
    """Settings a model may ship (top-k, penalties, a minimum length) are switched off."""
    model, tok = tiny
    plain = generate_samples(model, tok, PROBLEMS[:2], 2, **KW)
    config = copy.deepcopy(model.generation_config)
    config.update(do_sample=True, temperature=0.3, top_k=5, repetition_penalty=1.5,
                  no_repeat_ngram_size=2, min_new_tokens=20)
    monkeypatch.setattr(model, "generation_config", config)
    pd.testing.assert_frame_equal(generate_samples(model, tok, PROBLEMS[:2], 2, **KW), plain)


def test_the_sampler_draws_from_softmax_with_temperature_and_top_p():
    n = 4000  # rows, each with its own seed: one draw per sample stream
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).expand(n, 4)

    def frequencies(temperature, top_p):
        out = gen._RowSampler(list(range(n)), temperature, top_p)(None, logits.clone())
        assert ((out == 0).sum(1) == 1).all() and (torch.isinf(out).sum(1) == 3).all()
        return torch.bincount(out.argmax(1), minlength=4) / n

    np.testing.assert_allclose(frequencies(1.0, 1.0), [0.5, 0.3, 0.15, 0.05], atol=0.03)
    hot = torch.softmax(logits[0] / 2.0, 0)
    np.testing.assert_allclose(frequencies(2.0, 1.0), hot, atol=0.03)
    # top_p=0.7: the nucleus is {0.5, 0.3}, renormalised to 5/8, 3/8
    np.testing.assert_allclose(frequencies(1.0, 0.7), [0.625, 0.375, 0, 0], atol=0.03)


def test_auto_falls_back_to_transformers(tiny, monkeypatch):
    if importlib.util.find_spec("vllm") is None:
        assert choose_backend("auto", "HuggingFaceTB/SmolLM2-135M") == "transformers"
        table = generate_samples(*tiny, PROBLEMS[:1], 1, **{**KW, "backend": "auto"})
        assert table.attrs["generation"]["backend"] == "transformers"
        with pytest.raises(ImportError, match="pip install vllm"):
            generate_samples(*tiny, PROBLEMS[:1], 1, **{**KW, "backend": "vllm"})
    # a model given by name is loaded ("tiny" is the fixture's model, seed 0)
    by_name = generate_samples("tiny", None, PROBLEMS[:1], 2, **{**KW, "backend": "auto"})
    pd.testing.assert_frame_equal(by_name, generate_samples(*tiny, PROBLEMS[:1], 2, **KW))
    # Where vllm could run, only a model it can load itself goes to it.
    monkeypatch.setattr(gen, "_vllm_usable", lambda: True)
    assert choose_backend("auto", "HuggingFaceTB/SmolLM2-135M") == "vllm"
    assert choose_backend("auto", tiny[0]) == "transformers"
    assert choose_backend("auto", "tiny") == "transformers"
    assert choose_backend("transformers", "HuggingFaceTB/SmolLM2-135M") == "transformers"


# --------------------------------------------------------------------------- resuming


def count_generate_calls(model, monkeypatch) -> list:
    calls = []
    original = model.generate

    def counted(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counted)
    return calls


def test_resume_after_a_kill_gives_the_uninterrupted_table(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    full = generate_samples(model, tok, PROBLEMS, 4, seed=3, out_path=tmp_path / "full.jsonl",
                            **KW)
    lines = (tmp_path / "full.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    first = json.loads(lines[0])
    assert list(first) == ["problem", "sample_id", "text", "steps", "answer", "is_correct",
                           "finish_reason", "n_tokens"]
    assert first["steps"] == split_steps(first["text"]) == full["steps"][0]

    # Killed while writing sample 6: five whole lines and half of the sixth, no newline.
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2],
                    encoding="utf-8")
    calls = count_generate_calls(model, monkeypatch)
    with pytest.warns(UserWarning, match=r"part.jsonl:6: the last line is cut off"):
        resumed = generate_samples(model, tok, PROBLEMS, 4, seed=3, out_path=part, **KW)
    pd.testing.assert_frame_equal(resumed, full)
    assert resumed.attrs["generation"]["resumed"] == 5
    assert resumed.attrs["generation"]["generated"] == 7
    # only the 7 missing samples ran, in batches of 3
    assert calls == [3, 3, 1]
    # the file is whole again: every line parses and the set of samples is complete
    records = [json.loads(x) for x in part.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["problem"], r["sample_id"]) for r in records) == sorted(
        (r["problem"], r["sample_id"]) for r in map(json.loads, lines))

    # A complete file is read back without generating anything.
    calls.clear()
    again = generate_samples(model, tok, PROBLEMS, 4, seed=3, out_path=part, **KW)
    pd.testing.assert_frame_equal(again, full)
    assert calls == [] and again.attrs["generation"]["generated"] == 0


def test_resume_fills_holes_and_extends_pools(tiny, tmp_path):
    model, tok = tiny
    full = generate_samples(model, tok, PROBLEMS, 4, seed=3, **KW)
    path = tmp_path / "s.jsonl"
    generate_samples(model, tok, PROBLEMS[:2], 4, seed=3, out_path=path, **KW)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n", encoding="utf-8")  # a hole
    # more problems than the file has: appending problems keeps the earlier batches
    table = generate_samples(model, tok, PROBLEMS, 4, seed=3, out_path=path, **KW)
    pd.testing.assert_frame_equal(table, full)
    assert table.attrs["generation"]["resumed"] == 7


def test_resume_after_a_lost_final_newline(tiny, tmp_path):
    model, tok = tiny
    path = tmp_path / "s.jsonl"
    full = generate_samples(model, tok, PROBLEMS[:1], 3, out_path=path, **KW)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:2]), encoding="utf-8")  # whole JSON, no newline
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is dropped
        table = generate_samples(model, tok, PROBLEMS[:1], 3, out_path=path, **KW)
    pd.testing.assert_frame_equal(table, full)
    assert table.attrs["generation"]["generated"] == 1
    assert path.read_text(encoding="utf-8").splitlines() == lines


def test_bad_line_inside_the_file_is_an_error(tiny, tmp_path):
    model, tok = tiny
    path = tmp_path / "s.jsonl"
    generate_samples(model, tok, PROBLEMS[:1], 3, out_path=path, **KW)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], lines[1][:20], lines[2]]) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"s.jsonl:2: not valid JSON"):
        generate_samples(model, tok, PROBLEMS[:1], 3, out_path=path, **KW)
    # a valid JSON line that is not a sample record is an error even when last
    path.write_text(lines[0] + "\n" + json.dumps({"problem": PROBLEMS[0]}) + "\n")
    with pytest.raises(DataFormatError, match=r"s.jsonl:2: missing field"):
        generate_samples(model, tok, PROBLEMS[:1], 3, out_path=path, **KW)


def test_out_file_of_another_run_is_refused(tiny, tmp_path):
    model, tok = tiny
    path = tmp_path / "s.jsonl"
    generate_samples(model, tok, PROBLEMS[:2], 1, out_path=path, **KW)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"1 problem\(s\) that are not in problems"):
        generate_samples(model, tok, PROBLEMS[:1], 1, out_path=path, **KW)
    assert path.read_bytes() == before


def test_argument_errors(tiny):
    model, tok = tiny
    cases = [
        ({"problems": PROBLEMS, "n_samples": 0}, "n_samples"),
        ({"problems": [], "n_samples": 1}, "problems is empty"),
        ({"problems": PROBLEMS, "n_samples": 1, "answers": ["2"]}, "answers has 1 entries"),
        ({"problems": ["a", "a"], "n_samples": 1}, "duplicates"),
        ({"problems": PROBLEMS, "n_samples": 1, "prompt_template": "Q: "}, r"\{problem\}"),
        ({"problems": PROBLEMS, "n_samples": 1, "temperature": 0.0}, "temperature"),
        ({"problems": PROBLEMS, "n_samples": 1, "grader": lambda a, t: True}, "grader needs"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            generate_samples(model, tok, **kwargs, **KW)
    with pytest.raises(ValueError, match="backend must be one of"):
        generate_samples(model, tok, PROBLEMS, 1, **{**KW, "backend": "jax"})


# --------------------------------------------------------------------------- grading


class Scripted(LlamaForCausalLM):
    """Writes ``script[k]`` as token ``k`` of every sample, choosing evenly when a step
    allows several tokens; ends with EOS after the script."""

    script: ClassVar[list[list[int]]] = []

    def forward(self, input_ids=None, **kwargs):
        out = super().forward(input_ids=input_ids, **kwargs)
        if input_ids.shape[1] > 1:  # the prompt: a new generate call starts
            self.step = 0
        allowed = self.script[self.step] if self.step < len(self.script) else [self.eos]
        logits = torch.full_like(out.logits[:, -1], -float("inf"))
        logits[:, allowed] = 0.0
        out.logits[:, -1] = logits
        self.step += 1
        return out


@pytest.fixture(scope="module")
def scripted(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    m = Scripted(model.config)
    prefix = tok.encode("x = 2\n# Answer\n\n", add_special_tokens=False)
    four, five = (tok.encode(d, add_special_tokens=False) for d in ("4", "5"))
    assert len(four) == len(five) == 1
    m.script = [[t] for t in prefix] + [four + five]
    m.eos = tok.eos_token_id
    return m, tok, len(prefix)


def test_answers_steps_and_a_custom_grader(scripted):
    model, tok, n_prefix = scripted
    calls = []

    def grader(answer, truth):
        calls.append((answer, truth))
        return answer == truth

    table = generate_samples(model, tok, PROBLEMS[:2], 8, answers=["4", "5"], grader=grader,
                             **KW)
    assert set(table["answer"]) == {"4", "5"}  # both answers come up among 16 samples
    for row in table.itertuples():
        assert row.steps == ["x = 2", f"# Answer\n\n{row.answer}"]
        assert row.finish_reason == "eos" and row.n_tokens == n_prefix + 2
        truth = "4" if row.problem == PROBLEMS[0] else "5"
        assert row.is_correct == (row.answer == truth)
    # graded once per distinct (problem, answer), with (answer, truth)
    expected = {(a, t) for p, a in zip(table["problem"], table["answer"])
                for t in ["4" if p == PROBLEMS[0] else "5"]}
    assert sorted(calls) == sorted(expected)
    # the table feeds best-of-N evaluation directly
    result = majority_vote(table, ns=[1, 8], n_trials=5)
    assert result is not None


def test_default_grader_and_cut_off_samples(scripted):
    model, tok, n_prefix = scripted
    table = generate_samples(model, tok, PROBLEMS[:2], 8, answers=["4.0", "\\frac{10}{2}"],
                             **KW)
    np.testing.assert_array_equal(table["is_correct"],
                                  table["answer"] == np.where(table.index < 8, "4", "5"))
    # cut off right after the heading: no answer, so incorrect without asking the grader
    cut = generate_samples(model, tok, PROBLEMS[:1], 2, answers=["4"], grader=lambda a, t: 1 / 0,
                           **{**KW, "max_new_tokens": n_prefix})
    assert cut["answer"].isna().all() and not cut["is_correct"].any()
    assert (cut["finish_reason"] == "length").all() and (cut["n_tokens"] == n_prefix).all()
    assert cut["steps"][0] == ["x = 2", "# Answer"]


def test_resumed_ungraded_samples_are_graded(scripted, tmp_path):
    model, tok, _ = scripted
    path = tmp_path / "s.jsonl"
    ungraded = generate_samples(model, tok, PROBLEMS[:1], 6, out_path=path, **KW)
    assert all(json.loads(x)["is_correct"] is None for x in path.read_text().splitlines())
    graded = generate_samples(model, tok, PROBLEMS[:1], 6, answers=["5"], out_path=path, **KW)
    assert graded.attrs["generation"]["generated"] == 0
    assert graded["answer"].tolist() == ungraded["answer"].tolist()
    assert graded["is_correct"].tolist() == [a == "5" for a in ungraded["answer"]]
