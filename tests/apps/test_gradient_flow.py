"""The gradient-flow app: models, their initial kernels, the ratio and the report (no training)."""

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.apps import gradient_flow
from rnnjax.training import stats
from rnnjax.training.runs import Run


def test_models_name_their_gain_and_bias_and_train_only_the_defaults():
    models = gradient_flow.models(exploding_gain=2.5, forget_bias=4.0)
    assert {name: model.train for name, model in models.items()} == {
        "tanh RNN": True, "tanh RNN, U x 2.5": False, "LSTM, forget bias 4": True, "LSTM, forget bias 1": False,
    }  # fmt: skip
    assert models["tanh RNN, U x 2.5"].gain == 2.5 and models["LSTM, forget bias 4"].forget_bias == 4.0


def test_gain_scales_only_the_recurrent_kernel(key):
    base = gradient_flow.init_model(gradient_flow.Model("simple_tanh"), key, 6)
    scaled = gradient_flow.init_model(gradient_flow.Model("simple_tanh", gain=2.0), key, 6)
    flat_base, flat_scaled = (jax.tree_util.tree_leaves_with_path(p) for p in (base, scaled))
    for (path, a), (_, b) in zip(flat_base, flat_scaled):
        factor = 2.0 if "recurrent_kernel" in jax.tree_util.keystr(path) else 1.0
        np.testing.assert_allclose(b, factor * a, rtol=1e-6)


def test_forget_bias_reaches_the_lstm_cell(key):
    biases = [gradient_flow.init_model(gradient_flow.Model("lstm", forget_bias=b), key, 4)["cell"] for b in (1.0, 3.0)]
    difference = {k: np.asarray(biases[1][k] - biases[0][k]) for k in biases[0]}
    changed = [k for k, v in difference.items() if np.any(v != 0)]
    assert len(changed) == 1 and np.isclose(difference[changed[0]].max(), 2.0)  # only the forget slice, by 3 - 1


def test_gradient_ratios_of_geometric_curves():
    """A curve a^(T-1-t) (each step back multiplies by a) has ratio a^(T-1): vanishing for a < 1, exploding above."""
    steps = jnp.arange(10)
    curves = {f"a={a}": {"carry_gradient_norm": a ** (9 - steps)} for a in (0.5, 1.0, 2.0)}
    assert gradient_flow.gradient_ratios(curves) == {"a=0.5": 0.5**9, "a=1.0": 1.0, "a=2.0": 2.0**9}


def test_plot_and_report_from_synthetic_curves(tmp_path):
    figures = str(tmp_path / "docs")
    config = gradient_flow.GradientFlowConfig(time_steps=5, hidden_size=3, eval_batch=40, figures=figures)
    curves = {"tanh RNN, init": {"carry_gradient_norm": jnp.ones(5), "jacobian_norm": jnp.linspace(1.0, 0.0, 6)}}
    with Run("gradient_flow", "unit", root=tmp_path / "runs", tensorboard=False) as run:
        gradient_flow.plot(config, run, curves)
        for folder in (run.path("plots"), tmp_path / "docs"):
            assert {p.name for p in folder.iterdir()} == {"gradient_flow.png", "simple_rnn_neurons.png"}
    results = {"tanh RNN": {"eval_loss": 0.1, "eval_accuracy": 1.0}, gradient_flow.RATIO: {"tanh RNN, init": 5.1e-7}}
    text = gradient_flow.report(results)
    assert "tanh RNN, init: 5.1e-07" in text and "'eval_accuracy': 1.0" in text
    recall, ratios = gradient_flow.headline(config, results)
    low, _ = stats.wilson_interval(40, 40)  # every one of the 40 eval sequences right
    assert recall.endswith(f"(95% Wilson over 40 sequences): tanh RNN 100.0% [{100 * low:.1f}, 100.0]")
    assert ratios == f"{gradient_flow.RATIO}: tanh RNN, init 5.1e-07"
