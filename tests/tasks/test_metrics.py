"""Edit distance against a brute recursive definition; error rates and accuracies by hand."""

import functools
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.tasks.metrics import (
    char_error_rate,
    edit_distance,
    error_rate,
    sequence_accuracy,
    token_accuracy,
    trim,
    word_error_rate,
)


def _recursive_distance(a, b):
    @functools.lru_cache(maxsize=None)
    def distance(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(distance(i - 1, j) + 1, distance(i, j - 1) + 1, distance(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return distance(len(a), len(b))


def test_edit_distance_matches_recursive_definition():
    strings = ["".join(s) for n in range(4) for s in itertools.product("ab", repeat=n)]
    for a, b in itertools.product(strings, repeat=2):
        assert edit_distance(a, b) == _recursive_distance(a, b)
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([1, 2, 3], [3]) == 2


def test_error_rates_by_hand():
    assert char_error_rate(["abcd", "xy"], ["abd", "xy"]) == pytest.approx(1 / 6)
    assert word_error_rate(["the cat sat"], ["the cat sat down"]) == pytest.approx(1 / 3)
    assert word_error_rate(["a b"], ["c d"]) == 1.0
    with pytest.raises(ValueError, match="hypotheses must hold 2 items"):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="references must be a sequence of strings"):
        char_error_rate("abc", ["abc"])


def test_accuracies_honour_mask():
    predictions = jnp.array([[1, 2, 3], [1, 0, 9]])
    targets = jnp.array([[1, 2, 0], [1, 0, 7]])
    mask = jnp.array([[True, True, False], [True, True, True]])
    np.testing.assert_allclose(token_accuracy(predictions, targets, mask), 4 / 5)
    np.testing.assert_allclose(sequence_accuracy(predictions, targets, mask), 0.5)
    np.testing.assert_allclose(token_accuracy(predictions, targets), 4 / 6)
    with pytest.raises(ValueError, match=r"targets must have shape \[2, 3\]; got \[2, 2\]"):
        token_accuracy(predictions, targets[:, :2])
    with pytest.raises(ValueError, match=r"mask must have shape \[2, 3\]; got \[3\]"):
        sequence_accuracy(predictions, targets, mask[0])


def test_trim():
    assert trim(np.array([[1, 2, 3], [4, 5, 6]]), [2, 0]) == [(1, 2), ()]
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 3\]; got 4"):
        trim(np.array([[1, 2, 3], [4, 5, 6]]), [4, 0])
    with pytest.raises(ValueError, match=r"lengths must have shape \[2\]; got \[1\]"):
        trim(np.array([[1, 2, 3], [4, 5, 6]]), [1])
