"""Train a PRM or an ORM with the Hugging Face Trainer.

The same code runs on a laptop CPU, one GPU, or several (``accelerate launch`` /
``torchrun`` with DDP, DeepSpeed or FSDP configured the usual Trainer way): the Trainer
handles devices, bf16, gradient accumulation, checkpoints and resuming. What is specific
to reward models is small: a collator that puts class labels at step ends
(:func:`prm_lib.reward_model.collate`) and a loss on those positions only
(:func:`prm_lib.reward_model.reward_loss`).
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import pandas as pd

from .formatting import Example, FormatConfig
from .reward_model import RewardModel, collate, reward_loss

__all__ = ["TrainConfig", "TrainResult", "train_reward_model", "freeze_below"]


@dataclass
class TrainConfig:
    """Training settings (the Trainer's, with reward-model defaults).

    Attributes:
        output_dir: checkpoints and the final model go here.
        epochs: passes over the data (the paper: 2 for the PRM, 1 for the ORM).
        max_steps: stop after this many optimizer steps (overrides ``epochs`` if > 0).
        learning_rate: peak learning rate (linear decay after ``warmup_ratio``).
        batch_size: sequences per device per forward pass.
        grad_accum: forward passes per optimizer step.
        bf16: ``"auto"`` uses bfloat16 autocast where the hardware supports it.
        train_top_layers: train only the top this many transformer layers and the
            output layer (faster on a CPU); None trains everything.
        loss: ``"full_vocab"`` (the paper's log-likelihood) or ``"label_tokens"``.
        eval_steps: evaluate every this many steps (None: at the end only).
        save_steps: checkpoint every this many steps (None: no intermediate checkpoints).
        resume: resume from the last checkpoint in ``output_dir``.
        seed: seeds data order and initialisation.
    """

    output_dir: str
    epochs: float = 2.0
    max_steps: int = -1
    learning_rate: float = 1e-5
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    bf16: bool | Literal["auto"] = "auto"
    train_top_layers: int | None = None
    loss: Literal["full_vocab", "label_tokens"] = "full_vocab"
    logging_steps: int = 5
    eval_steps: int | None = None
    save_steps: int | None = None
    resume: bool = False
    seed: int = 0
    progress: bool = True
    extra: dict = field(default_factory=dict)  # any other TrainingArguments field


@dataclass
class TrainResult:
    """What training produced.

    Attributes:
        reward_model: the trained model, saved in ``path``.
        history: one row per log event: ``step``, ``epoch``, ``loss``/``eval_loss``,
            ``accuracy``/``eval_accuracy`` (label-token accuracy), ``learning_rate``.
        seconds: wall time of training.
        tokens: tokens processed (padding excluded).
        path: where the final model was saved.
    """

    reward_model: RewardModel
    history: pd.DataFrame
    seconds: float
    tokens: int
    path: Path

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("nan")


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


class _Dataset:
    def __init__(self, examples: Sequence[Example]):
        self.rows = [
            {"input_ids": e.input_ids, "label_positions": e.label_positions, "labels": e.labels}
            for e in examples
        ]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _make_trainer_class():
    from transformers import Trainer

    class RewardTrainer(Trainer):
        """The Trainer with the reward-model loss and label-token accuracy logged."""

        def __init__(self, *args, token_ids, loss_kind, **kwargs):
            super().__init__(*args, **kwargs)
            self.token_ids, self.loss_kind = list(token_ids), loss_kind
            self._acc = [0, 0]
            self.tokens_seen = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The Trainer's mixed precision only wraps model.forward; the reward loss calls
            # the decoder directly, so it must enter bf16 autocast itself.
            with self.accelerator.autocast():
                loss, (n, correct) = reward_loss(model, inputs, self.token_ids, self.loss_kind)
            if model.training:
                self._acc[0] += n
                self._acc[1] += correct
                self.tokens_seen += int(inputs["attention_mask"].sum())
            else:
                self._eval_acc[0] += n
                self._eval_acc[1] += correct
            return (loss, None) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if "loss" in logs and self._acc[0]:
                logs["accuracy"] = self._acc[1] / self._acc[0]
                self._acc = [0, 0]
            super().log(logs, *args, **kwargs)

        def evaluate(self, *args, **kwargs):
            self._eval_acc = [0, 0]
            metrics = super().evaluate(*args, **kwargs)
            return metrics

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            import torch

            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

        def evaluation_loop(self, *args, **kwargs):
            output = super().evaluation_loop(*args, **kwargs)
            n, c = self._eval_acc
            if n:
                prefix = kwargs.get("metric_key_prefix", "eval")
                output.metrics[f"{prefix}_accuracy"] = c / n
            return output

    return RewardTrainer


def _bf16_supported() -> bool:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return True  # CPU autocast to bfloat16 works on any recent x86/ARM CPU


def train_reward_model(
    model,
    tokenizer,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example] | None = None,
    *,
    config: TrainConfig,
    format_config: FormatConfig,
    kind: Literal["prm", "orm"] = "prm",
) -> TrainResult:
    """Fine-tune ``model`` into a reward model on formatted examples.

    Args:
        model, tokenizer: a causal LM and its tokenizer (see :mod:`prm_lib.models`).
        train_examples, eval_examples: from :func:`prm_lib.formatting.prm_examples` or
            :func:`~prm_lib.formatting.orm_examples`.
        config: the training settings.
        kind: ``"prm"`` or ``"orm"`` (sets the label tokens).
        format_config: the one the examples were made with; stored with the model so
            that scoring formats solutions the same way (required for that reason).

    Returns:
        A :class:`TrainResult`; the model is also saved to ``config.output_dir/final``.
    """
    import torch
    from transformers import TrainingArguments, set_seed

    if not train_examples:
        raise ValueError("no training examples: check the data and FormatConfig.max_length")
    set_seed(config.seed)
    rm = RewardModel(model, tokenizer, kind, format_config)
    if config.train_top_layers is not None:
        freeze_below(model, config.train_top_layers)
    bf16 = _bf16_supported() if config.bf16 == "auto" else bool(config.bf16)
    rm.bf16 = bf16  # score as trained
    params = inspect.signature(TrainingArguments.__init__).parameters
    grouping = (
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in params
        else {"group_by_length": True}
    )
    use_cpu = not torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=config.output_dir,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_steps=0,
        lr_scheduler_type="linear",
        weight_decay=config.weight_decay,
        bf16=bf16,
        use_cpu=use_cpu,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if (eval_examples and config.eval_steps) else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        remove_unused_columns=False,
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        **grouping,
        **config.extra,
    )
    steps_per_epoch = math.ceil(len(train_examples) / (config.batch_size * config.grad_accum))
    total = config.max_steps if config.max_steps > 0 else math.ceil(steps_per_epoch * config.epochs)
    args.warmup_steps = int(config.warmup_ratio * total)
    trainer = _make_trainer_class()(
        model=model,
        args=args,
        train_dataset=_Dataset(train_examples),
        eval_dataset=_Dataset(eval_examples) if eval_examples else None,
        data_collator=lambda rows: collate(rows, tokenizer.pad_token_id),
        token_ids=rm.token_ids,
        loss_kind=config.loss,
    )
    if not config.progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # it would print every log line instead
    resume = config.resume and any(Path(config.output_dir).glob("checkpoint-*"))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - start
    final_step = trainer.state.global_step
    evaluated = any("eval_loss" in e and e.get("step") == final_step
                    for e in trainer.state.log_history)
    if eval_examples and not evaluated:
        trainer.evaluate()  # the final model's held-out loss
    path = rm.save(Path(config.output_dir) / "final")
    history = pd.DataFrame(trainer.state.log_history)
    return TrainResult(rm, history, seconds, trainer.tokens_seen, path)
