"""Sweeps: records follow the schema, summaries group seeds, groups have stable ids, progress per group."""

import dataclasses

import numpy as np
import pytest

from rnnjax.probes import targets
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import RESULT_FIELDS, summarise
from rnnjax.probes.sweep import sweep
from rnnjax.probes.training import TrainConfig

TINY = TrainConfig(length=8, train_size=16, batch_size=8, steps=15, test_size=8, long_factors=(2,), dtype="float64",
                   fast_compile=True)  # fmt: skip


def test_records_follow_the_schema_and_summaries_group_seeds():
    records, trained = sweep(
        [targets.centred_sum(1), targets.anticausal_filter(0.5, 8)],
        [ModelSpec("linear_diagonal", readout=Readout.NONE)],
        widths=(2,), seeds=(0, 1), config=dataclasses.replace(TINY, steps=3), study="demo",
    )  # fmt: skip
    assert len(records) == 2 * 2
    for record in records:
        assert set(RESULT_FIELDS) <= set(record.to_json()) and record.study == "demo"
        assert np.isfinite(record.nmse_test) and len(record.losses) == 3
    rows = summarise(records)
    assert len(rows) == 2 and all(row.seeds == 2 for row in rows)
    assert ("linear_diagonal", 2) in trained


def test_groups_have_stable_ids_and_sweep_reports_progress_per_group(capsys):
    specs = [ModelSpec("linear_diagonal", readout=Readout.NONE), ModelSpec("simple_tanh", depth=2)]
    groups = plan_groups(targets.centred_sum(1), specs, widths=(2, 3), seeds=(0, 1), delays=(0, 1), config=TINY,
                         study="demo")  # fmt: skip
    assert [g.id for g in groups] == [
        "demo/centred_sum1/linear_diagonal/w2", "demo/centred_sum1/linear_diagonal/w3",
        "demo/centred_sum1/simple_tanh-L2/w2", "demo/centred_sum1/simple_tanh-L2/w3",
    ]  # fmt: skip
    assert all(g.models == 4 for g in groups) and groups[2].work > groups[0].work  # two layers cost more
    assert groups[0].triples == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]  # target, seed, delay
    records, _ = sweep(targets.centred_sum(1), specs[:1], widths=(2, 3), seeds=(0,), config=dataclasses.replace(
        TINY, steps=2), study="demo", progress=True)  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert len(records) == 2 and len(lines) == 2
    assert lines[0].startswith("[models 1/2, groups 1/2] demo linear_diagonal w2 done")
    assert lines[1].startswith("[models 2/2, groups 2/2] demo linear_diagonal w3 done")


def test_restarts_reach_the_groups_and_their_cost_estimate():
    from rnnjax.probes import studies

    plans = studies.plan(studies.ProbeConfig(restarts=2), only=("wiener", "depth"))
    assert {g.config.restarts for plan in plans.values() for g in plan.groups} == {2}
    (group,) = plan_groups(targets.delay(1), [ModelSpec("gru")], seeds=(0,), config=TINY)
    doubled = dataclasses.replace(TINY, restarts=2)
    (twice,) = plan_groups(targets.delay(1), [ModelSpec("gru")], seeds=(0,), config=doubled)
    from rnnjax.probes.planning import COMPILE_WORK

    assert twice.work - COMPILE_WORK == pytest.approx(2 * (group.work - COMPILE_WORK))
