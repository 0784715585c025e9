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
can serve it (one resource never serves two needs of one booking), such that:

* every pinned resource is among them, serving a need whose pool holds it (any such need: a resource that
  two needs' pools hold serves whichever leaves the others a choice, so pinning exactly the resources of an
  offered slot always finds it again);
* at least one of the booking's resources is primary: an auxiliary resource is booked only together with a
  primary one (`ResourceRole`). The rule is on the booking as a whole, so a need of auxiliary resources only
  (an X-ray unit) is served beside another need's primary one, but a pool of a car and a trailer never gives
  the trailer alone. A service that can take only auxiliary resources, or pins that leave no room for a
  primary one, are refused as input errors.

The grid: each maximal stretch of a resource's open hours offers starts every ``slot_step`` from its
beginning (plus ``buffer_before`` when buffers must stay inside hours), and again from every local midnight it
runs through (in the resource's zone), so the grid of hours open around the clock, which have no beginning, is
the same whatever window a query asks about; whole-day services offer every local day (or check-in time)
instead. The candidate starts of a service are the union of the grids of every resource in its pools.
Listing and the single-start check decide with the same per-resource test (`_Index.serves`), so a slot that
is listed is a slot that validates.

**How it stays fast.** Nothing is computed per resource until a query needs it, and what is computed is
kept: the load profile, the free bounds for *u* units, and (for services in minutes) the bounds of every
start the resource serves, which is `_Index.serves` solved for all starts at once (`_Index.starts`). When no
resource sits in two needs' pools (pinned ones included), a service's bookable starts are then set algebra on
those bounds (`_Plan.bookable`; the primary rule, where it can refuse, adds the union of the primary
resources' starts), listed with C-level ``range`` steps; large pools are walked lazily instead, trying
resources in order, so that the first slots cost only the resources tried. The plan of a query (service,
duration, pins) is cached, and `slot_starts` (raw integers) and `is_bookable` build no datetime at all. A
loop of point queries (`is_bookable`, `next_start`, `next_available`) soon indexes the plan's bookable starts
as offsets from the epoch (`_Points`), so that each question is one subtraction and one set lookup or
bisection, with no conversion of the question to integers.
Everything else (whole days, nights, pools that share resources) takes the general path, one `_assign`
per candidate, with a small matching where pools share resources; tests hold the two paths equal.

A hold counts while ``now < hold_until``: an expired hold frees its time at that instant, even if no sweeper
has marked it expired yet.
"""

from __future__ import annotations

import enum
import functools
import heapq
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import compress, islice, product, repeat
from operator import add, itemgetter, lt
from typing import Final, cast
from zoneinfo import ZoneInfo

import attrs

from slotengine._checks import shown, tuple_of
from slotengine._time import (
    EPOCH,
    MAX_INSTANT,
    MIN_INSTANT,
    from_micros,
    get_zone,
    localize,
    spoken,
    to_micros,
    to_utc,
)
from slotengine.errors import ConflictError, InvalidInputError
from slotengine.intervals import (
    CapacityProfile,
    Interval,
    IntervalSet,
    _intersect,
    _merge,
    check_interval,
)
from slotengine.model import (
    MAX_UNITS,
    UNLIMITED,
    Need,
    Resource,
    ResourceRole,
    Service,
    ServiceUnit,
    check_id,
    check_text,
)

__all__ = [
    "Assignment",
    "Availability",
    "Explanation",
    "Load",
    "Reason",
    "ReasonCode",
    "Slot",
    "Strategy",
    "day_bounds",
    "local_day_of",
    "whole_days",
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
    _span: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    """The blocked interval in integer microseconds, converted once when the load is made (not part of it)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self,
            "_span",
            (
                to_micros(self.interval.start) - self.buffer_before // _US,
                to_micros(self.interval.end) + self.buffer_after // _US,
            ),
        )

    @classmethod
    def _from_micros(
        cls,
        booking_id: str,
        resource_id: str,
        booked: tuple[int, int],
        blocked: tuple[int, int],
        units: int,
        hold_until: int | None,
    ) -> Load:
        """A load from a storage's integer microseconds: the booked and the blocked interval, the hold's expiry."""
        return cls(
            booking_id,
            resource_id,
            Interval(from_micros(booked[0]), from_micros(booked[1])),
            units=units,
            buffer_before=(booked[0] - blocked[0]) * _US,
            buffer_after=(blocked[1] - booked[1]) * _US,
            hold_until=None if hold_until is None else from_micros(hold_until),
        )

    def is_live(self, now: datetime) -> bool:
        """Return whether this load takes time at *now* (a firm booking, or a hold that has not expired)."""
        if self.hold_until is None:
            return True
        try:
            return now < self.hold_until
        except TypeError:  # a naive or non-datetime *now*: say so as the rest of the API does
            return to_utc(now, "now") < self.hold_until

    @property
    def blocked(self) -> Interval:
        """The time this load keeps its resource busy: its interval widened by its buffers."""
        return Interval(self.interval.start - self.buffer_before, self.interval.end + self.buffer_after)


def _assignment_need(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNITS:
        msg = f"an assignment's need is the need's index in Service.needs, 0 to {MAX_UNITS:,}, got {shown(value)}"
        raise InvalidInputError(msg, field="need")
    return value


def _assignment_label(value: object) -> str:
    return check_text(value, "assignment label", allow_empty=True)


def _assignment_ids(value: object) -> tuple[str, ...]:
    ids = tuple_of(value, str, "resource_ids", label="an assignment's resource_ids")
    for rid in ids:
        check_id(rid, "resource id")
    return ids


@attrs.frozen
class Assignment:
    """
    The resources chosen for one need of a service (``need`` is its index in ``Service.needs``).

    Checked when built, like every value a booking holds, so that a booking can always be stored and read
    back: *resource_ids* is a collection of ids read once (a list or a generator is kept as a tuple; a
    string is refused, not taken for its letters), *label* is text (the need's label, empty if it has none)
    and *need* a whole number, not a flag.

    Raises:
        InvalidInputError: any field is invalid (``field`` names it).
    """

    need: int = attrs.field(converter=_assignment_need)
    label: str = attrs.field(converter=_assignment_label)
    resource_ids: tuple[str, ...] = attrs.field(converter=_assignment_ids)


def _slot_assignments(value: object) -> tuple[Assignment, ...]:
    return tuple_of(value, Assignment, "assignments", label="a slot's assignments")


def _slot_start(value: object) -> datetime:
    return to_utc(value, "start")


def _slot_end(value: object) -> datetime:
    return to_utc(value, "end")


@attrs.frozen(repr=False)
class Slot:
    """
    A bookable start: the booked interval ``[start, end)`` in UTC and who or what would serve it.

    Use `Slot.in_zone` to present it in a client's zone; that never changes the instants.
    """

    start: datetime = attrs.field(converter=_slot_start)
    end: datetime = attrs.field(converter=_slot_end)
    assignments: tuple[Assignment, ...] = attrs.field(converter=_slot_assignments)

    @end.validator
    def _after_start(self, _attribute: object, end: datetime) -> None:
        if end <= self.start:
            msg = f"a slot ends after it starts, not at {end.isoformat()} for a start at {self.start.isoformat()}"
            raise InvalidInputError(msg, field="end")

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
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        return f"Slot({start:%Y-%m-%d %H:%M}Z – {end:%Y-%m-%d %H:%M}Z, {who})"


_Setter = Callable[[object, object], None]
_SET_START: Final[_Setter] = vars(Slot)["start"].__set__
_SET_END: Final[_Setter] = vars(Slot)["end"].__set__
_SET_ASSIGNMENTS: Final[_Setter] = vars(Slot)["assignments"].__set__


def _slot(start: datetime, end: datetime, assignments: tuple[Assignment, ...]) -> Slot:
    """
    Make a `Slot` by setting its three slots directly, for the solver's hot loops.

    attrs' frozen ``__init__`` sets each field through ``object.__setattr__`` by name; the slot descriptors
    do the same in less time. `Slot` has no converter, validator or post-init to skip (a test holds that,
    so this cannot silently bypass one added later), and the solver passes only values it made itself.
    """
    slot: Slot = object.__new__(Slot)
    _SET_START(slot, start)
    _SET_END(slot, end)
    _SET_ASSIGNMENTS(slot, assignments)
    return slot


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


_EVERYTHING: Final[tuple[int, ...]] = (_MIN_US, _MAX_US)


class _Index:
    """
    What the solver knows about one resource, with lazily built per-units lookups.

    Nothing is computed for a resource until a query asks about it: its loads are sorted, its capacity
    profile built and its free bounds derived on first use, then kept for every later query.
    """

    __slots__ = (
        "_fits",
        "_live",
        "_loads",
        "_ok",
        "_profile",
        "_starts",
        "capacity",
        "day_load",
        "hours",
        "off",
        "order",
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
        self.zone = zone
        self._live = loads
        self._loads: list[Load] | None = None
        self._profile: CapacityProfile | None = None
        self._fits: dict[int, tuple[int, ...]] = {}
        self._ok: dict[int, tuple[int, ...]] = {}
        self._starts: dict[tuple[int, int, int, int, bool], tuple[int, ...]] = {}
        self.day_load: dict[int, int] = {}

    @property
    def loads(self) -> list[Load]:
        """The live loads on this resource, by start, then booking id (the same order whatever storage gave)."""
        if self._loads is None:
            self._loads = sorted(self._live, key=lambda ld: (ld.interval.start, ld.booking_id))
        return self._loads

    @property
    def profile(self) -> CapacityProfile:
        """The load of this resource over time, buffers included."""
        if self._profile is None:
            self._profile = CapacityProfile._from_micros((*ld._span, ld.units) for ld in self._live)
        return self._profile

    def fits(self, units: int) -> tuple[int, ...]:
        """Where ``load + units <= capacity`` (everything, for an unlimited resource)."""
        found = self._fits.get(units)
        if found is None:
            if self.capacity is None:
                found = _EVERYTHING
            elif units > self.capacity:
                found = ()
            elif self.capacity == units:
                # Room for all the capacity only where nothing is loaded at all: outside the blocked time.
                found = _minus(_EVERYTHING, self.busy())
            else:
                found = self.profile._where_at_most_us(self.capacity - units, _MIN_US, _MAX_US)
            self._fits[units] = found
        return found

    def ok(self, units: int) -> tuple[int, ...]:
        """Open hours where ``load + units <= capacity``."""
        found = self._ok.get(units)
        if found is None:
            if self.capacity is None:
                found = self.hours
            elif self.capacity == units:
                found = _minus(self.hours, self.busy())
            else:
                found = _cut(self.hours, self.fits(units))
            self._ok[units] = found
        return found

    def busy(self) -> tuple[int, ...]:
        """Where any load (with its buffers) takes this resource, as normalized bounds."""
        spans = [ld._span for ld in self._live]
        return _merge(list(map(itemgetter(0), spans)), list(map(itemgetter(1), spans)))

    def serves(self, start: int, end: int, before: int, after: int, units: int, buffers_in_hours: bool) -> bool:
        """The one per-resource test that listing and validation share (see the module docstring)."""
        if buffers_in_hours:
            return _contained(self.ok(units), start - before, end + after)
        return _contained(self.hours, start, end) and _contained(self.fits(units), start - before, end + after)

    def starts(self, key: tuple[int, int, int, int, bool]) -> tuple[int, ...]:
        """
        Every start *t* that `serves` accepts for a booking in minutes, as normalized half-open bounds of *t*.

        *key* is ``(units, before, length, after, buffers_in_hours)``. `serves` asks that one interval lies
        inside one piece of a set; the starts for which it does form, piece by piece, a range of *t*, so the
        answer for every start at once is the set shrunk by the booking's extent.
        """
        found = self._starts.get(key)
        if found is None:
            units, before, length, after, in_hours = key
            if in_hours:
                found = _shrink(self.ok(units), before, length + after)
            else:
                found = _cut(_shrink(self.hours, 0, length), _shrink(self.fits(units), before, length + after))
            self._starts[key] = found
        return found


def _nonempty(starts: list[int], ends: list[int]) -> tuple[int, ...]:
    """Flat bounds of the pieces ``[starts[i], ends[i])`` that are not empty (the inputs in order, apart)."""
    keep = list(map(lt, starts, ends))
    if not all(keep):
        starts = list(compress(starts, keep))
        ends = list(compress(ends, keep))
    flat = [0] * (2 * len(starts))
    flat[0::2] = starts
    flat[1::2] = ends
    return tuple(flat)


def _shrink(bounds: tuple[int, ...], before: int, after: int) -> tuple[int, ...]:
    """
    Return the *t* for which ``[t - before, t + after)`` lies inside one piece of *bounds* (``after >= 1``).

    A piece ``[a, b)`` takes ``a + before <= t <= b - after``. The result stays normalized: two pieces of
    *bounds* are at least 1 µs apart, and shrinking by ``before + after >= 1`` keeps them apart.
    """
    starts = list(map(add, bounds[0::2], repeat(before)))
    ends = list(map(add, bounds[1::2], repeat(1 - after)))
    return _nonempty(starts, ends)


_LOW: Final = -(1 << 62)
_HIGH: Final = 1 << 62


def _complement(bounds: tuple[int, ...]) -> tuple[int, ...]:
    """Everything not in normalized *bounds* (between two sentinels far beyond any instant)."""
    out = (_LOW, *bounds, _HIGH)
    if out[0] >= out[1]:
        out = out[2:]
    if out and out[-2] >= out[-1]:
        out = out[:-2]
    return out


def _cut(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """
    The intersection of two normalized bounds, as the complement of the union of their complements.

    That takes only C-level steps (tuple building, `_merge`'s sorts of two sorted runs, `map` and
    `compress`), where a two-pointer walk spends a Python loop iteration on every piece.
    """
    if not a or not b:
        return ()
    ca, cb = _complement(a), _complement(b)
    return _complement(_merge([*ca[0::2], *cb[0::2]], [*ca[1::2], *cb[1::2]]))


def _minus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The difference of two normalized bounds, C-level steps only (see `_cut`)."""
    if not a or not b:
        return a
    ca = _complement(a)
    return _complement(_merge([*ca[0::2], *b[0::2]], [*ca[1::2], *b[1::2]]))


def _at_least(sets: Sequence[tuple[int, ...]], k: int) -> tuple[int, ...]:
    """Return, as normalized bounds, where at least *k* of the normalized *sets* hold."""
    if k <= 0:
        return _EVERYTHING
    if len(sets) < k:
        return ()
    if len(sets) == 1:
        return sets[0]
    starts: list[int] = []
    ends: list[int] = []
    for bounds in sets:
        starts.extend(bounds[0::2])
        ends.extend(bounds[1::2])
    if k == 1:
        return _merge(starts, ends)
    events = sorted([(s, 1) for s in starts] + [(e, -1) for e in ends])
    out: list[int] = []
    level = 0
    opened: int | None = None
    i, n = 0, len(events)
    while i < n:
        t = events[i][0]
        while i < n and events[i][0] == t:
            level += events[i][1]
            i += 1
        if level >= k:
            if opened is None:
                opened = t
        elif opened is not None:
            out.append(opened)
            out.append(t)
            opened = None
    return tuple(out)


def _snap(bounds: tuple[int, ...], phase: int, step: int) -> tuple[int, ...]:
    """
    *bounds* with every piece started at its first start of the phase, and pieces that hold none dropped.

    Only starts of the phase are ever offered, so this changes no answer; it lets the first start at or after
    any instant be found with one bisection.
    """
    starts = [u + (phase - u) % step for u in bounds[0::2]]
    ends = list(bounds[1::2])
    return _nonempty(starts, ends)


def _clip(bounds: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    """Normalized *bounds* cut to ``[lo, hi)``, by bisection (nothing to do, in the common case)."""
    if not bounds or (bounds[0] >= lo and bounds[-1] <= hi):
        return bounds
    i = bisect_right(bounds, lo)
    j = bisect_left(bounds, hi)
    inner = list(bounds[i:j])
    if i & 1:
        inner.insert(0, lo)
    if j & 1:
        inner.append(hi)
    return tuple(inner)


def _intersect_all(sets: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    if not sets:
        return _EVERYTHING
    found = sets[0]
    for bounds in sets[1:]:
        found = _cut(found, bounds)
    return found


@attrs.frozen
class _Shape:
    """A service's booking shape for one query: its duration, units of need, grid and buffers, in µs."""

    service: Service
    duration: timedelta
    before: int
    after: int
    step: int
    in_hours: bool


_POINTS_MAX: Final = 1 << 17
"""A plan indexes its bookable starts for point queries (`_Points`, about 130 bytes a start) up to this many."""
_PAYBACK: Final = 4
"""A plan builds its `_Points` once point queries number a quarter of its bookable starts (see `_Plan.points`)."""
_MIN_OFFSET: Final = MIN_INSTANT - EPOCH
_MAX_OFFSET: Final = MAX_INSTANT - EPOCH


class _Points:
    """
    Every bookable start of a fast plan, indexed so that a point query never turns its datetime into µs.

    ``start - EPOCH`` is one C subtraction, exact in every zone (it applies ``utcoffset``, fold included);
    turning that `timedelta` into integer µs costs a floor division worth five such subtractions, as much as
    the rest of the answer. So the starts are also kept as offsets from the epoch: `Availability.is_bookable`
    is one set lookup, `Availability.next_start` and `Availability.next_available` one bisection.
    """

    __slots__ = ("members", "micros", "offsets")

    def __init__(self, micros: list[int]) -> None:
        self.micros = micros
        """The starts, sorted, as µs since the epoch."""
        self.offsets = [t * _US for t in micros]
        """The same starts as offsets from `EPOCH`."""
        self.members = frozenset(self.offsets)


_EAGER: Final = 8
"""Plans that take the starts of up to this many resources compute their bookable starts all at once."""
_PLANS: Final = 256
"""How many query plans (service, duration, pins) an `Availability` keeps before it starts over."""


class _Base:
    """What every query for one service and duration shares, whatever is pinned: shape, pools and grid."""

    __slots__ = (
        "_grid",
        "_phases",
        "by_id",
        "holders",
        "length",
        "members",
        "minutes",
        "overlapping",
        "pools",
        "positions",
        "service",
        "shape",
    )

    def __init__(self, shape: _Shape, pools: list[list[_Index]]) -> None:
        self.service = shape.service
        self.shape = shape
        self.pools = pools
        self.by_id: dict[str, _Index] = {}
        self.holders: dict[str, list[int]] = {}
        self.positions: list[dict[str, int]] = []
        for i, pool in enumerate(pools):
            self.positions.append({ix.resource.id: k for k, ix in enumerate(pool)})
            for ix in pool:
                self.by_id.setdefault(ix.resource.id, ix)
                self.holders.setdefault(ix.resource.id, []).append(i)
        self.members = list(self.by_id.values())
        self.overlapping = _pools_overlap(pools)
        self.minutes = shape.service.unit is ServiceUnit.MINUTES
        self.length = shape.duration // _US
        self._grid: dict[int, tuple[int, ...]] | None = None
        self._phases: frozenset[int] | None = None

    def _stretches(self) -> tuple[list[int], list[int]]:
        """Every grid segment of a member's open hours, as the first and one past the last start it offers."""
        shape = self.shape
        lead = shape.before if shape.in_hours else 0
        cut = self.length + (shape.after if shape.in_hours else 0) - 1
        firsts: list[int] = []
        ends: list[int] = []
        seen: set[tuple[tuple[int, ...], ZoneInfo]] = set()
        for ix in self.members:
            key = (ix.hours, ix.zone)
            if key in seen:
                continue
            seen.add(key)
            more_firsts, more_ends = _segments(ix.hours, ix.zone, lead, cut)
            firsts += more_firsts
            ends += more_ends
        return firsts, ends

    def phases(self) -> set[int]:
        """The phases (``t % step``) of the grid: one when every stretch opens on the same rhythm."""
        if self._phases is None:
            if self._grid is not None:
                self._phases = frozenset(self._grid)
            else:
                step = self.shape.step
                self._phases = frozenset(u % step for u in self._stretches()[0])
        return set(self._phases)

    def grid(self) -> dict[int, tuple[int, ...]]:
        """
        The union of the members' grids (services in minutes), as spans of starts by phase (``t % step``).

        A stretch ``[p, q)`` of open hours offers ``p + lead, p + lead + step, ...`` up to ``q - length -
        tail``: every start of one phase within a span. Spans of one phase merge into normalized bounds, so the
        union of all grids is a few bounds per phase, and stretches shared by many resources count once.
        """
        if self._grid is None:
            step = self.shape.step
            firsts, ends = self._stretches()
            spans: dict[int, tuple[list[int], list[int]]] = {}
            for u, v in zip(firsts, ends, strict=True):
                starts, stops = spans.setdefault(u % step, ([], []))
                starts.append(u)
                stops.append(v)
            self._grid = {phase: _merge(starts, stops) for phase, (starts, stops) in spans.items()}
        return self._grid


class _NeedPlan:
    """One need of a fast plan: the pinned resources that must serve it, and the others it is filled from."""

    __slots__ = ("index", "key", "label", "mine", "msets", "osets", "others", "want")

    def __init__(self, index: int, need: Need, mine: list[_Index], others: list[_Index], base: _Base) -> None:
        shape = base.shape
        self.index = index
        self.label = need.label
        self.key = (need.units, shape.before, base.length, shape.after, shape.in_hours)
        self.mine = mine
        self.want = need.count - len(mine)
        self.others: list[_Index] = others if self.want else []
        self.msets = [ix.starts(self.key) for ix in self.mine]
        self.osets: list[tuple[int, ...] | None] = [None] * len(self.others)

    def primaries(self) -> list[tuple[int, ...]]:
        """The starts of each primary resource among the others (what a booking that lacks one may take)."""
        if not self.want:
            return []
        osets = self.osets
        out: list[tuple[int, ...]] = []
        for j, ix in enumerate(self.others):
            if ix.resource.role is ResourceRole.PRIMARY:
                found = osets[j]
                if found is None:
                    found = osets[j] = ix.starts(self.key)
                out.append(found)
        return out

    def allowed(self) -> tuple[int, ...]:
        """The starts at which this need can be served."""
        parts = list(self.msets)
        if self.want:
            osets = self.osets
            for j, ix in enumerate(self.others):
                if osets[j] is None:
                    osets[j] = ix.starts(self.key)
            parts.append(_at_least(cast("list[tuple[int, ...]]", osets), self.want))
        return _intersect_all(parts)


class _Plan:
    """
    A query plan for one service, duration and set of pins, cached by `Availability` across queries.

    Each pinned resource must serve one need whose pool holds it. When each is held by one need's pool only,
    it is that need's (``mine``) and the need is filled up from the rest of its pool (``others``, never a
    pinned resource); a resource pinned into several needs' pools goes wherever a matching places it.

    It is *fast* when the service is booked in minutes, every pin has one need and no other resource sits in
    two needs' pools: then no matching is needed, every need is served independently, and the bookable
    starts are set algebra on each resource's `_Index.starts` intersected with the grid, instead of one test
    per candidate.
    """

    __slots__ = (
        "_asked",
        "_assignments",
        "_bookable",
        "_count",
        "_fixed",
        "_fixed_known",
        "_points",
        "base",
        "binds",
        "duration",
        "earliest",
        "fast",
        "first_orders",
        "latest",
        "length",
        "mine",
        "needs",
        "others",
        "overlapping",
        "pin",
        "pools",
        "sets",
        "single",
        "step",
    )

    def __init__(self, base: _Base, pin: frozenset[str], now: int, *, fast: bool = True) -> None:
        self.base = base
        self.pin = pin
        pools = self.pools = base.pools
        service = base.service
        self.earliest = now + service.min_notice // _US
        """The first start the minimum notice allows."""
        self.latest = _HIGH if service.horizon is None else now + service.horizon // _US
        """The last start the horizon allows."""
        self.step = base.shape.step
        self.length = base.length
        self.duration = base.shape.duration
        self.others = [[ix for ix in pool if ix.resource.id not in pin] for pool in pools] if pin else pools
        """Each need's pool without the pinned resources: what fills a need beyond its pins."""
        holders = base.holders
        self.mine: list[list[_Index]] | None = None
        """Each need's pinned resources, when every pin sits in one need's pool only (else None: see above)."""
        if all(len(holders[rid]) == 1 for rid in pin):
            self.mine = [
                [base.by_id[rid] for rid in sorted((r for r in pin if holders[r][0] == i), key=order.__getitem__)]
                for i, order in enumerate(base.positions)
            ]
        self.overlapping = self.mine is None or (base.overlapping and _pools_overlap(self.others))
        """Whether choosing resources takes a matching (a resource that two needs could take)."""
        self.binds = self._binds(service)
        """Whether a choice could lack a primary resource, so that `_assign` and `bookable` must see to one."""
        self.fast = fast and base.minutes and not self.overlapping
        mine = self.mine
        self.needs = (
            [
                _NeedPlan(i, need, mine[i], others, base)
                for i, (need, others) in enumerate(zip(service.needs, self.others, strict=True))
            ]
            if self.fast and mine is not None
            else []
        )
        self.first_orders: list[Sequence[int]] = [range(len(np.others)) for np in self.needs]
        self.sets = sum(len(np.mine) + len(np.others) for np in self.needs)
        """How many resources' starts the bookable starts take (the pinned ones, and the pools to fill)."""
        self._bookable: dict[int, tuple[int, ...]] | None = None
        self.single: tuple[int, tuple[int, ...], tuple[Assignment, ...]] | None = None
        """Once known: the one phase of the bookable starts, their bounds, and the one assignment there is."""
        self._assignments: dict[tuple[int, ...], tuple[Assignment, ...]] = {}
        self._points: _Points | None = None
        self._count: int | None = None
        self._asked = 0
        self._fixed: tuple[Assignment, ...] | None = None
        self._fixed_known = False

    @property
    def fixed(self) -> tuple[Assignment, ...] | None:
        """
        With no choice to make (every free resource of every need is taken), the one assignment there is.

        Worked out when first asked (listing asks; a point question, which chooses at its start, does not).
        """
        if not self._fixed_known:
            if self.fast and not self.binds and all(np.want == len(np.others) for np in self.needs):
                self._fixed = self.pick_bookable(self.first_orders)
            self._fixed_known = True
        return self._fixed

    def _binds(self, service: Service) -> bool:
        """
        Whether the rule "an auxiliary resource is booked only together with a primary one" may refuse a choice.

        It never does when a pinned resource is primary, or when some need must take a primary resource
        whatever it chooses: it wants more resources than its pool (pins aside) has auxiliary ones. (A need
        whose pool holds resources pinned into several pools wants at least its count less all of those.)
        """
        pin = self.pin
        if any(self.base.by_id[rid].resource.role is ResourceRole.PRIMARY for rid in pin):
            return False
        mine = self.mine
        for i, (need, pool, others) in enumerate(zip(service.needs, self.pools, self.others, strict=True)):
            pinned = len(mine[i]) if mine is not None else sum(1 for ix in pool if ix.resource.id in pin)
            if need.count - pinned > sum(1 for ix in others if ix.resource.role is not ResourceRole.PRIMARY):
                return False
        return True

    @property
    def eager(self) -> bool:
        """Whether listing should start from the bookable starts (known, or cheap to know) of the plan."""
        return self._bookable is not None or self.sets <= _EAGER

    def bookable(self) -> dict[int, tuple[int, ...]]:
        """Every bookable start (notice and horizon applied), as spans by phase of the grid."""
        if self._bookable is None:
            # Each need's starts lie within its pool's grid spans, so *allowed* lies within the union of the
            # spans: with one phase, the bookable starts are simply the starts of that phase in *allowed*.
            # The minimum notice and the horizon depend only on now and the service: apply them here too.
            allowed = _clip(_intersect_all([np.allowed() for np in self.needs]), self.earliest, self.latest + 1)
            if self.binds:
                # No need is sure to take a primary resource: a start also needs one free in some need's pool
                # (that need can then take it and fill up from the rest, as `pick` does).
                allowed = _cut(allowed, _at_least([bounds for np in self.needs for bounds in np.primaries()], 1))
            phases = self.base.phases()
            step = self.step
            found: dict[int, tuple[int, ...]] = {}
            if len(phases) == 1:
                phase = phases.pop()
                bounds = _snap(allowed, phase, step)
                if bounds:
                    found[phase] = bounds
                    if self.fixed is not None:
                        self.single = (phase, bounds, self.fixed)
            else:
                for phase, spans in self.base.grid().items():
                    bounds = _snap(_cut(spans, allowed), phase, step)
                    if bounds:
                        found[phase] = bounds
            self._bookable = found
        return self._bookable

    def points(self) -> _Points | None:
        """
        The bookable starts indexed for point queries (a fast plan), once the queries pay for it; else None.

        Each call counts as one point query. Building the index costs about what a quarter as many point
        queries save, so it is built when the queries asked reach a quarter of the starts (`_PAYBACK`): one
        question on a year of 5-minute starts builds nothing, and a loop of questions soon has it.
        """
        found = self._points
        if found is None:
            groups = self.bookable()
            count = self._count
            if count is None:
                step = self.step
                count = self._count = sum(
                    (bounds[k + 1] - bounds[k] - 1) // step + 1
                    for bounds in groups.values()
                    for k in range(0, len(bounds), 2)
                )
            self._asked += 1
            if count <= _POINTS_MAX and self._asked * _PAYBACK >= count:
                found = self._points = _Points(_collect(groups, self.step, _LOW, _HIGH))
        return found

    def orders(self, strategy: Strategy, preferred: Sequence[str]) -> list[Sequence[int]] | None:
        """The order each need's free resources are tried in, or None when it depends on the start."""
        if strategy is Strategy.LEAST_LOADED:
            return None
        if strategy is Strategy.PREFERRED and preferred:
            rank = {rid: i for i, rid in enumerate(preferred)}
            return [
                sorted(
                    range(len(np.others)),
                    key=lambda j, o=np.others: (rank.get(o[j].resource.id, len(rank)), o[j].order),  # type: ignore[misc]
                )
                for np in self.needs
            ]
        return self.first_orders

    def pick_bookable(self, orders: list[Sequence[int]]) -> tuple[Assignment, ...]:
        """The assignment when every free resource is taken: all pins, then the others in *orders*."""
        return self._assignment([j for order in orders for j in order])

    def pick(self, t: int, orders: list[Sequence[int]]) -> tuple[Assignment, ...] | None:
        """The resources that serve start *t* (as `Availability._assign` chooses them), or None."""
        chosen: list[int] = []
        for np, order in zip(self.needs, orders, strict=True):
            for bounds in np.msets:
                if not bisect_right(bounds, t) & 1:
                    return None
            want = np.want
            if want:
                osets = np.osets
                for j in order:
                    found = osets[j]
                    if found is None:
                        found = osets[j] = np.others[j].starts(np.key)
                    if bisect_right(found, t) & 1:
                        chosen.append(j)
                        want -= 1
                        if not want:
                            break
                else:
                    return None
        if self.binds and not self._has_primary(chosen):
            return self._with_primary(t, orders, chosen)
        return self._assignment(chosen)

    def _has_primary(self, chosen: list[int]) -> bool:
        """Whether the chosen others (as `_assignment` takes them) include a primary resource."""
        k = 0
        for np in self.needs:
            if any(np.others[j].resource.role is ResourceRole.PRIMARY for j in chosen[k : k + np.want]):
                return True
            k += np.want
        return False

    def _with_primary(self, t: int, orders: list[Sequence[int]], chosen: list[int]) -> tuple[Assignment, ...] | None:
        """
        *chosen*, which has no primary resource, with one: the first need that has a free primary one takes it.

        It takes the place of the need's last choice (the first free primary one in the need's order comes after
        every choice, which were all the free auxiliary ones before it). As `Availability._assign` does.
        """
        k = 0
        for np, order in zip(self.needs, orders, strict=True):
            want = np.want
            if want:
                picked = chosen[k : k + want]
                for j in order:
                    ix = np.others[j]
                    if ix.resource.role is ResourceRole.PRIMARY and bisect_right(ix.starts(np.key), t) & 1:
                        return self._assignment([*chosen[:k], *picked[:-1], j, *chosen[k + want :]])
                k += want
        return None

    def _assignment(self, chosen: list[int]) -> tuple[Assignment, ...]:
        """The assignments for the chosen others (indexes into each need's others, need after need)."""
        key = tuple(chosen)
        assignments = self._assignments.get(key)
        if assignments is None:
            out: list[Assignment] = []
            k = 0
            for np in self.needs:
                ids = [ix.resource.id for ix in np.mine]
                ids.extend(np.others[j].resource.id for j in chosen[k : k + np.want])
                k += np.want
                out.append(Assignment(np.index, np.label, tuple(ids)))
            assignments = self._assignments[key] = tuple(out)
        return assignments


def _ranges(bounds: tuple[int, ...], phase: int, step: int, lo: int, hi: int) -> Iterator[int]:
    """The starts of one phase of the grid within *bounds* and ``[lo, hi)``, in order."""
    i = bisect_right(bounds, lo)
    i -= i & 1
    for k in range(i, len(bounds), 2):
        u = bounds[k]
        if u >= hi:
            return
        u = max(u, lo)
        yield from range(u + (phase - u) % step, min(bounds[k + 1], hi), step)


def _progression(groups: dict[int, tuple[int, ...]], step: int, lo: int, hi: int) -> Iterator[int]:
    """The starts of every phase within their bounds and ``[lo, hi)``, in order (phases never collide)."""
    runs = [_ranges(bounds, phase, step, lo, hi) for phase, bounds in groups.items()]
    if len(runs) == 1:
        return runs[0]
    return heapq.merge(*runs)


def _collect(groups: dict[int, tuple[int, ...]], step: int, lo: int, hi: int) -> list[int]:
    """`_progression` as a list, built with C-level ``range`` extends."""
    out: list[int] = []
    extend = out.extend
    for phase, bounds in groups.items():
        i = bisect_right(bounds, lo)
        i -= i & 1
        j = bisect_left(bounds, hi, i)
        j += j & 1
        if i >= j:
            continue
        starts = list(bounds[i:j:2])
        ends = list(bounds[i + 1 : j : 2])
        starts[0] = max(starts[0], lo)
        ends[-1] = min(ends[-1], hi)
        for u, v in zip(starts, ends, strict=True):
            extend(range(u + (phase - u) % step, v, step))
    if len(groups) > 1:
        out.sort()
    return out


def _fixed_slots(
    groups: dict[int, tuple[int, ...]],
    step: int,
    lo: int,
    hi: int,
    duration: timedelta,
    assignments: tuple[Assignment, ...],
) -> Iterator[Slot]:
    """The slots of `_progression` that all take the same *assignments*, stepping datetimes, not ints."""
    if len(groups) != 1:
        for t in _progression(groups, step, lo, hi):
            start = EPOCH + t * _US
            yield _slot(start, start + duration, assignments)
        return
    ((phase, bounds),) = groups.items()
    step_td = step * _US
    i = bisect_right(bounds, lo)
    i -= i & 1
    for k in range(i, len(bounds), 2):
        u = bounds[k]
        if u >= hi:
            return
        u = max(u, lo)
        first = u + (phase - u) % step
        start = EPOCH + first * _US
        for _ in range(first, min(bounds[k + 1], hi), step):
            yield _slot(start, start + duration, assignments)
            start += step_td


def _first_of_phase(phase: int, bounds: tuple[int, ...], step: int, lo: int) -> int | None:
    """The first start of one phase at or after *lo* within *bounds* (snapped: see `_snap`), or None."""
    i = bisect_right(bounds, lo)
    if i & 1:  # inside a piece: its next start of the phase, if it still holds one
        t = lo + (phase - lo) % step
        if t < bounds[i]:
            return t
        i += 1
    return bounds[i] if i < len(bounds) else None


def _first(groups: dict[int, tuple[int, ...]], step: int, lo: int, hi: int) -> int | None:
    """The first start of `_progression` over snapped bounds (see `_snap`), or None."""
    best: int | None = None
    for phase, bounds in groups.items():
        t = _first_of_phase(phase, bounds, step, lo)
        if t is not None and t < hi and (best is None or t < best):
            best = t
    return best


def _micros(value: object, name: str) -> int:
    """An aware datetime as µs since the epoch, checked like `to_utc` (one subtraction when all is well)."""
    if type(value) is datetime and value.tzinfo is not None:
        try:
            micros: int = (value - EPOCH) // _US
        except TypeError:  # the tzinfo gives no offset: naive after all, and to_utc says so
            pass
        else:
            if _MIN_US <= micros <= _MAX_US:
                return micros
    return to_micros(to_utc(value, name))


_FIRST: Final = Strategy.FIRST_AVAILABLE

_Quick = tuple[Service, timedelta | None, Collection[str], _Plan, _Points | None, int, tuple[int, ...] | None]
"""service, duration, pin, plan, its points, and (for a plan that will never have points) its one phase and
bounds, or None when it has several phases."""


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
        self._zone = default_zone
        now_utc = self.now
        by_resource: dict[str, list[Load]] = {}
        for load in loads:
            until = load.hold_until
            if until is None or now_utc < until:  # Load.is_live, inlined: this loop sees every load
                found = by_resource.get(load.resource_id)
                if found is None:
                    by_resource[load.resource_id] = [load]
                else:
                    found.append(load)
        self._index: dict[str, _Index] = {}
        self._bases: dict[tuple[int, timedelta | None], _Base] = {}
        self._plans: dict[tuple[int, timedelta | None, frozenset[str]], _Plan] = {}
        self._last: tuple[Service, timedelta | None, Collection[str], _Plan] | None = None
        self._quick: _Quick | None = None
        """The last fast plan asked about with the same (immutable) arguments, for loops of point queries."""
        self._fast = True  # False (set before the first query) forces the general path: tests compare the two
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
                by_resource.get(resource.id, []),
                get_zone(resource.zone) if resource.zone else default_zone,
            )
        ends = [ix.hours[-1] for ix in self._index.values() if ix.hours]
        self._hours_end: int | None = max(ends) if ends else None

    # --- the service's shape and its pools ------------------------------------------------------------

    def _shape(self, service: object, duration: timedelta | None) -> _Shape:
        if not isinstance(service, Service):
            msg = f"expected a Service, got {type(service).__name__}"
            raise InvalidInputError(msg)
        chosen = service.duration if duration is None else duration
        if not isinstance(chosen, timedelta) or not service.allows_duration(chosen):
            low, high = service.min_duration or service.duration, service.max_duration or service.duration
            allowed = str(low) if low == high else f"{low} to {high}"
            if service.unit is not ServiceUnit.MINUTES:
                allowed += " in whole days"
            msg = f"{service.name} cannot be booked for {chosen}: it allows {allowed}"
            raise InvalidInputError(msg, field="duration")
        return _Shape(
            service,
            chosen,
            service.buffer_before // _US,
            service.buffer_after // _US,
            service.step // _US,
            not service.buffers_outside_hours,
        )

    def _base(self, service: Service, duration: timedelta | None) -> _Base:
        key = (id(service), duration)
        base = self._bases.get(key)
        if base is not None and base.service is service:
            return base
        shape = self._shape(service, duration)
        pools = [[ix for ix in self._index.values() if need.matches(ix.resource)] for need in service.needs]
        unmatched = next((need for need, pool in zip(service.needs, pools, strict=True) if not pool), None)
        if unmatched is not None:
            msg = f"service {service.id!r} cannot be booked: its need {unmatched!r} matches none of the resources"
            raise InvalidInputError(msg, service_id=service.id)
        if not any(ix.resource.role is ResourceRole.PRIMARY for pool in pools for ix in pool):
            msg = (
                f"service {service.id!r} can only take auxiliary resources; an auxiliary resource is "
                "booked only together with a primary one"
            )
            raise InvalidInputError(msg, service_id=service.id)
        base = _Base(shape, pools)
        if len(self._bases) >= _PLANS:
            self._bases.clear()
        self._bases[key] = base
        return base

    def _plan(self, service: Service, duration: timedelta | None, pin: Collection[str]) -> _Plan:
        """The cached plan for a query: shape and pools checked once, pins applied (see `_Plan`)."""
        last = self._last
        if last is not None and last[0] is service and last[1] is duration and last[2] is pin:
            return last[3]
        pins = pin if type(pin) is frozenset else frozenset(pin)
        if not isinstance(duration, timedelta | None):
            self._shape(service, duration)  # type: ignore[unreachable]  # raises the precise error
        key = (id(service), duration, pins)
        plan = self._plans.get(key)
        if plan is None or plan.base.service is not service:
            base = self._base(service, duration)
            self._check_pins(base, pins)
            plan = _Plan(base, pins, self._now_us, fast=self._fast)
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            self._plans[key] = plan
        # The same arguments again (a loop of point queries) skip even the key; only immutable pins qualify.
        if type(pin) is tuple or type(pin) is frozenset:
            self._last = (service, duration, pin, plan)
        return plan

    def _check_preferred(self, strategy: Strategy, preferred: Sequence[str]) -> None:
        """Refuse preferred resources that would be ignored: another strategy, or ids that are no resource here."""
        if strategy != Strategy.PREFERRED:
            msg = f"preferred resources are only used with strategy 'preferred', not {str(strategy)!r}"
            raise InvalidInputError(msg, field="preferred")
        for rid in preferred:
            if rid not in self._index:
                msg = f"preferred resource {rid!r} is not one of the resources given"
                raise InvalidInputError(msg, resource_id=rid)

    def _check_pins(self, base: _Base, pin: frozenset[str]) -> None:
        """
        Refuse pins that no booking of the service could keep, whatever the time.

        Each pinned resource must serve a need whose pool holds it (a resource in several needs' pools may
        serve any one of them), so: an unknown id, an id that no need takes, more pins than the needs that
        take them have room for, or pins that leave no room for a primary resource when none of them is one.
        """
        if not pin:
            return
        service = base.service
        ordered = sorted(pin)
        for rid in ordered:
            if rid not in self._index:
                msg = f"pinned resource {rid!r} is not one of the resources given"
                raise InvalidInputError(msg, resource_id=rid)
            if rid not in base.holders:
                msg = f"pinned resource {rid!r} does not match any need of service {service.id!r}"
                raise InvalidInputError(msg, resource_id=rid)
        counts = [need.count for need in service.needs]
        stuck = _place(ordered, base.holders, counts)
        if stuck is not None:
            ids, needs = stuck
            labels = [repr(service.needs[i].label or f"need {i + 1}") for i in needs]
            room = sum(counts[i] for i in needs)
            if len(needs) == 1:
                where = f"to the need {labels[0]} of service {service.id!r}, which takes only {room}"
            else:
                where = (
                    f"that only the needs {', '.join(labels)} of service {service.id!r} take, "
                    f"which take only {room} between them"
                )
            msg = f"{len(ids)} resources are pinned ({', '.join(ids)}) {where}"
            raise InvalidInputError(msg, service_id=service.id)
        if any(base.by_id[rid].resource.role is ResourceRole.PRIMARY for rid in ordered):
            return
        primaries = [
            ix.resource.id
            for ix in base.members
            if ix.resource.role is ResourceRole.PRIMARY and ix.resource.id not in pin
        ]
        if not any(_place([*ordered, rid], base.holders, counts) is None for rid in primaries):
            msg = (
                f"pinning {', '.join(ordered)} leaves service {service.id!r} no room for a primary resource; "
                "an auxiliary resource is booked only together with a primary one"
            )
            raise InvalidInputError(msg, service_id=service.id)

    # --- the booked interval of one start --------------------------------------------------------------

    def _booked(self, shape: _Shape, start: int, zone: ZoneInfo) -> int | None:
        """Return the end of the booking starting at *start*, or None if *start* is not a valid start."""
        service = shape.service
        if service.unit is ServiceUnit.MINUTES:
            return start + shape.duration // _US
        first, last = day_bounds(service)
        day = local_day_of(from_micros(start), first, zone)
        if day is None:
            return None
        end = to_micros(localize(datetime.combine(day + shape.duration // _ONE_DAY * _ONE_DAY, last), zone))
        return end if end > start else None

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
        previous = None
        while True:
            start = to_micros(localize(datetime.combine(day, first), zone))
            if start >= hi:
                return
            if start >= lo and start != previous:  # a date the zone skipped starts with the next one: once
                yield start
            previous = start
            day += timedelta(days=step_days)

    def _grid(self, shape: _Shape, ix: _Index, lo: int, hi: int) -> Iterator[int]:
        """The candidate starts that resource *ix* offers in [lo, hi)."""
        if shape.service.unit is not ServiceUnit.MINUTES:
            yield from self._day_starts(shape, ix.zone, lo, hi)
            return
        lead = shape.before if shape.in_hours else 0
        cut = shape.duration // _US + (shape.after if shape.in_hours else 0) - 1
        step = shape.step
        bounds = ix.hours
        i = bisect_right(bounds, lo)
        i -= i % 2
        for k in range(i, len(bounds), 2):
            if bounds[k] >= hi:
                return
            for first, end in zip(*_segments(bounds[k : k + 2], ix.zone, lead, cut), strict=True):
                t = first if first >= lo else first - ((first - lo) // step) * step  # the first at or after lo
                while t < end and t < hi:
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

    def _order(self, pool: list[_Index], strategy: Strategy, preferred: Sequence[str], start: int) -> list[_Index]:
        if strategy is Strategy.PREFERRED and preferred:
            rank = {rid: i for i, rid in enumerate(preferred)}
            return sorted(pool, key=lambda ix: (rank.get(ix.resource.id, len(rank)), ix.order))
        if strategy is Strategy.LEAST_LOADED:
            return sorted(pool, key=lambda ix: (self._day_load(ix, start), ix.order))
        return pool

    def _assign(
        self,
        plan: _Plan,
        start: int,
        strategy: Strategy,
        preferred: Sequence[str],
        *,
        primary: bool = True,
    ) -> tuple[int, tuple[Assignment, ...]] | None:
        """
        Return ``(end, assignments)`` if *start* can be served, else None: the single decision point.

        Every pinned resource serves a need whose pool holds it; the rest of every need is filled in the
        strategy's order. When a resource could go to two needs (pools that share resources, or a resource
        pinned into several pools), a matching keeps one resource to one need and finds a choice whenever
        there is one. With *primary* (always, but for `explain`'s look at why not), the choice holds a
        primary resource: "an auxiliary resource is booked only together with a primary one".
        """
        shape = plan.base.shape
        service = shape.service
        ends: dict[str, int | None] = {}

        def serves(ix: _Index, units: int) -> bool:
            key = ix.zone.key
            if key not in ends:
                ends[key] = self._booked(shape, start, ix.zone)
            end = ends[key]
            return end is not None and ix.serves(start, end, shape.before, shape.after, units, shape.in_hours)

        binds = primary and plan.binds
        if plan.mine is not None and not plan.overlapping:
            chosen = self._greedy(plan, start, strategy, preferred, serves, binds)
        else:
            chosen = self._matched(plan, start, strategy, preferred, serves, binds)
        if chosen is None:
            return None
        first = next(pick[0] for pick in chosen if pick)
        end = ends[first.zone.key]
        assert end is not None  # noqa: S101 - it served, so the start is valid in its zone
        assignments = tuple(
            Assignment(i, need.label, tuple(ix.resource.id for ix in pick))
            for i, (need, pick) in enumerate(zip(service.needs, chosen, strict=True))
        )
        return end, assignments

    def _greedy(
        self,
        plan: _Plan,
        start: int,
        strategy: Strategy,
        preferred: Sequence[str],
        serves: Callable[[_Index, int], bool],
        binds: bool,
    ) -> list[list[_Index]] | None:
        """`_assign` when no resource could go to two needs: each need's pins, then its first free others."""
        mine = plan.mine
        assert mine is not None  # noqa: S101 - the caller's condition
        needs = plan.base.service.needs
        chosen: list[list[_Index]] = []
        rests: list[list[_Index]] = []
        for need, pinned, others in zip(needs, mine, plan.others, strict=True):
            if not all(serves(ix, need.units) for ix in pinned):
                return None
            want = need.count - len(pinned)
            free: list[_Index] = []
            if want:
                for ix in self._order(others, strategy, preferred, start):
                    if serves(ix, need.units):
                        free.append(ix)
                        if len(free) == want and not binds:
                            break
                if len(free) < want:
                    return None
            chosen.append(pinned + free[:want])
            rests.append(free[want:])
        if binds and not _has_primary(chosen):
            # As `_Plan._with_primary`: the first need with a free primary resource takes it instead of its
            # last choice (all its choices are auxiliary, and come before it in the order).
            for i, rest in enumerate(rests):
                found = next((ix for ix in rest if ix.resource.role is ResourceRole.PRIMARY), None)
                if found is not None:
                    chosen[i] = [*chosen[i][:-1], found]
                    return chosen
            return None
        return chosen

    def _matched(
        self,
        plan: _Plan,
        start: int,
        strategy: Strategy,
        preferred: Sequence[str],
        serves: Callable[[_Index, int], bool],
        binds: bool,
    ) -> list[list[_Index]] | None:
        """`_assign` when a resource could go to two needs: a matching, with the pins, and a primary one if bound."""
        pin = plan.pin
        needs = plan.base.service.needs
        required = [plan.base.by_id[rid] for rid in sorted(pin)]
        options = [
            [ix for ix in self._order(pool, strategy, preferred, start) if serves(ix, need.units)]
            for need, pool in zip(needs, plan.pools, strict=True)
        ]
        counts = [need.count for need in needs]
        matched = _match(options, counts, required, pin)
        if matched is None or not binds or _has_primary(matched):
            return matched
        # Not one primary resource: make each free one required in turn, needs and their orders first to last.
        for option in options:
            for ix in option:
                if ix.resource.role is ResourceRole.PRIMARY and ix.resource.id not in pin:
                    matched = _match(options, counts, [*required, ix], pin)
                    if matched is not None:
                        return matched
        return None

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
            InvalidInputError: the duration is not allowed, a pinned id is unknown or matches no need, the
                pins cannot all be part of one booking (more than the needs that take them have room for, or
                only auxiliary ones with no room for a primary one), a preferred id is unknown or given with
                another strategy, or the service can only take auxiliary resources.
        """
        yield from self._slots(service, window, duration, pin, strategy, preferred)

    def _slots(
        self,
        service: Service,
        window: Interval,
        duration: timedelta | None,
        pin: Collection[str],
        strategy: Strategy,
        preferred: Sequence[str],
    ) -> Iterator[Slot]:
        """`iter_slots`, checking its arguments at once (not at the first `next`) and with no generator of its own."""
        check_interval(window, "window")
        if preferred:
            self._check_preferred(strategy, preferred)
        plan = self._plan(service, duration, pin)
        lo, hi = self._limits(service, window)
        if lo >= hi:
            return iter(())
        if plan.fast:
            return self._fast_slots(plan, lo, hi, strategy, preferred)
        return (
            _slot(EPOCH + start * _US, EPOCH + end * _US, assignments)
            for start, end, assignments in self._raw(plan, lo, hi, strategy, preferred)
        )

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
        found = self._slots(service, window, duration, pin, strategy, preferred)
        if limit is None:
            return list(found)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            msg = f"limit must be a whole number of at least 0, or None, got {limit!r}"
            raise InvalidInputError(msg, field="limit")
        return list(islice(found, min(limit, sys.maxsize)))  # islice takes no more; beyond it, every slot

    def slot_starts(
        self,
        service: Service,
        window: Interval,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
    ) -> list[int]:
        """
        Return only the bookable starts, as integer microseconds since the epoch (the raw mode).

        The same starts as `iter_slots` (with the same *pin*), without building a datetime or a `Slot`.
        """
        plan = self._plan(service, duration, pin)
        lo, hi = self._limits(service, window)
        if lo >= hi:
            return []
        if plan.fast:
            return _collect(plan.bookable(), plan.base.shape.step, lo, hi)
        return [start for start, _, _ in self._raw(plan, lo, hi, Strategy.FIRST_AVAILABLE, ())]

    def _fast_slots(
        self, plan: _Plan, lo: int, hi: int, strategy: Strategy, preferred: Sequence[str]
    ) -> Iterator[Slot]:
        """
        `iter_slots` for a fast plan: each candidate start tested by bisection in each resource's starts.

        Small pools, or a plan that already knows its bookable starts, walk only the bookable starts; large
        pools walk the grid and try resources in order, so that the first slots cost only the resources
        tried, not the whole pool.
        """
        orders = plan.orders(strategy, preferred)
        if plan.eager and plan.fixed is not None and orders is plan.first_orders:
            return _fixed_slots(plan.bookable(), plan.step, lo, hi, plan.base.shape.duration, plan.fixed)
        return self._picked_slots(plan, lo, hi, strategy, preferred, orders)

    def _picked_slots(
        self,
        plan: _Plan,
        lo: int,
        hi: int,
        strategy: Strategy,
        preferred: Sequence[str],
        orders: list[Sequence[int]] | None,
    ) -> Iterator[Slot]:
        length = plan.length
        eager = plan.eager
        starts = _progression(plan.bookable() if eager else plan.base.grid(), plan.step, lo, hi)
        if orders is None:
            for t in starts:
                found = self._assign(plan, t, strategy, preferred)
                if found is not None:
                    yield _slot(EPOCH + t * _US, EPOCH + (t + length) * _US, found[1])
            return
        pick = plan.pick
        for t in starts:
            assignments = pick(t, orders)
            if assignments is not None:
                yield _slot(EPOCH + t * _US, EPOCH + (t + length) * _US, assignments)

    def _raw(
        self, plan: _Plan, lo: int, hi: int, strategy: Strategy, preferred: Sequence[str]
    ) -> Iterator[tuple[int, int, tuple[Assignment, ...]]]:
        """The general path: every candidate of the grids in [lo, hi), each decided by `_assign`."""
        shape = plan.base.shape
        grids = [self._grid(shape, ix, lo, hi) for ix in plan.base.members]
        if len(grids) == 1:
            candidates: Iterable[int] = grids[0]
        else:
            candidates = sorted({t for grid in grids for t in grid})
        for start in candidates:
            found = self._assign(plan, start, strategy, preferred)
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
        if preferred:
            self._check_preferred(strategy, preferred)
        s = to_micros(start_dt)
        plan = self._plan(service, duration, pin)
        shape = plan.base.shape
        reasons: list[Reason] = []
        if s < self._now_us:
            reasons.append(Reason(ReasonCode.MIN_NOTICE, "this time has already passed"))
        elif s < self._now_us + service.min_notice // _US:
            notice = spoken(service.min_notice)
            reasons.append(Reason(ReasonCode.MIN_NOTICE, f"bookings must be made at least {notice} before they start"))
        if service.horizon is not None and s > self._now_us + service.horizon // _US:
            reasons.append(
                Reason(ReasonCode.BEYOND_HORIZON, f"bookings are taken at most {spoken(service.horizon)} ahead")
            )
        if not self._on_grid(shape, plan.pools, s):
            reasons.append(Reason(ReasonCode.OFF_GRID, "this is not one of the offered start times"))
        found = self._assign(plan, s, strategy, preferred)
        if found is not None and not reasons:
            end, assignments = found
            slot = Slot(start_dt, from_micros(end), assignments)
            return Explanation(start_dt, bookable=True, slot=slot, reasons=())
        if found is None:
            reasons.extend(self._need_reasons(plan, s))
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
        explanation = self.explain(service, start, duration=duration, pin=pin, strategy=strategy, preferred=preferred)
        if explanation.slot is None:
            words = "; ".join(r.message for r in explanation.reasons) or "it is not available"
            msg = f"{service.name} cannot be booked at {_local_text(explanation.start, self._zone)}: {words}"
            raise ConflictError(msg, start=explanation.start, reasons=explanation.reasons)
        return explanation.slot

    def _need_reasons(self, plan: _Plan, start: int) -> list[Reason]:
        reasons: list[Reason] = []
        shape = plan.base.shape
        service = shape.service
        pin = plan.pin
        owners = _reason_pins(plan)
        for i, (need, pool) in enumerate(zip(service.needs, plan.pools, strict=True)):
            label = need.label or f"need {i + 1}"
            # A pinned resource must serve its need; the rest of the need comes from the others. Reasons about
            # the others are only worth telling when they are why the need cannot be filled.
            own = owners[i]
            busy_pinned = []
            for ix in (ix for ix in pool if ix.resource.id in own):
                found = self._resource_reasons(shape, ix, need, start, i)
                reasons.extend(found)
                if found:
                    busy_pinned.append(ix.resource.id)
            want = need.count - len(own)
            free = 0
            about_others: list[Reason] = []
            for ix in (ix for ix in pool if ix.resource.id not in pin):
                found = self._resource_reasons(shape, ix, need, start, i)
                about_others.extend(found)
                free += not found
            if busy_pinned:
                reasons.append(
                    Reason(
                        ReasonCode.NO_MEMBER_FREE, f"{label}: the chosen {', '.join(busy_pinned)} is not free", need=i
                    )
                )
            if free < want:
                reasons.extend(about_others)
                reasons.append(
                    Reason(
                        ReasonCode.NO_MEMBER_FREE, f"{label}: {free} of the {want} needed resources are free", need=i
                    )
                )
        if not reasons and plan.binds:
            without = self._assign(plan, start, Strategy.FIRST_AVAILABLE, (), primary=False)
            if without is not None:
                reasons.extend(self._primary_reasons(plan, start, without[1]))
        if not reasons:
            reasons.append(
                Reason(
                    ReasonCode.NO_MEMBER_FREE,
                    "no combination of free resources serves every need at once",
                )
            )
        return reasons

    def _primary_reasons(self, plan: _Plan, start: int, auxiliary: tuple[Assignment, ...]) -> list[Reason]:
        """Why *start* has only auxiliary resources free (the choice *auxiliary*): each primary one's reasons."""
        shape = plan.base.shape
        needs = shape.service.needs
        reasons: list[Reason] = []
        for ix in plan.base.members:
            if ix.resource.role is ResourceRole.PRIMARY and ix.resource.id not in plan.pin:
                held = plan.base.holders[ix.resource.id]
                every = [self._resource_reasons(shape, ix, needs[i], start, i) for i in held]
                if all(every):
                    reasons.extend(every[0])
        ids = ", ".join(rid for a in auxiliary for rid in a.resource_ids)
        reasons.append(
            Reason(
                ReasonCode.NO_MEMBER_FREE,
                f"no primary resource is free to go with {ids}: "
                "an auxiliary resource is booked only together with a primary one",
            )
        )
        return reasons

    def _resource_reasons(self, shape: _Shape, ix: _Index, need: Need, start: int, need_index: int) -> list[Reason]:
        rid = ix.resource.id
        end = self._booked(shape, start, ix.zone)
        if end is None:
            first = "check-in time" if shape.service.unit is ServiceUnit.NIGHTS else "local midnight (a day's start)"
            return [Reason(ReasonCode.OFF_GRID, f"{rid}: stays start at the {first} in {ix.zone.key}", rid)]
        if ix.serves(start, end, shape.before, shape.after, need.units, shape.in_hours):
            return []
        out: list[Reason] = []
        x_start, x_end = start - shape.before, end + shape.after
        h_start, h_end = (x_start, x_end) if shape.in_hours else (start, end)
        if not _contained(ix.hours, h_start, h_end):
            if _overlaps(ix.off, h_start, h_end):
                out.append(Reason(ReasonCode.TIME_OFF, f"{rid} is off at that time", rid, need=need_index))
            else:
                out.append(Reason(ReasonCode.OUTSIDE_HOURS, f"{rid} is not working at that time", rid, need=need_index))
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
                    f"{rid} has {max(cap - peak, 0)} of {cap} units free at its busiest, {units} needed ({ids})",
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
                            f"{rid} is held by {ld.booking_id} until {_local_text(ld.hold_until, ix.zone)}",
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
        if preferred:
            self._check_preferred(strategy, preferred)
        quick = self._quick
        if quick is not None and until is None and strategy is _FIRST and type(after) is datetime:
            q_service, q_duration, q_pin, plan, points, _, _ = quick
            if (
                points is not None
                and q_service is service
                and q_duration is duration
                and q_pin is pin
                and plan.fixed is not None
            ):
                try:
                    offset = after - EPOCH
                except TypeError:  # naive, or a zone that gives no offset: the general path says so
                    pass
                else:
                    if _MIN_OFFSET <= offset <= _MAX_OFFSET:
                        offsets = points.offsets
                        i = bisect_left(offsets, offset)
                        if i == len(offsets):
                            return None
                        # `_slot`, inlined: this is the line that runs once per question in a loop.
                        begin = EPOCH + offsets[i]
                        slot: Slot = object.__new__(Slot)
                        _SET_START(slot, begin)
                        _SET_END(slot, begin + plan.duration)
                        _SET_ASSIGNMENTS(slot, plan.fixed)
                        return slot
        found = self._search(service, after, until, duration, pin)
        if found is None:
            return None
        plan, lo, hi = found
        if plan.fast:
            self._remember(service, duration, pin, plan)
            return self._fast_first(plan, lo, hi, strategy, preferred)
        for t, t_end, assignments in self._raw(plan, lo, hi, strategy, preferred):
            return _slot(EPOCH + t * _US, EPOCH + t_end * _US, assignments)
        return None

    def next_start(
        self,
        service: Service,
        after: datetime,
        *,
        until: datetime | None = None,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
    ) -> int | None:
        """
        Return the start of `next_available`'s slot as integer microseconds since the epoch, or None.

        The raw mode of `next_available`, as `slot_starts` is of `slots`: no `Slot`, no datetime, no choice
        of resources (which never changes *whether* a start is bookable).
        """
        quick = self._quick
        if quick is not None and until is None and type(after) is datetime:
            q_service, q_duration, q_pin, _, points, _, _ = quick
            if points is not None and q_service is service and q_duration is duration and q_pin is pin:
                try:
                    offset = after - EPOCH
                except TypeError:  # naive, or a zone that gives no offset: the general path says so
                    pass
                else:
                    if _MIN_OFFSET <= offset <= _MAX_OFFSET:
                        i = bisect_left(points.offsets, offset)
                        micros = points.micros
                        return micros[i] if i < len(micros) else None
        found = self._search(service, after, until, duration, pin)
        if found is None:
            return None
        plan, lo, hi = found
        if not plan.fast:
            return next((t for t, _, _ in self._raw(plan, lo, hi, _FIRST, ())), None)
        self._remember(service, duration, pin, plan)
        if plan.eager:
            groups = plan._bookable
            return _first(plan.bookable() if groups is None else groups, plan.step, lo, hi)
        orders = plan.first_orders
        starts = _progression(plan.base.grid(), plan.step, lo, hi)
        return next((t for t in starts if plan.pick(t, orders) is not None), None)

    def _remember(self, service: Service, duration: timedelta | None, pin: Collection[str], plan: _Plan) -> None:
        """
        Count a point query on fast *plan* and, once it has `_Points` (or never will), remember it in `_quick`.

        Only arguments that `_plan` itself remembered (immutable pins) qualify: the quick paths compare them
        by identity.
        """
        if not plan.eager:  # a large pool walked lazily: its bookable starts are never all computed
            return
        points = plan.points()
        last = self._last
        if last is None or last[3] is not plan or last[2] is not pin or last[1] is not duration:
            return  # not the arguments `_plan` remembered (a list of pins, say, which may change in place)
        if points is not None:
            self._quick = (service, duration, pin, plan, points, -1, None)
            return
        if plan._count is not None and plan._count > _POINTS_MAX:
            groups = plan.bookable()
            if len(groups) <= 1:  # one phase (or none): one modulo and one bisection, on integers
                phase, bounds = next(iter(groups.items()), (-1, ()))
                self._quick = (service, duration, pin, plan, None, phase, bounds)

    def _search(
        self,
        service: Service,
        after: datetime,
        until: datetime | None,
        duration: timedelta | None,
        pin: Collection[str],
    ) -> tuple[_Plan, int, int] | None:
        """The plan and the ``[lo, hi)`` that `next_available` searches, or None when that is empty."""
        start = _micros(after, "after")
        if until is not None:
            end = _micros(until, "until")
        else:
            end = start if self._hours_end is None or self._hours_end < start else self._hours_end
            if service.horizon is not None:
                end = min(end, self._now_us + service.horizon // _US + 1)
        if end <= start:
            return None
        last = self._last
        if last is not None and last[0] is service and last[1] is duration and last[2] is pin:
            plan = last[3]
        else:
            plan = self._plan(service, duration, pin)
        lo = start if start > plan.earliest else plan.earliest
        hi = end if end <= plan.latest else plan.latest + 1
        return None if lo >= hi else (plan, lo, hi)

    def _fast_first(self, plan: _Plan, lo: int, hi: int, strategy: Strategy, preferred: Sequence[str]) -> Slot | None:
        """`next_available` for a fast plan: a bisection into the bookable starts when they are known."""
        one = plan.single
        if one is not None and strategy is _FIRST:  # the common case: one phase and nothing to choose
            t = _first_of_phase(one[0], one[1], plan.step, lo)
            if t is None or t >= hi:
                return None
            begin = EPOCH + t * _US
            return _slot(begin, begin + plan.duration, one[2])
        orders = plan.first_orders if strategy is _FIRST else plan.orders(strategy, preferred)
        if orders is None or not plan.eager:
            return next(self._fast_slots(plan, lo, hi, strategy, preferred), None)
        groups = plan._bookable
        t = _first(plan.bookable() if groups is None else groups, plan.step, lo, hi)
        if t is None:
            return None
        assignments = plan.fixed if orders is plan.first_orders else None
        if assignments is None:
            assignments = plan.pick(t, orders)
            assert assignments is not None  # noqa: S101 - every bookable start is served
        return _slot(EPOCH + t * _US, EPOCH + (t + plan.length) * _US, assignments)

    def is_bookable(
        self,
        service: Service,
        start: datetime,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
    ) -> bool:
        """
        Return whether *start* is bookable: ``explain(...).bookable``, without building any reason or slot.

        The cheap test for many point queries (a form that validates a typed time, an API that checks a
        start before it books it). Asked again with the same arguments, it is one subtraction and one set
        lookup (see `_Points`).

        Raises:
            NaiveDatetimeError: *start* is naive.
            OutOfRangeError: *start* is before 1970 or after 2200.
            InvalidInputError: as `iter_slots`.
        """
        quick = self._quick
        if quick is not None:
            q_service, q_duration, q_pin, plan, points, phase, bounds = quick
            if q_service is service and q_duration is duration and q_pin is pin:
                if points is not None:
                    if type(start) is datetime:
                        try:
                            offset = start - EPOCH
                        except TypeError:  # naive, or a zone that gives no offset: the general path says so
                            pass
                        else:
                            if offset in points.members:
                                return True
                            if _MIN_OFFSET <= offset <= _MAX_OFFSET:
                                return False
                elif bounds is not None:
                    t = _micros(start, "start")
                    return t % plan.step == phase and bisect_right(bounds, t) & 1 == 1
        t = _micros(start, "start")
        plan = self._plan(service, duration, pin)
        if plan.fast:
            groups = plan.bookable()
            self._remember(service, duration, pin, plan)
            found = groups.get(t % plan.step)
            return found is not None and bisect_right(found, t) & 1 == 1
        if t < plan.earliest or t > plan.latest:
            return False
        shape = plan.base.shape
        return self._on_grid(shape, plan.pools, t) and self._assign(plan, t, Strategy.FIRST_AVAILABLE, ()) is not None

    def remaining(self, resource_id: str, interval: Interval) -> int | None:
        """
        Return how many units of *resource_id* are free throughout *interval*, or None if it is unlimited.

        That is its capacity minus the highest load at any instant of *interval* (bookings and live holds,
        with their buffers), never below 0 even where the loads overbook it: the seats left in a room, the
        places left in a class. Open hours play no part: ask `free_time` or `slots` for those.

        Raises:
            NotFoundError: no such resource was given.
            InvalidInputError: *interval* is not an `Interval`.
        """
        from slotengine.errors import NotFoundError

        ix = self._index.get(resource_id)
        if ix is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        if not isinstance(interval, Interval):
            msg = f"remaining() takes an Interval, not {type(interval).__name__}"  # type: ignore[unreachable]
            raise InvalidInputError(msg, field="interval")
        if ix.capacity is None:
            return None
        peak = ix.profile._max_load_us((interval.start - EPOCH) // _US, (interval.end - EPOCH) // _US)
        return max(ix.capacity - peak, 0)

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

        Raises:
            InvalidInputError: *year* is not a whole number from 1970 to 2199, or *month* from 1 to 12.
        """
        tz = get_zone(zone)
        for value, name, low, high in ((year, "year", 1970, 2199), (month, "month", 1, 12)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                msg = f"{name} must be a whole number from {low} to {high}, got {value!r}"
                raise InvalidInputError(msg, field=name)
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
            InvalidInputError: *window* is not an `Interval`, or *units* not a whole number of at least 1.
        """
        from slotengine.errors import NotFoundError

        units = _load_units(units)
        ix = self._index.get(resource_id)
        if ix is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        start, end = _window_bounds(window)
        w = (to_micros(start), to_micros(end))
        return IntervalSet._from_bounds(_intersect(ix.ok(units), w))


def _window_bounds(value: object) -> tuple[datetime, datetime]:
    if not isinstance(value, Interval):
        msg = f"window must be an Interval, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="window")
    return value.start, value.end


def day_bounds(service: Service) -> tuple[time, time]:
    """The local wall times a whole-day service starts and ends its days at: midnight, or check-in and check-out."""
    if service.unit is ServiceUnit.NIGHTS:
        return service.check_in or time(), service.check_out or time()
    return time(), time()


def local_day_of(start: datetime, first: time, zone: ZoneInfo) -> date | None:
    """
    The local date whose wall time *first* is the instant *start* in *zone*, or None if no date's is.

    Usually *start*'s own local date; a *first* in a gap moves forward (docs/time.md), past midnight if the gap
    crosses it (a 23:30 check-in on a night the clocks skip 23:00-00:00 is at 00:30 the next date), and on a
    date the zone skipped altogether the start is the next date's: its own date is preferred.
    """
    own = start.astimezone(zone).date()
    for day in (own, own - _ONE_DAY):
        if localize(datetime.combine(day, first), zone) == start:
            return day
    return None


def whole_days(service: Service, start: datetime, end: datetime, zone: ZoneInfo) -> int | None:
    """
    How many days (or nights) of *service* a booking from *start* to *end* takes in *zone*, or None if none fits.

    Counted on the service's own day grid, as `Availability` books it: a date the zone skipped is no day.
    """
    first, last = day_bounds(service)
    day = local_day_of(start, first, zone)
    if day is None:
        return None
    spanned = (end.astimezone(zone).date() - day).days
    for days in (spanned - 1, spanned):
        if days >= 1 and localize(datetime.combine(day + days * _ONE_DAY, last), zone) == end:
            return days
    return None


def _local_text(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as people read it: local date and time, with the zone named."""
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def _overlaps(bounds: tuple[int, ...], start: int, end: int) -> bool:
    i = bisect_right(bounds, start)
    return i % 2 == 1 or (i < len(bounds) and bounds[i] < end)


@functools.lru_cache(maxsize=4096)
def _segments(bounds: tuple[int, ...], zone: ZoneInfo, lead: int, cut: int) -> tuple[list[int], list[int]]:
    """
    The grid segments of open hours *bounds*, as first starts and one past each segment's last start.

    A stretch ``[p, q)`` offers starts from ``p + lead`` up to ``q - cut`` (exclusive), and its grid starts again
    at every local midnight in between: each segment runs to the next midnight. A stretch that began before a
    query's span (hours open around the clock) so offers the same starts whatever the span.
    """
    firsts: list[int] = []
    ends: list[int] = []
    for p, q in zip(bounds[0::2], bounds[1::2], strict=True):
        first, end = p + lead, q - cut
        if first >= end:
            continue
        midnight = _local_day_us(first, zone)[1]
        while midnight < end:
            firsts.append(first)
            ends.append(midnight)
            first = midnight
            midnight = _local_day_us(midnight, zone)[1]
        firsts.append(first)
        ends.append(end)
    return firsts, ends


def _local_day_us(instant: int, zone: ZoneInfo) -> tuple[int, int]:
    day = from_micros(instant).astimezone(zone).date()
    start = localize(datetime.combine(day, time()), zone)
    end = localize(datetime.combine(day + _ONE_DAY, time()), zone)
    return to_micros(start), to_micros(end)


def _pools_overlap(pools: list[list[_Index]]) -> bool:
    seen: set[str] = set()
    for pool in pools:
        ids = {ix.resource.id for ix in pool}
        if ids & seen:
            return True
        seen |= ids
    return False


def _reason_pins(plan: _Plan) -> list[set[str]]:
    """
    The pinned resources of each need, as `explain` tells them (one need for a resource in several pools).

    A resource pinned into several needs' pools is told as serving the first need (in the needs' order) that
    leaves every need enough other resources to fill up from. So pinning Ann, a coach who is also the only
    senior, is told as "senior: Ann" and "coach: who else is free", not as a senior missing. Resources pinned
    into one pool only are that need's.
    """
    holders = plan.base.holders
    needs = plan.base.service.needs
    pin = plan.pin
    fixed = [{rid for rid in pin if holders[rid] == [i]} for i in range(len(needs))]
    shared = sorted(rid for rid in pin if len(holders[rid]) > 1)
    if not shared:
        return fixed
    spare = [len(others) for others in plan.others]
    first: list[set[str]] | None = None
    for ways in islice(product(*(holders[rid] for rid in shared)), _REASON_WAYS):
        own = [set(ids) for ids in fixed]
        for rid, i in zip(shared, ways, strict=True):
            own[i].add(rid)
        if all(len(own[i]) <= need.count <= len(own[i]) + spare[i] for i, need in enumerate(needs)):
            return own
        first = own if first is None else first
    assert first is not None  # noqa: S101 - every pinned resource has a need
    return first


_REASON_WAYS: Final = 256
"""How many ways of giving resources pinned into several pools to needs `explain` looks at for its words."""


def _has_primary(chosen: list[list[_Index]]) -> bool:
    """Whether a choice of resources, need by need, holds a primary resource."""
    return any(ix.resource.role is ResourceRole.PRIMARY for pick in chosen for ix in pick)


def _place(
    required: Sequence[str], holders: Mapping[str, list[int]], counts: Sequence[int]
) -> tuple[list[str], list[int]] | None:
    """
    Give each *required* resource a place in a need that may take it (*holders*), ``counts[i]`` places per need.

    Whatever the time: this is the shape of a service's needs only. Returns None when they all fit; else some of
    them and the needs they may go to, which have fewer places than they are (Hall's condition: why no
    placement exists). A small augmenting-path matching (Kuhn's), from the resources' side.
    """
    seats_of: list[range] = []
    first = 0
    for count in counts:
        seats_of.append(range(first, first + count))
        first += count
    taker: list[str | None] = [None] * first

    def place(rid: str, visited: set[int]) -> bool:
        for i in holders[rid]:
            for seat in seats_of[i]:
                if seat in visited:
                    continue
                visited.add(seat)
                other = taker[seat]
                if other is None or place(other, visited):
                    taker[seat] = rid
                    return True
        return False

    for rid in required:
        visited: set[int] = set()
        if not place(rid, visited):
            # Every place of every need these resources may go to was tried, and each is taken by one of them.
            needs = [i for i, seats in enumerate(seats_of) if any(seat in visited for seat in seats)]
            stuck = sorted({rid, *(taker[seat] or rid for seat in visited)})
            return stuck, needs
    return None


def _match(
    options: list[list[_Index]], counts: list[int], required: Sequence[_Index], pin: Collection[str]
) -> list[list[_Index]] | None:
    """
    Choose ``counts[i]`` distinct resources of ``options[i]`` for every need *i*, with every *required* one.

    Each need is expanded into ``count`` places. The *required* resources (the pins) are placed first, from
    their side; then every empty place is filled from the need's options, in their order, by augmenting
    paths (Kuhn's algorithm; sizes are tiny). An augmenting path moves resources between places but never
    drops one, so the required ones stay; and when some choice keeps them all, this finds one (a matching
    that covers the required resources and one that fills every place make one that does both). Returns each
    need's choice, the ones in *pin* first, then by the given resource order; or None if there is no choice.
    """
    matching = _Matching(options, counts)
    if not all(matching.place(ix, set()) for ix in required):
        return None
    taker = matching.taker
    if not all(taker[seat] is not None or matching.fill(seat, set()) for seat in range(len(taker))):
        return None
    return [
        sorted(
            (cast("_Index", taker[seat]) for seat in seats),
            key=lambda ix: (ix.resource.id not in pin, ix.order),
        )
        for seats in matching.seats_of
    ]


class _Matching:
    """The places of `_match` and who takes them, with the two augmenting searches."""

    __slots__ = ("ids", "options", "seat_of", "seats", "seats_of", "taker")

    def __init__(self, options: list[list[_Index]], counts: list[int]) -> None:
        self.options = options
        self.seats = [i for i, count in enumerate(counts) for _ in range(count)]
        """The need of each place."""
        self.seats_of: list[list[int]] = [[] for _ in counts]
        for seat, i in enumerate(self.seats):
            self.seats_of[i].append(seat)
        self.ids = [{ix.resource.id for ix in option} for option in options]
        self.taker: list[_Index | None] = [None] * len(self.seats)
        self.seat_of: dict[str, int] = {}

    def place(self, ix: _Index, visited: set[int]) -> bool:
        """Give resource *ix* a place of a need it may serve, moving the ones in the way (from its side)."""
        rid = ix.resource.id
        for i, held in enumerate(self.ids):
            if rid not in held:
                continue
            for seat in self.seats_of[i]:
                if seat in visited:
                    continue
                visited.add(seat)
                other = self.taker[seat]
                if other is None or self.place(other, visited):
                    self.taker[seat] = ix
                    self.seat_of[rid] = seat
                    return True
        return False

    def fill(self, seat: int, visited: set[str]) -> bool:
        """Give empty place *seat* a resource of its need's options, moving the ones in the way (from its side)."""
        for ix in self.options[self.seats[seat]]:
            rid = ix.resource.id
            if rid in visited:
                continue
            visited.add(rid)
            held = self.seat_of.get(rid)
            if held is None or self.fill(held, visited):
                self.taker[seat] = ix
                self.seat_of[rid] = seat
                return True
        return False
