"""Choose the laboratory's reward-model recipe on held-out *training* problems.

    python experiments/lab_recipe.py [--scale laptop] [--seed 0] [--recipes NAME ...]
                                     [--lab FIELD=VALUE ...] [--lab-seeds S ...]

``--lab`` changes a field of the laboratory before it is built, e.g. ``--lab
domain=digits misconceptions=24 misconception_rate=0.8`` (a new laboratory, cached in a
folder of its own).

``--lab-seeds`` builds one laboratory per seed (another generator, other problems, other
misconceptions: other draws of the same design, as another CPU's floating point also
draws another generator from the same seed) and runs every recipe in each; the script
then prints, per recipe, its worst and mean reading over the draws, and per training
setting (learning rate and epochs) its worst margin over a random pick across draws and
supervisions: a recipe is chosen for the worst draw it meets, not for one draw.

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


#: The likelihood-readout settings compared across laboratory draws (``--lab-seeds``):
#: (learning rate, epochs), each under the three supervisions.
READOUT_SETTINGS = ((1e-3, 1), (3e-4, 1), (3e-4, 2), (1e-4, 2), (1e-4, 4))
for _lr, _ep in READOUT_SETTINGS:
    for _sup in ("process", "outcome (final answer)", "outcome (checker)"):
        RECIPES.setdefault(f"{_sup}, likelihood readout, lr {_lr:g}, {_ep:g} epochs", (
            _sup, 16, {"rm_head": "likelihood", "rm__learning_rate": _lr,
                       "rm__num_train_epochs": _ep}))
ACROSS_DRAWS = [f"{sup}, likelihood readout, lr {lr:g}, {ep:g} epochs"
                for lr, ep in READOUT_SETTINGS
                for sup in ("process", "outcome (final answer)", "outcome (checker)")]

#: What the script runs by default: the paper's head next to the likelihood readout under
#: the three supervisions (every other recipe of RECIPES by name, with --recipes).
DEFAULT = ["process, label token", "outcome (final answer), label token",
           "process, 10 epochs", "process, 2 new layers", "outcome (final answer), 2 new layers",
           *[n for n in RECIPES if "likelihood readout" in n]]


#: A smaller N read beside the whole pool: averaged over trials, less noisy than one pick
#: from the whole pool per problem (the column keeps its name at the tiny scale, whose
#: pool is smaller).
SMALL_N = 16
#: Its column, named for SMALL_N at every scale (a pool smaller than SMALL_N is read whole).
SMALL_COLUMN = f"best-of-{SMALL_N} % solved"


def small_n(lab) -> int:
    """:data:`SMALL_N`, or the whole pool where it is smaller (the tiny scale)."""
    return min(SMALL_N, lab.scale.test_pool)


def evaluate(lab, scores, step_probs=None) -> dict:
    pool = lab.pools["test"]
    row = {"best-of-N % solved": solved_at_pool(lab, scores),
           SMALL_COLUMN: solved_at_pool(lab, scores, n=small_n(lab)),
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


def run_recipes(cfg, lab_seed: int, recipes: list[str], seed: int) -> tuple[dict, dict]:
    """Every recipe in the laboratory drawn with ``lab_seed``, judged on its held-out
    training problems: ``({recipe: row}, references)``."""
    lab = validation_lab(build_lab(cfg, seed=lab_seed, progress=True))
    val = lab.pools["test"]
    print(f"{cfg.describe()}, laboratory seed {lab_seed}\nfit: "
          f"{lab.pools['train'].problem_index.nunique()} training problems; validation: "
          f"{val.problem_index.nunique()} held-out training problems x {lab.scale.test_pool} "
          "samples (the test pool is not read)\n")
    rows = {}
    for name in recipes:
        supervision, k, overrides = RECIPES[name]
        variant = dataclasses.replace(lab, scale=lab.scale.with_(**overrides))
        chosen = select_uniform(lab.pools["train"], k, seed=seed)
        start = time.perf_counter()
        run = train_lab_rm(variant, chosen, supervision, seed=seed)
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
    refs = reference_lines(lab, seed=seed)
    if small_n(lab) < lab.scale.test_pool:
        small = reference_lines(lab, seed=seed, n=small_n(lab))
        refs |= {f"majority voting, N={SMALL_N}": small[f"majority voting, N={SMALL_N}"],
                 f"ceiling, N={SMALL_N}": small["any correct sample (ceiling)"]}
    print("\nRecipes, judged on the validation problems:")
    print(pd.DataFrame(rows).T.round(3).to_string())
    print("\nReferences on the same problems (%):")
    print(pd.Series(refs).round(1).to_string())
    return rows, refs


def across_draws(results: dict[int, tuple[dict, dict]]) -> None:
    """Print each recipe's worst and mean reading over the laboratory draws, and each
    training setting's worst margin over a random pick (across draws and supervisions)."""
    table = pd.concat({s: pd.DataFrame(rows).T for s, (rows, _) in results.items()},
                      names=["laboratory seed", "recipe"])
    refs = pd.DataFrame({s: r for s, (_, r) in results.items()}).T
    small = SMALL_COLUMN
    margin = table[[small, "best-of-N % solved"]].astype(float).copy()
    margin["over random pick"] = (table["best-of-N % solved"].astype(float)
                                  - refs["random pick"].reindex(
                                      table.index.get_level_values(0)).to_numpy())
    margin["over generator"] = table["best-of-N % solved"].astype(float).sub(
        table.xs("generator log-likelihood (no training)", level="recipe")[
            "best-of-N % solved"].astype(float), level="laboratory seed")
    print(f"\n{'=' * 100}\nAcross {len(results)} laboratory draws (seeds "
          f"{', '.join(map(str, results))}), validation problems:")
    print("\nReferences per draw (%):")
    print(refs.round(1).to_string())
    print("\nPer recipe, best-of-N % solved (whole pool) per draw, and worst / mean over draws:")
    per = margin["best-of-N % solved"].unstack(0)
    per["worst"], per["mean"] = per.min(axis=1), per.mean(axis=1)
    print(per.round(1).to_string())
    print(f"\nPer recipe, {small} (averaged over trials) per draw, worst / mean:")
    per = margin[small].unstack(0)
    per["worst"], per["mean"] = per.min(axis=1), per.mean(axis=1)
    print(per.round(1).to_string())
    settings = margin.drop("generator log-likelihood (no training)", level="recipe")
    setting = settings.index.get_level_values("recipe").str.split(", ", n=1).str[1]
    worst = settings.groupby(setting.to_numpy()).agg(
        **{"worst margin over random pick": ("over random pick", "min"),
           "mean margin over random pick": ("over random pick", "mean"),
           "worst margin over the generator": ("over generator", "min"),
           "mean margin over the generator": ("over generator", "mean"),
           "runs": ("over random pick", "size")})
    print("\nPer training setting, over draws and supervisions (points of best-of-N):")
    print(worst.sort_values("worst margin over random pick", ascending=False).round(1)
          .to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--seed", type=int, default=0,
                    help="the laboratory's seed (without --lab-seeds) and every run's")
    ap.add_argument("--recipes", nargs="*", default=None, choices=list(RECIPES),
                    help="recipes to try (default: DEFAULT, the laboratory's comparison; "
                         "with --lab-seeds, ACROSS_DRAWS)")
    ap.add_argument("--lab", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="laboratory fields to change (LabConfig; __ for nested fields)")
    ap.add_argument("--lab-seeds", nargs="*", type=int, default=None, metavar="S",
                    help="build one laboratory per seed and compare the recipes across them")
    args = ap.parse_args()
    pd.set_option("display.width", 200)

    cfg = get_scale(args.scale).lab.with_(**dict(_field(x) for x in args.lab))
    if args.lab_seeds is None:
        run_recipes(cfg, args.seed, args.recipes or list(DEFAULT), args.seed)
        return
    recipes = args.recipes or list(ACROSS_DRAWS)
    results = {}
    for lab_seed in args.lab_seeds:
        results[lab_seed] = run_recipes(cfg, lab_seed, recipes, args.seed)
        print()
    across_draws(results)


if __name__ == "__main__":
    main()
