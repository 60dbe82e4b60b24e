"""Targets for the universal-approximation probe: seeded sequence-to-sequence maps with metadata.

A :class:`Target` is a pure function of ONE input sequence ``fn(xs: [time, input]) -> ys: [time, output]``
plus what theory needs to know about it (causal? fading memory? time-invariant? linear?). Data is drawn
on device by :func:`sample`: inputs from the target's :class:`InputKind`, outputs ``vmap(fn)(xs)``.

Define your own in a few lines::

    square_lag = Target("square_lag", lambda xs: xs[:, :1] * jnp.roll(xs, 3, axis=0) ...)   # any function
    smooth = kernel_target("smooth", jnp.array([0.5, 0.3, 0.2]))                            # a linear kernel

Linear kernels use the lag convention ``y_t = sum_s rho(s) x_{t-s}`` with ``s = min_lag, ..., min_lag + L - 1``;
a negative ``min_lag`` puts taps in the future (non-causal). Inputs before 0 and after T-1 are zero.
"""

from __future__ import annotations

import dataclasses
import enum
import fractions
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments
from rnnjax.core.cells import simple_rnn


class InputKind(enum.Enum):
    """Distribution of the i.i.d. input entries (all zero mean, unit variance)."""

    GAUSSIAN = "gaussian"
    SIGNS = "signs"  # +1 / -1 with probability 1/2 each


@dataclasses.dataclass(frozen=True)
class Target:
    """A sequence map ``fn: [time, input] -> [time, output]`` (for one example) and its properties.

    Attributes:
      name: identifier used in results tables.
      fn: the map on one input sequence; vmapped by :func:`sample`.
      input_size, output_size: feature sizes.
      causal: y_t depends only on x_0..x_t.
      fading_memory: the influence of x_{t-s} on y_t vanishes as s grows.
      time_invariant: shifting the input shifts the output (away from the edges).
      linear: fn is linear in xs (enables :mod:`rnnjax.probes.theory`).
      many_to_one: only the value at the last step is a label (the many-to-one counterpart).
      input_kind: distribution of the inputs.
      kernel: for linear time-invariant scalar targets, the taps rho(min_lag), rho(min_lag+1), ... (numpy).
      min_lag: lag of kernel[0].
      length_ratio: output length / input length (1 for aligned maps; 1/2 for pooling); see :meth:`output_length`.
      singular_values: for linear operator targets, ``singular_values(length)`` gives the operator's known
        spectrum (numpy, descending); None otherwise.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    input_size: int = 1
    output_size: int = 1
    causal: bool = True
    fading_memory: bool = True
    time_invariant: bool = True
    linear: bool = False
    many_to_one: bool = False
    input_kind: InputKind = InputKind.GAUSSIAN
    kernel: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)
    min_lag: int = 0
    length_ratio: fractions.Fraction = fractions.Fraction(1)
    singular_values: Callable[[int], np.ndarray] | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        for argument in ("input_size", "output_size"):
            arguments.positive_int(argument, getattr(self, argument))
        object.__setattr__(self, "input_kind", InputKind(self.input_kind))
        ratio = fractions.Fraction(self.length_ratio)
        if ratio <= 0:
            raise ValueError(f"length_ratio must be a positive fraction; got {self.length_ratio!r}")
        object.__setattr__(self, "length_ratio", ratio)

    @property
    def aligned(self) -> bool:
        """One output per input step (the classic many-to-many setting)."""
        return self.length_ratio == 1

    def output_length(self, length: int) -> int:
        """M = length_ratio * N, the number of output steps for ``length`` input steps."""
        outputs = self.length_ratio * length
        if outputs.denominator != 1 or outputs < 1:
            raise ValueError(
                f"length must make length_ratio * length a positive int for target {self.name!r} "
                f"(length_ratio {self.length_ratio}); got length {length!r}"
            )
        return int(outputs)


def sample_inputs(target: Target, key: jax.Array, batch: int, length: int, dtype=jnp.float32) -> jax.Array:
    """i.i.d. zero-mean unit-variance inputs [batch, length, input] of the target's kind."""
    shape = (batch, length, target.input_size)
    if target.input_kind is InputKind.GAUSSIAN:
        return jax.random.normal(key, shape, dtype)
    if target.input_kind is InputKind.SIGNS:
        return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(dtype)
    raise ValueError(f"input_kind must be an InputKind; got {target.input_kind!r}")


def sample(target: Target, key: jax.Array, batch: int, length: int, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Draw (xs [batch, length, input], ys [batch, length, output]); deterministic in ``key``."""
    arguments.positive_int("length", length)
    arguments.positive_int("batch", batch)
    target.output_length(length)  # validates the length
    xs = sample_inputs(target, key, batch, length, dtype)
    ys = jax.vmap(target.fn)(xs).astype(dtype)
    return xs, ys


FAMILY_FIELDS = ("input_size", "output_size", "many_to_one", "input_kind", "length_ratio")
"""What targets trained in one compiled program (one family) must agree on."""


def check_family(family) -> Target:
    """Targets trained in one program must agree on :data:`FAMILY_FIELDS`; returns the first."""
    family = tuple(family)
    if not family:
        raise ValueError("targets must name at least one target; got none")
    first = family[0]
    for target in family[1:]:
        for field in FAMILY_FIELDS:
            if getattr(target, field) != getattr(first, field):
                raise ValueError(
                    f"targets in one sweep must share {field}: {first.name!r} has {getattr(first, field)!r}, "
                    f"{target.name!r} has {getattr(target, field)!r}"
                )
    return first


def sample_family(family, index: jax.Array, key: jax.Array, batch: int, length: int, dtype):
    """Like :func:`sample` for family[index], with a traced ``index`` (one ``lax.switch`` branch per target)."""
    xs = sample_inputs(family[0], key, batch, length, dtype)
    if len(family) == 1:
        return xs, jax.vmap(family[0].fn)(xs).astype(dtype)
    branches = [lambda xs, fn=target.fn: jax.vmap(fn)(xs).astype(dtype) for target in family]
    return xs, jax.lax.switch(index, branches, xs)


def as_many_to_one(target: Target) -> Target:
    """The many-to-one counterpart: the same map, labelled only at the last step (a causal map of the sequence)."""
    if not target.aligned:
        raise ValueError(f"target must be aligned (length_ratio 1) for a many-to-one counterpart; "
                         f"{target.name!r} has length_ratio {target.length_ratio}")  # fmt: skip
    return dataclasses.replace(target, name=f"{target.name}@last", many_to_one=True, causal=True)


# --------------------------------------------------------------------------- linear kernels


TOEPLITZ_MAX_LENGTH = 2048  # apply_kernel: longest sequence computed with a [time, time] Toeplitz matrix


def apply_kernel(kernel: jax.Array, min_lag: int, xs: jax.Array) -> jax.Array:
    """y_t = sum_k kernel[k] x_{t - min_lag - k} on one sequence xs [time, 1] -> [time, 1] (zero outside).

    Computed as a product with the [time, time] Toeplitz matrix of the taps: under vmap it is one matrix
    product, where ``jnp.convolve`` lowers to an XLA convolution that runs as a slow loop on CPU in float64
    (the default main job's study 3 spent 6.6 of its 14.6 s per group in it). The matrix is quadratic in the
    length, so beyond :data:`TOEPLITZ_MAX_LENGTH` steps the convolution is used.
    """
    length = xs.shape[0]
    if length > TOEPLITZ_MAX_LENGTH:
        full = jnp.convolve(xs[:, 0], kernel.astype(xs.dtype), mode="full")  # full[n] = sum_k kernel[k] x[n-k]
        padded = jnp.pad(full, (max(0, min_lag), max(0, -min_lag)))
        start = max(0, min_lag) - min_lag  # padded[start + t] = full[t - min_lag]
        return padded[start : start + length, None]
    lag = jnp.arange(length)[:, None] - jnp.arange(length)[None, :] - min_lag  # toeplitz[t, s] = kernel[t - s - m]
    inside = (lag >= 0) & (lag < kernel.shape[0])
    toeplitz = jnp.where(inside, kernel.astype(xs.dtype)[jnp.clip(lag, 0, kernel.shape[0] - 1)], 0)
    return toeplitz @ xs


def kernel_target(name: str, kernel, min_lag: int = 0, **metadata) -> Target:
    """Linear time-invariant scalar target y_t = sum_s rho(s) x_{t-s} from taps rho(min_lag), rho(min_lag + 1), ..."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 1 or kernel.size == 0:
        raise ValueError(f"kernel must be a non-empty 1-D array of taps; got shape {kernel.shape}")
    taps = jnp.asarray(kernel)
    metadata.setdefault("causal", min_lag >= 0)
    fn = lambda xs: apply_kernel(taps, min_lag, xs)  # noqa: E731
    return Target(name, fn, linear=True, kernel=kernel, min_lag=min_lag, **metadata)


def exponential_kernel(rate: float = 0.8, support: int = 256) -> np.ndarray:
    """rho(s) = rate^s (state-space order 1)."""
    return rate ** np.arange(support, dtype=np.float64)


def power_law_kernel(exponent: float = 0.5, support: int = 256) -> np.ndarray:
    """rho(s) = (1 + s)^-(1 + exponent): slowly decaying memory, infinite state-space order."""
    return (1.0 + np.arange(support, dtype=np.float64)) ** -(1.0 + exponent)


def bump_kernel(lag: int = 16, width: float = 2.0, support: int = 256) -> np.ndarray:
    """rho(s) = exp(-(s - lag)^2 / (2 width^2)): a Gaussian bump of memory at a distant lag."""
    s = np.arange(support, dtype=np.float64)
    return np.exp(-((s - lag) ** 2) / (2.0 * width**2))


def oscillator_kernel(radii, frequencies, support: int = 256) -> np.ndarray:
    """rho(s) = sum_j r_j^s cos(w_j s): state-space order 2 per oscillator with w_j in (0, pi) (1 if w_j = 0)."""
    s = np.arange(support, dtype=np.float64)[:, None]
    return np.sum(np.asarray(radii, np.float64) ** s * np.cos(np.asarray(frequencies, np.float64) * s), axis=1)


def state_space_order(kernel: np.ndarray, tol: float = 1e-9) -> int:
    """Numerical rank of the Hankel matrix [rho(i + j)] (the minimal width of a linear RNN with y = C h)."""
    n = kernel.size
    padded = np.concatenate([kernel, np.zeros(n)])
    hankel = padded[np.arange(n)[:, None] + np.arange(n)[None, :]]
    sv = np.linalg.svd(hankel, compute_uv=False)
    return int(np.sum(sv > tol * sv[0]))


def delay(lag: int) -> Target:
    """y_t = x_{t - lag} (copy with delay): state-space order lag + 1 with y = C h."""
    return kernel_target(f"delay{lag}", np.eye(1, lag + 1, lag)[0])


def delay_line(max_lag: int) -> Target:
    """All lags at once: y_t = (x_t, x_{t-1}, ..., x_{t-max_lag}) (the memory-capacity task)."""

    def fn(xs):
        padded = jnp.pad(xs[:, 0], (max_lag, 0))
        return jnp.stack([padded[max_lag - lag : max_lag - lag + xs.shape[0]] for lag in range(max_lag + 1)], -1)

    return Target(f"delay_line{max_lag}", fn, output_size=max_lag + 1, linear=True)


# --------------------------------------------------------------------------- non-causal maps


def reversal() -> Target:
    """y_t = x_{T-1-t}: sequence reversal (non-causal, not time-invariant; a permutation: all singular values 1)."""
    spectrum = lambda length: np.ones(length)  # noqa: E731
    return Target("reversal", lambda xs: xs[::-1], causal=False, time_invariant=False, linear=True,
                  singular_values=spectrum)  # fmt: skip


def centred_sum(half_width: int = 4) -> Target:
    """y_t = sum_{|s| <= w} x_{t+s}: centred moving sum (non-causal FIR)."""
    return kernel_target(f"centred_sum{half_width}", np.ones(2 * half_width + 1), min_lag=-half_width)


def anticausal_filter(rate: float = 0.8, support: int = 64) -> Target:
    """y_t = sum_{s >= 0} rate^s x_{t+s}: the time-reversed exponential filter."""
    return kernel_target(f"anticausal{rate}", exponential_kernel(rate, support)[::-1].copy(), min_lag=-(support - 1))


# --------------------------------------------------------------------------- encoder-decoder maps (any output length)


def dct_matrix(length: int) -> np.ndarray:
    """Orthonormal DCT-II basis C [frequency, time]: C[k, n] = c_k cos(pi (n + 1/2) k / N)."""
    n = np.arange(length, dtype=np.float64)
    basis = np.cos(np.pi * (n[None, :] + 0.5) * n[:, None] / length) * np.sqrt(2.0 / length)
    basis[0] /= np.sqrt(2.0)
    return basis


def operator_target(
    name: str, matrix: Callable[[int], np.ndarray], singular_values: Callable[[int], np.ndarray], **metadata
) -> Target:
    """Linear target y = M_N x with M_N = ``matrix(N)`` [M, N] (input and output size 1); a non-causal map."""

    def fn(xs):
        return jnp.asarray(matrix(xs.shape[0]), xs.dtype) @ xs

    metadata = {"causal": False, "time_invariant": False, **metadata}
    return Target(name, fn, linear=True, singular_values=singular_values, **metadata)


def spectral_lowpass(decay: str = "geometric", rate: float = 0.8) -> Target:
    """y = C^T diag(s) C x (C: orthonormal DCT-II): a symmetric low-pass operator with spectrum s exactly.

    decay 'geometric': s_k = rate^k (fast decay); 'power': s_k = (1 + k)^-rate (slow decay).
    """
    if decay == "geometric":
        spectrum = lambda length: rate ** np.arange(length, dtype=np.float64)  # noqa: E731
    elif decay == "power":
        spectrum = lambda length: (1.0 + np.arange(length, dtype=np.float64)) ** -rate  # noqa: E731
    else:
        raise ValueError(f"decay must be one of ['geometric', 'power']; got {decay!r}")

    def matrix(length):
        basis = dct_matrix(length)
        return basis.T @ (spectrum(length)[:, None] * basis)

    return operator_target(f"lowpass_{decay}{rate:g}", matrix, spectrum)


def pooling(window: int = 2) -> Target:
    """y_t = mean(x_{w t}, ..., x_{w t + w - 1}): N -> N / w average pooling, N / w singular values 1 / sqrt(w)."""

    def matrix(length):
        return np.kron(np.eye(length // window), np.full((1, window), 1.0 / window))

    spectrum = lambda length: np.full(length // window, 1.0 / np.sqrt(window))  # noqa: E731
    ratio = fractions.Fraction(1, window)
    return operator_target(f"pooling{window}", matrix, spectrum, length_ratio=ratio)


def sorting() -> Target:
    """y = sort(x): the inputs in increasing order (nonlinear, non-causal, permutation-invariant)."""
    return Target("sorting", lambda xs: jnp.sort(xs, axis=0), causal=False, time_invariant=False)


def encoder_decoder_zoo() -> dict[str, Target]:
    """Targets for encoder-decoder models: flat, fast- and slow-decaying spectra, length-changing, nonlinear."""
    family = [reversal(), spectral_lowpass("geometric", 0.7), spectral_lowpass("power", 0.5), pooling(2),
              sorting()]  # fmt: skip
    return {t.name: t for t in family}


# --------------------------------------------------------------------------- nonlinear fading memory


def wiener(kernel: np.ndarray, nonlinearity: Callable[[jax.Array], jax.Array] = jnp.tanh, gain: float = 2.0) -> Target:
    """Wiener system y_t = f(g z_t / ||rho||), z = rho * x: a linear filter, then a static odd nonlinearity f."""
    kernel = np.asarray(kernel, np.float64)
    scaled = jnp.asarray(gain * kernel / np.linalg.norm(kernel))
    fn = lambda xs: nonlinearity(apply_kernel(scaled, 0, xs))  # noqa: E731
    return Target("wiener", fn, kernel=gain * kernel / np.linalg.norm(kernel))


def volterra(lags: tuple[int, ...] = (2, 5), input_kind: InputKind = InputKind.GAUSSIAN) -> Target:
    """y_t = prod_j x_{t - lag_j}: a second-order (or higher) Volterra product of lagged inputs."""

    def fn(xs):
        padded = jnp.pad(xs[:, 0], (max(lags), 0))
        length = xs.shape[0]
        return math.prod(padded[max(lags) - lag : max(lags) - lag + length] for lag in lags)[:, None]

    suffix = "" if InputKind(input_kind) is InputKind.GAUSSIAN else f"_{InputKind(input_kind).value}"
    return Target("volterra" + "_".join(map(str, lags)) + suffix, fn, input_kind=input_kind)


def teacher_rnn(seed: int = 0, hidden_size: int = 8, radius: float = 0.8) -> Target:
    """A random tanh RNN with spectral norm ``radius`` < 1 and a fixed linear readout (fading memory)."""
    from rnnjax.core.unroll import rnn

    cell = simple_rnn("tanh")
    k_params, k_out = jax.random.split(jax.random.key(seed))
    params = cell.init(k_params, 1, hidden_size, jnp.float32)
    params = {**params, "recurrent_kernel": radius * params["recurrent_kernel"]}
    params["input_kernel"] = 2.0 * params["input_kernel"]
    readout = jax.random.normal(k_out, (hidden_size, 1), params["bias"].dtype) / math.sqrt(hidden_size)

    def fn(xs):
        hs, _ = rnn(cell, jax.tree.map(lambda p: p.astype(xs.dtype), params), xs)
        return hs @ readout.astype(xs.dtype)

    return Target(f"teacher{seed}", fn)


# --------------------------------------------------------------------------- non-fading memory


def parity() -> Target:
    """y_t = prod_{s <= t} x_s for x in {-1, +1}: running parity (infinite, non-fading memory)."""
    return Target("parity", lambda xs: jnp.cumprod(xs, axis=0), fading_memory=False, input_kind=InputKind.SIGNS)


def counting() -> Target:
    """y_t = sum_{s <= t} x_s for x in {-1, +1}: a running count (+1 opens, -1 closes; bracket depth)."""
    fn = lambda xs: jnp.cumsum(xs, axis=0)  # noqa: E731
    return Target("counting", fn, fading_memory=False, linear=True, input_kind=InputKind.SIGNS)


def zoo(support: int = 256) -> dict[str, Target]:
    """The shipped targets, one per class that theory distinguishes."""
    targets = [
        kernel_target("exponential", exponential_kernel(0.8, support)),
        kernel_target("power_law", power_law_kernel(0.5, support)),
        kernel_target("bump", bump_kernel(16, 2.0, support)),
        kernel_target("oscillators4", oscillator_kernel([0.9, 0.7], [0.5, 1.5], support)),
        delay(8),
        delay_line(8),
        wiener(exponential_kernel(0.7, support)),
        volterra((2, 5)),
        teacher_rnn(0),
        reversal(),
        centred_sum(4),
        anticausal_filter(0.8, 64),
        parity(),
        counting(),
    ]
    targets += [as_many_to_one(t) for t in targets if t.name in ("reversal", "centred_sum4", "anticausal0.8", "parity")]
    return {t.name: t for t in targets}
