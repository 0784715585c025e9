"""Hypothesis strategies for whole availability scenarios: resources, hours, loads, a service and a query."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from slotengine.availability import Load
from slotengine.intervals import Interval, IntervalSet
from slotengine.model import UNLIMITED, Need, Resource, ResourceRole, Service, ServiceUnit
from slotengine.testing._time_strategies import DST_ZONES, dst_transitions

__all__ = ["Scenario", "scenarios"]

_FIVE = timedelta(minutes=5)


@attrs.frozen
class Scenario:
    """One availability question, drawn whole: everything `Availability` and `Availability.slots` take."""

    resources: tuple[Resource, ...]
    hours: dict[str, IntervalSet] = attrs.field(eq=False)
    loads: tuple[Load, ...]
    now: datetime
    service: Service
    window: Interval
    zone: str
    pin: frozenset[str] = frozenset()
    duration: timedelta | None = None


def _local_hours(draw: st.DrawFn, zone: str, first_day: datetime, days: int, *, by_day: bool) -> IntervalSet:
    """Open hours built like a schedule: local wall ranges per day, localized by the wall-time rule."""
    tz = ZoneInfo(zone)
    pairs = []
    for offset in range(days):
        day = (first_day + timedelta(days=offset)).date()
        for _ in range(draw(st.integers(1, 3))):
            start_min = draw(st.integers(0, 47)) * 30
            length = draw(st.integers(2, 36)) * 30
            start = datetime.combine(day, time()) + timedelta(minutes=start_min)
            end = start + timedelta(minutes=length)
            s = start.replace(tzinfo=tz, fold=0).astimezone(UTC)
            e = end.replace(tzinfo=tz, fold=0).astimezone(UTC)
            if e > s:
                pairs.append((s, e))
    if draw(st.integers(0, 4)) < (3 if by_day else 1):
        # Round-the-clock, as a resource rented by the day would have, minus one closed stretch.
        start = datetime.combine(first_day.date(), time()).replace(tzinfo=tz).astimezone(UTC)
        whole = IntervalSet([(start, start + timedelta(days=days))])
        cut_start = start + timedelta(hours=draw(st.integers(0, 24 * days - 1)))
        return whole - IntervalSet([(cut_start, cut_start + timedelta(hours=draw(st.integers(1, 30))))])
    return IntervalSet(pairs)


@st.composite
def scenarios(draw: st.DrawFn, *, max_resources: int = 5) -> Scenario:  # noqa: PLR0915
    """
    Draw a small but nasty availability scenario.

    Resources of capacity 1–3 or unlimited, some auxiliary; open hours from local wall ranges over three
    days around a real DST transition; bookings and holds (some expired) with units and buffers; a service
    in minutes, days or nights with one or two needs, buffers, a slot step unlike its duration, minimum notice
    and a horizon; and sometimes a pinned resource. Everything falls on whole minutes.
    """
    zone = draw(st.sampled_from(DST_ZONES))
    transitions = dst_transitions(zone)
    if len(transitions) > 0 and draw(st.booleans()):
        pivot = draw(st.sampled_from(transitions))
    else:
        pivot = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=draw(st.integers(0, 365)))
    tz = ZoneInfo(zone)
    first_day = datetime.combine((pivot.astimezone(tz) - timedelta(days=1)).date(), time())
    days = 3
    span_start = first_day.replace(tzinfo=tz).astimezone(UTC)
    span = timedelta(days=days)

    types = ["a", "b"]
    count = draw(st.integers(2, max_resources))
    types = types[: draw(st.integers(1, 2))]
    resources = [
        Resource(
            f"r{i}",
            f"R{i}",
            type=draw(st.sampled_from(types)),
            role=ResourceRole.AUXILIARY if draw(st.integers(0, 7)) == 0 else ResourceRole.PRIMARY,
            capacity=draw(st.one_of(st.integers(1, 3), st.just(UNLIMITED))),
            zone=zone if draw(st.integers(0, 5)) else draw(st.sampled_from(DST_ZONES)),
        )
        for i in range(count)
    ]
    unit = draw(st.sampled_from([ServiceUnit.MINUTES] * 4 + [ServiceUnit.DAYS, ServiceUnit.NIGHTS]))
    by_day = unit is not ServiceUnit.MINUTES
    hours = {r.id: _local_hours(draw, r.zone or zone, first_day, days, by_day=by_day) for r in resources}

    def instant() -> datetime:
        return span_start + draw(st.integers(0, span // _FIVE)) * _FIVE

    now = instant()
    loads = []
    for j in range(draw(st.integers(0, 6))):
        start = instant() if draw(st.booleans()) else now + draw(st.integers(0, 24)) * _FIVE
        length = draw(st.integers(1, 36)) * _FIVE
        hold = None
        if draw(st.integers(0, 2)) == 0:
            hold = now + draw(st.sampled_from([-1, 0, 0, 1]) | st.integers(-12, 12)) * _FIVE
        loads.append(
            Load(
                f"b{j}",
                draw(st.sampled_from([r.id for r in resources])),
                Interval(start, start + length),
                units=draw(st.integers(1, 2)),
                buffer_before=draw(st.sampled_from([timedelta(0), _FIVE, 3 * _FIVE])),
                buffer_after=draw(st.sampled_from([timedelta(0), _FIVE, 2 * _FIVE])),
                hold_until=hold,
            )
        )

    def need() -> Need:
        small = st.sampled_from([1, 1, 1, 2])
        if draw(st.booleans()):
            present = sorted({r.type for r in resources})
            return Need(type=draw(st.sampled_from(present)), count=draw(small), units=draw(small))
        ids = [r.id for r in resources]
        pool = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=count, unique=True))
        return Need(resource_ids=pool, count=min(draw(small), len(pool)), units=draw(small))

    needs = [need() for _ in range(draw(st.sampled_from([1, 1, 2, 2, 3])))]
    extra: dict[str, object] = {}
    if unit is ServiceUnit.MINUTES:
        duration = draw(st.integers(1, 24)) * _FIVE
        step = draw(st.none() | st.integers(1, 12).map(lambda k: k * _FIVE))
    else:
        duration = timedelta(days=1)
        step = None
        if unit is ServiceUnit.NIGHTS:
            extra = {"check_in": time(draw(st.integers(12, 16))), "check_out": time(draw(st.integers(9, 11)))}
    notice = draw(st.sampled_from([timedelta(0), timedelta(minutes=30), timedelta(hours=4)]))
    horizon = draw(st.sampled_from([None, None, timedelta(days=1), timedelta(hours=30)]))
    if horizon is not None and horizon <= notice:
        horizon = None
    service = Service(
        "svc",
        "Service",
        needs=needs,
        duration=duration,
        unit=unit,
        slot_step=step,
        buffer_before=draw(st.sampled_from([timedelta(0), _FIVE, 2 * _FIVE])),
        buffer_after=draw(st.sampled_from([timedelta(0), 2 * _FIVE])),
        buffers_outside_hours=draw(st.booleans()),
        min_notice=notice,
        horizon=horizon,
        **extra,
    )
    w_start = span_start + draw(st.integers(0, 12)) * timedelta(hours=1)
    w_end = span_start + span - draw(st.integers(0, 12)) * timedelta(hours=1)
    pin: frozenset[str] = frozenset()
    pool_ids = [r.id for r in resources if any(n.matches(r) for n in needs)]
    if pool_ids and draw(st.integers(0, 3)) == 0:
        pin = frozenset([draw(st.sampled_from(pool_ids))])
    return Scenario(tuple(resources), hours, tuple(loads), now, service, Interval(w_start, w_end), zone, pin)
