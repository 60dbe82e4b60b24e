"""Masked losses shared by every task architecture.

API:
    mask = sequence_mask(lengths, max_length)            # bool [batch, time]
    loss = cross_entropy(logits, labels, mask)            # mean over valid positions
    loss = mse(predictions, targets, mask)                # mean over valid positions
    total = masked_mean(values, mask)                     # sum(v * m) / max(sum(m), 1)

Padded positions contribute exactly zero loss and zero gradient: they are
removed with ``jnp.where`` (never multiplied by a mask), and labels at padded
positions may hold any value (e.g. -1) because they are replaced before use.
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.core.cells import _enum


class Reduction(enum.Enum):
    """MEAN: average over valid positions; SUM: total; NONE: per position (0 where masked)."""

    MEAN = "mean"
    SUM = "sum"
    NONE = "none"


def _shape_str(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


def sequence_mask(lengths: jax.Array, max_length: int) -> jax.Array:
    """mask[..., t] = t < lengths[...]; bool [*batch, max_length]."""
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"lengths must be an integer array; got dtype {lengths.dtype}")
    return jnp.arange(max_length) < lengths[..., None]


def _check_mask(mask: Any, shape: tuple[int, ...], argument: str = "mask") -> jax.Array | None:
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{argument}: expected shape {_shape_str(shape)}; got {_shape_str(mask.shape)}")
    return mask.astype(bool)


def reduce(values: jax.Array, mask: jax.Array | None, reduction: Reduction | str = Reduction.MEAN) -> jax.Array:
    """Apply a :class:`Reduction` to per-position values, ignoring masked positions."""
    reduction = _enum(Reduction, reduction, "reduction")
    if mask is not None:
        values = jnp.where(mask, values, jnp.zeros_like(values))
    if reduction is Reduction.NONE:
        return values
    if reduction is Reduction.SUM:
        return values.sum()
    if reduction is Reduction.MEAN:
        count = values.size if mask is None else jnp.maximum(mask.sum(), 1)
        return values.sum() / count
    raise ValueError(f"reduction must be a Reduction; got {reduction!r}")


def masked_mean(values: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """sum_i m_i v_i / max(sum_i m_i, 1)."""
    return reduce(values, _check_mask(mask, jnp.shape(values)), Reduction.MEAN)


def check_labels(labels: jax.Array, num_classes: int, mask: jax.Array | None = None, argument: str = "labels") -> None:
    """Raise ValueError if a valid (unmasked) label lies outside [0, num_classes)."""
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{argument} must be an integer array; got dtype {labels.dtype}")
    if not _is_concrete(labels) or (mask is not None and not _is_concrete(mask)) or labels.size == 0:
        return
    valid = np.asarray(labels) if mask is None else np.asarray(labels)[np.asarray(mask)]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= num_classes):
        raise ValueError(
            f"{argument}: ids must lie in [0, {num_classes}) (number of classes {num_classes}); "
            f"got values in [{int(valid.min())}, {int(valid.max())}] at valid positions"
        )


def cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    mask: jax.Array | None = None,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction | str = Reduction.MEAN,
) -> jax.Array:
    """-log softmax(logits)[label], averaged over valid positions.

    Args:
      logits: ``[*batch, classes]``, e.g. ``[batch, time, vocab]``.
      labels: int ``[*batch]``; values at masked positions are ignored.
      mask: bool ``[*batch]``; False positions give zero loss and zero gradient.
      label_smoothing: mix the one-hot target with the uniform distribution.
      reduction: MEAN (over valid positions), SUM, or NONE.
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.ndim < 1 or labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels: expected shape {_shape_str(logits.shape[:-1])} (logits.shape without the class axis); "
            f"got {_shape_str(labels.shape)} with logits.shape={_shape_str(logits.shape)}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1); got {label_smoothing!r}")
    mask = _check_mask(mask, labels.shape)
    num_classes = logits.shape[-1]
    check_labels(labels, num_classes, mask)
    safe_labels = labels if mask is None else jnp.where(mask, labels, 0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
    if label_smoothing:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=-1)
    return reduce(nll, mask, reduction)


def mse(
    predictions: jax.Array,
    targets: jax.Array,
    mask: jax.Array | None = None,
    *,
    reduction: Reduction | str = Reduction.MEAN,
) -> jax.Array:
    """(prediction - target)^2 summed over the feature axis when ``mask`` is one rank lower.

    ``mask`` may have the shape of ``predictions`` or drop its last (feature) axis;
    in the second case the squared error is summed over features first.
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"targets: expected shape {_shape_str(predictions.shape)} (that of predictions); "
            f"got {_shape_str(targets.shape)}"
        )
    error = jnp.square(predictions - targets)
    if mask is not None and jnp.ndim(mask) == error.ndim - 1:
        error = error.sum(axis=-1)
    mask = _check_mask(mask, error.shape)
    return reduce(error, mask, reduction)
