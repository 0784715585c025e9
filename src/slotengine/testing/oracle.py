"""
Brute-force oracles: slow, obviously right answers to test slotengine's fast code against.

An oracle answers the same question as the code under test by the most naive method there is, so that a
reader can check it by eye and a property test can compare the two on thousands of drawn inputs (hypothesis'
agreement tests; h11's ``test_against_stdlib_http``). Oracles share no code with what they check: the ones
here never look at an `IntervalSet`'s bounds, never bisect, and never merge intervals cleverly.

**The minute grid.** An interval set becomes the Python `frozenset` of the *minutes* it covers, each named by
its index since 1970-01-01 00:00 UTC (minute ``m`` is the instant range ``[m, m + 1)`` minutes). Half-open
intervals on whole minutes map onto such sets exactly, so set algebra on minutes is set algebra on time:
union is ``|``, intersection ``&``, difference ``-``, and "an instant is in the set" is "its minute is".
Every function refuses, with `ValueError`, a bound that is not on a whole minute rather than round it: the
strategies in `slotengine.testing.strategies` draw whole minutes, and the oracle must never be approximately
right. Keep drawn windows to a few days: a day is only 1,440 minutes, but 1970–2200 is 121 million.

**Capacity.** A list of ``(interval, units)`` loads becomes a `dict` from minute to total units, built by
adding every load to every minute it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from slotengine.intervals import Interval, IntervalSet
from slotengine.testing._schedule_oracle import schedule_open_minutes as schedule_open_minutes
from slotengine.testing._solver_oracle import oracle_slot_starts as oracle_slot_starts
from slotengine.testing._solver_oracle import oracle_valid_assignment as oracle_valid_assignment

__all__ = [
    "MINUTE",
    "complement",
    "contains",
    "difference",
    "instant_of",
    "intersection",
    "interval_set_from_minutes",
    "intervals_from_minutes",
    "load_by_minute",
    "max_load",
    "minute_of",
    "minute_set",
    "minutes_of",
    "oracle_slot_starts",
    "oracle_valid_assignment",
    "overlaps",
    "schedule_open_minutes",
    "steps_by_minute",
    "total_duration",
    "union",
    "where_fits",
    "widen",
]

MINUTE = timedelta(minutes=1)
"""One step of the oracles' grid."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# slotengine accepts instants from 1970 to 2200: `widen` cuts at these minutes, as `IntervalSet.widen` does.
_FIRST_MINUTE = 0
_LAST_MINUTE = (datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH) // MINUTE


def minute_of(instant: datetime) -> int:
    """
    Return the index of the minute that contains the aware *instant* (minutes since 1970-01-01 UTC).

    Seconds and microseconds are allowed here: an instant is in an interval set on the grid exactly when its
    minute is, so the oracle may take the floor.
    """
    return (instant - _EPOCH) // MINUTE


def _exact_minute(instant: datetime) -> int:
    delta = instant - _EPOCH
    if delta % MINUTE:
        msg = f"the minute oracle works on whole minutes; {instant.isoformat()} is not one"
        raise ValueError(msg)
    return delta // MINUTE


def _exact_minutes(duration: timedelta) -> int:
    if duration % MINUTE:
        msg = f"the minute oracle works on whole minutes; {duration} is not"
        raise ValueError(msg)
    return duration // MINUTE


def instant_of(minute: int) -> datetime:
    """Return the UTC instant at which minute *minute* begins."""
    return _EPOCH + minute * MINUTE


def minutes_of(interval: Interval) -> range:
    """
    Return the minutes of one *interval*, in order.

    Raises:
        ValueError: a bound of *interval* is not on a whole minute.
    """
    return range(_exact_minute(interval.start), _exact_minute(interval.end))


def minute_set(intervals: IntervalSet | Interval | Iterable[Interval]) -> frozenset[int]:
    """
    Return the set of minutes covered by an interval set, one interval, or any iterable of intervals.

    Overlapping or touching intervals need no merging: a minute is in the union of sets whether it came once
    or twice.

    Raises:
        ValueError: a bound is not on a whole minute.
    """
    items: Iterable[Interval] = [intervals] if isinstance(intervals, Interval) else intervals
    out: set[int] = set()
    for interval in items:
        out.update(minutes_of(interval))
    return frozenset(out)


def intervals_from_minutes(minutes: Iterable[int]) -> list[Interval]:
    """
    Return the maximal runs of consecutive minutes as intervals, in time order.

    This is what iterating a normalized set must yield: no two runs touch, because a gap of at least one
    minute separates them.
    """
    out: list[Interval] = []
    run: tuple[int, int] | None = None  # (first minute, last minute)
    for minute in sorted(set(minutes)):
        if run is not None and minute == run[1] + 1:
            run = (run[0], minute)
            continue
        if run is not None:
            out.append(Interval(instant_of(run[0]), instant_of(run[1] + 1)))
        run = (minute, minute)
    if run is not None:
        out.append(Interval(instant_of(run[0]), instant_of(run[1] + 1)))
    return out


def interval_set_from_minutes(minutes: Iterable[int]) -> IntervalSet:
    """
    Return the `IntervalSet` that covers exactly *minutes*.

    It is built from `intervals_from_minutes`, runs that neither overlap nor touch, so the set's own
    normalization has nothing to do; comparing it with ``==`` to a computed set checks that the computed one
    is normalized too.
    """
    return IntervalSet(intervals_from_minutes(minutes))


def union(*sets: IntervalSet) -> frozenset[int]:
    """Return the minutes in any of *sets*."""
    out: set[int] = set()
    for one in sets:
        out |= minute_set(one)
    return frozenset(out)


def intersection(first: IntervalSet, *others: IntervalSet) -> frozenset[int]:
    """Return the minutes in *first* and in every one of *others*."""
    out = set(minute_set(first))
    for other in others:
        out &= minute_set(other)
    return frozenset(out)


def difference(first: IntervalSet, *others: IntervalSet) -> frozenset[int]:
    """Return the minutes in *first* and in none of *others*."""
    out = set(minute_set(first))
    for other in others:
        out -= minute_set(other)
    return frozenset(out)


def complement(interval_set: IntervalSet, within: Interval) -> frozenset[int]:
    """Return the minutes of *within* that are not in *interval_set*."""
    return frozenset(minutes_of(within)) - minute_set(interval_set)


def contains(interval_set: IntervalSet, item: datetime | Interval | IntervalSet) -> bool:
    """Return whether an instant, or every minute of an interval or a set, is in *interval_set*."""
    covered = minute_set(interval_set)
    if isinstance(item, datetime):
        return minute_of(item) in covered
    return minute_set(item) <= covered


def overlaps(interval_set: IntervalSet, other: Interval | IntervalSet) -> bool:
    """Return whether *interval_set* and *other* share at least one minute."""
    return bool(minute_set(interval_set) & minute_set(other))


def total_duration(interval_set: IntervalSet) -> timedelta:
    """Return the time covered by *interval_set*: one minute per minute."""
    return len(minute_set(interval_set)) * MINUTE


def widen(interval_set: IntervalSet, before: timedelta, after: timedelta) -> frozenset[int]:
    """
    Return the minutes of every run of the set's minutes, stretched by *before* and *after*.

    A run ``[a, b)`` of consecutive minutes becomes ``[a - before, b + after)``; runs that come to overlap
    simply share minutes. The result is cut to 1970–2200, as slotengine's is.

    Raises:
        ValueError: *before* or *after* is not a whole number of minutes.
    """
    lead, trail = _exact_minutes(before), _exact_minutes(after)
    out: set[int] = set()
    for run in intervals_from_minutes(minute_set(interval_set)):
        first, end = minutes_of(run).start - lead, minutes_of(run).stop + trail
        out.update(range(max(first, _FIRST_MINUTE), min(end, _LAST_MINUTE)))
    return frozenset(out)


def load_by_minute(loads: Iterable[tuple[Interval, int]]) -> dict[int, int]:
    """
    Return the total units taken at each minute by *loads*; minutes with no load are absent.

    Raises:
        ValueError: a bound is not on a whole minute.
    """
    out: dict[int, int] = {}
    for interval, units in loads:
        for minute in minutes_of(interval):
            out[minute] = out.get(minute, 0) + units
    return out


def max_load(load: Mapping[int, int], interval: Interval) -> int:
    """Return the highest load of any minute of *interval* (0 where nothing is booked)."""
    return max(load.get(minute, 0) for minute in minutes_of(interval))


def where_fits(load: Mapping[int, int], units: int, capacity: int, within: Interval) -> frozenset[int]:
    """Return the minutes of *within* where ``load + units <= capacity``."""
    return frozenset(minute for minute in minutes_of(within) if load.get(minute, 0) + units <= capacity)


def steps_by_minute(load: Mapping[int, int]) -> list[tuple[Interval, int]]:
    """
    Return the runs of consecutive minutes with the same non-zero load, as ``(interval, load)`` in order.

    This is what `CapacityProfile.steps` must yield.
    """
    out: list[tuple[Interval, int]] = []
    run: tuple[int, int, int] | None = None  # (first minute, last minute, load)
    for minute in sorted(minute for minute, units in load.items() if units):
        units = load[minute]
        if run is not None and minute == run[1] + 1 and units == run[2]:
            run = (run[0], minute, units)
            continue
        if run is not None:
            out.append((Interval(instant_of(run[0]), instant_of(run[1] + 1)), run[2]))
        run = (minute, minute, units)
    if run is not None:
        out.append((Interval(instant_of(run[0]), instant_of(run[1] + 1)), run[2]))
    return out
