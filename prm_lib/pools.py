"""Chapter 4's sample pool: the paper's scored samples when they can be had, else the
laboratory's.

Part of the **evaluate** stage (load -> format -> train -> score -> evaluate -> plot):
:func:`evaluation_pool` loads the pool that :mod:`prm_lib.best_of_n` evaluates and says
how (which N, how many trials, what the pool is). The paper's released samples come from
:func:`prm_lib.samples.load_scored_samples`; only when they cannot be found is the
laboratory (:mod:`prm_lib.lab`) built, so importing this module does not import it.
:func:`figure3_note` writes the paper's Figure 3 numbers for a figure whose pool is not
the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from .paper import (PAPER_BEST_OF_1860, PAPER_FIGURE_3_SOURCE, PAPER_N_TRIALS, PAPER_NS,
                    PAPER_POOL_SIZE)

if TYPE_CHECKING:  # the laboratory is imported only when its pool is built
    from .config import LabConfig, Scale
    from .lab.experiments import LabRun
    from .lab.build import Laboratory

__all__ = ["EvaluationPool", "evaluation_pool", "figure3_note"]


@dataclass
class EvaluationPool:
    """The sample pool chapter 4 evaluates, and how.

    Attributes:
        samples: the sample table with ``prm_score`` and ``orm_score``.
        source: ``"paper"`` (OpenAI's released samples) or ``"laboratory"``.
        ns: the N values; n_trials: trials; pad_to: the pool size.
        description: one line on what the pool is, for captions and notes.
        unavailable: why the paper's samples were not used (None when they were).
        lab, runs: the laboratory and its reward models (laboratory pool only).
    """

    samples: pd.DataFrame
    source: str
    ns: tuple[int, ...]
    n_trials: int
    pad_to: int
    description: str
    unavailable: str | None = None
    lab: Laboratory | None = None
    runs: dict[str, LabRun] | None = None

    @property
    def is_paper(self) -> bool:
        """True when this is the paper's pool, whose Figure 3 numbers may stand beside ours."""
        return self.source == "paper"

    @property
    def spread_ns(self) -> tuple[int, ...]:
        """A few N, from 1 to the pool size, at which to show the spread over trials."""
        if self.is_paper:
            return (1, 10, 100, PAPER_POOL_SIZE)
        middle = 2 ** (int(math.log2(self.pad_to)) // 2)
        return tuple(sorted({1, middle, self.pad_to}))


def evaluation_pool(scale: str | Scale | LabConfig, data_dir=None, seed: int = 0,
                    download: bool | None = None, progress: bool = False) -> EvaluationPool:
    """The paper's scored samples if they can be had, else the laboratory's test pool.

    The paper's pool: :func:`prm_lib.samples.load_scored_samples` (a local copy in
    ``data_dir`` / ``$PRM_DATA_DIR`` / the cache, else a download; ``download=None``
    downloads except at scale ``"tiny"``, which must run offline), evaluated at the
    paper's N with :data:`~prm_lib.paper.PAPER_N_TRIALS` trials (the tiny scale's
    ``trials`` at tiny). When it cannot be found
    (:class:`~prm_lib.sources.DataNotFoundError`), the laboratory of ``scale`` and
    ``seed``: its test pool scored by its PRM (``prm_score``, process supervision) and ORM
    (``orm_score``, final-answer supervision) of
    :func:`~prm_lib.lab.evaluation.lab_reward_models`, N = powers of
    two up to the pool size, ``trials`` of the scale.
    """
    from .config import Scale, get_scale
    from .lab.evaluation import lab_reward_models, powers_of_two, scored_test_pool
    from .lab.build import build_lab
    from .samples import load_scored_samples
    from .sources import DataNotFoundError

    # a scale's name, a Scale, or the laboratory's own LabConfig
    cfg = get_scale(scale) if isinstance(scale, str) else scale
    cfg = cfg.lab if isinstance(cfg, Scale) else cfg
    if download is None:
        download = cfg.name != "tiny"
    try:
        samples = load_scored_samples(data_dir=data_dir, download=download, with_steps=False,
                                      progress=progress)
    except DataNotFoundError as exc:
        reason = str(exc)
    else:
        n_problems = samples["problem"].nunique()
        return EvaluationPool(
            samples, "paper", PAPER_NS,
            cfg.trials if cfg.name == "tiny" else PAPER_N_TRIALS, PAPER_POOL_SIZE,
            f"OpenAI's released samples ({n_problems} MATH500 problems, up to "
            f"{PAPER_POOL_SIZE:,} samples each) scored by the paper's large-scale PRM and ORM")
    lab = build_lab(cfg, seed=seed, progress=progress)
    runs = lab_reward_models(lab, seed=seed, supervisions=("process", "outcome (final answer)"),
                             progress=progress)
    samples = scored_test_pool(lab, runs)
    size = cfg.data_sizes[-1]
    return EvaluationPool(
        samples, "laboratory", tuple(powers_of_two(cfg.test_pool)), cfg.trials, cfg.test_pool,
        f"the laboratory's test pool ({cfg.test_problems} problems, {cfg.test_pool} samples "
        f"each) scored by its PRM and ORM, trained on {size} labeled samples per training "
        f"problem ({cfg.name} scale)", unavailable=reason, lab=lab, runs=runs)


def figure3_note() -> str:
    """The paper's Figure 3 numbers as a line for a figure whose pool is not the paper's
    (so they are written, not drawn as points on the same axes)."""
    values = ", ".join(f"{k} {v:g}%" for k, v in PAPER_BEST_OF_1860.items())
    return (f"paper ({PAPER_FIGURE_3_SOURCE}), best-of-{PAPER_POOL_SIZE:,} on MATH500: {values}; "
            f"another generator and pool: compare the shape, not the level")
