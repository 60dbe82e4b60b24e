"""rnnjax.apps.seeds: one decoded seed, summaries over seeds with their worst seed, and table cells."""

import pytest

from rnnjax.apps import seeds
from rnnjax.training import stats


def test_decoded_seed_scores_both_decodings_and_checks_beam_one():
    decoded = {"greedy": ["a", "b", "c", "d"], "beam": ["a", "b", "x", "d"], "beam1": ["a", "b", "c", "y"]}
    result = seeds.decoded_seed(7, decoded, lambda outputs: outputs.count("a") + outputs.count("b"))
    assert result == {"seed": 7, "greedy": 2, "beam": 2, "beam1_equals_greedy": 0.75}


def test_decoded_seed_needs_every_decoding():
    with pytest.raises(ValueError, match=r"missing \['beam1'\]"):
        seeds.decoded_seed(0, {"greedy": ["a"], "beam": ["a"]}, len)


@pytest.mark.parametrize("second", [["a"], []])
def test_agreement_refuses_unequal_or_empty_outputs(second):
    with pytest.raises(ValueError, match="second must hold as many outputs as first"):
        seeds.agreement(["a", "b"] if second else [], second)


def test_summarize_seeds_gives_each_metric_its_seed_summary_and_the_asked_minima():
    per_seed = [{"exact": 0.9, "words": 0.95}, {"exact": 0.8, "words": 0.97}, {"exact": 0.85, "words": 0.96}]
    metrics = {"exact": lambda seed: seed["exact"], "words": lambda seed: seed["words"]}
    out = seeds.summarize_seeds(per_seed, metrics, minimum=("exact",))
    assert out["seeds"] == per_seed and out["exact_min"] == 0.8 and "words_min" not in out
    assert out["exact"] == stats.seed_summary([0.9, 0.8, 0.85]).as_dict()
    assert out["words"] == stats.seed_summary([0.95, 0.97, 0.96]).as_dict()
    with pytest.raises(ValueError, match=r"minimum must name metrics of \['exact', 'words'\]; got \['loss'\]"):
        seeds.summarize_seeds(per_seed, metrics, minimum=("loss",))


def test_decoding_widths_and_table_cells():
    assert seeds.decoding_widths(5) == {"greedy": 0, "beam": 5, "beam1": 1}
    assert seeds.with_interval(0.93, (0.9, 0.95)) == "0.9300 (0.9000-0.9500)"
    assert seeds.with_interval(0.0, (0.0, 0.2588), percent=True) == "0.00% (0.00-25.88)"
