"""Chapter 4's pool: the paper's scored samples when they are present (the laboratory's
fallback is tested in test_lab_evaluation.py, beside its cached runs)."""

import json
import sys

from prm_lib.paper import PAPER_N_TRIALS, PAPER_NS, PAPER_POOL_SIZE
from prm_lib.pools import evaluation_pool, figure3_note


def test_figure3_note_quotes_the_paper():
    note = figure3_note()
    assert all(v in note for v in ("78.2", "72.4", "69.6", "Fig. 3", "1,860"))


def test_the_papers_samples_are_used_when_present(tmp_path):
    target = tmp_path / "prm800k" / "scored-test-samples.jsonl"
    target.parent.mkdir()
    lines = [{"problem": f"P{p}", "given_answer": str(i % 3), "is_correct": i % 3 == 0,
              "prm_score": i / 10, "orm_score": 1 - i / 10} for p in range(3) for i in range(5)]
    target.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    pool = evaluation_pool("tiny", data_dir=tmp_path, seed=0)
    assert pool.is_paper and pool.lab is None and pool.unavailable is None
    assert pool.ns == PAPER_NS and pool.pad_to == PAPER_POOL_SIZE
    from prm_lib.config import get_scale

    assert pool.n_trials == get_scale("tiny").lab.trials
    assert len(pool.samples) == 15 and pool.spread_ns[-1] == PAPER_POOL_SIZE
    assert evaluation_pool("laptop", data_dir=tmp_path).n_trials == PAPER_N_TRIALS == 400


def test_importing_pools_leaves_the_laboratory_alone():
    import subprocess

    code = ("import sys, prm_lib.pools; "
            "print(any(m.startswith('prm_lib.lab') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
