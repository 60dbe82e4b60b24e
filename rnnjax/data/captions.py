"""Captioned digit strips: 2-4 of scikit-learn's 8x8 UCI handwritten digits tiled side by side.

Each strip is captioned in words ("three one four"). The source digit images are
de-duplicated and split into train/test pools BEFORE tiling, so every test strip is built
only from digit scans the model never saw in training.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.datasets import load_digits

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PAD, BOS, EOS = 0, 1, 2
FIRST_WORD = 3  # token id of "zero"; digit d has id FIRST_WORD + d
VOCAB_SIZE = FIRST_WORD + len(WORDS)
TILE = 8
MAX_DIGITS = 4


@dataclasses.dataclass(frozen=True)
class DigitPools:
    """Single digit images split before tiling: images [n, 8, 8] in [0, 1], labels [n]."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class CaptionSet:
    """images [n, 8, 32] (right-padded with zeros), digits [n, 4] (-1 pad), tokens [n, 5]."""

    images: np.ndarray
    digits: np.ndarray
    tokens: np.ndarray

    @property
    def captions(self) -> list[str]:
        return [caption(row) for row in self.digits]


def caption(digits: np.ndarray) -> str:
    """[3, 1, 4, -1] -> "three one four"."""
    return " ".join(WORDS[d] for d in np.asarray(digits).tolist() if d >= 0)


def decode_tokens(tokens: np.ndarray) -> str:
    """Token ids (stopping at <eos>) -> caption words."""
    words = []
    for token in np.asarray(tokens).tolist():
        if token == EOS:
            break
        if token >= FIRST_WORD:
            words.append(WORDS[token - FIRST_WORD])
    return " ".join(words)


def split_digits(seed: int, test_fraction: float = 0.25) -> DigitPools:
    """De-duplicate the 1797 scans by pixels, then split them into disjoint pools."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    digits = load_digits()
    _, unique = np.unique(digits.images.reshape(len(digits.images), -1), axis=0, return_index=True)
    order = np.random.default_rng(seed).permutation(np.sort(unique))
    num_test = int(round(test_fraction * len(order)))
    test, train = order[:num_test], order[num_test:]
    images = (digits.images / 16.0).astype(np.float32)
    pools = DigitPools(images[train], digits.target[train], images[test], digits.target[test])
    assert_disjoint(pools)
    return pools


def assert_disjoint(pools: DigitPools) -> None:
    """No test scan is pixel-identical to a training scan."""
    train = {image.tobytes() for image in pools.train_images}
    if any(image.tobytes() in train for image in pools.test_images):
        raise AssertionError("a test digit image also occurs in the training pool")


def tile(images: np.ndarray, labels: np.ndarray, count: int, seed: int, min_digits: int = 2,
         max_digits: int = MAX_DIGITS) -> CaptionSet:
    """``count`` strips of min..max random digits from one pool."""
    if not 1 <= min_digits <= max_digits <= MAX_DIGITS:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= {MAX_DIGITS}; got {min_digits}, {max_digits}")
    rng = np.random.default_rng(seed)
    strips = np.zeros((count, TILE, TILE * MAX_DIGITS), np.float32)
    digits = np.full((count, MAX_DIGITS), -1, np.int32)
    for i in range(count):
        picks = rng.integers(len(images), size=rng.integers(min_digits, max_digits + 1))
        for position, pick in enumerate(picks):
            strips[i, :, position * TILE : (position + 1) * TILE] = images[pick]
            digits[i, position] = labels[pick]
    return CaptionSet(strips, digits, caption_tokens(digits))


def tile_on_device(key, images, labels, count: int, min_digits: int = 2, max_digits: int = MAX_DIGITS) -> dict:
    """Jittable :func:`tile` (the same distribution from ``jax.random``; for ``fit_many``'s batch functions).

    Args:
      key: a typed key; images: one pool [n, 8, 8]; labels: [n]; count, min_digits, max_digits: Python ints.

    Returns:
      ``{"images": [count, 8, 32], "digits": [count, 4] (-1 pad), "tokens": [count, 5]}`` as in :class:`CaptionSet`.
    """
    import jax
    import jax.numpy as jnp

    if not 1 <= min_digits <= max_digits <= MAX_DIGITS:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= {MAX_DIGITS}; got {min_digits}, {max_digits}")
    size_key, pick_key = jax.random.split(key)
    sizes = jax.random.randint(size_key, (count, 1), min_digits, max_digits + 1)
    picks = jax.random.randint(pick_key, (count, MAX_DIGITS), 0, images.shape[0])
    present = jnp.arange(MAX_DIGITS) < sizes
    tiles = jnp.where(present[:, :, None, None], images[picks], 0.0)  # [count, position, row, column]
    strips = tiles.transpose(0, 2, 1, 3).reshape(count, TILE, TILE * MAX_DIGITS)
    digits = jnp.where(present, labels[picks], -1).astype(jnp.int32)
    position = jnp.arange(MAX_DIGITS + 1)
    words = FIRST_WORD + jnp.pad(digits, ((0, 0), (0, 1)))
    tokens = jnp.where(position < sizes, words, jnp.where(position == sizes, EOS, PAD)).astype(jnp.int32)
    return {"images": strips, "digits": digits, "tokens": tokens}


def caption_tokens(digits: np.ndarray) -> np.ndarray:
    """Digits [n, 4] (-1 pad) -> word tokens [n, 5]: words then <eos>, then <pad>."""
    tokens = np.full((len(digits), MAX_DIGITS + 1), PAD, np.int32)
    for i, row in enumerate(digits):
        words = [FIRST_WORD + d for d in row if d >= 0] + [EOS]
        tokens[i, : len(words)] = words
    return tokens


def make_caption_data(seed: int, num_train: int, num_test: int, test_fraction: float = 0.25):
    """(pools, train strips, test strips); the two strip sets draw from disjoint digit pools."""
    pools = split_digits(seed, test_fraction)
    train = tile(pools.train_images, pools.train_labels, num_train, seed * 2 + 1)
    test = tile(pools.test_images, pools.test_labels, num_test, seed * 2 + 2)
    return pools, train, test
