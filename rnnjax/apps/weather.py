"""Weather: a GRU that corrects ridge's 24-h temperature forecast, trained over seeds, against ridge and persistence.

    outcome = run(WeatherConfig())                               # the whole experiment
    data = load_weather(96, 24)
    forecaster = Forecaster.build(config, data, ridge_baseline(data, config.ridge_alphas))
    trained = train_seeds(config, forecaster, data, run)          # every seed in one fit_many program
    results, forecasts = evaluate(config, forecaster, data, trained)
    write_report(run, config, data, results, forecasts)

The forecast is ``base + scale * GRU(window)``: ``base`` is the temperature now plus ridge's predicted change
(``ridge_skip``) or the temperature now alone, and the readout starts at zero, so every seed starts as the base.

Errors of forecasts on neighbouring windows are correlated (the same weather spell), so a paired comparison
on the hourly test windows would overstate the evidence. :func:`rnnjax.training.stats.block_bootstrap`
resamples whole blocks of ``block_days`` contiguous days (circular block bootstrap, Politis & Romano 1992) of the
per-window difference |model - truth| - |baseline - truth| and gives the interval of the mean difference (the MAE gap)
and a two-sided p-value for "no difference".
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.apps.outcome import Outcome, seeds_text
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data import device_batch_indices
from rnnjax.data.weather import TEMPERATURE, Ridge, Weather, Windows, load_weather, ridge_baseline, ridge_predict
from rnnjax.tasks.heads import ManyToOne, dense
from rnnjax.training import loop, optimizers, stats
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.runs import Run, markdown_table


@dataclasses.dataclass(frozen=True)
class WeatherConfig:
    """Temperature 24 h ahead from 96 h of weather: RNN vs persistence vs ridge."""

    window: int = 96
    """hours of weather the forecast reads."""
    horizon: int = 24
    """hours ahead of the forecast temperature."""
    stride: int = 1
    """hours between the starts of consecutive windows."""
    cell: str = "gru"
    """recurrent cell (rnnjax.core.cells.make_cell name)."""
    hidden_size: int = 32
    """recurrent units."""
    input_noise: float = 0.3
    """sd of the Gaussian noise added to the standardised training inputs."""
    dropout: float = 0.5
    """dropout on the final state before the readout."""
    l1_loss: bool = True
    """train on absolute error: the reported metric is MAE, and it is steadier on validation than MSE."""
    seeds: int = 10
    """models trained at once in one fit_many program."""
    batch_size: int = 64
    """windows per step."""
    num_steps: int = 1000
    """training steps."""
    eval_every: int = 50
    """steps between validation MAEs (the best step's parameters are kept)."""
    optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig(
        name="adamw", learning_rate=3e-4, warmup_steps=50, decay="cosine", decay_steps=1000, weight_decay=1e-2
    )
    """AdamW and its learning-rate schedule."""
    ridge_skip: bool = True
    """the RNN corrects ridge's forecast (a fixed linear highway); off: it corrects persistence."""
    ridge_alphas: tuple[float, ...] = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5)
    """ridge penalties tried; the best on validation MAE is kept."""
    block_days: int = 3
    """the bootstrap's blocks of contiguous test days (errors are correlated within a spell)."""
    bootstrap_draws: int = 10_000
    """resamples of the block bootstrap."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "window", "horizon", "stride", "hidden_size", "seeds", "batch_size", "num_steps",
            "eval_every", "ridge_alphas", "block_days", "bootstrap_draws",
        )  # fmt: skip

    @classmethod
    def quick(cls) -> "WeatherConfig":
        """Every 8th window, a small GRU, 2 seeds, 40 steps: seconds."""
        optimizer = optimizers.OptimizerConfig(learning_rate=3e-3, warmup_steps=5, decay="cosine", decay_steps=40)
        return cls(stride=8, hidden_size=16, seeds=2, num_steps=40, eval_every=20, bootstrap_draws=2000,
                   optimizer=optimizer, run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": WeatherConfig.quick}


def make_model(config: WeatherConfig, key: jax.Array, input_size: int) -> tuple[ManyToOne, dict]:
    """(model, params); with ``ridge_skip`` the readout starts at zero, so the model starts as ridge."""
    model = ManyToOne(RNN(make_cell(config.cell), config.hidden_size), num_outputs=1)
    params = model.init(key, input_size=input_size, dtype=jnp.float32)
    if config.ridge_skip:
        params["readout"] = jax.tree.map(jnp.zeros_like, params["readout"])
    return model, params


def make_loss(config: WeatherConfig, model: ManyToOne):
    """L1 (or MSE) on the normalised residual target, with input noise and dropout before the readout."""

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


@dataclasses.dataclass(frozen=True, eq=False)
class Forecaster:
    """forecast = base(split) + scale * model(window): the stacked params of every seed predict at once."""

    model: ManyToOne
    ridge: Ridge
    ridge_skip: bool
    scale: float  # deg C per unit of the model's output (the training temperature's sd)

    @classmethod
    def build(cls, config: WeatherConfig, data: Weather, ridge: Ridge) -> "Forecaster":
        model, _ = make_model(config, jax.random.key(0), data.train.inputs.shape[-1])
        return cls(model, ridge, config.ridge_skip, float(data.std[TEMPERATURE]))

    def base(self, split: Windows) -> np.ndarray:
        """deg C: what the model corrects (ridge's forecast, or persistence)."""
        return split.current + (ridge_predict(self.ridge.weights, split.inputs) if self.ridge_skip else 0.0)

    def residual(self, split: Windows) -> np.ndarray:
        """The model's training target, (target - base) / scale."""
        return ((split.target - self.base(split)) / self.scale).astype(np.float32)

    def predict(self, params: dict, split: Windows, batch_size: int = 512) -> np.ndarray:
        """[seeds, examples] forecasts in deg C from params stacked over seeds."""
        correction = loop.batched_apply(lambda x: _apply_seeds(self.model, params, x).T, (split.inputs,), batch_size)
        return self.base(split) + self.scale * correction.T


@functools.partial(jax.jit, static_argnames="model")
def _apply_seeds(model, params, inputs):
    return jax.vmap(lambda p: model.apply(p, inputs)[:, 0])(params)  # vmapped over seeds


def mean_absolute_error(forecasts: np.ndarray, split: Windows) -> np.ndarray:
    """MAE over the last axis (examples): [seeds] from [seeds, examples], a scalar from [examples]."""
    return np.abs(forecasts - split.target).mean(-1)


@dataclasses.dataclass(frozen=True)
class Trained:
    params: dict  # stacked over seeds, from the step with the best validation MAE of the seeds' mean
    best_step: int
    seconds: float
    cpu_seconds: float


def train_seeds(config: WeatherConfig, forecaster: Forecaster, data: Weather, run: Run) -> Trained:
    """Every seed in one ``fit_many`` program (data on device), early-stopped on the ensemble's validation MAE."""
    inputs = jnp.asarray(data.train.inputs)
    residual = jnp.asarray(forecaster.residual(data.train))
    data_key = jax.random.key(config.run.seed + 1000)

    def batch_fn(step):  # jittable: the order is a pure function of (seed, step), shared by the seeds
        index = device_batch_indices(data_key, step, len(residual), config.batch_size)
        return inputs[index], residual[index]

    def evaluate_val(params):
        val = forecaster.predict(params, data.val)
        single = mean_absolute_error(val, data.val)
        return {"mae": mean_absolute_error(val.mean(0), data.val), "mae_single_mean": single.mean()}

    optimizer = optimizers.make_optimizer(config.optimizer)
    keys = jax.random.split(jax.random.key(config.run.seed), config.seeds)
    states = loop.init_many(lambda key: make_model(config, key, inputs.shape[-1])[1], optimizer, keys)
    checkpointer = Checkpointer(run.checkpoint_dir, save_every=config.eval_every, keep=2, best_metric="val/mae")
    started, started_cpu = time.perf_counter(), time.process_time()
    states, _ = loop.fit_many(
        make_loss(config, forecaster.model), optimizer, states, batch_fn, config.num_steps, run=run,
        eval_fn=evaluate_val, eval_every=config.eval_every, log_every=config.eval_every,
        checkpointer=checkpointer, progress=config.run.progress,
    )  # fmt: skip
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    best = checkpointer.restore_best(states)
    best_step = checkpointer.best_step()
    checkpointer.close()
    return Trained(best.params, best_step, seconds, cpu_seconds)


def compare_errors(forecasts: np.ndarray, baseline: np.ndarray, split: Windows, block: int, **bootstrap) -> dict:
    """MAE(forecasts) - MAE(baseline) on the same windows with :func:`~rnnjax.training.stats.block_bootstrap`;
    ``beats``: the interval lies below 0 (for ``forecasts: [seeds, examples]``, on every row)."""
    differences = np.abs(forecasts - split.target) - np.abs(baseline - split.target)
    compared = stats.block_bootstrap(differences, block, **bootstrap)
    compared["beats"] = bool(np.all(np.asarray(compared["high"]) < 0.0))
    return compared


def block_sensitivity(
    seeds: np.ndarray, forecasts: dict, split: Windows, stride: int, days: tuple[int, ...] = (1, 3, 7), **bootstrap
) -> dict[int, dict]:
    """The verdicts against ridge for other block lengths: does the answer hang on the choice of ``block_days``?"""
    verdicts = {}
    for length in days:
        block = min(len(split.target), max(1, length * 24 // stride))
        single = compare_errors(seeds, forecasts["ridge"], split, block, **bootstrap)
        ensemble = compare_errors(forecasts["RNN"], forecasts["ridge"], split, block, **bootstrap)
        verdicts[length] = {"every_seed_beats_ridge": single["beats"], "largest_seed_p": max(single["p_value"]),
                            "ensemble_p": ensemble["p_value"]}  # fmt: skip
    return verdicts


def evaluate(config: WeatherConfig, forecaster: Forecaster, data: Weather, trained: Trained) -> tuple[dict, dict]:
    """(results.json entries, test forecasts by model) for the ensemble, each seed, ridge and persistence."""
    rnn_test = forecaster.predict(trained.params, data.test)
    forecasts = {"RNN": rnn_test.mean(0), "ridge": data.test.current + ridge_predict(forecaster.ridge.weights,
                 data.test.inputs), "persistence": data.test.current}  # fmt: skip
    val_baselines = {"ridge": forecaster.ridge.val_mae, "persistence": mean_absolute_error(data.val.current, data.val)}
    single = mean_absolute_error(rnn_test, data.test)
    block = max(1, config.block_days * 24 // config.stride)
    bootstrap = {"draws": config.bootstrap_draws, "seed": config.run.seed}
    compare = dict(block=block, **bootstrap)
    results = {f"test_mae_{name.lower()}": float(mean_absolute_error(f, data.test)) for name, f in forecasts.items()}
    results |= {f"val_mae_{name}": float(value) for name, value in val_baselines.items()}
    results |= {
        "val_mae_rnn": float(mean_absolute_error(forecaster.predict(trained.params, data.val).mean(0), data.val)),
        "test_mae_rnn_single_seeds": single.tolist(),
        "test_mae_single_seed_summary": stats.seed_summary(single).as_dict(),
        "bootstrap": {"block_days": config.block_days, "block_windows": block, "draws": config.bootstrap_draws},
        "single_seeds_vs_ridge": compare_errors(rnn_test, forecasts["ridge"], data.test, **compare),
        "ensemble_vs_ridge": compare_errors(forecasts["RNN"], forecasts["ridge"], data.test, **compare),
        "ensemble_vs_persistence": compare_errors(forecasts["RNN"], forecasts["persistence"], data.test, **compare),
        "ridge_alpha": forecaster.ridge.alpha,
        "best_step": trained.best_step,
        "train_seconds": trained.seconds,
        "train_cpu_seconds": trained.cpu_seconds,
        "examples": {name: len(split.target) for name, split in zip(("train", "val", "test"), data[:3])},
    }
    results["block_days_sensitivity"] = block_sensitivity(rnn_test, forecasts, data.test, config.stride, **bootstrap)
    results["every_seed_beats_ridge"] = results["single_seeds_vs_ridge"]["beats"]
    results["rnn_beats_baselines"] = all(results[f"ensemble_vs_{name}"]["beats"] for name in ("ridge", "persistence"))
    return results, forecasts


def _gap_text(compared: dict, row: int | None = None) -> str:
    """One comparison (``row`` of a per-seed one) as "-0.07 (95% CI -0.11 to -0.03, p 0.001)"."""
    pick = (lambda v: v) if row is None else (lambda v: v[row])
    return (f"{pick(compared['mean']):+.3f} (95% CI {pick(compared['low']):+.3f} to {pick(compared['high']):+.3f}, "
            f"p {pick(compared['p_value']):.3g})")  # fmt: skip


def report_markdown(config: WeatherConfig, results: dict) -> str:
    """report.md: the models' MAEs, the seed summary and the block-bootstrap comparisons."""
    summary = stats.SeedSummary.from_dict(results["test_mae_single_seed_summary"])
    names = {"rnn": "RNN (mean of seeds)", "ridge": "ridge", "persistence": "persistence"}
    rows = [{"model": name, "val MAE (deg C)": results[f"val_mae_{key}"],
             "test MAE (deg C)": results[f"test_mae_{key}"]}
            for key, name in names.items()]  # fmt: skip
    seeds = [{"seed": i, "test MAE (deg C)": mae, "minus ridge (deg C)": _gap_text(results["single_seeds_vs_ridge"], i)}
             for i, mae in enumerate(results["test_mae_rnn_single_seeds"])]  # fmt: skip
    verdict = "every seed beats" if results["every_seed_beats_ridge"] else "not every seed beats"
    sensitivity = "; ".join(
        f"{days} d: every seed beats ridge {v['every_seed_beats_ridge']} (largest seed p {v['largest_seed_p']:.3g}, "
        f"mean of seeds p {v['ensemble_p']:.3g})"
        for days, v in results["block_days_sensitivity"].items()
    )
    return (
        f"# Weather: temperature {config.horizon} h ahead from {config.window} h\n\n"
        f"Greensboro NC TMY3 (pvlib), chronological 70/15/15 split, {results['examples']} windows. "
        f"RNN: {'ridge forecast' if config.ridge_skip else 'persistence'} + {config.cell.upper()} "
        f"{config.hidden_size} correction, {config.seeds} seeds in one fit_many program, {config.num_steps} steps in "
        f"{results['train_seconds']:.0f} s wall ({results['train_cpu_seconds']:.0f} CPU-s); best validation step "
        f"{results['best_step']}; ridge alpha {results['ridge_alpha']} (alpha and every RNN setting chosen on "
        f"validation).\n\n{markdown_table(rows)}\n\nSingle seeds, test MAE: {summary.text(3)}.\n\n"
        f"Paired with ridge on the same test windows: circular block bootstrap over blocks of "
        f"{config.block_days} contiguous days ({results['bootstrap']['draws']} draws), MAE difference with its "
        f"95% interval; {verdict} ridge beyond noise.\n\n{markdown_table(seeds)}\n\n"
        f"Mean of the seeds minus ridge: {_gap_text(results['ensemble_vs_ridge'])}; minus persistence: "
        f"{_gap_text(results['ensemble_vs_persistence'])}.\n\nOther block lengths: {sensitivity}.\n\n"
        "![test MAE](plots/test_mae.png)\n![forecast](plots/test_forecast.png)\n"
        "![validation MAE](plots/val_mae.png)\n![train loss](plots/train_loss.png)\n"
    )


def write_report(
    run: Run, config: WeatherConfig, data: Weather, results: dict, forecasts: dict[str, np.ndarray]
) -> None:
    """Plots (learning curves, the first test weeks, test MAEs) and report.md."""
    loss = "L1" if config.l1_loss else "MSE"
    plots.learning_curves(run, ["train/loss"], run.plot_path("train_loss"), title=f"train {loss} (normalised)",
                          log_y=True)  # fmt: skip
    plots.learning_curves(run, ["val/mae"], run.plot_path("val_mae"), title="validation MAE (deg C)")
    span = slice(0, min(14 * 24, len(data.test.target)) // config.stride)
    plots.lines({"true": data.test.target[span]} | {name: f[span] for name, f in forecasts.items()},
                run.plot_path("test_forecast"), xlabel=f"test window (stride {config.stride} h)", ylabel="deg C",
                title=f"temperature {config.horizon} h ahead, first test weeks")  # fmt: skip
    plots.bars({name: results[f"test_mae_{name.lower()}"] for name in forecasts}, run.plot_path("test_mae"),
               ylabel="test MAE (deg C)")  # fmt: skip
    run.write_report(report_markdown(config, results))


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers: test MAE of every model, and the paired comparison with ridge."""
    verdict = "every seed beats" if results["every_seed_beats_ridge"] else "not every seed beats"
    return (
        f"test MAE: RNN (mean of seeds) {results['test_mae_rnn']:.3f} deg C; single seeds "
        f"{seeds_text(results['test_mae_single_seed_summary'], unit='deg C')}; ridge {results['test_mae_ridge']:.3f}; "
        f"persistence {results['test_mae_persistence']:.3f}",
        f"mean of seeds minus ridge {_gap_text(results['ensemble_vs_ridge'])} deg C (block bootstrap); {verdict} "
        "ridge beyond noise",
    )


def run(config: WeatherConfig) -> Outcome:
    """Load the windows, fit ridge, train the seeds, compare with the baselines, write results, plots and report."""
    run = config.run.open("weather", config)
    data = load_weather(config.window, config.horizon, stride=config.stride)
    forecaster = Forecaster.build(config, data, ridge_baseline(data, config.ridge_alphas))
    trained = train_seeds(config, forecaster, data, run)
    results, forecasts = evaluate(config, forecaster, data, trained)
    run.write_results(results)
    write_report(run, config, data, results, forecasts)
    return Outcome(results, headline(results), (), run.directory, config.run.quiet)
