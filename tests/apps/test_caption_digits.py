"""rnnjax.apps.caption_digits: beam 1 vs greedy, per-seed strips, seeds stacked vs alone, scores, PCA, report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from experiment_helpers import check_beam_one_against_greedy

from rnnjax.apps import caption_digits as app
from rnnjax.data import captions
from rnnjax.training import stats

SIZES = app.Config(channels=4, vector_size=8, embed_size=4)


@pytest.fixture(scope="module")
def tiny():
    model = app.build(SIZES)
    params = jax.vmap(lambda k: model.init(k, app.IMAGE_SHAPE, jnp.float64))(jax.random.split(jax.random.key(1), 2))
    return model, params


def test_captioning_beam_width_one_equals_greedy(tiny):
    model, params = tiny
    _, strips, _ = captions.make_caption_data(0, 16, 1)
    images = jnp.asarray(strips.images, jnp.float64)[..., None]
    alone = app.one_seed(params, 0)
    greedy = model.greedy(alone, images, max_length=app.MAX_LENGTH)
    beam = model.beam_search(alone, images, beam_width=1, max_length=app.MAX_LENGTH)
    check_beam_one_against_greedy(greedy, beam)


def test_caption_seeds_stacked_equals_each_seed_alone(tiny):
    model, params = tiny
    images = np.stack([captions.make_caption_data(seed, 0, 6)[2].images for seed in (0, 1)]).astype(np.float64)
    for width in (0, 2):
        stacked = app.caption_seeds(model, params, images, width)
        for index in range(2):
            alone, strips = app.one_seed(params, index), jnp.asarray(images[index])[..., None]
            if width == 0:
                tokens = model.greedy(alone, strips, max_length=app.MAX_LENGTH).tokens
            else:
                tokens = model.beam_search(alone, strips, beam_width=width, max_length=app.MAX_LENGTH).tokens[:, 0]
            assert stacked[index] == [captions.decode_tokens(row) for row in np.asarray(tokens)]


def test_seed_strips_draw_from_the_seeds_own_scans():
    """A pool of 0.75-valued scans of "seven": every strip shows only those, captioned in sevens."""
    images, labels = jnp.full((5, 8, 8), 0.75), jnp.full(5, 7)
    batch = jax.jit(app.seed_strips, static_argnums=3)(jax.random.key(1), images, labels, 6, jnp.int32(3))
    assert set(np.unique(np.asarray(batch["images"]))) <= {0.0, 0.75}
    assert {captions.decode_tokens(row) for row in np.asarray(batch["tokens"])} <= {" ".join(["seven"] * n)
                                                                                   for n in (2, 3, 4)}
    expected = captions.tile_on_device(jax.random.fold_in(jax.random.key(1), 3), images, labels, 6)
    np.testing.assert_array_equal(batch["tokens"], expected["tokens"])


def test_scores_count_by_hand():
    references = ["one two", "three four five", "six seven"]
    predicted = ["one two", "three five", "six eight nine"]
    scores = app.scores(references, predicted)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["exact_match_wilson_95"] == stats.wilson_interval(1, 3)
    assert scores["word_accuracy"] == pytest.approx((2 + 1 + 1) / 7)  # position by position
    assert scores["word_error_rate"] == pytest.approx((0 + 1 + 2) / 7)  # one deletion; a substitution, an insertion


def test_pca_nearest_centroid_separates_clusters_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    centres = rng.normal(size=(10, 2)) * 10 @ rng.normal(size=(2, 16))  # ten clusters on a plane in 16-D
    points, accuracy = app.pca_nearest_centroid(centres[labels] + 0.01 * rng.normal(size=(300, 16)), labels)
    assert points.shape == (300, 2) and accuracy == 1.0
    _, chance = app.pca_nearest_centroid(rng.normal(size=(300, 16)), labels)
    assert chance < 0.35


def fake_seed(seed, beam_hits, count=100):
    decoded = {"greedy": ["one"] * count, "beam": ["one"] * beam_hits + ["two"] * (count - beam_hits)}
    decoded["beam1"] = decoded["greedy"]
    digits = np.full((count, 4), -1)
    digits[:, 0] = 1  # every reference is "one"
    test = captions.CaptionSet(np.zeros((count, 8, 32)), digits, None)
    return app.seed_result(seed, test, decoded, pca_accuracy=0.8)


def test_summaries_and_report_over_seeds():
    results = app.summarize([fake_seed(0, 95), fake_seed(1, 89)])
    assert results["beam_exact_match_min"] == 0.89 and results["greedy_exact_match"]["values"] == [1.0, 1.0]
    results |= {"num_train_scans": 1, "num_test_scans": 2, "train_seconds_all_seeds": 3.0, "target_exact_match": 0.9,
                "target_met": False}
    text = app.report(app.Config(beam_width=3, num_test=100, seeds=2), results)
    low, high = stats.wilson_interval(89, 100)
    perfect = stats.wilson_interval(100, 100)[0]
    assert f"| 1 | 1.0000 ({perfect:.4f}-1.0000) | 1.0000 | 0.8900 ({low:.4f}-{high:.4f}) | 0.8900 | 0.800 |" in text
    assert f"- beam exact match: {stats.seed_summary([0.95, 0.89]).text()}" in text and "NOT met" in text
    exact, words = app.headline(results)
    assert exact.startswith("caption exact match: beam 92.0% +- 4.2% (95% CI ") and "greedy 100.0% +- 0.0%" in exact
    assert words.startswith("word accuracy (beam): 92.0% +- 4.2%")
    (target,) = app.targets(results)
    assert not target.met and target.statement.endswith("(beam) on every seed (worst seed 89.0%)")
