"""Argument checks the value classes share: a collection of one kind of value, read once; a value shown in a message."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import TypeVar

from slotengine.errors import InvalidInputError

_T = TypeVar("_T")

_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80


def shown(value: object, *, short: bool = False) -> str:
    """
    *value*'s repr for an error message (cut to about 80 characters with *short*), whatever it holds.

    Python refuses to print an integer of more than 4,300 digits (`sys.get_int_max_str_digits`), so the plain
    repr of ``10**5000`` raises ValueError: a message built with it would replace the `InvalidInputError` being
    raised by a bare ValueError. Such a number is described by its size instead.
    """
    try:
        return _SHORT.repr(value) if short else repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"a whole number of {value.bit_length():,} bits"
        return "(too long to print)"


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
    # A tuple or a list, what nearly every caller passes, skips the two checks against abstract classes.
    if type(value) is not tuple and type(value) is not list and (
        isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable)
    ):
        msg = (
            f"{name} must be a collection of {kind.__name__} values, "
            f"not {type(value).__name__} {shown(value, short=True)}"
        )
        raise InvalidInputError(msg, field=field)
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            msg = f"{name} must hold {kind.__name__} values, not {type(item).__name__} {shown(item, short=True)}"
            raise InvalidInputError(msg, field=field)
    return items
