"""cli: flags from frozen dataclass fields (tyro), nested configs, the shared run config and presets."""

import dataclasses
import enum

import pytest

from rnnjax.training import files
from rnnjax.training.config import RunConfig, RunField, cli, require_positive, split_preset
from rnnjax.training.optimizers import Decay, OptimizerConfig


class Cell(enum.Enum):
    LSTM = "lstm"
    GRU = "gru"


@dataclasses.dataclass(frozen=True)
class Toy:
    """A toy experiment."""

    hidden_size: int = 32
    """units of the hidden layer."""
    dropout: float = 0.1
    name: str = "toy"
    cell: Cell = Cell.LSTM
    bidirectional: bool = False
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None
    optimizer: OptimizerConfig = OptimizerConfig()
    run: RunField = RunConfig()


QUICK = Toy(hidden_size=4, sizes=(7,), run=RunConfig.quick())


def test_defaults_and_every_field_type():
    assert cli(Toy, []) == Toy()
    config = cli(
        Toy,
        "--hidden_size 8 --dropout 0.5 --name x --cell gru --bidirectional --sizes 3 4 5 --limit 9 "
        "--optimizer.learning_rate 0.01 --optimizer.decay cosine --optimizer.decay_steps 10 "
        "--optimizer.clip_norm None --seed 3 --run_name a --runs_root /tmp/r --fresh --quiet".split(),
    )
    assert config == Toy(
        hidden_size=8, dropout=0.5, name="x", cell=Cell.GRU, bidirectional=True, sizes=(3, 4, 5), limit=9,
        optimizer=OptimizerConfig(learning_rate=0.01, decay=Decay.COSINE, decay_steps=10, clip_norm=None),
        run=RunConfig(seed=3, run_name="a", runs_root="/tmp/r", fresh=True, quiet=True),
    )  # fmt: skip
    assert cli(Toy, ["--no_bidirectional", "--limit", "None"]).limit is None
    assert cli(Toy, ["--runs-root", "x"]).run.runs_root == "x"  # hyphens work too


def test_presets_then_explicit_overrides():
    presets = {"quick": QUICK, "full": lambda: Toy(hidden_size=256)}
    assert cli(Toy, ["--quick"], presets=presets) == QUICK
    assert cli(Toy, ["--quick", "--hidden_size", "6"], presets=presets) == dataclasses.replace(QUICK, hidden_size=6)
    assert cli(Toy, ["--hidden_size", "6", "--quick"], presets=presets).sizes == (7,)  # order does not matter
    assert cli(Toy, ["--full"], presets=presets).hidden_size == 256
    assert cli(Toy, [], presets=presets) == Toy()
    with pytest.raises(SystemExit, match="at most one preset"):
        cli(Toy, ["--quick", "--full"], presets=presets)
    with pytest.raises(SystemExit):
        cli(Toy, ["--quick"])  # no such preset: an unknown flag
    with pytest.raises(TypeError, match="preset 'quick' must be a Toy; got dict"):
        cli(Toy, ["--quick"], presets={"quick": {"hidden_size": 3}})
    assert split_preset(["--a", "--quick", "1"], ["quick", "full"]) == ("quick", ["--a", "1"])


def test_help_comes_from_docstrings(capsys):
    with pytest.raises(SystemExit):
        cli(Toy, ["--help"], presets={"quick": QUICK})
    text = capsys.readouterr().out
    assert "A toy experiment." in text and "units of the hidden layer." in text and "--quick" in text
    assert "peak learning rate." in text and "seed of every random choice" in text  # nested and shared configs


def test_bad_values_fail_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        cli(Toy, ["--cell", "rnn"])
    assert "--cell" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(Toy, ["--hidden_size", "big"])
    assert "--hidden_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the config's own checks, reported by tyro
        cli(Toy, ["--optimizer.learning_rate", "-1"])
    assert "learning_rate must be > 0.0; got -1.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(Toy, ["--seed", "-2"])
    assert "seed must be >= 0; got -2" in capsys.readouterr().err
    with pytest.raises(TypeError, match="dataclass"):
        cli(dict, [])


def test_run_config_opens_its_run_folder(tmp_path):
    run = RunConfig(run_name="a", runs_root=str(tmp_path)).open("toy", Toy())
    assert run.directory == tmp_path / "toy" / "a" and (run.directory / "config.json").is_file()
    assert RunConfig.quick(seed=4) == RunConfig(seed=4, run_name="quick", fresh=True)


def test_require_positive_names_the_field():
    @dataclasses.dataclass(frozen=True)
    class Sizes:
        steps: int = 3
        rate: float = 0.1
        widths: tuple[int, ...] = (1, 2)

        def __post_init__(self):
            require_positive(self, "steps", "rate", "widths")

    Sizes()
    with pytest.raises(ValueError, match="steps must be >= 1; got 0"):
        Sizes(steps=0)
    with pytest.raises(ValueError, match=r"rate must be > 0.0; got -0.5"):
        Sizes(rate=-0.5)
    with pytest.raises(ValueError, match=r"widths\[1\] must be >= 1; got -2"):
        Sizes(widths=(1, -2))
    with pytest.raises(TypeError, match="steps must be an int; got True"):
        Sizes(steps=True)


@pytest.mark.parametrize("flags, fresh", [(["--quick"], True), (["--quick", "--run_name", "mine"], False),
                                          (["--quick", "--run_name", "quick"], True),  # the preset's own folder
                                          (["--quick", "--run-name=mine"], False),
                                          (["--quick", "--run_name", "mine", "--fresh"], True),
                                          (["--run_name", "mine", "--fresh"], True),
                                          (["--run_name", "mine"], False)])  # fmt: skip
def test_a_presets_fresh_never_empties_a_run_the_user_named(flags, fresh):
    config = cli(Toy, flags, presets={"quick": QUICK})
    assert config.run.fresh is fresh
    assert config.hidden_size == (4 if "--quick" in flags else 32)  # the rest of the preset still applies


def test_a_named_run_given_with_a_fresh_preset_resumes_and_keeps_its_records(tmp_path):
    named = ["--quick", "--run_name", "mine", "--runs_root", str(tmp_path)]
    with cli(Toy, named, presets={"quick": QUICK}).run.open("toy", QUICK) as run:
        run.log(1, loss=0.5)
    with cli(Toy, named, presets={"quick": QUICK}).run.open("toy", QUICK) as run:
        assert run.read_metrics() == [{"step": 1, "loss": 0.5}]


def test_resuming_with_other_run_display_fields_is_accepted_but_another_seed_refused(tmp_path):
    base = RunConfig(run_name="a", runs_root=str(tmp_path))
    base.open("toy", Toy(run=base)).close()
    shown = dataclasses.replace(base, quiet=True, tensorboard=False)
    shown.open("toy", Toy(run=shown)).close()  # how it is shown: not part of what the run computes
    seeded = dataclasses.replace(base, seed=3)
    with pytest.raises(files.ConfigMismatch, match=r"run.seed: 0 -> 3"):
        seeded.open("toy", Toy(run=seeded))
    with pytest.raises(files.ConfigMismatch, match=r"hidden_size: 32 -> 8"):
        base.open("toy", Toy(hidden_size=8, run=base))


def test_run_config_checks_and_progress():
    assert RunConfig(quiet=True).progress is False and RunConfig().progress is None
    for root in ("", None, 3):
        with pytest.raises(ValueError, match=rf"^runs_root must be a non-empty path; got {root!r}$"):
            RunConfig(runs_root=root)
    with pytest.raises(ValueError, match="^seed must be >= 0; got -1$"):
        RunConfig(seed=-1)


def test_run_config_open_passes_its_fields_to_the_run(tmp_path):
    from rnnjax.training.tensorboard import resolve_enabled

    with RunConfig(run_name="off", runs_root=str(tmp_path), tensorboard=False).open("toy", Toy()) as run:
        assert run.events.enabled is False and run.directory == tmp_path / "toy" / "off"
    with RunConfig(run_name="on", runs_root=str(tmp_path)).open("toy", Toy()) as run:
        assert run.events.enabled == resolve_enabled(None)  # on when tensorboardX is installed
    with RunConfig(run_name="plain", runs_root=str(tmp_path)).open("toy", {"hidden_size": 3}) as run:
        assert run.untracked == frozenset()  # a config that is not a dataclass: nothing is untracked
    with RunConfig(run_name="plain", runs_root=str(tmp_path), fresh=True).open("toy", {"hidden_size": 4}) as run:
        assert run.read_metrics() == []  # fresh: the earlier config is gone, no mismatch


def test_cli_reads_sys_argv_by_default(monkeypatch):
    monkeypatch.setattr("sys.argv", ["experiment.py", "--hidden_size", "5", "--quick"])
    assert cli(Toy, presets={"quick": QUICK}) == dataclasses.replace(QUICK, hidden_size=5)
    assert cli(Toy, [], presets={"quick": QUICK}) == Toy()  # argv given: sys.argv is not read


def test_help_uses_the_description_and_lists_every_preset(capsys):
    with pytest.raises(SystemExit):
        cli(Toy, ["--help"], presets={"quick": QUICK, "full": Toy(hidden_size=256)}, description="Custom summary.")
    text = " ".join(capsys.readouterr().out.split())  # tyro wraps lines
    assert "Custom summary." in text and "A toy experiment." not in text
    assert "Presets (at most one; other flags apply on top): --quick, --full" in text
    assert "--hidden_size" in text and "--hidden-size" not in text

    @dataclasses.dataclass(frozen=True)
    class TwoLines:
        """First line.

        Second line."""

    with pytest.raises(SystemExit):
        cli(TwoLines, ["--help"])
    text = capsys.readouterr().out
    assert "First line." in text and "Second line." not in text and "Presets" not in text


def test_two_presets_are_refused_naming_both():
    with pytest.raises(SystemExit) as error:
        split_preset(["--full", "--x", "--quick"], ["quick", "full"])
    assert str(error.value) == "choose at most one preset of --quick, --full; got --full, --quick"
    assert split_preset(["--x", "1"], ["quick"]) == (None, ["--x", "1"])


def test_cli_turns_on_the_compilation_cache_only_when_the_run_asks(monkeypatch):
    calls = []
    monkeypatch.setattr("rnnjax.runtime.enable_compilation_cache", lambda: calls.append(1))
    cli(Toy, [])
    assert calls == [1]
    cli(Toy, ["--no_compile_cache"])
    assert calls == [1]

    @dataclasses.dataclass(frozen=True)
    class NoRun:
        """No run field."""

        size: int = 1

    assert cli(NoRun, ["--size", "2"]) == NoRun(2) and calls == [1]


def test_a_run_name_with_an_equals_sign_in_its_value_is_still_named():
    config = cli(Toy, ["--quick", "--run_name=a=b"], presets={"quick": QUICK})
    assert config.run.run_name == "a=b" and config.run.fresh is False
