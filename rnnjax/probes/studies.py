"""The six studies of the universal-approximation report, each a function of a :class:`ProbeConfig`.

Every study returns a :class:`StudyPlan`: its independent groups (one compiled
:func:`rnnjax.probes.sweep.run_group` each, named by a stable id) and ``finish(rows, group_extras)``, the
post-processing that fills the theory columns and builds the extras for the plots (e.g. step responses).
Records follow :data:`rnnjax.probes.sweep.RESULT_FIELDS`. :mod:`rnnjax.probes.runner` runs, records and resumes
the groups; :func:`run_all` runs them in memory.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.probes import models, targets, theory
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.sweep import Group, TrainConfig, plan_groups, run_group

LINEAR = ModelSpec("linear_dense", readout=Readout.NONE, label="linear")


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Sizes of the studies (defaults: a few minutes on 2 CPU cores). See :meth:`quick` and :meth:`full`."""

    seeds: tuple[int, ...] = (0, 1)
    length: int = 32
    steps: int = 500
    train_size: int = 128
    batch_size: int = 32
    test_size: int = 64
    learning_rate: float = 1e-2
    width: int = 16
    delays: tuple[int, ...] = (0, 1, 2, 4, 8)
    causal_cells: tuple[str, ...] = ("gru",)
    many_to_one: bool = True
    bidirectional: bool = True
    order_widths: tuple[int, ...] = (2, 3, 4, 6)
    copy_lag: int = 4
    lbfgs_steps: int = 100
    memory_widths: tuple[int, ...] = (2, 4, 8, 16)
    wiener_cells: tuple[str, ...] = ("gru", "simple_tanh")
    parity_length: int = 16
    parity_steps: int = 800
    parity_cells: tuple[str, ...] = ("simple_tanh", "gru", "lstm")
    deep_widths: tuple[int, ...] = (4, 16)
    depths: tuple[int, ...] = (1, 3)
    fast_compile: bool = True

    @classmethod
    def quick(cls) -> "ProbeConfig":
        """A CI smoke version (one small group per study)."""
        return cls(
            seeds=(0,), steps=150, train_size=64, test_size=32, delays=(0, 4), causal_cells=(), many_to_one=False,
            bidirectional=False,
            order_widths=(4,), lbfgs_steps=20, memory_widths=(4,), wiener_cells=(), parity_length=8,
            parity_steps=150, parity_cells=(), deep_widths=(8,), depths=(2,),
        )  # fmt: skip

    @classmethod
    def full(cls) -> "ProbeConfig":
        """The long version: more seeds, steps, widths and cells."""
        return cls(
            seeds=(0, 1, 2, 3), length=64, steps=3000, train_size=512, batch_size=64, test_size=256,
            delays=(0, 1, 2, 3, 4, 6, 8, 12, 16), causal_cells=("gru", "lstm"), order_widths=(1, 2, 3, 4, 5, 6, 8),
            copy_lag=8, lbfgs_steps=300, memory_widths=(1, 2, 4, 8, 16, 32),
            wiener_cells=("gru", "lstm", "simple_tanh"),
            parity_length=32, parity_steps=4000, deep_widths=(2, 4, 8, 16, 32), depths=(1, 2, 3, 4), fast_compile=False,
        )  # fmt: skip

    def train(self, **overrides) -> TrainConfig:
        base = TrainConfig(
            length=self.length, train_size=self.train_size, batch_size=self.batch_size, steps=self.steps,
            learning_rate=self.learning_rate, test_size=self.test_size, fast_compile=self.fast_compile,
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """A study: independent groups, then ``finish(rows, group_extras) -> (rows, extras)``.

    ``finish`` takes the rows of the groups that ran (in group order) and the ``evaluate`` extras of each of those
    groups; it fills the theory columns and returns the extras the plots need.
    """

    groups: tuple[Group, ...]
    finish: Callable[[list[dict], list[dict]], tuple[list[dict], dict]]


def _fill(records: list[dict], theory_fn) -> list[dict]:
    """Set theory_nmse / theory_nmse_lower from theory_fn(record) -> None | value | (lower, value)."""
    for record in records:
        value = theory_fn(record)
        if isinstance(value, tuple):
            record["theory_nmse_lower"], record["theory_nmse"] = value
        elif value is not None:
            record["theory_nmse"] = record["theory_nmse_lower"] = value
    return records


def _causal_family() -> list[targets.Target]:
    return [targets.centred_sum(4), targets.anticausal_filter(0.8, 64)]


def causality(config: ProbeConfig) -> StudyPlan:
    """Study 1: non-causal linear targets; floor vs delay D for unidirectional models, ~0 for bi / many-to-one."""
    family = _causal_family()
    train = config.train()
    uni = [LINEAR] + [ModelSpec(cell, width=config.width) for cell in config.causal_cells]
    groups = plan_groups(family, uni, seeds=config.seeds, delays=config.delays, config=train, study="causality")
    if config.bidirectional:
        bi = dataclasses.replace(LINEAR, bidirectional=True, label="linear-bi")
        groups += plan_groups(family, [bi], widths=(config.width,), seeds=config.seeds, config=train, study="causality")
    if config.many_to_one:
        last = [targets.as_many_to_one(t) for t in family]
        groups += plan_groups(last, uni, widths=(config.width,), seeds=config.seeds, config=train, study="causality")
    return StudyPlan(tuple(groups), functools.partial(_causality_finish, config))


def _causality_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """Exact causal floor for unidirectional models on the sequence targets; 0 for bidirectional and many-to-one."""
    by_name = {t.name: t for t in _causal_family()}

    def floor(record):
        if record["target"] in by_name and not record["bidirectional"]:
            return theory.causal_floor(by_name[record["target"]], config.length, record["delay"])
        return 0.0

    return _fill(records, floor), {}


def _width_family(config: ProbeConfig) -> list[targets.Target]:
    order = targets.kernel_target("oscillators4", targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 10 * config.length))
    return [order, targets.delay(config.copy_lag)]


def width_thresholds(config: ProbeConfig) -> StudyPlan:
    """Study 2: order-4 state-space target and a delay-d copy vs width, float64 with Adam then L-BFGS."""
    train = config.train(dtype="float64", lbfgs_steps=config.lbfgs_steps, batch_size=config.train_size)
    groups = plan_groups(
        _width_family(config), [LINEAR], widths=config.order_widths, seeds=config.seeds, config=train, study="width"
    )
    return StudyPlan(tuple(groups), functools.partial(_width_finish, config))


def _width_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """Theory bands vs width; the targets' state-space orders."""
    kernels = {target.name: target.kernel for target in _width_family(config)}
    records = _fill(records, lambda r: theory.width_bounds(kernels[r["target"]], r["width"], config.length))
    orders = {name: targets.state_space_order(kernel) for name, kernel in kernels.items()}
    return records, {"orders": orders}


def _memory_family(config: ProbeConfig) -> list[targets.Target]:
    support = 10 * config.length
    return [
        targets.kernel_target("exponential", targets.exponential_kernel(0.8, support)),
        targets.kernel_target("power_law", targets.power_law_kernel(0.5, support)),
        targets.kernel_target("bump", targets.bump_kernel(config.length // 2, 2.0, support)),
    ]


def memory(config: ProbeConfig) -> StudyPlan:
    """Study 3: exponential vs power-law vs delayed-bump kernels; error vs width and 10x step responses."""
    groups = plan_groups(
        _memory_family(config), [LINEAR], widths=config.memory_widths, seeds=config.seeds, config=config.train(),
        study="memory", evaluate=step_responses,
    )  # fmt: skip
    return StudyPlan(tuple(groups), functools.partial(_memory_finish, config))


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


def _memory_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """Theory bands vs width; the targets' step responses followed by the trained ones."""
    kernels = {t.name: t.kernel for t in _memory_family(config)}
    records = _fill(records, lambda r: theory.width_bounds(kernels[r["target"]], r["width"], config.length))
    responses = {name: np.cumsum(kernel[: 10 * config.length]).tolist() for name, kernel in kernels.items()}
    for extras in group_extras:
        responses.update(extras.get("step_responses", {}))
    return records, {"step_responses": responses, "train_length": config.length}


def _wiener_target(config: ProbeConfig) -> targets.Target:
    return targets.wiener(targets.exponential_kernel(0.7, 10 * config.length))


def fading_nonlinear(config: ProbeConfig) -> StudyPlan:
    """Study 4: a Wiener system; linear RNN stuck at the best-linear-filter error, MLP readout / nonlinear cells not."""
    specs = [LINEAR, dataclasses.replace(LINEAR, readout=Readout.MLP, label="linear+mlp")]
    specs += [ModelSpec(cell) for cell in config.wiener_cells]
    groups = plan_groups(
        _wiener_target(config), specs, widths=(config.width,), seeds=config.seeds, config=config.train(),
        study="wiener",
    )  # fmt: skip
    return StudyPlan(tuple(groups), functools.partial(_wiener_finish, config))


def _wiener_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """The best linear filter's error is the linear RNN's theory."""
    floor = theory.wiener_floor(_wiener_target(config), config.length)
    return _fill(records, lambda r: floor if r["model"] == "linear" else None), {}


def _no_theory(records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    return records, {}


def non_fading(config: ProbeConfig) -> StudyPlan:
    """Study 5: running parity and counting, trained at T, tested at 2T and 10T."""
    family = [targets.parity(), targets.counting()]
    specs = [ModelSpec("linear_diagonal", readout=Readout.NONE, label="linear_diagonal")]
    specs += [ModelSpec(cell) for cell in config.parity_cells]
    train = config.train(length=config.parity_length, steps=config.parity_steps, fast_compile=False)
    groups = plan_groups(family, specs, widths=(config.width,), seeds=config.seeds, config=train, study="non_fading")
    return StudyPlan(tuple(groups), _no_theory)


def depth_width(config: ProbeConfig) -> StudyPlan:
    """Study 6: deep narrow ReLU RNNs on the lagged product y_t = x_{t-2} x_{t-5} (+-1 inputs)."""
    target = targets.volterra((2, 5), targets.InputKind.SIGNS)
    specs = [ModelSpec("simple_relu", depth=depth) for depth in config.depths]
    groups = plan_groups(
        target, specs, widths=config.deep_widths, seeds=config.seeds, config=config.train(), study="depth"
    )
    return StudyPlan(tuple(groups), _no_theory)


STUDIES = {
    "causality": causality,
    "width": width_thresholds,
    "memory": memory,
    "wiener": fading_nonlinear,
    "non_fading": non_fading,
    "depth": depth_width,
}


def plan(config: ProbeConfig, only: tuple[str, ...] = ()) -> dict[str, StudyPlan]:
    """The plans of the studies (all, or those named in ``only``), in report order."""
    unknown = set(only) - set(STUDIES)
    if unknown:
        raise ValueError(f"only must name studies among {sorted(STUDIES)}; got {sorted(unknown)}")
    return {name: study(config) for name, study in STUDIES.items() if not only or name in only}


def run_all(config: ProbeConfig, only: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the studies in memory, nothing recorded (all, or those named in ``only``); returns (records, extras)."""
    records, extras = [], {}
    for name, study_plan in plan(config, only).items():
        results = [run_group(group) for group in study_plan.groups]
        rows = [row for result in results for row in result.records]
        found, extras[name] = study_plan.finish(rows, [result.extras for result in results])
        records += found
    return records, extras
