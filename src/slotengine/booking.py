"""
A booking as a value: what was booked, for whom, in which status, and the money that moved.

`Booking` is frozen; every change makes a new value with ``version`` one higher, so a storage can refuse a
write based on a stale read. The money on a booking is a ledger of `Payment` entries (payments, refunds,
fees), never a mutable balance: ``paid``, ``refunded`` and ``fees`` are sums over it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from slotengine._checks import shown, tuple_of
from slotengine._time import MAX_INSTANT, MIN_INSTANT, check_duration_range, get_zone, to_utc
from slotengine.availability import Assignment, Load
from slotengine.errors import InvalidInputError, OutOfRangeError
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus, status_of
from slotengine.model import MAX_UNITS, check_id, check_text
from slotengine.money import Money
from slotengine.policies import Policies

__all__ = ["Booking", "Payment", "PaymentKind", "Source"]


class Source(enum.StrEnum):
    """Where a booking came from (the seeds' источник); any other string is accepted too."""

    SITE = "site"
    MANAGER = "manager"
    PARTNER = "partner"
    REPEAT = "repeat"


class PaymentKind(enum.StrEnum):
    """A line of a booking's money ledger."""

    PAYMENT = "payment"
    """Money received from the client."""
    REFUND = "refund"
    """Money given back to the client."""
    FEE = "fee"
    """Money the client owes (a no-show or late-cancellation penalty not covered by payments)."""


def _positive_money(value: object) -> Money:
    if not isinstance(value, Money) or value.amount <= 0:
        msg = f"a ledger entry must be a positive amount of Money, got {shown(value, short=True)}"
        raise InvalidInputError(msg, field="amount")
    return value


def _payment_id(value: object) -> str:
    return check_id(value, "payment id")


def _kind(value: object) -> PaymentKind:
    try:
        return PaymentKind(str(value))
    except ValueError:
        msg = f"payment kind must be one of payment, refund, fee; got {shown(value, short=True)}"
        raise InvalidInputError(msg, field="kind") from None


def _instant(value: object) -> datetime:
    return to_utc(value, "at")


def _actor(value: object) -> str:
    return check_id(value, "actor")


@attrs.frozen
class Payment:
    """One line of the money ledger: a payment, a refund or a fee, with its provider id for deduplication."""

    id: str = attrs.field(converter=_payment_id)
    kind: PaymentKind = attrs.field(converter=_kind)
    amount: Money = attrs.field(converter=_positive_money)
    at: datetime = attrs.field(converter=_instant)
    actor: str = attrs.field(default="system", converter=_actor)


def _booking_id(value: object) -> str:
    return check_id(value, "booking id")


def _service_id(value: object) -> str:
    return check_id(value, "service id")


def _start(value: object) -> datetime:
    return to_utc(value, "start")


def _end(value: object) -> datetime:
    return to_utc(value, "end")


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else to_utc(value, "instant")


def _status(value: object) -> BookingStatus:
    return status_of(value)


def _assignments(value: object) -> tuple[Assignment, ...]:
    out = tuple_of(value, Assignment, "assignments")
    if not out or not any(a.resource_ids for a in out):
        msg = "a booking takes at least one resource"
        raise InvalidInputError(msg, field="assignments")
    return out


def _units(value: object) -> tuple[int, ...]:
    if not isinstance(value, Iterable):
        msg = "units must be a sequence of whole numbers, one per assignment"
        raise InvalidInputError(msg, field="units")
    out = tuple(value)
    if not all(isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= MAX_UNITS for u in out):
        msg = f"units must be whole numbers from 1 to {MAX_UNITS:,}, got {shown(out, short=True)}"
        raise InvalidInputError(msg, field="units")
    return out


def _optional_customer(value: object) -> str | None:
    return None if value is None else check_id(value, "customer id")


def _source(value: object) -> str:
    return check_text(str(value) if isinstance(value, Source) else value, "source", max_length=100)


def _notes(value: object) -> str:
    return check_text(value, "notes", max_length=10_000, allow_empty=True)


def _external_ref(value: object) -> str | None:
    return None if value is None else check_id(value, "external_ref")


def _price(value: object) -> Money | None:
    if value is None or isinstance(value, Money):
        return value
    msg = f"price must be Money or None, not {type(value).__name__}"
    raise InvalidInputError(msg, field="price")


def _payments(value: object) -> tuple[Payment, ...]:
    return tuple_of(value, Payment, "payments")


def _buffer(value: object) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        msg = f"a buffer must be a non-negative timedelta, got {value!r}"
        raise InvalidInputError(msg, field="buffer")
    return check_duration_range(value, "buffer")


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNITS:
        msg = f"{field} must be a whole number from 0 to {MAX_UNITS:,}, got {shown(value, short=True)}"
        raise InvalidInputError(msg, field=field)
    return value


def _reschedules(value: object) -> int:
    return _count(value, "reschedules")


def _version(value: object) -> int:
    return _count(value, "version")


def _optional_zone(value: object) -> str | None:
    return None if value is None else get_zone(value).key


def _language(value: object) -> str:
    return check_text(value, "language", max_length=35, allow_empty=True)


def _policies(value: object) -> Policies:
    if not isinstance(value, Policies):
        msg = f"policies must be Policies, not {type(value).__name__}"
        raise InvalidInputError(msg, field="policies")
    return value


@attrs.frozen(repr=False)
class Booking:
    """
    A booking: a service at an interval, on the resources that serve it, in a lifecycle status.

    ``assignments`` say which resources serve each need of the service and ``units`` how many units each
    resource of that need takes. ``hold_until`` is set while the booking is a pre-booking. ``policies`` is
    the copy of the business's rules in force when it was made. ``customer_zone`` and
    ``customer_language`` say how messages to the client are written. The repr shows no personal data.
    """

    id: str = attrs.field(converter=_booking_id)
    service_id: str = attrs.field(converter=_service_id)
    start: datetime = attrs.field(converter=_start)
    end: datetime = attrs.field(converter=_end)
    assignments: tuple[Assignment, ...] = attrs.field(converter=_assignments)
    units: tuple[int, ...] = attrs.field(converter=_units)
    status: BookingStatus = attrs.field(converter=_status)
    created_at: datetime = attrs.field(converter=_instant)
    policies: Policies = attrs.field(factory=Policies, converter=_policies)
    hold_until: datetime | None = attrs.field(default=None, converter=_optional_instant)
    buffer_before: timedelta = attrs.field(default=timedelta(0), converter=_buffer)
    buffer_after: timedelta = attrs.field(default=timedelta(0), converter=_buffer)
    customer_id: str | None = attrs.field(default=None, converter=_optional_customer)
    source: str = attrs.field(default=Source.SITE, converter=_source)
    notes: str = attrs.field(default="", converter=_notes)
    external_ref: str | None = attrs.field(default=None, converter=_external_ref)
    price: Money | None = attrs.field(default=None, converter=_price)
    payments: tuple[Payment, ...] = attrs.field(default=(), converter=_payments)
    reschedules: int = attrs.field(default=0, converter=_reschedules)
    checked_in_at: datetime | None = attrs.field(default=None, converter=_optional_instant)
    version: int = attrs.field(default=1, converter=_version)
    customer_zone: str | None = attrs.field(default=None, converter=_optional_zone)
    customer_language: str = attrs.field(default="", converter=_language)

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            msg = f"a booking must end after it starts, got {self.start.isoformat()} to {self.end.isoformat()}"
            raise InvalidInputError(msg, field="end")
        if self.start - self.buffer_before < MIN_INSTANT or self.end + self.buffer_after > MAX_INSTANT:
            msg = (
                f"a booking's time with its buffers, {(self.start - self.buffer_before).isoformat()} to "
                f"{(self.end + self.buffer_after).isoformat()}, is outside the accepted range 1970 to 2200 UTC"
            )
            raise OutOfRangeError(msg, field="start")
        if len(self.units) != len(self.assignments):
            msg = "units must give one number per assignment"
            raise InvalidInputError(msg, field="units")
        if (self.status is BookingStatus.PRE_BOOKING) != (self.hold_until is not None):
            msg = "a pre-booking needs hold_until, and only a pre-booking has one"
            raise InvalidInputError(msg, field="hold_until")
        currencies = {p.amount.currency for p in self.payments}
        if self.price is not None:
            currencies.add(self.price.currency)
        if len(currencies) > 1:
            msg = f"a booking's money must be in one currency, got {sorted(currencies)}"
            raise InvalidInputError(msg, field="payments")

    # --- time ----------------------------------------------------------------------------------------------

    @property
    def interval(self) -> Interval:
        """The booked interval ``[start, end)``."""
        return Interval(self.start, self.end)

    @property
    def resource_ids(self) -> tuple[str, ...]:
        """Every resource the booking takes."""
        return tuple(rid for a in self.assignments for rid in a.resource_ids)

    def takes_same_time_as(self, other: Booking) -> bool:
        """
        Whether *other* books the same time on the same resources, buffers included.

        Storages allow a plain update only when this holds; anything else must go through ``reserve``, where
        capacity is checked again.
        """
        given: object = other
        if not isinstance(given, Booking):
            msg = f"a booking is compared with a Booking, not {type(given).__name__}"
            raise InvalidInputError(msg, field="other")
        return (self.start, self.end, self.assignments, self.units, self.buffer_before, self.buffer_after) == (
            other.start,
            other.end,
            other.assignments,
            other.units,
            other.buffer_before,
            other.buffer_after,
        )

    def takes_time(self, now: datetime) -> bool:
        """Whether the booking holds its resources at *now*: live, and not a hold that has expired."""
        now = to_utc(now, "now")
        if self.status not in LIVE_STATUSES:
            return False
        return self.hold_until is None or now < self.hold_until

    def loads(self) -> list[Load]:
        """The load this booking puts on each of its resources (whether or not it is live)."""
        hold = self.hold_until if self.status is BookingStatus.PRE_BOOKING else None
        return [
            Load(
                self.id,
                rid,
                self.interval,
                units=units,
                buffer_before=self.buffer_before,
                buffer_after=self.buffer_after,
                hold_until=hold,
            )
            for assignment, units in zip(self.assignments, self.units, strict=True)
            for rid in assignment.resource_ids
        ]

    def units_by_resource(self) -> dict[str, int]:
        """The units this booking takes on each of its resources, in first-use order (several needs add up)."""
        taken: dict[str, int] = {}
        for assignment, units in zip(self.assignments, self.units, strict=True):
            for rid in assignment.resource_ids:
                taken[rid] = taken.get(rid, 0) + units
        return taken

    # --- money ---------------------------------------------------------------------------------------------

    @property
    def currency(self) -> str | None:
        """The booking's currency, if it has a price or any money moved."""
        if self.price is not None:
            return self.price.currency
        return self.payments[0].amount.currency if self.payments else None

    def _sum(self, kind: PaymentKind) -> Money:
        total = Money.zero(self.currency or "EUR")
        for entry in self.payments:
            if entry.kind is kind:
                total += entry.amount
        return total

    @property
    def paid(self) -> Money:
        """Everything received from the client."""
        return self._sum(PaymentKind.PAYMENT)

    @property
    def refunded(self) -> Money:
        """Everything given back."""
        return self._sum(PaymentKind.REFUND)

    @property
    def fees(self) -> Money:
        """Every fee charged."""
        return self._sum(PaymentKind.FEE)

    @property
    def net_paid(self) -> Money:
        """Received minus given back: what the business holds now."""
        return self.paid - self.refunded

    @property
    def due(self) -> Money:
        """
        What the client must pay in all.

        The price; once cancelled or a no-show, what the business kept plus any fee still unpaid (the price is
        no longer owed: the fee stands in for it).
        """
        if self.status in {BookingStatus.CANCELLED, BookingStatus.NO_SHOW}:
            return self.net_paid + self.outstanding_fees
        return self.price if self.price is not None else Money.zero(self.currency or "EUR")

    @property
    def outstanding_fees(self) -> Money:
        """Fees not yet paid: every fee, less the payments recorded after the first fee was charged."""
        total = Money.zero(self.currency or "EUR")
        charging = False
        for entry in self.payments:
            if entry.kind is PaymentKind.FEE:
                charging = True
                total += entry.amount
            elif charging and entry.kind is PaymentKind.PAYMENT:
                total -= entry.amount
        return total if total.amount > 0 else Money.zero(total.currency)

    def has_payment(self, payment_id: str) -> bool:
        """Whether a ledger entry with this provider id exists (a replayed webhook)."""
        return any(p.id == payment_id for p in self.payments)

    def __repr__(self) -> str:
        return (
            f"Booking({self.id!r}, {self.status.value}, {self.service_id!r}, "
            f"{self.start:%Y-%m-%d %H:%M}Z – {self.end:%Y-%m-%d %H:%M}Z, {'+'.join(self.resource_ids)})"
        )
