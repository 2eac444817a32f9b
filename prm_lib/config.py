"""One switch that sets the scale of a whole run.

Every chapter starts with a papermill ``parameters`` cell holding the same names::

    scale = "laptop"     # "tiny" (tests/CI), "laptop" (default, 2-core CPU), "gpu"
    data_dir = None      # a local data folder; None: $PRM_DATA_DIR, else download
    seed = 0

and turns ``scale`` into a :class:`Scale` with :func:`get_scale`. No chapter keeps its own
magic numbers: what depends on the size of the run lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Scale", "SCALES", "get_scale"]


@dataclass(frozen=True)
class Scale:
    """Sizes for one kind of run.

    Attributes:
        name: ``"tiny"``, ``"laptop"`` or ``"gpu"``.
        max_problems: cap on PRM800K problems loaded per split (None: all of them).
        n_examples: how many solutions a chapter renders as examples.
    """

    name: str
    max_problems: int | None
    n_examples: int


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", max_problems=60, n_examples=1),
    "laptop": Scale("laptop", max_problems=None, n_examples=3),
    "gpu": Scale("gpu", max_problems=None, n_examples=3),
}


def get_scale(name: str, **overrides) -> Scale:
    """The preset called ``name``, with any field overridden by keyword.

    Raises:
        ValueError: ``name`` is not one of ``SCALES``.
    """
    try:
        scale = SCALES[name]
    except KeyError:
        raise ValueError(
            f"unknown scale {name!r}; choose one of {sorted(SCALES)}"
        ) from None
    return replace(scale, **overrides) if overrides else scale
