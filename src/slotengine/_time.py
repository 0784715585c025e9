"""
Time rules: aware instants only, IANA zones only, and one rule for local wall times.

Every instant in slotengine's public API is an aware `datetime`. Inside, instants are compared in UTC (and,
on hot paths, as integer microseconds since the Unix epoch, converted once at the edge).

**The wall-time rule.** Schedules, recurring hours and whole-day bookings are written in *local wall time*
(``09:00`` in ``Europe/Paris``). Turning a wall time into an instant follows RFC 5545 (iCalendar), the rule
that calendar users already live with:

* a wall time in a **gap** (it does not exist, because the clocks jump forward) is read with the UTC offset in
  force *before* the gap, so it lands as far after the gap's start as it was written: 02:30 on the night
  Paris springs forward becomes 03:30 CEST;
* a wall time in a **fold** (it exists twice, because the clocks go back) means its **first** occurrence:
  02:30 on the night Paris falls back is 02:30 CEST, not 02:30 CET.

This is exactly what `zoneinfo` does for ``fold=0``. Where a person types one exact time (a booking start),
``strict=True`` refuses gaps and folds with `NonexistentLocalTimeError` and `AmbiguousLocalTimeError`
instead of guessing.
"""

from __future__ import annotations

import functools
import reprlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

from slotengine.errors import (
    AmbiguousLocalTimeError,
    InvalidInputError,
    NaiveDatetimeError,
    NonexistentLocalTimeError,
    OutOfRangeError,
    UnknownTimeZoneError,
)

__all__ = [
    "EPOCH",
    "MAX_DURATION",
    "MAX_INSTANT",
    "MIN_INSTANT",
    "UTC",
    "check_day_range",
    "check_duration_range",
    "day_span",
    "days_span",
    "from_micros",
    "get_zone",
    "is_ambiguous",
    "is_nonexistent",
    "local_date",
    "localize",
    "require_aware",
    "spoken",
    "to_micros",
    "to_utc",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INSTANT = EPOCH
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
MAX_DURATION = MAX_INSTANT - MIN_INSTANT
"""No duration is longer than the range of instants: any instant plus or minus any duration stays computable."""
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)


def check_day_range(day: date, name: str = "day") -> date:
    """
    Return the calendar *day* if it lies in the accepted range, 1970-01-01 to 2199-12-31.

    Raises:
        OutOfRangeError: an earlier or later day (date arithmetic near year 9999 would overflow).
    """
    if MIN_INSTANT.date() <= day < MAX_INSTANT.date():
        return day
    msg = f"{name} {day.isoformat()} is outside the accepted range 1970-01-01 to 2199-12-31"
    raise OutOfRangeError(msg, field=name)


def check_duration_range(value: timedelta, name: str) -> timedelta:
    """
    Return *value* if it is no longer than `MAX_DURATION` either way.

    Raises:
        OutOfRangeError: a duration longer than the 230 years of instants slotengine accepts.
    """
    if -MAX_DURATION <= value <= MAX_DURATION:
        return value
    msg = f"{name} of {value.days:,} days is longer than the 1970-2200 range of instants slotengine accepts"
    raise OutOfRangeError(msg, field=name)


def require_aware(value: object, name: str = "datetime") -> datetime:
    """
    Return *value* if it is an aware datetime inside the accepted range.

    Raises:
        NaiveDatetimeError: *value* has no time zone (or one that gives no UTC offset).
        InvalidInputError: *value* is not a datetime at all (a `date` is not an instant).
        OutOfRangeError: *value* is before 1970 or after 2200.
    """
    if type(value) is datetime and value.tzinfo is UTC and MIN_INSTANT <= value <= MAX_INSTANT:
        return value  # the common case, checked in one line: an instant in UTC, in range
    if not isinstance(value, datetime):
        msg = f"{name} must be a timezone-aware datetime, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=name)
    if value.tzinfo is None or value.utcoffset() is None:
        msg = (
            f"{name} {value.isoformat()} has no time zone; slotengine only accepts aware datetimes "
            "(for example datetime(2026, 3, 1, 9, tzinfo=ZoneInfo('Europe/Paris')))"
        )
        raise NaiveDatetimeError(msg, field=name)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not (MIN_INSTANT <= utc <= MAX_INSTANT):
        msg = f"{name} {value.isoformat()} is outside the accepted range 1970-01-01 to 2200-01-01 UTC"
        raise OutOfRangeError(msg, field=name)
    return value


def to_utc(value: object, name: str = "datetime") -> datetime:
    """Check *value* like `require_aware` and return the same instant in UTC."""
    if type(value) is datetime and value.tzinfo is UTC and MIN_INSTANT <= value <= MAX_INSTANT:
        return value
    checked = require_aware(value, name)
    if checked.tzinfo is UTC:
        return checked
    return checked.astimezone(UTC)


def to_micros(instant: datetime) -> int:
    """Return an aware *instant* as integer microseconds since 1970-01-01 UTC (exact, no float)."""
    return (instant - EPOCH) // _ONE_US


def from_micros(micros: int) -> datetime:
    """Return the UTC datetime *micros* microseconds after 1970-01-01 UTC."""
    return EPOCH + timedelta(microseconds=micros)


_NOT_ZONES: Final = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _known_zones() -> frozenset[str]:
    # Not zones: "localtime" is this machine's /etc/localtime (another host, another zone), "Factory" has no offset
    # anyone keeps, "posixrules" is a copy the tz build leaves behind.
    return frozenset(available_timezones()) - _NOT_ZONES


_SHORT = reprlib.Repr()
_SHORT.maxstring = 80  # an error message quotes a zone name, not 100,000 characters of one
_SHORT.maxother = 80


def get_zone(name: object) -> ZoneInfo:
    """
    Return the `ZoneInfo` for an IANA zone key such as ``"Europe/Paris"``.

    Names are matched exactly (``"europe/paris"`` is refused on every platform, not only on case-sensitive
    file systems) against `zoneinfo.available_timezones`, which also keeps paths such as ``"../etc"`` out.
    Legacy keys the database still ships (``"EST"``, ``"UTC"``) are accepted, and so is a `ZoneInfo` of a
    known key (one read from a file, without a key, is not).

    Raises:
        UnknownTimeZoneError: *name* is not a string naming a known zone, nor such a zone.
    """
    if isinstance(name, str | ZoneInfo):
        return _zone(name)  # memoized: only hashable values reach the cache
    msg = f"unknown time zone {_SHORT.repr(name)}: use an IANA zone name such as 'Europe/Paris' or 'Asia/Tokyo'"
    raise UnknownTimeZoneError(msg, zone=_SHORT.repr(name))


@functools.cache
def _zone(name: str | ZoneInfo) -> ZoneInfo:
    if isinstance(name, ZoneInfo) and name.key in _known_zones():
        return name
    if not isinstance(name, str) or name not in _known_zones():
        msg = f"unknown time zone {_SHORT.repr(name)}: use an IANA zone name such as 'Europe/Paris' or 'Asia/Tokyo'"
        raise UnknownTimeZoneError(msg, zone=name if len(str(name)) <= 200 else _SHORT.repr(name))
    return ZoneInfo(name)


def is_nonexistent(wall: datetime, zone: ZoneInfo) -> bool:
    """Return whether naive *wall* time is skipped by the clocks in *zone* (a DST gap)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(fold=0)


def is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    """Return whether naive *wall* time happens twice in *zone* (a DST fold)."""
    if is_nonexistent(wall, zone):
        return False
    return wall.replace(tzinfo=zone, fold=0).utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset()


_FIRST_WALL = MIN_INSTANT.replace(tzinfo=None) - timedelta(days=2)
_LAST_WALL = MAX_INSTANT.replace(tzinfo=None) + timedelta(days=2)
"""The wall times worth localizing: the range of instants, and two days either side (more than any offset)."""


def check_flag(value: object, field: str) -> bool:
    """*value* if it is True or False; anything else (a string such as "no" is truthy) is an `InvalidInputError`."""
    if not isinstance(value, bool):
        msg = f"{field} must be True or False, got {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def localize(wall: datetime, zone: ZoneInfo | str, *, strict: bool = False) -> datetime:
    """
    Turn a naive local wall time in *zone* into an aware UTC instant, by the module's wall-time rule.

    The rule (RFC 5545): a wall time in a DST gap is read with the offset before the gap, so it moves
    forward by the gap's length (02:30 → 03:30 on a one-hour spring-forward night); a wall time in a fold
    means its first occurrence (the earlier instant). With ``strict=True`` both cases raise instead.

    Raises:
        InvalidInputError: *wall* is not a naive datetime (a wall time has no zone of its own).
        UnknownTimeZoneError: *zone* is neither a `ZoneInfo` nor the name of a known zone.
        NonexistentLocalTimeError: ``strict`` and *wall* falls in a gap.
        AmbiguousLocalTimeError: ``strict`` and *wall* falls in a fold.
    """
    if type(zone) is not ZoneInfo:
        zone = get_zone(zone)
    if not isinstance(wall, datetime):
        msg = f"a local wall time is a naive datetime, not {type(wall).__name__} {wall!r}"  # type: ignore[unreachable]
        raise InvalidInputError(msg)
    if wall.tzinfo is not None:
        msg = f"a local wall time must be naive (it is read in {zone.key}), got {wall.isoformat()}"
        raise InvalidInputError(msg)
    if check_flag(strict, "strict") and not _FIRST_WALL <= wall <= _LAST_WALL:
        # Far outside the range, the DST checks below would overflow: say what the last lines say.
        msg = f"{wall.isoformat(sep=' ')} in {zone.key} is outside the range of representable instants"
        raise OutOfRangeError(msg)
    if strict:
        if is_nonexistent(wall, zone):
            msg = (
                f"{wall.isoformat(sep=' ')} does not exist in {zone.key}: the clocks skip it "
                "(daylight saving time starts); choose a time after the jump"
            )
            raise NonexistentLocalTimeError(msg, wall_time=wall, zone=zone.key)
        if is_ambiguous(wall, zone):
            msg = (
                f"{wall.isoformat(sep=' ')} happens twice in {zone.key} (daylight saving time ends); "
                "pass an aware datetime with fold=0 (first) or fold=1 (second) to say which"
            )
            raise AmbiguousLocalTimeError(msg, wall_time=wall, zone=zone.key)
    try:
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    except OverflowError:
        msg = f"{wall.isoformat(sep=' ')} in {zone.key} is outside the range of representable instants"
        raise OutOfRangeError(msg) from None


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """Return the calendar date that an aware *instant* falls on in *zone*."""
    return instant.astimezone(zone).date()


def day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """
    Return the UTC instants ``[start, end)`` of the whole local *day* in *zone*.

    A local day runs from its midnight to the next day's midnight, each resolved by the wall-time rule, so it
    lasts 23 or 25 hours on DST days (and stays contiguous where a zone skips midnight itself).
    """
    return days_span(day, 1, zone)


def days_span(first_day: date, days: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """
    Return the UTC instants ``[start, end)`` of *days* whole local days from *first_day* in *zone*.

    Raises:
        InvalidInputError: *days* is not a positive integer.
        OutOfRangeError: a day of the span lies outside 1970-01-01 to 2199-12-31.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        msg = f"a whole-day span needs a positive number of days, got {days!r}"
        raise InvalidInputError(msg)
    check_day_range(first_day, "first day")
    if days > (MAX_INSTANT.date() - first_day).days:
        check_day_range(MAX_INSTANT.date(), "last day")
    start = localize(datetime.combine(first_day, time()), zone)
    end = localize(datetime.combine(first_day + _ONE_DAY * days, time()), zone)
    return start, end


def spoken(length: timedelta) -> str:
    """Say a length of time as people do: ``2 hours``, ``1 day 30 minutes``, ``45 seconds`` (``str`` says 2:00:00)."""
    seconds = int(length.total_seconds())
    if seconds * 1_000_000 != length // timedelta(microseconds=1):
        return str(length)  # a fraction of a second: say it exactly
    if seconds == 0:
        return "no time"
    sign, seconds = ("minus ", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return sign + " ".join(parts)
