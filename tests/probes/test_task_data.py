"""The task probe's input: checks that name the array, padding, loading, sampling and the split."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnjax.probes import targets
from rnnjax.probes.task_data import load_task, sample_task, save_task, split_task, task_data


def _arrays(count=10, steps=6, classes=None):
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(count, steps, 2))
    outputs = rng.integers(0, classes, (count, steps)) if classes else rng.normal(size=(count, steps, 1))
    return inputs, outputs


def test_padding_is_zeroed_and_may_hold_nan():
    inputs, outputs = _arrays()
    lengths = np.array([6, 3] * 5)
    inputs[1, 3:], outputs[1, 3:] = np.nan, np.inf
    data = task_data(inputs, outputs, input_lengths=lengths)
    assert data.aligned and np.array_equal(data.output_lengths, lengths)
    assert np.all(data.inputs[1, 3:] == 0) and np.all(data.outputs[1, 3:] == 0)
    np.testing.assert_allclose(data.inputs[1, :3], inputs[1, :3], rtol=1e-6)
    np.testing.assert_allclose(data.outputs[0], outputs[0], rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=4, max_size=8), st.integers(0, 2**31 - 1))
def test_valid_steps_are_kept_and_padding_ignored(lengths, seed):
    rng = np.random.default_rng(seed)
    count, steps = len(lengths), 7
    inputs, outputs = rng.normal(size=(count, steps, 1)), rng.normal(size=(count, steps, 2))
    garbage = inputs.copy()
    valid = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    garbage[~valid] = rng.normal(size=(~valid).sum(), scale=100.0)[:, None]
    first = task_data(inputs, outputs, input_lengths=np.array(lengths))
    second = task_data(garbage, outputs, input_lengths=np.array(lengths))
    np.testing.assert_array_equal(first.inputs, second.inputs)
    np.testing.assert_allclose(first.inputs[valid], inputs[valid].astype(np.float32))
    assert first.fingerprint() == second.fingerprint()


def _bad(change):
    inputs, outputs = _arrays()
    arguments = {"inputs": inputs, "outputs": outputs}
    change(arguments)
    return arguments


BAD = [
    ("fewer output sequences", lambda a: a.update(outputs=a["outputs"][:9]), "outputs: expected 10 sequences"),
    ("inputs 4-D", lambda a: a.update(inputs=a["inputs"][..., None]), "inputs: expected a non-empty [sequence, time"),
    ("aligned with other steps", lambda a: a.update(outputs=a["outputs"][:, :4], aligned=True),
     "outputs: an aligned task needs as many steps"),
    ("lengths shape", lambda a: a.update(input_lengths=np.ones(9, int)), "input_lengths: expected int [10]"),
    ("lengths float", lambda a: a.update(input_lengths=np.ones(10)), "input_lengths: expected int [10]"),
    ("length too long", lambda a: a.update(input_lengths=np.full(10, 7)), "input_lengths: expected values in [1, 6]"),
    ("length zero", lambda a: a.update(input_lengths=np.r_[np.full(9, 6), 0]), "sequence 9 has 0"),
    ("output lengths differ", lambda a: a.update(output_lengths=np.full(10, 5), aligned=True),
     "output_lengths: an aligned task needs them equal"),
    ("nan input", lambda a: a["inputs"].__setitem__((3, 2, 1), np.nan),
     "inputs: NaN or inf at valid step 2 of sequence 3"),
    ("inf output", lambda a: a["outputs"].__setitem__((4, 5, 0), np.inf),
     "outputs: NaN or inf at valid step 5 of sequence 4"),
    ("constant outputs", lambda a: a.update(outputs=np.ones((10, 6, 1))), "outputs: every valid output has the same"),
    ("labels not int", lambda a: a.update(classes=3), "outputs: class labels must be"),
    ("label too large", lambda a: a.update(outputs=np.full((10, 6), 3), classes=3), "labels must lie in [0, 3)"),
    ("label negative", lambda a: a.update(outputs=np.full((10, 6), -1), classes=3), "sequence 0 step 0 has -1"),
    ("one class", lambda a: a.update(outputs=np.zeros((10, 6), int), classes=1), "classes must be >= 2"),
]  # fmt: skip


@pytest.mark.parametrize("case, change, message", BAD, ids=[case for case, *_ in BAD])
def test_bad_input_names_the_array(case, change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        task_data(**_bad(change))


def test_labels_out_of_range_at_padding_are_ignored():
    inputs, _ = _arrays()
    labels = np.full((10, 6), 1)
    labels[:, 4:] = -1
    data = task_data(inputs, labels, input_lengths=np.full(10, 4), classes=2)
    assert data.labels and data.output_size == 2 and np.all(data.outputs[:, 4:] == 0)


def test_different_lengths_are_not_aligned():
    inputs, outputs = _arrays()
    data = task_data(inputs, outputs[:, :3], input_lengths=np.full(10, 5), output_lengths=np.full(10, 2))
    assert not data.aligned and data.output_steps == 3 and data.output_mask().sum() == 20
    forced = task_data(inputs, outputs, aligned=False)
    assert not forced.aligned and np.array_equal(forced.output_lengths, np.full(10, 6))


def test_npz_round_trip(tmp_path):
    inputs, labels = _arrays(classes=4)
    data = task_data(inputs, labels, input_lengths=np.arange(10) % 6 + 1, classes=4)
    split = np.array([0] * 6 + [1] * 2 + [2] * 2)
    loaded, stored_split = load_task(save_task(tmp_path / "task.npz", data, split))
    assert loaded.fingerprint() == data.fingerprint() and loaded.classes == 4 and loaded.name == "task"
    np.testing.assert_array_equal(stored_split, split)


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_task(tmp_path / "missing.npz")
    inputs, outputs = _arrays()
    np.savez(tmp_path / "extra.npz", inputs=inputs, outputs=outputs, weights=np.ones(3))
    with pytest.raises(ValueError, match=r"unknown \['weights'\]"):
        load_task(tmp_path / "extra.npz")
    np.savez(tmp_path / "half.npz", inputs=inputs)
    with pytest.raises(ValueError, match=r"missing \['outputs'\]"):
        load_task(tmp_path / "half.npz")


def test_sample_task_draws_like_the_zoo():
    target = targets.centred_sum(2)
    data = sample_task(target, 8, 12, seed=3)
    xs, ys = targets.sample(target, jax.random.key(3), 8, 12)
    np.testing.assert_allclose(data.inputs, np.asarray(xs), rtol=1e-6)
    np.testing.assert_allclose(data.outputs, np.asarray(ys), rtol=1e-5, atol=1e-6)
    assert data.aligned and data.name == "centred_sum2"


def test_sample_task_from_a_plain_function():
    def pool(xs):
        return jnp.stack([xs[0::2, 0] + xs[1::2, 0], xs[0::2, 1]], -1)

    data = sample_task(pool, 5, 8, input_size=2)
    assert not data.aligned and data.outputs.shape == (5, 4, 2)
    np.testing.assert_allclose(data.outputs[..., 0], data.inputs[:, 0::2, 0] + data.inputs[:, 1::2, 0], rtol=1e-5)
    with pytest.raises(TypeError, match="target must be a Target or a function"):
        sample_task(3, 5, 8)


def test_split_is_a_seeded_partition():
    data = task_data(*_arrays(count=50))
    split = split_task(data, (0.6, 0.2, 0.2), seed=1)
    parts = [split.train, split.validation, split.test]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(50))
    assert split.sizes() == {"train": 30, "validation": 10, "test": 10}
    np.testing.assert_array_equal(split_task(data, seed=1).test, split.test)
    assert not np.array_equal(split_task(data, seed=2).test, split.test)
    fixed = split_task(data, assignment=np.arange(50) % 3)
    np.testing.assert_array_equal(fixed.validation, np.arange(1, 50, 3))


def test_split_errors():
    data = task_data(*_arrays(count=8))
    with pytest.raises(ValueError, match="too few sequences for the split: 8 sequences give 0 for validation"):
        split_task(data, (0.8, 0.1, 0.1))
    with pytest.raises(ValueError, match="split: expected int \\[8\\] with values 0"):
        split_task(data, assignment=np.full(8, 3))
    with pytest.raises(ValueError, match="split fractions: expected three positive numbers"):
        split_task(data, (1.0, 0.0, 0.5))
