"""
The SQL adapters' reads that must not grow with a tenant's history: the plans use the indexes, the answers
stay MemoryStorage's, and the migrations that add the indexes keep every row (SQLite 3 -> 4 -> 5, PostgreSQL
5 -> 6 -> 7).

A plan is read from the statement the adapter really ran (SQLite's trace callback, or the query the PostgreSQL
transaction was given), never from timing. The PostgreSQL tests need ``SLOTENGINE_TEST_POSTGRES_DSN``.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_reading import index_names

import slotengine.adapters.sqlite as sqlite_module
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.codec import booking_to_dict
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import UNLIMITED, Resource
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery, created_bounds

try:
    import psycopg
    from psycopg import sql

    import slotengine.adapters.postgres as postgres_module
    from slotengine.adapters.postgres import PostgresStorage
except ImportError:  # pragma: no cover - the PostgreSQL tests skip below
    psycopg = None  # type: ignore[assignment]

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
needs_postgres = pytest.mark.skipif(not DSN or psycopg is None, reason="set SLOTENGINE_TEST_POSTGRES_DSN")

US = timedelta(microseconds=1)
H = timedelta(hours=1)
BASE = datetime(2030, 3, 25, tzinfo=UTC)  # the week of Europe's spring clock change
CREATED = datetime(2030, 1, 1, tzinfo=UTC)
RESOURCES = ("r1", "r2", "r3")


def booking(
    booking_id: str,
    start: datetime,
    length: timedelta,
    *,
    resources: tuple[str, ...] = ("r1",),
    status: BookingStatus = BookingStatus.CONFIRMED,
    buffer: timedelta = timedelta(0),
    **fields: Any,
) -> Booking:
    return Booking(
        booking_id,
        fields.pop("service_id", "s1"),
        start,
        start + length,
        (Assignment(0, "", resources),),
        (1,),
        status,
        fields.pop("created_at", CREATED),
        hold_until=start if status is BookingStatus.PRE_BOOKING else None,
        buffer_before=buffer,
        buffer_after=buffer,
        **fields,
    )


def message(message_id: str, booking_id: str | None, *, sent: bool = False, failed: bool = False) -> OutboxMessage:
    return OutboxMessage(
        message_id,
        "booking.cancelled",
        booking_id,
        BASE,
        BASE,
        f"key-{message_id}",
        sent_at=BASE if sent else None,
        failed_at=BASE if failed else None,
    )


def setup(storage: Any, tenant: str, bookings: list[Booking], messages: list[OutboxMessage]) -> None:
    with storage.transaction(tenant) as tx:
        for rid in RESOURCES:
            tx.put_resource(Resource(rid, rid.upper(), capacity=UNLIMITED))
        tx.commit()
    for b in bookings:
        with storage.transaction(tenant) as tx:
            tx.reserve(b, now=BASE)
            tx.commit()
    with storage.transaction(tenant) as tx:
        tx.append_outbox(messages)
        tx.commit()


# --- the data the parity tests draw ---------------------------------------------------------------------------

LENGTHS = st.sampled_from([US, 30 * 60 * 10**6 * US, 3 * H, 26 * H, 10 * 24 * H]).flatmap(
    lambda base: st.integers(0, 59 * 10**6).map(lambda extra: base + extra * US)
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Booking], list[OutboxMessage]]:
    bookings = []
    for i in range(draw(st.integers(1, 10))):
        status = draw(st.sampled_from(list(BookingStatus)))
        bookings.append(
            booking(
                f"b{i}",
                BASE + draw(st.integers(-3 * 24 * 3600, 6 * 24 * 3600)) * 10**6 * US,
                draw(LENGTHS),
                resources=tuple(draw(st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True))),
                status=status,
                buffer=draw(st.sampled_from([timedelta(0), 15 * 60 * 10**6 * US, 2 * 24 * H])),
                customer_id=draw(st.sampled_from([None, "c1", "c2"])),
                source=draw(st.sampled_from(["site", "partner"])),
                external_ref=draw(st.sampled_from([None, "x1", "x2"])),
                service_id=draw(st.sampled_from(["s1", "s2"])),
                created_at=draw(creations()),
            )
        )
    messages = [
        message(f"m{i}", draw(st.sampled_from([None, "b0", "b1", "b2"])), sent=draw(st.booleans()), failed=flag)
        for i, flag in enumerate(draw(st.lists(st.booleans(), max_size=10)))
    ]
    return bookings, messages


def creations() -> st.SearchStrategy[datetime]:
    """Creation instants near CREATED: whole seconds, a microsecond either side of one, or anything between."""
    seconds = st.integers(-2 * 24 * 3600, 2 * 24 * 3600).map(lambda n: CREATED + n * 10**6 * US)
    near = st.tuples(seconds, st.sampled_from([-US, 0 * US, US])).map(lambda pair: pair[0] + pair[1])
    anywhere = st.integers(-2 * 24 * 3600 * 10**6, 2 * 24 * 3600 * 10**6).map(lambda n: CREATED + n * US)
    return near | anywhere


@st.composite
def created_periods(draw: st.DrawFn) -> Interval:
    start = draw(creations())
    return Interval(start, start + draw(st.sampled_from([US, 10**6 * US, H, 24 * H])))


@st.composite
def periods(draw: st.DrawFn) -> Interval:
    start = BASE + draw(st.integers(-5 * 24 * 3600, 9 * 24 * 3600)) * 10**6 * US
    return Interval(start, start + draw(st.sampled_from([US, H, 24 * H, 7 * 24 * H])))


QUERIES = st.builds(
    BookingQuery,
    resource_id=st.sampled_from([None, None, "r1", "r2", "nope"]),
    customer_id=st.sampled_from([None, None, "c1", "c2"]),
    statuses=st.none() | st.frozensets(st.sampled_from(list(BookingStatus)), min_size=1),
    period=st.none() | periods(),
    source=st.sampled_from([None, None, "site"]),
    external_ref=st.sampled_from([None, None, "x1", "nope"]),
    service_id=st.sampled_from([None, None, "s1"]),
    created=st.none() | created_periods(),
    blocked=st.none() | periods(),
)


def answers(storage: Any, tenant: str, queries: list[BookingQuery]) -> tuple[object, ...]:
    with storage.transaction(tenant) as tx:
        found = [tx.find_bookings(q) for q in queries]
        outbox = [
            [m.id for m in tx.list_outbox(pending_only=pending, booking_id=bid)]
            for pending in (False, True)
            for bid in (None, "b0", "b1", "nope")
        ]
    return found, outbox


def check_parity(
    make: Callable[[], Any], history: tuple[list[Booking], list[OutboxMessage]], queries: list[BookingQuery]
) -> None:
    tenant = uuid.uuid4().hex
    bookings, messages = history
    memory, storage = MemoryStorage(), make()
    for store in (memory, storage):
        setup(store, tenant, bookings, messages)
    assert answers(memory, tenant, queries) == answers(storage, tenant, queries)


# --- SQLite ---------------------------------------------------------------------------------------------------


def sqlite_plans(storage: SQLiteStorage, tenant: str, call: Callable[[Any], object]) -> list[str]:
    """The plan of every statement *call* runs in a transaction of *storage* (trace callback, values inlined)."""
    ran: list[str] = []
    with storage.transaction(tenant) as tx:
        conn = tx._conn
        conn.set_trace_callback(ran.append)
        try:
            call(tx)
        finally:
            conn.set_trace_callback(None)
        return [
            " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall())
            for statement in ran
        ]


DAY = Interval(BASE + 2 * 24 * H, BASE + 3 * 24 * H)


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "scale.db")
    bookings = [
        booking(f"b{i}", BASE + i * H, H, resources=(RESOURCES[i % 3],), customer_id=f"c{i % 7}") for i in range(200)
    ]
    setup(storage, "t", bookings, [message(f"m{i}", f"b{i % 50}", sent=i % 3 == 0) for i in range(300)])
    yield storage
    storage.close()


class TestSQLitePlans:
    def test_a_bookings_pending_messages_come_from_their_index(self, filled: SQLiteStorage) -> None:
        """The engine's read on every cancel, reschedule and expiry searches outbox_pending_by_booking."""
        plans = sqlite_plans(filled, "t", lambda tx: tx.list_outbox(pending_only=True, booking_id="b7"))

        assert ["SEARCH outbox USING INDEX outbox_pending_by_booking (tenant=? AND <expr>=?)"] == plans

    @pytest.mark.parametrize(
        ("query", "wanted"),
        [
            (BookingQuery(period=DAY), "bookings_by_start (tenant=? AND start_us>? AND start_us<?)"),
            (
                BookingQuery(period=DAY, resource_id="r2"),
                "booking_resources_overlap (tenant=? AND resource_id=? AND blocked_start_us>? AND blocked_start_us<?)",
            ),
            (BookingQuery(customer_id="c3"), "bookings_by_customer (tenant=? AND customer_id=?)"),
            (BookingQuery(external_ref="x"), "bookings_by_external_ref (tenant=? AND external_ref=?)"),
            (
                BookingQuery(created=Interval(CREATED, CREATED + H)),
                "bookings_by_created (tenant=? AND <expr>>? AND <expr><?)",
            ),
            (BookingQuery(blocked=DAY), "bookings_by_start (tenant=? AND start_us>? AND start_us<?)"),
            (
                BookingQuery(blocked=DAY, resource_id="r2"),
                "booking_resources_overlap (tenant=? AND resource_id=? AND blocked_start_us>? AND blocked_start_us<?)",
            ),
        ],
    )
    def test_find_bookings_reads_through_the_filters_index(
        self, filled: SQLiteStorage, query: BookingQuery, wanted: str
    ) -> None:
        """Each filter's index is searched, and a period is bounded on both sides (not the tenant's history)."""
        plans = sqlite_plans(filled, "t", lambda tx: tx.find_bookings(query))

        assert 1 == len(plans)
        assert wanted in plans[0]

    def test_the_external_ref_index_is_chosen_after_analyze_with_no_refs(self, filled: SQLiteStorage) -> None:
        """Where no booking has a reference, ANALYZE's statistics no longer turn the planner to a tenant scan."""
        conn = sqlite3.connect(filled.path)
        conn.execute("ANALYZE")
        conn.close()

        plans = sqlite_plans(filled, "t", lambda tx: tx.find_bookings(BookingQuery(external_ref="x")))

        assert "bookings_by_external_ref" in plans[0]


class TestSQLiteParity:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(history=histories(), queries=st.lists(QUERIES, min_size=1, max_size=6))
    def test_same_answers_as_memory(
        self, tmp_path: Path, history: tuple[list[Booking], list[OutboxMessage]], queries: list[BookingQuery]
    ) -> None:
        """find_bookings and list_outbox answer as MemoryStorage does, long and cancelled bookings included."""
        counter = itertools.count()
        opened: list[SQLiteStorage] = []

        def make() -> SQLiteStorage:
            opened.append(SQLiteStorage(tmp_path / f"p{uuid.uuid4().hex}{next(counter)}.db"))
            return opened[-1]

        try:
            check_parity(make, history, queries)
        finally:
            for storage in opened:
                storage.close()


def _schema(path: Path) -> list[tuple[str, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


def test_sqlite_version_3_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    """A version 3 file gets version 4's indexes on open, once; every booking and message stays and is found."""
    path, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    SQLiteStorage(fresh).close()
    storage = SQLiteStorage(path)
    long_one = booking("long", BASE - 9 * 24 * H, 10 * 24 * H, status=BookingStatus.CANCELLED, external_ref="x1")
    setup(storage, "t", [booking("b0", BASE, H), long_one], [message("m0", "b0"), message("m1", "long", sent=True)])
    storage.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX outbox_pending_by_booking")  # back to version 3's shape
    conn.execute("DROP INDEX bookings_by_external_ref")
    conn.execute("CREATE INDEX bookings_by_external_ref ON bookings (tenant, external_ref)")
    conn.execute("PRAGMA user_version = 3")
    conn.close()

    for _ in range(2):
        storage = SQLiteStorage(path)
        with storage.transaction("t") as tx:
            found = [b.id for b in tx.find_bookings(BookingQuery(period=Interval(BASE, BASE + H)))]
            by_ref = [b.id for b in tx.find_bookings(BookingQuery(external_ref="x1"))]
            pending = [m.id for m in tx.list_outbox(pending_only=True, booking_id="b0")]
            every = [m.id for m in tx.list_outbox()]
        storage.close()
        assert (["long", "b0"], ["long"], ["m0"], ["m0", "m1"]) == (found, by_ref, pending, every)
        assert _schema(fresh) == _schema(path)


def test_sqlite_version_4_file_gets_the_created_index_keeping_its_rows(tmp_path: Path) -> None:
    """A version 4 file gets bookings_by_created on open, once, and finds its bookings by creation time with it."""
    path, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    SQLiteStorage(fresh).close()
    storage = SQLiteStorage(path)
    made = [booking("early", BASE, H, created_at=CREATED - US), booking("late", BASE + H, H, created_at=CREATED)]
    setup(storage, "t", made, [])
    storage.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX bookings_by_created")  # back to version 4's shape
    conn.execute("PRAGMA user_version = 4")
    conn.close()

    for _ in range(2):
        storage = SQLiteStorage(path)
        plans = sqlite_plans(storage, "t", lambda tx: tx.find_bookings(BookingQuery(created=Interval(CREATED, BASE))))
        with storage.transaction("t") as tx:
            found = [b.id for b in tx.find_bookings(BookingQuery(created=Interval(CREATED, BASE)))]
        storage.close()
        assert ["late"] == found
        assert "bookings_by_created" in plans[0]
        assert _schema(fresh) == _schema(path)


def test_sqlite_without_json1_migrates_without_the_expression_indexes(tmp_path: Path, monkeypatch: Any) -> None:
    """Where SQLite lacks JSON1 the file has no index on json_extract, and the outbox and the cohorts still answer."""
    monkeypatch.setattr(SQLiteStorage, "_has_json1", staticmethod(lambda handle: False))
    storage = SQLiteStorage(tmp_path / "plain.db")
    made = [booking("b0", BASE, H), booking("b1", BASE + H, H, created_at=CREATED + H)]
    setup(storage, "t", made, [message("m0", "b0"), message("m1", "b1"), message("m2", "b0")])
    with storage.transaction("t") as tx:
        pending = [m.id for m in tx.list_outbox(pending_only=True, booking_id="b0")]
        cohort = [b.id for b in tx.find_bookings(BookingQuery(created=Interval(CREATED + H, BASE)))]
    storage.close()

    names = [row[1] for row in _schema(tmp_path / "plain.db") if row[0] == "index"]
    assert (["m0", "m2"], ["b1"]) == (pending, cohort)
    assert not {"outbox_pending_by_booking", "bookings_by_created"} & set(names)
    assert 5 == sqlite_module.SCHEMA_VERSION


@given(
    st.lists(
        st.datetimes(datetime(1970, 1, 2), datetime(2199, 12, 30), timezones=st.timezones()), min_size=2, max_size=2
    )
)
def test_the_codecs_creation_texts_sort_as_their_instants(pair: list[datetime]) -> None:
    """What bookings_by_created orders (SQLite's BINARY, PostgreSQL's "C") is the instants' order."""
    texts = [booking_to_dict(booking("b", BASE, H, created_at=t))["created_at"] for t in pair]
    instants = [t.astimezone(UTC) for t in pair]

    assert (instants[0] < instants[1]) == (texts[0] < texts[1])
    assert (instants[0] == instants[1]) == (texts[0] == texts[1])


def test_created_bounds_are_a_second_wide_of_the_cut() -> None:
    """The text bounds an SQL storage narrows by leave a second on each side; matches makes the exact cut."""
    assert ("2029-12-31T23:59:59+00:00", "2030-01-01T00:00:01.000001+00:00") == created_bounds(
        Interval(CREATED, CREATED + US)
    )


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def _drop(schema: str) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"slotengine_test_{uuid.uuid4().hex[:12]}"
    yield name
    _drop(name)


def pg_plans(storage: PostgresStorage, schema: str, tenant: str, call: Callable[[Any], object]) -> list[list[str]]:
    """The indexes read by the plan of every query *call* sends through `_all`, after ANALYZE."""
    sent: list[tuple[Any, Any]] = []
    original = postgres_module._Transaction._all

    def recording(self: Any, query: Any, params: Any) -> Any:
        sent.append((query, params))
        return original(self, query, params)

    postgres_module._Transaction._all = recording  # type: ignore[method-assign]
    try:
        with storage.transaction(tenant) as tx:
            call(tx)
    finally:
        postgres_module._Transaction._all = original  # type: ignore[method-assign]
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("ANALYZE")
        plans = []
        for query, params in sent:
            statement = query if isinstance(query, sql.Composable) else sql.SQL(query)  # type: ignore[arg-type]
            row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params).fetchone()
            assert row is not None
            plans.append(index_names(row[0]))
        return plans


@needs_postgres
class TestPostgres:
    @pytest.fixture
    def big(self, pg_schema: str) -> Iterator[PostgresStorage]:
        """A tenant with 3,000 bookings over 125 days and 20,000 outbox messages, most of them sent."""
        storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
        setup(storage, "t", [booking("seed", BASE, H)], [])
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            conn.execute(
                """
                INSERT INTO bookings (tenant_id, id, status, during, blocked, customer_id, source, external_ref,
                                      service_id, version, doc)
                SELECT 't', 'h' || i, 'completed', r, r, 'c' || mod(i, 500), 'site', NULL, 's1', 1, b.doc
                FROM generate_series(1, 3000) AS i,
                     LATERAL (SELECT tstzrange(%s::timestamptz - i * interval '1 hour',
                                               %s::timestamptz - i * interval '1 hour' + interval '1 hour') AS r) AS x,
                     (SELECT doc FROM bookings WHERE id = 'seed') AS b
                """,
                (BASE, BASE),
            )
            conn.execute(
                """
                INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, booked,
                                               live, exclusive)
                SELECT 't', id, 0, 'r1', 1, during, during, false, false FROM bookings WHERE id LIKE 'h%%'
                """
            )
            conn.execute(
                """
                INSERT INTO outbox (tenant_id, id, sent, failed, doc)
                SELECT 't', 'o' || i, i % 50 <> 0, false, jsonb_build_object('booking_id', 'h' || (i % 3000))
                FROM generate_series(1, 20000) AS i
                """
            )
        yield storage
        storage.close()

    def test_a_bookings_pending_messages_come_from_their_index(self, big: PostgresStorage, pg_schema: str) -> None:
        """The engine's read on every cancel, reschedule and expiry reads outbox_pending_by_booking only."""
        plans = pg_plans(big, pg_schema, "t", lambda tx: tx.list_outbox(pending_only=True, booking_id="h7"))

        assert [["outbox_pending_by_booking"]] == plans

    def test_a_period_is_read_from_bookings_by_start_bounded_below(
        self, big: PostgresStorage, pg_schema: str
    ) -> None:
        """list(period=one day) reads bookings_by_start (and the resources' widest interval), never the history."""
        plans = pg_plans(big, pg_schema, "t", lambda tx: tx.find_bookings(BookingQuery(period=DAY)))

        assert 1 == len(plans)
        assert "bookings_by_start" in plans[0]
        assert "seq:bookings" not in plans[0]

    def test_a_resources_period_is_read_from_its_rows_by_start(self, big: PostgresStorage, pg_schema: str) -> None:
        """list(resource_id=r, period=one day) reads r's rows of that period, never all of r's history."""
        query = BookingQuery(period=DAY, resource_id="r1")
        plans = pg_plans(big, pg_schema, "t", lambda tx: tx.find_bookings(query))

        assert 1 == len(plans)
        bounded = {
            "bookings_by_start",
            "bookings_pkey",
            "booking_resources_no_overlap",
            "booking_resources_pkey",
            "seq:resources",
        }
        assert set(plans[0]) <= bounded  # by the period, on one side or the other; never a resource's history

    @pytest.mark.parametrize("field", ["period", "blocked"])
    def test_a_window_is_read_from_bookings_by_start(self, big: PostgresStorage, pg_schema: str, field: str) -> None:
        """A period, or a blocked window (utilization with buffers), reads bookings_by_start, never the history."""
        query = BookingQuery(**{field: DAY})
        plans = pg_plans(big, pg_schema, "t", lambda tx: tx.find_bookings(query))

        assert 1 == len(plans)
        assert "bookings_by_start" in plans[0]
        assert "seq:bookings" not in plans[0]

    def test_a_cohort_is_read_from_bookings_by_created(self, big: PostgresStorage, pg_schema: str) -> None:
        """list(created=one hour), the conversion funnel's read, searches bookings_by_created, not the history."""
        cohort = BookingQuery(created=Interval(BASE, BASE + H))
        plans = pg_plans(big, pg_schema, "t", lambda tx: tx.find_bookings(cohort))

        assert [["bookings_by_created"]] == plans

    def test_reserve_keeps_the_widest_interval_without_touching_the_catalogue(self, pg_schema: str) -> None:
        """slotengine_reserve widens resources.max_blocked_us when a booking is wider, never narrows it."""
        storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
        try:
            setup(storage, "t", [booking("a", BASE, 2 * H, buffer=H, resources=("r1", "r2"))], [])
            with storage.transaction("t") as tx:
                version = tx.catalogue_version()
                tx.reserve(booking("b", BASE + 9 * H, H), now=BASE)
                tx.commit()
            with storage.transaction("t") as tx:
                after = tx.catalogue_version()
        finally:
            storage.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            widest = conn.execute("SELECT id, max_blocked_us FROM resources ORDER BY id").fetchall()

        assert [("r1", 4 * 3600 * 10**6), ("r2", 4 * 3600 * 10**6), ("r3", 0)] == widest
        assert version == after

    def test_a_booking_of_one_resource_widens_it_and_is_found_by_a_later_period(self, pg_schema: str) -> None:
        """A booking of one resource (version 11's read without aggregates) widens it as a booking of two does."""
        storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
        try:
            setup(storage, "t", [booking("long", BASE, 10 * H, buffer=H, resources=("r2",))], [])
            with storage.transaction("t") as tx:
                found = [b.id for b in tx.find_bookings(BookingQuery(period=Interval(BASE + 8 * H, BASE + 9 * H)))]
        finally:
            storage.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            widest = conn.execute("SELECT id, max_blocked_us FROM resources ORDER BY id").fetchall()

        assert [("r1", 0), ("r2", 12 * 3600 * 10**6), ("r3", 0)] == widest
        assert ["long"] == found  # it started eight hours before the period

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(history=histories(), queries=st.lists(QUERIES, min_size=1, max_size=6))
    def test_same_answers_as_memory(
        self, pg_schema: str, history: tuple[list[Booking], list[OutboxMessage]], queries: list[BookingQuery]
    ) -> None:
        """find_bookings and list_outbox answer as MemoryStorage does, long and cancelled bookings included."""
        storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
        try:
            check_parity(lambda: storage, history, queries)
        finally:
            storage.close()

    def test_a_version_5_schema_is_migrated_keeping_its_rows(self, pg_schema: str) -> None:
        """
        Version 5 -> ... -> 9: the outbox index, each resource's widest interval from the bookings already there,
        the cohort index, and a resource's rows in one GiST index (by start in version 7); every row stays, the
        catalogue's version does not move, and opening again changes nothing.
        """
        long_one = booking("long", BASE - 9 * 24 * H, 10 * 24 * H, buffer=H)
        with psycopg.connect(DSN, autocommit=True) as conn, conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(pg_schema)))
            for step in range(5):
                for statement in postgres_module._MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (step + 1,))
            for rid in RESOURCES:
                conn.execute(
                    "INSERT INTO resources (tenant_id, id, capacity, doc) VALUES ('t', %s, NULL, %s::jsonb)",
                    (rid, json.dumps({"id": rid, "name": rid})),
                )
            for b in (long_one, booking("short", BASE, H, resources=("r2",))):
                request = postgres_module._reserve_request(b, now=BASE)
                assert ("ok",) == conn.execute("SELECT slotengine_reserve('t', %s::jsonb)", (request,)).fetchone()
            conn.execute(
                "INSERT INTO outbox (tenant_id, id, sent, failed, doc) VALUES ('t', 'm0', false, false, %s::jsonb)",
                (json.dumps({"booking_id": "long"}),),
            )
            before = conn.execute("SELECT version FROM catalogue_versions WHERE tenant_id = 't'").fetchone()

        for _ in range(2):
            storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
            try:
                with storage.transaction("t") as tx:
                    found = [b.id for b in tx.find_bookings(BookingQuery(period=Interval(BASE, BASE + H)))]
                    cohort = [b.id for b in tx.find_bookings(BookingQuery(created=Interval(CREATED, CREATED + US)))]
                    version = tx.catalogue_version()
            finally:
                storage.close()
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
                widest = conn.execute("SELECT id, max_blocked_us FROM resources ORDER BY id").fetchall()
                pending = conn.execute(
                    "SELECT id FROM outbox WHERE tenant_id = 't' AND (doc->>'booking_id') = 'long'"
                    " AND NOT sent AND NOT failed"
                ).fetchall()
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
                indexes = conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = %s"
                    " AND indexname IN ('outbox_pending_by_booking', 'bookings_by_created', 'booking_resources_by_start',"
                    " 'booking_resources_by_resource', 'booking_resources_live', 'booking_resources_no_overlap')"
                    " ORDER BY indexname",
                    (pg_schema,),
                ).fetchall()

            assert (["long", "short"], ["long", "short"]) == (found, cohort)
            assert before == (version,)
            assert [("r1", (10 * 24 + 2) * 3600 * 10**6), ("r2", 3600 * 10**6), ("r3", 0)] == widest
            assert [("m0",)] == pending
            assert [(v,) for v in range(1, postgres_module.SCHEMA_VERSION + 1)] == versions
            assert [("booking_resources_no_overlap",), ("bookings_by_created",), ("outbox_pending_by_booking",)] == indexes
