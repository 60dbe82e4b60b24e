"""The class optimum against independent computations: brute force over the model's own parameters, Monte Carlo,
the Eckart-Young floor, the time-invariant floor and the width bounds of rnnjax.probes.theory."""

import dataclasses

import jax
import jax.numpy as jnp
import optax
import pytest

from rnnjax.probes import models, optimum, targets, theory
from rnnjax.probes.models import Architecture, ModelSpec, Readout

ENCODER_DECODER = ModelSpec("linear_dense", architecture=Architecture.ENCODER_DECODER)
LINEAR = ModelSpec("linear_dense", readout=Readout.NONE)
SEARCH = optimum.SearchConfig(restarts=8, steps=150, monte_carlo=4096)


def _brute_force(spec: ModelSpec, target: targets.Target, length: int, restarts: int = 24, steps: int = 400) -> float:
    """Best population NMSE over the model's own parameters (models.init layout, every matrix free), found by
    L-BFGS from many random initialisations; the objective is the forward pass on the unit inputs."""
    reference = jnp.asarray(theory.linear_operator(target, length))
    units = jnp.concatenate([jnp.eye(length)[:, :, None], jnp.zeros((1, length, 1))])
    output_length = target.output_length(length)

    def loss(params):
        outputs = models.aligned_predictions(spec, params, units, 1, spec.delay, spec.delay, output_length)
        found = jnp.moveaxis(outputs[:-1] - outputs[-1], 0, -1)
        return (jnp.sum((found - reference) ** 2) + jnp.sum(outputs[-1] ** 2)) / jnp.sum(reference**2)

    def solve(key):
        params = models.init(spec, key, 1, 1, jnp.float64)
        optimizer, value_and_grad = optax.lbfgs(), optax.value_and_grad_from_state(loss)

        def step(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(params, updates), state), None

        params = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)[0][0]
        return loss(params)

    values = jax.jit(jax.vmap(solve))(jax.random.split(jax.random.key(1), restarts))
    return float(jnp.nanmin(values))


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("make", [lambda: targets.spectral_lowpass("geometric", 0.7), lambda: targets.pooling(2)])
def test_encoder_decoder_optimum_equals_brute_force_over_the_models_own_parameters(make, width):
    target, length = make(), 4
    found = optimum.class_optimum(target, ENCODER_DECODER, width, length, SEARCH)
    brute = _brute_force(dataclasses.replace(ENCODER_DECODER, width=width), target, length)
    assert found.kind == "exact"
    assert found.nmse <= brute + 1e-6  # never worse than direct optimisation of the parameters ...
    assert found.nmse >= brute - 1e-3  # ... and the brute force reaches it (it is not below the class)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_aligned_optimum_equals_brute_force_over_the_models_own_parameters(width):
    target, length = targets.kernel_target("bump", targets.bump_kernel(3, 1.0, 8)), 6
    found = optimum.class_optimum(target, LINEAR, width, length, SEARCH)
    brute = _brute_force(dataclasses.replace(LINEAR, width=width), target, length)
    assert brute - 1e-3 <= found.nmse <= brute + 1e-6


@pytest.mark.parametrize("make", [targets.reversal, lambda: targets.spectral_lowpass("power", 0.5), targets.pooling])
@pytest.mark.parametrize("width", [1, 3, 5, 8])
def test_encoder_decoder_optimum_is_never_below_the_rank_floor_and_zero_at_full_width(make, width):
    target, length = make(), 8
    found = optimum.class_optimum(target, ENCODER_DECODER, width, length, SEARCH)
    floor = theory.rank_floor(target, length, width)
    assert found.nmse >= floor - 1e-9
    if width >= length:
        assert found.nmse < 1e-9
    if target.name == "reversal":  # shift registers reach Eckart-Young exactly: (N - m) / N
        assert found.nmse == pytest.approx(floor, abs=1e-6)


def test_encoder_decoder_optimum_is_strictly_above_the_rank_floor_for_pooling():
    target, length, width = targets.pooling(2), 16, 8  # the rank floor is 0; the class's row and column spaces
    found = optimum.class_optimum(target, ENCODER_DECODER, width, length, SEARCH)  # are sums of exponentials
    assert theory.rank_floor(target, length, width) == pytest.approx(0.0, abs=1e-12)
    assert found.nmse > 0.1  # 0.141


@pytest.mark.parametrize("delay", [0, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_wide_aligned_optimum_is_the_time_invariant_floor(delay, bidirectional):
    target, length = targets.anticausal_filter(0.7, 8), 8
    spec = dataclasses.replace(LINEAR, delay=0 if bidirectional else delay, bidirectional=bidirectional)
    found = optimum.class_optimum(target, spec, length + delay, length, SEARCH)
    floor = theory.time_invariant_floor(target, length, None if bidirectional else delay)
    assert found.nmse == pytest.approx(floor, abs=1e-6)
    assert (floor < 1e-9) == bidirectional  # the unidirectional model misses the future taps beyond D


@pytest.mark.parametrize("width", [1, 2, 3])
def test_aligned_optimum_lies_in_the_width_bounds(width):
    kernel = targets.power_law_kernel(0.5, 64)
    target, length = targets.kernel_target("power_law", kernel), 12
    found = optimum.class_optimum(target, LINEAR, width, length, SEARCH)
    lower, upper = theory.width_bounds(kernel, width, length)
    assert lower - 1e-9 <= found.nmse <= upper + 1e-9


def test_an_order_one_kernel_is_exact_at_width_one_and_many_to_one_counts_the_last_step_only():
    exponential = targets.kernel_target("exponential", targets.exponential_kernel(0.8, 64))
    assert optimum.class_optimum(exponential, LINEAR, 1, 10, SEARCH).nmse < 1e-9
    last = targets.as_many_to_one(targets.centred_sum(2))  # y_{T-1} = x_{T-3} + x_{T-2} + x_{T-1}
    assert optimum.class_optimum(last, LINEAR, 3, 10, SEARCH).nmse < 1e-9
    assert optimum.class_optimum(last, LINEAR, 1, 10, SEARCH).nmse > 1e-3
    assert optimum.class_optimum(targets.centred_sum(2), LINEAR, 2, 10, SEARCH).nmse > 0.3


def test_population_nmse_matches_monte_carlo_for_random_parameters():
    target, length = targets.spectral_lowpass("geometric", 0.7), 6
    for spec in (dataclasses.replace(ENCODER_DECODER, width=3), dataclasses.replace(LINEAR, width=3, delay=1)):
        params = models.init(spec, jax.random.key(2), 1, 1, jnp.float64)
        params = jax.tree.map(lambda leaf: leaf + 0.1, params)  # nonzero offsets too
        exact = optimum.population_nmse(spec, params, target, length)
        estimate, low, high = optimum.monte_carlo_nmse(spec, params, target, length, 20000, jax.random.key(3))
        assert low <= exact <= high


def test_restarts_and_seed_change_the_search_not_the_optimum():
    target = targets.spectral_lowpass("geometric", 0.7)
    values = [optimum.class_optimum(target, ENCODER_DECODER, 2, 8, dataclasses.replace(SEARCH, **change)).nmse
              for change in ({}, {"seed": 5}, {"restarts": 24})]  # fmt: skip
    assert max(values) - min(values) < 1e-7
    one_step = optimum.class_optimum(target, ENCODER_DECODER, 2, 8, dataclasses.replace(SEARCH, steps=1, restarts=1))
    assert one_step.nmse > min(values) + 1e-3


def test_classes_without_a_closed_form_give_none():
    lowpass = targets.spectral_lowpass("geometric", 0.7)
    assert optimum.class_optimum(lowpass, ModelSpec("gru", architecture=Architecture.ENCODER_DECODER), 2, 8) is None
    assert optimum.class_optimum(lowpass, ModelSpec("linear_dense", architecture=Architecture.ATTENTION), 2, 8) is None
    assert optimum.class_optimum(targets.sorting(), ENCODER_DECODER, 2, 8) is None
    assert optimum.class_optimum(targets.delay(2), ModelSpec("linear_dense"), 2, 8) is None  # linear readout


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="width"):
        optimum.class_optimum(targets.reversal(), ENCODER_DECODER, 0, 8)
    with pytest.raises(ValueError, match="restarts"):
        optimum.SearchConfig(restarts=0)
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="jax_enable_x64"):
            optimum.class_optimum(targets.reversal(), ENCODER_DECODER, 2, 8)
