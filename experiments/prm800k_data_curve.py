"""Chapter 2's data curve: the PRM's step AUC on every phase-1 test step against the
number of labeled training examples, next to the step-position prior.

    python experiments/prm800k_data_curve.py [--scale laptop] [--fractions 0.01 0.03 0.3]
                                             [--seed 0] [--out FILE]

Each point is the scale's PRM run (:func:`prm_lib.prm_run`, prefix-shared training on
whole labeling sessions when the scale packs) with ``examples`` set to a fraction of the
phase-1 training examples; the scale's own run (chapter 2's, from the same cache) is
always one of the points. Every point is evaluated on every rated step of phase-1 test,
read whole (``Scale.eval_max_length``), with a 95% interval from resampling problems.

It prints the table and writes it as CSV (default: the package's precomputed file for the
scale, which chapter 2 draws, labelled as precomputed with this command). Points too
costly for the chapter's time are computed here once.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prm_lib import (get_scale, item_problems, item_ratings, load_prm800k,
                     position_prior_baseline, prm_run, score_items, score_items_shared_prefix,
                     step_auc, step_items)
from prm_lib.formatting import prm_examples
from prm_lib.models import load_tokenizer
from prm_lib.results import precomputed_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--fractions", type=float, nargs="*", default=[0.01, 0.03, 0.3],
                    help="fractions of the phase-1 training examples, beside the scale's "
                         "own run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=None,
                    help="CSV to write (default: the package's precomputed file)")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    command = "python experiments/prm800k_data_curve.py " + shlex.join(sys.argv[1:])

    base = get_scale(args.scale)
    train = load_prm800k("train", data_dir=args.data_dir)
    test = load_prm800k("test", data_dir=args.data_dir)
    available = len(prm_examples(load_tokenizer(base.model), list(train), base.format)[0])
    items = step_items(list(test))
    ratings, groups = item_ratings(items), item_problems(items)
    alternatives = np.array([it.role == "alternative" for it in items])
    prior = score_items(items, position_prior_baseline(step_items(list(train))))[:, 0]
    prior_auc = step_auc(ratings, prior, groups, seed=args.seed)
    print(f"{base.describe()}; {available:,} phase-1 training examples; {len(items):,} test "
          f"steps; position prior step AUC {prior_auc.auc:.3f} "
          f"[{prior_auc.ci_low:.3f}-{prior_auc.ci_high:.3f}]", flush=True)

    sizes = {max(1, round(f * available)) for f in args.fractions}
    sizes.add(base.prm.examples or available)
    rows = []
    for n in sorted(sizes):
        cfg = base.with_(prm__examples=n)
        start = time.perf_counter()
        run = prm_run(cfg, data_dir=args.data_dir, seed=args.seed, progress=False)
        rm = run.reward_model.with_max_length(cfg.eval_max_length)
        probs = score_items_shared_prefix(rm, items, progress=False)[:, 0]
        if np.isnan(probs).any():
            raise RuntimeError(f"{np.isnan(probs).sum()} test steps were not read: raise "
                               "eval_max_length")
        auc = step_auc(ratings, probs, groups, seed=args.seed)
        alt = step_auc(ratings[alternatives], probs[alternatives],
                       [g for g, a in zip(groups, alternatives) if a], n_boot=0)
        s = run.summary
        rows.append({"fraction": n / available, "examples": s["train_examples"],
                     "sessions": s.get("train_sessions"), "labels": s["train_labels"],
                     "optimizer_steps": s["optimizer_steps"],
                     "train_seconds": s["seconds"], "step_auc": auc.auc,
                     "ci_low": auc.ci_low, "ci_high": auc.ci_high,
                     "alternatives_auc": alt.auc, "prior_auc": prior_auc.auc,
                     "prior_low": prior_auc.ci_low, "prior_high": prior_auc.ci_high,
                     "test_steps": len(items), "scale": cfg.name, "packed": cfg.prm.pack,
                     "precision": s["precision"],
                     "chapter_run": n == base.prm.examples,
                     "command": command})
        print(f"{n / available:.1%} ({s['train_examples']:,} examples): step AUC {auc.auc:.3f} "
              f"[{auc.ci_low:.3f}-{auc.ci_high:.3f}], {time.perf_counter() - start:.0f} s",
              flush=True)
    table = pd.DataFrame(rows)
    print("\nStep AUC on every phase-1 test step (95% intervals over problems):")
    print(table.drop(columns=["command", "scale"]).round(3).to_string(index=False))
    out = args.out or precomputed_path(f"prm800k_data_curve_{args.scale}.csv")
    table.to_csv(out, index=False)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
