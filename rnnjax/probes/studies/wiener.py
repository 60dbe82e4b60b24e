"""Study 4: nonlinear fading memory, a Wiener system: a linear RNN stops at the best time-invariant linear filter,
an MLP readout or a nonlinear cell does not."""

from __future__ import annotations

import dataclasses
import functools

from rnnjax.probes import report, targets, theory
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import Row, select, summarise
from rnnjax.probes.studies.base import LINEAR, ProbeConfig, StudyPlan, fill

NAME = "wiener"
LINEAR_MLP = dataclasses.replace(LINEAR, readout=Readout.MLP, label="linear+mlp")


def target(config: ProbeConfig) -> targets.Target:
    return targets.wiener(targets.exponential_kernel(0.7, 10 * config.length))


def plan(config: ProbeConfig) -> StudyPlan:
    specs = [LINEAR, LINEAR_MLP] + [ModelSpec(cell) for cell in config.wiener_cells]
    groups = plan_groups(target(config), specs, widths=(config.width,), seeds=config.seeds, config=config.train(),
                         study=NAME)  # fmt: skip
    return StudyPlan(
        tuple(groups), functools.partial(finish, config), title="4. Nonlinear fading memory: a Wiener system",
        summary="A Wiener system; a linear RNN stops at the best time-invariant linear filter, an MLP readout or a "
        "nonlinear cell does not.", findings=findings, plots=plots, answer=answer,
    )  # fmt: skip


def finish(config: ProbeConfig, rows: list[Row], group_extras: list[dict]) -> tuple[list[Row], dict]:
    """The best time-invariant linear filter's error is the linear RNN's theory (the time-varying one is below)."""
    invariant = theory.wiener_time_invariant_floor(target(config), config.length)
    varying = theory.wiener_floor(target(config), config.length)
    extras = {"time_invariant_floor": invariant, "time_varying_floor": varying}
    return fill(rows, lambda row: invariant if row.model == LINEAR.name else None), extras


def findings(rows: list[Row], extras) -> str:
    names = sorted({row.model for row in rows})
    measured = ", ".join(f"{m}: {report.quoted(select(rows, model=m))}" for m in names)
    floor = next((row.theory_nmse for row in rows if row.theory_nmse is not None), None)
    text = f"{measured} (best time-invariant linear filter, theory: {report.fmt(floor)}"
    varying = extras.get("time_varying_floor")
    return text + (f"; best time-varying linear estimate: {report.fmt(varying)})." if varying is not None else ").")


def plots(rows: list[Row], extras, plot_path) -> dict[str, str]:
    def draw(axes):
        report.plot_bars(summarise(rows), axes[0])

    return {NAME: report.figure(plot_path(NAME), 1, draw, "Study 4: Wiener system (red: best linear filter, theory)")}


def answer(rows: list[Row]) -> str:
    """A linear readout stops at the best linear filter; what the nonlinear models of the run reach."""
    linear = select(rows, model=LINEAR.name)
    if not linear:
        return ""
    others = "; ".join(f"{m} {report.quoted(select(rows, model=m))}" for m in sorted({r.model for r in rows})
                       if m != LINEAR.name)  # fmt: skip
    return (f"On a nonlinear fading-memory map (a Wiener system) the linear RNN stops at the best time-invariant "
            f"linear filter ({report.fmt(linear[0].theory_nmse)}): {report.quoted(linear)}"
            + (f"; with a nonlinearity: {others}" if others else "") + ".")  # fmt: skip
