"""
Booking throughput with 1, 4 and 16 concurrent writers on SQLite and PostgreSQL, against bare INSERTs.

Run it with ``python benchmarks/bench_throughput.py`` (about 2.5 minutes; ``--quick`` for 1 s per cell instead
of 3 s). PostgreSQL comes from ``SLOTENGINE_BENCH_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``); its cells are skipped when it cannot be reached.

Every writer is its own process (``multiprocessing``, ``spawn``) with its own `BookingEngine` and its own
storage (`SQLiteStorage` on one fresh file in a temporary directory, synchronous=FULL, the default; or
`PostgresStorage` with a one-connection pool in one fresh schema, dropped at the end). Each writer's engine
reads its catalogue before the race (one ``find_slots``, as a running app's engine has), then all writers of
a cell are released together by a barrier and call ``engine.book`` back to back for a fixed time (3 s per
cell).
Each cell has its own tenant, so it starts empty. The workload (seed 20261122; writer *w* draws from
``random.Random(SEED + w)``, so every run and the bare-INSERT cells draw the same slots):

* **uniform**: 40 resources of capacity 1, one 30-minute service each; a writer books a random resource at a
  random half-hour start between 9:00 and 17:30 (Europe/Paris) on a random one of 60 weekdays from Monday
  2026-03-02: 43,200 possible slots, so a few refusals;
* **hot-slot**: one service that needs one of three resources (capacities 1, 1 and 2); every writer wants
  10:00 on Monday 2026-03-02, so 4 bookings succeed and every other call is refused.

Per cell it prints committed bookings/s, calls/s, the p50 and p99 latency of one ``book`` call (all writers'
calls together), the writer processes' own CPU time per call ("cpu ms": Python and driver, not the server),
the PostgreSQL server's CPU time per call ("srv ms": every process of the server on this host, the writers'
backends and the WAL writer alike, read from ``/proc``; "-" when the server runs elsewhere or for SQLite),
refusals (``ConflictError``), the engine's retries (counted by a storage wrapper: every transaction, or
one-call ``reserve_and_record``, that ended with ``ConcurrencyError``, which the engine then retried) and the
``ConcurrencyError`` that reached the caller ("escaped", should be 0). Afterwards an independent check in
plain SQL over the adapter's tables (not through slotengine) computes, per resource, the highest sum of units
of live rows at any instant and compares it with the resource's capacity, and counts the overlapping pairs of
live rows on capacity-1 resources: "double" is the number of resources over capacity plus those pairs (must be 0).

The "practical limit" rows are the same writers doing the least a database can do for the same promise: a
bare ``INSERT`` with psycopg, one row per transaction, into a PostgreSQL table with the same exclusion
constraint ``EXCLUDE USING gist (tenant_id WITH =, resource_id WITH =, during WITH &&)`` (btree_gist), on the
same uniform slots (a violation counts as a refusal); and, for reference, a bare SQLite ``INSERT`` under
``BEGIN IMMEDIATE`` (WAL, synchronous=FULL, no check at all). The ratio slotengine / raw is printed for the
PostgreSQL uniform cells, each raw cell running right after the slotengine cell it is compared with.

``--server-only`` measures the server's side alone: the engine's requests for the uniform load are recorded
(nothing written), stored in a table, and pgbench (PostgreSQL's C client, whose own cost is next to nothing)
replays them with 1, 4 and 16 clients against a bare INSERT of the same slots in the same order; both
scripts look their request up by a sequence, so both pay that lookup. The ratio it prints is what a client
costing nothing could reach on this server.

Rates on a shared machine drift by tens of percent between runs; compare the ratios of one run, not the
absolute rates of two runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import ConcurrencyError, ConflictError
from slotengine.intervals import Interval
from slotengine.model import Need, Resource, Service
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

try:
    import psycopg
    from psycopg import sql

    import slotengine.adapters.postgres as postgres_module
    from slotengine.adapters.postgres import PostgresStorage
except ImportError:  # pragma: no cover - the PostgreSQL cells are skipped
    psycopg = None  # type: ignore[assignment]

SEED = 20261122
DSN = os.environ.get("SLOTENGINE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
WRITERS = (1, 4, 16)
LOADS = ("uniform", "hot-slot")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 1, 8, tzinfo=PARIS)  # the Sunday before the first slot
FIRST_DAY = datetime(2026, 3, 2, tzinfo=PARIS)  # a Monday
DAYS = 60  # weekdays
UNIFORM_RESOURCES = [f"r{i:02d}" for i in range(40)]
HOT_CAPACITY = {"hot-a": 1, "hot-b": 1, "hot-c": 2}
HOT_SLOT = datetime(2026, 3, 2, 10, tzinfo=PARIS)
LENGTH = timedelta(minutes=30)
BARRIER_TIMEOUT = 120.0
EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
ONE_US = timedelta(microseconds=1)
WEEKDAYS = [d for d in (FIRST_DAY + timedelta(days=i) for i in range(DAYS * 7 // 5 + 7)) if d.weekday() < 5][:DAYS]


def capacities(load: str) -> dict[str, int]:
    return dict.fromkeys(UNIFORM_RESOURCES, 1) if load == "uniform" else dict(HOT_CAPACITY)


def uniform_slot(rng: random.Random) -> tuple[str, datetime]:
    """One random (resource, start): a weekday of the 60, a half-hour start from 9:00 to 17:30, Paris time."""
    resource = rng.choice(UNIFORM_RESOURCES)
    day = rng.choice(WEEKDAYS)
    start = day.replace(hour=9) + timedelta(minutes=30 * rng.randrange(18))
    return resource, start


# --- setup ----------------------------------------------------------------------------------------------------


def setup_tenant(storage: Any, tenant: str, load: str) -> None:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(clock_time(9), clock_time(18))))
    business = Business("Bench", "Europe/Paris", hours)
    if load == "uniform":
        resources = [Resource(rid, rid.upper()) for rid in UNIFORM_RESOURCES]
        services = [
            Service(f"s-{rid}", f"Visit {rid}", needs=[Need(resource_ids=[rid])], duration=LENGTH)
            for rid in UNIFORM_RESOURCES
        ]
    else:
        resources = [Resource(rid, rid.upper(), capacity=cap) for rid, cap in HOT_CAPACITY.items()]
        services = [Service("hot", "Hot visit", needs=[Need(resource_ids=list(HOT_CAPACITY))], duration=LENGTH)]
    with storage.transaction(tenant) as tx:
        tx.put_business(business)
        for resource in resources:
            tx.put_resource(resource)
        for service in services:
            tx.put_service(service)
        tx.commit()


class Counting:
    """A storage that counts the transactions ending with ConcurrencyError: the retries the engine makes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.retries = 0

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with self.inner.transaction(tenant) as tx:
            try:
                yield tx
            except ConcurrencyError:
                self.retries += 1
                raise

    def __getattr__(self, name: str) -> Any:
        """Pass the one-call write (`slotengine.ports.ReserveAndRecord`) through, counting its retries too."""
        if name != "reserve_and_record":
            raise AttributeError(name)
        write = getattr(self.inner, name)  # AttributeError if the storage has no such capability

        def counted(*args: Any, **kwargs: Any) -> None:
            try:
                write(*args, **kwargs)
            except ConcurrencyError:
                self.retries += 1
                raise

        return counted

    def close(self) -> None:
        self.inner.close()


# --- one writer (a spawned process) ---------------------------------------------------------------------------


def _engine_call(engine: BookingEngine, load: str, rng: random.Random) -> None:
    if load == "uniform":
        resource, start = uniform_slot(rng)
        engine.book(f"s-{resource}", start, customer_id="bench")
    else:
        engine.book("hot", HOT_SLOT, customer_id="bench")


def writer(kind: str, target: str, tenant: str, load: str, seconds: float, w: int, barrier: Any, out: Any) -> None:
    """Book back to back for *seconds* after the barrier; put the figures on *out*."""
    rng = random.Random(SEED + w)
    latencies: list[float] = []
    committed = refused = escaped = 0
    call: Any
    closer: Any
    counting: Counting | None = None
    try:
        if kind in {"pg", "sqlite"}:
            inner = (
                PostgresStorage(target, schema=tenant.split("/", maxsplit=1)[0], max_size=1)
                if kind == "pg"
                else (SQLiteStorage(target))
            )
            counting = Counting(inner)
            engine = BookingEngine(
                counting,  # type: ignore[arg-type]
                clock=FrozenClock(NOW),
                tenant=tenant.rsplit("/", maxsplit=1)[-1],
                default_actor=Actor.system(f"writer-{w}"),
            )

            # Like a running app's engine, it has read its catalogue before the race starts (a read, no booking).
            service = "s-r00" if load == "uniform" else "hot"
            engine.find_slots(service, Interval(FIRST_DAY, FIRST_DAY + timedelta(days=1)))

            def call() -> None:
                _engine_call(engine, load, rng)

            closer = counting.close
        elif kind == "raw-pg":
            conn = psycopg.connect(DSN)
            schema, table_tenant = tenant.split("/")
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.commit()

            def call() -> None:
                resource, start = uniform_slot(rng)
                try:
                    conn.execute(
                        "INSERT INTO raw_bookings (tenant_id, resource_id, during) VALUES (%s, %s, tstzrange(%s, %s))",
                        (table_tenant, resource, start, start + LENGTH),
                    )
                    conn.commit()
                except psycopg.errors.ExclusionViolation:
                    conn.rollback()
                    raise ConflictError("overlap") from None

            closer = conn.close
        else:  # raw-sqlite
            lite = sqlite3.connect(target, isolation_level=None, timeout=10.0)
            lite.execute("PRAGMA journal_mode=WAL")
            lite.execute("PRAGMA synchronous=FULL")
            table_tenant = tenant.rsplit("/", maxsplit=1)[-1]

            def call() -> None:
                resource, start = uniform_slot(rng)
                s = (start - EPOCH) // ONE_US
                lite.execute("BEGIN IMMEDIATE")
                lite.execute(
                    "INSERT INTO raw_bookings (tenant, resource_id, start_us, end_us) VALUES (?, ?, ?, ?)",
                    (table_tenant, resource, s, s + LENGTH // ONE_US),
                )
                lite.execute("COMMIT")

            closer = lite.close
        barrier.wait(BARRIER_TIMEOUT)
        cpu = time.process_time()
        started = time.perf_counter()
        end = started + seconds
        now = started
        while now < end:
            try:
                call()
                committed += 1
            except ConflictError:
                refused += 1
            except ConcurrencyError:
                escaped += 1
            after = time.perf_counter()
            latencies.append(after - now)
            now = after
        elapsed = now - started
        cpu = time.process_time() - cpu
        closer()
        retries = counting.retries if counting else None
        out.put((w, latencies, committed, refused, escaped, retries, elapsed, "", cpu))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, and the barrier is broken for all
        barrier.abort()
        out.put((w, latencies, committed, refused, escaped, None, 0.0, f"{type(exc).__name__}: {exc}", 0.0))


def run_cell(kind: str, target: str, tenant: str, load: str, writers: int, seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(writers)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(kind, target, tenant, load, seconds, w, barrier, out)) for w in range(writers)
    ]
    server_processes = len(_postgres_processes())
    for p in procs:
        p.start()
    server = _server_cpu() if kind in {"pg", "raw-pg"} else None
    results = []
    try:
        results.extend(out.get(timeout=BARRIER_TIMEOUT + seconds + 60) for _ in procs)
    except queue.Empty:
        results.append((-1, [], 0, 0, 0, None, 0.0, "a writer did not report in time", 0.0))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    server_after = _settled_server_cpu(server_processes) if server is not None else None
    latencies = sorted(x for r in results for x in r[1])
    errors = [r[7] for r in results if r[7]]
    elapsed = max((r[6] for r in results), default=0.0) or seconds
    committed = sum(r[2] for r in results)
    retries = [r[5] for r in results]
    return {
        "committed": committed,
        "calls": len(latencies),
        "rate": committed / elapsed,
        "call_rate": len(latencies) / elapsed,
        "p50": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "refused": sum(r[3] for r in results),
        "escaped": sum(r[4] for r in results),
        "retries": None if any(r is None for r in retries) else sum(retries),
        "errors": errors,
        "cpu": 1000 * sum(r[8] for r in results) / len(latencies) if latencies else float("nan"),
        "server": (
            1000 * (server_after - server) / len(latencies)
            if server is not None and server_after is not None and latencies
            else None
        ),
    }


# --- the independent checks: plain SQL over the adapter's tables ----------------------------------------------

PG_LIVE = """
    SELECT br.resource_id, b.id, br.units, lower(br.during) AS s, upper(br.during) AS e
    FROM bookings AS b
    JOIN booking_resources AS br ON br.tenant_id = b.tenant_id AND br.booking_id = b.id
    WHERE b.tenant_id = %(tenant)s AND b.status IN ('pre_booking', 'confirmed', 'paid')
      AND (b.hold_until IS NULL OR b.hold_until > %(now)s)
"""
SQLITE_LIVE = """
    SELECT br.resource_id, b.id, br.units, br.blocked_start_us AS s, br.blocked_end_us AS e
    FROM bookings AS b
    JOIN booking_resources AS br ON br.tenant = b.tenant AND br.booking_id = b.id
    WHERE b.tenant = :tenant AND b.status IN ('pre_booking', 'confirmed', 'paid')
      AND (b.hold_until_us IS NULL OR b.hold_until_us > :now)
"""
PEAKS = """
    WITH live AS ({live})
    SELECT x.resource_id, MAX(load) FROM (
        SELECT x.resource_id, x.id, SUM(y.units) AS load
        FROM live AS x JOIN live AS y ON y.resource_id = x.resource_id AND y.s <= x.s AND x.s < y.e
        GROUP BY x.resource_id, x.id
    ) AS x GROUP BY x.resource_id
"""
PAIRS = """
    WITH live AS ({live})
    SELECT a.resource_id, count(*) FROM live AS a JOIN live AS b
      ON b.resource_id = a.resource_id AND a.id < b.id AND a.s < b.e AND b.s < a.e
    GROUP BY a.resource_id
"""
RAW_TABLE = """
    CREATE TABLE raw_bookings (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id text NOT NULL,
        resource_id text NOT NULL,
        during tstzrange NOT NULL,
        EXCLUDE USING gist (tenant_id WITH =, resource_id WITH =, during WITH &&)
    )
"""
RAW_PG_PAIRS = """
    SELECT count(*) FROM raw_bookings AS a JOIN raw_bookings AS b
      ON b.tenant_id = a.tenant_id AND b.resource_id = a.resource_id AND a.id < b.id AND a.during && b.during
    WHERE a.tenant_id = %(tenant)s
"""


def double_bookings(peaks: list[tuple[str, int]], pairs: list[tuple[str, int]], caps: dict[str, int]) -> int:
    """Resources over capacity at some instant, plus overlapping live pairs on capacity-1 resources."""
    over = sum(1 for rid, load in peaks if load > caps[rid])
    return over + sum(n for rid, n in pairs if caps[rid] == 1)


def check_pg(schema: str, tenant: str, load: str) -> tuple[int, int]:
    """(double bookings, live bookings) of one PostgreSQL cell."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        args = {"tenant": tenant, "now": NOW}
        peaks = conn.execute(PEAKS.format(live=PG_LIVE), args).fetchall()  # type: ignore[arg-type]
        pairs = conn.execute(PAIRS.format(live=PG_LIVE), args).fetchall()  # type: ignore[arg-type]
        live = conn.execute(f"SELECT count(DISTINCT id) FROM ({PG_LIVE}) AS l", args).fetchone()  # type: ignore[arg-type]  # noqa: S608
    return double_bookings(peaks, pairs, capacities(load)), live[0] if live else 0


def check_sqlite(path: str, tenant: str, load: str) -> tuple[int, int]:
    """(double bookings, live bookings) of one SQLite cell."""
    conn = sqlite3.connect(path)
    try:
        args = {"tenant": tenant, "now": (NOW - EPOCH) // ONE_US}
        peaks = conn.execute(PEAKS.format(live=SQLITE_LIVE), args).fetchall()
        pairs = conn.execute(PAIRS.format(live=SQLITE_LIVE), args).fetchall()
        live = conn.execute(f"SELECT count(DISTINCT id) FROM ({SQLITE_LIVE})", args).fetchone()  # noqa: S608
    finally:
        conn.close()
    return double_bookings(peaks, pairs, capacities(load)), live[0]


def check_raw_pg(schema: str, tenant: str) -> int:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        row = conn.execute(RAW_PG_PAIRS, {"tenant": tenant}).fetchone()
    return row[0] if row else 0


# --- the run --------------------------------------------------------------------------------------------------


def pg_available() -> bool:
    if psycopg is None:
        return False
    try:
        with psycopg.connect(DSN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def fmt_row(cells: list[str]) -> str:
    widths = (20, 8, 7, 10, 8, 8, 8, 8, 7, 7, 7, 6, 8, 7)
    return "  ".join(c.rjust(wd) if i else c.ljust(wd) for i, (c, wd) in enumerate(zip(cells, widths, strict=True)))


def report(backend: str, load: str, writers: int, r: dict[str, Any], double: int | str, ratio: str = "") -> None:
    retries = "n/a" if r["retries"] is None else str(r["retries"])
    print(
        fmt_row(
            [
                backend,
                load,
                str(writers),
                f"{r['rate']:,.0f}",
                f"{r['call_rate']:,.0f}",
                f"{r['p50']:.2f}",
                f"{r['p99']:.2f}",
                f"{r['cpu']:.2f}",
                "-" if r["server"] is None else f"{r['server']:.2f}",
                str(r["refused"]),
                retries,
                str(r["escaped"]),
                str(double),
                ratio,
            ]
        ),
        flush=True,
    )
    for error in r["errors"]:
        print(f"    error: {error}", flush=True)


def _postgres_processes() -> dict[int, tuple[int, list[str]]]:
    """Every ``postgres`` process on this host now: pid -> (parent pid, its /proc stat fields after the name)."""
    processes: dict[int, tuple[int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        if name == "postgres":
            fields = rest.split()
            processes[int(entry.name)] = (int(fields[1]), fields)
    return processes


def _server_cpu() -> float | None:
    """
    CPU seconds used so far by the PostgreSQL server on this host, or None if none is seen.

    Every ``postgres`` process's own user + system time, plus what the postmaster has collected from its
    exited children (the backends of writers that have closed their connections).
    """
    processes = _postgres_processes()
    if not processes:
        return None
    ticks = 0
    for parent, fields in processes.values():
        ticks += int(fields[11]) + int(fields[12])
        if parent not in processes:  # the postmaster: add its reaped children
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _settled_server_cpu(processes: int) -> float | None:
    """
    `_server_cpu` once the server has at most *processes* processes again (for up to 5 s): the backends of
    connections just closed have then exited and been reaped, so their CPU is in the postmaster's count.
    """
    deadline = time.monotonic() + 5.0
    while len(_postgres_processes()) > processes and time.monotonic() < deadline:
        time.sleep(0.01)
    return _server_cpu()


def _cpu_ticks(pid: int) -> int:
    """User + system CPU of a process on this host, in clock ticks (from /proc; the server's backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def where_time_goes(calls: int = 500) -> None:
    """
    One writer, *calls* uniform bookings, one after the other, in this process: per booking, the statements
    and round trips sent, the wall time, this process's CPU (Python and driver) and the server backend's CPU
    (read from /proc: PostgreSQL must run on this host); the same for the bare INSERT.
    """
    schema = f"slotengine_bench_{uuid.uuid4().hex[:12]}"
    counts = {"statements": 0, "round trips": 0}
    depth = [0]
    original_execute, original_pipeline, original_commit = (
        psycopg.Connection.execute,
        psycopg.Connection.pipeline,
        psycopg.Connection.commit,
    )

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["statements"] += 1
        if not depth[0]:
            counts["round trips"] += 1
            if not self.autocommit and self.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                counts["statements"] += 1  # psycopg sends BEGIN first, in a round trip of its own
                counts["round trips"] += 1
        return original_execute(self, *args, **kwargs)

    @contextmanager
    def pipeline(self: Any) -> Iterator[Any]:
        if not self.autocommit and self.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            counts["statements"] += 1  # BEGIN, queued in the pipeline
        depth[0] += 1
        try:
            with original_pipeline(self) as p:
                yield p
        finally:
            depth[0] -= 1
            if not depth[0]:
                counts["round trips"] += 1

    def commit(self: Any) -> None:
        counts["statements"] += 1
        counts["round trips"] += 1
        original_commit(self)

    original_at_once = postgres_module._reserve_at_once

    def at_once(*args: Any) -> Any:  # the one-statement write goes through libpq, not a cursor
        counts["statements"] += 1
        counts["round trips"] += 1
        return original_at_once(*args)

    try:
        storage = PostgresStorage(DSN, schema=schema, max_size=1)
        setup_tenant(storage, "profile", "uniform")
        engine = BookingEngine(storage, clock=FrozenClock(NOW), tenant="profile", default_actor=Actor.system("p"))
        with storage.transaction("profile") as tx:
            backend = tx._conn.info.backend_pid  # the one pooled connection (max_size=1)
        rng = random.Random(SEED)
        for _ in range(50):  # warm up: prepared statements, caches
            with suppress(ConflictError):
                _engine_call(engine, "uniform", rng)
        psycopg.Connection.execute = execute  # type: ignore[method-assign]
        psycopg.Connection.pipeline = pipeline  # type: ignore[method-assign,assignment]
        psycopg.Connection.commit = commit  # type: ignore[method-assign]
        postgres_module._reserve_at_once = at_once
        server, cpu, wall = _cpu_ticks(backend), time.process_time(), time.perf_counter()
        for _ in range(calls):
            with suppress(ConflictError):
                _engine_call(engine, "uniform", rng)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = (_cpu_ticks(backend) - server) / os.sysconf("SC_CLK_TCK")
        psycopg.Connection.execute, psycopg.Connection.pipeline, psycopg.Connection.commit = (  # type: ignore[method-assign]
            original_execute,
            original_pipeline,
            original_commit,
        )
        postgres_module._reserve_at_once = original_at_once
        storage.close()
        print(
            f"slotengine book      : {counts['statements'] / calls:5.1f} statements in "
            f"{counts['round trips'] / calls:4.1f} round trips; wall {1000 * wall / calls:.2f} ms, "
            f"client CPU {1000 * cpu / calls:.2f} ms, server CPU {1000 * server / calls:.2f} ms per booking"
        )
        with psycopg.connect(DSN) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(RAW_TABLE)
            conn.commit()
            backend = conn.info.backend_pid
            server, cpu, wall = _cpu_ticks(backend), time.process_time(), time.perf_counter()
            for _ in range(calls):
                resource, start = uniform_slot(rng)
                try:
                    conn.execute(
                        "INSERT INTO raw_bookings (tenant_id, resource_id, during) VALUES (%s, %s, tstzrange(%s, %s))",
                        ("profile", resource, start, start + LENGTH),
                    )
                    conn.commit()
                except psycopg.errors.ExclusionViolation:
                    conn.rollback()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            server = (_cpu_ticks(backend) - server) / os.sysconf("SC_CLK_TCK")
        print(
            f"bare INSERT          :   3.0 statements in  3.0 round trips; wall {1000 * wall / calls:.2f} ms, "
            f"client CPU {1000 * cpu / calls:.2f} ms, server CPU {1000 * server / calls:.2f} ms per row"
        )
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


SERVER_ONLY_SCRIPTS = {
    # Both scripts take the next recorded request by a sequence, so both pay the same lookup.
    "slotengine": (
        "SELECT slotengine_reserve('replay', body) FROM bench_requests "
        "WHERE id = (SELECT nextval('bench_next_request'));\n"
    ),
    # The same slot, bare; ON CONFLICT DO NOTHING (which exclusion constraints support) refuses without an
    # error, which pgbench would count as a failure: cheaper than psycopg's error and rollback above.
    "bare INSERT": (
        "INSERT INTO raw_bookings (tenant_id, resource_id, during) "
        "SELECT 'replay-raw', body->'loads'->0->>0, "
        "tstzrange((body->>'start')::timestamptz, (body->>'end')::timestamptz) "
        "FROM bench_requests WHERE id = (SELECT nextval('bench_next_request')) ON CONFLICT DO NOTHING;\n"
    ),
}


def record_requests(storage: Any, requests: int) -> list[str]:
    """
    The `slotengine_reserve` requests of *requests* uniform-load bookings through *storage* (a `PostgresStorage`),
    recorded in place of being sent: nothing is written but the replay tenant's catalogue.
    """
    setup_tenant(storage, "replay", "uniform")
    engine = BookingEngine(storage, clock=FrozenClock(NOW), tenant="replay", default_actor=Actor.system("replay"))
    engine.find_slots("s-r00", Interval(FIRST_DAY, FIRST_DAY + timedelta(days=1)))
    recorded: list[str] = []
    original_at_once = postgres_module._reserve_at_once

    def record(*args: Any) -> Any:  # (connection, tenant, request): nothing is written
        recorded.append(args[2])
        return "ok"

    postgres_module._reserve_at_once = record
    try:
        rng = random.Random(SEED)
        while len(recorded) < requests:
            _engine_call(engine, "uniform", rng)
    finally:
        postgres_module._reserve_at_once = original_at_once
    return recorded


def load_requests(conn: Any, recorded: list[str]) -> None:
    """Make the bare table and ``bench_requests`` (the *recorded* requests, numbered from 1) in *conn*'s schema."""
    conn.execute(RAW_TABLE)
    conn.execute("CREATE TABLE bench_requests (id bigint PRIMARY KEY, body jsonb NOT NULL)")
    # Kept as written, not compressed: a request of about 2.4 KB would be, and slotengine_reserve would then
    # decompress it again on every one of its ~30 reads of a field (`p_request->>'id'`...), which a request
    # arriving from a client never pays (measured: 0.80 against 1.21 ms of server CPU per call).
    conn.execute("ALTER TABLE bench_requests ALTER COLUMN body SET STORAGE PLAIN")
    conn.execute("CREATE SEQUENCE bench_next_request")
    with conn.cursor().copy("COPY bench_requests (id, body) FROM STDIN") as copy:
        for n, request in enumerate(recorded, 1):
            copy.write_row((n, request))
    conn.execute("ANALYZE bench_requests")


def server_only(seconds: float, requests: int = 50_000) -> None:
    """
    The server's side alone: pgbench (PostgreSQL's C client, whose own cost is next to nothing) replays recorded
    `slotengine_reserve` requests of the uniform load with 1, 4 and 16 clients, each cell against a bare INSERT
    of the same slots in the same order: the ratio a client costing nothing could reach on this server.
    """
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        sys.exit("pgbench (PostgreSQL's client tools) is not on PATH; --server-only needs it")
    schema = f"slotengine_bench_{uuid.uuid4().hex[:12]}"
    try:
        storage = PostgresStorage(DSN, schema=schema, max_size=1)
        try:
            recorded = record_requests(storage, requests)
        finally:
            storage.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            load_requests(conn, recorded)
        print(f"{len(recorded):,} recorded requests, {seconds:.0f} s per cell, pgbench -M prepared")
        print("clients  slotengine rows/s  calls/s  srv ms   bare INSERT rows/s  calls/s  srv ms   double  eng/raw")
        with tempfile.TemporaryDirectory(prefix="slotengine-bench-") as tmp:
            for clients in WRITERS:
                cells = [_replay(pgbench, schema, Path(tmp), kind, clients, seconds) for kind in SERVER_ONLY_SCRIPTS]
                (rows, calls, srv, double), (raw_rows, raw_calls, raw_srv, raw_double) = cells
                print(
                    f"{clients:7d}  {rows:17,.0f}  {calls:7,.0f}  {srv:6.2f}   {raw_rows:18,.0f}  {raw_calls:7,.0f}"
                    f"  {raw_srv:6.2f}   {double + raw_double:6d}  {100 * rows / raw_rows:5.0f} %",
                    flush=True,
                )
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _replay(
    pgbench: str, schema: str, tmp: Path, kind: str, clients: int, seconds: float
) -> tuple[float, float, float, int]:
    """One pgbench cell from empty tables and the first recorded request: (rows/s, calls/s, server ms/call, double)."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("TRUNCATE bookings, transitions, outbox, idempotency, raw_bookings")
        conn.execute("SELECT setval('bench_next_request', 1, false)")
    script = tmp / f"{kind.replace(' ', '-')}.sql"
    script.write_text(SERVER_ONLY_SCRIPTS[kind])
    command = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1))]
    command += ["-T", str(round(seconds)), "-f", str(script), DSN]
    server_processes = len(_postgres_processes())
    server = _server_cpu()
    done = subprocess.run(  # noqa: S603 - pgbench from PATH, arguments made here
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": f"-c search_path={schema}"},
    )
    server_after = _settled_server_cpu(server_processes)
    processed = re.search(r"actually processed: (\d+)", done.stdout)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if done.returncode or processed is None or tps is None:
        msg = f"pgbench said something unexpected:\n{done.stdout}{done.stderr}"
        raise RuntimeError(msg)
    calls, rate = int(processed.group(1)), float(tps.group(1))
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        used = conn.execute("SELECT last_value FROM bench_next_request").fetchone()
        total = conn.execute("SELECT count(*) FROM bench_requests").fetchone()
        if used and total and used[0] >= total[0]:
            msg = f"the {kind} cell with {clients} clients used every recorded request; record more"
            raise RuntimeError(msg)
        if kind == "slotengine":
            row = conn.execute("SELECT count(*) FROM bookings WHERE tenant_id = 'replay'").fetchone()
        else:
            row = conn.execute("SELECT count(*) FROM raw_bookings").fetchone()
    double = check_pg(schema, "replay", "uniform")[0] if kind == "slotengine" else check_raw_pg(schema, "replay-raw")
    rows = row[0] if row else 0
    elapsed = calls / rate
    srv = float("nan") if server is None or server_after is None else 1000 * (server_after - server) / calls
    return rows / elapsed, rate, srv, double


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="1 s per cell instead of 3 s")
    parser.add_argument("--postgres-only", action="store_true", help="skip the SQLite cells")
    parser.add_argument(
        "--where", action="store_true", help="only: statements, round trips, client and server CPU of one booking"
    )
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="only: the server's side alone, pgbench replaying recorded requests against the bare INSERT",
    )
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 3.0
    use_pg = pg_available()
    if args.server_only:
        if not use_pg:
            sys.exit(f"PostgreSQL at {DSN} not reachable (or psycopg missing)")
        server_only(seconds)
        return
    if args.where:
        if not use_pg:
            sys.exit(f"PostgreSQL at {DSN} not reachable (or psycopg missing)")
        where_time_goes()
        return
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {seconds:.0f} s per cell, seed {SEED}")
    if not use_pg:
        print(f"PostgreSQL at {DSN} not reachable (or psycopg missing): its cells are skipped")
    print(
        fmt_row(
            [
                "backend",
                "load",
                "writers",
                "bookings/s",
                "calls/s",
                "p50 ms",
                "p99 ms",
                "cpu ms",
                "srv ms",
                "refused",
                "retries",
                "escaped",
                "double",
                "eng/raw",
            ]
        )
    )
    failures = 0
    if not args.postgres_only:
        failures += run_sqlite(seconds)
    if use_pg:
        failures += run_postgres(seconds)
    print(
        "zero double bookings and no escaped ConcurrencyError everywhere: "
        + ("yes" if failures == 0 else f"NO ({failures} problems)")
    )


def run_sqlite(seconds: float) -> int:
    """The SQLite cells; return the number of problems (double bookings, escaped errors, failed writers)."""
    failures = 0
    with tempfile.TemporaryDirectory(prefix="slotengine-bench-") as tmp:
        # SQLite: one fresh file for slotengine, one for the bare INSERTs.
        path = str(Path(tmp) / "bench.sqlite3")
        raw_path = str(Path(tmp) / "raw.sqlite3")
        storage = SQLiteStorage(path)
        for load in LOADS:
            for writers in WRITERS:
                setup_tenant(storage, f"{load}-{writers}", load)
        storage.close()
        raw = sqlite3.connect(raw_path, isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute(
            "CREATE TABLE raw_bookings (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, resource_id TEXT NOT NULL, "
            "start_us INTEGER NOT NULL, end_us INTEGER NOT NULL)"
        )
        raw.close()
        for load in LOADS:
            for writers in WRITERS:
                tenant = f"{load}-{writers}"
                r = run_cell("sqlite", path, tenant, load, writers, seconds)
                double, _live = check_sqlite(path, tenant, load)
                failures += double + r["escaped"] + len(r["errors"])
                report("sqlite", load, writers, r, double)
        for writers in WRITERS:
            r = run_cell("raw-sqlite", raw_path, f"raw-{writers}", "uniform", writers, seconds)
            report("sqlite bare INSERT", "uniform", writers, r, "-")
    return failures


def run_postgres(seconds: float) -> int:
    """The PostgreSQL cells; return the number of problems (double bookings, escaped errors, failed writers)."""
    failures = 0
    schema = f"slotengine_bench_{uuid.uuid4().hex[:12]}"
    try:
        storage = PostgresStorage(DSN, schema=schema, max_size=1)
        for load in LOADS:
            for writers in WRITERS:
                setup_tenant(storage, f"{load}-{writers}", load)
        storage.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(RAW_TABLE)
        for load in LOADS:
            for writers in WRITERS:
                tenant = f"{load}-{writers}"
                r = run_cell("pg", DSN, f"{schema}/{tenant}", load, writers, seconds)
                double, _live = check_pg(schema, tenant, load)
                failures += double + r["escaped"] + len(r["errors"])
                if load != "uniform":
                    report("postgres", load, writers, r, double)
                    continue
                raw_r = run_cell("raw-pg", DSN, f"{schema}/raw-{writers}", load, writers, seconds)
                raw_double = check_raw_pg(schema, f"raw-{writers}")
                ratio = r["rate"] / raw_r["rate"] if raw_r["rate"] else float("nan")
                report("postgres", load, writers, r, double, f"{100 * ratio:.0f} %")
                report("postgres bare INSERT", load, writers, raw_r, raw_double)
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return failures


if __name__ == "__main__":
    main()
