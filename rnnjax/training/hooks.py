"""What :func:`~rnnjax.training.loop.fit` and :func:`~rnnjax.training.loop.fit_many` do besides training: the
:class:`Hooks` (their shared keyword arguments), the protocols a run and a checkpointer meet, and :class:`Loop`,
the bookkeeping of one call (pending metrics, evaluation, checkpoints, progress bar, time budget).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable, Protocol, runtime_checkable

import jax
import numpy as np
from tqdm.auto import tqdm

from rnnjax.checks import arguments
from rnnjax.training.step import NonFiniteError


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal and never under CI."""
    return not os.environ.get("CI") and sys.stderr.isatty()


def _mean_metrics(pending: list[dict[str, jax.Array]]) -> dict[str, float]:
    """Mean of every metric over all steps (and runs) in ``pending``."""
    stacked = jax.device_get(pending)
    keys = [k for k in stacked[0] if k != "finite"]
    return {k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in stacked]))) for k in keys}


@runtime_checkable
class RunLike(Protocol):
    """Where metrics go: :class:`rnnjax.training.runs.Run`, :class:`rnnjax.training.recipes.PrefixedRun`."""

    def log(self, step: int, **metrics: Any) -> None: ...


@runtime_checkable
class CheckpointerLike(Protocol):
    """What the loop asks of a checkpointer (:class:`rnnjax.training.checkpoint.Checkpointer`)."""

    save_every: int

    def should_save(self, step: int) -> bool: ...

    def save(self, step: int, state: Any, metrics: dict[str, float] | None = None, *, force: bool = False) -> bool: ...

    def restore_latest(self, template: Any) -> Any: ...

    def latest_step(self) -> int | None: ...

    def wait(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What :func:`fit` and :func:`fit_many` do besides training; their keyword arguments (see :func:`fit`)."""

    run: RunLike | None = None
    eval_fn: Callable[[Any], dict[str, float]] | None = None
    eval_every: int = 0
    log_every: int = 50
    checkpointer: CheckpointerLike | None = None
    progress: bool | None = None
    description: str = "train"
    max_seconds: float | None = None
    clock: Callable[[], float] = time.perf_counter

    def __post_init__(self):
        arguments.nonnegative_int("eval_every", self.eval_every)
        arguments.positive_int("log_every", self.log_every)
        if self.eval_every and self.eval_fn is None:
            raise ValueError(f"eval_every={self.eval_every} needs an eval_fn; got eval_fn=None")
        if self.eval_fn is not None and not callable(self.eval_fn):
            raise TypeError(f"eval_fn must be callable params -> dict; got {self.eval_fn!r}")
        if self.max_seconds is not None:
            arguments.positive_float("max_seconds", self.max_seconds)
        if self.run is not None and not isinstance(self.run, RunLike):
            raise TypeError(f"run must have log(step, **metrics) (a Run); got {type(self.run).__name__}")
        if self.checkpointer is not None and not isinstance(self.checkpointer, CheckpointerLike):
            raise TypeError(f"checkpointer must be a Checkpointer (save, should_save, restore_latest, latest_step, "
                            f"wait, save_every); got {type(self.checkpointer).__name__}")  # fmt: skip

    def boundaries(self) -> tuple[int, ...]:
        """Step intervals at which something happens (logging with a run, evaluation, checkpoints)."""
        every = [self.log_every if self.run is not None else 0, self.eval_every]
        every.append(self.checkpointer.save_every if self.checkpointer is not None else 0)
        return tuple(e for e in every if e)


class Loop:
    """The hooks' bookkeeping for one call: pending metrics, last evaluation, progress bar and time budget."""

    def __init__(self, hooks: Hooks, start: int, num_steps: int):
        self.hooks, self.num_steps = hooks, num_steps
        show = progress_enabled() if hooks.progress is None else hooks.progress
        self.bar = tqdm(total=num_steps, initial=start, desc=hooks.description, disable=not show, dynamic_ncols=True)
        self.pending, self.last_eval, self.tick = [], {}, (time.perf_counter(), start)
        self.deadline = math.inf if hooks.max_seconds is None else hooks.clock() + hooks.max_seconds

    def is_last(self, done: int) -> bool:
        """Whether training stops after ``done`` steps (the end, or the time budget spent); reads the clock once."""
        return done >= self.num_steps or self.hooks.clock() > self.deadline

    def acts(self, done: int, last: bool) -> bool:
        """Whether a hook reads the state or the metrics after ``done`` steps."""
        hooks, saver = self.hooks, self.hooks.checkpointer
        evaluates = hooks.eval_fn is not None and hooks.eval_every and done % hooks.eval_every == 0
        return last or done % hooks.log_every == 0 or bool(evaluates) or (saver is not None and saver.should_save(done))

    def after(self, done: int, state: Any, metrics: dict[str, jax.Array], steps: int, last: bool) -> bool:
        """Log, evaluate and checkpoint after ``done`` steps; returns ``last`` (True: training stops here)."""
        hooks = self.hooks
        self.pending.append(metrics)
        if done % hooks.log_every == 0 or last:
            self._log(done)
        if hooks.eval_fn is not None and ((hooks.eval_every and done % hooks.eval_every == 0) or last):
            self.last_eval = {f"val/{k}": float(v) for k, v in hooks.eval_fn(state.params).items()}
            if hooks.run is not None:
                hooks.run.log(done, **self.last_eval)
        if hooks.checkpointer is not None and (hooks.checkpointer.should_save(done) or last):
            hooks.checkpointer.save(done, state, metrics=self.last_eval or None, force=last)
        self.bar.update(steps)
        return last

    def _log(self, done: int) -> None:
        logged = _mean_metrics(self.pending)
        self.pending = []
        now = time.perf_counter()
        logged["steps_per_s"] = (done - self.tick[1]) / max(now - self.tick[0], 1e-9)
        self.tick = (now, done)
        self.bar.set_postfix(loss=f"{logged['loss']:.4g}", refresh=False)
        if self.hooks.run is not None:
            self.hooks.run.log(done, **{f"train/{k}": v for k, v in logged.items()})

    def close(self) -> None:
        self.bar.close()
        if self.hooks.checkpointer is not None:
            self.hooks.checkpointer.wait()

    def raise_non_finite(self, state: Any, message: str, step: int) -> None:
        self.bar.close()
        checkpointer = self.hooks.checkpointer
        where = f"; the last good checkpoint is step {checkpointer.latest_step()}" if checkpointer is not None else ""
        raise NonFiniteError(f"{message}; training stopped{where}", state=state, step=step)


