"""
A brute-force oracle for `Schedule.expand`: minute by minute, slow, obviously right.

It decides each minute on its own, straight from the definition in `slotengine.schedule`, and shares no code
with `Schedule.expand`: it reads the schedule's fields, expands recurrences with dateutil directly, and turns
wall times into instants with `zoneinfo` (``fold=0``, which *is* the RFC 5545 wall-time rule: a gap time
takes the offset before the gap, a fold time its first occurrence).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

if TYPE_CHECKING:
    from slotengine.intervals import Interval
    from slotengine.recurrence import Recurrence
    from slotengine.schedule import Schedule, TimeRange

__all__ = ["schedule_open_minutes"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The wall-time rule, spelled with zoneinfo: ``fold=0`` means "offset before a gap, first of a fold"."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _range_instants(hours: TimeRange, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    # A range starts on `day`; it ends the next day when end <= start (night shifts, and 24 h when equal).
    end_day = day if hours.end > hours.start else day + _DAY
    return (
        _instant(datetime.combine(day, hours.start), tz),
        _instant(datetime.combine(end_day, hours.end), tz),
    )


def _occurrence_dates(recurrence: Recurrence, last: date) -> set[date]:
    """Every local date, up to *last*, on which dateutil says the rule occurs (walked from dtstart)."""
    rset = rrulestr("RRULE:" + recurrence.rule, dtstart=recurrence.dtstart, forceset=True)
    for wall in recurrence.exdates:
        rset.exdate(wall)
    for wall in recurrence.rdates:
        rset.rdate(wall)
    dates: set[date] = set()
    for wall in rset:
        if wall.date() > last:
            break
        dates.add(wall.date())
    return dates


def schedule_open_minutes(schedule: Schedule, window: Interval) -> frozenset[int]:
    """
    Return the minutes of *window* when *schedule* is open, as minute indices since 1970-01-01 UTC.

    A minute ``m`` is the instant ``m * 60`` seconds after the epoch; it is reported when that instant lies in
    the window and the schedule is open at it. For each minute, and each local date that could own a range
    covering it (its own local date, the two days before for night shifts and DST shifts, and the day after
    for folds over midnight), the oracle asks: does a range of that date (its override's, else its weekday's,
    plus the date's recurring openings) contain the minute? Then: does a recurring closure of such a date
    contain it? Does any time off (instants, or whole local days from local midnight to local midnight)
    contain it? Bounds that are not on whole minutes make the answer coarse; tests draw whole minutes.
    """
    tz = ZoneInfo(schedule.zone)
    first_minute = -((_EPOCH - window.start) // _MINUTE)  # ceiling division
    end_minute = -((_EPOCH - window.end) // _MINUTE)
    last_date = window.end.astimezone(tz).date() + 2 * _DAY

    overrides = {override.day: override.ranges for override in schedule.overrides}
    openings: list[tuple[TimeRange, set[date]]] = []
    closures: list[tuple[TimeRange, set[date]]] = []
    for rule in schedule.recurring:
        target = closures if rule.closed else openings
        target.append((rule.hours, _occurrence_dates(rule.recurrence, last_date)))

    open_cache: dict[date, list[tuple[datetime, datetime]]] = {}
    closed_cache: dict[date, list[tuple[datetime, datetime]]] = {}

    def opened_by(day: date) -> list[tuple[datetime, datetime]]:
        if day not in open_cache:
            ranges = overrides[day] if day in overrides else schedule.weekly.days[day.weekday()]
            extra = [hours for hours, dates in openings if day in dates]
            open_cache[day] = [_range_instants(r, day, tz) for r in (*ranges, *extra)]
        return open_cache[day]

    def closed_by(day: date) -> list[tuple[datetime, datetime]]:
        if day not in closed_cache:
            closed_cache[day] = [_range_instants(h, day, tz) for h, dates in closures if day in dates]
        return closed_cache[day]

    time_off: list[tuple[datetime, datetime]] = []
    for entry in schedule.time_off:
        if entry.start is not None and entry.end is not None:
            time_off.append((entry.start, entry.end))
        elif entry.first_day is not None and entry.last_day is not None:
            midnight = datetime.min.time()
            time_off.append(
                (
                    _instant(datetime.combine(entry.first_day, midnight), tz),
                    _instant(datetime.combine(entry.last_day + _DAY, midnight), tz),
                )
            )

    minutes: set[int] = set()
    for index in range(first_minute, end_minute):
        moment = _EPOCH + index * _MINUTE
        today = moment.astimezone(tz).date()
        owners = [today + k * _DAY for k in (-2, -1, 0, 1)]
        if not any(s <= moment < e for day in owners for s, e in opened_by(day)):
            continue
        if any(s <= moment < e for day in owners for s, e in closed_by(day)):
            continue
        if any(s <= moment < e for s, e in time_off):
            continue
        minutes.add(index)
    return frozenset(minutes)
