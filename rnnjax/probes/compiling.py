"""Compiling a group's program: ``jit(vmap(train_run))`` over its runs, sharded over devices, optionally at a
lower XLA optimisation level, and compiled ahead on background threads while an earlier group runs.

    compiler = Compiler()
    compiler.ahead(next_group)                 # starts compiling on a background thread
    triples, params, metrics = compiler.dispatch(group)   # uses an ahead-compiled program when there is one
    compiler.cancel()                          # forget the rest (after an error or a stop)

The compile-ahead state belongs to one :class:`Compiler` (one per :func:`rnnjax.probes.executor.execute` call);
the jitted functions are kept in a bounded cache (:data:`PROGRAM_CACHE_SIZE`), and the threads in one pool per
process (:func:`compile_pool`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnnjax.probes.models import ModelSpec
from rnnjax.probes.planning import Group
from rnnjax.probes.targets import Target, check_family
from rnnjax.probes.training import TrainConfig, train_run

FAST_COMPILE_LEVEL = 1
"""XLA backend optimisation level of ``TrainConfig.fast_compile`` (the default is 3). Measured on the 2-core VM,
compile + run of one group at levels 0 / 1 / 3: causal GRU (18 models, T=32) - / 7.3 + 10.0 / 13.6 + 14.9 s;
float64 L-BFGS width group - / 10.6 + 4.0 / 16.4 + 4.4 s (level 0 made study 3's groups 5-7x slower to run);
encoder-decoder GRU with attention 7.9 + 7.3 / 10.7 + 2.0 s; 3-layer ReLU RNN 7.7 + 4.8 / 9.2 + 1.6 s."""

COMPILE_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
"""Background threads that compile upcoming groups (:meth:`Compiler.ahead`): half the cores, 1 to 4. Compiling
dominates the default main job on CPU (2-core VM, 28 groups: ~280 s of compiling against ~105 s of running); two
compile threads there ran it slower (380 s wall, 718 CPU-s, against 361 s and 625 CPU-s with one)."""

PROGRAM_CACHE_SIZE = 32
"""Jitted group functions kept per process (each holds the executables XLA compiled for it); the least recently
used one is dropped beyond this. A main job's groups all differ, so the cache serves repeated sweeps and tests."""


@functools.lru_cache(maxsize=PROGRAM_CACHE_SIZE)
def jitted_group(spec: ModelSpec, targets: tuple[Target, ...], config: TrainConfig, max_delay: int):
    """``jit(vmap(train_run))`` for one (spec, targets, config, max_delay), at the config's compile level."""
    run = functools.partial(train_run, spec=spec, targets=targets, config=config, max_delay=max_delay)
    options = {"xla_backend_optimization_level": FAST_COMPILE_LEVEL} if config.fast_compile else None
    return jax.jit(jax.vmap(run), compiler_options=options)


def _shard(*arrays):
    """Shard the leading (run) axis over all devices when there are several and it divides evenly."""
    devices = jax.devices()
    if len(devices) < 2 or arrays[0].shape[0] % len(devices):
        return arrays
    sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
    return tuple(jax.device_put(a, sharding) for a in arrays)


def program(group: Group) -> tuple[Any, tuple]:
    """(the jitted program, its arguments: keys, delays, target indices) of one group, checked."""
    if group.config.dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError("TrainConfig.dtype='float64' needs jax.config.update('jax_enable_x64', True) first")
    check_family(group.targets)
    triples = group.triples
    keys = jnp.stack([jax.random.key(seed) for _, seed, _ in triples])
    delays = jnp.asarray([delay for *_, delay in triples], jnp.int32)
    indices = jnp.asarray([index for index, *_ in triples], jnp.int32)
    jitted = jitted_group(group.spec, tuple(group.targets), group.config, max(group.delays))
    return jitted, _shard(keys, delays, indices)


@functools.cache
def compile_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The compile threads (:data:`COMPILE_THREADS`), created on first use, one pool per process."""
    return concurrent.futures.ThreadPoolExecutor(COMPILE_THREADS, thread_name_prefix="rnnjax-compile")


def _compile(group: Group):
    jitted, arguments = program(group)
    return jitted.lower(*arguments).compile()


class Compiler:
    """Programs compiled ahead on :func:`compile_pool`, each taken once by its group's :meth:`dispatch`.

    JAX dispatches a run asynchronously and XLA compiles without holding the GIL, so compiling and running
    overlap (measured on 2 CPU cores: run + compile 609 ms overlapped, against 424 + 399 ms in turn). A compile
    error is raised by the group's dispatch.
    """

    def __init__(self):
        self.pending: dict[Group, concurrent.futures.Future] = {}

    def ahead(self, group: Group) -> None:
        """Start compiling ``group``'s program on a background thread (nothing if it is already under way)."""
        if group not in self.pending:
            self.pending[group] = compile_pool().submit(_compile, group)

    def dispatch(self, group: Group):
        """Start one group's program and return (triples, params, metrics) as device arrays, without waiting."""
        jitted, arguments = program(group)
        ahead = self.pending.pop(group, None)
        params, metrics = (ahead.result() if ahead is not None else jitted)(*arguments)
        return group.triples, params, metrics

    def cancel(self) -> None:
        """Forget every program compiled ahead: cancel the compiles not yet started and wait for those under way.

        Waiting matters: a compile left running on its thread would trace and compile beside whatever the caller
        does next (another sweep, a change of ``jax_enable_x64``), and the whole-suite runs that let it lost a
        worker to a segfault inside XLA's compiler."""
        running = [future for future in self.pending.values() if not future.cancel()]
        self.pending.clear()
        concurrent.futures.wait(running)  # their results and errors are dropped with them
