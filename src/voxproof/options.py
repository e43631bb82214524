"""Building frozen options dataclasses from ``key=value`` strings (CLI ``-O`` flags, HTTP fields).

The dataclass is the single definition: its field types drive the conversion and its defaults are
the defaults everywhere.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from voxproof.errors import UsageError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, raw: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in {"none", "null", ""} and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(name, raw, arg)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError("; ".join(errors))
    if origin is typing.Literal:
        if raw not in args:
            raise UsageError(f"option {name}={raw!r} is not one of {', '.join(map(str, args))}")
        return raw
    if origin in (tuple, list):
        inner = args[0] if args else str
        items = tuple(_convert(name, part.strip(), inner) for part in raw.split(",") if part.strip())
        return items if origin is tuple else list(items)
    if annotation is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise UsageError(f"option {name}={raw!r} must be true or false")
    if annotation in (int, float):
        try:
            return annotation(raw)
        except ValueError:
            raise UsageError(f"option {name}={raw!r} must be a {annotation.__name__}") from None
    if annotation is str:
        return raw
    raise UsageError(f"option {name} cannot be set from text")


def build_options(cls: type[T], pairs: list[str] | tuple[str, ...] | dict[str, Any] = ()) -> T:
    """An instance of the frozen dataclass ``cls`` from ``["beam_size=5", ...]`` or a dict.

    Unknown names and badly typed values raise :class:`UsageError` naming the valid choices.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    items: list[tuple[str, Any]]
    if isinstance(pairs, dict):
        items = list(pairs.items())
    else:
        items = []
        for pair in pairs:
            if "=" not in pair:
                raise UsageError(f"option {pair!r} must look like name=value")
            key, _, value = pair.partition("=")
            items.append((key.strip().replace("-", "_"), value.strip()))
    kwargs: dict[str, Any] = {}
    for key, value in items:
        if key not in fields:
            raise UsageError(f"unknown option {key!r}; valid options: {', '.join(sorted(fields))}")
        kwargs[key] = _convert(key, value, hints[key]) if isinstance(value, str) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid options for {cls.__name__}: {exc}") from None


def options_dict(options: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a frozen options dataclass (tuples become lists)."""
    return json_safe(dataclasses.asdict(options))


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
