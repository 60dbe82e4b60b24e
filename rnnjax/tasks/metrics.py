"""Accuracy and edit-distance metrics.

API:
    token_accuracy(predictions, targets, mask)       # fraction of valid positions equal (jnp)
    sequence_accuracy(predictions, targets, mask)    # fraction of sequences fully right (jnp)
    edit_distance(reference, hypothesis)             # Levenshtein distance of two sequences (host)
    error_rate(references, hypotheses)               # sum of distances / sum of reference lengths
    char_error_rate(["abc"], ["abd"]); word_error_rate(["a b c"], ["a c"])
    trim(tokens, lengths)                            # [batch, time] + lengths -> list of tuples
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments
from rnnjax.tasks.losses import check_lengths


def _check_same_shape(predictions, targets, mask):
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.ndim < 1:
        raise ValueError(f"predictions must have shape [..., time]; got {arguments.shape_str(predictions.shape)}")
    arguments.has_shape("targets", targets, predictions.shape)
    mask = jnp.ones(targets.shape, bool) if mask is None else jnp.asarray(mask)
    arguments.has_shape("mask", mask, targets.shape)
    return predictions, targets, mask.astype(bool)


def token_accuracy(predictions: jax.Array, targets: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """sum_i m_i [p_i = y_i] / sum_i m_i."""
    predictions, targets, mask = _check_same_shape(predictions, targets, mask)
    return ((predictions == targets) & mask).sum() / jnp.maximum(mask.sum(), 1)


def sequence_accuracy(predictions: jax.Array, targets: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Fraction of sequences (rows over the last axis) right at every valid position."""
    predictions, targets, mask = _check_same_shape(predictions, targets, mask)
    return jnp.all((predictions == targets) | ~mask, axis=-1).mean()


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning one into the other."""
    reference, hypothesis = list(reference), list(hypothesis)
    row = np.arange(len(hypothesis) + 1)
    for i, ref_item in enumerate(reference, start=1):
        previous, row = row, np.empty_like(row)
        row[0] = i
        for j, hyp_item in enumerate(hypothesis, start=1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref_item != hyp_item))
    return int(row[-1])


def error_rate(references: Sequence[Sequence[Any]], hypotheses: Sequence[Sequence[Any]]) -> float:
    """sum edit_distance(r, h) / sum len(r) over pairs (CER on characters, WER on words)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"hypotheses must hold {len(references)} items (one per reference); got {len(hypotheses)}")
    total = sum(len(reference) for reference in references)
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / max(total, 1)


def _check_strings(references: Any, hypotheses: Any) -> None:
    for argument, items in (("references", references), ("hypotheses", hypotheses)):
        if isinstance(items, str) or not all(isinstance(item, str) for item in items):
            raise TypeError(f"{argument} must be a sequence of strings; got {type(items).__name__} {items!r:.60}")


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate of strings."""
    _check_strings(references, hypotheses)
    return error_rate([list(r) for r in references], [list(h) for h in hypotheses])


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate of whitespace-separated strings."""
    _check_strings(references, hypotheses)
    return error_rate([r.split() for r in references], [h.split() for h in hypotheses])


def trim(tokens: Any, lengths: Any) -> list[tuple[int, ...]]:
    """Rows of ``tokens [batch, time]`` cut to ``lengths [batch]`` (each in [0, time]) as Python tuples."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, time]; got {arguments.shape_str(tokens.shape)}")
    lengths = np.asarray(check_lengths("lengths", np.asarray(lengths), tokens.shape[:1], tokens.shape[1]))
    return [tuple(int(t) for t in row[: int(n)]) for row, n in zip(tokens, lengths)]
