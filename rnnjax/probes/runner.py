"""Run the main job's groups so that an interruption loses at most the group in flight.

A run folder ``runs/universal_approximation/<name>/`` holds:

- ``config.json``, written (atomically) before anything is trained; a rerun with another config is refused,
  naming the fields that differ (:func:`open_config`);
- ``records.jsonl``, append-only: one JSON line per finished group ``{"group": id, "study", "seconds",
  "cpu_seconds", "models", "rows", "extras"}``, flushed and fsynced as soon as the group ends (:func:`append_record`);
- ``results.json`` and the report, built from ``records.jsonl`` alone (:func:`collect`), so they can be rebuilt
  from whatever exists.

A rerun with the same name and config skips the recorded groups (:func:`pending`); every group is a pure function
of its config and seeds, so the resumed run's rows equal an uninterrupted run's.

    plans = studies.plan(config)
    open_config(directory, config)
    done = read_records(directory / RECORDS)
    execute(pending(plans, done), directory / RECORDS, progress)
    rows, extras, coverage = collect(plans, read_records(directory / RECORDS))
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from typing import Any, Callable, Mapping, Sequence

from rnnjax.probes.progress import Progress, format_seconds
from rnnjax.probes.studies import StudyPlan
from rnnjax.probes.sweep import COMPILE_THREADS, Group, cancel_ahead, run_group
from rnnjax.training.runs import to_jsonable

RECORDS = "records.jsonl"
CONFIG = "config.json"


class ConfigMismatch(ValueError):
    """A run folder was started with another config; its records cannot be mixed with this one's."""


def config_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'field: stored -> current' for every top-level field that differs (or exists on one side only)."""
    missing = object()
    lines = []
    for field in sorted(set(stored) | set(current)):
        before, after = stored.get(field, missing), current.get(field, missing)
        if before != after:
            show = lambda value: "(absent)" if value is missing else json.dumps(value)  # noqa: E731
            lines.append(f"{field}: {show(before)} -> {show(after)}")
    return lines


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def open_config(directory: pathlib.Path, config: Any) -> dict[str, Any]:
    """Write ``config.json`` if the folder has none; otherwise refuse a config that differs from it.

    Returns the config as JSON. Raises :class:`ConfigMismatch` naming each differing field.
    """
    current = to_jsonable(config)
    path = pathlib.Path(directory) / CONFIG
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
        return current
    differences = config_differences(json.loads(path.read_text()), current)
    if differences:
        raise ConfigMismatch(
            f"run folder {str(directory)!r} was started with another config; its records cannot be mixed with this "
            f"run's. Differing fields (stored -> now): {'; '.join(differences)}. Use another run name, or rerun with "
            f"the stored config."
        )
    return current


def read_records(path: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Group id -> record from ``records.jsonl``; a last line cut short by a kill (no newline) is ignored."""
    path = pathlib.Path(path)
    if not path.exists():
        return {}
    text = path.read_text()
    lines = text.split("\n")
    complete = lines[:-1]  # the text after the last newline is empty, or a torn write
    records = {}
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}: line {number} is not a JSON record ({error}); expected one group per line"
            ) from error
        records[record["group"]] = record
    return records


def repair_records(path: pathlib.Path) -> bool:
    """Cut a last line torn by a kill (text after the last newline) so that appends start on a fresh line.

    Returns whether anything was cut.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep == len(data):
        return False
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def append_record(path: pathlib.Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line and make it durable (flush + fsync) before returning."""
    line = json.dumps(record, allow_nan=True) + "\n"
    with open(path, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def all_groups(plans: Mapping[str, StudyPlan]) -> list[Group]:
    """Every group of every study, in plan order; group ids must be unique."""
    groups = [group for study_plan in plans.values() for group in study_plan.groups]
    seen: set[str] = set()
    for group in groups:
        if group.id in seen:
            raise ValueError(f"group ids must be unique; {group.id!r} appears twice in the plan")
        seen.add(group.id)
    return groups


def pending(plans: Mapping[str, StudyPlan], done: Mapping[str, Any]) -> list[Group]:
    """The groups not yet in ``done`` (a records mapping), in plan order."""
    return [group for group in all_groups(plans) if group.id not in done]


def smallest_first(groups: Sequence[Group]) -> list[Group]:
    """The group of least :attr:`Group.work` first (the estimate comes early), then the rest in their order."""
    if not groups:
        return []
    first = min(range(len(groups)), key=lambda index: groups[index].work)
    return [groups[first], *groups[:first], *groups[first + 1 :]]


def group_record(group: Group, result, cpu_seconds: float) -> dict[str, Any]:
    """The records.jsonl line of one finished group (wall-clock and process CPU seconds)."""
    return {
        "group": group.id, "study": group.study, "seconds": result.seconds, "cpu_seconds": cpu_seconds,
        "models": group.models, "rows": result.records, "extras": result.extras,
    }  # fmt: skip


def execute(
    groups: Sequence[Group],
    records_path: pathlib.Path,
    progress: Progress,
    after_first: Callable[[Group, float], None] | None = None,
) -> None:
    """Train each group and append its record as soon as it ends; ``after_first(group, seconds)`` after the first.

    The programs of the next :data:`~rnnjax.probes.sweep.COMPILE_THREADS` groups compile in the background while
    a group runs, so a group's seconds (and process CPU seconds) include compiling later ones, and the first
    group's include compiling itself."""
    try:
        for number, group in enumerate(groups):
            progress.begin(group.label)
            cpu_start = time.process_time()
            result = run_group(group, ahead=groups[number + 1 : number + 1 + COMPILE_THREADS])
            append_record(records_path, group_record(group, result, time.process_time() - cpu_start))
            progress.finish(group.work, group.models)
            if number == 0 and after_first is not None:
                after_first(group, result.seconds)
    finally:
        cancel_ahead()  # a failed or stopped run leaves no compile queued behind it


def estimate_seconds(groups: Sequence[Group], measured: Group, seconds: float) -> float:
    """Time for ``groups`` scaled from one measured group by :attr:`Group.work` (an estimate)."""
    return seconds * sum(group.work for group in groups) / measured.work


@dataclasses.dataclass(frozen=True)
class Coverage:
    """How much of a study is recorded."""

    groups_done: int
    groups_total: int
    seconds: float
    cpu_seconds: float

    @property
    def complete(self) -> bool:
        return self.groups_done == self.groups_total


def collect(
    plans: Mapping[str, StudyPlan], records: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Coverage]]:
    """(rows, extras by study, coverage by study) from the recorded groups, in plan order (not file order).

    Studies without any recorded group are left out of rows and extras.
    """
    rows, extras, coverage = [], {}, {}
    for name, study_plan in plans.items():
        found = [records[group.id] for group in study_plan.groups if group.id in records]
        seconds = sum(record["seconds"] for record in found)
        cpu_seconds = sum(record.get("cpu_seconds", 0.0) for record in found)
        coverage[name] = Coverage(len(found), len(study_plan.groups), seconds, cpu_seconds)
        if not found:
            continue
        study_rows = [dict(row) for record in found for row in record["rows"]]
        finished, extras[name] = study_plan.finish(study_rows, [record["extras"] for record in found])
        rows += finished
    return rows, extras, coverage


def describe(plans: Mapping[str, StudyPlan], done: Mapping[str, Any]) -> str:
    """The plan, one line per study: groups (recorded / total), models and the model families."""
    lines = []
    for name, study_plan in plans.items():
        groups = study_plan.groups
        recorded = sum(group.id in done for group in groups)
        families = sorted({group.spec.name for group in groups})
        widths = sorted({group.spec.width for group in groups})
        lines.append(
            f"  {name}: {len(groups)} groups ({recorded} recorded), {sum(g.models for g in groups)} models; "
            f"models {', '.join(families)}; widths {widths}"
        )
    groups = all_groups(plans)
    todo = [group for group in groups if group.id not in done]
    lines.append(
        f"  total: {len(groups)} groups, {sum(g.models for g in groups)} models; to train: {len(todo)} groups, "
        f"{sum(g.models for g in todo)} models"
    )
    return "\n".join(lines)


def estimate_line(groups: Sequence[Group], measured: Group, seconds: float, backend: str) -> str:
    """'first group ... took X; estimated time for all groups on <backend>: Y' (scaled by work: within ~2-3x)."""
    total = estimate_seconds(groups, measured, seconds)
    return (
        f"first group ({measured.id}, {measured.models} models) took {format_seconds(seconds)}; estimated time for "
        f"all {len(groups)} groups on {backend}: ~{format_seconds(total)} (scaled by model count, steps and length)"
    )
