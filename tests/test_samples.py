"""Loading scored samples: the paper's file layout, validation, local copies and downloads.

Every file here is written by the test itself; nothing reaches the network (downloads are
exercised with ``file://`` URLs).
"""

from __future__ import annotations

import gzip
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from prm_lib import samples as samples_mod
from prm_lib.best_of_n import best_of_n, majority_vote
from prm_lib.data import DataFormatError
from prm_lib.samples import (
    SAMPLE_COLUMNS,
    SCORED_SAMPLES_RELPATH,
    load_sample_table,
    load_scored_samples,
    scored_samples_path,
)
from prm_lib.sources import DataNotFoundError


def line(problem="What is 1+1?", answer="2", is_correct=True, prm=0.9, orm=0.8, **extra):
    obj = {"problem": problem, "answer": answer, "is_correct": is_correct,
           "prm_score": prm, "orm_score": orm}
    obj.update(extra)
    return obj


def write(path, objs):
    with path.open("w") as f:
        for o in objs:
            f.write((o if isinstance(o, str) else json.dumps(o)) + "\n")
    return path


GOOD = [
    line(steps=["1+1 is 2.", "# Answer\n\n2"]),
    line(answer="3", is_correct=False, prm=0.2, orm=None, steps="Add.\nSo 3."),
    {"problem": "What is 1+1?", "given_answer": " 2 ", "is_correct": True,
     "prm_score": 0.5, "orm_score": 0.5},
    # No answer: the official script never reads is_correct or scores here.
    {"problem": "What is 2+2?", "answer": None},
    # "answer" wins even when null, as in the official script.
    {"problem": "What is 2+2?", "answer": None, "given_answer": "4", "is_correct": True,
     "prm_score": 0.7, "orm_score": 0.7},
]


def test_jsonl_layout_and_columns(tmp_path):
    table = load_sample_table(write(tmp_path / "s.jsonl", GOOD))
    assert list(table.columns) == [*SAMPLE_COLUMNS, "prm_score", "orm_score"]
    assert table["sample_id"].tolist() == [0, 1, 2, 3, 4]
    assert table["answer"].tolist() == ["2", "3", " 2 ", None, None]
    assert table["is_correct"].tolist() == [True, False, True, False, True]
    assert table["steps"][0] == ["1+1 is 2.", "# Answer\n\n2"]
    assert table["steps"][1] == ["Add.", "So 3."]
    assert table["steps"][2] == []
    assert math.isnan(table["orm_score"][1]) and math.isnan(table["prm_score"][3])
    assert table["is_correct"].dtype == bool and table["prm_score"].dtype == np.float64
    report = table.attrs["load_report"]
    assert report.counts["sample"] == 5 and not report.skipped


def test_score_columns_are_chosen_or_detected(tmp_path):
    path = write(tmp_path / "s.jsonl", [line(my_score=0.1), line(my_score=0.3)])
    assert list(load_sample_table(path).columns)[-3:] == ["prm_score", "orm_score", "my_score"]
    table = load_sample_table(path, ["my_score"], extra_fields=["unique_id"])
    assert list(table.columns) == [*SAMPLE_COLUMNS, "my_score", "unique_id"]
    assert table["unique_id"].isna().all()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"answer": "2", "is_correct": True, "prm_score": 1, "orm_score": 1}, "'problem'"),
        (line(is_correct=None), "'is_correct'"),
        ({k: v for k, v in line().items() if k != "prm_score"}, "'prm_score'"),
        (line(prm="high"), "'prm_score' must be a number"),
        (line(steps=[1, 2]), "'steps'"),
        ("[1, 2]", "expected a JSON object"),
        ('{"problem": "x", "answer": ', "not valid JSON"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, bad, message):
    path = write(tmp_path / "bad.jsonl", [line(), line(), bad, line()])
    with pytest.raises(DataFormatError, match=message) as info:
        load_sample_table(path, ["prm_score", "orm_score"])
    assert "bad.jsonl:3" in str(info.value)


def test_unanswered_samples_may_lack_grade_and_scores(tmp_path):
    path = write(tmp_path / "s.jsonl", [line(), {"problem": "What is 1+1?"}])
    table = load_sample_table(path, ["prm_score", "orm_score"])
    assert table["answer"][1] is None and not table["is_correct"][1]
    assert np.isnan(table.loc[1, ["prm_score", "orm_score"]].to_numpy(float)).all()


def test_skip_mode_counts_and_warns(tmp_path):
    path = write(tmp_path / "s.jsonl", [line(), "{not json", "", line(is_correct=None), line()])
    with pytest.warns(UserWarning, match="2 skipped") as record:
        table = load_sample_table(path, on_error="skip")
    assert len(table) == 2 and table["sample_id"].tolist() == [0, 4]
    report = table.attrs["load_report"]
    assert report.total == 5 and report.accounted
    assert report.counts == {"sample": 2, "skipped": 2, "blank": 1}
    assert "s.jsonl:2" in str(record[0].message)


def test_gzip_jsonl(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(o) for o in GOOD) + "\n")
    assert len(load_sample_table(path)) == len(GOOD)


def test_parquet_tables(tmp_path):
    frame = pd.DataFrame({
        "problem": ["a", "a", "b"],
        "given_answer": ["1", None, "2"],
        "is_correct": [True, None, False],
        "prm_score": [0.4, None, 0.9],
        "steps": [["s1", "s2"], [], ["t"]],
    })
    frame.to_parquet(tmp_path / "s.parquet")
    table = load_sample_table(tmp_path / "s.parquet")
    assert list(table.columns) == [*SAMPLE_COLUMNS, "prm_score"]
    assert table["answer"].tolist() == ["1", None, "2"]
    assert table["is_correct"].tolist() == [True, False, False]
    assert table["steps"][0] == ["s1", "s2"] and table["sample_id"].tolist() == [0, 1, 2]

    frame.drop(columns=["is_correct"]).to_parquet(tmp_path / "no_grade.parquet")
    with pytest.raises(DataFormatError, match=r"no_grade\.parquet.*'is_correct'"):
        load_sample_table(tmp_path / "no_grade.parquet")

    frame.assign(is_correct=[None, None, True]).to_parquet(tmp_path / "ungraded.parquet")
    with pytest.raises(DataFormatError, match=r"ungraded\.parquet:row 0: missing field 'is_co"):
        load_sample_table(tmp_path / "ungraded.parquet")
    with pytest.warns(UserWarning, match="skipped"):
        table = load_sample_table(tmp_path / "ungraded.parquet", on_error="skip")
    assert table["sample_id"].tolist() == [1, 2]


def test_unknown_file_type_and_missing_file(tmp_path):
    (tmp_path / "s.csv").write_text("problem\n")
    with pytest.raises(ValueError, match="unknown sample file type"):
        load_sample_table(tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_sample_table(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------- finding it


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PRM_DATA_DIR", raising=False)
    monkeypatch.setenv("PRM_CACHE_DIR", str(tmp_path / "default-cache"))
    # Any accidental download of the real file fails fast and offline.
    monkeypatch.setattr(samples_mod, "SCORED_SAMPLES_URL", (tmp_path / "offline.jsonl").as_uri())


def test_local_path_and_data_dir(no_env, tmp_path, monkeypatch):
    local = write(tmp_path / "mine.jsonl", GOOD)
    assert len(load_scored_samples(local)) == len(GOOD)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_scored_samples(tmp_path / "missing.jsonl")

    data = tmp_path / "data"
    (data / "prm800k").mkdir(parents=True)
    write(data / SCORED_SAMPLES_RELPATH, GOOD[:2])
    monkeypatch.setenv("PRM_DATA_DIR", str(data))
    table = load_scored_samples()
    assert len(table) == 2 and list(table.columns)[-2:] == ["prm_score", "orm_score"]


def test_download_into_cache_then_reuse(no_env, tmp_path):
    source = write(tmp_path / "scored-test-samples.jsonl", GOOD)
    cache = tmp_path / "cache"
    table = load_scored_samples(source.as_uri(), cache_dir=cache, progress=False)
    cached = cache / "prm800k" / "scored-test-samples.jsonl"
    assert len(table) == len(GOOD) and cached.is_file()
    assert not list(cache.rglob("*.part"))
    source.unlink()  # the cached copy is used from now on
    assert scored_samples_path(source.as_uri(), cache_dir=cache) == cached


def test_az_address_maps_to_the_public_blob(no_env, tmp_path):
    cache = tmp_path / "cache"
    (cache / "prm800k").mkdir(parents=True)
    write(cache / SCORED_SAMPLES_RELPATH, GOOD)
    az = "az://openaipublic/process-supervision/scored-test-samples.jsonl"
    assert scored_samples_path(az, cache_dir=cache) == cache / SCORED_SAMPLES_RELPATH
    https = ("https://openaipublic.blob.core.windows.net/process-supervision/"
             "scored-test-samples.jsonl")
    with pytest.raises(DataNotFoundError, match=re.escape(https)):
        scored_samples_path(az, cache_dir=tmp_path / "empty", download=False)


def test_offline_failure_says_which_url_and_what_to_do(no_env, tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_scored_samples(cache_dir=tmp_path / "cache", progress=False)
    message = str(info.value)
    assert "offline.jsonl" in message and "could not download" in message
    assert "load_scored_samples('/path/to/scored-test-samples.jsonl')" in message
    assert "PRM_DATA_DIR" in message
    assert not list((tmp_path / "cache").rglob("*.part"))
    with pytest.raises(DataNotFoundError, match="downloading is switched off"):
        load_scored_samples(cache_dir=tmp_path / "cache", download=False)


def test_loaded_table_feeds_the_evaluators(tmp_path):
    rng = np.random.default_rng(0)
    objs = [line(problem=f"p{p}", answer=str(a), is_correct=bool(a == 1),
                 prm=float(rng.random()), orm=float(rng.random()))
            for p in range(3) for a in rng.integers(0, 3, size=5)]
    table = load_sample_table(write(tmp_path / "s.jsonl", objs))
    assert best_of_n(table, ns=[1, 5], n_trials=10).solved.shape == (10, 2)
    assert majority_vote(table, ns=[1, 5], n_trials=10).n_problems == 3
