"""The LSTM cell (gates i, f, g, o in PyTorch order) with its hand-written BPTT.

z_t = x_t W + b + h_{t-1} U = [z_i, z_f, z_g, z_o];  i, f, o = sigma(z_i, z_f, z_o);  g = tanh(z_g)
c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  y_t = h_t

``recur`` (autodiff backward) does one fused [*, 4H] product per step and the gate nonlinearities in the form
``lstm(gates=...)`` chooses (:class:`LSTMGates`). The hand-written rule does one [H, H] product per gate inside
both loops: its forward pass stores the gates after their nonlinearity and the carries, its backward pass is a
reverse scan with dL/dh_{t-1} = sum_k dz_k U_k^T (four products per step), and every weight gradient is one
product over all steps afterwards.
"""

from __future__ import annotations

import enum
import functools
from typing import Callable, NamedTuple

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
    gate_blocks,
    kernel_projection,
    zeros_carry,
)
from rnnjax.core.cells.simple import KERNEL_KEYS


class LSTMState(NamedTuple):
    """Carry of an LSTM: hidden state ``h`` and memory cell ``c``, each [hidden] (``[*batch, hidden]`` when batched).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax import LSTMState
      >>> LSTMState(h=jnp.zeros(2), c=jnp.ones(2)).c.tolist()
      [1.0, 1.0]
    """

    h: jax.Array
    c: jax.Array


class LSTMResiduals(NamedTuple):
    """Carries after every step (leaves ``[time, batch, hidden]``) and the gates i, f, g, o after their
    nonlinearity, each ``[time, batch, hidden]``."""

    carries: LSTMState
    i: jax.Array
    f: jax.Array
    g: jax.Array
    o: jax.Array

    @property
    def gates(self) -> jax.Array:
        """[i, f, g, o] side by side, ``[time, batch, 4 * hidden]``."""
        return jnp.concatenate([self.i, self.f, self.g, self.o], axis=-1)


LSTM_GATE_NAMES = (
    ("input", Squash.SIGMOID),
    ("forget", Squash.SIGMOID),
    ("cell", Squash.TANH),
    ("output", Squash.SIGMOID),
)


class LSTMGates(enum.Enum):
    """How the gate nonlinearities are computed; the forms agree in exact arithmetic and round differently.

    AUTO: ONE_TANH on the XLA CPU backend, SLICES elsewhere, resolved when the cell is traced (as recurrentgemma's
      ``scan_type``): on CPU it runs the probe-shape forward pass 3.3x faster (``benchmarks/README.md``).
    ONE_TANH: one tanh over the fused [z_i, z_f, z_g, z_o] with sigma(x) = (1 + tanh(x / 2)) / 2
      (:func:`one_tanh_gates`, derivative written from the gates); the hand-written rule's sigmoids use the
      same tanh form.
    SLICES: ``jax.nn.sigmoid`` on the i, f, o slices and ``tanh`` on g (:func:`gates_on_slices`);
      the hand-written rule uses ``jax.nn.sigmoid``.
    """

    AUTO = "auto"
    ONE_TANH = "one_tanh"
    SLICES = "slices"


def lstm(
    *,
    forget_bias: float = 1.0,
    gates: LSTMGates | str = LSTMGates.AUTO,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
) -> Cell:
    """LSTM with one fused [i, f, g, o] matmul.

    z = x W + h U + b;  i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c' = f * c + i * g;  h' = o * tanh(c');  y = h'.
    ``forget_bias`` is added to the forget-gate block of the initial bias; ``gates`` picks the form of the
    nonlinearities (:class:`LSTMGates`) for ``recur`` and the hand-written rule alike.

    Params: ``input_kernel [input, 4 * hidden]``, ``recurrent_kernel [hidden, 4 * hidden]``, ``bias [4 * hidden]``;
    the carry is an :class:`LSTMState` ``(h, c)``, each ``[hidden]``.

    Args:
      forget_bias: added to the forget-gate block of the initial bias.
      gates: the form of the gate nonlinearities (:class:`LSTMGates`; default AUTO).
      input_init: initialiser of the input kernel (default LeCun normal).
      recurrent_init: initialiser of the recurrent kernel (default orthogonal per gate block).
      bias_init: initialiser of the bias (default zeros).

    Returns:
      A :class:`~rnnjax.core.cell.Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import lstm, rnn
      >>> cell = lstm()
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> params["bias"][4:8].tolist()  # the forget block starts at forget_bias
      [1.0, 1.0, 1.0, 1.0]
      >>> ys, final = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, final.h.shape, final.c.shape
      ((2, 5, 4), (2, 4), (2, 4))
    """
    gates = as_enum(LSTMGates, gates, "gates")
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        k_in, k_rec, k_bias = jax.random.split(key, 3)
        bias = bias_init(k_bias, (4 * hidden_size,), dtype)
        bias = bias.at[hidden_size : 2 * hidden_size].add(jnp.asarray(forget_bias, dtype))
        return {
            "input_kernel": input_init(k_in, (input_size, 4 * hidden_size), dtype),
            "recurrent_kernel": gate_blocks(recurrent_init, k_rec, hidden_size, 4, dtype),
            "bias": bias,
        }

    forward = functools.partial(_lstm_forward, gates=gates)
    activations = Gates(LSTM_GATE_NAMES, lambda inputs: forward(inputs, ScanOptions()).residuals.gates)
    return build_cell(
        "lstm",
        init,
        kernel_projection("bias"),
        functools.partial(_lstm_recur, gates=gates),
        _lstm_initial_carry,
        param_keys=KERNEL_KEYS,
        vjp_rule=VJPRule(forward, _lstm_vjp),
        gates=activations,
    )


def _lstm_initial_carry(params, batch_shape=()):
    zeros = zeros_carry(params, batch_shape)
    return LSTMState(h=zeros, c=zeros)


def _gate_scale(hidden: int, dtype) -> jax.Array:
    """[4 * hidden] scale of each gate's tanh argument: 1/2 for the sigmoid gates i, f, o and 1 for g."""
    return jnp.repeat(jnp.asarray((0.5, 0.5, 1.0, 0.5), dtype), hidden)


@jax.custom_jvp
def one_tanh_gates(z: jax.Array) -> jax.Array:
    """[i, f, g, o] after their nonlinearity from z = [z_i, z_f, z_g, z_o] ([..., 4H]) with one tanh.

    sigma(x) = (1 + tanh(x / 2)) / 2, so gates = s * tanh(s * z) + 1 - s with s = 1/2 on i, f, o and 1 on g.
    """
    scale = _gate_scale(z.shape[-1] // 4, z.dtype)
    return scale * jnp.tanh(scale * z) + (1.0 - scale)


@one_tanh_gates.defjvp
def _one_tanh_gates_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    gates = one_tanh_gates(z)
    is_cell_gate = jnp.arange(z.shape[-1]) // (z.shape[-1] // 4) == 2
    slope = jnp.where(is_cell_gate, 1.0 - gates * gates, gates * (1.0 - gates))  # tanh' = 1 - g^2, sigma' = s (1 - s)
    return gates, slope * dz


def gates_on_slices(z: jax.Array) -> jax.Array:
    """[i, f, g, o] after their nonlinearity: sigmoid on the slices [z_i, z_f] and z_o, tanh on z_g."""
    hidden = z.shape[-1] // 4
    i_f = jax.nn.sigmoid(z[..., : 2 * hidden])
    g = jnp.tanh(z[..., 2 * hidden : 3 * hidden])
    return jnp.concatenate([i_f, g, jax.nn.sigmoid(z[..., 3 * hidden :])], axis=-1)


def resolve_gates(gates: LSTMGates) -> LSTMGates:
    """``gates``, with AUTO replaced by the form for the default backend (ONE_TANH on CPU, SLICES elsewhere)."""
    if gates is not LSTMGates.AUTO:
        return gates
    return LSTMGates.ONE_TANH if jax.default_backend() == "cpu" else LSTMGates.SLICES


def activate_gates(z: jax.Array, gates: LSTMGates = LSTMGates.AUTO) -> jax.Array:
    """[i, f, g, o] after their nonlinearity from z = [z_i, z_f, z_g, z_o] ([..., 4H]) in the form ``gates``."""
    return one_tanh_gates(z) if resolve_gates(gates) is LSTMGates.ONE_TANH else gates_on_slices(z)


def gate_sigmoid(gates: LSTMGates) -> Callable[[jax.Array], jax.Array]:
    """sigma for the hand-written rule's forward pass (never differentiated: its backward uses sigma' = s (1 - s)
    from the stored value): (1 + tanh(x / 2)) / 2 for ONE_TANH, a vectorised tanh on XLA CPU where
    ``jax.nn.sigmoid`` is an exponential and a divide; ``jax.nn.sigmoid`` for SLICES."""
    if resolve_gates(gates) is LSTMGates.ONE_TANH:
        return lambda x: 0.5 * jnp.tanh(0.5 * x) + 0.5
    return jax.nn.sigmoid


def _lstm_update(carry: LSTMState, activations: jax.Array) -> LSTMState:
    """c' = f * c + i * g;  h' = o * tanh(c') from the activated gates [i, f, g, o]."""
    i, f, g, o = jnp.split(activations, 4, axis=-1)
    c = f * carry.c + i * g
    return LSTMState(h=o * jnp.tanh(c), c=c)


def _lstm_recur(params, carry, u, gates: LSTMGates):
    new = _lstm_update(carry, activate_gates(u + carry.h @ params["recurrent_kernel"], gates))
    return new, new.h


def _per_gate(array: jax.Array) -> tuple[jax.Array, ...]:
    """The i, f, g, o blocks of the last axis, split once outside the loops."""
    return tuple(jnp.split(array, 4, axis=-1))


def _lstm_forward(inputs: RuleInputs, options: ScanOptions, gates: LSTMGates) -> ForwardPass:
    """One product per gate inside the loop and every residual its own array: a loop body that slices one
    [batch, 4 * hidden] matrix, or concatenates into one, runs as scalar code on XLA CPU (``benchmarks/README.md``)."""
    params = inputs.params
    kernels = _per_gate(params["recurrent_kernel"])
    projections = [input_projection(inputs.xs, kernel, bias, options.hoist_projection)
                   for kernel, bias in zip(_per_gate(params["input_kernel"]), _per_gate(params["bias"]))]  # fmt: skip
    scanned = tuple(projection[0] for projection in projections)
    project = tuple(projection[1] for projection in projections)
    sigmoid = gate_sigmoid(gates)
    squash = (sigmoid, sigmoid, jnp.tanh, sigmoid)

    def step(carry, x):  # z_k = x_t W_k + b_k + h_{t-1} U_k for k = i, f, g, o
        i, f, g, o = (fn(p(x_k) + carry.h @ kernel) for fn, p, x_k, kernel in zip(squash, project, x, kernels))
        c = f * carry.c + i * g
        return LSTMState(h=o * jnp.tanh(c), c=c), (i, f, g, o)

    final, carries, gates = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
    return ForwardPass(mask_outputs(carries.h, inputs.valid), final, LSTMResiduals(carries, *gates))


def _lstm_vjp(inputs: RuleInputs, residuals: LSTMResiduals, cotangents: Cotangents, options: ScanOptions):
    params, carries = inputs.params, residuals.carries
    kernels_t = tuple(materialized_transpose(kernel) for kernel in _per_gate(params["recurrent_kernel"]))
    c_prev = previous(carries.c, inputs.carry0.c)

    def step_back(d_carry, scanned):
        i, f, g, o, c, c_before, d_y = scanned
        tanh_c = jnp.tanh(c)
        d_h = d_carry.h + d_y  # dL/dh_t
        d_c = d_carry.c + d_h * o * (1.0 - tanh_c * tanh_c)  # dL/dc_t
        d_z = (
            d_c * g * i * (1.0 - i),  # dz_i = dc * g * sigma'
            d_c * c_before * f * (1.0 - f),  # dz_f = dc * c_{t-1} * sigma'
            d_c * i * (1.0 - g * g),  # dz_g = dc * i * tanh'
            d_h * tanh_c * o * (1.0 - o),  # dz_o = dh * tanh(c_t) * sigma'
        )
        d_h_prev = sum(d @ kernel_t for d, kernel_t in zip(d_z, kernels_t))  # dL/dh_{t-1} = sum_k dz_k U_k^T
        return LSTMState(h=d_h_prev, c=d_c * f), d_z  # dL/dc_{t-1} = dc * f

    scanned = (residuals.i, residuals.f, residuals.g, residuals.o, carries.c, c_prev, cotangents.ys)
    d_carry0, d_zs = reverse_scan(step_back, cotangents.final, scanned, inputs.valid, options.unroll)
    h_prev = previous(carries.h, inputs.carry0.h)
    joined = lambda parts: jnp.concatenate(parts, axis=-1)  # noqa: E731  (outside the loop: once)
    d_params = {
        "input_kernel": joined([contract(inputs.xs, d) for d in d_zs]),
        "recurrent_kernel": joined([contract(h_prev, d) for d in d_zs]),
        "bias": joined([sum_steps(d) for d in d_zs]),
    }
    d_xs = sum(d @ kernel.T for d, kernel in zip(d_zs, _per_gate(params["input_kernel"])))
    return Gradients(d_params, d_xs, d_carry0)
