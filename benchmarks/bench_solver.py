"""
The availability solver against a portion pipeline and a hand-written sweep, side by side: workloads W1–W6.

Run it with ``python benchmarks/bench_solver.py`` (about 1.5 minutes on a quiet 2-core machine, up to 3 on a
busy one) or ``--quick`` (under a minute: fewer repeats and point queries); ``--only W3,W6`` runs a subset.
For each workload it prints the median wall time of several interleaved repeats (the order rotates every
repeat, so drift of the machine hits everyone alike; a run shorter than 20 ms is repeated back to back
within a sample and averaged), the ratios slotengine / sweep and portion / slotengine, and the peak memory
tracemalloc sees during one extra, untimed run of each.

The implementations, all given the same data, built beforehand (seed 20260401, so every run draws the same):

* **slotengine** through its public API. Timed: building ``Availability(resources, hours, loads, now=...)``
  *and* the query, as a request that builds its view of the business and asks once would. The *raw* mode is
  `Availability.slot_starts` (integer microseconds), the *object* mode `Availability.slots` (attrs `Slot`
  values with assignments); *warm* rows ask again an `Availability` built (and asked) before, to show what
  the cached plan of a long-lived view costs. Open hours are `IntervalSet` values of aware UTC datetimes
  (local wall hours resolved with ``slotengine.localize`` where a workload names a zone); loads are
  `Load` values, which convert their instants to integers once, when they are made (as a database row
  turns into one). Making the inputs is not timed for anyone.
* **sweep**, the practical limit: a minimal hand-written sweep on the simplest subset of the same data. Its
  inputs are ``(start, end)`` int pairs converted beforehand; timed: read them, sort, merge, walk the slot grid
  once with a persistent pointer and write one datetime per free slot. It knows the workload's shape (one
  need, no notice, capacity 1 or a fixed one) and does nothing more.
* **portion**, a straightforward baseline: open hours minus busy time as ``P.Interval(*atoms)`` sets
  (never ``|=`` in a loop), cut into slots on the same grid; for W5 (capacity 20) a per-slot overlap count
  with the bookings sorted by start and a bisection to the slot's neighbourhood.

Before timing, each workload checks that the three give the same answer and prints ``agree: True``.

The workloads:

* **W1**: one resource, 30 days, Mon–Fri 9:00–18:00 UTC, 30-minute slots; 0, 100 and 1,000 bookings.
* **W2**: one resource for a year in Europe/Berlin, Mon–Fri 9:00–12:30 and 13:30–18:00 (a lunch break), 10
  holidays, 30-minute slots with 10-minute buffers before and after (inside hours), 10,000 busy intervals
  spread over the whole year (10–45 minutes, also with 10-minute buffers).
* **W3**: 500 resources of one type in Berlin, New York and Tokyo, Mon–Fri 9:00–18:00 local, 30 days,
  20,000 bookings, 30-minute slots. (i) all slots of every resource: one ``slot_starts(pin=[rid])`` (or
  ``slots(pin=[rid])``) per resource on one `Availability`; (ii) the first 10 slots of any resource of the
  pool: ``slots(..., limit=10)`` for ``Need(type="agent")``.
* **W4**: car + driver: 50 cars (7:00–21:00) and 80 drivers (shifts 6:00–14:00 or 13:00–21:00) in Paris,
  14 days, a 2-hour service on a 30-minute grid that needs one of each, 5,000 bookings of a car and a driver
  (10,000 loads).
* **W5**: a room of capacity 20, open 7:00–23:00 UTC every day for a year, 50,000 bookings of 1–3 seats
  (30 minutes to 3 hours): the seats left in each of the 5,840 one-hour slots
  (`Availability.remaining` per slot).
* **W6**: point queries against W2's one-year index: 100,000 ``is_bookable(service, start)`` (half on
  the grid, half anywhere on 5-minute marks) and 100,000 ``next_start(service, after)`` (raw mode, integer
  microseconds) and ``next_available(service, after)`` (a `Slot`) from the same instants. The sweep builds
  the bookable starts of the year once, then answers each question with one bisection, writing one datetime
  per answer; for the object mode it writes a `Record` (start, end, resource: a plain slotted class, the
  least object that says what a `Slot` says), and so does portion. The questions are aware UTC datetimes
  for slotengine and portion, and ints converted beforehand for the sweep.

Times on a shared machine drift by up to ±50 % between runs; compare the ratios of one run, not the absolute
times of two runs.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import portion as P  # noqa: N812

from slotengine import Interval, IntervalSet, localize
from slotengine.availability import Availability, Load
from slotengine.model import Need, Resource, Service

SEED = 20260401
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
NOW = datetime(2025, 12, 1, tzinfo=UTC)

Pairs = list[tuple[datetime, datetime]]
IntPairs = list[tuple[int, int]]


def us(instant: datetime) -> int:
    return (instant - EPOCH) // US


def dt(micros: int) -> datetime:
    return EPOCH + micros * US


# --- building the data --------------------------------------------------------------------------------------


def wall_hours(
    zone: ZoneInfo | None,
    first: date,
    days: int,
    ranges: Sequence[tuple[clock, clock]],
    *,
    weekdays: Iterable[int] = range(5),
    closed: Iterable[date] = (),
) -> Pairs:
    """Open hours from local wall ranges, day by day, as aware UTC datetimes (one shared tzinfo)."""
    open_days = set(weekdays)
    shut = set(closed)
    out: Pairs = []
    for k in range(days):
        day = first + timedelta(days=k)
        if day.weekday() not in open_days or day in shut:
            continue
        for a, b in ranges:
            wa, wb = datetime.combine(day, a), datetime.combine(day, b)
            if zone is None:
                out.append((wa.replace(tzinfo=UTC), wb.replace(tzinfo=UTC)))
            else:
                out.append((localize(wa, zone), localize(wb, zone)))
    return out


def bookings_in(rng: random.Random, hours: Pairs, n: int, lengths: Sequence[int], grid: int = 15) -> Pairs:
    """N bookings that start on a *grid*-minute mark inside the open hours, each one of *lengths* minutes."""
    out: Pairs = []
    for _ in range(n):
        a, b = hours[rng.randrange(len(hours))]
        marks = (b - a) // (grid * MIN)
        start = a + rng.randrange(marks) * grid * MIN
        out.append((start, start + rng.choice(lengths) * MIN))
    return out


def to_ints(pairs: Pairs) -> IntPairs:
    return [(us(a), us(b)) for a, b in pairs]


# --- the practical limit: minimal sweeps on int pairs ------------------------------------------------------


def merged(busy: IntPairs) -> tuple[list[int], list[int]]:
    """Sort and merge busy intervals: parallel lists of starts and ends."""
    starts: list[int] = []
    ends: list[int] = []
    for s, e in sorted(busy):
        if ends and s <= ends[-1]:
            if e > ends[-1]:
                ends[-1] = e
        else:
            starts.append(s)
            ends.append(e)
    return starts, ends


def sweep_free(
    hours: IntPairs, busy: IntPairs, length: int, step: int, before: int = 0, after: int = 0
) -> list[datetime]:
    """One resource: walk each open stretch's grid with one persistent pointer into the merged busy time."""
    bs, be = merged(busy)
    n = len(bs)
    out: list[datetime] = []
    j = 0
    for p, q in hours:
        t = p + before
        last = q - length - after
        while t <= last:
            x0 = t - before
            while j < n and be[j] <= x0:
                j += 1
            if j < n and bs[j] < t + length + after:
                t += -((t - be[j] - before) // step) * step  # the first grid start clear of this busy piece
                continue
            out.append(EPOCH + t * US)
            t += step
    return out


def sweep_by_resource(
    hours: dict[str, IntPairs], busy: list[tuple[str, int, int]], length: int, step: int
) -> dict[str, list[datetime]]:
    by: dict[str, IntPairs] = {rid: [] for rid in hours}
    for rid, s, e in busy:
        by[rid].append((s, e))
    return {rid: sweep_free(hours[rid], by[rid], length, step) for rid in hours}


class Walker:
    """One resource's open hours and merged busy time, with persistent pointers for increasing times."""

    __slots__ = ("be", "bj", "bs", "hj", "hours")

    def __init__(self, hours: IntPairs, busy: IntPairs) -> None:
        self.hours = hours
        self.bs, self.be = merged(busy)
        self.hj = 0
        self.bj = 0

    def free(self, x0: int, x1: int) -> bool:
        hours, hj = self.hours, self.hj
        while hj < len(hours) and hours[hj][1] <= x0:
            hj += 1
        self.hj = hj
        if hj == len(hours) or not hours[hj][0] <= x0 or x1 > hours[hj][1]:
            return False
        be, bj = self.be, self.bj
        while bj < len(be) and be[bj] <= x0:
            bj += 1
        self.bj = bj
        return bj == len(be) or self.bs[bj] >= x1


def grid_union(hours: Iterable[IntPairs], length: int, step: int) -> list[int]:
    """Every start on the grid of any open stretch, in order."""
    pieces = {piece for h in hours for piece in h}
    return sorted({t for p, q in pieces for t in range(p, q - length + 1, step)})


def sweep_first_of_pool(
    pool: list[str], hours: dict[str, IntPairs], busy: list[tuple[str, int, int]], length: int, step: int, limit: int
) -> list[tuple[datetime, str]]:
    """The first *limit* starts that any resource of the pool (tried in order) can serve."""
    by: dict[str, IntPairs] = {rid: [] for rid in pool}
    for rid, s, e in busy:
        by[rid].append((s, e))
    walkers: dict[str, Walker] = {}
    out: list[tuple[datetime, str]] = []
    for t in grid_union((hours[rid] for rid in pool), length, step):
        for rid in pool:
            w = walkers.get(rid)
            if w is None:
                w = walkers[rid] = Walker(hours[rid], by[rid])
            if w.free(t, t + length):
                out.append((EPOCH + t * US, rid))
                break
        if len(out) == limit:
            break
    return out


def sweep_two_needs(
    cars: list[str],
    drivers: list[str],
    hours: dict[str, IntPairs],
    busy: list[tuple[str, int, int]],
    length: int,
    step: int,
) -> list[tuple[datetime, str, str]]:
    """Every start at which a car and a driver (first free of each, in order) are both free."""
    by: dict[str, IntPairs] = {rid: [] for rid in hours}
    for rid, s, e in busy:
        by[rid].append((s, e))
    walkers = {rid: Walker(hours[rid], by[rid]) for rid in hours}
    car_walkers = [(rid, walkers[rid]) for rid in cars]
    driver_walkers = [(rid, walkers[rid]) for rid in drivers]
    out: list[tuple[datetime, str, str]] = []
    for t in grid_union(hours.values(), length, step):
        end = t + length
        car = next((rid for rid, w in car_walkers if w.free(t, end)), None)
        if car is None:
            continue
        driver = next((rid for rid, w in driver_walkers if w.free(t, end)), None)
        if driver is not None:
            out.append((EPOCH + t * US, car, driver))
    return out


def sweep_remaining(slots: IntPairs, loads: list[tuple[int, int, int]], capacity: int) -> list[int]:
    """Seats left per slot: sort the load steps once, then walk the slots with one pointer."""
    events = sorted([(s, u) for s, _, u in loads] + [(e, -u) for _, e, u in loads])
    times: list[int] = []
    levels: list[int] = []
    level = 0
    for t, delta in events:
        level += delta
        if times and times[-1] == t:
            levels[-1] = level
        else:
            times.append(t)
            levels.append(level)
    out: list[int] = []
    i, n = 0, len(times)
    for a, b in slots:
        while i < n and times[i] <= a:
            i += 1
        peak = levels[i - 1] if i else 0
        k = i
        while k < n and times[k] < b:
            if levels[k] > peak:
                peak = levels[k]
            k += 1
        out.append(max(capacity - peak, 0))
    return out


class Record:
    """
    The least hand-written object that says what a `Slot` says: start, end and resource, as named fields.

    A plain slotted class (what a hand-written solver would return), so that it costs what any object of
    three fields costs, the garbage collector included; a tuple is cheaper only because CPython stops
    tracking tuples of untracked values.
    """

    __slots__ = ("end", "resource_id", "start")

    def __init__(self, start: datetime, end: datetime, resource_id: str) -> None:
        self.start = start
        self.end = end
        self.resource_id = resource_id


class SweepIndex:
    """W6's floor: the bookable starts of one resource as bounds, then one bisection per question."""

    def __init__(self, hours: IntPairs, busy: IntPairs, length: int, step: int, before: int, after: int) -> None:
        bs, be = merged(busy)
        bounds: list[int] = []
        j, n = 0, len(bs)
        for p, q in hours:
            # Free stretches inside [p, q), then the starts whose [t - before, t + length + after) fits in one.
            cursor = p
            while j < n and be[j] <= p:
                j += 1
            k = j
            free: IntPairs = []
            while k < n and bs[k] < q:
                if bs[k] > cursor:
                    free.append((cursor, bs[k]))
                cursor = max(cursor, be[k])
                k += 1
            if cursor < q:
                free.append((cursor, q))
            for a, b in free:
                lo = a + before
                lo += (p + before - lo) % step
                hi = b - length - after
                if lo <= hi:
                    bounds.extend((lo, hi + 1))
        self.bounds = bounds
        self.step = step
        self.length = length * US

    def next_slot(self, t: int, who: str) -> Record | None:
        """`next_free` as a `Record` of start, end and resource."""
        bounds, step = self.bounds, self.step
        i = bisect_right(bounds, t)
        if i & 1:
            t += (bounds[i - 1] - t) % step
            if t < bounds[i]:
                start = EPOCH + t * US
                return Record(start, start + self.length, who)
            i += 1
        if i < len(bounds):
            start = EPOCH + bounds[i] * US
            return Record(start, start + self.length, who)
        return None

    def bookable(self, t: int) -> bool:
        i = bisect_right(self.bounds, t)
        return i & 1 == 1 and (t - self.bounds[i - 1]) % self.step == 0

    def next_free(self, t: int) -> datetime | None:
        bounds, step = self.bounds, self.step
        i = bisect_right(bounds, t)
        if i & 1:
            t += (bounds[i - 1] - t) % step
            if t < bounds[i]:
                return EPOCH + t * US
            i += 1
        return EPOCH + bounds[i] * US if i < len(bounds) else None


# --- the straightforward portion baselines ------------------------------------------------------------------


def p_set(pairs: Iterable[tuple[datetime, datetime]]) -> Any:
    return P.Interval(*(P.closedopen(a, b) for a, b in pairs))


def portion_free(
    hours: Pairs,
    loads: Iterable[Load],
    length: timedelta,
    step: timedelta,
    before: timedelta = timedelta(0),
    after: timedelta = timedelta(0),
) -> list[datetime]:
    """Working set minus busy set, then the grid starts of each open stretch whose booking fits a free atom."""
    free = p_set(hours) - p_set(
        (ld.interval.start - ld.buffer_before, ld.interval.end + ld.buffer_after) for ld in loads
    )
    out: list[datetime] = []
    h = 0
    for atom in free:
        lower, upper = atom.lower, atom.upper
        while hours[h][1] < upper:
            h += 1
        anchor = hours[h][0] + before
        t = max(lower + before, anchor)
        t += (anchor - t) % step
        while t + length + after <= upper:
            out.append(t)
            t += step
    return out


def portion_first_of_pool(
    pool: list[str], hours: dict[str, Pairs], loads: list[Load], length: timedelta, step: timedelta, limit: int
) -> list[tuple[datetime, str]]:
    by: dict[str, list[Load]] = {rid: [] for rid in pool}
    for ld in loads:
        by[ld.resource_id].append(ld)
    free: dict[str, Any] = {}
    candidates = sorted({t for rid in pool for a, b in hours[rid] for t in _steps(a, b - length, step)})
    out: list[tuple[datetime, str]] = []
    for t in candidates:
        slot = P.closedopen(t, t + length)
        for rid in pool:
            f = free.get(rid)
            if f is None:
                f = free[rid] = p_set(hours[rid]) - p_set((ld.interval.start, ld.interval.end) for ld in by[rid])
            if slot in f:
                out.append((t, rid))
                break
        if len(out) == limit:
            break
    return out


def portion_two_needs(
    cars: list[str], drivers: list[str], hours: dict[str, Pairs], loads: list[Load], length: timedelta, step: timedelta
) -> list[tuple[datetime, str, str]]:
    by: dict[str, list[Load]] = {rid: [] for rid in hours}
    for ld in loads:
        by[ld.resource_id].append(ld)
    free = {rid: p_set(hours[rid]) - p_set((ld.interval.start, ld.interval.end) for ld in by[rid]) for rid in hours}
    candidates = sorted({t for h in hours.values() for a, b in h for t in _steps(a, b - length, step)})
    out: list[tuple[datetime, str, str]] = []
    for t in candidates:
        slot = P.closedopen(t, t + length)
        car = next((rid for rid in cars if slot in free[rid]), None)
        if car is None:
            continue
        driver = next((rid for rid in drivers if slot in free[rid]), None)
        if driver is not None:
            out.append((t, car, driver))
    return out


def _steps(a: datetime, last: datetime, step: timedelta) -> Iterable[datetime]:
    t = a
    while t <= last:
        yield t
        t += step


def portion_remaining(slots: list[Interval], loads: list[Load], capacity: int, longest: timedelta) -> list[int]:
    """Per slot: the bookings that start within *longest* before it (bisection), overlap count by a sweep."""
    ordered = sorted(loads, key=lambda ld: ld.interval.start)
    starts = [ld.interval.start for ld in ordered]
    atoms = [P.closedopen(ld.interval.start, ld.interval.end) for ld in ordered]
    out: list[int] = []
    for iv in slots:
        slot = P.closedopen(iv.start, iv.end)
        events: list[tuple[datetime, int]] = []
        for k in range(bisect_left(starts, iv.start - longest), bisect_left(starts, iv.end)):
            if atoms[k].overlaps(slot):
                clipped = atoms[k] & slot
                events.append((clipped.lower, ordered[k].units))
                events.append((clipped.upper, -ordered[k].units))
        level = peak = 0
        for _, delta in sorted(events):
            level += delta
            peak = max(peak, level)
        out.append(max(capacity - peak, 0))
    return out


class PortionIndex:
    """W6 on portion: the free set once, then per question a containment test or a walk over atoms."""

    def __init__(
        self, hours: Pairs, loads: list[Load], length: timedelta, step: timedelta, before: timedelta, after: timedelta
    ) -> None:
        self.hours = hours
        self.hour_starts = [a for a, _ in hours]
        self.free = p_set(hours) - p_set(
            (ld.interval.start - ld.buffer_before, ld.interval.end + ld.buffer_after) for ld in loads
        )
        self.atoms = list(self.free)
        self.lowers = [atom.lower for atom in self.atoms]
        self.length, self.step, self.before, self.after = length, step, before, after

    def _anchor(self, t: datetime) -> tuple[datetime, datetime] | None:
        h = bisect_right(self.hour_starts, t) - 1
        return self.hours[h] if h >= 0 else None

    def bookable(self, t: datetime) -> bool:
        piece = self._anchor(t)
        if piece is None or (t - piece[0] - self.before) % self.step:
            return False
        return P.closedopen(t - self.before, t + self.length + self.after) in self.free

    def next_free(self, t: datetime) -> datetime | None:
        k = max(bisect_right(self.lowers, t) - 1, 0)
        for atom in self.atoms[k:]:
            lower = max(atom.lower + self.before, t)
            piece = self._anchor(atom.lower)
            if piece is None:  # every free atom lies within open hours
                continue
            anchor = piece[0] + self.before
            lower = max(lower, anchor)
            lower += (anchor - lower) % self.step
            if lower + self.length + self.after <= atom.upper:
                return lower
        return None


# --- measurement -----------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], number: int = 1) -> float:
    """The time of one call, averaged over *number* calls in a row (so that short runs are long enough to time)."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def peak_memory(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


Row = tuple[str, str, float, int]


def measure(name: str, impls: dict[str, Callable[[], Any]], repeats: int) -> list[Row]:
    names = list(impls)
    # One warm-up run each (imports, the zone database's caches), which also sizes the runs: anything under
    # 20 ms is called several times in a row per sample.
    number = {n: max(1, min(200, int(0.02 / timed(impls[n])))) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for n in names[shift:] + names[:shift]:
            times[n].append(timed(impls[n], number[n]))
    return [(name, n, statistics.median(times[n]), peak_memory(impls[n])) for n in names]


# --- the workloads -------------------------------------------------------------------------------------------


def w1(rng: random.Random, repeats: int) -> list[Row]:
    hours = wall_hours(None, date(2026, 3, 2), 30, [(clock(9), clock(18))])
    rows: list[Row] = []
    for n in (0, 100, 1000):
        rows += w1_with(hours, bookings_in(rng, hours, n, (30, 60, 90)), repeats)
    return rows


def w1_with(hours: Pairs, busy: Pairs, repeats: int) -> list[Row]:
    n = len(busy)
    resource = [Resource("r0", "Room")]
    hour_set = {"r0": IntervalSet(hours)}
    loads = [Load(f"b{i}", "r0", Interval(a, b)) for i, (a, b) in enumerate(busy)]
    service = Service("w1", "W1", needs=[Need(resource_ids=["r0"])], duration=30 * MIN)
    window = Interval(hours[0][0], hours[-1][1])
    hour_ints, busy_ints = to_ints(hours), to_ints(busy)
    warm = Availability(resource, hour_set, loads, now=NOW)
    warm.slot_starts(service, window)
    impls = {
        "slotengine raw": lambda: Availability(resource, hour_set, loads, now=NOW).slot_starts(service, window),
        "slotengine objects": lambda: Availability(resource, hour_set, loads, now=NOW).slots(service, window),
        "slotengine raw, warm": lambda: warm.slot_starts(service, window),
        "sweep": lambda: sweep_free(hour_ints, busy_ints, 30 * 60_000_000, 30 * 60_000_000),
        "portion": lambda: portion_free(hours, loads, 30 * MIN, 30 * MIN),
    }
    mine = [dt(t) for t in impls["slotengine raw"]()]
    agree = mine == [s.start for s in impls["slotengine objects"]()] == impls["sweep"]() == impls["portion"]()
    print(f"W1 {n:,} bookings: {len(mine):,} free slots; agree: {agree}")
    return measure(f"W1 · {n:,} bookings", impls, repeats)


def w2_data(rng: random.Random) -> dict[str, Any]:
    berlin = ZoneInfo("Europe/Berlin")
    holidays = [
        date(2026, m, d)
        for m, d in ((4, 3), (4, 6), (5, 1), (5, 14), (5, 25), (6, 4), (11, 18), (12, 24), (12, 25), (12, 31))
    ]
    hours = wall_hours(
        berlin, date(2026, 1, 5), 365, [(clock(9), clock(12, 30)), (clock(13, 30), clock(18))], closed=holidays
    )
    first = hours[0][0]
    buffer = 10 * MIN
    loads = []
    for i in range(10_000):
        start = first + rng.randrange(365 * 24 * 12) * 5 * MIN
        loads.append(
            Load(
                f"b{i}",
                "r0",
                Interval(start, start + rng.randrange(10, 46) * MIN),
                buffer_before=buffer,
                buffer_after=buffer,
            )
        )
    service = Service(
        "w2", "W2", needs=[Need(resource_ids=["r0"])], duration=30 * MIN, buffer_before=buffer, buffer_after=buffer
    )
    return {
        "resources": [Resource("r0", "Ann", zone="Europe/Berlin")],
        "hours": hours,
        "hour_set": {"r0": IntervalSet(hours)},
        "loads": loads,
        "service": service,
        "window": Interval(hours[0][0], hours[-1][1]),
        "hour_ints": to_ints(hours),
        "busy_ints": [ld._span for ld in loads],
        "buffer": buffer,
    }


def w2(d: dict[str, Any], repeats: int) -> list[Row]:
    res, hs, loads, service, window = d["resources"], d["hour_set"], d["loads"], d["service"], d["window"]
    b = d["buffer"] // US
    warm = Availability(res, hs, loads, now=NOW)
    warm.slot_starts(service, window)
    impls = {
        "slotengine raw": lambda: Availability(res, hs, loads, now=NOW).slot_starts(service, window),
        "slotengine objects": lambda: Availability(res, hs, loads, now=NOW).slots(service, window),
        "slotengine raw, warm": lambda: warm.slot_starts(service, window),
        "sweep": lambda: sweep_free(d["hour_ints"], d["busy_ints"], 30 * 60_000_000, 30 * 60_000_000, b, b),
        "portion": lambda: portion_free(d["hours"], loads, 30 * MIN, 30 * MIN, d["buffer"], d["buffer"]),
    }
    mine = [dt(t) for t in impls["slotengine raw"]()]
    agree = mine == [s.start for s in impls["slotengine objects"]()] == impls["sweep"]() == impls["portion"]()
    print(f"W2: {len(d['hours']):,} open stretches, {len(mine):,} free slots; agree: {agree}")
    return measure("W2 · 1 year, Berlin, buffers", impls, repeats)


def w3(rng: random.Random, repeats: int) -> list[Row]:
    zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo"]
    resources = [Resource(f"a{i:03d}", f"Agent {i}", type="agent", zone=zones[i % 3]) for i in range(500)]
    by_zone = {z: wall_hours(ZoneInfo(z), date(2026, 3, 2), 30, [(clock(9), clock(18))]) for z in zones}
    hours = {r.id: by_zone[r.zone or ""] for r in resources}
    hour_set = {rid: IntervalSet(h) for rid, h in hours.items()}
    loads = []
    for i in range(20_000):
        rid = resources[rng.randrange(500)].id
        ((a, b),) = bookings_in(rng, hours[rid], 1, (30, 60, 90))
        loads.append(Load(f"b{i}", rid, Interval(a, b)))
    service = Service("w3", "W3", needs=[Need(type="agent")], duration=30 * MIN)
    window = Interval(min(h[0][0] for h in hours.values()), max(h[-1][1] for h in hours.values()))
    ids = [r.id for r in resources]
    hour_ints = {rid: to_ints(h) for rid, h in hours.items()}
    busy_ints = [(ld.resource_id, *ld._span) for ld in loads]
    slot = 30 * 60_000_000

    def raw_all() -> dict[str, list[int]]:
        av = Availability(resources, hour_set, loads, now=NOW)
        return {rid: av.slot_starts(service, window, pin=[rid]) for rid in ids}

    def objects_all() -> dict[str, list[Any]]:
        av = Availability(resources, hour_set, loads, now=NOW)
        return {rid: av.slots(service, window, pin=[rid]) for rid in ids}

    def portion_all() -> dict[str, list[datetime]]:
        by: dict[str, list[Load]] = {rid: [] for rid in ids}
        for ld in loads:
            by[ld.resource_id].append(ld)
        return {rid: portion_free(hours[rid], by[rid], 30 * MIN, 30 * MIN) for rid in ids}

    impls_all = {
        "slotengine raw": raw_all,
        "slotengine objects": objects_all,
        "sweep": lambda: sweep_by_resource(hour_ints, busy_ints, slot, slot),
        "portion": portion_all,
    }
    mine = {rid: [dt(t) for t in starts] for rid, starts in raw_all().items()}
    agree = (
        mine == {rid: [s.start for s in v] for rid, v in objects_all().items()} == impls_all["sweep"]() == portion_all()
    )
    print(f"W3 (i): {sum(map(len, mine.values())):,} free (resource, start) pairs; agree: {agree}")
    rows = measure("W3 (i) · 500 × 30 days, all slots per resource", impls_all, repeats)

    impls_first = {
        "slotengine lazy objects": lambda: Availability(resources, hour_set, loads, now=NOW).slots(
            service, window, limit=10
        ),
        "sweep": lambda: sweep_first_of_pool(ids, hour_ints, busy_ints, slot, slot, 10),
        "portion": lambda: portion_first_of_pool(ids, hours, loads, 30 * MIN, 30 * MIN, 10),
    }
    got = [(s.start, s.resource_ids[0]) for s in impls_first["slotengine lazy objects"]()]
    agree = got == impls_first["sweep"]() == impls_first["portion"]()
    print(f"W3 (ii): first 10 slots from {got[0][0]:%Y-%m-%d %H:%M} (agent {got[0][1]}); agree: {agree}")
    rows += measure("W3 (ii) · first 10 slots of the pool", impls_first, repeats)
    return rows


def w4(rng: random.Random, repeats: int) -> list[Row]:
    paris = ZoneInfo("Europe/Paris")
    first = date(2026, 3, 2)
    cars = [Resource(f"car{i:02d}", f"Car {i}", type="car") for i in range(50)]
    drivers = [Resource(f"drv{i:02d}", f"Driver {i}", kind="user", type="driver") for i in range(80)]
    car_hours = wall_hours(paris, first, 14, [(clock(7), clock(21))], weekdays=range(7))
    shifts = [
        wall_hours(paris, first, 14, [(clock(6), clock(14))], weekdays=range(7)),
        wall_hours(paris, first, 14, [(clock(13), clock(21))], weekdays=range(7)),
    ]
    hours = {c.id: car_hours for c in cars} | {d.id: shifts[i % 2] for i, d in enumerate(drivers)}
    hour_set = {rid: IntervalSet(h) for rid, h in hours.items()}
    loads = []
    for i in range(5_000):
        car, driver = cars[rng.randrange(50)].id, drivers[rng.randrange(80)].id
        ((a, b),) = bookings_in(rng, hours[driver], 1, (30, 60, 90, 120), grid=30)
        loads += [Load(f"b{i}", car, Interval(a, b)), Load(f"b{i}", driver, Interval(a, b))]
    resources = cars + drivers
    service = Service(
        "w4",
        "Chauffeured car",
        needs=[Need(type="car", label="car"), Need(type="driver", label="driver")],
        duration=120 * MIN,
        slot_step=30 * MIN,
    )
    window = Interval(min(h[0][0] for h in hours.values()), max(h[-1][1] for h in hours.values()))
    hour_ints = {rid: to_ints(h) for rid, h in hours.items()}
    busy_ints = [(ld.resource_id, *ld._span) for ld in loads]
    car_ids, driver_ids = [c.id for c in cars], [d.id for d in drivers]
    warm = Availability(resources, hour_set, loads, now=NOW)
    warm.slot_starts(service, window)
    impls = {
        "slotengine raw": lambda: Availability(resources, hour_set, loads, now=NOW).slot_starts(service, window),
        "slotengine objects": lambda: Availability(resources, hour_set, loads, now=NOW).slots(service, window),
        "slotengine raw, warm": lambda: warm.slot_starts(service, window),
        "sweep": lambda: sweep_two_needs(car_ids, driver_ids, hour_ints, busy_ints, 120 * 60_000_000, 30 * 60_000_000),
        "portion": lambda: portion_two_needs(car_ids, driver_ids, hours, loads, 120 * MIN, 30 * MIN),
    }
    objects = impls["slotengine objects"]()
    swept = impls["sweep"]()
    agree = [dt(t) for t in impls["slotengine raw"]()] == [s.start for s in objects] == [t for t, _, _ in swept] and [
        (s.start, *s.resource_ids) for s in objects
    ] == swept == impls["portion"]()
    candidates = len(grid_union(hour_ints.values(), 120 * 60_000_000, 30 * 60_000_000))
    print(f"W4: {len(objects):,} bookable starts of {candidates:,} candidates; agree: {agree}")
    return measure("W4 · car + driver, 14 days", impls, repeats)


def w5(rng: random.Random, repeats: int) -> list[Row]:
    hours = wall_hours(None, date(2026, 1, 1), 365, [(clock(7), clock(23))], weekdays=range(7))
    room = [Resource("room", "Hall", capacity=20)]
    hour_set = {"room": IntervalSet(hours)}
    busy = bookings_in(rng, hours, 50_000, (30, 60, 90, 120, 180))
    loads = [Load(f"b{i}", "room", Interval(a, b), units=rng.randint(1, 3)) for i, (a, b) in enumerate(busy)]
    slots = [Interval(a + k * 60 * MIN, a + (k + 1) * 60 * MIN) for a, b in hours for k in range((b - a) // (60 * MIN))]
    slot_ints = [(us(iv.start), us(iv.end)) for iv in slots]
    load_ints = [(*ld._span, ld.units) for ld in loads]

    def mine() -> list[int | None]:
        av = Availability(room, hour_set, loads, now=NOW)
        return [av.remaining("room", iv) for iv in slots]

    impls = {
        "slotengine remaining()": mine,
        "sweep": lambda: sweep_remaining(slot_ints, load_ints, 20),
        "portion": lambda: portion_remaining(slots, loads, 20, 180 * MIN),
    }
    got = mine()
    agree = got == impls["sweep"]() == impls["portion"]()
    full = sum(1 for x in got if x == 0)
    mean = statistics.mean(x or 0 for x in got)
    print(f"W5: {len(slots):,} one-hour slots, {full:,} of them full, mean {mean:.1f} seats left; agree: {agree}")
    return measure("W5 · capacity 20, 50k seat bookings, 1 year", impls, repeats)


def w6(d: dict[str, Any], rng: random.Random, repeats: int, queries: int) -> list[Row]:
    res, hs, loads, service = d["resources"], d["hour_set"], d["loads"], d["service"]
    hours = d["hours"]
    b = d["buffer"] // US
    points: list[datetime] = []
    for k in range(queries):
        if k % 2:
            a, z = hours[rng.randrange(len(hours))]
            points.append(a + d["buffer"] + rng.randrange((z - a) // (30 * MIN)) * 30 * MIN)
        else:
            points.append(hours[0][0] + rng.randrange(365 * 24 * 12) * 5 * MIN)
    point_ints = [us(t) for t in points]

    def mine_check() -> list[bool]:
        av = Availability(res, hs, loads, now=NOW)
        return [av.is_bookable(service, t) for t in points]

    def mine_next() -> list[Any]:
        av = Availability(res, hs, loads, now=NOW)
        return [av.next_available(service, t) for t in points]

    def mine_next_raw() -> list[int | None]:
        av = Availability(res, hs, loads, now=NOW)
        return [av.next_start(service, t) for t in points]

    def sweep_index() -> SweepIndex:
        return SweepIndex(d["hour_ints"], d["busy_ints"], 30 * 60_000_000, 30 * 60_000_000, b, b)

    def sweep_check() -> list[bool]:
        ix = sweep_index()
        return [ix.bookable(t) for t in point_ints]

    def sweep_next() -> list[datetime | None]:
        ix = sweep_index()
        return [ix.next_free(t) for t in point_ints]

    def sweep_next_records() -> list[Record | None]:
        ix = sweep_index()
        return [ix.next_slot(t, "r0") for t in point_ints]

    def portion_index() -> PortionIndex:
        return PortionIndex(hours, loads, 30 * MIN, 30 * MIN, d["buffer"], d["buffer"])

    def portion_check() -> list[bool]:
        ix = portion_index()
        return [ix.bookable(t) for t in points]

    def portion_next() -> list[datetime | None]:
        ix = portion_index()
        return [ix.next_free(t) for t in points]

    def portion_next_records() -> list[Record | None]:
        ix = portion_index()
        length = 30 * MIN
        return [None if (t := ix.next_free(p)) is None else Record(t, t + length, "r0") for p in points]

    checks = mine_check()
    agree = checks == sweep_check() == portion_check()
    av = Availability(res, hs, loads, now=NOW)
    sample = points[:: max(1, queries // 500)]
    agree_explain = all(
        av.explain(service, t).bookable == c for t, c in zip(sample, checks[:: max(1, queries // 500)], strict=True)
    )
    print(
        f"W6 is_bookable: {sum(checks):,} of {queries:,} bookable; agree: {agree}, and with explain(): {agree_explain}"
    )
    slots = mine_next()
    nexts = [s.start if s else None for s in slots]
    agree = nexts == [None if t is None else dt(t) for t in mine_next_raw()] == sweep_next() == portion_next()
    records = [(s.start, s.end, *s.resource_ids) if s else None for s in slots]
    for other in (sweep_next_records(), portion_next_records()):
        agree = agree and records == [(r.start, r.end, r.resource_id) if r else None for r in other]
    print(f"W6 next_available and next_start: agree: {agree}")
    rows = measure(
        f"W6 (a) · {queries:,} × is_bookable",
        {"slotengine is_bookable": mine_check, "sweep": sweep_check, "portion": portion_check},
        repeats,
    )
    rows += measure(
        f"W6 (b) · {queries:,} × next free start",
        {"slotengine next_start (raw)": mine_next_raw, "sweep": sweep_next, "portion": portion_next},
        repeats,
    )
    # The object mode answers more than a start: its sweep and portion build an equivalent object per answer
    # (a `Record` of start, end and resource); the sweep that writes one datetime runs alongside.
    rows += measure(
        f"W6 (b) · {queries:,} × next free slot, as objects",
        {
            "slotengine next_available (Slot)": mine_next,
            "sweep": sweep_next_records,
            "sweep, start only": sweep_next,
            "portion": portion_next_records,
        },
        repeats,
    )
    return rows


# --- the report -----------------------------------------------------------------------------------------------


def report(rows: list[Row]) -> None:
    print()
    print("| workload | implementation | median ms | this / sweep | portion / this | peak MiB |")
    print("|---|---|---|---|---|---|")
    by = {(w, n): (t, m) for w, n, t, m in rows}
    for w, n, t, m in rows:
        sweep = by[w, "sweep"][0]
        portion = by[w, "portion"][0]
        print(f"| {w} | {n} | {t * 1000:,.2f} | {t / sweep:.2f}× | {portion / t:.1f}× | {m / 2**20:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and point queries (under a minute)")
    parser.add_argument("--only", default="", help="comma-separated workloads to run, e.g. W1,W5")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    slow_repeats = 1 if args.quick else 5
    queries = 20_000 if args.quick else 100_000
    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    kind = "quick" if args.quick else "full"
    print(f"Python {sys.version.split()[0]}, portion {getattr(P, '__version__', '?')}, {kind} run")
    rng = random.Random(SEED)
    rows: list[Row] = []
    started = time.perf_counter()
    w2d = w2_data(random.Random(SEED + 2))
    if not only or "W1" in only:
        rows += w1(random.Random(SEED + 1), repeats)
    if not only or "W2" in only:
        rows += w2(w2d, repeats)
    if not only or "W3" in only:
        rows += w3(random.Random(SEED + 3), slow_repeats)
    if not only or "W4" in only:
        rows += w4(random.Random(SEED + 4), slow_repeats)
    if not only or "W5" in only:
        rows += w5(random.Random(SEED + 5), slow_repeats)
    if not only or "W6" in only:
        rows += w6(w2d, random.Random(SEED + 6), slow_repeats, queries)
    del rng
    report(rows)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
