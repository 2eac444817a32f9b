"""Shared test fixtures: the real data folder and builders for raw PRM800K lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (``../shared/data``). In CI its absence is a failure."""
    if not (SHARED_DATA / "prm800k").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the real data folder {SHARED_DATA} is missing in CI")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def completion(text: str, rating, flagged=None) -> dict:
    return {"text": text, "rating": rating, "flagged": flagged}


def raw_line(problem: str, steps: list[dict], *, finish="solution", generation=None,
             answer="4", pre_generated_steps=None, **extra) -> dict:
    """One labeled solution in the official raw layout."""
    return {
        "labeler": "00000000-0000-0000-0000-000000000000",
        "timestamp": "2022-07-17T16:56:51.323252",
        "generation": generation,
        "is_quality_control_question": False,
        "is_initial_screening_question": False,
        "question": {
            "problem": problem,
            "ground_truth_solution": f"So the answer is $\\boxed{{{answer}}}$.",
            "ground_truth_answer": answer,
            "pre_generated_steps": pre_generated_steps,
            "pre_generated_answer": None,
            "pre_generated_verifier_score": None,
        },
        "label": {"steps": steps, "total_time": 1234, "finish_reason": finish},
        **extra,
    }


def write_jsonl(path: Path, objs: list) -> Path:
    """Write objects (dicts as JSON, strings verbatim) one per line."""
    with path.open("w") as f:
        for o in objs:
            f.write((o if isinstance(o, str) else json.dumps(o)) + "\n")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: a tiny model's passes are far too small to split
    across threads, and on a busy 2-core machine two OpenMP threads make them 10-40x
    slower. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    """The tiny laboratory, built once per test module in a cache folder of its own (the
    module's reward-model runs stay apart from every other module's)."""
    from prm_lib.lab.build import build_lab

    mp = pytest.MonkeyPatch()
    mp.setenv("PRM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("PRM_DATA_DIR", raising=False)
    yield build_lab("tiny", seed=0, progress=False)
    mp.undo()
