"""The laboratory's generator training and pool reading, against the obvious ways.

    python benchmarks/bench_lab_build.py [--scale laptop] [--steps 60] [--problems 100]
                                         [--samples 32] [--quick]

Two measurements on the scale's generator architecture (randomly initialised: the speed
of a step does not depend on what the weights hold), on the scale's problems:

* **generator training**, ``--steps`` optimizer steps each way (after a few untimed ones):
  every batch drawn on its own and trained on one thread (the obvious way, and the book's
  before); batches drawn ``length_window`` at a time and grouped by length, on one
  thread; and as the book trains it, grouped on the generator's ``threads``. Prints
  seconds per step and the speed-up over the obvious way.
* **reading a pool** with a :class:`~prm_lib.lab.readout.LikelihoodReadout`:
  ``--problems`` problems x ``--samples`` solutions each (reference solutions, some with
  neutral restatements), in batches of similar length (the obvious way), against the
  book's way, the samples of a problem in one batch that reads their prompt once and
  shares its cache. Prints solutions per second, the speed-up, and the largest
  difference between the two ways' step probabilities (float rounding only).

Both run on one core's worth of threads except the book's generator training, which uses
``GeneratorConfig.threads``; the load average is printed, since a number measured while
other processes share the CPU says little.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np


def time_generator(problems, config, steps: int) -> float:
    """Seconds per optimizer step of ``train_generator`` with ``config``, from its own
    clock (the first step, which warms up, is left out)."""
    from prm_lib.lab.generator import torch_threads, train_generator

    with torch_threads(config.threads):
        _, _, history = train_generator(problems, replace(config, steps=steps + 1,
                                                          target_loss=None), progress=False)
    first, last = history.iloc[0], history.iloc[-1]
    return float(last.seconds - first.seconds) / int(last.step - first.step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="20 steps, 20 problems x 32")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.problems = 20, 20

    import torch

    from prm_lib import get_scale
    from prm_lib.lab.generator import lab_tokenizer, new_generator, torch_threads
    from prm_lib.lab.problems import make_problems, reference_steps
    from prm_lib.lab.readout import LikelihoodReadout

    lab = get_scale(args.scale).lab
    g = lab.generator
    print(f"scale={args.scale}: generator {g.layers}x{g.hidden_size}, batch {g.batch_size}; "
          f"torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    problems = make_problems(2000, seed=[0, 3], min_ops=lab.min_ops, max_ops=lab.max_ops,
                             domain=lab.domain)

    ways = {"each batch drawn alone, 1 thread (obvious)": replace(g, length_window=1,
                                                                   threads=1),
            f"grouped by length ({g.length_window} batches), 1 thread": replace(g, threads=1),
            f"grouped by length, {g.threads} threads (the book's)": g}
    print(f"\nGenerator training, {args.steps} steps each:")
    base = None
    for name, config in ways.items():
        s = time_generator(problems, config, args.steps)
        base = base or s
        print(f"  {name:<48} {s:7.3f} s/step  {base / s:5.2f}x")

    rng = np.random.default_rng(0)
    chosen = problems[: args.problems]
    texts = [p.text for p in chosen for _ in range(args.samples)]
    steps = [reference_steps(p, rng, 0.3) for p in chosen for _ in range(args.samples)]
    tok = lab_tokenizer()
    model = new_generator(g, tok, seed=0).eval()
    shared = LikelihoodReadout(model, tok, "prm", max_length=g.max_length)
    plain = LikelihoodReadout(model, tok, "prm", max_length=g.max_length)

    def by_length(problems_, enc, batch_size):  # the obvious batches: similar lengths
        order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]))
        return [(order[s: s + batch_size], 0) for s in range(0, len(order), batch_size)]

    plain._batches = by_length
    print(f"\nReading a pool of {args.problems} problems x {args.samples} solutions "
          f"(1 thread):")
    got, secs = {}, {}
    with torch_threads(1):
        for name, rm in (("batches of similar length (obvious)", plain),
                         ("a problem's samples share their prompt (the book's)", shared)):
            rm.step_probabilities(texts[:64], steps[:64])  # untimed
            start = time.perf_counter()
            got[name] = rm.step_probabilities(texts, steps)
            secs[name] = time.perf_counter() - start
    base = None
    for name, s in secs.items():
        base = base or s
        print(f"  {name:<52} {len(texts) / s:8.1f} solutions/s  {base / s:5.2f}x")
    a, b = got.values()
    print(f"  largest difference between the two ways' step probabilities: "
          f"{max(float(np.nanmax(np.abs(x - y))) for x, y in zip(a, b)):.1e}")


if __name__ == "__main__":
    main()
