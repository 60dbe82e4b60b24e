"""Data loaders: documented shapes and splits, deterministic orders, no network (after the one sdist fetch)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.data import (
    batch_indices,
    cache_dir,
    device_batch_indices,
    sentiment,
    shakespeare,
    speakers,
    split_indices,
    subset_batch_indices,
    weather,
)


def test_batch_order_is_a_pure_function_of_seed_and_step():
    first = [batch_indices(3, step, 10, 3) for step in range(6)]
    again = [batch_indices(3, step, 10, 3) for step in reversed(range(6))][::-1]
    np.testing.assert_array_equal(first, again)
    epoch = np.concatenate(first[:3])
    assert len(set(epoch.tolist())) == 9  # no repeats within an epoch (remainder dropped)
    assert not np.array_equal(first[0], batch_indices(4, 0, 10, 3))
    on_device = np.concatenate([np.asarray(device_batch_indices(jax.random.key(0), s, 10, 3)) for s in range(3)])
    assert len(set(on_device.tolist())) == 9
    jitted = jax.jit(device_batch_indices, static_argnums=(2, 3))(jax.random.key(0), 2, 10, 3)
    np.testing.assert_array_equal(jitted, on_device[6:])
    with pytest.raises(ValueError, match="batch_size"):
        batch_indices(0, 0, 5, 6)


def test_subset_batches_are_epoch_permutations_of_each_runs_subset(key):
    masks = jnp.asarray(np.stack([np.ones(12, bool), np.arange(12) % 3 != 0]))  # 12 and 8 utterances
    draw = jax.jit(jax.vmap(subset_batch_indices, (None, None, 0, None)), static_argnums=3)
    batches = np.stack([np.asarray(draw(key, jnp.int32(step), masks, 4)) for step in range(6)], 1)  # [runs, 6, 4]
    np.testing.assert_array_equal(np.sort(batches[0, :3].ravel()), np.arange(12))  # one epoch: 3 batches
    np.testing.assert_array_equal(np.sort(batches[1, :2].ravel()), np.flatnonzero(np.asarray(masks[1])))  # 2 batches
    assert not np.array_equal(batches[1, :2], batches[1, 2:4])  # the next epoch is another permutation


def test_split_indices_partition():
    parts = split_indices(101, (0.8, 0.1, 0.1), seed=1)
    assert [len(p) for p in parts] == [81, 10, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(101))
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices(10, (0.5, 0.4), 0)


def test_cache_dir_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_CACHE", str(tmp_path))
    assert cache_dir("x") == tmp_path / "x" and (tmp_path / "x").is_dir()


def test_weather_windows_targets_and_train_only_normalisation():
    data = weather.load_weather()
    sizes = [len(split.target) for split in (data.train, data.val, data.test)]
    assert sizes == [6013, 1195, 1195]  # 8760 h cut 70/15/15, minus 96 + 24 - 1 per split
    assert data.train.inputs.shape == (6013, 96, len(weather.FEATURE_NAMES))
    hours = weather.load_hours()
    np.testing.assert_allclose(data.train.target[0], hours[95 + 24, 0], rtol=1e-6)
    np.testing.assert_allclose(data.test.current[-1], hours[8760 - 24 - 1, 0], rtol=1e-6)
    np.testing.assert_allclose(data.mean, hours[:6132].mean(0), rtol=1e-5)
    recovered = data.test.inputs[-1, -1, 0] * data.std[0] + data.mean[0]
    np.testing.assert_allclose(recovered, data.test.current[-1], atol=1e-3)
    assert abs(data.test.target.mean() - data.train.target.mean()) > 5  # chronological: winter test months


def test_sentiment_splits_vocabulary_and_labels():
    assert sentiment.fetch_sdist().name == sentiment.SDIST  # fetched once with pip if the cache is empty
    rows = sentiment.load_sentences()
    assert len(rows) == 10605
    data = sentiment.load_sentiment()
    nonzero = sum(1 for _, rating in rows if rating != 0)
    assert sum(len(s.labels) for s in (data.train, data.val, data.test)) == nonzero
    assert not set(data.train.texts) & set(data.test.texts) - {""}
    assert data.train.tokens.shape == (len(data.train.labels), 60) and data.train.tokens.dtype == np.int32
    assert 0.45 < data.train.labels.mean() < 0.55
    assert data.train.tokens.max() < len(data.vocabulary) and data.train.lengths.min() >= 1
    row = data.train.tokens[0, : data.train.lengths[0]]
    words = sentiment.tokenize(data.train.texts[0])[:60]
    assert [data.vocabulary[i] if i != sentiment.UNKNOWN else None for i in row] == [
        w if w in data.vocabulary else None for w in words
    ]
    assert (data.train.tokens[0, data.train.lengths[0] :] == 0).all()
    assert sentiment.tokenize("It isn't GOOD!") == ["it", "isn't", "good", "!"]


def test_speakers_official_split_and_masking():
    data = speakers.load_speakers()
    assert [len(s.labels) for s in (data.train, data.val, data.test)] == [243, 27, 370]
    assert data.test.frames.shape == (370, 29, 12)
    assert np.bincount(data.val.labels).tolist() == [3] * 9
    assert data.train.lengths.min() >= 7 and data.test.lengths.max() == 29
    short = int(np.argmin(data.train.lengths))
    assert (data.train.frames[short, data.train.lengths[short] :] == 0).all()
    series, labels = speakers.parse_ts("@problemName x\n@data\n1,2,3:4,5,6:7\n0.5:1.5:2\n")
    assert labels == ["7", "2"] and series[0].shape == (3, 2) and series[1].tolist() == [[0.5, 1.5]]
    with pytest.raises(ValueError, match="different lengths"):
        speakers.parse_ts("@data\n1,2:3:1\n")


def test_shakespeare_markup_and_split_by_play():
    markdown = "# Play\n\n## ACT I\n\n_Enter A_\n\n**A**  \nHello,  \nworld.\n\n\n\n**B**  \nHi.\n"
    text = shakespeare.strip_markup(markdown)
    assert text == "Play\n\nACT I\n\nEnter A\n\nA:\nHello,\nworld.\n\nB:\nHi.\n\n"
    plays = shakespeare.load_plays()
    assert len(plays) == len(shakespeare.play_paths()) >= 35
    corpus = shakespeare.load_shakespeare()
    assert len(corpus.train) + len(corpus.val) == sum(len(p) for p in plays) > 4_500_000
    assert 0.05 < len(corpus.val) / len(corpus.train) < 0.2
    assert "**" not in "".join(plays) and "#" not in "".join(plays)
    assert shakespeare.decode(corpus.val[: len(plays[4])], corpus.alphabet) == plays[4]
    assert len(shakespeare.load_shakespeare(limit=1000).train) == 1000


def test_ridge_fit_is_least_squares_and_shrinks_with_alpha():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(200, 4, 3))
    targets = inputs.reshape(200, -1) @ rng.normal(size=12) + 0.5 + 0.01 * rng.normal(size=200)
    design = np.concatenate([inputs.reshape(200, -1), np.ones((200, 1))], axis=1)
    expected = np.linalg.lstsq(design, targets, rcond=None)[0]
    np.testing.assert_allclose(weather.ridge_fit(inputs, targets, 0.0), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weather.ridge_predict(expected, inputs), design @ expected, rtol=1e-12)
    shrunk = weather.ridge_fit(inputs, targets, 1e4)
    assert np.linalg.norm(shrunk[:-1]) < 0.5 * np.linalg.norm(expected[:-1])  # the bias is not penalised
