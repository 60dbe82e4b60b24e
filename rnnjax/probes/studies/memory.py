"""Study 3: the curse of memory: exponential vs power-law vs delayed-bump kernels vs width (float64, Adam then
L-BFGS, as study 2), with the trained models' step responses beyond the training length."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.probes import models, report, targets
from rnnjax.probes.planning import Group, plan_groups
from rnnjax.probes.results import Row, by_key, select, summarise
from rnnjax.probes.studies.base import LINEAR, ProbeConfig, StudyPlan, fill_bands, wider

NAME = "memory"


def family(config: ProbeConfig) -> list[targets.Target]:
    support = 10 * config.length
    return [
        targets.kernel_target("exponential", targets.exponential_kernel(0.8, support)),
        targets.kernel_target("power_law", targets.power_law_kernel(0.5, support)),
        targets.kernel_target("bump", targets.bump_kernel(config.length // 2, 2.0, support)),
    ]


def plan(config: ProbeConfig) -> StudyPlan:
    train = config.train(dtype="float64", lbfgs_steps=config.lbfgs_steps, batch_size=config.train_size)
    groups = plan_groups(family(config), [LINEAR], widths=config.memory_widths, seeds=config.seeds, config=train,
                         study=NAME, evaluate=step_responses)  # fmt: skip
    return StudyPlan(
        tuple(groups), functools.partial(finish, config), title="3. Memory decay: the curse of memory",
        summary="Exponential vs power-law vs delayed-bump kernels vs width (float64, Adam then L-BFGS, as study 2).",
        findings=findings, plots=plots, contains=wider,
    )  # fmt: skip


def step_responses(group: Group, triples: list, params) -> dict[str, Any]:
    """Responses of the group's first-seed models to a unit step 10x the training length: {'target|width': curve}."""
    steps = jnp.ones((1, 10 * group.config.length, 1), jnp.float32)
    responses = {}
    for i, (index, seed, _) in enumerate(triples):
        if seed == group.seeds[0]:
            one = jax.tree.map(lambda p, i=i: p[i], params)
            curve = models.aligned_predictions(group.spec, one, steps, 1, 0, 0)[0, :, 0]
            responses[f"{group.targets[index].name}|{group.spec.width}"] = np.asarray(curve, np.float64).tolist()
    return {"step_responses": responses}


def finish(config: ProbeConfig, rows: list[Row], group_extras: list[dict]) -> tuple[list[Row], dict]:
    """Theory bands vs width; the targets' step responses followed by the trained ones."""
    kernels = {t.name: t.kernel for t in family(config)}
    responses = {name: np.cumsum(kernel[: 10 * config.length]).tolist() for name, kernel in kernels.items()}
    for extras in group_extras:
        responses.update(extras.get("step_responses", {}))
    return fill_bands(rows, kernels, config.length), {"step_responses": responses, "train_length": config.length}


def findings(rows: list[Row], extras) -> str:
    largest = max(row.width for row in rows)
    parts = []
    for target in sorted({row.target for row in rows}):
        chosen = select(rows, target=target, width=largest)
        parts.append(f"{target} {report.with_interval(chosen)} (10T: "
                     f"{report.fmt(report.median_of(chosen, 'nmse_test_long'))})")  # fmt: skip
    return f"At width {largest}: " + ", ".join(parts) + f" {report.cite(select(rows, width=largest))}. " + _gaps(rows)


def _gaps(rows: list[Row]) -> str:
    """Approximation gap (theory: the best error at this width) and optimisation gap (best trained - theory)."""
    parts = []
    for (target, width), group in sorted(by_key(rows, "target", "width").items()):
        upper, best = group[0].theory_nmse, min(row.nmse_test for row in group)
        if upper is not None:
            parts.append(f"{target} w{width}: {report.fmt(upper)} / {report.fmt(best - upper)}")
    return "Approximation gap (theory, upper end of the band) / optimisation gap (best trained - theory): " + (
        "; ".join(parts) + "."
    )


def plots(rows: list[Row], extras, plot_path) -> dict[str, str]:
    def draw(axes):
        report.plot_vs(summarise(rows), axes[0], "width", log_x=True)

    files = {NAME: report.figure(plot_path(NAME), 1, draw, "Study 3: memory vs width (band: theory)")}
    if extras.get("step_responses"):
        files["memory_steps"] = report.figure(plot_path("memory_steps"), 3, lambda axes: _step_responses(extras, axes),
                                              "Study 3: step responses to 10x the training length")  # fmt: skip
    return files


def _step_responses(extras, axes) -> None:
    """One panel per kernel: the target's step response (thick) and the trained models' (one seed per width)."""
    curves = extras["step_responses"]
    for axis, name in zip(axes, [n for n in curves if "|" not in n]):
        target = np.asarray(curves[name])
        axis.plot(target, "k-", linewidth=2.5, label=f"{name} (target)")
        for curve_name, curve in curves.items():
            if curve_name.startswith(f"{name}|"):
                axis.plot(curve, ":", label=f"width {curve_name.split('|')[1]}")
        low, high = float(target.min()), float(target.max())
        axis.set_ylim(low - 0.5 * (high - low) - 0.1, high + 0.5 * (high - low) + 0.1)
        axis.axvline(extras["train_length"], color="k", alpha=0.4)
        axis.set_xlabel("t (vertical line: training length)")
        axis.set_ylabel("step response")
        axis.legend(fontsize=7)
