"""Sampling error of a pooled NMSE measured on a finite test set (an analytic 95% interval).

The pooled NMSE over n independent test sequences is a ratio of sums, R = sum_i e_i / sum_i d_i, with
e_i = sum_t |yhat_it - y_it|^2 and d_i = sum_t |y_it - ybar|^2 per sequence. The delta method gives its standard
error, se = std_i(e_i - R d_i) / (sqrt(n) mean_i d_i) (asymptotically normal in n; independent sequences are
what makes it valid: steps within one sequence may be correlated), and the interval R +- 1.96 se.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


def nmse_interval(predictions: jax.Array, targets: jax.Array, z: float = Z_95) -> tuple[jax.Array, ...]:
    """(R, low, high): pooled NMSE = E|yhat - y|^2 / Var(y) over [sequence, ...] arrays and its +-z se interval.

    R equals ``mean((yhat - y)^2) / var(y)``; ``low`` is clipped at 0. Needs at least 2 sequences.
    """
    if predictions.shape != targets.shape or predictions.ndim < 2 or predictions.shape[0] < 2:
        raise ValueError(
            "predictions, targets: expected equal shapes [sequence >= 2, ...]; "
            f"got {predictions.shape}, {targets.shape}"
        )
    axes = tuple(range(1, targets.ndim))
    errors = jnp.sum((predictions - targets) ** 2, axis=axes)
    spreads = jnp.sum((targets - jnp.mean(targets)) ** 2, axis=axes)
    ratio = jnp.sum(errors) / jnp.sum(spreads)
    count = targets.shape[0]
    standard_error = jnp.std(errors - ratio * spreads, ddof=1) / (jnp.sqrt(count) * jnp.mean(spreads))
    return ratio, jnp.maximum(ratio - z * standard_error, 0.0), ratio + z * standard_error
