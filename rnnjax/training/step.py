"""The pure training step: TrainState, one update with a per-step key, non-finite updates refused.

API:
    state = init_state(params, optimizer, jax.random.key(0))        # TrainState pytree
    train_step = make_train_step(loss_fn, optimizer)                 # jit, donates the state

``loss_fn(params, batch, key) -> (loss, metrics)`` where ``metrics`` is a dict of scalars.
Step ``s`` uses the key ``fold_in(state.key, s)``; together with a data order that is a pure
function of the step (``batch_fn(step)``) this makes a run resumable bit for bit.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class TrainState(NamedTuple):
    """Everything a run needs to continue: params, optimizer state, step (int32 scalar) and base key.

    Stacked by :func:`rnnjax.training.loop.init_many` for N runs: every leaf gets a leading ``[N]`` axis.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from rnnjax.training.step import init_state
      >>> state = init_state({"w": jnp.zeros(3)}, optax.sgd(0.1), jax.random.key(0))
      >>> int(state.step), state.params["w"].shape
      (0, (3,))
    """

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


def init_state(params: Any, optimizer: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """TrainState at step 0; ``key`` must be a typed key from ``jax.random.key``.

    Args:
      params: the parameter pytree (any shapes).
      optimizer: the optax transformation whose state is initialised from ``params``.
      key: a typed key, shape ``[]`` (scalar); step ``s`` trains with ``fold_in(key, s)``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from rnnjax.training.step import init_state
      >>> state = init_state({"w": jnp.zeros((2, 3))}, optax.adam(1e-3), jax.random.key(0))
      >>> int(state.step), state.params["w"].shape, state.opt_state[0].mu["w"].shape
      (0, (2, 3), (2, 3))
    """
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        raise TypeError(f"key must be a typed PRNG key from jax.random.key(seed); got dtype {jnp.asarray(key).dtype}")
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), key)


class NonFiniteError(FloatingPointError):
    """Raised when a step produced a non-finite loss or gradient; ``state`` is the last good state."""

    def __init__(self, message: str, state: Any = None, step: int | None = None):
        super().__init__(message)
        self.state = state
        self.step = step


def _tree_finite(tree: Any) -> jax.Array:
    """True when every float leaf of ``tree`` is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def train_step_body(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, state: TrainState, batch: Any
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update with key fold_in(state.key, state.step); a non-finite loss or gradient leaves the state unchanged.

    Pure and unbatched: jitted by :func:`make_train_step`, vmapped and scanned by :func:`fit_many`.
    """
    key = jax.random.fold_in(state.key, state.step)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    # all three: e.g. lr=inf gives finite grads but inf params
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _tree_finite(params)
    kept = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old),
        (params, opt_state, state.step + 1),
        (state.params, state.opt_state, state.step),
    )
    return TrainState(*kept, state.key), {**metrics, "loss": loss, "grad_norm": grad_norm, "finite": finite}


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> Callable:
    """``train_step(state, batch) -> (state, metrics)``, jitted, donating ``state``.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> (loss [], metrics)``, ``metrics`` a dict of scalars.
      optimizer: an optax transformation.

    Returns:
      The step; its metrics add ``loss``, ``grad_norm`` and ``finite`` (scalars) to ``loss_fn``'s. A step with a
      non-finite loss, gradient or update leaves the state unchanged (``finite`` False).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
      >>> def loss_fn(params, batch, key):  # fit y = w x
      ...     return jnp.mean((params["w"] * batch["x"] - batch["y"]) ** 2), {}
      >>> batch = {"x": jnp.arange(4.0), "y": 2 * jnp.arange(4.0)}  # each [points]
      >>> optimizer = make_optimizer(OptimizerConfig(learning_rate=0.1))
      >>> from rnnjax.training.step import init_state, make_train_step
      >>> train_step = make_train_step(loss_fn, optimizer)
      >>> state = init_state({"w": jnp.zeros(())}, optimizer, jax.random.key(0))
      >>> state, metrics = train_step(state, batch)
      >>> int(state.step), sorted(metrics), float(metrics["loss"])
      (1, ['finite', 'grad_norm', 'loss'], 14.0)
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (params, batch, key) -> (loss, metrics); got {loss_fn!r}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation; got {type(optimizer).__name__}")
    return jax.jit(functools.partial(train_step_body, loss_fn, optimizer), donate_argnames="state")
