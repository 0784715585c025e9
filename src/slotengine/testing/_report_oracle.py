"""
A brute-force oracle for `slotengine.reports.utilization`: minute by minute, slow, obviously right.

It shares no code with the report: local midnights come straight from `zoneinfo` (``fold=0``, the wall-time
rule), working minutes from the schedule oracle (`schedule_open_minutes`), and the load of each minute is the
sum of the units of the bookings that cover it. Bounds that are not whole minutes make the answer coarse;
tests draw whole minutes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from slotengine.booking import Booking
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import Resource
from slotengine.schedule import Schedule
from slotengine.testing._schedule_oracle import schedule_open_minutes

__all__ = ["MinuteUtilization", "local_day_bounds", "utilization_minutes"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


def local_day_bounds(first_day: date, last_day: date, zone: str) -> tuple[datetime, datetime]:
    """Return the UTC instants of *first_day*'s local midnight and of the midnight after *last_day*."""
    tz = ZoneInfo(zone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0)).replace(tzinfo=tz, fold=0).astimezone(UTC)

    return midnight(first_day), midnight(last_day + timedelta(days=1))


@attrs.frozen
class MinuteUtilization:
    """What the oracle counted for one resource in one window: minutes open, unit-minutes booked."""

    open_minutes: int
    booked_unit_minutes: int
    peak_load: int


def _minute(instant: datetime) -> int:
    return -((_EPOCH - instant) // _MINUTE)  # ceiling: the first whole minute at or after *instant*


def _time_off_minutes(business: Schedule, zone: str, window: Interval) -> set[int]:
    """The business's time off as minutes: instants as given, whole days from local midnight to midnight."""
    closed: set[int] = set()
    for entry in business.time_off:
        if entry.start is not None and entry.end is not None:
            start, end = entry.start, entry.end
        else:
            assert entry.first_day is not None  # noqa: S101 - a TimeOff has instants or days
            assert entry.last_day is not None  # noqa: S101
            start, end = local_day_bounds(entry.first_day, entry.last_day, zone)
        start, end = max(start, window.start), min(end, window.end)
        closed.update(range(_minute(start), _minute(end)))
    return closed


def _open_minutes(resource: Resource, business: Schedule, window: Interval) -> set[int]:
    if resource.schedule is None:
        return set(schedule_open_minutes(business, window))
    # The business's time off closes the resource too, whole days read in the resource's zone.
    return set(schedule_open_minutes(resource.schedule, window)) - _time_off_minutes(
        business, resource.schedule.zone, window
    )


def utilization_minutes(
    bookings: Iterable[Booking],
    resource: Resource,
    business: Schedule,
    windows: Sequence[Interval],
    statuses: Collection[BookingStatus],
    *,
    include_buffers: bool = False,
) -> list[MinuteUtilization]:
    """
    Count, minute by minute in each of *windows*, the minutes *resource* is open and the units booked on it.

    A minute is open when the schedule oracle says so for the resource's own schedule (less the business's
    time off) or, without one, for the business's. Its load is the sum, over the bookings in *statuses*, of
    the units they take on the resource while they cover it (widened by their buffers if *include_buffers*).
    ``peak_load`` is the highest load of any minute of the window, open or not.
    """
    if not windows:
        return []
    hull = Interval(min(w.start for w in windows), max(w.end for w in windows))
    opened = _open_minutes(resource, business, hull)
    spans: list[tuple[int, int, int]] = []
    for booking in bookings:
        if booking.status not in statuses:
            continue
        units = sum(u for a, u in zip(booking.assignments, booking.units, strict=True) if resource.id in a.resource_ids)
        if not units:
            continue
        start, end = booking.start, booking.end
        if include_buffers:
            start, end = start - booking.buffer_before, end + booking.buffer_after
        spans.append((_minute(start), _minute(end), units))
    out: list[MinuteUtilization] = []
    for window in windows:
        minutes = range(_minute(window.start), _minute(window.end))
        open_minutes = booked = peak = 0
        for minute in minutes:
            load = sum(units for start, end, units in spans if start <= minute < end)
            peak = max(peak, load)
            if minute in opened:
                open_minutes += 1
                booked += load
        out.append(MinuteUtilization(open_minutes, booked, peak))
    return out
