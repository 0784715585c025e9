"""
The ports: what the engine needs from the outside world, as `typing.Protocol` contracts.

Adapters implement them without importing or subclassing anything from here. Each method's docstring is a
contract: what it returns, what it raises, and what is true about storage when it raises. The engine is the
only caller; it opens one transaction per use case and commits it explicitly.
"""

from __future__ import annotations

import reprlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Final, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

import attrs

from slotengine._checks import tuple_of
from slotengine._time import MIN_INSTANT, to_utc
from slotengine.availability import Load
from slotengine.booking import Booking, Source
from slotengine.business import Business
from slotengine.errors import CatalogueChangedError, ConcurrencyError, InvalidInputError, NotFoundError
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, BookingStatus, TransitionRecord, status_of
from slotengine.model import Resource, Service, check_id, check_text
from slotengine.outbox import OutboxMessage

__all__ = [
    "MAX_DOCUMENT_LENGTH",
    "BookingQuery",
    "CatalogueVersions",
    "Clock",
    "DueOutbox",
    "IdempotencyRecord",
    "Notifier",
    "OutboxClaims",
    "ReserveAndRecord",
    "ReserveAndRecordArguments",
    "Retention",
    "Storage",
    "StorageTransaction",
    "TransitionsOf",
    "check_document",
    "check_id_or_none",
    "check_ids",
    "check_instant",
    "check_kind",
    "check_messages",
    "check_records",
    "check_reserve",
    "check_reserve_and_record",
    "check_update",
    "check_version",
    "created_bounds",
    "due_bound",
    "excluded_ids",
    "finished_at",
    "finished_before",
    "reserve_and_record_in",
    "resource_ids_to_lock",
]

MAX_DOCUMENT_LENGTH: Final = 1_000_000
"""The longest document body (in characters) every storage keeps."""

_T = TypeVar("_T")

_SHORT: Final = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80


def _shown(value: object) -> str:
    """*value*'s repr for a message, cut to about 80 characters (a whole number too long to print, by its size)."""
    try:
        return _SHORT.repr(value)
    except ValueError:  # Python refuses to print an int of more than 4,300 digits
        return f"a whole number of {value.bit_length():,} bits" if isinstance(value, int) else "(too long to print)"


_VERSIONS: Final = range(-(2**63), 2**63)
"""The version numbers a storage hands out or compares (64-bit, as SQLite and PostgreSQL keep them)."""


def check_document(kind: object, key: object, body: object = "") -> tuple[str, str, str]:
    """
    Return *kind*, *key* and *body* if a storage may keep them as a document (what every adapter checks).

    Raises:
        InvalidInputError: an empty or over-long kind or key, a body longer than `MAX_DOCUMENT_LENGTH`, or
            text no storage keeps the same way (NUL, lone surrogates).
    """
    return (
        check_id(kind, "document kind"),
        check_id(key, "document key"),
        check_text(body, "document body", max_length=MAX_DOCUMENT_LENGTH, allow_empty=True),
    )


def _takes_time_until(booking: Booking) -> datetime | None:
    """
    Until when *booking* takes its time: never (`MIN_INSTANT`, not live), a hold until it lapses, or for good (None).

    A pre-booking without ``hold_until`` takes its time for good, as `Booking.takes_time` reads it.
    """
    if booking.status not in LIVE_STATUSES:
        return MIN_INSTANT
    if booking.status is BookingStatus.PRE_BOOKING:
        return booking.hold_until
    return None


def check_update(stored: Booking, booking: Booking, expected_version: int) -> None:
    """
    Refuse an `StorageTransaction.update_booking` that every adapter must refuse, before it writes anything.

    Raises:
        ConcurrencyError: *stored* is no longer at *expected_version* (someone changed it meanwhile).
        InvalidInputError: the update would take other time (start, end, buffers or resources), or take its
            time again or for longer (a cancelled or expired booking made live, a hold made firm or held
            longer): only `StorageTransaction.reserve` may do that, under the capacity check (the time may be
            another booking's now, since a hold counts only until it lapses).
    """
    if stored.version != expected_version:
        msg = f"booking {booking.id!r} changed meanwhile (version {stored.version}, expected {expected_version})"
        raise ConcurrencyError(msg, booking_id=booking.id)
    if not stored.takes_same_time_as(booking):
        msg = "update_booking cannot move a booking, change its buffers or its resources; use reserve"
        raise InvalidInputError(msg, booking_id=booking.id)
    before, after = _takes_time_until(stored), _takes_time_until(booking)
    if before is not None and (after is None or after > before):
        msg = (
            f"update_booking cannot make booking {booking.id!r} take its time again or for longer "
            f"({stored.status.value} to {booking.status.value}); its time may be another booking's now: use "
            "reserve, which checks capacity"
        )
        raise InvalidInputError(msg, booking_id=booking.id)


@runtime_checkable
class Clock(Protocol):
    """Where the engine gets the time; the core never reads a clock itself."""

    def now(self) -> datetime:
        """
        Return the current instant as an aware datetime.

        The engine reads it once per use case and passes it down, so one call sees one instant.
        """
        ...


@runtime_checkable
class Notifier(Protocol):
    """Where outbox messages go: e-mail, a webhook, a log, a test recorder."""

    def send(self, message: OutboxMessage) -> None:
        """
        Deliver *message*, or raise.

        Any exception means "not delivered, try again later"; the relay records the attempt and retries
        with backoff. A notifier may be called twice with the same ``dedupe_key`` (a crash between sending
        and recording); a channel that can deduplicate should use that key.
        """
        ...


def _key(value: object) -> str:
    return check_id(value, "idempotency key")


def _hash(value: object) -> str:
    return check_id(value, "request hash")


def _record_booking(value: object) -> str:
    return check_id(value, "booking id")


def _result(value: object) -> str:
    return check_text(value, "result", max_length=1_000_000, allow_empty=True)


def _created(value: object) -> datetime:
    return to_utc(value, "created_at")


@attrs.frozen
class IdempotencyRecord:
    """The first result of a call made with an idempotency key, and a hash of the request it answered."""

    key: str = attrs.field(converter=_key)
    request_hash: str = attrs.field(converter=_hash)
    booking_id: str = attrs.field(converter=_record_booking)
    result: str = attrs.field(converter=_result)
    created_at: datetime = attrs.field(converter=_created)


def _query_resource(value: object) -> str | None:
    return check_id_or_none(value, "resource_id")


def _query_customer(value: object) -> str | None:
    return check_id_or_none(value, "customer_id")


def _query_source(value: object) -> str | None:
    return check_id_or_none(str(value) if isinstance(value, Source) else value, "source")


def _query_external_ref(value: object) -> str | None:
    return check_id_or_none(value, "external_ref")


def _query_service(value: object) -> str | None:
    return check_id_or_none(value, "service_id")


def _query_statuses(value: object) -> frozenset[BookingStatus] | None:
    """None, or the statuses of *value*: one status (or its text), or a collection of them."""
    if value is None:
        return None
    if isinstance(value, str):  # a BookingStatus is a str too
        return frozenset({status_of(value, "statuses")})
    if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
        msg = f"statuses must be booking statuses (or their texts), not {type(value).__name__} {_shown(value)}"
        raise InvalidInputError(msg, field="statuses")
    return frozenset(status_of(status, "statuses") for status in value)


def _interval_or_none(value: object, field: str) -> Interval | None:
    return None if value is None else check_kind(value, Interval, field)


def _query_period(value: object) -> Interval | None:
    return _interval_or_none(value, "period")


def _query_created(value: object) -> Interval | None:
    return _interval_or_none(value, "created")


def _query_blocked(value: object) -> Interval | None:
    return _interval_or_none(value, "blocked")


@attrs.frozen
class BookingQuery:
    """
    Which bookings to list: every given field must match (None means any).

    ``period`` keeps bookings whose interval overlaps it; ``blocked`` those whose time with its buffers
    overlaps it (what a resource gave them, as utilization with buffers counts); ``created`` those whose
    ``created_at`` lies in it (a cohort, as the conversion funnel reads).

    Every field is checked when the query is made, so that every adapter reads it alike: the ids are None or
    ids (`slotengine.model.check_id`), ``statuses`` None or statuses (members or their texts, ``"paid"``; one
    status alone is a set of one) kept as a frozenset, and the periods None or an `Interval`.

    Raises:
        InvalidInputError: a field holds something else.
    """

    resource_id: str | None = attrs.field(default=None, converter=_query_resource)
    customer_id: str | None = attrs.field(default=None, converter=_query_customer)
    statuses: frozenset[BookingStatus] | None = attrs.field(default=None, converter=_query_statuses)
    period: Interval | None = attrs.field(default=None, converter=_query_period)
    source: str | None = attrs.field(default=None, converter=_query_source)
    external_ref: str | None = attrs.field(default=None, converter=_query_external_ref)
    service_id: str | None = attrs.field(default=None, converter=_query_service)
    created: Interval | None = attrs.field(default=None, converter=_query_created)
    blocked: Interval | None = attrs.field(default=None, converter=_query_blocked)

    def matches(self, booking: Booking) -> bool:  # noqa: PLR0911 - one early exit per criterion
        """Return whether *booking* satisfies this query (the reference semantics every adapter follows)."""
        if self.resource_id is not None and self.resource_id not in booking.resource_ids:
            return False
        if self.customer_id is not None and booking.customer_id != self.customer_id:
            return False
        if self.statuses is not None and booking.status not in self.statuses:
            return False
        if self.period is not None and not booking.interval.overlaps(self.period):
            return False
        if self.source is not None and booking.source != self.source:
            return False
        if self.external_ref is not None and booking.external_ref != self.external_ref:
            return False
        if self.created is not None and not self.created.start <= booking.created_at < self.created.end:
            return False
        blocked = self.blocked
        if blocked is not None and not (
            booking.start - booking.buffer_before < blocked.end and blocked.start < booking.end + booking.buffer_after
        ):
            return False
        return self.service_id is None or booking.service_id == self.service_id


def created_bounds(created: Interval) -> tuple[str, str]:
    """
    Text bounds around *created* for a storage that compares the codec's ``created_at`` texts (ISO 8601, UTC).

    Those texts sort as their instants do; the bounds are a second wider on each side all the same, so a filter
    on them never misses a booking, and `BookingQuery.matches` makes the exact cut.
    """
    second = timedelta(seconds=1)
    return (created.start - second).isoformat(), (created.end + second).isoformat()


def due_bound(now: datetime) -> str:
    """
    A text bound for a storage that compares the codec's ``due_at`` texts (ISO 8601, UTC) with *now*.

    Those texts sort as their instants do; the bound is a second later all the same, so a filter ``due_at <=
    bound`` never misses a message due, and the adapter makes the exact cut on the decoded messages.
    """
    return (now + timedelta(seconds=1)).isoformat()


def resource_ids_to_lock(resource_ids: Collection[str]) -> list[str]:
    """
    The distinct ids of `StorageTransaction.lock_resources`, sorted; read once, so a generator works.

    An id that is not text names no resource: `NotFoundError`, as for an id no resource has. Text that is no id
    (empty, too long, with a NUL or a lone surrogate: `slotengine.model.check_id`) is an `InvalidInputError`,
    before any resource is looked for.
    """
    given: object = resource_ids
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        msg = f"resource ids are a collection of ids, not {type(given).__name__} {_shown(given)}"
        raise InvalidInputError(msg, field="resource_ids")
    ids = tuple(given)
    for rid in ids:
        if not isinstance(rid, str):
            msg = f"no resource {_shown(rid)}"
            raise NotFoundError(msg, resource_id=rid)
        check_id(rid, "resource id")
    return sorted(set(cast("tuple[str, ...]", ids)))


def excluded_ids(exclude: object) -> list[str]:
    """The booking ids a `StorageTransaction.reserve` leaves out of its check, sorted; anything else is refused."""
    given: object = exclude
    if type(given) is tuple and not given:  # nearly every call: nothing excluded
        return []
    ids = tuple(given) if isinstance(given, Iterable) and not isinstance(given, str) else None
    if ids is None or not all(isinstance(b, str) for b in ids):
        msg = f"exclude must be a collection of booking ids (str), got {_shown(given)}"
        raise InvalidInputError(msg, field="exclude")
    return sorted(set(cast("tuple[str, ...]", ids)))


def check_kind(value: object, kind: type[_T], field: str) -> _T:
    """
    Return *value* if it is a *kind*: the value a port method takes (a `Booking`, a `Resource`...).

    Every adapter checks it before it writes or reads anything, so that a wrong value is refused the same way
    everywhere, rather than stored by one adapter and failing inside another with an `AttributeError`.

    Raises:
        InvalidInputError: *value* is not a *kind*.
    """
    if not isinstance(value, kind):
        article = "an" if kind.__name__[0] in "AEIOU" else "a"
        msg = f"{field} must be {article} {kind.__name__}, not {type(value).__name__} {_shown(value)}"
        raise InvalidInputError(msg, field=field)
    return value


def check_version(value: object, field: str) -> int:
    """
    Return *value* if it is a version number: an `int` (not a `bool`, a float or a text) of 64 bits.

    Raises:
        InvalidInputError: anything else (a text ``"1"`` is not the version 1: comparing it would report a
            concurrent change that never happened, which the engine retries for nothing).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value not in _VERSIONS:
        msg = f"{field} must be a whole number (an int of 64 bits), not {type(value).__name__} {_shown(value)}"
        raise InvalidInputError(msg, field=field)
    return value


def check_instant(value: object, field: str = "now") -> datetime:
    """
    Return *value* in UTC if it is an aware datetime in the accepted range: a ``now`` or another instant a port takes.

    Raises:
        NaiveDatetimeError: *value* has no time zone (a storage would read it in the session's or host's zone).
        InvalidInputError: *value* is not a datetime (None, text, a date), or lies outside the accepted range.
    """
    return to_utc(value, field)


def check_id_or_none(value: object, field: str) -> str | None:
    """Return *value* if it is None or an id (`slotengine.model.check_id`); anything else is an `InvalidInputError`."""
    return None if value is None else check_id(value, field)


def check_ids(values: object, field: str) -> list[str]:
    """
    The distinct ids of *values*, sorted (code point order): a collection of ids, read once (a generator works).

    *field* names one of them (``"booking id"``); the collection is named in the plural.

    Raises:
        InvalidInputError: *values* is one text (its letters are not ids) or no collection, or holds something that
            is not an id (`slotengine.model.check_id`).
    """
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        msg = f"{field}s must be a collection of ids, not {type(values).__name__} {_shown(values)}"
        raise InvalidInputError(msg, field=f"{field}s")
    return sorted({check_id(value, field) for value in values})


def check_records(records: object) -> tuple[TransitionRecord, ...]:
    """
    The records of `StorageTransaction.append_transitions`, read once (a generator works), every one checked.

    Raises:
        InvalidInputError: *records* is no collection, or holds something that is not a `TransitionRecord`.
    """
    return tuple_of(records, TransitionRecord, "records", label="transition records")


def check_messages(messages: object) -> tuple[OutboxMessage, ...]:
    """
    The messages of `StorageTransaction.append_outbox`, read once (a generator works), every one checked.

    Raises:
        InvalidInputError: *messages* is no collection, or holds something that is not an `OutboxMessage`.
    """
    return tuple_of(messages, OutboxMessage, "messages", label="outbox messages")


def check_reserve(booking: object, now: object, exclude: object = ()) -> tuple[Booking, Interval, datetime, list[str]]:
    """
    Check the arguments of `StorageTransaction.reserve` before anything is read or written, as every adapter does.

    Returns the booking, the time it blocks (its interval widened by its buffers), *now* in UTC and the ids
    *exclude* names (sorted). In this order, so that every adapter names the same fault first: the booking, its
    blocked time, *now*, *exclude*; a resource that does not exist is looked for only after all of them.

    Raises:
        InvalidInputError: *booking* is not a `Booking`, *now* is not an aware datetime (`NaiveDatetimeError`
            if it has no time zone), or *exclude* is not a collection of booking ids.
        OutOfRangeError: the booking's buffers reach outside the range of instants slotengine accepts.
    """
    checked = check_kind(booking, Booking, "booking")
    blocked = Interval(checked.start - checked.buffer_before, checked.end + checked.buffer_after)
    return checked, blocked, check_instant(now), excluded_ids(exclude)


class ReserveAndRecordArguments(NamedTuple):
    """The arguments of `ReserveAndRecord.reserve_and_record`, checked (`check_reserve_and_record`)."""

    booking: Booking
    now: datetime
    transitions: tuple[TransitionRecord, ...]
    outbox: tuple[OutboxMessage, ...]
    catalogue_version: int
    idempotency: IdempotencyRecord | None


def check_reserve_and_record(
    booking: object,
    *,
    now: object,
    transitions: object,
    outbox: object,
    catalogue_version: object,
    idempotency: object = None,
) -> ReserveAndRecordArguments:
    """
    Check the arguments of `ReserveAndRecord.reserve_and_record` before anything is read or written.

    The records and messages are read once (generators work) and returned as tuples.

    Raises:
        InvalidInputError: as `check_reserve`; or *transitions*, *outbox* or *idempotency* hold other values;
            or *catalogue_version* is not a version number (`check_version`).
        OutOfRangeError: as `check_reserve`.
    """
    checked, _blocked, utc, _ = check_reserve(booking, now)
    return ReserveAndRecordArguments(
        checked,
        utc,
        check_records(transitions),
        check_messages(outbox),
        check_version(catalogue_version, "catalogue_version"),
        None if idempotency is None else check_kind(idempotency, IdempotencyRecord, "idempotency"),
    )


def finished_at(message: OutboxMessage) -> datetime | None:
    """When *message* was done with (sent, or given up or withdrawn), the later if both; None while pending."""
    done = [at for at in (message.sent_at, message.failed_at) if at is not None]
    return max(done) if done else None


def finished_before(messages: Iterable[OutboxMessage], before: datetime) -> list[str]:
    """The ids of *messages* done with before *before* (`Retention.prune_outbox` deletes those), in order."""
    return [m.id for m in messages if (done := finished_at(m)) is not None and done < before]


class StorageTransaction(Protocol):
    """
    One unit of work in one tenant's data. Nothing is visible to others until `commit`.

    Every read and write is scoped to the transaction's tenant: ids of another tenant behave exactly like
    ids that do not exist. Leaving the transaction's ``with`` block without calling `commit` rolls back.
    Once the block has ended, committed or not, every method raises `StorageError`; after `commit`, every write
    (`lock_resources` included) does.

    Every method checks its arguments before it reads or writes anything, with the shared checks of this module
    (`check_kind`, `check_version`, `check_ids`, `check_instant`, `check_reserve`, `check_records`,
    `check_messages`, ids with `slotengine.model.check_id`): a value of the wrong kind, an id no storage
    keeps, one text where a collection of ids is expected, or an instant without a time zone is an
    `InvalidInputError`, whatever else is wrong with the call, and changes nothing.
    """

    @property
    def tenant(self) -> str:
        """The tenant (business) this transaction reads and writes."""
        ...

    def commit(self) -> None:
        """
        Make every write of this transaction durable and visible, atomically.

        Raises:
            ConcurrencyError: a concurrent writer got in the way; nothing was written.
            StorageError: the storage failed; nothing was written.
        """
        ...

    # --- the business and its catalogue ---------------------------------------------------------------

    def get_business(self) -> Business:
        """Return the tenant's business. Raises `NotFoundError` if it was never set up."""
        ...

    def put_business(self, business: Business) -> None:
        """Create or replace the tenant's business."""
        ...

    def get_resource(self, resource_id: str) -> Resource:
        """Return one resource. Raises `NotFoundError`."""
        ...

    def list_resources(self) -> list[Resource]:
        """Return every resource of the tenant, in the order they were first created."""
        ...

    def put_resource(self, resource: Resource) -> None:
        """Create or replace a resource (keeping its place in the order)."""
        ...

    def get_service(self, service_id: str) -> Service:
        """Return one service. Raises `NotFoundError`."""
        ...

    def list_services(self) -> list[Service]:
        """Return every service of the tenant, in the order they were first created."""
        ...

    def put_service(self, service: Service) -> None:
        """Create or replace a service."""
        ...

    # --- bookings ---------------------------------------------------------------------------------------

    def lock_resources(self, resource_ids: Collection[str]) -> None:
        """
        Take the write lock of every given resource, in sorted order, until the transaction ends.

        Two transactions that lock a common resource run one after the other from this call on, so the
        availability they then read stays true until they commit. Locking a resource twice is harmless.

        Raises:
            ConcurrencyError: the lock could not be had in time (retry the whole use case).
            InvalidInputError: *resource_ids* is one text or no collection, or holds text that is no id
                (`resource_ids_to_lock`).
            NotFoundError: a resource does not exist (or an id is not text); of several, the one named is the
                smallest id in code point order (the order of the locks).
            StorageError: the transaction was committed (its locks are gone).
        """
        ...

    def loads(self, resource_ids: Collection[str], window: Interval) -> list[Load]:
        """
        Return the load of live bookings (pre-booking, confirmed, paid) on *resource_ids* near *window*.

        Every live booking whose interval, widened by its buffers, overlaps *window* is included, holds
        whatever their expiry (the caller filters by its ``now``).
        """
        ...

    def reserve(self, booking: Booking, *, now: datetime, exclude: Collection[str] = ()) -> None:
        """
        Check capacity and write *booking* atomically: the storage's guarantee against double booking.

        Under the locks of the booking's resources (taken here if not held yet), count the live load on
        each of them over the booking's interval widened by its buffers (holds only while ``now <
        hold_until``; bookings in *exclude*, such as the booking's own earlier version, not at all), and
        write the booking (insert, or replace the stored one with the same id) only if every resource stays
        within its capacity at every instant. The check does not depend on the booking's own status: a
        booking reserved as cancelled or completed must fit too (`slotengine.capacity.check_capacity`); the
        engine reserves only live bookings, and the agreement machine holds adapters to the reference here.

        Raises:
            ConflictError: some resource would be over capacity; nothing was written.
            InvalidInputError: *booking* is not a `Booking`, *now* not an aware datetime, or *exclude* not a
                collection of booking ids (`check_reserve`), checked before any resource is looked for;
                nothing was written.
            NotFoundError: a resource of the booking does not exist; of several, the one named is the smallest
                id in code point order. Nothing was written.
            OutOfRangeError: the booking's interval widened by its buffers reaches outside the range of instants
                slotengine accepts, before anything else is checked; nothing was written.
        """
        ...

    def get_booking(self, booking_id: str) -> Booking:
        """Return one booking. Raises `NotFoundError`."""
        ...

    def find_bookings(self, query: BookingQuery) -> list[Booking]:
        """Return the bookings matching *query*, ordered by start, then id."""
        ...

    def update_booking(self, booking: Booking, *, expected_version: int) -> None:
        """
        Replace a stored booking whose time and resources do not change (a status, money or notes change).

        It never makes a booking take time it did not (see `check_update`): a cancelled or expired booking made
        live, a hold made firm or held longer go through `reserve`, which checks capacity.

        Raises:
            NotFoundError: there is no such booking.
            ConcurrencyError: the stored version is not *expected_version*; nothing was written.
            InvalidInputError: *booking* is not a `Booking` or *expected_version* not an `int` (`check_version`),
                or the update would take other time, or take time again (`check_update`); nothing was written.
        """
        ...

    def due_holds(self, now: datetime) -> list[Booking]:
        """Return the pre-bookings whose hold has expired at *now* (``hold_until <= now``), oldest first."""
        ...

    # --- the log, the outbox and idempotency -------------------------------------------------------------

    def append_transitions(self, records: Sequence[TransitionRecord]) -> None:
        """
        Append to the transition log (never rewritten): all of *records* (read once), or none.

        Raises:
            InvalidInputError: *records* holds something that is not a `TransitionRecord` (`check_records`);
                nothing of the call was written.
        """
        ...

    def list_transitions(self, booking_id: str | None = None) -> list[TransitionRecord]:
        """Return the transition log, of one booking or of all, in the order it was written."""
        ...

    def append_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """
        Add *messages* to the outbox, in the given order: all of them (read once), or none.

        Raises:
            InvalidInputError: *messages* holds something that is not an `OutboxMessage` (`check_messages`);
                nothing of the call was written.
            StorageError: the id of one of *messages* is in the tenant's outbox already, or appears twice in
                *messages*; the message names the first such id. Nothing of the call was written, and the
                transaction goes on.
        """
        ...

    def list_outbox(self, *, pending_only: bool = False, booking_id: str | None = None) -> list[OutboxMessage]:
        """
        Return outbox messages in the order they were written.

        With *pending_only*, only those neither sent nor given up; with *booking_id*, only that booking's (the
        engine asks for one booking's pending messages on every booking step, so an adapter should find them
        without reading every pending message of the tenant).
        """
        ...

    def update_outbox(self, message: OutboxMessage) -> None:
        """Replace one outbox message (attempts, sent or failed). Raises `NotFoundError`."""
        ...

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """Return the record saved under *key*, if any."""
        ...

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """
        Save the first result of a keyed call.

        Raises:
            ConcurrencyError: another transaction saved the same key first (retry: it will now be found).
        """
        ...

    # --- documents ---------------------------------------------------------------------------------------------

    def get_document(self, kind: str, key: str) -> str | None:
        """
        Return the body of the document *kind*/*key* of this tenant, or None if there is none.

        Documents are small JSON texts that modules built on the engine keep (event templates, occurrences,
        waiting lists), written in the same transaction as the bookings they go with.
        """
        ...

    def put_document(self, kind: str, key: str, body: str) -> None:
        """
        Create or replace the document *kind*/*key* with *body*, exactly as given.

        Raises:
            InvalidInputError: a bad kind, key or body (see `check_document`); nothing was written.
        """
        ...

    def list_documents(self, kind: str) -> list[tuple[str, str]]:
        """Return every ``(key, body)`` of *kind* in this tenant, ordered by key (code point order)."""
        ...


@runtime_checkable
class CatalogueVersions(Protocol):
    """
    An optional capability of a `StorageTransaction`: a version of the tenant's catalogue, for caching it.

    The engine keeps the decoded business, resources and services of the last version it saw and reuses them
    while a transaction reports the same version. A transaction without this method is read afresh each time.
    """

    def catalogue_version(self) -> int:
        """
        Return the version of this tenant's catalogue (business, resources, services) as this transaction sees it.

        The contract a cache relies on: every write of the catalogue, by anyone, anywhere, makes the version
        that readers see from its commit on different from every version any reader of this tenant saw
        before, and a version is never handed out twice to one tenant, even if the write that drew it rolled
        back (so a value read inside a transaction that later rolls back is never seen again). Versions may
        be counted per tenant (SQLite does) or across tenants (memory, PostgreSQL): a cache keys its snapshot
        on the tenant and the storage as well. Reading it, then the catalogue, in one transaction gives a
        catalogue at least as new as the version. One cheap read.
        """
        ...


@runtime_checkable
class OutboxClaims(Protocol):
    """
    An optional capability of a `StorageTransaction`: replace an outbox message only if nobody changed it since.

    With it, `BookingEngine.dispatch_due` claims each message before sending it, so dispatchers running at
    once (several processes or hosts) hand each message to their notifiers once, and none records a delivered
    message as failed. Without it, run one dispatcher per tenant at a time: concurrent ones send duplicates
    (receivers drop them by ``dedupe_key``) and may overwrite each other's records.
    """

    def swap_outbox(self, expected: OutboxMessage, message: OutboxMessage) -> bool:
        """
        Replace the stored message by *message* if it still equals *expected*; return whether it did.

        Compare-and-set: of writers racing to swap the same *expected*, exactly one succeeds (a writer that
        waited for another's commit sees the new value, not *expected*). Raises `NotFoundError` if there is
        no message with that id.
        """
        ...


@runtime_checkable
class TransitionsOf(Protocol):
    """
    An optional capability of a `StorageTransaction`: the transition log of some bookings only.

    `BookingEngine.transitions_of` and the window reports (`slotengine.reports`) read the log of the bookings
    they found, not the tenant's whole log, through it. A transaction without this method is asked
    `StorageTransaction.list_transitions` once per booking instead.
    """

    def list_transitions_of(self, booking_ids: Collection[str]) -> list[TransitionRecord]:
        """
        Return the records of the bookings *booking_ids* names, in the order they were written (across bookings too).

        Exactly the records of ``list_transitions()`` whose booking is named, in that order: an id named twice
        counts once, an id with no records (or of another tenant) adds nothing, and no ids give ``[]``. It
        should read only those bookings' records (an index leading with the tenant and the booking id), in a
        few statements however many ids there are.
        """
        ...


@runtime_checkable
class DueOutbox(Protocol):
    """
    An optional capability of a `StorageTransaction`: the outbox messages due now, without those due later.

    `BookingEngine.dispatch_due` reads them through it on every run. Without it, it reads every pending message
    (``list_outbox(pending_only=True)``), reminders planned weeks ahead included, and keeps the due ones: 150 ms
    a run on SQLite with 10,000 bookings ahead that each have a reminder.
    """

    def list_due_outbox(self, now: datetime) -> list[OutboxMessage]:
        """
        Return the pending messages (neither sent nor given up) due at or before *now*, in the order written.

        Exactly the messages of ``list_outbox(pending_only=True)`` whose ``due_at <= now``, in that order. It
        should not decode the messages due later (`due_bound` gives a text bound for the codec's documents).
        """
        ...


@runtime_checkable
class Retention(Protocol):
    """
    An optional capability of a `StorageTransaction`: forget what is kept for a while only.

    `BookingEngine.prune` deletes through it the outbox messages done with long ago and the idempotency
    records of old calls; without it, those grow for ever (docs/how-to/run-the-background-jobs.md).
    """

    def prune_outbox(self, before: datetime) -> int:
        """
        Delete this tenant's messages done with (`finished_at`) before *before*; return how many.

        A pending message (neither sent nor given up) is never deleted, however old.
        """
        ...

    def prune_idempotency(self, before: datetime) -> int:
        """Delete this tenant's idempotency records created before *before*; return how many."""
        ...


class Storage(Protocol):
    """A place to keep businesses, their catalogues and bookings, one tenant at a time."""

    def transaction(self, tenant: str) -> AbstractContextManager[StorageTransaction]:
        """
        Open a unit of work in *tenant*'s data, serialized with other writers as the adapter documents.

        Use it as ``with storage.transaction("acme") as tx: ...; tx.commit()``; an exception before `commit`,
        or no `commit`, rolls everything back. `commit` is final: an exception after it undoes nothing.

        Raises:
            StorageError: a transaction of this storage is already open in this thread (transactions do not
                nest; a transaction in another thread is waited for or runs alongside, as the adapter
                serializes writers).
        """
        ...

    def close(self) -> None:
        """
        Release connections and files. The storage cannot be used afterwards; closing twice is harmless.

        Raises:
            StorageError: called inside one of this storage's transactions in this thread (that transaction
                goes on; close the storage after its ``with`` block).
        """
        ...


@runtime_checkable
class ReserveAndRecord(Protocol):
    """
    An optional capability of a `Storage`: a booking's whole write, decided elsewhere, as one atomic step.

    The engine decides a new hold or booking from its cached catalogue, then hands the storage everything that
    booking writes at once. An adapter that can do all of it in one round trip (`PostgresStorage`: one
    statement) spares the transaction's separate reads and writes; `reserve_and_record_in` does it in one of
    the storage's own transactions, for adapters that gain nothing from doing it differently. A storage without
    this method is driven through `Storage.transaction` as usual.
    """

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
        Reserve *booking* and append its records in one transaction of *tenant*, committed before returning.

        In order: refuse unless the catalogue is at *catalogue_version* (`CatalogueVersions`), then
        `StorageTransaction.reserve` *booking* at *now*, `StorageTransaction.append_transitions` *transitions*,
        `StorageTransaction.append_outbox` *outbox* and, given *idempotency*,
        `StorageTransaction.put_idempotency` it (the first result of a keyed call, saved with the booking).

        The arguments are checked first (`check_reserve_and_record`): a bad one is an `InvalidInputError` whatever
        else is wrong. *transitions* and *outbox* are read once (generators work).

        Raises:
            InvalidInputError: an argument is not acceptable (`check_reserve_and_record`).
            CatalogueChangedError: the catalogue is at another version (it changed since it was read).
            ConflictError: some resource would be over capacity (as `StorageTransaction.reserve`). An adapter
                may add ``details["loads"]``: a tuple of the refused resource's `Load`s over the booking's blocked
                time, as `StorageTransaction.loads` would read them then; the engine explains the refusal from
                them instead of reading the load again.
            NotFoundError: a resource of the booking does not exist (named as `StorageTransaction.reserve` names it).
            OutOfRangeError: the booking's buffers reach outside the accepted range (as `StorageTransaction.reserve`).
            ConcurrencyError: a concurrent writer got in the way (as `Storage.transaction`), or the
                idempotency key is saved already (as `StorageTransaction.put_idempotency`); retry.

        Whatever it raises, nothing was written. A transaction of the same storage must not be open in the
        calling thread (transactions do not nest).
        """
        ...


def reserve_and_record_in(
    storage: Storage,
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
    Do `ReserveAndRecord.reserve_and_record` in one transaction of *storage*, committed before returning.

    Adapters whose transactions are cheap take this as their method (``reserve_and_record =
    reserve_and_record_in``); their transactions must have `CatalogueVersions.catalogue_version`.

    The arguments are checked first (`check_reserve_and_record`), before the transaction opens: a bad one is an
    `InvalidInputError` whatever else is wrong (a resource missing, the catalogue changed), as in PostgreSQL.

    Raises:
        InvalidInputError: an argument is not acceptable (`check_reserve_and_record`); nothing was written.
        CatalogueChangedError: the catalogue is not at *catalogue_version*; nothing was written.
        Anything `reserve`, `append_transitions`, `append_outbox` or `put_idempotency` raise (nothing is
            committed then).
    """
    check_id(tenant, "tenant")
    given = check_reserve_and_record(
        booking,
        now=now,
        transitions=transitions,
        outbox=outbox,
        catalogue_version=catalogue_version,
        idempotency=idempotency,
    )
    with storage.transaction(tenant) as tx:
        if not isinstance(tx, CatalogueVersions):
            msg = "reserve_and_record needs a transaction with catalogue versions (CatalogueVersions)"
            raise TypeError(msg)
        current = tx.catalogue_version()
        if current != given.catalogue_version:
            msg = f"the catalogue changed meanwhile (version {current}, not {given.catalogue_version}); read it again"
            raise CatalogueChangedError(msg, version=current)
        tx.reserve(given.booking, now=given.now)
        tx.append_transitions(given.transitions)
        tx.append_outbox(given.outbox)
        if given.idempotency is not None:
            tx.put_idempotency(given.idempotency)
        tx.commit()
