"""Errors of the task probe with 95% intervals, over padded sequences (jax.numpy; numpy arrays work too).

Every score is a ratio of per-sequence sums, R = sum_i a_i / sum_i b_i, with its delta-method interval
(:mod:`rnnjax.probes.statistics`): NMSE (a_i: squared error over the valid steps, b_i: spread about the pooled
mean), cross-entropy in nats per label (a_i: summed -log p, b_i: valid steps) and accuracy (a_i: correct labels).
``error`` is the NMSE for real outputs and the cross-entropy for labels: lower is better for both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.probes.statistics import Z_95


def ratio_interval(numerators: jax.Array, denominators: jax.Array, z: float = Z_95) -> tuple[jax.Array, ...]:
    """(R, low, high): R = sum a_i / sum b_i and R +- z se, se = std(a_i - R b_i) / (sqrt(n) mean b_i); low >= 0."""
    ratio = jnp.sum(numerators) / jnp.sum(denominators)
    count = numerators.shape[0]
    standard_error = jnp.std(numerators - ratio * denominators, ddof=1) / (jnp.sqrt(count) * jnp.mean(denominators))
    return ratio, jnp.maximum(ratio - z * standard_error, 0.0), ratio + z * standard_error


def nmse_terms(predictions: jax.Array, targets: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per sequence (squared error, spread about the pooled mean) over the valid steps; arrays [n, M, d], mask [n, M].

    With every step valid, the ratio of their sums is :func:`rnnjax.probes.statistics.nmse_interval`'s NMSE.
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    weights = jnp.asarray(mask)[..., None].astype(targets.dtype)
    mean = jnp.sum(targets * weights) / (jnp.sum(weights) * targets.shape[-1])
    errors = jnp.sum((predictions - targets) ** 2 * weights, axis=(1, 2))
    spreads = jnp.sum((targets - mean) ** 2 * weights, axis=(1, 2))
    return errors, spreads


def label_terms(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per sequence (summed cross-entropy, correct labels, valid labels): logits [n, M, K], labels int [n, M]."""
    logits = jnp.asarray(logits)
    weights = jnp.asarray(mask).astype(logits.dtype)
    log_probabilities = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probabilities, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(logits.dtype)
    return -jnp.sum(picked * weights, axis=1), jnp.sum(correct * weights, axis=1), jnp.sum(weights, axis=1)


def scores(predictions: jax.Array, targets: jax.Array, mask: jax.Array, labels: bool) -> dict[str, jax.Array]:
    """{'error', 'error_low', 'error_high'} (+ 'accuracy', 'accuracy_low', 'accuracy_high' for labels)."""
    if not labels:
        return _named("error", ratio_interval(*nmse_terms(predictions, targets, mask)))
    entropy, correct, count = label_terms(predictions, targets, mask)
    accuracy, low, high = ratio_interval(correct, count)
    wilson_low, wilson_high = wilson_interval(jnp.sum(correct), jnp.sum(count))
    return {**_named("error", ratio_interval(entropy, count)),
            **_named("accuracy", (accuracy, jnp.minimum(low, wilson_low), jnp.clip(high, wilson_high, 1.0)))}


def wilson_interval(successes: jax.Array, trials: jax.Array, z: float = Z_95) -> tuple[jax.Array, jax.Array]:
    """Wilson score interval of a proportion. The accuracy interval is the union of it (over labels) and the
    delta-method one (over sequences): the latter collapses to a point when every label is right."""
    proportion = successes / trials
    centre = (proportion + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * jnp.sqrt(proportion * (1 - proportion) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return centre - half, centre + half


def loss(predictions: jax.Array, targets: jax.Array, mask: jax.Array, labels: bool, scale: jax.Array) -> jax.Array:
    """Training loss: masked MSE / ``scale`` (the training outputs' variance), or masked mean cross-entropy."""
    targets = jnp.asarray(targets)
    if labels:
        entropy, _, count = label_terms(predictions, targets, mask)
        return jnp.sum(entropy) / jnp.sum(count)
    weights = jnp.asarray(mask)[..., None].astype(targets.dtype)
    return jnp.sum((predictions - targets) ** 2 * weights) / (jnp.sum(weights) * targets.shape[-1] * scale)


def _named(name: str, interval) -> dict[str, jax.Array]:
    value, low, high = interval
    return {name: value, f"{name}_low": low, f"{name}_high": high}
