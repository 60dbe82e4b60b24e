"""Connectionist Temporal Classification: loss, collapsing, prefix beam search.

API (``logits [batch, time, classes]`` with one class the blank):
    loss = ctc_loss(logits, logit_lengths, labels, label_lengths, blank_id=0)   # mean of -log p(labels | x)
    per_sequence = ctc_loss(..., reduction="none")                              # [batch]
    tokens, lengths = collapse(frame_ids, frame_lengths, blank_id=0)  # merge repeats, drop blanks
    tokens, lengths = greedy_decode(logits, logit_lengths, blank_id=0)          # collapse(argmax)
    hyps = prefix_beam_search(log_probs_t_k, beam_width=8, blank_id=0)          # [(labels, log p)], host numpy
    best = batch_prefix_beam_search(logits, logit_lengths, beam_width=8)        # [labels per sequence]

Padding is given by lengths (the loss builds optax's ``*_paddings``); label
values beyond ``label_lengths`` are ignored (any value, e.g. -1). Padded frames
get zero gradient. ``collapse`` pads its output with ``pad_id`` (default -1).
A labelling that no alignment can produce (too long for the frames) gets a loss
near 1e5 from optax's log(0) surrogate.

Value checks (label ids in [0, classes) and not the blank, lengths in range) run
when the values are concrete, also inside ``jit`` when the arrays come from
outside it; for traced values they run only in :func:`rnnjax.checks.values.checked`
mode, and otherwise an out-of-range id gives a finite, wrong loss and an
out-of-range length acts as if clipped to [0, time].
"""

from __future__ import annotations

import collections
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import checkify

from rnnjax.checks import arguments
from rnnjax.checks import values as value_checks
from rnnjax.tasks.losses import Reduction, check_labels, check_lengths, float_array, integer_array, length_mask, reduce
from rnnjax.typing import (
    ArrayLike,
    Float,
    FrameLogits,
    LabelSequences,
    Lengths,
    LengthsOut,
    Loss,
    SequenceLengths,
    Tokens,
    TokensOut,
    shaped,
)


def _check_blank(blank_id: Any, classes: int) -> int:
    return arguments.integer("blank_id", blank_id, minimum=0, maximum=classes - 1)


def _check_ctc_inputs(logits, logit_lengths, labels, label_lengths, blank_id) -> tuple[jax.Array, ...]:
    logits = float_array("logits", logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape [batch, time, classes]; got {arguments.shape_str(logits.shape)}")
    batch, time, classes = logits.shape
    _check_blank(blank_id, classes)
    labels = integer_array("labels", labels)
    arguments.has_shape("labels", labels, (batch, None))
    logit_lengths = check_lengths("logit_lengths", logit_lengths, (batch,), time)
    label_lengths = check_lengths("label_lengths", label_lengths, (batch,), labels.shape[1])
    label_valid = value_checks.positions_below(label_lengths, labels.shape[1])
    check_labels(labels, classes, label_valid)
    value_checks.value_absent("labels", labels, blank_id, label_valid, why=" (blank_id)")
    return logits, logit_lengths, labels, label_lengths


@shaped
def ctc_loss(
    logits: FrameLogits,
    logit_lengths: SequenceLengths,
    labels: LabelSequences,
    label_lengths: SequenceLengths,
    *,
    blank_id: int = 0,
    reduction: Reduction | str = Reduction.MEAN,
) -> Loss:
    """-log sum_{alignments a: collapse(a) = labels} prod_t p(a_t | x), via ``optax.ctc_loss``.

    Args:
      logits: ``[batch, time, classes]`` unnormalised scores (blank included).
      logit_lengths: int ``[batch]`` valid frames per sequence.
      labels: int ``[batch, max_label_length]``, right-padded.
      label_lengths: int ``[batch]`` valid labels per sequence.
      blank_id: index of the blank class; must not appear among valid labels.
      reduction: MEAN over sequences, SUM, or NONE (``[batch]``).

    Values are checked as the module docstring says (traced values only in checked mode).

    Returns:
      The loss: a scalar ``[]`` (MEAN, SUM) or ``[batch]`` (NONE).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.ctc import ctc_loss
      >>> logits = jnp.zeros((2, 4, 3))  # [batch, time, classes]: uniform over blank, 1, 2
      >>> labels = jnp.array([[1, 2], [1, -1]])  # [batch, max_label_length], padding ignored
      >>> losses = ctc_loss(logits, jnp.array([4, 3]), labels, jnp.array([2, 1]), reduction="none")
      >>> [round(float(loss), 3) for loss in losses]  # -log(15 / 3**4), -log(6 / 3**3): counts of alignments
      [1.686, 1.504]
    """
    logits, logit_lengths, labels, label_lengths = _check_ctc_inputs(
        logits, logit_lengths, labels, label_lengths, blank_id
    )
    reduction = arguments.as_enum(Reduction, reduction, "reduction")
    per_sequence = _ctc_core(logits, logit_lengths, labels, label_lengths, blank_id=blank_id)
    return reduce(per_sequence, None, reduction)


@functools.partial(jax.jit, static_argnames="blank_id")
def _ctc_core(logits, logit_lengths, labels, label_lengths, *, blank_id):
    """optax.ctc_loss with paddings built from lengths; one compiled call even when used eagerly."""
    frame_valid = length_mask(logit_lengths, logits.shape[1])
    label_valid = length_mask(label_lengths, labels.shape[1])
    safe_labels = jnp.where(label_valid, labels, (blank_id + 1) % logits.shape[-1])
    # Padded frames: constant logits (no gradient reaches the originals through `where`).
    safe_logits = jnp.where(frame_valid[..., None], logits, 0.0)
    per_sequence = optax.ctc_loss(
        safe_logits,
        (~frame_valid).astype(logits.dtype),
        safe_labels,
        (~label_valid).astype(logits.dtype),
        blank_id=blank_id,
    )
    return per_sequence


@shaped
def collapse(
    tokens: Tokens, lengths: Lengths | None = None, *, blank_id: int = 0, pad_id: int = -1
) -> tuple[TokensOut, LengthsOut]:
    """B(a): merge runs of equal ids, then drop blanks (``aa-b-bb`` -> ``abb``); jit-able.

    Args:
      tokens: int ``[..., time]`` frame labels.
      lengths: int ``[...]`` valid frames (all by default).
    Returns:
      ``(labels [..., time] left-aligned and padded with pad_id, label_lengths [...])``.

    ``lengths`` must lie in [0, time] (traced lengths are checked only in checked mode, else act as clipped).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax.tasks.ctc import collapse
      >>> labels, label_lengths = collapse(jnp.array([[1, 1, 0, 2, 2, 0, 2]]))  # [batch, time], blank 0
      >>> labels.tolist(), label_lengths.tolist()
      ([[1, 2, 2, -1, -1, -1, -1]], [3])
    """
    tokens = integer_array("tokens", tokens)
    if tokens.ndim < 1:
        raise ValueError(f"tokens must have shape [..., time]; got {arguments.shape_str(tokens.shape)}")
    blank_id = arguments.integer("blank_id", blank_id)
    pad_id = arguments.integer("pad_id", pad_id)
    time = tokens.shape[-1]
    if lengths is None:
        valid = jnp.ones(tokens.shape, bool)
    else:
        valid = length_mask(check_lengths("lengths", lengths, tokens.shape[:-1], time), time)
    previous = jnp.concatenate([jnp.full_like(tokens[..., :1], blank_id), tokens[..., :-1]], axis=-1)
    first = jnp.arange(time) == 0
    keep = valid & (tokens != blank_id) & ((tokens != previous) | first)
    target = jnp.where(keep, jnp.cumsum(keep, axis=-1) - 1, time)  # position in the output, or out of range

    def compact(row_tokens, row_target):
        return jnp.full((time,), pad_id, tokens.dtype).at[row_target].set(row_tokens, mode="drop")

    flat = jax.vmap(compact)(tokens.reshape(-1, time), target.reshape(-1, time))
    return flat.reshape(tokens.shape), keep.sum(-1)


@shaped
def greedy_decode(
    logits: Float[ArrayLike, "*batch time classes"],  # noqa: F722 (a jaxtyping shape, not a forward reference)
    logit_lengths: Lengths | None = None,
    *,
    blank_id: int = 0,
    pad_id: int = -1,
) -> tuple[TokensOut, LengthsOut]:
    """Best-path decoding: collapse(argmax_k logits[t, k]) for ``logits [..., time, classes]``.

    A NaN or infinite logit in a valid frame is refused (ValueError; traced: in checked mode), since argmax would
    read it as the blank or the first class: a diverged model would decode to an empty or made-up transcript.
    Frames past ``logit_lengths`` may hold anything (NaN padding).

    Args:
      logits: ``[*batch, time, classes]`` frame scores (blank included).
      logit_lengths: int ``[*batch]`` valid frames (all by default).
      blank_id: the blank class.
      pad_id: fills the labels past each length.

    Returns:
      ``(labels [*batch, time], label_lengths [*batch])`` as :func:`collapse` gives them.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax.tasks.ctc import greedy_decode
      >>> logits = jax.nn.one_hot(jnp.array([[1, 1, 0, 2, 2, 0]]), 3)  # [batch, time, classes]
      >>> labels, label_lengths = greedy_decode(logits, jnp.array([5]))  # the last frame is padding
      >>> labels.tolist(), label_lengths.tolist()
      ([[1, 2, -1, -1, -1, -1]], [2])
    """
    logits = float_array("logits", logits)
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape [..., time, classes]; got {arguments.shape_str(logits.shape)}")
    _check_blank(blank_id, logits.shape[-1])
    _require_finite_frames(logits, logit_lengths)
    return collapse(logits.argmax(-1), logit_lengths, blank_id=blank_id, pad_id=pad_id)


def _require_finite_frames(logits: jax.Array, logit_lengths: Any) -> None:
    """Every valid frame of ``logits [..., time, classes]`` finite: now when concrete, in checked mode when traced."""
    time = logits.shape[-2]
    if arguments.is_concrete(logits) and (logit_lengths is None or arguments.is_concrete(logit_lengths)):
        bad = ~np.isfinite(np.asarray(logits)).all(-1)
        if logit_lengths is not None:
            bad &= np.arange(time) < np.asarray(logit_lengths)[..., None]
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"logits must be finite in every valid frame; got {int(bad.sum())} frame(s) with NaN or inf, the first "
                f"at index {where} (a diverged model?)"
            )
    elif value_checks.in_checked_mode():
        bad = ~jnp.isfinite(logits).all(-1)
        if logit_lengths is not None:
            bad &= jnp.arange(time) < jnp.asarray(logit_lengths)[..., None]
        checkify.check(~jnp.any(bad), "logits must be finite in every valid frame; got {count} non-finite frame(s)",
                       count=bad.sum())  # fmt: skip


# --------------------------------------------------------------------------- prefix beam search (host)


def _log_add(a: float, b: float) -> float:
    return float(np.logaddexp(a, b))


def prefix_beam_search(
    log_probs: Any, *, beam_width: int, blank_id: int = 0
) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search over ``log_probs [time, classes]`` (one sequence, numpy on host).

    Each prefix keeps log p of its alignments ending in blank (p_b) and in its last
    label (p_nb); a repeated label extends the prefix only after a blank. Returns
    up to ``beam_width`` ``(labels, log p(labels))`` pairs, most probable first.
    With a beam as wide as the number of prefixes it is exact.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax.tasks.ctc import prefix_beam_search
      >>> log_probs = jax.nn.log_softmax(4 * jax.nn.one_hot(jnp.array([1, 0, 1]), 3))  # [time, classes]
      >>> [(labels, round(log_p, 3)) for labels, log_p in prefix_beam_search(log_probs, beam_width=2)]
      [((1, 1), -0.108), ((1,), -3.396)]
    """
    beam_width = arguments.positive_int("beam_width", beam_width)
    log_probs = np.asarray(log_probs, np.float64)
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must have shape [time, classes]; got {arguments.shape_str(log_probs.shape)}")
    _check_blank(blank_id, log_probs.shape[1])
    if np.isnan(log_probs).any() or (log_probs > 1e-6).any():
        raise ValueError(f"log_probs must be log-probabilities (<= 0, no NaN); got max {np.max(log_probs)}")
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    for frame in log_probs:
        nxt: dict = collections.defaultdict(lambda: (-np.inf, -np.inf))
        for prefix, (p_b, p_nb) in beams.items():
            total = _log_add(p_b, p_nb)
            b, nb = nxt[prefix]
            nxt[prefix] = (_log_add(b, total + frame[blank_id]), nb)
            for label in range(log_probs.shape[1]):
                if label == blank_id:
                    continue
                if prefix and prefix[-1] == label:
                    b, nb = nxt[prefix]  # repeat without a blank: the same prefix
                    nxt[prefix] = (b, _log_add(nb, p_nb + frame[label]))
                    extended, source = prefix + (label,), p_b
                else:
                    extended, source = prefix + (label,), total
                b, nb = nxt[extended]
                nxt[extended] = (b, _log_add(nb, source + frame[label]))
        ranked = sorted(nxt.items(), key=lambda item: -_log_add(*item[1]))
        beams = dict(ranked[:beam_width])
    return [(prefix, _log_add(*scores)) for prefix, scores in beams.items()]


def batch_prefix_beam_search(
    logits: Any, logit_lengths: Any = None, *, beam_width: int, blank_id: int = 0
) -> list[tuple[int, ...]]:
    """Best labelling per sequence of ``logits [batch, time, classes]`` by prefix beam search."""
    logits = float_array("logits", logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape [batch, time, classes]; got {arguments.shape_str(logits.shape)}")
    batch, time, classes = logits.shape
    beam_width = arguments.positive_int("beam_width", beam_width)
    _check_blank(blank_id, classes)
    if logit_lengths is None:
        lengths = np.full(batch, time)
    else:
        lengths = np.asarray(check_lengths("logit_lengths", logit_lengths, (batch,), time))
    log_probs = np.asarray(jax.nn.log_softmax(logits, -1))
    return [
        prefix_beam_search(row[: int(length)], beam_width=beam_width, blank_id=blank_id)[0][0]
        for row, length in zip(log_probs, lengths)
    ]
