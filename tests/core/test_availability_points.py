"""
The point-query index (`_Points`) and the light `Slot` constructor, against the paths they shortcut.

`is_bookable`, `next_start` and `next_available` answer a loop of questions from a set and a sorted list of
``start - EPOCH`` offsets, never turning the question into integer µs. These tests hold that shortcut equal
to the integer path and to the general path, with questions asked in every zone, in DST folds and gaps,
and hold that it still rejects what the public API rejects.
"""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slotengine.availability as availability_module
from slotengine._time import EPOCH, to_micros, to_utc
from slotengine.availability import Assignment, Availability, Load, Slot
from slotengine.errors import NaiveDatetimeError, OutOfRangeError
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import Need, Resource, Service
from slotengine.testing._solver_strategies import scenarios
from slotengine.testing._time_strategies import aware_datetimes

US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
FIVE = timedelta(minutes=5)


@contextmanager
def points(*, always: bool):
    """Index every fast plan at its first point query (*always*), or never index any."""
    saved = availability_module._PAYBACK, availability_module._POINTS_MAX
    if always:
        availability_module._PAYBACK = 1 << 62
    else:
        availability_module._POINTS_MAX = -1
    try:
        yield
    finally:
        availability_module._PAYBACK, availability_module._POINTS_MAX = saved


def at(hour, minute=0, day=2):
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def spellings(instant, zone):
    """The same instant in UTC, at a fixed offset and in *zone* (where DST folds set ``fold`` right)."""
    return [instant, instant.astimezone(timezone(timedelta(hours=5, minutes=45))), instant.astimezone(ZoneInfo(zone))]


def candidates(sc):
    """Every 5 minutes of every resource's hours in the window, plus a minute after each."""
    out = set()
    for resource in sc.resources:
        for interval in sc.hours[resource.id] & IntervalSet.of(sc.window.start, sc.window.end):
            t = interval.start
            while t < interval.end:
                out.add(t)
                out.add(t + MIN)
                t += FIVE
    return sorted(out)


class TestOffsetsAreExact:
    @settings(max_examples=500)
    @given(aware_datetimes(minute_resolution=False), st.sampled_from([0, 1]))
    def test_subtracting_the_epoch_is_the_slow_conversion(self, instant, fold):
        """``d - EPOCH`` equals the checked µs conversion in every zone, in folds and in gaps (either fold)."""
        wall = instant.replace(fold=fold)  # in a fold: the other occurrence; in a gap: the other reading

        expected = to_micros(to_utc(wall, "d")) * US
        assert expected == wall - EPOCH
        assert to_micros(to_utc(wall, "d")) == (wall - EPOCH) // US


class TestPointIndexAgrees:
    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_is_bookable_with_and_without_the_index(self, sc):
        """is_bookable from the index equals the integer path and explain(), whatever zone the question is in."""
        general = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        general._fast = False
        with points(always=False):
            plain = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        indexed = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        try:
            general.slots(sc.service, sc.window, pin=sc.pin)
        except availability_module.InvalidInputError:
            return

        starts = candidates(sc)
        for start in starts[:: max(2, len(starts) // 60)]:  # at most about 60 starts, spread over the window
            expected = general.explain(sc.service, start, pin=sc.pin).bookable
            for asked in spellings(start, sc.zone):
                with points(always=False):
                    assert expected == plain.is_bookable(sc.service, asked, pin=sc.pin), asked
                with points(always=True):
                    assert expected == indexed.is_bookable(sc.service, asked, pin=sc.pin), asked
        if indexed._last is not None and indexed._last[3].fast:
            assert indexed._quick is not None
            assert indexed._quick[4] is not None  # the loop above ran on the index

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_next_available_with_and_without_the_index(self, sc):
        """next_available and next_start from the index equal the general path's, asked in any zone."""
        general = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        general._fast = False
        indexed = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        try:
            general.slots(sc.service, sc.window, pin=sc.pin)
        except availability_module.InvalidInputError:
            return

        with points(always=True):
            starts = candidates(sc)
            for after in starts[:: max(4, len(starts) // 24)]:  # at most about 24: each search may scan far
                expected = general.next_available(sc.service, after, pin=sc.pin)
                raw = None if expected is None else (expected.start - EPOCH) // US
                for asked in spellings(after, sc.zone):
                    assert expected == indexed.next_available(sc.service, asked, pin=sc.pin), asked
                    assert raw == indexed.next_start(sc.service, asked, pin=sc.pin), asked


ANN = Resource("ann", "Ann")
SERVICE = Service("s", "S", needs=[Need(resource_ids=["ann"])], duration=30 * MIN, slot_step=5 * MIN)
ROUND_THE_CLOCK = {"ann": IntervalSet.of(at(0, day=1), at(0, day=31))}


def warmed(queries=20):
    """An `Availability` whose plan for SERVICE is indexed, after a loop of questions."""
    availability = Availability([ANN], ROUND_THE_CLOCK, [Load("b", "ann", Interval(at(9), at(10)))], now=at(0, day=1))
    with points(always=True):
        for k in range(queries):
            availability.is_bookable(SERVICE, at(8) + k * FIVE)
    assert availability._quick is not None
    assert availability._quick[4] is not None
    return availability


class TestPointIndexRejects:
    @pytest.mark.parametrize("method", ["is_bookable", "next_start", "next_available"])
    def test_naive_and_offsetless_datetimes(self, method):
        """A naive datetime, or one whose tzinfo gives no offset, raises NaiveDatetimeError on the index too."""

        class NoOffset(tzinfo):
            def utcoffset(self, dt):
                return None

        availability = warmed()
        ask = getattr(availability, method)

        with pytest.raises(NaiveDatetimeError):
            ask(SERVICE, datetime(2026, 3, 2, 9, 30))  # naive on purpose
        with pytest.raises(NaiveDatetimeError):
            ask(SERVICE, datetime(2026, 3, 2, 9, 30, tzinfo=NoOffset()))

    @pytest.mark.parametrize("method", ["is_bookable", "next_start", "next_available"])
    @pytest.mark.parametrize(
        "instant", [datetime(1969, 12, 31, 23, tzinfo=UTC), datetime(2200, 1, 1, 0, 1, tzinfo=UTC)]
    )
    def test_out_of_range(self, method, instant):
        """An instant before 1970 or after 2200 raises OutOfRangeError on the index too."""
        availability = warmed()

        with pytest.raises(OutOfRangeError):
            getattr(availability, method)(SERVICE, instant)

    def test_a_datetime_subclass_takes_the_general_path_and_agrees(self):
        """A datetime subclass is answered (by the checked path) exactly as the same plain datetime."""

        class Stamp(datetime):
            pass

        availability = warmed()
        for k in range(24):
            plain = at(8) + k * FIVE
            stamp = Stamp(2026, 3, 2, plain.hour, plain.minute, tzinfo=UTC)

            assert availability.is_bookable(SERVICE, plain) == availability.is_bookable(SERVICE, stamp)
            assert availability.next_start(SERVICE, plain) == availability.next_start(SERVICE, stamp)


class TestPinsThatChange:
    @pytest.mark.parametrize("always", [True, False])
    def test_a_list_of_pins_changed_in_place_is_read_again(self, always):
        """Pins given as a list, then changed in place, are honoured: only immutable pins take the quick paths."""
        ann, bob = Resource("ann", "Ann", type="dentist"), Resource("bob", "Bob", type="dentist")
        service = Service("c", "C", needs=[Need(type="dentist")], duration=30 * MIN)
        availability = Availability(
            [ann, bob],
            {"ann": IntervalSet.of(at(9), at(12)), "bob": IntervalSet.of(at(9), at(12))},
            [Load("b", "ann", Interval(at(10), at(11)))],
            now=at(0),
        )
        pins = ["ann"]
        with points(always=always):
            for _ in range(3):
                assert not availability.is_bookable(service, at(10), pin=("ann",))
                assert not availability.is_bookable(service, at(10), pin=pins)
                assert at(11) == availability.next_available(service, at(10), pin=pins).start
            pins[0] = "bob"

            assert availability.is_bookable(service, at(10), pin=pins)
            assert (at(10) - EPOCH) // US == availability.next_start(service, at(10), pin=pins)
            assert ("bob",) == availability.next_available(service, at(10), pin=pins).resource_ids


class TestPointIndexIsBuiltWhenItPays:
    def test_one_question_builds_nothing_and_a_loop_builds_the_index(self):
        """A plan with 8,000 starts is not indexed for one question, and is once the questions add up."""
        availability = Availability([ANN], ROUND_THE_CLOCK, now=at(0, day=1))
        availability.is_bookable(SERVICE, at(9))
        plan = availability._last[3]
        count = plan._count

        assert count > 8_000
        assert plan._points is None
        for k in range(count // availability_module._PAYBACK):
            availability.is_bookable(SERVICE, at(9) + k * MIN)
        assert plan._points is not None
        assert count == len(plan._points.micros) == len(plan._points.members)
        assert plan._points.micros == availability.slot_starts(SERVICE, Interval(at(0, day=1), at(0, day=31)))


class TestLightSlots:
    def test_equal_to_the_attrs_constructor(self):
        """The solver's Slot constructor makes a value equal to Slot(...), with the same hash and repr."""
        assignments = (Assignment(0, "room", ("ann",)),)
        expected = Slot(at(9), at(10), assignments)

        actual = availability_module._slot(at(9), at(10), assignments)
        assert type(expected) is type(actual)
        assert expected == actual
        assert hash(expected) == hash(actual)
        assert repr(expected) == repr(actual)
        assert (at(9), at(10), assignments) == (actual.start, actual.end, actual.assignments)

    def test_slot_has_nothing_the_light_constructor_would_skip(self):
        """
        The light constructor skips only Slot's converters, which change nothing it is given.

        The solver hands it UTC instants, an end after the start and a tuple of assignments; on those the
        converters (which make a Slot built by hand UTC and checked) return their input itself, and end's
        validator has nothing to say. No default or post-init.
        """
        fields = attrs.fields(Slot)
        start, end = at(9).astimezone(UTC), at(10).astimezone(UTC)
        assignments = (Assignment(0, "room", ("ann",)),)

        assert ["start", "end", "assignments"] == [f.name for f in fields]
        assert all(f.default is attrs.NOTHING for f in fields)
        assert [None, None] == [fields.start.validator, fields.assignments.validator]  # end's: after the start
        assert not hasattr(Slot, "__attrs_post_init__")
        assert not hasattr(Slot, "__attrs_pre_init__")
        assert fields.start.converter(start) is start
        assert fields.end.converter(end) is end
        assert fields.assignments.converter(assignments) is assignments
        light = availability_module._slot(start, end, assignments)
        assert repr(Slot(at(9), at(10), assignments)) == repr(light)
