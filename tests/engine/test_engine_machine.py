"""
A model-based test of the engine: random booking scripts, checked after every step.

Rules hold, book, confirm, pay, cancel, reschedule, advance the clock, sweep expired holds, check in, mark
no-shows and complete, on two boxes of a car wash. After every step the invariants must hold: capacity is
never exceeded, only table transitions happen and each one is recorded (with one outbox message), expired
and cancelled bookings take no time, money balances, and a refused step changes nothing.
"""

from __future__ import annotations

import itertools
import os
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule

from conftest import WASH, at, business, state_hash, storage_factories
from slotengine.authorization import Actor
from slotengine.availability import Load
from slotengine.engine import BookingEngine
from slotengine.errors import SlotEngineError
from slotengine.intervals import CapacityProfile, Interval
from slotengine.lifecycle import LIVE_STATUSES, TRANSITIONS
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.testing.clock import FrozenClock

STARTS = [at(day, hour, minute) for day in (3, 4) for hour in (9, 10) for minute in (0, 30)]
BOXES = ["box1", "box2"]
SCALE = int(os.environ.get("SLOTENGINE_MACHINE_SCALE", "1"))


class EngineMachine(RuleBasedStateMachine):
    """The engine on one storage adapter, against a plain record of the money it accepted."""

    factory: object = None
    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.storage = type(self).factory()  # type: ignore[misc]
        self.clock = FrozenClock(at(2, 8))
        counter = iter(range(1, 10**9))
        self.engine = BookingEngine(
            self.storage,
            clock=self.clock,
            tenant="m",
            new_id=lambda: f"id{next(counter)}",
            default_actor=Actor.system("machine"),
        )
        self.engine.setup(business())
        for box in BOXES:
            self.engine.add_resource(Resource(box, box.title(), type="box"))
        self.engine.add_service(WASH)
        self.paid: dict[str, Money] = {}
        self.payments = 0

    def teardown(self) -> None:
        self.storage.close()

    def attempt(self, call):
        """Run *call*; a refusal must be typed and must leave storage unchanged."""
        before = state_hash(self.engine)
        try:
            return call()
        except SlotEngineError:
            assert before == state_hash(self.engine)
            return None

    # --- rules -------------------------------------------------------------------------------------------

    @rule(target=bookings, start=st.sampled_from(STARTS), pin=st.sampled_from([None, *BOXES]), firm=st.booleans())
    def create(self, start, pin, firm):
        make = self.engine.book if firm else self.engine.hold
        booking = self.attempt(lambda: make("wash", start, pin=[pin] if pin else ()))
        if booking is None:
            return multiple()
        self.paid[booking.id] = Money(0, "EUR")
        return booking.id

    @rule(booking_id=bookings)
    def confirm(self, booking_id):
        self.attempt(lambda: self.engine.confirm(booking_id, actor=Actor.manager("m")))

    @rule(booking_id=bookings, cents=st.sampled_from([500, 1000, 2000, 2000, 2000, 2500]))
    def pay(self, booking_id, cents):
        amount = Money(cents // 100, "EUR")
        self.payments += 1
        result = self.attempt(lambda: self.engine.pay(booking_id, amount, payment_id=f"p{self.payments}"))
        if result is not None:
            self.paid[booking_id] += amount

    @rule(booking_id=bookings, by_business=st.booleans())
    def cancel(self, booking_id, by_business):
        self.attempt(lambda: self.engine.cancel(booking_id, by_business=by_business))

    @rule(booking_id=bookings, start=st.sampled_from(STARTS))
    def reschedule(self, booking_id, start):
        self.attempt(lambda: self.engine.reschedule(booking_id, start))

    @rule(minutes=st.sampled_from([1, 10, 29, 30, 31, 60, 240, 24 * 60]), sweep=st.booleans())
    def advance(self, minutes, sweep):
        self.clock.advance(timedelta(minutes=minutes))
        if sweep:
            self.engine.expire_due()

    @rule(booking_id=bookings)
    def check_in(self, booking_id):
        self.attempt(lambda: self.engine.check_in(booking_id))

    @rule(booking_id=bookings)
    def no_show(self, booking_id):
        self.attempt(lambda: self.engine.mark_no_show(booking_id))

    @rule(booking_id=consumes(bookings))
    def complete(self, booking_id):
        self.attempt(lambda: self.engine.complete(booking_id))

    @rule(target=bookings, start=st.sampled_from(STARTS), reuse=st.integers(0, 9))
    def keyed_hold(self, start, reuse):
        # Mostly a fresh key per start (a retry returns the first result); now and then a reused key.
        key = "shared" if reuse == 0 else f"k-{start.isoformat()}"
        first = self.attempt(lambda: self.engine.hold("wash", start, idempotency_key=key))
        again = self.attempt(lambda: self.engine.hold("wash", start, idempotency_key=key))
        if first is None:
            return multiple()
        assert first == again
        self.paid.setdefault(first.id, Money(0, "EUR"))
        return first.id

    # --- invariants ----------------------------------------------------------------------------------------

    @invariant()
    def capacity_is_never_exceeded(self):
        now = self.clock.now()
        for box in BOXES:
            live = [
                load
                for booking in self.engine.list(resource_id=box)
                if booking.takes_time(now)
                for load in booking.loads()
                if load.resource_id == box
            ]
            assert CapacityProfile((ld.blocked, ld.units) for ld in live).peak <= 1

    @invariant()
    def only_table_transitions_and_all_recorded(self):
        records = self.engine.transitions()
        by_booking: dict[str, list] = {}
        for record in records:
            by_booking.setdefault(record.booking_id, []).append(record)
        for booking in self.engine.list():
            chain = by_booking.pop(booking.id)
            assert chain[0].from_status is None
            for earlier, later in itertools.pairwise(chain):
                assert earlier.to_status == later.from_status
            for record in chain:
                assert TRANSITIONS[record.from_status][record.action] == record.to_status
            assert chain[-1].to_status == booking.status
            # Every change makes a new version and every change is one record: none goes unrecorded.
            assert booking.version == len(chain)
        assert {} == by_booking
        assert len(records) == len([m for m in self.engine.outbox() if m.topic.startswith("booking.")])

    @invariant()
    def dead_bookings_take_no_time(self):
        now = self.clock.now()
        window = Interval(at(1, 0), at(30, 0))
        with self.storage.transaction("m") as tx:
            loads: list[Load] = tx.loads(BOXES, window)
        live_ids = {b.id for b in self.engine.list() if b.status in LIVE_STATUSES}
        assert {ld.booking_id for ld in loads} <= live_ids
        for booking in self.engine.list():
            if booking.status not in LIVE_STATUSES:
                assert not booking.takes_time(now)

    @invariant()
    def money_balances(self):
        for booking in self.engine.list():
            assert self.paid.get(booking.id, Money(0, "EUR")) == booking.paid
            assert booking.net_paid == booking.paid - booking.refunded
            assert not booking.net_paid.is_negative


def machine_for(name: str, tmp_path_factory, examples: int):
    factories = storage_factories(tmp_path_factory)
    machine = type(f"{name.title()}Machine", (EngineMachine,), {"factory": staticmethod(factories[name])})
    machine.TestCase.settings = settings(
        max_examples=examples * SCALE,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    return machine


def test_memory_machine(tmp_path_factory):
    """The engine on MemoryStorage keeps every invariant over random scripts (M1)."""
    machine_for("memory", tmp_path_factory, 200).TestCase().runTest()


def test_sqlite_machine(tmp_path_factory):
    """The engine on SQLiteStorage keeps every invariant over random scripts (M1)."""
    machine_for("sqlite", tmp_path_factory, 40).TestCase().runTest()


def test_postgres_machine(tmp_path_factory):
    """The engine on PostgresStorage keeps every invariant over random scripts (M1), one schema per example."""
    import pytest

    from conftest import POSTGRES_SKIP

    if "postgres" not in storage_factories(tmp_path_factory):
        pytest.skip(POSTGRES_SKIP)
    machine_for("postgres", tmp_path_factory, 25).TestCase().runTest()
