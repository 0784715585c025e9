"""
Retention (`slotengine.ports.Retention`, `BookingEngine.prune`): old outbox messages and idempotency keys forgotten.

The kit's check (run on every adapter by test_conformance.py) catches adapters that delete pending messages, cut at
the wrong instant, read one of the two done instants only, or reach into another tenant; here, the engine's call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mutants import mutant

from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine, PruneReport
from slotengine.errors import InvalidInputError, PermissionDeniedError, StorageError
from slotengine.model import Need, Resource, Service
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock
from slotengine.testing.conformance import CHECKS, CapabilityNotOffered, run_checks
from slotengine.testing.notifiers import RecordingNotifier

CHECK = CHECKS["check_retention"]
DAY = timedelta(days=1)


def _drop(tx: Any, keep: Callable[[Any], bool]) -> int:
    """Delete the messages *keep* refuses, through the memory transaction's own data (a mutant's way)."""
    data = tx._writable()
    gone = [m.id for m in data.outbox.values() if not keep(m)]
    for message_id in gone:
        del data.outbox[message_id]
    return len(gone)


class TestTheKit:
    @pytest.mark.parametrize(
        ("name", "method"),
        [
            ("pending ones too", lambda tx, cut: _drop(tx, lambda m: (m.sent_at or m.failed_at or cut) >= cut)),
            ("at the cut too", lambda tx, cut: _drop(tx, lambda m: (m.sent_at or m.failed_at) is None or
                                                     max(t for t in (m.sent_at, m.failed_at) if t) > cut)),
            ("sent ones only", lambda tx, cut: _drop(tx, lambda m: m.sent_at is None or m.sent_at >= cut)),
            ("the first done instant", lambda tx, cut: _drop(tx, lambda m: (m.sent_at or m.failed_at) is None or
                                                             min(t for t in (m.sent_at, m.failed_at) if t) >= cut)),
            ("no count", lambda tx, cut: tx.prune_outbox(cut) and 0),
        ],
    )  # fmt: skip
    def test_the_check_catches_a_wrong_outbox_prune(self, name: str, method: Callable[..., object]) -> None:
        """An adapter that deletes too much, too little or says a wrong count fails the check."""
        failures = run_checks(mutant(prune_outbox=method), skip=set(CHECKS) - {"check_retention"})

        assert ["check_retention"] == [f.name for f in failures], name

    def test_the_check_catches_a_key_prune_at_the_cut(self) -> None:
        """Records created at the cut are kept."""

        def inclusive(tx: Any, cut: datetime) -> int:
            data = tx._writable()
            gone = [k for k, r in data.idempotency.items() if r.created_at <= cut]
            for key in gone:
                del data.idempotency[key]
            return len(gone)

        failures = run_checks(mutant(prune_idempotency=inclusive), skip=set(CHECKS) - {"check_retention"})

        assert ["check_retention"] == [f.name for f in failures]

    def test_without_the_capability_the_check_warns_and_passes(self) -> None:
        """A transaction without prune_outbox passes with CapabilityNotOffered, as the other capabilities."""
        with pytest.warns(CapabilityNotOffered, match="check_retention: the storage offers no prune_outbox"):
            CHECK(mutant(prune_outbox=None))


def shop(storage: MemoryStorage) -> tuple[BookingEngine, FrozenClock]:
    clock = FrozenClock(datetime(2026, 3, 2, 8, tzinfo=UTC))
    engine = BookingEngine(storage, clock=clock, tenant="t", default_actor=Actor.system("tests"))
    engine.setup(Business("Wash", "UTC", Schedule("UTC", WeeklyHours.every_day(TimeRange("00:00", "00:00")))))
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_service(Service("wash", "Wash", needs=[Need(type="box")], duration=timedelta(minutes=30)))
    return engine, clock


class TestPrune:
    def test_old_sent_messages_and_keys_go_the_rest_stays(self) -> None:
        """Sent 100 days ago: gone; sent yesterday, pending, and keys of last week: kept; a forgotten key books again."""
        engine, clock = shop(MemoryStorage())
        first = engine.book("wash", datetime(2026, 3, 3, 9, tzinfo=UTC), idempotency_key="k-old")
        engine.dispatch_due(RecordingNotifier())
        clock.advance(99 * DAY)
        recent = engine.book("wash", datetime(2026, 6, 20, 9, tzinfo=UTC), idempotency_key="k-new")
        engine.dispatch_due(RecordingNotifier())
        engine.book("wash", datetime(2026, 6, 21, 9, tzinfo=UTC))  # its message stays pending
        clock.advance(DAY)
        before = engine.outbox()

        report = engine.prune(keep_messages=90 * DAY, keep_keys=30 * DAY, actor=Actor.admin("owner"))

        assert PruneReport(messages=1, keys=1) == report
        assert [m for m in before if m.booking_id != first.id] == engine.outbox()
        assert PruneReport() == engine.prune(actor=Actor.admin("owner"))
        # A kept key still replays its call; a forgotten one is free for a new call (it was another request's).
        assert recent == engine.book("wash", datetime(2026, 6, 20, 9, tzinfo=UTC), idempotency_key="k-new")
        later = engine.book("wash", datetime(2026, 6, 25, 9, tzinfo=UTC), idempotency_key="k-old")
        assert later.id != first.id

    def test_only_admins_and_the_system_prune(self) -> None:
        """Staff and managers are denied, and nothing is forgotten."""
        engine, clock = shop(MemoryStorage())
        engine.book("wash", datetime(2026, 3, 3, 9, tzinfo=UTC))
        engine.dispatch_due(RecordingNotifier())
        clock.advance(365 * DAY)
        before = engine.outbox()

        for actor in (Actor.staff("sam"), Actor.manager("mia"), Actor.customer("ann")):
            with pytest.raises(PermissionDeniedError, match="may not prune"):
                engine.prune(actor=actor)
        assert before == engine.outbox()
        assert PruneReport(messages=1) == engine.prune(actor=Actor.system("worker"))

    @pytest.mark.parametrize("keep", [-DAY, 30, None, timedelta(days=10**6)])
    def test_a_keep_that_is_no_duration_is_refused(self, keep: object) -> None:
        """A negative, numeric or absent keep is an input error (or out of range); nothing is forgotten."""
        engine, _clock = shop(MemoryStorage())

        with pytest.raises(InvalidInputError):
            engine.prune(keep_messages=keep)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            engine.prune(keep_keys=keep)  # type: ignore[arg-type]

    def test_a_storage_that_cannot_forget_says_so(self) -> None:
        """Without Retention on its transactions, prune is a StorageError naming the storage."""
        engine, _clock = shop(mutant(prune_outbox=None, prune_idempotency=None)())

        with pytest.raises(StorageError, match="cannot forget old messages"):
            engine.prune()
