"""Every experiment's config refuses non-positive sizes before it writes anything."""

import pytest
from experiment_helpers import load


@pytest.mark.parametrize(
    "name, field",
    [("weather", "num_steps"), ("sentiment", "batch_size"), ("speakers", "seeds"), ("shakespeare", "hidden_size"),
     ("translate_dates", "steps"), ("caption_digits", "batch_size"), ("speech_ctc", "num_layers"),
     ("entity_tagging", "hidden_size"), ("tasks_tour", "learning_rate"), ("gradient_flow", "train_steps")],
)  # fmt: skip
def test_experiment_configs_reject_nonpositive_sizes(name, field, tmp_path, capsys):
    with pytest.raises(SystemExit):
        load(name).main([f"--{field}", "0", "--runs_root", str(tmp_path)])
    assert f"{field} must be " in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was written
