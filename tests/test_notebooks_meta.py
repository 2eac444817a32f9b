"""Every chapter starts the same way: the Colab install cell, then the parameters cell.

The install cell is the first code cell of every notebook in ``notebooks/``, hidden from
the rendered book (tag ``remove-cell``), identical everywhere (so the repository URL is
written the same in every chapter and matches ``_config.yml`` once set there; the how-to
page shows the cell verbatim), and does nothing outside Colab. Then exactly one cell
tagged ``parameters`` sets ``scale``, ``data_dir`` and ``seed``, which papermill and
``scripts/build_book.py`` pass in.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
URL = re.compile(r'^REPO_URL = "([^"]+)"', re.M)
FIND_SPEC = importlib.util.find_spec


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_in_colab_only(path):
    first = code_cells(path)[0]
    assert first.metadata.get("tags") == ["remove-cell"]
    assert '"google.colab" in sys.modules' in first.source
    assert 'importlib.util.find_spec("prm_lib") is None' in first.source
    package = re.search(r'(?m)^name = "([^"]+)"', (REPO / "pyproject.toml").read_text())[1]
    assert f'f"{package} @ git+{{REPO_URL}}"' in first.source
    assert len(URL.findall(first.source)) == 1


def test_install_cell_is_the_same_everywhere_and_matches_the_config():
    sources = {path.name: code_cells(path)[0].source for path in NOTEBOOKS}
    assert len(set(sources.values())) == 1, sources
    (url,) = URL.findall(next(iter(sources.values())))
    assert url.startswith("https://github.com/")
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    configured = (config.get("repository") or {}).get("url")
    assert configured in (None, url), f"_config.yml names {configured}, the notebooks {url}"
    # book/how_to_run.md shows the cell as it is
    assert next(iter(sources.values())) in (REPO / "book" / "how_to_run.md").read_text()


def run_install_cell(monkeypatch, in_colab: bool, installed: bool) -> list:
    """Execute the install cell with Colab and prm_lib faked; returns the pip calls."""
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append(cmd))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", object())
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (FIND_SPEC(name, *a) if installed or name != "prm_lib"
                                          else None))
    exec(code_cells(NOTEBOOKS[0])[0].source, {})
    return calls


def test_install_cell_runs_pip_only_in_colab_without_the_package(monkeypatch):
    assert run_install_cell(monkeypatch, in_colab=False, installed=False) == []
    assert run_install_cell(monkeypatch, in_colab=True, installed=True) == []
    (call,) = run_install_cell(monkeypatch, in_colab=True, installed=False)
    (url,) = URL.findall(code_cells(NOTEBOOKS[0])[0].source)
    assert call == [sys.executable, "-m", "pip", "install", "-q", f"prm_lib @ git+{url}"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_with_scale_data_dir_seed(path):
    cells = code_cells(path)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert tagged[0] == 1, "the parameters cell comes right after the install cell"
    tree = ast.parse(cells[tagged[0]].source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)
    names = [t.id for node in tree.body for t in node.targets]
    assert names == ["scale", "data_dir", "seed"]


def test_colab_check_rewrites_the_url_the_chapters_hold():
    """scripts/colab_check.sh points the install cell at another repository by replacing
    the chapters' REPO_URL text: that text must be the one the chapters hold."""
    script = (REPO / "scripts" / "colab_check.sh").read_text()
    replaced = re.search(r'sed "s#([^#]+)#', script)[1]
    urls = {URL.search(code_cells(p)[0].source)[1] for p in NOTEBOOKS}
    assert urls == {replaced}
    default = re.search(r"\|\| chapters=\(([^)]*)\)", script)[1].split()
    assert default
    for name in default:  # the chapters it runs by default exist
        assert (REPO / "notebooks" / f"{name}.ipynb").is_file()
