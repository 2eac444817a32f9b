"""Score many step items at once, computing each shared prefix only once.

Evaluating a PRM on phase-1 PRM800K means scoring every rated candidate step: each
trajectory step, and each alternative as ``trajectory prefix + alternative``. The
alternatives of a solution share long prefixes with its trajectory, so one forward pass
per sequence (:func:`prm_lib.step_eval.score_items` with
:meth:`RewardModel.score_fn <prm_lib.reward_model.RewardModel.score_fn>`) computes the
same prefix again for every alternative.

A causal PRM's verdict on a step depends only on the tokens up to it, so the work can be
shared:

1. **Trunks.** The longest sequence of a group (same problem, one prefix chain; in
   phase 1 the trajectory, or the trajectory plus one stop-position alternative) runs
   once with the key/value cache on; every step's verdict is read from that pass.
2. **Branches.** A sequence that differs from a trunk only in its last step reuses the
   trunk's cache up to the shared steps (copied, row by row, so the trunk's stays intact)
   and runs only its own last step: ``"\\n" + step`` tokens, with position ids that
   continue after the prefix and an attention mask over the real prefix plus its own
   tokens. Branches of many prefixes go through the model together.

:func:`score_items_shared_prefix` returns the same numbers as the per-sequence path
(up to float rounding, ~1e-6 in fp32), including NaN rows for steps ending beyond
``format.max_length``, as :meth:`RewardModel.step_probabilities` gives them.

Works with any Hugging Face causal LM whose cache is a plain
:class:`transformers.DynamicCache` with full attention in every layer (tested on Llama,
which SmolLM2 is, Qwen2 and GPT-2; not for sliding-window attention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .formatting import _Tokens
from .reward_model import head_logits
from .step_eval import ScoringSequence, StepItem, scoring_sequences

__all__ = ["Branch", "SharedPrefixPlan", "shared_prefix_plan", "score_items_shared_prefix"]


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Branch:
    """A sequence scored from a trunk's cache.

    Attributes:
        sequence: index of the sequence in :attr:`SharedPrefixPlan.sequences`.
        trunk: index of the trunk sequence whose cache it reuses.
        shared_steps: how many leading steps it shares with the trunk; it runs only its
            last step (its only step not in the trunk).
    """

    sequence: int
    trunk: int
    shared_steps: int


@dataclass(frozen=True)
class SharedPrefixPlan:
    """Which sequences run whole (trunks) and which run only their last step (branches).

    Attributes:
        sequences: the distinct maximal sequences with the items each step answers for
            (:func:`prm_lib.step_eval.scoring_sequences`).
        trunks: indices of the sequences that get a full forward pass.
        branches: every other sequence, each attached to one trunk.
    """

    sequences: list[ScoringSequence]
    trunks: list[int]
    branches: list[Branch]


def _common_steps(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def shared_prefix_plan(items: Sequence[StepItem]) -> SharedPrefixPlan:
    """Group the items' sequences into trunks and one-step branches.

    Within a problem, sequences are taken longest first. A sequence whose steps, all but
    the last, are the first steps of a trunk already chosen becomes a branch of the trunk
    it shares most with; any other sequence becomes a trunk. In phase 1 that makes each
    trajectory a trunk and each alternative a branch.
    """
    sequences = scoring_sequences(items)
    by_problem: dict[str, list[int]] = {}
    for i, s in enumerate(sequences):
        by_problem.setdefault(s.problem, []).append(i)
    trunks: list[int] = []
    branches: list[Branch] = []
    for idxs in by_problem.values():
        chosen: list[int] = []  # this problem's trunks
        for i in sorted(idxs, key=lambda j: -len(sequences[j].steps)):
            steps = sequences[i].steps
            best = max(chosen, key=lambda t: _common_steps(steps, sequences[t].steps),
                       default=None)
            shared = -1 if best is None else _common_steps(steps, sequences[best].steps)
            if shared == len(steps) - 1:
                branches.append(Branch(i, best, shared))
            else:
                chosen.append(i)
        trunks.extend(chosen)
    return SharedPrefixPlan(sequences, trunks, branches)


# --------------------------------------------------------------------------- the model


def _head_probs(model, hidden, token_ids: Sequence[int]) -> np.ndarray:
    """Label probabilities from final hidden states [n, H] -> [n, n_labels] (float)."""
    import torch

    ids = torch.as_tensor(list(token_ids), device=hidden.device)
    return torch.softmax(head_logits(model, hidden, ids).float(), -1).cpu().numpy()


def _rows_of_cache(cache, rows, length: int):
    """A new ``DynamicCache`` holding ``cache[rows, :, :length]`` in every layer.

    Args:
        cache: the trunk batch's cache, keys/values [B, heads, T, head_dim] per layer.
        rows: int tensor [R] of batch rows (repeats allowed: one per branch).
        length: prefix tokens to keep (the longest prefix among the rows; shorter ones
            are masked).

    Indexing copies, so the trunk cache is left as it was (``crop`` would mutate it).
    """
    from transformers import DynamicCache

    layers = []
    for layer in cache.layers:
        if getattr(layer, "is_sliding", False):
            raise NotImplementedError("shared-prefix scoring needs full-attention cache "
                                      "layers; this model has sliding-window layers")
        layers.append((layer.keys[rows, :, :length], layer.values[rows, :, :length]))
    return DynamicCache(layers)


def _run_trunks(decoder, ids_list: list[list[int]], pad_id: int, device):
    """One pass over right-padded trunks -> (hidden [B, T, H], cache)."""
    import torch
    from transformers import DynamicCache

    width = max(len(ids) for ids in ids_list)
    ids = torch.full((len(ids_list), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids_list), width), dtype=torch.long)
    for r, row in enumerate(ids_list):
        ids[r, : len(row)] = torch.as_tensor(row)
        mask[r, : len(row)] = 1
    out = decoder(input_ids=ids.to(device), attention_mask=mask.to(device),
                  past_key_values=DynamicCache(), use_cache=True)
    return out.last_hidden_state, out.past_key_values


def _run_branches(decoder, cache, rows: list[tuple[int, int, list[int]]], pad_id: int, device):
    """Run branch tails on top of their trunks' cached prefixes.

    Args:
        cache: the trunk batch's cache.
        rows: ``(trunk batch row, prefix length L, tail token ids)`` per branch.

    Returns:
        hidden states of the tails [R, A, H], A = longest tail; tail token ``j`` of row
        ``r`` sits at position ``L_r + j``.
    """
    import torch

    width = max(length for _, length, _ in rows)
    tail = max(len(t) for _, _, t in rows)
    ids = torch.full((len(rows), tail), pad_id, dtype=torch.long)
    # Mask over [cached prefix (width) | tail]: each row sees its own L prefix tokens
    # (the trunk's later tokens and padding beyond L are hidden) and its real tail.
    mask = torch.zeros((len(rows), width + tail), dtype=torch.long)
    for r, (_, length, t) in enumerate(rows):
        ids[r, : len(t)] = torch.as_tensor(t)
        mask[r, :length] = 1
        mask[r, width : width + len(t)] = 1
    starts = torch.as_tensor([length for _, length, _ in rows])
    positions = starts[:, None] + torch.arange(tail)[None, :]
    past = _rows_of_cache(cache, torch.as_tensor([b for b, _, _ in rows], device=device), width)
    out = decoder(input_ids=ids.to(device), attention_mask=mask.to(device),
                  position_ids=positions.to(device), past_key_values=past, use_cache=True)
    return out.last_hidden_state


# --------------------------------------------------------------------------- scoring


def _prefix_length(tokens: _Tokens, problem: str, ends: list[int], shared_steps: int) -> int:
    """Tokens of the prompt and the first ``shared_steps`` steps (no trailing newline)."""
    if shared_steps:
        return ends[shared_steps - 1] + 1
    return len(tokens(tokens.config.prompt_template.format(problem=problem)))


def score_items_shared_prefix(
    reward_model,
    items: Sequence[StepItem],
    batch_size: int = 8,
    progress: bool = True,
    branch_batch_size: int | None = None,
) -> np.ndarray:
    """P(-1), P(0), P(+1) of every item, float array ``[n_items, 3]``, sharing prefixes.

    The same numbers as ``step_eval.score_items(items, reward_model.score_fn())`` (up to
    float rounding), from one cached pass per trunk and a short pass per branch (see the
    module docstring and :func:`shared_prefix_plan`). Items whose step ends at or beyond
    ``reward_model.format.max_length`` tokens get NaN rows, as in
    :meth:`RewardModel.step_probabilities`; ``score_items`` would refuse them.

    Args:
        reward_model: a PRM (:class:`prm_lib.reward_model.RewardModel`).
        items: from :func:`prm_lib.step_eval.step_items`.
        batch_size: trunks per forward pass (longest first).
        progress: show a progress bar over trunk batches.
        branch_batch_size: branches per forward pass (default ``2 * batch_size``); each
            holds a copy of its prefix's cache, so this bounds the memory.
    """
    if reward_model.kind != "prm":
        raise ValueError("step-level scoring needs a PRM")
    plan = shared_prefix_plan(items)
    seq_probs = _score_plan(reward_model, plan, batch_size,
                            branch_batch_size or 2 * batch_size, progress)
    out = np.full((len(items), len(reward_model.labels)), np.nan)
    for seq, probs in zip(plan.sequences, seq_probs):
        for k, item_indices in enumerate(seq.item_indices_per_step):
            out[list(item_indices)] = probs[k]
    return out


def _score_plan(rm, plan: SharedPrefixPlan, batch_size: int, branch_batch_size: int,
                progress: bool) -> list[np.ndarray]:
    """Label probabilities [n_steps, n_labels] for every sequence of the plan (NaN rows
    for steps beyond ``max_length``)."""
    import torch
    from tqdm.auto import tqdm

    tokens = _Tokens(rm.tokenizer, rm.format)
    encoded = [tokens.encode(s.problem, s.steps) for s in plan.sequences]
    probs = [np.full((len(s.steps), len(rm.labels)), np.nan) for s in plan.sequences]
    branches_of: dict[int, list[Branch]] = {}
    for b in plan.branches:
        branches_of.setdefault(b.trunk, []).append(b)
    order = sorted(plan.trunks, key=lambda t: -len(encoded[t][0]))  # less padding
    was_training = rm.model.training
    rm.model.eval()
    try:
        with torch.inference_mode(), rm.autocast():
            batches = range(0, len(order), batch_size)
            for start in tqdm(batches, desc="scoring (shared prefix)", disable=not progress):
                trunks = order[start : start + batch_size]
                cache = _score_trunks(rm, trunks, encoded, probs)
                rows, targets = _branch_rows(tokens, plan.sequences, encoded, trunks,
                                             branches_of, probs)
                for b0 in range(0, len(rows), branch_batch_size):
                    chunk = slice(b0, b0 + branch_batch_size)
                    for seq_index, row in zip(targets[chunk],
                                              _score_branches(rm, cache, rows[chunk])):
                        probs[seq_index][-1] = row
    finally:
        rm.model.train(was_training)
    return probs


def _score_trunks(rm, trunks: list[int], encoded, probs: list[np.ndarray]):
    """Run these trunk sequences (cut at ``max_length``), write their steps' verdicts
    into ``probs`` and return the cache of the pass (rows in the order of ``trunks``)."""
    limit = rm.format.max_length
    device = next(rm.model.parameters()).device
    hidden, cache = _run_trunks(rm.model.get_decoder(), [encoded[t][0][:limit] for t in trunks],
                                rm.tokenizer.pad_token_id, device)
    for r, t in enumerate(trunks):
        keep = [e for e in encoded[t][1] if e < limit]
        if keep:
            probs[t][: len(keep)] = _head_probs(rm.model, hidden[r, keep], rm.token_ids)
    return cache


def _score_branches(rm, cache, rows: list[tuple[int, int, list[int]]]) -> np.ndarray:
    """Verdicts at the last token of each branch row -> [R, n_labels]."""
    import torch

    device = next(rm.model.parameters()).device
    hidden = _run_branches(rm.model.get_decoder(), cache, rows, rm.tokenizer.pad_token_id,
                           device)
    last = torch.as_tensor([len(tail) - 1 for _, _, tail in rows], device=device)
    return _head_probs(rm.model, hidden[torch.arange(len(rows), device=device), last],
                       rm.token_ids)


def _branch_rows(tokens: _Tokens, seqs, encoded, trunks: list[int], branches_of,
                 probs: list[np.ndarray]):
    """The branches of these trunks as ``(trunk batch row, L, tail ids)`` rows, and the
    sequence each row scores. Shared steps are copied from the trunk's verdicts; a branch
    whose last step ends at or beyond ``max_length`` gets no row (its last row stays NaN)."""
    limit = tokens.config.max_length
    rows, targets = [], []
    for r, t in enumerate(trunks):
        for b in branches_of.get(t, ()):
            ids, ends = encoded[b.sequence]
            probs[b.sequence][: b.shared_steps] = probs[t][: b.shared_steps]
            length = _prefix_length(tokens, seqs[b.sequence].problem, ends, b.shared_steps)
            if ids[:length] != encoded[t][0][:length]:  # by construction of the encoding
                raise AssertionError("a branch's prefix tokens differ from its trunk's")
            if ends[-1] >= limit:
                continue
            rows.append((r, length, ids[length : ends[-1] + 1]))
            targets.append(b.sequence)
    # Similar tail lengths in a pass waste less compute on padding (the tails' MLPs cost
    # far more than attending to the masked part of a longer prefix).
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][2]))
    return [rows[i] for i in order], [targets[i] for i in order]
