"""
`SQLiteStorage`: what it keeps across restarts, its schema, tenant isolation, hostile strings, instants, errors.

Most tests go through `BookingEngine` (the only caller of the port), a few talk to the port directly, and the
file is inspected with plain ``sqlite3`` where the point is what is really stored. A differential test runs
the same operations on `MemoryStorage` (the reference) and checks that both answer alike. The static tests at
the end read the adapter's source (research note C10, S2, S3, D5).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import itertools
import os
import re
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slotengine
import slotengine.adapters.sqlite as sqlite_module
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import APPLICATION_ID, SCHEMA_VERSION, SQLiteStorage
from slotengine.authorization import Actor
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConcurrencyError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SlotEngineError,
    StorageError,
)
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import UNLIMITED, Need, Resource, Service
from slotengine.money import Money
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery, IdempotencyRecord
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)
SOURCE = Path(sqlite_module.__file__)
SRC = Path(slotengine.__file__).parent


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant on day *day* of March 2026, Paris time (2 March is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def business() -> Business:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(18))))
    return Business("Car wash", "Europe/Paris", hours)


WASH = Service("wash", "Wash", needs=[Need(type="box")], duration=30 * M, buffer_after=10 * M, price=Money("20", "EUR"))


def make_engine(storage: object, tenant: str = "wash", *, prefix: str = "id") -> BookingEngine:
    counter = itertools.count(1)
    return BookingEngine(
        storage,  # type: ignore[arg-type]
        clock=FrozenClock(at(2, 8)),
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


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to the file, for looking at what is really stored."""
    return sqlite3.connect(path, isolation_level=None)


def schema(path: Path) -> list[tuple[str, ...]]:
    conn = raw(path)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "slotengine.db"


@pytest.fixture
def storage(path: Path) -> Iterator[SQLiteStorage]:
    made = SQLiteStorage(path)
    yield made
    made.close()


@pytest.fixture
def engine(storage: SQLiteStorage) -> BookingEngine:
    made = make_engine(storage)
    furnish(made)
    return made


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


# --- persistence ---------------------------------------------------------------------------------------------


class TestPersistence:
    def test_everything_survives_closing_and_reopening(self, path: Path) -> None:
        """Business, catalogue order, bookings, the log, the outbox and idempotency keys survive a restart."""
        storage = SQLiteStorage(path)
        engine = make_engine(storage)
        furnish(engine, boxes=("box2", "box1", "box3"))
        held = engine.hold("wash", at(2, 10), customer_id="ann", idempotency_key="k1")
        booked = engine.book("wash", at(2, 11), customer_id="bob", notes="line one\nline two")
        engine.pay(booked.id, Money("20", "EUR"), payment_id="pay-1")
        engine.cancel(held.id)
        before = snapshot(engine)
        storage.close()

        reopened = SQLiteStorage(path)
        again = make_engine(reopened, prefix="other")
        after = snapshot(again)
        replayed = again.hold("wash", at(2, 10), customer_id="ann", idempotency_key="k1")
        reopened.close()

        assert before == after
        assert ["box2", "box1", "box3"] == [r.id for r in after[1]]  # type: ignore[attr-defined]
        assert held.id == replayed.id

    def test_replacing_a_resource_keeps_its_place(self, storage: SQLiteStorage) -> None:
        """put_resource on an existing id replaces it in place, as MemoryStorage does."""
        engine = make_engine(storage)
        furnish(engine, boxes=("a", "b", "c"))
        engine.add_resource(Resource("a", "Renamed", type="box"))

        assert [("a", "Renamed"), ("b", "Box b"), ("c", "Box c")] == [(r.id, r.name) for r in engine.resources()]

    def test_uncommitted_and_failed_transactions_leave_nothing(self, storage: SQLiteStorage, path: Path) -> None:
        """Leaving without commit, or by an exception, rolls back every write of the transaction."""
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "One"))

        def fail() -> None:
            with storage.transaction("t") as tx:
                tx.put_resource(Resource("r2", "Two"))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail()
        with storage.transaction("t") as tx:
            found = tx.list_resources()
        conn = raw(path)
        rows = conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0]
        conn.close()

        assert [] == found
        assert 0 == rows

    def test_a_transaction_reads_its_own_writes(self, storage: SQLiteStorage) -> None:
        """Inside a transaction, reads see the transaction's pending writes."""
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "One"))
            seen = tx.get_resource("r1").name

        assert "One" == seen


# --- schema ---------------------------------------------------------------------------------------------------


class TestSchema:
    def test_a_new_file_gets_the_current_version_and_mark(self, storage: SQLiteStorage, path: Path) -> None:
        """A new file is created at SCHEMA_VERSION with slotengine's application_id, in WAL mode."""
        conn = raw(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.close()

        assert (SCHEMA_VERSION, APPLICATION_ID, "wal") == (version, app, mode)

    def test_reopening_is_idempotent(self, engine: BookingEngine, storage: SQLiteStorage, path: Path) -> None:
        """Opening an existing file never re-creates the schema or loses data, however often."""
        engine.book("wash", at(2, 10))
        before_schema, before_state = schema(path), snapshot(engine)
        storage.close()
        for _ in range(3):
            SQLiteStorage(path).close()
        reopened = SQLiteStorage(path)

        assert before_schema == schema(path)
        assert before_state == snapshot(make_engine(reopened))
        reopened.close()

    def test_an_empty_file_is_initialised(self, path: Path) -> None:
        """A zero-byte file (as `touch` makes) becomes a slotengine database."""
        path.touch()
        SQLiteStorage(path).close()

        assert any(row[1] == "bookings" for row in schema(path))

    def test_a_newer_schema_is_refused_and_left_alone(self, storage: SQLiteStorage, path: Path) -> None:
        """A file written by a newer slotengine is refused with a clear StorageError, and not touched."""
        storage.close()
        conn = raw(path)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        before = schema(path)

        with pytest.raises(StorageError, match="schema version 99") as info:
            SQLiteStorage(path)

        assert 99 == info.value.details["schema_version"]
        assert before == schema(path)
        conn = raw(path)
        assert 99 == conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()

    def test_another_programs_database_is_refused(self, path: Path) -> None:
        """An SQLite file with tables but no slotengine mark, or another application_id, is refused."""
        conn = raw(path)
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.close()
        other = path.with_name("other.db")
        conn = raw(other)
        conn.execute("PRAGMA application_id = 42")
        conn.close()

        with pytest.raises(StorageError, match="another program"):
            SQLiteStorage(path)
        with pytest.raises(StorageError, match="another program"):
            SQLiteStorage(other)
        assert [("table", "notes", "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")] == schema(path)

    def test_concurrent_first_opens_create_the_schema_once(self, path: Path) -> None:
        """Eight threads opening a new file at once all succeed; the schema is created exactly once."""
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def open_it() -> None:
            barrier.wait()
            try:
                SQLiteStorage(path).close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert [] == errors
        assert 1 == sum(1 for row in schema(path) if row[1] == "bookings")

    def test_tenant_leads_every_key_and_index(self, storage: SQLiteStorage, path: Path) -> None:
        """Every table has a NOT NULL tenant column that leads its primary key and every index (S2)."""
        conn = raw(path)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        problems = []
        for table in tables:
            columns = conn.execute('SELECT name, "notnull", pk FROM pragma_table_info(?)', (table,)).fetchall()
            pk = [name for name, _nn, pos in sorted(columns, key=lambda c: c[2]) if pos > 0]
            if ("tenant", 1) not in [(name, nn) for name, nn, _pk in columns]:
                problems.append(f"{table}: no NOT NULL tenant")
            if pk[:1] != ["tenant"]:
                problems.append(f"{table}: primary key {pk}")
            for (index,) in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
                first = conn.execute("SELECT name FROM pragma_index_info(?) WHERE seqno = 0", (index,)).fetchone()
                if first != ("tenant",):
                    problems.append(f"{table}.{index} starts with {first}")
        conn.close()

        assert {"businesses", "resources", "services", "bookings", "booking_resources", "transitions", "outbox"} <= set(
            tables
        )
        assert [] == problems

    def test_the_status_check_lists_exactly_the_lifecycle(self) -> None:
        """The CHECK on bookings.status names every BookingStatus and nothing else."""
        text = next(s for s in sqlite_module._SCHEMA_V1 if "CREATE TABLE bookings" in s)
        listed = re.search(r"status IN \(([^)]*)\)", text)

        assert listed is not None
        assert {s.value for s in BookingStatus} == set(re.findall(r"'(\w+)'", listed.group(1)))

    def test_check_constraints_are_a_backstop(self, engine: BookingEngine, path: Path) -> None:
        """Rows that the domain would never make (end <= start, units 0, unknown status, text instants) fail."""
        engine.book("wash", at(2, 10))
        conn = raw(path)
        conn.execute("PRAGMA foreign_keys = ON")
        bad = [
            "UPDATE bookings SET end_us = start_us",
            "UPDATE bookings SET status = 'bogus'",
            "UPDATE bookings SET start_us = '2026-03-02T09:00:00Z'",
            "UPDATE bookings SET hold_until_us = 1 WHERE status = 'confirmed'",
            "UPDATE booking_resources SET units = 0",
            "UPDATE booking_resources SET blocked_end_us = blocked_start_us",
            "UPDATE booking_resources SET resource_id = 'no-such-resource'",
        ]
        refused = []
        for statement in bad:
            try:
                conn.execute(statement)
            except sqlite3.IntegrityError:
                refused.append(statement)
        conn.close()

        assert bad == refused

    def test_instants_are_integer_microseconds(self, engine: BookingEngine, path: Path) -> None:
        """Every queried instant column holds INTEGER UTC microseconds, never text (B18)."""
        engine.hold("wash", at(2, 10), idempotency_key="k")
        conn = raw(path)
        types = set(
            conn.execute(
                """
                SELECT typeof(start_us) || typeof(end_us) || typeof(blocked_start_us) || typeof(blocked_end_us)
                       || typeof(hold_until_us) FROM bookings
                UNION ALL SELECT typeof(blocked_start_us) || typeof(blocked_end_us) FROM booking_resources
                UNION ALL SELECT typeof(created_at_us) FROM idempotency
                """
            ).fetchall()
        )
        start_us = conn.execute("SELECT start_us FROM bookings").fetchone()[0]
        conn.close()

        assert {("integer" * 5,), ("integer" * 2,), ("integer",)} == types
        assert (at(2, 10) - datetime(1970, 1, 1, tzinfo=UTC)) // US == start_us


class TestConnections:
    def test_pragmas(self, path: Path) -> None:
        """WAL, foreign keys, the busy timeout, and synchronous=FULL unless NORMAL is asked for (D4)."""
        found = {}
        for level, expected in [("FULL", 2), ("normal", 1), ("EXTRA", 3)]:
            storage = SQLiteStorage(path, timeout=2.5, synchronous=level)
            conn = storage._handle().conn
            assert conn is not None
            found[level] = (
                conn.execute("PRAGMA synchronous").fetchone()[0],
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA foreign_keys").fetchone()[0],
                conn.execute("PRAGMA busy_timeout").fetchone()[0],
                conn.isolation_level,
            )
            storage.close()
            assert (expected, "wal", 1, 2500, None) == found[level]
        assert "FULL" == SQLiteStorage(path).synchronous

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"synchronous": "OFF"}, "synchronous"),
            ({"synchronous": 2}, "synchronous"),
            ({"timeout": -1}, "timeout"),
            ({"timeout": float("nan")}, "timeout"),
            ({"timeout": True}, "timeout"),
        ],
    )
    def test_bad_options_are_refused(self, path: Path, kwargs: dict[str, object], field: str) -> None:
        """Only FULL, EXTRA and NORMAL durability, and a non-negative timeout, are accepted."""
        with pytest.raises(InvalidInputError) as info:
            SQLiteStorage(path, **kwargs)  # type: ignore[arg-type]

        assert field == info.value.details["field"]
        assert not path.exists()

    @pytest.mark.parametrize(
        "timeout",
        [2_200_000, float("inf"), 1e300, 2**40, 2**63, pytest.param(10**400, id="10**400"), 2_147_483.648],
    )
    def test_a_timeout_sqlite_cannot_keep_is_refused(self, path: Path, timeout: float) -> None:
        """
        Beyond 2^31-1 ms (PostgreSQL's lock_timeout bound too): InvalidInputError at construction.

        SQLite keeps the busy timeout as an int of milliseconds: 2,200,000 s (or inf, 1e300, 2**40) wrapped round
        to no wait at all, a busy database was a ConcurrencyError after 0.000 s; 10**400 raised OverflowError.
        """
        with pytest.raises(InvalidInputError, match="timeout") as info:
            SQLiteStorage(path, timeout=timeout)

        assert "timeout" == info.value.details["field"]
        assert not path.exists()

    def test_the_longest_timeout_is_kept_whole(self, path: Path) -> None:
        """(2^31-1)/1000 s is accepted and reaches SQLite as 2^31-1 ms (a busy database is waited for)."""
        storage = SQLiteStorage(path, timeout=(2**31 - 1) / 1000)
        try:
            conn = storage._handle().conn
            assert conn is not None
            busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        finally:
            storage.close()

        assert 2**31 - 1 == busy

    @pytest.mark.parametrize("bad", [":memory:", "", "file:x.db?mode=ro", b"x.db", 3])
    def test_only_file_paths(self, bad: object) -> None:
        """In-memory databases, URIs and non-paths are refused (each thread would see its own database)."""
        with pytest.raises(InvalidInputError):
            SQLiteStorage(bad)  # type: ignore[arg-type]

    def test_each_thread_has_its_own_connection_closed_when_it_ends(self, storage: SQLiteStorage) -> None:
        """A thread gets its own connection on first use; it is closed once the thread is gone."""
        seen: list[sqlite3.Connection] = []
        barrier = threading.Barrier(3)

        def work() -> None:
            with storage.transaction("t") as tx:
                tx.list_resources()
            conn = storage._handle().conn
            assert conn is not None
            seen.append(conn)
            barrier.wait()

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gc.collect()
        closed = []
        for conn in seen:
            try:
                conn.execute("SELECT 1")
            except sqlite3.ProgrammingError:
                closed.append(conn)

        assert 3 == len({id(c) for c in seen})
        assert seen == closed
        assert 1 == len(storage._handles)  # only the main thread's remains

    def test_close_closes_every_connection(self, storage: SQLiteStorage) -> None:
        """After close, no connection is open and every use is a StorageError; closing twice is harmless."""
        ready, done = threading.Event(), threading.Event()

        def keep() -> None:
            with storage.transaction("t"):
                pass
            ready.set()
            done.wait()

        thread = threading.Thread(target=keep)
        thread.start()
        ready.wait()
        handles = list(storage._handles)
        storage.close()
        storage.close()
        done.set()
        thread.join()

        assert 2 == len(handles)
        assert all(h.conn is None for h in handles)
        with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
            pass
        with pytest.raises(StorageError, match="closed"):
            make_engine(storage).resources()

    def test_transactions_do_not_nest(self, storage: SQLiteStorage) -> None:
        """A second transaction (or close, or backup) inside one in the same thread is a StorageError."""
        with storage.transaction("t"):
            with pytest.raises(StorageError, match="nest"), storage.transaction("t"):
                pass
            with pytest.raises(StorageError):
                storage.close()
            with pytest.raises(StorageError):
                storage.backup(storage.path + ".bak")

    def test_a_transaction_is_unusable_after_commit_and_after_its_block(self, storage: SQLiteStorage) -> None:
        """Writes after commit, and anything after the ``with`` block, are StorageErrors (never autocommitted)."""
        with storage.transaction("t") as tx:
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


# --- tenant isolation (S1) -------------------------------------------------------------------------------------


class TestTenantIsolation:
    def test_colliding_ids_stay_apart(self, storage: SQLiteStorage) -> None:
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

    def test_every_call_with_another_tenants_ids_is_not_found_and_changes_nothing(self, storage: SQLiteStorage) -> None:
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

        assert [] == leaked
        assert [] == a.list(resource_id="beta-box")
        with pytest.raises(NotFoundError):
            a.transitions(b_only[0])
        assert before == (snapshot(a), snapshot(b))

    def test_port_reads_and_writes_with_another_tenants_ids(self, storage: SQLiteStorage) -> None:
        """At the port: gets are NotFound, updates are NotFound, keyed records are absent; B is unchanged."""
        b = make_engine(storage, "beta")
        furnish(b)
        held = b.hold("wash", at(2, 10), idempotency_key="key-b")
        message = b.outbox()[0]
        before = snapshot(b)
        with storage.transaction("alpha") as tx:
            for read in (
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
                    read()
            assert tx.get_idempotency("key-b") is None
            assert [] == tx.loads(["box1", "box2"], Interval(at(2, 0), at(3, 0)))
            assert [] == tx.find_bookings(BookingQuery())
            assert [] == tx.due_holds(at(9, 0))
            assert [] == tx.list_transitions()
            assert [] == tx.list_outbox()
            tx.commit()

        assert before == snapshot(b)


# --- hostile strings (S3, B17) ---------------------------------------------------------------------------------

HOSTILE = [
    "' OR 1=1 --",
    "'; DROP TABLE bookings; --",
    'Robert"); DROP TABLE outbox; --',
    "back\\slash\\\\ and \\' quote",
    "quotes ' \" ` ''",
    "\u202egnp.exe \u2066isolate\u2069 \u200f",  # RTL override, isolates, RLM
    "שלום مرحبا",
    "%s %d {0} {} ? ?1 :tenant $x @y",
    "NULL",
    "line\nbreak\ttab\r",
    "emoji 🚗 and combining é",
    "%' OR '%' = '",
    "*/ SELECT * FROM businesses; /*",
]


class TestHostileStrings:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_round_trip_verbatim_and_the_schema_is_unchanged(
        self, storage: SQLiteStorage, path: Path, text: str
    ) -> None:
        """A hostile string in every string field is stored and read back verbatim, and finds what it should."""
        before = schema(path)
        engine = make_engine(storage, tenant=text)
        engine.setup(business())
        engine.add_resource(Resource(text, text, type=text))
        service = Service(text, text, needs=[Need(type=text)], duration=30 * M)
        engine.add_service(service)
        made = engine.hold(
            text,
            at(2, 10),
            customer_id=text,
            notes=text,
            external_ref=text,
            source=text,
            actor=Actor.customer(text),
            idempotency_key=text,
        )
        fetched = engine.get(made.id)
        replayed = engine.hold(
            text,
            at(2, 10),
            customer_id=text,
            notes=text,
            external_ref=text,
            source=text,
            actor=Actor.customer(text),
            idempotency_key=text,
        )

        assert made == fetched == replayed
        assert (text, text, text, text) == (fetched.customer_id, fetched.notes, fetched.external_ref, fetched.source)
        assert [made] == engine.list(customer_id=text)
        assert [made] == engine.list(external_ref=text)
        assert [made] == engine.list(source=text)
        assert [made] == engine.list(resource_id=text)
        assert [made] == engine.list(service_id=text)
        assert [] == engine.list(customer_id=text + " ")
        assert f"customer:{text}" == engine.transitions(made.id)[0].actor
        assert (text, text) == (engine.resources()[0].id, engine.resources()[0].name)
        assert before == schema(path)

    def test_nul_and_lone_surrogates_are_refused_and_change_nothing(self, engine: BookingEngine) -> None:
        """NUL is refused by the domain; a lone surrogate (SQLite cannot store it) is an input error too."""
        before = snapshot(engine)
        with pytest.raises(InvalidInputError):
            engine.hold("wash", at(2, 10), customer_id="ann\x00e")
        with pytest.raises(InvalidInputError):
            engine.hold("wash", at(2, 10), customer_id="ann\ud800")

        assert before == snapshot(engine)

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=200))
    def test_any_text_round_trips(self, storage: SQLiteStorage, text: str) -> None:
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


# --- instants (B18) --------------------------------------------------------------------------------------------


class TestInstants:
    def test_mixed_precision_and_offsets_order_and_overlap_exactly(self, storage: SQLiteStorage) -> None:
        """Fractional seconds and other UTC offsets order by instant, and overlap is exact to the microsecond."""
        catalogue(storage, "t", {"r1": UNLIMITED})
        base = datetime(2030, 1, 1, 10, tzinfo=UTC)
        starts = {
            "half": base + 500_000 * US,  # 10:00:00.500000Z, which text would order before 10:00:00Z
            "whole": base,
            "paris": base.astimezone(PARIS) + 1 * US,  # 11:00:00.000001+01:00
            "just-before": base - 1 * US,
            "kolkata": (base + 250 * US).astimezone(ZoneInfo("Asia/Kolkata")),
            "fixed": (base + 2 * US).astimezone(timezone(timedelta(hours=-3, minutes=-30))),
        }
        with storage.transaction("t") as tx:
            for name, start in starts.items():
                tx.reserve(booking(name, start, start + H), now=base - H)
            tx.commit()
        with storage.transaction("t") as tx:
            ordered = [b.id for b in tx.find_bookings(BookingQuery())]
            touching = tx.find_bookings(BookingQuery(period=Interval(base - H, base - 1 * US)))
            at_edge = tx.find_bookings(BookingQuery(period=Interval(base - H, base)))
            after_half = {ld.booking_id for ld in tx.loads(["r1"], Interval(base + H + 499_999 * US, base + 2 * H))}

        assert sorted(starts, key=lambda n: (starts[n], n)) == ordered
        assert ["just-before", "whole", "paris", "fixed", "kolkata", "half"] == ordered
        assert [] == touching  # [s, s+1h) with s = base - 1µs ends at base + 1h - 1µs; the period ends before it
        assert ["just-before"] == [b.id for b in at_edge]
        assert {"half"} == after_half

    def test_holds_expire_at_the_exact_microsecond(self, storage: SQLiteStorage) -> None:
        """A hold blocks strictly before hold_until and is due at it (H1), with a sub-second expiry."""
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
                    tx.reserve(booking("other", start, start + H), now=now)
                    outcomes.append((due, "booked"))
                except ConflictError:
                    outcomes.append((due, "conflict"))

        assert [([], "conflict"), (["held"], "booked")] == outcomes


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
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStorage]:
    made = SQLiteStorage(tmp_path_factory.mktemp("parity") / "parity.db", synchronous="NORMAL")
    yield made
    made.close()


def _load_key(ld: object) -> tuple[object, ...]:
    return attrs.astuple(ld, recurse=False)[:7]  # type: ignore[arg-type]


class TestParityWithMemory:
    @settings(max_examples=150)
    @given(data=st.data())
    def test_same_operations_same_answers(self, shared: SQLiteStorage, data: st.DataObject) -> None:
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


class TestLogOutboxIdempotency:
    def test_the_log_and_outbox_keep_order_and_pending_state(
        self, engine: BookingEngine, storage: SQLiteStorage
    ) -> None:
        """Transitions and outbox messages come back in written order; pending_only follows sent/failed."""
        first = engine.hold("wash", at(2, 10))
        second = engine.book("wash", at(2, 11))
        engine.confirm(first.id)
        messages = engine.outbox()
        with storage.transaction("wash") as tx:
            tx.update_outbox(attrs.evolve(messages[0], attempts=1, sent_at=at(2, 8)))
            tx.update_outbox(attrs.evolve(messages[2], attempts=5, failed_at=at(2, 8), last_error="gave up"))
            with pytest.raises(StorageError, match="exists already"):
                tx.append_outbox([messages[1]])
            with pytest.raises(NotFoundError):
                tx.update_outbox(attrs.evolve(messages[0], id="nope"))
            tx.commit()

        assert [first.id, second.id, first.id] == [t.booking_id for t in engine.transitions()]
        assert [first.id, first.id] == [t.booking_id for t in engine.transitions(first.id)]
        assert [m.id for m in messages] == [m.id for m in engine.outbox()]
        assert [messages[1].id] == [m.id for m in engine.outbox(pending_only=True)]
        assert "gave up" == engine.outbox()[2].last_error

    def test_an_idempotency_key_is_saved_once(self, storage: SQLiteStorage) -> None:
        """put_idempotency refuses a key that exists (ConcurrencyError); the record round-trips."""
        record = IdempotencyRecord("k", "hash", "b1", "{}", datetime(2030, 1, 1, 10, 0, 0, 1, tzinfo=PARIS))
        with storage.transaction("t") as tx:
            tx.put_idempotency(record)
            with pytest.raises(ConcurrencyError):
                tx.put_idempotency(attrs.evolve(record, request_hash="other"))
            tx.commit()
        with storage.transaction("t") as tx:
            got = tx.get_idempotency("k")

        assert record == got

    def test_update_booking_checks_the_version_and_refuses_moves(
        self, engine: BookingEngine, storage: SQLiteStorage
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


# --- errors: nothing raw leaks ---------------------------------------------------------------------------------


class TestNoRawErrors:
    def test_a_corrupt_file_is_a_storage_error(self, path: Path) -> None:
        """A file that is not a database gives StorageError, and is left as it was."""
        path.write_bytes(b"this is not an SQLite database, only some bytes" * 100)

        with pytest.raises(StorageError, match="not a database"):
            SQLiteStorage(path)
        assert path.read_bytes().startswith(b"this is not")

    def test_unopenable_paths_are_storage_errors(self, tmp_path: Path) -> None:
        """A directory, or a file in a missing directory, gives StorageError."""
        for bad in (tmp_path, tmp_path / "missing" / "x.db"):
            with pytest.raises(StorageError):
                SQLiteStorage(bad)

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
    def test_a_read_only_file_is_a_storage_error(self, path: Path) -> None:
        """A database the process may not write gives StorageError, on open or on the first transaction."""
        SQLiteStorage(path).close()
        path.chmod(0o444)

        def use() -> None:
            storage = SQLiteStorage(path)
            try:
                make_engine(storage).setup(business())
            finally:
                storage.close()

        try:
            with pytest.raises(StorageError):
                use()
        finally:
            path.chmod(0o644)

    def test_a_locked_database_is_a_concurrency_error(self, path: Path) -> None:
        """Another writer holding the lock past the timeout gives ConcurrencyError, also through the engine."""
        storage = SQLiteStorage(path, timeout=0.05)
        blocker = raw(path)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(ConcurrencyError) as info, storage.transaction("t"):
                pass
            engine = make_engine(storage)
            engine.max_retries = 1
            with pytest.raises(ConcurrencyError):
                engine.resources()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert info.value.retryable
        assert "SQLITE_BUSY" == info.value.details["sqlite_error"]
        assert [] == make_engine(storage).resources()
        storage.close()

    @pytest.mark.parametrize(
        ("table", "doc"),
        [
            ("bookings", "{not json"),
            ("bookings", "[]"),
            ("bookings", '{"a":' * 100_000 + "1" + "}" * 100_000),  # RecursionError escaped
            ("resources", '{"id": 1}'),
            ("businesses", "{}"),
        ],
    )
    def test_a_corrupt_row_is_a_storage_error(self, engine: BookingEngine, path: Path, table: str, doc: str) -> None:
        """A stored document that no longer decodes gives StorageError, not a JSON or attrs error."""
        made = engine.book("wash", at(2, 10))
        conn = raw(path)
        # bookings_by_created reads each document, so the file refuses malformed JSON in bookings while it has
        # that index; the corruption comes from outside it (a copy restored without its indexes, say).
        conn.execute("DROP INDEX bookings_by_created")
        conn.execute(
            "UPDATE bookings SET doc = ? WHERE id = ?" if table == "bookings" else "SELECT 1",
            (doc, made.id) if table == "bookings" else (),
        )
        if table == "resources":
            conn.execute("UPDATE resources SET doc = ?", (doc,))
        if table == "businesses":
            conn.execute("UPDATE businesses SET doc = ?", (doc,))
        conn.close()

        with pytest.raises(StorageError, match="cannot be read back"):
            engine.get(
                made.id
            ) if table == "bookings" else engine.resources() if table == "resources" else engine.business()

    def test_a_constraint_violation_is_a_storage_error(self, engine: BookingEngine, storage: SQLiteStorage) -> None:
        """A row the CHECK constraints refuse gives StorageError and writes nothing."""
        made = engine.book("wash", at(2, 11))
        broken = attrs.evolve(made, id="broken", start=at(2, 14), end=at(2, 15))
        object.__setattr__(broken, "version", 0)  # a value the domain would never build
        with storage.transaction("wash") as tx, pytest.raises(StorageError, match="CHECK constraint"):
            tx.reserve(broken, now=at(2, 8))

        assert [made.id] == [b.id for b in engine.list()]

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (sqlite3.OperationalError("disk I/O error"), StorageError),
            (sqlite3.DatabaseError("database disk image is malformed"), StorageError),
            (sqlite3.ProgrammingError("Error binding parameter 1"), StorageError),
            (sqlite3.OperationalError("database is locked"), ConcurrencyError),
        ],
    )
    def test_every_port_method_translates_sqlite_errors(
        self, storage: SQLiteStorage, error: sqlite3.Error, expected: type[StorageError]
    ) -> None:
        """Whatever statement fails, in whichever method, the caller gets a StorageError (or ConcurrencyError)."""
        made = booking("b1", at(2, 10), at(2, 11))
        message = OutboxMessage("m1", "topic", "b1", at(2, 8), at(2, 8), "m1", "{}")
        record = IdempotencyRecord("k", "h", "b1", "{}", at(2, 8))
        calls = {
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
            "append_transitions": lambda tx: tx.append_transitions([]) or tx.list_transitions(),
            "list_transitions": lambda tx: tx.list_transitions("b1"),
            "append_outbox": lambda tx: tx.append_outbox([message]),
            "list_outbox": lambda tx: tx.list_outbox(pending_only=True),
            "update_outbox": lambda tx: tx.update_outbox(message),
            "get_idempotency": lambda tx: tx.get_idempotency("k"),
            "put_idempotency": lambda tx: tx.put_idempotency(record),
            "commit": lambda tx: tx.commit(),
        }

        class Failing:
            in_transaction = True

            def execute(self, *_args: object) -> None:
                raise error

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

    def test_a_transaction_sqlite_rolled_back_refuses_to_go_on(self, storage: SQLiteStorage) -> None:
        """If SQLite ends the transaction by itself, later statements raise instead of autocommitting."""
        with storage.transaction("t") as tx:
            tx._conn.execute("ROLLBACK")  # what SQLite does on its own after, e.g., a full disk
            with pytest.raises(StorageError, match="rolled this transaction back"):
                tx.put_resource(Resource("r1", "One"))
        with storage.transaction("t") as tx:
            assert [] == tx.list_resources()


# --- backup (D5) -------------------------------------------------------------------------------------------------


class TestBackup:
    def test_backup_is_a_consistent_working_copy(
        self, engine: BookingEngine, storage: SQLiteStorage, tmp_path: Path
    ) -> None:
        """backup() writes a complete database with the same data, readable by SQLiteStorage."""
        engine.hold("wash", at(2, 10), customer_id="ann")
        engine.book("wash", at(2, 11))
        target = tmp_path / "copy.db"
        storage.backup(target)
        copy = SQLiteStorage(target)
        conn = raw(target)
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        conn.close()

        assert [("ok",)] == integrity
        assert snapshot(engine) == snapshot(make_engine(copy))
        copy.close()

    def test_backup_while_another_thread_writes(
        self, engine: BookingEngine, storage: SQLiteStorage, tmp_path: Path
    ) -> None:
        """A backup taken while another thread is inside a write transaction copies a committed state."""
        inside, release = threading.Event(), threading.Event()

        def writer() -> None:
            with storage.transaction("wash") as tx:
                tx.put_resource(Resource("box9", "Box 9", type="box"))
                inside.set()
                release.wait(5)
                tx.commit()

        thread = threading.Thread(target=writer)
        thread.start()
        inside.wait(5)
        target = tmp_path / "copy.db"
        storage.backup(target)
        release.set()
        thread.join()
        copy = SQLiteStorage(target)

        assert ["box1", "box2"] == [r.id for r in make_engine(copy).resources()]
        assert ["box1", "box2", "box9"] == [r.id for r in engine.resources()]
        copy.close()

    def test_backup_onto_itself_is_refused(self, storage: SQLiteStorage) -> None:
        """The target cannot be the live file."""
        with pytest.raises(InvalidInputError):
            storage.backup(storage.path)


# --- static guards (C10, S2, S3, D5) -------------------------------------------------------------------------------

SQL_CALLS = {"execute", "executemany", "executescript", "_all", "_one", "_write"}
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|REPLACE)\b", re.IGNORECASE)


def _tree() -> ast.Module:
    return ast.parse(SOURCE.read_text(encoding="utf-8"))


def _strings(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


class TestStaticGuards:
    def test_sql_is_never_built_from_strings(self) -> None:
        """No f-string, ``%``, ``+``, ``.format`` or ``.join`` reaches a statement; helpers get literal SQL (S3)."""
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
                sql = node.args[0]
                if isinstance(sql, ast.JoinedStr | ast.BinOp | ast.Call):
                    problems.append(f"line {node.lineno}: {ast.unparse(sql)[:60]}")
                literal = isinstance(sql, ast.Constant) and isinstance(sql.value, str)
                # Inside the helpers themselves the statement is their `sql` parameter, passed on unchanged.
                if node.func.attr in helpers and function.name not in helpers and not literal:
                    problems.append(f"line {node.lineno}: {node.func.attr} gets {ast.unparse(sql)[:60]}")

        assert [] == problems

    def test_no_formatted_string_contains_sql(self) -> None:
        """f-strings in the adapter are messages, never statements."""
        formatted = [ast.unparse(n) for n in ast.walk(_tree()) if isinstance(n, ast.JoinedStr)]

        assert [] == [f for f in formatted if re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|WHERE)\b", f)]

    def test_connections_are_autocommit_and_transactions_immediate(self) -> None:
        """Every sqlite3.connect has isolation_level=None; the only BEGIN is BEGIN IMMEDIATE (C10)."""
        tree = _tree()
        connects = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "connect"
        ]
        levels = [[ast.unparse(k.value) for k in c.keywords if k.arg == "isolation_level"] for c in connects]
        begins = {s.strip() for s in _strings(tree) if re.match(r"^\s*BEGIN\b", s)}

        assert connects
        assert [["None"]] * len(connects) == levels
        assert {"BEGIN IMMEDIATE"} == begins

    def test_every_statement_filters_on_the_tenant(self) -> None:
        """Every data statement names the tenant column (S1/S2)."""
        statements = [s for s in _strings(_tree()) if SQL_START.match(s)]

        assert len(statements) > 20
        assert [] == [s for s in statements if "tenant" not in s and "sqlite_master" not in s]

    def test_reserve_checks_capacity_before_writing(self) -> None:
        """reserve() runs check_capacity (on loads read in the same transaction) before any write."""
        method = next(n for n in ast.walk(_tree()) if isinstance(n, ast.FunctionDef) and n.name == "reserve")
        calls = [
            ast.unparse(n.func)
            for n in ast.walk(method)
            if isinstance(n, ast.Call)
            and ast.unparse(n.func) in {"check_capacity", "self.loads", "self._put_booking", "self._write"}
        ]
        lines = {
            name: min(n.lineno for n in ast.walk(method) if isinstance(n, ast.Call) and ast.unparse(n.func) == name)
            for name in set(calls)
        }

        assert lines["self.loads"] < lines["check_capacity"] < lines["self._put_booking"] < lines["self._write"]

    def test_no_plain_file_io_on_database_files(self) -> None:
        """No storage adapter does plain file I/O, and nothing in src names a *.db, -wal or -shm file in it (D5)."""
        path_methods = {"open", "read_bytes", "write_bytes", "read_text", "write_text", "unlink", "rename", "truncate"}
        modules = {"shutil", "os", "io"}
        problems = []
        for source in sorted(SRC.rglob("*.py")):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            # Storage adapters may not touch files at all; elsewhere only calls naming a database file count
            # (a notifier's `opener.open(request)` is an HTTP request, not file I/O).
            in_adapters = source.name in {"sqlite.py", "postgres.py", "memory.py"} and "adapters" in source.parts
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Name):
                    is_io = func.id == "open"
                elif isinstance(func, ast.Attribute):
                    owner = func.value.id if isinstance(func.value, ast.Name) else ""
                    is_io = (
                        owner in modules
                        and func.attr
                        in {
                            *path_methods,
                            "copy",
                            "copy2",
                            "copyfile",
                            "copyfileobj",
                            "copytree",
                            "move",
                            "remove",
                            "replace",
                            "fdopen",
                        }
                    ) or (owner not in modules and func.attr in path_methods)
                else:
                    is_io = False
                text = ast.unparse(node)
                if is_io and (in_adapters or re.search(r"\.db|-wal|-shm|sqlite", text)):
                    problems.append(f"{source.relative_to(SRC)}:{node.lineno}: {text[:80]}")
        backups = [
            n
            for n in ast.walk(_tree())
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backup"
        ]

        assert [] == problems
        assert backups  # the backup goes through sqlite3's backup API

    def test_the_adapters_package_imports_no_adapter(self) -> None:
        """slotengine.adapters imports nothing, so SQLiteStorage is only where it is defined."""
        tree = ast.parse((SRC / "adapters" / "__init__.py").read_text(encoding="utf-8"))

        assert [] == [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        assert "SQLiteStorage" not in dir(slotengine)


class TestWithoutJSON1:
    def test_the_outbox_clause_holds_without_sqlites_json_functions(self, tmp_path: Path) -> None:
        """Where SQLite lacks JSON1 (optional before 3.38), list_outbox(booking_id=...) filters in Python instead."""
        from slotengine.testing.conformance import check_outbox

        counter = itertools.count()

        def factory() -> SQLiteStorage:
            storage = SQLiteStorage(tmp_path / f"plain{next(counter)}.db")
            storage._json1 = False
            return storage

        check_outbox(factory)


def test_a_storage_is_a_context_manager(tmp_path: Path) -> None:
    """`with SQLiteStorage(path) as s:` closes it at the end of the block; the file keeps what was committed."""
    with SQLiteStorage(tmp_path / "db.sqlite") as storage, storage.transaction("t") as tx:
        tx.put_resource(Resource("r1", "One"))
        tx.commit()
    with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
        pass
    with SQLiteStorage(tmp_path / "db.sqlite") as again, again.transaction("t") as tx:
        assert ["r1"] == [r.id for r in tx.list_resources()]


def _in_a_forked_child(work: Callable[[], str]) -> str:
    """Run *work* in a child made by fork() and return what it says (or the name of what it raised)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns about fork() with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            answer = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            answer = f"{type(exc).__name__}: {exc}"
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
class TestFork:
    def test_a_forked_child_cannot_use_its_parents_file(self, tmp_path: Path) -> None:
        """
        A storage open at fork() is refused in the child, and so is a new one on the same file (SQLite's locks
        stay with the parent: the child's commits went into a log another process deleted); another file works.
        """
        path, other = tmp_path / "shared.db", tmp_path / "own.db"
        storage = SQLiteStorage(path)
        try:
            engine = make_engine(storage)
            furnish(engine)

            def inherited() -> str:
                return str(len(engine.resources()))

            def reopened() -> str:
                with SQLiteStorage(path) as again, again.transaction("wash") as tx:
                    return str(len(tx.list_resources()))

            def elsewhere() -> str:
                with SQLiteStorage(other) as mine, mine.transaction("t") as tx:
                    return str(len(tx.list_resources()))

            assert _in_a_forked_child(inherited).startswith("StorageError: a SQLiteStorage cannot cross fork()")
            assert _in_a_forked_child(reopened).startswith("StorageError: ")
            assert "was open in the process this one was forked from" in _in_a_forked_child(reopened)
            assert "0" == _in_a_forked_child(elsewhere)
            assert 2 == len(engine.resources())  # the parent goes on
        finally:
            storage.close()

    def test_a_file_closed_before_the_fork_opens_in_the_child(self, tmp_path: Path) -> None:
        """Closing in the parent before forking (a preloading server's clean way) leaves the child free to open it."""
        path = tmp_path / "shared.db"
        with SQLiteStorage(path) as storage:
            furnish(make_engine(storage))

        def reopened() -> str:
            with SQLiteStorage(path) as mine, mine.transaction("wash") as tx:
                return str(len(tx.list_resources()))

        assert "2" == _in_a_forked_child(reopened)


def test_another_programs_database_is_refused_unchanged(tmp_path: Path) -> None:
    """Refused, and not switched to WAL mode on the way (its header changed from rollback journal to WAL)."""
    path = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(path)) as theirs:
        theirs.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        theirs.commit()
    before = path.read_bytes()

    with pytest.raises(StorageError, match="another program"):
        SQLiteStorage(path)
    assert before == path.read_bytes()


def test_create_false_opens_only_an_existing_database(tmp_path: Path) -> None:
    """A mistyped path with create=False is an error, not a new empty database; an existing file opens."""
    with pytest.raises(StorageError, match="create=False"):
        SQLiteStorage(tmp_path / "tpyo.db", create=False)
    assert not (tmp_path / "tpyo.db").exists()
    with pytest.raises(InvalidInputError, match="create"):
        SQLiteStorage(tmp_path / "db.sqlite", create="no")  # type: ignore[arg-type]

    SQLiteStorage(tmp_path / "db.sqlite").close()
    with SQLiteStorage(tmp_path / "db.sqlite", create=False) as storage, storage.transaction("t") as tx:
        assert [] == tx.list_resources()


@pytest.mark.parametrize("target", [":memory:", "", None, 7, "file:copy.db"])
def test_backup_needs_a_file_path(tmp_path: Path, target: object) -> None:
    """A backup to ':memory:' did nothing and said nothing; None raised a bare TypeError."""
    with SQLiteStorage(tmp_path / "db.sqlite") as storage, pytest.raises(InvalidInputError, match="file path"):
        storage.backup(target)  # type: ignore[arg-type]


def test_a_closed_storage_is_no_context_manager(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "db.sqlite")
    storage.close()
    with pytest.raises(StorageError, match="closed"), storage:
        pass


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_file_deleted_or_replaced_while_open_is_not_written_to(tmp_path: Path, how: str) -> None:
    """SQLite wrote on into the unlinked file, lost to every other process; now the next transaction refuses."""
    path = tmp_path / "db.sqlite"
    storage = SQLiteStorage(path)
    try:
        engine = make_engine(storage)
        furnish(engine)
        if how == "deleted":
            path.unlink()
        else:
            SQLiteStorage(tmp_path / "other.sqlite").close()
            (tmp_path / "other.sqlite").replace(path)

        with pytest.raises(StorageError, match=how):
            engine.add_resource(Resource("box9", "Box 9"))
    finally:
        storage.close()
    with SQLiteStorage(path) as again, again.transaction("wash") as tx:
        assert "box9" not in [r.id for r in tx.list_resources()]


@pytest.mark.parametrize("version", [1, 3])
def test_another_program_sharing_a_user_version_is_named_as_such(tmp_path: Path, version: int) -> None:
    """It said 'no such table: services' (a migration ran on it); it is refused as another program's, unchanged."""
    path = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(path)) as theirs:
        theirs.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        theirs.execute(f"PRAGMA user_version = {version}")
        theirs.commit()
    before = path.read_bytes()

    with pytest.raises(StorageError, match="another program"):
        SQLiteStorage(path)
    assert before == path.read_bytes()
