"""Why do the laboratory's reward models rank below a random pick? Measure each candidate
cause on the cached laboratory and chapter 5's reward models, and print one table each.

    python experiments/lab_diagnosis.py [--scale laptop] [--seed 0] [--size N]
                                        [--lab FIELD=VALUE ...]

``--lab`` changes fields of the laboratory as in ``lab_recipe.py``; the output committed in
``experiments/results/lab_diagnosis_laptop_seed0.txt`` diagnoses the label-token reward
models of the two-digit chain laboratory: ``--lab domain=chain misconceptions=0
misconception_rate=0 rm_head=label_token rm__learning_rate=1e-3 rm__num_train_epochs=2
rm_steps_min=60``.

Reads the laboratory and the reward models chapter 5 trained (the largest data size, seed
``--seed``) from the cache, training them if they are missing. Everything is measured on
the test pool except the memorisation check, which compares the training problems'
unlabeled samples with the test pool. Candidates (the issue's list):

1. verification vs riskiness: step AUC pooled, and within groups of steps that share
   problem and prefix (only the step's content differs);
2. the product rule's preference for few steps: correlation of the score with the number
   of steps, and what the picks look like next to a random pick;
3. memorised answers: within-problem AUC on the training problems' samples the model was
   not trained on, against the test problems';
4. knowledge erased by fine-tuning: the fine-tuned model read as a language model (its
   own log-likelihood of each sample), against the generator it started from;
5. best-of-N picking a weak scorer's outliers: % right by rank within the problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from prm_lib import get_scale, labeled_step_auc, within_problem_auc
from prm_lib.lab import (SUPERVISIONS, build_lab, generator_loglik, pick_profile,
                         select_uniform, solved_at_pool, train_lab_rm)

from lab_recipe import _field  # the scripts run from the repository root


def rank_accuracy(pool: pd.DataFrame, scores: np.ndarray, ranks: int = 8) -> pd.Series:
    """% of samples with the right answer at each rank of the score within its problem
    (rank 1 = the sample best-of-N picks)."""
    frame = pd.DataFrame({"p": pool["problem_index"].to_numpy(),
                          "y": pool["is_correct"].astype(bool).to_numpy(),
                          "s": pd.Series(np.asarray(scores, float)).fillna(-np.inf)})
    frame["rank"] = frame.groupby("p")["s"].rank(ascending=False, method="first")
    out = frame[frame["rank"] <= ranks].groupby("rank")["y"].mean() * 100
    out.index = out.index.astype(int)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="laptop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=None,
                    help="labeled samples per problem (default: the largest data size)")
    ap.add_argument("--lab", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="laboratory fields to change (LabConfig; __ for nested fields)")
    args = ap.parse_args()
    pd.set_option("display.width", 160)

    start = time.perf_counter()
    cfg = get_scale(args.scale).lab.with_(**dict(_field(x) for x in args.lab))
    lab = build_lab(cfg, seed=args.seed, progress=False)
    size = args.size or max(cfg.data_sizes)
    test, train = lab.pools["test"], lab.pools["train"]
    rows = select_uniform(train, size, seed=args.seed)
    runs = {sup: train_lab_rm(lab, rows, sup, seed=args.seed) for sup in SUPERVISIONS}
    loglik = generator_loglik(lab, test)
    rankers = {f"{sup} RM": run.scores() for sup, run in runs.items()}
    rankers["generator log-likelihood"] = loglik
    print(f"{cfg.describe()}; reward models: {size} labeled samples per training problem, "
          f"seed {args.seed}; best-of-{cfg.test_pool} on {cfg.test_problems} test problems\n")

    # 1. verification vs riskiness -------------------------------------------------
    t1 = {}
    for name, s in rankers.items():
        row = {"best-of-N % solved": solved_at_pool(lab, s),
               "within-problem AUC (answer)": within_problem_auc(test, s),
               "within-problem AUC (every step)": within_problem_auc(test, s, "process_correct")}
        sup = name.removesuffix(" RM")
        if sup in runs:
            auc = labeled_step_auc(test, runs[sup].step_probs)
            row |= {"step AUC pooled": auc["pooled"], "step AUC same prefix": auc["same_prefix"],
                    "labeled steps": auc["steps"], "same-prefix groups": auc["groups"]}
        t1[name] = row
    print("1. Verification or riskiness? (step AUC on the test pool's labeled steps)")
    print(pd.DataFrame(t1).T.round(3).to_string(), "\n")

    # 2. step counts and what the picks look like ------------------------------------
    n_steps = test["steps"].map(len).to_numpy(float)
    t2 = {name: pick_profile(lab, s)["picked"] for name, s in rankers.items()}
    t2["random pick"] = pick_profile(lab, loglik)["random pick"]
    t2 = pd.DataFrame(t2).T
    t2["corr(score, steps)"] = [pd.Series(s).corr(pd.Series(n_steps), method="spearman")
                                for s in rankers.values()] + [np.nan]
    print("2. What best-of-N picks (% of test problems; steps: mean count)")
    print(t2.round(2).to_string(), "\n")

    # 3. memorisation: unlabeled samples of the training problems vs test ------------
    unused = train.drop(index=rows.index).reset_index(drop=True)
    t3 = {}
    for sup, run in runs.items():
        s_unused = run.pool_scores(unused)
        t3[f"{sup} RM"] = {
            "within-problem AUC, training problems (unlabeled samples)":
                within_problem_auc(unused, s_unused),
            "within-problem AUC, test problems": within_problem_auc(test, run.scores())}
    t3["generator log-likelihood"] = {
        "within-problem AUC, training problems (unlabeled samples)":
            within_problem_auc(unused, generator_loglik(lab, unused)),
        "within-problem AUC, test problems": within_problem_auc(test, loglik)}
    print(f"3. Memorised answers? ({len(unused):,} unlabeled training-pool samples)")
    print(pd.DataFrame(t3).T.round(3).to_string(), "\n")

    # 4. knowledge erased: the fine-tuned model as a language model ------------------
    t4 = {"generator (start)": within_problem_auc(test, loglik)}
    for sup, run in runs.items():
        tuned = dataclasses.replace(lab, generator=run.reward_model.model)
        t4[f"{sup} RM, read as a language model"] = within_problem_auc(
            test, generator_loglik(tuned, test))
    print("4. Knowledge erased? within-problem AUC of the model's own log-likelihood")
    print(pd.Series(t4, name="within-problem AUC (answer)").round(3).to_string(), "\n")

    # 5. rank by rank -----------------------------------------------------------------
    t5 = pd.DataFrame({name: rank_accuracy(test, s) for name, s in rankers.items()})
    t5["pool (any rank)"] = 100 * test.groupby("problem_index")["is_correct"].mean().mean()
    print("5. % right answer at each rank within the problem (1 = the best-of-N pick)")
    print(t5.round(1).to_string(), "\n")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
