"""Test configuration: float64 so that equivalence tests can be exact; shape annotations checked at run time;
JAX's persistent compilation cache off unless asked for; compiled programs freed after each test module.

The suite runs with ``RNNJAX_COMPILATION_CACHE=0`` unless the variable is set: a fresh clone's cache is empty, so
it would save little, and it writes every program to disk. To share compiled programs across workers and later runs
while working, set it to a folder, e.g. ``RNNJAX_COMPILATION_CACHE=.pytest_cache/rnnjax-xla pytest -n 2``; the
runtime tests check the cache in their own subprocesses either way.

Whole-suite runs used to lose an xdist worker late in the run (a segfault inside XLA's compiler, a MemoryError,
a hang in ``Thread.start``): the worker had run out of memory maps (65,494 of the kernel's 65,530), each compiled
program keeping ~6; see :func:`_compiled_programs_freed_after_each_module`.
"""

import gc
import os

os.environ.setdefault("RNNJAX_CHECK_SHAPES", "1")  # before rnnjax is imported: see rnnjax.typing.shaped
os.environ.setdefault("RNNJAX_COMPILATION_CACHE", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

from rnnjax import runtime  # noqa: E402

jax.config.update("jax_enable_x64", True)
runtime.enable_compilation_cache()

MAP_LIMIT_SHARE = 0.3
"""Clear JAX's caches as soon as this process holds this share of the kernel's memory-map limit."""


def _memory_maps() -> int | None:
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux
        return None


def _map_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return 65530  # Linux's default


MAP_LIMIT = _map_limit()


@pytest.fixture(autouse=True, scope="module")
def _compiled_programs_freed_after_each_module():
    """Every program XLA compiles for the CPU holds ~6 memory maps of JIT code for as long as a jitted function
    keeps it (module-level jits, ``functools.cache``-d programs), and the kernel allows ~65,530 maps a process: a
    whole-suite xdist worker reached 65,494, then thread starts hung, allocations raised MemoryError and XLA's
    compiler segfaulted (the CI run of 2026-12-07 timed out so). Freeing the compiled programs after each test module
    (and near the limit, below) kept the busiest worker at 21,356 maps in the whole-suite run of 2026-12-08;
    programs are rarely shared across modules."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture(autouse=True)
def _compiled_programs_freed_near_the_map_limit():
    """The same within one module, for a module that compiles a great deal."""
    yield
    maps = _memory_maps()
    if maps is not None and maps > MAP_LIMIT_SHARE * MAP_LIMIT:
        jax.clear_caches()
        gc.collect()


@pytest.fixture
def key():
    return jax.random.key(0)
