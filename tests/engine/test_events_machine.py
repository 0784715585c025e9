"""
The waiting list as a state machine, against a tiny model of seats, holds and a line of people.

Rules buy, join, cancel a ticket, advance the `FrozenClock`, walk the lists, pay an offer (in time or late),
pay a checkout hold (in time or late), and move the occurrence; after each, the desk must agree with the model,
and the invariants hold: offers go strictly in join order, live tickets and outstanding offers never exceed the
seats or the quota, every live ticket lies at the occurrence's current time, an expired offer stays expired and
is never paid, and after a walk nobody waits while their seats are free. A sale goes through only if it leaves
enough for everyone waiting (the rule of `EventDesk.sell`). Memory storage at CI size; one short run on an
SQLite file; ``SLOTENGINE_NIGHTLY=1`` runs ten times as many examples.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import ConflictError, PolicyViolationError, SoldOutError
from slotengine.events import EventDesk, EventTemplate, Occurrence, Quota, TicketType, WaitingState
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus
from slotengine.money import Money
from slotengine.ports import Storage
from slotengine.testing.clock import FrozenClock

NIGHTLY = os.environ.get("SLOTENGINE_NIGHTLY") == "1"
SEATS, KIDS = 3, 1
TTL = timedelta(minutes=30)  # the business's default HoldPolicy.ttl
TOUR = EventTemplate(
    "tour",
    "Tour",
    timedelta(hours=2),
    "Europe/Paris",
    SEATS,
    [TicketType("full", "Full", Money("10", "EUR")), TicketType("kid", "Kid", Money("5", "EUR"), quota_id="kids")],
    quotas=[Quota("kids", KIDS)],
)


@attrs.define
class Ticket:
    """The model of one ticket booking: how many seats of which kind, paid or held until when."""

    quantity: int
    kind: str
    held_until: datetime | None  # None once confirmed or paid
    cancelled: bool = False
    # Takes no late payment: a lapsed hold the occurrence moved away from, or a hold unpaid while people wait.
    no_late_payment: bool = False

    def takes(self, now: datetime) -> int:
        if self.cancelled or (self.held_until is not None and self.held_until <= now):
            return 0
        return self.quantity


@attrs.define
class Waiting:
    """The model of one person in line."""

    customer: str
    quantity: int
    kind: str
    state: WaitingState = WaitingState.WAITING
    booking_id: str | None = None


def _lapsed(booking: Booking, now: datetime) -> bool:
    return booking.status is BookingStatus.EXPIRED or (
        booking.status is BookingStatus.PRE_BOOKING and booking.hold_until is not None and booking.hold_until <= now
    )


class WaitingListMachine(RuleBasedStateMachine):
    """A sold-out tour with a waiting list, driven through `EventDesk` and checked against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.storage = self.open_storage()
        self.clock = FrozenClock(at(2, 8))
        counter = iter(range(1, 1_000_000))
        self.engine = BookingEngine(
            self.storage,
            clock=self.clock,
            tenant="tours",
            default_actor=Actor.system("m"),
            new_id=lambda: f"b{next(counter)}",
        )
        self.engine.setup(business())
        self.desk = EventDesk(self.engine)
        self.desk.upsert_template(TOUR)
        self.desk.upsert_occurrence(Occurrence("o1", "tour", at(9, 11)))
        self.start = at(9, 11)
        self.tickets: dict[str, Ticket] = {}
        self.line: list[Waiting] = []
        self.customers = 0
        self.ever_expired: set[str] = set()

    def open_storage(self) -> Storage:
        return MemoryStorage()

    def teardown(self) -> None:
        self.storage.close()

    # --- the model ---------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def free(self, kind: str) -> int:
        now = self.now()
        seats = SEATS - sum(t.takes(now) for t in self.tickets.values())
        if kind == "kid":
            return min(seats, KIDS - sum(t.takes(now) for t in self.tickets.values() if t.kind == "kid"))
        return seats

    def fits(self, quantity: int, kind: str) -> bool:
        return self.free(kind) >= quantity

    @staticmethod
    def pools(quantity: int, kind: str) -> dict[str, int]:
        return {"seats": quantity, "kids": quantity} if kind == "kid" else {"seats": quantity}

    def sale_allowed(self, quantity: int, kind: str) -> bool:
        """
        The sale rule: the people the next walk would offer seats to have them set aside; after the sale, each
        pool it takes from keeps at least the largest request still waiting on it.
        """
        now = self.now()
        free = {
            "seats": SEATS - sum(t.takes(now) for t in self.tickets.values()),
            "kids": KIDS - sum(t.takes(now) for t in self.tickets.values() if t.kind == "kid"),
        }
        wanted: dict[str, int] = {}
        blocked = False
        for person in self.line:
            if person.state is not WaitingState.WAITING:
                continue
            needs = self.pools(person.quantity, person.kind)
            if not blocked and all(free[p] >= n for p, n in needs.items()):
                for p, n in needs.items():
                    free[p] -= n
                continue
            blocked = True
            for p, n in needs.items():
                wanted[p] = max(wanted.get(p, 0), n)
        return all(free[p] - n >= wanted.get(p, 0) for p, n in self.pools(quantity, kind).items())

    def next_customer(self, prefix: str) -> str:
        self.customers += 1
        return f"{prefix}{self.customers}"

    def walk(self) -> list[str]:
        """What a walk of the list must do: settle offers, then offer to the line in order; return who."""
        now = self.now()
        for person in self.line:
            if person.state is WaitingState.OFFERED and person.booking_id is not None:
                ticket = self.tickets[person.booking_id]
                if not ticket.cancelled and ticket.held_until is None:
                    person.state = WaitingState.ACCEPTED
                elif ticket.takes(now) == 0:
                    person.state = WaitingState.EXPIRED
        offered = []
        for person in self.line:
            if person.state is not WaitingState.WAITING:
                continue
            if not self.fits(person.quantity, person.kind):
                break
            person.state = WaitingState.OFFERED
            person.booking_id = f"offer-to-{person.customer}"  # the desk's booking id comes in record_offers
            self.tickets[person.booking_id] = Ticket(person.quantity, person.kind, now + TTL)
            offered.append(person.customer)
        return offered

    def record_offers(self, offered: list[str]) -> None:
        by_customer = {p.customer: p for p in self.line}
        for entry in self.desk.waiting_list("o1"):
            person = by_customer[entry.customer_id]
            if person.customer in offered and entry.booking_id is not None and person.booking_id is not None:
                self.tickets[entry.booking_id] = self.tickets.pop(person.booking_id)
                person.booking_id = entry.booking_id

    def set_holds_aside(self) -> None:
        """After a sale or a join, while anyone waits, every hold's seats go to the list once it lapses."""
        if any(p.state is WaitingState.WAITING for p in self.line):
            for ticket in self.tickets.values():
                if ticket.held_until is not None and not ticket.cancelled:
                    ticket.no_late_payment = True

    # --- rules -------------------------------------------------------------------------------------------

    @rule(quantity=st.integers(1, 2), kind=st.sampled_from(["full", "kid"]), confirm=st.booleans())
    def buy(self, quantity: int, kind: str, confirm: bool) -> None:
        quantity = 1 if kind == "kid" else quantity
        expected = self.sale_allowed(quantity, kind)
        customer = self.next_customer("buyer")
        try:
            booking = self.desk.sell("o1", kind, quantity, customer_id=customer, confirm=confirm)
        except SoldOutError:
            assert not expected
            return
        assert expected
        self.tickets[booking.id] = Ticket(quantity, kind, None if confirm else booking.hold_until)
        self.set_holds_aside()

    @rule(quantity=st.integers(1, 2), kind=st.sampled_from(["full", "kid"]))
    def join(self, quantity: int, kind: str) -> None:
        quantity = 1 if kind == "kid" else quantity
        customer = self.next_customer("waiter")
        entry = self.desk.join_waiting_list("o1", customer, ticket_type=kind, quantity=quantity)
        self.line.append(Waiting(customer, quantity, kind))
        offered = self.walk()  # a join walks the list at once: seats free for the newcomer are offered now

        assert (customer in offered) == (entry.state is WaitingState.OFFERED)
        self.record_offers(offered)
        self.set_holds_aside()

    @precondition(lambda self: any(t.takes(self.now()) for t in self.tickets.values()))
    @rule(data=st.data())
    def cancel_ticket(self, data: st.DataObject) -> None:
        live = [i for i, t in self.tickets.items() if t.takes(self.now())]  # in the order they were sold
        booking_id = data.draw(st.sampled_from(live))
        self.desk.cancel_ticket(booking_id)
        self.tickets[booking_id].cancelled = True
        self.record_offers(self.walk())

    @rule(minutes=st.sampled_from([1, 10, 29, 30, 31]))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @precondition(lambda self: any(p.state is WaitingState.OFFERED for p in self.line))
    @rule()
    def let_the_offers_lapse(self) -> None:
        self.clock.advance(TTL)

    @rule()
    def process_waiting_lists(self) -> None:
        offers = self.desk.process_waiting_lists()
        expected = self.walk()

        assert expected == [b.customer_id for b in offers]
        event(f"a walk makes {len(offers)} offers")
        self.record_offers(expected)
        waiting = [p for p in self.line if p.state is WaitingState.WAITING]
        assert not waiting or not self.fits(waiting[0].quantity, waiting[0].kind)  # every freed seat is offered

    @precondition(lambda self: any(p.state is WaitingState.OFFERED for p in self.line))
    @rule(data=st.data())
    def pay_an_offer(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from([p for p in self.line if p.state is WaitingState.OFFERED]))
        assert person.booking_id is not None
        ticket = self.tickets[person.booking_id]
        offer = self.engine.get(person.booking_id)
        assert offer.price is not None
        if ticket.takes(self.now()) == 0:  # lapsed: the seat has passed on, a late payment is refused
            event("a lapsed offer is paid late")
            with pytest.raises(PolicyViolationError):
                self.engine.pay(offer.id, offer.price, payment_id=f"pay-{offer.id}")
            return
        paid = self.engine.pay(offer.id, offer.price, payment_id=f"pay-{offer.id}")
        assert paid.status in (BookingStatus.CONFIRMED, BookingStatus.PAID)
        ticket.held_until = None

    @precondition(
        lambda self: any(
            t.held_until is not None and not t.cancelled and not i.startswith("offer") for i, t in self.tickets.items()
        )
    )
    @rule(data=st.data())
    def pay_a_hold(self, data: st.DataObject) -> None:
        """A checkout hold is paid: in time it confirms; late it revives where its seat is still free, if ever."""
        offers = {p.booking_id for p in self.line}
        held = [i for i, t in self.tickets.items() if t.held_until is not None and not t.cancelled and i not in offers]
        if not held:
            return
        booking_id = data.draw(st.sampled_from(held))
        ticket = self.tickets[booking_id]
        booking = self.engine.get(booking_id)
        assert booking.price is not None
        lapsed = ticket.takes(self.now()) == 0
        if lapsed and ticket.no_late_payment:
            event("a hold left behind or set aside for the list is paid late")
            with pytest.raises(PolicyViolationError):
                self.engine.pay(booking_id, booking.price, payment_id=f"pay-{booking_id}")
            return
        if lapsed and not self.fits(ticket.quantity, ticket.kind):
            event("a late payment finds its seat taken")
            with pytest.raises(ConflictError):
                self.engine.pay(booking_id, booking.price, payment_id=f"pay-{booking_id}")
            return
        event("a hold is paid late" if lapsed else "a hold is paid in time")
        paid = self.engine.pay(booking_id, booking.price, payment_id=f"pay-{booking_id}")
        assert paid.status in (BookingStatus.CONFIRMED, BookingStatus.PAID)
        assert self.start == paid.start
        ticket.held_until = None

    @rule(hours=st.sampled_from([-24, -2, 3, 24]))
    def move_the_occurrence(self, hours: int) -> None:
        """The tour moves: live tickets go along; lapsed holds stay where they were and take no late payment."""
        start = self.start + timedelta(hours=hours)
        if not at(8, 11) <= start <= at(10, 11):
            return
        self.desk.upsert_occurrence(attrs.evolve(self.desk.occurrence("o1"), start=start))
        self.start = start
        now = self.now()
        for ticket in self.tickets.values():
            if not ticket.cancelled and ticket.held_until is not None and ticket.takes(now) == 0:
                ticket.no_late_payment = True

    # --- invariants --------------------------------------------------------------------------------------

    @invariant()
    def the_desk_agrees_with_the_model(self) -> None:
        entries = self.desk.waiting_list("o1")

        assert [(p.customer, p.state) for p in self.line] == [(e.customer_id, e.state) for e in entries]
        assert self.free("full") == self.desk.seats_left("o1")

    @invariant()
    def offers_go_strictly_in_join_order(self) -> None:
        states = [e.state for e in self.desk.waiting_list("o1")]
        first_waiting = states.index(WaitingState.WAITING) if WaitingState.WAITING in states else len(states)

        assert all(s is WaitingState.WAITING for s in states[first_waiting:])

    @invariant()
    def no_seat_or_quota_is_oversold(self) -> None:
        now = self.now()
        live = [
            b
            for b in self.desk.tickets("o1")
            if b.status in LIVE_STATUSES and (b.hold_until is None or b.hold_until > now)
        ]

        assert sum(b.units[0] for b in live) <= SEATS
        assert sum(b.units[0] for b in live if "#kid" in b.service_id) <= KIDS

    @invariant()
    def every_live_ticket_lies_at_the_occurrences_time(self) -> None:
        now = self.now()
        start = self.desk.occurrence("o1").start
        live = [b for b in self.desk.tickets("o1") if b.status in LIVE_STATUSES and not _lapsed(b, now)]
        away = [b for b in self.desk.tickets("o1") if b.start != start and _lapsed(b, now)]

        assert all(start == b.start for b in live)
        assert not any(b.policies.hold.accept_late_payment for b in away)

    @invariant()
    def an_expired_offer_stays_expired_and_unpaid(self) -> None:
        for entry in self.desk.waiting_list("o1"):
            if entry.state is WaitingState.EXPIRED:
                self.ever_expired.add(entry.id)
            if entry.id in self.ever_expired:
                assert WaitingState.EXPIRED == entry.state
                booking = self.engine.get(entry.booking_id or "")
                assert booking.status not in (BookingStatus.CONFIRMED, BookingStatus.PAID, BookingStatus.COMPLETED)


WaitingListMachine.TestCase.settings = settings(
    max_examples=1_500 if NIGHTLY else 150, stateful_step_count=40, deadline=None
)
TestWaitingListOnMemory = WaitingListMachine.TestCase
if NIGHTLY:
    TestWaitingListOnMemory = pytest.mark.nightly(TestWaitingListOnMemory)


class WaitingListOnSQLite(WaitingListMachine):
    """The same machine on an SQLite file: a short run, to show the adapter agrees."""

    def open_storage(self) -> Storage:
        self.folder = tempfile.TemporaryDirectory()
        return SQLiteStorage(Path(self.folder.name) / "tours.db")

    def teardown(self) -> None:
        super().teardown()
        self.folder.cleanup()


WaitingListOnSQLite.TestCase.settings = settings(max_examples=10, stateful_step_count=25, deadline=None)
TestWaitingListOnSQLite = WaitingListOnSQLite.TestCase
