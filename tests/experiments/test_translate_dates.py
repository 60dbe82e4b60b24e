"""Date translation: the --quick run, and beam width 1 equals greedy on the task's data."""

import jax.numpy as jnp
import numpy as np
import pytest
from experiment_helpers import check_beam_one_against_greedy, load, run_quick

from rnnjax.data import dates


def test_translate_dates_quick(tmp_path):
    results, returned = run_quick("translate_dates", tmp_path)
    assert returned["target_met"] == results["target_met"]
    to_iso, german = results["to_iso"]["seeds"], results["iso_to_german"]["seeds"]
    assert [seed["seed"] for seed in to_iso] == [seed["seed"] for seed in german] == [0, 1]
    # 40 steps learn the ISO layout (0.29 of the characters in place, measured); an untrained decoder gets ~0.
    assert all(seed["character_accuracy_greedy"] > 0.15 for seed in to_iso)
    assert all(seed["beam1_equals_greedy"] == 1.0 for seed in to_iso + german)
    assert {f"language={lang}" for lang in dates.LANGUAGES} <= set(to_iso[0]["beam"])
    assert all(f"style={style}" in to_iso[0]["beam"] for style in dates.STYLES)
    summary = results["iso_to_german"]["beam_exact_match"]  # the mean over seeds lies inside its t-interval
    assert summary["values"] == [seed["beam"]["overall"] for seed in german]
    assert summary["mean"] == pytest.approx(np.mean(summary["values"]))
    assert summary["low"] <= summary["mean"] <= summary["high"]


def test_date_translation_beam_width_one_equals_greedy(key):
    experiment = load("translate_dates")
    config = experiment.Config.quick()
    corpus = dates.make_date_corpus(0, 200, 32)
    source_vocab, target_vocab = dates.vocabularies(corpus)
    data = dates.encode_pairs(corpus.test, source_vocab, target_vocab, *experiment.LENGTHS[dates.Direction.TO_ISO])
    model = experiment.build(config, source_vocab, target_vocab)
    params = model.init(key, config.embed_size, jnp.float64)
    greedy = model.greedy(params, data["source"], data["source_lengths"], max_length=12)
    beam = model.beam_search(params, data["source"], data["source_lengths"], beam_width=1, max_length=12)
    check_beam_one_against_greedy(greedy, beam)
    assert (np.asarray(greedy.lengths) < 12).any()  # some greedy outputs end early, so ending is exercised
