"""Data-driven linear floors and their intervals: against the closed-form floors of zoo targets, and equivalences.

Synthetic validation: on data sampled from targets with known floors (centred sum, a short anti-causal filter,
reversal, a low-pass encoder-decoder operator), every data-driven floor's 95% interval holds the closed form, and
the delay at which the causal floor meets the non-causal one is the target's look-ahead.
"""

import numpy as np
import pytest
import scipy.optimize

from rnnjax.probes import targets, task_floors, task_metrics, task_report, theory
from rnnjax.probes.statistics import nmse_interval
from rnnjax.probes.task_data import sample_task, split_task, task_data

SLACK = 1e-9  # a noise-free fit leaves ~1e-15 of rounding: a closed form of exactly 0 counts as inside
WIDEN = 3.29 / 1.96
"""The rows carry 95% intervals; one test makes up to ~25 comparisons, so each is checked at 99.9% (Bonferroni:
z = 3.29). Over 12 data seeds the D = 0 centred-sum floor's z-scores against the closed form were
-2.0 .. 1.2 (mean -0.4): the 95% intervals are calibrated, and 95% per comparison would fail ~1 run in 3."""


def _inside(value: float, row: dict) -> bool:
    half = WIDEN * (row["error_high"] - row["error_low"]) / 2
    return abs(row["error"] - value) <= half + SLACK


@pytest.mark.parametrize(
    "target, lookahead, window",
    [(targets.centred_sum(2), 2, 6), (targets.anticausal_filter(0.8, 4), 3, 6), (targets.reversal(), 15, 16)],
    ids=["centred_sum2", "anticausal_support4", "reversal"],
)
def test_causal_floors_match_the_closed_form(target, lookahead, window):
    length = 16
    data = sample_task(target, 500, length, seed=1)
    floors = task_floors.linear_floors(data, split_task(data), window=window, max_delay=min(lookahead + 2, length - 1))
    for row in floors:
        closed = theory.time_invariant_floor(target, length, row["delay"])
        assert _inside(closed, row), (row, closed)
        if target.time_invariant and row["delay"] is not None:  # the time-invariant fit is the conditional mean
            assert abs(closed - theory.causal_floor(target, length, row["delay"])) < 1e-12
    assert task_report.floor_delay_needed(floors) == lookahead


def test_rank_floors_match_eckart_young():
    target, length = targets.spectral_lowpass("geometric", 0.7), 12
    operator = theory.linear_operator(target, length)[:, 0, :]
    inputs = np.random.default_rng(0).normal(size=(500, length, 1))
    data = task_data(inputs, np.einsum("tj,njd->ntd", operator, inputs), aligned=False)
    floors = task_floors.linear_floors(data, split_task(data), ranks=(1, 2, 4, 8))
    assert [row["floor"] for row in floors] == ["linear", "rank", "rank", "rank", "rank"]
    assert _inside(0.0, floors[0])
    for row in floors[1:]:
        assert _inside(theory.rank_floor(target, length, row["rank"]), row), row


def test_lag_features_are_shifted_inputs():
    inputs = np.random.default_rng(0).normal(size=(3, 7, 2))
    lags = [-3, -1, 0, 2, 5]
    features = task_floors.lag_features(inputs, lags).reshape(3, 7, len(lags), 2)
    for index, lag in enumerate(lags):
        for t in range(7):
            expected = inputs[:, t - lag] if 0 <= t - lag < 7 else np.zeros((3, 2))
            np.testing.assert_array_equal(features[:, t, index], expected)
    assert task_floors.causal_lags(4, 2) == [-2, -1, 0, 1, 2, 3]
    assert task_floors.causal_lags(3, None) == [-2, -1, 0, 1, 2]


def test_ridge_without_penalty_is_least_squares():
    rng = np.random.default_rng(0)
    features, targets_ = rng.normal(size=(200, 5)), rng.normal(size=(200, 2))
    ridge = task_floors.Ridge(features, targets_)
    design = np.concatenate([features, np.ones((200, 1))], 1)
    solution = np.linalg.lstsq(design, targets_, rcond=None)[0]
    np.testing.assert_allclose(ridge.predict(features, ridge.weights(0.0)), design @ solution, atol=1e-10)
    shrunk = ridge.weights(10.0)
    assert np.linalg.norm(shrunk) < np.linalg.norm(ridge.weights(0.0))


@pytest.mark.parametrize("rank", [None, 2])
def test_logistic_gradient_matches_finite_differences(rank):
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(30, 4)), rng.integers(0, 3, (30, 2))
    mask = (rng.random((30, 2)) > 0.2).astype(float)
    shapes = [(4, 6)] if rank is None else [(4, rank), (rank, 6)]
    shapes.append((6,))
    parameters = rng.normal(size=sum(int(np.prod(s)) for s in shapes))
    objective = lambda p: task_floors._logistic_objective(p, shapes, features, labels, mask, 0.3)  # noqa: E731
    error = scipy.optimize.check_grad(lambda p: objective(p)[0], lambda p: objective(p)[1], parameters)
    assert error < 1e-6 * np.linalg.norm(objective(parameters)[1]) + 1e-7


def test_label_floors_find_the_lookahead():
    """y_t = 1[x_{t+1} > 0]: the causal logistic floor is at chance for D = 0 and near perfect from D = 1."""
    inputs = np.random.default_rng(0).normal(size=(300, 10, 1))
    labels = (np.roll(inputs[..., 0], -1, axis=1) > 0).astype(int)
    labels[:, -1] = 0  # after the end the input reads as zero
    data = task_data(inputs, labels, classes=2)
    floors = task_floors.linear_floors(data, split_task(data), window=3, max_delay=2)
    by_delay = {row["delay"]: row for row in floors}
    assert by_delay[0]["accuracy_high"] < 0.65 and by_delay[1]["accuracy"] > 0.97
    assert by_delay[0]["error"] > 0.5 > 0.1 > by_delay[1]["error"]
    assert task_report.floor_delay_needed(floors) == 1


def test_rank_logistic_at_full_rank_is_no_worse_than_low_rank():
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(240, 6, 2))
    labels = np.stack([(inputs[:, 5 - t, 0] > 0).astype(int) for t in range(4)], 1)  # reversal of signs
    data = task_data(inputs, labels, classes=2, aligned=False)
    floors = task_floors.linear_floors(data, split_task(data), ranks=(1, 4))
    linear, rank1, rank4 = floors
    assert (linear["floor"], rank1["rank"], rank4["rank"]) == ("linear", 1, 4)
    assert rank1["accuracy"] < rank4["accuracy"] and rank4["accuracy"] > 0.9


def test_masked_nmse_is_the_pooled_nmse():
    rng = np.random.default_rng(0)
    predictions, values = rng.normal(size=(20, 6, 2)), rng.normal(size=(20, 6, 2)) + 0.5
    full = task_metrics.scores(predictions, values, np.ones((20, 6), bool), labels=False)
    expected = nmse_interval(predictions, values)
    np.testing.assert_allclose([full["error"], full["error_low"], full["error_high"]], expected, rtol=1e-12)
    mask = np.arange(6)[None, :] < 4  # the same length everywhere: padding must not count
    garbage = predictions.copy()
    garbage[:, 4:] = 1e6
    masked = task_metrics.scores(garbage, values, np.repeat(mask, 20, 0), labels=False)
    np.testing.assert_allclose(masked["error"], nmse_interval(predictions[:, :4], values[:, :4])[0], rtol=1e-12)


def test_label_scores_are_cross_entropy_and_accuracy():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(8, 5, 3)), rng.integers(0, 3, (8, 5))
    mask = rng.random((8, 5)) > 0.3
    scores = task_metrics.scores(logits, labels, mask, labels=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    picked = np.take_along_axis(probabilities, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(scores["error"], -np.log(picked)[mask].mean(), rtol=1e-12)
    np.testing.assert_allclose(scores["accuracy"], (logits.argmax(-1) == labels)[mask].mean(), rtol=1e-12)
    assert scores["error_low"] <= scores["error"] <= scores["error_high"]
    assert scores["accuracy_low"] <= scores["accuracy"] <= scores["accuracy_high"] <= 1.0


def test_accuracy_interval_stays_open_when_every_label_is_right():
    labels = np.random.default_rng(0).integers(0, 3, (40, 5))
    logits = np.eye(3)[labels] * 5.0
    scores = task_metrics.scores(logits, labels, np.ones((40, 5), bool), labels=True)
    assert scores["accuracy"] == 1.0 and scores["accuracy_high"] == 1.0
    np.testing.assert_allclose(scores["accuracy_low"], 200 / (200 + 1.959963984540054**2), rtol=1e-12)  # Wilson
    low, high = task_metrics.wilson_interval(np.float64(30), np.float64(50))
    assert low < 0.6 < high and np.isclose((low + high) / 2, (0.6 + 1.96**2 / 100) / (1 + 1.96**2 / 50), rtol=1e-3)
