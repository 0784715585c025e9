"""
Events, from a review: a move and a late payment, waiting lists, external refs, template edits, DST, messages.

Each class is one finding; each test failed before its fix.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PARIS, H, at, business, state_hash
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConflictError,
    CurrencyMismatchError,
    InvalidInputError,
    PolicyViolationError,
    SalesClosedError,
    SoldOutError,
    StaffConflictError,
    UnknownOccurrenceError,
)
from slotengine.events import EventDesk, EventTemplate, Occurrence, Quota, TicketType, WaitingState
from slotengine.intervals import Interval, IntervalSet
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus
from slotengine.model import Need, Resource, ResourceKind, Service
from slotengine.money import Money
from slotengine.recurrence import Recurrence
from slotengine.schedule import TimeOff
from slotengine.testing.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")
WALK = EventTemplate(
    "walk",
    "Old town walk",
    2 * H,
    "Europe/Paris",
    2,
    [TicketType("adult", "Adult", Money("15", "EUR")), TicketType("child", "Child", Money("7", "EUR"))],
)
LECTURE = EventTemplate(
    "lecture",
    "Lecture",
    H,
    "Europe/Paris",
    5,
    [
        TicketType("full", "Full", Money("800", "RUB")),
        TicketType("student", "Student", Money("400", "RUB"), quota_id="reduced"),
    ],
    quotas=[Quota("reduced", 2)],
)
TTL = timedelta(minutes=30)  # the business's default HoldPolicy.ttl


def desk_on(engine: BookingEngine, *templates: EventTemplate) -> EventDesk:
    engine.add_resource(Resource("anna", "Anna", kind=ResourceKind.USER))
    engine.add_resource(Resource("ivan", "Ivan", kind=ResourceKind.USER))
    desk = EventDesk(engine)
    for template in templates or (WALK,):
        desk.upsert_template(template)
    return desk


@pytest.fixture
def desk(engine: BookingEngine) -> EventDesk:
    return desk_on(engine, WALK, LECTURE)


def snapshot(engine: BookingEngine) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """Everything stored for the tenant, documents (templates, occurrences, refs, waiting lists) included."""
    with engine.storage.transaction(engine.tenant) as tx:
        kinds = ("event-template", "event-occurrence", "event-ref", "waitlist")
        documents = {kind: tx.list_documents(kind) for kind in kinds}
    return state_hash(engine), documents


def live(desk: EventDesk, occurrence: str, now: datetime) -> list[Booking]:
    """The tickets that hold a seat now: live, and not a hold that has lapsed."""
    return [
        b
        for b in desk.tickets(occurrence)
        if b.status in LIVE_STATUSES and not (b.hold_until is not None and b.hold_until <= now)
    ]


def waitlist_closed(engine: BookingEngine) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in engine.outbox() if m.topic == "waitlist.closed"]


class TestAMoveAndALatePayment:
    @pytest.mark.parametrize("swept", [True, False])
    def test_a_hold_that_lapsed_before_a_move_never_comes_back(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock, swept: bool
    ) -> None:
        """A lapsed hold stays where the occurrence was; a late payment cannot revive it into a third seat of two."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", customer_id="olga", confirm=True)
        bob = desk.sell("w1", "adult", customer_id="bob")
        clock.advance(TTL + timedelta(minutes=1))
        if swept:
            engine.expire_due()
        desk.upsert_occurrence(Occurrence("w1", "walk", at(10, 11)))
        desk.sell("w1", "adult", customer_id="carl", confirm=True)

        with pytest.raises(PolicyViolationError):
            engine.pay(bob.id, Money("15", "EUR"), payment_id="late-bob")

        tickets = live(desk, "w1", clock.now())
        assert (["carl", "olga"], {at(10, 11)}) == (
            sorted(str(b.customer_id) for b in tickets),
            {b.start for b in tickets},
        )


class TestAWaitingEntryForAWithdrawnTicketType:
    def test_cancel_ticket_closes_it_and_commits_once(self, desk: EventDesk, engine: BookingEngine) -> None:
        """An entry for a ticket type no longer sold is closed, with its reason; the cancellation goes through."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        olga = desk.sell("w1", "adult", 2, customer_id="olga", confirm=True)
        desk.join_waiting_list("w1", "kid", ticket_type="child")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")
        desk.upsert_template(attrs.evolve(WALK, ticket_types=[WALK.ticket_types[0]]))

        cancelled = desk.cancel_ticket(olga.id)

        assert BookingStatus.CANCELLED == cancelled.status
        assert [WaitingState.CLOSED, WaitingState.OFFERED] == [e.state for e in desk.waiting_list("w1")]
        [closed] = waitlist_closed(engine)
        assert ("kid", "ticket_type_withdrawn", "child") == (
            closed["customer_id"],
            closed["reason"],
            closed["ticket_type"],
        )

    def test_it_blocks_no_other_list(self, desk: EventDesk, engine: BookingEngine) -> None:
        """`process_waiting_lists` walks every other list although one waits for a ticket type no longer sold."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.upsert_occurrence(Occurrence("w2", "walk", at(10, 11)))
        desk.sell("w1", "adult", 2, customer_id="olga", confirm=True)
        petr = desk.sell("w2", "adult", 2, customer_id="petr", confirm=True)
        desk.join_waiting_list("w1", "kid", ticket_type="child")
        desk.join_waiting_list("w2", "rita", ticket_type="adult")
        desk.upsert_template(attrs.evolve(WALK, ticket_types=[WALK.ticket_types[0]]))
        engine.cancel(petr.id)

        [offer] = desk.process_waiting_lists()

        assert "rita" == offer.customer_id
        assert [WaitingState.CLOSED] == [e.state for e in desk.waiting_list("w1")]


class TestExternalRefs:
    def test_a_ref_given_up_by_an_occurrence_names_nothing(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Re-linked to deal-2, w1 no longer answers to deal-1, and a new occurrence may take deal-1."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), external_ref="deal-1"))
        ticket = desk.sell("w1", "adult", customer_id="olga", confirm=True)
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), external_ref="deal-2"))

        with pytest.raises(UnknownOccurrenceError):
            desk.occurrence("deal-1")
        made = desk.upsert_occurrence(Occurrence("w2", "walk", at(20, 18), external_ref="deal-1"))

        assert ("w2", at(9, 11), at(20, 18)) == (made.id, desk.occurrence("deal-2").start, desk.occurrence("w2").start)
        assert at(9, 11) == engine.get(ticket.id).start

    def test_a_ref_given_up_by_a_template_is_free(self, desk: EventDesk) -> None:
        """A template re-linked to another ref lets another template take its old one."""
        desk.upsert_template(attrs.evolve(WALK, external_ref="tpl-1"))
        desk.upsert_template(attrs.evolve(WALK, external_ref="tpl-2"))

        desk.upsert_template(attrs.evolve(LECTURE, external_ref="tpl-1"))

        assert ("lecture", "walk") == (desk.template("tpl-1").id, desk.template("tpl-2").id)


class TestTemplateEditsAndPriceOverrides:
    @pytest.mark.parametrize(
        ("edit", "error"),
        [
            (
                attrs.evolve(
                    LECTURE,
                    ticket_types=[
                        TicketType("full", "Full", Money("10", "EUR")),
                        TicketType("student", "Student", Money("5", "EUR"), quota_id="reduced"),
                    ],
                ),
                CurrencyMismatchError,
            ),
            (attrs.evolve(LECTURE, ticket_types=[LECTURE.ticket_types[1]]), InvalidInputError),
        ],
        ids=["currency", "dropped-ticket-type"],
    )
    def test_an_edit_an_occurrences_override_cannot_follow_is_refused(
        self, desk: EventDesk, engine: BookingEngine, edit: EventTemplate, error: type[Exception]
    ) -> None:
        """A template edit that would strand an occurrence's price override is refused; nothing changes."""
        desk.upsert_occurrence(Occurrence("h1", "lecture", at(9, 19), prices={"full": Money("900", "RUB")}))
        desk.sell("h1", "full", customer_id="olga", confirm=True)
        before = snapshot(engine)

        with pytest.raises(error, match="h1"):
            desk.upsert_template(edit)

        assert before == snapshot(engine)
        assert desk.cancel_occurrence("h1").status.value == "cancelled"


class TestWhoASaleWaitsFor:
    def test_joining_while_seats_are_free_offers_them_at_once(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Someone who joins a list with free seats gets an offer in the same call, and sales go on."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))

        entry = desk.join_waiting_list("w1", "rita", ticket_type="adult")
        sold = desk.sell("w1", "adult", customer_id="bob")

        assert (WaitingState.OFFERED, "bob") == (entry.state, sold.customer_id)
        assert "rita" == engine.get(entry.booking_id or "").customer_id
        assert 0 == desk.seats_left("w1")

    def test_a_seat_nobody_waiting_could_use_is_sold(self, desk: EventDesk) -> None:
        """People waiting for a full quota do not hold up a full-price seat while seats are to spare."""
        desk.upsert_occurrence(Occurrence("h1", "lecture", at(9, 19)))
        desk.sell("h1", "student", 2, customer_id="yan", confirm=True)
        desk.join_waiting_list("h1", "lev", ticket_type="student")

        sold = [desk.sell("h1", "full", customer_id=c) for c in ("mia", "max")]

        assert 2 == len(sold)
        with pytest.raises(SoldOutError, match="waiting list"):  # lev needs the last seat once a student cancels
            desk.sell("h1", "full", customer_id="zoe")

    def test_a_seat_the_first_in_line_needs_is_not_sold(self, desk: EventDesk) -> None:
        """A freed seat that the first person waiting needs (with more to come) is not sold to someone else."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        first = desk.sell("w1", "adult", customer_id="a", confirm=True)
        desk.sell("w1", "adult", customer_id="b", confirm=True)
        desk.join_waiting_list("w1", "big", ticket_type="adult", quantity=2)
        desk.cancel_ticket(first.id)

        with pytest.raises(SoldOutError, match="waiting list"):
            desk.sell("w1", "adult", customer_id="solo")

        assert [WaitingState.WAITING] == [e.state for e in desk.waiting_list("w1")]


class TestALatePaymentWhilePeopleWait:
    @pytest.mark.parametrize("swept", [True, False])
    def test_a_lapsed_hold_goes_to_the_list_not_to_its_late_payer(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock, swept: bool
    ) -> None:
        """A hold that lapses while someone waits frees its seat for them: a late payment cannot take it back."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", customer_id="olga", confirm=True)
        bob = desk.sell("w1", "adult", customer_id="bob")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")
        clock.advance(TTL + timedelta(minutes=1))
        if swept:
            engine.expire_due()
        before = snapshot(engine)

        with pytest.raises(PolicyViolationError, match="late payment"):
            engine.pay(bob.id, Money("15", "EUR"), payment_id="late-bob")

        assert before == snapshot(engine)
        [offer] = desk.process_waiting_lists()
        assert "rita" == offer.customer_id

    def test_a_hold_sold_while_people_wait_takes_no_late_payment_either(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """A seat sold beside the list (lev waits for the student quota) lapses to the list as well."""
        desk.upsert_occurrence(Occurrence("h1", "lecture", at(9, 19)))
        desk.sell("h1", "student", 2, customer_id="yan", confirm=True)
        desk.join_waiting_list("h1", "lev", ticket_type="student")
        mia = desk.sell("h1", "full", customer_id="mia")
        clock.advance(TTL + timedelta(minutes=1))

        with pytest.raises(PolicyViolationError, match="late payment"):
            engine.pay(mia.id, Money("800", "RUB"), payment_id="late-mia")

    def test_a_keyed_sale_retried_gets_its_first_answer(self, desk: EventDesk) -> None:
        """The hold sold beside the list refuses late payments in its first version, which the key replays."""
        desk.upsert_occurrence(Occurrence("h1", "lecture", at(9, 19)))
        desk.sell("h1", "student", 2, customer_id="yan", confirm=True)
        desk.join_waiting_list("h1", "lev", ticket_type="student")

        first = desk.sell("h1", "full", customer_id="mia", idempotency_key="order-42")
        retry = desk.sell("h1", "full", customer_id="mia", idempotency_key="order-42")

        assert (1, False) == (first.version, first.policies.hold.accept_late_payment)
        assert first == retry

    def test_someone_waiting_for_a_withdrawn_ticket_type_takes_no_late_payment_away(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """An entry that waits for nothing (its ticket type is no longer sold) holds up no sale and no late payment."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        olga = desk.sell("w1", "adult", 2, customer_id="olga", confirm=True)
        desk.join_waiting_list("w1", "kid", ticket_type="child")
        desk.upsert_template(attrs.evolve(WALK, ticket_types=[WALK.ticket_types[0]]))
        engine.cancel(olga.id, by_business=True)
        bob = desk.sell("w1", "adult", customer_id="bob")
        clock.advance(TTL + timedelta(minutes=1))

        paid = engine.pay(bob.id, Money("15", "EUR"), payment_id="late-bob")

        assert paid.status in LIVE_STATUSES

    def test_a_walk_catches_up_with_holds_made_before_the_rule(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """A hold that still takes late payments while someone waits (an older slotengine sold it) loses that."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", customer_id="olga", confirm=True)
        bob = desk.sell("w1", "adult", customer_id="bob")
        desk.join_waiting_list("w1", "rita", ticket_type="adult")
        with engine.storage.transaction(engine.tenant) as tx:  # as an older slotengine left it
            held = tx.get_booking(bob.id)
            lenient = attrs.evolve(held.policies, hold=attrs.evolve(held.policies.hold, accept_late_payment=True))
            tx.update_booking(attrs.evolve(held, policies=lenient, version=held.version + 1), expected_version=held.version)
            tx.commit()

        desk.process_waiting_lists()
        clock.advance(TTL + timedelta(minutes=1))

        with pytest.raises(PolicyViolationError, match="late payment"):
            engine.pay(bob.id, Money("15", "EUR"), payment_id="late-bob")

    def test_without_anyone_waiting_a_late_payment_still_revives(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """The business accepts late payments; with an empty list its tickets keep that."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        bob = desk.sell("w1", "adult", customer_id="bob")
        clock.advance(TTL + timedelta(minutes=1))

        paid = engine.pay(bob.id, Money("15", "EUR"), payment_id="late-bob")

        assert paid.status in LIVE_STATUSES
        assert [paid.id] == [b.id for b in live(desk, "w1", clock.now())]


class TestAVenueTheTemplateChanges:
    def test_the_occurrence_moves_to_the_new_venue_and_frees_the_old(self, engine: BookingEngine) -> None:
        """A template's new venue is booked for its occurrences and the old one freed, at once and when cancelled."""
        for hall in ("hall-a", "hall-b"):
            engine.add_resource(Resource(hall, hall.title()))
        desk = desk_on(engine, attrs.evolve(WALK, venue="hall-a"))
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))

        desk.upsert_template(attrs.evolve(WALK, venue="hall-b"))
        after_edit = [b.resource_ids for b in engine.list(status=LIVE_STATUSES) if b.service_id.endswith("venue")]
        desk.cancel_occurrence("w1")

        assert [("hall-b",)] == after_edit
        assert [] == [b.id for b in engine.list(status=LIVE_STATUSES)]

    def test_a_role_booked_elsewhere_is_still_found_and_freed(self, engine: BookingEngine) -> None:
        """A staff booking that does not lie with the role's holder (changed by hand) is freed with the role."""
        desk = desk_on(engine)
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), staff={"guide": "anna"}))
        [guide] = engine.list(status=LIVE_STATUSES)
        with engine.storage.transaction(engine.tenant) as tx:  # the booking now says ivan; the occurrence, anna
            moved = attrs.evolve(guide, assignments=(attrs.evolve(guide.assignments[0], resource_ids=("ivan",)),))
            tx.reserve(attrs.evolve(moved, version=guide.version + 1), now=at(2, 8))
            tx.commit()

        desk.cancel_occurrence("w1")

        assert [] == [b.id for b in engine.list(status=LIVE_STATUSES)]


class TestJoiningAListOffSale:
    def test_the_list_of_a_cancelled_occurrence_takes_nobody(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Joining the list of a cancelled occurrence is refused as a sale is; nothing changes."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.cancel_occurrence("w1")
        before = snapshot(engine)

        with pytest.raises(SalesClosedError, match="cancelled"):
            desk.join_waiting_list("w1", "rita", ticket_type="adult")

        assert before == snapshot(engine)

    def test_the_list_of_an_occurrence_that_is_over_takes_nobody(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """Joining the list of an occurrence that has ended is refused, even with a sales window open later."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(3, 11), sales_end=at(5, 0)))
        clock.set(at(3, 14))
        before = snapshot(engine)

        with pytest.raises(SalesClosedError, match="over"):
            desk.join_waiting_list("w1", "rita", ticket_type="adult")
        with pytest.raises(SalesClosedError, match="over"):
            desk.sell("w1", "adult", customer_id="rita")

        assert before == snapshot(engine)


    def test_sales_close_at_the_start_whatever_the_window(
        self, desk: EventDesk, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """During the occurrence a sale or a join is SalesClosedError, even with a window open later (it was a
        ConflictError "this time has already passed", and a join was accepted that could never be served)."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(3, 11), sales_end=at(5, 0)))
        clock.set(at(3, 11, 30))
        before = snapshot(engine)

        with pytest.raises(SalesClosedError, match="on sale until 2026-03-03 11:00"):
            desk.sell("w1", "adult", customer_id="rita")
        with pytest.raises(SalesClosedError, match="on sale until 2026-03-03 11:00"):
            desk.join_waiting_list("w1", "rita", ticket_type="adult")

        assert before == snapshot(engine)


def _dst_desk(zone: str, now: datetime) -> tuple[EventDesk, BookingEngine]:
    engine = BookingEngine(MemoryStorage(), clock=FrozenClock(now), tenant="t", default_actor=Actor.admin("o"))
    engine.setup(attrs.evolve(business(), zone=zone, hours=attrs.evolve(business().hours, zone=zone)))
    desk = EventDesk(engine)
    return desk, engine


class TestDaylightSavingTime:
    @pytest.mark.parametrize(
        ("zone", "start", "length"),
        [
            ("Europe/Berlin", datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN), 2 * H),  # ends at the second 02:30
            ("Europe/Berlin", datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN), 2 * H),  # starts there
            ("Europe/Paris", datetime(2026, 3, 28, 10, tzinfo=PARIS), 24 * H),  # 25 hours on the clock
            ("Europe/Paris", datetime(2026, 3, 29, 1, 30, tzinfo=PARIS), 2 * H),  # across the gap
        ],
        ids=["end-in-fold", "start-in-fold", "24h-over-gap", "across-gap"],
    )
    def test_an_occurrence_on_a_dst_night_is_sold_for_its_exact_instants(
        self, zone: str, start: datetime, length: timedelta
    ) -> None:
        """An occurrence touching a fold or a gap is created and sold, its ticket over exactly its instants."""
        desk, _engine = _dst_desk(zone, datetime(2026, 3, 1, tzinfo=PARIS))
        desk.upsert_template(attrs.evolve(WALK, zone=zone, duration=length))
        desk.upsert_occurrence(Occurrence("o", "walk", start))

        ticket = desk.sell("o", "adult", customer_id="olga")

        begins = start.astimezone(UTC)  # in UTC: aware arithmetic in a zone adds wall time
        assert (begins, begins + length) == (ticket.start, ticket.end)

    def test_a_longer_template_may_push_an_end_into_the_fold(self) -> None:
        """A template made longer moves its occurrence's end into the second pass of the fold."""
        desk, engine = _dst_desk("Europe/Berlin", datetime(2026, 3, 1, tzinfo=BERLIN))
        desk.upsert_template(attrs.evolve(WALK, zone="Europe/Berlin"))
        desk.upsert_occurrence(Occurrence("o", "walk", datetime(2026, 10, 25, 0, 45, tzinfo=BERLIN)))
        ticket = desk.sell("o", "adult", customer_id="olga", confirm=True)

        desk.upsert_template(attrs.evolve(WALK, zone="Europe/Berlin", duration=2 * H + 30 * timedelta(minutes=1)))

        second_pass = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN).astimezone(UTC)  # 01:15Z
        assert second_pass == engine.get(ticket.id).end

    @settings(max_examples=60, deadline=None)
    @given(
        zone=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]),
        day=st.sampled_from([date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 10, 25)]),
        minutes=st.integers(-24 * 60, 48 * 60),
        length=st.integers(1, 24 * 60),
    )
    def test_the_seats_are_open_exactly_during_the_occurrence(
        self, zone: str, day: date, minutes: int, length: int
    ) -> None:
        """The seat resource's hours are the occurrence's instants, whatever DST does near them."""
        midnight = datetime.combine(day, datetime.min.time(), ZoneInfo(zone)).astimezone(UTC)
        start = midnight + timedelta(minutes=minutes)
        interval = Interval(start, start + timedelta(minutes=length))
        desk, engine = _dst_desk(zone, datetime(2026, 1, 1, tzinfo=PARIS))
        desk.upsert_template(attrs.evolve(WALK, zone=zone, duration=timedelta(minutes=length)))
        desk.upsert_occurrence(Occurrence("o", "walk", start))
        [seats] = [r for r in engine.resources() if r.id == "o#seats"]
        assert seats.schedule is not None

        opened = seats.schedule.expand(Interval(start - timedelta(days=3), start + timedelta(days=3)))

        assert IntervalSet([interval]) == opened


class TestMoveAndRestaffAtOnce:
    def test_the_old_speaker_is_not_asked_to_come_along(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Moving an occurrence and giving its talk to someone else at once ignores the old speaker's new day."""
        engine.add_service(Service("consult", "Consult", needs=[Need(resource_ids=["anna"])], duration=H))
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), staff={"speaker": "anna"}))
        engine.book("consult", at(10, 11), customer_id="c1")  # anna is busy on the new day

        moved = desk.upsert_occurrence(Occurrence("w1", "walk", at(10, 11), staff={"speaker": "ivan"}))

        assert {"speaker": "ivan"} == moved.roles()
        [ivan] = [b for b in engine.list(resource_id="ivan") if b.status in LIVE_STATUSES]
        assert at(10, 11) == ivan.start
        assert ["consult"] == [b.service_id for b in engine.list(resource_id="anna") if b.status in LIVE_STATUSES]


class TestScheduleWithStaff:
    def test_scheduling_again_with_staff_staffs_the_dates_already_there(
        self, desk: EventDesk, engine: BookingEngine
    ) -> None:
        """Staff given to `schedule` reach the dates it scheduled before, and their other roles stay."""
        rule = Recurrence("FREQ=WEEKLY;BYDAY=MO", datetime(2026, 3, 9, 11), "Europe/Paris")
        desk.schedule("walk", rule, date(2026, 3, 9), date(2026, 3, 16))
        desk.assign("walk@2026-03-09T11:00", "host", "ivan")

        again = desk.schedule("walk", rule, date(2026, 3, 9), date(2026, 3, 16), staff={"speaker": "anna"})

        assert [{"host": "ivan", "speaker": "anna"}, {"speaker": "anna"}] == [o.roles() for o in again]
        assert 2 == len([b for b in engine.list(resource_id="anna") if b.status in LIVE_STATUSES])


class TestCancelTicketTakesTicketsOnly:
    def test_a_staff_booking_is_not_a_ticket(self, desk: EventDesk, engine: BookingEngine) -> None:
        """`cancel_ticket` refuses a speaker's booking (it would leave the speaker bookable twice); nothing changes."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11), staff={"speaker": "anna"}))
        [staff] = engine.list(resource_id="anna")
        before = snapshot(engine)

        with pytest.raises(InvalidInputError, match="not a ticket"):
            desk.cancel_ticket(staff.id)

        assert before == snapshot(engine)


class TestIdsWithAHash:
    def test_an_occurrence_id_with_a_hash_works_like_any(self, desk: EventDesk) -> None:
        """A freed seat of ``deal#90`` is offered at once, and a conflict with it names ``deal#90``."""
        desk.upsert_occurrence(Occurrence("deal#90", "walk", at(9, 11), staff={"speaker": "anna"}))
        first = desk.sell("deal#90", "adult", 2, customer_id="a", confirm=True)
        desk.join_waiting_list("deal#90", "rita", ticket_type="adult")
        desk.upsert_occurrence(Occurrence("deal", "walk", at(9, 12)))

        desk.cancel_ticket(first.id)
        with pytest.raises(StaffConflictError) as refused:
            desk.assign("deal", "speaker", "anna")

        assert [WaitingState.OFFERED] == [e.state for e in desk.waiting_list("deal#90")]
        assert "deal#90" == refused.value.details["conflicting_occurrence_id"]

    def test_moving_one_occurrence_leaves_the_other_ones_staff(self, desk: EventDesk, engine: BookingEngine) -> None:
        """Moving ``deal`` does not take the speaker's booking of ``deal#90`` along."""
        desk.upsert_occurrence(Occurrence("deal#90", "walk", at(9, 11), staff={"speaker": "anna"}))
        desk.upsert_occurrence(Occurrence("deal", "walk", at(9, 14), staff={"speaker": "anna"}))

        desk.upsert_occurrence(Occurrence("deal", "walk", at(10, 14), staff={"speaker": "anna"}))

        starts = sorted(b.start for b in engine.list(resource_id="anna") if b.status in LIVE_STATUSES)
        assert [at(9, 11), at(10, 14)] == starts


class TestRefusalsSayWhy:
    def test_a_full_quota_says_so_in_local_time(self, desk: EventDesk) -> None:
        """A sale refused by a full quota names the quota and the local time, not "fewer than 1 seats"."""
        desk.upsert_occurrence(Occurrence("h1", "lecture", at(9, 19)))
        desk.sell("h1", "student", 2, customer_id="yan")

        with pytest.raises(SoldOutError) as refused:
            desk.sell("h1", "student", customer_id="lev")

        assert "quota 'reduced'" in str(refused.value)
        assert "2026-03-09 19:00–20:00 (Europe/Paris)" in str(refused.value)
        assert "quota" in refused.value.details["reasons"]

    def test_a_sold_out_occurrence_says_how_many_seats_are_left(self, desk: EventDesk) -> None:
        """Too few seats: how many are left, at the local time."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", customer_id="a")

        with pytest.raises(SoldOutError, match=r"only 1 seat left, not 2") as refused:
            desk.sell("w1", "adult", 2, customer_id="b")

        assert "2026-03-09 11:00–13:00 (Europe/Paris)" in str(refused.value)

    def test_a_closed_sales_window_says_when_in_local_time(self, desk: EventDesk) -> None:
        """A sale before the window opens gives the opening in local time."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(20, 11), sales_start=at(5, 10)))

        with pytest.raises(SalesClosedError, match=r"2026-03-05 10:00 \(Europe/Paris\)"):
            desk.sell("w1", "adult", customer_id="a")

    def test_a_closed_business_day_is_not_sold_out(self, engine: BookingEngine) -> None:
        """A sale the engine refuses for another reason than seats is a ConflictError saying so, not sold out."""
        holiday = attrs.evolve(business(), hours=business().hours.with_time_off(TimeOff.days(date(2026, 3, 9), reason="holiday")))
        engine.setup(holiday)
        desk = desk_on(engine)
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))

        with pytest.raises(ConflictError) as refused:
            desk.sell("w1", "adult", customer_id="a")

        assert not isinstance(refused.value, SoldOutError)
        assert "seats left" not in str(refused.value)

    def test_a_cancelled_occurrence_has_no_seats_left(self, desk: EventDesk) -> None:
        """`seats_left` of a cancelled occurrence is 0: none will be sold."""
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.cancel_occurrence("w1")

        assert 0 == desk.seats_left("w1")
