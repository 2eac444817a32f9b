"""Train a PRM or an ORM with the Hugging Face Trainer, the way TRL trains reward models.

:class:`RewardConfig` is ``TrainingArguments`` plus the few fields specific to reward
models; :class:`RewardTrainer` is a ``Trainer`` whose loss is the label token's
log-likelihood at step ends only (:func:`prm_lib.reward_model.reward_loss`, on batches from
:func:`prm_lib.reward_model.collate`). Both are plain classes at module level: subclass them
like any Hugging Face class. :func:`train_reward_model` is the short road the chapters take:
examples in, a :class:`RewardRun` out, the model saved with ``save_pretrained``.

The same code runs on a laptop CPU, one GPU, or several (``accelerate launch`` /
``torchrun`` with DDP, DeepSpeed or FSDP configured the usual Trainer way): the Trainer
handles devices, bf16, gradient accumulation, checkpoints and resuming.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from .formatting import Example, FormatConfig
from .packing import PackedExample
from .reward_model import RewardModel, collate, reward_loss

__all__ = ["RewardConfig", "RewardTrainer", "RewardRun", "train_reward_model",
           "examples_dataset", "freeze_below", "add_top_layers", "bf16_supported",
           "resolve_bf16"]

#: Where a run keeps its trained model, inside the run's folder.
FINAL = "final"


def bf16_supported() -> bool:
    """Whether bfloat16 autocast pays here: a CUDA GPU that supports it, or a CPU with
    bfloat16 instructions (AVX512-BF16 or AMX). Any CPU *runs* bfloat16 autocast, but
    one without them emulates it: on an AMD EPYC with AVX2 only, a forward and backward
    pass of SmolLM2-135M over 4 x 256 tokens took 224 s in bfloat16 against 10 s in
    float32, so such a CPU trains in float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return _cpu_has_bf16()


def _cpu_has_bf16() -> bool:
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(cpu, name)() for name in checks if hasattr(cpu, name))
    except RuntimeError:  # a build without these checks: float32 is the safe choice
        return False


def resolve_bf16(bf16: bool | None) -> bool:
    """The precision a setting means: ``None`` is bfloat16 where :func:`bf16_supported`;
    a bool is itself. The one rule for training (:class:`RewardConfig`) and for scoring a
    model as the book trains it (:func:`prm_lib.runs.untrained_prm`)."""
    return bf16_supported() if bf16 is None else bool(bf16)


_TRAINING_ARGUMENTS = {f.name for f in fields(TrainingArguments)}


@dataclass
class RewardConfig(TrainingArguments):
    """Settings of :class:`RewardTrainer`: ``TrainingArguments`` and, specific to reward
    models:

    Attributes:
        loss: ``"full_vocab"`` (the paper's objective: the label token's log-probability
            under the whole vocabulary) or ``"label_tokens"`` (a softmax over the label
            tokens only; with a few hundred CPU steps the model need not first learn to
            put its mass on the label tokens at all).
        train_top_layers: train only the top this many decoder layers, the final norm and
            an untied output layer (see :func:`freeze_below`); None trains everything.
        warmup_ratio: share of the optimizer steps spent warming up the learning rate,
            rounded down (``int(warmup_ratio * steps)``; transformers 5 dropped the field,
            and its ``warmup_steps`` below 1 rounds up). ``warmup_steps`` wins when set.

    Defaults that differ from ``TrainingArguments``: ``learning_rate=1e-5`` (as TRL's
    reward configs), ``bf16=None`` (bfloat16 where :func:`bf16_supported`),
    ``logging_steps=5``, ``save_strategy="no"`` (:func:`train_reward_model` saves the final
    model; ask for checkpoints with ``save_strategy="steps"``), ``save_total_limit=2``,
    ``remove_unused_columns=False`` (the collator needs ``label_positions``),
    ``report_to="none"``, ``ddp_find_unused_parameters=False``, length-grouped batches,
    and ``data_seed`` = ``seed`` unless set.
    Without a CUDA GPU the run is on the CPU (``use_cpu``: bf16 on a CPU needs it).
    ``disable_tqdm=True`` also silences the per-log printing.
    """

    loss: Literal["full_vocab", "label_tokens"] = "full_vocab"
    train_top_layers: int | None = None
    warmup_ratio: float = 0.05
    learning_rate: float = 1e-5
    bf16: bool | None = None
    logging_steps: float = 5
    save_strategy: str = "no"
    save_total_limit: int | None = 2
    remove_unused_columns: bool = False
    report_to: str | list[str] | None = "none"
    # Every trainable parameter takes part in the loss (freeze_below freezes before DDP
    # wraps the model, and DDP skips frozen ones), so DDP need not search the graph for
    # unused ones each step.
    ddp_find_unused_parameters: bool | None = False
    # Batches of similar lengths waste less on padding; the option's name changed in
    # transformers 5 (train_sampling_strategy), the behaviour did not.
    if "train_sampling_strategy" in _TRAINING_ARGUMENTS:
        train_sampling_strategy: str = "group_by_length"
    else:  # transformers 4
        group_by_length: bool = True

    def __post_init__(self):
        if self.loss not in ("full_vocab", "label_tokens"):
            raise ValueError(f"loss must be 'full_vocab' or 'label_tokens', not {self.loss!r}")
        self.bf16 = False if self.fp16 else resolve_bf16(self.bf16)
        if not torch.cuda.is_available():
            self.use_cpu = True
        if self.data_seed is None:
            self.data_seed = self.seed  # one number sets initialisation and data order
        super().__post_init__()

    def get_warmup_steps(self, num_training_steps: int) -> int:
        if self.warmup_steps > 0:
            return super().get_warmup_steps(num_training_steps)
        return int(self.warmup_ratio * num_training_steps)


class RewardTrainer(Trainer):
    """The Trainer with the reward-model loss, and label-token accuracy logged beside the
    loss (``accuracy``, ``eval_accuracy``).

    The loss of an optimizer step is the mean over all its label tokens, and accuracy and
    token counts are summed over processes: N processes with batch b train as one process
    with batch N*b does, in the same data order (``tests/test_distributed.py``).

    Args:
        model: a causal LM.
        args: a :class:`RewardConfig`.
        token_ids: the label tokens' ids, in class order (:attr:`RewardModel.token_ids`).
        processing_class: the tokenizer (its pad id pads the batches).
        data_collator: default :func:`~prm_lib.reward_model.collate`.
        train_dataset, eval_dataset: rows ``input_ids``, ``label_positions``, ``labels``
            (:func:`examples_dataset`), and for prefix-shared sessions ``position_ids``,
            ``segment_starts``, ``segment_branches`` (the default collator builds their
            tree attention mask, :func:`~prm_lib.reward_model.collate_packed`).
    """

    def __init__(self, model, args: RewardConfig, *, token_ids: Sequence[int],
                 processing_class, data_collator=None, **kwargs):
        if data_collator is None:
            pad_id = processing_class.pad_token_id
            data_collator = lambda rows: collate(rows, pad_id)  # noqa: E731
        super().__init__(model=model, args=args, data_collator=data_collator,
                         processing_class=processing_class, **kwargs)
        if args.train_top_layers is not None:
            freeze_below(model, args.train_top_layers)
        self.token_ids = list(token_ids)
        # compute_loss normalises by the Trainer's num_items_in_batch whatever the model's
        # forward accepts, so the Trainer counts it and leaves the loss unscaled
        self.model_accepts_loss_kwargs = True
        self._acc = [0, 0]
        self._eval_acc = [0, 0]
        self.tokens_seen = 0
        if args.disable_tqdm:
            from transformers.trainer_callback import PrinterCallback

            self.remove_callback(PrinterCallback)  # it would print every log line instead

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The Trainer's mixed precision only wraps model.forward; the reward loss calls
        # the decoder directly, so it must enter bf16 autocast itself.
        with self.accelerator.autocast():
            loss, (n, correct) = reward_loss(model, inputs, self.token_ids, self.args.loss)
        if num_items_in_batch is not None:
            # The mean over every label token of the optimizer step (all micro-batches of
            # gradient accumulation, all processes), not a mean of batch means: N processes
            # x batch b, N accumulation steps of b and one batch of N*b then train alike.
            # The Trainer counts the labels of all processes; DDP averages gradients over
            # them, hence the factor.
            loss = loss * (n / num_items_in_batch)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.accelerator.num_processes
        if model.training:
            self._acc[0] += n
            self._acc[1] += correct
            self.tokens_seen += int(inputs.get("padding_mask", inputs["attention_mask"]).sum())
        else:
            self._eval_acc[0] += n
            self._eval_acc[1] += correct
        return (loss, None) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # every process logs the loss: all take part in the sum
            n, correct = self.summed(self._acc)
            self._acc = [0, 0]
            if n:
                logs["accuracy"] = correct / n
        super().log(logs, *args, **kwargs)

    def summed(self, counts: Sequence[int]) -> list[int]:
        """Integer counts summed over the processes of a distributed run (every process
        must call it); themselves in a single process."""
        if self.accelerator.num_processes == 1:
            return list(counts)
        total = self.accelerator.reduce(torch.tensor(counts, device=self.args.device), "sum")
        return [int(v) for v in total.tolist()]

    def _get_train_sampler(self, *args, **kwargs):
        # The Trainer groups lengths in mega-batches of 50 per-device batches, so N
        # processes would see another order than one process at the same global batch.
        # Grouped by the global batch, every process count gets the order one process
        # gets (process k takes every N-th per-device batch of it).
        sampler = super()._get_train_sampler(*args, **kwargs)
        if isinstance(sampler, LengthGroupedSampler):
            sampler.batch_size = (self.args.train_batch_size * self.args.world_size
                                  * self.args.gradient_accumulation_steps)
        return sampler

    def evaluate(self, *args, **kwargs):
        self._eval_acc = [0, 0]
        return super().evaluate(*args, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        n, c = self.summed(self._eval_acc)
        if n:
            prefix = kwargs.get("metric_key_prefix", "eval")
            output.metrics[f"{prefix}_accuracy"] = c / n
        return output


@dataclass
class RewardRun:
    """A trained reward model and how it was made: what :func:`train_reward_model`
    returns, and what the book's cached runs (:mod:`prm_lib.runs`) and the laboratory's
    (:class:`prm_lib.lab.experiments.LabRun`) load.

    Attributes:
        path: the run's folder; the model is in ``path / "final"`` (:attr:`model_dir`).
        summary: settings and figures of the run (``kind``, examples, seconds, ...).
        history: the training log, one row per log event: ``step``, ``epoch``,
            ``loss``/``eval_loss``, ``accuracy``/``eval_accuracy`` (label-token accuracy),
            ``learning_rate``.
        cached: loaded from an earlier run instead of trained now.
        reward_model: the model, ready to score (loaded from :attr:`model_dir` on first
            use when the run was not trained in this process).
    """

    path: Path
    summary: dict
    history: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    cached: bool = False
    _reward_model: RewardModel | None = field(default=None, repr=False)

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def model_dir(self) -> Path:
        return self.path / FINAL

    @property
    def kind(self) -> str:
        return self.summary["kind"]

    @property
    def reward_model(self) -> RewardModel:
        if self._reward_model is None:
            from .progress import quiet_loading

            with quiet_loading():
                self._reward_model = RewardModel.from_pretrained(self.model_dir)
        return self._reward_model


def examples_dataset(examples: Sequence[Example] | Sequence[PackedExample]):
    """Formatted examples as a ``datasets.Dataset`` with columns ``input_ids``,
    ``label_positions`` and ``labels`` (what :class:`RewardTrainer` trains on); prefix-shared
    sessions (:func:`prm_lib.packing.session_examples`) also ``position_ids``,
    ``segment_starts`` and ``segment_branches``."""
    from datasets import Dataset

    columns = ["input_ids", "label_positions", "labels"]
    packed = [isinstance(e, PackedExample) for e in examples]
    if any(packed):
        if not all(packed):
            raise ValueError("examples mix prefix-shared sessions (PackedExample) and plain "
                             "examples: format them one way")
        columns += ["position_ids", "segment_starts", "segment_branches"]
    return Dataset.from_dict({c: [getattr(e, c) for e in examples] for c in columns})


def freeze_below(model, top_layers: int) -> int:
    """Freeze everything but the top ``top_layers`` decoder layers and the final norm;
    returns the number of trainable parameters.

    The output layer is trained too unless it is tied to the input embedding (SmolLM2's
    is): training a tied output layer trains the input embedding, whose gradient must
    flow back through every layer, which is exactly the cost freezing avoids.
    """
    for p in model.parameters():
        p.requires_grad = False
    decoder = model.get_decoder()
    layers = decoder.layers
    for layer in layers[len(layers) - top_layers :]:
        for p in layer.parameters():
            p.requires_grad = True
    if getattr(decoder, "norm", None) is not None:
        for p in decoder.norm.parameters():
            p.requires_grad = True
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if head.weight is not embed.weight:
        for p in head.parameters():
            p.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def add_top_layers(model, n: int, seed: int = 0):
    """The same model with ``n`` new decoder layers stacked on its top ones, before the
    final norm: a deeper copy that computes exactly what ``model`` computes until it is
    trained.

    Each new layer is initialised as the model's family initialises a layer, except that
    the projections writing into the residual stream (``o_proj`` of attention,
    ``down_proj`` of the MLP) start at zero, so a new layer adds nothing at first (as a
    LoRA update starts at zero). With :func:`freeze_below` ``(model, n)`` only the new
    layers (and the final norm) learn, and everything the original layers know is kept.
    The result is a plain model of the same class (its config says
    ``num_hidden_layers + n``): ``save_pretrained``/``from_pretrained`` need nothing new.

    Args:
        model: a causal LM whose decoder keeps its layers in ``.layers`` (Llama, Qwen2,
            SmolLM2, the laboratory's generator).
        n: how many layers to add (0 returns ``model`` itself).
        seed: seeds the new layers' initial weights.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return model
    import copy

    config = copy.deepcopy(model.config)
    base = config.num_hidden_layers
    config.num_hidden_layers = base + n
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types) + [config.layer_types[-1]] * n
    torch.manual_seed(seed)
    deeper = type(model)(config).to(dtype=next(model.parameters()).dtype)
    missing, unexpected = deeper.load_state_dict(model.state_dict(), strict=False)
    added = {f".layers.{i}." for i in range(base, base + n)}
    if unexpected or any(not any(a in k for a in added) for k in missing):
        raise ValueError(f"cannot stack layers on a {type(model).__name__}: its weights "
                         f"do not map onto a deeper copy (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    for layer in deeper.get_decoder().layers[base:]:
        for name, p in layer.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                torch.nn.init.zeros_(p)
    deeper.tie_weights()
    deeper.eval()
    return deeper


def train_reward_model(
    model,
    tokenizer,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example] | None = None,
    *,
    args: RewardConfig,
    format_config: FormatConfig,
    kind: Literal["prm", "orm"] = "prm",
    resume_from_checkpoint: bool | str | None = None,
    trainer_class: type[RewardTrainer] = RewardTrainer,
) -> RewardRun:
    """Fine-tune ``model`` into a reward model on formatted examples.

    Args:
        model, tokenizer: a causal LM and its tokenizer (see :mod:`prm_lib.models`).
        train_examples, eval_examples: from :func:`prm_lib.formatting.prm_examples` or
            :func:`~prm_lib.formatting.orm_examples`; or, for prefix-shared training (each
            labeling session one sequence: the same labels and gradients on far fewer
            tokens), from :func:`prm_lib.packing.session_examples`. With ``eval_examples``
            the held-out loss is also computed at the end (if ``args`` did not evaluate
            the last step).
        args: the training settings.
        format_config: the one the examples were made with; saved with the model so that
            scoring formats solutions the same way (required for that reason).
        kind: ``"prm"`` or ``"orm"`` (sets the label tokens).
        resume_from_checkpoint: as ``Trainer.train``'s, except that True starts afresh
            when ``args.output_dir`` holds no checkpoint yet.
        trainer_class: :class:`RewardTrainer` or a subclass of it.

    Returns:
        A :class:`RewardRun` (``path`` = ``args.output_dir``) whose summary holds ``kind``,
        ``optimizer_steps``, ``seconds``, ``tokens`` (non-padding tokens trained on, by
        all processes together), ``tokens_per_second`` and ``precision`` (``"bfloat16"``
        or ``"float32"``, what the run computed in); the model, scored in the precision it was trained in, is
        saved to ``path / "final"``.
    """
    if not train_examples:
        raise ValueError("no training examples: check the data and FormatConfig.max_length")
    set_seed(args.seed)
    rm = RewardModel(model, tokenizer, kind, format_config, bf16=args.bf16)
    trainer = trainer_class(
        model,
        args,
        token_ids=rm.token_ids,
        processing_class=tokenizer,
        train_dataset=examples_dataset(train_examples),
        eval_dataset=examples_dataset(eval_examples) if eval_examples else None,
    )
    if resume_from_checkpoint is True and not any(Path(args.output_dir).glob("checkpoint-*")):
        resume_from_checkpoint = None
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    seconds = time.perf_counter() - start
    final_step = trainer.state.global_step
    evaluated = any("eval_loss" in e and e.get("step") == final_step
                    for e in trainer.state.log_history)
    if eval_examples and not evaluated:
        trainer.evaluate()  # the final model's held-out loss
    path = Path(args.output_dir)
    if trainer.model_wrapped is trainer.model:
        rm.save_pretrained(path / FINAL)
    else:  # DDP, FSDP, DeepSpeed: the whole weights, gathered (FSDP and ZeRO-3 shard
        # them), written by one process
        state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if trainer.is_world_process_zero():
            rm.save_pretrained(path / FINAL, state_dict=state_dict)
        trainer.accelerator.wait_for_everyone()
    (tokens,) = trainer.summed([trainer.tokens_seen])
    summary = {"kind": kind, "optimizer_steps": final_step, "seconds": seconds,
               "tokens": tokens, "tokens_per_second": tokens / seconds if seconds else
               float("nan"), "precision": "bfloat16" if args.bf16 else "float32"}
    return RewardRun(path, summary, pd.DataFrame(trainer.state.log_history),
                     _reward_model=rm)
