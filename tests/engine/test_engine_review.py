"""The engine's calls take what they document and refuse the rest, changing nothing (a newcomer's review)."""

from __future__ import annotations

from datetime import date
from typing import Any

import attrs
import pytest

from conftest import WASH, H, M, at, business, state_hash
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.board import render_board
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PolicyViolationError,
    UnknownTimeZoneError,
)
from slotengine.events import EventDesk, EventTemplate, Occurrence, TicketType
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import Need, Resource, Service
from slotengine.money import Money
from slotengine.notifications import NotificationRule, Template
from slotengine.policies import HoldPolicy
from slotengine.reports import (
    cancellation_report,
    funnel_report,
    occurrence_report,
    revenue_report,
    utilization_report,
)
from slotengine.schedule import TimeOff
from slotengine.testing.clock import FrozenClock
from slotengine.testing.notifiers import RecordingNotifier


def shop(clock: FrozenClock, **policies: object) -> BookingEngine:
    engine = BookingEngine(MemoryStorage(), clock=clock, tenant="wash", default_actor=Actor.system("site"))
    engine.setup(business(**policies))
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_service(WASH)
    return engine


class TestFlagsAreTrueOrFalse:
    def test_book_with_override_no_is_refused_and_books_nothing(self) -> None:
        """override="no" is truthy: it booked 20:00 on a day closed at 18:00. Now refused, nothing written."""
        engine = shop(FrozenClock(at(2, 8)), allow_override=True)
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="override must be True or False"):
            engine.book("wash", at(3, 20), override="no")  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_sell_with_confirm_no_is_refused_and_sells_nothing(self) -> None:
        """confirm="no" confirmed the sale; now refused before anything is written."""
        engine = shop(FrozenClock(at(2, 8)))
        desk = EventDesk(engine)
        desk.upsert_template(EventTemplate("walk", "Walk", 2 * H, "Europe/Paris", 4, [TicketType("adult", "Adult", Money("15", "EUR"))]))
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="confirm must be True or False"):
            desk.sell("w1", "adult", confirm="no")  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_outbox_pending_only_must_be_a_bool(self) -> None:
        engine = shop(FrozenClock(at(2, 8)))

        with pytest.raises(InvalidInputError, match="pending_only"):
            engine.outbox(pending_only="yes")  # type: ignore[arg-type]


class TestAChosenLengthIsPricedOnce:
    def test_75_minutes_of_a_3_hour_service_at_13_50(self) -> None:
        """5.625 EUR rounds half to even to 5.62, as the cookbooks say (the decimal share gave 5.63)."""
        engine = shop(FrozenClock(at(2, 8)))
        engine.add_service(
            Service(
                "room", "Room", needs=[Need(type="box")], duration=3 * H, price=Money("13.50", "EUR"), min_duration=15 * M,
                slot_step=30 * M,
            )
        )

        booked = engine.book("room", at(3, 10), duration=75 * M)

        assert Money("5.62", "EUR") == booked.price


class TestALatePaymentIsCheckedLikeANewBooking:
    def test_a_day_closed_since_the_hold_refuses_the_late_payment(self) -> None:
        """The business closed the hold's day after it lapsed: the late payment is refused and nothing changes."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        held = engine.hold("wash", at(4, 10))
        clock.advance(H)  # lapsed (the default hold lasts 30 minutes)
        closed = attrs.evolve(engine.business().hours, time_off=(TimeOff.days(date(2026, 3, 4), date(2026, 3, 4)),))
        engine.setup(attrs.evolve(engine.business(), hours=closed))
        before = state_hash(engine)

        with pytest.raises(ConflictError, match="cannot be booked"):
            engine.pay(held.id, Money("20", "EUR"), payment_id="psp-1")

        assert before == state_hash(engine)

    def test_a_free_time_still_takes_the_late_payment(self) -> None:
        """The same late payment on an open day revives the hold and records the payment."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock, hold=HoldPolicy(ttl=30 * M, accept_late_payment=True))
        held = engine.hold("wash", at(4, 10))
        clock.advance(H)

        paid = engine.pay(held.id, Money("20", "EUR"), payment_id="psp-1")

        assert BookingStatus.PAID == paid.status


class TestWordsThatPointAtTheRightThing:
    def test_list_names_the_filter_it_refuses(self) -> None:
        """period=(a, b) was reported as 'window'; customer_id=5 matched nothing silently."""
        engine = shop(FrozenClock(at(2, 8)))

        with pytest.raises(InvalidInputError, match=r"^period must be an Interval") as period:
            engine.list(period=(at(3, 9), at(3, 10)))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=r"^created must be an Interval"):
            engine.list(created=(at(3, 9), at(3, 10)))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="customer_id must be text") as customer:
            engine.list(customer_id=5)  # type: ignore[arg-type]

        assert ("period", "customer_id") == (period.value.details["field"], customer.value.details["field"])

    def test_an_expected_quote_that_is_no_quote_is_refused_before_anything(self) -> None:
        engine = shop(FrozenClock(at(2, 8)))
        booked = engine.book("wash", at(4, 10))
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="expected_quote"):
            engine.cancel(booked.id, expected_quote="50%")  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_deadlines_are_said_in_local_time(self) -> None:
        """A no-show before its grace and a completion before the end say when, in the business's zone."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        booked = engine.book("wash", at(3, 10))
        clock.advance(at(3, 10, 5) - at(2, 8))

        with pytest.raises(PolicyViolationError) as no_show:
            engine.mark_no_show(booked.id)
        with pytest.raises(PolicyViolationError) as complete:
            engine.complete(booked.id)

        assert "2026-03-03 10:15 Europe/Paris (15 minutes after the start)" in str(no_show.value)
        assert "at 2026-03-03 10:30 Europe/Paris" in str(complete.value)


class TestAMessageGivenUp:
    def test_keeps_its_planned_due_time(self) -> None:
        """A message given up after its last attempt is due when it was planned, not at its claim's lease end."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        engine.hold("wash", at(4, 10))
        [message] = engine.outbox()
        notifier = RecordingNotifier()
        notifier.fail_next(1)

        report = engine.dispatch_due(notifier, max_attempts=1)

        [given_up] = engine.outbox()
        assert 1 == report.failed
        assert given_up.failed_at is not None
        assert message.due_at == given_up.due_at


def test_a_window_of_the_period_is_unchanged() -> None:
    """agenda and list with a real Interval still answer (the checks refuse only what is wrong)."""
    engine = shop(FrozenClock(at(2, 8)))
    booked = engine.book("wash", at(3, 10))

    assert [booked.id] == [b.id for b in engine.agenda(Interval(at(3, 0), at(4, 0)))]


class TestPortArgumentsAgreeAcrossAdapters:
    """Memory, SQLite and PostgreSQL take and refuse the same arguments of the port (they disagreed)."""

    def test_lock_resources_reads_a_generator_and_finds_no_non_text_id(self, engine: BookingEngine) -> None:
        storage = engine.storage
        with storage.transaction("wash") as tx, pytest.raises(NotFoundError, match="no resource 'nope'"):
            tx.lock_resources(iter(["nope"]))  # a generator was read empty on PostgreSQL: nothing locked
        for bad in ([1], [None], [["x"]]):
            with storage.transaction("wash") as tx, pytest.raises(NotFoundError, match="no resource"):
                tx.lock_resources(["box1", *bad])  # type: ignore[list-item]

    @pytest.mark.parametrize("exclude", ["abc", 5, [1], None])
    def test_reserve_refuses_an_exclude_that_is_no_collection_of_ids(self, engine: BookingEngine, exclude: object) -> None:
        booked = engine.book("wash", at(3, 10))
        with engine.storage.transaction("wash") as tx, pytest.raises(InvalidInputError, match="exclude"):
            tx.reserve(booked, now=at(2, 8), exclude=exclude)  # type: ignore[arg-type]


def test_an_agenda_of_no_period_is_refused() -> None:
    """agenda(None) listed every booking there is (list's "any period"); an agenda is of a period."""
    engine = shop(FrozenClock(at(2, 8)))

    with pytest.raises(InvalidInputError, match="period must be an Interval"):
        engine.agenda(None)  # type: ignore[arg-type]


def test_a_customer_filtering_by_a_number_is_refused_too() -> None:
    """customer_id=5 is refused for a customer as for staff (the customer's branch answered [] first)."""
    engine = shop(FrozenClock(at(2, 8)))

    with pytest.raises(InvalidInputError, match="customer_id must be text"):
        engine.list(customer_id=5, actor=Actor.customer("ann"))  # type: ignore[arg-type]


def test_a_limit_beyond_any_count_is_every_slot() -> None:
    """find_slots(limit=10**100) raised islice's ValueError (the bad-input fuzz found it); it is every slot."""
    engine = shop(FrozenClock(at(2, 8)))
    day = Interval(at(3, 0), at(4, 0))

    assert engine.find_slots("wash", day) == engine.find_slots("wash", day, limit=10**100)


class TestAZoneIsNamedOrLeftOut:
    """An empty or false zone read as "the business's zone" (``zone or business.zone``); only None means that."""

    @pytest.mark.parametrize("zone", ["", False, 0])
    @pytest.mark.parametrize(
        "report", [utilization_report, revenue_report, cancellation_report, funnel_report], ids=lambda f: f.__name__
    )
    def test_a_report_refuses_a_zone_that_names_none(self, report: Any, zone: object) -> None:
        engine = shop(FrozenClock(at(2, 8)))
        engine.book("wash", at(3, 10))

        with pytest.raises(UnknownTimeZoneError):
            report(engine, date(2026, 3, 1), date(2026, 3, 31), zone=zone)

    @pytest.mark.parametrize("zone", ["", False])
    def test_the_occurrence_reports_refuse_a_zone_that_names_none(self, zone: object) -> None:
        engine = shop(FrozenClock(at(2, 8)))

        with pytest.raises(UnknownTimeZoneError):
            occurrence_report(engine, date(2026, 3, 1), group_by=lambda b: b.service_id, zone=zone)  # type: ignore[arg-type]
        with pytest.raises(UnknownTimeZoneError):
            EventDesk(engine).finance(date(2026, 3, 1), zone=zone)  # type: ignore[arg-type]

    @pytest.mark.parametrize("zone", ["", False])
    def test_the_board_refuses_a_zone_that_names_none(self, zone: object) -> None:
        engine = shop(FrozenClock(at(2, 8)))

        with pytest.raises(UnknownTimeZoneError):
            render_board(engine, date(2026, 3, 3), zone=zone)  # type: ignore[arg-type]

    def test_none_still_means_the_business_zone(self) -> None:
        engine = shop(FrozenClock(at(2, 8)))
        engine.book("wash", at(3, 10))

        left_out = utilization_report(engine, date(2026, 3, 1), date(2026, 3, 31))
        named = utilization_report(engine, date(2026, 3, 1), date(2026, 3, 31), zone=engine.business().zone)
        assert left_out == named


def test_occurrences_of_a_template_named_by_a_number_are_refused() -> None:
    """occurrences(5) answered [] (no template is 5): a number is no template id."""
    engine = shop(FrozenClock(at(2, 8)))

    with pytest.raises(InvalidInputError, match="template_id"):
        EventDesk(engine).occurrences(5)  # type: ignore[arg-type]


def test_a_notification_rule_judges_only_bookings() -> None:
    """applies_to(None) answered True for a rule of every service; it judges a Booking, as holds does."""
    rule = NotificationRule("r", Template("Booked", "See you"), on={"created"})

    with pytest.raises(InvalidInputError, match="applies_to judges a Booking"):
        rule.applies_to(None)  # type: ignore[arg-type]
