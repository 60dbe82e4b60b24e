"""Vanishing and exploding gradients of a tanh RNN and an LSTM on the first-bit memory task.

The app behind ``experiments/gradient_flow.py``: its :class:`GradientFlowConfig`, models, training and report.

    outcome = run(GradientFlowConfig())             # the whole study
    outcome = study(config, run)                    # {"curves": {label: curves}, "results": {...}}
    plot(config, run, outcome["curves"])            # the run's plots (and the doc's figures)
    run.write_report(report(outcome["results"]))
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax

from rnnjax.analysis import diagnostics, viz
from rnnjax.apps.outcome import Outcome, interval_text
from rnnjax.core.cells import make_cell
from rnnjax.tasks.toy_tasks import first_bit_task
from rnnjax.training import stats
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.loop import fit
from rnnjax.training.optimizers import OptimizerConfig, make_optimizer
from rnnjax.training.runs import Run
from rnnjax.training.step import init_state, make_train_step

RATIO = "|dlogit/dh_0| / |dlogit/dh_T-1|"
EVAL_KEY = 10**6  # fold_in index of the evaluation batch; model i starts from fold_in(key, i), trains on 100 + i


@dataclasses.dataclass(frozen=True)
class GradientFlowConfig:
    """Gradient flow of a simple RNN vs an LSTM on the first-bit memory task."""

    time_steps: int = 100
    """sequence length T: the first bit must be recalled T - 1 steps later."""
    hidden_size: int = 32
    """units of both cells."""
    batch_size: int = 64
    """sequences per training step."""
    train_steps: int = 1500
    """Adam steps of each trained model."""
    eval_batch: int = 256
    """sequences of the evaluation batch (curves, loss and accuracy)."""
    learning_rate: float = 1e-2
    """Adam learning rate (gradients clipped at norm 1)."""
    exploding_gain: float = 2.0
    """factor on the recurrent kernel of the RNN shown at initialisation only."""
    forget_bias: float = 3.0
    """forget-gate bias of the trained LSTM (the one shown at initialisation only has 1)."""
    figures: str = "docs/figures"
    """where the doc's figures go ("" to skip)."""
    run: RunField = RunConfig(run_name="default")

    def __post_init__(self):
        require_positive(
            self, "time_steps", "hidden_size", "batch_size",
            "train_steps", "eval_batch", "learning_rate", "exploding_gain",
        )  # fmt: skip


QUICK = GradientFlowConfig(time_steps=16, hidden_size=8, batch_size=16, train_steps=20, eval_batch=32, figures="",
                           run=RunConfig.quick())  # fmt: skip
PRESETS = {"quick": QUICK}


@dataclasses.dataclass(frozen=True)
class Model:
    """One curve family: a cell, a factor on its initial recurrent kernel, and whether it is trained."""

    cell: str
    gain: float = 1.0
    forget_bias: float = 3.0
    train: bool = True

    def make_cell(self):
        return make_cell(self.cell, forget_bias=self.forget_bias) if self.cell == "lstm" else make_cell(self.cell)


def models(exploding_gain: float, forget_bias: float) -> dict[str, Model]:
    """Trained: a tanh RNN and an LSTM; at init only: the RNN with a scaled-up kernel, the LSTM with forget bias 1."""
    return {
        "tanh RNN": Model("simple_tanh"),
        f"tanh RNN, U x {exploding_gain:g}": Model("simple_tanh", gain=exploding_gain, train=False),
        f"LSTM, forget bias {forget_bias:g}": Model("lstm", forget_bias=forget_bias),
        "LSTM, forget bias 1": Model("lstm", forget_bias=1.0, train=False),
    }


def init_model(model: Model, key: jax.Array, hidden_size: int) -> dict:
    """The classifier's params (one input) with the recurrent kernel scaled by ``model.gain``."""
    params = diagnostics.init_classifier(model.make_cell(), key, 1, hidden_size)
    params["cell"]["recurrent_kernel"] = params["cell"]["recurrent_kernel"] * model.gain
    return params


def batch_loss(cell, params, batch, key):  # loss_fn for rnnjax.training.train
    loss, accuracy = diagnostics.classifier_loss(cell, params, *batch)
    return loss, {"loss": loss, "accuracy": accuracy}


def train(config: GradientFlowConfig, run: Run, name: str, model: Model, params: dict, key: jax.Array) -> dict:
    """Adam (clipped at norm 1) on fresh first-bit batches ``fold_in(key, step)``; logs into ``run.sub(name)``."""
    optimizer = make_optimizer(OptimizerConfig(learning_rate=config.learning_rate, clip_norm=1.0))
    step = make_train_step(functools.partial(batch_loss, model.make_cell()), optimizer)

    def batches(index):
        return first_bit_task(jax.random.fold_in(key, index), config.batch_size, config.time_steps)

    state = init_state(params, optimizer, jax.random.fold_in(key, 2**31))  # donated by the train step
    sub_run = run.sub(name.replace(" ", "_").replace(",", ""))
    return fit(state, step, batches, config.train_steps, run=sub_run, progress=False).params


def gradient_ratios(curves: dict[str, dict]) -> dict[str, float]:
    """||dlogit/dh_0|| / ||dlogit/dh_{T-1}|| of each curve: below 1 vanishes, above 1 explodes."""
    return {label: float(curve["carry_gradient_norm"][0] / curve["carry_gradient_norm"][-1])
            for label, curve in curves.items()}  # fmt: skip


def study(config: GradientFlowConfig, run: Run) -> dict:
    """Curves of every model at init (and after training for the trained ones), eval loss and accuracy, ratios."""
    key = jax.random.key(config.run.seed)
    xs, labels = first_bit_task(jax.random.fold_in(key, EVAL_KEY), config.eval_batch, config.time_steps)
    curves, results = {}, {}
    for index, (name, model) in enumerate(models(config.exploding_gain, config.forget_bias).items()):
        cell = model.make_cell()
        params = init_model(model, jax.random.fold_in(key, index), config.hidden_size)
        measure = jax.jit(functools.partial(diagnostics.gradient_flow_curves, cell, xs=xs))
        curves[f"{name}, init"] = measure(params)
        if model.train:
            params = train(config, run, name, model, params, jax.random.fold_in(key, 100 + index))
            curves[f"{name}, trained"] = measure(params)
            loss, accuracy = diagnostics.classifier_loss(cell, params, xs, labels)
            results[name] = {"eval_loss": float(loss), "eval_accuracy": float(accuracy)}
    results[RATIO] = gradient_ratios(curves)
    return {"curves": curves, "results": results}


def plot(config: GradientFlowConfig, run: Run, curves: dict) -> None:
    """Both curve panels and the neuron picture into the run's plots and, when ``config.figures``, the docs."""
    panels = {
        "||d logit_T / dh_t|| (readout of the last step)": {k: v["carry_gradient_norm"] for k, v in curves.items()},
        "||dh_T/dh_t||_2 (Jacobian product)": {k: v["jacobian_norm"] for k, v in curves.items()},
    }
    title = f"first-bit memory task, T = {config.time_steps}, hidden = {config.hidden_size}"
    neurons = viz.draw_simple_rnn(make_cell("simple_tanh").init(jax.random.key(config.run.seed), 2, 3), steps=3)
    folders = [run.path("plots")] + ([config.figures] if config.figures else [])
    for folder in folders:
        viz.gradient_flow(panels, os.path.join(folder, "gradient_flow.png"), title=title)
        viz.save(neurons, os.path.join(folder, "simple_rnn_neurons.png"))


def report(results: dict) -> str:
    """One line per trained model (eval loss and accuracy) and the gradient ratio of every curve."""
    lines = [f"- {model}: {values}" for model, values in results.items() if model != RATIO]
    lines += [f"- {RATIO}, {label}: {ratio:.3g}" for label, ratio in results[RATIO].items()]
    return "# Gradient flow\n\n" + "\n".join(lines) + "\n\n![gradient flow](plots/gradient_flow.png)\n"


def headline(config: GradientFlowConfig, results: dict) -> tuple[str, ...]:
    """Eval accuracy of each trained model (95% Wilson over the eval sequences) and every curve's gradient ratio."""
    trained = [model for model in results if model != RATIO]
    accuracy = "; ".join(f"{model} {interval_text(results[model]['eval_accuracy'], wilson(results[model], config))}"
                         for model in trained)  # fmt: skip
    ratios = ", ".join(f"{label} {ratio:.2g}" for label, ratio in results[RATIO].items())
    return (f"first-bit recall after {config.train_steps} steps, T = {config.time_steps} (95% Wilson over "
            f"{config.eval_batch} sequences): {accuracy}", f"{RATIO}: {ratios}")


def wilson(scores: dict, config: GradientFlowConfig) -> tuple[float, float]:
    """The 95% Wilson interval of one model's eval accuracy over ``config.eval_batch`` sequences."""
    return stats.wilson_interval(round(scores["eval_accuracy"] * config.eval_batch), config.eval_batch)


def run(config: GradientFlowConfig) -> Outcome:
    """Curves at initialisation and after training, their plots (and the doc's figures), results and report."""
    run = config.run.open("gradient_flow", config)
    outcome = study(config, run)
    plot(config, run, outcome["curves"])
    run.write_results(outcome["results"])
    run.write_report(report(outcome["results"]))
    return Outcome(outcome["results"], headline(config, outcome["results"]), (), run.directory, config.run.quiet)
