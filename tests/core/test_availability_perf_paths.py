"""The solver's fast paths against its general path, and the small public methods added for speed."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slotengine.availability as availability_module
from slotengine.availability import Availability, Load, Strategy
from slotengine.errors import InvalidInputError, NotFoundError
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import UNLIMITED, Need, Resource, ResourceRole, Service
from slotengine.testing._solver_strategies import scenarios

FIVE = timedelta(minutes=5)
MIN = timedelta(minutes=1)
US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(hour, minute=0, day=2):
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@contextmanager
def eager_below(size):
    """Make the fast listing walk bookable starts only for pools up to *size* (0: always walk the grid)."""
    saved = availability_module._EAGER
    availability_module._EAGER = size
    try:
        yield
    finally:
        availability_module._EAGER = saved


def build(sc, *, fast):
    availability = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
    availability._fast = fast
    return availability


def answers(availability, sc, strategy, preferred):
    """Everything the listing queries say about one scenario, or the error they raise."""
    try:
        slots = availability.slots(sc.service, sc.window, pin=sc.pin, strategy=strategy, preferred=preferred)
        raw = availability.slot_starts(sc.service, sc.window, pin=sc.pin)
        first = availability.next_available(
            sc.service, sc.window.start, until=sc.window.end, pin=sc.pin, strategy=strategy, preferred=preferred
        )
        unbounded = availability.next_available(sc.service, sc.window.start, pin=sc.pin)
    except InvalidInputError as error:
        return ("error", str(error))
    return slots, raw, first, unbounded


def candidate_starts(sc):
    """Every 5 minutes of every resource's hours in the window, plus a few instants off that grid."""
    out = set()
    for resource in sc.resources:
        for interval in sc.hours[resource.id] & IntervalSet.of(sc.window.start, sc.window.end):
            t = interval.start
            while t < interval.end:
                out.add(t)
                out.add(t + MIN)
                t += FIVE
    return sorted(out)


@st.composite
def mostly_auxiliary(draw):
    """A scenario whose resources are each auxiliary half the time, with no pin (so its plan is often fast)."""
    sc = draw(scenarios())
    roles = [draw(st.booleans()) for _ in sc.resources]
    flipped = tuple(
        attrs.evolve(r, role=ResourceRole.AUXILIARY) if aux else r for r, aux in zip(sc.resources, roles, strict=True)
    )
    return attrs.evolve(sc, resources=flipped, pin=frozenset())


class TestFastPathEqualsGeneralPath:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios(), st.sampled_from(list(Strategy)), st.booleans())
    def test_same_slots_and_assignments(self, sc, strategy, reverse):
        """slots, slot_starts and next_available agree, assignments included, on the fast and general paths."""
        preferred = sorted((r.id for r in sc.resources), reverse=reverse) if strategy is Strategy.PREFERRED else []
        general = answers(build(sc, fast=False), sc, strategy, preferred)
        eager = answers(build(sc, fast=True), sc, strategy, preferred)
        with eager_below(0):
            lazy = answers(build(sc, fast=True), sc, strategy, preferred)

        assert general == eager
        assert general == lazy
        if general[0] != "error":
            assert general[1] == [(s.start - EPOCH) // US for s in general[0]]

    @settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
    @given(mostly_auxiliary(), st.sampled_from(list(Strategy)), st.booleans())
    def test_same_slots_when_a_primary_resource_must_be_found(self, sc, strategy, reverse):
        """With many auxiliary resources (a need may have to take a primary one), both paths still agree."""
        preferred = sorted((r.id for r in sc.resources), reverse=reverse) if strategy is Strategy.PREFERRED else []
        general = answers(build(sc, fast=False), sc, strategy, preferred)
        eager = answers(build(sc, fast=True), sc, strategy, preferred)
        with eager_below(0):
            lazy = answers(build(sc, fast=True), sc, strategy, preferred)

        assert general == eager
        assert general == lazy

    @settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_is_bookable_is_explain_bookable(self, sc):
        """is_bookable answers exactly what explain().bookable answers, on both paths, at and off the grid."""
        fast, general = build(sc, fast=True), build(sc, fast=False)
        try:
            fast.slots(sc.service, sc.window, pin=sc.pin)
        except InvalidInputError:
            with pytest.raises(InvalidInputError):
                fast.is_bookable(sc.service, sc.window.start, pin=sc.pin)
            return

        starts = candidate_starts(sc)
        for start in starts[:: max(1, len(starts) // 80)]:  # at most about 80 starts, spread over the window
            expected = general.explain(sc.service, start, pin=sc.pin).bookable
            assert expected == fast.is_bookable(sc.service, start, pin=sc.pin), start
            assert expected == general.is_bookable(sc.service, start, pin=sc.pin), start

    @settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios(), st.sampled_from([Strategy.FIRST_AVAILABLE, Strategy.PREFERRED]))
    def test_next_available_from_everywhere(self, sc, strategy):
        """next_available agrees on both paths from every candidate start (and a minute after it)."""
        fast, general = build(sc, fast=True), build(sc, fast=False)
        preferred = sorted((r.id for r in sc.resources), reverse=True) if strategy is Strategy.PREFERRED else []
        try:
            general.slots(sc.service, sc.window, pin=sc.pin)
        except InvalidInputError:
            return

        starts = candidate_starts(sc)
        for after in starts[:: max(3, len(starts) // 24)]:  # at most about 24 starts: each search may scan far
            expected = general.next_available(sc.service, after, pin=sc.pin, strategy=strategy, preferred=preferred)
            got = fast.next_available(sc.service, after, pin=sc.pin, strategy=strategy, preferred=preferred)
            assert expected == got, after
            raw = None if expected is None else (expected.start - EPOCH) // US
            assert raw == fast.next_start(sc.service, after, pin=sc.pin), after
            assert raw == general.next_start(sc.service, after, pin=sc.pin), after
            with eager_below(0):
                assert raw == build(sc, fast=True).next_start(sc.service, after, pin=sc.pin), after

    @settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_repeated_queries_reuse_the_plan_and_agree(self, sc):
        """Asking twice (cached plan) and for several windows gives what a fresh solver gives."""
        availability = build(sc, fast=True)
        mid = sc.window.start + (sc.window.end - sc.window.start) / 2
        for window in (sc.window, Interval(sc.window.start, mid), Interval(mid, sc.window.end), sc.window):
            try:
                got = availability.slot_starts(sc.service, window, pin=sc.pin)
            except InvalidInputError:
                return
            assert build(sc, fast=False).slot_starts(sc.service, window, pin=sc.pin) == got


ROOM = Resource("room", "Room", capacity=20)
HALL = Resource("hall", "Hall", capacity=UNLIMITED)
DAY = {"room": IntervalSet.of(at(8), at(20)), "hall": IntervalSet.of(at(8), at(20))}


class TestRemaining:
    def test_capacity_minus_the_busiest_instant(self):
        """Seats left over an interval are the capacity minus the highest load within it, buffers included."""
        loads = [
            Load("a", "room", Interval(at(9), at(11)), units=5),
            Load("b", "room", Interval(at(10), at(12)), units=8),
            Load("c", "room", Interval(at(13), at(14)), units=3, buffer_after=30 * MIN),
        ]
        availability = Availability([ROOM], DAY, loads, now=at(0))

        assert 20 == availability.remaining("room", Interval(at(8), at(9)))
        assert 15 == availability.remaining("room", Interval(at(9), at(10)))
        assert 7 == availability.remaining("room", Interval(at(9), at(12)))
        assert 12 == availability.remaining("room", Interval(at(11), at(12)))
        assert 17 == availability.remaining("room", Interval(at(14), at(14, 15)))
        assert 20 == availability.remaining("room", Interval(at(14, 30), at(15)))

    def test_overbooked_is_zero_and_unlimited_is_none(self):
        """An overbooked resource has 0 left, not a negative number; an unlimited one answers None."""
        loads = [Load("a", "room", Interval(at(9), at(10)), units=15), Load("b", "room", Interval(at(9), at(10)), units=15)]
        availability = Availability([ROOM, HALL], DAY, loads, now=at(0))

        assert 0 == availability.remaining("room", Interval(at(9), at(10)))
        assert availability.remaining("hall", Interval(at(9), at(10))) is None

    def test_expired_holds_do_not_count(self):
        """A hold that expired before now takes no seat."""
        loads = [Load("h", "room", Interval(at(9), at(10)), units=4, hold_until=at(1))]
        availability = Availability([ROOM], DAY, loads, now=at(2))

        assert 20 == availability.remaining("room", Interval(at(9), at(10)))

    def test_unknown_resource_and_bad_interval(self):
        availability = Availability([ROOM], DAY, now=at(0))

        with pytest.raises(NotFoundError):
            availability.remaining("nope", Interval(at(9), at(10)))
        with pytest.raises(InvalidInputError):
            availability.remaining("room", (at(9), at(10)))

    @settings(max_examples=200)
    @given(
        st.lists(
            st.tuples(st.integers(0, 40), st.integers(1, 12), st.integers(1, 6), st.integers(0, 2)), max_size=12
        ),
        st.integers(0, 40),
        st.integers(1, 12),
    )
    def test_agrees_with_counting_minute_by_minute(self, raw_loads, first, length):
        """remaining() is the capacity minus the peak of a minute-by-minute count, floored at 0."""
        base = at(8)
        loads = [
            Load(f"b{i}", "room", Interval(base + s * FIVE, base + (s + n) * FIVE), units=u, buffer_before=b * FIVE)
            for i, (s, n, u, b) in enumerate(raw_loads)
        ]
        availability = Availability([ROOM], DAY, loads, now=at(0))
        window = Interval(base + first * FIVE, base + (first + length) * FIVE)

        peak = 0
        t = window.start
        while t < window.end:
            load = sum(ld.units for ld in loads if ld.blocked.start <= t < ld.blocked.end)
            peak = max(peak, load)
            t += MIN
        assert max(20 - peak, 0) == availability.remaining("room", window)


class TestIsBookable:
    def test_examples(self):
        """On the grid and free: True; booked, off the grid, before the notice or naive: False or an error."""
        ann = Resource("ann", "Ann", type="dentist")
        service = Service("s", "S", needs=[Need(type="dentist")], duration=30 * MIN, min_notice=timedelta(hours=1))
        availability = Availability(
            [ann], {"ann": IntervalSet.of(at(9), at(12))}, [Load("b", "ann", Interval(at(10), at(11)))], now=at(8, 30)
        )

        assert availability.is_bookable(service, at(9, 30))
        assert not availability.is_bookable(service, at(9))  # within the hour's notice
        assert not availability.is_bookable(service, at(10))  # booked
        assert not availability.is_bookable(service, at(9, 45))  # off the grid
        assert availability.is_bookable(service, at(11, 30))
        assert not availability.is_bookable(service, at(12))  # would end after closing
        with pytest.raises(InvalidInputError):
            availability.is_bookable(service, datetime(2026, 3, 2, 9, 30))  # naive on purpose


class TestPinnedPerResource:
    def test_pin_loop_matches_general_path(self):
        """slot_starts(pin=[rid]) per resource of a large pool equals the general path's answer."""
        resources = [Resource(f"r{i}", f"R{i}", type="desk") for i in range(12)]
        hours = {r.id: IntervalSet.of(at(8 + i % 3), at(16 + i % 3)) for i, r in enumerate(resources)}
        loads = [Load(f"b{i}", f"r{i % 12}", Interval(at(9 + i % 7), at(10 + i % 7))) for i in range(30)]
        service = Service("s", "S", needs=[Need(type="desk")], duration=45 * MIN, slot_step=15 * MIN)
        window = Interval(at(0), at(23))
        fast = Availability(resources, hours, loads, now=at(0))
        general = Availability(resources, hours, loads, now=at(0))
        general._fast = False

        for r in resources:
            assert general.slot_starts(service, window, pin=[r.id]) == fast.slot_starts(service, window, pin=[r.id])
            assert general.slots(service, window, pin=[r.id]) == fast.slots(service, window, pin=[r.id])
        assert general.slots(service, window, limit=10) == fast.slots(service, window, limit=10)


class TestNextAvailable:
    def test_skips_a_free_gap_that_holds_no_start_of_the_grid(self):
        """A 40-minute gap between bookings holds no half-hour start: the next slot is after the second booking."""
        ann = Resource("ann", "Ann")
        service = Service("s", "S", needs=[Need(resource_ids=["ann"])], duration=30 * MIN)
        loads = [Load("a", "ann", Interval(at(9), at(9, 40))), Load("b", "ann", Interval(at(10, 20), at(11)))]
        fast = Availability([ann], {"ann": IntervalSet.of(at(9), at(17))}, loads, now=at(8))
        general = Availability([ann], {"ann": IntervalSet.of(at(9), at(17))}, loads, now=at(8))
        general._fast = False

        for after in (at(8), at(9), at(9, 45), at(10, 30), at(11), at(16, 31)):
            assert general.next_available(service, after) == fast.next_available(service, after), after
            assert general.next_available(service, after) == fast.next_available(service, after), after  # cached
        assert at(11) == fast.next_available(service, at(9)).start
        assert (at(11) - EPOCH) // US == fast.next_start(service, at(9))
        assert fast.next_start(service, at(16, 31)) is None
