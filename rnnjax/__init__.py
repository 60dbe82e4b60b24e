"""rnnjax: recurrent neural networks as pure JAX functions."""

from rnnjax.cells import (
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
from rnnjax.unroll import RNN, Merge, merge_directions, rnn

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
