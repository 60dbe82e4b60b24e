"""Drawings for the BPTT doc: a simple RNN as a network of neurons, and gradient-flow curves.

API:
    figure = draw_simple_rnn(params, steps=3)             # neurons and weighted connections, unrolled
    save(figure, "docs/figures/simple_rnn_neurons.png")
    gradient_flow(panels, path)                            # log-scale curves, one panel per quantity
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from rnnjax.analysis.plots import import_matplotlib, new_axes, new_figure, save_figure
from rnnjax.checks import arguments

NEURON_RADIUS = 0.22
COLOURS = {"input": "#f2d492", "hidden": "#9cc5e8", "initial": "#dddddd"}


def save(figure: Any, path: str | pathlib.Path) -> pathlib.Path:
    """Write ``figure`` as a PNG (parents created)."""
    return save_figure(figure, path, dpi=130, tight_layout=False, bbox_inches="tight")


def _neuron_positions(input_size: int, hidden_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of every neuron: hidden[t, j] for t = 0..steps (t = 0 is h_0), inputs[t, i] for t = 1..steps."""
    hidden = np.array([[(3.0 * t, 1.0 + j) for j in range(hidden_size)] for t in range(steps + 1)])
    inputs = np.array([[(3.0 * t - 1.3, -0.6 - 0.9 * i) for i in range(input_size)] for t in range(1, steps + 1)])
    return hidden, inputs


def _connect(axes: Any, start: Sequence[float], end: Sequence[float], weight: float, scale: float, cmap: Any) -> None:
    """A line from ``start`` to ``end`` whose colour gives the sign and width the size of ``weight``."""
    axes.plot(
        [start[0], end[0]], [start[1], end[1]], color=cmap(0.5 + 0.5 * weight / scale),
        linewidth=0.4 + 3.0 * abs(weight) / scale, zorder=1, solid_capstyle="round",
    )  # fmt: skip


def _neuron(axes: Any, centre: Sequence[float], label: str, colour: str) -> None:
    circle = import_matplotlib("matplotlib.patches").Circle
    axes.add_patch(circle(centre, NEURON_RADIUS, facecolor=colour, edgecolor="black", linewidth=0.8, zorder=2))
    axes.text(centre[0], centre[1], label, ha="center", va="center", fontsize=7, zorder=3)


def draw_simple_rnn(params: Mapping[str, Any], *, steps: int = 3, title: str | None = None) -> Any:
    """Draw a simple RNN h_t = act(x_t W + h_{t-1} U + b) unrolled over ``steps`` steps as neurons.

    Every input neuron x_t[i] connects to every hidden neuron h_t[j] with weight W[i, j], and
    every h_{t-1}[k] to every h_t[j] with weight U[k, j]; red lines are positive weights, blue
    negative, thicker is larger. The same W and U repeat at every step (weight sharing).

    Args:
      params: params of ``rnnjax.core.cells.simple_rnn`` (keys input_kernel [I, H], recurrent_kernel [H, H]).
      steps: number of time steps to unroll (keep the network small: I, H <= ~6).

    Returns:
      The matplotlib figure (save it with :func:`save`).
    """
    input_kernel = np.asarray(params["input_kernel"])
    recurrent_kernel = np.asarray(params["recurrent_kernel"])
    input_size, hidden_size = input_kernel.shape
    arguments.positive_int("steps", steps)
    arguments.has_shape("params['recurrent_kernel']", recurrent_kernel, (hidden_size, hidden_size))
    hidden, inputs = _neuron_positions(input_size, hidden_size, steps)
    scale = float(max(np.abs(input_kernel).max(), np.abs(recurrent_kernel).max(), 1e-12))
    cmap = import_matplotlib("matplotlib").colormaps["coolwarm"]
    figure, axes = new_axes(figsize=(2.2 + 2.0 * steps, 1.6 + 0.75 * (hidden_size + input_size)))
    for t in range(1, steps + 1):
        for j in range(hidden_size):
            for k in range(hidden_size):
                _connect(axes, hidden[t - 1, k], hidden[t, j], recurrent_kernel[k, j], scale, cmap)
            for i in range(input_size):
                _connect(axes, inputs[t - 1, i], hidden[t, j], input_kernel[i, j], scale, cmap)
    for t in range(steps + 1):
        for j in range(hidden_size):
            _neuron(axes, hidden[t, j], f"$h_{{{t}}}^{{{j + 1}}}$", COLOURS["initial" if t == 0 else "hidden"])
        if t:  # the output y_t = h_t leaves the top of the column
            top = hidden[t, -1]
            axes.annotate("", xy=(top[0], top[1] + 0.7), xytext=(top[0], top[1] + NEURON_RADIUS),
                          arrowprops={"arrowstyle": "->"})  # fmt: skip
            axes.text(top[0], top[1] + 0.95, f"$y_{{{t}}} = h_{{{t}}}$", ha="center", va="center", fontsize=8)
    for t in range(1, steps + 1):
        for i in range(input_size):
            _neuron(axes, inputs[t - 1, i], f"$x_{{{t}}}^{{{i + 1}}}$", COLOURS["input"])
    normalize = import_matplotlib("matplotlib.colors").Normalize(-scale, scale)
    mappable = import_matplotlib("matplotlib.cm").ScalarMappable(normalize, cmap)
    figure.colorbar(mappable, ax=axes, shrink=0.6, label="weight")
    axes.set_title(title or f"simple RNN unrolled over {steps} steps (W: input -> hidden, U: hidden -> next hidden)")
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_xlim(-0.5, 3.0 * steps + 0.6)
    axes.set_ylim(inputs[:, :, 1].min() - 0.5, hidden_size + 1.3)
    return figure


def gradient_flow(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | pathlib.Path,
    *,
    xlabel: str = "time step t",
    title: str = "",
) -> pathlib.Path:
    """Log-scale curves, one panel per entry of ``panels`` ({panel title: {label: values over t}})."""
    figure = new_figure(figsize=(5.2 * len(panels), 3.8))
    for axes, (panel, curves) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels.items()):
        for label, values in curves.items():
            values = np.asarray(values, dtype=float)
            values = np.where(values > 0, values, np.nan)  # underflowed zeros are left out, not drawn at 1e-300
            axes.semilogy(np.arange(len(values)), values, label=label, linewidth=1.2)
        axes.set_title(panel, fontsize=10)
        axes.set_xlabel(xlabel)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save(figure, path)
