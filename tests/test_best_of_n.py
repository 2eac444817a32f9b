"""The vectorised best-of-N / voting evaluator against a plain loop written from the protocol.

The loop below is deliberately naive: pad, shuffle, take the first N, drop missing, pick
with Python's ``max`` (which keeps the first of equal maxima), exactly as the paper's
official script reads. Every vectorised result must match it.
"""

from __future__ import annotations

import math
import random
import sys
import types

import numpy as np
import pandas as pd
import pytest

from prm_lib.best_of_n import (
    BestOfNResult,
    at_largest_n,
    best_of_n,
    describe_difference,
    draw_permutations,
    evaluate_methods,
    fill_answer_key,
    majority_vote,
    paired_difference,
    problem_bootstrap,
    results_frame,
    trial_standard_errors,
)
from prm_lib.paper import PAPER_NS

# --------------------------------------------------------------------------- the loop


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _vote_key(row) -> str:
    key = row.get("answer_key")
    return str(row["answer"]).strip() if _missing(key) else key


def loop_evaluate(samples, ns, pad_to, *, method="best", column="prm_score",
                  permutations=None, n_trials=None, seed=None):
    """% solved per trial and N, shape (n_trials, len(ns)), by the plain protocol.

    method: "best" (best-of-N by ``column``), "vote" (majority voting; with ``column``
    not None, RM-weighted voting). With ``permutations`` (trials, problems, pad_to) the
    padded list of problem p in trial t is reordered by ``permutations[t, p]`` and the
    same order serves every N; without, each (trial, N, problem) is reshuffled with
    ``random.Random(seed)``, as the official script does.
    """
    problems: dict = {}
    for row in samples.to_dict("records"):
        problems.setdefault(row["problem"], []).append(row)

    def usable(s):
        if s is None or _missing(s["answer"]):
            return False
        return column is None or not _missing(s[column])

    # Voting: an answer is correct when most of the pool's usable samples with it are.
    votes_correct = {}
    for p, rows in enumerate(problems.values()):
        tally: dict = {}
        for s in rows:
            if usable(s):
                good, total = tally.get(_vote_key(s), (0, 0))
                tally[_vote_key(s)] = (good + bool(s["is_correct"]), total + 1)
        for key, (good, total) in tally.items():
            votes_correct[(p, key)] = 2 * good > total

    rng = random.Random(seed)
    if permutations is not None:
        n_trials = len(permutations)
    out = np.zeros((n_trials, len(ns)))
    for t in range(n_trials):
        for k, n in enumerate(ns):
            solved = 0
            for p, rows in enumerate(problems.values()):
                padded = rows + [None] * (pad_to - len(rows))
                if permutations is not None:
                    shuffled = [padded[i] for i in permutations[t][p]]
                else:
                    shuffled = list(padded)
                    rng.shuffle(shuffled)
                kept = [s for s in shuffled[:n] if usable(s)]
                if not kept:
                    continue
                if method == "best":
                    choice = max(kept, key=lambda s: s[column])
                    solved += bool(choice["is_correct"])
                else:
                    total, first = {}, {}
                    for i, s in enumerate(kept):
                        key = _vote_key(s)
                        total[key] = total.get(key, 0.0) + (1.0 if column is None else s[column])
                        first.setdefault(key, i)
                    winner = max(total, key=lambda a: (total[a], -first[a]))
                    solved += votes_correct[(p, winner)]
            out[t, k] = 100.0 * solved / len(problems)
    return out


# --------------------------------------------------------------------------- pools


def random_pool(seed, n_problems=7, pad_to=16, p_no_answer=0.2, p_nan=0.1):
    """A small pool exercising every rule: uneven sizes, missing answers, NaN scores,
    tied scores (one decimal), equivalent answers differing in whitespace, an
    all-missing problem, and exact (dyadic) weights so weighted sums tie exactly."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_problems):
        size = int(rng.integers(1, pad_to + 1))
        all_missing = p == n_problems - 1
        for _ in range(size):
            answer = None
            if not all_missing and rng.random() >= p_no_answer:
                answer = str(rng.integers(0, 4)) + (" " if rng.random() < 0.3 else "")
            prm = np.nan if rng.random() < p_nan else round(float(rng.random()), 1)
            orm = np.nan if rng.random() < p_nan else float(rng.integers(0, 8)) / 8
            rows.append(
                dict(problem=f"problem {p}", answer=answer,
                     is_correct=answer is not None and answer.strip() == "1",
                     prm_score=prm, orm_score=orm)
            )
    return pd.DataFrame(rows)


NS = [1, 2, 3, 5, 8, 16]

METHODS = {
    "best prm": (dict(method="best", column="prm_score"),
                 lambda df, **kw: best_of_n(df, score="prm_score", **kw)),
    "best orm": (dict(method="best", column="orm_score"),
                 lambda df, **kw: best_of_n(df, score="orm_score", **kw)),
    "majority": (dict(method="vote", column=None), lambda df, **kw: majority_vote(df, **kw)),
    "weighted": (dict(method="vote", column="orm_score"),
                 lambda df, **kw: majority_vote(df, weights="orm_score", **kw)),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("pool_seed", [0, 1, 2])
def test_identical_to_loop_on_the_same_permutations(method, pool_seed):
    df = random_pool(pool_seed)
    loop_kw, vectorised = METHODS[method]
    P = df["problem"].nunique()
    perms = draw_permutations(seed=pool_seed, trials=40, n_problems=P, pad_to=16)
    expected = loop_evaluate(df, NS, 16, permutations=perms, **loop_kw)
    # Drawn by the evaluator from the seed...
    got = vectorised(df, ns=NS, n_trials=40, seed=pool_seed, pad_to=16).solved
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # ...or injected.
    got = vectorised(df, ns=NS, pad_to=16, permutations=perms).solved
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", list(METHODS))
def test_means_agree_with_official_reshuffling_across_seeds(method):
    """The loop reshuffles for every N (official script); the vectorised evaluator
    reuses one shuffle for all N. Means must agree within 3 standard errors."""
    df = random_pool(5)
    loop_kw, vectorised = METHODS[method]
    ns = [1, 3, 8, 16]
    loop = loop_evaluate(df, ns, 16, n_trials=300, seed=123, **loop_kw)
    vec = vectorised(df, ns=ns, n_trials=300, seed=456, pad_to=16).solved
    se = np.sqrt(loop.var(axis=0, ddof=1) / len(loop) + vec.var(axis=0, ddof=1) / len(vec))
    diff = np.abs(loop.mean(axis=0) - vec.mean(axis=0))
    assert (diff <= 3 * se + 1e-9).all(), (diff, se)


def test_batching_does_not_change_results():
    df = random_pool(3)
    one = best_of_n(df, ns=NS, n_trials=25, seed=7, pad_to=16, max_chunk_bytes=1)
    many = best_of_n(df, ns=NS, n_trials=25, seed=7, pad_to=16)
    np.testing.assert_array_equal(one.solved, many.solved)
    v1 = majority_vote(df, ns=NS, n_trials=25, seed=7, pad_to=16, max_chunk_bytes=1)
    v2 = majority_vote(df, ns=NS, n_trials=25, seed=7, pad_to=16)
    np.testing.assert_array_equal(v1.solved, v2.solved)


# --------------------------------------------------------------------------- rules


def table(rows):
    return pd.DataFrame(rows, columns=["problem", "answer", "is_correct", "prm_score"])


def test_missing_answers_are_dropped_before_picking():
    # The top-scoring sample has no answer: the runner-up (wrong) is picked.
    df = table([("q", None, True, 0.9), ("q", "2", False, 0.5)])
    res = best_of_n(df, ns=[2], n_trials=10)
    assert (res.solved == 0).all()
    # With only the answerless sample drawn, there is no candidate: unsolved.
    assert best_of_n(df, ns=[1], n_trials=50).mean[0] == 0


def test_score_ties_go_to_the_first_in_shuffled_order():
    df = table([("q", "1", True, 0.5), ("q", "2", False, 0.5)])
    perms = draw_permutations(0, 200, 1, 2)
    res = best_of_n(df, ns=[2], permutations=perms)
    first_is_correct = perms[:, 0, 0] == 0
    np.testing.assert_array_equal(res.solved[:, 0], np.where(first_is_correct, 100.0, 0.0))
    assert 0 < res.mean[0] < 100  # both orders occur


def test_problems_with_fewer_samples_than_n():
    # One correct sample padded to 10: drawn among the first N with probability N/10.
    df = table([("q", "1", True, 0.3)])
    ns = [1, 4, 10]
    perms = draw_permutations(1, 300, 1, 10)
    res = best_of_n(df, ns=ns, pad_to=10, permutations=perms)
    position = np.argmax(perms[:, 0, :] == 0, axis=1)
    for k, n in enumerate(ns):
        np.testing.assert_array_equal(res.solved[:, k], np.where(position < n, 100.0, 0.0))
    assert res.mean[-1] == 100
    assert abs(res.mean[1] - 40) < 3 * res.std[1] / np.sqrt(300)


def test_nan_scores_count_as_missing():
    df = table([("q", "1", True, np.nan), ("q", "2", False, 0.1)])
    assert best_of_n(df, ns=[2], n_trials=20).mean[0] == 0
    only_nan = table([("q", "1", True, np.nan)])
    assert best_of_n(only_nan, ns=[1], n_trials=20).mean[0] == 0


def test_all_missing_problem_counts_as_unsolved():
    df = table([("easy", "1", True, 0.9), ("hard", None, False, 0.8), ("hard", None, False, 0.7)])
    for res in (best_of_n(df, ns=[2], n_trials=20), majority_vote(df, ns=[2], n_trials=20)):
        assert res.n_problems == 2
        assert (res.solved == 50).all()


def test_majority_vote_ties_are_broken_at_random():
    df = table([("q", "a", True, 0.1), ("q", "b", False, 0.9)])
    res = majority_vote(df, ns=[2], n_trials=400, seed=3)
    outcomes = set(res.solved[:, 0])
    assert outcomes == {0.0, 100.0}
    assert abs(res.mean[0] - 50) < 3 * 50 / np.sqrt(400)


def test_majority_vote_counts_and_weighted_vote_sums():
    df = table([("q", "a", False, 0.1), ("q", "a ", False, 0.1), ("q", "a", False, 0.1),
                ("q", "b", True, 0.9)])
    assert (majority_vote(df, ns=[4], n_trials=20).solved == 0).all()  # 3 x "a" beat 1 x "b"
    weighted = majority_vote(df, ns=[4], n_trials=20, weights="prm_score")
    assert (weighted.solved == 100).all()  # 0.9 beats 0.3
    assert weighted.method == "RM-weighted voting" and weighted.score == "prm_score"


def test_answer_key_column_groups_equivalent_answers():
    df = table([("q", "1/2", True, 0.1), ("q", "0.5", True, 0.1), ("q", "3", False, 0.1)])
    assert (majority_vote(df, ns=[3], n_trials=30).solved < 100).any()  # 3 singletons tie
    df["answer_key"] = ["1/2", "1/2", "3"]
    assert (majority_vote(df, ns=[3], n_trials=30).solved == 100).all()


def test_same_seed_same_result_and_trials_do_not_depend_on_their_number():
    df = random_pool(4)
    a = best_of_n(df, ns=NS, n_trials=30, seed=11, pad_to=16)
    b = best_of_n(df, ns=NS, n_trials=30, seed=11, pad_to=16)
    np.testing.assert_array_equal(a.solved, b.solved)
    other = best_of_n(df, ns=NS, n_trials=30, seed=12, pad_to=16)
    assert not np.array_equal(a.solved, other.solved)
    first = best_of_n(df, ns=NS, n_trials=5, seed=11, pad_to=16)
    np.testing.assert_array_equal(first.solved, a.solved[:5])
    fresh = best_of_n(df, ns=NS, n_trials=30, seed=None, pad_to=16)
    again = best_of_n(df, ns=NS, n_trials=30, seed=fresh.seed, pad_to=16)
    np.testing.assert_array_equal(fresh.solved, again.solved)


def test_n_larger_than_pad_size_raises():
    df = random_pool(0)
    with pytest.raises(ValueError, match="N=17 is larger than the pool size pad_to=16"):
        best_of_n(df, ns=[1, 17], pad_to=16, n_trials=2)
    with pytest.raises(ValueError, match="pad_to"):
        majority_vote(df, ns=PAPER_NS, n_trials=2)  # default pad_to = largest pool (< 1860)
    with pytest.raises(ValueError, match="smaller than the largest pool"):
        best_of_n(df, ns=[1], pad_to=2, n_trials=2)


def test_bad_inputs_have_clear_errors():
    df = table([("q", "1", None, 0.4)])
    with pytest.raises(ValueError, match="'is_correct' is missing"):
        best_of_n(df, ns=[1], n_trials=2)
    with pytest.raises(KeyError, match="orm_score"):
        best_of_n(table([("q", "1", True, 0.4)]), score="orm_score", ns=[1], n_trials=2)
    with pytest.raises(ValueError, match="non-negative"):
        majority_vote(table([("q", "1", True, -0.4)]), weights="prm_score", ns=[1], n_trials=2)
    with pytest.raises(ValueError, match="permutation"):
        best_of_n(table([("q", "1", True, 0.4)]), ns=[1], pad_to=2,
                  permutations=np.zeros((3, 1, 2), dtype=int))


def test_result_table_and_per_problem_rates():
    df = random_pool(6)
    results = evaluate_methods(df, ns=NS, n_trials=20, pad_to=16,
                               weighted_voting={"PRM-weighted voting": "prm_score"})
    assert [r.label for r in results] == ["PRM", "ORM", "Majority voting", "PRM-weighted voting"]
    frame = results_frame(results)
    assert list(frame.columns) == ["label", "method", "score", "N", "mean", "std", "n_trials",
                                   "n_problems"]
    assert len(frame) == 4 * len(NS)
    for r in results:
        assert isinstance(r, BestOfNResult)
        assert r.solved.shape == (20, len(NS)) and r.per_problem.shape == (r.n_problems, len(NS))
        np.testing.assert_allclose(r.per_problem.mean(axis=0) * 100, r.mean)


def test_paired_methods_share_shuffles():
    # Same seed -> same shuffles: with one score column copied, the results coincide.
    df = random_pool(7)
    df["copy_score"] = df["prm_score"]
    a = best_of_n(df, score="prm_score", ns=NS, n_trials=20, pad_to=16)
    b = best_of_n(df, score="copy_score", ns=NS, n_trials=20, pad_to=16)
    np.testing.assert_array_equal(a.solved, b.solved)


def test_fill_answer_key_uses_grading_lazily(monkeypatch):
    fake = types.ModuleType("prm_lib.grading")
    fake.answer_key = lambda a: a.replace(" ", "").lower()
    monkeypatch.setitem(sys.modules, "prm_lib.grading", fake)
    out = fill_answer_key(table([("q", "X + 1", True, 0.1), ("q", None, False, 0.1)]))
    assert out["answer_key"][0] == "x+1" and pd.isna(out["answer_key"][1])


def test_plot_best_of_n_draws_curves_bands_and_the_paper_points():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prm_lib.plots import plot_best_of_n

    results = evaluate_methods(random_pool(8), ns=NS, n_trials=10, pad_to=16)
    ax = plot_best_of_n(results)
    assert ax.get_xscale() == "log"
    names = {"PRM", "ORM", "Majority voting"}
    curves = [line for line in ax.get_lines() if line.get_label() in names]
    assert len(curves) == 3 and len(ax.collections) == 3  # one ±1 std band each
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert sorted(float(line.get_ydata()[0]) for line in stars) == [69.6, 72.4, 78.2]
    assert all(float(line.get_xdata()[0]) == 1860 for line in stars)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Lightman et al. 2023, Fig. 3" in t for t in legend)
    # The same from the tidy table, without the paper's points.
    ax2 = plot_best_of_n(results_frame(results), paper_reference=False, title="tiny")
    assert not [line for line in ax2.get_lines() if line.get_marker() == "*"]
    assert ax2.get_title() == "tiny"
    plt.close("all")


# --------------------------------------------------------------------------- statistics


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


def test_trial_standard_errors_follow_the_formula():
    res = best_of_n(synthetic_pool(), "good_score", ns=[1, 4, 8], n_trials=30, pad_to=8)
    sem = trial_standard_errors(res, trials=[2, 10, 30])
    row = sem[(sem.N == 1) & (sem.trials == 10)].iloc[0]
    assert row["sem"] == pytest.approx(res.solved[:10, 0].std(ddof=1) / np.sqrt(10))
    assert (sem[sem.N == 8]["sem"] == 0).all()  # N = the pool: nothing left to shuffle
    assert set(trial_standard_errors(res)["trials"]) >= {2, 30}
    with pytest.raises(ValueError):
        trial_standard_errors(res, trials=[1])


def test_paired_difference_bootstrap_and_sentence():
    pool = synthetic_pool()
    kw = dict(ns=[1, 2, 4, 8], n_trials=40, pad_to=8, seed=3)
    good, noise = best_of_n(pool, "good_score", **kw), best_of_n(pool, "noise_score", **kw)
    d = paired_difference(good, noise)
    np.testing.assert_allclose(d["difference"], good.mean - noise.mean)
    assert ((d["a_ahead"] + d["b_ahead"]) <= 1).all()
    text = describe_difference(good, noise)
    assert text.startswith(f"{good.label} minus {noise.label}:") and "of 4 values of N" in text
    b = problem_bootstrap(good, noise)
    assert b["difference"] == pytest.approx(good.mean[-1] - noise.mean[-1])
    assert b["low"] <= b["difference"] <= b["high"] and b["n_problems"] == 12
    same = problem_bootstrap(good, good)
    assert same["low"] == same["high"] == 0
    with pytest.raises(ValueError, match="same shuffles"):
        paired_difference(good, best_of_n(pool, "noise_score", **{**kw, "seed": 4}))
    table = at_largest_n([good, noise])
    assert table.loc[good.label, "N"] == 8
