"""The host loop for one run (:func:`fit`) or many in one program (:func:`fit_many`), with their hooks.

API:
    state = fit(state, train_step, batch_fn, num_steps, run=run, eval_fn=evaluate, checkpointer=checkpointer)
    states = init_many(init_params, optimizer, jax.random.split(key, 8))                  # 8 runs, stacked
    states, metrics = fit_many(loss_fn, optimizer, states, batch_fn, num_steps, run=run)  # vmap x scan

``fit`` and ``fit_many`` share their keyword arguments and hooks (:mod:`rnnjax.training.hooks`: run logging,
``eval_fn`` every ``eval_every`` steps, checkpoints, progress bar, time budget); ``run`` and ``checkpointer`` are
anything with the methods of :class:`~rnnjax.training.hooks.RunLike` and
:class:`~rnnjax.training.hooks.CheckpointerLike`.

``fit`` reads each step's ``finite`` flag one step late (while the next step runs, so the host never waits for the
device just to read it), and at once where a hook acts; a step after a non-finite one leaves the state unchanged on
the device, so the stop names the first bad step and returns the last good state.

A sweep over learning rates (or weight decays) uses one optimizer whose state holds its hyperparameters:
``optimizer = make_sweep_optimizer(config)``, ``init_many(..., hparams={"learning_rate": rates})``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax.checks import arguments
from rnnjax.training.hooks import Hooks, Loop
from rnnjax.training.step import LossFn, TrainState, init_state, train_step_body


def _batch_source(batches: Callable[[int], Any] | Iterable[Any], start: int) -> Callable[[int], Any]:
    """A callable step -> batch; an iterable is advanced past the first ``start`` batches (resume)."""
    if callable(batches):
        return batches
    iterator = iter(batches)

    def next_batch(step: int) -> Any:
        try:
            return next(iterator)
        except StopIteration:
            message = f"batches: the iterable ran out at step {step} (it gave {step} batches, resumed ones included)"
            raise ValueError(f"{message}; give one batch per step up to num_steps, or step -> batch") from None

    for step in range(start):
        next_batch(step)
    return next_batch


def _start(state: TrainState, hooks: Hooks, num_steps: int) -> tuple[TrainState, int]:
    """Check ``num_steps`` and resume from the checkpointer's latest checkpoint if there is one."""
    arguments.positive_int("num_steps", num_steps)
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState from init_state or init_many; got {type(state).__name__}")
    if hooks.checkpointer is not None:
        restored = hooks.checkpointer.restore_latest(state)
        state = state if restored is None else restored
    start = int(np.asarray(state.step).reshape(-1)[0])
    if start > num_steps:
        raise ValueError(
            f"num_steps is the total number of steps, at least the {'checkpoint' if hooks.checkpointer else 'state'}'s "
            f"step {start}; got num_steps={num_steps} (the state would come back at step {start}, not {num_steps})"
        )
    return state, start


def fit(
    state: TrainState,
    train_step: Callable,
    batches: Callable[[int], Any] | Iterable[Any],
    num_steps: int,
    **hooks: Any,
) -> TrainState:
    """Train until ``state.step == num_steps``, resuming from ``checkpointer``'s latest checkpoint if any.

    Args:
      state: initial state (donated: do not reuse it afterwards).
      train_step: from :func:`make_train_step`.
      batches: ``batch_fn(step) -> batch`` (exact resume), or an iterable of batches.
      num_steps: total number of steps (not additional steps), >= 1.
      **hooks: the fields of :class:`Hooks`, shared with :func:`fit_many`:
        ``run`` (a :class:`rnnjax.training.runs.Run`; train metrics logged as ``train/<name>``, means over
        ``log_every`` steps; eval metrics as ``val/<name>``), ``eval_fn(params) -> dict`` run every
        ``eval_every`` steps and at the end, ``checkpointer`` (a :class:`rnnjax.training.checkpoint.Checkpointer`,
        saved at its interval with the latest eval metrics, and at the end), ``progress`` (tqdm bar; default
        :func:`progress_enabled`), ``description``, ``max_seconds`` (stop early, evaluating and checkpointing
        as at the last step, after this many seconds of ``clock``: wall time by default, ``time.process_time``
        for CPU time; ``state.step`` tells where it stopped).

    Returns:
      The final state. Raises :class:`NonFiniteError` naming the step on a non-finite loss or gradient.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
      >>> def loss_fn(params, batch, key):  # fit y = w x
      ...     return jnp.mean((params["w"] * batch["x"] - batch["y"]) ** 2), {}
      >>> batch = {"x": jnp.arange(4.0), "y": 2 * jnp.arange(4.0)}  # each [points]
      >>> optimizer = make_optimizer(OptimizerConfig(learning_rate=0.1))
      >>> from rnnjax.training.loop import fit
      >>> from rnnjax.training.step import init_state, make_train_step
      >>> state = init_state({"w": jnp.zeros(())}, optimizer, jax.random.key(0))
      >>> state = fit(state, make_train_step(loss_fn, optimizer), lambda step: batch, num_steps=50, progress=False)
      >>> int(state.step), bool(abs(state.params["w"] - 2.0) < 0.2)
      (50, True)
    """
    if not callable(train_step):
        raise TypeError(f"train_step must be callable (from make_train_step); got {train_step!r}")
    settings = Hooks(**hooks)
    state, start = _start(state, settings, num_steps)
    get_batch, guarded = _batch_source(batches, start), _guarded(train_step)
    loop, healthy, unread = Loop(settings, start, num_steps), jnp.array(True), None
    for step in range(start, num_steps):
        state, metrics, healthy = guarded(state, get_batch(step), healthy)
        if unread is not None:
            _check_finite(loop, state, *unread)  # the previous step's flag, read while this step runs
        unread, last = (step, metrics), loop.is_last(step + 1)
        if loop.acts(step + 1, last):
            _check_finite(loop, state, *unread)  # before a hook reads the state
            unread = None
        if loop.after(step + 1, state, metrics, 1, last):
            break
    if unread is not None:
        _check_finite(loop, state, *unread)
    loop.close()
    return state


def _check_finite(loop: Loop, state: TrainState, step: int, metrics: dict[str, jax.Array]) -> None:
    if not bool(metrics["finite"]):
        loop.raise_non_finite(
            state,
            f"non-finite loss, gradient or updated params at step {step} (loss={float(metrics['loss'])}, "
            f"grad_norm={float(metrics['grad_norm'])})",
            step,
        )


def _guarded_body(train_step: Callable, state: TrainState, batch: Any, healthy: jax.Array):
    """One step that changes nothing once ``healthy`` is False: after a non-finite step the state stays the last good
    one on the device, however late the host reads the flag."""
    new_state, metrics = train_step(state, batch)
    healthy = healthy & metrics["finite"]
    kept = jax.tree.map(lambda new, old: jax.lax.select(healthy, new, old), new_state, state)
    return kept, metrics, healthy


@functools.lru_cache(maxsize=16)
def _guarded_cached(train_step: Callable) -> Callable:
    return jax.jit(functools.partial(_guarded_body, train_step), donate_argnames="state")


def _guarded(train_step: Callable) -> Callable:
    """``(state, batch, healthy) -> (state, metrics, healthy)``, jitted once per step function, donating the state."""
    try:
        return _guarded_cached(train_step)
    except TypeError:  # unhashable: compile for this call
        return jax.jit(functools.partial(_guarded_body, train_step), donate_argnames="state")


# --------------------------------------------------------------------------- many runs at once


def init_many(
    init_params: Callable[[jax.Array], Any],
    optimizer: optax.GradientTransformation,
    keys: jax.Array,
    *,
    hparams: dict[str, Any] | None = None,
) -> TrainState:
    """Stacked TrainState for N runs: ``init_params(key_i)`` with ``keys: [N]`` typed keys.

    ``hparams`` (``{"learning_rate": [N]}``, ...) sets each run's hyperparameters in the state of an optimizer
    from :func:`make_sweep_optimizer`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from rnnjax.training.loop import init_many
      >>> keys = jax.random.split(jax.random.key(0), 3)  # [N] typed keys
      >>> states = init_many(lambda key: {"w": jax.random.normal(key, (2,))}, optax.sgd(0.1), keys)
      >>> states.params["w"].shape, states.step.shape  # leaves [N, ...]
      ((3, 2), (3,))
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation; got {type(optimizer).__name__}")
    keys = jnp.asarray(keys)
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) or keys.ndim != 1:
        raise TypeError(
            f"keys must be a [runs] array of typed keys (jax.random.split); got {keys.dtype}{list(keys.shape)}"
        )
    try:
        hash((init_params, optimizer))
    except TypeError:  # unhashable callables cannot key the compilation cache: compile for this call
        states = jax.jit(functools.partial(_init_many_body, init_params, optimizer))(keys)
    else:
        states = _init_many(init_params, optimizer, keys)
    return states if hparams is None else _with_hparams(states, hparams)


def _with_hparams(states: TrainState, hparams: dict[str, Any]) -> TrainState:
    """Put per-run hyperparameters (leaves ``[N]``) into the stacked optimizer state."""
    current = getattr(states.opt_state, "hyperparams", None)
    if current is None:
        raise TypeError("hparams needs an optimizer that holds its hyperparameters: use make_sweep_optimizer(config)")
    unknown = set(hparams) - set(current)
    if unknown:
        raise ValueError(f"hparams must name hyperparameters among {sorted(current)}; got {sorted(unknown)}")
    runs = jax.tree.leaves(states.step)[0].shape[0]
    merged = dict(current)
    for name, values in hparams.items():
        arguments.has_shape(f"hparams[{name!r}]", jnp.asarray(values), (runs,))
        merged[name] = jnp.asarray(values, current[name].dtype)
    return states._replace(opt_state=states.opt_state._replace(hyperparams=merged))


def _init_many_body(init_params, optimizer, keys):
    def one(key):  # vmapped over runs
        init_key, train_key = jax.random.split(key)
        return init_state(init_params(init_key), optimizer, train_key)

    return jax.vmap(one)(keys)


# Compiled once per (init_params, optimizer) pair: calling init_many again reuses the program
# (measured: 1.5 s of compilation per call before, for 64 LSTMs).
_init_many = jax.jit(_init_many_body, static_argnums=(0, 1))


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "batch_fn", "num_steps", "per_run_batches"))
def _scan_many(loss_fn, optimizer, batch_fn, num_steps, states, start, per_run_batches=False):
    step_one = functools.partial(train_step_body, loss_fn, optimizer)

    def one_step(carry, step):
        batch = batch_fn(step)  # computed once, outside the vmap: shared, or leaves [runs, ...] per run
        return jax.vmap(step_one, in_axes=(0, 0 if per_run_batches else None))(carry, batch)  # vmapped over runs

    return jax.lax.scan(one_step, states, start + jnp.arange(num_steps, dtype=jnp.int32))


def _next_stop(begin: int, num_steps: int, chunk_steps: int | None, every: tuple[int, ...]) -> int:
    """The first step after ``begin`` where a chunk ends: ``chunk_steps`` later, or a hook's interval, or the end."""
    stops = [num_steps] if chunk_steps is None else [num_steps, begin + chunk_steps]
    stops += [(begin // interval + 1) * interval for interval in every]
    return min(stops)


def fit_many(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    states: TrainState,
    batch_fn: Callable[[jax.Array], Any],
    num_steps: int,
    *,
    chunk_steps: int | None = None,
    per_run_batches: bool = False,
    **hooks: Any,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Train N runs in one compiled program: ``vmap`` over runs inside ``lax.scan`` over steps.

    Args:
      loss_fn: as for :func:`make_train_step`.
      optimizer: one transformation for all runs (per-run hyperparameters: :func:`make_sweep_optimizer`).
      states: stacked states (leaves ``[N, ...]``) from :func:`init_many`, all at the same step.
      batch_fn: jittable ``batch_fn(step) -> batch`` (data on device), shared by all runs.
      num_steps: total number of steps, >= 1.
      chunk_steps: at most this many steps per compiled scan (default: up to the next hook).
      per_run_batches: ``batch_fn(step)`` gives each run its own batch (leaves ``[N, ...]``, e.g. each seed its
        own data split) instead of one batch for all runs.
      **hooks: as for :func:`fit` (:class:`Hooks`). Chunks end where a hook acts (every ``log_every``
        steps with a run, every ``eval_every``, at the checkpointer's interval); ``eval_fn`` gets the
        stacked params, train metrics are means over runs and steps.

    Returns:
      ``(states, metrics)`` with metric leaves ``[N, steps]`` (the steps of this call). Runs whose loss went
      non-finite stop updating; a :class:`NonFiniteError` names the runs and the first bad step.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
      >>> def loss_fn(params, batch, key):  # fit y = w x
      ...     return jnp.mean((params["w"] * batch["x"] - batch["y"]) ** 2), {}
      >>> batch = {"x": jnp.arange(4.0), "y": 2 * jnp.arange(4.0)}  # each [points]
      >>> optimizer = make_optimizer(OptimizerConfig(learning_rate=0.1))
      >>> from rnnjax.training.loop import fit_many, init_many
      >>> keys = jax.random.split(jax.random.key(0), 3)  # 3 runs
      >>> states = init_many(lambda key: {"w": jnp.zeros(())}, optimizer, keys)
      >>> states, metrics = fit_many(loss_fn, optimizer, states, lambda step: batch, num_steps=50, progress=False)
      >>> states.params["w"].shape, metrics["loss"].shape  # [N], [N, steps]
      ((3,), (3, 50))
      >>> bool((abs(states.params["w"] - 2.0) < 0.2).all())
      True
    """
    if chunk_steps is not None:
        arguments.positive_int("chunk_steps", chunk_steps)
    settings = Hooks(**{"description": "fit_many", **hooks})
    states, start = _start(states, settings, num_steps)
    loop, history, begin = Loop(settings, start, num_steps), [], start
    while begin < num_steps:
        stop = _next_stop(begin, num_steps, chunk_steps, settings.boundaries())
        states, metrics = _scan_many(loss_fn, optimizer, batch_fn, stop - begin, states, jnp.int32(begin),
                                     per_run_batches=per_run_batches)
        history.append(metrics)
        _check_runs_finite(loop, states, metrics["finite"], begin)
        if getattr(settings.run, "events", None) is not None:  # one TensorBoard curve per run (models/<index>/)
            settings.run.events.many(stop, {k: jnp.swapaxes(v, 0, 1) for k, v in metrics.items()})
        last = loop.after(stop, states, metrics, stop - begin, loop.is_last(stop))
        begin = stop
        if last:
            break
    loop.close()
    if not history:
        return states, {}
    return states, {k: jnp.swapaxes(jnp.concatenate([h[k] for h in history]), 0, 1) for k in history[0]}


def _check_runs_finite(loop: Loop, states: TrainState, finite: jax.Array, begin: int) -> None:
    bad = ~np.asarray(finite)  # [steps, runs]
    if bad.any():
        steps, runs = np.nonzero(bad)
        first = begin + int(steps.min())
        loop.raise_non_finite(
            states, f"non-finite loss or gradient in runs {sorted(set(runs.tolist()))}, first at step {first}", first
        )


# --------------------------------------------------------------------------- evaluation helpers


def batched_apply(fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], batch_size: int) -> np.ndarray:
    """Concatenate ``fn(*batch)`` over consecutive batches of ``arrays`` (leading axis).

    The last batch is padded (by repeating its first row) to ``batch_size`` so a jitted ``fn``
    compiles once; the padded outputs are dropped.
    """
    arguments.positive_int("batch_size", batch_size)
    total = len(arrays[0])
    outputs = []
    for begin in range(0, total, batch_size):
        batch = [a[begin : begin + batch_size] for a in arrays]
        size = len(batch[0])
        if size < batch_size:
            batch = [np.concatenate([b, np.repeat(b[:1], batch_size - size, axis=0)]) for b in batch]
        outputs.append(np.asarray(fn(*batch))[:size])
    return np.concatenate(outputs)
