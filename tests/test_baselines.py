"""The baselines a PRM must beat: the constant scorer, the constant first-error
predictions and the step-position prior."""

from __future__ import annotations

import numpy as np
import pytest

from prm_lib.baselines import constant_baseline, constant_first_error, position_prior_baseline
from prm_lib.items import StepItem, first_error_sets, step_items
from prm_lib.metrics import first_error_metrics, predict_first_error
from prm_lib.scoring import score_items, score_steps

from .step_solutions import sol_a, sol_c, sol_d


def test_constant_first_error_predictions():
    fe = first_error_sets([sol_a(), sol_c(), sol_d()])
    none = first_error_metrics(fe.first_errors, constant_first_error(fe, "no error"))
    assert (none["acc_erroneous"], none["acc_correct"], none["f1"]) == (0.0, 1.0, 0.0)
    zero = first_error_metrics(fe.first_errors, constant_first_error(fe, "step 0"))
    assert zero["acc_erroneous"] == pytest.approx(2 / 4) and zero["f1"] == 0.0
    # The constant scorer reproduces both through the threshold.
    for p, expected in ((0.3, -1), (0.9, 0)):
        probs = score_steps(fe.problems, fe.steps, constant_baseline(p))
        assert set(predict_first_error(probs, 0.5)) == {expected}


def test_position_prior_is_fitted_on_train_only():
    train = [
        StepItem(0, 0, (), "s", -1, "alternative", "T"),
        StepItem(0, 0, (), "s", 1, "trajectory", "T"),
        StepItem(0, 1, ("s",), "s", 0, "alternative", "T"),
        StepItem(0, 1, ("s",), "s", 0, "alternative", "T"),
        StepItem(0, 1, ("s",), "s", 1, "trajectory", "T"),
        StepItem(0, 1, ("s",), "s", 1, "trajectory", "T"),
    ]
    prior = position_prior_baseline(train, min_count=1, smoothing=0.0)
    np.testing.assert_allclose(prior.table["any"], [[0.5, 0, 0.5], [0, 0.5, 0.5]])
    test = step_items([sol_a()])  # positions 0..3; 2 and 3 use the last row
    np.testing.assert_allclose(prior.predict_items(test)[:, 0], [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(score_items(test, prior), prior.predict_items(test))
    # Smoothing pulls toward the overall frequencies (1/6, 2/6, 3/6).
    smooth = position_prior_baseline(train, min_count=1, smoothing=6.0)
    np.testing.assert_allclose(smooth.table["any"][0], (np.array([1, 0, 1]) + [1, 2, 3]) / 8)
    # Positions with fewer than min_count items from there on share one row.
    assert len(position_prior_baseline(train, min_count=5).table["any"]) == 1
    by_role = position_prior_baseline(train, by_role=True, min_count=1, smoothing=0.0)
    np.testing.assert_allclose(by_role.predict_items(test)[:, 0], [0, 1, 0, 0, 0, 0])
    with pytest.raises(TypeError, match="role"):
        by_role(["P"], [["s"]])
