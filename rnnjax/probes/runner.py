"""Run the main job's groups so that an interruption loses at most the group in flight.

A run folder ``runs/universal_approximation/<name>/`` holds:

- ``config.json``, written (atomically) before anything is trained; a rerun with another config is refused,
  naming the fields that differ, and a missing or damaged config.json beside records is an error naming the file
  (:func:`open_config`; the policy of :mod:`rnnjax.training.files`, shared with every run folder);
- ``records.jsonl``, append-only: one JSON line per finished group ``{"group": id, "config": hash, "study",
  "seconds", "cpu_seconds", "models", "rows", "extras"}``, flushed and fsynced as soon as the group ends
  (:func:`append_record`). ``config`` is :func:`~rnnjax.training.files.config_hash` of the folder's config.json:
  :func:`read_records` refuses a line written under another config (copied from another run, or left from before
  config.json was replaced), naming the line. A last line torn by a kill is ignored, then cut by the next append;
- ``results.json`` and the report, built from ``records.jsonl`` alone (:func:`collect`), so they can be rebuilt
  from whatever exists.

A rerun with the same name and config skips the recorded groups (:func:`pending`); every group is a pure function
of its config and seeds, so the resumed run's rows equal an uninterrupted run's.

    plans = studies.plan(config)
    open_config(directory, config)
    done = read_records(directory / RECORDS)   # checked against config.json
    execute(pending(plans, done), directory / RECORDS, progress)
    rows, extras, coverage = collect(plans, read_records(directory / RECORDS))
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Mapping, Sequence

from rnnjax.probes import executor
from rnnjax.probes.executor import GroupResult
from rnnjax.probes.planning import Group
from rnnjax.probes.progress import Progress, format_seconds
from rnnjax.probes.results import Row
from rnnjax.probes.studies import StudyPlan
from rnnjax.training import files
from rnnjax.training.files import CONFIG, ConfigMismatch
from rnnjax.training.runs import to_jsonable

RECORDS = "records.jsonl"


def open_config(directory: pathlib.Path, config: Any) -> dict[str, Any]:
    """Write ``config.json`` if the folder has none (and no records); otherwise refuse a config that differs from it.

    Returns the config as JSON. Raises :class:`ConfigMismatch` naming each differing field, and
    :class:`~rnnjax.training.files.DamagedFileError` naming config.json when it is unreadable, or missing while
    records exist.
    """
    current = to_jsonable(config)
    files.open_config(directory, current, recorded=[pathlib.Path(directory) / RECORDS])
    return current


def stored_hash(directory: pathlib.Path) -> str:
    """The config hash of a run folder: :func:`~rnnjax.training.files.config_hash` of its config.json."""
    path = pathlib.Path(directory) / CONFIG
    if not path.exists():
        raise files.DamagedFileError(f"{path} is missing: records cannot be tied to the config that made them")
    return files.config_hash(files.read_json(path))


def read_records(path: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Group id -> record from ``records.jsonl`` (a last line cut short by a kill is ignored).

    Every line must carry the hash of the folder's config.json: :class:`ConfigMismatch` names a line that does not.
    """
    path = pathlib.Path(path)
    lines = files.read_lines(path)
    expected = stored_hash(path.parent) if lines else None
    records = {}
    for number, record in lines:
        if not isinstance(record, dict) or "group" not in record:
            raise files.DamagedFileError(f"{path}: line {number} is not a group record (no 'group' field)")
        if record.get("config") != expected:
            raise ConfigMismatch(
                f"{path}: line {number} (group {record['group']!r}) was written under config "
                f"{record.get('config', '(none recorded)')}, but this folder's {CONFIG} has hash {expected}: it "
                "comes from another run. Remove that line, or start again under another name (or with --fresh)"
            )
        records[record["group"]] = record
    return records


def append_record(path: pathlib.Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line stamped with the folder's config hash, durable before returning (flush + fsync)."""
    path = pathlib.Path(path)
    stamped = {**record, "config": stored_hash(path.parent)}
    files.append_line(path, json.dumps(stamped, allow_nan=True))


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


def group_record(group: Group, result: GroupResult) -> dict[str, Any]:
    """The records.jsonl line of one finished group (wall-clock and process CPU seconds)."""
    return {
        "group": group.id, "study": group.study, "seconds": result.seconds, "cpu_seconds": result.cpu_seconds,
        "models": group.models, "rows": [row.to_json() for row in result.records], "extras": result.extras,
    }  # fmt: skip


def execute(
    groups: Sequence[Group],
    records_path: pathlib.Path,
    progress: Progress,
    after_first: Callable[[Group, float], None] | None = None,
) -> None:
    """Train each group and append its record as soon as it ends; ``after_first(group, seconds)`` after the first.

    :func:`rnnjax.probes.executor.execute` runs the groups: the programs of the next
    :data:`~rnnjax.probes.compiling.COMPILE_THREADS` groups compile in the background while a group runs, so a
    group's seconds (and process CPU seconds) include compiling later ones, and the first group's include
    compiling itself."""

    def record(number: int, group: Group, result: GroupResult) -> None:
        append_record(records_path, group_record(group, result))
        if number == 0 and after_first is not None:
            after_first(group, result.seconds)

    executor.execute(groups, on_group=record, progress=progress)


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
) -> tuple[list[Row], dict[str, Any], dict[str, Coverage]]:
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
        study_rows = [Row.from_json(row) for record in found for row in record["rows"]]
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
