"""Hand-derived BPTT for the gated cells: LSTM (gates i, f, g, o) and GRU (gates r, z, n).

Notation follows :mod:`rnnjax.core.cells` (one example, one step, ``x @ W`` kernels, sigma = sigmoid):

LSTM:  z_t = x_t W + b + h_{t-1} U = [z_i, z_f, z_g, z_o]
       i, f, o = sigma(z_i, z_f, z_o);  g = tanh(z_g)
       c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  y_t = h_t

GRU:   [u_r, u_z, u_n] = x_t W + b_i;  [v_r, v_z, v_n] = h_{t-1} U + b_h
       r = sigma(u_r + v_r);  z = sigma(u_z + v_z)
       PYTORCH: n = tanh(u_n + r * v_n)      CHO: n = tanh(u_n + (r * h_{t-1}) U_n + b_hn)
       h_t = (1 - z) * n + z * h_{t-1};  y_t = h_t

The forward pass stores only the gates after their nonlinearity and the carries; the
backward pass is a reverse scan with one fused [*, 4H] (LSTM) or [*, 3H] (GRU) matrix
product per step, and every weight gradient is one big product over all steps afterwards.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.core.bptt.scan import (
    Rule,
    contract,
    forward_scan,
    input_projection,
    mask_outputs,
    materialized_transpose,
    previous,
    reverse_scan,
    sum_steps,
)
from rnnjax.core.cells import GRUConvention, LSTMState

# --------------------------------------------------------------------------- LSTM


def _lstm_forward(params, xs, carry0, valid, unroll):
    hidden = params["recurrent_kernel"].shape[0]
    kernel = params["recurrent_kernel"]
    inputs, project = input_projection(xs, params["input_kernel"], params["bias"])  # x_t W + b

    def step(carry, x):
        z = project(x) + carry.h @ kernel
        i_f = jax.nn.sigmoid(z[:, : 2 * hidden])
        g = jnp.tanh(z[:, 2 * hidden : 3 * hidden])
        o = jax.nn.sigmoid(z[:, 3 * hidden :])
        c = i_f[:, hidden:] * carry.c + i_f[:, :hidden] * g
        h = o * jnp.tanh(c)
        return LSTMState(h, c), jnp.concatenate([i_f, g, o], axis=-1)

    final, carries, gates = forward_scan(step, carry0, inputs, valid, unroll)
    return mask_outputs(carries.h, valid), final, (carries, gates)


def _lstm_backward(params, xs, carry0, residuals, d_ys, d_final, valid, unroll):
    carries, gates = residuals
    kernel_t = materialized_transpose(params["recurrent_kernel"])
    c_prev = previous(carries.c, carry0.c)

    def step_back(d_carry, scanned):
        gates_t, c, c_before, d_y = scanned
        i, f, g, o = jnp.split(gates_t, 4, axis=-1)
        tanh_c = jnp.tanh(c)
        d_h = d_carry.h + d_y  # dL/dh_t
        d_c = d_carry.c + d_h * o * (1.0 - tanh_c * tanh_c)  # dL/dc_t
        d_z = jnp.concatenate(
            [
                d_c * g * i * (1.0 - i),  # dz_i = dc * g * sigma'
                d_c * c_before * f * (1.0 - f),  # dz_f = dc * c_{t-1} * sigma'
                d_c * i * (1.0 - g * g),  # dz_g = dc * i * tanh'
                d_h * tanh_c * o * (1.0 - o),  # dz_o = dh * tanh(c_t) * sigma'
            ],
            axis=-1,
        )
        return LSTMState(h=d_z @ kernel_t, c=d_c * f), d_z  # dL/dh_{t-1} = dz U^T, dL/dc_{t-1} = dc * f

    d_carry0, d_zs = reverse_scan(step_back, d_final, (gates, carries.c, c_prev, d_ys), valid, unroll)
    d_params = {
        "input_kernel": contract(xs, d_zs),
        "recurrent_kernel": contract(previous(carries.h, carry0.h), d_zs),
        "bias": sum_steps(d_zs),
    }
    return d_params, d_zs @ params["input_kernel"].T, d_carry0


LSTM_RULE = Rule(_lstm_forward, _lstm_backward)


# --------------------------------------------------------------------------- GRU


def gru_rule(convention: GRUConvention) -> Rule:
    """BPTT of the GRU in either convention (see :class:`rnnjax.core.cells.GRUConvention`)."""
    if convention is GRUConvention.PYTORCH:
        return Rule(_gru_forward_pytorch, _gru_backward_pytorch)
    if convention is GRUConvention.CHO:
        return Rule(_gru_forward_cho, _gru_backward_cho)
    raise ValueError(f"convention must be a GRUConvention; got {convention!r}")


def _gru_forward_pytorch(params, xs, carry0, valid, unroll):
    hidden = params["recurrent_kernel"].shape[0]
    kernel, bias = params["recurrent_kernel"], params["recurrent_bias"]
    inputs, project = input_projection(xs, params["input_kernel"], params["input_bias"])  # [u_r, u_z, u_n]

    def step(h, x):
        u = project(x)
        v = h @ kernel + bias  # [v_r, v_z, v_n]
        r_z = jax.nn.sigmoid(u[:, : 2 * hidden] + v[:, : 2 * hidden])
        n = jnp.tanh(u[:, 2 * hidden :] + r_z[:, :hidden] * v[:, 2 * hidden :])
        z = r_z[:, hidden:]
        return n + z * (h - n), (jnp.concatenate([r_z, n], axis=-1), v[:, 2 * hidden :])

    final, hs, (gates, v_n) = forward_scan(step, carry0, inputs, valid, unroll)
    return mask_outputs(hs, valid), final, (hs, gates, v_n)


def _gru_backward_pytorch(params, xs, carry0, residuals, d_ys, d_final, valid, unroll):
    hs, gates, v_n = residuals
    kernel_t = materialized_transpose(params["recurrent_kernel"])
    h_prev = previous(hs, carry0)

    def step_back(d_h, scanned):
        gates_t, v_n_t, h_before, d_y = scanned
        r, z, n = jnp.split(gates_t, 3, axis=-1)
        d_h = d_h + d_y  # dL/dh_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)  # through n = tanh(a_n), a_n = u_n + r * v_n
        d_ar = d_an * v_n_t * r * (1.0 - r)
        d_az = d_h * (h_before - n) * z * (1.0 - z)
        d_v = jnp.concatenate([d_ar, d_az, d_an * r], axis=-1)  # dL/d[v_r, v_z, v_n]
        return d_h * z + d_v @ kernel_t, (jnp.concatenate([d_ar, d_az, d_an], axis=-1), d_v)

    d_carry0, (d_us, d_vs) = reverse_scan(step_back, d_final, (gates, v_n, h_prev, d_ys), valid, unroll)
    d_params = {
        "input_kernel": contract(xs, d_us),
        "recurrent_kernel": contract(h_prev, d_vs),
        "input_bias": sum_steps(d_us),
        "recurrent_bias": sum_steps(d_vs),
    }
    return d_params, d_us @ params["input_kernel"].T, d_carry0


def _gru_forward_cho(params, xs, carry0, valid, unroll):
    hidden = params["recurrent_kernel"].shape[0]
    kernel = params["recurrent_kernel"]
    # Every recurrent bias of the CHO form adds to a pre-activation: fold b_h into the input projection.
    inputs, project = input_projection(xs, params["input_kernel"], params["input_bias"] + params["recurrent_bias"])

    def step(h, x):
        u = project(x)
        r_z = jax.nn.sigmoid(u[:, : 2 * hidden] + h @ kernel[:, : 2 * hidden])
        n = jnp.tanh(u[:, 2 * hidden :] + (r_z[:, :hidden] * h) @ kernel[:, 2 * hidden :])
        z = r_z[:, hidden:]
        return n + z * (h - n), jnp.concatenate([r_z, n], axis=-1)

    final, hs, gates = forward_scan(step, carry0, inputs, valid, unroll)
    return mask_outputs(hs, valid), final, (hs, gates)


def _gru_backward_cho(params, xs, carry0, residuals, d_ys, d_final, valid, unroll):
    hs, gates = residuals
    hidden = params["recurrent_kernel"].shape[0]
    kernel_rz_t = materialized_transpose(params["recurrent_kernel"][:, : 2 * hidden])
    kernel_n_t = materialized_transpose(params["recurrent_kernel"][:, 2 * hidden :])
    h_prev = previous(hs, carry0)

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

    d_carry0, d_as = reverse_scan(step_back, d_final, (gates, h_prev, d_ys), valid, unroll)
    reset_h = gates[..., :hidden] * h_prev  # r_t * h_{t-1}
    d_kernel = jnp.concatenate(
        [contract(h_prev, d_as[..., : 2 * hidden]), contract(reset_h, d_as[..., 2 * hidden :])], axis=1
    )
    d_bias = sum_steps(d_as)
    d_params = {
        "input_kernel": contract(xs, d_as),
        "recurrent_kernel": d_kernel,
        "input_bias": d_bias,
        "recurrent_bias": d_bias,
    }
    return d_params, d_as @ params["input_kernel"].T, d_carry0
