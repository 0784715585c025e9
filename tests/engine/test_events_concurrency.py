"""No occurrence ever sells more seats than it has, with buyers racing on every storage adapter."""

from __future__ import annotations

import threading

from conftest import at
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.errors import SoldOutError
from slotengine.events import EventDesk, EventTemplate, Occurrence, Quota, TicketType
from slotengine.lifecycle import LIVE_STATUSES
from slotengine.money import Money
from slotengine.testing.clock import FrozenClock

BUYERS = 12


def test_racing_buyers_never_oversell(engine: BookingEngine, clock: FrozenClock) -> None:
    """Twelve threads buy 1 or 2 tickets each of a 5-seat occurrence with a 2-seat quota: no seat is sold twice."""
    desk = EventDesk(engine)
    template = EventTemplate(
        "talk",
        "Talk",
        engine.services()[0].duration * 4,
        "Europe/Paris",
        5,
        [TicketType("full", "Full", Money("10", "EUR")), TicketType("vip", "VIP", Money("30", "EUR"), quota_id="v")],
        quotas=[Quota("v", 2)],
    )
    desk.upsert_template(template)
    desk.upsert_occurrence(Occurrence("t1", "talk", at(5, 19)))
    barrier = threading.Barrier(BUYERS)
    sold: list[int] = []
    refused: list[int] = []
    errors: list[BaseException] = []

    def buy(n: int) -> None:
        mine = EventDesk(
            BookingEngine(engine.storage, clock=clock, tenant=engine.tenant, default_actor=Actor.system("t"))
        )
        kind, quantity = ("vip", 1) if n % 3 == 0 else ("full", 1 + n % 2)
        barrier.wait()
        try:
            mine.sell("t1", kind, quantity, customer_id=f"c{n}")
            sold.append(n)
        except SoldOutError:
            refused.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(BUYERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live = [b for b in desk.tickets("t1") if b.status in LIVE_STATUSES]
    vip = [b for b in live if "#vip" in b.service_id]

    assert [] == errors
    assert BUYERS == len(sold) + len(refused)
    assert refused  # demand exceeds the seats: the race was real
    assert sum(b.units[0] for b in live) <= 5
    assert sum(b.units[0] for b in vip) <= 2
    assert len(sold) == len(live)
    assert desk.seats_left("t1") == 5 - sum(b.units[0] for b in live)
