"""
The booking lifecycle: statuses, actions, and the one table of allowed transitions.

Rule 1: everything that decides which status a booking may move to lives in this file, in `TRANSITIONS`.
Policies (who confirms first, deadlines, hold expiry) decide *whether* an allowed edge may be taken *now*
and *which* of several allowed actions a request becomes; they never add an edge.

Rule 2: an action missing from the table for the booking's status raises `IllegalTransitionError` and
changes nothing.

Rule 3: every transition that happens is recorded as a `TransitionRecord` (from, to, action, when, who, why),
including the ones that keep the status (a payment, a reschedule, a check-in), so the log tells the whole
story of a booking.

The statuses follow the seeds' pipeline, Предбронь → Подтверждено → Оплачено → Завершено
(pre-booking → confirmed → paid → completed), plus cancelled, expired and no-show::

    PRE_BOOKING ──confirm──▶ CONFIRMED ──pay──▶ PAID ──complete──▶ COMPLETED
         │  ╲                    │                │
       expire  pay (payment     cancel / no-show  cancel / no-show
         ▼      confirms)        ▼                ▼
      EXPIRED ──revive──▶ PRE_BOOKING    CANCELLED, NO_SHOW
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final, TypeVar

import attrs

from slotengine._time import to_utc
from slotengine.errors import IllegalTransitionError, InvalidInputError
from slotengine.model import check_id, check_text

__all__ = [
    "LIVE_STATUSES",
    "TRANSITIONS",
    "Action",
    "BookingStatus",
    "TransitionRecord",
    "next_status",
]


class BookingStatus(enum.StrEnum):
    """Where a booking is in its life. Only live statuses (see `LIVE_STATUSES`) take time on resources."""

    PRE_BOOKING = "pre_booking"
    """Held until its expiry instant, waiting for confirmation or payment."""
    CONFIRMED = "confirmed"
    """Confirmed by the business (or by a deposit), not fully paid."""
    PAID = "paid"
    """Confirmed and fully paid."""
    COMPLETED = "completed"
    """It took place."""
    CANCELLED = "cancelled"
    """Cancelled by the client or the business; its time is free again."""
    EXPIRED = "expired"
    """A pre-booking whose hold ran out; its time was freed at the expiry instant."""
    NO_SHOW = "no_show"
    """The client did not come."""


class Action(enum.StrEnum):
    """What can happen to a booking. Creation actions have no status to start from."""

    HOLD = "hold"
    """Create a pre-booking that holds its time until it expires."""
    BOOK = "book"
    """Create a confirmed booking at once (back office)."""
    CONFIRM = "confirm"
    """The business confirms a pre-booking."""
    CONFIRM_PAID = "confirm_paid"
    """The business confirms a pre-booking that was already paid in full (payment and confirmation in any order)."""
    DEPOSIT = "deposit"
    """A partial payment that confirms a pre-booking (payment confirms)."""
    PREPAY = "prepay"
    """A payment on a pre-booking that waits for the business's confirmation (any order); status kept."""
    PAY_PARTIAL = "pay_partial"
    """A payment that does not yet cover the amount due; status kept."""
    PAY_FULL = "pay_full"
    """A payment that covers the amount due."""
    REFUND = "refund"
    """Money given back; status kept."""
    CANCEL = "cancel"
    """Cancel a live booking; its time is freed."""
    EXPIRE = "expire"
    """A pre-booking's hold ran out (recorded by a sweep; the time was already free at the expiry instant)."""
    REVIVE = "revive"
    """A late payment brings an expired pre-booking back, if its time is still free."""
    RESCHEDULE = "reschedule"
    """Move to another time; status and payments kept."""
    CHECK_IN = "check_in"
    """The client arrived; status kept."""
    COMPLETE = "complete"
    """It took place."""
    MARK_NO_SHOW = "mark_no_show"
    """The client did not come."""
    CHARGE_FEE = "charge_fee"
    """A fee (no-show or late cancellation) is recorded as money the client owes; status kept."""


_S = BookingStatus
_A = Action

TRANSITIONS: Final[Mapping[BookingStatus | None, Mapping[Action, BookingStatus]]] = MappingProxyType(
    {
        None: MappingProxyType({_A.HOLD: _S.PRE_BOOKING, _A.BOOK: _S.CONFIRMED}),
        _S.PRE_BOOKING: MappingProxyType(
            {
                _A.CONFIRM: _S.CONFIRMED,
                _A.CONFIRM_PAID: _S.PAID,
                _A.DEPOSIT: _S.CONFIRMED,
                _A.PREPAY: _S.PRE_BOOKING,
                _A.PAY_FULL: _S.PAID,
                _A.REFUND: _S.PRE_BOOKING,
                _A.CANCEL: _S.CANCELLED,
                _A.EXPIRE: _S.EXPIRED,
                _A.RESCHEDULE: _S.PRE_BOOKING,
            }
        ),
        _S.CONFIRMED: MappingProxyType(
            {
                _A.PAY_PARTIAL: _S.CONFIRMED,
                _A.PAY_FULL: _S.PAID,
                _A.REFUND: _S.CONFIRMED,
                _A.CANCEL: _S.CANCELLED,
                _A.RESCHEDULE: _S.CONFIRMED,
                _A.CHECK_IN: _S.CONFIRMED,
                _A.COMPLETE: _S.COMPLETED,
                _A.MARK_NO_SHOW: _S.NO_SHOW,
            }
        ),
        _S.PAID: MappingProxyType(
            {
                _A.REFUND: _S.PAID,
                _A.CANCEL: _S.CANCELLED,
                _A.RESCHEDULE: _S.PAID,
                _A.CHECK_IN: _S.PAID,
                _A.COMPLETE: _S.COMPLETED,
                _A.MARK_NO_SHOW: _S.NO_SHOW,
            }
        ),
        _S.COMPLETED: MappingProxyType({_A.REFUND: _S.COMPLETED}),
        _S.CANCELLED: MappingProxyType(
            {_A.REFUND: _S.CANCELLED, _A.CHARGE_FEE: _S.CANCELLED, _A.PAY_PARTIAL: _S.CANCELLED}
        ),
        _S.EXPIRED: MappingProxyType({_A.REVIVE: _S.PRE_BOOKING, _A.REFUND: _S.EXPIRED}),
        _S.NO_SHOW: MappingProxyType({_A.REFUND: _S.NO_SHOW, _A.CHARGE_FEE: _S.NO_SHOW, _A.PAY_PARTIAL: _S.NO_SHOW}),
    }
)
"""Every allowed transition: ``TRANSITIONS[status][action]`` is the status after *action* from *status*.

``None`` stands for "no booking yet" (the creation actions). Terminal statuses allow only money actions.
"""

LIVE_STATUSES: Final = frozenset({_S.PRE_BOOKING, _S.CONFIRMED, _S.PAID})
"""Statuses whose bookings take time on their resources (a pre-booking only until its hold expires)."""


# How a refusal names the actions whose value is not a verb phrase ("cannot pay full a paid booking").
_VERBS: Final = MappingProxyType(
    {
        Action.CONFIRM_PAID: "confirm",
        Action.DEPOSIT: "take a deposit on",
        Action.PREPAY: "take a payment on",
        Action.PAY_PARTIAL: "take a payment on",
        Action.PAY_FULL: "take a payment on",
        Action.CHARGE_FEE: "charge a fee on",
        Action.CHECK_IN: "check in",
    }
)


def next_status(status: BookingStatus | None, action: Action) -> BookingStatus:
    """
    Return the status after *action* from *status*, by the table.

    Raises:
        IllegalTransitionError: the table has no such edge; nothing changes.
    """
    status = None if status is None else status_of(status)
    action = action_of(action)
    try:
        return TRANSITIONS[status][action]
    except KeyError:
        allowed = ", ".join(sorted(a.value for a in TRANSITIONS.get(status, {}))) or "nothing"
        article = "an" if status is not None and status.value[0] in "aeiou" else "a"
        where = f"{article} {status.value} booking" if status is not None else "a booking that does not exist yet"
        msg = f"cannot {_VERBS.get(action, action.value.replace('_', ' '))} {where}; allowed: {allowed}"
        raise IllegalTransitionError(msg, status=status, action=action) from None


def _actor(value: object) -> str:
    return check_id(value, "actor")


def _reason(value: object) -> str:
    return check_text(value, "reason", max_length=2_000, allow_empty=True)


def _booking_id(value: object) -> str:
    return check_id(value, "booking id")


def _at(value: object) -> datetime:
    return to_utc(value, "at")


def status_of(value: object, field: str = "status") -> BookingStatus:
    """*value* as a `BookingStatus` (the member or its text, ``"paid"``); anything else is an `InvalidInputError`."""
    return value if isinstance(value, BookingStatus) else _member(BookingStatus, value, field)


def action_of(value: object, field: str = "action") -> Action:
    """*value* as an `Action` (the member or its text, ``"cancel"``); anything else is an `InvalidInputError`."""
    return value if isinstance(value, Action) else _member(Action, value, field)


_E = TypeVar("_E", bound=enum.StrEnum)


def _member(kind: type[_E], value: object, field: str) -> _E:
    """The member of *kind* whose text *value* is, or an `InvalidInputError` listing them."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    known = ", ".join(m.value for m in kind)
    msg = f"{field} must be one of {known}; got {value!r}"
    raise InvalidInputError(msg, field=field)


def _from_status(value: object) -> BookingStatus | None:
    return None if value is None else status_of(value, "from_status")


def _to_status(value: object) -> BookingStatus:
    return status_of(value, "to_status")


@attrs.frozen
class TransitionRecord:
    """
    One step in a booking's life: what happened, from which status to which, when, by whom, and why.

    ``at`` is the engine's clock at the moment of the step; ``actor`` names who asked (a customer id,
    ``"manager:ann"``, ``"system"``). Every field is checked when the record is built, so that a record can
    always be stored and read back.

    Raises:
        InvalidInputError: an empty, over-long or non-text booking id or actor, a naive ``at``, an unknown
            status or action, a reason that is not text (``field`` names it).
        IllegalTransitionError: the lifecycle has no such step (*action* from *from_status* to *to_status*).
    """

    booking_id: str = attrs.field(converter=_booking_id)
    from_status: BookingStatus | None = attrs.field(converter=_from_status)
    to_status: BookingStatus = attrs.field(converter=_to_status)
    action: Action = attrs.field(converter=action_of)
    at: datetime = attrs.field(converter=_at)
    actor: str = attrs.field(converter=_actor)
    reason: str = attrs.field(default="", converter=_reason)

    def __attrs_post_init__(self) -> None:
        expected = next_status(self.from_status, self.action)
        if expected is not self.to_status:
            msg = (
                f"a record of {self.action.value} from {self.from_status} must end in {expected.value}, "
                f"not {self.to_status.value}"
            )
            raise IllegalTransitionError(msg, status=self.from_status, action=self.action)
