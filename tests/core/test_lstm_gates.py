"""The LSTM's gate forms (lstm(gates=...)): the one-tanh nonlinearities against sigmoid/tanh on slices (values and
derivatives), whole cells of every form against each other in float64, each form's hand-written VJP against
autodiff, AUTO as the backend's form."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.core.cell import RuleInputs
from rnnjax.core.cells import LSTMState, lstm, make_cell
from rnnjax.core.cells.lstm import LSTMGates, gates_on_slices, one_tanh_gates, resolve_gates
from rnnjax.core.unroll import rnn


def _preactivations(shape):
    return 4.0 * jax.random.normal(jax.random.key(3), shape, jnp.float64)


def test_one_tanh_gates_equal_sigmoid_and_tanh_on_slices():
    z = _preactivations((5, 4 * 6))
    hidden = 6
    expected = np.concatenate(
        [
            1.0 / (1.0 + np.exp(-np.asarray(z[:, : 2 * hidden]))),
            np.tanh(np.asarray(z[:, 2 * hidden : 3 * hidden])),
            1.0 / (1.0 + np.exp(-np.asarray(z[:, 3 * hidden :]))),
        ],
        axis=-1,
    )
    np.testing.assert_allclose(one_tanh_gates(z), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(gates_on_slices(z), expected, rtol=0, atol=1e-14)


def test_one_tanh_gates_derivatives_match_autodiff_of_the_sliced_form():
    z = _preactivations((4 * 3,))

    def derivatives(gates):  # one compiled program instead of hundreds of eager operations
        both = lambda v: (jax.jacfwd(gates)(v), jax.jacrev(gates)(v), jax.hessian(lambda u: jnp.sum(gates(u) ** 2))(v))  # noqa: E731
        return jax.jit(both)(z)

    ours, reference = derivatives(one_tanh_gates), derivatives(gates_on_slices)
    np.testing.assert_allclose(ours[0], reference[0], atol=1e-14)
    np.testing.assert_allclose(ours[1], reference[1], atol=1e-14)
    np.testing.assert_allclose(ours[2], reference[2], atol=1e-12)


def _problem(key, gates, dtype=jnp.float64):
    """An LSTM in the form ``gates`` with random nonzero biases, inputs [3, 9, 2], lengths, initial carry, targets."""
    cell = make_cell("lstm", gates=gates)
    keys = iter(jax.random.split(key, 8))
    params = cell.init(next(keys), 2, 5, dtype)
    params["bias"] = params["bias"] + 0.5 * jax.random.normal(next(keys), params["bias"].shape, dtype)
    xs = 2.0 * jax.random.normal(next(keys), (3, 9, 2), dtype)
    carry = LSTMState(*(0.5 * jax.random.normal(next(keys), (2, 3, 5), dtype)))
    targets = jax.random.normal(next(keys), (3, 9, 5), dtype)
    return cell, params, (xs, carry, jnp.asarray([9, 4, 0]), targets)


BACKWARDS = ("autodiff", "manual")


def _value_and_grads(cell, params, data, backwards=BACKWARDS):
    """(loss, gradients for params, inputs and initial carry) per backward path, all in one compiled program."""
    xs, carry, lengths, targets = data

    def loss(backward, p, x, c):
        ys, final = rnn(cell, p, x, lengths=lengths, initial_carry=c, backward=backward)
        return jnp.sum((ys - targets) ** 2) + jnp.sum(final.c**2) + jnp.sum(final.h)

    grads = [jax.value_and_grad(functools.partial(loss, backward), argnums=(0, 1, 2)) for backward in backwards]
    return jax.jit(lambda *args: [grad(*args) for grad in grads])(params, xs, carry)


def _max_relative_error(ours, reference):
    errors = jax.tree.map(lambda a, b: jnp.linalg.norm((a - b).ravel()) / jnp.linalg.norm(b.ravel()), ours, reference)
    return max(float(error) for error in jax.tree.leaves(errors))


@pytest.fixture(scope="module")
def sliced_reference():
    """Loss and gradients of the sliced form with autodiff (the reference every form and path must equal)."""
    return _value_and_grads(*_problem(jax.random.key(0), LSTMGates.SLICES), ("autodiff",))[0]


@pytest.mark.parametrize("gates", ["one_tanh", "slices"])  # AUTO is one of them, program for program (below)
def test_every_gate_form_equals_the_others_and_its_manual_vjp_equals_autodiff(gates, sliced_reference):
    cell, params, data = _problem(jax.random.key(0), gates)
    for backward, ours in zip(BACKWARDS, _value_and_grads(cell, params, data)):
        assert _max_relative_error(ours, sliced_reference) <= 1e-12, backward
    inputs = RuleInputs(params, jnp.moveaxis(data[0], 1, 0), data[1], None)
    sliced = make_cell("lstm", gates=LSTMGates.SLICES)
    np.testing.assert_allclose(cell.gates.activations(inputs), sliced.gates.activations(inputs), rtol=0, atol=1e-14)


def test_forms_round_differently_in_float32(key):
    """The option changes float32 results (a switch that changed nothing would be a dead option), within rounding."""
    outputs = {}
    for gates in (LSTMGates.ONE_TANH, LSTMGates.SLICES):
        cell, params, (xs, carry, _, _) = _problem(key, gates, jnp.float32)
        outputs[gates] = np.asarray(jax.jit(lambda p, x, c: rnn(cell, p, x, initial_carry=c)[0])(params, xs, carry))
    difference = np.abs(outputs[LSTMGates.ONE_TANH] - outputs[LSTMGates.SLICES])
    assert 0 < difference.max() <= 1e-5


def test_auto_is_the_backend_form_bit_for_bit(key):
    """AUTO traces to the very program of the form it resolves to (forward and both backward paths)."""
    resolved = resolve_gates(LSTMGates.AUTO)
    assert resolved is (LSTMGates.ONE_TANH if jax.default_backend() == "cpu" else LSTMGates.SLICES)
    programs = []
    for gates in (LSTMGates.AUTO, resolved):
        cell, params, (xs, carry, lengths, targets) = _problem(key, gates, jnp.float32)
        for backward in BACKWARDS:
            loss = lambda p: jnp.sum(rnn(cell, p, xs, lengths=lengths, initial_carry=carry, backward=backward)[0])  # noqa: B023, E731
            programs.append(str(jax.make_jaxpr(jax.value_and_grad(loss))(params)))
    assert programs[:2] == programs[2:]
    assert programs[0] != str(jax.make_jaxpr(lambda p: p)(0.0))  # not vacuous


def test_unknown_gate_form_is_refused():
    with pytest.raises(ValueError, match="gates must be one of 'auto', 'one_tanh', 'slices'; got 'fast'"):
        lstm(gates="fast")
