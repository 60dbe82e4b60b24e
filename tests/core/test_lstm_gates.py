"""The LSTM's one-tanh gate nonlinearities against sigmoid/tanh on slices (values and derivatives)."""

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.core.cells.lstm import gates_on_slices, one_tanh_gates


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
