"""
What `cancellation_report` and `funnel_report` read: the log of the bookings they count, never the whole log,
and, for the funnel, the bookings made in its window (``BookingQuery.created``, which the SQL adapters index).

Their answers stay those of the pure `cancellations` and `funnel` over every booking and the whole log, and a
customer is refused as before (the reports read the whole log, which `BookingEngine.transitions` refuses them).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine import reports
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import PermissionDeniedError
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import Need, Resource, Service
from slotengine.ports import BookingQuery
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
DIMENSIONS = ("total", "resource", "service", "source")


def paris(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=PARIS)


class Counting(MemoryStorage):
    """A MemoryStorage that records every read of the log its transactions make."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, object]] = []
        self.queries: list[BookingQuery] = []

    @contextmanager
    def transaction(self, tenant: str) -> Any:  # type: ignore[override]
        with super().transaction(tenant) as tx:
            yield _Spy(tx, self.reads, self.queries)


class _Spy:
    def __init__(self, inner: Any, reads: list[tuple[str, object]], queries: list[BookingQuery]) -> None:
        self._inner = inner
        self._reads = reads
        self._queries = queries

    def find_bookings(self, query: BookingQuery) -> Any:
        self._queries.append(query)
        return self._inner.find_bookings(query)

    def list_transitions(self, booking_id: str | None = None) -> Any:
        self._reads.append(("list_transitions", booking_id))
        return self._inner.list_transitions(booking_id)

    def list_transitions_of(self, booking_ids: Any) -> Any:
        self._reads.append(("list_transitions_of", frozenset(booking_ids)))
        return self._inner.list_transitions_of(booking_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def shop(storage: MemoryStorage, clock: FrozenClock) -> BookingEngine:
    engine = BookingEngine(storage, clock=clock, tenant="t", default_actor=Actor.system("tests"))
    hours = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange("00:00", "24:00")))
    engine.setup(Business("Shop", "Europe/Paris", hours))
    engine.add_resource(Resource("r1", "Room", capacity=20))
    engine.add_service(Service("s", "Session", needs=[Need(resource_ids={"r1"})], duration=H))
    return engine


STEPS = st.lists(
    st.tuples(
        st.integers(0, 6 * 24),  # hours after 1 March when the booking is made
        st.integers(1, 8 * 24),  # hours after that when it starts
        st.sampled_from(["book", "hold", "hold+confirm", "book+cancel", "hold+cancel", "hold+confirm+cancel"]),
        st.sampled_from(["site", "manager"]),
    ),
    max_size=14,
)


def play(engine: BookingEngine, clock: FrozenClock, steps: list[tuple[int, int, str, str]]) -> None:
    for made, after, what, source in sorted(steps):
        clock.set(paris(1) + made * H)
        start = paris(1) + (made + after) * H
        kind, *then = what.split("+")
        booking = (engine.book if kind == "book" else engine.hold)("s", start, source=source)
        for step in then:
            getattr(engine, step)(booking.id)


def counting_shop(steps: list[tuple[int, int, str, str]]) -> tuple[BookingEngine, Counting]:
    storage, clock = Counting(), FrozenClock(paris(1))
    engine = shop(storage, clock)
    play(engine, clock, steps)
    storage.reads.clear()
    return engine, storage


class TestWhatTheyRead:
    def test_cancellation_report_reads_the_log_of_its_cancelled_bookings_only(self) -> None:
        """Not the whole log: one read of the cancelled bookings that overlap the window."""
        engine, storage = counting_shop(
            [(0, 30, "book+cancel", "site"), (0, 100, "book+cancel", "site"), (1, 31, "hold+confirm", "site")]
        )
        cancelled_in_window = {
            b.id
            for b in engine.list(status=BookingStatus.CANCELLED)
            if paris(2) <= b.start < paris(4)  # 1 March + 30 hours; not the one 100 hours on
        }
        storage.reads.clear()

        reports.cancellation_report(engine, date(2026, 3, 2), date(2026, 3, 3), actor=Actor.manager("m"))

        assert [("list_transitions_of", frozenset(cancelled_in_window))] == storage.reads
        assert 1 == len(cancelled_in_window)

    def test_funnel_report_reads_the_log_of_its_cohort_only(self) -> None:
        """Not the whole log: one read of the bookings created in the window."""
        engine, storage = counting_shop([(0, 5, "hold+confirm", "site"), (30, 5, "book", "site"), (80, 5, "hold", "x")])
        cohort = {b.id for b in engine.list() if paris(2) <= b.created_at < paris(4)}
        storage.reads.clear()
        storage.queries.clear()

        reports.funnel_report(engine, date(2026, 3, 2), date(2026, 3, 3), actor=Actor.manager("m"))

        assert [("list_transitions_of", frozenset(cohort))] == storage.reads
        assert [BookingQuery(created=Interval(paris(2), paris(4)))] == storage.queries  # the window's, not all
        assert 1 == len(cohort)


    def test_utilization_with_buffers_reads_what_reaches_into_the_window(self) -> None:
        """With include_buffers, the bookings whose time with buffers overlaps the window, not every booking."""
        engine, storage = counting_shop([(0, 30, "book", "site"), (0, 100, "book", "site")])
        storage.queries.clear()

        reports.utilization_report(engine, date(2026, 3, 2), date(2026, 3, 3), include_buffers=True)

        assert [Interval(paris(2), paris(4))] == [q.blocked for q in storage.queries]


class TestCustomersAreRefusedAsBefore:
    @pytest.mark.parametrize("report", [reports.cancellation_report, reports.funnel_report])
    @pytest.mark.parametrize("as_default", [False, True])
    def test_a_customer_is_refused_the_report(self, report: Any, as_default: bool) -> None:
        """The error `transitions()` gave a customer for the whole log, even when they have bookings in the window."""
        engine, _ = counting_shop([(0, 30, "book+cancel", "site"), (30, 5, "book", "site")])
        ann = Actor.customer("ann")
        engine.book("s", paris(2, 10), customer_id="ann")
        if as_default:
            engine.default_actor = ann

        with pytest.raises(
            PermissionDeniedError, match=r"^customer:ann may read the history of their own bookings only$"
        ):
            report(engine, date(2026, 3, 1), date(2026, 3, 9), actor=None if as_default else ann)
        with pytest.raises(PermissionDeniedError, match=r"may read the history of their own bookings only$"):
            engine.transitions(actor=ann)  # the read the reports made before, refused the same way


# --- the same answers as the pure functions over everything ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    steps=STEPS,
    first=st.integers(1, 10),
    days=st.integers(0, 8),
    grain=st.sampled_from(["day", "week"]),
    memory=st.booleans(),
)
def test_the_reports_answer_as_the_pure_functions_over_every_booking_and_the_whole_log(
    steps: list[tuple[int, int, str, str]], first: int, days: int, grain: str, memory: bool
) -> None:
    """Reading less changes no answer: the reports equal `cancellations` and `funnel` over all of it."""
    clock = FrozenClock(paris(1))
    engine = shop(MemoryStorage() if memory else Counting(), clock)
    play(engine, clock, steps)
    first_day = date(2026, 3, first)
    last_day = first_day + timedelta(days=days)
    cut = reports.periods(first_day, last_day, "Europe/Paris", grain)
    every, log = engine.list(), engine.transitions()

    assert reports.cancellations(every, log, cut, dimensions=DIMENSIONS) == reports.cancellation_report(
        engine, first_day, last_day, grain=grain, dimensions=DIMENSIONS
    )
    assert reports.funnel(every, log, cut, dimensions=DIMENSIONS) == reports.funnel_report(
        engine, first_day, last_day, grain=grain, dimensions=DIMENSIONS
    )
