"""Argument checks the value classes share: a collection of one kind of value, read once."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import TypeVar

from slotengine.errors import InvalidInputError

_T = TypeVar("_T")

_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80


def tuple_of(
    value: object, kind: type[_T], field: str, *, label: str | None = None, single: bool = False
) -> tuple[_T, ...]:
    """
    Return *value*'s items as a tuple if every one is a *kind*; with *single*, a lone *kind* is a tuple of one.

    The items are read once, so a generator is as good as a list (checking first and copying after would
    leave it empty). Text, bytes and mappings are refused although they iterate: their letters or keys are
    never what a caller meant.

    Raises:
        InvalidInputError: *value* is no collection, or holds something that is not a *kind* (named).
    """
    if single and isinstance(value, kind):
        return (value,)
    name = label or field
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        msg = f"{name} must be a collection of {kind.__name__} values, not {type(value).__name__} {_SHORT.repr(value)}"
        raise InvalidInputError(msg, field=field)
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            msg = f"{name} must hold {kind.__name__} values, not {type(item).__name__} {_SHORT.repr(item)}"
            raise InvalidInputError(msg, field=field)
    return items
