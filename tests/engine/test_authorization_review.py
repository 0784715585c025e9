"""Authorization review fixes: who an EventDesk call acts as, per-booking reads, the outbox, business refunds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import WASH, H, at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import ROLE_PERMISSIONS, Actor, AllowAll, DenyAll, Permission, Role, RolePolicy
from slotengine.board import render_board
from slotengine.booking import Booking
from slotengine.codec import booking_to_dict, dumps, outbox_to_dict, transition_to_dict
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.events import EventDesk, EventTemplate, Occurrence, TicketType
from slotengine.intervals import Interval
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.reports import revenue_report
from slotengine.testing.clock import FrozenClock

ANN = Actor.customer("ann")
BOB = Actor.customer("bob")
STAFF = Actor.staff("sam")
ADMIN = Actor.admin("ada")
ROOT = Actor.system("root")
WALK = EventTemplate("walk", "Walk", 2 * H, "Europe/Paris", 3, [TicketType("adult", "Adult", Money("15", "EUR"))])
TALK = EventTemplate("talk", "Talk", H, "Europe/Paris", 5, [TicketType("adult", "Adult", Money("9", "EUR"))])


def bare_engine(*, default_actor: Actor | None = None, authorization: Any = None) -> BookingEngine:
    """A car wash on memory storage whose engine has no default actor unless given one."""
    engine = BookingEngine(
        MemoryStorage(),
        clock=FrozenClock(at(2, 8)),
        tenant="wash",
        default_actor=default_actor,
        authorization=authorization,
    )
    engine.setup(business(), actor=ROOT)
    engine.add_resource(Resource("box1", "Box 1", type="box"), actor=ROOT)
    engine.add_resource(Resource("box2", "Box 2", type="box"), actor=ROOT)
    engine.add_service(WASH, actor=ROOT)
    return engine


def snapshot(engine: BookingEngine) -> str:
    """A hash of the tenant's bookings, log, outbox, catalogue and documents (read as the system)."""
    with engine.storage.transaction(engine.tenant) as tx:
        documents = [tx.list_documents(kind) for kind in ("event_template", "occurrence", "waitlist")]
    parts = [
        [dumps(booking_to_dict(b)) for b in engine.list(actor=ROOT)],
        [dumps(transition_to_dict(t)) for t in engine.transitions(actor=ROOT)],
        [dumps(outbox_to_dict(m)) for m in engine.outbox(actor=ROOT)],
        [repr(r) for r in engine.resources()],
        [repr(s) for s in engine.services()],
        repr(documents),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def walk_desk(engine: BookingEngine, **kwargs: Any) -> EventDesk:
    """A desk selling a 3-seat walk on Thursday, with Ann's ticket sold and Bob waiting for two seats."""
    desk = EventDesk(engine, **kwargs)
    desk.upsert_template(WALK, actor=ADMIN)
    desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)), actor=ADMIN)
    desk.sell("w1", "adult", 2, actor=ANN)
    desk.join_waiting_list("w1", "bob", ticket_type="adult", quantity=2, actor=BOB)
    return desk


DeskCall = Callable[[EventDesk, Any], object]
DESK_CALLS: dict[str, DeskCall] = {
    "tickets": lambda d, a: d.tickets("w1", actor=a),
    "waiting_list": lambda d, a: d.waiting_list("w1", actor=a),
    "join_waiting_list": lambda d, a: d.join_waiting_list("w1", "dave", ticket_type="adult", actor=a),
    "join_slot_waiting_list": lambda d, a: d.join_slot_waiting_list("wash", at(3, 9), "dave", actor=a),
    "finance": lambda d, a: d.finance(date(2026, 3, 1), actor=a),
    "cancel_occurrence": lambda d, a: d.cancel_occurrence("w1", actor=a),
    "upsert_template": lambda d, a: d.upsert_template(TALK, actor=a),
    "upsert_occurrence": lambda d, a: d.upsert_occurrence(Occurrence("w2", "walk", at(6, 11)), actor=a),
    "assign": lambda d, a: d.assign("w1", "guide", None, actor=a),
    "sell": lambda d, a: d.sell("w1", "adult", customer_id="dave", actor=a),
    "process_waiting_lists": lambda d, a: d.process_waiting_lists(actor=a),
}


class TestEventDeskActor:
    @pytest.mark.parametrize("call", sorted(DESK_CALLS))
    def test_a_desk_call_without_any_actor_is_refused_and_changes_nothing(self, call: str) -> None:
        """No actor, no desk actor, no engine default: refused, never done as the desk's implicit system actor."""
        engine = bare_engine()
        desk = walk_desk(engine)
        before = snapshot(engine)

        with pytest.raises(PermissionDeniedError, match="no actor"):
            DESK_CALLS[call](desk, None)

        assert before == snapshot(engine)

    def test_cancel_ticket_without_any_actor_is_refused(self) -> None:
        """cancel_ticket too (it is refused before it reads the booking)."""
        engine = bare_engine()
        desk = walk_desk(engine)
        [ticket] = desk.tickets("w1", actor=STAFF)
        before = snapshot(engine)

        with pytest.raises(PermissionDeniedError, match="no actor"):
            desk.cancel_ticket(ticket.id)

        assert before == snapshot(engine)

    @pytest.mark.parametrize("bad", ["", 0, False, "system", Role.SYSTEM, ("system", "events")], ids=repr)
    @pytest.mark.parametrize("call", sorted(DESK_CALLS))
    def test_a_desk_call_with_a_non_actor_is_invalid_input(self, call: str, bad: object) -> None:
        """Falsy non-Actors ("", 0, False) no longer become the desk's actor: every call refuses them as input."""
        engine = bare_engine(default_actor=ROOT)
        desk = walk_desk(engine)
        before = snapshot(engine)

        with pytest.raises(InvalidInputError, match="actor must be an Actor"):
            DESK_CALLS[call](desk, bad)

        assert before == snapshot(engine)

    def test_without_an_actor_a_desk_call_acts_as_the_engines_default_actor(self) -> None:
        """The engine's default actor is used, with its own rights: a staff default reads, but cannot set up."""
        engine = bare_engine(default_actor=STAFF)
        desk = walk_desk(engine)

        assert ["ann"] == [t.customer_id for t in desk.tickets("w1")]
        assert ["bob"] == [e.customer_id for e in desk.waiting_list("w1")]
        with pytest.raises(PermissionDeniedError, match="staff:sam may not setup"):
            desk.cancel_occurrence("w1")

    def test_without_an_actor_a_desk_call_acts_as_the_desks_given_actor(self) -> None:
        """An actor given to the desk explicitly is who its calls act as when they name none (before the default)."""
        engine = bare_engine(default_actor=STAFF)
        desk = walk_desk(engine, actor=ADMIN)

        cancelled = desk.cancel_occurrence("w1")

        assert "cancelled" == cancelled.status.value
        [ticket] = engine.list(actor=ROOT)
        assert "admin:ada" == engine.transitions(ticket.id, actor=ROOT)[-1].actor

    def test_a_customer_desk_sees_only_their_own_tickets(self) -> None:
        """A desk given a customer acts as that customer: their tickets only, no waiting list."""
        engine = bare_engine()
        walk_desk(engine)
        bobs = EventDesk(engine, actor=BOB)

        assert [] == bobs.tickets("w1")
        with pytest.raises(PermissionDeniedError):
            bobs.waiting_list("w1")

    def test_the_desks_own_writes_still_act_as_the_system(self) -> None:
        """Offers made while a staff member sweeps the lists are the desk's own writes, as system:events."""
        engine = bare_engine()
        desk = walk_desk(engine)
        [ticket] = desk.tickets("w1", actor=STAFF)
        engine.cancel(ticket.id, actor=ANN)

        [offer] = desk.process_waiting_lists(actor=STAFF)

        assert ("bob", "system:events") == (offer.customer_id, engine.transitions(offer.id, actor=ROOT)[0].actor)


class ReadSome:
    """Everything is allowed, but READ of a booking only for the ids in *readable* (a list is allowed as a whole)."""

    def __init__(self, readable: frozenset[str]) -> None:
        self.readable = readable

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        if permission is Permission.READ and booking is not None and booking.id not in self.readable:
            msg = f"{actor} may not read {booking.id}"
            raise PermissionDeniedError(msg, actor=str(actor), permission=permission.value)


class OwnClientsOnly:
    """The docs' example: RolePolicy, plus staff act only on the bookings they serve."""

    def __init__(self) -> None:
        self.roles = RolePolicy()

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        self.roles.authorize(actor, permission, booking)
        if actor.role is Role.STAFF and booking is not None and actor.id not in booking.resource_ids:
            msg = f"{actor} serves no part of booking {booking.id}"
            raise PermissionDeniedError(msg, actor=str(actor), permission=permission.value)


THURSDAY = Interval(at(5, 0), at(6, 0))


def booked(policy: Any, count: int, storage: Any = None) -> tuple[BookingEngine, list[Booking]]:
    """*count* bookings on Thursday (a few paid, a few cancelled, so the log has several records per booking)."""
    counter = iter(range(1, 1_000))
    engine = BookingEngine(
        MemoryStorage() if storage is None else storage,
        clock=FrozenClock(at(2, 8)),
        tenant="wash",
        authorization=policy,
        new_id=lambda: f"id{next(counter)}",
    )
    engine.setup(business(), actor=ROOT)
    engine.add_resource(Resource("box1", "Box 1", type="box"), actor=ROOT)
    engine.add_resource(Resource("box2", "Box 2", type="box"), actor=ROOT)
    engine.add_service(WASH, actor=ROOT)
    made = []
    for n in range(count):
        booking = engine.book("wash", at(5, 9 + n // 2), customer_id=f"c{n}", actor=ROOT)
        if n % 3 == 1:
            booking = engine.pay(booking.id, Money("20", "EUR"), payment_id=f"p{n}", actor=ROOT)
        elif n % 3 == 2:
            booking = engine.cancel(booking.id, by_business=True, actor=ROOT)
        made.append(booking)
    return engine, made


class TestListsAskThePolicyPerBooking:
    @settings(max_examples=60, deadline=None)
    @given(count=st.integers(0, 8), data=st.data())
    def test_list_style_reads_return_exactly_the_bookings_the_policy_lets_the_actor_read(
        self, count: int, data: st.DataObject
    ) -> None:
        """For a random custom policy reading a random subset of ids: list, agenda and the whole log show that subset."""
        policy = ReadSome(frozenset())
        engine, made = booked(policy, count)
        ids = [b.id for b in made]
        readable = data.draw(st.frozensets(st.sampled_from(ids)) if ids else st.just(frozenset[str]()), "readable")
        policy.readable = readable
        live = {b.id for b in made if b.status.value != "cancelled"}

        listed = [b.id for b in engine.list(actor=STAFF)]
        agenda = [b.id for b in engine.agenda(THURSDAY, actor=STAFF)]
        logged = {r.booking_id for r in engine.transitions(actor=STAFF)}

        assert sorted(readable) == sorted(listed)
        assert sorted(readable & live) == sorted(agenda)
        assert readable == logged
        whole_log = engine.transitions(actor=STAFF)
        for booking_id in readable:  # whole histories, not parts
            assert engine.transitions(booking_id, actor=STAFF) == [r for r in whole_log if r.booking_id == booking_id]

    def test_a_policy_error_other_than_a_denial_propagates(self) -> None:
        """Only PermissionDeniedError drops a booking: a broken policy is not a quiet empty list."""

        class Broken:
            def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
                if permission is Permission.READ and booking is not None:
                    raise RuntimeError("policy backend down")

        engine, _ = booked(Broken(), 2)

        with pytest.raises(RuntimeError, match="backend down"):
            engine.list(actor=STAFF)
        with pytest.raises(RuntimeError, match="backend down"):
            engine.transitions(actor=STAFF)

    def test_the_docs_own_clients_only_policy_holds_for_every_read(self, storage: Any) -> None:
        """A barber sees only their own clients in list, agenda, the whole log, reports and the board."""
        engine, _ = booked(OwnClientsOnly(), 0, storage)
        theirs = engine.book("wash", at(5, 10), pin=["box1"], customer_id="ann", actor=Actor.staff("box1"))
        engine.pay(theirs.id, Money("20", "EUR"), payment_id="pay-1", actor=Actor.staff("box1"))
        mine = engine.book("wash", at(5, 11), pin=["box2"], customer_id="bea", actor=Actor.staff("box2"))
        box2 = Actor.staff("box2")

        assert [mine.id] == [b.id for b in engine.list(actor=box2)]
        assert [mine.id] == [b.id for b in engine.agenda(THURSDAY, actor=box2)]
        assert {mine.id} == {r.booking_id for r in engine.transitions(actor=box2)}
        assert () == revenue_report(engine, date(2026, 3, 5), date(2026, 3, 5), actor=box2)  # box1's is the paid one
        assert "ann" not in render_board(engine, date(2026, 3, 5), actor=box2)

    def test_role_policy_lists_are_unchanged(self) -> None:
        """RolePolicy: staff still see every booking and the whole log; a customer sees only their own."""
        engine, made = booked(RolePolicy(), 4)

        assert sorted(b.id for b in made) == sorted(b.id for b in engine.list(actor=STAFF))
        assert len(engine.transitions(actor=STAFF)) == len(engine.transitions(actor=ROOT))
        assert [made[0].id] == [b.id for b in engine.list(actor=Actor.customer("c0"))]


class TestReplaysAskThePolicy:
    @pytest.mark.parametrize("call", ["hold", "book"])
    def test_a_replayed_create_is_shown_to_the_policy(self, call: str) -> None:
        """Replaying box1's key, box2 is refused the booking it names (the policy reads it); nothing changes."""
        engine, _ = booked(OwnClientsOnly(), 0)
        box1, box2 = Actor.staff("box1"), Actor.staff("box2")
        create = getattr(engine, call)
        theirs = create("wash", at(5, 10), pin=["box1"], customer_id="ann", actor=box1, idempotency_key="k-1")
        before = snapshot(engine)

        with pytest.raises(PermissionDeniedError, match="serves no part"):
            create("wash", at(5, 10), pin=["box1"], customer_id="ann", actor=box2, idempotency_key="k-1")

        assert before == snapshot(engine)
        again = create("wash", at(5, 10), pin=["box1"], customer_id="ann", actor=box1, idempotency_key="k-1")
        assert theirs == again


class TestOutbox:
    def test_reading_the_outbox_asks_the_policy(self) -> None:
        """outbox() is a read like any other: DenyAll refuses it, and a policy is asked for READ."""
        engine, _ = booked(RolePolicy(), 1)
        engine.authorization = DenyAll()

        with pytest.raises(PermissionDeniedError, match="allows nothing"):
            engine.outbox(actor=STAFF)

        asked: list[tuple[str, Permission, Booking | None]] = []

        class Spy:
            def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
                asked.append((str(actor), permission, booking))

        engine.authorization = Spy()
        assert engine.outbox(actor=STAFF)
        assert [("staff:sam", Permission.READ, None)] == asked

    def test_a_customer_never_reads_the_outbox(self) -> None:
        """Even a policy that allows everything does not let a customer read other people's messages."""
        engine, _ = booked(AllowAll(), 1)

        with pytest.raises(PermissionDeniedError, match="may not read the outbox"):
            engine.outbox(actor=ANN)


def clock(engine: BookingEngine) -> FrozenClock:
    assert isinstance(engine.clock, FrozenClock)
    return engine.clock


class NoRefunds:
    """RolePolicy, but nobody refunds."""

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        RolePolicy().authorize(actor, permission, booking)
        if permission is Permission.REFUND:
            raise PermissionDeniedError(f"{actor} may not refund here", actor=str(actor), permission="refund")


class TestBusinessCancellationIsARefund:
    @pytest.mark.parametrize("actor", [STAFF, Actor.manager("mia"), ADMIN, ROOT], ids=str)
    def test_cancelling_on_the_business_terms_needs_the_refund_permission(self, actor: Actor) -> None:
        """Two hours before, the client's terms refund nothing; the business's refund all: only refunders may."""
        engine, _ = booked(RolePolicy(), 0)
        booking = engine.book("wash", at(5, 10), customer_id="ann", actor=ROOT)
        engine.pay(booking.id, Money("20", "EUR"), payment_id="p1", actor=ROOT)
        clock(engine).set(at(5, 8))
        before = snapshot(engine)
        may_refund = Permission.REFUND in ROLE_PERMISSIONS[actor.role]

        if not may_refund:
            with pytest.raises(PermissionDeniedError, match=f"{actor} may not refund"):
                engine.cancel(booking.id, by_business=True, actor=actor)
            assert before == snapshot(engine)
            return
        cancelled = engine.cancel(booking.id, by_business=True, actor=actor)
        assert (Money("0", "EUR"), str(actor)) == (
            cancelled.net_paid,
            engine.transitions(booking.id, actor=ROOT)[-1].actor,
        )

    def test_staff_still_cancel_on_the_clients_terms(self) -> None:
        """Without by_business, staff cancel as before (the client's terms: 26 hours before, half back)."""
        engine, _ = booked(RolePolicy(), 0)
        booking = engine.book("wash", at(5, 10), customer_id="ann", actor=ROOT)
        engine.pay(booking.id, Money("20", "EUR"), payment_id="p1", actor=ROOT)
        clock(engine).set(at(4, 8))

        cancelled = engine.cancel(booking.id, actor=STAFF)

        assert ("cancelled", Money("10", "EUR")) == (cancelled.status.value, cancelled.net_paid)

    def test_an_admin_still_cancels_an_occurrence_and_its_tickets(self) -> None:
        """The desk cancels tickets on the business's terms as the caller: an admin may (setup, cancel, refund)."""
        engine = bare_engine()
        desk = walk_desk(engine)
        [ticket] = desk.tickets("w1", actor=STAFF)
        engine.pay(ticket.id, Money("30", "EUR"), payment_id="p1", actor=ANN)

        desk.cancel_occurrence("w1", actor=ADMIN)

        after = engine.get(ticket.id, actor=ROOT)
        assert ("cancelled", Money("0", "EUR")) == (after.status.value, after.net_paid)

    @pytest.mark.parametrize("actor", [STAFF, Actor.manager("mia")], ids=str)
    def test_who_may_not_set_up_may_not_cancel_an_occurrence(self, actor: Actor) -> None:
        """Staff and managers do not change the catalogue: the occurrence and its tickets stay as they were."""
        engine = bare_engine()
        desk = walk_desk(engine)
        before = snapshot(engine)

        with pytest.raises(PermissionDeniedError, match="may not setup"):
            desk.cancel_occurrence("w1", actor=actor)

        assert before == snapshot(engine)

    def test_a_policy_that_refuses_refunds_refuses_cancelling_an_occurrence_with_tickets(self) -> None:
        """An admin who may not refund under a custom policy cannot cancel an occurrence that has tickets."""
        engine = bare_engine(authorization=NoRefunds())
        desk = walk_desk(engine)
        before = snapshot(engine)

        with pytest.raises(PermissionDeniedError, match="may not refund here"):
            desk.cancel_occurrence("w1", actor=ADMIN)

        assert before == snapshot(engine)
        assert "scheduled" == desk.occurrence("w1").status.value
