"""Frozen dataclass configs and the command line generated from them.

A config is a frozen, keyword-only dataclass; each field carries its help text
in ``metadata={"help": ...}`` (:func:`option` writes that) and validation lives
in ``__post_init__`` through :func:`require`, so a bad value raises with the
field's name. :func:`parse_config` builds an ``argparse`` CLI from the fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["option", "parse_config", "require"]

C = TypeVar("C")


def option(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    """A dataclass field with a default and its ``--help`` text."""
    return dataclasses.field(default=default, metadata={"help": help})


def require(condition: bool, field: str, expected: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(f"{field} must be {expected}, got {value!r}")


def _arg_type(tp: Any) -> tuple[Any, list[Any] | None]:
    """The argparse ``type`` and ``choices`` for a field annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            inner, choices = _arg_type(args[0])
            return (lambda s: None if s.lower() == "none" else inner(s)), choices
    if origin is typing.Literal:
        choices = list(typing.get_args(tp))
        return type(choices[0]), choices
    if tp in (int, float, str):
        return tp, None
    raise TypeError(f"unsupported config field type {tp!r}")


def parse_config(
    cls: type[C], argv: Sequence[str] | None = None, description: str | None = None,
    **overrides: Any,
) -> C:
    """Parse ``argv`` into an instance of the dataclass ``cls``.

    Every field becomes ``--field-name``; booleans become ``--flag/--no-flag``.
    ``overrides`` replace defaults (not command-line values).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass, got {cls!r}")
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(
        description=description or (cls.__doc__ or "").strip().split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(cls):
        default = overrides.get(f.name, f.default)
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        tp = hints[f.name]
        if tp is bool:
            parser.add_argument(
                flag, dest=f.name, default=default, help=help_text,
                action=argparse.BooleanOptionalAction,
            )
            continue
        arg_type, choices = _arg_type(tp)
        parser.add_argument(
            flag, dest=f.name, type=arg_type, choices=choices, default=default,
            help=help_text, metavar=None if choices else f.name.upper(),
        )
    args = parser.parse_args(argv)
    return cls(**vars(args))
