"""Results of the probe: one typed :class:`Row` per trained run, and the :class:`Summary` over seeds of each
(study, target, model, width, depth, delay) with its 95% interval and its convergence columns.

A row's JSON form (:meth:`Row.to_json`) is what records.jsonl and results.json hold; :meth:`Row.from_json` reads
it back (fields a row does not have are an error naming them).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rnnjax.probes.planning import Group
from rnnjax.probes.statistics import over_seeds


@dataclasses.dataclass(frozen=True)
class Row:
    """One trained run: what it is, its train and test NMSE (test with 95% intervals at T, 2T and the longest
    length), the theory of its study and, where its study computes them, the floors and its class optimum.

    ``theory_nmse_lower`` / ``theory_nmse``: the band of the best error any model of the row's kind can reach
    (equal when exact); ``class_optimum``: the best error of the row's exact model class (kind 'exact': reached by
    certified parameters, or 'bound'); ``losses``: the training loss curve, subsampled to ~50 points.
    """

    study: str
    target: str
    model: str
    width: int
    depth: int
    delay: int
    seed: int
    nmse_train: float
    nmse_test: float
    nmse_test_2x: float | None
    nmse_test_long: float | None
    theory_nmse: float | None
    theory_nmse_lower: float | None
    nmse_test_low: float
    nmse_test_high: float
    nmse_test_2x_low: float | None
    nmse_test_2x_high: float | None
    nmse_test_long_low: float | None
    nmse_test_long_high: float | None
    readout: str
    bidirectional: bool
    train_length: int
    seconds: float
    causal_floor: float | None = None
    time_invariant_floor: float | None = None
    rank_floor: float | None = None
    class_optimum: float | None = None
    class_optimum_kind: str | None = None
    losses: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "losses": list(self.losses)}

    @classmethod
    def from_json(cls, mapping: Mapping[str, Any]) -> "Row":
        unknown = sorted(set(mapping) - set(FIELDS))
        if unknown:
            raise ValueError(f"a result row has the fields {list(FIELDS)}; got unknown fields {unknown}")
        return cls(**{**mapping, "losses": tuple(mapping.get("losses", ()))})

    def replace(self, **changes) -> "Row":
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> tuple:
        """(study, target, model, width, depth, delay): the rows of one key differ only in their seed."""
        return self.study, self.target, self.model, self.width, self.depth, self.delay


FIELDS = tuple(field.name for field in dataclasses.fields(Row))
RESULT_FIELDS = tuple(name for name in FIELDS if name != "losses")
"""The fields of every record of results.json (the rows without their loss curves)."""
KEY_FIELDS = ("study", "target", "model", "width", "depth", "delay")


def group_records(group: Group, metrics: dict[str, np.ndarray], seconds: float) -> list[Row]:
    """One row per run of ``group`` from its host metrics (stacked along :attr:`Group.triples`)."""
    share = seconds / group.models
    return [_record(group, index, seed, delay, number, metrics, share)
            for number, (index, seed, delay) in enumerate(group.triples)]  # fmt: skip


def _record(group: Group, target_index: int, seed: int, delay: int, index: int, metrics, seconds) -> Row:
    spec, config = group.spec, group.config
    last = f"nmse_test_{config.long_factors[-1]}x" if config.long_factors else None
    value = lambda name: None if name is None or name not in metrics else float(metrics[name][index])  # noqa: E731
    interval = lambda name: (value(name), value(name and f"{name}_low"), value(name and f"{name}_high"))  # noqa: E731
    test, test_2x, test_long = interval("nmse_test"), interval("nmse_test_2x"), interval(last)
    losses = metrics["losses"][index]
    return Row(
        group.study, group.targets[target_index].name, spec.name, spec.width, spec.depth, delay, seed,
        value("nmse_train"), test[0], test_2x[0], test_long[0], None, None, *test[1:], *test_2x[1:], *test_long[1:],
        spec.readout.value, spec.bidirectional, config.length, seconds,
        losses=tuple(float(x) for x in losses[:: max(1, len(losses) // 50)]),
    )  # fmt: skip


def by_key(rows: Iterable[Row], *fields: str) -> dict[tuple, list[Row]]:
    """Rows grouped by the values of ``fields`` (default: :attr:`Row.key`), in first-seen order."""
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, f) for f in fields) if fields else row.key, []).append(row)
    return groups


def select(rows: Iterable[Row], **where) -> list[Row]:
    """The rows whose fields equal ``where``'s values."""
    return [row for row in rows if all(getattr(row, field) == value for field, value in where.items())]


def ranked(value: float) -> float:
    """A seed's error for ranking: a NaN or infinite (diverged) one ranks worst, as in
    :func:`rnnjax.probes.statistics.over_seeds`."""
    return value if np.isfinite(value) else np.inf


def median_interval(rows: Sequence[Row], field: str = "nmse_test") -> tuple[float, float, float]:
    """(median, low, high) of ``field`` over seeds: the middle row's 95% interval (the mean of the two middle ones).

    Without intervals (a field that has none), low and high are the median itself."""
    ordered = sorted(rows, key=lambda row: ranked(getattr(row, field)))
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    ends = (f"{field}_low", f"{field}_high") if f"{field}_low" in FIELDS else (field, field)
    return tuple(float(np.mean([getattr(row, name) for row in middle])) for name in (field, *ends))


def relative_half_widths(rows: Iterable[Row], field: str = "nmse_test") -> np.ndarray:
    """(high - low) / (2 value) of the 95% intervals of ``field`` (rows with value > 1e-12 and an interval)."""
    kept = [row for row in rows if (getattr(row, field) or 0.0) > 1e-12 and getattr(row, f"{field}_high") is not None]
    spans = [getattr(row, f"{field}_high") - getattr(row, f"{field}_low") for row in kept]
    return np.array([span / (2 * getattr(row, field)) for span, row in zip(spans, kept)])


BEST_TOLERANCE, MEDIAN_TOLERANCE, ABSOLUTE_TOLERANCE = 0.02, 0.10, 1e-3
CONVERGENCE_RULE = (
    f"converged: the class optimum is known, and the best seed's test NMSE is within {BEST_TOLERANCE:.0%} of it "
    f"(relative) or {ABSOLUTE_TOLERANCE:g} (absolute), the median within {MEDIAN_TOLERANCE:.0%} or "
    f"{ABSOLUTE_TOLERANCE:g}, each measured from the lower end of its 95% interval (against a lower bound only "
    "reaching it counts: 'yes', else unknown)"
)
"""The rule of :attr:`Summary.converged` (the issue's: best within 2% or 1e-3, median within 10%)."""


@dataclasses.dataclass(frozen=True)
class Summary:
    """The seeds of one (study, target, model, width, depth, delay): median and best test NMSE with their 95%
    intervals (a diverged seed, NaN or infinite, ranks worst and is counted), median and best train NMSE, the
    theory band, and the convergence columns.

    ``gap`` is the optimisation gap, best test NMSE - class optimum (None where the optimum is unknown);
    ``converged`` follows :data:`CONVERGENCE_RULE` (None where the optimum is unknown, and where only a lower
    bound is known and the rows do not reach it: a gap above a bound may be the class's, not the optimiser's).
    """

    study: str
    target: str
    model: str
    width: int
    depth: int
    delay: int
    seeds: int
    diverged: int
    median: float
    median_low: float
    median_high: float
    best: float
    best_low: float
    best_high: float
    train_median: float
    train_best: float
    theory_nmse: float | None
    theory_nmse_lower: float | None
    class_optimum: float | None
    class_optimum_kind: str | None
    gap: float | None
    converged: bool | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def within(value: float, optimum: float, relative: float) -> bool:
    """value <= optimum + max(relative * optimum, ABSOLUTE_TOLERANCE)."""
    return value <= optimum + max(relative * optimum, ABSOLUTE_TOLERANCE)


def summarise(rows: Sequence[Row]) -> list[Summary]:
    """One :class:`Summary` per :attr:`Row.key`, in first-seen order."""
    out = []
    for key, group in by_key(rows).items():
        median, median_low, median_high = median_interval(group)
        best = min(group, key=lambda row: ranked(row.nmse_test))
        trains = over_seeds(row.nmse_train for row in group)
        first = group[0]
        optimum = first.class_optimum
        gap = None if optimum is None else best.nmse_test - optimum
        reached = optimum is not None and (
            within(best.nmse_test_low, optimum, BEST_TOLERANCE) and within(median_low, optimum, MEDIAN_TOLERANCE)
        )  # fmt: skip
        converged = None if optimum is None or (first.class_optimum_kind == "bound" and not reached) else reached
        diverged = sum(not np.isfinite(row.nmse_test) for row in group)
        out.append(Summary(
            *key, len(group), diverged, median, median_low, median_high, best.nmse_test, best.nmse_test_low,
            best.nmse_test_high, trains.median, trains.best, first.theory_nmse,
            first.theory_nmse_lower, optimum, first.class_optimum_kind, gap, converged,
        ))  # fmt: skip
    return out


NESTING_SLACK = 1e-6
"""Test NMSEs this close are equal for the nesting check (two exact fits differ by rounding, 1e-32 vs 1e-14)."""


def inversions(summaries: Sequence[Summary], contains) -> list[tuple[Summary, Summary]]:
    """(larger, smaller) pairs where ``contains(larger, smaller)`` (the larger model class holds the smaller one)
    and the larger's median test NMSE lies above the smaller's beyond both 95% intervals (and beyond
    :data:`NESTING_SLACK`): an optimisation failure of the larger, never a finding about it."""
    return [(large, small) for large in summaries for small in summaries if large is not small
            and contains(large, small) and large.median_low > small.median_high + NESTING_SLACK]  # fmt: skip
