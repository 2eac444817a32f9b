"""Likelihood-readout reward models (prm_lib.lab.readout) and deeper reward models
(prm_lib.training.add_top_layers)."""

import numpy as np
import pandas as pd
import pytest
import torch

from prm_lib.lab import experiments as ex
from prm_lib.lab.generator import GeneratorConfig, PROMPT, lab_tokenizer, new_generator
from prm_lib.lab.readout import LikelihoodReadout, train_readout
from prm_lib.training import add_top_layers, freeze_below

PROBLEM = "Last digit of (3 + 4) * 2?"
GOOD = ["3 + 4 = 7", "7 * 2 = 4", "# Answer\n\n4"]
BAD = ["3 + 4 = 7", "7 * 2 = 9", "# Answer\n\n9"]


@pytest.fixture(scope="module")
def tiny():
    tok = lab_tokenizer()
    torch.manual_seed(0)
    return new_generator(GeneratorConfig(hidden_size=32, layers=1, heads=2), tok, seed=0), tok


def token_logps(model, tok, problem, steps):
    """log P of every token of each step, computed the plain way: one sequence, a loop."""
    nl = tok("\n", add_special_tokens=False)["input_ids"]
    ids = tok(PROMPT.format(problem=problem), add_special_tokens=False)["input_ids"]
    spans = []
    for k, step in enumerate(steps):
        if k:
            ids = ids + nl
        b = len(ids)
        ids = ids + tok(step, add_special_tokens=False)["input_ids"]
        spans.append((b, len(ids)))
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    return [[float(logp[t - 1, ids[t]]) for t in range(b, e)] for b, e in spans]


def test_step_verdicts_are_the_calibrated_least_likely_token(tiny):
    model, tok = tiny
    rm = LikelihoodReadout(model, tok, "prm", alpha=2.0, beta=0.5)
    probs = rm.step_probabilities([PROBLEM, PROBLEM], [GOOD, BAD[:2]])
    for p, steps in zip(probs, (GOOD, BAD[:2])):
        want = [1 / (1 + np.exp(-(2.0 + 0.5 * min(v))))
                for v in token_logps(model, tok, PROBLEM, steps)]
        assert p.shape == (len(steps), 3)
        np.testing.assert_allclose(p[:, 2], want, rtol=1e-5)
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
        assert (p[:, 1] == 0).all()  # neutral is never predicted


def test_an_orm_reads_the_product_of_the_step_verdicts(tiny):
    model, tok = tiny
    prm = LikelihoodReadout(model, tok, "prm").step_probabilities([PROBLEM], [GOOD])[0]
    orm = LikelihoodReadout(model, tok, "orm").step_probabilities([PROBLEM], [GOOD])[0]
    assert orm.shape == (3, 2)
    np.testing.assert_allclose(orm[:, 1], np.cumprod(prm[:, 2]), rtol=1e-6)
    assert ex.solution_scores("orm", [orm])[0] == pytest.approx(np.prod(prm[:, 2]))
    # score(), as a RewardModel's (the step-score widget calls it)
    reader = LikelihoodReadout(model, tok, "orm")
    assert reader.score(PROBLEM, GOOD) == pytest.approx(np.prod(prm[:, 2]), rel=1e-5)
    assert reader.score([PROBLEM, PROBLEM], [GOOD, BAD]).shape == (2,)


def test_a_solution_without_steps_and_mismatched_inputs(tiny):
    model, tok = tiny
    rm = LikelihoodReadout(model, tok, "prm")
    assert rm.step_probabilities([PROBLEM], [[]])[0].shape == (0, 3)
    with pytest.raises(ValueError, match="2 problems but 1"):
        rm.step_probabilities([PROBLEM, PROBLEM], [GOOD])
    with pytest.raises(ValueError, match="kind"):
        LikelihoodReadout(model, tok, "value")


def test_process_training_learns_which_step_is_wrong(tiny):
    """Eight copies of one right and one wrong solution: the process labels name the
    wrong step, and after training its verdict falls below the right steps'."""
    import copy

    model, tok = tiny
    problems, steps = [PROBLEM] * 16, [GOOD, BAD] * 8
    targets = [[1, 1, 1], [1, 0]] * 8
    rm, history = train_readout(copy.deepcopy(model), tok, problems, steps, targets, "prm",
                                max_steps=40, learning_rate=1e-2, batch_size=8, seed=0)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    good, bad = rm.step_probabilities([PROBLEM, PROBLEM], [GOOD, BAD])
    assert bad[1, 2] < 0.5 < good[1, 2]
    assert list(history.columns) == ["step", "loss", "learning_rate", "seconds"]


def test_training_is_seeded_and_saves_what_it_scores(tiny, tmp_path):
    import copy

    model, tok = tiny
    args = ([PROBLEM] * 4, [GOOD, BAD] * 2, [1, 0, 1, 0], "orm")
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train_readout(copy.deepcopy(model), tok, *args, max_steps=5,
                                  learning_rate=1e-3, batch_size=2, seed=3)[0])
    a, b = (r.step_probabilities([PROBLEM], [BAD])[0] for r in runs)
    np.testing.assert_array_equal(a, b)
    runs[0].save_pretrained(tmp_path / "rm")
    loaded = LikelihoodReadout.from_pretrained(tmp_path / "rm")
    assert loaded.kind == "orm"
    np.testing.assert_allclose(loaded.step_probabilities([PROBLEM], [BAD])[0], a, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="readout.json"):
        LikelihoodReadout.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no training solutions"):
        train_readout(model, tok, [], [], [], "prm", max_steps=1, learning_rate=1e-3)
    with pytest.raises(ValueError, match="one of each"):
        train_readout(model, tok, [PROBLEM], [GOOD], [1, 0], "orm", max_steps=1,
                      learning_rate=1e-3)


def test_readout_targets():
    rows = pd.DataFrame({"ratings": [(1, 0, -1, 1), (1, 1), ()],
                         "is_correct": [True, False, False],
                         "process_correct": [False, True, False]})
    assert ex.readout_targets(rows, "process") == [[1, 1, 0], [1, 1], []]
    assert ex.readout_targets(rows, "outcome (final answer)") == [1, 0, 0]
    assert ex.readout_targets(rows, "outcome (checker)") == [0, 1, 0]
    with pytest.raises(ValueError, match="unknown supervision"):
        ex.readout_targets(rows, "value")


@pytest.fixture(scope="module")
def lab(tiny_lab):
    return tiny_lab


def test_laboratory_runs_of_either_head_are_cached_apart(lab):
    import dataclasses

    rows = ex.select_uniform(lab.pools["train"], 1, seed=0)
    heads = {h: dataclasses.replace(lab, scale=lab.scale.with_(rm_head=h))
             for h in ("likelihood", "label_token")}
    runs = {h: ex.train_lab_rm(v, rows, "process", seed=0) for h, v in heads.items()}
    assert runs["likelihood"].path != runs["label_token"].path
    again = ex.train_lab_rm(heads["likelihood"], rows, "process", seed=0)
    assert again.cached
    np.testing.assert_array_equal(again.scores(), runs["likelihood"].scores())
    # the saved readout scores the test pool as the run did
    assert isinstance(again.reward_model, LikelihoodReadout)
    np.testing.assert_allclose(
        ex.solution_scores("prm", ex.pool_step_probs(again.reward_model, lab.pools["test"])),
        runs["likelihood"].scores(), rtol=1e-5)
    bad = dataclasses.replace(lab, scale=lab.scale.with_(rm_head="value"))
    with pytest.raises(ValueError, match="rm_head"):
        ex.train_lab_rm(bad, rows, "process", seed=0)


def test_add_top_layers_computes_the_same_until_trained(tiny):
    model, tok = tiny
    ids = torch.tensor([tok("12 + 3 = 15", add_special_tokens=False)["input_ids"]])
    deeper = add_top_layers(model, 2, seed=0)
    assert deeper.config.num_hidden_layers == model.config.num_hidden_layers + 2
    with torch.no_grad():
        torch.testing.assert_close(deeper(input_ids=ids).logits, model(input_ids=ids).logits)
    freeze_below(deeper, 2)
    trainable = {n for n, p in deeper.named_parameters() if p.requires_grad}
    assert trainable and all(".layers.1." in n or ".layers.2." in n or "norm" in n
                             for n in trainable)
    assert add_top_layers(model, 0) is model
    with pytest.raises(ValueError, match="n must be"):
        add_top_layers(model, -1)


def test_steps_past_the_length_limit_have_no_verdict(tiny):
    model, tok = tiny
    full = LikelihoodReadout(model, tok, "prm").step_probabilities([PROBLEM], [GOOD])[0]
    prompt = len(tok(PROMPT.format(problem=PROBLEM), add_special_tokens=False)["input_ids"])
    first = len(tok(GOOD[0], add_special_tokens=False)["input_ids"])
    cut = LikelihoodReadout(model, tok, "prm", max_length=prompt + first + 1)  # + newline
    probs = cut.step_probabilities([PROBLEM, PROBLEM], [GOOD, GOOD[:1]])
    np.testing.assert_allclose(probs[0][0], full[0], rtol=1e-5)
    assert np.isnan(probs[0][1:, 2]).all() and probs[1].shape == (1, 3)
    # as for a label-token PRM, the product reads the steps that have a verdict
    assert ex.solution_scores("prm", probs[:1])[0] == pytest.approx(probs[0][0, 2])
    orm = LikelihoodReadout(model, tok, "orm", max_length=cut.max_length)
    assert np.isnan(ex.solution_scores("orm", orm.step_probabilities([PROBLEM], [GOOD]))[0])


def test_samples_of_one_problem_share_their_prompt_and_read_the_same(tiny):
    """A pool's samples of one problem are read on one pass over their prompt (its cache
    shared by every row): the verdicts of the plain one-sequence computation, whatever the
    batch, next to samples of problems with too few samples to share."""
    model, tok = tiny
    rm = LikelihoodReadout(model, tok, "prm", alpha=1.0, beta=0.7)
    other = "Last digit of (5 * 3) - 2?"
    variants = [GOOD, BAD, GOOD[:2], BAD[:1], ["3 + 4 = 7", "The running total is 7.",
                                               "7 * 2 = 4", "# Answer\n\n4"]]
    problems = [PROBLEM] * 10 + [other]
    steps = [variants[i % len(variants)] for i in range(10)] + [["5 * 3 = 5"]]
    calls = []
    original = rm.step_logits
    rm.step_logits = lambda enc, prompt_length=0: (calls.append((len(enc), prompt_length))
                                                   or original(enc, prompt_length))
    probs = rm.step_probabilities(problems, steps, batch_size=4)
    prompt = len(tok(PROMPT.format(problem=PROBLEM), add_special_tokens=False)["input_ids"])
    assert sorted(calls) == [(1, 0), (2, prompt), (4, prompt), (4, prompt)]
    for p, (problem, s) in zip(probs, zip(problems, steps)):
        want = [1 / (1 + np.exp(-(1.0 + 0.7 * min(v))))
                for v in token_logps(model, tok, problem, s)]
        np.testing.assert_allclose(p[:, 2], want, rtol=1e-5)


def test_shared_prompt_logits_refuse_rows_with_other_prompts(tiny):
    model, tok = tiny
    rm = LikelihoodReadout(model, tok, "prm")
    ids = torch.tensor([[5, 6, 7, 8], [5, 9, 7, 8]])
    with pytest.raises(ValueError, match="first 2 tokens"):
        rm._shared_prompt_logits(ids, torch.ones_like(ids), 2)
