"""Reading a built laboratory's pools: every sample, or each distinct sample once.

    python benchmarks/bench_lab_pools.py [--scale laptop] [--seed 0] [--quick]

A generator that has learned its table writes the same solution again and again, so a
laboratory's pools hold many copies. Every reward model of Figure 4 reads the whole test
pool after it trains, and active learning's selectors read the whole training pool.
This script reads each pool of the scale's laboratory (built first if it is not in
``$PRM_CACHE_DIR``: about 11 minutes at the laptop scale) with a
:class:`~prm_lib.lab.readout.LikelihoodReadout` on the generator's weights (what a reward
model reads before training; a trained one costs the same) two ways, on one thread as
the laboratory's runs read:

* **every sample**: ``step_probabilities`` of every row (the obvious way, the book's before);
* **distinct samples once**: :func:`prm_lib.lab.pool_step_probs`, which reads each
  distinct (problem, steps) once and gives every copy its numbers.

Prints the pools' distinct shares, samples per second each way, the speed-up, and the
largest difference between the two ways' step probabilities (float rounding only).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="the first 25 problems of each pool (once the laboratory is built)")
    args = ap.parse_args()

    import torch

    from prm_lib import get_scale
    from prm_lib.lab import LikelihoodReadout, build_lab, distinct_samples, pool_step_probs
    from prm_lib.lab.generator import one_thread

    lab = build_lab(get_scale(args.scale).lab, seed=args.seed)
    print(f"{lab.scale.describe()}, seed {args.seed}; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.2f}")
    rm = LikelihoodReadout(lab.generator, lab.tokenizer, "prm",
                           max_length=lab.scale.generator.max_length)
    print(f"\n| pool | samples | distinct | every sample (samples/s) | distinct once "
          f"(samples/s) | speed-up | largest difference |")
    print("|---|---|---|---|---|---|---|")
    for split, pool in lab.pools.items():
        if args.quick:
            pool = pool[pool["problem_index"] < 25]
        pool = pool[pool["steps"].map(len) > 0].reset_index(drop=True)
        first, _ = distinct_samples(pool)
        with one_thread():
            rm.step_probabilities(list(pool["problem"][:64]), list(pool["steps"][:64]))  # untimed
            start = time.perf_counter()
            every = rm.step_probabilities(list(pool["problem"]), list(pool["steps"]))
            t_every = time.perf_counter() - start
            start = time.perf_counter()
            once = pool_step_probs(rm, pool)
            t_once = time.perf_counter() - start
        diff = max(float(np.nanmax(np.abs(a - b), initial=0.0)) for a, b in zip(every, once))
        print(f"| {split} | {len(pool):,} | {len(first):,} ({len(first) / len(pool):.0%}) | "
              f"{len(pool) / t_every:,.0f} ({t_every:.1f} s) | {len(pool) / t_once:,.0f} "
              f"({t_once:.1f} s) | **{t_every / t_once:.2f}x** | {diff:.1e} |")


if __name__ == "__main__":
    main()
