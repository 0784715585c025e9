"""Hypothesis strategies for instants and zones, pulled towards real DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

__all__ = ["DST_ZONES", "aware_datetimes", "dst_transitions", "zone_names"]

DST_ZONES: tuple[str, ...] = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kathmandu",  # +05:45, no DST
    "Europe/Moscow",  # DST until 2011, then +4 all year, then +3 from October 2014
    "Europe/Berlin",
    "America/Santiago",  # DST change at midnight
    "UTC",
)
"""Zones that stress time code: DST in both hemispheres, a 30-minute DST, odd offsets, none at all."""


def zone_names() -> st.SearchStrategy[str]:
    """Draw one of `DST_ZONES`."""
    return st.sampled_from(DST_ZONES)


@cache
def dst_transitions(zone: str, first_year: int = 2010, last_year: int = 2030) -> tuple[datetime, ...]:
    """Return the UTC instants at which *zone*'s UTC offset changes in the given years (scan, then bisect)."""
    tz = ZoneInfo(zone)
    out: list[datetime] = []
    t = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    prev = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + step
        off = nxt.astimezone(tz).utcoffset()
        if off != prev:
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(hi.replace(second=0, microsecond=0))
            prev = off
        t = nxt
    return tuple(out)


@st.composite
def aware_datetimes(
    draw: st.DrawFn,
    zones: st.SearchStrategy[str] | None = None,
    *,
    near_transitions: bool = True,
    minute_resolution: bool = True,
) -> datetime:
    """
    Draw an aware datetime in a real zone, often within a day of one of that zone's DST transitions.

    With ``minute_resolution`` (the default) instants fall on whole minutes, which keeps minute-grid oracles
    exact.
    """
    zone = draw(zones if zones is not None else zone_names())
    tz = ZoneInfo(zone)
    transitions = dst_transitions(zone)
    if near_transitions and transitions and draw(st.booleans()):
        base = draw(st.sampled_from(transitions))
        offset = timedelta(minutes=draw(st.integers(-36 * 60, 36 * 60)))
        instant = base + offset
    else:
        minutes = draw(st.integers(0, 20 * 366 * 24 * 60))
        instant = datetime(2010, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    if not minute_resolution:
        instant += timedelta(microseconds=draw(st.integers(0, 59_999_999)))
    return instant.astimezone(tz)
