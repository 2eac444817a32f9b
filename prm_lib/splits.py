"""The MATH500 guard: no evaluation problem may ever reach training data.

The paper evaluates on 500 MATH test problems (MATH500) and moved the other 4,500 MATH
test problems into training. A training set that contains a MATH500 problem makes every
best-of-N number on MATH500 meaningless, so this module makes it impossible by
construction: the package ships hashes of the 500 problems (never their text), and every
loader of training data calls :func:`assert_no_math500`, which raises :class:`LeakError`.

Two tests, both against hashes shipped in the package:

* **exact**: the problem's normal form (:func:`normalize_problem`: Unicode, case,
  spacing, LaTeX spellings such as ``\\dfrac``/``\\frac`` or ``\\(...\\)``/``$...$``, and
  known instructions such as "Let's think step by step...", all made uniform) equals
  that of a MATH500 problem (``math500_keys.txt``);
* **near**: a reworded copy. The problem states the same mathematics as a MATH500
  problem (every formula and number, :func:`math_signature`) and shares at least
  :data:`NEAR_THRESHOLD` of its token 3-grams with it (``math500_ngrams.txt``). MATH
  is full of genuine siblings that change one number or formula (``divided by 8`` vs
  ``divided by 9``); requiring the same mathematics lets them through.

The size of the n-grams and the threshold were chosen by measurement
(``scripts/make_math500_keys.py --measure``): at 3-grams and 0.85, no phase-1 training
problem and none of the 4,500 MATH test problems outside MATH500 is flagged; 3 of the
7,500 MATH training problems are, one a true duplicate of a MATH500 problem and two
that share a long diagram with one and ask a differently worded question. A false alarm
is cheap, a missed leak is not.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = [
    "LeakError",
    "Math500Match",
    "LIGHTEVAL_SUFFIX",
    "INSTRUCTION_PREFIXES",
    "INSTRUCTION_SUFFIXES",
    "NGRAM_SIZE",
    "NEAR_THRESHOLD",
    "normalize_problem",
    "problem_key",
    "problem_tokens",
    "math_signature",
    "ngram_keys",
    "math500_keys",
    "is_math500",
    "closest_math500",
    "near_math500",
    "assert_no_math500",
    "math500_overlaps",
]

_KEYS_FILE = "math500_keys.txt"
_NGRAMS_FILE = "math500_ngrams.txt"

#: The instruction MATH-lighteval style files append to every problem.
LIGHTEVAL_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."

#: Instructions that wrap a problem in prompt files; stripped before comparing problems,
#: in any spacing and case. The one list of them in the package.
INSTRUCTION_SUFFIXES = (
    LIGHTEVAL_SUFFIX,
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Put your final answer within \\boxed{}.",
)
INSTRUCTION_PREFIXES = (
    "Solve the following math problem step by step.",
    "Solve the following math problem.",
    "Problem:",
)

#: Tokens per n-gram of the near-duplicate test.
NGRAM_SIZE = 3
#: Share of n-grams (of the shorter of the two problems) at which a problem with the same
#: mathematics as a MATH500 problem counts as a copy of it.
NEAR_THRESHOLD = 0.85


class LeakError(ValueError):
    """Raised when data meant for training contains a MATH500 evaluation problem."""


# ------------------------------------------------------------------ normal form

# LaTeX spellings of the same thing, in the order they are applied to casefolded text.
_LATEX = [
    (re.compile(r"\\\$"), r" \\dollar "),  # an escaped dollar is text, not a delimiter
    (re.compile(r"\\(?:left|right|displaystyle|bigl|bigr|big)(?![a-z])"), " "),
    (re.compile(r"\\[dt](frac|binom)(?![a-z])"), r"\\\1"),
    (re.compile(r"\\(le|ge|ne)(?![a-z])"), r"\\\1q"),
    (re.compile(r"\\(?:[,;:! ]|q?quad(?![a-z]))|~"), " "),  # spacing inside math
    (re.compile(r"(?<!\\)\\[()\[\]]|\$\$"), "$"),  # \( \) \[ \] $$ -> $
    (re.compile(r"(\\frac|\\binom)\s*([0-9a-z])\s*([0-9a-z])"), r"\1{\2}{\3}"),
    (re.compile(r"\\sqrt\s*([0-9a-z])"), r"\\sqrt{\1}"),
    (re.compile(r"([_^])\s*\{\s*([0-9a-z])\s*\}"), r"\1\2"),  # x^{2} -> x^2
]
_TOKEN = re.compile(r"\\[a-z]+|[^\W\d_]+|\d+|\S")
_MATH = re.compile(r"\$([^$]*)\$")


def _pattern(instruction: str) -> str:
    """A regex for ``instruction`` in canonical text, with any spacing between characters."""
    return r"\s*".join(re.escape(ch) for ch in "".join(_canonical_latex(instruction).split()))


def _canonical_latex(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    return text


@lru_cache(maxsize=1)
def _instructions() -> re.Pattern:
    prefixes = "|".join(_pattern(p) for p in INSTRUCTION_PREFIXES)
    suffixes = "|".join(_pattern(s) for s in INSTRUCTION_SUFFIXES)
    return re.compile(rf"\A\s*(?:{prefixes})|(?:{suffixes})\s*\Z")


def _canonical(text: str) -> str:
    """Casefolded text with uniform LaTeX, no known instructions, single spaces."""
    text = _canonical_latex(text)
    instructions = _instructions()
    while True:  # a problem may carry both a prefix and a suffix
        stripped = instructions.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split())


def normalize_problem(text: str) -> str:
    """The form in which two problem statements are compared exactly: NFKC, casefolded,
    LaTeX spellings made uniform, known instructions removed, no whitespace at all."""
    return "".join(_canonical(text).split())


def problem_key(text: str) -> str:
    """A stable 64-hex-digit key for a problem statement (SHA-256 of its normal form)."""
    return hashlib.sha256(normalize_problem(text).encode("utf-8")).hexdigest()


def problem_tokens(text: str) -> list[str]:
    """The tokens of the normal form: LaTeX commands, words, numbers, single symbols."""
    return _TOKEN.findall(_canonical(text))


def math_signature(text: str) -> str:
    """A 16-hex-digit key of the problem's mathematics: its formulas (without spacing)
    and the numbers of its prose, in sorted order. Two wordings of one problem share it;
    a sibling problem that changes a number or a formula does not."""
    canonical = _canonical(text)
    parts = ["".join(m.split()) for m in _MATH.findall(canonical)]
    parts += re.findall(r"\d+", _MATH.sub(" ", canonical))
    return hashlib.sha256("\x1f".join(sorted(parts)).encode("utf-8")).hexdigest()[:16]


def ngram_keys(text: str, n: int = NGRAM_SIZE) -> frozenset[str]:
    """8-hex-digit hashes of the problem's distinct token ``n``-grams (a problem shorter
    than ``n`` tokens is one n-gram)."""
    tokens = problem_tokens(text)
    grams = {"\x1f".join(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))}
    return frozenset(hashlib.blake2b(g.encode("utf-8"), digest_size=4).hexdigest() for g in grams)


# ------------------------------------------------------------------ shipped hashes


def _read_lines(name: str) -> list[str]:
    text = resources.files("prm_lib").joinpath(name).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@lru_cache(maxsize=1)
def math500_keys() -> frozenset[str]:
    """The keys of the 500 MATH500 problems, read from the file shipped in the package."""
    keys = frozenset(_read_lines(_KEYS_FILE))
    if len(keys) != 500:  # a damaged install must not silently weaken the guard
        raise RuntimeError(f"prm_lib/{_KEYS_FILE} holds {len(keys)} keys, expected 500")
    return keys


@lru_cache(maxsize=1)
def _math500_ngrams() -> dict[str, list[tuple[str, frozenset[str]]]]:
    """math signature -> [(unique_id, n-gram keys)] of the MATH500 problems with it.

    Each line of the shipped file is ``unique_id signature ngram ngram ...``.
    """
    index: dict[str, list[tuple[str, frozenset[str]]]] = {}
    lines = _read_lines(_NGRAMS_FILE)
    for line in lines:
        uid, signature, *grams = line.split()
        index.setdefault(signature, []).append((uid, frozenset(grams)))
    if len(lines) != 500:
        raise RuntimeError(f"prm_lib/{_NGRAMS_FILE} holds {len(lines)} problems, expected 500")
    return index


@dataclass(frozen=True)
class Math500Match:
    """The MATH500 problem closest to a given problem.

    Attributes:
        unique_id: its id in MATH500, e.g. ``"test/algebra/170.json"`` (None only for
            an exact match whose spacing splits a number of its prose differently).
        overlap: share of n-grams shared, of the shorter problem's (1.0 when exact).
        exact: the normal forms are equal.
    """

    unique_id: str | None
    overlap: float
    exact: bool = False

    @property
    def is_copy(self) -> bool:
        """Exact, or a near-copy (overlap at least :data:`NEAR_THRESHOLD`)."""
        return self.exact or self.overlap >= NEAR_THRESHOLD


def is_math500(problem: str) -> bool:
    """True when ``problem`` is one of the MATH500 evaluation problems (exact test)."""
    return problem_key(problem) in math500_keys()


def closest_math500(problem: str) -> Math500Match | None:
    """The MATH500 problem with the same mathematics that shares most n-grams with
    ``problem``, or None when no MATH500 problem has the same mathematics.

    One dictionary lookup by :func:`math_signature`, then a set intersection with each
    MATH500 problem under that signature (rarely more than a few).
    """
    exact = is_math500(problem)
    candidates = _math500_ngrams().get(math_signature(problem))
    if not candidates:
        return Math500Match(None, 1.0, exact=True) if exact else None
    grams = ngram_keys(problem)
    overlap, uid = max(
        (len(grams & other) / min(len(grams), len(other)), uid) for uid, other in candidates
    )
    return Math500Match(uid, 1.0 if exact else overlap, exact)


def near_math500(problem: str) -> Math500Match | None:
    """The MATH500 problem that ``problem`` copies, exactly or nearly; else None."""
    match = closest_math500(problem)
    return match if match is not None and match.is_copy else None


def assert_no_math500(problems: Iterable[str], where: str = "training data") -> None:
    """Raise :class:`LeakError` if any of ``problems`` is a MATH500 problem or a near-copy
    of one (see the module's description of both tests).

    Args:
        problems: problem statements (duplicates are fine).
        where: a description of the data for the message, e.g. a file name.
    """
    leaked = {}
    for p in dict.fromkeys(problems):
        match = near_math500(p)
        if match is not None:
            leaked[p] = match
    if leaked:
        n_exact = sum(m.exact for m in leaked.values())
        preview = "\n".join(
            f"  - {p[:100]!r}: "
            + ("a MATH500 problem" if m.exact else
               f"a near-copy of MATH500 {m.unique_id} ({m.overlap:.0%} of its "
               f"{NGRAM_SIZE}-grams shared, same formulas and numbers)")
            for p, m in list(leaked.items())[:3]
        )
        raise LeakError(
            f"{where} contains {len(leaked)} MATH500 problem(s) ({n_exact} exact, "
            f"{len(leaked) - n_exact} near-copies), which are reserved for evaluation:\n"
            f"{preview}\nTraining on them would inflate every MATH500 result. Use "
            "PRM800K's train files (the official split already moved these problems to "
            "test), or drop them with prm_lib.splits.near_math500."
        )


def math500_overlaps(problems: Iterable[str]):
    """How close each problem comes to MATH500, closest first, as a DataFrame.

    One row per distinct problem that states the same mathematics as a MATH500 problem
    (the others share no formula set with any and are left out), with columns
    ``problem``, ``unique_id`` (the closest MATH500 problem), ``overlap`` (share of
    n-grams, see :func:`closest_math500`), ``exact`` and ``is_copy`` (the guard's
    verdict: exact, or ``overlap >= NEAR_THRESHOLD``).
    """
    import pandas as pd

    rows = []
    for p in dict.fromkeys(problems):
        match = closest_math500(p)
        if match is not None:
            rows.append({"problem": p, "unique_id": match.unique_id, "overlap": match.overlap,
                         "exact": match.exact, "is_copy": match.is_copy})
    columns = ["problem", "unique_id", "overlap", "exact", "is_copy"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("overlap", ascending=False, ignore_index=True)
