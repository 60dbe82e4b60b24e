"""Recurrent cells as pure functions, one module per family (builder, hand-written VJP rule, linear form).

See :mod:`rnnjax.core.cell` for the :class:`Cell` type and its capabilities.
"""

from rnnjax.core.cell import Cell, Params
from rnnjax.core.cells.base import default_input_init, default_recurrent_init
from rnnjax.core.cells.gru import GRUConvention, gru
from rnnjax.core.cells.linear import DEFAULT_SPECTRUM, LinearInit, LinearKind, linear_eigenvalues, linear_rnn
from rnnjax.core.cells.lstm import LSTMGates, LSTMState, lstm
from rnnjax.core.cells.min_gated import min_gru, min_lstm
from rnnjax.core.cells.names import CELL_NAMES, make_cell
from rnnjax.core.cells.simple import Activation, simple_rnn

__all__ = [
    "CELL_NAMES",
    "DEFAULT_SPECTRUM",
    "Activation",
    "Cell",
    "GRUConvention",
    "LSTMGates",
    "LSTMState",
    "LinearInit",
    "LinearKind",
    "Params",
    "default_input_init",
    "default_recurrent_init",
    "gru",
    "linear_eigenvalues",
    "linear_rnn",
    "lstm",
    "make_cell",
    "min_gru",
    "min_lstm",
    "simple_rnn",
]
