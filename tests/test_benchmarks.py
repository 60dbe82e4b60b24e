"""The benchmark scripts compare equal computations: vmapped == sequential, fit_many == 64 x fit.

The flop count they report is checked against matrix products counted in the traced program (every
``dot_general`` in the jaxpr, scan bodies counted once per step), not against a copy of the formula.
"""

import math
import os
import sys

import jax
import jax.extend as jex
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import many  # noqa: E402
import xla_cpu_hang  # noqa: E402

from rnnjax.core.unroll import rnn  # noqa: E402


def _inner_jaxprs(value):
    if isinstance(value, jex.core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jex.core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _inner_jaxprs(item)


def matmul_flops(jaxpr) -> int:
    """Sum over dot_general of 2 * |output| * |contracted dims|; a scan body counts ``length`` times."""
    total = 0
    for equation in jaxpr.eqns:
        if equation.primitive.name == "dot_general":
            (contracted, _), _ = equation.params["dimension_numbers"]
            left_shape = equation.invars[0].aval.shape
            output_size = math.prod(equation.outvars[0].aval.shape)
            total += 2 * output_size * math.prod(left_shape[axis] for axis in contracted)
        repeats = equation.params["length"] if equation.primitive.name == "scan" else 1
        for value in equation.params.values():
            for inner in _inner_jaxprs(value):
                total += repeats * matmul_flops(inner)
    return total


def _counted_flops(batch: int, time_steps: int, hidden: int) -> tuple[int, int]:
    """(forward of the LSTM, one gradient of the benchmark loss) matmul flops, counted from the jaxprs."""
    params = many.init_model(jax.random.key(0), hidden)
    batch_data = many.make_batch(jax.random.key(1), batch, time_steps)
    forward = jax.make_jaxpr(lambda p: rnn(many.CELL, p["cell"], batch_data[0])[0])(params)
    gradient = jax.make_jaxpr(jax.grad(lambda p: many.loss_fn(p, batch_data, None)[0]))(params)
    return matmul_flops(forward.jaxpr), matmul_flops(gradient.jaxpr)


def test_matmul_counter_counts_a_known_product():
    jaxpr = jax.make_jaxpr(lambda a, b: a @ b)(jax.numpy.ones((3, 4)), jax.numpy.ones((4, 5)))
    assert matmul_flops(jaxpr.jaxpr) == 2 * 3 * 4 * 5


@pytest.mark.parametrize("batch, time_steps, hidden", [(4, 5, 3), (2, 7, 6)])
def test_flops_per_step_matches_the_traced_matmuls(batch, time_steps, hidden):
    forward, gradient = _counted_flops(batch, time_steps, hidden)
    claimed = many.flops_per_step(batch, time_steps, hidden)
    assert claimed == 3 * forward  # "forward, and twice that backward"
    # The traced backward skips the input gradients, so the claim is a slight overestimate.
    assert 0.85 * claimed <= gradient <= claimed


def test_step_loop_vmapped_equals_sequential():
    models, steps = 3, 2
    result = many.step_loop(4, 5, 3, steps, models=models, repeats=1)
    assert result["max_loss_difference"] <= 1e-5  # the benchmark runs in float32
    forward, _ = _counted_flops(4, 5, 3)
    assert result["flops_per_model_step"] == 3 * forward
    assert result["speedup"] == pytest.approx(result["sequential_s"] / result["vmapped_s"], rel=1e-12)
    for name in ("sequential", "vmapped"):
        work = models * steps * 3 * forward / 1e9
        assert result[f"{name}_gflops"] == pytest.approx(work / result[f"{name}_s"], rel=1e-12)


def test_end_to_end_fit_many_equals_separate_fits():
    result = many.end_to_end(4, 5, 3, 2, models=3)
    assert result["max_final_loss_difference"] <= 1e-5
    for phase in ("cold", "warm"):
        ratio = result[f"{phase}_sequential_s"] / result[f"{phase}_fit_many_s"]
        assert result[f"{phase}_speedup"] == pytest.approx(ratio, rel=1e-12)


def test_fisher_exact_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for a, n_a, b, n_b in [(0, 10, 4, 10), (0, 44, 13, 32), (2, 6, 3, 6)]:
        expected = stats.fisher_exact([[b, n_b - b], [a, n_a - a]], alternative="greater").pvalue
        assert xla_cpu_hang.fisher_one_sided(a, n_a, b, n_b) == pytest.approx(expected, rel=1e-9)


def test_lstm_layout_variants_compute_the_library_lstm():
    """Every variant of benchmarks/lstm_layouts.py is lstm(gates=...) with at most its layout or projection swapped."""
    sys.path.insert(0, ROOT)
    from benchmarks import lstm_layouts
    from rnnjax.core.cells import lstm

    params = lstm().init(jax.random.key(0), 1, 4, jax.numpy.float64)
    xs = jax.random.normal(jax.random.key(1), (3, 6, 1), jax.numpy.float64)
    reference = rnn(lstm(gates="slices"), params, xs)[0]
    for name in lstm_layouts.VARIANTS:
        ys = rnn(lstm_layouts.variant_cell(name), params, xs)[0]
        assert float(jax.numpy.abs(ys - reference).max()) <= 1e-14, name


def test_lstm_many_variants_train_the_same_models():
    """benchmarks/lstm_many.py: every backward path, gate form and unroll trains to the same losses (checked inside)."""
    sys.path.insert(0, ROOT)
    from benchmarks import lstm_many

    variants = "autodiff/one_tanh,manual/slices/2"
    sizes = ["--models", "2", "--hidden", "3", "--time", "5", "--batch", "4", "--steps", "2", "--rounds", "2"]
    rows = lstm_many.main([*sizes, "--variants", variants])["rows"]
    assert rows["autodiff/one_tanh"]["vs_first"] == 1.0
    assert all(0 < rows[name]["forward_share"] and rows[name]["compile_s"] > 0 for name in variants.split(","))


@pytest.mark.parametrize("initialisation", ["pytorch", "cell_default"])
def test_the_probe_init_loaded_into_torch_computes_the_probes_model(initialisation):
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp
    import numpy as np

    from benchmarks import sweep as bench_sweep
    from rnnjax.probes import models
    from rnnjax.probes.models import ModelSpec

    model = bench_sweep.TorchModel("gru", 4)
    bench_sweep.load_probe_init(model, "gru", 4, seed=3, initialisation=initialisation)
    key = jax.random.split(jax.random.key(3), 4)[1]
    params = models.init(ModelSpec("gru", width=4), key, 1, 1, initialisation=initialisation)
    xs = np.asarray(jax.random.normal(jax.random.key(0), (2, 5, 1)), np.float32)
    expected = models.apply(ModelSpec("gru", width=4), params, jnp.asarray(xs), 1)
    with torch.no_grad():
        found = model(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(found, np.asarray(expected), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cell 'lstm'"):
        bench_sweep.load_probe_init(bench_sweep.TorchModel("lstm", 4), "lstm", 4, seed=0)
