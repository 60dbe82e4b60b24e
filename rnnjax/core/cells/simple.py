"""The simple (Elman) cell h_t = act(x_t W + h_{t-1} U + b), with its hand-written BPTT.

Backward, with g_t = dL/dh_t (everything that reaches h_t from later steps and from y_t):
    da_t = g_t * act'(a_t);   dL/dh_{t-1} = da_t U^T
    dW = sum_t x_t^T da_t,  dU = sum_t h_{t-1}^T da_t,  db = sum_t da_t,  dx_t = da_t W^T
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import as_enum
from rnnjax.core.bptt.scan import (
    contract,
    forward_scan,
    input_projection,
    mask_outputs,
    materialized_transpose,
    previous,
    reverse_scan,
    sum_steps,
)
from rnnjax.core.cell import (
    Cell,
    Cotangents,
    ForwardPass,
    Gates,
    Gradients,
    Initializer,
    RuleInputs,
    ScanOptions,
    Squash,
    VJPRule,
)
from rnnjax.core.cells.base import (
    build_cell,
    check_sizes,
    default_input_init,
    default_recurrent_init,
    kernel_projection,
)

KERNEL_KEYS = frozenset({"input_kernel", "recurrent_kernel", "bias"})


class Activation(enum.Enum):
    """The nonlinearity of the Elman cell (:func:`simple_rnn`).

    Examples:
      >>> from rnnjax import Activation, simple_rnn
      >>> simple_rnn(Activation("relu")).name
      'simple_relu'
    """

    TANH = "tanh"
    RELU = "relu"


class SimpleResiduals(NamedTuple):
    """The carries h_t after every step, ``[time, batch, hidden]`` (act' is read off them)."""

    hs: jax.Array


def simple_rnn(
    activation: Activation | str = Activation.TANH,
    *,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
) -> Cell:
    """Elman cell: h_t = act(x_t W + h_{t-1} U + b), y_t = h_t.

    Params: ``input_kernel [input, hidden]``, ``recurrent_kernel [hidden, hidden]``, ``bias [hidden]``;
    the carry is ``h [hidden]``.

    Args:
      activation: TANH (default) or RELU (:class:`Activation`, or its value as a string).
      input_init: initialiser of the input kernel (default LeCun normal).
      recurrent_init: initialiser of the recurrent kernel (default orthogonal).
      bias_init: initialiser of the bias (default zeros).

    Returns:
      A :class:`~rnnjax.core.cell.Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import rnn, simple_rnn
      >>> cell = simple_rnn("tanh")
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> {name: value.shape for name, value in params.items()}
      {'input_kernel': (3, 4), 'recurrent_kernel': (4, 4), 'bias': (4,)}
      >>> ys, h = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, h.shape
      ((2, 5, 4), (2, 4))
    """
    activation = as_enum(Activation, activation, "activation")
    act = jnp.tanh if activation is Activation.TANH else jax.nn.relu
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        k_in, k_rec, k_bias = jax.random.split(key, 3)
        return {
            "input_kernel": input_init(k_in, (input_size, hidden_size), dtype),
            "recurrent_kernel": recurrent_init(k_rec, (hidden_size, hidden_size), dtype),
            "bias": bias_init(k_bias, (hidden_size,), dtype),
        }

    def recur(params, carry, u):
        h = act(u + carry @ params["recurrent_kernel"])
        return h, h

    rule = simple_rule(activation)
    gates = None
    if activation is Activation.TANH:
        gates = Gates((("hidden", Squash.TANH),), lambda inputs: rule.forward(inputs, ScanOptions()).residuals.hs)
    return build_cell(
        f"simple_{activation.value}", init, kernel_projection("bias"), recur,
        param_keys=KERNEL_KEYS, vjp_rule=rule, gates=gates,
    )  # fmt: skip


def simple_rule(activation: Activation) -> VJPRule:
    """BPTT of the Elman cell h_t = act(x_t W + b + h_{t-1} U)."""
    if activation is Activation.TANH:
        act, derivative = jnp.tanh, lambda h: 1.0 - h * h
    elif activation is Activation.RELU:
        act, derivative = jax.nn.relu, lambda h: (h > 0).astype(h.dtype)
    else:
        raise ValueError(f"activation must be an Activation; got {activation!r}")

    def forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass:
        params = inputs.params
        kernel = params["recurrent_kernel"]
        scanned, project = input_projection(inputs.xs, params["input_kernel"], params["bias"], options.hoist_projection)

        def step(h, x):
            return act(project(x) + h @ kernel), None

        final, hs, _ = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
        return ForwardPass(mask_outputs(hs, inputs.valid), final, SimpleResiduals(hs))

    def vjp(inputs: RuleInputs, residuals: SimpleResiduals, cotangents: Cotangents, options: ScanOptions):
        params = inputs.params
        kernel_t = materialized_transpose(params["recurrent_kernel"])

        def step_back(d_h, scanned):
            h, d_y = scanned
            d_a = (d_h + d_y) * derivative(h)  # da_t = g_t * act'(a_t), act' read off h_t
            return d_a @ kernel_t, d_a  # dL/dh_{t-1} = da_t U^T

        d_carry0, d_as = reverse_scan(
            step_back, cotangents.final, (residuals.hs, cotangents.ys), inputs.valid, options.unroll
        )  # fmt: skip
        d_params = {
            "input_kernel": contract(inputs.xs, d_as),
            "recurrent_kernel": contract(previous(residuals.hs, inputs.carry0), d_as),
            "bias": sum_steps(d_as),
        }
        return Gradients(d_params, d_as @ params["input_kernel"].T, d_carry0)

    return VJPRule(forward, vjp)
