"""The six studies of the universal-approximation report, each a function of a :class:`ProbeConfig`.

Every study returns ``(records, extras)``: records follow :data:`rnnjax.probes.sweep.RESULT_FIELDS` with the
theory columns filled where theory exists; extras hold curves for the plots (e.g. step responses).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.probes import models, targets, theory
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.sweep import TrainConfig, sweep

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


def _fill(records: list[dict], theory_fn) -> list[dict]:
    """Set theory_nmse / theory_nmse_lower from theory_fn(record) -> None | value | (lower, value)."""
    for record in records:
        value = theory_fn(record)
        if isinstance(value, tuple):
            record["theory_nmse_lower"], record["theory_nmse"] = value
        elif value is not None:
            record["theory_nmse"] = record["theory_nmse_lower"] = value
    return records


def causality(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 1: non-causal linear targets; floor vs delay D for unidirectional models, ~0 for bi / many-to-one."""
    family = [targets.centred_sum(4), targets.anticausal_filter(0.8, 64)]
    by_name = {t.name: t for t in family}
    train = config.train()
    uni = [LINEAR] + [ModelSpec(cell, width=config.width) for cell in config.causal_cells]
    records, _ = sweep(family, uni, seeds=config.seeds, delays=config.delays, config=train, study="causality")
    records = _fill(records, lambda r: theory.causal_floor(by_name[r["target"]], config.length, r["delay"]))
    if config.bidirectional:
        bi = dataclasses.replace(LINEAR, bidirectional=True, label="linear-bi")
        more, _ = sweep(family, [bi], widths=(config.width,), seeds=config.seeds, config=train, study="causality")
        records += _fill(more, lambda r: 0.0)
    if config.many_to_one:
        last = [targets.as_many_to_one(t) for t in family]
        more, _ = sweep(last, uni, widths=(config.width,), seeds=config.seeds, config=train, study="causality")
        records += _fill(more, lambda r: 0.0)
    return records, {}


def width_thresholds(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 2: order-4 state-space target and a delay-d copy vs width, float64 with Adam then L-BFGS."""
    order = targets.kernel_target("oscillators4", targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 10 * config.length))
    copy = targets.delay(config.copy_lag)
    train = config.train(dtype="float64", lbfgs_steps=config.lbfgs_steps, batch_size=config.train_size)
    records, _ = sweep(
        [order, copy], [LINEAR], widths=config.order_widths, seeds=config.seeds, config=train, study="width"
    )
    kernels = {order.name: order.kernel, copy.name: copy.kernel}
    records = _fill(records, lambda r: theory.width_bounds(kernels[r["target"]], r["width"], config.length))
    orders = {name: targets.state_space_order(kernel) for name, kernel in kernels.items()}
    return records, {"orders": orders}


def memory(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 3: exponential vs power-law vs delayed-bump kernels; error vs width and 10x step responses."""
    support = 10 * config.length
    family = [
        targets.kernel_target("exponential", targets.exponential_kernel(0.8, support)),
        targets.kernel_target("power_law", targets.power_law_kernel(0.5, support)),
        targets.kernel_target("bump", targets.bump_kernel(config.length // 2, 2.0, support)),
    ]
    records, trained = sweep(
        family, [LINEAR], widths=config.memory_widths, seeds=config.seeds, config=config.train(), study="memory"
    )
    kernels = {t.name: t.kernel for t in family}
    records = _fill(records, lambda r: theory.width_bounds(kernels[r["target"]], r["width"], config.length))
    long = 10 * config.length
    steps = jnp.ones((1, long, 1), jnp.float32)
    responses = {name: np.cumsum(kernel[:long]).tolist() for name, kernel in kernels.items()}
    for (_, width), (spec, triples, params) in trained.items():
        for i, (index, seed, _) in enumerate(triples):
            if seed == config.seeds[0]:
                one = jax.tree.map(lambda p, i=i: p[i], params)
                curve = models.aligned_predictions(spec, one, steps, 1, 0, 0)[0, :, 0]
                responses[f"{family[index].name}|{width}"] = np.asarray(curve, np.float64).tolist()
    return records, {"step_responses": responses, "train_length": config.length}


def fading_nonlinear(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 4: a Wiener system; linear RNN stuck at the best-linear-filter error, MLP readout / nonlinear cells not."""
    target = targets.wiener(targets.exponential_kernel(0.7, 10 * config.length))
    specs = [LINEAR, dataclasses.replace(LINEAR, readout=Readout.MLP, label="linear+mlp")]
    specs += [ModelSpec(cell) for cell in config.wiener_cells]
    records, _ = sweep(target, specs, widths=(config.width,), seeds=config.seeds, config=config.train(), study="wiener")
    floor = theory.wiener_floor(target, config.length)
    return _fill(records, lambda r: floor if r["model"] == "linear" else None), {}


def non_fading(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 5: running parity and counting, trained at T, tested at 2T and 10T."""
    family = [targets.parity(), targets.counting()]
    specs = [ModelSpec("linear_diagonal", readout=Readout.NONE, label="linear_diagonal")]
    specs += [ModelSpec(cell) for cell in config.parity_cells]
    train = config.train(length=config.parity_length, steps=config.parity_steps, fast_compile=False)
    records, _ = sweep(family, specs, widths=(config.width,), seeds=config.seeds, config=train, study="non_fading")
    return records, {}


def depth_width(config: ProbeConfig) -> tuple[list[dict], dict]:
    """Study 6: deep narrow ReLU RNNs on the lagged product y_t = x_{t-2} x_{t-5} (+-1 inputs)."""
    target = targets.volterra((2, 5), targets.InputKind.SIGNS)
    specs = [ModelSpec("simple_relu", depth=depth) for depth in config.depths]
    records, _ = sweep(
        target, specs, widths=config.deep_widths, seeds=config.seeds, config=config.train(), study="depth"
    )
    return records, {}


STUDIES = {
    "causality": causality,
    "width": width_thresholds,
    "memory": memory,
    "wiener": fading_nonlinear,
    "non_fading": non_fading,
    "depth": depth_width,
}


def run_all(config: ProbeConfig, only: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the studies (all, or those named in ``only``); returns (records, extras by study)."""
    unknown = set(only) - set(STUDIES)
    if unknown:
        raise ValueError(f"only must name studies among {sorted(STUDIES)}; got {sorted(unknown)}")
    records, extras = [], {}
    for name, study in STUDIES.items():
        if not only or name in only:
            found, extras[name] = study(config)
            records += found
    return records, extras
