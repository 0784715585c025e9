"""
`list_due_outbox` (`slotengine.ports.DueOutbox`): the messages due now, read without those due later.

The kit's check (run on every adapter by test_conformance.py) catches adapters that cut at the wrong instant,
return messages sent or due later, forget the order or the tenant; here, SQLite without JSON1, and the dispatcher
reading through the capability.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mutants import mutant

from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.model import Need, Resource, Service
from slotengine.notifications import NotificationRule, Template
from slotengine.outbox import OutboxMessage
from slotengine.ports import DueOutbox
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock
from slotengine.testing.conformance import CHECKS, CapabilityNotOffered, run_checks
from slotengine.testing.notifiers import RecordingNotifier

CHECK = CHECKS["check_due_outbox"]
T0 = datetime(2030, 3, 25, 8, tzinfo=UTC)


def _pending(tx: Any) -> list[OutboxMessage]:
    return tx.list_outbox(pending_only=True)  # type: ignore[no-any-return]


class TestTheKit:
    def test_memory_and_sqlite_pass_with_and_without_json1(self, tmp_path: Path) -> None:
        """Memory and SQLite keep the clause; SQLite without JSON1 reads every pending message and still does."""
        counter = itertools.count()

        def plain() -> SQLiteStorage:
            storage = SQLiteStorage(tmp_path / f"plain{next(counter)}.db")
            storage._json1 = False
            return storage

        CHECK(MemoryStorage)
        CHECK(lambda: SQLiteStorage(tmp_path / f"s{next(counter)}.db"))
        CHECK(plain)

    @pytest.mark.parametrize(
        ("name", "method"),
        [
            ("due strictly before now", lambda tx, now: [m for m in _pending(tx) if m.due_at < now]),
            ("cut at the second", lambda tx, now: [m for m in _pending(tx) if m.due_at <= now.replace(microsecond=0)]),
            ("every pending message", lambda tx, now: _pending(tx)),
            ("sent ones too", lambda tx, now: [m for m in tx.list_outbox() if m.due_at <= now]),
            ("by due time", lambda tx, now: sorted(tx.list_due_outbox(now), key=lambda m: m.due_at)),
            ("a naive now taken as UTC", lambda tx, now: tx.list_due_outbox(now.replace(tzinfo=now.tzinfo or UTC))),
        ],
    )
    def test_the_check_catches_a_wrong_answer(self, name: str, method: Callable[..., object]) -> None:
        """An adapter that cuts at the wrong instant, returns too much or answers in another order fails."""
        failures = run_checks(mutant(list_due_outbox=method), skip=set(CHECKS) - {"check_due_outbox"})

        assert ["check_due_outbox"] == [f.name for f in failures], name

    def test_the_check_catches_a_read_that_forgets_the_tenant(self) -> None:
        """Another tenant's messages with the same ids must never come back."""
        storages: list[MemoryStorage] = []

        def everyone(tx: Any, now: datetime) -> list[OutboxMessage]:
            mine = tx.list_due_outbox(now)
            others = [
                m
                for data in storages[-1]._tenants.values()
                for m in data.outbox.values()
                if m.sent_at is None and m.failed_at is None and m.due_at <= now and m not in mine
            ]
            return mine + others  # type: ignore[no-any-return]

        class Leaky(mutant(list_due_outbox=everyone)):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                storages.append(self)

        failures = run_checks(Leaky, skip=set(CHECKS) - {"check_due_outbox"})

        assert ["check_due_outbox"] == [f.name for f in failures]
        assert "in tenant" in failures[0].message

    def test_without_the_capability_the_check_warns_and_passes(self) -> None:
        """A transaction without list_due_outbox passes with CapabilityNotOffered, as the other capabilities."""
        with pytest.warns(CapabilityNotOffered, match="check_due_outbox: the storage offers no list_due_outbox"):
            CHECK(mutant(list_due_outbox=None))

    def test_every_shipped_transaction_offers_it(self, tmp_path: Path) -> None:
        """The engine finds the capability on memory and SQLite transactions (PostgreSQL: test_conformance)."""
        for storage in (MemoryStorage(), SQLiteStorage(tmp_path / "s.db")):
            with storage.transaction("t") as tx:
                assert isinstance(tx, DueOutbox)
            storage.close()


class TestTheDispatcher:
    @staticmethod
    def engine(storage: MemoryStorage) -> tuple[BookingEngine, FrozenClock]:
        """A car wash open around the clock, with a reminder a day before each wash."""
        clock = FrozenClock(T0)
        engine = BookingEngine(storage, clock=clock, tenant="t", default_actor=Actor.system("tests"))
        always = Schedule("UTC", WeeklyHours.every_day(TimeRange("00:00", "00:00")))
        remind = NotificationRule("remind", Template("Tomorrow", "$service at $local_time"), offset=-timedelta(days=1))
        engine.setup(Business("Wash", "UTC", always, rules=[remind]))
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(Service("wash", "Wash", needs=[Need(type="box")], duration=timedelta(minutes=30)))
        return engine, clock

    def test_it_reads_the_due_messages_only(self) -> None:
        """With the capability, dispatch_due never lists every pending message; what it sends is unchanged."""
        pending_reads: list[bool] = []

        def listing(tx: Any, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
            if booking_id is None:
                pending_reads.append(pending_only)
            return tx.list_outbox(pending_only=pending_only, booking_id=booking_id)  # type: ignore[no-any-return]

        engine, clock = self.engine(mutant(list_outbox=listing)())
        plain, plain_clock = self.engine(mutant(list_outbox=listing, list_due_outbox=None)())
        for each, each_clock in ((engine, clock), (plain, plain_clock)):
            each_clock.set(datetime(2026, 3, 2, 8, tzinfo=UTC))
            each.book("wash", datetime(2026, 3, 3, 9, tzinfo=UTC), customer_id="ann")
            each.book("wash", datetime(2026, 4, 3, 9, tzinfo=UTC), customer_id="ann")  # its reminder waits a month
        pending_reads.clear()

        sent = RecordingNotifier()
        engine.dispatch_due(sent, actor=Actor.system("worker"))
        assert [] == pending_reads
        also = RecordingNotifier()
        plain.dispatch_due(also, actor=Actor.system("worker"))
        assert [True] == pending_reads  # the fallback: every pending message, the due ones kept
        assert [m.topic for m in sent.sent] == [m.topic for m in also.sent]
        assert sent.sent

    def test_a_message_due_a_microsecond_later_waits(self) -> None:
        """The cut is the instant asked, to the microsecond, on the engine's clock."""
        engine, clock = self.engine(MemoryStorage())
        clock.set(datetime(2026, 3, 2, 8, tzinfo=UTC))
        engine.book("wash", datetime(2026, 3, 3, 9, tzinfo=UTC), customer_id="ann")
        due = min(m.due_at for m in engine.outbox(pending_only=True))
        clock.set(due - timedelta(microseconds=1))

        assert 0 == engine.dispatch_due(RecordingNotifier()).sent
        clock.set(due)
        assert 0 < engine.dispatch_due(RecordingNotifier()).sent
