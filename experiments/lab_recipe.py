"""Choose the laboratory's reward-model recipe on held-out *training* problems.

    python experiments/lab_recipe.py [--scale laptop] [--seed 0] [--recipes NAME ...]
                                     [--lab FIELD=VALUE ...]

``--lab`` changes a field of the laboratory before it is built, e.g. ``--lab
domain=digits misconceptions=24 misconception_rate=0.8`` (a new laboratory, cached in a
folder of its own).

The laboratory's training problems are split in two: reward models train on samples of
the first three quarters (``fit``) and are judged on every sample of the last quarter
(``validation``). The test pool is never read: the script evaluates on a copy of the
laboratory whose evaluation pool is the validation pool, and the reward-model cache keys
name the pool a run is evaluated on, so no run of this script shares a folder (or a
number) with a run evaluated on the test pool.

For each recipe (a name, a supervision, labeled samples per fit problem, and overrides of
the laboratory's reward-model settings) it prints: best-of-N % solved on the validation
problems (N = their whole pool), the within-problem AUC for the right answer and for
every step right, the step AUC pooled and among steps that share their prefix, the share
of picks with every step right, and the training time; then the references (random pick,
majority voting, the generator's own log-likelihood, the ceiling) on the same problems.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd

from prm_lib import get_scale, labeled_step_auc, within_problem_auc
from prm_lib.lab import (build_lab, generator_loglik, pick_profile, reference_lines,
                         select_uniform, solved_at_pool, train_lab_rm,
                         validation_lab)


#: The paper's head (a label token after each step) with the settings the laboratory's
#: reward models used before the likelihood readout: the base of every label-token recipe.
LABEL_TOKEN = {"rm_head": "label_token", "rm__learning_rate": 1e-3, "rm__num_train_epochs": 2,
               "rm_steps_min": 60}

#: name -> (supervision, labeled samples per fit problem, reward-model overrides).
#: ``rm_steps_min``/``rm__*`` are LabConfig fields (see prm_lib.config.LabConfig).
RECIPES: dict[str, tuple[str, int, dict]] = {
    "process, label token": ("process", 16, LABEL_TOKEN),
    "outcome (final answer), label token": ("outcome (final answer)", 16, LABEL_TOKEN),
    "process, top layer only": ("process", 16, LABEL_TOKEN | {"rm__train_top_layers": 1}),
    "process, top 2 layers": ("process", 16, LABEL_TOKEN | {"rm__train_top_layers": 2}),
    "process, lr 3e-4, 6 epochs": ("process", 16, LABEL_TOKEN | {
        "rm__learning_rate": 3e-4, "rm__num_train_epochs": 6}),
    "process, full-vocabulary loss": ("process", 16, LABEL_TOKEN | {"rm__loss": "full_vocab"}),
    "process, 10 epochs": ("process", 16, LABEL_TOKEN | {"rm__num_train_epochs": 10}),
    "outcome (final answer), 10 epochs": ("outcome (final answer)", 16,
                                          LABEL_TOKEN | {"rm__num_train_epochs": 10}),
    "process, 64 per problem": ("process", 64, LABEL_TOKEN),
    "process, 64 per problem, top layer only, 4 epochs": (
        "process", 64, LABEL_TOKEN | {"rm__train_top_layers": 1, "rm__num_train_epochs": 4}),
    # the generator's layers kept as they are, new layers on top learn to read them
    "process, 2 new layers": ("process", 16, LABEL_TOKEN | {"rm_new_layers": 2}),
    "outcome (final answer), 2 new layers": ("outcome (final answer)", 16,
                                             LABEL_TOKEN | {"rm_new_layers": 2}),
    "outcome (checker), 2 new layers": ("outcome (checker)", 16,
                                        LABEL_TOKEN | {"rm_new_layers": 2}),
    "process, 2 new layers, 6 epochs": ("process", 16, LABEL_TOKEN | {
        "rm_new_layers": 2, "rm__num_train_epochs": 6}),
    "process, 1 new layer": ("process", 16, LABEL_TOKEN | {"rm_new_layers": 1}),
    "process, 3 new layers": ("process", 16, LABEL_TOKEN | {"rm_new_layers": 3}),
    "process, 2 new layers, 64 per problem": ("process", 64, LABEL_TOKEN | {"rm_new_layers": 2}),
    "process, 2 new layers, 64 per problem, 6 epochs": (
        "process", 64, LABEL_TOKEN | {"rm_new_layers": 2, "rm__num_train_epochs": 6}),
    "process, 2 new layers, 64 per problem, 6 epochs, lr 3e-3": (
        "process", 64, LABEL_TOKEN | {"rm_new_layers": 2, "rm__num_train_epochs": 6,
                                      "rm__learning_rate": 3e-3}),
    # the verdict read from the fine-tuned generator's token probabilities
    # (prm_lib.lab.readout)
    **{f"{sup}, likelihood readout, lr {lr:g}, {ep:g} epochs": (
        sup, 16, {"rm_head": "likelihood", "rm__learning_rate": lr, "rm__num_train_epochs": ep})
       for sup in ("process", "outcome (final answer)", "outcome (checker)")
       for lr, ep in ((3e-5, 2), (1e-4, 2), (1e-4, 4), (3e-4, 2), (3e-4, 1), (1e-3, 1))},
    "process, likelihood readout, untrained": (
        "process", 16, {"rm_head": "likelihood", "rm__learning_rate": 0.0,
                        "rm__num_train_epochs": 0, "rm_steps_min": 1}),
}


#: What the script runs by default: the paper's head next to the likelihood readout under
#: the three supervisions (every other recipe of RECIPES by name, with --recipes).
DEFAULT = ["process, label token", "outcome (final answer), label token",
           "process, 10 epochs", "process, 2 new layers", "outcome (final answer), 2 new layers",
           *[n for n in RECIPES if "likelihood readout" in n]]


def evaluate(lab, scores, step_probs=None) -> dict:
    pool = lab.pools["test"]
    row = {"best-of-N % solved": solved_at_pool(lab, scores),
           "within-problem AUC (answer)": within_problem_auc(pool, scores),
           "within-problem AUC (every step)": within_problem_auc(pool, scores,
                                                                 "process_correct"),
           "picks with every step right (%)": pick_profile(lab, scores)[
               ("picked", "every step right")]}
    if step_probs is not None:
        auc = labeled_step_auc(pool, step_probs)
        row |= {"step AUC pooled": auc["pooled"], "step AUC same prefix": auc["same_prefix"]}
    return row


def _field(text: str):
    """``"name=value"`` -> (name, value), the value read as a Python literal if it is one."""
    import ast

    name, _, value = text.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipes", nargs="*", default=list(DEFAULT), choices=list(RECIPES),
                    help="recipes to try (default: DEFAULT, the laboratory's comparison)")
    ap.add_argument("--lab", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="laboratory fields to change (LabConfig; __ for nested fields)")
    args = ap.parse_args()
    pd.set_option("display.width", 200)

    cfg = get_scale(args.scale).lab.with_(**dict(_field(x) for x in args.lab))
    lab = validation_lab(build_lab(cfg, seed=args.seed, progress=True))
    val = lab.pools["test"]
    print(f"{cfg.describe()}\nfit: {lab.pools['train'].problem_index.nunique()} training "
          f"problems; validation: {val.problem_index.nunique()} held-out training problems "
          f"x {lab.scale.test_pool} samples (the test pool is not read)\n")
    rows = {}
    for name in args.recipes:
        supervision, k, overrides = RECIPES[name]
        variant = dataclasses.replace(lab, scale=lab.scale.with_(**overrides))
        chosen = select_uniform(lab.pools["train"], k, seed=args.seed)
        start = time.perf_counter()
        run = train_lab_rm(variant, chosen, supervision, seed=args.seed)
        # every reward model's step verdicts, where it has them: a label-token ORM
        # answers at the solution's end only; a readout ORM judges every step
        steps_read = supervision == "process" or variant.scale.rm_head == "likelihood"
        rows[name] = evaluate(lab, run.scores(), run.step_probs if steps_read else None)
        rows[name] |= {"optimizer steps": run.summary["steps"],
                       "seconds": run.summary["seconds"],
                       "cached": time.perf_counter() - start < 0.5 * run.summary["seconds"]}
        print(f"{name}: {rows[name]['best-of-N % solved']:.1f}% solved, within-problem AUC "
              f"{rows[name]['within-problem AUC (answer)']:.3f}", flush=True)
    loglik = generator_loglik(lab, val)
    rows["generator log-likelihood (no training)"] = evaluate(lab, loglik)
    print("\nRecipes, judged on the validation problems:")
    print(pd.DataFrame(rows).T.round(3).to_string())
    refs = reference_lines(lab, seed=args.seed)
    print("\nReferences on the same problems (%):")
    print(pd.Series(refs).round(1).to_string())


if __name__ == "__main__":
    main()
