"""Sizes of the laboratory's runs, under the same scale names as the rest of the book.

A chapter of the laboratory reads the same ``scale`` parameter as every other chapter and
turns it into a :class:`LabScale` with :func:`lab_scale`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .generator import GeneratorConfig

__all__ = ["LabScale", "LAB_SCALES", "lab_scale"]


@dataclass(frozen=True)
class LabScale:
    """Sizes for one kind of laboratory run.

    Attributes:
        name: ``"tiny"``, ``"laptop"`` or ``"gpu"``.
        generator: the generator's size and training.
        generator_problems: problems whose reference solutions train the generator.
        train_problems: problems whose sampled solutions are labeled to train reward models.
        test_problems: held-out problems of the best-of-N evaluation.
        train_pool: samples drawn per training problem (the most any experiment labels,
            and the pool active learning selects from).
        test_pool: samples drawn per test problem (the largest N of best-of-N).
        min_ops, max_ops: operations per problem.
        number_max, factor_max: largest first number / ``+ -`` operand, and largest factor
            of ``*`` (see :func:`~prm_lib.lab.problems.make_problems`).
        data_sizes: labeled samples per training problem along Figure 4's x axis.
        seeds: reward-model seeds per point (confidence bands).
        rm_steps_min: fewest optimizer steps of a reward-model run (small data sets are
            repeated for several epochs rather than trained for a handful of steps).
        rm_epochs, rm_batch_size, rm_learning_rate, rm_loss: reward-model training (see
            :class:`prm_lib.training.TrainConfig`).
        trials: best-of-N trials.
    """

    name: str
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    generator_problems: int = 20_000
    train_problems: int = 200
    test_problems: int = 100
    train_pool: int = 64
    test_pool: int = 32
    min_ops: int = 2
    max_ops: int = 5
    number_max: int = 30
    factor_max: int = 5
    data_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: int = 3
    rm_steps_min: int = 60
    rm_epochs: float = 2.0
    rm_batch_size: int = 32
    rm_learning_rate: float = 1e-3
    rm_loss: str = "label_tokens"
    trials: int = 200

    def describe(self) -> str:
        """One line for figure captions."""
        g = self.generator
        return (f"scale={self.name}: generator {g.layers}x{g.hidden_size} trained "
                f"{g.steps:,} steps; {self.train_problems} training / {self.test_problems} "
                f"test problems; {self.train_pool} / {self.test_pool} samples per problem")

    def as_dict(self) -> dict:
        return asdict(self)


LAB_SCALES: dict[str, LabScale] = {
    # seconds: a generator that has barely learned the format, a handful of problems
    "tiny": LabScale(
        "tiny", generator=GeneratorConfig(hidden_size=32, layers=1, heads=2, steps=40,
                                          batch_size=16),
        generator_problems=500, train_problems=12, test_problems=8, train_pool=8,
        test_pool=8, data_sizes=(1, 2), seeds=2, rm_steps_min=4, rm_batch_size=16, trials=20,
    ),
    # a 2-core CPU: each chapter of the laboratory in minutes
    "laptop": LabScale("laptop"),
    # more of everything: a larger generator, more problems, the paper's range of data
    "gpu": LabScale(
        "gpu", generator=GeneratorConfig(hidden_size=256, layers=6, heads=8, steps=6000,
                                         batch_size=128, learning_rate=1e-3),
        generator_problems=100_000, train_problems=1000, test_problems=500, train_pool=256,
        test_pool=256, data_sizes=(1, 2, 4, 8, 16, 32, 64, 128), seeds=3, trials=400,
    ),
}


def lab_scale(name: str, **overrides) -> LabScale:
    """The laboratory preset called ``name``, with any field overridden by keyword."""
    try:
        scale = LAB_SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}; choose one of {sorted(LAB_SCALES)}") from None
    return replace(scale, **overrides) if overrides else scale
