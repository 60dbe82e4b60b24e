"""Property tests (hypothesis): random shapes, lengths, masks, resets, ids and dtypes.

Valid input must give the reference result (a Python loop over ``cell.step``, autodiff, the sequential scan, a
brute-force sum over CTC alignments, greedy decoding, numpy formulas); invalid input must raise ValueError or
TypeError, never return a result. Only the public API is used.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import rnnjax
from rnnjax.core.parallel import parallel_rnn
from rnnjax.tasks.ctc import ctc_loss
from rnnjax.tasks.decode import beam_search, greedy
from rnnjax.tasks.losses import cross_entropy, mse

# Reproducible (derandomize) and bounded: no shrinking, whose time on a failure is unbounded (the failing example
# is printed as drawn).
PROPERTY = settings(
    deadline=None,
    max_examples=6,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
DTYPES = {"float32": (jnp.float32, 1e-4), "float64": (jnp.float64, 1e-10)}
SEQUENTIAL_CELLS = {"simple": rnnjax.simple_rnn, "lstm": rnnjax.lstm, "gru": rnnjax.gru}
LINEAR_CELLS = {"min_gru": rnnjax.min_gru, "min_lstm": rnnjax.min_lstm, "linear": rnnjax.linear_rnn}


# --------------------------------------------------------------------------- strategies


@st.composite
def sequences(draw, *, allow_reset=True, min_time=0):
    """A batch of padded sequences: sizes, dtype, and one of lengths / mask / nothing, resets, direction."""
    batch = draw(st.integers(1, 3))
    time = draw(st.integers(min_time, 5))
    padding = draw(st.sampled_from(["none", "lengths", "mask"]))
    valid = np.ones((batch, time), bool)
    lengths = mask = None
    if padding == "lengths":
        lengths = np.array(draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch)))
        valid = np.arange(time) < lengths[:, None]
    elif padding == "mask":
        valid = np.array(draw(st.lists(st.booleans(), min_size=batch * time, max_size=batch * time)), bool)
        mask = valid = valid.reshape(batch, time)
    reset = None
    if allow_reset and draw(st.booleans()):
        reset = np.array(draw(st.lists(st.booleans(), min_size=batch * time, max_size=batch * time)), bool)
        reset = reset.reshape(batch, time)
    return {
        "batch": batch,
        "time": time,
        "input_size": draw(st.integers(1, 3)),
        "hidden_size": draw(st.integers(1, 3)),
        "dtype": draw(st.sampled_from(sorted(DTYPES))),
        "lengths": lengths,
        "mask": mask,
        "valid": valid,
        "reset": reset,
        "reverse": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def _setup(cell, case):
    dtype = DTYPES[case["dtype"]][0]
    key_params, key_xs = jax.random.split(jax.random.key(case["seed"]))
    params = cell.init(key_params, case["input_size"], case["hidden_size"], dtype)
    xs = jax.random.normal(key_xs, (case["batch"], case["time"], case["input_size"]), dtype)
    return params, xs


def _padding(case):
    options = {"lengths": case["lengths"], "mask": case["mask"], "reverse": case["reverse"]}
    return {name: (jnp.asarray(value) if isinstance(value, np.ndarray) else value) for name, value in options.items()}


# --------------------------------------------------------------------------- unrollers


def _loop_reference(cell, params, xs, case):
    """ys, final carry by a Python loop over cell.step, one example at a time, from the documented semantics."""
    outputs, finals = [], []
    for row in range(case["batch"]):
        steps = [t for t in range(case["time"]) if case["valid"][row, t]]
        order = steps[::-1] if case["reverse"] else steps
        carry = cell.initial_carry(params)
        ys = [np.zeros(cell.output_size(params))] * case["time"]
        previous = None
        for t in order:
            # A reset at t starts a segment at t: forward, the carry restarts before t; reverse, after t.
            marker = t if not case["reverse"] else previous
            if case["reset"] is not None and marker is not None and case["reset"][row, marker]:
                carry = cell.initial_carry(params)
            carry, y = cell.step(params, carry, xs[row, t])
            ys[t], previous = np.asarray(y), t
        outputs.append(np.stack(ys) if ys else np.zeros((0, cell.output_size(params))))
        finals.append(carry)
    return np.stack(outputs), jax.tree.map(lambda *leaves: np.stack(leaves), *finals)


@PROPERTY
@given(case=sequences(), cell_name=st.sampled_from(sorted(SEQUENTIAL_CELLS) + ["linear"]))
def test_rnn_matches_a_python_loop_over_step(case, cell_name):
    cell = (SEQUENTIAL_CELLS | LINEAR_CELLS)[cell_name]()
    params, xs = _setup(cell, case)
    reset = None if case["reset"] is None else jnp.asarray(case["reset"])
    ys, final = rnnjax.rnn(cell, params, xs, reset=reset, **_padding(case))
    expected_ys, expected_final = _loop_reference(cell, params, xs, case)
    tolerance = DTYPES[case["dtype"]][1]
    np.testing.assert_allclose(ys, expected_ys, rtol=tolerance, atol=tolerance)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance), final, expected_final)


def _scalar_loss(unroll, weights):
    def loss(params, xs):
        ys, final = unroll(params, xs)
        return jnp.sum(ys * weights) + sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(final))

    return loss


@PROPERTY
@given(case=sequences(allow_reset=False), cell_name=st.sampled_from(sorted(SEQUENTIAL_CELLS)))
def test_manual_backward_matches_autodiff(case, cell_name):
    cell = SEQUENTIAL_CELLS[cell_name]()
    params, xs = _setup(cell, case)
    weights = jax.random.normal(jax.random.key(case["seed"] + 1), (case["batch"], case["time"], case["hidden_size"]))
    weights = weights.astype(xs.dtype)
    gradients = {}
    for backward in ("autodiff", "manual"):
        unroll = lambda p, x, b=backward: rnnjax.rnn(cell, p, x, backward=b, **_padding(case))  # noqa: E731
        gradients[backward] = jax.grad(_scalar_loss(unroll, weights), argnums=(0, 1))(params, xs)
    tolerance = 10 * DTYPES[case["dtype"]][1]
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance),
        gradients["manual"],
        gradients["autodiff"],
    )


@PROPERTY
@given(case=sequences(), cell_name=st.sampled_from(sorted(LINEAR_CELLS)))
def test_parallel_rnn_matches_the_sequential_scan(case, cell_name):
    cell = LINEAR_CELLS[cell_name]()
    params, xs = _setup(cell, case)
    reset = None if case["reset"] is None else jnp.asarray(case["reset"])
    sequential = rnnjax.rnn(cell, params, xs, reset=reset, **_padding(case))
    parallel = parallel_rnn(cell, params, xs, reset=reset, **_padding(case))
    tolerance = 10 * DTYPES[case["dtype"]][1]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance), parallel, sequential)


@PROPERTY
@given(case=sequences(allow_reset=False, min_time=1), data=st.data())
def test_unrollers_reject_lengths_and_masks_that_do_not_fit(case, data):
    cell = rnnjax.gru()
    params, xs = _setup(cell, case)
    kind = data.draw(st.sampled_from(["too_long", "negative", "wrong_batch", "float_lengths", "wrong_mask"]))
    lengths = np.full(case["batch"], case["time"])
    bad = {
        "too_long": {"lengths": jnp.asarray(lengths + data.draw(st.integers(1, 3)))},
        "negative": {"lengths": jnp.asarray(lengths - case["time"] - data.draw(st.integers(1, 3)))},
        "wrong_batch": {"lengths": jnp.asarray(np.full(case["batch"] + 1, case["time"]))},
        "float_lengths": {"lengths": jnp.asarray(lengths, jnp.float32)},
        "wrong_mask": {"mask": jnp.ones((case["batch"], case["time"] + 1), bool)},
    }[kind]
    for unroll in (rnnjax.rnn, parallel_rnn):
        unroll_cell = cell if unroll is rnnjax.rnn else rnnjax.min_gru()
        unroll_params = params if unroll is rnnjax.rnn else _setup(unroll_cell, case)[0]
        with pytest.raises((ValueError, TypeError)):
            unroll(unroll_cell, unroll_params, xs, **bad)


# --------------------------------------------------------------------------- CTC


def _collapse(alignment, blank):
    labels, previous = [], None
    for token in alignment:
        if token != blank and token != previous:
            labels.append(token)
        previous = token
    return tuple(labels)


def _brute_force_ctc(log_probs, labels, blank):
    """-log sum over every alignment (all classes**time of them) that collapses to ``labels``."""
    total = -np.inf
    for alignment in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        if _collapse(alignment, blank) == tuple(labels):
            total = np.logaddexp(total, sum(log_probs[t, a] for t, a in enumerate(alignment)))
    return -total


@st.composite
def ctc_cases(draw):
    batch, time, classes = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(2, 3))
    blank = draw(st.integers(0, classes - 1))
    others = [k for k in range(classes) if k != blank]
    max_labels = draw(st.integers(1, 3))
    logit_lengths = draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch))
    label_lengths = [draw(st.integers(0, min(max_labels, n))) for n in logit_lengths]
    labels = [[draw(st.sampled_from(others)) for _ in range(max_labels)] for _ in range(batch)]
    labels = [row[:n] + [-1] * (max_labels - n) for row, n in zip(labels, label_lengths)]  # any padding value
    seed = draw(st.integers(0, 2**16))
    logits = np.random.default_rng(seed).normal(size=(batch, time, classes)) * 2
    return logits, np.array(logit_lengths), np.array(labels), np.array(label_lengths), blank


@PROPERTY
@given(case=ctc_cases())
def test_ctc_loss_equals_the_sum_over_alignments(case):
    logits, logit_lengths, labels, label_lengths, blank = case
    losses = ctc_loss(jnp.asarray(logits), jnp.asarray(logit_lengths), jnp.asarray(labels),
                      jnp.asarray(label_lengths), blank_id=blank, reduction="none")  # fmt: skip
    log_probs = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), -1))
    for row, loss in enumerate(np.asarray(losses)):
        frames = log_probs[row, : logit_lengths[row]]
        expected = _brute_force_ctc(frames, labels[row, : label_lengths[row]], blank)
        if np.isfinite(expected):
            np.testing.assert_allclose(loss, expected, rtol=1e-7, atol=1e-9)
        else:  # no alignment: optax's log(0) surrogate, a very large loss
            assert loss > 1e3


@PROPERTY
@given(case=ctc_cases(), data=st.data())
def test_ctc_loss_rejects_ids_and_lengths_that_do_not_fit(case, data):
    logits, logit_lengths, labels, label_lengths, blank = case
    classes, time, max_labels = logits.shape[2], logits.shape[1], labels.shape[1]
    kind = data.draw(st.sampled_from(["label_high", "label_negative", "label_blank", "blank_id", "logit_lengths",
                                      "label_lengths", "lengths_batch"]))  # fmt: skip
    labels, logit_lengths, label_lengths = labels.copy(), logit_lengths.copy(), label_lengths.copy()
    if kind.startswith("label_") and kind != "label_lengths":
        label_lengths[0] = max_labels
        logit_lengths[0] = time
        labels[0] = np.where(labels[0] < 0, (blank + 1) % classes, labels[0])
        labels[0, -1] = {"label_high": classes + data.draw(st.integers(0, 3)),
                         "label_negative": -data.draw(st.integers(1, 3)), "label_blank": blank}[kind]  # fmt: skip
    elif kind == "blank_id":
        blank = data.draw(st.sampled_from([classes, classes + 2, -1]))
    elif kind == "logit_lengths":
        logit_lengths[-1] = data.draw(st.sampled_from([time + 1, -1]))
    elif kind == "label_lengths":
        label_lengths[-1] = data.draw(st.sampled_from([max_labels + 1, -1]))
    else:
        logit_lengths = np.append(logit_lengths, time)
    arrays = [jnp.asarray(array) for array in (logits, logit_lengths, labels, label_lengths)]
    with pytest.raises((ValueError, TypeError)):
        ctc_loss(*arrays, blank_id=blank)
    with pytest.raises((ValueError, TypeError)):  # also when the arrays reach ctc_loss inside jit from outside
        jax.jit(lambda: ctc_loss(*arrays, blank_id=blank))()


# --------------------------------------------------------------------------- decoding


@st.composite
def decoding_problems(draw):
    batch, vocab, hidden = draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    weights = {
        "embedding": jnp.asarray(rng.normal(size=(vocab, hidden))),
        "recurrent": jnp.asarray(rng.normal(size=(hidden, hidden))),
        "readout": jnp.asarray(rng.normal(size=(hidden, vocab)) * 2),
    }
    state = jnp.asarray(rng.normal(size=(batch, hidden)))
    start = jnp.asarray(rng.integers(0, vocab, batch))
    return weights, state, start, vocab, draw(st.integers(0, vocab - 1)), draw(st.integers(1, 5))


def _step_fn(weights):
    def step_fn(state, tokens):
        state = jnp.tanh(state @ weights["recurrent"] + weights["embedding"][tokens])
        return state, state @ weights["readout"]

    return step_fn


def _greedy_loop(weights, state, start, end_id, max_length):
    """Greedy decoding as a Python loop in numpy; tokens after the end token are end_id."""
    tokens, totals, done, previous = [], np.zeros(len(start)), np.zeros(len(start), bool), np.asarray(start)
    state = np.asarray(state)
    for _ in range(max_length):
        state = np.tanh(state @ np.asarray(weights["recurrent"]) + np.asarray(weights["embedding"])[previous])
        logits = state @ np.asarray(weights["readout"])
        log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        previous = logits.argmax(-1)
        totals += np.where(done, 0.0, log_probs[np.arange(len(start)), previous])
        tokens.append(np.where(done, end_id, previous))
        done = done | (previous == end_id)
    return np.stack(tokens, 1), totals


@PROPERTY
@given(problem=decoding_problems())
def test_greedy_equals_a_numpy_loop_and_beam_width_one(problem):
    weights, state, start, _, end_id, max_length = problem
    out = greedy(_step_fn(weights), state, start, max_length=max_length, end_id=end_id)
    expected_tokens, expected_log_probs = _greedy_loop(weights, state, start, end_id, max_length)
    np.testing.assert_array_equal(out.tokens, expected_tokens)
    np.testing.assert_allclose(out.log_probs, expected_log_probs, rtol=1e-9, atol=1e-12)
    beams = beam_search(_step_fn(weights), state, start, beam_width=1, max_length=max_length, end_id=end_id)
    np.testing.assert_array_equal(beams.tokens[:, 0], out.tokens)
    np.testing.assert_allclose(beams.log_probs[:, 0], out.log_probs, rtol=1e-9, atol=1e-12)


@PROPERTY
@given(problem=decoding_problems(), data=st.data())
def test_decoding_rejects_ids_and_sizes_that_do_not_fit(problem, data):
    weights, state, start, vocab, end_id, max_length = problem
    kind = data.draw(st.sampled_from(["end_high", "end_negative", "start_high", "start_negative", "state_batch",
                                      "max_length", "beam_width"]))  # fmt: skip
    options = {"max_length": max_length, "end_id": end_id}
    if kind == "end_high":
        options["end_id"] = vocab + data.draw(st.integers(0, 3))
    elif kind == "end_negative":
        options["end_id"] = -data.draw(st.integers(1, 3))
    elif kind == "start_high":
        start = start.at[0].set(vocab + data.draw(st.integers(0, 3)))
    elif kind == "start_negative":
        start = start.at[-1].set(-1)
    elif kind == "state_batch":
        state = jnp.concatenate([state, state[:1]])
    elif kind == "max_length":
        options["max_length"] = data.draw(st.sampled_from([0, -1, 2.0, True]))
    beam_width = data.draw(st.sampled_from([0, -2, 1.5])) if kind == "beam_width" else 2
    with pytest.raises((ValueError, TypeError)):
        beam_search(_step_fn(weights), state, start, beam_width=beam_width, **options)
    if kind != "beam_width":
        with pytest.raises((ValueError, TypeError)):
            greedy(_step_fn(weights), state, start, **options)


# --------------------------------------------------------------------------- losses


@st.composite
def classification_batches(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    classes = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    logits = rng.normal(size=(*shape, classes)) * 3
    labels = rng.integers(0, classes, shape)
    mask = rng.random(shape) < 0.7 if draw(st.booleans()) else None
    if mask is not None:
        labels = np.where(mask, labels, draw(st.integers(-5, 50)))  # padding may hold anything
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return logits, labels, mask, smoothing, draw(st.sampled_from(sorted(DTYPES)))


@PROPERTY
@given(batch=classification_batches())
def test_cross_entropy_equals_the_numpy_formula(batch):
    logits, labels, mask, smoothing, dtype_name = batch
    dtype, tolerance = DTYPES[dtype_name]
    loss = cross_entropy(jnp.asarray(logits, dtype), jnp.asarray(labels),
                         None if mask is None else jnp.asarray(mask), label_smoothing=smoothing)  # fmt: skip
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    classes = logits.shape[-1]
    target = np.eye(classes)[np.where(mask if mask is not None else True, labels, 0)]
    target = (1 - smoothing) * target + smoothing / classes
    per_position = -(target * log_probs).sum(-1)
    valid = np.ones(labels.shape, bool) if mask is None else mask
    expected = per_position[valid].sum() / max(valid.sum(), 1)
    np.testing.assert_allclose(loss, expected, rtol=tolerance, atol=tolerance)


@PROPERTY
@given(batch=classification_batches(), data=st.data())
def test_cross_entropy_rejects_labels_out_of_range(batch, data):
    logits, labels, mask, _, _ = batch
    position = tuple(data.draw(st.integers(0, size - 1)) for size in labels.shape)
    labels = labels.copy()
    labels[position] = data.draw(st.sampled_from([logits.shape[-1], logits.shape[-1] + 7, -1, -3]))
    if mask is not None:
        mask = mask.copy()
        mask[position] = True
    with pytest.raises(ValueError, match="labels must be ids in"):
        cross_entropy(jnp.asarray(logits), jnp.asarray(labels), None if mask is None else jnp.asarray(mask))


@PROPERTY
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    feature_mask=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_mse_equals_the_numpy_formula(shape, feature_mask, seed):
    rng = np.random.default_rng(seed)
    predictions, targets = rng.normal(size=shape), rng.normal(size=shape)
    mask_shape = shape[:-1] if feature_mask else shape
    mask = rng.random(mask_shape) < 0.6
    loss = mse(jnp.asarray(predictions), jnp.asarray(targets), jnp.asarray(mask))
    error = (predictions - targets) ** 2
    if feature_mask:
        error = error.sum(-1)
    np.testing.assert_allclose(loss, error[mask].sum() / max(mask.sum(), 1), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError):
        mse(jnp.asarray(predictions), jnp.asarray(targets)[..., :-1] if shape[-1] > 1 else jnp.zeros(shape + [2]))
