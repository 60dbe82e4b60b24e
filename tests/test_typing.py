"""rnnjax.typing: shape annotations checked under pytest, free outside it, and transparent to jit/vmap/grad."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from rnnjax import typing as rt
from rnnjax.core.cells import lstm
from rnnjax.core.unroll import rnn
from rnnjax.tasks.losses import cross_entropy


def _first_column(xs: rt.Sequences, lengths: rt.Lengths) -> rt.Outputs:
    if xs.ndim < 2:
        raise ValueError(f"xs must have shape [*batch, time, feature]; got {xs.shape}")
    return jnp.asarray(xs)[..., :1] if xs.shape[-1] != 5 else jnp.zeros(3)


def test_shaped_is_the_identity_unless_asked(monkeypatch):
    monkeypatch.delenv(rt.CHECK_SHAPES, raising=False)
    assert rt.shaped(_first_column) is _first_column
    monkeypatch.setenv(rt.CHECK_SHAPES, "0")
    assert rt.shaped(_first_column) is _first_column


def test_checking_is_on_under_pytest():
    assert rnn.__wrapped__ is not None and cross_entropy.__wrapped__ is not None


def test_checked_function_keeps_its_own_errors_and_reports_contract_breaks(monkeypatch):
    monkeypatch.setenv(rt.CHECK_SHAPES, "1")
    checked = rt.shaped(_first_column)
    xs, lengths = np.ones((2, 3, 4), np.float32), np.array([3, 1])
    np.testing.assert_array_equal(checked(xs, lengths), _first_column(xs, lengths))
    with pytest.raises(ValueError, match="xs must have shape"):  # rejected by the function: its own message
        checked(np.ones(4, np.float32), np.array(2))
    with pytest.raises(jaxtyping.TypeCheckError):  # accepted, but the lengths do not match the batch
        checked(xs, np.array([3, 1, 2]))
    with pytest.raises(jaxtyping.TypeCheckError):  # a return value that breaks the annotation
        checked(np.ones((2, 3, 5), np.float32), lengths)


def test_checked_function_traces_under_jit_vmap_and_grad(monkeypatch):
    monkeypatch.setenv(rt.CHECK_SHAPES, "1")
    checked = rt.shaped(_first_column)
    xs, lengths = jnp.arange(24.0).reshape(2, 3, 4), jnp.array([3, 1])
    assert jnp.array_equal(jax.jit(checked)(xs, lengths), xs[..., :1])
    assert jnp.array_equal(jax.vmap(checked)(xs, lengths), xs[..., :1])  # one example: *batch is empty
    gradient = jax.grad(lambda x: checked(x, lengths).sum())(xs)
    assert jnp.array_equal(gradient, jnp.zeros_like(xs).at[..., 0].set(1.0))


def test_checked_rnn_equals_unchecked_in_both_layouts(key):
    cell = lstm()
    params = cell.init(key, 3, 4, jnp.float64)
    xs = jax.random.normal(key, (2, 5, 3), jnp.float64)
    lengths = jnp.array([5, 2])
    ys, final = rnn(cell, params, xs, lengths=lengths)
    plain_ys, plain_final = rnn.__wrapped__(cell, params, xs, lengths=lengths)
    assert jnp.array_equal(ys, plain_ys) and jnp.array_equal(final.h, plain_final.h)
    time_major, _ = rnn(cell, params, jnp.swapaxes(xs, 0, 1), lengths=lengths, time_major=True)
    assert jnp.array_equal(jnp.swapaxes(time_major, 0, 1), ys)
