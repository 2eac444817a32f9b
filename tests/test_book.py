"""The book builds and reads well: scripts/build_book.py at tiny scale, then scripts/check_book.py.

The build test is the slowest of the suite (every chapter runs, then Jupyter Book builds):
it is marked ``slow``; ``pytest -m "not slow"`` leaves it out. The check of the rendered
pages needs Chromium and is skipped, saying so, only when no Chromium is installed.
``PRM_BOOK_ROOT`` builds another book root instead of this repository (for trying the
pipeline on a scratch notebook kept outside the repo).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))  # check_book imports build_book
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


check_book = load_script("check_book")


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def tail(proc: subprocess.CompletedProcess, n: int = 60) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


@pytest.fixture(scope="module")
def book_root() -> Path:
    return Path(os.environ.get("PRM_BOOK_ROOT", REPO)).resolve()


@pytest.fixture(scope="module")
def built_book(tmp_path_factory, data_dir, book_root) -> Path:
    """The HTML of the book built at tiny scale into a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    proc = run(str(SCRIPTS / "build_book.py"), "--scale", "tiny", "--data-dir", str(data_dir),
               "--out", str(out), "--root", str(book_root))
    assert proc.returncode == 0, f"build_book.py failed:\n{tail(proc)}"
    html = out / "_build" / "html"
    assert (html / "index.html").is_file()
    return html


@pytest.mark.slow
def test_book_builds_and_passes_html_checks(built_book, book_root):
    proc = run(str(SCRIPTS / "check_book.py"), str(built_book), "--root", str(book_root),
               "--no-browser")
    assert proc.returncode == 0, f"check_book.py found problems:\n{tail(proc)}"


@pytest.mark.slow
@pytest.mark.skipif(check_book.find_chromium() is None,
                    reason=f"Chromium not found: {check_book.INSTALL_HINT}")
def test_book_renders_in_chromium(built_book, book_root, tmp_path):
    shots = tmp_path / "screenshots"
    proc = run(str(SCRIPTS / "check_book.py"), str(built_book), "--root", str(book_root),
               "--screenshots", str(shots))
    assert proc.returncode == 0, f"check_book.py found problems:\n{tail(proc)}"
    pngs = sorted(shots.glob("*.png"))
    assert pngs and all(p.stat().st_size > 10_000 for p in pngs), pngs


def test_check_book_reports_what_a_reader_would_see(tmp_path, capsys):
    """The HTML checks catch an external script, a missing page, no figure and a traceback."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        "  - file: notebooks/01_a\n  - file: notebooks/02_b\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name in ("01_a", "02_b"):
        (root / "notebooks" / f"{name}.ipynb").write_text(json.dumps({"cells": []}))

    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "notebooks").mkdir()
    (html / "book" / "intro.html").write_text(
        '<html><head><script src="https://cdn.example.org/mathjax.js"></script>'
        '<link rel="stylesheet" href="../_static/missing.css"></head><body></body></html>')
    (html / "notebooks" / "01_a.html").write_text(
        '<html><body><div class="cell_output"><div class="output traceback">'
        "ZeroDivisionError: division by zero</div></div></body></html>")

    assert check_book.main([str(html), "--root", str(root), "--no-browser"]) == 1
    report = capsys.readouterr().err
    assert "notebooks/02_b: listed in _toc.yml but notebooks/02_b.html was not built" in report
    assert "book/intro.html: <script> loads https://cdn.example.org/mathjax.js" in report
    assert "../_static/missing.css, which is not in the build" in report
    assert "notebooks/01_a: no figure" in report
    assert "notebooks/01_a: error output in the page: ZeroDivisionError" in report


def test_check_noise_finds_warnings_and_frozen_progress_bars(tmp_path):
    """A chapter saved with a warning or a progress bar in its outputs is a problem; the
    same words in ordinary text are not."""
    def notebook(*outputs):
        return {"cells": [{"cell_type": "code", "source": "", "outputs": list(outputs)}]}

    clean = notebook({"output_type": "stream", "name": "stdout",
                      "text": "the ORM is warned about nothing; 95% of steps\n"})
    warned = notebook({"output_type": "stream", "name": "stderr",
                       "text": "x.py:3: FutureWarning: `past_key_values` is deprecated\n"})
    frozen = notebook({"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "scoring (prm):   0%|          | 0/3 [00:00<?, ?it/s]"}})
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, nb in (("clean", clean), ("warned", warned), ("frozen", frozen)):
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    found = {}
    for name in ("clean", "warned", "frozen", "missing"):
        problems: list[str] = []
        check_book.check_noise(tmp_path, f"notebooks/{name}", problems)
        found[name] = problems
    assert found["clean"] == []
    assert len(found["warned"]) == 1 and "warning" in found["warned"][0]
    assert len(found["frozen"]) == 1 and "progress bar" in found["frozen"][0]
    assert "no executed notebook" in found["missing"][0]
