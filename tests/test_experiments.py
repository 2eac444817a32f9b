"""The experiment scripts run end to end at tiny scale and print their tables."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(script, *args, cache):
    env = {**os.environ, "PRM_CACHE_DIR": str(cache), "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, f"experiments/{script}", "--scale", "tiny", *args],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_recipe_search_prints_its_table_without_the_test_pool(tmp_path):
    out = run("lab_recipe.py", "--recipes", "process, likelihood readout, lr 0.001, 1 epochs",
              "process, label token", "--lab-seeds", "0", "1", cache=tmp_path)
    assert "the test pool is not read" in out
    assert "process, likelihood readout, lr 0.001, 1 epochs" in out
    assert "process, label token" in out and "majority voting" in out
    assert "validation: " in out and "held-out training problems" in out
    # one laboratory per seed, each recipe trained in each
    assert "laboratory seed 0" in out and "laboratory seed 1" in out
    assert len(list((tmp_path / "lab").glob("*/build.json"))) == 2
    assert len(list((tmp_path / "lab").glob("*/rms/*/summary.json"))) == 4
    across = out[out.index("Across 2 laboratory draws"):]
    assert "worst margin over random pick" in across
    setting = across[across.index("Per training setting"):]
    assert "likelihood readout, lr 0.001, 1 epochs" in setting and "label token" in setting


def test_diagnosis_runs_on_a_changed_laboratory(tmp_path):
    out = run("lab_diagnosis.py", "--lab", "rm_head=label_token", cache=tmp_path)
    assert "Verification or riskiness" in out


def test_active_learning_choice_prints_each_variant_without_the_test_pool(tmp_path):
    out = run("lab_active.py", "--variants", "at least 1 step (one epoch)", "--seeds", "2",
              cache=tmp_path)
    assert "the test pool is not read" in out
    assert "at least 1 step (one epoch): ratio" in out
    assert "Narrowest interval: " in out and "Active learning against uniform" in out


def test_prm800k_data_curve_evaluates_every_test_step_and_writes_its_table(tmp_path, data_dir):
    out_csv = tmp_path / "curve.csv"
    out = run("prm800k_data_curve.py", "--fractions", "--data-dir", str(data_dir),
              "--out", str(out_csv), cache=tmp_path)
    import pandas as pd

    table = pd.read_csv(out_csv)
    assert len(table) == 1 and table.chapter_run.all()  # the scale's own run only
    assert (table.test_steps == 5082).all() and (table.ci_low <= table.step_auc).all()
    assert "python experiments/prm800k_data_curve.py" in table.command.iloc[0]
    assert "position prior step AUC" in out
