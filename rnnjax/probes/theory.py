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
* :func:`time_invariant_floor`: the best *time-invariant* linear model (what a linear RNN of any width is,
  from a zero state): y_t = sum_l a(l) x_{t-l}, lags l >= -delay (unidirectional with output delay D) or all
  lags (bidirectional). With white inputs the error is ||M - P(M)||_F^2 / ||M||_F^2 where P projects M onto
  (banded) Toeplitz matrices: a(l) is the mean of M's l-th diagonal. A non-time-invariant target (reversal)
  keeps a large floor here even though its causal floor vanishes with a bidirectional model.
* :func:`rank_floor`: a linear encoder-decoder through a width-m vector (y = D E x, E: [m, N]) is a rank-m map;
  the best one keeps the top m singular values of M (Eckart-Young): floor = sum_{i >= m} s_i^2 / sum_i s_i^2.
  It needs E[x x^T] = I only (i.i.d. zero-mean unit-variance inputs of any distribution).
* :func:`wiener_floor` / :func:`wiener_time_invariant_floor`: the best linear estimate of a Wiener system f(z),
  z = rho * x, Gaussian inputs. Bussgang: E[f(z_t) x_j] = E f'(z_t) E[z_t x_j], so the best *time-varying*
  linear estimate (a separate weight vector per step; a lower bound for every linear RNN) is E f'(z_t) z_t;
  the best *time-invariant* one (one kernel for all steps: what a linear RNN is) follows from the same
  cross-covariance projected onto Toeplitz operators. The Gaussian expectations use adaptive quadrature
  (scipy.integrate.quad) with an absolute error below 1e-10 per expectation.
* :func:`sorting_affine_floor`: sorting is nonlinear, but its best affine estimate from Gaussian inputs has a
  closed form in the expected normal order statistics: the floor of every linear model on sorting.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

from rnnjax.checks import arguments
from rnnjax.probes.targets import Target

QUADRATURE_TOLERANCE = 1e-10  # absolute error bound asked of (and checked on) each Gaussian expectation


def linear_operator(target: Target, length: int) -> np.ndarray:
    """The matrix M [output length, output, length] with y_t = sum_j M[t, :, j] x_j for a linear scalar-input target."""
    if not target.linear:
        raise ValueError(f"target {target.name!r} is not linear (target.linear is False)")
    if target.input_size != 1:
        raise ValueError(f"linear_operator needs input_size 1; target {target.name!r} has {target.input_size}")
    jacobian = jax.jacfwd(target.fn)(jnp.zeros((length, 1)))
    return np.asarray(jacobian, np.float64)[..., 0]


def causal_floor(target: Target, length: int, delay: int = 0) -> float:
    """Best NMSE when y_t is predicted from x_0..x_{t+delay}: energy of M[t, :, j > t + delay] over energy of M."""
    _check_aligned(target, "causal_floor")
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


def gauss_expectation(function, variance: float) -> tuple[float, float]:
    """(E f(z), error bound) for z ~ N(0, variance) by adaptive quadrature over the standard Gaussian density."""
    scale = math.sqrt(variance)

    def integrand(u):
        return float(function(scale * u)) * math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)

    value, error = scipy.integrate.quad(integrand, -np.inf, np.inf, epsabs=QUADRATURE_TOLERANCE, epsrel=0.0,
                                        limit=200)  # fmt: skip
    if not error <= QUADRATURE_TOLERANCE:
        raise ArithmeticError(f"Gaussian quadrature missed its tolerance {QUADRATURE_TOLERANCE}: error {error}")
    return value, error


def wiener_moments(target: Target, length: int, nonlinearity=np.tanh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t: (P_t = E f(z_t)^2, c_t = E f'(z_t), var z_t) for the Wiener target f(z), z = kernel * x.

    c_t = E[z f(z)] / var z (Stein's lemma), so only f itself is integrated.
    """
    if target.kernel is None:
        raise ValueError(f"target {target.name!r} has no kernel; build it with targets.wiener")
    variances = np.cumsum(_pad(target.kernel, length) ** 2)
    power = np.array([gauss_expectation(lambda z: nonlinearity(z) ** 2, v)[0] for v in variances])
    slope = np.array([gauss_expectation(lambda z: z * nonlinearity(z), v)[0] / v for v in variances])
    return power, slope, variances


def wiener_floor(target: Target, length: int, nonlinearity=np.tanh) -> float:
    """Best NMSE of a time-varying linear estimate of f(z_t) (Bussgang): sum_t (P_t - c_t^2 var z_t) / sum_t P_t.

    A lower bound for every linear RNN (which is time-invariant); ``nonlinearity`` must be odd (zero-mean y).
    """
    power, slope, variances = wiener_moments(target, length, nonlinearity)
    return float(np.sum(power - slope**2 * variances) / np.sum(power))


def wiener_time_invariant_floor(target: Target, length: int, nonlinearity=np.tanh) -> float:
    """Best NMSE of one kernel a for all steps, yhat_t = sum_l a(l) x_{t-l}, on the Wiener target (odd f).

    The cross-covariance E[y_t x_j] = c_t rho(t - j) projected onto Toeplitz operators (:func:`toeplitz_floor`).
    """
    power, slope, _ = wiener_moments(target, length, nonlinearity)
    kernel = _pad(target.kernel, length)
    lags = np.arange(length)[:, None] - np.arange(length)[None, :]
    cross = np.where(lags >= 0, slope[:, None] * kernel[np.clip(lags, 0, None)], 0.0)
    return toeplitz_floor(cross[:, None, :], None, power=power)


# --------------------------------------------------------------------------- time-invariant and rank floors


def toeplitz_floor(cross: np.ndarray, delay: int | None, power: np.ndarray | None = None) -> float:
    """Best NMSE of yhat_t = sum_l a(l) x_{t-l} (lags l >= -delay; all lags if delay is None), white inputs.

    Args:
      cross: E[y_t x_j] as [length, output, length] (for a linear target: its operator M).
      delay: output delay D of a unidirectional model, or None for a bidirectional one.
      power: E|y_t|^2 per step [length] (default: sum_j |cross[t, :, j]|^2, exact for linear targets).

    The error sum_t E|y_t - yhat_t|^2 = sum_t power_t - 2 <a, diag sums of cross> + sum_l (T - |l|) a(l)^2 is
    minimised per lag by a(l) = mean of cross's l-th diagonal.
    """
    length = cross.shape[0]
    if cross.shape[2] != length:
        raise ValueError(f"cross: expected shape [T, output, T] (an aligned map); got {cross.shape}")
    power = np.sum(cross**2, axis=(1, 2)) if power is None else np.asarray(power, np.float64)
    lags = np.arange(length)[:, None] - np.arange(length)[None, :]
    explained = 0.0
    for lag in range(-(length - 1), length):
        if delay is not None and lag < -delay:
            continue
        diagonal = np.moveaxis(cross, 1, 2)[lags == lag]  # [T - |lag|, output]
        explained += float(np.sum(diagonal.sum(axis=0) ** 2) / (length - abs(lag)))
    return max(0.0, float((power.sum() - explained) / power.sum()))  # rounding can leave -1e-16


def time_invariant_floor(target: Target, length: int, delay: int | None = 0) -> float:
    """Best NMSE of a time-invariant linear model of any width (a linear RNN from a zero state) on a linear target.

    delay D: unidirectional, y_t read at step t + D (lags >= -D); None: bidirectional (every lag).
    0 for a time-invariant target whose taps the model's lags cover; large for reversal (0.79 bidirectional at T=20).
    """
    _check_aligned(target, "time_invariant_floor")
    if target.many_to_one:
        raise ValueError(f"time_invariant_floor needs a per-step target; {target.name!r} is many-to-one")
    return toeplitz_floor(linear_operator(target, length), delay)


def rank_floor(target: Target, length: int, width: int) -> float:
    """Eckart-Young: best NMSE of a linear map through a width-m vector, sum_{i >= m} s_i^2 / sum_i s_i^2.

    Needs E[x x^T] = I (i.i.d. zero-mean unit-variance inputs). Linear RNN encoder-decoders reach it for reversal
    (shift registers keep and replay the last m inputs); for other operators it is only a lower bound for them,
    and it does not bind nonlinear encoders.
    """
    arguments.positive_int("width", width)
    operator = linear_operator(target, length)
    singular = np.linalg.svd(operator.reshape(-1, length), compute_uv=False)
    energy = singular**2
    return float(energy[width:].sum() / energy.sum())


def normal_order_means(length: int) -> np.ndarray:
    """E[x_(i)], i = 1..length: the expected order statistics of ``length`` i.i.d. standard normals (ascending),
    by adaptive quadrature of x n!/((i-1)!(n-i)!) Phi(x)^(i-1) (1-Phi(x))^(n-i) phi(x)."""
    arguments.positive_int("length", length)
    means = []
    for index in range(1, length + 1):
        weight = math.comb(length - 1, index - 1) * length

        def integrand(x, index=index, weight=weight):
            cdf = 0.5 * math.erfc(-x / math.sqrt(2.0))
            return x * weight * cdf ** (index - 1) * (1.0 - cdf) ** (length - index) * math.exp(-0.5 * x * x) / \
                math.sqrt(2.0 * math.pi)

        value, error = scipy.integrate.quad(integrand, -np.inf, np.inf, epsabs=QUADRATURE_TOLERANCE, epsrel=0.0,
                                            limit=200)  # fmt: skip
        if not error <= QUADRATURE_TOLERANCE:
            raise ArithmeticError(f"order-statistic quadrature missed its tolerance {QUADRATURE_TOLERANCE}: {error}")
        means.append(value)
    return np.array(means)


def sorting_affine_floor(length: int) -> float:
    """Best NMSE of any affine map y = A x + c for y = sort(x), x ~ N(0, I_length): (n - 1 - ||mu||^2) / n.

    With mu = E sort(x) (:func:`normal_order_means`), the best c is mu and the best A is E[y x^T] = 1 1^T / n (by
    exchangeability E[x_j y_(i)] = Cov(y_(i), sum_k x_k) / n, and for normal samples sum_k Cov(x_(i), x_(k)) = 1);
    the residual is tr Cov(y) - ||A||_F^2 = n - ||mu||^2 - 1, over the pooled label variance n (E y^2 = 1 per entry,
    pooled mean 0). A lower bound for every linear model of the probe on sorting, whatever its width or cell.
    """
    means = normal_order_means(length)
    return float((length - 1 - np.sum(means**2)) / length)


def monotone_upper(bands: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Bands {width: (lower, upper)} with each upper replaced by the best upper of all widths <= it.

    A smaller model embeds in a larger one, so an achievable error at width m is achievable at every m' > m.
    """
    out, best = {}, np.inf
    for width in sorted(bands):
        lower, upper = bands[width]
        best = min(best, upper)
        out[width] = (min(lower, best), best)
    return out


def _check_aligned(target: Target, function: str) -> None:
    if not target.aligned:
        raise ValueError(
            f"{function} needs an aligned target (length_ratio 1); {target.name!r} has length_ratio "
            f"{target.length_ratio}"
        )


def _pad(kernel: np.ndarray, length: int) -> np.ndarray:
    kernel = np.asarray(kernel, np.float64)[:length]
    return np.concatenate([kernel, np.zeros(length - kernel.size)])
