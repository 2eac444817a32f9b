"""Figure helpers: what a reader sees must stay readable."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import pandas as pd  # noqa: E402

from prm_lib import plot_data_curves  # noqa: E402


def test_data_curves_zoom_on_the_curves_and_keep_close_line_labels_apart():
    sizes = [1, 2, 4] * 2
    curve = pd.DataFrame({"size": sizes, "solved": [85.0, 88, 91, 84, 87, 92],
                          "supervision": "process"})
    refs = {"random pick": 74.9, "majority voting": 73.0, "likelihood": 72.0, "ceiling": 97.0}
    fig, ax = plt.subplots()
    plot_data_curves(curve, ax=ax, references=refs)
    bottom, top = ax.get_ylim()
    assert bottom == 60 and top > 97  # from a multiple of 10 below the lowest line
    ys = sorted(t.xy[1] for t in ax.texts if any(k in t.get_text() for k in refs))
    assert len(ys) == 4 and min(np.diff(ys)) >= 0.06 * (top - bottom) - 1e-9
    plt.close(fig)
    # nothing solved (a tiny run): the axis still starts near 0 and shows 10 points
    empty = curve.assign(solved=0.0)
    fig, ax = plt.subplots()
    plot_data_curves(empty, ax=ax, references={"ceiling": 0.0})
    assert ax.get_ylim()[0] == -2 and ax.get_ylim()[1] >= 8
    plt.close(fig)


def test_step_auc_curve_draws_precomputed_points_apart_with_their_command():
    from prm_lib.plots import plot_step_auc_curve

    pre = pd.DataFrame({"examples": [200, 2000], "step_auc": [0.55, 0.62],
                        "ci_low": [0.5, 0.58], "ci_high": [0.6, 0.66],
                        "command": ["python experiments/prm800k_data_curve.py"] * 2})
    ax = plot_step_auc_curve(pre, {"examples": 700, "step_auc": 0.6, "ci_low": 0.55,
                                   "ci_high": 0.65}, prior=(0.6, 0.55, 0.65), title="t")
    labels = ax.get_legend_handles_labels()[1]
    assert "precomputed (see caption)" in labels and "this page's run" in labels
    assert any("prm800k_data_curve.py" in t.get_text() for t in ax.texts)
    assert ax.get_xscale() == "log"
    # the precision of each side is named: the same settings in another precision are
    # another run
    ax = plot_step_auc_curve(pre.assign(precision="bfloat16"),
                             {"examples": 700, "step_auc": 0.6, "ci_low": 0.55,
                              "ci_high": 0.65, "precision": "float32"})
    labels = ax.get_legend_handles_labels()[1]
    assert "precomputed (bfloat16; see caption)" in labels
    assert "this page's run (float32)" in labels
    plt.close("all")


def test_a_missing_precomputed_file_says_where_they_live():
    from prm_lib.results import precomputed

    with pytest.raises(FileNotFoundError, match="experiments/"):
        precomputed("no_such_file.csv")
