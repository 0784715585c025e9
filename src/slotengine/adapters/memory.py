"""
`MemoryStorage`: the reference storage, in a Python process's memory.

It is what the other adapters are compared against, so it is written to be obviously right rather than
fast: one lock serializes every transaction of the process, a transaction reads through its own pending
changes, and `commit` applies them at once. It keeps nothing across processes or restarts.

It refuses what the SQL adapters refuse, the same way: every argument is checked with the shared checks of
`slotengine.ports` before anything is read or written (a value of the wrong kind is refused, never kept), a
transaction opened inside another of the same storage in the same thread (transactions do not nest), any use of
a transaction after its ``with`` block, any write (locks included) after `commit`, and `MemoryStorage.close`
inside one of its transactions.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Self

import attrs

from slotengine._time import to_utc
from slotengine.availability import Load
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.capacity import check_capacity
from slotengine.errors import ConcurrencyError, NotFoundError, StorageError
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
    finished_before,
    reserve_and_record_in,
    resource_ids_to_lock,
)

__all__ = ["MemoryStorage"]

_CATALOGUE_VERSIONS = itertools.count(1)
"""Catalogue versions for every tenant of every `MemoryStorage` of the process: never handed out twice."""


@attrs.define
class _Tenant:
    business: Business | None = None
    resources: dict[str, Resource] = attrs.Factory(dict)
    services: dict[str, Service] = attrs.Factory(dict)
    bookings: dict[str, Booking] = attrs.Factory(dict)
    transitions: list[TransitionRecord] = attrs.Factory(list)
    outbox: dict[str, OutboxMessage] = attrs.Factory(dict)
    idempotency: dict[str, IdempotencyRecord] = attrs.Factory(dict)
    documents: dict[tuple[str, str], str] = attrs.Factory(dict)
    catalogue_version: int = 0

    def copy(self) -> _Tenant:
        return _Tenant(
            self.business,
            dict(self.resources),
            dict(self.services),
            dict(self.bookings),
            list(self.transitions),
            dict(self.outbox),
            dict(self.idempotency),
            dict(self.documents),
            self.catalogue_version,
        )


class _Transaction:
    """A unit of work on a private copy of one tenant's data, applied whole on commit."""

    def __init__(self, tenant: str, data: _Tenant, publish: Callable[[str, _Tenant], None]) -> None:
        self._tenant = tenant
        self._data = data
        self._publish = publish
        self.state = "open"  # open -> committed | over, as in the SQL adapters

    @property
    def tenant(self) -> str:
        return self._tenant

    def _readable(self) -> _Tenant:
        if self.state == "over":
            # Left without commit, its private copy holds writes that were rolled back: nothing true to read.
            msg = "this transaction is over; open a new one"
            raise StorageError(msg)
        return self._data

    def _writable(self) -> _Tenant:
        data = self._readable()
        if self.state != "open":
            msg = "this transaction was already committed; open a new one"
            raise StorageError(msg)
        return data

    def commit(self) -> None:
        data = self._writable()
        self.state = "committed"
        # Durable at once, as a SQL COMMIT is: an exception after commit() does not undo it.
        self._publish(self._tenant, data.copy())

    # --- business and catalogue ---------------------------------------------------------------------------

    def get_business(self) -> Business:
        business = self._readable().business
        if business is None:
            msg = f"business {self._tenant!r} is not set up"
            raise NotFoundError(msg, tenant=self._tenant)
        return business

    def put_business(self, business: Business) -> None:
        business = check_kind(business, Business, "business")
        data = self._writable()
        data.business = business
        data.catalogue_version = next(_CATALOGUE_VERSIONS)

    def catalogue_version(self) -> int:
        """The catalogue's version (`slotengine.ports.CatalogueVersions`): drawn anew by every catalogue write."""
        return self._readable().catalogue_version

    def get_resource(self, resource_id: str) -> Resource:
        resource_id = check_id(resource_id, "resource id")
        try:
            return self._readable().resources[resource_id]
        except KeyError:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id) from None

    def list_resources(self) -> list[Resource]:
        return list(self._readable().resources.values())

    def put_resource(self, resource: Resource) -> None:
        resource = check_kind(resource, Resource, "resource")
        data = self._writable()
        data.resources[resource.id] = resource
        data.catalogue_version = next(_CATALOGUE_VERSIONS)

    def get_service(self, service_id: str) -> Service:
        service_id = check_id(service_id, "service id")
        try:
            return self._readable().services[service_id]
        except KeyError:
            msg = f"no service {service_id!r}"
            raise NotFoundError(msg, service_id=service_id) from None

    def list_services(self) -> list[Service]:
        return list(self._readable().services.values())

    def put_service(self, service: Service) -> None:
        service = check_kind(service, Service, "service")
        data = self._writable()
        data.services[service.id] = service
        data.catalogue_version = next(_CATALOGUE_VERSIONS)

    # --- bookings --------------------------------------------------------------------------------------------

    def lock_resources(self, resource_ids: Collection[str]) -> None:
        # The storage-wide lock, held for the whole transaction, already covers every resource. What is left
        # of the port's sorted order is the refusal: the ids are checked in that order, so a missing one is
        # reported as the SQL adapters report it (the smallest, in code point order). After commit the
        # locks are gone, so a lock then is refused, as a write.
        rids = resource_ids_to_lock(resource_ids)
        data = self._writable()
        for rid in rids:
            if rid not in data.resources:
                msg = f"no resource {rid!r}"
                raise NotFoundError(msg, resource_id=rid)

    def loads(self, resource_ids: Collection[str], window: Interval) -> list[Load]:
        wanted = set(check_ids(resource_ids, "resource id"))
        window = check_kind(window, Interval, "window")
        return [
            load
            for booking in self._readable().bookings.values()
            if booking.status in LIVE_STATUSES
            for load in booking.loads()
            if load.resource_id in wanted and load.blocked.overlaps(window)
        ]

    def reserve(self, booking: Booking, *, now: datetime, exclude: Collection[str] = ()) -> None:
        data = self._writable()
        # Every argument first, as every adapter checks them: the booking, its blocked time (buffers reaching
        # outside the accepted range raise OutOfRangeError), now, exclude; only then the resources.
        booking, window, now, excluded = check_reserve(booking, now, exclude)
        # In sorted order, so that of several missing resources the smallest is named, as by the SQL adapters.
        resources = {rid: self.get_resource(rid) for rid in sorted(set(booking.resource_ids))}
        skip = {booking.id, *excluded}
        nearby = [ld for ld in self.loads(list(resources), window) if ld.booking_id not in skip]
        check_capacity(booking, resources, nearby, now=now)
        data.bookings[booking.id] = booking

    def get_booking(self, booking_id: str) -> Booking:
        booking_id = check_id(booking_id, "booking id")
        try:
            return self._readable().bookings[booking_id]
        except KeyError:
            msg = f"no booking {booking_id!r}"
            raise NotFoundError(msg, booking_id=booking_id) from None

    def find_bookings(self, query: BookingQuery) -> list[Booking]:
        query = check_kind(query, BookingQuery, "query")
        found = [b for b in self._readable().bookings.values() if query.matches(b)]
        return sorted(found, key=lambda b: (b.start, b.id))

    def update_booking(self, booking: Booking, *, expected_version: int) -> None:
        data = self._writable()
        booking = check_kind(booking, Booking, "booking")
        expected_version = check_version(expected_version, "expected_version")
        stored = self.get_booking(booking.id)
        check_update(stored, booking, expected_version)
        data.bookings[booking.id] = booking

    def due_holds(self, now: datetime) -> list[Booking]:
        now = check_instant(now)
        due = [
            b
            for b in self._readable().bookings.values()
            if b.status is BookingStatus.PRE_BOOKING and b.hold_until is not None and b.hold_until <= now
        ]
        return sorted(due, key=lambda b: (b.hold_until, b.id))

    # --- log, outbox, idempotency --------------------------------------------------------------------------

    def append_transitions(self, records: Sequence[TransitionRecord]) -> None:
        data = self._writable()
        data.transitions.extend(check_records(records))  # every record checked before any is kept

    def list_transitions(self, booking_id: str | None = None) -> list[TransitionRecord]:
        booking_id = check_id_or_none(booking_id, "booking id")
        return [r for r in self._readable().transitions if booking_id is None or r.booking_id == booking_id]

    def list_transitions_of(self, booking_ids: Collection[str]) -> list[TransitionRecord]:
        """The log of the bookings named (`slotengine.ports.TransitionsOf`), in the order written."""
        wanted = frozenset(check_ids(booking_ids, "booking id"))
        return [r for r in self._readable().transitions if r.booking_id in wanted]

    def append_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        data = self._writable()
        messages = check_messages(messages)  # read once: a generator is read to the end here, not twice
        # Every id is checked before any is written: a refused call appends nothing (the port's contract).
        ids: set[str] = set()
        for message in messages:
            if message.id in data.outbox or message.id in ids:
                msg = f"outbox message {message.id!r} exists already"
                raise StorageError(msg)
            ids.add(message.id)
        for message in messages:
            data.outbox[message.id] = message

    def list_outbox(self, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
        booking_id = check_id_or_none(booking_id, "booking id")
        messages = list(self._readable().outbox.values())
        if booking_id is not None:
            messages = [m for m in messages if m.booking_id == booking_id]
        if pending_only:
            messages = [m for m in messages if m.sent_at is None and m.failed_at is None]
        return messages

    def list_due_outbox(self, now: datetime) -> list[OutboxMessage]:
        """The pending messages due at or before *now* (`slotengine.ports.DueOutbox`), in the order written."""
        now = to_utc(now, "now")
        return [m for m in self.list_outbox(pending_only=True) if m.due_at <= now]

    def update_outbox(self, message: OutboxMessage) -> None:
        message = check_kind(message, OutboxMessage, "message")
        data = self._writable()
        if message.id not in data.outbox:
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)
        data.outbox[message.id] = message

    def swap_outbox(self, expected: OutboxMessage, message: OutboxMessage) -> bool:
        expected = check_kind(expected, OutboxMessage, "expected")
        message = check_kind(message, OutboxMessage, "message")
        data = self._writable()
        if message.id not in data.outbox:
            msg = f"no outbox message {message.id!r}"
            raise NotFoundError(msg)
        if data.outbox[message.id] != expected:
            return False
        data.outbox[message.id] = message
        return True

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        key = check_id(key, "idempotency key")
        return self._readable().idempotency.get(key)

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        record = check_kind(record, IdempotencyRecord, "record")
        data = self._writable()
        if record.key in data.idempotency:
            msg = f"idempotency key {record.key!r} was used meanwhile"
            raise ConcurrencyError(msg)
        data.idempotency[record.key] = record

    def prune_outbox(self, before: datetime) -> int:
        """Forget the messages done with before *before* (`slotengine.ports.Retention`); return how many."""
        before = to_utc(before, "before")
        data = self._writable()
        gone = finished_before(data.outbox.values(), before)
        for message_id in gone:
            del data.outbox[message_id]
        return len(gone)

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records created before *before* (`slotengine.ports.Retention`)."""
        before = to_utc(before, "before")
        data = self._writable()
        gone = [key for key, record in data.idempotency.items() if record.created_at < before]
        for key in gone:
            del data.idempotency[key]
        return len(gone)

    # --- documents -----------------------------------------------------------------------------------------

    def get_document(self, kind: str, key: str) -> str | None:
        kind, key, _ = check_document(kind, key)
        return self._readable().documents.get((kind, key))

    def put_document(self, kind: str, key: str, body: str) -> None:
        kind, key, body = check_document(kind, key, body)
        self._writable().documents[kind, key] = body

    def list_documents(self, kind: str) -> list[tuple[str, str]]:
        kind, _, _ = check_document(kind, "-")
        return sorted((k, body) for (c, k), body in self._readable().documents.items() if c == kind)


class MemoryStorage:
    """
    Storage in this process's memory: the reference implementation of the `Storage` port.

    Every transaction holds one process-wide lock from start to end, so transactions run one at a time
    (a transaction in another thread waits for it); a transaction works on a private copy of its tenant's
    data and publishes it when `commit` is called. Correct under any number of threads; nothing survives the
    process.
    """

    def __init__(self) -> None:
        # Re-entrant, so that a subclass may hold it around `transaction` (a test double that loads its data under
        # it); `close` inside a transaction and a nested transaction are refused by `_local.busy` before the lock.
        self._lock = threading.RLock()
        self._local = threading.local()
        self._tenants: dict[str, _Tenant] = {}
        self._closed = False

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[_Transaction]:
        """
        Open a unit of work in *tenant*'s data (see `slotengine.ports.Storage.transaction`).

        It waits for a transaction open in another thread to end. The transaction refuses any use once its
        ``with`` block has ended.

        Raises:
            StorageError: the storage is closed, or a transaction of this storage is already open in this
                thread (they do not nest: the inner one's commit would be lost under the outer one's).
        """
        check_id(tenant, "tenant")
        if getattr(self._local, "busy", False):
            msg = "a transaction of this storage is already open in this thread; transactions do not nest"
            raise StorageError(msg)
        with self._lock:
            if self._closed:
                msg = "this storage is closed"
                raise StorageError(msg)
            tx = _Transaction(tenant, self._tenants.get(tenant, _Tenant()).copy(), self._tenants.__setitem__)
            self._local.busy = True
            try:
                yield tx
            finally:
                tx.state = "over"
                self._local.busy = False

    reserve_and_record = reserve_and_record_in
    """A booking's whole write in one transaction (`slotengine.ports.ReserveAndRecord`)."""

    def close(self) -> None:
        """
        Forget everything; the storage cannot be used afterwards (closing twice is harmless).

        Waits for a transaction open in another thread to end.

        Raises:
            StorageError: called inside one of this storage's transactions in this thread (as SQLite: that
                transaction's commit would otherwise publish its tenant into the closed storage).
        """
        if getattr(self._local, "busy", False):
            msg = "cannot close the storage inside one of its transactions"
            raise StorageError(msg)
        with self._lock:
            self._closed = True
            self._tenants.clear()

    def __enter__(self) -> Self:
        if self._closed:
            msg = "this storage is closed"
            raise StorageError(msg)
        return self

    def __exit__(self, *_: object) -> None:
        """Close the storage at the end of a ``with`` block (see `close`)."""
        self.close()

    def __repr__(self) -> str:
        return f"<MemoryStorage(tenants={len(self._tenants)})>"
