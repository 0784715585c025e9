"""Authorization review fixes: who an EventDesk call acts as, per-booking reads, the outbox, business refunds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from conftest import WASH, H, at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor, Role
from slotengine.codec import booking_to_dict, dumps, outbox_to_dict, transition_to_dict
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.events import EventDesk, EventTemplate, Occurrence, TicketType
from slotengine.model import Resource
from slotengine.money import Money
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
