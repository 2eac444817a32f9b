"""Build the laboratory once and cache it: problems, a trained generator, sample pools.

:func:`build_lab` draws three disjoint sets of problems (the generator's, the reward
models' training problems, the test problems), trains the generator on reference
solutions of the first, and samples pools of solutions for the other two, every sample
rated step by step by the exact checker. Everything is saved under
``$PRM_CACHE_DIR/lab/<scale>-seed<seed>-<hash>`` (the hash covers every setting), so the
chapters of the laboratory share one build.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..config import LabConfig, Scale, get_scale
from ..progress import quiet_loading
from ..sources import cache_dir
from .generator import sample_solutions, torch_threads, train_generator
from .problems import LabProblem, make_problems, misconceptions

__all__ = ["Laboratory", "build_lab", "lab_dir", "generator_dir", "lab_generator", "pool_seed",
           "validation_lab"]

_SPLIT_SEEDS = {"test": 1, "train": 2, "generator": 3}


@dataclass
class Laboratory:
    """Everything the laboratory's experiments start from.

    Attributes:
        scale: the sizes used (the scale's :class:`~prm_lib.config.LabConfig`).
        seed: the seed of problems, generator and pools.
        problems: ``"generator"``, ``"train"`` and ``"test"`` problem lists (disjoint).
        generator, tokenizer: the trained generator (eval mode).
        generator_history: its training loss per logged step.
        pools: ``"train"`` and ``"test"`` sample tables (see
            :func:`~prm_lib.lab.generator.sample_solutions`).
        path: the cache folder.
        timings: seconds spent on each stage when it was built.
        cached: loaded from an earlier build.
    """

    scale: LabConfig
    seed: int
    problems: dict[str, list[LabProblem]]
    generator: object
    tokenizer: object
    generator_history: pd.DataFrame
    pools: dict[str, pd.DataFrame]
    path: Path
    timings: dict = field(default_factory=dict)
    cached: bool = False


#: The settings that change what :func:`build_lab` makes (the reward-model settings do not:
#: reward-model runs have keys of their own inside the laboratory's folder).
BUILD_FIELDS = ("generator", "generator_problems", "train_problems", "test_problems",
                "train_pool", "test_pool", "min_ops", "max_ops", "number_max", "factor_max")


#: Build settings added later: in the key only when they differ from their default, so
#: the folders of laboratories built before them keep their names.
OPTIONAL_BUILD_FIELDS = {"domain": "chain", "misconceptions": 0, "misconception_rate": 0.0,
                         "temperature": 1.0}

#: The settings that change the generator: all but how its pools are sampled (laboratories
#: that differ only in those share one generator).
POOL_FIELDS = ("train_pool", "test_pool", "temperature")


def _key(scale: LabConfig, seed: int, skip: tuple[str, ...] = ()) -> str:
    settings = {k: v for k, v in scale.as_dict().items() if k in BUILD_FIELDS and k not in skip}
    if settings["generator"].get("target_loss") is None:  # added later: old names kept
        settings["generator"].pop("target_loss", None)
    settings |= {k: getattr(scale, k) for k, default in OPTIONAL_BUILD_FIELDS.items()
                 if getattr(scale, k) != default and k not in skip}
    # "sampler": bumped when the pools' sampler changes, so a folder sampled by an older
    # one is not reused (2: per-sample seeds of prm_lib.generation; before: per batch).
    # (the generator's threads are in its settings: a fixed number since "threads": 1)
    key = {"scale": settings, "seed": seed, "version": __version__, "sampler": 2}
    if scale.domain == "digits":
        key["text"] = 2  # 2: the shorter problem text ("Last digit of ...?")
    key = json.dumps(key, sort_keys=True, default=str)
    return f"{scale.name}-seed{seed}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def lab_dir(scale: LabConfig, seed: int) -> Path:
    """Where the laboratory for these settings lives."""
    return cache_dir() / "lab" / _key(scale, seed)


def generator_dir(scale: LabConfig, seed: int) -> Path:
    """Where the generator for these settings lives (shared by laboratories that differ
    only in how their pools are sampled, :data:`POOL_FIELDS`)."""
    return cache_dir() / "lab" / "generators" / _key(scale, seed, skip=POOL_FIELDS)


def _split_problems(scale: LabConfig, seed: int) -> dict[str, list[LabProblem]]:
    kw = {"min_ops": scale.min_ops, "max_ops": scale.max_ops, "number_max": scale.number_max,
          "factor_max": scale.factor_max, "domain": scale.domain}
    s = lambda split: [seed, _SPLIT_SEEDS[split]]  # noqa: E731
    test = make_problems(scale.test_problems, seed=s("test"), **kw)
    train = make_problems(scale.train_problems, seed=s("train"), exclude=test, **kw)
    gen = make_problems(scale.generator_problems, seed=s("generator"), exclude=test + train,
                        **kw)
    return {"generator": gen, "train": train, "test": test}


def pool_seed(seed: int, split: str) -> int:
    """The sampling seed of the laboratory's ``"train"`` or ``"test"`` pool."""
    return int(np.random.SeedSequence([seed, _SPLIT_SEEDS[split]]).generate_state(1)[0])


def _save_pool(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    out["steps"] = out["steps"].map(json.dumps)
    out["ratings"] = out["ratings"].map(list).map(json.dumps)
    out.to_parquet(path, index=False)


def _load_pool(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    # text columns back as the sampler makes them (object, None for no answer), whatever
    # string dtype this pandas reads parquet text into
    for column in ("problem", "answer", "finish_reason"):
        values = df[column].astype(object)
        df[column] = values.where(values.notna(), None)
    df["steps"] = df["steps"].map(json.loads)
    df["ratings"] = df["ratings"].map(lambda s: tuple(json.loads(s)))
    return df


def lab_generator(scale: LabConfig, seed: int = 0, progress: bool = True,
                  problems: dict[str, list[LabProblem]] | None = None):
    """The laboratory's generator for these settings and seed, trained on reference
    solutions of the generator problems on a fixed number of threads
    (``GeneratorConfig.threads``, so that a seed draws the same generator on any number
    of cores), or loaded from :func:`generator_dir` when it
    already is (every laboratory that differs only in how its pools are sampled shares
    it; ``experiments/lab_generator.py`` compares generators this way).

    ``problems``: the laboratory's problem splits when the caller has drawn them already
    (:func:`build_lab` has), so they are not drawn twice.

    Returns ``(model, tokenizer, history, seconds)``: ``seconds`` is the time its
    training took.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    path = generator_dir(scale, seed)
    done = path / "generator.json"
    if done.is_file():
        with quiet_loading():
            gen = LlamaForCausalLM.from_pretrained(path).eval()
        return (gen, AutoTokenizer.from_pretrained(path),
                pd.read_csv(path / "generator_history.csv"),
                json.loads(done.read_text())["seconds"])
    if path.exists():
        shutil.rmtree(path)  # an interrupted training: start clean
    problems = problems or _split_problems(scale, seed)
    facts = misconceptions(scale.misconceptions, seed, scale.domain) \
        if scale.misconceptions else None
    t = time.perf_counter()
    with torch_threads(scale.generator.threads):
        gen, tok, history = train_generator(problems["generator"], scale.generator,
                                            seed=seed, progress=progress,
                                            misconceptions=facts,
                                            misconception_rate=scale.misconception_rate)
    seconds = round(time.perf_counter() - t, 1)
    with quiet_loading():
        gen.save_pretrained(path)
    tok.save_pretrained(path)
    history.to_csv(path / "generator_history.csv", index=False)
    done.write_text(json.dumps({"seconds": seconds}))
    return gen, tok, history, seconds


def build_lab(scale: str | Scale | LabConfig = "laptop", seed: int = 0, progress: bool = True,
              rebuild: bool = False) -> Laboratory:
    """Build (or load from the cache) the laboratory of this scale (a name, a
    :class:`~prm_lib.config.Scale` or its ``lab``) and seed: its generator
    (:func:`lab_generator`) and its pools, sampled on the generator's fixed number of
    threads, so that the laboratory does not depend on the machine's cores.

    Returns a :class:`Laboratory`. ``rebuild=True`` ignores the cache.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    scale = get_scale(scale) if isinstance(scale, str) else scale
    scale = scale.lab if isinstance(scale, Scale) else scale
    path = lab_dir(scale, seed)
    problems = _split_problems(scale, seed)
    done = path / "build.json"
    if not rebuild and done.is_file():
        meta = json.loads(done.read_text())
        with quiet_loading():
            gen = LlamaForCausalLM.from_pretrained(path / "generator").eval()
        tok = AutoTokenizer.from_pretrained(path / "generator")
        pools = {k: _load_pool(path / f"pool_{k}.parquet") for k in ("train", "test")}
        return Laboratory(scale, seed, problems, gen, tok,
                          pd.read_csv(path / "generator_history.csv"), pools, path,
                          meta["timings"], cached=True)
    if path.exists():
        shutil.rmtree(path)  # an interrupted or stale build: start clean
    path.mkdir(parents=True)
    if rebuild:
        shutil.rmtree(generator_dir(scale, seed), ignore_errors=True)
    gen, tok, history, gen_seconds = lab_generator(scale, seed, progress, problems)
    with quiet_loading():  # every reward model starts from the laboratory's own copy
        gen.save_pretrained(path / "generator")
    tok.save_pretrained(path / "generator")
    history.to_csv(path / "generator_history.csv", index=False)
    timings = {"generator": gen_seconds}
    pools = {}
    for split, n in (("train", scale.train_pool), ("test", scale.test_pool)):
        t = time.perf_counter()
        with torch_threads(scale.generator.threads):
            pools[split] = sample_solutions(
                gen, tok, problems[split], n, seed=pool_seed(seed, split),
                temperature=scale.temperature, progress=progress)
        timings[f"{split} pool"] = round(time.perf_counter() - t, 1)
        _save_pool(pools[split], path / f"pool_{split}.parquet")
    done.write_text(json.dumps({"timings": timings, "scale": scale.as_dict()}, indent=2,
                               default=str))
    return Laboratory(scale, seed, problems, gen, tok, history, pools, path, timings)


def validation_lab(lab: Laboratory, fit_share: float = 0.75) -> Laboratory:
    """The laboratory in which recipes are chosen: reward models train on samples of the
    first ``fit_share`` of the training problems (its ``"train"`` pool) and are evaluated
    on every sample of the rest (its ``"test"`` pool). The real test pool is not in it,
    so nothing chosen with it has read a test problem.

    Reward-model runs are cached by a key that names the pool they are evaluated on
    (:func:`~prm_lib.lab.experiments.train_lab_rm`), so a run evaluated here never shares a
    folder or a number with one evaluated on the test pool.
    """
    train = lab.pools["train"]
    n_fit = int(fit_share * lab.scale.train_problems)
    if not 0 < n_fit < lab.scale.train_problems:
        raise ValueError(f"fit_share={fit_share} leaves no fit or no validation problem "
                         f"among {lab.scale.train_problems} training problems")
    fit = train[train.problem_index < n_fit].reset_index(drop=True)
    held = train[train.problem_index >= n_fit].reset_index(drop=True)
    return dataclasses.replace(
        lab, pools={"train": fit, "test": held},
        problems={"train": lab.problems["train"], "test": lab.problems["train"]},
        scale=lab.scale.with_(test_problems=lab.scale.train_problems - n_fit,
                              test_pool=lab.scale.train_pool))
