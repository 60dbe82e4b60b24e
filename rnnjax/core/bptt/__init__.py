"""Backpropagation through time written out by hand, checked against autodiff.

API:
    d_params, d_xs, d_h0 = manual_vjp(cell, params, xs, d_ys, lengths=..., initial_carry=...)
    ys, final = rnn_manual_vjp(cell, params, xs, lengths=...)   # rnn() with the hand-derived VJP

Each cell's rule is its ``vjp_rule`` capability (:mod:`rnnjax.core.cell`), defined next to the cell in
:mod:`rnnjax.core.cells`; :mod:`rnnjax.core.bptt.scan` holds the masked scans the rules share.
Truncated BPTT is :mod:`rnnjax.core.truncated`. The derivation, equation by equation next to the
code, is in ``docs/bptt.md``.
"""

from rnnjax.core.bptt.manual import manual_unroll, manual_vjp, rnn_manual_vjp, vjp_rule

__all__ = ["manual_unroll", "manual_vjp", "rnn_manual_vjp", "vjp_rule"]
