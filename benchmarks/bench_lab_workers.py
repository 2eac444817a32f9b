"""The laboratory's reward models one after another, or side by side.

    python benchmarks/bench_lab_workers.py [--scale laptop] [--runs 6] [--size 4] [--quick]

Trains the same ``--runs`` reward models (process supervision, ``--size`` labeled samples
per training problem, seeds 0, 1, ...) three ways, each in a fresh cache holding only the
built laboratory (built first if it is not in ``$PRM_CACHE_DIR``):

* **one after another, every core**: each run on torch's default threads, the obvious
  way;
* **one after another, one thread**: each run as the book trains it
  (:func:`prm_lib.lab.experiments.one_thread`), so that its numbers do not depend on the
  machine's cores;
* **side by side**: :func:`prm_lib.lab.train_lab_rms`, ``rm_workers`` processes of one
  thread each.

One untimed run comes first. It prints the wall-clock seconds of each way (side by side
includes starting the worker processes), the ratios, and checks that the two one-thread
ways give the same scores, bit for bit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def fresh_copy(lab, root: Path):
    """The laboratory, loaded from a copy of its folder without reward-model runs."""
    from prm_lib.lab import build_lab

    dest = root / "lab" / lab.path.name
    shutil.copytree(lab.path, dest, ignore=shutil.ignore_patterns("rms"))
    os.environ["PRM_CACHE_DIR"] = str(root)
    copy = build_lab(lab.scale, seed=lab.seed, progress=False)
    assert copy.cached and copy.path == dest, "the copy was rebuilt, not loaded"
    return copy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=None,
                    help="processes side by side (default: one per CPU core)")
    ap.add_argument("--quick", action="store_true",
                    help="2 runs of 1 sample per problem (once the laboratory is built)")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.size = 2, 1

    import torch

    from prm_lib import get_scale
    from prm_lib.lab import build_lab, rm_workers, select_uniform, train_lab_rm, train_lab_rms
    from prm_lib.lab import experiments

    lab = build_lab(get_scale(args.scale).lab, seed=0)
    jobs = [(select_uniform(lab.pools["train"], args.size, seed=s), "process", s)
            for s in range(args.runs)]
    print(f"{lab.scale.describe()}\n{args.runs} process reward models, {args.size} labeled "
          f"samples per training problem; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads by default, {os.cpu_count()} CPUs\n")
    seconds, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        # untimed: one run first, so that no way pays for the first imports and loads
        warm = fresh_copy(lab, Path(tmp) / "warm-up")
        train_lab_rm(warm, select_uniform(lab.pools["train"], 1, seed=10_000), "process",
                     seed=10_000)
        for way in ("one after another, every core", "one after another, one thread",
                    "side by side"):
            copy = fresh_copy(lab, Path(tmp) / str(len(seconds)))
            start = time.perf_counter()
            if way == "side by side":
                copy = dataclasses.replace(copy, scale=copy.scale.with_(rm_workers=args.workers))
                runs = train_lab_rms(copy, jobs, progress=False)
                way = f"side by side, {rm_workers(copy, len(jobs))} processes"
            elif way.endswith("every core"):
                with contextlib.ExitStack() as stack:
                    original = experiments.one_thread
                    experiments.one_thread = contextlib.nullcontext
                    stack.callback(setattr, experiments, "one_thread", original)
                    runs = [train_lab_rm(copy, *j[:2], seed=j[2]) for j in jobs]
            else:
                runs = [train_lab_rm(copy, *j[:2], seed=j[2]) for j in jobs]
            seconds[way] = time.perf_counter() - start
            scores[way] = [r.scores() for r in runs]
            print(f"{way}: {seconds[way]:.1f} s", flush=True)
    base = seconds["one after another, every core"]
    print(f"\n{'way':<40} {'seconds':>8} {'runs/min':>9} {'speed vs every core':>20}")
    for way, s in seconds.items():
        print(f"{way:<40} {s:>8.1f} {60 * args.runs / s:>9.2f} {base / s:>19.2f}x")
    one, side = scores["one after another, one thread"], next(
        v for k, v in scores.items() if k.startswith("side by side"))
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one, side))
    print(f"\none thread one after another and side by side give the same scores: {same}")


if __name__ == "__main__":
    main()
