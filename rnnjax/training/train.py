"""Training: Optax optimizers from a config, a donated jitted step, a host loop and many runs at once.

API:
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-3, clip_norm=1.0))
    state = init_state(params, optimizer, jax.random.key(0))        # TrainState pytree
    train_step = make_train_step(loss_fn, optimizer)                 # jit, donates the state
    state = fit(state, train_step, batch_fn, num_steps, run=run, checkpointer=checkpointer)
    states, metrics = fit_many(loss_fn, optimizer, states, batch_fn, num_steps)   # vmap x scan

``loss_fn(params, batch, key) -> (loss, metrics)`` where ``metrics`` is a dict of scalars.
Step ``s`` uses the key ``fold_in(state.key, s)``; together with a data order that is a pure
function of the step (``batch_fn(step)``) this makes a run resumable bit for bit.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import os
import sys
import time
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from rnnjax.core.cells import _enum

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class OptimizerName(enum.Enum):
    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


class Decay(enum.Enum):
    """Learning-rate shape after warm-up: CONSTANT, or COSINE down to ``final_fraction * learning_rate``."""

    CONSTANT = "constant"
    COSINE = "cosine"


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
        object.__setattr__(self, "name", _enum(OptimizerName, self.name, "name"))
        object.__setattr__(self, "decay", _enum(Decay, self.decay, "decay"))
        if self.decay is Decay.COSINE and self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"decay_steps must exceed warmup_steps ({self.warmup_steps}) for a cosine decay; got {self.decay_steps}"
            )
        if isinstance(self.learning_rate, (int, float)) and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive; got {self.learning_rate!r}")


def make_schedule(config: OptimizerConfig) -> optax.Schedule:
    """lr(t) = peak * min(1, t / warmup) * d(t), d = 1 (CONSTANT) or f + (1 - f) (1 + cos(pi p)) / 2 (COSINE).

    ``p = clip((t - warmup) / (decay_steps - warmup), 0, 1)``. Pure jnp, so ``peak`` may be traced.
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


class TrainState(NamedTuple):
    """Everything a run needs to continue: params, optimizer state, step (int32 scalar) and base key."""

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


def init_state(params: Any, optimizer: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """TrainState at step 0; ``key`` must be a typed key from ``jax.random.key``."""
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        raise TypeError(f"key must be a typed PRNG key from jax.random.key(seed); got dtype {jnp.asarray(key).dtype}")
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), key)


class NonFiniteError(FloatingPointError):
    """Raised when a step produced a non-finite loss or gradient; ``state`` is the last good state."""

    def __init__(self, message: str, state: Any = None, step: int | None = None):
        super().__init__(message)
        self.state = state
        self.step = step


def train_step_body(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, state: TrainState, batch: Any
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update with key fold_in(state.key, state.step); a non-finite loss or gradient leaves the state unchanged.

    Pure and unbatched: jitted by :func:`make_train_step`, vmapped and scanned by :func:`fit_many`.
    """
    key = jax.random.fold_in(state.key, state.step)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    kept = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old),
        (params, opt_state, state.step + 1),
        (state.params, state.opt_state, state.step),
    )
    return TrainState(*kept, state.key), {**metrics, "loss": loss, "grad_norm": grad_norm, "finite": finite}


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> Callable:
    """``train_step(state, batch) -> (state, metrics)``, jitted, donating ``state``."""
    return jax.jit(functools.partial(train_step_body, loss_fn, optimizer), donate_argnames="state")


# --------------------------------------------------------------------------- the host loop


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal and never under CI."""
    return not os.environ.get("CI") and sys.stderr.isatty()


def _batch_source(batches: Callable[[int], Any] | Iterable[Any], start: int) -> Callable[[int], Any]:
    """A callable step -> batch; an iterable is advanced past the first ``start`` batches (resume)."""
    if callable(batches):
        return batches
    iterator = iter(batches)
    for _ in range(start):
        next(iterator)
    return lambda step: next(iterator)


def _mean_metrics(pending: list[dict[str, jax.Array]]) -> dict[str, float]:
    stacked = jax.device_get(pending)
    keys = [k for k in stacked[0] if k != "finite"]
    return {k: float(np.mean([m[k] for m in stacked])) for k in keys}


def _raise_non_finite(state: TrainState, metrics: dict[str, jax.Array], step: int, checkpointer: Any) -> None:
    where = f"; the last good checkpoint is step {checkpointer.latest_step()}" if checkpointer is not None else ""
    raise NonFiniteError(
        f"non-finite loss or gradient at step {step} (loss={float(metrics['loss'])}, "
        f"grad_norm={float(metrics['grad_norm'])}); training stopped{where}",
        state=state,
        step=step,
    )


def fit(
    state: TrainState,
    train_step: Callable,
    batches: Callable[[int], Any] | Iterable[Any],
    num_steps: int,
    *,
    run: Any = None,
    eval_fn: Callable[[Any], dict[str, float]] | None = None,
    eval_every: int = 0,
    log_every: int = 50,
    checkpointer: Any = None,
    progress: bool | None = None,
    description: str = "train",
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainState:
    """Train until ``state.step == num_steps``, resuming from ``checkpointer``'s latest checkpoint if any.

    Args:
      state: initial state (donated: do not reuse it afterwards).
      train_step: from :func:`make_train_step`.
      batches: ``batch_fn(step) -> batch`` (exact resume), or an iterable of batches.
      num_steps: total number of steps (not additional steps).
      run: a :class:`rnnjax.training.runs.Run`; train metrics are logged as ``train/<name>``
        (means over ``log_every`` steps), eval metrics as ``val/<name>``.
      eval_fn: ``eval_fn(params) -> dict`` run every ``eval_every`` steps and at the end.
      checkpointer: a :class:`rnnjax.training.checkpoint.Checkpointer`; saved at its interval
        (with the latest eval metrics for best-by-metric) and at the end.
      progress: show a tqdm bar (default: :func:`progress_enabled`).
      max_seconds: stop early (evaluating and checkpointing as at the last step) after this many
        seconds of ``clock`` in this call (wall time by default; ``time.process_time`` for CPU time);
        ``state.step`` tells where it stopped.

    Returns:
      The final state. Raises :class:`NonFiniteError` naming the step on a non-finite loss or gradient.
    """
    if checkpointer is not None:
        restored = checkpointer.restore_latest(state)
        state = state if restored is None else restored
    start = int(state.step)
    get_batch = _batch_source(batches, start)
    show = progress_enabled() if progress is None else progress
    bar = tqdm(total=num_steps, initial=start, desc=description, disable=not show, dynamic_ncols=True)
    pending, last_eval, tick = [], {}, (time.perf_counter(), start)
    deadline = math.inf if max_seconds is None else clock() + max_seconds
    for step in range(start, num_steps):
        state, metrics = train_step(state, get_batch(step))
        if not bool(metrics["finite"]):
            bar.close()
            _raise_non_finite(state, metrics, step, checkpointer)
        pending.append(metrics)
        done = step + 1
        last = done == num_steps or clock() > deadline
        if done % log_every == 0 or last:
            logged = _mean_metrics(pending)
            pending = []
            now = time.perf_counter()
            logged["steps_per_s"] = (done - tick[1]) / max(now - tick[0], 1e-9)
            tick = (now, done)
            bar.set_postfix(loss=f"{logged['loss']:.4g}", refresh=False)
            if run is not None:
                run.log(done, **{f"train/{k}": v for k, v in logged.items()})
        if eval_fn is not None and ((eval_every and done % eval_every == 0) or last):
            last_eval = {f"val/{k}": float(v) for k, v in eval_fn(state.params).items()}
            if run is not None:
                run.log(done, **last_eval)
        if checkpointer is not None and (checkpointer.should_save(done) or last):
            checkpointer.save(done, state, metrics=last_eval or None, force=last)
        bar.update(1)
        if last:
            break
    bar.close()
    if checkpointer is not None:
        checkpointer.wait()
    return state


# --------------------------------------------------------------------------- many runs at once


def _optimizer_for(optimizer: optax.GradientTransformation | Callable, hparams: Any) -> optax.GradientTransformation:
    if hparams is None:
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError("optimizer must be a GradientTransformation when hparams is None")
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("with hparams, optimizer must be a function hparams -> GradientTransformation")
    return optimizer(hparams)


def init_many(
    init_params: Callable[[jax.Array], Any],
    optimizer: optax.GradientTransformation | Callable,
    keys: jax.Array,
    *,
    hparams: Any = None,
) -> TrainState:
    """Stacked TrainState for N runs: ``init_params(key_i)`` with ``keys: [N]`` typed keys.

    ``hparams`` (leaves ``[N, ...]``) goes with an ``optimizer`` that is a function hparams -> transformation.
    """

    try:
        hash((init_params, optimizer))
    except TypeError:  # unhashable callables cannot key the compilation cache: compile for this call
        return jax.jit(functools.partial(_init_many_body, init_params, optimizer))(keys, hparams)
    return _init_many(init_params, optimizer, keys, hparams)


def _init_many_body(init_params, optimizer, keys, hparams):
    def one(key, hp):  # vmapped over runs
        init_key, train_key = jax.random.split(key)
        return init_state(init_params(init_key), _optimizer_for(optimizer, hp), train_key)

    return jax.vmap(one)(keys, hparams)


# Compiled once per (init_params, optimizer) pair: calling init_many again reuses the program
# (measured: 1.5 s of compilation per call before, for 64 LSTMs).
_init_many = jax.jit(_init_many_body, static_argnums=(0, 1))


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "batch_fn", "num_steps"))
def _scan_many(loss_fn, optimizer, batch_fn, num_steps, states, hparams, start):
    def one_step(carry, step):
        batch = batch_fn(step)  # shared by all runs: computed once, outside the vmap

        def one_run(state, hp):  # vmapped over runs
            return train_step_body(loss_fn, _optimizer_for(optimizer, hp), state, batch)

        return jax.vmap(one_run)(carry, hparams)

    return jax.lax.scan(one_step, states, start + jnp.arange(num_steps, dtype=jnp.int32))


def fit_many(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation | Callable,
    states: TrainState,
    batch_fn: Callable[[jax.Array], Any],
    num_steps: int,
    *,
    hparams: Any = None,
    chunk_steps: int | None = None,
    progress: bool | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Train N runs in one compiled program: ``vmap`` over runs inside ``lax.scan`` over steps.

    Args:
      loss_fn: as for :func:`make_train_step`.
      optimizer: a transformation shared by all runs, or (with ``hparams``) a function
        ``hparams_i -> transformation``, e.g. ``lambda lr: make_optimizer(replace(config, learning_rate=lr))``.
      states: stacked states (leaves ``[N, ...]``) from :func:`init_many`, all at the same step.
      batch_fn: jittable ``batch_fn(step) -> batch`` (data on device), shared by all runs.
      num_steps: total number of steps.
      hparams: pytree with leaves ``[N, ...]``, one setting per run.
      chunk_steps: steps per compiled scan (default all); the progress bar advances per chunk.

    Returns:
      ``(states, metrics)`` with metric leaves ``[N, steps]``. Runs whose loss went non-finite
      stop updating; a :class:`NonFiniteError` names the runs and the first bad step.
    """
    start = int(np.asarray(states.step).reshape(-1)[0])
    chunk = chunk_steps or max(num_steps - start, 1)
    show = progress_enabled() if progress is None else progress
    history = []
    with tqdm(total=num_steps, initial=start, desc="fit_many", disable=not show) as bar:
        for begin in range(start, num_steps, chunk):
            length = min(chunk, num_steps - begin)
            states, metrics = _scan_many(loss_fn, optimizer, batch_fn, length, states, hparams, jnp.int32(begin))
            history.append(metrics)
            bar.update(length)
    metrics = {k: jnp.swapaxes(jnp.concatenate([h[k] for h in history]), 0, 1) for k in history[0]}
    bad = ~np.asarray(metrics["finite"])
    if bad.any():
        runs, steps = np.nonzero(bad)
        raise NonFiniteError(
            f"non-finite loss or gradient in runs {sorted(set(runs.tolist()))}, "
            f"first at step {start + int(steps.min())}",
            state=states,
            step=start + int(steps.min()),
        )
    return states, metrics


# --------------------------------------------------------------------------- evaluation helpers


def batched_apply(fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], batch_size: int) -> np.ndarray:
    """Concatenate ``fn(*batch)`` over consecutive batches of ``arrays`` (leading axis).

    The last batch is padded (by repeating its first row) to ``batch_size`` so a jitted ``fn``
    compiles once; the padded outputs are dropped.
    """
    total = len(arrays[0])
    outputs = []
    for begin in range(0, total, batch_size):
        batch = [a[begin : begin + batch_size] for a in arrays]
        size = len(batch[0])
        if size < batch_size:
            batch = [np.concatenate([b, np.repeat(b[:1], batch_size - size, axis=0)]) for b in batch]
        outputs.append(np.asarray(fn(*batch))[:size])
    return np.concatenate(outputs)
