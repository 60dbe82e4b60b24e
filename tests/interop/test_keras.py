"""Parity with Keras 3 on the JAX backend, masking included: float32, max abs diff <= 1e-5.

Not float64: Keras 3.15's ``keras.ops.tanh`` returns float32 for a float64 input on the JAX backend,
so a float64 Keras RNN runs its tanh in float32 (a SimpleRNN fails outright: its scan carry changes dtype).
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnjax.interop import from_keras  # noqa: E402
from rnnjax.interop.keras import hold_masked_outputs  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("keras was imported with another backend", allow_module_level=True)

TOLERANCE = 1e-5


INPUT, UNITS, BATCH, TIME = 3, 4, 3, 6
LAYERS = {
    "simple_tanh": lambda **o: keras.layers.SimpleRNN(UNITS, **o),
    "simple_relu": lambda **o: keras.layers.SimpleRNN(UNITS, activation="relu", **o),
    "lstm": lambda **o: keras.layers.LSTM(UNITS, **o),
    "gru_reset_after": lambda **o: keras.layers.GRU(UNITS, reset_after=True, **o),
    "gru_reset_before": lambda **o: keras.layers.GRU(UNITS, reset_after=False, **o),
}


def make_layer(name, seed=0, use_bias=True, **options):
    """A float32 layer with random (nonzero) biases."""
    bias = keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1)
    return LAYERS[name](dtype="float32", use_bias=use_bias, bias_initializer=bias, **options)


def data(seed=0):
    generator = np.random.default_rng(seed)
    xs = generator.normal(size=(BATCH, TIME, INPUT)).astype(np.float32)
    padded = np.arange(TIME)[None, :] < np.array([[TIME], [2], [4]])  # lengths 6, 2, 4
    holes = generator.random((BATCH, TIME)) < 0.6  # masks with gaps (not prefixes)
    holes[:, 0] = False  # a masked first step: Keras's held output is then the zero state
    return xs, padded, holes


def max_diff(ours, theirs):
    ours, theirs = jax.tree.leaves(ours), jax.tree.leaves([jnp.asarray(t) for t in theirs] if isinstance(
        theirs, (list, tuple)) else theirs)  # fmt: skip
    assert len(ours) == len(theirs)
    return max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(ours, theirs))


OPTIONS = ((False, True), (True, True), (True, False), (False, False))  # (go_backwards, return_sequences)
# Every layer with plain sequences and one rotating other option, so each option meets three layers.
LAYER_CASES = [(name, *OPTIONS[0]) for name in LAYERS] + [
    (name, *OPTIONS[1 + index % 3]) for index, name in enumerate(LAYERS)
]


@pytest.mark.parametrize("name, go_backwards, return_sequences", LAYER_CASES)
def test_layer_matches_keras_with_masks(name, go_backwards, return_sequences):
    layer = make_layer(name, go_backwards=go_backwards, return_sequences=return_sequences, return_state=True)
    xs, padded, holes = data()
    for mask in (None, padded, holes):
        expected = layer(xs, mask=mask)
        net, params = from_keras(layer)
        assert max_diff(net(params, xs, mask=mask), expected) <= TOLERANCE


@pytest.mark.parametrize("name", ["lstm", "gru_reset_before", "simple_tanh"])
def test_layer_without_bias_and_zero_output_for_mask(name):
    layer = make_layer(name, use_bias=False, return_sequences=True, zero_output_for_mask=True)
    xs, padded, _ = data(seed=1)
    expected = layer(xs, mask=padded)
    net, params = from_keras(layer)
    outputs = jax.jit(net)(params, xs, mask=padded)
    assert max_diff(outputs, expected) <= TOLERANCE
    assert jnp.all(outputs[~padded] == 0.0)


@pytest.mark.parametrize(
    "merge_mode, return_sequences", [("concat", True), ("sum", False), ("ave", True), ("mul", False)]
)
def test_bidirectional_matches_keras(merge_mode, return_sequences):
    inner = make_layer("gru_reset_after" if return_sequences else "lstm", return_sequences=return_sequences,
                       return_state=True)  # fmt: skip
    layer = keras.layers.Bidirectional(inner, merge_mode=merge_mode, dtype="float32")
    xs, padded, holes = data(seed=2)
    for mask in (None, padded, holes):
        expected = layer(xs, mask=mask)
        net, params = from_keras(layer)
        assert max_diff(net(params, xs, mask=mask), expected) <= TOLERANCE


def test_sequential_stack_with_masking_matches_keras():
    model = keras.Sequential([
        keras.Input((TIME, INPUT), dtype="float32"),
        keras.layers.Masking(0.0, dtype="float32"),
        make_layer("lstm", seed=1, return_sequences=True),
        keras.layers.Bidirectional(make_layer("gru_reset_before", seed=2, return_sequences=True), dtype="float32"),
        make_layer("simple_tanh", seed=3),
    ])  # fmt: skip
    xs, padded, _ = data(seed=3)
    xs = np.where(padded[..., None], xs, np.float32(0.0))  # Masking: all-zero steps are padding
    net, params = from_keras(model)
    assert net.mask_value == 0.0 and len(params) == 3
    assert max_diff(net(params, xs), model(xs)) <= TOLERANCE


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_hold_masked_outputs_matches_a_loop(batch, time, seed):
    """Keras's masked-step rule, any mask: the previous valid output, zero before the first."""
    generator = np.random.default_rng(seed)
    mask = generator.random((batch, time)) < generator.random()
    ys = np.where(mask[..., None], generator.normal(size=(batch, time, 2)), 0.0)
    expected = np.zeros_like(ys)
    for row in range(batch):
        previous = np.zeros(2)
        for t in range(time):
            previous = ys[row, t] if mask[row, t] else previous
            expected[row, t] = previous
    assert np.array_equal(np.asarray(hold_masked_outputs(jnp.asarray(ys), jnp.asarray(mask))), expected)


def test_weights_keep_the_layer_dtype():
    layer = make_layer("gru_reset_before", return_sequences=True)
    xs, padded, _ = data(seed=5)
    layer(xs)
    net, params = from_keras(layer)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    assert net(params, xs, mask=padded).dtype == jnp.float32



def test_a_float64_layer_with_x64_off_is_refused_instead_of_rounded():
    layer = LAYERS["lstm"](dtype="float64")
    layer(np.zeros((1, TIME, INPUT)))
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="module variable .* weights are float64 but JAX runs in 32-bit mode"):
            from_keras(layer)
    _, params = from_keras(layer)  # x64 on (the test session's default): kept as float64
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float64)}


def built(layer):
    layer(np.zeros((1, TIME, INPUT)))
    return layer


def test_unsupported_options_are_named():
    cases = [
        (keras.layers.LSTM(UNITS, recurrent_dropout=0.1), r"module.recurrent_dropout: expected 0 .*; got 0.1"),
        (keras.layers.GRU(UNITS, dropout=0.2), r"module.dropout: expected 0 .*ignore_dropout=True.*; got 0.2"),
        (keras.layers.SimpleRNN(UNITS, unroll=True), r"module.unroll: expected False .*; got True"),
        (keras.layers.GRU(UNITS, activation="relu"), r"module.activation: expected one of \['tanh'\]; got 'relu'"),
        (keras.layers.LSTM(UNITS, recurrent_activation="hard_sigmoid"),
         r"module.recurrent_activation: expected one of \['sigmoid'\]; got 'hard_sigmoid'"),
        (keras.layers.SimpleRNN(UNITS, activation="gelu"), r"module.activation: expected one of \['tanh', 'relu'\]"),
        (keras.layers.Bidirectional(keras.layers.GRU(UNITS), merge_mode=None),
         r"module.merge_mode: expected one of \['concat', 'sum', 'ave', 'mul'\]; got None"),
    ]  # fmt: skip
    for layer, message in cases:
        with pytest.raises(ValueError, match=message):
            from_keras(built(layer))
    stateful = keras.layers.LSTM(UNITS, stateful=True)
    stateful(np.zeros((1, TIME, INPUT)))
    with pytest.raises(ValueError, match=r"module.stateful: expected False .*; got True"):
        from_keras(stateful)
    net, _ = from_keras(built(keras.layers.GRU(UNITS, dropout=0.2, recurrent_dropout=0.3)), ignore_dropout=True)
    assert len(net.layers) == 1
    with pytest.raises(ValueError, match="module: expected a built layer"):
        from_keras(keras.layers.GRU(UNITS))


def test_unsupported_stacks_are_named():
    dense = keras.Sequential([keras.Input((TIME, INPUT)), keras.layers.LSTM(UNITS, return_sequences=True),
                              keras.layers.Dense(2)])  # fmt: skip
    with pytest.raises(TypeError, match=r"module.layers\[1\]: expected a keras.layers SimpleRNN.*; got Dense"):
        from_keras(dense)
    last_only = keras.Sequential([keras.layers.Masking(), keras.layers.LSTM(UNITS), keras.layers.GRU(UNITS)])
    with pytest.raises(ValueError, match=r"module.layers\[1\].return_sequences: expected True"):
        from_keras(last_only)
    with pytest.raises(TypeError, match="module: expected a keras.layers SimpleRNN.*; got Dense"):
        from_keras(keras.layers.Dense(2))
    xs, padded, _ = data()
    masked = keras.Sequential([keras.Input((TIME, INPUT)), keras.layers.Masking(), keras.layers.GRU(UNITS)])
    net, params = from_keras(masked)
    with pytest.raises(ValueError, match="mask: expected None .*Masking"):
        net(params, xs, mask=padded)
