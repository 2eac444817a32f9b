"""Training on several processes is training on one: the same loss curve at the same
global batch.

The 2-process run is DDP on the CPU (gloo), started with torchrun; it and the 1-process
run are the same script, ``scripts/train_tiny_distributed.py`` (the tiny PRM on real
phase-1 training solutions, trained with ``train_reward_model`` as the book trains).

Why the curves can agree to float rounding, not just roughly:

* data order: the Trainer's length-grouped sampler draws the same permutation in every
  process (same seed); ``RewardTrainer`` groups lengths by the global batch, and process k
  takes every 2nd per-device batch of 4 of it, so global step s trains on the same 8
  examples as one process's batch of 8 (the test uses 240 examples, more than the 200
  that one mega-batch of the Trainer's own grouping would hold with a per-device batch of
  4, so without that regrouping the order differs);
* loss: each step's loss is the mean over all its label tokens, counted over both
  processes, not the mean of two per-process means (the halves hold different numbers of
  steps);
* float32: with bfloat16 autocast the two runs differ in the 4th digit (batches of 4 and
  of 8 are padded to different widths, and bf16 rounds the results differently); in
  float32 only the order of sums differs (gloo's all-reduce vs one batch), about 1e-6.

``TOLERANCE`` (1e-4) is 100x that rounding and 1000x below what each broken variant
gives (0.07 with per-process mean losses, 0.26 with per-device length grouping).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

TOLERANCE = 1e-4
SCRIPT = REPO / "scripts" / "train_tiny_distributed.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gloo_missing() -> str | None:
    import torch.distributed as dist

    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if not dist.is_gloo_available():
        return "this torch build has no gloo backend (CPU collectives)"
    return None


def _start(args: list[str], output_dir, processes: int) -> subprocess.Popen:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [*launcher, str(SCRIPT), "--output-dir", str(output_dir), *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, output_dir) -> dict:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, f"{' '.join(process.args)} failed:\n{out[-4000:]}"
    return json.loads((output_dir / "history.json").read_text())


def _column(run: dict, key: str) -> list[float]:
    return [row[key] for row in run["history"]
            if row.get(key) is not None and not np.isnan(row[key])]


@pytest.mark.slow
@pytest.mark.skipif(_gloo_missing() is not None, reason=str(_gloo_missing()))
def test_two_processes_train_like_one_at_the_same_global_batch(data_dir, tmp_path):
    common = ["--data-dir", str(data_dir), "--examples", "240", "--held-out", "16",
              "--steps", "6", "--bf16", "no"]
    # both at once: the 1-process run is mostly imports and formatting
    one = _start([*common, "--batch", "8"], tmp_path / "one", processes=1)
    two = _start([*common, "--batch", "4"], tmp_path / "two", processes=2)
    one, two = _finish(one, tmp_path / "one"), _finish(two, tmp_path / "two")
    assert (one["processes"], two["processes"]) == (1, 2)

    loss_one, loss_two = np.array(_column(one, "loss")), np.array(_column(two, "loss"))
    assert len(loss_one) == len(loss_two) == 6
    print("1 process x 8:", loss_one.tolist(), "\n2 processes x 4:", loss_two.tolist(),
          "\nmax |difference|:", np.abs(loss_one - loss_two).max())
    # the curve moves far more than the tolerance: equal curves mean equal training
    assert np.ptp(loss_one) > 1000 * TOLERANCE
    np.testing.assert_allclose(loss_two, loss_one, rtol=0, atol=TOLERANCE)
    # label-token accuracy and tokens are summed over both processes: the same counts
    assert _column(two, "accuracy") == _column(one, "accuracy")
    assert two["summary"]["tokens"] == one["summary"]["tokens"]
    np.testing.assert_allclose(_column(two, "eval_loss"), _column(one, "eval_loss"),
                               rtol=0, atol=TOLERANCE)
    assert _column(two, "eval_accuracy") == _column(one, "eval_accuracy")

    # the model the first process saved is the trained model, whole
    from prm_lib.reward_model import RewardModel

    problem, steps = "What is $2+2$?", ["I add: $2+2$.", "That is $4$.\n\n# Answer\n\n4"]
    scored = [RewardModel.from_pretrained(tmp_path / name / "run" / "final")
              .step_probabilities([problem], [steps])[0] for name in ("one", "two")]
    np.testing.assert_allclose(scored[1], scored[0], atol=TOLERANCE)


def _train(tmp_path, name, batch, accumulation):
    from prm_lib.formatting import FormatConfig, prm_examples
    from prm_lib.models import tiny_model
    from prm_lib.schema import Completion, LabeledSolution, Step
    from prm_lib.training import RewardConfig, train_reward_model

    model, tok = tiny_model(seed=4)
    # solutions of 1 to 4 steps: micro-batches hold different numbers of labels, so a
    # mean of micro-batch means is not the mean over the step's labels
    texts = ["I add the numbers.", "That is $4$.", "I check it again.", "# Answer\n\n4"]
    data = [LabeledSolution("What is $2+2$?", [
        Step((Completion(texts[j], 1 if (i + j) % 3 else -1),), chosen=0)
        for j in range(1 + i % 4)]) for i in range(16)]
    fmt = FormatConfig(max_length=64)
    examples, _ = prm_examples(tok, data, fmt)
    args = RewardConfig(str(tmp_path / name), max_steps=3, logging_steps=1,
                        per_device_train_batch_size=batch,
                        gradient_accumulation_steps=accumulation, learning_rate=3e-3,
                        bf16=False, disable_tqdm=True, seed=0)
    run = train_reward_model(model, tok, examples, args=args, format_config=fmt)
    return run.history["loss"].dropna().to_numpy()


def test_gradient_accumulation_trains_like_one_batch(tmp_path):
    """Two accumulated micro-batches of 4 are one batch of 8: the loss of a step is the
    mean over all its labels, and the gradient is not counted twice."""
    whole = _train(tmp_path, "whole", batch=8, accumulation=1)
    halves = _train(tmp_path, "halves", batch=4, accumulation=2)
    assert len(whole) == len(halves) == 3
    assert np.ptp(whole) > 1000 * 1e-5
    np.testing.assert_allclose(halves, whole, rtol=0, atol=1e-5)
