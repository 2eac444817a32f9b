"""Finding and downloading data files, and the MATH500 guard."""

from __future__ import annotations

import json

import pytest

from prm_lib import sources
from prm_lib.data import load_math500, load_math_problems, load_prm800k
from prm_lib.sources import DataFile, DataNotFoundError, locate
from prm_lib.splits import (
    LeakError,
    assert_no_math500,
    is_math500,
    math500_keys,
    normalize_problem,
    problem_key,
)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $PRM_DATA_DIR, an empty cache, and a catalog entry served from a local URL."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(tmp_path / "cache"))
    served = tmp_path / "served.jsonl"
    served.write_text('{"a": 1}\n')
    entry = DataFile("demo/file.jsonl", url=served.as_uri(), description="demo")
    monkeypatch.setitem(sources.CATALOG, entry.relpath, entry)
    return tmp_path


def test_local_folder_wins(isolated):
    folder = isolated / "data"
    (folder / "demo").mkdir(parents=True)
    (folder / "demo" / "file.jsonl").write_text("local\n")
    assert locate("demo/file.jsonl", data_dir=folder).read_text() == "local\n"


def test_env_var_is_a_data_folder(isolated, monkeypatch):
    folder = isolated / "envdata"
    (folder / "demo").mkdir(parents=True)
    (folder / "demo" / "file.jsonl").write_text("env\n")
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(folder))
    assert locate("demo/file.jsonl").read_text() == "env\n"


def test_download_goes_to_the_cache_once(isolated):
    path = locate("demo/file.jsonl")
    assert path == isolated / "cache" / "demo" / "file.jsonl"
    assert path.read_text() == '{"a": 1}\n'
    (isolated / "served.jsonl").unlink()  # a second call must not need the source
    assert locate("demo/file.jsonl") == path
    assert not list(path.parent.glob("*.part"))


def test_offline_error_says_what_to_do(isolated):
    (isolated / "served.jsonl").unlink()
    with pytest.raises(DataNotFoundError) as info:
        locate("demo/file.jsonl")
    msg = str(info.value)
    assert "download" in msg and "PRM_DATA_DIR" in msg and "demo/file.jsonl" in msg
    assert not (isolated / "cache" / "demo" / "file.jsonl").exists()


def test_git_lfs_pointer_is_not_data(isolated):
    (isolated / "served.jsonl").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(DataNotFoundError, match="Git LFS pointer"):
        locate("demo/file.jsonl")


def test_no_download_and_missing_folder(isolated):
    with pytest.raises(DataNotFoundError, match="downloading is switched off"):
        locate("demo/file.jsonl", download=False)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        locate("demo/file.jsonl", data_dir=isolated / "nowhere")


def test_real_files_without_local_copies_fail_clearly_when_offline(isolated):
    with pytest.raises(DataNotFoundError, match="math/math_test.jsonl"):
        locate("math/math_test.jsonl")  # no public download address in the catalog
    with pytest.raises(DataNotFoundError, match="PRM_DATA_DIR"):
        load_prm800k("test", phase=2, download=False)


def test_every_catalog_entry_has_a_source_or_says_so():
    for entry in sources.CATALOG.values():
        assert entry.description
        assert entry.url or entry.hf_dataset or entry.relpath.startswith("math/math_t")


# ------------------------------------------------------------------------- the guard


def test_shipped_keys_match_the_math500_file(data_dir):
    problems = load_math500(data_dir, download=False)
    assert len(problems) == 500
    assert {problem_key(p.problem) for p in problems} == math500_keys()


def test_normalisation_catches_respaced_copies(data_dir):
    first = json.loads((data_dir / "math" / "math500_test.jsonl").open().readline())["problem"]
    assert is_math500(first)
    assert is_math500("\n" + first.replace(" ", "\t ").upper() + "  ")
    assert not is_math500(first + " Also find $x+1$.")
    assert normalize_problem("A  b\nC") == "abc"


def test_guard_raises_and_names_the_problem(data_dir):
    first = json.loads((data_dir / "math" / "math500_test.jsonl").open().readline())["problem"]
    assert_no_math500(["What is $1+1$?"])
    with pytest.raises(LeakError, match="my file contains 1 MATH500") as info:
        assert_no_math500(["What is $1+1$?", first, first], where="my file")
    assert first[:40] in str(info.value)


def test_no_training_problem_is_a_math500_problem(data_dir):
    """The whole MATH-based training pool the book can use: none is in MATH500."""
    train = load_prm800k("train", data_dir=data_dir, download=False, join_answers=False)
    assert not any(is_math500(p) for p in train.problems)
    problems = load_math_problems(data_dir, download=False)
    assert sum(p.split == "test" and is_math500(p.problem) for p in problems.values()) == 500
