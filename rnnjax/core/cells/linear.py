"""The linear state-space cell h_t = A h_{t-1} + B x_t, y_t = C h_t + D x_t, with its hand-written BPTT
and its linear form for the associative scan.

Backward, with g_t = dL/dh_t (everything that reaches h_t from later steps and from y_t):
    g_t = dL/dy_t C + A^T g_{t+1}   (dL/dh_{t-1} = A^T g_t; for a diagonal A it is a * g_t)
    dA = sum_t g_t h_{t-1}^T,  dB = sum_t g_t x_t^T,  dC = sum_t dy_t^T h_t,  dD = sum_t dy_t^T x_t
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import as_enum, positive_int
from rnnjax.core.bptt.scan import contract, forward_scan, mask_outputs, previous, reverse_scan, sum_steps
from rnnjax.core.cell import (
    Cell,
    Cotangents,
    ForwardPass,
    Gradients,
    Initializer,
    LinearForm,
    Params,
    RuleInputs,
    ScanOptions,
    VJPRule,
)
from rnnjax.core.cells.base import build_cell, check_sizes

_SHARED_KEYS = frozenset({"B", "C", "D"})


class LinearKind(enum.Enum):
    """Parameterisation of the state matrix A of a linear RNN.

    Examples:
      >>> from rnnjax import LinearKind, linear_rnn
      >>> linear_rnn(LinearKind.DIAGONAL).name, linear_rnn("complex_diagonal").name
      ('linear_diagonal', 'linear_complex_diagonal')
    """

    DENSE = "dense"
    DIAGONAL = "diagonal"
    COMPLEX_DIAGONAL = "complex_diagonal"


LINEAR_KEYS = {
    LinearKind.DENSE: _SHARED_KEYS | {"A"},
    LinearKind.DIAGONAL: _SHARED_KEYS | {"a"},
    LinearKind.COMPLEX_DIAGONAL: _SHARED_KEYS | {"log_decay", "phase", "B_imag", "C_imag"},
}


class LinearInit(NamedTuple):
    """Initial spectrum of a linear RNN: |eigenvalues| uniform in [min_radius, max_radius].

    For DENSE, ``A = Q diag(r)`` (Q orthogonal): the radii are A's singular values, so its
    eigenvalues only satisfy |lambda| <= max_radius.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import LinearInit, linear_eigenvalues, linear_rnn
      >>> cell = linear_rnn("diagonal", spectrum=LinearInit(min_radius=0.5, max_radius=0.9))
      >>> radii = jnp.abs(linear_eigenvalues(cell.init(jax.random.key(0), 1, 8)))
      >>> bool(((radii >= 0.5) & (radii <= 0.9)).all())
      True
    """

    min_radius: float = 0.5
    max_radius: float = 0.99
    max_phase: float = 3.141592653589793


DEFAULT_SPECTRUM = LinearInit()


class LinearResiduals(NamedTuple):
    """The (possibly complex) carries after every step, ``[time, batch, hidden]``."""

    hs: jax.Array


def linear_rnn(
    kind: LinearKind | str = LinearKind.DENSE,
    *,
    output_size: int | None = None,
    spectrum: LinearInit = DEFAULT_SPECTRUM,
    input_init: Initializer | None = None,
    output_init: Initializer | None = None,
) -> Cell:
    """Linear state-space cell: h_t = A h_{t-1} + B x_t,  y_t = C h_t + D x_t.

    Parameters are stored in the maths convention (``A: [hidden, hidden]``,
    ``B: [hidden, input]``, ``C: [output, hidden]``, ``D: [output, input]``).

    * DENSE: ``A`` is a full real matrix (initialised as a scaled orthogonal matrix).
    * DIAGONAL: ``A = diag(a)`` with real ``a: [hidden]``.
    * COMPLEX_DIAGONAL: ``A = diag(lambda)``, ``lambda = exp(-exp(log_decay) + i*phase)``
      (LRU parameterisation, |lambda| < 1 always); ``B`` and ``C`` are complex,
      stored as real/imaginary parts; the carry is complex and ``y = Re(C h) + D x``.

    ``output_size`` defaults to ``hidden_size``. The carry is ``h [hidden]`` (complex for COMPLEX_DIAGONAL).

    Args:
      kind: the parameterisation of ``A`` (:class:`LinearKind`; default DENSE).
      output_size: size of ``y`` (default: ``hidden_size``).
      spectrum: the initial eigenvalue radii (and phases) of ``A`` (:class:`LinearInit`).
      input_init: initialiser of ``B`` (default LeCun normal).
      output_init: initialiser of ``C`` (default LeCun normal); ``D`` starts at zero.

    Returns:
      A :class:`~rnnjax.core.cell.Cell`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import linear_rnn, rnn
      >>> cell = linear_rnn("diagonal", output_size=2)
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> {name: value.shape for name, value in sorted(params.items())}
      {'B': (4, 3), 'C': (2, 4), 'D': (2, 3), 'a': (4,)}
      >>> ys, h = rnn(cell, params, jnp.ones((2, 5, 3), jnp.float32))  # [batch, time, input]
      >>> ys.shape, h.shape
      ((2, 5, 2), (2, 4))
    """
    kind = as_enum(LinearKind, kind, "kind")
    if output_size is not None:
        output_size = positive_int("output_size", output_size)
    input_init = input_init or jax.nn.initializers.lecun_normal()
    output_init = output_init or jax.nn.initializers.lecun_normal()
    return build_cell(
        f"linear_{kind.value}",
        _linear_init(kind, output_size, spectrum, input_init, output_init),
        _linear_project,
        _linear_recur,
        _linear_initial_carry,
        param_keys=frozenset(LINEAR_KEYS[kind]),
        hidden_size=lambda params: params["B"].shape[0],
        input_size=lambda params: params["B"].shape[1],
        output_size=lambda params: params["C"].shape[0],
        vjp_rule=linear_rule(kind),
        linear_form=LinearForm(kind is LinearKind.DENSE, linear_coefficients, linear_readout),
    )


def _linear_init(kind: LinearKind, output_size, spectrum: LinearInit, input_init, output_init):
    def init(key, input_size, hidden_size, dtype=jnp.float32):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        out = hidden_size if output_size is None else output_size
        k_a, k_phase, k_b, k_bi, k_c, k_ci, k_d = jax.random.split(key, 7)
        radius = jax.random.uniform(k_a, (hidden_size,), dtype, spectrum.min_radius, spectrum.max_radius)
        params = {
            "B": input_init(k_b, (hidden_size, input_size), dtype),
            "C": output_init(k_c, (out, hidden_size), dtype),
            "D": jnp.zeros((out, input_size), dtype),
        }
        if kind is LinearKind.DENSE:
            q = jax.nn.initializers.orthogonal()(k_phase, (hidden_size, hidden_size), dtype)
            params["A"] = q * radius[None, :]
        elif kind is LinearKind.DIAGONAL:
            params["a"] = radius
        else:
            phase = jax.random.uniform(k_phase, (hidden_size,), dtype, 0.0, spectrum.max_phase)
            params["log_decay"] = jnp.log(-jnp.log(radius))
            params["phase"] = phase
            params["B_imag"] = input_init(k_bi, (hidden_size, input_size), dtype)
            params["C_imag"] = output_init(k_ci, (out, hidden_size), dtype)
        return params

    return init


def _linear_initial_carry(params, batch_shape=()):
    dtype = params["B"].dtype
    if "B_imag" in params:
        dtype = jnp.result_type(dtype, jnp.complex64)
    return jnp.zeros((*tuple(batch_shape), params["B"].shape[0]), dtype)


def _linear_project(params, x):
    """u = (B x, D x), B complex for COMPLEX_DIAGONAL."""
    bx = x @ params["B"].T
    if "B_imag" in params:
        bx = bx + 1j * (x @ params["B_imag"].T)
    return bx, x @ params["D"].T


def _linear_recur(params, carry, u):
    bx, _ = u
    h = transition(params, carry) + bx
    return h, linear_readout(params, h, u)


def transition(params: Params, h: jax.Array) -> jax.Array:
    """A h_{t-1} for any of the three parameterisations (A dense, or diag(eigenvalues))."""
    if "A" in params:
        return h @ params["A"].T
    return linear_eigenvalues(params) * h


def linear_eigenvalues(params: Params) -> jax.Array:
    """Eigenvalues of the state matrix A of a linear cell (complex for DENSE and COMPLEX_DIAGONAL, real for DIAGONAL).

    Args:
      params: the params of a :func:`linear_rnn` cell.

    Returns:
      ``[hidden]`` eigenvalues (complex for DENSE and COMPLEX_DIAGONAL, real for DIAGONAL).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import linear_eigenvalues, linear_rnn
      >>> params = linear_rnn("complex_diagonal").init(jax.random.key(0), 3, 4)
      >>> eigenvalues = linear_eigenvalues(params)
      >>> eigenvalues.shape, bool(jnp.iscomplexobj(eigenvalues)), bool((jnp.abs(eigenvalues) < 1).all())
      ((4,), True, True)
    """
    if "A" in params:
        return jnp.linalg.eigvals(params["A"])
    if "a" in params:
        return params["a"]
    if "log_decay" in params:
        return jnp.exp(-jnp.exp(params["log_decay"]) + 1j * params["phase"])
    raise ValueError(f"params are not those of a linear RNN cell; they have keys {sorted(params)}")


def linear_coefficients(params: Params, u) -> tuple[jax.Array, jax.Array]:
    """(a, b) of h' = a h + b: (A, B x) for DENSE, (eigenvalues, B x) otherwise."""
    bx, _ = u
    if "A" in params:
        return params["A"], bx
    return linear_eigenvalues(params), bx


def linear_readout(params: Params, h: jax.Array, u) -> jax.Array:
    """y = Re(C h) + D x (C complex for COMPLEX_DIAGONAL)."""
    _, dx = u
    if "C_imag" in params:
        return h.real @ params["C"].T - h.imag @ params["C_imag"].T + dx
    return h @ params["C"].T + dx


# --------------------------------------------------------------------------- BPTT


def linear_rule(kind: LinearKind) -> VJPRule:
    """BPTT of the linear cell h_t = A h_{t-1} + B x_t, y_t = C h_t + D x_t (A dense, diagonal or complex)."""
    is_complex = kind is LinearKind.COMPLEX_DIAGONAL

    def transition_t(params, g):  # A^T g (no conjugate: JAX's cotangent convention)
        return g @ params["A"] if kind is LinearKind.DENSE else linear_eigenvalues(params) * g

    def forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass:
        params, xs = inputs.params, inputs.xs
        scanned = xs @ params["B"].T
        if is_complex:
            scanned = scanned + 1j * (xs @ params["B_imag"].T)

        def step(h, u):
            return transition(params, h) + u, None

        final, hs, _ = forward_scan(step, inputs.carry0, scanned, inputs.valid, options.unroll)
        ys = hs.real @ params["C"].T + xs @ params["D"].T
        if is_complex:
            ys = ys - hs.imag @ params["C_imag"].T  # y = Re((C + i C') h) + D x
        return ForwardPass(mask_outputs(ys, inputs.valid), final, LinearResiduals(hs))

    def vjp(inputs: RuleInputs, residuals: LinearResiduals, cotangents: Cotangents, options: ScanOptions):
        params, xs, hs, d_ys = inputs.params, inputs.xs, residuals.hs, cotangents.ys
        output_kernel = params["C"] + 1j * params["C_imag"] if is_complex else params["C"]
        from_outputs = d_ys @ output_kernel  # dL/dy_t C for every step at once

        def step_back(g, from_output):
            g = g + from_output  # g_t
            return transition_t(params, g), g  # dL/dh_{t-1} = A^T g_t

        d_carry0, gs = reverse_scan(step_back, cotangents.final, from_outputs, inputs.valid, options.unroll)
        d_params = _linear_state_grads(kind, params, gs, previous(hs, inputs.carry0))
        d_params["B"] = contract(gs.real, xs)
        d_params["C"] = contract(d_ys, hs.real)
        d_params["D"] = contract(d_ys, xs)
        d_xs = gs.real @ params["B"] + d_ys @ params["D"]
        if is_complex:
            d_params["B_imag"] = -contract(gs.imag, xs)
            d_params["C_imag"] = -contract(d_ys, hs.imag)
            d_xs = d_xs - gs.imag @ params["B_imag"]
        return Gradients(d_params, d_xs, d_carry0)

    return VJPRule(forward, vjp)


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
