"""Gradient-flow diagnostics (rnnjax.analysis.diagnostics) on cases with known answers, in float64."""

import jax
import jax.numpy as jnp
import pytest

from rnnjax.analysis.diagnostics import (
    carry_gradient_norms,
    carry_gradients,
    gate_statistics,
    jacobian_products,
    jacobian_singular_values,
)
from rnnjax.core.bptt import manual_vjp
from rnnjax.core.cells import LSTMState, make_cell
from rnnjax.core.unroll import rnn


def _scaled_identity_rnn(key, decay, hidden=4, time_steps=9):
    """Linear RNN with A = decay * I: dh_T/dh_t = decay^(T-t) I."""
    cell = make_cell("linear_dense")
    params = cell.init(key, 2, hidden, jnp.float64)
    params["A"] = decay * jnp.eye(hidden)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (time_steps, 2), jnp.float64)
    return cell, params, xs


@pytest.mark.parametrize("decay", [0.8, 1.25])
def test_jacobian_of_scaled_identity_is_a_power(decay, key):
    cell, params, xs = _scaled_identity_rnn(key, decay)
    values = jax.jit(lambda p, x: jacobian_singular_values(cell, p, x))(params, xs)
    powers = decay ** jnp.arange(9, -1, -1.0)  # t = 0..T
    assert values.shape == (10, 4)
    assert jnp.allclose(values, powers[:, None] * jnp.ones(4), rtol=1e-12, atol=0)


def test_carry_gradient_norms_of_scaled_identity(key):
    cell, params, xs = _scaled_identity_rnn(key, 0.7)
    weights = jnp.arange(1.0, 5.0)

    def last_output_loss(ys):  # L = w . y_T, so dL/dh_t = 0.7^(T-t) C^T w
        return ys[-1] @ weights

    norms = jax.jit(lambda p, x: carry_gradient_norms(cell, p, x, last_output_loss))(params, xs)
    expected = 0.7 ** jnp.arange(9, 0, -1.0) * jnp.linalg.norm(params["C"].T @ weights)
    assert jnp.allclose(norms, expected, rtol=1e-12, atol=0)


def test_carry_gradients_match_manual_backward_and_vmap(key):
    cell = make_cell("lstm")
    params = cell.init(key, 3, 5, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (4, 8, 3), jnp.float64)
    targets = jax.random.normal(jax.random.fold_in(key, 2), (4, 8, 5), jnp.float64)

    def loss_of(target):
        return lambda ys: jnp.sum((ys - target) ** 2)

    batched = jax.jit(jax.vmap(lambda x, t: carry_gradients(cell, params, x, loss_of(t))))(xs, targets)
    assert isinstance(batched, LSTMState) and batched.h.shape == (4, 8, 5)
    by_hand = jax.jit(lambda p, x: manual_vjp(cell, p, x, 2 * (rnn(cell, p, x)[0] - targets)))
    _, _, d_initial = by_hand(params, xs)  # dL/dh_0 from the hand-written BPTT
    assert jnp.allclose(batched.h[:, 0], d_initial.h, rtol=1e-12, atol=1e-14)
    assert jnp.allclose(batched.c[:, 0], d_initial.c, rtol=1e-12, atol=1e-14)
    one = jax.jit(lambda x: carry_gradients(cell, params, x, loss_of(targets[2])))(xs[2])  # vmap == loop
    assert jnp.allclose(one.h, batched.h[2], rtol=1e-12, atol=1e-14)


def test_jacobian_products_match_autodiff_of_the_unroll(key):
    cell = make_cell("gru_cho")
    params = cell.init(key, 2, 3, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (7, 2), jnp.float64)
    h0 = jax.random.normal(jax.random.fold_in(key, 2), (3,), jnp.float64)
    products = jax.jit(lambda p, x, h: jacobian_products(cell, p, x, initial_carry=h))(params, xs, h0)
    for t in (0, 4):  # dh_T/dh_t: Jacobian of the remaining steps at the carry h_t
        h_t = rnn(cell, params, xs[:t], initial_carry=h0)[1] if t else h0
        expected = jax.jit(jax.jacfwd(lambda h: rnn(cell, params, xs[t:], initial_carry=h)[1]))(h_t)
        assert jnp.allclose(products[t], expected, rtol=1e-12, atol=1e-14)
    assert jnp.allclose(products[-1], jnp.eye(3))
    with pytest.raises(ValueError, match="real carry"):
        complex_cell = make_cell("linear_complex_diagonal")
        jacobian_products(complex_cell, complex_cell.init(key, 2, 3), xs)


def test_gate_statistics_respect_lengths(key):
    cell = make_cell("gru_pytorch")
    params = cell.init(key, 3, 4, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (2, 6, 3), jnp.float64)
    lengths = jnp.array([2, 6])
    both = jax.jit(lambda p, x, n: gate_statistics(cell, p, x, lengths=n))(params, xs, lengths)
    first = gate_statistics(cell, params, xs[0, :2])  # unbatched, only the valid steps
    second = gate_statistics(cell, params, xs[1])
    assert set(both) == {"reset", "update", "candidate"}
    for name in both:  # the batch statistic is the step-weighted average of the examples
        for ours, a, b in zip(both[name], first[name], second[name]):
            assert jnp.allclose(ours, (2 * a + 6 * b) / 8, rtol=1e-12)
    stacked = jax.vmap(lambda x: gate_statistics(cell, params, x))(xs)  # vmap over examples
    assert stacked["update"].mean.shape == (2,)
    assert jnp.allclose(stacked["update"].mean[1], second["update"].mean)


def test_gate_statistics_detect_saturation(key):
    cell = make_cell("lstm")
    params = cell.init(key, 3, 4, jnp.float64)
    params = {k: v * 0.01 for k, v in params.items()}
    params["bias"] = jnp.concatenate([jnp.full(4, -10.0), jnp.full(4, 10.0), jnp.zeros(4), jnp.zeros(4)])
    stats = gate_statistics(cell, params, jax.random.normal(key, (5, 7, 3), jnp.float64))
    assert float(stats["input"].saturated_low) == 1.0 and float(stats["input"].saturated_high) == 0.0
    assert float(stats["forget"].saturated_high) == 1.0 and float(stats["forget"].saturated_low) == 0.0
    assert float(stats["output"].saturated_high) == 0.0 and float(stats["output"].saturated_low) == 0.0
    assert abs(float(stats["output"].mean) - 0.5) < 0.05
    with pytest.raises(ValueError, match="gate statistics exist for"):
        linear = make_cell("linear_diagonal")
        gate_statistics(linear, linear.init(key, 3, 4), jnp.zeros((7, 3)))


def test_neuron_drawing_has_one_line_per_weight(key, tmp_path):
    from rnnjax.analysis.viz import draw_simple_rnn, save

    params = make_cell("simple_tanh").init(key, 2, 3)
    figure = draw_simple_rnn(params, steps=4)
    lines = figure.axes[0].lines
    assert len(lines) == 4 * (3 * 3 + 2 * 3)  # every step: U (hidden -> hidden) and W (input -> hidden)
    widths = [line.get_linewidth() for line in lines[:15]]  # step 1: U row by row, then W, per hidden unit
    weights = [float(params[name][k, j]) for j in range(3) for name, k in
               [("recurrent_kernel", 0), ("recurrent_kernel", 1), ("recurrent_kernel", 2),
                ("input_kernel", 0), ("input_kernel", 1)]]  # fmt: skip
    assert jnp.argmax(jnp.array(widths)) == jnp.argmax(jnp.abs(jnp.array(weights)))
    assert save(figure, tmp_path / "neurons.png").stat().st_size > 10_000


def test_first_bit_task_carries_the_label_in_the_first_step_only(key):
    from rnnjax.tasks.toy_tasks import first_bit_task

    xs, labels = first_bit_task(key, 4000, 6, noise=0.5, dtype=jnp.float64)
    assert xs.shape == (4000, 6, 1) and labels.dtype == jnp.int32
    assert jnp.array_equal(xs[:, 0, 0], 2.0 * labels - 1.0)  # the bit, as +-1
    noise = xs[:, 1:, 0]
    # mean 0 and std 0.5 for 20000 draws: standard errors 0.0035 and 0.0025; allow 5 of them
    assert abs(float(noise.mean())) < 5 * 0.5 / 20000**0.5
    assert abs(float(noise.std()) - 0.5) < 5 * 0.5 / (2 * 20000) ** 0.5
    assert 0.45 < float(labels.mean()) < 0.55  # Bernoulli(0.5), 4000 draws: 6 standard errors
    with pytest.raises(ValueError, match="time_steps must be >= 1; got 0"):
        first_bit_task(key, 4, 0)
    with pytest.raises(TypeError, match="batch must be an int; got True"):
        first_bit_task(key, True, 3)


def test_gate_statistics_equal_a_python_loop_over_valid_steps(key):
    """LSTM gates [i, f, g, o] = [sigma, sigma, tanh, sigma](x W + h U + b), recomputed step by step in numpy."""
    import numpy as np

    cell = make_cell("lstm")
    params = cell.init(key, 3, 4, jnp.float64)
    xs = 2.0 * jax.random.normal(jax.random.fold_in(key, 1), (3, 6, 3), jnp.float64)
    lengths = jnp.array([6, 2, 4])
    stats = gate_statistics(cell, params, xs, lengths=lengths, threshold=0.1)
    kernel, recurrent, bias = (np.asarray(params[k]) for k in ("input_kernel", "recurrent_kernel", "bias"))
    gates = {name: [] for name in ("input", "forget", "cell", "output")}
    for row in range(3):
        h, c = np.zeros(4), np.zeros(4)
        for t in range(int(lengths[row])):
            z = np.asarray(xs[row, t]) @ kernel + h @ recurrent + bias
            i, f, o = (1 / (1 + np.exp(-z[k * 4 : k * 4 + 4])) for k in (0, 1, 3))
            g = np.tanh(z[8:12])
            for name, value in zip(gates, (i, f, g, o)):
                gates[name].append(value)
            c = f * c + i * g
            h = o * np.tanh(c)
    for name, values in gates.items():
        values = np.concatenate(values)
        low = -1.0 if name == "cell" else 0.0
        assert np.isclose(float(stats[name].mean), values.mean(), rtol=1e-12)
        assert np.isclose(float(stats[name].saturated_low), np.mean(values < low + 0.1), rtol=1e-12)
        assert np.isclose(float(stats[name].saturated_high), np.mean(values > 0.9), rtol=1e-12)


def test_gate_statistics_refuse_a_modified_cell(key):
    cell = make_cell("lstm")
    params = cell.init(key, 3, 4, jnp.float64)
    changed = cell._replace(recur=lambda p, carry, u: cell.recur(p, carry, 2.0 * u))
    with pytest.raises(ValueError, match="gates was derived for other project/recur/step functions"):
        gate_statistics(changed, params, jnp.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="threshold must be <= 0.5; got 0.7"):
        gate_statistics(cell, params, jnp.zeros((2, 5, 3)), threshold=0.7)
