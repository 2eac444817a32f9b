r"""Final-answer extraction and equivalence: is this solution's answer right?

The paper grades a solution by its final answer only, with "MATH-style normalization plus
sympy equivalence, deliberately conservative". This module is that grader, with the
`math-verify` library as the equivalence engine behind a small stable API:

- :func:`last_boxed`: the content of the last ``\boxed{...}`` in a text.
- :func:`extract_answer`: the final answer of a solution (PRM800K ``# Answer`` or MATH ``\boxed``).
- :func:`grade_answer`: is a given final answer equivalent to the ground truth?
- :func:`answer_key`: a canonical string for grouping answers in majority voting.

How an answer is graded. Both answers go through the same text normalisation (below),
then: identical strings are equal; answers made of words (a run of three or more letters
with no backslash, e.g. ``\text{Monday}``) are compared as text; everything else is
parsed by math-verify into sympy and compared by ``math_verify.verify``.

Accepted on purpose (the same number or object, written differently):

- ``\frac``/``\dfrac``/``\tfrac``/``\cfrac``, shorthands ``\frac12`` and ``\sqrt2``,
  ``\left``/``\right``, spacing (``\,``, ``\!``, ``\quad``), a final period.
- Exact decimals equal the fraction they spell: ``0.5 == \frac12``, ``2.25 == \frac94``.
- Thousands separators: ``40,\!000 == 40{,}000 == 40,000 == 40\,000 == 40000`` (digits
  in groups of exactly three after a comma are one number, never a list).
- Units are dropped, with their powers (``15\text{ cm}^2 == 15``): a trailing unit in
  ``\text{}``/``\mbox{}``/``\mathrm{}``, or a bare unit word of two or more letters from
  a short list (``5 cm``, ``12 square units``; not ``3 m``, which LaTeX reads as ``3m``);
  ``\$``; ``^\circ``/``\degree``/``°``; ``\%``. So ``30^\circ == 30``, ``\$5 == 5``,
  ``50\% == 50``. math-verify's own unit stripping is off: it turns ``3t`` into ``3``.
- A leading assignment of a constant is dropped, name included: ``x = 3 == 3 == y = 3``.
  An equation with variables on the right stays an equation (``y = 2x+3`` is a line);
  math-verify accepts its right-hand side (``y = 2x+3 == 2x+3``) or a rearrangement
  (``y = -2x+1 == 2x+y = 1``).
- ``\text{}`` wrappers are dropped; a multiple-choice letter may be written ``\text{(C)}``,
  ``(C)``, ``C`` or with its description, ``\text{(D) a non-horizontal line}``.
- Equal algebra and radicals: ``2\sqrt2 == \sqrt8``, ``(x+1)^2 == x^2+2x+1``, mixed
  numbers ``1\frac12 == \frac32``, ``1 \pm \sqrt2 == 1+\sqrt2, 1-\sqrt2``.
- A comma-separated list of solutions, with or without braces, is a **set**: order does
  not matter (``1, 2 == \{2, 1\}``), and it must hold exactly the same elements.
- Words are compared case-insensitively; a comma-separated list of words as a set.

Rejected on purpose (better to reject a right answer than accept a wrong one):

- Rounded or truncated decimals are not the exact value: ``0.33 != \frac13`` and also
  ``0.333333 != \frac13`` (math-verify alone rounds to 6 places and accepts it);
  ``3.14 != \pi``. Every decimal becomes the exact fraction it spells before comparison.
- The problem statement is not known here: a requested form is not enforced, and no
  conversion between units is made: ``\frac{\pi}{6} != 30^\circ``, ``0.5 != 50\%``.
- Ordered pairs and tuples keep their order: ``(1, 2) != (2, 1)``. A tuple or interval is
  never equal to a bare list or a set: ``1, 2 != (1, 2)`` and ``\{1, 2\} != (1, 2)``.
- Interval ends matter: ``[1, 2) != [1, 2]``; a bracket at infinity is wrong
  (``[-\infty, 0] != (-\infty, 0]``, though sympy reads both as one set). An inequality
  given for an interval is rejected (``x < 3`` for ``(-\infty, 3)``); the interval given
  for an inequality is accepted, as math-verify does.
- Numerals in another base are equal only when written alike (``52_{8} == 52_8``); they
  are not converted (``52_8 != 42``): latex2sympy would read ``52_8`` as ``52``.
- Answers that could take minutes to evaluate are not parsed, and are equal only when
  their normalised text is identical: power towers such as ``10^{10^{10}}``, numbers of
  more than ~100,000 digits, functions of huge numbers (``(10^6)!``, ``\sin(10^{50})``),
  symbolic powers above 1,000, and calculations left undone (``\sum``, ``\int``, ``\lim``,
  so ``\sum_{k=1}^{100} k != 5050``: a final answer is a value).

Symbolic answers are compared as math-verify does: numerically to 15 significant digits,
then by ``sympy.simplify``. math-verify lowercases symbols, so ``X == x``.

Robustness: :func:`grade_answer` never raises on odd input (garbage LaTeX, huge numbers);
it returns False. math-verify's timeouts use ``signal.alarm``, which works only in the
main thread, so they are used there (5 s per parse or comparison) and switched off in any
other thread, where the size guard above is the only protection.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from functools import lru_cache

import sympy
from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
from math_verify import LatexExtractionConfig, parse, verify

__all__ = ["ANSWER_HEADING", "last_boxed", "extract_answer", "grade_answer", "answer_key"]


class _QuietTimeouts(logging.Filter):
    """Drops math-verify's "Timeout ..." warnings: once when its timeout is off (as it must
    be outside the main thread) and on every timeout, which the grader reports as False."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout")


for _name in ("math_verify.grader", "math_verify.parser"):
    logging.getLogger(_name).addFilter(_QuietTimeouts())


_TIMEOUT_S = 5
_MAX_CHARS = 400  # MATH answers stay under 160 characters; longer text is not an answer
_MAX_DIGITS = 100_000
_MAX_FUNCTION_ARG = 10_000  # 10000! has 35660 digits
_MAX_SYMBOLIC_EXPONENT = 1_000

# Our own pre-pass drops units; math-verify's unit stripping is off because it also eats
# single letters after a number ("3t" -> "3"), which would accept wrong answers.
_EXTRACTION = (
    LatexExtractionConfig(
        normalization_config=NormalizationConfig(
            basic_latex=True,
            units=False,
            malformed_operators=True,
            nits=False,
            boxed="all",
            equations=False,
        )
    ),
)


# --------------------------------------------------------------------------- extraction


def last_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (or ``\fbox{...}``, or ``\boxed x``) in ``text``.

    Nested braces are balanced (escaped ``\{``/``\}`` do not count). For the brace-less
    form ``\boxed 5$`` the content runs to the next space, ``$`` or end of line. Returns
    None when there is no box, or when the last one is never closed (a cut-off generation
    has no final answer; an earlier box is not taken in its place).
    """
    if not isinstance(text, str):
        return None
    starts = list(re.finditer(r"\\(?:boxed|fbox)(?![A-Za-z])", text))
    if not starts:
        return None
    i = starts[-1].end()
    n = len(text)
    if i < n and text[i] == "{":
        depth, j = 0, i
        while j < n:
            c = text[j]
            if c == "\\":
                j += 2  # skip the escaped character, e.g. \{ or \}
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j]
            j += 1
        return None
    m = re.match(r"[ \t]+([^\s$]+)", text[i:])
    if m is None:
        return None
    return m.group(1).rstrip(".,;") or None


#: The ``# Answer`` line that ends a solution in the paper's format (its own line,
#: optional colon); the final answer follows it.
ANSWER_HEADING = re.compile(r"^[ \t]*#[ \t]*Answer[ \t]*:?[ \t]*$", re.MULTILINE)
# The old private name, for modules that still import it.


def extract_answer(solution: str) -> str | None:
    r"""The final answer of a solution, as text, or None when it has none.

    PRM800K and generator-style solutions end with a line ``# Answer`` and the answer
    below it: the stripped text after the last such heading is returned. Otherwise
    (MATH-style) the content of the last ``\boxed{}``. An empty answer is None.
    """
    if not isinstance(solution, str):
        return None
    headings = list(ANSWER_HEADING.finditer(solution))
    if headings:
        answer = solution[headings[-1].end() :].strip()
    else:
        answer = (last_boxed(solution) or "").strip()
    return answer or None


# -------------------------------------------------------------------------- normalising

_UNIT_WORDS = (
    r"(?:(?:square|sq\.?|cubic|cu\.?)\s+)?"
    r"(?:units?|cm|mm|km|meters?|metres?|centimeters?|millimeters?|kilometers?|"
    r"inch|inches|ft|feet|foot|yards?|yd|miles?|mph|"
    r"seconds?|sec|minutes?|min|hours?|hrs?|days?|weeks?|months?|years?|"
    r"degrees?|deg|radians?|dollars?|cents?|pounds?|lbs?|ounces?|oz|"
    r"grams?|kg|liters?|litres?|ml|mL|gallons?|people|students|ways|"
    r"points?|percent)"
)
_TEXT_MACRO = r"\\(?:text|textrm|textnormal|textbf|textit|textup|mbox|mathrm)"
# A unit in a text macro at the end, after a number, brace or bracket: "5\text{ cm}^2".
_TRAILING_TEXT_UNIT = re.compile(
    r"(?<=[\d}\)\]])\s*" + _TEXT_MACRO + r"\s*\{\s*([A-Za-z][A-Za-z .]*)\}"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
# Without a macro only known units of two or more letters go: in LaTeX "3 m" is 3m.
_TRAILING_BARE_UNIT = re.compile(
    r"(?<=[\d}\)\]])\s+" + _UNIT_WORDS + r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_CONNECTIVES = re.compile(r"\b(?:and|or|not|more|less|than|if|for|when)\b")
_TEXT_OPENING = re.compile(_TEXT_MACRO + r"\s*\{")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree|°|\\circ\s*$")
# Thin spaces and friends; a matrix row break "\\\\" is matched first so it survives.
_SPACING = re.compile(r"\\\\|\\[!,;: ]|\\q?quad(?![A-Za-z])|\\displaystyle|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])\.?")
_ASSIGNMENT = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?\s*=(?![=<>])\s*")
# Exactly three digits after each comma, no digit or decimal point on either side.
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")
# "(C)", or a choice with its description: "(D) a non-horizontal line".
_MULTIPLE_CHOICE = re.compile(r"\(\s*([A-Za-z])\s*\)(?:\s+[A-Za-z][A-Za-z\s',.\-]*)?")


def _unwrap_text(s: str) -> str:
    r"""``s`` with each ``\text{...}``-like macro replaced by its content (braces balanced)."""
    while (m := _TEXT_OPENING.search(s)) is not None:
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            j += 1
        if depth:  # unclosed: drop the macro name only
            return (s[: m.start()] + s[m.end() - 1 :]).strip()
        s = s[: m.start()] + s[m.end() : j - 1] + s[j:]
    return s.strip()


def _normalise(answer: str) -> str:
    r"""One canonical spelling of an answer, still LaTeX; "" when nothing is left.

    Drops what never changes the value (spacing, ``\left``, dollars, units, degrees,
    percent signs, ``\text`` wrappers, ``x =``, thousands separators) and spells
    fractions one way. The value itself is not touched.
    """
    s = answer.strip()
    if re.search(r"\\(?:boxed|fbox)(?![A-Za-z])", s):
        s = last_boxed(s) or ""
    s = re.sub(r"\s+", " ", s)
    s = _SPACING.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else " ", s)
    s = _LEFT_RIGHT.sub("", s)
    s = re.sub(r"\\[dtc]frac(?![A-Za-z])", r"\\frac", s)
    s = s.replace("{,}", ",")
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\%", "").replace("%", "")
    s = _DEGREES.sub("", s)
    s = s.strip().rstrip(".").strip()
    for _ in range(2):  # "5\text{ cm}^2" and "5 \text{square} \text{units}"
        m = _TRAILING_TEXT_UNIT.search(s)
        if m and not _CONNECTIVES.search(m.group(1)):
            s = s[: m.start()].strip()
        s = _TRAILING_BARE_UNIT.sub("", s).strip()
    s = _unwrap_text(s)
    if m := _MULTIPLE_CHOICE.fullmatch(s):
        s = m.group(1)
    s = _DEGREES.sub("", s)
    m = _ASSIGNMENT.match(s)
    if m and "=" not in s[m.end() :] and not re.search(r"(?<![\\A-Za-z])[A-Za-z]", s[m.end() :]):
        # "x = 3" is the answer 3; "y = 2x + 3" stays an equation (a line, not a number).
        s = s[m.end() :]
    s = re.sub(r"(?<=[0-9A-Z])_\{(\d+)\}", r"_\1", s)  # 52_{8} -> 52_8
    s = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    # Spaces only matter between letters ("\pi r"); drop the rest so spellings meet.
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r" ?([^A-Za-z ]) ?", r"\1", s)
    return s.rstrip(".").strip()


_WORDS = re.compile(r"[A-Za-z][A-Za-z '\-]*(?:,\s*[A-Za-z][A-Za-z '\-]*)*")


def _is_text(s: str) -> bool:
    """Whether a normalised answer is words ("Monday", "even, odd"), not maths."""
    return bool(_WORDS.fullmatch(s)) and bool(re.search(r"[A-Za-z]{3,}", s))


def _text_key(s: str) -> str:
    items = sorted({" ".join(item.lower().split()) for item in s.split(",")})
    return "text:" + ",".join(items)


# ------------------------------------------------------------------------------ parsing


def _timeout() -> int | None:
    # signal.alarm exists only in the main thread; elsewhere math-verify needs None.
    return _TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _log10_abs(x) -> float:
    """log10 |x| for a number, without overflow: 3^{50000} is ~23856.6, 0 is -inf."""
    v = sympy.Abs(x).evalf(15)
    if v.is_zero:
        return -math.inf
    return float(sympy.log(v, 10))


# Calculations left to do, not values; sum_{k=1}^{10^{10}} k! would never finish.
_UNEVALUATED = (sympy.Integral, sympy.Limit, sympy.Sum, sympy.Product, sympy.Derivative)


def _too_big(expr) -> bool:
    """Whether evaluating ``expr`` could take minutes or gigabytes (e.g. ``10^{10^{10}}``).

    Outside the main thread nothing else stops a runaway evaluation. Inner nodes are
    checked first, so evaluating an exponent, base or argument here is safe.
    """
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, _UNEVALUATED):
            return True
        if isinstance(node, sympy.Pow):
            base, exp = node.args
            if not exp.is_number:
                continue
            exp_digits = _log10_abs(exp)
            if not base.is_number:
                # (x+1)^{100000} would take forever to expand
                if exp_digits > math.log10(_MAX_SYMBOLIC_EXPONENT):
                    return True
                continue
            base_digits = abs(_log10_abs(base)) if not base.is_zero else 0.0
            if exp_digits > 7 or (base_digits and 10**exp_digits * base_digits > _MAX_DIGITS):
                return True
        elif node.is_Function:
            # factorial, gamma, binomial, sin...: a huge argument can mean a huge result
            # or a huge working precision.
            for arg in node.args:
                if arg.is_number and _log10_abs(arg) > math.log10(_MAX_FUNCTION_ARG):
                    return True
    return False


def _exact(expr):
    """``expr`` with each decimal replaced by the exact fraction it spells (0.33 -> 33/100)."""
    floats = expr.atoms(sympy.Float)
    if not floats:
        return expr
    return expr.xreplace({f: sympy.Rational(str(f)) for f in floats})


# A numeral in another base, e.g. 52_8 or 1A_{12}.
_BASE_NUMERAL = re.compile(r"[0-9A-Z]_\{?\d")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"(-?)(?:\\frac\{(-?\d+)\}\{(-?\d+)\}|(-?\d+)/(-?\d+))")


def _plain_number(norm: str):
    r"""The exact value of "12", "-0.5", "\frac{3}{4}" or "3/4"; None for anything else.

    The same value math-verify would give, without its LaTeX parser (~10 ms a call).
    """
    if _DECIMAL.fullmatch(norm):
        return sympy.Rational(norm)
    m = _FRACTION.fullmatch(norm)
    if m:
        sign, num, den = m.group(1), m.group(2) or m.group(4), m.group(3) or m.group(5)
        if int(den) != 0:
            return sympy.Rational(int(num), int(den)) * (-1 if sign else 1)
    return None


@lru_cache(maxsize=8192)
def _parse(norm: str):
    """The sympy object for a normalised answer, or None when it cannot be parsed safely.

    Cached: ground truths are graded against many samples, and sympy objects are immutable.
    """
    if not norm or len(norm) > _MAX_CHARS:
        return None
    number = _plain_number(norm)
    if number is not None:
        return number
    if _BASE_NUMERAL.search(norm):
        return None  # latex2sympy would read 52_8 as 52
    found = parse(
        f"${norm}$",
        extraction_config=_EXTRACTION,
        fallback_mode="no_fallback",
        parsing_timeout=_timeout(),
    )
    if not found or isinstance(found[0], str):
        return None
    expr = found[0]
    if isinstance(expr, sympy.MatrixBase):
        expr = expr.as_immutable()
    if _too_big(expr):
        return None
    return _exact(expr)


_CLOSED_INFINITY = re.compile(r"\[-?\\infty|\\infty\]")


def _is_set(expr) -> bool:
    return isinstance(expr, sympy.FiniteSet) and len(expr) > 1


def _is_sequence(expr) -> bool:
    return isinstance(expr, (sympy.Tuple, sympy.Interval))


# ------------------------------------------------------------------------------ grading


def grade_answer(given: str | None, ground_truth: str) -> bool:
    r"""True when ``given`` is mathematically equivalent to ``ground_truth``.

    Both are bare final answers (LaTeX without ``$``, e.g. ``\frac{1}{2}``), as returned by
    :func:`extract_answer`. A missing or empty ``given`` is False. Never raises (except
    KeyboardInterrupt): unparseable or dangerous input is False. Safe to call from any
    thread. See the module docstring for what is accepted and rejected on purpose.
    """
    try:
        if not isinstance(given, str) or not isinstance(ground_truth, str):
            return False
        g, t = _normalise(given), _normalise(ground_truth)
        if not g or not t:
            return False
        if g == t:
            return True
        if _is_text(g) or _is_text(t):
            return _is_text(g) and _is_text(t) and _text_key(g) == _text_key(t)
        if bool(_CLOSED_INFINITY.search(g)) != bool(_CLOSED_INFINITY.search(t)):
            return False  # [-\infty, 0] is the set (-\infty, 0] to sympy, but a wrong answer
        truth, pred = _parse(t), _parse(g)
        if truth is None or pred is None:
            return False
        # math-verify would match a tuple against a set in the same order; a pair is not a set.
        if (_is_set(truth) and _is_sequence(pred)) or (_is_sequence(truth) and _is_set(pred)):
            return False
        return bool(verify(truth, pred, strict=True, timeout_seconds=_timeout()))
    except Exception:  # KeyboardInterrupt and SystemExit are not Exceptions: they pass
        return False


def _cheap_to_expand(expr) -> bool:
    # (x+y)^{500} would expand to hundreds of terms: key such answers as written.
    return sympy.count_ops(expr) <= 60 and not any(
        p.exp.is_number and abs(complex(p.exp)) > 20 and p.base.free_symbols
        for p in expr.atoms(sympy.Pow)
    )


@lru_cache(maxsize=8192)
def _key(norm: str) -> str:
    if _is_text(norm):
        return _text_key(norm)
    expr = _parse(norm)
    if expr is None:
        return "text:" + norm.lower()
    if (
        isinstance(expr, sympy.Expr)
        and not isinstance(expr, (sympy.Rational, sympy.MatrixBase))
        and _cheap_to_expand(expr)
    ):
        # expand + radsimp is a cheap canonical form (simplify is ~10x slower):
        # (x+1)^2 and x^2+2x+1 meet, as do 1/(1+sqrt2) and sqrt2-1.
        expr = sympy.radsimp(sympy.expand(expr))
    return str(expr)


def answer_key(answer: str | None) -> str | None:
    r"""A canonical string for grouping equivalent answers in majority voting.

    A fast approximation of :func:`grade_answer`'s equivalence: two answers with the same
    key are almost always equivalent, and equivalent answers usually (not always: e.g.
    equations written differently) share a key. Numbers and expressions are keyed by their
    simplified sympy form (``"1/2"`` for ``0.5``, ``\frac12`` and ``\dfrac{1}{2}``), words by
    their lowercased text, anything unparseable by its normalised text. None for a missing
    or empty answer. Never raises (except KeyboardInterrupt).
    """
    if not isinstance(answer, str):
        return None
    try:
        norm = _normalise(answer)
    except Exception:
        norm = answer.strip()
    if not norm:
        return None
    try:
        return _key(norm)
    except Exception:
        return "text:" + norm.lower()
