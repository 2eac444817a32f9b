"""The paper's numbers: one place, each with its source, consistent with each other."""

import prm_lib.paper as paper
from prm_lib.reward_model import SCORING_RULES


def test_every_name_exists_and_sources_name_the_paper():
    for name in paper.__all__:
        assert hasattr(paper, name), name
        if name.endswith("_SOURCE"):
            assert getattr(paper, name).startswith("Lightman et al. 2023, ")


def test_the_numbers_agree_with_each_other():
    assert paper.PAPER_NS[-1] == paper.PAPER_POOL_SIZE == 1860
    assert list(paper.PAPER_NS) == sorted(set(paper.PAPER_NS))
    # Figure 3's PRM is Table 4's best rule, the product with neutral counted as correct.
    assert paper.PAPER_BEST_OF_1860["PRM"] == paper.PAPER_TABLE_4["product, neutral = correct"]
    assert set(paper.PAPER_TABLE_4) == set(SCORING_RULES)
    assert max(paper.PAPER_TABLE_4.values()) == paper.PAPER_BEST_OF_1860["PRM"]
    assert all(len(v) == 3 for v in paper.PAPER_TABLE_3.values())
    assert 0 < paper.PAPER_ACTIVE_LEARNING_WRONG_SHARE < 1 and paper.PAPER_PHASE_1_LABEL_SHARE < 1
