"""CTC: loss against brute-force alignment sums, collapsing, prefix beam search, training."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.core.cells import gru
from rnnjax.core.unroll import RNN
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.ctc import batch_prefix_beam_search, collapse, ctc_loss, greedy_decode, prefix_beam_search
from rnnjax.tasks.heads import Tagger
from rnnjax.tasks.metrics import error_rate, trim


def _collapse_py(alignment, blank):
    out, previous = [], None
    for token in alignment:
        if token != blank and token != previous:
            out.append(token)
        previous = token
    return tuple(out)


def _brute_force_log_probs(log_probs, blank):
    """log p(labelling) for every labelling, summing over all classes**time alignments."""
    totals = {}
    for alignment in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        labels = _collapse_py(alignment, blank)
        log_prob = sum(log_probs[t, a] for t, a in enumerate(alignment))
        totals[labels] = np.logaddexp(totals.get(labels, -np.inf), log_prob)
    return totals


def _tiny_case(key, blank_id):
    logits = jax.random.normal(key, (3, 5, 3), jnp.float64)
    logit_lengths = jnp.array([5, 4, 3])
    labels = jnp.array([[1, 1], [2, -1], [2, 1]]) if blank_id == 0 else jnp.array([[0, 0], [1, -1], [1, 0]])
    label_lengths = jnp.array([2, 1, 2])
    return logits, logit_lengths, labels, label_lengths


@pytest.mark.parametrize("blank_id", [0, 2])
def test_loss_equals_brute_force_sum_over_alignments(key, blank_id):
    logits, logit_lengths, labels, label_lengths = _tiny_case(key, blank_id)
    losses = ctc_loss(logits, logit_lengths, labels, label_lengths, blank_id=blank_id, reduction="none")
    log_probs = np.asarray(jax.nn.log_softmax(logits, -1))
    for b in range(3):
        totals = _brute_force_log_probs(log_probs[b, : int(logit_lengths[b])], blank_id)
        target = tuple(int(x) for x in labels[b, : int(label_lengths[b])])
        np.testing.assert_allclose(losses[b], -totals[target], rtol=1e-9)
    np.testing.assert_allclose(ctc_loss(logits, logit_lengths, labels, label_lengths, blank_id=blank_id), losses.mean())


def test_padded_frames_get_zero_gradient_and_jit_vmap_agree(key):
    logits, logit_lengths, labels, label_lengths = _tiny_case(key, 0)
    grads = np.asarray(jax.jit(jax.grad(ctc_loss))(logits, logit_lengths, labels, label_lengths))
    valid = np.arange(5) < np.asarray(logit_lengths)[:, None]
    assert np.all(grads[~valid] == 0.0) and np.all(np.abs(grads[valid]).sum(-1) > 0)
    eager = ctc_loss(logits, logit_lengths, labels, label_lengths, reduction="none")
    jitted = jax.jit(lambda *a: ctc_loss(*a, reduction="none"))(logits, logit_lengths, labels, label_lengths)
    single = lambda *a: ctc_loss(*(x[None] for x in a), reduction="none")[0]  # noqa: E731 - vmapped per example
    mapped = jax.jit(jax.vmap(single))(logits, logit_lengths, labels, label_lengths)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    np.testing.assert_allclose(mapped, eager, rtol=1e-12)


def test_collapse_hand_written_examples():
    alphabet = "-abc"
    encode = lambda text: [alphabet.index(c) for c in text]  # noqa: E731
    cases = {"aa-b-bb": "abb", "-a-a-": "aa", "abc": "abc", "----": "", "aaab--ba": "abba", "": ""}
    width = 8
    tokens = jnp.array([encode(k) + [0] * (width - len(k)) for k in cases])
    lengths = jnp.array([len(k) for k in cases])
    out, out_lengths = jax.jit(collapse)(tokens, lengths)
    for row, n, expected in zip(np.asarray(out), np.asarray(out_lengths), cases.values()):
        assert "".join(alphabet[i] for i in row[:n]) == expected
        assert np.all(row[n:] == -1)
    # Frames past the length are ignored even when they are labels.
    assert trim(*collapse(jnp.array([[1, 2, 3]]), jnp.array([1]))) == [(1,)]


def test_greedy_decode_is_collapsed_argmax(key):
    logits = jax.random.normal(key, (4, 7, 4))
    lengths = jnp.array([7, 3, 0, 5])
    tokens, out_lengths = greedy_decode(logits, lengths)
    for b in range(4):
        best = np.asarray(logits[b]).argmax(-1)[: int(lengths[b])]
        assert trim(tokens, out_lengths)[b] == _collapse_py(best, 0)


def test_prefix_beam_search_is_exact_with_a_wide_beam(key):
    log_probs = np.asarray(jax.nn.log_softmax(jax.random.normal(key, (5, 3), jnp.float64) * 2, -1))
    totals = _brute_force_log_probs(log_probs, 0)
    best = max(totals, key=totals.get)
    hyps = prefix_beam_search(log_probs, beam_width=len(totals))
    assert hyps[0][0] == best
    for labels, log_prob in hyps:
        np.testing.assert_allclose(log_prob, totals[labels], rtol=1e-9)


def test_prefix_beam_search_beats_greedy_where_greedy_is_wrong():
    # p(blank)=0.6, p(a)=0.4 per frame: best path "--" gives "" (0.36); p("a") = 0.64.
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    greedy_tokens, greedy_lengths = greedy_decode(jnp.asarray(log_probs)[None])
    assert trim(greedy_tokens, greedy_lengths) == [()]
    (labels, log_prob), *_ = prefix_beam_search(log_probs, beam_width=2)
    assert labels == (1,)
    np.testing.assert_allclose(np.exp(log_prob), 0.64)
    # More hand-built cases where the best path is not the best labelling.
    cases = [
        ([[0.5, 0.3, 0.2]] * 3, (1,)),  # "" by best path; "a" sums more alignments
        ([[0.4, 0.35, 0.25], [0.4, 0.25, 0.35], [0.4, 0.35, 0.25]], (1,)),
    ]
    for probs, expected in cases:
        frame_log_probs = np.log(np.array(probs))
        totals = _brute_force_log_probs(frame_log_probs, 0)
        assert max(totals, key=totals.get) == expected
        greedy_labels = _collapse_py(frame_log_probs.argmax(-1), 0)
        assert greedy_labels != expected
        beam_labels, beam_log_prob = prefix_beam_search(frame_log_probs, beam_width=2)[0]
        assert beam_labels == expected and beam_log_prob > totals[greedy_labels]
        np.testing.assert_allclose(beam_log_prob, totals[beam_labels], rtol=1e-9)


def _bad_ctc_calls(logits, logit_lengths, labels, label_lengths):
    """(expected error, message pattern, call) for inputs a careless user might give."""
    loss = lambda **changes: lambda: ctc_loss(  # noqa: E731
        **{"logits": logits, "logit_lengths": logit_lengths, "labels": labels, "label_lengths": label_lengths,
           **changes})  # fmt: skip
    return [
        (ValueError, r"labels must be different from 0 \(blank_id\).*got 0", loss(labels=labels.at[0, 0].set(0))),
        (ValueError, r"labels must be ids in \[0, 3\).*got 3", loss(labels=labels.at[0, 0].set(3))),
        (ValueError, r"labels must be ids in \[0, 3\).*got -2", loss(labels=labels.at[2, 1].set(-2))),
        (ValueError, r"blank_id must be <= 2; got 3", loss(blank_id=3)),
        (ValueError, r"blank_id must be >= 0; got -1", loss(blank_id=-1)),
        (TypeError, r"blank_id must be an int; got True", loss(blank_id=True)),
        (ValueError, r"logit_lengths must be in \[0, 5\]; got 6", loss(logit_lengths=logit_lengths.at[0].set(6))),
        (ValueError, r"logit_lengths must be in \[0, 5\]; got -1", loss(logit_lengths=logit_lengths.at[1].set(-1))),
        (ValueError, r"logit_lengths must have shape \[3\]; got \[2\]", loss(logit_lengths=logit_lengths[:2])),
        (ValueError, r"label_lengths must be in \[0, 2\]; got 3", loss(label_lengths=label_lengths.at[0].set(3))),
        (TypeError, r"label_lengths must be an integer array; got dtype float",
         loss(label_lengths=label_lengths.astype(float))),
        (ValueError, r"labels must have shape \[3, \?\]; got \[2, 2\]", loss(labels=labels[:2])),
        (TypeError, r"labels must be an integer array", loss(labels=labels.astype(float))),
        (ValueError, r"logits must have shape \[batch, time, classes\]; got \[5, 3\]", loss(logits=logits[0])),
        (ValueError, r"reduction must be one of", loss(reduction="average")),
        (ValueError, r"lengths must be in \[0, 5\]; got 7", lambda: collapse(logits.argmax(-1), jnp.array([7, 1, 1]))),
        (ValueError, r"lengths must have shape \[3\]; got \[2\]",
         lambda: collapse(logits.argmax(-1), jnp.array([1, 1]))),
        (TypeError, r"tokens must be an integer array", lambda: collapse(logits)),
        (ValueError, r"blank_id must be <= 2; got 3", lambda: greedy_decode(logits, logit_lengths, blank_id=3)),
        (ValueError, r"beam_width must be >= 1; got 0", lambda: prefix_beam_search(np.log(np.ones((2, 3)) / 3),
                                                                                   beam_width=0)),  # fmt: skip
        (ValueError, r"log_probs must be log-probabilities", lambda: prefix_beam_search(np.ones((2, 3)), beam_width=2)),
        (ValueError, r"blank_id must be <= 2; got 5",
         lambda: prefix_beam_search(np.log(np.ones((2, 3)) / 3), beam_width=2, blank_id=5)),
        (ValueError, r"logit_lengths must be in \[0, 5\]; got 9",
         lambda: batch_prefix_beam_search(logits, jnp.array([9, 1, 1]), beam_width=2)),
        (ValueError, r"logit_lengths must have shape \[3\]; got \[1\]",
         lambda: batch_prefix_beam_search(logits, jnp.array([1]), beam_width=2)),
    ]


def test_bad_inputs_raise_clear_errors(key):
    for error, pattern, call in _bad_ctc_calls(*_tiny_case(key, 0)):
        with pytest.raises(error, match=pattern):
            call()


def test_loss_under_jit_with_lengths_from_outside_checks_them(key):
    """Lengths and labels closed over by a jitted function are concrete: checked, not a ConcretizationTypeError."""
    logits, logit_lengths, labels, label_lengths = _tiny_case(key, 0)
    expected = ctc_loss(logits, logit_lengths, labels, label_lengths)
    jitted = jax.jit(lambda logits: ctc_loss(logits, logit_lengths, labels, label_lengths))
    np.testing.assert_allclose(jitted(logits), expected, rtol=1e-12)
    bad_labels = labels.at[0, 0].set(7)
    with pytest.raises(ValueError, match=r"labels must be ids in \[0, 3\)"):
        jax.jit(lambda logits: ctc_loss(logits, logit_lengths, bad_labels, label_lengths))(logits)


def test_ctc_training_learns_toy_transcription(key):
    """A GRU frame classifier + CTC transcribes noisy symbol runs: label error rate < 0.05 (seed 0)."""
    model = Tagger(RNN(gru(), 32), num_tags=4)
    params = model.init(key, 4)
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    def loss_fn(params, batch):
        frames, frame_lengths, labels, label_lengths = batch
        return ctc_loss(model.apply(params, frames, lengths=frame_lengths), frame_lengths, labels, label_lengths)

    @jax.jit
    def train_step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    for step in range(100):
        params, state, loss = train_step(params, state, toy_tasks.ctc_runs(step, 32))
    frames, frame_lengths, labels, label_lengths = toy_tasks.ctc_runs(10_000, 64)
    logits = model.apply(params, frames, lengths=frame_lengths)
    hypotheses = trim(*greedy_decode(logits, frame_lengths))
    references = trim(labels, label_lengths)
    assert error_rate(references, hypotheses) < 0.05
    beams = batch_prefix_beam_search(logits[:8], frame_lengths[:8], beam_width=4)
    assert error_rate(references[:8], beams) < 0.1
