"""The laboratory's generator: a small causal LM trained from scratch on correct solutions.

The paper samples solutions from a large generator and labels them. The laboratory does
the same with a model small enough to train on a laptop CPU in minutes: a Llama-style
transformer (the architecture of SmolLM2, a few layers wide enough for arithmetic) with a
character-level tokenizer, trained on reference solutions only. Sampled at temperature
1.0 it makes mistakes of its own (carries, copied digits, skipped operations), which
is what the reward models must learn to spot.

The tokenizer keeps ``" +"``, ``" -"`` and ``" ="`` as single tokens, so ``prm_lib``'s
reward models (which answer with those label tokens) run on the generator's weights
unchanged, exactly as the paper fine-tunes its reward models from the base model.
"""

from __future__ import annotations

import contextlib
import math
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .problems import LabProblem, check_steps, reference_steps

__all__ = ["torch_threads", "one_thread", "lab_tokenizer", "GeneratorConfig", "new_generator",
           "encode_solution", "train_generator", "sample_solutions", "PROMPT"]

#: Steps whose mean training loss is compared with ``GeneratorConfig.target_loss``.
TARGET_WINDOW = 50

#: How a problem is shown to the generator and to the reward models (as in
#: :class:`prm_lib.formatting.FormatConfig`).
PROMPT = "{problem}\n\n"


@contextlib.contextmanager
def torch_threads(n: int):
    """Within the block, torch computes on exactly ``n`` threads, whatever the number of
    cores. Matrix kernels split their sums by thread, so a fixed count gives the same
    numbers on any machine with the same kernels: the laboratory's generator trains and
    samples on :attr:`GeneratorConfig.threads` threads, and every reward model trains and
    scores on one (:func:`one_thread`), so that reward models can train side by side
    (:func:`~prm_lib.lab.experiments.train_lab_rms`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_thread():
    """:func:`torch_threads` ``(1)``: how every laboratory reward model trains and scores
    (models this small lose little speed on one thread, and two train side by side)."""
    return torch_threads(1)


def lab_tokenizer():
    """A character-level tokenizer (printable ASCII) plus the tokens ``" +" " -" " ="``.

    Returns a ``transformers`` fast tokenizer with ``<pad>``, ``<eos>`` and ``<unk>``.
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    special = ["<pad>", "<eos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(special + chars + [" +", " -", " ="])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[(" ", "+"), (" ", "-"), (" ", "=")],
                                unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>",
                                  eos_token="<eos>", unk_token="<unk>")
    tok.padding_side = "right"
    return tok


@dataclass(frozen=True)
class GeneratorConfig:
    """Size and training of the generator.

    Attributes:
        hidden_size, layers, heads: the transformer (intermediate size is 4x hidden).
        steps, batch_size, learning_rate: training (AdamW, warmup then cosine decay over
            ``steps``).
        target_loss: when set, training stops as soon as the mean training loss of the
            last :data:`TARGET_WINDOW` steps is below it (``steps`` is then the most it
            may take): each draw trains until it has learned as much, however fast its
            initialisation lets it.
        neutral_rate: chance of a restatement after each operation in the training
            solutions (the domain's neutral steps).
        max_length: longest sequence in tokens.
        length_window: batches are drawn this many at a time and grouped by length, so
            that each pads to less (a quarter of a batch of 32 was padding); 1: each batch
            drawn on its own.
        threads: torch threads the generator trains and samples on (:func:`torch_threads`):
            a fixed number, so a seed draws the same laboratory on any number of cores.
    """

    hidden_size: int = 96
    layers: int = 3
    heads: int = 4
    steps: int = 1200
    batch_size: int = 32
    learning_rate: float = 3e-3
    target_loss: float | None = None
    neutral_rate: float = 0.1
    max_length: int = 192
    length_window: int = 8
    threads: int = 2


def new_generator(config: GeneratorConfig, tokenizer, seed: int = 0):
    """A randomly initialised Llama-style causal LM for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        intermediate_size=4 * config.hidden_size, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, num_key_value_heads=config.heads,
        max_position_embeddings=config.max_length, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(cfg)


def encode_solution(tokenizer, problem: str, steps: Sequence[str]) -> tuple[list[int], int]:
    """Token ids of problem text + solution + end token, and the prompt's length."""
    prompt = tokenizer(PROMPT.format(problem=problem), add_special_tokens=False)["input_ids"]
    body = tokenizer("\n".join(steps), add_special_tokens=False)["input_ids"]
    return prompt + body + [tokenizer.eos_token_id], len(prompt)


def train_generator(problems: Sequence[LabProblem], config: GeneratorConfig, seed: int = 0,
                    progress: bool = True, misconceptions: dict | None = None,
                    misconception_rate: float = 0.0):
    """Train a generator on reference solutions of ``problems`` (language-model loss on
    the solution tokens and the end token, not on the problem); with ``misconceptions``,
    some of those solutions hold systematic errors (see
    :func:`~prm_lib.lab.problems.reference_steps`).

    Returns ``(model, tokenizer, history)``; ``history`` has one row per logged step
    (step, loss, learning rate, seconds).
    """
    import torch
    from ..progress import progress_bar

    if not problems:
        raise ValueError("no problems to train the generator on")
    tok = lab_tokenizer()
    model = new_generator(config, tok, seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                            betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, config.steps // 20)

    def lr_at(step):
        if step < warmup:
            return config.learning_rate * (step + 1) / warmup
        t = (step - warmup) / max(1, config.steps - warmup)
        return config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    def draw_batches():
        """``length_window`` batches of training sequences, each of similar lengths, in
        random order."""
        picks = rng.integers(len(problems), size=config.batch_size * config.length_window)
        seqs = [encode_solution(tok, problems[i].text,
                                reference_steps(problems[i], rng, config.neutral_rate,
                                                misconceptions, misconception_rate))
                for i in picks]
        if config.length_window == 1:  # drawn alone, as before length_window existed
            return [seqs]
        seqs.sort(key=lambda s: len(s[0]))
        batches = [seqs[i: i + config.batch_size] for i in range(0, len(seqs), config.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    rows, start, recent, queue = [], time.perf_counter(), [], []
    model.train()
    bar = progress_bar(range(config.steps), desc="training the generator", enabled=progress)
    for step in bar:
        if not queue:
            queue = draw_batches()
        seqs = queue.pop()
        width = min(config.max_length, max(len(s) for s, _ in seqs))
        ids = torch.full((len(seqs), width), tok.pad_token_id)
        labels = torch.full((len(seqs), width), -100)
        for r, (s, n_prompt) in enumerate(seqs):
            s = s[:width]
            ids[r, : len(s)] = torch.tensor(s)
            labels[r, n_prompt: len(s)] = torch.tensor(s[n_prompt:])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long(),
                     labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-TARGET_WINDOW:]
        reached = (config.target_loss is not None and len(recent) == TARGET_WINDOW
                   and float(np.mean(recent)) < config.target_loss)
        if step % 25 == 0 or step == config.steps - 1 or reached:
            rows.append({"step": step + 1, "loss": loss.item(), "learning_rate": lr_at(step),
                         "seconds": time.perf_counter() - start})
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if reached:
            break
    bar.close()
    model.eval()
    return model, tok, pd.DataFrame(rows)


def sample_solutions(model, tokenizer, problems: Sequence[LabProblem], n: int, *,
                     seed: int = 0, temperature: float = 1.0, max_new_tokens: int = 96,
                     batch_size: int = 512, progress: bool = True) -> pd.DataFrame:
    """``n`` solutions per problem sampled at ``temperature`` (full distribution, no
    top-k or top-p), checked step by step.

    The sampling is the book's one sampler, :func:`prm_lib.generation.generate_samples`
    (transformers backend, the prompt :data:`PROMPT`): every sample draws from its own
    random stream, seeded from (``seed``, problem text, ``sample_id``), so a sample is
    the same whatever ``batch_size`` (which only trades memory for speed).

    Returns the sample table of :mod:`prm_lib.generation` (``problem`` (text),
    ``sample_id``, ``steps`` (list of str), ``answer`` (str or None), ``is_correct``
    (final answer), ``finish_reason`` (``"eos"``, or ``"length"`` when cut off at
    ``max_new_tokens``), ``n_tokens``) with the checker's verdicts: ``problem_index``
    (after ``problem``), ``ratings`` (tuple of +1/0/-1 per step), ``first_error`` (index
    or -1), ``process_correct`` (no bad step, and an answer). ``answer`` and
    ``is_correct`` are the checker's.
    """
    from ..generation import generate_samples

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    table = generate_samples(model, tokenizer, [p.text for p in problems], n,
                             prompt_template=PROMPT, temperature=temperature, top_p=1.0,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
                             backend="transformers", progress=progress)
    # generate_samples returns problem-major rows, sample ids 0..n-1 within a problem
    problem_index = np.repeat(np.arange(len(problems), dtype=np.int64), n)
    checks = [check_steps(problems[i], steps) for i, steps in zip(problem_index, table["steps"])]
    table.insert(1, "problem_index", problem_index)
    table["answer"] = pd.Series([c.answer for c in checks], dtype=object, index=table.index)
    table["is_correct"] = np.array([c.is_correct for c in checks], dtype=bool)
    table["ratings"] = pd.Series([c.ratings for c in checks], dtype=object, index=table.index)
    table["first_error"] = np.array([-1 if c.first_error is None else c.first_error
                                     for c in checks], dtype=np.int64)
    table["process_correct"] = np.array([c.process_correct for c in checks], dtype=bool)
    return table
