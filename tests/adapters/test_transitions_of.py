"""
`list_transitions_of` (`slotengine.ports.TransitionsOf`): the log of some bookings, read without the rest.

The kit's check holds on every shipped adapter and catches adapters that forget the tenant, the order or ids past
SQLite's parameter limit; the SQL adapters' statements read `transitions_by_booking` (plans read from the statement
the adapter ran, never from timing). The PostgreSQL tests need ``SLOTENGINE_TEST_POSTGRES_DSN``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutants import mutant
from plan_reading import index_names

from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.lifecycle import Action, BookingStatus, TransitionRecord
from slotengine.ports import Storage, TransitionsOf
from slotengine.testing.conformance import CHECKS, CapabilityNotOffered, run_checks

try:
    import psycopg
    from psycopg import sql

    import slotengine.adapters.postgres as postgres_module
    from slotengine.adapters.postgres import PostgresStorage
except ImportError:  # pragma: no cover - the PostgreSQL tests skip below
    psycopg = None  # type: ignore[assignment]

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
needs_postgres = pytest.mark.skipif(not DSN or psycopg is None, reason="set SLOTENGINE_TEST_POSTGRES_DSN")

T0 = datetime(2030, 3, 25, 8, tzinfo=UTC)
CHECK = CHECKS["check_transitions_of"]


def record(booking_id: str, n: int, note: str = "") -> TransitionRecord:
    """A BOOK step of *booking_id*, told apart by *n* and *note*."""
    return TransitionRecord(
        booking_id, None, BookingStatus.CONFIRMED, Action.BOOK, T0 + timedelta(minutes=n), "system", reason=note
    )


def write(storage: Storage, tenant: str, records: list[TransitionRecord]) -> None:
    with storage.transaction(tenant) as tx:
        tx.append_transitions(records)
        tx.commit()


def read_of(storage: Storage, tenant: str, booking_ids: list[str]) -> list[TransitionRecord]:
    with storage.transaction(tenant) as tx:
        assert isinstance(tx, TransitionsOf)
        return tx.list_transitions_of(booking_ids)


# --- the kit ----------------------------------------------------------------------------------------------------


def _grouped(tx: Any, booking_ids: Any) -> list[TransitionRecord]:
    """Each booking's records in order, but booking by booking, not in the order written."""
    return [r for booking_id in sorted(set(booking_ids)) for r in tx.list_transitions(booking_id)]


def _capped(tx: Any, booking_ids: Any) -> list[TransitionRecord]:
    """Only the first 999 ids answered (a single IN list past SQLite's oldest limit, cut short)."""
    return tx.list_transitions_of(sorted(set(booking_ids))[:999])  # type: ignore[no-any-return]


def _every_tenant(storage: MemoryStorage) -> list[TransitionRecord]:
    return [r for data in storage._tenants.values() for r in data.transitions]


class TestTheKit:
    def test_memory_and_sqlite_pass(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        """Memory and SQLite keep the clause (PostgreSQL below)."""
        CHECK(MemoryStorage)
        CHECK(lambda: SQLiteStorage(tmp_path_factory.mktemp("db") / "s.db"))

    @pytest.mark.parametrize(
        ("name", "method"),
        [
            ("grouped by booking", _grouped),
            ("ids past 999 dropped", _capped),
            ("ids beyond ASCII dropped", lambda tx, ids: tx.list_transitions_of([i for i in ids if i.isascii()])),
            ("a repeated id answered twice", lambda tx, ids: [r for i in ids for r in tx.list_transitions(i)]),
            ("the log reversed", lambda tx, ids: tx.list_transitions_of(ids)[::-1]),
        ],
    )
    def test_the_check_catches_a_wrong_answer(self, name: str, method: Callable[..., object]) -> None:
        """An adapter that answers in another order, forgets ids or repeats records fails the check."""
        failures = run_checks(mutant(list_transitions_of=method), skip=set(CHECKS) - {"check_transitions_of"})

        assert ["check_transitions_of"] == [f.name for f in failures], name

    def test_the_check_catches_a_read_that_forgets_the_tenant(self) -> None:
        """Another tenant's records with the same booking ids must never come back."""
        storages: list[MemoryStorage] = []

        def everyone(tx: Any, booking_ids: Any) -> list[TransitionRecord]:
            wanted = set(booking_ids)
            mine = tx.list_transitions_of(booking_ids)
            return mine + [r for r in _every_tenant(storages[-1]) if r.booking_id in wanted and r not in mine]

        class Leaky(mutant(list_transitions_of=everyone)):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                storages.append(self)

        failures = run_checks(Leaky, skip=set(CHECKS) - {"check_transitions_of"})

        assert ["check_transitions_of"] == [f.name for f in failures]
        assert "in tenant" in failures[0].message

    def test_without_the_capability_the_check_warns_and_passes(self) -> None:
        """A transaction without list_transitions_of passes with CapabilityNotOffered, as the other capabilities."""
        with pytest.warns(
            CapabilityNotOffered, match="check_transitions_of: the storage offers no list_transitions_of"
        ):
            CHECK(mutant(list_transitions_of=None))

    def test_every_shipped_transaction_offers_it(self, tmp_path: Path) -> None:
        """The engine finds the capability on memory and SQLite transactions (PostgreSQL below)."""
        for storage in (MemoryStorage(), SQLiteStorage(tmp_path / "s.db")):
            with storage.transaction("t") as tx:
                assert isinstance(tx, TransitionsOf)
            storage.close()


# --- agreement with the whole log, on random logs ----------------------------------------------------------------

IDS = ["b1", "b2", "b3", "B1", "b'1", "b%", "b_", '["b1"]', "b\u00e9", "b\U0001f600"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    log=st.lists(st.tuples(st.sampled_from(["t1", "t2"]), st.sampled_from(IDS)), max_size=30),
    named=st.lists(st.sampled_from([*IDS, "ghost"]), max_size=10),
)
def test_sqlite_answers_as_the_whole_log_filtered(
    tmp_path_factory: pytest.TempPathFactory, log: Any, named: Any
) -> None:
    """For any log of two tenants, SQLite's answer is MemoryStorage's: the tenant's log filtered, in its order."""
    storages: list[Storage] = [MemoryStorage(), SQLiteStorage(tmp_path_factory.mktemp("db") / "s.db")]
    for storage in storages:
        for n, (tenant, booking_id) in enumerate(log):
            write(storage, tenant, [record(booking_id, n, tenant)])
    answers = [read_of(storage, "t1", named) for storage in storages]
    for storage in storages:
        storage.close()

    expected = [record(b, n, t) for n, (t, b) in enumerate(log) if t == "t1" and b in named]
    assert [expected, expected] == answers


# --- SQLite: the statement and its plan ------------------------------------------------------------------------


def sqlite_statements(storage: SQLiteStorage, tenant: str, booking_ids: list[str]) -> tuple[list[str], list[str]]:
    """The statements `list_transitions_of` runs (trace callback, values inlined) and their plans."""
    ran: list[str] = []
    with storage.transaction(tenant) as tx:
        conn = tx._conn
        conn.set_trace_callback(ran.append)
        try:
            tx.list_transitions_of(booking_ids)
        finally:
            conn.set_trace_callback(None)
        plans = [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + s).fetchall()) for s in ran]
    return ran, plans


class TestSQLite:
    def test_one_statement_searches_transitions_by_booking(self, tmp_path: Path) -> None:
        """The ids as one JSON array: one search of the index per id, never the tenant's whole log."""
        storage = SQLiteStorage(tmp_path / "s.db")
        write(storage, "t", [record(f"b{i}", i) for i in range(200)])

        ran, plans = sqlite_statements(storage, "t", ["b1", "b7", "ghost"])
        storage.close()

        assert 1 == len(ran)
        assert "SEARCH transitions USING INDEX transitions_by_booking (tenant=? AND booking_id=?)" in plans[0]
        assert "SCAN transitions" not in plans[0]

    def test_many_ids_in_one_statement_in_the_order_written(self, tmp_path: Path) -> None:
        """1,200 ids (more than SQLite's oldest limit of 999 parameters, a repeat among them): one statement."""
        storage = SQLiteStorage(tmp_path / "s.db")
        records = [record(f"b{i:04d}", i) for i in range(1_200)]
        write(storage, "t", records[::-1])  # written newest id first: the answer follows the log, not the ids
        named = [f"b{i:04d}" for i in range(1_200)] + ["b0001"]

        ran, _ = sqlite_statements(storage, "t", named)
        answer = read_of(storage, "t", named)
        storage.close()

        assert 1 == len(ran)
        assert records[::-1] == answer

    def test_without_json_functions_one_search_per_id(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Where SQLite lacks JSON1, each id is searched on the index by itself, and the rows merged by seq."""
        monkeypatch.setattr(SQLiteStorage, "_has_json1", staticmethod(lambda handle: False))
        storage = SQLiteStorage(tmp_path / "plain.db")
        write(storage, "t", [record("b2", 1), record("b1", 2), record("b2", 3), record("b3", 4)])
        write(storage, "u", [record("b1", 5)])

        ran, plans = sqlite_statements(storage, "t", ["b2", "b1", "ghost"])
        answer = read_of(storage, "t", ["b2", "b1", "ghost"])
        storage.close()

        assert [record("b2", 1), record("b1", 2), record("b2", 3)] == answer
        assert 3 == len(ran)
        assert {"SEARCH transitions USING INDEX transitions_by_booking (tenant=? AND booking_id=?)"} == set(plans)

    def test_no_ids_read_nothing(self, tmp_path: Path) -> None:
        """No ids, no statement."""
        storage = SQLiteStorage(tmp_path / "s.db")
        write(storage, "t", [record("b1", 1)])

        ran, _ = sqlite_statements(storage, "t", [])
        storage.close()

        assert [] == ran


# --- PostgreSQL: the kit, and the plan ------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"slotengine_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@needs_postgres
class TestPostgres:
    def test_postgres_passes_the_check(self, pg_schema: str) -> None:
        """PostgresStorage keeps the clause (each storage the check makes shares the schema, emptied first)."""

        def factory() -> PostgresStorage:
            storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DELETE FROM {}.transitions").format(sql.Identifier(pg_schema)))
            return storage

        CHECK(factory)

    def test_the_statement_reads_transitions_by_booking(self, pg_schema: str) -> None:
        """One statement, ``booking_id = ANY(...)`` on transitions_by_booking, after ANALYZE, with 3 tenants' logs."""
        storage = PostgresStorage(DSN, schema=pg_schema, max_size=2)
        for tenant in ("t", "u", "v"):
            write(storage, tenant, [record(f"b{i}", i) for i in range(3_000)])
        sent: list[tuple[Any, Any]] = []
        original = postgres_module._Transaction._all

        def recording(self: Any, query: Any, params: Any) -> Any:
            sent.append((query, params))
            return original(self, query, params)

        postgres_module._Transaction._all = recording  # type: ignore[method-assign]
        try:
            answer = read_of(storage, "t", ["b1", "b2999", "ghost"])
        finally:
            postgres_module._Transaction._all = original  # type: ignore[method-assign]
        storage.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            conn.execute("ANALYZE")
            plans = []
            for query, params in sent:
                row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(query)), params).fetchone()
                assert row is not None
                plans.append(index_names(row[0]))

        assert [record("b1", 1), record("b2999", 2999)] == answer
        assert [["transitions_by_booking"]] == plans
