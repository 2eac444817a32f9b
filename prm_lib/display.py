"""HTML pictures of what a reward model reads and says (chapters 2 and 3, the widget),
and of what the laboratory's checker says of a solution (chapter 5).

Everything returns an HTML string (for ``IPython.display.HTML``) with inline styles only,
so the rendered book shows it without a kernel.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from .formatting import PRM_LABELS, Example

__all__ = ["prob_color", "render_label_positions", "render_scored_solution",
           "checked_solution"]

_CLASS_NAMES = {3: ("bad", "neutral", "good"), 2: ("wrong", "correct")}


def _esc(text: str) -> str:
    return html.escape(text).replace("\n", "↵<br>")


def prob_color(p: float) -> str:
    """A colour for P(correct): orange-red (0) through light grey (0.5) to green (1)."""
    if p is None or np.isnan(p):
        return "#bbbbbb"
    p = float(np.clip(p, 0, 1))
    bad, mid, good = np.array([213, 94, 0]), np.array([230, 230, 230]), np.array([0, 158, 115])
    rgb = mid + (good - mid) * (2 * p - 1) if p >= 0.5 else bad + (mid - bad) * (2 * p)
    return "#%02x%02x%02x" % tuple(int(round(c)) for c in rgb)


def render_label_positions(tokenizer, example: Example, label_names: Sequence[str] = PRM_LABELS,
                           max_tokens: int = 400) -> str:
    """The tokens of one training example, with each label position boxed and the label
    token the model must predict there written under it.

    Tokens are shown as the tokenizer produced them (``↵`` is a newline); only the first
    ``max_tokens`` are drawn.
    """
    targets = dict(zip(example.label_positions, example.labels))
    names = _CLASS_NAMES.get(len(label_names), tuple(label_names))
    colors = {"bad": "#D55E00", "wrong": "#D55E00", "neutral": "#E69F00",
              "good": "#009E73", "correct": "#009E73"}
    parts = ['<div style="font-family:monospace;font-size:12px;line-height:2.3;'
             'max-width:900px">']
    for i, tok in enumerate(example.input_ids[:max_tokens]):
        text = _esc(tokenizer.decode([tok])) or "&nbsp;"
        if i in targets:
            name = names[targets[i]]
            c = colors.get(name, "#0072B2")
            parts.append(
                f'<span style="display:inline-block;text-align:center;border:2px solid {c};'
                f'border-radius:3px;padding:0 2px;margin:0 1px;line-height:1.2">{text}<br>'
                f'<span style="color:{c};font-weight:bold">→ "{html.escape(label_names[targets[i]])}"'
                f" ({name})</span></span>"
            )
        else:
            parts.append(f'<span style="background:#f2f2f2;margin:0 1px">{text}</span>')
    if len(example.input_ids) > max_tokens:
        parts.append(f" … ({len(example.input_ids) - max_tokens} more tokens)")
    parts.append("</div>")
    return "".join(parts)


def render_scored_solution(
    problem: str,
    steps: Sequence[str],
    p_correct: Sequence[float],
    *,
    ratings: Sequence[int | None] | None = None,
    prm_score: float | None = None,
    orm_score: float | None = None,
    is_correct: bool | None = None,
    title: str = "",
) -> str:
    """One solution with each step coloured by the PRM's P(step is correct), the human
    rating beside it when known, and the solution's PRM and ORM scores in the header."""
    head = []
    if title:
        head.append(f"<b>{html.escape(title)}</b>")
    if prm_score is not None:
        head.append(f"PRM score (product) <b>{prm_score:.3f}</b>")
    if orm_score is not None:
        head.append(f"ORM score <b>{orm_score:.3f}</b>")
    if is_correct is not None:
        head.append("final answer <b>" + ("correct" if is_correct else "wrong") + "</b>")
    parts = [
        '<div style="font-family:sans-serif;font-size:14px;line-height:1.45;max-width:900px;'
        'margin-bottom:14px">',
        f'<div style="margin-bottom:4px">{" · ".join(head)}</div>',
        f'<div style="margin-bottom:6px"><b>Problem.</b> {html.escape(problem)}</div>',
    ]
    rating_name = {1: "+1", 0: "0", -1: "−1", None: "none"}
    for i, (step, p) in enumerate(zip(steps, p_correct)):
        c = prob_color(p)
        human = "" if ratings is None else f" · human rating {rating_name[ratings[i]]}"
        shown = "n/a" if p is None or np.isnan(p) else f"{p:.2f}"
        parts.append(
            f'<div style="border-left:8px solid {c};background:{c}33;padding:3px 8px;'
            f'margin:3px 0"><span style="font-size:12px;color:#333">step {i + 1} · '
            f"P(correct) = <b>{shown}</b>{human}</span><br>"
            f"{html.escape(step).replace(chr(10), '<br>')}</div>"
        )
    parts.append("</div>")
    return "\n".join(parts)


#: Background of a step by the checker's rating: good, neutral, bad.
CHECKER_SHADES = {1: "#d9f2e6", 0: "#eeeeee", -1: "#f9dccc"}


def checked_solution(problem, steps: Sequence[str], title: str):
    """A laboratory solution as a table, one row per step shaded by the exact checker's
    rating (+1, 0, -1), captioned with its answer and verdicts.

    Args:
        problem: a :class:`prm_lib.lab.problems.LabProblem`.
        steps: the solution's steps.

    Returns:
        a pandas ``Styler`` (displays as HTML in a notebook and in the book).
    """
    import pandas as pd

    from .lab.problems import check_steps  # the laboratory only when it is used

    c = check_steps(problem, steps)
    table = pd.DataFrame({"step": [s.replace("\n\n", " ") for s in steps],
                          "checker": c.ratings})
    caption = (f"<b>{html.escape(title)}</b>: answer <code>{html.escape(str(c.answer))}</code> "
               f"({'right' if c.is_correct else 'wrong'}); every step right: "
               f"{c.process_correct}")
    return (table.style
            .apply(lambda col: [f"background-color:{CHECKER_SHADES[r]}" for r in c.ratings])
            .format(lambda s: f"<code>{html.escape(s)}</code>", subset="step")
            .hide(axis="index").set_caption(caption))
