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
import sys

import jax

jax.config.update("jax_enable_x64", True)  # study 2 trains in float64; the others pass float32 explicitly

from rnnjax.apps import universal_approximation as main_job  # noqa: E402
from rnnjax.apps.outcome import Outcome  # noqa: E402
from rnnjax.probes import runner, studies  # noqa: E402
from rnnjax.training.config import RunConfig, RunField, cli  # noqa: E402
from rnnjax.training.runs import Run  # noqa: E402


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

    def __post_init__(self):
        if self.report_only and self.run.fresh:
            raise ValueError("--report-only rebuilds the report from the recorded groups; --fresh would empty them "
                             "first: give one of the two, not both")  # fmt: skip
        if self.run.seed != RunConfig().seed:
            raise ValueError(f"--seed is not used by this job (its seeds: --probe.seeds); got --seed {self.run.seed}")
        unknown = sorted(set(self.studies) - set(studies.STUDIES))
        if unknown:
            raise ValueError(f"--only must name studies among {sorted(studies.STUDIES)}; got {unknown}")

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


def main(argv: list[str] | None = None) -> Run:
    """Run (or resume) the studies and write the report."""
    config, args = parse(argv)
    tensorboard = None if args.run.tensorboard else False  # None: on when tensorboardX is installed
    run = Run("universal_approximation", name=args.name, root=args.run.runs_root, fresh=args.run.fresh,
              tensorboard=tensorboard)  # fmt: skip
    if args.report_only:
        config = main_job.stored_config(run.directory)
    else:
        runner.open_config(run.directory, config)  # refuses to mix with a run started under another config
    plans = studies.plan(config, args.studies)
    records_path = run.directory / runner.RECORDS
    if not args.report_only:
        main_job.train(plans, records_path, args.run.quiet)
    records = main_job.build_report(run, plans, config, main_job.ReportInfo(args.name, args.mode))
    headline = (f"{len(records)} trained models recorded; the report opens with the short answer and its intervals",)
    print(Outcome({}, headline, (), run.directory, args.run.quiet).ending())
    return run


if __name__ == "__main__":
    main(sys.argv[1:])
