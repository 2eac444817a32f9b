"""Train the book's PRM or ORM of a scale from the command line, on one process or many.

The same run a chapter gets from :func:`prm_lib.runs.prm_run` / ``orm_run`` (cached under
``$PRM_CACHE_DIR/runs``), started by hand. One process::

    python scripts/train_reward_model.py --scale laptop --kind prm

Several (DDP; every process trains on its share of each global batch)::

    torchrun --nproc_per_node 4 scripts/train_reward_model.py --scale gpu --kind prm
    accelerate launch --config_file configs/accelerate_fsdp.yaml \\
        scripts/train_reward_model.py --scale gpu --kind prm

``--set a__b=value`` overrides a field of the scale (:meth:`prm_lib.config.Scale.with_`),
e.g. ``--set prm__training__per_device_train_batch_size=4``. The first process prints the
run's summary as one JSON line, its folder under ``path``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os

from prm_lib.config import get_scale
from prm_lib.runs import orm_run, prm_run


def _value(text: str):
    """A Python literal (``4``, ``1e-4``, ``None``, ``True``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _override(item: str) -> tuple[str, object]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set wants FIELD=VALUE, got {item!r}")
    return key, _value(value)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="laptop", help="tiny, laptop or gpu")
    parser.add_argument("--kind", choices=["prm", "orm"], default="prm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="default: $PRM_DATA_DIR, else download")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        type=_override, metavar="FIELD=VALUE")
    parser.add_argument("--retrain", action="store_true", help="ignore a cached run")
    args = parser.parse_args(argv)

    scale = get_scale(args.scale, **dict(args.overrides))
    train = prm_run if args.kind == "prm" else orm_run
    run = train(scale, data_dir=args.data_dir, seed=args.seed, retrain=args.retrain,
                progress=False)
    result = {"path": str(run.path), "cached": run.cached, **run.summary}
    if int(os.environ.get("RANK", 0)) == 0:  # torchrun and accelerate set RANK
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
