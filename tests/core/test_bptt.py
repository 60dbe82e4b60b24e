"""Hand-written BPTT (rnnjax.core.bptt) against JAX autodiff, in float64."""

import jax
import jax.numpy as jnp
import optax
import pytest

from rnnjax.core.bptt import manual_vjp, rnn_manual_vjp
from rnnjax.core.cells import CELL_NAMES, make_cell, min_gru
from rnnjax.core.truncated import chunk_value_and_grad, truncated_bptt_grads
from rnnjax.core.unroll import RNN, rnn

CELLS = list(CELL_NAMES)
BIASES = {"bias", "input_bias", "recurrent_bias", "D"}


def _relative_error(ours, reference):
    errors = jax.tree.map(lambda a, b: jnp.linalg.norm((a - b).ravel()) / jnp.linalg.norm(b.ravel()), ours, reference)
    return max(float(e) for e in jax.tree.leaves(errors))


def _problem(name, key, batch_shape, time_steps, input_size=3, hidden_size=5, with_lengths=False):
    """A cell with random (nonzero) biases, inputs, initial carry, cotangents and lengths."""
    cell = make_cell(name)
    keys = iter(jax.random.split(key, 16))
    params = cell.init(next(keys), input_size, hidden_size, jnp.float64)
    params = {k: v + 0.3 * jax.random.normal(next(keys), v.shape) if k in BIASES else v for k, v in params.items()}
    xs = jax.random.normal(next(keys), (*batch_shape, time_steps, input_size), jnp.float64)

    def random_like(leaf):
        values = 0.5 * jax.random.normal(next(keys), leaf.shape)
        if jnp.iscomplexobj(leaf):
            values = values + 0.5j * jax.random.normal(next(keys), leaf.shape)
        return values.astype(leaf.dtype)

    carry = jax.tree.map(random_like, cell.initial_carry(params, batch_shape))
    lengths = jax.random.randint(next(keys), batch_shape, 0, time_steps + 1) if with_lengths else None
    if with_lengths:  # make sure the extremes occur
        lengths = lengths.reshape(-1).at[0].set(time_steps).at[-1].set(0).reshape(batch_shape)
    return cell, params, xs, carry, lengths, keys


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize(
    "batch_shape,time_steps,with_lengths", [((2, 3), 9, True), ((), 200, False)], ids=["lengths", "long"]
)
def test_backward_matches_autodiff(name, batch_shape, time_steps, with_lengths, key):
    cell, params, xs, carry, lengths, keys = _problem(name, key, batch_shape, time_steps, with_lengths=with_lengths)
    d_ys = jax.random.normal(next(keys), (*batch_shape, time_steps, cell.output_size(params)), jnp.float64)
    d_final = jax.tree.map(lambda leaf: jnp.ones_like(leaf) * (0.7 - 0.2j if jnp.iscomplexobj(leaf) else 0.7), carry)

    @jax.jit  # one compilation for both sides
    def both(params, xs, carry, lengths, d_ys, d_final):
        _, vjp = jax.vjp(lambda p, x, c: rnn(cell, p, x, lengths=lengths, initial_carry=c), params, xs, carry)
        ours = manual_vjp(cell, params, xs, d_ys, initial_carry=carry, lengths=lengths, d_final_carry=d_final)
        return ours, vjp((d_ys, d_final))

    ours, expected = both(params, xs, carry, lengths, d_ys, d_final)
    assert _relative_error(ours, expected) <= 1e-10
    if with_lengths:  # padded steps get exactly zero input gradient
        padded = jnp.arange(time_steps) >= lengths[..., None]
        assert float(jnp.abs(jnp.where(padded[..., None], ours[1], 0.0)).max()) == 0.0


def test_backward_shared_initial_carry_and_default_final(key):
    cell, params, xs, carry, lengths, keys = _problem("gru_cho", key, (4,), 6, with_lengths=True)
    shared = carry[0]
    d_ys = jax.random.normal(next(keys), (4, 6, 5), jnp.float64)

    @jax.jit
    def both(params, xs, shared, d_ys):
        _, vjp = jax.vjp(lambda p, x, c: rnn(cell, p, x, lengths=lengths, initial_carry=c)[0], params, xs, shared)
        return manual_vjp(cell, params, xs, d_ys, initial_carry=shared, lengths=lengths), vjp(d_ys)

    ours, expected = both(params, xs, shared, d_ys)
    assert ours[2].shape == shared.shape
    assert _relative_error(ours, expected) <= 1e-10


def test_manual_vjp_rejects_cells_without_a_rule_and_bad_shapes(key):
    cell, params, xs, _, _, _ = _problem("lstm", key, (2,), 4)
    gated = min_gru()
    gated_params = gated.init(key, 3, 5, jnp.float64)
    with pytest.raises(ValueError, match="cell 'min_gru' has no vjp_rule capability; backward='manual'"):
        manual_vjp(gated, gated_params, xs, jnp.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="cell 'min_gru' has no vjp_rule capability"):
        rnn(gated, gated_params, xs, backward="manual")
    with pytest.raises(ValueError, match=r"params: a 'lstm' cell expects a dict with keys \['bias', 'input_kernel'"):
        manual_vjp(cell, {"input_kernel": params["input_kernel"]}, xs, jnp.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"d_ys: expected shape \[2, 4, 5\]"):
        manual_vjp(cell, params, xs, jnp.zeros((2, 4, 6)))


def _leaky_lstm_recur(params, carry, u):
    """An LSTM whose memory leaks: c' = 0.5 (f c + i g). Not the LSTM maths, same params and name."""
    z = u + carry.h @ params["recurrent_kernel"]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = 0.5 * (jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g))
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return type(carry)(h=h, c=c), h


def test_a_modified_lstm_never_gets_the_lstm_rule(key):
    """Renaming keeps the rule (nothing dispatches on the name); changing the maths loses it."""
    cell, params, xs, _, _, keys = _problem("lstm", key, (2,), 4)
    renamed = cell._replace(name="my_lstm")
    d_ys = jax.random.normal(next(keys), (2, 4, 5), jnp.float64)
    _, vjp = jax.vjp(lambda p: rnn(cell, p, xs)[0], params)
    assert _relative_error(manual_vjp(renamed, params, xs, d_ys)[0], vjp(d_ys)[0]) <= 1e-10

    def step(p, c, x):
        return _leaky_lstm_recur(p, c, cell.project(p, x))

    leaky = cell._replace(recur=_leaky_lstm_recur, step=step)  # still named "lstm"
    for modified in (leaky, cell._replace(step=step), cell._replace(recur=_leaky_lstm_recur)):
        with pytest.raises(ValueError, match="cell 'lstm': its vjp_rule was derived for other"):
            rnn(modified, params, xs, backward="manual")
        with pytest.raises(ValueError, match="its gates was derived for other"):
            from rnnjax.analysis.diagnostics import gate_statistics

            gate_statistics(modified, params, xs)
    # autodiff sees the modified maths
    ys_leaky, _ = rnn(leaky, params, xs)
    assert not jnp.allclose(ys_leaky, rnn(cell, params, xs)[0])


@pytest.mark.parametrize("name", ["lstm", "linear_complex_diagonal"])
def test_manual_vjp_matches_rnn_and_autodiff(name, key):
    cell, params, xs, carry, lengths, keys = _problem(name, key, (4,), 11, with_lengths=True)
    targets = jax.random.normal(next(keys), (4, 11, cell.output_size(params)))

    def loss(forward, p, x, c, lengths):
        ys, final = forward(cell, p, x, lengths=lengths, initial_carry=c, unroll=2)
        return jnp.sum((ys - targets) ** 2) + sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(final))

    def value_and_grads(forward):
        return jax.jit(jax.value_and_grad(lambda *a: loss(forward, *a), argnums=(0, 1, 2)))(params, xs, carry, lengths)

    ours, expected = value_and_grads(rnn_manual_vjp), value_and_grads(rnn)
    assert abs(float(ours[0] - expected[0])) <= 1e-12 * abs(float(expected[0]))
    assert _relative_error(ours[1], expected[1]) <= 1e-10


@pytest.mark.parametrize(
    "hoist, time_major, reverse, use_mask",
    [(False, False, False, False), (True, False, False, False), (False, True, False, False),
     (False, False, True, False), (False, True, True, True), (True, False, False, True)],
)  # fmt: skip
@pytest.mark.parametrize("name", CELLS)
def test_rnn_backward_manual_matches_autodiff(name, hoist, time_major, reverse, use_mask, key):
    """rnn(..., backward="manual") == rnn(...) in value and gradient: projection placements, layouts, reverse, masks."""
    cell, params, xs, carry, lengths, keys = _problem(name, key, (2, 3), 7, with_lengths=True)
    valid = {"lengths": lengths}
    if use_mask:  # holes anywhere, not only a padded tail
        valid = {"mask": jax.random.bernoulli(next(keys), 0.7, (2, 3, 7))}
    if time_major:
        xs = jnp.moveaxis(xs, -2, 0)
    targets = jax.random.normal(next(keys), rnn(cell, params, xs, time_major=time_major)[0].shape)

    def value_and_grads(backward_mode):
        def loss(p, x, c):
            ys, final = rnn(
                cell,
                p,
                x,
                initial_carry=c,
                time_major=time_major,
                reverse=reverse,
                backward=backward_mode,
                hoist_projection=hoist,
                **valid,
            )
            return jnp.sum((ys - targets) ** 2) + sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(final))

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry)

    ours, expected = value_and_grads("manual"), value_and_grads("autodiff")
    assert abs(float(ours[0] - expected[0])) <= 1e-12 * abs(float(expected[0]))
    assert _relative_error(ours[1], expected[1]) <= 1e-10


def test_rnn_backward_manual_rejects_what_it_does_not_support(key):
    cell, params, xs, carry, lengths, _ = _problem("lstm", key, (2,), 5)
    with pytest.raises(ValueError, match="backward='manual' does not support reset"):
        rnn(cell, params, xs, backward="manual", reset=jnp.ones((2, 5), bool))
    with pytest.raises(ValueError, match="backward must be one of 'autodiff', 'manual'; got 'hand'"):
        rnn(cell, params, xs, backward="hand")
    with pytest.raises(ValueError, match="xs: expected feature size 3"):  # rnn's own validation comes first
        rnn(cell, params, xs[..., :2], backward="manual")
    with pytest.raises(ValueError, match="give either lengths or mask, not both"):
        rnn_manual_vjp(cell, params, xs, lengths=jnp.array([5, 5]), mask=jnp.ones((2, 5), bool))


def test_manual_vjp_trains_to_the_same_loss(key):
    """Adam on a tiny LSTM regression: the custom_vjp and autodiff runs follow the same trajectory."""
    cell = make_cell("lstm")
    k_params, k_x, k_w = jax.random.split(key, 3)
    params = cell.init(k_params, 2, 8, jnp.float64)
    xs = jax.random.normal(k_x, (16, 12, 2), jnp.float64)
    targets = jnp.cumsum(xs[..., :1], axis=1) / 4.0  # running sum: needs memory
    readout = jax.random.normal(k_w, (8, 1), jnp.float64) * 0.3
    optimizer = optax.adam(3e-2)

    def train(forward):
        def loss_fn(p):
            ys, _ = forward(cell, p, xs)
            return jnp.mean((ys @ readout - targets) ** 2)

        @jax.jit
        def step(carry, _):
            p, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p)
            updates, opt_state = optimizer.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), loss

        _, losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=60)
        return losses

    ours, reference = train(rnn_manual_vjp), train(rnn)
    assert float(ours[-1]) < 0.5 * float(ours[0])  # it did learn
    assert jnp.allclose(ours, reference, rtol=1e-8, atol=0)


# --------------------------------------------------------------------------- truncated BPTT


def _mse(ys, targets):
    return jnp.sum((ys - targets) ** 2)


def test_truncated_full_window_is_full_bptt(key):
    cell, params, xs, carry, _, keys = _problem("gru_pytorch", key, (3,), 12)
    targets = jax.random.normal(next(keys), (3, 12, 5))

    @jax.jit
    def compute(params, xs, carry, targets):
        full = jax.grad(lambda p: _mse(rnn(cell, p, xs, initial_carry=carry)[0], targets))(params)
        whole = truncated_bptt_grads(_mse, cell, params, xs, targets, 12, 12, initial_carry=carry)
        # k2 >= time: every chunk sees the whole history, so the chunk gradients add up to full BPTT
        chunks = truncated_bptt_grads(
            _mse, cell, params, xs, targets, 4, 12, initial_carry=carry, forward=rnn_manual_vjp
        )
        return full, whole, chunks[1], rnn(cell, params, xs, initial_carry=carry)[1]

    full, (losses, grads, final), chunk_grads, expected_final = compute(params, xs, carry, targets)
    assert losses.shape == (1,)
    assert _relative_error(jax.tree.map(lambda g: g[0], grads), full) <= 1e-12
    assert _relative_error(final, expected_final) <= 1e-12
    assert _relative_error(jax.tree.map(lambda g: g.sum(0), chunk_grads), full) <= 1e-10


@pytest.mark.parametrize("k1,k2", [(2, 2), (3, 5)])
def test_truncated_gradient_has_no_contribution_beyond_window(k1, k2, key):
    """Scalar linear RNN h_t = a h_{t-1} + b x_t, y_t = c h_t: dL_j/da in closed form, cut at the window start."""
    cell = make_cell("linear_diagonal")
    params = {"a": jnp.array([0.9]), "B": jnp.array([[0.7]]), "C": jnp.array([[1.3]]), "D": jnp.array([[0.0]])}
    time_steps = 12
    xs = jax.random.normal(key, (1, time_steps, 1), jnp.float64)
    weights = jnp.linspace(0.5, 1.5, time_steps)[None, :, None]  # L_j = sum_{t in chunk j} w_t y_t

    truncated = jax.jit(lambda p: truncated_bptt_grads(lambda ys, w: jnp.sum(ys * w), cell, p, xs, weights, k1, k2))
    losses, grads, _ = truncated(params)
    a, b, c = 0.9, 0.7, 1.3
    x, w = xs[0, :, 0], weights[0, :, 0]
    hs = [0.0]
    for t in range(time_steps):
        hs.append(a * hs[-1] + b * float(x[t]))  # hs[t + 1] = h after step t
    for j in range(time_steps // k1):
        end = (j + 1) * k1
        start = max(0, end - k2)
        expected = 0.0
        for t in range(end - k1, end):  # y_t = c (a^{t+1-start} h_start + sum_{s=start}^{t} a^{t-s} b x_s)
            n = t + 1 - start
            inputs = sum((t - s) * a ** (t - s - 1) * b * float(x[s]) for s in range(start, t))
            d_h = n * a ** (n - 1) * hs[start] + inputs
            expected += float(w[t]) * c * d_h
        assert abs(float(grads["a"][j, 0]) - expected) <= 1e-12 * max(1.0, abs(expected))
    assert losses.shape == (time_steps // k1,)
    # the full gradient of a late chunk is different: history beyond the window matters in full BPTT
    last = jax.jit(jax.grad(lambda p: jnp.sum(rnn(cell, p, xs)[0][:, -k1:] * weights[:, -k1:])))(params)
    assert abs(float(last["a"][0] - grads["a"][-1, 0])) > 1e-3


def test_chunk_loop_matches_truncated_k1_equals_k2(key):
    cell, params, xs, carry, _, keys = _problem("lstm", key, (2,), 12)
    targets = jax.random.normal(next(keys), (2, 12, 5))
    truncated = jax.jit(lambda p: truncated_bptt_grads(_mse, cell, p, xs, targets, 4, 4, initial_carry=carry))
    losses, grads, final = truncated(params)
    step = jax.jit(lambda p, c, x, t: chunk_value_and_grad(_mse, cell, p, c, x, t, forward=rnn_manual_vjp))
    state = carry
    for j in range(3):  # a training loop would update the params here
        (loss, state), chunk_grads = step(params, state, xs[:, 4 * j : 4 * j + 4], targets[:, 4 * j : 4 * j + 4])
        assert abs(float(loss - losses[j])) <= 1e-12 * float(losses[j])
        assert _relative_error(chunk_grads, jax.tree.map(lambda g: g[j], grads)) <= 1e-10
    assert _relative_error(state, final) <= 1e-12


def test_truncated_rejects_bad_windows(key):
    cell, params, xs, _, _, _ = _problem("simple_tanh", key, (2,), 12)
    with pytest.raises(ValueError, match="k2 must be >= k1"):
        truncated_bptt_grads(_mse, cell, params, xs, xs, 4, 2)
    with pytest.raises(ValueError, match="multiple of k1=5"):
        truncated_bptt_grads(_mse, cell, params, xs, xs, 5, 5)


def test_stacked_bidirectional_rnn_with_manual_backward_matches_autodiff(key):
    cell, _, xs, _, lengths, keys = _problem("gru_pytorch", key, (3,), 6, with_lengths=True)
    nets = {mode: RNN(cell, 4, num_layers=2, bidirectional=True, backward=mode) for mode in ("autodiff", "manual")}
    params = nets["autodiff"].init(next(keys), 3, jnp.float64)

    def grads(net):
        return jax.grad(lambda p: jnp.sum(net.apply(p, xs, lengths=lengths)[0] ** 2))(params)

    assert _relative_error(grads(nets["manual"]), grads(nets["autodiff"])) <= 1e-10
    with pytest.raises(ValueError, match="backward must be one of 'autodiff', 'manual'; got 'fast'"):
        RNN(cell, 4, backward="fast")
