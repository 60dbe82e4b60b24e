"""What every study of the report shares: the sizes (:class:`ProbeConfig`), the plan a study returns
(:class:`StudyPlan`: its groups and the functions that finish, describe and draw its rows) and the theory fills."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rnnjax.probes import probe_checks, theory
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import Group
from rnnjax.probes.results import Row, Summary
from rnnjax.probes.training import TrainConfig

LINEAR = ModelSpec("linear_dense", readout=Readout.NONE, label="linear")
"""The linear RNN of the aligned studies: y_t = C h_t + D x_t, h_t = A h_{t-1} + B x_t (the cell's own readout)."""


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Sizes of the studies (defaults: ~4 minutes on 2 idle CPU cores). See :meth:`quick` and :meth:`full`.

    ``fast_compile`` compiles every group at XLA optimisation level 1 instead of 3: on CPU the default run spends
    most of its time compiling (28 programs), and level 1 compiles 20-45% faster with steps about as fast
    (:data:`rnnjax.probes.compiling.FAST_COMPILE_LEVEL`). ``restarts`` initialisations are trained per run and
    the best kept (:attr:`rnnjax.probes.training.TrainConfig.restarts`); a study may train some of its groups
    with more (study 7's linear encoder-decoders: ``encoder_decoder_linear_restarts`` starts each, with the rest of
    :data:`rnnjax.probes.studies.encoder_decoder.LINEAR_BUDGET`; 4 by default, 16 in :meth:`full`).
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
    encoder_decoder_linear_restarts: int = 4
    pooling_widths: tuple[int, ...] = ()
    fast_compile: bool = True
    restarts: int = 1

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
            attention_cells=("gru", "lstm"), pooling_widths=(4, 8), encoder_decoder_linear_restarts=16,
        )  # fmt: skip

    def __post_init__(self):
        probe_checks.check(self)  # every field, before anything is written

    def train(self, **overrides) -> TrainConfig:
        base = TrainConfig(
            length=self.length, train_size=self.train_size, batch_size=self.batch_size, steps=self.steps,
            learning_rate=self.learning_rate, test_size=self.test_size, fast_compile=self.fast_compile,
            restarts=self.restarts,
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)


Finish = Callable[[list[Row], list[dict]], tuple[list[Row], dict]]
Findings = Callable[[list[Row], Mapping[str, Any]], str]
Plots = Callable[[list[Row], Mapping[str, Any], Callable[[str], Any]], dict[str, str]]


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """A study: independent groups, then the functions that turn their rows into the report.

    Attributes:
      groups: one compiled program each; their ``study`` labels name the study's rows (``Row.study``).
      finish: ``finish(rows, group_extras) -> (rows, extras)``: fills the theory columns of the rows (in group
        order) from the ``evaluate`` extras of each group, and returns the extras its paragraph and plots need.
      title: the report's section title.
      summary: one sentence: what the study trains and against what.
      findings: ``findings(rows, extras) -> str``: the study's paragraph, with the measured numbers.
      plots: ``plots(rows, extras, plot_path) -> {figure: file}``: draws the study's figures.
      answer: ``answer(rows) -> str``: the study's sentences of the short answer, each citing its rows ('' if none).
      columns: (row field, title) of the study's own table columns (its floors).
      contains: ``contains(larger, smaller)`` for two summaries: the larger model class holds the smaller one
        (nested classes; a larger class worse beyond the intervals is an optimisation failure).
    """

    groups: tuple[Group, ...]
    finish: Finish
    title: str = ""
    summary: str = ""
    findings: Findings | None = None
    plots: Plots | None = None
    answer: Callable[[list[Row]], str] | None = None
    columns: tuple[tuple[str, str], ...] = ()
    contains: Callable[[Summary, Summary], bool] | None = None

    def rows(self, rows: Sequence[Row]) -> list[Row]:
        """This study's rows among ``rows`` (those labelled with one of its groups' study)."""
        labels = {group.study for group in self.groups}
        return [row for row in rows if row.study in labels]


def no_theory(rows: list[Row], group_extras: list[dict]) -> tuple[list[Row], dict]:
    return rows, {}


def fill(rows: Sequence[Row], theory_fn) -> list[Row]:
    """Set theory_nmse / theory_nmse_lower from theory_fn(row) -> None | value | (lower, value)."""
    out = []
    for row in rows:
        value = theory_fn(row)
        if isinstance(value, tuple):
            row = row.replace(theory_nmse_lower=value[0], theory_nmse=value[1])
        elif value is not None:
            row = row.replace(theory_nmse=value, theory_nmse_lower=value)
        out.append(row)
    return out


def fill_bands(rows: Sequence[Row], kernels: dict[str, np.ndarray], length: int) -> list[Row]:
    """Width bands per target, with each upper end the best of all widths up to it (:func:`theory.monotone_upper`)."""
    bands = {}
    for name, kernel in kernels.items():
        widths = {row.width for row in rows if row.target == name}
        bands[name] = theory.monotone_upper({w: theory.width_bounds(kernel, w, length) for w in widths})
    return fill(rows, lambda row: bands[row.target][row.width])


def same_except(larger: Summary, smaller: Summary, *free: str) -> bool:
    """The two summaries agree on (target, model, width, depth, delay) except the ``free`` fields."""
    fixed = {"target", "model", "width", "depth", "delay"} - set(free)
    return all(getattr(larger, field) == getattr(smaller, field) for field in fixed)


def wider(larger: Summary, smaller: Summary) -> bool:
    """Same model at a larger width (width m contains every width below it)."""
    return same_except(larger, smaller, "width") and larger.width > smaller.width
