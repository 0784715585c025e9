"""
Hypothesis strategies for intervals, interval sets and weighted loads.

Every bound falls on a whole minute inside a bounded window (three days by default, across the night Europe
changes to summer time), so the minute-grid oracles of `slotengine.testing.oracle` are exact and cheap. The
bounds are given in a zone drawn from `DST_ZONES`, so that building values also exercises the conversion of
local times to UTC; an `Interval` stores them in UTC whatever zone they came in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from slotengine.intervals import Interval, IntervalSet

__all__ = ["INTERVAL_WINDOW", "interval_lists", "interval_sets", "intervals", "weighted_loads"]

INTERVAL_WINDOW = Interval(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
"""Three days around Europe's 2026 change to summer time (29 March, 01:00 UTC): 4,320 minutes."""

_MINUTE = timedelta(minutes=1)


def _whole_minutes(window: Interval) -> tuple[datetime, int]:
    if (window.start - INTERVAL_WINDOW.start) % _MINUTE or window.duration % _MINUTE:
        msg = f"a strategy window must start and end on whole minutes, got {window!r}"
        raise ValueError(msg)
    return window.start, window.duration // _MINUTE


def _zones(zones: st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    if zones is not None:
        return zones
    # Imported here, not at the top: `strategies` re-exports this module, so a top-level import would be
    # circular whichever of the two is imported first.
    from slotengine.testing._time_strategies import zone_names

    return zone_names()


def _offsets(length: int, max_minutes: int | None) -> st.SearchStrategy[tuple[int, int]]:
    """
    Draw ``(first minute, duration)``: often booking-sized (up to 2 h), sometimes up to *max_minutes*.

    Starts and durations are often whole hours, so that pieces of different sets often touch exactly (the
    half-open rule's edge), which uniformly drawn minutes would rarely do.
    """
    cap = length if max_minutes is None else max(1, min(max_minutes, length))
    hours = st.integers(1, max(1, min(cap, 240) // 60)).map(lambda h: h * 60)
    durations = st.one_of(st.integers(1, min(cap, 120)), st.integers(1, cap), hours)
    starts = st.one_of(st.integers(0, length - 1), st.integers(0, (length - 1) // 60).map(lambda h: h * 60))
    return st.tuples(starts, durations)


def _build(origin: datetime, length: int, offset: tuple[int, int], zone: ZoneInfo) -> Interval:
    # A duration that would run past the window is cut at its end: intervals that end exactly there are
    # an edge case worth drawing often.
    first, duration = offset
    start = origin + first * _MINUTE
    end = origin + min(first + duration, length) * _MINUTE
    return Interval(start.astimezone(zone), end.astimezone(zone))


@st.composite
def intervals(
    draw: st.DrawFn,
    within: Interval = INTERVAL_WINDOW,
    *,
    max_minutes: int | None = None,
    zones: st.SearchStrategy[str] | None = None,
) -> Interval:
    """
    Draw an interval on whole minutes inside *within*.

    Durations are often short (up to two hours, the size of a booking) and sometimes anything up to the end
    of the window; *max_minutes* caps them. The bounds are given in a zone drawn from *zones* (default:
    `DST_ZONES`).
    """
    origin, length = _whole_minutes(within)
    zone = ZoneInfo(draw(_zones(zones)))
    return _build(origin, length, draw(_offsets(length, max_minutes)), zone)


@st.composite
def _interval_lists(
    draw: st.DrawFn,
    within: Interval,
    *,
    max_size: int,
    max_minutes: int | None,
    zones: st.SearchStrategy[str] | None,
) -> list[Interval]:
    # One zone per list keeps drawing cheap (hypothesis runs this hundreds of times per test).
    origin, length = _whole_minutes(within)
    zone = ZoneInfo(draw(_zones(zones)))
    offsets = draw(st.lists(_offsets(length, max_minutes), max_size=max_size))
    return [_build(origin, length, offset, zone) for offset in offsets]


def interval_lists(
    within: Interval = INTERVAL_WINDOW,
    *,
    max_size: int = 12,
    max_minutes: int | None = None,
    zones: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[list[Interval]]:
    """
    Draw a list of up to *max_size* intervals like `intervals`, all given in one drawn zone.

    The intervals often overlap or touch: this is raw input for building an `IntervalSet`.
    """
    return _interval_lists(within, max_size=max_size, max_minutes=max_minutes, zones=zones)


def interval_sets(
    within: Interval = INTERVAL_WINDOW,
    *,
    max_size: int = 12,
    max_minutes: int | None = None,
) -> st.SearchStrategy[IntervalSet]:
    """
    Draw an `IntervalSet` built from an `interval_lists` list (it may be empty).

    The pieces often overlap or touch, so the set's normalization merges some of them.
    """
    return interval_lists(within, max_size=max_size, max_minutes=max_minutes).map(IntervalSet)


@st.composite
def weighted_loads(
    draw: st.DrawFn,
    within: Interval = INTERVAL_WINDOW,
    *,
    max_size: int = 10,
    max_units: int = 4,
    max_minutes: int | None = None,
) -> list[tuple[Interval, int]]:
    """Draw up to *max_size* ``(interval, units)`` loads for a `CapacityProfile`, each of 1 to *max_units*."""
    origin, length = _whole_minutes(within)
    zone = ZoneInfo(draw(_zones(None)))
    weighted = st.tuples(_offsets(length, max_minutes), st.integers(1, max_units))
    loads = draw(st.lists(weighted, max_size=max_size))
    return [(_build(origin, length, offset, zone), units) for offset, units in loads]
