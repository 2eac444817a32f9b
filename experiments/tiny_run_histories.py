"""Print the tiny-scale PRM and ORM training histories, retrained from scratch.

    PRM_CACHE_DIR=$(mktemp -d) python experiments/tiny_run_histories.py

Run it on two versions of the code (e.g. two checkouts, each with PYTHONPATH pointing at
it) and diff the outputs: a change that claims to leave training alone must print the
same numbers (loss, held-out loss and label-token accuracy at every logged step).
"""

from __future__ import annotations

import argparse

from prm_lib import get_scale
from prm_lib.runs import orm_run, prm_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = get_scale("tiny")
    for fn in (prm_run, orm_run):
        run = fn(cfg, data_dir=args.data_dir, seed=args.seed, retrain=True, progress=False)
        cols = [c for c in ("loss", "eval_loss", "accuracy") if c in run.history]
        print(fn.__name__, run.history[cols].round(6).to_dict("list"))


if __name__ == "__main__":
    main()
