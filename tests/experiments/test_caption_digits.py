"""Digit captioning: the --quick run, and beam width 1 equals greedy on the task's data."""

import jax.numpy as jnp
from experiment_helpers import check_beam_one_against_greedy, in_unit, load, logged, run_quick

from rnnjax.data import captions


def test_caption_digits_quick(tmp_path):
    results, returned = run_quick("caption_digits", tmp_path)
    assert returned["target_met"] == results["target_met"]
    # 40 steps do not caption yet (word accuracy ~ chance) but the loss falls: measured 2.41 (steps 1-10) -> 1.99
    # (steps 31-40); a uniform guess over the 13 tokens costs ln 13 = 2.56, and a model that does not train stays there.
    losses = logged(tmp_path / "caption_digits" / "quick", "train/loss")
    assert len(losses) == 4 and losses[-1] < min(2.2, 0.9 * losses[0])
    assert results["beam1_equals_greedy"] == 1.0
    for decoding in ("greedy", "beam"):
        assert in_unit(results[decoding]["exact_match"]) and in_unit(results[decoding]["word_accuracy"])
    assert results["num_train_scans"] + results["num_test_scans"] <= 1797


def test_captioning_beam_width_one_equals_greedy(key):
    experiment = load("caption_digits")
    model = experiment.build(experiment.Config.quick())
    params = model.init(key, (8, 32, 1), jnp.float64)
    _, strips, _ = captions.make_caption_data(0, 16, 1)
    images = jnp.asarray(strips.images, jnp.float64)[..., None]
    greedy = model.greedy(params, images, max_length=experiment.MAX_LENGTH)
    beam = model.beam_search(params, images, beam_width=1, max_length=experiment.MAX_LENGTH)
    check_beam_one_against_greedy(greedy, beam)
