"""The PRM and the ORM: a causal language model that answers with a label token.

Both reward models are plain causal LMs (any Hugging Face ``...ForCausalLM``). The PRM's
verdict on a step is its next-token distribution at the step's last token, restricted to
the label tokens ``" -" " = " +"`` (bad, neutral, good); the ORM's verdict on a solution
is the same at the solution's last token over ``" -" " +"``. Nothing is added to the
model: training raises the log-likelihood of the right label token, and one forward pass
over a solution reads every step's verdict at once.

Only the positions that carry a label go through the output layer (a few per sequence,
instead of every token times a 49,152-word vocabulary), in training and in scoring.

Solution scores (the paper's Table 4): the PRM's score of a solution is the product over
its steps of P(step is correct), or the minimum; a neutral step counts as correct
(``neutral="positive"``, the paper's best rule) or as wrong (``"negative"``). The ORM's
is P(correct) at the last step (:func:`orm_score`).

A reward model saves like any Hugging Face model (:meth:`RewardModel.save_pretrained`):
one folder, its kind, labels, format and precision in the model's ``config.json`` under
``reward_model``; :meth:`RewardModel.from_pretrained` loads it from that folder or a Hub id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .formatting import ORM_LABELS, PRM_LABELS, FormatConfig, SolutionTokens, label_token_ids

__all__ = [
    "RewardModel",
    "collate",
    "collate_packed",
    "head_logits",
    "label_logits",
    "reward_loss",
    "step_correct_probability",
    "solution_score",
    "orm_score",
    "solution_scores",
    "SCORING_RULES",
]

Kind = Literal["prm", "orm"]

#: The paper's Table 4 rules: (aggregate, neutral handling).
SCORING_RULES: dict[str, tuple[str, str]] = {
    "product, neutral = correct": ("product", "positive"),
    "min, neutral = correct": ("min", "positive"),
    "product, neutral = wrong": ("product", "negative"),
    "min, neutral = wrong": ("min", "negative"),
}


def collate(examples: Sequence[dict], pad_id: int):
    """Pad a batch on the right. Each example is ``{"input_ids", "label_positions",
    "labels"}``; returns tensors ``input_ids`` and ``attention_mask`` [B, T] and
    ``labels`` [B, T] int64 holding the class index at label positions and -100
    elsewhere (never a bool: -100 must not turn into True).

    Prefix-shared examples (:class:`prm_lib.packing.PackedExample` rows: they carry
    ``segment_starts``) go to :func:`collate_packed`."""
    import torch

    if examples and "segment_starts" in examples[0]:
        return collate_packed(examples, pad_id)
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.as_tensor(e["input_ids"])
        mask[i, :n] = 1
        labels[i, torch.as_tensor(e["label_positions"], dtype=torch.long)] = torch.as_tensor(
            e["labels"], dtype=torch.long
        )
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collate_packed(examples: Sequence[dict], pad_id: int):
    """Pad a batch of prefix-shared examples (:func:`prm_lib.packing.session_examples`)
    on the right: ``input_ids``, ``labels`` and ``padding_mask`` (1 = token) as
    :func:`collate`'s ``input_ids``, ``labels`` and ``attention_mask``; ``position_ids``
    [B, T] (padding: 0); ``attention_mask`` the additive float32 tree mask
    [B, 1, T, T] of :func:`prm_lib.packing.tree_attention_mask`, which a Hugging Face
    decoder uses as given (any attention implementation that takes a 4-D mask: eager,
    sdpa)."""
    import torch

    from .packing import tree_attention_mask

    flat = collate([{k: e[k] for k in ("input_ids", "label_positions", "labels")}
                    for e in examples], pad_id)
    width = flat["input_ids"].shape[1]
    positions = torch.zeros_like(flat["input_ids"])
    for i, e in enumerate(examples):
        positions[i, : len(e["position_ids"])] = torch.as_tensor(e["position_ids"])
    return {"input_ids": flat["input_ids"], "attention_mask": tree_attention_mask(examples, width),
            "position_ids": positions, "labels": flat["labels"],
            "padding_mask": flat["attention_mask"]}


def _mask_for(model, attention_mask):
    """A 4-D additive mask in the dtype attention will compute in (bfloat16 under
    autocast, else the weights'): sdpa refuses a float mask of another dtype than the
    queries', and float32's most negative value is -inf in bfloat16."""
    import torch

    if attention_mask is None or attention_mask.ndim != 4 or not attention_mask.is_floating_point():
        return attention_mask
    device = attention_mask.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = next(getattr(model, "module", model).parameters()).dtype
    if dtype == attention_mask.dtype:
        return attention_mask
    blocked = attention_mask < 0
    return torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device
                       ).masked_fill_(blocked, torch.finfo(dtype).min)


def _hidden_at(model, input_ids, attention_mask, where, position_ids=None):
    """Final hidden states at the positions ``where`` (a bool mask [B, T]) -> [n, H].

    ``attention_mask`` is a padding mask [B, T], or a 4-D tree mask [B, 1, T, T] with its
    ``position_ids`` [B, T] (prefix-shared batches, :func:`collate_packed`).

    A model wrapped for data-parallel training (DDP, DeepSpeed, FSDP: it has ``.module``)
    is called through the wrapper's forward, whose output layer runs on one position only,
    and the decoder's output is caught by a hook: DDP averages the gradients of a backward
    only after its own forward ran, and FSDP gathers sharded weights there. A plain model's
    decoder is called directly.
    """
    attention_mask = _mask_for(model, attention_mask)
    extra = {} if position_ids is None else {"position_ids": position_ids}
    inner = getattr(model, "module", None)
    if inner is None:
        decoder = model.get_decoder()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                         **extra).last_hidden_state
        return hidden[where]
    caught = []
    hook = inner.get_decoder().register_forward_hook(
        lambda _module, _args, out: caught.append(out.last_hidden_state))
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=1, **extra)
    finally:
        hook.remove()
    return caught[-1][where]


def head_logits(model, hidden, token_ids=None):
    """The output layer applied to final hidden states [n, H] -> [n, V], or
    [n, len(token_ids)] restricted to ``token_ids`` (only those rows are computed)."""
    head = getattr(model, "module", model).get_output_embeddings()  # DDP: the wrapped model's
    weight = head.weight if token_ids is None else head.weight[token_ids]
    logits = hidden.to(weight.dtype) @ weight.T
    bias = getattr(head, "bias", None)
    if bias is not None:
        logits = logits + (bias if token_ids is None else bias[token_ids])
    return logits


def label_logits(model, input_ids, attention_mask, where, token_ids=None, position_ids=None):
    """Output-layer logits at the positions ``where`` ([B, T] bool) -> [n, V], or
    [n, len(token_ids)] restricted to ``token_ids``. ``attention_mask`` and
    ``position_ids`` as :func:`_hidden_at`'s."""
    hidden = _hidden_at(model, input_ids, attention_mask, where, position_ids)
    return head_logits(model, hidden, token_ids)


def reward_loss(model, batch, token_ids: Sequence[int], loss: str = "full_vocab"):
    """Mean negative log-likelihood of the label tokens, and (n_labels, n_correct).

    ``loss="full_vocab"`` is the paper's objective (the label token's log-probability
    under the whole vocabulary); ``"label_tokens"`` normalises over the label tokens only
    (a plain classifier over them). Accuracy is over the label tokens either way.
    ``batch`` is :func:`collate`'s, or :func:`collate_packed`'s (its ``position_ids`` and
    4-D ``attention_mask`` reach the decoder).
    """
    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    where = labels != -100
    target = labels[where]
    ids = torch.as_tensor(list(token_ids), device=labels.device)
    inputs = (model, batch["input_ids"], batch["attention_mask"], where)
    position_ids = batch.get("position_ids")
    if loss == "full_vocab":
        logits = label_logits(*inputs, position_ids=position_ids)
        nll = F.cross_entropy(logits.float(), ids[target])
        restricted = logits[:, ids]
    elif loss == "label_tokens":
        restricted = label_logits(*inputs, ids, position_ids=position_ids)
        nll = F.cross_entropy(restricted.float(), target)
    else:
        raise ValueError(f"loss must be 'full_vocab' or 'label_tokens', not {loss!r}")
    correct = (restricted.argmax(-1) == target).sum()
    return nll, (int(target.numel()), int(correct))


def step_correct_probability(probs: np.ndarray, neutral: str = "positive") -> np.ndarray:
    """P(step is correct) from PRM probabilities [..., 3] (bad, neutral, good)."""
    probs = np.asarray(probs, dtype=float)
    if neutral == "positive":
        return probs[..., 1] + probs[..., 2]
    if neutral == "negative":
        return probs[..., 2]
    raise ValueError(f"neutral must be 'positive' or 'negative', not {neutral!r}")


def solution_score(probs: np.ndarray, rule: str = "product", neutral: str = "positive") -> float:
    """A solution's PRM score from its steps' probabilities [n_steps, 3].

    ``rule="product"``: probability that every step is correct (the paper's choice);
    ``"min"``: the weakest step. NaN rows (steps cut by the length limit) are ignored;
    a solution with no scored step gets NaN.
    """
    p = step_correct_probability(probs, neutral)
    p = p[~np.isnan(p)]
    if p.size == 0:
        return float("nan")
    if rule == "product":
        return float(np.prod(p))
    if rule == "min":
        return float(np.min(p))
    raise ValueError(f"rule must be 'product' or 'min', not {rule!r}")


def orm_score(probs: np.ndarray) -> float:
    """The ORM's score of a solution from its probabilities [n_steps, 2] (wrong, correct):
    P(correct) at the last step. NaN for a solution with no step, or whose last step was
    cut by the length limit."""
    probs = np.asarray(probs, dtype=float)
    return float(probs[-1, 1]) if len(probs) else float("nan")


def solution_scores(kind: Kind, step_probs: Sequence[np.ndarray], rule: str = "product",
                    neutral: str = "positive") -> np.ndarray:
    """One score per solution from its step probabilities (one array [n_steps, n_labels]
    each): a PRM's :func:`solution_score` under ``rule``/``neutral``, an ORM's
    :func:`orm_score`. NaN for a solution with no scored step. Shape [n_solutions]."""
    if kind == "orm":
        return np.array([orm_score(p) for p in step_probs])
    return np.array([solution_score(p, rule, neutral) for p in step_probs])


@dataclass
class RewardModel:
    """A trained (or untrained) PRM or ORM, ready to score solutions.

    Attributes:
        model: the causal LM.
        tokenizer: its tokenizer.
        kind: ``"prm"`` or ``"orm"``.
        format: how solutions were turned into sequences (same at scoring time).
        labels: the label strings, in class order.
        bf16: score under bfloat16 autocast, as the model was trained (set by
            :func:`prm_lib.training.train_reward_model` and saved with the model).
            1.6-1.8x faster on a CPU with bfloat16 instructions (see
            ``benchmarks/bench_scoring.py``); probabilities move by about 0.005 on average
            from a float32 pass. False: float32, exact.
    """

    model: object
    tokenizer: object
    kind: Kind = "prm"
    format: FormatConfig = field(default_factory=FormatConfig)
    labels: tuple[str, ...] = ()
    bf16: bool = False

    def __post_init__(self):
        if not self.labels:
            self.labels = PRM_LABELS if self.kind == "prm" else ORM_LABELS
        self.token_ids = label_token_ids(self.tokenizer, self.labels)

    def autocast(self):
        """The context scoring runs in: bfloat16 autocast when :attr:`bf16` is set (on
        the model's device), else nothing."""
        import contextlib

        import torch

        if not self.bf16:
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def with_max_length(self, max_length: int) -> "RewardModel":
        """The same model (shared, not copied) reading sequences of up to ``max_length``
        tokens: for evaluation, where a step that ends beyond the training length would
        otherwise get a NaN row. A causal model's verdict at a step does not depend on
        the length limit, only on whether the step fits under it.

        Raises:
            ValueError: ``max_length`` is beyond the model's positions
                (``max_position_embeddings``).
        """
        from dataclasses import replace

        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} is beyond the {limit} positions "
                             f"{type(self.model).__name__} was built for")
        return replace(self, format=replace(self.format, max_length=max_length))

    # ---------------------------------------------------------------- scoring

    def step_probabilities(
        self,
        problems: Sequence[str],
        steps: Sequence[Sequence[str]],
        batch_size: int = 8,
        progress: bool = False,
    ) -> list[np.ndarray]:
        """Label probabilities at every step end: one array [n_steps, n_labels] per
        solution, from one forward pass per solution (batched, longest first).

        Steps beyond ``format.max_length`` tokens get NaN rows; the ORM reads only the
        last row.
        """
        import torch
        from .progress import progress_bar

        tokens = SolutionTokens(self.tokenizer, self.format)
        encoded = [tokens.encode(p, s) for p, s in zip(problems, steps)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        out: list[np.ndarray | None] = [None] * len(encoded)
        limit = self.format.max_length
        device = next(self.model.parameters()).device
        ids_t = torch.as_tensor(self.token_ids, device=device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), self.autocast():
                batches = range(0, len(order), batch_size)
                for start in progress_bar(batches, desc=f"scoring ({self.kind})",
                                          enabled=progress):
                    idx = order[start : start + batch_size]
                    rows = []
                    for i in idx:
                        ids, ends = encoded[i]
                        keep = [e for e in ends if e < limit]
                        rows.append({"input_ids": ids[: limit], "label_positions": keep,
                                     "labels": [0] * len(keep)})
                    batch = collate(rows, self.tokenizer.pad_token_id)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    where = batch["labels"] != -100
                    logits = label_logits(self.model, batch["input_ids"],
                                          batch["attention_mask"], where, ids_t)
                    probs = torch.softmax(logits.float(), -1).cpu().numpy()
                    k = 0
                    for i, row in zip(idx, rows):
                        n_all, n_kept = len(encoded[i][1]), len(row["label_positions"])
                        arr = np.full((n_all, len(self.labels)), np.nan)
                        arr[:n_kept] = probs[k : k + n_kept]
                        out[i] = arr
                        k += n_kept
        finally:
            self.model.train(was_training)
        return out  # type: ignore[return-value]

    def score(
        self,
        problems: str | Sequence[str],
        steps: Sequence[str] | Sequence[Sequence[str]],
        rule: str = "product",
        neutral: str = "positive",
        batch_size: int = 8,
        progress: bool = False,
    ) -> float | np.ndarray:
        """The score of one solution (``problems`` a str, ``steps`` its steps: a float) or
        of each of a batch (lists: an array [n_solutions]): the PRM's
        :func:`solution_score` (see ``rule`` and ``neutral``), or the ORM's
        :func:`orm_score`."""
        if isinstance(problems, str):
            return float(self.score([problems], [steps], rule, neutral, batch_size)[0])
        probs = self.step_probabilities(problems, steps, batch_size, progress)
        return solution_scores(self.kind, probs, rule, neutral)

    def score_fn(self, batch_size: int = 8):
        """A ``score_fn(problems, steps) -> list[[n_steps, 3]]`` for
        :mod:`prm_lib.scoring` (PRM only)."""
        if self.kind != "prm":
            raise ValueError("step-level scoring needs a PRM")

        def fn(problems, steps):
            return self.step_probabilities(problems, steps, batch_size)

        return fn

    # ---------------------------------------------------------------- saving

    def save_pretrained(self, path: str | Path, **kwargs) -> Path:
        """Save model and tokenizer to a folder, the reward-model settings (kind, labels,
        format, bf16) in the model's ``config.json`` under ``reward_model``; ``kwargs`` go
        to the model's ``save_pretrained`` (e.g. ``push_to_hub=True``)."""
        path = Path(path)
        config = self.model.config
        before = getattr(config, "reward_model", None)
        config.reward_model = {"kind": self.kind, "labels": list(self.labels),
                               "format": asdict(self.format), "bf16": self.bf16}
        from .progress import quiet_loading

        try:
            with quiet_loading():  # no "Writing model shards" bar on the page
                self.model.save_pretrained(path, **kwargs)
        finally:  # the model in memory is left as it was (it may serve another wrapper)
            if before is None:
                del config.reward_model
            else:
                config.reward_model = before
        self.tokenizer.save_pretrained(path)
        return path

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, dtype=None, **kwargs) -> "RewardModel":
        """Load a reward model saved with :meth:`save_pretrained`, from a folder or a Hub
        id (through ``AutoModelForCausalLM.from_pretrained``, which gets ``kwargs``), in
        float32 unless ``dtype`` says otherwise. A folder saved by earlier versions (the
        settings in a ``reward_model.json`` beside the model) loads too."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype or torch.float32,
                                                     **kwargs)
        meta = getattr(model.config, "reward_model", None)
        legacy = Path(name_or_path) / "reward_model.json"
        if meta is None and legacy.is_file():
            meta = json.loads(legacy.read_text())
        if meta is None:
            raise ValueError(
                f"{name_or_path} is a language model, not a saved reward model (its config "
                "has no reward_model entry): wrap it as RewardModel(model, tokenizer, kind), "
                "or save one with RewardModel.save_pretrained"
            )
        tok = AutoTokenizer.from_pretrained(name_or_path)
        tok.padding_side = "right"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return cls(model, tok, meta["kind"], FormatConfig(**meta["format"]),
                   tuple(meta["labels"]), bool(meta.get("bf16", False)))
