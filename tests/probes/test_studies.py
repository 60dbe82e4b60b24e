"""Studies of the probe: no trained value beats an exact optimum beyond its interval; theory bands are monotone."""

import numpy as np
import pytest

from rnnjax.probes import report, runner, studies
from rnnjax.probes.executor import execute


def run_in_memory(plans):
    """(rows, extras) of every study in ``plans``: the executor, then :func:`runner.collect` (the one finish)."""
    recorded = {}
    execute(runner.all_groups(plans), on_group=lambda _, group, result: recorded.update(
        {group.id: runner.group_record(group, result)}))  # fmt: skip
    rows, extras, _ = runner.collect(plans, recorded)
    return rows, extras


@pytest.fixture(scope="module")
def quick_records():
    """The quick versions of the studies with exact floors (causality: causal and time-invariant; Wiener;
    encoder-decoder)."""
    return run_in_memory(studies.plan(studies.ProbeConfig.quick(), only=("causality", "wiener", "encoder_decoder")))


def test_no_trained_value_beats_an_exact_optimum_beyond_its_interval(quick_records):
    records, _ = quick_records
    assert {r["study"] for r in records} == {"causality", "wiener", "encoder_decoder"}
    assert report.violations(records) == []
    checked = [r for r in records if r["theory_nmse_lower"] is not None and r["theory_nmse_lower"] > 0.05]
    assert len(checked) >= 4  # the check has floors well above 0 to bite on


def test_records_carry_intervals_and_the_study_floors(quick_records):
    records, extras = quick_records
    for record in records:
        assert record["nmse_test_low"] <= record["nmse_test"] <= record["nmse_test_high"]
    reversal = [r for r in records if r["study"] == "causality" and r["target"] == "reversal"]
    assert all(r["time_invariant_floor"] >= r["causal_floor"] for r in reversal)
    encoder_decoder = [r for r in records if r["study"] == "encoder_decoder" and r["target"] == "reversal"]
    assert all(r["rank_floor"] == pytest.approx(1 - r["width"] / 8) for r in encoder_decoder)
    assert extras["wiener"]["time_invariant_floor"] >= extras["wiener"]["time_varying_floor"]


def test_violations_flags_a_value_below_an_exact_floor():
    row = {"study": "s", "target": "t", "model": "linear", "width": 4, "delay": 0, "seed": 0, "readout": "none",
           "nmse_test": 0.40, "nmse_test_low": 0.39, "nmse_test_high": 0.41, "theory_nmse_lower": 0.44,
           "causal_floor": 0.44, "time_invariant_floor": 0.5}  # fmt: skip
    found = report.violations([row])
    assert len(found) == 3 and "causal_floor 0.44" in found[1]
    gru = {**row, "model": "gru", "readout": "linear", "theory_nmse_lower": 0.3, "nmse_test_high": 0.45}
    assert report.violations([gru]) == []  # the time-invariant floor does not bind a nonlinear cell


@pytest.mark.parametrize("study", ["width", "memory"])
def test_theory_band_upper_end_never_rises_with_width(study):
    config = studies.ProbeConfig(order_widths=(1, 2, 3, 4, 6), memory_widths=(1, 2, 3, 4, 8, 16))
    plan = studies.STUDIES[study](config)
    names = {target.name for group in plan.groups for target in group.targets}
    widths = sorted({group.spec.width for group in plan.groups})
    rows = [{"target": name, "width": width} for name in names for width in widths]
    finished, _ = plan.finish(rows, [{} for _ in plan.groups])
    for name in names:
        uppers = [r["theory_nmse"] for r in sorted(finished, key=lambda r: r["width"]) if r["target"] == name]
        lowers = [r["theory_nmse_lower"] for r in sorted(finished, key=lambda r: r["width"]) if r["target"] == name]
        assert np.all(np.diff(uppers) <= 0), (name, uppers)
        assert np.all(np.asarray(lowers) <= np.asarray(uppers) + 1e-15)
