"""The book's runs at tiny scale: trained once, then loaded from the cache."""

from __future__ import annotations

import numpy as np

from prm_lib.config import SCALES, get_scale
from prm_lib.pipeline import run_dir, train_orm, train_prm


def test_scales_share_one_set_of_names():
    assert set(SCALES) == {"tiny", "laptop", "gpu"}
    assert get_scale("laptop", prm_examples=5).prm_examples == 5
    assert "SmolLM2" in get_scale("laptop").describe()


def test_prm_and_orm_runs_train_then_come_from_the_cache(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    cfg = get_scale("tiny", prm_examples=24, orm_examples=16)
    first = train_prm(cfg, data_dir=data_dir, progress=False)
    assert not first.cached and first.path == run_dir("prm", cfg, 0)
    s = first.summary
    assert s["train_examples"] == 24 and s["held_out_examples"] >= 1
    assert s["train_problems"] + s["held_out_problems"] == 900
    assert not first.history["loss"].dropna().empty
    again = train_prm(cfg, data_dir=data_dir, progress=False)
    assert again.cached
    problem, steps = "What is 1+1?", ["1+1=2.", "So 2.\n\n# Answer\n\n2"]
    a = first.reward_model.step_probabilities([problem], [steps])[0]
    b = again.reward_model.step_probabilities([problem], [steps])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    # another setting is another run
    assert run_dir("prm", get_scale("tiny", prm_examples=25), 0) != first.path
    orm = train_orm(cfg, data_dir=data_dir, progress=False)
    assert orm.reward_model.kind == "orm" and orm.summary["train_examples"] == 16
