"""Study 5: non-fading memory: running parity and counting, trained at T, tested at 2T and 10T."""

from __future__ import annotations

from rnnjax.probes import report, targets
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import Row
from rnnjax.probes.studies.base import ProbeConfig, StudyPlan, no_theory

NAME = "non_fading"


def plan(config: ProbeConfig) -> StudyPlan:
    specs = [ModelSpec("linear_diagonal", readout=Readout.NONE, label="linear_diagonal")]
    specs += [ModelSpec(cell) for cell in config.parity_cells]
    train = config.train(length=config.parity_length, steps=config.parity_steps)
    groups = plan_groups([targets.parity(), targets.counting()], specs, widths=(config.width,), seeds=config.seeds,
                         config=train, study=NAME)  # fmt: skip
    return StudyPlan(
        tuple(groups), no_theory, title="5. Non-fading memory: parity and counting",
        summary="Running parity and counting, trained at T, tested at 2T and 10T.", findings=by_length,
        answer=answer,
        plots=lambda rows, extras, plot_path: length_plots(NAME, rows, plot_path),
    )  # fmt: skip


def by_length(rows: list[Row], extras=None) -> str:
    """'target model wW: T a, 2T b, 10T c [rows]' per (target, model, width)."""
    keys = sorted({(row.target, row.model, row.width) for row in rows})
    parts = []
    for target, model, width in keys:
        chosen = [row for row in rows if (row.target, row.model, row.width) == (target, model, width)]
        parts.append(f"{target} {model} w{width}: {report.lengths_text(chosen)}")
    return "; ".join(parts) + f" {report.cite(rows)}."


def length_plots(name: str, rows: list[Row], plot_path) -> dict[str, str]:
    """The study's error vs test length figure."""
    def draw(axes):
        report.plot_lengths(rows, axes[0])

    return {f"{name}_lengths": report.figure(plot_path(f"{name}_lengths"), 1, draw, f"{name}: error vs test length")}


def answer(rows: list[Row]) -> str:
    """Maps without fading memory: does what was learned at T hold at 10T?"""
    return ("Maps without fading memory fall outside the theorems; at T, 2T and 10T this run measured: "
            + by_length(rows))
