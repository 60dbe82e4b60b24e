"""Run folders: ``runs/<experiment>/<name>/`` with config.json, metrics.jsonl, checkpoints/, plots/,
results.json and report.md.

API:
    run = Run("weather", config=config)            # name defaults to a UTC timestamp
    run.log(step, **{"train/loss": 0.4})           # one JSON line per call
    run.plot_path("curves")                        # runs/weather/<name>/plots/curves.png
    run.write_results({"test_mae": 1.9}); run.write_report("# Weather ...")
    run.close()                                    # or `with Run(...) as run:`; the folder is locked until then

Experiment and run names are plain names (one path component); ``fresh=True`` empties only the run's own
folder, and only when no symbolic link leads to it; a link under the runs root that leads outside it (the experiment
folder, the run folder, or any folder a file is written through) is refused. A run folder is held by one process at
a time (:mod:`rnnjax.training.locks`). Files are written by :mod:`rnnjax.training.files` (atomic JSON, durable
lines, one torn-line policy and one config.json policy: a resumed run with another config is refused).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import pathlib
import shutil
from typing import Any, Collection

import numpy as np

from rnnjax.checks import arguments
from rnnjax.training import files, locks
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
      config: a dataclass (or dict) written to ``config.json``; resuming a folder whose config.json differs (in a
        field not in ``untracked``) raises :class:`~rnnjax.training.files.ConfigMismatch` naming the fields.
      root: the runs root folder.
      fresh: empty an existing folder of the same name first (no resuming); only ``<root>/<experiment>/<name>``
        is ever emptied, never through a symbolic link, and config.json is then written anew.
      tensorboard: also write TensorBoard event files next to ``metrics.jsonl`` (scalars, the config as
        text, the report and its figures; :mod:`rnnjax.training.tensorboard`). ``None``: when tensorboardX
        is installed.
      untracked: dotted config fields that may differ on resume (e.g. ``run.quiet``: how a run is shown).

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
        untracked: Collection[str] = (),
    ):
        self.experiment = arguments.plain_name("experiment", experiment)
        if name is None:
            name = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.name = arguments.plain_name("name", name)
        self.directory = pathlib.Path(root) / self.experiment / self.name
        _refuse_links(pathlib.Path(root), (self.experiment, self.name), fresh)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = locks.acquire(self.directory)
        try:
            if fresh:
                _empty_folder(self.directory)
            self.untracked = frozenset(untracked)
            self.events = RunEvents(self.directory, tensorboard)
            self._set_config(config)
        except BaseException:
            self._lock.release()
            raise

    def sub(self, name: str, config: Any = None) -> "Run":
        """A nested run in ``<this run>/<name>/`` (its own metrics, checkpoints and plots), e.g. one per model.

        It lives under this run's lock (``name`` must be a plain name; its ``close`` only flushes its events).
        """
        child = object.__new__(Run)
        child.experiment, child.name = self.experiment, self.name
        child.directory = self.path(arguments.plain_name("name", name))
        child.directory.mkdir(parents=True, exist_ok=True)
        child._lock, child.untracked = None, self.untracked  # the parent's hold covers it
        child.events = RunEvents(child.directory, self.events.enabled)
        child._set_config(config)
        return child

    def _set_config(self, config: Any) -> None:
        """Write config.json, or check ``config`` against the stored one (the :mod:`~rnnjax.training.files` policy)."""
        self.config = config
        if config is not None:
            recorded = [self.directory / "metrics.jsonl", self.directory / "results.json"]
            files.open_config(self.directory, to_jsonable(config), recorded=recorded, untracked=self.untracked)
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
        """A path inside the run folder (parent folders created); absolute parts, '..' and links leading out are
        refused."""
        relative = pathlib.PurePath(*parts)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"parts must name a path inside the run folder {self.directory}; got {parts!r}")
        path = self.directory.joinpath(relative)
        _refuse_links(self.directory, relative.parts[:-1], fresh=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_links(self.directory, relative.parts, fresh=False)
        return path

    def plot_path(self, name: str) -> pathlib.Path:
        """``plots/<name>.png`` inside the run folder."""
        return self.path("plots", f"{name}.png")

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        directory = self.path("checkpoints")
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def log(self, step: int, **metrics: Any) -> None:
        """Append ``{"step": step, **metrics}`` as one line of ``metrics.jsonl``."""
        record = {"step": int(step), **{k: to_jsonable(v) for k, v in metrics.items()}}
        files.append_line(self.path("metrics.jsonl"), json.dumps(record))
        self.events.scalars(step, metrics)

    def log_figure(self, name: str, figure: Any, step: int = 0) -> None:
        """A matplotlib Figure or a PNG path as a TensorBoard image (nothing without TensorBoard)."""
        self.events.figure(name, figure, step)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of ``metrics.jsonl`` in order (a last line cut short by a kill is ignored with a warning)."""
        return [record for _, record in files.read_lines(self.directory / "metrics.jsonl")]

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric across ``metrics.jsonl``; later records win on repeated steps."""
        points = {r["step"]: float(r[name]) for r in self.read_metrics() if name in r}
        steps = sorted(points)
        return steps, [points[s] for s in steps]

    def write_results(self, results: dict[str, Any]) -> pathlib.Path:
        return self._write_json("results.json", to_jsonable(results))

    def write_report(self, markdown: str) -> pathlib.Path:
        path = self.path("report.md")
        files.write_atomically(path, markdown if markdown.endswith("\n") else markdown + "\n")
        self.events.report(markdown, self.directory / "plots")
        return path

    def _write_json(self, name: str, value: Any) -> pathlib.Path:
        path = self.path(name)
        files.write_atomically(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
        return path


def _refuse_links(base: pathlib.Path, parts: tuple[str, ...], fresh: bool) -> None:
    """Walk ``base/parts[0]/parts[1]/...``: a link is refused if it leads outside ``base`` (any link when ``fresh``:
    emptying a folder reached through a link could empty another experiment's run)."""
    inside, path = base.resolve(), base
    for part in parts:
        path = path / part
        if not path.is_symlink():
            continue
        target = path.resolve()
        if fresh:
            raise ValueError(f"fresh=True will not empty a folder reached through {path}: it is a symbolic link to "
                             f"{target}; open the run where it lives, or remove the link")  # fmt: skip
        if not target.is_relative_to(inside):
            raise ValueError(f"{path} is a symbolic link to {target}, outside {inside}: a run never writes through a "
                             "link that leads out of its folder; remove the link")  # fmt: skip


def _empty_folder(directory: pathlib.Path) -> None:
    """Delete everything inside ``directory`` but its lock file; links are removed, never followed."""
    for child in directory.iterdir():
        if child.name == locks.LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def markdown_table(rows: list[dict[str, Any]], digits: int = 4, empty: str | None = None) -> str:
    """A GitHub markdown table with one row per dict (columns from the first row).

    ``empty``: the text to return when there are no rows (without it, no rows is a ValueError: a table needs its
    columns from a row)."""
    if not rows:
        if empty is None:
            raise ValueError("markdown_table needs at least one row (its columns come from the first); got none")
        return empty
    columns = list(rows[0])

    def cell(value):
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
