"""
Hypothesis strategies for schedules: time ranges, weekly hours, and whole schedules near DST transitions.

Times are on whole minutes and lean towards the small hours (00:00–03:59), where DST gaps and folds are;
ranges include breaks, night shifts (end before start) and 24-hour ranges (end equal to start). Schedules
draw their overrides, time off and recurring rules around one anchor date, so that a window drawn around the
same anchor (`schedule_windows`) meets all of them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from slotengine.intervals import Interval
from slotengine.schedule import DateOverride, RecurringHours, Schedule, TimeOff, TimeRange, WeeklyHours
from slotengine.testing._time_strategies import DST_ZONES, dst_transitions

__all__ = ["schedule_windows", "schedules", "time_ranges", "weekly_hours"]

_FIRST = datetime(2010, 1, 1, tzinfo=UTC)
_LAST = datetime(2030, 12, 31, tzinfo=UTC)
_DAY = timedelta(days=1)

# RRULE shapes worth meeting: every other week, weekly on a weekday, every few days, a COUNT, the 31st that
# skips short months, the last Sunday (when Europe changes its clocks), an UNTIL, and a yearly date.
_RULES = (
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
    "FREQ=WEEKLY;BYDAY=FR",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=DAILY;COUNT=5",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=-1SU",
    "FREQ=WEEKLY;BYDAY=MO,WE,SU;UNTIL={until}",
    "FREQ=YEARLY",
)


@st.composite
def _times(draw: st.DrawFn) -> time:
    hour = draw(st.one_of(st.integers(0, 23), st.integers(0, 3)))
    minute = draw(st.one_of(st.sampled_from((0, 15, 30, 45)), st.integers(0, 59)))
    return time(hour, minute)


@st.composite
def time_ranges(draw: st.DrawFn) -> TimeRange:
    """Draw a `TimeRange` on whole minutes: day ranges, night shifts (end <= start) and 24-hour ranges."""
    start = draw(_times())
    kind = draw(st.sampled_from(("any", "any", "short", "same")))
    if kind == "same":
        return TimeRange(start, start)
    if kind == "short":
        length = draw(st.integers(1, 180))
        end_minutes = (start.hour * 60 + start.minute + length) % 1440
        return TimeRange(start, time(end_minutes // 60, end_minutes % 60))
    return TimeRange(start, draw(_times()))


@st.composite
def weekly_hours(draw: st.DrawFn) -> WeeklyHours:
    """Draw `WeeklyHours` with zero to three ranges a day (so breaks, overlaps to merge, night shifts)."""
    days = {day: draw(st.lists(time_ranges(), max_size=3)) for day in range(7)}
    return WeeklyHours(days)


def _anchor_dates(zone: str) -> st.SearchStrategy[date]:
    tz = ZoneInfo(zone)
    transitions = dst_transitions(zone)
    anywhere = st.dates(_FIRST.date(), _LAST.date())
    if not transitions:
        return anywhere
    near = st.sampled_from(transitions).map(lambda t: t.astimezone(tz).date())
    return st.one_of(near, near, anywhere)


@st.composite
def _time_off(draw: st.DrawFn, zone: str, around: date) -> TimeOff:
    reason = draw(st.sampled_from(("", "holiday", "sick leave", "maintenance")))
    if draw(st.booleans()):
        first = around + draw(st.integers(-4, 4)) * _DAY
        return TimeOff.days(first, first + draw(st.integers(0, 2)) * _DAY, reason=reason)
    midnight = datetime.combine(around, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    start = midnight + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)))
    end = start + timedelta(minutes=draw(st.integers(1, 2 * 1440)))
    return TimeOff(start.astimezone(ZoneInfo(zone)), end, reason=reason)


@st.composite
def _recurring(draw: st.DrawFn, zone: str, around: date) -> RecurringHours:
    hours = draw(time_ranges())
    first = around - draw(st.integers(0, 40)) * _DAY
    if draw(st.integers(0, 9)) == 0:
        first = first.replace(year=first.year - 1, day=min(first.day, 28))
    until = (around + draw(st.integers(-3, 3)) * _DAY).strftime("%Y%m%dT%H%M%S")
    rule = draw(st.sampled_from(_RULES)).format(until=until)
    skipped = draw(st.lists(st.integers(0, 60).map(lambda k: first + k * _DAY), max_size=3))
    return RecurringHours.every(
        rule,
        first,
        hours,
        zone,
        except_days=skipped,
        closed=draw(st.booleans()),
        reason=draw(st.sampled_from(("", "market day", "staff meeting"))),
    )


@st.composite
def schedules(
    draw: st.DrawFn,
    zones: st.SearchStrategy[str] | None = None,
    *,
    around: date | None = None,
) -> Schedule:
    """
    Draw a `Schedule` in a zone of `DST_ZONES` (or of *zones*) with overrides, time off and recurring rules.

    Overrides, time off and recurrences are drawn within days of *around* (by default a local date of one of
    the zone's DST transitions, or any date in 2010–2030), so that windows near that date meet them.
    """
    zone = draw(zones if zones is not None else st.sampled_from(DST_ZONES))
    anchor = around if around is not None else draw(_anchor_dates(zone))
    override_days = draw(st.sets(st.integers(-4, 4), max_size=3))
    overrides = [
        DateOverride(anchor + k * _DAY, draw(st.lists(time_ranges(), max_size=2))) for k in sorted(override_days)
    ]
    return Schedule(
        zone,
        draw(weekly_hours()),
        overrides,
        draw(st.lists(_time_off(zone, anchor), max_size=2)),
        draw(st.lists(_recurring(zone, anchor), max_size=2)),
    )


@st.composite
def schedule_windows(
    draw: st.DrawFn,
    zones: st.SearchStrategy[str] | None = None,
    *,
    max_days: int = 4,
) -> tuple[Schedule, Interval]:
    """
    Draw a `Schedule` and a window of whole minutes, up to *max_days* long, around the same anchor.

    The anchor is one of the zone's real DST transitions (2010–2030) most of the time, else any instant in
    those years; the schedule's overrides, time off and recurrences are drawn near it too.
    """
    zone = draw(zones if zones is not None else st.sampled_from(DST_ZONES))
    tz = ZoneInfo(zone)
    transitions = dst_transitions(zone)
    if transitions and draw(st.integers(0, 4)) > 0:
        anchor = draw(st.sampled_from(transitions))
    else:
        minutes = int((_LAST - _FIRST) / timedelta(minutes=1))
        anchor = _FIRST + timedelta(minutes=draw(st.integers(0, minutes)))
    start = anchor + timedelta(minutes=draw(st.integers(-3 * 1440, 1440)))
    end = start + timedelta(minutes=draw(st.integers(1, max_days * 1440)))
    schedule = draw(schedules(st.just(zone), around=anchor.astimezone(tz).date()))
    return schedule, Interval(start.astimezone(tz), end.astimezone(tz))
