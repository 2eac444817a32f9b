"""What the laboratory's generator makes, per size and training length, across draws.

    python experiments/lab_generator.py [--scale laptop] [--lab-seeds 0 1 2]
        [--variants "" "hidden_size=64,steps=2400" ...] [--lab FIELD=VALUE ...]
        [--temperatures 1.0 ...] [--samples 8]

A variant changes fields of the generator's :class:`~prm_lib.lab.generator.GeneratorConfig`
(``""``: the scale's own). For each variant and laboratory seed the script trains the
generator exactly as :func:`~prm_lib.lab.build_lab` does
(:func:`~prm_lib.lab.build.lab_generator`, cached where a later ``build_lab`` of the same
settings finds it) and, at each sampling temperature, samples ``--samples`` solutions for
each of the laboratory's *training* problems, as its training pool draws them (they are
that pool's first samples; the test problems are not read). Per generator and
temperature it prints:

* the optimizer steps and time its training took, and its last logged training losses
  (mean of the last 5 logs);
* % of samples with the right answer (what a random pick scores), and % with every step
  right;
* the **slip rate**: among steps whose written fact (``a op b``, as the sample wrote its
  operands) is not one of the misconceptions, the share written with a wrong result;
* the **misconception rate**: among steps on a misconception fact, the share written with
  the wrong digit the generator was taught (its training solutions use it in a share
  ``misconception_rate`` of them).

A laboratory tests verifiers when its generator's errors are mostly the taught, confident
ones (which a verifier can learn and likelihood cannot see) rather than slips of an
unfinished training; the per-variant summary gives each quantity's worst draw.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd

from lab_recipe import _field  # the same FIELD=VALUE reading
from prm_lib import get_scale
from prm_lib.lab.build import _split_problems, lab_generator, pool_seed
from prm_lib.lab.generator import sample_solutions, torch_threads
from prm_lib.lab.problems import fact_rates, misconceptions



def variant_scale(cfg, variant: str):
    """The laboratory's settings with the generator fields of ``variant`` changed."""
    fields = dict(_field(f) for f in variant.split(",") if f.strip())
    return cfg.lab.with_(generator=dataclasses.replace(cfg.lab.generator, **fields))


def measure(lab_scale, seed: int, n_samples: int, temperatures) -> dict:
    """Train (or load) one generator and read its samples on the training problems at
    each temperature: ``{temperature: row}``."""
    gen, tok, history, seconds = lab_generator(lab_scale, seed, progress=True)
    problems = _split_problems(lab_scale, seed)["train"]
    facts = misconceptions(lab_scale.misconceptions, seed, lab_scale.domain) \
        if lab_scale.misconceptions else {}
    out = {}
    for t in temperatures:
        with torch_threads(lab_scale.generator.threads):  # as build_lab samples its pools
            samples = sample_solutions(gen, tok, problems, n_samples, temperature=t,
                                       seed=pool_seed(seed, "train"), progress=False)
        out[t] = {"training steps": int(history["step"].iloc[-1]),
                  "training seconds": seconds,
                  "final loss": float(history["loss"].tail(5).mean()),
                  "right answer (%)": 100 * samples["is_correct"].mean(),
                  "every step right (%)": 100 * samples["process_correct"].mean(),
                  **fact_rates(samples["steps"], facts)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="laptop")
    parser.add_argument("--lab-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=[""])
    parser.add_argument("--lab", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="laboratory fields changed for every variant")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()

    cfg = get_scale(args.scale)
    if args.lab:
        cfg = cfg.with_(lab=cfg.lab.with_(**dict(_field(f) for f in args.lab)))
    print(f"$ python experiments/lab_generator.py --scale {args.scale} --lab-seeds "
          + " ".join(map(str, args.lab_seeds)) + " --variants "
          + " ".join(f'"{v}"' for v in args.variants)
          + (" --lab " + " ".join(args.lab) if args.lab else "")
          + " --temperatures " + " ".join(f"{t:g}" for t in args.temperatures)
          + f" --samples {args.samples}")
    print(f"{cfg.lab.describe()}; {cfg.lab.misconceptions} misconceptions at rate "
          f"{cfg.lab.misconception_rate}; read on {cfg.lab.train_problems} training problems "
          f"x {args.samples} samples (the test problems are not read)\n", flush=True)
    start = time.perf_counter()
    rows = {}
    for variant in args.variants:
        name = variant or "(the scale's own)"
        for seed in args.lab_seeds:
            for t, row in measure(variant_scale(cfg, variant), seed, args.samples,
                                  args.temperatures).items():
                rows[(name, t, seed)] = row
                print(f"{name}, temperature {t:g}, seed {seed}: "
                      + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows).T
    table.index.names = ["variant", "temperature", "laboratory seed"]
    pd.set_option("display.width", 200)
    print("\nPer generator:")
    print(table.round(3).to_string())
    summary = table.groupby(level=[0, 1], sort=False).agg(
        {"training steps": "max", "training seconds": "mean", "final loss": "max", "right answer (%)": ["min", "max"],
         "every step right (%)": ["min", "max"], "slip rate (%)": "max",
         "misconception rate (%)": "min"})
    print("\nPer variant, over draws (worst: highest loss and slip rate, lowest "
          "misconception rate; range of the sample accuracies):")
    print(summary.round(2).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
