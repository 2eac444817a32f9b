"""Scoring: a PRM's probabilities for step items, sharing every pass a causal PRM allows.

The **score** stage of load -> format -> train -> score -> evaluate -> plot: it takes the
data of :mod:`prm_lib.items` (step items, first-error sets) and returns probabilities,
which :mod:`prm_lib.metrics` and :mod:`prm_lib.baselines` read.

A PRM enters as a **score function**::

    score_fn(problems: list[str], steps: list[list[str]]) -> list[np.ndarray]

which returns, for each solution, an array ``[n_steps, 3]`` of (P(negative), P(neutral),
P(positive)) for every step, the columns in the order of :data:`prm_lib.schema.RATINGS`
(-1, 0, +1). The paper's PRM gives all of them in one forward pass.

**Causal scoring.** Everything here assumes the scorer is causal: the probabilities of
step ``k`` depend only on the problem and steps ``0..k``. That is how the paper's PRM
reads a solution, and it is what lets one pass over a trajectory score all its steps. It
also lets any sequence that is a prefix of another share that one's pass
(:func:`prm_lib.items.scoring_sequences`).

The chapter's walk, top to bottom::

    items = step_items(test)                       # one item per rated candidate step
    probs = score_items(items, score_fn)           # [n_items, 3]
    step_auc(item_ratings(items), probs[:, 0], groups=item_problems(items))

    fe = first_error_sets(test)                    # ProcessBench-style solutions
    step_probs = score_steps(fe.problems, fe.steps, score_fn)
    t = best_threshold(train_fe.first_errors, train_step_probs)   # tuned on train only
    first_error_metrics(fe.first_errors, predict_first_error(step_probs, t))

The baselines (:func:`~prm_lib.baselines.constant_baseline`,
:func:`~prm_lib.baselines.position_prior_baseline`) are score functions too, so they run
through exactly the same code; an untrained PRM is one more
``score_items(items, untrained_prm_score_fn)``.

**Sharing prefixes inside the model.** Evaluating a PRM on phase-1 PRM800K means scoring
every rated candidate step: each trajectory step, and each alternative as ``trajectory
prefix + alternative``. The alternatives of a solution share long prefixes with its
trajectory, so one forward pass per sequence (:func:`score_items` with
:meth:`RewardModel.score_fn <prm_lib.reward_model.RewardModel.score_fn>`) computes the
same prefix again for every alternative. :func:`score_items_shared_prefix` shares it:

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

**Sharing layers between models.** A PRM trained with ``train_top_layers=n`` keeps the
bottom layers of the model it started from, so chapter 2's two models (the trained PRM
and the untrained baseline) compute the same hidden states up to layer ``L - n``.
:func:`score_items_shared_layers` scores several such models at once: the first model
runs whole, with a hook keeping the output of the last layer they share; every other
model runs only its own top layers on that output, with a key/value cache of its own for
those layers (the branches read their prefix from the first model's cache below and
their own above). On SmolLM2 with the top 10 of 30 layers trained, two models take 1.4x
less time than one after another (``benchmarks/bench_scoring.py``, part (d)).

Works with any Hugging Face causal LM whose cache is a plain
:class:`transformers.DynamicCache` with full attention in every layer (tested on Llama,
which SmolLM2 is, Qwen2 and GPT-2; not for sliding-window attention).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .formatting import SolutionTokens
from .items import (FirstErrorSet, ScoringSequence, StepItem, as_item_probs, plan_sequences,
                    scoring_sequences)
from .reward_model import head_logits

__all__ = [
    "ScoreFn",
    "score_steps",
    "score_items",
    "reuse_scores",
    "first_error_step_probs",
    "first_error_items",
    "Branch",
    "SharedPrefixPlan",
    "shared_prefix_plan",
    "score_items_shared_prefix",
    "score_items_shared_layers",
    "step_probabilities_shared",
    "shared_layers",
    "item_token_ends",
]

#: ``score_fn(problems, steps) -> [array [n_steps, 3] of P(-1), P(0), P(+1)] per solution``.
ScoreFn = Callable[[list[str], list[list[str]]], list[np.ndarray]]


# --------------------------------------------------------------------------- score functions


def _check_step_scores(arr, n_steps: int, where: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=float)
    if arr.shape != (n_steps, 3):
        raise ValueError(
            f"score_fn returned shape {arr.shape} for {where} with {n_steps} steps; expected "
            f"({n_steps}, 3) = P(-1), P(0), P(+1) per step (a 2-class scorer can return "
            "[P(bad), 0, P(good)])"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
        raise ValueError(f"score_fn returned values outside [0, 1] or NaN for {where}")
    # Loose: half-precision softmax outputs sum to 1 only to about 1e-2.
    if not np.allclose(arr.sum(axis=1), 1.0, atol=2e-2):
        raise ValueError(f"score_fn's rows for {where} do not sum to 1 (probabilities of "
                         "the three ratings)")
    return arr


def score_steps(
    problems: Sequence[str],
    steps: Sequence[Sequence[str]],
    score_fn: ScoreFn,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Per-step probabilities for many solutions, sharing forward passes where possible.

    Args:
        problems: one problem text per solution.
        steps: one list of step texts per solution.
        score_fn: the scorer (module docstring); it is called with at most
            ``batch_size`` solutions at a time.
        batch_size: solutions per ``score_fn`` call.

    Returns:
        one float array ``[len(steps[i]), 3]`` of P(-1), P(0), P(+1) per solution. Each
        distinct solution is scored once, and a solution that is a prefix of another
        (same problem) is read from the longer one's pass (causal scorer assumed).

    Raises:
        ValueError: ``score_fn`` returned the wrong number of arrays, a wrong shape, or
            values that are not probabilities.
    """
    if len(problems) != len(steps):
        raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    steps = [tuple(s) for s in steps]
    seqs, where = plan_sequences(list(problems), steps)
    # Similar lengths in a batch waste less padding in the scorer.
    order = sorted(range(len(seqs)), key=lambda j: -sum(len(t) for t in seqs[j][1]))
    scored: list[np.ndarray | None] = [None] * len(seqs)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        out = score_fn([seqs[j][0] for j in batch], [list(seqs[j][1]) for j in batch])
        if len(out) != len(batch):
            raise ValueError(f"score_fn returned {len(out)} arrays for {len(batch)} solutions")
        for j, arr in zip(batch, out):
            scored[j] = _check_step_scores(arr, len(seqs[j][1]), f"sequence {j}")
    return [
        np.zeros((0, 3)) if w is None else scored[w[0]][: w[1] + 1].copy() for w in where
    ]


def score_items(items: Sequence[StepItem], score_fn: ScoreFn, batch_size: int = 16) -> np.ndarray:
    """P(-1), P(0), P(+1) of every item, float array ``[n_items, 3]``.

    Each item is read at the last step of ``item.steps``; passes are shared as in
    :func:`~prm_lib.items.scoring_sequences`. ``score_items(items, prm_score_fn)`` is all
    an untrained or trained PRM needs to be evaluated.
    """
    per_item = score_steps([it.problem for it in items], [it.steps for it in items],
                           score_fn, batch_size)
    return np.array([p[-1] for p in per_item], dtype=float).reshape(len(items), 3)


def reuse_scores(
    known_items: Sequence[StepItem], known_scores: np.ndarray,
    score_items_fn: Callable[[list[StepItem]], np.ndarray],
) -> Callable[[list[StepItem]], np.ndarray]:
    """A ``score_items_fn`` that looks items up among ones already scored and scores only
    the others with ``score_items_fn``.

    An item is found when its problem, prefix and step text are those of a known item
    (its rating and role do not matter: a causal PRM's verdict depends on the text
    only), e.g. to evaluate first-error detection (:func:`first_error_step_probs`) with
    the scores the step-level AUC already computed, instead of running the model again.

    Args:
        known_items, known_scores: items and their ``[n, 3]`` probabilities (NaN rows,
            for steps beyond the model's length limit, are reused as they are).
        score_items_fn: ``items -> [n, 3]`` for the items not found.
    """
    known_scores = as_item_probs(known_scores, len(known_items))
    index = {(it.problem, tuple(it.prefix), it.text): i for i, it in enumerate(known_items)}

    def fn(items: list[StepItem]) -> np.ndarray:
        out = np.full((len(items), 3), np.nan)
        missing = []
        for j, it in enumerate(items):
            i = index.get((it.problem, tuple(it.prefix), it.text))
            if i is None:
                missing.append(j)
            else:
                out[j] = known_scores[i]
        if missing:
            out[missing] = as_item_probs(score_items_fn([items[j] for j in missing]),
                                        len(missing))
        return out

    return fn



def first_error_items(fe: FirstErrorSet) -> list[StepItem]:
    """The items a first-error evaluation reads: one per step of each solution of ``fe``
    (its prefix, then the step), solution by solution. Their ``rating`` is a placeholder
    (0) and their ``role`` ``"first-error"``: only their probabilities are used.

    Scored together with a set's :func:`~prm_lib.items.step_items`
    (``score_items_shared_prefix(rm, items + first_error_items(fe))``), they cost almost
    nothing: they are prefixes of the rated sequences, except for steps the labeler wrote
    (never rated, so not items), which the same passes read on the way.
    """
    return [StepItem(sol.solution_index, i, sol.steps[:i], text, 0, "first-error", sol.problem)
            for sol in fe.solutions for i, text in enumerate(sol.steps)]


def first_error_step_probs(
    fe: FirstErrorSet, score_items_fn: Callable[[list[StepItem]], np.ndarray]
) -> list[np.ndarray]:
    """Every step's probabilities for each solution of a first-error set.

    Each solution is turned into one item per step (:func:`first_error_items`) and
    scored with ``score_items_fn(items) -> [n_items, 3]``, e.g.
    ``lambda items: score_items(items, score_fn)`` or the shared-prefix scorer
    (``lambda items: score_items_shared_prefix(rm, items)``); identical sequences are
    scored once by either.

    Returns:
        one array ``[n_steps, 3]`` per solution, in ``fe.solutions`` order.
    """
    items = first_error_items(fe)
    ends = np.cumsum([len(sol.steps) for sol in fe.solutions])
    probs = np.asarray(score_items_fn(items), dtype=float) if items else np.zeros((0, 3))
    return np.split(probs, ends[:-1]) if len(ends) else []


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
            (:func:`prm_lib.items.scoring_sequences`).
        trunks: indices of the sequences that get a full forward pass.
        branches: every other sequence, each attached to one trunk.
    """

    sequences: list[ScoringSequence]
    trunks: list[int]
    branches: list[Branch]


def _common_steps(a: Sequence[str], b: Sequence[str]) -> int:
    return len(os.path.commonprefix([list(a), list(b)]))


def shared_prefix_plan(items: Sequence[StepItem]) -> SharedPrefixPlan:
    """Group the items' sequences into trunks and one-step branches.

    Within a problem, sequences are taken longest first. A sequence whose steps, all but
    the last, are the first steps of a trunk already chosen becomes a branch of the trunk
    it shares most with; any other sequence becomes a trunk. In phase 1 that makes each
    trajectory a trunk and each alternative a branch.
    """
    return _plan(scoring_sequences(items))


def _plan(sequences: list[ScoringSequence]) -> SharedPrefixPlan:
    """:func:`shared_prefix_plan` of these sequences."""
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


def _rows_of_cache(layers, rows, length: int, unread: int = 0):
    """A new ``DynamicCache`` holding ``layer[rows, :, :length]`` of every cache layer.

    Args:
        layers: the trunk batch's cache layers (``cache.layers``, or the shared bottom
            layers of one model's cache followed by another's top layers), keys/values
            [B, heads, T, head_dim] each.
        rows: int tensor [R] of batch rows (repeats allowed: one per branch).
        length: prefix tokens to keep (the longest prefix among the rows; shorter ones
            are masked).
        unread: the first this many layers are not run by the pass (a model's top
            layers on the shared layers' output): they hold ``length`` positions of one
            number each (the mask is built from the positions alone) instead of a copy.

    Indexing copies, so the trunk cache is left as it was (``crop`` would mutate it).
    """
    from transformers import DynamicCache

    out = []
    for i, layer in enumerate(layers):
        if getattr(layer, "is_sliding", False):
            raise NotImplementedError("shared-prefix scoring needs full-attention cache "
                                      "layers; this model has sliding-window layers")
        if i < unread:
            empty = layer.keys.new_zeros((len(rows), 1, length, 1))
            out.append((empty, empty))
        else:
            out.append((layer.keys[rows, :, :length], layer.values[rows, :, :length]))
    return DynamicCache(out)


def _cache_kwarg(decoder) -> str:
    """The keyword a decoder's ``forward`` takes its KV cache by: ``cache`` in recent
    transformers (where ``past_key_values`` is deprecated), ``past_key_values`` before."""
    import inspect

    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(out):
    """The KV cache a decoder returned, under either name."""
    cache = getattr(out, "cache", None) if "cache" in out else None
    return cache if cache is not None else out.past_key_values


def _run_trunks(decoder, ids_list: list[list[int]], pad_id: int, device, embeds=None):
    """One pass over right-padded trunks -> (hidden [B, T, H], cache).

    ``embeds``: the hidden states [B, T, H] entering ``decoder``'s first layer, in place
    of the token embeddings (a model's top layers run on the shared bottom layers'
    output, :func:`_top_layers`)."""
    import torch
    from transformers import DynamicCache

    width = max(len(ids) for ids in ids_list)
    ids = torch.full((len(ids_list), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids_list), width), dtype=torch.long)
    for r, row in enumerate(ids_list):
        ids[r, : len(row)] = torch.as_tensor(row)
        mask[r, : len(row)] = 1
    tokens = {"input_ids": ids.to(device)} if embeds is None else {"inputs_embeds": embeds}
    out = decoder(**tokens, attention_mask=mask.to(device),
                  use_cache=True, **{_cache_kwarg(decoder): DynamicCache()})
    return out.last_hidden_state, _returned_cache(out)


def _run_branches(decoder, layers, rows: list[tuple[int, int, list[int]]], pad_id: int,
                  device, embeds=None, unread: int = 0):
    """Run branch tails on top of their trunks' cached prefixes.

    Args:
        layers: the trunk batch's cache layers (see :func:`_rows_of_cache`).
        rows: ``(trunk batch row, prefix length L, tail token ids)`` per branch.
        embeds: as :func:`_run_trunks`'s, for the tails [R, A, H].
        unread: cache layers ``decoder`` does not hold (:func:`_rows_of_cache`).

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
    past = _rows_of_cache(layers, torch.as_tensor([b for b, _, _ in rows], device=device),
                          width, unread)
    tokens = {"input_ids": ids.to(device)} if embeds is None else {"inputs_embeds": embeds}
    out = decoder(**tokens, attention_mask=mask.to(device),
                  position_ids=positions.to(device), use_cache=True,
                  **{_cache_kwarg(decoder): past})
    return out.last_hidden_state


def _decoder_layers(model):
    """The decoder layers of a causal LM (``model.get_decoder().layers``), or None for an
    architecture that names them otherwise (GPT-2's ``h``): no layers are shared then."""
    return getattr(model.get_decoder(), "layers", None)


def _same_module(a, b) -> bool:
    if a is b:
        return True
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(x.shape == y.shape and bool((x == y).all())
                                      for x, y in zip(pa, pb))


def shared_layers(reward_models) -> int:
    """How many bottom decoder layers every model has equal to the first model's (with
    equal token embeddings; 0 if those differ): a PRM trained with
    ``train_top_layers=n`` shares all but its top ``n`` with the model it started from.
    :func:`score_items_shared_layers` runs those layers once for all the models."""
    first = reward_models[0].model
    layers = _decoder_layers(first)
    if layers is None:
        return 0
    k = len(layers)
    for rm in reward_models[1:]:
        other = _decoder_layers(rm.model)
        if (other is None or len(other) != len(layers)
                or not _same_module(first.get_input_embeddings(),
                                    rm.model.get_input_embeddings())):
            return 0
        k = min(k, next((i for i, (a, b) in enumerate(zip(layers, other))
                         if not _same_module(a, b)), len(layers)))
    return k


@contextlib.contextmanager
def _top_layers(decoder, k: int):
    """Within the block, ``decoder`` holds only its layers from ``k`` on: it runs them
    (each still keyed by its own index in the cache) and its final norm."""
    import torch

    layers = decoder.layers
    decoder.layers = torch.nn.ModuleList(list(layers)[k:])
    try:
        yield decoder
    finally:
        decoder.layers = layers


@contextlib.contextmanager
def _output_of(module):
    """Within the block, the hidden states ``module`` returned in each call are appended
    to the yielded list."""
    seen: list = []
    handle = module.register_forward_hook(
        lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple) else out))
    try:
        yield seen
    finally:
        handle.remove()


# --------------------------------------------------------------------------- scoring


def _prefix_length(tokens: SolutionTokens, problem: str, ends: list[int],
                   shared_steps: int) -> int:
    """Tokens of the prompt and the first ``shared_steps`` steps (no trailing newline)."""
    if shared_steps:
        return ends[shared_steps - 1] + 1
    return len(tokens(tokens.config.prompt_template.format(problem=problem)))


def item_token_ends(reward_model, items: Sequence[StepItem]) -> np.ndarray:
    """Where each item's step ends, in tokens of the reward model's sequence (the
    position its verdict is read at): a step is read when this is below
    ``reward_model.format.max_length``."""
    tokens = SolutionTokens(reward_model.tokenizer, reward_model.format)
    return np.array([tokens.encode(it.problem, list(it.steps))[1][-1] for it in items],
                    dtype=int)


def score_items_shared_prefix(
    reward_model,
    items: Sequence[StepItem],
    batch_size: int = 8,
    progress: bool = True,
    branch_batch_size: int | None = None,
) -> np.ndarray:
    """P(-1), P(0), P(+1) of every item, float array ``[n_items, 3]``, sharing prefixes.

    The same numbers as ``score_items(items, reward_model.score_fn())`` (up to
    float rounding), from one cached pass per trunk and a short pass per branch (see the
    module docstring and :func:`shared_prefix_plan`). Items whose step ends at or beyond
    ``reward_model.format.max_length`` tokens get NaN rows, as in
    :meth:`RewardModel.step_probabilities`; ``score_items`` would refuse them.

    Args:
        reward_model: a PRM (:class:`prm_lib.reward_model.RewardModel`).
        items: from :func:`prm_lib.items.step_items`.
        batch_size: trunks per forward pass (longest first).
        progress: show a progress bar over trunk batches.
        branch_batch_size: branches per forward pass (default ``2 * batch_size``); each
            holds a copy of its prefix's cache, so this bounds the memory.
    """
    return score_items_shared_layers([reward_model], items, batch_size, progress,
                                     branch_batch_size)[0]


def score_items_shared_layers(
    reward_models: Sequence,
    items: Sequence[StepItem],
    batch_size: int = 8,
    progress: bool = True,
    branch_batch_size: int | None = None,
) -> list[np.ndarray]:
    """:func:`score_items_shared_prefix` for several PRMs at once, running the bottom
    layers they share once.

    A PRM trained with ``train_top_layers=n`` (chapter 2) has the bottom layers of the
    model it started from: scoring it and that untrained model together runs those layers
    once, then each model's own top layers on their output (with each model's own
    key/value cache for the branches). The numbers are each model's
    :func:`score_items_shared_prefix` (up to float rounding; the first model's exactly).
    Models that share no layer (:func:`shared_layers`) are scored one after another.

    Args:
        reward_models: PRMs with the same tokenizer, format and precision.
        items, batch_size, progress, branch_batch_size: as
            :func:`score_items_shared_prefix`'s.

    Returns:
        One ``[n_items, 3]`` array per model, in their order.
    """
    rms = _scored_together(reward_models, prm_only=True)
    plan = shared_prefix_plan(items)
    seq_probs = _score_plans(rms, plan, batch_size, branch_batch_size or 2 * batch_size,
                             progress)
    outs = []
    for rm, probs_of in zip(rms, seq_probs):
        out = np.full((len(items), len(rm.labels)), np.nan)
        for seq, probs in zip(plan.sequences, probs_of):
            for k, item_indices in enumerate(seq.item_indices_per_step):
                out[list(item_indices)] = probs[k]
        outs.append(out)
    return outs


def step_probabilities_shared(
    reward_models: Sequence,
    problems: Sequence[str],
    steps: Sequence[Sequence[str]],
    batch_size: int = 8,
    progress: bool = True,
    branch_batch_size: int | None = None,
) -> list[list[np.ndarray]]:
    """Each model's :meth:`~prm_lib.reward_model.RewardModel.step_probabilities` of these
    solutions, sharing the passes they allow: solutions that share their first
    steps (a trajectory and the complete solutions that end in one of its alternatives)
    share those steps' pass, and models that share their bottom layers run them once
    (:func:`score_items_shared_layers`). PRMs and ORMs alike (chapter 3 scores its PRM
    and ORM together).

    Args:
        reward_models: reward models with the same tokenizer, format and precision.
        problems, steps: the solutions.
        batch_size, progress, branch_batch_size: as :func:`score_items_shared_prefix`'s.

    Returns:
        Per model, one array ``[n_steps, n_labels]`` per solution (NaN rows for steps
        ending beyond ``format.max_length``), the same numbers as the model's own
        ``step_probabilities`` up to float rounding.
    """
    rms = _scored_together(reward_models, prm_only=False)
    if len(problems) != len(steps):
        raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
    seqs, where = plan_sequences(list(problems), [tuple(s) for s in steps])
    plan = _plan([ScoringSequence(p, s, tuple(() for _ in s)) for p, s in seqs])
    seq_probs = _score_plans(rms, plan, batch_size, branch_batch_size or 2 * batch_size,
                             progress)
    return [[np.zeros((0, len(rm.labels))) if w is None else probs[w[0]][: w[1] + 1].copy()
             for w in where] for rm, probs in zip(rms, seq_probs)]


def _scored_together(reward_models, prm_only: bool) -> list:
    """The models as a list, refused unless they can share passes."""
    rms = list(reward_models)
    if not rms:
        raise ValueError("no reward model to score with")
    first = rms[0]
    for rm in rms:
        if prm_only and rm.kind != "prm":
            raise ValueError("step-level scoring needs a PRM")
        if (rm.format != first.format or rm.bf16 != first.bf16
                or rm.tokenizer.get_vocab() != first.tokenizer.get_vocab()):
            raise ValueError("the reward models must share their tokenizer, format and "
                             "precision to be scored together: score them one at a time")
    return rms


def _score_plans(rms, plan: SharedPrefixPlan, batch_size: int, branch_batch_size: int,
                 progress: bool) -> list[list[np.ndarray]]:
    """:func:`_score_plan` of the models together, or one after another when they share
    no layer."""
    if len(rms) > 1 and not shared_layers(rms):
        return [_score_plan([rm], plan, batch_size, branch_batch_size, progress)[0]
                for rm in rms]
    return _score_plan(rms, plan, batch_size, branch_batch_size, progress)


def _score_plan(rms, plan: SharedPrefixPlan, batch_size: int, branch_batch_size: int,
                progress: bool) -> list[list[np.ndarray]]:
    """Per model, label probabilities [n_steps, n_labels] for every sequence of the plan
    (NaN rows for steps beyond ``max_length``); several models share their bottom
    :func:`shared_layers`."""
    import torch
    from .progress import progress_bar

    first = rms[0]
    tokens = SolutionTokens(first.tokenizer, first.format)
    encoded = [tokens.encode(s.problem, s.steps) for s in plan.sequences]
    probs = [[np.full((len(s.steps), len(rm.labels)), np.nan) for s in plan.sequences]
             for rm in rms]
    branches_of: dict[int, list[Branch]] = {}
    for b in plan.branches:
        branches_of.setdefault(b.trunk, []).append(b)
    order = sorted(plan.trunks, key=lambda t: -len(encoded[t][0]))  # less padding
    shared = shared_layers(rms) if len(rms) > 1 else 0
    was_training = [rm.model.training for rm in rms]
    for rm in rms:
        rm.model.eval()
    try:
        with torch.inference_mode(), first.autocast():
            batches = range(0, len(order), batch_size)
            for start in progress_bar(batches, desc="scoring (shared prefix)", enabled=progress):
                trunks = order[start : start + batch_size]
                caches = _score_trunks(rms, shared, trunks, encoded, probs)
                rows, targets = _branch_rows(tokens, plan.sequences, encoded, trunks,
                                             branches_of, probs)
                for b0 in range(0, len(rows), branch_batch_size):
                    chunk = slice(b0, b0 + branch_batch_size)
                    verdicts = _score_branches(rms, shared, caches, rows[chunk])
                    for m, rows_m in enumerate(verdicts):
                        for seq_index, row in zip(targets[chunk], rows_m):
                            probs[m][seq_index][-1] = row
    finally:
        for rm, mode in zip(rms, was_training):
            rm.model.train(mode)
    return probs


def _passes(rms, shared: int, run):
    """``run(decoder, m, embeds=None)`` for every model ``m``: the first model's whole
    decoder, then each other model's top layers (from ``shared`` on) on the first one's
    output of layer ``shared - 1``. Returns each model's result, in order."""
    decoder = rms[0].model.get_decoder()
    if len(rms) == 1:
        return [run(decoder, 0)]
    with _output_of(decoder.layers[shared - 1]) as seen:
        results = [run(decoder, 0)]
    for m, rm in enumerate(rms[1:], 1):
        with _top_layers(rm.model.get_decoder(), shared) as top:
            results.append(run(top, m, embeds=seen[0]))
    return results


def _score_trunks(rms, shared: int, trunks: list[int], encoded,
                  probs: list[list[np.ndarray]]) -> list[list]:
    """Run these trunk sequences (cut at ``max_length``) through every model, write their
    steps' verdicts into ``probs`` and return each model's cache layers of the pass (rows
    in the order of ``trunks``; the shared bottom layers are the first model's)."""
    first = rms[0]
    limit = first.format.max_length
    device = next(first.model.parameters()).device
    ids = [encoded[t][0][:limit] for t in trunks]
    outs = _passes(rms, shared, lambda decoder, m, embeds=None: _run_trunks(
        decoder, ids, first.tokenizer.pad_token_id, device, embeds))
    caches = []
    for m, (rm, (hidden, cache)) in enumerate(zip(rms, outs)):
        for r, t in enumerate(trunks):
            keep = [e for e in encoded[t][1] if e < limit]
            if keep:
                probs[m][t][: len(keep)] = _head_probs(rm.model, hidden[r, keep], rm.token_ids)
        layers = list(cache.layers)
        caches.append(layers if m == 0 else list(outs[0][1].layers[:shared]) + layers[shared:])
    return caches


def _score_branches(rms, shared: int, caches: list[list],
                    rows: list[tuple[int, int, list[int]]]) -> list[np.ndarray]:
    """Verdicts at the last token of each branch row, per model -> [R, n_labels] each."""
    import torch

    first = rms[0]
    device = next(first.model.parameters()).device
    hiddens = _passes(rms, shared, lambda decoder, m, embeds=None: _run_branches(
        decoder, caches[m], rows, first.tokenizer.pad_token_id, device, embeds,
        unread=shared if m else 0))
    last = torch.as_tensor([len(tail) - 1 for _, _, tail in rows], device=device)
    pick = torch.arange(len(rows), device=device)
    return [_head_probs(rm.model, hidden[pick, last], rm.token_ids)
            for rm, hidden in zip(rms, hiddens)]


def _branch_rows(tokens: SolutionTokens, seqs, encoded, trunks: list[int], branches_of,
                 probs: list[list[np.ndarray]]):
    """The branches of these trunks as ``(trunk batch row, L, tail ids)`` rows, and the
    sequence each row scores. Shared steps are copied from the trunk's verdicts (every
    model's in ``probs``); a branch whose last step ends at or beyond ``max_length`` gets
    no row (its last row stays NaN)."""
    limit = tokens.config.max_length
    rows, targets = [], []
    for r, t in enumerate(trunks):
        for b in branches_of.get(t, ()):
            ids, ends = encoded[b.sequence]
            for probs_m in probs:
                probs_m[b.sequence][: b.shared_steps] = probs_m[t][: b.shared_steps]
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
