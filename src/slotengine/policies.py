"""
The rules a business sets, as frozen values evaluated in the core.

Policies never add a transition to the lifecycle table; they decide whether an allowed one may be taken now
(a deadline passed?), and which action a request becomes (does this payment confirm the booking?). They
also compute money: the refund and penalty of a cancellation are *quoted* by `CancellationPolicy.quote`
before the action and recorded after it, from the same function.

A booking keeps a copy of the `Policies` in force when it was made, so a later change of the business's
rules never changes what an existing customer was promised.

Deadlines are measured back from the booking's start on the wall clock of the resource's zone: "48 hours
before a 10:00 start" is 10:00 two days earlier, local time, even across a DST change (local wall times are
resolved by the rule in `slotengine._time`). A deadline whose wall time the clocks skip lands the same elapsed
time before the start; one whose wall time happens twice is the pass nearer that elapsed time, never after the
start (an hour before 02:15 on New York's fall-back night is the second 01:15).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

import attrs

from slotengine._checks import shown, tuple_of
from slotengine._time import check_duration_range, get_zone, is_ambiguous, is_nonexistent, localize, spoken, to_utc
from slotengine.errors import InvalidInputError, PolicyViolationError
from slotengine.lifecycle import Action, BookingStatus, status_of
from slotengine.money import Money

__all__ = [
    "CancellationPolicy",
    "CancellationQuote",
    "ConfirmationMode",
    "ConfirmationPolicy",
    "HoldPolicy",
    "NoShowPolicy",
    "Policies",
    "RefundTier",
    "ReschedulePolicy",
    "wall_clock_before",
]

_HUNDRED: Final = Decimal(100)
_T = TypeVar("_T")


def wall_clock_before(start: datetime, before: timedelta, zone: ZoneInfo) -> datetime:
    """
    Return the instant *before* ahead of *start* on the wall clock of *zone* (see the module docstring).

    A deadline whose wall time the clocks skip (a DST gap) is read with the offset after the gap, so it lands
    *before* of elapsed time ahead of *start*: never after the start, as the gap rule's forward move would put it.
    A deadline whose wall time happens twice (a DST fold) is the one of the two nearer *before* of elapsed time
    ahead of *start*, and never after it: "an hour before 02:15" after the clocks went back is 01:15 the second
    time, not an hour earlier.
    """
    start = to_utc(start, "start")
    wall = start.astimezone(zone).replace(tzinfo=None) - before
    if is_nonexistent(wall, zone):
        return to_utc(wall.replace(tzinfo=zone, fold=1), "deadline")
    if is_ambiguous(wall, zone):
        elapsed = start - before
        passes = [to_utc(wall.replace(tzinfo=zone, fold=fold), "deadline") for fold in (0, 1)]
        return min((p for p in passes if p <= start), key=lambda p: abs(p - elapsed))
    return localize(wall, zone)


def _timedelta(value: object, field: str, *, allow_zero: bool = True) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0) or (not allow_zero and not value):
        rule = "a non-negative" if allow_zero else "a positive"
        msg = f"{field} must be {rule} timedelta, got {value!r}"
        raise InvalidInputError(msg, field=field)
    return check_duration_range(value, field)


def _percent(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        msg = f"{field} must be an int or a Decimal percentage, not {type(value).__name__} {shown(value)}"
        raise InvalidInputError(msg, field=field)
    percent = Decimal(value)
    if not percent.is_finite() or not Decimal(0) <= percent <= _HUNDRED:
        msg = f"{field} must be between 0 and 100, got {shown(value)}"
        raise InvalidInputError(msg, field=field)
    return percent


# --- holds ---------------------------------------------------------------------------------------------------


def _ttl(value: object) -> timedelta:
    return _timedelta(value, "ttl", allow_zero=False)


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"{field} must be True or False, not {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _late_payment(value: object) -> bool:
    return _bool("accept_late_payment", value)


@attrs.frozen
class HoldPolicy:
    """
    How long a pre-booking holds its time, and whether a payment that arrives after it expired is accepted.

    A hold's expiry is fixed when it is made; nothing refreshes it. A late payment is accepted only if the
    time is still free, checked like a new booking (pretix's rule).
    """

    ttl: timedelta = attrs.field(default=timedelta(minutes=30), converter=_ttl)
    accept_late_payment: bool = attrs.field(default=True, converter=_late_payment)


# --- confirmation and payment --------------------------------------------------------------------------------


class ConfirmationMode(enum.StrEnum):
    """Which comes first, the seeds ask: payment or the manager's confirmation?"""

    PAYMENT_CONFIRMS = "payment_confirms"
    """A payment of at least the deposit confirms the booking by itself; a manager may also confirm."""
    MANAGER_FIRST = "manager_first"
    """A manager must confirm before any payment is accepted."""
    ANY_ORDER = "any_order"
    """Both are needed, in either order: a payment on a pre-booking waits for the manager's confirmation."""


def _mode(value: object) -> ConfirmationMode:
    try:
        return ConfirmationMode(str(value))
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in ConfirmationMode)
        msg = f"confirmation mode must be one of {allowed}, got {value!r}"
        raise InvalidInputError(msg, field="mode") from None


def _deposit(value: object) -> Decimal:
    return _percent(value, "deposit_percent")


@attrs.frozen
class ConfirmationPolicy:
    """
    Who confirms a booking, and what payment does.

    ``deposit_percent`` is the share of the price that, paid on a pre-booking, confirms it under
    `ConfirmationMode.PAYMENT_CONFIRMS` (100 means only full payment confirms).
    """

    mode: ConfirmationMode = attrs.field(default=ConfirmationMode.PAYMENT_CONFIRMS, converter=_mode)
    deposit_percent: Decimal = attrs.field(default=Decimal(100), converter=_deposit)

    def payment_action(self, status: BookingStatus, paid: Money, amount: Money, due: Money) -> Action:
        """
        Return the action a payment of *amount* becomes, for a booking in *status* that has *paid* of *due*.

        Raises:
            InvalidInputError: the amount is not positive.
            CurrencyMismatchError: the amount is not in the booking's currency.
            PolicyViolationError: the payment would exceed the amount due (overpayment), or a manager must
                confirm first.
        """
        status = status_of(status)
        paid, amount, due = _money(paid, "paid"), _money(amount, "amount"), _money(due, "due")
        if amount.amount <= 0:
            msg = f"a payment must be a positive amount, got {amount}"
            raise InvalidInputError(msg, field="amount")
        total = paid + amount
        if total > due:
            msg = f"a payment of {amount} would bring the total paid to {total}, more than the {due} due"
            raise PolicyViolationError(msg, rule="overpayment", due=due, paid=paid)
        full = total == due
        if status is BookingStatus.PRE_BOOKING:
            if self.mode is ConfirmationMode.MANAGER_FIRST:
                msg = "this business accepts payment only after a manager has confirmed the booking"
                raise PolicyViolationError(msg, rule="manager_first")
            if self.mode is ConfirmationMode.ANY_ORDER:
                return Action.PREPAY
            if full:
                return Action.PAY_FULL
            deposit = due.percent(self.deposit_percent)
            return Action.DEPOSIT if total >= deposit else Action.PREPAY
        if status in {BookingStatus.NO_SHOW, BookingStatus.CANCELLED}:
            return Action.PAY_PARTIAL  # a fee paid
        return Action.PAY_FULL if full else Action.PAY_PARTIAL

    def repriced_action(self, status: BookingStatus, paid: Money, due: Money) -> Action | None:
        """
        Return the action a new price *due* makes of the *paid* a booking in *status* holds already, or None.

        What was paid counts as if it had been paid against the new price: a confirmed booking it now covers is
        paid in full, and under `ConfirmationMode.PAYMENT_CONFIRMS` a pre-booking with a payment on it is paid in
        full or confirmed by its deposit, as the same payment on a booking at that price would have made it.
        """
        status = status_of(status)
        paid, due = _money(paid, "paid"), _money(due, "due")
        if due.amount <= 0 or paid.amount <= 0:
            return None
        if status is BookingStatus.CONFIRMED:
            return Action.PAY_FULL if paid >= due else None
        if status is not BookingStatus.PRE_BOOKING or self.mode is not ConfirmationMode.PAYMENT_CONFIRMS:
            return None
        if paid >= due:
            return Action.PAY_FULL
        return Action.DEPOSIT if paid >= due.percent(self.deposit_percent) else None

    @staticmethod
    def confirm_action(paid: Money, due: Money) -> Action:
        """Return the action a manager's confirmation becomes: paid in full already, or not."""
        paid, due = _money(paid, "paid"), _money(due, "due")
        return Action.CONFIRM_PAID if paid >= due and due.amount > 0 else Action.CONFIRM


# --- cancellation --------------------------------------------------------------------------------------------


def _before(value: object) -> timedelta:
    return _timedelta(value, "before")


def _refund_percent(value: object) -> Decimal:
    return _percent(value, "refund_percent")


@attrs.frozen
class RefundTier:
    """Cancelled at least *before* ahead of the start (wall clock), the client gets *refund_percent* back."""

    before: timedelta = attrs.field(converter=_before)
    refund_percent: Decimal = attrs.field(converter=_refund_percent)


def _tiers(value: object) -> tuple[RefundTier, ...]:
    given = tuple_of(value, RefundTier, "tiers", label="refund tiers")
    tiers = tuple(sorted(given, key=lambda t: t.before, reverse=True))
    if len({t.before for t in tiers}) != len(tiers):
        msg = "two refund tiers start at the same time before the start"
        raise InvalidInputError(msg, field="tiers")
    return tiers


def _otherwise(value: object) -> Decimal:
    return _percent(value, "otherwise_percent")


def _fee(value: object) -> Decimal:
    return _percent(value, "no_show_fee_percent")


def _deadline(value: object) -> timedelta | None:
    return None if value is None else _timedelta(value, "deadline")


def _charge(value: object) -> bool:
    return _bool("charge_unpaid_penalty", value)


@attrs.frozen
class CancellationQuote:
    """
    What a cancellation costs, computed before it happens and recorded after it.

    ``penalty`` is what the cancellation costs the client (price × (100 − refund %)); ``refund`` is what
    goes back from what was paid; ``owed`` is the part of the penalty not covered by payments.
    """

    refund_percent: Decimal
    penalty: Money
    refund: Money
    owed: Money
    tier: RefundTier | None


@attrs.frozen
class CancellationPolicy:
    """
    Tiered refunds by how long before the start a client cancels, a client deadline, and a no-show fee.

    Example: ``CancellationPolicy(tiers=[RefundTier(48h, 100), RefundTier(24h, 50)], otherwise_percent=0)``
    gives a full refund more than 48 hours ahead, half between 24 and 48 hours, nothing later. With tiers,
    ``otherwise_percent`` (what a cancellation later than every tier refunds) must be given: it used to default
    to 100, which refunded a last-minute cancellation in full. Without tiers it defaults to 100 (free
    cancellation). Cancellations by the business always refund everything.
    """

    tiers: tuple[RefundTier, ...] = attrs.field(default=(), converter=_tiers)
    otherwise_percent: Decimal = attrs.field(converter=_otherwise)
    deadline: timedelta | None = attrs.field(default=None, converter=_deadline)
    no_show_fee_percent: Decimal = attrs.field(default=Decimal(0), converter=_fee)
    charge_unpaid_penalty: bool = attrs.field(default=False, converter=_charge)

    @otherwise_percent.default
    def _free_without_tiers(self) -> Decimal:
        if self.tiers:
            msg = (
                "a cancellation policy with refund tiers must say otherwise_percent: what a cancellation later "
                "than every tier refunds (0 for nothing; in a business file, otherwise_refund_percent)"
            )
            raise InvalidInputError(msg, field="otherwise_percent")
        return _HUNDRED

    def quote(
        self, *, price: Money, paid: Money, start: datetime, now: datetime, zone: ZoneInfo, by_business: bool
    ) -> CancellationQuote:
        """
        Return what cancelling now would cost, without changing anything.

        Raises:
            PolicyViolationError: a client cancels after the deadline, or once the booking has begun.
            InvalidInputError: a naive *start* or *now*, a *zone* that is not one, amounts that are not `Money`,
                or *by_business* not a bool.
        """
        now, start, zone = to_utc(now, "now"), to_utc(start, "start"), get_zone(zone)
        price, paid = _money(price, "price"), _money(paid, "paid")
        by_business = _bool("by_business", by_business)
        if by_business:
            return CancellationQuote(_HUNDRED, Money.zero(price.currency), paid, Money.zero(price.currency), None)
        if now >= start:
            msg = (
                f"the booking began at {start.astimezone(zone).isoformat()}: it can no longer be cancelled on the "
                "client's terms; mark it completed or a no-show, or cancel it on the business's terms"
            )
            raise PolicyViolationError(msg, rule="cancellation_started", start=start)
        if self.deadline is not None:
            deadline = wall_clock_before(start, self.deadline, zone)
            if now > deadline:
                msg = (
                    f"cancellations are accepted until {deadline.astimezone(zone).isoformat()} "
                    f"({self.deadline} before the start)"
                )
                raise PolicyViolationError(msg, rule="cancellation_deadline", deadline=deadline)
        tier = next((t for t in self.tiers if now <= wall_clock_before(start, t.before, zone)), None)
        percent = tier.refund_percent if tier is not None else self.otherwise_percent
        penalty = price - price.percent(percent)
        refund = paid - penalty if paid > penalty else Money.zero(price.currency)
        owed = penalty - paid if penalty > paid else Money.zero(price.currency)
        return CancellationQuote(percent, penalty, refund, owed, tier)

    def no_show_fee(self, price: Money) -> Money:
        """Return the fee a no-show owes."""
        return _money(price, "price").percent(self.no_show_fee_percent)


# --- rescheduling and attendance -----------------------------------------------------------------------------


MAX_RESCHEDULES: Final = 1_000_000
"""The largest ``max_times`` a reschedule policy takes (None is the way to say "no limit"): a number every
storage keeps, where an unbounded one could not even be written as JSON."""


def _max_times(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RESCHEDULES:
        msg = (
            f"max_times must be a whole number from 0 to {MAX_RESCHEDULES:,}, or None for no limit, "
            f"got {shown(value)}"
        )
        raise InvalidInputError(msg, field="max_times")
    return value


@attrs.frozen
class ReschedulePolicy:
    """Rescheduling is allowed until *deadline* before the start (wall clock), at most *max_times* times."""

    deadline: timedelta | None = attrs.field(default=None, converter=_deadline)
    max_times: int | None = attrs.field(default=None, converter=_max_times)

    def check(self, *, start: datetime, now: datetime, zone: ZoneInfo, times_so_far: int) -> None:
        """
        Raise if a reschedule is not allowed now.

        Raises:
            PolicyViolationError: the deadline passed or the limit is reached.
        """
        start, zone = to_utc(start, "start"), get_zone(zone)
        if isinstance(times_so_far, bool) or not isinstance(times_so_far, int) or times_so_far < 0:
            msg = f"times_so_far must be a whole number of at least 0, got {times_so_far!r}"
            raise InvalidInputError(msg, field="times_so_far")
        if self.max_times is not None and times_so_far >= self.max_times:
            msg = f"this booking was already moved {times_so_far} times; at most {self.max_times} are allowed"
            raise PolicyViolationError(msg, rule="reschedule_limit")
        if self.deadline is not None:
            deadline = wall_clock_before(start, self.deadline, zone)
            if to_utc(now, "now") > deadline:
                msg = f"bookings can be moved until {deadline.astimezone(zone).isoformat()}"
                raise PolicyViolationError(msg, rule="reschedule_deadline", deadline=deadline)


def _grace(value: object) -> timedelta:
    return _timedelta(value, "grace")


@attrs.frozen
class NoShowPolicy:
    """A booking not checked in by *grace* after its start may be marked a no-show."""

    grace: timedelta = attrs.field(default=timedelta(minutes=15), converter=_grace)

    def check(self, *, start: datetime, now: datetime, checked_in: bool, zone: ZoneInfo | str = "UTC") -> None:
        """
        Raise unless the booking may be marked a no-show now (a refusal says when, in *zone*).

        Raises:
            PolicyViolationError: the client checked in, or the grace period has not passed.
        """
        start, now, local = to_utc(start, "start"), to_utc(now, "now"), get_zone(zone)
        if _bool("checked_in", checked_in):
            msg = "the client checked in, so this is not a no-show"
            raise PolicyViolationError(msg, rule="checked_in")
        deadline = start + self.grace
        if to_utc(now, "now") < deadline:
            msg = (
                f"a no-show can be marked from {deadline.astimezone(local):%Y-%m-%d %H:%M} {local.key} "
                f"({spoken(self.grace)} after the start)"
            )
            raise PolicyViolationError(msg, rule="no_show_grace", deadline=deadline)


def _hold_policy(value: object) -> HoldPolicy:
    return _instance(value, HoldPolicy, "hold")


def _confirmation_policy(value: object) -> ConfirmationPolicy:
    return _instance(value, ConfirmationPolicy, "confirmation")


def _cancellation_policy(value: object) -> CancellationPolicy:
    return _instance(value, CancellationPolicy, "cancellation")


def _reschedule_policy(value: object) -> ReschedulePolicy:
    return _instance(value, ReschedulePolicy, "reschedule")


def _no_show_policy(value: object) -> NoShowPolicy:
    return _instance(value, NoShowPolicy, "no_show")


def _allow_override(value: object) -> bool:
    return _bool("allow_override", value)


def _money(value: object, field: str) -> Money:
    if not isinstance(value, Money):
        msg = f"{field} must be Money, such as Money('25.00', 'EUR'), not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _instance(value: object, cls: type[_T], field: str) -> _T:
    if not isinstance(value, cls):
        msg = f"{field} must be a {cls.__name__}, not {type(value).__name__}"
        raise InvalidInputError(msg, field=field)
    return value


@attrs.frozen
class Policies:
    """All the rules of a business in one value; a booking keeps the copy in force when it was made."""

    hold: HoldPolicy = attrs.field(factory=HoldPolicy, converter=_hold_policy)
    confirmation: ConfirmationPolicy = attrs.field(factory=ConfirmationPolicy, converter=_confirmation_policy)
    cancellation: CancellationPolicy = attrs.field(factory=CancellationPolicy, converter=_cancellation_policy)
    reschedule: ReschedulePolicy = attrs.field(factory=ReschedulePolicy, converter=_reschedule_policy)
    no_show: NoShowPolicy = attrs.field(factory=NoShowPolicy, converter=_no_show_policy)
    allow_override: bool = attrs.field(default=False, converter=_allow_override)
    """Whether managers may book outside the offered times (never beyond capacity)."""
