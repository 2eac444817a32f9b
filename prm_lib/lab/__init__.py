"""The offline laboratory (chapters 5-7): the paper's small-scale experiments on problems
whose every step a program can check.

* :mod:`~prm_lib.lab.problems`: the problems and the exact step checker;
* :mod:`~prm_lib.lab.generator`: a small generator LM trained from scratch, and sampling
  (through :func:`prm_lib.generation.generate_samples`, the book's one sampler);
* :mod:`~prm_lib.lab.build`: :func:`build_lab`, the cached laboratory (its sizes are the
  ``lab`` of every :class:`prm_lib.config.Scale`);
* :mod:`~prm_lib.lab.experiments`: reward models under three kinds of supervision,
  the data curves of Figure 4, active learning;
* :mod:`~prm_lib.lab.readout`: reward models that read a step's verdict from the
  fine-tuned generator's token probabilities;
* :mod:`~prm_lib.lab.evaluation`: the test pool scored by the laboratory's reward models,
  scoring rules (Table 4), examples for the widget.

The names the chapters use are importable from ``prm_lib.lab`` itself, each loaded from
its module on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["LabProblem", "make_problems", "reference_steps", "check_steps",
                     "misconceptions", "fact_rates"], "problems"),
    **dict.fromkeys(["Laboratory", "build_lab", "validation_lab"], "build"),
    **dict.fromkeys(["SUPERVISIONS", "LabRun", "train_lab_rm", "train_lab_rms", "rm_workers",
                     "solved_at_pool",
                     "solved_per_problem",
                     "select_uniform", "select_active", "active_learning_sizes", "data_curve",
                     "fit_log_lines",
                     "efficiency_ratio", "sample_shares", "reference_lines",
                     "generator_loglik", "pick_profile", "readout_targets", "pool_step_probs",
                     "distinct_samples"],
                    "experiments"),
    **dict.fromkeys(["LikelihoodReadout", "train_readout"], "readout"),
    **dict.fromkeys(["LABELS", "powers_of_two", "lab_reward_models", "scored_test_pool",
                     "score_columns", "scoring_rule_table", "neutral_step_summary",
                     "neutral_penalty", "widget_examples"], "evaluation"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prm_lib.lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
