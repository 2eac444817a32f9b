"""The book's reward-model runs, cached: PRM800K -> examples -> a trained PRM or ORM.

Chapters call :func:`prm_run` and :func:`orm_run` with their ``scale``: a run is trained
once and saved under ``$PRM_CACHE_DIR/runs/<kind>-<scale>-seed<seed>-<hash>`` (the hash
covers every setting that changes the run), and later calls load it, so chapter 3 reuses
the PRM that chapter 2 trained. ``retrain=True`` ignores the cache. A run is a
:class:`~prm_lib.training.RewardRun`.

Training uses PRM800K phase-1 **train** only (the MATH500 guard applies); a share of its
problems (``RunConfig.held_out_problems``) is held out for the evaluation loss curve. The
test split is never seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import Scale
from .data import load_prm800k
from .formatting import orm_examples, prm_examples
from .models import load_causal_lm
from .packing import draw_sessions, pack_examples, session_examples
from .reward_model import RewardModel
from .sources import cache_dir
from .training import RewardRun, resolve_bf16, train_reward_model

__all__ = ["run_dir", "prm_run", "orm_run", "untrained_prm"]


#: How the held-out loss curve is computed (in a run's key: it changes the history): 2,
#: ``evals_per_run`` evaluations with the last at the final step; a packed run's held-out
#: examples packed as whole sessions, as its training examples are.
_HELD_OUT = 2

#: RunConfig fields added later: in a run's key only when they differ from their default.
_OPTIONAL_RUN_FIELDS = {"pack": False, "pack_length": None, "packed_batch_size": None}


def run_dir(kind: str, scale: Scale, seed: int) -> Path:
    """Where the run for these settings lives: its hash covers the base model, the
    format, the run's settings (:class:`~prm_lib.config.RunConfig`, with the precision
    they resolve to here), the seed and the package version."""
    run = asdict(getattr(scale, kind))
    for name, default in _OPTIONAL_RUN_FIELDS.items():  # keys of earlier runs kept
        if run[name] == default:
            del run[name]
    # N processes with per-device batch b train as one process with batch N*b does
    # (tests/test_distributed.py): the key holds the global batch, so that a chapter finds
    # the run several GPUs trained for it (scripts/train_reward_model.py)
    # the precision "where the hardware supports it" means here: a run trained in bfloat16
    # is not the run trained in float32
    run["training"]["bf16"] = resolve_bf16(run["training"]["bf16"])
    world = int(os.environ.get("WORLD_SIZE", 1))
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        run["training"][name] *= world
    key = json.dumps({"kind": kind, "model": scale.model, "format": asdict(scale.format),
                      "run": run, "seed": seed, "version": __version__,
                      "held_out": _HELD_OUT}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_dir() / "runs" / f"{kind}-{scale.name}-seed{seed}-{digest}"


def _split_problems(data, seed: int, fraction: float):
    problems = np.array(data.problems, dtype=object)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(problems, size=max(1, int(len(problems) * fraction)), replace=False))
    return [s for s in data if s.problem not in held], [s for s in data if s.problem in held]


def _subsample(examples, n, rng):
    if n is None or n >= len(examples):
        return list(examples)
    return [examples[i] for i in sorted(rng.choice(len(examples), size=n, replace=False))]


def _run(kind: str, scale: Scale, data_dir, seed: int, retrain: bool,
         progress: bool) -> RewardRun:
    cfg = getattr(scale, kind)
    path = run_dir(kind, scale, seed)
    if not retrain and (path / "summary.json").is_file():
        summary = json.loads((path / "summary.json").read_text())
        return RewardRun(path, summary, pd.read_csv(path / "history.csv"), cached=True)
    # several processes (torchrun, accelerate launch: they set RANK and WORLD_SIZE) make
    # one run: the first one cleans and writes its folder
    first = int(os.environ.get("RANK", 0)) == 0
    if path.exists() and first:
        shutil.rmtree(path)  # an interrupted or stale run: start clean

    data = load_prm800k("train", data_dir=data_dir)
    train_s, held_s = _split_problems(data, seed, cfg.held_out_problems)
    model, tok = load_causal_lm(scale.model, seed=seed)
    make = prm_examples if kind == "prm" else orm_examples
    train_all, report = make(tok, train_s, scale.format)
    rng = np.random.default_rng(seed)
    batch_size = cfg.training.per_device_train_batch_size
    if cfg.pack:
        sessions, n_examples = draw_sessions(tok, train_s, scale.format, cfg.examples, seed,
                                             make)
        train_ex, n_examples = _packed(kind, tok, sessions, scale.format, cfg.pack_length,
                                       n_examples)
        batch_size = cfg.packed_batch_size or batch_size
    else:
        train_ex = _subsample(train_all, cfg.examples, rng)
        n_examples = len(train_ex)
    n_held = min(cfg.held_out_max, max(cfg.held_out_min,
                                       n_examples // cfg.held_out_per_example))
    if cfg.pack:
        # whole held-out sessions, packed as the training sessions are (about a sixth of
        # the tokens of one sequence per example at the laptop scale's lengths)
        held_sessions, n_held = draw_sessions(tok, held_s, scale.format, n_held, seed, make)
        held_ex, n_held = _packed(kind, tok, held_sessions, scale.format, cfg.pack_length,
                                  n_held)
    else:
        held_ex = _subsample(make(tok, held_s, scale.format)[0], n_held, rng)
        n_held = len(held_ex)
    batch = batch_size * int(os.environ.get("WORLD_SIZE", 1))
    steps = max(1, int(np.ceil(len(train_ex) / batch * cfg.training.num_train_epochs)))
    args = cfg.training.args(
        path, seed=seed, disable_tqdm=not progress, per_device_train_batch_size=batch_size,
        logging_steps=max(1, steps // cfg.logs_per_run),
        eval_strategy="steps" if held_ex else "no",
        # evals_per_run evaluations, the last one at the final step
        eval_steps=max(1, -(-steps // cfg.evals_per_run)))
    run = train_reward_model(model, tok, train_ex, held_ex, args=args,
                             format_config=scale.format, kind=kind)
    trained = run.summary
    run.summary = {
        "kind": kind,
        "model": scale.model,
        "loaded_model": getattr(model.config, "_name_or_path", scale.model),
        "train_problems": len({s.problem for s in train_s}),
        "held_out_problems": len({s.problem for s in held_s}),
        "examples_available": len(train_all),
        "train_examples": n_examples,
        "train_labels": int(sum(len(e.labels) for e in train_ex)),
        "held_out_examples": n_held,
        "epochs": cfg.training.num_train_epochs,
        "optimizer_steps": int(run.history["step"].max()),
        "seconds": round(trained["seconds"], 1),
        "tokens": trained["tokens"],
        "tokens_per_second": round(trained["tokens_per_second"], 1),
        "precision": trained["precision"],
        "format_counts": dict(report.counts),
        **({"train_sessions": len(sessions), "packed_sequences": len(train_ex),
            "packed_tokens": sum(len(e.input_ids) for e in train_ex)} if cfg.pack else {}),
        "scale": scale.name,
        "run": asdict(cfg),
        "seed": seed,
        "processes": int(os.environ.get("WORLD_SIZE", 1)),
    }
    if first:
        (path / "summary.json").write_text(json.dumps(run.summary, indent=2))
        run.history.to_csv(path / "history.csv", index=False)
    return run


def _packed(kind: str, tok, sessions, fmt, pack_length: int | None, n_examples: int):
    """The drawn sessions' examples, prefix-shared, and how many examples they hold: a
    PRM's session by session (:func:`~prm_lib.packing.session_examples`), an ORM's
    complete solutions (:func:`~prm_lib.formatting.orm_examples`, identical ones once)
    packed by their shared tokens (:func:`~prm_lib.packing.pack_examples`)."""
    length = pack_length or fmt.max_length
    if kind == "prm":
        return session_examples(tok, sessions, fmt, length)[0], n_examples
    examples, _ = orm_examples(tok, sessions, fmt)
    return pack_examples(examples, length), len(examples)


def prm_run(scale: Scale, data_dir=None, seed: int = 0, retrain: bool = False,
            progress: bool = True) -> RewardRun:
    """The PRM run of this scale and seed: loaded from the cache, else trained on PRM800K
    phase-1 train (and cached)."""
    return _run("prm", scale, data_dir, seed, retrain, progress)


def orm_run(scale: Scale, data_dir=None, seed: int = 0, retrain: bool = False,
            progress: bool = True) -> RewardRun:
    """The ORM run of this scale and seed: loaded from the cache, else trained on the
    complete solutions of PRM800K phase-1 train labeled by final-answer correctness (and
    cached)."""
    return _run("orm", scale, data_dir, seed, retrain, progress)


def untrained_prm(scale: Scale, seed: int = 0) -> RewardModel:
    """The base model read as a PRM before any training: the baseline a trained PRM
    must beat (its label-token probabilities are whatever pretraining left)."""
    model, tok = load_causal_lm(scale.model, seed=seed)
    # scored in the precision the trained PRM was trained and is scored in: a fair baseline
    bf16 = resolve_bf16(scale.prm.training.bf16)
    return RewardModel(model, tok, "prm", scale.format, bf16=bf16)
