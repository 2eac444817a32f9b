"""Prefix-shared training sequences: one labeling session, one sequence.

A phase-1 labeling session is a tree: the trajectory, and at each position the rated
alternatives, each sharing the trajectory's steps before it. :func:`prm_lib.formatting.
prm_examples` makes one sequence per alternative, so the shared prefix is read again for
every one of them (about 22 sequences per labeled solution). :func:`session_examples`
packs the whole tree into one sequence instead: the trajectory first, then each
alternative's tokens (the newline before it included) as a *segment* that

* sees the trajectory's tokens up to its branch point and its own earlier tokens, nothing
  else (a 4-D attention mask, built by :func:`tree_attention_mask`);
* has position ids that continue from the branch point, as if it followed the prefix.

Each labeled step then has exactly the context, positions and label it has in its own
example, so the loss and its gradients are those of per-example training (checked to 1e-5
in ``tests/test_packing.py``), computed on far fewer tokens.

The set of (context, step, label) triples is exactly :func:`~prm_lib.formatting.
prm_examples`' (each alternative is formatted by the same code, then cut at its branch
point), and so is its :class:`~prm_lib.formatting.FormatReport`: the same counts, plus
``sessions``, ``packed sequences`` and ``packed tokens``. A session longer than
``pack_length`` (default ``max_length``) is split at branch points into several
sequences, each starting with the trajectory prefix its alternatives need; an
alternative's example never exceeds ``max_length``, so splitting loses no label.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .formatting import (Example, FormatConfig, FormatReport, SolutionTokens,
                         solution_examples, trajectory_labels)
from .schema import LabeledSolution

__all__ = ["PackedExample", "draw_sessions", "pack_examples", "session_examples",
           "tree_attention_mask", "visible"]


@dataclass
class PackedExample:
    """One training sequence holding a session's trajectory and alternatives.

    Attributes:
        input_ids: the trajectory's tokens (``[0, segment_starts[1])``), then each
            alternative segment's.
        position_ids: each token's position in its own example (an alternative's continue
            from its branch point).
        segment_starts: index of each segment's first token; segment 0 is the trajectory
            and starts at 0.
        segment_branches: the trajectory tokens ``[0, branch)`` each segment sees (0 for
            the trajectory itself, which sees only its own earlier tokens).
        label_positions, labels: as :class:`~prm_lib.formatting.Example`'s, indices into
            ``input_ids``.
        source: the session's source.
    """

    input_ids: list[int]
    position_ids: list[int]
    segment_starts: list[int]
    segment_branches: list[int]
    label_positions: list[int]
    labels: list[int]
    source: str = ""


@dataclass
class _Row:
    prefix: int  # trajectory tokens the row holds
    labeled: list[tuple[int, int]] = field(default_factory=list)  # trajectory labels
    segments: list[tuple[int, list[int], int, int]] = field(default_factory=list)

    def length(self, prefix: int | None = None) -> int:
        return (self.prefix if prefix is None else prefix) + sum(len(s[1]) for s in self.segments)


def _build(row: _Row, traj_ids: list[int], source: str) -> PackedExample:
    ids = list(traj_ids[: row.prefix])
    positions = list(range(row.prefix))
    starts, branches = [0], [0]
    label_positions = [p for p, _ in row.labeled]
    labels = [c for _, c in row.labeled]
    for branch, seg, rel, label in row.segments:
        starts.append(len(ids))
        branches.append(branch)
        label_positions.append(len(ids) + rel)
        labels.append(label)
        positions.extend(range(branch, branch + len(seg)))
        ids.extend(seg)
    return PackedExample(ids, positions, starts, branches, label_positions, labels, source)


def session_examples(
    tokenizer,
    solutions: Sequence[LabeledSolution],
    config: FormatConfig = FormatConfig(),
    pack_length: int | None = None,
) -> tuple[list[PackedExample], FormatReport]:
    """Each labeling session (a solution's trajectory and its rated alternatives) as one
    prefix-shared :class:`PackedExample`, or several when it exceeds ``pack_length``
    tokens (default ``config.max_length``; at least ``max_length``). Labels, truncation
    and counts are :func:`~prm_lib.formatting.prm_examples`'."""
    pack_length = config.max_length if pack_length is None else pack_length
    if pack_length < config.max_length:
        raise ValueError(f"pack_length ({pack_length}) must be at least max_length "
                         f"({config.max_length}): an example must fit in one sequence")
    report = FormatReport()
    tokens = SolutionTokens(tokenizer, config)
    out: list[PackedExample] = []
    for s in solutions:
        texts, _ = trajectory_labels(s, config)
        prompt_len = len(tokens(config.prompt_template.format(problem=s.problem)))
        traj_ids, traj_ends = tokens.encode(s.problem, texts)
        rows = [_Row(0, [])]
        for p, ex in solution_examples(tokens, s, config, report):
            if ex is None:
                continue
            if p is None:  # the trajectory: the first row's labeled prefix
                rows[0] = _Row(len(ex.input_ids), list(zip(ex.label_positions, ex.labels)))
                continue
            branch = traj_ends[p - 1] + 1 if p else prompt_len
            if ex.input_ids[:branch] != traj_ids[:branch]:  # by construction
                raise AssertionError(f"{ex.source}: its prefix is not the trajectory's")
            seg = ex.input_ids[branch:]
            segment = (branch, seg, ex.label_positions[0] - branch, ex.labels[0])
            row = rows[-1]
            prefix = max(row.prefix, branch)
            if row.length(prefix) + len(seg) > pack_length:
                row = _Row(branch)
                rows.append(row)
            row.prefix = max(row.prefix, branch)
            row.segments.append(segment)
        report.counts["sessions"] += 1
        for row in rows:
            if row.labeled or row.segments:
                ex = _build(row, traj_ids, s.source)
                out.append(ex)
                report.counts["packed sequences"] += 1
                report.counts["packed tokens"] += len(ex.input_ids)
    return out, report


def draw_sessions(tokenizer, solutions: Sequence[LabeledSolution], config: FormatConfig,
                  n: int | None, seed: int, examples=None) -> tuple[list[LabeledSolution], int]:
    """Whole labeling sessions, drawn in a seeded order until their PRM examples
    (:func:`~prm_lib.formatting.prm_examples`, or the ``examples`` function given, such as
    :func:`~prm_lib.formatting.orm_examples`) number at least ``n`` (None: every
    session). Returns the drawn sessions and how many examples they hold (counted session
    by session): prefix-shared training packs exactly these, and per-example training of
    the same sessions sees the same labels."""
    import random

    from .formatting import prm_examples

    examples = examples or prm_examples
    sessions = list(solutions)
    random.Random(seed).shuffle(sessions)
    picked, count = [], 0
    for s in sessions:
        if n is not None and count >= n:
            break
        picked.append(s)
        count += len(examples(tokenizer, [s], config)[0])
    return picked, count


def pack_examples(examples: Sequence[Example], pack_length: int,
                  min_share: float = 0.5) -> list[PackedExample]:
    """Examples that begin with the same tokens, packed into prefix-shared sequences.

    Longest first, each example joins the sequence whose first example (its *trunk*)
    shares the most leading tokens with it, as a segment holding only its tokens after the
    shared ones: it sees the trunk's tokens before them and its own, with positions that
    continue from there, so each label keeps the context, positions and loss it has on its
    own. A label within the shared tokens is put on the trunk's token (the same context).
    An example that shares less than ``min_share`` of its tokens with every trunk (another
    problem, or the same problem's prompt only: sharing a few tokens saves nothing and
    fills sequences that its own trunk's examples would then have to repeat), has more
    than one label after the shared ones, or a label on a shared token the trunk labels
    too, starts a sequence of its own; one that would make a sequence longer than
    ``pack_length`` goes into a new sequence holding the trunk's tokens it needs.

    The ORM's examples of a labeling session (its complete solutions: the trajectory and
    the trajectory prefixes ending in an alternative that gives an answer, one label each
    on the last token) share all but their last step: 320 of them drawn as whole sessions
    (:func:`draw_sessions`) pack into half their tokens.
    """
    if examples and pack_length < max(len(e.input_ids) for e in examples):
        raise ValueError(f"pack_length ({pack_length}) is shorter than an example "
                         f"({max(len(e.input_ids) for e in examples)} tokens)")
    trunks: list[tuple[list[int], str, list[_Row]]] = []
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    for i in order:
        e = examples[i]
        best, shared = None, 0
        for trunk in trunks:
            n = len(os.path.commonprefix([trunk[0], e.input_ids]))
            if n > shared:
                best, shared = trunk, n
        labels = list(zip(e.label_positions, e.labels))
        after = [(p, c) for p, c in labels if p >= shared]
        taken = {p for p, _ in best[2][0].labeled} if best is not None else set()
        if (best is None or shared < min_share * len(e.input_ids) or len(after) > 1
                or any(p in taken for p, _ in labels if p < shared)):
            # (a label on a token the trunk already labels would be counted once, not
            # twice as on its own)
            trunks.append((list(e.input_ids), e.source, [_Row(len(e.input_ids), labels)]))
            continue
        ids, _, rows = best
        rows[0].labeled.extend((p, c) for p, c in labels if p < shared)
        if not after:
            continue
        (p, c), = after
        seg = list(e.input_ids[shared:])
        row = rows[-1]
        if row.length(max(row.prefix, shared)) + len(seg) > pack_length:
            row = _Row(shared)
            rows.append(row)
        row.prefix = max(row.prefix, shared)
        row.segments.append((shared, seg, p - shared, c))
    return [_build(row, ids, source) for ids, source, rows in trunks for row in rows]


def visible(example) -> list[list[bool]]:
    """``visible[i][j]``: token ``i`` of a packed example (a :class:`PackedExample` or its
    dict) attends to token ``j``. For reading and tests; :func:`tree_attention_mask` is
    the vectorised form."""
    get = example.get if isinstance(example, dict) else lambda k: getattr(example, k)
    n, starts, branches = len(get("input_ids")), get("segment_starts"), get("segment_branches")
    out = []
    for i in range(n):
        k = max(idx for idx, st in enumerate(starts) if st <= i)
        out.append([j < branches[k] or starts[k] <= j <= i for j in range(n)])
    return out


def tree_attention_mask(examples: Sequence[dict], width: int, dtype=None):
    """The additive attention mask ``[B, 1, width, width]`` of a batch of packed examples
    (dicts with ``input_ids``, ``segment_starts``, ``segment_branches``): 0 where a token
    may attend, the dtype's most negative value elsewhere. Padding tokens attend to
    themselves only (a row with nothing visible would give NaN), and no token attends to
    padding."""
    import torch

    dtype = dtype or torch.float32
    mask = torch.full((len(examples), 1, width, width), torch.finfo(dtype).min, dtype=dtype)
    idx = torch.arange(width)
    for b, e in enumerate(examples):
        n = len(e["input_ids"])
        starts = torch.as_tensor(e["segment_starts"], dtype=torch.long)
        branches = torch.as_tensor(e["segment_branches"], dtype=torch.long)
        if starts.numel() == 0 or int(starts[0]) != 0:
            raise ValueError(f"packed example {e.get('source', b)!r}: segment 0 must start "
                             "at token 0 (the trajectory)")
        seg = torch.searchsorted(starts, idx[:n], right=True) - 1
        q, k = idx[:n, None], idx[None, :n]
        ok = (k < branches[seg][:, None]) | ((k >= starts[seg][:, None]) & (k <= q))
        mask[b, 0, :n, :n] = torch.where(ok, 0.0, torch.finfo(dtype).min).to(dtype)
        mask[b, 0, idx[n:], idx[n:]] = 0  # padding sees itself
    return mask
