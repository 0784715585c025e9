"""
`BookingEngine.transitions_of`: the log of some bookings, authorized per booking as a list is, in one read.

It answers what `transitions(booking_id)` answers for each booking the actor may read, leaving out the others
and unknown ids, on every adapter; with `slotengine.ports.TransitionsOf` it reads the log once and never the
whole log, and without it one booking at a time.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import WASH, at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor, DenyAll, Permission, Role
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.model import Resource
from slotengine.testing.clock import FrozenClock

ANN = Actor.customer("ann")
BOB = Actor.customer("bob")
STAFF = Actor.staff("sam")


@pytest.fixture
def history(engine: BookingEngine) -> dict[str, str]:
    """Ann's booking (confirmed, then cancelled), Bob's hold (confirmed) and a walk-in (completed later, maybe)."""
    ann = engine.book("wash", at(3, 9), customer_id="ann", actor=STAFF)
    bob = engine.hold("wash", at(3, 10), actor=BOB)
    walk_in = engine.book("wash", at(3, 11), actor=STAFF)
    engine.cancel(ann.id, actor=ANN)
    engine.confirm(bob.id, actor=STAFF)
    return {"ann": ann.id, "bob": bob.id, "walk_in": walk_in.id}


class TestWhatItReturns:
    def test_each_bookings_records_as_transitions_gives_them(self, engine: BookingEngine, history: Any) -> None:
        """For staff, the records of every named booking, each booking's in order: the whole log filtered."""
        ids = [history["walk_in"], history["ann"], history["bob"]]

        got = engine.transitions_of(ids, actor=STAFF)

        assert [r for r in engine.transitions() if r.booking_id in ids] == got
        for booking_id in ids:
            assert engine.transitions(booking_id, actor=STAFF) == [r for r in got if r.booking_id == booking_id]

    def test_unknown_and_repeated_ids_and_no_ids(self, engine: BookingEngine, history: Any) -> None:
        """An id no booking has adds nothing (no NotFoundError); a repeat counts once; no ids give []."""
        got = engine.transitions_of(["ghost", history["bob"], history["bob"]], actor=STAFF)

        assert engine.transitions(history["bob"], actor=STAFF) == got
        assert [] == engine.transitions_of([], actor=STAFF)
        assert [] == engine.transitions_of(iter(["ghost"]), actor=ANN)

    def test_a_customer_gets_their_own_bookings_only(self, engine: BookingEngine, history: Any) -> None:
        """As `list`: the bookings a customer may not read are left out, not refused."""
        every = list(history.values())

        assert engine.transitions(history["ann"], actor=ANN) == engine.transitions_of(every, actor=ANN)
        assert engine.transitions(history["bob"], actor=BOB) == engine.transitions_of(every, actor=BOB)
        assert [] == engine.transitions_of(every, actor=Actor.customer("cy"))
        with pytest.raises(PermissionDeniedError):
            engine.transitions(history["bob"], actor=ANN)  # what the single read says of Bob's booking

    def test_a_policy_that_looks_at_the_booking_is_asked_about_each(self, storage: Any, clock: Any) -> None:
        """Staff under a policy of their own see the records of the bookings it lets them read, no others."""

        class OwnBoxOnly:
            def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
                if booking is not None and actor.role is Role.STAFF and "box1" not in booking.resource_ids:
                    raise PermissionDeniedError("not on my box")

        engine = BookingEngine(storage, clock=clock, tenant="own", authorization=OwnBoxOnly())
        engine.setup(business(), actor=Actor.system())
        engine.add_resource(Resource("box1", "Box 1", type="box"), actor=Actor.system())
        engine.add_resource(Resource("box2", "Box 2", type="box"), actor=Actor.system())
        engine.add_service(WASH, actor=Actor.system())
        first = engine.book("wash", at(3, 9), actor=Actor.system())
        second = engine.book("wash", at(3, 9), actor=Actor.system())  # the other box
        mine = first if "box1" in first.resource_ids else second

        got = engine.transitions_of([first.id, second.id], actor=STAFF)

        assert {mine.id} == {r.booking_id for r in got}
        assert engine.transitions(mine.id, actor=STAFF) == got


class TestRefusals:
    @pytest.mark.parametrize("ids", ["b1", b"b1", 7, None, [1], ["b1", None], [""]])
    def test_not_an_iterable_of_ids(self, engine: BookingEngine, ids: Any) -> None:
        """One id as a string, a non-iterable, or an item that is not a booking id: InvalidInputError."""
        with pytest.raises(InvalidInputError):
            engine.transitions_of(ids, actor=STAFF)

    def test_no_actor_and_a_policy_that_refuses_reading(self, engine: BookingEngine, history: Any) -> None:
        """No actor is refused; so is an actor the policy refuses READ, even for no ids at all."""
        bare = BookingEngine(engine.storage, clock=engine.clock, tenant=engine.tenant)
        denied = BookingEngine(engine.storage, clock=engine.clock, tenant=engine.tenant, authorization=DenyAll())

        with pytest.raises(PermissionDeniedError, match="no actor"):
            bare.transitions_of([history["ann"]])
        with pytest.raises(PermissionDeniedError):
            denied.transitions_of([], actor=STAFF)


# --- how it reads -------------------------------------------------------------------------------------------------


class Counting(MemoryStorage):
    """A MemoryStorage that counts the log reads of its transactions (and may hide `list_transitions_of`)."""

    def __init__(self, *, offer: bool = True) -> None:
        super().__init__()
        self.offer = offer
        self.calls: list[tuple[str, object]] = []

    @contextmanager
    def transaction(self, tenant: str) -> Any:  # type: ignore[override]
        with super().transaction(tenant) as tx:
            yield _Spy(tx, self)


class _Spy:
    def __init__(self, inner: Any, storage: Counting) -> None:
        self._inner = inner
        self._storage = storage

    def list_transitions(self, booking_id: str | None = None) -> Any:
        self._storage.calls.append(("list_transitions", booking_id))
        return self._inner.list_transitions(booking_id)

    def __getattr__(self, name: str) -> Any:
        if name != "list_transitions_of":
            return getattr(self._inner, name)
        if not self._storage.offer:
            raise AttributeError(name)

        def counted(booking_ids: Any) -> Any:
            self._storage.calls.append((name, None))
            return self._inner.list_transitions_of(booking_ids)

        return counted


def counting_engine(*, offer: bool) -> tuple[BookingEngine, Counting, list[str]]:
    storage = Counting(offer=offer)
    engine = BookingEngine(storage, clock=FrozenClock(at(2, 8)), tenant="t", default_actor=Actor.system())
    engine.setup(business())
    engine.add_resource(Resource("box1", "Box 1", type="box", capacity=10))
    engine.add_service(WASH)
    ids = [engine.book("wash", at(3, 9), customer_id="ann" if i % 2 else "bob").id for i in range(6)]
    engine.cancel(ids[1])
    storage.calls.clear()
    return engine, storage, ids


class TestHowItReads:
    def test_with_the_capability_one_read_and_never_the_whole_log(self) -> None:
        """One `list_transitions_of` call for all the ids, no `list_transitions` at all."""
        engine, storage, ids = counting_engine(offer=True)

        engine.transitions_of(ids[:4], actor=STAFF)
        engine.transitions_of(ids, actor=ANN)

        assert [("list_transitions_of", None), ("list_transitions_of", None)] == storage.calls

    def test_without_it_one_read_per_readable_booking(self) -> None:
        """Without the capability, `list_transitions(booking_id)` per booking the actor may read, never the log."""
        engine, storage, ids = counting_engine(offer=False)

        got = engine.transitions_of([ids[2], "ghost", ids[1]], actor=ANN)

        assert [("list_transitions", ids[1])] == storage.calls
        assert engine.transitions(ids[1]) == got
        storage.calls.clear()
        staff = engine.transitions_of([ids[2], ids[1]], actor=STAFF)
        assert [("list_transitions", ids[2]), ("list_transitions", ids[1])] == storage.calls
        assert engine.transitions(ids[2]) + engine.transitions(ids[1]) == staff

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        picks=st.lists(st.integers(0, 6), max_size=8),
        who=st.sampled_from([STAFF, ANN, BOB, Actor.manager("m")]),
        offer=st.booleans(),
    )
    def test_it_agrees_with_transitions_of_each_booking(self, picks: list[int], who: Actor, offer: bool) -> None:
        """Any ids, any actor, with or without the capability: per booking, what `transitions(booking_id)` says."""
        engine, _, ids = counting_engine(offer=offer)
        named = [[*ids, "ghost"][p] for p in picks]

        got = engine.transitions_of(named, actor=who)

        for booking_id in dict.fromkeys(named):
            try:
                expected = engine.transitions(booking_id, actor=who)
            except (PermissionDeniedError, LookupError):
                expected = []
            assert expected == [r for r in got if r.booking_id == booking_id]
        assert {r.booking_id for r in got} <= set(named)
