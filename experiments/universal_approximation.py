"""Is universal approximation possible for many-to-many tasks? Seven studies, one report.

    python experiments/universal_approximation.py            # a few minutes on 2 CPU cores
    python experiments/universal_approximation.py --full     # the long version (prints its plan and an estimate)
    python experiments/universal_approximation.py --quick    # CI smoke version
    python experiments/universal_approximation.py --report-only   # rebuild the report from what is recorded
    python experiments/universal_approximation.py --quick --probe.steps 50 --run-name try --quiet   # any field

Writes runs/universal_approximation/<name>/{config.json, records.jsonl, results.json, report.md, plots/*.png}:
config.json first, then one line of records.jsonl per finished group, so an interrupted run keeps its finished
groups and a rerun with the same --run-name resumes (see rnnjax.probes.runner; --fresh starts over). Progress goes
to stderr (a bar on a terminal, plain lines in a log; --quiet for none). See docs/universal_approximation.md for
the question, the literature and how to read the plots.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys

import jax

jax.config.update("jax_enable_x64", True)  # study 2 trains in float64; the others pass float32 explicitly

from rnnjax.probes import report, runner, studies  # noqa: E402
from rnnjax.probes.progress import Progress, format_seconds  # noqa: E402
from rnnjax.probes.sweep import RESULT_FIELDS  # noqa: E402
from rnnjax.training.config import RunConfig, RunField, cli  # noqa: E402
from rnnjax.training.runs import Run  # noqa: E402

SECTIONS = report.SECTIONS  # study -> (title, plots); the short answer is report.answer(records)


@dataclasses.dataclass(frozen=True)
class MainJobConfig:
    """Is universal approximation possible for many-to-many tasks? The studies and one report."""

    probe: studies.ProbeConfig = studies.ProbeConfig()
    """sizes of the studies (their seeds are --probe.seeds; --seed is not used)."""
    only: tuple[str, ...] = ()
    """studies to run (default: all), by name; 'causality,wiener' also works."""
    report_only: bool = False
    """train nothing: rebuild results.json and the report from the run's records.jsonl."""
    run: RunField = RunConfig(run_name="default")

    @property
    def name(self) -> str:
        return self.run.run_name or "default"

    @property
    def mode(self) -> str:
        """'--quick', '--full', 'default' or 'custom' sizes."""
        presets = {"--quick": studies.ProbeConfig.quick(), "--full": studies.ProbeConfig.full()}
        presets["default"] = studies.ProbeConfig()
        return next((name for name, probe in presets.items() if probe == self.probe), "custom")

    @property
    def studies(self) -> tuple[str, ...]:
        return tuple(name for entry in self.only for name in entry.split(",") if name)


PRESETS = {
    "quick": lambda: MainJobConfig(probe=studies.ProbeConfig.quick(), run=RunConfig(run_name="quick")),
    "full": lambda: MainJobConfig(probe=studies.ProbeConfig.full(), run=RunConfig(run_name="full")),
}


def parse(argv: list[str] | None) -> tuple[studies.ProbeConfig, MainJobConfig]:
    """(probe sizes, the whole config) from the command line: --quick / --full presets, then any flag."""
    config = cli(MainJobConfig, argv, presets=PRESETS)
    return config.probe, config


def stored_config(directory) -> studies.ProbeConfig:
    """The ProbeConfig a run folder was started with (its config.json)."""
    path = directory / runner.CONFIG
    if not path.exists():
        raise FileNotFoundError(f"--report-only needs a started run; {path} does not exist")
    stored = json.loads(path.read_text())
    return studies.ProbeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})


def train(plans: dict, records_path, quiet: bool) -> None:
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


def _sentence(docstring: str) -> str:
    text = docstring.split(":", 1)[1].strip()
    return text[0].upper() + text[1:]


def _timing(coverage: dict) -> str:
    """Wall-clock (and process CPU) training time per study; a shared machine inflates the first, not the second."""
    parts = [f"{name} {format_seconds(c.seconds)} (CPU {format_seconds(c.cpu_seconds)})"
             + ("" if c.complete else f" ({c.groups_done}/{c.groups_total} groups recorded)")
             for name, c in coverage.items()]  # fmt: skip
    return "Training time per study, wall-clock (process CPU): " + ", ".join(parts) + "."


def markdown(records, extras, files, coverage, config, args) -> str:
    notes = report.findings(records, extras)
    seconds = sum(c.seconds for c in coverage.values())
    lines = ["# Universal approximation for many-to-many tasks: an empirical probe", "", report.answer(records)]
    lines += [f"**Error:** {line}" for line in report.violations(records)]
    lines += [f"Run `{args.name}` ({args.mode}): {len(records)} trained models in {seconds:.0f} s of training on "
              f"{platform.machine()} ({jax.device_count()} {jax.default_backend()} device(s)); training length "
              f"T={config.length}, seeds {list(config.seeds)}. {_timing(coverage)}", ""]  # fmt: skip
    for study, (title, plots) in SECTIONS.items():
        if not any(r["study"] == study for r in records):
            continue
        lines += [f"## {title}", "", _sentence(studies.STUDIES[study].__doc__), ""]
        if not coverage[study].complete:
            done, total = coverage[study].groups_done, coverage[study].groups_total
            lines += [f"**Partial:** {done} of {total} groups recorded.", ""]
        if study in notes:
            lines += [f"**Measured:** {notes[study]}", ""]
        if study == "width":
            lines += [f"State-space orders (Hankel rank) of the targets: {extras['width']['orders']}.", ""]
        lines += [report.study_table(records, study), ""]
        lines += [f"![{name}](plots/{files[name]})" for name in plots if name in files] + [""]
    return "\n".join(lines)


def build_report(run: Run, plans: dict, config: studies.ProbeConfig, args) -> list[dict]:
    """results.json, plots and report.md from records.jsonl (whatever it holds)."""
    records, extras, coverage = runner.collect(plans, runner.read_records(run.directory / runner.RECORDS))
    files = report.make_plots(records, extras, run.plot_path)
    slim = [{k: v for k, v in r.items() if k != "losses"} for r in records]
    run.write_results({
        "schema": list(RESULT_FIELDS), "records": slim, "summary": report.summarise(records),
        "seconds": sum(c.seconds for c in coverage.values()),
        "coverage": {name: dataclasses.asdict(c) for name, c in coverage.items()},
        "extras": {k: v for k, v in extras.items() if k != "memory"},
    })  # fmt: skip
    run.write_report(markdown(records, extras, files, coverage, config, args))
    return records


def main(argv: list[str] | None = None) -> Run:
    """Run (or resume) the studies and write the report."""
    config, args = parse(argv)
    run = Run("universal_approximation", name=args.name, root=args.run.runs_root, fresh=args.run.fresh)
    if args.report_only:
        config = stored_config(run.directory)
    else:
        runner.open_config(run.directory, config)  # refuses to mix with a run started under another config
    plans = studies.plan(config, args.studies)
    records_path = run.directory / runner.RECORDS
    if not args.report_only:
        runner.repair_records(records_path)
        train(plans, records_path, args.run.quiet)
    records = build_report(run, plans, config, args)
    print(f"wrote {run.directory} ({len(records)} models)")
    return run


if __name__ == "__main__":
    main(sys.argv[1:])
