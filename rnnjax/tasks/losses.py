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

from rnnjax.checks import arguments
from rnnjax.checks import values as value_checks
from rnnjax.typing import Array, ArrayLike, Bool, Labels, Lengths, Logits, Loss, PositionMask, Targets, shaped


class Reduction(enum.Enum):
    """MEAN: average over valid positions; SUM: total; NONE: per position (0 where masked).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.losses import Reduction, reduce
      >>> float(reduce(jnp.array([1.0, 2.0, 6.0]), jnp.array([True, True, False]), Reduction.MEAN))
      1.5
    """

    MEAN = "mean"
    SUM = "sum"
    NONE = "none"


def integer_array(argument: str, value: Any) -> jax.Array:
    """``value`` as a jnp array of an integer dtype (TypeError naming the dtype otherwise)."""
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.integer):
        raise TypeError(f"{argument} must be an integer array; got dtype {array.dtype}")
    return array


def float_array(argument: str, value: Any) -> jax.Array:
    """``value`` as a jnp array of a floating dtype (TypeError naming the dtype otherwise)."""
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{argument} must be a floating-point array; got dtype {array.dtype}")
    return array


def check_lengths(argument: str, lengths: Any, batch_shape: tuple[int, ...], maximum: int) -> jax.Array:
    """Int ``lengths`` of shape ``batch_shape`` with values in [0, maximum] (values checked as in :mod:`checking`)."""
    lengths = integer_array(argument, lengths)
    arguments.has_shape(argument, lengths, batch_shape)
    value_checks.lengths_in_range(argument, lengths, maximum)
    return lengths


def length_mask(lengths: jax.Array, max_length: int) -> jax.Array:
    """mask[..., t] = t < lengths[...], unchecked (for lengths already checked)."""
    return jnp.arange(max_length) < lengths[..., None]


@shaped
def sequence_mask(lengths: Lengths, max_length: int) -> Bool[Array, "*batch time"]:  # noqa: F722 (jaxtyping)
    """mask[..., t] = t < lengths[...]; bool [*batch, max_length].

    ``lengths`` must lie in [0, max_length]: checked when concrete and in :func:`checking.checked` mode; traced
    lengths outside act as clipped (a negative length masks everything, a longer one nothing).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.losses import sequence_mask
      >>> sequence_mask(jnp.array([1, 3]), 4).tolist()  # lengths [batch] -> mask [batch, time]
      [[True, False, False, False], [True, True, True, False]]
    """
    max_length = arguments.nonnegative_int("max_length", max_length)
    lengths = integer_array("lengths", lengths)
    value_checks.lengths_in_range("lengths", lengths, max_length)
    return length_mask(lengths, max_length)


def _check_mask(mask: Any, shape: tuple[int, ...], argument: str = "mask") -> jax.Array | None:
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    arguments.has_shape(argument, mask, shape)
    return mask.astype(bool)


def reduce(values: jax.Array, mask: jax.Array | None, reduction: Reduction | str = Reduction.MEAN) -> jax.Array:
    """Apply a :class:`Reduction` to per-position values, ignoring masked positions."""
    reduction = arguments.as_enum(Reduction, reduction, "reduction")
    values = jnp.asarray(values)
    mask = _check_mask(mask, values.shape)
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
    """Int ``labels`` in [0, num_classes) where ``mask`` is True (values checked as in :mod:`checking`)."""
    num_classes = arguments.positive_int("num_classes", num_classes)
    labels = integer_array(argument, labels)
    value_checks.ids_in_range(argument, labels, num_classes, mask)


@shaped
def cross_entropy(
    logits: Logits,
    labels: Labels,
    mask: PositionMask | None = None,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction | str = Reduction.MEAN,
) -> Loss:
    """-log softmax(logits)[label], averaged over valid positions.

    Args:
      logits: ``[*batch, classes]``, e.g. ``[batch, time, vocab]``.
      labels: int ``[*batch]``; values at masked positions are ignored.
      mask: bool ``[*batch]``; False positions give zero loss and zero gradient.
      label_smoothing: mix the one-hot target with the uniform distribution.
      reduction: MEAN (over valid positions), SUM, or NONE.

    Label ids must lie in [0, classes) at valid positions: checked when concrete and in
    :func:`rnnjax.checks.values.checked` mode; traced ids outside are not caught: an id >= classes gives a NaN loss,
    a negative one counts from the end (-1 reads the last class) and gives a finite, wrong loss.

    Returns:
      The loss: a scalar ``[]`` (MEAN, SUM) or ``[*batch]`` (NONE, zero at masked positions).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.losses import cross_entropy, sequence_mask
      >>> logits = jnp.zeros((2, 3, 5))  # [batch, time, vocab]: uniform
      >>> labels = jnp.array([[4, 0, 1], [2, 3, 3]])  # [batch, time]
      >>> mask = sequence_mask(jnp.array([3, 1]), 3)  # [batch, time]
      >>> round(float(cross_entropy(logits, labels, mask)), 3)  # log(5)
      1.609
      >>> cross_entropy(logits, labels, mask, reduction="none").shape
      (2, 3)
    """
    logits = float_array("logits", logits)
    labels = integer_array("labels", labels)
    if logits.ndim < 1 or labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have shape {arguments.shape_str(logits.shape[:-1])} (logits.shape without the class axis); "
            f"got {arguments.shape_str(labels.shape)} with logits.shape={arguments.shape_str(logits.shape)}"
        )
    label_smoothing = arguments.probability("label_smoothing", label_smoothing)
    mask = _check_mask(mask, labels.shape)
    num_classes = logits.shape[-1]
    check_labels(labels, num_classes, mask)
    safe_labels = labels if mask is None else jnp.where(mask, labels, 0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
    if label_smoothing:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=-1)
    return reduce(nll, mask, reduction)


@shaped
def mse(
    predictions: Targets,
    targets: Targets,
    mask: Bool[ArrayLike, "..."] | None = None,
    *,
    reduction: Reduction | str = Reduction.MEAN,
) -> Loss:
    """(prediction - target)^2 summed over the feature axis when ``mask`` is one rank lower.

    ``mask`` may have the shape of ``predictions`` or drop its last (feature) axis;
    in the second case the squared error is summed over features first.

    Args:
      predictions: ``[*batch, features]``, e.g. ``[batch, time, features]``.
      targets: the same shape as ``predictions``.
      mask: bool ``[*batch, features]`` or ``[*batch]``; False positions count neither in the sum nor the mean.
      reduction: MEAN (over valid positions), SUM, or NONE.

    Returns:
      The loss: a scalar ``[]`` (MEAN, SUM), or per position (NONE) in the shape of ``mask``
      (of ``predictions`` without a mask).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.losses import mse
      >>> predictions, targets = jnp.ones((2, 3, 2)), jnp.zeros((2, 3, 2))  # [batch, time, features]
      >>> float(mse(predictions, targets)), float(mse(predictions, targets, jnp.ones((2, 3), bool)))
      (1.0, 2.0)
    """
    predictions, targets = float_array("predictions", predictions), float_array("targets", targets)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"targets must have shape {arguments.shape_str(predictions.shape)} (that of predictions); "
            f"got {arguments.shape_str(targets.shape)}"
        )
    error = jnp.square(predictions - targets)
    if mask is not None and jnp.ndim(mask) == error.ndim - 1:
        error = error.sum(axis=-1)
    mask = _check_mask(mask, error.shape)
    return reduce(error, mask, reduction)
