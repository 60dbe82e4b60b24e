"""Test configuration: float64 so that equivalence tests can be exact; shape annotations checked at run time;
JAX's persistent compilation cache off unless asked for.

The suite runs with ``RNNJAX_COMPILATION_CACHE=0`` unless the variable is set: in the first whole-suite run with
the cache shared by the xdist workers, one worker died of a segmentation fault inside XLA's compile of a bf16
program (tests/training/test_precision.py; not reproduced alone), and a crash of unknown cause has no place in CI.
To share compiled programs across workers and later runs while working, set it to a folder, e.g.
``RNNJAX_COMPILATION_CACHE=.pytest_cache/rnnjax-xla pytest -n 2``; the runtime tests check the cache in their own
subprocesses either way.
"""

import os

os.environ.setdefault("RNNJAX_CHECK_SHAPES", "1")  # before rnnjax is imported: see rnnjax.typing.shaped
os.environ.setdefault("RNNJAX_COMPILATION_CACHE", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

from rnnjax import runtime  # noqa: E402

jax.config.update("jax_enable_x64", True)
runtime.enable_compilation_cache()
SESSION_CACHE_DIR = jax.config.jax_compilation_cache_dir


@pytest.fixture(autouse=True)
def _persistent_cache_stays_as_the_session_set_it():
    """A test that turns the cache on in-process (a runtime test, an experiment's cli) does not leave it on for the
    worker's later tests: the second whole-suite run, cache off by the variable, still lost a worker to a segfault
    inside a compile that went through the cache's write path, after such tests had run in that worker."""
    yield
    if jax.config.jax_compilation_cache_dir != SESSION_CACHE_DIR:
        from jax._src import compilation_cache

        jax.config.update("jax_compilation_cache_dir", SESSION_CACHE_DIR)
        compilation_cache.reset_cache()


@pytest.fixture
def key():
    return jax.random.key(0)
