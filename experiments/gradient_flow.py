"""Vanishing and exploding gradients: a simple RNN vs an LSTM on the same long-memory task.

    python experiments/gradient_flow.py [--quick] [--time_steps 100] ...

Task (``rnnjax.tasks.toy_tasks.first_bit_task``): the sign of x_0 must be recalled at step T
through T-1 steps of noise. A tanh RNN (orthogonal init) and an LSTM (forget bias 3) are
trained; the same RNN with its recurrent kernel scaled up and an LSTM with forget bias 1 are
shown at initialisation only. At initialisation and after training, it records
||d logit_T/dh_t|| and ||dh_T/dh_t||_2 over t (batch means) and plots them on a log scale into
runs/gradient_flow/<name>/plots and (full runs) docs/figures/gradient_flow.png, plus the
neuron picture docs/figures/simple_rnn_neurons.png.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from rnnjax.analysis import diagnostics, viz  # noqa: E402
from rnnjax.core.cells import make_cell  # noqa: E402
from rnnjax.tasks.toy_tasks import first_bit_task  # noqa: E402
from rnnjax.training.config import RunConfig, RunField, cli, require_positive  # noqa: E402
from rnnjax.training.runs import Run  # noqa: E402
from rnnjax.training.train import OptimizerConfig, fit, init_state, make_optimizer, make_train_step  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Model:
    """One curve family: a cell, a factor on its initial recurrent kernel, and whether it is trained."""

    cell: str
    gain: float = 1.0
    forget_bias: float = 3.0
    train: bool = True


@dataclasses.dataclass(frozen=True)
class GradientFlowConfig:
    """Gradient flow of a simple RNN vs an LSTM on the first-bit memory task."""

    time_steps: int = 100
    hidden_size: int = 32
    batch_size: int = 64
    train_steps: int = 1500
    eval_batch: int = 256
    learning_rate: float = 1e-2
    exploding_gain: float = 2.0
    forget_bias: float = 3.0
    figures: str = "docs/figures"
    """where the doc's figures go ("" to skip)."""
    run: RunField = RunConfig(run_name="default")

    def __post_init__(self):
        require_positive(
            self, "time_steps", "hidden_size", "batch_size",
            "train_steps", "eval_batch", "learning_rate", "exploding_gain",
        )


QUICK = GradientFlowConfig(time_steps=16, hidden_size=8, batch_size=16, train_steps=20, eval_batch=32, figures="",
                           run=RunConfig.quick())


def models(config: GradientFlowConfig) -> dict[str, Model]:
    """Trained: a tanh RNN and an LSTM; at init only: the RNN with a scaled-up kernel, the LSTM with forget bias 1."""
    return {
        "tanh RNN": Model("simple_tanh"),
        f"tanh RNN, U x {config.exploding_gain:g}": Model("simple_tanh", gain=config.exploding_gain, train=False),
        f"LSTM, forget bias {config.forget_bias:g}": Model("lstm", forget_bias=config.forget_bias),
        "LSTM, forget bias 1": Model("lstm", forget_bias=1.0, train=False),
    }


def model_cell(model: Model):
    return make_cell(model.cell, forget_bias=model.forget_bias) if model.cell == "lstm" else make_cell(model.cell)


def init_model(config: GradientFlowConfig, model: Model, key: jax.Array) -> dict:
    params = diagnostics.init_classifier(model_cell(model), key, 1, config.hidden_size)
    params["cell"]["recurrent_kernel"] = params["cell"]["recurrent_kernel"] * model.gain
    return params


def batch_loss(cell, params, batch, key):  # loss_fn for rnnjax.training.train
    loss, accuracy = diagnostics.classifier_loss(cell, params, *batch)
    return loss, {"loss": loss, "accuracy": accuracy}


def train(config: GradientFlowConfig, run: Run, name: str, model: Model, params: dict, key: jax.Array) -> dict:
    cell = model_cell(model)
    optimizer = make_optimizer(OptimizerConfig(learning_rate=config.learning_rate, clip_norm=1.0))
    step = make_train_step(functools.partial(batch_loss, cell), optimizer)
    def batches(index):
        return first_bit_task(jax.random.fold_in(key, index), config.batch_size, config.time_steps)

    state = init_state(params, optimizer, jax.random.fold_in(key, 2**31))  # donated by the train step
    sub_run = run.sub(name.replace(" ", "_").replace(",", ""))
    state = fit(state, step, batches, config.train_steps, run=sub_run, progress=False)
    return state.params


def study(config: GradientFlowConfig, run: Run) -> dict:
    key = jax.random.key(config.run.seed)
    xs, labels = first_bit_task(jax.random.fold_in(key, 10**6), config.eval_batch, config.time_steps)
    curves, results = {}, {}
    for index, (name, model) in enumerate(models(config).items()):
        cell = model_cell(model)
        params = init_model(config, model, jax.random.fold_in(key, index))
        measure = jax.jit(lambda p, cell=cell: diagnostics.gradient_flow_curves(cell, p, xs))
        curves[f"{name}, init"] = measure(params)
        if model.train:
            params = train(config, run, name, model, params, jax.random.fold_in(key, 100 + index))
            curves[f"{name}, trained"] = measure(params)
            loss, accuracy = diagnostics.classifier_loss(cell, params, xs, labels)
            results[name] = {"eval_loss": float(loss), "eval_accuracy": float(accuracy)}
    for label, curve in curves.items():
        norms = curve["carry_gradient_norm"]
        results.setdefault("|dlogit/dh_0| / |dlogit/dh_T-1|", {})[label] = float(norms[0] / norms[-1])
    return {"curves": curves, "results": results}


def plot(config: GradientFlowConfig, run: Run, curves: dict) -> None:
    panels = {
        "||d logit_T / dh_t|| (readout of the last step)": {k: v["carry_gradient_norm"] for k, v in curves.items()},
        "||dh_T/dh_t||_2 (Jacobian product)": {k: v["jacobian_norm"] for k, v in curves.items()},
    }
    title = f"first-bit memory task, T = {config.time_steps}, hidden = {config.hidden_size}"
    paths = [run.plot_path("gradient_flow")]
    neuron_params = make_cell("simple_tanh").init(jax.random.key(config.run.seed), 2, 3)
    figure_paths = [run.plot_path("simple_rnn_neurons")]
    if config.figures:
        paths.append(os.path.join(config.figures, "gradient_flow.png"))
        figure_paths.append(os.path.join(config.figures, "simple_rnn_neurons.png"))
    for path in paths:
        viz.gradient_flow(panels, path, title=title)
    for path in figure_paths:
        viz.save(viz.draw_simple_rnn(neuron_params, steps=3), path)


def main(argv: list[str] | None = None) -> dict:
    config = cli(GradientFlowConfig, argv, presets={"quick": QUICK})
    run = config.run.open("gradient_flow", config)
    outcome = study(config, run)
    plot(config, run, outcome["curves"])
    run.write_results(outcome["results"])
    lines = [f"- {model}: {values}" for model, values in outcome["results"].items()]
    run.write_report("# Gradient flow\n\n" + "\n".join(lines) + "\n\n![gradient flow](plots/gradient_flow.png)\n")
    print("\n".join(lines))
    return outcome["results"]


if __name__ == "__main__":
    main()  # sys.argv[1:]
