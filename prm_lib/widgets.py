"""The step-score widget: what the PRM (and the ORM) say about a solution, step by step.

    step_score_widget(prm, orm, examples=[(problem, steps, "wrong answer"), ...])

Promises:

- Each listed example is scored once, when the widget is built, and drawn as HTML: every
  step coloured by the PRM's P(step is correct) (a neutral step counts as correct), the
  solution's score under each of the paper's scoring rules, and the ORM's P(correct) when
  an ORM is given. The pages sit in an ``ipywidgets.Stack`` whose ``selected_index`` is
  ``jslink``-ed to the picker's ``index``, so choosing an example works in the browser
  alone: in the static book, with no kernel.
- Below, a problem and a solution (one step per line) can be pasted and scored with the
  Score button. That needs a running kernel, and the widget says so.
- Bad input (an example without steps, an empty paste) shows a message in the widget,
  never a traceback.

``examples`` are tuples ``(problem, steps)`` or ``(problem, steps, label)``: ``steps`` is a
list of step texts, ``label`` a short name shown in the picker and above the solution
(e.g. ``"correct answer"``). Pages are ``HTMLMath`` widgets, so PRM800K's TeX is typeset
(the book's ``_config.yml`` lets the widget renderer call MathJax 3). The Stack needs
ipywidgets 8; with ipywidgets 7 (older Colab runtimes) the picker changes the page
through the kernel instead.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from .display import render_scored_solution
from .reward_model import SCORING_RULES, solution_score, step_correct_probability

__all__ = ["render_step_scores", "step_score_widget"]

CSS_CLASS = "prm-step-score"  # on the widget's box; scripts/check_book.py looks for it
PASTE_NOTE = ("Scoring a pasted solution runs the models, so it needs a live kernel "
              "(JupyterLab, Colab): in the static book the Score button does nothing.")


def _message(text: str) -> str:
    style = "color:#9a3c00;font-family:sans-serif;padding:4px 0"
    return f'<div style="{style}">{html.escape(text)}</div>'


def render_step_scores(problem: str, steps: Sequence[str], probs: np.ndarray,
                       orm_p: float | None = None, label: str = "",
                       rules: dict[str, tuple[str, str]] = SCORING_RULES) -> str:
    """One solution as HTML: its steps coloured by the PRM's P(correct) (from ``probs``
    [n_steps, 3]), then a table of its PRM score under each rule and the ORM's P(correct)."""
    scores = [(f"PRM: {name}", solution_score(probs, rule, neutral))
              for name, (rule, neutral) in rules.items()]
    if orm_p is not None:
        scores.append(("ORM: P(correct)", float(orm_p)))
    rows = "".join(f'<tr><td style="padding:1px 12px 1px 0">{html.escape(name)}</td>'
                   f'<td style="text-align:right"><b>{_fmt(x)}</b></td></tr>'
                   for name, x in scores)
    return (render_scored_solution(problem, steps, step_correct_probability(probs), title=label)
            + '<table style="font-family:sans-serif;font-size:13px;margin:0 0 8px 0">'
            + '<tr><th colspan="2" style="text-align:left">Solution score</th></tr>'
            + rows + "</table>")


def _fmt(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{x:.3f}"


def _score_pages(prm, orm, examples, rules) -> list[str]:
    """The HTML page of every example, scoring all of them in one batch per model."""
    keep = [i for i, (_, steps, _) in enumerate(examples) if steps]
    problems = [examples[i][0] for i in keep]
    steps = [list(examples[i][1]) for i in keep]
    probs = dict(zip(keep, prm.step_probabilities(problems, steps) if keep else []))
    orm_p = dict(zip(keep, orm.score(problems, steps) if orm is not None and keep else []))
    return [render_step_scores(problem, list(steps), probs[i], orm_p.get(i), label, rules)
            if i in probs else _message(f"Example {i + 1} has no steps: nothing to score.")
            for i, (problem, steps, label) in enumerate(examples)]


def step_score_widget(prm, orm=None, examples: Sequence[tuple] = (), *,
                      rules: dict[str, tuple[str, str]] = SCORING_RULES):
    """An ``ipywidgets.VBox``: pick a listed example or paste one, see its step scores.

    Args:
        prm: a :class:`~prm_lib.reward_model.RewardModel` of kind ``"prm"``.
        orm: optionally one of kind ``"orm"``: its P(correct) is shown beside the PRM's.
        examples: ``(problem, steps)`` or ``(problem, steps, label)`` tuples.
        rules: name -> ``(aggregate, neutral)``, as :data:`~prm_lib.reward_model.SCORING_RULES`.

    The box's attributes ``picker``, ``pages`` (the Stack), ``link`` (the jslink; None
    with ipywidgets 7), ``problem_input``, ``steps_input``, ``score_button`` and
    ``result`` are its parts.
    """
    import ipywidgets as widgets

    if getattr(prm, "kind", None) != "prm":
        raise ValueError("prm must be a RewardModel of kind 'prm'")
    if orm is not None and getattr(orm, "kind", None) != "orm":
        raise ValueError("orm must be a RewardModel of kind 'orm' (or None)")
    examples = [(e[0], list(e[1]), e[2] if len(e) > 2 else "") for e in examples]
    pages_html = _score_pages(prm, orm, examples, rules) or [
        _message("No example was given: paste one below.")]
    picker = widgets.Dropdown(
        options=[(f"{i + 1}. {label or 'solution'} ({len(steps)} steps)", i)
                 for i, (_, steps, label) in enumerate(examples)] or [("(no example)", 0)],
        index=0, description="Example:", layout=widgets.Layout(width="420px"))
    children = [widgets.HTMLMath(v) for v in pages_html]  # HTMLMath: typeset the TeX
    if hasattr(widgets, "Stack"):  # ipywidgets 8: switching pages works without a kernel
        pages = widgets.Stack(children, selected_index=0)
        link = widgets.jslink((picker, "index"), (pages, "selected_index"))
    else:
        pages, link = children[0], None
        picker.observe(lambda change: setattr(pages, "value", pages_html[change["new"]]),
                       "index")

    problem_input = widgets.Textarea(placeholder="Problem", layout=widgets.Layout(width="90%"))
    steps_input = widgets.Textarea(placeholder="Solution, one step per line", rows=6,
                                   layout=widgets.Layout(width="90%"))
    score_button = widgets.Button(description="Score", button_style="primary")
    result = widgets.HTMLMath()

    def score(_=None):
        problem = problem_input.value.strip()
        steps = [line.strip() for line in steps_input.value.splitlines() if line.strip()]
        if not problem or not steps:
            result.value = _message("Paste a problem and a solution (one step per line) "
                                    "before pressing Score.")
            return
        try:
            result.value = _score_pages(prm, orm, [(problem, steps, "your solution")], rules)[0]
        except Exception as e:  # shown in the widget: a callback's traceback is invisible
            result.value = _message(f"Could not score this solution: {type(e).__name__}: {e}")

    score_button.on_click(score)
    box = widgets.VBox([
        widgets.HTML("<b>Step scores of a test solution.</b> Step colour: the PRM's "
                     "P(step is correct), a neutral step counted as correct."),
        picker, pages,
        widgets.HTML(f"<b>Or paste your own.</b> <i>{html.escape(PASTE_NOTE)}</i>"),
        problem_input, steps_input, score_button, result,
    ])
    box.add_class(CSS_CLASS)
    box.picker, box.pages, box.link = picker, pages, link
    box.problem_input, box.steps_input, box.score_button, box.result = (
        problem_input, steps_input, score_button, result)
    return box
