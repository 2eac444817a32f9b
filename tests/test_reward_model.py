"""Scoring and training the reward models, on the tiny model (seconds, no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prm_lib.formatting import FormatConfig, prm_examples
from prm_lib.models import tiny_model
from prm_lib.reward_model import (
    SCORING_RULES,
    RewardModel,
    collate,
    orm_score,
    reward_loss,
    solution_score,
    solution_scores,
    step_correct_probability,
)
from prm_lib.schema import Completion, LabeledSolution, Step
from prm_lib.training import (RewardConfig, RewardTrainer, RewardRun, examples_dataset,
                              freeze_below, train_reward_model)

PROBLEM = "What is $2+2$?"
STEPS = ["I add the numbers: $2+2$.", "That is $4$.", "So the answer is 4.\n\n# Answer\n\n4"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


def test_one_pass_equals_one_pass_per_step(tiny):
    """Step k's verdict depends only on the problem and steps 0..k, so scoring the whole
    solution at once gives what scoring each prefix separately gives."""
    rm = RewardModel(*tiny, kind="prm")
    (full,) = rm.step_probabilities([PROBLEM], [STEPS])
    assert full.shape == (3, 3)
    np.testing.assert_allclose(full.sum(1), 1, atol=1e-6)
    for k in range(len(STEPS)):
        (prefix,) = rm.step_probabilities([PROBLEM], [STEPS[: k + 1]])
        np.testing.assert_allclose(prefix[-1], full[k], atol=1e-5)


def test_batching_and_padding_do_not_change_scores(tiny):
    rm = RewardModel(*tiny, kind="prm")
    problems = [PROBLEM, "Short?", PROBLEM]
    steps = [STEPS, ["One step."], STEPS[:2]]
    together = rm.step_probabilities(problems, steps, batch_size=3)
    alone = [rm.step_probabilities([p], [s])[0] for p, s in zip(problems, steps)]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_steps_beyond_max_length_get_nan(tiny):
    rm = RewardModel(*tiny, kind="prm", format=FormatConfig(max_length=24))
    (probs,) = rm.step_probabilities([PROBLEM], [STEPS])
    assert not np.isnan(probs[0]).any() and np.isnan(probs[-1]).all()
    assert not np.isnan(solution_score(probs))


def test_scoring_rules():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    np.testing.assert_allclose(step_correct_probability(probs, "positive"), [0.9, 0.5])
    np.testing.assert_allclose(step_correct_probability(probs, "negative"), [0.7, 0.2])
    assert solution_score(probs, "product", "positive") == pytest.approx(0.45)
    assert solution_score(probs, "min", "positive") == pytest.approx(0.5)
    assert solution_score(probs, "product", "negative") == pytest.approx(0.14)
    assert solution_score(probs, "min", "negative") == pytest.approx(0.2)
    assert set(SCORING_RULES) == {
        "product, neutral = correct", "min, neutral = correct",
        "product, neutral = wrong", "min, neutral = wrong",
    }
    assert np.isnan(solution_score(np.full((2, 3), np.nan)))
    with pytest.raises(ValueError):
        solution_score(probs, "mean")


def test_loss_only_counts_label_positions(tiny):
    model, tok = tiny
    rm = RewardModel(model, tok)
    row = {"input_ids": tok("a b c d e f", add_special_tokens=False)["input_ids"],
           "label_positions": [1, 4], "labels": [2, 0]}
    batch = collate([row, {**row, "label_positions": [], "labels": []}], tok.pad_token_id)
    assert (batch["labels"] != -100).sum() == 2
    loss, (n, _) = reward_loss(model, batch, rm.token_ids)
    assert n == 2 and torch.isfinite(loss)
    # the same loss computed by hand from the full logits at those two positions
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[0, [1, 4]].float(), -1)
    expected = -(logp[0, rm.token_ids[2]] + logp[1, rm.token_ids[0]]) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def solution(rating_of_second):
    return LabeledSolution(PROBLEM, [
        Step((Completion(STEPS[0], 1),), chosen=0),
        Step((Completion(STEPS[1], rating_of_second),), chosen=0),
    ], ground_truth_answer="4")


def test_training_learns_save_load_and_resume(tmp_path):
    model, tok = tiny_model(seed=1)
    data = [solution(1), solution(-1)] * 8
    fmt = FormatConfig(max_length=64)
    examples, _ = prm_examples(tok, data, fmt)
    cfg = RewardConfig(str(tmp_path / "run"), num_train_epochs=6, per_device_train_batch_size=4,
                       learning_rate=3e-3, bf16=False, logging_steps=2, save_strategy="steps",
                       save_steps=6, disable_tqdm=True, seed=0)
    result = train_reward_model(model, tok, examples, examples[:4], args=cfg, format_config=fmt)
    assert isinstance(result, RewardRun) and result.kind == "prm"
    losses = result.history["loss"].dropna()
    assert losses.iloc[-1] < losses.iloc[0]
    assert result.history["accuracy"].dropna().iloc[-1] >= 0.5
    assert result.summary["tokens"] > 0 and result.summary["seconds"] > 0
    # the saved model scores exactly like the one in memory
    loaded = RewardModel.from_pretrained(result.model_dir)
    a = result.reward_model.step_probabilities([PROBLEM], [STEPS[:2]])[0]
    b = loaded.step_probabilities([PROBLEM], [STEPS[:2]])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.kind == "prm" and loaded.format.max_length == 64
    # resuming from the last checkpoint finishes the same schedule
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*"))
    cfg.num_train_epochs = 7
    again = train_reward_model(tiny_model(seed=1)[0], tok, examples, args=cfg,
                               format_config=fmt, resume_from_checkpoint=True)
    assert again.history["step"].max() > result.history["step"].max()


def test_same_seed_same_model(tmp_path):
    def run(name):
        model, tok = tiny_model(seed=2)
        examples, _ = prm_examples(tok, [solution(1), solution(0)] * 4, FormatConfig())
        cfg = RewardConfig(str(tmp_path / name), max_steps=3, per_device_train_batch_size=2,
                           learning_rate=1e-3, bf16=False, disable_tqdm=True, seed=3)
        return train_reward_model(model, tok, examples, args=cfg,
                                  format_config=FormatConfig()).reward_model
    a, b = run("a"), run("b")
    pa = a.step_probabilities([PROBLEM], [STEPS])[0]
    pb = b.step_probabilities([PROBLEM], [STEPS])[0]
    np.testing.assert_allclose(pa, pb, atol=1e-6)


def test_freeze_below_trains_only_the_top(tiny):
    model, _ = tiny_model(seed=0)
    n = freeze_below(model, 1)
    layers = model.get_decoder().layers
    assert all(not p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_orm_scores_the_last_step(tiny):
    rm = RewardModel(*tiny, kind="orm")
    scores = rm.score([PROBLEM, PROBLEM], [STEPS, STEPS[:1]])
    probs = rm.step_probabilities([PROBLEM], [STEPS])[0]
    assert scores[0] == pytest.approx(probs[-1, 1]) == orm_score(probs)
    assert probs.shape == (3, 2)
    assert np.isnan(orm_score(np.zeros((0, 2))))
    # one solution gives one float
    assert rm.score(PROBLEM, STEPS) == pytest.approx(scores[0])
    assert isinstance(rm.score(PROBLEM, STEPS), float)


def test_one_solution_or_a_batch(tiny):
    rm = RewardModel(*tiny, kind="prm")
    batch = rm.score([PROBLEM, PROBLEM], [STEPS, STEPS[:1]], rule="min")
    assert batch.shape == (2,)
    assert rm.score(PROBLEM, STEPS[:1], rule="min") == pytest.approx(batch[1])
    probs = rm.step_probabilities([PROBLEM], [STEPS])
    np.testing.assert_allclose(solution_scores("prm", probs), rm.score([PROBLEM], [STEPS]))


def test_bf16_setting_reaches_the_reward_loss(tmp_path):
    """With bf16 on, the decoder must really compute in bfloat16 inside the loss."""
    model, tok = tiny_model(seed=4)
    seen = []
    layer = model.get_decoder().layers[0].mlp.down_proj
    layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    examples, _ = prm_examples(tok, [solution(1)] * 2, FormatConfig())
    for bf16, expected in ((True, torch.bfloat16), (False, torch.float32)):
        seen.clear()
        cfg = RewardConfig(str(tmp_path / str(bf16)), max_steps=1, per_device_train_batch_size=2,
                           bf16=bf16, disable_tqdm=True)
        train_reward_model(model, tok, examples, args=cfg, format_config=FormatConfig())
        assert seen and seen[0] == expected


def test_bf16_scoring_computes_in_bfloat16_and_stays_close(tiny, tmp_path):
    """``bf16=True`` scores under bfloat16 autocast (as the model was trained), close to
    the exact float32 pass; the setting survives save/load, and a model saved without
    it loads as float32."""
    model, tok = tiny
    seen = []
    hook = model.get_decoder().layers[0].mlp.down_proj.register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    try:
        exact = RewardModel(model, tok, "prm").step_probabilities([PROBLEM], [STEPS])[0]
        assert seen[-1] == torch.float32
        fast_rm = RewardModel(model, tok, "prm", bf16=True)
        fast = fast_rm.step_probabilities([PROBLEM], [STEPS])[0]
        assert seen[-1] == torch.bfloat16
    finally:
        hook.remove()
    np.testing.assert_allclose(fast.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(fast, exact, atol=0.05)
    assert RewardModel.from_pretrained(fast_rm.save_pretrained(tmp_path / "fast")).bf16 is True
    plain = RewardModel(model, tok, "prm").save_pretrained(tmp_path / "plain")
    config = plain / "config.json"
    config.write_text(config.read_text().replace('"bf16": false', '"unused": 0'))
    assert RewardModel.from_pretrained(plain).bf16 is False


@pytest.mark.parametrize("bf16", [True, False])
def test_trained_reward_model_scores_as_it_was_trained(tmp_path, bf16):
    model, tok = tiny_model(seed=5)
    examples, _ = prm_examples(tok, [solution(1)] * 2, FormatConfig())
    cfg = RewardConfig(str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=2,
                       bf16=bf16, disable_tqdm=True)
    result = train_reward_model(model, tok, examples, args=cfg, format_config=FormatConfig())
    assert result.reward_model.bf16 is bf16
    assert RewardModel.from_pretrained(result.model_dir).bf16 is bf16


def test_a_saved_reward_model_is_one_hugging_face_folder(tiny, tmp_path):
    """Kind, labels, format and precision live in the model's config.json: the folder is
    what AutoModelForCausalLM loads, and nothing else is written beside it."""
    import json

    from transformers import AutoModelForCausalLM

    model, tok = tiny
    fmt = FormatConfig(max_length=40, neutral="positive")
    path = RewardModel(model, tok, "orm", fmt, bf16=True).save_pretrained(tmp_path / "orm")
    assert not (path / "reward_model.json").exists()
    entry = json.loads((path / "config.json").read_text())["reward_model"]
    assert entry["kind"] == "orm" and entry["labels"] == [" -", " +"] and entry["bf16"]
    assert AutoModelForCausalLM.from_pretrained(path).config.reward_model["format"][
        "max_length"] == 40
    loaded = RewardModel.from_pretrained(path)
    assert (loaded.kind, loaded.format, loaded.labels, loaded.bf16) == (
        "orm", fmt, (" -", " +"), True)


def test_an_old_folder_with_reward_model_json_still_loads(tiny, tmp_path):
    """Folders saved before the settings moved into config.json kept them in a
    reward_model.json beside a plain model."""
    import json

    model, tok = tiny
    path = tmp_path / "old"
    RewardModel(model, tok, "prm").save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    del config["reward_model"]
    (path / "config.json").write_text(json.dumps(config))
    (path / "reward_model.json").write_text(json.dumps({
        "kind": "prm", "labels": [" -", " =", " +"],
        "format": {"max_length": 24, "neutral": "neutral", "human_steps": "positive",
                   "alternatives": True, "prompt_template": "{problem}\n\n"},
        "bf16": False}))
    old = RewardModel.from_pretrained(path)
    assert old.kind == "prm" and old.format.max_length == 24 and old.bf16 is False
    np.testing.assert_allclose(
        old.step_probabilities([PROBLEM], [STEPS])[0],
        RewardModel(model, tok, "prm", FormatConfig(max_length=24)).step_probabilities(
            [PROBLEM], [STEPS])[0], atol=1e-6, equal_nan=True)


def test_a_plain_language_model_is_not_a_saved_reward_model(tiny, tmp_path):
    model, tok = tiny
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="not a saved reward model"):
        RewardModel.from_pretrained(tmp_path / "lm")


def test_reward_trainer_is_a_class_to_subclass(tmp_path):
    """The trainer is importable and subclassable; train_reward_model takes a subclass."""
    seen = []

    class Counting(RewardTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            seen.append(int((inputs["labels"] != -100).sum()))
            return super().compute_loss(model, inputs, *args, **kwargs)

    model, tok = tiny_model(seed=6)
    examples, _ = prm_examples(tok, [solution(1)] * 4, FormatConfig())
    cfg = RewardConfig(str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=2,
                       bf16=False, disable_tqdm=True)
    train_reward_model(model, tok, examples, args=cfg, format_config=FormatConfig(),
                       trainer_class=Counting)
    assert seen == [4, 4]  # two steps of two examples of two labeled steps each


def test_examples_become_a_dataset_and_warmup_rounds_down(tmp_path):
    _, tok = tiny_model(seed=0)
    examples, _ = prm_examples(tok, [solution(1), solution(-1)], FormatConfig())
    ds = examples_dataset(examples)
    assert ds.column_names == ["input_ids", "label_positions", "labels"]
    assert ds[1]["labels"] == examples[1].labels
    cfg = RewardConfig(str(tmp_path), warmup_ratio=0.05, bf16=False)
    assert [cfg.get_warmup_steps(n) for n in (3, 19, 20, 59, 60)] == [0, 0, 1, 2, 3]
    assert RewardConfig(str(tmp_path), warmup_steps=4, bf16=False).get_warmup_steps(100) == 4
    with pytest.raises(ValueError, match="loss must be"):
        RewardConfig(str(tmp_path), loss="hinge", bf16=False)
