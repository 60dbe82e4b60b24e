"""Encoder-decoder models of the probe: a loop reference, the width-m bottleneck, and training to the rank floor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import models, targets, theory
from rnnjax.probes.models import Architecture, ModelSpec
from rnnjax.probes.sweep import sweep
from rnnjax.probes.training import TrainConfig


def _linear_reference(params, xs, output_length):
    """Python loops over one sequence: h_t = A h_{t-1} + B x_t, v = C h_N + D x_N; decoder from v, zero input."""
    enc, dec = params["encoder"], params["decoder"]
    h = np.zeros(enc["A"].shape[0])
    for x in xs:
        h = enc["A"] @ h + enc["B"] @ x
    vector = enc["C"] @ h + enc["D"] @ xs[-1]
    h = vector @ params["bridge"]["w"] + params["bridge"]["b"]
    outputs = []
    for _ in range(output_length):
        h = dec["A"] @ h
        outputs.append((dec["C"] @ h) @ params["readout"]["w"] + params["readout"]["b"])
    return np.stack(outputs)


@pytest.mark.parametrize("output_length", [3, 7, 12])
def test_linear_encoder_decoder_matches_a_loop_reference(output_length):
    spec = ModelSpec("linear_dense", width=4, architecture=Architecture.ENCODER_DECODER)
    params = models.init(spec, jax.random.key(0), 1, 2, jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (3, 7, 1), jnp.float64)
    outputs = models.aligned_predictions(spec, params, xs, 2, 0, 0, output_length)
    numpy_params = jax.tree.map(np.asarray, params)
    for example in range(3):
        expected = _linear_reference(numpy_params, np.asarray(xs[example]), output_length)
        np.testing.assert_allclose(outputs[example], expected, rtol=1e-10, atol=1e-12)


def _operator(spec, params, length, output_length):
    """Jacobian of the outputs of one sequence with respect to its inputs [M * output, N]."""
    fn = lambda xs: models.aligned_predictions(spec, params, xs[None], 1, 0, 0, output_length)[0]  # noqa: E731
    xs = jax.random.normal(jax.random.key(5), (length, 1), jnp.float64)
    return np.asarray(jax.jacfwd(fn)(xs)).reshape(output_length, length)


@pytest.mark.parametrize("cell", ["linear_dense", "gru", "lstm", "simple_tanh"])
def test_without_attention_everything_passes_through_the_width_m_vector(cell):
    """The input-output Jacobian has rank <= m without attention (chain rule through v); attention bypasses v."""
    width, length = 3, 10
    ranks = {}
    for architecture in (Architecture.ENCODER_DECODER, Architecture.ATTENTION):
        spec = ModelSpec(cell, width=width, architecture=architecture)
        params = models.init(spec, jax.random.key(2), 1, 1, jnp.float64)
        singular = np.linalg.svd(_operator(spec, params, length, length), compute_uv=False)
        ranks[architecture] = int(np.sum(singular > 1e-9 * singular[0]))
    assert ranks[Architecture.ENCODER_DECODER] <= width
    assert ranks[Architecture.ATTENTION] > width


def test_encoder_decoder_specs_validate_their_options():
    with pytest.raises(ValueError, match="needs"):
        ModelSpec("gru", bidirectional=True, architecture="encoder_decoder")
    with pytest.raises(ValueError, match="needs"):
        ModelSpec("gru", delay=2, architecture="attention")
    assert ModelSpec("gru", architecture="attention").name == "gru-attn"
    assert ModelSpec("linear_dense", architecture="encoder_decoder").name == "linear_dense-encdec"


@pytest.mark.parametrize("width", [2, 3])
def test_trained_linear_encoder_decoder_reaches_the_rank_floor_on_reversal(width):
    """Reversal is reachable by linear RNNs: shift-register encoder and decoder keep the last m inputs."""
    length = 6
    target = targets.reversal()
    config = TrainConfig(length=length, train_size=256, batch_size=256, steps=300, learning_rate=2e-2,
                         lbfgs_steps=200, test_size=4096, long_factors=(), dtype="float64")  # fmt: skip
    spec = ModelSpec("linear_dense", width=width, architecture=Architecture.ENCODER_DECODER)
    records, _ = sweep(target, [spec], seeds=(0, 1, 2), config=config)
    floor = theory.rank_floor(target, length, width)
    best = min(records, key=lambda r: r.nmse_test)
    assert best.nmse_test_low <= floor + 0.02 and best.nmse_test < floor + 0.03, (floor, best.nmse_test)
    assert best.nmse_test_high >= floor - 1e-3  # no estimate beats the exact optimum beyond its interval


def _input_kernels(params):
    """Every 'input_kernel' leaf of a parameter tree, with its path."""
    found = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if any(getattr(entry, "key", None) == "input_kernel" for entry in path):
            found.append((jax.tree_util.keystr(path), np.asarray(leaf)))
    return found


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("gru", width=16, depth=2, bidirectional=True),
        ModelSpec("lstm", width=9),
        ModelSpec("simple_relu", width=4, depth=3),
        ModelSpec("gru", width=8, architecture=Architecture.ATTENTION),
        ModelSpec("lstm", width=8, architecture=Architecture.ENCODER_DECODER),
    ],
    ids=lambda spec: spec.name,
)
def test_pytorch_initialisation_changes_only_the_input_kernels_to_uniform_within_one_over_root_width(spec):
    """Same key: every parameter but the input kernels (and the LSTM's forget bias, 1 -> 0) equals the cells' default;
    the input kernels lie in +-1/sqrt(width) and fill it (uniform: max near the bound, std near bound/sqrt(3)),
    unlike LeCun normal at fan-in 1 (std ~0.9)."""
    key = jax.random.key(4)
    default = models.init(spec, key, 1, 2, jnp.float64)
    pytorch = models.init(spec, key, 1, 2, jnp.float64, initialisation="pytorch")
    kernels = _input_kernels(pytorch)
    layers = spec.depth * (2 if spec.bidirectional else 1) if spec.architecture is Architecture.ALIGNED else 2
    assert len(kernels) == len(_input_kernels(default)) == layers
    bound = 1 / np.sqrt(spec.width)
    values = np.concatenate([kernel.ravel() for _, kernel in kernels])
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.2 * bound / np.sqrt(3)
    width = spec.width

    def same_or_expected(path, a, b):
        keys = [getattr(entry, "key", None) for entry in path]
        if "input_kernel" in keys:
            return True
        if spec.cell == "lstm" and keys[-1] == "bias":  # torch: no forget-gate offset (the cells' default adds 1)
            forget = slice(width, 2 * width)
            return bool(np.all(a[forget] == 1.0) and np.all(b[forget] == 0.0) and np.array_equal(
                np.delete(a, np.arange(width, 2 * width)), np.delete(b, np.arange(width, 2 * width))))
        return bool(np.array_equal(a, b))

    assert all(jax.tree.leaves(jax.tree_util.tree_map_with_path(same_or_expected, default, pytorch)))
    first_default = dict(_input_kernels(default))
    assert any(not np.array_equal(first_default[path], kernel) for path, kernel in kernels)


def test_initialisation_leaves_linear_cells_alone_and_names_a_bad_value():
    spec = ModelSpec("linear_dense", width=4, readout="none")
    key = jax.random.key(1)
    for a, b in zip(jax.tree.leaves(models.init(spec, key, 1, 1)),
                    jax.tree.leaves(models.init(spec, key, 1, 1, initialisation="pytorch"))):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="initialisation must be one of 'cell_default', 'pytorch'; got 'torch'"):
        TrainConfig(initialisation="torch")
    with pytest.raises(ValueError, match="initialisation must be one of"):
        models.init(ModelSpec("gru"), key, 1, 1, initialisation="xavier")


def test_training_starts_from_the_configs_initialisation():
    """The first full-batch loss of train_run is the loss of models.init(..., config.initialisation) on the run's
    training data (recomputed here from the run's key), for both initialisations, and the two differ."""
    from rnnjax.probes.training import nmse, train_run

    spec, target = ModelSpec("gru", width=8), targets.delay(2)
    key, first = jax.random.key(0), {}
    for initialisation in ("pytorch", "cell_default"):
        config = TrainConfig(length=8, train_size=16, batch_size=16, steps=1, test_size=16, long_factors=(),
                             initialisation=initialisation)  # fmt: skip
        _, metrics = train_run(key, 0, 0, spec=spec, targets=(target,), config=config, max_delay=0)
        k_data, k_init, _, _ = jax.random.split(key, 4)
        xs, ys = targets.sample_family((target,), 0, k_data, 16, 8, jnp.float32)
        params = models.init(spec, k_init, 1, 1, jnp.float32, initialisation)
        expected = nmse(models.aligned_predictions(spec, params, xs, 1, 0, 0), ys)
        first[initialisation] = float(metrics["losses"][0])
        np.testing.assert_allclose(first[initialisation], float(expected), rtol=1e-5)
    assert abs(first["pytorch"] - first["cell_default"]) > 1e-3
