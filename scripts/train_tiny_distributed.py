"""Train the tiny PRM on a few PRM800K phase-1 training solutions, on one process or
several: the run ``tests/test_distributed.py`` makes with 1 and with 2 processes.

It trains the way the book does (:func:`prm_lib.training.train_reward_model`, the tiny
scale's :class:`~prm_lib.config.TrainingSettings`), only smaller: the first
``--examples`` examples formatted from the first training solutions, ``--steps``
optimizer steps, a loss logged every step and a held-out evaluation at the end::

    python scripts/train_tiny_distributed.py --data-dir DATA --output-dir one --batch 8
    torchrun --nproc_per_node 2 scripts/train_tiny_distributed.py --data-dir DATA \\
        --output-dir two --batch 4

The first process writes ``OUTPUT_DIR/history.json``: the training log (one row per log
event), the run's summary and the number of processes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding prm800k/")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--batch", type=int, default=8, help="per-device train batch")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--examples", type=int, default=240, help="training examples")
    parser.add_argument("--held-out", type=int, default=16, help="held-out examples")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", choices=["auto", "yes", "no"], default="no",
                        help="auto: the book's default (bfloat16 where supported)")
    args = parser.parse_args(argv)

    from prm_lib.config import get_scale
    from prm_lib.data import load_prm800k
    from prm_lib.formatting import prm_examples
    from prm_lib.models import tiny_model
    from prm_lib.training import train_reward_model

    scale = get_scale("tiny")
    model, tok = tiny_model(seed=args.seed)
    data = load_prm800k("train", data_dir=args.data_dir)
    # the first solutions, until there are enough examples (about a dozen per solution)
    wanted = args.examples + args.held_out
    examples, used = [], 0
    while len(examples) < wanted and used < len(data):
        new, _ = prm_examples(tok, data[used : used + 8], scale.format)
        examples += new
        used += 8
    if len(examples) < wanted:
        raise SystemExit(f"{args.data_dir}: only {len(examples)} examples, {wanted} wanted")
    train, held = examples[: args.examples], examples[args.examples : wanted]

    bf16 = {"auto": None, "yes": True, "no": False}[args.bf16]
    cfg = scale.prm.training.args(
        Path(args.output_dir) / "run", seed=args.seed, max_steps=args.steps, logging_steps=1,
        per_device_train_batch_size=args.batch, gradient_accumulation_steps=args.grad_accum,
        disable_tqdm=True, bf16=bf16)
    run = train_reward_model(model, tok, train, held, args=cfg, format_config=scale.format)
    if cfg.process_index == 0:
        out = {"processes": cfg.world_size, "summary": run.summary,
               "history": run.history.to_dict("records")}
        path = Path(args.output_dir) / "history.json"
        path.write_text(json.dumps(out, indent=1, default=float))
        print(f"{os.environ.get('RANK', 0)}: wrote {path}", flush=True)


if __name__ == "__main__":
    main()
