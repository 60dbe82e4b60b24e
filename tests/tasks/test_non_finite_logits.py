"""A diverged model's NaN logits are refused by CTC best-path decoding, not decoded as blanks (or made-up labels)."""

import jax
import numpy as np
import pytest

from rnnjax.checks import values as value_checks
from rnnjax.tasks import ctc


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_valid_frame_is_refused_naming_the_frame(bad):
    logits = np.random.default_rng(0).normal(size=(3, 6, 5))
    logits[2, 4, 0] = bad
    with pytest.raises(ValueError, match=r"logits must be finite in every valid frame; got 1 frame\(s\).*\(2, 4\)"):
        ctc.greedy_decode(logits)
    with pytest.raises(ValueError, match="non-finite"):
        value_checks.checked(ctc.greedy_decode)(logits)  # under jit: in checked mode


def test_nan_padding_past_the_lengths_is_still_decoded_like_finite_padding():
    rng = np.random.default_rng(1)
    logits, lengths = rng.normal(size=(2, 7, 4)), np.array([7, 3])
    padded = logits.copy()
    padded[1, 3:] = np.nan  # past logit_lengths: not part of the sequence
    decoded, expected = ctc.greedy_decode(padded, lengths), ctc.greedy_decode(logits, lengths)
    for got, want in zip(decoded, expected):
        np.testing.assert_array_equal(got, want)
    jitted = jax.jit(ctc.greedy_decode)(padded, lengths)  # traced: unchecked, the same for valid frames
    np.testing.assert_array_equal(jitted[1], expected[1])
    with pytest.raises(ValueError, match=r"first at index \(1, 3\)"):
        ctc.greedy_decode(padded, np.array([7, 4]))  # one NaN frame now counts
