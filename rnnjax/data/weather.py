"""Hourly weather at Greensboro, NC: the NREL TMY3 file bundled with pvlib (``pvlib/data/723170TYA.CSV``).

8,760 hours. Each example is a window of ``window`` hours of weather features and the target is the
air temperature ``horizon`` hours after the window's last hour. The split is chronological (first 70%
of the hours train, next 15% validation, last 15% test; no window crosses a boundary) and the
normalisation statistics come from the training hours only.

    data = load_weather()          # Weather(train, val, test, mean, std, feature_names)
    data.train.inputs              # float32 [examples, window, features], normalised
    data.train.target              # float32 [examples], deg C, `horizon` h after the window
    data.train.current             # float32 [examples], deg C at the window's last hour (persistence)
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from rnnjax.checks import arguments
from rnnjax.data import package_dir

COLUMNS = (
    "temp_air", "temp_dew", "relative_humidity", "pressure", "wind_speed",
    "ghi", "dni", "dhi", "TotCld (tenths)", "OpqCld (tenths)",
)  # fmt: skip
CYCLIC = ("wind_dir_sin", "wind_dir_cos", "hour_sin", "hour_cos")  # no day of year: test months are unseen
FEATURE_NAMES = COLUMNS + CYCLIC
TEMPERATURE = 0  # column of temp_air


class Windows(NamedTuple):
    inputs: np.ndarray  # float32 [examples, window, features]
    target: np.ndarray  # float32 [examples]
    current: np.ndarray  # float32 [examples]


class Weather(NamedTuple):
    train: Windows
    val: Windows
    test: Windows
    mean: np.ndarray  # [features], from the training hours
    std: np.ndarray  # [features]
    feature_names: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def load_hours() -> np.ndarray:
    """The raw hourly table, float64 ``[8760, features]`` in ``FEATURE_NAMES`` order."""
    from pvlib.iotools import read_tmy3

    path = package_dir("pvlib") / "data" / "723170TYA.CSV"
    frame, _ = read_tmy3(str(path), map_variables=True)
    columns = [frame[name].to_numpy(np.float64) for name in COLUMNS]
    direction = np.deg2rad(frame["wind_direction"].to_numpy(np.float64))
    hour = 2 * np.pi * np.asarray(frame.index.hour, np.float64) / 24
    cyclic = [np.sin(direction), np.cos(direction), np.sin(hour), np.cos(hour)]
    return np.stack(columns + cyclic, axis=1)


def _windows(hours: np.ndarray, raw_temperature: np.ndarray, window: int, horizon: int, stride: int) -> Windows:
    ends = np.arange(window - 1, len(hours) - horizon, stride)
    index = ends[:, None] + np.arange(-window + 1, 1)[None, :]
    return Windows(
        inputs=hours[index].astype(np.float32),
        target=raw_temperature[ends + horizon].astype(np.float32),
        current=raw_temperature[ends].astype(np.float32),
    )


def load_weather(
    window: int = 96, horizon: int = 24, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), stride: int = 1
) -> Weather:
    """Chronological train/val/test windows; see the module docstring."""
    arguments.positive_int("window", window)
    arguments.positive_int("horizon", horizon)
    arguments.positive_int("stride", stride)
    hours = load_hours()
    bounds = np.round(np.cumsum((0.0, *fractions)) * len(hours)).astype(int)
    train_hours = hours[: bounds[1]]
    mean, std = train_hours.mean(0), train_hours.std(0) + 1e-6
    normalised = (hours - mean) / std
    temperature = hours[:, TEMPERATURE]
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if stop - start < window + horizon:
            raise ValueError(f"a split of {stop - start} hours is shorter than window + horizon = {window + horizon}")
        parts.append(_windows(normalised[start:stop], temperature[start:stop], window, horizon, stride))
    return Weather(*parts, mean.astype(np.float32), std.astype(np.float32), FEATURE_NAMES)


class Ridge(NamedTuple):
    alpha: float  # chosen on validation
    weights: np.ndarray  # float64 [window * features + 1], last entry the intercept
    val_mae: float  # deg C


def ridge_fit(inputs: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
    """w = argmin |[X 1] w - y|^2 + alpha |w[:-1]|^2 on flattened windows ``inputs: [examples, window, features]``."""
    x = np.concatenate([inputs.reshape(len(inputs), -1), np.ones((len(inputs), 1))], axis=1).astype(np.float64)
    penalty = alpha * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + penalty, x.T @ targets.astype(np.float64))


def ridge_predict(weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """[X 1] w: the predicted change in temperature (deg C), ``[examples]``."""
    return inputs.reshape(len(inputs), -1) @ weights[:-1] + weights[-1]


def ridge_baseline(data: Weather, alphas: tuple[float, ...]) -> Ridge:
    """Ridge on the change (target - current) over training windows, alpha with the lowest validation MAE."""
    if not alphas:
        raise ValueError("alphas must name at least one ridge penalty; got ()")
    change = data.train.target - data.train.current
    scored = []
    for alpha in alphas:
        weights = ridge_fit(data.train.inputs, change, alpha)
        val = data.val.current + ridge_predict(weights, data.val.inputs)
        scored.append(Ridge(float(alpha), weights, float(np.abs(val - data.val.target).mean())))
    return min(scored, key=lambda r: r.val_mae)
