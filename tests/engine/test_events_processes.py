"""
Buyers in separate processes (``spawn``) race for one occurrence's seats on one SQLite file; none is oversold.

Each process runs two threads, each with its own `SQLiteStorage` on the file (so its own connection), all
released together by one `multiprocessing.Barrier`. Afterwards plain ``sqlite3``, not the adapter, counts the
live seats. The module imports no ``conftest``: a spawned child imports it by name to find its target.
"""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import SoldOutError
from slotengine.events import EventDesk, EventTemplate, Occurrence, Quota, TicketType
from slotengine.money import Money
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

PARIS = ZoneInfo("Europe/Paris")
TALK = EventTemplate(
    "talk",
    "Talk",
    timedelta(hours=2),
    "Europe/Paris",
    5,
    [TicketType("full", "Full", Money("10", "EUR")), TicketType("vip", "VIP", Money("30", "EUR"), quota_id="v")],
    quotas=[Quota("v", 2)],
)

PROCESSES = 4
THREADS = 2
NOW = datetime(2026, 3, 2, 8, tzinfo=PARIS)
START = datetime(2026, 3, 5, 19, tzinfo=PARIS)


def _buyer_process(path: str, barrier: Any, results: Any, p: int) -> None:
    """Buy tickets from *THREADS* threads, each with its own storage on *path*; put the outcomes on *results*."""
    found: list[tuple[int, str]] = []
    lock = threading.Lock()

    def buyer(t: int) -> None:
        me = p * THREADS + t
        storage = SQLiteStorage(path)
        try:
            engine = BookingEngine(storage, clock=FrozenClock(NOW), tenant="shop", default_actor=Actor.system("t"))
            desk = EventDesk(engine)
            kind, quantity = ("vip", 1) if me % 3 == 0 else ("full", 1 + me % 2)
            barrier.wait(timeout=60)
            try:
                booking = desk.sell("t1", kind, quantity, customer_id=f"c{me}", confirm=bool(me % 2))
                outcome = (me, f"won {booking.id} {quantity}")
            except SoldOutError:
                outcome = (me, "sold out")
        except Exception as exc:  # noqa: BLE001 - every other outcome is reported and fails the test
            outcome = (me, f"error {type(exc).__name__}: {exc}")
        finally:
            storage.close()
        with lock:
            found.append(outcome)

    threads = [threading.Thread(target=buyer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(found)


def _seats_taken(path: Path, resource_id: str) -> int:
    """Count the live units on *resource_id* with plain sqlite3, not the adapter (holds count while they last)."""
    now_us = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            """
            SELECT COALESCE(SUM(br.units), 0) FROM bookings AS b
            JOIN booking_resources AS br ON br.tenant = b.tenant AND br.booking_id = b.id
            WHERE b.tenant = 'shop' AND br.resource_id = ? AND b.status IN ('pre_booking', 'confirmed', 'paid')
              AND (b.hold_until_us IS NULL OR b.hold_until_us > ?)
            """,
            (resource_id, now_us),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def test_buyers_in_processes_never_oversell_one_sqlite_file(tmp_path: Path) -> None:
    """Eight buyers in four spawned processes race for five seats (two VIP): the file never holds more."""
    path = tmp_path / "events.db"
    storage = SQLiteStorage(path)
    engine = BookingEngine(storage, clock=FrozenClock(NOW), tenant="shop", default_actor=Actor.system("t"))
    engine.setup(
        Business("Talks", "Europe/Paris", Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(18)))))
    )
    desk = EventDesk(engine)
    desk.upsert_template(TALK)
    desk.upsert_occurrence(Occurrence("t1", "talk", START))
    storage.close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES * THREADS)
    results = ctx.Queue()
    processes = [ctx.Process(target=_buyer_process, args=(str(path), barrier, results, p)) for p in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes: list[tuple[int, str]] = []
    try:
        for _ in processes:
            outcomes.extend(results.get(timeout=120))
    except queue.Empty:
        pytest.fail("a buyer process did not report in time")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    sold = sum(int(text.rsplit(" ", 1)[1]) for _, text in outcomes if text.startswith("won "))

    assert [] == [o for o in outcomes if o[1].startswith("error")]
    assert PROCESSES * THREADS == len(outcomes)
    assert any(text == "sold out" for _, text in outcomes)  # demand exceeds the seats: the race was real
    assert sold == _seats_taken(path, "t1#seats") <= 5
    assert _seats_taken(path, "t1#quota:v") <= 2
