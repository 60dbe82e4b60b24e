"""Hand-derived BPTT for the cells without gates: the simple (Elman) RNN and the linear RNN.

Notation (one example, one step; kernels in the ``x @ W`` convention):

simple:  a_t = x_t W + b + h_{t-1} U,   h_t = act(a_t),   y_t = h_t
linear:  h_t = A h_{t-1} + B x_t,       y_t = C h_t + D x_t   (maths convention, see cells.py)

Backward, with g_t = dL/dh_t (everything that reaches h_t from later steps and from y_t):

simple:  g_t = dL/dy_t + dL/dh_t|_{from t+1};   da_t = g_t * act'(a_t);   dL/dh_{t-1} = da_t U^T
         dW = sum_t x_t^T da_t,  dU = sum_t h_{t-1}^T da_t,  db = sum_t da_t,  dx_t = da_t W^T
linear:  g_t = dL/dy_t C + A^T g_{t+1}   (dL/dh_{t-1} = A^T g_t; for a diagonal A it is a * g_t)
         dA = sum_t g_t h_{t-1}^T,  dB = sum_t g_t x_t^T,  dC = sum_t dy_t^T h_t,  dD = sum_t dy_t^T x_t
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
from rnnjax.core.cells import Activation, LinearKind, linear_eigenvalues


def simple_rule(activation: Activation) -> Rule:
    """BPTT of the Elman cell h_t = act(x_t W + b + h_{t-1} U)."""
    if activation is Activation.TANH:
        act, derivative = jnp.tanh, lambda h: 1.0 - h * h
    elif activation is Activation.RELU:
        act, derivative = jax.nn.relu, lambda h: (h > 0).astype(h.dtype)
    else:
        raise ValueError(f"activation must be an Activation; got {activation!r}")

    def forward(params, xs, carry0, valid, unroll):
        kernel = params["recurrent_kernel"]
        inputs, project = input_projection(xs, params["input_kernel"], params["bias"])  # x_t W + b

        def step(h, x):
            return act(project(x) + h @ kernel), None

        final, hs, _ = forward_scan(step, carry0, inputs, valid, unroll)
        return mask_outputs(hs, valid), final, hs

    def backward(params, xs, carry0, hs, d_ys, d_final, valid, unroll):
        kernel_t = materialized_transpose(params["recurrent_kernel"])

        def step_back(d_h, scanned):
            h, d_y = scanned
            d_a = (d_h + d_y) * derivative(h)  # da_t = g_t * act'(a_t), act' read off h_t
            return d_a @ kernel_t, d_a  # dL/dh_{t-1} = da_t U^T

        d_carry0, d_as = reverse_scan(step_back, d_final, (hs, d_ys), valid, unroll)
        d_params = {
            "input_kernel": contract(xs, d_as),
            "recurrent_kernel": contract(previous(hs, carry0), d_as),
            "bias": sum_steps(d_as),
        }
        return d_params, d_as @ params["input_kernel"].T, d_carry0

    return Rule(forward, backward)


def linear_rule(kind: LinearKind) -> Rule:
    """BPTT of the linear cell h_t = A h_{t-1} + B x_t, y_t = C h_t + D x_t (A dense, diagonal or complex)."""
    is_complex = kind is LinearKind.COMPLEX_DIAGONAL

    def transition(params, h):  # A h (forward) ...
        return h @ params["A"].T if kind is LinearKind.DENSE else linear_eigenvalues(params) * h

    def transition_t(params, g):  # ... and A^T g (backward; no conjugate: JAX's cotangent convention)
        return g @ params["A"] if kind is LinearKind.DENSE else linear_eigenvalues(params) * g

    def forward(params, xs, carry0, valid, unroll):
        inputs = xs @ params["B"].T
        if is_complex:
            inputs = inputs + 1j * (xs @ params["B_imag"].T)

        def step(h, u):
            return transition(params, h) + u, None

        final, hs, _ = forward_scan(step, carry0, inputs, valid, unroll)
        ys = hs.real @ params["C"].T + xs @ params["D"].T
        if is_complex:
            ys = ys - hs.imag @ params["C_imag"].T  # y = Re((C + i C') h) + D x
        return mask_outputs(ys, valid), final, hs

    def backward(params, xs, carry0, hs, d_ys, d_final, valid, unroll):
        output_kernel = params["C"] + 1j * params["C_imag"] if is_complex else params["C"]
        from_outputs = d_ys @ output_kernel  # dL/dy_t C for every step at once

        def step_back(g, from_output):
            g = g + from_output  # g_t
            return transition_t(params, g), g  # dL/dh_{t-1} = A^T g_t

        d_carry0, gs = reverse_scan(step_back, d_final, from_outputs, valid, unroll)
        d_params = _linear_state_grads(kind, params, gs, previous(hs, carry0))
        d_params["B"] = contract(gs.real, xs)
        d_params["C"] = contract(d_ys, hs.real)
        d_params["D"] = contract(d_ys, xs)
        d_xs = gs.real @ params["B"] + d_ys @ params["D"]
        if is_complex:
            d_params["B_imag"] = -contract(gs.imag, xs)
            d_params["C_imag"] = -contract(d_ys, hs.imag)
            d_xs = d_xs - gs.imag @ params["B_imag"]
        return d_params, d_xs, d_carry0

    return Rule(forward, backward)


def _linear_state_grads(kind: LinearKind, params, gs: jax.Array, h_prev: jax.Array) -> dict[str, jax.Array]:
    """Gradient of the state-matrix parameters from g_t and h_{t-1}."""
    if kind is LinearKind.DENSE:
        return {"A": contract(gs, h_prev)}  # dA = sum_t g_t h_{t-1}^T
    d_eigenvalues = sum_steps(gs * h_prev)  # d lambda_j = sum_t g_tj h_{t-1,j}
    if kind is LinearKind.DIAGONAL:
        return {"a": d_eigenvalues}
    # lambda = exp(w), w = -exp(log_decay) + i phase; holomorphic steps multiply by the derivative.
    d_w = d_eigenvalues * linear_eigenvalues(params)
    return {"log_decay": -d_w.real * jnp.exp(params["log_decay"]), "phase": -d_w.imag}
