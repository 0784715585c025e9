"""
The conformance kit (`slotengine.testing.conformance`) on every adapter, and on mutants it must catch.

Each adapter runs the contract battery check by check, the agreement machine against `MemoryStorage`, and the
thread races. PostgreSQL runs when ``SLOTENGINE_TEST_POSTGRES_DSN`` is set and the adapter imports; every
storage it makes gets a migrated schema of this module's own (``slotengine_test_<random>``), emptied when the
storage is closed and reused by the next one, and dropped at the end, as ``test_postgres.py`` does.

Set ``SLOTENGINE_MACHINE_SCALE`` to multiply the agreement machine's examples (nightly runs), and
``SLOTENGINE_NIGHTLY=1`` to race ten times as many trials.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.errors import ConcurrencyError, InvalidInputError, NaiveDatetimeError, OutOfRangeError
from slotengine.intervals import Interval
from slotengine.lifecycle import BookingStatus
from slotengine.model import Resource
from slotengine.ports import BookingQuery, IdempotencyRecord, ReserveAndRecord, Storage
from slotengine.testing.conformance import (
    CHECKS,
    CapabilityNotOffered,
    CheckFailure,
    ConcurrencyReport,
    StorageAgreement,
    StorageFactory,
    agreement_machine,
    check_concurrency,
    check_concurrency_across_processes,
    check_storage,
    run_checks,
)

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
POSTGRES_MISSING = "PostgresStorage not available: set SLOTENGINE_TEST_POSTGRES_DSN and install slotengine[postgres]"
SCALE = int(os.environ.get("SLOTENGINE_MACHINE_SCALE", "1"))
ADAPTERS = ["memory", "sqlite", "postgres"]
EXAMPLES = {"memory": 30, "sqlite": 100, "postgres": 25}
"""Agreement machine examples per adapter (memory against memory is only a check of the machine itself)."""
NIGHTLY = os.environ.get("SLOTENGINE_NIGHTLY") == "1"
TRIALS = {name: trials * (10 if NIGHTLY else 1) for name, trials in {"memory": 50, "sqlite": 50, "postgres": 25}.items()}
"""Trials of each thread race per adapter: six races (same slot, two needs, one key, one-call writes, one version,
one outbox claim), eight racers each."""


# --- factories -----------------------------------------------------------------------------------------------------


class PostgresSchemas:
    """A `StorageFactory` for PostgreSQL: each storage gets a migrated schema of its own, empty, reused once closed."""

    def __init__(self, dsn: str) -> None:
        import psycopg
        from psycopg import sql

        from slotengine.adapters.postgres import PostgresStorage

        self._psycopg, self._sql, self._storage = psycopg, sql, PostgresStorage
        self.dsn = dsn
        self.free: list[str] = []
        self.made: list[str] = []

    def __call__(self) -> Storage:
        name = self.free.pop() if self.free else f"slotengine_test_{uuid.uuid4().hex[:12]}"
        if name not in self.made:
            self.made.append(name)
        storage = self._storage(self.dsn, schema=name, max_size=12)
        close = storage.close
        closed = False

        def close_and_recycle() -> None:
            nonlocal closed
            close()
            if not closed:
                closed = True
                self._empty(name)
                self.free.append(name)

        storage.close = close_and_recycle  # type: ignore[method-assign]
        return storage

    def _empty(self, name: str) -> None:
        """Empty every table of the schema but its migration record (whatever tables the adapter has)."""
        sql = self._sql
        with self._psycopg.connect(self.dsn, autocommit=True) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'schema_version'", (name,)
                )
            ]
            if tables:
                names = sql.SQL(", ").join(sql.Identifier(name, table) for table in tables)
                conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(names))

    def drop_all(self) -> None:
        sql = self._sql
        with self._psycopg.connect(self.dsn, autocommit=True) as conn:
            for name in self.made:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _postgres_available() -> bool:
    if not DSN:
        return False
    try:
        import psycopg  # noqa: F401

        import slotengine.adapters.postgres  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresSchemas | None]:
    if not _postgres_available():
        yield None
        return
    schemas = PostgresSchemas(DSN)
    yield schemas
    schemas.drop_all()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def factory(adapter: str, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresSchemas | None) -> StorageFactory:
    """A zero-argument callable making a fresh, empty storage of the adapter (a new file for SQLite)."""
    if adapter == "memory":
        return MemoryStorage
    if adapter == "sqlite":
        folder = tmp_path_factory.mktemp("conformance")
        counter = iter(range(1_000_000))
        return lambda: SQLiteStorage(folder / f"{next(counter)}.db", synchronous="NORMAL")
    if postgres is None:
        pytest.skip(POSTGRES_MISSING)
    return postgres


# --- the adapters -------------------------------------------------------------------------------------------------


class TestContract:
    @pytest.mark.parametrize("name", list(CHECKS))
    def test_check(self, factory: StorageFactory, name: str) -> None:
        """The adapter keeps this clause of the Storage contract."""
        CHECKS[name](factory)


class TestAgreement:
    def test_same_answers_as_memory(self, factory: StorageFactory, adapter: str) -> None:
        """The same random steps give the same values and the same exception classes as MemoryStorage (M4)."""
        run_state_machine_as_test(
            agreement_machine(factory),
            settings=settings(
                max_examples=EXAMPLES[adapter] * SCALE,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )


class TestConcurrency:
    @pytest.mark.nightly
    def test_racers(self, factory: StorageFactory, adapter: str) -> None:
        """
        Racing threads: exactly capacity win, no deadlock surfaces, an idempotency key is saved once, one update of a
        version wins, one claim of an outbox message wins.
        """
        report = check_concurrency(factory, threads=8, trials=TRIALS[adapter])

        trials = TRIALS[adapter]
        races = 3  # for capacity: the same slot, two needs, and one-call writes (every adapter has reserve_and_record)
        expected_wins = races * sum(min(1 + t % 3, 8) for t in range(trials))
        assert (trials, 8, expected_wins) == (report.trials, report.racers, report.wins)
        assert races * trials * 8 - expected_wins == report.conflicts


class TestAdapterChecks:
    def test_buffers_out_of_range_are_refused_by_the_adapter_itself(self, factory: StorageFactory) -> None:
        """
        reserve and reserve_and_record refuse blocked time reaching before 1970 (OutOfRangeError), writing nothing.

        The adapter checks it itself, even for a Booking whose own checks let such buffers through (forced here):
        PostgreSQL used to store it, and loads on its resource then raised OutOfRangeError for good.
        """
        t0 = datetime(1970, 1, 1, tzinfo=UTC)
        booking = Booking(
            "b", "svc", t0, t0 + timedelta(hours=1), (Assignment(0, "x", ("r",)),), (1,), BookingStatus.CONFIRMED, t0
        )
        object.__setattr__(booking, "buffer_before", timedelta(minutes=10))  # past any check of Booking's own
        storage = factory()
        try:
            with storage.transaction("t") as tx:
                tx.put_resource(Resource("r", "R"))
                tx.commit()
            with storage.transaction("t") as tx:
                with pytest.raises(OutOfRangeError):
                    tx.reserve(booking, now=t0)
                tx.commit()
                version = tx.catalogue_version()  # type: ignore[attr-defined]
            if isinstance(storage, ReserveAndRecord):
                with pytest.raises(OutOfRangeError):
                    storage.reserve_and_record(
                        "t", booking, now=t0, transitions=[], outbox=[], catalogue_version=version
                    )
            with storage.transaction("t") as tx:
                loads = tx.loads(["r"], Interval(t0, t0 + timedelta(days=1)))
                found = tx.find_bookings(BookingQuery())
        finally:
            storage.close()

        assert ([], []) == (loads, found)


class TestMemoryReference:
    def test_update_booking_refuses_a_buffer_change(self) -> None:
        """MemoryStorage.update_booking refuses wider buffers (they would overbook without a capacity check)."""
        storage = MemoryStorage()
        start = datetime(2030, 6, 3, 10, tzinfo=UTC)
        booking = Booking(
            "b1", "s1", start, start + timedelta(hours=1), (Assignment(0, "", ("r1",)),), (1,),
            BookingStatus.CONFIRMED, start,
        )  # fmt: skip
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "Box"))
            tx.reserve(booking, now=start)
            with pytest.raises(InvalidInputError, match="buffers"):
                tx.update_booking(
                    attrs.evolve(booking, buffer_after=timedelta(minutes=30), version=2), expected_version=1
                )
            kept = tx.get_booking("b1")

        assert booking == kept

    def test_a_naive_idempotency_instant_is_refused_and_an_aware_one_kept_in_utc(self) -> None:
        """A naive created_at never reaches MemoryStorage (NaiveDatetimeError); an aware one is kept as UTC."""
        storage = MemoryStorage()
        paris = datetime(2030, 6, 3, 10, tzinfo=ZoneInfo("Europe/Paris"))
        with storage.transaction("t") as tx:
            with pytest.raises(NaiveDatetimeError):
                tx.put_idempotency(IdempotencyRecord("k", "h", "b", "{}", datetime(2030, 6, 3, 8)))
            tx.put_idempotency(IdempotencyRecord("k", "h", "b", "{}", paris))
            tx.commit()
        with storage.transaction("t") as tx:
            kept = tx.get_idempotency("k")

        assert kept is not None
        assert (paris, UTC) == (kept.created_at, kept.created_at.tzinfo)


# --- the kit itself: mutants it must catch -------------------------------------------------------------------------


class _Wrapped:
    """A transaction whose methods are those of a real one, except the ones a mutant replaces."""

    def __init__(self, tx: object, overrides: dict[str, Callable[..., object]]) -> None:
        self._tx = tx
        for name, replacement in overrides.items():
            setattr(self, name, lambda *a, _f=replacement, **kw: _f(tx, *a, **kw))

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)


def mutant(**overrides: Callable[..., object]) -> StorageFactory:
    """A factory of MemoryStorages whose transactions have the given methods replaced."""

    class Mutant(MemoryStorage):
        @contextmanager
        def transaction(self, tenant: str) -> Iterator[_Wrapped]:  # type: ignore[override]
            with super().transaction(tenant) as tx:
                yield _Wrapped(tx, overrides)

    return Mutant


US = timedelta(microseconds=1)


def _counted(name: str) -> Callable[..., object]:
    """A catalogue write that sets the version to the last one + 1, kept with the tenant's (rolled-back) data."""

    def write(tx: object, value: object) -> None:
        before = tx.catalogue_version()  # type: ignore[attr-defined]
        getattr(tx, name)(value)
        tx._data.catalogue_version = before + 1  # type: ignore[attr-defined]

    return write


def _half_written(tx: object, booking: Booking, *, now: datetime, exclude: object = ()) -> None:
    """A reserve that writes a booking's first resource in lock order before checking the rest."""
    if len(booking.assignments) > 1:
        first = min(range(len(booking.assignments)), key=lambda i: booking.assignments[i].resource_ids)
        part = attrs.evolve(booking, assignments=(booking.assignments[first],), units=(booking.units[first],))
        tx.reserve(part, now=now, exclude=exclude)  # type: ignore[attr-defined]
    tx.reserve(booking, now=now, exclude=exclude)  # type: ignore[attr-defined]


def _like(pattern: str) -> re.Pattern[str]:
    """A regular expression matching what ``LIKE`` *pattern* does in SQLite, case-sensitive and without ESCAPE."""
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL)


def _like_on(field: str) -> Callable[..., object]:
    """
    A find_bookings that matches *field* with SQLite's ``LIKE`` (``PRAGMA case_sensitive_like``, no ESCAPE clause).

    A backslash is a plain character there, so every hostile string still finds its own row: only another row that
    ``%`` or ``_`` reaches tells it from ``=``.
    """

    def find(tx: Any, query: object) -> object:
        value = getattr(query, field) if isinstance(query, BookingQuery) else None
        if value is None:
            return tx.find_bookings(query)
        pattern = _like(value)
        found = tx.find_bookings(attrs.evolve(query, **{field: None}))  # type: ignore[arg-type]
        return [b for b in found if getattr(b, field) is not None and pattern.fullmatch(getattr(b, field))]

    return find


def _folded_key_reader(tx: Any, key: object) -> object:
    """A get_idempotency under a case-insensitive collation: "KEY" finds "key"'s record."""
    tx.get_idempotency(key)  # its checks
    folded = [r for k, r in tx._readable().idempotency.items() if k.casefold() == str(key).casefold()]
    return folded[0] if folded else None


def _folded_key_writer(tx: Any, record: object) -> None:
    """A put_idempotency under a case-insensitive collation: "KEY" collides with "key"."""
    if isinstance(record, IdempotencyRecord) and _folded_key_reader(tx, record.key) is not None:
        raise ConcurrencyError(f"idempotency key {record.key!r} was used meanwhile")
    tx.put_idempotency(record)


def _first_excluded_only(tx: Any, booking: Booking, *, now: datetime, exclude: object = ()) -> None:
    """A reserve that honours only the first id of exclude."""
    tx.reserve(booking, now=now, exclude=list(exclude)[:1] if isinstance(exclude, list | tuple) else exclude)


def _documents_by_prefix(tx: Any, kind: str) -> object:
    """A list_documents that lists every kind starting with *kind* (``LIKE kind || '%'``)."""
    tx.list_documents(kind)  # its checks
    return sorted((k, body) for (c, k), body in tx._readable().documents.items() if c.startswith(kind))


MUTANTS: dict[str, tuple[StorageFactory, set[str]]] = {
    "holds count one microsecond too long": (
        mutant(reserve=lambda tx, b, *, now, exclude=(): tx.reserve(b, now=now - US, exclude=exclude)),
        {"check_holds_count_until_they_expire", "check_reserve_and_record"},
    ),
    "exclude ignored": (
        mutant(reserve=lambda tx, b, *, now, exclude=(): tx.reserve(b, now=now)),
        {"check_reserve_honours_exclude", "check_reserve_checks_its_arguments_first"},  # exclude=5 is not refused
    ),
    "bookings ordered by id": (
        mutant(find_bookings=lambda tx, q: sorted(tx.find_bookings(q), key=lambda b: b.id)),
        {
            "check_find_bookings",
            "check_reserve_accepts_back_to_back",
            "check_reserve_counts_buffers",
            "check_reserve_and_record",
            "check_values_round_trip",
        },
    ),
    "due holds strictly before now": (
        mutant(due_holds=lambda tx, now: [b for b in tx.due_holds(now) if b.hold_until < now]),
        {"check_due_holds"},
    ),
    "failed messages pending": (
        mutant(
            list_outbox=lambda tx, *, pending_only=False, booking_id=None: (
                [m for m in tx.list_outbox(booking_id=booking_id) if m.sent_at is None]
                if pending_only
                else tx.list_outbox(booking_id=booking_id)
            )
        ),
        {"check_outbox", "check_due_outbox"},  # the due messages must be list_outbox's pending ones
    ),
    "versions not checked": (
        mutant(
            update_booking=lambda tx, b, *, expected_version: tx.update_booking(
                b, expected_version=tx.get_booking(b.id).version
            )
        ),
        # expected_version=True or "1" is not refused either
        {"check_update_booking", "check_transaction_survives_refusals", "check_values_of_the_wrong_kind_are_refused"},
    ),
    "idempotency keys overwritten": (
        mutant(
            put_idempotency=lambda tx, r: (
                tx._data.idempotency.__setitem__(r.key, r)
                if isinstance(r, IdempotencyRecord)
                else tx.put_idempotency(r)
            )
        ),
        {"check_idempotency_records", "check_transaction_survives_refusals", "check_reserve_and_record"},
    ),
    "log read backwards": (
        mutant(list_transitions=lambda tx, booking_id=None: tx.list_transitions(booking_id)[::-1]),
        {
            "check_transition_log",
            "check_values_round_trip",
            "check_reserve_and_record",
            "check_transitions_of",
            "check_every_collection_is_read_once",
        },
    ),
    "moves allowed in update_booking": (
        mutant(
            update_booking=lambda tx, b, *, expected_version: (
                tx._data.bookings.__setitem__(b.id, b)
                if tx.get_booking(b.id).version == expected_version
                else tx.update_booking(b, expected_version=expected_version)
            )
        ),
        {
            "check_update_booking",
            "check_transaction_survives_refusals",
            "check_update_booking_keeps_blocked_time",
            "check_update_booking_never_takes_time_again",  # no check at all: a hold made firm is written
            "check_values_of_the_wrong_kind_are_refused",  # nor of the arguments
        },
    ),
    "catalogue version that never moves": (
        mutant(catalogue_version=lambda tx: 1),
        {"check_catalogue_versions"},
    ),
    "catalogue version counted in the tenant's own data (a rollback hands a number out again)": (
        mutant(**{name: _counted(name) for name in ("put_business", "put_resource", "put_service")}),
        {"check_catalogue_versions"},
    ),
    "a naive now read as UTC": (
        mutant(
            reserve=lambda tx, b, *, now, exclude=(): tx.reserve(
                b,
                now=now.replace(tzinfo=UTC) if isinstance(now, datetime) and now.tzinfo is None else now,
                exclude=exclude,
            )
        ),
        {"check_reserve_checks_its_arguments_first"},
    ),
    "outbox messages read twice (a generator's are lost)": (
        mutant(append_outbox=lambda tx, messages: tx.append_outbox(list(messages)[:0] or messages)),
        {"check_every_collection_is_read_once"},
    ),
    "a two-need booking written need by need in lock order": (
        mutant(reserve=_half_written),
        # (it also writes before checking now and exclude)
        {"check_transaction_survives_refusals", "check_reserve_checks_its_arguments_first"},
    ),
    "documents listed backwards": (
        mutant(list_documents=lambda tx, kind: tx.list_documents(kind)[::-1]),
        {"check_documents"},
    ),
    "ties on start ordered by id case-insensitively (a collation that is not binary)": (
        mutant(find_bookings=lambda tx, q: sorted(tx.find_bookings(q), key=lambda b: (b.start, b.id.casefold()))),
        {"check_find_bookings"},
    ),
    "due holds tied on hold_until ordered by id case-insensitively": (
        mutant(due_holds=lambda tx, now: sorted(tx.due_holds(now), key=lambda b: (b.hold_until, b.id.casefold()))),
        {"check_due_holds"},
    ),
    "idempotency keys compared case-insensitively": (
        mutant(get_idempotency=_folded_key_reader, put_idempotency=_folded_key_writer),
        {"check_idempotency_records"},
    ),
    "source matched with SQLite's LIKE (no ESCAPE)": (
        mutant(find_bookings=_like_on("source")),
        {"check_hostile_strings_round_trip"},
    ),
    "external_ref matched with SQLite's LIKE (no ESCAPE)": (
        mutant(find_bookings=_like_on("external_ref")),
        {"check_hostile_strings_round_trip"},
    ),
    "service_id matched with SQLite's LIKE (no ESCAPE)": (
        mutant(find_bookings=_like_on("service_id")),
        {"check_hostile_strings_round_trip"},
    ),
    "exclude honoured for its first id only": (
        mutant(reserve=_first_excluded_only),
        {"check_reserve_honours_exclude"},
    ),
    "documents listed by kind prefix": (mutant(list_documents=_documents_by_prefix), {"check_documents"}),
}


class TestTheKitCatchesMutants:
    @pytest.mark.parametrize("name", list(MUTANTS))
    def test_the_battery_names_the_broken_clause(self, name: str) -> None:
        """A seeded bug fails exactly the checks of the clause it breaks."""
        factory, expected = MUTANTS[name]

        failures = run_checks(factory)

        assert expected == {f.name for f in failures}

    def test_check_storage_lists_every_failure(self) -> None:
        """check_storage raises one AssertionError naming each failed check and its clause."""
        factory, expected = MUTANTS["versions not checked"]

        with pytest.raises(AssertionError) as raised:
            check_storage(factory)

        message = str(raised.value)
        assert message.startswith(f"{len(expected)} of {len(CHECKS)} storage checks failed")
        assert all(f"{name}: " in message for name in expected)
        assert "ConcurrencyError" in message

    def test_skip_leaves_out_named_checks_and_refuses_unknown_names(self) -> None:
        """run_checks(skip=...) does not run the named checks; an unknown name is a KeyError."""
        factory, expected = MUTANTS["versions not checked"]

        assert [] == run_checks(factory, skip=expected)
        assert [] == run_checks(MemoryStorage)
        with pytest.raises(KeyError):
            run_checks(MemoryStorage, skip=["check_nothing"])

    def test_a_crash_is_a_failure_with_its_class(self) -> None:
        """A check that dies of an unexpected exception is reported, not propagated."""

        def broken(tx: object, *args: object, **kwargs: object) -> object:
            raise TypeError("raw driver error")

        failures = run_checks(mutant(get_business=broken))

        assert failures
        assert all(isinstance(f, CheckFailure) for f in failures)
        assert any("TypeError: raw driver error" in f.message for f in failures)

    @pytest.mark.parametrize(
        "name", ["bookings ordered by id", "versions not checked", "failed messages pending", "exclude ignored"]
    )
    def test_the_agreement_machine_catches_a_mutant(self, name: str) -> None:
        """The machine reports a mutant's first disagreement with the reference (no shrinking here, for speed)."""
        factory, _ = MUTANTS[name]

        with pytest.raises(AssertionError, match=r"differently from the reference|same data as the reference"):
            run_state_machine_as_test(
                agreement_machine(factory),
                settings=settings(
                    max_examples=300,
                    stateful_step_count=30,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    derandomize=True,
                ),
            )

    def test_the_races_catch_a_storage_without_a_capacity_check(self) -> None:
        """A reserve that never checks capacity oversells the contested slot, and check_concurrency says so."""

        def unchecked(tx: object, booking: object, *, now: object, exclude: object = ()) -> None:
            tx._data.bookings[booking.id] = booking  # type: ignore[attr-defined]

        with pytest.raises(AssertionError, match="exactly min\\(capacity, racers\\) racers win"):
            check_concurrency(mutant(reserve=unchecked), threads=4, trials=2)

    def test_a_capability_not_offered_is_a_warning_not_a_failure(self) -> None:
        """Without reserve_and_record, catalogue_version and swap_outbox, their checks pass and say so."""
        hidden = {"reserve_and_record", "catalogue_version", "swap_outbox"}

        class Bare:
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            def __getattr__(self, name: str) -> Any:
                if name in hidden:
                    raise AttributeError(name)
                return getattr(self._inner, name)

        class Plain:
            def __init__(self) -> None:
                self._inner = MemoryStorage()

            @contextmanager
            def transaction(self, tenant: str) -> Iterator[Any]:
                with self._inner.transaction(tenant) as tx:
                    yield Bare(tx)

            def close(self) -> None:
                self._inner.close()

        with pytest.warns(CapabilityNotOffered) as caught:
            failures = run_checks(Plain)

        assert [] == failures
        assert ["check_catalogue_versions", "check_reserve_and_record", "check_swap_outbox"] == sorted(
            str(w.message).split(":")[0] for w in caught
        )
        with pytest.warns(CapabilityNotOffered, match="offers no reserve_and_record"):
            CHECKS["check_reserve_and_record"](Plain)

    def test_the_battery_catches_a_commit_that_an_exception_undoes(self) -> None:
        """A storage that publishes at the end of the block, not at commit, loses a commit an exception follows."""

        class PublishAtTheEnd(MemoryStorage):
            @contextmanager
            def transaction(self, tenant: str) -> Iterator[Any]:  # type: ignore[override]
                with super().transaction(tenant) as tx:
                    published: list[tuple[str, Any]] = []
                    tx._publish = lambda t, data: published.append((t, data))  # type: ignore[attr-defined]
                    yield tx
                    for t, data in published:  # only when the block ends without an exception
                        self._tenants[t] = data

        failures = run_checks(PublishAtTheEnd)

        assert ["check_rollback_on_exception"] == [f.name for f in failures]
        assert "an exception after commit keeps what was committed" in failures[0].message

    def test_the_races_catch_a_one_call_write_that_checks_and_writes_apart(self) -> None:
        """
        A reserve_and_record that checks in one transaction and writes in another oversells; the races say so.

        The engine makes every new booking this way once its catalogue is cached; the kit raced only
        transactions, so such an adapter passed every check while the engine oversold through it.
        """

        class CheckThenWrite(MemoryStorage):
            def reserve_and_record(self, tenant, booking, *, now, transitions, outbox, catalogue_version, idempotency=None):  # type: ignore[no-untyped-def]
                with self.transaction(tenant) as tx:  # the check, never committed
                    tx.reserve(booking, now=now)
                time.sleep(0.002)  # the round trip between the two
                with self.transaction(tenant) as tx:
                    tx._data.bookings[booking.id] = booking
                    tx.append_transitions(transitions)
                    tx.append_outbox(outbox)
                    tx.commit()

        with pytest.raises(AssertionError, match=r"one-call writes .* racers win: expected 1, actual [2-8]"):
            check_concurrency(CheckThenWrite, threads=8, trials=1)

    def test_the_races_catch_a_one_call_write_that_loses_its_records(self) -> None:
        """A reserve_and_record that stores the booking but not its outbox message is caught."""

        class Forgetful(MemoryStorage):
            def reserve_and_record(self, tenant, booking, *, now, transitions, outbox, catalogue_version, idempotency=None):  # type: ignore[no-untyped-def]
                with self.transaction(tenant) as tx:
                    tx.reserve(booking, now=now)
                    tx.append_transitions(transitions)
                    tx.commit()

        with pytest.raises(AssertionError, match="the winners' outbox messages are stored with their bookings"):
            check_concurrency(Forgetful, threads=4, trials=1)  # every racer writes at once: a winner forgot

    def test_the_races_catch_updates_that_do_not_compare_versions(self) -> None:
        """Racers updating one booking at the version they all read: more than one winner is a lost update."""
        factory, _ = MUTANTS["versions not checked"]

        with pytest.raises(AssertionError, match=r"one booking updated at one version .*: 4 of 4 won"):
            check_concurrency(factory, threads=4, trials=1)

    def test_the_races_catch_a_swap_that_does_not_compare(self) -> None:
        """Racers claiming one outbox message: a swap_outbox that always replaces lets every dispatcher send it."""

        def swap(tx: Any, expected: object, message: Any) -> bool:
            tx.update_outbox(message)
            return True

        with pytest.raises(AssertionError, match=r"one outbox message claimed .*: 4 of 4 got True"):
            check_concurrency(mutant(swap_outbox=swap), threads=4, trials=1)

    def test_the_races_switch_threads_often_and_restore_the_interval(self) -> None:
        """The races run with a tiny switch interval (pure-Python racers interleave), restored afterwards."""
        seen: set[float] = set()

        class Watched(MemoryStorage):
            @contextmanager
            def transaction(self, tenant: str) -> Iterator[Any]:  # type: ignore[override]
                seen.add(sys.getswitchinterval())
                with super().transaction(tenant) as tx:
                    yield tx

        before = sys.getswitchinterval()
        check_concurrency(Watched, threads=2, trials=1)
        during, seen = seen, set()
        check_concurrency(Watched, threads=2, trials=1, switch_interval=None)

        assert ({1e-6}, {before}, before) == (during, seen, sys.getswitchinterval())

    def test_a_machine_needs_a_factory(self) -> None:
        """StorageAgreement itself is abstract: build it with agreement_machine(factory)."""
        with pytest.raises(TypeError, match="agreement_machine"):
            StorageAgreement()

    def test_the_report_is_a_value(self) -> None:
        """check_concurrency returns its figures as a frozen value."""
        report = check_concurrency(MemoryStorage, threads=2, trials=1)

        assert isinstance(report, ConcurrencyReport)
        assert (1, 2, 3, 3) == (report.trials, report.racers, report.wins, report.conflicts)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            report.wins = 0  # type: ignore[misc]


# --- the kit itself: the host's time zone ----------------------------------------------------------------------------


class TestTheKitIgnoresTheHostsZone:
    @pytest.mark.skipif(not hasattr(time, "tzset"), reason="no time.tzset: the kit runs in the host's zone")
    def test_checks_run_off_utc_and_give_the_zone_back(self) -> None:
        """Every check runs with the process's local zone 3:30 west of UTC (2:30 in summer), then restores it."""
        offsets: list[int] = []

        def factory() -> Storage:
            offsets.append(time.localtime(datetime(2030, 6, 3, tzinfo=UTC).timestamp()).tm_gmtoff)
            return MemoryStorage()

        before = (os.environ.get("TZ"), time.tzname)
        CHECKS["check_documents"](factory)
        check_concurrency(factory, threads=2, trials=1)

        assert [-150 * 60, -150 * 60] == offsets
        assert before == (os.environ.get("TZ"), time.tzname)

    @pytest.mark.skipif(not hasattr(time, "tzset"), reason="no time.tzset: the kit runs in the host's zone")
    def test_a_storage_that_keeps_local_wall_times_is_caught_on_any_host(self) -> None:
        """An adapter that stores hold_until as the host's wall clock read as UTC fails, even on a host on UTC."""

        def local(booking: Booking) -> Booking:
            if booking.hold_until is None:
                return booking
            return attrs.evolve(booking, hold_until=booking.hold_until.astimezone().replace(tzinfo=UTC))

        factory = mutant(reserve=lambda tx, b, *, now, exclude=(): tx.reserve(local(b), now=now, exclude=exclude))

        failures = {f.name for f in run_checks(factory)}

        assert {"check_holds_count_until_they_expire", "check_tenant_isolation", "check_loads"} <= failures


# --- the kit itself: every field it stores is filled in ------------------------------------------------------------

_WRITES = (
    "put_business", "put_resource", "put_service", "reserve", "update_booking", "append_transitions",
    "append_outbox", "update_outbox", "swap_outbox", "put_idempotency",
)  # fmt: skip
"""The transaction methods that hand a value to the storage."""


class Recording(MemoryStorage):
    """A MemoryStorage that keeps every value the kit hands to one of its transactions' writes."""

    written: list[object]

    def __init__(self) -> None:
        super().__init__()
        self.written = []

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with super().transaction(tenant) as tx:

            def recording(name: str) -> Callable[..., object]:
                def call(tx: object, *args: object, **kwargs: object) -> object:
                    self.written.extend([*args, *kwargs.values()])
                    return getattr(tx, name)(*args, **kwargs)

                return call

            yield _Wrapped(tx, {name: recording(name) for name in _WRITES})


def _default_of(field: attrs.Attribute[Any]) -> object:
    """The value a field takes when it is left out (its default, through its converter), or NOTHING if it must be given."""
    default = field.default
    if default is attrs.NOTHING or (isinstance(default, attrs.Factory) and default.takes_self):  # type: ignore[arg-type]
        return attrs.NOTHING
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return field.converter(default) if callable(field.converter) else default


def _filled_fields(value: object, filled: dict[type, set[str]]) -> None:
    """Note, for every attrs value reachable from *value*, which of its defaulted fields hold something else."""
    cls = type(value)
    if attrs.has(cls):
        noted = filled.setdefault(cls, set())
        for field in attrs.fields(cls):
            if not (field.init and field.eq):
                continue
            got = getattr(value, field.name)
            if _default_of(field) is attrs.NOTHING or got != _default_of(field):
                noted.add(field.name)
            _filled_fields(got, filled)
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            _filled_fields(item, filled)
    elif isinstance(value, dict) or hasattr(value, "items"):
        for key, item in value.items():  # type: ignore[attr-defined]
            _filled_fields(key, filled)
            _filled_fields(item, filled)


class TestTheKitFillsEveryField:
    def test_no_stored_field_keeps_its_default_in_every_value_the_battery_writes(self) -> None:
        """
        Every field of every value class the battery stores holds a non-default value somewhere.

        An adapter that drops a field (an older column list, a document written without a key) passes every
        round trip of values that leave the field at its default; a new field added to Booking, Business or
        Policies fails this test until the kit writes a value that sets it.
        """
        made: list[Recording] = []

        def factory() -> Storage:
            made.append(Recording())
            return made[-1]

        assert [] == run_checks(factory)
        filled: dict[type, set[str]] = {}
        for storage in made:
            for value in storage.written:
                _filled_fields(value, filled)

        never = {
            f"{cls.__module__}.{cls.__qualname__}.{field.name}"
            for cls, names in filled.items()
            for field in attrs.fields(cls)
            if field.init and field.eq and field.name not in names
        }
        assert [] == sorted(never)


# --- the kit itself: processes ---------------------------------------------------------------------------------------


class PickledMemory(MemoryStorage):
    """
    A MemoryStorage kept in a pickle file: each transaction loads it, under the storage's own lock, and writes it back.

    Thread-safe (every transaction of one storage holds its lock from the load to the write-back) and process-unsafe
    (nothing stops another process from loading the same file meanwhile, and the last write-back wins): the shape of
    an adapter that serializes its transactions on a shared database with a ``threading.Lock``. Module-level, so
    spawned processes can unpickle ``functools.partial(PickledMemory, path)``.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with self._lock:
            try:
                self._tenants = pickle.loads(self.path.read_bytes())
            except FileNotFoundError:
                self._tenants = {}
            with super().transaction(tenant) as tx:
                yield tx
            spare = self.path.with_name(f"{self.path.name}.{os.getpid()}")
            spare.write_bytes(pickle.dumps(self._tenants))
            spare.replace(self.path)


class StuckPickledMemory(PickledMemory):
    """A PickledMemory whose commits never return in a racing process (a lock never released)."""

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with super().transaction(tenant) as tx:
            yield _Wrapped(tx, {"commit": lambda tx: time.sleep(3600)}) if multiprocessing.parent_process() else tx


class SQLiteWithKeysInAFile(SQLiteStorage):
    """
    A SQLiteStorage whose idempotency keys live in a pickle file next to it, refused when a set of the keys this
    storage object saved holds them (a cache of one process, under its lock): keys are saved once among threads, and
    once per process among processes. Module-level, so spawned processes can unpickle
    ``functools.partial(SQLiteWithKeysInAFile, path, keys)``.
    """

    def __init__(self, path: str, keys: str) -> None:
        super().__init__(path)
        self.keys = Path(keys)
        self._keys_lock = threading.Lock()
        self._saved: set[tuple[str, str]] = set()

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:  # type: ignore[override]
        with super().transaction(tenant) as tx:
            yield _Wrapped(tx, {"get_idempotency": self._get, "put_idempotency": self._put})

    def _read(self) -> dict[tuple[str, str], IdempotencyRecord]:
        try:
            return pickle.loads(self.keys.read_bytes())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}

    def _get(self, tx: Any, key: str) -> IdempotencyRecord | None:
        return self._read().get((tx.tenant, key))

    def _put(self, tx: Any, record: IdempotencyRecord) -> None:
        with self._keys_lock:
            if (tx.tenant, record.key) in self._saved:
                raise ConcurrencyError(f"idempotency key {record.key!r} was used meanwhile")
            self._saved.add((tx.tenant, record.key))
            saved = self._read()
            saved[tx.tenant, record.key] = record
            spare = self.keys.with_name(f"{self.keys.name}.{os.getpid()}")
            spare.write_bytes(pickle.dumps(saved))
            spare.replace(self.keys)


def _expected_wins(trials: int, processes: int) -> int:
    return sum(min(1 + t % 3, processes) for t in range(trials))


class TestAcrossProcesses:
    """check_concurrency_across_processes: racing processes, each with its own storage on one database."""

    PROCESSES = 4
    TRIALS = 6  # capacities 1, 2, 3, on one slot and on two resources; the spawns cost most of the time

    def _check(self, opener: Callable[[], Storage]) -> None:
        report = check_concurrency_across_processes(opener, processes=self.PROCESSES, trials=self.TRIALS)

        wins = _expected_wins(self.TRIALS, self.PROCESSES)
        assert (self.TRIALS, self.PROCESSES, wins) == (report.trials, report.racers, report.wins)
        assert self.TRIALS * self.PROCESSES - wins == report.conflicts
        assert report.retries >= 0

    def test_sqlite(self, tmp_path: Path) -> None:
        """Processes racing on one SQLite file: exactly capacity win, their records with them, no loser's."""
        self._check(functools.partial(SQLiteStorage, str(tmp_path / "shared.db")))

    def test_postgres(self) -> None:
        """Processes racing on one PostgreSQL schema (a fresh one, dropped afterwards)."""
        if not _postgres_available():
            pytest.skip(POSTGRES_MISSING)
        import psycopg
        from psycopg import sql

        from slotengine.adapters.postgres import PostgresStorage

        schema = f"slotengine_test_{uuid.uuid4().hex[:12]}"
        try:
            self._check(functools.partial(PostgresStorage, DSN, schema=schema, max_size=2))
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def test_a_tenant_of_its_own_on_a_database_with_data(self, tmp_path: Path) -> None:
        """Two runs on one file (the second finds the first's data) both pass."""
        opener = functools.partial(SQLiteStorage, str(tmp_path / "shared.db"))
        for _ in range(2):
            report = check_concurrency_across_processes(opener, processes=2, trials=2)
            assert _expected_wins(2, 2) == report.wins

    def test_threads_pass_a_storage_locked_for_one_process_only(self, tmp_path: Path) -> None:
        """check_concurrency, racing threads through one storage object, cannot see what is wrong with PickledMemory."""
        counter = iter(range(1_000_000))

        def factory() -> Storage:
            return PickledMemory(str(tmp_path / f"{next(counter)}.pickle"))

        report = check_concurrency(factory, threads=8, trials=6)

        wins = 3 * _expected_wins(6, 8)  # three races: the same slot, two needs, one-call writes
        assert (wins, 3 * 6 * 8 - wins) == (report.wins, report.conflicts)

    def test_processes_catch_a_storage_locked_for_one_process_only(self, tmp_path: Path) -> None:
        """
        Processes racing on PickledMemory's one file are each told they won, and the last write-back wins.

        A trial's slot race catches it about 19 times in 20; when it does not (seen on a loaded machine), the
        same trial's race for one idempotency key catches the same lost write-back.
        """
        opener = functools.partial(PickledMemory, str(tmp_path / "shared.pickle"))

        with pytest.raises(AssertionError, match=r"told they (won .*overwrit|saved it)"):
            check_concurrency_across_processes(opener, processes=self.PROCESSES, trials=12)  # stops at the first

        assert [] == multiprocessing.active_children()

    def test_a_racer_that_never_answers_is_reported_and_ended(self, tmp_path: Path) -> None:
        """A racer stuck in its commit fails the trial after *timeout*, and no racing process is left running."""
        opener = functools.partial(StuckPickledMemory, str(tmp_path / "shared.pickle"))
        started = time.monotonic()

        with pytest.raises(AssertionError, match=r"trial 0, capacity 1: 2 of 2 racing processes did not answer"):
            check_concurrency_across_processes(opener, processes=2, trials=1, timeout=2.0)

        assert [] == multiprocessing.active_children()
        assert time.monotonic() - started < 30

    def test_processes_catch_keys_saved_under_one_process_lock(self, tmp_path: Path) -> None:
        """Processes saving one idempotency key that a cache of one process guards are each told they won."""
        opener = functools.partial(SQLiteWithKeysInAFile, str(tmp_path / "shared.db"), str(tmp_path / "keys.pickle"))

        with pytest.raises(AssertionError, match=r"one idempotency key: exactly one process saves the key"):
            check_concurrency_across_processes(opener, processes=self.PROCESSES, trials=self.TRIALS)

        assert [] == multiprocessing.active_children()

    def test_refuses_what_cannot_race_across_processes(self) -> None:
        """An opener that does not pickle is a TypeError, a MemoryStorage (one process's data) a ValueError."""

        def local() -> Storage:
            return SQLiteStorage(":memory:")

        with pytest.raises(TypeError, match="must pickle"):
            check_concurrency_across_processes(local, processes=2, trials=1)
        with pytest.raises(ValueError, match="one process"):
            check_concurrency_across_processes(MemoryStorage, processes=2, trials=1)
