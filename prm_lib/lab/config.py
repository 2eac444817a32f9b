"""Moved: the laboratory's sizes are :class:`prm_lib.config.LabConfig`, the ``lab`` of
every scale (``get_scale(name).lab``). Kept until every caller has moved."""

from ..config import LabConfig as LabScale  # noqa: F401
from ..config import get_scale


def lab_scale(name: str, **overrides):
    """``get_scale(name).lab``, with fields overridden (``rm__learning_rate=...``)."""
    return get_scale(name).lab.with_(**overrides)
