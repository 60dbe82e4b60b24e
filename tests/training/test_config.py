"""parse_config: flags generated from frozen dataclass fields, nested configs, --quick."""

import dataclasses
import enum

import pytest

from rnnjax.training.config import parse_config
from rnnjax.training.train import Decay, OptimizerConfig


class Cell(enum.Enum):
    LSTM = "lstm"
    GRU = "gru"


@dataclasses.dataclass(frozen=True)
class Toy:
    hidden_size: int = 32
    dropout: float = 0.1
    name: str = "toy"
    cell: Cell = Cell.LSTM
    bidirectional: bool = False
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None
    optimizer: OptimizerConfig = OptimizerConfig()

    @classmethod
    def quick(cls):
        return cls(hidden_size=4, sizes=(7,))


@dataclasses.dataclass(frozen=True)
class WithQuickDict:
    steps: int = 1000
    QUICK = {"steps": 10}


def test_defaults_and_every_field_type():
    assert parse_config(Toy, []) == Toy()
    config = parse_config(
        Toy,
        "--hidden_size 8 --dropout 0.5 --name x --cell gru --bidirectional --sizes 3 4 5 --limit 9 "
        "--optimizer.learning_rate 0.01 --optimizer.decay cosine --optimizer.decay_steps 10 "
        "--optimizer.clip_norm none".split(),
    )
    assert config == Toy(
        hidden_size=8, dropout=0.5, name="x", cell=Cell.GRU, bidirectional=True, sizes=(3, 4, 5), limit=9,
        optimizer=OptimizerConfig(learning_rate=0.01, decay=Decay.COSINE, decay_steps=10, clip_norm=None),
    )  # fmt: skip
    assert parse_config(Toy, ["--no-bidirectional", "--limit", "None"]).limit is None


def test_quick_then_explicit_overrides():
    assert parse_config(Toy, ["--quick"]) == Toy(hidden_size=4, sizes=(7,))
    assert parse_config(Toy, ["--quick", "--hidden_size", "6"]).hidden_size == 6
    assert parse_config(WithQuickDict, ["--quick"]).steps == 10
    assert parse_config(WithQuickDict, ["--steps", "5"]).steps == 5


def test_bad_values_fail_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        parse_config(Toy, ["--cell", "rnn"])
    assert "--cell" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(Toy, ["--hidden_size", "big"])
    with pytest.raises(TypeError, match="dataclass"):
        parse_config(dict, [])
