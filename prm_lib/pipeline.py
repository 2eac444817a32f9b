"""Moved to :mod:`prm_lib.runs` (``train_prm`` -> ``prm_run``, ``train_orm`` -> ``orm_run``);
kept until every caller has moved."""
from .runs import orm_run as train_orm, prm_run as train_prm, run_dir, untrained_prm  # noqa: F401
