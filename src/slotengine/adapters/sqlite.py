"""
`SQLiteStorage`: the embedded storage, one SQLite file shared by any number of threads and processes.

How it keeps the no-double-booking promise: every transaction starts with ``BEGIN IMMEDIATE``, which takes
the database's single write lock before the first read. The capacity check in `reserve` and the write that
follows it therefore run with no other writer anywhere (thread or process), and a transaction never has to
upgrade a read snapshot to a write lock, which is where SQLite answers ``SQLITE_BUSY`` even with a busy
timeout. Python's ``sqlite3`` default transaction handling is not used at all (connections are opened with
``isolation_level=None``): it begins a transaction only at the first INSERT, so the availability read would
run outside it (research note, section 1.4: 1,000 oversold trials out of 1,000).

Connections: one per thread per `SQLiteStorage` (``threading.local``), in WAL mode, so readers never block
the writer; a writer waits up to *timeout* seconds for the lock and then gets a retryable
`ConcurrencyError`. Every other ``sqlite3`` error reaches the caller as a `StorageError`; no ``sqlite3``
exception leaves this module.

Durability: ``synchronous=FULL`` by default, so a commit that returned survives a power loss. ``NORMAL`` is
an explicit opt-in: in WAL mode it still survives a *process* crash, but the last commits before an OS crash
or power loss may be lost (the database stays consistent). It is much faster on slow disks (the research
measured 2,815 commits against 165 for FULL in the same windows).

Layout: instants are INTEGER microseconds since 1970-01-01 UTC in every column that is queried (text would
order ``10:00:00.5Z`` before ``10:00:00Z``); the full value of each record is a JSON document made by
`slotengine.codec`. The tenant leads every primary key and index, and every statement filters on it. All SQL
is constant text with bind parameters.

Catalogue version (schema version 3): triggers in the file give a tenant a new version in
``catalogue_versions`` whenever its business, resources or services are inserted, updated or deleted, by this
adapter or by any other writer of the file (another process, the ``sqlite3`` shell), so the engine's catalogue
cache (`slotengine.ports.CatalogueVersions`) re-reads the catalogue after any change and only then. A
transaction that wrote the catalogue itself reads a one-off negative version instead of the stored one, so a
number drawn by a write that rolls back is never taken for a later catalogue (see
`_Transaction.catalogue_version`). Older files are upgraded in place when opened.

Only files on a local disk: WAL needs shared memory between the processes (not a network file system).
Never copy the database, ``-wal`` or ``-shm`` file with plain file I/O while it is in use (closing any
descriptor on it drops the process's locks); use `SQLiteStorage.backup`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Self

from slotengine._time import from_micros, to_micros, to_utc
from slotengine.availability import Load
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.capacity import check_capacity
from slotengine.codec import (
    _dumps_made,
    booking_from_dict,
    booking_to_dict,
    business_from_dict,
    business_to_dict,
    dumps,
    loads,
    outbox_from_dict,
    outbox_to_dict,
    resource_from_dict,
    resource_to_dict,
    service_from_dict,
    service_to_dict,
    transition_from_dict,
    transition_to_dict,
)
from slotengine.errors import ConcurrencyError, InvalidInputError, NotFoundError, StorageError
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus, TransitionRecord
from slotengine.model import Resource, Service, check_id
from slotengine.outbox import OutboxMessage
from slotengine.ports import (
    BookingQuery,
    IdempotencyRecord,
    check_document,
    check_id_or_none,
    check_ids,
    check_instant,
    check_kind,
    check_messages,
    check_records,
    check_reserve,
    check_update,
    check_version,
    created_bounds,
    due_bound,
    finished_before,
    reserve_and_record_in,
    resource_ids_to_lock,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStorage"]

SCHEMA_VERSION: Final = 5
"""The schema version this module writes (``PRAGMA user_version``); newer files are refused."""

APPLICATION_ID: Final = 0x534C4F54
"""``PRAGMA application_id`` of a slotengine file ("SLOT"), so that another program's database is refused."""

_US: Final = timedelta(microseconds=1)
_BUSY_CODES: Final = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_MIN_SQLITE: Final = (3, 24, 0)  # UPSERT (INSERT ... ON CONFLICT DO UPDATE)

# Pragmas take no bind parameters, so every value is one of these constant statements (never formatted).
_SYNCHRONOUS: Final[Mapping[str, str]] = {
    "FULL": "PRAGMA synchronous = FULL",
    "EXTRA": "PRAGMA synchronous = EXTRA",
    "NORMAL": "PRAGMA synchronous = NORMAL",
}
_SET_USER_VERSION: Final[Mapping[int, str]] = {
    1: "PRAGMA user_version = 1",
    2: "PRAGMA user_version = 2",
    3: "PRAGMA user_version = 3",
    4: "PRAGMA user_version = 4",
    5: "PRAGMA user_version = 5",
}
_SET_APPLICATION_ID: Final = "PRAGMA application_id = 1397509972"  # APPLICATION_ID in decimal

# --- the schema ----------------------------------------------------------------------------------------------
#
# _MIGRATIONS[v] takes a file from version v to v + 1. Version 0 is an empty file. Each step runs inside one
# BEGIN IMMEDIATE transaction together with the new user_version, so a crash leaves the old version whole.

_SCHEMA_V1: Final[tuple[str, ...]] = (
    """
    CREATE TABLE businesses (
        tenant TEXT NOT NULL PRIMARY KEY,
        doc TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE resources (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),
        max_blocked_us INTEGER NOT NULL DEFAULT 0
            CHECK (typeof(max_blocked_us) = 'integer' AND max_blocked_us >= 0),
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        UNIQUE (tenant, seq)
    )
    """,
    """
    CREATE TABLE services (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        UNIQUE (tenant, seq)
    )
    """,
    """
    CREATE TABLE bookings (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pre_booking', 'confirmed', 'paid', 'completed', 'cancelled', 'expired', 'no_show')),
        start_us INTEGER NOT NULL CHECK (typeof(start_us) = 'integer'),
        end_us INTEGER NOT NULL CHECK (typeof(end_us) = 'integer'),
        blocked_start_us INTEGER NOT NULL CHECK (typeof(blocked_start_us) = 'integer'),
        blocked_end_us INTEGER NOT NULL CHECK (typeof(blocked_end_us) = 'integer'),
        hold_until_us INTEGER CHECK (hold_until_us IS NULL OR typeof(hold_until_us) = 'integer'),
        customer_id TEXT,
        source TEXT NOT NULL,
        external_ref TEXT,
        service_id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1),
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        CHECK (end_us > start_us),
        CHECK (blocked_start_us <= start_us AND blocked_end_us >= end_us),
        CHECK ((status = 'pre_booking') = (hold_until_us IS NOT NULL))
    )
    """,
    "CREATE INDEX bookings_by_start ON bookings (tenant, start_us, id)",
    "CREATE INDEX bookings_by_customer ON bookings (tenant, customer_id)",
    "CREATE INDEX bookings_by_external_ref ON bookings (tenant, external_ref)",
    "CREATE INDEX bookings_due_holds ON bookings (tenant, hold_until_us, id) WHERE status = 'pre_booking'",
    """
    CREATE TABLE booking_resources (
        tenant TEXT NOT NULL,
        booking_id TEXT NOT NULL,
        pos INTEGER NOT NULL CHECK (typeof(pos) = 'integer' AND pos >= 0),
        resource_id TEXT NOT NULL,
        units INTEGER NOT NULL CHECK (typeof(units) = 'integer' AND units >= 1),
        blocked_start_us INTEGER NOT NULL CHECK (typeof(blocked_start_us) = 'integer'),
        blocked_end_us INTEGER NOT NULL CHECK (typeof(blocked_end_us) = 'integer'),
        live INTEGER NOT NULL CHECK (live IN (0, 1)),
        PRIMARY KEY (tenant, booking_id, pos),
        FOREIGN KEY (tenant, booking_id) REFERENCES bookings (tenant, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant, resource_id) REFERENCES resources (tenant, id),
        CHECK (blocked_end_us > blocked_start_us)
    )
    """,
    """
    CREATE INDEX booking_resources_overlap
        ON booking_resources (tenant, resource_id, blocked_start_us, blocked_end_us)
    """,
    """
    CREATE TABLE transitions (
        tenant TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),
        booking_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, seq)
    )
    """,
    "CREATE INDEX transitions_by_booking ON transitions (tenant, booking_id, seq)",
    """
    CREATE TABLE outbox (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),
        sent INTEGER NOT NULL CHECK (sent IN (0, 1)),
        failed INTEGER NOT NULL CHECK (failed IN (0, 1)),
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        UNIQUE (tenant, seq)
    )
    """,
    "CREATE INDEX outbox_pending ON outbox (tenant, seq) WHERE sent = 0 AND failed = 0",
    """
    CREATE TABLE idempotency (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        booking_id TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at_us INTEGER NOT NULL CHECK (typeof(created_at_us) = 'integer'),
        PRIMARY KEY (tenant, key)
    )
    """,
)

# Version 2: documents, small JSON texts that modules built on the engine keep (events, waiting lists).
_SCHEMA_V2: Final[tuple[str, ...]] = (
    """
    CREATE TABLE documents (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, kind, key)
    )
    """,
)

# Version 3: the catalogue's version per tenant, for the engine's catalogue cache (`CatalogueVersions`).
# Triggers give a tenant a new version on every INSERT, DELETE or UPDATE of its business, resources or services,
# in the writing transaction, whoever writes (another process, the sqlite3 shell, an operator's script): the
# triggers live in the file. `reserve` widening `resources.max_blocked_us` is bookkeeping of the bookings, not
# the catalogue, so the resources' UPDATE trigger names the other columns. A tenant's new version is one more
# than its last, so its committed versions only grow (a tenant without a row has version 0).
# SQLite has no sequence: a version drawn in a transaction that rolls back *is* drawn again by the next write.
# `_Transaction.catalogue_version` makes that harmless (see there). A DELETE of a whole table fires the row
# triggers too (SQLite skips its truncate optimization on a table with triggers).
_SCHEMA_V3: Final[tuple[str, ...]] = (
    """
    CREATE TABLE catalogue_versions (
        tenant TEXT NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1)
    )
    """,
    """
    INSERT INTO catalogue_versions (tenant, version)
    SELECT tenant, 1 FROM (SELECT tenant FROM businesses UNION SELECT tenant FROM resources
                           UNION SELECT tenant FROM services)
    """,
    """
    CREATE TRIGGER businesses_version_insert AFTER INSERT ON businesses BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER businesses_version_update AFTER UPDATE ON businesses BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER businesses_version_delete AFTER DELETE ON businesses BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER resources_version_insert AFTER INSERT ON resources BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER resources_version_update AFTER UPDATE OF tenant, id, seq, doc ON resources BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER resources_version_delete AFTER DELETE ON resources BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER services_version_insert AFTER INSERT ON services BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER services_version_update AFTER UPDATE ON services BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
        INSERT INTO catalogue_versions (tenant, version) VALUES (NEW.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
    """
    CREATE TRIGGER services_version_delete AFTER DELETE ON services BEGIN
        INSERT INTO catalogue_versions (tenant, version) VALUES (OLD.tenant, 1)
            ON CONFLICT (tenant) DO UPDATE SET version = version + 1;
    END
    """,
)

# Version 4: the pending outbox by booking, which the engine reads on every cancel, reschedule and expiry (seq
# last, so the index gives the order too and the planner prefers it to outbox_pending). An index on the
# document's expression rather than a new column, so that a process of version 3 still running (it inserts
# outbox rows knowing nothing of a new column) keeps the index right. Writing the outbox then needs JSON1.
_OUTBOX_BY_BOOKING: Final = """
    CREATE INDEX IF NOT EXISTS outbox_pending_by_booking ON outbox (tenant, json_extract(doc, '$.booking_id'), seq)
        WHERE sent = 0 AND failed = 0
"""
_SCHEMA_V4: Final[tuple[str, ...]] = (
    _OUTBOX_BY_BOOKING,
    # Without NULLs: where most bookings have no external reference, ANALYZE's average rows per value (NULL
    # counted as one value) made the planner read the whole tenant by start rather than use this index.
    "DROP INDEX IF EXISTS bookings_by_external_ref",
    "CREATE INDEX bookings_by_external_ref ON bookings (tenant, external_ref) WHERE external_ref IS NOT NULL",
)

# Version 5: the bookings made in a period (the conversion funnel's cohort), on the document's expression for the
# reason above. The ISO 8601 texts the codec writes (UTC, "+00:00", microseconds only when not zero) sort as their
# instants do; the query widens its bounds by a second anyway and leaves the exact test to BookingQuery.matches.
_BOOKINGS_BY_CREATED: Final = """
    CREATE INDEX IF NOT EXISTS bookings_by_created ON bookings (tenant, json_extract(doc, '$.created_at'))
"""
_SCHEMA_V5: Final[tuple[str, ...]] = (_BOOKINGS_BY_CREATED,)

_NEEDS_JSON1: Final = frozenset({_OUTBOX_BY_BOOKING, _BOOKINGS_BY_CREATED})
"""Migration statements skipped where SQLite lacks JSON1: the file then works without them, only slower."""

_MIGRATIONS: Final[Mapping[int, tuple[str, ...]]] = {
    0: _SCHEMA_V1,
    1: _SCHEMA_V2,
    2: _SCHEMA_V3,
    3: _SCHEMA_V4,
    4: _SCHEMA_V5,
}

_LIVE_VALUES: Final = frozenset(s.value for s in LIVE_STATUSES)

_DECODED_RESOURCES: Final[dict[str, Resource]] = {}
"""Resources decoded from their document text (the text is the whole value, so equal texts decode equally)."""
_DECODED_LIMIT: Final = 4096

_UNCOMMITTED_VERSIONS: Final = itertools.count(-1, -1)
"""Versions for transactions that changed their own catalogue: negative, never handed out twice in a process."""

# --- errors --------------------------------------------------------------------------------------------------


def _translate(exc: BaseException, timeout: float) -> StorageError | InvalidInputError:
    """Turn a ``sqlite3`` (or binding) exception into slotengine's error for it."""
    if isinstance(exc, UnicodeEncodeError):
        msg = "a text value contains a lone surrogate character, which SQLite cannot store"
        return InvalidInputError(msg, reason=exc.reason)
    if isinstance(exc, OverflowError):
        msg = "a number is too large for SQLite's 64-bit integers"
        return InvalidInputError(msg)
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", type(exc).__name__)
    text = str(exc)
    busy = (isinstance(code, int) and (code & 0xFF) in _BUSY_CODES) or (
        code is None and ("database is locked" in text or "database table is locked" in text)
    )
    if busy:
        msg = f"the database is locked by another writer (waited up to the busy timeout, {timeout} s); retry"
        return ConcurrencyError(msg, sqlite_error=name)
    msg = f"SQLite failed: {text} ({name})"
    return StorageError(msg, sqlite_error=name)


def _corrupt(what: str, exc: InvalidInputError) -> StorageError:
    msg = f"a stored {what} cannot be read back: {exc}"
    return StorageError(msg)


_CAUGHT: Final = (sqlite3.Error, UnicodeEncodeError, OverflowError)


# --- connections ---------------------------------------------------------------------------------------------


_OPEN_STORAGES: weakref.WeakSet[SQLiteStorage] = weakref.WeakSet()
"""Every `SQLiteStorage` of this process, for the fork hook."""
_INHERITED_FILES: dict[tuple[int, int], str] = {}
"""Files (device, inode) a parent process had open when it forked this one: SQLite cannot be used on them here."""
_KEPT_ACROSS_FORK: list[sqlite3.Connection] = []
"""The parent's connections in a forked child, kept from being closed: closing one here could unlock the parent's."""


def _after_fork_in_child() -> None:
    """
    In a forked child, fence off every file the parent had open.

    SQLite's file locks belong to the process that took them and are not inherited, but SQLite's memory of
    them is: a child that used the file (through the parent's connections or new ones) would write without
    the locks that keep other processes out, and could lose commits or double-book (SQLite's "how to corrupt
    a database file", section 2.6).
    """
    for storage in list(_OPEN_STORAGES):
        storage._fence_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _file_stat(path: str) -> os.stat_result | None:
    try:
        return Path(path).stat()
    except OSError:
        return None


def _close_quietly(conn: sqlite3.Connection, pid: int) -> None:
    """Close *conn* unless this is a forked child (a connection must never cross a fork)."""
    if os.getpid() != pid:
        return
    with contextlib.suppress(sqlite3.Error):
        conn.close()


class _Handle:
    """One thread's connection, with the lock that guards it against `SQLiteStorage.close` from elsewhere."""

    __slots__ = ("__weakref__", "busy", "conn", "finalizer", "lock")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn: sqlite3.Connection | None = conn
        self.lock = threading.Lock()
        self.busy = False
        # Closes the connection when the owning thread ends (its thread-local slot is dropped) or at exit.
        self.finalizer = weakref.finalize(self, _close_quietly, conn, os.getpid())

    def discard(self) -> None:
        self.conn = None
        self.finalizer()


# --- the transaction -----------------------------------------------------------------------------------------


class _Transaction:
    """One ``BEGIN IMMEDIATE`` transaction in one tenant's data (see `slotengine.ports.StorageTransaction`)."""

    def __init__(self, tenant: str, conn: sqlite3.Connection, timeout: float, *, json1: bool = True) -> None:
        self._tenant = tenant
        self._json1 = json1  # SQLite's JSON functions are there (built in since 3.38, usually before)
        self._conn = conn
        self._timeout = timeout
        self.state = "open"  # open -> committed | over
        self._catalogue_written = False  # a catalogue write was sent in this transaction (see catalogue_version)

    @property
    def tenant(self) -> str:
        return self._tenant

    # --- statements: the only place SQL is run; `sql` is always a constant of this module ---------------------

    def _usable(self) -> sqlite3.Connection:
        if self.state == "over":
            msg = "this transaction is over; open a new one"
            raise StorageError(msg)
        if self.state == "open" and not self._conn.in_transaction:
            # SQLite rolls a transaction back by itself after some errors (disk full, I/O); going on would
            # write outside any transaction.
            msg = "SQLite rolled this transaction back after an error; nothing of it was written"
            raise StorageError(msg)
        return self._conn

    def _writable(self) -> sqlite3.Connection:
        conn = self._usable()  # a transaction that is over says so, whether or not it was committed
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        return conn

    def _all(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        conn = self._usable()
        try:
            return conn.execute(sql, params).fetchall()
        except _CAUGHT as exc:
            raise _translate(exc, self._timeout) from None

    def _one(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> int:
        conn = self._writable()
        try:
            return conn.execute(sql, params).rowcount
        except _CAUGHT as exc:
            raise _translate(exc, self._timeout) from None

    def commit(self) -> None:
        conn = self._writable()
        try:
            conn.execute("COMMIT")
        except _CAUGHT as exc:
            raise _translate(exc, self._timeout) from None
        self.state = "committed"

    # --- business and catalogue ---------------------------------------------------------------------------

    def catalogue_version(self) -> int:
        """
        The catalogue's version (`slotengine.ports.CatalogueVersions`), kept by triggers (schema version 3).

        Why a version is never handed out twice, although SQLite has no sequence and a rolled-back write's
        number is drawn again by the next write: the stored version is returned only to a transaction that
        has not written the catalogue itself. Every transaction of this adapter is ``BEGIN IMMEDIATE`` (no
        other writer runs meanwhile) and SQLite never shows another connection's uncommitted rows, so such a
        transaction sees a committed version, which no rollback can take back, and the triggers only ever
        draw higher ones. A transaction that has written the catalogue (its version may yet roll back) gets
        a fresh negative number instead, from a counter of this process (cached catalogues live in one
        process, and stored versions are positive): a cache keyed on it is never hit again.
        """
        if self._catalogue_written:
            self._usable()
            return next(_UNCOMMITTED_VERSIONS)
        row = self._one("SELECT version FROM catalogue_versions WHERE tenant = ?", (self._tenant,))
        return 0 if row is None else int(row[0])

    def get_business(self) -> Business:
        row = self._one("SELECT doc FROM businesses WHERE tenant = ?", (self._tenant,))
        if row is None:
            msg = f"business {self._tenant!r} is not set up"
            raise NotFoundError(msg, tenant=self._tenant)
        try:
            return business_from_dict(loads(row[0]))
        except InvalidInputError as exc:
            raise _corrupt("business", exc) from None

    def put_business(self, business: Business) -> None:
        doc = dumps(business_to_dict(check_kind(business, Business, "business")))
        self._writable()
        self._catalogue_written = True
        self._write(
            "INSERT INTO businesses (tenant, doc) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET doc = excluded.doc",
            (self._tenant, doc),
        )

    def _resource(self, row: Any) -> Resource:
        # `reserve` reads its resources again under the lock on every booking: the same documents, so their
        # decoded (immutable) values are kept by document text; a changed document is decoded afresh.
        doc = row[0]
        found = _DECODED_RESOURCES.get(doc)
        if found is not None:
            return found
        try:
            resource = resource_from_dict(loads(doc))
        except InvalidInputError as exc:
            raise _corrupt("resource", exc) from None
        if len(_DECODED_RESOURCES) >= _DECODED_LIMIT:
            _DECODED_RESOURCES.clear()
        _DECODED_RESOURCES[doc] = resource
        return resource

    def get_resource(self, resource_id: str) -> Resource:
        resource_id = check_id(resource_id, "resource id")
        row = self._one("SELECT doc FROM resources WHERE tenant = ? AND id = ?", (self._tenant, resource_id))
        if row is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        return self._resource(row)

    def list_resources(self) -> list[Resource]:
        rows = self._all("SELECT doc FROM resources WHERE tenant = ? ORDER BY seq", (self._tenant,))
        return [self._resource(row) for row in rows]

    def put_resource(self, resource: Resource) -> None:
        # A new resource goes last; a replaced one keeps its place (and its widest booking so far).
        resource = check_kind(resource, Resource, "resource")
        self._writable()
        self._catalogue_written = True
        self._write(
            """
            INSERT INTO resources (tenant, id, seq, doc)
            VALUES (:tenant, :id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM resources WHERE tenant = :tenant), :doc)
            ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc
            """,
            {"tenant": self._tenant, "id": resource.id, "doc": dumps(resource_to_dict(resource))},
        )

    def _service(self, row: Any) -> Service:
        try:
            return service_from_dict(loads(row[0]))
        except InvalidInputError as exc:
            raise _corrupt("service", exc) from None

    def get_service(self, service_id: str) -> Service:
        service_id = check_id(service_id, "service id")
        row = self._one("SELECT doc FROM services WHERE tenant = ? AND id = ?", (self._tenant, service_id))
        if row is None:
            msg = f"no service {service_id!r}"
            raise NotFoundError(msg, service_id=service_id)
        return self._service(row)

    def list_services(self) -> list[Service]:
        rows = self._all("SELECT doc FROM services WHERE tenant = ? ORDER BY seq", (self._tenant,))
        return [self._service(row) for row in rows]

    def put_service(self, service: Service) -> None:
        service = check_kind(service, Service, "service")
        self._writable()
        self._catalogue_written = True
        self._write(
            """
            INSERT INTO services (tenant, id, seq, doc)
            VALUES (:tenant, :id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM services WHERE tenant = :tenant), :doc)
            ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc
            """,
            {"tenant": self._tenant, "id": service.id, "doc": dumps(service_to_dict(service))},
        )

    # --- bookings --------------------------------------------------------------------------------------------

    def lock_resources(self, resource_ids: Collection[str]) -> None:
        # BEGIN IMMEDIATE already holds the database's only write lock for the whole transaction; what is
        # left is MemoryStorage's answer for a resource that does not exist, and the refusal after commit.
        rids = resource_ids_to_lock(resource_ids)
        self._writable()
        for rid in rids:
            if self._one("SELECT 1 FROM resources WHERE tenant = ? AND id = ?", (self._tenant, rid)) is None:
                msg = f"no resource {rid!r}"
                raise NotFoundError(msg, resource_id=rid)

    def loads(self, resource_ids: Collection[str], window: Interval) -> list[Load]:
        rids = check_ids(resource_ids, "resource id")
        window = check_kind(window, Interval, "window")
        start, end = to_micros(window.start), to_micros(window.end)
        found: list[Load] = []
        for rid in rids:
            widest = self._one("SELECT max_blocked_us FROM resources WHERE tenant = ? AND id = ?", (self._tenant, rid))
            if widest is None:
                continue
            # A blocked span no longer than `widest` that ends after `start` begins after `start - widest`:
            # this bounds the index range scan to the window instead of the resource's whole history.
            rows = self._all(
                """
                SELECT br.booking_id, br.units, b.start_us, b.end_us, b.blocked_start_us, b.blocked_end_us,
                       b.hold_until_us
                FROM booking_resources AS br
                JOIN bookings AS b ON b.tenant = br.tenant AND b.id = br.booking_id
                WHERE br.tenant = :tenant AND br.resource_id = :rid
                  AND br.blocked_start_us >= :lowest AND br.blocked_start_us < :end
                  AND br.blocked_end_us > :start AND br.live = 1
                ORDER BY br.blocked_start_us, br.booking_id, br.pos
                """,
                {"tenant": self._tenant, "rid": rid, "lowest": start - widest[0], "end": end, "start": start},
            )
            found.extend(
                Load._from_micros(booking_id, rid, (booked_s, booked_e), (blocked_s, blocked_e), units, hold)
                for booking_id, units, booked_s, booked_e, blocked_s, blocked_e, hold in rows
            )
        return found

    def reserve(self, booking: Booking, *, now: datetime, exclude: Collection[str] = ()) -> None:
        self._writable()
        # Every argument first, as every adapter checks them: the booking, its blocked time (buffers reaching
        # outside the accepted range raise OutOfRangeError), now, exclude; only then the resources.
        booking, window, now, excluded = check_reserve(booking, now, exclude)
        resources = {rid: self.get_resource(rid) for rid in sorted(set(booking.resource_ids))}
        skip = {booking.id, *excluded}
        nearby = [ld for ld in self.loads(list(resources), window) if ld.booking_id not in skip]
        check_capacity(booking, resources, nearby, now=now)
        self._put_booking(booking)
        blocked_start, blocked_end = to_micros(window.start), to_micros(window.end)
        live = int(booking.status in LIVE_STATUSES)
        self._write(
            "DELETE FROM booking_resources WHERE tenant = ? AND booking_id = ?",
            (self._tenant, booking.id),
        )
        for pos, load in enumerate(booking.loads()):
            self._write(
                """
                INSERT INTO booking_resources
                    (tenant, booking_id, pos, resource_id, units, blocked_start_us, blocked_end_us, live)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (self._tenant, booking.id, pos, load.resource_id, load.units, blocked_start, blocked_end, live),
            )
        for rid in resources:
            self._write(
                "UPDATE resources SET max_blocked_us = MAX(max_blocked_us, ?) WHERE tenant = ? AND id = ?",
                (blocked_end - blocked_start, self._tenant, rid),
            )

    def _put_booking(self, booking: Booking) -> None:
        self._write(
            """
            INSERT INTO bookings (tenant, id, status, start_us, end_us, blocked_start_us, blocked_end_us,
                                  hold_until_us, customer_id, source, external_ref, service_id, version, doc)
            VALUES (:tenant, :id, :status, :start_us, :end_us, :blocked_start_us, :blocked_end_us,
                    :hold_until_us, :customer_id, :source, :external_ref, :service_id, :version, :doc)
            ON CONFLICT (tenant, id) DO UPDATE SET
                status = excluded.status, start_us = excluded.start_us, end_us = excluded.end_us,
                blocked_start_us = excluded.blocked_start_us, blocked_end_us = excluded.blocked_end_us,
                hold_until_us = excluded.hold_until_us, customer_id = excluded.customer_id,
                source = excluded.source, external_ref = excluded.external_ref,
                service_id = excluded.service_id, version = excluded.version, doc = excluded.doc
            """,
            self._booking_row(booking),
        )

    def _booking_row(self, booking: Booking) -> dict[str, Any]:
        start, end = to_micros(booking.start), to_micros(booking.end)
        return {
            "tenant": self._tenant,
            "id": booking.id,
            "status": booking.status.value,
            "start_us": start,
            "end_us": end,
            "blocked_start_us": start - booking.buffer_before // _US,
            "blocked_end_us": end + booking.buffer_after // _US,
            "hold_until_us": None if booking.hold_until is None else to_micros(booking.hold_until),
            "customer_id": booking.customer_id,
            "source": booking.source,
            "external_ref": booking.external_ref,
            "service_id": booking.service_id,
            "version": booking.version,
            "doc": _dumps_made(booking_to_dict(booking)),
        }

    def _booking(self, row: Any) -> Booking:
        try:
            return booking_from_dict(loads(row[0]))
        except InvalidInputError as exc:
            raise _corrupt("booking", exc) from None

    def get_booking(self, booking_id: str) -> Booking:
        booking_id = check_id(booking_id, "booking id")
        row = self._one("SELECT doc FROM bookings WHERE tenant = ? AND id = ?", (self._tenant, booking_id))
        if row is None:
            msg = f"no booking {booking_id!r}"
            raise NotFoundError(msg, booking_id=booking_id)
        return self._booking(row)

    def find_bookings(self, query: BookingQuery) -> list[Booking]:
        # SQL narrows with the indexed columns; BookingQuery.matches stays the definition of the answer. One
        # constant statement per way in, chosen by the filters given: each leads with a plain predicate that
        # an index serves (a predicate behind `:x IS NULL OR` serves none) and leaves the other filters to
        # `matches`, but for the statuses, which spare decoding the cancelled and expired. The answer is sorted
        # here, so the customer and reference statements have no ORDER BY: without ANALYZE's statistics SQLite
        # would rather read the whole tenant in bookings_by_start's order.
        # A period (the booked time overlaps it) or else a blocked window (the time with buffers overlaps it).
        query = check_kind(query, BookingQuery, "query")
        period = query.period if query.period is not None else query.blocked
        created_from, created_to = (None, None) if query.created is None else created_bounds(query.created)
        params = {
            "tenant": self._tenant,
            "resource_id": query.resource_id,
            "customer_id": query.customer_id,
            "period_start": None if period is None else to_micros(period.start),
            "period_end": None if period is None else to_micros(period.end),
            "reach": 0 if query.period is not None else 1,
            "statuses": None if query.statuses is None else "|" + "|".join(s.value for s in query.statuses) + "|",
            "source": query.source,
            "external_ref": query.external_ref,
            "service_id": query.service_id,
            "created_from": created_from,
            "created_to": created_to,
        }
        if query.external_ref is not None:
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant AND external_ref = :external_ref
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            """,
                params,
            )
        elif query.customer_id is not None:
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant AND customer_id = :customer_id
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            """,
                params,
            )
        elif query.created is not None and self._json1:
            # bookings_by_created's expression, exactly (see _BOOKINGS_BY_CREATED).
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant AND json_extract(doc, '$.created_at') >= :created_from
              AND json_extract(doc, '$.created_at') < :created_to
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            """,
                params,
            )
        elif period is not None and query.resource_id is not None:
            # As below, with the resource's own widest interval, from booking_resources_overlap (whose rows
            # hold blocked intervals: exactly the blocked window's test, and a superset of the period's).
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant AND id IN (
                SELECT booking_id FROM booking_resources
                WHERE tenant = :tenant AND resource_id = :resource_id
                  AND blocked_start_us < :period_end AND blocked_end_us > :period_start
                  AND blocked_start_us >= :period_start - (SELECT max_blocked_us FROM resources
                                                           WHERE tenant = :tenant AND id = :resource_id))
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            ORDER BY start_us, id
            """,
                params,
            )
        elif period is not None:
            # A booking's interval lies inside its blocked one, which is no longer than the widest blocked
            # interval of any of its resources (max_blocked_us only grows, cancelled bookings included), so
            # one that ends after the period starts began less than that before: bookings_by_start reads the
            # period instead of the tenant's whole history. A blocked window also takes bookings that start
            # up to that much after it (:reach = 1), whose buffer before reaches back into it.
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant
              AND start_us < :period_end + :reach * (SELECT COALESCE(MAX(max_blocked_us), 0) FROM resources
                                                     WHERE tenant = :tenant)
              AND start_us >= :period_start - (SELECT COALESCE(MAX(max_blocked_us), 0) FROM resources
                                               WHERE tenant = :tenant)
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            ORDER BY start_us, id
            """,
                params,
            )
        elif query.resource_id is not None:
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant
              AND id IN (SELECT booking_id FROM booking_resources WHERE tenant = :tenant AND resource_id = :resource_id)
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            ORDER BY start_us, id
            """,
                params,
            )
        else:
            rows = self._all(
                """
            SELECT doc FROM bookings
            WHERE tenant = :tenant
              AND (:statuses IS NULL OR instr(:statuses, '|' || status || '|') > 0)
            ORDER BY start_us, id
            """,
                params,
            )
        found = [b for b in map(self._booking, rows) if query.matches(b)]
        return sorted(found, key=lambda b: (b.start, b.id))

    def update_booking(self, booking: Booking, *, expected_version: int) -> None:
        self._writable()
        booking = check_kind(booking, Booking, "booking")
        expected_version = check_version(expected_version, "expected_version")
        stored = self.get_booking(booking.id)
        check_update(stored, booking, expected_version)
        row = self._booking_row(booking)
        row["expected_version"] = expected_version
        widened = (stored.buffer_before, stored.buffer_after) != (booking.buffer_before, booking.buffer_after)
        changed = self._write(
            """
            UPDATE bookings SET status = :status, blocked_start_us = :blocked_start_us,
                blocked_end_us = :blocked_end_us, hold_until_us = :hold_until_us, customer_id = :customer_id,
                source = :source, external_ref = :external_ref, service_id = :service_id, version = :version,
                doc = :doc
            WHERE tenant = :tenant AND id = :id AND version = :expected_version
            """,
            row,
        )
        if changed != 1:  # pragma: no cover - the write lock is held, so the version read above still stands
            msg = f"booking {booking.id!r} changed meanwhile"
            raise ConcurrencyError(msg, booking_id=booking.id)
        self._write(
            """
            UPDATE booking_resources SET live = ?, blocked_start_us = ?, blocked_end_us = ?
            WHERE tenant = ? AND booking_id = ?
            """,
            (
                int(booking.status in LIVE_STATUSES),
                row["blocked_start_us"],
                row["blocked_end_us"],
                self._tenant,
                booking.id,
            ),
        )
        if widened:
            for rid in sorted(set(booking.resource_ids)):
                self._write(
                    "UPDATE resources SET max_blocked_us = MAX(max_blocked_us, ?) WHERE tenant = ? AND id = ?",
                    (row["blocked_end_us"] - row["blocked_start_us"], self._tenant, rid),
                )

    def due_holds(self, now: datetime) -> list[Booking]:
        now = check_instant(now)
        rows = self._all(
            """
            SELECT doc FROM bookings
            WHERE tenant = ? AND status = 'pre_booking' AND hold_until_us <= ?
            ORDER BY hold_until_us, id
            """,
            (self._tenant, to_micros(now)),
        )
        due = [
            b
            for b in map(self._booking, rows)
            if b.status is BookingStatus.PRE_BOOKING and b.hold_until is not None and b.hold_until <= now
        ]
        return sorted(due, key=lambda b: (b.hold_until, b.id))

    # --- log, outbox, idempotency --------------------------------------------------------------------------

    def append_transitions(self, records: Sequence[TransitionRecord]) -> None:
        self._writable()
        # Every record checked and encoded before the first is written: a refused call appends nothing.
        rows = [
            {"tenant": self._tenant, "booking_id": record.booking_id, "doc": _dumps_made(transition_to_dict(record))}
            for record in check_records(records)
        ]
        for row in rows:
            self._write(
                """
                INSERT INTO transitions (tenant, seq, booking_id, doc)
                VALUES (:tenant, (SELECT COALESCE(MAX(seq), 0) + 1 FROM transitions WHERE tenant = :tenant),
                        :booking_id, :doc)
                """,
                row,
            )

    def _transition(self, row: Any) -> TransitionRecord:
        try:
            return transition_from_dict(loads(row[0]))
        except InvalidInputError as exc:
            raise _corrupt("transition", exc) from None

    def list_transitions(self, booking_id: str | None = None) -> list[TransitionRecord]:
        booking_id = check_id_or_none(booking_id, "booking id")
        if booking_id is None:
            rows = self._all("SELECT doc FROM transitions WHERE tenant = ? ORDER BY seq", (self._tenant,))
        else:
            rows = self._all(
                "SELECT doc FROM transitions WHERE tenant = ? AND booking_id = ? ORDER BY seq",
                (self._tenant, booking_id),
            )
        return [self._transition(row) for row in rows]

    def list_transitions_of(self, booking_ids: Collection[str]) -> list[TransitionRecord]:
        """
        The log of the bookings named (`slotengine.ports.TransitionsOf`), in the order written.

        One statement: the ids travel as one JSON array (``booking_id IN (SELECT value FROM json_each(?))``), so
        no limit on host parameters applies, and SQLite searches ``transitions_by_booking`` once per id. Without
        SQLite's JSON functions, one search per id. The rows are put in ``seq`` order here: with an ``ORDER BY
        seq``, SQLite may rather walk the tenant's whole log in the primary key's order.
        """
        ids = check_ids(booking_ids, "booking id")
        if not ids:
            return []
        if self._json1:
            rows = self._all(
                "SELECT seq, doc FROM transitions WHERE tenant = ? AND booking_id IN (SELECT value FROM json_each(?))",
                (self._tenant, json.dumps(ids, ensure_ascii=False)),
            )
        else:
            rows = [
                row
                for booking_id in ids
                for row in self._all(
                    "SELECT seq, doc FROM transitions WHERE tenant = ? AND booking_id = ?", (self._tenant, booking_id)
                )
            ]
        rows.sort(key=lambda row: row[0])
        return [self._transition((row[1],)) for row in rows]

    def _has_outbox(self, message_id: str) -> bool:
        return self._one("SELECT 1 FROM outbox WHERE tenant = ? AND id = ?", (self._tenant, message_id)) is not None

    def append_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        self._writable()
        messages = check_messages(messages)  # read once: a generator is read to the end here, not twice
        # Every id is checked before any is written (the write lock is held): a refused call appends nothing.
        ids: set[str] = set()
        for message in messages:
            if message.id in ids or self._has_outbox(message.id):
                msg = f"outbox message {message.id!r} exists already"
                raise StorageError(msg)
            ids.add(message.id)
        rows = [self._outbox_row(message) for message in messages]
        for row in rows:
            self._write(
                """
                INSERT INTO outbox (tenant, id, seq, sent, failed, doc)
                VALUES (:tenant, :id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE tenant = :tenant),
                        :sent, :failed, :doc)
                """,
                row,
            )

    def _outbox_row(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "tenant": self._tenant,
            "id": message.id,
            "sent": int(message.sent_at is not None),
            "failed": int(message.failed_at is not None),
            "doc": _dumps_made(outbox_to_dict(message)),
        }

    def _message(self, row: Any) -> OutboxMessage:
        try:
            return outbox_from_dict(loads(row[0]))
        except InvalidInputError as exc:
            raise _corrupt("outbox message", exc) from None

    def list_outbox(self, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
        # One constant statement per combination of filters: a predicate behind `NOT ? OR` would keep SQLite
        # from the partial indexes. The booking's pending messages (the engine's read on every cancel,
        # reschedule and expiry) come from outbox_pending_by_booking, whose expression this repeats exactly.
        booking_id = check_id_or_none(booking_id, "booking id")
        by_booking = booking_id is not None and self._json1
        if by_booking and pending_only:
            rows = self._all(
                """
                SELECT doc FROM outbox
                WHERE tenant = ? AND json_extract(doc, '$.booking_id') = ? AND sent = 0 AND failed = 0
                ORDER BY seq
                """,
                (self._tenant, booking_id),
            )
        elif by_booking:
            rows = self._all(
                "SELECT doc FROM outbox WHERE tenant = ? AND json_extract(doc, '$.booking_id') = ? ORDER BY seq",
                (self._tenant, booking_id),
            )
        elif pending_only:
            rows = self._all(
                "SELECT doc FROM outbox WHERE tenant = ? AND sent = 0 AND failed = 0 ORDER BY seq", (self._tenant,)
            )
        else:
            rows = self._all("SELECT doc FROM outbox WHERE tenant = ? ORDER BY seq", (self._tenant,))
        messages = [self._message(row) for row in rows]
        if booking_id is not None and not by_booking:
            messages = [m for m in messages if m.booking_id == booking_id]
        return messages

    def list_due_outbox(self, now: datetime) -> list[OutboxMessage]:
        """
        The pending messages due at or before *now* (`slotengine.ports.DueOutbox`), in the order written.

        SQLite compares the documents' ``due_at`` texts (which sort as their instants) with a bound a second
        later, so reminders planned weeks ahead are not decoded; without JSON1, every pending message is.
        """
        now = to_utc(now, "now")
        if self._json1:
            rows = self._all(
                """
                SELECT doc FROM outbox
                WHERE tenant = ? AND sent = 0 AND failed = 0 AND json_extract(doc, '$.due_at') <= ?
                ORDER BY seq
                """,
                (self._tenant, due_bound(now)),
            )
        else:
            rows = self._all(
                "SELECT doc FROM outbox WHERE tenant = ? AND sent = 0 AND failed = 0 ORDER BY seq", (self._tenant,)
            )
        return [m for m in map(self._message, rows) if m.due_at <= now]

    def prune_outbox(self, before: datetime) -> int:
        """Forget the messages done with before *before* (`slotengine.ports.Retention`); return how many."""
        before = to_utc(before, "before")
        self._writable()
        rows = self._all("SELECT doc FROM outbox WHERE tenant = ? AND (sent = 1 OR failed = 1)", (self._tenant,))
        gone = finished_before(map(self._message, rows), before)
        for message_id in gone:
            self._write("DELETE FROM outbox WHERE tenant = ? AND id = ?", (self._tenant, message_id))
        return len(gone)

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records created before *before* (`slotengine.ports.Retention`)."""
        cut = to_micros(to_utc(before, "before"))
        return self._write("DELETE FROM idempotency WHERE tenant = ? AND created_at_us < ?", (self._tenant, cut))

    def update_outbox(self, message: OutboxMessage) -> None:
        message = check_kind(message, OutboxMessage, "message")
        self._writable()
        changed = self._write(
            "UPDATE outbox SET sent = :sent, failed = :failed, doc = :doc WHERE tenant = :tenant AND id = :id",
            self._outbox_row(message),
        )
        if changed == 0:
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)

    def swap_outbox(self, expected: OutboxMessage, message: OutboxMessage) -> bool:
        expected = check_kind(expected, OutboxMessage, "expected")
        message = check_kind(message, OutboxMessage, "message")
        self._writable()
        row = {**self._outbox_row(message), "expected": _dumps_made(outbox_to_dict(expected))}
        changed = self._write(
            """
            UPDATE outbox SET sent = :sent, failed = :failed, doc = :doc
            WHERE tenant = :tenant AND id = :id AND doc = :expected
            """,
            row,
        )
        if changed == 0 and not self._has_outbox(message.id):
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)
        return changed == 1

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        key = check_id(key, "idempotency key")
        row = self._one(
            """
            SELECT key, request_hash, booking_id, result, created_at_us FROM idempotency
            WHERE tenant = ? AND key = ?
            """,
            (self._tenant, key),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], row[3], from_micros(row[4]))

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        record = check_kind(record, IdempotencyRecord, "record")
        changed = self._write(
            """
            INSERT INTO idempotency (tenant, key, request_hash, booking_id, result, created_at_us)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (tenant, key) DO NOTHING
            """,
            (
                self._tenant,
                record.key,
                record.request_hash,
                record.booking_id,
                record.result,
                to_micros(record.created_at),
            ),
        )
        if changed == 0:
            msg = f"idempotency key {record.key!r} was used meanwhile"
            raise ConcurrencyError(msg)

    # --- documents -------------------------------------------------------------------------------------------

    def get_document(self, kind: str, key: str) -> str | None:
        kind, key, _ = check_document(kind, key)
        row = self._one(
            "SELECT body FROM documents WHERE tenant = ? AND kind = ? AND key = ?", (self._tenant, kind, key)
        )
        return None if row is None else str(row[0])

    def put_document(self, kind: str, key: str, body: str) -> None:
        kind, key, body = check_document(kind, key, body)
        self._write(
            """
            INSERT INTO documents (tenant, kind, key, body) VALUES (?, ?, ?, ?)
            ON CONFLICT (tenant, kind, key) DO UPDATE SET body = excluded.body
            """,
            (self._tenant, kind, key, body),
        )

    def list_documents(self, kind: str) -> list[tuple[str, str]]:
        kind, _, _ = check_document(kind, "-")
        # BINARY collation compares UTF-8 bytes: the code point order the port promises.
        rows = self._all(
            "SELECT key, body FROM documents WHERE tenant = ? AND kind = ? ORDER BY key", (self._tenant, kind)
        )
        return [(str(k), str(b)) for k, b in rows]


# --- the storage -------------------------------------------------------------------------------------------------


_MAX_TIMEOUT: Final = (2**31 - 1) / 1000
"""The longest busy timeout in seconds: SQLite keeps it as an int of milliseconds (PostgreSQL's lock_timeout too)."""


def _check_timeout(value: object) -> float:
    # Compared before any conversion: an int beyond a float's range (10**400) is refused, not an OverflowError,
    # and a value past SQLite's int of milliseconds would wrap around to no wait at all.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_TIMEOUT:
        msg = (
            f"timeout must be a number of seconds from 0 to {_MAX_TIMEOUT} (SQLite's longest busy timeout, "
            f"2^31-1 ms, PostgreSQL's longest lock_timeout too), got {value!r}"
        )
        raise InvalidInputError(msg, field="timeout")
    return float(value)


def _check_create(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"create must be True or False, got {value!r}"
        raise InvalidInputError(msg, field="create")
    return value


def _check_synchronous(value: object) -> str:
    mode = value.upper() if isinstance(value, str) else ""
    if mode not in _SYNCHRONOUS:
        msg = (
            f"synchronous must be 'FULL' (the default: no committed booking is lost, even on power loss), "
            f"'EXTRA', or 'NORMAL' (faster; the last commits may be lost on power loss), got {value!r}"
        )
        raise InvalidInputError(msg, field="synchronous")
    return mode


class SQLiteStorage:
    """
    Storage in one SQLite file: the `Storage` port for one host, many threads and many processes.

    Every transaction is ``BEGIN IMMEDIATE``: it holds the file's write lock from its first statement to its
    end, so transactions run one at a time across every thread and process (read-only use cases included,
    since the port cannot tell them apart), and a capacity check and its insert are atomic. WAL keeps
    plain readers of the file, and `backup`, running alongside.

    Each thread gets its own connection on first use; a connection is closed when its thread ends or at
    `close`. A `SQLiteStorage` cannot cross ``fork()``, and a forked child cannot open a file its parent had
    open when it forked (SQLite's locks stay with the parent): both raise `StorageError` rather than risk
    lost commits. Open the storage in each process after it starts (gunicorn without ``--preload``, or in a
    ``post_fork`` hook; multiprocessing's ``spawn`` start method).

    Args:
        path: The database file; created with the current schema if it is new or empty.
        timeout: How long (seconds) a transaction waits for another writer before `ConcurrencyError`.
        synchronous: ``"FULL"`` (default) makes every commit durable against power loss. ``"NORMAL"``
            trades that for speed: in WAL mode a process crash still loses nothing, but an OS crash or
            power loss may lose the last commits (never corrupting the file). ``"EXTRA"`` is FULL and more.
        create: Whether a missing file is created (the default). With ``False`` a missing file raises
            `StorageError`, so that a mistyped path does not start an empty database.

    Raises:
        InvalidInputError: *path* is not a file path, or *timeout* or *synchronous* is not acceptable.
        StorageError: the file cannot be opened, is not a slotengine database, or was written by a newer
            slotengine (a higher schema version).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 10.0, synchronous: str = "FULL", create: bool = True
    ) -> None:
        given: object = path
        if not isinstance(given, str | os.PathLike):
            msg = f"path must be a file path, not {type(given).__name__}"
            raise InvalidInputError(msg, field="path")
        fspath: object = os.fspath(given)
        if not isinstance(fspath, str) or fspath in {"", ":memory:"} or fspath.startswith("file:"):
            msg = "SQLiteStorage needs a file path (use MemoryStorage for data in memory; URIs are not supported)"
            raise InvalidInputError(msg, field="path")
        self._path = fspath
        self._timeout = _check_timeout(timeout)
        self._synchronous = _check_synchronous(synchronous)
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            msg = f"SQLiteStorage needs SQLite 3.24 or later; this Python has {sqlite3.sqlite_version}"
            raise StorageError(msg)
        self._guard = threading.Lock()  # guards the fields below
        self._closed = False
        self._pid = os.getpid()
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._refuse_unusable(create=_check_create(create))
        _OPEN_STORAGES.add(self)
        handle = self._handle()
        try:
            with handle.lock:
                self._json1 = self._has_json1(handle)
                self._migrate(handle)
        except BaseException:
            self.close()
            raise
        opened = _file_stat(self._path)
        self._identity = None if opened is None else (opened.st_dev, opened.st_ino)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def synchronous(self) -> str:
        """The ``PRAGMA synchronous`` level every connection uses."""
        return self._synchronous

    def __repr__(self) -> str:
        return f"<SQLiteStorage({self._path!r}, synchronous={self._synchronous})>"

    # --- connections ---------------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> StorageError | InvalidInputError:
        return _translate(exc, self._timeout)

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit BEGIN; every transaction is our explicit BEGIN IMMEDIATE.
            # check_same_thread=False only because close() may close it from another thread, under the
            # handle's lock; otherwise only the owning thread uses it.
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        except _CAUGHT as exc:
            raise self._fail(exc) from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            mode = self._wal(conn)
            conn.execute(_SYNCHRONOUS[self._synchronous])
        except _CAUGHT as exc:
            conn.close()
            raise self._fail(exc) from None
        if str(mode).lower() != "wal":
            conn.close()
            msg = f"SQLite would not use WAL mode for {self._path!r} (it reports {mode!r})"
            raise StorageError(msg)
        return conn

    def _wal(self, conn: sqlite3.Connection) -> object:
        """
        Switch *conn* to WAL mode, waiting out other openers of the same new file.

        SQLite answers SQLITE_BUSY at once, without calling the busy handler, when several connections switch a
        new file to WAL at the same moment; so this waits and tries again, up to the busy timeout.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.005
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def _check_open(self) -> None:
        if self._closed:
            msg = "this storage is closed"
            raise StorageError(msg)
        if os.getpid() != self._pid:
            msg = (
                "a SQLiteStorage cannot cross fork(): SQLite's file locks stay with the parent; open the storage "
                "in each process after it starts (gunicorn without --preload, multiprocessing's 'spawn')"
            )
            raise StorageError(msg)

    def _refuse_unusable(self, *, create: bool) -> None:
        """
        Refuse a file this process must not open, before any connection changes it (WAL mode is a change).

        A missing file when *create* is false; a file a parent process had open when it forked this one
        (`_after_fork_in_child`); another program's database or a newer slotengine's, read without a write.
        """
        found = _file_stat(self._path)
        if found is None and not create:
            msg = f"no slotengine database at {self._path!r} (create=False: a missing file is not created)"
            raise StorageError(msg)
        if found is not None and (found.st_dev, found.st_ino) in _INHERITED_FILES:
            msg = (
                f"{self._path!r} was open in the process this one was forked from, and SQLite cannot be used on it "
                "here (its file locks stay with the parent: commits could be lost); open it only in processes "
                "that did not inherit it (close it in the parent before forking, or use multiprocessing's 'spawn')"
            )
            raise StorageError(msg)
        if found is None or found.st_size == 0:
            return  # a new database
        try:
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        except _CAUGHT as exc:
            raise self._fail(exc) from None
        try:
            version, app_id = self._versions(conn)
            if (version, app_id) != (SCHEMA_VERSION, APPLICATION_ID):
                self._check_identity(conn, version, app_id)
        except _CAUGHT as exc:
            raise self._fail(exc) from None
        finally:
            conn.close()

    def _refuse_a_replaced_file(self, conn: sqlite3.Connection) -> None:
        """
        Refuse to go on when the path no longer names the file this storage opened (deleted, or replaced).

        SQLite would write on into the unlinked file, and the next process to open the path would find an
        empty or another database: those commits would be lost to everyone else. One ``stat`` per transaction.
        """
        found = _file_stat(self._path)
        if found is not None and (found.st_dev, found.st_ino) == self._identity:
            return
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        what = "deleted" if found is None else "replaced by another file"
        msg = f"{self._path!r} was {what} after this storage opened it; nothing was written: open it again"
        raise StorageError(msg)

    def _fence_after_fork(self) -> None:
        """In a forked child (no other thread runs): keep the parent's connections unused and unclosed."""
        self._guard = threading.Lock()  # another thread of the parent may have held it at the fork
        kept = []
        for handle in list(self._handles):
            handle.finalizer.detach()
            if handle.conn is not None:
                kept.append(handle.conn)
            handle.conn = None
        if kept:
            _KEPT_ACROSS_FORK.extend(kept)
            found = _file_stat(self._path)
            if found is not None:
                _INHERITED_FILES[found.st_dev, found.st_ino] = self._path

    def _handle(self) -> _Handle:
        """Return this thread's connection handle, opening it on first use."""
        with self._guard:
            self._check_open()
            handle: _Handle | None = getattr(self._local, "handle", None)
            if handle is not None and handle.conn is not None:
                return handle
        conn = self._connect()
        handle = _Handle(conn)
        with self._guard:
            if self._closed:
                handle.discard()
            self._check_open()
            self._local.handle = handle
            self._handles.add(handle)
        return handle

    def _migrate(self, handle: _Handle) -> None:
        """Bring the file to `SCHEMA_VERSION`, refusing foreign and newer files. Idempotent."""
        conn = handle.conn
        assert conn is not None  # noqa: S101 - a fresh handle
        try:
            version, app_id = self._versions(conn)
            if version == SCHEMA_VERSION and app_id == APPLICATION_ID:
                return  # the usual case: no write lock needed
            conn.execute("BEGIN IMMEDIATE")
            try:
                version, app_id = self._versions(conn)  # again, under the lock: another process may have won
                self._check_identity(conn, version, app_id)
                while version < SCHEMA_VERSION:
                    for statement in _MIGRATIONS[version]:
                        if self._json1 or statement not in _NEEDS_JSON1:
                            conn.execute(statement)
                    version += 1
                    conn.execute(_SET_USER_VERSION[version])
                if app_id != APPLICATION_ID:
                    conn.execute(_SET_APPLICATION_ID)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except _CAUGHT as exc:
            raise self._fail(exc) from None

    @staticmethod
    def _has_json1(handle: _Handle) -> bool:
        """Whether this SQLite has the JSON functions (optional before 3.38; only a faster path needs them)."""
        conn = handle.conn
        assert conn is not None  # noqa: S101 - a fresh handle
        try:
            options = {str(row[0]) for row in conn.execute("PRAGMA compile_options").fetchall()}
        except sqlite3.Error:
            return False
        if sqlite3.sqlite_version_info >= (3, 38, 0):
            return "OMIT_JSON" not in options
        return "ENABLE_JSON1" in options

    @staticmethod
    def _versions(conn: sqlite3.Connection) -> tuple[int, int]:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        return int(version), int(app_id)

    def _check_identity(self, conn: sqlite3.Connection, version: int, app_id: int) -> None:
        if app_id not in {0, APPLICATION_ID}:
            msg = f"{self._path!r} belongs to another program (application_id {app_id:#x}), not slotengine"
            raise StorageError(msg)
        if version > SCHEMA_VERSION:
            msg = (
                f"{self._path!r} has schema version {version}, newer than this slotengine understands "
                f"({SCHEMA_VERSION}); upgrade slotengine to open it"
            )
            raise StorageError(msg, schema_version=version)
        if version == 0 and app_id != APPLICATION_ID:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'")
            if tables.fetchone()[0]:
                msg = f"{self._path!r} is an SQLite database of another program (it has tables but no slotengine mark)"
                raise StorageError(msg)
        if version > 0 and app_id != APPLICATION_ID:
            # An older slotengine's file has its tables; another program's may only share the user_version.
            ours = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bookings'")
            if not ours.fetchone()[0]:
                msg = (
                    f"{self._path!r} is an SQLite database of another program "
                    f"(user_version {version}, but no slotengine tables)"
                )
                raise StorageError(msg)

    # --- the port --------------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[_Transaction]:
        """
        Open a ``BEGIN IMMEDIATE`` unit of work in *tenant*'s data (see `slotengine.ports.Storage.transaction`).

        Raises:
            ConcurrencyError: another writer kept the file locked for the whole timeout (retry).
            StorageError: the storage is closed or failed, or a transaction of this storage is already
                open in this thread (they do not nest).
        """
        check_id(tenant, "tenant")
        handle = self._handle()
        if handle.busy:
            msg = "a transaction of this storage is already open in this thread; transactions do not nest"
            raise StorageError(msg)
        with handle.lock:
            conn = handle.conn
            if conn is None:
                msg = "this storage is closed"
                raise StorageError(msg)
            handle.busy = True
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except _CAUGHT as exc:
                    raise self._fail(exc) from None
                self._refuse_a_replaced_file(conn)
                tx = _Transaction(tenant, conn, self._timeout, json1=self._json1)
                try:
                    yield tx
                finally:
                    tx.state = "over"
                    self._end(handle)
            finally:
                handle.busy = False

    reserve_and_record = reserve_and_record_in
    """A booking's whole write in one transaction (`slotengine.ports.ReserveAndRecord`)."""

    def _end(self, handle: _Handle) -> None:
        """Roll back whatever is left of a transaction; a connection that cannot is replaced."""
        conn = handle.conn
        if conn is None or not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except _CAUGHT:
            # The connection's state is unknown: drop it; this thread's next transaction opens a new one.
            with self._guard:
                self._handles.discard(handle)
                if getattr(self._local, "handle", None) is handle:
                    del self._local.handle
            handle.discard()

    def backup(self, target_path: str | os.PathLike[str]) -> None:
        """
        Copy the whole database, consistently, to *target_path* with SQLite's online backup API.

        Safe while other threads and processes use the file: the copy is one committed state. Never copy the
        database (or its ``-wal``/``-shm`` files) with plain file tools instead (it can corrupt the live file
        by dropping this process's locks). An existing file at *target_path* is overwritten.

        Raises:
            InvalidInputError: *target_path* is not a file path, or is this storage's own file.
            StorageError: the copy failed (the target may be incomplete).
        """
        given: object = target_path
        target = os.fspath(given) if isinstance(given, str | os.PathLike) else None
        if not isinstance(target, str) or target in {"", ":memory:"} or target.startswith("file:"):
            msg = f"backup needs a file path to copy to, not {given!r}"
            raise InvalidInputError(msg, field="target_path")
        if Path(target).resolve() == Path(self._path).resolve():
            msg = "cannot back a database up onto itself"
            raise InvalidInputError(msg, field="target_path")
        handle = self._handle()
        if handle.busy:
            msg = "back up outside a transaction of this storage"
            raise StorageError(msg)
        with handle.lock:
            source = handle.conn
            if source is None:
                msg = "this storage is closed"
                raise StorageError(msg)
            try:
                dest = sqlite3.connect(target, timeout=self._timeout, isolation_level=None)
            except _CAUGHT as exc:
                raise self._fail(exc) from None
            try:
                source.backup(dest)
            except _CAUGHT as exc:
                raise self._fail(exc) from None
            finally:
                dest.close()

    def close(self) -> None:
        """
        Close every connection of this storage (waiting for transactions open in other threads to end).

        The storage cannot be used afterwards; closing twice is harmless.

        Raises:
            StorageError: called inside one of this storage's transactions in this thread.
        """
        mine: _Handle | None = getattr(self._local, "handle", None)
        if mine is not None and mine.busy:
            msg = "cannot close the storage inside one of its transactions"
            raise StorageError(msg)
        with self._guard:
            self._closed = True
            handles = list(self._handles)
            self._handles = weakref.WeakSet()
        for handle in handles:
            with handle.lock:
                handle.discard()

    def __enter__(self) -> Self:
        with self._guard:
            self._check_open()
        return self

    def __exit__(self, *_: object) -> None:
        """Close the storage at the end of a ``with`` block (see `close`)."""
        self.close()
