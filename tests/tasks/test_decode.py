"""Greedy, sampling and beam search against exhaustive enumeration on a hand-built decoder."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.tasks.decode import beam_search, greedy, sample

VOCAB, END, MAX_LENGTH = 3, 0, 4
CODES = (VOCAB + 1) ** (MAX_LENGTH + 1)


def _table(seed=0, batch=2):
    """Logits for every prefix: table[row, code(prefix)], so sequence probabilities are enumerable."""
    return np.random.default_rng(seed).normal(size=(batch, CODES, VOCAB)) * 1.5


def _step_fn(table):
    table = jnp.asarray(table)

    def step_fn(state, tokens):
        row, code = state
        code = code * (VOCAB + 1) + tokens + 1
        return (row, code), table[row, code]

    return step_fn


def _start(batch, rows=None):
    rows = jnp.arange(batch) if rows is None else rows
    return (rows, jnp.zeros(batch, jnp.int32)), jnp.zeros(batch, jnp.int32)


def _log_prob(table, row, sequence, start=0):
    """log p(sequence) under the table decoder (numpy)."""
    code, total = 0, 0.0
    for previous, token in zip((start, *sequence[:-1]), sequence):
        code = code * (VOCAB + 1) + previous + 1
        logits = table[row, code]
        total += logits[token] - np.log(np.exp(logits).sum())
    return total


def _all_hypotheses(max_length):
    """Every distinct output: sequences cut after their first END (or at max_length)."""
    hypotheses = set()
    for sequence in itertools.product(range(VOCAB), repeat=max_length):
        cut = sequence.index(END) + 1 if END in sequence else max_length
        hypotheses.add(sequence[:cut])
    return sorted(hypotheses)


def _trim(tokens, lengths):
    return tuple(int(t) for t in np.asarray(tokens)[: int(lengths)])


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_beam_search_finds_exhaustive_best_sequences(alpha):
    table = _table()
    state, start = _start(2)
    width = VOCAB * 2 ** (MAX_LENGTH - 1)  # every candidate of every step ranks within the beam: nothing pruned
    beams = jax.jit(functools.partial(beam_search, _step_fn(table), beam_width=width, max_length=MAX_LENGTH,
                                      end_id=END, alpha=alpha))(state, start)  # fmt: skip
    for row in range(2):
        scored = [(_log_prob(table, row, h) / len(h) ** alpha, h) for h in _all_hypotheses(MAX_LENGTH)]
        scored.sort(reverse=True)
        found = [_trim(t, n) for t, n in zip(beams.tokens[row], beams.lengths[row])]
        assert found == [h for _, h in scored[:width]]
        np.testing.assert_allclose(beams.scores[row], [s for s, _ in scored[:width]], rtol=1e-9)
        for hypothesis, log_prob, tokens, n in zip(found, beams.log_probs[row], beams.tokens[row], beams.lengths[row]):
            np.testing.assert_allclose(log_prob, _log_prob(table, row, hypothesis), rtol=1e-9)
            assert np.all(np.asarray(tokens)[int(n) :] == END)  # padded with the end id


def test_narrow_beam_returns_consistent_hypotheses_and_never_beats_the_optimum():
    table = _table(1)
    state, start = _start(2)
    beams = beam_search(_step_fn(table), state, start, beam_width=2, max_length=MAX_LENGTH, end_id=END)
    for row in range(2):
        best = max(_log_prob(table, row, h) for h in _all_hypotheses(MAX_LENGTH))
        assert float(beams.scores[row, 0]) <= best + 1e-9
        assert float(beams.scores[row, 0]) >= float(beams.scores[row, 1])
        hypothesis = _trim(beams.tokens[row, 0], beams.lengths[row, 0])
        np.testing.assert_allclose(beams.log_probs[row, 0], _log_prob(table, row, hypothesis), rtol=1e-9)


def _reference_greedy(table, row, max_length):
    sequence = []
    code, previous = 0, 0
    while len(sequence) < max_length:
        code = code * (VOCAB + 1) + previous + 1
        previous = int(np.argmax(table[row, code]))
        sequence.append(previous)
        if previous == END:
            break
    return tuple(sequence)


def test_greedy_matches_python_loop_and_beam_width_one():
    table = _table(2, batch=6)
    state, start = _start(6)
    step_fn = _step_fn(table)
    out = jax.jit(functools.partial(greedy, step_fn, max_length=MAX_LENGTH, end_id=END))(state, start)
    eager = greedy(step_fn, state, start, max_length=MAX_LENGTH, end_id=END)
    beams = beam_search(step_fn, state, start, beam_width=1, max_length=MAX_LENGTH, end_id=END)
    for row in range(6):
        expected = _reference_greedy(table, row, MAX_LENGTH)
        assert _trim(out.tokens[row], out.lengths[row]) == expected
        np.testing.assert_allclose(out.log_probs[row], _log_prob(table, row, expected), rtol=1e-9)
    np.testing.assert_array_equal(eager.tokens, out.tokens)
    np.testing.assert_array_equal(beams.tokens[:, 0], out.tokens)
    np.testing.assert_array_equal(beams.lengths[:, 0], out.lengths)
    np.testing.assert_allclose(beams.log_probs[:, 0], out.log_probs, rtol=1e-12)
    assert {int(n) for n in out.lengths} != {MAX_LENGTH}  # some rows stop early: end handling is exercised


def test_vmap_of_greedy_agrees_with_batched_call():
    table = _table(3, batch=4)
    state, start = _start(4)
    step_fn = _step_fn(table)
    batched = greedy(step_fn, state, start, max_length=MAX_LENGTH, end_id=END)
    def one(state, start):  # vmapped: one example at a time
        return greedy(step_fn, jax.tree.map(lambda x: x[None], state), start[None], max_length=MAX_LENGTH, end_id=END)

    mapped = jax.vmap(one)(state, start)
    np.testing.assert_array_equal(mapped.tokens[:, 0], batched.tokens)
    np.testing.assert_allclose(mapped.log_probs[:, 0], batched.log_probs, rtol=1e-12)


def test_sampling_is_reproducible_follows_the_model_and_honours_top_k(key):
    table = _table(4, batch=1)
    batch = 4000
    state, start = _start(batch, jnp.zeros(batch, jnp.int32))
    run = jax.jit(functools.partial(sample, _step_fn(table), max_length=MAX_LENGTH, end_id=END),
                  static_argnames=("top_k",))  # fmt: skip
    first = run(state, start, key)
    np.testing.assert_array_equal(run(state, start, key).tokens, first.tokens)
    assert not np.array_equal(run(state, start, jax.random.key(1)).tokens, first.tokens)
    probabilities = np.asarray(jax.nn.softmax(table[0, 1]))  # code of the prefix [start]
    frequencies = np.bincount(np.asarray(first.tokens[:, 0]), minlength=VOCAB) / batch
    np.testing.assert_allclose(frequencies, probabilities, atol=0.03)
    for row in range(20):  # log_probs, lengths and padding of each sample
        hypothesis = _trim(first.tokens[row], first.lengths[row])
        assert END not in hypothesis[:-1] and (hypothesis[-1] == END or len(hypothesis) == MAX_LENGTH)
        assert np.all(np.asarray(first.tokens[row])[len(hypothesis) :] == END)
        np.testing.assert_allclose(first.log_probs[row], _log_prob(table, 0, hypothesis), rtol=1e-9)
    top_two = run(state, start, key, top_k=2)
    assert int(np.argmin(probabilities)) not in set(np.asarray(top_two.tokens[:, 0]).tolist())
    top_one = run(state, start, key, top_k=1)
    best = greedy(_step_fn(table), state, start, max_length=MAX_LENGTH, end_id=END)
    np.testing.assert_array_equal(top_one.tokens, best.tokens)


def test_bad_arguments_raise_clear_errors():
    state, start = _start(2)
    step_fn = _step_fn(_table())
    key = jax.random.key(0)
    cases = [
        (ValueError, "beam_width must be >= 1; got 0",
         lambda: beam_search(step_fn, state, start, beam_width=0, max_length=3, end_id=END)),
        (TypeError, "beam_width must be an int; got 2.0",
         lambda: beam_search(step_fn, state, start, beam_width=2.0, max_length=3, end_id=END)),
        (ValueError, "max_length must be >= 1; got 0", lambda: greedy(step_fn, state, start, max_length=0, end_id=END)),
        (ValueError, r"end_id must be <= 2; got 3", lambda: greedy(step_fn, state, start, max_length=2, end_id=3)),
        (ValueError, r"end_id must be >= 0; got -1",
         lambda: beam_search(step_fn, state, start, beam_width=2, max_length=2, end_id=-1)),
        (TypeError, r"pad_id must be an int", lambda: greedy(step_fn, state, start, max_length=2, end_id=END,
                                                             pad_id=0.5)),  # fmt: skip
        (ValueError, "temperature must be > 0",
         lambda: sample(step_fn, state, start, key, max_length=2, end_id=END, temperature=0.0)),
        (ValueError, "top_k must be >= 1; got 0",
         lambda: sample(step_fn, state, start, key, max_length=2, end_id=END, top_k=0)),
        (ValueError, "alpha must be finite",
         lambda: beam_search(step_fn, state, start, beam_width=2, max_length=2, end_id=END, alpha=float("nan"))),
        (ValueError, "start_tokens must be an int array of shape",
         lambda: greedy(step_fn, state, start[:, None], max_length=2, end_id=END)),
        (ValueError, r"start_tokens must be ids in \[0, 3\).*got 3",
         lambda: greedy(step_fn, state, start.at[1].set(3), max_length=2, end_id=END)),
        (ValueError, r"start_tokens must be ids in \[0, 3\).*got -1",
         lambda: beam_search(step_fn, state, start.at[0].set(-1), beam_width=2, max_length=2, end_id=END)),
        (ValueError, r"state\[0\] must lead with the batch axis 3 \(that of start_tokens\); got shape \[2\]",
         lambda: greedy(step_fn, state, jnp.zeros(3, jnp.int32), max_length=2, end_id=END)),
    ]
    for error, pattern, call in cases:
        with pytest.raises(error, match=pattern):
            call()


def test_beam_search_beats_greedy_on_a_garden_path():
    """p(A)=.5, p(B)=.4, p(END)=.1; after A all uniform; after B, END with .9: best is B END (.36)."""
    table = np.zeros((1, CODES, VOCAB))  # uniform everywhere unless set
    table[0, 1] = np.log([0.1, 0.5, 0.4])  # after [start]
    table[0, 1 * (VOCAB + 1) + 2 + 1] = np.log([0.9, 0.05, 0.05])  # after [start, B]
    state, start = _start(1)
    out = greedy(_step_fn(table), state, start, max_length=MAX_LENGTH, end_id=END)
    beams = beam_search(_step_fn(table), state, start, beam_width=2, max_length=MAX_LENGTH, end_id=END)
    assert _trim(out.tokens[0], out.lengths[0])[0] == 1
    assert _trim(beams.tokens[0, 0], beams.lengths[0, 0]) == (2, END)
    np.testing.assert_allclose(np.exp(beams.log_probs[0, 0]), 0.36, rtol=1e-9)
    assert float(beams.log_probs[0, 0]) > float(out.log_probs[0])


def test_beam_width_one_ignores_a_runner_up_end_token():
    """p(A)=.55, p(END)=.4 first, then A (.7), END (.8): greedy is A A END (.308) although END alone has .4.

    Beam width 1 must keep greedy's answer: the runner-up END is outside the beam, so it never becomes a
    finished hypothesis (accepting every ending candidate of the 2k ranked would return the shorter END).
    """
    table = np.zeros((1, CODES, VOCAB))
    table[0, 1] = np.log([0.4, 0.55, 0.05])  # after [start]
    table[0, 1 * (VOCAB + 1) + 1 + 1] = np.log([0.1, 0.7, 0.2])  # after [start, A]
    table[0, (1 * (VOCAB + 1) + 1 + 1) * (VOCAB + 1) + 1 + 1] = np.log([0.8, 0.1, 0.1])  # after [start, A, A]
    state, start = _start(1)
    out = greedy(_step_fn(table), state, start, max_length=MAX_LENGTH, end_id=END)
    beams = beam_search(_step_fn(table), state, start, beam_width=1, max_length=MAX_LENGTH, end_id=END)
    assert _trim(out.tokens[0], out.lengths[0]) == (1, 1, END)
    np.testing.assert_allclose(np.exp(out.log_probs[0]), 0.55 * 0.7 * 0.8, rtol=1e-9)
    np.testing.assert_array_equal(beams.tokens[:, 0], out.tokens)
    np.testing.assert_array_equal(beams.lengths[:, 0], out.lengths)
    np.testing.assert_allclose(beams.log_probs[:, 0], out.log_probs, rtol=1e-12)
