"""Masked losses: values against manual formulas, zero loss and gradient at padding, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.tasks.losses import check_labels, cross_entropy, masked_mean, mse, reduce, sequence_mask


def _batch(key, batch=3, time=5, classes=4):
    k_logits, k_labels = jax.random.split(key)
    logits = jax.random.normal(k_logits, (batch, time, classes), jnp.float64)
    labels = jax.random.randint(k_labels, (batch, time), 0, classes)
    lengths = jnp.array([5, 2, 0])[:batch]
    mask = sequence_mask(lengths, time)
    return logits, jnp.where(mask, labels, -1), mask


def test_sequence_mask():
    np.testing.assert_array_equal(sequence_mask(jnp.array([0, 2]), 3), [[False] * 3, [True, True, False]])


def test_cross_entropy_matches_manual_mean_over_valid_positions(key):
    logits, labels, mask = _batch(key)
    log_probs = np.asarray(logits) - np.log(np.exp(np.asarray(logits)).sum(-1, keepdims=True))
    manual, count = 0.0, 0
    for b, t in zip(*np.nonzero(np.asarray(mask))):
        manual -= log_probs[b, t, int(labels[b, t])]
        count += 1
    np.testing.assert_allclose(cross_entropy(logits, labels, mask), manual / count, rtol=1e-12)
    np.testing.assert_allclose(cross_entropy(logits, labels, mask, reduction="sum"), manual, rtol=1e-12)


def test_cross_entropy_padding_has_zero_loss_and_zero_gradient(key):
    logits, labels, mask = _batch(key)
    per_position = np.asarray(cross_entropy(logits, labels, mask, reduction="none"))
    grads = np.asarray(jax.grad(cross_entropy)(logits, labels, mask))
    valid = np.asarray(mask)
    assert np.all(per_position[~valid] == 0.0) and np.all(per_position[valid] > 0.0)
    assert np.all(grads[~valid] == 0.0)
    assert np.all(np.abs(grads[valid]).sum(-1) > 0)
    # Changing padded logits or labels changes nothing.
    noisy = jnp.where(mask[..., None], logits, 1e3)
    expected = cross_entropy(logits, labels, mask)
    np.testing.assert_allclose(cross_entropy(noisy, jnp.where(mask, labels, 3), mask), expected)


def test_cross_entropy_label_smoothing_matches_optax(key):
    logits, labels, _ = _batch(key)
    labels = jnp.abs(labels)
    smoothed = optax.smooth_labels(jax.nn.one_hot(labels, 4), 0.2)
    expected = optax.softmax_cross_entropy(logits, smoothed).mean()
    np.testing.assert_allclose(cross_entropy(logits, labels, label_smoothing=0.2), expected, rtol=1e-12)


def test_cross_entropy_jit_and_vmap_agree_with_eager(key):
    logits, labels, mask = _batch(key)
    eager = cross_entropy(logits, labels, mask, reduction="none")
    jitted = jax.jit(lambda *a: cross_entropy(*a, reduction="none"))(logits, labels, mask)
    mapped = jax.vmap(lambda *a: cross_entropy(*a, reduction="none"))(logits, labels, mask)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    np.testing.assert_allclose(mapped, eager, rtol=1e-12)


def test_mse_with_feature_axis_and_mask(key):
    predictions = jax.random.normal(key, (2, 4, 3), jnp.float64)
    targets = jnp.zeros_like(predictions)
    mask = sequence_mask(jnp.array([4, 1]), 4)
    expected = (np.asarray(predictions) ** 2).sum(-1)[np.asarray(mask)].mean()
    np.testing.assert_allclose(mse(predictions, targets, mask), expected, rtol=1e-12)
    grads, mask = np.asarray(jax.grad(mse)(predictions, targets, mask)), np.asarray(mask)
    assert np.all(grads[~mask] == 0.0) and np.all(grads[mask] != 0.0)
    np.testing.assert_allclose(mse(predictions, targets), (predictions**2).mean(), rtol=1e-12)


def test_masked_mean_of_empty_mask_is_zero():
    assert masked_mean(jnp.ones(3), jnp.zeros(3, bool)) == 0.0
    np.testing.assert_allclose(masked_mean(jnp.arange(4.0), jnp.array([1, 0, 1, 0], bool)), 1.0)


def test_bad_inputs_raise_clear_errors(key):
    logits, labels, mask = _batch(key)
    cases = [
        (ValueError, r"labels must be ids in \[0, 4\) at valid positions; got 7",
         lambda: cross_entropy(logits, labels.at[0, 0].set(7), mask)),
        (ValueError, r"labels must be ids in \[0, 4\) at valid positions; got -1",
         lambda: cross_entropy(logits, labels.at[0, 0].set(-1), mask)),
        (ValueError, "labels must have shape", lambda: cross_entropy(logits, labels[:, :2], None)),
        (TypeError, "labels must be an integer array", lambda: cross_entropy(logits, labels.astype(float))),
        (TypeError, "logits must be a floating-point array", lambda: cross_entropy(labels[..., None], labels)),
        (ValueError, r"mask must have shape \[3, 5\]; got \[3, 2\]",
         lambda: cross_entropy(logits, labels, mask[:, :2])),
        (ValueError, r"label_smoothing must be < 1; got 1.0",
         lambda: cross_entropy(logits, labels, mask, label_smoothing=1.0)),
        (ValueError, r"label_smoothing must be >= 0", lambda: cross_entropy(logits, labels, label_smoothing=-0.1)),
        (ValueError, "targets must have shape", lambda: mse(jnp.zeros(3), jnp.zeros(4))),
        (ValueError, "reduction must be one of", lambda: reduce(jnp.zeros(3), None, "average")),
        (ValueError, r"mask must have shape \[3\]", lambda: reduce(jnp.zeros(3), jnp.ones(2, bool))),
        (ValueError, r"lengths must be in \[0, 4\]; got 5", lambda: sequence_mask(jnp.array([1, 5]), 4)),
        (ValueError, r"lengths must be in \[0, 4\]; got -1", lambda: sequence_mask(jnp.array([-1, 2]), 4)),
        (TypeError, r"lengths must be an integer array", lambda: sequence_mask(jnp.array([1.0]), 4)),
        (ValueError, r"max_length must be >= 0; got -1", lambda: sequence_mask(jnp.array([0]), -1)),
        (ValueError, r"num_classes must be >= 1; got 0", lambda: check_labels(labels, 0)),
    ]
    for error, pattern, call in cases:
        with pytest.raises(error, match=pattern):
            call()
