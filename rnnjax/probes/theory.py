"""Optimal achievable errors, computed without training, for linear targets and linear models.

All errors are pooled normalised MSEs, NMSE = E|yhat - y|^2 / E|y - E y|^2, for i.i.d. zero-mean unit-variance
inputs on sequences of ``length`` steps with zero initial state (what :mod:`rnnjax.probes.sweep` measures).

* :func:`causal_floor`: the best any model can do when y_t must be produced from x_0..x_{t+delay} only.
  For a linear target y_t = sum_j M[t, j] x_j with independent zero-mean inputs, the conditional mean is
  sum_{j <= t+delay} M[t, j] x_j, so the floor is the energy of the operator beyond the visible horizon:
  floor = sum_{t, j > t + delay} M[t, j]^2 / sum_{t, j} M[t, j]^2 (exact; no width limit).
* :func:`width_bounds`: a linear RNN of width m has kernel a(s) = C A^s B (+ D at s = 0). The best such
  kernel is bracketed by an Eckart-Young bound on the Hankel matrix [rho(1+i+j)] (lower) and the error of the
  width-m eigensystem-realisation (balanced, Hankel-SVD) truncation of the target (upper, achievable).
* :func:`wiener_floor`: the best linear model of a Wiener system f(z), z = rho * x, Gaussian inputs
  (Bussgang: the best linear estimate of f(z_t) is E f'(z_t) z_t).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.probes.targets import Target


def linear_operator(target: Target, length: int) -> np.ndarray:
    """The matrix M [length, output, length] with y_t = sum_j M[t, :, j] x_j for a linear scalar-input target."""
    if not target.linear:
        raise ValueError(f"target {target.name!r} is not linear (target.linear is False)")
    if target.input_size != 1:
        raise ValueError(f"linear_operator needs input_size 1; target {target.name!r} has {target.input_size}")
    jacobian = jax.jacfwd(target.fn)(jnp.zeros((length, 1)))
    return np.asarray(jacobian, np.float64)[..., 0]


def causal_floor(target: Target, length: int, delay: int = 0) -> float:
    """Best NMSE when y_t is predicted from x_0..x_{t+delay}: energy of M[t, :, j > t + delay] over energy of M."""
    operator = linear_operator(target, length)
    rows = np.arange(length)[:, None, None]
    cols = np.arange(length)[None, None, :]
    energy = operator**2
    if target.many_to_one:
        energy = energy[-1:]
        rows = rows[-1:]
    hidden = energy * (cols > rows + delay)
    return float(hidden.sum() / energy.sum())


def hankel_singular_values(kernel: np.ndarray, size: int | None = None) -> np.ndarray:
    """Singular values of the Hankel matrix [rho(i + j)]_{i, j < size} (zero beyond the support)."""
    kernel = np.asarray(kernel, np.float64)
    size = size or kernel.size
    padded = np.concatenate([kernel, np.zeros(2 * size)])
    return np.linalg.svd(padded[np.arange(size)[:, None] + np.arange(size)[None, :]], compute_uv=False)


def kernel_nmse(kernel: np.ndarray, approximation: np.ndarray, length: int) -> float:
    """NMSE of an LTI model with kernel ``approximation`` for target ``kernel`` on white inputs of ``length`` steps.

    Lag s contributes at length - s of the steps: NMSE = sum_s (T - s) e_s^2 / sum_s (T - s) rho_s^2.
    """
    weights = np.maximum(length - np.arange(length), 0).astype(np.float64)
    target = _pad(kernel, length)
    error = target - _pad(approximation, length)
    return float(np.sum(weights * error**2) / np.sum(weights * target**2))


def era(kernel: np.ndarray, width: int, size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width-m realisation (A [m, m], B [m, 1], C [1, m]) from the Hankel SVD (Kung's eigensystem realisation)."""
    kernel = np.asarray(kernel, np.float64)
    size = size or max(2, (kernel.size + 1) // 2)
    padded = np.concatenate([kernel, np.zeros(2 * size + 1)])
    hankel = padded[np.arange(size + 1)[:, None] + np.arange(size)[None, :]]  # one extra row for the shift
    u, s, vt = np.linalg.svd(hankel[:size], full_matrices=False)
    m = min(width, int(np.sum(s > 1e-14 * s[0])))
    root = np.sqrt(s[:m])
    observability = u[:, :m] * root
    controllability = root[:, None] * vt[:m]
    shifted = hankel[1:] @ np.linalg.pinv(controllability)  # O A
    a = np.linalg.lstsq(observability, shifted, rcond=None)[0]
    return a, controllability[:, :1], observability[:1]


def realisation_kernel(a: np.ndarray, b: np.ndarray, c: np.ndarray, length: int) -> np.ndarray:
    """a(s) = C A^s B for s < length."""
    out, state = np.zeros(length), b.copy()
    for s in range(length):
        out[s] = (c @ state).item()
        state = a @ state
    return out


def width_bounds(kernel: np.ndarray, width: int, length: int) -> tuple[float, float]:
    """(lower, upper) bounds on the best NMSE of a width-``width`` linear RNN (y = C h + D x) for an LTI kernel.

    upper: error of the width-m ERA truncation (an achievable model). lower: for any rank-m kernel a, the
    L x L Hankel matrix of e = rho - a restricted to lags >= 1 has Frobenius norm^2 = sum_s c_s e_s^2 >=
    sum_{i > m} sigma_i^2 (Eckart-Young); dividing by max_s c_s / (T - s) turns that into an NMSE bound.
    """
    target = _pad(kernel, length)
    a, b, c = era(target, width)
    upper = kernel_nmse(target, realisation_kernel(a, b, c, length), length)
    weights = np.maximum(length - np.arange(length), 0).astype(np.float64)
    denominator = float(np.sum(weights * target**2))
    lower = 0.0
    for size in range(1, length // 2 + 1):
        sv = hankel_singular_values(target[1 : 2 * size], size)  # lags 1 .. 2 size - 1
        lags = np.arange(1, 2 * size)
        counts = np.minimum(lags, 2 * size - lags)
        ratio = np.max(counts / weights[lags])
        lower = max(lower, float(np.sum(sv[width:] ** 2) / ratio / denominator))
    return lower, max(upper, lower)


def gauss_expectation(function, variance: float, points: int = 80) -> float:
    """E f(z) for z ~ N(0, variance) by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)
    values = np.asarray(function(jnp.asarray(np.sqrt(variance) * nodes)))
    return float(np.sum(weights * values) / np.sqrt(2.0 * np.pi))


def wiener_floor(target: Target, length: int, nonlinearity=jnp.tanh) -> float:
    """Best NMSE of a linear (time-varying even) model for the Wiener target f(rho * x), Gaussian inputs, odd f."""
    if target.kernel is None:
        raise ValueError(f"target {target.name!r} has no kernel; build it with targets.wiener")
    variances = np.cumsum(_pad(target.kernel, length) ** 2)
    derivative = jax.vmap(jax.grad(nonlinearity))
    power = np.array([gauss_expectation(lambda z: nonlinearity(z) ** 2, v) for v in variances])
    gain = np.array([gauss_expectation(derivative, v) for v in variances])
    return float(np.sum(power - gain**2 * variances) / np.sum(power))


def _pad(kernel: np.ndarray, length: int) -> np.ndarray:
    kernel = np.asarray(kernel, np.float64)[:length]
    return np.concatenate([kernel, np.zeros(length - kernel.size)])
