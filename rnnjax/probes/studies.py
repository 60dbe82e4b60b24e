"""The seven studies of the universal-approximation report, each a function of a :class:`ProbeConfig`.

Every study returns a :class:`StudyPlan`: its independent groups (one compiled program each, named by a stable
id, see :class:`rnnjax.probes.planning.Group`) and ``finish(rows, group_extras)``, the post-processing that fills
the theory columns and builds the extras for the plots (e.g. step responses). Records follow
:data:`rnnjax.probes.results.RESULT_FIELDS`. :mod:`rnnjax.probes.runner` runs, records and resumes the groups
(with :func:`rnnjax.probes.executor.execute`) and finishes each study once (:func:`rnnjax.probes.runner.collect`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.probes import models, probe_checks, targets, theory
from rnnjax.probes.models import Architecture, ModelSpec, Readout
from rnnjax.probes.planning import Group, plan_groups
from rnnjax.probes.training import TrainConfig

LINEAR = ModelSpec("linear_dense", readout=Readout.NONE, label="linear")


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Sizes of the studies (defaults: ~4 minutes on 2 idle CPU cores). See :meth:`quick` and :meth:`full`.

    ``fast_compile`` compiles every group at XLA optimisation level 1 instead of 3: on CPU the default run spends
    most of its time compiling (28 programs), and level 1 compiles 20-45% faster with steps about as fast
    (:data:`rnnjax.probes.compiling.FAST_COMPILE_LEVEL`).
    """

    seeds: tuple[int, ...] = (0, 1)
    length: int = 32
    steps: int = 500
    train_size: int = 128
    batch_size: int = 32
    test_size: int = 2048
    learning_rate: float = 1e-2
    width: int = 16
    delays: tuple[int, ...] = (0, 2, 8)
    causal_cells: tuple[str, ...] = ("gru",)
    many_to_one: bool = False
    bidirectional: bool = True
    bidirectional_cells: tuple[str, ...] = ("gru",)
    order_widths: tuple[int, ...] = (2, 4, 6)
    copy_lag: int = 4
    lbfgs_steps: int = 100
    memory_widths: tuple[int, ...] = (2, 4, 8)
    wiener_cells: tuple[str, ...] = ("gru",)
    parity_length: int = 16
    parity_steps: int = 800
    parity_cells: tuple[str, ...] = ("gru",)
    deep_widths: tuple[int, ...] = (4, 16)
    depths: tuple[int, ...] = (1, 3)
    encoder_decoder_length: int = 8
    encoder_decoder_widths: tuple[int, ...] = (2, 4, 8)
    encoder_decoder_cells: tuple[str, ...] = ("linear_dense", "gru")
    encoder_decoder_spot_cells: tuple[str, ...] = ()
    encoder_decoder_spot_width: int = 4
    attention_cells: tuple[str, ...] = ("gru",)
    pooling_widths: tuple[int, ...] = ()
    fast_compile: bool = True

    @classmethod
    def quick(cls) -> "ProbeConfig":
        """A CI smoke version (one small group per study)."""
        return cls(
            seeds=(0,), steps=150, train_size=64, test_size=64, delays=(0, 4), causal_cells=(), many_to_one=False,
            bidirectional=False, bidirectional_cells=(),
            order_widths=(4,), lbfgs_steps=20, memory_widths=(4,), wiener_cells=(), parity_length=8,
            parity_steps=150, parity_cells=(), deep_widths=(8,), depths=(2,), encoder_decoder_widths=(4,),
            encoder_decoder_cells=("linear_dense",), encoder_decoder_spot_cells=(), attention_cells=(),
            pooling_widths=(),
        )  # fmt: skip

    @classmethod
    def full(cls) -> "ProbeConfig":
        """The long version: more seeds, steps, widths and cells."""
        return cls(
            seeds=(0, 1, 2, 3), length=64, steps=3000, train_size=512, batch_size=64, test_size=2048,
            delays=(0, 1, 2, 3, 4, 6, 8, 12, 16), causal_cells=("gru", "lstm"), order_widths=(1, 2, 3, 4, 5, 6, 8),
            many_to_one=True, copy_lag=8, lbfgs_steps=300, memory_widths=(1, 2, 4, 8, 16, 32),
            wiener_cells=("gru", "lstm", "simple_tanh"), parity_cells=("simple_tanh", "gru", "lstm"),
            parity_length=32, parity_steps=4000, deep_widths=(2, 4, 8, 16, 32), depths=(1, 2, 3, 4), fast_compile=False,
            bidirectional_cells=("gru", "lstm"), encoder_decoder_length=16, encoder_decoder_widths=(2, 4, 8, 16),
            encoder_decoder_cells=("linear_dense", "gru", "lstm", "simple_tanh"), encoder_decoder_spot_cells=(),
            attention_cells=("gru", "lstm"), pooling_widths=(4, 8),
        )  # fmt: skip

    def __post_init__(self):
        probe_checks.check(self)  # every field, before anything is written

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
    return [targets.centred_sum(4), targets.anticausal_filter(0.8, 64), targets.reversal()]


def causality(config: ProbeConfig) -> StudyPlan:
    """Study 1: non-causal linear targets; causal (information) and time-invariant (linear RNN) floors vs delay D."""
    family = _causal_family()
    train = config.train()
    uni = [LINEAR] + [ModelSpec(cell, width=config.width) for cell in config.causal_cells]
    groups = plan_groups(family, uni, seeds=config.seeds, delays=config.delays, config=train, study="causality")
    if config.bidirectional:
        bi = [dataclasses.replace(LINEAR, bidirectional=True, label="linear-bi")]
        bi += [ModelSpec(cell, bidirectional=True) for cell in config.bidirectional_cells]
        groups += plan_groups(family, bi, widths=(config.width,), seeds=config.seeds, config=train, study="causality")
    if config.many_to_one:  # one label per sequence: a larger test set for the same interval
        last = [targets.as_many_to_one(t) for t in family]
        test = config.train(test_size=4 * config.test_size)
        groups += plan_groups(last, uni, widths=(config.width,), seeds=config.seeds, config=test, study="causality")
    return StudyPlan(tuple(groups), functools.partial(_causality_finish, config))


def _causality_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """Both floors per row; the theory is the time-invariant floor for linear models, the causal floor otherwise.

    A linear RNN from a zero state is time-invariant, so no width takes it below the Toeplitz projection's error;
    a nonlinear model (time-varying in effect) is bounded only by the information floor. Many-to-one: 0.
    """
    by_name = {t.name: t for t in _causal_family()}
    floors = {}
    for record in records:
        target = by_name.get(record["target"])
        delay = None if record["bidirectional"] else record["delay"]
        if target is None:  # many-to-one: the last label sees the whole sequence
            record["causal_floor"] = record["time_invariant_floor"] = 0.0
            continue
        key = (target.name, delay)
        if key not in floors:
            causal = 0.0 if delay is None else theory.causal_floor(target, config.length, delay)
            floors[key] = (causal, theory.time_invariant_floor(target, config.length, delay))
        record["causal_floor"], record["time_invariant_floor"] = floors[key]

    def floor(record):
        return record["time_invariant_floor"] if record["readout"] == "none" else record["causal_floor"]

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
    records = _fill_bands(records, kernels, config.length)
    orders = {name: targets.state_space_order(kernel) for name, kernel in kernels.items()}
    return records, {"orders": orders}


def _fill_bands(records: list[dict], kernels: dict[str, np.ndarray], length: int) -> list[dict]:
    """Width bands per target, with each upper end the best of all widths up to it (:func:`theory.monotone_upper`)."""
    bands = {}
    for name, kernel in kernels.items():
        widths = {r["width"] for r in records if r["target"] == name}
        bands[name] = theory.monotone_upper({w: theory.width_bounds(kernel, w, length) for w in widths})
    return _fill(records, lambda r: bands[r["target"]][r["width"]])


def _memory_family(config: ProbeConfig) -> list[targets.Target]:
    support = 10 * config.length
    return [
        targets.kernel_target("exponential", targets.exponential_kernel(0.8, support)),
        targets.kernel_target("power_law", targets.power_law_kernel(0.5, support)),
        targets.kernel_target("bump", targets.bump_kernel(config.length // 2, 2.0, support)),
    ]


def memory(config: ProbeConfig) -> StudyPlan:
    """Study 3: exponential vs power-law vs delayed-bump kernels vs width (float64, Adam then L-BFGS, as study 2)."""
    train = config.train(dtype="float64", lbfgs_steps=config.lbfgs_steps, batch_size=config.train_size)
    groups = plan_groups(
        _memory_family(config), [LINEAR], widths=config.memory_widths, seeds=config.seeds, config=train,
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
    records = _fill_bands(records, kernels, config.length)
    responses = {name: np.cumsum(kernel[: 10 * config.length]).tolist() for name, kernel in kernels.items()}
    for extras in group_extras:
        responses.update(extras.get("step_responses", {}))
    return records, {"step_responses": responses, "train_length": config.length}


def _wiener_target(config: ProbeConfig) -> targets.Target:
    return targets.wiener(targets.exponential_kernel(0.7, 10 * config.length))


def fading_nonlinear(config: ProbeConfig) -> StudyPlan:
    """Study 4: a Wiener system; a linear RNN stops at the best time-invariant linear filter, an MLP readout or a
    nonlinear cell does not."""
    specs = [LINEAR, dataclasses.replace(LINEAR, readout=Readout.MLP, label="linear+mlp")]
    specs += [ModelSpec(cell) for cell in config.wiener_cells]
    groups = plan_groups(
        _wiener_target(config), specs, widths=(config.width,), seeds=config.seeds, config=config.train(),
        study="wiener",
    )  # fmt: skip
    return StudyPlan(tuple(groups), functools.partial(_wiener_finish, config))


def _wiener_finish(config: ProbeConfig, records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    """The best time-invariant linear filter's error is the linear RNN's theory (the time-varying one is below)."""
    target = _wiener_target(config)
    invariant = theory.wiener_time_invariant_floor(target, config.length)
    varying = theory.wiener_floor(target, config.length)
    extras = {"time_invariant_floor": invariant, "time_varying_floor": varying}
    return _fill(records, lambda r: invariant if r["model"] == "linear" else None), extras


def _no_theory(records: list[dict], group_extras: list[dict]) -> tuple[list[dict], dict]:
    return records, {}


def non_fading(config: ProbeConfig) -> StudyPlan:
    """Study 5: running parity and counting, trained at T, tested at 2T and 10T."""
    family = [targets.parity(), targets.counting()]
    specs = [ModelSpec("linear_diagonal", readout=Readout.NONE, label="linear_diagonal")]
    specs += [ModelSpec(cell) for cell in config.parity_cells]
    train = config.train(length=config.parity_length, steps=config.parity_steps)
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


def _encoder_decoder_family() -> list[targets.Target]:
    zoo = targets.encoder_decoder_zoo()
    return [zoo[name] for name in ("reversal", "lowpass_geometric0.7", "lowpass_power0.5", "sorting")]


def _encoder_decoder_specs(config: ProbeConfig) -> list[ModelSpec]:
    specs = [ModelSpec(c, architecture=Architecture.ENCODER_DECODER) for c in config.encoder_decoder_cells]
    return specs + [ModelSpec(c, architecture=Architecture.ATTENTION) for c in config.attention_cells]


def encoder_decoder(config: ProbeConfig) -> StudyPlan:
    """Study 7: encoder -> width-m vector -> decoder (+- attention) on N -> M maps, against the rank floor."""
    # few steps per sequence: 8x the sequences for about the same interval (evaluation is cheap at this length)
    test_size = 8 * config.test_size
    train = config.train(length=config.encoder_decoder_length, long_factors=(), test_size=test_size)
    specs = _encoder_decoder_specs(config)
    sweep_args = {"seeds": config.seeds, "config": train, "study": "encoder_decoder"}
    groups = plan_groups(_encoder_decoder_family(), specs, widths=config.encoder_decoder_widths, **sweep_args)
    # default: linear and GRU at every width, GRU with attention; spot cells (none by default) at one width
    spot = [ModelSpec(c, architecture=Architecture.ENCODER_DECODER) for c in config.encoder_decoder_spot_cells]
    groups += plan_groups(_encoder_decoder_family(), spot, widths=(config.encoder_decoder_spot_width,), **sweep_args)
    plain = [spec for spec in specs if spec.architecture is Architecture.ENCODER_DECODER][:2]
    if config.pooling_widths:
        groups += plan_groups(targets.pooling(2), plain, widths=config.pooling_widths, **sweep_args)
    return StudyPlan(tuple(groups), functools.partial(_encoder_decoder_finish, config))


def _encoder_decoder_finish(config: ProbeConfig, records, group_extras) -> tuple[list[dict], dict]:
    """rank_floor on every linear-target row; the theory for linear encoder-decoders (exact for reversal).

    For the other operators a linear RNN encoder-decoder may not reach the rank floor (its maps are structured),
    so the floor is only the lower end of its band there.
    """
    by_name = {t.name: t for t in [*_encoder_decoder_family(), targets.pooling(2)]}
    length, floors = config.encoder_decoder_length, {}
    for record in records:
        target = by_name[record["target"]]
        key = (target.name, record["width"])
        if target.linear and key not in floors:
            floors[key] = theory.rank_floor(target, length, record["width"])
        record["rank_floor"] = floors.get(key)
        if record["model"] == "linear_dense-encdec" and target.linear:
            record["theory_nmse_lower"] = floors[key]
            record["theory_nmse"] = floors[key] if target.name == "reversal" else None
    spectra = {name: t.singular_values(length).tolist() for name, t in by_name.items() if t.singular_values}
    return records, {"singular_values": spectra, "length": length}


STUDIES = {
    "causality": causality,
    "width": width_thresholds,
    "memory": memory,
    "wiener": fading_nonlinear,
    "non_fading": non_fading,
    "depth": depth_width,
    "encoder_decoder": encoder_decoder,
}


def plan(config: ProbeConfig, only: tuple[str, ...] = ()) -> dict[str, StudyPlan]:
    """The plans of the studies (all, or those named in ``only``), in report order."""
    unknown = set(only) - set(STUDIES)
    if unknown:
        raise ValueError(f"only must name studies among {sorted(STUDIES)}; got {sorted(unknown)}")
    return {name: study(config) for name, study in STUDIES.items() if not only or name in only}
