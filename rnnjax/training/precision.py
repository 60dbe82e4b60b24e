"""Mixed precision: float32 params and optimizer state, bfloat16 compute, no loss scaling.

    train_step = make_train_step(mixed_precision(loss_fn), optimizer)

The wrapped loss casts the params and the floating-point leaves of the batch to
the compute dtype on entry and returns a float32 loss and metrics. The casts are
differentiable, so gradients arrive in float32, the dtype of the params, and the
update is applied in float32. bfloat16 has float32's exponent range, so gradients
do not underflow the way float16 ones do and no loss scaling is needed.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Cast the real floating-point leaves of ``tree`` to ``dtype``; other leaves (ints, keys, complex) unchanged."""

    def cast(leaf):
        if isinstance(leaf, jax.Array | float) or hasattr(leaf, "dtype"):
            leaf_dtype = jnp.result_type(leaf)
            if jnp.issubdtype(leaf_dtype, jnp.floating):
                return jnp.asarray(leaf).astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def mixed_precision(
    loss_fn: Callable[[Any, Any, jax.Array], tuple[jax.Array, dict]],
    compute_dtype: Any = jnp.bfloat16,
    output_dtype: Any = jnp.float32,
) -> Callable[[Any, Any, jax.Array], tuple[jax.Array, dict]]:
    """``loss_fn(params, batch, key) -> (loss, metrics)`` computed in ``compute_dtype``.

    Args:
      loss_fn: a loss as :func:`rnnjax.training.step.make_train_step` takes it.
      compute_dtype: dtype of params and batch inside the loss (bfloat16).
      output_dtype: dtype of the returned loss and floating metrics (float32).
    """
    if not jnp.issubdtype(compute_dtype, jnp.floating):
        raise ValueError(f"compute_dtype must be a floating dtype; got {compute_dtype!r}")

    def wrapped(params, batch, key):
        loss, metrics = loss_fn(cast_floating(params, compute_dtype), cast_floating(batch, compute_dtype), key)
        return jnp.asarray(loss).astype(output_dtype), cast_floating(metrics, output_dtype)

    return wrapped
