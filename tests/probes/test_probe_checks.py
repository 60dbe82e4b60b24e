"""ProbeConfig checks: every bad field refused when the config is built, naming its flag; a memory estimate."""

import dataclasses
import json
import math
import types

import pytest

from rnnjax.probes import probe_checks
from rnnjax.probes.studies import ProbeConfig

BAD = {
    "delays": ((0, -2), r"--probe.delays\[1\] must be >= 0; got -2"),
    "seeds": ((), r"--probe.seeds must name at least one seed; got \(\)"),
    "learning_rate": (math.nan, "--probe.learning_rate must be finite; got nan"),
    "steps": (-5, "--probe.steps must be >= 1; got -5"),
    "test_size": (1, "--probe.test_size must be >= 2; got 1"),
    "copy_lag": (-1, "--probe.copy_lag must be >= 0; got -1"),
    "parity_steps": (0, "--probe.parity_steps must be >= 1; got 0"),
    "lbfgs_steps": (-1, "--probe.lbfgs_steps must be >= 0; got -1"),
    "order_widths": ((4, 0), r"--probe.order_widths\[1\] must be >= 1; got 0"),
    "depths": ((-1,), r"--probe.depths\[0\] must be >= 1; got -1"),
    "wiener_cells": (("gru", "gruu"), r"--probe.wiener_cells\[1\] must name a cell; got 'gruu'"),
}


@pytest.mark.parametrize("field", list(BAD))
def test_each_bad_field_is_refused_naming_its_flag(field):
    value, message = BAD[field]
    with pytest.raises((ValueError, TypeError), match=message):
        ProbeConfig(**{field: value})
    with pytest.raises((ValueError, TypeError), match=message):
        dataclasses.replace(ProbeConfig.quick(), **{field: value})  # every way of building it


@pytest.mark.parametrize("field, value", [("learning_rate", -1e-3), ("learning_rate", math.inf), ("seeds", (1, 1)),
                                          ("seeds", (-1,)), ("delays", ()), ("copy_lag", 32), ("width", 0),
                                          ("test_size", 0), ("length", 2.5)])  # fmt: skip
def test_more_bad_values_are_refused(field, value):
    with pytest.raises((ValueError, TypeError), match=f"--probe.{field}"):
        ProbeConfig(**{field: value})


def test_the_presets_pass_and_their_estimates_are_small():
    for config in (ProbeConfig(), ProbeConfig.quick(), ProbeConfig.full()):
        needed, model = probe_checks.memory_estimate(config)
        assert 0 < needed < 2**30 and "width" in model


def test_the_estimate_grows_with_width_depth_and_seeds_and_an_absurd_width_is_refused_before_training():
    base = ProbeConfig.quick()
    def estimate(**fields):  # on an unchecked copy: the config itself refuses what does not fit
        return probe_checks.memory_estimate(types.SimpleNamespace(**{**dataclasses.asdict(base), **fields}))[0]

    assert estimate(width=64) < estimate(width=128) and estimate(deep_widths=(64,), depths=(1,)) < estimate(
        deep_widths=(64,), depths=(3,))  # fmt: skip
    assert estimate(width=128, seeds=(0, 1)) == 2 * estimate(width=128)
    huge = 10**6  # ~4e12 parameters: XLA would try to allocate (and stall) instead of failing
    with pytest.raises(ValueError, match=r"needs at least ~[\d.e+]+ GiB for its largest model \(width 1000000"):
        ProbeConfig(width=huge)
    available = probe_checks.machine_memory()
    assert available is None or estimate(width=huge) > available


def test_a_stored_config_reads_back_or_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "config.json"
    config = dataclasses.replace(ProbeConfig.quick(), seeds=(3, 5), delays=(0, 2))
    stored = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples become lists
    assert probe_checks.from_stored(ProbeConfig, stored, path) == config
    with pytest.raises(ValueError, match=rf"{path}: fields \['future_field'\] are not fields of ProbeConfig"):
        probe_checks.from_stored(ProbeConfig, {**stored, "future_field": 1}, path)
    with pytest.raises(ValueError, match=rf"{path}: expected a JSON object .* got list"):
        probe_checks.from_stored(ProbeConfig, [1, 2], path)
    with pytest.raises(ValueError, match=rf"{path} holds a config this version refuses: --probe.delays\[0\] must be"):
        probe_checks.from_stored(ProbeConfig, {**stored, "delays": [-1]}, path)
