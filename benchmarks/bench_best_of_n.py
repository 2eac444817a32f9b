"""Time the vectorised best-of-N evaluator against a plain loop of the official protocol.

The pool is synthetic but paper-sized: 500 problems with up to 1,860 samples each (some
problems have fewer, some samples have no answer), 400 trials, the paper's 14 values of N.

The loop follows OpenAI's ``eval.py`` step by step (pad with None, shuffle, first N, drop
missing and answerless, ``max`` by score) and reshuffles for every (trial, N, problem), as
that script does. At full size it would run for the better part of an hour, so it runs on
a few trials and its time is extrapolated linearly to all trials (trials are independent
and cost the same). The vectorised evaluator runs every trial.

Exactness is checked on the shared trials: the loop is re-run on the very permutations the
vectorised evaluator draws (one shuffle per trial and problem, reused for every N), and the
largest difference between the two means is printed (it should be 0).

    python benchmarks/bench_best_of_n.py            # paper size (a few minutes on 2 cores)
    python benchmarks/bench_best_of_n.py --quick    # smaller, under a minute
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prm_lib.best_of_n import best_of_n, draw_permutations, majority_vote  # noqa: E402
from prm_lib.paper import PAPER_N_TRIALS, PAPER_NS, PAPER_POOL_SIZE  # noqa: E402

# --------------------------------------------------------------------------- the pool


def synthetic_pool(n_problems: int, pool_size: int, seed: int) -> pd.DataFrame:
    """A paper-shaped sample table.

    Each problem has a difficulty (share of correct samples) and a handful of distinct
    wrong answers; 80% of problems have the full ``pool_size`` samples, the rest between
    half and all of it (the paper discarded solutions that ran out of tokens); 3% of
    samples have no answer. Scores are noisy but informative: correct samples score higher
    on average, the PRM more so than the ORM.
    """
    rng = np.random.default_rng(seed)
    sizes = np.where(rng.random(n_problems) < 0.8, pool_size,
                     rng.integers(pool_size // 2, pool_size + 1, n_problems))
    problem = np.repeat(np.arange(n_problems), sizes)
    n = len(problem)
    p_correct = rng.beta(0.6, 0.9, n_problems)[problem]
    correct = rng.random(n) < p_correct
    wrong_answer = rng.integers(1, 1 + rng.integers(3, 40, n_problems)[problem])
    answer = np.where(correct, "0", wrong_answer.astype(str)).astype(object)
    answer[rng.random(n) < 0.03] = None
    correct &= answer != None  # noqa: E711 (element-wise)
    prm = 1 / (1 + np.exp(-(rng.normal(0, 1.2, n) + 1.6 * correct)))
    orm = 1 / (1 + np.exp(-(rng.normal(0, 1.2, n) + 0.9 * correct)))
    return pd.DataFrame({"problem": [f"problem {p}" for p in problem],
                         "answer": pd.Series(answer, dtype=object),
                         "is_correct": correct, "prm_score": prm, "orm_score": orm})


# --------------------------------------------------------------------------- the loop


def loop_best_of_n(table: pd.DataFrame, score: str, ns, pad_to: int, n_trials: int,
                   seed: int = 0, permutations=None) -> np.ndarray:
    """% solved per trial and N, shape (n_trials, len(ns)), by the official protocol.

    Without ``permutations`` every (trial, N, problem) gets a fresh ``random.shuffle``,
    like ``eval.py``. With ``permutations`` (trials, problems, pad_to), problem p's padded
    list in trial t is reordered by ``permutations[t, p]`` for every N (problems in order
    of first appearance, samples in table order), which is what the vectorised evaluator
    does.
    """
    by_problem: dict = {}
    for sample in table.to_dict("records"):
        if pd.isna(sample["answer"]):  # pandas may hold the file's null as NaN
            sample["answer"] = None
        by_problem.setdefault(sample["problem"], []).append(sample)
    pools = list(by_problem.values())
    rng = random.Random(seed)
    out = np.zeros((n_trials, len(ns)))
    for t in range(n_trials):
        orders = None if permutations is None else [row.tolist() for row in permutations[t]]
        for k, n in enumerate(ns):
            solved = 0
            for p, samples in enumerate(pools):
                padded = samples + [None] * (pad_to - len(samples))
                if orders is None:
                    rng.shuffle(padded)
                    first_n = padded[:n]
                else:
                    first_n = [padded[i] for i in orders[p][:n]]
                candidates = [s for s in first_n if s is not None and s["answer"] is not None]
                if candidates and max(candidates, key=lambda s: s[score])["is_correct"]:
                    solved += 1
            out[t, k] = 100.0 * solved / len(pools)
    return out


# --------------------------------------------------------------------------- running


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def fmt_s(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds:,.0f} s ({seconds / 60:.1f} min)"
    return f"{seconds:,.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 problems x up to 500 samples, 100 trials, 2 loop trials")
    parser.add_argument("--problems", type=int, default=None)
    parser.add_argument("--pool", type=int, default=None, help="samples per problem (max)")
    parser.add_argument("--trials", type=int, default=None, help="trials for the vectorised run")
    parser.add_argument("--loop-trials", type=int, default=None, help="trials the loop runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    quick = dict(problems=100, pool=500, trials=100, loop_trials=2)
    full = dict(problems=500, pool=PAPER_POOL_SIZE, trials=PAPER_N_TRIALS, loop_trials=8)
    size = quick if args.quick else full
    n_problems = args.problems or size["problems"]
    pool = args.pool or size["pool"]
    n_trials = args.trials or size["trials"]
    loop_trials = min(args.loop_trials or size["loop_trials"], n_trials)
    ns = [n for n in PAPER_NS if n <= pool]

    table, t_build = timed(lambda: synthetic_pool(n_problems, pool, args.seed))
    counts = table.groupby("problem", sort=False).size()
    print("Best-of-N benchmark: vectorised evaluator vs a plain loop of the official protocol")
    print(f"  machine     : {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
          f"cores, Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"  pool        : {n_problems} problems, {len(table):,} samples "
          f"({int((counts < pool).sum())} problems with fewer than {pool:,}; "
          f"{int(table['answer'].isna().sum()):,} samples without an answer); "
          f"built in {t_build:.1f} s")
    print(f"  N values    : {ns}")
    print(f"  trials      : vectorised {n_trials}, loop {loop_trials} "
          f"(loop time extrapolated linearly to {n_trials})\n")

    # Vectorised, every trial (PRM best-of-N, as `eval.py --method prm`).
    vec, t_vec = timed(lambda: best_of_n(table, "prm_score", ns=ns, n_trials=n_trials,
                                         seed=args.seed, pad_to=pool))
    # Loop, official protocol: fresh shuffle per (trial, N, problem).
    loop, t_loop = timed(lambda: loop_best_of_n(table, "prm_score", ns, pool, loop_trials,
                                                seed=args.seed))
    t_loop_full = t_loop / loop_trials * n_trials
    # Exactness on shared trials: both on the permutations the vectorised run used.
    perms = draw_permutations(args.seed, loop_trials, n_problems, pool)
    same_loop, t_same_loop = timed(lambda: loop_best_of_n(table, "prm_score", ns, pool,
                                                          loop_trials, permutations=perms))
    same_vec = best_of_n(table, "prm_score", ns=ns, pad_to=pool, permutations=perms)
    max_diff = float(np.abs(same_loop.mean(0) - same_vec.mean).max())
    first_trials_equal = np.array_equal(same_vec.solved, vec.solved[:loop_trials])
    # Voting, vectorised, for scale.
    vote, t_vote = timed(lambda: majority_vote(table, ns=ns, n_trials=n_trials, seed=args.seed,
                                               pad_to=pool))

    rows = [
        ("loop, official protocol (reshuffle per N)",
         f"{loop_trials}", fmt_s(t_loop), fmt_s(t_loop_full) + " (extrapolated)"),
        ("loop on the vectorised run's permutations",
         f"{loop_trials}", fmt_s(t_same_loop), fmt_s(t_same_loop / loop_trials * n_trials)
         + " (extrapolated)"),
        ("vectorised best_of_n (PRM)", f"{n_trials}", fmt_s(t_vec), fmt_s(t_vec) + " (measured)"),
        ("vectorised majority_vote", f"{n_trials}", fmt_s(t_vote), fmt_s(t_vote) + " (measured)"),
    ]
    widths = [max(len(r[i]) for r in rows + [("implementation", "trials run", "wall time",
                                                f"time for {n_trials} trials")])
              for i in range(4)]
    header = ("implementation", "trials run", "wall time", f"time for {n_trials} trials")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    ratio = t_loop_full / t_vec
    print(f"\nspeed-up (loop, official protocol, extrapolated / vectorised): {ratio:,.0f}x "
          f"(target >= 50x: {'met' if ratio >= 50 else 'NOT met'})")
    print(f"max |mean difference| on the {loop_trials} shared trials, same permutations: "
          f"{max_diff:.3g} percentage points")
    print(f"vectorised first {loop_trials} trials identical when drawn in a {n_trials}-trial run: "
          f"{first_trials_equal}")

    print(f"\n% solved (PRM best-of-N): vectorised mean ± std over {n_trials} trials, "
          f"loop mean over {loop_trials} official trials")
    print(f"{'N':>6}  {'vectorised':>16}  {'loop':>7}  {'majority vote':>16}")
    for k, n in enumerate(ns):
        print(f"{n:>6}  {vec.mean[k]:>7.2f} ± {vec.std[k]:<6.2f}  {loop.mean(0)[k]:>7.2f}  "
              f"{vote.mean[k]:>7.2f} ± {vote.std[k]:<6.2f}")


if __name__ == "__main__":
    main()
