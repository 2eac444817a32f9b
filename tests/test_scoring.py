"""Scoring: score functions over shared passes, and shared-prefix scoring inside the model.

First the score-function path (:func:`score_items`, :func:`score_steps`,
:func:`reuse_scores`) with hand-made causal scorers. Then shared-prefix scoring, whose
reference everywhere is the plain path: every item's sequence (prefix + candidate)
scored on its own by ``RewardModel.step_probabilities``, read at its last step. Hand-made
phase-1 trees first (alternatives at several positions, a labeler-written step, a stop
position with only alternatives, a second labeler sharing the first steps, a duplicate
session, unicode, length cuts), then real phase-1 test solutions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prm_lib.data import load_prm800k
from prm_lib.formatting import FormatConfig, encode_steps
from prm_lib.items import first_error_sets, scoring_sequences, step_items
from prm_lib.models import tiny_model
from prm_lib.reward_model import RewardModel
from prm_lib.schema import Completion, LabeledSolution, Step
from prm_lib.scoring import (first_error_step_probs, reuse_scores, score_items,
                             score_items_shared_layers, score_items_shared_prefix,
                             score_steps, shared_layers, shared_prefix_plan,
                             step_probabilities_shared)

from . import step_solutions as hand

ATOL = 1e-5  # fp32; batch composition alone moves results by ~1e-7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- score functions


def test_score_items_equals_scoring_each_item_alone():
    sols = [hand.sol_a(), hand.sol_a(), hand.sol_c(), hand.sol_d()]
    items = step_items(sols)
    calls = []
    probs = score_items(items, hand.hashed_scorer(calls), batch_size=3)
    alone = hand.hashed_scorer()([it.problem for it in items], [list(it.steps) for it in items])
    np.testing.assert_allclose(probs, [a[-1] for a in alone])
    assert probs.shape == (len(items), 3)
    assert sum(calls) == len(scoring_sequences(items)) and max(calls) <= 3


def test_score_steps_returns_every_step_and_checks_the_scorer():
    out = score_steps(["P", "P"], [["s0", "s1"], ["s0"]], hand.hashed_scorer())
    assert [o.shape for o in out] == [(2, 3), (1, 3)]
    np.testing.assert_allclose(out[1][0], out[0][0])  # read from the same pass
    with pytest.raises(ValueError, match="shape"):
        score_steps(["P"], [["s0", "s1"]], lambda p, s: [np.ones((1, 3)) / 3])
    with pytest.raises(ValueError, match="sum to 1"):
        score_steps(["P"], [["s0"]], lambda p, s: [np.ones((1, 3))])
    with pytest.raises(ValueError, match="arrays"):
        score_steps(["P"], [["s0"]], lambda p, s: [])


def test_reuse_scores_looks_up_known_items_and_scores_only_the_rest():
    sols = [hand.sol_a(), hand.sol_c(), hand.sol_d()]
    scorer = hand.hashed_scorer()
    items = step_items(sols)
    known = score_items(items, scorer)
    fe = first_error_sets(sols)
    fresh = first_error_step_probs(fe, lambda its: score_items(its, scorer))
    asked = []

    def rest(its):
        asked.extend(its)
        return score_items(its, scorer)

    reused = first_error_step_probs(fe, reuse_scores(items, known, rest))
    for a, b in zip(fresh, reused):
        np.testing.assert_allclose(a, b)
    seen = {(it.problem, it.prefix, it.text) for it in items}
    assert len(asked) < sum(len(s) for s in fe.steps)  # most were looked up
    assert all((it.problem, tuple(it.prefix), it.text) not in seen for it in asked)
    # half of the known items forgotten: those are asked for, the result is the same
    half = len(items) // 2
    asked.clear()
    again = first_error_step_probs(fe, reuse_scores(items[:half], known[:half], rest))
    for a, b in zip(fresh, again):
        np.testing.assert_allclose(a, b)
    assert asked
    with pytest.raises(ValueError, match="shape"):
        reuse_scores(items, known[:1], rest)


# --------------------------------------------------------------------------- shared prefix


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return tiny_model(seed=0)


def prm(model_and_tokenizer, max_length=4096) -> RewardModel:
    model, tok = model_and_tokenizer
    return RewardModel(model, tok, format=FormatConfig(max_length=max_length))


def C(text, rating):
    return Completion(text, rating)


PROBLEM = "Solve $x^2 = 2$ for real $x$. (Ünïcödé: √2 ≈ 1.414…, 日本語, 🎲)"


def first_labeler() -> LabeledSolution:
    """Alternatives at positions 0, 1, 2, 3; a labeler-written step at 2; an answer."""
    return LabeledSolution(PROBLEM, [
        Step((C("We have $x^2 = 2$.", 1), C("Let's guess $x = 1$.", -1),
              C("Hmm, squares…", 0)), chosen=0),
        Step((C("Wrong: $x = 2$ — since 2·2 = 2?", -1),
              C("So $x = \\pm\\sqrt{2}$.", 1)), chosen=1),
        Step((C("Thus x ≈ 1.41 ", -1),), chosen=None,
             human_completion="Both roots work: $x=\\sqrt2$ or $x=-\\sqrt2$."),
        Step((C("# Answer\n\n$\\pm\\sqrt{2}$", 1), C("# Answer\n\n2", -1)), chosen=0),
    ], finish_reason="solution", phase=1)


def second_labeler() -> LabeledSolution:
    """Shares the first step, diverges, then stops at a position with only alternatives."""
    return LabeledSolution(PROBLEM, [
        Step((C("We have $x^2 = 2$.", 1), C("Let's guess $x = 1$.", -1)), chosen=0),
        Step((C("Take square roots: $|x| = \\sqrt 2$.", 1),), chosen=0),
        Step((C("So x = √2 only.", -1), C("So x = 1.5.", -1), C("Ééé ∑∞", 0))),
    ], finish_reason="found_error", phase=1)


def other_problem() -> LabeledSolution:
    return LabeledSolution("What is 1 + 1?", [
        Step((C("1 + 1 = 2.", 1), C("1 + 1 = 3.", -1)), chosen=0),
        Step((C("# Answer\n\n2", 1),), chosen=0),
    ], finish_reason="solution", phase=1)


def hand_made() -> list[LabeledSolution]:
    return [first_labeler(), second_labeler(), first_labeler(), other_problem()]


def one_pass_per_item(rm: RewardModel, items) -> np.ndarray:
    """The plain path: each item's sequence on its own, read at its last step."""
    probs = rm.step_probabilities([it.problem for it in items], [list(it.steps) for it in items])
    return np.array([p[-1] for p in probs])


# --------------------------------------------------------------------------- the plan


def test_plan_runs_trajectories_whole_and_alternatives_as_branches():
    items = step_items(hand_made())
    plan = shared_prefix_plan(items)
    n = len(plan.sequences)
    scored = sorted(plan.trunks + [b.sequence for b in plan.branches])
    assert scored == list(range(n))  # every sequence exactly once
    # Trunks: labeler 1's trajectory, labeler 2's first stop alternative, the other
    # problem's trajectory. The duplicate session adds nothing.
    assert len(plan.trunks) == 3
    for b in plan.branches:
        steps, trunk = plan.sequences[b.sequence].steps, plan.sequences[b.trunk].steps
        assert b.trunk in plan.trunks
        assert b.shared_steps == len(steps) - 1
        assert steps[:-1] == trunk[: b.shared_steps]


# --------------------------------------------------------------------------- equality


def test_matches_score_items_on_hand_made_trees(model_and_tokenizer):
    rm = prm(model_and_tokenizer)
    items = step_items(hand_made())
    shared = score_items_shared_prefix(rm, items, progress=False)
    assert shared.shape == (len(items), 3)
    np.testing.assert_allclose(shared, score_items(items, rm.score_fn()), atol=ATOL, rtol=0)
    np.testing.assert_allclose(shared, one_pass_per_item(rm, items), atol=ATOL, rtol=0)
    np.testing.assert_allclose(shared.sum(axis=1), 1.0, atol=1e-6)


def test_batch_sizes_do_not_change_results(model_and_tokenizer):
    rm = prm(model_and_tokenizer)
    items = step_items(hand_made())
    a = score_items_shared_prefix(rm, items, batch_size=1, branch_batch_size=1, progress=False)
    b = score_items_shared_prefix(rm, items, batch_size=16, branch_batch_size=64,
                                  progress=False)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def _item_ends(tok, items) -> np.ndarray:
    return np.array([encode_steps(tok, it.problem, it.steps)[1][-1] for it in items])


@pytest.mark.parametrize("where", ["before every end", "middle", "on a step end",
                                   "just after a step end"])
def test_max_length_cuts_like_step_probabilities(model_and_tokenizer, where):
    _, tok = model_and_tokenizer
    items = step_items(hand_made())
    ends = np.sort(np.unique(_item_ends(tok, items)))
    mid = ends[len(ends) // 2]
    limit = {"before every end": int(ends[0]), "middle": int(mid) - 3,
             "on a step end": int(mid), "just after a step end": int(mid) + 1}[where]
    rm = prm(model_and_tokenizer, max_length=limit)
    shared = score_items_shared_prefix(rm, items, progress=False)
    ref = one_pass_per_item(rm, items)
    cut = _item_ends(tok, items) >= limit
    assert cut.any()
    assert where == "before every end" or not cut.all()
    np.testing.assert_array_equal(np.isnan(shared).any(axis=1), cut)
    np.testing.assert_array_equal(np.isnan(shared), np.isnan(ref))
    np.testing.assert_allclose(shared[~cut], ref[~cut], atol=ATOL, rtol=0)


def test_position_ids_continue_after_the_prefix(model_and_tokenizer):
    """A model with learned absolute positions (GPT-2) would break on wrong ones."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tok = model_and_tokenizer
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2,
                                      n_positions=1024, bos_token_id=tok.bos_token_id,
                                      eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id))
    rm = RewardModel(gpt2, tok, format=FormatConfig(max_length=1024))
    items = step_items(hand_made())
    np.testing.assert_allclose(score_items_shared_prefix(rm, items, progress=False),
                               one_pass_per_item(rm, items), atol=ATOL, rtol=0)


def test_real_phase1_test_solutions(model_and_tokenizer, data_dir):
    test = load_prm800k("test", data_dir=data_dir, download=False)
    items = step_items(test[:10])
    assert {"trajectory", "alternative"} <= {it.role for it in items}
    rm = prm(model_and_tokenizer, max_length=512)  # the default; cuts some long ones
    shared = score_items_shared_prefix(rm, items, progress=False)
    ref = one_pass_per_item(rm, items)
    assert np.isnan(ref).any() and not np.isnan(ref).all()
    np.testing.assert_array_equal(np.isnan(shared), np.isnan(ref))
    np.testing.assert_allclose(shared, ref, atol=ATOL, rtol=0)


def test_first_error_steps_ride_on_the_step_level_passes(model_and_tokenizer, data_dir):
    """Chapter 2 scores the first-error set's steps with the rated items: on all of phase-1
    test they add no pass (the same trunks and branches), and on real solutions the
    first-error probabilities read from that joint pass equal scoring the set alone."""
    from prm_lib.scoring import first_error_items, shared_prefix_plan

    test = load_prm800k("test", data_dir=data_dir, download=False)
    items = step_items(test)
    fe_items = first_error_items(first_error_sets(test))
    alone, joint = shared_prefix_plan(items), shared_prefix_plan(items + fe_items)
    assert len(fe_items) > len(items)
    assert joint.trunks == alone.trunks and joint.branches == alone.branches

    some = test[:6]
    items, fe = step_items(some), first_error_sets(some)
    fe_items = first_error_items(fe)
    assert sum(len(s) for s in fe.steps) == len(fe_items)
    rm = prm(model_and_tokenizer, max_length=2048)
    together = score_items_shared_prefix(rm, items + fe_items, progress=False)
    reused = first_error_step_probs(fe, reuse_scores(fe_items, together[len(items):],
                                                     lambda its: pytest.fail("rescored")))
    fresh = first_error_step_probs(fe, lambda its: score_items_shared_prefix(
        rm, its, progress=False))
    assert len(reused) == len(fe.solutions)
    for a, b in zip(reused, fresh):
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_evaluation_length_reads_every_step_the_training_length_cuts(model_and_tokenizer,
                                                                      data_dir):
    test = load_prm800k("test", data_dir=data_dir, download=False)
    items = step_items(test[:10])
    short = prm(model_and_tokenizer, max_length=512)
    long = short.with_max_length(2048)
    assert long.model is short.model and short.format.max_length == 512
    cut = score_items_shared_prefix(short, items, progress=False)
    full = score_items_shared_prefix(long, items, progress=False)
    assert np.isnan(cut).any() and not np.isnan(full).any()
    kept = ~np.isnan(cut).any(axis=1)
    np.testing.assert_allclose(full[kept], cut[kept], atol=ATOL, rtol=0)
    np.testing.assert_allclose(full, one_pass_per_item(long, items), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="positions"):
        short.with_max_length(100_000)


def test_every_phase1_test_step_fits_the_evaluation_length(data_dir):
    from prm_lib import get_scale
    from prm_lib.formatting import SolutionTokens
    from prm_lib.models import load_tokenizer

    cfg = get_scale("laptop")
    tokens = SolutionTokens(load_tokenizer("tiny"), cfg.format)  # SmolLM2's tokenizer
    test = load_prm800k("test", data_dir=data_dir, download=False)
    ends = [tokens.encode(it.problem, list(it.steps))[1][-1] for it in step_items(test)]
    assert max(ends) >= cfg.format.max_length  # the training length cuts some
    assert max(ends) < cfg.eval_max_length


# --------------------------------------------------------------------------- shared layers


def _with_new_top(model, top: int, seed: int):
    """A copy of ``model`` whose top ``top`` decoder layers and final norm are redrawn (as
    training the top layers only changes them)."""
    import copy

    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    decoder = other.get_decoder()
    with torch.no_grad():
        for module in [*decoder.layers[len(decoder.layers) - top:], decoder.norm]:
            for p in module.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    return other


def test_models_sharing_bottom_layers_score_as_each_alone(data_dir):
    model, tok = tiny_model(seed=0, num_layers=4)
    items = step_items(hand_made()) + step_items(
        load_prm800k("test", data_dir=data_dir, download=False)[:6])
    fmt = FormatConfig(max_length=512)  # cuts some of the real ones: NaN rows too
    rms = [RewardModel(m, tok, format=fmt)
           for m in (model, _with_new_top(model, 1, 1), _with_new_top(model, 3, 2))]
    assert shared_layers(rms[:2]) == 3 and shared_layers(rms) == 1
    assert shared_layers([rms[1], rms[0]]) == 3
    alone = [score_items_shared_prefix(rm, items, batch_size=3, branch_batch_size=5,
                                       progress=False) for rm in rms]
    for group in (rms[:2], rms):
        together = score_items_shared_layers(group, items, batch_size=3, branch_batch_size=5,
                                             progress=False)
        np.testing.assert_array_equal(together[0], alone[0])  # the first model's own pass
        for a, b in zip(together, alone):
            assert np.isnan(a).any() and not np.isnan(a).all()
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    # the models differ where it counts: not one model's numbers three times
    assert np.nanmax(np.abs(alone[0] - alone[1])) > 1e-3


def test_solutions_share_passes_with_a_prm_and_an_orm_alike(data_dir):
    """Chapter 3's scoring: the PRM's and the ORM's step probabilities of complete
    solutions (trajectories, and trajectory prefixes ending in an alternative)."""
    from prm_lib.formatting import complete_solutions

    model, tok = tiny_model(seed=0, num_layers=4)
    sols, _ = complete_solutions(load_prm800k("test", data_dir=data_dir, download=False)[:12])
    problems = [c.problem for c in sols] + ["an empty one"]
    steps = [list(c.steps) for c in sols] + [[]]
    # solutions ending in alternatives at one position share all but their last step
    assert len({(p, tuple(s[:-1])) for p, s in zip(problems, steps) if s}) < len(sols)
    fmt = FormatConfig(max_length=512)
    rms = [RewardModel(model, tok, "prm", fmt),
           RewardModel(_with_new_top(model, 2, 3), tok, "orm", fmt)]
    together = step_probabilities_shared(rms, problems, steps, batch_size=3,
                                         branch_batch_size=5, progress=False)
    for rm, got in zip(rms, together):
        want = rm.step_probabilities(problems, steps)
        assert [g.shape for g in got] == [w.shape for w in want]
        assert got[-1].shape == (0, len(rm.labels))
        got, want = np.concatenate(got), np.concatenate(want)
        assert np.isnan(got).any() and not np.isnan(got).all()  # 512 tokens cut some
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_models_sharing_no_layer_are_scored_one_after_another(model_and_tokenizer):
    model, tok = model_and_tokenizer
    other, _ = tiny_model(seed=1)
    rms = [RewardModel(m, tok, format=FormatConfig(max_length=4096)) for m in (model, other)]
    assert shared_layers(rms) == 0
    items = step_items(hand_made())
    together = score_items_shared_layers(rms, items, progress=False)
    for rm, a in zip(rms, together):
        np.testing.assert_allclose(a, score_items_shared_prefix(rm, items, progress=False),
                                   atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="tokenizer, format and precision"):
        score_items_shared_layers([rms[0], rms[1].with_max_length(512)], items)
    with pytest.raises(ValueError, match="no reward model"):
        score_items_shared_layers([], items)


# --------------------------------------------------------------------------- contract


def test_leaves_training_mode_and_refuses_an_orm(model_and_tokenizer):
    model, tok = model_and_tokenizer
    rm = prm(model_and_tokenizer)
    model.train()
    score_items_shared_prefix(rm, step_items([other_problem()]), progress=False)
    assert model.training
    model.eval()
    with pytest.raises(ValueError, match="PRM"):
        score_items_shared_prefix(RewardModel(model, tok, kind="orm"), [], progress=False)


def test_bf16_reward_model_shares_prefixes_under_bf16(model_and_tokenizer):
    """A reward model that scores in bfloat16 does so in the shared-prefix scorer too, and
    the result stays close to its own one-pass-per-solution scores."""
    model, tok = model_and_tokenizer
    rm = RewardModel(model, tok, "prm", FormatConfig(max_length=4096), bf16=True)
    seen = []
    hook = model.get_decoder().layers[0].mlp.down_proj.register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    items = step_items(hand_made())
    try:
        shared = score_items_shared_prefix(rm, items, progress=False)
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    np.testing.assert_allclose(shared, score_items(items, rm.score_fn()), atol=0.03, rtol=0)
