"""rnnjax.apps.weather: the forecaster (starts as ridge, seeds vmapped) and the report."""

import dataclasses

import jax
import numpy as np

from rnnjax.apps import weather
from rnnjax.data.weather import Weather, Windows, ridge_baseline, ridge_predict


def _synthetic(rng, examples=(96, 48, 96), window=6, features=3) -> Weather:
    def split(n):
        inputs = rng.normal(size=(n, window, features)).astype(np.float32)
        current = rng.normal(15, 5, n).astype(np.float32)
        target = (current + 2 * inputs[:, -1, 0] + rng.normal(0, 0.5, n)).astype(np.float32)
        return Windows(inputs, target, current)

    return Weather(*(split(n) for n in examples), np.zeros(features, np.float32), np.full(features, 4.0, np.float32),
                   ("a", "b", "c"))  # fmt: skip


def _config(**changes):
    return dataclasses.replace(weather.WeatherConfig.quick(), hidden_size=4, stride=24, **changes)


def _stacked_params(config, data, seeds):
    keys = jax.random.split(jax.random.key(0), seeds)
    return jax.vmap(lambda key: weather.make_model(config, key, data.train.inputs.shape[-1])[1])(keys)


def test_every_seed_starts_as_ridge_and_does_not_beat_it():
    """A zero readout: the forecast is exactly ridge's, so no seed may 'beat' ridge and the gap is exactly 0."""
    config, data = _config(block_days=2), _synthetic(np.random.default_rng(0))
    forecaster = weather.Forecaster.build(config, data, ridge_baseline(data, (1.0, 10.0)))
    trained = weather.Trained(_stacked_params(config, data, 3), best_step=0, seconds=1.0, cpu_seconds=2.0)
    results, forecasts = weather.evaluate(config, forecaster, data, trained)
    ridge = data.test.current + ridge_predict(forecaster.ridge.weights, data.test.inputs)
    np.testing.assert_allclose(forecasts["RNN"], ridge, rtol=1e-6)
    assert np.allclose(results["test_mae_rnn_single_seeds"], results["test_mae_ridge"])
    assert results["single_seeds_vs_ridge"]["p_value"] == [1.0] * 3 and not results["every_seed_beats_ridge"]
    assert results["bootstrap"]["block_windows"] == 2 and results["test_mae_ridge"] < results["test_mae_persistence"]
    assert not any(verdict["every_seed_beats_ridge"] for verdict in results["block_days_sensitivity"].values())
    report = weather.report_markdown(config, results)
    assert "not every seed beats ridge" in report and "3 seeds" in report
    maes, gap = weather.headline(results)
    assert maes.startswith(f"test MAE: RNN (mean of seeds) {results['test_mae_rnn']:.3f} deg C; single seeds ")
    assert "+- 0.000 deg C" in maes and "3 seeds" in maes  # every seed is ridge: no spread
    assert gap.startswith("mean of seeds minus ridge +0.000 (95% CI ") and "0.000 to +0.000, p " in gap  # float noise
    assert gap.endswith("not every seed beats ridge beyond noise")


def test_predict_over_stacked_seeds_matches_each_seed_alone():
    config, data = _config(ridge_skip=False), _synthetic(np.random.default_rng(1))
    forecaster = weather.Forecaster.build(config, data, ridge_baseline(data, (1.0,)))
    params = _stacked_params(config, data, 2)
    both = forecaster.predict(params, data.test, batch_size=40)
    for seed in range(2):
        alone = forecaster.predict(jax.tree.map(lambda leaf: leaf[seed : seed + 1], params), data.test, batch_size=96)
        np.testing.assert_allclose(both[seed], alone[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(both[0], data.test.current)  # a random readout: the base alone is persistence here
    np.testing.assert_allclose(forecaster.base(data.test), data.test.current)


def test_compare_errors_is_the_mae_gap():
    rng = np.random.default_rng(2)
    split = _synthetic(rng).test
    better, worse = split.target + rng.normal(0, 0.1, len(split.target)), split.current
    compared = weather.compare_errors(better[None], worse, split, block=4, draws=500)
    assert np.isclose(compared["mean"][0], np.abs(better - split.target).mean() - np.abs(worse - split.target).mean())
    assert compared["beats"] and not weather.compare_errors(worse, better, split, block=4, draws=500)["beats"]
