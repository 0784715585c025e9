"""
The availability solver: when can a service be booked, and with whom or what.

`Availability` is built once from the resources, their open hours (already expanded to instants) and the
live load on them (`Load`: bookings and unexpired holds, with buffers and units), for one instant ``now``.
It then answers every question a booking screen asks: the bookable starts of a service (`Availability.slots`),
whether one start is bookable and why not (`Availability.explain`, `Availability.check`), the next free start
(`Availability.next_available`), the days of a month that have a slot (`Availability.days_with_slots`), and
the free time of a resource (`Availability.free_time`).

**One rule decides, for listing and validating alike.** A start *s* of a service of duration *d* books
``B = [s, s + d)`` (for whole days: local midnights; for nights: check-in to check-out) and blocks
``X = [s - buffer_before, B.end + buffer_after)``. A resource can serve it with *u* units when

* ``B`` lies within its open hours (and so does ``X``, unless the service lets buffers fall outside hours);
* at every instant of ``X``, its load plus *u* stays within its capacity (an `UNLIMITED` resource never
  refuses on load). Existing bookings load their resource over their own buffers too, so buffers on both
  sides keep time free, and two buffers never overlap each other.

A start is offered when it lies on the slot grid, at or after ``now + min_notice``, at or before
``now + horizon``, and every need of the service can be given ``count`` distinct resources of its pool that
can serve it (one resource never serves two needs of one booking). The grid: each maximal stretch of a
resource's open hours offers starts every ``slot_step`` from its beginning (plus ``buffer_before`` when
buffers must stay inside hours); whole-day services offer every local day (or check-in time) instead. The
candidate starts of a service are the union of the grids of every resource in its pools. The fast listing
and the single-start check call the same per-resource test (`_Index.serves`), so a slot that is listed is a
slot that validates.

A hold counts while ``now < hold_until``: an expired hold frees its time at that instant, even if no sweeper
has marked it expired yet.
"""

from __future__ import annotations

import enum
import functools
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import attrs

from slotengine._time import (
    EPOCH,
    MAX_INSTANT,
    MIN_INSTANT,
    from_micros,
    get_zone,
    localize,
    to_micros,
    to_utc,
)
from slotengine.errors import ConflictError, InvalidInputError
from slotengine.intervals import CapacityProfile, Interval, IntervalSet, _intersect
from slotengine.model import UNLIMITED, Need, Resource, ResourceRole, Service, ServiceUnit, check_id

__all__ = [
    "Assignment",
    "Availability",
    "Explanation",
    "Load",
    "Reason",
    "ReasonCode",
    "Slot",
    "Strategy",
]

_MIN_US: Final = to_micros(MIN_INSTANT)
_MAX_US: Final = to_micros(MAX_INSTANT)
_US: Final = timedelta(microseconds=1)
_ONE_DAY: Final = timedelta(days=1)
_EPOCH_DATE: Final = date(1970, 1, 1)


class Strategy(enum.StrEnum):
    """How to choose among several free resources of a pool; it never changes *whether* a start is offered."""

    FIRST_AVAILABLE = "first_available"
    """The first free resources in the order the resources were given."""
    LEAST_LOADED = "least_loaded"
    """The free resources with the least booked time on that local day; ties go to the given order."""
    PREFERRED = "preferred"
    """The caller's preferred resources first (in their order), then the given order."""


class ReasonCode(enum.StrEnum):
    """Why a start is not bookable, roughly from the most to the least fundamental."""

    OFF_GRID = "off_grid"
    MIN_NOTICE = "min_notice"
    BEYOND_HORIZON = "beyond_horizon"
    OUTSIDE_WINDOW = "outside_window"
    OUTSIDE_HOURS = "outside_hours"
    TIME_OFF = "time_off"
    BOOKED = "booked"
    HELD = "held"
    BUFFER = "buffer"
    CAPACITY_FULL = "capacity_full"
    NO_MEMBER_FREE = "no_member_free"


@attrs.frozen
class Reason:
    """
    One reason a start is not bookable, structured for programs and readable for people.

    ``resource_id`` names the resource it applies to (None for the whole service), ``booking_id`` the
    booking or hold in the way, ``until`` when a hold expires, and ``message`` says it in words.
    """

    code: ReasonCode
    message: str
    resource_id: str | None = None
    booking_id: str | None = None
    until: datetime | None = None
    need: int | None = None


def _non_negative(value: object, field: str) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        msg = f"{field} must be a non-negative timedelta, got {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


def _load_units(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"a load takes a whole number of units of at least 1, got {value!r}"
        raise InvalidInputError(msg, field="units")
    return value


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else to_utc(value, "hold_until")


def _booking_id(value: object) -> str:
    return check_id(value, "booking id")


def _load_resource_id(value: object) -> str:
    return check_id(value, "resource id")


def _buffer_before(value: object) -> timedelta:
    return _non_negative(value, "buffer_before")


def _buffer_after(value: object) -> timedelta:
    return _non_negative(value, "buffer_after")


def _interval(value: object) -> Interval:
    if not isinstance(value, Interval):
        msg = f"a load's interval must be an Interval, not {type(value).__name__}"
        raise InvalidInputError(msg, field="interval")
    return value


@attrs.frozen
class Load:
    """
    Time taken on one resource by a booking or a hold: its interval, its buffers and its units.

    A firm booking has ``hold_until=None``; a hold (a pre-booking) has the instant it expires, and counts
    only while ``now < hold_until``.
    """

    booking_id: str = attrs.field(converter=_booking_id)
    resource_id: str = attrs.field(converter=_load_resource_id)
    interval: Interval = attrs.field(converter=_interval)
    units: int = attrs.field(default=1, converter=_load_units)
    buffer_before: timedelta = attrs.field(default=timedelta(0), converter=_buffer_before)
    buffer_after: timedelta = attrs.field(default=timedelta(0), converter=_buffer_after)
    hold_until: datetime | None = attrs.field(default=None, converter=_optional_instant)

    def is_live(self, now: datetime) -> bool:
        """Return whether this load takes time at *now* (a firm booking, or a hold that has not expired)."""
        return self.hold_until is None or now < self.hold_until

    @property
    def blocked(self) -> Interval:
        """The time this load keeps its resource busy: its interval widened by its buffers."""
        return Interval(self.interval.start - self.buffer_before, self.interval.end + self.buffer_after)


@attrs.frozen
class Assignment:
    """The resources chosen for one need of a service (``need`` is its index in ``Service.needs``)."""

    need: int
    label: str
    resource_ids: tuple[str, ...]


@attrs.frozen(repr=False)
class Slot:
    """
    A bookable start: the booked interval ``[start, end)`` in UTC and who or what would serve it.

    Use `Slot.in_zone` to present it in a client's zone; that never changes the instants.
    """

    start: datetime
    end: datetime
    assignments: tuple[Assignment, ...]

    @property
    def resource_ids(self) -> tuple[str, ...]:
        """Every resource the slot would take, need by need."""
        return tuple(rid for a in self.assignments for rid in a.resource_ids)

    @property
    def interval(self) -> Interval:
        """The booked interval."""
        return Interval(self.start, self.end)

    def in_zone(self, zone: str | ZoneInfo) -> tuple[datetime, datetime]:
        """Return start and end as local times in *zone* (the same instants)."""
        tz = zone if isinstance(zone, ZoneInfo) else get_zone(zone)
        return self.start.astimezone(tz), self.end.astimezone(tz)

    def __repr__(self) -> str:
        who = "+".join(self.resource_ids)
        return f"Slot({self.start:%Y-%m-%d %H:%M}Z – {self.end:%Y-%m-%d %H:%M}Z, {who})"


@attrs.frozen
class Explanation:
    """Whether one start is bookable, the slot it would be, and every reason it is not."""

    start: datetime
    bookable: bool
    slot: Slot | None
    reasons: tuple[Reason, ...]


def _contained(bounds: tuple[int, ...], start: int, end: int) -> bool:
    """Return whether ``[start, end)`` lies inside one piece of normalized *bounds*."""
    i = bisect_right(bounds, start)
    return i % 2 == 1 and end <= bounds[i]


_EVERYTHING: Final = (_MIN_US, _MAX_US)


class _Index:
    """What the solver knows about one resource, with lazily built per-units lookups."""

    __slots__ = (
        "_fits",
        "_ok",
        "capacity",
        "day_load",
        "hours",
        "loads",
        "off",
        "order",
        "profile",
        "resource",
        "zone",
    )

    def __init__(
        self,
        resource: Resource,
        order: int,
        hours: tuple[int, ...],
        off: tuple[int, ...],
        loads: list[Load],
        zone: ZoneInfo,
    ) -> None:
        self.resource = resource
        self.order = order
        self.capacity: int | None = None if resource.capacity is UNLIMITED else resource.capacity
        self.hours = hours
        self.off = off
        self.loads = loads
        self.zone = zone
        self.profile = CapacityProfile._from_micros(
            (
                to_micros(ld.interval.start - ld.buffer_before),
                to_micros(ld.interval.end + ld.buffer_after),
                ld.units,
            )
            for ld in loads
        )
        self._fits: dict[int, tuple[int, ...]] = {}
        self._ok: dict[int, tuple[int, ...]] = {}
        self.day_load: dict[int, int] = {}

    def fits(self, units: int) -> tuple[int, ...]:
        """Where ``load + units <= capacity`` (everything, for an unlimited resource)."""
        found = self._fits.get(units)
        if found is None:
            if self.capacity is None:
                found = _EVERYTHING
            else:
                found = self.profile._where_at_most_us(self.capacity - units, _MIN_US, _MAX_US)
            self._fits[units] = found
        return found

    def ok(self, units: int) -> tuple[int, ...]:
        """Open hours where ``load + units <= capacity``."""
        found = self._ok.get(units)
        if found is None:
            found = _intersect(self.hours, self.fits(units))
            self._ok[units] = found
        return found

    def serves(
        self, start: int, end: int, before: int, after: int, units: int, buffers_in_hours: bool
    ) -> bool:
        """The one per-resource test that listing and validation share (see the module docstring)."""
        if buffers_in_hours:
            return _contained(self.ok(units), start - before, end + after)
        return _contained(self.hours, start, end) and _contained(
            self.fits(units), start - before, end + after
        )


@attrs.frozen
class _Shape:
    """A service's booking shape for one query: its duration, units of need, grid and buffers, in µs."""

    service: Service
    duration: timedelta
    before: int
    after: int
    step: int
    in_hours: bool


class Availability:
    """
    The solver's view of a business at one instant: resources, their open hours, and their live load.

    Args:
        resources: Every resource the queries may use, in the order `Strategy.FIRST_AVAILABLE` follows.
        hours: For each resource id, its open hours as an `IntervalSet` of instants (working hours minus
            time off), covering at least the windows you will ask about plus the longest buffer.
        loads: The bookings and holds on these resources; expired holds and loads of unknown resources
            are ignored.
        now: The instant the answers are for (minimum notice, horizon and hold expiry are measured from it).
        time_off: Optionally, for each resource id, its time off, so that `explain` can tell time off from
            closed hours.
        zone: The business's zone, used for resources that have none of their own.

    Raises:
        InvalidInputError: a resource id repeats, or a resource has no hours given.
        NaiveDatetimeError: *now* is naive.
    """

    def __init__(
        self,
        resources: Iterable[Resource],
        hours: Mapping[str, IntervalSet],
        loads: Iterable[Load] = (),
        *,
        now: datetime,
        time_off: Mapping[str, IntervalSet] | None = None,
        zone: str = "UTC",
    ) -> None:
        self.now = to_utc(now, "now")
        self._now_us = to_micros(self.now)
        default_zone = get_zone(zone)
        by_resource: dict[str, list[Load]] = {}
        for load in loads:
            if load.is_live(self.now):
                by_resource.setdefault(load.resource_id, []).append(load)
        self._index: dict[str, _Index] = {}
        off = time_off or {}
        for order, resource in enumerate(resources):
            if resource.id in self._index:
                msg = f"resource id {resource.id!r} is given twice"
                raise InvalidInputError(msg, resource_id=resource.id)
            if resource.id not in hours:
                msg = f"no open hours were given for resource {resource.id!r}"
                raise InvalidInputError(msg, resource_id=resource.id)
            self._index[resource.id] = _Index(
                resource,
                order,
                hours[resource.id]._bounds,
                off[resource.id]._bounds if resource.id in off else (),
                sorted(by_resource.get(resource.id, ()), key=lambda ld: ld.interval.start),
                get_zone(resource.zone) if resource.zone else default_zone,
            )

    # --- the service's shape and its pools ------------------------------------------------------------

    def _shape(self, service: object, duration: timedelta | None) -> _Shape:
        if not isinstance(service, Service):
            msg = f"expected a Service, got {type(service).__name__}"
            raise InvalidInputError(msg)
        chosen = service.duration if duration is None else duration
        if not isinstance(chosen, timedelta) or not service.allows_duration(chosen):
            msg = f"service {service.id!r} cannot be booked for {chosen!r}"
            raise InvalidInputError(msg, field="duration")
        return _Shape(
            service,
            chosen,
            service.buffer_before // _US,
            service.buffer_after // _US,
            service.step // _US,
            not service.buffers_outside_hours,
        )

    def _pools(self, service: Service, pin: Collection[str]) -> list[list[_Index]]:
        pools = [[ix for ix in self._index.values() if need.matches(ix.resource)] for need in service.needs]
        if not any(ix.resource.role is ResourceRole.PRIMARY for pool in pools for ix in pool):
            msg = (
                f"service {service.id!r} can only take auxiliary resources; an auxiliary resource is "
                "booked only together with a primary one"
            )
            raise InvalidInputError(msg, service_id=service.id)
        owned: list[int] = [0] * len(pools)
        for rid in sorted(pin):
            if rid not in self._index:
                msg = f"pinned resource {rid!r} is not one of the resources given"
                raise InvalidInputError(msg, resource_id=rid)
            holders = [i for i, pool in enumerate(pools) if any(ix.resource.id == rid for ix in pool)]
            if not holders:
                msg = f"pinned resource {rid!r} does not match any need of service {service.id!r}"
                raise InvalidInputError(msg, resource_id=rid)
            owned[holders[0]] += 1
        for i, need in enumerate(service.needs):
            if owned[i] > need.count:
                msg = (
                    f"{owned[i]} resources are pinned to a need of service {service.id!r} "
                    f"that takes only {need.count}"
                )
                raise InvalidInputError(msg, service_id=service.id)
        # A pinned resource serves the first need whose pool holds it, and no other need.
        for i, pool in enumerate(pools):
            pools[i] = [
                ix for ix in pool if ix.resource.id not in pin or i == _first_holder(pools, ix.resource.id)
            ]
        return pools

    # --- the booked interval of one start --------------------------------------------------------------

    def _booked(self, shape: _Shape, start: int, zone: ZoneInfo) -> int | None:
        """Return the end of the booking starting at *start*, or None if *start* is not a valid start."""
        service = shape.service
        if service.unit is ServiceUnit.MINUTES:
            return start + shape.duration // _US
        local = from_micros(start).astimezone(zone)
        day = local.date()
        days = shape.duration // _ONE_DAY
        if service.unit is ServiceUnit.DAYS:
            first, last = time(), time()
        else:
            first, last = service.check_in or time(), service.check_out or time()
        if to_micros(localize(datetime.combine(day, first), zone)) != start:
            return None
        return to_micros(localize(datetime.combine(day + timedelta(days=days), last), zone))

    def _day_starts(self, shape: _Shape, zone: ZoneInfo, lo: int, hi: int) -> Iterator[int]:
        """
        Whole-day services: the day start (or check-in) of every local date on the grid, within [lo, hi).

        The day grid is anchored on 1970-01-01: with a step of 7 days, stays start on Thursdays.
        """
        service = shape.service
        first = service.check_in if service.unit is ServiceUnit.NIGHTS else time()
        assert first is not None  # noqa: S101 - Service guarantees check_in for nights
        step_days = max(1, shape.step // (_ONE_DAY // _US))
        day = from_micros(lo).astimezone(zone).date() - _ONE_DAY
        day += timedelta(days=-(day - _EPOCH_DATE).days % step_days)
        while True:
            start = to_micros(localize(datetime.combine(day, first), zone))
            if start >= hi:
                return
            if start >= lo:
                yield start
            day += timedelta(days=step_days)

    def _grid(self, shape: _Shape, ix: _Index, lo: int, hi: int) -> Iterator[int]:
        """The candidate starts that resource *ix* offers in [lo, hi)."""
        if shape.service.unit is not ServiceUnit.MINUTES:
            yield from self._day_starts(shape, ix.zone, lo, hi)
            return
        length = shape.duration // _US
        lead = shape.before if shape.in_hours else 0
        tail = shape.after if shape.in_hours else 0
        step = shape.step
        bounds = ix.hours
        i = bisect_right(bounds, lo)
        i -= i % 2
        for k in range(i, len(bounds), 2):
            p, q = bounds[k], bounds[k + 1]
            if p >= hi:
                return
            t = p + lead
            if t < lo:
                t += -((t - lo) // step) * step
            last = q - length - tail
            while t <= last and t < hi:
                yield t
                t += step

    def _limits(self, service: Service, window: Interval) -> tuple[int, int]:
        lo = max(to_micros(window.start), self._now_us + service.min_notice // _US)
        hi = to_micros(window.end)
        if service.horizon is not None:
            hi = min(hi, self._now_us + service.horizon // _US + 1)
        return lo, hi

    # --- assignment ----------------------------------------------------------------------------------------

    def _day_load(self, ix: _Index, start: int) -> int:
        """The unit-time booked on *ix* during the local day (in its zone) that contains *start*."""
        day_start, day_end = _local_day_us(start, ix.zone)
        cached = ix.day_load.get(day_start)
        if cached is None:
            cached = 0
            for ld in ix.loads:
                s, e = to_micros(ld.interval.start), to_micros(ld.interval.end)
                if s < day_end and e > day_start:
                    cached += (min(e, day_end) - max(s, day_start)) * ld.units
            ix.day_load[day_start] = cached
        return cached

    def _order(
        self, pool: list[_Index], strategy: Strategy, preferred: Sequence[str], start: int
    ) -> list[_Index]:
        if strategy is Strategy.PREFERRED and preferred:
            rank = {rid: i for i, rid in enumerate(preferred)}
            return sorted(pool, key=lambda ix: (rank.get(ix.resource.id, len(rank)), ix.order))
        if strategy is Strategy.LEAST_LOADED:
            return sorted(pool, key=lambda ix: (self._day_load(ix, start), ix.order))
        return pool

    def _assign(
        self,
        shape: _Shape,
        pools: list[list[_Index]],
        start: int,
        pin: Collection[str],
        strategy: Strategy,
        preferred: Sequence[str],
        overlapping: bool,
    ) -> tuple[int, tuple[Assignment, ...]] | None:
        """
        Return ``(end, assignments)`` if *start* can be served, else None: the single decision point.

        Pinned resources serve the first need whose pool holds them; the rest of every need is filled in
        the strategy's order. When pools share resources, a matching keeps one resource to one need.
        """
        service = shape.service
        ends: dict[str, int | None] = {}

        def serves(ix: _Index, units: int) -> bool:
            key = ix.zone.key
            if key not in ends:
                ends[key] = self._booked(shape, start, ix.zone)
            end = ends[key]
            return end is not None and ix.serves(start, end, shape.before, shape.after, units, shape.in_hours)

        pinned: list[list[_Index]] = []
        feasible: list[list[_Index]] = []
        needed: list[int] = []
        for need, pool in zip(service.needs, pools, strict=True):
            mine = [ix for ix in pool if ix.resource.id in pin]
            if not all(serves(ix, need.units) for ix in mine):
                return None
            want = need.count - len(mine)
            free: list[_Index] = []
            if want:
                for ix in self._order(pool, strategy, preferred, start):
                    if ix.resource.id in pin or not serves(ix, need.units):
                        continue
                    free.append(ix)
                    if not overlapping and len(free) == want:
                        break
                if len(free) < want:
                    return None
            pinned.append(mine)
            feasible.append(free)
            needed.append(want)
        if overlapping:
            matched = _match(feasible, needed)
            if matched is None:
                return None
            feasible = matched
        chosen = [mine + free[:want] for mine, free, want in zip(pinned, feasible, needed, strict=True)]
        first = chosen[0][0] if chosen[0] else next(pick[0] for pick in chosen if pick)
        end = ends[first.zone.key]
        assert end is not None  # noqa: S101 - it served, so the start is valid in its zone
        assignments = tuple(
            Assignment(i, need.label, tuple(ix.resource.id for ix in pick))
            for i, (need, pick) in enumerate(zip(service.needs, chosen, strict=True))
        )
        return end, assignments

    # --- public queries ------------------------------------------------------------------------------------

    def iter_slots(
        self,
        service: Service,
        window: Interval,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
    ) -> Iterator[Slot]:
        """
        Yield the bookable starts of *service* in *window*, in time order, lazily.

        Args:
            service: What is booked.
            window: Starts are offered in ``[window.start, window.end)``.
            duration: A length the service allows (default: its duration).
            pin: Resource ids that must be part of every slot (a client who wants Dr Ann).
            strategy: How resources are chosen when several are free.
            preferred: For `Strategy.PREFERRED`, the resource ids to try first.

        Raises:
            InvalidInputError: the duration is not allowed, a pinned id is unknown or matches no need, or
                the service can only take auxiliary resources.
        """
        for start, end, assignments in self._raw(service, window, duration, pin, strategy, preferred):
            yield Slot(EPOCH + start * _US, EPOCH + end * _US, assignments)

    def slots(
        self,
        service: Service,
        window: Interval,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Slot]:
        """Return the bookable starts of *service* in *window* as a sorted list (see `iter_slots`)."""
        out: list[Slot] = []
        for slot in self.iter_slots(
            service, window, duration=duration, pin=pin, strategy=strategy, preferred=preferred
        ):
            out.append(slot)
            if limit is not None and len(out) >= limit:
                break
        return out

    def slot_starts(
        self, service: Service, window: Interval, *, duration: timedelta | None = None
    ) -> list[int]:
        """Return only the bookable starts, as integer microseconds since the epoch (the raw mode)."""
        return [
            start for start, _, _ in self._raw(service, window, duration, (), Strategy.FIRST_AVAILABLE, ())
        ]

    def _raw(
        self,
        service: Service,
        window: Interval,
        duration: timedelta | None,
        pin: Collection[str],
        strategy: Strategy,
        preferred: Sequence[str],
    ) -> Iterator[tuple[int, int, tuple[Assignment, ...]]]:
        shape = self._shape(service, duration)
        pin = frozenset(pin)
        pools = self._pools(service, pin)
        lo, hi = self._limits(service, window)
        if lo >= hi:
            return
        members: dict[str, _Index] = {}
        for pool in pools:
            for ix in pool:
                members.setdefault(ix.resource.id, ix)
        grids = [self._grid(shape, ix, lo, hi) for ix in members.values()]
        if len(grids) == 1:
            candidates: Iterable[int] = grids[0]
        else:
            candidates = sorted({t for grid in grids for t in grid})
        overlapping = _pools_overlap(pools)
        for start in candidates:
            found = self._assign(shape, pools, start, pin, strategy, preferred, overlapping)
            if found is not None:
                yield start, found[0], found[1]

    def _on_grid(self, shape: _Shape, pools: list[list[_Index]], start: int) -> bool:
        for pool in pools:
            for ix in pool:
                for t in self._grid(shape, ix, start, start + 1):
                    if t == start:
                        return True
        return False

    def explain(
        self,
        service: Service,
        start: datetime,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
    ) -> Explanation:
        """
        Say whether *start* is bookable for *service*, with the slot it would be, or every reason it is not.

        Raises:
            NaiveDatetimeError: *start* is naive.
            InvalidInputError: as `iter_slots`.
        """
        start_dt = to_utc(start, "start")
        s = to_micros(start_dt)
        shape = self._shape(service, duration)
        pin = frozenset(pin)
        pools = self._pools(service, pin)
        reasons: list[Reason] = []
        if s < self._now_us + service.min_notice // _US:
            reasons.append(
                Reason(
                    ReasonCode.MIN_NOTICE,
                    f"bookings must be made at least {service.min_notice} before they start",
                )
            )
        if service.horizon is not None and s > self._now_us + service.horizon // _US:
            reasons.append(
                Reason(ReasonCode.BEYOND_HORIZON, f"bookings are taken at most {service.horizon} ahead")
            )
        if not self._on_grid(shape, pools, s):
            reasons.append(Reason(ReasonCode.OFF_GRID, "this is not one of the offered start times"))
        found = self._assign(shape, pools, s, pin, strategy, preferred, _pools_overlap(pools))
        if found is not None and not reasons:
            end, assignments = found
            slot = Slot(start_dt, from_micros(end), assignments)
            return Explanation(start_dt, bookable=True, slot=slot, reasons=())
        if found is None:
            reasons.extend(self._need_reasons(shape, pools, s, pin))
        return Explanation(start_dt, bookable=False, slot=None, reasons=tuple(reasons))

    def check(
        self,
        service: Service,
        start: datetime,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
    ) -> Slot:
        """
        Return the slot that *start* would be, or raise `ConflictError` carrying every reason it is not.

        Raises:
            ConflictError: *start* is not bookable; ``details["reasons"]`` holds the `Reason` values.
            InvalidInputError: as `iter_slots`.
        """
        explanation = self.explain(
            service, start, duration=duration, pin=pin, strategy=strategy, preferred=preferred
        )
        if explanation.slot is None:
            words = "; ".join(r.message for r in explanation.reasons) or "it is not available"
            msg = f"{service.name} cannot be booked at {explanation.start.isoformat()}: {words}"
            raise ConflictError(msg, start=explanation.start, reasons=explanation.reasons)
        return explanation.slot

    def _need_reasons(
        self, shape: _Shape, pools: list[list[_Index]], start: int, pin: Collection[str]
    ) -> list[Reason]:
        reasons: list[Reason] = []
        service = shape.service
        for i, (need, pool) in enumerate(zip(service.needs, pools, strict=True)):
            free = 0
            for ix in pool:
                found = self._resource_reasons(shape, ix, need, start, i)
                reasons.extend(found)
                free += not found
            label = need.label or f"need {i + 1}"
            pinned = [ix.resource.id for ix in pool if ix.resource.id in pin]
            if free < need.count or pinned:
                reasons.append(
                    Reason(
                        ReasonCode.NO_MEMBER_FREE,
                        f"{label}: {free} of the {need.count} needed resources are free",
                        need=i,
                    )
                )
        if not reasons:
            reasons.append(
                Reason(
                    ReasonCode.NO_MEMBER_FREE,
                    "no combination of free resources serves every need at once",
                )
            )
        return reasons

    def _resource_reasons(
        self, shape: _Shape, ix: _Index, need: Need, start: int, need_index: int
    ) -> list[Reason]:
        rid = ix.resource.id
        end = self._booked(shape, start, ix.zone)
        if end is None:
            return [Reason(ReasonCode.OFF_GRID, f"{rid}: this is not a day start in {ix.zone.key}", rid)]
        if ix.serves(start, end, shape.before, shape.after, need.units, shape.in_hours):
            return []
        out: list[Reason] = []
        x_start, x_end = start - shape.before, end + shape.after
        h_start, h_end = (x_start, x_end) if shape.in_hours else (start, end)
        if not _contained(ix.hours, h_start, h_end):
            if _overlaps(ix.off, h_start, h_end):
                out.append(Reason(ReasonCode.TIME_OFF, f"{rid} is off at that time", rid, need=need_index))
            else:
                out.append(
                    Reason(
                        ReasonCode.OUTSIDE_HOURS, f"{rid} is not working at that time", rid, need=need_index
                    )
                )
        if not _contained(ix.fits(need.units), x_start, x_end):
            out.extend(self._load_reasons(ix, start, end, x_start, x_end, need.units, need_index))
        return out

    def _load_reasons(
        self, ix: _Index, start: int, end: int, x_start: int, x_end: int, units: int, need_index: int
    ) -> list[Reason]:
        rid = ix.resource.id
        cap = ix.capacity or 0
        in_way = [
            ld
            for ld in ix.loads
            if to_micros(ld.interval.start - ld.buffer_before) < x_end
            and to_micros(ld.interval.end + ld.buffer_after) > x_start
        ]
        if cap > 1 or units > 1:
            peak = ix.profile._max_load_us(x_start, x_end)
            ids = ", ".join(ld.booking_id for ld in in_way)
            return [
                Reason(
                    ReasonCode.CAPACITY_FULL,
                    f"{rid} has {max(cap - peak, 0)} of {cap} units free at its busiest, "
                    f"{units} needed ({ids})",
                    rid,
                    need=need_index,
                )
            ]
        out: list[Reason] = []
        for ld in in_way:
            core_start, core_end = to_micros(ld.interval.start), to_micros(ld.interval.end)
            if core_start < end and core_end > start:
                if ld.hold_until is not None:
                    out.append(
                        Reason(
                            ReasonCode.HELD,
                            f"{rid} is held by {ld.booking_id} until {ld.hold_until.isoformat()}",
                            rid,
                            ld.booking_id,
                            ld.hold_until,
                            need_index,
                        )
                    )
                else:
                    out.append(
                        Reason(
                            ReasonCode.BOOKED,
                            f"{rid} is booked ({ld.booking_id})",
                            rid,
                            ld.booking_id,
                            None,
                            need_index,
                        )
                    )
            else:
                out.append(
                    Reason(
                        ReasonCode.BUFFER,
                        f"{rid}: too close to {ld.booking_id} (buffer time)",
                        rid,
                        ld.booking_id,
                        ld.hold_until,
                        need_index,
                    )
                )
        return out

    def next_available(
        self,
        service: Service,
        after: datetime,
        *,
        until: datetime | None = None,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
    ) -> Slot | None:
        """
        Return the first bookable slot starting at or after *after* (and before *until*), or None.

        Without *until* the search runs to the service's horizon, or to the end of the open hours given.
        """
        start = to_utc(after, "after")
        if until is not None:
            end = to_utc(until, "until")
        else:
            ends = [from_micros(ix.hours[-1]) for ix in self._index.values() if ix.hours]
            end = max(ends, default=start)
            if service.horizon is not None:
                end = min(end, self.now + service.horizon + _US)
        if end <= start:
            return None
        for slot in self.iter_slots(
            service, Interval(start, end), duration=duration, pin=pin, strategy=strategy, preferred=preferred
        ):
            return slot
        return None

    def days_with_slots(
        self,
        service: Service,
        year: int,
        month: int,
        zone: str,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
    ) -> list[date]:
        """
        Return the local dates of *month* (in *zone*, the viewer's) that have at least one bookable start.

        This is what a calendar widget greys out or not; it stops looking at a day at its first slot.
        """
        tz = get_zone(zone)
        first = date(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        days: list[date] = []
        day = first
        while day < following:
            day_start = localize(datetime.combine(day, time()), tz)
            day_end = localize(datetime.combine(day + _ONE_DAY, time()), tz)
            if day_end > day_start and next(
                iter(self.iter_slots(service, Interval(day_start, day_end), duration=duration, pin=pin)), None
            ):
                days.append(day)
            day += _ONE_DAY
        return days

    def free_time(self, resource_id: str, window: Interval, *, units: int = 1) -> IntervalSet:
        """
        Return when *resource_id* is open and has *units* free within *window* (a day view's free time).

        Raises:
            NotFoundError: no such resource was given.
        """
        from slotengine.errors import NotFoundError

        ix = self._index.get(resource_id)
        if ix is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        w = (to_micros(window.start), to_micros(window.end))
        return IntervalSet._from_bounds(_intersect(ix.ok(units), w))


def _overlaps(bounds: tuple[int, ...], start: int, end: int) -> bool:
    i = bisect_right(bounds, start)
    return i % 2 == 1 or (i < len(bounds) and bounds[i] < end)


@functools.lru_cache(maxsize=4096)
def _local_day_us(instant: int, zone: ZoneInfo) -> tuple[int, int]:
    day = from_micros(instant).astimezone(zone).date()
    start = localize(datetime.combine(day, time()), zone)
    end = localize(datetime.combine(day + _ONE_DAY, time()), zone)
    return to_micros(start), to_micros(end)


def _first_holder(pools: list[list[_Index]], rid: str) -> int:
    return next(i for i, pool in enumerate(pools) if any(ix.resource.id == rid for ix in pool))


def _pools_overlap(pools: list[list[_Index]]) -> bool:
    seen: set[str] = set()
    for pool in pools:
        ids = {ix.resource.id for ix in pool}
        if ids & seen:
            return True
        seen |= ids
    return False


def _match(feasible: list[list[_Index]], counts: list[int]) -> list[list[_Index]] | None:
    """
    Choose ``counts[i]`` distinct resources for every need *i*, no resource serving two needs.

    A small augmenting-path matching (each need is expanded into ``count`` seats); sizes are tiny, so
    Kuhn's algorithm is plenty. Returns the choice per need in the given order, or None if none exists.
    """
    seats = [i for i, count in enumerate(counts) for _ in range(count)]
    owner: dict[str, int] = {}

    def augment(seat: int, visited: set[str]) -> bool:
        for ix in feasible[seats[seat]]:
            rid = ix.resource.id
            if rid in visited:
                continue
            visited.add(rid)
            if rid not in owner or augment(owner[rid], visited):
                owner[rid] = seat
                return True
        return False

    for seat in range(len(seats)):
        if not augment(seat, set()):
            return None
    chosen_ids = set(owner)
    return [
        sorted(
            (ix for ix in pool if ix.resource.id in chosen_ids and seats[owner[ix.resource.id]] == i),
            key=lambda ix: ix.order,
        )
        for i, pool in enumerate(feasible)
    ]
