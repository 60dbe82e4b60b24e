"""Test configuration: float64 so that equivalence tests can be exact; shape annotations checked at run time;
compiled programs shared through JAX's persistent cache.

The cache folder is ``$RNNJAX_COMPILATION_CACHE`` if set (``0`` turns the cache off), else
``.pytest_cache/rnnjax-xla`` in the checkout: empty on a clean clone, then shared by the xdist workers, the
experiments' subprocesses (they inherit the variable) and later sessions. JAX's cache key holds the program, the
JAX version and XLA_FLAGS, so a hit is the program the test would have compiled.
"""

import os

os.environ.setdefault("RNNJAX_CHECK_SHAPES", "1")  # before rnnjax is imported: see rnnjax.typing.shaped
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("RNNJAX_COMPILATION_CACHE", os.path.join(ROOT, ".pytest_cache", "rnnjax-xla"))

import jax  # noqa: E402
import pytest  # noqa: E402

from rnnjax import runtime  # noqa: E402

jax.config.update("jax_enable_x64", True)
runtime.enable_compilation_cache()


@pytest.fixture
def key():
    return jax.random.key(0)
