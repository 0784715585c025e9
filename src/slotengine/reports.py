"""
Reports: utilization, revenue, cancellations and no-shows, the conversion funnel, and per-occurrence finance.

Every report here is a pure function over values: bookings, resources, schedules and transition records in,
frozen rows out. None reads a clock or a storage; the ``*_report(engine, ...)`` helpers at the end are the
only functions that touch a `BookingEngine`, and they only call its public read methods.

The rules, so that nobody has to guess them:

**Periods.** A report is cut into local calendar periods of one zone (`periods`): days, ISO weeks (Monday to
Sunday) or months, each from its first local midnight to the midnight after its last day, resolved by the
wall-time rule of `slotengine.localize`. A Moscow day is not a UTC day, and a Paris day lasts 23 or 25 hours
when the clocks change. The first and last periods are cut to the report's window, so periods never reach
outside it and their figures add up to the window's.

**Time is split, events are not.** Time measures (utilization) are split between periods proportionally by
time: a booking from 22:00 to 02:00 puts two hours in each day. Everything that happens once (money, counts,
lead times) belongs to one period: the period of the booking's **start** (its current start, after any
reschedule). The funnel is the one exception: it follows cohorts, so a booking belongs to the period in which
it was **created**.

**Which bookings are booked time.** `BOOKED_STATUSES`: confirmed, paid, completed and no-show. A no-show's
time was reserved and nobody else could use it, so it counts as booked. Pre-bookings do not count (they are
requests that may lapse), nor do cancelled or expired bookings (their time was freed). Buffers do not count
either, unless ``include_buffers=True``: utilization measures the service the resource rendered, not its
turnover.

**Utilization** = booked capacity-time ÷ available capacity-time, computed with the interval algebra, never by
counting bookings. Available capacity-time is the resource's working time in the period (`effective_hours`:
its own or the business's hours, minus time off and company holidays) times its capacity. Booked
capacity-time is the integral, over that working time only, of the load of booked bookings on the resource
(each contributes its units while it runs; a `CapacityProfile`). A booking outside working hours (an
override) adds nothing. A resource with `UNLIMITED` capacity has no finite available time: its row reports
booked time and ``None`` for ``available`` and ``utilization``. A type's row sums its resources:
Σ booked ÷ Σ available, and is ``None`` if any of them is unlimited. Overbooking (an override) can push a
figure above 1; it is reported as it is.

**Money** comes from each booking's ledger (`Booking.payments`), in each currency separately: an `Amounts`
value maps a currency to `Money` and never adds two currencies together. Revenue is paid minus refunded
(``net``); fees charged (no-show and late-cancellation penalties the client owes) are reported beside it,
because a fee is a claim, not cash: when the client pays it, that payment is in ``paid``. All of a booking's
money belongs to the period of its start, whatever its status (a kept deposit of a cancelled booking is
revenue). Per service and per source a booking's money goes whole to its service and source; **per resource**
it is split with `split_evenly` among the booking's distinct resources, in the order of `Booking.resource_ids`
(the service's needs in order): equal parts in the currency's minor unit, the remainder one minor unit each to
the first resources, so the parts always add up exactly to the whole. The booking's **totals** are split, once,
never its ledger entries one by one (two payments of 50.01 on a car and a driver are 50.01 each, not 50.02 and
50.00): its net (paid minus refunded), its fees and its fees outstanding are each split so; so is the larger of
paid and refunded, and the smaller takes what leaves each resource's paid minus refunded equal to its part of
the net. A resource's net in the revenue report is therefore its part of what was kept in the cancellation
report, and every figure's parts differ by at most one minor unit.

**Cancellations and no-shows** count every booking that starts in the period except expired holds.
The cancellation rate is cancelled ÷ bookings; the no-show rate is no-shows ÷ (no-shows + completed), the
share of bookings with a known outcome whose client never came. A cancellation's lead time runs from its
CANCEL step in the transition log to the booking's start. What was kept is paid minus refunded of cancelled
and no-show bookings.

**The funnel** counts a booking for every stage up to the furthest one its log (or its status) shows, so
each stage holds at most as many bookings as the one before; where it went no further, its status says how
it ended (expired, cancelled, no-show, or still pending).

Pre-bookings never count as booked time, so no report needs a ``now``.
"""

from __future__ import annotations

import csv
import enum
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import TYPE_CHECKING, Final, Protocol, TextIO, TypeVar, cast

import attrs

from slotengine._time import check_day_range, days_span, get_zone, to_utc
from slotengine.authorization import Actor, Role
from slotengine.booking import Booking, PaymentKind
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.intervals import CapacityProfile, Interval, IntervalSet
from slotengine.lifecycle import LIVE_STATUSES, Action, BookingStatus, TransitionRecord, status_of
from slotengine.model import Resource
from slotengine.money import Money, from_minor_units, minor_units
from slotengine.schedule import Schedule, effective_hours

if TYPE_CHECKING:
    from slotengine.engine import BookingEngine

__all__ = [
    "BOOKED_STATUSES",
    "FUNNEL_STAGES",
    "TOTAL",
    "Amounts",
    "Cancellations",
    "Dimension",
    "Funnel",
    "FunnelStage",
    "Grain",
    "OccurrenceFinance",
    "Period",
    "Revenue",
    "Utilization",
    "cancellation_report",
    "cancellations",
    "funnel",
    "funnel_report",
    "occurrence_finance",
    "occurrence_report",
    "periods",
    "revenue",
    "revenue_report",
    "split_evenly",
    "to_csv",
    "utilization",
    "utilization_report",
]

_S = BookingStatus
_T = TypeVar("_T")
_ONE_DAY: Final = timedelta(days=1)
_ZERO: Final = timedelta(0)
_HOUR: Final = timedelta(hours=1)

BOOKED_STATUSES: Final = frozenset({_S.CONFIRMED, _S.PAID, _S.COMPLETED, _S.NO_SHOW})
"""Statuses whose bookings are booked time and sold tickets: confirmed, paid, completed, no-show."""

FUNNEL_STAGES: Final = (_S.PRE_BOOKING, _S.CONFIRMED, _S.PAID, _S.COMPLETED)
"""The funnel's stages in order, the seeds' Предбронь → Подтверждено → Оплачено → Завершено."""

TOTAL: Final = "all"
"""The key of the rows of the `Dimension.TOTAL` dimension."""


class Grain(enum.StrEnum):
    """How long a report's periods are: a local day, an ISO week (Monday to Sunday), or a calendar month."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Dimension(enum.StrEnum):
    """What a report row is about: everything, one resource, one resource type, one service, or one source."""

    TOTAL = "total"
    RESOURCE = "resource"
    TYPE = "type"
    SERVICE = "service"
    SOURCE = "source"


# --- values ---------------------------------------------------------------------------------------------------


def _grain(value: object) -> Grain:
    try:
        return Grain(str(value))
    except ValueError:
        msg = f"a period's grain is 'day', 'week' or 'month', not {value!r}"
        raise InvalidInputError(msg, field="grain") from None


def _day(value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        msg = f"a period is made of calendar dates (datetime.date), not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="day")
    return check_day_range(value)


def _zone_key(value: object) -> str:
    return get_zone(value).key


@attrs.frozen(repr=False)
class Period:
    """
    A run of whole local days, ``first_day`` to ``last_day`` inclusive, in one zone: a report's column.

    ``start`` and ``end`` are the UTC instants of its first local midnight and of the midnight after its last
    day, so a day lasts 23 or 25 hours when the clocks change. ``label`` names it: ``2026-03-29`` for a day,
    ``2026-W13`` for an ISO week, ``2026-03`` for a month (a period cut by a report's window keeps the label
    of the week or month it belongs to).

    Raises:
        InvalidInputError: a bound is not a `date`, ``last_day`` comes before ``first_day``, or the grain is
            unknown.
        UnknownTimeZoneError: the zone is not a known IANA zone.
    """

    grain: Grain = attrs.field(converter=_grain)
    first_day: date = attrs.field(converter=_day)
    last_day: date = attrs.field(converter=_day)
    zone: str = attrs.field(converter=_zone_key)
    start: datetime = attrs.field(init=False)
    end: datetime = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.last_day < self.first_day:
            msg = f"a period cannot end ({self.last_day}) before it starts ({self.first_day})"
            raise InvalidInputError(msg, field="last_day")
        start, end = days_span(self.first_day, (self.last_day - self.first_day).days + 1, get_zone(self.zone))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def interval(self) -> Interval:
        """The period as an interval of instants ``[start, end)``."""
        return Interval(self.start, self.end)

    @property
    def label(self) -> str:
        """A name for people and spreadsheets: ``2026-03-29``, ``2026-W13`` or ``2026-03``."""
        if self.grain is Grain.DAY:
            return self.first_day.isoformat()
        if self.grain is Grain.WEEK:
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day.year}-{self.first_day.month:02d}"

    def contains(self, instant: datetime) -> bool:
        """
        Return whether *instant* lies in ``[start, end)``.

        Raises:
            NaiveDatetimeError: *instant* has no time zone (a wall time is not an instant).
            InvalidInputError: *instant* is not a `datetime`.
            OutOfRangeError: *instant* is before 1970 or after 2200.
        """
        return self.start <= to_utc(instant, "instant") < self.end

    def to_dict(self) -> dict[str, object]:
        """Return the period as JSON-ready values."""
        return {
            "label": self.label,
            "grain": self.grain.value,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "zone": self.zone,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }

    def __repr__(self) -> str:
        return f"Period({self.label!r}, {self.first_day}..{self.last_day}, {self.zone!r})"


def periods(first_day: date, last_day: date, zone: str, grain: Grain | str = Grain.DAY) -> list[Period]:
    """
    Return the local periods that cover the days *first_day* to *last_day* (both included) in *zone*, in order.

    Weeks run Monday to Sunday and months are calendar months; the first and the last period are cut to the
    window, so the periods tile it exactly: no gap, no overlap, nothing outside.

    Raises:
        InvalidInputError: a bound is not a `date`, *last_day* is before *first_day*, or *grain* is unknown.
        UnknownTimeZoneError: *zone* is not a known IANA zone.
    """
    kind, first, last = _grain(grain), _day(first_day), _day(last_day)
    if last < first:
        msg = f"a report's window cannot end ({last}) before it starts ({first})"
        raise InvalidInputError(msg, field="last_day")
    out: list[Period] = []
    day = first
    while day <= last:
        if kind is Grain.DAY:
            end = day
        elif kind is Grain.WEEK:
            end = day + (6 - day.weekday()) * _ONE_DAY
        else:
            next_month = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            end = next_month - _ONE_DAY
        end = min(end, last)
        out.append(Period(kind, day, end, zone))
        day = end + _ONE_DAY
    return out


class Amounts(Mapping[str, Money]):
    """
    Money per currency: an immutable mapping from an ISO 4217 code to `Money`, never summed across currencies.

    Build it from any number of `Money` values (amounts of one currency are added up); add or subtract two
    `Amounts` currency by currency. A currency that appeared stays, even at zero. It compares equal to a plain
    ``dict`` with the same entries.
    """

    __slots__ = ("_items",)

    _items: dict[str, Money]

    def __init__(self, amounts: Iterable[Money] = ()) -> None:
        items: dict[str, Money] = {}
        for money in _all_of(amounts, Money, "Amounts holds Money values", "amounts"):
            held = items.get(money.currency)
            items[money.currency] = money if held is None else held + money
        self._items = dict(sorted(items.items()))

    def __getitem__(self, currency: str) -> Money:
        return self._items[currency]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __add__(self, other: Amounts) -> Amounts:
        if not isinstance(other, Amounts):
            return NotImplemented
        return Amounts([*self._items.values(), *other._items.values()])

    def __sub__(self, other: Amounts) -> Amounts:
        if not isinstance(other, Amounts):
            return NotImplemented
        return Amounts([*self._items.values(), *(-m for m in other._items.values())])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Amounts):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._items.values()))

    def to_dict(self) -> dict[str, str]:
        """Return ``{currency: amount}`` with amounts as exact decimal strings (JSON-ready)."""
        return {currency: str(money.amount) for currency, money in self._items.items()}

    def __repr__(self) -> str:
        return f"Amounts({', '.join(str(m) for m in self._items.values())})"


_MAX_PARTS: Final = 100_000
"""The most shares `split_evenly` makes (one `Money` each: a number of parts without bound exhausts memory)."""


def split_evenly(amount: Money, parts: int) -> tuple[Money, ...]:
    """
    Split *amount* into *parts* shares that differ by at most one minor unit and add up to it exactly.

    The rule: every share gets the whole number of minor units (cents) that divides evenly, and the remainder
    goes one minor unit each to the first shares. A negative amount is split as its opposite and negated.
    ``split_evenly(Money("100.00", "EUR"), 3)`` is 33.34, 33.33, 33.33.

    Raises:
        InvalidInputError: *amount* is not `Money`, or *parts* is not a whole number from 1 to 100,000.
    """
    if not isinstance(cast("object", amount), Money):
        msg = f"split_evenly splits Money, not {type(amount).__name__} {amount!r}"
        raise InvalidInputError(msg, field="amount")
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= _MAX_PARTS:
        msg = f"money is split into a whole number of parts, from 1 to {_MAX_PARTS:,}, got {parts!r}"
        raise InvalidInputError(msg, field="parts")
    minor = minor_units(amount)  # exact, whatever the caller's decimal context
    sign = -1 if minor < 0 else 1
    share, extra = divmod(abs(minor), parts)
    return tuple(from_minor_units(sign * (share + (1 if i < extra else 0)), amount.currency) for i in range(parts))


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else value / _HOUR


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _ratio(part: int | timedelta, whole: int | timedelta | None) -> Fraction | None:
    if whole is None or not whole:
        return None
    if isinstance(part, timedelta) and isinstance(whole, timedelta):
        return Fraction(part // timedelta(microseconds=1), whole // timedelta(microseconds=1))
    assert isinstance(part, int)  # noqa: S101 - both counts or both durations, by construction
    assert isinstance(whole, int)  # noqa: S101
    return Fraction(part, whole)


def _median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value, or the mean of the middle two (to the microsecond, half to even), or None."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return _mean(ordered[middle - 1 : middle + 1])


def _mean(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    total = sum(values, _ZERO) // timedelta(microseconds=1)
    return timedelta(microseconds=round(Fraction(total, len(values))))


def _head(period: Period, dimension: Dimension, key: str) -> dict[str, object]:
    return {"period": period.label, "grain": period.grain.value, "dimension": dimension.value, "key": key}


def _flat(prefix: str, amounts: Amounts) -> dict[str, object]:
    return {f"{prefix}_{currency}": value for currency, value in amounts.to_dict().items()}


def _money_fields(**amounts: Amounts) -> dict[str, object]:
    return {name: value.to_dict() for name, value in amounts.items()}


@attrs.frozen
class Utilization:
    """
    How much of a resource's (or a resource type's) capacity-time was booked in one period.

    ``open_time`` is working time (hours open, summed over a type's resources); ``available`` is working time
    times capacity, ``None`` for unlimited capacity; ``booked`` is booked capacity-time within working time.
    ``capacity`` is the resource's capacity, or the sum of a type's (``None`` if unlimited).
    """

    period: Period
    dimension: Dimension
    key: str
    resources: int
    capacity: int | None
    open_time: timedelta
    available: timedelta | None
    booked: timedelta

    @property
    def utilization(self) -> Fraction | None:
        """``booked / available`` exactly; ``None`` for unlimited capacity or when nothing was open."""
        return _ratio(self.booked, self.available)

    def to_row(self) -> dict[str, object]:
        """Return a flat row of JSON-ready scalars (durations in hours, the ratio as a float)."""
        return {
            **_head(self.period, self.dimension, self.key),
            "resources": self.resources,
            "capacity": self.capacity,
            "open_hours": _hours(self.open_time),
            "available_hours": _hours(self.available),
            "booked_hours": _hours(self.booked),
            "utilization": _float(self.utilization),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the row as JSON-ready values, with the period in full."""
        return {**self.to_row(), "period": self.period.to_dict()}


@attrs.frozen
class Revenue:
    """
    The money of the bookings that start in one period, for one key of a dimension, per currency.

    ``bookings`` counts the bookings with at least one ledger entry. ``fees`` are the fees charged (owed by
    the client); a fee the client paid is in ``paid`` too.
    """

    period: Period
    dimension: Dimension
    key: str
    bookings: int
    paid: Amounts
    refunded: Amounts
    fees: Amounts

    @property
    def net(self) -> Amounts:
        """Paid minus refunded: the revenue."""
        return self.paid - self.refunded

    def to_row(self) -> dict[str, object]:
        """Return a flat row: amounts as exact decimal strings in columns such as ``net_EUR``."""
        return {
            **_head(self.period, self.dimension, self.key),
            "bookings": self.bookings,
            **_flat("paid", self.paid),
            **_flat("refunded", self.refunded),
            **_flat("net", self.net),
            **_flat("fees", self.fees),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the row as JSON-ready values: the period in full, amounts as ``{currency: "12.50"}``."""
        return {
            **_head(self.period, self.dimension, self.key),
            "period": self.period.to_dict(),
            "bookings": self.bookings,
            **_money_fields(paid=self.paid, refunded=self.refunded, net=self.net, fees=self.fees),
        }


@attrs.frozen
class Cancellations:
    """
    Cancellations and no-shows among the bookings that start in one period, for one key of a dimension.

    ``bookings`` counts every booking that starts in the period except expired holds (a hold that lapsed was
    never a booking); ``cancelled`` counts those cancelled (pre-bookings included), ``no_shows`` and
    ``completed`` the others with a known outcome. ``lead_times`` are, for each cancellation with a recorded
    CANCEL step, the time from that step's ``at`` to the booking's start (negative if cancelled after the
    start), sorted. ``kept`` is what the business kept of cancelled and no-show bookings (paid minus refunded,
    fees paid included), ``fees`` the fees charged on them and ``fees_outstanding`` the part not yet paid.
    """

    period: Period
    dimension: Dimension
    key: str
    bookings: int
    cancelled: int
    no_shows: int
    completed: int
    lead_times: tuple[timedelta, ...]
    kept: Amounts
    fees: Amounts
    fees_outstanding: Amounts

    @property
    def cancellation_rate(self) -> Fraction | None:
        """``cancelled / bookings``, or ``None`` without bookings."""
        return _ratio(self.cancelled, self.bookings)

    @property
    def no_show_rate(self) -> Fraction | None:
        """``no_shows / (no_shows + completed)``: of the bookings whose outcome is known, how many never came."""
        return _ratio(self.no_shows, self.no_shows + self.completed)

    @property
    def lead_time_median(self) -> timedelta | None:
        """The median cancellation lead time (the mean of the middle two for an even count), or ``None``."""
        return _median(self.lead_times)

    @property
    def lead_time_mean(self) -> timedelta | None:
        """The mean cancellation lead time, to the microsecond, or ``None``."""
        return _mean(self.lead_times)

    def to_row(self) -> dict[str, object]:
        """Return a flat row of JSON-ready scalars (lead times in hours, rates as floats, amounts as strings)."""
        return {
            **_head(self.period, self.dimension, self.key),
            "bookings": self.bookings,
            "cancelled": self.cancelled,
            "no_shows": self.no_shows,
            "completed": self.completed,
            "cancellation_rate": _float(self.cancellation_rate),
            "no_show_rate": _float(self.no_show_rate),
            "lead_time_median_hours": _hours(self.lead_time_median),
            "lead_time_mean_hours": _hours(self.lead_time_mean),
            **_flat("kept", self.kept),
            **_flat("fees", self.fees),
            **_flat("fees_outstanding", self.fees_outstanding),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the row as JSON-ready values, with the period, the lead times and the amounts in full."""
        return {
            **{k: v for k, v in self.to_row().items() if not k.startswith(("kept_", "fees_"))},
            "period": self.period.to_dict(),
            "lead_times_hours": [_hours(t) for t in self.lead_times],
            **_money_fields(kept=self.kept, fees=self.fees, fees_outstanding=self.fees_outstanding),
        }


@attrs.frozen
class FunnelStage:
    """
    One stage of the funnel: how many bookings reached it, and how the ones that went no further ended.

    ``expired + cancelled + no_show + pending`` is the drop-off: the bookings that reached this stage and not
    the next; ``pending`` are still live there. The last stage (completed) drops nobody.
    """

    status: BookingStatus
    reached: int
    expired: int = 0
    cancelled: int = 0
    no_show: int = 0
    pending: int = 0

    @property
    def dropped(self) -> int:
        """The bookings that reached this stage and not the next."""
        return self.expired + self.cancelled + self.no_show + self.pending


@attrs.frozen
class Funnel:
    """
    The conversion funnel of the bookings created in one period, for one key of a dimension (usually a source).

    ``stages`` follow `FUNNEL_STAGES`. A booking counts for a stage if the transition log (or its status)
    shows it reached that stage **or a later one**, so each stage holds at most as many as the one before: a
    booking made confirmed at once passes the pre-booking stage, and one completed without being marked paid
    (paid on site) passes the paid stage. ``times_to_payment`` are, for bookings that were pre-bookings and
    became paid, the times from creation to their first step into PAID, sorted.
    """

    period: Period
    dimension: Dimension
    key: str
    stages: tuple[FunnelStage, ...]
    times_to_payment: tuple[timedelta, ...]

    def stage(self, status: BookingStatus) -> FunnelStage:
        """
        Return the stage of *status*.

        Raises:
            InvalidInputError: *status* is not one of `FUNNEL_STAGES`.
        """
        try:
            wanted = status_of(status)
        except InvalidInputError:
            wanted = None  # refused below, naming the stages
        for stage in self.stages:
            if stage.status is wanted:
                return stage
        msg = f"the funnel's stages are {', '.join(s.value for s in FUNNEL_STAGES)}, not {status}"
        raise InvalidInputError(msg, field="status")

    @property
    def conversion(self) -> Fraction | None:
        """Paid ÷ pre-booking: the seeds' конверсия предбронь → оплата; ``None`` for an empty funnel."""
        return _ratio(self.stage(_S.PAID).reached, self.stage(_S.PRE_BOOKING).reached)

    @property
    def median_time_to_payment(self) -> timedelta | None:
        """The median time from pre-booking to payment, or ``None`` if nobody paid."""
        return _median(self.times_to_payment)

    def to_row(self) -> dict[str, object]:
        """
        Return a flat row of JSON-ready scalars.

        Columns: ``<stage>_reached`` for every stage; ``<stage>_dropped`` and ``<stage>_<ending>`` (expired,
        cancelled, no_show, pending) for every stage but the last; ``conversion``; ``median_hours_to_payment``.
        """
        row: dict[str, object] = _head(self.period, self.dimension, self.key)
        for stage in self.stages:
            name = stage.status.value
            row[f"{name}_reached"] = stage.reached
            if stage.status is FUNNEL_STAGES[-1]:
                break  # the last stage drops nobody
            row[f"{name}_dropped"] = stage.dropped
            for ending in ("expired", "cancelled", "no_show", "pending"):
                row[f"{name}_{ending}"] = getattr(stage, ending)
        row["conversion"] = _float(self.conversion)
        row["median_hours_to_payment"] = _hours(self.median_time_to_payment)
        return row

    def to_dict(self) -> dict[str, object]:
        """Return the funnel as JSON-ready values, stage by stage."""
        return {
            **_head(self.period, self.dimension, self.key),
            "period": self.period.to_dict(),
            "stages": [{**attrs.asdict(s), "status": s.status.value, "dropped": s.dropped} for s in self.stages],
            "conversion": _float(self.conversion),
            "hours_to_payment": [_hours(t) for t in self.times_to_payment],
        }


@attrs.frozen
class OccurrenceFinance:
    """
    The month-end figures of one occurrence (one event held on one date; the seeds' финансовый отчёт).

    ``start`` is the earliest start among its bookings, which says when it was held. ``tickets_sold`` counts
    the tickets of booked bookings (`BOOKED_STATUSES`: a no-show's ticket was sold), ``tickets_cancelled``
    those of cancelled bookings, ``tickets_refunded`` those of bookings with any refund in their ledger.
    ``capacity`` is the seats offered, if known; money is per currency, as in `Revenue`.
    """

    key: str
    month: str
    start: datetime
    bookings: int
    tickets_sold: int
    tickets_cancelled: int
    tickets_refunded: int
    capacity: int | None
    paid: Amounts
    refunded: Amounts
    fees: Amounts

    @property
    def net(self) -> Amounts:
        """Paid minus refunded: the occurrence's revenue."""
        return self.paid - self.refunded

    @property
    def fill_rate(self) -> Fraction | None:
        """``tickets_sold / capacity``, or ``None`` when the capacity is unknown or zero."""
        return _ratio(self.tickets_sold, self.capacity)

    def to_row(self) -> dict[str, object]:
        """Return a flat row of JSON-ready scalars (amounts in columns such as ``net_EUR``)."""
        return {
            "month": self.month,
            "key": self.key,
            "start": self.start.isoformat(),
            "bookings": self.bookings,
            "tickets_sold": self.tickets_sold,
            "tickets_cancelled": self.tickets_cancelled,
            "tickets_refunded": self.tickets_refunded,
            "capacity": self.capacity,
            "fill_rate": _float(self.fill_rate),
            **_flat("paid", self.paid),
            **_flat("refunded", self.refunded),
            **_flat("net", self.net),
            **_flat("fees", self.fees),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the row as JSON-ready values, amounts as ``{currency: "12.50"}``."""
        row = {k: v for k, v in self.to_row().items() if not k.startswith(("paid_", "refunded_", "net_", "fees_"))}
        return {**row, **_money_fields(paid=self.paid, refunded=self.refunded, net=self.net, fees=self.fees)}


class _Row(Protocol):
    def to_row(self) -> dict[str, object]: ...


def to_csv(rows: Iterable[_Row], stream: TextIO) -> int:
    """
    Write report rows to *stream* as CSV (stdlib `csv`), with a header, and return how many rows were written.

    The columns are every key of every row's `to_row`, in the order first seen (so each currency of a revenue
    report gets its own ``net_<currency>`` column); a row without a column leaves it empty.

    Raises:
        InvalidInputError: *rows* is not a collection of report rows (values with a ``to_row()`` method, such as
            `Revenue`), or *stream* has no ``write`` method. Nothing was written.
    """
    flat: list[dict[str, object]] = []
    for row in _collection(rows, "rows", "report rows"):
        to_row = getattr(row, "to_row", None)
        values = to_row() if callable(to_row) else None
        if not isinstance(values, dict):
            msg = f"to_csv writes report rows (such as Revenue or Utilization values), not {type(row).__name__} {row!r}"
            raise InvalidInputError(msg, field="rows")
        flat.append(values)
    if not callable(getattr(stream, "write", None)):
        msg = f"to_csv writes to a text stream (an open file or io.StringIO), not {type(stream).__name__} {stream!r}"
        raise InvalidInputError(msg, field="stream")
    columns: dict[str, None] = {}
    for row in flat:
        columns.update(dict.fromkeys(row))
    writer = csv.DictWriter(stream, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return len(flat)


# --- shared machinery ------------------------------------------------------------------------------------------


def _check_periods(value: Iterable[Period]) -> tuple[Period, ...]:
    out = tuple(_all_of(value, Period, "reports are cut into Period values (see periods())", "periods"))
    for before, after in pairwise(out):
        if after.start < before.end:
            msg = f"periods must be in time order and must not overlap: {before!r} then {after!r}"
            raise InvalidInputError(msg, field="periods")
    return out


class _Finder:
    """Finds the period an instant falls in (periods sorted and disjoint), by bisection."""

    def __init__(self, periods: tuple[Period, ...]) -> None:
        self._periods = periods
        self._starts = [p.start for p in periods]

    def find(self, instant: datetime) -> int | None:
        i = bisect_right(self._starts, instant) - 1
        return i if i >= 0 and self._periods[i].contains(instant) else None


def _collection(value: object, field: str, what: str) -> Iterable[object]:
    """Return *value* if it is a collection of items (not text, which iterates as characters), else refuse it."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"{field} must be a collection of {what}, not {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _dimensions(value: Iterable[Dimension | str], allowed: Collection[Dimension]) -> tuple[Dimension, ...]:
    out: list[Dimension] = []
    for item in _collection(value, "dimensions", "dimension names"):
        try:
            dimension = Dimension(str(item))
        except ValueError:
            dimension = None
        if dimension is None or dimension not in allowed:
            names = ", ".join(d.value for d in allowed)
            msg = f"this report is broken down by {names}; not by {item!r}"
            raise InvalidInputError(msg, field="dimensions")
        if dimension not in out:
            out.append(dimension)
    return tuple(out)


def _distinct_resources(booking: Booking) -> tuple[str, ...]:
    return tuple(dict.fromkeys(booking.resource_ids))


def _keys(booking: Booking, dimension: Dimension) -> tuple[str, ...]:
    if dimension is Dimension.RESOURCE:
        return _distinct_resources(booking)
    if dimension is Dimension.SERVICE:
        return (booking.service_id,)
    if dimension is Dimension.SOURCE:
        return (booking.source,)
    return (TOTAL,)


def _ledger(booking: Booking, kind: PaymentKind) -> list[Money]:
    return [entry.amount for entry in booking.payments if entry.kind is kind]


@attrs.frozen
class _Share:
    """
    One key's part of a booking's money.

    ``paid``, ``refunded`` and ``fees`` hold one amount, or none when the booking's ledger has no entry of that
    kind (so that a currency shows up only where money of that kind moved). ``kept`` is paid minus refunded and
    ``outstanding`` the fees not yet paid; they are meaningful only for a booking with ledger entries.
    """

    paid: tuple[Money, ...]
    refunded: tuple[Money, ...]
    fees: tuple[Money, ...]
    kept: Money
    outstanding: Money


def _money_shares(booking: Booking, parts: int) -> list[_Share]:
    """
    Split a booking's money into *parts* shares: each of its totals once, never ledger entry by ledger entry.

    Splitting entry by entry gave every entry's remainder to the first resource: two payments of 50.01 split
    50.02 and 50.00. The rule: the net (paid minus refunded, what the business holds), the fees charged and the
    fees outstanding are each split with `split_evenly`; so is the larger of paid and refunded, and the smaller
    is what leaves each share's paid minus refunded equal to its share of the net. So revenue's net and the
    cancellation report's kept agree share by share, and every total's shares add up to it exactly and differ
    by at most one minor unit (two splits that give their remainders to the first shares differ, share by share,
    by amounts that themselves differ by at most one unit).
    """
    net = booking.net_paid
    nets = split_evenly(net, parts)
    if net.amount >= 0:
        paid = split_evenly(booking.paid, parts)
        refunded = tuple(p - n for p, n in zip(paid, nets, strict=True))
    else:
        refunded = split_evenly(booking.refunded, parts)
        paid = tuple(r + n for r, n in zip(refunded, nets, strict=True))
    fees = split_evenly(booking.fees, parts)
    outstanding = split_evenly(booking.outstanding_fees, parts)
    kinds = {entry.kind for entry in booking.payments}

    def moved(shares: tuple[Money, ...], kind: PaymentKind, i: int) -> tuple[Money, ...]:
        return (shares[i],) if kind in kinds else ()

    return [
        _Share(
            moved(paid, PaymentKind.PAYMENT, i),
            moved(refunded, PaymentKind.REFUND, i),
            moved(fees, PaymentKind.FEE, i),
            nets[i],
            outstanding[i],
        )
        for i in range(parts)
    ]


def _attributed(booking: Booking, dimension: Dimension) -> list[tuple[str, _Share]]:
    """The keys a booking counts for in *dimension*, each with its part of the booking's money (see `_Share`)."""
    keys = _keys(booking, dimension)
    return list(zip(keys, _money_shares(booking, len(keys)), strict=True))


def _by_booking(transitions: Iterable[TransitionRecord]) -> dict[str, list[TransitionRecord]]:
    log: dict[str, list[TransitionRecord]] = defaultdict(list)
    for record in _all_of(transitions, TransitionRecord, "transitions are TransitionRecord values", "transitions"):
        log[record.booking_id].append(record)
    return log


def _all_of(values: Iterable[object], kind: type[_T], what: str, field: str) -> list[_T]:
    """Return *values* as a list, refusing anything that is not a *kind* (a report never guesses)."""
    out: list[_T] = []
    for value in _collection(values, field, f"{kind.__name__} values"):
        if not isinstance(value, kind):
            msg = f"{what}, not {type(value).__name__} {value!r}"
            raise InvalidInputError(msg, field=field)
        out.append(value)
    return out


def _check_bookings(bookings: Iterable[Booking]) -> list[Booking]:
    return _all_of(bookings, Booking, "reports read Booking values", "bookings")


def _statuses(value: Iterable[BookingStatus | str]) -> frozenset[BookingStatus]:
    known = {s.value: s for s in BookingStatus}
    out: set[BookingStatus] = set()
    for item in _collection(value, "statuses", "booking statuses"):
        if not isinstance(item, str) or item not in known:
            msg = f"statuses are booking statuses ({', '.join(known)}), not {item!r}"
            raise InvalidInputError(msg, field="statuses")
        out.add(known[item])
    return frozenset(out)


def _callable(value: object, field: str) -> None:
    if not callable(value):
        msg = f"{field} must be a function, not {value!r}"
        raise InvalidInputError(msg, field=field)


def _flag(value: object, field: str) -> bool:
    """Return *value* if it is True or False: a string such as ``"no"`` is truthy and would mean yes."""
    if not isinstance(value, bool):
        msg = f"{field} must be True or False, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _count(value: object, field: str, what: str, *, or_none: bool = False) -> int:
    """Return *value* if it is a whole number, 0 or more: what a caller's *field* function must give."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kinds = "a whole number from 0 up" + (" or None" if or_none else "")
        msg = f"{field} must return {what}: {kinds}, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _span(cut: Sequence[Period]) -> Interval | None:
    """
    The instants *cut* covers, or ``None`` when they hold no time at all.

    A local day that a zone skipped lasts 0 hours (30 December 2011 in Pacific/Apia, which crossed the date
    line), and no interval can be empty: ``Interval(start, start)`` is refused.
    """
    if not cut or cut[-1].end <= cut[0].start:
        return None
    return Interval(cut[0].start, cut[-1].end)


# --- utilization -----------------------------------------------------------------------------------------------


@attrs.define
class _TypeSum:
    resources: int = 0
    capacity: int | None = 0
    open_time: timedelta = _ZERO
    available: timedelta | None = _ZERO
    booked: timedelta = _ZERO


def _booked_time(steps: Sequence[tuple[Interval, int]], ends: Sequence[datetime], open_set: IntervalSet) -> timedelta:
    """The integral of the load *steps* over *open_set* (steps sorted, disjoint; *ends* their ends)."""
    if not open_set:
        return _ZERO
    first, last = open_set.start, open_set.end
    assert first is not None  # noqa: S101 - a non-empty set has bounds
    assert last is not None  # noqa: S101
    total = _ZERO
    for i in range(bisect_right(ends, first), len(steps)):
        interval, load = steps[i]
        if interval.start >= last:
            break
        total += (open_set & IntervalSet([interval])).total_duration * load
    return total


def utilization(
    bookings: Iterable[Booking],
    resources: Iterable[Resource],
    business_hours: Schedule,
    periods: Iterable[Period],
    *,
    statuses: Iterable[BookingStatus | str] = BOOKED_STATUSES,
    include_buffers: bool = False,
) -> tuple[Utilization, ...]:
    """
    Return the utilization of every resource and every resource type in every period.

    Rows come period by period: first one per resource (by id), then one per type (by type; resources with
    no type share the type ``""``). See the module docstring for the rule: booked capacity-time within
    working hours ÷ working hours × capacity, from `effective_hours` and a `CapacityProfile` of the bookings in
    *statuses* (default `BOOKED_STATUSES`), split between periods by time.

    Args:
        bookings: The bookings to count (any others are ignored: other statuses, other resources).
        resources: The resources to report on.
        business_hours: The business's schedule, inherited by resources without their own, and whose time
            off closes every resource.
        periods: The report's columns, in time order (see `periods`).
        statuses: Which statuses are booked time.
        include_buffers: Count each booking's buffers as booked time too (True or False).

    Raises:
        InvalidInputError: a period, booking or resource is of the wrong type, periods overlap, or
            *include_buffers* is not True or False.
    """
    cut = _check_periods(periods)
    buffers = _flag(include_buffers, "include_buffers")
    if not cut:
        return ()
    counted = _statuses(statuses)
    hull = _span(cut)
    loads: dict[str, list[tuple[Interval, int]]] = defaultdict(list)
    for booking in _check_bookings(bookings):
        if booking.status not in counted or hull is None:
            continue
        interval = booking.interval
        if buffers:
            interval = Interval(booking.start - booking.buffer_before, booking.end + booking.buffer_after)
        if not interval.overlaps(hull):
            continue
        for assignment, units in zip(booking.assignments, booking.units, strict=True):
            for rid in assignment.resource_ids:
                loads[rid].append((interval, units))

    rows: list[list[Utilization]] = [[] for _ in cut]
    by_type: list[dict[str, _TypeSum]] = [defaultdict(_TypeSum) for _ in cut]
    # A 0-hour period (a local day the zone skipped) has no time, so no working time: its rows say 0 hours.
    spans = [IntervalSet.of(p.start, p.end) if p.end > p.start else IntervalSet.empty() for p in cut]
    for resource in sorted(
        _all_of(resources, Resource, "reports read Resource values", "resources"), key=lambda r: r.id
    ):
        hours = IntervalSet.empty() if hull is None else effective_hours(resource.schedule, business_hours, hull)
        steps = list(CapacityProfile(loads.get(resource.id, ())).steps())
        ends = [interval.end for interval, _ in steps]
        capacity = resource.capacity if isinstance(resource.capacity, int) else None
        for i, period in enumerate(cut):
            open_set = hours & spans[i]
            open_time = open_set.total_duration
            available = None if capacity is None else open_time * capacity
            booked = _booked_time(steps, ends, open_set)
            rows[i].append(
                Utilization(period, Dimension.RESOURCE, resource.id, 1, capacity, open_time, available, booked)
            )
            total = by_type[i][resource.type]
            total.resources += 1
            total.capacity = None if total.capacity is None or capacity is None else total.capacity + capacity
            total.open_time += open_time
            total.available = None if total.available is None or available is None else total.available + available
            total.booked += booked
    out: list[Utilization] = []
    for i, period in enumerate(cut):
        out.extend(rows[i])
        out.extend(
            Utilization(period, Dimension.TYPE, kind, t.resources, t.capacity, t.open_time, t.available, t.booked)
            for kind, t in sorted(by_type[i].items())
        )
    return tuple(out)


# --- revenue ---------------------------------------------------------------------------------------------------

_MONEY_DIMENSIONS: Final = (Dimension.TOTAL, Dimension.RESOURCE, Dimension.SERVICE, Dimension.SOURCE)


@attrs.define
class _MoneySum:
    bookings: int = 0
    paid: list[Money] = attrs.Factory(list)
    refunded: list[Money] = attrs.Factory(list)
    fees: list[Money] = attrs.Factory(list)


def revenue(
    bookings: Iterable[Booking],
    periods: Iterable[Period],
    *,
    dimensions: Iterable[Dimension | str] = _MONEY_DIMENSIONS,
) -> tuple[Revenue, ...]:
    """
    Return the revenue of the bookings that start in each period, per currency, broken down by *dimensions*.

    Money comes from each booking's ledger whatever its status; a booking belongs to the period of its start,
    and per resource its money is split with `split_evenly` (see the module docstring). Rows come period by
    period, dimension by dimension in the order given (default: total, resource, service, source), keys
    sorted; only keys with at least one booking with ledger entries get a row.

    Raises:
        InvalidInputError: a period or booking is of the wrong type, periods overlap, or a dimension is not
            one of total, resource, service, source.
    """
    cut = _check_periods(periods)
    wanted = _dimensions(dimensions, _MONEY_DIMENSIONS)
    finder = _Finder(cut)
    sums: dict[tuple[int, Dimension, str], _MoneySum] = defaultdict(_MoneySum)
    for booking in _check_bookings(bookings):
        i = finder.find(booking.start)
        if i is None or not booking.payments:
            continue
        for dimension in wanted:
            for key, share in _attributed(booking, dimension):
                entry = sums[i, dimension, key]
                entry.bookings += 1
                entry.paid.extend(share.paid)
                entry.refunded.extend(share.refunded)
                entry.fees.extend(share.fees)
    return tuple(
        Revenue(cut[i], dimension, key, s.bookings, Amounts(s.paid), Amounts(s.refunded), Amounts(s.fees))
        for (i, dimension, key), s in sorted(sums.items(), key=lambda kv: (kv[0][0], wanted.index(kv[0][1]), kv[0][2]))
    )


# --- cancellations and no-shows --------------------------------------------------------------------------------


@attrs.define
class _CancelSum:
    bookings: int = 0
    cancelled: int = 0
    no_shows: int = 0
    completed: int = 0
    lead_times: list[timedelta] = attrs.Factory(list)
    kept: list[Money] = attrs.Factory(list)
    fees: list[Money] = attrs.Factory(list)
    outstanding: list[Money] = attrs.Factory(list)


def _cancelled_at(records: Sequence[TransitionRecord]) -> datetime | None:
    for record in reversed(records):
        if record.action is Action.CANCEL:
            return record.at
    return None


def cancellations(
    bookings: Iterable[Booking],
    transitions: Iterable[TransitionRecord],
    periods: Iterable[Period],
    *,
    dimensions: Iterable[Dimension | str] = _MONEY_DIMENSIONS,
) -> tuple[Cancellations, ...]:
    """
    Return cancellation and no-show counts, rates, lead times and penalties, per period and dimension.

    A booking belongs to the period of its start; expired holds are left out. A cancellation's lead time
    runs from its CANCEL step in *transitions* to the booking's start (a cancelled booking without a recorded
    step adds to the count but not to the lead times). Per resource, a booking counts once for each of its
    resources and its money is split with `split_evenly`. Rows come period by period, dimension by dimension
    in the order given, keys sorted; only keys with at least one booking get a row.

    Raises:
        InvalidInputError: an argument is of the wrong type, periods overlap, or a dimension is not one of
            total, resource, service, source.
    """
    cut = _check_periods(periods)
    wanted = _dimensions(dimensions, _MONEY_DIMENSIONS)
    finder = _Finder(cut)
    log = _by_booking(transitions)
    sums: dict[tuple[int, Dimension, str], _CancelSum] = defaultdict(_CancelSum)
    for booking in _check_bookings(bookings):
        i = finder.find(booking.start)
        if i is None or booking.status is _S.EXPIRED:
            continue
        penalised = booking.status in {_S.CANCELLED, _S.NO_SHOW}
        lead: timedelta | None = None
        if booking.status is _S.CANCELLED:
            at = _cancelled_at(log.get(booking.id, ()))
            lead = None if at is None else booking.start - at
        money = penalised and bool(booking.payments)  # what was kept: only of bookings that moved money
        for dimension in wanted:
            keys = _keys(booking, dimension)
            shares = _money_shares(booking, len(keys)) if money else None
            for k, key in enumerate(keys):
                entry = sums[i, dimension, key]
                entry.bookings += 1
                entry.cancelled += booking.status is _S.CANCELLED
                entry.no_shows += booking.status is _S.NO_SHOW
                entry.completed += booking.status is _S.COMPLETED
                if lead is not None:
                    entry.lead_times.append(lead)
                if shares is not None:
                    entry.kept.append(shares[k].kept)
                    entry.fees.extend(shares[k].fees)
                    entry.outstanding.append(shares[k].outstanding)
    return tuple(
        Cancellations(
            cut[i],
            dimension,
            key,
            s.bookings,
            s.cancelled,
            s.no_shows,
            s.completed,
            tuple(sorted(s.lead_times)),
            Amounts(s.kept),
            Amounts(s.fees),
            Amounts(s.outstanding),
        )
        for (i, dimension, key), s in sorted(sums.items(), key=lambda kv: (kv[0][0], wanted.index(kv[0][1]), kv[0][2]))
    )


# --- the funnel ------------------------------------------------------------------------------------------------

_STAGE: Final = {status: i for i, status in enumerate(FUNNEL_STAGES)}
_FUNNEL_DIMENSIONS: Final = (Dimension.TOTAL, Dimension.SOURCE, Dimension.SERVICE, Dimension.RESOURCE)


def _ending(status: BookingStatus) -> str | None:
    if status is _S.EXPIRED:
        return "expired"
    if status is _S.CANCELLED:
        return "cancelled"
    if status is _S.NO_SHOW:
        return "no_show"
    if status in LIVE_STATUSES:
        return "pending"
    return None


def _furthest(booking: Booking, records: Sequence[TransitionRecord]) -> int:
    visited = {booking.status}
    for record in records:
        visited.add(record.to_status)
        if record.from_status is not None:
            visited.add(record.from_status)
    return max((_STAGE[s] for s in visited if s in _STAGE), default=0)


def _time_to_payment(booking: Booking, records: Sequence[TransitionRecord]) -> timedelta | None:
    if not any(r.to_status is _S.PRE_BOOKING or r.from_status is _S.PRE_BOOKING for r in records):
        return None
    for record in sorted(records, key=lambda r: r.at):
        if record.to_status is _S.PAID and record.from_status is not _S.PAID:
            return record.at - booking.created_at
    return None


def funnel(
    bookings: Iterable[Booking],
    transitions: Iterable[TransitionRecord],
    periods: Iterable[Period],
    *,
    dimensions: Iterable[Dimension | str] = (Dimension.TOTAL, Dimension.SOURCE),
) -> tuple[Funnel, ...]:
    """
    Return the conversion funnel pre-booking → confirmed → paid → completed per period of creation.

    A booking belongs to the period of its ``created_at`` (a cohort) and counts for every stage up to the
    furthest one its transition log or its status shows (see `Funnel`); where it went no further, its
    current status says how it ended (expired, cancelled, no-show, or still pending). Rows come period by
    period, dimension by dimension in the order given (default: total, source), keys sorted.

    Raises:
        InvalidInputError: an argument is of the wrong type, periods overlap, or a dimension is not one of
            total, source, service, resource.
    """
    cut = _check_periods(periods)
    wanted = _dimensions(dimensions, _FUNNEL_DIMENSIONS)
    finder = _Finder(cut)
    log = _by_booking(transitions)
    counts: dict[tuple[int, Dimension, str], list[dict[str, int]]] = {}
    waits: dict[tuple[int, Dimension, str], list[timedelta]] = defaultdict(list)
    for booking in _check_bookings(bookings):
        i = finder.find(booking.created_at)
        if i is None:
            continue
        records = log.get(booking.id, [])
        furthest = _furthest(booking, records)
        ending = _ending(booking.status) if furthest < len(FUNNEL_STAGES) - 1 else None
        wait = _time_to_payment(booking, records)
        for dimension in wanted:
            for key in _keys(booking, dimension):
                stages = counts.setdefault((i, dimension, key), [defaultdict(int) for _ in FUNNEL_STAGES])
                for k in range(furthest + 1):
                    stages[k]["reached"] += 1
                if ending is not None:
                    stages[furthest][ending] += 1
                if wait is not None:
                    waits[i, dimension, key].append(wait)
    return tuple(
        Funnel(
            cut[i],
            dimension,
            key,
            tuple(
                FunnelStage(
                    status,
                    stages[k]["reached"],
                    stages[k]["expired"],
                    stages[k]["cancelled"],
                    stages[k]["no_show"],
                    stages[k]["pending"],
                )
                for k, status in enumerate(FUNNEL_STAGES)
            ),
            tuple(sorted(waits.get((i, dimension, key), ()))),
        )
        for (i, dimension, key), stages in sorted(
            counts.items(), key=lambda kv: (kv[0][0], wanted.index(kv[0][1]), kv[0][2])
        )
    )


# --- per-occurrence finance ------------------------------------------------------------------------------------


def _first_units(booking: Booking) -> int:
    return booking.units[0]


@attrs.define
class _Occurrence:
    start: datetime
    bookings: list[Booking] = attrs.Factory(list)


def occurrence_finance(
    bookings: Iterable[Booking],
    *,
    group_by: Callable[[Booking], str | None],
    capacity_of: Callable[[str], int | None],
    month: date,
    zone: str,
    tickets_of: Callable[[Booking], int] = _first_units,
    start_of: Callable[[str], datetime | None] | None = None,
) -> tuple[OccurrenceFinance, ...]:
    """
    Return the month-end report per occurrence: every occurrence held in the local *month* of *zone*.

    Bookings are grouped into occurrences by *group_by* (for example the id of an occurrence's seat block,
    ``lambda b: b.resource_ids[0]``, or ``lambda b: b.external_ref``); a booking it maps to ``None`` belongs
    to none. An occurrence is held when *start_of* says (pass it when the occurrences are known: a moved
    occurrence's cancelled tickets keep their old time), else when its earliest booking starts, and is reported
    if that instant falls in *month* (any date of the month names it) in *zone*. A booking's tickets are
    *tickets_of* it, by default its units on the first need (the seats). Rows are sorted by start, then key.

    Args:
        bookings: Ticket bookings, in any status.
        group_by: The occurrence a booking belongs to, or ``None``.
        capacity_of: The seats an occurrence offered, or ``None`` if unknown (no fill rate).
        month: Any date in the month to report.
        zone: The zone whose calendar month is meant.
        tickets_of: How many tickets a booking holds.
        start_of: When an occurrence is held, by key, or ``None`` to take its earliest booking's start.

    Raises:
        InvalidInputError: *month* is not a date, a booking is not a `Booking`, a function is not callable, or
            one returns something else than it should: *group_by* a ``str`` or ``None``, *capacity_of* a whole
            number from 0 up or ``None``, *tickets_of* a whole number from 0 up.
        NaiveDatetimeError: *start_of* returns a datetime without a time zone.
        UnknownTimeZoneError: *zone* is not a known IANA zone.
    """
    for name, function in (("group_by", group_by), ("capacity_of", capacity_of), ("tickets_of", tickets_of)):
        _callable(function, name)
    if start_of is not None:
        _callable(start_of, "start_of")
    first = _day(month).replace(day=1)
    window = periods(first, (first + 32 * _ONE_DAY).replace(day=1) - _ONE_DAY, zone, Grain.MONTH)[0]
    groups: dict[str, _Occurrence] = {}
    for booking in _check_bookings(bookings):
        key = cast("object", group_by(booking))
        if key is None:
            continue
        if not isinstance(key, str):
            msg = (
                f"group_by must return the key of a booking's occurrence (a str) or None, not "
                f"{type(key).__name__} {key!r} (for booking {booking.id!r})"
            )
            raise InvalidInputError(msg, field="group_by")
        group = groups.setdefault(key, _Occurrence(booking.start))
        group.start = min(group.start, booking.start)
        group.bookings.append(booking)
    out: list[OccurrenceFinance] = []
    for key, group in groups.items():
        held_at = start_of(key) if start_of is not None else None
        if held_at is not None:
            group.start = to_utc(held_at, "start")
        if not window.contains(group.start):
            continue
        held = [(b, _count(tickets_of(b), "tickets_of", f"the tickets of booking {b.id!r}")) for b in group.bookings]
        seats = cast("object", capacity_of(key))
        capacity = (
            None if seats is None else _count(seats, "capacity_of", f"the seats of occurrence {key!r}", or_none=True)
        )
        out.append(
            OccurrenceFinance(
                key=key,
                month=window.label,
                start=group.start,
                bookings=len(held),
                tickets_sold=sum(n for b, n in held if b.status in BOOKED_STATUSES),
                tickets_cancelled=sum(n for b, n in held if b.status is _S.CANCELLED),
                tickets_refunded=sum(n for b, n in held if _ledger(b, PaymentKind.REFUND)),
                capacity=capacity,
                paid=Amounts(m for b, _ in held for m in _ledger(b, PaymentKind.PAYMENT)),
                refunded=Amounts(m for b, _ in held for m in _ledger(b, PaymentKind.REFUND)),
                fees=Amounts(m for b, _ in held for m in _ledger(b, PaymentKind.FEE)),
            )
        )
    return tuple(sorted(out, key=lambda o: (o.start, o.key)))


# --- engine helpers --------------------------------------------------------------------------------------------


def _engine(engine: object) -> BookingEngine:
    """Return *engine* if it is a `BookingEngine` (the helpers read through its public methods only)."""
    from slotengine.engine import BookingEngine  # at run time, and lazily: the engine is heavy to import

    if not isinstance(engine, BookingEngine):
        msg = f"a report reads the bookings of a BookingEngine, not of a {type(engine).__name__} ({engine!r})"
        raise InvalidInputError(msg, field="engine")
    return engine


def _window(
    engine: BookingEngine, first_day: date, last_day: date, grain: Grain | str, zone: str | None
) -> list[Period]:
    checked = _engine(engine)  # first, even when a zone is given
    return periods(first_day, last_day, checked.business().zone if zone is None else zone, grain)


def _overlapping(engine: BookingEngine, cut: Sequence[Period], actor: Actor | None) -> list[Booking]:
    """The bookings of *engine* that overlap the report's window (none if the window holds no time)."""
    span = _span(cut)
    return [] if span is None else engine.list(period=span, actor=actor)


def _log_of(engine: BookingEngine, bookings: Sequence[Booking], actor: Actor | None) -> list[TransitionRecord]:
    """
    The transition log of *bookings* (found by *engine* as *actor*), read through `BookingEngine.transitions_of`.

    A report that reads the log is refused to a customer, with the error `BookingEngine.transitions` gives
    them for the whole log, which these reports read before (a report is the business's view). *actor*
    was checked by the engine's read of *bookings* already.
    """
    who = actor if actor is not None else engine.default_actor
    if isinstance(who, Actor) and who.role is Role.CUSTOMER:
        raise PermissionDeniedError(f"{who} may read the history of their own bookings only")
    return engine.transitions_of([b.id for b in bookings], actor=actor)


def utilization_report(
    engine: BookingEngine,
    first_day: date,
    last_day: date,
    *,
    grain: Grain | str = Grain.DAY,
    zone: str | None = None,
    statuses: Iterable[BookingStatus | str] = BOOKED_STATUSES,
    include_buffers: bool = False,
    actor: Actor | None = None,
) -> tuple[Utilization, ...]:
    """
    Return `utilization` of every resource of *engine* over *first_day* to *last_day* (local days of *zone*).

    *zone* defaults to the business's zone. Reads the business, its resources and the bookings in *statuses*
    through the engine's public read methods, as *actor*: those overlapping the window, or, with
    *include_buffers*, those whose time with its buffers overlaps it (``list(blocked=...)``). A booking keeps the
    buffers its service had when it was made, and they may be of any length (cleaning a van for 40 hours).

    Raises:
        InvalidInputError: *engine* is not a `BookingEngine`, *include_buffers* is not True or False, or a
            bound, the grain or a status is refused as in `periods` and `utilization`.
    """
    cut = _window(engine, first_day, last_day, grain, zone)
    counted = _statuses(statuses)
    buffers = _flag(include_buffers, "include_buffers")
    span = _span(cut)
    if span is None:
        found = []
    elif buffers:
        found = engine.list(blocked=span, status=counted, actor=actor)
    else:
        found = engine.list(period=span, status=counted, actor=actor)
    return utilization(
        found, engine.resources(), engine.business().hours, cut, statuses=counted, include_buffers=buffers
    )


def revenue_report(
    engine: BookingEngine,
    first_day: date,
    last_day: date,
    *,
    grain: Grain | str = Grain.DAY,
    zone: str | None = None,
    dimensions: Iterable[Dimension | str] = _MONEY_DIMENSIONS,
    actor: Actor | None = None,
) -> tuple[Revenue, ...]:
    """
    Return `revenue` of *engine*'s bookings that start between *first_day* and *last_day* (local days).

    Raises:
        InvalidInputError: *engine* is not a `BookingEngine`, or an argument is refused as in `periods` and
            `revenue`.
    """
    cut = _window(engine, first_day, last_day, grain, zone)
    return revenue(_overlapping(engine, cut, actor), cut, dimensions=dimensions)


def cancellation_report(
    engine: BookingEngine,
    first_day: date,
    last_day: date,
    *,
    grain: Grain | str = Grain.DAY,
    zone: str | None = None,
    dimensions: Iterable[Dimension | str] = _MONEY_DIMENSIONS,
    actor: Actor | None = None,
) -> tuple[Cancellations, ...]:
    """
    Return `cancellations` of *engine*'s bookings that start between *first_day* and *last_day*.

    Raises:
        InvalidInputError: *engine* is not a `BookingEngine`, or an argument is refused as in `periods` and
            `cancellations`.
    """
    cut = _window(engine, first_day, last_day, grain, zone)
    found = _overlapping(engine, cut, actor)
    # `cancellations` reads the log of cancelled bookings only (their CANCEL step): read no other.
    cancelled = [b for b in found if b.status is _S.CANCELLED]
    return cancellations(found, _log_of(engine, cancelled, actor), cut, dimensions=dimensions)


def funnel_report(
    engine: BookingEngine,
    first_day: date,
    last_day: date,
    *,
    grain: Grain | str = Grain.DAY,
    zone: str | None = None,
    dimensions: Iterable[Dimension | str] = (Dimension.TOTAL, Dimension.SOURCE),
    actor: Actor | None = None,
) -> tuple[Funnel, ...]:
    """
    Return the `funnel` of *engine*'s bookings created between *first_day* and *last_day* (local days).

    Raises:
        InvalidInputError: *engine* is not a `BookingEngine`, or an argument is refused as in `periods` and
            `funnel`.
    """
    cut = _window(engine, first_day, last_day, grain, zone)
    # The bookings made in the window (an index on created_at serves it), and the log only of those.
    finder, span = _Finder(_check_periods(cut)), _span(cut)
    made = [] if span is None else engine.list(created=span, actor=actor)
    cohort = [b for b in made if finder.find(b.created_at) is not None]
    return funnel(cohort, _log_of(engine, cohort, actor), cut, dimensions=dimensions)


def occurrence_report(
    engine: BookingEngine,
    month: date,
    *,
    group_by: Callable[[Booking], str | None],
    capacity_of: Callable[[str], int | None] | None = None,
    zone: str | None = None,
    tickets_of: Callable[[Booking], int] = _first_units,
    actor: Actor | None = None,
) -> tuple[OccurrenceFinance, ...]:
    """
    Return `occurrence_finance` of *engine*'s bookings for the local *month*.

    Without *capacity_of*, an occurrence's capacity is that of the resource whose id is its key (a seat block
    grouped by ``lambda b: b.resource_ids[0]``), or unknown if no such resource exists or it is unlimited.

    Raises:
        InvalidInputError: *engine* is not a `BookingEngine`, or an argument (or what a function returns) is
            refused as in `occurrence_finance`.
    """
    _engine(engine)
    if capacity_of is None:
        capacities: dict[str, int | None] = {
            r.id: r.capacity if isinstance(r.capacity, int) else None for r in engine.resources()
        }
        capacity_of = capacities.get
    return occurrence_finance(
        engine.list(actor=actor),
        group_by=group_by,
        capacity_of=capacity_of,
        month=month,
        zone=engine.business().zone if zone is None else zone,
        tickets_of=tickets_of,
    )
