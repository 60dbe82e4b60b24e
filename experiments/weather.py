"""Weather, many-to-one: temperature 24 h ahead from the last 96 h of hourly weather (pvlib's TMY3 file).

    python experiments/weather.py            # full run
    python experiments/weather.py --quick    # seconds, on a strided slice

Baselines on the same windows: persistence (the temperature now) and ridge regression on the flattened
window (alpha chosen on validation). With ``ridge_skip`` (default) the RNN model is a hybrid: ridge's
forecast is a fixed linear highway (as in LSTNet) and a GRU reading the window learns the correction
(target - ridge forecast), with a zero-initialised readout, so training starts from ridge and early stopping
on validation MAE decides how far it moves. Several seeds train at once (``fit_many``) and their mean
prediction is the RNN forecast. Hyperparameters were chosen on validation MAE only.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data import device_batch_indices
from rnnjax.data.weather import TEMPERATURE, load_weather, ridge_baseline, ridge_predict
from rnnjax.tasks.heads import ManyToOne, dense
from rnnjax.training import train
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.runs import markdown_table


@dataclasses.dataclass(frozen=True)
class WeatherConfig:
    """Temperature 24 h ahead from 96 h of weather: RNN vs persistence vs ridge."""

    window: int = 96
    horizon: int = 24
    stride: int = 1
    cell: str = "gru"
    hidden_size: int = 32
    input_noise: float = 0.3
    dropout: float = 0.5
    l1_loss: bool = True  # the reported metric is MAE; also steadier on validation than MSE
    seeds: int = 10
    batch_size: int = 64
    num_steps: int = 1000
    eval_every: int = 50
    optimizer: train.OptimizerConfig = train.OptimizerConfig(
        name="adamw", learning_rate=3e-4, warmup_steps=50, decay="cosine", decay_steps=1000, weight_decay=1e-2
    )
    ridge_skip: bool = True  # the RNN corrects ridge's forecast (a fixed linear highway), not persistence
    ridge_alphas: tuple[float, ...] = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5)
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "window", "horizon", "stride", "hidden_size",
            "seeds", "batch_size", "num_steps", "eval_every", "ridge_alphas",
        )

    @classmethod
    def quick(cls):
        optimizer = train.OptimizerConfig(learning_rate=3e-3, warmup_steps=5, decay="cosine", decay_steps=40)
        return cls(stride=8, hidden_size=16, seeds=2, num_steps=40, eval_every=20, optimizer=optimizer, run=RunConfig.quick())  # fmt: skip


def make_model(config: WeatherConfig, key: jax.Array, input_size: int):
    """(model, params); with ``ridge_skip`` the readout starts at zero, so the model starts as ridge."""
    model = ManyToOne(RNN(make_cell(config.cell), config.hidden_size), num_outputs=1)
    params = model.init(key, input_size=input_size, dtype=jnp.float32)
    if config.ridge_skip:
        params["readout"] = jax.tree.map(jnp.zeros_like, params["readout"])
    return model, params


def make_loss(config: WeatherConfig, model: ManyToOne):
    """Loss on the normalised residual target, with input noise and dropout before the readout."""

    def loss_fn(params, batch, key):
        inputs, residual = batch
        noise_key, drop_key = jax.random.split(key)
        inputs = inputs + config.input_noise * jax.random.normal(noise_key, inputs.shape, inputs.dtype)
        features = model.encode(params, inputs)
        keep = jax.random.bernoulli(drop_key, 1.0 - config.dropout, features.shape)
        features = jnp.where(keep, features / (1.0 - config.dropout), 0.0)
        error = dense(params["readout"], features)[:, 0] - residual
        loss = jnp.mean(jnp.abs(error)) if config.l1_loss else jnp.mean(error**2)
        return loss, {}

    return loss_fn


def main(argv: list[str] | None = None) -> dict:
    config = cli(WeatherConfig, argv, presets={"quick": WeatherConfig.quick})
    run = config.run.open("weather", config)
    data = load_weather(config.window, config.horizon, stride=config.stride)
    ridge = ridge_baseline(data, config.ridge_alphas)  # baseline, and with ridge_skip the RNN's linear highway

    def base(split):  # deg C: what the RNN corrects (ridge's forecast, or persistence)
        return split.current + (ridge_predict(ridge.weights, split.inputs) if config.ridge_skip else 0.0)

    scale = float(data.std[TEMPERATURE])  # the RNN predicts (target - base) / scale
    inputs = jnp.asarray(data.train.inputs)  # on device: fit_many scans over steps
    residual = jnp.asarray((data.train.target - base(data.train)) / scale, jnp.float32)
    data_key = jax.random.key(config.run.seed + 1000)

    def batch_fn(step):
        index = device_batch_indices(data_key, step, len(residual), config.batch_size)
        return inputs[index], residual[index]

    model, _ = make_model(config, jax.random.key(0), inputs.shape[-1])
    predict_residual = jax.jit(jax.vmap(lambda params, x: model.apply(params, x)[:, 0] * scale, in_axes=(0, None)))

    def predict(params, split):  # [seeds, examples] in deg C
        return base(split) + train.batched_apply(lambda x: predict_residual(params, x).T, (split.inputs,), 512).T

    def mae(predictions, split):
        return np.abs(predictions - split.target).mean(-1)

    def evaluate(params):  # the stacked params of every seed
        val = predict(params, data.val)
        return {"mae": mae(val.mean(0), data.val), "mae_single_mean": mae(val, data.val).mean()}

    optimizer = train.make_optimizer(config.optimizer)
    keys = jax.random.split(jax.random.key(config.run.seed), config.seeds)
    states = train.init_many(lambda key: make_model(config, key, inputs.shape[-1])[1], optimizer, keys)
    checkpointer = Checkpointer(run.checkpoint_dir, save_every=config.eval_every, keep=2, best_metric="val/mae")
    started = time.perf_counter()
    states, _ = train.fit_many(make_loss(config, model), optimizer, states, batch_fn, config.num_steps, run=run,
                               eval_fn=evaluate, eval_every=config.eval_every, log_every=config.eval_every,
                               checkpointer=checkpointer, progress=False if config.run.quiet else None)  # resumes
    seconds = time.perf_counter() - started
    best = checkpointer.restore_best(states)
    checkpointer.close()
    rnn_test = predict(best.params, data.test)
    ridge_test = data.test.current + ridge_predict(ridge.weights, data.test.inputs)
    results = {
        "test_mae_rnn": float(mae(rnn_test.mean(0), data.test)),
        "test_mae_rnn_single_seeds": mae(rnn_test, data.test).tolist(),
        "test_mae_persistence": float(np.abs(data.test.current - data.test.target).mean()),
        "test_mae_ridge": float(np.abs(ridge_test - data.test.target).mean()),
        "val_mae_rnn": float(mae(predict(best.params, data.val).mean(0), data.val)),
        "val_mae_ridge": ridge.val_mae,
        "val_mae_persistence": float(np.abs(data.val.current - data.val.target).mean()),
        "ridge_alpha": ridge.alpha,
        "best_step": checkpointer.best_step(),
        "train_seconds": seconds,
        "examples": {"train": len(data.train.target), "val": len(data.val.target), "test": len(data.test.target)},
    }
    results["rnn_beats_baselines"] = results["test_mae_rnn"] < min(
        results["test_mae_persistence"], results["test_mae_ridge"]
    )
    run.write_results(results)
    write_plots_and_report(run, config, data, results, rnn_test.mean(0), ridge_test)
    print(markdown_table([{k: v for k, v in results.items() if "mae" in k and "seeds" not in k}]))
    return results


def write_plots_and_report(run, config, data, results, rnn_test, ridge_test) -> None:
    loss = "L1" if config.l1_loss else "MSE"
    plots.learning_curves(
        run, ["train/loss"], run.plot_path("train_loss"), title=f"train {loss} (normalised)", log_y=True
    )
    plots.learning_curves(run, ["val/mae"], run.plot_path("val_mae"), title="validation MAE (deg C)")
    span = slice(0, min(14 * 24, len(data.test.target)) // config.stride)
    plots.lines(
        {"true": data.test.target[span], "RNN": rnn_test[span], "ridge": ridge_test[span],
         "persistence": data.test.current[span]},
        run.plot_path("test_forecast"), xlabel=f"test window (stride {config.stride} h)", ylabel="deg C",
        title=f"temperature {config.horizon} h ahead, first test weeks",
    )  # fmt: skip
    names = {"RNN": "test_mae_rnn", "ridge": "test_mae_ridge", "persistence": "test_mae_persistence"}
    plots.bars({n: results[k] for n, k in names.items()}, run.plot_path("test_mae"), ylabel="test MAE (deg C)")
    rows = [{"model": n, "val MAE (deg C)": results[k.replace("test", "val")], "test MAE (deg C)": results[k]}
            for n, k in names.items()]  # fmt: skip
    run.write_report(
        f"# Weather: temperature {config.horizon} h ahead from {config.window} h\n\n"
        f"Greensboro NC TMY3 (pvlib), chronological 70/15/15 split, {results['examples']} windows.\n"
        f"RNN: {'ridge forecast + ' if config.ridge_skip else 'persistence + '}"
        f"{config.cell.upper()} {config.hidden_size} correction ({loss} loss), "
        f"mean of {config.seeds} seeds, {config.num_steps} steps in "
        f"{results['train_seconds']:.0f} s; "
        f"best validation step {results['best_step']}; ridge alpha {results['ridge_alpha']} (same windows and "
        "features as the RNN; alpha and every RNN setting chosen on validation).\n\n"
        f"{markdown_table(rows)}\n\n![test MAE](plots/test_mae.png)\n![forecast](plots/test_forecast.png)\n"
        "![validation MAE](plots/val_mae.png)\n![train loss](plots/train_loss.png)\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
