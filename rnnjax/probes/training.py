"""The training of one probe run: data drawn on device, minibatch Adam under ``lax.scan``, an optional full-batch
L-BFGS refinement, and evaluation on fresh sequences of length T and at longer lengths.

:func:`train_run` is a pure function of one key (and a delay and a target index), meant to be vmapped over the
runs of a group; :mod:`rnnjax.probes.compiling` turns ``jit(vmap(train_run))`` into one program per group.
"""

from __future__ import annotations

import dataclasses
import enum
import functools

import jax
import jax.numpy as jnp
import optax

from rnnjax.checks import arguments
from rnnjax.probes import models
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.statistics import nmse_interval
from rnnjax.probes.targets import Target, check_family, sample_family
from rnnjax.training.optimizers import warmup_cosine_adam
from rnnjax.training.step import init_state, train_step_body


class Schedule(enum.Enum):
    """The Adam learning rate over the steps."""

    WARMUP_COSINE = "warmup_cosine"  # linear 0 -> peak over steps // 20, cosine to 1% (warmup_cosine_adam)
    CONSTANT = "constant"  # the peak throughout (PyTorch's default: no scheduler)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How every run of a sweep is trained and evaluated.

    Attributes:
      length: training sequence length T.
      train_size: number of training sequences (a fixed set, drawn per seed).
      batch_size: minibatch size (>= train_size means full-batch Adam).
      steps: Adam steps (at ``learning_rate`` throughout by default; see ``schedule``).
      learning_rate: peak Adam learning rate.
      clip_norm: global gradient-norm clip.
      lbfgs_steps: full-batch L-BFGS refinement steps after Adam (0 for none).
      test_size: fresh test sequences at length T; at length f T, test_size // f (at least 16): about the same
        number of labelled steps, so about the same 95% interval (:func:`rnnjax.probes.statistics.nmse_interval`).
      long_factors: test lengths as multiples of T; the last one is reported as ``nmse_test_long``.
      dtype: 'float32' or 'float64' (float64 needs jax_enable_x64).
      restarts: initialisations trained per run (vmapped inside the run's program); the one with the least final
        training loss is kept and evaluated. 1: the run's own initialisation only.
      schedule: the learning rate over the Adam steps (:class:`Schedule`). Constant by default: on the main job's
        GRU workload the warm-up + cosine schedule ended 3.9x worse at equal steps (benchmarks/README.md, recipe).
      initialisation: how nonlinear cells start (:class:`rnnjax.probes.models.Initialisation`). PyTorch's by
        default (input kernel uniform +-1/sqrt(width), LSTM forget bias 0): at equal steps the cells' own defaults
        ended 1.9x worse on the main job's GRU workload and 2.6x on its LSTM one (benchmarks/README.md, recipe).
      fast_compile: compile at XLA backend optimisation level
        :data:`rnnjax.probes.compiling.FAST_COMPILE_LEVEL` (1) instead of 3: compiling takes 20-45% less time
        and the steps run about as fast (on CPU, where compiling dominates a short group).
    """

    length: int = 32
    train_size: int = 256
    batch_size: int = 64
    steps: int = 400
    learning_rate: float = 1e-2
    clip_norm: float = 1.0
    lbfgs_steps: int = 0
    test_size: int = 128
    long_factors: tuple[int, ...] = (2, 10)
    dtype: str = "float32"
    fast_compile: bool = False
    restarts: int = 1
    schedule: Schedule = Schedule.CONSTANT
    initialisation: models.Initialisation = models.Initialisation.PYTORCH

    def __post_init__(self):
        object.__setattr__(self, "schedule", arguments.as_enum(Schedule, self.schedule, "schedule"))
        initialisation = arguments.as_enum(models.Initialisation, self.initialisation, "initialisation")
        object.__setattr__(self, "initialisation", initialisation)
        for argument in ("length", "train_size", "batch_size", "steps", "test_size", "restarts"):
            arguments.positive_int(argument, getattr(self, argument))
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")


DEFAULT_CONFIG = TrainConfig()
"""The training of a sweep that names no config (a frozen value, safe as a default argument)."""


def nmse(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """E|yhat - y|^2 / Var(y), pooled over all entries."""
    return jnp.mean((predictions - targets) ** 2) / jnp.var(targets)


def _labelled(target: Target, values: jax.Array) -> jax.Array:
    """The entries that are labels: all steps, or only the last for a many-to-one target."""
    return values[:, -1:] if target.many_to_one else values


def _predict(spec, target, max_delay, params, xs, delay):
    length = target.output_length(xs.shape[1])
    predictions = models.aligned_predictions(spec, params, xs, target.output_size, delay, max_delay, length)
    return _labelled(target, predictions)


def adam_phase(loss_fn, params, key, config: TrainConfig):
    """Minibatch Adam under lax.scan; loss_fn(params, indices) -> loss. Returns (params, losses [steps]).

    Each step is :func:`rnnjax.training.step.train_step_body` (the step ``fit`` and ``fit_many`` take), so a
    non-finite step leaves the parameters unchanged; minibatch ``index`` is drawn from fold_in(key, index).
    """
    optimizer = make_optimizer(config)
    full = config.batch_size >= config.train_size

    def batch(index):
        if full:
            return jnp.arange(config.train_size)
        choice_key = jax.random.fold_in(key, index)
        return jax.random.choice(choice_key, config.train_size, (config.batch_size,), replace=False)

    def loss_and_metrics(params, indices, _step_key):  # the (loss, metrics) form of rnnjax.training
        return loss_fn(params, indices), {}

    def step(state, index):
        state, metrics = train_step_body(loss_and_metrics, optimizer, state, batch(index))
        return state, metrics["loss"]

    state, losses = jax.lax.scan(step, init_state(params, optimizer, key), jnp.arange(config.steps))
    return state.params, losses


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """clip(global norm) -> Adam with the config's :class:`Schedule`."""
    if config.schedule is Schedule.WARMUP_COSINE:
        return warmup_cosine_adam(config.learning_rate, config.steps, config.clip_norm)
    if config.schedule is Schedule.CONSTANT:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(config.learning_rate))
    raise ValueError(f"schedule must be a Schedule; got {config.schedule!r}")


def lbfgs_refine(loss_fn, params, steps: int):
    """Full-batch L-BFGS refinement (optax.lbfgs with its zoom line search)."""
    optimizer = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss_fn)

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
        return (optax.apply_updates(params, updates), state), value

    (params, _), values = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params, values


def train_run(
    key: jax.Array, delay: jax.Array, index: jax.Array, *,
    spec: ModelSpec, targets: tuple[Target, ...], config: TrainConfig, max_delay: int,
):  # fmt: skip
    """Train and evaluate one model on targets[index] from one key (vmapped over keys, delays and indices).

    Returns (params, metrics) with metrics {'nmse_train', 'nmse_test', 'nmse_test_<f>x' per long factor, each
    test NMSE with its '_low' and '_high' 95% interval ends, 'losses'}.
    """
    dtype = jnp.dtype(config.dtype)
    target = check_family(targets)
    sample = functools.partial(sample_family, targets, index)
    k_data, k_init, k_steps, k_test = jax.random.split(key, 4)
    xs, ys = sample(k_data, config.train_size, config.length, dtype)
    labels = _labelled(target, ys)
    scale = jnp.var(labels)
    predict = functools.partial(_predict, spec, target, max_delay)

    def loss_fn(params, batch=None):
        if batch is None:
            return jnp.mean((predict(params, xs, delay) - labels) ** 2) / scale
        return jnp.mean((predict(params, xs[batch], delay) - labels[batch]) ** 2) / scale

    def fit(init_key, steps_key):  # one initialisation: Adam, then the optional L-BFGS polish
        params = models.init(spec, init_key, target.input_size, target.output_size, dtype, config.initialisation)
        params, losses = adam_phase(loss_fn, params, steps_key, config)
        if config.lbfgs_steps:
            params, refined = lbfgs_refine(loss_fn, params, config.lbfgs_steps)
            losses = jnp.concatenate([losses, refined])
        return params, losses

    params, losses = fit(k_init, k_steps) if config.restarts == 1 else best_restart(fit, loss_fn, k_init, k_steps,
                                                                                   config.restarts)  # fmt: skip
    metrics = {"nmse_train": loss_fn(params), "losses": losses}
    for factor in (1, *config.long_factors):  # about test_size * T labelled steps at every length
        size = max(16, config.test_size // factor)
        test_xs, test_ys = sample(jax.random.fold_in(k_test, factor), size, factor * config.length, dtype)
        name = "nmse_test" if factor == 1 else f"nmse_test_{factor}x"
        interval = nmse_interval(predict(params, test_xs, delay), _labelled(target, test_ys))
        metrics[name], metrics[f"{name}_low"], metrics[f"{name}_high"] = interval
    return params, metrics


def best_restart(fit, loss_fn, init_key: jax.Array, steps_key: jax.Array, restarts: int):
    """``fit(init_key, steps_key) -> (params, losses)`` from ``restarts`` key pairs (vmapped; the first pair is the
    run's own), keeping the result of least full-batch ``loss_fn`` (a non-finite loss never wins)."""
    fold = lambda key: jnp.stack([key, *(jax.random.fold_in(key, r) for r in range(1, restarts))])  # noqa: E731
    params, losses = jax.vmap(fit)(fold(init_key), fold(steps_key))
    final = jax.vmap(loss_fn)(params)
    best = jnp.argmin(jnp.where(jnp.isfinite(final), final, jnp.inf))
    return jax.tree.map(lambda leaf: leaf[best], (params, losses))
