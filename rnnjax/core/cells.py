"""Recurrent cells as pure functions.

A cell handles ONE example and ONE time step; scanning over time and batching
over examples live in :mod:`rnnjax.core.unroll`. Every cell is a :class:`Cell`, a
NamedTuple of pure functions (like ``optax.GradientTransformation``):

    params = cell.init(key, input_size, hidden_size)     # plain dict pytree
    carry = cell.initial_carry(params)                   # zeros, [hidden]
    carry, y = cell.step(params, carry, x)               # x: [input]

``step`` is split into an affine input ``project`` (no dependence on the
carry, so it can be hoisted out of the time loop as one big matrix product)
and the recurrent part ``recur``:  ``step(p, c, x) == recur(p, c, project(p, x))``.

Kernels follow the ``x @ W`` convention: an input kernel has shape
``[input, gates * hidden]`` and a recurrent kernel ``[hidden, gates * hidden]``.
Gate order follows PyTorch (LSTM: i, f, g, o; GRU: r, z, n) so weights import
without permutation.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]


class LSTMState(NamedTuple):
    """Carry of an LSTM: hidden state ``h`` and memory cell ``c``, each [hidden]."""

    h: jax.Array
    c: jax.Array


class Cell(NamedTuple):
    """A recurrent cell: a bundle of pure functions (see module docstring).

    Attributes:
      name: short identifier ("simple", "lstm", "gru", "linear", ...).
      init: ``init(key, input_size, hidden_size, dtype=float32) -> params``.
      initial_carry: ``initial_carry(params, batch_shape=()) -> carry`` of zeros.
      project: ``project(params, x) -> u``, the carry-independent affine part.
      recur: ``recur(params, carry, u) -> (carry, y)``.
      step: ``step(params, carry, x) -> (carry, y)``, i.e. recur after project.
      hidden_size: ``hidden_size(params) -> int`` read off parameter shapes.
      input_size: ``input_size(params) -> int`` read off parameter shapes.
      output_size: ``output_size(params) -> int``, the size of ``y``.
    """

    name: str
    init: Callable[..., Params]
    initial_carry: Callable[..., Any]
    project: Callable[[Params, jax.Array], Any]
    recur: Callable[[Params, Any, Any], tuple[Any, jax.Array]]
    step: Callable[[Params, Any, jax.Array], tuple[Any, jax.Array]]
    hidden_size: Callable[[Params], int]
    input_size: Callable[[Params], int]
    output_size: Callable[[Params], int]


class Activation(enum.Enum):
    TANH = "tanh"
    RELU = "relu"


class GRUConvention(enum.Enum):
    """Where the reset gate acts in the GRU candidate.

    PYTORCH (also cuDNN, Flax ``GRUCell``): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    CHO (Cho et al. 2014, Keras ``reset_after=False``): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    """

    PYTORCH = "pytorch"
    CHO = "cho"


class LinearKind(enum.Enum):
    """Parameterisation of the state matrix A of a linear RNN."""

    DENSE = "dense"
    DIAGONAL = "diagonal"
    COMPLEX_DIAGONAL = "complex_diagonal"


def _enum(enum_type: type[enum.Enum], value: Any, argument: str) -> Any:
    """Accept an enum member or its string value; raise a clear error otherwise."""
    if isinstance(value, enum_type):
        return value
    for member in enum_type:
        if value == member.value:
            return member
    allowed = ", ".join(repr(member.value) for member in enum_type)
    raise ValueError(f"{argument} must be one of {allowed}; got {value!r}")


def _check_sizes(input_size: Any, hidden_size: Any) -> None:
    for argument, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{argument} must be a positive Python int; got {value!r}")


def default_input_init() -> Initializer:
    """Scaled input kernel: truncated normal with variance 1 / fan_in (LeCun)."""
    return jax.nn.initializers.lecun_normal()


def default_recurrent_init() -> Initializer:
    """Orthogonal recurrent kernel, applied per gate block."""
    return jax.nn.initializers.orthogonal()


def _gate_blocks(init: Initializer, key: jax.Array, hidden_size: int, gates: int, dtype: Any) -> jax.Array:
    """A [hidden, gates*hidden] recurrent kernel made of `gates` independently initialised blocks."""
    keys = jax.random.split(key, gates)
    return jnp.concatenate([init(k, (hidden_size, hidden_size), dtype) for k in keys], axis=1)


def _zeros_carry(params: Params, batch_shape: tuple[int, ...], key: str = "recurrent_kernel") -> jax.Array:
    kernel = params[key]
    return jnp.zeros((*batch_shape, kernel.shape[0]), kernel.dtype)


# --------------------------------------------------------------------------- simple RNN


def simple_rnn(
    activation: Activation | str = Activation.TANH,
    *,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
) -> Cell:
    """Elman cell: h_t = act(x_t W + h_{t-1} U + b), y_t = h_t."""
    activation = _enum(Activation, activation, "activation")
    act = jnp.tanh if activation is Activation.TANH else jax.nn.relu
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        k_in, k_rec, k_bias = jax.random.split(key, 3)
        return {
            "input_kernel": input_init(k_in, (input_size, hidden_size), dtype),
            "recurrent_kernel": recurrent_init(k_rec, (hidden_size, hidden_size), dtype),
            "bias": bias_init(k_bias, (hidden_size,), dtype),
        }

    def project(params, x):
        return x @ params["input_kernel"] + params["bias"]

    def recur(params, carry, u):
        h = act(u + carry @ params["recurrent_kernel"])
        return h, h

    return _make_cell(f"simple_{activation.value}", init, project, recur, _zeros_carry)


# --------------------------------------------------------------------------- LSTM


def lstm(
    *,
    forget_bias: float = 1.0,
    input_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
) -> Cell:
    """LSTM with one fused [i, f, g, o] matmul.

    z = x W + h U + b;  i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c' = f * c + i * g;  h' = o * tanh(c');  y = h'.
    ``forget_bias`` is added to the forget-gate block of the initial bias.
    """
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        k_in, k_rec, k_bias = jax.random.split(key, 3)
        bias = bias_init(k_bias, (4 * hidden_size,), dtype)
        bias = bias.at[hidden_size : 2 * hidden_size].add(jnp.asarray(forget_bias, dtype))
        return {
            "input_kernel": input_init(k_in, (input_size, 4 * hidden_size), dtype),
            "recurrent_kernel": _gate_blocks(recurrent_init, k_rec, hidden_size, 4, dtype),
            "bias": bias,
        }

    def initial_carry(params, batch_shape=()):
        zeros = _zeros_carry(params, batch_shape)
        return LSTMState(h=zeros, c=zeros)

    def project(params, x):
        return x @ params["input_kernel"] + params["bias"]

    def recur(params, carry, u):
        z = u + carry.h @ params["recurrent_kernel"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return LSTMState(h=h, c=c), h

    return _make_cell("lstm", init, project, recur, initial_carry)


# --------------------------------------------------------------------------- GRU


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
    convention = _enum(GRUConvention, convention, "convention")
    input_init = input_init or default_input_init()
    recurrent_init = recurrent_init or default_recurrent_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        k_in, k_rec, k_ib, k_rb = jax.random.split(key, 4)
        return {
            "input_kernel": input_init(k_in, (input_size, 3 * hidden_size), dtype),
            "recurrent_kernel": _gate_blocks(recurrent_init, k_rec, hidden_size, 3, dtype),
            "input_bias": bias_init(k_ib, (3 * hidden_size,), dtype),
            "recurrent_bias": bias_init(k_rb, (3 * hidden_size,), dtype),
        }

    def project(params, x):
        return x @ params["input_kernel"] + params["input_bias"]

    def recur(params, carry, u):
        hidden = carry.shape[-1]
        kernel, bias = params["recurrent_kernel"], params["recurrent_bias"]
        u_r, u_z, u_n = jnp.split(u, 3, axis=-1)
        if convention is GRUConvention.PYTORCH:
            v_r, v_z, v_n = jnp.split(carry @ kernel + bias, 3, axis=-1)
            r = jax.nn.sigmoid(u_r + v_r)
            z = jax.nn.sigmoid(u_z + v_z)
            n = jnp.tanh(u_n + r * v_n)
        else:
            v_rz = carry @ kernel[:, : 2 * hidden] + bias[: 2 * hidden]
            v_r, v_z = jnp.split(v_rz, 2, axis=-1)
            r = jax.nn.sigmoid(u_r + v_r)
            z = jax.nn.sigmoid(u_z + v_z)
            n = jnp.tanh(u_n + (r * carry) @ kernel[:, 2 * hidden :] + bias[2 * hidden :])
        h = (1.0 - z) * n + z * carry
        return h, h

    return _make_cell(f"gru_{convention.value}", init, project, recur, _zeros_carry)


# --------------------------------------------------------------------------- linear RNN


class LinearInit(NamedTuple):
    """Initial spectrum of a linear RNN: |eigenvalues| uniform in [min_radius, max_radius].

    For DENSE, ``A = Q diag(r)`` (Q orthogonal): the radii are A's singular values, so its
    eigenvalues only satisfy |lambda| <= max_radius.
    """

    min_radius: float = 0.5
    max_radius: float = 0.99
    max_phase: float = 3.141592653589793


DEFAULT_SPECTRUM = LinearInit()


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

    ``output_size`` defaults to ``hidden_size``.
    """
    kind = _enum(LinearKind, kind, "kind")
    input_init = input_init or jax.nn.initializers.lecun_normal()
    output_init = output_init or jax.nn.initializers.lecun_normal()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        out = hidden_size if output_size is None else output_size
        _check_sizes(input_size, out)
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

    def initial_carry(params, batch_shape=()):
        hidden = params["B"].shape[0]
        dtype = params["B"].dtype
        if kind is LinearKind.COMPLEX_DIAGONAL:
            dtype = jnp.result_type(dtype, jnp.complex64)
        return jnp.zeros((*batch_shape, hidden), dtype)

    def project(params, x):
        bx = x @ params["B"].T
        if kind is LinearKind.COMPLEX_DIAGONAL:
            bx = bx + 1j * (x @ params["B_imag"].T)
        return bx, x @ params["D"].T

    def recur(params, carry, u):
        bx, dx = u
        h = transition(params, carry) + bx
        if kind is LinearKind.COMPLEX_DIAGONAL:
            y = h.real @ params["C"].T - h.imag @ params["C_imag"].T
        else:
            y = h @ params["C"].T
        return h, y + dx

    def transition(params, h):
        if kind is LinearKind.DENSE:
            return h @ params["A"].T
        return linear_eigenvalues(params) * h

    return _make_cell(
        f"linear_{kind.value}",
        init,
        project,
        recur,
        initial_carry,
        hidden_size=lambda params: params["B"].shape[0],
        input_size=lambda params: params["B"].shape[1],
        output_size=lambda params: params["C"].shape[0],
    )


def linear_eigenvalues(params: Params) -> jax.Array:
    """Eigenvalues of the state matrix A of a linear cell (complex for COMPLEX_DIAGONAL)."""
    if "A" in params:
        return jnp.linalg.eigvals(params["A"])
    if "a" in params:
        return params["a"]
    if "log_decay" in params:
        return jnp.exp(-jnp.exp(params["log_decay"]) + 1j * params["phase"])
    raise ValueError(f"params are not those of a linear RNN cell; they have keys {sorted(params)}")


# --------------------------------------------------------------------------- helpers


def _make_cell(
    name,
    init,
    project,
    recur,
    initial_carry,
    *,
    hidden_size=lambda params: params["recurrent_kernel"].shape[0],
    input_size=lambda params: params["input_kernel"].shape[0],
    output_size=None,
) -> Cell:
    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    if initial_carry is _zeros_carry:

        def initial_carry(params, batch_shape=()):  # noqa: F811 - plain zero carry
            return _zeros_carry(params, tuple(batch_shape))

    return Cell(
        name=name,
        init=init,
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        hidden_size=hidden_size,
        input_size=input_size,
        output_size=output_size or hidden_size,
    )


CELL_NAMES = (
    "simple_tanh",
    "simple_relu",
    "lstm",
    "gru_pytorch",
    "gru_cho",
    "linear_dense",
    "linear_diagonal",
    "linear_complex_diagonal",
)
"""One canonical name per cell kind that :func:`make_cell` builds (it also takes a few aliases)."""


def make_cell(name: str, **options: Any) -> Cell:
    """Build a cell from its name: 'simple_tanh', 'simple_relu', 'lstm', 'gru', 'gru_cho',
    'linear' (dense), 'linear_diagonal', 'linear_complex_diagonal'."""
    builders: dict[str, Callable[[], Cell]] = {
        "simple": lambda: simple_rnn(Activation.TANH, **options),
        "simple_tanh": lambda: simple_rnn(Activation.TANH, **options),
        "simple_relu": lambda: simple_rnn(Activation.RELU, **options),
        "lstm": lambda: lstm(**options),
        "gru": lambda: gru(GRUConvention.PYTORCH, **options),
        "gru_pytorch": lambda: gru(GRUConvention.PYTORCH, **options),
        "gru_cho": lambda: gru(GRUConvention.CHO, **options),
        "linear": lambda: linear_rnn(LinearKind.DENSE, **options),
        "linear_dense": lambda: linear_rnn(LinearKind.DENSE, **options),
        "linear_diagonal": lambda: linear_rnn(LinearKind.DIAGONAL, **options),
        "linear_complex_diagonal": lambda: linear_rnn(LinearKind.COMPLEX_DIAGONAL, **options),
    }
    if name not in builders:
        raise ValueError(f"name must be one of {sorted(builders)}; got {name!r}")
    return builders[name]()
