"""Gradient-flow diagnostics: how the error signal travels back through time.

API (one example each, ``xs: [time, input]``; ``jax.vmap`` them over a batch, ``jax.jit`` freely):
    grads = carry_gradients(cell, params, xs, loss_fn)        # dL/dh_t, t = 0..T-1, leaves [T, ...]
    norms = carry_gradient_norms(cell, params, xs, loss_fn)   # ||dL/dh_t||, [T]
    products = jacobian_products(cell, params, xs)            # dh_T/dh_t, [T+1, S, S] (S = carry size)
    values = jacobian_singular_values(cell, params, xs)       # their singular values, [T+1, S]
    stats = gate_statistics(cell, params, xs, lengths=...)    # {gate: GateStats}, cells with gates (any batch dims)

Vanishing gradients show up as ||dL/dh_t|| and ||dh_T/dh_t|| shrinking geometrically as
t moves away from T; exploding ones as geometric growth. For a linear RNN with A = a I,
dh_T/dh_t = a^(T-t) I exactly.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnnjax.checks import arguments
from rnnjax.core.cell import Capability, Cell, RuleInputs, Squash, require
from rnnjax.core.inputs import prepare
from rnnjax.core.unroll import rnn
from rnnjax.typing import Carry, Params


def _initial(cell: Cell, params: Params, initial_carry: Carry | None) -> Carry:
    return cell.initial_carry(params) if initial_carry is None else initial_carry


def carry_gradients(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    loss_fn: Callable[[jax.Array], jax.Array],
    *,
    initial_carry: Carry | None = None,
) -> Carry:
    """dL/dh_t for t = 0..T-1 of one example: the error signal that reaches the carry h_t through
    the recurrence (h_0 is the initial carry; h_t, t >= 1, the carry handed from step t to step t+1).

    Computed as the gradient of L with respect to a zero perturbation added to the carry
    entering each step. ``loss_fn(ys [time, out]) -> scalar``. Meant to be vmapped over examples.
    Returns the carry structure with leaves ``[time, ...]``.
    """
    carry0 = _initial(cell, params, initial_carry)
    perturbations = jax.tree.map(lambda leaf: jnp.zeros((xs.shape[0], *leaf.shape), leaf.dtype), carry0)

    def perturbed_loss(perturbations):
        def body(carry, scanned):
            x, delta = scanned
            return cell.step(params, jax.tree.map(jnp.add, carry, delta), x)

        _, ys = jax.lax.scan(body, carry0, (xs, perturbations))
        return loss_fn(ys)

    return jax.grad(perturbed_loss)(perturbations)


def carry_gradient_norms(cell: Cell, params: Params, xs: jax.Array, loss_fn, *, initial_carry=None) -> jax.Array:
    """||dL/dh_t|| for t = 0..T-1 over the whole carry (LSTM: h and c together), ``[time]``."""
    grads = carry_gradients(cell, params, xs, loss_fn, initial_carry=initial_carry)
    squares = [jnp.sum(jnp.abs(leaf.reshape(leaf.shape[0], -1)) ** 2, axis=1) for leaf in jax.tree.leaves(grads)]
    return jnp.sqrt(sum(squares))


def jacobian_products(cell: Cell, params: Params, xs: jax.Array, *, initial_carry: Carry | None = None) -> jax.Array:
    """dh_T/dh_t for t = 0..T of one example, ``[time + 1, S, S]`` (carry flattened, LSTM as [h, c]).

    Built backwards as P_T = I, P_t = P_{t+1} J_{t+1} with J_t = dh_t/dh_{t-1} (``jax.jacfwd`` of
    one step). Real carries only. Meant to be vmapped over examples.
    """
    carry0 = _initial(cell, params, initial_carry)
    if any(jnp.iscomplexobj(leaf) for leaf in jax.tree.leaves(carry0)):
        raise ValueError(f"jacobian_products needs a real carry; cell {cell.name!r} has a complex one")
    flat0, unravel = ravel_pytree(carry0)

    def step(flat, x):
        carry, _ = cell.step(params, unravel(flat), x)
        return ravel_pytree(carry)[0]

    _, before = jax.lax.scan(lambda flat, x: (step(flat, x), flat), flat0, xs)  # h_0 .. h_{T-1}
    jacobians = jax.vmap(jax.jacfwd(step))(before, xs)  # dh_{t+1}/dh_t

    def accumulate(product, jacobian):
        product = product @ jacobian
        return product, product

    eye = jnp.eye(flat0.shape[0], dtype=flat0.dtype)
    _, products = jax.lax.scan(accumulate, eye, jacobians, reverse=True)
    return jnp.concatenate([products, eye[None]], axis=0)


def jacobian_singular_values(cell: Cell, params: Params, xs: jax.Array, *, initial_carry=None) -> jax.Array:
    """Singular values of dh_T/dh_t, largest first, ``[time + 1, S]``; column 0 is the spectral norm."""
    products = jacobian_products(cell, params, xs, initial_carry=initial_carry)
    return jnp.linalg.svd(products, compute_uv=False)


# --------------------------------------------------------------------------- gate saturation


class GateStats(NamedTuple):
    """Statistics of one gate over valid steps, examples and units (scalars).

    Attributes:
      mean: mean activation.
      saturated_low: fraction within ``threshold`` of the lower bound (0 or -1).
      saturated_high: fraction within ``threshold`` of 1.
    """

    mean: jax.Array
    saturated_low: jax.Array
    saturated_high: jax.Array


def gate_statistics(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    initial_carry: Carry | None = None,
    threshold: float = 0.05,
) -> dict[str, GateStats]:
    """Saturation of every gate a cell names (``cell.gates``: LSTM, GRU, the tanh of a simple RNN) over
    ``xs: [*batch, time, input]``, at valid steps only."""
    threshold = arguments.real("threshold", threshold, minimum=0.0, maximum=0.5)
    gates = require(cell, Capability.GATES, "gate statistics exist for cells with named gates (LSTM, GRU, tanh RNN)")
    prepared = prepare(cell, params, xs, lengths=lengths, initial_carry=initial_carry)
    xs_tb, valid = prepared.xs, prepared.valid
    activations = gates.activations(RuleInputs(params, xs_tb, prepared.carry, valid))  # [time, batch, gates*hidden]
    names = gates.names
    weight = jnp.ones(xs_tb.shape[:2], activations.dtype) if valid is None else valid.astype(activations.dtype)
    count = jnp.maximum(weight.sum() * (activations.shape[-1] // len(names)), 1.0)

    def average(values):
        return jnp.sum(values * weight[..., None]) / count

    stats = {}
    for (name, squash), gate in zip(names, jnp.split(activations, len(names), axis=-1)):
        low = 0.0 if squash is Squash.SIGMOID else -1.0
        stats[name] = GateStats(
            mean=average(gate),
            saturated_low=average((gate < low + threshold).astype(gate.dtype)),
            saturated_high=average((gate > 1.0 - threshold).astype(gate.dtype)),
        )
    return stats


# --------------------------------------------------------------------------- a long-memory study
# (the task itself, ``first_bit_task``, is in rnnjax.tasks.toy_tasks)


def init_classifier(cell: Cell, key: jax.Array, input_size: int, hidden_size: int, dtype: Any = jnp.float32) -> dict:
    """Params of a cell followed by a logistic readout of its last output: {"cell", "readout", "bias"}."""
    k_cell, k_out = jax.random.split(key)
    params = cell.init(k_cell, input_size, hidden_size, dtype)
    readout = jax.random.normal(k_out, (cell.output_size(params),), dtype) / jnp.sqrt(cell.output_size(params))
    return {"cell": params, "readout": readout, "bias": jnp.zeros((), dtype)}


def classifier_loss(cell: Cell, params: dict, xs: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean logistic loss and accuracy over a batch (xs [batch, time, input])."""
    ys, _ = rnn(cell, params["cell"], xs)
    logits = ys[:, -1] @ params["readout"] + params["bias"]
    loss = jnp.mean(jnp.logaddexp(0.0, logits) - labels * logits)
    return loss, jnp.mean((logits > 0) == (labels == 1))


def gradient_flow_curves(cell: Cell, params: dict, xs: jax.Array) -> dict[str, jax.Array]:
    """Batch means of ||d logit/dh_t|| ([time]) and of ||dh_T/dh_t||_2 ([time + 1]) for a classifier
    from :func:`init_classifier` on ``xs [batch, time, input]`` (vmapped over examples).

    The logit ``y_T . readout`` is used rather than the loss, so the curves do not shrink just
    because a trained model's loss (and so dL/dlogit) is small.
    """

    def per_example(x):
        logit = lambda ys: ys[-1] @ params["readout"]  # noqa: E731
        grads = carry_gradient_norms(cell, params["cell"], x, logit)
        jacobian = jacobian_singular_values(cell, params["cell"], x)[:, 0]
        return grads, jacobian

    grads, jacobian = jax.vmap(per_example)(xs)
    return {"carry_gradient_norm": grads.mean(0), "jacobian_norm": jacobian.mean(0)}
