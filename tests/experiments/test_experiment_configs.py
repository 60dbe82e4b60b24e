"""Every experiment's config: non-positive sizes refused before anything is written, a help line per field,
and presets of the config's own type."""

import ast
import dataclasses
import inspect
import re
import textwrap

import pytest
from experiment_helpers import load

from rnnjax.apps import (
    caption_digits,
    entity_tagging,
    gradient_flow,
    probe_task,
    sentiment,
    shakespeare,
    speakers,
    speech_ctc,
    tasks_tour,
    translate_dates,
    weather,
)
from rnnjax.training.config import RunConfig

CONFIGS = {
    "weather": weather.WeatherConfig, "sentiment": sentiment.SentimentConfig, "speakers": speakers.SpeakersConfig,
    "shakespeare": shakespeare.ShakespeareConfig, "translate_dates": translate_dates.Config,
    "caption_digits": caption_digits.Config, "speech_ctc": speech_ctc.Config, "entity_tagging": entity_tagging.Config,
    "tasks_tour": tasks_tour.TourConfig, "gradient_flow": gradient_flow.GradientFlowConfig,
    "probe_task": probe_task.ProbeTaskConfig,
}  # fmt: skip
APPS = {"weather": weather, "sentiment": sentiment, "speakers": speakers, "shakespeare": shakespeare,
        "translate_dates": translate_dates, "caption_digits": caption_digits, "speech_ctc": speech_ctc,
        "entity_tagging": entity_tagging, "tasks_tour": tasks_tour, "gradient_flow": gradient_flow,
        "probe_task": probe_task}  # fmt: skip


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


def class_node(config_type: type) -> ast.ClassDef:
    return ast.parse(textwrap.dedent(inspect.getsource(config_type))).body[0]


def undocumented_fields(config_type: type) -> list[str]:
    """Fields of a config dataclass (and of the dataclasses nested in it) with neither a docstring below them nor
    a line in the class docstring's ``Attributes:`` (tyro reads both); a nested group (a dataclass default) may
    take its help from its class docstring instead."""
    body = class_node(config_type).body
    documented = {
        node.target.id
        for node, below in zip(body, body[1:])
        if isinstance(node, ast.AnnAssign) and isinstance(below, ast.Expr) and isinstance(below.value.value, str)
    }
    attributes = (config_type.__doc__ or "").partition("Attributes:")[2]
    documented |= set(re.findall(r"^\s+(\w+):", attributes, flags=re.MULTILINE))
    missing = []
    for field in dataclasses.fields(config_type):
        nested = field.default if dataclasses.is_dataclass(field.default) else None
        if field.name not in documented and not (nested is not None and ast.get_docstring(class_node(type(nested)))):
            missing.append(f"{config_type.__name__}.{field.name}")
        if nested is not None:
            missing += undocumented_fields(type(nested))
    return missing


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_field_has_a_help_line(name):
    assert undocumented_fields(CONFIGS[name]) == []


def test_undocumented_fields_are_found():
    @dataclasses.dataclass(frozen=True)
    class Inner:
        """Attributes:
        width: documented in the class docstring."""

        width: int = 3
        depth: int = 1

    @dataclasses.dataclass(frozen=True)
    class Bare:  # no docstring: dataclasses writes one, which is no help
        level: int = 0
        """documented."""

    @dataclasses.dataclass(frozen=True)
    class Outer:
        size: int = 2
        """documented."""
        rate: float = 0.1
        inner: Inner = Inner()
        bare: Bare = Bare()

    assert undocumented_fields(Outer) == ["Outer.rate", "Inner.depth", "Outer.bare"]  # inner: its class docstring


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_presets_are_configs_of_the_app(name):
    presets = APPS[name].PRESETS
    assert set(presets) == {"quick"}
    quick = presets["quick"]() if callable(presets["quick"]) else presets["quick"]
    assert type(quick) is CONFIGS[name] and quick != CONFIGS[name]()
    assert quick.run.run_name == "quick" and quick.run.fresh


def test_quiet_turns_progress_off_and_otherwise_leaves_fit_its_default():
    assert RunConfig(quiet=True).progress is False and RunConfig().progress is None
    assert weather.WeatherConfig.quick().run.progress is None  # --quick alone still shows bars on a terminal
