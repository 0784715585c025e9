"""
Outbox messages: facts to tell the world, written in the same transaction as the change they describe.

The engine writes one `OutboxMessage` for every effective transition (and, with notification rules, for
every message due to a person) in the same storage transaction as the booking change, so a rolled-back or
refused change tells nobody anything, and a committed one is never lost. A relay hands due messages to a
`Notifier` after commit; ``dedupe_key`` lets a receiver drop the copy that a crash between sending and
recording can cause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from slotengine._checks import shown
from slotengine._time import to_utc
from slotengine.errors import InvalidInputError
from slotengine.model import MAX_ID_LENGTH, check_id, check_text

__all__ = ["OutboxMessage"]


def _id(value: object) -> str:
    return check_id(value, "message id")


def _topic(value: object) -> str:
    return check_text(value, "topic", max_length=MAX_ID_LENGTH + 50)  # "remind." and the like before a rule id


def _optional_id(value: object) -> str | None:
    return None if value is None else check_id(value, "booking id")


def _instant(value: object) -> datetime:
    return to_utc(value, "instant")


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else to_utc(value, "instant")


def _payload(value: object) -> str:
    return check_text(value, "payload", max_length=100_000, allow_empty=True)


MAX_ATTEMPTS: Final = 1_000_000
"""The most sending attempts a message records: far beyond any relay's ``max_attempts``, and a number every
storage keeps (an unbounded one could not even be written as JSON)."""


def _attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ATTEMPTS:
        msg = f"attempts must be a whole number from 0 to {MAX_ATTEMPTS:,}, got {shown(value)}"
        raise InvalidInputError(msg, field="attempts")
    return value


def _error(value: object) -> str:
    return check_text(value, "last_error", max_length=2_000, allow_empty=True)


@attrs.frozen
class OutboxMessage:
    """
    One message waiting to be sent: what happened (``topic``), to which booking, when it is due, and its body.

    ``payload`` is JSON text holding only ids and the fields a template declares, never a whole customer.
    """

    id: str = attrs.field(converter=_id)
    topic: str = attrs.field(converter=_topic)
    booking_id: str | None = attrs.field(converter=_optional_id)
    created_at: datetime = attrs.field(converter=_instant)
    due_at: datetime = attrs.field(converter=_instant)
    dedupe_key: str = attrs.field(converter=_id)
    payload: str = attrs.field(default="{}", converter=_payload)
    attempts: int = attrs.field(default=0, converter=_attempts)
    sent_at: datetime | None = attrs.field(default=None, converter=_optional_instant)
    failed_at: datetime | None = attrs.field(default=None, converter=_optional_instant)
    last_error: str = attrs.field(default="", converter=_error)
