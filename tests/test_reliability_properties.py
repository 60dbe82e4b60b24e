"""Property tests of the reliability rules (hypothesis): torn lines, config policy and hashes, diverged seeds,
params that do not match their network, and non-finite best metrics. Valid input keeps everything and gives the
reference result; anything else raises naming what is wrong, and loses nothing.
"""

import json
import math
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import rnnjax
from rnnjax.probes.statistics import over_seeds
from rnnjax.training import files

PROPERTY = settings(deadline=None, max_examples=30, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate), suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
SLOW = settings(PROPERTY, max_examples=8)

scalars = st.one_of(st.integers(-5, 5), st.floats(-2, 2, allow_nan=False), st.text("ab", max_size=3), st.booleans())
records = st.dictionaries(st.text("xyz", min_size=1, max_size=3), scalars, max_size=4)
configs = st.recursive(st.dictionaries(st.text("abc", min_size=1, max_size=2), scalars, max_size=4),
                       lambda inner: st.dictionaries(st.text("abc", min_size=1, max_size=2), inner, max_size=3),
                       max_leaves=8)  # fmt: skip


@PROPERTY
@given(complete=st.lists(records, max_size=5), torn=st.integers(0, 1000), extra=records)
def test_a_torn_last_line_at_any_byte_is_ignored_then_cut_and_complete_lines_are_kept(complete, torn, extra):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "lines.jsonl"
        for record in complete:
            files.append_line(path, json.dumps(record))
        partial = json.dumps(extra)[: torn % (len(json.dumps(extra)) + 1)]
        with open(path, "a") as handle:
            handle.write(partial)  # a kill at any byte of the next line
        if partial.strip():
            with pytest.warns(files.TornLineWarning):
                assert [value for _, value in files.read_lines(path)] == complete
        files.append_line(path, json.dumps(extra))
        assert [value for _, value in files.read_lines(path)] == [*complete, extra]


@PROPERTY
@given(stored=configs, current=configs)
def test_config_differences_are_empty_exactly_when_the_configs_are_equal(stored, current):
    differences = files.config_differences(stored, current)
    assert (differences == []) == (stored == current or _flat(stored) == _flat(current))
    assert (files.config_hash(stored) == files.config_hash(current)) == (stored == current)
    reordered = json.loads(json.dumps(dict(reversed(list(stored.items())))))
    assert files.config_hash(reordered) == files.config_hash(stored)  # key order never matters
    untracked = [line.split(":")[0] for line in differences]
    assert files.config_differences(stored, current, untracked) == []  # every difference is named by its field


def _flat(value, prefix=""):
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


@PROPERTY
@given(finite=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=7),
       diverged=st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), max_size=4))  # fmt: skip
def test_a_diverged_seed_counts_as_the_worst_and_never_lowers_the_median(finite, diverged):
    clean, mixed = over_seeds(finite), over_seeds([*finite, *diverged])
    assert clean.median == pytest.approx(float(np.median(finite))) and clean.diverged == 0
    assert mixed.diverged == len(diverged) and mixed.seeds == len(finite) + len(diverged)
    assert mixed.median >= clean.median and mixed.best == clean.best  # never lower, best from the finite seeds
    if len(diverged) >= len(finite):
        assert mixed.median == math.inf


networks = st.tuples(st.sampled_from(["gru", "lstm", "simple"]), st.integers(1, 3), st.booleans(), st.integers(1, 5))
CELLS = {"gru": rnnjax.gru, "lstm": rnnjax.lstm, "simple": rnnjax.simple_rnn}


def _net(spec):
    cell, layers, bidirectional, hidden = spec
    return rnnjax.RNN(CELLS[cell](), hidden, num_layers=layers, bidirectional=bidirectional)


@SLOW
@given(mine=networks, theirs=networks, input_size=st.integers(1, 4))
def test_params_run_only_in_a_network_of_their_shape(mine, theirs, input_size):
    params = _net(theirs).init(jax.random.key(0), input_size)
    if mine == theirs:
        _net(mine).check_params(params, input_size)
    else:
        with pytest.raises(ValueError, match="params do not match this RNN"):
            _net(mine).check_params(params, input_size)


@SLOW
@given(values=st.lists(st.one_of(st.floats(0, 1, allow_nan=False), st.just(math.nan), st.just(math.inf)),
                       min_size=1, max_size=5), mode=st.sampled_from(["min", "max"]))  # fmt: skip
def test_the_best_checkpoint_is_the_best_finite_metric(tmp_path_factory, values, mode):
    from rnnjax.training.checkpoint import Checkpointer  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("best")
    state = {"w": jnp.zeros(2)}
    with Checkpointer(folder, save_every=1, keep=len(values), best_metric="m", best_mode=mode) as checkpointer:
        for step, value in enumerate(values, start=1):
            checkpointer.save(step, state, metrics={"m": value})
        checkpointer.wait()
        finite = {step: value for step, value in enumerate(values, start=1) if math.isfinite(value)}
        expected = None if not finite else (min if mode == "min" else max)(finite, key=lambda s: (finite[s], s))
        if expected is not None and list(finite.values()).count(finite[expected]) == 1:
            assert checkpointer.best_step() == expected
        assert checkpointer.best_step() is None or checkpointer.best_step() in finite
