"""
Racing buyers, joiners and waiting-list walkers on one occurrence: no seat is sold or offered twice.

Threads share one storage (memory, an SQLite file, PostgreSQL when its DSN is set); the racers in separate
processes are in ``test_events_processes.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conftest import at
from slotengine.authorization import Actor
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import SoldOutError
from slotengine.events import EventDesk, EventTemplate, Occurrence, Quota, TicketType, WaitingState
from slotengine.lifecycle import LIVE_STATUSES
from slotengine.money import Money
from slotengine.testing.clock import FrozenClock

BUYERS = 12
TALK = EventTemplate(
    "talk",
    "Talk",
    timedelta(hours=2),
    "Europe/Paris",
    5,
    [TicketType("full", "Full", Money("10", "EUR")), TicketType("vip", "VIP", Money("30", "EUR"), quota_id="v")],
    quotas=[Quota("v", 2)],
)


def _race(engine: BookingEngine, clock: FrozenClock, racers: int, work: Callable[[EventDesk, int], Any]) -> list[Any]:
    """Run *work* in *racers* threads released together, each with its own engine and desk; return the results."""
    barrier = threading.Barrier(racers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        mine = BookingEngine(engine.storage, clock=clock, tenant=engine.tenant, default_actor=Actor.system("t"))
        barrier.wait()
        try:
            results.append(work(EventDesk(mine), n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == errors
    return results


def test_racing_buyers_never_oversell(engine: BookingEngine, clock: FrozenClock) -> None:
    """Twelve threads buy 1 or 2 tickets each of a 5-seat occurrence with a 2-seat quota: no seat is sold twice."""
    desk = EventDesk(engine)
    desk.upsert_template(TALK)
    desk.upsert_occurrence(Occurrence("t1", "talk", at(5, 19)))

    def buy(mine: EventDesk, n: int) -> bool:
        kind, quantity = ("vip", 1) if n % 3 == 0 else ("full", 1 + n % 2)
        try:
            mine.sell("t1", kind, quantity, customer_id=f"c{n}")
        except SoldOutError:
            return False
        return True

    sold = _race(engine, clock, BUYERS, buy)
    live = [b for b in desk.tickets("t1") if b.status in LIVE_STATUSES]
    vip = [b for b in live if "#vip" in b.service_id]

    assert BUYERS == len(sold)
    assert not all(sold)  # demand exceeds the seats: the race was real
    assert sum(b.units[0] for b in live) <= 5
    assert sum(b.units[0] for b in vip) <= 2
    assert sum(sold) == len(live)
    assert desk.seats_left("t1") == 5 - sum(b.units[0] for b in live)


class TestRacingWaitingLists:
    def test_racing_joins_and_walks_lose_nothing_and_offer_each_seat_once(
        self, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """
        Eight people join at once, then four walkers race twice: everyone is on the list once, in a line; each
        freed seat is offered once, to the first in line, and when the offers lapse, to the next ones.
        """
        desk = EventDesk(engine)
        desk.upsert_template(TALK)
        desk.upsert_occurrence(Occurrence("t1", "talk", at(5, 19)))
        sold = [desk.sell("t1", "full", customer_id=f"s{n}", confirm=True) for n in range(5)]

        _race(engine, clock, 8, lambda mine, n: mine.join_waiting_list("t1", f"w{n}", ticket_type="full"))
        joined = desk.waiting_list("t1")
        for ticket in sold[:3]:
            engine.cancel(ticket.id, by_business=True)
        first = [b for offers in _race(engine, clock, 4, lambda mine, _n: mine.process_waiting_lists()) for b in offers]
        after_first = desk.waiting_list("t1")
        clock.advance(engine.business().policies.hold.ttl)
        second = [
            b for offers in _race(engine, clock, 4, lambda mine, _n: mine.process_waiting_lists()) for b in offers
        ]
        after_second = desk.waiting_list("t1")
        now = clock.now()
        live = [b for b in desk.tickets("t1") if b.status in LIVE_STATUSES and (b.hold_until or now) >= now]

        assert [f"occurrence:t1#{n}" for n in range(1, 9)] == [e.id for e in joined]
        assert {f"w{n}" for n in range(8)} == {e.customer_id for e in joined}
        assert sorted(e.customer_id for e in joined[:3]) == sorted(b.customer_id or "" for b in first)
        assert [WaitingState.OFFERED] * 3 + [WaitingState.WAITING] * 5 == [e.state for e in after_first]
        assert sorted(e.customer_id for e in joined[3:6]) == sorted(b.customer_id or "" for b in second)
        assert [WaitingState.EXPIRED] * 3 + [WaitingState.OFFERED] * 3 + [WaitingState.WAITING] * 2 == [
            e.state for e in after_second
        ]
        assert 5 == len(live)

    def test_a_buyer_racing_the_walkers_never_takes_a_freed_seat(
        self, engine: BookingEngine, clock: FrozenClock
    ) -> None:
        """While people wait, buyers racing the waiting-list walkers get nothing; every freed seat is offered."""
        desk = EventDesk(engine)
        desk.upsert_template(TALK)
        desk.upsert_occurrence(Occurrence("t1", "talk", at(5, 19)))
        sold = [desk.sell("t1", "full", customer_id=f"s{n}", confirm=True) for n in range(5)]
        for n in range(3):
            desk.join_waiting_list("t1", f"w{n}", ticket_type="full")
        for ticket in sold[:2]:
            engine.cancel(ticket.id, by_business=True)

        def race(mine: EventDesk, n: int) -> list[Booking]:
            if n % 2:
                return mine.process_waiting_lists()
            try:
                return [mine.sell("t1", "full", customer_id=f"b{n}")]
            except SoldOutError:
                return []

        taken = [b for found in _race(engine, clock, 6, race) for b in found]

        assert ["w0", "w1"] == sorted(b.customer_id or "" for b in taken)
        assert [WaitingState.OFFERED, WaitingState.OFFERED, WaitingState.WAITING] == [
            e.state for e in desk.waiting_list("t1")
        ]
