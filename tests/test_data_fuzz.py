"""Fuzzing the raw PRM800K reader: a malformed line either loads or is a DataFormatError
that names its file and line; nothing else (no bare TypeError, KeyError, ...).

The seed lines are real labeled solutions: the official raw file when the data folder has
it, else the first solutions of the real phase-1 stepwise-critic file written back in the
raw layout (one of them with the phase-2 fields filled, so those are fuzzed too).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections import Counter

import pytest

from prm_lib.data import DataFormatError, load_prm800k, read_raw_jsonl, read_stepwise_critic
from prm_lib.sources import find_local

from .conftest import completion, raw_line

N_LINES = 1500
N_SEEDS = 6

#: Values a field is replaced with: every JSON type, and the awkward ones.
ODD_VALUES = [
    None, 0, 1, -1, 2, 7, 1.5, -0.0, 1.0, math.nan, math.inf, -math.inf, 10 ** 30, -10 ** 400,
    "", " ", "1", "x", "NaN", "solution", "\ud800", "☃ \u200b\u202e\x00é", [], [1], ["a"],
    [{}], {}, {"text": "x"}, {"a": {"b": [None]}}, True, False,
]
#: Text injected into strings and between characters of the JSON text.
ODD_TEXT = ["\ud83d", "\udc00", "\u0000", "\u202e", "é", "\u0301", "😀", "\\", '"', "\n",
            "\\u0000", "\\ud800", "NaN", "Infinity", "9" * 5000, "{", "]", ","]


def _seed_lines(data_dir, n: int) -> list[dict]:
    raw = find_local("prm800k/phase1_train.jsonl", data_dir)
    if raw is not None:
        with raw.open(encoding="utf-8") as f:
            return [json.loads(next(f)) for _ in range(n)]
    swc = data_dir / "prm800k" / "phase1_train.stepwise-critic.parquet"
    lines = []
    for s in read_stepwise_critic(swc)[:n]:
        steps = [{"completions": [completion(c.text, c.rating, c.flagged) for c in p.completions]
                  or [completion(p.human_completion, None)],
                  "human_completion": p.human_completion, "chosen_completion": p.chosen}
                 for p in s.steps]
        lines.append(raw_line(s.problem, steps, finish=s.finish_reason or "solution"))
    phase2 = lines[-1]  # the fields only phase 2 fills
    phase2["generation"] = 3
    phase2["question"].update(pre_generated_steps=[c.text for c in s.trajectory],
                              pre_generated_answer="4", pre_generated_verifier_score=0.25)
    return lines


def _places(obj):
    """Every (container, key) in a JSON value, deepest included."""
    if isinstance(obj, dict):
        items = obj.items()
    else:
        items = enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield obj, key
        yield from _places(value)


def _mutate(rng: random.Random, seed: dict) -> str:
    """One malformed (or still valid) JSONL line made from ``seed``."""
    obj = copy.deepcopy(seed)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        places = list(_places(obj))
        if not places:
            break
        parent, key = rng.choice(places)
        kind = rng.random()
        if kind < 0.15:
            del parent[key]
        elif kind < 0.75:
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind < 0.85 and isinstance(parent[key], str):
            s, i = parent[key], rng.randrange(len(parent[key]) + 1)
            parent[key] = s[:i] + rng.choice(ODD_TEXT) + s[i:]
        elif kind < 0.92 and isinstance(parent[key], list) and parent[key]:
            parent[key].append(copy.deepcopy(rng.choice(parent[key])))
        else:
            parent[key] = [copy.deepcopy(parent[key])]  # wrapped one level deeper
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
    roll = rng.random()
    if roll < 0.1:
        text = text[: rng.randrange(len(text))]  # truncated
    elif roll < 0.2:
        i = rng.randrange(len(text))
        # Damaged JSON text; a line break would make two lines, which the skip-mode
        # check below counts one to one.
        text = text[:i] + rng.choice([t for t in ODD_TEXT if t != "\n"]) + text[i:]
    return text


def test_every_mutated_line_loads_or_names_its_file_and_line(data_dir, tmp_path):
    seeds = _seed_lines(data_dir, N_SEEDS)
    good = json.dumps(seeds[0])
    rng = random.Random(0)
    lines = [_mutate(rng, rng.choice(seeds)) for _ in range(N_LINES)]
    outcomes: Counter = Counter()
    others = []
    path = tmp_path / "fuzz.jsonl"
    for text in lines:
        # The mutated line is line 2, after a good one; bytes that are not UTF-8 too.
        path.write_bytes((good + "\n").encode() + text.encode("utf-8", "surrogatepass")
                         + b"\n")
        try:
            data = load_prm800k("train", path=path, join_answers=False)
            for s in data:  # what the book reads next must work too
                s.trajectory, s.ratings, s.final_answer, s.first_error, s.n_rated
            outcomes["loaded"] += 1
        except DataFormatError as exc:
            outcomes["DataFormatError"] += 1
            if "fuzz.jsonl:2" not in str(exc) or str(path) not in str(exc):
                others.append(f"message without file:line: {exc}")
        except Exception as exc:  # noqa: BLE001 -- the point of the test
            others.append(f"{type(exc).__name__}: {exc!s:.200} <- {text[:200]!r}")
    outcomes["anything else"] = len(others)
    print(f"\n{N_LINES} mutated lines: {dict(outcomes)}")
    assert not others, "\n".join(others[:10])
    assert outcomes["loaded"] + outcomes["DataFormatError"] == N_LINES
    assert outcomes["loaded"] > 50 and outcomes["DataFormatError"] > 500  # both exercised

    # Skip mode reads them all at once and skips exactly the lines raise mode refused.
    all_lines = tmp_path / "all.jsonl"
    all_lines.write_bytes(b"".join(t.encode("utf-8", "surrogatepass") + b"\n" for t in lines))
    with pytest.warns(UserWarning, match="skipped bad input"):
        data = read_raw_jsonl(all_lines, on_error="skip")
    report = data.reports[0]
    assert report.accounted and report.total == N_LINES
    assert report.counts["skipped"] == outcomes["DataFormatError"]
