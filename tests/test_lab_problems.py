"""The laboratory's problems and exact step checker."""

import numpy as np
import pytest

from prm_lib.formatting import PRM_LABELS, encode_steps, label_token_ids
from prm_lib.lab.generator import PROMPT, lab_tokenizer
from prm_lib.lab.problems import (
    NEUTRAL_TEMPLATE,
    LabProblem,
    check_steps,
    make_problems,
    reference_steps,
)

P = LabProblem(47, (("+", 18), ("*", 3), ("-", 25)))  # 65, 195, 170 -> "70"


def test_problem_text_values_answer():
    assert P.text == "Last two digits of ((47 + 18) * 3) - 25?"
    assert P.values == [47, 65, 195, 170]
    assert P.answer == "70"
    assert LabProblem(3, (("+", 2),)).answer == "05"


def test_reference_solution_is_all_good():
    steps = reference_steps(P)
    assert steps == ["47 + 18 = 65", "65 * 3 = 195", "195 - 25 = 170", "# Answer\n\n70"]
    check = check_steps(P, steps)
    assert check.ratings == (1, 1, 1, 1)
    assert check.is_correct and check.process_correct and check.first_error is None


def test_every_generated_reference_solution_checks():
    rng = np.random.default_rng(0)
    for p in make_problems(300, seed=5, min_ops=1, max_ops=5):
        steps = reference_steps(p, rng, neutral_rate=0.5)
        check = check_steps(p, steps)
        assert set(check.ratings) <= {0, 1} and check.ratings[-1] == 1
        assert check.process_correct and check.is_correct
        assert all(v >= 0 for v in p.values)


def test_neutral_restatement():
    good = ["47 + 18 = 65", NEUTRAL_TEMPLATE.format(value=65), "65 * 3 = 195",
            "195 - 25 = 170", "# Answer\n\n70"]
    assert check_steps(P, good).ratings == (1, 0, 1, 1, 1)
    wrong = ["47 + 18 = 65", NEUTRAL_TEMPLATE.format(value=66)] + good[2:]
    assert check_steps(P, wrong).ratings == (1, -1, 1, 1, 1)
    # before any operation there is no running total to restate
    assert check_steps(P, [NEUTRAL_TEMPLATE.format(value=47)]).ratings == (-1,)


@pytest.mark.parametrize("step, rating", [
    ("47 + 18 = 65", 1),
    ("18 + 47 = 65", 1),      # addition commutes
    ("47 + 18 = 66", -1),     # wrong result
    ("47 + 19 = 66", -1),     # wrong operand
    ("47 * 18 = 846", -1),    # wrong operation
    ("47 + 18 =65", -1),      # not the format
    ("sixty-five", -1),
])
def test_first_step(step, rating):
    assert check_steps(P, [step]).ratings == (rating,)


def test_subtraction_does_not_commute():
    q = LabProblem(50, (("-", 20),))
    assert check_steps(q, ["50 - 20 = 30"]).ratings == (1,)
    assert check_steps(q, ["20 - 50 = 30"]).ratings == (-1,)


def test_right_answer_from_wrong_steps():
    # a slip in the hundreds digit keeps the last two: the outcome label says "correct"
    steps = ["47 + 18 = 65", "65 * 3 = 295", "295 - 25 = 270", "# Answer\n\n70"]
    check = check_steps(P, steps)
    assert check.ratings == (1, -1, -1, 1)
    assert check.is_correct and not check.process_correct and check.first_error == 1


def test_errors_can_cancel_and_later_steps_are_rated_on_their_own():
    steps = ["47 + 18 = 66", "65 * 3 = 195", "195 - 25 = 170", "# Answer\n\n70"]
    assert check_steps(P, steps).ratings == (-1, 1, 1, 1)


def test_answer_rules():
    early = ["47 + 18 = 65", "# Answer\n\n70"]  # right digit, operations skipped
    assert check_steps(P, early).ratings == (1, -1)
    assert not check_steps(P, early).process_correct
    extra = reference_steps(P) + ["0 + 0 = 0"]
    assert check_steps(P, extra).ratings[-1] == -1
    too_many = reference_steps(P)[:3] + ["170 + 1 = 171", "# Answer\n\n1"]
    assert check_steps(P, too_many).ratings[-2:] == (-1, -1)
    none = check_steps(P, reference_steps(P)[:3])
    assert none.answer is None and not none.is_correct and not none.process_correct


def test_make_problems_is_seeded_distinct_and_respects_exclude():
    a = make_problems(200, seed=1)
    assert [p.text for p in a] == [p.text for p in make_problems(200, seed=1)]
    assert len({p.text for p in a}) == 200
    b = make_problems(200, seed=1, exclude=a)
    assert not {p.text for p in a} & {p.text for p in b}
    assert all(2 <= p.n_ops <= 4 for p in a)
    with pytest.raises(ValueError):
        make_problems(5, seed=0, min_ops=3, max_ops=2)


def test_tokenizer_label_tokens_and_step_ends():
    tok = lab_tokenizer()
    ids = label_token_ids(tok, PRM_LABELS)
    assert len(set(ids)) == 3
    assert len(tok("\n", add_special_tokens=False)["input_ids"]) == 1
    steps = reference_steps(P)
    ids, ends = encode_steps(tok, P.text, steps)
    text = PROMPT.format(problem=P.text) + "\n".join(steps)
    assert tok.decode(ids) == text
    for end, step in zip(ends, steps):
        assert tok.decode([ids[end]]) == step[-1]


def test_digits_domain_keeps_the_last_digit_at_every_step():
    from prm_lib.lab.problems import check_steps, make_problems, reference_steps

    problems = make_problems(50, seed=0, min_ops=3, max_ops=6, domain="digits")
    for p in problems:
        assert all(0 <= v <= 9 for v in p.values) and p.answer == str(p.values[-1])
        assert "Last digit of" in p.text
        steps = reference_steps(p)
        assert all(r == 1 for r in check_steps(p, steps).ratings)
    with pytest.raises(ValueError, match="domain"):
        make_problems(1, seed=0, domain="words")


def test_misconceptions_are_systematic_and_only_where_asked():
    import numpy as np

    from prm_lib.lab.problems import (_APPLY, check_steps, make_problems, misconceptions,
                                      reference_steps)

    facts = misconceptions(30, seed=0)
    assert len(facts) == 30 and facts == misconceptions(30, seed=0)
    assert all(wrong != _APPLY[op](a, b) % 10 for (a, op, b), wrong in facts.items())
    problems = make_problems(300, seed=1, min_ops=3, max_ops=6, domain="digits")
    hit = [p for p in problems if any((v, op, b) in facts
                                      for v, (op, b) in zip(p.values, p.ops))]
    assert hit
    for p in hit:
        always = reference_steps(p, np.random.default_rng(0), 0.0, facts, 1.0)
        first = check_steps(p, always).first_error
        v, (op, b) = next((v, ob) for v, ob in zip(p.values, p.ops) if (v, *ob) in facts)
        assert first is not None and always[first] == f"{v} {op} {b} = {facts[(v, op, b)]}"
        assert all(r == 1 for r in check_steps(
            p, reference_steps(p, np.random.default_rng(0), 0.0, facts, 0.0)).ratings)


def test_without_misconceptions_training_solutions_are_unchanged():
    """The chain laboratory's generator sees the same solutions as before misconceptions
    existed: no extra draw from the random stream."""
    import numpy as np

    from prm_lib.lab.problems import make_problems, reference_steps

    problems = make_problems(40, seed=2)
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    for p in problems:
        assert reference_steps(p, a, 0.3) == reference_steps(p, b, 0.3, None, 0.9)
    assert a.random() == b.random()


def test_lab_folder_name_of_a_default_laboratory_is_unchanged():
    import hashlib
    import json

    from prm_lib import __version__, get_scale
    from prm_lib.lab.build import BUILD_FIELDS, OPTIONAL_BUILD_FIELDS, lab_dir

    cfg = get_scale("laptop").lab
    settings = {k: v for k, v in cfg.as_dict().items() if k in BUILD_FIELDS}
    settings |= {k: getattr(cfg, k) for k, v in OPTIONAL_BUILD_FIELDS.items()
                 if getattr(cfg, k) != v}
    key = json.dumps({"scale": settings, "seed": 0, "version": __version__, "sampler": 2,
                      "text": 2}, sort_keys=True, default=str)
    assert lab_dir(cfg, 0).name == f"laptop-seed0-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    assert lab_dir(cfg.with_(domain="chain"), 0) != lab_dir(cfg, 0)
    # the default temperature and an unset target loss leave the name as it was
    assert lab_dir(cfg.with_(temperature=1.0), 0) == lab_dir(cfg, 0)
    untargeted = cfg.with_(generator__target_loss=None)
    settings = {k: v for k, v in untargeted.as_dict().items() if k in BUILD_FIELDS}
    settings |= {k: getattr(untargeted, k) for k, v in OPTIONAL_BUILD_FIELDS.items()
                 if getattr(untargeted, k) != v}
    del settings["generator"]["target_loss"]
    key = json.dumps({"scale": settings, "seed": 0, "version": __version__, "sampler": 2,
                      "text": 2}, sort_keys=True, default=str)
    assert lab_dir(untargeted, 0).name == \
        f"laptop-seed0-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def test_laboratories_that_differ_in_sampling_only_share_a_generator():
    from prm_lib import get_scale
    from prm_lib.lab.build import generator_dir, lab_dir

    cfg = get_scale("laptop").lab
    for change in ({"temperature": 0.7}, {"train_pool": 16}, {"test_pool": 8}):
        assert lab_dir(cfg.with_(**change), 0) != lab_dir(cfg, 0)
        assert generator_dir(cfg.with_(**change), 0) == generator_dir(cfg, 0)
    for change in ({"misconceptions": 12}, {"generator__steps": 10}, {"train_problems": 50},
                   {"generator__threads": 1}, {"generator__length_window": 1}):
        assert generator_dir(cfg.with_(**change), 0) != generator_dir(cfg, 0)
    assert generator_dir(cfg, 1) != generator_dir(cfg, 0)


def test_fact_rates_count_slips_and_taught_errors_apart():
    from prm_lib.lab.problems import fact_rates

    facts = {(7, "*", 8): 4}
    solutions = [["7 * 8 = 4", "4 + 3 = 7", "# Answer\n\n7"],   # taught error, right step
                 ["7 * 8 = 6", "6 + 3 = 8", "# Answer\n\n8"],   # right fact, slip
                 ["The running total is 6.", "12 + 3 = 15"]]    # not read: no fact
    rates = fact_rates(solutions, facts)
    assert rates["steps read"] == 4
    assert rates["misconception rate (%)"] == 50.0  # one of the two 7 * 8 steps
    assert rates["slip rate (%)"] == 50.0           # 6 + 3 = 8 of 4 + 3 and 6 + 3
    empty = fact_rates([["# Answer\n\n3"]], facts)
    assert empty["steps read"] == 0 and np.isnan(empty["slip rate (%)"])


def test_a_restatement_after_more_operations_than_the_problem_has_is_bad():
    from prm_lib.lab.problems import LabProblem, check_steps

    p = LabProblem(3, (("+", 4), ("*", 2)), modulus=10)  # 3 + 4 = 7, 7 * 2 = 4
    steps = ["3 + 4 = 7", "7 * 2 = 4", "4 + 2 = 6", "The running total is 6.",
             "# Answer\n\n6"]
    check = check_steps(p, steps)
    assert check.ratings == (1, 1, -1, -1, -1)
    assert check.first_error == 2 and not check.is_correct


def test_generator_batches_are_grouped_by_length(monkeypatch):
    """Batches drawn length_window at a time and grouped by length pad far less than
    batches drawn alone; the same number of steps either way."""
    import prm_lib.lab.generator as g
    from prm_lib.lab.problems import make_problems

    problems = make_problems(200, seed=0, domain="digits")
    padding, original = {}, g.new_generator
    for window in (1, 8):
        masks = []

        def recorded(config, tokenizer, seed=0):
            model = original(config, tokenizer, seed)
            model.register_forward_pre_hook(
                lambda module, args, kwargs: masks.append(kwargs["attention_mask"]),
                with_kwargs=True)
            return model

        monkeypatch.setattr(g, "new_generator", recorded)
        config = g.GeneratorConfig(hidden_size=16, layers=1, heads=2, steps=24, batch_size=8,
                                   length_window=window)
        g.train_generator(problems, config, progress=False)
        assert len(masks) == 24
        padding[window] = float(np.mean([1 - m.float().mean().item() for m in masks]))
    assert padding[8] < padding[1] / 2
