"""The laboratory's problems: multi-step arithmetic whose every step a program can check.

A problem is a chain of operations applied from the inside out, and asks for the **last
two digits** of the result::

    Last two digits of ((47 + 18) * 3) - 25?

Its reference solution is written the way PRM800K's solutions are, one step per line and a
final ``# Answer`` section::

    47 + 18 = 65
    65 * 3 = 195
    195 - 25 = 170
    # Answer

    70

Some reference solutions also restate the running total ("The running total is 65.");
such a step is true but makes no progress: the checker rates it **neutral** (0), which
gives chapter 7's neutral-handling ablation something to act on.

The checker (:func:`check_steps`) is exact: a step is good (+1) when it is the step a
correct solution takes at that point (the right operation on the right numbers, with the
right result; ``a + b`` and ``b + a`` are the same step), neutral (0) for a true
restatement, and bad (-1) otherwise, including anything it cannot parse. Asking for the
last two digits lets **right answers come from wrong steps**: a slip in the hundreds
digit leaves them intact, and two slips can cancel. That is exactly the case that fools
an outcome-supervised model and not a process-supervised one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LabProblem",
    "StepCheck",
    "make_problems",
    "reference_steps",
    "misconceptions",
    "fact_rates",
    "check_steps",
    "NEUTRAL_TEMPLATE",
]

#: The one neutral step of the domain: a true restatement of the running total.
NEUTRAL_TEMPLATE = "The running total is {value}."

_CHAIN = re.compile(r"^(\d+) ([+*-]) (\d+) = (\d+)$")
_NEUTRAL = re.compile(r"^The running total is (\d+)\.$")
_ANSWER = re.compile(r"^# Answer\n\n(.*)$", re.S)
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class LabProblem:
    """One problem.

    Attributes:
        start: the innermost number.
        ops: the operations in order, each ``(symbol, operand)`` with symbol in ``+ - *``.
    """

    start: int
    ops: tuple[tuple[str, int], ...]
    modulus: int | None = None

    @property
    def values(self) -> list[int]:
        """The running value before the first and after every operation (reduced modulo
        :attr:`modulus` after each one, when it is set)."""
        out = [self.start]
        for op, b in self.ops:
            v = _APPLY[op](out[-1], b)
            out.append(v % self.modulus if self.modulus else v)
        return out

    @property
    def result(self) -> int:
        return self.values[-1]

    @property
    def answer(self) -> str:
        """The expected final answer: the last two digits of the result (``"07"``), or
        the last digit when every step keeps only its last digit."""
        if self.modulus == 10:
            return str(self.result)
        return f"{self.result % 100:02d}"

    @property
    def text(self) -> str:
        expr = str(self.start)
        for i, (op, b) in enumerate(self.ops):
            expr = f"({expr}) {op} {b}" if i else f"{expr} {op} {b}"
        if self.modulus == 10:
            # short: the prompt is most of every sequence the laboratory trains on
            return f"Last digit of {expr}?"
        return f"Last two digits of {expr}?"

    @property
    def n_ops(self) -> int:
        return len(self.ops)


def _problem(rng: np.random.Generator, n_ops: int, number_max: int, factor_max: int) -> LabProblem:
    value = int(rng.integers(2, number_max + 1))
    start, ops = value, []
    for _ in range(n_ops):
        op = "+-*"[int(rng.integers(3))]
        if op == "-" and value < 2:
            op = "+"  # values stay non-negative: the last digits of -3 are ambiguous
        b = int(rng.integers(2, factor_max + 1)) if op == "*" else int(rng.integers(2, number_max + 1))
        if op == "-":
            b = min(b, value)
        ops.append((op, b))
        value = _APPLY[op](value, b)
    return LabProblem(start, tuple(ops))


def _digits_problem(rng: np.random.Generator, n_ops: int) -> LabProblem:
    start = int(rng.integers(0, 10))
    ops = tuple(("+-*"[int(rng.integers(3))], int(rng.integers(2, 10))) for _ in range(n_ops))
    return LabProblem(start, ops, modulus=10)


def make_problems(n: int, seed: int, min_ops: int = 2, max_ops: int = 4,
                  exclude: Sequence[LabProblem] | None = None, number_max: int = 30,
                  factor_max: int = 5, domain: str = "chain") -> list[LabProblem]:
    """``n`` distinct problems with ``min_ops``..``max_ops`` operations, seeded.

    ``domain="chain"``: the first number and the operands of ``+`` and ``-`` are drawn from
    2..``number_max``, the factors of ``*`` from 2..``factor_max`` (a subtraction never goes
    below zero). ``domain="digits"``: a first digit 0..9 and operands 2..9, every step
    keeping only the last digit of its result (``7 * 8 = 6``), so each step is one fact of
    a table of 240 (``number_max`` and ``factor_max`` are not used).

    Args:
        exclude: problems that must not be drawn (another split): the splits of the
            laboratory are disjoint by construction, not by chance.
    """
    if n < 0 or not 1 <= min_ops <= max_ops:
        raise ValueError(f"need n >= 0 and 1 <= min_ops <= max_ops, got {n}, {min_ops}, {max_ops}")
    rng = np.random.default_rng(seed)
    seen = {p.text for p in exclude or ()}
    out: list[LabProblem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"could not draw {n} distinct problems with these settings")
        n_ops = int(rng.integers(min_ops, max_ops + 1))
        if domain == "digits":
            p = _digits_problem(rng, n_ops)
        elif domain == "chain":
            p = _problem(rng, n_ops, number_max, factor_max)
        else:
            raise ValueError(f"domain must be 'chain' or 'digits', not {domain!r}")
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def misconceptions(n: int, seed: int, domain: str = "digits") -> dict[tuple[int, str, int], int]:
    """``n`` facts of the ``digits`` table, each with a fixed wrong result: the
    misconceptions a generator is taught (see :func:`reference_steps`), seeded.

    Returns ``{(a, op, b): wrong last digit}``.
    """
    if domain != "digits":
        raise ValueError("misconceptions are defined for the 'digits' domain only")
    facts = [(a, op, b) for a in range(10) for op in "+-*" for b in range(2, 10)]
    rng = np.random.default_rng([seed, 4])
    out = {}
    for k in rng.choice(len(facts), size=min(n, len(facts)), replace=False):
        a, op, b = facts[int(k)]
        right = _APPLY[op](a, b) % 10
        out[(a, op, b)] = int((right + rng.integers(1, 10)) % 10)  # any other digit
    return out


def fact_rates(solutions: Sequence[Sequence[str]], facts: dict[tuple[int, str, int], int]) -> dict:
    """How a ``digits`` generator writes the facts of its steps (each ``a op b = c`` read
    as written, whatever the running value should have been):

    * ``"slip rate (%)"``: among steps on facts *not* in ``facts`` (the misconceptions),
      the share with a wrong result: the slips of a generator that has not learned its
      table;
    * ``"misconception rate (%)"``: among steps on facts in ``facts``, the share written
      with the taught wrong digit;
    * ``"steps read"``: how many steps were read (NaN rates when none).
    """
    slips = slip_n = taught = taught_n = 0
    for steps in solutions:
        for step in steps:
            m = _CHAIN.match(step)
            if m is None:
                continue
            a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
            if a > 9 or b > 9:
                continue
            wrong = facts.get((a, op, b))
            if wrong is None:
                slip_n += 1
                slips += c != _APPLY[op](a, b) % 10
            else:
                taught_n += 1
                taught += c == wrong
    return {"slip rate (%)": 100 * slips / slip_n if slip_n else float("nan"),
            "misconception rate (%)": 100 * taught / taught_n if taught_n else float("nan"),
            "steps read": slip_n + taught_n}


def reference_steps(problem: LabProblem, rng: np.random.Generator | None = None,
                    neutral_rate: float = 0.0,
                    misconceptions: dict[tuple[int, str, int], int] | None = None,
                    misconception_rate: float = 0.0) -> list[str]:
    """A solution of the generator's training data; after each operation a neutral
    restatement is added with probability ``neutral_rate`` (needs ``rng``).

    Without ``misconceptions`` it is correct. With them, a step whose fact (running
    value, operation, operand) is one of ``misconceptions`` is written with the wrong
    result with probability ``misconception_rate``, and the solution goes on from that
    wrong value to a wrong answer, as a writer who holds the misconception would: the
    confident, systematic errors that likelihood and majority voting cannot filter.
    """
    steps, value = [], problem.start
    for i, (op, b) in enumerate(problem.ops):
        new = _APPLY[op](value, b)
        new = new % problem.modulus if problem.modulus else new
        wrong = (misconceptions or {}).get((value, op, b))
        if wrong is not None and rng is not None and rng.random() < misconception_rate:
            new = wrong
        steps.append(f"{value} {op} {b} = {new}")
        value = new
        if neutral_rate and rng is not None and rng.random() < neutral_rate and i < problem.n_ops - 1:
            steps.append(NEUTRAL_TEMPLATE.format(value=value))
    answer = str(value) if problem.modulus == 10 else f"{value % 100:02d}"
    steps.append(f"# Answer\n\n{answer}")
    return steps


@dataclass(frozen=True)
class StepCheck:
    """What the checker says about one solution.

    Attributes:
        ratings: one of +1, 0, -1 per step.
        answer: the final answer given (None: no ``# Answer`` step).
        is_correct: the final answer is the expected one (whatever the steps).
    """

    ratings: tuple[int, ...]
    answer: str | None
    is_correct: bool

    @property
    def first_error(self) -> int | None:
        """Index of the first bad step, or None."""
        return next((i for i, r in enumerate(self.ratings) if r == -1), None)

    @property
    def process_correct(self) -> bool:
        """Every step is good or neutral and the answer is given (outcome from the
        checker: the stand-in for the paper's PRM_large)."""
        return self.answer is not None and self.first_error is None


def _chain_step_ok(problem: LabProblem, j: int, step: str) -> bool:
    m = _CHAIN.match(step)
    if m is None or j >= problem.n_ops:
        return False
    x, op, y, z = int(m[1]), m[2], int(m[3]), int(m[4])
    want_op, b = problem.ops[j]
    v = problem.values[j]
    if op != want_op or z != problem.values[j + 1]:
        return False
    return (x, y) == (v, b) or (op != "-" and (y, x) == (v, b))


def check_steps(problem: LabProblem, steps: Sequence[str]) -> StepCheck:
    """Rate every step of a solution against the problem, exactly.

    The k-th operation step is compared with the k-th operation of the problem (so a
    solution that slips and then returns to the right numbers has its later steps rated
    good again: errors can cancel). A restatement is neutral when it states the true
    running total after the operations so far, bad otherwise. The ``# Answer`` step is
    good when every operation has been written and the answer is the expected digit.
    Anything after the answer, or unparseable, is bad.
    """
    ratings, answer, j = [], None, 0
    for step in steps:
        if answer is not None:
            ratings.append(-1)  # nothing may follow the answer
            continue
        m = _ANSWER.match(step)
        if m is not None:
            answer = m[1].strip()
            ratings.append(1 if (j == problem.n_ops and answer == problem.answer) else -1)
            continue
        n = _NEUTRAL.match(step)
        if n is not None:
            # true only after an operation of the problem (not before the first, nor
            # after a sample has written more operations than the problem has)
            ratings.append(0 if 0 < j <= problem.n_ops and int(n[1]) == problem.values[j]
                           else -1)
            continue
        ratings.append(1 if _chain_step_ok(problem, j, step) else -1)
        if _CHAIN.match(step):
            j += 1
    return StepCheck(tuple(ratings), answer, answer is not None and answer == problem.answer)
