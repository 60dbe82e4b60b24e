"""Data-parallel and model-parallel (many runs) training with ``jax.sharding``, and multi-host start-up.

Data parallelism: params and optimizer state are replicated, the batch is split
along its leading axis over the mesh axis "data"; XLA inserts the gradient
all-reduce. The train step is the one from :func:`rnnjax.training.step.make_train_step`:

    mesh = device_mesh()                                     # all devices on axis "data"
    step = data_parallel(make_train_step(loss_fn, optimizer), mesh)
    state = fit(replicate(state, mesh), step, shard_batches(batches, mesh), num_steps)

Many runs (``fit_many``): the leading run axis of the stacked states is split
over the mesh axis "models", so a sweep spreads over devices:

    states = shard_runs(init_many(...), device_mesh(("models",)))
    states, metrics = fit_many(loss_fn, optimizer, states, batch_fn, num_steps)

Multi-host: call :func:`initialize_distributed` first in every process (it wraps
``jax.distributed.initialize``); ``jax.devices()`` then lists the devices of all
processes, and :func:`global_batch` assembles a global batch from each process's
local part.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA = "data"
MODELS = "models"


def device_mesh(axis_names: Sequence[str] = (DATA,), shape: Sequence[int] | None = None, devices=None) -> Mesh:
    """A Mesh over ``devices`` (default all, of all processes); one axis by default.

    Args:
      axis_names: mesh axis names, e.g. ``("data",)`` or ``("models", "data")``.
      shape: devices per axis (product = number of devices); default all on the first axis.
    """
    devices = list(jax.devices() if devices is None else devices)
    axis_names = tuple(axis_names)
    if shape is None:
        shape = (len(devices),) + (1,) * (len(axis_names) - 1)
    shape = tuple(shape)
    if len(shape) != len(axis_names) or int(np.prod(shape)) != len(devices):
        raise ValueError(
            f"shape must have one entry per axis name {axis_names} and multiply to the number of devices "
            f"({len(devices)}); got shape {shape}"
        )
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), axis_names)


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def leading_axis(mesh: Mesh, axis: str) -> NamedSharding:
    """Leading array axis split over mesh axis ``axis``, the rest replicated."""
    if axis not in mesh.axis_names:
        raise ValueError(f"axis must be one of the mesh axes {mesh.axis_names}; got {axis!r}")
    return NamedSharding(mesh, PartitionSpec(axis))


def _check_divisible(tree: Any, mesh: Mesh, axis: str, argument: str) -> None:
    leading_axis(mesh, axis)  # checks the axis name
    parts = mesh.shape[axis]
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = np.shape(leaf)
        if not shape or shape[0] % parts:
            raise ValueError(
                f"{argument}: every leaf's leading axis must be divisible by the {parts} devices of mesh axis "
                f"{axis!r}; leaf {jax.tree_util.keystr(path)} has shape {list(shape)}"
            )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put a pytree (params, TrainState) on every device of ``mesh`` (every process passes the same tree)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, replicated(mesh))
    return jax.tree.map(lambda leaf: _global_copy(leaf, replicated(mesh)), tree)


def _global_copy(leaf: Any, sharding: NamedSharding) -> jax.Array:
    """A global array from a value that every process holds whole (typed PRNG keys included)."""
    leaf = jax.numpy.asarray(leaf)
    if jax.numpy.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _global_copy(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    return jax.make_array_from_process_local_data(sharding, np.asarray(leaf), leaf.shape)


def shard_batch(batch: Any, mesh: Mesh, axis: str = DATA) -> Any:
    """Split every leaf of ``batch`` along its leading (batch) axis over mesh axis ``axis``."""
    _check_divisible(batch, mesh, axis, "batch")
    return jax.device_put(batch, leading_axis(mesh, axis))


def shard_batches(batches: Callable[[int], Any] | Iterable[Any], mesh: Mesh, axis: str = DATA):
    """Wrap a ``batch_fn(step)`` or an iterable of batches (as ``fit`` takes) so each batch is sharded."""
    if callable(batches):
        return lambda step: shard_batch(batches(step), mesh, axis)
    return (shard_batch(batch, mesh, axis) for batch in batches)


def data_parallel(train_step: Callable, mesh: Mesh, axis: str = DATA) -> Callable:
    """``train_step(state, batch)`` compiled with replicated state and a batch split over ``axis``.

    The state is donated, like :func:`rnnjax.training.step.make_train_step`'s; results equal the
    single-device step up to the order of the gradient sum.
    """
    return jax.jit(
        train_step,
        in_shardings=(replicated(mesh), leading_axis(mesh, axis)),
        out_shardings=(replicated(mesh), replicated(mesh)),
        donate_argnums=0,
    )


def shard_runs(states: Any, mesh: Mesh, axis: str = MODELS) -> Any:
    """Split stacked per-run states (leaves ``[runs, ...]``, from ``init_many``) over mesh axis ``axis``."""
    _check_divisible(states, mesh, axis, "states")
    return jax.device_put(states, leading_axis(mesh, axis))


# --------------------------------------------------------------------------- multi-host


def initialize_distributed(
    coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """``jax.distributed.initialize`` from arguments or the environment; False (no-op) for one process.

    Environment fallbacks: ``RNNJAX_COORDINATOR`` ("host:port"), ``RNNJAX_NUM_PROCESSES``,
    ``RNNJAX_PROCESS_ID``. On managed clusters (SLURM, TPU pods) leave all three unset and
    JAX detects them itself when ``RNNJAX_NUM_PROCESSES`` is set to ``auto``.
    """
    coordinator_address = coordinator_address or os.environ.get("RNNJAX_COORDINATOR")
    raw_num = num_processes if num_processes is not None else os.environ.get("RNNJAX_NUM_PROCESSES", "1")
    if raw_num == "auto":
        jax.distributed.initialize()
        return True
    num_processes = int(raw_num)
    process_id = int(process_id if process_id is not None else os.environ.get("RNNJAX_PROCESS_ID", "0"))
    if num_processes == 1:
        return False
    if not coordinator_address:
        raise ValueError("coordinator_address (or RNNJAX_COORDINATOR) must be 'host:port' when num_processes > 1")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must lie in [0, {num_processes}); got {process_id}")
    jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
    return True


def global_batch(local_batch: Any, mesh: Mesh, axis: str = DATA) -> Any:
    """Assemble a global batch split over ``axis`` from this process's local part (leading axis).

    Each process passes its own ``[local_batch, ...]`` leaves; the global batch is their
    concatenation in process order.
    """
    sharding = leading_axis(mesh, axis)
    return jax.tree.map(lambda leaf: jax.make_array_from_process_local_data(sharding, np.asarray(leaf)), local_batch)
