"""
`PostgresStorage`: persistence, its schema and migrations, tenant isolation, hostile strings, the backstop, errors.

Every test runs in a schema of its own (``slotengine_test_<random>``), dropped afterwards, so parallel runs
and reruns never meet. Most tests go through `BookingEngine` (the only caller of the port), some talk to the
port directly, and the database is inspected with plain ``psycopg`` where the point is what is really stored
(the catalog, constraints, raw rows). A differential test runs the same operations on `MemoryStorage` (the
reference) and checks that both answer alike. The static tests at the end read the adapter's source
(research note C10, S2, S3). The concurrency proof is in ``test_postgres_races.py``.

Set ``SLOTENGINE_TEST_POSTGRES_DSN`` (``.ci/run`` does) to run them; otherwise they are skipped, saying so.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.capacity import check_capacity
from slotengine.codec import booking_to_dict, dumps, resource_to_dict
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConcurrencyError,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    SlotEngineError,
    StorageError,
)
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus
from slotengine.model import UNLIMITED, Need, Resource, Service
from slotengine.money import Money
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery, IdempotencyRecord
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

try:
    import psycopg
    import psycopg_pool
    from psycopg import sql

    import slotengine.adapters.postgres as postgres_module
    from slotengine.adapters.postgres import SCHEMA_VERSION, PostgresStorage, resource_lock_key
except ImportError:  # pragma: no cover - the tests skip below
    psycopg = None  # type: ignore[assignment]

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
SKIP = "set SLOTENGINE_TEST_POSTGRES_DSN=postgresql://... to run the PostgreSQL tests"
needs_postgres = pytest.mark.skipif(
    not DSN or psycopg is None, reason=SKIP if not DSN else "install slotengine[postgres] to run the PostgreSQL tests"
)
pytestmark = needs_postgres

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)
SOURCE = Path(__file__).parents[2] / "src" / "slotengine" / "adapters" / "postgres.py"
TABLES = {
    "businesses",
    "resources",
    "services",
    "bookings",
    "booking_resources",
    "transitions",
    "outbox",
    "idempotency",
    "documents",
    "catalogue_versions",
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant on day *day* of March 2026, Paris time (2 March is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def business() -> Business:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(clock_time(9), clock_time(18))))
    return Business("Car wash", "Europe/Paris", hours)


WASH = Service("wash", "Wash", needs=[Need(type="box")], duration=30 * M, buffer_after=10 * M, price=Money("20", "EUR"))


def make_engine(
    storage: object, tenant: str = "wash", *, prefix: str = "id", clock: FrozenClock | None = None
) -> BookingEngine:
    counter = itertools.count(1)
    return BookingEngine(
        storage,  # type: ignore[arg-type]
        clock=clock or FrozenClock(at(2, 8)),
        tenant=tenant,
        new_id=lambda: f"{prefix}{next(counter)}",
        default_actor=Actor.system("tests"),
    )


def furnish(engine: BookingEngine, boxes: tuple[str, ...] = ("box1", "box2"), service: Service = WASH) -> None:
    engine.setup(business())
    for box in boxes:
        engine.add_resource(Resource(box, f"Box {box}", type="box"))
    engine.add_service(service)


def snapshot(engine: BookingEngine) -> tuple[object, ...]:
    """Everything the engine stores for its tenant."""
    return (
        engine.business(),
        engine.resources(),
        engine.services(),
        engine.list(),
        engine.transitions(),
        engine.outbox(),
    )


def booking(
    booking_id: str,
    start: datetime,
    end: datetime,
    *,
    resources: tuple[str, ...] = ("r1",),
    units: int = 1,
    status: BookingStatus = BookingStatus.CONFIRMED,
    hold_until: datetime | None = None,
    buffer_before: timedelta = timedelta(0),
    buffer_after: timedelta = timedelta(0),
    **fields: object,
) -> Booking:
    if status is BookingStatus.PRE_BOOKING and hold_until is None:
        hold_until = start
    return Booking(
        booking_id,
        fields.pop("service_id", "s1"),
        start,
        end,
        (Assignment(0, "", resources),),
        (units,),
        status,
        datetime(2026, 1, 1, tzinfo=UTC),
        hold_until=hold_until,
        buffer_before=buffer_before,
        buffer_after=buffer_after,
        **fields,
    )


def catalogue(storage: object, tenant: str, capacities: dict[str, object]) -> None:
    with storage.transaction(tenant) as tx:  # type: ignore[attr-defined]
        for rid, capacity in capacities.items():
            tx.put_resource(Resource(rid, f"Resource {rid}", capacity=capacity))
        tx.commit()


def new_schema_name() -> str:
    return f"slotengine_test_{uuid.uuid4().hex[:12]}"


def drop(schema: str) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def raw(schema: str) -> Any:
    """A plain autocommit psycopg connection with *schema* first on its search_path, for looking at what is stored."""
    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def catalog(schema: str) -> list[tuple[object, ...]]:
    """Every table, column, constraint and index of *schema*, to show that nothing was changed."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        return conn.execute(
            """
            SELECT 'column', c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = %(s)s AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT 'constraint', t.relname, pg_get_constraintdef(k.oid)
            FROM pg_constraint AS k JOIN pg_class AS t ON t.oid = k.conrelid
            JOIN pg_namespace AS n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s
            UNION ALL
            SELECT 'index', tablename, indexdef FROM pg_indexes WHERE schemaname = %(s)s
            ORDER BY 1, 2, 3
            """,
            {"s": schema},
        ).fetchall()


_POOL: list[str] = []  # migrated schemas whose tests left them as made, emptied for the next test
_PRISTINE: list[list[tuple[str, ...]]] = []  # the catalog of a freshly made schema


def _shape(name: str) -> list[tuple[str, ...]]:
    with psycopg.connect(DSN, autocommit=True) as conn:
        versions = conn.execute(
            sql.SQL("SELECT version FROM {}.schema_version ORDER BY version").format(sql.Identifier(name))
        ).fetchall()
    return [tuple(str(v).replace(name, "<schema>") for v in row) for row in [*catalog(name), *versions]]


def _empty(name: str) -> None:
    with psycopg.connect(DSN) as conn:
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(name)))
        conn.execute(
            "DELETE FROM booking_resources; DELETE FROM bookings; DELETE FROM transitions; DELETE FROM outbox; "
            "DELETE FROM idempotency; DELETE FROM services; DELETE FROM resources; DELETE FROM businesses; "
            "DELETE FROM documents"
        )


def _terminate(pid: int) -> None:
    """End one backend, and wait until it is gone (so that its client's next read finds it closed)."""
    with psycopg.connect(DSN, autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone() == (True,)


class _FreezingProxy:
    """A TCP relay to the test server whose connections can be made to go silent (open, but never answering)."""

    def __init__(self, dsn: str) -> None:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        self._target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._frozen: list[socket.socket] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._refusing = False
        port = self._listener.getsockname()[1]
        self.dsn = psycopg.conninfo.make_conninfo(dsn, host="127.0.0.1", hostaddr="127.0.0.1", port=port)
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def cut(self) -> None:
        """Close every connection, and refuse new ones until `restore`: the server is gone, as far as a client sees."""
        with self._lock:
            self._refusing = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        """Relay new connections again."""
        self._refusing = False

    def freeze(self) -> None:
        """Stop relaying on every connection open now; later connections are relayed as usual."""
        with self._lock:
            self._frozen.extend(self._sockets)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while source in self._frozen and not self._closed:
                    time.sleep(0.05)  # silent: what was read is never passed on
                sink.sendall(data)
        except OSError:
            pass


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> Iterator[None]:
    """Make one schema to learn what a pristine one looks like; drop every pooled schema at the end."""
    name = new_schema_name()
    PostgresStorage(DSN, schema=name, max_size=1).close()
    _PRISTINE.append(_shape(name))
    _POOL.append(name)
    yield
    while _POOL:
        drop(_POOL.pop())
    _PRISTINE.clear()


@pytest.fixture
def schema() -> Iterator[str]:
    """A migrated, empty schema of this test's own (made afresh, or emptied after an earlier test)."""
    name = _POOL.pop() if _POOL else new_schema_name()
    yield name
    try:
        pristine = _shape(name) == _PRISTINE[0]
    except psycopg.Error:
        pristine = False
    if pristine:
        _empty(name)
        _POOL.append(name)
    else:
        drop(name)


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    """The name of a schema that does not exist yet (dropped afterwards)."""
    name = new_schema_name()
    yield name
    drop(name)


def _schema_at_version(conn: Any, name: str, version: int) -> None:
    """Create schema *name* as slotengine's migrations up to *version* left it (search_path set to it)."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(name)))
    for step in range(version):
        for statement in postgres_module._MIGRATIONS[step]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (step + 1,))


def _three_resources(conn: Any) -> None:
    """Resources r1 and r2 (capacity 1) and r3 (capacity 3) of tenant t, written in SQL into an older schema."""
    for rid, capacity in (("r1", 1), ("r2", 1), ("r3", 3)):
        conn.execute(
            "INSERT INTO resources (tenant_id, id, capacity, doc) VALUES ('t', %s, %s, %s::jsonb)",
            (rid, capacity, dumps(resource_to_dict(Resource(rid, rid.upper(), capacity=capacity)))),
        )


def _held_on_r2() -> Booking:
    """A hold on r2, 10:00-11:00 on the 3rd, that lapsed at 9:00 on the 2nd."""
    return booking(
        "held", at(3, 10), at(3, 11), resources=("r2",), status=BookingStatus.PRE_BOOKING, hold_until=at(2, 9)
    )


@pytest.fixture
def storage(schema: str) -> Iterator[PostgresStorage]:
    made = PostgresStorage(DSN, schema=schema, max_size=4)
    yield made
    made.close()


@pytest.fixture
def engine(storage: PostgresStorage) -> BookingEngine:
    made = make_engine(storage)
    furnish(made)
    return made


# --- persistence ---------------------------------------------------------------------------------------------


class TestPersistence:
    def test_everything_survives_closing_and_reopening(self, fresh_schema: str) -> None:
        """Business, catalogue order, bookings, the log, the outbox and idempotency keys survive a restart."""
        storage = PostgresStorage(DSN, schema=fresh_schema)
        engine = make_engine(storage)
        furnish(engine, boxes=("box2", "box1", "box3"))
        held = engine.hold("wash", at(2, 10), customer_id="ann", idempotency_key="k1")
        booked = engine.book("wash", at(2, 11), customer_id="bob", notes="line one\nline two")
        engine.pay(booked.id, Money("20", "EUR"), payment_id="pay-1")
        engine.cancel(held.id)
        before = snapshot(engine)
        storage.close()

        reopened = PostgresStorage(DSN, schema=fresh_schema)
        again = make_engine(reopened, prefix="other")
        after = snapshot(again)
        replayed = again.hold("wash", at(2, 10), customer_id="ann", idempotency_key="k1")
        reopened.close()

        assert before == after
        assert ["box2", "box1", "box3"] == [r.id for r in after[1]]  # type: ignore[attr-defined]
        assert held.id == replayed.id

    def test_replacing_a_resource_keeps_its_place(self, storage: PostgresStorage) -> None:
        """put_resource on an existing id replaces it in place, as MemoryStorage does."""
        engine = make_engine(storage)
        furnish(engine, boxes=("a", "b", "c"))
        engine.add_resource(Resource("a", "Renamed", type="box"))

        assert [("a", "Renamed"), ("b", "Box b"), ("c", "Box c")] == [(r.id, r.name) for r in engine.resources()]

    def test_uncommitted_and_failed_transactions_leave_nothing(self, storage: PostgresStorage, schema: str) -> None:
        """Leaving without commit, or by an exception, rolls back every write of the transaction."""
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "One"))
            seen = tx.get_resource("r1").name  # a transaction reads its own writes

        def fail() -> None:
            with storage.transaction("t") as tx:
                tx.put_resource(Resource("r2", "Two"))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail()
        with storage.transaction("t") as tx:
            found = tx.list_resources()
        with raw(schema) as conn:
            rows = conn.execute("SELECT count(*) FROM resources").fetchone()[0]

        assert "One" == seen
        assert [] == found
        assert 0 == rows


# --- schema and migrations -------------------------------------------------------------------------------------


OPEN_AT_ONCE = """
import os, sys
from slotengine.adapters.postgres import PostgresStorage

dsn, schema, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
go_r, go_w = os.pipe()
out_r, out_w = os.pipe()
children = []
for _ in range(n):  # fork before any thread or connection exists: every child imported everything already
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.read(go_r, 1)
        try:
            PostgresStorage(dsn, schema=schema, max_size=1).close()
            line = "ok"
        except BaseException as exc:
            line = f"{type(exc).__name__}: {exc}".replace(chr(10), " ")
        os.write(out_w, (line + chr(10)).encode())
        os._exit(0)
    children.append(pid)
os.write(go_w, b"x" * n)  # release all of them at once
for pid in children:
    os.waitpid(pid, 0)
os.close(out_w)
chunks = []
while chunk := os.read(out_r, 65536):
    chunks.append(chunk)
sys.stdout.write(b"".join(chunks).decode())
"""


class TestSchema:
    def test_a_new_schema_gets_the_current_version(self, storage: PostgresStorage, schema: str) -> None:
        """A new schema holds every table and one schema_version row per version up to SCHEMA_VERSION; btree_gist too."""
        with raw(schema) as conn:
            versions = conn.execute("SELECT version FROM schema_version").fetchall()
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
            gist = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'").fetchone()[0]

        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions
        assert {*TABLES, "schema_version"} == tables
        assert 1 == gist

    def test_migrate_false_opens_only_a_current_schema(self, fresh_schema: str) -> None:
        """App servers opened with migrate=False refuse a missing or older schema and change nothing."""
        with pytest.raises(StorageError, match="migrate=False"):
            PostgresStorage(DSN, schema=fresh_schema, migrate=False)
        with psycopg.connect(DSN, autocommit=True) as conn:
            assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (fresh_schema,)).fetchone() is None
            with conn.transaction():
                _schema_at_version(conn, fresh_schema, SCHEMA_VERSION - 1)
        with pytest.raises(StorageError, match=f"version {SCHEMA_VERSION - 1} and this slotengine needs") as info:
            PostgresStorage(DSN, schema=fresh_schema, migrate=False)
        assert SCHEMA_VERSION - 1 == info.value.details["schema_version"]
        with pytest.raises(InvalidInputError, match="migrate"):
            PostgresStorage(DSN, schema=fresh_schema, migrate="no")  # type: ignore[arg-type]

        PostgresStorage(DSN, schema=fresh_schema).close()  # the release step
        with PostgresStorage(DSN, schema=fresh_schema, migrate=False) as storage:
            catalogue(storage, "t", {"r1": 1})

    def test_a_version_3_schema_is_upgraded_in_place(self, fresh_schema: str) -> None:
        """
        Version 3 -> 4: the resource rows get their booking's interval and hold, the foreign key to bookings
        goes (deleting a booking still removes its rows), and what was booked stays booked.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 3)
            _three_resources(conn)
            old = [
                booking("firm", at(3, 10), at(3, 11), resources=("r1", "r3"), buffer_after=15 * M),
                _held_on_r2(),
                booking("gone", at(3, 12), at(3, 13), status=BookingStatus.CANCELLED),
            ]
            for b in old:
                live = b.status in LIVE_STATUSES
                conn.execute(
                    """
                    INSERT INTO bookings (tenant_id, id, status, during, blocked, hold_until, customer_id, source,
                                          external_ref, service_id, version, doc)
                    VALUES ('t', %s, %s, tstzrange(%s, %s), tstzrange(%s, %s), %s, NULL, 'site', NULL, 's1', 1,
                            %s::jsonb)
                    """,
                    (
                        b.id,
                        b.status.value,
                        b.start,
                        b.end,
                        b.start - b.buffer_before,
                        b.end + b.buffer_after,
                        b.hold_until,
                        dumps(booking_to_dict(b)),
                    ),
                )
                for pos, rid in enumerate(b.resource_ids):
                    conn.execute(
                        """
                        INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during,
                                                       live, exclusive)
                        VALUES ('t', %s, %s, %s, 1, tstzrange(%s, %s), %s, %s)
                        """,
                        (b.id, pos, rid, b.start - b.buffer_before, b.end + b.buffer_after, live, live and rid != "r3"),
                    )

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        try:
            with storage.transaction("t") as tx:
                loads = sorted(
                    (ld.booking_id, ld.resource_id, ld.interval.start, ld.blocked.end, ld.hold_until)
                    for ld in tx.loads(["r1", "r2", "r3"], Interval(at(3, 0), at(4, 0)))
                )
            refused = []
            for b in (
                booking("x", at(3, 11), at(3, 12)),
                booking("y", at(3, 10, 30), at(3, 11), resources=("r3",), units=3),
            ):
                with pytest.raises(ConflictError), storage.transaction("t") as tx:
                    tx.reserve(b, now=at(2, 8))
                refused.append(b.id)
            with storage.transaction("t") as tx:  # the hold lapsed at 9:00 on the 2nd
                tx.reserve(booking("over-the-lapsed-hold", at(3, 10), at(3, 11), resources=("r2",)), now=at(2, 10))
                tx.commit()
            with raw(fresh_schema) as conn:
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
                foreign = conn.execute(
                    "SELECT count(*) FROM pg_constraint WHERE conrelid = 'booking_resources'::regclass AND contype = 'f'"
                ).fetchone()[0]
                conn.execute("DELETE FROM bookings WHERE id = 'firm'")
                rows = conn.execute("SELECT DISTINCT booking_id FROM booking_resources ORDER BY 1").fetchall()
        finally:
            storage.close()

        assert [
            ("firm", "r1", at(3, 10), at(3, 11, 15), None),
            ("firm", "r3", at(3, 10), at(3, 11, 15), None),
            ("held", "r2", at(3, 10), at(3, 11), at(2, 9)),
        ] == loads
        assert ["x", "y"] == refused
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions
        assert 1 == foreign  # the one to resources stays
        assert [("gone",), ("held",), ("over-the-lapsed-hold",)] == rows

    def test_a_version_4_schema_gets_the_keyed_one_call_write(self, fresh_schema: str) -> None:
        """
        Version 4 -> 5: slotengine_reserve learns to save an idempotency record with the booking, and refuses
        (writing nothing) a key that exists; version 4's function ignored the record.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 4)
            conn.execute(
                "INSERT INTO resources (tenant_id, id, capacity, doc) VALUES ('t', 'r1', 1, %s::jsonb)",
                (dumps(resource_to_dict(Resource("r1", "R1"))),),
            )
            first = booking("first", at(3, 10), at(3, 11))
            key = IdempotencyRecord("k1", "hash", first.id, '"first"', at(2, 8))
            request = postgres_module._reserve_request(first, now=at(2, 8), idempotency=key)
            answer = conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()
            kept = conn.execute("SELECT count(*) FROM idempotency").fetchone()

        assert ("ok",) == answer
        assert (0,) == kept  # version 4 wrote the booking and dropped the record

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        try:
            second = booking("second", at(3, 12), at(3, 13))
            with storage.transaction("t") as tx:
                version = tx.catalogue_version()
            again = IdempotencyRecord("k2", "hash", second.id, '"second"', at(2, 8))
            storage.reserve_and_record(
                "t", second, now=at(2, 8), transitions=[], outbox=[], catalogue_version=version, idempotency=again
            )
            third = booking("third", at(3, 14), at(3, 15))
            with pytest.raises(ConcurrencyError, match="idempotency key 'k2' was used meanwhile"):
                storage.reserve_and_record(
                    "t",
                    third,
                    now=at(2, 8),
                    transitions=[],
                    outbox=[],
                    catalogue_version=version,
                    idempotency=attrs.evolve(again, booking_id=third.id),
                )
            with storage.transaction("t") as tx:
                saved = tx.get_idempotency("k2")
                ids = [b.id for b in tx.find_bookings(BookingQuery())]
            with raw(fresh_schema) as conn:
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        finally:
            storage.close()

        assert again == saved
        assert ["first", "second"] == ids  # the refused third wrote nothing
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions
        assert SCHEMA_VERSION == 12
        assert f"ERRCODE = '{postgres_module._KEY_TAKEN}'" in postgres_module._RESERVE_FUNCTION

    def test_a_version_8_schema_keeps_its_guarantee_in_one_gist_index(self, fresh_schema: str) -> None:
        """
        Version 8 -> 9: a resource's three indexes become the exclusion constraint's one, over every row; it
        refuses the overlaps version 8's refused and no others, and the bookings written before are read as before.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 8)
            _three_resources(conn)
            for b in (
                booking("firm", at(3, 10), at(3, 11), resources=("r1", "r3"), customer_id="c1", external_ref="x1"),
                _held_on_r2(),
                booking("shared", at(3, 10), at(3, 12), resources=("r3",), units=2),
                booking("gone", at(3, 12), at(3, 13), status=BookingStatus.CANCELLED),
            ):
                request = postgres_module._reserve_request(b, now=at(2, 8))
                assert ("ok",) == conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        try:
            day = Interval(at(3, 0), at(4, 0))
            with storage.transaction("t") as tx:
                on_r1 = [b.id for b in tx.find_bookings(BookingQuery(resource_id="r1", period=day))]
                by_customer = [b.id for b in tx.find_bookings(BookingQuery(customer_id="c1"))]
                by_ref = [b.id for b in tx.find_bookings(BookingQuery(external_ref="x1"))]
                loads = sorted((ld.booking_id, ld.resource_id) for ld in tx.loads(["r1", "r2", "r3"], day))
            with pytest.raises(ConflictError), storage.transaction("t") as tx:
                tx.reserve(booking("late", at(3, 10, 30), at(3, 11, 30)), now=at(2, 8))
            with storage.transaction("t") as tx:  # the hold on r2 lapsed at 9:00 on the 2nd
                tx.reserve(booking("after-the-hold", at(3, 10), at(3, 11), resources=("r2",)), now=at(2, 10))
                tx.commit()
            with raw(fresh_schema) as conn:
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
                indexes = conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'booking_resources'"
                    " ORDER BY indexname",
                    (fresh_schema,),
                ).fetchall()
                insert = """
                    INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, booked,
                                                   live, exclusive)
                    VALUES ('t', %s, 0, %s, 1, tstzrange(%s, %s), tstzrange(%s, %s), %s, %s)
                """
                span = (at(3, 10), at(3, 11)) * 2
                with pytest.raises(psycopg.errors.ExclusionViolation):  # the backstop, past any check
                    conn.execute(insert, ("sneak", "r1", *span, True, True))
                for rid, live, exclusive in (("r1", False, False), ("r1", True, False), ("r3", True, False)):
                    conn.execute(insert, (f"{rid}-{live}-{exclusive}", rid, *span, live, exclusive))
        finally:
            storage.close()

        assert ["firm", "gone"] == on_r1  # cancelled ones too: the query asked for no status
        assert (["firm"], ["firm"]) == (by_customer, by_ref)
        assert [("firm", "r1"), ("firm", "r3"), ("held", "r2"), ("shared", "r3")] == loads
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions
        assert [("booking_resources_no_overlap",), ("booking_resources_pkey",)] == indexes

    def test_a_version_9_schema_gets_domains_without_a_rewrite(self, fresh_schema: str) -> None:
        """
        Version 9 -> 10: the columns' checks move to domains and the rows stay where they are (no table is
        rewritten); the rows written before are read back, and what the old checks refused is still refused.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 9)
            _three_resources(conn)
            for b in (booking("firm", at(3, 10), at(3, 11), resources=("r3",), units=2), _held_on_r2()):
                request = postgres_module._reserve_request(b, now=at(2, 8))
                assert ("ok",) == conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()
            files = "SELECT relname, relfilenode FROM pg_class WHERE relname IN ('bookings', 'booking_resources')"
            before = sorted(conn.execute(files).fetchall())

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        day = Interval(at(3, 0), at(4, 0))
        try:
            with storage.transaction("t") as tx:
                found = sorted((b.id, b.status, b.hold_until) for b in tx.find_bookings(BookingQuery()))
                loads = sorted((ld.booking_id, ld.resource_id, ld.units) for ld in tx.loads(["r1", "r2", "r3"], day))
            refused = []
            with raw(fresh_schema) as conn:
                after = sorted(conn.execute(files).fetchall())
                for statement in (
                    "UPDATE bookings SET status = 'bogus'",
                    "UPDATE bookings SET hold_until = 'infinity' WHERE id = 'held'",
                    "UPDATE bookings SET version = 0",
                    "UPDATE bookings SET during = tstzrange(lower(during), upper(during), '[]')",
                    "UPDATE booking_resources SET pos = -1",
                    "UPDATE booking_resources SET booked = tstzrange(lower(during) - interval '1 hour', upper(during))",
                ):
                    with pytest.raises(psycopg.errors.CheckViolation):
                        conn.execute(statement)  # type: ignore[arg-type]
                    refused.append(statement)
        finally:
            storage.close()

        assert before == after
        assert [("firm", BookingStatus.CONFIRMED, None), ("held", BookingStatus.PRE_BOOKING, at(2, 9))] == found
        assert [("firm", "r3", 2), ("held", "r2", 1)] == loads
        assert 6 == len(refused)

    def test_a_version_10_schema_gets_the_one_resource_read(self, fresh_schema: str) -> None:
        """
        Version 10 -> 11: slotengine_reserve reads a booking of one resource without aggregates; bookings of one
        resource and of several are refused, and written, as before.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 10)
            _three_resources(conn)
            request = postgres_module._reserve_request(booking("firm", at(3, 10), at(3, 11)), now=at(2, 8))
            assert ("ok",) == conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        answers = []
        try:
            for b in (
                booking("late", at(3, 10, 30), at(3, 11, 30)),  # r1 is taken by firm
                booking("nowhere", at(3, 10), at(3, 11), resources=("r9",)),
                booking("pair", at(3, 10), at(3, 11), resources=("r1", "r2")),  # r1 again, with another
                booking("r2-alone", at(3, 10), at(3, 11), resources=("r2",)),
                booking("pair-later", at(3, 12), at(3, 13), resources=("r2", "r3")),
            ):
                try:
                    with storage.transaction("t") as tx:
                        tx.reserve(b, now=at(2, 8))
                        tx.commit()
                    answers.append((b.id, "ok"))
                except (ConflictError, NotFoundError) as exc:
                    answers.append((b.id, type(exc).__name__))
            with raw(fresh_schema) as conn:
                source = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'slotengine_reserve'").fetchone()
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        finally:
            storage.close()

        assert [
            ("late", "ConflictError"),
            ("nowhere", "NotFoundError"),
            ("pair", "ConflictError"),
            ("r2-alone", "ok"),
            ("pair-later", "ok"),
        ] == answers
        assert source is not None
        assert "jsonb_array_length(p_request->'loads') = 1" in source[0]
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions

    def test_a_version_11_schema_gets_refusals_that_say_what_is_in_the_way(self, fresh_schema: str) -> None:
        """
        Version 11 -> 12: a one-call refusal brings the refused resource's loads (a firm booking with a buffer, a
        live hold), the same as `loads` reads; a booking of a transaction refuses as before, without them.
        """
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            _schema_at_version(conn, fresh_schema, 11)
            _three_resources(conn)
            firm = booking("firm", at(3, 10), at(3, 11), resources=("r3",), units=2, buffer_after=timedelta(minutes=5))
            held = booking(
                "held", at(3, 10), at(3, 12), resources=("r3",), status=BookingStatus.PRE_BOOKING, hold_until=at(2, 9)
            )
            for b in (firm, held):
                request = postgres_module._reserve_request(b, now=at(2, 8))
                assert ("ok",) == conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()

        storage = PostgresStorage(DSN, schema=fresh_schema, max_size=2)
        late = booking("late", at(3, 10, 30), at(3, 11, 30), resources=("r3",))
        try:
            with storage.transaction("t") as tx:
                version = tx.catalogue_version()
                read = tx.loads(["r3"], Interval(at(3, 10, 30), at(3, 11, 30)))
            with pytest.raises(ConflictError) as at_once:
                storage.reserve_and_record("t", late, now=at(2, 8), transitions=[], outbox=[], catalogue_version=version)
            with pytest.raises(ConflictError) as in_a_transaction, storage.transaction("t") as tx:
                tx.reserve(late, now=at(2, 8))
            with raw(fresh_schema) as conn:
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        finally:
            storage.close()

        assert ["firm", "held"] == [ld.booking_id for ld in read]
        assert tuple(read) == at_once.value.details["loads"]
        assert "loads" not in in_a_transaction.value.details
        assert str(in_a_transaction.value) == str(at_once.value)
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions

    def test_reopening_is_idempotent(self, engine: BookingEngine, storage: PostgresStorage, schema: str) -> None:
        """Opening an existing schema never re-creates it or loses data, however often."""
        engine.book("wash", at(2, 10))
        before_catalog, before_state = catalog(schema), snapshot(engine)
        storage.close()
        for _ in range(3):
            PostgresStorage(DSN, schema=schema).close()
        reopened = PostgresStorage(DSN, schema=schema)
        with raw(schema) as conn:
            versions = conn.execute("SELECT version FROM schema_version").fetchall()

        assert before_catalog == catalog(schema)
        assert before_state == snapshot(make_engine(reopened))
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions
        reopened.close()

    def test_sixteen_processes_opening_a_new_schema_at_once(self, fresh_schema: str) -> None:
        """16 processes (forked, released together) open one new schema at once: all succeed, it is made once."""
        out = subprocess.run(
            [sys.executable, "-c", OPEN_AT_ONCE, DSN, fresh_schema, "16"],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        with raw(fresh_schema) as conn:
            versions = conn.execute("SELECT version FROM schema_version").fetchall()

        assert ["ok"] * 16 == out.stdout.splitlines()
        assert [(v,) for v in range(1, SCHEMA_VERSION + 1)] == versions

    def test_a_newer_schema_is_refused_and_left_alone(self, storage: PostgresStorage, schema: str) -> None:
        """A schema written by a newer slotengine is refused with a clear StorageError, and not touched."""
        storage.close()
        with raw(schema) as conn:
            conn.execute("INSERT INTO schema_version (version) VALUES (99)")
        before = catalog(schema)

        with pytest.raises(StorageError, match="version 99") as info:
            PostgresStorage(DSN, schema=schema)

        assert 99 == info.value.details["schema_version"]
        assert before == catalog(schema)

    def test_another_programs_schema_is_refused(self, fresh_schema: str) -> None:
        """A schema with tables but no slotengine schema_version is refused and left as it was."""
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh_schema)))
            conn.execute(sql.SQL("CREATE TABLE {}.notes (id int PRIMARY KEY)").format(sql.Identifier(fresh_schema)))
        before = catalog(fresh_schema)

        with pytest.raises(StorageError, match="another program"):
            PostgresStorage(DSN, schema=fresh_schema)
        assert before == catalog(fresh_schema)

    def test_an_empty_existing_schema_is_initialised(self, fresh_schema: str) -> None:
        """A schema that exists but is empty (made by a DBA) becomes a slotengine schema."""
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh_schema)))
        PostgresStorage(DSN, schema=fresh_schema).close()

        assert any(row[1] == "bookings" for row in catalog(fresh_schema))

    def test_tenant_leads_every_key_and_constraint(self, storage: PostgresStorage, schema: str) -> None:
        """Every table has tenant_id NOT NULL leading its PK, every UNIQUE and EXCLUDE, and every index (S2)."""
        problems = []
        with raw(schema) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
            for table in sorted(set(tables) - {"schema_version"}):
                nullable = conn.execute(
                    """
                    SELECT is_nullable FROM information_schema.columns
                    WHERE table_schema = %s AND table_name = %s AND column_name = 'tenant_id'
                    """,
                    (schema, table),
                ).fetchone()
                if nullable != ("NO",):
                    problems.append(f"{table}: tenant_id is {nullable}")
                keys = conn.execute(
                    """
                    SELECT k.conname, k.contype, a.attname
                    FROM pg_constraint AS k
                    JOIN pg_class AS c ON c.oid = k.conrelid
                    JOIN pg_namespace AS n ON n.oid = c.relnamespace
                    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
                    WHERE n.nspname = %s AND c.relname = %s AND k.contype IN ('p', 'u', 'x')
                    """,
                    (schema, table),
                ).fetchall()
                if "p" not in {kind for _name, kind, _first in keys}:
                    problems.append(f"{table}: no primary key")
                problems += [
                    f"{table}.{name} ({kind}) starts with {first}" for name, kind, first in keys if first != "tenant_id"
                ]
                indexes = conn.execute(
                    """
                    SELECT i.relname, a.attname
                    FROM pg_index AS x
                    JOIN pg_class AS i ON i.oid = x.indexrelid
                    JOIN pg_class AS c ON c.oid = x.indrelid
                    JOIN pg_namespace AS n ON n.oid = c.relnamespace
                    LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
                    WHERE n.nspname = %s AND c.relname = %s
                    """,
                    (schema, table),
                ).fetchall()
                problems += [f"{table}.{name} starts with {first}" for name, first in indexes if first != "tenant_id"]
            exclusion = conn.execute(
                """
                SELECT pg_get_constraintdef(k.oid) FROM pg_constraint AS k
                JOIN pg_class AS c ON c.oid = k.conrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND k.contype = 'x'
                """,
                (schema,),
            ).fetchall()

        assert TABLES <= set(tables)
        assert [] == problems
        assert 1 == len(exclusion)
        assert re.search(r"EXCLUDE USING gist \(tenant_id WITH =, resource_id WITH =, during WITH &&", exclusion[0][0])
        assert re.search(r"WHEN \(live AND exclusive\) THEN 1\s+ELSE NULL::integer\s+END\) WITH =\)$", exclusion[0][0])

    def test_the_status_check_lists_exactly_the_lifecycle(self, storage: PostgresStorage, schema: str) -> None:
        """The check of bookings.status (its domain's) names every BookingStatus and nothing else."""
        with raw(schema) as conn:
            checks = conn.execute(
                """
                SELECT pg_get_constraintdef(k.oid) FROM pg_constraint AS k
                JOIN pg_type AS d ON d.oid = k.contypid
                JOIN pg_attribute AS a ON a.atttypid = d.oid AND a.attrelid = 'bookings'::regclass
                WHERE a.attname = 'status'
                """
            ).fetchall()
        assert 1 == len(checks)
        listed = re.search(r"VALUE = ANY \(ARRAY\[([^]]*)\]\)", checks[0][0])

        assert listed is not None
        assert {s.value for s in BookingStatus} == set(re.findall(r"'(\w+)'", listed.group(1)))

    def test_check_constraints_are_a_backstop(self, engine: BookingEngine, schema: str) -> None:
        """Empty, unbounded, infinite, closed-ended ranges and other rows the domain never makes are refused."""
        engine.book("wash", at(2, 10))
        bad = [
            "UPDATE bookings SET during = tstzrange(lower(during), lower(during), '[)')",  # empty: overlaps nothing
            "UPDATE bookings SET during = tstzrange(lower(during), NULL, '[)'), blocked = tstzrange(lower(blocked), NULL)",
            "UPDATE bookings SET during = tstzrange(lower(during), 'infinity', '[)')",
            "UPDATE bookings SET during = tstzrange(lower(during), upper(during), '[]')",
            "UPDATE bookings SET status = 'bogus'",
            "UPDATE bookings SET hold_until = now() WHERE status = 'confirmed'",
            "UPDATE bookings SET during = tstzrange(lower(during) - interval '1 hour', upper(during))",  # outside blocked
            "UPDATE booking_resources SET units = 0",
            "UPDATE booking_resources SET during = 'empty'",
            "UPDATE booking_resources SET during = tstzrange('-infinity', upper(during))",
            "UPDATE booking_resources SET resource_id = 'no-such-resource'",
            "UPDATE bookings SET doc = '[]'",
        ]
        refused = []
        with raw(schema) as conn:
            for statement in bad:
                try:
                    conn.execute(statement)  # type: ignore[arg-type]
                except psycopg.IntegrityError:
                    refused.append(statement)

        assert bad == refused

    def test_instants_are_timestamptz_ranges(self, engine: BookingEngine, schema: str) -> None:
        """A booking is stored as [start, end) and its blocked time as [start - before, end + after), exact."""
        made = engine.book("wash", at(2, 10))
        with raw(schema) as conn:
            row = conn.execute(
                "SELECT lower(during), upper(during), lower(blocked), upper(blocked), lower_inc(during), "
                "upper_inc(during) FROM bookings"
            ).fetchone()
            rows = conn.execute(
                "SELECT lower(during), upper(during), live, exclusive FROM booking_resources"
            ).fetchall()

        assert (made.start, made.end, made.start, made.end + 10 * M, True, False) == row
        assert [(made.start, made.end + 10 * M, True, True)] == rows


# --- the backstop and holds (research 1.1, H2) -----------------------------------------------------------------


class TestTheServerCheckIsCheckCapacity:
    """
    slotengine_reserve checks capacity in SQL: on any loads hypothesis draws (units, buffers, holds lapsing at
    ``now`` or not, cancelled rows, excluded bookings, several resources, exact back-to-back edges on a
    15-minute grid) it refuses exactly when `check_capacity` does, with the same words and details. Seeded bugs
    in the SQL are caught, so the green runs say something.
    """

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_the_same_verdict_as_check_capacity(self, shared: PostgresStorage, data: st.DataObject) -> None:
        _agree(shared, data)

    @pytest.mark.parametrize(
        "name",
        ["no capacity check", "units not counted", "lapsed holds still count", "an end after a start at one instant"],
    )
    def test_a_seeded_bug_in_the_sql_is_caught(self, schema: str, name: str) -> None:
        old, new = SQL_MUTANTS[name]
        assert old in postgres_module._RESERVE_FUNCTION
        storage = PostgresStorage(DSN, schema=schema, max_size=2)
        with raw(schema) as conn:
            conn.execute(
                postgres_module._RESERVE_FUNCTION.replace(old, new).replace(
                    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
                )
            )

        @settings(max_examples=400, deadline=None, database=None, derandomize=True, phases=[Phase.generate])
        @given(data=st.data())
        def property_(data: st.DataObject) -> None:
            _agree(storage, data)

        try:
            with pytest.raises(AssertionError):
                property_()
        finally:
            storage.close()


SQL_MUTANTS = {
    "no capacity check": ("IF v_peak + v_units[i] > v_caps[i] THEN", "IF false THEN"),
    "units not counted": (
        "greatest(lower(br.during), lower(v_blocked)) AS at, br.units AS delta",
        "greatest(lower(br.during), lower(v_blocked)) AS at, 1 AS delta",
    ),
    "lapsed holds still count": ("AND (br.hold_until IS NULL OR br.hold_until > v_now) AS counts", "AS counts"),
    "an end after a start at one instant": ("ORDER BY e.at, e.delta ROWS", "ORDER BY e.at, e.delta DESC ROWS"),
}
GRID = datetime(2030, 1, 7, 9, tzinfo=UTC)
CHECKED = {"r1": 1, "r2": 2, "r3": 3, "r4": UNLIMITED}


@st.composite
def grid_bookings(draw: st.DrawFn, booking_id: str, now: datetime) -> Booking:
    start = GRID + draw(st.integers(0, 12)) * 15 * M
    status = draw(
        st.sampled_from(
            [BookingStatus.CONFIRMED, BookingStatus.PAID, BookingStatus.PRE_BOOKING, BookingStatus.CANCELLED]
        )
    )
    resources = draw(st.lists(st.sampled_from(list(CHECKED)), min_size=1, max_size=2, unique=True))
    return Booking(
        booking_id,
        "s1",
        start,
        start + draw(st.sampled_from([15, 30, 45, 60, 90])) * M,
        tuple(Assignment(n, "", (rid,)) for n, rid in enumerate(resources)),
        tuple(draw(st.integers(1, 2)) for _ in resources),
        status,
        datetime(2030, 1, 1, tzinfo=UTC),
        hold_until=now + draw(st.sampled_from([-15, 0, 15])) * M if status is BookingStatus.PRE_BOOKING else None,
        buffer_before=draw(st.sampled_from([0, 0, 15])) * M,
        buffer_after=draw(st.sampled_from([0, 0, 15])) * M,
    )


def _agree(storage: PostgresStorage, data: st.DataObject) -> None:
    """Store drawn loads (capacity unchecked), then reserve a drawn booking: PostgreSQL must judge as Python."""
    tenant = uuid.uuid4().hex
    now = GRID - H
    catalogue(storage, tenant, dict.fromkeys(CHECKED, UNLIMITED))
    stored = [data.draw(grid_bookings(f"b{i}", now)) for i in range(data.draw(st.integers(0, 6)))]
    with storage.transaction(tenant) as tx:
        for b in stored:
            tx.reserve(b, now=now)
        tx.commit()
    catalogue(storage, tenant, CHECKED)  # the real capacities: what is stored may already exceed them
    candidate = data.draw(grid_bookings("new", now))
    exclude = data.draw(st.lists(st.sampled_from([b.id for b in stored] or ["none"]), max_size=2, unique=True))
    resources = {rid: Resource(rid, f"Resource {rid}", capacity=cap) for rid, cap in CHECKED.items()}
    window = Interval(candidate.start - candidate.buffer_before, candidate.end + candidate.buffer_after)
    with storage.transaction(tenant) as tx:
        near = [ld for ld in tx.loads(list(CHECKED), window) if ld.booking_id not in exclude]
    try:
        check_capacity(candidate, resources, near, now=now)
        expected: object = "ok"
    except ConflictError as exc:
        expected = (str(exc), exc.details)
    try:
        with storage.transaction(tenant) as tx:
            tx.reserve(candidate, now=now, exclude=exclude)
        actual: object = "ok"
    except ConflictError as exc:
        actual = (str(exc), exc.details)

    assert expected == actual, (stored, candidate, exclude)


class TestBackstop:
    def test_exclusive_marks_only_capacity_one(self, storage: PostgresStorage, schema: str) -> None:
        """Rows of capacity-1 resources are exclusive; capacity 2 and UNLIMITED are not; dead rows never are."""
        catalogue(storage, "t", {"one": 1, "two": 2, "many": UNLIMITED})
        with storage.transaction("t") as tx:
            tx.reserve(booking("b1", at(3, 10), at(3, 11), resources=("one", "two", "many")), now=at(2, 8))
            tx.reserve(
                booking("b2", at(4, 10), at(4, 11), resources=("one",), status=BookingStatus.CANCELLED), now=at(2, 8)
            )
            tx.commit()
        with raw(schema) as conn:
            rows = conn.execute(
                "SELECT booking_id, resource_id, live, exclusive FROM booking_resources ORDER BY booking_id, pos"
            ).fetchall()

        assert [
            ("b1", "one", True, True),
            ("b1", "two", True, False),
            ("b1", "many", True, False),
            ("b2", "one", False, False),
        ] == rows

    def test_the_exclusion_constraint_refuses_what_a_broken_check_lets_through(self, storage: PostgresStorage) -> None:
        """With the capacity check switched off, the database still refuses an overlap (23P01 -> ConflictError)."""
        catalogue(storage, "t", {"r1": 1, "r3": 3})
        # A broken server function: its capacity check never refuses.
        broken = postgres_module._RESERVE_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
            "IF v_peak + v_units[i] > v_caps[i] THEN", "IF false THEN"
        )
        assert broken != postgres_module._RESERVE_FUNCTION
        with raw(storage.schema) as conn:
            conn.execute(broken)
        with storage.transaction("t") as tx:
            tx.reserve(booking("first", at(3, 10), at(3, 11), resources=("r1",)), now=at(2, 8))
            tx.commit()
        with pytest.raises(ConflictError) as info, storage.transaction("t") as tx:
            tx.reserve(booking("second", at(3, 10, 30), at(3, 11, 30), resources=("r1",)), now=at(2, 8))
        with storage.transaction("t") as tx:
            # back-to-back [a, b) and [b, c) do not overlap; capacity 3 is not the constraint's business
            tx.reserve(booking("after", at(3, 11), at(3, 12), resources=("r1",)), now=at(2, 8))
            for n in range(5):
                tx.reserve(booking(f"crowd{n}", at(3, 10), at(3, 11), resources=("r3",)), now=at(2, 8))
            tx.commit()
        with storage.transaction("t") as tx:
            stored = {b.id for b in tx.find_bookings(BookingQuery())}

        assert "23P01" == info.value.details["sqlstate"]
        assert {"first", "after", "crowd0", "crowd1", "crowd2", "crowd3", "crowd4"} == stored

    def test_a_lapsed_hold_does_not_block_through_the_backstop(self, storage: PostgresStorage, schema: str) -> None:
        """H2: at hold_until, a booking over a lapsed (unswept) hold on a capacity-1 resource is written."""
        catalogue(storage, "t", {"r1": 1})
        expiry = datetime(2030, 1, 1, 9, 0, 0, 123_457, tzinfo=UTC)
        start = datetime(2030, 1, 1, 10, tzinfo=UTC)
        with storage.transaction("t") as tx:
            tx.reserve(
                booking("held", start, start + H, status=BookingStatus.PRE_BOOKING, hold_until=expiry), now=expiry - H
            )
            tx.commit()
        outcomes = []
        for now in (expiry - US, expiry):
            with storage.transaction("t") as tx:
                due = [b.id for b in tx.due_holds(now)]
                try:
                    tx.reserve(booking("other", start + 30 * M, start + 2 * H), now=now)
                    tx.commit()
                    outcomes.append((due, "booked"))
                except ConflictError:
                    outcomes.append((due, "conflict"))
        with storage.transaction("t") as tx:
            loads = {ld.booking_id for ld in tx.loads(["r1"], Interval(start, start + H))}
        with raw(schema) as conn:
            rows = conn.execute(
                "SELECT booking_id, live, exclusive FROM booking_resources ORDER BY booking_id"
            ).fetchall()

        assert [([], "conflict"), (["held"], "booked")] == outcomes
        assert {"held", "other"} == loads  # the lapsed hold is still live for the caller to filter by its now
        assert [("held", True, False), ("other", True, True)] == rows

    def test_a_lapsed_hold_through_the_engine(self, storage: PostgresStorage) -> None:
        """Through the engine: a hold lapses, someone else books its slot without a sweep, the hold cannot confirm."""
        clock = FrozenClock(at(2, 8))
        engine = make_engine(storage, clock=clock)
        furnish(engine, boxes=("box1",))
        held = engine.hold("wash", at(2, 10))
        with pytest.raises(ConflictError):
            engine.book("wash", at(2, 10))
        clock.advance(held.hold_until - clock.now())
        booked = engine.book("wash", at(2, 10))
        with pytest.raises(IllegalTransitionError, match="lapsed"):
            engine.confirm(held.id)

        assert BookingStatus.CONFIRMED == booked.status
        assert [booked.id] == [b.id for b in engine.list() if b.takes_time(clock.now())]

    def test_excluded_bookings_step_aside(self, storage: PostgresStorage) -> None:
        """reserve(exclude=...) ignores those bookings, also in the backstop, as MemoryStorage does."""
        catalogue(storage, "t", {"r1": 1})
        with storage.transaction("t") as tx:
            tx.reserve(booking("old", at(3, 10), at(3, 11)), now=at(2, 8))
            tx.commit()
        with storage.transaction("t") as tx:
            tx.reserve(booking("new", at(3, 10), at(3, 11)), now=at(2, 8), exclude=["old"])
            tx.commit()
        with storage.transaction("t") as tx:
            stored = [b.id for b in tx.find_bookings(BookingQuery())]

        assert ["new", "old"] == stored

    def test_moving_one_booking_twice_at_once_is_a_concurrency_error(self, storage: PostgresStorage) -> None:
        """Two transactions that read the same booking and both replace it: the second one must not win."""
        catalogue(storage, "t", {"r1": 1, "r2": 1})
        with storage.transaction("t") as tx:
            tx.reserve(booking("b", at(3, 10), at(3, 11), resources=("r1",)), now=at(2, 8))
            tx.commit()
        first_read, second_done = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def second() -> None:
            first_read.wait(5)
            try:
                with storage.transaction("t") as tx:
                    stored = tx.get_booking("b")
                    tx.reserve(attrs.evolve(stored, version=2, notes="second"), now=at(2, 8))
                    tx.commit()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            second_done.set()

        thread = threading.Thread(target=second)
        thread.start()
        with storage.transaction("t") as tx:
            stored = tx.get_booking("b")
            first_read.set()
            second_done.wait(5)  # the second one committed its move meanwhile
            with pytest.raises(ConcurrencyError):
                tx.reserve(attrs.evolve(stored, version=2, start=at(3, 12), end=at(3, 13)), now=at(2, 8))
        thread.join()
        with storage.transaction("t") as tx:
            final = tx.get_booking("b")

        assert [] == errors
        assert ("second", at(3, 10)) == (final.notes, final.start)


# --- locks (C8) and error mapping --------------------------------------------------------------------------------


class TestLocks:
    def test_a_held_resource_lock_stops_another_transaction(self, schema: str) -> None:
        """C8: while A holds a resource's lock, B's lock_resources times out with a retryable ConcurrencyError."""
        storage = PostgresStorage(DSN, schema=schema, lock_timeout=timedelta(milliseconds=150), max_size=3)
        catalogue(storage, "t", {"r1": 1, "r2": 1})
        engine = make_engine(storage, "t")
        engine.setup(business())
        engine.add_service(Service("s", "S", needs=[Need(resource_ids=["r1"])], duration=30 * M))
        engine.max_retries = 1
        locked, release = threading.Event(), threading.Event()

        def holder() -> None:
            with storage.transaction("t") as tx:
                tx.lock_resources(["r1"])
                locked.set()
                release.wait(10)

        thread = threading.Thread(target=holder)
        thread.start()
        locked.wait(10)
        try:
            started = time.monotonic()
            with pytest.raises(ConcurrencyError) as info, storage.transaction("t") as tx:
                tx.lock_resources(["r2", "r1"])
            waited = time.monotonic() - started
            with storage.transaction("t") as tx:
                tx.lock_resources(["r2"])  # another resource is free
            other_tenant = storage.transaction("u")
            with other_tenant as tx:
                tx.put_resource(Resource("r1", "Same id"))
                tx.lock_resources(["r1"])  # the same id in another tenant is another lock
            with pytest.raises(ConcurrencyError):
                engine.book("s", at(2, 10))  # through the engine: retried, then the error
        finally:
            release.set()
            thread.join()
        storage.check_locking()
        storage.close()

        assert info.value.retryable
        assert "55P03" == info.value.details["sqlstate"]
        assert waited >= 0.1

    def test_a_server_whose_advisory_locks_are_no_ops_is_refused(self, fresh_schema: str) -> None:
        """C8: on a server where advisory locks do nothing (CockroachDB's old stubs), the adapter refuses to open."""
        PostgresStorage(DSN, schema=fresh_schema).close()
        with raw(fresh_schema) as conn:  # stubs that shadow pg_catalog's functions when searched first
            conn.execute(
                "CREATE FUNCTION pg_try_advisory_xact_lock(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'"
            )
            conn.execute("CREATE FUNCTION pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE sql AS ''")

        class NoOpLocks(PostgresStorage):
            def _configure(self, conn: Any) -> None:
                super()._configure(conn)
                conn.execute(sql.SQL("SET search_path TO {}, pg_catalog").format(sql.Identifier(self.schema)))

        with pytest.raises(StorageError, match="does not enforce advisory locks"):
            NoOpLocks(DSN, schema=fresh_schema)

    def test_many_resources_take_the_tenant_lock(self, schema: str) -> None:
        """Locking more than 32 resources takes the tenant exclusively: it stops a one-resource lock, not another tenant."""
        storage = PostgresStorage(DSN, schema=schema, lock_timeout=timedelta(milliseconds=150), max_size=3)
        many = {f"r{n:02}": 1 for n in range(40)}
        catalogue(storage, "t", many)
        catalogue(storage, "u", {"r00": 1})
        locked, release = threading.Event(), threading.Event()

        def holder() -> None:
            with storage.transaction("t") as tx:
                tx.lock_resources(many)
                locked.set()
                release.wait(10)

        thread = threading.Thread(target=holder)
        thread.start()
        locked.wait(10)
        try:
            with pytest.raises(ConcurrencyError), storage.transaction("t") as tx:
                tx.lock_resources(["r39"])
            with storage.transaction("u") as tx:
                tx.lock_resources(["r00"])
        finally:
            release.set()
            thread.join()
        with storage.transaction("t") as tx:
            tx.lock_resources(["r39"])
        storage.close()

    def test_lock_keys_differ_by_tenant_and_resource(self) -> None:
        """The advisory key separates (tenant, resource) pairs, including ones that concatenate alike."""
        keys = {resource_lock_key(t, r) for t, r in [("a", "bc"), ("ab", "c"), ("a", "b"), ("b", "a"), ("a", "b\x00")]}

        assert 5 == len(keys)
        assert all(-(2**63) <= k < 2**63 for k in keys)

    def test_a_deadlock_is_a_concurrency_error(self, schema: str) -> None:
        """Two transactions locking in opposite orders (two separate calls each): one gets 40P01 -> ConcurrencyError."""
        storage = PostgresStorage(DSN, schema=schema, lock_timeout=timedelta(seconds=20), max_size=3)
        catalogue(storage, "t", {"r1": 1, "r2": 1})
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def worker(first: str, second: str) -> None:
            try:
                with storage.transaction("t") as tx:
                    tx.lock_resources([first])
                    barrier.wait(10)
                    tx.lock_resources([second])
                    tx.commit()
                outcomes.append("ok")
            except ConcurrencyError as exc:
                outcomes.append(exc.details.get("sqlstate"))

        threads = [threading.Thread(target=worker, args=pair) for pair in (("r1", "r2"), ("r2", "r1"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        storage.close()

        assert ["40P01", "ok"] == sorted(outcomes, key=str)

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            ("SerializationFailure", ConcurrencyError),
            ("DeadlockDetected", ConcurrencyError),
            ("LockNotAvailable", ConcurrencyError),
            ("ExclusionViolation", ConflictError),
            ("CheckViolation", StorageError),
            ("UniqueViolation", StorageError),
            ("InFailedSqlTransaction", StorageError),
            ("AdminShutdown", StorageError),
            ("NumericValueOutOfRange", InvalidInputError),
        ],
    )
    def test_every_port_method_translates_psycopg_errors(
        self, storage: PostgresStorage, error: str, expected: type[SlotEngineError]
    ) -> None:
        """Whatever statement fails with whichever SQLSTATE, in whichever method, the caller gets the typed error."""
        exc = getattr(psycopg.errors, error)("boom")
        self._check_every_method(storage, exc, expected)

    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            (
                psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
                StorageError,
            ),
            (psycopg.InterfaceError("the connection is closed"), StorageError),
            (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), InvalidInputError),
            (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), InvalidInputError),
        ]
        if psycopg is not None
        else [],
    )
    def test_client_side_errors_are_typed(
        self, storage: PostgresStorage, exc: BaseException, expected: type[SlotEngineError]
    ) -> None:
        """Connection and encoding failures raised by psycopg itself are typed too."""
        self._check_every_method(storage, exc, expected)

    @staticmethod
    def _check_every_method(storage: PostgresStorage, error: BaseException, expected: type[SlotEngineError]) -> None:
        made = booking("b1", at(2, 10), at(2, 11))
        message = OutboxMessage("m1", "topic", "b1", at(2, 8), at(2, 8), "m1", "{}")
        record = IdempotencyRecord("k", "h", "b1", "{}", at(2, 8))
        calls = {
            "catalogue_version": lambda tx: tx.catalogue_version(),
            "get_business": lambda tx: tx.get_business(),
            "put_business": lambda tx: tx.put_business(business()),
            "get_resource": lambda tx: tx.get_resource("r1"),
            "list_resources": lambda tx: tx.list_resources(),
            "put_resource": lambda tx: tx.put_resource(Resource("r1", "One")),
            "get_service": lambda tx: tx.get_service("s1"),
            "list_services": lambda tx: tx.list_services(),
            "put_service": lambda tx: tx.put_service(WASH),
            "lock_resources": lambda tx: tx.lock_resources(["r1"]),
            "loads": lambda tx: tx.loads(["r1"], Interval(at(2, 9), at(2, 12))),
            "reserve": lambda tx: tx.reserve(made, now=at(2, 8)),
            "get_booking": lambda tx: tx.get_booking("b1"),
            "find_bookings": lambda tx: tx.find_bookings(BookingQuery()),
            "update_booking": lambda tx: tx.update_booking(made, expected_version=1),
            "due_holds": lambda tx: tx.due_holds(at(2, 8)),
            "list_transitions": lambda tx: tx.list_transitions("b1"),
            "append_outbox": lambda tx: tx.append_outbox([message]),
            "list_outbox": lambda tx: tx.list_outbox(pending_only=True),
            "update_outbox": lambda tx: tx.update_outbox(message),
            "get_idempotency": lambda tx: tx.get_idempotency("k"),
            "put_idempotency": lambda tx: tx.put_idempotency(record),
            "commit": lambda tx: tx.commit(),
        }

        class Failing:
            """A connection whose every statement and commit fails with *error*."""

            autocommit = False  # inside the database transaction
            broken = False  # the connection itself is alive

            class info:  # noqa: N801 - mimics psycopg's attribute
                transaction_status = psycopg.pq.TransactionStatus.INTRANS

            def execute(self, *_args: object) -> None:
                raise error

            def commit(self) -> None:
                raise error

            def pipeline(self) -> contextlib.AbstractContextManager[None]:
                return contextlib.nullcontext()  # statements in a batch then fail one by one, as above

        got = {}
        for name, call in calls.items():
            with storage.transaction("t") as tx:
                real, tx._conn = tx._conn, Failing()  # type: ignore[assignment]
                try:
                    call(tx)
                except Exception as exc:  # noqa: BLE001
                    got[name] = type(exc)
                finally:
                    tx._conn = real

        assert dict.fromkeys(calls, expected) == got

    def test_a_connection_killed_mid_transaction(self, storage: PostgresStorage) -> None:
        """The server ends the session inside a transaction: retryable (nothing was written), the storage goes on."""
        engine = make_engine(storage)
        furnish(engine)
        with storage.transaction("wash") as tx:
            tx.put_resource(Resource("box9", "Box 9", type="box"))
            _terminate(tx._conn.info.backend_pid)
            with pytest.raises(ConcurrencyError, match="lost before this transaction committed") as info:
                tx.list_resources()

        assert info.value.details["connection_lost"]
        assert ["box1", "box2"] == [r.id for r in engine.resources()]
        assert engine.book("wash", at(2, 10)).id

    def test_a_connection_lost_while_committing_is_not_called_unwritten(self, storage: PostgresStorage) -> None:
        """Lost at COMMIT, the outcome is unknown: a StorageError that says so, not a retryable error."""
        with storage.transaction("wash") as tx:
            tx.put_resource(Resource("box9", "Box 9", type="box"))
            _terminate(tx._conn.info.backend_pid)
            with pytest.raises(StorageError, match="may or may not have been written") as info:
                tx.commit()

        assert not isinstance(info.value, ConcurrencyError)

    def test_the_engine_runs_a_use_case_again_after_its_connection_was_lost(self, schema: str) -> None:
        """A backend terminated in the middle of a confirm (a restart, a failover): the engine's retry confirms it."""

        class LosingOnce(PostgresStorage):
            losses = 1

            @contextlib.contextmanager
            def transaction(self, tenant: str) -> Iterator[Any]:
                with super().transaction(tenant) as tx:
                    if self.losses:
                        self.losses -= 1
                        tx.list_resources()
                        _terminate(tx._conn.info.backend_pid)
                    yield tx

        with LosingOnce(DSN, schema=schema, max_size=2) as storage:
            engine = make_engine(storage)
            furnish(engine)
            held = engine.hold("wash", at(2, 10))
            storage.losses = 1

            assert BookingStatus.CONFIRMED == engine.confirm(held.id).status
            assert 0 == storage.losses
            assert 1 == sum(t.to_status is BookingStatus.CONFIRMED for t in engine.transitions(held.id))

    def test_connections_terminated_a_moment_ago_are_not_handed_out(
        self, storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every pooled backend terminated just after use (no idle check due): the next calls work all the same."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 3600.0)  # every connection counts as just used
        engine = make_engine(storage)
        furnish(engine)
        for pid in {c.info.backend_pid for c in list(storage._pool._pool)}:  # type: ignore[union-attr]
            _terminate(pid)

        assert ["box1", "box2"] == [r.id for r in engine.resources()]
        assert engine.book("wash", at(2, 11)).id

    def test_a_lost_connection_refuses_to_go_on(self, storage: PostgresStorage) -> None:
        """After the session is lost, every later call of the transaction is a StorageError (psycopg's escaped)."""
        furnish(make_engine(storage))
        with storage.transaction("wash") as tx:
            tx.list_resources()
            with psycopg.connect(DSN, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (tx._conn.info.backend_pid,))
            with pytest.raises(StorageError):
                tx.list_resources()
            for call in (lambda: tx.put_resource(Resource("box9", "Box 9")), lambda: tx.lock_resources(["box1"]), tx.commit):
                with pytest.raises(StorageError, match="connection to PostgreSQL was lost"):
                    call()

    def test_an_idle_connection_the_server_closed_is_replaced(
        self, storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pooled connections the server closed while idle are checked and replaced; the next calls just work."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 0.0)  # every borrowed connection counts as idle
        engine = make_engine(storage)
        furnish(engine)
        engine.book("wash", at(2, 10))
        pids = [c.info.backend_pid for c in list(storage._pool._pool)]  # type: ignore[union-attr]
        with psycopg.connect(DSN, autocommit=True) as killer:
            for pid in pids:
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))

        assert ["box1", "box2"] == [r.id for r in engine.resources()]
        assert engine.book("wash", at(2, 11)).id

    def test_an_idle_connection_whose_server_went_silent_is_replaced(
        self, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A pooled connection the server stopped answering on (TCP still open) is given up after pool_timeout."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 0.0)  # every borrowed connection counts as idle
        with (
            _FreezingProxy(DSN) as proxy,
            PostgresStorage(proxy.dsn, schema=schema, max_size=2, pool_timeout=timedelta(milliseconds=500)) as storage,
        ):
            engine = make_engine(storage)
            furnish(engine)
            engine.book("wash", at(2, 10))
            proxy.freeze()  # the connections open so far go silent; new ones still reach the server
            done: list[object] = []
            worker = threading.Thread(target=lambda: done.append(engine.book("wash", at(2, 11)).id), daemon=True)
            worker.start()
            worker.join(30)
            assert not worker.is_alive(), "the storage waited for ever on a silent connection"
            assert len(done) == 1
            assert [at(2, 10), at(2, 11)] == sorted(b.start for b in engine.list())

    def test_checks_of_silent_connections_share_one_pool_timeout(
        self, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Many silent idle connections: the checks of one borrow wait pool_timeout in all, not each that long."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 0.0)
        waits: list[float] = []

        def never_answers(conn: Any, timeout: float) -> bool:
            waits.append(timeout)
            time.sleep(timeout)  # as a silent server does
            return False

        with PostgresStorage(DSN, schema=schema, min_size=6, max_size=6, pool_timeout=timedelta(seconds=1)) as storage:
            storage._pool.wait()  # type: ignore[union-attr]
            monkeypatch.setattr(postgres_module, "_answers", never_answers)
            with pytest.raises(StorageError, match="answered within pool_timeout"), storage.transaction("t"):
                pass

        assert len(waits) >= 2
        assert sum(waits) <= 1.0 + 2 * postgres_module._MIN_WAIT  # halving, then the floor once the time is up

    @pytest.mark.parametrize(
        ("failure", "retryable"),
        [
            ('FATAL:  too many connections for role "app"', True),
            ("FATAL:  sorry, too many clients already", True),
            ("FATAL:  the database system is starting up", True),
            ('FATAL:  database "shop" does not exist', False),
            ("Connection refused", False),
        ],
    )
    def test_a_pool_that_cannot_connect_says_whether_to_retry(
        self, storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch, failure: str, retryable: bool
    ) -> None:
        """A connection limit or a starting server is worth a retry (ConcurrencyError); the rest is a StorageError."""

        def refuse(*_: object, **__: object) -> None:
            raise psycopg.OperationalError(f"connection failed: {failure}")

        monkeypatch.setattr(psycopg, "connect", refuse)
        error = storage._why_no_connection(psycopg_pool.PoolTimeout("couldn't get a connection"))

        assert (True, retryable) == (isinstance(error, StorageError), isinstance(error, ConcurrencyError))
        assert failure in str(error)

    def test_a_read_after_commit_on_a_lost_connection_does_not_say_nothing_was_written(
        self, storage: PostgresStorage
    ) -> None:
        """Committed, then the connection is lost: a later read is a plain StorageError, not 'nothing was written'."""
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "One"))
            tx.commit()
            _terminate(tx._conn.info.backend_pid)
            with pytest.raises(StorageError) as info:
                tx.list_resources()

        assert not isinstance(info.value, ConcurrencyError)
        assert "nothing of it was written" not in str(info.value)

    def test_pooled_connections_have_the_connect_timeout(self, storage: PostgresStorage) -> None:
        """The pool opens its connections with the storage's DSN, connect_timeout included."""
        with storage._pooled() as conn:
            assert "10" == conn.info.get_parameters().get("connect_timeout")

    def test_a_busy_pool_gives_up_after_pool_timeout(self, schema: str) -> None:
        """With every connection in use, a transaction waits pool_timeout, then ConcurrencyError (retryable)."""
        storage = PostgresStorage(DSN, schema=schema, max_size=1, pool_timeout=timedelta(milliseconds=200))
        try:
            with storage.transaction("t") as tx:
                tx.list_resources()
                outcome: list[BaseException] = []

                def other() -> None:
                    try:
                        with storage.transaction("t"):
                            pass
                    except BaseException as exc:  # noqa: BLE001 - reported to the test
                        outcome.append(exc)

                worker = threading.Thread(target=other)
                worker.start()
                worker.join(30)
            assert [ConcurrencyError] == [type(e) for e in outcome]
            with pytest.raises(InvalidInputError, match="pool_timeout"):
                PostgresStorage(DSN, schema=schema, pool_timeout=timedelta(0))
        finally:
            storage.close()

    def test_a_server_that_never_answers_is_waited_for_at_most_connect_timeout(self) -> None:
        """A DSN without libpq's timeouts gets them (libpq would wait forever); the DSN's own settings win."""
        conninfo = psycopg.conninfo.conninfo_to_dict
        given = conninfo(postgres_module._with_timeouts("postgresql://u@h:5432/db"))
        assert {k: str(v) for k, v in postgres_module._TIMEOUTS.items()}.items() <= given.items()
        assert "2" == conninfo(postgres_module._with_timeouts("postgresql://u@h/db?connect_timeout=2"))["connect_timeout"]
        assert "3" == conninfo(postgres_module._with_timeouts("host=h connect_timeout=3"))["connect_timeout"]
        own = conninfo(postgres_module._with_timeouts("host=h keepalives=0"))
        assert ("0", None) == (own["keepalives"], own.get("keepalives_idle"))

    def test_a_server_gone_after_startup_is_a_storage_error_at_once_then_comes_back(
        self, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the server unreachable, a call says so (StorageError, not a retried ConcurrencyError); then recovers."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 0.0)
        with (
            _FreezingProxy(DSN) as proxy,
            PostgresStorage(proxy.dsn, schema=schema, max_size=2, pool_timeout=timedelta(milliseconds=300)) as storage,
        ):
            engine = make_engine(storage)
            furnish(engine)
            engine.book("wash", at(2, 10))
            proxy.cut()  # every connection closed, new ones refused
            for _ in range(4):  # a server that stays down, while the pool's reconnection attempts back off
                with pytest.raises(StorageError, match="PostgreSQL cannot be used") as info:
                    engine.book("wash", at(2, 11))
                assert not isinstance(info.value, ConcurrencyError)
                time.sleep(0.6)
            proxy.restore()

            # At once: psycopg_pool's own next try could be seconds away (1, 3, 7 s... after the cut).
            assert engine.book("wash", at(2, 11)).id
            assert [at(2, 10), at(2, 11)] == sorted(b.start for b in engine.list())

    def test_a_schema_the_pool_cannot_set_up_is_a_storage_error_that_says_why(
        self, fresh_schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An operator dropped slotengine_reserve: new connections fail to set up, and the error names it."""
        monkeypatch.setattr(postgres_module, "_IDLE_CHECK", 0.0)
        with PostgresStorage(DSN, schema=fresh_schema, max_size=2, pool_timeout=timedelta(milliseconds=300)) as storage:
            engine = make_engine(storage)
            furnish(engine)
            pids = [c.info.backend_pid for c in list(storage._pool._pool)]  # type: ignore[union-attr]
            with psycopg.connect(DSN, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP FUNCTION {}.slotengine_reserve").format(sql.Identifier(fresh_schema)))
                for pid in pids:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

            with pytest.raises(StorageError, match="slotengine_reserve") as info:
                engine.resources()
            assert not isinstance(info.value, ConcurrencyError)

    def test_a_storage_is_a_context_manager(self, schema: str) -> None:
        """`with PostgresStorage(...) as s:` closes it (and its connections) at the end of the block."""
        with PostgresStorage(DSN, schema=schema, max_size=1) as storage:
            catalogue(storage, "t", {"r1": 1})
        with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
            pass

    def test_closing_lets_a_transaction_of_another_thread_finish(self, schema: str) -> None:
        """close() in another thread: the open transaction commits as it would have; new ones are refused."""
        storage = PostgresStorage(DSN, schema=schema, max_size=2)
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "One"))
            closer = threading.Thread(target=storage.close)
            closer.start()
            closer.join(30)
            tx.commit()
        with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
            pass
        with PostgresStorage(DSN, schema=schema, max_size=1) as again, again.transaction("t") as tx:
            assert ["r1"] == [r.id for r in tx.list_resources()]

    def test_an_aborted_transaction_refuses_to_go_on(self, storage: PostgresStorage) -> None:
        """After a statement fails, PostgreSQL has aborted the transaction: later calls say so, nothing is written."""
        catalogue(storage, "t", {"r1": 1})
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r2", "Two"))
            broken = booking("b", at(3, 10), at(3, 11))
            object.__setattr__(broken, "version", 0)  # the CHECK refuses it on the server
            with pytest.raises(StorageError, match="check constraint"):
                tx.reserve(broken, now=at(2, 8))
            with pytest.raises(StorageError, match="aborted"):
                tx.list_resources()
            with pytest.raises(StorageError, match="aborted"):
                tx.commit()
        with storage.transaction("t") as tx:
            assert ["r1"] == [r.id for r in tx.list_resources()]

    @pytest.mark.parametrize(
        ("doc", "table"),
        [
            ('{"id": 1}', "resources"),
            ("{}", "businesses"),
            ('{"id": "x"}', "bookings"),
            ('"text"', "bookings"),
            ('{"a":' * 3000 + "1" + "}" * 3000, "bookings"),  # deeper than Python's JSON parser goes
        ],
    )
    def test_a_corrupt_row_is_a_storage_error(self, engine: BookingEngine, schema: str, doc: str, table: str) -> None:
        """A stored document that no longer decodes gives StorageError, not a JSON or attrs error."""
        made = engine.book("wash", at(2, 10))
        with raw(schema) as conn:
            conn.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_doc_check")  # to store a non-object
            conn.execute(
                sql.SQL("UPDATE {} SET doc = %s::jsonb").format(sql.Identifier(table)),
                (doc,),
            )
        read = {"resources": engine.resources, "businesses": engine.business, "bookings": lambda: engine.get(made.id)}

        with pytest.raises(StorageError, match="cannot be read back"):
            read[table]()

    def test_a_constraint_violation_is_a_storage_error(self, engine: BookingEngine, storage: PostgresStorage) -> None:
        """A row the CHECK constraints refuse gives StorageError and writes nothing."""
        made = engine.book("wash", at(2, 11))
        broken = attrs.evolve(made, id="broken", start=at(2, 14), end=at(2, 15))
        object.__setattr__(broken, "version", 0)  # a value the domain would never build
        with storage.transaction("wash") as tx, pytest.raises(StorageError, match="check constraint") as info:
            tx.reserve(broken, now=at(2, 8))

        assert "23514" == info.value.details["sqlstate"]
        assert [made.id] == [b.id for b in engine.list()]

    def test_an_unreachable_server_is_a_storage_error(self) -> None:
        """A DSN nobody answers gives StorageError at once, and the message does not show the password."""
        with pytest.raises(StorageError) as info:
            PostgresStorage("postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2")

        assert "s3cret-pw" not in str(info.value)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"schema": ""}, "schema"),
            ({"schema": "pg_mine"}, "schema"),
            ({"schema": "x" * 64}, "schema"),
            ({"schema": "a\x00b"}, "schema"),
            ({"schema": 3}, "schema"),
            ({"lock_timeout": timedelta(0)}, "lock_timeout"),
            ({"lock_timeout": 3}, "lock_timeout"),
            ({"min_size": -1}, "min_size"),
            ({"max_size": 0}, "max_size"),
            ({"min_size": 4, "max_size": 2}, "max_size"),
            ({"max_size": True}, "max_size"),
        ],
    )
    def test_bad_options_are_refused(self, kwargs: dict[str, object], field: str) -> None:
        """A schema name PostgreSQL would truncate or reserve, a zero lock timeout (wait forever), bad sizes."""
        with pytest.raises(InvalidInputError) as info:
            PostgresStorage(DSN, **kwargs)  # type: ignore[arg-type]

        assert field == info.value.details["field"]

    def test_transactions_do_not_nest_and_end_with_their_block(self, storage: PostgresStorage) -> None:
        """A second transaction in the same thread is refused; a transaction is unusable after commit/its block."""
        with storage.transaction("t") as tx:
            with pytest.raises(StorageError, match="nest"), storage.transaction("t"):
                pass
            tx.put_resource(Resource("r1", "One"))
            tx.commit()
            still = tx.get_resource("r1")
            with pytest.raises(StorageError, match="committed"):
                tx.put_resource(Resource("r2", "Two"))
            with pytest.raises(StorageError, match="committed"):
                tx.commit()
        with pytest.raises(StorageError, match="over"):
            tx.list_resources()

        assert "One" == still.name

    def test_close_closes_the_pool(self, storage: PostgresStorage) -> None:
        """After close, every use is a StorageError; closing twice is harmless; repr never shows the DSN."""
        storage.close()
        storage.close()

        with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
            pass
        with pytest.raises(StorageError, match="closed"):
            make_engine(storage).resources()
        assert "postgresql://" not in repr(storage)
        assert storage.schema in repr(storage)


@pytest.mark.parametrize("missing", [("psycopg", "psycopg_pool"), ("orjson",)])
def test_importing_without_psycopg_says_what_to_install(missing: tuple[str, ...]) -> None:
    """Without psycopg or orjson, importing the adapter raises ImportError naming the extra; the core still imports."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in missing)
    code = (
        f"import sys; {blocked}\n"
        "import slotengine, slotengine.engine\n"
        "try:\n"
        "    import slotengine.adapters.postgres\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert "install slotengine[postgres]" in out.stdout


# --- tenant isolation (S1) -------------------------------------------------------------------------------------


class TestTenantIsolation:
    def test_colliding_ids_stay_apart(self, storage: PostgresStorage) -> None:
        """Two tenants use the same resource, service and booking ids; each sees and changes only its own."""
        a, b = make_engine(storage, "alpha"), make_engine(storage, "beta")
        furnish(a)
        furnish(b, boxes=("box1", "box2", "beta-only"))
        a_booking = a.book("wash", at(2, 10), customer_id="ann")
        b_bookings = [b.book("wash", at(2, 10), customer_id="ann") for _ in range(3)]

        a.cancel(a_booking.id)  # the same id exists in beta, where it must stay confirmed

        assert a_booking.id == b_bookings[0].id
        assert BookingStatus.CONFIRMED == b.get(a_booking.id).status
        assert BookingStatus.CANCELLED == a.get(a_booking.id).status
        assert ["box1", "box2"] == [r.id for r in a.resources()]

    def test_every_call_with_another_tenants_ids_is_not_found_and_changes_nothing(
        self, storage: PostgresStorage
    ) -> None:
        """In tenant A, every engine call naming B's ids gives NotFoundError; neither tenant changes."""
        a, b = make_engine(storage, "alpha"), make_engine(storage, "beta")
        furnish(a)
        b_service = Service("beta-wash", "Beta wash", needs=[Need(resource_ids=["beta-box"])], duration=30 * M)
        furnish(b, boxes=("box1", "beta-box"), service=b_service)
        a.book("wash", at(2, 10))
        b_ids = [b.hold("beta-wash", at(2, h)).id for h in (10, 11)]
        b_only = [i for i in b_ids if i not in {x.id for x in a.list()}]
        assert b_only
        before = (snapshot(a), snapshot(b))
        calls = [
            a.get,
            a.confirm,
            lambda i: a.pay(i, Money("5", "EUR"), payment_id="p"),
            lambda i: a.refund(i, Money("5", "EUR"), payment_id="r"),
            a.cancel,
            a.cancellation_quote,
            lambda i: a.reschedule(i, at(2, 15)),
            a.check_in,
            a.mark_no_show,
            a.complete,
            lambda _i: a.hold("beta-wash", at(2, 12)),
            lambda _i: a.find_slots("beta-wash", Interval(at(2, 9), at(2, 18))),
            lambda _i: a.explain("beta-wash", at(2, 12)),
        ]
        leaked = []
        for booking_id in b_only:
            for call in calls:
                try:
                    call(booking_id)
                except NotFoundError:
                    continue
                except SlotEngineError as exc:
                    leaked.append(exc)
                else:
                    leaked.append(call)

        try:
            foreign_log = a.transitions(b_only[0])
        except NotFoundError:
            foreign_log = []

        assert [] == leaked
        assert [] == a.list(resource_id="beta-box")
        assert [] == foreign_log
        assert before == (snapshot(a), snapshot(b))

    def test_port_reads_and_writes_with_another_tenants_ids(self, storage: PostgresStorage) -> None:
        """At the port: gets, updates, reserve and locks are NotFound, keyed records are absent; B is unchanged."""
        b = make_engine(storage, "beta")
        furnish(b)
        held = b.hold("wash", at(2, 10), idempotency_key="key-b")
        message = b.outbox()[0]
        before = snapshot(b)
        with storage.transaction("alpha") as tx:
            for call in (
                lambda: tx.get_resource("box1"),
                lambda: tx.get_service("wash"),
                lambda: tx.get_booking(held.id),
                tx.get_business,
                lambda: tx.update_booking(attrs.evolve(held, version=2), expected_version=1),
                lambda: tx.update_outbox(attrs.evolve(message, attempts=3)),
                lambda: tx.reserve(held, now=at(2, 8)),
                lambda: tx.lock_resources(["box1"]),
            ):
                with pytest.raises(NotFoundError):
                    call()
            assert tx.get_idempotency("key-b") is None
            assert [] == tx.loads(["box1", "box2"], Interval(at(2, 0), at(3, 0)))
            assert [] == tx.find_bookings(BookingQuery())
            assert [] == tx.due_holds(at(9, 0))
            assert [] == tx.list_transitions()
            assert [] == tx.list_outbox()
            tx.commit()

        assert before == snapshot(b)


# --- hostile strings (S3) --------------------------------------------------------------------------------------

HOSTILE = [
    "' OR 1=1 --",
    "'; DROP TABLE bookings; --",
    'Robert"); DROP TABLE outbox; --',
    "back\\slash\\\\ and \\' quote",
    "quotes ' \" ` ''",
    "$$; DROP SCHEMA public CASCADE; $$",
    "$tag$ x $tag$",
    "\u202egnp.exe \u2066isolate\u2069 \u200f",  # RTL override, isolates, RLM
    "שלום مرحبا",
    "%s %(x)s %% {0} {} ? $1 :tenant @y",
    "NULL",
    "line\nbreak\ttab\r",
    "emoji 🚗 and combining é",
    "%' OR '%' = '",
    "*/ SELECT * FROM businesses; /*",
    '{"json": [1, 2]}',
]


class TestHostileStrings:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_round_trip_verbatim_and_the_schema_is_unchanged(
        self, storage: PostgresStorage, schema: str, text: str
    ) -> None:
        """A hostile string in every string field is stored and read back verbatim, and finds what it should."""
        before = catalog(schema)
        engine = make_engine(storage, tenant=text)
        engine.setup(business())
        engine.add_resource(Resource(text, text, type=text))
        service = Service(text, text, needs=[Need(type=text)], duration=30 * M)
        engine.add_service(service)
        kwargs = {"customer_id": text, "notes": text, "external_ref": text, "source": text, "idempotency_key": text}
        made = engine.hold(text, at(2, 10), **kwargs)
        fetched = engine.get(made.id)
        replayed = engine.hold(text, at(2, 10), **kwargs)

        assert made == fetched == replayed
        assert (text, text, text, text) == (fetched.customer_id, fetched.notes, fetched.external_ref, fetched.source)
        assert [made] == engine.list(customer_id=text)
        assert [made] == engine.list(external_ref=text)
        assert [made] == engine.list(source=text)
        assert [made] == engine.list(resource_id=text)
        assert [made] == engine.list(service_id=text)
        assert [] == engine.list(customer_id=text + " ")
        assert (text, text) == (engine.resources()[0].id, engine.resources()[0].name)
        assert before == catalog(schema)

    @pytest.mark.parametrize("name", ['slotengine"; DROP SCHEMA public CASCADE; --', "Mixed Case é", "a.b"])
    def test_a_hostile_schema_name_is_only_an_identifier(self, name: str) -> None:
        """The schema name goes through sql.Identifier: any name is just a (quoted) schema, created and used."""
        name = f"{name} {uuid.uuid4().hex[:6]}"
        try:
            storage = PostgresStorage(DSN, schema=name)
            engine = make_engine(storage)
            furnish(engine)
            made = engine.book("wash", at(2, 10))
            storage.close()
            with psycopg.connect(DSN, autocommit=True) as conn:
                found = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()[0]
                public = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'").fetchone()[0]
        finally:
            drop(name)

        assert made.id
        assert (1, 1) == (found, public)

    def test_nul_and_lone_surrogates_are_refused_and_change_nothing(self, engine: BookingEngine) -> None:
        """NUL and lone surrogates, which PostgreSQL cannot store, are input errors, and nothing changes."""
        before = snapshot(engine)
        for bad in ("ann\x00e", "ann\ud800"):
            with pytest.raises(InvalidInputError):
                engine.hold("wash", at(2, 10), customer_id=bad)

        assert before == snapshot(engine)

    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=200)
    )
    def test_any_text_round_trips(self, storage: PostgresStorage, text: str) -> None:
        """Any text without NUL or lone surrogates round-trips verbatim through ids, names and filters."""
        tenant = uuid.uuid4().hex
        if not text.strip():
            return
        with storage.transaction(tenant) as tx:
            tx.put_resource(Resource(text, text))
            tx.reserve(
                booking(text, at(2, 10), at(2, 11), resources=(text,), customer_id=text, notes=text), now=at(2, 8)
            )
            tx.commit()
        with storage.transaction(tenant) as tx:
            got = tx.get_booking(text)
            found = tx.find_bookings(BookingQuery(resource_id=text, customer_id=text))
            name = tx.get_resource(text).name

        assert (text, text, text, text) == (got.id, got.customer_id, got.notes, name)
        assert [got] == found


# --- parity with the reference (MemoryStorage) ---------------------------------------------------------------------

BASE = datetime(2030, 6, 3, 8, tzinfo=UTC)
ZONES = [UTC, PARIS, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3, minutes=-30))]
CAPACITIES: dict[str, object] = {"r1": 2, "r2": 1, "r3": UNLIMITED}


@st.composite
def bookings_strategy(draw: st.DrawFn, index: int) -> Booking:
    start = BASE + draw(st.integers(0, 6 * 3_600_000_000)) * US
    end = start + draw(st.integers(1, 3 * 3_600_000_000)) * US
    status = draw(st.sampled_from(list(BookingStatus)))
    hold = BASE + draw(st.integers(-3_600_000_000, 3_600_000_000)) * US if status is BookingStatus.PRE_BOOKING else None
    zone = draw(st.sampled_from(ZONES))
    return booking(
        f"b{index}",
        start.astimezone(zone),
        end,
        resources=tuple(draw(st.lists(st.sampled_from(list(CAPACITIES)), min_size=1, max_size=2, unique=True))),
        units=draw(st.integers(1, 2)),
        status=status,
        hold_until=hold,
        buffer_before=draw(st.sampled_from([0, 1, 15 * 60_000_000])) * US,
        buffer_after=draw(st.sampled_from([0, 1, 10 * 60_000_000])) * US,
        customer_id=draw(st.sampled_from([None, "c1", "c2"])),
        source=draw(st.sampled_from(["site", "partner"])),
        external_ref=draw(st.sampled_from([None, "x1", "x2"])),
        service_id=draw(st.sampled_from(["s1", "s2"])),
    )


@st.composite
def windows(draw: st.DrawFn) -> Interval:
    start = BASE + draw(st.integers(-3_600_000_000, 8 * 3_600_000_000)) * US
    return Interval(start, start + draw(st.integers(1, 4 * 3_600_000_000)) * US)


queries = st.builds(
    BookingQuery,
    resource_id=st.sampled_from([None, "r1", "r2", "r3", "nope"]),
    customer_id=st.sampled_from([None, "c1", "c2"]),
    statuses=st.none() | st.frozensets(st.sampled_from(list(BookingStatus)), min_size=1),
    period=st.none() | windows(),
    source=st.sampled_from([None, "site", "partner"]),
    external_ref=st.sampled_from([None, "x1", "x2"]),
    service_id=st.sampled_from([None, "s1", "s2"]),
)


@pytest.fixture(scope="module")
def shared() -> Iterator[PostgresStorage]:
    name = new_schema_name()
    made = PostgresStorage(DSN, schema=name, max_size=2)
    yield made
    made.close()
    drop(name)


def _load_key(ld: object) -> tuple[object, ...]:
    return attrs.astuple(ld, recurse=False)[:7]  # type: ignore[arg-type]


class TestParityWithMemory:
    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_same_operations_same_answers(self, shared: PostgresStorage, data: st.DataObject) -> None:
        """reserve, update_booking, loads, find_bookings and due_holds answer exactly as MemoryStorage does."""
        tenant = uuid.uuid4().hex
        memory = MemoryStorage()
        stores = (memory, shared)
        for store in stores:
            catalogue(store, tenant, CAPACITIES)
        made = [data.draw(bookings_strategy(i)) for i in range(data.draw(st.integers(1, 12)))]
        now = BASE + data.draw(st.integers(-3_600_000_000, 3_600_000_000)) * US

        def outcome(store: object, fn: object) -> object:
            with store.transaction(tenant) as tx:  # type: ignore[attr-defined]
                try:
                    result = fn(tx)  # type: ignore[operator]
                except SlotEngineError as exc:
                    return (type(exc).__name__, exc.details.get("booking_ids"))
                tx.commit()
                return result

        for b in made:
            assert outcome(memory, lambda tx, b=b: tx.reserve(b, now=now)) == outcome(
                shared, lambda tx, b=b: tx.reserve(b, now=now)
            )
        for b in data.draw(st.lists(st.sampled_from(made), max_size=4, unique_by=lambda b: b.id)):
            status = data.draw(st.sampled_from([BookingStatus.CANCELLED, BookingStatus.EXPIRED, BookingStatus.PAID]))
            results = []
            for store in stores:

                def step(tx: object, b: Booking = b, status: BookingStatus = status) -> None:
                    stored = tx.get_booking(b.id)  # type: ignore[attr-defined]
                    new = attrs.evolve(stored, status=status, hold_until=None, version=stored.version + 1)
                    tx.update_booking(new, expected_version=stored.version)  # type: ignore[attr-defined]

                results.append(outcome(store, step))
            assert results[0] == results[1]
        for _ in range(5):
            window = data.draw(windows())
            rids = data.draw(st.lists(st.sampled_from([*CAPACITIES, "nope"]), unique=True))
            query = data.draw(queries)
            asked = BASE + data.draw(st.integers(-3_600_000_000, 3_600_000_000)) * US
            answers = []
            for store in stores:
                with store.transaction(tenant) as tx:
                    answers.append(
                        (
                            sorted(map(_load_key, tx.loads(rids, window)), key=repr),
                            tx.find_bookings(query),
                            tx.due_holds(asked),
                            tx.find_bookings(BookingQuery()),
                        )
                    )
            assert answers[0] == answers[1]

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_a_one_call_refusal_carries_the_loads_a_read_would_find(
        self, shared: PostgresStorage, data: st.DataObject
    ) -> None:
        """
        A refusal of the one-call write brings the refused resource's loads over the booking's blocked time:
        exactly what `loads` then reads there, in its order (holds lapsed or not, buffers, units, zones).
        """
        tenant = uuid.uuid4().hex
        catalogue(shared, tenant, CAPACITIES)
        now = BASE + data.draw(st.integers(-3_600_000_000, 3_600_000_000)) * US
        for i in range(data.draw(st.integers(1, 12))):
            with contextlib.suppress(ConflictError), shared.transaction(tenant) as tx:
                tx.reserve(data.draw(bookings_strategy(i)), now=now)
                tx.commit()
        with shared.transaction(tenant) as tx:
            version = tx.catalogue_version()
        asked = attrs.evolve(data.draw(bookings_strategy(99)), status=BookingStatus.CONFIRMED, hold_until=None)
        try:
            shared.reserve_and_record(tenant, asked, now=now, transitions=[], outbox=[], catalogue_version=version)
        except ConflictError as refused:
            rid = refused.details["resource_id"]
            with shared.transaction(tenant) as tx:
                read = tx.loads([rid], Interval(asked.start - asked.buffer_before, asked.end + asked.buffer_after))
            assert [_load_key(ld) for ld in read] == [_load_key(ld) for ld in refused.details["loads"]]
            assert {ld.booking_id for ld in read} >= set(refused.details["booking_ids"])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_engine_scripts_agree(self, shared: PostgresStorage, data: st.DataObject) -> None:
        """The same booking script on MemoryStorage and PostgresStorage gives the same answers, step by step."""
        from slotengine.testing.scripts import run_script
        from slotengine.testing.strategies import booking_scripts

        starts = [at(day, hour, minute) for day in (2, 3) for hour in (9, 10) for minute in (0, 30)]
        script = data.draw(booking_scripts("wash", starts))
        tenant = uuid.uuid4().hex
        answers, states = [], []
        for store in (MemoryStorage(), shared):
            clock = FrozenClock(at(2, 8))
            engine = make_engine(store, tenant, clock=clock)
            furnish(engine)
            answers.append(run_script(engine, clock, script))
            states.append(snapshot(engine))

        assert answers[0] == answers[1]
        assert states[0] == states[1]


class TestLogOutboxIdempotency:
    def test_the_log_and_outbox_keep_order_and_pending_state(
        self, engine: BookingEngine, storage: PostgresStorage
    ) -> None:
        """Transitions and outbox messages come back in written order; pending_only follows sent/failed."""
        first = engine.hold("wash", at(2, 10))
        second = engine.book("wash", at(2, 11))
        engine.confirm(first.id)
        messages = engine.outbox()
        with storage.transaction("wash") as tx:
            tx.update_outbox(attrs.evolve(messages[0], attempts=1, sent_at=at(2, 8)))
            tx.update_outbox(attrs.evolve(messages[2], attempts=5, failed_at=at(2, 8), last_error="gave up"))
            with pytest.raises(NotFoundError):
                tx.update_outbox(attrs.evolve(messages[0], id="nope"))
            with pytest.raises(StorageError, match="exists already"):
                tx.append_outbox([messages[1]])
        # the failed append aborted nothing (ON CONFLICT), but the block did not commit: do it again, committed
        with storage.transaction("wash") as tx:
            tx.update_outbox(attrs.evolve(messages[0], attempts=1, sent_at=at(2, 8)))
            tx.update_outbox(attrs.evolve(messages[2], attempts=5, failed_at=at(2, 8), last_error="gave up"))
            tx.commit()

        assert [first.id, second.id, first.id] == [t.booking_id for t in engine.transitions()]
        assert [first.id, first.id] == [t.booking_id for t in engine.transitions(first.id)]
        assert [m.id for m in messages] == [m.id for m in engine.outbox()]
        assert [messages[1].id] == [m.id for m in engine.outbox(pending_only=True)]
        assert "gave up" == engine.outbox()[2].last_error

    def test_an_idempotency_key_is_saved_once(self, storage: PostgresStorage) -> None:
        """put_idempotency refuses a key that exists (ConcurrencyError); the record round-trips to the µs."""
        record = IdempotencyRecord("k", "hash", "b1", "{}", datetime(2030, 1, 1, 10, 0, 0, 1, tzinfo=PARIS))
        with storage.transaction("t") as tx:
            tx.put_idempotency(record)
            with pytest.raises(ConcurrencyError):
                tx.put_idempotency(attrs.evolve(record, request_hash="other"))
            tx.commit()
        with storage.transaction("t") as tx:
            got = tx.get_idempotency("k")

        assert record == got

    def test_one_key_sent_by_many_at_once_books_once(self, schema: str) -> None:
        """
        Eight engines send one keyed request at the same moment, each in one statement: one booking is made
        and every caller gets it back (the others' statements wait on the key, undo themselves, and replay).
        """
        storage = PostgresStorage(DSN, schema=schema, max_size=8)
        try:
            furnish(make_engine(storage))
            engines = [make_engine(storage, prefix=f"e{i}-") for i in range(8)]
            for each in engines:  # each has read its catalogue, so each takes the one-call write
                each.find_slots("wash", Interval(at(2, 9), at(2, 12)))
            one_calls: list[str] = []
            write = storage.reserve_and_record

            def counted(*args: Any, **kwargs: Any) -> None:
                one_calls.append(kwargs["idempotency"].key)
                write(*args, **kwargs)

            storage.reserve_and_record = counted  # type: ignore[method-assign]
            barrier = threading.Barrier(len(engines))
            answers: list[object] = [None] * len(engines)

            def call(i: int) -> None:
                barrier.wait(30)
                try:
                    answers[i] = engines[i].book("wash", at(2, 10), customer_id="ann", idempotency_key="once")
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    answers[i] = exc

            threads = [threading.Thread(target=call, args=(i,)) for i in range(len(engines))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            stored = engines[0].list()
            with storage.transaction("wash") as tx:
                saved = tx.get_idempotency("once")
        finally:
            storage.close()

        assert 1 == len(stored)
        assert [stored[0]] * len(engines) == answers
        assert saved is not None
        assert stored[0].id == saved.booking_id
        assert len(engines) == len(one_calls)  # every caller tried the one-call write first

    def test_update_booking_checks_the_version_and_refuses_moves(
        self, engine: BookingEngine, storage: PostgresStorage
    ) -> None:
        """A stale version is a ConcurrencyError, a moved booking an InvalidInputError; neither writes."""
        made = engine.book("wash", at(2, 10))
        before = snapshot(engine)
        with storage.transaction("wash") as tx:
            with pytest.raises(ConcurrencyError):
                tx.update_booking(attrs.evolve(made, notes="x", version=3), expected_version=2)
            with pytest.raises(InvalidInputError):
                tx.update_booking(attrs.evolve(made, start=at(2, 9), version=2), expected_version=1)
            with pytest.raises(NotFoundError):
                tx.update_booking(attrs.evolve(made, id="nope"), expected_version=1)
            tx.commit()

        assert before == snapshot(engine)


# --- static guards (C10, S2, S3) -------------------------------------------------------------------------------------

SQL_CALLS = {"execute", "executemany", "_all", "_one", "_write"}
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)


def _tree() -> ast.Module:
    return ast.parse(SOURCE.read_text(encoding="utf-8"))


def _strings(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


class TestStaticGuards:
    def test_sql_is_never_built_from_strings(self) -> None:
        """No f-string, ``%``, ``+``, ``.format`` or ``.join`` reaches a statement; identifiers go through sql.Identifier (S3)."""
        problems = []
        helpers = {"_all", "_one", "_write"}
        for function in ast.walk(_tree()):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr not in SQL_CALLS or not node.args:
                    continue
                query = node.args[0]
                text = ast.unparse(query)
                if isinstance(query, ast.JoinedStr | ast.BinOp):
                    problems.append(f"line {node.lineno}: {text[:60]}")
                if isinstance(query, ast.Call) and not text.startswith("sql.SQL("):
                    problems.append(f"line {node.lineno}: {text[:60]}")
                if text.startswith("sql.SQL(") and not re.fullmatch(
                    r"sql\.SQL\('[^']*'\)\.format\(sql\.Identifier\(self\._schema\)\)", text
                ):
                    problems.append(f"line {node.lineno}: {text[:80]}")
                literal = isinstance(query, ast.Constant) and isinstance(query.value, str)
                if (
                    node.func.attr in helpers
                    and function.name not in helpers
                    and not (literal or isinstance(query, ast.Name))
                ):
                    problems.append(f"line {node.lineno}: {node.func.attr} gets {text[:60]}")

        assert [] == problems

    def test_no_formatted_string_contains_sql(self) -> None:
        """f-strings in the adapter are messages, never statements."""
        formatted = [ast.unparse(n) for n in ast.walk(_tree()) if isinstance(n, ast.JoinedStr)]

        assert [] == [f for f in formatted if re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|SET)\b", f)]

    def test_every_statement_filters_on_the_tenant(self) -> None:
        """Every data statement names tenant_id; the others read the catalog or take a lock (S1/S2)."""
        statements = [s for s in _strings(_tree()) if SQL_START.match(s)]
        exempt = re.compile(
            r"pg_namespace|pg_extension|pg_advisory|pg_try_advisory|set_config|schema_version|MAX\(version\)"
            # the server function takes the tenant as its first argument (its own statements: the test below);
            # the version 4 migration drops rows of every tenant whose booking is gone
            r"|slotengine_reserve\(%s, |WHERE booked IS NULL"
        )

        assert len(statements) > 20
        assert [] == [s for s in statements if "tenant_id" not in s and not exempt.search(s)]

    def test_reserve_locks_then_checks_capacity_then_writes(self) -> None:
        """slotengine_reserve takes the locks, then checks versions and capacity, and only then writes (C10)."""
        body = postgres_module._RESERVE_FUNCTION

        def first(text: str) -> int:
            assert text in body, text
            return body.index(text)

        locks = first("pg_advisory_xact_lock(")
        catalogue = first("FROM catalogue_versions")
        resources = first("FROM resources WHERE tenant_id = p_tenant AND id = w.rid")
        seen = first("FOR UPDATE")
        check = first("IF v_peak + v_units[i] > v_caps[i] THEN")
        aside = first("UPDATE booking_resources SET exclusive = false")
        writes = [
            first("INSERT INTO bookings"),
            first("DELETE FROM booking_resources"),
            first("INSERT INTO transitions"),
        ]

        assert first("set_config('lock_timeout'") < locks < catalogue < resources < seen < check < aside < min(writes)
        # every way out before the writes writes nothing: it returns
        assert body[:aside].count("RETURN ") == 4
        # the reserve method sends the one statement (and BEGIN, the lock timeout) in one batch
        method = next(n for n in ast.walk(_tree()) if isinstance(n, ast.FunctionDef) and n.name == "reserve")
        source = ast.unparse(method)
        assert source.count("self._batch(") == 1
        assert "_RESERVE" in source
        assert "self._write(" not in source

    def test_every_statement_of_the_server_function_is_scoped_by_tenant(self) -> None:
        """Every statement of slotengine_reserve that reads or writes a table names p_tenant (S1/S2)."""
        body = postgres_module._RESERVE_FUNCTION.split("BEGIN", 1)[1]
        statements = [part.strip() for part in body.split(";")]
        touching = [
            st
            for st in statements
            if re.search(
                r"\b(FROM|INTO|UPDATE|JOIN)\s+(bookings|booking_resources|resources|catalogue_versions"
                r"|transitions|outbox)\b",
                st,
            )
        ]

        assert len(touching) >= 9
        assert [] == [st for st in touching if "p_tenant" not in st]

    def test_locks_are_sorted_with_a_timeout_and_transactions_read_committed(self) -> None:
        """The lock statement takes keys in the given (sorted) order after SET LOCAL lock_timeout; READ COMMITTED."""
        source = SOURCE.read_text(encoding="utf-8")
        lock = next(n for n in ast.walk(_tree()) if isinstance(n, ast.FunctionDef) and n.name == "_lock_steps")

        assert "ORDER BY u.n" in postgres_module._LOCK_RESOURCES
        assert "set_config('lock_timeout', %s, true)" in postgres_module._SET_LOCK_TIMEOUT
        order = next(n for n in ast.walk(_tree()) if isinstance(n, ast.FunctionDef) and n.name == "_locks_for")
        assert "_locks_wanted" in ast.unparse(lock)
        assert "sorted({resource_lock_key(" in ast.unparse(order)
        assert "ORDER BY a.n;" in postgres_module._RESERVE_FUNCTION
        assert "IsolationLevel.READ_COMMITTED" in source


def _with_options(options: str) -> str:
    """The test DSN with libpq ``options`` (session settings a DSN, a role or a database may impose)."""
    return psycopg.conninfo.make_conninfo(DSN, options=options)


class TestWhatTheSessionMaySay:
    """Settings a DSN, a role or a database may impose change nothing (the adapter sets its own on every connection)."""

    @pytest.mark.parametrize("isolation", ["repeatable\\ read", "serializable"])
    def test_a_default_isolation_above_read_committed_cannot_oversell(self, schema: str, isolation: str) -> None:
        """A one-call booking waiting for the locks sees the booking committed by their holder (it sold a third seat)."""
        storage = PostgresStorage(_with_options(f"-c default_transaction_isolation={isolation}"), schema=schema)
        try:
            catalogue(storage, "t", {"r1": 2})
            with storage.transaction("t") as tx:
                tx.reserve(booking("b0", at(3, 10), at(3, 11)), now=at(2, 8))
                version = tx.catalogue_version()
                tx.commit()
            locked, go, answers = threading.Event(), threading.Event(), {}

            def holder() -> None:
                with storage.transaction("t") as tx:
                    tx.lock_resources(["r1"])
                    locked.set()
                    go.wait(10)
                    tx.reserve(booking("b1", at(3, 10), at(3, 11)), now=at(2, 8))
                    tx.commit()

            def racer() -> None:
                try:
                    storage.reserve_and_record(
                        "t", booking("b2", at(3, 10), at(3, 11)), now=at(2, 8), transitions=(), outbox=(),
                        catalogue_version=version,
                    )  # fmt: skip
                    answers["b2"] = "ok"
                except ConflictError:
                    answers["b2"] = "conflict"

            first = threading.Thread(target=holder)
            first.start()
            locked.wait(10)
            second = threading.Thread(target=racer)
            second.start()
            time.sleep(0.5)  # the racer's statement has begun, and waits for the holder's locks
            go.set()
            first.join()
            second.join()
            with storage.transaction("t") as tx:
                live = sorted(ld.booking_id for ld in tx.loads(["r1"], Interval(at(3, 10), at(3, 11))))
        finally:
            storage.close()

        assert {"b2": "conflict"} == answers
        assert ["b0", "b1"] == live

    def test_the_server_function_refuses_to_run_above_read_committed(self, schema: str) -> None:
        """slotengine_reserve called at REPEATABLE READ (by any client) raises instead of checking on an old snapshot."""
        PostgresStorage(DSN, schema=schema).close()
        request = postgres_module._reserve_request(booking("b1", at(3, 10), at(3, 11)), now=at(2, 8))
        with psycopg.connect(DSN) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            with pytest.raises(psycopg.Error) as info:
                conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,))

        assert "SE001" == info.value.sqlstate
        assert "READ COMMITTED" in str(info.value)

    def test_latin1_sql_dates_and_another_zone_change_nothing(self, schema: str) -> None:
        """client_encoding LATIN1, DateStyle 'SQL, DMY', IntervalStyle and TimeZone: the same bookings, text and instants."""
        odd = "-c client_encoding=LATIN1 -c DateStyle=SQL,DMY -c IntervalStyle=sql_standard -c TimeZone=Asia/Kolkata"
        storage = PostgresStorage(_with_options(odd), schema=schema)
        try:
            engine = make_engine(storage)
            furnish(engine)
            fast = engine.book("wash", at(3, 10), customer_id="zoë", notes="café ☕")  # the one-call write
            with storage.transaction("wash") as tx:
                tx.reserve(booking("b2", at(3, 12), at(3, 13), resources=("box1",), customer_id="zoë"), now=at(2, 8))
                tx.commit()
            with storage.transaction("wash") as tx:
                found = sorted(b.id for b in tx.find_bookings(BookingQuery(customer_id="zoë")))
                second = tx.get_booking("b2")
                loads = tx.loads(["box1"], Interval(at(3, 9), at(3, 14)))
            again = engine.get(fast.id)
        finally:
            storage.close()
        with raw(schema) as conn:
            stored = conn.execute("SELECT customer_id, doc->>'notes' FROM bookings WHERE id = %s", (fast.id,)).fetchone()

        assert sorted([fast.id, "b2"]) == found
        assert ("zoë", "café ☕") == stored
        assert (fast.start, fast.end, fast.notes) == (again.start, again.end, again.notes)
        assert "zoë" == second.customer_id
        assert {at(3, 10), at(3, 12)} == {ld.interval.start for ld in loads}


class TestArgumentsLikeTheOtherAdapters:
    def test_units_past_two_to_the_31_are_summed_as_in_memory(self, schema: str) -> None:
        """Three needs of a billion units on one resource, and a peak past 2^31: the answers memory gives."""
        from slotengine.model import MAX_UNITS

        def answers(storage: Any) -> list[str]:
            out = []
            catalogue(storage, "t", {"big": UNLIMITED, "cap": MAX_UNITS, "was": UNLIMITED})
            for rid in ("big", "cap"):
                huge = Booking(
                    f"b-{rid}", "s1", at(3, 10), at(3, 11),
                    tuple(Assignment(i, "", (rid,)) for i in range(3)), (MAX_UNITS,) * 3,
                    BookingStatus.CONFIRMED, datetime(2026, 1, 1, tzinfo=UTC),
                )  # fmt: skip
                try:
                    with storage.transaction("t") as tx:
                        tx.reserve(huge, now=at(2, 8))
                        tx.commit()
                    out.append("ok")
                except ConflictError:
                    out.append("conflict")
            with storage.transaction("t") as tx:
                for n in range(3):
                    tx.reserve(booking(f"w{n}", at(3, 10), at(3, 11), resources=("was",), units=MAX_UNITS), now=at(2, 8))
                tx.put_resource(Resource("was", "Resource was", capacity=MAX_UNITS))
                tx.commit()
            try:
                with storage.transaction("t") as tx:
                    tx.reserve(booking("one-more", at(3, 10), at(3, 11), resources=("was",)), now=at(2, 8))
                out.append("ok")
            except ConflictError:
                out.append("conflict")
            return out

        storage = PostgresStorage(DSN, schema=schema)
        try:
            on_postgres = answers(storage)
        finally:
            storage.close()

        assert answers(MemoryStorage()) == on_postgres == ["ok", "conflict", "conflict"]

    def test_a_reserve_refused_before_it_was_sent_leaves_no_lock_counted_as_held(self, storage: PostgresStorage) -> None:
        """A bad `now` is refused with a typed error, and the transaction's next reserve still takes its locks."""
        catalogue(storage, "t", {"r1": 2})
        with storage.transaction("t") as tx:
            with pytest.raises(InvalidInputError):
                tx.reserve(booking("b1", at(3, 10), at(3, 11)), now="2026-03-02T08:00:00+00:00")  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError):
                tx.reserve(booking("b1", at(3, 10), at(3, 11)), now=at(2, 8), exclude=[1])  # type: ignore[list-item]
            assert set() == tx._locked  # type: ignore[attr-defined]
            tx.reserve(booking("b1", at(3, 10), at(3, 11)), now=at(2, 8))
            assert tx._locked  # type: ignore[attr-defined]
            with psycopg.connect(DSN, autocommit=True) as other:
                key = resource_lock_key("t", "r1")
                taken = other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            tx.commit()

        assert (False,) == taken  # the transaction really holds the resource's lock

    def test_now_with_any_offset_python_allows(self, storage: PostgresStorage) -> None:
        """An offset PostgreSQL cannot read (-23:59:59, half a second) is the same instant, as in memory."""
        catalogue(storage, "t", {"r1": 1})
        odd = [
            at(2, 8).astimezone(timezone(-timedelta(hours=23, minutes=59, seconds=59))),
            at(2, 8).astimezone(timezone(timedelta(microseconds=500_000))),
        ]
        for n, now in enumerate(odd):
            with storage.transaction("t") as tx:
                tx.reserve(booking(f"b{n}", at(3, 10 + n), at(3, 11 + n)), now=now)
                tx.commit()
            with storage.transaction("t") as tx:
                version = tx.catalogue_version()
            storage.reserve_and_record(
                "t", booking(f"c{n}", at(4, 10 + n), at(4, 11 + n)), now=now, transitions=(), outbox=(),
                catalogue_version=version,
            )  # fmt: skip

        with storage.transaction("t") as tx:
            assert 4 == len(tx.find_bookings(BookingQuery()))

    def test_a_resource_id_that_is_not_text_is_not_found(self, storage: PostgresStorage) -> None:
        """lock_resources([None]) and ([7]) are NotFoundError, as memory and SQLite say (it was AttributeError)."""
        catalogue(storage, "t", {"r1": 1})
        for bad in (None, 7):
            with storage.transaction("t") as tx, pytest.raises(NotFoundError, match="no resource"):
                tx.lock_resources(["r1", bad])  # type: ignore[list-item]

    @pytest.mark.parametrize(
        "dsn",
        ["postgresql://app:S3cretPassw0rd@[db.internal:5432/test", "postgresql://postgres@127.0.0.1:5432/test?\ud800=1"],
    )
    def test_a_dsn_that_is_no_dsn_is_refused_without_its_password(self, dsn: str) -> None:
        """A malformed DSN is an InvalidInputError at once, naming no password (libpq's message quoted it)."""
        with pytest.raises(InvalidInputError, match="not a PostgreSQL connection string") as info:
            PostgresStorage(dsn)

        assert "S3cret" not in str(info.value)

    def test_a_lock_timeout_postgresql_cannot_take_is_refused_at_once(self) -> None:
        """30 days is beyond PostgreSQL's lock_timeout: InvalidInputError at construction, not a pool failure later."""
        with pytest.raises(InvalidInputError, match="lock_timeout"):
            PostgresStorage(DSN, lock_timeout=timedelta(days=30))
