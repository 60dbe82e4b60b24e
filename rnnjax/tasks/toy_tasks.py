"""Seeded toy data for every task type (used by the tests and ``experiments/tasks_tour.py``).

Each function is ``batch(seed, batch_size, ...)`` -> a tuple of jnp arrays, deterministic in ``seed``:

    xs, lengths, labels = parity(seed, 64)                      # many-to-one
    tokens, lengths, tags = next_token_tags(seed, 32)           # aligned tagging (needs right context)
    src, src_lengths, targets, target_lengths = copy_or_reverse(seed, 64, reverse=True)   # seq2seq
    frames, frame_lengths, labels, label_lengths = ctc_runs(seed, 32)                    # CTC
    images, captions, lengths = bar_captions(seed, 32)           # captioning
    xs, labels = first_bit_task(key, 32, time_steps=50)          # long memory (gradient-flow study)

Token conventions for seq2seq and captions: ``START = 0``, ``END = 1``; targets end with END and
their lengths include it; padding after END is END.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments

START, END = 0, 1
SEQ2SEQ_VOCAB = 7  # START, END and the symbols 2..6
CAPTION_VOCAB = 9  # START, END, horizontal, vertical, band 0..3, nothing
HORIZONTAL, VERTICAL, FIRST_BAND, NOTHING = 2, 3, 4, 8


def _check_sizes(seed: Any, **sizes: Any) -> None:
    """``seed`` a non-negative int, every size a positive int."""
    arguments.nonnegative_int("seed", seed)
    for argument, value in sizes.items():
        arguments.positive_int(argument, value)


def parity(seed: int, batch: int = 64, max_length: int = 8):
    """One-hot bits [batch, max_length, 2], lengths in [1, max_length], label = sum of valid bits mod 2."""
    _check_sizes(seed, batch=batch, max_length=max_length)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (batch, max_length))
    lengths = rng.integers(1, max_length + 1, batch)
    labels = (bits * (np.arange(max_length) < lengths[:, None])).sum(1) % 2
    return jnp.asarray(np.eye(2, dtype=np.float32)[bits]), jnp.asarray(lengths), jnp.asarray(labels)


def next_token_tags(seed: int, batch: int = 32, time: int = 10, vocab: int = 5):
    """Tokens in [0, vocab); tag_t = token_{t+1}, and ``vocab`` at the last valid step."""
    _check_sizes(seed, batch=batch, vocab=vocab)
    arguments.integer("time", time, minimum=2)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (batch, time))
    lengths = rng.integers(2, time + 1, batch)
    following = np.concatenate([tokens[:, 1:], np.full((batch, 1), vocab)], 1)
    tags = np.where(np.arange(time) == lengths[:, None] - 1, vocab, following)
    return jnp.asarray(tokens), jnp.asarray(lengths), jnp.asarray(tags)


def copy_or_reverse(seed: int, batch: int = 64, max_length: int = 6, reverse: bool = False):
    """Source: 2..max_length symbols from {2, ..., 6} (padded with END); target: copy or reversal + END."""
    _check_sizes(seed, batch=batch)
    arguments.integer("max_length", max_length, minimum=2)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, max_length + 1, batch)
    symbols = rng.integers(2, SEQ2SEQ_VOCAB, (batch, max_length))
    src = np.where(np.arange(max_length) < lengths[:, None], symbols, END)
    targets = np.full((batch, max_length + 1), END)
    for row, n in enumerate(lengths):
        targets[row, :n] = src[row, :n][::-1] if reverse else src[row, :n]
    return jnp.asarray(src), jnp.asarray(lengths), jnp.asarray(targets), jnp.asarray(lengths + 1)


def ctc_runs(seed: int, batch: int = 32, symbols: int = 3, max_labels: int = 4, max_repeat: int = 3):
    """Labels in 1..symbols, each shown for 1..max_repeat noisy one-hot frames then one blank (class 0) frame.

    Returns frames [batch, time, symbols + 1] float32, frame lengths, labels [batch, max_labels], label lengths.
    """
    _check_sizes(seed, batch=batch, symbols=symbols, max_labels=max_labels, max_repeat=max_repeat)
    rng = np.random.default_rng(seed)
    label_lengths = rng.integers(1, max_labels + 1, batch)
    labels = rng.integers(1, symbols + 1, (batch, max_labels))
    repeats = rng.integers(1, max_repeat + 1, (batch, max_labels))
    frames = np.zeros((batch, max_labels * (max_repeat + 1), symbols + 1), np.float32)
    frame_lengths = np.zeros(batch, np.int32)
    for row in range(batch):
        t = 0
        for n in range(label_lengths[row]):
            frames[row, t : t + repeats[row, n], labels[row, n]] = 1.0
            frames[row, t + repeats[row, n], 0] = 1.0
            t += repeats[row, n] + 1
        frame_lengths[row] = t
    frames += 0.3 * rng.standard_normal(frames.shape).astype(np.float32)
    labels = np.where(np.arange(max_labels) < label_lengths[:, None], labels, -1)
    return jnp.asarray(frames), jnp.asarray(frame_lengths), jnp.asarray(labels), jnp.asarray(label_lengths)


def bar_captions(seed: int, batch: int = 32, size: int = 12):
    """Noisy images [batch, size, size, 1] with a bar (horizontal or vertical) in one of 4 bands or none.

    Caption: [HORIZONTAL | VERTICAL, FIRST_BAND + band, END] (length 3) or [NOTHING, END] (length 2).
    """
    _check_sizes(seed, batch=batch)
    arguments.integer("size", size, minimum=4)
    rng = np.random.default_rng(seed)
    images = 0.2 * rng.standard_normal((batch, size, size, 1)).astype(np.float32)
    captions = np.full((batch, 3), END)
    lengths = np.full(batch, 3)
    width = size // 4
    for row in range(batch):
        orientation, band = rng.integers(0, 3), rng.integers(0, 4)
        if orientation == 2:
            captions[row, 0], lengths[row] = NOTHING, 2
            continue
        lines = slice(width * band, width * band + width)
        if orientation == 0:
            images[row, lines, :, 0] += 1.0
        else:
            images[row, :, lines, 0] += 1.0
        captions[row, :2] = (HORIZONTAL + orientation, FIRST_BAND + band)
    return jnp.asarray(images), jnp.asarray(captions), jnp.asarray(lengths)


def first_bit_task(key: jax.Array, batch: int, time_steps: int, *, noise: float = 0.3, dtype: Any = jnp.float32):
    """Long-memory task: x_0 = +-1 (the bit), x_t ~ noise * N(0, 1) afterwards; recall the bit at step T.

    Returns ``(xs [batch, time, 1], labels [batch])`` with labels in {0, 1}.
    """
    arguments.positive_int("batch", batch)
    arguments.positive_int("time_steps", time_steps)
    arguments.nonnegative_float("noise", noise)
    k_bit, k_noise = jax.random.split(key)
    labels = jax.random.bernoulli(k_bit, 0.5, (batch,))
    xs = noise * jax.random.normal(k_noise, (batch, time_steps, 1), dtype)
    xs = xs.at[:, 0, 0].set(jnp.where(labels, 1.0, -1.0).astype(dtype))
    return xs, labels.astype(jnp.int32)
