"""Sweeps: one compiled program over seeds equals separate runs; exact representability; model options."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import models, targets
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.sweep import RESULT_FIELDS, TrainConfig, summarise, sweep, train_group

TINY = TrainConfig(length=8, train_size=16, batch_size=8, steps=15, test_size=8, long_factors=(2,), dtype="float64",
                   fast_compile=True)


def test_four_seeds_in_one_program_equal_four_separate_runs():
    target = targets.kernel_target("exp", targets.exponential_kernel(0.7, 32))
    spec = ModelSpec("gru", width=3)
    _, params, metrics = train_group(spec, [target], TINY, seeds=(0, 1, 2, 3), delays=(0,))
    for i, seed in enumerate((0, 1, 2, 3)):
        _, one_params, one = train_group(spec, [target], TINY, seeds=(seed,), delays=(0,))
        for name in ("nmse_train", "nmse_test", "nmse_test_2x", "losses"):
            np.testing.assert_allclose(metrics[name][i], one[name][0], rtol=1e-9, atol=1e-12)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b[0], rtol=1e-9, atol=1e-12), params, one_params)
    assert len({float(v) for v in metrics["nmse_test"]}) == 4  # the seeds really differ


def test_exact_representability_of_an_order_4_target_in_float64():
    kernel = targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 320)
    target = targets.kernel_target("oscillators4", kernel)
    assert targets.state_space_order(kernel) == 4
    config = TrainConfig(length=32, train_size=32, batch_size=32, steps=300, lbfgs_steps=80, test_size=32,
                         long_factors=(10,), dtype="float64", fast_compile=True)  # fmt: skip
    spec = ModelSpec("linear_dense", readout=Readout.NONE)
    records, _ = sweep(target, [spec], widths=(4,), seeds=(0,), config=config)
    assert records[0]["nmse_test"] <= 1e-8 and records[0]["nmse_test_long"] <= 1e-8  # from a random init


def test_delay_semantics_and_vmapped_delays():
    spec = ModelSpec("simple_tanh", width=4)
    params = models.init(spec, jax.random.key(0), 1, 1, jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 6, 1), jnp.float64)
    outputs = models.apply(spec, params, jnp.pad(xs, ((0, 0), (0, 3), (0, 0))), 1)
    for delay in range(4):
        aligned = models.aligned_predictions(spec, params, xs, 1, jnp.asarray(delay), max_delay=3)
        np.testing.assert_allclose(aligned, outputs[:, delay : delay + 6])


def test_records_follow_the_schema_and_summaries_group_seeds():
    records, trained = sweep(
        [targets.centred_sum(1), targets.anticausal_filter(0.5, 8)],
        [ModelSpec("linear_diagonal", readout=Readout.NONE)],
        widths=(2,), seeds=(0, 1), config=dataclasses.replace(TINY, steps=3), study="demo",
    )  # fmt: skip
    assert len(records) == 2 * 2
    for record in records:
        assert set(RESULT_FIELDS) <= set(record) and record["study"] == "demo"
        assert np.isfinite(record["nmse_test"])
    rows = summarise(records)
    assert len(rows) == 2 and all(row["seeds"] == 2 for row in rows)
    assert ("linear_diagonal", 2) in trained


def test_bidirectional_deep_and_mlp_shapes():
    spec = ModelSpec("linear_complex_diagonal", width=3, bidirectional=True, readout=Readout.NONE)
    params = models.init(spec, jax.random.key(0), 1, 2, jnp.float32)
    assert models.apply(spec, params, jnp.ones((4, 5, 1), jnp.float32), 2).shape == (4, 5, 2)
    mlp = ModelSpec("lstm", width=3, bidirectional=True, readout=Readout.MLP, mlp_width=5)
    mlp_params = models.init(mlp, jax.random.key(0), 1, 2)
    assert models.apply(mlp, mlp_params, jnp.ones((4, 5, 1), jnp.float32), 2).shape == (4, 5, 2)
    deep = ModelSpec("simple_relu", width=3, depth=3)
    deep_params = models.init(deep, jax.random.key(0), 2, 1)
    assert models.apply(deep, deep_params, jnp.ones((4, 5, 2), jnp.float32), 1).shape == (4, 5, 1)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="readout 'none' needs a one-layer linear cell"):
        ModelSpec("gru", readout=Readout.NONE)
    with pytest.raises(ValueError, match="delay must be a non-negative int"):
        ModelSpec("gru", delay=-1)
    with pytest.raises(ValueError, match="must share output_size"):
        sweep([targets.delay(1), targets.delay_line(2)], [ModelSpec("gru")], config=TINY)
    with pytest.raises(ValueError, match="dtype must be"):
        TrainConfig(dtype="float16")
