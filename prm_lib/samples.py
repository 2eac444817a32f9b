"""Scored solution samples: the pools that best-of-N evaluation draws from.

Every source loads into one table, one row per sample:

========== =====================================================================
column     meaning
========== =====================================================================
problem    the problem (its text, or an id): samples with equal values share a pool
sample_id  the sample's id in the file (``sample_id`` field, else its 0-based line/row)
steps      the solution's steps (list of str; empty when the file has none)
answer     the final answer (str), or None when the solution reached no answer
is_correct whether ``answer`` is correct (bool; False when there is no answer)
*_score    one float column per reward model, e.g. ``prm_score``, ``orm_score``;
           NaN when missing
========== =====================================================================

Sources:

* :func:`load_scored_samples`: the paper's released samples for Figure 3,
  ``scored-test-samples.jsonl`` (up to 1,860 samples for each MATH500 problem, scored by
  the large-scale PRM and ORM). OpenAI's evaluation script (``prm800k/eval/eval.py``)
  reads it from ``az://openaipublic/process-supervision/scored-test-samples.jsonl``, whose
  public HTTPS address is :data:`SCORED_SAMPLES_URL`. The fields that script reads are
  ``problem``, the answer (``answer``, or ``given_answer`` when there is no ``answer``
  key), ``is_correct``, ``prm_score`` and ``orm_score``.
* :func:`load_sample_table`: any JSONL (optionally ``.gz``) or parquet file with those
  fields, e.g. samples you scored with your own PRM.

Validation follows what the official script would touch: every sample needs ``problem``;
a sample **with an answer** also needs ``is_correct`` and every score field (their values
may be null, read as NaN for scores); a sample without an answer is never a candidate, so
missing ``is_correct`` or scores there are read as False / NaN. Bad input never
disappears silently: ``on_error="raise"`` stops at the first bad line naming
``file:line`` and the field; ``on_error="skip"`` skips bad lines, counts them by reason in
``table.attrs["load_report"]`` and warns with a summary.
"""

from __future__ import annotations

import gzip
import math
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .data import DataFormatError, LoadReport, read_json_lines
from .sources import DATA_DIR_ENV, DataNotFoundError, cache_dir as default_cache_dir, data_dirs

__all__ = [
    "SCORED_SAMPLES_URL",
    "SCORED_SAMPLES_RELPATH",
    "SAMPLE_COLUMNS",
    "PAPER_SCORE_COLUMNS",
    "load_scored_samples",
    "load_sample_table",
    "scored_samples_path",
]

#: Public HTTPS address of ``az://openaipublic/process-supervision/scored-test-samples.jsonl``.
SCORED_SAMPLES_URL = (
    "https://openaipublic.blob.core.windows.net/process-supervision/scored-test-samples.jsonl"
)
#: Where the file is looked for inside a data folder and the download cache.
SCORED_SAMPLES_RELPATH = "prm800k/scored-test-samples.jsonl"
#: The columns every sample table has, before its score columns.
SAMPLE_COLUMNS = ("problem", "sample_id", "steps", "answer", "is_correct")
#: The score fields of the paper's released samples.
PAPER_SCORE_COLUMNS = ("prm_score", "orm_score")

_AZ_PREFIX = "az://openaipublic/"
_AZ_HTTPS = "https://openaipublic.blob.core.windows.net/"
# Show a reading progress bar only for files big enough to make a reader wait.
_PROGRESS_MIN_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- finding it


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://", "file://", "az://"))


def _candidates(data_dir) -> list[Path]:
    names = [SCORED_SAMPLES_RELPATH, Path(SCORED_SAMPLES_RELPATH).name]
    names += [n + ".gz" for n in names]
    return [d / n for d in data_dirs(data_dir) for n in names]


def scored_samples_path(
    path_or_url: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The local path of the scored samples, downloading them first if needed.

    Search order: ``path_or_url`` when it is a local path; else a URL in it (``http(s)://``,
    ``file://`` or ``az://openaipublic/...``) downloaded into the cache; else
    ``<data_dir or $PRM_DATA_DIR>/prm800k/scored-test-samples.jsonl`` (also directly in the
    folder, also ``.gz``); else the download cache (``cache_dir``, default
    ``$PRM_CACHE_DIR`` or ``~/.cache/prm_lib``); else a download from
    :data:`SCORED_SAMPLES_URL` into the cache.

    Raises:
        FileNotFoundError: a local path that does not exist.
        DataNotFoundError: nothing local and the download failed or is switched off; the
            message names the URL and how to point at a local copy.
    """
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    url = SCORED_SAMPLES_URL
    if path_or_url is not None:
        text = os.fspath(path_or_url)
        if not _is_url(text):
            path = Path(text).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"scored samples file {path} does not exist; pass the path of your "
                    f"scored-test-samples.jsonl, a URL, or None to find/download it"
                )
            return path
        url = _AZ_HTTPS + text[len(_AZ_PREFIX):] if text.startswith(_AZ_PREFIX) else text
    else:
        for candidate in _candidates(data_dir):
            if candidate.is_file():
                return candidate
    target = cache / "prm800k" / (Path(url.split("?")[0]).name or "scored-test-samples.jsonl")
    if target.is_file():  # downloads are renamed into place only when complete
        return target
    searched = [str(c.parent) for c in _candidates(data_dir)] + [str(target.parent)]
    how = (
        f"If this machine is offline, download {url} elsewhere and either pass its path, "
        f"load_scored_samples('/path/to/scored-test-samples.jsonl'), or put it at "
        f"<folder>/{SCORED_SAMPLES_RELPATH} and set {DATA_DIR_ENV}=<folder>."
    )
    if not download:
        raise DataNotFoundError(
            f"the scored samples are not in {', '.join(dict.fromkeys(searched))} and "
            f"downloading is switched off. {how}"
        )
    try:
        _download(url, target, progress=progress)
    except (OSError, ValueError) as exc:  # URLError is an OSError; bad URLs are ValueErrors
        raise DataNotFoundError(
            f"could not download the scored samples from {url}: {exc}. "
            f"Also looked for a local copy in {', '.join(dict.fromkeys(searched))}. {how}"
        ) from exc
    return target


def _download(url: str, target: Path, progress: bool = True) -> None:
    """Fetch ``url`` to ``target`` through a ``.part`` file renamed only when complete."""
    from .progress import progress_bar

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(total=total, unit="B", unit_scale=True, enabled=progress,
                      desc=f"downloading {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and part.stat().st_size != total:
            raise OSError(f"download stopped early: {part.stat().st_size} of {total} bytes")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def load_scored_samples(
    path_or_url: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    on_error: str = "raise",
    with_steps: bool = True,
    extra_fields: Sequence[str] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """The paper's scored MATH500 samples (Figure 3) as a sample table.

    Args:
        path_or_url: a local file, a URL, or None to search the data folders and the
            cache and otherwise download (see :func:`scored_samples_path`).
        cache_dir: download cache (default ``$PRM_CACHE_DIR`` or ``~/.cache/prm_lib``).
        data_dir: a local data folder searched before ``$PRM_DATA_DIR``.
        download: False never touches the network.
        on_error: ``"raise"`` or ``"skip"`` (see :func:`load_sample_table`).
        with_steps: False leaves ``steps`` empty, to save memory on the full file.
        extra_fields: further fields to keep as columns (e.g. ``"unique_id"``).
        progress: show download / reading progress bars.

    Returns:
        the sample table with score columns ``prm_score`` and ``orm_score``.
    """
    path = scored_samples_path(path_or_url, cache_dir, data_dir=data_dir, download=download,
                               progress=progress)
    return load_sample_table(path, PAPER_SCORE_COLUMNS, on_error=on_error,
                             with_steps=with_steps, extra_fields=extra_fields, progress=progress)


# --------------------------------------------------------------------------- reading


def load_sample_table(
    path: str | os.PathLike,
    score_columns: Sequence[str] | None = None,
    *,
    on_error: str = "raise",
    with_steps: bool = True,
    extra_fields: Sequence[str] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """Read scored samples from a JSONL (``.jsonl``, ``.jsonl.gz``) or parquet file.

    Args:
        path: the file.
        score_columns: the score fields; None takes every field ending in ``_score``
            (of the first sample line for JSONL, of the columns for parquet).
        on_error: ``"raise"``: the first bad line raises :class:`DataFormatError` naming
            ``file:line`` (``file:row`` for parquet) and the field. ``"skip"``: bad lines
            are skipped and counted in ``table.attrs["load_report"]``, with a warning.
        with_steps: False leaves ``steps`` empty.
        extra_fields: further fields copied as columns (None when absent).
        progress: show a progress bar while reading big JSONL files.

    Returns:
        a DataFrame with :data:`SAMPLE_COLUMNS`, then the score columns (float64, NaN for
        missing), then ``extra_fields``; one row per sample, in file order.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist")
    name = path.name.lower()
    if name.endswith(".parquet"):
        table, report = _read_parquet(path, score_columns, on_error, with_steps, extra_fields)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        table, report = _read_jsonl(path, score_columns, on_error, with_steps, extra_fields,
                                    progress)
    else:
        raise ValueError(f"{path}: unknown sample file type; use .jsonl, .jsonl.gz or .parquet")
    if report.skipped:
        warnings.warn(f"skipped bad samples. {report.summary()}", stacklevel=2)
    table.attrs["load_report"] = report
    return table


class _Columns:
    """Column lists filled line by line, then turned into a DataFrame."""

    def __init__(self, scores: Sequence[str], extra: Sequence[str]):
        self.scores, self.extra = list(scores), list(extra)
        self.data = {c: [] for c in (*SAMPLE_COLUMNS, *self.scores, *self.extra)}

    def frame(self) -> pd.DataFrame:
        d = self.data
        out = pd.DataFrame(
            {
                "problem": d["problem"],
                "sample_id": d["sample_id"],
                "steps": pd.Series(d["steps"], dtype=object),
                "answer": pd.Series(d["answer"], dtype=object),
                "is_correct": np.asarray(d["is_correct"], dtype=bool),
            }
        )
        for c in self.scores:
            out[c] = np.asarray(d[c], dtype=np.float64)
        for c in self.extra:
            out[c] = pd.Series(d[c], dtype=object)
        return out


def _is_null(value) -> bool:
    """None, NaN, pd.NA or NaT (parquet readers use all of them for a missing value)."""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _answer(obj: dict):
    # Same precedence as the official script: an "answer" key wins even when null.
    value = obj["answer"] if "answer" in obj else obj.get("given_answer")
    if _is_null(value):
        return None
    return value if isinstance(value, str) else str(value)


def _steps(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # one string: steps are newline-delimited, as in the paper
        return [s for s in value.split("\n") if s.strip()]
    if isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(s, str) for s in value):
        return list(value)
    raise DataFormatError(f"{where}: field 'steps' must be a list of strings")


def _score(obj: dict, field: str, has_answer: bool, where: str) -> float:
    if field not in obj or obj[field] is None:
        if has_answer and field not in obj:
            raise DataFormatError(
                f"{where}: missing field {field!r} on a sample with an answer; every "
                f"answered sample needs its score (null is allowed and counts as missing)"
            )
        return math.nan
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataFormatError(f"{where}: field {field!r} must be a number, got {value!r}")
    return float(value)


def _correct(obj: dict, has_answer: bool, where: str) -> bool:
    value = obj.get("is_correct")
    if value is None:
        if has_answer:
            raise DataFormatError(
                f"{where}: missing field 'is_correct' on a sample with an answer; grade it "
                "first (prm_lib.grading.grade_answer)"
            )
        return False
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise DataFormatError(f"{where}: field 'is_correct' must be true/false, got {value!r}")


def _parse_line(obj, where: str, cols: _Columns, sample_index: int, with_steps: bool) -> None:
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    problem = obj.get("problem")
    if problem is None or (isinstance(problem, str) and not problem.strip()):
        raise DataFormatError(f"{where}: missing field 'problem'; every sample needs its problem")
    answer = _answer(obj)
    row = {
        "problem": problem,
        "sample_id": obj.get("sample_id", sample_index),
        "steps": _steps(obj.get("steps"), where) if with_steps else [],
        "answer": answer,
        "is_correct": _correct(obj, answer is not None, where),
    }
    row.update({c: _score(obj, c, answer is not None, where) for c in cols.scores})
    row.update({c: obj.get(c) for c in cols.extra})
    for key, value in row.items():  # appended only once the whole line is valid
        cols.data[key].append(value)


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _read_jsonl(path, score_columns, on_error, with_steps, extra, progress):
    from .progress import progress_bar

    report = LoadReport(str(path), "line")
    cols = None if score_columns is None else _Columns(score_columns, extra)
    size = path.stat().st_size
    with _open_text(path) as f, progress_bar(total=size, unit="B", unit_scale=True,
                                     desc=f"reading {path.name}",
                                     enabled=progress and size >= _PROGRESS_MIN_BYTES) as bar:
        def lines():
            for line in f:
                bar.update(len(line))
                yield line

        def handle(obj, where, lineno):
            nonlocal cols
            if cols is None:  # score fields taken from the first sample
                if not isinstance(obj, dict):
                    raise DataFormatError(f"{where}: expected a JSON object")
                cols = _Columns([k for k in obj if k.endswith("_score")], extra)
            _parse_line(obj, where, cols, lineno - 1, with_steps)
            report.counts["sample"] += 1

        read_json_lines(lines(), path, report, on_error, handle)
    if cols is None:
        raise DataFormatError(f"{path}: no samples (the file is empty)")
    table = cols.frame()
    if not table.empty and table["answer"].isna().all() and not _any_answer_field(path):
        raise DataFormatError(
            f"{path}: no line has an 'answer' or 'given_answer' field; is this a file of "
            "scored samples (problem, answer, is_correct, *_score per line)?"
        )
    return table, report


def _any_answer_field(path: Path) -> bool:
    with _open_text(path) as f:
        for line in f:
            if '"answer"' in line or '"given_answer"' in line:
                return True
    return False


def _read_parquet(path, score_columns, on_error, with_steps, extra):
    report = LoadReport(str(path), "row")
    raw = pd.read_parquet(path)
    report.total = len(raw)
    if "answer" not in raw and "given_answer" in raw:
        raw = raw.rename(columns={"given_answer": "answer"})
    if score_columns is None:
        score_columns = [c for c in raw.columns if isinstance(c, str) and c.endswith("_score")]
    missing = [c for c in ("problem", "answer", "is_correct", *score_columns) if c not in raw]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; a sample table needs 'problem', 'answer' "
            f"(or 'given_answer'), 'is_correct' and its score columns. "
            f"Columns present: {list(raw.columns)}"
        )
    answer = np.array([None if _is_null(a) else a if isinstance(a, str) else str(a)
                       for a in raw["answer"]], dtype=object)
    has_answer = np.array([a is not None for a in answer], dtype=bool)
    scores = {}
    for c in score_columns:
        try:
            scores[c] = raw[c].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise DataFormatError(f"{path}: column {c!r} must be numeric") from None
    problems = [
        ("missing field 'problem'", raw["problem"].isna().to_numpy()),
        ("missing field 'is_correct' on a sample with an answer",
         raw["is_correct"].isna().to_numpy() & has_answer),
    ]
    bad = np.zeros(len(raw), dtype=bool)
    for reason, mask in problems:
        if mask.any():
            rows = np.flatnonzero(mask)
            if on_error == "raise":
                raise DataFormatError(
                    f"{path.name}:row {rows[0]}: {reason} ({len(rows)} row(s) in all, first "
                    f"{rows[:5].tolist()}) [file: {path}]"
                )
            for r in rows:
                report.skip(f"{path.name}:row {r}", reason)
            bad |= mask
    keep = ~bad
    report.counts["sample"] += int(keep.sum())
    steps = raw["steps"] if with_steps and "steps" in raw else None
    table = pd.DataFrame(
        {
            "problem": raw["problem"].to_numpy()[keep],
            "sample_id": (raw["sample_id"].to_numpy() if "sample_id" in raw
                          else np.arange(len(raw)))[keep],
            "steps": pd.Series(
                [[] if steps is None else _steps(s, f"{path.name}:row {i}")
                 for i, s in zip(np.flatnonzero(keep), (steps[keep] if steps is not None
                                                         else [None] * int(keep.sum())))],
                dtype=object,
            ),
            "answer": pd.Series(answer[keep], dtype=object),
            "is_correct": raw["is_correct"].fillna(False).astype(bool).to_numpy()[keep],
        }
    )
    for c in score_columns:
        table[c] = scores[c][keep]
    for c in extra:
        table[c] = pd.Series(raw[c].to_numpy()[keep] if c in raw else [None] * int(keep.sum()),
                             dtype=object)
    return table, report
