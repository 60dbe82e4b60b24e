"""Building a cell from its name (configs and command lines name cells by string)."""

from __future__ import annotations

from typing import Any, Callable

from rnnjax.core.cell import Cell
from rnnjax.core.cells.gru import GRUConvention, gru
from rnnjax.core.cells.linear import LinearKind, linear_rnn
from rnnjax.core.cells.lstm import lstm
from rnnjax.core.cells.simple import Activation, simple_rnn

CELL_NAMES = (
    "simple_tanh",
    "simple_relu",
    "lstm",
    "gru_pytorch",
    "gru_cho",
    "linear_dense",
    "linear_diagonal",
    "linear_complex_diagonal",
)
"""One canonical name per cell kind that :func:`make_cell` builds (it also takes a few aliases)."""


def make_cell(name: str, **options: Any) -> Cell:
    """Build a cell from its name: 'simple_tanh', 'simple_relu', 'lstm', 'gru', 'gru_cho',
    'linear' (dense), 'linear_diagonal', 'linear_complex_diagonal'.

    Also 'simple' (tanh), 'gru_pytorch' and 'linear_dense' (:data:`CELL_NAMES` lists one canonical name per kind).

    Args:
      name: the cell's name.
      **options: keyword arguments of the builder (:func:`simple_rnn`, :func:`lstm`, :func:`gru`,
        :func:`linear_rnn`).

    Returns:
      A :class:`~rnnjax.core.cell.Cell`; ValueError for an unknown name.

    Examples:
      >>> from rnnjax import make_cell
      >>> make_cell("gru_cho").name, make_cell("linear").name, make_cell("lstm", forget_bias=0.0).name
      ('gru_cho', 'linear_dense', 'lstm')
    """
    builders: dict[str, Callable[[], Cell]] = {
        "simple": lambda: simple_rnn(Activation.TANH, **options),
        "simple_tanh": lambda: simple_rnn(Activation.TANH, **options),
        "simple_relu": lambda: simple_rnn(Activation.RELU, **options),
        "lstm": lambda: lstm(**options),
        "gru": lambda: gru(GRUConvention.PYTORCH, **options),
        "gru_pytorch": lambda: gru(GRUConvention.PYTORCH, **options),
        "gru_cho": lambda: gru(GRUConvention.CHO, **options),
        "linear": lambda: linear_rnn(LinearKind.DENSE, **options),
        "linear_dense": lambda: linear_rnn(LinearKind.DENSE, **options),
        "linear_diagonal": lambda: linear_rnn(LinearKind.DIAGONAL, **options),
        "linear_complex_diagonal": lambda: linear_rnn(LinearKind.COMPLEX_DIAGONAL, **options),
    }
    if name not in builders:
        raise ValueError(f"name must be one of {sorted(builders)}; got {name!r}")
    return builders[name]()
