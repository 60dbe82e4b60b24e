"""Sweeps: train many (model, width, delay, seed) combinations, each same-shape group in ONE compiled program.

For one :class:`~rnnjax.probes.models.ModelSpec` at one width, every (target, seed, delay) triple has parameters
of the same shapes, so one group is ``jit(vmap(train_run))`` over them (:mod:`rnnjax.probes.training` trains one
run, :mod:`rnnjax.probes.compiling` compiles the group, :mod:`rnnjax.probes.planning` lists the groups, and
:mod:`rnnjax.probes.executor` runs them with compile-ahead). :func:`sweep` is that, in memory.
"""

from __future__ import annotations

from typing import Sequence

from rnnjax.probes.executor import GroupResult, execute
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.planning import Group, plan_groups
from rnnjax.probes.progress import Progress
from rnnjax.probes.results import Row
from rnnjax.probes.targets import Target
from rnnjax.probes.training import DEFAULT_CONFIG, TrainConfig


def sweep(
    target: Target | Sequence[Target],
    model_specs: Sequence[ModelSpec],
    widths: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3),
    delays: Sequence[int] | None = None,
    config: TrainConfig = DEFAULT_CONFIG,
    study: str = "",
    progress: bool = False,
) -> tuple[list[Row], dict]:
    """Train every (target, model, width, delay, seed); all but the model and width share one compiled program.

    Args:
      target: the map to learn, or several maps with the same sizes, input kind and labelling.
      model_specs: model families; each is used at every width in ``widths`` (default: its own width).
      seeds: one run per seed (data, init and minibatch order all derive from the seed).
      delays: output delays D (default: each spec's own delay).
      config: training and evaluation settings.
      study: label stored in every record.
      progress: show progress over the groups on stderr (:class:`rnnjax.probes.progress.Progress`).

    Returns:
      (records, trained): one :class:`rnnjax.probes.results.Row` per run (theory fields None; see
      :mod:`rnnjax.probes.theory`), and {(model name, width): (spec, triples, stacked params)} for further
      evaluation; stacked params have leaves ``[runs, ...]``, one run per (target, seed, delay) triple.

    Examples:
      >>> from rnnjax.probes import targets
      >>> from rnnjax.probes.models import ModelSpec
      >>> from rnnjax.probes.sweep import sweep
      >>> from rnnjax.probes.training import TrainConfig
      >>> config = TrainConfig(length=8, train_size=16, batch_size=16, steps=5, test_size=16, long_factors=(2,),
      ...                      fast_compile=True)  # a few steps: an example, not a fit
      >>> rows, trained = sweep(targets.delay(1), [ModelSpec("linear_dense", width=2)], seeds=(0, 1), config=config)
      >>> [(row.target, row.model, row.width, row.seed) for row in rows]
      [('delay1', 'linear_dense', 2, 0), ('delay1', 'linear_dense', 2, 1)]
      >>> spec, triples, params = trained["linear_dense", 2]
      >>> len(triples)
      2
    """
    groups = plan_groups(target, model_specs, widths, seeds, delays, config, study)
    records, trained = [], {}

    def keep(_number: int, group: Group, result: GroupResult) -> None:
        trained[(group.spec.name, group.spec.width)] = (group.spec, result.triples, result.params)
        records.extend(result.records)

    bar = Progress.over(groups, enabled=progress)
    try:
        execute(groups, on_group=keep, progress=bar)
    finally:
        bar.close()
    return records, trained
