"""The scales, and the book's runs at tiny scale: trained once, then loaded from the cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prm_lib.config import SCALES, LabConfig, get_scale
from prm_lib.runs import orm_run, prm_run, run_dir, untrained_prm
from prm_lib.training import RewardConfig, resolve_bf16


def test_scales_share_one_set_of_names():
    assert set(SCALES) == {"tiny", "laptop", "gpu"}
    assert all(s.name == s.lab.name == name for name, s in SCALES.items())
    assert get_scale("laptop", prm__examples=5).prm.examples == 5
    assert "SmolLM2" in get_scale("laptop").describe()
    with pytest.raises(ValueError, match="unknown scale"):
        get_scale("huge")


def test_nested_fields_are_overridden_one_level_at_a_time():
    base = get_scale("laptop")
    cfg = base.with_(lab__seeds=5, lab__rm__learning_rate=1e-4, orm__examples=7)
    assert cfg.lab.seeds == 5 and cfg.lab.rm.learning_rate == 1e-4 and cfg.orm.examples == 7
    assert cfg.lab.rm.per_device_train_batch_size == base.lab.rm.per_device_train_batch_size
    assert cfg.prm == base.prm and base.lab.seeds == 3  # the preset is untouched
    assert cfg.lab == replace(base.lab, seeds=5, rm=replace(base.lab.rm, learning_rate=1e-4))
    assert isinstance(cfg.lab, LabConfig)


def test_training_settings_become_a_reward_config(tmp_path):
    settings = get_scale("laptop").prm.training
    args = settings.args(tmp_path, seed=3, max_steps=2)
    assert isinstance(args, RewardConfig)
    assert (args.learning_rate, args.per_device_train_batch_size, args.train_top_layers,
            args.loss, args.seed, args.max_steps) == (1e-4, 8, 10, "label_tokens", 3, 2)
    assert args.bf16 is resolve_bf16(None) and args.data_seed == 3


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (False, False, False), (True, False, True), (False, True, True)])
def test_bf16_only_on_cpus_with_bf16_instructions(monkeypatch, avx512_bf16, amx, expected):
    # emulated bfloat16 is many times slower than float32 on a CPU without the instructions
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_bf16(None) is expected
    assert resolve_bf16(True) is True and resolve_bf16(False) is False


def test_prm_and_orm_runs_train_then_come_from_the_cache(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    cfg = get_scale("tiny", prm__examples=24, orm__examples=16)
    first = prm_run(cfg, data_dir=data_dir, progress=False)
    assert not first.cached and first.path == run_dir("prm", cfg, 0)
    s = first.summary
    assert s["train_examples"] == 24 and s["held_out_examples"] >= 1
    assert s["precision"] == ("bfloat16" if resolve_bf16(None) else "float32")
    assert s["train_problems"] + s["held_out_problems"] == 900
    assert not first.history["loss"].dropna().empty
    again = prm_run(cfg, data_dir=data_dir, progress=False)
    assert again.cached and again.kind == "prm"
    problem, steps = "What is 1+1?", ["1+1=2.", "So 2.\n\n# Answer\n\n2"]
    a = first.reward_model.step_probabilities([problem], [steps])[0]
    b = again.reward_model.step_probabilities([problem], [steps])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    # another setting of the run is another run; a setting of another run or of the
    # laboratory is not
    assert run_dir("prm", cfg.with_(prm__examples=25), 0) != first.path
    assert run_dir("prm", cfg.with_(prm__training__learning_rate=1.0), 0) != first.path
    assert run_dir("prm", cfg.with_(format__max_length=64), 0) != first.path
    assert run_dir("prm", cfg.with_(orm__examples=3, lab__seeds=9), 0) == first.path
    # "bfloat16 where the hardware has it" is keyed by what it means on this machine
    here = resolve_bf16(None)
    assert run_dir("prm", cfg.with_(prm__training__bf16=here), 0) == first.path
    assert run_dir("prm", cfg.with_(prm__training__bf16=not here), 0) != first.path
    orm = orm_run(cfg, data_dir=data_dir, progress=False)
    assert orm.reward_model.kind == "orm" and orm.summary["train_examples"] == 16


def test_untrained_prm_is_scored_in_the_precision_the_prm_trains_in():
    cfg = get_scale("tiny")
    assert untrained_prm(cfg).bf16 is resolve_bf16(cfg.prm.training.bf16)
    off = cfg.with_(prm__training__bf16=False)
    assert untrained_prm(off).bf16 is False


def test_a_packed_prm_run_trains_whole_sessions_prefix_shared(tmp_path, monkeypatch, data_dir):
    import torch

    from prm_lib.data import load_prm800k
    from prm_lib.formatting import prm_examples
    from prm_lib.models import load_tokenizer
    from prm_lib.packing import draw_sessions
    from prm_lib.runs import _split_problems

    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    cfg = get_scale("tiny", prm__examples=40, prm__pack=True, prm__pack_length=512,
                    prm__packed_batch_size=2)
    assert run_dir("prm", cfg, 0) != run_dir("prm", get_scale("tiny", prm__examples=40), 0)
    run = prm_run(cfg, data_dir=data_dir, progress=False)
    s = run.summary
    assert s["train_examples"] >= 40 and s["packed_sequences"] < s["train_examples"]
    assert s["optimizer_steps"] == -(-s["packed_sequences"] // 2)
    assert not run.history["loss"].dropna().empty
    # exactly the sessions, examples and labels per-example training of them would see
    tok = load_tokenizer("tiny")
    train_s, _ = _split_problems(load_prm800k("train", data_dir=data_dir), 0,
                                 cfg.prm.held_out_problems)
    sessions, n = draw_sessions(tok, train_s, cfg.format, 40, 0)
    examples, _ = prm_examples(tok, sessions, cfg.format)
    assert (len(sessions), n) == (s["train_sessions"], s["train_examples"]) == (
        s["train_sessions"], len(examples))
    assert s["train_labels"] == sum(len(e.labels) for e in examples)
    # held out: whole sessions of the held-out problems, packed; evals_per_run evaluations,
    # the last at the final step
    _, held_s = _split_problems(load_prm800k("train", data_dir=data_dir), 0,
                                cfg.prm.held_out_problems)
    n_held = min(cfg.prm.held_out_max,
                 max(cfg.prm.held_out_min, n // cfg.prm.held_out_per_example))
    assert s["held_out_examples"] == draw_sessions(tok, held_s, cfg.format, n_held, 0)[1]
    evals = run.history.dropna(subset=["eval_loss"])
    assert len(evals) == min(cfg.prm.evals_per_run, s["optimizer_steps"])
    assert evals["step"].iloc[-1] == s["optimizer_steps"]
    # evaluating does not change what is trained
    once = prm_run(cfg.with_(prm__evals_per_run=1), data_dir=data_dir, progress=False)
    assert len(once.history.dropna(subset=["eval_loss"])) == 1
    for (name, a), (_, b) in zip(run.reward_model.model.state_dict().items(),
                                 once.reward_model.model.state_dict().items()):
        assert torch.equal(a, b), name



def test_a_packed_orm_run_packs_the_complete_solutions_of_whole_sessions(
        tmp_path, monkeypatch, data_dir):
    from prm_lib.data import load_prm800k
    from prm_lib.formatting import orm_examples
    from prm_lib.models import load_tokenizer
    from prm_lib.packing import draw_sessions
    from prm_lib.runs import _split_problems

    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    cfg = get_scale("tiny", orm__examples=24, orm__pack=True, orm__pack_length=512,
                    orm__packed_batch_size=2)
    run = orm_run(cfg, data_dir=data_dir, progress=False)
    s = run.summary
    tok = load_tokenizer("tiny")
    train_s, _ = _split_problems(load_prm800k("train", data_dir=data_dir), 0,
                                 cfg.orm.held_out_problems)
    sessions, _ = draw_sessions(tok, train_s, cfg.format, 24, 0, orm_examples)
    examples, _ = orm_examples(tok, sessions, cfg.format)
    assert s["train_sessions"] == len(sessions) and s["train_examples"] == len(examples) >= 24
    assert s["train_labels"] == len(examples)  # one label per complete solution
    assert s["packed_sequences"] < len(examples)  # solutions of a session share a sequence
    assert s["packed_tokens"] < sum(len(e.input_ids) for e in examples)
    assert s["held_out_examples"] >= 1 and run.reward_model.kind == "orm"
