"""
Intervals of time and normalized, immutable sets of them.

Every interval is half-open, ``[start, end)``: it contains its start and not its end, so a booking that ends
at 10:00 and one that starts at 10:00 do not overlap. An `IntervalSet` is always normalized (sorted, no two
pieces touching or overlapping), so two sets covering the same instants are equal.

Inside, a set is one flat tuple of bounds in integer microseconds since the Unix epoch,
``(start0, end0, start1, end1, ...)``: operations are linear merges and lookups are one `bisect`, never
pairwise loops. `portion` is used only to convert to and from its types (`IntervalSet.to_portion`,
`IntervalSet.from_portion`); it is untyped, so it stays inside this module.

`CapacityProfile` is the step function of load over time that capacity checks need: built from weighted
intervals, it answers "what is the load at t", "the most load during [a, b)" and "where is load + k ≤ c".
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from slotengine._time import EPOCH, MAX_INSTANT, MIN_INSTANT, from_micros, to_micros, to_utc
from slotengine.errors import InvalidInputError, InvalidIntervalError

__all__ = ["CapacityProfile", "Interval", "IntervalSet"]

_MIN_US: Final = to_micros(MIN_INSTANT)
_MAX_US: Final = to_micros(MAX_INSTANT)
_ONE_US: Final = timedelta(microseconds=1)


def _fmt(instant: datetime) -> str:
    text = instant.strftime("%Y-%m-%d %H:%M")
    if instant.second or instant.microsecond:
        text += instant.strftime(":%S")
        if instant.microsecond:
            text += f".{instant.microsecond:06d}"
    return text + "Z"


def _instant_us(value: object, name: str) -> int:
    return to_micros(to_utc(value, name))


@attrs.frozen(repr=False)
class Interval:
    """
    A half-open span of time ``[start, end)`` between two aware instants, stored in UTC.

    Raises:
        NaiveDatetimeError: a bound has no time zone.
        InvalidIntervalError: *end* is not after *start*.
    """

    start: datetime = attrs.field(converter=lambda v: to_utc(v, "start"))
    end: datetime = attrs.field(converter=lambda v: to_utc(v, "end"))

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            msg = (
                f"an interval must end after it starts, got start {self.start.isoformat()} "
                f"and end {self.end.isoformat()}"
            )
            raise InvalidIntervalError(msg, start=self.start, end=self.end)

    @classmethod
    def starting(cls, start: datetime, duration: timedelta) -> Interval:
        """Return the interval of *duration* that begins at *start*."""
        return cls(start, start + duration)

    @property
    def duration(self) -> timedelta:
        """The elapsed time from start to end (a DST change does not stretch or shrink it)."""
        return self.end - self.start

    def contains(self, item: datetime | Interval) -> bool:
        """Return whether an instant, or a whole interval, lies inside this interval."""
        if isinstance(item, Interval):
            return self.start <= item.start and item.end <= self.end
        instant = to_utc(item, "instant")
        return self.start <= instant < self.end

    def __contains__(self, item: object) -> bool:
        return self.contains(item)  # type: ignore[arg-type]

    def overlaps(self, other: Interval) -> bool:
        """Return whether the two intervals share at least one instant (touching ones do not)."""
        return self.start < other.end and other.start < self.end

    def __repr__(self) -> str:
        return f"Interval({_fmt(self.start)} – {_fmt(self.end)})"


def _normalize(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    """Sort and merge ``(start, end)`` pairs (each with start < end) into flat normalized bounds."""
    if not pairs:
        return ()
    pairs.sort()
    out: list[int] = []
    cur_start, cur_end = pairs[0]
    for start, end in pairs:
        if start <= cur_end:
            if end > cur_end:
                cur_end = end
        else:
            out.append(cur_start)
            out.append(cur_end)
            cur_start, cur_end = start, end
    out.append(cur_start)
    out.append(cur_end)
    return tuple(out)


def _pairs(bounds: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    it = iter(bounds)
    return zip(it, it, strict=True)


def _intersect(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        start = a[i] if a[i] > b[j] else b[j]
        end = a[i + 1] if a[i + 1] < b[j + 1] else b[j + 1]
        if start < end:
            out.append(start)
            out.append(end)
        if a[i + 1] < b[j + 1]:
            i += 2
        else:
            j += 2
    return tuple(out)


def _subtract(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    j = 0
    nb = len(b)
    for i in range(0, len(a), 2):
        start, end = a[i], a[i + 1]
        while j < nb and b[j + 1] <= start:
            j += 2
        k = j
        while k < nb and b[k] < end:
            if b[k] > start:
                out.append(start)
                out.append(b[k])
            start = b[k + 1]
            if start >= end:
                break
            k += 2
        if start < end:
            out.append(start)
            out.append(end)
    return tuple(out)


def _unite(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if not a:
        return b
    if not b:
        return a
    # Two sorted runs: timsort merges them in linear time.
    return _normalize([*_pairs(a), *_pairs(b)])


class IntervalSet:
    """
    An immutable, normalized set of half-open time intervals.

    Build one from `Interval` values or ``(start, end)`` pairs of aware datetimes; overlapping and touching
    pieces merge. Operators and named methods are twins: ``|`` `union`, ``&`` `intersection`,
    ``-`` `difference`, ``~`` `complement` (within 1970–2200, or any window you name), ``in`` `contains`.
    Iterating yields `Interval` values in time order.

    Raises:
        NaiveDatetimeError: a bound has no time zone.
        InvalidIntervalError: a pair does not end after it starts.
    """

    __slots__ = ("__weakref__", "_bounds")

    _bounds: tuple[int, ...]

    def __init__(self, intervals: Iterable[Interval | tuple[datetime, datetime]] = ()) -> None:
        pairs: list[tuple[int, int]] = []
        for item in intervals:
            if isinstance(item, Interval):
                pairs.append((to_micros(item.start), to_micros(item.end)))
                continue
            try:
                start, end = item
            except (TypeError, ValueError):
                msg = f"an IntervalSet is built from Interval values or (start, end) pairs, not {item!r}"
                raise InvalidIntervalError(msg) from None
            s_us, e_us = _instant_us(start, "start"), _instant_us(end, "end")
            if e_us <= s_us:
                msg = f"an interval must end after it starts, got ({start.isoformat()}, {end.isoformat()})"
                raise InvalidIntervalError(msg, start=start, end=end)
            pairs.append((s_us, e_us))
        self._bounds = _normalize(pairs)

    @classmethod
    def _from_bounds(cls, bounds: tuple[int, ...]) -> IntervalSet:
        """Wrap bounds that are already normalized (internal fast path: no checks)."""
        new = cls.__new__(cls)
        new._bounds = bounds
        return new

    @classmethod
    def _from_micros(cls, pairs: Iterable[tuple[int, int]]) -> IntervalSet:
        """Build from ``(start_us, end_us)`` pairs in any order; pairs with ``end <= start`` are dropped."""
        return cls._from_bounds(_normalize([(s, e) for s, e in pairs if e > s]))

    @classmethod
    def of(cls, start: datetime, end: datetime) -> IntervalSet:
        """Return the set holding the single interval ``[start, end)``."""
        return cls([Interval(start, end)])

    @classmethod
    def empty(cls) -> IntervalSet:
        """Return the set that holds no time at all."""
        return cls._from_bounds(())

    # --- conversion -------------------------------------------------------------------------------------

    @classmethod
    def from_portion(cls, value: Any) -> IntervalSet:
        """
        Build from a `portion.Interval` of aware datetimes.

        Only closed-open atoms (``P.closedopen``) map exactly onto slotengine's half-open intervals; empty
        atoms are skipped.

        Raises:
            InvalidIntervalError: an atom is not closed-open, or is unbounded.
        """
        import portion as P  # noqa: N812, PLC0415

        pairs: list[tuple[int, int]] = []
        for atom in value:
            if atom.empty:
                continue
            if atom.left is not P.CLOSED or atom.right is not P.OPEN:
                msg = f"only closed-open intervals [start, end) convert to an IntervalSet, got {atom!r}"
                raise InvalidIntervalError(msg)
            if atom.lower in (P.inf, -P.inf) or atom.upper in (P.inf, -P.inf):
                msg = f"an IntervalSet holds bounded time only, got {atom!r}"
                raise InvalidIntervalError(msg)
            pairs.append((_instant_us(atom.lower, "start"), _instant_us(atom.upper, "end")))
        return cls._from_micros(pairs)

    def to_portion(self) -> Any:
        """Return the same instants as a `portion.Interval` of closed-open atoms of UTC datetimes."""
        import portion as P  # noqa: N812, PLC0415

        return P.Interval(*(P.closedopen(iv.start, iv.end) for iv in self))

    def to_micros(self) -> tuple[tuple[int, int], ...]:
        """Return the intervals as ``(start, end)`` pairs of integer microseconds since the Unix epoch."""
        return tuple(_pairs(self._bounds))

    # --- the set algebra --------------------------------------------------------------------------------

    def union(self, *others: IntervalSet) -> IntervalSet:
        """Return the instants in this set or in any of *others*."""
        bounds = self._bounds
        for other in others:
            bounds = _unite(bounds, _check_set(other)._bounds)
        return IntervalSet._from_bounds(bounds)

    def intersection(self, *others: IntervalSet) -> IntervalSet:
        """Return the instants in this set and in every one of *others*."""
        bounds = self._bounds
        for other in others:
            bounds = _intersect(bounds, _check_set(other)._bounds)
        return IntervalSet._from_bounds(bounds)

    def difference(self, *others: IntervalSet) -> IntervalSet:
        """Return the instants in this set and in none of *others*."""
        bounds = self._bounds
        for other in others:
            bounds = _subtract(bounds, _check_set(other)._bounds)
        return IntervalSet._from_bounds(bounds)

    def complement(self, within: Interval | None = None) -> IntervalSet:
        """Return the instants of *within* (default: all of 1970–2200) that are not in this set."""
        if within is None:
            window = (_MIN_US, _MAX_US)
        else:
            window = (to_micros(within.start), to_micros(within.end))
        return IntervalSet._from_bounds(_subtract(window, self._bounds))

    def __or__(self, other: IntervalSet) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.union(other)

    def __and__(self, other: IntervalSet) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.intersection(other)

    def __sub__(self, other: IntervalSet) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.difference(other)

    def __invert__(self) -> IntervalSet:
        return self.complement()

    def widen(self, before: timedelta = timedelta(0), after: timedelta = timedelta(0)) -> IntervalSet:
        """
        Return every interval stretched by *before* at its start and *after* at its end, merged.

        This is how buffers around bookings become blocked time.

        Raises:
            InvalidInputError: *before* or *after* is negative.
        """
        if before < timedelta(0) or after < timedelta(0):
            msg = f"widen() takes non-negative amounts of time, got before={before} and after={after}"
            raise InvalidInputError(msg)
        b, a = before // _ONE_US, after // _ONE_US
        if not (a or b):
            return self
        return IntervalSet._from_micros((s - b, e + a) for s, e in _pairs(self._bounds))

    # --- queries ----------------------------------------------------------------------------------------

    def contains(self, item: datetime | Interval | IntervalSet) -> bool:
        """Return whether an instant, an interval, or every instant of another set lies in this set."""
        bounds = self._bounds
        if isinstance(item, IntervalSet):
            return not _subtract(item._bounds, bounds)
        if isinstance(item, Interval):
            start, end = to_micros(item.start), to_micros(item.end)
            i = bisect_right(bounds, start)
            return i % 2 == 1 and end <= bounds[i]
        instant = _instant_us(item, "instant")
        return bisect_right(bounds, instant) % 2 == 1

    def __contains__(self, item: object) -> bool:
        return self.contains(item)  # type: ignore[arg-type]

    def overlaps(self, other: Interval | IntervalSet) -> bool:
        """Return whether this set shares at least one instant with an interval or another set."""
        if isinstance(other, Interval):
            start, end = to_micros(other.start), to_micros(other.end)
            i = bisect_right(self._bounds, start)
            # Inside a piece at start, or a piece begins before end.
            return i % 2 == 1 or (i < len(self._bounds) and self._bounds[i] < end)
        return bool(_intersect(self._bounds, _check_set(other)._bounds))

    def overlapping(self, interval: Interval) -> IntervalSet:
        """Return the pieces of this set that overlap *interval*, whole (not clipped to it)."""
        start, end = to_micros(interval.start), to_micros(interval.end)
        lo = bisect_right(self._bounds, start)
        lo -= lo % 2
        hi = bisect_left(self._bounds, end)
        hi += hi % 2
        return IntervalSet._from_bounds(self._bounds[lo:hi])

    @property
    def total_duration(self) -> timedelta:
        """The sum of the lengths of all intervals."""
        b = self._bounds
        return timedelta(microseconds=sum(b[1::2]) - sum(b[0::2]))

    @property
    def start(self) -> datetime | None:
        """The earliest instant in the set, or None if it is empty."""
        return from_micros(self._bounds[0]) if self._bounds else None

    @property
    def end(self) -> datetime | None:
        """The end of the latest interval (not itself in the set), or None if the set is empty."""
        return from_micros(self._bounds[-1]) if self._bounds else None

    def __iter__(self) -> Iterator[Interval]:
        delta = timedelta
        for s, e in _pairs(self._bounds):
            yield Interval(EPOCH + delta(microseconds=s), EPOCH + delta(microseconds=e))

    def __len__(self) -> int:
        return len(self._bounds) // 2

    def __bool__(self) -> bool:
        return bool(self._bounds)

    def __getitem__(self, index: int) -> Interval:
        s, e = self.to_micros()[index]
        return Interval(from_micros(s), from_micros(e))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self._bounds == other._bounds

    def __hash__(self) -> int:
        return hash(self._bounds)

    def __repr__(self) -> str:
        pieces = ", ".join(f"{_fmt(iv.start)} – {_fmt(iv.end)}" for iv in self)
        return f"IntervalSet([{pieces}])"

    def __reduce__(self) -> tuple[Any, ...]:
        return (IntervalSet._from_bounds, (self._bounds,))


def _check_set(value: object) -> IntervalSet:
    if not isinstance(value, IntervalSet):
        msg = f"expected an IntervalSet, got {type(value).__name__}"
        raise InvalidInputError(msg)
    return value


class CapacityProfile:
    """
    A step function of load over time: how many units are taken at each instant.

    Built from weighted intervals (a booking of 3 seats over ``[10:00, 11:00)`` adds 3 there); load is 0
    outside every interval. It answers the capacity questions of the solver without rescanning bookings:
    `load_at`, `max_load` over an interval, and `where_fits` (where ``load + units <= capacity``).

    Raises:
        InvalidInputError: a weight is not a positive integer.
    """

    __slots__ = ("_levels", "_times")

    _times: tuple[int, ...]
    _levels: tuple[int, ...]

    def __init__(self, loads: Iterable[tuple[Interval, int]] = ()) -> None:
        events: list[tuple[int, int]] = []
        for interval, units in loads:
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                msg = f"a load must be a positive whole number of units, got {units!r}"
                raise InvalidInputError(msg)
            events.append((to_micros(interval.start), units))
            events.append((to_micros(interval.end), -units))
        self._times, self._levels = _sweep(events)

    @classmethod
    def _from_micros(cls, loads: Iterable[tuple[int, int, int]]) -> CapacityProfile:
        """Build from ``(start_us, end_us, units)`` triples (internal fast path: no checks)."""
        events: list[tuple[int, int]] = []
        for start, end, units in loads:
            events.append((start, units))
            events.append((end, -units))
        new = cls.__new__(cls)
        new._times, new._levels = _sweep(events)
        return new

    def load_at(self, instant: datetime) -> int:
        """Return the load at *instant*."""
        i = bisect_right(self._times, _instant_us(instant, "instant"))
        return self._levels[i - 1] if i else 0

    def max_load(self, interval: Interval) -> int:
        """Return the highest load at any instant of *interval*."""
        return self._max_load_us(to_micros(interval.start), to_micros(interval.end))

    def _max_load_us(self, start: int, end: int) -> int:
        times, levels = self._times, self._levels
        i = bisect_right(times, start)
        peak = levels[i - 1] if i else 0
        n = len(times)
        while i < n and times[i] < end:
            if levels[i] > peak:
                peak = levels[i]
            i += 1
        return peak

    def where_fits(self, units: int, capacity: int, within: Interval) -> IntervalSet:
        """Return the instants of *within* where ``load + units <= capacity``."""
        return IntervalSet._from_bounds(
            self._where_at_most_us(capacity - units, to_micros(within.start), to_micros(within.end))
        )

    def where_at_most(self, limit: int, within: Interval) -> IntervalSet:
        """Return the instants of *within* where the load is at most *limit*."""
        return self.where_fits(0, limit, within)

    def _where_at_most_us(self, limit: int, start: int, end: int) -> tuple[int, ...]:
        if limit < 0:
            return ()
        times, levels = self._times, self._levels
        pairs: list[tuple[int, int]] = []
        i = bisect_right(times, start)
        cursor = start
        level = levels[i - 1] if i else 0
        n = len(times)
        while cursor < end:
            nxt = times[i] if i < n and times[i] < end else end
            if level <= limit and nxt > cursor:
                pairs.append((cursor, nxt))
            if nxt >= end:
                break
            cursor = nxt
            level = levels[i]
            i += 1
        return _normalize(pairs)

    @property
    def peak(self) -> int:
        """The highest load anywhere."""
        return max(self._levels, default=0)

    def steps(self) -> Iterator[tuple[Interval, int]]:
        """Yield ``(interval, load)`` for every stretch of non-zero constant load, in time order."""
        times, levels = self._times, self._levels
        for i in range(len(times) - 1):
            if levels[i]:
                yield Interval(from_micros(times[i]), from_micros(times[i + 1])), levels[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapacityProfile):
            return NotImplemented
        return (self._times, self._levels) == (other._times, other._levels)

    def __hash__(self) -> int:
        return hash((self._times, self._levels))

    def __repr__(self) -> str:
        steps = ", ".join(f"{_fmt(iv.start)} – {_fmt(iv.end)}: {load}" for iv, load in self.steps())
        return f"CapacityProfile([{steps}])"


def _sweep(events: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Turn ``(time, delta)`` events into breakpoints and the level that holds from each one on."""
    events.sort()
    times: list[int] = []
    levels: list[int] = []
    level = 0
    i, n = 0, len(events)
    while i < n:
        t = events[i][0]
        while i < n and events[i][0] == t:
            level += events[i][1]
            i += 1
        if levels and levels[-1] == level:
            continue
        if not levels and level == 0:
            continue
        times.append(t)
        levels.append(level)
    return tuple(times), tuple(levels)

