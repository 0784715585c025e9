"""The availability solver, by example: one business case per test."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine.availability import Availability, Load, ReasonCode, Strategy
from slotengine.errors import ConflictError, InvalidInputError, NaiveDatetimeError, NotFoundError
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import UNLIMITED, Need, Resource, ResourceRole, Service, ServiceUnit

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")


def at(hour, minute=0, day=2):
    """An instant on 2026-03-<day> in UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def hours_for(*resources, start=9, end=17, days=(2,)):
    return {r.id: IntervalSet([(at(start, day=d), at(end, day=d)) for d in days]) for r in resources}


def starts(slots):
    return [s.start for s in slots]


WHOLE_DAY = Interval(at(0), at(23, 59))
ANN = Resource("ann", "Dr Ann", kind="user", type="dentist")
BOB = Resource("bob", "Dr Bob", kind="user", type="dentist")
CHECKUP = Service("checkup", "Check-up", needs=[Need(type="dentist")], duration=30 * MIN)


class TestSlots:
    def test_grid_steps_differ_from_duration(self):
        """A 90-minute service on a 30-minute grid offers every half hour that fits before closing."""
        service = Service("s", "Long", needs=[Need(resource_ids=["ann"])], duration=90 * MIN, slot_step=30 * MIN)
        availability = Availability([ANN], hours_for(ANN, start=9, end=12), now=at(0))

        assert [at(9), at(9, 30), at(10), at(10, 30)] == starts(availability.slots(service, WHOLE_DAY))

    def test_booking_blocks_every_overlapping_start(self):
        """With a 30-minute grid and a 3-hour booking at 9:30, no start overlapping it is offered."""
        service = Service("s", "Long", needs=[Need(resource_ids=["ann"])], duration=3 * HOUR, slot_step=30 * MIN)
        load = Load("b1", "ann", Interval(at(9, 30), at(12, 30)))
        availability = Availability([ANN], hours_for(ANN, start=9, end=17), [load], now=at(0))

        assert [at(12, 30), at(13), at(13, 30), at(14)] == starts(availability.slots(service, WHOLE_DAY))

    def test_back_to_back_bookings_do_not_overlap(self):
        """A booking ending at 10:00 leaves 10:00 free: intervals are half-open."""
        availability = Availability([ANN], hours_for(ANN), [Load("b1", "ann", Interval(at(9), at(10)))], now=at(0))

        assert at(10) == availability.slots(CHECKUP, WHOLE_DAY, pin=["ann"])[0].start

    def test_pool_takes_any_free_member(self):
        """'Any free dentist': when Ann is booked, Bob serves."""
        load = Load("b1", "ann", Interval(at(9), at(10)))
        availability = Availability([ANN, BOB], hours_for(ANN, BOB), [load], now=at(0))
        first = availability.slots(CHECKUP, WHOLE_DAY)[0]

        assert (at(9), ("bob",)) == (first.start, first.resource_ids)

    def test_sorted_and_deterministic(self):
        """Slots come sorted by start and the same inputs give the same answer."""
        availability = Availability([BOB, ANN], hours_for(ANN, BOB), now=at(0))
        first, second = availability.slots(CHECKUP, WHOLE_DAY), availability.slots(CHECKUP, WHOLE_DAY)

        assert first == second
        assert starts(first) == sorted(starts(first))
        assert ("bob",) == first[0].resource_ids  # the order resources were given decides first-available

    def test_client_zone_changes_presentation_only(self):
        """A client in Tokyo sees the same instants, written in Tokyo time."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))
        slot = availability.slots(CHECKUP, WHOLE_DAY)[0]
        start, end = slot.in_zone("Asia/Tokyo")

        assert (slot.start, slot.end) == (start, end)
        assert (18, "Asia/Tokyo") == (start.hour, start.tzinfo.key)

    def test_raw_mode_gives_integer_starts(self):
        """slot_starts returns the same starts as integer microseconds."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))
        raw = availability.slot_starts(CHECKUP, WHOLE_DAY)

        assert [
            int((s.start - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
            for s in availability.slots(CHECKUP, WHOLE_DAY)
        ] == raw


class TestCapacity:
    def test_capacity_counts_overlaps(self):
        """A room of capacity 2 takes two overlapping bookings and refuses the third."""
        room = Resource("room", "Room", capacity=2)
        service = Service("s", "Class", needs=[Need(resource_ids=["room"])], duration=HOUR)
        loads = [
            Load("b1", "room", Interval(at(9), at(10))),
            Load("b2", "room", Interval(at(9, 30), at(10, 30))),
        ]
        availability = Availability([room], hours_for(room), loads, now=at(0))

        assert [at(10), at(11)] == starts(availability.slots(service, WHOLE_DAY))[:2]
        explanation = availability.explain(service, at(9))
        assert [ReasonCode.CAPACITY_FULL, ReasonCode.NO_MEMBER_FREE] == [r.code for r in explanation.reasons]

    def test_units(self):
        """Three seats fit where 17 of 20 are taken, four do not."""
        hall = Resource("hall", "Hall", capacity=20)
        loads = [Load("b1", "hall", Interval(at(9), at(10)), units=17)]
        availability = Availability([hall], hours_for(hall), loads, now=at(0))

        def seats(n):
            return Service("s", "Seats", needs=[Need(resource_ids=["hall"], units=n)], duration=HOUR)

        assert availability.explain(seats(3), at(9)).bookable
        assert not availability.explain(seats(4), at(9)).bookable

    def test_unlimited_never_refuses_on_load(self):
        """A conference hall with unlimited capacity accepts any overlap, but not outside its hours."""
        hall = Resource("hall", "Hall", capacity=UNLIMITED)
        service = Service("s", "Talk", needs=[Need(resource_ids=["hall"], units=500)], duration=HOUR)
        loads = [Load(f"b{i}", "hall", Interval(at(9), at(17)), units=1000) for i in range(5)]
        availability = Availability([hall], hours_for(hall), loads, now=at(0))

        assert 8 == len(availability.slots(service, WHOLE_DAY))


class TestCombinedNeeds:
    def test_two_of_five(self):
        """A class needing 2 of 5 instructors is offered while two are free, and assigns two distinct ones."""
        staff = [Resource(f"i{k}", f"I{k}", kind="user", type="instructor") for k in range(5)]
        service = Service("s", "Class", needs=[Need(type="instructor", count=2)], duration=HOUR)
        loads = [Load(f"b{k}", f"i{k}", Interval(at(9), at(10))) for k in range(3)]
        availability = Availability(staff, hours_for(*staff), loads, now=at(0))
        first = availability.slots(service, WHOLE_DAY)[0]

        assert (at(9), ("i3", "i4")) == (first.start, first.resource_ids)
        loads.append(Load("b9", "i3", Interval(at(9), at(10))))
        assert at(10) == Availability(staff, hours_for(*staff), loads, now=at(0)).slots(service, WHOLE_DAY)[0].start

    def test_car_and_driver(self):
        """A car with driver needs one of each, both free for the whole interval."""
        car = Resource("car", "Car", type="car")
        driver = Resource("dan", "Dan", kind="user", type="driver")
        service = Service(
            "ride",
            "Ride",
            needs=[Need(type="car", label="car"), Need(type="driver", label="driver")],
            duration=2 * HOUR,
            slot_step=HOUR,
        )
        loads = [Load("b1", "car", Interval(at(9), at(10))), Load("b2", "dan", Interval(at(12), at(13)))]
        availability = Availability([car, driver], hours_for(car, driver), loads, now=at(0))
        slots = availability.slots(service, WHOLE_DAY)

        assert [at(10), at(13), at(14), at(15)] == starts(slots)
        assert ("car", "driver") == tuple(a.label for a in slots[0].assignments)

    def test_overlapping_pools_never_share_a_resource(self):
        """Two needs whose pools share Ann cannot both take her; the matching finds Ann + Bob."""
        service = Service(
            "s", "Duo", needs=[Need(resource_ids=["ann"]), Need(resource_ids=["ann", "bob"])], duration=HOUR
        )
        availability = Availability([ANN, BOB], hours_for(ANN, BOB), now=at(0))
        slot = availability.slots(service, WHOLE_DAY)[0]

        assert (("ann",), ("bob",)) == tuple(a.resource_ids for a in slot.assignments)

    def test_auxiliary_only_with_primary(self):
        """A service that can take only auxiliary resources is refused; with a primary one it is served."""
        chair = Resource("chair", "Chair", role=ResourceRole.AUXILIARY, type="chair")
        alone = Service("s", "Chair only", needs=[Need(type="chair")], duration=HOUR)
        both = Service("t", "Cut", needs=[Need(type="dentist"), Need(type="chair")], duration=HOUR)
        availability = Availability([ANN, chair], hours_for(ANN, chair), now=at(0))

        with pytest.raises(InvalidInputError, match="only take auxiliary"):
            availability.slots(alone, WHOLE_DAY)
        assert ("ann", "chair") == availability.slots(both, WHOLE_DAY)[0].resource_ids


CAT = Resource("cat", "Dr Cat", kind="user", type="dentist")
DUO = Service(
    "duo",
    "Duo",
    needs=[Need(type="dentist", label="any"), Need(resource_ids=["ann"], label="senior")],
    duration=HOUR,
)
"""Any dentist plus Ann as the senior: Ann sits in both needs' pools."""


class TestPinsAcrossNeeds:
    def test_pinning_an_offered_slot_checks_out_on_its_resources(self):
        """Pinning exactly the resources of an offered slot gives that slot back, whatever needs they share."""
        availability = Availability([ANN, BOB], hours_for(ANN, BOB), now=at(0))
        offered = availability.slots(DUO, WHOLE_DAY)[0]

        slot = availability.check(DUO, offered.start, pin=offered.resource_ids)

        assert ("bob", "ann") == offered.resource_ids
        assert offered == slot

    def test_a_resource_in_two_pools_is_pinned_to_the_need_that_leaves_a_choice(self):
        """Pinning Ann offers Bob + Ann (Ann as the senior), as a matching finds; not nothing."""
        loads = [Load("b1", "bob", Interval(at(9), at(10)))]
        availability = Availability([ANN, BOB], hours_for(ANN, BOB), loads, now=at(0))

        slots = availability.slots(DUO, WHOLE_DAY, pin=["ann"])

        assert at(10) == slots[0].start
        assert all((("bob",), ("ann",)) == tuple(a.resource_ids for a in s.assignments) for s in slots)
        assert availability.is_bookable(DUO, at(10), pin=("ann",))
        assert not availability.is_bookable(DUO, at(9), pin=("ann",))

    def test_the_refusal_of_a_pin_in_two_pools_names_the_busy_need(self):
        """Bob and Cat busy: pinning Ann is refused for want of another dentist, not of a senior."""
        loads = [Load("b1", "bob", Interval(at(9), at(10))), Load("b2", "cat", Interval(at(9), at(10)))]
        availability = Availability([ANN, BOB, CAT], hours_for(ANN, BOB, CAT), loads, now=at(0))

        messages = [r.message for r in availability.explain(DUO, at(9), pin=["ann"]).reasons]

        assert ["bob is booked (b1)", "cat is booked (b2)", "any: 0 of the 1 needed resources are free"] == messages

    @pytest.mark.parametrize(
        ("seniors", "pin", "words"),
        [
            (
                ["ann", "bob"],
                ["ann", "bob", "cat"],
                (
                    "3 resources are pinned (ann, bob, cat) that only the needs 'any', 'senior' of service 'duo' "
                    "take, which take only 2 between them"
                ),
            ),
            (
                ["ann"],
                ["bob", "cat"],
                "2 resources are pinned (bob, cat) to the need 'any' of service 'duo', which takes only 1",
            ),
        ],
    )
    def test_pins_that_no_booking_could_hold_are_refused(self, seniors, pin, words):
        """More pins than the needs that take them have room for is an input error that says which and why."""
        needs = [Need(type="dentist", label="any"), Need(resource_ids=seniors, label="senior")]
        service = Service("duo", "Duo", needs=needs, duration=HOUR)
        availability = Availability([ANN, BOB, CAT], hours_for(ANN, BOB, CAT), now=at(0))

        with pytest.raises(InvalidInputError) as info:
            availability.slots(service, WHOLE_DAY, pin=pin)

        assert words == str(info.value)


TRAILER = Resource("trailer", "Trailer", type="dentist", role=ResourceRole.AUXILIARY)


class TestAuxiliaryResources:
    def test_an_auxiliary_resource_is_never_booked_alone(self):
        """With Ann booked, the auxiliary trailer of the same pool is not offered on its own, and explain says why."""
        loads = [Load("b1", "ann", Interval(at(9), at(10)))]
        availability = Availability([ANN, TRAILER], hours_for(ANN, TRAILER), loads, now=at(0))

        slots = availability.slots(CHECKUP, WHOLE_DAY)
        why = availability.explain(CHECKUP, at(9))

        assert at(10) == slots[0].start
        assert all(("ann",) == s.resource_ids for s in slots)
        assert [
            "ann is booked (b1)",
            (
                "no primary resource is free to go with trailer: an auxiliary resource is booked only together "
                "with a primary one"
            ),
        ] == [r.message for r in why.reasons]
        assert not availability.is_bookable(CHECKUP, at(9))
        assert at(10) == availability.next_available(CHECKUP, at(9)).start

    def test_a_need_takes_a_primary_resource_when_no_other_need_has_one(self):
        """Two mixed needs: when the first need's free choice is auxiliary only, the second takes its primary one."""
        hitch = Resource("hitch", "Hitch", type="hitch", role=ResourceRole.AUXILIARY)
        car = Resource("car", "Car", type="hitch")
        service = Service("s", "S", needs=[Need(type="dentist"), Need(type="hitch")], duration=HOUR)
        loads = [Load("b1", "ann", Interval(at(9), at(10)))]
        availability = Availability([ANN, TRAILER, hitch, car], hours_for(ANN, TRAILER, hitch, car), loads, now=at(0))

        first = availability.slots(service, WHOLE_DAY)[0]
        later = availability.slots(service, Interval(at(10), at(11)))[0]

        assert (at(9), ("trailer", "car")) == (first.start, first.resource_ids)
        assert ("ann", "hitch") == later.resource_ids

    def test_pinning_only_auxiliary_resources_is_refused(self):
        """Pins that leave no room for a primary resource could never be booked: an input error says so."""
        availability = Availability([ANN, TRAILER], hours_for(ANN, TRAILER), now=at(0))

        with pytest.raises(InvalidInputError, match="pinning trailer leaves service 'checkup' no room for a primary"):
            availability.slots(CHECKUP, WHOLE_DAY, pin=["trailer"])


class TestStrategies:
    def setup_method(self):
        self.loads = [Load("b1", "ann", Interval(at(14), at(16)))]
        self.availability = Availability([ANN, BOB], hours_for(ANN, BOB), self.loads, now=at(0))

    def test_first_available(self):
        """First available takes resources in the given order."""
        assert ("ann",) == self.availability.slots(CHECKUP, WHOLE_DAY)[0].resource_ids

    def test_least_loaded(self):
        """Least loaded takes the resource with the least booked time that local day."""
        slot = self.availability.slots(CHECKUP, WHOLE_DAY, strategy=Strategy.LEAST_LOADED)[0]

        assert ("bob",) == slot.resource_ids

    def test_preferred(self):
        """Preferred resources are tried first."""
        slot = self.availability.slots(CHECKUP, WHOLE_DAY, strategy=Strategy.PREFERRED, preferred=["bob"])[0]

        assert ("bob",) == slot.resource_ids

    def test_pin(self):
        """A pinned resource is always the one assigned, and its busy times are not offered."""
        slots = self.availability.slots(CHECKUP, WHOLE_DAY, pin=["ann"])

        assert all(s.resource_ids == ("ann",) for s in slots)
        assert at(14) not in starts(slots)

    @pytest.mark.parametrize("pin", [["zoe"], ["ann", "bob"]])
    def test_bad_pin(self, pin):
        """Pinning an unknown resource, or more than a need takes, is an input error."""
        with pytest.raises(InvalidInputError, match="pinned"):
            self.availability.slots(CHECKUP, WHOLE_DAY, pin=pin)


class TestBuffers:
    def test_existing_and_new_buffers_both_keep_time_free(self):
        """A 15-minute after-buffer on the booking and a 15-minute before-buffer on the service add up."""
        service = Service(
            "s",
            "Cut",
            needs=[Need(resource_ids=["ann"])],
            duration=30 * MIN,
            slot_step=15 * MIN,
            buffer_before=15 * MIN,
        )
        load = Load("b1", "ann", Interval(at(9, 15), at(10)), buffer_after=15 * MIN)
        availability = Availability([ANN], hours_for(ANN, start=9, end=12), [load], now=at(0))

        assert at(10, 30) == availability.slots(service, WHOLE_DAY)[0].start
        reasons = availability.explain(service, at(10, 15)).reasons
        assert ReasonCode.BUFFER in [r.code for r in reasons]
        assert "b1" in [r.booking_id for r in reasons]

    def test_buffers_stay_inside_hours_unless_allowed(self):
        """Cleaning after closing is allowed only if the service says so."""
        inside = Service("s", "Wash", needs=[Need(resource_ids=["ann"])], duration=HOUR, buffer_after=30 * MIN)
        outside = Service(
            "s",
            "Wash",
            needs=[Need(resource_ids=["ann"])],
            duration=HOUR,
            buffer_after=30 * MIN,
            buffers_outside_hours=True,
        )
        availability = Availability([ANN], hours_for(ANN, start=9, end=12), now=at(0))

        assert [at(9), at(10)] == starts(availability.slots(inside, WHOLE_DAY))
        assert [at(9), at(10), at(11)] == starts(availability.slots(outside, WHOLE_DAY))


class TestNoticeHorizonAndHolds:
    def test_min_notice_and_horizon(self):
        """Starts earlier than now + notice, or later than now + horizon, are not offered and are explained."""
        service = Service("s", "S", needs=[Need(type="dentist")], duration=HOUR, min_notice=2 * HOUR, horizon=5 * HOUR)
        availability = Availability([ANN], hours_for(ANN), now=at(8))

        assert [at(10), at(11), at(12), at(13)] == starts(availability.slots(service, WHOLE_DAY))
        assert [ReasonCode.MIN_NOTICE] == [r.code for r in availability.explain(service, at(9)).reasons]
        assert [ReasonCode.BEYOND_HORIZON] == [r.code for r in availability.explain(service, at(14)).reasons]

    def test_notice_horizon_and_the_past_are_said_in_words(self):
        """People read '2 hours', not '2:00:00'; a start before now has passed, whatever the notice (even none)."""
        service = Service("s", "S", needs=[Need(type="dentist")], duration=HOUR, min_notice=2 * HOUR, horizon=5 * HOUR)
        no_notice = Service("n", "N", needs=[Need(type="dentist")], duration=HOUR)
        availability = Availability([ANN], hours_for(ANN), now=at(10))

        def said(svc, start):
            return [r.message for r in availability.explain(svc, start).reasons if r.code is not ReasonCode.OFF_GRID]

        assert ["bookings must be made at least 2 hours before they start"] == said(service, at(11))
        assert ["bookings are taken at most 5 hours ahead"] == said(service, at(16))
        assert ["this time has already passed"] == said(service, at(9))
        assert ["this time has already passed"] == said(no_notice, at(9))

    @pytest.mark.parametrize(
        ("now", "blocked"),
        [
            (at(9) - timedelta(microseconds=1), True),
            (at(9), False),
            (at(9) + timedelta(microseconds=1), False),
        ],
    )
    def test_hold_frees_at_expiry(self, now, blocked):
        """A hold blocks strictly before its expiry and frees at it, with no sweeper (test H1)."""
        hold = Load("h1", "ann", Interval(at(10), at(11)), hold_until=at(9))
        availability = Availability([ANN], hours_for(ANN), [hold], now=now)
        explanation = availability.explain(CHECKUP, at(10), pin=["ann"])

        assert blocked == (not explanation.bookable)
        if blocked:
            assert [(ReasonCode.HELD, at(9))] == [
                (r.code, r.until) for r in explanation.reasons if r.code is ReasonCode.HELD
            ]


class TestWholeDays:
    def test_nights_across_dst(self):
        """An apartment rented by the night checks in at 15:00 and out at 11:00 local, across the spring change."""
        apartment = Resource("apt", "Apartment", zone="Europe/Paris")
        stay = Service(
            "stay",
            "Stay",
            needs=[Need(resource_ids=["apt"])],
            duration=timedelta(days=2),
            max_duration=timedelta(days=7),
            unit=ServiceUnit.NIGHTS,
            check_in=time(15),
            check_out=time(11),
        )
        open_all = {"apt": IntervalSet([(datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC))])}
        loads = [
            Load(
                "b1",
                "apt",
                Interval(datetime(2026, 3, 30, 13, tzinfo=UTC), datetime(2026, 4, 1, 9, tzinfo=UTC)),
            )
        ]
        availability = Availability([apartment], open_all, loads, now=datetime(2026, 3, 1, tzinfo=UTC))
        window = Interval(datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))
        slots = availability.slots(stay, window)
        local = [s.in_zone(PARIS) for s in slots]

        assert [date(2026, 3, 27), date(2026, 3, 28), date(2026, 4, 1), date(2026, 4, 2)] == [
            s.date() for s, _ in local
        ]
        assert all((s.time(), e.time()) == (time(15), time(11)) for s, e in local)
        # The stay over the night of the change is one hour shorter in elapsed time.
        assert timedelta(hours=43) == slots[1].end - slots[1].start

    def test_days_are_whole_local_days(self):
        """A daily rental starts at local midnight and lasts 23 hours on the spring-forward day."""
        spot = Resource("p1", "Parking 1", zone="Europe/Paris")
        rent = Service(
            "day", "Day", needs=[Need(resource_ids=["p1"])], duration=timedelta(days=1), unit=ServiceUnit.DAYS
        )
        open_all = {"p1": IntervalSet([(datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC))])}
        availability = Availability([spot], open_all, now=datetime(2026, 3, 1, tzinfo=UTC))
        slot = availability.check(rent, datetime(2026, 3, 29, tzinfo=PARIS))

        assert timedelta(hours=23) == slot.end - slot.start
        assert [ReasonCode.OFF_GRID] == [
            r.code for r in availability.explain(rent, datetime(2026, 3, 29, 10, tzinfo=PARIS)).reasons
        ][:1]


class TestExplainAndCheck:
    def test_outside_hours_and_time_off(self):
        """explain tells closed hours from time off when time off is given."""
        off = {"ann": IntervalSet([(at(12), at(13))])}
        hours = {"ann": IntervalSet([(at(9), at(17))]) - off["ann"]}
        availability = Availability([ANN], hours, now=at(0), time_off=off)

        assert ReasonCode.TIME_OFF in [r.code for r in availability.explain(CHECKUP, at(12)).reasons]
        assert ReasonCode.OUTSIDE_HOURS in [r.code for r in availability.explain(CHECKUP, at(18)).reasons]

    def test_check_raises_conflict_with_reasons(self):
        """check() refuses a taken start with ConflictError carrying structured reasons."""
        availability = Availability([ANN], hours_for(ANN), [Load("b1", "ann", Interval(at(9), at(10)))], now=at(0))

        with pytest.raises(ConflictError, match="ann is booked") as info:
            availability.check(CHECKUP, at(9))
        assert "b1" in [r.booking_id for r in info.value.details["reasons"]]
        assert at(10) == availability.check(CHECKUP, at(10)).start

    def test_naive_start_refused(self):
        """explain refuses a naive start."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))

        with pytest.raises(NaiveDatetimeError):
            availability.explain(CHECKUP, datetime(2026, 3, 2, 9))


class TestQueries:
    def test_next_available(self):
        """next_available finds the first free start at or after an instant, across days."""
        loads = [Load("b1", "ann", Interval(at(9), at(17)))]
        availability = Availability([ANN], hours_for(ANN, days=(2, 3)), loads, now=at(0))

        assert at(9, day=3) == availability.next_available(CHECKUP, at(8)).start
        assert availability.next_available(CHECKUP, at(17, day=3)) is None

    def test_days_with_slots(self):
        """A calendar widget gets the local days of a month that have a slot."""
        availability = Availability([ANN], hours_for(ANN, days=(2, 4, 31)), now=at(0))

        assert [date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 31)] == availability.days_with_slots(
            CHECKUP, 2026, 3, "Europe/Paris"
        )

    def test_free_time(self):
        """A day view gets a resource's free time."""
        availability = Availability([ANN], hours_for(ANN), [Load("b1", "ann", Interval(at(10), at(11)))], now=at(0))

        assert IntervalSet([(at(9), at(10)), (at(11), at(17))]) == availability.free_time("ann", WHOLE_DAY)
        with pytest.raises(NotFoundError):
            availability.free_time("zoe", WHOLE_DAY)

    @pytest.mark.parametrize("units", [0, -3, 1.5, True, "1"])
    def test_free_time_wants_whole_units(self, units):
        """A fully booked day is not free for -3 units: units below 1 or not whole are refused (they were taken)."""
        availability = Availability([ANN], hours_for(ANN), [Load("b1", "ann", Interval(at(9), at(17)))], now=at(0))

        with pytest.raises(InvalidInputError, match="whole number of units"):
            availability.free_time("ann", WHOLE_DAY, units=units)
        with pytest.raises(InvalidInputError, match="window must be an Interval"):
            availability.free_time("ann", (at(9), at(17)))

    @pytest.mark.parametrize(("year", "month"), [(2026, 13), (2026, 0), (2026, "6"), (1969, 12), (2200, 1), (True, 3)])
    def test_days_with_slots_wants_a_real_month(self, year, month):
        """A month that is none is an input error, not Python's ValueError or TypeError from `date`."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))

        with pytest.raises(InvalidInputError, match="must be a whole number from"):
            availability.days_with_slots(CHECKUP, year, month, "Europe/Paris")


class TestBadInput:
    def test_duration_must_be_allowed(self):
        """A duration the service does not allow is an input error."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))

        with pytest.raises(InvalidInputError, match="cannot be booked for"):
            availability.slots(CHECKUP, WHOLE_DAY, duration=HOUR)

    def test_repeated_resource_and_missing_hours(self):
        """Resources must be unique and each needs hours."""
        with pytest.raises(InvalidInputError, match="twice"):
            Availability([ANN, ANN], hours_for(ANN), now=at(0))
        with pytest.raises(InvalidInputError, match="no open hours"):
            Availability([ANN, BOB], hours_for(ANN), now=at(0))

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"units": 0},
            {"units": 1.5},
            {"buffer_after": timedelta(minutes=-1)},
            {"hold_until": datetime(2026, 3, 2, 9)},
        ],
    )
    def test_bad_loads(self, kwargs):
        """Loads are validated like every other value."""
        with pytest.raises(InvalidInputError):
            Load("b1", "ann", Interval(at(9), at(10)), **kwargs)


class TestReasonsForPeople:
    def test_pinned_reasons_name_the_pinned_resource_only(self):
        """Pinning a busy Ann explains Ann; free Bob is not listed as a reason."""
        availability = Availability(
            [ANN, BOB], hours_for(ANN, BOB), [Load("b1", "ann", Interval(at(9), at(10)))], now=at(0)
        )
        reasons = availability.explain(CHECKUP, at(9), pin=["ann"]).reasons

        assert {"ann"} == {r.resource_id for r in reasons if r.resource_id}
        assert "need 1: the chosen ann is not free" in [r.message for r in reasons]

    def test_messages_use_local_time_and_say_what_is_allowed(self):
        """People read local times and the allowed durations, not UTC and reprs."""
        hold = Load("h1", "ann", Interval(at(9), at(10)), hold_until=at(12))
        availability = Availability([ANN], hours_for(ANN), [hold], now=at(0), zone="Europe/Paris")

        with pytest.raises(
            ConflictError, match=r"at 2026-03-02 10:00 Europe/Paris: .*until 2026-03-02 13:00 Europe/Paris"
        ):
            availability.check(CHECKUP, at(9), pin=["ann"])
        with pytest.raises(InvalidInputError, match="it allows 0:30:00"):
            availability.slots(CHECKUP, WHOLE_DAY, duration=HOUR)


    @given(st.permutations([f"id{n}" for n in range(4)]))
    def test_reasons_do_not_depend_on_the_order_storage_gave(self, ids):
        """However the storage ordered the loads, the reasons read the same (ties on start go by booking id)."""
        room = Resource("room", "Room", capacity=2)
        service = Service("s", "S", needs=[Need(resource_ids=["room"])], duration=HOUR)

        def reasons(order):
            loads = [Load(i, "room", Interval(at(9), at(10))) for i in order]
            return Availability([room], hours_for(room), loads, now=at(0)).explain(service, at(9)).reasons

        assert reasons(sorted(ids)) == reasons(ids)
        assert "(id0, id1, id2, id3)" in reasons(ids)[0].message


class TestLimit:
    def test_limit_zero_is_nothing_and_negative_is_refused(self):
        """limit=0 asks for no slots; a negative limit is an input error."""
        availability = Availability([ANN], hours_for(ANN), now=at(0))

        assert [] == availability.slots(CHECKUP, WHOLE_DAY, limit=0)
        assert 2 == len(availability.slots(CHECKUP, WHOLE_DAY, limit=2))
        with pytest.raises(InvalidInputError, match="limit"):
            availability.slots(CHECKUP, WHOLE_DAY, limit=-1)
