"""Study 6: depth vs width for deep narrow ReLU RNNs on the lagged product y_t = x_{t-2} x_{t-5} (+-1 inputs)."""

from __future__ import annotations

from rnnjax.probes import report, targets
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import Row, Summary, select, summarise
from rnnjax.probes.studies.base import ProbeConfig, StudyPlan, no_theory, same_except
from rnnjax.probes.studies.non_fading import by_length, length_plots

NAME = "depth"


def plan(config: ProbeConfig) -> StudyPlan:
    specs = [ModelSpec("simple_relu", depth=depth) for depth in config.depths]
    groups = plan_groups(targets.volterra((2, 5), targets.InputKind.SIGNS), specs, widths=config.deep_widths,
                         seeds=config.seeds, config=config.train(), study=NAME)  # fmt: skip
    return StudyPlan(
        tuple(groups), no_theory, title="6. Depth vs width for deep narrow ReLU RNNs",
        summary="Deep narrow ReLU RNNs on the lagged product y_t = x_{t-2} x_{t-5} (+-1 inputs).",
        findings=by_length, plots=plots, answer=answer, contains=contains,
    )  # fmt: skip


def contains(larger: Summary, smaller: Summary) -> bool:
    """At least as deep and as wide, one of them more: a ReLU layer can pass its input on (shifted by a bias that
    the next layer removes), and a wider layer can leave its extra units at zero."""
    return (
        same_except(larger, smaller, "model", "width", "depth") and larger.depth >= smaller.depth
        and larger.width >= smaller.width and (larger.depth, larger.width) != (smaller.depth, smaller.width)
    )  # fmt: skip


def plots(rows: list[Row], extras, plot_path) -> dict[str, str]:
    def draw(axes):
        report.plot_vs(summarise(rows), axes[0], "width", ("model", "depth"), log_x=True)

    files = {NAME: report.figure(plot_path(NAME), 1, draw, "Study 6: deep narrow ReLU RNNs")}
    return files | length_plots(NAME, rows, plot_path)


def answer(rows: list[Row]) -> str:
    """Depth against width on the lagged product: the medians at each (depth, width)."""
    parts = [f"{model} w{width} {report.quoted(select(rows, model=model, width=width))}"
             for model, width in sorted({(row.model, row.width) for row in rows})]  # fmt: skip
    return "Deep narrow ReLU RNNs on a lagged product: " + "; ".join(parts) + "."
