"""Moved to :mod:`prm_lib.lab.build`; kept until every caller has moved."""
from .build import BUILD_FIELDS, Laboratory, build_lab, lab_dir  # noqa: F401
