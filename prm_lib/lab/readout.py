"""Reward models that read a step's verdict from the generator's own token probabilities.

The paper's PRM answers with a label token after each step: at the step's last token the
model must already know whether the step was right. A laboratory model is three layers
deep. To judge ``7 * 8 = 4`` at the ``4`` it would have to redo the fact, compare the
digit written with the digit it expected, and carry that verdict to the step's end, and
measured on held-out training problems (``experiments/lab_recipe.py``) label-token reward
models of this size do not learn that comparison from thousands of labels: among sibling
steps that share their prefix, their verdicts barely separate right from wrong.

The comparison is what a causal LM computes anyway, at the token where a mistake is made:
the probability of the token written, given what precedes it. A
:class:`LikelihoodReadout` reads the verdict there. For step ``k`` with tokens
``t in step k``::

    m_k = min over t of log P_theta(token t | everything before it)
    P(step k is good) = sigmoid(alpha + beta * m_k)

``theta`` starts as the generator's weights (as the paper's reward models start from the
base model) and is fine-tuned, with the two calibration scalars ``alpha`` and ``beta``,
by the same labels as the paper's:

* process supervision: binary cross-entropy of every step up to and including the first
  bad one (neutral steps count as good);
* outcome supervision: one label per sample, on
  ``P(solution is right) = product over its steps of P(step k is good)``, the same
  number the PRM's product rule ranks by. Outcome labels say *that* a solution is wrong,
  process labels *where*: the credit-assignment question the paper asks, with everything
  else held equal.

Untrained (``theta`` = the generator), the readout ranks exactly as the generator's
confidence does. Fine-tuning moves probability away from the tokens the labels mark as
wrong, which is how a reward model can come to reject errors the generator makes
confidently (the laboratory's misconceptions).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .generator import PROMPT

__all__ = ["LikelihoodReadout", "train_readout", "CALIBRATION_LR"]

#: Learning rate of the two calibration scalars (the LM's own is the laboratory's
#: ``rm.learning_rate``): they move on a scale of units, the weights on one of 1e-4.
CALIBRATION_LR = 1e-2
_READOUT_FILE = "readout.json"


def _encode(tokenizer, problem: str, steps: Sequence[str], max_length: int):
    """Token ids (prompt, steps joined by newlines) and the step index of every token
    (-1: prompt, separator); cut at ``max_length`` tokens (a step cut off entirely has
    no token and reads as certain)."""
    nl = tokenizer("\n", add_special_tokens=False)["input_ids"]
    ids = list(tokenizer(PROMPT.format(problem=problem), add_special_tokens=False)["input_ids"])
    owner = [-1] * len(ids)
    for k, step in enumerate(steps):
        if k:
            ids += nl
            owner += [-1] * len(nl)
        piece = tokenizer(step, add_special_tokens=False)["input_ids"]
        ids += piece
        owner += [k] * len(piece)
    return ids[:max_length], owner[:max_length]


#: Solutions a batch when a laboratory model reads a pool (one thread): a test problem's
#: whole pool, which shares one prompt (:meth:`LikelihoodReadout._shared_prompt_logits`).
SCORING_BATCH_SIZE = 32


class LikelihoodReadout:
    """A laboratory reward model whose step verdicts are read from token probabilities
    (see the module's docstring). Offers what the laboratory asks of a
    :class:`~prm_lib.reward_model.RewardModel`: ``kind``, ``labels``,
    :meth:`step_probabilities`, :meth:`save_pretrained`/:meth:`from_pretrained`.

    Attributes:
        model: the causal LM (a copy of the generator's weights, fine-tuned).
        tokenizer: the laboratory's tokenizer.
        kind: ``"prm"`` (process labels) or ``"orm"`` (one label per solution).
        alpha, beta: the calibration (a ``torch`` parameter each).
        max_length: longest sequence read, in tokens.
    """

    def __init__(self, model, tokenizer, kind: str = "prm", alpha: float = 3.0,
                 beta: float = 1.0, max_length: int = 192):
        import torch

        from ..formatting import ORM_LABELS, PRM_LABELS

        if kind not in ("prm", "orm"):
            raise ValueError(f"kind must be 'prm' or 'orm', not {kind!r}")
        self.model, self.tokenizer, self.kind, self.max_length = model, tokenizer, kind, max_length
        self.alpha = torch.nn.Parameter(torch.tensor(float(alpha)))
        self.beta = torch.nn.Parameter(torch.tensor(float(beta)))
        self.labels = PRM_LABELS if kind == "prm" else ORM_LABELS

    def step_logits(self, encoded: Sequence[tuple[list[int], list[int]]],
                    prompt_length: int = 0):
        """``alpha + beta * m_k`` for every step of a batch of encoded solutions
        (:func:`_encode`) -> a tensor [B, K] (K: most steps in the batch; NaN past a
        row's last step), differentiable.

        ``prompt_length``: when every solution of the batch starts with the same first
        ``prompt_length`` tokens (samples of one problem), those are read once and their
        cache is shared by every row (:meth:`_shared_prompt_logits`; for reading, not
        training).
        """
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids, _ in encoded)
        n_steps = [max(owner, default=-1) + 1 for _, owner in encoded]
        k_max = max(max(n_steps), 1)
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        owner = torch.full((len(encoded), width), -1, dtype=torch.long)
        for r, (seq, own) in enumerate(encoded):
            ids[r, : len(seq)] = torch.as_tensor(seq)
            owner[r, : len(own)] = torch.as_tensor(own)
        lengths = torch.as_tensor([len(seq) for seq, _ in encoded])
        mask = (torch.arange(width)[None] < lengths[:, None]).long()
        if 0 < prompt_length < width:
            logits = self._shared_prompt_logits(ids, mask, prompt_length)
        else:
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        logp = logits.float().log_softmax(-1)
        token_logp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]  # P(token j+1)
        step = owner[:, 1:]
        rows = torch.arange(len(encoded))[:, None].expand_as(step)
        flat = (rows * k_max + step)[step >= 0]
        mins = torch.zeros(len(encoded) * k_max).scatter_reduce(
            0, flat, token_logp[step >= 0], "amin", include_self=False)
        z = self.alpha + self.beta * mins.view(len(encoded), k_max)
        present = torch.arange(k_max)[None] < torch.as_tensor(n_steps)[:, None]
        return torch.where(present, z, torch.full_like(z, float("nan")))

    def _shared_prompt_logits(self, ids, mask, prompt_length: int):
        """The model's logits for ``ids`` [B, W] whose rows share their first
        ``prompt_length`` tokens: the prompt is run once, its key/value cache repeated
        for every row, and only the rest of each row is run on it. The same logits as one
        pass over ``ids`` up to float rounding; a laboratory sample's prompt is about a
        third of its tokens, and a pool is read 1.3 times as fast
        (``benchmarks/bench_lab_build.py``)."""
        import torch

        from ..scoring import _cache_kwarg, _returned_cache

        if not bool((ids[:, :prompt_length] == ids[:1, :prompt_length]).all()):
            raise ValueError(f"the rows do not share their first {prompt_length} tokens")
        first = self.model(input_ids=ids[:1, :prompt_length], use_cache=True)
        cache = _returned_cache(first)
        cache.batch_repeat_interleave(len(ids))
        rest = self.model(input_ids=ids[:, prompt_length:], attention_mask=mask,
                          use_cache=False, **{_cache_kwarg(self.model): cache}).logits
        return torch.cat([first.logits.expand(len(ids), -1, -1), rest], 1)

    def step_probabilities(self, problems: Sequence[str], steps: Sequence[Sequence[str]],
                           batch_size: int = SCORING_BATCH_SIZE) -> list[np.ndarray]:
        """Per solution, one row per step: a PRM's label probabilities [n, 3] over
        (bad, neutral, good), neutral never predicted; an ORM's [n, 2] (wrong, right) for
        the solution up to and including that step (the last row is its verdict). A step
        past the length limit (``max_length`` tokens) gets NaN."""
        import torch

        if len(problems) != len(steps):
            raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
        enc = [_encode(self.tokenizer, p, s, self.max_length) for p, s in zip(problems, steps)]
        out: list[np.ndarray] = [np.zeros((0, 3 if self.kind == "prm" else 2))] * len(enc)
        self.model.eval()
        with torch.inference_mode():
            for chunk, prompt_length in self._batches(problems, enc, batch_size):
                z = self.step_logits([enc[i] for i in chunk], prompt_length).numpy()
                for r, i in enumerate(chunk):
                    # a step the length limit cut off entirely has no verdict (NaN)
                    good = np.full(len(steps[i]), np.nan)
                    read = min(len(steps[i]), z.shape[1])
                    good[:read] = 1.0 / (1.0 + np.exp(-z[r, :read]))
                    if self.kind == "prm":
                        out[i] = np.stack([1 - good, np.zeros_like(good), good], 1)
                    else:
                        right = np.cumprod(good)
                        out[i] = np.stack([1 - right, right], 1)
        return out

    def _batches(self, problems: Sequence[str], enc, batch_size: int):
        """``(indices, prompt_length)`` batches for reading ``enc``: the samples of a
        problem with at least a quarter of a batch of them together, sharing their
        prompt (:meth:`_shared_prompt_logits`); the others in batches of similar length
        (less padding), ``prompt_length`` 0. Answers are put back in input order by the
        caller."""
        by_problem: dict[str, list[int]] = {}
        for i, p in enumerate(problems):
            by_problem.setdefault(p, []).append(i)
        batches, rest = [], []
        for problem, idx in by_problem.items():
            if len(idx) < max(2, batch_size // 4):
                rest += idx
                continue
            # the prompt is the run of tokens before the first step's (_encode's owners)
            owner = enc[idx[0]][1]
            prompt_length = next((j for j, o in enumerate(owner) if o >= 0), len(owner))
            idx.sort(key=lambda i: len(enc[i][0]))
            batches += [(idx[s: s + batch_size], prompt_length)
                        for s in range(0, len(idx), batch_size)]
        rest.sort(key=lambda i: len(enc[i][0]))
        batches += [(rest[s: s + batch_size], 0) for s in range(0, len(rest), batch_size)]
        return batches

    def score(self, problems, steps, rule: str = "product", neutral: str = "positive",
              batch_size: int = SCORING_BATCH_SIZE):
        """As :meth:`prm_lib.reward_model.RewardModel.score`: one solution (a str and its
        steps) gives a float, a batch an array; a PRM's :func:`solution_score` under
        ``rule``, an ORM's P(right)."""
        from ..reward_model import solution_scores

        if isinstance(problems, str):
            return float(self.score([problems], [steps], rule, neutral, batch_size)[0])
        return solution_scores(self.kind, self.step_probabilities(problems, steps, batch_size),
                               rule, neutral)

    def save_pretrained(self, path: str | Path) -> Path:
        from ..progress import quiet_loading

        path = Path(path)
        with quiet_loading():  # no "Writing model shards" bar per run
            self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / _READOUT_FILE).write_text(json.dumps(
            {"kind": self.kind, "alpha": self.alpha.item(), "beta": self.beta.item(),
             "max_length": self.max_length}, indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "LikelihoodReadout":
        from transformers import AutoTokenizer, LlamaForCausalLM

        from ..progress import quiet_loading

        path = Path(path)
        if not (path / _READOUT_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no {_READOUT_FILE}: not a saved "
                                    "LikelihoodReadout (train one with train_readout)")
        meta = json.loads((path / _READOUT_FILE).read_text())
        with quiet_loading():
            model = LlamaForCausalLM.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, meta["kind"], meta["alpha"], meta["beta"],
                   meta["max_length"])


def _loss(z, targets, kind: str):
    """Mean over solutions of the binary cross-entropy: a PRM's summed over the labeled
    steps (``targets[r]``: 1/0 per step up to the first bad one), an ORM's on the product
    of the step probabilities (``targets[r]``: one 1/0)."""
    import torch
    import torch.nn.functional as F

    losses = []
    for r, y in enumerate(targets):
        if kind == "prm":
            y = torch.as_tensor(y, dtype=torch.float32)
            losses.append(F.binary_cross_entropy_with_logits(z[r, : len(y)], y, reduction="sum"))
        else:
            zr = z[r][~torch.isnan(z[r])]
            log_right = F.logsigmoid(zr).sum()
            # log(1 - P(right)), stable when P(right) is close to 1
            log_wrong = torch.log(-torch.expm1(log_right.clamp(max=-1e-6)))
            losses.append(-(log_right if y else log_wrong))
    return torch.stack(losses).mean()


def _length_buckets(rng, lengths: np.ndarray, batch_size: int, window: int = 8) -> list[list[int]]:
    """One epoch of batches, in random order: a random permutation cut into windows of
    ``window`` batches, each window sorted by length before it is cut into batches (less
    padding, with batches still drawn at random)."""
    perm = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(perm), batch_size * window):
        chunk = perm[start: start + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i: i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_readout(model, tokenizer, problems: Sequence[str], steps: Sequence[Sequence[str]],
                  targets: Sequence, kind: str, *, max_steps: int, learning_rate: float,
                  batch_size: int = 32, warmup_ratio: float = 0.05, seed: int = 0,
                  max_length: int = 192, logging_steps: int = 10,
                  progress: bool = False) -> tuple[LikelihoodReadout, pd.DataFrame]:
    """Fine-tune ``model`` (the generator's weights) into a :class:`LikelihoodReadout`.

    Args:
        problems, steps: the training solutions.
        targets: per solution, a PRM's list of 1/0 (step good or neutral / bad) up to
            and including its first bad step; an ORM's one 1/0.
        kind: ``"prm"`` or ``"orm"``.
        max_steps, learning_rate, batch_size, warmup_ratio: AdamW on the LM's weights
            (linear warmup, cosine decay, gradients clipped at norm 1), batches drawn
            without replacement epoch by epoch, of samples of similar length; the
            calibration at
            :data:`CALIBRATION_LR`.
        seed: draws the batches (set ``torch``'s seed yourself for anything else).

    Returns:
        The readout (in eval mode) and its history (``step``, ``loss``: mean over the
        last ``logging_steps`` steps, ``learning_rate``, ``seconds``).
    """
    import torch

    from ..progress import progress_bar

    if not len(problems):
        raise ValueError("no training solutions")
    if not len(problems) == len(steps) == len(targets):
        raise ValueError(f"{len(problems)} problems, {len(steps)} step lists and "
                         f"{len(targets)} targets: one of each per solution")
    rm = LikelihoodReadout(model, tokenizer, kind, max_length=max_length)
    enc = [_encode(tokenizer, p, s, max_length) for p, s in zip(problems, steps)]
    opt = torch.optim.AdamW([
        {"params": list(model.parameters()), "lr": learning_rate, "weight_decay": 0.0},
        {"params": [rm.alpha, rm.beta], "lr": CALIBRATION_LR, "weight_decay": 0.0}])
    warmup = max(1, math.ceil(warmup_ratio * max_steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup)
                                                 * 0.5 * (1 + math.cos(math.pi * s / max_steps)))
    rng = np.random.default_rng(seed)
    lengths = np.array([len(ids) for ids, _ in enc])
    order: list[list[int]] = []
    history, window, start = [], [], time.perf_counter()
    model.train()
    for step in progress_bar(range(max_steps), desc=f"{kind} readout", enabled=progress):
        if not order:
            order = _length_buckets(rng, lengths, batch_size)
        batch = order.pop()
        loss = _loss(rm.step_logits([enc[i] for i in batch]), [targets[i] for i in batch], kind)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        window.append(loss.item())
        if (step + 1) % logging_steps == 0 or step + 1 == max_steps:
            history.append({"step": step + 1, "loss": float(np.mean(window)),
                            "learning_rate": opt.param_groups[0]["lr"],
                            "seconds": time.perf_counter() - start})
            window = []
    model.eval()
    return rm, pd.DataFrame(history)
