"""
`PostgresStorage`: the shared storage, one PostgreSQL schema used by any number of threads, processes and hosts.

How it keeps the no-double-booking promise (research note, sections 1.1, 1.2 and 3.2):

* **Advisory locks in sorted order.** `lock_resources` and `reserve` take ``pg_advisory_xact_lock`` on one
  64-bit key per (tenant, resource), in ascending key order, with a lock timeout. Two transactions that
  share a resource therefore run one after the other from the lock on, and because everyone takes keys in
  the same order, no two of them can wait for each other in a cycle (measured: sorted order gave 0
  deadlocks, random order 768 in 960 attempts). A lock that is not granted within *lock_timeout* ends the
  attempt with a retryable `ConcurrencyError` (SQLSTATE 55P03) instead of a queue that never drains. This
  is pretix's pattern, escalation included: every call first takes the tenant's key *shared*, and a call
  naming more than 32 resources takes it *exclusively* instead of 33+ resource keys (which keeps
  PostgreSQL's shared lock table small). Locks count, so this works for any capacity, where an exclusion
  constraint alone cannot (it can only say "no overlap").
* **Check under the lock, in the server, then write.** `reserve` is ``slotengine_reserve`` (schema version
  4), a PL/pgSQL function: it takes the locks, then checks the catalogue version and the version of a
  booking the transaction read (``FOR UPDATE``), then capacity, then writes the booking, its resource rows,
  and the transition records and outbox messages it is given. Transactions run at READ COMMITTED on
  purpose (every connection sets it as its default, whatever the DSN or role say, and the function refuses
  any other level): every statement of the (volatile) function after the locks takes a new snapshot and sees
  everything committed before the locks were granted, so the check reads the true load. A stricter level
  would read a snapshot taken *before* the lock, which is exactly the stale read the lock is there to
  prevent. The check is `slotengine.capacity.check_capacity`'s rule in SQL (loads of other live bookings
  over the blocked interval, lapsed holds and excluded bookings left out, a sweep for the peak); a property
  test holds the two to the same verdict, words and details, and it reports refusals through
  `slotengine.capacity.capacity_conflict`.
* **An exclusion constraint as a backstop.** ``booking_resources`` carries ``EXCLUDE USING gist (tenant_id
  WITH =, resource_id WITH =, during WITH &&, booking_id WITH <>, (CASE WHEN live AND exclusive THEN 1 END)
  WITH =)``: rows of resources with capacity 1 are marked ``exclusive``, and the database itself refuses two
  overlapping live ones (SQLSTATE 23P01, reported as `ConflictError`), whatever a bug above it does; the
  last column is NULL on every other row, and NULL never conflicts. Its index, over every row, is also the
  one the capacity check and a resource's bookings in a period read (schema version 9). On its own the
  constraint deadlocks under contention (measured: 255 deadlocks in 16,000 attempts, 243 ms per trial); the
  locks in front of it remove that (14 ms per trial). A constraint cannot read ``now()``, so a hold whose
  expiry has passed would keep blocking through it: the function first takes the rows of such stale holds
  (and of bookings it was told to ignore) out of the backstop, under the same lock, before it writes.
* **Domains and CHECK constraints** keep out what slips past an exclusion constraint: empty, unbounded,
  infinite or not-``[)`` ranges (research section 0.4), and a hold with no expiry. What one column may hold
  is its type (``time_span``, ``booking_status``, ``finite_instant``...: domains, whose checks PostgreSQL plans
  once per session, where a table's CHECK constraints are planned again at every statement); what relates two
  columns is a CHECK constraint of the table.

One storage transaction is one database transaction on one pooled connection (`psycopg_pool`); the engine
opens one per use case. The database transaction begins at the first write or lock: reads before it run as
single statements, which at READ COMMITTED see exactly what they would see inside it, and a read-only use
case is spared its BEGIN and ROLLBACK. A stored booking that this transaction read is locked (``FOR
UPDATE``) and re-checked before `reserve` replaces it, so two concurrent moves of one booking cannot both win.

One statement per booking: `PostgresStorage.reserve_and_record` (`slotengine.ports.ReserveAndRecord`) runs
``slotengine_reserve`` outside any explicit transaction, so that one statement is the whole transaction:
locks, catalogue version, check, writes and commit in one round trip. Every pooled connection prepares it
once and calls it through psycopg's ``pq`` layer (libpq, the GIL released while it waits), and carries the
storage's lock timeout as its session default. Elsewhere, statements that do not depend on each other's
answers go to the server together in psycopg's pipeline mode (BEGIN, ``lock_timeout``, the advisory locks
and the resources' existence check in one); the first failing statement of a pipeline raises its error and
the ones after it are not run, as without a pipeline.

Plans: the load is read from ``booking_resources`` alone (each row keeps its booking's interval and hold
expiry), capacities by primary key, and the booking written with ``ON CONFLICT`` on its primary key: no
statement of the booking path leaves PostgreSQL a choice between indexes that a never-analysed table could
make badly (schema version 3 joined bookings, and its foreign key checked them, through an index that
scanned every booking of the tenant until the first ANALYZE).

Catalogue version (schema version 3): triggers on ``businesses``, ``resources`` and ``services`` (row-level
for INSERT, UPDATE and DELETE; statement-level for TRUNCATE) draw a new version for the tenant from a
sequence into ``catalogue_versions``, in the writing transaction, whoever writes (another slotengine, an
older one, an operator's SQL). A sequence never hands a number out twice, even to a transaction that rolls
back, which is the contract of `slotengine.ports.CatalogueVersions`; the engine keeps its decoded catalogue
while the version it reads stays the same.

Layout: the tenant leads every primary key, unique key and exclusion constraint, every statement filters
on it, and ``slotengine_reserve`` takes it as its first argument, so a deployment distributed by
``tenant_id`` (Citus, with the function distributed by its first argument) needs no schema change. Instants are
``timestamptz`` and ``tstzrange`` (microseconds, like Python). The full value of each record is a JSON
document made by `slotengine.codec`, in a ``jsonb`` column. Every statement is constant text with bind
parameters; the one identifier, the schema name, goes through ``psycopg.sql.Identifier`` and is set as
each connection's ``search_path``.

Backends: PostgreSQL 12 or later with ``btree_gist`` (created if missing). A PostgreSQL-compatible server
must really enforce advisory locks (CockroachDB long shipped them as no-ops): `PostgresStorage` checks this
when it opens and refuses a server that does not. Advisory locks are local to one server, so a sharded
deployment must route a tenant's writes to one node. Session-level settings are used (``search_path``,
``TimeZone``, ``lock_timeout``, a prepared statement), so put a pooler in front only in session mode. Do
not carry a `PostgresStorage` across ``fork()``; make a new one in the child (``spawn`` is the safe start
method).

Errors: serialization failures (40001), deadlocks (40P01) and lock timeouts (55P03) are `ConcurrencyError`
(retryable; the engine retries a bounded number of times), exclusion violations (23P01) `ConflictError`,
data errors (class 22, NUL characters, lone surrogates) `InvalidInputError`, everything else (connection
problems included) `StorageError`. No ``psycopg`` exception leaves this module. Messages carry the server's
primary message only, never its detail line (which quotes row values).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import selectors
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString, Self

try:
    import orjson
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.pq import TransactionStatus
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    msg = (
        "PostgresStorage needs psycopg 3, psycopg_pool and orjson: install slotengine[postgres] "
        "(in a clone of slotengine: pip install -e '.[postgres]')"
    )
    raise ImportError(msg) from exc

from slotengine._time import to_utc
from slotengine.availability import Load
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.capacity import capacity_conflict
from slotengine.codec import (
    _dumps_made,
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
    CatalogueChangedError,
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
    check_reserve_and_record,
    check_update,
    check_version,
    created_bounds,
    due_bound,
    excluded_ids,
    finished_before,
    resource_ids_to_lock,
)

__all__ = ["SCHEMA_VERSION", "PostgresStorage", "resource_lock_key", "tenant_lock_key"]

SCHEMA_VERSION: Final = 12
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

_RESERVE_TEMPLATE: Final[LiteralString] = """
    CREATE FUNCTION slotengine_reserve(p_tenant text, p_request jsonb) RETURNS text
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        v_id text := p_request->>'id';
        v_now timestamptz := (p_request->>'now')::timestamptz;
        v_booked tstzrange := tstzrange((p_request->>'start')::timestamptz, (p_request->>'end')::timestamptz, '[)');
        v_blocked tstzrange := tstzrange(
            (p_request->>'blocked_start')::timestamptz, (p_request->>'blocked_end')::timestamptz, '[)');
        v_hold timestamptz := (p_request->>'hold_until')::timestamptz;
        v_live boolean := (p_request->>'status') IN ('pre_booking', 'confirmed', 'paid');
        v_exclude text[] := ARRAY(SELECT jsonb_array_elements_text(p_request->'exclude'));
        v_version bigint;
        v_rids text[];
        v_units integer[];
        v_caps integer[];
        v_cap integer;
        v_missing text;
        v_in_way text[];
        v_aside boolean;
        v_any_aside boolean := false;
        v_peak integer;
        v_new boolean;
    BEGIN
        IF p_request->>'lock_timeout' IS NOT NULL THEN
            PERFORM set_config('lock_timeout', p_request->>'lock_timeout', true);
        END IF;
        -- The locks, in the order given (the caller sorts them; pretix's pattern): volatile calls in a target
        -- list are made after the ORDER BY, one row after the other.
        PERFORM CASE WHEN (a.l->>1)::boolean THEN pg_advisory_xact_lock_shared((a.l->>0)::bigint)
                     ELSE pg_advisory_xact_lock((a.l->>0)::bigint) END
        FROM jsonb_array_elements(p_request->'locks') WITH ORDINALITY AS a(l, n)
        ORDER BY a.n;
        -- Everything below runs after the locks were granted: each statement of this (volatile) function
        -- takes a new snapshot at READ COMMITTED, so it sees every booking committed before the locks.
        IF jsonb_typeof(p_request->'catalogue') = 'number' THEN
            SELECT version INTO v_version FROM catalogue_versions WHERE tenant_id = p_tenant;
            IF coalesce(v_version, 0) <> (p_request->>'catalogue')::bigint THEN
                RETURN jsonb_build_object('outcome', 'stale', 'version', coalesce(v_version, 0))::text;
            END IF;
        END IF;
        -- The resources, in the order the booking first takes them, with the units it takes on each, and
        -- their capacities (one primary-key lookup each: a join's plan could scan the tenant's resources).
        SELECT array_agg(w.rid ORDER BY w.first), array_agg(w.units ORDER BY w.first)
        INTO v_rids, v_units
        FROM (SELECT l->>0 AS rid, sum((l->>1)::integer)::integer AS units, min(n) AS first
              FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n)
              GROUP BY l->>0) AS w;
        FOR i IN 1 .. coalesce(cardinality(v_rids), 0) LOOP
            SELECT capacity INTO v_cap FROM resources WHERE tenant_id = p_tenant AND id = v_rids[i];
            v_caps[i] := v_cap;
            IF NOT FOUND AND (v_missing IS NULL OR v_rids[i] COLLATE "C" < v_missing COLLATE "C") THEN
                v_missing := v_rids[i];
            END IF;
        END LOOP;
        IF v_missing IS NOT NULL THEN
            RETURN jsonb_build_object('outcome', 'missing', 'resource_id', v_missing)::text;
        END IF;
        IF jsonb_typeof(p_request->'seen') = 'number' THEN
            SELECT version INTO v_version FROM bookings WHERE tenant_id = p_tenant AND id = v_id FOR UPDATE;
            IF NOT FOUND OR v_version <> (p_request->>'seen')::integer THEN
                RETURN jsonb_build_object('outcome', 'changed')::text;
            END IF;
        END IF;
        -- Capacity, resource by resource: the live loads of other bookings over the blocked interval; a
        -- hold whose expiry has passed and a booking the caller excluded do not count.
        FOR i IN 1 .. coalesce(cardinality(v_rids), 0) LOOP
            SELECT array_agg(n.booking_id) FILTER (WHERE n.counts),
                   coalesce(bool_or(n.exclusive) FILTER (WHERE NOT n.counts), false)
            INTO v_in_way, v_aside
            FROM (SELECT br.booking_id, br.exclusive,
                         br.booking_id <> ALL (v_exclude) AND (br.hold_until IS NULL OR br.hold_until > v_now) AS counts
                  FROM booking_resources AS br
                  WHERE br.tenant_id = p_tenant AND br.resource_id = v_rids[i] AND br.live
                    AND br.during && v_blocked AND br.booking_id <> v_id) AS n;
            v_any_aside := v_any_aside OR v_aside;
            CONTINUE WHEN v_caps[i] IS NULL;  -- unlimited
            v_peak := 0;
            IF v_in_way IS NOT NULL THEN
                -- The highest load over the blocked interval: a sweep, ends before starts at one instant.
                SELECT coalesce(max(s.load), 0) INTO v_peak
                FROM (SELECT sum(e.delta) OVER (ORDER BY e.at, e.delta ROWS UNBOUNDED PRECEDING) AS load
                      FROM (SELECT greatest(lower(br.during), lower(v_blocked)) AS at, br.units AS delta
                            FROM booking_resources AS br
                            WHERE br.tenant_id = p_tenant AND br.resource_id = v_rids[i]
                              AND br.booking_id = ANY (v_in_way) AND br.live AND br.during && v_blocked
                            UNION ALL
                            SELECT upper(br.during), -br.units
                            FROM booking_resources AS br
                            WHERE br.tenant_id = p_tenant AND br.resource_id = v_rids[i]
                              AND br.booking_id = ANY (v_in_way) AND br.live AND br.during && v_blocked
                              AND upper(br.during) < upper(v_blocked)) AS e) AS s;
            END IF;
            IF v_peak + v_units[i] > v_caps[i] THEN
                RETURN jsonb_build_object(
                    'outcome', 'conflict', 'resource_id', v_rids[i],
                    'name', (SELECT doc->>'name' FROM resources WHERE tenant_id = p_tenant AND id = v_rids[i]),
                    'capacity', v_caps[i], 'peak', v_peak, 'units', v_units[i],
                    'in_the_way', coalesce(to_jsonb(v_in_way), '[]'::jsonb))::text;
            END IF;
        END LOOP;
        -- The exclusion backstop cannot see `now`: rows of lapsed holds and of excluded bookings in the way
        -- leave it (they stay live for `loads`), or it would refuse what the check allowed.
        IF v_any_aside THEN
            UPDATE booking_resources SET exclusive = false
            WHERE tenant_id = p_tenant AND resource_id = ANY (v_rids) AND live AND exclusive
              AND during && v_blocked AND booking_id <> v_id
              AND (booking_id = ANY (v_exclude) OR hold_until <= v_now);
        END IF;
        -- The booking, its log records and its outbox messages in one statement (they do not refer to each
        -- other); an outbox id that exists already fails it (unique_violation), and nothing of it is written.
        WITH written AS (
            INSERT INTO bookings (tenant_id, id, status, during, blocked, hold_until, customer_id, source,
                                  external_ref, service_id, version, doc)
            VALUES (p_tenant, v_id, p_request->>'status', v_booked, v_blocked, v_hold, p_request->>'customer_id',
                    p_request->>'source', p_request->>'external_ref', p_request->>'service_id',
                    (p_request->>'version')::integer, p_request->'doc')
            ON CONFLICT (tenant_id, id) DO UPDATE SET
                status = excluded.status, during = excluded.during, blocked = excluded.blocked,
                hold_until = excluded.hold_until, customer_id = excluded.customer_id, source = excluded.source,
                external_ref = excluded.external_ref, service_id = excluded.service_id,
                version = excluded.version, doc = excluded.doc
            RETURNING xmax = 0 AS new  -- a row this statement inserted (rather than updated) has no xmax
        ), logged AS (
            INSERT INTO transitions (tenant_id, booking_id, doc)
            SELECT p_tenant, a.t->>'booking_id', a.t->'doc'
            FROM jsonb_array_elements(p_request->'transitions') WITH ORDINALITY AS a(t, n)
            ORDER BY a.n
        ), queued AS (
            INSERT INTO outbox (tenant_id, id, sent, failed, doc)
            SELECT p_tenant, a.m->>'id', (a.m->>'sent')::boolean, (a.m->>'failed')::boolean, a.m->'doc'
            FROM jsonb_array_elements(p_request->'outbox') WITH ORDINALITY AS a(m, n)
            ORDER BY a.n
        )
        SELECT new INTO v_new FROM written;
        IF NOT v_new THEN
            DELETE FROM booking_resources WHERE tenant_id = p_tenant AND booking_id = v_id;
        END IF;
        INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, booked, hold_until,
                                       live, exclusive)
        SELECT p_tenant, v_id, (a.n - 1)::integer, a.l->>0, (a.l->>1)::integer, v_blocked, v_booked, v_hold,
               v_live, v_live AND coalesce(v_caps[array_position(v_rids, a.l->>0)] = 1, false)
        FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n);
        -- (idempotency)
        RETURN 'ok';
    END
    $$
    """
"""A booking's write in the server; `_RESERVE_FUNCTION_V4` and `_RESERVE_FUNCTION` are made from it."""

_KEY_TAKEN: Final = "SE409"
"""The SQLSTATE `slotengine_reserve` raises when its idempotency key exists (a code of slotengine's own)."""

_RESERVE_KEYED: Final[LiteralString] = """-- The idempotency record last, as `put_idempotency` after the appends:
        -- a key that exists (or that a concurrent call holds, which ON CONFLICT waits for) undoes it all.
        IF jsonb_typeof(p_request->'idempotency') = 'object' THEN
            INSERT INTO idempotency (tenant_id, key, request_hash, booking_id, result, created_at)
            VALUES (p_tenant, p_request->'idempotency'->>'key', p_request->'idempotency'->>'hash',
                    p_request->'idempotency'->>'booking_id', p_request->'idempotency'->>'result',
                    (p_request->'idempotency'->>'created_at')::timestamptz)
            ON CONFLICT (tenant_id, key) DO NOTHING;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'idempotency key % was used meanwhile', p_request->'idempotency'->>'key'
                    USING ERRCODE = 'SE409';
            END IF;
        END IF;"""

_RESERVE_FUNCTION_V4: Final[LiteralString] = _RESERVE_TEMPLATE.replace("-- (idempotency)\n        ", "")
"""The function as schema version 4 created it (no idempotency record)."""

_RESERVE_FUNCTION_V5: Final[LiteralString] = _RESERVE_TEMPLATE.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
).replace("-- (idempotency)", _RESERVE_KEYED)
"""The function as schema version 5 created it: version 4's, and the idempotency record."""


def _edited(text: LiteralString, old: LiteralString, new: LiteralString) -> LiteralString:
    """Return *text* with its one *old* replaced by *new* (a template edit that no longer applies raises)."""
    if text.count(old) != 1:  # pragma: no cover - caught by any import in the tests
        msg = f"the reserve template changed: {old!r} is not in it once"
        raise AssertionError(msg)
    return text.replace(old, new)


_RESERVE_FUNCTION_V6: Final[LiteralString] = _edited(
    _edited(
        _edited(
            _RESERVE_FUNCTION_V5,
            """        v_new boolean;
""",
            """        v_new boolean;
        v_span bigint := (extract(epoch FROM upper(v_blocked) - lower(v_blocked)) * 1000000)::bigint;
        v_widest bigint;
        v_widens boolean := false;
""",
        ),
        """            SELECT capacity INTO v_cap FROM resources WHERE tenant_id = p_tenant AND id = v_rids[i];
            v_caps[i] := v_cap;
""",
        """            SELECT capacity, max_blocked_us INTO v_cap, v_widest
            FROM resources WHERE tenant_id = p_tenant AND id = v_rids[i];
            v_caps[i] := v_cap;
            v_widens := v_widens OR coalesce(v_widest < v_span, false);
""",
    ),
    """        FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n);
""",
    """        FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n);
        -- The widest blocked interval of each resource (see find_bookings), written only when it grows.
        IF v_widens THEN
            UPDATE resources SET max_blocked_us = v_span
            WHERE tenant_id = p_tenant AND id = ANY (v_rids) AND max_blocked_us < v_span;
        END IF;
""",
)
"""The function as schema version 6 created it: version 5's, and each resource's widest blocked interval."""

_RESERVE_FUNCTION_V8: Final[LiteralString] = _edited(
    _edited(
        _edited(
            _edited(
                _RESERVE_FUNCTION_V6,
                "        v_units integer[];\n",
                "        v_units bigint[];\n",
            ),
            "        v_peak integer;\n",
            "        v_peak bigint;\n",
        ),
        "sum((l->>1)::integer)::integer AS units",
        "sum((l->>1)::integer)::bigint AS units",
    ),
    """    BEGIN
        IF p_request->>'lock_timeout' IS NOT NULL THEN""",
    """    BEGIN
        -- Locks, then checks, each statement with a new snapshot: at a higher isolation the snapshot would be
        -- older than the locks, and a booking committed meanwhile unseen (a DSN or role may set that default).
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            RAISE EXCEPTION 'slotengine_reserve runs at READ COMMITTED, not %',
                current_setting('transaction_isolation') USING ERRCODE = 'SE001';
        END IF;
        IF p_request->>'lock_timeout' IS NOT NULL THEN""",
)
"""
The booking write as version 8 makes it: loads and peaks summed as 64-bit numbers (units of many needs, or of
bookings taken while a resource was unlimited, pass 2^31), and refused outside READ COMMITTED.
"""

_PLACE_ROWS: Final[LiteralString] = """
            INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, booked,
                                           hold_until, live, exclusive)
            SELECT p_tenant, v_id, (a.n - 1)::integer, a.l->>0, (a.l->>1)::integer, v_blocked, v_booked, v_hold,
                   v_live, v_live AND coalesce(v_caps[array_position(v_rids, a.l->>0)] = 1, false)
            FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n)"""
"""The rows of a booking's loads, as `slotengine_reserve` (version 9) writes them for a new or a replaced booking."""

_CATALOGUE_READ: Final[LiteralString] = """\
        SELECT (SELECT version FROM catalogue_versions WHERE tenant_id = p_tenant),
               array_agg(w.rid ORDER BY w.first), array_agg(w.units ORDER BY w.first),
               array_agg(r.capacity ORDER BY w.first), coalesce(bool_or(r.max_blocked_us < v_span), false),
               min(w.rid COLLATE "C") FILTER (WHERE r.found IS NULL)
        INTO v_version, v_rids, v_units, v_caps, v_widens, v_missing
        FROM (SELECT l->>0 AS rid, sum((l->>1)::integer)::bigint AS units, min(n) AS first
              FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n)
              GROUP BY l->>0) AS w
        LEFT JOIN LATERAL (SELECT capacity, max_blocked_us, true AS found
                           FROM resources WHERE tenant_id = p_tenant AND id = w.rid OFFSET 0) AS r ON true;
"""
"""
The catalogue's version, a booking's resources (in the order it first takes them, with the units it takes on
each), their capacities and the first one missing, in one statement of `slotengine_reserve` (version 9).
"""

_RESERVE_READS_V9: Final[LiteralString] = _edited(
    _edited(
        _edited(
            _edited(
                _edited(
                    _RESERVE_FUNCTION_V8,
                    "        v_exclude text[] := ARRAY(SELECT jsonb_array_elements_text(p_request->'exclude'));\n",
                    "        v_exclude text[] := '{}';\n",
                ),
                "        v_cap integer;\n",
                "",
            ),
            "        v_widest bigint;\n",
            "",
        ),
        """        IF p_request->>'lock_timeout' IS NOT NULL THEN""",
        """        IF jsonb_array_length(p_request->'exclude') > 0 THEN
            v_exclude := ARRAY(SELECT jsonb_array_elements_text(p_request->'exclude'));
        END IF;
        IF p_request->>'lock_timeout' IS NOT NULL THEN""",
    ),
    """        IF jsonb_typeof(p_request->'catalogue') = 'number' THEN
            SELECT version INTO v_version FROM catalogue_versions WHERE tenant_id = p_tenant;
            IF coalesce(v_version, 0) <> (p_request->>'catalogue')::bigint THEN
                RETURN jsonb_build_object('outcome', 'stale', 'version', coalesce(v_version, 0))::text;
            END IF;
        END IF;
        -- The resources, in the order the booking first takes them, with the units it takes on each, and
        -- their capacities (one primary-key lookup each: a join's plan could scan the tenant's resources).
        SELECT array_agg(w.rid ORDER BY w.first), array_agg(w.units ORDER BY w.first)
        INTO v_rids, v_units
        FROM (SELECT l->>0 AS rid, sum((l->>1)::integer)::bigint AS units, min(n) AS first
              FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n)
              GROUP BY l->>0) AS w;
        FOR i IN 1 .. coalesce(cardinality(v_rids), 0) LOOP
            SELECT capacity, max_blocked_us INTO v_cap, v_widest
            FROM resources WHERE tenant_id = p_tenant AND id = v_rids[i];
            v_caps[i] := v_cap;
            v_widens := v_widens OR coalesce(v_widest < v_span, false);
            IF NOT FOUND AND (v_missing IS NULL OR v_rids[i] COLLATE "C" < v_missing COLLATE "C") THEN
                v_missing := v_rids[i];
            END IF;
        END LOOP;
""",
    """        -- In one statement: the catalogue's version; the resources, in the order the booking first takes
        -- them, with the units it takes on each; their capacities, one primary-key lookup each (OFFSET 0
        -- keeps it a lookup: a join's plan could scan the tenant's resources); and the first one missing.
"""
    + _CATALOGUE_READ
    + """        IF jsonb_typeof(p_request->'catalogue') = 'number'
           AND coalesce(v_version, 0) <> (p_request->>'catalogue')::bigint THEN
            RETURN jsonb_build_object('outcome', 'stale', 'version', coalesce(v_version, 0))::text;
        END IF;
""",
)
"""Version 8's function with version 9's reads (`_RESERVE_FUNCTION_V9` below adds its writes)."""

_RESERVE_FUNCTION_V9: Final[LiteralString] = _edited(
    _RESERVE_READS_V9,
    """            ORDER BY a.n
        )
        SELECT new INTO v_new FROM written;
        IF NOT v_new THEN
            DELETE FROM booking_resources WHERE tenant_id = p_tenant AND booking_id = v_id;
        END IF;
        INSERT INTO booking_resources (tenant_id, booking_id, pos, resource_id, units, during, booked, hold_until,
                                       live, exclusive)
        SELECT p_tenant, v_id, (a.n - 1)::integer, a.l->>0, (a.l->>1)::integer, v_blocked, v_booked, v_hold,
               v_live, v_live AND coalesce(v_caps[array_position(v_rids, a.l->>0)] = 1, false)
        FROM jsonb_array_elements(p_request->'loads') WITH ORDINALITY AS a(l, n);
""",
    """            ORDER BY a.n
        ), placed AS (  -- a new booking's rows; those of a booking replaced take the place of its old ones below
            -- (rows)
            WHERE (SELECT new FROM written)
        )
        SELECT new INTO v_new FROM written;
        IF NOT v_new THEN
            DELETE FROM booking_resources WHERE tenant_id = p_tenant AND booking_id = v_id;
            -- (rows);
        END IF;
""".replace("\n            -- (rows)", _PLACE_ROWS),
)
"""
The booking write as version 9 makes it: version 8's in four statements instead of seven on the common path
(the catalogue's version, the loads and the resources in one; a new booking's rows in the statement that writes
it; the excluded bookings read only when there are some).
"""

_RESERVE_FUNCTION_V11: Final[LiteralString] = _edited(
    _edited(
        _RESERVE_FUNCTION_V9,
        "        v_widens boolean := false;\n",
        "        v_widens boolean := false;\n        v_cap integer;\n",
    ),
    _CATALOGUE_READ,
    """        -- A booking of one resource (most are) reads them with two primary-key lookups: the general
        -- statement's aggregates cost a third of the function's reads to set up.
        IF jsonb_array_length(p_request->'loads') = 1 THEN
            v_rids := ARRAY[p_request->'loads'->0->>0];
            v_units := ARRAY[(p_request->'loads'->0->>1)::integer::bigint];
            SELECT (SELECT version FROM catalogue_versions WHERE tenant_id = p_tenant), r.capacity,
                   coalesce(r.max_blocked_us < v_span, false), CASE WHEN r.found IS NULL THEN v_rids[1] END
            INTO v_version, v_cap, v_widens, v_missing
            FROM (SELECT 1) AS one
            LEFT JOIN (SELECT capacity, max_blocked_us, true AS found
                       FROM resources WHERE tenant_id = p_tenant AND id = v_rids[1]) AS r ON true;
            v_caps := ARRAY[v_cap];
        ELSE
            -- (the general statement)
        END IF;
""".replace(
        "            -- (the general statement)\n",
        ("\n" + _CATALOGUE_READ).replace("\n        ", "\n            ")[1:],  # one level deeper
    ),
)
"""The booking write as version 11 makes it: version 9's, with a booking of one resource read without aggregates."""

_RESERVE_FUNCTION: Final[LiteralString] = _edited(
    _RESERVE_FUNCTION_V11,
    """                    'in_the_way', coalesce(to_jsonb(v_in_way), '[]'::jsonb))::text;
""",
    """                    'in_the_way', coalesce(to_jsonb(v_in_way), '[]'::jsonb),
                    -- What `loads` would read of the resource over the blocked time, in its order, so the
                    -- caller can explain the refusal without reading it again: booking, booked and blocked
                    -- bounds in microseconds since 1970, units, the hold's expiry.
                    'loads', (SELECT coalesce(jsonb_agg(jsonb_build_array(
                                      br.booking_id, e.booked_start, e.booked_end, e.blocked_start, e.blocked_end,
                                      br.units, e.hold) ORDER BY lower(br.during), br.booking_id, br.pos), '[]')
                              FROM booking_resources AS br,
                                   LATERAL (SELECT (extract(epoch FROM lower(br.booked)) * 1000000)::bigint,
                                                   (extract(epoch FROM upper(br.booked)) * 1000000)::bigint,
                                                   (extract(epoch FROM lower(br.during)) * 1000000)::bigint,
                                                   (extract(epoch FROM upper(br.during)) * 1000000)::bigint,
                                                   (extract(epoch FROM br.hold_until) * 1000000)::bigint)
                                       AS e(booked_start, booked_end, blocked_start, blocked_end, hold)
                              WHERE br.tenant_id = p_tenant AND br.resource_id = v_rids[i] AND br.live
                                AND br.during && v_blocked))::text;
""",
)
"""The booking write as version 12 makes it: version 11's, with a refusal's loads in its answer."""

# Version 4: a booking's whole write in one statement, and the load read from one table.
#
# * booking_resources keeps a copy of what a load needs from its booking (the booked interval, the hold's
#   expiry), so the capacity check and `loads` read one table through its GiST index and never join bookings
#   (whose plan PostgreSQL got wrong on a new schema before its first ANALYZE: a scan of every booking of the
#   tenant per booking, measured at 2 ms per booking after 9,000 bookings).
# * The foreign key from booking_resources to bookings goes: its per-row check ran the same kind of lookup
#   (and chose the same bad index on a new schema). Deleting or truncating bookings still removes their
#   rows (triggers); the adapter writes a booking and its rows in one statement of `slotengine_reserve`.
# * slotengine_reserve(tenant, request) is `reserve` in the server: it takes the advisory locks (in the
#   order given), checks the catalogue version and the version of a booking the transaction read, checks
#   capacity under the locks (the same rule as `slotengine.capacity.check_capacity`, property-tested against
#   it), takes lapsed holds out of the exclusion backstop, writes the booking and its rows, and appends
#   transitions and outbox messages; one round trip for a whole booking. It returns 'ok', or a JSON object
#   saying why it wrote nothing.
_SCHEMA_V4: Final[tuple[LiteralString, ...]] = (
    "ALTER TABLE booking_resources ADD COLUMN booked tstzrange, ADD COLUMN hold_until timestamptz",
    """
    UPDATE booking_resources AS br SET booked = b.during, hold_until = b.hold_until
    FROM bookings AS b WHERE b.tenant_id = br.tenant_id AND b.id = br.booking_id
    """,
    # Rows whose booking is gone (impossible with the foreign key this version drops) go too.
    "DELETE FROM booking_resources WHERE booked IS NULL",
    """
    ALTER TABLE booking_resources
        ALTER COLUMN booked SET NOT NULL,
        ADD CONSTRAINT booking_resources_booked_inside CHECK (during @> booked AND NOT isempty(booked)),
        ADD CONSTRAINT booking_resources_hold_finite CHECK (hold_until IS NULL OR isfinite(hold_until)),
        DROP CONSTRAINT booking_resources_tenant_id_booking_id_fkey
    """,
    """
    CREATE FUNCTION drop_booking_resources() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM booking_resources;
        ELSE
            DELETE FROM booking_resources WHERE tenant_id = OLD.tenant_id AND booking_id = OLD.id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER bookings_drop_resources AFTER DELETE ON bookings
        FOR EACH ROW EXECUTE FUNCTION drop_booking_resources()
    """,
    """
    CREATE TRIGGER bookings_drop_resources_truncate AFTER TRUNCATE ON bookings
        FOR EACH STATEMENT EXECUTE FUNCTION drop_booking_resources()
    """,
    _RESERVE_FUNCTION_V4,
)

# Version 5: slotengine_reserve also writes an idempotency record, so a keyed hold or booking takes the one
# statement too (`ReserveAndRecord.reserve_and_record`'s ``idempotency``).
_SCHEMA_V5: Final[tuple[LiteralString, ...]] = (_RESERVE_FUNCTION_V5,)

# Version 6: what keeps the engine's frequent reads from scanning a tenant's history.
#
# * The pending outbox by booking, which the engine reads on every cancel, reschedule and expiry (seq last, so
#   the index gives the order too). An index on the document's expression rather than a new column, so that a
#   process of version 5 still running (which inserts outbox rows knowing nothing of a new column) keeps it right.
# * resources.max_blocked_us, the widest blocked interval (microseconds) of any booking ever written on the
#   resource, as in the SQLite adapter: `find_bookings` bounds a period's scan of bookings_by_start with it.
#   slotengine_reserve, the only writer of a booking's time, keeps it (an UPDATE only when it grows, under the
#   resource's lock); a version 5 process calls the same function, so it keeps it too. The catalogue's version
#   trigger leaves the column out: it is bookkeeping of the bookings, not the catalogue.
_SCHEMA_V6: Final[tuple[LiteralString, ...]] = (
    """
    CREATE INDEX outbox_pending_by_booking ON outbox (tenant_id, (doc->>'booking_id'), seq)
        WHERE NOT sent AND NOT failed
    """,
    "DROP TRIGGER resources_version ON resources",
    """
    CREATE TRIGGER resources_version AFTER INSERT OR UPDATE OF tenant_id, id, seq, capacity, doc OR DELETE
        ON resources FOR EACH ROW EXECUTE FUNCTION bump_catalogue_version()
    """,
    """
    ALTER TABLE resources ADD COLUMN max_blocked_us bigint NOT NULL DEFAULT 0
        CHECK (max_blocked_us >= 0)
    """,
    """
    UPDATE resources AS r SET max_blocked_us = w.widest
    FROM (SELECT tenant_id, resource_id,
                 max(extract(epoch FROM upper(during) - lower(during)) * 1000000)::bigint AS widest
          FROM booking_resources GROUP BY tenant_id, resource_id) AS w
    WHERE r.tenant_id = w.tenant_id AND r.id = w.resource_id
    """,
    _RESERVE_FUNCTION_V6,
)

# Version 7: the bookings made in a period (the conversion funnel's cohort). An index on the document's
# expression rather than a new column, so a process of version 6 still running keeps it right; "C" order, in
# which the codec's ISO 8601 texts (UTC, "+00:00") sort as their instants do, whatever the database's collation.
# And a resource's rows by the start of their blocked interval instead of by booking id (the same number of
# index entries per booking), so a resource's bookings in a period are read from the period, bounded below by the
# resource's widest interval, not from the resource's whole history.
_SCHEMA_V7: Final[tuple[LiteralString, ...]] = (
    """CREATE INDEX bookings_by_created ON bookings (tenant_id, ((doc->>'created_at') COLLATE "C"))""",
    "DROP INDEX booking_resources_by_resource",
    "CREATE INDEX booking_resources_by_start ON booking_resources (tenant_id, resource_id, lower(during))",
)

# Version 8: the booking write with 64-bit sums, refused outside READ COMMITTED (`_RESERVE_FUNCTION_V8`).
_SCHEMA_V8: Final[tuple[LiteralString, ...]] = (_RESERVE_FUNCTION_V8,)

# Version 9: fewer index entries per booking, and the booking write in fewer statements (`_RESERVE_FUNCTION_V9`).
#
# * A resource row had three indexes besides its key: the exclusion constraint's (GiST, its live exclusive rows),
#   the capacity check's (GiST, its live rows) and a resource's rows by start (B-tree, every row). One GiST index
#   over every row now does all three: the constraint compares a last column that is 1 on a live exclusive row
#   and NULL on any other, and a NULL never conflicts (nor is it searched for), so it refuses what version 8's
#   refused; the capacity check reads the live rows of a resource over an interval from it, and find_bookings a
#   resource's rows over a period (``during &&`` the period) instead of by start.
# * The customer and the external reference are indexed where there is one (a booking made at the desk may have
#   neither); the queries that read them ask for one value, which a partial index answers.
_SCHEMA_V9: Final[tuple[LiteralString, ...]] = (
    "ALTER TABLE booking_resources DROP CONSTRAINT booking_resources_no_overlap",
    "DROP INDEX booking_resources_live",
    "DROP INDEX booking_resources_by_start",
    """
    ALTER TABLE booking_resources ADD CONSTRAINT booking_resources_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, resource_id WITH =, during WITH &&, booking_id WITH <>,
        (CASE WHEN live AND exclusive THEN 1 END) WITH =
    )
    """,
    "DROP INDEX bookings_by_customer",
    "CREATE INDEX bookings_by_customer ON bookings (tenant_id, customer_id) WHERE customer_id IS NOT NULL",
    "DROP INDEX bookings_by_external_ref",
    "CREATE INDEX bookings_by_external_ref ON bookings (tenant_id, external_ref) WHERE external_ref IS NOT NULL",
    _RESERVE_FUNCTION_V9,
)

# Version 10: what a column must hold is said by its type, not by a table's CHECK constraints. PostgreSQL reads
# and plans every CHECK constraint of a table again at each statement that writes it (measured: 70 us of a
# booking's 300 in slotengine_reserve, for the 13 of bookings and booking_resources), while a domain's checks
# are planned once per session and kept. So the spans, statuses, instants and counts become domains with the
# same checks, and the two checks that compare columns stay on their tables, one each. The columns change
# type before their domains get their checks, so no table is rewritten: each one's rows are read once to
# validate. A column of a domain type reads back as its base type (PostgreSQL describes it so).
_SCHEMA_V10: Final[tuple[LiteralString, ...]] = (
    "CREATE DOMAIN time_span AS tstzrange",
    "CREATE DOMAIN booking_status AS text",
    "CREATE DOMAIN finite_instant AS timestamptz",
    "CREATE DOMAIN positive_count AS integer",
    "CREATE DOMAIN row_position AS integer",
    """
    ALTER TABLE bookings
        DROP CONSTRAINT bookings_status_check, DROP CONSTRAINT bookings_during_check,
        DROP CONSTRAINT bookings_blocked_check, DROP CONSTRAINT bookings_hold_until_check,
        DROP CONSTRAINT bookings_version_check, DROP CONSTRAINT bookings_check, DROP CONSTRAINT bookings_check1,
        ALTER COLUMN status TYPE booking_status, ALTER COLUMN during TYPE time_span,
        ALTER COLUMN blocked TYPE time_span, ALTER COLUMN hold_until TYPE finite_instant,
        ALTER COLUMN version TYPE positive_count,
        ADD CONSTRAINT bookings_consistent
            CHECK (blocked @> during AND (status = 'pre_booking') = (hold_until IS NOT NULL))
    """,
    """
    ALTER TABLE booking_resources
        DROP CONSTRAINT booking_resources_pos_check, DROP CONSTRAINT booking_resources_units_check,
        DROP CONSTRAINT booking_resources_during_check, DROP CONSTRAINT booking_resources_booked_inside,
        DROP CONSTRAINT booking_resources_hold_finite,
        ALTER COLUMN pos TYPE row_position, ALTER COLUMN units TYPE positive_count,
        ALTER COLUMN during TYPE time_span, ALTER COLUMN booked TYPE time_span,
        ALTER COLUMN hold_until TYPE finite_instant,
        ADD CONSTRAINT booking_resources_booked_inside CHECK (during @> booked)
    """,
    # Not empty, bounded, finite, [start, end): what an exclusion constraint lets slip (research section 0.4).
    """
    ALTER DOMAIN time_span ADD CONSTRAINT time_span_bounded CHECK (
        NOT isempty(VALUE) AND NOT lower_inf(VALUE) AND NOT upper_inf(VALUE)
        AND lower_inc(VALUE) AND NOT upper_inc(VALUE) AND isfinite(lower(VALUE)) AND isfinite(upper(VALUE))
    )
    """,
    """
    ALTER DOMAIN booking_status ADD CONSTRAINT booking_status_known
        CHECK (VALUE IN ('pre_booking', 'confirmed', 'paid', 'completed', 'cancelled', 'expired', 'no_show'))
    """,
    "ALTER DOMAIN finite_instant ADD CONSTRAINT finite_instant_finite CHECK (isfinite(VALUE))",
    "ALTER DOMAIN positive_count ADD CONSTRAINT positive_count_positive CHECK (VALUE >= 1)",
    "ALTER DOMAIN row_position ADD CONSTRAINT row_position_not_negative CHECK (VALUE >= 0)",
)

# Version 11: a booking of one resource reads the catalogue's version and the resource in a statement without
# aggregates (`_RESERVE_FUNCTION_V11`). Measured in one backend, 1,000 calls alternated with version 10's function:
# 209 -> 194 us a call; the general statement (a booking of several resources) is unchanged.
_SCHEMA_V11: Final[tuple[LiteralString, ...]] = (_RESERVE_FUNCTION_V11,)

# Version 12: a refusal says what is in the way, as `loads` reads it (`_RESERVE_FUNCTION`), so the engine
# explains it without a transaction of its own (a refusal cost about three bookings' Python that way).
_SCHEMA_V12: Final[tuple[LiteralString, ...]] = (_RESERVE_FUNCTION,)

_MIGRATIONS: Final[dict[int, tuple[LiteralString, ...]]] = {
    0: _SCHEMA_V1,
    1: _SCHEMA_V2,
    2: _SCHEMA_V3,
    3: _SCHEMA_V4,
    4: _SCHEMA_V5,
    5: _SCHEMA_V6,
    6: _SCHEMA_V7,
    7: _SCHEMA_V8,
    8: _SCHEMA_V9,
    9: _SCHEMA_V10,
    10: _SCHEMA_V11,
    11: _SCHEMA_V12,
}

_SESSION: Final = (
    "SET TimeZone TO 'UTC'; SET client_encoding TO 'UTF8'; SET DateStyle TO 'ISO, MDY'; "
    "SET IntervalStyle TO 'postgres'; SET default_transaction_isolation TO 'read committed'"
)
"""
What every connection of the adapter sets, whatever the DSN, the role or the database say: UTC; UTF-8, which the
booking writes send as is; the ISO dates psycopg reads; and READ COMMITTED for the statements run outside an
explicit transaction (a booking's one-statement write), whose locks-then-check needs a new snapshot per statement.
"""

_LOCK_RESOURCES: Final = """
    SELECT CASE WHEN u.shared THEN pg_advisory_xact_lock_shared(u.k) ELSE pg_advisory_xact_lock(u.k) END
    FROM unnest(%s::bigint[], %s::boolean[]) WITH ORDINALITY AS u(k, shared, n)
    ORDER BY u.n
"""
_ESCALATE_AT: Final = 32
"""A call locking more resources than this takes the tenant's lock exclusively instead (pretix escalates at 20)."""
_SET_LOCK_TIMEOUT: Final = "SELECT set_config('lock_timeout', %s, true)"
_LOADS: Final = """
    SELECT booking_id, resource_id, units, lower(booked), upper(booked), lower(during), upper(during), hold_until
    FROM booking_resources
    WHERE tenant_id = %s AND resource_id = ANY(%s::text[]) AND live
      AND during && tstzrange(%s::timestamptz, %s::timestamptz, '[)')
    ORDER BY lower(during), booking_id, pos
"""
_RESERVE: Final = "SELECT slotengine_reserve(%s, %s::jsonb)"

_IDLE_SINCE: Final = "_slotengine_idle_since"
_MIN_WAIT: Final = 0.05
"""Seconds a borrow still waits for a connection, or for a check's answer, once its deadline is near."""
_IDLE_CHECK: Final = 1.0
"""A pooled connection idle for this many seconds is checked before it is handed out."""
_TIMEOUTS: Final[dict[str, int]] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
"""libpq's timeouts (seconds; milliseconds for ``tcp_user_timeout``) that a DSN gets unless it sets them."""

_PROBE_EVERY: Final = 1.0
"""Seconds one diagnosis of a pool that gave no connection serves every caller (see `_why_no_connection`)."""
_TRANSIENT_CONNECT: Final = frozenset({"53300", "57P03"})
"""SQLSTATEs of a server that refuses a connection for now: too many connections, starting up."""
_TRANSIENT_WORDS: Final = (
    "too many connections",
    "too many clients",
    "remaining connection slots",
    "is starting up",
    "not yet accepting connections",
    "in recovery mode",
)
"""How the server says the same while a connection starts, when libpq gives no SQLSTATE."""


def _reconnect_timeout(pool_timeout: float) -> float:
    """Return how long the pool keeps retrying a lost connection in the background: twice ``pool_timeout``."""
    return max(1.0, 2 * pool_timeout)


def _probe_timeout(pool_timeout: float) -> int:
    """Return the whole seconds a diagnosis waits to connect: about ``pool_timeout``, at least one."""
    return max(1, round(pool_timeout))


_OUTBOX_EXISTS: Final = "SELECT 1 FROM outbox WHERE tenant_id = %s AND id = %s"


@functools.lru_cache(maxsize=4096)
def resource_lock_key(tenant: str, resource_id: str) -> int:
    """
    Return the 64-bit advisory lock key of one resource of one tenant.

    A hash (BLAKE2b) of both, so keys of different tenants or resources are different but for a vanishingly
    rare collision; a collision only makes two unrelated resources wait for each other, never oversells.
    """
    data = tenant.encode("utf-8", "surrogatepass") + b"\x00" + resource_id.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"slotengine-res").digest(), "big", signed=True)


@functools.lru_cache(maxsize=256)
def tenant_lock_key(tenant: str) -> int:
    """Return the 64-bit advisory lock key of a whole tenant (shared by every resource lock, exclusive when many)."""
    data = tenant.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"slotengine-ten").digest(), "big", signed=True)


def _locks_for(tenant: str, resource_ids: Collection[str]) -> list[tuple[int, bool]]:
    """
    The advisory locks (key, shared) that guard *resource_ids*, in the one order everybody takes them.

    The tenant's key first (shared), then the resources' keys in ascending order (exclusive); more than
    `_ESCALATE_AT` resources take the tenant's key exclusively instead (pretix's escalation), which excludes
    every resource lock of the tenant and keeps the lock table small.
    """
    tenant_key = tenant_lock_key(tenant)
    rids = set(resource_ids)
    if len(rids) > _ESCALATE_AT:
        return [(tenant_key, False)]
    return [(tenant_key, True), *((key, False) for key in sorted({resource_lock_key(tenant, rid) for rid in rids}))]


# --- errors --------------------------------------------------------------------------------------------------


def _translate(exc: BaseException) -> SlotEngineError:  # noqa: PLR0911 - one exit per kind of failure
    """Turn a ``psycopg`` (or binding) exception into slotengine's error for it."""
    if isinstance(exc, UnicodeEncodeError):
        msg = "a text value contains a lone surrogate character, which PostgreSQL cannot store"
        return InvalidInputError(msg, reason=exc.reason)
    if isinstance(exc, PoolClosed):
        msg = "this storage is closed"
        return StorageError(msg)
    state: str | None = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) if diag is not None else None) or str(exc).split("\n")[0]
    if state in _RETRYABLE:
        msg = f"a concurrent writer got in the way ({_RETRYABLE[state]}: {primary}); retry"
        return ConcurrencyError(msg, sqlstate=state)
    if state == _KEY_TAKEN:
        return ConcurrencyError(primary, sqlstate=state)
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


def _request_text(request: dict[str, Any]) -> str:
    """
    Return *request* (a `slotengine_reserve` request) as JSON text, written by orjson.

    The server reads it into ``jsonb``, which keeps neither key order nor spacing, so any encoder that writes
    the same values will do, and orjson writes a booking's request in a tenth of the time `json` takes (a
    booking's documents were a tenth of its Python on the way to storage). The documents hold no float (the
    codec writes amounts and durations as strings and integers), the one value orjson writes differently
    (NaN as null). What orjson refuses goes to `slotengine.codec`'s encoder, which writes it (an integer
    beyond 64 bits) or raises `InvalidInputError` for it as every adapter does.
    """
    try:
        return orjson.dumps(request).decode()
    except orjson.JSONEncodeError:
        return _dumps_made(request)


def _blocked(booking: Booking) -> Interval:
    """
    Return the time *booking* blocks: its interval widened by its buffers, checked like every `Interval`.

    Memory and SQLite build this interval before they write; so must this adapter, before it sends anything:
    the server would store a blocked span reaching before 1970 or after 2200, whose loads then never read back.

    Raises:
        OutOfRangeError: a buffer reaches outside the accepted range of instants.
    """
    return Interval(booking.start - booking.buffer_before, booking.end + booking.buffer_after)


def _reserve_request(
    booking: Booking,
    *,
    now: datetime,
    exclude: Collection[str] = (),
    locks: Sequence[tuple[int, bool]] = (),
    seen: int | None = None,
    catalogue: int | None = None,
    transitions: Sequence[TransitionRecord] = (),
    outbox: Sequence[OutboxMessage] = (),
    idempotency: IdempotencyRecord | None = None,
    blocked: Interval | None = None,
) -> str:
    """
    Return the JSON text of one `slotengine_reserve` request: a booking, its loads, locks and records.

    The stored documents are the codec's (``*_to_dict``), written with the rest in one pass (`_request_text`);
    instants travel as ISO 8601 text with their offset, which PostgreSQL reads to the microsecond. *blocked*
    is the booking's `_blocked` time, if the caller built it already; it is built here otherwise.

    Raises:
        OutOfRangeError: the booking's buffers reach outside the accepted range (nothing was sent).
        InvalidInputError: a document holds what JSON cannot write (see `slotengine.codec.dumps`).
    """
    hold = booking.hold_until
    span = _blocked(booking) if blocked is None else blocked  # OutOfRangeError before anything is sent
    return _request_text(
        {
            "id": booking.id,
            "status": booking.status.value,
            "start": booking.start.isoformat(),
            "end": booking.end.isoformat(),
            "blocked_start": span.start.isoformat(),
            "blocked_end": span.end.isoformat(),
            "hold_until": None if hold is None else hold.isoformat(),
            "customer_id": booking.customer_id,
            "source": booking.source,
            "external_ref": booking.external_ref,
            "service_id": booking.service_id,
            "version": booking.version,
            "now": to_utc(now, "now").isoformat(),  # PostgreSQL reads offsets up to 15:59:59 only
            "exclude": excluded_ids(exclude),
            "locks": locks,
            "seen": seen,
            "catalogue": catalogue,
            "loads": [
                (rid, units)
                for assignment, units in zip(booking.assignments, booking.units, strict=True)
                for rid in assignment.resource_ids
            ],
            "idempotency": None
            if idempotency is None
            else {
                "key": idempotency.key,
                "hash": idempotency.request_hash,
                "booking_id": idempotency.booking_id,
                "result": idempotency.result,
                "created_at": idempotency.created_at.isoformat(),
            },
            "doc": booking_to_dict(booking),
            "transitions": [{"booking_id": r.booking_id, "doc": transition_to_dict(r)} for r in transitions],
            "outbox": [
                {"id": m.id, "sent": m.sent_at is not None, "failed": m.failed_at is not None, "doc": outbox_to_dict(m)}
                for m in outbox
            ],
        }
    )


def _reserved(outcome: object, booking: Booking, *, with_loads: bool = False) -> None:
    """
    Return if `slotengine_reserve` wrote *booking* (it said ``ok``); raise the error for what it said instead.

    *with_loads*: a refusal carries, as ``details["loads"]``, the refused resource's loads over the booking's
    blocked time that the function read under the locks (`ReserveAndRecord.reserve_and_record`).
    """
    if outcome == "ok":
        return
    parsed = json.loads(outcome) if isinstance(outcome, str) else None
    answer: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    kind = answer.get("outcome")
    if kind == "conflict":
        refusal = capacity_conflict(
            booking,
            answer["resource_id"],
            answer["name"],
            answer["capacity"],
            answer["peak"],
            answer["units"],
            answer["in_the_way"],
        )
        if with_loads and isinstance(answer.get("loads"), list):
            refusal.details["loads"] = _answered_loads(answer["resource_id"], answer["loads"])
        raise refusal
    if kind == "missing":
        msg = f"no resource {answer['resource_id']!r}"
        raise NotFoundError(msg, resource_id=answer["resource_id"])
    if kind == "changed":
        msg = f"booking {booking.id!r} changed meanwhile"
        raise ConcurrencyError(msg, booking_id=booking.id)
    if kind == "stale":
        msg = f"the catalogue changed meanwhile (version {answer['version']}); read it again"
        raise CatalogueChangedError(msg, version=answer["version"])
    msg = f"slotengine_reserve answered {outcome!r}, which this slotengine does not understand"
    raise StorageError(msg)


def _answered_loads(resource_id: str, rows: list[list[Any]]) -> tuple[Load, ...]:
    """The loads of a refusal's answer (booking, booked and blocked bounds in microseconds, units, hold)."""
    return tuple(
        Load._from_micros(booking_id, resource_id, (start, end), (blocked_start, blocked_end), units, hold)
        for booking_id, start, end, blocked_start, blocked_end, units, hold in rows
    )


_RESERVE_STATEMENT: Final = b"slotengine_reserve_one"
"""The name under which every pooled connection prepares `slotengine_reserve` (see `_prepare_reserve`)."""


def _prepare_reserve(conn: Connection) -> None:
    """Prepare the one-statement booking write on *conn* (parsed and planned once per connection)."""
    result = conn.pgconn.prepare(_RESERVE_STATEMENT, b"SELECT slotengine_reserve($1::text, $2::jsonb)")
    if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise _translate(psycopg.errors.error_from_result(result, encoding=conn.info.encoding))


def _reserve_at_once(conn: Connection, tenant: str, request: str) -> str | None:
    """
    Run one `slotengine_reserve` as its own transaction on *conn* (autocommit); return its answer.

    The prepared statement goes through libpq directly (psycopg's `pq` layer, which releases the GIL while it
    waits): a booking's one round trip costs a fraction of the Python a cursor would. A connection that lost
    the statement (a pooler's DISCARD ALL) prepares it again, once.
    """
    try:
        params = [tenant.encode(), request.encode()]
    except UnicodeEncodeError as exc:
        raise _translate(exc) from None
    for attempt in (1, 2):
        result = conn.pgconn.exec_prepared(_RESERVE_STATEMENT, params)
        if result.status == psycopg.pq.ExecStatus.TUPLES_OK:
            value = result.get_value(0, 0)
            return None if value is None else value.decode()
        error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if attempt == 1 and error.sqlstate == "26000":  # invalid_sql_statement_name: prepare and try again
            _prepare_reserve(conn)
            continue
        raise _translate(error)
    return None  # pragma: no cover - the loop returns or raises


def _not_closed(conn: Connection) -> bool:
    """
    Return whether idle *conn* is not known to be closed, reading what the server sent without waiting.

    A terminated backend sends its error and closes the socket; libpq learns it only when it reads, which
    a query would do too late. Reading costs one non-blocking ``recv`` (libpq's sockets never block).
    """
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()
    except psycopg.Error:
        return False
    return pgconn.status == psycopg.pq.ConnStatus.OK


def _answers(conn: Connection, timeout: float) -> bool:
    """
    Return whether the server answers an empty query on idle *conn* within *timeout* seconds.

    libpq itself would wait for ever for a server that keeps the TCP connection open but stopped answering
    (a hung host behind a proxy, a frozen virtual machine), and so would the caller's request.
    """
    pgconn = conn.pgconn
    deadline = time.monotonic() + timeout
    try:
        pgconn.send_query(b"")
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ)
            while pgconn.is_busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return False
                pgconn.consume_input()
        ok = True
        while (result := pgconn.get_result()) is not None:
            ok = ok and result.status == psycopg.pq.ExecStatus.EMPTY_QUERY
    except (psycopg.Error, OSError):
        return False
    return ok and pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


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
        if self._conn.broken:
            msg = "the connection to PostgreSQL was lost; nothing of this transaction was written, open a new one"
            raise StorageError(msg)
        return self._conn

    def _open(self) -> Connection:
        """The connection, if this transaction may still write (not committed); a write after commit is refused."""
        conn = self._usable()  # a transaction that is over says so, whether or not it was committed
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        return conn

    def _writable(self) -> Connection:
        conn = self._open()
        if conn.autocommit:
            # The database transaction starts at the first write or lock. Reads before it ran one statement at
            # a time, which at READ COMMITTED sees exactly what they would have seen inside it (each statement
            # takes a new snapshot either way), and saves a read-only use case its BEGIN and ROLLBACK.
            try:
                conn.autocommit = False
            except _CAUGHT as exc:
                raise self._failed(exc) from None
        return conn

    def _failed(self, exc: psycopg.Error | UnicodeEncodeError) -> SlotEngineError:
        """
        The error to raise for *exc*, raised by a statement before the commit.

        A connection lost then (a terminated backend, a restart, a network failure) took its uncommitted
        transaction with it: nothing of it was written, so the use case may run again (`ConcurrencyError`).
        """
        if self._conn.broken and self.state == "open":
            msg = (
                f"the connection to PostgreSQL was lost before this transaction committed ({_translate(exc)}); "
                "nothing of it was written; retry"
            )
            return ConcurrencyError(msg, connection_lost=True)
        return _translate(exc)

    def _all(
        self, query: LiteralString | sql.Composed, params: Sequence[Any] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        conn = self._usable()
        try:
            return conn.execute(query, params).fetchall()
        except _CAUGHT as exc:
            raise self._failed(exc) from None
        except RecursionError:  # psycopg's JSON loader on a document slotengine never nests that deep
            msg = "a stored document cannot be read back: it is nested too deeply"
            raise StorageError(msg) from None

    def _one(self, query: LiteralString, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, ...] | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _write(self, query: LiteralString, params: Sequence[Any] | dict[str, Any]) -> int:
        conn = self._writable()
        try:
            return conn.execute(query, params).rowcount
        except _CAUGHT as exc:
            raise self._failed(exc) from None

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
            raise self._failed(exc) from None
        return cursors

    def commit(self) -> None:
        conn = self._usable()
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        try:
            if not conn.autocommit:
                conn.commit()
        except _CAUGHT as exc:
            self.state = "over"
            if conn.broken:
                msg = (
                    f"the connection to PostgreSQL was lost while this transaction committed ({_translate(exc)}); "
                    "it may or may not have been written: read before you retry"
                )
                raise StorageError(msg, connection_lost=True) from None
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
        doc = dumps(business_to_dict(check_kind(business, Business, "business")))
        self._write(
            """
            INSERT INTO businesses (tenant_id, doc) VALUES (%s, %s::jsonb)
            ON CONFLICT (tenant_id) DO UPDATE SET doc = excluded.doc
            """,
            (self._tenant, doc),
        )

    def _resource(self, row: tuple[Any, ...]) -> Resource:
        try:
            return resource_from_dict(_document(row[0], "resource"))
        except InvalidInputError as exc:
            raise _corrupt("resource", exc) from None

    def get_resource(self, resource_id: str) -> Resource:
        resource_id = check_id(resource_id, "resource id")
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
        resource = check_kind(resource, Resource, "resource")
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
        service_id = check_id(service_id, "service id")
        row = self._one("SELECT doc FROM services WHERE tenant_id = %s AND id = %s", (self._tenant, service_id))
        if row is None:
            msg = f"no service {service_id!r}"
            raise NotFoundError(msg, service_id=service_id)
        return self._service(row)

    def list_services(self) -> list[Service]:
        rows = self._all("SELECT doc FROM services WHERE tenant_id = %s ORDER BY seq", (self._tenant,))
        return [self._service(row) for row in rows]

    def put_service(self, service: Service) -> None:
        service = check_kind(service, Service, "service")
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

        The statements are meant to run first in a batch (`_batch`), so a lock is granted before anything
        after it reads.
        """
        rids, locks = self._locks_wanted(resource_ids)
        if not locks:
            return rids, []
        steps: list[tuple[LiteralString, Sequence[Any] | dict[str, Any]]] = []
        if not self._timeout_set:
            steps.append((_SET_LOCK_TIMEOUT, (self._lock_timeout,)))
            self._timeout_set = True
        steps.append((_LOCK_RESOURCES, ([k for k, _ in locks], [shared for _, shared in locks])))
        return rids, steps

    def _locks_wanted(self, resource_ids: Collection[str]) -> tuple[list[str], list[tuple[int, bool]]]:
        """
        Return the sorted ids and the advisory locks (key, shared) to take for them, in the order to take them.

        The order is the same for everyone (`_locks_for`). Locks this transaction holds are not asked for
        again (they last until it ends): none are returned if it holds them all. The ones returned count as
        held from now on, and the database transaction starts here.
        """
        rids = resource_ids_to_lock(resource_ids)  # a non-text id is not found, as in memory and SQLite
        if not rids or (tenant_lock_key(self._tenant), False) in self._locked:
            return rids, []
        locks = _locks_for(self._tenant, rids)
        if self._locked.issuperset(locks):
            return rids, []
        self._writable()  # the locks last until the end of the database transaction, which starts here
        self._locked.update(locks)
        return rids, locks

    def lock_resources(self, resource_ids: Collection[str]) -> None:
        # The ids first (read once), then the transaction: after commit its locks are gone, so a lock is refused
        # as a write is, even of resources it held.
        rids = resource_ids_to_lock(resource_ids)
        self._open()
        rids, steps = self._lock_steps(rids)
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
        rids = check_ids(resource_ids, "resource id")
        window = check_kind(window, Interval, "window")
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
        # Every argument before the locks are counted as held (the checks every adapter makes, in their order):
        # an InvalidInputError or OutOfRangeError here leaves the transaction as it was.
        booking, blocked, now, excluded = check_reserve(booking, now, exclude)
        _rids, locks = self._locks_wanted(booking.resource_ids)
        try:
            request = _reserve_request(
                booking, now=now, exclude=excluded, locks=locks, seen=self._seen.get(booking.id), blocked=blocked
            )
        except BaseException:
            self._locked.difference_update(locks)  # never asked for: a later call must take them
            raise
        steps: list[tuple[LiteralString, Sequence[Any] | dict[str, Any]]] = []
        if not self._timeout_set:
            steps.append((_SET_LOCK_TIMEOUT, (self._lock_timeout,)))
            self._timeout_set = True
        steps.append((_RESERVE, (self._tenant, request)))
        # One round trip (with BEGIN, if the transaction starts here): slotengine_reserve locks, checks and
        # writes in the server.
        outcome = self._batch(steps, write=True)[-1].fetchone()
        _reserved(outcome[0] if outcome else None, booking)
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
            "doc": _dumps_made(booking_to_dict(booking)),
        }

    def _booking(self, row: tuple[Any, ...]) -> Booking:
        try:
            return booking_from_dict(_document(row[0], "booking"))
        except InvalidInputError as exc:
            raise _corrupt("booking", exc) from None

    def get_booking(self, booking_id: str) -> Booking:
        booking_id = check_id(booking_id, "booking id")
        row = self._one("SELECT doc FROM bookings WHERE tenant_id = %s AND id = %s", (self._tenant, booking_id))
        if row is None:
            msg = f"no booking {booking_id!r}"
            raise NotFoundError(msg, booking_id=booking_id)
        booking = self._booking(row)
        self._seen.setdefault(booking.id, booking.version)
        return booking

    def find_bookings(self, query: BookingQuery) -> list[Booking]:
        # SQL narrows with the indexed columns; BookingQuery.matches stays the definition of the answer. The
        # WHERE clause holds only the filters given, each a constant fragment with bound values: a
        # `%s IS NULL OR` predicate fits no index in a generic plan.
        query = check_kind(query, BookingQuery, "query")
        period = query.period
        clauses: list[sql.Composable] = []
        params: dict[str, Any] = {"tenant": self._tenant}
        if period is not None:
            params["period_start"], params["period_end"] = period.start, period.end
            # A booking's interval lies inside its blocked one, which is no longer than the widest blocked
            # interval of any of its resources (max_blocked_us only grows, cancelled bookings included), so
            # one that ends after the period starts began less than that before: bookings_by_start reads the
            # period instead of the tenant's whole history.
            clauses.append(
                sql.SQL(
                    """lower(during) >= %(period_start)s::timestamptz - interval '1 microsecond'
                        * (SELECT coalesce(max(max_blocked_us), 0) FROM resources WHERE tenant_id = %(tenant)s)
                      AND lower(during) < %(period_end)s::timestamptz
                      AND during && tstzrange(%(period_start)s::timestamptz, %(period_end)s::timestamptz, '[)')"""
                )
            )
        if query.blocked is not None:
            # As the period's, but a booking may also start up to the widest interval after the window, its
            # buffer before reaching back into it.
            params["blocked_start"], params["blocked_end"] = query.blocked.start, query.blocked.end
            clauses.append(
                sql.SQL(
                    """lower(during) >= %(blocked_start)s::timestamptz - interval '1 microsecond'
                        * (SELECT coalesce(max(max_blocked_us), 0) FROM resources WHERE tenant_id = %(tenant)s)
                      AND lower(during) < %(blocked_end)s::timestamptz + interval '1 microsecond'
                        * (SELECT coalesce(max(max_blocked_us), 0) FROM resources WHERE tenant_id = %(tenant)s)
                      AND blocked && tstzrange(%(blocked_start)s::timestamptz, %(blocked_end)s::timestamptz, '[)')"""
                )
            )
        if query.created is not None:
            # bookings_by_created's expression, exactly; the bounds are a second wide of the cut.
            params["created_from"], params["created_to"] = created_bounds(query.created)
            clauses.append(
                sql.SQL(
                    """(doc->>'created_at') COLLATE "C" >= %(created_from)s::text
                      AND (doc->>'created_at') COLLATE "C" < %(created_to)s::text"""
                )
            )
        window = period if period is not None else query.blocked
        if query.resource_id is not None and window is not None:
            # The resource's rows hold the bookings' blocked intervals, each around its booked one: those over
            # the period (or blocked window), read from booking_resources_no_overlap, are the candidates.
            params["window_start"], params["window_end"] = window.start, window.end
            clauses.append(
                sql.SQL(
                    """id IN (SELECT booking_id FROM booking_resources
                              WHERE tenant_id = %(tenant)s AND resource_id = %(resource_id)s::text
                                AND during && tstzrange(%(window_start)s::timestamptz, %(window_end)s::timestamptz,
                                                        '[)'))"""
                )
            )
            params["resource_id"] = query.resource_id
        elif query.resource_id is not None:
            clauses.append(
                sql.SQL(
                    """id IN (SELECT booking_id FROM booking_resources
                              WHERE tenant_id = %(tenant)s AND resource_id = %(resource_id)s::text)"""
                )
            )
            params["resource_id"] = query.resource_id
        if query.statuses is not None:
            clauses.append(sql.SQL("status = ANY(%(statuses)s::text[])"))
            params["statuses"] = sorted(s.value for s in query.statuses)
        equal = {
            "customer_id": query.customer_id,
            "source": query.source,
            "external_ref": query.external_ref,
            "service_id": query.service_id,
        }
        for column, value in equal.items():
            if value is not None:
                clauses.append(sql.SQL("{} = {}::text").format(sql.Identifier(column), sql.Placeholder(column)))
                params[column] = value
        statement = sql.Composed(
            [
                sql.SQL("SELECT doc FROM bookings WHERE tenant_id = %(tenant)s"),
                *(sql.Composed([sql.SQL(" AND "), clause]) for clause in clauses),
                sql.SQL(" ORDER BY lower(during), id"),
            ]
        )
        rows = self._all(statement, params)
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
            UPDATE booking_resources SET live = %(live)s, exclusive = exclusive AND %(live)s,
                hold_until = %(hold_until)s::timestamptz
            WHERE tenant_id = %(tenant)s AND booking_id = %(id)s
            """,
            {
                "tenant": self._tenant,
                "id": booking.id,
                "live": booking.status in LIVE_STATUSES,
                "hold_until": booking.hold_until if booking.status is BookingStatus.PRE_BOOKING else None,
            },
        )
        self._seen[booking.id] = booking.version

    def due_holds(self, now: datetime) -> list[Booking]:
        now = check_instant(now)  # a naive now would be read in the session's zone
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
        records = check_records(records)  # read once: the statement below reads them twice
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
                _json_array([_dumps_made(transition_to_dict(r)) for r in records]),
            ),
        )

    def _transition(self, row: tuple[Any, ...]) -> TransitionRecord:
        try:
            return transition_from_dict(_document(row[0], "transition"))
        except InvalidInputError as exc:
            raise _corrupt("transition", exc) from None

    def list_transitions(self, booking_id: str | None = None) -> list[TransitionRecord]:
        booking_id = check_id_or_none(booking_id, "booking id")
        rows = self._all(
            """
            SELECT doc FROM transitions
            WHERE tenant_id = %s AND (%s::text IS NULL OR booking_id = %s::text)
            ORDER BY seq
            """,
            (self._tenant, booking_id, booking_id),
        )
        return [self._transition(row) for row in rows]

    def list_transitions_of(self, booking_ids: Collection[str]) -> list[TransitionRecord]:
        """
        The log of the bookings named (`slotengine.ports.TransitionsOf`), in the order written: one statement.

        It searches ``transitions_by_booking`` per id; the rows are put in ``seq`` order here, so that no plan
        walks the tenant's whole log in the primary key's order to save a sort.
        """
        ids = check_ids(booking_ids, "booking id")
        if not ids:
            return []
        rows = self._all(
            "SELECT seq, doc FROM transitions WHERE tenant_id = %s AND booking_id = ANY(%s::text[])",
            (self._tenant, ids),
        )
        rows.sort(key=lambda row: row[0])
        return [self._transition((row[1],)) for row in rows]

    def append_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        self._writable()
        messages = check_messages(messages)  # read once, every message checked before any is sent
        if not messages:
            return
        rows = [self._outbox_row(message) for message in messages]
        # One statement for all, in the given order (seq). An id that exists (or repeats) inserts nothing; the
        # unique key decides, so a concurrent writer of the same id is caught too (ON CONFLICT waits for it).
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
            # A refused call appends nothing (the port's contract): the rows this statement did insert go again,
            # in this transaction, which stays usable. Their seq numbers stay unused, which orders nothing wrong.
            written = [row[0] for row in inserted]
            self._write("DELETE FROM outbox WHERE tenant_id = %s AND id = ANY(%s::text[])", (self._tenant, written))
            for r in rows:
                if r["id"] not in written:
                    msg = f"outbox message {r['id']!r} exists already"
                    raise StorageError(msg)
                written.remove(r["id"])

    def _outbox_row(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "tenant": self._tenant,
            "id": message.id,
            "sent": message.sent_at is not None,
            "failed": message.failed_at is not None,
            "doc": _dumps_made(outbox_to_dict(message)),
        }

    def _message(self, row: tuple[Any, ...]) -> OutboxMessage:
        try:
            return outbox_from_dict(_document(row[0], "outbox message"))
        except InvalidInputError as exc:
            raise _corrupt("outbox message", exc) from None

    def list_outbox(self, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
        # One constant statement per combination of filters (a predicate behind `%s IS NULL OR` fits no index
        # in a generic plan). The booking filter runs in the server, so only the booking's own documents are
        # sent and decoded; its pending messages (the engine's read on every cancel, reschedule and expiry)
        # come from outbox_pending_by_booking, whose expression this repeats exactly.
        booking_id = check_id_or_none(booking_id, "booking id")
        if booking_id is not None and pending_only:
            rows = self._all(
                """
                SELECT doc FROM outbox
                WHERE tenant_id = %s AND (doc->>'booking_id') = %s AND NOT sent AND NOT failed
                ORDER BY seq
                """,
                (self._tenant, booking_id),
            )
        elif booking_id is not None:
            rows = self._all(
                "SELECT doc FROM outbox WHERE tenant_id = %s AND (doc->>'booking_id') = %s ORDER BY seq",
                (self._tenant, booking_id),
            )
        elif pending_only:
            rows = self._all(
                "SELECT doc FROM outbox WHERE tenant_id = %s AND NOT sent AND NOT failed ORDER BY seq",
                (self._tenant,),
            )
        else:
            rows = self._all("SELECT doc FROM outbox WHERE tenant_id = %s ORDER BY seq", (self._tenant,))
        return [self._message(row) for row in rows]

    def list_due_outbox(self, now: datetime) -> list[OutboxMessage]:
        """
        The pending messages due at or before *now* (`slotengine.ports.DueOutbox`), in the order written.

        The server compares the documents' ``due_at`` texts ("C" order, in which the codec's texts sort as their
        instants) with a bound a second later, so reminders planned weeks ahead are neither sent nor decoded.
        """
        now = to_utc(now, "now")
        rows = self._all(
            """
            SELECT doc FROM outbox
            WHERE tenant_id = %s AND NOT sent AND NOT failed AND (doc->>'due_at') COLLATE "C" <= %s
            ORDER BY seq
            """,
            (self._tenant, due_bound(now)),
        )
        return [m for m in map(self._message, rows) if m.due_at <= now]

    def prune_outbox(self, before: datetime) -> int:
        """Forget the messages done with before *before* (`slotengine.ports.Retention`); return how many."""
        before = to_utc(before, "before")
        self._writable()
        rows = self._all("SELECT doc FROM outbox WHERE tenant_id = %s AND (sent OR failed)", (self._tenant,))
        gone = finished_before(map(self._message, rows), before)
        if gone:
            self._write("DELETE FROM outbox WHERE tenant_id = %s AND id = ANY(%s)", (self._tenant, gone))
        return len(gone)

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records created before *before* (`slotengine.ports.Retention`)."""
        before = to_utc(before, "before")
        return self._write("DELETE FROM idempotency WHERE tenant_id = %s AND created_at < %s", (self._tenant, before))

    def update_outbox(self, message: OutboxMessage) -> None:
        message = check_kind(message, OutboxMessage, "message")
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

    def swap_outbox(self, expected: OutboxMessage, message: OutboxMessage) -> bool:
        expected = check_kind(expected, OutboxMessage, "expected")
        message = check_kind(message, OutboxMessage, "message")
        self._writable()
        row = {**self._outbox_row(message), "expected": _dumps_made(outbox_to_dict(expected))}
        # Under READ COMMITTED a writer that waited for the row re-reads it: after another's swap, doc differs.
        changed = self._write(
            """
            UPDATE outbox SET sent = %(sent)s, failed = %(failed)s, doc = %(doc)s::jsonb
            WHERE tenant_id = %(tenant)s AND id = %(id)s AND doc = %(expected)s::jsonb
            """,
            row,
        )
        if changed == 0 and self._one(_OUTBOX_EXISTS, (self._tenant, message.id)) is None:
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)
        return changed == 1

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        key = check_id(key, "idempotency key")
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
        record = check_kind(record, IdempotencyRecord, "record")
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


_MAX_LOCK_TIMEOUT: Final = timedelta(milliseconds=2**31 - 1)


def _with_timeouts(dsn: str) -> str:
    """
    Return *dsn* with libpq's timeouts where it does not set them.

    Without them libpq waits for ever (or for the kernel's quarter of an hour) on a server that never
    answers, or that a network partition cut off.

    ``connect_timeout``: a new connection; TCP keepalives: a connection waiting for an answer that will not
    come (about a minute); ``tcp_user_timeout`` (libpq 12 and later, where the system has it): data sent
    and never acknowledged.
    """
    try:
        given = conninfo_to_dict(dsn)
        wanted = {key: value for key, value in _TIMEOUTS.items() if key not in given}
        if "keepalives" in given:  # the DSN chose its keepalives: keep them as they are
            wanted = {key: value for key, value in wanted.items() if not key.startswith("keepalives")}
        if psycopg.pq.version() < 120000:  # libpq 12 brought tcp_user_timeout
            wanted.pop("tcp_user_timeout", None)
        return make_conninfo(dsn, **wanted) if wanted else dsn
    except (psycopg.ProgrammingError, UnicodeError, ValueError) as exc:
        # libpq quotes the whole text, password included: its complaint is given without the quotes.
        reason = re.sub(r'"[^"]*"', "...", str(exc).split("\n")[0]) if isinstance(exc, psycopg.Error) else "bad text"
        msg = f"dsn is not a PostgreSQL connection string (key=value pairs) or URI (postgresql://...): {reason}"
        raise InvalidInputError(msg, field="dsn") from None


def _check_lock_timeout(value: object) -> str:
    if not isinstance(value, timedelta) or not timedelta(milliseconds=1) <= value <= _MAX_LOCK_TIMEOUT:
        msg = (
            f"lock_timeout must be a timedelta from 1 ms (0 would mean: wait forever) to "
            f"{_MAX_LOCK_TIMEOUT} (PostgreSQL's limit), got {value!r}"
        )
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
        migrate: Whether opening creates or upgrades the schema (the default). With ``False`` a schema that
            is missing or older than this slotengine's raises `StorageError` and nothing is changed: app
            servers can then leave upgrades to a release step (see docs/explanation/concurrency.md).
        pool_timeout: How long a transaction waits for a pooled connection when all ``max_size`` are busy
            before `ConcurrencyError` (the engine retries it ``max_retries`` times, and a new hold or booking
            first tries its one-statement write, so a call can wait up to ``max_retries + 2`` times as long
            in all). Also how long the check of an idle pooled connection waits for the server's answer.

    A new connection waits at most 10 s for the server to answer (``connect_timeout`` in the DSN overrides
    it), and TCP keepalives end a connection whose server went silent after about a minute (see
    `_with_timeouts`; the DSN's own settings win). A pooled connection that sat idle for a second or more
    is checked before use (one empty query, answered within ``pool_timeout``) and replaced if the server
    closed it or stopped answering meanwhile.
    When no pooled connection comes within ``pool_timeout`` because the server cannot be reached or set up
    (down, refusing, a function of the schema dropped), the call raises `StorageError` saying why, at once,
    rather than a `ConcurrencyError` the engine would retry.

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
        pool_timeout: timedelta = timedelta(seconds=5),
        migrate: bool = True,
    ) -> None:
        given: object = dsn
        if not isinstance(given, str):
            msg = f"dsn must be a connection string, not {type(given).__name__}"
            raise InvalidInputError(msg, field="dsn")
        if not isinstance(pool_timeout, timedelta) or pool_timeout <= timedelta(0):
            msg = f"pool_timeout must be a positive timedelta, got {pool_timeout!r}"
            raise InvalidInputError(msg, field="pool_timeout")
        wanted: object = migrate
        if not isinstance(wanted, bool):
            msg = f"migrate must be True or False, got {migrate!r}"
            raise InvalidInputError(msg, field="migrate")
        self._migrates = migrate
        self._pool_timeout = pool_timeout.total_seconds()
        self._dsn = _with_timeouts(dsn)
        self._schema = _check_schema(schema)
        self._lock_timeout = _check_lock_timeout(lock_timeout)
        self._min_size = _check_size(min_size, "min_size", 0)
        self._max_size = _check_size(max_size, "max_size", max(1, self._min_size))
        self._guard = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._probed: tuple[float, StorageError | None] | None = None  # `_why_no_connection`'s last verdict
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
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                open=True,
                configure=self._configure,
                name=f"slotengine-{self._schema}",
                timeout=self._pool_timeout,
                # psycopg_pool retries a lost connection with a doubling delay (1, 2, 4... s) for 5 minutes: after
                # an outage of a minute it may not try again for another. Giving up sooner hands the reconnection
                # to the next caller's wait, which tries at once.
                reconnect_timeout=_reconnect_timeout(self._pool_timeout),
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
            conn = psycopg.connect(self._dsn, autocommit=True)
            conn.execute(_SESSION)
            conn.autocommit = False
        except _CAUGHT as exc:
            raise _translate(exc) from None
        return conn

    def _configure(self, conn: Connection) -> None:
        """Set up a new pooled connection: this schema first, then `_SESSION` (see the module docstring)."""
        self._set_up(conn)

    def _set_up(self, conn: Connection) -> None:
        conn.autocommit = True  # until a storage transaction's first write (see _Transaction._writable)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        conn.execute(_SESSION)
        # The session's lock timeout is the storage's, so one-statement writes need no SET of their own.
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (self._lock_timeout,))
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        _prepare_reserve(conn)

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
                if version < SCHEMA_VERSION and not self._migrates:
                    msg = (
                        f"schema {self._schema!r} has version {version} and this slotengine needs {SCHEMA_VERSION}; "
                        "it was opened with migrate=False: upgrade it first, opening a PostgresStorage with "
                        "migrate=True once (a release step), with every older slotengine stopped"
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
        conn = self._live_connection(pool)
        try:
            yield conn
        finally:
            try:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()
                if not conn.autocommit:  # the setter is a round of psycopg's machinery even when it changes nothing
                    conn.autocommit = True
            except _CAUGHT:
                conn.close()  # the pool replaces a closed connection
            setattr(conn, _IDLE_SINCE, time.monotonic())  # a mark of ours on psycopg's object
            try:
                pool.putconn(conn)
            except _CAUGHT:  # pragma: no cover - the pool was closed meanwhile
                conn.close()

    def _live_connection(self, pool: ConnectionPool[Connection]) -> Connection:
        """
        Borrow a connection, making sure one that sat idle is still alive (one empty round trip).

        The server, a firewall or a pooler may close a connection while it sits in the pool (an idle timeout, a
        terminated backend, a failover); handing it out would fail the next call for no fault of the caller's.
        Connections used again within a second get only a look at what the server sent meanwhile (no round
        trip): a backend that was terminated (a restart, a failover, ``pg_terminate_backend``) said so.
        """
        deadline = time.monotonic() + self._pool_timeout  # for the whole borrow, checks included
        for _ in range(self._max_size + 1):
            try:
                conn = pool.getconn(timeout=max(deadline - time.monotonic(), _MIN_WAIT))
            except PoolTimeout as exc:
                raise self._why_no_connection(exc) from None
            except _CAUGHT as exc:
                raise _translate(exc) from None
            if time.monotonic() - getattr(conn, _IDLE_SINCE, -_IDLE_CHECK) < _IDLE_CHECK:
                if _not_closed(conn):
                    return conn
            elif _answers(conn, max((deadline - time.monotonic()) / 2, _MIN_WAIT)):
                # Half the time left: one silent connection must leave time for a new one, or the next check.
                return conn
            conn.close()  # dead, or silent: the pool replaces it
            pool.putconn(conn)
            if time.monotonic() >= deadline:
                msg = (
                    f"no pooled connection to PostgreSQL answered within pool_timeout ({self._pool_timeout:g} s); "
                    "the server or the network may be down"
                )
                raise StorageError(msg)
        msg = "every pooled connection to PostgreSQL was found closed; the server may be restarting"
        raise StorageError(msg)

    def _why_no_connection(self, timeout: PoolTimeout) -> StorageError:
        """
        Tell a busy pool (`ConcurrencyError`, worth a retry) from a server it cannot use (`StorageError`).

        psycopg_pool only says that no connection came in time, and only logs why its own attempts failed. One
        direct connection, set up as the pool's are, says why (refused, unknown database, a function dropped);
        its verdict serves every caller for `_PROBE_EVERY` seconds, so a busy pool costs at most one
        connection a second. A server at its connection limit, or still starting, is worth a retry.
        """
        now = time.monotonic()
        with self._guard:
            probed = self._probed
        if probed is None or now - probed[0] >= _PROBE_EVERY:
            probed = (now, self._probe())
            with self._guard:
                self._probed = probed
        if probed[1] is not None:
            return probed[1]
        msg = f"no PostgreSQL connection became free in time ({timeout}); retry"
        return ConcurrencyError(msg)

    def _probe(self) -> StorageError | None:
        """Open and set up one connection outside the pool; return what stops it, or None when it works."""
        wait = _probe_timeout(self._pool_timeout)
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=wait) as probe:
                self._set_up(probe)
        except _CAUGHT as exc:
            reason: SlotEngineError = _translate(exc)
        except StorageError as error:
            reason = error
        else:
            return None
        text = str(reason)
        if reason.details.get("sqlstate") in _TRANSIENT_CONNECT or any(words in text for words in _TRANSIENT_WORDS):
            msg = f"PostgreSQL takes no new connection for now ({reason}); retry"
            return ConcurrencyError(msg, **reason.details)
        msg = f"PostgreSQL cannot be used: {reason}"
        return StorageError(msg, **reason.details)

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
                # The pooled connection's session already has this lock timeout (`_configure`).
                tx = _Transaction(tenant, conn, self._lock_timeout, timeout_set=True)
                try:
                    yield tx
                finally:
                    tx.state = "over"
        finally:
            self._local.busy = False

    def reserve_and_record(
        self,
        tenant: str,
        booking: Booking,
        *,
        now: datetime,
        transitions: Sequence[TransitionRecord],
        outbox: Sequence[OutboxMessage],
        catalogue_version: int,
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        """
        A booking's whole write as one statement (`slotengine.ports.ReserveAndRecord`).

        ``slotengine_reserve`` runs on a pooled connection outside any explicit transaction, so the one
        statement is the whole transaction: the lock timeout, the advisory locks, the catalogue version, the
        capacity check, the writes (with the idempotency record, if any) and the commit take one round trip.

        Raises:
            InvalidInputError, CatalogueChangedError, ConflictError, NotFoundError, ConcurrencyError: see the port;
                nothing was written.
            StorageError: the storage is closed or failed, or a transaction of it is open in this thread.
        """
        check_id(tenant, "tenant")
        # The arguments before anything else, as `reserve_and_record_in` checks them for the other adapters.
        given = check_reserve_and_record(
            booking,
            now=now,
            transitions=transitions,
            outbox=outbox,
            catalogue_version=catalogue_version,
            idempotency=idempotency,
        )
        if getattr(self._local, "busy", False):
            msg = "a transaction of this storage is already open in this thread; transactions do not nest"
            raise StorageError(msg)
        request = _reserve_request(
            given.booking,
            now=given.now,
            locks=_locks_for(tenant, given.booking.resource_ids),
            catalogue=given.catalogue_version,
            transitions=given.transitions,
            outbox=given.outbox,
            idempotency=given.idempotency,
        )
        with self._pooled() as conn:
            try:
                outcome = _reserve_at_once(conn, tenant, request)
            except ConcurrencyError as exc:
                if given.idempotency is None or exc.details.get("sqlstate") != _KEY_TAKEN:
                    raise
                msg = f"idempotency key {given.idempotency.key!r} was used meanwhile"  # put_idempotency's words
                raise ConcurrencyError(msg, sqlstate=_KEY_TAKEN) from None
        _reserved(outcome, given.booking, with_loads=True)

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
        Close the pool and its idle connections; new transactions raise `StorageError`.

        A transaction open in another thread ends as it would have, and its connection is closed then.

        The storage cannot be used afterwards; closing twice is harmless. ``with PostgresStorage(...) as s:``
        closes it at the end of the block.

        Raises:
            StorageError: called inside one of this storage's transactions in this thread (as SQLite: that
                transaction goes on; close the storage after its block).
        """
        if getattr(self._local, "busy", False):
            msg = "cannot close the storage inside one of its transactions"
            raise StorageError(msg)
        with self._guard:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            pool.close()

    def __enter__(self) -> Self:
        with self._guard:
            self._check_open()
        return self

    def __exit__(self, *_: object) -> None:
        """Close the storage at the end of a ``with`` block (see `close`)."""
        self.close()
