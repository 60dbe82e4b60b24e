"""Bad input raises a clear ValueError/TypeError naming the argument, expected and actual values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import linen

from rnnjax.core.cells import LSTMState, gru, lstm, make_cell, simple_rnn
from rnnjax.core.unroll import RNN, rnn
from rnnjax.interop import from_flax_cell, from_torch

BATCH, TIME, INPUT, HIDDEN = 2, 5, 3, 4


@pytest.fixture
def setup(key):
    cell = lstm()
    params = cell.init(key, INPUT, HIDDEN, jnp.float64)
    xs = jnp.ones((BATCH, TIME, INPUT), jnp.float64)
    return cell, params, xs


def test_wrong_feature_size(setup):
    cell, params, _ = setup
    expected = r"xs: expected feature size 3 .* got xs.shape=\[2, 5, 7\] with feature size 7"
    with pytest.raises(ValueError, match=expected):
        rnn(cell, params, jnp.ones((BATCH, TIME, 7)))


def test_xs_rank_and_dtype(setup):
    cell, params, _ = setup
    with pytest.raises(ValueError, match=r"xs must have shape \[\*batch, time, features\].*got shape \(3,\)"):
        rnn(cell, params, jnp.ones(INPUT))
    with pytest.raises(TypeError, match="xs must be a floating-point array; got dtype int"):
        rnn(cell, params, jnp.ones((BATCH, TIME, INPUT), jnp.int32))
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    expected = "xs: expected a dtype no wider than the cell's float32 carry.*got dtype float64"
    with pytest.raises(TypeError, match=expected):
        rnn(cell, params32, jnp.ones((BATCH, TIME, INPUT), jnp.float64))


WRONG_SHAPES = [(jnp.array([1, 2, 3]), r"\[3\]"), (jnp.array(2), r"\[\]"), (jnp.ones((2, 1), int), r"\[2, 1\]")]


@pytest.mark.parametrize("lengths, expected", WRONG_SHAPES)
def test_lengths_of_wrong_shape(setup, lengths, expected):
    cell, params, xs = setup
    with pytest.raises(ValueError, match=rf"lengths: expected shape \[2\] \(the batch shape of xs\); got {expected}"):
        rnn(cell, params, xs, lengths=lengths)


@pytest.mark.parametrize("lengths, low, high", [([-1, 3], -1, 3), ([2, 6], 2, 6)])
def test_lengths_out_of_range(setup, lengths, low, high):
    cell, params, xs = setup
    with pytest.raises(ValueError, match=rf"lengths must lie in \[0, 5\].*got values in \[{low}, {high}\]"):
        rnn(cell, params, xs, lengths=jnp.array(lengths))


@pytest.mark.parametrize("lengths", [jnp.array([1.0, 2.0]), [1.5, 2.0], jnp.array([True, False])])
def test_non_integer_lengths(setup, lengths):
    cell, params, xs = setup
    with pytest.raises(TypeError, match="lengths must be an integer array; got dtype (float|bool)"):
        rnn(cell, params, xs, lengths=lengths)


def test_mask_and_lengths_together(setup):
    cell, params, xs = setup
    with pytest.raises(ValueError, match="give either lengths or mask, not both"):
        rnn(cell, params, xs, lengths=jnp.array([1, 2]), mask=jnp.ones((BATCH, TIME), bool))


@pytest.mark.parametrize("argument", ["mask", "reset"])
def test_mask_and_reset_shape_and_dtype(setup, argument):
    cell, params, xs = setup
    with pytest.raises(ValueError, match=rf"{argument}: expected shape \[2, 5\] \(\[\*batch, time\]\); got \[2, 4\]"):
        rnn(cell, params, xs, **{argument: jnp.ones((BATCH, TIME - 1), bool)})
    with pytest.raises(TypeError, match=rf"{argument} must be a boolean array of shape \[2, 5\]; got dtype int"):
        rnn(cell, params, xs, **{argument: jnp.ones((BATCH, TIME), int)})


def test_carry_of_wrong_shape_or_structure(setup):
    cell, params, xs = setup
    bad = LSTMState(h=jnp.zeros((BATCH, HIDDEN + 1)), c=jnp.zeros((BATCH, HIDDEN + 1)))
    expected = r"initial_carry: expected shape \[2, 4\] \(\[\*batch, hidden\]\) or \[4\]; got \[2, 5\]"
    with pytest.raises(ValueError, match=expected):
        rnn(cell, params, xs, initial_carry=bad)
    with pytest.raises(ValueError, match=r"initial_carry must have the structure .*LSTMState.*; got PyTreeDef\(\*\)"):
        rnn(cell, params, xs, initial_carry=jnp.zeros((BATCH, HIDDEN)))
    simple = simple_rnn()
    simple_params = simple.init(jax.random.key(0), INPUT, HIDDEN, jnp.float64)
    with pytest.raises(ValueError, match=r"initial_carry: expected shape \[2, 4\] .*; got \[3, 4\]"):
        rnn(simple, simple_params, xs, initial_carry=jnp.zeros((3, HIDDEN)))


def test_network_options_and_carries(setup):
    cell, _, xs = setup
    with pytest.raises(ValueError, match="num_layers must be >= 1; got 0"):
        RNN(cell, HIDDEN, num_layers=0)
    with pytest.raises(TypeError, match=r"hidden_size must be an int; got 4.0 \(float\)"):
        RNN(cell, 4.0)
    with pytest.raises(ValueError, match=r"dropout must be < 1; got 1.0"):
        RNN(cell, HIDDEN, dropout=1.0)
    with pytest.raises(ValueError, match="merge must be one of 'concat', 'sum', 'mean', 'mul'; got 'max'"):
        RNN(cell, HIDDEN, bidirectional=True, merge="max")
    net = RNN(cell, HIDDEN, num_layers=2)
    params = net.init(jax.random.key(0), INPUT, jnp.float64)
    with pytest.raises(ValueError, match=r"initial_carry must have one entry per layer \(2\); got 1"):
        net.apply(params, xs, initial_carry=((cell.initial_carry(params["layers"][0][0]),),))



MISMATCHES = {
    "1-layer params in a 2-layer net": (RNN(gru(), HIDDEN, num_layers=2), RNN(gru(), HIDDEN),
                                        r"expected 2 layer\(s\) of 1 direction\(s\), got 1 layer\(s\) of \[1\]"),
    "bidirectional params in a one-way net": (RNN(gru(), HIDDEN), RNN(gru(), HIDDEN, bidirectional=True),
                                              r"expected 1 layer\(s\) of 1 direction\(s\), got 1 layer\(s\) of \[2\]"),
    "one-way params in a bidirectional net": (RNN(gru(), HIDDEN, bidirectional=True), RNN(gru(), HIDDEN),
                                              r"\[0\]\[1\]\['input_bias'\]: expected \(12,\), got \(absent"),
    "hidden 6 in a hidden 4 net": (RNN(gru(), HIDDEN), RNN(gru(), 6), r"expected \(12,\), got \(18,\)"),
    "GRU params in an LSTM net": (RNN(lstm(), HIDDEN), RNN(gru(), HIDDEN), r"\['bias'\]: expected \(16,\), got"),
    "2-layer params in a 1-layer net": (RNN(gru(), HIDDEN), RNN(gru(), HIDDEN, num_layers=2),
                                        r"expected 1 layer\(s\) of 1 direction\(s\), got 2 layer\(s\)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_params_that_do_not_match_the_network_are_refused(case):
    net, other, message = MISMATCHES[case]
    params = other.init(jax.random.key(0), INPUT, jnp.float64)
    xs = jnp.ones((BATCH, TIME, INPUT), jnp.float64)
    with pytest.raises(ValueError, match="params do not match this RNN .*" + message):
        net.apply(params, xs)
    with pytest.raises(ValueError, match="params do not match this RNN"):
        jax.jit(net.apply)(params, xs)  # refused when traced too
    own = net.init(jax.random.key(0), INPUT, jnp.float64)
    net.apply(own, xs)  # its own params run
    net.apply(jax.tree.map(lambda leaf: leaf, {"layers": [list(layer) for layer in own["layers"]]}), xs)  # lists too


def test_params_of_another_input_size_are_named_by_the_input_check():
    net = RNN(gru(), HIDDEN, num_layers=2)
    params = net.init(jax.random.key(0), INPUT + 2, jnp.float64)
    with pytest.raises(ValueError, match=r"xs: expected feature size 5 \(the cell's input size\)"):
        net.apply(params, jnp.ones((BATCH, TIME, INPUT), jnp.float64))



def test_cell_options():
    with pytest.raises(ValueError, match="name must be one of .*'lstm'.*; got 'transformer'"):
        make_cell("transformer")
    with pytest.raises(ValueError, match="activation must be one of 'tanh', 'relu'; got 'sigmoid'"):
        simple_rnn("sigmoid")
    with pytest.raises(ValueError, match="convention must be one of 'pytorch', 'cho'; got 'keras'"):
        gru("keras")
    with pytest.raises(ValueError, match="hidden_size must be >= 1; got 0"):
        lstm().init(jax.random.key(0), INPUT, 0)
    with pytest.raises(TypeError, match=r"input_size must be an int; got 3.0 \(float\)"):
        lstm().init(jax.random.key(0), 3.0, HIDDEN)


# --------------------------------------------------------------------------- interop


def test_torch_unsupported_modules_and_options():
    with pytest.raises(ValueError, match="module.proj_size: expected 0 .*; got 2"):
        from_torch(torch.nn.LSTM(INPUT, HIDDEN, proj_size=2))
    with pytest.raises(TypeError, match="module: expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU; got LSTMCell"):
        from_torch(torch.nn.LSTMCell(INPUT, HIDDEN))
    with pytest.raises(TypeError, match="got Linear"):
        from_torch(torch.nn.Linear(INPUT, HIDDEN))


def test_torch_net_mismatched_inputs():
    module = torch.nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, batch_first=True).double()
    net, params = from_torch(module)
    xs = np.ones((BATCH, TIME, INPUT))
    with pytest.raises(ValueError, match="xs: expected feature size 3 .* with feature size 5"):
        net(params, np.ones((BATCH, TIME, 5)))
    with pytest.raises(ValueError, match=r"xs: expected \[batch, time, input\].*got shape \(1, 2, 5, 3\)"):
        net(params, np.ones((1, BATCH, TIME, INPUT)))
    with pytest.raises(ValueError, match=r"lengths: expected shape \[2\]"):
        net(params, xs, np.array([5, 5, 5]))
    with pytest.raises(ValueError, match=r"initial_state: expected h_0 of shape \[4, 2, 4\] .*; got \[2, 2, 4\]"):
        net(params, xs, initial_state=np.zeros((2, BATCH, HIDDEN)))
    lstm_net, lstm_params = from_torch(torch.nn.LSTM(INPUT, HIDDEN).double())
    with pytest.raises(ValueError, match=r"initial_state: expected a pair \(h_0, c_0\) for an LSTM; got ndarray"):
        lstm_net(lstm_params, np.ones((TIME, BATCH, INPUT)), initial_state=np.zeros((1, BATCH, HIDDEN)))


def test_flax_unsupported_cells():
    x = jnp.ones((1, INPUT))
    with pytest.raises(TypeError, match="module: expected a flax.linen LSTMCell.*; got MGUCell"):
        from_flax_cell(linen.MGUCell(HIDDEN), {})
    module = linen.LSTMCell(HIDDEN, gate_fn=jax.nn.hard_sigmoid)
    variables = module.init(jax.random.key(0), module.initialize_carry(jax.random.key(0), x.shape), x)
    with pytest.raises(ValueError, match="module.gate_fn: expected jax.nn.sigmoid"):
        from_flax_cell(module, variables)
    residual = linen.SimpleCell(HIDDEN, residual=True)
    with pytest.raises(ValueError, match="module.residual: expected False"):
        from_flax_cell(residual, {})
    gelu = linen.GRUCell(HIDDEN, activation_fn=jax.nn.gelu)
    with pytest.raises(ValueError, match=r"module.activation_fn: expected one of \['tanh'\]"):
        from_flax_cell(gelu, {})
