"""How every experiment ends: what its run returns to Python and the few lines its script prints.

An app's ``run(config)`` returns an :class:`Outcome`: the results written to results.json, a few headline
sentences with their intervals (the app writes its own), whether each target stated in the experiment's
docstring was met, and the run folder. The script prints :meth:`Outcome.ending`::

    outcome = Outcome(results, headline=("bidirectional F1 99.9% +- 0.1% (95% CI 99.6-100.0, 3 seeds)",),
                      targets=(Target("bidirectional F1 >= 98% on every seed", met=True),), folder=run.directory)
    print(outcome.ending())   # the headline, "target met: ...", and the paths of report.md, results.json, plots
    # with quiet=True the ending is the report's path alone (scripts read results.json)
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from rnnjax.training import stats

PLOTS = "plots"


@dataclasses.dataclass(frozen=True)
class Target:
    """A target stated in an experiment's docstring, and whether this run met it."""

    statement: str
    met: bool

    def __post_init__(self):
        if not isinstance(self.statement, str) or not self.statement:
            raise ValueError(f"statement must be a non-empty string; got {self.statement!r}")
        if not isinstance(self.met, bool):
            raise TypeError(f"met must be a bool; got {type(self.met).__name__} {self.met!r}")

    def line(self) -> str:
        return f"target {'met' if self.met else 'NOT met'}: {self.statement}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One experiment run's results (as in results.json), headline sentences, targets and run folder.

    ``quiet``: the run was started with ``--quiet``, so its ending is the report's path alone.
    """

    results: Mapping[str, Any]
    headline: tuple[str, ...]
    targets: tuple[Target, ...]
    folder: pathlib.Path
    quiet: bool = False

    def __post_init__(self):
        for name in ("headline", "targets"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"{name} must be a tuple; got {type(getattr(self, name)).__name__}")
        if not all(isinstance(line, str) and line and "\n" not in line for line in self.headline):
            raise ValueError(f"headline must hold non-empty one-line strings; got {self.headline!r}")
        if not all(isinstance(target, Target) for target in self.targets):
            raise TypeError(f"targets must hold Target values; got {self.targets!r}")
        object.__setattr__(self, "folder", pathlib.Path(self.folder))

    @property
    def report_path(self) -> pathlib.Path:
        return self.folder / "report.md"

    @property
    def results_path(self) -> pathlib.Path:
        return self.folder / "results.json"

    @property
    def plot_paths(self) -> list[pathlib.Path]:
        """Every ``plots/*.png`` of the run folder and of its nested runs, sorted."""
        return sorted(self.folder.glob(f"{PLOTS}/*.png")) + sorted(self.folder.glob(f"*/{PLOTS}/*.png"))

    @property
    def targets_met(self) -> bool:
        """Every stated target met (True when the experiment states none)."""
        return all(target.met for target in self.targets)

    def ending(self) -> str:
        """The headline, one line per target, and where report.md, results.json and the plots are."""
        if self.quiet:
            return str(self.report_path)
        lines = [*self.headline, *(target.line() for target in self.targets)]
        lines += [f"report:  {self.report_path}", f"results: {self.results_path}"]
        folders: dict[pathlib.Path, list[str]] = {}
        for path in self.plot_paths:
            folders.setdefault(path.parent, []).append(path.name)
        lines += [f"plots:   {folder}/ ({', '.join(names)})" for folder, names in folders.items()]
        return "\n".join(lines)


def _number(value: float, digits: int, percent: bool) -> str:
    return f"{100 * value:.{digits}f}" if percent else f"{value:.{digits}f}"


def seeds_text(summary: Mapping[str, Any] | stats.SeedSummary, *, percent: bool = False, digits: int | None = None,
               unit: str = "") -> str:  # fmt: skip
    """A seed summary in a headline: '73.7% +- 0.9% (95% CI 72.5-74.9, 3 seeds)' or '1.624 +- 0.009 nats/char (...)'.

    Args:
      summary: a :class:`~rnnjax.training.stats.SeedSummary` or its ``as_dict()`` (as stored in results.json).
      percent: show fractions as percentages (one decimal unless ``digits``), the interval clipped to 0-100%.
      digits: decimals (default 1 for percentages, else 3).
      unit: written after the mean and the sd (ignored with ``percent``).
    """
    if not isinstance(summary, stats.SeedSummary):
        summary = stats.SeedSummary.from_dict(dict(summary))
    digits = (1 if percent else 3) if digits is None else digits
    unit = "%" if percent else (f" {unit}" if unit else "")
    low, high = (max(summary.low, 0.0), min(summary.high, 1.0)) if percent else (summary.low, summary.high)
    values = (summary.mean, summary.standard_deviation, low, high)
    mean, spread, low, high = (_number(value, digits, percent) for value in values)
    confidence = f"{100 * summary.confidence:g}%"
    return f"{mean}{unit} +- {spread}{unit} ({confidence} CI {low}-{high}, {len(summary.values)} seeds)"


def interval_text(value: float, interval: Sequence[float], *, percent: bool = True, digits: int = 1) -> str:
    """One estimate with its interval in a headline: '97.3% [95.1, 98.6]'."""
    value, low, high = (_number(v, digits, percent) for v in (value, *interval))
    return f"{value}{'%' if percent else ''} [{low}, {high}]"

