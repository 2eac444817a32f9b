"""Best-of-N on the laboratory (chapters 4 and 7): the reward models, the scored pool,
chapter 4's choice of pool, and the summaries the chapters print."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prm_lib.best_of_n import PAPER_NS, PAPER_POOL_SIZE, best_of_n, draw_permutations
from prm_lib.lab import evaluation as ev
from prm_lib.lab import experiments as ex
from prm_lib.lab.config import lab_scale
from prm_lib.lab.pipeline import build_lab
from prm_lib.reward_model import SCORING_RULES


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PRM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("PRM_DATA_DIR", raising=False)
    yield build_lab("tiny", seed=0, progress=False)
    mp.undo()


@pytest.fixture(scope="module")
def runs(lab):
    return ev.lab_reward_models(lab, seed=0)


def synthetic_pool(n_problems=12, n=8, seed=0) -> pd.DataFrame:
    """A sample table with right and wrong answers and three score columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_problems):
        acc = rng.uniform(0.05, 0.6)
        for _ in range(n):
            ok = bool(rng.random() < acc)
            rows.append({"problem": f"p{p}", "answer": "1" if ok else str(rng.integers(2, 5)),
                         "is_correct": ok, "good_score": rng.normal(1.0 if ok else 0.0),
                         "noise_score": rng.normal()})
    df = pd.DataFrame(rows)
    df["oracle_score"] = df["is_correct"].astype(float)
    return df


# --------------------------------------------------------------------------- small helpers


def test_powers_of_two_end_with_the_pool():
    assert ev.powers_of_two(8) == [1, 2, 4, 8]
    assert ev.powers_of_two(1) == [1]
    assert ev.powers_of_two(6) == [1, 2, 4, 6]
    with pytest.raises(ValueError):
        ev.powers_of_two(0)


def test_score_columns_and_figure3_note():
    assert ev.score_columns(["prm", "orm"], oracle=True) == {
        "PRM (process)": "prm_score", "ORM (final answer)": "orm_score",
        "any correct in the first N": "oracle_score"}
    note = ev.figure3_note()
    assert all(v in note for v in ("78.2", "72.4", "69.6", "Fig. 3"))


# --------------------------------------------------------------------------- the runs


def test_reward_models_are_chapter_5s_largest_runs(lab, runs):
    assert list(runs) == ["prm", "orm", "orm_checker"]
    assert [r.kind for r in runs.values()] == ["prm", "orm", "orm"]
    size = lab.scale.data_sizes[-1]
    rows = ex.select_uniform(lab.pools["train"], size, seed=0)
    for sup, name in ev.RUN_NAMES.items():
        assert runs[name].supervision == sup
        assert runs[name].summary["samples"] == size * lab.scale.train_problems
        # chapter 5's call, same data and seed: the same cached run
        assert ex.train_lab_rm(lab, rows, sup, seed=0).path == runs[name].path


def test_scored_test_pool_adds_one_column_per_run(lab, runs):
    before = lab.pools["test"].copy()
    pool = ev.scored_test_pool(lab, runs, oracle=True)
    pd.testing.assert_frame_equal(lab.pools["test"], before)  # the lab's pool is untouched
    for name, run in runs.items():
        np.testing.assert_array_equal(pool[f"{name}_score"], run.scores())
    np.testing.assert_array_equal(pool["oracle_score"], before["is_correct"].astype(float))
    strict = ev.scored_test_pool(lab, runs, rule="min", neutral="negative")
    np.testing.assert_array_equal(strict["prm_score"], runs["prm"].scores("min", "negative"))
    np.testing.assert_array_equal(strict["orm_score"], pool["orm_score"])  # no rule for ORMs
    with pytest.raises(ValueError, match="scored"):
        short = SimpleNamespace(scores=lambda *a: np.zeros(3))
        ev.scored_test_pool(lab, {"x": short})


def test_oracle_solves_exactly_when_a_correct_sample_is_among_the_first_n():
    pool = synthetic_pool()
    ns, pad = [1, 2, 4, 8], 8
    perm = draw_permutations(0, 5, pool["problem"].nunique(), pad)
    res = best_of_n(pool, "oracle_score", ns=ns, pad_to=pad, permutations=perm)
    correct = pool["is_correct"].to_numpy().reshape(-1, pad)  # problems in order, 8 each
    for t in range(5):
        shuffled = np.take_along_axis(correct, perm[t].astype(int), axis=1)
        want = [100 * shuffled[:, :n].any(axis=1).mean() for n in ns]
        np.testing.assert_allclose(res.solved[t], want)


# --------------------------------------------------------------------------- chapter 4's pool


def test_offline_the_pool_is_the_laboratorys(lab, runs, tmp_path):
    pool = ev.evaluation_pool("tiny", data_dir=tmp_path, seed=0)
    assert not pool.is_paper and pool.source == "laboratory"
    assert "scored samples" in pool.unavailable
    assert pool.ns == tuple(ev.powers_of_two(lab.scale.test_pool))
    assert pool.pad_to == lab.scale.test_pool and pool.n_trials == lab.scale.trials
    assert {"prm_score", "orm_score"} <= set(pool.samples) and \
        "orm_checker_score" not in pool.samples
    np.testing.assert_array_equal(pool.samples["prm_score"], runs["prm"].scores())
    assert pool.runs["orm"].path == runs["orm"].path
    assert pool.spread_ns[0] == 1 and pool.spread_ns[-1] == lab.scale.test_pool


def test_the_papers_samples_are_used_when_present(tmp_path):
    target = tmp_path / "prm800k" / "scored-test-samples.jsonl"
    target.parent.mkdir()
    lines = [{"problem": f"P{p}", "given_answer": str(i % 3), "is_correct": i % 3 == 0,
              "prm_score": i / 10, "orm_score": 1 - i / 10} for p in range(3) for i in range(5)]
    target.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    pool = ev.evaluation_pool("tiny", data_dir=tmp_path, seed=0)
    assert pool.is_paper and pool.lab is None and pool.unavailable is None
    assert pool.ns == PAPER_NS and pool.pad_to == PAPER_POOL_SIZE
    assert pool.n_trials == lab_scale("tiny").trials
    assert len(pool.samples) == 15 and pool.spread_ns[-1] == PAPER_POOL_SIZE
    assert ev.evaluation_pool("laptop", data_dir=tmp_path).n_trials == 400


# --------------------------------------------------------------------------- summaries


def test_trial_standard_errors_follow_the_formula():
    res = best_of_n(synthetic_pool(), "good_score", ns=[1, 4, 8], n_trials=30, pad_to=8)
    sem = ev.trial_standard_errors(res, trials=[2, 10, 30])
    row = sem[(sem.N == 1) & (sem.trials == 10)].iloc[0]
    assert row["sem"] == pytest.approx(res.solved[:10, 0].std(ddof=1) / np.sqrt(10))
    assert (sem[sem.N == 8]["sem"] == 0).all()  # N = the pool: nothing left to shuffle
    assert set(ev.trial_standard_errors(res)["trials"]) >= {2, 30}
    with pytest.raises(ValueError):
        ev.trial_standard_errors(res, trials=[1])


def test_paired_difference_bootstrap_and_sentence():
    pool = synthetic_pool()
    kw = dict(ns=[1, 2, 4, 8], n_trials=40, pad_to=8, seed=3)
    good, noise = best_of_n(pool, "good_score", **kw), best_of_n(pool, "noise_score", **kw)
    d = ev.paired_difference(good, noise)
    np.testing.assert_allclose(d["difference"], good.mean - noise.mean)
    assert ((d["a_ahead"] + d["b_ahead"]) <= 1).all()
    text = ev.describe_difference(good, noise)
    assert text.startswith(f"{good.label} minus {noise.label}:") and "of 4 values of N" in text
    b = ev.problem_bootstrap(good, noise)
    assert b["difference"] == pytest.approx(good.mean[-1] - noise.mean[-1])
    assert b["low"] <= b["difference"] <= b["high"] and b["n_problems"] == 12
    same = ev.problem_bootstrap(good, good)
    assert same["low"] == same["high"] == 0
    with pytest.raises(ValueError, match="same shuffles"):
        ev.paired_difference(good, best_of_n(pool, "noise_score", **{**kw, "seed": 4}))
    table = ev.at_largest_n([good, noise])
    assert table.loc[good.label, "N"] == 8


def test_scoring_rule_table_has_the_four_rules_beside_table_4(lab, runs):
    table = ev.scoring_rule_table(lab.pools["test"], runs["prm"], n_trials=7, seed=2)
    assert list(table.index) == list(SCORING_RULES)
    assert table["paper"].tolist() == [78.2, 77.6, 77.4, 77.8]
    first = table.loc["product, neutral = correct", "mean"]
    assert first == ex.solved_at_pool(lab, runs["prm"].scores(), n_trials=7, seed=2)
    with pytest.raises(ValueError):
        ev.scoring_rule_table(lab.pools["test"], runs["orm"])


def test_neutral_steps_are_counted_and_penalised():
    pool = pd.DataFrame({
        "problem": ["a", "a", "b"], "ratings": [(1, 0, 1), (1, 1), (0, -1)],
        "is_correct": [True, True, False], "process_correct": [True, True, False]})
    s = ev.neutral_step_summary(pool)
    assert s["samples with a neutral step"] == 2 and s["... with the right answer"] == 1
    assert s["... with no bad step (process correct)"] == 1
    assert s["problems with such a sample"] == 2
    # one step each: bad, neutral, good probabilities
    probs = [np.array([[0.0, 0.5, 0.5]]), np.array([[0.0, 0.0, 1.0]]),
             np.array([[0.2, 0.4, 0.4]])]
    run = ex.LabRun("prm", "process", probs, {}, ".")
    pen = ev.neutral_penalty(pool, run)
    assert pen["with a neutral step"] == pytest.approx((0.5 + 0.5) / 2)
    assert pen["without"] == pytest.approx(1.0)


def test_widget_examples_take_each_group_in_turn(lab):
    pool = pd.DataFrame({
        "problem": ["q"] * 7,
        "steps": [["1"], ["2"], ["3"], ["4"], ["5"], [], ["7"]],
        "answer": ["1", "1", "1", "9", None, "1", "1"],
        "is_correct": [True, True, True, False, False, True, True],
        "process_correct": [False, True, True, False, False, True, False],
        "first_error": [0, -1, -1, 0, 0, -1, 0]})
    got = ev.widget_examples(pool, n=4, seed=0)
    labels = [label for _, _, label in got]
    assert labels[0].startswith("right answer, wrong steps (first error: step 1)")
    assert labels[1] == "right answer, right steps"
    assert labels[2] in ("wrong answer", "no final answer")
    assert labels[3].startswith("right answer, wrong steps")
    assert all(steps for _, steps, _ in got)  # the sample without steps is never shown
    assert len(ev.widget_examples(pool, n=10)) == 6
    real = ev.widget_examples(lab.pools["test"], n=6, seed=0)
    assert len(real) == 6 and all(isinstance(p, str) and s for p, s, _ in real)
