"""The LSTM's gate forms (lstm(gates=...)): the one-tanh nonlinearities against sigmoid/tanh on slices (values and
derivatives), whole cells of every form against each other in float64, each form's hand-written VJP against
autodiff, AUTO as the backend's form."""

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
    np.testing.assert_allclose(jax.jacfwd(one_tanh_gates)(z), jax.jacfwd(gates_on_slices)(z), atol=1e-14)
    np.testing.assert_allclose(jax.jacrev(one_tanh_gates)(z), jax.jacrev(gates_on_slices)(z), atol=1e-14)
    second = jax.hessian(lambda v: jnp.sum(one_tanh_gates(v) ** 2))(z)
    reference = jax.hessian(lambda v: jnp.sum(gates_on_slices(v) ** 2))(z)
    np.testing.assert_allclose(second, reference, atol=1e-12)


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


def _value_and_grads(cell, params, data, backward):
    xs, carry, lengths, targets = data

    def loss(p, x, c):
        ys, final = rnn(cell, p, x, lengths=lengths, initial_carry=c, backward=backward)
        return jnp.sum((ys - targets) ** 2) + jnp.sum(final.c**2) + jnp.sum(final.h)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry)


def _max_relative_error(ours, reference):
    errors = jax.tree.map(lambda a, b: jnp.linalg.norm((a - b).ravel()) / jnp.linalg.norm(b.ravel()), ours, reference)
    return max(float(error) for error in jax.tree.leaves(errors))


@pytest.mark.parametrize("gates", [form.value for form in LSTMGates])
def test_every_gate_form_equals_the_others_and_its_manual_vjp_equals_autodiff(gates, key):
    cell, params, data = _problem(key, gates)
    reference = _value_and_grads(*_problem(key, LSTMGates.SLICES), "autodiff")
    for backward in ("autodiff", "manual"):
        ours = _value_and_grads(cell, params, data, backward)
        assert _max_relative_error(ours, reference) <= 1e-12, backward
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
    resolved = resolve_gates(LSTMGates.AUTO)
    assert resolved is (LSTMGates.ONE_TANH if jax.default_backend() == "cpu" else LSTMGates.SLICES)
    for backward in ("autodiff", "manual"):
        auto = _value_and_grads(*_problem(key, LSTMGates.AUTO, jnp.float32), backward)
        explicit = _value_and_grads(*_problem(key, resolved, jnp.float32), backward)
        assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(auto), jax.tree.leaves(explicit)))


def test_unknown_gate_form_is_refused():
    with pytest.raises(ValueError, match="gates must be one of 'auto', 'one_tanh', 'slices'; got 'fast'"):
        lstm(gates="fast")
