"""Training: optimizer config, the donated step vs a manual update, fit_many vs separate runs, non-finite stop."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import CONFIG, NET, OPTIMIZER, STEP, XS, YS, batch_fn, init_params, loss_fn  # noqa: F401
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rnnjax.training import loop, optimizers
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.runs import Run
from rnnjax.training.step import NonFiniteError, init_state, make_train_step

SWEEP = optimizers.make_sweep_optimizer(CONFIG)


def optimizer_for(learning_rate):
    return optimizers.make_optimizer(dataclasses.replace(CONFIG, learning_rate=learning_rate))


def test_schedule_warmup_then_cosine():
    schedule = optimizers.make_schedule(CONFIG)
    assert float(schedule(0)) == 0.0
    assert float(schedule(1)) == pytest.approx(0.025)
    assert float(schedule(2)) == pytest.approx(0.05)
    assert float(schedule(7)) == pytest.approx(0.025)
    assert float(schedule(12)) == pytest.approx(0.0)
    constant = optimizers.make_schedule(optimizers.OptimizerConfig(learning_rate=0.1))
    assert float(constant(100)) == pytest.approx(0.1)


def test_optimizer_config_rejects_bad_values():
    with pytest.raises(ValueError, match="decay_steps"):
        optimizers.OptimizerConfig(decay="cosine", warmup_steps=10, decay_steps=5)
    with pytest.raises(ValueError, match="decay must be one of"):
        optimizers.OptimizerConfig(decay="linear")
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.OptimizerConfig(learning_rate=0.0)
    with pytest.raises(TypeError, match="typed PRNG key"):
        init_state({"w": jnp.zeros(2)}, optax.sgd(0.1), jax.random.PRNGKey(0))


def test_clipping_and_weight_decay():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([30.0, 40.0])}
    sgd = optimizers.make_optimizer(optimizers.OptimizerConfig(name="sgd", learning_rate=1.0, clip_norm=5.0))
    updates, _ = sgd.update(grads, sgd.init(params), params)
    np.testing.assert_allclose(updates["w"], [-3.0, -4.0])  # clipped to norm 5, momentum starts at 0
    decayed = optimizers.make_optimizer(
        optimizers.OptimizerConfig(name="sgd", learning_rate=1.0, clip_norm=None, weight_decay=0.5)
    )
    updates, _ = decayed.update({"w": jnp.zeros(2)}, decayed.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.5, 1.0])


def _updates(optimizer, grads_list, params):
    """The updates of ``optimizer`` over consecutive gradients (momentum and Adam moments carried)."""
    state, out = optimizer.init(params), []
    for grads in grads_list:
        updates, state = optimizer.update(grads, state, params)
        out.append(np.asarray(updates["w"]))
    return out


PARAMS = {"w": jnp.array([1.0, -2.0, 0.5])}
GRADS = [{"w": jnp.array([30.0, -40.0, 5.0])}, {"w": jnp.array([-1.0, 2.0, 0.5])}, {"w": jnp.array([3.0, 0.0, -4.0])}]


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(list(optimizers.OptimizerName)),
    clip_norm=st.sampled_from([None, 0.5]),
    weight_decay=st.sampled_from([0.0, 0.3]),
    decay=st.sampled_from(list(optimizers.Decay)),
)
def test_every_builder_honours_each_option_where_it_changes_the_updates(name, clip_norm, weight_decay, decay):
    """Every optimizer with each option, against the option's definition: clipping = the unclipped optimizer on the
    clipped gradient; L2 (ADAM, SGD) = the plain optimizer on ``g + wd * p``; ADAMW = the ADAM update less
    ``lr * wd * p``; the sweep builder = the plain builder."""
    config = optimizers.OptimizerConfig(name=name, learning_rate=0.1, warmup_steps=1, decay=decay, decay_steps=4,
                                        clip_norm=clip_norm, weight_decay=weight_decay)  # fmt: skip
    optimizer = optimizers.make_optimizer(config)
    decoupled = name is optimizers.OptimizerName.ADAMW
    parts = (clip_norm is not None) + (bool(weight_decay) and not decoupled) + 1  # no no-op transformations
    assert len(optimizer.init(PARAMS)) == parts
    got = _updates(optimizer, GRADS, PARAMS)
    np.testing.assert_allclose(_updates(optimizers.make_sweep_optimizer(config), GRADS, PARAMS), got, rtol=1e-12)
    grads = GRADS
    if clip_norm is not None:
        grads = [optax.clip_by_global_norm(clip_norm).update(g, None)[0] for g in grads]
    if name is not optimizers.OptimizerName.ADAMW:
        grads = [{"w": g["w"] + weight_decay * PARAMS["w"]} for g in grads]
    plain = dataclasses.replace(config, clip_norm=None, weight_decay=0.0)
    if name is optimizers.OptimizerName.ADAMW:
        plain = dataclasses.replace(plain, name=optimizers.OptimizerName.ADAM)
    expected = _updates(optimizers.make_optimizer(plain), grads, PARAMS)
    if name is optimizers.OptimizerName.ADAMW:
        schedule = optimizers.make_schedule(config)
        expected = [u - float(schedule(t)) * weight_decay * np.asarray(PARAMS["w"]) for t, u in enumerate(expected)]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    if clip_norm is not None or weight_decay:  # and the option did change the updates
        unoptioned = _updates(optimizers.make_optimizer(dataclasses.replace(config, clip_norm=None, weight_decay=0.0)),
                              GRADS, PARAMS)  # fmt: skip
        assert not np.allclose(got, unoptioned)


@settings(max_examples=30, deadline=None)
@given(
    warmup=st.integers(0, 4),
    extra=st.integers(1, 6),
    decay=st.sampled_from(list(optimizers.Decay)),
    final=st.sampled_from([0.0, 0.1, 0.5]),
    count=st.integers(0, 12),
)
def test_schedule_matches_its_formula_for_every_warmup_including_one_step(warmup, extra, decay, final, count):
    """lr(t) = peak * min(1, t / warmup) * d(t), d = 1 or f + (1 - f) (1 + cos(pi p)) / 2 (the docstring's)."""
    config = optimizers.OptimizerConfig(learning_rate=0.3, warmup_steps=warmup, decay=decay,
                                        decay_steps=warmup + extra, final_fraction=final)  # fmt: skip
    ramp = min(1.0, count / warmup) if warmup else 1.0
    shape = 1.0
    if decay is optimizers.Decay.COSINE:
        progress = min(max((count - warmup) / extra, 0.0), 1.0)
        shape = final + (1.0 - final) * 0.5 * (1.0 + np.cos(np.pi * progress))
    assert float(optimizers.make_schedule(config)(count)) == pytest.approx(0.3 * ramp * shape, rel=1e-12, abs=1e-15)


def test_schedule_refuses_a_decay_that_bypassed_the_config_check():
    config = optimizers.OptimizerConfig()
    object.__setattr__(config, "decay", "linear")  # as a config built around __post_init__ would hold it
    with pytest.raises(ValueError, match="decay must be a Decay; got 'linear'"):
        optimizers.make_schedule(config)


@settings(max_examples=40, deadline=None)
@given(warmup=st.integers(0, 5), decay_steps=st.integers(0, 7), final=st.sampled_from([-0.1, 0.0, 0.5, 1.0, 1.1]))
@example(warmup=2, decay_steps=2, final=-0.1)  # the boundaries themselves, whatever the draw
@example(warmup=0, decay_steps=1, final=1.0)
def test_config_check_boundaries(warmup, decay_steps, final):
    """A cosine needs decay_steps > warmup_steps (equal is refused); final_fraction lies in [0, 1], ends included."""
    arguments = {"warmup_steps": warmup, "decay_steps": decay_steps, "final_fraction": final}
    if decay_steps <= warmup:
        with pytest.raises(ValueError, match=f"decay_steps must exceed warmup_steps \\({warmup}\\)"):
            optimizers.OptimizerConfig(decay="cosine", **{**arguments, "final_fraction": 0.5})
    if not 0.0 <= final <= 1.0:
        with pytest.raises(ValueError, match="final_fraction"):
            optimizers.OptimizerConfig(**arguments)
        return
    optimizers.OptimizerConfig(**arguments)  # a constant decay takes any step counts
    if decay_steps > warmup:
        optimizers.OptimizerConfig(decay="cosine", **arguments)


def test_make_optimizer_refuses_a_name_that_bypassed_the_config_check():
    config = optimizers.OptimizerConfig()
    object.__setattr__(config, "name", "rmsprop")
    with pytest.raises(ValueError, match="name must be an OptimizerName; got 'rmsprop'"):
        optimizers.make_optimizer(config)


@pytest.mark.parametrize("wrap", [jnp.asarray, np.asarray, float])
def test_concrete_hyperparameters_are_checked_and_traced_or_stacked_ones_left_for_later(wrap):
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        optimizers.OptimizerConfig(learning_rate=wrap(-0.1))
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        optimizers.OptimizerConfig(weight_decay=wrap(-0.1))
    assert float(optimizers.OptimizerConfig(learning_rate=wrap(0.1)).learning_rate) == 0.1
    rates = jnp.array([0.1, 0.2])  # one per run of a sweep: checked where it is used, not here
    assert optimizers.OptimizerConfig(learning_rate=rates).learning_rate is rates
    traced = jax.jit(lambda rate: optimizers.make_schedule(optimizers.OptimizerConfig(learning_rate=rate))(0))
    assert float(traced(-1.0)) == -1.0  # a traced value passes unchecked


@pytest.mark.parametrize("name", list(optimizers.OptimizerName))
def test_the_sweep_optimizer_uses_the_hyperparameters_in_its_state(name):
    """Each run of a sweep gets its own learning rate and weight decay: the values in the state, not the config's."""
    config = optimizers.OptimizerConfig(name=name, learning_rate=0.1, clip_norm=None, weight_decay=0.3)
    sweep = optimizers.make_sweep_optimizer(config)
    state = sweep.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(0.02)
    state.hyperparams["weight_decay"] = jnp.asarray(0.05)
    got, _ = sweep.update(GRADS[0], state, PARAMS)
    plain = optimizers.make_optimizer(dataclasses.replace(config, learning_rate=0.02, weight_decay=0.05))
    expected, _ = plain.update(GRADS[0], plain.init(PARAMS), PARAMS)
    np.testing.assert_allclose(got["w"], expected["w"], rtol=1e-12)


def test_sgd_has_momentum_and_adam_normalises():
    sgd = optimizers.make_optimizer(optimizers.OptimizerConfig(name="sgd", learning_rate=1.0, clip_norm=None))
    same = [{"w": jnp.ones(3)}] * 3
    np.testing.assert_allclose([u[0] for u in _updates(sgd, same, PARAMS)], [-1.0, -1.9, -2.71])  # momentum 0.9
    adam = optimizers.make_optimizer(optimizers.OptimizerConfig(learning_rate=0.1, clip_norm=None))
    np.testing.assert_allclose(_updates(adam, [{"w": jnp.full(3, 7.0)}], PARAMS)[0], -0.1, rtol=1e-6)


@pytest.mark.parametrize("steps", [10, 40, 50, 100])  # warm-up max(1, steps // 20): 1, 2, 2 and 5 steps
def test_warmup_cosine_adam_ramps_over_a_twentieth_then_ends_at_one_percent(steps):
    """Adam's update on a constant gradient is ``-lr(t) g / (|g| + eps)``: the updates read the schedule back."""
    peak, warmup = 0.2, max(1, steps // 20)
    optimizer = optimizers.warmup_cosine_adam(peak, steps, clip_norm=1e6)
    rates = np.array([-u[0] for u in _updates(optimizer, [{"w": jnp.ones(3)}] * (steps + 2), PARAMS)])
    np.testing.assert_allclose(rates[: warmup + 1], peak * np.arange(warmup + 1) / warmup, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(rates[steps:], peak * 0.01, rtol=1e-6)
    tiny = {"w": jnp.array([3e-9, 4e-9, 0.0])}  # clipped to norm 1e-9, Adam's eps (1e-8) shows the clipping
    clipped = optimizers.warmup_cosine_adam(peak, steps, clip_norm=1e-9)
    update = _updates(clipped, [tiny] * 2, PARAMS)[1][0]
    np.testing.assert_allclose(update, -peak / warmup * 0.6e-9 / (0.6e-9 + 1e-8), rtol=1e-5)


@pytest.mark.parametrize("name", ["learning_rate", "num_steps", "clip_norm"])
def test_warmup_cosine_adam_names_the_bad_argument(name):
    arguments = {"learning_rate": 0.1, "num_steps": 10, "clip_norm": 1.0, name: 0}
    with pytest.raises(ValueError, match=f"^{name} must be "):
        optimizers.warmup_cosine_adam(**arguments)


def test_jitted_step_matches_manual_update_and_donates():
    optimizer = OPTIMIZER
    params = init_params(jax.random.key(0))
    state = init_state(params, optimizer, jax.random.key(3))
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
    state = init_state(init_params(init_key), optimizer, train_key)
    losses = []
    for index in range(steps):
        state, metrics = step(state, batch_fn(index))
        losses.append(float(metrics["loss"]))
    return state, losses


def test_init_many_compiles_once_per_init_and_optimizer():
    keys = jax.random.split(jax.random.key(3), 4)
    first = loop.init_many(init_params, OPTIMIZER, keys)
    size = loop._init_many._cache_size()
    again = loop.init_many(init_params, OPTIMIZER, jax.random.split(jax.random.key(4), 4))
    assert loop._init_many._cache_size() == size  # the second sweep reused the compiled program
    assert not np.allclose(first.params["head"], again.params["head"])

    class Unhashable:  # still works, compiled for the call
        __hash__ = None

        def __call__(self, key):
            return init_params(key)

    same = loop.init_many(Unhashable(), OPTIMIZER, keys)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), same.params, first.params)


def test_fit_many_over_seeds_equals_separate_runs():
    keys = jax.random.split(jax.random.key(7), 4)
    states = loop.init_many(init_params, OPTIMIZER, keys)
    states, metrics = loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 6, chunk_steps=3)
    assert metrics["loss"].shape == (4, 6)
    for index in range(4):
        alone, losses = _run_separately(OPTIMIZER, STEP, keys[index], 6)
        mine = jax.tree.map(lambda leaf: leaf[index], states.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), mine, alone.params)
        np.testing.assert_allclose(metrics["loss"][index], losses, rtol=1e-9)
    assert not np.allclose(states.params["head"][0], states.params["head"][1])


def test_fit_many_per_run_batches_equal_separate_runs_on_their_own_data():
    keys = jax.random.split(jax.random.key(8), 2)
    shifts = jnp.array([0.0, 1.5])  # run i trains on targets shifted by shifts[i]

    def per_run_batch_fn(step):
        xs, ys = batch_fn(step)
        return jnp.stack([xs, xs]), ys[None] + shifts[:, None]

    states = loop.init_many(init_params, OPTIMIZER, keys)
    states, metrics = loop.fit_many(loss_fn, OPTIMIZER, states, per_run_batch_fn, 5, per_run_batches=True)
    for index in range(2):
        init_key, train_key = jax.random.split(keys[index])
        alone = init_state(init_params(init_key), OPTIMIZER, train_key)
        for step in range(5):
            xs, ys = batch_fn(step)
            alone, _ = STEP(alone, (xs, ys + shifts[index]))
        np.testing.assert_allclose(states.params["head"][index], alone.params["head"], rtol=1e-9, atol=1e-12)
    shared, _ = loop.fit_many(loss_fn, OPTIMIZER, loop.init_many(init_params, OPTIMIZER, keys), batch_fn, 5)
    assert not np.allclose(states.params["head"][1], shared.params["head"][1])  # run 1 did see its own data


def test_fit_many_over_learning_rates_equals_separate_runs():
    rates = jnp.array([0.01, 0.1])
    keys = jnp.stack([jax.random.key(5)] * 2)
    states = loop.init_many(init_params, SWEEP, keys, hparams={"learning_rate": rates})
    states, _ = loop.fit_many(loss_fn, SWEEP, states, batch_fn, 4)
    for index, rate in enumerate([0.01, 0.1]):
        optimizer = optimizer_for(rate)  # a plain optimizer, not the one holding its hyperparameters
        alone, _ = _run_separately(optimizer, make_train_step(loss_fn, optimizer), keys[index], 4)
        np.testing.assert_allclose(states.params["head"][index], alone.params["head"], rtol=1e-9)
    assert not np.allclose(states.params["head"][0], states.params["head"][1])


def test_hparams_need_a_sweep_optimizer_and_known_names():
    keys = jax.random.split(jax.random.key(5), 2)
    with pytest.raises(TypeError, match="make_sweep_optimizer"):
        loop.init_many(init_params, OPTIMIZER, keys, hparams={"learning_rate": jnp.array([0.1, 0.2])})
    with pytest.raises(ValueError, match="momentum"):
        loop.init_many(init_params, SWEEP, keys, hparams={"momentum": jnp.array([0.1, 0.2])})
    with pytest.raises(ValueError, match=r"hparams\['learning_rate'\] must have shape \[2\]; got \[3\]"):
        loop.init_many(init_params, SWEEP, keys, hparams={"learning_rate": jnp.array([0.1, 0.2, 0.3])})


def _nan_after(bad_step):
    def batches(step):
        xs, ys = batch_fn(step)
        return xs * jnp.where(step >= bad_step, jnp.nan, 1.0), ys

    return batches


def test_non_finite_loss_stops_naming_step_and_keeps_checkpoint(tmp_path):
    state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    checkpointer = Checkpointer(tmp_path / "ckpt", save_every=2, keep=2)
    with pytest.raises(NonFiniteError, match="at step 5") as error:
        loop.fit(state, STEP, _nan_after(5), 10, checkpointer=checkpointer, progress=False)
    assert error.value.step == 5
    good = error.value.state
    assert int(good.step) == 5 and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(good.params))
    assert "last good checkpoint is step 4" in str(error.value)
    template = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    restored = checkpointer.restore_latest(template)
    assert int(restored.step) == 4 and np.isfinite(restored.params["head"]).all()
    checkpointer.close()


def test_fit_many_reports_non_finite_run():
    rates = jnp.array([0.01, jnp.nan])  # run 1 would get NaN params from its first update
    keys = jnp.stack([jax.random.key(5)] * 2)
    states = loop.init_many(init_params, SWEEP, keys, hparams={"learning_rate": rates})
    with pytest.raises(NonFiniteError, match=r"runs \[1\], first at step 0") as error:
        loop.fit_many(loss_fn, SWEEP, states, batch_fn, 4)
    assert np.isfinite(error.value.state.params["head"][0]).all()


def test_fit_logs_evaluates_and_accepts_iterables(tmp_path):
    optimizer, step = OPTIMIZER, STEP
    run = Run("toy", name="a", root=tmp_path)

    def evaluate(params):
        return {"loss": loss_fn(params, (XS, YS), jax.random.key(0))[0]}

    state = init_state(init_params(jax.random.key(0)), optimizer, jax.random.key(3))
    state = loop.fit(state, step, batch_fn, 6, run=run, eval_fn=evaluate, eval_every=3, log_every=2, progress=False)
    records = run.read_metrics()
    assert [r["step"] for r in records if "train/loss" in r] == [2, 4, 6]
    assert [r["step"] for r in records if "val/loss" in r] == [3, 6]
    assert all(r["train/steps_per_s"] > 0 for r in records if "train/loss" in r)
    again = init_state(init_params(jax.random.key(0)), optimizer, jax.random.key(3))
    again = loop.fit(again, step, (batch_fn(i) for i in range(6)), 6, progress=False)
    np.testing.assert_array_equal(again.params["head"], state.params["head"])


def test_fit_stops_at_time_budget_and_checkpoints(tmp_path):
    ticks = iter(range(100))  # a fake clock: one tick per call
    state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    with Checkpointer(tmp_path, save_every=100, keep=1) as checkpointer:
        state = loop.fit(state, STEP, batch_fn, 10, checkpointer=checkpointer, progress=False,
                          max_seconds=2, clock=lambda: next(ticks))  # fmt: skip
        assert int(state.step) == 3 and checkpointer.latest_step() == 3


def _hand_loop(optimizer, params, train_key, steps):
    """Plain optax with an explicit per-step key fold_in(train_key, step): the reference for fit's keys."""
    opt_state, losses = optimizer.init(params), []
    for step in range(steps):
        step_key = jax.random.fold_in(train_key, step)
        loss, grads = jax.value_and_grad(lambda p: loss_fn(p, batch_fn(step), step_key)[0])(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    return params, losses


def test_fit_and_fit_many_use_a_new_key_every_step(tmp_path):
    """Over 6 steps: a loop that reused one key (e.g. fold_in(key, 0)) ends elsewhere, since loss_fn adds key noise."""
    init_key, train_key = jax.random.split(jax.random.key(11))
    expected, expected_losses = _hand_loop(OPTIMIZER, init_params(init_key), train_key, 6)
    run = Run("toy", name="keys", root=tmp_path)
    state = init_state(init_params(init_key), OPTIMIZER, jax.random.split(jax.random.key(11))[1])  # donated
    state = loop.fit(state, STEP, batch_fn, 6, run=run, log_every=1, progress=False)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), state.params, expected)
    np.testing.assert_allclose(run.series("train/loss")[1], expected_losses, rtol=1e-10)
    states = loop.init_many(init_params, OPTIMIZER, jax.random.key(11)[None])  # splits into (init_key, train_key)
    states, metrics = loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 6, chunk_steps=4, progress=False)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-10), states.params, expected)
    np.testing.assert_allclose(metrics["loss"][0], expected_losses, rtol=1e-10)
    same_key, _ = _hand_loop_one_key(init_params(init_key), train_key, 6)
    assert not np.allclose(same_key["head"], expected["head"], rtol=1e-6)  # the test can tell the two apart


def _hand_loop_one_key(params, train_key, steps):
    opt_state = OPTIMIZER.init(params)
    for step in range(steps):
        grads = jax.grad(lambda p: loss_fn(p, batch_fn(step), jax.random.fold_in(train_key, 0))[0])(params)
        updates, opt_state = OPTIMIZER.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, None


def test_fit_many_hooks_log_evaluate_checkpoint_and_resume(tmp_path):
    keys = jax.random.split(jax.random.key(7), 3)

    def evaluate(params):  # stacked params: mean loss over the runs
        losses = jax.vmap(lambda p: loss_fn(p, (XS, YS), jax.random.key(0))[0])(params)
        return {"loss": losses.mean()}

    plain, plain_metrics = loop.fit_many(loss_fn, OPTIMIZER, loop.init_many(init_params, OPTIMIZER, keys),
                                          batch_fn, 8, progress=False)  # fmt: skip
    run = Run("toy", name="many", root=tmp_path)
    with Checkpointer(tmp_path / "ckpt", save_every=4, keep=2, best_metric="val/loss") as checkpointer:
        hooked, _ = loop.fit_many(loss_fn, OPTIMIZER, loop.init_many(init_params, OPTIMIZER, keys), batch_fn, 6,
                                   run=run, eval_fn=evaluate, eval_every=3, log_every=2, checkpointer=checkpointer,
                                   progress=False)  # fmt: skip
        assert checkpointer.latest_step() == 6
        records = run.read_metrics()
        assert [r["step"] for r in records if "train/loss" in r] == [2, 4, 6]
        assert [r["step"] for r in records if "val/loss" in r] == [3, 6]
        np.testing.assert_allclose(run.series("train/loss")[1][0], np.mean(plain_metrics["loss"][:, :2]), rtol=1e-9)
        np.testing.assert_allclose(run.series("val/loss")[1][-1], float(evaluate(hooked.params)["loss"]), rtol=1e-12)
        fresh = loop.init_many(init_params, OPTIMIZER, keys)  # resumes from step 6 and trains 2 more
        resumed, metrics = loop.fit_many(loss_fn, OPTIMIZER, fresh, batch_fn, 8, checkpointer=checkpointer,
                                          progress=False)  # fmt: skip
    assert metrics["loss"].shape == (3, 2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9), resumed.params, plain.params)


def test_fit_many_stops_at_time_budget():
    ticks = iter(range(100))
    states = loop.init_many(init_params, OPTIMIZER, jax.random.split(jax.random.key(7), 2))
    states, metrics = loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 10, chunk_steps=2, progress=False,
                                     max_seconds=2, clock=lambda: next(ticks))  # fmt: skip
    assert int(states.step[0]) == 6 and metrics["loss"].shape == (2, 6)  # clock 0 -> deadline 2; 3 > 2 after chunk 3


@pytest.mark.parametrize(
    "fields, error, match",
    [
        ({"learning_rate": -1e-3}, ValueError, "learning_rate must be > 0.0; got -0.001"),
        ({"learning_rate": float("inf")}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": True}, TypeError, "learning_rate must be a real number"),
        ({"warmup_steps": -5}, ValueError, "warmup_steps must be >= 0; got -5"),
        ({"decay_steps": 2.5}, TypeError, "decay_steps must be an int"),
        ({"final_fraction": 1.5}, ValueError, "final_fraction must be <= 1.0; got 1.5"),
        ({"clip_norm": 0.0}, ValueError, "clip_norm must be > 0.0; got 0.0"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay must be >= 0.0; got -0.1"),
        ({"name": "rmsprop"}, ValueError, "name must be one of 'adam', 'adamw', 'sgd'; got 'rmsprop'"),
    ],
)
def test_optimizer_config_rejects_nonsense(fields, error, match):
    with pytest.raises(error, match=match):
        optimizers.OptimizerConfig(**fields)


def test_fit_and_fit_many_reject_nonsense_arguments():
    state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    states = loop.init_many(init_params, OPTIMIZER, jax.random.split(jax.random.key(7), 2))
    fits = (
        lambda n, **k: loop.fit(state, STEP, batch_fn, n, progress=False, **k),
        lambda n, **k: loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, n, progress=False, **k),
    )
    for run_fit in fits:
        with pytest.raises(ValueError, match="num_steps must be >= 1; got 0"):
            run_fit(0)
        with pytest.raises(ValueError, match="num_steps must be >= 1; got -3"):
            run_fit(-3)
        with pytest.raises(TypeError, match="num_steps must be an int; got 5.0"):
            run_fit(5.0)
        with pytest.raises(ValueError, match="log_every must be >= 1; got 0"):
            run_fit(5, log_every=0)
        with pytest.raises(ValueError, match="eval_every=5 needs an eval_fn"):
            run_fit(5, eval_every=5)
        with pytest.raises(ValueError, match="max_seconds must be > 0.0; got -1"):
            run_fit(5, max_seconds=-1)
        with pytest.raises(TypeError, match="unexpected keyword argument 'evaluate'"):
            run_fit(5, evaluate=print)
    assert int(state.step) == 0 and not state.params["head"].is_deleted()  # nothing ran
    with pytest.raises(ValueError, match="chunk_steps must be >= 1; got 0"):
        loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 5, chunk_steps=0)
    with pytest.raises(TypeError, match="state must be a TrainState"):
        loop.fit({"w": 1.0}, STEP, batch_fn, 5)
    with pytest.raises(TypeError, match="optimizer must be an optax.GradientTransformation"):
        make_train_step(loss_fn, lambda lr: OPTIMIZER)
    with pytest.raises(TypeError, match="keys must be a \\[runs\\] array of typed keys"):
        loop.init_many(init_params, OPTIMIZER, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        loop.batched_apply(lambda x: x, (np.zeros(4),), 0)


def test_warmup_cosine_adam_follows_its_formula():
    """The probe's schedule: linear 0 -> 0.1 over 5 steps (100 // 20), then cosine to 1e-3 at step 100."""
    params = {"w": jnp.zeros(())}
    optimizer = optimizers.warmup_cosine_adam(0.1, 100, clip_norm=1e6)
    state = optimizer.init(params)
    rates = []
    for _ in range(101):  # Adam's first update of a constant gradient is -lr * sign(g) (bias-corrected moments)
        updates, state = optimizer.update({"w": jnp.ones(())}, state, params)
        rates.append(-float(updates["w"]))
    expected = [0.1 * t / 5 if t < 5 else 0.001 + 0.099 * 0.5 * (1 + np.cos(np.pi * (t - 5) / 95)) for t in range(101)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="num_steps must be >= 1; got 0"):
        optimizers.warmup_cosine_adam(0.1, 0, 1.0)


def test_fit_reads_each_finite_flag_one_step_late_except_where_a_hook_acts(monkeypatch):
    events = []
    checked = loop._check_finite
    monkeypatch.setattr(loop, "_check_finite", lambda lp, st, step, m: (events.append(("check", step)),
                                                                        checked(lp, st, step, m)))  # fmt: skip

    def recording(step):
        events.append(("batch", step))
        return batch_fn(step)

    state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    loop.fit(state, STEP, recording, 6, log_every=4, progress=False)
    assert events == [("batch", 0), ("batch", 1), ("check", 0), ("batch", 2), ("check", 1), ("batch", 3),
                      ("check", 2), ("check", 3),  # step 3 ends at 4 = log_every: read at once, before the log
                      ("batch", 4), ("batch", 5), ("check", 4), ("check", 5)]  # fmt: skip


@pytest.mark.parametrize("bad_step", [1, 5, 9])
def test_a_late_read_non_finite_step_still_stops_there_with_the_last_good_state(bad_step):
    fresh = lambda: init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))  # noqa: E731
    with pytest.raises(NonFiniteError, match=f"at step {bad_step} ") as error:
        loop.fit(fresh(), STEP, _nan_after(bad_step), 10, log_every=100, progress=False)  # no hook acts before 10
    assert error.value.step == bad_step
    good = loop.fit(fresh(), STEP, batch_fn, bad_step, log_every=100, progress=False)  # stopped just before it
    assert int(error.value.state.step) == bad_step
    jax.tree.map(np.testing.assert_array_equal, error.value.state.params, good.params)
    jax.tree.map(np.testing.assert_array_equal, error.value.state.opt_state, good.opt_state)


def test_hooks_name_a_run_or_checkpointer_without_the_needed_methods():
    state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(3))
    with pytest.raises(TypeError, match="run must have log"):
        loop.fit(state, STEP, batch_fn, 2, run=object(), progress=False)
    with pytest.raises(TypeError, match="checkpointer must be a Checkpointer .* got str"):
        loop.fit(state, STEP, batch_fn, 2, checkpointer="ckpt", progress=False)


def _line_loss(params, batch, key):
    """A tiny loss with one metric; the key shifts the target, so each step's key shows in the loss."""
    x, y = batch
    target = y + 0.1 * jax.random.normal(key, y.shape, y.dtype)
    residual = x @ params["w"] - target
    return jnp.mean(residual**2), {"residual": jnp.mean(jnp.abs(residual))}


LINE_BATCH = (jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]), jnp.array([1.0, 0.0, -2.0]))


def _same_tree(a, b):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


def test_step_follows_its_formula_key_metrics_and_dtypes():
    optimizer = optax.adam(0.1)
    params = {"w": jnp.array([0.3, -0.2])}
    state = init_state(params, optimizer, jax.random.key(7))
    assert state.step.dtype == jnp.int32 and state.step.shape == () and int(state.step) == 0
    assert _same_tree(state.opt_state, optimizer.init(params)) and state.params is params
    assert jax.random.key_data(state.key).tolist() == jax.random.key_data(jax.random.key(7)).tolist()
    step = make_train_step(_line_loss, optimizer)
    expected_params, expected_opt = params, optimizer.init(params)
    for index in range(3):
        key = jax.random.fold_in(jax.random.key(7), index)
        (loss, aux), grads = jax.value_and_grad(_line_loss, has_aux=True)(expected_params, LINE_BATCH, key)
        updates, expected_opt = optimizer.update(grads, expected_opt, expected_params)
        expected_params = optax.apply_updates(expected_params, updates)
        leaf = state.params["w"]
        state, metrics = step(state, LINE_BATCH)
        assert leaf.is_deleted()  # the state is donated
        assert set(metrics) == {"residual", "loss", "grad_norm", "finite"}
        np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-12)
        np.testing.assert_allclose(metrics["residual"], aux["residual"], rtol=1e-12)
        np.testing.assert_allclose(metrics["grad_norm"], np.sqrt(np.sum(np.asarray(grads["w"]) ** 2)), rtol=1e-12)
        np.testing.assert_allclose(state.params["w"], expected_params["w"], rtol=1e-12)
        assert bool(metrics["finite"]) and int(state.step) == index + 1 and state.step.dtype == jnp.int32
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), state.opt_state, expected_opt)


def _refused(loss_fn, optimizer, params):
    """One step from ``params``: whether it was refused with the state (params, optimizer state, step) kept."""
    state = init_state(jax.tree.map(jnp.array, params), optimizer, jax.random.key(0))  # a copy: it is donated
    kept = jax.tree.map(jnp.array, (state.params, state.opt_state, state.step))  # copies: the state is donated
    new, metrics = make_train_step(loss_fn, optimizer)(state, LINE_BATCH)
    same = _same_tree((new.params, new.opt_state, new.step), kept)
    assert bool(metrics["finite"]) is not same
    return same


def test_a_non_finite_loss_gradient_or_update_alone_is_refused():
    params = {"w": jnp.array([0.3, -0.2])}
    assert not _refused(_line_loss, optax.sgd(0.1), params)  # control: a finite step moves
    nan_loss = lambda p, b, k: (lambda loss, aux: (loss + jax.lax.stop_gradient(jnp.inf), aux))(*_line_loss(p, b, k))  # noqa: E731
    assert _refused(nan_loss, optax.sgd(0.1), params)  # the gradient and the update are finite
    root = lambda p, b, k: (jnp.sum(jnp.sqrt(jnp.abs(p["w"]))), {})  # noqa: E731  # infinite slope at 0
    assert _refused(root, optax.set_to_zero(), {"w": jnp.array([0.0, 1.0])})  # finite loss and update
    assert not _refused(root, optax.set_to_zero(), {"w": jnp.array([4.0, 1.0])})
    assert _refused(_line_loss, optax.sgd(jnp.inf), params)  # finite loss and gradient, infinite params
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):  # every float dtype is checked, not only the default
        assert _refused(_line_loss, optax.sgd(jnp.inf), jax.tree.map(lambda w: w.astype(dtype), params))


def test_a_model_without_float_parameters_still_steps():
    constant = lambda p, b, k: (jnp.asarray(1.0), {})  # noqa: E731
    state, metrics = make_train_step(constant, optax.sgd(0.1))(init_state({}, optax.sgd(0.1), jax.random.key(0)), 0)
    assert bool(metrics["finite"]) and int(state.step) == 1 and float(metrics["grad_norm"]) == 0.0


def test_step_errors_name_what_was_given():
    with pytest.raises(
        TypeError, match=r"^key must be a typed PRNG key from jax.random.key\(seed\); got dtype uint32$"
    ):
        init_state({"w": jnp.zeros(2)}, optax.sgd(0.1), jax.random.PRNGKey(0))
    with pytest.raises(
        TypeError, match=r"^loss_fn must be callable \(params, batch, key\) -> \(loss, metrics\); got 3$"
    ):
        make_train_step(3, optax.sgd(0.1))
    with pytest.raises(TypeError, match="^optimizer must be an optax.GradientTransformation; got function$"):
        make_train_step(_line_loss, lambda lr: None)
    error = NonFiniteError("stopped at step 3", state="last good", step=3)
    assert (str(error), error.state, error.step) == ("stopped at step 3", "last good", 3)
    assert isinstance(error, FloatingPointError)
