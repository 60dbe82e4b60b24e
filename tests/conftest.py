"""Test configuration: float64 so that equivalence tests can be exact; shape annotations checked at run time."""

import os

os.environ.setdefault("RNNJAX_CHECK_SHAPES", "1")  # before rnnjax is imported: see rnnjax.typing.shaped

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    return jax.random.key(0)
