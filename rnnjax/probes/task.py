"""Probe the user's own task: can an RNN learn this sequence map, does it need the future, how much look-ahead,
how much width, and is one fixed-size vector enough?

    from rnnjax.probes import task
    data = task.task_data(inputs, outputs, input_lengths=lengths)       # or task.load_task("my_task.npz")[0]
    result = task.probe(data, "runs/probe_task/mine", task.TaskProbeConfig(seeds=(0, 1, 2)))
    print(result.answers["Delay needed"])                                 # report.md, results.json, plots/ written

The pieces: :mod:`~rnnjax.probes.task_data` (input, checks, split), :mod:`~rnnjax.probes.task_floors` (linear
floors), :mod:`~rnnjax.probes.task_sweep` (the recorded, resumable sweep), :mod:`~rnnjax.probes.task_report`
(answers, tables, plots). ``python experiments/probe_task.py --data my_task.npz`` is the same from a shell.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from rnnjax.probes import task_report
from rnnjax.probes.task_data import Split, TaskData, load_task, sample_task, save_task, split_task, task_data
from rnnjax.probes.task_floors import linear_floors
from rnnjax.probes.task_sweep import TaskProbeConfig, plan, run_probe
from rnnjax.training.files import write_atomically

__all__ = ["TaskData", "TaskProbeConfig", "Split", "TaskResult", "load_task", "sample_task", "save_task", "split_task",
           "task_data", "linear_floors", "plan", "probe", "write_report"]  # fmt: skip


DEFAULT_CONFIG = TaskProbeConfig()


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """What :func:`probe` found: the floors, the trained rows, the selected rows and the answers by question."""

    floors: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    selected: list[dict[str, Any]]
    answers: dict[str, str]
    directory: pathlib.Path


def probe(
    data: TaskData, directory: str | pathlib.Path, config: TaskProbeConfig = DEFAULT_CONFIG,
    split: np.ndarray | None = None, progress: bool = True, train: bool = True,
) -> TaskResult:  # fmt: skip
    """Compute the floors and train the sweep (resuming what ``directory`` records; ``train=False``: nothing), then
    write results.json, report.md and plots/ there. ``split``: a fixed assignment (0 train, 1 validation, 2 test).

    Args:
      data: from :func:`task_data` (inputs ``[n, N, d_in]``, outputs ``[n, M, d_out]`` or int labels ``[n, M]``).
      directory: the run folder (created; a second call resumes what it records).
      config: the sizes of the probe (:class:`TaskProbeConfig`).
      split: int ``[n]`` fixed assignment of the sequences (default: a random split by ``config.split``).
      progress: show progress on stderr.
      train: train what is missing (False: report only what ``directory`` records).

    Examples:
      >>> import tempfile
      >>> import numpy as np
      >>> from rnnjax.probes import task
      >>> inputs = np.random.default_rng(0).normal(size=(64, 12, 1))  # [n, N, d_in]
      >>> outputs = np.roll(inputs, 2, axis=1) * (np.arange(12) >= 2)[:, None]  # y_t = x_{t-2}
      >>> data = task.task_data(inputs, outputs, name="delay_2")
      >>> config = task.TaskProbeConfig(cells=("linear_dense",), width=4, widths=(4,), max_delay=1, window=4,
      ...                               seeds=(0,), steps=2, batch_size=16)  # two steps: an example, not a fit
      >>> with tempfile.TemporaryDirectory() as directory:
      ...     result = task.probe(data, directory, config, progress=False)
      ...     written = sorted(path.name for path in result.directory.iterdir())
      >>> written
      ['config.json', 'plots', 'records.jsonl', 'report.md', 'results.json']
      >>> sorted(result.answers)
      ['Causal gap', 'Delay needed', 'Where the nonlinearity pays', 'Width needed']
    """
    directory = pathlib.Path(directory)
    floors, rows = run_probe(data, directory, config, split, progress, train)
    return write_report(data, directory, config, floors, rows)


def write_report(data: TaskData, directory: pathlib.Path, config: TaskProbeConfig, floors, rows) -> TaskResult:
    """results.json, plots/*.png and report.md in ``directory`` from the floors and trained rows."""
    selected = task_report.select(rows)
    plots = lambda name: directory / "plots" / f"{name}.png"  # noqa: E731
    files = task_report.make_plots(selected, floors, config.width, data.labels, plots) if selected else {}
    facts = _facts(data, rows)
    answers = task_report.answers(selected, floors, config.width)
    text = task_report.markdown(data.name, facts, selected, floors, config.width, data.labels, files)
    write_atomically(directory / "report.md", text)
    results = {"data": data.name, "floors": floors, "selected": selected, "answers": answers,
               "rows": [{k: v for k, v in row.items() if k != "losses"} for row in rows]}  # fmt: skip
    write_atomically(directory / "results.json", json.dumps(results, indent=2, sort_keys=True, default=float) + "\n")
    return TaskResult(floors, rows, selected, answers, directory)


def _facts(data: TaskData, rows) -> str:
    shape = (f"aligned, T = {data.input_steps}" if data.aligned else
             f"different lengths, N = {data.input_steps} -> M = {data.output_steps}")  # fmt: skip
    outputs = f"{data.classes} classes per step" if data.labels else f"{data.outputs.shape[2]} real outputs per step"
    seconds = sum(row["seconds"] for row in rows)
    return (f"{data.size} sequences ({shape}), {data.input_size} input features, {outputs}; {len(rows)} trained "
            f"models, {seconds:.0f} s of training.")
