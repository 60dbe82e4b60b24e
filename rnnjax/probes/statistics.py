"""Sampling error of a pooled NMSE measured on a finite test set (an analytic 95% interval), and the summary of a
result over seeds when some seeds diverged.

The pooled NMSE over n independent test sequences is a ratio of sums, R = sum_i e_i / sum_i d_i, with
e_i = sum_t |yhat_it - y_it|^2 and d_i = sum_t |y_it - ybar|^2 per sequence. The delta method gives its standard
error, se = std_i(e_i - R d_i) / (sqrt(n) mean_i d_i) (asymptotically normal in n; independent sequences are
what makes it valid: steps within one sequence may be correlated), and the interval R +- 1.96 se.

Diverged seeds (a NaN or infinite error) are results, not gaps: :func:`over_seeds` ranks them as the worst
(+inf), so a median over seeds moves when seeds diverge instead of silently dropping them, and counts them.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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


class OverSeeds(NamedTuple):
    """A result over seeds: median and best with diverged seeds ranked worst, and how many diverged."""

    median: float  # inf when at least half of the seeds diverged
    best: float  # nan when every seed diverged
    diverged: int
    seeds: int

    def note(self) -> str:
        """'' when no seed diverged, else e.g. ' (1 of 3 seeds diverged)'."""
        return f" ({self.diverged} of {self.seeds} seeds diverged)" if self.diverged else ""


def over_seeds(values: Iterable[float | None]) -> OverSeeds:
    """Median and best of one error over seeds; a NaN or infinite value is a diverged seed, ranked as +inf.

    ``None`` values (a field the run did not measure) are left out. With no values: all NaN, 0 seeds.
    """
    measured = np.array([v for v in values if v is not None], np.float64)
    if measured.size == 0:
        return OverSeeds(float("nan"), float("nan"), 0, 0)
    finite = np.isfinite(measured)
    ranked = np.where(finite, measured, np.inf)
    best = float(ranked.min()) if finite.any() else float("nan")
    return OverSeeds(_median(ranked), best, int((~finite).sum()), int(measured.size))


def _median(ranked: np.ndarray) -> float:
    """The median, +inf when a middle value is +inf (half or more of the seeds diverged)."""
    ordered = np.sort(ranked)
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    return float("inf") if np.isinf(middle).any() else float(np.mean(middle))
