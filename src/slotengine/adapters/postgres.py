"""
`PostgresStorage`: the shared storage, one PostgreSQL schema used by any number of threads, processes and hosts.

How it keeps the no-double-booking promise (research note, sections 1.1, 1.2 and 3.2):

* **Advisory locks in sorted order.** `lock_resources` and `reserve` take ``pg_advisory_xact_lock`` on one
  64-bit key per (tenant, resource), all keys of a call in one statement, in ascending key order, after
  ``SET LOCAL lock_timeout``. Two transactions that share a resource therefore run one after the other from
  that statement on, and because everyone takes keys in the same order, no two of them can wait for each
  other in a cycle (measured: sorted order gave 0 deadlocks, random order 768 in 960 attempts). A lock that
  is not granted within *lock_timeout* ends the attempt with a retryable `ConcurrencyError` (SQLSTATE 55P03)
  instead of a queue that never drains. This is pretix's pattern, escalation included: every call first
  takes the tenant's key *shared*, and a call naming more than 32 resources takes it *exclusively* instead
  of 33+ resource keys (which keeps PostgreSQL's shared lock table small). Locks count, so this works for any
  capacity, where an exclusion constraint alone cannot (it can only say "no overlap").
* **Check under the lock, then write.** Transactions run at READ COMMITTED on purpose: every statement after
  the lock statement sees everything committed before the lock was granted, so the capacity check
  (`slotengine.capacity.check_capacity`, the same function every adapter runs) reads the true load. A
  stricter level would read a snapshot taken *before* the lock, which is exactly the stale read the lock is
  there to prevent.
* **An exclusion constraint as a backstop.** ``booking_resources`` carries ``EXCLUDE USING gist (tenant_id
  WITH =, resource_id WITH =, during WITH &&, booking_id WITH <>) WHERE (live AND exclusive)``: rows of
  resources with capacity 1 are marked ``exclusive``, and the database itself refuses two overlapping live
  ones (SQLSTATE 23P01, reported as `ConflictError`), whatever a bug above it does. On its own the
  constraint deadlocks under contention (measured: 255 deadlocks in 16,000 attempts, 243 ms per trial); the
  locks in front of it remove that (14 ms per trial). A constraint cannot read ``now()``, so a hold whose
  expiry has passed would keep blocking through it: `reserve` first takes the rows of such stale holds (and
  of bookings it was told to ignore) out of the backstop, under the same lock, before it writes.
* **CHECK constraints** keep out what slips past an exclusion constraint: empty, unbounded, infinite or
  not-``[)`` ranges (research section 0.4), and a hold with no expiry.

One storage transaction is one database transaction on one pooled connection (`psycopg_pool`); the engine
opens one per use case. The database transaction begins at the first write or lock: reads before it run as
single statements, which at READ COMMITTED see exactly what they would see inside it, and a read-only use
case is spared its BEGIN and ROLLBACK. A stored booking that this transaction read is locked (``FOR
UPDATE``) and re-checked before `reserve` replaces it, so two concurrent moves of one booking cannot both win.

Round trips: statements that do not depend on each other's answers go to the server together in psycopg's
pipeline mode, nothing weakened and nothing reordered: BEGIN, ``lock_timeout``, the advisory locks and the
resources' existence check in one; in `reserve`, the locks (skipped when this transaction already holds
them), then the resources and the load read under them, in one, `check_capacity` in Python, then its
writes (lapsed holds stepping out of the backstop, the booking, its resource rows) in one more; outbox
messages go in one statement. The first failing statement of a pipeline raises its error and the ones
after it are not run, as without a pipeline.

Catalogue version (schema version 3): triggers on ``businesses``, ``resources`` and ``services`` (row-level
for INSERT, UPDATE and DELETE; statement-level for TRUNCATE) draw a new version for the tenant from a
sequence into ``catalogue_versions``, in the writing transaction, whoever writes (another slotengine, an
older one, an operator's SQL). A sequence never hands a number out twice, even to a transaction that rolls
back, which is the contract of `slotengine.ports.CatalogueVersions`; the engine keeps its decoded catalogue
while the version it reads stays the same.

Layout: the tenant leads every primary key, unique key and exclusion constraint, and every statement filters
on it, so a deployment distributed by ``tenant_id`` (Citus) needs no schema change. Instants are
``timestamptz`` and ``tstzrange`` (microseconds, like Python). The full value of each record is a JSON
document made by `slotengine.codec`, in a ``jsonb`` column. Every statement is constant text with bind
parameters; the one identifier, the schema name, goes through ``psycopg.sql.Identifier`` and is set as
each connection's ``search_path``.

Backends: PostgreSQL 12 or later with ``btree_gist`` (created if missing). A PostgreSQL-compatible server
must really enforce advisory locks (CockroachDB long shipped them as no-ops): `PostgresStorage` checks this
when it opens and refuses a server that does not. Advisory locks are local to one server, so a sharded
deployment must route a tenant's writes to one node. Session-level settings are used (``search_path``,
``TimeZone``), so put a pooler in front only in session mode. Do not carry a `PostgresStorage` across
``fork()``; make a new one in the child (``spawn`` is the safe start method).

Errors: serialization failures (40001), deadlocks (40P01) and lock timeouts (55P03) are `ConcurrencyError`
(retryable; the engine retries a bounded number of times), exclusion violations (23P01) `ConflictError`,
data errors (class 22, NUL characters, lone surrogates) `InvalidInputError`, everything else (connection
problems included) `StorageError`. No ``psycopg`` exception leaves this module. Messages carry the server's
primary message only, never its detail line (which quotes row values).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

try:
    import psycopg
    from psycopg import sql
    from psycopg.pq import TransactionStatus
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    msg = (
        "PostgresStorage needs psycopg 3 and psycopg_pool: install slotengine[postgres] "
        "(pip install 'slotengine[postgres]')"
    )
    raise ImportError(msg) from exc

from slotengine._time import to_utc
from slotengine.availability import Load
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.capacity import check_capacity
from slotengine.codec import (
    booking_from_dict,
    booking_to_dict,
    business_from_dict,
    business_to_dict,
    dumps,
    outbox_from_dict,
    outbox_to_dict,
    resource_from_dict,
    resource_to_dict,
    service_from_dict,
    service_to_dict,
    transition_from_dict,
    transition_to_dict,
)
from slotengine.errors import (
    ConcurrencyError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SlotEngineError,
    StorageError,
)
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus, TransitionRecord
from slotengine.model import UNLIMITED, Resource, Service, check_id
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery, IdempotencyRecord, check_document, check_update

__all__ = ["SCHEMA_VERSION", "PostgresStorage", "resource_lock_key", "tenant_lock_key"]

SCHEMA_VERSION: Final = 3
"""The schema version this module writes (the highest row of ``schema_version``); newer schemas are refused."""

_MIGRATION_LOCK: Final = int.from_bytes(
    hashlib.blake2b(b"slotengine:migrate", digest_size=8).digest(), "big", signed=True
)
"""The advisory lock every `PostgresStorage` of any schema holds while it migrates (one database-wide key)."""

_RETRYABLE: Final = {
    "40001": "a serialization failure",
    "40P01": "a deadlock",
    "55P03": "a lock that was not granted in time",
}
_MAX_IDENTIFIER_BYTES: Final = 63  # PostgreSQL silently truncates longer names, so two schemas could collide

# --- the schema ----------------------------------------------------------------------------------------------
#
# _MIGRATIONS[v] takes a schema from version v to v + 1 (version 0: the schema does not exist yet). Each step
# runs in the one transaction that holds _MIGRATION_LOCK, with search_path set to the schema, together with
# its row in schema_version, so a crash leaves the old version whole.

_SCHEMA_V1: Final[tuple[LiteralString, ...]] = (
    """
    CREATE TABLE schema_version (
        version integer PRIMARY KEY CHECK (version >= 1),
        applied_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE businesses (
        tenant_id text NOT NULL,
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id)
    )
    """,
    """
    CREATE TABLE resources (
        tenant_id text NOT NULL,
        id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        capacity integer CHECK (capacity IS NULL OR capacity >= 1),
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, seq)
    )
    """,
    """
    CREATE TABLE services (
        tenant_id text NOT NULL,
        id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, seq)
    )
    """,
    """
    CREATE TABLE bookings (
        tenant_id text NOT NULL,
        id text NOT NULL,
        status text NOT NULL
            CHECK (status IN ('pre_booking', 'confirmed', 'paid', 'completed', 'cancelled', 'expired', 'no_show')),
        during tstzrange NOT NULL CHECK (
            NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)
            AND lower_inc(during) AND NOT upper_inc(during) AND isfinite(lower(during)) AND isfinite(upper(during))
        ),
        blocked tstzrange NOT NULL CHECK (
            NOT isempty(blocked) AND NOT lower_inf(blocked) AND NOT upper_inf(blocked)
            AND lower_inc(blocked) AND NOT upper_inc(blocked) AND isfinite(lower(blocked))
            AND isfinite(upper(blocked))
        ),
        hold_until timestamptz CHECK (hold_until IS NULL OR isfinite(hold_until)),
        customer_id text,
        source text NOT NULL,
        external_ref text,
        service_id text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id, id),
        CHECK (blocked @> during),
        CHECK ((status = 'pre_booking') = (hold_until IS NOT NULL))
    )
    """,
    "CREATE INDEX bookings_by_start ON bookings (tenant_id, lower(during), id)",
    "CREATE INDEX bookings_by_customer ON bookings (tenant_id, customer_id)",
    "CREATE INDEX bookings_by_external_ref ON bookings (tenant_id, external_ref)",
    "CREATE INDEX bookings_due_holds ON bookings (tenant_id, hold_until, id) WHERE status = 'pre_booking'",
    """
    CREATE TABLE booking_resources (
        tenant_id text NOT NULL,
        booking_id text NOT NULL,
        pos integer NOT NULL CHECK (pos >= 0),
        resource_id text NOT NULL,
        units integer NOT NULL CHECK (units >= 1),
        during tstzrange NOT NULL CHECK (
            NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)
            AND lower_inc(during) AND NOT upper_inc(during) AND isfinite(lower(during)) AND isfinite(upper(during))
        ),
        live boolean NOT NULL,
        exclusive boolean NOT NULL,
        PRIMARY KEY (tenant_id, booking_id, pos),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT booking_resources_no_overlap EXCLUDE USING gist (
            tenant_id WITH =, resource_id WITH =, during WITH &&, booking_id WITH <>
        ) WHERE (live AND exclusive)
    )
    """,
    """
    CREATE INDEX booking_resources_live ON booking_resources USING gist (tenant_id, resource_id, during)
        WHERE live
    """,
    "CREATE INDEX booking_resources_by_resource ON booking_resources (tenant_id, resource_id, booking_id)",
    """
    CREATE TABLE transitions (
        tenant_id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        booking_id text NOT NULL,
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id, seq)
    )
    """,
    "CREATE INDEX transitions_by_booking ON transitions (tenant_id, booking_id, seq)",
    """
    CREATE TABLE outbox (
        tenant_id text NOT NULL,
        id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        sent boolean NOT NULL,
        failed boolean NOT NULL,
        doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, seq)
    )
    """,
    "CREATE INDEX outbox_pending ON outbox (tenant_id, seq) WHERE NOT sent AND NOT failed",
    """
    CREATE TABLE idempotency (
        tenant_id text NOT NULL,
        key text NOT NULL,
        request_hash text NOT NULL,
        booking_id text NOT NULL,
        result text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, key)
    )
    """,
)

# Version 2: documents, small JSON texts that modules built on the engine keep (events, waiting lists).
_SCHEMA_V2: Final[tuple[LiteralString, ...]] = (
    """
    CREATE TABLE documents (
        tenant_id text NOT NULL,
        kind text NOT NULL,
        key text NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (tenant_id, kind, key)
    )
    """,
)

# Version 3: the catalogue's version per tenant, for the engine's catalogue cache (`CatalogueVersions`). Triggers
# draw a new version from a sequence on every change of businesses, resources or services, whoever makes it
# (another slotengine, an older one still running, an operator's SQL), in the changing transaction; a sequence
# never hands a number out twice, even to a transaction that rolls back. A tenant without a row has version 0:
# the migration gives every tenant that has a catalogue a row, and any later catalogue row makes one.
_SCHEMA_V3: Final[tuple[LiteralString, ...]] = (
    "CREATE SEQUENCE catalogue_version_seq AS bigint",
    """
    CREATE TABLE catalogue_versions (
        tenant_id text NOT NULL,
        version bigint NOT NULL,
        PRIMARY KEY (tenant_id)
    )
    """,
    """
    INSERT INTO catalogue_versions (tenant_id, version)
    SELECT tenant_id, nextval('catalogue_version_seq')
    FROM (SELECT tenant_id FROM businesses UNION SELECT tenant_id FROM resources
          UNION SELECT tenant_id FROM services) AS t
    """,
    """
    CREATE FUNCTION bump_catalogue_version() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            UPDATE catalogue_versions SET version = nextval('catalogue_version_seq');
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO catalogue_versions (tenant_id, version) VALUES (OLD.tenant_id, nextval('catalogue_version_seq'))
            ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO catalogue_versions (tenant_id, version) VALUES (NEW.tenant_id, nextval('catalogue_version_seq'))
            ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER businesses_version AFTER INSERT OR UPDATE OR DELETE ON businesses
        FOR EACH ROW EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    CREATE TRIGGER resources_version AFTER INSERT OR UPDATE OR DELETE ON resources
        FOR EACH ROW EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    CREATE TRIGGER services_version AFTER INSERT OR UPDATE OR DELETE ON services
        FOR EACH ROW EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    CREATE TRIGGER businesses_version_truncate AFTER TRUNCATE ON businesses
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    CREATE TRIGGER resources_version_truncate AFTER TRUNCATE ON resources
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    CREATE TRIGGER services_version_truncate AFTER TRUNCATE ON services
        FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version()
    """,
)

_MIGRATIONS: Final[dict[int, tuple[LiteralString, ...]]] = {0: _SCHEMA_V1, 1: _SCHEMA_V2, 2: _SCHEMA_V3}

_LOCK_RESOURCES: Final = """
    SELECT CASE WHEN u.shared THEN pg_advisory_xact_lock_shared(u.k) ELSE pg_advisory_xact_lock(u.k) END
    FROM unnest(%s::bigint[], %s::boolean[]) WITH ORDINALITY AS u(k, shared, n)
    ORDER BY u.n
"""
_ESCALATE_AT: Final = 32
"""A call locking more resources than this takes the tenant's lock exclusively instead (pretix escalates at 20)."""
_SET_LOCK_TIMEOUT: Final = "SELECT set_config('lock_timeout', %s, true)"
_LOADS: Final = """
    SELECT br.booking_id, br.resource_id, br.units, lower(b.during), upper(b.during),
           lower(br.during), upper(br.during), b.hold_until
    FROM booking_resources AS br
    JOIN bookings AS b ON b.tenant_id = br.tenant_id AND b.id = br.booking_id
    WHERE br.tenant_id = %s AND br.resource_id = ANY(%s::text[]) AND br.live
      AND br.during && tstzrange(%s::timestamptz, %s::timestamptz, '[)')
    ORDER BY lower(br.during), br.booking_id, br.pos
"""
_PUT_BOOKING: Final = """
    INSERT INTO bookings (tenant_id, id, status, during, blocked, hold_until, customer_id, source,
                          external_ref, service_id, version, doc)
    VALUES (%(tenant)s, %(id)s, %(status)s,
            tstzrange(%(start)s::timestamptz, %(end)s::timestamptz, '[)'),
            tstzrange(%(blocked_start)s::timestamptz, %(blocked_end)s::timestamptz, '[)'),
            %(hold_until)s::timestamptz, %(customer_id)s, %(source)s, %(external_ref)s, %(service_id)s,
            %(version)s, %(doc)s::jsonb)
    ON CONFLICT (tenant_id, id) DO UPDATE SET
        status = excluded.status, during = excluded.during, blocked = excluded.blocked,
        hold_until = excluded.hold_until, customer_id = excluded.customer_id, source = excluded.source,
        external_ref = excluded.external_ref, service_id = excluded.service_id,
        version = excluded.version, doc = excluded.doc
"""
_VERSION_FOR_UPDATE: Final = "SELECT version FROM bookings WHERE tenant_id = %s AND id = %s FOR UPDATE"


def resource_lock_key(tenant: str, resource_id: str) -> int:
    """
    Return the 64-bit advisory lock key of one resource of one tenant.

    A hash (BLAKE2b) of both, so keys of different tenants or resources are different but for a vanishingly
    rare collision; a collision only makes two unrelated resources wait for each other, never oversells.
    """
    data = tenant.encode("utf-8", "surrogatepass") + b"\x00" + resource_id.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"slotengine-res").digest(), "big", signed=True)


def tenant_lock_key(tenant: str) -> int:
    """Return the 64-bit advisory lock key of a whole tenant (shared by every resource lock, exclusive when many)."""
    data = tenant.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"slotengine-ten").digest(), "big", signed=True)


# --- errors --------------------------------------------------------------------------------------------------


def _translate(exc: BaseException) -> SlotEngineError:  # noqa: PLR0911 - one exit per kind of failure
    """Turn a ``psycopg`` (or binding) exception into slotengine's error for it."""
    if isinstance(exc, UnicodeEncodeError):
        msg = "a text value contains a lone surrogate character, which PostgreSQL cannot store"
        return InvalidInputError(msg, reason=exc.reason)
    if isinstance(exc, PoolTimeout):
        msg = f"no PostgreSQL connection became free in time ({exc}); retry"
        return ConcurrencyError(msg)
    if isinstance(exc, PoolClosed):
        msg = "this storage is closed"
        return StorageError(msg)
    state: str | None = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) if diag is not None else None) or str(exc).split("\n")[0]
    if state in _RETRYABLE:
        msg = f"a concurrent writer got in the way ({_RETRYABLE[state]}: {primary}); retry"
        return ConcurrencyError(msg, sqlstate=state)
    if state == "23P01":
        msg = f"the time is taken: the database's exclusion constraint refused an overlapping booking ({primary})"
        return ConflictError(msg, sqlstate=state, constraint=getattr(diag, "constraint_name", None))
    if (state is not None and state.startswith("22")) or (state is None and isinstance(exc, psycopg.DataError)):
        msg = f"PostgreSQL cannot store a value: {primary}"
        return InvalidInputError(msg, sqlstate=state)
    if state == "25P02":
        msg = "PostgreSQL aborted this transaction after an earlier error; nothing of it was written"
        return StorageError(msg, sqlstate=state)
    msg = f"PostgreSQL failed: {primary}" + (f" (SQLSTATE {state})" if state else "")
    return StorageError(msg, sqlstate=state)


def _json_array(documents: Sequence[str]) -> str:
    """Join JSON texts (each made by `slotengine.codec.dumps`) into the text of one JSON array."""
    return "[" + ",".join(documents) + "]"


def _corrupt(what: str, exc: SlotEngineError) -> StorageError:
    msg = f"a stored {what} cannot be read back: {exc}"
    return StorageError(msg)


_CAUGHT: Final = (psycopg.Error, UnicodeEncodeError)


def _document(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"a stored {what} cannot be read back: its document is not a JSON object"
        raise StorageError(msg)
    return value


Connection = psycopg.Connection[tuple[Any, ...]]


# --- the transaction -----------------------------------------------------------------------------------------


class _Transaction:
    """One READ COMMITTED transaction in one tenant's data (see `slotengine.ports.StorageTransaction`)."""

    def __init__(self, tenant: str, conn: Connection, lock_timeout: str, *, timeout_set: bool = False) -> None:
        self._tenant = tenant
        self._conn = conn
        self._lock_timeout = lock_timeout
        self._timeout_set = timeout_set  # the connection's session setting is already this lock timeout
        self._locked: set[tuple[int, bool]] = set()  # advisory locks held: (key, shared)
        self._seen: dict[str, int] = {}  # booking id -> the version this transaction read or wrote
        self.state = "open"  # open -> committed | over

    @property
    def tenant(self) -> str:
        return self._tenant

    # --- statements: the only place SQL is run; `query` is always a constant of this module -------------------

    def _usable(self) -> Connection:
        if self.state == "over":
            msg = "this transaction is over; open a new one"
            raise StorageError(msg)
        if self.state == "open" and self._conn.info.transaction_status == TransactionStatus.INERROR:
            msg = "PostgreSQL aborted this transaction after an earlier error; nothing of it was written"
            raise StorageError(msg)
        return self._conn

    def _writable(self) -> Connection:
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        conn = self._usable()
        if conn.autocommit:
            # The database transaction starts at the first write or lock. Reads before it ran one statement at
            # a time, which at READ COMMITTED sees exactly what they would have seen inside it (each statement
            # takes a new snapshot either way), and saves a read-only use case its BEGIN and ROLLBACK.
            conn.autocommit = False
        return conn

    def _all(self, query: LiteralString, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        conn = self._usable()
        try:
            return conn.execute(query, params).fetchall()
        except _CAUGHT as exc:
            raise _translate(exc) from None

    def _one(self, query: LiteralString, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, ...] | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _write(self, query: LiteralString, params: Sequence[Any] | dict[str, Any]) -> int:
        conn = self._writable()
        try:
            return conn.execute(query, params).rowcount
        except _CAUGHT as exc:
            raise _translate(exc) from None

    def _batch(
        self, steps: Sequence[tuple[LiteralString, Sequence[Any] | dict[str, Any]]], *, write: bool
    ) -> list[psycopg.Cursor[tuple[Any, ...]]]:
        """
        Run *steps* in order in one round trip (psycopg's pipeline mode); return their cursors, results read.

        The statements are the same as one at a time, and so are their effects and errors: the first failing
        statement's error is raised (translated) before this returns, and the ones after it are not run.
        """
        conn = self._writable() if write else self._usable()
        try:
            with conn.pipeline():
                cursors = [conn.execute(query, params) for query, params in steps]
        except _CAUGHT as exc:
            raise _translate(exc) from None
        return cursors

    def commit(self) -> None:
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        conn = self._usable()
        try:
            if not conn.autocommit:
                conn.commit()
        except _CAUGHT as exc:
            self.state = "over"
            raise _translate(exc) from None
        self.state = "committed"

    # --- business and catalogue ---------------------------------------------------------------------------

    def catalogue_version(self) -> int:
        """The catalogue's version (`slotengine.ports.CatalogueVersions`), kept by triggers (schema version 3)."""
        row = self._one("SELECT version FROM catalogue_versions WHERE tenant_id = %s", (self._tenant,))
        return 0 if row is None else int(row[0])

    def get_business(self) -> Business:
        row = self._one("SELECT doc FROM businesses WHERE tenant_id = %s", (self._tenant,))
        if row is None:
            msg = f"business {self._tenant!r} is not set up"
            raise NotFoundError(msg, tenant=self._tenant)
        try:
            return business_from_dict(_document(row[0], "business"))
        except InvalidInputError as exc:
            raise _corrupt("business", exc) from None

    def put_business(self, business: Business) -> None:
        self._write(
            """
            INSERT INTO businesses (tenant_id, doc) VALUES (%s, %s::jsonb)
            ON CONFLICT (tenant_id) DO UPDATE SET doc = excluded.doc
            """,
            (self._tenant, dumps(business_to_dict(business))),
        )

    def _resource(self, row: tuple[Any, ...]) -> Resource:
        try:
            return resource_from_dict(_document(row[0], "resource"))
        except InvalidInputError as exc:
            raise _corrupt("resource", exc) from None

    def get_resource(self, resource_id: str) -> Resource:
        row = self._one("SELECT doc FROM resources WHERE tenant_id = %s AND id = %s", (self._tenant, resource_id))
        if row is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        return self._resource(row)

    def list_resources(self) -> list[Resource]:
        rows = self._all("SELECT doc FROM resources WHERE tenant_id = %s ORDER BY seq", (self._tenant,))
        return [self._resource(row) for row in rows]

    def put_resource(self, resource: Resource) -> None:
        # A new resource goes last (a fresh seq); a replaced one keeps its place.
        self._write(
            """
            INSERT INTO resources (tenant_id, id, capacity, doc) VALUES (%s, %s, %s, %s::jsonb)
            ON CONFLICT (tenant_id, id) DO UPDATE SET capacity = excluded.capacity, doc = excluded.doc
            """,
            (
                self._tenant,
                resource.id,
                None if resource.capacity is UNLIMITED else resource.capacity,
                dumps(resource_to_dict(resource)),
            ),
        )

    def _service(self, row: tuple[Any, ...]) -> Service:
        try:
            return service_from_dict(_document(row[0], "service"))
        except InvalidInputError as exc:
            raise _corrupt("service", exc) from None

    def get_service(self, service_id: str) -> Service:
        row = self._one("SELECT doc FROM services WHERE tenant_id = %s AND id = %s", (self._tenant, service_id))
        if row is None:
            msg = f"no service {service_id!r}"
            raise NotFoundError(msg, service_id=service_id)
        return self._service(row)

    def list_services(self) -> list[Service]:
        rows = self._all("SELECT doc FROM services WHERE tenant_id = %s ORDER BY seq", (self._tenant,))
        return [self._service(row) for row in rows]

    def put_service(self, service: Service) -> None:
        self._write(
            """
            INSERT INTO services (tenant_id, id, doc) VALUES (%s, %s, %s::jsonb)
            ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc
            """,
            (self._tenant, service.id, dumps(service_to_dict(service))),
        )

    # --- bookings --------------------------------------------------------------------------------------------

    def _lock(self, resource_ids: Collection[str]) -> list[str]:
        """
        Take the advisory locks of *resource_ids* in one statement; return the ids sorted.

        The order is the same for everyone: the tenant's key first (shared), then the resources' keys in
        ascending order (exclusive). More than `_ESCALATE_AT` resources take the tenant's key exclusively
        instead, which excludes every resource lock of the tenant and keeps the lock table small.
        """
        rids, steps = self._lock_steps(resource_ids)
        if steps:
            self._batch(steps, write=True)
        return rids

    def _lock_steps(
        self, resource_ids: Collection[str]
    ) -> tuple[list[str], list[tuple[LiteralString, Sequence[Any] | dict[str, Any]]]]:
        """
        Return the sorted ids and the statements that lock them (none if this transaction holds them all).

        Locks already held are not asked for again: they last until the transaction ends. The statements are
        meant to run first in a batch (`_batch`), so a lock is granted before anything after it reads.
        """
        rids = sorted(set(resource_ids))
        tenant_key = tenant_lock_key(self._tenant)
        if not rids or (tenant_key, False) in self._locked:
            return rids, []
        if len(rids) > _ESCALATE_AT:
            keys, shared = [tenant_key], [False]
        else:
            resource_keys = sorted({resource_lock_key(self._tenant, rid) for rid in rids})
            keys, shared = [tenant_key, *resource_keys], [True] + [False] * len(resource_keys)
        wanted = set(zip(keys, shared, strict=True))
        if wanted <= self._locked:
            return rids, []
        self._writable()  # the locks last until the end of the database transaction, which starts here
        steps: list[tuple[LiteralString, Sequence[Any] | dict[str, Any]]] = []
        if not self._timeout_set:
            steps.append((_SET_LOCK_TIMEOUT, (self._lock_timeout,)))
        steps.append((_LOCK_RESOURCES, (keys, shared)))
        self._timeout_set = True
        self._locked |= wanted
        return rids, steps

    def lock_resources(self, resource_ids: Collection[str]) -> None:
        rids, steps = self._lock_steps(resource_ids)
        if not rids:
            return
        # The locks and the check that the resources exist go in one round trip, the locks first.
        exists: tuple[LiteralString, Sequence[Any]] = (
            "SELECT id FROM resources WHERE tenant_id = %s AND id = ANY(%s::text[])",
            (self._tenant, rids),
        )
        rows = self._batch([*steps, exists], write=bool(steps))[-1].fetchall()
        found = {row[0] for row in rows}
        for rid in rids:
            if rid not in found:
                msg = f"no resource {rid!r}"
                raise NotFoundError(msg, resource_id=rid)

    def loads(self, resource_ids: Collection[str], window: Interval) -> list[Load]:
        rids = sorted(set(resource_ids))
        if not rids:
            return []
        return self._loads(self._all(_LOADS, (self._tenant, rids, window.start, window.end)))

    @staticmethod
    def _loads(rows: Sequence[tuple[Any, ...]]) -> list[Load]:
        found: list[Load] = []
        for booking_id, rid, units, start, end, blocked_start, blocked_end, hold in rows:
            start_utc, end_utc = to_utc(start), to_utc(end)
            found.append(
                Load(
                    booking_id,
                    rid,
                    Interval(start_utc, end_utc),
                    units=units,
                    buffer_before=start_utc - to_utc(blocked_start),
                    buffer_after=to_utc(blocked_end) - end_utc,
                    hold_until=None if hold is None else to_utc(hold),
                )
            )
        return found

    def reserve(self, booking: Booking, *, now: datetime, exclude: Collection[str] = ()) -> None:
        self._writable()
        rids, steps = self._lock_steps(booking.resource_ids)
        window = Interval(booking.start - booking.buffer_before, booking.end + booking.buffer_after)
        # One round trip: the locks (unless held already), then, under them, the resources and the load near
        # the booking (and the stored booking's version, locked, if this transaction read it).
        steps.append(
            ("SELECT id, doc FROM resources WHERE tenant_id = %s AND id = ANY(%s::text[])", (self._tenant, rids))
        )
        seen = self._seen.get(booking.id)
        if seen is not None:
            steps.append((_VERSION_FOR_UPDATE, (self._tenant, booking.id)))
        steps.append((_LOADS, (self._tenant, rids, window.start, window.end)))
        cursors = self._batch(steps, write=True)
        near = self._loads(cursors.pop().fetchall())
        version = cursors.pop().fetchone() if seen is not None else None
        by_id = {row[0]: row[1:] for row in cursors.pop().fetchall()}
        resources: dict[str, Resource] = {}
        for rid in rids:
            if rid not in by_id:
                msg = f"no resource {rid!r}"
                raise NotFoundError(msg, resource_id=rid)
            resources[rid] = self._resource(by_id[rid])
        if seen is not None and (version is None or version[0] != seen):
            # A stored booking this transaction read is locked (FOR UPDATE) and must not have changed since.
            msg = f"booking {booking.id!r} changed meanwhile"
            raise ConcurrencyError(msg, booking_id=booking.id)
        skip = {booking.id, *exclude}
        check_capacity(booking, resources, [ld for ld in near if ld.booking_id not in skip], now=now)
        # The backstop cannot see `now`: rows of holds that have lapsed, and of bookings the caller said to
        # ignore, leave it (they stay live for `loads`), or the constraint would refuse what the check allowed.
        stepping_aside = sorted(
            {
                ld.booking_id
                for ld in near
                if ld.booking_id != booking.id
                and (ld.booking_id in skip or (ld.hold_until is not None and ld.hold_until <= now))
            }
        )
        # The writes go in one round trip, in this order; the first error stops them (and is raised here).
        writes: list[tuple[LiteralString, Sequence[Any] | dict[str, Any]]] = []
        if stepping_aside:
            writes.append(
                (
                    """
                    UPDATE booking_resources SET exclusive = false
                    WHERE tenant_id = %s AND booking_id = ANY(%s::text[]) AND resource_id = ANY(%s::text[])
                      AND exclusive AND during && tstzrange(%s::timestamptz, %s::timestamptz, '[)')
                    """,
                    (self._tenant, stepping_aside, rids, window.start, window.end),
                )
            )
        writes.append((_PUT_BOOKING, self._booking_row(booking)))
        writes.append(
            ("DELETE FROM booking_resources WHERE tenant_id = %s AND booking_id = %s", (self._tenant, booking.id))
        )
        live = booking.status in LIVE_STATUSES
        loads = booking.loads()
        writes.append(
            (
                """
            INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, live, exclusive)
            SELECT %(tenant)s, %(id)s, r.pos - 1, r.resource_id, r.units,
                   tstzrange(%(start)s::timestamptz, %(end)s::timestamptz, '[)'), %(live)s, r.exclusive
            FROM unnest(%(rids)s::text[], %(units)s::integer[], %(exclusive)s::boolean[])
                 WITH ORDINALITY AS r(resource_id, units, exclusive, pos)
            """,
                {
                    "tenant": self._tenant,
                    "id": booking.id,
                    "start": window.start,
                    "end": window.end,
                    "live": live,
                    "rids": [ld.resource_id for ld in loads],
                    "units": [ld.units for ld in loads],
                    "exclusive": [live and resources[ld.resource_id].capacity == 1 for ld in loads],
                },
            )
        )
        self._batch(writes, write=True)
        self._seen[booking.id] = booking.version

    def _booking_row(self, booking: Booking) -> dict[str, Any]:
        return {
            "tenant": self._tenant,
            "id": booking.id,
            "status": booking.status.value,
            "start": booking.start,
            "end": booking.end,
            "blocked_start": booking.start - booking.buffer_before,
            "blocked_end": booking.end + booking.buffer_after,
            "hold_until": booking.hold_until,
            "customer_id": booking.customer_id,
            "source": booking.source,
            "external_ref": booking.external_ref,
            "service_id": booking.service_id,
            "version": booking.version,
            "doc": dumps(booking_to_dict(booking)),
        }

    def _booking(self, row: tuple[Any, ...]) -> Booking:
        try:
            return booking_from_dict(_document(row[0], "booking"))
        except InvalidInputError as exc:
            raise _corrupt("booking", exc) from None

    def get_booking(self, booking_id: str) -> Booking:
        row = self._one("SELECT doc FROM bookings WHERE tenant_id = %s AND id = %s", (self._tenant, booking_id))
        if row is None:
            msg = f"no booking {booking_id!r}"
            raise NotFoundError(msg, booking_id=booking_id)
        booking = self._booking(row)
        self._seen.setdefault(booking.id, booking.version)
        return booking

    def find_bookings(self, query: BookingQuery) -> list[Booking]:
        # SQL narrows with the indexed columns; BookingQuery.matches stays the definition of the answer.
        period = query.period
        rows = self._all(
            """
            SELECT doc FROM bookings
            WHERE tenant_id = %(tenant)s
              AND (%(resource_id)s::text IS NULL OR id IN (
                    SELECT booking_id FROM booking_resources
                    WHERE tenant_id = %(tenant)s AND resource_id = %(resource_id)s::text))
              AND (%(customer_id)s::text IS NULL OR customer_id = %(customer_id)s::text)
              AND (%(period_start)s::timestamptz IS NULL
                   OR during && tstzrange(%(period_start)s::timestamptz, %(period_end)s::timestamptz, '[)'))
              AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
              AND (%(source)s::text IS NULL OR source = %(source)s::text)
              AND (%(external_ref)s::text IS NULL OR external_ref = %(external_ref)s::text)
              AND (%(service_id)s::text IS NULL OR service_id = %(service_id)s::text)
            ORDER BY lower(during), id
            """,
            {
                "tenant": self._tenant,
                "resource_id": query.resource_id,
                "customer_id": query.customer_id,
                "period_start": None if period is None else period.start,
                "period_end": None if period is None else period.end,
                "statuses": None if query.statuses is None else sorted(s.value for s in query.statuses),
                "source": query.source,
                "external_ref": query.external_ref,
                "service_id": query.service_id,
            },
        )
        found = [b for b in map(self._booking, rows) if query.matches(b)]
        return sorted(found, key=lambda b: (b.start, b.id))

    def update_booking(self, booking: Booking, *, expected_version: int) -> None:
        self._writable()
        stored = self.get_booking(booking.id)
        check_update(stored, booking, expected_version)
        row = self._booking_row(booking)
        row["expected_version"] = expected_version
        # READ COMMITTED re-checks the WHERE clause after waiting for a concurrent writer of this row, so a
        # version that changed meanwhile updates nothing.
        changed = self._write(
            """
            UPDATE bookings SET status = %(status)s, hold_until = %(hold_until)s::timestamptz,
                customer_id = %(customer_id)s, source = %(source)s,
                external_ref = %(external_ref)s, service_id = %(service_id)s, version = %(version)s,
                doc = %(doc)s::jsonb
            WHERE tenant_id = %(tenant)s AND id = %(id)s AND version = %(expected_version)s
            """,
            row,
        )
        if changed != 1:
            msg = f"booking {booking.id!r} changed meanwhile"
            raise ConcurrencyError(msg, booking_id=booking.id)
        self._write(
            """
            UPDATE booking_resources SET live = %(live)s, exclusive = exclusive AND %(live)s
            WHERE tenant_id = %(tenant)s AND booking_id = %(id)s
            """,
            {"tenant": self._tenant, "id": booking.id, "live": booking.status in LIVE_STATUSES},
        )
        self._seen[booking.id] = booking.version

    def due_holds(self, now: datetime) -> list[Booking]:
        rows = self._all(
            """
            SELECT doc FROM bookings
            WHERE tenant_id = %s AND status = 'pre_booking' AND hold_until <= %s::timestamptz
            ORDER BY hold_until, id
            """,
            (self._tenant, now),
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
        if not records:
            return
        # The documents travel as one JSON array, not a text[]: psycopg quotes every '"' of a text[] element
        # in Python (a regular expression per element), which cost more than the rest of this call.
        self._write(
            """
            INSERT INTO transitions (tenant_id, booking_id, doc)
            SELECT %s, r.booking_id, d.doc
            FROM unnest(%s::text[]) WITH ORDINALITY AS r(booking_id, n)
            JOIN jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS d(doc, n) ON d.n = r.n
            ORDER BY r.n
            """,
            (
                self._tenant,
                [r.booking_id for r in records],
                _json_array([dumps(transition_to_dict(r)) for r in records]),
            ),
        )

    def _transition(self, row: tuple[Any, ...]) -> TransitionRecord:
        try:
            return transition_from_dict(_document(row[0], "transition"))
        except InvalidInputError as exc:
            raise _corrupt("transition", exc) from None

    def list_transitions(self, booking_id: str | None = None) -> list[TransitionRecord]:
        rows = self._all(
            """
            SELECT doc FROM transitions
            WHERE tenant_id = %s AND (%s::text IS NULL OR booking_id = %s::text)
            ORDER BY seq
            """,
            (self._tenant, booking_id, booking_id),
        )
        return [self._transition(row) for row in rows]

    def append_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        self._writable()
        if not messages:
            return
        rows = [self._outbox_row(message) for message in messages]
        # One statement for all, in the given order (seq). An id that exists (or repeats) inserts nothing and
        # is reported; the others stay written in this transaction, as they would one by one.
        self._writable()
        inserted = self._all(
            """
            INSERT INTO outbox (tenant_id, id, sent, failed, doc)
            SELECT %s, m.id, m.sent, m.failed, d.doc
            FROM unnest(%s::text[], %s::boolean[], %s::boolean[]) WITH ORDINALITY AS m(id, sent, failed, n)
            JOIN jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS d(doc, n) ON d.n = m.n
            ORDER BY m.n
            ON CONFLICT (tenant_id, id) DO NOTHING
            RETURNING id
            """,
            (
                self._tenant,
                [r["id"] for r in rows],
                [r["sent"] for r in rows],
                [r["failed"] for r in rows],
                _json_array([r["doc"] for r in rows]),  # one JSON array (see append_transitions)
            ),
        )
        if len(inserted) != len(rows):
            remaining = [row[0] for row in inserted]
            for r in rows:
                if r["id"] not in remaining:
                    msg = f"outbox message {r['id']!r} exists already"
                    raise StorageError(msg)
                remaining.remove(r["id"])

    def _outbox_row(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "tenant": self._tenant,
            "id": message.id,
            "sent": message.sent_at is not None,
            "failed": message.failed_at is not None,
            "doc": dumps(outbox_to_dict(message)),
        }

    def _message(self, row: tuple[Any, ...]) -> OutboxMessage:
        try:
            return outbox_from_dict(_document(row[0], "outbox message"))
        except InvalidInputError as exc:
            raise _corrupt("outbox message", exc) from None

    def list_outbox(self, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
        # The booking filter runs in the server: only the booking's own documents are sent and decoded.
        rows = self._all(
            """
            SELECT doc FROM outbox
            WHERE tenant_id = %s AND (NOT %s::boolean OR (NOT sent AND NOT failed))
              AND (%s::text IS NULL OR doc->>'booking_id' = %s::text)
            ORDER BY seq
            """,
            (self._tenant, pending_only, booking_id, booking_id),
        )
        return [self._message(row) for row in rows]

    def update_outbox(self, message: OutboxMessage) -> None:
        self._writable()
        changed = self._write(
            """
            UPDATE outbox SET sent = %(sent)s, failed = %(failed)s, doc = %(doc)s::jsonb
            WHERE tenant_id = %(tenant)s AND id = %(id)s
            """,
            self._outbox_row(message),
        )
        if changed == 0:
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        row = self._one(
            """
            SELECT key, request_hash, booking_id, result, created_at FROM idempotency
            WHERE tenant_id = %s AND key = %s
            """,
            (self._tenant, key),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], row[3], to_utc(row[4]))

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key and then inserts nothing.
        changed = self._write(
            """
            INSERT INTO idempotency (tenant_id, key, request_hash, booking_id, result, created_at)
            VALUES (%s, %s, %s, %s, %s, %s::timestamptz)
            ON CONFLICT (tenant_id, key) DO NOTHING
            """,
            (self._tenant, record.key, record.request_hash, record.booking_id, record.result, record.created_at),
        )
        if changed == 0:
            msg = f"idempotency key {record.key!r} was used meanwhile"
            raise ConcurrencyError(msg)

    # --- documents -------------------------------------------------------------------------------------------

    def get_document(self, kind: str, key: str) -> str | None:
        kind, key, _ = check_document(kind, key)
        row = self._one(
            "SELECT body FROM documents WHERE tenant_id = %s AND kind = %s AND key = %s", (self._tenant, kind, key)
        )
        return None if row is None else str(row[0])

    def put_document(self, kind: str, key: str, body: str) -> None:
        kind, key, body = check_document(kind, key, body)
        self._write(
            """
            INSERT INTO documents (tenant_id, kind, key, body) VALUES (%s, %s, %s, %s)
            ON CONFLICT (tenant_id, kind, key) DO UPDATE SET body = excluded.body
            """,
            (self._tenant, kind, key, body),
        )

    def list_documents(self, kind: str) -> list[tuple[str, str]]:
        kind, _, _ = check_document(kind, "-")
        # COLLATE "C" compares bytes (UTF-8): the code point order the port promises, whatever the locale.
        rows = self._all(
            'SELECT key, body FROM documents WHERE tenant_id = %s AND kind = %s ORDER BY key COLLATE "C"',
            (self._tenant, kind),
        )
        return [(str(k), str(b)) for k, b in rows]


# --- the storage -------------------------------------------------------------------------------------------------


def _check_schema(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or "\x00" in value
        or len(value.encode("utf-8", "surrogatepass")) > _MAX_IDENTIFIER_BYTES
        or value.lower().startswith("pg_")
    ):
        msg = (
            f"schema must be a PostgreSQL schema name of 1 to {_MAX_IDENTIFIER_BYTES} bytes, without NUL, "
            f"not starting with 'pg_'; got {value!r}"
        )
        raise InvalidInputError(msg, field="schema")
    return value


def _check_lock_timeout(value: object) -> str:
    if not isinstance(value, timedelta) or value < timedelta(milliseconds=1):
        msg = f"lock_timeout must be a timedelta of at least 1 ms (0 would mean: wait forever), got {value!r}"
        raise InvalidInputError(msg, field="lock_timeout")
    return f"{value // timedelta(milliseconds=1)}ms"


def _check_size(value: object, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{field} must be a whole number of at least {minimum}, got {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


class PostgresStorage:
    """
    Storage in one PostgreSQL schema: the `Storage` port for many threads, processes and hosts.

    Every transaction runs on one pooled connection at READ COMMITTED. Writers of a booking serialize on
    per-resource advisory locks, taken in sorted order with a lock timeout, and check capacity under them;
    an exclusion constraint refuses overlapping bookings of capacity-1 resources as a backstop (see the
    module docstring). Creating a `PostgresStorage` creates or upgrades its schema (safe from any number of
    processes at once) and checks that the server really enforces advisory locks.

    Args:
        dsn: A libpq connection string or URI (``postgresql://user@host:5432/db``).
        min_size: Connections the pool keeps open.
        max_size: Connections the pool opens at most (one per concurrent transaction).
        lock_timeout: How long a transaction waits for a resource lock (or a row lock) before
            `ConcurrencyError`; at least 1 ms.
        schema: The schema holding slotengine's tables (created if missing).

    Raises:
        InvalidInputError: an argument is not acceptable.
        StorageError: the server cannot be reached, the schema belongs to another program or to a newer
            slotengine, ``btree_gist`` cannot be created, or the server does not enforce advisory locks.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        lock_timeout: timedelta = timedelta(seconds=3),
        schema: str = "slotengine",
    ) -> None:
        given: object = dsn
        if not isinstance(given, str):
            msg = f"dsn must be a connection string, not {type(given).__name__}"
            raise InvalidInputError(msg, field="dsn")
        self._dsn = dsn
        self._schema = _check_schema(schema)
        self._lock_timeout = _check_lock_timeout(lock_timeout)
        self._min_size = _check_size(min_size, "min_size", 0)
        self._max_size = _check_size(max_size, "max_size", max(1, self._min_size))
        self._guard = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._pid = os.getpid()
        self._pool: ConnectionPool[Connection] | None = None
        try:
            direct = self._connect()  # one plain connection for the migration and the lock probe
        except BaseException:
            self.close()
            raise
        try:
            self._migrate(direct)
            self._pool = ConnectionPool(
                dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                open=True,
                configure=self._configure,
                name=f"slotengine-{self._schema}",
            )
            self._probe_locks(direct)
        except BaseException:
            self.close()
            raise
        finally:
            direct.close()

    @property
    def schema(self) -> str:
        """The schema holding this storage's tables."""
        return self._schema

    def __repr__(self) -> str:
        # The DSN may hold a password: it is never shown.
        return f"<PostgresStorage(schema={self._schema!r}, max_size={self._max_size})>"

    # --- connections ---------------------------------------------------------------------------------------

    def _connect(self) -> Connection:
        """Open a plain connection (for migrations and the lock probe), outside the pool."""
        try:
            return psycopg.connect(self._dsn, autocommit=False)
        except _CAUGHT as exc:
            raise _translate(exc) from None

    def _configure(self, conn: Connection) -> None:
        """Set up a new pooled connection: this schema first, UTC, READ COMMITTED (see the module docstring)."""
        conn.autocommit = True  # until a storage transaction's first write (see _Transaction._writable)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        conn.execute("SET TimeZone TO 'UTC'")
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED

    def _migrate(self, conn: Connection) -> None:
        """Bring the schema to `SCHEMA_VERSION`, refusing foreign and newer schemas. Idempotent."""
        try:
            with conn.transaction():
                if self._version(conn) == SCHEMA_VERSION:
                    return  # the usual case: no lock needed
            with conn.transaction():
                # One lock for every slotengine schema of the database: CREATE EXTENSION is database-wide.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                version = self._version(conn)  # again, under the lock: another process may have won
                if version > SCHEMA_VERSION:
                    msg = (
                        f"schema {self._schema!r} has version {version}, newer than this slotengine understands "
                        f"({SCHEMA_VERSION}); upgrade slotengine to use it"
                    )
                    raise StorageError(msg, schema_version=version)
                if version < SCHEMA_VERSION:
                    self._upgrade(conn, version)
        except _CAUGHT as exc:
            raise _translate(exc) from None

    def _version(self, conn: Connection) -> int:
        """Return the schema's version (0 if it is missing or empty); a schema of another program raises."""
        row = conn.execute(
            """
            SELECT n.oid IS NOT NULL,
                   (SELECT count(*) FROM pg_class AS c
                    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),
                   (SELECT count(*) FROM pg_class AS c
                    WHERE c.relnamespace = n.oid AND c.relname = 'schema_version' AND c.relkind = 'r')
            FROM (SELECT %s::text AS name) AS wanted
            LEFT JOIN pg_namespace AS n ON n.nspname = wanted.name
            """,
            (self._schema,),
        ).fetchone()
        assert row is not None  # noqa: S101 - one row by construction
        _exists, tables, versioned = row
        if not versioned:
            if tables:
                msg = f"schema {self._schema!r} holds another program's tables (it has no slotengine schema_version)"
                raise StorageError(msg)
            return 0
        found = conn.execute(
            sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}.schema_version").format(sql.Identifier(self._schema))
        ).fetchone()
        return int(found[0]) if found else 0

    def _upgrade(self, conn: Connection, version: int) -> None:
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'").fetchone()
        if installed is None:
            try:
                with conn.transaction():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            except psycopg.Error as exc:
                msg = (
                    "slotengine needs the btree_gist extension (for its exclusion constraint) and could not "
                    f"create it: {_translate(exc)}; ask a database owner to run CREATE EXTENSION btree_gist"
                )
                raise StorageError(msg) from None
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self._schema)))
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            version += 1
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _probe_locks(self, holder: Connection) -> None:
        """
        Check that this server enforces advisory locks (research C8): refuse it otherwise.

        Session A (*holder*) takes a transaction-level advisory lock on a random key; session B, a pooled
        connection, must then fail to take the same key.
        """
        key = secrets.randbits(63)
        try:
            with holder.transaction():
                holder.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
                with self._pooled() as other:
                    try:
                        row = other.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
                    finally:
                        other.rollback()
        except _CAUGHT as exc:
            raise _translate(exc) from None
        if row is None or row[0] is not False:
            msg = (
                "this server does not enforce advisory locks (a second session took a lock the first one held); "
                "slotengine cannot promise no double bookings on it"
            )
            raise StorageError(msg)

    @contextmanager
    def _pooled(self) -> Iterator[Connection]:
        """Borrow a pooled connection; it goes back idle (rolled back), or is dropped if it is broken."""
        with self._guard:
            self._check_open()
            pool = self._pool
        if pool is None:  # pragma: no cover - only during construction
            msg = "this storage is closed"
            raise StorageError(msg)
        try:
            conn = pool.getconn()
        except _CAUGHT as exc:
            raise _translate(exc) from None
        try:
            yield conn
        finally:
            try:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()
                conn.autocommit = True
            except _CAUGHT:
                conn.close()  # the pool replaces a closed connection
            try:
                pool.putconn(conn)
            except _CAUGHT:  # pragma: no cover - the pool was closed meanwhile
                conn.close()

    def _check_open(self) -> None:
        if self._closed:
            msg = "this storage is closed"
            raise StorageError(msg)
        if os.getpid() != self._pid:
            msg = "a PostgresStorage cannot cross fork(); create a new one in this process"
            raise StorageError(msg)

    # --- the port --------------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[_Transaction]:
        """
        Open a READ COMMITTED unit of work in *tenant*'s data (see `slotengine.ports.Storage.transaction`).

        Raises:
            ConcurrencyError: no pooled connection became free in time (retry).
            StorageError: the storage is closed or failed, or a transaction of this storage is already
                open in this thread (they do not nest: the inner one could wait for the outer one's locks).
        """
        check_id(tenant, "tenant")
        if getattr(self._local, "busy", False):
            msg = "a transaction of this storage is already open in this thread; transactions do not nest"
            raise StorageError(msg)
        self._local.busy = True
        try:
            with self._pooled() as conn:
                tx = _Transaction(tenant, conn, self._lock_timeout)
                try:
                    yield tx
                finally:
                    tx.state = "over"
        finally:
            self._local.busy = False

    def check_locking(self, *, timeout: timedelta = timedelta(milliseconds=200)) -> None:
        """
        Prove, with two sessions, that a resource lock held by one transaction stops another (research C8).

        Transaction A locks a probe resource of a private tenant, the way `lock_resources` does; transaction
        B, in another thread on another pooled connection, must then fail to lock it within *timeout*. Needs
        two free pooled connections.

        Raises:
            StorageError: B got the lock while A held it (the server does not enforce advisory locks).
        """
        tenant = f"__slotengine_probe__{secrets.token_hex(8)}"
        wait = _check_lock_timeout(timeout)
        ready, done = threading.Event(), threading.Event()
        failures: list[BaseException] = []

        def hold() -> None:
            try:
                with self._pooled() as conn:
                    _Transaction(tenant, conn, wait)._lock(["probe"])
                    ready.set()
                    done.wait(timeout.total_seconds() * 10 + 5)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                failures.append(exc)
                ready.set()

        thread = threading.Thread(target=hold, name="slotengine-lock-probe")
        thread.start()
        try:
            ready.wait(30)
            if failures:
                raise failures[0]
            with self._pooled() as conn:
                try:
                    _Transaction(tenant, conn, wait)._lock(["probe"])
                except ConcurrencyError:
                    return
            msg = "a second transaction locked a resource that another one held: advisory locks are not enforced"
            raise StorageError(msg)
        finally:
            done.set()
            thread.join()

    def close(self) -> None:
        """
        Close the pool and every connection in it; transactions still open in other threads fail.

        The storage cannot be used afterwards; closing twice is harmless.
        """
        with self._guard:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            pool.close()
