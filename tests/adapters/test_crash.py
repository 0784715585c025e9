"""
D1: SIGKILL a writer process in the middle of its booking transactions, many times; nothing partial survives.

A child process opens the storage (SQLite file, or PostgreSQL schema), then loops over use cases on a service
that needs two resources (a room AND a staff member): book, or hold then confirm, and sometimes cancel. After
each call returns (its transaction committed), it appends ``<op> <booking id>`` to an acknowledgement file.
The parent waits until the child is ready, lets it run for a random 20-200 ms, and kills it with SIGKILL;
again and again on the same database. Children are forked from a `multiprocessing` forkserver that has
already imported slotengine, so a kill costs milliseconds, not an interpreter start.

Afterwards, read with plain SQL (not the adapter):

* no partial booking: every booking has both its resource rows, at least one transition, exactly one outbox
  message per transition, and its status is the last transition's;
* no orphans: no resource row, transition, outbox message or idempotency record of a booking that is not there;
* every acknowledged booking is there, and in a status its last acknowledged step allows (a committed step
  whose acknowledgement was lost, the research's "unknown outcome", may have gone further);
* SQLite says ``PRAGMA integrity_check`` ok and finds no foreign key violation;
* the engine still works on that database: one more booking goes through.

Kills: ``SLOTENGINE_CRASH_KILLS`` per backend (default 15) in CI; the ``nightly`` variant runs 300 per
backend, only when ``SLOTENGINE_NIGHTLY=1``. The PostgreSQL run needs ``SLOTENGINE_TEST_POSTGRES_DSN``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import SlotEngineError
from slotengine.model import UNLIMITED, Need, Resource, Service
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
CI_KILLS = int(os.environ.get("SLOTENGINE_CRASH_KILLS", "15"))
NIGHTLY_KILLS = 300
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 1, 8, tzinfo=PARIS)  # the Sunday before the bookable week
TENANT = "crash"
SERVICE = Service(
    "session",
    "Session",
    needs=[Need(resource_ids=["room"]), Need(resource_ids=["staff"])],
    duration=timedelta(minutes=30),
)
STARTS = [datetime(2026, 3, day, hour, minute, tzinfo=PARIS) for day in range(2, 7) for hour in range(9, 17) for minute in (0, 30)]
LIVE_AFTER_CONFIRM = {"confirmed", "paid", "cancelled"}


def _engine(storage: Any, actor: str) -> BookingEngine:
    return BookingEngine(storage, clock=FrozenClock(NOW), tenant=TENANT, default_actor=Actor.system(actor))


def _open(backend: str, target: str) -> Any:
    if backend == "sqlite":
        from slotengine.adapters.sqlite import SQLiteStorage

        return SQLiteStorage(target)
    from slotengine.adapters.postgres import PostgresStorage

    return PostgresStorage(DSN, schema=target, max_size=1)


def _child(backend: str, target: str, ack_path: str, seed: int) -> None:
    """The writer: loops over use cases, acknowledging each one after it returned, until it is killed."""
    storage = _open(backend, target)
    engine = _engine(storage, f"writer-{seed}")
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def ack(op: str, booking_id: str) -> None:
        os.write(fd, f"{op} {booking_id}\n".encode())

    ack("ready", "-")
    rng = random.Random(seed)  # noqa: S311 - a test workload, not cryptography
    n = 0
    while True:
        n += 1
        start = rng.choice(STARTS)
        try:
            if rng.random() < 0.5:
                made = engine.book("session", start, customer_id=f"c{seed}", idempotency_key=f"{seed}-{n}")
                ack("book", made.id)
            else:
                made = engine.hold("session", start, customer_id=f"c{seed}")
                ack("hold", made.id)
                made = engine.confirm(made.id)
                ack("confirm", made.id)
            if rng.random() < 0.3:
                ack("cancel", engine.cancel(made.id).id)
        except SlotEngineError as exc:  # not expected (unlimited resources); recorded for the parent to see
            ack("error", type(exc).__name__)


def _prepare(backend: str, target: str) -> None:
    storage = _open(backend, target)
    try:
        engine = _engine(storage, "setup")
        hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(clock_time(9), clock_time(18))))
        engine.setup(Business("Crash", "Europe/Paris", hours))
        engine.add_resource(Resource("room", "Room", capacity=UNLIMITED))
        engine.add_resource(Resource("staff", "Staff", capacity=UNLIMITED))
        engine.add_service(SERVICE)
    finally:
        storage.close()


def _kill_many(backend: str, target: str, acks_dir: Path, kills: int) -> list[list[str]]:
    """Start and SIGKILL a writer *kills* times; return every complete acknowledgement line, split."""
    ctx = multiprocessing.get_context("forkserver")
    preload = ["slotengine.engine", "slotengine.adapters.sqlite", __name__]
    if backend == "postgres":
        preload.append("slotengine.adapters.postgres")
    ctx.set_forkserver_preload(preload)
    rng = random.Random(20261122)  # noqa: S311 - a test workload, not cryptography
    acks_dir.mkdir()
    lines: list[str] = []
    for n in range(kills):
        ack_path = acks_dir / f"{n}.txt"
        child = ctx.Process(target=_child, args=(backend, target, str(ack_path), n), daemon=True)
        child.start()
        deadline = time.monotonic() + 60
        while not (ack_path.exists() and ack_path.read_text()) and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert ack_path.exists(), f"writer {n} did not start (exit code {child.exitcode})"
        time.sleep(rng.uniform(0.02, 0.2))
        child.kill()
        child.join(30)
        assert -9 == child.exitcode  # it was killed, not finished or crashed on its own
        text = ack_path.read_text()
        lines += text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]  # a torn last line is no ack
    return [line.split(" ", 1) for line in lines if not line.startswith("ready")]


def _rows_sqlite(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
            "foreign_keys": conn.execute("PRAGMA foreign_key_check").fetchall(),
            "bookings": conn.execute("SELECT id, status FROM bookings WHERE tenant = ?", (TENANT,)).fetchall(),
            "resources": conn.execute(
                "SELECT booking_id, resource_id FROM booking_resources WHERE tenant = ?", (TENANT,)
            ).fetchall(),
            "transitions": [json.loads(d) for (d,) in conn.execute("SELECT doc FROM transitions ORDER BY seq")],
            "outbox": [json.loads(d) for (d,) in conn.execute("SELECT doc FROM outbox ORDER BY seq")],
            "idempotency": conn.execute("SELECT booking_id FROM idempotency").fetchall(),
        }
    finally:
        conn.close()


def _rows_postgres(schema: str) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return {
            "integrity": [("ok",)],
            "foreign_keys": [],
            "bookings": conn.execute("SELECT id, status FROM bookings WHERE tenant_id = %s", (TENANT,)).fetchall(),
            "resources": conn.execute(
                "SELECT booking_id, resource_id FROM booking_resources WHERE tenant_id = %s", (TENANT,)
            ).fetchall(),
            "transitions": [d for (d,) in conn.execute("SELECT doc FROM transitions ORDER BY seq")],
            "outbox": [d for (d,) in conn.execute("SELECT doc FROM outbox ORDER BY seq")],
            "idempotency": conn.execute("SELECT booking_id FROM idempotency").fetchall(),
        }


def _check(rows: dict[str, Any], acks: list[list[str]]) -> dict[str, Any]:
    """Every way the stored state could be partial, orphaned or short of what was acknowledged."""
    status = dict(rows["bookings"])
    resources: dict[str, set[str]] = {}
    for booking_id, resource_id in rows["resources"]:
        resources.setdefault(booking_id, set()).add(resource_id)
    steps: dict[str, list[str]] = {}
    for doc in rows["transitions"]:
        steps.setdefault(doc["booking_id"], []).append(doc["to_status"])
    messages = Counter(doc["booking_id"] for doc in rows["outbox"] if doc["topic"].startswith("booking."))
    last_ack = {booking_id: op for op, booking_id in acks}
    return {
        "partial": sorted(
            b
            for b in status
            if resources.get(b) != {"room", "staff"}
            or not steps.get(b)
            or messages[b] != len(steps[b])
            or steps[b][-1] != status[b]
        ),
        "orphans": sorted(
            {*resources, *steps, *messages, *(b for (b,) in rows["idempotency"])} - set(status)
        ),
        "lost": sorted(b for op, b in acks if op in {"book", "hold", "confirm", "cancel"} and b not in status),
        "behind": sorted(
            b
            for b, op in last_ack.items()
            if b in status
            and ((op == "confirm" and status[b] not in LIVE_AFTER_CONFIRM) or (op == "cancel" and status[b] != "cancelled"))
        ),
        "errors": [a for a in acks if a[0] == "error"],
    }


@contextlib.contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield str(tmp_path / "crash.db")
        return
    if not DSN:
        pytest.skip("set SLOTENGINE_TEST_POSTGRES_DSN=postgresql://... to run the PostgreSQL tests")
    pytest.importorskip("psycopg", reason="install slotengine[postgres] to run the PostgreSQL tests")
    import psycopg
    from psycopg import sql

    schema = f"slotengine_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _crash_and_check(backend: str, tmp_path: Path, kills: int) -> None:
    with _database(backend, tmp_path) as target:
        _prepare(backend, target)
        started = time.perf_counter()
        acks = _kill_many(backend, target, tmp_path / "acks", kills)
        elapsed = time.perf_counter() - started
        rows = _rows_sqlite(target) if backend == "sqlite" else _rows_postgres(target)
        found = _check(rows, acks)
        storage = _open(backend, target)
        try:
            after = _engine(storage, "after").book("session", STARTS[0], customer_id="after the crashes")
            stored_after = {b.id for b in _engine(storage, "after").list()}
        finally:
            storage.close()
        unacknowledged = len(rows["bookings"]) - len({b for op, b in acks if op in {"book", "hold"}})
        print(  # noqa: T201 - the figures, for `pytest -s`
            f"\n{backend}: {kills} kills in {elapsed:.1f} s; {len(acks)} acknowledged steps, "
            f"{len(rows['bookings'])} bookings stored ({unacknowledged} committed without their acknowledgement), "
            f"{len(rows['transitions'])} transitions, {len(rows['outbox'])} outbox messages; "
            f"partial {len(found['partial'])}, orphans {len(found['orphans'])}, lost {len(found['lost'])}"
        )

        assert [("ok",)] == rows["integrity"]
        assert [] == rows["foreign_keys"]
        assert {"partial": [], "orphans": [], "lost": [], "behind": [], "errors": []} == found
        assert len(acks) > 0
        assert after.id in stored_after


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_killed_writers_leave_nothing_partial(tmp_path: Path, backend: str) -> None:
    """SIGKILLed writers leave whole bookings only, and every acknowledged one (CI size)."""
    _crash_and_check(backend, tmp_path, CI_KILLS)


@pytest.mark.nightly
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_killed_writers_leave_nothing_partial_nightly(tmp_path: Path, backend: str) -> None:
    """The same with 300 kills per backend; only when SLOTENGINE_NIGHTLY=1."""
    if os.environ.get("SLOTENGINE_NIGHTLY") != "1":
        pytest.skip("set SLOTENGINE_NIGHTLY=1 for 300 kills per backend")
    _crash_and_check(backend, tmp_path, NIGHTLY_KILLS)


def test_the_check_sees_what_it_looks_for() -> None:
    """The after-crash check itself flags a missing resource row, outbox message or status step, orphans, lost acks."""

    def step(booking_id: str, to: str) -> dict[str, str]:
        return {"booking_id": booking_id, "to_status": to}

    def message(booking_id: str) -> dict[str, str]:
        return {"booking_id": booking_id, "topic": "booking.book"}

    rows = {
        "bookings": [("whole", "confirmed"), ("half", "confirmed"), ("silent", "confirmed"), ("stale", "cancelled")],
        "resources": [(b, r) for b in ("whole", "silent", "stale") for r in ("room", "staff")]
        + [("half", "room"), ("ghost", "room")],
        "transitions": [step(b, "confirmed") for b in ("whole", "half", "silent", "stale")],
        "outbox": [message("whole"), message("half"), message("stale")],
        "idempotency": [("gone",)],
    }
    acks = [["book", "whole"], ["book", "lost"], ["cancel", "silent"]]

    found = _check(rows, acks)

    assert ["half", "silent", "stale"] == found["partial"]
    assert ["ghost", "gone"] == found["orphans"]
    assert ["lost"] == found["lost"]
    assert ["silent"] == found["behind"]
