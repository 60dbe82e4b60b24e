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
