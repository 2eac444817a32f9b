"""The baselines a PRM must beat: a constant scorer and a step-position prior.

Part of the **evaluate** stage of load -> format -> train -> score -> evaluate -> plot.
Each baseline is a score function (``(problems, steps) -> [array [n_steps, 3]]``, see
:mod:`prm_lib.scoring`), so it runs through exactly the code a PRM runs through, and its
probabilities go to the same :mod:`prm_lib.metrics`. None of them reads a step's text.

* :func:`constant_baseline`: the same probabilities for every step (AUC 0.5 exactly);
  :func:`constant_first_error`: the two constant first-error predictions.
* :func:`position_prior_baseline`: P(rating | step position) fitted on training items,
  the "later steps are riskier" rule a PRM has to beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .items import FirstErrorSet, StepItem
from .schema import RATINGS

__all__ = [
    "ConstantScorer",
    "constant_baseline",
    "constant_first_error",
    "PositionPrior",
    "position_prior_baseline",
]


@dataclass(frozen=True)
class ConstantScorer:
    """A score function giving every step the same (P(-1), P(0), P(+1))."""

    probs: tuple[float, float, float]

    def __call__(self, problems: list[str], steps: list[list[str]]) -> list[np.ndarray]:
        row = np.asarray(self.probs, dtype=float)
        return [np.tile(row, (len(s), 1)) for s in steps]


def constant_baseline(p_negative: float = 0.5, p_neutral: float = 0.0) -> ConstantScorer:
    """The no-information scorer: the same probabilities for every step.

    Its step AUC is exactly 0.5 (all scores tie). For first-error detection it predicts
    "error at step 0" everywhere when ``p_negative`` exceeds the threshold and "no
    error" everywhere otherwise; F1 is 0 either way (see :func:`constant_first_error`).
    """
    p_pos = 1.0 - p_negative - p_neutral
    if min(p_negative, p_neutral, p_pos) < 0:
        raise ValueError("p_negative + p_neutral must lie in [0, 1]")
    return ConstantScorer((p_negative, p_neutral, p_pos))


def constant_first_error(n_or_set: int | FirstErrorSet, predict: str = "no error") -> np.ndarray:
    """The two constant first-error predictions: ``"no error"`` (-1 everywhere) or
    ``"step 0"`` (0 everywhere), int array ``[n_solutions]``."""
    n = len(n_or_set.solutions) if isinstance(n_or_set, FirstErrorSet) else int(n_or_set)
    if predict not in ("no error", "step 0"):
        raise ValueError(f"predict must be 'no error' or 'step 0', not {predict!r}")
    return np.full(n, -1 if predict == "no error" else 0, dtype=int)


@dataclass(frozen=True)
class PositionPrior:
    """Rating frequencies as a function of step position, fitted on training items.

    Attributes:
        table: ``{role: array [n_positions, 3]}`` of P(-1), P(0), P(+1) for positions
            ``0..n_positions-1``; the last row serves every later position. The key is
            ``"any"`` unless the prior was fitted ``by_role``.
        counts: ``{role: int array [n_positions, 3]}``, the training counts behind it.
        by_role: whether the prior also conditions on the item's role.
    """

    table: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    by_role: bool = False

    def _rows(self, role: str, positions: np.ndarray) -> np.ndarray:
        t = self.table[role]
        return t[np.minimum(positions, len(t) - 1)]

    def __call__(self, problems: list[str], steps: list[list[str]]) -> list[np.ndarray]:
        """Score functions see no roles, so only the position-only prior is one."""
        if self.by_role:
            raise TypeError("a by_role prior needs each item's role, which a scorer never "
                            "sees; use predict_items(items)")
        return [self._rows("any", np.arange(len(s))) for s in steps]

    def predict_items(self, items: Sequence[StepItem]) -> np.ndarray:
        """P(-1), P(0), P(+1) per item, float array ``[n_items, 3]``."""
        pos = np.array([it.position for it in items], dtype=int)
        if not self.by_role:
            return self._rows("any", pos).reshape(len(items), 3)
        out = np.empty((len(items), 3))
        roles = np.array([it.role for it in items])
        for role in self.table:
            mask = roles == role
            out[mask] = self._rows(role, pos[mask])
        return out


def position_prior_baseline(
    train_items: Sequence[StepItem],
    by_role: bool = False,
    min_count: int = 100,
    smoothing: float = 20.0,
) -> PositionPrior:
    """Fit P(rating | step position) on training items.

    Positions are kept apart while at least ``min_count`` training items sit at that
    position or later; later positions share the last row. Each row is shrunk toward the
    overall rating frequencies with ``smoothing`` pseudo-items, so sparse positions do not
    swing.

    ``by_role=True`` also conditions on role (trajectory / alternative). In phase 1 that
    nearly reveals the label (every rated trajectory step is +1), and no PRM sees roles:
    report it as a measure of the leak, not as a floor.
    """
    if not len(train_items):
        raise ValueError("no training items to fit the position prior on")
    col = {r: j for j, r in enumerate(RATINGS)}
    roles = sorted({it.role for it in train_items}) if by_role else ["any"]
    overall = np.zeros(3)
    for it in train_items:
        overall[col[it.rating]] += 1
    overall /= overall.sum()
    table, counts = {}, {}
    for role in roles:
        sel = [it for it in train_items if not by_role or it.role == role]
        pos = np.array([it.position for it in sel], dtype=int)
        per_pos = np.bincount(pos)
        tail = np.cumsum(per_pos[::-1])[::-1]  # items at this position or later
        last = int(np.flatnonzero(tail >= min_count).max()) if (tail >= min_count).any() else 0
        c = np.zeros((last + 1, 3), dtype=int)
        for p, it in zip(np.minimum(pos, last), sel):
            c[p, col[it.rating]] += 1
        table[role] = (c + smoothing * overall) / (c.sum(axis=1, keepdims=True) + smoothing)
        counts[role] = c
    return PositionPrior(table, counts, by_role)
