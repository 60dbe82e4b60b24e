"""PNG plots written into a run folder: learning curves and simple task plots.

Drawn with matplotlib's object API (``matplotlib.figure.Figure`` on an Agg canvas): importing
this module imports no matplotlib, and drawing never touches pyplot's global state or the
process-wide backend, so plots work the same in scripts, tests and notebooks. matplotlib is
the optional extra ``rnnjax[plots]``.
"""

from __future__ import annotations

import importlib
import pathlib
from types import ModuleType
from typing import Any, Sequence


def import_matplotlib(module: str = "matplotlib") -> ModuleType:
    """Import ``module`` (a matplotlib module) on first use, naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ImportError(
            f"plotting needs matplotlib ({module} could not be imported); install it with pip install 'rnnjax[plots]'"
        ) from error


def new_figure(**figure_options: Any) -> Any:
    """A ``matplotlib.figure.Figure`` on its own Agg canvas (no pyplot, no global backend)."""
    figure = import_matplotlib("matplotlib.figure").Figure(**figure_options)
    import_matplotlib("matplotlib.backends.backend_agg").FigureCanvasAgg(figure)
    return figure


def new_axes(*, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(figure, axes)`` with one Axes, like ``pyplot.subplots()`` but without pyplot."""
    figure = new_figure(figsize=figsize)
    return figure, figure.subplots()


def save_figure(
    figure: Any, path: str | pathlib.Path, *, dpi: int = 110, tight_layout: bool = True, **savefig_options: Any
) -> pathlib.Path:
    """Write ``figure`` to ``path`` (parents created), after a tight layout unless told not to; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight_layout:
        figure.tight_layout()
    figure.savefig(path, dpi=dpi, **savefig_options)
    return path


def learning_curves(
    run: Any, names: Sequence[str], path: str | pathlib.Path, *, title: str = "", log_y: bool = False
) -> pathlib.Path:
    """One line per metric name in ``run.metrics.jsonl`` against the step."""
    figure, axes = new_axes(figsize=(6, 4))
    for name in names:
        steps, values = run.series(name)
        if steps:
            axes.plot(steps, values, label=name)
    axes.set_xlabel("step")
    axes.set_title(title)
    if log_y:
        axes.set_yscale("log")
    axes.legend()
    axes.grid(alpha=0.3)
    return save_figure(figure, path)


def lines(
    series: dict[str, Sequence[float]],
    path: str | pathlib.Path,
    *,
    x: Sequence[float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
) -> pathlib.Path:
    """Several named series on one axis."""
    figure, axes = new_axes(figsize=(8, 4))
    for label, values in series.items():
        axes.plot(range(len(values)) if x is None else x, values, label=label, linewidth=1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    return save_figure(figure, path)


def bars(values: dict[str, float], path: str | pathlib.Path, *, ylabel: str = "", title: str = "") -> pathlib.Path:
    """A bar per named value, annotated with the number."""
    figure, axes = new_axes(figsize=(max(4, 1.2 * len(values)), 4))
    names = list(values)
    heights = [values[n] for n in names]
    drawn = axes.bar(names, heights, color="tab:blue")
    axes.bar_label(drawn, fmt="%.3g")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.tick_params(axis="x", rotation=20)
    return save_figure(figure, path)


def confusion(
    matrix: Any, path: str | pathlib.Path, *, labels: Sequence[str] | None = None, title: str = ""
) -> pathlib.Path:
    """A confusion matrix as an image with counts."""
    figure, axes = new_axes(figsize=(5, 5))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in _cells(matrix):
        axes.text(column, row, str(count), ha="center", va="center", fontsize=7)
    if labels is not None:
        axes.set_xticks(range(len(labels)), labels)
        axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return save_figure(figure, path)


def _cells(matrix: Any):
    for row, values in enumerate(matrix):
        for column, count in enumerate(values):
            yield (row, column), int(count)
