"""Parity with PyTorch (float64, max abs diff <= 1e-9) and with flax.linen cells."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import linen
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnjax.core.unroll import rnn
from rnnjax.interop import TorchMode, from_flax_carry, from_flax_cell, from_torch

TOLERANCE = 1e-9
MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
# Per mode, three (bidirectional, batch_first, bias) settings that give every flag both values;
# the number of layers (1, 2, 3) is rotated against them so each mode sees every depth.
FLAGS = ((False, True, True), (True, False, False), (True, True, True))
CASES = [
    (mode, layers, *FLAGS[(layers - 1 + index) % 3])
    for index, mode in enumerate(MODES)
    for layers in (1, 2, 3)
]


def make_torch(mode, num_layers=1, bidirectional=False, batch_first=False, bias=True, input_size=3, hidden=4, seed=0):
    torch.manual_seed(seed)
    options = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if mode == "LSTM":
        module = torch.nn.LSTM(input_size, hidden, **options)
    elif mode == "GRU":
        module = torch.nn.GRU(input_size, hidden, **options)
    else:
        nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
        module = torch.nn.RNN(input_size, hidden, nonlinearity=nonlinearity, **options)
    return module.double()


def random_batch(batch_first, batch=4, time=6, features=3, seed=1):
    generator = np.random.default_rng(seed)
    shape = (batch, time, features) if batch_first else (time, batch, features)
    xs = generator.normal(size=shape)
    lengths = generator.integers(1, time + 1, size=batch)
    lengths[0] = time  # one full-length row; the rest random (torch needs lengths >= 1)
    return xs, lengths


def torch_run(module, xs, lengths=None, initial_state=None):
    """Torch forward; with lengths via pack_padded_sequence, padded back to the full time axis."""
    inputs = torch.tensor(xs, requires_grad=True)
    if lengths is None:
        outputs, state = module(inputs, initial_state)
    else:
        total = xs.shape[1] if module.batch_first else xs.shape[0]
        packed = pack_padded_sequence(inputs, torch.tensor(lengths), module.batch_first, enforce_sorted=False)
        outputs, state = module(packed, initial_state)
        outputs, _ = pad_packed_sequence(outputs, batch_first=module.batch_first, total_length=total)
    return inputs, outputs, state


def max_diff(ours, theirs):
    """Max abs difference over matching pytrees (torch tensors vs jax arrays)."""
    ours_leaves = jax.tree.leaves(ours)
    theirs_leaves = [t.detach().numpy() for t in (theirs if isinstance(theirs, tuple) else (theirs,))]
    assert len(ours_leaves) == len(theirs_leaves)
    for a, b in zip(ours_leaves, theirs_leaves):
        assert a.shape == b.shape, (a.shape, b.shape)
    return max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(ours_leaves, theirs_leaves))


@pytest.mark.parametrize("mode, num_layers, bidirectional, batch_first, bias", CASES)
def test_forward_matches_torch_on_padded_batch(mode, num_layers, bidirectional, batch_first, bias):
    module = make_torch(mode, num_layers, bidirectional, batch_first, bias)
    net, params = from_torch(module)
    assert net.mode is TorchMode(mode)
    xs, lengths = random_batch(batch_first)
    _, expected, expected_state = torch_run(module, xs, lengths)
    outputs, state = net(params, xs, lengths)
    theirs = (expected, *(expected_state if mode == "LSTM" else (expected_state,)))
    assert max_diff((outputs, state), theirs) <= TOLERANCE
    time_axis = 1 if batch_first else 0
    for row, length in enumerate(lengths):
        padded = outputs[row, length:] if batch_first else outputs[length:, row]
        assert jnp.all(padded == 0.0)
    assert outputs.shape[time_axis] == xs.shape[time_axis]


@pytest.mark.parametrize("mode", MODES)
def test_forward_matches_torch_unpadded_jit_and_initial_state(mode):
    module = make_torch(mode, num_layers=2, bidirectional=True, batch_first=True)
    net, params = from_torch(module)
    xs, _ = random_batch(batch_first=True)
    generator = np.random.default_rng(5)
    states = [generator.normal(size=(4, xs.shape[0], 4)) for _ in range(2 if mode == "LSTM" else 1)]
    torch_state = tuple(torch.tensor(s) for s in states) if mode == "LSTM" else torch.tensor(states[0])
    our_state = tuple(states) if mode == "LSTM" else states[0]
    _, expected, expected_state = torch_run(module, xs, initial_state=torch_state)
    outputs, state = jax.jit(net)(params, xs, initial_state=our_state)
    theirs = (expected, *(expected_state if mode == "LSTM" else (expected_state,)))
    assert max_diff((outputs, state), theirs) <= TOLERANCE


@pytest.mark.parametrize("mode", ("LSTM", "GRU"))
def test_unbatched_input_matches_torch(mode):
    module = make_torch(mode, num_layers=2, bidirectional=True)
    net, params = from_torch(module)
    xs = np.random.default_rng(2).normal(size=(5, 3))
    _, expected, expected_state = torch_run(module, xs)
    outputs, state = net(params, xs)
    theirs = (expected, *(expected_state if mode == "LSTM" else (expected_state,)))
    assert max_diff((outputs, state), theirs) <= TOLERANCE


def test_trimmed_torch_output_is_our_prefix():
    """Without total_length, pad_packed_sequence stops at max(lengths); ours keeps all steps (zeros)."""
    module = make_torch("GRU", bidirectional=True, batch_first=True)
    net, params = from_torch(module)
    xs, lengths = random_batch(batch_first=True, time=7)
    lengths[0] = 5
    packed = pack_padded_sequence(torch.tensor(xs), torch.tensor(lengths), True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(module(packed)[0], batch_first=True)
    outputs, _ = net(params, xs, lengths)
    assert expected.shape[1] == lengths.max() < xs.shape[1]
    assert max_diff(outputs[:, : expected.shape[1]], expected) <= TOLERANCE
    assert jnp.all(outputs[:, expected.shape[1] :] == 0.0)


@pytest.mark.parametrize("mode, batch_first", [("RNN_TANH", True), ("RNN_RELU", False), ("LSTM", False), ("GRU", True)])
def test_input_gradients_match_torch(mode, batch_first):
    module = make_torch(mode, num_layers=2, bidirectional=True, batch_first=batch_first)
    net, params = from_torch(module)
    xs, lengths = random_batch(batch_first, seed=3)
    generator = np.random.default_rng(4)
    inputs, outputs, state = torch_run(module, xs, lengths)
    state = state if mode == "LSTM" else (state,)
    weights = [generator.normal(size=t.shape) for t in (outputs, *state)]
    loss = sum((t * torch.tensor(w)).sum() for t, w in zip((outputs, *state), weights))
    loss.backward()

    def our_loss(xs):
        outputs, state = net(params, xs, lengths)
        return sum(jnp.sum(t * w) for t, w in zip(jax.tree.leaves((outputs, state)), weights))

    gradient = jax.grad(our_loss)(jnp.asarray(xs))
    assert float(jnp.max(jnp.abs(gradient - inputs.grad.numpy()))) <= TOLERANCE


def test_float32_module_keeps_dtype():
    module = torch.nn.LSTM(3, 4, batch_first=True)
    net, params = from_torch(module)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    xs, lengths = random_batch(batch_first=True)
    xs = xs.astype(np.float32)
    _, expected, _ = torch_run(module, xs, lengths)
    outputs, _ = net(params, xs, lengths)
    assert outputs.dtype == jnp.float32
    assert max_diff(outputs, expected) <= 1e-5


def test_dropout_is_ignored_like_eval_mode():
    module = make_torch("LSTM", num_layers=2)
    module.dropout = 0.5
    module.eval()
    net, params = from_torch(module)
    xs, lengths = random_batch(batch_first=False)
    _, expected, _ = torch_run(module, xs, lengths)
    assert max_diff(net(params, xs, lengths)[0], expected) <= TOLERANCE


# --------------------------------------------------------------------------- flax.linen


def perturbed_flax(module, input_size, seed):
    """Flax init has zero biases: add noise to every leaf so that every parameter matters."""
    x = jnp.zeros((2, input_size), jnp.float64)
    carry = module.initialize_carry(jax.random.key(seed), x.shape)
    variables = module.init(jax.random.key(seed), carry, x)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [leaf + 0.3 * jax.random.normal(k, leaf.shape, leaf.dtype) for leaf, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, noisy)


FLAX_CELLS = [
    lambda: linen.LSTMCell(4, param_dtype=jnp.float64),
    lambda: linen.OptimizedLSTMCell(4, param_dtype=jnp.float64),
    lambda: linen.GRUCell(4, param_dtype=jnp.float64),
    lambda: linen.SimpleCell(4, param_dtype=jnp.float64),
    lambda: linen.SimpleCell(4, activation_fn=linen.relu, param_dtype=jnp.float64),
]


@pytest.mark.parametrize("make_module", FLAX_CELLS, ids=["lstm", "optimized_lstm", "gru", "simple_tanh", "simple_relu"])
def test_flax_cell_step_by_step_parity(make_module):
    module = make_module()
    variables = perturbed_flax(module, input_size=3, seed=0)
    cell, params = from_flax_cell(module, variables)
    xs = jax.random.normal(jax.random.key(7), (2, 6, 3), jnp.float64)
    flax_carry = module.initialize_carry(jax.random.key(0), (2, 3))
    flax_carry = jax.tree.map(lambda c: c + 0.5, flax_carry)  # nonzero start
    carry = from_flax_carry(module, flax_carry)
    start = carry
    flax_outputs = []
    for t in range(xs.shape[1]):
        flax_carry, y_flax = module.apply(variables, flax_carry, xs[:, t])
        carry, y = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, xs[:, t])
        assert float(jnp.max(jnp.abs(y - y_flax))) <= TOLERANCE
        flax_outputs.append(y_flax)
    assert jax.tree.all(jax.tree.map(lambda a, b: jnp.allclose(a, b, rtol=0, atol=TOLERANCE), carry,
                                     from_flax_carry(module, flax_carry)))  # fmt: skip
    ys, _ = rnn(cell, params, xs, initial_carry=start)
    assert float(jnp.max(jnp.abs(ys - jnp.stack(flax_outputs, axis=1)))) <= TOLERANCE


def test_flax_gru_candidate_convention():
    """Flax GRUCell: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h (checked by hand)."""
    module = linen.GRUCell(3, param_dtype=jnp.float64)
    variables = perturbed_flax(module, input_size=2, seed=3)
    p = variables["params"]
    x = jnp.array([0.3, -1.2])
    h = jnp.array([0.5, -0.1, 0.9])

    def dense(name, v):
        return v @ p[name]["kernel"] + p[name].get("bias", 0.0)

    r = jax.nn.sigmoid(dense("ir", x) + dense("hr", h))
    z = jax.nn.sigmoid(dense("iz", x) + dense("hz", h))
    n = jnp.tanh(dense("in", x) + r * dense("hn", h))
    by_hand = (1 - z) * n + z * h
    flax_h, _ = module.apply(variables, h, x)
    cell, params = from_flax_cell(module, variables)
    ours, _ = cell.step(params, h, x)
    assert float(jnp.max(jnp.abs(flax_h - by_hand))) <= TOLERANCE
    assert float(jnp.max(jnp.abs(ours - by_hand))) <= TOLERANCE


def test_a_float64_module_with_x64_off_is_refused_instead_of_rounded():
    module = torch.nn.LSTM(3, 4).double()
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="module: its weights are float64 but JAX runs in 32-bit mode.*x64"):
            from_torch(module)
        net, params = from_torch(torch.nn.LSTM(3, 4))  # float32 is fine either way
        assert params["layers"][0][0]["input_kernel"].dtype == jnp.float32
    net, params = from_torch(module)  # x64 on: kept as float64
    assert params["layers"][0][0]["input_kernel"].dtype == jnp.float64


def _linen_variables(module, size=3):
    x = jnp.ones((1, size))
    return module.init(jax.random.key(0), module.initialize_carry(jax.random.key(0), x.shape), x)


@pytest.mark.parametrize("module, other", [(linen.LSTMCell(4), linen.GRUCell(4)), (linen.GRUCell(4), linen.LSTMCell(4)),
                                           (linen.SimpleCell(4), linen.GRUCell(4)),
                                           (linen.GRUCell(4), linen.SimpleCell(4))])  # fmt: skip
def test_flax_variables_of_another_cell_are_refused_naming_the_layers(module, other):
    with pytest.raises(ValueError, match=rf"params of a flax.linen {type(module).__name__} .*another cell"):
        from_flax_cell(module, _linen_variables(other))
    with pytest.raises(ValueError, match=r"expected the params"):
        from_flax_cell(module, {"params": {}})


def test_flax_variables_of_another_width_are_refused():
    with pytest.raises(ValueError, match=r"\['hi'\]\['kernel'\]: expected shape \(4, 4\) for features=4; got \(6, 6\)"):
        from_flax_cell(linen.LSTMCell(4), _linen_variables(linen.LSTMCell(6)))
    cell, params = from_flax_cell(linen.LSTMCell(4), _linen_variables(linen.LSTMCell(4), size=5))  # any input size
    assert params["input_kernel"].shape == (5, 16)
