"""The step-score widget (prm_lib.widgets), on the tiny random model (seconds, no download)."""

from __future__ import annotations

import html
import re

import ipywidgets as widgets
import pytest

from prm_lib.models import tiny_model
from prm_lib.reward_model import SCORING_RULES, RewardModel, solution_score
from prm_lib.widgets import step_score_widget

EXAMPLES = [
    ("What is $2+2$?", ["I add the numbers: $2+2$.", "That is $4$.", "# Answer\n\n4"],
     "correct answer"),
    ("What is $3 \\cdot 5$?", ["Three fives make fifteen.", "# Answer\n\n16"], "wrong answer"),
    ("Name a prime.", ["Seven has no divisor but 1 and itself.", "# Answer\n\n7"]),
]


@pytest.fixture(scope="module")
def models():
    model, tok = tiny_model(seed=0)
    orm_model, _ = tiny_model(seed=1)
    return RewardModel(model, tok, kind="prm"), RewardModel(orm_model, tok, kind="orm")


@pytest.fixture(scope="module")
def box(models):
    prm, orm = models
    return step_score_widget(prm, orm, examples=EXAMPLES)


def shown_scores(page: str) -> dict[str, str]:
    """The score table of a rendered page: row name -> number as shown."""
    return {html.unescape(name): value for name, value in
            re.findall(r"<tr><td[^>]*>([^<]+)</td><td[^>]*><b>([^<]+)</b></td></tr>", page)}


def test_one_page_per_example_switched_in_the_browser(box):
    assert isinstance(box, widgets.VBox)
    assert isinstance(box.pages, widgets.Stack)
    assert len(box.pages.children) == len(EXAMPLES)
    assert [value for _, value in box.picker.options] == [0, 1, 2]
    assert "wrong answer" in box.picker.options[1][0]
    # The picker drives the Stack client-side: a jslink between index and selected_index,
    # open (a closed widget has no comm, and its state would not be saved with the notebook).
    link = box.link
    assert type(link).__name__ == "Link" and link._model_name == "LinkModel"
    assert link.source == (box.picker, "index") and link.target == (box.pages, "selected_index")
    assert link.comm is not None and link.model_id
    assert box.pages in box.children and box.picker in box.children


def test_each_page_shows_its_steps_and_the_models_scores(box, models):
    prm, orm = models
    problems = [e[0] for e in EXAMPLES]
    steps = [e[1] for e in EXAMPLES]
    probs = prm.step_probabilities(problems, steps)
    orm_p = orm.score(problems, steps)
    for i, page in enumerate(child.value for child in box.pages.children):
        for step in steps[i]:
            assert html.escape(step).replace("\n", "<br>") in page
        for other in set(sum(steps, [])) - set(steps[i]):
            assert html.escape(other).replace("\n", "<br>") not in page
        expected = {f"PRM: {name}": f"{solution_score(probs[i], rule, neutral):.3f}"
                    for name, (rule, neutral) in SCORING_RULES.items()}
        expected["ORM: P(correct)"] = f"{orm_p[i]:.3f}"
        assert shown_scores(page) == expected
        # every step's P(correct) (neutral counted as correct) is printed on the step
        p_step = probs[i][:, 1] + probs[i][:, 2]
        assert re.findall(r"P\(correct\) = <b>([0-9.]+)</b>", page) == [f"{p:.2f}" for p in p_step]


def test_without_orm_only_prm_scores(models):
    prm, _ = models
    box = step_score_widget(prm, examples=EXAMPLES[:1])
    assert set(shown_scores(box.pages.children[0].value)) == {f"PRM: {n}" for n in SCORING_RULES}


def test_paste_and_score(box, models):
    prm, _ = models
    box.problem_input.value = "What is $10/2$?"
    box.steps_input.value = "Ten halved is five.\n\n   \nSo the answer is 5.\n"
    box.score_button.click()
    page = box.result.value
    assert "Ten halved is five." in page and "So the answer is 5." in page
    (probs,) = prm.step_probabilities(["What is $10/2$?"],
                                      [["Ten halved is five.", "So the answer is 5."]])
    assert len(re.findall(r"step \d+ · P\(correct\)", page)) == 2  # the blank lines dropped
    expected = solution_score(probs, "min", "negative")
    assert shown_scores(page)["PRM: min, neutral = wrong"] == f"{expected:.3f}"
    assert "ORM: P(correct)" in shown_scores(page)


@pytest.mark.parametrize("problem, solution", [("What is 1+1?", " \n\n "), ("", "Two.")])
def test_empty_paste_gives_a_message(box, problem, solution):
    box.result.value = ""
    box.problem_input.value, box.steps_input.value = problem, solution
    box.score_button.click()
    assert "Paste a problem and a solution" in box.result.value
    assert "step 1" not in box.result.value


def test_example_without_steps_gives_a_message(models):
    prm, orm = models
    box = step_score_widget(prm, orm, examples=[("Empty?", []), EXAMPLES[0]])
    assert "has no steps" in box.pages.children[0].value
    assert "That is $4$." in box.pages.children[1].value
    assert len(box.pages.children) == 2
    none = step_score_widget(prm, orm, examples=[])
    assert "No example was given" in none.pages.children[0].value


def test_without_stack_the_kernel_switches_pages(models, monkeypatch):
    """ipywidgets 7 has no Stack: the picker then changes one page through the kernel."""
    monkeypatch.delattr(widgets, "Stack")
    box = step_score_widget(models[0], examples=EXAMPLES)
    assert box.link is None and "That is $4$." in box.pages.value
    box.picker.index = 1
    assert "Three fives make fifteen." in box.pages.value and "That is $4$." not in box.pages.value


def test_the_static_book_is_told_the_paste_part_needs_a_kernel(box):
    text = " ".join(c.value for c in box.children if isinstance(c, widgets.HTML))
    assert "needs a live kernel" in text and "static book" in text


def test_wrong_model_kind_is_refused(models):
    prm, orm = models
    with pytest.raises(ValueError, match="kind 'prm'"):
        step_score_widget(orm, examples=EXAMPLES)
    with pytest.raises(ValueError, match="kind 'orm'"):
        step_score_widget(prm, prm, examples=EXAMPLES)


# ------------------------------------------------- the book's check of the widget (Task C)

def load_check_book():
    from tests.test_book import load_script

    return load_script("check_book")


CHAPTER = "notebooks/03_orm_and_what_each_model_sees"


def embedded_page(tmp_path, view) -> str:
    """A page embedding ``view`` the way the built book does (state + view scripts)."""
    from ipywidgets.embed import dependency_state, embed_minimal_html

    page = tmp_path / "page.html"
    embed_minimal_html(page, views=[view], state=dependency_state([view]))
    return page.read_text()


def test_book_check_finds_the_widget_state(box, tmp_path):
    from bs4 import BeautifulSoup

    check_book = load_check_book()
    assert check_book.REQUIRED_WIDGETS[CHAPTER][0] in box._dom_classes
    problems: list[str] = []
    page = BeautifulSoup(embedded_page(tmp_path, box), "html.parser")
    check_book.check_widget_state(page, CHAPTER, problems)
    assert problems == []

    other = BeautifulSoup(embedded_page(tmp_path, widgets.VBox([widgets.HTML("hi")])),
                          "html.parser")
    check_book.check_widget_state(other, CHAPTER, problems)
    assert len(problems) == 1 and "no saved state of the 'prm-step-score' widget" in problems[0]

    problems.clear()
    for view in page.find_all("script", type=check_book.WIDGET_VIEW):
        view.decompose()  # the state is there, but no output shows the widget
    check_book.check_widget_state(page, CHAPTER, problems)
    assert len(problems) == 1 and "no output shows it" in problems[0]

    problems.clear()
    check_book.check_widget_state(other, "notebooks/01_prm800k", problems)  # not required
    assert problems == []


@pytest.mark.parametrize("dom, problem", [
    ('<div class="widget-vbox prm-step-score"><div class="widget-htmlmath-content">step 1 · '
     "P(correct) = <b>0.50</b></div></div>", None),
    ('<div class="widget-vbox prm-step-score"><div class="widget-dropdown"></div></div>',
     "drawn without its content"),
    ('<div class="widget-subarea"></div>', "was not drawn (empty widget area)"),
])
def test_book_check_finds_an_empty_widget_area(dom, problem):
    from bs4 import BeautifulSoup

    check_book = load_check_book()
    problems: list[str] = []
    check_book.check_widget_drawn(BeautifulSoup(f"<html><body>{dom}</body></html>",
                                                "html.parser"), CHAPTER, problems)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_checked_solution_shades_each_step_by_the_checker():
    from prm_lib.display import CHECKER_SHADES, checked_solution
    from prm_lib.lab.problems import make_problems, reference_steps

    problem = make_problems(1, seed=0, min_ops=2, max_ops=2)[0]
    steps = reference_steps(problem)
    wrong = [steps[0] + "1", *steps[1:]]  # the first step's result miscopied
    html = checked_solution(problem, wrong, "a <title>").to_html()
    assert "&lt;title&gt;" in html and "every step right: False" in html
    assert CHECKER_SHADES[-1] in html and CHECKER_SHADES[1] in html
