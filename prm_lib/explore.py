"""Tables and pictures for looking at PRM800K (chapter 1).

Everything here turns a list of :class:`~prm_lib.schema.LabeledSolution` into a pandas
table or a figure; nothing is computed in the notebooks themselves.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from .grading import grade_answer
from .paper import PAPER_TABLE_3
from .schema import LabeledSolution

__all__ = [
    "RATING_NAMES",
    "RATING_COLORS",
    "solutions_table",
    "ratings_table",
    "table3",
    "render_solution",
    "plot_overview",
]

RATING_NAMES = {1: "+1 good", 0: "0 neutral", -1: "-1 bad", None: "unrated"}
#: Colour-blind-safe colours for step ratings (Okabe-Ito), used by every rating picture.
RATING_COLORS = {1: "#009E73", 0: "#E69F00", -1: "#D55E00", None: "#999999"}


def solutions_table(solutions: Sequence[LabeledSolution]) -> pd.DataFrame:
    """One row per labeled solution.

    Columns: ``problem``, ``subject``, ``level``, ``n_positions`` (step positions
    labeled), ``n_steps`` (trajectory length), ``n_alternatives`` (rated candidates not
    taken), ``n_human`` (labeler-written steps in the trajectory), ``first_error`` (index
    of the first -1 step in the trajectory, or NA), ``finish_reason``, ``final_answer``,
    ``has_answer``, ``is_correct`` (final answer equals the ground truth), ``source``.
    """
    rows = []
    for s in solutions:
        answer = s.final_answer
        rows.append(
            {
                "problem": s.problem,
                "subject": s.subject,
                "level": s.level,
                "n_positions": len(s.steps),
                "n_steps": len(s.trajectory),
                "n_alternatives": sum(len(p.alternatives) for p in s.steps),
                "n_human": sum(p.is_human for p in s.steps[: len(s.trajectory)]),
                "first_error": s.first_error,
                "finish_reason": s.finish_reason or "not recorded",
                "final_answer": answer,
                "has_answer": answer is not None,
                "is_correct": answer is not None
                and s.ground_truth_answer is not None
                and grade_answer(answer, s.ground_truth_answer),
                "source": s.source,
            }
        )
    df = pd.DataFrame(rows)
    df["first_error"] = df["first_error"].astype("Int64")
    df["level"] = df["level"].astype("Int64")
    return df


def ratings_table(solutions: Sequence[LabeledSolution]) -> pd.DataFrame:
    """One row per candidate step shown to a labeler (and per labeler-written step).

    Columns: ``solution`` (index into ``solutions``), ``position``, ``rating``
    (-1/0/1 or NA), ``role`` (``"trajectory"``: the step the solution continues with;
    ``"alternative"``: a rated candidate not taken; ``"labeler-written"``),
    ``n_candidates`` (candidates at that position), ``text``.
    """
    rows = []
    for i, s in enumerate(solutions):
        n_traj = len(s.trajectory)
        for pos, step in enumerate(s.steps):
            cont = step.continuation if pos < n_traj else None
            if cont is not None and step.is_human:
                rows.append((i, pos, None, "labeler-written", len(step.completions), cont.text))
            for c in step.completions:
                role = "trajectory" if (cont is c and not step.is_human) else "alternative"
                rows.append((i, pos, c.rating, role, len(step.completions), c.text))
    df = pd.DataFrame(
        rows, columns=["solution", "position", "rating", "role", "n_candidates", "text"]
    )
    df["rating"] = df["rating"].astype("Int64")
    return df


def table3(solutions: Sequence[LabeledSolution], phase: int = 1) -> pd.DataFrame:
    """Our figures next to the paper's Table 3 (:data:`~prm_lib.paper.PAPER_TABLE_3`) for
    one phase, in percent.

    The paper does not define its denominators, so each statistic is given under the
    readings it allows: all solutions or only those that reach an answer; trajectory
    steps or every rated candidate; "correct" as +1 only, or as not -1 (+1 or 0).
    Indexed by (statistic, counted over).
    """
    sols = solutions_table(solutions)
    rat = ratings_table(solutions)
    traj = rat[(rat.role == "trajectory") & rat.rating.notna()]
    cand = rat[rat.role != "labeler-written"].dropna(subset=["rating"])
    answered = sols[sols.has_answer]
    correct_answer = "% of solutions ending with the correct answer"
    correct_step = "% of steps rated correct"
    rows = [
        (correct_answer, f"all {len(sols):,} solutions", sols.is_correct.mean()),
        (correct_answer, f"the {len(answered):,} solutions that reach an answer",
         answered.is_correct.mean()),
        (correct_step, f"{len(traj):,} rated trajectory steps, +1 only", (traj.rating == 1).mean()),
        (correct_step, f"all {len(cand):,} rated candidates, +1 only", (cand.rating == 1).mean()),
        (correct_step, f"all {len(cand):,} rated candidates, +1 or 0", (cand.rating >= 0).mean()),
    ]
    idx = {1: 0, 2: 1}[phase]
    df = pd.DataFrame(
        [
            {"statistic": k, "counted over": how, "this book": round(100 * float(v), 1),
             f"paper (phase {phase})": PAPER_TABLE_3[k][idx]}
            for k, how, v in rows
        ]
    )
    return df.set_index(["statistic", "counted over"])


def render_solution(
    solution: LabeledSolution, show_alternatives: bool = True, max_alternatives: int = 3
) -> str:
    """HTML for one labeled solution: each trajectory step coloured by its rating.

    Alternatives rated at a position are listed under it in small type (at most
    ``max_alternatives`` each). Returns a string for ``IPython.display.HTML``; the
    colours do not depend on a kernel, so the static book shows them too.
    """
    esc = lambda t: html.escape(t).replace("\n", "<br>")  # noqa: E731
    parts = [
        '<div style="font-family:sans-serif;font-size:14px;line-height:1.45;max-width:900px">',
        f'<div style="margin-bottom:6px"><b>Problem.</b> {esc(solution.problem)}</div>',
    ]
    if solution.ground_truth_answer:
        parts.append(
            f'<div style="margin-bottom:6px"><b>Ground truth:</b> '
            f"{esc(solution.ground_truth_answer)}</div>"
        )
    n_traj = len(solution.trajectory)
    for pos, step in enumerate(solution.steps):
        cont = step.continuation if pos < n_traj else None
        if cont is not None:
            color = RATING_COLORS[cont.rating]
            tag = "labeler-written" if step.is_human else RATING_NAMES[cont.rating]
            parts.append(
                f'<div style="border-left:6px solid {color};background:{color}22;'
                f'padding:3px 8px;margin:3px 0"><span style="color:{color};font-weight:bold;'
                f'font-size:12px">step {pos + 1} · {tag}</span><br>{esc(cont.text)}</div>'
            )
        alts = step.alternatives if show_alternatives else ()
        if cont is None and step.completions:
            parts.append(
                '<div style="margin:3px 0;font-size:12px"><i>The labeler stopped here; '
                "no candidate continued the solution. Candidates rated:</i></div>"
            )
        for c in alts[:max_alternatives]:
            color = RATING_COLORS[c.rating]
            parts.append(
                f'<div style="margin:1px 0 1px 28px;font-size:12px;color:#444">'
                f'<span style="color:{color};font-weight:bold">{RATING_NAMES[c.rating]}</span>'
                f" alternative: {esc(c.text)}</div>"
            )
        if len(alts) > max_alternatives:
            parts.append(
                f'<div style="margin-left:28px;font-size:12px;color:#777">'
                f"… and {len(alts) - max_alternatives} more alternatives</div>"
            )
    parts.append("</div>")
    return "\n".join(parts)


def plot_overview(sols: pd.DataFrame, rat: pd.DataFrame, title: str = ""):
    """A 2x3 figure: ratings, steps per solution, candidates per position, finish
    reasons, subjects and levels. Takes the two tables above; returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0, 0]
    rated = rat[rat.role != "labeler-written"]
    order = [1, 0, -1, None]
    def count(role, r):
        ratings = rated.loc[rated.role == role, "rating"]
        return int(ratings.isna().sum()) if r is None else int((ratings == r).sum())

    counts = {role: [count(role, r) for r in order] for role in ("trajectory", "alternative")}
    labels = [RATING_NAMES[r] for r in order]
    bottom = [0] * len(order)
    for role, hatch in (("trajectory", ""), ("alternative", "//")):
        ax.bar(labels, counts[role], bottom=bottom, color=[RATING_COLORS[r] for r in order],
               hatch=hatch, edgecolor="white", label=role)
        bottom = [b + c for b, c in zip(bottom, counts[role])]
    ax.set_title("Ratings of candidate steps")
    ax.set_ylabel("candidate steps")
    ax.legend(title="role", frameon=False)

    ax = axes[0, 1]
    sns.histplot(sols.n_steps, discrete=True, ax=ax, color="#0072B2")
    ax.set_title("Trajectory length")
    ax.set_xlabel("steps per solution")
    ax.set_ylabel("solutions")

    ax = axes[0, 2]
    per_pos = rat[rat.role != "labeler-written"].groupby(["solution", "position"]).size()
    sns.histplot(per_pos.clip(upper=10), discrete=True, ax=ax, color="#56B4E9")
    ax.set_title("Candidates rated per step position (10 = 10 or more)")
    ax.set_xlabel("candidates")
    ax.set_ylabel("positions")

    ax = axes[1, 0]
    fr = sols.finish_reason.value_counts()
    ax.barh(fr.index[::-1], fr.values[::-1], color="#CC79A7")
    ax.set_title("Finish reason")
    ax.set_xlabel("solutions")

    ax = axes[1, 1]
    per_problem = sols.drop_duplicates("problem")
    subj = per_problem.subject.fillna("unknown").value_counts()
    ax.barh(subj.index[::-1], subj.values[::-1], color="#0072B2")
    ax.set_title("Subject (per problem)")
    ax.set_xlabel("problems")

    ax = axes[1, 2]
    lv = per_problem.level.value_counts().sort_index()
    ax.bar([str(i) for i in lv.index], lv.values, color="#009E73")
    ax.set_title("MATH difficulty level (per problem)")
    ax.set_xlabel("level")
    ax.set_ylabel("problems")
    for a in axes.flat:
        a.spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    return fig
