"""The class optimum: the best population NMSE a linear model class of the probe reaches, found without training.

For a linear target y = M x on i.i.d. zero-mean unit-variance inputs (E x x^T = I), a linear model y = M' x + c
has population NMSE ||M' - M||_F^2 / ||M||_F^2 (+ ||c||^2 / ||M||_F^2, zero at the optimum), a closed-form function
of its parameters. Every model below is a product of a fixed-pole basis and free coefficients, so for given poles
the best coefficients are a least-squares projection (variable projection), and only the poles are searched: with
L-BFGS in float64 from many random starts (all restarts in one vmapped program).

* **Linear encoder-decoder** (``linear_dense``, :class:`~rnnjax.probes.models.Architecture` ENCODER_DECODER, width m):
  v = C_e h_N + D_e x_N reads x through the rows of Psi = [A_e^{N-1-j} b_e ; e_N] (the encoder's Krylov matrix and
  the last input's feedthrough, m + 1 rows), and the decoder writes y_t = c A_d^{t+1} W v (an autonomous system,
  its observability matrix O), so M' = O Z Psi with Z [m, m + 1] free: the best is P_O M P_Psi and
  NMSE = 1 - ||Q_O^T M Q_Psi||^2 / ||M||^2 (Q: orthonormal bases).
* **Aligned linear RNN** (``linear_dense`` with readout 'none', uni- or bidirectional, output delay D): a Toeplitz map
  with kernel a(s - D) = C A^s B + D_0 [s = 0] (forward) and a(-s - D) = C' A'^s B' (backward), linear in (C, D_0, C').

The poles found are turned back into the model's own parameters (:func:`rnnjax.probes.models.init` layout), and
the reported NMSE is that of those parameters, computed with the library's forward pass
(:func:`rnnjax.probes.models.aligned_predictions`) on the unit inputs (exact: the model is affine) and checked
against a Monte Carlo estimate on sampled data. The search can miss the global optimum, so the value is an
achievable error that random restarts make very likely the best; the Eckart-Young rank floor
(:func:`rnnjax.probes.theory.rank_floor`) bounds it from below. Nonlinear cells, attention and nonlinear targets
have no closed form here (None).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax.checks import arguments
from rnnjax.probes import models, theory
from rnnjax.probes.models import Architecture, ModelSpec, Readout
from rnnjax.probes.statistics import nmse_interval
from rnnjax.probes.targets import Target, sample

LINEAR_DENSE = ("linear", "linear_dense")
RIDGE = 1e-12  # relative ridge of the projections (:func:`_whiten`): rank-deficient bases stay differentiable
AGREEMENT = 1e-6  # largest |projection NMSE - forward-pass NMSE| accepted for a found model (float64 round-off)


@dataclasses.dataclass(frozen=True)
class ClassOptimum:
    """The best population NMSE of a model class on a target.

    Attributes:
      nmse: the error (an achieved one for kind 'exact').
      kind: 'exact' (parameters of the class reach it; certified with the model's forward pass) or 'bound'.
      method: how it was found, in words.

    Examples:
      >>> from rnnjax.probes.optimum import ClassOptimum
      >>> ClassOptimum(0.25, "bound", "a width bound").kind
      'bound'
    """

    nmse: float
    kind: str
    method: str


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The pole search: ``restarts`` random starts (one vmapped program), ``steps`` L-BFGS steps each.

    Examples:
      >>> from rnnjax.probes.optimum import SearchConfig
      >>> SearchConfig(restarts=4, steps=100)
      SearchConfig(restarts=4, steps=100, seed=0, monte_carlo=16384)
    """

    restarts: int = 32
    steps: int = 300
    seed: int = 0
    monte_carlo: int = 16384  # sequences of the Monte Carlo check of the found parameters

    def __post_init__(self):
        for argument in ("restarts", "steps", "monte_carlo"):
            arguments.positive_int(argument, getattr(self, argument))


def class_optimum(
    target: Target, spec: ModelSpec, width: int, length: int, search: SearchConfig = SearchConfig()
) -> ClassOptimum | None:
    """The class optimum of ``spec`` at ``width`` on ``target`` with inputs of ``length`` steps (None if unknown).

    Needs ``jax_enable_x64``. Raises ArithmeticError if the found parameters' forward pass disagrees with the
    projection or the Monte Carlo check (a bug, never a property of the target).

    Args:
      target: the map to approximate (a linear, scalar-input target for a known optimum).
      spec: the model class; a linear_dense encoder-decoder, or an aligned linear_dense with readout 'none'.
      width: the hidden size of the class.
      length: the input length T (inputs ``[T, 1]``).
      search: the pole search (:class:`SearchConfig`).

    Examples:
      >>> import jax
      >>> jax.config.update("jax_enable_x64", True)  # class_optimum computes in float64
      >>> from rnnjax.probes import targets
      >>> from rnnjax.probes.models import ModelSpec
      >>> from rnnjax.probes.optimum import SearchConfig, class_optimum
      >>> target = targets.kernel_target("power_law", targets.power_law_kernel(0.5, 64))
      >>> linear = ModelSpec("linear_dense", readout="none")
      >>> found = class_optimum(target, linear, width=1, length=8, search=SearchConfig(restarts=4, steps=100))
      >>> found.kind, f"{found.nmse:.2e}"
      ('exact', '6.66e-04')
      >>> print(class_optimum(target, ModelSpec("lstm"), width=1, length=8))  # unknown for nonlinear classes
      None
    """
    arguments.positive_int("width", width)
    arguments.positive_int("length", length)
    if not jax.config.read("jax_enable_x64"):
        raise ValueError("class_optimum computes in float64: call jax.config.update('jax_enable_x64', True) first")
    spec = dataclasses.replace(spec, width=width)
    if not _computable(target, spec):
        return None
    operator = _labelled_operator(target, length)
    if spec.architecture is Architecture.ENCODER_DECODER:
        model = _EncoderDecoder(width, length, operator.shape[0] * operator.shape[1], target.output_size)
        method = "variable projection over the encoder's row space and the decoder's column space"
    else:
        model = _Aligned.of(spec, target, length)
        method = "variable projection over the kernel's poles"
    exact, params = _best(model, operator, search, lambda params: population_nmse(spec, params, target, length))
    certify(spec, params, target, length, exact, search)
    method += f" (L-BFGS from {search.restarts} random starts, float64), certified with the model's forward pass"
    return ClassOptimum(exact, "exact", method)


def _computable(target: Target, spec: ModelSpec) -> bool:
    """Linear scalar-input target; a linear_dense encoder-decoder, or an aligned linear_dense with readout 'none'."""
    if not target.linear or target.input_size != 1 or spec.cell not in LINEAR_DENSE:
        return False
    if spec.architecture is Architecture.ENCODER_DECODER:
        return True
    return spec.architecture is Architecture.ALIGNED and spec.readout is Readout.NONE and target.aligned


def _labelled_operator(target: Target, length: int) -> np.ndarray:
    """M [labelled steps, output, N]: the rows of the operator that are labels."""
    operator = theory.linear_operator(target, length)
    return operator[-1:] if target.many_to_one else operator


# --------------------------------------------------------------------------- the two model classes


def _powers(matrix: jax.Array, vector: jax.Array, count: int, left: bool = False) -> jax.Array:
    """[count, ...]: matrix^s vector (or vector matrix^(s + 1) when ``left``) for s < count."""

    def step(state, _):
        following = state @ matrix if left else matrix @ state
        return following, (following if left else state)

    return jax.lax.scan(step, vector, None, length=count)[1]


def _whiten(basis: jax.Array) -> jax.Array:
    """Q = X L^{-T} with L L^T = X^T X + eps I: orthonormal columns spanning X's [rows, k] column space when X has
    full column rank; otherwise Q Q^T <= P_X, so an error computed with Q is never below the true projection's."""
    gram = basis.T @ basis
    ridge = RIDGE * (jnp.trace(gram) / gram.shape[0] + 1e-300)
    factor = jnp.linalg.cholesky(gram + ridge * jnp.eye(gram.shape[0]))
    return jax.scipy.linalg.solve_triangular(factor, basis.T, lower=True).T


@dataclasses.dataclass(frozen=True)
class _EncoderDecoder:
    """Poles {'encoder': (A_e [m, m], b_e [m]), 'decoder': (A_d [m, m], c [output, m])}; M' = O Z Psi."""

    width: int
    length: int
    rows: int  # output steps * output size
    output_size: int

    def init(self, key):
        keys = jax.random.split(key, 4)
        return {"encoder": (_random_state_matrix(keys[0], self.width), jax.random.normal(keys[1], (self.width,))),
                "decoder": (_random_state_matrix(keys[2], self.width),
                            jax.random.normal(keys[3], (self.output_size, self.width)))}  # fmt: skip

    def prepare(self, operator):
        """M [t, output, N] -> [(t, output), N]."""
        return operator.reshape(-1, operator.shape[-1])

    def bases(self, poles) -> tuple[jax.Array, jax.Array]:
        """(O [rows, m], Psi^T [N, m + 1])."""
        a_e, b_e = poles["encoder"]
        krylov = _powers(a_e, b_e, self.length)[::-1]  # row j: A_e^{N-1-j} b_e
        last = jnp.zeros((self.length, 1)).at[-1].set(1.0)
        a_d, c = poles["decoder"]
        observability = _powers(a_d, c, self.rows // self.output_size, left=True)  # [M, output, m]: c A_d^{t+1}
        return observability.reshape(self.rows, self.width), jnp.concatenate([krylov, last], 1)

    def explained(self, poles, operator) -> jax.Array:
        """||P_O M P_Psi||^2 for M [rows, N]."""
        left, right = self.bases(poles)
        return jnp.sum((_whiten(left).T @ operator @ _whiten(right)) ** 2)

    def params(self, poles, operator) -> dict:
        """The model's parameters (models.init layout) with the best coefficients Z = O^+ M Psi^+ for these poles."""
        left, right = (np.asarray(b) for b in self.bases(poles))
        z = np.linalg.pinv(left) @ operator @ np.linalg.pinv(right.T)  # [m, m + 1]
        m, (a_e, b_e), (a_d, c) = self.width, poles["encoder"], poles["decoder"]
        zeros = lambda *shape: jnp.zeros(shape)  # noqa: E731
        return {
            "encoder": {"A": a_e, "B": b_e[:, None], "C": jnp.asarray(z[:, :m]), "D": jnp.asarray(z[:, m:])},
            "decoder": {"A": a_d, "B": zeros(m, 1), "C": jnp.eye(m), "D": zeros(m, 1)},
            "bridge": {"w": jnp.eye(m), "b": zeros(m)},
            "readout": {"w": c.T, "b": zeros(self.output_size)},
        }


@dataclasses.dataclass(frozen=True)
class _Aligned:
    """Poles (A [w, w], b [w]) per direction; M'[t, :, j] = Z^T features(t - j) with Z [p, output] free.

    ``widths`` are the searched widths per direction (forward[, backward]), at most the number of lags each can
    reach (more states only make the basis rank-deficient); :meth:`params` pads them to the model's ``width``.
    """

    width: int
    widths: tuple[int, ...]
    length: int
    delay: int
    many_to_one: bool
    output_size: int

    @classmethod
    def of(cls, spec: ModelSpec, target: Target, length: int) -> "_Aligned":
        """Forward: lags -D .. T-1 (T + D taps, one of them the feedthrough D); backward: lags below -D."""
        widths = (min(spec.width, length + spec.delay - 1),)
        if spec.bidirectional:
            widths += (min(spec.width, max(1, length - spec.delay - 1)),)
        widths = tuple(max(1, w) for w in widths)
        return cls(spec.width, widths, length, spec.delay, target.many_to_one, target.output_size)

    def init(self, key):
        keys = jax.random.split(key, 2 * len(self.widths))
        return tuple((_random_state_matrix(keys[2 * d], w), jax.random.normal(keys[2 * d + 1], (w,)))
                     for d, w in enumerate(self.widths))  # fmt: skip

    def prepare(self, operator):
        return operator

    def design(self, poles) -> jax.Array:
        """X [(labelled t, j), p]: forward kernel basis at s = t - j + D, its feedthrough [s = 0], backward at -s."""
        steps = jnp.arange(self.length - 1 if self.many_to_one else 0, self.length)
        lag = steps[:, None] - jnp.arange(self.length)[None, :] + self.delay  # s of the forward direction
        forward = _powers(*poles[0], self.length + self.delay)  # [T + D, w]: A^s b
        columns = [jnp.where((lag >= 0)[..., None], forward[jnp.clip(lag, 0, None)], 0.0), (lag == 0)[..., None]]
        if len(poles) > 1:
            backward = _powers(*poles[1], self.length + self.delay)
            columns.append(jnp.where((lag <= 0)[..., None], backward[jnp.clip(-lag, 0, None)], 0.0))
        return jnp.concatenate(columns, -1).reshape(lag.size, -1)

    def explained(self, poles, operator) -> jax.Array:
        """||P_X Y||^2 for Y [(t, j), output] from M [t, output, N]."""
        return jnp.sum((_whiten(self.design(poles)).T @ _aligned_values(operator)) ** 2)

    def params(self, poles, operator) -> dict:
        """models.init layout: {'rnn': {'layers': ((forward[, backward]),)}, 'readout': {}} with least-squares C, D."""
        design, values = np.asarray(self.design(poles)), np.asarray(_aligned_values(operator))
        z = np.linalg.lstsq(design, values, rcond=None)[0].T  # [output, p]
        first = self.widths[0]
        blocks = [(z[:, :first], z[:, first : first + 1])]
        if len(self.widths) > 1:
            blocks.append((z[:, first + 1 :], np.zeros((self.output_size, 1))))
        cells = [self._padded(a, b, c, d) for (a, b), (c, d) in zip(poles, blocks)]
        return {"rnn": {"layers": (tuple(cells),)}, "readout": {}}

    def _padded(self, a, b, c, d) -> dict:
        """One direction's cell parameters, zero-padded from the searched width to the model's width."""
        extra = self.width - a.shape[0]
        return {"A": jnp.pad(a, ((0, extra), (0, extra))), "B": jnp.pad(b, (0, extra))[:, None],
                "C": jnp.pad(jnp.asarray(c), ((0, 0), (0, extra))), "D": jnp.asarray(d)}  # fmt: skip


def _aligned_values(operator: jax.Array) -> jax.Array:
    """M [t, output, N] -> Y [(t, j), output]."""
    return jnp.moveaxis(operator, 1, 2).reshape(-1, operator.shape[1])


def _random_state_matrix(key, width: int) -> jax.Array:
    """Q diag(r): Q orthogonal, singular values r uniform in [0.2, 1.05] (a start for the pole search)."""
    k_q, k_r = jax.random.split(key)
    radii = jax.random.uniform(k_r, (width,), minval=0.2, maxval=1.05)
    return jax.nn.initializers.orthogonal()(k_q, (width, width), jnp.float64) * radii[None, :]


# --------------------------------------------------------------------------- search and certificate


@functools.partial(jax.jit, static_argnames=("model", "steps"))
def _search(model, operator: jax.Array, keys: jax.Array, steps: int):
    """L-BFGS on 1 - explained / ||M||^2 from every key (vmapped): (poles, final NMSE [restarts])."""
    total = jnp.sum(operator**2)

    def solve(key):
        loss = lambda poles: 1.0 - model.explained(poles, operator) / total  # noqa: E731
        optimizer = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(loss)

        def step(carry, _):
            poles, state = carry
            value, grad = value_and_grad(poles, state=state)
            updates, state = optimizer.update(grad, state, poles, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(poles, updates), state), None

        poles = model.init(key)
        poles = jax.lax.scan(step, (poles, optimizer.init(poles)), None, length=steps)[0][0]
        return poles, loss(poles)

    return jax.vmap(solve)(keys)


def _best(model, operator: np.ndarray, search: SearchConfig, forward_nmse):
    """(NMSE, parameters) of the best restart whose parameters' ``forward_nmse(params)`` reproduces its projection
    NMSE within :data:`AGREEMENT` (a nearly singular basis can give coefficients that lose that precision)."""
    matrix = jnp.asarray(model.prepare(operator))
    keys = jax.random.split(jax.random.key(search.seed), search.restarts)
    poles, values = _search(model, matrix, keys, search.steps)
    values = np.where(np.isfinite(values), np.asarray(values), np.inf)
    for index in np.argsort(values)[: min(8, search.restarts)]:
        if not np.isfinite(values[index]):
            break
        chosen = jax.tree.map(lambda leaf, index=index: leaf[index], poles)
        params = model.params(chosen, np.asarray(matrix))
        exact = forward_nmse(params)
        if abs(exact - values[index]) <= AGREEMENT:
            return exact, params
    raise ArithmeticError(f"no restart's parameters reproduce its projection NMSE (best {np.min(values)})")


def model_operator(spec: ModelSpec, params: dict, target: Target, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(M' [labelled steps, output, N], offset [labelled steps, output]) of an affine model, from its forward pass
    (:func:`rnnjax.probes.models.aligned_predictions`) on the unit inputs e_j and on zero."""
    units = jnp.concatenate([jnp.eye(length)[:, :, None], jnp.zeros((1, length, 1))]).astype(jnp.float64)
    outputs = models.aligned_predictions(spec, params, units, target.output_size, spec.delay, spec.delay,
                                         target.output_length(length))  # fmt: skip
    outputs = np.asarray(outputs[:, -1:] if target.many_to_one else outputs, np.float64)
    offset = outputs[-1]
    return np.moveaxis(outputs[:-1] - offset, 0, -1), offset


def population_nmse(spec: ModelSpec, params: dict, target: Target, length: int) -> float:
    """Population NMSE (||M' - M||^2 + ||offset||^2) / ||M||^2 of an affine model on a linear target (white inputs)."""
    reference = _labelled_operator(target, length)
    found, offset = model_operator(spec, params, target, length)
    return float((np.sum((found - reference) ** 2) + np.sum(offset**2)) / np.sum(reference**2))


def monte_carlo_nmse(spec: ModelSpec, params: dict, target: Target, length: int, size: int, key) -> tuple[float, ...]:
    """(NMSE, low, high): the model's pooled test NMSE and its 95% interval on ``size`` sampled sequences."""
    xs, ys = sample(target, key, size, length, jnp.float64)
    predictions = models.aligned_predictions(spec, params, xs, target.output_size, spec.delay, spec.delay,
                                             target.output_length(length))  # fmt: skip
    if target.many_to_one:
        predictions, ys = predictions[:, -1:], ys[:, -1:]
    return tuple(float(value) for value in nmse_interval(predictions, ys))


def certify(spec: ModelSpec, params: dict, target: Target, length: int, exact: float, search: SearchConfig) -> None:
    """Raise ArithmeticError unless a Monte Carlo NMSE of ``params`` agrees with ``exact`` (within 2.5 intervals)."""
    key = jax.random.fold_in(jax.random.key(search.seed), 1)
    estimate, low, high = monte_carlo_nmse(spec, params, target, length, search.monte_carlo, key)
    slack = 2.5 * max(high - estimate, estimate - low) + 1e-9
    if abs(estimate - exact) > slack:
        raise ArithmeticError(
            f"class optimum {exact:.6g} of {spec.name} w{spec.width} on {target.name!r}: the Monte Carlo NMSE "
            f"{estimate:.6g} (95% interval {low:.6g}..{high:.6g}) disagrees"
        )
