"""Backpropagation through time written out by hand, checked against autodiff.

API:
    d_params, d_xs, d_h0 = backward(cell, params, xs, d_ys, lengths=..., initial_carry=...)
    ys, final = rnn_manual_vjp(cell, params, xs, lengths=...)   # rnn() with the hand-derived VJP
    losses, grads, final = truncated_bptt_grads(loss_fn, cell, params, xs, targets, k1=..., k2=...)
    (loss, carry), grads = chunk_value_and_grad(loss_fn, cell, params, carry, xs_chunk, targets_chunk)

The derivation, equation by equation next to the code, is in ``docs/bptt.md``.
"""

from rnnjax.core.bptt.core import RULES, backward, rnn_manual_vjp, rule_for
from rnnjax.core.bptt.scan import Rule
from rnnjax.core.bptt.truncated import chunk_value_and_grad, truncated_bptt_grads

__all__ = [
    "RULES",
    "Rule",
    "backward",
    "chunk_value_and_grad",
    "rnn_manual_vjp",
    "rule_for",
    "truncated_bptt_grads",
]
