"""Training: optimizer config, the donated step vs a manual update, fit_many vs separate runs, non-finite stop."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.training import train
from rnnjax.core.cells import simple_rnn
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.runs import Run
from rnnjax.core.unroll import RNN

from helpers import CONFIG, NET, OPTIMIZER, STEP, XS, YS, batch_fn, init_params, loss_fn  # noqa: F401



def optimizer_for(learning_rate):
    return train.make_optimizer(dataclasses.replace(CONFIG, learning_rate=learning_rate))


@jax.jit
def step_with_rate(state, batch, learning_rate):
    return train.train_step_body(loss_fn, optimizer_for(learning_rate), state, batch)


def test_schedule_warmup_then_cosine():
    schedule = train.make_schedule(CONFIG)
    assert float(schedule(0)) == 0.0
    assert float(schedule(1)) == pytest.approx(0.025)
    assert float(schedule(2)) == pytest.approx(0.05)
    assert float(schedule(7)) == pytest.approx(0.025)
    assert float(schedule(12)) == pytest.approx(0.0)
    constant = train.make_schedule(train.OptimizerConfig(learning_rate=0.1))
    assert float(constant(100)) == pytest.approx(0.1)


def test_optimizer_config_rejects_bad_values():
    with pytest.raises(ValueError, match="decay_steps"):
        train.OptimizerConfig(decay="cosine", warmup_steps=10, decay_steps=5)
    with pytest.raises(ValueError, match="decay must be one of"):
        train.OptimizerConfig(decay="linear")
    with pytest.raises(ValueError, match="learning_rate"):
        train.OptimizerConfig(learning_rate=0.0)
    with pytest.raises(TypeError, match="typed PRNG key"):
        train.init_state({"w": jnp.zeros(2)}, optax.sgd(0.1), jax.random.PRNGKey(0))


def test_clipping_and_weight_decay():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([30.0, 40.0])}
    sgd = train.make_optimizer(train.OptimizerConfig(name="sgd", learning_rate=1.0, clip_norm=5.0))
    updates, _ = sgd.update(grads, sgd.init(params), params)
    np.testing.assert_allclose(updates["w"], [-3.0, -4.0])  # clipped to norm 5, momentum starts at 0
    decayed = train.make_optimizer(
        train.OptimizerConfig(name="sgd", learning_rate=1.0, clip_norm=None, weight_decay=0.5)
    )
    updates, _ = decayed.update({"w": jnp.zeros(2)}, decayed.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.5, 1.0])


def test_jitted_step_matches_manual_update_and_donates():
    optimizer = OPTIMIZER
    params = init_params(jax.random.key(0))
    state = train.init_state(params, optimizer, jax.random.key(3))
    batch = batch_fn(0)
    step_key = jax.random.fold_in(jax.random.key(3), 0)
    grads = jax.grad(lambda p: loss_fn(p, batch, step_key)[0])(params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    expected = optax.apply_updates(params, updates)
    leaf = state.params["head"]
    new_state, metrics = STEP(state, batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), new_state.params, expected)
    assert int(new_state.step) == 1 and bool(metrics["finite"])
    assert leaf.is_deleted()  # the state was donated


def _run_separately(optimizer, step, key, steps):
    init_key, train_key = jax.random.split(key)
    state = train.init_state(init_params(init_key), optimizer, train_key)
    losses = []
    for index in range(steps):
        state, metrics = step(state, batch_fn(index))
        losses.append(float(metrics["loss"]))
    return state, losses


def test_init_many_compiles_once_per_init_and_optimizer():
    keys = jax.random.split(jax.random.key(3), 4)
    first = train.init_many(init_params, OPTIMIZER, keys)
    size = train._init_many._cache_size()
    again = train.init_many(init_params, OPTIMIZER, jax.random.split(jax.random.key(4), 4))
    assert train._init_many._cache_size() == size  # the second sweep reused the compiled program
    assert not np.allclose(first.params["head"], again.params["head"])

    class Unhashable:  # still works, compiled for the call
        __hash__ = None

        def __call__(self, key):
            return init_params(key)

    same = train.init_many(Unhashable(), OPTIMIZER, keys)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), same.params, first.params)


def test_fit_many_over_seeds_equals_separate_runs():
    keys = jax.random.split(jax.random.key(7), 4)
    states = train.init_many(init_params, OPTIMIZER, keys)
    states, metrics = train.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 6, chunk_steps=3)
    assert metrics["loss"].shape == (4, 6)
    for index in range(4):
        alone, losses = _run_separately(OPTIMIZER, STEP, keys[index], 6)
        mine = jax.tree.map(lambda leaf: leaf[index], states.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), mine, alone.params)
        np.testing.assert_allclose(metrics["loss"][index], losses, rtol=1e-9)
    assert not np.allclose(states.params["head"][0], states.params["head"][1])


def test_fit_many_over_learning_rates_equals_separate_runs():
    rates = jnp.array([0.01, 0.1])
    keys = jnp.stack([jax.random.key(5)] * 2)
    states = train.init_many(init_params, optimizer_for, keys, hparams=rates)
    states, _ = train.fit_many(loss_fn, optimizer_for, states, batch_fn, 4, hparams=rates)
    for index, rate in enumerate(rates):
        step = functools.partial(step_with_rate, learning_rate=rate)
        alone, _ = _run_separately(optimizer_for(rate), step, keys[index], 4)
        np.testing.assert_allclose(states.params["head"][index], alone.params["head"], rtol=1e-9)
    assert not np.allclose(states.params["head"][0], states.params["head"][1])


def _nan_after(bad_step):
    def batches(step):
        xs, ys = batch_fn(step)
        return xs * jnp.where(step >= bad_step, jnp.nan, 1.0), ys

    return batches


def test_non_finite_loss_stops_naming_step_and_keeps_checkpoint(tmp_path):
    state = train.init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    checkpointer = Checkpointer(tmp_path / "ckpt", save_every=2, keep=2)
    with pytest.raises(train.NonFiniteError, match="at step 5") as error:
        train.fit(state, STEP, _nan_after(5), 10, checkpointer=checkpointer, progress=False)
    assert error.value.step == 5
    good = error.value.state
    assert int(good.step) == 5 and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(good.params))
    assert "last good checkpoint is step 4" in str(error.value)
    template = train.init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    restored = checkpointer.restore_latest(template)
    assert int(restored.step) == 4 and np.isfinite(restored.params["head"]).all()
    checkpointer.close()


def test_fit_many_reports_non_finite_run():
    rates = jnp.array([0.01, jnp.nan])  # run 1 gets NaN params after its first update
    keys = jnp.stack([jax.random.key(5)] * 2)
    states = train.init_many(init_params, optimizer_for, keys, hparams=rates)
    with pytest.raises(train.NonFiniteError, match=r"runs \[1\], first at step 1") as error:
        train.fit_many(loss_fn, optimizer_for, states, batch_fn, 4, hparams=rates)
    assert np.isfinite(error.value.state.params["head"][0]).all()


def test_fit_logs_evaluates_and_accepts_iterables(tmp_path):
    optimizer, step = OPTIMIZER, STEP
    run = Run("toy", name="a", root=tmp_path)

    def evaluate(params):
        return {"loss": loss_fn(params, (XS, YS), jax.random.key(0))[0]}

    state = train.init_state(init_params(jax.random.key(0)), optimizer, jax.random.key(3))
    state = train.fit(state, step, batch_fn, 6, run=run, eval_fn=evaluate, eval_every=3, log_every=2, progress=False)
    records = run.read_metrics()
    assert [r["step"] for r in records if "train/loss" in r] == [2, 4, 6]
    assert [r["step"] for r in records if "val/loss" in r] == [3, 6]
    assert all(r["train/steps_per_s"] > 0 for r in records if "train/loss" in r)
    again = train.init_state(init_params(jax.random.key(0)), optimizer, jax.random.key(3))
    again = train.fit(again, step, (batch_fn(i) for i in range(6)), 6, progress=False)
    np.testing.assert_array_equal(again.params["head"], state.params["head"])


def test_fit_stops_at_time_budget_and_checkpoints(tmp_path):
    ticks = iter(range(100))  # a fake clock: one tick per call
    state = train.init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    with Checkpointer(tmp_path, save_every=100, keep=1) as checkpointer:
        state = train.fit(state, STEP, batch_fn, 10, checkpointer=checkpointer, progress=False,
                          max_seconds=2, clock=lambda: next(ticks))  # fmt: skip
        assert int(state.step) == 3 and checkpointer.latest_step() == 3
