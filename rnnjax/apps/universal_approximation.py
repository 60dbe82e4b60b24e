"""The main job behind ``experiments/universal_approximation.py``: train the probe's studies group by group
(recorded, resumable) and assemble results.json and report.md from whatever the records hold.

API:
    config = stored_config(run.directory)                  # the ProbeConfig a run folder was started with
    train(plans, run.directory / runner.RECORDS, quiet)    # plan, estimate, train and record the missing groups
    records = build_report(run, plans, config, ReportInfo("default", "default"))
"""

from __future__ import annotations

import dataclasses
import pathlib
import platform
import sys

import jax

from rnnjax.probes import probe_checks, report, runner, studies
from rnnjax.probes.progress import Progress, format_seconds
from rnnjax.probes.results import CONVERGENCE_RULE, RESULT_FIELDS, Row, summarise
from rnnjax.training import files
from rnnjax.training.runs import Run


@dataclasses.dataclass(frozen=True)
class ReportInfo:
    """What the report says about the run itself: its name and its size ('--quick', 'default', 'custom', ...)."""

    name: str
    mode: str


def stored_config(directory: pathlib.Path) -> studies.ProbeConfig:
    """The ProbeConfig a run folder was started with (its config.json)."""
    path = pathlib.Path(directory) / runner.CONFIG
    if not path.exists():
        raise FileNotFoundError(f"--report-only needs a started run; {path} does not exist")
    return probe_checks.from_stored(studies.ProbeConfig, files.read_json(path), path)  # errors name the file


def train(plans: dict, records_path: pathlib.Path, quiet: bool) -> None:
    """Print the plan, then train and record every group not yet recorded (resume)."""
    done = runner.read_records(records_path)
    todo = runner.pending(plans, done)
    backend = f"{jax.device_count()} {jax.default_backend()} device(s)"
    if not quiet:
        print(f"plan ({backend}):\n{runner.describe(plans, done)}", file=sys.stderr, flush=True)
    if not todo:
        return
    todo = runner.smallest_first(todo)  # a quick first measurement for the estimate; results keep the plan order
    progress = Progress(sum(g.work for g in todo), sum(g.models for g in todo), len(todo), enabled=not quiet)
    estimate = lambda group, seconds: progress.note(runner.estimate_line(todo, group, seconds, backend))  # noqa: E731
    runner.execute(todo, records_path, progress, after_first=estimate)
    progress.close()


def timing(coverage: dict) -> str:
    """Wall-clock (and process CPU) training time per study; a shared machine inflates the first, not the second."""
    parts = [
        f"{name} {format_seconds(c.seconds)} (CPU {format_seconds(c.cpu_seconds)})"
        + ("" if c.complete else f" ({c.groups_done}/{c.groups_total} groups recorded)")
        for name, c in coverage.items()
    ]
    return "Training time per study, wall-clock (process CPU): " + ", ".join(parts) + "."


def markdown(records, extras, files, coverage, config: studies.ProbeConfig, info: ReportInfo, plans=None) -> str:
    """report.md: the short answer, any violated optimum, the run's size and timing, then one section per study
    (each study writes its own paragraph and figures: :func:`rnnjax.probes.report.sections`)."""
    plans = studies.plan(config) if plans is None else plans
    seconds = sum(c.seconds for c in coverage.values())
    devices = f"{jax.device_count()} {jax.default_backend()} device(s)"
    lines = ["# Universal approximation for many-to-many tasks: an empirical probe", "", report.answer(plans, records)]
    lines += [f"**Error:** {line}" for line in report.violations(records)]
    lines += [
        f"Run `{info.name}` ({info.mode}): {len(records)} trained models in {seconds:.0f} s of training on "
        f"{platform.machine()} ({devices}); training length T={config.length}, seeds {list(config.seeds)}. "
        f"{timing(coverage)}",
        "",
    ]
    partial = {name: f"{c.groups_done} of {c.groups_total} groups recorded." for name, c in coverage.items()
               if not c.complete}  # fmt: skip
    return "\n".join(lines + report.sections(plans, records, extras, files, partial))


def build_report(run: Run, plans: dict, config: studies.ProbeConfig, info: ReportInfo) -> list[Row]:
    """results.json, plots and report.md from records.jsonl (whatever it holds); returns the records."""
    records, extras, coverage = runner.collect(plans, runner.read_records(run.directory / runner.RECORDS))
    files = report.make_plots(plans, records, extras, run.plot_path)
    run.write_results(
        {
            "schema": list(RESULT_FIELDS),
            "records": [{k: v for k, v in r.to_json().items() if k != "losses"} for r in records],
            "summary": [summary.to_json() for summary in summarise(records)],
            "convergence_rule": CONVERGENCE_RULE,
            "seconds": sum(c.seconds for c in coverage.values()),
            "coverage": {name: dataclasses.asdict(c) for name, c in coverage.items()},
            "extras": {k: v for k, v in extras.items() if k != "memory"},
        }
    )
    run.write_report(markdown(records, extras, files, coverage, config, info, plans))
    return records
