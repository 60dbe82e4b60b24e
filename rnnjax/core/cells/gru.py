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

from rnnjax._checks import as_enum
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
)

GRU_KEYS = frozenset({"input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias"})
GRU_GATE_NAMES = (("reset", Squash.SIGMOID), ("update", Squash.SIGMOID), ("candidate", Squash.TANH))


class GRUConvention(enum.Enum):
    """Where the reset gate acts in the GRU candidate.

    PYTORCH (also cuDNN, Flax ``GRUCell``): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    CHO (Cho et al. 2014, Keras ``reset_after=False``): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    """

    PYTORCH = "pytorch"
    CHO = "cho"


class GRUResiduals(NamedTuple):
    """Carries after every step ``[time, batch, hidden]``, the gates [r, z, n] after their
    nonlinearity ``[time, batch, 3 * hidden]`` and (PYTORCH only) v_n = h_{t-1} U_n + b_hn."""

    hs: jax.Array
    gates: jax.Array
    v_n: jax.Array | None = None


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


def _pytorch_forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass:
    params = inputs.params
    hidden = params["recurrent_kernel"].shape[0]
    kernel, bias = params["recurrent_kernel"], params["recurrent_bias"]
    scanned, project = input_projection(
        inputs.xs, params["input_kernel"], params["input_bias"], options.hoist_projection
    )  # [u_r, u_z, u_n]

    def step(h, x):
        u = project(x)
        v = h @ kernel + bias  # [v_r, v_z, v_n]
        r_z = jax.nn.sigmoid(u[:, : 2 * hidden] + v[:, : 2 * hidden])
        n = jnp.tanh(u[:, 2 * hidden :] + r_z[:, :hidden] * v[:, 2 * hidden :])
        z = r_z[:, hidden:]
        return n + z * (h - n), (jnp.concatenate([r_z, n], axis=-1), v[:, 2 * hidden :])

    final, hs, (gates, v_n) = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
    return ForwardPass(mask_outputs(hs, inputs.valid), final, GRUResiduals(hs, gates, v_n))


def _pytorch_vjp(inputs: RuleInputs, residuals: GRUResiduals, cotangents: Cotangents, options: ScanOptions):
    params = inputs.params
    kernel_t = materialized_transpose(params["recurrent_kernel"])
    h_prev = previous(residuals.hs, inputs.carry0)

    def step_back(d_h, scanned):
        gates_t, v_n_t, h_before, d_y = scanned
        r, z, n = jnp.split(gates_t, 3, axis=-1)
        d_h = d_h + d_y  # dL/dh_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)  # through n = tanh(a_n), a_n = u_n + r * v_n
        d_ar = d_an * v_n_t * r * (1.0 - r)
        d_az = d_h * (h_before - n) * z * (1.0 - z)
        d_v = jnp.concatenate([d_ar, d_az, d_an * r], axis=-1)  # dL/d[v_r, v_z, v_n]
        return d_h * z + d_v @ kernel_t, (jnp.concatenate([d_ar, d_az, d_an], axis=-1), d_v)

    scanned = (residuals.gates, residuals.v_n, h_prev, cotangents.ys)
    d_carry0, (d_us, d_vs) = reverse_scan(step_back, cotangents.final, scanned, inputs.valid, options.unroll)
    d_params = {
        "input_kernel": contract(inputs.xs, d_us),
        "recurrent_kernel": contract(h_prev, d_vs),
        "input_bias": sum_steps(d_us),
        "recurrent_bias": sum_steps(d_vs),
    }
    return Gradients(d_params, d_us @ params["input_kernel"].T, d_carry0)


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
        return n + z * (h - n), jnp.concatenate([r_z, n], axis=-1)

    final, hs, gates = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
    return ForwardPass(mask_outputs(hs, inputs.valid), final, GRUResiduals(hs, gates))


def _cho_vjp(inputs: RuleInputs, residuals: GRUResiduals, cotangents: Cotangents, options: ScanOptions):
    params = inputs.params
    hidden = params["recurrent_kernel"].shape[0]
    kernel_rz_t = materialized_transpose(params["recurrent_kernel"][:, : 2 * hidden])
    kernel_n_t = materialized_transpose(params["recurrent_kernel"][:, 2 * hidden :])
    h_prev = previous(residuals.hs, inputs.carry0)

    def step_back(d_h, scanned):
        gates_t, h_before, d_y = scanned
        r, z, n = jnp.split(gates_t, 3, axis=-1)
        d_h = d_h + d_y  # dL/dh_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)  # a_n = u_n + (r * h_{t-1}) U_n + b_hn
        d_rh = d_an @ kernel_n_t  # dL/d(r * h_{t-1})
        d_ar = d_rh * h_before * r * (1.0 - r)
        d_az = d_h * (h_before - n) * z * (1.0 - z)
        d_rz = jnp.concatenate([d_ar, d_az], axis=-1)
        d_prev = d_h * z + d_rh * r + d_rz @ kernel_rz_t
        return d_prev, jnp.concatenate([d_rz, d_an], axis=-1)

    scanned = (residuals.gates, h_prev, cotangents.ys)
    d_carry0, d_as = reverse_scan(step_back, cotangents.final, scanned, inputs.valid, options.unroll)
    reset_h = residuals.gates[..., :hidden] * h_prev  # r_t * h_{t-1}
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
