"""Gated linear cells whose gates read only the input (Feng et al. 2024, "Were RNNs All We Needed?").

minGRU:  z = sigma(x W_z + b_z);  c = x W_h + b_h;  h' = (1 - z) * h + z * c
minLSTM: f, i = sigma(x W_f + b_f), sigma(x W_i + b_i);  c = x W_h + b_h;  h' = f/(f+i) * h + i/(f+i) * c

Both are linear in the carry, h' = a h + b, so :func:`rnnjax.core.parallel.parallel_rnn` can unroll
them with an associative scan; their ``step`` is the ordinary sequential path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.core.cell import Cell, Initializer, LinearForm, Params
from rnnjax.core.cells.base import build_cell, check_sizes, default_input_init, kernel_projection

MIN_GATED_KEYS = frozenset({"input_kernel", "bias"})


def min_gru(*, input_init: Initializer | None = None, bias_init: Initializer = jax.nn.initializers.zeros) -> Cell:
    """minGRU: z = sigmoid(x W_z + b_z), c = x W_h + b_h, h' = (1 - z) * h + z * c, y = h'.

    Params: ``input_kernel [input, 2 * hidden]``, ``bias [2 * hidden]``; the carry is ``h [hidden]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import min_gru, rnn
      >>> cell = min_gru()
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> params["input_kernel"].shape, params["bias"].shape
      ((3, 8), (8,))
      >>> ys, h = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, h.shape
      ((2, 5, 4), (2, 4))
    """
    input_init = input_init or default_input_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        k_in, k_bias = jax.random.split(key)
        return {
            "input_kernel": input_init(k_in, (input_size, 2 * hidden_size), dtype),
            "bias": bias_init(k_bias, (2 * hidden_size,), dtype),
        }

    return _gated_cell("min_gru", init, min_gru_coefficients, gates=2)


def min_lstm(
    *, forget_bias: float = 1.0, input_init: Initializer | None = None, bias_init=jax.nn.initializers.zeros
) -> Cell:
    """minLSTM: f, i = sigmoid(x W_f + b_f), sigmoid(x W_i + b_i); c = x W_h + b_h;
    h' = f / (f + i) * h + i / (f + i) * c, y = h'. ``forget_bias`` is added to the initial b_f.

    Params: ``input_kernel [input, 3 * hidden]``, ``bias [3 * hidden]`` (blocks f, i, h); the carry is ``h [hidden]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import min_lstm, rnn
      >>> cell = min_lstm(forget_bias=1.0)
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> params["input_kernel"].shape, params["bias"][:4].tolist()
      ((3, 12), [1.0, 1.0, 1.0, 1.0])
      >>> ys, h = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, h.shape
      ((2, 5, 4), (2, 4))
    """
    input_init = input_init or default_input_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        k_in, k_bias = jax.random.split(key)
        bias = bias_init(k_bias, (3 * hidden_size,), dtype)
        return {
            "input_kernel": input_init(k_in, (input_size, 3 * hidden_size), dtype),
            "bias": bias.at[:hidden_size].add(jnp.asarray(forget_bias, dtype)),
        }

    return _gated_cell("min_lstm", init, min_lstm_coefficients, gates=3)


def _gated_cell(name: str, init, coefficients, gates: int) -> Cell:
    def recur(params, carry, u):
        a, b = coefficients(params, u)
        h = a * carry + b
        return h, h

    def hidden_size(params):
        return params["bias"].shape[0] // gates

    def initial_carry(params, batch_shape=()):
        return jnp.zeros((*tuple(batch_shape), hidden_size(params)), params["bias"].dtype)

    return build_cell(
        name,
        init,
        kernel_projection("bias"),
        recur,
        initial_carry,
        param_keys=MIN_GATED_KEYS,
        hidden_size=hidden_size,
        linear_form=LinearForm(False, coefficients, identity_readout),
    )


def min_gru_coefficients(params: Params, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(a, b) = (1 - z, z * c) from u = [z_pre, c]."""
    z_pre, candidate = jnp.split(u, 2, axis=-1)
    z = jax.nn.sigmoid(z_pre)
    return 1.0 - z, z * candidate


def min_lstm_coefficients(params: Params, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(a, b) = (f / (f + i), i / (f + i) * c) from u = [f_pre, i_pre, c]."""
    f_pre, i_pre, candidate = jnp.split(u, 3, axis=-1)
    log_f, log_i = jax.nn.log_sigmoid(f_pre), jax.nn.log_sigmoid(i_pre)
    # f / (f + i) = sigmoid(log f - log i), computed without underflow.
    return jax.nn.sigmoid(log_f - log_i), jax.nn.sigmoid(log_i - log_f) * candidate


def identity_readout(params: Params, h: jax.Array, u) -> jax.Array:
    """y = h."""
    return h
