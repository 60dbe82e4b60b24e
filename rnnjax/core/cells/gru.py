"""The GRU cell (gates r, z, n in PyTorch order), in the PyTorch and the Cho convention, with its
hand-written BPTT.

[u_r, u_z, u_n] = x_t W + b_i;  [v_r, v_z, v_n] = h_{t-1} U + b_h
r = sigma(u_r + v_r);  z = sigma(u_z + v_z)
PYTORCH: n = tanh(u_n + r * v_n)      CHO: n = tanh(u_n + (r * h_{t-1}) U_n + b_hn)
h_t = (1 - z) * n + z * h_{t-1};  y_t = h_t
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
    gate_blocks,
    kernel_projection,
    rule_sigmoid,
)

GRU_KEYS = frozenset({"input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias"})
GRU_GATE_NAMES = (("reset", Squash.SIGMOID), ("update", Squash.SIGMOID), ("candidate", Squash.TANH))


class GRUConvention(enum.Enum):
    """Where the reset gate acts in the GRU candidate.

    PYTORCH (also cuDNN, Flax ``GRUCell``): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    CHO (Cho et al. 2014, Keras ``reset_after=False``): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).

    Examples:
      >>> from rnnjax import GRUConvention, gru
      >>> gru(GRUConvention.CHO).name, gru("pytorch").name
      ('gru_cho', 'gru_pytorch')
    """

    PYTORCH = "pytorch"
    CHO = "cho"


class GRUResiduals(NamedTuple):
    """Carries after every step ``[time, batch, hidden]``, the gates r, z, n after their nonlinearity (each
    ``[time, batch, hidden]``) and (PYTORCH only) v_n = h_{t-1} U_n + b_hn."""

    hs: jax.Array
    r: jax.Array
    z: jax.Array
    n: jax.Array
    v_n: jax.Array | None = None

    @property
    def gates(self) -> jax.Array:
        """[r, z, n] side by side, ``[time, batch, 3 * hidden]``."""
        return jnp.concatenate([self.r, self.z, self.n], axis=-1)


def gru(
    convention: GRUConvention | str = GRUConvention.PYTORCH,
    *,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
) -> Cell:
    """GRU with gates [r, z, n] (PyTorch order).

    r = sigmoid(x W_r + b_ir + h U_r + b_hr);  z = sigmoid(x W_z + b_iz + h U_z + b_hz)
    PYTORCH: n = tanh(x W_n + b_in + r * (h U_n + b_hn))
    CHO:     n = tanh(x W_n + b_in + (r * h) U_n + b_hn)
    h' = (1 - z) * n + z * h;  y = h'.

    Params: ``input_kernel [input, 3 * hidden]``, ``recurrent_kernel [hidden, 3 * hidden]``,
    ``input_bias`` and ``recurrent_bias [3 * hidden]``; the carry is ``h [hidden]``.

    Args:
      convention: where the reset gate acts (:class:`GRUConvention`; default PYTORCH).
      input_init: initialiser of the input kernel (default LeCun normal).
      recurrent_init: initialiser of the recurrent kernel (default orthogonal per gate block).
      bias_init: initialiser of the bias (default zeros).

    Returns:
      A :class:`~rnnjax.core.cell.Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import gru, rnn
      >>> cell = gru("cho")
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> params["input_kernel"].shape, params["recurrent_kernel"].shape
      ((3, 12), (4, 12))
      >>> ys, h = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, h.shape
      ((2, 5, 4), (2, 4))
    """
    convention = as_enum(GRUConvention, convention, "convention")
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        k_in, k_rec, k_ib, k_rb = jax.random.split(key, 4)
        return {
            "input_kernel": input_init(k_in, (input_size, 3 * hidden_size), dtype),
            "recurrent_kernel": gate_blocks(recurrent_init, k_rec, hidden_size, 3, dtype),
            "input_bias": bias_init(k_ib, (3 * hidden_size,), dtype),
            "recurrent_bias": bias_init(k_rb, (3 * hidden_size,), dtype),
        }

    pytorch = convention is GRUConvention.PYTORCH
    rule = VJPRule(_pytorch_forward, _pytorch_vjp) if pytorch else VJPRule(_cho_forward, _cho_vjp)
    gates = Gates(GRU_GATE_NAMES, lambda inputs: rule.forward(inputs, ScanOptions()).residuals.gates)
    return build_cell(
        f"gru_{convention.value}",
        init,
        kernel_projection("input_bias"),
        _pytorch_recur if pytorch else _cho_recur,
        param_keys=GRU_KEYS,
        vjp_rule=rule,
        gates=gates,
    )


def _pytorch_recur(params, carry, u):
    u_r, u_z, u_n = jnp.split(u, 3, axis=-1)
    v_r, v_z, v_n = jnp.split(carry @ params["recurrent_kernel"] + params["recurrent_bias"], 3, axis=-1)
    r = jax.nn.sigmoid(u_r + v_r)
    z = jax.nn.sigmoid(u_z + v_z)
    n = jnp.tanh(u_n + r * v_n)
    h = (1.0 - z) * n + z * carry
    return h, h


def _cho_recur(params, carry, u):
    hidden = carry.shape[-1]
    kernel, bias = params["recurrent_kernel"], params["recurrent_bias"]
    u_r, u_z, u_n = jnp.split(u, 3, axis=-1)
    v_r, v_z = jnp.split(carry @ kernel[:, : 2 * hidden] + bias[: 2 * hidden], 2, axis=-1)
    r = jax.nn.sigmoid(u_r + v_r)
    z = jax.nn.sigmoid(u_z + v_z)
    n = jnp.tanh(u_n + (r * carry) @ kernel[:, 2 * hidden :] + bias[2 * hidden :])
    h = (1.0 - z) * n + z * carry
    return h, h


# --------------------------------------------------------------------------- BPTT, PyTorch convention


def _per_gate(array: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The r, z, n blocks of the last axis, split once outside the loops."""
    return tuple(jnp.split(array, 3, axis=-1))


def _pytorch_forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass:
    """One product per gate inside the loop and every residual its own array: a loop body that slices one
    [batch, 3 * hidden] matrix, or concatenates into one, runs as scalar code on XLA CPU (``benchmarks/README.md``)."""
    params = inputs.params
    kernels = _per_gate(params["recurrent_kernel"])
    biases = _per_gate(params["input_bias"] + params["recurrent_bias"])  # b_hn stays inside r * (h U_n + b_hn)
    input_biases = (*biases[:2], _per_gate(params["input_bias"])[2])
    b_hn = _per_gate(params["recurrent_bias"])[2]
    projections = [input_projection(inputs.xs, kernel, bias, options.hoist_projection)
                   for kernel, bias in zip(_per_gate(params["input_kernel"]), input_biases)]  # fmt: skip
    scanned = tuple(projection[0] for projection in projections)
    project = tuple(projection[1] for projection in projections)

    def step(h, x):
        u_r, u_z, u_n = (fn(x_g) for fn, x_g in zip(project, x))
        r = rule_sigmoid(u_r + h @ kernels[0])
        z = rule_sigmoid(u_z + h @ kernels[1])
        v_n = h @ kernels[2] + b_hn
        n = jnp.tanh(u_n + r * v_n)
        return n + z * (h - n), (r, z, n, v_n)

    final, hs, (r, z, n, v_n) = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
    return ForwardPass(mask_outputs(hs, inputs.valid), final, GRUResiduals(hs, r, z, n, v_n))


def _pytorch_vjp(inputs: RuleInputs, residuals: GRUResiduals, cotangents: Cotangents, options: ScanOptions):
    params = inputs.params
    kernels_t = tuple(materialized_transpose(kernel) for kernel in _per_gate(params["recurrent_kernel"]))
    h_prev = previous(residuals.hs, inputs.carry0)

    def step_back(d_h, scanned):
        r, z, n, v_n, h_before, d_y = scanned
        d_h = d_h + d_y  # dL/dh_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)  # through n = tanh(a_n), a_n = u_n + r * v_n
        d_ar = d_an * v_n * r * (1.0 - r)
        d_az = d_h * (h_before - n) * z * (1.0 - z)
        d_vn = d_an * r  # dL/dv_n
        d_prev = d_h * z + d_ar @ kernels_t[0] + d_az @ kernels_t[1] + d_vn @ kernels_t[2]
        return d_prev, (d_ar, d_az, d_an, d_vn)

    scanned = (residuals.r, residuals.z, residuals.n, residuals.v_n, h_prev, cotangents.ys)
    d_carry0, (d_ar, d_az, d_an, d_vn) = reverse_scan(
        step_back, cotangents.final, scanned, inputs.valid, options.unroll
    )
    d_us, d_vs = (d_ar, d_az, d_an), (d_ar, d_az, d_vn)  # dL/d[u_r, u_z, u_n], dL/d[v_r, v_z, v_n]
    joined = lambda parts: jnp.concatenate(parts, axis=-1)  # noqa: E731  (outside the loop: once)
    d_params = {
        "input_kernel": joined([contract(inputs.xs, d) for d in d_us]),
        "recurrent_kernel": joined([contract(h_prev, d) for d in d_vs]),
        "input_bias": joined([sum_steps(d) for d in d_us]),
        "recurrent_bias": joined([sum_steps(d) for d in d_vs]),
    }
    input_kernels = _per_gate(params["input_kernel"])
    d_xs = sum(d @ kernel.T for d, kernel in zip(d_us, input_kernels))
    return Gradients(d_params, d_xs, d_carry0)


# --------------------------------------------------------------------------- BPTT, Cho convention


def _cho_forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass:
    params = inputs.params
    hidden = params["recurrent_kernel"].shape[0]
    kernel = params["recurrent_kernel"]
    # Every recurrent bias of the CHO form adds to a pre-activation: fold b_h into the input projection.
    bias = params["input_bias"] + params["recurrent_bias"]
    scanned, project = input_projection(inputs.xs, params["input_kernel"], bias, options.hoist_projection)

    def step(h, x):
        u = project(x)
        r_z = jax.nn.sigmoid(u[:, : 2 * hidden] + h @ kernel[:, : 2 * hidden])
        n = jnp.tanh(u[:, 2 * hidden :] + (r_z[:, :hidden] * h) @ kernel[:, 2 * hidden :])
        z = r_z[:, hidden:]
        return n + z * (h - n), (r_z[:, :hidden], z, n)

    final, hs, (r, z, n) = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
    return ForwardPass(mask_outputs(hs, inputs.valid), final, GRUResiduals(hs, r, z, n))


def _cho_vjp(inputs: RuleInputs, residuals: GRUResiduals, cotangents: Cotangents, options: ScanOptions):
    params = inputs.params
    hidden = params["recurrent_kernel"].shape[0]
    kernel_rz_t = materialized_transpose(params["recurrent_kernel"][:, : 2 * hidden])
    kernel_n_t = materialized_transpose(params["recurrent_kernel"][:, 2 * hidden :])
    h_prev = previous(residuals.hs, inputs.carry0)

    def step_back(d_h, scanned):
        r, z, n, h_before, d_y = scanned
        d_h = d_h + d_y  # dL/dh_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)  # a_n = u_n + (r * h_{t-1}) U_n + b_hn
        d_rh = d_an @ kernel_n_t  # dL/d(r * h_{t-1})
        d_ar = d_rh * h_before * r * (1.0 - r)
        d_az = d_h * (h_before - n) * z * (1.0 - z)
        d_rz = jnp.concatenate([d_ar, d_az], axis=-1)
        d_prev = d_h * z + d_rh * r + d_rz @ kernel_rz_t
        return d_prev, jnp.concatenate([d_rz, d_an], axis=-1)

    scanned = (residuals.r, residuals.z, residuals.n, h_prev, cotangents.ys)
    d_carry0, d_as = reverse_scan(step_back, cotangents.final, scanned, inputs.valid, options.unroll)
    reset_h = residuals.r * h_prev  # r_t * h_{t-1}
    d_kernel = jnp.concatenate(
        [contract(h_prev, d_as[..., : 2 * hidden]), contract(reset_h, d_as[..., 2 * hidden :])], axis=1
    )
    d_bias = sum_steps(d_as)
    d_params = {
        "input_kernel": contract(inputs.xs, d_as),
        "recurrent_kernel": d_kernel,
        "input_bias": d_bias,
        "recurrent_bias": d_bias,
    }
    return Gradients(d_params, d_as @ params["input_kernel"].T, d_carry0)
