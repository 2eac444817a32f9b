"""Turn labeled solutions into token sequences with labels, the way the paper does.

A solution is the problem, a blank line, then its steps one per line. The PRM reads the
sequence and, **at the last token of every step**, predicts one label token that stands
for the step's rating: ``" +"`` (good), ``" ="`` (neutral), ``" -"`` (bad). The label
tokens are never inserted into the text: the model's next-token prediction at the step's
last token *is* the verdict. So there is no separator token whose tokenization could
shift in context: each step is tokenized on its own and the pieces are concatenated with
the newline token, which makes every label position exact by construction (see
:func:`encode_steps`; ``tests/test_formatting.py`` checks it on real tokenizers).

Choices, with the paper's where it has one:

* **Supervision stops at the first bad step**: a sequence ends with its first step rated
  -1; later steps are not shown (PRM800K does not label them reliably).
* **Neutral** is its own class by default (three label tokens, as in the paper); the
  scoring rule then decides whether neutral counts as correct (the paper's best rule
  does). ``neutral="positive"`` or ``"negative"`` merges it at training time instead
  (TRL's PRM800K converter uses ``"negative"``).
* **Phase-1 alternatives** become extra examples: the trajectory up to their position
  plus the alternative, labeled on the alternative only, so each rating is trained once.
* **Labeler-written steps** carry no rating in the release; the labeling instructions
  only allowed writing good steps, so they are labeled good by default
  (``human_steps="skip"`` leaves them unlabeled).
* **Too long**: a sequence over ``max_length`` tokens keeps its longest prefix of whole
  steps, never a cut step; sequences with no whole step that fits are dropped. Both are
  counted in the :class:`FormatReport`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .schema import LabeledSolution

__all__ = [
    "PRM_LABELS",
    "ORM_LABELS",
    "FormatConfig",
    "Example",
    "FormatReport",
    "label_token_ids",
    "encode_steps",
    "SolutionTokens",
    "prm_examples",
    "CompleteSolution",
    "complete_solutions",
    "orm_examples",
    "outcome_examples",
]

#: PRM classes in order: index 0 = bad (-1), 1 = neutral (0), 2 = good (+1).
PRM_LABELS: tuple[str, ...] = (" -", " =", " +")
#: ORM classes: index 0 = wrong final answer, 1 = correct.
ORM_LABELS: tuple[str, ...] = (" -", " +")

_RATING_TO_CLASS = {-1: 0, 0: 1, 1: 2}


@dataclass(frozen=True)
class FormatConfig:
    """How solutions become training sequences.

    Attributes:
        max_length: longest sequence in tokens (prompt + steps).
        neutral: ``"neutral"`` keeps three classes; ``"positive"``/``"negative"`` merge
            neutral into good/bad at training time.
        human_steps: ``"positive"`` labels labeler-written steps good; ``"skip"`` does not
            label them.
        alternatives: add phase-1 alternatives as extra examples.
        prompt_template: text before the first step; ``{problem}`` is replaced.
    """

    max_length: int = 512
    neutral: Literal["neutral", "positive", "negative"] = "neutral"
    human_steps: Literal["positive", "skip"] = "positive"
    alternatives: bool = True
    prompt_template: str = "{problem}\n\n"

    def label_class(self, rating: int | None, human: bool = False) -> int | None:
        """The PRM class index for a rating, or None when the step gets no label."""
        if rating is None:
            return 2 if human and self.human_steps == "positive" else None
        if rating == 0 and self.neutral != "neutral":
            return 2 if self.neutral == "positive" else 0
        return _RATING_TO_CLASS[rating]


@dataclass
class Example:
    """One training sequence.

    Attributes:
        input_ids: token ids, prompt then steps separated by the newline token.
        label_positions: indices into ``input_ids`` of the tokens whose next-token
            prediction is trained (the last token of a labeled step).
        labels: class index per label position (see :data:`PRM_LABELS`/:data:`ORM_LABELS`).
        source: where it came from, for error messages and inspection.
    """

    input_ids: list[int]
    label_positions: list[int]
    labels: list[int]
    source: str = ""


@dataclass
class FormatReport:
    """Counts of what formatting did: examples made, truncated, dropped, and labels."""

    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return ", ".join(f"{v:,} {k}" for k, v in sorted(self.counts.items()))


def label_token_ids(tokenizer, labels: Sequence[str] = PRM_LABELS) -> list[int]:
    """Token ids of the label strings; each must be exactly one token."""
    ids = []
    for text in labels:
        toks = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(toks) != 1:
            raise ValueError(
                f"label {text!r} is {len(toks)} tokens for this tokenizer; label tokens "
                "must be single tokens: choose other label strings"
            )
        ids.append(toks[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"label strings {labels} map to the same token")
    return ids


def _newline_ids(tokenizer) -> list[int]:
    """The step separator's tokens (one ``\\n`` token for byte-level BPE tokenizers;
    SentencePiece-style ones may add a space marker)."""
    ids = list(tokenizer("\n", add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError("this tokenizer encodes '\\n' as nothing; steps cannot be separated")
    return ids


class SolutionTokens:
    """A solution's tokens the way every reward model reads them, each distinct text
    tokenized once (solutions in a tree share most of their steps).

    ``tokens(text)`` is the text's ids; ``tokens.encode(problem, steps)`` is
    :func:`encode_steps`: ``(ids, ends)``, ``ends[i]`` the index of step ``i``'s last
    token.
    """

    def __init__(self, tokenizer, config: FormatConfig):
        self.tokenizer, self.config = tokenizer, config
        self.newline = _newline_ids(tokenizer)
        self.cache: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        ids = self.cache.get(text)
        if ids is None:
            ids = self.cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        ids = list(self(self.config.prompt_template.format(problem=problem)))
        ends = []
        for i, step in enumerate(steps):
            if not step.strip():
                raise ValueError(f"step {i} is empty")
            if i:
                ids.extend(self.newline)
            ids.extend(self(step))
            ends.append(len(ids) - 1)
        return ids, ends


def encode_steps(
    tokenizer, problem: str, steps: Sequence[str], config: FormatConfig = FormatConfig()
) -> tuple[list[int], list[int]]:
    """Token ids of a solution and the index of the last token of each step.

    Each step is tokenized on its own and the steps are joined with the newline token,
    so ``ids[ends[i]]`` is exactly the last token of step ``i`` whatever the step ends
    with (LaTeX, spaces, unicode) and the newline's token(s) (or the end) follow it.
    The final step may itself hold line breaks (PRM800K's ``# Answer`` section); it is
    still one step.

    Raises:
        ValueError: a step is empty.
    """
    return SolutionTokens(tokenizer, config).encode(problem, steps)


def _example(tokens: SolutionTokens, problem, steps, step_labels, report, what, source):
    """One Example, truncated to whole steps; None (counted) when no label survives."""
    ids, ends = tokens.encode(problem, steps)
    max_length = tokens.config.max_length
    if len(ids) > max_length:
        keep = sum(e < max_length for e in ends)
        lost = sum(c is not None for c in step_labels[keep:])
        ids, ends, step_labels = ids[: ends[keep - 1] + 1] if keep else [], ends[:keep], \
            step_labels[:keep]
        if lost:
            report.counts["labels lost beyond max_length"] += lost
    positions = [e for e, c in zip(ends, step_labels) if c is not None]
    labels = [c for c in step_labels if c is not None]
    if not labels:
        report.counts[f"{what} dropped: no labeled step within max_length"] += 1
        return None
    if len(ends) < len(steps):
        report.counts[f"{what} truncated at a step boundary"] += 1
    report.counts[f"{what} examples"] += 1
    report.counts["labels"] += len(labels)
    return Example(ids, positions, labels, source)


def trajectory_labels(solution: LabeledSolution, config: FormatConfig):
    """The trajectory's step texts up to its first bad step, and their label classes."""
    traj = solution.trajectory
    stop = solution.first_error + 1 if solution.first_error is not None else len(traj)
    texts = [c.text for c in traj[:stop]]
    labels = [config.label_class(c.rating, human=solution.steps[i].is_human)
              for i, c in enumerate(traj[:stop])]
    return texts, labels


def solution_examples(tokens: SolutionTokens, solution: LabeledSolution,
                      config: FormatConfig, report: FormatReport):
    """The PRM examples of one labeled solution, in order: ``(None, trajectory example)``,
    then ``(p, example)`` for each rated alternative at position ``p``. An example is None
    where nothing labeled fits (counted in ``report``)."""
    s = solution
    texts, labels = trajectory_labels(s, config)
    if texts:
        yield None, _example(tokens, s.problem, texts, labels, report, "trajectory", s.source)
    if not config.alternatives:
        return
    # An alternative at position p shares the trajectory's first p steps, which must
    # all be good: positions up to the first bad step (or the position where the
    # labeler stopped) qualify.
    limit = s.first_error if s.first_error is not None else len(s.trajectory)
    for p, step in enumerate(s.steps[: limit + 1]):
        for j, alt in enumerate(step.alternatives):
            label = config.label_class(alt.rating)
            if label is None:
                report.counts["alternatives skipped: unrated"] += 1
                continue
            yield p, _example(tokens, s.problem, [*texts[:p], alt.text],
                              [None] * p + [label], report, "alternative",
                              f"{s.source} position {p} alternative {j}")


def prm_examples(
    tokenizer, solutions: Sequence[LabeledSolution], config: FormatConfig = FormatConfig()
) -> tuple[list[Example], FormatReport]:
    """PRM training examples: each trajectory up to its first bad step, plus (phase 1)
    one example per rated alternative. Returns the examples and a report of counts."""
    report = FormatReport()
    tokens = SolutionTokens(tokenizer, config)
    out = [ex for s in solutions for _, ex in solution_examples(tokens, s, config, report)
           if ex is not None]
    return out, report


@dataclass(frozen=True)
class CompleteSolution:
    """A solution that reaches a final answer, with its outcome label.

    Attributes:
        problem: the problem text.
        steps: the steps, the last one holding the ``# Answer`` section.
        answer: the final answer given.
        is_correct: the answer matches the ground truth.
        source: where it came from.
    """

    problem: str
    steps: tuple[str, ...]
    answer: str
    is_correct: bool
    source: str


def complete_solutions(
    solutions: Sequence[LabeledSolution], alternatives: bool = True, grade=None
) -> tuple[list[CompleteSolution], FormatReport]:
    """Every distinct complete solution in labeled data, graded by its final answer.

    Complete solutions are trajectories whose last step gives an answer and, with
    ``alternatives``, trajectory prefixes ending in an alternative that gives one (in
    phase 1 these are mostly the wrong answers labelers rejected). Identical ones
    (labeling sessions that share a tree) are kept once.

    Args:
        grade: ``grade(answer, ground_truth) -> bool``; default
            :func:`prm_lib.grading.grade_answer`.
    """
    from .grading import extract_answer, grade_answer

    grade = grade or grade_answer
    report = FormatReport()
    out, seen = [], set()
    for s in solutions:
        if not s.ground_truth_answer:
            report.counts["solutions skipped: no ground-truth answer"] += 1
            continue
        texts = s.step_texts
        candidates = [(texts, s.source)] if texts else []
        if alternatives:
            for p, step in enumerate(s.steps[: len(texts) + 1]):
                for j, alt in enumerate(step.alternatives):
                    candidates.append(([*texts[:p], alt.text],
                                       f"{s.source} position {p} alternative {j}"))
        for steps, source in candidates:
            answer = extract_answer(steps[-1])
            if answer is None:
                continue
            key = (s.problem, tuple(steps))
            if key in seen:
                report.counts["duplicates skipped"] += 1
                continue
            seen.add(key)
            ok = bool(grade(answer, s.ground_truth_answer))
            out.append(CompleteSolution(s.problem, tuple(steps), answer, ok, source))
            report.counts["correct" if ok else "incorrect"] += 1
    return out, report


def orm_examples(
    tokenizer,
    solutions: Sequence[LabeledSolution],
    config: FormatConfig = FormatConfig(),
    grade=None,
) -> tuple[list[Example], FormatReport]:
    """ORM training examples: every complete solution in the data (see
    :func:`complete_solutions`), labeled 1 if its final answer is correct and 0 if not,
    with the label on the last token of the last step. Only that step is labeled: if
    ``max_length`` cuts it, the example is dropped and counted, never labeled elsewhere.
    """
    complete, report = complete_solutions(solutions, config.alternatives, grade)
    return outcome_examples(tokenizer, complete, config, report)


def outcome_examples(
    tokenizer,
    solutions: Sequence[CompleteSolution],
    config: FormatConfig = FormatConfig(),
    report: FormatReport | None = None,
) -> tuple[list[Example], FormatReport]:
    """One example per solution, labeled ``int(is_correct)`` on the last token of its last
    step and nowhere else (the ORM's format, whatever decided the label: the final answer,
    or a checker that requires every step to be right). Solutions whose last step does
    not fit in ``max_length`` are dropped and counted."""
    tokens = SolutionTokens(tokenizer, config)
    report = report if report is not None else FormatReport()
    out = []
    for c in solutions:
        labels = [None] * (len(c.steps) - 1) + [int(c.is_correct)]
        ex = _example(tokens, c.problem, list(c.steps), labels, report, "solution", c.source)
        if ex is not None:
            out.append(ex)
    return out, report
