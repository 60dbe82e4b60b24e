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
    min_gru,
    min_lstm,
    simple_rnn,
)
from rnnjax.core.unroll import RNN, Backward, Merge, merge_directions, rnn  # noqa: E402

__all__ = [
    "Activation",
    "Backward",
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
    "min_gru",
    "min_lstm",
    "rnn",
    "simple_rnn",
]
