"""Choose the laboratory's reward-model training length for the active-learning
comparison (chapter 6) on held-out *training* problems.

    python experiments/lab_active.py [--scale laptop] [--seeds 3] [--variants NAME ...]
                                     [--lab FIELD=VALUE ...] [--ns N ...]

The paper's measure of active learning is a ratio of two slopes (% solved per doubling
of the labeled data). It can only be read when the uniform curve climbs: if the smallest
data set already trains a reward model close to the ceiling, the uniform slope is near
zero and the ratio swings without bound. What sets the small-data end is how long a
reward model trains on a small set: ``rm_steps_min`` repeats a small set for several
epochs. This script runs chapter 6's experiment (one selector per seed trained on one
sample per problem; uniform and active selection; process supervision; data sizes at
most a fifth of the pool) for each variant on the validation laboratory
(:func:`prm_lib.lab.validation_lab`: reward models train on the first three quarters of
the training problems and are judged on every sample of the last quarter; the test pool
is not read), and prints per variant the two curves, the slopes and the ratio with its
90% bootstrap interval over runs and validation problems.

``--ns`` judges the same runs by best-of-N at several N. At N = the pool every problem
counts 0 or 1 (one top pick); below it, each problem counts the share of the protocol's
trials (random draws of N of its samples) it solves, so the luck of single picks weighs
less on each run.

The rule, fixed before reading the table: keep the variant (and N) whose ratio has the
narrowest 90% interval (the most precise instrument), whatever the ratio itself reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd

from lab_recipe import _field  # the same FIELD=VALUE reading
from prm_lib import get_scale
from prm_lib.lab import (active_learning_sizes, build_lab, data_curve, efficiency_ratio,
                         fit_log_lines, reference_lines, select_uniform, train_lab_rm,
                         validation_lab)

#: name -> overrides of the laboratory's reward-model settings (LabConfig fields).
VARIANTS: dict[str, dict] = {
    "at least 20 steps": {"rm_steps_min": 20},
    "at least 5 steps": {"rm_steps_min": 5},
    "at least 1 step (one epoch)": {"rm_steps_min": 1},
}


def active_learning(lab, seeds: int, n: int | None = None,
                    progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Chapter 6's comparison in ``lab``, judged by best-of-``n`` (default: the pool):
    the runs of both selections, and the ratio. The runs are cached, so another ``n``
    only reads them again."""
    pool = lab.pools["train"]
    selectors = {s: train_lab_rm(lab, select_uniform(pool, 1, seed=s), "process", seed=s)
                 for s in range(seeds)}
    sel_scores = {s: run.pool_scores(pool) for s, run in selectors.items()}
    kw = {"supervisions": ("process",), "sizes": active_learning_sizes(lab.scale),
          "seeds": seeds, "progress": progress, "n": n}
    curve = pd.concat([data_curve(lab, selection="uniform", **kw),
                       data_curve(lab, selection="active", selector_scores=sel_scores, **kw)],
                      ignore_index=True)
    return curve, efficiency_ratio(curve, "active", "uniform")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--seed", type=int, default=0, help="the laboratory's seed")
    ap.add_argument("--seeds", type=int, default=None,
                    help="reward-model seeds per point (default: the scale's)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--lab", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="laboratory fields to change, as in lab_recipe.py (a new "
                         "laboratory, cached in a folder of its own)")
    ap.add_argument("--ns", nargs="*", type=int, default=[None],
                    help="best-of-N values to judge by (default: the whole pool); the same "
                         "runs are read at each")
    args = ap.parse_args()
    pd.set_option("display.width", 200)

    cfg = get_scale(args.scale).lab.with_(**dict(_field(x) for x in args.lab))
    seeds = args.seeds or cfg.seeds
    lab = validation_lab(build_lab(cfg, seed=args.seed, progress=True))
    print(f"{cfg.describe()}\nfit: {lab.pools['train'].problem_index.nunique()} training "
          f"problems; validation: {lab.pools['test'].problem_index.nunique()} held-out "
          f"training problems x {lab.scale.test_pool} samples (the test pool is not read); "
          f"{seeds} seeds\n")
    summary, curves = {}, {}
    pool_n = lab.scale.test_pool
    for name, n in [(v, n) for v in args.variants for n in args.ns]:
        variant = dataclasses.replace(lab, scale=lab.scale.with_(**VARIANTS[name]))
        start = time.perf_counter()
        curve, r = active_learning(variant, seeds, n=n)
        if len(args.ns) > 1 or n is not None:
            name = f"{name}, N={n or pool_n}"
        fits = fit_log_lines(curve, by="selection").set_index("selection")
        curves[name] = curve.groupby(["selection", "size"]).solved.agg(["mean", "std"])
        summary[name] = {
            "uniform, smallest size": curves[name].loc[("uniform", curve["size"].min()), "mean"],
            "uniform, largest size": curves[name].loc[("uniform", curve["size"].max()), "mean"],
            "slope uniform": fits.slope["uniform"], "se uniform": fits.slope_se["uniform"],
            "slope active": fits.slope["active"], "se active": fits.slope_se["active"],
            "ratio": r["ratio"], "90% low": r["low"], "90% high": r["high"],
            "interval width": r["high"] - r["low"],
            "minutes": (time.perf_counter() - start) / 60}
        print(f"{name}: ratio {r['ratio']:.2f} ({r['low']:.2f} to {r['high']:.2f})",
              flush=True)
    for name, table in curves.items():
        print(f"\n{name}: % solved on the validation problems (mean, sd over seeds)")
        print(table.unstack("selection").round(1).to_string())
    print("\nActive learning against uniform selection, per variant (slopes in % solved per "
          "doubling; 90% interval over runs and validation problems):")
    table = pd.DataFrame(summary).T
    print(table.round(2).to_string())
    widths = table["interval width"].dropna()
    print("\nNarrowest interval: " + (widths.idxmin() if len(widths) else
                                     "none (no variant has a uniform slope to divide by)"))
    print("\nReferences on the same problems (%):")
    for n in args.ns:
        print(pd.Series(reference_lines(lab, seed=args.seed, n=n)).round(1).to_string())


if __name__ == "__main__":
    main()
