"""The MATH500 guard: no evaluation problem may ever reach training data.

The paper evaluates on 500 MATH test problems (MATH500) and moved the other 4,500 MATH
test problems into training. A training set that contains a MATH500 problem makes every
best-of-N number on MATH500 meaningless, so this module makes it impossible by
construction: the package ships the keys of the 500 problems (SHA-256 of the normalised
text, not the text itself), and every loader of training data calls
:func:`assert_no_math500`, which raises :class:`LeakError`.

Normalisation is deliberately aggressive (Unicode NFKC, case folding, all whitespace
removed) so that a copy of a problem with different spacing or a trailing newline still
matches: a false alarm is cheap, a missed leak is not.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

__all__ = [
    "LeakError",
    "normalize_problem",
    "problem_key",
    "math500_keys",
    "is_math500",
    "assert_no_math500",
]

_KEYS_FILE = "math500_keys.txt"


class LeakError(ValueError):
    """Raised when data meant for training contains a MATH500 evaluation problem."""


def normalize_problem(text: str) -> str:
    """The form in which two problem statements are compared: NFKC, casefolded, no spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(text.split())


def problem_key(text: str) -> str:
    """A stable 64-hex-digit key for a problem statement (SHA-256 of its normal form)."""
    return hashlib.sha256(normalize_problem(text).encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def math500_keys() -> frozenset[str]:
    """The keys of the 500 MATH500 problems, read from the file shipped in the package."""
    text = resources.files("prm_lib").joinpath(_KEYS_FILE).read_text("utf-8")
    keys = frozenset(line.strip() for line in text.splitlines() if line.strip())
    if len(keys) != 500:  # a damaged install must not silently weaken the guard
        raise RuntimeError(f"prm_lib/{_KEYS_FILE} holds {len(keys)} keys, expected 500")
    return keys


def is_math500(problem: str) -> bool:
    """True when ``problem`` is one of the MATH500 evaluation problems."""
    return problem_key(problem) in math500_keys()


def assert_no_math500(problems: Iterable[str], where: str = "training data") -> None:
    """Raise :class:`LeakError` if any of ``problems`` is a MATH500 problem.

    Args:
        problems: problem statements (duplicates are fine).
        where: a description of the data for the message, e.g. a file name.
    """
    keys = math500_keys()
    leaked = sorted({p for p in problems if problem_key(p) in keys})
    if leaked:
        preview = "\n".join(f"  - {p[:100]!r}" for p in leaked[:3])
        raise LeakError(
            f"{where} contains {len(leaked)} MATH500 problem(s), which are reserved for "
            f"evaluation:\n{preview}\nTraining on them would inflate every MATH500 "
            "result. Use PRM800K's train files (the official split already moved these "
            "problems to test), or drop them with prm_lib.splits.is_math500."
        )
