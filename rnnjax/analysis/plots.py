"""Matplotlib (Agg) plots written into a run folder: learning curves and simple task plots."""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(figure: Any, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def learning_curves(
    run: Any, names: Sequence[str], path: str | pathlib.Path, *, title: str = "", log_y: bool = False
) -> pathlib.Path:
    """One line per metric name in ``run.metrics.jsonl`` against the step."""
    figure, axes = plt.subplots(figsize=(6, 4))
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
    return _save(figure, path)


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
    figure, axes = plt.subplots(figsize=(8, 4))
    for label, values in series.items():
        axes.plot(range(len(values)) if x is None else x, values, label=label, linewidth=1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)


def bars(values: dict[str, float], path: str | pathlib.Path, *, ylabel: str = "", title: str = "") -> pathlib.Path:
    """A bar per named value, annotated with the number."""
    figure, axes = plt.subplots(figsize=(max(4, 1.2 * len(values)), 4))
    names = list(values)
    heights = [values[n] for n in names]
    drawn = axes.bar(names, heights, color="tab:blue")
    axes.bar_label(drawn, fmt="%.3g")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.tick_params(axis="x", rotation=20)
    return _save(figure, path)


def confusion(
    matrix: Any, path: str | pathlib.Path, *, labels: Sequence[str] | None = None, title: str = ""
) -> pathlib.Path:
    """A confusion matrix as an image with counts."""
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in _cells(matrix):
        axes.text(column, row, str(count), ha="center", va="center", fontsize=7)
    if labels is not None:
        axes.set_xticks(range(len(labels)), labels)
        axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return _save(figure, path)


def _cells(matrix: Any):
    for row, values in enumerate(matrix):
        for column, count in enumerate(values):
            yield (row, column), int(count)
