"""Training of one probe run: one compiled program over seeds equals separate runs; metrics against an independent
evaluation; the Adam phase is rnnjax.training's step; exact representability; delays; bad configs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import models, targets
from rnnjax.probes.executor import run_group
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.sweep import sweep
from rnnjax.probes.training import Schedule, TrainConfig, adam_phase, best_restart, make_optimizer
from rnnjax.training.optimizers import warmup_cosine_adam
from rnnjax.training.step import init_state, make_train_step

TINY = TrainConfig(length=8, train_size=16, batch_size=8, steps=15, test_size=8, long_factors=(2,), dtype="float64",
                   fast_compile=True)  # fmt: skip


def _train(spec, target, config, seeds, delays):
    """(triples, stacked params, host metrics) of the one group of (spec, target)."""
    (group,) = plan_groups(target, [spec], seeds=seeds, delays=delays, config=config)
    result = run_group(group)
    return result.triples, result.params, result.metrics


def test_four_seeds_in_one_program_equal_four_separate_runs():
    target = targets.kernel_target("exp", targets.exponential_kernel(0.7, 32))
    spec = ModelSpec("gru", width=3)
    _, params, metrics = _train(spec, target, TINY, seeds=(0, 1, 2, 3), delays=(0,))
    for i, seed in enumerate((0, 1, 2, 3)):
        _, one_params, one = _train(spec, target, TINY, seeds=(seed,), delays=(0,))
        for name in ("nmse_train", "nmse_test", "nmse_test_2x", "losses"):
            np.testing.assert_allclose(metrics[name][i], one[name][0], rtol=1e-9, atol=1e-12)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b[0], rtol=1e-9, atol=1e-12), params, one_params)
    assert len({float(v) for v in metrics["nmse_test"]}) == 4  # the seeds really differ


def test_exact_representability_of_an_order_4_target_in_float64():
    kernel = targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 320)
    target = targets.kernel_target("oscillators4", kernel)
    assert targets.state_space_order(kernel) == 4
    config = TrainConfig(length=32, train_size=32, batch_size=32, steps=300, lbfgs_steps=80, test_size=32,
                         long_factors=(10,), dtype="float64", fast_compile=True)  # fmt: skip
    spec = ModelSpec("linear_dense", readout=Readout.NONE)
    records, _ = sweep(target, [spec], widths=(4,), seeds=(0,), config=config)
    assert records[0].nmse_test <= 1e-8 and records[0].nmse_test_long <= 1e-8  # from a random init


def test_delay_semantics_and_vmapped_delays():
    spec = ModelSpec("simple_tanh", width=4)
    params = models.init(spec, jax.random.key(0), 1, 1, jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 6, 1), jnp.float64)
    outputs = models.apply(spec, params, jnp.pad(xs, ((0, 0), (0, 3), (0, 0))), 1)
    for delay in range(4):
        aligned = models.aligned_predictions(spec, params, xs, 1, jnp.asarray(delay), max_delay=3)
        np.testing.assert_allclose(aligned, outputs[:, delay : delay + 6])


def _numpy_simple_tanh(layer: dict, xs: np.ndarray) -> np.ndarray:
    """h_t = tanh(x_t W + h_{t-1} U + b) from h_{-1} = 0, written as a loop over time."""
    kernel, recurrent, bias = (np.asarray(layer[k]) for k in ("input_kernel", "recurrent_kernel", "bias"))
    hidden = np.zeros((xs.shape[0], recurrent.shape[0]))
    outputs = []
    for step in range(xs.shape[1]):
        hidden = np.tanh(xs[:, step] @ kernel + hidden @ recurrent + bias)
        outputs.append(hidden)
    return np.stack(outputs, axis=1)


def test_deep_bidirectional_mlp_model_equals_a_hand_written_forward():
    spec = ModelSpec("simple_tanh", width=3, depth=2, bidirectional=True, readout=Readout.MLP, mlp_width=5)
    params = models.init(spec, jax.random.key(0), 2, 2, jnp.float64)
    xs = np.asarray(jax.random.normal(jax.random.key(1), (4, 7, 2), jnp.float64))
    hidden = xs
    for forward, backward in params["rnn"]["layers"]:  # each layer: forward and time-reversed, concatenated
        reversed_outputs = _numpy_simple_tanh(backward, hidden[:, ::-1])[:, ::-1]
        hidden = np.concatenate([_numpy_simple_tanh(forward, hidden), reversed_outputs], axis=-1)
    readout = {k: np.asarray(v) for k, v in params["readout"].items()}
    expected = np.tanh(hidden @ readout["w1"] + readout["b1"]) @ readout["w2"] + readout["b2"]
    np.testing.assert_allclose(models.apply(spec, params, jnp.asarray(xs), 2), expected, rtol=1e-10, atol=1e-12)


def test_sweep_metrics_equal_an_independent_evaluation_of_the_trained_models():
    """Train and test data regenerated from each seed's keys, predictions from models.apply, NMSE in numpy."""
    target = targets.centred_sum(1)  # non-causal: a wrong delay alignment shows
    spec = ModelSpec("simple_tanh", width=3)
    config = dataclasses.replace(TINY, test_size=16)
    triples, params, metrics = _train(spec, target, config, seeds=(0, 1), delays=(0, 2))
    for i, (_, seed, delay) in enumerate(triples):
        one = jax.tree.map(lambda p, i=i: p[i], params)
        k_data, _, _, k_test = jax.random.split(jax.random.key(seed), 4)
        for name, key, size in (("nmse_train", k_data, config.train_size),
                                ("nmse_test", jax.random.fold_in(k_test, 1), config.test_size)):  # fmt: skip
            xs, ys = targets.sample(target, key, size, config.length, jnp.float64)
            outputs = models.apply(spec, one, jnp.pad(xs, ((0, 0), (0, 2), (0, 0))), 1)
            predictions = np.asarray(outputs)[:, delay : delay + config.length]
            expected = np.mean((predictions - np.asarray(ys)) ** 2) / np.var(np.asarray(ys))
            np.testing.assert_allclose(metrics[name][i], expected, rtol=1e-9)
    assert metrics["nmse_test"][triples.index((0, 0, 2))] < metrics["nmse_test"][triples.index((0, 0, 0))]


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="readout 'none' needs a one-layer linear cell"):
        ModelSpec("gru", readout=Readout.NONE)
    with pytest.raises(ValueError, match="delay must be >= 0; got -1"):
        ModelSpec("gru", delay=-1)
    with pytest.raises(ValueError, match="must share output_size"):
        sweep([targets.delay(1), targets.delay_line(2)], [ModelSpec("gru")], config=TINY)
    with pytest.raises(ValueError, match="dtype must be"):
        TrainConfig(dtype="float16")
    with pytest.raises(ValueError, match="at least one target"):
        targets.check_family([])


def test_the_adam_phase_is_the_training_step_of_rnnjax_training():
    """The probe's scanned Adam phase takes the same steps as ``rnnjax.training``'s jitted train step."""
    xs = jax.random.normal(jax.random.key(0), (16, 3), jnp.float64)
    ys = jnp.sin(xs.sum(-1))
    params = {"w": jnp.full((3,), 0.1, jnp.float64)}
    loss_fn = lambda p, index: jnp.mean((jnp.tanh(xs[index] @ p["w"]) - ys[index]) ** 2)  # noqa: E731
    config = dataclasses.replace(TINY, train_size=16, batch_size=8, steps=6, schedule="warmup_cosine")
    key = jax.random.key(3)
    trained, losses = adam_phase(loss_fn, params, key, config)

    optimizer = make_optimizer(config)
    step = make_train_step(lambda p, index, _key: (loss_fn(p, index), {}), optimizer)
    state, expected = init_state(params, optimizer, jax.random.key(3)), []  # a copy: the step donates its state
    for index in range(config.steps):
        batch = jax.random.choice(jax.random.fold_in(key, index), 16, (8,), replace=False)
        state, metrics = step(state, batch)
        expected.append(metrics["loss"])
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    np.testing.assert_allclose(trained["w"], state.params["w"], rtol=1e-12)
    assert len({float(v) for v in losses}) == config.steps  # the steps really differ


def test_best_restart_keeps_the_fit_of_least_loss_and_starts_from_the_runs_own_keys():
    def fit(init_key, steps_key):  # a "training" whose final loss depends on both keys; one restart diverges
        value = jax.random.uniform(init_key) + jax.random.uniform(steps_key)
        value = jnp.where(value > 1.9, jnp.nan, value)
        return {"w": value}, jnp.stack([value, value])

    loss_fn = lambda params: params["w"] ** 2  # noqa: E731
    init_key, steps_key = jax.random.key(5), jax.random.key(6)
    params, losses = best_restart(fit, loss_fn, init_key, steps_key, 6)
    fits = [fit(init_key, steps_key)] + [fit(jax.random.fold_in(init_key, r), jax.random.fold_in(steps_key, r))
                                         for r in range(1, 6)]  # fmt: skip
    finals = [float(loss_fn(p)) for p, _ in fits]
    best = int(np.nanargmin(finals))
    assert float(params["w"]) == float(fits[best][0]["w"]) and losses.shape == (2,)
    assert len(set(finals)) == 6
    nan_first = lambda init_key, steps_key: ({"w": jnp.nan}, jnp.zeros(2))  # noqa: E731
    assert np.isnan(float(best_restart(nan_first, loss_fn, init_key, steps_key, 2)[0]["w"]))  # all NaN: no crash


def test_restarts_never_train_worse_than_the_runs_own_initialisation():
    spec, target = ModelSpec("linear_dense", width=2, architecture="encoder_decoder"), targets.reversal()
    config = dataclasses.replace(TINY, long_factors=(), steps=30)
    _, _, single = _train(spec, target, config, seeds=(0, 1, 2), delays=(0,))
    _, _, several = _train(spec, target, dataclasses.replace(config, restarts=4), seeds=(0, 1, 2), delays=(0,))
    assert np.all(several["nmse_train"] <= single["nmse_train"] + 1e-9)
    assert np.any(several["nmse_train"] < single["nmse_train"] - 1e-6)  # another start won somewhere
    assert several["losses"].shape == single["losses"].shape


def test_the_schedule_option_sets_the_learning_rate():
    params, grad = {"w": jnp.ones(())}, {"w": jnp.full((), 0.5)}
    first_update = lambda config: make_optimizer(config).update(grad, make_optimizer(config).init(params))[0]["w"]  # noqa: E731
    constant = dataclasses.replace(TINY, schedule="constant", learning_rate=0.1)
    np.testing.assert_allclose(first_update(constant), -0.1, rtol=1e-6)  # Adam's first step: -lr * sign(g)
    assert float(first_update(dataclasses.replace(constant, schedule=Schedule.WARMUP_COSINE))) == 0.0  # warm-up
    cosine = make_optimizer(dataclasses.replace(constant, schedule=Schedule.WARMUP_COSINE))
    expected = warmup_cosine_adam(0.1, constant.steps, constant.clip_norm)
    state, reference = cosine.init(params), expected.init(params)
    for _ in range(3):  # the schedule's optimizer is rnnjax.training's warmup_cosine_adam, step for step
        update, state = cosine.update(grad, state)
        want, reference = expected.update(grad, reference)
        assert float(update["w"]) == float(want["w"])
    assert TrainConfig().schedule is Schedule.CONSTANT
    with pytest.raises(ValueError, match="schedule must be one of 'warmup_cosine', 'constant'; got 'linear'"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="restarts"):
        TrainConfig(restarts=0)
