"""Run folders: ``runs/<experiment>/<name>/`` with config.json, metrics.jsonl, checkpoints/, plots/,
results.json and report.md.

API:
    run = Run("weather", config=config)            # name defaults to a UTC timestamp
    run.log(step, **{"train/loss": 0.4})           # one JSON line per call
    run.plot_path("curves")                        # runs/weather/<name>/plots/curves.png
    run.write_results({"test_mae": 1.9}); run.write_report("# Weather ...")
    run.close()                                    # or `with Run(...) as run:`; the folder is locked until then

Experiment and run names are plain names (one path component); ``fresh=True`` empties only the run's own
folder. A run folder is held by one process at a time (:mod:`rnnjax.training.locks`).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import pathlib
import shutil
import warnings
from typing import Any

import numpy as np

from rnnjax.checks import arguments
from rnnjax.training import locks
from rnnjax.training.tensorboard import RunEvents


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, tuples, numpy and JAX scalars/arrays -> plain JSON values (NaN/inf as strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pathlib.Path):
        return str(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(value)
        return to_jsonable(array.item() if array.ndim == 0 else array.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Run:
    """One experiment run folder, held by this process (created, with ``config.json`` written when ``config`` is given).

    Args:
      experiment: experiment name, the first folder level (a plain name: no separators, not '.' or '..').
      name: run name, a plain name (default: UTC timestamp ``YYYYmmdd-HHMMSS``); an existing run folder is
        reused (and appended to), which is how a run is resumed.
      config: a dataclass (or dict) written to ``config.json``.
      root: the runs root folder.
      fresh: empty an existing folder of the same name first (no resuming); only ``<root>/<experiment>/<name>``
        is ever emptied, and never through a symbolic link.
      tensorboard: also write TensorBoard event files next to ``metrics.jsonl`` (scalars, the config as
        text, the report and its figures; :mod:`rnnjax.training.tensorboard`). ``None``: when tensorboardX
        is installed.

    The folder is locked (:mod:`rnnjax.training.locks`): another process opening it gets a
    :class:`~rnnjax.training.locks.FolderLockedError` naming the holder. ``close()`` (or ``with``, or the end of
    the process) releases it.
    """

    def __init__(
        self,
        experiment: str,
        name: str | None = None,
        config: Any = None,
        root: str | pathlib.Path = "runs",
        *,
        fresh: bool = False,
        tensorboard: bool | None = None,
    ):
        self.experiment = arguments.plain_name("experiment", experiment)
        if name is None:
            name = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.name = arguments.plain_name("name", name)
        self.directory = pathlib.Path(root) / self.experiment / self.name
        if fresh:
            _refuse_link(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = locks.acquire(self.directory)
        if fresh:
            _empty_folder(self.directory)
        self.events = RunEvents(self.directory, tensorboard)
        self._set_config(config)

    def sub(self, name: str, config: Any = None) -> "Run":
        """A nested run in ``<this run>/<name>/`` (its own metrics, checkpoints and plots), e.g. one per model.

        It lives under this run's lock (``name`` must be a plain name; its ``close`` only flushes its events).
        """
        child = object.__new__(Run)
        child.experiment, child.name = self.experiment, self.name
        child.directory = self.directory / arguments.plain_name("name", name)
        child.directory.mkdir(parents=True, exist_ok=True)
        child._lock = None  # the parent's hold covers it
        child.events = RunEvents(child.directory, self.events.enabled)
        child._set_config(config)
        return child

    def _set_config(self, config: Any) -> None:
        self.config = config
        if config is not None:
            self._write_json("config.json", to_jsonable(config))
            self.events.config(to_jsonable(config))

    def close(self) -> None:
        """Flush the event files and release this run's hold on its folder (idempotent)."""
        try:
            self.events.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def path(self, *parts: str) -> pathlib.Path:
        """A path inside the run folder (parent folders created); absolute parts and '..' are refused."""
        relative = pathlib.PurePath(*parts)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"parts must name a path inside the run folder {self.directory}; got {parts!r}")
        path = self.directory.joinpath(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def plot_path(self, name: str) -> pathlib.Path:
        """``plots/<name>.png`` inside the run folder."""
        return self.path("plots", f"{name}.png")

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        directory = self.directory / "checkpoints"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def log(self, step: int, **metrics: Any) -> None:
        """Append ``{"step": step, **metrics}`` as one line of ``metrics.jsonl``."""
        record = {"step": int(step), **{k: to_jsonable(v) for k, v in metrics.items()}}
        _append_line(self.path("metrics.jsonl"), json.dumps(record))
        self.events.scalars(step, metrics)

    def log_figure(self, name: str, figure: Any, step: int = 0) -> None:
        """A matplotlib Figure or a PNG path as a TensorBoard image (nothing without TensorBoard)."""
        self.events.figure(name, figure, step)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of ``metrics.jsonl`` in order; lines cut short by a killed process are skipped (warning)."""
        path = self.directory / "metrics.jsonl"
        if not path.exists():
            return []
        records, broken = [], []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                broken.append(number)
        if broken:
            warnings.warn(f"{path}: skipped unreadable lines {broken} (an interrupted write?)", stacklevel=2)
        return records

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric across ``metrics.jsonl``; later records win on repeated steps."""
        points = {r["step"]: float(r[name]) for r in self.read_metrics() if name in r}
        steps = sorted(points)
        return steps, [points[s] for s in steps]

    def write_results(self, results: dict[str, Any]) -> pathlib.Path:
        return self._write_json("results.json", to_jsonable(results))

    def write_report(self, markdown: str) -> pathlib.Path:
        path = self.path("report.md")
        _write_atomically(path, markdown if markdown.endswith("\n") else markdown + "\n")
        self.events.report(markdown, self.directory / "plots")
        return path

    def _write_json(self, name: str, value: Any) -> pathlib.Path:
        path = self.path(name)
        _write_atomically(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
        return path


def _write_atomically(path: pathlib.Path, text: str) -> None:
    """Write a temporary file and rename it over ``path``: a reader sees the old or the new text, never a part."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _append_line(path: pathlib.Path, line: str) -> None:
    """Append one line, first ending a line left unterminated by an interrupted write (so it stays apart)."""
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        ended = handle.tell() == 0
        if not ended:
            handle.seek(-1, os.SEEK_END)
            ended = handle.read(1) == b"\n"
        handle.write((line + "\n" if ended else "\n" + line + "\n").encode())


def _refuse_link(directory: pathlib.Path) -> None:
    """``fresh`` empties ``directory`` itself: never a symbolic link, never a folder outside its experiment."""
    if directory.is_symlink():
        raise ValueError(f"fresh=True will not empty {directory}: it is a symbolic link to {directory.resolve()}")
    parent = directory.parent.resolve()
    if directory.resolve().parent != parent:
        raise ValueError(f"fresh=True will not empty {directory}: it resolves outside {parent}")


def _empty_folder(directory: pathlib.Path) -> None:
    """Delete everything inside ``directory`` but its lock file; links are removed, never followed."""
    for child in directory.iterdir():
        if child.name == locks.LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def markdown_table(rows: list[dict[str, Any]], digits: int = 4) -> str:
    """A GitHub markdown table with one row per dict (columns from the first row)."""
    columns = list(rows[0])

    def cell(value):
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
