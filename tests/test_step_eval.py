"""Step-level evaluation: items, shared scoring passes, AUC, calibration, first error,
baselines. Small hand-made solutions with hand-computed answers, then the real phase-1 test.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from prm_lib import step_eval as se
from prm_lib.schema import Completion, LabeledSolution, Step


def C(text, rating):
    return Completion(text, rating)


def sol_a(problem="P1") -> LabeledSolution:
    """Phase-1 style: alternatives at each position, a labeler-written step, an answer."""
    return LabeledSolution(problem, [
        Step((C("a0", 1), C("b0", -1)), chosen=0),
        Step((C("b1", 0), C("a1", 1), C("x1", None)), chosen=1),
        Step((C("c2", -1),), chosen=None, human_completion="h2"),
        Step((C("a3 # Answer 4", 1),), chosen=0),
    ], finish_reason="solution", phase=1)


def sol_c() -> LabeledSolution:
    """An unrated trajectory step, then a stop with two -1 candidates and none chosen."""
    return LabeledSolution("P2", [
        Step((C("d0", 1), C("e0", -1)), chosen=0),
        Step((C("d1", None),), chosen=0),
        Step((C("f2", -1), C("g2", -1))),
    ], finish_reason="found_error", phase=1)


def sol_d() -> LabeledSolution:
    """Phase-2 style: the pre-generated last step is the trajectory's, rated -1."""
    return LabeledSolution("P3", [
        Step((C("p0", 1),), chosen=0),
        Step((C("p1", -1),)),
    ], finish_reason="found_error", phase=2)


def oracle(solutions):
    """A perfect causal scorer: the rating of the last step is known for every item
    sequence; other steps (labeler-written, unrated) count as good."""
    label = {(it.problem, it.steps): it.rating for it in se.step_items(solutions)}
    onehot = {-1: [1.0, 0, 0], 0: [0, 1.0, 0], 1: [0, 0, 1.0], None: [0, 0, 1.0]}

    def score_fn(problems, steps):
        return [np.array([onehot[label.get((p, tuple(s[: k + 1])))] for k in range(len(s))])
                for p, s in zip(problems, steps)]

    return score_fn


def hashed_scorer(calls=None):
    """A causal scorer whose step-k output depends on (problem, steps[:k+1]) only."""

    def score_fn(problems, steps):
        if calls is not None:
            calls.append(len(steps))
        out = []
        for p, s in zip(problems, steps):
            rows = []
            for k in range(len(s)):
                key = "\x00".join([p, *s[: k + 1]]).encode()
                h = np.random.default_rng(zlib.crc32(key)).random(3) + 0.01
                rows.append(h / h.sum())
            out.append(np.array(rows))
        return out

    return score_fn


# --------------------------------------------------------------------------- items


def test_step_items_by_hand():
    items = se.step_items([sol_a()])
    got = [(it.position, it.prefix, it.text, it.rating, it.role) for it in items]
    assert got == [
        (0, (), "a0", 1, "trajectory"),
        (0, (), "b0", -1, "alternative"),
        (1, ("a0",), "a1", 1, "trajectory"),
        (1, ("a0",), "b1", 0, "alternative"),
        (2, ("a0", "a1"), "c2", -1, "alternative"),  # h2 is labeler-written: no item
        (3, ("a0", "a1", "h2"), "a3 # Answer 4", 1, "trajectory"),
    ]
    assert {it.problem for it in items} == {"P1"} and {it.solution_index for it in items} == {0}
    assert items[5].steps == ("a0", "a1", "h2", "a3 # Answer 4")


def test_every_rated_candidate_is_one_item():
    sols = [sol_a(), sol_c(), sol_d()]
    items = se.step_items(sols)
    assert len(items) == sum(s.n_rated for s in sols) == 6 + 4 + 2
    d_items = [it for it in items if it.problem == "P3"]
    assert [(it.text, it.rating, it.role) for it in d_items] == [
        ("p0", 1, "trajectory"), ("p1", -1, "trajectory")]
    np.testing.assert_array_equal(se.item_ratings(items[:6]), [1, -1, 1, 0, -1, 1])
    frame = se.item_frame(items, np.tile([0.2, 0.3, 0.5], (len(items), 1)))
    assert list(frame["role"])[:2] == ["trajectory", "alternative"]
    assert frame["p_negative"].eq(0.2).all()


# --------------------------------------------------------------------------- sequences


def test_scoring_sequences_share_passes_and_deduplicate():
    sols = [sol_a(), sol_a(), sol_c()]  # the second is a duplicate session
    items = se.step_items(sols)
    seqs = se.scoring_sequences(items)
    by_steps = {(s.problem, s.steps): s.item_indices_per_step for s in seqs}
    # P1: the trajectory (all its rated steps in one pass) + one pass per alternative;
    # the duplicate adds no pass. P2: the trajectory (d0,) is a prefix of (d0, d1, f2).
    assert by_steps == {
        ("P1", ("a0", "a1", "h2", "a3 # Answer 4")): ((0, 6), (2, 8), (), (5, 11)),
        ("P1", ("b0",)): ((1, 7),),
        ("P1", ("a0", "b1")): ((), (3, 9)),
        ("P1", ("a0", "a1", "c2")): ((), (), (4, 10)),
        ("P2", ("d0", "d1", "f2")): ((12,), (), (14,)),
        ("P2", ("d0", "d1", "g2")): ((), (), (15,)),
        ("P2", ("e0",)): ((13,),),
    }
    slots = sorted(i for s in seqs for step in s.item_indices_per_step for i in step)
    assert slots == list(range(len(items)))  # every item in exactly one slot


def test_score_items_equals_scoring_each_item_alone():
    sols = [sol_a(), sol_a(), sol_c(), sol_d()]
    items = se.step_items(sols)
    calls = []
    probs = se.score_items(items, hashed_scorer(calls), batch_size=3)
    alone = hashed_scorer()([it.problem for it in items], [list(it.steps) for it in items])
    np.testing.assert_allclose(probs, [a[-1] for a in alone])
    assert probs.shape == (len(items), 3)
    assert sum(calls) == len(se.scoring_sequences(items)) and max(calls) <= 3


def test_score_steps_returns_every_step_and_checks_the_scorer():
    out = se.score_steps(["P", "P"], [["s0", "s1"], ["s0"]], hashed_scorer())
    assert [o.shape for o in out] == [(2, 3), (1, 3)]
    np.testing.assert_allclose(out[1][0], out[0][0])  # read from the same pass
    with pytest.raises(ValueError, match="shape"):
        se.score_steps(["P"], [["s0", "s1"]], lambda p, s: [np.ones((1, 3)) / 3])
    with pytest.raises(ValueError, match="sum to 1"):
        se.score_steps(["P"], [["s0"]], lambda p, s: [np.ones((1, 3))])
    with pytest.raises(ValueError, match="arrays"):
        se.score_steps(["P"], [["s0"]], lambda p, s: [])


# --------------------------------------------------------------------------- AUC


def test_step_auc_by_hand():
    # -1 steps score 0.9 and 0.4; the others 0.2 and 0.9. Pairs: 1 + 1/2 + 1 + 0 = 2.5 of 4.
    res = se.step_auc([-1, 1, 0, -1], [0.9, 0.2, 0.9, 0.4], n_boot=0)
    assert res.auc == pytest.approx(0.625)
    assert (res.n_positive, res.n_total) == (2, 4)


def test_weighted_auc_equals_sklearn_on_repeated_items():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.random(300), 1)  # many ties
    w = rng.integers(0, 4, 300)
    uniq, inv = np.unique(s, return_inverse=True)
    expected = roc_auc_score(np.repeat(y, w), np.repeat(s, w))
    assert se._weighted_auc(inv, y, w.astype(float), len(uniq)) == pytest.approx(expected)


def test_bootstrap_ci_contains_estimate_and_resamples_problems():
    rng = np.random.default_rng(0)
    n_problems, per = 40, 25
    groups = np.repeat(np.arange(n_problems), per)
    # Problem-level effects make items of one problem alike: clustering must widen the CI.
    bad_rate = rng.uniform(0.1, 0.9, n_problems)[groups]
    ratings = np.where(rng.random(len(groups)) < bad_rate, -1, 1)
    p = np.clip(bad_rate + rng.normal(0, 0.3, len(groups)), 0, 1)
    clustered = se.step_auc(ratings, p, groups, n_boot=300, seed=3)
    assert clustered.ci_low <= clustered.auc <= clustered.ci_high
    assert clustered.n_groups == n_problems and clustered.n_boot == 300
    assert clustered == se.step_auc(ratings, p, groups, n_boot=300, seed=3)  # seeded
    items_only = se.step_auc(ratings, p, None, n_boot=300, seed=3)
    assert (clustered.ci_high - clustered.ci_low) > (items_only.ci_high - items_only.ci_low)


def test_perfect_and_constant_scorers():
    sols = [sol_a(), sol_c(), sol_d()]
    items = se.step_items(sols)
    r = se.item_ratings(items)
    perfect = se.score_items(items, oracle(sols))
    res = se.step_auc(r, perfect[:, 0], se.item_problems(items), n_boot=50)
    assert res.auc == 1.0 and res.ci_low == 1.0
    const = se.score_items(items, se.constant_baseline(0.3))
    res = se.step_auc(r, const[:, 0], se.item_problems(items), n_boot=50)
    assert res.auc == 0.5 and res.ci_low == res.ci_high == 0.5
    assert np.isnan(se.step_auc([1, 1, 0], [0.1, 0.2, 0.3]).auc)  # no -1 step at all


# --------------------------------------------------------------------------- calibration


def test_calibration_table_by_hand():
    t = se.calibration_table([1, -1, 1, -1, -1], [0.05, 0.15, 0.15, 0.95, 1.0], n_bins=10)
    assert list(t["n"]) == [1, 1 + 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 1.0 falls in the last bin
    assert t.loc[1, "mean_predicted"] == pytest.approx(0.15)
    assert t.loc[1, "observed"] == pytest.approx(0.5)
    assert t.loc[9, "observed"] == 1.0 and np.isnan(t.loc[4, "observed"])
    assert t.loc[1, "ci_low"] < 0.5 < t.loc[1, "ci_high"]
    # ECE = (1 * 0.05 + 2 * 0.35 + 2 * 0.025) / 5
    assert t.attrs["ece"] == pytest.approx(0.8 / 5)
    assert t.attrs["n_total"] == 5


def test_plot_calibration_draws_diagonal_and_counts():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prm_lib.plots import plot_calibration

    t = se.calibration_table([1, -1, 1, -1], [0.05, 0.15, 0.15, 0.95])
    ax = plot_calibration(t, label="hand")
    ax = plot_calibration(t, ax=ax, label="again", counts=False)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels.count("perfect calibration") == 1
    assert {"1", "2"} <= {a.get_text() for a in ax.texts}
    assert "ECE" in ax.get_legend().get_texts()[1].get_text()
    plt.close(ax.figure)


# --------------------------------------------------------------------------- first error


def test_first_error_sets_by_hand():
    fe = se.first_error_sets([sol_a(), sol_a(), sol_c(), sol_d()])
    got = [(s.problem, s.steps, s.first_error) for s in fe.solutions]
    assert got == [
        ("P1", ("b0",), 0),
        ("P1", ("a0", "a1", "c2"), 2),  # the -1 alternative beside the labeler's h2
        ("P1", ("a0", "a1", "h2", "a3 # Answer 4"), -1),
        ("P2", ("e0",), 0),
        ("P3", ("p0", "p1"), 1),
    ]
    assert (fe.n_erroneous, fe.n_correct) == (4, 1)
    assert fe.skipped == {
        "duplicate": 3,
        "-1 step behind a prefix with an unrated step": 2,  # f2, g2 after unrated d1
        "trajectory not finished as a solution (found_error)": 2,
    }
    np.testing.assert_array_equal(fe.first_errors, [0, 2, -1, 0, 1])
    assert "4 erroneous + 1 correct" in fe.summary()


def test_first_error_prefix_rules():
    neutral_then_bad = LabeledSolution("P4", [
        Step((C("n0", 0),), chosen=0),
        Step((C("q1", 1), C("bad1", -1)), chosen=0, human_completion=None),
    ], finish_reason="solution")
    fe = se.first_error_sets([neutral_then_bad])
    # Neutral is not an error: the -1 behind it counts, and the trajectory is correct.
    assert [(s.steps, s.first_error) for s in fe.solutions] == [
        (("n0", "bad1"), 1), (("n0", "q1"), -1)]
    bad_trajectory = LabeledSolution("P5", [
        Step((C("t0", -1),), chosen=0),
        Step((C("t1", 1), C("t1b", -1)), chosen=0),
    ], finish_reason="solution")
    fe = se.first_error_sets([bad_trajectory])
    assert [(s.steps, s.first_error) for s in fe.solutions] == [(("t0",), 0)]
    assert fe.skipped == {"-1 step behind a prefix with a -1 step": 1,
                          "finished trajectory with a -1 step": 1}
    assert len(se.first_error_sets([sol_a(), sol_a()], deduplicate=False).solutions) == 6


def test_predict_first_error():
    probs = np.array([[0.1, 0.5, 0.4], [0.5, 0.1, 0.4], [0.7, 0.1, 0.2]])
    assert se.predict_first_error(probs) == 2  # 0.5 does not exceed 0.5
    assert se.predict_first_error(probs, threshold=0.2) == 1
    assert se.predict_first_error(probs, neutral="negative") == 0  # 0.1 + 0.5 > 0.5
    assert se.predict_first_error(probs, threshold=0.7) == -1
    np.testing.assert_array_equal(se.predict_first_error([probs, probs[:1]]), [2, -1])
    with pytest.raises(ValueError):
        se.predict_first_error(probs, neutral="ignore")


def test_first_error_metrics_by_hand():
    m = se.first_error_metrics([2, 0, -1, -1, 1], [2, 1, -1, 0, -1])
    assert m["acc_erroneous"] == pytest.approx(1 / 3)
    assert m["acc_correct"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # = 0.4
    assert (m["n_erroneous"], m["n_correct"]) == (3, 2)
    assert se.first_error_metrics([1, -1], [-1, 0])["f1"] == 0.0


def test_perfect_scorer_has_first_error_f1_one():
    sols = [sol_a(), sol_c(), sol_d()]
    fe = se.first_error_sets(sols)
    step_probs = se.score_steps(fe.problems, fe.steps, oracle(sols))
    m = se.first_error_metrics(fe.first_errors, se.predict_first_error(step_probs))
    assert m["f1"] == 1.0 and m["acc_erroneous"] == 1.0 and m["acc_correct"] == 1.0


def test_best_threshold_is_the_best_on_a_fine_grid():
    rng = np.random.default_rng(5)
    truth, probs = [], []
    for _ in range(200):
        n = int(rng.integers(1, 8))
        k = int(rng.integers(-1, n))
        p = rng.dirichlet([1, 1, 1], size=n)
        if k >= 0:  # a weak signal at the error step
            p[k] = rng.dirichlet([3, 1, 1])
        truth.append(k)
        probs.append(p)
    truth = np.array(truth)
    for neutral in ("positive", "negative"):
        t = se.best_threshold(truth, probs, neutral)
        f1 = se.first_error_metrics(truth, se.predict_first_error(probs, t, neutral))["f1"]
        grid = [se.first_error_metrics(truth, se.predict_first_error(probs, g, neutral))["f1"]
                for g in np.linspace(0, 1, 401)]
        assert 0 <= t <= 1 and f1 == pytest.approx(max(f1, *grid)) and f1 >= max(grid) - 1e-12


# --------------------------------------------------------------------------- baselines


def test_constant_first_error_predictions():
    fe = se.first_error_sets([sol_a(), sol_c(), sol_d()])
    none = se.first_error_metrics(fe.first_errors, se.constant_first_error(fe, "no error"))
    assert (none["acc_erroneous"], none["acc_correct"], none["f1"]) == (0.0, 1.0, 0.0)
    zero = se.first_error_metrics(fe.first_errors, se.constant_first_error(fe, "step 0"))
    assert zero["acc_erroneous"] == pytest.approx(2 / 4) and zero["f1"] == 0.0
    # The constant scorer reproduces both through the threshold.
    for p, expected in ((0.3, -1), (0.9, 0)):
        probs = se.score_steps(fe.problems, fe.steps, se.constant_baseline(p))
        assert set(se.predict_first_error(probs, 0.5)) == {expected}


def test_position_prior_is_fitted_on_train_only():
    train = [
        se.StepItem(0, 0, (), "s", -1, "alternative", "T"),
        se.StepItem(0, 0, (), "s", 1, "trajectory", "T"),
        se.StepItem(0, 1, ("s",), "s", 0, "alternative", "T"),
        se.StepItem(0, 1, ("s",), "s", 0, "alternative", "T"),
        se.StepItem(0, 1, ("s",), "s", 1, "trajectory", "T"),
        se.StepItem(0, 1, ("s",), "s", 1, "trajectory", "T"),
    ]
    prior = se.position_prior_baseline(train, min_count=1, smoothing=0.0)
    np.testing.assert_allclose(prior.table["any"], [[0.5, 0, 0.5], [0, 0.5, 0.5]])
    test = se.step_items([sol_a()])  # positions 0..3; 2 and 3 use the last row
    np.testing.assert_allclose(prior.predict_items(test)[:, 0], [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(se.score_items(test, prior), prior.predict_items(test))
    # Smoothing pulls toward the overall frequencies (1/6, 2/6, 3/6).
    smooth = se.position_prior_baseline(train, min_count=1, smoothing=6.0)
    np.testing.assert_allclose(smooth.table["any"][0], (np.array([1, 0, 1]) + [1, 2, 3]) / 8)
    # Positions with fewer than min_count items from there on share one row.
    assert len(se.position_prior_baseline(train, min_count=5).table["any"]) == 1
    by_role = se.position_prior_baseline(train, by_role=True, min_count=1, smoothing=0.0)
    np.testing.assert_allclose(by_role.predict_items(test)[:, 0], [0, 1, 0, 0, 0, 0])
    with pytest.raises(TypeError, match="role"):
        by_role(["P"], [["s"]])


# --------------------------------------------------------------------------- real data


def test_real_phase1_test(data_dir):
    from prm_lib.data import load_prm800k

    data = load_prm800k("test", data_dir=data_dir, join_answers=False)
    items = se.step_items(data)
    assert len(items) == data.reports[0].counts["rated step"] == 5_082
    r = se.item_ratings(items)
    assert (r == -1).sum() == 1_970
    # Phase 1: every rated trajectory step is +1; the -1 labels are all alternatives.
    assert {it.rating for it in items if it.role == "trajectory"} == {1}
    seqs = se.scoring_sequences(items)
    assert len(seqs) == 3_202
    assert sum(len(i) for s in seqs for i in s.item_indices_per_step) == len(items)
    fe = se.first_error_sets(data)
    assert (fe.n_erroneous, fe.n_correct) == (1_698, 90)
    assert fe.skipped["duplicate"] == 272  # five labeling sessions appear twice in the file


def test_reuse_scores_looks_up_known_items_and_scores_only_the_rest():
    sols = [sol_a(), sol_c(), sol_d()]
    scorer = hashed_scorer()
    items = se.step_items(sols)
    known = se.score_items(items, scorer)
    fe = se.first_error_sets(sols)
    fresh = se.first_error_step_probs(fe, lambda its: se.score_items(its, scorer))
    asked = []

    def rest(its):
        asked.extend(its)
        return se.score_items(its, scorer)

    reused = se.first_error_step_probs(fe, se.reuse_scores(items, known, rest))
    for a, b in zip(fresh, reused):
        np.testing.assert_allclose(a, b)
    seen = {(it.problem, it.prefix, it.text) for it in items}
    assert len(asked) < sum(len(s) for s in fe.steps)  # most were looked up
    assert all((it.problem, tuple(it.prefix), it.text) not in seen for it in asked)
    # half of the known items forgotten: those are asked for, the result is the same
    half = len(items) // 2
    asked.clear()
    again = se.first_error_step_probs(fe, se.reuse_scores(items[:half], known[:half], rest))
    for a, b in zip(fresh, again):
        np.testing.assert_allclose(a, b)
    assert asked
    with pytest.raises(ValueError, match="shape"):
        se.reuse_scores(items, known[:1], rest)
