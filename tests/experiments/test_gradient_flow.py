"""Gradient flow: the --quick run."""

from experiment_helpers import run_quick


def test_gradient_flow_quick(tmp_path):
    results, returned = run_quick("gradient_flow", tmp_path, steps_field="train_steps", trains_with_checkpoints=False)
    assert returned.targets == () and len(returned.headline) == 2
    assert results["tanh RNN"]["eval_accuracy"] > 0.9 and results["LSTM, forget bias 3"]["eval_accuracy"] > 0.9  # 1.0
    ratio = results["|dlogit/dh_0| / |dlogit/dh_T-1|"]  # at T = 16 (measured: 0.16, 6.2, 2.6, 0.21)
    assert ratio["tanh RNN, U x 2, init"] > 10 * ratio["tanh RNN, init"]  # a larger recurrent kernel explodes
    assert ratio["LSTM, forget bias 3, init"] > 3 * ratio["LSTM, forget bias 1, init"]  # the forget gate keeps memory
    assert list((tmp_path / "gradient_flow" / "quick").rglob("metrics.jsonl"))  # the trained models logged
