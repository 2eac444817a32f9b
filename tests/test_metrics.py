"""Metrics of probabilities: step AUC with its bootstrap, calibration, first-error
prediction, F1 and the threshold search, the within-problem AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from prm_lib import metrics
from prm_lib.baselines import constant_baseline
from prm_lib.items import first_error_sets, item_problems, item_ratings, step_items
from prm_lib.metrics import (best_threshold, calibration_table, first_error_metrics,
                             predict_first_error, step_auc, within_problem_auc)
from prm_lib.reward_model import step_correct_probability
from prm_lib.scoring import score_items, score_steps

from .step_solutions import oracle, sol_a, sol_c, sol_d


# --------------------------------------------------------------------------- AUC


def test_step_auc_by_hand():
    # -1 steps score 0.9 and 0.4; the others 0.2 and 0.9. Pairs: 1 + 1/2 + 1 + 0 = 2.5 of 4.
    res = step_auc([-1, 1, 0, -1], [0.9, 0.2, 0.9, 0.4], n_boot=0)
    assert res.auc == pytest.approx(0.625)
    assert (res.n_positive, res.n_total) == (2, 4)


def test_weighted_auc_equals_sklearn_on_repeated_items():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.random(300), 1)  # many ties
    w = rng.integers(0, 4, 300)
    uniq, inv = np.unique(s, return_inverse=True)
    expected = roc_auc_score(np.repeat(y, w), np.repeat(s, w))
    assert metrics._weighted_auc(inv, y, w.astype(float), len(uniq)) == pytest.approx(expected)


def test_bootstrap_ci_contains_estimate_and_resamples_problems():
    rng = np.random.default_rng(0)
    n_problems, per = 40, 25
    groups = np.repeat(np.arange(n_problems), per)
    # Problem-level effects make items of one problem alike: clustering must widen the CI.
    bad_rate = rng.uniform(0.1, 0.9, n_problems)[groups]
    ratings = np.where(rng.random(len(groups)) < bad_rate, -1, 1)
    p = np.clip(bad_rate + rng.normal(0, 0.3, len(groups)), 0, 1)
    clustered = step_auc(ratings, p, groups, n_boot=300, seed=3)
    assert clustered.ci_low <= clustered.auc <= clustered.ci_high
    assert clustered.n_groups == n_problems and clustered.n_boot == 300
    assert clustered == step_auc(ratings, p, groups, n_boot=300, seed=3)  # seeded
    items_only = step_auc(ratings, p, None, n_boot=300, seed=3)
    assert (clustered.ci_high - clustered.ci_low) > (items_only.ci_high - items_only.ci_low)


def test_perfect_and_constant_scorers():
    sols = [sol_a(), sol_c(), sol_d()]
    items = step_items(sols)
    r = item_ratings(items)
    perfect = score_items(items, oracle(sols))
    res = step_auc(r, perfect[:, 0], item_problems(items), n_boot=50)
    assert res.auc == 1.0 and res.ci_low == 1.0
    const = score_items(items, constant_baseline(0.3))
    res = step_auc(r, const[:, 0], item_problems(items), n_boot=50)
    assert res.auc == 0.5 and res.ci_low == res.ci_high == 0.5
    assert np.isnan(step_auc([1, 1, 0], [0.1, 0.2, 0.3]).auc)  # no -1 step at all


def test_within_problem_auc_by_hand():
    pool = pd.DataFrame({"problem_index": [0, 0, 0, 1, 1, 2, 2],
                         "is_correct": [True, False, False, True, False, True, True]})
    # problem 0: the right sample ranked first (AUC 1); problem 1: last (AUC 0);
    # problem 2 has no wrong sample and does not count
    scores = np.array([3.0, 1.0, 2.0, 0.0, 5.0, 1.0, 2.0])
    assert within_problem_auc(pool, scores) == pytest.approx(0.5)
    assert within_problem_auc(pool, -scores) == pytest.approx(0.5)
    assert within_problem_auc(pool.iloc[:3], scores[:3]) == 1.0
    assert np.isnan(within_problem_auc(pool.iloc[5:], scores[5:]))
    # a score that only tells problems apart earns nothing within a problem
    assert within_problem_auc(pool, pool["problem_index"].to_numpy(float)) == 0.5


# --------------------------------------------------------------------------- calibration


def test_calibration_table_by_hand():
    t = calibration_table([1, -1, 1, -1, -1], [0.05, 0.15, 0.15, 0.95, 1.0], n_bins=10)
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

    t = calibration_table([1, -1, 1, -1], [0.05, 0.15, 0.15, 0.95])
    ax = plot_calibration(t, label="hand")
    ax = plot_calibration(t, ax=ax, label="again", counts=False)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels.count("perfect calibration") == 1
    assert {"1", "2"} <= {a.get_text() for a in ax.texts}
    assert "ECE" in ax.get_legend().get_texts()[1].get_text()
    plt.close(ax.figure)


# --------------------------------------------------------------------------- first error


def test_predict_first_error():
    probs = np.array([[0.1, 0.5, 0.4], [0.5, 0.1, 0.4], [0.7, 0.1, 0.2]])
    assert predict_first_error(probs) == 2  # 0.5 does not exceed 0.5
    assert predict_first_error(probs, threshold=0.2) == 1
    assert predict_first_error(probs, neutral="negative") == 0  # 0.1 + 0.5 > 0.5
    assert predict_first_error(probs, threshold=0.7) == -1
    np.testing.assert_array_equal(predict_first_error([probs, probs[:1]]), [2, -1])
    with pytest.raises(ValueError):
        predict_first_error(probs, neutral="ignore")


def test_p_bad_is_one_minus_the_solution_scores_p_correct():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=1000)
    for neutral, direct in (("positive", probs[:, 0]), ("negative", probs[:, 0] + probs[:, 1])):
        p_bad = metrics._p_bad(probs, neutral)
        np.testing.assert_array_equal(p_bad, 1 - step_correct_probability(probs, neutral))
        np.testing.assert_allclose(p_bad, direct, rtol=0, atol=1e-15)


def test_first_error_metrics_by_hand():
    m = first_error_metrics([2, 0, -1, -1, 1], [2, 1, -1, 0, -1])
    assert m["acc_erroneous"] == pytest.approx(1 / 3)
    assert m["acc_correct"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # = 0.4
    assert (m["n_erroneous"], m["n_correct"]) == (3, 2)
    assert first_error_metrics([1, -1], [-1, 0])["f1"] == 0.0


def test_perfect_scorer_has_first_error_f1_one():
    sols = [sol_a(), sol_c(), sol_d()]
    fe = first_error_sets(sols)
    step_probs = score_steps(fe.problems, fe.steps, oracle(sols))
    m = first_error_metrics(fe.first_errors, predict_first_error(step_probs))
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
        t = best_threshold(truth, probs, neutral)
        f1 = first_error_metrics(truth, predict_first_error(probs, t, neutral))["f1"]
        grid = [first_error_metrics(truth, predict_first_error(probs, g, neutral))["f1"]
                for g in np.linspace(0, 1, 401)]
        assert 0 <= t <= 1 and f1 == pytest.approx(max(f1, *grid)) and f1 >= max(grid) - 1e-12


def test_solution_auc_ignores_nan_scores_and_needs_both_classes():
    from prm_lib.metrics import solution_auc

    y = np.array([True, False, True, False, True])
    s = np.array([0.9, 0.1, 0.8, np.nan, 0.2])
    assert solution_auc(y, s) == pytest.approx(1.0)  # ranks the 4 scored ones perfectly
    assert solution_auc(y[:1], s[:1]) != solution_auc(y[:1], s[:1])  # one class: NaN
    assert solution_auc(y, -s) == pytest.approx(0.0)


def test_labeled_step_auc_pooled_and_within_the_same_prefix():
    from prm_lib.metrics import labeled_step_auc

    # problem 0: two samples share step "a" then differ at step 1 (good "b", bad "x");
    # problem 1: one sample, bad at step 0, and its later step is not labeled
    pool = pd.DataFrame({
        "problem_index": [0, 0, 1],
        "steps": [["a", "b"], ["a", "x"], ["y", "z"]],
        "ratings": [(1, 1), (1, -1), (-1, 1)],
        "first_error": [-1, 1, 0],
    })

    def probs(p_bad):
        return np.array([[p, 0.0, 1 - p] for p in p_bad])

    # suspicion: step 1 of sample 1 (bad) above step 1 of sample 0 (good): verifies
    verifying = [probs([0.1, 0.2]), probs([0.1, 0.6]), probs([0.3, 0.99])]
    r = labeled_step_auc(pool, verifying)
    assert r["steps"] == 5 and r["bad_steps"] == 2  # sample 2's second step is unlabeled
    assert r["same_prefix"] == 1.0 and r["groups"] == 1 and r["group_steps"] == 2
    # a scorer that only knows positions (later = riskier) earns pooled AUC, not same-prefix
    by_position = [probs([0.1, 0.5]), probs([0.1, 0.5]), probs([0.1, 0.5])]
    r = labeled_step_auc(pool, by_position)
    assert r["same_prefix"] == 0.5
    assert r["pooled"] == pytest.approx(roc_auc_score([0, 0, 0, 1, 1], [.1, .5, .1, .5, .1]))


def test_grouped_auc_counts_pairs_inside_groups_only():
    from prm_lib.metrics import grouped_auc

    # two groups (say, two branch points): group a holds a bad and two good steps, group
    # b a bad and a good one; a third group has no bad step and adds no pair
    bad = [True, False, False, True, False, False]
    groups = ["a", "a", "a", "b", "b", "c"]
    position = [0.9, 0.9, 0.9, 0.1, 0.1, 0.5]  # one score per group: where, not whether
    assert grouped_auc(bad, position, groups) == {"auc": 0.5, "pairs": 3, "groups": 2,
                                                  "group_steps": 5}
    content = [0.8, 0.2, 0.1, 0.3, 0.2, 0.9]
    assert grouped_auc(bad, content, groups)["auc"] == 1.0
    # pooled, the content scorer is not perfect (0.3 < 0.9): only the groups separate them
    mixed = [0.8, 0.2, 0.9, 0.3, 0.2, 0.0]
    assert grouped_auc(bad, mixed, groups)["auc"] == pytest.approx(2 / 3)
    assert np.isnan(grouped_auc([False, False], [0.1, 0.2], ["a", "a"])["auc"])
    assert grouped_auc(bad, [np.nan] + content[1:], groups)["pairs"] == 1


def test_grouped_auc_interval_resamples_clusters():
    from prm_lib.metrics import grouped_auc

    bad = [True, False, False, True, False, False]
    groups = ["a", "a", "a", "b", "b", "c"]
    mixed = [0.8, 0.2, 0.9, 0.3, 0.2, 0.0]  # group a: 1 of 2 pairs right; group b: 1 of 1
    r = grouped_auc(bad, mixed, groups, n_boot=500, seed=1)
    assert r["auc"] == pytest.approx(2 / 3) and r["clusters"] == 2
    # a resample holds group a twice (1/2), b twice (1) or one of each (2/3)
    assert r["ci_low"] == pytest.approx(0.5) and r["ci_high"] == pytest.approx(1.0)
    # both groups in one cluster (one problem): every resample is the whole data
    one = grouped_auc(bad, mixed, groups, clusters=["p"] * 6, n_boot=200)
    assert one["clusters"] == 1 and one["ci_low"] == one["ci_high"] == pytest.approx(2 / 3)
    assert "ci_low" not in grouped_auc(bad, mixed, groups)
    with pytest.raises(ValueError, match="one of each per step"):
        grouped_auc(bad, mixed, groups, clusters=["p"])
