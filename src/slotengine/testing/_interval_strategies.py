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

__all__ = ["INTERVAL_WINDOW", "interval_sets", "intervals", "weighted_loads"]

INTERVAL_WINDOW = Interval(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
"""Three days around Europe's 2026 change to summer time (29 March, 01:00 UTC): 4,320 minutes."""

_MINUTE = timedelta(minutes=1)


def _whole_minutes(window: Interval) -> tuple[datetime, int]:
    if (window.start - INTERVAL_WINDOW.start) % _MINUTE or window.duration % _MINUTE:
        msg = f"a strategy window must start and end on whole minutes, got {window!r}"
        raise ValueError(msg)
    return window.start, window.duration // _MINUTE


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
    cap = length if max_minutes is None else max(1, min(max_minutes, length))
    first = draw(st.integers(0, length - 1))
    room = min(cap, length - first)
    duration = draw(st.one_of(st.integers(1, min(room, 120)), st.integers(1, room)))
    if zones is None:
        # Imported here, not at the top: `strategies` re-exports this module, so a top-level import would be
        # circular whichever of the two is imported first.
        from slotengine.testing.strategies import zone_names

        zones = zone_names()
    zone = ZoneInfo(draw(zones))
    start = origin + first * _MINUTE
    return Interval(start.astimezone(zone), (start + duration * _MINUTE).astimezone(zone))


def interval_sets(
    within: Interval = INTERVAL_WINDOW,
    *,
    max_size: int = 12,
    max_minutes: int | None = None,
) -> st.SearchStrategy[IntervalSet]:
    """
    Draw an `IntervalSet` built from up to *max_size* intervals of `intervals` (it may be empty).

    The pieces often overlap or touch, so the set's normalization merges some of them.
    """
    return st.lists(intervals(within, max_minutes=max_minutes), max_size=max_size).map(IntervalSet)


def weighted_loads(
    within: Interval = INTERVAL_WINDOW,
    *,
    max_size: int = 10,
    max_units: int = 4,
    max_minutes: int | None = None,
) -> st.SearchStrategy[list[tuple[Interval, int]]]:
    """Draw up to *max_size* ``(interval, units)`` loads for a `CapacityProfile`, each of 1 to *max_units*."""
    load = st.tuples(intervals(within, max_minutes=max_minutes), st.integers(1, max_units))
    return st.lists(load, max_size=max_size)
