"""Where the data lives: a local folder when you have one, else download and cache.

Every data file has a path inside a *data folder* (the layout of the book's data folder)::

    prm800k/phase1_train.jsonl                     official raw layout (also phase1_test,
                                                   phase2_train, phase2_test)
    prm800k/phase1_train.stepwise-critic.parquet   one rated candidate step per row
    prm800k/phase1_test.stepwise-critic.parquet
    math/math500_test.jsonl                        the paper's 500 evaluation problems
    math/math_splits_train.jsonl                   the paper's 12,000 training problems
    math/math_test.jsonl                           Hendrycks MATH test, 5,000 problems
    math/math_train_answers.parquet                Hendrycks MATH train answers

:func:`locate` looks, in order, in the ``data_dir`` argument, in ``$PRM_DATA_DIR``, and in
the download cache (``$PRM_CACHE_DIR``, default ``~/.cache/prm_lib``); if the file is in
none of them it downloads it from its public source into the cache. With no network and
nothing local it raises :class:`DataNotFoundError`, which says where it looked and how to
provide the file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "DataFile",
    "CATALOG",
    "DataNotFoundError",
    "data_dirs",
    "cache_dir",
    "find_local",
    "locate",
]

DATA_DIR_ENV = "PRM_DATA_DIR"
CACHE_DIR_ENV = "PRM_CACHE_DIR"

_PRM800K = "https://media.githubusercontent.com/media/openai/prm800k/main/prm800k"
_HF = "https://huggingface.co/datasets"


class DataNotFoundError(FileNotFoundError):
    """A data file is neither local nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class DataFile:
    """A file the book can use, and where it comes from.

    Attributes:
        relpath: its path inside a data folder.
        url: a direct download address, or None.
        hf_dataset: a Hugging Face Hub dataset id to download with ``datasets``, or None.
        description: what the file holds, for messages.
    """

    relpath: str
    url: str | None = None
    hf_dataset: str | None = None
    description: str = ""

    @property
    def origin(self) -> str:
        """Where the file is published, for messages."""
        if self.url:
            return self.url
        if self.hf_dataset:
            return f"{_HF}/{self.hf_dataset}"
        return "no public download (provide it locally)"


def _catalog() -> dict[str, DataFile]:
    files = []
    for split in ("phase1_train", "phase1_test", "phase2_train", "phase2_test"):
        files.append(
            DataFile(
                f"prm800k/{split}.jsonl",
                url=f"{_PRM800K}/data/{split}.jsonl",
                description=f"PRM800K {split}, official raw layout",
            )
        )
    for split in ("phase1_train", "phase1_test"):
        files.append(
            DataFile(
                f"prm800k/{split}.stepwise-critic.parquet",
                hf_dataset=f"Birchlabs/openai-prm800k-{split}-stepwise-critique",
                description=f"PRM800K {split}, stepwise-critic layout",
            )
        )
    files += [
        DataFile(
            "math/math500_test.jsonl",
            url=f"{_PRM800K}/math_splits/test.jsonl",
            description="MATH500, the paper's 500 evaluation problems",
        ),
        DataFile(
            "math/math_splits_train.jsonl",
            url=f"{_PRM800K}/math_splits/train.jsonl",
            description="the paper's 12,000 training problems (MATH train + 4,500 of test)",
        ),
        DataFile("math/math_test.jsonl", description="Hendrycks MATH test set"),
        DataFile("math/math_train_answers.parquet", description="Hendrycks MATH train answers"),
    ]
    return {f.relpath: f for f in files}


#: Every file the book knows, by its path inside a data folder.
CATALOG: dict[str, DataFile] = _catalog()


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The local folders searched, in order: ``data_dir``, then ``$PRM_DATA_DIR``."""
    dirs = []
    for d in (data_dir, os.environ.get(DATA_DIR_ENV)):
        if d:
            p = Path(d).expanduser()
            if not p.is_dir():
                raise DataNotFoundError(
                    f"data folder {p} does not exist"
                    + (f" (from ${DATA_DIR_ENV})" if d is not data_dir else "")
                    + "; point it at a folder holding prm800k/ and math/ subfolders, "
                    "or unset it to download the files"
                )
            dirs.append(p)
    return dirs


def cache_dir() -> Path:
    """The download cache: ``$PRM_CACHE_DIR``, else ``~/.cache/prm_lib``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or "~/.cache/prm_lib").expanduser()


def find_local(relpath: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local copy of ``relpath`` (data folders, then the cache), or None."""
    for d in [*data_dirs(data_dir), cache_dir()]:
        p = d / relpath
        if p.is_file():
            return p
    return None


def locate(
    relpath: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The path of data file ``relpath``, downloading it into the cache if needed.

    Raises:
        DataNotFoundError: not local, and not downloadable (offline, or no public
            source); the message lists the folders searched and how to fix it.
    """
    found = find_local(relpath, data_dir)
    if found is not None:
        return found
    entry = CATALOG.get(relpath, DataFile(relpath))
    searched = [str(d) for d in data_dirs(data_dir)] + [str(cache_dir())]
    reason = "downloading is switched off"
    if download and (entry.url or entry.hf_dataset):
        try:
            return _download(entry)
        except Exception as exc:  # network errors come in many types
            reason = f"the download from {entry.origin} failed: {exc}"
    elif download:
        reason = "it has no public download address"
    raise DataNotFoundError(
        f"{relpath} ({entry.description or 'data file'}) was not found in "
        f"{', '.join(searched)}, and {reason}.\n"
        f"Fix: put the file at <folder>/{relpath} and pass data_dir=<folder> or set "
        f"{DATA_DIR_ENV}=<folder>; it is published at {entry.origin}."
    )


def _download(entry: DataFile) -> Path:
    """Fetch ``entry`` into the cache atomically (a partial file never looks complete)."""
    target = cache_dir() / entry.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        if entry.url:
            _fetch_url(entry.url, tmp_path, entry.relpath)
        else:
            _fetch_hf_dataset(entry.hf_dataset, tmp_path)
        shutil.move(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def _fetch_url(url: str, dest: Path, label: str) -> None:
    from .progress import progress_bar

    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with progress_bar(total=total, unit="B", unit_scale=True, desc=f"downloading {label}") as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    with dest.open("rb") as f:  # Git LFS serves a tiny pointer file when it cannot serve data
        if f.read(40).startswith(b"version https://git-lfs"):
            raise OSError(f"{url} returned a Git LFS pointer instead of the data")


def _fetch_hf_dataset(repo_id: str, dest: Path) -> None:
    import datasets

    ds = datasets.load_dataset(repo_id, split="train")
    ds.to_parquet(str(dest))
