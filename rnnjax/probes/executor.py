"""The probe executor: one loop over groups (one compiled program each) with compile-ahead, progress, a stop
check and a callback per finished group. :func:`rnnjax.probes.sweep.sweep` keeps its results in memory,
:func:`rnnjax.probes.runner.execute` appends each group's record to records.jsonl; both are this loop.

    execute(groups, on_group=lambda number, group, result: ..., progress=Progress.over(groups))
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import jax

from rnnjax.probes.compiling import COMPILE_THREADS, Compiler
from rnnjax.probes.planning import Group
from rnnjax.probes.progress import Progress
from rnnjax.probes.results import Row, group_records


@dataclasses.dataclass(frozen=True)
class GroupResult:
    """What one group produced.

    Attributes:
      records: one row per run (:func:`rnnjax.probes.results.group_records`).
      extras: the group's ``evaluate`` extras ({} without one).
      triples: (target index, seed, delay) of each run, the order of the stacked ``params`` and ``metrics``.
      params: the trained parameters, stacked along the runs (device arrays).
      metrics: the host metrics, stacked along the runs (full loss curves included).
      seconds: wall-clock seconds from dispatch to records (the first group's include compiling itself).
      cpu_seconds: process CPU seconds over the same span (compile threads included).
    """

    records: list[Row]
    extras: dict[str, Any]
    triples: list[tuple[int, int, int]]
    params: Any
    metrics: dict[str, Any]
    seconds: float
    cpu_seconds: float


def run_group(group: Group, compiler: Compiler | None = None, upcoming: Sequence[Group] = ()) -> GroupResult:
    """Train one group and turn its metrics into records; meanwhile the programs of ``upcoming`` compile on
    ``compiler``'s background threads (the group's own program first: the threads take them in order)."""
    own = compiler is None
    compiler = Compiler() if own else compiler
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        for following in (group, *upcoming):
            compiler.ahead(following)
        triples, params, metrics = compiler.dispatch(group)
        metrics = jax.device_get(metrics)
    finally:
        if own:  # nobody else will take the programs compiled ahead: nothing may go on compiling behind us
            compiler.cancel()
    extras = group.evaluate(group, triples, params) if group.evaluate else {}
    seconds = time.perf_counter() - start
    records = group_records(group, metrics, seconds)
    return GroupResult(records, extras, triples, params, metrics, seconds, time.process_time() - cpu_start)


def execute(
    groups: Sequence[Group],
    on_group: Callable[[int, Group, GroupResult], None] | None = None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    ahead: int = COMPILE_THREADS,
    compiler: Compiler | None = None,
) -> int:
    """Train ``groups`` in order; returns how many ran.

    Args:
      groups: the work, one compiled program each.
      on_group: ``on_group(number, group, result)`` as soon as a group ends (before its progress line).
      progress: told when each group begins and ends (default: silent).
      stop: checked before each group; True ends the loop there (the groups already run are kept).
      ahead: upcoming groups compiled in the background while a group runs (0: compile each on the spot).
      compiler: holds the programs compiled ahead (default: a new one, private to this call).

    Whatever ends the loop (the last group, ``stop``, an error or KeyboardInterrupt), the compiles still queued
    are cancelled and those under way are waited for, so nothing runs on behind it.
    """
    if ahead < 0:
        raise ValueError(f"ahead must be >= 0; got {ahead!r}")
    progress = Progress.over(groups, enabled=False) if progress is None else progress
    compiler = Compiler() if compiler is None else compiler
    try:
        for number, group in enumerate(groups):
            if stop is not None and stop():
                return number
            progress.begin(group.label)
            result = run_group(group, compiler, groups[number + 1 : number + 1 + ahead])
            if on_group is not None:
                on_group(number, group, result)
            progress.finish(group.work, group.models)
        return len(groups)
    finally:
        compiler.cancel()
