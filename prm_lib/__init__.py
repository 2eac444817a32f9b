"""prm_lib: the code behind the book "Let's Verify Step by Step, reproduced".

Data flows one way, one module per stage:

- config:    :mod:`~prm_lib.config` (the one switch that sets the scale of a run: every
             size, format and training setting of a preset, the laboratory's included)
- load:      :mod:`~prm_lib.sources` (local folder, or download and cache),
             :mod:`~prm_lib.data` (PRM800K raw JSONL / stepwise-critic parquet, MATH),
             :mod:`~prm_lib.schema` (the one in-memory form of a labeled solution),
             :mod:`~prm_lib.splits` (the MATH500 guard: no test problem reaches training)
- look:      :mod:`~prm_lib.explore` (tables and pictures of the labels)
- grade:     :mod:`~prm_lib.grading` (final-answer extraction and equivalence)
- format:    :mod:`~prm_lib.formatting` (solutions -> token ids with step-end labels)
- model:     :mod:`~prm_lib.models` (Hub / folder / offline wheel / tiny),
             :mod:`~prm_lib.reward_model` (the PRM and ORM: label tokens, scores)
- train:     :mod:`~prm_lib.training` (``RewardConfig``, ``RewardTrainer``),
             :mod:`~prm_lib.runs` (the book's cached PRM and ORM runs per scale)
- generate:  :mod:`~prm_lib.generation` (best-of-N sample pools, per-sample seeds)
- items:     :mod:`~prm_lib.items` (step items and first-error sets: data, no model)
- score:     :mod:`~prm_lib.scoring` (step probabilities, shared-prefix scoring)
- evaluate:  :mod:`~prm_lib.metrics` (step AUC, calibration, first-error F1),
             :mod:`~prm_lib.baselines` (constant, step-position prior),
             :mod:`~prm_lib.best_of_n` (best-of-N, voting, their statistics),
             :mod:`~prm_lib.samples` and :mod:`~prm_lib.pools` (sample tables; the pool
             chapter 4 evaluates)
- show:      :mod:`~prm_lib.plots`, :mod:`~prm_lib.display`, :mod:`~prm_lib.widgets`,
             :mod:`~prm_lib.results`, :mod:`~prm_lib.progress`
- the paper: :mod:`~prm_lib.paper` (every number the book quotes from it)
- laboratory: :mod:`~prm_lib.lab` (chapters 5-7: checkable problems, a generator trained
             from scratch, process vs outcome supervision, active learning)

The names the chapters use are importable from the package itself
(``from prm_lib import load_prm800k, RewardModel, best_of_n``); each is loaded from its
module on first use, so ``import prm_lib`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Imported now: the function has the name of its module, and an attribute set by importing
# the module would otherwise shadow it.
from .best_of_n import best_of_n  # noqa: E402

#: name -> module of every name the package exports (the book's vocabulary).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Scale", "LabConfig", "get_scale", "SCALES"], "config"),
    **dict.fromkeys(["load_prm800k", "load_math500", "DataFormatError"], "data"),
    **dict.fromkeys(["LeakError", "is_math500", "assert_no_math500", "math500_overlaps",
                     "NEAR_THRESHOLD"], "splits"),
    **dict.fromkeys(["DataNotFoundError", "find_local"], "sources"),
    **dict.fromkeys(["solutions_table", "ratings_table", "table3", "render_solution",
                     "plot_overview"], "explore"),
    **dict.fromkeys(["grade_answer", "extract_answer"], "grading"),
    **dict.fromkeys(["FormatConfig", "prm_examples", "orm_examples", "complete_solutions"],
                    "formatting"),
    **dict.fromkeys(["load_causal_lm", "load_tokenizer"], "models"),
    **dict.fromkeys(["RewardModel", "SCORING_RULES", "solution_score", "solution_scores",
                     "step_correct_probability", "orm_score"], "reward_model"),
    **dict.fromkeys(["RewardConfig", "RewardTrainer", "RewardRun", "train_reward_model"],
                    "training"),
    **dict.fromkeys(["prm_run", "orm_run", "untrained_prm"], "runs"),
    **dict.fromkeys(["generate_samples"], "generation"),
    **dict.fromkeys(["step_items", "item_ratings", "item_problems", "first_error_sets"],
                    "items"),
    **dict.fromkeys(["score_items", "score_items_shared_prefix", "score_items_shared_layers",
                     "step_probabilities_shared", "reuse_scores",
                     "first_error_step_probs", "first_error_items", "item_token_ends"],
                    "scoring"),
    **dict.fromkeys(["step_auc", "within_problem_auc", "solution_auc", "labeled_step_auc",
                     "grouped_auc", "calibration_table",
                     "predict_first_error", "first_error_metrics", "best_threshold"],
                    "metrics"),
    **dict.fromkeys(["constant_baseline", "position_prior_baseline", "constant_first_error"],
                    "baselines"),
    **dict.fromkeys(["majority_vote", "evaluate_methods", "draw_permutations",
                     "fill_answer_key", "at_largest_n", "trial_standard_errors",
                     "paired_difference", "describe_difference", "problem_bootstrap"],
                    "best_of_n"),
    **dict.fromkeys(["load_scored_samples"], "samples"),
    **dict.fromkeys(["evaluation_pool", "figure3_note"], "pools"),
    **dict.fromkeys(["plot_best_of_n", "plot_calibration", "plot_training_history",
                     "plot_data_curves", "add_caption", "plot_trial_spread",
                     "plot_interval", "plot_step_auc_curve"], "plots"),
    **dict.fromkeys(["render_label_positions", "render_scored_solution", "checked_solution"],
                    "display"),
    **dict.fromkeys(["step_score_widget"], "widgets"),
    **dict.fromkeys(["record", "precomputed"], "results"),
}

__all__ = ["__version__", "best_of_n", *sorted(_EXPORTS)]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prm_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
