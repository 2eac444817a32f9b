"""Load PRM800K and MATH into :mod:`prm_lib.schema` objects.

Two PRM800K layouts are read:

* the **official raw layout** (``phase{1,2}_{train,test}.jsonl``): one labeled solution
  per line, as released by OpenAI (see :func:`read_raw_jsonl`);
* the **stepwise-critic layout** (parquet): one rated candidate step per row, with the
  steps chosen so far in ``responses`` (see :func:`read_stepwise_critic`). Rows are
  stored session by session, so each labeled solution is rebuilt by walking the rows in
  order: a run of rows with the same problem and prefix is one step position, and a new
  solution starts at a position with an empty prefix.

Bad input never disappears silently. With ``on_error="raise"`` (the default) the first
problem raises :class:`DataFormatError` naming the file, the line or row, what was wrong
and what to do. With ``on_error="skip"`` bad lines or rows are skipped, counted by reason
in the returned :class:`LoadReport`, and a warning summarises them.

:func:`load_prm800k` is the entry point the chapters use: it finds the files
(:mod:`prm_lib.sources`), reads them, joins ground-truth answers from MATH, and for
training splits enforces the MATH500 guard (:mod:`prm_lib.splits`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from .schema import FINISH_REASONS, RATINGS, Completion, LabeledSolution, MathProblem, Step
from .sources import find_local, locate
from .splits import LIGHTEVAL_SUFFIX, assert_no_math500, problem_key

__all__ = [
    "DataFormatError",
    "LoadReport",
    "PRM800K",
    "read_raw_jsonl",
    "read_stepwise_critic",
    "load_prm800k",
    "load_math500",
    "load_math_problems",
    "attach_math",
]

OnError = Literal["raise", "skip"]


class DataFormatError(ValueError):
    """A data file is malformed; the message names the file, the place and the fix."""


@dataclass
class LoadReport:
    """What happened to every line or row of a file.

    Attributes:
        path: the file read.
        unit: ``"line"`` or ``"row"``.
        total: lines or rows in the file.
        counts: how many units went where, e.g. ``{"solution": 941, "blank": 1}`` for raw
            JSONL, or ``{"rated step": ..., "unrated step": ..., "labeler-written step":
            ..., "skipped": ...}`` for stepwise-critic rows. Always sums to ``total``.
        skipped: why units were skipped: reason -> count.
        examples: the first few skipped places with their reason, for messages.
    """

    path: str
    unit: str
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str, n: int = 1) -> None:
        self.counts["skipped"] += n
        self.skipped[reason] += n
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {reason}")

    @property
    def accounted(self) -> bool:
        """True when every line or row is counted exactly once."""
        return sum(self.counts.values()) == self.total

    def summary(self) -> str:
        parts = ", ".join(f"{v:,} {k}" for k, v in self.counts.most_common())
        text = f"{Path(self.path).name}: {self.total:,} {self.unit}s = {parts}"
        if self.skipped:
            reasons = "; ".join(f"{v:,} x {k}" for k, v in self.skipped.most_common())
            text += f"\n  skipped: {reasons}\n  first: " + "\n         ".join(self.examples)
        return text

    def _warn(self) -> None:
        if self.skipped:
            warnings.warn(f"skipped bad input. {self.summary()}", stacklevel=3)


class PRM800K(list):
    """A list of :class:`LabeledSolution` with the :class:`LoadReport` of each file read."""

    def __init__(self, solutions: Iterable[LabeledSolution] = (), reports=()):
        super().__init__(solutions)
        self.reports: list[LoadReport] = list(reports)

    @property
    def problems(self) -> list[str]:
        """Distinct problems, in order of first appearance."""
        return list(dict.fromkeys(s.problem for s in self))


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")


def _rating(value, where: str, what: str = "column 'rating'", *,
            nan_is_unrated: bool = False) -> int | None:
    """A rating: -1, 0, +1 (an int, or a float with that value), or None (unrated).

    NaN means unrated only where the layout stores missing values so (``nan_is_unrated``,
    the stepwise-critic parquet's float column); in JSON it is an error. Booleans are
    errors too, although Python counts ``True`` as 1: a ``true`` rating means a writer
    confused a yes/no "correct?" flag with the -1/0/+1 scale, and ``false`` would
    silently read as neutral (0) where bad (-1) was probably meant.
    """
    if value is None:
        return None
    if nan_is_unrated and isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in RATINGS:
        raise DataFormatError(
            f"{where}: unknown rating {value!r:.60} ({what}); PRM800K ratings are -1 (bad), "
            "0 (neutral), 1 (good) or null (unrated)"
        )
    return int(value)


def _text(value, where: str, what: str) -> str:
    """Non-empty text (a step, a problem): anything else is an error naming ``what``."""
    _check_text(value, where, what)
    if not value.strip():
        raise DataFormatError(f"{where}: {what} is empty; every step needs text")
    return value


def _check_text(value, where: str, what: str) -> None:
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: {what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a JSON escape or undecodable bytes
        raise DataFormatError(f"{where}: {what} is not valid UTF-8 text") from None


def _optional_text(value, where: str, what: str) -> str | None:
    """None or a string (metadata such as ``labeler``; may be empty)."""
    if value is not None:
        _check_text(value, where, what)
    return value


def _optional_int(value, where: str, what: str) -> int | None:
    """None or an integer (an int, or a float with an integral value; not a bool)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataFormatError(f"{where}: {what} must be an integer or null, got {value!r:.60}")
    return value


def _optional_number(value, where: str, what: str) -> float | None:
    """None or a finite number (not a bool), as a float."""
    if value is None:
        return None
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            number = math.inf
        if math.isfinite(number):
            return number
    raise DataFormatError(f"{where}: {what} must be a finite number or null, got {value!r:.60}")


def _optional_flag(value, where: str, what: str) -> bool:
    """A JSON boolean; null (absent) is False. 0/1 or "yes" are errors, not guesses."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DataFormatError(f"{where}: {what} must be true, false or null, got {value!r:.60}")
    return value


# --------------------------------------------------------------------------- raw JSONL


def read_json_lines(lines, path: Path, report: LoadReport, on_error: str, handle) -> None:
    """Call ``handle(value, where, lineno)`` for each non-blank JSONL line, counting every
    line in ``report`` (``total``, ``blank``).

    Invalid JSON, or a :class:`DataFormatError` raised by ``handle``, is re-raised with
    the file named (``on_error="raise"``) or counted as skipped with its reason
    (``"skip"``), and reading goes on. The one place that decides what happens to a bad
    line, for every JSONL reader of the package.
    """
    for lineno, line in enumerate(lines, start=1):
        report.total += 1
        where = f"{path.name}:{lineno}"
        if not line.strip():
            report.counts["blank"] += 1
            continue
        try:
            handle(parse_json_line(line, where), where, lineno)
        except DataFormatError as exc:
            if on_error == "raise":
                raise DataFormatError(f"{exc} [file: {path}]") from None
            report.skip(where, str(exc).split(": ", 1)[-1])


def parse_json_line(line: str, where: str):
    """One JSON value from a JSONL line; :class:`DataFormatError` naming ``where``
    (``file:line``) if it is not valid JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
            "each line must hold one complete JSON object"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4,300 digits
        raise DataFormatError(f"{where}: not valid JSON ({exc})") from None


def _require(obj, key: str, where: str, path: str, kind: type | None = None):
    """``obj[key]``, where ``obj`` must be a JSON object holding ``key`` (named ``path`` in
    messages) and, when ``kind`` is given, the value must be of that type."""
    if not isinstance(obj, dict):
        parent = path.rsplit(".", 1)[0] if "." in path else "the line"
        raise DataFormatError(
            f"{where}: {parent} must be a JSON object, got {type(obj).__name__}"
        )
    if key not in obj:
        raise DataFormatError(
            f"{where}: missing field {path!r}; is this PRM800K's raw layout "
            "(one labeled solution per line)?"
        )
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise DataFormatError(
            f"{where}: field {path!r} must be a JSON "
            f"{'object' if kind is dict else 'array'}, got {type(value).__name__}"
        )
    return value


def _parse_completion(c, where: str, at: str) -> Completion:
    text = _text(_require(c, "text", where, f"{at}.text"), where, f"{at}.text")
    return Completion(
        text,
        _rating(c.get("rating"), where, f"field '{at}.rating'"),
        _optional_flag(c.get("flagged"), where, f"{at}.flagged"),
    )


def _parse_step(raw, where: str, at: str) -> Step:
    completions = _require(raw, "completions", where, f"{at}.completions", list)
    if not completions:
        raise DataFormatError(f"{where}: {at} has no completions")
    comps = tuple(
        _parse_completion(c, where, f"{at}.completions[{j}]") for j, c in enumerate(completions)
    )
    chosen = _optional_int(raw.get("chosen_completion"), where, f"{at}.chosen_completion")
    if chosen is not None and not 0 <= chosen < len(comps):
        raise DataFormatError(
            f"{where}: {at}.chosen_completion {chosen!r:.60} is not an index into its "
            f"{len(comps)} completions"
        )
    human = raw.get("human_completion")
    if human is not None:
        # Some exports store the human step as an object with a "text" field.
        if isinstance(human, dict):
            human = _require(human, "text", where, f"{at}.human_completion.text")
        human = _text(human, where, f"{at}.human_completion")
    return Step(comps, chosen, human)


def _parse_raw(obj, where: str, phase: int | None) -> LabeledSolution:
    """One line of the raw layout; every field is checked, and a wrong one raises
    :class:`DataFormatError` naming ``where`` (``file:line``) and the field."""
    question = _require(obj, "question", where, "question", dict)
    label = _require(obj, "label", where, "label", dict)
    problem = _text(_require(question, "problem", where, "question.problem"), where,
                    "question.problem")
    raw_steps = _require(label, "steps", where, "label.steps", list)
    steps = [_parse_step(raw, where, f"label.steps[{i}]") for i, raw in enumerate(raw_steps)]
    finish = label.get("finish_reason")
    if finish is not None and (not isinstance(finish, str) or finish not in FINISH_REASONS):
        raise DataFormatError(
            f"{where}: unknown label.finish_reason {finish!r:.60}; expected one of "
            f"{FINISH_REASONS}"
        )
    generation = _optional_int(obj.get("generation"), where, "generation")
    pre_steps = question.get("pre_generated_steps")
    if pre_steps is not None:
        if not isinstance(pre_steps, list):
            raise DataFormatError(f"{where}: question.pre_generated_steps must be a list "
                                  f"of strings or null, got {type(pre_steps).__name__}")
        for i, s in enumerate(pre_steps):
            _check_text(s, where, f"question.pre_generated_steps[{i}]")
    text = {k: _optional_text(question.get(k), where, f"question.{k}")
            for k in ("ground_truth_answer", "ground_truth_solution", "pre_generated_answer")}
    return LabeledSolution(
        problem=problem,
        steps=steps,
        ground_truth_answer=text["ground_truth_answer"],
        ground_truth_solution=text["ground_truth_solution"],
        phase=phase if phase is not None else (1 if generation is None else 2),
        generation=generation,
        finish_reason=finish,
        is_quality_control=_optional_flag(obj.get("is_quality_control_question"), where,
                                          "is_quality_control_question"),
        is_initial_screening=_optional_flag(obj.get("is_initial_screening_question"), where,
                                            "is_initial_screening_question"),
        labeler=_optional_text(obj.get("labeler"), where, "labeler"),
        timestamp=_optional_text(obj.get("timestamp"), where, "timestamp"),
        total_time_ms=_optional_int(label.get("total_time"), where, "label.total_time"),
        pre_generated_answer=text["pre_generated_answer"],
        pre_generated_verifier_score=_optional_number(
            question.get("pre_generated_verifier_score"), where,
            "question.pre_generated_verifier_score"),
        source=where,
    )


def read_raw_jsonl(
    path: str | os.PathLike, *, phase: int | None = None, on_error: OnError = "raise"
) -> PRM800K:
    """Read a PRM800K file in the official raw layout (one labeled solution per line).

    Args:
        path: the ``.jsonl`` file.
        phase: 1 or 2; None infers it per line (``generation`` null means phase 1).
        on_error: ``"raise"`` on the first bad line, or ``"skip"`` bad lines, counting
            them by reason in the report (a warning summarises them).

    Returns:
        The solutions in file order; ``.reports[0]`` counts every line as ``solution``,
        ``blank`` or ``skipped``.

    Raises:
        DataFormatError: (``on_error="raise"``) a line that is not JSON, or a field that
            is missing or has the wrong type or value, named with ``file:line`` and the
            field's path (e.g. ``label.steps[2].completions[0].rating``). Ratings must be
            -1, 0, 1 or null (NaN, 1.5, "1" and booleans are errors); numbers must be
            finite, integers integral, flags booleans, texts valid UTF-8 strings (problem
            and step texts also non-empty; metadata strings such as ``labeler`` may be
            empty).
    """
    _check_on_error(on_error)
    path = Path(path)
    report = LoadReport(str(path), "line")
    out = []
    # Undecodable bytes become lone surrogates, which the text checks report with their
    # line, instead of a UnicodeDecodeError that names neither file nor line.
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        def handle(obj, where, _lineno):
            out.append(_parse_raw(obj, where, phase))
            report.counts["solution"] += 1

        read_json_lines(f, path, report, on_error, handle)
    report._warn()
    return PRM800K(out, [report])


# ------------------------------------------------------------------ stepwise-critic


_SWC_REQUIRED = (
    "instruction",
    "responses",
    "next_response",
    "rating",
    "is_human_response",
    "is_preferred_response",
)


def read_stepwise_critic(
    path: str | os.PathLike, *, phase: int = 1, on_error: OnError = "raise"
) -> PRM800K:
    """Rebuild labeled solutions from a stepwise-critic parquet file.

    Each row is one candidate step at one position: ``instruction`` (the problem),
    ``responses`` (the steps chosen so far), ``next_response`` (the candidate),
    ``rating``, ``is_human_response`` (the labeler wrote it), ``is_preferred_response``
    (it continues the solution), ``is_solution``, and ``answer`` (the final step's
    ``# Answer`` section, which this layout stores apart from the step text and which is
    put back here). A third-party ``error_reason`` column, when present, is ignored: it
    is not part of PRM800K.

    The layout does not record ``finish_reason``; it is inferred where the rows allow it:
    ``"solution"`` when the last step is marked ``is_solution``, ``"found_error"`` when
    the solution stops at a position where no candidate was chosen and every rated one
    is -1; otherwise None.

    Args:
        path: the ``.parquet`` file.
        phase: stored on every solution (the layout does not record it).
        on_error: ``"raise"`` or ``"skip"`` (see :func:`read_raw_jsonl`).

    Returns:
        The solutions in file order; ``.reports[0]`` counts every row as ``rated step``,
        ``unrated step``, ``labeler-written step`` or ``skipped``.
    """
    import pandas as pd

    _check_on_error(on_error)
    path = Path(path)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise DataFormatError(f"{path}: cannot read as parquet ({exc})") from None
    missing = [c for c in _SWC_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; a stepwise-critic file has columns "
            f"{list(_SWC_REQUIRED) + ['is_solution', 'answer']}"
        )
    builder = _SessionBuilder(path, phase, on_error)
    cols = [*_SWC_REQUIRED, "is_solution", "answer"]
    present = [c for c in cols if c in df.columns]
    for row in zip(range(len(df)), *(df[c].tolist() for c in present)):
        builder.add(row[0], dict(zip(present, row[1:])))
    return builder.finish()


class _SessionBuilder:
    """Walks stepwise-critic rows in file order and rebuilds each labeled solution."""

    def __init__(self, path: Path, phase: int, on_error: str):
        self.path, self.phase, self.on_error = path, phase, on_error
        self.report = LoadReport(str(path), "row")
        self.solutions: list[LabeledSolution] = []
        self.session: dict | None = None  # problem, steps, prefix, first row, solved
        self.position: dict | None = None  # key, completions, chosen, human, rows

    # A row belongs to the open position when it shares its problem and prefix, unless it
    # is a second continuation: then an identical prefix started a new solution.
    def add(self, i: int, row: dict) -> None:
        self.report.total += 1
        where = f"{self.path.name}: row {i}"
        try:
            item = self._parse_row(row, where)
        except DataFormatError as exc:
            if self.on_error == "raise":
                raise DataFormatError(f"{exc} [file: {self.path}]") from None
            self.report.skip(where, str(exc).split(": ", 2)[-1])
            return
        key = (item["problem"], item["prefix"])
        pos = self.position
        if pos is not None and pos["key"] == key and not (item["continues"] and pos["continued"]):
            self._add_to_position(item, i)
            return
        self._close_position()
        if (
            self.session is not None
            and item["problem"] == self.session["problem"]
            and item["prefix"] == tuple(self.session["prefix"])
        ):
            self._open_position(key, item, i)
        elif not item["prefix"]:
            self._close_session()
            self.session = {"problem": item["problem"], "steps": [], "prefix": [], "first": i,
                            "solved": False}
            self._open_position(key, item, i)
        else:
            msg = (
                "its steps-so-far do not continue the solution being rebuilt (rows must "
                "stay in the file's original order)"
            )
            if self.on_error == "raise":
                raise DataFormatError(f"{where}: {msg} [file: {self.path}]")
            self.report.skip(where, msg)

    def _parse_row(self, row: dict, where: str) -> dict:
        problem = _text(row["instruction"], where, "instruction")
        prefix = row["responses"]
        if prefix is None or isinstance(prefix, str):
            raise DataFormatError(f"{where}: responses must be a list of steps")
        prefix = tuple(prefix)
        step = _text(row["next_response"], where, "next_response")
        answer = row.get("answer")
        text = step
        if isinstance(answer, str) and answer.strip():
            text = f"{step}\n\n# Answer\n\n{answer.strip()}"
        human = bool(row["is_human_response"])
        rating = _rating(row["rating"], where, nan_is_unrated=True)
        return {
            "problem": problem,
            "prefix": prefix,
            "step": step,
            "text": text,
            "rating": rating,
            "human": human,
            "continues": bool(row["is_preferred_response"]),
            "solution": bool(row.get("is_solution") or False),
        }

    def _open_position(self, key, item: dict, i: int) -> None:
        self.position = {"key": key, "completions": [], "chosen": None, "human": None,
                         "continued": False, "next": None, "solution": False}
        self._add_to_position(item, i)

    def _add_to_position(self, item: dict, i: int) -> None:
        pos = self.position
        self.session["last"] = i
        if item["human"]:
            self.report.counts["labeler-written step"] += 1
            pos["human"] = item["text"]
        else:
            self.report.counts["rated step" if item["rating"] is not None else "unrated step"] += 1
            pos["completions"].append(Completion(item["text"], item["rating"]))
            if item["continues"]:
                pos["chosen"] = len(pos["completions"]) - 1
        if item["continues"]:
            pos["continued"] = True
            pos["next"] = item["step"]
            pos["solution"] = item["solution"]

    def _close_position(self) -> None:
        pos, self.position = self.position, None
        if pos is None:
            return
        human = pos["human"]
        if not pos["completions"] and human is None:
            return
        s = self.session
        s["steps"].append(Step(tuple(pos["completions"]), pos["chosen"], human))
        s["prefix"].append(pos["next"])  # None when the solution stops here
        s["solved"] = pos["solution"]

    def _close_session(self) -> None:
        s, self.session = self.session, None
        if s is None or not s["steps"]:
            return
        last = s["steps"][-1]
        finish = None
        if s["solved"]:
            finish = "solution"
        elif last.chosen is None and last.human_completion is None:
            rated = [c.rating for c in last.completions if c.rating is not None]
            if rated and all(r == -1 for r in rated):
                finish = "found_error"
        self.solutions.append(
            LabeledSolution(
                problem=s["problem"],
                steps=s["steps"],
                phase=self.phase,
                finish_reason=finish,
                source=f"{self.path.name}: rows {s['first']}-{s['last']}",
            )
        )

    def finish(self) -> PRM800K:
        self._close_position()
        self._close_session()
        self.report._warn()
        return PRM800K(self.solutions, [self.report])


# --------------------------------------------------------------------------- MATH


def _level(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    return int(digits) if digits else None


def _read_jsonl(path: Path) -> list[dict]:
    rows: list[dict] = []
    with path.open(encoding="utf-8") as f:
        read_json_lines(f, path, LoadReport(str(path), "line"), "raise",
                        lambda obj, where, lineno: rows.append(obj))
    return rows


def _math_row(row: dict, where: str, split: str | None) -> MathProblem:
    from .grading import last_boxed

    for key in ("problem",):
        if key not in row:
            raise DataFormatError(f"{where}: missing field {key!r}")
    answer = row.get("answer")
    if answer is None and row.get("solution"):
        answer = last_boxed(row["solution"])
    if answer is None:
        raise DataFormatError(f"{where}: no 'answer' field and no \\boxed{{}} in 'solution'")
    uid = row.get("unique_id")
    return MathProblem(
        problem=row["problem"],
        answer=answer,
        subject=row.get("subject") or row.get("type"),
        level=_level(row.get("level")),
        solution=row.get("solution"),
        unique_id=uid,
        split=split or (uid.split("/")[0] if uid else None),
    )


def load_math500(data_dir=None, download: bool = True) -> list[MathProblem]:
    """The paper's 500 evaluation problems (``math/math500_test.jsonl``)."""
    path = locate("math/math500_test.jsonl", data_dir, download)
    return [
        _math_row(r, f"{path}:{i}", "test") for i, r in enumerate(_read_jsonl(path), start=1)
    ]


def load_math_problems(data_dir=None, download: bool = True) -> dict[str, MathProblem]:
    """All MATH problems that have a known answer, keyed by :func:`problem_key`.

    Uses the local Hendrycks MATH files when present (``math/math_test.jsonl`` and
    ``math/math_train_answers.parquet``), else the paper's own splits
    (``math/math_splits_train.jsonl`` + ``math/math500_test.jsonl``, downloaded when
    needed), which together hold all 12,500 MATH problems.
    """
    import pandas as pd

    problems: dict[str, MathProblem] = {}
    test = find_local("math/math_test.jsonl", data_dir)
    train = find_local("math/math_train_answers.parquet", data_dir)
    if test is not None and train is not None:
        for i, r in enumerate(_read_jsonl(test), start=1):
            p = _math_row(r, f"{test}:{i}", "test")
            problems[problem_key(p.problem)] = p
        df = pd.read_parquet(train)
        for i, r in enumerate(df.to_dict("records")):
            try:
                answer = r["reward_model"]["ground_truth"]
            except (KeyError, TypeError):
                raise DataFormatError(f"{train}: row {i}: no reward_model.ground_truth") from None
            text = r["problem"].removesuffix(LIGHTEVAL_SUFFIX)
            p = MathProblem(text, answer, r.get("type"), _level(r.get("level")), split="train")
            problems[problem_key(p.problem)] = p
    else:
        path = locate("math/math_splits_train.jsonl", data_dir, download)
        for i, r in enumerate(_read_jsonl(path), start=1):
            p = _math_row(r, f"{path}:{i}", None)
            problems[problem_key(p.problem)] = p
    for p in load_math500(data_dir, download):  # also fills subject/level/unique_id
        problems[problem_key(p.problem)] = p
    return problems


def attach_math(
    solutions: Iterable[LabeledSolution], problems: dict[str, MathProblem]
) -> list[str]:
    """Fill ground-truth answer, subject and level from MATH; return unmatched problems.

    A ground-truth answer already in the file (the raw layout has one) is kept.
    """
    missing = {}
    for s in solutions:
        p = problems.get(problem_key(s.problem))
        if p is None:
            missing[s.problem] = None
            continue
        if not s.ground_truth_answer:
            s.ground_truth_answer = p.answer
        if s.ground_truth_solution is None:
            s.ground_truth_solution = p.solution
        s.subject, s.level = p.subject, p.level
    return list(missing)


# --------------------------------------------------------------------------- entry point


def load_prm800k(
    split: Literal["train", "test"] = "train",
    phase: int = 1,
    *,
    layout: Literal["auto", "raw", "stepwise-critic"] = "auto",
    path: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    on_error: OnError = "raise",
    join_answers: bool = True,
    max_problems: int | None = None,
) -> PRM800K:
    """Load one PRM800K split as labeled solutions, ready for the rest of the book.

    Args:
        split: ``"train"`` or ``"test"``. Training splits go through the MATH500 guard.
        phase: 1 or 2.
        layout: ``"raw"`` (official JSONL), ``"stepwise-critic"`` (parquet), or
            ``"auto"``: a local raw file if there is one, else a local stepwise-critic
            file, else download the raw file.
        path: read this file instead of looking one up (layout from its extension).
        data_dir: a local data folder (see :mod:`prm_lib.sources`).
        download: allow downloading missing files.
        on_error: ``"raise"`` or ``"skip"`` bad lines/rows (counted in ``.reports``).
        join_answers: fill ground-truth answers, subject and level from MATH; raises if
            a problem has no MATH match.
        max_problems: keep only the first this many problems (file order), for small runs.

    Raises:
        LeakError: ``split="train"`` and the data contains a MATH500 problem.
        DataNotFoundError: the file is neither local nor downloadable.
        DataFormatError: malformed input (with ``on_error="raise"``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2, not {phase!r}")
    name = f"phase{phase}_{split}"
    if path is None:
        raw, swc = f"prm800k/{name}.jsonl", f"prm800k/{name}.stepwise-critic.parquet"
        if layout == "raw":
            path = locate(raw, data_dir, download)
        elif layout == "stepwise-critic":
            path = locate(swc, data_dir, download)
        else:
            path = find_local(raw, data_dir) or find_local(swc, data_dir) or locate(
                raw, data_dir, download
            )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        data = read_stepwise_critic(path, phase=phase, on_error=on_error)
    else:
        data = read_raw_jsonl(path, phase=phase, on_error=on_error)
    if split == "train":
        assert_no_math500(data.problems, where=path.name)
    if max_problems is not None:
        keep = set(data.problems[:max_problems])
        data = PRM800K([s for s in data if s.problem in keep], data.reports)
    if join_answers:
        missing = attach_math(data, load_math_problems(data_dir, download))
        if missing:
            raise DataFormatError(
                f"{path}: {len(missing)} problem(s) have no match in MATH, so their "
                f"ground-truth answers are unknown; first: {missing[0][:100]!r}. "
                "Check that the MATH files belong to the same MATH release, or pass "
                "join_answers=False."
            )
    return data
