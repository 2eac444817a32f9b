"""The book's runs, end to end: data -> examples -> trained reward model, cached.

Chapters call :func:`train_prm` and :func:`train_orm` with their ``scale``; a run is
trained once and saved under ``$PRM_CACHE_DIR/runs/<kind>-<scale>-<hash>`` (the hash
covers every setting, so changing one trains anew), so chapter 3 reuses the PRM that
chapter 2 trained. ``retrain=True`` ignores the cache.

Training uses PRM800K phase-1 **train** only (the MATH500 guard applies); 5% of its
problems are held out for the evaluation loss curve. The test split is never seen.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import Scale
from .data import load_prm800k
from .formatting import FormatConfig, orm_examples, prm_examples
from .models import load_causal_lm
from .reward_model import RewardModel
from .sources import cache_dir

__all__ = ["Run", "run_dir", "train_prm", "train_orm", "untrained_prm"]


@dataclass
class Run:
    """A trained reward model and how it was made.

    Attributes:
        reward_model: ready to score.
        history: the training log (see :class:`prm_lib.training.TrainResult`).
        summary: settings and figures of the run: examples, labels, seconds, tokens/s,
            the formatting counts, the model actually loaded.
        path: the run's folder.
        cached: True when loaded from an earlier run instead of trained now.
    """

    reward_model: RewardModel
    history: pd.DataFrame
    summary: dict
    path: Path
    cached: bool


def run_dir(kind: str, scale: Scale, seed: int) -> Path:
    """Where the run for these settings lives."""
    key = json.dumps({"kind": kind, "scale": scale.as_dict(), "seed": seed,
                      "version": __version__}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_dir() / "runs" / f"{kind}-{scale.name}-seed{seed}-{digest}"


def _split_problems(data, seed: int, fraction: float = 0.05):
    problems = np.array(data.problems, dtype=object)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(problems, size=max(1, int(len(problems) * fraction)), replace=False))
    return [s for s in data if s.problem not in held], [s for s in data if s.problem in held]


def _subsample(examples, n, rng):
    if n is None or n >= len(examples):
        return list(examples)
    return [examples[i] for i in sorted(rng.choice(len(examples), size=n, replace=False))]


#: Precision of the book's PRM and ORM training (TrainConfig.bf16); the untrained baseline
#: of :func:`untrained_prm` is scored in the same one.
BF16 = "auto"


def _train(kind: str, scale: Scale, data_dir, seed: int, retrain: bool, progress: bool) -> Run:
    from .training import TrainConfig, train_reward_model

    path = run_dir(kind, scale, seed)
    final = path / "final"
    if not retrain and (final / "reward_model.json").is_file():
        summary = json.loads((path / "summary.json").read_text())
        return Run(RewardModel.load(final), pd.read_csv(path / "history.csv"), summary, path, True)
    if path.exists():
        shutil.rmtree(path)  # an interrupted or stale run: start clean

    data = load_prm800k("train", data_dir=data_dir)
    train_s, held_s = _split_problems(data, seed)
    model, tok = load_causal_lm(scale.model, seed=seed)
    fmt = FormatConfig(max_length=scale.max_length)
    make = prm_examples if kind == "prm" else orm_examples
    train_all, report = make(tok, train_s, fmt)
    held_all, _ = make(tok, held_s, fmt)
    rng = np.random.default_rng(seed)
    n = scale.prm_examples if kind == "prm" else scale.orm_examples
    train_ex = _subsample(train_all, n, rng)
    # Enough held-out examples for a readable curve, few enough to keep evaluation cheap.
    held_ex = _subsample(held_all, min(64, max(16, len(train_ex) // 8)), rng)
    epochs = scale.prm_epochs if kind == "prm" else scale.orm_epochs
    steps = max(1, int(np.ceil(len(train_ex) / scale.batch_size * epochs)))
    config = TrainConfig(
        output_dir=str(path),
        epochs=epochs,
        learning_rate=scale.learning_rate,
        batch_size=scale.batch_size,
        train_top_layers=scale.train_top_layers,
        loss=scale.loss,
        logging_steps=max(1, steps // 30),
        eval_steps=max(1, steps // 4),
        seed=seed,
        progress=progress,
        bf16=BF16,
    )
    result = train_reward_model(model, tok, train_ex, held_ex, config=config,
                                format_config=fmt, kind=kind)
    summary = {
        "kind": kind,
        "model": scale.model,
        "loaded_model": getattr(model.config, "_name_or_path", scale.model),
        "train_problems": len({s.problem for s in train_s}),
        "held_out_problems": len({s.problem for s in held_s}),
        "examples_available": len(train_all),
        "train_examples": len(train_ex),
        "train_labels": int(sum(len(e.labels) for e in train_ex)),
        "held_out_examples": len(held_ex),
        "epochs": epochs,
        "optimizer_steps": int(result.history["step"].max()),
        "seconds": round(result.seconds, 1),
        "tokens": result.tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "format_counts": dict(report.counts),
        "scale": scale.as_dict(),
        "seed": seed,
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    result.history.to_csv(path / "history.csv", index=False)
    return Run(result.reward_model, result.history, summary, path, False)


def train_prm(scale: Scale, data_dir=None, seed: int = 0, retrain: bool = False,
              progress: bool = True) -> Run:
    """The PRM of this scale and seed: trained on PRM800K phase-1 train, or loaded."""
    return _train("prm", scale, data_dir, seed, retrain, progress)


def train_orm(scale: Scale, data_dir=None, seed: int = 0, retrain: bool = False,
              progress: bool = True) -> Run:
    """The ORM of this scale and seed: trained on the complete solutions of PRM800K
    phase-1 train labeled by final-answer correctness, or loaded."""
    return _train("orm", scale, data_dir, seed, retrain, progress)


def untrained_prm(scale: Scale, seed: int = 0) -> RewardModel:
    """The base model read as a PRM before any training: the baseline a trained PRM
    must beat (its label-token probabilities are whatever pretraining left)."""
    from .training import _bf16_supported

    model, tok = load_causal_lm(scale.model, seed=seed)
    # scored in the precision the trained PRM was trained and is scored in: a fair baseline
    bf16 = _bf16_supported() if BF16 == "auto" else BF16
    return RewardModel(model, tok, "prm", FormatConfig(max_length=scale.max_length), bf16=bf16)
