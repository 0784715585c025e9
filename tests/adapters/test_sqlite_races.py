"""
C1 + C7: many processes and threads race for one slot on one SQLite file; the storage admits exactly capacity.

4 processes x 4 threads = 16 racers, each thread with its own `SQLiteStorage` (so its own connection, made by
the adapter's real factory) on one file, all released together by one `multiprocessing.Barrier` per trial,
all asking `BookingEngine` to hold or book the same slot of a fresh resource (a fresh tenant per trial).
Every trial must end with exactly ``capacity`` winners and ``ConflictError`` for everyone else: never
"database is locked", never a raw ``sqlite3`` error. At the end an independent plain-``sqlite3`` check over the
file finds no instant over capacity, the callers' ledger equals the stored state, losers left no trace (no
booking, transition or outbox row), and ``PRAGMA integrity_check`` says ok.

Trials: ``SLOTENGINE_RACE_TRIALS`` (default 100) per capacity; the ``nightly`` variant runs 1,000 when
``SLOTENGINE_NIGHTLY=1`` and the same bounded size otherwise. Processes are started with ``spawn`` (safe with
threads).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import ConflictError
from slotengine.intervals import Interval
from slotengine.model import Need, Resource, Service
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

PROCESSES = 4
THREADS = 4
RACERS = PROCESSES * THREADS
CI_TRIALS = int(os.environ.get("SLOTENGINE_RACE_TRIALS", "100"))
NIGHTLY_TRIALS = 1_000 if os.environ.get("SLOTENGINE_NIGHTLY") == "1" else CI_TRIALS

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 2, 8, tzinfo=PARIS)  # a Monday, before opening
SLOT = datetime(2026, 3, 2, 10, tzinfo=PARIS)
BARRIER_TIMEOUT = 120.0
LIVE = ("pre_booking", "confirmed", "paid")


def _tenant(trial: int) -> str:
    return f"trial-{trial}"


def _setup(path: Path, trials: int, capacity: int) -> None:
    """One tenant per trial, each with the same ids: a business, one resource "room", one service on it."""
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(clock_time(9), clock_time(18))))
    business = Business("Race", "Europe/Paris", hours)
    room = Resource("room", "Room", capacity=capacity)
    service = Service("visit", "Visit", needs=[Need(resource_ids=["room"])], duration=timedelta(minutes=30))
    storage = SQLiteStorage(path)
    try:
        for trial in range(trials):
            with storage.transaction(_tenant(trial)) as tx:
                tx.put_business(business)
                tx.put_resource(room)
                tx.put_service(service)
                tx.commit()
    finally:
        storage.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def _race_process(path: str, trials: int, barrier: Any, results: Any, process: int) -> None:
    """Run THREADS racers in this process; put one list of (trial, racer, outcome, detail) on *results*."""
    found: list[tuple[int, int, str, str]] = []
    lock = threading.Lock()

    def racer(thread: int) -> None:
        me = process * THREADS + thread
        clock = FrozenClock(NOW)
        try:
            storage = SQLiteStorage(path)  # this thread's own connection, from the adapter's real factory
        except BaseException as exc:  # noqa: BLE001 - reported, and the barrier is broken for all
            barrier.abort()
            with lock:
                found.append((-1, me, "error", _describe(exc)))
            return
        try:
            for trial in range(trials):
                engine = BookingEngine(storage, clock=clock, tenant=_tenant(trial), default_actor=Actor.system("racer"))
                if me % 4 < 2:
                    # Half the racers have read their catalogue (as a running app's engine has), so they decide
                    # from it and write in one call (`reserve_and_record`), falling back when refused; the others
                    # race them the transactional way from the start.
                    engine.find_slots("visit", Interval(SLOT, SLOT + timedelta(hours=1)))
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    if me % 2:
                        booking = engine.hold("visit", SLOT, customer_id=f"racer-{me}")
                    else:
                        booking = engine.book("visit", SLOT, customer_id=f"racer-{me}")
                    outcome = (trial, me, "won", booking.id)
                except ConflictError:
                    outcome = (trial, me, "conflict", "")
                except Exception as exc:  # noqa: BLE001 - every other outcome is recorded and fails the test
                    outcome = (trial, me, "error", _describe(exc))
                with lock:
                    found.append(outcome)
        except BaseException as exc:  # noqa: BLE001 - a broken barrier: report, and stop everyone quickly
            barrier.abort()
            with lock:
                found.append((-1, me, "error", _describe(exc)))
        finally:
            storage.close()

    threads = [threading.Thread(target=racer, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(found)


def _race(path: Path, trials: int) -> list[tuple[int, int, str, str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_race_process, args=(str(path), trials, barrier, results, p)) for p in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    outcomes: list[tuple[int, int, str, str]] = []
    deadline = time.monotonic() + 60 + trials * 5.0
    try:
        for _ in processes:
            outcomes.extend(results.get(timeout=max(1.0, deadline - time.monotonic())))
    except queue.Empty:
        pytest.fail("a racing process did not report in time")
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert [0] * PROCESSES == [p.exitcode for p in processes]
    return outcomes


def _independent_check(path: Path, trials: int, capacity: int) -> dict[str, Any]:
    """Read the file with plain sqlite3 (not the adapter) and measure what is stored."""
    now_us = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        over = conn.execute(
            """
            WITH live AS (
                SELECT b.tenant, br.resource_id, b.id, br.units, b.blocked_start_us AS s, b.blocked_end_us AS e
                FROM bookings AS b
                JOIN booking_resources AS br ON br.tenant = b.tenant AND br.booking_id = b.id
                WHERE b.status IN ('pre_booking', 'confirmed', 'paid')
                  AND (b.hold_until_us IS NULL OR b.hold_until_us > ?)
            ),
            peaks AS (
                SELECT x.tenant, x.resource_id, x.s, SUM(y.units) AS load
                FROM live AS x
                JOIN live AS y ON y.tenant = x.tenant AND y.resource_id = x.resource_id AND y.s <= x.s AND x.s < y.e
                GROUP BY x.tenant, x.resource_id, x.id
            )
            SELECT tenant, resource_id, MAX(load) FROM peaks GROUP BY tenant, resource_id HAVING MAX(load) > ?
            """,
            (now_us, capacity),
        ).fetchall()
        pairs = conn.execute(
            """
            SELECT COUNT(*) FROM bookings AS a JOIN bookings AS b
              ON b.tenant = a.tenant AND a.id < b.id AND a.start_us < b.end_us AND b.start_us < a.end_us
            WHERE a.status IN ('pre_booking', 'confirmed', 'paid') AND b.status IN ('pre_booking', 'confirmed', 'paid')
            """
        ).fetchone()[0]
        stored = {
            tenant: set(ids.split(",")) if ids else set()
            for tenant, ids in conn.execute("SELECT tenant, group_concat(id) FROM bookings GROUP BY tenant")
        }
        outbox = dict(conn.execute("SELECT tenant, COUNT(*) FROM outbox GROUP BY tenant").fetchall())
        transitions = dict(conn.execute("SELECT tenant, COUNT(*) FROM transitions GROUP BY tenant").fetchall())
    finally:
        conn.close()
    return {
        "integrity": integrity,
        "over_capacity": over,
        "overlapping_pairs": pairs,
        "stored": stored,
        "outbox": outbox,
        "transitions": transitions,
    }


def _run_and_check(tmp_path: Path, trials: int, capacity: int) -> None:
    path = tmp_path / "race.db"
    _setup(path, trials, capacity)
    started = time.perf_counter()
    outcomes = _race(path, trials)
    elapsed = time.perf_counter() - started

    winners: dict[int, set[str]] = {t: set() for t in range(trials)}
    losers: dict[int, int] = dict.fromkeys(range(trials), 0)
    errors = [o for o in outcomes if o[2] == "error"]
    for trial, _racer, outcome, detail in outcomes:
        if outcome == "won":
            winners[trial].add(detail)
        elif outcome == "conflict":
            losers[trial] += 1
    wrong = {t: len(w) for t, w in winners.items() if len(w) != capacity}
    check = _independent_check(path, trials, capacity)
    print(  # noqa: T201 - the figures, for `pytest -s`
        f"\ncapacity {capacity}: {trials} trials x {RACERS} racers in {elapsed:.1f} s "
        f"({1000 * elapsed / trials:.0f} ms/trial); winners {sum(map(len, winners.values()))}, "
        f"conflicts {sum(losers.values())}, errors {len(errors)}, trials with wrong winner count {len(wrong)}, "
        f"over-capacity points {len(check['over_capacity'])}, integrity {check['integrity']}"
    )

    assert [] == errors[:10]
    assert trials * RACERS == len(outcomes)
    assert {} == wrong
    assert all(RACERS - capacity == n for n in losers.values())
    assert [("ok",)] == check["integrity"]
    assert [] == check["over_capacity"]
    if capacity == 1:
        assert 0 == check["overlapping_pairs"]
    # The callers' ledger is the stored state; the losers left no booking, transition or outbox row.
    assert {_tenant(t): w for t, w in winners.items()} == check["stored"]
    assert {_tenant(t): capacity for t in range(trials)} == check["outbox"]
    assert {_tenant(t): capacity for t in range(trials)} == check["transitions"]


@pytest.mark.parametrize("capacity", [1, 3])
def test_exactly_capacity_winners(tmp_path: Path, capacity: int) -> None:
    """16 racers in 4 processes get exactly `capacity` bookings of one slot per trial, the rest ConflictError."""
    _run_and_check(tmp_path, CI_TRIALS, capacity)


@pytest.mark.nightly
@pytest.mark.parametrize("capacity", [1, 3])
def test_exactly_capacity_winners_nightly(tmp_path: Path, capacity: int) -> None:
    """The same race at 1,000 trials per capacity when SLOTENGINE_NIGHTLY=1 (the bounded size otherwise)."""
    _run_and_check(tmp_path, NIGHTLY_TRIALS, capacity)
