"""The paper's numbers, each with the figure, table or section it comes from.

Lightman et al. 2023, "Let's Verify Step by Step" (arXiv:2305.20050). Every number the
book sets beside its own lives here, once, so a chapter or a figure quotes it by name and
labels it with its ``*_SOURCE``. This module sits beside the flow load -> format ->
train -> score -> evaluate -> plot: the evaluation stages and the figures read from it;
it reads nothing.
"""

from __future__ import annotations

__all__ = [
    "PAPER",
    "PAPER_NS",
    "PAPER_POOL_SIZE",
    "PAPER_N_TRIALS",
    "PAPER_BEST_OF_1860",
    "PAPER_FIGURE_3_SOURCE",
    "PAPER_TABLE_4",
    "PAPER_TABLE_4_SOURCE",
    "PAPER_TABLE_3",
    "PAPER_TABLE_3_SOURCE",
    "PAPER_PHASE_1_LABEL_SHARE",
    "PAPER_FIGURE_4_N",
    "PAPER_FIGURE_4_SAMPLES_PER_PROBLEM",
    "PAPER_FIGURE_4_WRONG_STEP_THRESHOLD",
    "PAPER_FIGURE_4_SOURCE",
    "PAPER_ACTIVE_LEARNING_EFFICIENCY",
    "PAPER_ACTIVE_LEARNING_POOL",
    "PAPER_ACTIVE_LEARNING_WRONG_SHARE",
    "PAPER_ACTIVE_LEARNING_SOURCE",
]

#: How figures cite the paper.
PAPER = "Lightman et al. 2023"

# --------------------------------------------------------------------------- Figure 3

#: The N grid of best-of-N (the official evaluation script, ``prm800k/eval/eval.py``).
PAPER_NS: tuple[int, ...] = (10, 25, 50, 75, 100, 200, 300, 400, 500, 750, 1000, 1250, 1500, 1860)
#: Samples per MATH500 problem in the released scored samples; the padding size.
PAPER_POOL_SIZE = 1860
#: Trials the official script averages over.
PAPER_N_TRIALS = 400
#: Figure 3: % of MATH500 solved at best-of-1860 (large-scale generator and reward models).
PAPER_BEST_OF_1860: dict[str, float] = {"PRM": 78.2, "ORM": 72.4, "Majority voting": 69.6}
#: Where :data:`PAPER_BEST_OF_1860` comes from, for figure labels.
PAPER_FIGURE_3_SOURCE = f"{PAPER}, Fig. 3"

# --------------------------------------------------------------------------- Table 4

#: Table 4: % of MATH500 solved by best-of-1860 under each PRM scoring rule (keys as in
#: :data:`prm_lib.reward_model.SCORING_RULES`).
PAPER_TABLE_4: dict[str, float] = {
    "product, neutral = correct": 78.2,
    "min, neutral = correct": 77.6,
    "product, neutral = wrong": 77.4,
    "min, neutral = wrong": 77.8,
}
PAPER_TABLE_4_SOURCE = f"{PAPER}, Table 4"

# --------------------------------------------------------------------------- PRM800K

#: Table 3 ("PRM800K statistics"), in percent: (phase 1, phase 2, combined).
PAPER_TABLE_3: dict[str, tuple[float, float, float]] = {
    "% of solutions ending with the correct answer": (85.1, 13.2, 14.2),
    "% of steps rated correct": (58.6, 74.1, 73.1),
}
PAPER_TABLE_3_SOURCE = f"{PAPER}, Table 3"
#: Phase 1's share of PRM800K's labels ("about 5%"); phase 2, the active-learning
#: generations, holds the rest (the paper's account of how PRM800K was collected).
PAPER_PHASE_1_LABEL_SHARE = 0.05

# --------------------------------------------------------------------------- Figure 4

#: Figure 4a's N: small reward models are compared by best-of-500.
PAPER_FIGURE_4_N = 500
#: Figure 4's data sizes run from 1 to 200 samples per problem.
PAPER_FIGURE_4_SAMPLES_PER_PROBLEM: tuple[int, int] = (1, 200)
#: Synthetic process labels: a step is wrong when PRM_large gives it P(negative) > 0.2.
PAPER_FIGURE_4_WRONG_STEP_THRESHOLD = 0.2
PAPER_FIGURE_4_SOURCE = f"{PAPER}, Fig. 4"

# --------------------------------------------------------------------------- Section 4.2

#: Active learning is about 2.6x as data-efficient as uniform labeling: the ratio of the
#: slopes of best-fit lines of performance against log data size.
PAPER_ACTIVE_LEARNING_EFFICIENCY = 2.6
#: Samples per problem the selector PRM scores before choosing what to label.
PAPER_ACTIVE_LEARNING_POOL = 1000
#: Share of the labeled samples that are the most convincing wrong-answer samples; the
#: rest are the most convincing samples that remain.
PAPER_ACTIVE_LEARNING_WRONG_SHARE = 0.8
PAPER_ACTIVE_LEARNING_SOURCE = f"{PAPER}, Sec. 4.2"
