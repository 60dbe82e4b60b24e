"""TensorBoard event files written by Run, read back: scalars equal metrics.jsonl, config and report
as text, figures as the same PNG bytes, fit_many's runs one sub-folder each."""

import dataclasses
import json

import jax
import matplotlib.figure
import numpy as np
import pytest
from helpers import OPTIMIZER, STEP, batch_fn, init_params, loss_fn

from rnnjax.training import loop
from rnnjax.training.runs import Run, to_jsonable
from rnnjax.training.step import init_state
from rnnjax.training.tensorboard import MODELS_FOLDER, png_bytes, read_events, resolve_enabled

pytest.importorskip("tensorboardX")


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    learning_rate: float = 0.05
    num_steps: int = 12


def test_fit_scalars_and_config_are_read_back(tmp_path):
    config = TinyConfig()
    with Run("regression", name="fit", config=config, root=tmp_path) as run:
        state = init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(1))
        loop.fit(state, STEP, batch_fn, config.num_steps, run=run, log_every=4, progress=False)
    events = read_events(run.directory)  # after close: tensorboardX writes from a background thread
    for name in ("train/loss", "train/mse"):
        steps, values = run.series(name)
        assert steps == [4, 8, 12]
        assert [step for step, _ in events.scalars[name]] == steps
        np.testing.assert_allclose([value for _, value in events.scalars[name]], values, rtol=1e-6)  # float32
    stored = events.texts["config"][0].strip("`\n")
    assert json.loads(stored) == to_jsonable(config)


def test_fit_many_writes_one_folder_per_run(tmp_path):
    runs = 3
    states = loop.init_many(init_params, OPTIMIZER, jax.random.split(jax.random.key(0), runs))
    with Run("sweep", name="many", root=tmp_path) as run:
        states, metrics = loop.fit_many(loss_fn, OPTIMIZER, states, batch_fn, 10, run=run, log_every=5,
                                          progress=False)  # fmt: skip
    losses = np.asarray(metrics["loss"])  # [runs, steps]
    for index in range(runs):
        events = read_events(run.directory / MODELS_FOLDER / str(index))
        assert [step for step, _ in events.scalars["train/loss"]] == [5, 10]
        expected = [losses[index, :5].mean(), losses[index, 5:].mean()]  # means over each logged chunk
        np.testing.assert_allclose([v for _, v in events.scalars["train/loss"]], expected, rtol=1e-6)
    assert len(list((run.directory / MODELS_FOLDER / "0").glob("events.out.tfevents.*"))) == 1
    overall = read_events(run.directory).scalars["train/loss"]  # the mean over runs, as in metrics.jsonl
    np.testing.assert_allclose([v for _, v in overall], [losses[:, :5].mean(), losses[:, 5:].mean()], rtol=1e-6)
    with pytest.raises(ValueError, match=r"metrics: expected leaves of one shape \[models, steps\]"):
        run.events.many(0, {"loss": np.zeros((2, 3)), "mse": np.zeros((3, 3))})


def test_figures_and_report_are_images(tmp_path):
    figure = matplotlib.figure.Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    with Run("plots", name="report", root=tmp_path) as run:
        saved = run.plot_path("curve")
        figure.savefig(saved)
        run.log_figure("live", figure, step=5)
        run.write_report("# Report\n\nsome text")
    events = read_events(run.directory)
    assert events.images["plots/curve"] == [(0, saved.read_bytes())]
    (step, data), = events.images["live"]
    assert step == 5 and data == png_bytes(figure) and data.startswith(b"\x89PNG")
    assert events.texts["report"] == ["# Report\n\nsome text"]


def test_two_experiments_share_one_logdir(tmp_path):
    """`tensorboard --logdir runs/` sees every run folder that has event files."""
    for experiment in ("weather", "universal_approximation"):
        with Run(experiment, name="quick", config={"experiment": experiment}, root=tmp_path) as run:
            run.log(1, **{"train/loss": 2.0, "note": "text is skipped"})
            run.log(2, **{"train/loss": float("nan")})
    logdirs = sorted(path.parent.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("events.out.tfevents.*"))
    assert sorted(set(logdirs)) == ["universal_approximation/quick", "weather/quick"]
    events = read_events(tmp_path / "weather" / "quick")
    assert events.scalars["train/loss"][0] == (1, 2.0) and np.isnan(events.scalars["train/loss"][1][1])
    assert "note" not in events.scalars


def test_disabled_writes_nothing(tmp_path):
    with Run("off", name="run", config={"a": 1}, root=tmp_path, tensorboard=False) as run:
        run.log(1, loss=1.0)
        run.write_report("# r")
        sub = run.sub("child", config={"b": 2})
        sub.log(1, loss=1.0)
    assert not list(tmp_path.rglob("events.out.tfevents.*"))
    assert resolve_enabled(None) is True
    with pytest.raises(TypeError, match="tensorboard must be True, False or None; got 'yes'"):
        resolve_enabled("yes")
    with pytest.raises(TypeError, match="image: expected a PNG path or a matplotlib Figure; got int"):
        png_bytes(3)


def test_reader_agrees_with_tensorboards_own(tmp_path):
    """read_events against TensorBoard's EventAccumulator (where tensorboard is installed)."""
    accumulator_module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    figure = matplotlib.figure.Figure(figsize=(1, 1), dpi=40)
    with Run("check", name="reader", config={"a": 1}, root=tmp_path) as run:
        for step in range(1, 4):
            run.log(step, loss=1.0 / step, accuracy=0.25 * step)
        run.log_figure("figure", figure, step=2)
    ours = read_events(run.directory)
    accumulator = accumulator_module.EventAccumulator(str(run.directory), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    assert sorted(accumulator.Tags()["scalars"]) == sorted(ours.scalars)
    for tag in ours.scalars:
        assert [(e.step, e.value) for e in accumulator.Scalars(tag)] == ours.scalars[tag]
    (image,) = accumulator.Images("figure")
    assert (image.step, image.encoded_image_string) == ours.images["figure"][0]
    assert (image.width, image.height) == (40, 40)
