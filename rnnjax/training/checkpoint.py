"""Checkpoints with Orbax: every N steps (keep the last k), the best by a metric, resume from the newest intact one.

API:
    checkpointer = Checkpointer(run.path("checkpoints"), save_every=500, keep=3, best_metric="val/loss")
    state = checkpointer.restore_latest(template) or template
    checkpointer.save(step, state, metrics={"val/loss": 0.31})

What protects a checkpoint:
- Orbax writes each checkpoint into a temporary folder and renames it when complete, so a process killed during
  a save leaves the earlier checkpoints loadable (the partial folder is ignored).
- ``save`` refuses a state with a NaN or an infinity in a float leaf (:class:`NonFiniteStateError`), and a
  non-finite value of ``best_metric`` never competes for ``best`` (a NaN would otherwise displace the real best).
- A template whose structure or shapes differ from what a checkpoint recorded is refused with
  :class:`TemplateMismatchError` naming the leaves (nothing is moved: the checkpoint is not damaged).
- Each checkpoint records a SHA-256 digest of every array; ``restore_latest`` checks it, and a damaged newest
  checkpoint (bad bytes, truncated metadata, missing files) is moved to ``<dir>/damaged/`` (never deleted) with a
  :class:`DamagedCheckpointWarning` naming the step, and the newest intact one is restored instead.
- The folder is held by one process at a time (:mod:`rnnjax.training.locks`) until ``close()``.

Typed PRNG keys are stored as their raw ``key_data`` and re-wrapped with the template's implementation.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import math
import pathlib
import shutil
import warnings
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rnnjax.checks import arguments
from rnnjax.training import locks

_STEP_METADATA = "_CHECKPOINT_METADATA"  # Orbax's per-step record, where our digests travel (custom_metadata)
_DIGESTS = "rnnjax_digests"
_ITEM = "default"  # the folder of a step where Orbax keeps the single item a StandardSave writes


class BestMode(enum.Enum):
    MIN = "min"
    MAX = "max"


class NonFiniteStateError(ValueError):
    """``save`` was given a state with a NaN or an infinity in a float leaf; nothing was written."""


class DamagedCheckpointError(ValueError):
    """A checkpoint cannot be read back as it was written (and no intact one is left to fall back to)."""


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (full disk, unwritable folder); the checkpoints completed before are intact."""


class TemplateMismatchError(ValueError):
    """The template given to a restore has another structure or other shapes than the saved state."""


class DamagedCheckpointWarning(UserWarning):
    """The newest checkpoint was damaged: it was set aside and an older intact one restored."""


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


# --------------------------------------------------------------------------- integrity: finite values, digests


def _host_leaves(tree: Any) -> list[tuple[str, np.ndarray]]:
    """(path, host array) for every leaf; arrays spread over several processes are left out."""
    leaves = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            continue
        leaves.append((jax.tree_util.keystr(path), np.asarray(jax.device_get(leaf))))
    return leaves


def _digest(array: np.ndarray) -> dict[str, Any]:
    """sha256 of the C-order bytes, with the dtype and shape they mean."""
    data = np.ascontiguousarray(array).tobytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "dtype": str(array.dtype), "shape": list(array.shape)}


def _non_finite_leaves(leaves: list[tuple[str, np.ndarray]]) -> list[str]:
    found = []
    for path, array in leaves:
        if jnp.issubdtype(array.dtype, jnp.inexact):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if bad:
                found.append(f"{path or '<root>'} ({bad} of {np.size(array)})")
    return found


def describe_error(error: BaseException) -> str:
    """The first line of an error, its start and end when long (TensorStore messages carry whole specs)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if len(text) > 240:
        text = f"{text[:150]} ... {text[-90:]}"
    return f"{type(error).__name__}: {text}"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _recorded_digests(step_directory: pathlib.Path) -> dict[str, Any] | None:
    """The digests saved with a step (None when unreadable or not recorded)."""
    try:
        record = json.loads((step_directory / _STEP_METADATA).read_text())
        return (record.get("custom_metadata") or {}).get(_DIGESTS)
    except (OSError, ValueError, AttributeError):
        return None


def check_template(step_directory: pathlib.Path, template: Any) -> None:
    """Raise :class:`TemplateMismatchError` when ``template``'s leaves (paths, shapes) differ from the saved ones."""
    digests = _recorded_digests(step_directory)
    if digests is None:
        return  # nothing recorded to compare with (or damaged: the restore says so)
    flat = jax.tree_util.tree_flatten_with_path(to_saveable(template))[0]
    given = {jax.tree_util.keystr(path) or "<root>": list(jnp.shape(leaf)) for path, leaf in flat}
    saved = {path: record["shape"] for path, record in digests.items()}
    problems = [f"{path}: saved {saved[path]}, template {given[path]}" for path in sorted(set(saved) & set(given))
                if saved[path] != given[path]]  # fmt: skip
    problems += [f"{path}: saved, not in the template" for path in sorted(set(saved) - set(given))]
    problems += [f"{path}: in the template, not saved" for path in sorted(set(given) - set(saved))]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        raise TemplateMismatchError(
            f"template does not match the state saved in {step_directory} ({shown}): the checkpoint was written by "
            "another model or configuration; nothing was moved or deleted"
        )


def _verify(step_directory: pathlib.Path, restored: Any) -> None:
    """Compare the restored arrays with the digests recorded at save time; raise DamagedCheckpointError."""
    try:
        record = json.loads((step_directory / _STEP_METADATA).read_text())
    except (OSError, ValueError) as error:
        unreadable = f"{step_directory / _STEP_METADATA} is unreadable ({describe_error(error)})"
        raise DamagedCheckpointError(unreadable) from error
    digests = (record.get("custom_metadata") or {}).get(_DIGESTS)
    if digests is None:
        return  # written before digests were recorded: nothing to compare
    for path, array in _host_leaves(restored):
        expected = digests.get(path or "<root>")
        if expected is None or expected["dtype"] != str(array.dtype) or expected["shape"] != list(array.shape):
            continue  # not recorded, or converted to the template's dtype on restore: not comparable
        if _digest(array)["sha256"] != expected["sha256"]:
            raise DamagedCheckpointError(f"array {path} in {step_directory} does not match its digest (bad bytes)")


# --------------------------------------------------------------------------- the checkpointer


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
      directory: root folder (created, and locked until ``close()``: another process gets a
        :class:`~rnnjax.training.locks.FolderLockedError` naming this one; under ``jax.distributed`` the
        processes of one job share it, process 0 holding the lock).
      save_every: save to ``latest`` when ``step % save_every == 0`` (``save(..., force=True)`` always saves).
      keep: number of latest checkpoints kept.
      best_metric: metric name (a key of ``save``'s ``metrics``) that selects the single best checkpoint.
      best_mode: "min" or "max".
      asynchronous: write in a background thread (Orbax async checkpointing).

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from rnnjax.training.checkpoint import Checkpointer
      >>> state = {"w": jnp.arange(3.0), "step": jnp.array(10)}
      >>> with tempfile.TemporaryDirectory() as directory:
      ...     checkpointer = Checkpointer(directory, save_every=10, asynchronous=False)
      ...     saved = checkpointer.save(10, state)
      ...     restored = checkpointer.restore_latest(state)  # the template gives structure, shapes and dtypes
      ...     latest = checkpointer.latest_step()
      ...     checkpointer.close()
      >>> saved, latest, restored["w"].tolist()
      (True, 10, [0.0, 1.0, 2.0])
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
        self.save_every = arguments.positive_int("save_every", save_every)
        keep = arguments.positive_int("keep", keep)
        mode = arguments.as_enum(BestMode, best_mode, "best_mode")
        self.directory = pathlib.Path(directory)
        self.best_metric = best_metric
        self._last_saved = None
        self.directory.mkdir(parents=True, exist_ok=True)
        # Under jax.distributed all processes of one job share the folder (Orbax coordinates them): the first holds it.
        self._lock = locks.acquire(self.directory) if jax.process_index() == 0 else None
        try:
            self._latest = _manager(self.directory / "latest", keep, None, mode, asynchronous)
            self._best = None
            if best_metric is not None:
                self._best = _manager(self.directory / "best", 1, best_metric, mode, asynchronous)
        except BaseException:
            self._release()
            raise

    def should_save(self, step: int) -> bool:
        return step % self.save_every == 0

    def save(self, step: int, state: Any, metrics: dict[str, float] | None = None, *, force: bool = False) -> bool:
        """Save ``state`` at ``step`` to ``latest`` (on the interval or when forced) and, given the metric, to ``best``.

        Returns True if anything was written. Raises :class:`NonFiniteStateError` (writing nothing) when a float
        leaf holds a NaN or an infinity.
        """
        step = int(step)
        to_latest = (force or self.should_save(step)) and step not in self._latest.all_steps()
        to_best = self._best is not None and bool(metrics) and self.best_metric in metrics
        to_best = to_best and _finite(metrics[self.best_metric]) and step not in self._best.all_steps()
        if not (to_latest or to_best):
            return False
        tree = to_saveable(state)
        record = {_DIGESTS: self._checked_digests(step, tree)}
        wrote, self._last_saved = False, step
        with self._writing(f"checkpoint step {step}"):
            if to_latest:
                self._latest.save(step, args=ocp.args.StandardSave(tree), force=True, custom_metadata=record)
                wrote = True
            if to_best:
                clean = {k: float(v) for k, v in metrics.items()}
                saved = self._best.save(step, args=ocp.args.StandardSave(tree), metrics=clean, force=True,
                                        custom_metadata=record)  # fmt: skip
                wrote |= bool(saved)
        return wrote

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn Orbax's write failures (raised here or by an earlier background write) into CheckpointWriteError."""
        try:
            yield
        except Exception as error:
            raise CheckpointWriteError(
                f"writing {what} to {self.directory} failed ({describe_error(error)}); "
                "the checkpoints completed before are intact"
            ) from error

    def _checked_digests(self, step: int, tree: Any) -> dict[str, Any]:
        leaves = _host_leaves(tree)
        bad = _non_finite_leaves(leaves)
        if bad:
            raise NonFiniteStateError(
                f"refusing to save step {step} to {self.directory}: non-finite values in {', '.join(bad)}"
            )
        return {path or "<root>": _digest(array) for path, array in leaves}

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def best_step(self) -> int | None:
        return None if self._best is None else self._best.best_step()

    def _restore(self, manager: ocp.CheckpointManager, step: int, template: Any) -> Any:
        step_directory = pathlib.Path(manager.directory) / str(step)
        if not (step_directory / _ITEM).is_dir():  # checked first: Orbax misreads a step without its item
            raise DamagedCheckpointError(f"{step_directory / _ITEM} is missing")
        check_template(step_directory, template)
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(template))
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
        _verify(step_directory, restored)
        return from_saveable(restored, template)

    def restore_latest(self, template: Any) -> Any:
        """The newest intact saved state with the structure of ``template``, or None if nothing was saved.

        Damaged newer checkpoints are moved to ``<dir>/damaged/`` with a :class:`DamagedCheckpointWarning`;
        :class:`DamagedCheckpointError` when no checkpoint can be read (nothing is moved then).
        """
        self._latest.wait_until_finished()
        failures = []
        for step in sorted(self._latest.all_steps(), reverse=True):
            try:
                restored = self._restore(self._latest, step, template)
            except TemplateMismatchError:
                raise  # the caller's template is wrong, not the checkpoint
            except Exception as error:  # damage surfaces as JSON, TensorStore, OS or digest errors
                failures.append((step, error))
                continue
            if failures:
                self._set_aside(failures, step)
            return restored
        if failures:
            reasons = "; ".join(f"step {step}: {describe_error(error)}" for step, error in failures)
            raise DamagedCheckpointError(f"no checkpoint in {self.directory / 'latest'} can be restored ({reasons})")
        return None

    def _set_aside(self, failures: list[tuple[int, Exception]], restored_step: int) -> None:
        """Move damaged steps out of Orbax's sight (so keep-last-k never prefers them), with a warning each."""
        for step, error in failures:
            source = self.directory / "latest" / str(step)
            target = self.directory / "damaged" / f"latest-{step}"
            suffix = 1
            while target.exists():
                target, suffix = self.directory / "damaged" / f"latest-{step}.{suffix}", suffix + 1
            try:
                target.parent.mkdir(exist_ok=True)
                shutil.move(source, target)
                where = f"moved to {target} (not deleted)"
            except OSError as move_error:
                where = f"left in place (could not move it: {describe_error(move_error)})"
            warnings.warn(
                f"checkpoint step {step} in {self.directory} is damaged ({describe_error(error)}); "
                f"restored step {restored_step} instead; step {step} was {where}",
                DamagedCheckpointWarning,
                stacklevel=3,
            )
        self._latest.reload()

    def restore_best(self, template: Any) -> Any:
        """The best state by ``best_metric``, or None; :class:`DamagedCheckpointError` if it is damaged."""
        if self._best is None:
            raise ValueError("restore_best needs a Checkpointer built with best_metric")
        self._best.wait_until_finished()
        step = self._best.best_step()
        if step is None:
            return None
        try:
            return self._restore(self._best, step, template)
        except TemplateMismatchError:
            raise
        except Exception as error:
            raise DamagedCheckpointError(
                f"best checkpoint step {step} in {self.directory / 'best'} is damaged ({describe_error(error)})"
            ) from error

    def wait(self) -> None:
        """Block until background writes are complete; CheckpointWriteError if one failed."""
        with self._writing(f"checkpoint step {self._last_saved}"):
            self._latest.wait_until_finished()
            if self._best is not None:
                self._best.wait_until_finished()

    def close(self) -> None:
        """Finish background writes, close the managers and release the folder (even if a write failed)."""
        try:
            self.wait()
            self._latest.close()
            if self._best is not None:
                self._best.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
