"""Click options derived from a frozen options dataclass, so CLI defaults equal library defaults."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import click

from voxproof.options import RANGE


def dataclass_options(cls: type, help: dict[str, str], *, skip: tuple[str, ...] = ()) -> Callable:
    """A decorator adding one ``--field-name`` option per field of ``cls`` (bools as ``--x/--no-x``,
    ``tuple[str, ...]`` fields as a repeatable option).

    The command receives the values as keyword arguments named after the fields; build the options
    with ``cls(**{f: kwargs.pop(f) for f in field_names(cls)})``.
    """
    hints = typing.get_type_hints(cls)

    def decorate(func: Callable) -> Callable:
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            default = f.default
            annotation = hints[f.name]
            text = help.get(f.name, "")
            if RANGE in f.metadata:
                text = f"{text} Valid: {f.metadata[RANGE].describe()}.".strip()
            if typing.get_origin(annotation) is typing.Literal:
                choice = click.Choice([str(a) for a in typing.get_args(annotation)])
                opt = click.option(flag, f.name, type=choice, default=default, show_default=True, help=text)
            elif typing.get_origin(annotation) is tuple:  # tuple[str, ...]: a repeatable option
                opt = click.option(flag, f.name, multiple=True, default=default, metavar="VALUE",
                                   help=text + " Repeatable.")
            elif annotation is bool:
                opt = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=default, show_default=True, help=text)
            else:
                base = _base_type(annotation)
                opt = click.option(flag, f.name, type=base, default=default, show_default=True, help=text)
            func = opt(func)
        return func

    return decorate


def field_names(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in skip]


def pop_dataclass(cls: type, kwargs: dict[str, Any], skip: tuple[str, ...] = ()) -> Any:
    """Remove ``cls``'s fields from ``kwargs`` and build an instance from them."""
    return cls(**{name: kwargs.pop(name) for name in field_names(cls, skip) if name in kwargs})


def _base_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        annotation = args[0]
    return {int: int, float: float, str: str}.get(annotation, str)
