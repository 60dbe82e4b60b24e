"""rnnjax: recurrent neural networks as pure JAX functions."""

from rnnjax import runtime

runtime.apply()  # before any JAX computation: see rnnjax/runtime.py

from rnnjax.core.cells import (  # noqa: E402
    Activation,
    Cell,
    GRUConvention,
    LinearInit,
    LinearKind,
    LSTMState,
    gru,
    linear_eigenvalues,
    linear_rnn,
    lstm,
    make_cell,
    simple_rnn,
)
from rnnjax.core.unroll import RNN, Merge, merge_directions, rnn  # noqa: E402

__all__ = [
    "Activation",
    "Cell",
    "GRUConvention",
    "LinearInit",
    "LinearKind",
    "LSTMState",
    "Merge",
    "RNN",
    "gru",
    "linear_eigenvalues",
    "linear_rnn",
    "lstm",
    "make_cell",
    "merge_directions",
    "rnn",
    "simple_rnn",
]
