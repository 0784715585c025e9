"""
Opening hours in local wall time, expanded to instants: weekly hours, date overrides, time off, rrule rules.

A `Schedule` says when a resource (or the whole business) is open, the way people write it: "Monday to
Friday 09:00–12:00 and 13:00–18:00, closed on 24 December, every other Saturday 10:00–14:00, off from the
3rd to the 7th". `Schedule.expand` turns that into the instants it covers in a window, as an `IntervalSet`.

**Each local range becomes instants at both ends by the wall-time rule** (`slotengine._time.localize`,
RFC 5545: a wall time in a DST gap is read with the offset before the gap, so it moves forward by the gap's
length; a wall time in a fold means its first occurrence). Consequences, all deliberate:

* a range that crosses a gap is shorter: 01:00–04:00 on the night Paris springs forward lasts 2 hours;
* a range that crosses a fold is longer and covers both passes: 01:00–04:00 on the night Paris falls back
  lasts 4 hours;
* a range that lies wholly inside a gap (02:00–03:00 on the spring-forward night) vanishes, so no slot is
  ever offered at a local time that does not exist, and none twice.

**Order of evaluation**, for each local date: the date's `DateOverride` if it has one, otherwise its
`WeeklyHours`; then ∪ the `RecurringHours` openings of that date; then − the recurring closures; then −
every `TimeOff`; and finally the result is clipped to the window. A range belongs to the local date it
*starts* on, so a night shift that starts the day before an overridden (even closed) date still runs into
it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Final, cast

import attrs

from slotengine._checks import shown, tuple_of
from slotengine._time import days_span, get_zone, local_date, localize, to_micros, to_utc
from slotengine.errors import InvalidInputError, InvalidIntervalError
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import check_text
from slotengine.recurrence import Recurrence, occurrence_days

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = [
    "WEEKDAYS",
    "DateOverride",
    "RecurringHours",
    "Schedule",
    "TimeOff",
    "TimeRange",
    "WeeklyHours",
    "effective_hours",
    "time_off_within",
    "weekday_index",
]

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Weekday names in `datetime.date.weekday` order: Monday is 0 and Sunday is 6."""

_ONE_DAY: Final = timedelta(days=1)
_DAY_US: Final = 24 * 3600 * 1_000_000
_MIN_YEAR: Final = 1970
_MAX_YEAR: Final = 2199
_SHORT: Final = tuple(name[:3] for name in WEEKDAYS)
_RRULE_DAYS: Final = tuple(name[:2] for name in WEEKDAYS)
_DAILY_OR_COARSER: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")


def _err(msg: str, **details: object) -> InvalidInputError:
    return InvalidInputError(msg, **details)


# --- small helpers ----------------------------------------------------------------------------------------


def weekday_index(value: object) -> int:
    """
    Return the weekday number (Monday=0 … Sunday=6) for a number or a name.

    Names are English, in any case: ``"monday"``, ``"Mon"`` or the RRULE code ``"MO"``.

    Raises:
        InvalidInputError: *value* is not 0–6 nor a weekday name.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 6:
            return value
    elif isinstance(value, str):
        name = value.strip().lower()
        for table in (WEEKDAYS, _SHORT, _RRULE_DAYS):
            if name in table:
                return table.index(name)
    msg = f"a weekday is 0 (Monday) to 6 (Sunday) or a name such as 'monday' or 'mon', not {shown(value)}"
    raise _err(msg, field="weekday")


def _to_time(value: object, name: str) -> time:
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value.strip())
        except ValueError:
            msg = f"{name} {value!r} is not a time of day such as '09:00' or '17:30'"
            raise _err(msg, field=name) from None
    if not isinstance(value, time):
        msg = f"{name} must be a datetime.time such as time(9, 0), not {type(value).__name__} {value!r}"
        raise _err(msg, field=name)
    if value.tzinfo is not None:
        msg = (
            f"{name} {value.isoformat()} must be a naive time of day: a schedule's hours are read in the "
            "schedule's zone, so they cannot carry a zone or offset of their own"
        )
        raise _err(msg, field=name)
    if value.fold:
        msg = f"{name} {value.isoformat()} has fold=1; schedules always mean a time's first occurrence"
        raise _err(msg, field=name)
    return value


def _start_time(value: time | str) -> time:
    return _to_time(value, "start")


def _end_time(value: time | str) -> time:
    if isinstance(value, str) and value.strip() in {"24:00", "24:00:00"}:
        return time(0)  # the midnight that ends the day, as business files write it
    return _to_time(value, "end")


def _check_date(value: object, name: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        msg = f"{name} must be a calendar date such as date(2025, 12, 24), not {type(value).__name__} {value!r}"
        raise _err(msg, field=name)
    if not _MIN_YEAR <= value.year <= _MAX_YEAR:
        msg = f"{name} {value.isoformat()} is outside the accepted years {_MIN_YEAR} to {_MAX_YEAR}"
        raise _err(msg, field=name)
    return value


MAX_REASON_LENGTH: Final = 2_000
"""The longest reason a time off or recurring hours take, as for a transition's reason."""


def _check_reason(value: object) -> str:
    # Stored with the schedule: no NUL, no lone surrogate (neither SQL storage keeps them), not a megabyte.
    return check_text(value, "reason", max_length=MAX_REASON_LENGTH, allow_empty=True)


def _us_of_day(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _time_of_us(micros: int) -> time:
    seconds, us = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, us)


def _fmt_time(value: time) -> str:
    if value.microsecond:
        return value.isoformat(timespec="microseconds")
    return value.isoformat(timespec="seconds" if value.second else "minutes")


# --- TimeRange --------------------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class TimeRange:
    """
    A range of local wall time on one day, ``[start, end)``, that may run into the next day.

    ``end <= start`` means the range ends on the **following** day: ``TimeRange("22:00", "06:00")`` is a night
    shift from 22:00 to 06:00 the next morning. The same rule makes ``start == end`` a range of 24 hours of
    wall time from *start* to *start* the next day (``TimeRange("00:00", "00:00")`` is the whole day); a
    range can never be empty or longer than a day. A range belongs to the day it starts on. An end written
    ``"24:00"`` is the midnight that ends the day, as in business files (``TimeRange("00:00", "24:00")`` is
    the whole day too).

    How long a range lasts in real time depends on the day's DST changes; see the module docstring.

    Args:
        start: a naive `datetime.time`, or text such as ``"09:00"``.
        end: a naive `datetime.time`, or text such as ``"18:00"``.

    Raises:
        InvalidInputError: a bound is not a time, carries a tzinfo, or has ``fold=1``.
    """

    start: time = attrs.field(converter=_start_time)
    end: time = attrs.field(converter=_end_time)

    @property
    def crosses_midnight(self) -> bool:
        """Whether the range ends on the day after it starts (``end <= start``)."""
        return self.end <= self.start

    @property
    def wall_duration(self) -> timedelta:
        """The length on the clock face, ignoring DST (the real length differs on DST nights)."""
        start, end = self._offsets()
        return timedelta(microseconds=end - start)

    def walls(self, day: date) -> tuple[datetime, datetime]:
        """Return the naive local wall times ``(start, end)`` of the range when it starts on *day*."""
        if isinstance(day, datetime) or not isinstance(day, date):
            msg = f"day must be a calendar date such as date(2025, 12, 24), not {type(day).__name__} {day!r}"
            raise _err(msg, field="day")
        end_day = day + _ONE_DAY if self.end <= self.start else day
        return datetime.combine(day, self.start), datetime.combine(end_day, self.end)

    def instants(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """
        Return the UTC instants ``(start, end)`` of the range starting on *day* in *zone*.

        Both ends go through the wall-time rule, so on a DST night ``end`` may not be after ``start``: such a
        range (wholly inside a gap) covers no time at all.
        """
        start, end = self.walls(day)
        return localize(start, zone), localize(end, zone)

    def _offsets(self) -> tuple[int, int]:
        """Microseconds from the start day's midnight (wall time) to each bound."""
        start, end = _us_of_day(self.start), _us_of_day(self.end)
        return start, end + _DAY_US if end <= start else end

    def __repr__(self) -> str:
        return f"TimeRange({_fmt_time(self.start)!r}, {_fmt_time(self.end)!r})"


def _merge(ranges: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    """
    Merge one day's ranges that overlap or touch into single ranges, in wall time, sorted by start.

    Two ranges whose union would last more than 24 hours (possible with ranges that run into the next day)
    are kept apart, because a `TimeRange` cannot be longer than a day; their union is still what `expand`
    opens.
    """
    spans = sorted(r._offsets() for r in ranges)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged:
            cur_start, cur_end = merged[-1]
            if start <= cur_end and max(cur_end, end) - cur_start <= _DAY_US:
                merged[-1] = (cur_start, max(cur_end, end))
                continue
        merged.append((start, end))
    return tuple(TimeRange(_time_of_us(s), _time_of_us(e % _DAY_US)) for s, e in merged)


def _ranges(value: object) -> tuple[TimeRange, ...]:
    return _merge(tuple_of(value, TimeRange, "ranges", label="hours", single=True))


def _fmt_ranges(ranges: tuple[TimeRange, ...]) -> str:
    if not ranges:
        return "closed"
    return ", ".join(f"{_fmt_time(r.start)}–{_fmt_time(r.end)}" for r in ranges)


# --- WeeklyHours ------------------------------------------------------------------------------------------


def _weekly_days(value: object) -> tuple[tuple[TimeRange, ...], ...]:
    days: list[list[TimeRange]] = [[] for _ in WEEKDAYS]
    if isinstance(value, Mapping):
        for key, ranges in value.items():
            days[weekday_index(key)].extend(_ranges(ranges))
    elif isinstance(value, (tuple, list)) and len(value) == len(WEEKDAYS):
        for index, ranges in enumerate(value):
            days[index].extend(_ranges(ranges))
    else:
        msg = (
            "weekly hours are a mapping from weekday to TimeRange values, such as "
            f"{{'mon': [TimeRange('09:00', '17:00')]}}, or a sequence of 7 days; got {value!r}"
        )
        raise _err(msg, field="weekly")
    return tuple(_merge(day) for day in days)


@attrs.frozen(repr=False)
class WeeklyHours:
    """
    Opening hours for each weekday, as several `TimeRange` values a day (a break is two ranges).

    Build it from a mapping whose keys are weekday numbers (Monday=0 … Sunday=6) or names (``"monday"``,
    ``"mon"``, ``"MO"``) and whose values are one `TimeRange` or several; weekdays left out are closed.
    Ranges of one day that **overlap or touch are merged** into one (Monday 09:00–12:00 and 11:00–14:00
    become 09:00–14:00), so two definitions of the same hours compare equal. A range belongs to the day it
    starts on: Monday's 22:00–06:00 runs into Tuesday morning.

    Raises:
        InvalidInputError: a key is not a weekday, or a value is not a `TimeRange`.
    """

    days: tuple[tuple[TimeRange, ...], ...] = attrs.field(factory=dict, converter=_weekly_days)

    @classmethod
    def every_day(cls, *ranges: TimeRange) -> WeeklyHours:
        """Return the same *ranges* on all seven days."""
        return cls(dict.fromkeys(range(7), ranges))

    @classmethod
    def weekdays(cls, *ranges: TimeRange) -> WeeklyHours:
        """Return the same *ranges* Monday to Friday, closed at the weekend."""
        return cls(dict.fromkeys(range(5), ranges))

    def on(self, weekday: int | str) -> tuple[TimeRange, ...]:
        """Return the ranges of *weekday* (a number 0–6 or a name)."""
        return self.days[weekday_index(weekday)]

    def __repr__(self) -> str:
        parts = [f"{_SHORT[i]}={_fmt_ranges(r)}" for i, r in enumerate(self.days) if r]
        return f"WeeklyHours({'; '.join(parts) or 'closed'})"


# --- DateOverride -----------------------------------------------------------------------------------------


def _override_day(value: date) -> date:
    return _check_date(value, "day")


@attrs.frozen(repr=False)
class DateOverride:
    """
    The hours of one local date, replacing its weekly hours; no ranges means closed that day.

    Only the ranges that *start* on the date are replaced: a night shift that starts the evening before
    still runs into the date, because it belongs to the day it starts on. Recurring openings and closures
    still apply on top (see `Schedule`).

    Raises:
        InvalidInputError: *day* is not a `date` (a `datetime` is refused), or a range is not a `TimeRange`.
    """

    day: date = attrs.field(converter=_override_day)
    ranges: tuple[TimeRange, ...] = attrs.field(default=(), converter=_ranges)

    @classmethod
    def closed(cls, day: date) -> DateOverride:
        """Return an override that closes *day*."""
        return cls(day, ())

    def __repr__(self) -> str:
        return f"DateOverride({self.day.isoformat()}: {_fmt_ranges(self.ranges)})"


# --- TimeOff ----------------------------------------------------------------------------------------------


def _optional_instant(value: object, name: str) -> datetime | None:
    return None if value is None else to_utc(value, name)


def _start_instant(value: datetime | None) -> datetime | None:
    return _optional_instant(value, "start")


def _end_instant(value: datetime | None) -> datetime | None:
    return _optional_instant(value, "end")


def _optional_day(value: date | None, name: str) -> date | None:
    return None if value is None else _check_date(value, name)


def _first_day(value: date | None) -> date | None:
    return _optional_day(value, "first_day")


def _last_day(value: date | None) -> date | None:
    return _optional_day(value, "last_day")


@attrs.frozen(repr=False)
class TimeOff:
    """
    Time when the schedule is closed whatever its hours say: a holiday, a sick leave, a maintenance slot.

    Either an interval of instants, ``TimeOff(start, end, reason=...)`` with aware datetimes (``end`` not
    included), or whole local days, ``TimeOff.days(first, last, reason=...)`` (``last`` included), which are
    resolved in the zone of the schedule they are applied to: from the first day's local midnight to the
    local midnight after the last day, each by the wall-time rule, so a day lasts 23 or 25 hours on DST days.

    Raises:
        NaiveDatetimeError: *start* or *end* has no time zone.
        InvalidIntervalError: *end* is not after *start*, or *last_day* is before *first_day*.
        InvalidInputError: neither or both shapes are given, a day is not a `date`, or *reason* is not text
            (or holds a NUL or a lone surrogate, or is over 2,000 characters).
    """

    start: datetime | None = attrs.field(default=None, converter=_start_instant)
    end: datetime | None = attrs.field(default=None, converter=_end_instant)
    reason: str = attrs.field(default="", converter=_check_reason)
    first_day: date | None = attrs.field(default=None, kw_only=True, converter=_first_day)
    last_day: date | None = attrs.field(default=None, kw_only=True, converter=_last_day)

    def __attrs_post_init__(self) -> None:
        instants = (self.start is not None, self.end is not None)
        days = (self.first_day is not None, self.last_day is not None)
        if not (instants == (True, True) and days == (False, False)) and not (
            instants == (False, False) and days == (True, True)
        ):
            msg = (
                "time off is either TimeOff(start, end) with aware datetimes or "
                "TimeOff.days(first_day, last_day) with dates, and needs both bounds of one of them"
            )
            raise _err(msg)
        if self.start is not None and self.end is not None and self.end <= self.start:
            msg = f"time off must end after it starts, got {self.start.isoformat()} to {self.end.isoformat()}"
            raise InvalidIntervalError(msg, start=self.start, end=self.end)
        if self.first_day is not None and self.last_day is not None and self.last_day < self.first_day:
            msg = (
                f"time off days run from a first day to a last day, got {self.first_day.isoformat()} "
                f"to {self.last_day.isoformat()}"
            )
            raise InvalidIntervalError(msg, start=self.first_day, end=self.last_day)

    @classmethod
    def days(cls, first: date, last: date | None = None, reason: str = "") -> TimeOff:
        """Return whole local days off from *first* to *last* inclusive (only *first* when *last* is None)."""
        return cls(reason=reason, first_day=first, last_day=first if last is None else last)

    @property
    def is_whole_days(self) -> bool:
        """Whether this is whole local days (resolved in a schedule's zone) rather than fixed instants."""
        return self.first_day is not None

    def interval(self, zone: str | ZoneInfo) -> Interval:
        """
        Return the instants this time off covers when it is applied in *zone*.

        Raises:
            UnknownTimeZoneError: *zone* is not a known IANA zone.
        """
        tz = zone if not isinstance(zone, str) else get_zone(zone)
        if self.start is not None and self.end is not None:
            return Interval(self.start, self.end)
        assert self.first_day is not None  # noqa: S101 - guaranteed by __attrs_post_init__
        assert self.last_day is not None  # noqa: S101
        start, end = days_span(self.first_day, (self.last_day - self.first_day).days + 1, tz)
        return Interval(start, end)

    def _micros(self, zone: ZoneInfo) -> tuple[int, int]:
        if self.start is not None and self.end is not None:
            return to_micros(self.start), to_micros(self.end)
        assert self.first_day is not None  # noqa: S101 - guaranteed by __attrs_post_init__
        assert self.last_day is not None  # noqa: S101
        start, end = days_span(self.first_day, (self.last_day - self.first_day).days + 1, zone)
        return to_micros(start), to_micros(end)

    def __repr__(self) -> str:
        reason = f", {self.reason!r}" if self.reason else ""
        if self.start is not None and self.end is not None:
            span = f"{self.start:%Y-%m-%d %H:%M}Z – {self.end:%Y-%m-%d %H:%M}Z"
        else:
            span = f"days {self.first_day} – {self.last_day}"
        return f"TimeOff({span}{reason})"


# --- RecurringHours ---------------------------------------------------------------------------------------


def _check_recurrence(value: object) -> Recurrence:
    if not isinstance(value, Recurrence):
        msg = f"recurring hours need a Recurrence, not {type(value).__name__} {value!r}"
        raise _err(msg, field="recurrence")
    return value


def _check_range(value: object) -> TimeRange:
    if not isinstance(value, TimeRange):
        msg = f"recurring hours need a TimeRange, not {type(value).__name__} {value!r}"
        raise _err(msg, field="hours")
    return value


def _check_bool(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"closed must be True or False, not {value!r}"
        raise _err(msg, field="closed")
    return value


@attrs.frozen(repr=False)
class RecurringHours:
    """
    Hours that recur by an RRULE: an extra opening, or (with ``closed=True``) a recurring closure.

    Each occurrence of *recurrence* is the start of *hours* on that local date: "every other Saturday
    10:00–14:00" is a ``FREQ=WEEKLY;INTERVAL=2;BYDAY=SA`` recurrence whose dtstart is a Saturday at 10:00,
    with ``TimeRange("10:00", "14:00")``. To keep that reading unambiguous the recurrence must be daily or
    coarser, without ``BYHOUR``/``BYMINUTE``/``BYSECOND``, and its dtstart and rdates must be at
    ``hours.start`` (`RecurringHours.every` builds such a recurrence from a first day).

    Openings are added to the day's weekly hours or override; closures (``closed=True``, "every Friday
    15:00–18:00 closed") are removed after all openings, and before time off, so a closure wins over every
    opening of any kind. Exclude one occurrence with an exdate at ``hours.start`` on that day.

    Raises:
        InvalidInputError: the recurrence is sub-daily, names hours, or does not start at ``hours.start``; a
            *reason* that is not text, holds a NUL or a lone surrogate, or is over 2,000 characters.
    """

    recurrence: Recurrence = attrs.field(converter=_check_recurrence)
    hours: TimeRange = attrs.field(converter=_check_range)
    closed: bool = attrs.field(default=False, converter=_check_bool)
    reason: str = attrs.field(default="", converter=_check_reason)

    def __attrs_post_init__(self) -> None:
        rec = self.recurrence
        parts = rec.parts
        if parts["FREQ"] not in _DAILY_OR_COARSER:
            msg = f"recurring hours recur daily or less often; FREQ={parts['FREQ']} would name times of day"
            raise _err(msg, field="recurrence")
        named = [key for key in ("BYHOUR", "BYMINUTE", "BYSECOND") if key in parts]
        if named:
            msg = f"recurring hours take their times from hours={self.hours!r}; remove {', '.join(named)}"
            raise _err(msg, field="recurrence")
        for date_time in (rec.dtstart, *rec.rdates):
            # An rdate kept as an instant (a fold's second pass) is at its wall time in the recurrence's zone.
            wall = date_time if date_time.tzinfo is None else date_time.astimezone(rec.tz).replace(tzinfo=None)
            if wall.time() != self.hours.start:
                msg = (
                    f"the recurrence's dtstart and rdates must be at the hours' start "
                    f"{_fmt_time(self.hours.start)}, got {wall.isoformat(sep=' ')}"
                )
                raise _err(msg, field="recurrence")

    @classmethod
    def every(
        cls,
        rule: str,
        first_day: date,
        hours: TimeRange,
        zone: str,
        *,
        except_days: Iterable[date] = (),
        closed: bool = False,
        reason: str = "",
    ) -> RecurringHours:
        """
        Return *hours* recurring by *rule* from *first_day* in *zone*, skipping *except_days*.

        Raises:
            InvalidInputError: as `Recurrence` and `RecurringHours` do.
            UnknownTimeZoneError: *zone* is unknown.
        """
        start = _check_date(first_day, "first_day")
        at = _check_range(hours).start
        if at.microsecond:
            msg = f"recurring hours start at a whole second (recurrences count seconds, as iCalendar does), not {at}"
            raise InvalidInputError(msg, field="hours")
        given: object = except_days
        if isinstance(given, str) or not isinstance(given, Iterable):
            msg = f"except_days must be a collection of dates, not {type(given).__name__} {given!r}"
            raise _err(msg, field="except_days")
        skipped = [datetime.combine(_check_date(d, "except_days"), at) for d in given]
        recurrence = Recurrence(rule, datetime.combine(start, at), zone, exdates=skipped)
        return cls(recurrence, hours, closed=closed, reason=reason)

    def __repr__(self) -> str:
        kind = "closed" if self.closed else "open"
        reason = f", {self.reason!r}" if self.reason else ""
        return f"RecurringHours({kind} {_fmt_ranges((self.hours,))} on {self.recurrence!r}{reason})"


# --- Schedule ---------------------------------------------------------------------------------------------


def _zone_name(value: object) -> str:
    return get_zone(value).key


def _check_weekly(value: object) -> WeeklyHours:
    if isinstance(value, WeeklyHours):
        return value
    if isinstance(value, (Mapping, tuple, list)):
        return WeeklyHours(value)
    msg = f"weekly must be WeeklyHours, not {type(value).__name__} {value!r}"
    raise _err(msg, field="weekly")


def _overrides(value: Iterable[DateOverride]) -> tuple[DateOverride, ...]:
    items = sorted(tuple_of(value, DateOverride, "overrides", single=True), key=lambda o: o.day)
    for before, after in pairwise(items):
        if before.day == after.day:
            msg = f"two overrides for {after.day.isoformat()}; give each date one override with all its hours"
            raise _err(msg, field="overrides")
    return tuple(items)


def _time_off(value: Iterable[TimeOff]) -> tuple[TimeOff, ...]:
    return tuple_of(value, TimeOff, "time_off", single=True)


def _recurring(value: Iterable[RecurringHours]) -> tuple[RecurringHours, ...]:
    return tuple_of(value, RecurringHours, "recurring", single=True)


def _check_window(window: object) -> Interval:
    if not isinstance(window, Interval):
        msg = f"a window is an Interval of aware datetimes, not {type(window).__name__} {window!r}"
        raise _err(msg, field="window")
    return window


@attrs.frozen(repr=False)
class Schedule:
    """
    When something is open, in local wall time of one IANA zone, expandable to instants.

    Args:
        zone: the IANA zone all hours are read in (the resource's zone).
        weekly: the regular hours of each weekday (`WeeklyHours`, or a mapping it accepts).
        overrides: `DateOverride` values, at most one per date, replacing that date's weekly hours.
        time_off: `TimeOff` values, removed last; whole days are resolved in *zone*.
        recurring: `RecurringHours` values in *zone*: extra openings and recurring closures.

    See the module docstring for the wall-time rule and the order of evaluation.

    Raises:
        UnknownTimeZoneError: *zone* is not a known IANA zone.
        InvalidInputError: a part has the wrong type, two overrides name the same date, or a recurring rule
            is in another zone.
    """

    zone: str = attrs.field(converter=_zone_name)
    weekly: WeeklyHours = attrs.field(factory=WeeklyHours, converter=_check_weekly)
    overrides: tuple[DateOverride, ...] = attrs.field(default=(), converter=_overrides)
    time_off: tuple[TimeOff, ...] = attrs.field(default=(), converter=_time_off)
    recurring: tuple[RecurringHours, ...] = attrs.field(default=(), converter=_recurring)
    _by_day: Mapping[date, tuple[TimeRange, ...]] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for rule in self.recurring:
            if rule.recurrence.zone != self.zone:
                msg = (
                    f"recurring hours are read in {rule.recurrence.zone} but the schedule is in {self.zone}; "
                    "build the Recurrence in the schedule's zone"
                )
                raise _err(msg, field="recurring")
        object.__setattr__(self, "_by_day", {o.day: o.ranges for o in self.overrides})

    @property
    def tz(self) -> ZoneInfo:
        """The `ZoneInfo` of `zone`."""
        return get_zone(self.zone)

    def hours_on(self, day: date) -> tuple[TimeRange, ...]:
        """Return the ranges that start on local *day*: its override's, or else its weekday's."""
        ranges = self._by_day.get(_check_date(day, "day"))
        return self.weekly.days[day.weekday()] if ranges is None else ranges

    def with_time_off(self, *time_off: TimeOff) -> Schedule:
        """Return a copy of this schedule with *time_off* added (company-wide holidays, a leave, ...)."""
        return attrs.evolve(self, time_off=self.time_off + _time_off(time_off))

    def expand(self, window: Interval) -> IntervalSet:
        """
        Return the instants inside *window* when this schedule is open.

        Only the local dates that can reach the window are visited (two days before it, for ranges that run
        into the next day and for DST shifts, and one after), and each range's two bounds are converted once,
        so a year takes milliseconds.

        Raises:
            InvalidInputError: *window* is not an `Interval`.
        """
        window = _check_window(window)
        tz = self.tz
        lo, hi = to_micros(window.start), to_micros(window.end)
        first = local_date(window.start, tz) - 2 * _ONE_DAY
        last = local_date(window.end, tz) + _ONE_DAY
        opened: list[tuple[int, int]] = []
        weekly, by_day = self.weekly.days, self._by_day
        day = first
        while day <= last:
            ranges = by_day.get(day)
            hours = weekly[day.weekday()] if ranges is None else ranges
            opened.extend(_range_micros(r, day, tz) for r in hours)
            day += _ONE_DAY
        closed: list[tuple[int, int]] = []
        for rule in self.recurring:
            target = closed if rule.closed else opened
            target.extend(_range_micros(rule.hours, d, tz) for d in occurrence_days(rule.recurrence, first, last))
        result = IntervalSet._from_micros(opened)
        if closed:
            result -= IntervalSet._from_micros(closed)
        off = _time_off_micros(self.time_off, tz, lo, hi)
        if off:
            result -= IntervalSet._from_micros(off)
        return result & IntervalSet._from_micros([(lo, hi)])

    def __repr__(self) -> str:
        parts = [repr(self.zone), f"weekly={self.weekly!r}"]
        for name in ("overrides", "time_off", "recurring"):
            items: tuple[object, ...] = getattr(self, name)
            if items:
                parts.append(f"{name}=[{', '.join(map(repr, items))}]")
        return f"Schedule({', '.join(parts)})"


def _range_micros(hours: TimeRange, day: date, tz: ZoneInfo) -> tuple[int, int]:
    start, end = hours.walls(day)
    return to_micros(localize(start, tz)), to_micros(localize(end, tz))


def _time_off_micros(entries: Iterable[TimeOff], tz: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    for entry in entries:
        start, end = entry._micros(tz)
        if start < hi and end > lo:
            pairs.append((start, end))
    return pairs


def time_off_within(entries: Iterable[TimeOff], zone: ZoneInfo, window: Interval) -> IntervalSet:
    """
    The time *entries* take off within *window*, whole days resolved in *zone*.

    Entries that miss the window cost nothing and raise nothing, as in `Schedule.expand`: a day the zone skipped
    (no time at all), or days reaching beyond the range of instants slotengine accepts, far from the window.
    """
    window, checked, tz = _check_window(window), _time_off(entries), get_zone(zone)
    lo, hi = to_micros(window.start), to_micros(window.end)
    return IntervalSet._from_micros((max(s, lo), min(e, hi)) for s, e in _time_off_micros(checked, tz, lo, hi))


def effective_hours(own: Schedule | None, business: Schedule, window: Interval) -> IntervalSet:
    """
    Return when a resource is open in *window*: its own hours, or the business hours it inherits.

    The decision, so that nobody has to guess it:

    * ``own=None`` means the resource **inherits** the business's schedule whole (weekly hours, overrides,
      recurring rules and time off);
    * a resource with its own schedule uses its own hours, overrides, recurring rules and time off, and the
      business's **time off** (company-wide holidays) is removed from them as well, always. The business's
      weekly hours, overrides and recurring rules do not apply to it.
    * the business's whole-day time off is resolved in the **resource's** zone: a holiday on 25 December
      closes the resource's own 25 December, midnight to midnight where the resource is.

    Raises:
        InvalidInputError: *own* or *business* is not a `Schedule`, or *window* is not an `Interval`.
    """
    if not isinstance(cast("object", business), Schedule) or not isinstance(own, (Schedule, type(None))):
        msg = f"effective_hours takes Schedule values (own may be None), got {own!r} and {business!r}"
        raise _err(msg)
    if own is None:
        return business.expand(window)
    window = _check_window(window)
    hours = own.expand(window)
    holidays = _time_off_micros(business.time_off, own.tz, to_micros(window.start), to_micros(window.end))
    if not holidays:
        return hours
    return hours - IntervalSet._from_micros(holidays)
