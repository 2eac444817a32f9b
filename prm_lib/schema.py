"""The one in-memory form of a labeled PRM800K solution.

Every loader in :mod:`prm_lib.data` returns :class:`LabeledSolution` objects, whatever the
file layout, so the rest of the book never looks at raw JSON or parquet rows.

A solution is a list of :class:`Step` positions. At each position the generator proposed
one or more candidate steps (:class:`Completion`), each rated by a human labeler:
``+1`` (good), ``0`` (neutral: fine, but no progress), ``-1`` (bad), or ``None`` (not rated).
The labeler then either chose one candidate to continue (``chosen``), or wrote a step of
their own (``human_completion``). In phase 1 several candidates are common; in phase 2 a
position usually holds the one pre-generated step.

The *trajectory* is the solution as a reader sees it: at each position the chosen
candidate, else the labeler's own step; at the last position, where nothing was chosen
(the labeler found an error and stopped), the single candidate if there is exactly one
(phase 2's pre-generated step, typically rated -1). A last position with several
candidates and none chosen contributes only alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "RATINGS",
    "FINISH_REASONS",
    "Completion",
    "Step",
    "LabeledSolution",
    "MathProblem",
]

#: The ratings PRM800K uses: bad, neutral, good.
RATINGS: tuple[int, ...] = (-1, 0, 1)

#: ``label.finish_reason`` values of the official release.
FINISH_REASONS: tuple[str, ...] = ("found_error", "solution", "bad_problem", "give_up")


@dataclass(frozen=True)
class Completion:
    """One candidate step proposed by the generator and rated by a labeler.

    Attributes:
        text: the step, one line of reasoning (the final step also holds the
            ``# Answer`` section).
        rating: -1, 0, +1, or None when the labeler left it unrated.
        flagged: the labeler flagged the step as hard to judge.
    """

    text: str
    rating: int | None
    flagged: bool = False


@dataclass(frozen=True)
class Step:
    """One position of a labeled solution: the candidates rated there and what continued.

    Attributes:
        completions: the candidates rated at this position, in the order shown.
        chosen: index into ``completions`` of the candidate that continues the solution,
            or None (the labeler wrote their own step, or stopped here).
        human_completion: a step the labeler wrote; it continues the solution only when
            ``chosen`` is None (the official reconstruction rule).
    """

    completions: tuple[Completion, ...]
    chosen: int | None = None
    human_completion: str | None = None

    @property
    def continuation(self) -> Completion | None:
        """The step the trajectory takes here, or None if it stops here without one.

        A labeler-written step is returned as a Completion with ``rating=None``: the
        labeling instructions only allowed writing a step the labeler judged good, but
        the release records no rating for it.
        """
        if self.chosen is not None:
            return self.completions[self.chosen]
        if self.human_completion is not None:
            return Completion(self.human_completion, None)
        if len(self.completions) == 1:
            return self.completions[0]
        return None

    @property
    def text(self) -> str | None:
        """The trajectory's step text at this position, or None."""
        c = self.continuation
        return None if c is None else c.text

    @property
    def rating(self) -> int | None:
        """The rating of the trajectory's step here (None: labeler-written or unrated)."""
        c = self.continuation
        return None if c is None else c.rating

    @property
    def is_human(self) -> bool:
        """True when the trajectory continues with the labeler's own step."""
        return self.chosen is None and self.human_completion is not None

    @property
    def alternatives(self) -> tuple[Completion, ...]:
        """Candidates rated here that the trajectory does not take."""
        cont = self.continuation
        if cont is None:
            return self.completions
        if self.chosen is None and len(self.completions) == 1 and self.human_completion is None:
            return ()
        return tuple(c for i, c in enumerate(self.completions) if i != self.chosen)


@dataclass
class LabeledSolution:
    """One labeled solution: a problem, its step positions and the labeling metadata.

    Attributes:
        problem: the MATH problem text.
        steps: the step positions, in order.
        ground_truth_answer: the MATH answer (joined from MATH when the file lacks it).
        ground_truth_solution: MATH's reference solution, when known.
        phase: 1 or 2 (PRM800K's two collection phases).
        generation: phase-2 active-learning generation (None in phase 1, -1 screening).
        finish_reason: one of :data:`FINISH_REASONS`, or None when the layout does not
            record it (the stepwise-critic layout; see :mod:`prm_lib.data`).
        is_quality_control: served to every labeler to check agreement with gold labels.
        is_initial_screening: one of the screening questions (generation -1).
        labeler, timestamp, total_time_ms: labeling metadata (raw layout only).
        pre_generated_answer, pre_generated_verifier_score: phase 2 only.
        source: where it came from, e.g. ``"phase1_train.jsonl:17"`` or
            ``"phase1_train.stepwise-critic.parquet:rows 0-10"``, for error messages.
    """

    problem: str
    steps: list[Step]
    ground_truth_answer: str | None = None
    ground_truth_solution: str | None = None
    phase: int | None = None
    generation: int | None = None
    finish_reason: str | None = None
    is_quality_control: bool = False
    is_initial_screening: bool = False
    labeler: str | None = None
    timestamp: str | None = None
    total_time_ms: int | None = None
    pre_generated_answer: str | None = None
    pre_generated_verifier_score: float | None = None
    source: str = ""
    subject: str | None = field(default=None, compare=False)
    level: int | None = field(default=None, compare=False)

    @property
    def trajectory(self) -> list[Completion]:
        """The solution as written: one Completion per step, up to where it stops."""
        out = []
        for step in self.steps:
            c = step.continuation
            if c is None:
                break
            out.append(c)
        return out

    @property
    def step_texts(self) -> list[str]:
        """The trajectory's step texts."""
        return [c.text for c in self.trajectory]

    @property
    def ratings(self) -> list[int | None]:
        """The trajectory's step ratings (None for labeler-written or unrated steps)."""
        return [c.rating for c in self.trajectory]

    @property
    def text(self) -> str:
        """The trajectory as one string, one step per line (the paper's format)."""
        return "\n".join(self.step_texts)

    @property
    def final_answer(self) -> str | None:
        """The answer given in the trajectory's ``# Answer`` section, if it has one."""
        from .grading import extract_answer

        steps = self.step_texts
        return extract_answer(steps[-1]) if steps else None

    @property
    def first_error(self) -> int | None:
        """Index of the first trajectory step rated -1, or None if there is none."""
        for i, r in enumerate(self.ratings):
            if r == -1:
                return i
        return None

    @property
    def n_rated(self) -> int:
        """Number of rated candidates over all positions (trajectory and alternatives)."""
        return sum(c.rating is not None for s in self.steps for c in s.completions)


@dataclass(frozen=True)
class MathProblem:
    """A MATH problem with its answer.

    Attributes:
        problem: the problem text.
        answer: the ground-truth final answer (LaTeX).
        subject: e.g. ``"Algebra"``, ``"Number Theory"`` (MATH's ``type``).
        level: difficulty 1-5, None when unknown.
        solution: MATH's reference solution, when the source has it.
        unique_id: e.g. ``"test/precalculus/807.json"``, when the source has it.
        split: ``"train"`` or ``"test"`` of the original Hendrycks MATH split.
    """

    problem: str
    answer: str
    subject: str | None = None
    level: int | None = None
    solution: str | None = None
    unique_id: str | None = None
    split: str | None = None
