"""
The relay's review: what is withdrawn while a batch is sent stays unsent, a channel's text never jams the outbox.

Each test failed before its fix: a reminder withdrawn by a cancellation while earlier messages of the batch went
out was sent anyway (and its withdrawal erased); a failure text with a NUL made every pass raise; a notifier
class was taken for a notifier; `run_jobs` expired holds before a refusal to dispatch; a rule narrowed to other
services still sent; a retry another writer had overtaken was counted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest

from conftest import WASH, at, business, state_hash
from slotengine.adapters.notifiers import ConsoleNotifier, DeliveryError
from slotengine.authorization import Actor, Permission
from slotengine.engine import BookingEngine, DispatchReport
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.events import EventDesk
from slotengine.jobs import run_jobs
from slotengine.lifecycle import BookingStatus
from slotengine.model import Resource
from slotengine.notifications import Condition, Event, NotificationRule, Template
from slotengine.outbox import OutboxMessage
from slotengine.policies import HoldPolicy
from slotengine.testing.clock import FrozenClock
from slotengine.testing.notifiers import RecordingNotifier

H = timedelta(hours=1)
REMINDER = NotificationRule("reminder", Template("See you", "$service at $local_time"), offset=-2 * H)


def shop(storage: object, rules: tuple[NotificationRule, ...] = (REMINDER,)) -> tuple[BookingEngine, FrozenClock]:
    clock = FrozenClock(at(2, 8))
    counter = iter(range(1, 10**9))
    engine = BookingEngine(
        storage,  # type: ignore[arg-type]
        clock=clock,
        tenant="n",
        new_id=lambda: f"id{next(counter)}",
        default_actor=Actor.system("tests"),
    )
    engine.setup(attrs.evolve(business(hold=HoldPolicy(ttl=timedelta(hours=20))), rules=rules, agent="desk"))
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_resource(Resource("box2", "Box 2", type="box"))
    engine.add_service(WASH)
    return engine, clock


def reminders_of(engine: BookingEngine, booking_id: str) -> list[OutboxMessage]:
    return [m for m in engine.outbox() if m.booking_id == booking_id and m.topic.startswith("remind.")]


def cancel_bob_during_anns_send(storage: object) -> tuple[BookingEngine, str, str, RecordingNotifier, DispatchReport]:
    """Ann's and Bob's reminders are due in one batch; while Ann's is being sent, Bob cancels (another request)."""
    engine, clock = shop(storage)
    ann = engine.book("wash", at(3, 12), customer_id="ann")
    bob = engine.book("wash", at(3, 12), customer_id="bob")
    engine.dispatch_due(RecordingNotifier())  # the booking events
    clock.set(at(3, 10))

    class Busy(RecordingNotifier):
        def send(self, message: OutboxMessage) -> None:
            if message.booking_id == ann.id:
                engine.cancel(bob.id, reason="changed plans")
            super().send(message)

    notifier = Busy()
    return engine, ann.id, bob.id, notifier, engine.dispatch_due(notifier)


def cancel_bob_during_a_failed_send(storage: object) -> tuple[BookingEngine, str, DispatchReport]:
    """Bob's reminder is due; the channel fails it just as Bob cancels."""
    engine, clock = shop(storage)
    bob = engine.book("wash", at(3, 12), customer_id="bob")
    engine.dispatch_due(RecordingNotifier())
    clock.set(at(3, 10))

    class Failing:
        def send(self, message: OutboxMessage) -> None:
            engine.cancel(bob.id, reason="changed plans")
            raise DeliveryError("timeout")

    return engine, bob.id, engine.dispatch_due(Failing())


class TestWithdrawnWhileTheBatchIsSent:
    def test_a_reminder_withdrawn_by_a_cancellation_during_an_earlier_send_is_not_sent(self, storage) -> None:
        """Bob cancels while Ann's reminder is being sent: his, claimed in the same batch, is not sent."""
        engine, ann, bob, notifier, report = cancel_bob_during_anns_send(storage)

        assert [ann] == [m.booking_id for m in notifier.sent]
        assert 1 == report.sent
        [withdrawn] = reminders_of(engine, bob)
        assert withdrawn.sent_at is None
        assert withdrawn.failed_at is not None
        assert withdrawn.last_error == "withdrawn: the booking was cancelled"

    def test_a_reminder_whose_condition_stopped_holding_during_an_earlier_send_is_withdrawn(self, storage) -> None:
        """A "please confirm" for a hold that is confirmed while the batch is sent is withdrawn, not sent."""
        please = NotificationRule(
            "confirm-please", Template("Confirm", "$service"), offset=-2 * H, condition=Condition.UNCONFIRMED
        )
        engine, clock = shop(storage, rules=(please,))
        ann = engine.hold("wash", at(2, 16), customer_id="ann")  # held until 04:00 tomorrow
        bob = engine.hold("wash", at(2, 16), customer_id="bob")
        engine.dispatch_due(RecordingNotifier())
        clock.set(at(2, 14))

        class Busy(RecordingNotifier):
            def send(self, message: OutboxMessage) -> None:
                if message.booking_id == ann.id:
                    engine.confirm(bob.id)  # confirming withdraws nothing: the condition is judged when sending
                super().send(message)

        notifier = Busy()
        report = engine.dispatch_due(notifier)

        assert [ann.id] == [m.booking_id for m in notifier.sent]
        assert (1, 1) == (report.sent, report.withdrawn)
        [withdrawn] = reminders_of(engine, bob.id)
        assert (None, "withdrawn: no longer applies") == (withdrawn.sent_at, withdrawn.last_error)

    def test_a_withdrawal_that_lands_during_the_send_is_kept_beside_the_sent_record(self, storage) -> None:
        """Cancelled while its own reminder is in the channel: it was sent, and it was withdrawn; both are kept."""
        engine, clock = shop(storage)
        bob = engine.book("wash", at(3, 12), customer_id="bob")
        engine.dispatch_due(RecordingNotifier())
        clock.set(at(3, 10))

        class Racing(RecordingNotifier):
            def send(self, message: OutboxMessage) -> None:
                engine.cancel(bob.id, reason="changed plans")  # after the last look, before the send returns
                super().send(message)

        report = engine.dispatch_due(Racing())

        assert 1 == report.sent
        [reminder] = reminders_of(engine, bob.id)
        assert reminder.sent_at is not None  # the client has it: the record says so
        assert reminder.failed_at is not None  # and the withdrawal is not erased
        assert reminder.last_error == "withdrawn: the booking was cancelled"
        assert reminder not in engine.outbox(pending_only=True)


class TestAFailureTextNoStorageKeeps:
    @pytest.mark.parametrize(
        ("said", "kept"),
        [
            ("gateway said: bad\x00byte", "gateway said: bad\\x00byte"),
            ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
            ("two\nlines\x1b[31m", "two\\x0alines\\x1b[31m"),
            (42, "(a message that is not text)"),
        ],
    )
    def test_the_attempt_counts_and_the_message_is_given_up_after_max_attempts(
        self, storage, said: object, kept: str
    ) -> None:
        """The error is recorded escaped: every attempt counts, the third gives up, no pass raises."""
        engine, clock = shop(storage, rules=())
        engine.book("wash", at(3, 10), customer_id="ann")
        calls = []

        class Gateway:
            def send(self, message: OutboxMessage) -> None:
                calls.append(message.id)
                raise DeliveryError(said)  # type: ignore[arg-type]

        reports = []
        for _ in range(5):
            reports.append(engine.dispatch_due(Gateway(), max_attempts=3, backoff=timedelta(0)))
            clock.advance(timedelta(minutes=1))

        assert [1, 1, 0, 0, 0] == [r.retried for r in reports]
        assert [0, 0, 1, 0, 0] == [r.failed for r in reports]
        assert 3 == len(calls)
        [message] = engine.outbox()
        assert (3, f"DeliveryError: {kept}") == (message.attempts, message.last_error)
        assert message.failed_at is not None

    def test_a_long_text_is_cut(self, storage) -> None:
        """A gateway that answers a whole page is recorded in 2,000 characters."""
        engine, _clock = shop(storage, rules=())
        engine.book("wash", at(3, 10), customer_id="ann")

        class Gateway:
            def send(self, message: OutboxMessage) -> None:
                raise DeliveryError("\x00" * 5_000)

        assert 1 == engine.dispatch_due(Gateway()).retried
        [message] = engine.outbox()
        assert len(message.last_error) == 2_000
        assert message.last_error.startswith("DeliveryError: \\x00\\x00")
        assert message.last_error.endswith("…")

    def test_the_healthy_messages_of_the_batch_still_go(self, storage) -> None:
        """One message's unstorable failure text neither stops the pass nor leaves the others claimed."""
        engine, _clock = shop(storage, rules=())
        ann = engine.book("wash", at(3, 10), customer_id="ann")
        bob = engine.book("wash", at(3, 10), customer_id="bob")

        class Gateway(RecordingNotifier):
            def send(self, message: OutboxMessage) -> None:
                if message.booking_id == ann.id:
                    raise DeliveryError("gateway said: \x00")
                super().send(message)

        notifier = Gateway()
        report = engine.dispatch_due(notifier)

        assert (1, 1) == (report.sent, report.retried)
        assert [bob.id] == [m.booking_id for m in notifier.sent]


class TestANotifierClassIsNoNotifier:
    @pytest.mark.parametrize("notifier", [ConsoleNotifier, RecordingNotifier])
    def test_dispatch_due_refuses_a_class(self, notifier: object) -> None:
        """The parentheses forgotten: an InvalidInputError naming the class, and no message is touched."""
        from slotengine.adapters.memory import MemoryStorage

        engine, _clock = shop(MemoryStorage(), rules=())
        engine.book("wash", at(3, 10), customer_id="ann")
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match=f"not the class {notifier.__name__}"):  # type: ignore[attr-defined]
            engine.dispatch_due(notifier)  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_run_jobs_refuses_a_class_before_the_sweep(self) -> None:
        """`run_jobs(engine, ConsoleNotifier)`: refused before any hold is expired."""
        from slotengine.adapters.memory import MemoryStorage

        engine, clock = shop(MemoryStorage(), rules=())
        engine.hold("wash", at(3, 10), customer_id="ann")
        clock.advance(timedelta(hours=21))
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="not the class ConsoleNotifier"):
            run_jobs(engine, ConsoleNotifier)  # type: ignore[arg-type]

        assert before == state_hash(engine)


class NoDispatch:
    """A business's policy: the nightly sweeper may expire holds, not send messages."""

    def authorize(self, actor: Actor, permission: Permission, booking: object) -> None:
        if permission is Permission.DISPATCH:
            msg = f"{actor} may not dispatch"
            raise PermissionDeniedError(msg)


class TestRunJobsAsksFirst:
    def test_a_refused_dispatch_expires_no_hold(self) -> None:
        """Allowed to expire but not to dispatch: refused before the sweep, the lapsed hold as it was."""
        from slotengine.adapters.memory import MemoryStorage

        engine, clock = shop(MemoryStorage(), rules=())
        engine.authorization = NoDispatch()
        held = engine.hold("wash", at(3, 10), customer_id="ann")
        clock.advance(timedelta(hours=21))
        before = state_hash(engine)

        with pytest.raises(PermissionDeniedError, match="may not dispatch"):
            run_jobs(engine, RecordingNotifier())

        assert before == state_hash(engine)
        assert BookingStatus.PRE_BOOKING is engine.get(held.id).status

    def test_a_desk_that_may_not_walk_the_lists_expires_no_hold(self) -> None:
        """The desk walks the lists as a customer (its actor): refused before the engine's sweep."""
        from slotengine.adapters.memory import MemoryStorage

        engine, clock = shop(MemoryStorage(), rules=())
        engine.hold("wash", at(3, 10), customer_id="ann")
        clock.advance(timedelta(hours=21))
        before = state_hash(engine)

        with pytest.raises(PermissionDeniedError):
            run_jobs(engine, RecordingNotifier(), desk=EventDesk(engine, actor=Actor.customer("ann")))

        assert before == state_hash(engine)


class TestARuleNarrowedToOtherServices:
    def test_its_planned_reminder_is_withdrawn(self, storage) -> None:
        """The reminder planned for a wash, after the rule is narrowed to polishing: withdrawn, as if removed."""
        engine, clock = shop(storage)
        booking = engine.book("wash", at(3, 12), customer_id="ann")
        engine.dispatch_due(RecordingNotifier())
        engine.setup(attrs.evolve(engine.business(), rules=(attrs.evolve(REMINDER, service_ids=["polish"]),)))
        clock.set(at(3, 10))
        notifier = RecordingNotifier()

        report = engine.dispatch_due(notifier)

        assert ([], 1) == (notifier.sent, report.withdrawn)
        [reminder] = reminders_of(engine, booking.id)
        assert (None, "withdrawn: no longer applies") == (reminder.sent_at, reminder.last_error)

    def test_its_held_notice_is_withdrawn(self, storage) -> None:
        """A notice waiting for its send (the channel failed once) is withdrawn once its rule leaves the service."""
        welcome = NotificationRule("welcome", Template("Hello", "$service"), on={Event.CREATED})
        engine, clock = shop(storage, rules=(welcome,))
        engine.book("wash", at(3, 12), customer_id="ann")
        failing = RecordingNotifier()
        failing.fail_next(10)
        engine.dispatch_due(failing)  # the event and the welcome both wait for a retry
        engine.setup(attrs.evolve(engine.business(), rules=(attrs.evolve(welcome, service_ids=["polish"]),)))
        clock.advance(H)
        notifier = RecordingNotifier()

        report = engine.dispatch_due(notifier)

        assert ["booking.book"] == [m.topic for m in notifier.sent]
        assert 1 == report.withdrawn


class TestTheReportCountsWhatWasWritten:
    def test_a_retry_overtaken_by_a_withdrawal_is_not_counted(self, storage) -> None:
        """The channel fails as the booking is cancelled: the withdrawal stands, and no retry is reported."""
        engine, bob, report = cancel_bob_during_a_failed_send(storage)

        assert (0, 0) == (report.retried, report.failed)
        [reminder] = reminders_of(engine, bob)
        assert (0, "withdrawn: the booking was cancelled") == (reminder.attempts, reminder.last_error)
        assert reminder.failed_at is not None


def test_the_rendered_payload_is_of_the_booking_at_its_send(storage) -> None:
    """A message rendered again before its send shows the booking as it is then (here: its new status)."""
    rule = NotificationRule("status", Template("Status", "$status"), offset=-2 * H)
    engine, clock = shop(storage, rules=(rule,))
    ann = engine.hold("wash", at(2, 16), customer_id="ann")  # held until 04:00 tomorrow
    bob = engine.hold("wash", at(2, 16), customer_id="bob")
    engine.dispatch_due(RecordingNotifier())
    clock.set(at(2, 14))

    class Busy(RecordingNotifier):
        def send(self, message: OutboxMessage) -> None:
            if message.booking_id == ann.id:
                engine.confirm(bob.id)
            super().send(message)

    notifier = Busy()
    engine.dispatch_due(notifier)

    bodies = {m.booking_id: json.loads(m.payload)["body"] for m in notifier.sent}
    assert {ann.id: "pre_booking", bob.id: "confirmed"} == bodies


class NoClaims:
    """A storage that cannot claim messages (no ``swap_outbox``): one dispatcher at a time, as `OutboxClaims` says."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    @contextlib.contextmanager
    def transaction(self, tenant: str) -> Iterator[object]:
        with self.inner.transaction(tenant) as tx:  # type: ignore[attr-defined]
            yield Unclaiming(tx)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class Unclaiming:
    def __init__(self, tx: object) -> None:
        self.tx = tx

    def __getattr__(self, name: str) -> object:
        if name == "swap_outbox":
            raise AttributeError(name)
        return getattr(self.tx, name)


class TestAStorageThatCannotClaim:
    def test_a_withdrawal_during_a_failed_send_is_not_undone_by_the_retry(self) -> None:
        """Without compare-and-set the retry's write compares with the stored message: the withdrawal stands."""
        from slotengine.adapters.memory import MemoryStorage

        engine, bob, report = cancel_bob_during_a_failed_send(NoClaims(MemoryStorage()))

        assert (0, 0) == (report.retried, report.failed)
        [reminder] = reminders_of(engine, bob)
        assert (0, "withdrawn: the booking was cancelled") == (reminder.attempts, reminder.last_error)
        assert reminder.failed_at is not None

    def test_a_reminder_withdrawn_during_an_earlier_send_is_not_sent(self) -> None:
        """The last look before each send works without claims too."""
        from slotengine.adapters.memory import MemoryStorage

        engine, ann, bob, notifier, _report = cancel_bob_during_anns_send(NoClaims(MemoryStorage()))

        assert [ann] == [m.booking_id for m in notifier.sent]
        [withdrawn] = reminders_of(engine, bob)
        assert (None, "withdrawn: the booking was cancelled") == (withdrawn.sent_at, withdrawn.last_error)


def test_a_class_whose_send_needs_no_instance_is_a_notifier() -> None:
    """A class with a static ``send`` still serves (it was accepted before, and it works)."""
    from slotengine.adapters.memory import MemoryStorage

    engine, _clock = shop(MemoryStorage(), rules=())
    engine.book("wash", at(3, 10), customer_id="ann")
    seen: list[str] = []

    class Log:
        @staticmethod
        def send(message: OutboxMessage) -> None:
            seen.append(message.topic)

    assert 1 == engine.dispatch_due(Log).sent  # type: ignore[arg-type]
    assert ["booking.book"] == seen


def test_a_message_at_the_most_attempts_a_message_records_is_given_up() -> None:
    """max_attempts beyond what a message can record: the failure at the bound gives up, no pass raises."""
    from slotengine.adapters.memory import MemoryStorage
    from slotengine.outbox import MAX_ATTEMPTS

    storage = MemoryStorage()
    engine, _clock = shop(storage, rules=())
    engine.book("wash", at(3, 10), customer_id="ann")
    with storage.transaction("n") as tx:
        [message] = tx.list_outbox()
        tx.update_outbox(attrs.evolve(message, attempts=MAX_ATTEMPTS - 1))
        tx.commit()
    notifier = RecordingNotifier()
    notifier.fail_next()

    report = engine.dispatch_due(notifier, max_attempts=10 * MAX_ATTEMPTS)

    assert 1 == report.failed
    [given_up] = engine.outbox()
    assert (MAX_ATTEMPTS, True) == (given_up.attempts, given_up.failed_at is not None)
