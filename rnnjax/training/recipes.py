"""The compositions of the training pieces that experiments share: one model trained with checkpoints, batches
of random rows, several models logging into one run, and one model per seed in one compiled program.

    batches = random_rows({"x": xs, "y": ys}, batch_size=64, seed=0)       # step -> batch, a pure function
    params = train_model(loss_fn, params, OptimizerConfig(...), batches, 3000, key=key,
                         checkpoint_dir=run.path("checkpoints", "uni"), save_every=1000, run=PrefixedRun(run, "uni"))
    states = train_many(loss_fn, init_params, OptimizerConfig(...), device_batch_fn, 3000,
                        keys=jax.random.split(key, 3), checkpoint_dir=..., save_every=1000, run=run)  # [3, ...]
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable

import jax
import numpy as np

from rnnjax.checks import arguments
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.loop import fit, fit_many, init_many
from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
from rnnjax.training.step import LossFn, TrainState, init_state, make_train_step


class PrefixedRun:
    """A run whose logged metric names get ``<prefix>/`` (several models share one metrics.jsonl)."""

    def __init__(self, run: Any, prefix: str):
        if not prefix:
            raise ValueError(f"prefix must be a non-empty string; got {prefix!r}")
        self.run, self.prefix = run, prefix

    def log(self, step: int, **metrics: Any) -> None:
        self.run.log(step, **{f"{self.prefix}/{k}": v for k, v in metrics.items()})


def random_rows(arrays: dict[str, np.ndarray], batch_size: int, seed: int) -> Callable[[int], dict[str, np.ndarray]]:
    """``batch(step)``: ``batch_size`` rows drawn with replacement by ``default_rng([seed, step])`` (resumable)."""
    arguments.positive_int("batch_size", batch_size)
    sizes = {len(value) for value in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"arrays must share their number of rows; got {sorted(sizes)}")
    size = sizes.pop()

    def batch(step: int) -> dict[str, np.ndarray]:
        rows = np.random.default_rng([seed, step]).integers(size, size=batch_size)
        return {name: value[rows] for name, value in arrays.items()}

    return batch


def train_model(
    loss_fn: LossFn,
    params: Any,
    optimizer: OptimizerConfig,
    batches: Callable[[int], Any],
    num_steps: int,
    *,
    key: jax.Array,
    checkpoint_dir: str | pathlib.Path,
    save_every: int,
    **hooks: Any,
) -> Any:
    """make_optimizer -> init_state(params, fold_in(key, 1)) -> fit with a Checkpointer; the trained params.

    A run stopped part-way resumes from ``checkpoint_dir``; ``hooks`` are :func:`rnnjax.training.loop.fit`'s
    (``log_every`` defaults to 50 steps, or a quarter of a shorter run, so a short run still logs a curve).
    """
    hooks.setdefault("log_every", max(1, min(50, num_steps // 4)))
    transformation = make_optimizer(optimizer)
    state = init_state(params, transformation, jax.random.fold_in(key, 1))
    step = make_train_step(loss_fn, transformation)
    with Checkpointer(checkpoint_dir, save_every=save_every) as checkpointer:
        state = fit(state, step, batches, num_steps, checkpointer=checkpointer, **hooks)
    return state.params


def train_many(
    loss_fn: LossFn,
    init_params: Callable[[jax.Array], Any],
    optimizer: OptimizerConfig,
    batch_fn: Callable[[jax.Array], Any],
    num_steps: int,
    *,
    keys: jax.Array,
    checkpoint_dir: str | pathlib.Path,
    save_every: int,
    **hooks: Any,
) -> TrainState:
    """init_many(init_params, keys) -> fit_many with a Checkpointer; the stacked states (leaves ``[runs, ...]``).

    One model per key (``keys``: ``[runs]`` typed keys, e.g. one per seed) in one compiled program (vmap over
    runs inside a scan over steps), all on the batches of the jittable ``batch_fn(step)``. A run stopped part-way
    resumes from ``checkpoint_dir``. With ``run`` in ``hooks``, every ``log_every`` steps (default as in
    :func:`train_model`) each run's mean loss is logged as ``train/loss_run<i>`` next to the mean over runs.
    """
    hooks.setdefault("log_every", max(1, min(50, num_steps // 4)))
    transformation = make_optimizer(optimizer)
    states = init_many(init_params, transformation, keys)
    with Checkpointer(checkpoint_dir, save_every=save_every) as checkpointer:
        start = checkpointer.latest_step() or 0
        states, metrics = fit_many(loss_fn, transformation, states, batch_fn, num_steps, checkpointer=checkpointer,
                                   **hooks)  # fmt: skip
    if hooks.get("run") is not None and metrics:
        _log_runs(hooks["run"], np.asarray(metrics["loss"]), start, hooks["log_every"])
    return states


def checkpoint_interval(num_steps: int) -> int:
    """About a third of the run and a multiple of the default ``log_every``, for :func:`train_many`'s ``save_every``.

    ``fit_many`` compiles its scan once per chunk length and ends a chunk wherever a hook acts: an interval that
    is a multiple of the logging interval keeps one length (40 steps logged every 10 and saved every 13 compiled 7).
    """
    arguments.positive_int("num_steps", num_steps)
    log_every = max(1, min(50, num_steps // 4))
    return log_every * max(1, num_steps // 3 // log_every)


def _log_runs(run: Any, losses: np.ndarray, start: int, every: int) -> None:
    """Each run's mean of ``losses [runs, steps]`` over every ``every`` steps after ``start``, at the window's end."""
    for begin in range(0, losses.shape[1], every):
        window = losses[:, begin : begin + every].mean(1)
        run.log(start + min(begin + every, losses.shape[1]), **{f"train/loss_run{i}": v for i, v in enumerate(window)})
