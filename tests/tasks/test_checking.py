"""Value checks on traced inputs: the documented unchecked behaviour under jit, and the error in checked mode."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.checks.values import checked
from rnnjax.core.cells import gru
from rnnjax.tasks.ctc import ctc_loss
from rnnjax.tasks.decode import greedy
from rnnjax.tasks.heads import embed
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.seq2seq import Decoder


def _ctc_case(key):
    logits = jax.random.normal(key, (2, 5, 4), jnp.float64)
    return logits, jnp.array([5, 4]), jnp.array([[1, 2], [3, 0]]), jnp.array([2, 1])


def test_checked_mode_agrees_with_plain_call_on_valid_input(key):
    logits, logit_lengths, labels, label_lengths = _ctc_case(key)
    expected = ctc_loss(logits, logit_lengths, labels, label_lengths)
    np.testing.assert_allclose(checked(ctc_loss)(logits, logit_lengths, labels, label_lengths), expected, rtol=1e-12)
    targets = jnp.array([[2, 1], [1, 0]])
    loss = functools.partial(cross_entropy, jax.random.normal(key, (2, 2, 3), jnp.float64))
    np.testing.assert_allclose(checked(loss)(targets), loss(targets), rtol=1e-12)


def test_ctc_traced_label_out_of_range_is_wrong_unchecked_and_raises_checked(key):
    logits, logit_lengths, labels, label_lengths = _ctc_case(key)
    bad = labels.at[0, 1].set(9)
    unchecked = jax.jit(ctc_loss)(logits, logit_lengths, bad, label_lengths)  # documented: finite and wrong
    assert np.isfinite(float(unchecked))
    with pytest.raises(ValueError, match=r"labels must be ids in \[0, 4\) at valid positions; got 9"):
        checked(ctc_loss)(logits, logit_lengths, bad, label_lengths)
    with pytest.raises(ValueError, match=r"labels must be different from 0 \(blank_id\) at valid positions; got 0"):
        checked(ctc_loss)(logits, logit_lengths, labels.at[0, 0].set(0), label_lengths)
    # Labels beyond label_lengths are padding: any value passes.
    np.testing.assert_allclose(
        checked(ctc_loss)(logits, logit_lengths, labels.at[1, 1].set(99), label_lengths),
        ctc_loss(logits, logit_lengths, labels, label_lengths),
        rtol=1e-12,
    )


def test_ctc_traced_lengths_out_of_range_act_clipped_unchecked_and_raise_checked(key):
    logits, logit_lengths, labels, label_lengths = _ctc_case(key)
    too_long = logit_lengths.at[0].set(8)
    clipped = ctc_loss(logits, logit_lengths.at[0].set(5), labels, label_lengths, reduction="none")
    unchecked = jax.jit(functools.partial(ctc_loss, reduction="none"))(logits, too_long, labels, label_lengths)
    np.testing.assert_allclose(unchecked, clipped, rtol=1e-12)
    with pytest.raises(ValueError, match=r"logit_lengths must be in \[0, 5\]; got 8"):
        checked(ctc_loss)(logits, too_long, labels, label_lengths)
    with pytest.raises(ValueError, match=r"label_lengths must be in \[0, 2\]; got -1"):
        checked(ctc_loss)(logits, logit_lengths, labels, label_lengths.at[1].set(-1))


def test_cross_entropy_traced_ids_follow_the_docstring_and_raise_checked(key):
    logits = jax.random.normal(key, (2, 3), jnp.float64)
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    jitted = jax.jit(functools.partial(cross_entropy, logits, reduction="none"))
    assert np.isnan(np.asarray(jitted(jnp.array([0, 3])))[1])  # id >= classes: NaN
    np.testing.assert_allclose(jitted(jnp.array([0, -1])), [-log_probs[0, 0], -log_probs[1, 2]], rtol=1e-12)
    with pytest.raises(ValueError, match=r"labels must be ids in \[0, 3\) at valid positions; got -1"):
        checked(functools.partial(cross_entropy, logits))(jnp.array([0, -1]))
    # A masked position may hold anything.
    mask = jnp.array([True, False])
    np.testing.assert_allclose(checked(cross_entropy)(logits, jnp.array([1, 7]), mask), -log_probs[0, 1], rtol=1e-12)


def test_sequence_mask_and_embed_traced_values(key):
    unchecked = jax.jit(functools.partial(sequence_mask, max_length=3))(jnp.array([5, -2]))
    np.testing.assert_array_equal(unchecked, [[True] * 3, [False] * 3])  # as if clipped to [0, 3]
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 3\]; got 5"):
        checked(functools.partial(sequence_mask, max_length=3))(jnp.array([5, -2]))
    table = jax.random.normal(key, (4, 2), jnp.float64)
    rows = jax.jit(embed)(table, jnp.array([1, 4, -1]))
    np.testing.assert_array_equal(rows[0], table[1])
    assert np.isnan(np.asarray(rows[1])).all()  # id >= vocab: NaN row
    np.testing.assert_array_equal(rows[2], table[3])  # negative id: counted from the end
    with pytest.raises(ValueError, match=r"tokens must be ids in \[0, 4\) at valid positions; got 4"):
        checked(embed)(table, jnp.array([1, 4, -1]))


def test_decoder_targets_and_start_tokens_raise_in_checked_mode(key):
    decoder = Decoder(gru(), 5, 3, 2, start_id=0, end_id=1)
    params = decoder.init(key, dtype=jnp.float64)
    carry = decoder.zero_carry(params, 2)
    targets, lengths = jnp.array([[2, 1, 1], [3, 4, 1]]), jnp.array([2, 3])
    loss = functools.partial(decoder.loss, params, carry)
    checked_loss = checked(loss)  # one compiled program for every call below (same shapes)
    np.testing.assert_allclose(checked_loss(targets, lengths), loss(targets, lengths), rtol=1e-12)
    with pytest.raises(ValueError, match=r"targets must be ids in \[0, 5\) at valid positions; got 5"):
        checked_loss(targets.at[1, 2].set(5), lengths)
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 3\]; got 4"):
        checked_loss(targets, lengths.at[0].set(4))
    np.testing.assert_allclose(  # out-of-range ids past the lengths are padding
        checked_loss(targets.at[0, 2].set(-7), lengths), loss(targets, lengths), rtol=1e-12
    )
    step_fn = decoder.step_fn(params)
    decode = lambda start: greedy(step_fn, (carry, None), start, max_length=3, end_id=1)  # noqa: E731
    checked_decode = checked(decode)
    with pytest.raises(ValueError, match=r"start_tokens must be ids in \[0, 5\) at valid positions; got 6"):
        checked_decode(jnp.array([0, 6]))
    np.testing.assert_array_equal(checked_decode(jnp.array([0, 2])).tokens, decode(jnp.array([0, 2])).tokens)


def test_rnn_traced_lengths_clip_unchecked_and_raise_in_checked_mode():
    import rnnjax

    cell = rnnjax.gru()
    params = cell.init(jax.random.key(0), 2, 3, jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 4, 2), jnp.float64)
    run = lambda p, xs, lengths: rnnjax.rnn(cell, p, xs, lengths=lengths)[0]  # noqa: E731
    too_long = jnp.array([4, 9])
    clipped = jax.jit(run)(params, xs, too_long)  # documented: traced lengths act as clipped to [0, time]
    np.testing.assert_allclose(clipped, run(params, xs, jnp.array([4, 4])), rtol=1e-12, atol=1e-12)
    checked_run = checked(run)  # one compiled program for both calls
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 4\]"):
        checked_run(params, xs, too_long)
    np.testing.assert_allclose(checked_run(params, xs, jnp.array([4, 2])), run(params, xs, jnp.array([4, 2])))
