"""Command lines generated from frozen config dataclasses.

API:
    config = parse_config(WeatherConfig)                  # sys.argv[1:]
    config = parse_config(WeatherConfig, ["--hidden_size", "64", "--optimizer.learning_rate", "3e-3", "--quick"])

Every field becomes ``--name`` (nested dataclasses: ``--outer.inner``); bools get ``--name/--no-name``;
Enums take their values; ``tuple[int, ...]`` takes several values; ``X | None`` also accepts ``none``.
``--quick`` starts from ``ConfigClass.quick()`` (a classmethod) or ``replace(ConfigClass(), **ConfigClass.QUICK)``;
explicit flags are applied on top.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from typing import Any, Callable


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """(X, True) for ``X | None`` / ``Optional[X]``, else (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union type {annotation!r}; only X | None is supported")
    return annotation, False


def _scalar_parser(kind: Any, optional: bool, flag: str) -> Callable[[str], Any]:
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        values = {str(member.value): member for member in kind}

        def parse_enum(text):
            if text not in values:
                raise argparse.ArgumentTypeError(f"{flag} must be one of {sorted(values)}; got {text!r}")
            return values[text]

        base = parse_enum
    elif kind in (int, float, str):
        base = kind
    else:
        raise TypeError(f"{flag}: unsupported field type {kind!r}")

    def parse(text):
        if optional and text.lower() == "none":
            return None
        return base(text)

    return parse


def _add_field(parser: argparse.ArgumentParser, flag: str, dest: str, annotation: Any) -> None:
    kind, optional = _strip_optional(annotation)
    if kind is bool:
        parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        return
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        variadic = len(args) == 2 and args[1] is Ellipsis
        element = args[0]
        if not variadic and len(set(args)) != 1:
            raise TypeError(f"{flag}: tuples must have one element type; got {kind!r}")
        nargs = "*" if variadic else len(args)
        convert = _scalar_parser(element, False, flag)
        parser.add_argument(flag, dest=dest, nargs=nargs, type=convert, default=argparse.SUPPRESS)
        return
    parser.add_argument(flag, dest=dest, type=_scalar_parser(kind, optional, flag), default=argparse.SUPPRESS)


def _add_dataclass(parser: argparse.ArgumentParser, cls: type, prefix: str) -> None:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        annotation = hints[field.name]
        name = prefix + field.name
        if dataclasses.is_dataclass(annotation):
            _add_dataclass(parser, annotation, name + ".")
        else:
            _add_field(parser, "--" + name, name, annotation)


def _apply(config: Any, overrides: dict[str, Any]) -> Any:
    """replace() with dotted keys descending into nested dataclasses; tuples stay tuples."""
    direct, nested = {}, {}
    for name, value in overrides.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[name] = tuple(value) if isinstance(value, list) else value
    for head, inner in nested.items():
        direct[head] = _apply(getattr(config, head), inner)
    return dataclasses.replace(config, **direct)


def quick_config(cls: type) -> Any:
    """The ``--quick`` configuration: ``cls.quick()`` or ``cls()`` with ``cls.QUICK`` applied."""
    if hasattr(cls, "quick"):
        return cls.quick()
    if hasattr(cls, "QUICK"):
        return _apply(cls(), dict(cls.QUICK))
    raise TypeError(f"{cls.__name__} has neither a quick() classmethod nor a QUICK dict, so --quick is unsupported")


def parse_config(cls: type, argv: list[str] | None = None, *, description: str | None = None) -> Any:
    """Build ``cls`` (a frozen dataclass) from defaults, ``--quick`` and command-line overrides."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass type; got {cls!r}")
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, fast smoke-test configuration")
    _add_dataclass(parser, cls, "")
    namespace = vars(parser.parse_args(argv))
    quick = namespace.pop("quick")
    base = quick_config(cls) if quick else cls()
    return _apply(base, namespace)
