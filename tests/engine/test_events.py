"""Events: templates, occurrences, tickets with quotas, staff roles, idempotent sync, waiting lists."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PARIS, H, M, at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor, Permission, Role
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConflictError,
    CurrencyMismatchError,
    InvalidInputError,
    PermissionDeniedError,
    PolicyViolationError,
    SalesClosedError,
    SoldOutError,
    StaffConflictError,
    UnknownOccurrenceError,
    UnknownTemplateError,
)
from slotengine.events import EventDesk, EventTemplate, Occurrence, OccurrenceStatus, Quota, TicketType, WaitingState
from slotengine.lifecycle import BookingStatus
from slotengine.model import Customer, Resource, ResourceKind
from slotengine.money import Money
from slotengine.notifications import NotificationRule, Template
from slotengine.recurrence import Recurrence
from slotengine.testing.clock import FrozenClock

WALK = EventTemplate(
    "walk",
    "Old town walk",
    2 * H,
    "Europe/Paris",
    4,
    [
        TicketType("adult", "Adult", Money("15", "EUR")),
        TicketType("child", "Child", Money("7", "EUR"), quota_id="kids"),
    ],
    quotas=[Quota("kids", 2)],
    external_ref="site-tpl-1",
)


def desk_on(engine: BookingEngine) -> EventDesk:
    engine.add_resource(Resource("anna", "Anna", kind=ResourceKind.USER, type="guide"))
    engine.add_resource(Resource("ivan", "Ivan", kind=ResourceKind.USER, type="guide"))
    desk = EventDesk(engine)
    desk.upsert_template(WALK)
    return desk


@pytest.fixture
def desk(engine: BookingEngine) -> EventDesk:
    return desk_on(engine)


def topics(engine: BookingEngine) -> list[str]:
    return [m.topic for m in engine.outbox() if m.topic.startswith(("occurrence.", "event_template."))]


class TestTickets:
    def test_tickets_are_engine_bookings_that_never_oversell(self, desk: EventDesk) -> None:
        """An occurrence sells its capacity and no more; a sale beyond it raises SoldOutError."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        first = desk.sell("w1", "adult", 3, customer_id="olga")

        with pytest.raises(SoldOutError):
            desk.sell("w1", "adult", 2, customer_id="petr")

        assert (BookingStatus.PRE_BOOKING, Money("45", "EUR")) == (first.status, first.price)
        assert 1 == desk.seats_left("w1")

    def test_a_sale_takes_a_customer_with_their_zone_and_language(self, desk: EventDesk) -> None:
        """Like engine.hold, sell takes a Customer, whose zone and language the ticket's messages use."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        olga = Customer("olga", "Olga", zone="Asia/Almaty", language="ru")
        ticket = desk.sell("w1", "adult", customer=olga)

        assert ("olga", "Asia/Almaty", "ru") == (ticket.customer_id, ticket.customer_zone, ticket.customer_language)
        with pytest.raises(InvalidInputError, match="disagree"):
            desk.sell("w1", "adult", customer_id="petr", customer=olga)
        assert 3 == desk.seats_left("w1")  # of 4: the refused sale took none

    @pytest.mark.parametrize("max_tickets", [0, 10_001, 10**40, "5"])
    def test_a_desk_takes_a_sensible_max_tickets(self, engine: BookingEngine, max_tickets: object) -> None:
        """max_tickets is a whole number from 1 to 10,000 (10**40 was taken, and stored on waiting lists)."""
        with pytest.raises(InvalidInputError, match="max_tickets"):
            EventDesk(engine, max_tickets=max_tickets)  # type: ignore[arg-type]

    def test_a_quota_spans_ticket_types_within_the_capacity(self, desk: EventDesk) -> None:
        """Child tickets draw from a 2-seat quota as well as the seats: a third child ticket is refused."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        desk.sell("w1", "child", 2, customer_id="olga")

        with pytest.raises(SoldOutError):
            desk.sell("w1", "child", customer_id="petr")
        adult = desk.sell("w1", "adult", 2, customer_id="petr")

        assert 0 == desk.seats_left("w1")
        assert BookingStatus.PRE_BOOKING == adult.status

    def test_a_sale_naming_an_unknown_occurrence_is_refused(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A sale for an occurrence nobody created raises UnknownOccurrenceError and books nothing."""
        with pytest.raises(UnknownOccurrenceError):
            desk.sell("crm-deal-404", "adult", customer_id="olga")

        assert [] == engine.list()

    def test_a_sale_finds_its_occurrence_by_external_ref(self, desk: EventDesk) -> None:
        """The site may name the occurrence by its own id (the external ref)."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), external_ref="deal-77"))

        ticket = desk.sell("deal-77", "adult", customer_id="olga")

        assert [ticket.id] == [b.id for b in desk.tickets("w1")]

    def test_price_override_and_sales_window(self, desk: EventDesk, clock: FrozenClock) -> None:
        """An occurrence's price override is charged; outside its sales window nothing is sold."""
        desk.upsert_occurrence(
            Occurrence("w1", "walk", at(5, 11), prices={"adult": Money("20", "EUR")}, sales_end=at(4, 18))
        )

        ticket = desk.sell("w1", "adult", 2, customer_id="olga")
        clock.set(at(4, 18))

        with pytest.raises(SalesClosedError):
            desk.sell("w1", "adult", customer_id="petr")
        assert Money("40", "EUR") == ticket.price

    @pytest.mark.parametrize(
        ("prices", "error"),
        [({"vip": Money("20", "EUR")}, InvalidInputError), ({"adult": Money("20", "USD")}, CurrencyMismatchError)],
    )
    def test_price_override_must_name_a_ticket_in_its_currency(
        self, desk: EventDesk, engine: BookingEngine, prices: dict[str, Money], error: type[Exception]
    ) -> None:
        """An override for a ticket type the template does not sell, or in another currency, is refused."""
        before = (engine.outbox(), engine.list(), engine.resources())

        with pytest.raises(error):
            desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), prices=prices))
        assert ([], before) == (desk.occurrences(), (engine.outbox(), engine.list(), engine.resources()))

    def test_tickets_are_paid_and_refunded_through_the_engine(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A held ticket is paid, then cancelled with the policy's refund; its seat is free again."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        ticket = desk.sell("w1", "adult", customer_id="olga")
        engine.pay(ticket.id, ticket.price, payment_id="p1")

        cancelled = desk.cancel_ticket(ticket.id)

        assert (BookingStatus.CANCELLED, Money("15", "EUR")) == (cancelled.status, cancelled.refunded)
        assert 4 == desk.seats_left("w1")


class TestStaff:
    def test_a_speaker_cannot_take_two_overlapping_occurrences(self, desk: EventDesk) -> None:
        """Assigning a busy speaker raises StaffConflictError and changes nothing."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        desk.upsert_occurrence(Occurrence("w2", "walk", at(5, 12)))

        with pytest.raises(StaffConflictError) as refused:
            desk.assign("w2", "speaker", "anna")

        assert "anna" == refused.value.details["staff_id"]
        assert {} == desk.occurrence("w2").roles()

    def test_a_month_refused_on_one_date_schedules_none(self, desk: EventDesk, engine: BookingEngine) -> None:
        """schedule writes every date or none: Anna busy on the 10th leaves the 5th to the 9th unwritten too."""
        desk.upsert_occurrence(Occurrence("w-other", "walk", at(10, 12), staff={"speaker": "anna"}))
        before = (desk.occurrences(), engine.list())
        daily = Recurrence("FREQ=DAILY", datetime(2026, 3, 1, 11), "Europe/Paris")

        with pytest.raises(StaffConflictError):
            desk.schedule("walk", daily, date(2026, 3, 5), date(2026, 3, 12), staff={"speaker": "anna"})

        assert before == (desk.occurrences(), engine.list())
        with pytest.raises(InvalidInputError, match="first must be a date"):
            desk.schedule("walk", daily, datetime(2026, 3, 5, tzinfo=PARIS), date(2026, 3, 12))

    def test_a_schedule_out_of_reason_is_refused_before_it_is_expanded(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Every minute for five years (2.6 million dates, minutes of work) and a span that ends before it begins."""
        before = (desk.occurrences(), engine.list())
        every_minute = Recurrence("FREQ=MINUTELY", datetime(2026, 3, 1, 11), "Europe/Paris")

        with pytest.raises(InvalidInputError, match="more than 10,000 occurrences"):
            desk.schedule("walk", every_minute, date(2026, 3, 5), date(2031, 3, 5))
        with pytest.raises(InvalidInputError, match="is before first"):
            desk.schedule("walk", every_minute, date(2026, 3, 5), date(2026, 3, 4))
        assert before == (desk.occurrences(), engine.list())

    def test_a_refused_assignment_says_why(self, desk: EventDesk, engine: BookingEngine) -> None:
        """The refusal names the person, the occurrence in the way, its booking and its local time."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        desk.upsert_occurrence(Occurrence("w2", "walk", at(5, 12)))
        [anna_w1] = engine.list(resource_id="anna")

        with pytest.raises(StaffConflictError) as refused:
            desk.assign("w2", "admin", "anna")

        error = refused.value
        assert ("anna", "admin", "w2") == (error.staff_id, error.role, error.occurrence_id)
        assert (anna_w1.id, "w1") == (error.conflicting_booking_id, error.conflicting_occurrence_id)
        assert (anna_w1.id, "w1") == (
            error.details["conflicting_booking_id"],
            error.details["conflicting_occurrence_id"],
        )
        assert (
            "Anna cannot be the admin of Old town walk on 2026-03-05 12:00\N{EN DASH}14:00 (Europe/Paris): "
            "Anna is already the speaker of Old town walk on 2026-03-05 11:00\N{EN DASH}13:00 (Europe/Paris) "
            f"(occurrence 'w1', booking {anna_w1.id!r})"
        ) == str(error)

    def test_a_conflict_with_an_ordinary_booking_names_it(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A venue busy with an ordinary booking is refused with that booking's id and local time."""
        booked = engine.book("wash", at(5, 12))
        venue = booked.resource_ids[0]

        with pytest.raises(StaffConflictError) as refused:
            desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), venue=venue))

        error = refused.value
        assert (venue, "venue", booked.id, None) == (
            error.staff_id,
            error.role,
            error.conflicting_booking_id,
            error.conflicting_occurrence_id,
        )
        assert f"booking {booked.id!r} (wash) on 2026-03-05 12:00\N{EN DASH}12:30 (Europe/Paris)" in str(error)
        assert [] == desk.occurrences()

    def test_a_move_onto_a_busy_speaker_says_why(self, desk: EventDesk) -> None:
        """Moving an occurrence onto its speaker's other occurrence is refused naming that one."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        desk.upsert_occurrence(Occurrence("w2", "walk", at(6, 11), staff={"speaker": "anna"}))

        with pytest.raises(StaffConflictError) as refused:
            desk.upsert_occurrence(Occurrence("w2", "walk", at(5, 12), staff={"speaker": "anna"}))

        assert ("anna", "speaker", "w1") == (
            refused.value.staff_id,
            refused.value.role,
            refused.value.conflicting_occurrence_id,
        )
        assert at(6, 11) == desk.occurrence("w2").start

    def test_reassigning_frees_the_first_persons_time(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A new speaker takes the role; the old one's booking is cancelled; an event says so."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))

        desk.assign("w1", "speaker", "ivan")
        desk.upsert_occurrence(Occurrence("w2", "walk", at(5, 12), staff={"speaker": "anna"}))

        assert ["ivan"] == [b.resource_ids[0] for b in engine.list(resource_id="ivan", status=BookingStatus.CONFIRMED)]
        created, staffed, changed = "occurrence.created", "occurrence.staff_changed", "occurrence.staff_changed"
        assert [created, staffed, changed, created, staffed] == topics(engine)[1:]

    def test_a_moved_ticket_takes_its_reminder_along(self, engine: BookingEngine) -> None:
        """Moving an occurrence re-plans its ticket holders' reminders and records each ticket's move as an event."""
        reminder = NotificationRule("soon", Template("Soon", "$service at $local_time"), offset=-2 * H)
        engine.setup(attrs.evolve(engine.business(), rules=(reminder,)))
        desk = desk_on(engine)
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        ticket = desk.sell("w1", "adult", customer_id="olga")

        desk.upsert_occurrence(Occurrence("w1", "walk", at(6, 15), staff={"speaker": "anna"}))

        pending = [m for m in engine.outbox(pending_only=True) if m.topic == "remind.soon"]
        assert [(ticket.id, at(6, 13))] == [(m.booking_id, m.due_at) for m in pending if m.booking_id == ticket.id]
        assert [] == [m for m in pending if m.booking_id != ticket.id]  # the old one withdrawn, none for Anna
        moves = [m.booking_id for m in engine.outbox() if m.topic == "booking.reschedule"]
        assert ticket.id in moves

    def test_moving_an_occurrence_moves_its_tickets_and_staff(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A moved occurrence takes its tickets and staff along, in one transaction, and emits occurrence.moved."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        ticket = desk.sell("w1", "adult", customer_id="olga")

        desk.upsert_occurrence(Occurrence("w1", "walk", at(6, 15), staff={"speaker": "anna"}))

        assert at(6, 15) == engine.get(ticket.id).start
        assert [at(6, 15)] == [b.start for b in engine.list(resource_id="anna", status=BookingStatus.CONFIRMED)]
        assert "occurrence.moved" == topics(engine)[-1]
        assert 3 == desk.seats_left("w1")
        desk.sell("w1", "adult", customer_id="petr")


class TestTemplateChanges:
    def test_a_larger_template_capacity_reaches_its_occurrences(self, desk: EventDesk) -> None:
        """Raising the template's seats opens them on every occurrence that does not override capacity."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        desk.sell("w1", "adult", 3, customer_id="olga")

        desk.upsert_template(attrs.evolve(WALK, capacity=6))

        assert 3 == desk.seats_left("w1")
        desk.sell("w1", "adult", 3, customer_id="petr")
        with pytest.raises(SoldOutError):
            desk.sell("w1", "adult", 1, customer_id="ivan")

    def test_a_template_capacity_below_the_tickets_sold_is_refused(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Three seats sold: a template of two seats is refused and nothing changes, the template included."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        desk.sell("w1", "adult", 3, customer_id="olga")
        before = (engine.outbox(), engine.list(), engine.resources())

        with pytest.raises(ConflictError):
            desk.upsert_template(attrs.evolve(WALK, capacity=2))

        assert (WALK, before) == (desk.template("walk"), (engine.outbox(), engine.list(), engine.resources()))

    def test_a_longer_template_moves_the_tickets_end(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A template that now lasts three hours lengthens its occurrences' tickets and staff bookings."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        ticket = desk.sell("w1", "adult", customer_id="olga")

        desk.upsert_template(attrs.evolve(WALK, duration=3 * H))

        assert at(5, 14) == engine.get(ticket.id).end
        assert [at(5, 14)] == [b.end for b in engine.list(resource_id="anna", status=BookingStatus.CONFIRMED)]
        assert ["event_template.changed", "occurrence.moved"] == topics(engine)[-2:]

    def test_a_new_description_changes_no_occurrence(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Only the template's own event is emitted when nothing an occurrence books has changed."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))

        desk.upsert_template(attrs.evolve(WALK, description="Now with a tea break."))

        assert "event_template.changed" == topics(engine)[-1]


class TestSync:
    def test_the_same_upsert_twice_changes_and_emits_nothing(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Upserting an identical template or occurrence again writes no outbox event."""
        occurrence = Occurrence("w1", "walk", at(5, 11), external_ref="deal-1", staff={"speaker": "anna"})
        desk.upsert_occurrence(occurrence)
        before = (engine.outbox(), engine.list())

        again = desk.upsert_occurrence(occurrence)

        assert not desk.upsert_template(WALK)
        assert occurrence == again
        assert before == (engine.outbox(), engine.list())

    def test_an_occurrence_for_an_unknown_template_is_refused(self, desk: EventDesk) -> None:
        """An occurrence naming no known template raises UnknownTemplateError."""
        with pytest.raises(UnknownTemplateError):
            desk.upsert_occurrence(Occurrence("x", "nope", at(5, 11)))

    def test_an_upsert_by_external_ref_updates_the_stored_occurrence(self, desk: EventDesk) -> None:
        """The CRM's ref identifies the occurrence even when the incoming id differs."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), external_ref="deal-1"))

        stored = desk.upsert_occurrence(Occurrence("other-id", "walk", at(5, 14), external_ref="deal-1"))

        assert ("w1", at(5, 14)) == (stored.id, desk.occurrence("deal-1").start)

    def test_a_month_from_an_rrule_and_cancellation(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A weekly rule gives the month's dates, idempotently; a cancelled date cancels its tickets."""
        rule = Recurrence("FREQ=WEEKLY;BYDAY=TH", datetime(2026, 3, 5, 11), "Europe/Paris")
        month = desk.schedule("walk", rule, date(2026, 3, 1), date(2026, 3, 31))
        again = desk.schedule("walk", rule, date(2026, 3, 1), date(2026, 3, 31))
        ticket = desk.sell(month[0].id, "adult", customer_id="olga")

        desk.cancel_occurrence(month[0].id)

        assert [5, 12, 19, 26] == [o.start.astimezone(PARIS).day for o in month]
        assert month == again
        assert BookingStatus.CANCELLED == engine.get(ticket.id).status
        assert OccurrenceStatus.CANCELLED == desk.occurrence(month[0].id).status
        with pytest.raises(SalesClosedError):
            desk.sell(month[0].id, "adult", customer_id="petr")


    def test_cancelling_with_a_lapsed_hold_among_the_tickets_cancels_all_the_live_ones(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """A hold that lapsed (never swept) is left to expire; it used to stop the cancel half-way."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        lapsed = desk.sell("w1", "adult", customer_id="olga")
        clock.advance(engine.business().policies.hold.ttl)
        firm = desk.sell("w1", "adult", customer_id="petr", confirm=True)

        desk.cancel_occurrence("w1")

        assert (BookingStatus.PRE_BOOKING, BookingStatus.CANCELLED) == (
            engine.get(lapsed.id).status,
            engine.get(firm.id).status,
        )
        assert OccurrenceStatus.CANCELLED == desk.occurrence("w1").status


    @pytest.mark.parametrize("swept", [False, True])
    def test_a_lapsed_ticket_of_a_cancelled_occurrence_takes_no_late_payment(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock, swept: bool
    ) -> None:
        """A late payment would revive the lapsed hold into a paid ticket for an occurrence that will not be held."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        ticket = desk.sell("w1", "adult", customer_id="olga")
        clock.advance(engine.business().policies.hold.ttl)
        if swept:
            engine.expire_due()
        desk.cancel_occurrence("w1")

        with pytest.raises(PolicyViolationError, match="takes no late payment"):
            engine.pay(ticket.id, Money("15", "EUR"), payment_id="p1")
        assert engine.get(ticket.id).status in {BookingStatus.PRE_BOOKING, BookingStatus.EXPIRED}

    def test_tickets_are_cancelled_as_the_caller(self, desk: EventDesk, engine: BookingEngine) -> None:
        """The tickets' history names who cancelled the occurrence, not the desk's own actor."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        ticket = desk.sell("w1", "adult", customer_id="olga", confirm=True)

        desk.cancel_occurrence("w1", actor=Actor.admin("zoe"))

        assert ["admin:zoe"] == [t.actor for t in engine.transitions(ticket.id) if t.to_status is BookingStatus.CANCELLED]

    def test_a_caller_the_policy_forbids_to_cancel_tickets_cancels_nothing(
        self, desk: EventDesk, engine: BookingEngine
    ) -> None:
        """A policy that lets an admin set up but not cancel bookings refuses the occurrence's cancellation whole."""

        class NoCancelling:
            def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
                if permission is Permission.CANCEL and actor.role is Role.ADMIN:
                    raise PermissionDeniedError(f"{actor} may not cancel", actor=str(actor))

        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        ticket = desk.sell("w1", "adult", customer_id="olga", confirm=True)
        engine.authorization = NoCancelling()

        with pytest.raises(PermissionDeniedError):
            desk.cancel_occurrence("w1", actor=Actor.admin("zoe"))
        assert (OccurrenceStatus.SCHEDULED, BookingStatus.CONFIRMED) == (
            desk.occurrence("w1").status,
            engine.get(ticket.id).status,
        )

    def test_moved_and_cancelled_at_once_moves_nothing(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Its tickets are cancelled where they are (no 'moved' notice), and staff busy at the new time do not matter."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11), staff={"speaker": "anna"}))
        desk.upsert_occurrence(Occurrence("w2", "walk", at(6, 11), staff={"speaker": "anna"}))
        ticket = desk.sell("w1", "adult", customer_id="olga", confirm=True)

        moved_away = attrs.evolve(desk.occurrence("w1"), start=at(6, 11), status=OccurrenceStatus.CANCELLED)
        desk.upsert_occurrence(moved_away)

        topics = [m.topic for m in engine.outbox() if m.booking_id == ticket.id]
        assert (BookingStatus.CANCELLED, at(5, 11)) == (engine.get(ticket.id).status, engine.get(ticket.id).start)
        assert "booking.reschedule" not in topics
        assert OccurrenceStatus.CANCELLED == desk.occurrence("w1").status


def _occurrences() -> st.SearchStrategy[Occurrence]:
    return st.builds(
        Occurrence,
        id=st.sampled_from(["a", "b", "c"]),
        template_id=st.just("walk"),
        start=st.sampled_from([at(5, 11), at(6, 11), at(7, 11)]),
        capacity=st.sampled_from([None, 3, 6]),
        staff=st.sampled_from([{}, {"speaker": "anna"}, {"speaker": "ivan", "admin": "anna"}]),
        external_ref=st.sampled_from([None, "r1", "r2"]),
        status=st.sampled_from(list(OccurrenceStatus)),
    )


def _state(engine: BookingEngine, desk: EventDesk) -> tuple[object, ...]:
    live = sorted((b.service_id, b.start, b.resource_ids) for b in engine.list() if b.status is BookingStatus.CONFIRMED)
    return desk.occurrences(), live


class TestUpsertProperty:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=st.lists(_occurrences(), max_size=6))
    def test_applying_any_sequence_twice_is_applying_it_once(self, steps: list[Occurrence]) -> None:
        """After any sequence of upserts, upserting each value once more changes no state and emits nothing."""
        engine = BookingEngine(MemoryStorage(), clock=FrozenClock(at(2, 8)), default_actor=Actor.system("t"))
        engine.setup(business())
        desk = desk_on(engine)
        applied = []
        for occurrence in steps:
            try:
                applied.append(desk.upsert_occurrence(occurrence))
            except (StaffConflictError, ValueError):
                continue
        if not applied:
            return
        last = applied[-1]
        state, outbox = _state(engine, desk), len(engine.outbox())

        desk.upsert_occurrence(last)

        assert (state, outbox) == (_state(engine, desk), len(engine.outbox()))


class TestWaitingList:
    def test_offers_go_in_order_and_each_expires(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """Freed seats are offered to the first in line as a hold; a lapsed offer passes to the next."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", 3, customer_id="olga", confirm=True)
        ticket = desk.sell("w1", "adult", customer_id="sam", confirm=True)
        desk.join_waiting_list("w1", "petr", ticket_type="adult")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")

        with pytest.raises(SoldOutError):
            desk.sell("w1", "adult", customer_id="sam")
        engine.cancel(ticket.id, by_business=True)
        first = desk.process_waiting_lists()
        with pytest.raises(SoldOutError):  # rita still waits: seats go to the list first
            desk.sell("w1", "adult", customer_id="sam")
        clock.advance(engine.business().policies.hold.ttl)
        second = desk.process_waiting_lists()

        assert ["petr", "rita"] == [b.customer_id for b in first + second]
        assert [WaitingState.EXPIRED, WaitingState.OFFERED] == [e.state for e in desk.waiting_list("w1")]
        assert BookingStatus.EXPIRED == engine.get(first[0].id).status

    def test_cancelling_the_occurrence_closes_its_list_and_says_so(
        self, desk: EventDesk, engine: BookingEngine
    ) -> None:
        """People still waiting are told no seat will come (``waitlist.closed``); they no longer wait for ever."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", 4, customer_id="olga", confirm=True)
        desk.join_waiting_list("w1", "petr", ticket_type="adult")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")

        desk.cancel_occurrence("w1")

        assert [WaitingState.CLOSED] * 2 == [e.state for e in desk.waiting_list("w1")]
        closed = [json.loads(m.payload)["customer_id"] for m in engine.outbox() if m.topic == "waitlist.closed"]
        assert ["petr", "rita"] == closed
        assert [] == desk.process_waiting_lists()

    def test_a_paid_offer_is_accepted(self, desk: EventDesk, engine: BookingEngine) -> None:
        """A customer who pays the offered hold keeps the seat; the entry is accepted."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        ticket = desk.sell("w1", "adult", 4, customer_id="olga", confirm=True)
        desk.join_waiting_list("w1", "petr", ticket_type="adult")
        desk.cancel_ticket(ticket.id)
        [entry] = desk.waiting_list("w1")
        offer = engine.get(entry.booking_id or "")

        engine.pay(offer.id, offer.price, payment_id="p-petr")
        desk.process_waiting_lists()

        assert [WaitingState.ACCEPTED] == [e.state for e in desk.waiting_list("w1")]

    def test_a_lapsed_offer_refuses_a_late_payment(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """An offer that lapsed cannot be revived by paying it: its seat has passed to the next in line."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", 3, customer_id="olga", confirm=True)
        ticket = desk.sell("w1", "adult", 1, customer_id="sam", confirm=True)
        desk.join_waiting_list("w1", "petr", ticket_type="adult")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")
        desk.cancel_ticket(ticket.id)
        [petr, _rita] = desk.waiting_list("w1")
        clock.advance(engine.business().policies.hold.ttl)

        with pytest.raises(PolicyViolationError):
            engine.pay(petr.booking_id or "", Money("15", "EUR"), payment_id="late")
        desk.process_waiting_lists()

        assert [WaitingState.EXPIRED, WaitingState.OFFERED] == [e.state for e in desk.waiting_list("w1")]
        assert BookingStatus.EXPIRED == engine.get(petr.booking_id or "").status

    def test_a_full_slot_of_an_ordinary_service(self, engine: BookingEngine, clock: FrozenClock) -> None:
        """A full wash slot's waiting list gets a hold when a booking there is cancelled."""
        desk = EventDesk(engine)
        taken = [engine.book("wash", at(2, 10)), engine.book("wash", at(2, 10))]
        entry = desk.join_slot_waiting_list("wash", at(2, 10), "petr")

        assert [] == desk.process_waiting_lists()
        engine.cancel(taken[0].id, by_business=True)
        [offer] = desk.process_waiting_lists()

        assert ("petr", at(2, 10), BookingStatus.PRE_BOOKING) == (offer.customer_id, offer.start, offer.status)
        assert WaitingState.OFFERED == desk.waiting_list(entry.list_key)[0].state


def test_finance_per_occurrence(desk: EventDesk, engine: BookingEngine) -> None:
    """The month's report has one row per occurrence held, with tickets and money; staff bookings are not tickets."""
    desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), staff={"speaker": "anna"}))
    ticket = desk.sell("w1", "adult", 2, customer_id="olga")
    engine.pay(ticket.id, ticket.price, payment_id="p1")

    [row] = desk.finance(date(2026, 3, 1))

    assert ("w1", 2, 4, {"EUR": Money("30", "EUR")}) == (row.key, row.tickets_sold, row.capacity, dict(row.net))
    assert json.dumps(row.to_dict())
    assert timedelta(0) < M


def test_a_moved_occurrence_is_reported_in_the_month_it_is_held(desk: EventDesk, engine: BookingEngine) -> None:
    """Moved from March to April after a ticket was cancelled, the occurrence is April's (the cancelled ticket stays)."""
    desk.upsert_occurrence(Occurrence("w1", "walk", at(31, 11)))
    desk.sell("w1", "adult", customer_id="olga", confirm=True)
    desk.cancel_ticket(desk.sell("w1", "adult", customer_id="petr").id)

    desk.upsert_occurrence(Occurrence("w1", "walk", at(31, 11) + timedelta(days=7)))

    assert () == desk.finance(date(2026, 3, 1))
    [row] = desk.finance(date(2026, 4, 1))
    assert ("w1", at(31, 11) + timedelta(days=7), 1) == (row.key, row.start, row.tickets_sold)


def test_customers_act_on_the_desk_for_themselves_only(desk: EventDesk, engine: BookingEngine) -> None:
    """A customer joins waiting lists for themselves, sees only their tickets, and reads no list, report or sweep."""
    olga, petr = Actor.customer("olga"), Actor.customer("petr")
    desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
    ticket = desk.sell("w1", "adult", customer_id="olga", confirm=True)
    desk.sell("w1", "adult", customer_id="rita", confirm=True)
    before = (engine.outbox(), engine.list(), desk.waiting_list("w1"))

    for call in (
        lambda: desk.join_waiting_list("w1", "olga", ticket_type="adult", actor=petr),
        lambda: desk.join_slot_waiting_list("walk", at(5, 11), "olga", actor=petr),
        lambda: desk.waiting_list("w1", actor=olga),
        lambda: desk.finance(date(2026, 3, 1), actor=olga),
        lambda: desk.process_waiting_lists(actor=olga),
    ):
        with pytest.raises(PermissionDeniedError):
            call()
    assert before == (engine.outbox(), engine.list(), desk.waiting_list("w1"))
    assert [ticket.id] == [b.id for b in desk.tickets("w1", actor=olga)]
    assert "olga" == desk.join_waiting_list("w1", "olga", ticket_type="adult", actor=olga).customer_id


def test_a_sale_reads_the_occurrence_again_under_its_locks(engine: BookingEngine) -> None:
    """A sale that read the occurrence before a cancel committed, then waited for its locks, is refused (not sold)."""

    class Stale:  # the sale's first look at the occurrence comes before the cancel's commit
        def __init__(self, inner: Any, old: str) -> None:
            self.inner, self.old = inner, old

        def get_document(self, kind: str, key: str) -> str | None:
            if kind == "event-occurrence" and self.old:
                old, self.old = self.old, ""
                return old
            return self.inner.get_document(kind, key)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    desk = desk_on(engine)
    desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
    with engine.storage.transaction(engine.tenant) as tx:
        scheduled = tx.get_document("event-occurrence", "w1")
    desk.cancel_occurrence("w1")
    stale = EventDesk(engine)

    def write(work: Any) -> Any:
        with engine.storage.transaction(engine.tenant) as tx:
            result = work(Stale(tx, scheduled or ""))
            tx.commit()
            return result

    stale._write = write  # type: ignore[method-assign]

    with pytest.raises(SalesClosedError):
        stale.sell("w1", "adult", customer_id="olga", confirm=True)
    assert [] == [b for b in desk.tickets("w1") if b.status in {BookingStatus.CONFIRMED, BookingStatus.PAID}]
