"""Finding and downloading data files, and the MATH500 guard."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from prm_lib import sources
from prm_lib.data import load_math500, load_math_problems, load_prm800k
from prm_lib.sources import DataFile, DataNotFoundError, locate
from prm_lib.splits import (
    LIGHTEVAL_SUFFIX,
    NEAR_THRESHOLD,
    LeakError,
    assert_no_math500,
    closest_math500,
    is_math500,
    math500_keys,
    math_signature,
    near_math500,
    ngram_keys,
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


def _math500(data_dir) -> dict[str, str]:
    """unique_id -> problem, from the data folder (the package ships no MATH500 text)."""
    rows = map(json.loads, (data_dir / "math" / "math500_test.jsonl").open())
    return {r["unique_id"]: r["problem"] for r in rows}


def test_shipped_keys_match_the_math500_file(data_dir):
    problems = load_math500(data_dir, download=False)
    assert len(problems) == 500
    assert {problem_key(p.problem) for p in problems} == math500_keys()
    shipped = files("prm_lib").joinpath("math500_ngrams.txt").read_text().splitlines()
    lines = [line.split() for line in shipped if not line.startswith("#")]
    m500 = _math500(data_dir)
    assert [uid for uid, *_ in lines] == list(m500)
    for uid, signature, *grams in lines:  # hashes only: ids, then hex digits
        assert math_signature(m500[uid]) == signature
        assert set(grams) == ngram_keys(m500[uid])
        assert all(re.fullmatch(r"[0-9a-f]+", h) for h in [signature, *grams])


def test_normalisation_catches_respaced_copies(data_dir):
    first = json.loads((data_dir / "math" / "math500_test.jsonl").open().readline())["problem"]
    assert is_math500(first)
    assert is_math500("\n" + first.replace(" ", "\t ").upper() + "  ")
    assert not is_math500(first + " Also find $x+1$.")
    assert normalize_problem("A  b\nC") == "abc"


def test_latex_spellings_and_instructions_are_the_same_problem(data_dir):
    m500 = _math500(data_dir)
    fraction = m500["test/algebra/2584.json"]  # If $f(x) = \\frac{3x-2}{x-2}$, ...
    assert "\\frac" in fraction and "$" in fraction
    respelled = [
        fraction.replace("\\frac", "\\dfrac"),
        fraction.replace("\\frac", "\\tfrac"),
        re.sub(r"\$([^$]*)\$", r"\\(\1\\)", fraction),  # \(...\) for $...$
        re.sub(r"\$([^$]*)\$", r"\\[ \1 \\]", fraction),
        fraction.replace("(", "\\left(").replace(")", "\\right)").replace("-", " \\, - "),
        fraction + LIGHTEVAL_SUFFIX,
        fraction + "\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
        "Problem: " + fraction,
    ]
    for text in respelled:
        assert is_math500(text), text
        with pytest.raises(LeakError, match="1 MATH500 problem"):
            assert_no_math500([text])
    # Spellings of different things stay different.
    assert not is_math500(fraction.replace("\\frac", "\\binom"))
    assert normalize_problem("$\\rightarrow$") != normalize_problem("$\\right arrow$")


def test_reworded_near_copy_is_a_leak(data_dir):
    original = _math500(data_dir)["test/geometry/702.json"]
    reworded = (original.replace("lie on a flat field", "stand in a level meadow")
                .replace("is directly north", "is due north")
                .replace("The balloon is held", "The balloon is kept"))
    assert reworded != original and not is_math500(reworded)
    match = near_math500(reworded)
    assert match is not None and match.unique_id == "test/geometry/702.json"
    assert NEAR_THRESHOLD <= match.overlap < 1 and not match.exact
    with pytest.raises(LeakError, match=r"near-copy of MATH500 test/geometry/702.json") as info:
        assert_no_math500(["What is $1+1$?", reworded], where="rewritten.jsonl")
    message = str(info.value)
    assert "rewritten.jsonl contains 1 MATH500 problem(s) (0 exact, 1 near-copies)" in message
    assert reworded[:40] in message


def test_different_problems_sharing_a_phrase_pass(data_dir):
    m500 = _math500(data_dir)
    letters = m500["test/counting_and_probability/1060.json"]  # ... the word ELLIPSE.
    remainder = m500["test/number_theory/466.json"]  # ... is divided by 9?
    different = [
        letters.replace("ELLIPSE", "BANANA"),  # the same sentence, another word
        remainder.replace("by 9", "by 8"),  # a real PRM800K training problem
        "How many integers are in the solution set of $x^2 < 10$?",
        "Five points lie on a flat field. How many lines pass through two of them?",
        m500["test/geometry/702.json"].split(".")[0] + ". Find the area of the field.",
    ]
    assert_no_math500(different)
    for text in different:
        match = closest_math500(text)
        assert match is None or match.overlap < NEAR_THRESHOLD, (text, match)


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
    assert not any(near_math500(p) for p in train.problems)
    problems = load_math_problems(data_dir, download=False)
    assert sum(p.split == "test" and is_math500(p.problem) for p in problems.values()) == 500
