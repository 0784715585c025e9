"""`slotengine.jobs.run_jobs`: one pass of a business's background jobs leaves nothing due behind."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import WASH, H, M, at, business, state_hash
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.events import EventDesk, EventTemplate, Occurrence, TicketType
from slotengine.jobs import JobsReport, run_jobs
from slotengine.lifecycle import BookingStatus
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.testing.clock import FrozenClock
from slotengine.testing.notifiers import RecordingNotifier

WORKER = Actor.system("worker")


def shop(clock: FrozenClock, boxes: int = 1) -> BookingEngine:
    engine = BookingEngine(MemoryStorage(), clock=clock, tenant="wash", default_actor=Actor.system("site"))
    engine.setup(business())
    for n in range(boxes):
        engine.add_resource(Resource(f"box{n}", f"Box {n}", type="box", capacity=100))
    engine.add_service(WASH)
    return engine


def pending(engine: BookingEngine) -> list[object]:
    return [m for m in engine.outbox() if m.sent_at is None and m.failed_at is None]


class TestOnePass:
    @settings(max_examples=60, deadline=None)
    @given(holds=st.integers(0, 30), kept=st.integers(0, 5), batch=st.integers(1, 12))
    def test_a_pass_records_every_lapsed_hold_and_drains_the_outbox(self, holds: int, kept: int, batch: int) -> None:
        """Whatever the backlog and the batch, one pass leaves no lapsed hold and nothing due; a second is idle."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        for _ in range(holds):
            engine.hold("wash", at(3, 10))
        clock.advance(31 * M)  # every hold so far lapsed (the default hold lasts 30 minutes)
        for _ in range(kept):
            engine.hold("wash", at(3, 11))
        notifier = RecordingNotifier()

        report = run_jobs(engine, notifier, batch=batch, actor=WORKER)
        again = run_jobs(engine, notifier, batch=batch, actor=WORKER)

        assert holds == report.expired
        assert 2 * holds + kept == report.sent == len(notifier.sent)  # a hold event each, and an expiry each
        assert [] == pending(engine)
        assert [] == [b for b in engine.list() if b.status is BookingStatus.PRE_BOOKING and b.hold_until <= clock.now()]
        assert JobsReport() == again
        assert (again.idle and not report.idle) or holds + kept == 0

    def test_a_failing_channel_ends_the_pass_and_the_next_pass_goes_on(self) -> None:
        """A send that fails is retried later; the pass stops after that batch instead of looping on the backlog."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        for _ in range(5):
            engine.hold("wash", at(3, 10))
        notifier = RecordingNotifier()
        notifier.fail_next()

        first = run_jobs(engine, notifier, batch=2, actor=WORKER)
        clock.advance(H)  # past the retry's backoff, and every hold lapsed
        second = run_jobs(engine, notifier, batch=2, actor=WORKER)

        assert (1, 1, 0) == (first.sent, first.retried, first.expired)
        assert (5, 9) == (second.expired, second.sent)  # the four left, then five expiries
        assert [] == pending(engine)

    def test_waiting_lists_are_walked_with_a_desk(self) -> None:
        """With the business's events desk, a seat freed by a lapsed hold is offered to the first in line."""
        clock = FrozenClock(at(2, 8))
        engine = BookingEngine(MemoryStorage(), clock=clock, tenant="walks", default_actor=Actor.system("site"))
        engine.setup(business())
        desk = EventDesk(engine)
        desk.upsert_template(EventTemplate("walk", "Walk", 2 * H, "Europe/Paris", 1, [TicketType("adult", "Adult", Money("15", "EUR"))]))
        desk.upsert_occurrence(Occurrence("w1", "walk", at(9, 11)))
        desk.sell("w1", "adult", customer_id="olga")  # a hold on the only seat
        desk.join_waiting_list("w1", "petr", ticket_type="adult")
        clock.advance(engine.business().policies.hold.ttl)

        report = run_jobs(engine, RecordingNotifier(), desk=desk, actor=WORKER)

        assert (1, 1) == (report.expired, report.offers)
        assert ["petr"] == [b.customer_id for b in engine.list() if b.status is BookingStatus.PRE_BOOKING]


class TestRefusals:
    @pytest.mark.parametrize("batch", [0, -1, 10_001, True, 1.5, "10"])
    def test_a_bad_batch_is_refused_before_anything_runs(self, batch: object) -> None:
        """A batch that is not a whole number from 1 to 10,000 is an InvalidInputError, and no hold is swept."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        engine.hold("wash", at(3, 10))
        clock.advance(H)
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="batch"):
            run_jobs(engine, RecordingNotifier(), batch=batch, actor=WORKER)  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_a_notifier_without_send_is_refused_before_the_sweep(self) -> None:
        """The notifier is checked first: a refusal leaves the lapsed hold as it was (it was swept, then refused)."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        engine.hold("wash", at(3, 10))
        clock.advance(H)
        before = state_hash(engine)

        with pytest.raises(InvalidInputError, match="send"):
            run_jobs(engine, None, actor=WORKER)  # type: ignore[arg-type]

        assert before == state_hash(engine)

    def test_a_desk_of_another_business_is_refused(self) -> None:
        """Walking another business's waiting lists in this one's pass would be a tenant mix-up: refused."""
        clock = FrozenClock(at(2, 8))
        engine, other = shop(clock), shop(clock)

        with pytest.raises(InvalidInputError, match="another engine"):
            run_jobs(engine, RecordingNotifier(), desk=EventDesk(other), actor=WORKER)

    def test_a_customer_may_not_run_the_jobs(self) -> None:
        """Expiring holds is staff's or the system's: a customer is refused and nothing changes."""
        clock = FrozenClock(at(2, 8))
        engine = shop(clock)
        engine.hold("wash", at(3, 10))
        clock.advance(H)
        before = state_hash(engine)

        with pytest.raises(PermissionDeniedError):
            run_jobs(engine, RecordingNotifier(), actor=Actor.customer("anna"))

        assert before == state_hash(engine)
