"""recipes: random_rows vs numpy's generator, PrefixedRun's names, train_model vs a hand-written optax loop,
train_many vs each run alone."""

import jax
import numpy as np
import optax
import pytest
from helpers import CONFIG, OPTIMIZER, STEP, batch_fn, init_params, loss_fn

from rnnjax.training import loop, recipes
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.runs import Run
from rnnjax.training.step import init_state


def test_random_rows_draws_the_documented_rows():
    arrays = {"x": np.arange(10) * 2, "y": np.arange(10)[:, None] * np.ones((1, 3))}
    batch = recipes.random_rows(arrays, 4, seed=7)(5)
    rows = np.random.default_rng([7, 5]).integers(10, size=4)
    np.testing.assert_array_equal(batch["x"], 2 * rows)
    np.testing.assert_array_equal(batch["y"][:, 0], rows)
    with pytest.raises(ValueError, match=r"share their number of rows; got \[3, 10\]"):
        recipes.random_rows({"x": np.zeros(10), "y": np.zeros(3)}, 4, seed=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        recipes.random_rows(arrays, 0, seed=0)


def test_prefixed_run_logs_under_its_prefix(tmp_path):
    run = Run("toy", name="a", root=tmp_path)
    recipes.PrefixedRun(run, "uni").log(3, **{"train/loss": 0.5})
    assert run.read_metrics() == [{"step": 3, "uni/train/loss": 0.5}]


def test_train_model_equals_a_hand_written_loop(tmp_path):
    key = jax.random.key(4)
    params = recipes.train_model(loss_fn, init_params(key), CONFIG, batch_fn, 5, key=key,
                                 checkpoint_dir=tmp_path / "ckpt", save_every=2, progress=False)  # fmt: skip
    expected, opt_state = init_params(key), OPTIMIZER.init(init_params(key))
    for step in range(5):  # the key of step s is fold_in(fold_in(key, 1), s)
        step_key = jax.random.fold_in(jax.random.fold_in(key, 1), step)
        grads = jax.grad(lambda p: loss_fn(p, batch_fn(step), step_key)[0])(expected)
        updates, opt_state = OPTIMIZER.update(grads, opt_state, expected)
        expected = optax.apply_updates(expected, updates)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), params, expected)
    with Checkpointer(tmp_path / "ckpt", save_every=2) as checkpointer:
        assert checkpointer.latest_step() == 5
    again = recipes.train_model(loss_fn, init_params(key), CONFIG, batch_fn, 5, key=key,
                                checkpoint_dir=tmp_path / "ckpt", save_every=2, progress=False)  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, again, params)  # restored from the final checkpoint


def test_train_many_equals_each_run_alone_and_logs_each_run(tmp_path):
    """Run i of train_many is fit() from init_params(split(keys[i])[0]) with train key split(keys[i])[1]."""
    keys = jax.random.split(jax.random.key(6), 2)
    run = Run("toy", name="many", root=tmp_path, tensorboard=False)
    states = recipes.train_many(loss_fn, init_params, CONFIG, batch_fn, 5, keys=keys, checkpoint_dir=tmp_path / "ckpt",
                                save_every=5, run=run, log_every=2, progress=False)  # fmt: skip
    for index, key in enumerate(keys):
        init_key, train_key = jax.random.split(key)
        alone = loop.fit(init_state(init_params(init_key), OPTIMIZER, train_key), STEP, batch_fn, 5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[index], b, rtol=1e-9), states.params, alone.params)
    logged = {record["step"]: record for record in run.read_metrics() if "train/loss_run0" in record}
    means = {r["step"]: r["train/loss"] for r in run.read_metrics() if "train/loss" in r}
    assert sorted(logged) == [2, 4, 5]  # windows of log_every steps, the last one shorter
    for step, record in logged.items():  # the mean over runs is what fit_many logs for the window
        assert np.isclose((record["train/loss_run0"] + record["train/loss_run1"]) / 2, means[step], rtol=1e-6)


@pytest.mark.parametrize("num_steps", [1, 3, 7, 40, 150, 3000, 4001])
def test_checkpoint_interval_keeps_fit_many_chunks_one_length(num_steps):
    interval = recipes.checkpoint_interval(num_steps)
    log_every = max(1, min(50, num_steps // 4))  # train_many's default
    assert interval % log_every == 0 and 1 <= interval <= max(num_steps, 1)
    stops, begin = set(), 0
    while begin < num_steps:  # the chunks fit_many cuts with these hooks
        stop = loop._next_stop(begin, num_steps, None, (log_every, interval))
        stops.add(stop - begin)
        begin = stop
    assert len(stops - {num_steps % log_every}) == 1  # one length, and perhaps a shorter last chunk
