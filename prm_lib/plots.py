"""Figures of the book: best-of-N curves (the paper's Figure 3), calibration, training
curves, data curves (Figure 4 and active learning), the spread of best-of-N trials, and
an interval against the paper's number. Each takes computed results and draws them; none
computes a result of its own."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .best_of_n import BestOfNResult, results_frame
from .paper import PAPER_BEST_OF_1860, PAPER_FIGURE_3_SOURCE, PAPER_POOL_SIZE

__all__ = ["plot_best_of_n", "plot_data_curves", "add_caption", "plot_trial_spread",
           "plot_interval"]

# Log-axis ticks at least ~2x apart so their labels never collide.
_TICKS = (1, 2, 5, 10, 25, 50, 100, 250, 500, PAPER_POOL_SIZE)


def _as_frame(results) -> pd.DataFrame:
    if isinstance(results, BestOfNResult):
        return results.to_frame()
    if isinstance(results, pd.DataFrame):
        frame = results
    else:
        frame = results_frame(list(results))
    missing = {"N", "mean", "std"} - set(frame.columns)
    if missing or not ({"label", "method"} & set(frame.columns)):
        raise ValueError(
            f"results need columns N, mean, std and label or method (as made by "
            f"BestOfNResult.to_frame / results_frame); missing {sorted(missing) or ['label']}"
        )
    return frame


def _palette(n: int) -> list:
    try:
        import seaborn as sns

        return sns.color_palette("colorblind", max(n, 3))
    except ImportError:  # seaborn is optional styling
        return [plt.get_cmap("tab10")(i % 10) for i in range(max(n, 3))]


def _reference_curve(name: str, curves: dict[str, dict]) -> str | None:
    """The plotted curve that corresponds to the paper's ``name`` ("PRM", "ORM",
    "Majority voting"), matched by label, else by method and score column."""
    for label in curves:
        if label.lower() == name.lower():
            return label
    for label, info in curves.items():
        score = str(info.get("score") or "").lower()
        if name == "Majority voting" and info.get("method") == "majority voting":
            return label
        if info.get("method") == "best-of-N" and score.startswith(name.lower()):
            return label
    return None


def _scale_note(frame: pd.DataFrame) -> str:
    def span(col):
        if col not in frame:
            return "?"
        lo, hi = int(frame[col].min()), int(frame[col].max())
        return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"

    return (f"ours: {span('n_problems')} problems, N up to {int(frame['N'].max()):,}, "
            f"{span('n_trials')} trials; band = ±1 std over trials")


def _label_reference_points(ax: plt.Axes) -> None:
    """Write "PRM 78.2" etc. right of the paper's markers, nudged apart vertically so
    close values (72.4 and 69.6) stay readable."""
    lo, hi = ax.get_ylim()
    gap = 0.05 * (hi - lo)
    previous = np.inf
    for name, value in sorted(PAPER_BEST_OF_1860.items(), key=lambda kv: -kv[1]):
        y = min(value, previous - gap)
        previous = y
        short = name.split()[0]  # "Majority voting" -> "Majority": the legend has the rest
        ax.annotate(f"{short} {value:g}", (PAPER_POOL_SIZE, y), xytext=(9, 0),
                    textcoords="offset points", va="center", fontsize=8, color="0.2")


def plot_best_of_n(
    results: BestOfNResult | Sequence[BestOfNResult] | pd.DataFrame,
    ax: plt.Axes | None = None,
    paper_reference: bool = True,
    title: str | None = None,
) -> plt.Axes:
    """% of problems solved against N (log scale), one curve per method.

    Args:
        results: a :class:`BestOfNResult`, a list of them, or their tidy table
            (:func:`prm_lib.best_of_n.results_frame`).
        ax: axes to draw on; default a new 7x4.5 inch figure.
        paper_reference: mark the paper's best-of-1860 numbers
            (:data:`~prm_lib.paper.PAPER_BEST_OF_1860`, Figure 3) at N=1,860, coloured
            like the matching curve.
        title: axes title; default ``"Best-of-N on <n> problems"``.

    Returns:
        the axes. Each curve is the mean over trials with a shaded band of ±1 standard
        deviation; a note in the corner states the scale (problems, N, trials).
    """
    frame = _as_frame(results)
    key = "label" if "label" in frame else "method"
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    labels = list(dict.fromkeys(frame[key]))
    colors = dict(zip(labels, _palette(len(labels))))
    curves = {}
    for label in labels:
        part = frame[frame[key] == label].sort_values("N")
        n, mean, std = part["N"].to_numpy(), part["mean"].to_numpy(), part["std"].to_numpy()
        ax.plot(n, mean, marker="o", markersize=3, linewidth=1.8, color=colors[label], label=label)
        ax.fill_between(n, mean - std, mean + std, color=colors[label], alpha=0.2, linewidth=0)
        curves[label] = {"method": part["method"].iloc[0] if "method" in part else None,
                         "score": part["score"].iloc[0] if "score" in part else None}

    handles, names = ax.get_legend_handles_labels()
    if paper_reference:
        for name, value in PAPER_BEST_OF_1860.items():
            match = _reference_curve(name, curves)
            ax.plot([PAPER_POOL_SIZE], [value], marker="*", markersize=13,
                    color=colors[match] if match else "0.4", markeredgecolor="black",
                    markeredgewidth=0.7, linestyle="none", zorder=5)
        handles.append(Line2D([], [], marker="*", markersize=11, color="0.6",
                              markeredgecolor="black", linestyle="none"))
        names.append(f"paper, best-of-{PAPER_POOL_SIZE:,} ({PAPER_FIGURE_3_SOURCE})")

    ax.set_xscale("log")
    lo = min(frame["N"].min(), PAPER_POOL_SIZE if paper_reference else np.inf)
    hi = max(frame["N"].max(), PAPER_POOL_SIZE if paper_reference else 0)
    ticks = [t for t in _TICKS if lo <= t <= hi] or sorted(frame["N"].unique())
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(lo / 1.15, hi * (4.0 if paper_reference else 1.15))  # room for the labels
    ax.set_xlabel("N = solutions per problem (log scale)")
    ax.set_ylabel("% of problems solved")
    ax.grid(True, which="major", alpha=0.3)
    if paper_reference:
        _label_reference_points(ax)
    ax.legend(handles, names, loc="best", fontsize=8, framealpha=0.9)
    ax.text(0.01, 0.99, _scale_note(frame), transform=ax.transAxes, va="top", fontsize=7.5,
            color="0.35")
    if title is None and "n_problems" in frame:
        title = f"Best-of-N on {int(frame['n_problems'].max()):,} problems"
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- calibration

__all__.append("plot_calibration")


def _compact(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else f"{n:,}"


def plot_calibration(
    table: pd.DataFrame,
    ax: plt.Axes | None = None,
    label: str | None = None,
    color=None,
    counts: bool = True,
    title: str | None = "Calibration of P(step rated -1)",
) -> plt.Axes:
    """Reliability diagram: observed share of -1 steps against mean predicted P(-1).

    Args:
        table: a :func:`prm_lib.metrics.calibration_table` (columns ``bin_low``,
            ``bin_high``, ``n``, ``mean_predicted``, ``observed``, ``ci_low``, ``ci_high``).
        ax: axes to draw on; default a new 5x5 inch figure. Call again with the same
            axes to compare scorers.
        label: legend entry; the table's expected calibration error and item count are
            appended.
        color: line colour; default the axes' next colour.
        counts: write each bin's item count beside its point (turn off for a second
            curve whose counts would collide with the first's).
        title: axes title (None: none).

    Returns:
        the axes. Points sit at (mean predicted, observed) per non-empty bin with 95%
        Wilson intervals; the dashed diagonal is perfect calibration.
    """
    for col in ("n", "mean_predicted", "observed", "ci_low", "ci_high"):
        if col not in table:
            raise ValueError(f"table lacks column {col!r}; make it with calibration_table")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    part = table[table["n"] > 0]
    x, y = part["mean_predicted"].to_numpy(), part["observed"].to_numpy()
    # clipped: rounding can put an interval end a hair past the point (0 - 1e-17)
    yerr = np.clip(np.vstack([y - part["ci_low"].to_numpy(), part["ci_high"].to_numpy() - y]),
                   0, None)
    ece, total = table.attrs.get("ece"), table.attrs.get("n_total", int(table["n"].sum()))
    name = label or "scorer"
    if ece is not None and np.isfinite(ece):
        name += f" (ECE {ece:.3f}, {total:,} steps)"
    if not any(line.get_label() == "perfect calibration" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.55", linewidth=1,
                label="perfect calibration")
    line = ax.errorbar(x, y, yerr=yerr, marker="o", markersize=4, linewidth=1.6, capsize=2,
                       color=color, label=name)
    if counts:
        c = line[0].get_color()
        for xi, yi, n in zip(x, y, part["n"].to_numpy()):
            ax.annotate(_compact(int(n)), (xi, yi), xytext=(5, -9), textcoords="offset points",
                        fontsize=7, color=c,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.75))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted P(-1) in bin")
    ax.set_ylabel("share of steps rated -1")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    if counts:
        ax.text(0.99, 0.01, "numbers: steps per bin; bars: 95% Wilson interval",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    if title:
        ax.set_title(title)
    return ax


def plot_training_history(history: pd.DataFrame, ax=None, title: str | None = None):
    """Training and held-out loss (left axis) and label-token accuracy (right axis)
    against optimizer steps, from :attr:`prm_lib.training.RewardRun.history`."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    train = history.dropna(subset=["loss"]) if "loss" in history else history.iloc[0:0]
    held = history.dropna(subset=["eval_loss"]) if "eval_loss" in history else history.iloc[0:0]
    held = held.drop_duplicates("step", keep="last")
    ax.plot(train["step"], train["loss"], color="#0072B2", label="training loss")
    ax.plot(held["step"], held["eval_loss"], "o-", color="#D55E00", label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("negative log-likelihood of the label token")
    ax.spines[["top"]].set_visible(False)
    acc = ax.twinx()
    if "eval_accuracy" in held:
        acc.plot(held["step"], 100 * held["eval_accuracy"], "s--", color="#009E73",
                 label="held-out label accuracy")
    acc.set_ylim(0, 100)
    acc.set_ylabel("label accuracy (%)")
    lines = ax.get_lines() + acc.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], frameon=False, loc="upper right")
    if title:
        ax.set_title(title)
    return ax


__all__.append("plot_training_history")


def plot_data_curves(
    curve: pd.DataFrame,
    by: str = "supervision",
    ax: plt.Axes | None = None,
    fits: pd.DataFrame | None = None,
    title: str | None = None,
    note: str | None = None,
    references: dict[str, float] | None = None,
    paper_note: str | None = None,
) -> plt.Axes:
    """% solved against labeled samples per problem (log axis), one curve per group: the
    shape of the paper's Figure 4.

    Args:
        curve: one row per run with ``by``, ``size``, ``seed`` and ``solved`` (as made by
            :func:`prm_lib.lab.experiments.data_curve`).
        fits: optional best-fit lines (columns ``by``, ``intercept``, ``slope`` against
            log2 of the size, from :func:`~prm_lib.lab.experiments.fit_log_lines`), drawn
            dashed.
        note: the scale of the run, written in the corner.
        references: horizontal reference lines, label -> % (e.g. the best any selection
            could do). References at the same level (to 0.1 point) share one line,
            labelled "a = b: 12.3%".
        paper_note: what the paper found, written under the axes.

    Returns:
        the axes. Each point is the mean over seeds with a band of ±1 standard deviation;
        the single runs are drawn as dots.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    groups = list(dict.fromkeys(curve[by]))
    colors = dict(zip(groups, _palette(len(groups))))
    for name in groups:
        part = curve[curve[by] == name]
        stats = part.groupby("size")["solved"].agg(["mean", "std", "count"]).reset_index()
        stats["std"] = stats["std"].fillna(0.0)
        c = colors[name]
        ax.plot(stats["size"], stats["mean"], "o-", color=c, label=name, lw=2, ms=4)
        ax.fill_between(stats["size"], stats["mean"] - stats["std"],
                        stats["mean"] + stats["std"], color=c, alpha=0.18, lw=0)
        ax.scatter(part["size"], part["solved"], color=c, s=9, alpha=0.45, lw=0)
        if fits is not None and name in set(fits[by]):
            f = fits[fits[by] == name].iloc[0]
            xs = np.geomspace(stats["size"].min(), stats["size"].max(), 50)
            ax.plot(xs, f["intercept"] + f["slope"] * np.log2(xs), "--", color=c, lw=1)
    merged: dict[float, list[str]] = {}
    for label, value in (references or {}).items():
        merged.setdefault(round(float(value), 1), []).append(label)
    references = {" = ".join(labels) + f": {value:.1f}%": value
                  for value, labels in merged.items()}
    for i, (label, value) in enumerate(references.items()):
        ax.axhline(value, color="0.35", lw=1, ls=[":", "-."][i % 2])
    # the y axis starts 10 points below the lowest line, on a multiple of 10 (from 0 when
    # something is near it): the curves are what the figure compares
    lowest = min([float(curve["solved"].min()), *references.values()])
    bottom = max(-2.0, 10 * np.floor((lowest - 10) / 10))
    highest = max([float(curve["solved"].max()), *references.values()])
    top = max(bottom + 10, ax.get_ylim()[1], highest + 0.08 * (highest - bottom))
    ax.set_ylim(bottom, top)
    # line labels at the right, where more data has usually lifted the curves away from
    # the references, pushed apart so close lines keep readable labels, on a light box
    # that keeps them legible where a band passes behind
    gap, placed = 0.06 * (top - bottom), []
    for label, value in sorted(references.items(), key=lambda kv: kv[1]):
        y = max(value, placed[-1] + gap) if placed else value
        placed.append(y)
        ax.annotate(label, (curve["size"].max(), y), xytext=(-2, 2),
                    textcoords="offset points", fontsize=8, color="0.25", ha="right",
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.7})
    ax.set_xscale("log", base=2)
    sizes = sorted(curve["size"].unique())
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("labeled samples per training problem (log scale)")
    ax.set_ylabel("% of test problems solved (best-of-N)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)  # clear of every curve
    if title:
        ax.set_title(title)
    if paper_note:
        add_caption(ax, paper_note, y=-0.14, fontsize=8.5)
    if note:
        # outside the axes, bottom right: inside, it collided with curves or line labels
        ax.text(1.01, 0.0, note, transform=ax.transAxes, va="bottom", ha="left",
                fontsize=7.5, color="0.3")
    return ax


def add_caption(ax: plt.Axes, text: str, width: int = 115, y: float = -0.17,
                fontsize: float = 7.5) -> None:
    """Write ``text`` under the axes, wrapped to ``width`` characters: what a figure's
    pool or scale is, and how it relates to the paper's."""
    import textwrap

    ax.annotate(textwrap.fill(text, width), (0, y), xycoords="axes fraction", va="top",
                fontsize=fontsize, color="0.3")


def plot_trial_spread(spread: BestOfNResult, sem: pd.DataFrame, title: str = "",
                      seed: int = 0) -> plt.Figure:
    """Two panels on the trials of best-of-N: left, % solved in every trial at each N (one
    dot per trial, the mean as a bar); right, the standard error of the mean against the
    number of trials averaged (from :func:`prm_lib.best_of_n.trial_standard_errors`).
    ``seed`` only places the dots' horizontal jitter."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    jitter = np.random.default_rng(seed).uniform(-0.25, 0.25, spread.n_trials)
    for k, _ in enumerate(spread.ns):
        left.scatter(k + jitter, spread.solved[:, k], s=9, alpha=0.45)
        left.plot([k - 0.35, k + 0.35], [spread.mean[k]] * 2, color="black", lw=2)
    left.set_xticks(range(len(spread.ns)), [f"N={n:,}" for n in spread.ns])
    left.set(ylabel="% solved in one trial",
             title=f"{spread.label} best-of-N: one dot per trial, bar = mean")
    for n, part in sem.groupby("N"):
        right.plot(part["trials"], part["sem"], "o-", ms=3, label=f"N={n:,}")
    right.set_xscale("log")
    counts = sorted(sem["trials"].unique())
    right.set_xticks(counts, [str(t) for t in counts])
    right.minorticks_off()
    for a in (left, right):
        a.set_ylim(bottom=0)
    right.set(xlabel="trials averaged (log scale)",
              ylabel="standard error of the mean (points)",
              title="The mean settles as trials accumulate")
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, y=0.99)
    fig.tight_layout()
    return fig


def plot_interval(value: float, low: float, high: float, *, label: str, xlabel: str,
                  paper: float | None = None, paper_label: str = "",
                  null: float | None = None, null_label: str = "",
                  ax: plt.Axes | None = None) -> plt.Axes:
    """One estimate with its interval on a line, beside the paper's value and a
    reference of no effect (e.g. a ratio of 1). A value that is not finite is written
    out instead of drawn."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.8))
    if paper is not None:
        ax.axvline(paper, color="#D55E00", ls="--", label=paper_label)
    if null is not None:
        ax.axvline(null, color="0.5", ls=":", label=null_label)
    if np.isfinite(value):
        err = [[max(0.0, value - low)], [max(0.0, high - value)]]
        ax.errorbar(value, 0, xerr=err, fmt="o", color="#0072B2", capsize=4, label=label)
    else:
        ax.text(0.02, 0.5, f"{label}: undefined", transform=ax.transAxes, va="center",
                fontsize=9)
    ax.set(yticks=[], xlabel=xlabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_step_auc_curve(precomputed: pd.DataFrame | None, this_run: dict | None = None, *,
                        prior: tuple[float, float, float] | None = None, title: str = "",
                        ax: plt.Axes | None = None) -> plt.Axes:
    """Step AUC with its interval against labeled training examples (log scale).

    Args:
        precomputed: rows with ``examples``, ``step_auc``, ``ci_low``, ``ci_high`` and
            ``command`` (a file of :func:`prm_lib.results.precomputed`), drawn as
            precomputed and captioned with the command that made them; None: none.
        this_run: the same keys for the run of the page (drawn apart, filled).
            A ``precision`` column or key (``"bfloat16"``, ``"float32"``) is named in
            the legend: the same settings trained in another precision give another run.
        prior: (AUC, low, high) of the step-position prior, drawn as a horizontal band.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    if prior is not None:
        auc, low, high = prior
        ax.axhspan(low, high, color="0.85", label="position prior, 95% interval")
        ax.axhline(auc, color="0.45", lw=1, ls="--", label=f"position prior ({auc:.3f})")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":", label="chance (0.5)")

    def draw(rows, **kw):
        x = np.asarray(rows["examples"], float)
        y = np.asarray(rows["step_auc"], float)
        err = [y - np.asarray(rows["ci_low"], float), np.asarray(rows["ci_high"], float) - y]
        ax.errorbar(x, y, yerr=err, capsize=4, **kw)

    if precomputed is not None and len(precomputed):
        pre = precomputed.sort_values("examples")
        how = ", ".join(pre["precision"].dropna().unique()) + "; " \
            if "precision" in pre.columns else ""
        draw(pre, fmt="o-", color="#0072B2", mfc="white", label=f"precomputed ({how}see caption)")
        add_caption(ax, "Precomputed points: " + "; ".join(pre["command"].unique())
                    + f" ({len(pre)} runs).")
    if this_run is not None:
        how = f" ({this_run['precision']})" if this_run.get("precision") else ""
        draw({k: [v] for k, v in this_run.items() if k != "precision"}, fmt="o",
             color="#D55E00", ms=8, label=f"this page's run{how}")
    ax.set_xscale("log")
    ax.set(xlabel="labeled training examples (log scale)",
           ylabel="step AUC, rated -1 vs not", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


__all__.append("plot_step_auc_curve")
