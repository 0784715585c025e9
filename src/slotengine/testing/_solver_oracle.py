"""
A brute-force availability oracle: minute by minute, every combination, no cleverness.

It implements the rule written in `slotengine.availability`'s docstring directly on sets of minutes: open
hours and loads become per-minute tables, each candidate start is tried against every combination of
resources, and nothing is shared with the solver's code (no `IntervalSet` bounds, no capacity profile, no
bisect). It is slow on purpose; tests compare the fast solver to it on small drawn inputs whose every
instant, duration and buffer falls on a whole minute.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from slotengine.availability import Load, Slot
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import UNLIMITED, Resource, ResourceRole, Service, ServiceUnit

__all__ = ["oracle_slot_starts", "oracle_valid_assignment"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


def _minute(instant: datetime) -> int:
    delta = instant - _EPOCH
    if delta % _MINUTE:
        msg = f"the oracle works on whole minutes; {instant.isoformat()} is not one"
        raise ValueError(msg)
    return delta // _MINUTE


def _minutes(duration: timedelta) -> int:
    if duration % _MINUTE:
        msg = f"the oracle works on whole minutes; {duration} is not"
        raise ValueError(msg)
    return duration // _MINUTE


def _at(minute: int) -> datetime:
    return _EPOCH + minute * _MINUTE


def _open_minutes(hours: IntervalSet) -> set[int]:
    out: set[int] = set()
    for interval in hours:
        out.update(range(_minute(interval.start), _minute(interval.end)))
    return out


def _wall(day: date, at: time, zone: ZoneInfo) -> int:
    # The documented wall-time rule, written out again: zoneinfo's fold=0 reading (RFC 5545).
    return _minute(datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC))


class _World:
    def __init__(
        self,
        resources: Sequence[Resource],
        hours: Mapping[str, IntervalSet],
        loads: Iterable[Load],
        now: datetime,
        zone: str,
    ) -> None:
        self.resources = list(resources)
        self.now = _minute(now)
        self.zone = {r.id: ZoneInfo(r.zone) if r.zone else ZoneInfo(zone) for r in self.resources}
        self.open = {r.id: _open_minutes(hours[r.id]) for r in self.resources}
        self.load: dict[str, dict[int, int]] = {r.id: {} for r in self.resources}
        for ld in loads:
            if ld.hold_until is not None and not now < ld.hold_until:
                continue
            if ld.resource_id not in self.load:
                continue
            table = self.load[ld.resource_id]
            first = _minute(ld.interval.start - ld.buffer_before)
            last = _minute(ld.interval.end + ld.buffer_after)
            for m in range(first, last):
                table[m] = table.get(m, 0) + ld.units

    def end_of(self, service: Service, duration: timedelta, start: int, zone: ZoneInfo) -> int | None:
        if service.unit is ServiceUnit.MINUTES:
            return start + _minutes(duration)
        day = _at(start).astimezone(zone).date()
        if service.unit is ServiceUnit.DAYS:
            first, last = time(), time()
        else:
            assert service.check_in is not None  # noqa: S101
            assert service.check_out is not None  # noqa: S101
            first, last = service.check_in, service.check_out
        # The start is the first wall time of its own local date or, where that time fell in a gap crossing
        # midnight, of the date before; its own date first (a date the zone skipped starts as the next one).
        for start_day in (day, day - timedelta(days=1)):
            if _wall(start_day, first, zone) == start:
                end = _wall(start_day + timedelta(days=duration // timedelta(days=1)), last, zone)
                return end if end > start else None
        return None

    def serves(self, resource: Resource, service: Service, duration: timedelta, start: int, units: int) -> bool:
        end = self.end_of(service, duration, start, self.zone[resource.id])
        if end is None:
            return False
        before, after = _minutes(service.buffer_before), _minutes(service.buffer_after)
        blocked = range(start - before, end + after)
        must_be_open = blocked if not service.buffers_outside_hours else range(start, end)
        opened = self.open[resource.id]
        if any(m not in opened for m in must_be_open):
            return False
        if resource.capacity is UNLIMITED:
            return True
        table = self.load[resource.id]
        return all(table.get(m, 0) + units <= resource.capacity for m in blocked)

    def pools(self, service: Service) -> list[list[Resource]]:
        return [[r for r in self.resources if need.matches(r)] for need in service.needs]

    def grid(self, service: Service, duration: timedelta) -> set[int]:
        starts: set[int] = set()
        for pool in self.pools(service):
            for r in pool:
                starts |= self._grid_of(r, service, duration)
        return starts

    def _grid_of(self, r: Resource, service: Service, duration: timedelta) -> set[int]:
        out: set[int] = set()
        if service.unit is not ServiceUnit.MINUTES:
            zone = self.zone[r.id]
            step_days = service.step // timedelta(days=1)
            first = service.check_in if service.unit is ServiceUnit.NIGHTS else time()
            assert first is not None  # noqa: S101
            every = sorted(self.open[r.id])
            if not every:
                return out
            lo_day = _at(every[0]).astimezone(zone).date() - timedelta(days=2)
            hi_day = _at(every[-1]).astimezone(zone).date() + timedelta(days=2)
            day = lo_day
            while day <= hi_day:
                if (day - date(1970, 1, 1)).days % step_days == 0:
                    out.add(_wall(day, first, zone))
                day += timedelta(days=1)
            return out
        length = _minutes(duration)
        lead = _minutes(service.buffer_before) if not service.buffers_outside_hours else 0
        tail = _minutes(service.buffer_after) if not service.buffers_outside_hours else 0
        step = _minutes(service.step)
        opened = self.open[r.id]
        zone = self.zone[r.id]
        for m in sorted(opened):
            if m - 1 in opened:
                continue
            q = m
            while q in opened:
                q += 1
            # The grid starts again at every local midnight after the run's first start (each later local day).
            anchors = [m + lead]
            day = _at(m + lead).astimezone(zone).date()
            while (midnight := _wall(day + timedelta(days=1), time(), zone)) + length + tail <= q:
                anchors.append(midnight)
                day += timedelta(days=1)
            for a, stop in zip(anchors, [*anchors[1:], q], strict=True):
                t = a
                while t < stop and t + length + tail <= q:
                    out.add(t)
                    t += step
        return out

    def assignment_exists(self, service: Service, duration: timedelta, start: int, pin: Collection[str]) -> bool:
        """
        Whether some choice of free resources serves every need, trying every combination.

        Each pinned resource is among them (serving any need whose pool holds it), all distinct, and at least one
        primary ("an auxiliary resource is booked only together with a primary one", a rule on the booking as a
        whole).
        """
        options = []
        for need, pool in zip(service.needs, self.pools(service), strict=True):
            free = [r for r in pool if self.serves(r, service, duration, start, need.units)]
            options.append(list(itertools.combinations(free, need.count)))
        for choice in itertools.product(*options):
            chosen = [r for combo in choice for r in combo]
            ids = {r.id for r in chosen}
            if len(ids) == len(chosen) and set(pin) <= ids and any(r.role is ResourceRole.PRIMARY for r in chosen):
                return True
        return False


def oracle_slot_starts(
    resources: Sequence[Resource],
    hours: Mapping[str, IntervalSet],
    loads: Iterable[Load],
    *,
    now: datetime,
    service: Service,
    window: Interval,
    duration: timedelta | None = None,
    pin: Collection[str] = (),
    zone: str = "UTC",
) -> list[datetime]:
    """
    Return, by brute force, the starts the solver must offer for *service* in *window*, sorted, in UTC.

    Takes the same inputs as `Availability` and `Availability.slots`; everything must fall on whole minutes.
    """
    world = _World(resources, hours, loads, now, zone)
    chosen = service.duration if duration is None else duration
    if not any(r.role is ResourceRole.PRIMARY for pool in world.pools(service) for r in pool):
        return []
    lo = max(_minute(window.start), world.now + _minutes(service.min_notice))
    hi = _minute(window.end)
    if service.horizon is not None:
        hi = min(hi, world.now + _minutes(service.horizon) + 1)
    starts = [t for t in world.grid(service, chosen) if lo <= t < hi]
    return [_at(t) for t in sorted(starts) if world.assignment_exists(service, chosen, t, frozenset(pin))]


def oracle_valid_assignment(
    resources: Sequence[Resource],
    hours: Mapping[str, IntervalSet],
    loads: Iterable[Load],
    *,
    now: datetime,
    service: Service,
    slot: Slot,
    duration: timedelta | None = None,
    pin: Collection[str] = (),
    zone: str = "UTC",
) -> bool:
    """Return whether *slot*'s assignment is one the rule allows: counts, distinct, serving, pins kept, a primary."""
    world = _World(resources, hours, loads, now, zone)
    chosen = service.duration if duration is None else duration
    start = _minute(slot.start)
    by_id = {r.id: r for r in world.resources}
    if len(slot.assignments) != len(service.needs):
        return False
    ids = slot.resource_ids
    if len(ids) != len(set(ids)) or not set(pin) <= set(ids):
        return False
    if not any(rid in by_id and by_id[rid].role is ResourceRole.PRIMARY for rid in ids):
        return False
    for assignment, need in zip(slot.assignments, service.needs, strict=True):
        if len(assignment.resource_ids) != need.count:
            return False
        for rid in assignment.resource_ids:
            r = by_id.get(rid)
            if r is None or not need.matches(r) or not world.serves(r, service, chosen, start, need.units):
                return False
    end = world.end_of(service, chosen, start, world.zone[slot.assignments[0].resource_ids[0]])
    return end is not None and _at(end) == slot.end
