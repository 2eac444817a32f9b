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
    reward_loss,
    solution_score,
    step_correct_probability,
)
from prm_lib.schema import Completion, LabeledSolution, Step
from prm_lib.training import TrainConfig, freeze_below, train_reward_model

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
    cfg = TrainConfig(str(tmp_path / "run"), epochs=6, batch_size=4, learning_rate=3e-3,
                      bf16=False, logging_steps=2, save_steps=6, progress=False, seed=0)
    result = train_reward_model(model, tok, examples, examples[:4], config=cfg, format_config=fmt)
    losses = result.history["loss"].dropna()
    assert losses.iloc[-1] < losses.iloc[0]
    assert result.history["accuracy"].dropna().iloc[-1] >= 0.5
    assert result.tokens > 0 and result.seconds > 0
    # the saved model scores exactly like the one in memory
    loaded = RewardModel.load(result.path)
    a = result.reward_model.step_probabilities([PROBLEM], [STEPS[:2]])[0]
    b = loaded.step_probabilities([PROBLEM], [STEPS[:2]])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.kind == "prm" and loaded.format.max_length == 64
    # resuming from the last checkpoint finishes the same schedule
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*"))
    cfg.resume = True
    cfg.epochs = 7
    again = train_reward_model(tiny_model(seed=1)[0], tok, examples, config=cfg,
                               format_config=fmt)
    assert again.history["step"].max() > result.history["step"].max()


def test_same_seed_same_model(tmp_path):
    def run(name):
        model, tok = tiny_model(seed=2)
        examples, _ = prm_examples(tok, [solution(1), solution(0)] * 4, FormatConfig())
        cfg = TrainConfig(str(tmp_path / name), max_steps=3, batch_size=2, learning_rate=1e-3,
                          bf16=False, progress=False, seed=3)
        return train_reward_model(model, tok, examples, config=cfg,
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
    assert scores[0] == pytest.approx(probs[-1, 1])
    assert probs.shape == (3, 2)


def test_bf16_setting_reaches_the_reward_loss(tmp_path):
    """With bf16 on, the decoder must really compute in bfloat16 inside the loss."""
    model, tok = tiny_model(seed=4)
    seen = []
    layer = model.get_decoder().layers[0].mlp.down_proj
    layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    examples, _ = prm_examples(tok, [solution(1)] * 2, FormatConfig())
    for bf16, expected in ((True, torch.bfloat16), (False, torch.float32)):
        seen.clear()
        cfg = TrainConfig(str(tmp_path / str(bf16)), max_steps=1, batch_size=2, bf16=bf16,
                          progress=False)
        train_reward_model(model, tok, examples, config=cfg, format_config=FormatConfig())
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
    assert RewardModel.load(fast_rm.save(tmp_path / "fast")).bf16 is True
    plain = RewardModel(model, tok, "prm").save(tmp_path / "plain")
    meta = (plain / "reward_model.json")
    meta.write_text(meta.read_text().replace('"bf16": false', '"unused": 0'))
    assert RewardModel.load(plain).bf16 is False


@pytest.mark.parametrize("bf16", [True, False])
def test_trained_reward_model_scores_as_it_was_trained(tmp_path, bf16):
    model, tok = tiny_model(seed=5)
    examples, _ = prm_examples(tok, [solution(1)] * 2, FormatConfig())
    cfg = TrainConfig(str(tmp_path / "run"), max_steps=1, batch_size=2, bf16=bf16,
                      progress=False)
    result = train_reward_model(model, tok, examples, config=cfg, format_config=FormatConfig())
    assert result.reward_model.bf16 is bf16
    assert RewardModel.load(result.path).bf16 is bf16
