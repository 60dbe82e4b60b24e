"""Checkpoints with Orbax: every N steps (keep the last k), the best by a metric, resume from the latest.

API:
    checkpointer = Checkpointer(run.path("checkpoints"), save_every=500, keep=3, best_metric="val/loss")
    state = checkpointer.restore_latest(template) or template
    checkpointer.save(step, state, metrics={"val/loss": 0.31})

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a process
killed during a save leaves the earlier checkpoints loadable (the partial folder is ignored).
Typed PRNG keys are stored as their raw ``key_data`` and re-wrapped with the template's implementation.
"""

from __future__ import annotations

import enum
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from rnnjax.core.cells import _enum


class BestMode(enum.Enum):
    MIN = "min"
    MAX = "max"


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def to_saveable(tree: Any) -> Any:
    """Replace typed PRNG keys by their uint32 key data (Orbax stores plain arrays)."""
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def from_saveable(restored: Any, template: Any) -> Any:
    """Inverse of :func:`to_saveable`: wrap key data back where ``template`` holds typed keys."""

    def wrap(data, like):
        if _is_key(like):
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))
        return data

    return jax.tree.map(wrap, restored, template)


def _manager(directory: pathlib.Path, keep: int | None, best_metric: str | None, mode: BestMode, asynchronous: bool):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        best_fn=None if best_metric is None else (lambda metrics: float(metrics[best_metric])),
        best_mode=mode.value,
        keep_checkpoints_without_metrics=best_metric is None,
        enable_async_checkpointing=asynchronous,
        create=True,
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


class Checkpointer:
    """Two Orbax managers: ``<dir>/latest`` (every ``save_every`` steps, last ``keep``) and ``<dir>/best``.

    Args:
      directory: root folder (created).
      save_every: save to ``latest`` when ``step % save_every == 0`` (``save(..., force=True)`` always saves).
      keep: number of latest checkpoints kept.
      best_metric: metric name (a key of ``save``'s ``metrics``) that selects the single best checkpoint.
      best_mode: "min" or "max".
      asynchronous: write in a background thread (Orbax async checkpointing).
    """

    def __init__(
        self,
        directory: str | pathlib.Path,
        *,
        save_every: int,
        keep: int = 3,
        best_metric: str | None = None,
        best_mode: BestMode | str = BestMode.MIN,
        asynchronous: bool = True,
    ):
        if not isinstance(save_every, int) or save_every < 1:
            raise ValueError(f"save_every must be a positive int; got {save_every!r}")
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive int; got {keep!r}")
        self.directory = pathlib.Path(directory)
        self.save_every = save_every
        self.best_metric = best_metric
        mode = _enum(BestMode, best_mode, "best_mode")
        self._latest = _manager(self.directory / "latest", keep, None, mode, asynchronous)
        self._best = None
        if best_metric is not None:
            self._best = _manager(self.directory / "best", 1, best_metric, mode, asynchronous)

    def should_save(self, step: int) -> bool:
        return step % self.save_every == 0

    def save(self, step: int, state: Any, metrics: dict[str, float] | None = None, *, force: bool = False) -> bool:
        """Save ``state`` at ``step`` to ``latest`` (on the interval or when forced) and, given the metric, to ``best``.

        Returns True if anything was written.
        """
        step = int(step)
        tree = to_saveable(state)
        wrote = False
        if (force or self.should_save(step)) and step not in self._latest.all_steps():
            self._latest.save(step, args=ocp.args.StandardSave(tree), force=True)
            wrote = True
        if self._best is not None and metrics and self.best_metric in metrics:
            if step not in self._best.all_steps():
                clean = {k: float(v) for k, v in metrics.items()}
                wrote |= bool(self._best.save(step, args=ocp.args.StandardSave(tree), metrics=clean, force=True))
        return wrote

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def best_step(self) -> int | None:
        return None if self._best is None else self._best.best_step()

    def _restore(self, manager: ocp.CheckpointManager, step: int | None, template: Any) -> Any:
        if step is None:
            return None
        manager.wait_until_finished()
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(template))
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
        return from_saveable(restored, template)

    def restore_latest(self, template: Any) -> Any:
        """The latest saved state with the structure of ``template``, or None if nothing was saved."""
        self._latest.wait_until_finished()
        return self._restore(self._latest, self._latest.latest_step(), template)

    def restore_best(self, template: Any) -> Any:
        """The best state by ``best_metric``, or None."""
        if self._best is None:
            raise ValueError("restore_best needs a Checkpointer built with best_metric")
        self._best.wait_until_finished()
        return self._restore(self._best, self._best.best_step(), template)

    def wait(self) -> None:
        """Block until background writes are complete."""
        self._latest.wait_until_finished()
        if self._best is not None:
            self._best.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self._latest.close()
        if self._best is not None:
            self._best.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
