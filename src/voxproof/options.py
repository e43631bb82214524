"""Building frozen options dataclasses from ``key=value`` strings (CLI ``-O`` flags, HTTP fields).

The dataclass is the single definition: its field types drive the conversion, its defaults are the
defaults everywhere, and the valid range of a numeric field is declared on the field itself with
:func:`bounded` (``beam_size: int = bounded(1, 1, 32)``). :func:`check_ranges` enforces the ranges and
refuses non-finite floats; :func:`build_options` calls it before building, and a dataclass built
directly calls it from ``__post_init__``, so every entry point (CLI flags, ``-O``, the library, the
HTTP schema through :func:`option_ranges`) refuses the same values with the same message.
"""

from __future__ import annotations

import dataclasses
import math
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


RANGE = "range"


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid values of a numeric option: ``low <= x <= high`` (``low < x`` when ``open_low``)."""

    low: float
    high: float
    open_low: bool = False
    unit: str = ""

    def contains(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low, high = _num(self.low), _num(self.high)
        if self.open_low:
            return f"greater than {low} and at most {high}{unit}"
        return f"from {low} to {high}{unit}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def bounded(default: Any, low: float, high: float, *, open_low: bool = False, unit: str = "") -> Any:
    """A dataclass field whose value must lie in ``[low, high]`` (``(low, high]`` with ``open_low``);
    ``None`` stays allowed for optional fields."""
    return dataclasses.field(default=default, metadata={RANGE: Range(low, high, open_low, unit)})


def option_ranges(cls: type) -> dict[str, Range]:
    """field name -> :class:`Range` for every bounded field of the options dataclass ``cls``."""
    return {f.name: f.metadata[RANGE] for f in dataclasses.fields(cls) if RANGE in f.metadata}


def check_value(name: str, value: Any, valid: Range | None) -> None:
    """:class:`UsageError` naming the value and the valid range when ``value`` is a non-finite float
    or outside ``valid``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        where = f"; valid: {valid.describe()}" if valid else ""
        raise UsageError(f"option {name}={value} must be a finite number{where}")
    if valid is not None and not valid.contains(value):
        text = str(value)
        shown = text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"
        raise UsageError(f"option {name}={shown} is out of range: valid values are {valid.describe()}")


def check_ranges(options: Any) -> None:
    """Check every numeric field of the options dataclass instance ``options`` (see :func:`check_value`);
    call it from ``__post_init__``."""
    for f in dataclasses.fields(options):
        check_value(f.name, getattr(options, f.name), f.metadata.get(RANGE))


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
        check_value(key, kwargs[key], fields[key].metadata.get(RANGE))
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
