"""Command lines from frozen config dataclasses (tyro), one shared run config and one preset mechanism.

An experiment's config is a frozen dataclass with a ``run: RunConfig`` field; :func:`cli` builds it from
the command line. Every field becomes a flag (nested dataclasses: ``--optimizer.learning_rate``), its help
is the field's docstring, Enums take their values, ``X | None`` also takes ``None``, bools get
``--name/--no_name``. The run fields keep their short flags: ``--seed``, ``--run_name``, ``--runs_root``,
``--fresh``, ``--quiet``.

Presets: ``presets={"quick": QUICK, "full": FULL}`` maps a name to a whole config (or a function returning
one). ``--quick`` (``--<name>``) starts from that config instead of the defaults and the other flags are
applied on top; at most one preset per command line. A preset that starts its run fresh empties only its own
run folder: with a user's ``--run_name`` (and no ``--fresh``) the named run resumes::

    @dataclasses.dataclass(frozen=True)
    class WeatherConfig:
        hidden_size: int = 32
        \"\"\"GRU units.\"\"\"
        run: RunField = RunConfig()          # Annotated[RunConfig, tyro.conf.OmitArgPrefixes]

    QUICK = WeatherConfig(hidden_size=16, run=RunConfig.quick())
    config = cli(WeatherConfig, argv, presets={"quick": QUICK})   # python weather.py --quick --hidden_size 8
    run = config.run.open("weather", config)                      # the Run folder runs/weather/<name>/
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Any, Callable, Mapping, Sequence, TypeVar

import tyro

from rnnjax import runtime
from rnnjax.checks import arguments
from rnnjax.training.runs import Run

ConfigT = TypeVar("ConfigT")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Run folder and randomness, shared by every experiment."""

    seed: int = 0
    """seed of every random choice of the run (data order, initialisation, per-step keys)."""
    run_name: str | None = None
    """run folder name, runs/<experiment>/<run_name> (default: a UTC timestamp)."""
    runs_root: str = "runs"
    """folder that holds runs/<experiment>/."""
    fresh: bool = False
    """empty the run folder first instead of resuming from its checkpoints."""
    quiet: bool = False
    """no progress bars or per-evaluation lines on the terminal."""
    tensorboard: bool = True
    """also write TensorBoard event files next to metrics.jsonl (when tensorboardX is installed)."""
    compile_cache: bool = True
    """keep compiled programs in JAX's persistent cache ($RNNJAX_COMPILATION_CACHE, default ~/.cache/rnnjax/xla;
    RNNJAX_COMPILATION_CACHE=0 also turns it off), so a rerun or a resume compiles nothing it compiled before."""

    def __post_init__(self):
        arguments.nonnegative_int("seed", self.seed)
        if not isinstance(self.runs_root, str) or not self.runs_root:
            raise ValueError(f"runs_root must be a non-empty path; got {self.runs_root!r}")

    @classmethod
    def quick(cls, **fields: Any) -> "RunConfig":
        """The run part of a ``--quick`` preset: run name ``quick``, started fresh each time."""
        return cls(**{"run_name": "quick", "fresh": True, **fields})

    @property
    def progress(self) -> bool | None:
        """``progress`` for :func:`rnnjax.training.loop.fit` and ``fit_many``: off when quiet, else their default."""
        return False if self.quiet else None

    def open(self, experiment: str, config: Any) -> Run:
        """The :class:`Run` folder ``<runs_root>/<experiment>/<run_name>`` with ``config`` written to config.json.

        Resuming under a config that differs is refused, except in the fields that only say how the run is shown
        or where it lives (:data:`UNTRACKED`, under the config's field that holds this RunConfig).
        """
        tensorboard = None if self.tensorboard else False  # None: on when tensorboardX is installed
        fields = dataclasses.fields(config) if dataclasses.is_dataclass(config) else ()
        prefixes = [f.name for f in fields if getattr(config, f.name) is self]
        untracked = [f"{prefix}.{name}" for prefix in prefixes for name in UNTRACKED]
        return Run(experiment, name=self.run_name, config=config, root=self.runs_root, fresh=self.fresh,
                   tensorboard=tensorboard, untracked=untracked)  # fmt: skip


UNTRACKED = ("run_name", "runs_root", "fresh", "quiet", "tensorboard", "compile_cache")
"""The RunConfig fields that change how a run is shown or where it lives, not what it computes."""


def require_positive(config: Any, *names: str) -> None:
    """Each named field of ``config`` (an int, a float or a tuple of them) must be > 0; call it in ``__post_init__``."""
    for name in names:
        value = getattr(config, name)
        for index, item in enumerate(value if isinstance(value, tuple) else (value,)):
            argument = f"{name}[{index}]" if isinstance(value, tuple) else name
            if isinstance(item, float):
                arguments.positive_float(argument, item)
            else:
                arguments.positive_int(argument, item)


RunField = Annotated[RunConfig, tyro.conf.OmitArgPrefixes]
"""The type of an experiment's ``run`` field: its flags are ``--seed``, ``--run_name``, ... (no ``--run.`` prefix)."""


def _preset_value(preset: Any) -> Any:
    return preset() if callable(preset) and not dataclasses.is_dataclass(preset) else preset


def split_preset(argv: Sequence[str], names: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the one ``--<preset>`` flag in ``argv`` or None, the other arguments)."""
    flags = {f"--{name}": name for name in names}
    chosen = [flags[arg] for arg in argv if arg in flags]
    if len(chosen) > 1:
        raise SystemExit(f"choose at most one preset of {', '.join(flags)}; got {', '.join('--' + c for c in chosen)}")
    return (chosen[0] if chosen else None), [arg for arg in argv if arg not in flags]


def cli(
    config_type: type[ConfigT],
    argv: Sequence[str] | None = None,
    *,
    presets: Mapping[str, ConfigT | Callable[[], ConfigT]] | None = None,
    description: str | None = None,
) -> ConfigT:
    """Build ``config_type`` from its defaults (or a ``--<preset>``) and the flags in ``argv``.

    Args:
      config_type: a frozen dataclass type.
      argv: the arguments (default: ``sys.argv[1:]``).
      presets: name -> config (or a function returning one); ``--<name>`` starts from it.
      description: help text (default: the first line of ``config_type``'s docstring).

    A config whose ``run`` field is a :class:`RunConfig` with ``compile_cache`` (the default) also turns on
    JAX's persistent compilation cache for the process (:func:`rnnjax.runtime.enable_compilation_cache`).
    """
    if not (isinstance(config_type, type) and dataclasses.is_dataclass(config_type)):
        raise TypeError(f"config_type must be a dataclass type; got {config_type!r}")
    presets = dict(presets or {})
    chosen, rest = split_preset(list(sys.argv[1:] if argv is None else argv), list(presets))
    default = _preset_value(presets[chosen]) if chosen else config_type()
    if not isinstance(default, config_type):
        raise TypeError(f"preset {chosen!r} must be a {config_type.__name__}; got {type(default).__name__}")
    summary = description or (config_type.__doc__ or config_type.__name__).strip().splitlines()[0]
    if presets:
        summary += "\n\nPresets (at most one; other flags apply on top): " + ", ".join(f"--{n}" for n in presets)
    config = tyro.cli(
        config_type,
        args=rest,
        default=default,
        description=summary,
        use_underscores=True,
        config=(tyro.conf.EnumChoicesFromValues,),
    )
    run = getattr(config, "run", None)
    if isinstance(run, RunConfig) and run.compile_cache:
        runtime.enable_compilation_cache()  # process-wide, on purpose: see rnnjax/runtime.py
    return _keep_named_run(config, default, rest) if chosen else config


def _given(rest: Sequence[str], flag: str) -> bool:
    """Whether ``--flag`` (with '_' or '-', as ``--flag value`` or ``--flag=value``) is among the arguments."""
    spellings = {f"--{flag}", f"--{flag.replace('_', '-')}"}
    return any(arg.split("=", 1)[0] in spellings for arg in rest)


def _keep_named_run(config: Any, preset: Any, rest: Sequence[str]) -> Any:
    """A preset's ``fresh=True`` empties the preset's own run folder, never another one the user named with
    --run_name: then, without --fresh, the named run resumes."""
    for field in dataclasses.fields(config):
        run, own = getattr(config, field.name), getattr(preset, field.name)
        if not (isinstance(run, RunConfig) and run.fresh) or _given(rest, "fresh"):
            continue
        if _given(rest, "run_name") and run.run_name != own.run_name:
            config = dataclasses.replace(config, **{field.name: dataclasses.replace(run, fresh=False)})
    return config
