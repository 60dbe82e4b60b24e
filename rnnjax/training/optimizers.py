"""Optax optimizers from a config: clipping, L2 or decoupled weight decay, warm-up then constant or cosine.

API:
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-3, clip_norm=1.0))
    optimizer = make_sweep_optimizer(config)     # hyperparameters in the state, per run of init_many
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax.checks import arguments


class OptimizerName(enum.Enum):
    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


class Decay(enum.Enum):
    """Learning-rate shape after warm-up: CONSTANT, or COSINE down to ``final_fraction * learning_rate``."""

    CONSTANT = "constant"
    COSINE = "cosine"


def _concrete_scalar(value: Any) -> Any:
    """A Python number from a concrete scalar array; None for a traced or non-scalar array (checked later)."""
    if not arguments.is_concrete(value):
        return None
    if isinstance(value, (jax.Array, np.ndarray)):
        return value.item() if value.shape == () else None
    return value


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer, schedule (linear warm-up then constant or cosine) and gradient clipping.

    Attributes:
      name: ADAM, ADAMW (decoupled weight decay) or SGD (with momentum 0.9).
      learning_rate: peak learning rate.
      warmup_steps: linear warm-up from 0 over this many steps.
      decay: CONSTANT or COSINE after warm-up.
      decay_steps: total steps of the schedule (warm-up included); needed for COSINE.
      final_fraction: COSINE ends at ``final_fraction * learning_rate``.
      clip_norm: clip the global gradient norm to this value (None: no clipping).
      weight_decay: decoupled weight decay (ADAMW) or L2 added to the gradient (ADAM, SGD).

    Examples:
      >>> from rnnjax.training.optimizers import OptimizerConfig
      >>> config = OptimizerConfig("adamw", learning_rate=3e-4, weight_decay=0.01)
      >>> config.name, config.clip_norm
      (<OptimizerName.ADAMW: 'adamw'>, 1.0)
    """

    name: OptimizerName = OptimizerName.ADAM
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    decay: Decay = Decay.CONSTANT
    decay_steps: int = 0
    final_fraction: float = 0.0
    clip_norm: float | None = 1.0
    weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "name", arguments.as_enum(OptimizerName, self.name, "name"))
        object.__setattr__(self, "decay", arguments.as_enum(Decay, self.decay, "decay"))
        arguments.nonnegative_int("warmup_steps", self.warmup_steps)
        arguments.nonnegative_int("decay_steps", self.decay_steps)
        arguments.real("final_fraction", self.final_fraction, minimum=0.0, maximum=1.0)
        if self.decay is Decay.COSINE and self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"decay_steps must exceed warmup_steps ({self.warmup_steps}) for a cosine decay; got {self.decay_steps}"
            )
        checks = (("learning_rate", arguments.positive_float), ("weight_decay", arguments.nonnegative_float))
        for argument, check in checks:
            value = _concrete_scalar(getattr(self, argument))  # traced values (fit_many sweeps) pass unchecked
            if value is not None:
                check(argument, value)
        if self.clip_norm is not None:
            arguments.positive_float("clip_norm", self.clip_norm)


def make_schedule(config: OptimizerConfig) -> optax.Schedule:
    """lr(t) = peak * min(1, t / warmup) * d(t), d = 1 (CONSTANT) or f + (1 - f) (1 + cos(pi p)) / 2 (COSINE).

    ``p = clip((t - warmup) / (decay_steps - warmup), 0, 1)``. Pure jnp, so ``peak`` may be traced.

    Returns:
      ``schedule(count) -> lr``, a scalar ``[]`` for a scalar step count.

    Examples:
      >>> from rnnjax.training.optimizers import OptimizerConfig, make_schedule
      >>> schedule = make_schedule(OptimizerConfig(learning_rate=1.0, warmup_steps=4, decay="cosine", decay_steps=12))
      >>> [round(float(schedule(step)), 3) for step in (0, 2, 4, 8, 12)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    peak, warmup = config.learning_rate, config.warmup_steps
    if config.decay not in (Decay.CONSTANT, Decay.COSINE):
        raise ValueError(f"decay must be a Decay; got {config.decay!r}")

    def schedule(count):
        t = jnp.asarray(count, jnp.result_type(float))
        ramp = jnp.minimum(1.0, t / warmup) if warmup > 0 else 1.0
        if config.decay is Decay.CONSTANT:
            return peak * ramp
        progress = jnp.clip((t - warmup) / (config.decay_steps - warmup), 0.0, 1.0)
        final = config.final_fraction
        return peak * ramp * (final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress)))

    return schedule


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """clip(global norm) -> [L2] -> optimizer with the schedule of :func:`make_schedule`.

    Numeric fields may be traced arrays, so ``fit_many`` can vmap over learning rates.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
      >>> optimizer = make_optimizer(OptimizerConfig(learning_rate=0.1, clip_norm=1.0))
      >>> params = {"w": jnp.zeros(2)}
      >>> updates, _ = optimizer.update({"w": jnp.array([3.0, -4.0])}, optimizer.init(params), params)
      >>> [round(float(update), 3) for update in updates["w"]]  # clipped, then -lr * sign(g)
      [-0.1, 0.1]
    """
    schedule = make_schedule(config)
    parts = []
    if config.clip_norm is not None:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    l2 = config.name is not OptimizerName.ADAMW and not _is_zero(config.weight_decay)
    if l2:
        parts.append(optax.add_decayed_weights(config.weight_decay))
    if config.name is OptimizerName.ADAM:
        parts.append(optax.adam(schedule))
    elif config.name is OptimizerName.ADAMW:
        parts.append(optax.adamw(schedule, weight_decay=config.weight_decay))
    elif config.name is OptimizerName.SGD:
        parts.append(optax.sgd(schedule, momentum=0.9))
    else:
        raise ValueError(f"name must be an OptimizerName; got {config.name!r}")
    return optax.chain(*parts)


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0


def make_sweep_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """:func:`make_optimizer` whose state holds ``learning_rate`` and ``weight_decay`` (``optax.inject_hyperparams``).

    Give each run of :func:`init_many` its own values with ``hparams={"learning_rate": rates}``; the
    optimizer stays one transformation, shared by all runs.
    """
    factory = optax.inject_hyperparams(functools.partial(_optimizer_with, config))
    return factory(learning_rate=config.learning_rate, weight_decay=config.weight_decay)


def _optimizer_with(config: OptimizerConfig, learning_rate: Any, weight_decay: Any) -> optax.GradientTransformation:
    return make_optimizer(dataclasses.replace(config, learning_rate=learning_rate, weight_decay=weight_decay))


def warmup_cosine_adam(learning_rate: float, num_steps: int, clip_norm: float) -> optax.GradientTransformation:
    """clip(global norm) -> Adam; lr: linear 0 -> peak over max(1, steps // 20), then cosine to 1% at ``num_steps``.

    The universal-approximation probe's optimizer, built with ``optax.warmup_cosine_decay_schedule`` so that
    its recorded numbers stay bit for bit (:func:`make_schedule` rounds differently).
    """
    arguments.positive_float("learning_rate", learning_rate)
    arguments.positive_int("num_steps", num_steps)
    arguments.positive_float("clip_norm", clip_norm)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(1, num_steps // 20), num_steps, learning_rate * 0.01
    )
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule))


