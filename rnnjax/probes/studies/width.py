"""Study 2: an order-4 state-space target and a delay-d copy vs width: a linear RNN fits a linear target exactly
once its width reaches the target's state-space order (float64, Adam then L-BFGS)."""

from __future__ import annotations

import functools

from rnnjax.probes import report, targets
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import Row, select, summarise
from rnnjax.probes.studies.base import LINEAR, ProbeConfig, StudyPlan, fill_bands, wider

NAME = "width"
ORDER_NAME = "oscillators4"


def family(config: ProbeConfig) -> list[targets.Target]:
    kernel = targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 10 * config.length)
    return [targets.kernel_target(ORDER_NAME, kernel), targets.delay(config.copy_lag)]


def plan(config: ProbeConfig) -> StudyPlan:
    train = config.train(dtype="float64", lbfgs_steps=config.lbfgs_steps, batch_size=config.train_size)
    groups = plan_groups(family(config), [LINEAR], widths=config.order_widths, seeds=config.seeds, config=train,
                         study=NAME)  # fmt: skip
    return StudyPlan(
        tuple(groups), functools.partial(finish, config), title="2. Width thresholds (exact representability)",
        summary="Order-4 state-space target and a delay-d copy vs width, float64 with Adam then L-BFGS.",
        findings=findings, plots=plots, answer=answer, contains=wider,
    )  # fmt: skip


def finish(config: ProbeConfig, rows: list[Row], group_extras: list[dict]) -> tuple[list[Row], dict]:
    """Theory bands vs width; the targets' state-space orders."""
    kernels = {target.name: target.kernel for target in family(config)}
    orders = {name: targets.state_space_order(kernel) for name, kernel in kernels.items()}
    return fill_bands(rows, kernels, config.length), {"orders": orders}


def findings(rows: list[Row], extras) -> str:
    orders = f"State-space orders (Hankel rank) of the targets: {extras.get('orders')}. "
    chosen = select(rows, target=ORDER_NAME)
    if not chosen:
        return orders
    exact = sorted({row.width for row in chosen if row.nmse_test <= 1e-8})
    widths = sorted({row.width for row in chosen})
    medians = ", ".join(f"width {w}: {report.fmt(report.median_of(select(chosen, width=w)))}" for w in widths)
    return (f"{orders}Order-4 target: widths where some seed reaches test NMSE <= 1e-8: {exact or 'none'}; "
            f"medians: {medians} {report.cite(chosen)}.")  # fmt: skip


def plots(rows: list[Row], extras, plot_path) -> dict[str, str]:
    def draw(axes):
        report.plot_vs(summarise(rows), axes[0], "width", log_x=True)

    return {NAME: report.figure(plot_path(NAME), 1, draw, "Study 2: width thresholds (band: theory)")}


def answer(rows: list[Row]) -> str:
    """Exact representability: the widths at which the order-4 target is fitted to rounding."""
    chosen = select(rows, target=ORDER_NAME)
    if not chosen:
        return ""
    exact = sorted({row.width for row in chosen if row.nmse_test <= 1e-8})
    below = [row for row in chosen if exact and row.width < exact[0]]
    return (f"A linear RNN fits a linear target of state-space order 4 to rounding (test NMSE <= 1e-8) at widths "
            f"{exact or 'none'} of {sorted({row.width for row in chosen})}"
            + (f"; below that width it stays at {report.with_interval(below)}" if below else "")
            + f" {report.cite(chosen)}.")  # fmt: skip
