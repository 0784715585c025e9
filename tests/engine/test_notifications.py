"""Notifications: planned with the booking, sent at least once, never twice to a person, never out of turn."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import WASH, at, business, storage_factories
from slotengine._time import is_nonexistent
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import Action
from slotengine.model import Customer, Resource
from slotengine.money import Money
from slotengine.notifications import (
    BITRIX24_RULES,
    EVENT_OF_ACTION,
    Condition,
    Event,
    NotificationRule,
    QuietHours,
    Recipient,
    Template,
    format_local,
    quiet_begin,
    quiet_shift,
)
from slotengine.policies import HoldPolicy
from slotengine.testing.clock import FrozenClock
from slotengine.testing.notifiers import RecordingNotifier
from slotengine.testing.scripts import Advance, run_script
from slotengine.testing.strategies import booking_scripts

STARTS = [at(day, hour, minute) for day in (2, 3, 4) for hour in (9, 10, 16) for minute in (0, 30)]
H = timedelta(hours=1)


def furnished(storage, *, rules=BITRIX24_RULES, quiet=None):
    clock = FrozenClock(at(2, 8))
    counter = iter(range(1, 10**9))
    engine = BookingEngine(
        storage, clock=clock, tenant="n", new_id=lambda: f"id{next(counter)}", default_actor=Actor.system("tests")
    )
    engine.setup(
        attrs.evolve(
            business(hold=HoldPolicy(ttl=timedelta(hours=20))),
            rules=rules,
            quiet_hours=quiet,
            agent="desk",
            links={"confirm": "https://wash.example/c/$booking_id", "cancel": "https://wash.example/x/$booking_id"},
        )
    )
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_resource(Resource("box2", "Box 2", type="box"))
    engine.add_service(WASH)
    return engine, clock


class Channel(RecordingNotifier):
    """A recording notifier that can fail before delivering, or "crash" after delivering (before the record)."""

    def __init__(self, engine: BookingEngine, clock: FrozenClock) -> None:
        super().__init__()
        self.engine, self.clock = engine, clock
        self.modes: list[str] = []
        self.crashes: dict[str, int] = {}
        self.violations: list[str] = []

    def send(self, message):
        mode = self.modes.pop(0) if self.modes else "ok"
        if mode == "fail":
            raise ConnectionError("channel down (simulated)")
        # The engine treats any exception from a notifier as a failed send, so record, never raise.
        try:
            self.check_sound(message)
        except AssertionError as error:
            self.violations.append(f"{message.topic}: {error}")
        super().send(message)
        if mode == "crash":
            self.crashes[message.dedupe_key] = self.crashes.get(message.dedupe_key, 0) + 1
            raise ConnectionResetError("sent, but the record was lost (simulated crash)")

    def check_sound(self, message):
        """A message for a person is sent only while its rule's condition holds, for the booking's current time."""
        payload = json.loads(message.payload)
        if payload["channel"] == "event":
            return
        booking = self.engine.get(message.booking_id)
        rule = next(r for r in self.engine.business().rules if r.id == payload["rule"])
        now = self.clock.now()
        live = booking.status.value in {"pre_booking", "confirmed", "paid"} and (
            booking.hold_until is None or now < booking.hold_until
        )
        # The conditions, written out independently of NotificationRule.holds:
        if rule.condition is Condition.UNCONFIRMED:
            assert booking.status.value == "pre_booking", (message.topic, booking)
            assert live, (message.topic, booking)
        if rule.condition is Condition.CONFIRMED:
            assert booking.status.value in {"confirmed", "paid"}, (message.topic, booking)
        if rule.condition is Condition.NOT_CHECKED_IN:
            assert booking.checked_in_at is None, (message.topic, booking)
        if rule.offset is not None:
            assert live, (message.topic, booking)
        if rule.offset is not None and rule.offset < timedelta(0):
            assert now < booking.start, ("a reminder sent at or after the start", message.topic, booking)
        if message.topic.startswith("remind."):
            assert payload["start"] == booking.start.isoformat(), "a reminder for a moved booking"
            assert booking.takes_time(self.clock.now()), "a reminder for a dead booking"
        assert "$" not in payload["body"]


LIVE_EVENTS = {Event.CREATED, Event.CONFIRMED, Event.PAID, Event.RESCHEDULED}


def should_go(rule, booking, now, fired=None):
    """The send-time rule, written out independently of NotificationRule.holds (*fired*: the notice's events)."""
    live = booking.status.value in {"pre_booking", "confirmed", "paid"} and (
        booking.hold_until is None or now < booking.hold_until
    )
    if rule.offset is not None and not live:
        return False
    if rule.offset is not None and rule.offset < timedelta(0) and now >= booking.start:
        return False  # a reminder of a start that has come
    if rule.offset is None and set(rule.on if fired is None else fired) <= LIVE_EVENTS and not live:
        return False
    if rule.condition is Condition.UNCONFIRMED:
        return booking.status.value == "pre_booking"
    if rule.condition is Condition.CONFIRMED:
        return booking.status.value in {"confirmed", "paid"}
    if rule.condition is Condition.NOT_CHECKED_IN:
        return booking.checked_in_at is None
    return True


def dispatch_and_check(engine, channel, clock):
    """Dispatch, predicting for every due message whether it is sent (or retried) or withdrawn."""
    now = clock.now()
    rules = {r.id: r for r in engine.business().rules}
    before = {m.id: m for m in engine.outbox(pending_only=True) if m.due_at <= now}
    predicted = {}
    for message in before.values():
        payload = json.loads(message.payload)
        if payload["channel"] == "event":
            predicted[message.id] = True
            continue
        booking = engine.get(message.booking_id)
        moved = message.topic.startswith("remind.") and payload["start"] != booking.start.isoformat()
        fired = payload.get("events")
        predicted[message.id] = should_go(rules[payload["rule"]], booking, now, fired) and not moved
    engine.dispatch_due(channel, limit=10_000, max_attempts=1_000)
    after = {m.id: m for m in engine.outbox()}
    for message_id, goes in predicted.items():
        message = after[message_id]
        if goes:
            assert message.sent_at is not None or message.attempts > before[message_id].attempts
            assert message.failed_at is None
        else:
            assert message.failed_at is not None
            assert message.last_error.startswith("withdrawn")


class TestScripts:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        script=booking_scripts("wash", STARTS, max_steps=20),
        failures=st.lists(st.sampled_from(["ok", "ok", "fail", "crash"]), max_size=30),
        quiet=st.booleans(),
    )
    def test_rules_fire_exactly_when_they_should(self, tmp_path_factory, script, failures, quiet):
        """
        Over random scripts with clock moves, failures and crashes between send and record: every message is
        sent only while its condition holds, withdrawn otherwise, every event rule reaches its recipient, each
        person sees a message at most once, and everything due is eventually sent.
        """
        storage = storage_factories(tmp_path_factory)["memory"]()
        engine, clock = furnished(storage, quiet=QuietHours(time(21), time(8)) if quiet else None)
        channel = Channel(engine, clock)
        channel.modes = list(failures)
        # Dispatch after every step of the script, as a relay running in the background would.
        for step in script:
            run_script(engine, clock, [step]) if not isinstance(step, Advance) else None
            if isinstance(step, Advance):
                remaining = step.by
                while remaining > timedelta(0):
                    jump = min(remaining, timedelta(minutes=30))
                    clock.advance(jump)
                    remaining -= jump
                    dispatch_and_check(engine, channel, clock)
            dispatch_and_check(engine, channel, clock)
        channel.modes = []
        for _ in range(6 * 24 * 4):  # four days in 10-minute steps, relay keeps running
            clock.advance(timedelta(minutes=10))
            dispatch_and_check(engine, channel, clock)

        outbox = engine.outbox()
        assert [] == channel.violations
        assert [] == [m for m in outbox if m.sent_at is None and m.failed_at is None], "something is left unsent"
        assert [] == [m for m in outbox if m.failed_at is not None and not m.last_error.startswith("withdrawn")]
        sends: dict[str, int] = {}
        for message in channel.sent:
            sends[message.dedupe_key] = sends.get(message.dedupe_key, 0) + 1
        for key, count in sends.items():
            assert count <= 1 + channel.crashes.get(key, 0), f"{key} sent {count} times"
        delivered = {m.dedupe_key for m in channel.delivered}
        assert len(delivered) == len(channel.delivered)
        expected_events = set()
        for booking in engine.list():
            for version, record in enumerate(engine.transitions(booking.id), 1):
                event = EVENT_OF_ACTION.get(record.action)
                for rule in BITRIX24_RULES:
                    if event is not None and event in rule.on and booking.customer_id is not None:
                        expected_events.add(f"{booking.id}:{rule.id}:v{version}:client:{booking.customer_id}")
        withdrawn = {m.dedupe_key for m in outbox if m.last_error.startswith("withdrawn")}
        assert expected_events <= delivered | withdrawn
        assert not expected_events & delivered & withdrawn


class TestPlanning:
    @pytest.fixture
    def setup(self, storage):
        engine, clock = furnished(storage)
        return engine, clock, RecordingNotifier()

    def test_bitrix_sequence(self, setup):
        """The seeds' sequence: info now, confirm request a day before, agent alert 3 h before, reminder, late."""
        engine, _clock, notifier = setup
        held = engine.hold("wash", at(4, 10), customer=Customer("ann", "Ann", zone="Europe/Paris", language="fr"))
        engine.dispatch_due(notifier)
        info = json.loads(notifier.sent[-1].payload)

        assert ("client:ann", "whatsapp") == (info["recipient"], info["channel"])
        assert "mercredi 4 mars 2026" in info["body"]
        assert "https://wash.example/x/" + held.id in info["body"]
        planned = {m.topic: m.due_at for m in engine.outbox(pending_only=True) if m.topic.startswith("remind.")}
        assert {
            "remind.confirm-request": at(3, 10),
            "remind.agent-alert-unconfirmed": at(4, 7),
            "remind.reminder": at(4, 8),
            "remind.client-late": at(4, 10, 10),
        } == planned

    def test_confirmed_booking_gets_no_confirm_request(self, setup):
        """A booking confirmed meanwhile is not asked to confirm; its reminder still goes."""
        engine, clock, notifier = setup
        engine.hold("wash", at(4, 10), customer_id="ann")
        booking = engine.list()[0]
        engine.confirm(booking.id)
        clock.set(at(4, 8, 1))
        report = engine.dispatch_due(notifier)
        topics = [m.topic for m in notifier.sent]

        assert "remind.confirm-request" not in topics
        assert "remind.agent-alert-unconfirmed" not in topics
        assert "remind.reminder" in topics
        assert report.withdrawn == 2

    def test_reschedule_withdraws_and_replans(self, setup):
        """Moving a booking withdraws its reminders; new ones follow the new time."""
        engine, _clock, _notifier = setup
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        engine.reschedule(booking.id, at(4, 16))
        pending = {m.topic: m.due_at for m in engine.outbox(pending_only=True) if m.topic.startswith("remind.")}
        withdrawn = [m for m in engine.outbox() if m.last_error.startswith("withdrawn: the booking was rescheduled")]

        assert at(4, 14) == pending["remind.reminder"]
        assert 4 == len(withdrawn)

    def test_cancel_withdraws(self, setup):
        """A cancelled booking gets its cancellation event and no reminder at all."""
        engine, clock, notifier = setup
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        engine.cancel(booking.id, by_business=True)
        clock.set(at(5, 0))
        engine.dispatch_due(notifier)

        assert not [m for m in notifier.sent if m.topic.startswith("remind.")]

    def test_a_step_reads_only_its_own_bookings_pending_messages(self, storage):
        """Replanning after a step reads the booking's own pending messages, not the tenant's whole outbox."""
        engine, _clock = furnished(storage)
        others = [engine.book("wash", at(3, hour), customer_id="bob") for hour in (9, 10, 11)]
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        read: list[str] = []
        inner = storage.transaction

        def spying(tenant):
            @contextlib.contextmanager
            def opened():
                with inner(tenant) as tx:
                    original = tx.list_outbox

                    def list_outbox(**kwargs):
                        found = original(**kwargs)
                        read.extend(m.booking_id for m in found)
                        return found

                    tx.list_outbox = list_outbox
                    yield tx

            return opened()

        storage.transaction = spying
        try:
            engine.cancel(booking.id, by_business=True)
        finally:
            del storage.transaction
        pending = {m.booking_id for m in engine.outbox(pending_only=True) if m.topic.startswith("remind.")}

        assert read
        assert {booking.id} == set(read)
        assert {o.id for o in others} == pending

    def test_failures_retry_with_backoff_then_give_up(self, setup):
        """A failing channel is retried with growing delays, then given up, and that is recorded."""
        engine, clock, notifier = setup
        engine.hold("wash", at(4, 10), customer_id="ann")
        notifier.fail_next(10)
        first = engine.dispatch_due(notifier, max_attempts=3, backoff=timedelta(minutes=1))
        clock.advance(timedelta(minutes=1))
        engine.dispatch_due(notifier, max_attempts=3)
        clock.advance(timedelta(minutes=2))
        last = engine.dispatch_due(notifier, max_attempts=3)
        info = next(m for m in engine.outbox() if m.topic == "notify.booking-info")

        assert (first.retried, last.failed) == (2, 2)
        assert (3, True) == (info.attempts, info.failed_at is not None)
        assert "NotifierDown" in info.last_error

    @pytest.mark.parametrize("notifier", ["console", None, object()])
    def test_a_notifier_that_cannot_send_is_refused(self, storage, notifier):
        """A wrong notifier is refused at once; it used to count as failed sends until every message was given up."""
        engine, _clock = furnished(storage)
        engine.hold("wash", at(4, 10), customer_id="ann")
        before = engine.outbox()

        with pytest.raises(InvalidInputError, match="send"):
            engine.dispatch_due(notifier)
        assert before == engine.outbox()

    @pytest.mark.parametrize(
        ("settings_", "field"),
        [
            ({"lease": timedelta(days=3_000_000)}, "lease"),
            ({"lease": timedelta.max}, "lease"),
            ({"lease": timedelta(0)}, "lease"),
            ({"backoff": timedelta.max}, "backoff"),
            ({"backoff": -timedelta(seconds=1)}, "backoff"),
            ({"limit": 0}, "limit"),
            ({"limit": True}, "limit"),
            ({"max_attempts": "5"}, "max_attempts"),
        ],
    )
    def test_dispatch_settings_out_of_reason_are_refused(self, storage, settings_, field):
        """A lease or backoff of ages (it overflowed the clock's arithmetic), or a count below 1: a typed error."""
        engine, _clock = furnished(storage)
        engine.hold("wash", at(4, 10), customer_id="ann")
        before = engine.outbox()

        with pytest.raises(InvalidInputError, match=field):
            engine.dispatch_due(RecordingNotifier(), **settings_)
        assert before == engine.outbox()

    def test_many_failures_wait_a_month_at_most(self, storage):
        """The doubling backoff stops at 30 days: a hundredth failure neither overflows nor waits for ever."""
        engine, clock = furnished(storage, rules=())
        engine.hold("wash", at(4, 10), customer_id="ann")
        [message] = engine.outbox()
        with storage.transaction("n") as tx:
            tx.update_outbox(attrs.evolve(message, attempts=99))
            tx.commit()
        notifier = RecordingNotifier()
        notifier.fail_next()

        report = engine.dispatch_due(notifier, max_attempts=1000)

        [retried] = engine.outbox()
        assert (1, clock.now() + timedelta(days=30)) == (report.retried, retried.due_at)

    def test_two_dispatchers_at_once_send_each_message_once(self, storage):
        """A dispatcher that runs while another is sending finds every message claimed; nothing goes twice."""
        engine, clock = furnished(storage)
        engine.hold("wash", at(4, 10), customer_id="ann")
        engine.book("wash", at(4, 11), customer_id="bob")
        other = RecordingNotifier()
        reports = []

        class Meanwhile(RecordingNotifier):
            def send(self, message):
                if not reports:  # the other dispatcher runs while this one sends its first message
                    reports.append(engine.dispatch_due(other))
                super().send(message)

        first = Meanwhile()
        report = engine.dispatch_due(first)

        assert report.sent > 0
        assert (0, []) == (reports[0].sent, other.sent)
        assert len(first.sent) == len({m.id for m in first.sent}) == report.sent
        clock.advance(timedelta(minutes=10))  # past the lease: nothing left, every claim was settled
        assert 0 == engine.dispatch_due(other).sent

    def test_a_slow_batch_renews_its_claims_so_nothing_goes_twice(self, storage):
        """Sending slower than the lease: each claim is renewed before its send, or left to whoever took it over."""
        engine, clock = furnished(storage)
        for hour in (10, 11, 12):
            engine.book("wash", at(4, hour), customer_id=f"c{hour}")
        other = RecordingNotifier()
        others: list[object] = []

        class Slow(RecordingNotifier):
            def send(self, message):
                clock.advance(timedelta(minutes=4))  # each send outlasts most of the 5-minute lease
                if len(self.sent) == 1 and not others:  # meanwhile another dispatcher runs
                    others.append(engine.dispatch_due(other))
                super().send(message)

        slow = Slow()
        engine.dispatch_due(slow)

        ids = [m.id for m in slow.sent] + [m.id for m in other.sent]
        assert len(ids) == len(set(ids)) == 6  # every due message sent, and once (the reminders are due later)
        assert set(ids) == {m.id for m in engine.outbox() if m.sent_at is not None}
        assert other.sent  # the other dispatcher did take over what the slow one had not reached

    def test_a_withdrawal_does_not_overwrite_another_dispatchers_claim(self, storage):
        """A dispatcher that listed a message before another claimed it leaves the claim alone when withdrawing."""
        engine, clock = furnished(storage, quiet=QuietHours(time(21), time(8)))
        clock.set(at(2, 22))
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        engine.cancel(booking.id, by_business=True)  # the held welcome no longer applies
        clock.set(at(3, 8))
        stale = engine.outbox(pending_only=True)  # what the late dispatcher listed
        [welcome] = [m for m in stale if m.topic == "notify.booking-info"]
        claim = attrs.evolve(welcome, due_at=clock.now() + timedelta(minutes=5))
        with storage.transaction("n") as tx:  # the other dispatcher's claim, made after that listing
            assert tx.swap_outbox(welcome, claim)
            tx.commit()

        class Stale:
            def __init__(self, inner):
                self.inner = inner

            @contextlib.contextmanager
            def transaction(self, tenant):
                with self.inner.transaction(tenant) as tx:
                    yield StaleListing(tx)

            def __getattr__(self, name):
                return getattr(self.inner, name)

        class StaleListing:
            def __init__(self, tx):
                self.tx = tx

            def list_outbox(self, *, pending_only=False, booking_id=None):
                return list(stale) if pending_only else self.tx.list_outbox(booking_id=booking_id)

            def __getattr__(self, name):
                return getattr(self.tx, name)

        late = BookingEngine(Stale(storage), clock=clock, tenant="n", default_actor=Actor.system("late"))
        report = late.dispatch_due(RecordingNotifier())

        assert 0 == report.withdrawn
        assert claim in engine.outbox()

    def test_a_dead_dispatchers_claim_lapses(self, storage):
        """A dispatcher that claimed and died (nothing recorded) lets the messages go when its lease ends."""
        engine, clock = furnished(storage)
        engine.hold("wash", at(4, 10), customer_id="ann")

        class Dies(RecordingNotifier):
            def send(self, message):
                raise SystemExit  # the process dies mid-send: claims written, nothing else

        with pytest.raises(SystemExit):
            engine.dispatch_due(Dies(), lease=timedelta(minutes=3))
        notifier = RecordingNotifier()
        assert 0 == engine.dispatch_due(notifier).sent
        clock.advance(timedelta(minutes=3))
        assert engine.dispatch_due(notifier).sent > 0

    def test_quiet_hours_delay_in_recipient_zone(self, storage):
        """A reminder due at 04:30 for a client in Tokyo waits until 08:00 Tokyo time; in Paris it goes at once."""
        rule = NotificationRule(
            "early", Template("Soon", "$service at $local_time"), offset=-timedelta(hours=20), channel="sms"
        )
        engine, _clock = furnished(storage, rules=(rule,), quiet=QuietHours(time(22), time(8)))
        engine.book("wash", at(4, 16, 30), customer=Customer("ken", zone="Asia/Tokyo"))
        engine.book("wash", at(4, 16, 30), customer=Customer("eve", zone="Europe/Paris"))
        due = {
            json.loads(m.payload)["recipient"]: m.due_at
            for m in engine.outbox(pending_only=True)
            if m.topic == "remind.early"
        }

        # 20 hours before 16:30 Paris is 20:30 Paris the day before, which is 04:30 in Tokyo: quiet there.
        assert at(4, 0) == due["client:ken"]  # 08:00 in Tokyo
        assert at(3, 20, 30) == due["client:eve"]

    def test_a_reminder_is_never_pushed_past_its_start(self, storage):
        """Quiet until 10:00, a 09:00 booking's 2-hours-before reminder goes the evening before, or not at all."""
        rule = NotificationRule("soon", Template("Soon", "$service at $local_time"), offset=-2 * H)
        engine, clock = furnished(storage, rules=(rule,), quiet=QuietHours(time(21), time(10)))

        early = engine.book("wash", at(4, 9), customer=Customer("ann"))
        clock.set(at(4, 22))  # after 20:59 the evening before: too late to remind without waking anyone
        late = engine.book("wash", at(5, 9, 30), customer=Customer("bob"))

        due = {m.booking_id: m.due_at for m in engine.outbox(pending_only=True) if m.topic == "remind.soon"}
        assert {early.id: at(3, 20, 59)} == due
        assert late.id not in due

    def test_longest_ids_still_make_messages(self, storage):
        """A 200-character customer and rule id are valid, so a booking with them plans its messages."""
        rule_id = "r" * 200
        notice = NotificationRule("n" * 200, Template("Booked", "$service"), on=["created"])
        reminder = NotificationRule(rule_id, Template("Soon", "$service"), offset=-H)
        engine, _clock = furnished(storage, rules=(notice, reminder))

        engine.book("wash", at(4, 16), customer=Customer("c" * 200))
        engine.book("wash", at(4, 16), customer=Customer("c" * 199 + "d"))

        keys = [m.dedupe_key for m in engine.outbox() if m.topic.startswith(("notify.", "remind."))]
        assert 4 == len(keys) == len(set(keys))  # a notice and a reminder each
        assert all(len(k) <= 200 for k in keys)

    def test_welcome_held_by_quiet_hours_is_not_sent_after_a_cancellation(self, storage):
        """A welcome waiting for the morning is withdrawn if the client cancels during the night."""
        engine, clock = furnished(storage, quiet=QuietHours(time(21), time(8)))
        clock.set(at(2, 22))
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        clock.set(at(2, 23))
        engine.cancel(booking.id, by_business=True)
        clock.set(at(3, 8))
        notifier = RecordingNotifier()
        report = engine.dispatch_due(notifier)

        assert "notify.booking-info" not in [m.topic for m in notifier.sent]
        assert 1 <= report.withdrawn

    def test_a_welcome_from_a_rule_on_several_events_is_withdrawn_after_a_cancellation(self, storage):
        """
        A rule on ``created`` and ``cancelled`` judges each notice by the event that made it.

        Before, a rule listening to any event a dead booking still hears (``cancelled``) sent its "here is how to
        cancel" welcome, held by the quiet hours, to a client whose booking was cancelled meanwhile.
        """
        rule = NotificationRule("both", Template("About $service", "$service at $local_time"), on=["created", "cancelled"])
        engine, clock = furnished(storage, rules=(rule,), quiet=QuietHours(time(21), time(8)))
        clock.set(at(2, 22))
        booking = engine.book("wash", at(4, 10), customer_id="ann")
        clock.set(at(2, 23))
        engine.cancel(booking.id, by_business=True)
        clock.set(at(3, 8, 5))
        notifier = RecordingNotifier()
        report = engine.dispatch_due(notifier)

        told = [json.loads(m.payload).get("events") for m in notifier.sent if m.topic == "notify.both"]
        assert ([["cancelled"]], 1) == (told, report.withdrawn)

    def test_a_notice_keeps_the_events_that_made_it(self, storage):
        """Paying a hold in full fires ``confirmed`` and ``paid``: a rule on those and more keeps just those two."""
        rule = NotificationRule("steps", Template("x", "$service"), on=["confirmed", "paid", "cancelled"])
        engine, _clock = furnished(storage, rules=(rule,))
        held = engine.hold("wash", at(4, 10), customer_id="ann")
        engine.pay(held.id, Money("20", "EUR"), payment_id="p1")

        [notice] = [m for m in engine.outbox() if m.topic == "notify.steps"]
        assert ["confirmed", "paid"] == json.loads(notice.payload)["events"]

    @pytest.mark.parametrize("event", ["cancelled", "created"])
    def test_a_notice_made_in_quiet_hours_for_an_earlier_start_still_goes(self, storage, event):
        """A notice made at night for a booking that starts before the quiet hours end goes when they end."""
        rule = NotificationRule("told", Template("x", "$service at $local_time"), on=[event])
        engine, clock = furnished(storage, rules=(rule,), quiet=QuietHours(time(21), time(10)))
        booking = engine.book("wash", at(4, 9), customer_id="ann") if event == "cancelled" else None
        clock.set(at(3, 22))
        if booking is not None:
            engine.cancel(booking.id, by_business=True, reason="flooded")
        else:
            engine.book("wash", at(4, 9, 30), customer_id="ann")

        [notice] = [m for m in engine.outbox() if m.topic == "notify.told"]
        assert at(4, 10) == notice.due_at

    def test_a_reminder_is_not_sent_once_its_start_has_come(self, storage):
        """A reminder retried, or held by a relay that was down, until the start it reminds of is withdrawn."""
        rule = NotificationRule("soon", Template("Soon", "$service at $local_time"), offset=-2 * H)
        engine, clock = furnished(storage, rules=(rule,), quiet=QuietHours(time(21), time(10)))
        first = engine.book("wash", at(4, 9), customer_id="ann")  # reminded at 20:59 the evening before
        second = engine.book("wash", at(4, 16), customer_id="bob")  # reminded at 14:00
        notifier = RecordingNotifier()
        engine.dispatch_due(notifier)  # the bookings' own events go now
        notifier.fail_next(1)
        clock.set(at(3, 20, 59))
        assert 1 == engine.dispatch_due(notifier).retried  # the retry waits for the morning: 10:00, after 09:00
        clock.set(at(4, 10))
        report = engine.dispatch_due(notifier)
        clock.set(at(4, 17))  # the relay was down from before 14:00 until after the second start
        late = engine.dispatch_due(notifier)

        assert (0, 1, 0, 1) == (report.sent, report.withdrawn, late.sent, late.withdrawn)
        assert [] == [m for m in notifier.delivered if m.topic == "remind.soon"]
        assert {first.id, second.id} == {
            m.booking_id for m in engine.outbox() if m.last_error == "withdrawn: no longer applies"
        }

    def test_paying_a_hold_in_full_is_confirmed_and_paid(self, storage):
        """A hold paid in full at once is confirmed by that payment: rules on `confirmed` and on `paid` both hear it."""
        rules = (
            NotificationRule("ok", Template("Confirmed", "$service"), on=["confirmed"]),
            NotificationRule("paid", Template("Paid", "$service"), on=["paid"]),
            NotificationRule("both", Template("Both", "$service"), on=["confirmed", "paid"]),
        )
        engine, _clock = furnished(storage, rules=rules)
        held = engine.hold("wash", at(4, 10), customer_id="ann")
        engine.pay(held.id, Money("20", "EUR"), payment_id="p1")

        topics = sorted(m.topic for m in engine.outbox() if m.topic.startswith("notify."))
        assert ["notify.both", "notify.ok", "notify.paid"] == topics

    def test_a_late_payment_sends_no_expiry_notice(self, storage):
        """A lapsed hold paid late (not yet swept) comes back to life: its client is not told it expired."""
        rules = (NotificationRule("gone", Template("Expired", "$service"), on=["expired"]),)
        engine, clock = furnished(storage, rules=rules)
        held = engine.hold("wash", at(4, 10), customer_id="ann")
        clock.set(held.hold_until)
        paid = engine.pay(held.id, Money("20", "EUR"), payment_id="p1")

        assert "paid" == paid.status.value
        assert Action.EXPIRE in [t.action for t in engine.transitions(held.id)]
        assert [] == [m for m in engine.outbox() if m.topic == "notify.gone"]

    def test_a_message_that_cannot_be_rendered_counts_as_given_up(self, storage, monkeypatch):
        """The report counts a message given up because it could not be rendered (it said failed=0)."""
        engine, _clock = furnished(storage)
        engine.hold("wash", at(4, 10), customer_id="ann")

        def broken(*_args):
            raise KeyError("cancel_url")

        monkeypatch.setattr(engine, "_render", broken)
        report = engine.dispatch_due(RecordingNotifier())

        assert 1 == report.failed
        assert 1 == len([m for m in engine.outbox() if m.last_error == "cannot render: KeyError"])

    def test_agent_and_staff_recipients(self, storage):
        """Agent alerts go to the business's agent; staff messages to each person serving the booking."""
        rules = (
            NotificationRule("a", Template("x", "$booking_id"), on=["created"], recipient=Recipient.AGENT),
            NotificationRule("s", Template("x", "$resources"), on=["created"], recipient=Recipient.STAFF),
        )
        engine, _clock = furnished(storage, rules=rules)
        engine.add_resource(Resource("tom", "Tom", kind="user", type="box"))
        engine.book("wash", at(4, 10), pin=["tom"])
        recipients = sorted(
            json.loads(m.payload)["recipient"] for m in engine.outbox() if m.topic.startswith("notify.")
        )

        assert ["agent:desk", "staff:tom"] == recipients


class TestRules:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"template": Template("a", "b")}, "either events"),
            ({"template": Template("a", "b"), "on": ["created"], "offset": H}, "either events"),
            ({"template": Template("a", "b"), "on": ["born"]}, "unknown event"),
            ({"template": Template("a", "b"), "on": ["created"], "condition": "sunny"}, "condition must be"),
            ({"template": Template("a", "b"), "on": ["created"], "recipient": "cat"}, "recipient must be"),
            ({"template": "Hi", "on": ["created"]}, "template must be a Template"),
        ],
    )
    def test_bad_rules(self, kwargs, message):
        """Every bad rule is refused when built."""
        with pytest.raises(InvalidInputError, match=message):
            NotificationRule("r", **kwargs)

    def test_offsets_out_of_reason_are_refused(self):
        """An offset of a billion days was accepted, and every later booking failed with OverflowError."""
        for offset in (-timedelta(days=999_999_999), timedelta(days=367)):
            with pytest.raises(InvalidInputError, match="at most 366 days"):
                NotificationRule("r", Template("a", "b"), offset=offset)
        assert timedelta(days=-366) == NotificationRule("r", Template("a", "b"), offset=timedelta(days=-366)).offset

    def test_business_settings_for_messages_are_checked_whole(self):
        """Rules given as a generator are all kept; a misspelt link placeholder or a link key not a string is refused."""
        rules = (NotificationRule(f"r{i}", Template("a", "b"), on=["created"]) for i in range(5))
        assert 5 == len(attrs.evolve(business(), rules=rules).rules)
        for links, message in (
            ({"cancel": "https://x.example/c?id=$booking_idx"}, "may use \\$booking_id only"),
            ({"cancel": "https://x.example/c?id=$"}, "may use \\$booking_id only"),
            ({1: "https://x.example/$booking_id", "cancle": "x"}, "unknown link"),
        ):
            with pytest.raises(InvalidInputError, match=message):
                attrs.evolve(business(), links=links)

    @pytest.mark.parametrize(("text", "message"), [("Hi $nmae", "unknown placeholder"), ("costs 5$", "stray")])
    def test_bad_templates(self, text, message):
        """A misspelt placeholder or a stray dollar is an error at rule creation, not at send time."""
        with pytest.raises(InvalidInputError, match=message):
            Template("subject", text)

    def test_conditions(self):
        """Conditions read the booking's state at send time."""
        rule = NotificationRule("r", Template("a", "b"), offset=-H, condition=Condition.UNCONFIRMED)

        assert Event.CREATED in BITRIX24_RULES[0].on
        assert rule.condition is Condition.UNCONFIRMED


_MINUTES = st.times().map(lambda t: t.replace(second=0, microsecond=0))
QUIET_CASES = given(
    zone=st.sampled_from([ZoneInfo(z) for z in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe")]),
    due=st.datetimes(datetime(2025, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)),
    start=_MINUTES,
    end=_MINUTES,
)
"""A due instant and quiet hours on whole minutes, in zones with DST changes of an hour and of half an hour."""


class TestHelpers:
    def test_quiet_shift(self):
        """Inside quiet hours a message waits for their end; outside it goes at once."""
        paris = at(2, 0).tzinfo
        quiet = QuietHours(time(21), time(8))

        assert at(3, 8) == quiet_shift(at(2, 23), quiet, paris)
        assert at(3, 8) == quiet_shift(at(3, 3), quiet, paris)
        assert at(3, 12) == quiet_shift(at(3, 12), quiet, paris)
        assert at(3, 8) == quiet_shift(at(3, 8), quiet, paris)

    @QUIET_CASES
    def test_quiet_begin_is_the_start_before_due(self, zone, due, start, end):
        """For a message inside quiet hours, they began at their start time on the wall clock, less than a day before."""
        assume(start != end)
        quiet = QuietHours(start, end)
        assume(quiet_shift(due, quiet, zone) != due)

        begun = quiet_begin(due, quiet, zone)

        assert begun <= due
        assert due - begun < 26 * H
        before = begun - timedelta(minutes=1)
        assert before == quiet_shift(before, quiet, zone)  # the minute before they began is not quiet
        if not is_nonexistent(datetime.combine(begun.astimezone(zone).date(), start), zone):
            assert start == begun.astimezone(zone).time().replace(tzinfo=None)

    def test_quiet_hours_that_begin_in_a_gap_began_at_the_jump(self):
        """Quiet from 02:30, a time Paris skips on 29 March 2026: they began at 03:00 CEST, when the clocks jumped."""
        paris = at(2, 0).tzinfo
        quiet = QuietHours(time(2, 30), time(6))
        due = datetime(2026, 3, 29, 1, 10, tzinfo=UTC)  # 03:10 CEST, inside them

        assert datetime(2026, 3, 29, 1, 0, tzinfo=UTC) == quiet_begin(due, quiet, paris)

    def test_quiet_shift_in_the_fold(self):
        """Due at 02:10 in the second pass of a fall-back night, quiet until 02:30: it waits for the second 02:30."""
        paris = at(2, 0).tzinfo
        due = datetime(2025, 10, 26, 1, 10, tzinfo=UTC)  # 02:10 CET, after the clocks went back from 03:00 CEST

        shifted = quiet_shift(due, QuietHours(time(21), time(2, 30)), paris)

        assert datetime(2025, 10, 26, 1, 30, tzinfo=UTC) == shifted

    @QUIET_CASES
    def test_quiet_shift_never_earlier(self, zone, due, start, end):
        """A message is never moved earlier, and where it is moved it lands outside the quiet hours."""
        assume(start != end)
        quiet = QuietHours(start, end)

        shifted = quiet_shift(due, quiet, zone)

        assert shifted >= due
        assert shifted - due <= 26 * H
        if shifted != due:
            wall = shifted.astimezone(zone).time()
            assert not (start <= wall < end if start < end else wall >= start or wall < end)

    @pytest.mark.parametrize(
        ("language", "expected"),
        [
            ("en", "Wednesday 4 March 2026"),
            ("fr", "mercredi 4 mars 2026"),
            ("ru", "среда, 4 марта 2026 г."),
            ("de", "Mittwoch, 4. März 2026"),
            ("es", "miércoles, 4 de marzo de 2026"),
            ("es-MX", "miércoles, 4 de marzo de 2026"),
            ("xx", "Wednesday 4 March 2026"),
        ],
    )
    def test_format_local(self, language, expected):
        """Dates are written in the recipient's language and zone."""
        assert (expected, "10:00") == format_local(at(4, 10), at(4, 10).tzinfo, language)
