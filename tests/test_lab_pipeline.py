"""The laboratory end to end at tiny scale: build, cache, reward models, selection, fits."""

import warnings

import numpy as np
import pandas as pd
import pytest

from prm_lib import get_scale
from prm_lib.lab import experiments as ex
from prm_lib.lab.build import build_lab
from prm_lib.reward_model import solution_scores
from prm_lib.training import RewardRun


@pytest.fixture(scope="module")
def lab(tiny_lab):
    return tiny_lab


def test_splits_are_disjoint_by_construction(lab):
    texts = {k: {p.text for p in v} for k, v in lab.problems.items()}
    assert not texts["test"] & texts["train"]
    assert not texts["test"] & texts["generator"]
    assert not texts["train"] & texts["generator"]
    assert set(lab.pools["test"].problem) <= texts["test"]
    assert set(lab.pools["train"].problem) <= texts["train"]


def test_pools_have_every_sample_and_the_checkers_verdicts(lab):
    s = lab.scale
    for split, n_problems, n in (("train", s.train_problems, s.train_pool),
                                 ("test", s.test_problems, s.test_pool)):
        pool = lab.pools[split]
        assert len(pool) == n_problems * n
        assert (pool.groupby("problem_index").size() == n).all()
        for r in pool.head(20).itertuples():
            assert len(r.ratings) == len(r.steps)
            assert r.process_correct == (r.answer is not None and -1 not in r.ratings)


def test_cached_build_is_identical(lab):
    again = build_lab("tiny", seed=0, progress=False)
    assert again.cached and not lab.cached
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(again.pools[split], lab.pools[split])


def test_same_seed_same_laboratory(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    fresh = build_lab("tiny", seed=0, progress=False)
    assert not fresh.cached
    pd.testing.assert_frame_equal(fresh.pools["test"], lab.pools["test"])


def test_three_supervisions_label_the_same_samples(lab):
    rows = ex.select_uniform(lab.pools["train"], 2, seed=0)
    fmt = ex.lab_format(lab)
    prm, _ = ex.supervision_examples(lab.tokenizer, rows, "process", fmt)
    ans, _ = ex.supervision_examples(lab.tokenizer, rows, "outcome (final answer)", fmt)
    chk, _ = ex.supervision_examples(lab.tokenizer, rows, "outcome (checker)", fmt)
    with_steps = rows[rows.steps.map(len) > 0]
    assert len(ans) == len(chk) == len(with_steps)
    assert [e.labels for e in ans] == [[int(c)] for c in with_steps.is_correct]
    assert [e.labels for e in chk] == [[int(c)] for c in with_steps.process_correct]
    # process labels stop at the first bad step
    for e in prm:
        assert 0 not in e.labels[:-1]
    with pytest.raises(ValueError, match="unknown supervision"):
        ex.supervision_examples(lab.tokenizer, rows, "vibes", fmt)


def test_reward_model_runs_are_cached_and_reproducible(lab):
    rows = ex.select_uniform(lab.pools["train"], 1, seed=0)
    run = ex.train_lab_rm(lab, rows, "process", seed=0)
    assert len(run.step_probs) == len(lab.pools["test"])
    scores = run.scores()
    assert scores.shape == (len(lab.pools["test"]),)
    finite = scores[np.isfinite(scores)]
    assert ((finite >= 0) & (finite <= 1)).all()
    again = ex.train_lab_rm(lab, rows, "process", seed=0)
    np.testing.assert_array_equal(again.scores(), scores)
    assert again.cached and isinstance(again, RewardRun)
    orm = ex.train_lab_rm(lab, rows, "outcome (final answer)", seed=0)
    assert orm.kind == "orm" and orm.summary["examples"] == int((rows.steps.map(len) > 0).sum())
    # the model saved with the run scores the test pool as the run did
    np.testing.assert_array_equal(
        solution_scores("orm", ex.pool_step_probs(orm.reward_model, lab.pools["test"])),
        orm.scores())
    # a change of the reward models' training is another run
    other = type(lab)(**{**vars(lab), "scale": lab.scale.with_(rm__warmup_ratio=0.5)})
    assert ex.train_lab_rm(other, rows, "process", seed=0).path != run.path
    train_scores = run.pool_scores(lab.pools["train"])
    assert train_scores.shape == (len(lab.pools["train"]),)


def test_select_uniform_and_active():
    rng = np.random.default_rng(0)
    pool = pd.DataFrame({"problem_index": np.repeat(np.arange(4), 10),
                         "sample_id": np.tile(np.arange(10), 4),
                         "is_correct": rng.random(40) < 0.5})
    pool.loc[pool.problem_index == 3, "is_correct"] = True  # no wrong-answer sample here
    uni = ex.select_uniform(pool, 3, seed=1)
    assert (uni.groupby("problem_index").size() == 3).all()
    assert uni.equals(ex.select_uniform(pool, 3, seed=1))
    scores = rng.random(40)
    act = ex.select_active(pool, scores, 5)
    assert (act.groupby("problem_index").size() == 5).all()
    for p, g in pool.assign(s=scores).groupby("problem_index"):
        chosen = act[act.problem_index == p]
        wrong = g[~g.is_correct].sort_values("s", ascending=False)
        n_wrong = min(4, len(wrong))  # 80% of 5
        assert set(wrong.sample_id[:n_wrong]) <= set(chosen.sample_id)
        rest = g[~g.sample_id.isin(wrong.sample_id[:n_wrong])].sort_values("s", ascending=False)
        assert set(rest.sample_id[: 5 - n_wrong]) <= set(chosen.sample_id)


def test_log_fits_and_efficiency_ratio():
    sizes = np.array([1, 2, 4, 8] * 3)
    a = pd.DataFrame({"size": sizes, "solved": 10 + 6 * np.log2(sizes), "selection": "active"})
    u = pd.DataFrame({"size": sizes, "solved": 10 + 2 * np.log2(sizes), "selection": "uniform"})
    curve = pd.concat([a, u])
    fits = ex.fit_log_lines(curve, by="selection").set_index("selection")
    assert fits.loc["active", "slope"] == pytest.approx(6)
    assert fits.loc["uniform", "intercept"] == pytest.approx(10)
    r = ex.efficiency_ratio(curve, "active", "uniform", n_boot=50)
    assert r["ratio"] == pytest.approx(3) and r["low"] == pytest.approx(3)


def test_efficiency_ratio_resamples_problems_when_it_has_them():
    """Per-problem results: the point estimate is the slope ratio of the means; the
    interval also resamples problems, so problems that disagree widen it."""
    rng = np.random.default_rng(0)
    sizes = np.array([1, 2, 4, 8] * 3)
    rows = []
    for sel, gain in (("active", 6), ("uniform", 2)):
        for k in sizes:
            # 40 problems whose gains differ (the mean gain is `gain` per doubling)
            per = 10 + gain * np.log2(k) * rng.permutation(np.linspace(0, 2, 40))
            rows.append({"size": k, "selection": sel, "solved": per.mean(), "per_problem": per})
    curve = pd.DataFrame(rows)
    r = ex.efficiency_ratio(curve, "active", "uniform", n_boot=200)
    flat = ex.efficiency_ratio(curve.drop(columns="per_problem"), "active", "uniform", n_boot=200)
    assert r["ratio"] == pytest.approx(flat["ratio"])
    assert r["over"] == "runs and test problems" and flat["over"] == "runs"
    assert r["high"] - r["low"] > flat["high"] - flat["low"]
    assert r["low"] < r["ratio"] < r["high"]


def test_solved_per_problem_is_the_best_of_n_at_the_whole_pool(lab):
    pool = lab.pools["test"]
    rng = np.random.default_rng(0)
    scores = rng.random(len(pool))
    per = ex.solved_per_problem(lab, scores)
    assert per.shape == (lab.scale.test_problems,)
    assert per.mean() == pytest.approx(ex.solved_at_pool(lab, scores))
    # the oracle solves every problem that has a right sample; NaN scores pick nothing
    oracle = ex.solved_per_problem(lab, pool["is_correct"].to_numpy(float))
    assert (oracle == 100 * pool.groupby("problem_index")["is_correct"].any()).all()
    assert (ex.solved_per_problem(lab, np.full(len(pool), np.nan)) == 0).all()


def test_top_pick_passes_over_samples_without_an_answer_as_best_of_n_does():
    pool = pd.DataFrame({"problem": ["a"] * 3 + ["b"] * 2, "problem_index": [0, 0, 0, 1, 1],
                         "answer": [None, "7", "3", "1", "1"],
                         "is_correct": [False, True, False, False, False]})
    # a's top score has no answer: the pick is the right "7"; b's two scores tie
    per = ex.top_pick_solved(pool, np.array([0.9, 0.5, 0.2, 0.4, 0.4]), n_trials=20)
    assert per.tolist() == [100.0, 0.0]
    per = ex.top_pick_solved(pool, np.array([0.1, 0.5, 0.7, np.nan, np.nan]), n_trials=20)
    assert per.tolist() == [0.0, 0.0]


def test_validation_lab_holds_training_problems_only(lab):
    from prm_lib.lab import validation_lab

    val = validation_lab(lab)
    fit, held = val.pools["train"], val.pools["test"]
    assert set(fit.problem_index).isdisjoint(held.problem_index)
    assert set(fit.problem) | set(held.problem) == set(lab.pools["train"].problem)
    assert set(held.problem).isdisjoint(lab.pools["test"].problem)
    assert val.scale.test_problems == held.problem_index.nunique()
    assert val.scale.test_pool == lab.scale.train_pool
    run = ex.train_lab_rm(val, ex.select_uniform(fit, 1, seed=0), "process", seed=0)
    assert len(run.scores()) == len(held)
    test_run = ex.train_lab_rm(lab, ex.select_uniform(fit, 1, seed=0), "process", seed=0)
    assert run.path != test_run.path  # the pool a run is evaluated on is in its key
    with pytest.raises(ValueError, match="fit_share"):
        validation_lab(lab, fit_share=1.0)


def test_active_learning_sizes_keep_a_fifth_of_the_pool():
    from prm_lib import get_scale

    assert ex.active_learning_sizes(get_scale("laptop").lab) == (1, 2, 4, 8)
    assert ex.active_learning_sizes(get_scale("gpu").lab) == (1, 2, 4, 8, 16, 32)
    assert ex.active_learning_sizes(get_scale("tiny").lab) == (1, 2)  # a first look


def test_data_curve_tiny(lab):
    curve = ex.data_curve(lab, supervisions=("process",), sizes=(1,), seeds=1, progress=False)
    assert list(curve.columns[:4]) == ["supervision", "selection", "size", "seed"]
    assert 0 <= curve.solved.iloc[0] <= 100
    assert curve.per_problem.iloc[0].mean() == pytest.approx(curve.solved.iloc[0])


def test_data_curve_below_the_pool_counts_shares_of_trials(lab):
    # the same (cached) run, judged at N = the pool and at N = 2: at 2 a problem counts
    # the share of the protocol's trials it solves, and the mean is still best-of-N's
    full = ex.data_curve(lab, supervisions=("process",), sizes=(1,), seeds=1, progress=False)
    two = ex.data_curve(lab, supervisions=("process",), sizes=(1,), seeds=1, progress=False,
                        n=2)
    scores = ex.train_lab_rm(lab, ex.select_uniform(lab.pools["train"], 1, seed=0),
                             "process", seed=0).scores()
    assert two.solved.iloc[0] == pytest.approx(ex.solved_at_pool(lab, scores, n=2))
    assert full.solved.iloc[0] == pytest.approx(ex.solved_at_pool(lab, scores))
    assert 0 <= two.per_problem.iloc[0].min() <= two.per_problem.iloc[0].max() <= 100


def test_efficiency_ratio_is_nan_without_a_baseline_slope():
    sizes = np.array([1, 2, 4] * 2)
    curve = pd.concat([pd.DataFrame({"size": sizes, "solved": 0.0, "selection": s})
                       for s in ("active", "uniform")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ex.efficiency_ratio(curve, "active", "uniform", n_boot=20)
    assert np.isnan(r["ratio"]) and np.isnan(r["low"]) and np.isnan(r["high"])


def test_efficiency_ratio_is_nan_for_a_flat_baseline_that_rounds_off_zero():
    # every uniform run solves the same share: polyfit's slope is ~1e-14, not 0
    sizes = np.array([1, 2, 4, 8, 16] * 3)
    curve = pd.concat([
        pd.DataFrame({"size": sizes, "solved": 62.3, "selection": "uniform"}),
        pd.DataFrame({"size": sizes, "solved": 60 + np.log2(sizes), "selection": "active"})])
    assert np.polyfit(np.log2(sizes), np.full(15, 62.3), 1)[0] != 0
    r = ex.efficiency_ratio(curve, "active", "uniform", n_boot=20)
    assert np.isnan(r["ratio"]) and np.isnan(r["low"]) and np.isnan(r["high"])
    assert r["slopes"]["active"] == pytest.approx(1.0)


def test_sample_shares():
    rows = pd.DataFrame({
        "is_correct":      [True, True, False, False],
        "process_correct": [True, False, False, False],
        "first_error":     [-1, 1, 0, -1],
        "answer":          ["07", "07", "12", None],
        "finish_reason":   ["eos", "eos", "eos", "length"],
    })
    s = ex.sample_shares(rows)
    assert s["final answer correct"] == 50 and s["every step correct"] == 25
    assert s["right answer, wrong steps"] == 25 and s["wrong answer"] == 50
    assert s["a bad step"] == 50 and s["no answer"] == 25 and s["unfinished"] == 25
    assert ex.sample_shares(rows.iloc[0:0]).isna().all()


def test_reference_lines_bound_the_test_pool(lab):
    pool = lab.pools["test"].copy()
    # make problem 0 always right and problem 1 right once, whatever the generator wrote
    first = pool.problem_index == 0
    pool.loc[first, ["answer", "is_correct"]] = ["07", True]
    once = (pool.problem_index == 1) & (pool.sample_id == 0)
    pool.loc[once, ["answer", "is_correct"]] = ["07", True]
    fake = type(lab)(**{**vars(lab), "pools": {**lab.pools, "test": pool}})
    refs = ex.reference_lines(fake)
    n, P = lab.scale.test_pool, lab.scale.test_problems
    rates = pool.groupby("problem_index").is_correct.mean()
    assert refs["any correct sample (ceiling)"] == pytest.approx(100 * (rates > 0).sum() / P)
    assert refs["random pick"] == pytest.approx(100 * rates.mean())
    assert refs["any correct sample (ceiling)"] >= refs[f"majority voting, N={n}"] >= 100 / P
    # at N = 2 the ceiling is the share of draws of two holding a right answer: problem 0
    # always, problem 1 (one right sample of n) in 1 - C(n-1, 2) / C(n, 2) = 2 / n of draws
    small = ex.reference_lines(fake, n=2)
    assert small["random pick"] == refs["random pick"]
    assert refs["random pick"] <= small["any correct sample (ceiling)"] \
        <= refs["any correct sample (ceiling)"]


def test_same_seed_same_reward_model(lab, tmp_path, monkeypatch):
    # trained twice from scratch (fresh cache): the same scores, bit for bit
    rows = ex.select_uniform(lab.pools["train"], 1, seed=0)
    first = ex.train_lab_rm(lab, rows, "outcome (checker)", seed=3).scores()
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    fresh = build_lab("tiny", seed=0, progress=False)
    second = ex.train_lab_rm(fresh, rows, "outcome (checker)", seed=3)
    assert second.path != ex.train_lab_rm(lab, rows, "outcome (checker)", seed=3).path
    np.testing.assert_array_equal(second.scores(), first)


def test_runs_side_by_side_give_the_numbers_of_runs_one_after_another(lab, tmp_path,
                                                                      monkeypatch):
    # two worker processes against one, each in a fresh cache: the same scores, bit for
    # bit (every run trains on one thread, whatever the number of workers)
    rows = [ex.select_uniform(lab.pools["train"], k, seed=s) for k, s in ((1, 5), (2, 6))]
    jobs = [(rows[0], "process", 5), (rows[1], "outcome (final answer)", 6),
            (rows[1], "outcome (checker)", 6), (rows[0], "process", 5)]  # one asked twice
    got = {}
    for workers in (2, 1):
        monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path / str(workers)))
        fresh = build_lab("tiny", seed=0, progress=False)
        fresh = type(fresh)(**{**vars(fresh), "scale": fresh.scale.with_(rm_workers=workers)})
        assert ex.rm_workers(fresh, len(jobs)) == workers
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(2)  # the runs train on one thread whatever is set here
        try:
            runs = ex.train_lab_rms(fresh, jobs, progress=False)
            assert torch.get_num_threads() == 2  # and the setting is given back
        finally:
            torch.set_num_threads(threads)
        assert [r.supervision for r in runs] == [j[1] for j in jobs]
        # one worker returns the runs it trained; two, the runs their workers wrote
        assert [r.cached for r in runs] == [workers == 2] * 3 + [True]
        got[workers] = [r.scores() for r in runs]
        # a second call reads every run from the cache
        assert all(r.cached for r in ex.train_lab_rms(fresh, jobs, progress=False))
    for a, b in zip(got[2], got[1]):
        np.testing.assert_array_equal(a, b)


def test_runs_side_by_side_also_score_a_pool_where_they_train(lab, tmp_path, monkeypatch):
    # score_pool: every run scores the pool in its worker, and the parent then reads the
    # same scores from a file (a run already trained but not yet scored is scored too)
    pool = lab.pools["train"]
    jobs = [(ex.select_uniform(pool, 1, seed=s), "process", s) for s in (7, 8)]
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    fresh = build_lab("tiny", seed=0, progress=False)
    fresh = type(fresh)(**{**vars(fresh), "scale": fresh.scale.with_(rm_workers=2)})
    ex.train_lab_rm(fresh, *jobs[0][:2], seed=7)  # trained, not scored
    runs = ex.train_lab_rms(fresh, jobs, progress=False, score_pool=pool)
    for run in runs:
        saved = run.path / ex._scores_file(pool)
        assert saved.is_file()
        expected = ex.solution_scores("prm", ex.pool_step_probs(run.reward_model, pool))
        np.testing.assert_array_equal(run.pool_scores(pool), expected)
        np.testing.assert_array_equal(np.load(saved), expected)


def test_a_job_may_train_with_a_variant_of_the_laboratory(lab, tmp_path, monkeypatch):
    # chapter 5 trains two reward-model recipes side by side: each run is the variant's,
    # the same as train_lab_rm with that variant, and another run than the base recipe's
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    fresh = build_lab("tiny", seed=0, progress=False)
    fresh = type(fresh)(**{**vars(fresh), "scale": fresh.scale.with_(rm_workers=2)})
    variant = type(fresh)(**{**vars(fresh), "scale": fresh.scale.with_(rm__learning_rate=3e-3)})
    rows = ex.select_uniform(fresh.pools["train"], 1, seed=0)
    base, other = ex.train_lab_rms(fresh, [(rows, "process", 0), (rows, "process", 0, variant)],
                                   progress=False)
    assert base.path == ex._run_path(fresh, rows, "process", 0)
    assert other.path == ex._run_path(variant, rows, "process", 0) != base.path
    again = ex.train_lab_rm(variant, rows, "process", seed=0)
    assert again.cached and again.path == other.path
    np.testing.assert_array_equal(again.scores(), other.scores())
    assert not np.array_equal(base.scores(), other.scores())


def test_rm_workers_defaults_to_the_cores_and_never_exceeds_the_runs(lab):
    import os

    auto = type(lab)(**{**vars(lab), "scale": lab.scale.with_(rm_workers=None)})
    cores = len(os.sched_getaffinity(0))
    assert ex.rm_workers(auto, 100) == cores
    assert ex.rm_workers(auto, 1) == 1
    assert ex.rm_workers(auto, 0) == 1


def test_lab_folder_depends_on_build_settings_only():
    from dataclasses import replace

    from prm_lib.config import get_scale
    from prm_lib.lab.generator import GeneratorConfig
    from prm_lib.lab.build import lab_dir

    base = get_scale("tiny").lab
    assert lab_dir(base.with_(rm__learning_rate=1.0, rm_steps_min=1, seeds=9, trials=3),
                   0) == lab_dir(base, 0)
    assert lab_dir(replace(base, test_pool=base.test_pool + 1), 0) != lab_dir(base, 0)
    assert lab_dir(replace(base, generator=GeneratorConfig(steps=7)), 0) != lab_dir(base, 0)
    assert lab_dir(base, 1) != lab_dir(base, 0)


def test_generator_loglik_matches_the_language_model_loss(lab):
    """The log-likelihood of a sample is minus the generator's mean token loss times the
    number of solution tokens (the same quantity the generator was trained on)."""
    import torch

    from prm_lib.lab.generator import encode_solution

    pool = lab.pools["test"].head(5)
    ll = ex.generator_loglik(lab, pool, batch_size=2)
    assert ll.shape == (5,) and np.all(ll < 0)
    for row, value in zip(pool.itertuples(index=False), ll):
        ids, n_prompt = encode_solution(lab.tokenizer, row.problem, row.steps)
        ids = torch.tensor([ids])
        labels = ids.clone()
        labels[0, :n_prompt] = -100
        with torch.inference_mode():
            loss = lab.generator(input_ids=ids, labels=labels).loss.item()
        assert value == pytest.approx(-loss * (ids.shape[1] - n_prompt), rel=1e-4)
    np.testing.assert_allclose(ex.generator_loglik(lab, pool, batch_size=5), ll, rtol=1e-5)



def test_identical_samples_are_read_once_with_the_same_numbers(lab):
    """pool_step_probs and generator_loglik read each distinct sample once and give every
    copy its numbers: the same as reading every row on its own."""
    pool = lab.pools["test"].head(6).reset_index(drop=True)
    # copies of rows 0 and 2 (one of them with its steps as a tuple), and an empty sample
    extra = pool.iloc[[2, 0, 0]].copy()
    extra.iloc[0, extra.columns.get_loc("steps")] = tuple(extra.iloc[0]["steps"])
    empty = pool.iloc[[1]].copy()
    empty["steps"] = [[]]
    doubled = pd.concat([pool, extra, empty], ignore_index=True)
    first, of = ex.distinct_samples(doubled)
    assert first == [0, 1, 2, 3, 4, 5, 9] and list(of[6:]) == [2, 0, 0, 6]

    run = ex.train_lab_rm(lab, ex.select_uniform(lab.pools["train"], 1, seed=0), "process")
    rm, read = run.reward_model, []
    original = rm.step_probabilities

    def counting(problems, steps, batch_size):
        read.extend(steps)
        return original(problems, steps, batch_size)

    rm.step_probabilities = counting
    probs = ex.pool_step_probs(rm, doubled)
    assert len(read) == 6  # the six distinct samples with steps, each once
    alone = [original([p], [s], 32)[0] for p, s in zip(doubled["problem"], doubled["steps"])
             if len(s)]
    for got, expected in zip([p for p in probs if len(p)], alone):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(probs[6], probs[2])
    np.testing.assert_array_equal(probs[8], probs[0])
    assert probs[9].shape == (0, 3)

    ll = ex.generator_loglik(lab, doubled.head(9), batch_size=4)
    np.testing.assert_allclose(ll[:6], ex.generator_loglik(lab, pool, batch_size=1), rtol=1e-5)
    assert ll[6] == ll[2] and ll[7] == ll[8] == ll[0]


def test_pick_profile_describes_the_top_sample_of_each_problem(lab):
    pool = lab.pools["test"]
    # an oracle score that prefers fully right samples picks one wherever one exists
    oracle = pool["process_correct"].astype(float).to_numpy()
    prof = ex.pick_profile(lab, oracle)
    has_right = pool.groupby("problem_index")["process_correct"].any()
    assert prof[("picked", "every step right")] == pytest.approx(100 * has_right.mean())
    assert prof[("random pick", "every step right")] == pytest.approx(
        100 * pool.groupby("problem_index")["process_correct"].mean().mean())
    # the sample with the fewest steps, when a score prefers short samples
    short = -pool["steps"].map(len).to_numpy(float)
    fewest = pool.groupby("problem_index")["steps"].apply(lambda s: s.map(len).min())
    assert ex.pick_profile(lab, short)[("picked", "steps")] == pytest.approx(fewest.mean())


def test_a_digits_laboratory_with_misconceptions_builds(tmp_path, monkeypatch):
    from prm_lib import get_scale

    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path))
    cfg = get_scale("tiny").lab.with_(domain="digits", misconceptions=20,
                                      misconception_rate=1.0)
    lab = build_lab(cfg, seed=0, progress=False)
    assert all("Last digit of" in p.text for p in lab.problems["test"])
    pool = lab.pools["test"]
    assert len(pool) == cfg.test_problems * cfg.test_pool
    assert lab.path.name.startswith("tiny-seed0-") and lab.path != build_lab.__globals__[
        "lab_dir"](get_scale("tiny").lab, 0)


def test_generator_is_trained_once_on_a_fixed_number_of_threads(tmp_path, monkeypatch):
    """build_lab reuses a generator lab_generator trained, and the generator (hence the
    whole laboratory) does not depend on how many threads torch may use outside it."""
    import torch

    from prm_lib.lab.build import lab_generator

    scale = get_scale("tiny").lab
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path / "two"))
        torch.set_num_threads(2)
        gen, _, _, seconds = lab_generator(scale, seed=0, progress=False)
        assert torch.get_num_threads() == 2  # set back after training
        built = build_lab("tiny", seed=0, progress=False)
        assert not built.cached and built.timings["generator"] == seconds
        monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path / "one"))
        torch.set_num_threads(1)
        other = build_lab("tiny", seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(gen.state_dict().values(), other.generator.state_dict().values()):
        assert torch.equal(a, b)
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(built.pools[split], other.pools[split])
    rebuilt = build_lab("tiny", seed=0, progress=False, rebuild=True)
    assert not rebuilt.cached
    pd.testing.assert_frame_equal(rebuilt.pools["test"], other.pools["test"])
