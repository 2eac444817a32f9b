"""Progress bars that a batch run can switch off.

Every long loop of the package shows a ``tqdm`` bar (a widget in JupyterLab and Colab).
A notebook executed in batch (papermill, ``scripts/build_book.py``) has no one watching,
and its saved copy would keep each widget frozen at "0%". So bars honour tqdm's own
switch: with ``TQDM_DISABLE=1`` in the environment no bar is drawn, neither this
package's nor those of transformers and the Hub (``build_book.py`` sets it).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["progress_bar", "quiet_loading", "bars_follow_batch_switch", "BATCH_ENV"]

#: Environment a batch run of the chapters sets: no progress bars from any library.
BATCH_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _batch_run() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A ``tqdm.auto`` bar over ``iterable``; none when ``enabled`` is False or when
    ``TQDM_DISABLE`` is set (the bar then still works as a plain iterator/counter).

    The switch is read here because the notebook flavour of tqdm (what ``tqdm.auto``
    gives in a kernel) does not read ``TQDM_DISABLE`` itself."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or _batch_run(), **kwargs)


@contextlib.contextmanager
def bars_follow_batch_switch(module):
    """Within the block, the ``tqdm`` that a third-party ``module`` imported draws
    through :func:`progress_bar`, so that ``TQDM_DISABLE`` silences it in a notebook too
    (e.g. transformers' GGUF conversion, which calls ``tqdm.auto.tqdm`` directly)."""
    original = module.tqdm
    module.tqdm = lambda *args, **kwargs: progress_bar(*args, **kwargs)
    try:
        yield
    finally:
        module.tqdm = original


@contextlib.contextmanager
def quiet_loading():
    """Load (or save) models without transformers' "Loading weights" ("Writing model
    shards") bar: the laboratory loads one model per reward model, dozens a chapter, and
    one bar each would drown the page."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
