"""rnnjax.apps.speakers and rnnjax.apps.comparison: deltas, padding invariance, seeds stacked vs alone, the report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.apps import comparison, speakers
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data.speakers import MAX_FRAMES, NUM_COEFFICIENTS, NUM_SPEAKERS, Split
from rnnjax.training import stats


def random_split(seed: int, count: int = 6) -> Split:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, MAX_FRAMES + 1, count).astype(np.int32)
    lengths[0] = 1  # a one-frame utterance: both neighbours are the frame itself
    frames = rng.normal(size=(count, MAX_FRAMES, NUM_COEFFICIENTS)).astype(np.float32)
    frames *= (np.arange(MAX_FRAMES)[None, :, None] < lengths[:, None, None]).astype(np.float32)
    return Split(frames, lengths, rng.integers(0, NUM_SPEAKERS, count).astype(np.int32))


def test_deltas_match_a_loop_over_valid_frames():
    split = random_split(0)
    got = np.asarray(speakers.with_deltas(jnp.asarray(split.frames), jnp.asarray(split.lengths)))
    for row, length in enumerate(split.lengths):
        valid = split.frames[row, :length]
        for t in range(MAX_FRAMES):
            if t >= length:
                np.testing.assert_array_equal(got[row, t], 0.0)
                continue
            delta = 0.5 * (valid[min(t + 1, length - 1)] - valid[max(t - 1, 0)])
            np.testing.assert_allclose(got[row, t], np.concatenate([valid[t], delta]), rtol=1e-6, atol=1e-6)


def make_model(deltas=True, poolings=("mean", "max")):
    return speakers.SpeakerModel(RNN(make_cell("gru"), 5, bidirectional=True), poolings, deltas)


def test_logits_ignore_what_lies_after_each_length(key):
    model, split = make_model(), random_split(1)
    params = model.init(key)
    garbage = np.where(split.frames == 0.0, 7.0, split.frames)  # padding frames filled with a constant
    clean = model.logits(params, jnp.asarray(split.frames), jnp.asarray(split.lengths))
    noisy = model.logits(params, jnp.asarray(garbage), jnp.asarray(split.lengths))
    np.testing.assert_allclose(np.asarray(noisy), np.asarray(clean), rtol=1e-5, atol=1e-6)
    assert params["readout"]["kernel"].shape == (2 * 2 * 5, NUM_SPEAKERS)  # 2 directions x 2 poolings


def test_stacked_seed_probabilities_equal_each_seed_alone(key):
    model, split = make_model(deltas=False, poolings=("max",)), random_split(2)
    params = jax.vmap(model.init)(jax.random.split(key, 3))
    stacked = speakers.seed_probabilities(model, params, split)
    for seed in range(3):
        alone = jax.nn.softmax(model.logits(jax.tree.map(lambda p: p[seed], params), split.frames, split.lengths))
        np.testing.assert_allclose(stacked[seed], np.asarray(alone), rtol=1e-5, atol=1e-7)


def test_model_rejects_bad_poolings():
    with pytest.raises(ValueError, match="poolings"):
        make_model(poolings=())
    with pytest.raises(ValueError, match="poolings"):
        make_model(poolings=("median",))


def test_statistics_features_are_mean_std_first_last_of_valid_frames():
    split = random_split(3)
    features = speakers.statistics_features(split)
    row, length = 2, split.lengths[2]
    valid = split.frames[row, :length]
    np.testing.assert_allclose(features[row], np.concatenate([valid.mean(0), valid.std(0), valid[0], valid[-1]]))


def test_report_rows_and_pooled_statement_follow_the_comparison():
    baseline = np.arange(200) % 10 != 0  # 180 of 200
    strong = stats.compare_with_baseline(np.ones((3, 200), bool), baseline)
    rows = comparison.seed_rows(strong, [1.0, 0.9, 0.95], "logreg")
    assert [r["only logreg right"] for r in rows] == [0, 0, 0] and rows[1]["val accuracy"] == 0.9
    assert rows[0]["only RNN right"] == 20 and rows[0]["McNemar p"] < 1e-5
    text = comparison.pooled_statement(strong, "logreg")
    assert "better than logreg on 3, worse on 0, not distinguishable on 0 of 3" in text
    weak = stats.compare_with_baseline(np.stack([baseline, baseline, ~baseline]), baseline)
    text = comparison.pooled_statement(weak, "logreg")
    assert "contains the baseline's accuracy" in text and "on 0, worse on 1, not distinguishable on 2 of 3" in text
    with pytest.raises(ValueError, match="val_accuracy"):
        comparison.seed_rows(strong, [1.0], "logreg")
    assert "val accuracy" not in comparison.seed_rows(strong, None, "logreg")[0]
    line = comparison.headline(weak, "logreg")  # seeds right on 180, 180 and 20 of 200; logreg on 180 (Wilson)
    assert line.startswith("test accuracy: RNN 63.3% +- 46.2% (95% CI ") and "; logreg 90.0% [85.1, 93.4]" in line
    assert line.endswith("(95% Wilson); exact McNemar p per seed 1, 1, 2.3e-33")


def test_cross_validation_masks_hold_out_each_example_once_stratified():
    labels = np.repeat(np.arange(3), 10)
    masks = speakers.cross_validation_masks(labels, folds=5, seed=0)
    np.testing.assert_array_equal((~masks).sum(0), np.ones(30))
    for fold in ~masks:  # two utterances of each speaker per fold
        np.testing.assert_array_equal(np.bincount(labels[fold], minlength=3), [2, 2, 2])
    with pytest.raises(ValueError, match="folds"):
        speakers.cross_validation_masks(labels, folds=1, seed=0)


def test_cross_validation_counts_each_example_with_the_fold_that_held_it_out():
    labels = np.array([0, 1, 2, 0])
    masks = np.array([[False, False, True, True], [True, True, False, False]])
    probabilities = np.zeros((2, 4, 3))
    probabilities[0, [0, 1, 2, 3], [0, 2, 2, 1]] = 1.0  # fold 0 (held out 0, 1): right on 0, wrong on 1
    probabilities[1, [0, 1, 2, 3], [1, 1, 2, 1]] = 1.0  # fold 1 (held out 2, 3): right on 2, wrong on 3
    result = speakers.cross_validation(probabilities, masks, labels)
    assert result["accuracy"] == 0.5 and result["errors"] == 2 and result["accuracy_per_fold"] == [0.5, 0.5]
    with pytest.raises(ValueError, match="exactly once"):
        speakers.cross_validation(probabilities, np.ones((2, 4), bool), labels)


def test_evaluate_splits_the_seeds_from_the_fold_runs(key):
    """Seeds first, fold runs after: the seed numbers come from the first runs only, the CV from the last."""
    model = make_model(deltas=False, poolings=("mean",))
    train_split, test_split = random_split(4, count=8), random_split(5, count=9)
    empty = Split(train_split.frames[:0], train_split.lengths[:0], train_split.labels[:0])
    data = speakers.Speakers(train_split, empty, test_split, np.zeros(12), np.ones(12))
    params = jax.vmap(model.init)(jax.random.split(key, 4))
    folds = speakers.cross_validation_masks(train_split.labels, folds=2, seed=0)
    results = speakers.evaluate(model, params, data, folds)
    seeds_alone = speakers.seed_probabilities(model, jax.tree.map(lambda p: p[:2], params), test_split)
    np.testing.assert_allclose(results["test_accuracy_per_seed"],
                               (seeds_alone.argmax(-1) == test_split.labels).mean(-1))  # fmt: skip
    folds_alone = speakers.seed_probabilities(model, jax.tree.map(lambda p: p[2:], params), train_split)
    assert results["cross_validation"] == speakers.cross_validation(folds_alone, folds, train_split.labels)
    assert "val_accuracy" not in results


def test_drop_frames_moves_the_kept_frames_to_the_front(key):
    split = random_split(6, count=8)
    frames, lengths = (jnp.asarray(a) for a in (split.frames, split.lengths))
    dropped, kept = speakers.drop_frames(key, frames, lengths, 0.4)
    dropped, kept = np.asarray(dropped), np.asarray(kept)
    assert np.all(kept >= 1) and np.all(kept <= split.lengths) and kept.sum() < split.lengths.sum()
    for row in range(8):  # the kept frames are a subsequence of the valid frames, starting with the first
        valid = [tuple(f) for f in split.frames[row, : split.lengths[row]]]
        remaining = iter(valid)
        assert tuple(dropped[row, 0]) == valid[0]
        assert all(tuple(f) in remaining for f in dropped[row, : kept[row]])
        np.testing.assert_array_equal(dropped[row, kept[row] :], 0.0)
    same, unchanged = speakers.drop_frames(key, frames, lengths, 0.0)
    np.testing.assert_array_equal(same, frames)
    np.testing.assert_array_equal(unchanged, lengths)
