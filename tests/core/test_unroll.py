"""Unrolling: scan vs loop, vmap, jit, layouts, padding, reverse, resets, stacked/bidirectional nets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnnjax.core.cells import CELL_NAMES, lstm, make_cell
from rnnjax.core.unroll import RNN, Merge, merge_directions, rnn

BATCH, TIME, INPUT, HIDDEN = 3, 7, 2, 4
EXACT = 1e-12


def setup(name, key, dtype=jnp.float64, batch_shape=(BATCH,)):
    cell = make_cell(name)
    params = cell.init(key, INPUT, HIDDEN, dtype)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (*batch_shape, TIME, INPUT), dtype)
    return cell, params, xs


def loop(cell, params, xs, carry=None):
    """Reference: a plain Python loop over cell.step for ONE unbatched sequence [time, input]."""
    carry = cell.initial_carry(params) if carry is None else carry
    ys = []
    for t in range(xs.shape[0]):
        carry, y = cell.step(params, carry, xs[t])
        ys.append(y)
    return jnp.stack(ys) if ys else jnp.zeros((0, cell.output_size(params)), xs.dtype), carry


def assert_close(a, b, atol=EXACT):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.shape == y.shape, (x.shape, y.shape)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol)


def pick(tree, *index):
    return jax.tree.map(lambda leaf: leaf[index], tree)


def random_lengths(key, batch_shape=(BATCH,), low=0):
    lengths = jax.random.randint(key, batch_shape, low, TIME + 1)
    return lengths.at[(0,) * len(batch_shape)].set(TIME)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_scan_matches_loop_vmap_and_jit(name, key):
    cell, params, xs = setup(name, key)
    ys, final = rnn(cell, params, xs)
    for b in range(BATCH):  # vmap-over-examples inside rnn == a loop over examples
        assert_close((ys[b], pick(final, b)), loop(cell, params, xs[b]))
    assert_close((ys, final), jax.jit(lambda p, x: rnn(cell, p, x))(params, xs))


@pytest.mark.parametrize("name", ["lstm", "linear_complex_diagonal"])
def test_vmap_of_unbatched_rnn_and_unroll(name, key):
    cell, params, xs = setup(name, key)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    expected = rnn(cell, params, xs, lengths=lengths)
    assert_close(jax.vmap(lambda x, n: rnn(cell, params, x, lengths=n))(xs, lengths), expected)
    assert_close(rnn(cell, params, xs, lengths=lengths, unroll=3), expected)


@pytest.mark.parametrize("name", ["lstm", "gru_cho", "linear_complex_diagonal"])
def test_leading_batch_dims_and_time_major(name, key):
    cell, params, xs = setup(name, key, batch_shape=(2, 3))
    lengths = random_lengths(jax.random.fold_in(key, 2), (2, 3))
    ys, final = rnn(cell, params, xs, lengths=lengths)
    flat_ys, flat_final = rnn(cell, params, xs.reshape(6, TIME, INPUT), lengths=lengths.reshape(6))
    assert_close((ys.reshape(6, TIME, -1), jax.tree.map(lambda c: c.reshape(6, -1), final)), (flat_ys, flat_final))
    time_major_ys, time_major_final = rnn(cell, params, jnp.moveaxis(xs, 2, 0), lengths=lengths, time_major=True)
    assert_close((jnp.moveaxis(time_major_ys, 0, 2), time_major_final), (ys, final))
    single_ys, single_final = rnn(cell, params, xs[1, 2, : lengths[1, 2]])  # no batch dims at all
    assert_close((ys[1, 2, : lengths[1, 2]], pick(final, 1, 2)), (single_ys, single_final))


SOME_CELLS = ("simple_relu", "lstm", "gru_cho", "linear_complex_diagonal")  # one per family, for costlier tests
PADDING_CASES = [(name, reverse) for name in SOME_CELLS for reverse in (False, True)]


@pytest.mark.parametrize("name, reverse", PADDING_CASES)
def test_padding_matches_each_sequence_alone(name, reverse, key):
    """Random lengths, random pad values, extra pad steps: valid outputs and final carries unchanged."""
    cell, params, xs = setup(name, key)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    pad_values = 100.0 * jax.random.normal(jax.random.fold_in(key, 3), (BATCH, TIME + 3, INPUT), xs.dtype)
    valid = jnp.arange(TIME)[:, None] < lengths[:, None, None]
    padded = pad_values.at[:, :TIME].set(jnp.where(valid, xs, pad_values[:, :TIME]))
    ys, final = rnn(cell, params, padded, lengths=lengths, reverse=reverse)
    for b in range(BATCH):
        length = int(lengths[b])
        sequence = xs[b, :length]
        alone_ys, alone_final = loop(cell, params, sequence[::-1] if reverse else sequence)
        assert_close((ys[b, :length], pick(final, b)), (alone_ys[::-1] if reverse else alone_ys, alone_final))
        assert jnp.all(ys[b, length:] == 0.0)


@pytest.mark.parametrize("reverse", [False, True])
def test_mask_equals_lengths_and_holds_carry_at_gaps(reverse, key):
    cell, params, xs = setup("gru_cho", key)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    prefix = jnp.arange(TIME) < lengths[:, None]
    expected = rnn(cell, params, xs, lengths=lengths, reverse=reverse)
    assert_close(rnn(cell, params, xs, mask=prefix, reverse=reverse), expected)
    gaps = jax.random.bernoulli(jax.random.fold_in(key, 3), 0.6, (BATCH, TIME))
    ys, final = rnn(cell, params, xs, mask=gaps, reverse=reverse)
    for b in range(BATCH):  # a masked-out step is skipped: same as deleting it
        kept = np.flatnonzero(np.asarray(gaps[b]))
        alone_ys, alone_final = loop(cell, params, xs[b, kept][::-1] if reverse else xs[b, kept])
        assert_close((ys[b, kept], pick(final, b)), (alone_ys[::-1] if reverse else alone_ys, alone_final))
        assert jnp.all(ys[b, ~np.asarray(gaps[b])] == 0.0)


def test_zero_length_sequence_keeps_initial_carry(key):
    cell, params, xs = setup("lstm", key)
    start = jax.tree.map(lambda c: c + 0.5, cell.initial_carry(params, (BATCH,)))
    ys, final = rnn(cell, params, xs, lengths=jnp.array([TIME, 0, 2]), initial_carry=start)
    assert jnp.all(ys[1] == 0.0)
    assert_close(pick(final, 1), pick(start, 1))


def net_loop(net, params, xs):
    """Reference for RNN.apply on ONE unpadded sequence: Python loops, reversal by flipping."""
    finals = []
    for layer in params["layers"]:
        forward_ys, forward_final = loop(net.cell, layer[0], xs)
        outputs, carries = [forward_ys], [forward_final]
        if net.bidirectional:
            backward_ys, backward_final = loop(net.cell, layer[1], xs[::-1])
            outputs.append(backward_ys[::-1])
            carries.append(backward_final)
        xs = merge_directions(net.merge, *outputs) if net.bidirectional else outputs[0]
        finals.append(tuple(carries))
    return xs, tuple(finals)


@pytest.mark.parametrize("merge", ["concat", "mul"])
def test_bidirectional_stack_on_padded_batch_matches_unpadded(merge, key):
    net = RNN(make_cell("gru"), HIDDEN, num_layers=2, bidirectional=True, merge=merge)
    params = net.init(key, INPUT, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (BATCH, TIME, INPUT), jnp.float64)
    lengths = random_lengths(jax.random.fold_in(key, 2), low=1)
    xs = jnp.where(jnp.arange(TIME)[:, None] < lengths[:, None, None], xs, 7.0)
    ys, finals = net.apply(params, xs, lengths=lengths)
    assert ys.shape[-1] == net.output_size(params) == (2 * HIDDEN if merge == "concat" else HIDDEN)
    for b in range(BATCH):
        length = int(lengths[b])
        assert_close((ys[b, :length], pick(finals, b)), net_loop(net, params, xs[b, :length]))
        assert jnp.all(ys[b, length:] == 0.0)


def test_merge_directions(key):
    forward, backward = jax.random.normal(key, (2, 3, 4))
    assert_close(merge_directions(Merge.CONCAT, forward, backward), jnp.concatenate([forward, backward], -1))
    assert_close(merge_directions(Merge.SUM, forward, backward), forward + backward)
    assert_close(merge_directions(Merge.MEAN, forward, backward), (forward + backward) / 2)
    assert_close(merge_directions(Merge.MUL, forward, backward), forward * backward)


def test_stacked_bidirectional_matches_manual_composition(key):
    cell = lstm()
    net = RNN(cell, HIDDEN, num_layers=2, bidirectional=True, merge="sum")
    params = net.init(key, INPUT, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (BATCH, TIME, INPUT), jnp.float64)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    inputs, expected_finals = xs, []
    for forward, backward in params["layers"]:
        ys_f, final_f = rnn(cell, forward, inputs, lengths=lengths)
        ys_b, final_b = rnn(cell, backward, inputs, lengths=lengths, reverse=True)
        inputs = ys_f + ys_b
        expected_finals.append((final_f, final_b))
    assert_close(net.apply(params, xs, lengths=lengths), (inputs, tuple(expected_finals)))


def segments_alone(cell, params, xs, start, boundaries, reverse):
    """Reference: run each segment [a, b) alone from `start`; reversed segments for `reverse`."""
    outputs, carry = [], start
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        segment = xs[a:b][::-1] if reverse else xs[a:b]
        ys, final = loop(cell, params, segment, start)
        outputs.append(ys[::-1] if reverse else ys)
        if (b > a) and (not reverse or a == boundaries[0]):
            carry = final  # forward: the last segment's carry; reverse: the first segment's
    return jnp.concatenate(outputs), carry


RESET_CASES = [("simple_tanh", False), ("lstm", True), ("gru_pytorch", False), ("linear_complex_diagonal", True)]


@pytest.mark.parametrize("name, reverse", RESET_CASES)
def test_reset_equals_starting_a_fresh_sequence(name, reverse, key):
    cell, params, xs = setup(name, key)
    start = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(params, (BATCH,)))
    lengths = jnp.array([TIME, 6, 4])
    resets = [[2, 5], [0, 3], [1, 5]]  # 0: a reset at the first step is a no-op; 5 >= length 4: ignored
    reset = jnp.array([[t in r for t in range(TIME)] for r in resets])
    ys, final = rnn(cell, params, xs, lengths=lengths, initial_carry=start, reset=reset, reverse=reverse)
    for b in range(BATCH):
        length = int(lengths[b])
        boundaries = [0] + [t for t in resets[b] if 0 < t < length] + [length]
        expected = segments_alone(cell, params, xs[b], pick(start, b), boundaries, reverse)
        assert_close((ys[b, :length], pick(final, b)), expected)
        assert jnp.all(ys[b, length:] == 0.0)


def test_learnable_initial_carry_is_used_and_gets_gradients(key):
    net = RNN(lstm(), HIDDEN, num_layers=2, bidirectional=True, learn_initial_carry=True)
    params = net.init(key, INPUT, jnp.float64)
    params["initial_carry"] = jax.tree.map(lambda c: c + 0.2, params["initial_carry"])
    xs = jax.random.normal(jax.random.fold_in(key, 1), (BATCH, TIME, INPUT), jnp.float64)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    ys, _ = jax.jit(net.apply)(params, xs, lengths=lengths)
    plain = jax.jit(RNN(lstm(), HIDDEN, num_layers=2, bidirectional=True).apply)
    assert_close(ys, plain({"layers": params["layers"]}, xs, lengths=lengths, initial_carry=params["initial_carry"])[0])
    assert not jnp.allclose(ys, plain({"layers": params["layers"]}, xs, lengths=lengths)[0])

    def loss(params):
        return jnp.sum(net.apply(params, xs, lengths=lengths)[0] ** 2)

    grads = jax.jit(jax.grad(loss))(params)["initial_carry"]
    assert all(float(jnp.abs(g).max()) > 1e-6 for g in jax.tree.leaves(grads))


def test_dropout_only_between_layers_and_only_with_key(key):
    cell = make_cell("gru")
    net = RNN(cell, HIDDEN, num_layers=2, dropout=0.5)
    no_dropout = RNN(cell, HIDDEN, num_layers=2)
    params = net.init(key, INPUT, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (BATCH, TIME, INPUT), jnp.float64)
    dropout_key = jax.random.key(42)
    assert_close(net.apply(params, xs), no_dropout.apply(params, xs))  # no key: deterministic, no dropout
    dropped, _ = net.apply(params, xs, dropout_key=dropout_key)
    assert not jnp.allclose(dropped, no_dropout.apply(params, xs)[0])
    assert_close(dropped, net.apply(params, xs, dropout_key=dropout_key)[0])  # same key, same mask
    # Manual: layer 0, then inverted dropout, then layer 1 (and nothing after the last layer).
    hidden, _ = rnn(cell, params["layers"][0][0], xs)
    kept = jax.random.bernoulli(jax.random.fold_in(dropout_key, 0), 0.5, hidden.shape)
    assert 0 < int(kept.sum()) < kept.size
    expected, _ = rnn(cell, params["layers"][1][0], jnp.where(kept, hidden / 0.5, 0.0))
    assert_close(dropped, expected)
    single = RNN(cell, HIDDEN, num_layers=1, dropout=0.5)
    one_layer = {"layers": params["layers"][:1]}
    assert_close(single.apply(one_layer, xs, dropout_key=dropout_key), single.apply(one_layer, xs))


@pytest.mark.parametrize("name", SOME_CELLS)
def test_float32_matches_float64(name, key):
    cell, params, xs = setup(name, key)
    lengths = random_lengths(jax.random.fold_in(key, 2))
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    ys32, final32 = rnn(cell, params32, xs.astype(jnp.float32), lengths=lengths)
    ys64, final64 = rnn(cell, params, xs, lengths=lengths)
    assert ys32.dtype == jnp.float32 and ys64.dtype == jnp.float64
    assert all(leaf.real.dtype == jnp.float32 for leaf in jax.tree.leaves(final32))
    assert_close(ys32.astype(jnp.float64), ys64, atol=1e-5)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradients_float64(name, key):
    cell, params, xs = setup(name, key)
    lengths = jnp.array([TIME, 3, 1])
    start = jax.tree.map(lambda c: c + 0.1, cell.initial_carry(params, (BATCH,)))

    @jax.jit
    def outputs(params, xs, start):
        ys, final = rnn(cell, params, xs, lengths=lengths, initial_carry=start, reverse=True)
        return ys, jax.tree.map(lambda c: c.real, final)

    check_grads(outputs, (params, xs, start), order=1, modes=("rev",))


def test_network_gradient_through_padding_is_zero_for_pad_values(key):
    net = RNN(lstm(), HIDDEN, num_layers=2, bidirectional=True)
    params = net.init(key, INPUT, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (BATCH, TIME, INPUT), jnp.float64)
    lengths = jnp.array([TIME, 4, 2])

    def loss(xs):
        ys, finals = net.apply(params, xs, lengths=lengths)
        return jnp.sum(ys**2) + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(finals))

    grads = jax.jit(jax.grad(loss))(xs)
    valid = jnp.arange(TIME)[None, :] < lengths[:, None]
    assert jnp.all(jnp.where(valid[..., None], 0.0, grads) == 0.0)
    assert jnp.all(jnp.any(grads != 0.0, axis=-1)[valid])
