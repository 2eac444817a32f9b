"""Headline numbers that chapters compute, collected into the book's results table.

A chapter calls :func:`record` for each number worth putting next to the paper's. When
the book is built by ``scripts/build_book.py``, ``$PRM_RESULTS_DIR`` points at a folder
of the build and the numbers land there, one JSON line each; the build then writes the
table in the introduction from them (:func:`results_markdown`). Run interactively, with
the variable unset, :func:`record` only returns the row: nothing is written.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

__all__ = ["RESULTS_ENV", "record", "collect", "results_markdown", "precomputed_path",
           "precomputed"]

RESULTS_ENV = "PRM_RESULTS_DIR"


def record(chapter: str, name: str, value: float, *, scale: str, paper: float | None = None,
           paper_source: str = "", unit: str = "", note: str = "") -> dict:
    """Record one number computed by a chapter.

    Args:
        chapter: the chapter's file name without extension, e.g. ``"02_training_the_prm"``.
        name: what the number is, as a reader would say it.
        value: the number this run computed.
        scale: the scale it ran at.
        paper: the paper's number for the same quantity, if it reports one.
        paper_source: where in the paper (e.g. ``"Table 3"``).
        unit: e.g. ``"%"``.
        note: the setting in a few words (model, data size, N).
    """
    row = {"chapter": chapter, "name": name, "value": float(value), "unit": unit,
           "scale": scale, "paper": paper, "paper_source": paper_source, "note": note}
    folder = os.environ.get(RESULTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with (Path(folder) / f"{chapter}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row


def collect(folder: str | os.PathLike) -> pd.DataFrame:
    """Every recorded number in ``folder``, in chapter order (last record of a name wins)."""
    rows = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return pd.DataFrame(columns=["chapter", "name", "value", "unit", "scale", "paper",
                                     "paper_source", "note"])
    return pd.DataFrame(rows).drop_duplicates(["chapter", "name"], keep="last")


def _fmt(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.1f}" if unit == "%" else f"{value:.3f}"
    return text + (unit if unit == "%" else "")


def results_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table: chapter, quantity, this book, the paper, the setting."""
    if frame.empty:
        return "*No chapter has recorded a result in this build.*\n"
    lines = ["| chapter | quantity | this book | paper | setting |",
             "|---|---|---|---|---|"]
    for r in frame.itertuples():
        paper = _fmt(r.paper, r.unit) + (f" ({r.paper_source})" if r.paper_source else "")
        link = f"[{r.chapter[:2]}](../notebooks/{r.chapter}.ipynb)"
        lines.append(f"| {link} | {r.name} | {_fmt(r.value, r.unit)} | {paper} | "
                     f"{r.scale}: {r.note} |")
    return "\n".join(lines) + "\n"


def precomputed_path(name: str) -> Path:
    """Where the package keeps a precomputed result file (``prm_lib/precomputed/``): the
    numbers of points too costly for a chapter's time, computed once by a committed script
    under ``experiments/`` whose command each file records."""
    return Path(__file__).parent / "precomputed" / name


def precomputed(name: str) -> pd.DataFrame:
    """A precomputed result file (see :func:`precomputed_path`) as a table.

    Raises:
        FileNotFoundError: no such file; it names the folder and what it holds.
    """
    path = precomputed_path(name)
    if not path.is_file():
        held = sorted(p.name for p in path.parent.glob("*.csv"))
        raise FileNotFoundError(f"no precomputed result {name!r} in {path.parent} (it "
                                f"holds: {', '.join(held) or 'nothing'}); the scripts under "
                                "experiments/ write these files")
    return pd.read_csv(path)
