"""
What a question about one start needs to know: the loads its blocked time overlaps, and no others.

The engine reads only those loads from storage to book, reschedule or explain one start (``_reach`` in
`slotengine.engine`), not every load of the days around it. These tests hold the solver to the same answer from
them, for every strategy but least-loaded, which ranks by a whole local day's booked time and so reads the days.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from slotengine.availability import Availability, Load, Strategy
from slotengine.errors import InvalidInputError
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import Need, Resource, Service, ServiceUnit
from slotengine.testing._solver_strategies import scenarios

FIVE = timedelta(minutes=5)


def near(loads, service, start, length):
    """The loads whose time with their buffers overlaps *start*'s time with the service's buffers."""
    reach = Interval(start - service.buffer_before, start + length + service.buffer_after)
    return [
        ld
        for ld in loads
        if ld.interval.start - ld.buffer_before < reach.end and reach.start < ld.interval.end + ld.buffer_after
    ]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data(), st.sampled_from([Strategy.FIRST_AVAILABLE, Strategy.PREFERRED]))
def test_one_start_is_answered_from_the_loads_it_overlaps(sc, data, strategy):
    """`explain` at any start says the same (slot, assignment, every reason) from only the loads near it."""
    service = sc.service
    assume(service.unit is ServiceUnit.MINUTES)  # days and nights end at a local hour: the engine reads the days
    steps = (sc.window.end - sc.window.start) // FIVE
    start = sc.window.start + data.draw(st.integers(0, steps)) * FIVE
    start += data.draw(st.sampled_from([timedelta(0), timedelta(minutes=1)]))
    ids = [r.id for r in sc.resources]
    preferred = data.draw(st.lists(st.sampled_from(ids), unique=True)) if strategy is Strategy.PREFERRED else []
    nearby = near(sc.loads, service, start, service.duration)

    def ask(loads):
        availability = Availability(sc.resources, sc.hours, loads, now=sc.now, zone=sc.zone)
        try:
            return availability.explain(service, start, pin=sc.pin, strategy=strategy, preferred=preferred)
        except InvalidInputError as exc:
            return str(exc)

    assert ask(sc.loads) == ask(nearby)


def test_least_loaded_does_need_the_whole_day():
    """The exception the engine keeps: a load far from the start changes which resource least-loaded picks."""
    day = datetime(2026, 3, 2, tzinfo=UTC)
    resources = [Resource("a", "A", type="box"), Resource("b", "B", type="box")]
    hours = {r.id: IntervalSet.of(day, day + timedelta(days=1)) for r in resources}
    morning = Load("x", "a", Interval(day + timedelta(hours=1), day + timedelta(hours=5)))
    service = Service("s", "S", needs=[Need(type="box")], duration=timedelta(hours=1))
    start = day + timedelta(hours=12)

    def pick(loads):
        availability = Availability(resources, hours, loads, now=day, zone="UTC")
        return availability.check(service, start, strategy=Strategy.LEAST_LOADED).resource_ids

    assert (("b",), ("a",)) == (pick([morning]), pick(near([morning], service, start, service.duration)))
