"""The laboratory's samples and caches: one sampler whatever the batching, and cache keys
that change when what they stand for does (the pool scored, the labels trained on, the
sampler that drew the pools)."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from prm_lib.generation import GENERATION_COLUMNS
from prm_lib.lab import experiments as ex
from prm_lib.lab.generator import sample_solutions
from prm_lib.lab.build import build_lab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, one_torch_thread):
    mp = pytest.MonkeyPatch()
    mp.setenv("PRM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield build_lab("tiny", seed=0, progress=False)
    mp.undo()


def with_steps(pool: pd.DataFrame) -> pd.DataFrame:
    return pool[pool["steps"].map(len) > 0]


# --------------------------------------------------------------------------- sampler


def test_pools_are_sample_tables_with_the_checkers_verdicts(lab):
    columns = list(GENERATION_COLUMNS)
    columns.insert(1, "problem_index")
    columns += ["ratings", "first_error", "process_correct"]
    for pool in lab.pools.values():
        assert list(pool.columns) == columns
        assert set(pool["finish_reason"]) <= {"eos", "length"}
        assert pool["n_tokens"].between(1, 96).all()
        assert (pool.loc[pool["finish_reason"] == "length", "n_tokens"] == 96).all()


def test_lab_samples_do_not_depend_on_batch_size(lab):
    gen, tok = lab.generator, lab.tokenizer
    problems = lab.problems["test"][:3]
    kw = {"seed": 5, "progress": False}
    whole = sample_solutions(gen, tok, problems, 6, batch_size=18, **kw)
    assert whole["n_tokens"].nunique() > 1  # rows end at different steps of a batch
    for batch_size in (4, 7):
        pd.testing.assert_frame_equal(
            sample_solutions(gen, tok, problems, 6, batch_size=batch_size, **kw), whole)
    # nor on the other problems sampled with it: problem 1 alone gives the same samples
    alone = sample_solutions(gen, tok, problems[1:2], 6, batch_size=18, **kw)
    pd.testing.assert_frame_equal(
        alone.drop(columns="problem_index"),
        whole[whole["problem_index"] == 1].drop(columns="problem_index").reset_index(drop=True))


def test_lab_folder_changes_with_the_sampler():
    """A folder built with the old per-batch sampler (its key had no sampler field) is not
    reused: its pools would not be the ones this sampler draws."""
    from prm_lib import __version__
    from prm_lib.config import get_scale
    from prm_lib.lab.build import BUILD_FIELDS, lab_dir

    scale = get_scale("tiny").lab
    settings = {k: v for k, v in scale.as_dict().items() if k in BUILD_FIELDS}
    old_key = json.dumps({"scale": settings, "seed": 0, "version": __version__},
                         sort_keys=True, default=str)
    old_name = f"tiny-seed0-{hashlib.sha256(old_key.encode()).hexdigest()[:10]}"
    assert lab_dir(scale, 0).name != old_name


# --------------------------------------------------------------------------- cache keys


def test_pool_scores_are_cached_by_the_pools_content(lab):
    run = ex.train_lab_rm(lab, ex.select_uniform(lab.pools["train"], 1, seed=0), "process")
    a = with_steps(lab.pools["test"]).head(5)
    b = with_steps(lab.pools["train"]).head(5)  # the same size, other samples
    expected_b = run.pool_scores(b)  # computed: nothing cached yet
    for f in run.path.glob("scores_*.npy"):
        f.unlink()
    scores_a = run.pool_scores(a)
    np.testing.assert_array_equal(run.pool_scores(b), expected_b)
    assert not np.allclose(scores_a, expected_b)
    np.testing.assert_array_equal(run.pool_scores(a), scores_a)  # and read back


def test_relabeled_rows_train_a_new_reward_model(lab):
    rows = with_steps(ex.select_uniform(lab.pools["train"], 1, seed=0))
    first = ex.train_lab_rm(lab, rows, "outcome (final answer)")
    flipped = ex.train_lab_rm(lab, rows.assign(is_correct=~rows["is_correct"]),
                              "outcome (final answer)")
    assert flipped.path != first.path
    assert not np.array_equal(flipped.scores(), first.scores(), equal_nan=True)
    # a label this supervision does not read keeps the cached model
    other = rows.assign(process_correct=~rows["process_correct"])
    assert ex.train_lab_rm(lab, other, "outcome (final answer)").path == first.path
    assert ex.train_lab_rm(lab, other, "outcome (checker)").path != \
        ex.train_lab_rm(lab, rows, "outcome (checker)").path

    process = ex.train_lab_rm(lab, rows, "process")
    rated = rows.copy()
    rated["ratings"] = [(1,) * len(r) for r in rows["ratings"]]
    assert rated["ratings"].tolist() != rows["ratings"].tolist()
    assert ex.train_lab_rm(lab, rated, "process").path != process.path
    # and so do other step texts under the same rows and labels
    edited = rows.copy()
    edited["steps"] = [[s + " " for s in steps] for steps in rows["steps"]]
    assert ex.train_lab_rm(lab, edited, "process").path != process.path


def test_reward_model_run_key_covers_the_pool_it_is_evaluated_on(lab):
    """A run saves its step probabilities on the laboratory's test pool: the same rows
    trained against another evaluation pool (e.g. held-out training problems) must not
    come back with the first pool's probabilities."""
    import dataclasses

    rows = ex.select_uniform(lab.pools["train"], 1, seed=0)
    first = ex.train_lab_rm(lab, rows, "process", seed=0)
    other_pool = lab.pools["train"].reset_index(drop=True)
    other = dataclasses.replace(lab, pools={**lab.pools, "test": other_pool})
    second = ex.train_lab_rm(other, rows, "process", seed=0)
    assert second.path != first.path
    assert len(second.step_probs) == len(other_pool) != len(first.step_probs)
