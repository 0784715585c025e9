"""
A conformance kit for storage adapters: the `Storage` contract as tests that any adapter runs from its own suite.

A storage adapter is correct when it keeps every promise written in `slotengine.ports`. This module turns those
promises into three tools, each of which takes a *factory* (a zero-argument callable that returns a fresh,
empty `Storage`) and never an instance, so that every check starts from nothing. The kit calls ``close()`` on
every storage it makes.

- `check_storage` runs a battery of small, named checks (`CHECKS`), one per clause of the contract:
  transactions, tenant isolation, not-found errors, catalogue order, the capacity check in ``reserve`` with
  its holds, buffers and exclusions, versioned updates, ``loads``, ``find_bookings``, ``due_holds``, the
  transition log, the outbox, idempotency records, and exact round trips of every value (hostile strings
  included). A failing check raises `AssertionError` with a message that names the clause it broke.
- `agreement_machine` builds a hypothesis `RuleBasedStateMachine` (a `StorageAgreement`) that sends the same
  random steps to the adapter under test and to `MemoryStorage`, the reference, and fails as soon as the two
  return different values or raise different exception classes (research note, M4).
- `check_concurrency` races threads through separate transactions of one storage: exactly *capacity* racers
  win a contested slot, the others get `ConflictError`, two needs locked in opposite orders never end in a
  deadlock, an idempotency key is saved once (research note, C1, C2, C5, I1), one of several updates of a
  booking at one version wins (no lost update), and one of several claims of an outbox message. It makes the
  interpreter switch threads every microsecond meanwhile, so that racers in pure Python interleave.
- `check_concurrency_across_processes` races processes, each with its own storage on the same database, for
  the same slots and the same idempotency key: it catches a storage whose transactions are serialized by a
  lock of one process only. It takes an *opener* (a picklable callable opening the same database each time)
  instead of a factory.

All of them run with the process's local time zone set off UTC (3:30 west, Newfoundland's rule), and restore
it afterwards, so that an adapter that turns instants into the host's local time fails on every host (where
Python has ``time.tzset``; on Windows they run in the host's zone).

Use it from pytest::

    import pytest
    from slotengine.testing.conformance import CHECKS, check_concurrency, agreement_machine

    @pytest.mark.parametrize("name", sorted(CHECKS))
    def test_contract(name):
        CHECKS[name](my_factory)

This module imports hypothesis, like the rest of `slotengine.testing`: it is for test suites only
(in a clone of slotengine: ``pip install -e '.[testing]'``).
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import pickle
import queue
import random
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

import attrs

try:
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
except ImportError:  # pragma: no cover - said once, plainly, instead of a bare ModuleNotFoundError
    msg = "the conformance kit needs hypothesis and pytest: pip install -e '.[testing]' in a clone of slotengine"
    raise ImportError(msg) from None

from slotengine._time import MAX_INSTANT, MIN_INSTANT
from slotengine.adapters.memory import MemoryStorage
from slotengine.availability import Assignment, Load
from slotengine.booking import Booking, Payment, PaymentKind
from slotengine.business import Business
from slotengine.errors import (
    CatalogueChangedError,
    ConcurrencyError,
    ConflictError,
    InvalidInputError,
    NaiveDatetimeError,
    NotFoundError,
    OutOfRangeError,
    SlotEngineError,
    StorageError,
)
from slotengine.intervals import CapacityProfile, Interval
from slotengine.lifecycle import LIVE_STATUSES, TRANSITIONS, Action, BookingStatus, TransitionRecord
from slotengine.model import UNLIMITED, Capacity, Need, Resource, ResourceKind, ResourceRole, Service, ServiceUnit
from slotengine.money import MAX_AMOUNT, Money
from slotengine.notifications import Condition, NotificationRule, QuietHours, Recipient, Template
from slotengine.outbox import OutboxMessage
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationMode,
    ConfirmationPolicy,
    HoldPolicy,
    NoShowPolicy,
    Policies,
    RefundTier,
    ReschedulePolicy,
)
from slotengine.ports import (
    BookingQuery,
    CatalogueVersions,
    DueOutbox,
    IdempotencyRecord,
    OutboxClaims,
    ReserveAndRecord,
    Retention,
    Storage,
    StorageTransaction,
    TransitionsOf,
    finished_at,
)
from slotengine.recurrence import Recurrence
from slotengine.schedule import DateOverride, RecurringHours, Schedule, TimeOff, TimeRange, WeeklyHours

__all__ = [
    "CHECKS",
    "CapabilityNotOffered",
    "CheckFailure",
    "ConcurrencyReport",
    "StorageAgreement",
    "StorageFactory",
    "agreement_machine",
    "check_concurrency",
    "check_concurrency_across_processes",
    "check_storage",
    "run_checks",
]

StorageFactory: TypeAlias = Callable[[], Storage]
"""A zero-argument callable returning a fresh, empty `Storage`; the kit closes what it makes."""

_T = TypeVar("_T")
_Check: TypeAlias = Callable[[StorageFactory], None]


class CapabilityNotOffered(UserWarning):
    """
    Warned by a check of an optional capability the storage does not offer: it had nothing to check.

    Not a failure (the engine works without the capability, more slowly or with one dispatcher at a time), but
    pytest lists it, so a method the engine cannot find (a misspelt ``reserve_and_record``) does not go unseen.
    """


def _not_offered(check: str, capability: str, meaning: str) -> None:
    warnings.warn(
        f"{check}: the storage offers no {capability}, so there was nothing to check ({meaning})",
        CapabilityNotOffered,
        stacklevel=4,  # past the check and the wrapper that runs it in `_PROCESS_ZONE`: the caller's line
    )


_PROCESS_ZONE: Final = "NST+3:30NDT,M3.2.0,M11.1.0"
"""
The local time zone of the process while the kit runs, as a POSIX ``TZ`` rule (Newfoundland's: 3:30 west of UTC,
2:30 in summer), so that its verdict does not depend on the zone of the host running it.

An adapter that turns an aware instant into local time anywhere (``datetime.astimezone()`` without a zone,
``time.mktime``, a driver that sends naive local times) stores instants shifted by the offset of the host, which a
host on UTC cannot see. A POSIX rule needs no zone database on the host.
"""


@contextmanager
def _in_process_zone(zone: str = _PROCESS_ZONE) -> Iterator[None]:
    """
    Set the process's local time zone to *zone* (``TZ`` and ``time.tzset()``), and restore it afterwards.

    The zone is the whole process's, so threads running meanwhile see it too. Where Python has no ``time.tzset``
    (Windows), the zone cannot be changed and the kit runs in the host's zone.
    """
    tzset: Callable[[], None] | None = getattr(time, "tzset", None)
    if tzset is None:
        yield
        return
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        tzset()


US: Final = timedelta(microseconds=1)
M: Final = timedelta(minutes=1)
H: Final = timedelta(hours=1)
DAY0: Final = datetime(2030, 6, 3, tzinfo=UTC)
"""Midnight UTC of the day every check books on (a Monday, far from any clock of the machine running it)."""
CREATED: Final = datetime(2030, 1, 1, tzinfo=UTC)

HOSTILE_STRINGS: Final[tuple[str, ...]] = (
    "' OR 1=1 --",
    "'; DROP TABLE bookings; --",
    'Robert"); DROP TABLE outbox; --',
    "back\\slash\\\\ and \\' quote",
    "quotes ' \" ` ''",
    "\u202egnp.exe \u2066isolate\u2069 \u200f",
    "שלום مرحبا",
    "%s %d {0} {} ? ?1 :tenant $1 @y",
    "NULL",
    "null",
    "line\nbreak\ttab\r",
    "emoji 🚗 and combining e\u0301",
    "%' OR '%' = '",
    "*/ SELECT * FROM businesses; /*",
    "a_c%",
    " leading and trailing spaces ",
    "ID-ÄÖÜ-ß-İ-ı",
)
"""Strings every adapter must store and find verbatim: SQL, format and LIKE metacharacters, bidi text, case."""


def at(hour: int, minute: int = 0, *, day: int = 0, micro: int = 0) -> datetime:
    """Return an instant on the checks' day (plus *day* days), in UTC."""
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute, microseconds=micro)


# --- failures and assertions --------------------------------------------------------------------------------------


def _fields(value: object) -> dict[str, object] | None:
    cls = type(value)
    if attrs.has(cls):
        return {f.name: getattr(value, f.name) for f in attrs.fields(cls) if f.eq}
    return None


def _describe(expected: object, actual: object) -> str:
    """Show what differs between two values: the differing fields of attrs values, keys of dicts, else both reprs."""
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        keys = [key for key in expected if expected[key] != actual[key]]
        parts = [f"\n  {key!s}: {_describe(expected[key], actual[key]).lstrip()}" for key in keys]
        return "these differ (the rest is equal):" + "".join(parts)
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple) and len(expected) != len(actual):
        missing = [item for item in expected if item not in actual]
        extra = [item for item in actual if item not in expected]
        if missing or extra:
            return f"{len(expected)} expected, {len(actual)} actual; missing: {missing!r}; unexpected: {extra!r}"
    left, right = _fields(expected), _fields(actual)
    if left is not None and right is not None and type(expected) is type(actual):
        lines = [
            f"    {name}: expected {left[name]!r}, got {right[name]!r}" for name in left if left[name] != right[name]
        ]
        return f"{type(expected).__name__} differs in:\n" + "\n".join(lines)
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple) and len(expected) == len(actual):
        for index, (one, other) in enumerate(zip(expected, actual, strict=True)):
            if one != other:
                return f"item {index} differs: {_describe(one, other)}"
    return f"\n    expected: {expected!r}\n    actual:   {actual!r}"


def _expect(clause: str, expected: object, actual: object) -> None:
    if expected != actual:
        msg = f"{clause}: {_describe(expected, actual)}"
        raise AssertionError(msg)


def _raises(clause: str, error: type[BaseException], call: Callable[[], object]) -> BaseException:
    """Run *call*, which must raise *error* (or a subclass); return what it raised."""
    try:
        result = call()
    except error as exc:
        return exc
    except Exception as exc:
        msg = f"{clause}: expected {error.__name__}, got {type(exc).__name__}: {exc}"
        raise AssertionError(msg) from exc
    msg = f"{clause}: expected {error.__name__}, but the call returned {result!r}"
    raise AssertionError(msg)


class _Abort(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a transaction by the kit to check that an exception rolls it back."""


# --- building values ---------------------------------------------------------------------------------------------


def _booking(
    booking_id: str,
    start: datetime,
    end: datetime,
    *,
    resources: Sequence[str] = ("r1",),
    units: int = 1,
    status: BookingStatus = BookingStatus.CONFIRMED,
    hold_until: datetime | None = None,
    buffer_before: timedelta = timedelta(0),
    buffer_after: timedelta = timedelta(0),
    **fields: Any,
) -> Booking:
    if status is BookingStatus.PRE_BOOKING and hold_until is None:
        hold_until = at(23)
    return Booking(
        booking_id,
        fields.pop("service_id", "s1"),
        start,
        end,
        (Assignment(0, "", tuple(resources)),),
        (units,),
        status,
        fields.pop("created_at", CREATED),
        hold_until=hold_until,
        buffer_before=buffer_before,
        buffer_after=buffer_after,
        **fields,
    )


def _message(message_id: str, **fields: Any) -> OutboxMessage:
    return OutboxMessage(
        message_id,
        fields.pop("topic", "booking.held"),
        fields.pop("booking_id", "b1"),
        fields.pop("created_at", at(8)),
        fields.pop("due_at", at(8)),
        fields.pop("dedupe_key", f"dedupe-{message_id}"),
        **fields,
    )


def _record(booking_id: str, action: Action = Action.HOLD, **fields: Any) -> TransitionRecord:
    source = fields.pop("from_status", None if action in TRANSITIONS[None] else BookingStatus.PRE_BOOKING)
    return TransitionRecord(
        booking_id,
        source,
        TRANSITIONS[source][action],
        action,
        fields.pop("at", at(8)),
        fields.pop("actor", "system"),
        **fields,
    )


def _business(name: str = "Car wash") -> Business:
    return Business(name, "Europe/Paris", Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "18:00"))))


def _service(service_id: str = "s1", name: str = "Wash") -> Service:
    return Service(service_id, name, needs=[Need(type="box")], duration=30 * M)


def _catalogue(tx: StorageTransaction, capacities: Mapping[str, Capacity]) -> None:
    for rid, capacity in capacities.items():
        tx.put_resource(Resource(rid, f"Resource {rid}", capacity=capacity))


@contextmanager
def _made(factory: StorageFactory) -> Iterator[Storage]:
    """A fresh storage from *factory*, closed afterwards."""
    storage = factory()
    try:
        yield storage
    finally:
        storage.close()


def _in(storage: Storage, tenant: str, work: Callable[[StorageTransaction], _T], *, commit: bool = True) -> _T:
    """Run *work* in one transaction of *tenant*, committed unless told otherwise."""
    with storage.transaction(tenant) as tx:
        result = work(tx)
        if commit:
            tx.commit()
        return result


def _setup(storage: Storage, tenant: str, capacities: Mapping[str, Capacity]) -> None:
    def work(tx: StorageTransaction) -> None:
        tx.put_business(_business())
        tx.put_service(_service())
        _catalogue(tx, capacities)

    _in(storage, tenant, work)


def _reserve(
    storage: Storage,
    tenant: str,
    booking: Booking,
    *,
    now: datetime,
    exclude: Collection[str] = (),
    clause: str = "reserve of a booking that fits is accepted",
) -> None:
    """Reserve *booking* in its own committed transaction; a refusal fails *clause*."""
    try:
        _in(storage, tenant, lambda tx: tx.reserve(booking, now=now, exclude=exclude))
    except SlotEngineError as exc:
        msg = f"{clause}: reserve of {booking!r} raised {type(exc).__name__}: {exc}"
        raise AssertionError(msg) from exc


def _update(storage: Storage, tenant: str, booking: Booking, *, expected_version: int, clause: str) -> None:
    """Update *booking* in its own committed transaction; a refusal fails *clause*."""
    try:
        _in(storage, tenant, _updating(booking, expected_version=expected_version))
    except SlotEngineError as exc:
        msg = f"{clause}: update_booking of {booking!r} raised {type(exc).__name__}: {exc}"
        raise AssertionError(msg) from exc


def _reserving(
    booking: Booking, *, now: datetime, exclude: Collection[str] = ()
) -> Callable[[StorageTransaction], None]:
    """A transaction's work: reserve *booking*."""
    return lambda tx: tx.reserve(booking, now=now, exclude=exclude)


def _reserving_all(bookings: Sequence[Booking], *, now: datetime) -> Callable[[StorageTransaction], None]:
    """A transaction's work: reserve every booking, in order."""

    def work(tx: StorageTransaction) -> None:
        for booking in bookings:
            tx.reserve(booking, now=now)

    return work


def _reserving_made(make: Callable[[], Booking], *, now: datetime) -> Callable[[StorageTransaction], None]:
    """A transaction's work: reserve the booking *make* builds (inside the call, so building it may be the refusal)."""
    return lambda tx: tx.reserve(make(), now=now)


def _recording(
    storage: ReserveAndRecord, tenant: str, make: Callable[[], Booking], *, now: datetime, version: int
) -> Callable[[], None]:
    """A call of `reserve_and_record` of the booking *make* builds, without records, at catalogue *version*."""
    return lambda: storage.reserve_and_record(
        tenant, make(), now=now, transitions=(), outbox=(), catalogue_version=version
    )


def _locking(resource_ids: Collection[str]) -> Callable[[StorageTransaction], None]:
    """A transaction's work: lock resources."""
    return lambda tx: tx.lock_resources(resource_ids)


def _updating(booking: Booking, *, expected_version: int) -> Callable[[StorageTransaction], None]:
    """A transaction's work: update *booking*."""
    return lambda tx: tx.update_booking(booking, expected_version=expected_version)


def _finding(query: BookingQuery) -> Callable[[StorageTransaction], list[Booking]]:
    """A transaction's work: find bookings."""
    return lambda tx: tx.find_bookings(query)


def _cataloguing(capacities: Mapping[str, Capacity]) -> Callable[[StorageTransaction], None]:
    """A transaction's work: create resources."""
    return lambda tx: _catalogue(tx, capacities)


def _key_reader(key: str) -> Callable[[StorageTransaction], IdempotencyRecord | None]:
    """A transaction's work: read an idempotency record."""
    return lambda tx: tx.get_idempotency(key)


def _query(field: str, value: str) -> BookingQuery:
    """A query on one text field."""
    changes: dict[str, Any] = {field: value}
    return BookingQuery(**changes)


def _ids(storage: Storage, tenant: str) -> list[str]:
    """The ids of every booking of *tenant*, by start."""
    return [b.id for b in _in(storage, tenant, _finding(BookingQuery()), commit=False)]


def _refused(
    clause: str,
    error: type[BaseException],
    storage: Storage,
    tenant: str,
    work: Callable[[StorageTransaction], object],
) -> BaseException:
    """Run *work* in a transaction that commits if it returns; it must raise *error* and change nothing."""
    before = _state(storage, tenant)
    raised = _raises(clause, error, lambda: _in(storage, tenant, work))
    _expect(f"{clause}, and nothing was written", before, _state(storage, tenant))
    return raised


def _business_or_none(tx: StorageTransaction) -> Business | None:
    try:
        return tx.get_business()
    except NotFoundError:
        return None


_KNOWN_KEYS: Final = ("k1", "k2", "key")


_ALL_TIME: Final = Interval(MIN_INSTANT, MAX_INSTANT)
"""Every instant slotengine accepts: the window of the loads `_snapshot` lists."""


def _snapshot(tx: StorageTransaction, keys: Collection[str] = _KNOWN_KEYS) -> dict[str, object]:
    """
    Everything a transaction can list of its tenant (idempotency records only under *keys*).

    The loads too, of every resource at any time: a storage that keeps loads apart from its bookings (a table of
    booking resources) can leave one behind that no list of bookings shows.
    """
    resources = tx.list_resources()
    return {
        "business": _business_or_none(tx),
        "resources": resources,
        "services": tx.list_services(),
        "bookings": tx.find_bookings(BookingQuery()),
        "loads": _sorted_loads(tx.loads([r.id for r in resources], _ALL_TIME)),
        "transitions": tx.list_transitions(),
        "outbox": tx.list_outbox(),
        "idempotency": {key: tx.get_idempotency(key) for key in keys},
    }


def _state(storage: Storage, tenant: str) -> dict[str, object]:
    return _in(storage, tenant, _snapshot, commit=False)


def _load_key(load: Load) -> tuple[object, ...]:
    return (load.booking_id, load.resource_id, load.interval.start, load.interval.end, load.units, repr(load))


def _sorted_loads(loads: Sequence[Load]) -> list[Load]:
    return sorted(loads, key=_load_key)


def _expected_loads(bookings: Sequence[Booking], resource_ids: Collection[str], window: Interval) -> list[Load]:
    """The reference answer of ``loads``: every load of every live booking on the resources, overlapping."""
    wanted = set(resource_ids)
    return _sorted_loads(
        [
            load
            for booking in bookings
            if booking.status in LIVE_STATUSES
            for load in booking.loads()
            if load.resource_id in wanted and load.blocked.overlaps(window)
        ]
    )


# --- the battery ----------------------------------------------------------------------------------------------

_REGISTRY: dict[str, _Check] = {}


def _check(function: _Check) -> _Check:
    """Register *function* as a check of the battery, run in `_PROCESS_ZONE`."""

    @functools.wraps(function)
    def in_zone(factory: StorageFactory) -> None:
        with _in_process_zone():
            function(factory)

    _REGISTRY[function.__name__] = in_zone
    return in_zone


def _write_everything(tx: StorageTransaction, tag: str = "") -> None:
    """One write of every kind, so that a rollback or a commit can be seen on each of them."""
    tx.put_business(_business(f"Car wash{tag}"))
    tx.put_resource(Resource("r1", f"Box{tag}"))
    tx.put_service(_service("s1", f"Wash{tag}"))
    tx.reserve(_booking("b1", at(10), at(11), notes=tag), now=at(8))
    tx.append_transitions([_record("b1", reason=tag)])
    tx.append_outbox([_message("m1", payload=f'{{"tag": "{tag}"}}')])
    tx.put_idempotency(IdempotencyRecord("k1", f"hash{tag}", "b1", "{}", at(8)))


def _written(tag: str = "") -> dict[str, object]:
    """What `_write_everything` leaves behind, as `_snapshot` shows it."""
    return {
        "business": _business(f"Car wash{tag}"),
        "resources": [Resource("r1", f"Box{tag}")],
        "services": [_service("s1", f"Wash{tag}")],
        "bookings": [_booking("b1", at(10), at(11), notes=tag)],
        "loads": _booking("b1", at(10), at(11)).loads(),
        "transitions": [_record("b1", reason=tag)],
        "outbox": [_message("m1", payload=f'{{"tag": "{tag}"}}')],
        "idempotency": {
            "k1": IdempotencyRecord("k1", f"hash{tag}", "b1", "{}", at(8)),
            **dict.fromkeys(_KNOWN_KEYS[1:]),
        },
    }


_EMPTY: Final[Mapping[str, object]] = MappingProxyType(
    {
        "business": None,
        "resources": [],
        "services": [],
        "bookings": [],
        "loads": [],
        "transitions": [],
        "outbox": [],
        "idempotency": dict.fromkeys(_KNOWN_KEYS),
    }
)


@_check
def check_commit_makes_writes_visible(factory: StorageFactory) -> None:
    """A transaction reads its own writes; after `commit` a new transaction sees all of them."""
    with _made(factory) as storage:
        with storage.transaction("alpha") as tx:
            _expect("transaction.tenant is the tenant it was opened for", "alpha", tx.tenant)
            _write_everything(tx)
            _expect("a transaction reads its own uncommitted writes", _written(), _snapshot(tx))
            tx.commit()
        _expect("commit makes every write visible to a new transaction", _written(), _state(storage, "alpha"))


@_check
def check_rollback_without_commit(factory: StorageFactory) -> None:
    """Leaving a transaction's ``with`` block without `commit` rolls every write back."""
    with _made(factory) as storage:
        _in(storage, "alpha", _write_everything, commit=False)
        _expect("a transaction left without commit writes nothing", dict(_EMPTY), _state(storage, "alpha"))
        _in(storage, "alpha", lambda tx: _write_everything(tx, " v1"))
        _in(storage, "alpha", _write_everything_more, commit=False)
        _expect("a transaction left without commit changes nothing", _written(" v1"), _state(storage, "alpha"))


def _write_everything_more(tx: StorageTransaction) -> None:
    """Writes of every kind over what `_write_everything` left: replacements, updates and appends."""
    tx.put_business(_business("Other"))
    tx.put_resource(Resource("r1", "Other box"))
    tx.put_resource(Resource("r2", "New box"))
    tx.put_service(_service("s1", "Other wash"))
    tx.reserve(_booking("b2", at(12), at(13)), now=at(8))
    stored = tx.get_booking("b1")
    tx.update_booking(
        attrs.evolve(stored, notes="changed", version=stored.version + 1), expected_version=stored.version
    )
    tx.append_transitions([_record("b2")])
    tx.append_outbox([_message("m2")])
    tx.update_outbox(attrs.evolve(tx.list_outbox()[0], attempts=1, sent_at=at(9)))
    tx.put_idempotency(IdempotencyRecord("k2", "hash", "b2", "{}", at(8)))


@_check
def check_rollback_on_exception(factory: StorageFactory) -> None:
    """
    An exception inside a transaction's ``with`` block propagates unchanged and rolls every write back.

    What was committed stays committed: an exception raised after `commit` (the caller's own code, before the
    block ends) undoes nothing, as the engine counts on once it has told the client.
    """
    with _made(factory) as storage:
        boom = _Abort("boom")

        def fail(work: Callable[[StorageTransaction], None]) -> None:
            with storage.transaction("alpha") as tx:
                work(tx)
                raise boom

        raised = _raises("an exception inside a transaction propagates", _Abort, lambda: fail(_write_everything))
        _expect("the exception leaves the transaction unchanged (the same object)", id(boom), id(raised))
        _expect("an exception rolls back every write", dict(_EMPTY), _state(storage, "alpha"))
        _in(storage, "alpha", lambda tx: _write_everything(tx, " v1"))
        _raises("an exception inside a transaction propagates", _Abort, lambda: fail(_write_everything_more))
        _expect("an exception rolls back every write", _written(" v1"), _state(storage, "alpha"))

        committed: list[dict[str, object]] = []

        def commit_then_fail(tx: StorageTransaction) -> None:
            _write_everything_more(tx)
            committed.append(_snapshot(tx))
            tx.commit()

        _raises("an exception after commit propagates", _Abort, lambda: fail(commit_then_fail))
        _expect("an exception after commit keeps what was committed", committed[0], _state(storage, "alpha"))


@_check
def check_committed_transaction_refuses_writes(factory: StorageFactory) -> None:
    """
    After `commit` a transaction is over: a further write raises `StorageError` (reference behaviour).

    A lock too, of a resource that exists or not, held before or not: the commit ended the locks, so a use case
    that went on would read and write without them.
    """
    with _made(factory) as storage, storage.transaction("alpha") as tx:
        tx.put_resource(Resource("r1", "Box"))
        tx.lock_resources(["r1"])
        tx.commit()
        _raises(
            "a write after commit raises StorageError (it would be lost or escape the transaction)",
            StorageError,
            lambda: tx.put_resource(Resource("r2", "Box")),
        )
        for ids in (["r1"], ["nope"], []):
            _raises(
                f"lock_resources({ids}) after commit raises StorageError (the locks ended with the commit)",
                StorageError,
                functools.partial(tx.lock_resources, ids),
            )


_THREAD_WAIT: Final = 60.0
"""Seconds a check waits for a thread it started before it reports the thread as stuck."""


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Start *work* in a new thread; return the thread and the list that will hold what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the check that joins the thread
            raised.append(exc)

    # A daemon: a thread stuck in a broken adapter must not keep the test process alive.
    thread = threading.Thread(target=run, name="slotengine-conformance", daemon=True)
    thread.start()
    return thread, raised


@_check
def check_transactions_do_not_nest(factory: StorageFactory) -> None:
    """
    A transaction opened in a thread that has one of the same storage open raises `StorageError`.

    Whatever the tenant, and at once. A nested transaction would wait for its outer one's locks or lose one of
    their writes; the outer transaction goes on unchanged. Another thread's transaction is not nested: it is
    served the way the adapter serializes writers (it may wait for the first one to end).
    """
    with _made(factory) as storage:
        outer_write = Resource("r1", "Outer")

        def nested(tenant: str) -> None:
            _in(storage, tenant, lambda tx: tx.put_resource(Resource("r2", "Inner")))

        def nest() -> None:
            with storage.transaction("alpha") as outer:
                outer.put_resource(outer_write)
                for tenant in ("alpha", "beta"):
                    _raises(
                        f"a transaction of {tenant!r} opened inside an open one raises StorageError",
                        StorageError,
                        functools.partial(nested, tenant),
                    )
                if isinstance(storage, ReserveAndRecord):
                    _raises(
                        "reserve_and_record inside an open transaction raises StorageError",
                        StorageError,
                        _recording(
                            storage, "beta", functools.partial(_booking, "b1", at(10), at(11)), now=at(8), version=0
                        ),
                    )
                _expect(
                    "a refused nested transaction leaves the outer one as it was", [outer_write], outer.list_resources()
                )
                outer.commit()

        # In a thread of its own (nesting is about one thread, any thread), so that an adapter whose nested
        # transaction waits for its outer one fails this check instead of hanging the suite.
        thread, raised = _in_thread(nest)
        thread.join(_THREAD_WAIT)
        _expect(
            "a nested transaction is refused at once (it does not wait for the outer one forever)",
            expected=False,
            actual=thread.is_alive(),
        )
        if raised:
            raise raised[0]
        _expect("the outer transaction's writes are committed", [outer_write], _state(storage, "alpha")["resources"])
        _expect("a refused nested transaction writes nothing", dict(_EMPTY), _state(storage, "beta"))

        other_write, main_write = Resource("r3", "Other thread"), Resource("r2", "Main thread")
        with storage.transaction("alpha") as tx:
            tx.put_resource(main_write)
            thread, raised = _in_thread(lambda: _in(storage, "alpha", lambda tx: tx.put_resource(other_write)))
            tx.commit()
        thread.join(_THREAD_WAIT)
        _expect(
            "another thread's transaction ends (it is not stuck behind this thread's)",
            expected=False,
            actual=thread.is_alive(),
        )
        _expect("another thread's transaction is not refused as a nested one", [], raised)
        _expect(
            "transactions of two threads both commit (a commit that overwrote the other's writes with a copy read "
            "before them is a lost update: hold the lock from the transaction's start to its end, or re-read)",
            [outer_write, main_write, other_write],
            _state(storage, "alpha")["resources"],
        )


@_check
def check_transaction_is_over_after_its_block(factory: StorageFactory) -> None:
    """
    Once its ``with`` block has ended, a transaction refuses every read and write with `StorageError`.

    Committed or not: a transaction left without commit has rolled back, so it has nothing true left to
    read, and a write then would be lost or escape every transaction.
    """
    with _made(factory) as storage:
        with storage.transaction("alpha") as left:
            left.put_resource(Resource("r1", "Rolled back"))
        kept = Resource("r2", "Committed")
        with storage.transaction("alpha") as done:
            done.put_resource(kept)
            done.commit()
        for what, tx in (("left without commit", left), ("committed", done)):
            calls: list[tuple[str, Callable[[], object]]] = [
                ("get_resource", functools.partial(tx.get_resource, "r1")),
                ("list_resources", tx.list_resources),
                ("find_bookings", functools.partial(tx.find_bookings, BookingQuery())),
                ("list_outbox", tx.list_outbox),
                ("put_resource", functools.partial(tx.put_resource, Resource("r3", "Late"))),
                ("reserve", functools.partial(tx.reserve, _booking("b1", at(10), at(11), resources=["r2"]), now=at(8))),
                ("commit", tx.commit),
            ]
            for name, call in calls:
                _raises(f"{name} on a transaction {what}, after its block, raises StorageError", StorageError, call)
        _expect(
            "nothing a transaction did after its block was written",
            {**_EMPTY, "resources": [kept]},
            _state(storage, "alpha"),
        )


@_check
def check_transaction_survives_refusals(factory: StorageFactory) -> None:
    """
    A refused call writes nothing and leaves its transaction usable: later writes commit normally.

    A booking with two needs is refused whole: one whose first need fits and whose second does not leaves
    no booking, and no load, of its first need behind (an adapter that writes need by need must undo them),
    whichever comes first: the booking's order of needs, or the sorted order resources are locked in.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r0": 1, "r1": 1, "r2": 1})
        _reserve(storage, "alpha", _booking("b1", at(10), at(11)), now=at(8))
        _in(storage, "alpha", lambda tx: tx.put_idempotency(IdempotencyRecord("k1", "h", "b1", "{}", at(8))))
        before = _state(storage, "alpha")
        stored = before["bookings"][0]  # type: ignore[index]
        split = Booking(
            "b5",
            "s1",
            at(10),
            at(11),
            (Assignment(0, "free", ("r2",)), Assignment(1, "full", ("r1",))),
            (1, 1),
            BookingStatus.CONFIRMED,
            CREATED,
        )
        # the free resource sorts first: an adapter checking and writing in lock order writes r0, then meets r1
        sorted_split = attrs.evolve(
            split, id="b6", assignments=(Assignment(0, "full", ("r1",)), Assignment(1, "free", ("r0",)))
        )

        def work(tx: StorageTransaction) -> None:
            refusals: list[tuple[str, type[BaseException], Callable[[], object]]] = [
                ("get_resource of a missing id", NotFoundError, lambda: tx.get_resource("nope")),
                ("get_booking of a missing id", NotFoundError, lambda: tx.get_booking("nope")),
                ("reserve over capacity", ConflictError, lambda: tx.reserve(_booking("b2", at(10), at(11)), now=at(8))),
                (
                    "reserve of a booking whose first need fits and whose second is full",
                    ConflictError,
                    lambda: tx.reserve(split, now=at(8)),
                ),
                (
                    "reserve of a booking whose first resource in sorted order fits and whose last is full",
                    ConflictError,
                    lambda: tx.reserve(sorted_split, now=at(8)),
                ),
                (
                    "reserve on a missing resource",
                    NotFoundError,
                    lambda: tx.reserve(_booking("b3", at(12), at(13), resources=["nope"]), now=at(8)),
                ),
                (
                    "update_booking with a stale version",
                    ConcurrencyError,
                    lambda: tx.update_booking(attrs.evolve(stored, notes="x", version=3), expected_version=2),
                ),
                (
                    "update_booking moving time",
                    InvalidInputError,
                    lambda: tx.update_booking(attrs.evolve(stored, start=at(9), version=2), expected_version=1),
                ),
                (
                    "put_idempotency of an existing key",
                    ConcurrencyError,
                    lambda: tx.put_idempotency(IdempotencyRecord("k1", "other", "b9", "{}", at(8))),
                ),
            ]
            for what, error, call in refusals:
                _raises(f"{what} raises {error.__name__}", error, call)
                _expect(f"{what} writes nothing (seen in the same transaction)", before, _snapshot(tx))
            tx.reserve(_booking("b4", at(14), at(15)), now=at(8))
            tx.commit()

        _in(storage, "alpha", work, commit=False)
        after = _state(storage, "alpha")
        _expect(
            "after refused calls the transaction goes on and commits its later writes",
            [stored, _booking("b4", at(14), at(15))],
            after["bookings"],
        )


@_check
def check_refused_append_outbox_writes_nothing(factory: StorageFactory) -> None:
    """
    `append_outbox` refused for one id (it exists, or repeats in the call) appends none of the call's messages.

    The transaction goes on: its later writes commit, and the refused call's other ids are still free.
    """
    with _made(factory) as storage:
        _in(storage, "alpha", lambda tx: tx.append_outbox([_message("m1")]))
        before = _state(storage, "alpha")

        def work(tx: StorageTransaction) -> None:
            refusals: list[tuple[str, list[OutboxMessage]]] = [
                ("new messages around one whose id exists", [_message("m2"), _message("m1"), _message("m3")]),
                ("one new id twice", [_message("m2"), _message("m2")]),
            ]
            for what, messages in refusals:
                _raises(
                    f"append_outbox of {what} raises StorageError",
                    StorageError,
                    functools.partial(tx.append_outbox, messages),
                )
                _expect(f"append_outbox of {what} writes nothing (seen in the same transaction)", before, _snapshot(tx))
            tx.append_outbox([_message("m3"), _message("m2")])
            tx.commit()

        _in(storage, "alpha", work, commit=False)
        _expect(
            "after a refused append_outbox the transaction goes on and commits its later messages",
            [_message("m1"), _message("m3"), _message("m2")],
            _state(storage, "alpha")["outbox"],
        )


_ISOLATION_QUERIES: Final = (
    BookingQuery(resource_id="r1"),
    BookingQuery(customer_id="c1"),
    BookingQuery(statuses=frozenset({BookingStatus.CONFIRMED})),
    BookingQuery(statuses=frozenset({BookingStatus.PRE_BOOKING})),
    BookingQuery(period=Interval(at(12), at(13))),
    BookingQuery(source="partner"),
    BookingQuery(external_ref="x1"),
    BookingQuery(service_id="s1"),
    BookingQuery(created=Interval(CREATED, CREATED + timedelta(seconds=1))),
    BookingQuery(blocked=Interval(at(12), at(13))),
)
"""One query per filter of `BookingQuery`, each matching a booking of each tenant in `check_tenant_isolation`."""
_OUTBOX_FILTERS: Final = ((True, None), (False, "b1"), (True, "b1"), (False, "b2"), (True, "b2"))
"""``(pending_only, booking_id)`` of the filtered ``list_outbox`` calls of `check_tenant_isolation`."""


@_check
def check_tenant_isolation(factory: StorageFactory) -> None:  # noqa: PLR0915 - one clause a statement, read in order
    """
    Two tenants with the same ids never see nor change each other's data (research note S1).

    Every read is filtered by tenant, whatever else it filters on: `find_bookings` by each field of a
    `BookingQuery`, and `list_outbox` by booking and pending state (an index on the booking id alone, a fast path
    that forgets the tenant, shows another tenant's messages).
    """
    with _made(factory) as storage:
        made: dict[str, list[Booking]] = {}
        queued: dict[str, list[OutboxMessage]] = {}
        for tenant in ("alpha", "beta"):
            hold = _booking("b2", at(12), at(13), status=BookingStatus.PRE_BOOKING, hold_until=at(9), notes=tenant)
            firm = _booking("b1", at(10), at(11), notes=tenant, customer_id="c1", source="partner", external_ref="x1")
            made[tenant] = [firm, hold]
            queued[tenant] = [
                _message("m1", payload=f'"{tenant}"'),
                _message("m2", booking_id="b2", payload=f'"{tenant}"', attempts=1, sent_at=at(9)),
            ]

            def work(
                tx: StorageTransaction,
                tenant: str = tenant,
                firm: Booking = firm,
                hold: Booking = hold,
                messages: list[OutboxMessage] = queued[tenant],
            ) -> None:
                tx.put_business(_business(f"Business {tenant}"))
                tx.put_resource(Resource("r1", f"Box of {tenant}"))
                tx.put_service(_service("s1", f"Wash of {tenant}"))
                tx.reserve(firm, now=at(8))  # capacity 1 in each tenant: the other tenant's booking does not count
                tx.reserve(hold, now=at(8))
                tx.append_transitions([_record("b1", reason=tenant)])
                tx.append_outbox(messages)
                tx.put_idempotency(IdempotencyRecord("k1", f"hash-{tenant}", "b1", tenant, at(8)))

            _in(storage, tenant, work)

        for tenant in ("alpha", "beta"):
            with storage.transaction(tenant) as tx:
                own = f"tenant {tenant} reads only its own"
                _expect(f"{own} business", _business(f"Business {tenant}"), tx.get_business())
                _expect(f"{own} resource", Resource("r1", f"Box of {tenant}"), tx.get_resource("r1"))
                _expect(f"{own} resources", [Resource("r1", f"Box of {tenant}")], tx.list_resources())
                _expect(f"{own} service", _service("s1", f"Wash of {tenant}"), tx.get_service("s1"))
                _expect(f"{own} services", [_service("s1", f"Wash of {tenant}")], tx.list_services())
                _expect(f"{own} booking", made[tenant][0], tx.get_booking("b1"))
                _expect(f"{own} bookings (find_bookings)", made[tenant], tx.find_bookings(BookingQuery()))
                for query in _ISOLATION_QUERIES:
                    _expect(
                        f"{own} bookings (find_bookings({query!r}))",
                        [b for b in made[tenant] if query.matches(b)],
                        tx.find_bookings(query),
                    )
                window = Interval(at(0), at(24))
                _expect(
                    f"{own} loads",
                    _expected_loads(made[tenant], ["r1"], window),
                    _sorted_loads(tx.loads(["r1"], window)),
                )
                _expect(f"{own} due holds", made[tenant][1:], tx.due_holds(at(20)))
                _expect(f"{own} transitions", [_record("b1", reason=tenant)], tx.list_transitions())
                _expect(f"{own} transitions of a booking", [_record("b1", reason=tenant)], tx.list_transitions("b1"))
                _expect(f"{own} outbox", queued[tenant], tx.list_outbox())
                for pending_only, booking_id in _OUTBOX_FILTERS:
                    _expect(
                        f"{own} outbox (list_outbox(pending_only={pending_only}, booking_id={booking_id!r}))",
                        [
                            m
                            for m in queued[tenant]
                            if (booking_id is None or m.booking_id == booking_id)
                            and not (pending_only and m.sent_at is not None)
                        ],
                        tx.list_outbox(pending_only=pending_only, booking_id=booking_id),
                    )
                _expect(
                    f"{own} idempotency record",
                    IdempotencyRecord("k1", f"hash-{tenant}", "b1", tenant, at(8)),
                    tx.get_idempotency("k1"),
                )

        before = {tenant: _state(storage, tenant) for tenant in ("alpha", "beta")}
        firm = made["beta"][0]
        for what, call in [
            ("get_business", lambda tx: tx.get_business()),
            ("get_resource", lambda tx: tx.get_resource("r1")),
            ("get_service", lambda tx: tx.get_service("s1")),
            ("get_booking", lambda tx: tx.get_booking("b1")),
            (
                "update_booking",
                lambda tx: tx.update_booking(attrs.evolve(firm, notes="x", version=2), expected_version=1),
            ),
            ("update_outbox", lambda tx: tx.update_outbox(_message("m1", attempts=1))),
            ("lock_resources", lambda tx: tx.lock_resources(["r1"])),
            ("reserve", lambda tx: tx.reserve(_booking("b9", at(15), at(16)), now=at(8))),
        ]:
            _refused(
                f"in a third tenant, {what} with another tenant's ids raises NotFoundError",
                NotFoundError,
                storage,
                "gamma",
                call,
            )
        with storage.transaction("gamma") as tx:
            empty = "a third tenant sees nothing of the others"
            _expect(f"{empty} (find_bookings)", [], tx.find_bookings(BookingQuery()))
            _expect(f"{empty} (loads)", [], tx.loads(["r1"], Interval(at(0), at(24))))
            _expect(f"{empty} (due_holds)", [], tx.due_holds(at(20)))
            _expect(f"{empty} (list_transitions)", [], tx.list_transitions())
            _expect(f"{empty} (list_transitions of a booking)", [], tx.list_transitions("b1"))
            _expect(f"{empty} (list_outbox)", [], tx.list_outbox())
            for pending_only, booking_id in _OUTBOX_FILTERS:
                _expect(
                    f"{empty} (list_outbox(pending_only={pending_only}, booking_id={booking_id!r}))",
                    [],
                    tx.list_outbox(pending_only=pending_only, booking_id=booking_id),
                )
            for query in _ISOLATION_QUERIES:
                _expect(f"{empty} (find_bookings({query!r}))", [], tx.find_bookings(query))
            _expect(f"{empty} (get_idempotency)", None, tx.get_idempotency("k1"))
            tx.put_idempotency(IdempotencyRecord("k1", "hash-gamma", "b1", "gamma", at(8)))  # a key of its own
            tx.commit()
        for tenant in ("alpha", "beta"):
            _expect(f"nothing done in a third tenant changes tenant {tenant}", before[tenant], _state(storage, tenant))

        # A change in alpha leaves beta's booking with the same id alone, and frees time in alpha only.
        def cancel(tx: StorageTransaction) -> None:
            stored = tx.get_booking("b1")
            tx.update_booking(attrs.evolve(stored, status=BookingStatus.CANCELLED, version=2), expected_version=1)

        _in(storage, "alpha", cancel)
        _expect(
            "cancelling in alpha leaves beta's booking with the same id unchanged",
            before["beta"],
            _state(storage, "beta"),
        )
        _reserve(
            storage,
            "alpha",
            _booking("b3", at(10), at(11)),
            now=at(8),
            clause="a booking cancelled in alpha frees alpha's time",
        )
        _refused(
            "capacity is counted per tenant: beta's live booking still takes beta's r1",
            ConflictError,
            storage,
            "beta",
            lambda tx: tx.reserve(_booking("b3", at(10), at(11)), now=at(8)),
        )


@_check
def check_missing_ids_raise_not_found(factory: StorageFactory) -> None:
    """Every get and update of a missing id raises `NotFoundError`; lists and keyed reads are empty."""
    with _made(factory) as storage:
        _refused(
            "get_business before put_business raises NotFoundError",
            NotFoundError,
            storage,
            "alpha",
            lambda tx: tx.get_business(),
        )
        _setup(storage, "alpha", {"r1": 1})
        _reserve(storage, "alpha", _booking("b1", at(10), at(11)), now=at(8))
        for what, call in [
            ("get_resource", lambda tx: tx.get_resource("nope")),
            ("get_service", lambda tx: tx.get_service("nope")),
            ("get_booking", lambda tx: tx.get_booking("nope")),
            (
                "update_booking",
                lambda tx: tx.update_booking(_booking("nope", at(10), at(11), version=2), expected_version=1),
            ),
            ("update_outbox", lambda tx: tx.update_outbox(_message("nope"))),
            ("lock_resources", lambda tx: tx.lock_resources(["r1", "nope"])),
            (
                "reserve on a missing resource",
                lambda tx: tx.reserve(_booking("b2", at(12), at(13), resources=["nope"]), now=at(8)),
            ),
            (
                "reserve on a present and a missing resource",
                lambda tx: tx.reserve(_booking("b2", at(12), at(13), resources=["r1", "nope"]), now=at(8)),
            ),
        ]:
            _refused(f"{what} of a missing id raises NotFoundError", NotFoundError, storage, "alpha", call)
        with storage.transaction("alpha") as tx:
            _expect("get_idempotency of a missing key is None", None, tx.get_idempotency("nope"))
            _expect("loads of a missing resource is empty", [], tx.loads(["nope"], Interval(at(0), at(24))))
            _expect("loads of no resource is empty", [], tx.loads([], Interval(at(0), at(24))))
            _expect("list_transitions of a missing booking is empty", [], tx.list_transitions("nope"))
            _expect(
                "find_bookings of a missing resource is empty", [], tx.find_bookings(BookingQuery(resource_id="nope"))
            )


@_check
def check_lock_resources(factory: StorageFactory) -> None:
    """`lock_resources` accepts any order and repeats, and may be called again; reserve works after it."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 1})

        def work(tx: StorageTransaction) -> None:
            tx.lock_resources(["r2", "r1", "r2"])
            tx.lock_resources(["r1"])
            tx.lock_resources([])
            tx.reserve(_booking("b1", at(10), at(11), resources=["r2", "r1"]), now=at(8))

        _in(storage, "alpha", work)
        _expect(
            "a booking reserved after lock_resources is stored",
            ["b1"],
            _ids(storage, "alpha"),
        )


@_check
def check_not_found_names_the_smallest_missing_resource(factory: StorageFactory) -> None:
    """
    With several missing resources, the `NotFoundError` of `reserve` and `lock_resources` names the smallest.

    Smallest in code point order (PostgreSQL's "C" collation), the order locks are taken in, whatever order
    the booking names them in; ``details["resource_id"]`` is that id, and nothing is written.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        for ids, smallest in [(("zz", "aa"), "aa"), (("r1", "\u00e9", "b", "Z", "B"), "B")]:
            make = functools.partial(_booking, "x", at(10), at(11), resources=ids)
            works: list[tuple[str, Callable[[StorageTransaction], object]]] = [
                ("reserve", _reserving_made(make, now=at(8))),
                ("lock_resources", _locking(ids)),
            ]
            for what, work in works:
                raised = _refused(
                    f"{what} on missing {ids} raises NotFoundError", NotFoundError, storage, "alpha", work
                )
                _expect(
                    f"{what} on missing {ids} names the smallest missing id",
                    smallest,
                    getattr(raised, "details", {}).get("resource_id"),
                )
            if isinstance(storage, ReserveAndRecord):
                before = _state(storage, "alpha")
                raised = _raises(
                    f"reserve_and_record on missing {ids} raises NotFoundError",
                    NotFoundError,
                    _recording(storage, "alpha", make, now=at(8), version=_version(storage, "alpha")),
                )
                _expect(f"reserve_and_record on missing {ids} writes nothing", before, _state(storage, "alpha"))
                _expect(
                    f"reserve_and_record on missing {ids} names the smallest missing id",
                    smallest,
                    getattr(raised, "details", {}).get("resource_id"),
                )


@_check
def check_reserve_refuses_blocked_time_out_of_range(factory: StorageFactory) -> None:
    """
    `reserve` refuses a booking whose buffers reach outside 1970-2200 with `OutOfRangeError`, writing nothing.

    The booking's own interval may lie inside the range; the time it blocks must too, or its load could not be
    read back. A blocked span that ends exactly at a bound of the range is accepted. (The booking is built inside
    the call, so a `Booking` that refuses such buffers itself keeps this clause too.)
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        outside: list[tuple[str, Callable[[], Booking]]] = [
            ("before 1970", lambda: _booking("early", MIN_INSTANT, MIN_INSTANT + H, buffer_before=10 * M)),
            ("after 2200", lambda: _booking("late", MAX_INSTANT - H, MAX_INSTANT - 30 * M, buffer_after=H)),
        ]
        for what, make in outside:
            _refused(
                f"reserve of a booking whose buffer reaches {what} raises OutOfRangeError",
                OutOfRangeError,
                storage,
                "alpha",
                _reserving_made(make, now=at(8)),
            )
            if isinstance(storage, ReserveAndRecord):
                before = _state(storage, "alpha")
                _raises(
                    f"reserve_and_record of a booking whose buffer reaches {what} raises OutOfRangeError",
                    OutOfRangeError,
                    _recording(storage, "alpha", make, now=at(8), version=_version(storage, "alpha")),
                )
                _expect(
                    f"reserve_and_record of a booking reaching {what} writes nothing", before, _state(storage, "alpha")
                )
        edges = [
            _booking("first", MIN_INSTANT + 10 * M, MIN_INSTANT + H, buffer_before=10 * M),
            _booking("last", MAX_INSTANT - H, MAX_INSTANT - 30 * M, buffer_after=30 * M),
        ]
        for booking in edges:
            _reserve(
                storage, "alpha", booking, now=at(8), clause="a booking blocking time up to a bound of the range fits"
            )
        everything = Interval(MIN_INSTANT, MAX_INSTANT)
        with storage.transaction("alpha") as tx:
            _expect(
                "the loads of bookings blocking time up to the bounds read back",
                _expected_loads(edges, ["r1"], everything),
                _sorted_loads(tx.loads(["r1"], everything)),
            )


@_check
def check_put_replaces_and_keeps_creation_order(factory: StorageFactory) -> None:
    """put_* creates or replaces; list_* returns creation order, a replaced value keeping its place."""
    with _made(factory) as storage:

        def first(tx: StorageTransaction) -> None:
            for rid in ("r3", "r1", "r2"):
                tx.put_resource(Resource(rid, f"Box {rid}"))
            for sid in ("s3", "s1", "s2"):
                tx.put_service(_service(sid, f"Wash {sid}"))
            tx.put_business(_business("First"))

        _in(storage, "alpha", first)

        def replace(tx: StorageTransaction) -> None:
            tx.put_resource(Resource("r1", "Renamed", capacity=3))
            tx.put_service(_service("s1", "Renamed"))
            tx.put_resource(Resource("r0", "Newest"))
            tx.put_business(_business("Second"))

        _in(storage, "alpha", replace)
        with storage.transaction("alpha") as tx:
            resources = [
                Resource("r3", "Box r3"),
                Resource("r1", "Renamed", capacity=3),
                Resource("r2", "Box r2"),
                Resource("r0", "Newest"),
            ]
            _expect(
                "list_resources is in creation order; a replaced resource keeps its place",
                resources,
                tx.list_resources(),
            )
            _expect("put_resource replaces the stored resource", resources[1], tx.get_resource("r1"))
            services = [_service("s3", "Wash s3"), _service("s1", "Renamed"), _service("s2", "Wash s2")]
            _expect(
                "list_services is in creation order; a replaced service keeps its place", services, tx.list_services()
            )
            _expect("put_service replaces the stored service", services[1], tx.get_service("s1"))
            _expect("put_business replaces the business", _business("Second"), tx.get_business())


@_check
def check_reserve_refuses_over_capacity(factory: StorageFactory) -> None:
    """`reserve` raises `ConflictError` and writes nothing when any resource would go over capacity."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 2, "r3": UNLIMITED})
        _reserve(storage, "alpha", _booking("a", at(10), at(11)), now=at(8))
        for what, booking in [
            ("the same interval", _booking("b", at(10), at(11))),
            ("a partial overlap", _booking("b", at(10, 30), at(11, 30))),
            ("an interval inside", _booking("b", at(10, 15), at(10, 45))),
            ("an interval around", _booking("b", at(9), at(12))),
            ("a one-microsecond overlap", _booking("b", at(10, micro=-1), at(10, micro=1))),
            ("one full resource among free ones", _booking("b", at(10), at(11), resources=["r2", "r1", "r3"])),
        ]:
            _refused(
                f"reserve of {what} on a full resource raises ConflictError",
                ConflictError,
                storage,
                "alpha",
                _reserving(booking, now=at(8)),
            )
        _reserve(storage, "alpha", _booking("c", at(10), at(11), resources=["r2"]), now=at(8))
        _reserve(storage, "alpha", _booking("d", at(10, 30), at(11, 30), resources=["r2"]), now=at(8))
        _refused(
            "reserve counts units: a third unit on a resource of capacity 2 raises ConflictError",
            ConflictError,
            storage,
            "alpha",
            lambda tx: tx.reserve(_booking("e", at(10, 30), at(10, 45), resources=["r2"]), now=at(8)),
        )
        _reserve(storage, "alpha", _booking("f", at(13), at(14), resources=["r2"], units=2), now=at(8))
        _refused(
            "reserve counts the booking's own units",
            ConflictError,
            storage,
            "alpha",
            lambda tx: tx.reserve(_booking("g", at(15), at(16), resources=["r2"], units=3), now=at(8)),
        )
        for index in range(5):
            _reserve(storage, "alpha", _booking(f"u{index}", at(10), at(11), resources=["r3"], units=7), now=at(8))
        ids = sorted(_ids(storage, "alpha"))
        _expect(
            "accepted bookings are stored, refused ones are not",
            ["a", "c", "d", "f", "u0", "u1", "u2", "u3", "u4"],
            ids,
        )


@_check
def check_reserve_adds_up_a_bookings_own_units(factory: StorageFactory) -> None:
    """A booking that takes one resource for several of its needs takes the sum of their units there."""

    def taking(booking_id: str, resources: Sequence[Sequence[str]], units: Sequence[int]) -> Booking:
        return Booking(
            booking_id,
            "s1",
            at(10),
            at(11),
            tuple(Assignment(n, "", tuple(rids)) for n, rids in enumerate(resources)),
            tuple(units),
            BookingStatus.CONFIRMED,
            CREATED,
        )

    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 3, "r3": UNLIMITED})
        _refused(
            "reserve of a booking taking a capacity-1 resource for two needs raises ConflictError",
            ConflictError,
            storage,
            "alpha",
            _reserving(taking("twice", [["r1"], ["r1"]], [1, 1]), now=at(8)),
        )
        _refused(
            "reserve of a booking taking 2 + 2 units of a capacity-3 resource raises ConflictError",
            ConflictError,
            storage,
            "alpha",
            _reserving(taking("four", [["r2"], ["r2", "r3"]], [2, 2]), now=at(8)),
        )
        _reserve(storage, "alpha", taking("three", [["r2"], ["r2", "r3"]], [2, 1]), now=at(8))
        _refused(
            "a booking's summed units count against the next one",
            ConflictError,
            storage,
            "alpha",
            _reserving(_booking("one-more", at(10, 30), at(10, 45), resources=["r2"]), now=at(8)),
        )
        _expect(
            "loads report each need's units of a booking on one resource",
            [(("three", "r2", 2)), ("three", "r2", 1)],
            sorted(
                (
                    (ld.booking_id, ld.resource_id, ld.units)
                    for ld in _in(storage, "alpha", lambda tx: tx.loads(["r2"], Interval(at(9), at(12))), commit=False)
                ),
                key=lambda t: -t[2],
            ),
        )


def _version(storage: Storage, tenant: str) -> int:
    def read(tx: StorageTransaction) -> int:
        return tx.catalogue_version() if isinstance(tx, CatalogueVersions) else 0

    return _in(storage, tenant, read, commit=False)


@_check
def check_catalogue_versions(factory: StorageFactory) -> None:
    """
    ``catalogue_version`` (optional) changes with every committed catalogue write, and never comes back.

    The engine caches its catalogue by this version and books from the cache while the version stays the
    same, so a version that does not move after a write lets it book on a stale catalogue (a closed day, a
    deleted service), and one handed out twice (a counter that a rolled-back write advanced, then the next
    write advanced again to the same number) does the same once. Reading does not move it. An adapter
    without the capability has nothing to keep here: the engine reads its catalogue afresh every time.
    """
    with _made(factory) as storage:
        if not _in(storage, "alpha", lambda tx: isinstance(tx, CatalogueVersions), commit=False):
            _not_offered(
                "check_catalogue_versions",
                "catalogue_version() on its transactions",
                "the engine reads the catalogue every call",
            )
            return
        _setup(storage, "alpha", {"r1": 1})
        seen = [_version(storage, "alpha")]
        _expect("reading the version does not change it", seen[0], _version(storage, "alpha"))
        writes: list[tuple[str, Callable[[StorageTransaction], None]]] = [
            ("put_business of a changed business", lambda tx: tx.put_business(_business("Closed on Tuesdays"))),
            ("put_resource of a new resource", lambda tx: tx.put_resource(Resource("r2", "Box 2"))),
            ("put_resource replacing one", lambda tx: tx.put_resource(Resource("r1", "Box 1", capacity=2))),
            ("put_service of a new service", lambda tx: tx.put_service(_service("s2", "Polish"))),
            ("put_service replacing one", lambda tx: tx.put_service(_service("s1", "Wash and dry"))),
        ]
        for what, write in writes:
            _in(storage, "alpha", write)
            now = _version(storage, "alpha")
            if now in seen:
                msg = (
                    f"after a committed {what}, catalogue_version is {now!r}, a version readers saw before "
                    f"({seen!r}): an engine that cached the catalogue at that version would keep booking on it"
                )
                raise AssertionError(msg)
            seen.append(now)

        def write_and_read(tx: StorageTransaction) -> int:
            tx.put_resource(Resource("r3", "Box 3"))
            return tx.catalogue_version()  # type: ignore[attr-defined, no-any-return]

        doomed = _in(storage, "alpha", write_and_read, commit=False)
        _in(storage, "alpha", lambda tx: tx.put_resource(Resource("r4", "Box 4")))
        after = _version(storage, "alpha")
        if after == doomed or after in seen:
            msg = (
                f"catalogue_version {after!r}, after a committed write, was seen before: inside a transaction that "
                f"rolled back ({doomed!r}) or earlier ({seen!r}); a version is never handed out twice"
            )
            raise AssertionError(msg)


@_check
def check_reserve_and_record(factory: StorageFactory) -> None:
    """
    `reserve_and_record` (optional) writes what `reserve` and the appends write, or nothing when it refuses.

    It is one committed transaction, which saves the idempotency record it is given too; it refuses a full
    resource, a missing one, a stale catalogue version, an outbox id that exists and an idempotency key that
    exists, in that order, writing nothing. An adapter without the capability has nothing to keep here.
    """
    with _made(factory) as storage, _made(MemoryStorage) as reference:
        if not isinstance(storage, ReserveAndRecord):
            _not_offered(
                "check_reserve_and_record", "reserve_and_record()", "the engine drives it through transactions"
            )
            return
        for each in (storage, reference):
            _setup(each, "alpha", {"r1": 1, "r2": 2})
            _setup(each, "beta", {"r1": 1})
        held = _booking("held", at(10), at(11), status=BookingStatus.PRE_BOOKING, hold_until=at(9))
        firm = _booking("firm", at(12), at(13), resources=["r1", "r2"], buffer_after=15 * M)

        def saved(key: str | None, booking: Booking, now: datetime) -> IdempotencyRecord | None:
            return None if key is None else IdempotencyRecord(key, f"hash-{key}", booking.id, f'"{booking.id}"', now)

        def at_once(
            target: Storage,
            booking: Booking,
            *,
            now: datetime,
            messages: Sequence[str] = ("m1",),
            key: str | None = None,
        ) -> None:
            records = [_record(booking.id, Action.HOLD if booking.status is BookingStatus.PRE_BOOKING else Action.BOOK)]
            outbox = [_message(m, booking_id=booking.id) for m in messages]
            target.reserve_and_record(  # type: ignore[attr-defined]
                "alpha",
                booking,
                now=now,
                transitions=records,
                outbox=outbox,
                catalogue_version=_version(target, "alpha"),
                idempotency=saved(key, booking, now),
            )

        def one_by_one(
            booking: Booking, *, now: datetime, messages: Sequence[str] = ("m1",), key: str | None = None
        ) -> None:
            def work(tx: StorageTransaction) -> None:
                tx.reserve(booking, now=now)
                action = Action.HOLD if booking.status is BookingStatus.PRE_BOOKING else Action.BOOK
                tx.append_transitions([_record(booking.id, action)])
                tx.append_outbox([_message(m, booking_id=booking.id) for m in messages])
                record = saved(key, booking, now)
                if record is not None:
                    tx.put_idempotency(record)

            _in(reference, "alpha", work)

        at_once(storage, held, now=at(8))
        one_by_one(held, now=at(8))
        at_once(storage, firm, now=at(8), messages=("m2", "m3"), key="k1")
        one_by_one(firm, now=at(8), messages=("m2", "m3"), key="k1")
        _expect(
            "reserve_and_record writes what reserve and the appends write",
            _state(reference, "alpha"),
            _state(storage, "alpha"),
        )
        _expect("reserve_and_record writes in its own tenant only", _state(reference, "beta"), _state(storage, "beta"))

        free = _booking("x", at(15), at(16))
        refusals: list[tuple[str, type[BaseException], Booking, datetime, Sequence[str], int, str | None]] = [
            (
                "of a booking on a full resource",
                ConflictError,
                _booking("x", at(10, 30), at(11)),
                at(8),
                ("m4",),
                0,
                None,
            ),
            (
                "of 2 units where 1 of 2 is taken (by a buffer)",
                ConflictError,
                _booking("x", at(13), at(14), resources=["r2"], units=2),
                at(8),
                ("m4",),
                0,
                None,
            ),
            (
                "of a booking on a missing resource",
                NotFoundError,
                _booking("x", at(15), at(16), resources=["ghost"]),
                at(8),
                ("m4",),
                0,
                None,
            ),
            ("at a stale catalogue version", CatalogueChangedError, free, at(8), ("m4",), 1, None),
            ("with an outbox id that exists", StorageError, free, at(8), ("m1",), 0, None),
            ("with an idempotency key that exists", ConcurrencyError, free, at(8), ("m4",), 0, "k1"),
            (
                "on a full resource with a key that exists",
                ConflictError,
                _booking("x", at(10, 30), at(11)),
                at(8),
                ("m4",),
                0,
                "k1",
            ),
            ("with an outbox id and a key that exist", StorageError, free, at(8), ("m1",), 0, "k1"),
        ]
        for what, error, booking, now, messages, skew, key in refusals:
            before = _state(storage, "alpha")
            records = [_record(booking.id, Action.BOOK)]
            outbox = [_message(m, booking_id=booking.id) for m in messages]
            version = _version(storage, "alpha") + skew * 10**6
            keyed = saved(key, booking, now)

            def call(
                b: Booking = booking,
                r: list[TransitionRecord] = records,
                o: list[OutboxMessage] = outbox,
                v: int = version,
                n: datetime = now,
                k: IdempotencyRecord | None = keyed,
            ) -> None:
                storage.reserve_and_record(
                    "alpha", b, now=n, transitions=r, outbox=o, catalogue_version=v, idempotency=k
                )

            _raises(f"reserve_and_record {what} raises {error.__name__}", error, call)
            _expect(f"reserve_and_record {what} writes nothing", before, _state(storage, "alpha"))

        # at the hold's expiry the hold no longer counts; the new booking is written over it (with a new key)
        over = _booking("over", at(10), at(11))
        at_once(storage, over, now=at(9), messages=("m5",), key="k2")
        one_by_one(over, now=at(9), messages=("m5",), key="k2")
        _expect(
            "reserve_and_record ignores a lapsed hold, as reserve does",
            _state(reference, "alpha"),
            _state(storage, "alpha"),
        )


@_check
def check_reserve_accepts_back_to_back(factory: StorageFactory) -> None:
    """Intervals are half-open: ``[10, 11)`` and ``[11, 12)`` both fit on a resource of capacity 1."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        for booking in (
            _booking("a", at(10), at(11)),
            _booking("b", at(11), at(12)),
            _booking("c", at(9), at(10)),
            _booking("d", at(12), at(12, micro=1)),
        ):
            _reserve(storage, "alpha", booking, now=at(8), clause="a booking that starts where another ends fits")
        _expect(
            "back-to-back bookings are all stored",
            ["c", "a", "b", "d"],
            _ids(storage, "alpha"),
        )


@_check
def check_reserve_counts_buffers(factory: StorageFactory) -> None:
    """Buffers widen the time a booking blocks, on both sides, for stored and new bookings alike."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        _reserve(storage, "alpha", _booking("a", at(10), at(11), buffer_after=10 * M), now=at(8))
        refused = [
            ("inside a stored booking's buffer after", _booking("x", at(11), at(11, 30))),
            (
                "whose buffer before reaches into a stored booking",
                _booking("x", at(11, 5), at(11, 30), buffer_before=10 * M),
            ),
            ("whose own buffer after reaches a stored booking", _booking("x", at(9), at(9, 55), buffer_after=10 * M)),
            (
                "whose buffer before overlaps a stored booking's buffer after by a microsecond",
                _booking("x", at(11, 15), at(11, 30), buffer_before=5 * M + US),
            ),
        ]
        for what, booking in refused:
            _refused(
                f"reserve of a booking {what} raises ConflictError",
                ConflictError,
                storage,
                "alpha",
                _reserving(booking, now=at(8)),
            )
        for booking in (
            _booking("b", at(11, 10), at(11, 30)),  # starts where a's buffer ends
            _booking("c", at(9), at(9, 50), buffer_after=10 * M),  # its buffer ends where a starts
            _booking("d", at(12), at(12, 30), buffer_before=30 * M),  # its buffer starts where b ends
        ):
            _reserve(storage, "alpha", booking, now=at(8), clause="bookings whose blocked spans only touch fit")
        _expect(
            "bookings whose blocked spans only touch are all stored",
            ["c", "a", "b", "d"],
            _ids(storage, "alpha"),
        )


@_check
def check_holds_count_until_they_expire(factory: StorageFactory) -> None:
    """A pre-booking counts while ``now < hold_until``; at ``now == hold_until`` it no longer does."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 1})
        expiry = at(9, micro=123_457)
        hold = _booking("h", at(10), at(11), status=BookingStatus.PRE_BOOKING, hold_until=expiry)
        _reserve(storage, "alpha", hold, now=at(8))
        for now in (at(8), expiry - US):
            _refused(
                f"an unexpired hold counts against capacity (now = hold_until - {expiry - now})",
                ConflictError,
                storage,
                "alpha",
                _reserving(_booking("x", at(10), at(11)), now=now),
            )
        _reserve(
            storage,
            "alpha",
            _booking("x", at(10), at(11)),
            now=expiry,
            clause="at now == hold_until the hold no longer counts",
        )
        _reserve(
            storage,
            "alpha",
            _booking("h2", at(10), at(11), resources=["r2"], status=BookingStatus.PRE_BOOKING, hold_until=expiry),
            now=at(8),
        )
        _reserve(
            storage,
            "alpha",
            _booking("y", at(10, 30), at(11), resources=["r2"]),
            now=expiry + H,
            clause="an expired hold no longer counts",
        )
        ids = sorted(_ids(storage, "alpha"))
        _expect("an expired hold no longer blocks, at hold_until exactly and later", ["h", "h2", "x", "y"], ids)


@_check
def check_dead_bookings_take_no_time(factory: StorageFactory) -> None:
    """Cancelled, expired, completed and no-show bookings take no capacity, however they were written."""
    with _made(factory) as storage:
        dead = [s for s in BookingStatus if s not in LIVE_STATUSES]
        _setup(storage, "alpha", {f"r{i}": 1 for i in range(2 * len(dead))})
        for index, status in enumerate(dead):
            updated, direct = f"r{2 * index}", f"r{2 * index + 1}"
            _reserve(storage, "alpha", _booking(f"live-{status}", at(10), at(11), resources=[updated]), now=at(8))

            def end(tx: StorageTransaction, status: BookingStatus = status) -> None:
                stored = tx.get_booking(f"live-{status}")
                tx.update_booking(attrs.evolve(stored, status=status, version=2), expected_version=1)

            _in(storage, "alpha", end)
            _reserve(
                storage,
                "alpha",
                _booking(f"dead-{status}", at(10), at(11), resources=[direct], status=status),
                now=at(8),
            )
            for rid in (updated, direct):
                _reserve(
                    storage,
                    "alpha",
                    _booking(f"new-{rid}", at(10), at(11), resources=[rid]),
                    now=at(8),
                    clause=f"a {status} booking takes no capacity",
                )
        with storage.transaction("alpha") as tx:
            loads = tx.loads([f"r{i}" for i in range(2 * len(dead))], Interval(at(0), at(24)))
        _expect(
            "loads lists only live bookings",
            sorted(f"new-r{i}" for i in range(2 * len(dead))),
            sorted(ld.booking_id for ld in loads),
        )


@_check
def check_reserve_honours_exclude(factory: StorageFactory) -> None:
    """Bookings named in ``exclude`` do not count; other names in it change nothing."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        _reserve(storage, "alpha", _booking("a", at(10), at(11)), now=at(8))
        _refused(
            "exclude naming another booking does not hide the one in the way",
            ConflictError,
            storage,
            "alpha",
            lambda tx: tx.reserve(_booking("b", at(10), at(11)), now=at(8), exclude=["zzz", "b"]),
        )
        _reserve(
            storage,
            "alpha",
            _booking("b", at(10, 30), at(11, 30)),
            now=at(8),
            exclude=["a"],
            clause="a booking named in exclude does not count",
        )
        _refused(
            "exclude naming one of two bookings in the way does not hide the other",
            ConflictError,
            storage,
            "alpha",
            lambda tx: tx.reserve(_booking("c", at(10, 45), at(11, 15)), now=at(8), exclude=["b"]),
        )
        _reserve(
            storage,
            "alpha",
            _booking("c", at(10, 45), at(11, 15)),
            now=at(8),
            exclude=["zzz", "b", "a"],
            clause="every booking named in exclude does not count, not only the first",
        )
        ids = _ids(storage, "alpha")
        _expect("a booking excluded from the count is still stored", ["a", "b", "c"], ids)


@_check
def check_reserve_replaces_a_booking_with_the_same_id(factory: StorageFactory) -> None:
    """Reserving an id that exists replaces that booking (a reschedule); its old time does not count."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 1})
        first = _booking("a", at(10), at(11))
        _reserve(storage, "alpha", first, now=at(8))
        moved = attrs.evolve(first, start=at(10, 30), end=at(11, 30), version=2, reschedules=1)
        _reserve(storage, "alpha", moved, now=at(8), clause="a booking's own stored version does not count")
        window = Interval(at(0), at(24))
        with storage.transaction("alpha") as tx:
            _expect("reserve of an existing id replaces the booking", moved, tx.get_booking("a"))
            _expect("the replaced booking is stored once", [moved], tx.find_bookings(BookingQuery()))
            _expect("only the new time is loaded", moved.loads(), _sorted_loads(tx.loads(["r1", "r2"], window)))
        elsewhere = attrs.evolve(moved, assignments=(Assignment(0, "", ("r2",)),), version=3)
        _reserve(storage, "alpha", elsewhere, now=at(8), clause="a booking may move to another resource")
        with storage.transaction("alpha") as tx:
            _expect("a booking moved to another resource leaves the first one free", [], tx.loads(["r1"], window))
            _expect("a booking moved to another resource loads it", elsewhere.loads(), tx.loads(["r2"], window))
            _expect(
                "find_bookings by the old resource no longer finds it",
                [],
                tx.find_bookings(BookingQuery(resource_id="r1")),
            )
            _expect(
                "find_bookings by the new resource finds it",
                [elsewhere],
                tx.find_bookings(BookingQuery(resource_id="r2")),
            )
        _reserve(
            storage, "alpha", _booking("b", at(10), at(11)), now=at(8), clause="a moved booking frees its old time"
        )
        _refused(
            "a replacement that does not fit raises ConflictError and keeps the stored booking",
            ConflictError,
            storage,
            "alpha",
            lambda tx: tx.reserve(
                attrs.evolve(elsewhere, assignments=(Assignment(0, "", ("r1",)),), version=4), now=at(8)
            ),
        )


@_check
def check_update_booking(factory: StorageFactory) -> None:
    """`update_booking` checks ``expected_version`` (else `ConcurrencyError`) and never moves a booking."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 2, "r2": 1})
        stored = _booking("a", at(10), at(11), customer_id="c1")
        _reserve(storage, "alpha", stored, now=at(8))
        for version in (0, 2, 7):
            _refused(
                f"update_booking with expected_version={version} (stored 1) raises ConcurrencyError",
                ConcurrencyError,
                storage,
                "alpha",
                _updating(attrs.evolve(stored, notes="x", version=version + 1), expected_version=version),
            )
        changed = attrs.evolve(
            stored,
            status=BookingStatus.PAID,
            notes="paid",
            customer_id="c2",
            payments=(Payment("p1", PaymentKind.PAYMENT, Money("20.00", "EUR"), at(9)),),
            version=2,
        )
        _in(storage, "alpha", lambda tx: tx.update_booking(changed, expected_version=1))
        _expect(
            "update_booking with the right version replaces the booking",
            [changed],
            _state(storage, "alpha")["bookings"],
        )
        _refused(
            "update_booking with the version it replaced raises ConcurrencyError",
            ConcurrencyError,
            storage,
            "alpha",
            lambda tx: tx.update_booking(attrs.evolve(changed, notes="late", version=2), expected_version=1),
        )
        for what, moved in [
            ("moving its start", attrs.evolve(changed, start=at(9), version=3)),
            ("moving its end", attrs.evolve(changed, end=at(12), version=3)),
            ("changing its resources", attrs.evolve(changed, assignments=(Assignment(0, "", ("r2",)),), version=3)),
            ("changing its units", attrs.evolve(changed, units=(2,), version=3)),
        ]:
            _refused(
                f"update_booking {what} raises InvalidInputError (use reserve)",
                InvalidInputError,
                storage,
                "alpha",
                _updating(moved, expected_version=2),
            )
        with storage.transaction("alpha") as tx:
            _expect("find_bookings sees the update", [changed], tx.find_bookings(BookingQuery(customer_id="c2")))
            _expect("find_bookings forgets the old values", [], tx.find_bookings(BookingQuery(customer_id="c1")))

        # Updates in a row, each at the version the last one wrote: a storage that checks one version (a column)
        # but stores another (the document) accepts the first update and refuses the second.
        latest = changed
        for notes in ("checked in", "reviewed"):
            following = attrs.evolve(latest, notes=notes, version=latest.version + 1)
            _update(
                storage,
                "alpha",
                following,
                expected_version=latest.version,
                clause=f"update_booking at the version the previous update wrote ({latest.version}) is accepted",
            )
            latest = following

        def twice(tx: StorageTransaction) -> Booking:
            first = attrs.evolve(latest, status=BookingStatus.COMPLETED, version=latest.version + 1)
            tx.update_booking(first, expected_version=latest.version)
            second = attrs.evolve(first, notes="two updates in one transaction", version=first.version + 1)
            tx.update_booking(second, expected_version=first.version)
            return second

        try:
            latest = _in(storage, "alpha", twice)
        except SlotEngineError as exc:
            msg = (
                "two update_booking calls in a row in one transaction, the second at the version the first wrote, "
                f"are accepted: the second raised {type(exc).__name__}: {exc}"
            )
            raise AssertionError(msg) from exc
        _expect("updates in a row leave the last one stored", [latest], _state(storage, "alpha")["bookings"])
        _refused(
            f"update_booking at a version before the last update ({latest.version - 1}) raises ConcurrencyError",
            ConcurrencyError,
            storage,
            "alpha",
            _updating(attrs.evolve(latest, notes="late", version=latest.version), expected_version=latest.version - 1),
        )


@_check
def check_loads(factory: StorageFactory) -> None:
    """`loads` returns every load of live bookings on the resources whose buffered span overlaps the window."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": UNLIMITED, "r2": UNLIMITED, "r3": UNLIMITED})
        pre = BookingStatus.PRE_BOOKING
        bookings = [
            _booking("a", at(10), at(11)),
            _booking("b", at(11), at(12), status=BookingStatus.PAID, buffer_before=15 * M),
            _booking("c", at(12), at(13), status=pre, hold_until=at(7)),  # expired at now, still a load
            _booking("d", at(10), at(11), status=BookingStatus.CANCELLED),
            _booking("e", at(9), at(10), buffer_after=30 * M),
            _booking("f", at(10), at(11), resources=["r1", "r2"], units=2),
            _booking("g", at(13), at(14), status=BookingStatus.COMPLETED),
            _booking("h", at(10), at(11), resources=["r2"]),
            _booking("i", at(14), at(15, micro=1), status=pre, hold_until=at(23)),
            _booking("j", at(0, day=-3), at(0, day=3), resources=["r3"]),  # a long booking that started long ago
        ]
        for booking in bookings:
            _reserve(storage, "alpha", booking, now=at(8))
        windows = [
            Interval(at(10), at(11)),
            Interval(at(10, 30), at(10, 31)),
            Interval(at(8), at(9)),
            Interval(at(8), at(9, micro=1)),
            Interval(at(10, 30, micro=-1), at(10, 30)),
            Interval(at(10, 30), at(10, 45)),
            Interval(at(12, 59), at(13)),
            Interval(at(15), at(16)),
            Interval(at(15, micro=-1), at(16)),
            Interval(at(0), at(0, day=1)),
            Interval(at(0, day=2), at(1, day=2)),
        ]
        choices: list[list[str]] = [["r1"], ["r2"], ["r3"], ["r1", "r2", "r3"], ["r2", "nope"], []]
        with storage.transaction("alpha") as tx:
            for window in windows:
                for rids in choices:
                    _expect(
                        f"loads({rids}, [{window.start:%H:%M:%S.%f}, {window.end:%H:%M:%S.%f}) on day "
                        f"{(window.start - DAY0).days}) lists every live booking's load whose buffered span "
                        "overlaps the window, holds whatever their expiry",
                        _expected_loads(bookings, rids, window),
                        _sorted_loads(tx.loads(rids, window)),
                    )


def _varied_bookings() -> list[Booking]:
    """
    Bookings that differ in every field a `BookingQuery` filters on, with ties in start, and buffers.

    A query's period is matched against the booked interval only: the buffers around it are time the
    booking blocks, not time it is booked for. Creation times tie too, and differ by a microsecond across a
    second (the texts an SQL storage may compare: ``...:00+00:00`` against ``...:59.999999+00:00``).
    """
    made = []
    for index, (status, resources, customer, source, ref, service, start, buffers, created) in enumerate(
        itertools.islice(
            zip(
                itertools.cycle(BookingStatus),
                itertools.cycle([("r1",), ("r2",), ("r1", "r2"), ("r3",)]),
                itertools.cycle(["c1", None, "c2", "a_c", "abc"]),
                itertools.cycle(["site", "partner", "Site"]),
                itertools.cycle([None, "x1", "x2"]),
                itertools.cycle(["s1", "s2"]),
                itertools.cycle([at(10), at(11), at(10), at(12, micro=1), at(9, 59, micro=999_999)]),
                itertools.cycle([(0, 0), (15, 0), (0, 45), (0, 0), (0, 0), (30, 30), (0, 0)]),
                itertools.cycle([CREATED, CREATED - US, CREATED + US, CREATED + H, CREATED, CREATED - 24 * H]),
                strict=False,
            ),
            23,
        )
    ):
        made.append(
            _booking(
                f"b{(index * 7) % 23:02d}",
                start,
                start + timedelta(minutes=15 * (1 + index % 4)),
                resources=resources,
                status=status,
                customer_id=customer,
                source=source,
                external_ref=ref,
                service_id=service,
                buffer_before=buffers[0] * M,
                buffer_after=buffers[1] * M,
                created_at=created,
            )
        )
    return made


@_check
def check_find_bookings(factory: StorageFactory) -> None:
    """
    `find_bookings` returns what `BookingQuery.matches` accepts, ordered by start, then id.

    A period matches the booked interval, a blocked window the interval with its buffers, and ``created`` the
    creation time; windows that only buffers reach tell the first two apart. Ties on start are ordered by id in
    code point order (binary, "C" collation): "Z1" < "a1" < "b00", which a case-insensitive collation reverses.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": UNLIMITED, "r2": UNLIMITED, "r3": UNLIMITED})
        bookings = [
            *_varied_bookings(),
            _booking("Z1", at(10), at(10, 30), resources=("r2",), customer_id="C1"),
            _booking("a1", at(10), at(10, 15), resources=("r3",)),
        ]
        _in(storage, "alpha", _reserving_all(bookings, now=at(8)))
        periods = [
            None,
            Interval(at(10), at(10, 15)),
            Interval(at(10, 15), at(11)),
            Interval(at(12), at(12, micro=1)),
            Interval(at(12, micro=1), at(12, micro=2)),
            # periods that only buffers reach, or buffers and intervals
            Interval(at(9, 30), at(9, 59, micro=999_999)),
            Interval(at(8), at(9, 59)),
            Interval(at(11, 45), at(12)),
        ]
        created = [
            Interval(CREATED, CREATED + US),
            Interval(CREATED - US, CREATED),
            Interval(CREATED + US, CREATED + H + US),
            Interval(CREATED - 24 * H, CREATED + 24 * H),
            Interval(CREATED + 2 * H, CREATED + 24 * H),
        ]
        queries = [
            BookingQuery(),
            *(BookingQuery(resource_id=r) for r in ("r1", "r2", "r3", "nope")),
            *(BookingQuery(customer_id=c) for c in ("c1", "c2", "a_c", "abc", "a%", "C1")),
            *(BookingQuery(statuses=frozenset(s)) for s in ([BookingStatus.PAID], LIVE_STATUSES, set(BookingStatus))),
            *(BookingQuery(period=p) for p in periods),
            *(BookingQuery(source=s) for s in ("site", "Site", "partner", "sit")),
            *(BookingQuery(external_ref=x) for x in ("x1", "x2", "x")),
            *(BookingQuery(service_id=s) for s in ("s1", "s2")),
            *(BookingQuery(created=c) for c in created),
            *(BookingQuery(blocked=p) for p in periods if p is not None),
            *(BookingQuery(blocked=p, resource_id=r) for p in periods[1:4] + periods[5:] for r in ("r1", "r2")),
            BookingQuery(blocked=periods[5], period=periods[1]),
            BookingQuery(created=created[0], statuses=LIVE_STATUSES, service_id="s1"),
            BookingQuery(resource_id="r1", customer_id="c1", statuses=LIVE_STATUSES, period=periods[2]),
            BookingQuery(resource_id="r2", source="partner", external_ref="x2", service_id="s2"),
            BookingQuery(statuses=frozenset(), period=periods[1]),
        ]
        with storage.transaction("alpha") as tx:
            for query in queries:
                expected = sorted((b for b in bookings if query.matches(b)), key=lambda b: (b.start, b.id))
                _expect(
                    f"find_bookings({query!r}) equals BookingQuery.matches over all bookings, by (start, id)",
                    expected,
                    tx.find_bookings(query),
                )


@_check
def check_due_holds(factory: StorageFactory) -> None:
    """`due_holds(now)` returns the pre-bookings with ``hold_until <= now``, oldest first (ties by id, code points)."""
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": UNLIMITED})
        expiry = at(9, 30, micro=1)
        pre = BookingStatus.PRE_BOOKING
        bookings = [
            _booking("h-late", at(10), at(11), status=pre, hold_until=expiry + US),
            _booking("h-now", at(11), at(12), status=pre, hold_until=expiry),
            _booking("h-b", at(9), at(10), status=pre, hold_until=at(9)),
            _booking("h-a", at(12), at(13), status=pre, hold_until=at(9)),
            _booking("H-c", at(14), at(15), status=pre, hold_until=at(9)),  # "H-c" < "h-a" in code point order
            _booking("h-early", at(13), at(14), status=pre, hold_until=expiry - US),
            _booking("firm", at(10), at(11)),
            _booking("gone", at(10), at(11), status=BookingStatus.EXPIRED),
        ]
        _in(storage, "alpha", _reserving_all(bookings, now=at(8)))
        by_name = {b.id: b for b in bookings}
        with storage.transaction("alpha") as tx:
            for now, names in [
                (at(8), []),
                (at(9) - US, []),
                (at(9), ["H-c", "h-a", "h-b"]),
                (expiry, ["H-c", "h-a", "h-b", "h-early", "h-now"]),
                (at(20), ["H-c", "h-a", "h-b", "h-early", "h-now", "h-late"]),
            ]:
                _expect(
                    f"due_holds({now:%H:%M:%S.%f}) lists holds with hold_until <= now, oldest first, ties by id "
                    "in code point order",
                    [by_name[n] for n in names],
                    tx.due_holds(now),
                )


@_check
def check_transition_log(factory: StorageFactory) -> None:
    """The transition log keeps every record, in the order written, per booking and in all."""
    with _made(factory) as storage:
        one = _record("b1")
        two = _record("b1", Action.CONFIRM, at=at(9), actor="manager:ann", reason="called")
        three = _record("b2", Action.BOOK)
        _in(storage, "alpha", lambda tx: tx.append_transitions([one, two]))
        _in(storage, "alpha", lambda tx: tx.append_transitions([three, one]))
        _in(storage, "alpha", lambda tx: tx.append_transitions([]))
        _in(storage, "alpha", lambda tx: tx.append_transitions([two]), commit=False)
        with storage.transaction("alpha") as tx:
            _expect(
                "list_transitions returns every record in the order written (repeats kept)",
                [one, two, three, one],
                tx.list_transitions(),
            )
            _expect(
                "list_transitions(booking_id) returns that booking's records in order",
                [one, two, one],
                tx.list_transitions("b1"),
            )
            _expect("list_transitions(booking_id) of another booking", [three], tx.list_transitions("b2"))


def _transitions_of(tx: StorageTransaction, booking_ids: Collection[str]) -> list[TransitionRecord]:
    """*tx*'s `TransitionsOf.list_transitions_of`, or, where it has none, the same records from the whole log."""
    if isinstance(tx, TransitionsOf):
        return tx.list_transitions_of(booking_ids)
    wanted = set(booking_ids)
    return [r for r in tx.list_transitions() if r.booking_id in wanted]


_LOG_IDS: Final = ("b1", "b2", "b3", "B1", "b'4", "b%5", "b_6", '["b7"]', "b\u00e9", "b\U0001f600")
"""Booking ids of the random logs: case, SQL quotes, ``LIKE`` wildcards, JSON and characters beyond ASCII apart."""


@_check
def check_transitions_of(factory: StorageFactory) -> None:
    """
    ``list_transitions_of`` (optional) returns the named bookings' records: the whole log's, in its order.

    On random logs of two tenants that use the same ids, it must give exactly the records of
    ``list_transitions()`` whose booking is named, in the order written, and so each booking's records as
    ``list_transitions(booking_id)`` gives them: an id named twice counts once, an unknown id or one of another
    tenant's adds nothing, no ids give nothing, a transaction sees its own appends and nobody sees those rolled
    back. 1,200 ids at once are answered as well (an adapter that binds a parameter per id must split them:
    SQLite may bind as few as 999 to a statement). An adapter without the capability has nothing to keep
    here: the engine asks ``list_transitions`` booking by booking.
    """
    with _made(factory) as storage:
        if not _in(storage, "alpha", lambda tx: isinstance(tx, TransitionsOf), commit=False):
            _not_offered(
                "check_transitions_of",
                "list_transitions_of() on its transactions",
                "the engine reads the log of each booking by itself",
            )
            return
        rng = random.Random(20_260_309)
        pool = [*_LOG_IDS, "ghost"]
        many = [f"b{i:04d}" for i in range(1_200)]

        def agrees(tx: StorageTransaction, tenant: str, named: Sequence[str], when: str) -> None:
            whole = tx.list_transitions()
            got = _transitions_of(tx, named)
            _expect(
                f"list_transitions_of({named!r}) in tenant {tenant!r} {when} gives the whole log's records of "
                "those bookings, in the order written",
                [r for r in whole if r.booking_id in set(named)],
                got,
            )
            for booking_id in dict.fromkeys(named):
                _expect(
                    f"list_transitions_of({named!r}) in tenant {tenant!r} {when} gives {booking_id!r}'s records as "
                    "list_transitions(booking_id) does",
                    tx.list_transitions(booking_id),
                    [r for r in got if r.booking_id == booking_id],
                )

        for round_ in range(4):
            for tenant in ("alpha", "beta"):
                records = [
                    _record(
                        rng.choice(_LOG_IDS),
                        rng.choice([Action.HOLD, Action.BOOK]),
                        at=at(8, minute=n),
                        reason=f"{tenant} {round_}.{n}",
                    )
                    for n in range(rng.randint(0, 8))
                ]
                committed = rng.random() < 0.75
                with storage.transaction(tenant) as tx:
                    tx.append_transitions(records)
                    agrees(tx, tenant, rng.sample(pool, 3), "after its own appends, before commit")
                    if committed:
                        tx.commit()
            for tenant in ("alpha", "beta"):
                with storage.transaction(tenant) as tx:
                    for _ in range(4):
                        named = rng.sample(pool, rng.randint(0, len(pool)))
                        agrees(tx, tenant, named + named[:2], f"after round {round_}")
                    agrees(tx, tenant, [], f"after round {round_}")
                    agrees(tx, tenant, [*_LOG_IDS[:3], *many, *_LOG_IDS[3:]], f"after round {round_}")


@_check
def check_outbox(factory: StorageFactory) -> None:
    """The outbox keeps messages in the order written; updates keep their place; pending means unsent, not failed."""
    with _made(factory) as storage:
        messages = [_message(f"m{i}", due_at=at(8) + i * M, booking_id="b2" if i == 4 else "b1") for i in range(1, 5)]
        _in(storage, "alpha", lambda tx: tx.append_outbox(messages[:3]))
        _in(storage, "alpha", lambda tx: tx.append_outbox(messages[3:]))
        sent = attrs.evolve(messages[1], attempts=1, sent_at=at(9))
        failed = attrs.evolve(messages[2], attempts=5, failed_at=at(9), last_error="gave up")
        retried = attrs.evolve(messages[0], attempts=2, last_error="timeout")

        def update(tx: StorageTransaction) -> None:
            for message in (sent, failed, retried):
                tx.update_outbox(message)

        _in(storage, "alpha", update)
        with storage.transaction("alpha") as tx:
            _expect(
                "list_outbox keeps the written order; an updated message keeps its place",
                [retried, sent, failed, messages[3]],
                tx.list_outbox(),
            )
            _expect(
                "list_outbox(pending_only=True) lists unsent, not failed messages in order",
                [retried, messages[3]],
                tx.list_outbox(pending_only=True),
            )
            _expect(
                "list_outbox(booking_id=...) lists that booking's messages only, in order",
                [retried, sent, failed],
                tx.list_outbox(booking_id="b1"),
            )
            _expect(
                "list_outbox(pending_only=True, booking_id=...) lists that booking's pending messages only",
                [retried],
                tx.list_outbox(pending_only=True, booking_id="b1"),
            )
            _expect("list_outbox(booking_id=...) of a booking with none is empty", [], tx.list_outbox(booking_id="b9"))
        _refused(
            "append_outbox of an id that exists raises StorageError (reference behaviour)",
            StorageError,
            storage,
            "alpha",
            lambda tx: tx.append_outbox([attrs.evolve(messages[0], topic="again")]),
        )


@_check
def check_swap_outbox(factory: StorageFactory) -> None:
    """`swap_outbox` (optional) replaces a message only if it is still what the caller read: a compare-and-set."""
    with _made(factory) as storage:
        first = _message("m1", due_at=at(8), booking_id="b1")
        _in(storage, "alpha", lambda tx: tx.append_outbox([first]))
        with storage.transaction("alpha") as tx:
            if not isinstance(tx, OutboxClaims):
                _not_offered(
                    "check_swap_outbox", "swap_outbox() on its transactions", "run one dispatch_due at a time on it"
                )
                return
        claimed = attrs.evolve(first, due_at=at(8) + 5 * M)
        late = attrs.evolve(first, attempts=1, sent_at=at(9))

        def swap(expected: OutboxMessage, message: OutboxMessage) -> Callable[[StorageTransaction], bool]:
            return lambda tx: tx.swap_outbox(expected, message)  # type: ignore[attr-defined]

        done = _in(storage, "alpha", swap(first, claimed))
        _expect("swap_outbox of the stored message replaces it and says so", expected=True, actual=done)
        done = _in(storage, "alpha", swap(first, late))
        _expect("swap_outbox of a message changed since is refused (False)", expected=False, actual=done)
        with storage.transaction("alpha") as tx:
            _expect("a refused swap_outbox leaves the message as it was", [claimed], tx.list_outbox())
        _refused(
            "swap_outbox of a missing id raises NotFoundError",
            NotFoundError,
            storage,
            "alpha",
            lambda tx: tx.swap_outbox(_message("m9", due_at=at(8)), _message("m9", due_at=at(9))),  # type: ignore[attr-defined]
        )
        _refused(
            "swap_outbox is scoped to the tenant: another's message is missing",
            NotFoundError,
            storage,
            "beta",
            lambda tx: tx.swap_outbox(claimed, late),  # type: ignore[attr-defined]
        )


def _due_now(tx: StorageTransaction, now: datetime) -> list[OutboxMessage]:
    """What `DueOutbox.list_due_outbox` must give: the pending messages due at *now*, in the order written."""
    return [m for m in tx.list_outbox(pending_only=True) if m.due_at <= now]


@_check
def check_due_outbox(factory: StorageFactory) -> None:
    """
    ``list_due_outbox`` (optional) gives the pending messages due at an instant: ``list_outbox``'s, in its order.

    Messages due a microsecond around a second and around the instant asked, sent and given up ones, reminders
    due days later, the same ids in another tenant, and a transaction's own appends: exactly those of
    ``list_outbox(pending_only=True)`` with ``due_at <= now``, in the order written, whatever the instant
    asked. A storage without the capability has nothing to keep here: the dispatcher reads every pending
    message and keeps the due ones.
    """
    with _made(factory) as storage:
        if not _in(storage, "alpha", lambda tx: isinstance(tx, DueOutbox), commit=False):
            _not_offered(
                "check_due_outbox",
                "list_due_outbox() on its transactions",
                "dispatch_due reads every pending message, those due weeks later included",
            )
            return
        rng = random.Random(20_261_207)
        offsets = [0, 1, 999_999, 1_000_000, 1_000_001, 59 * 1_000_000]
        dues = [at(9, micro=m) for m in offsets] + [at(8, 59, micro=999_999), at(9, day=3), at(9, day=40)]
        asked = [at(9), at(9, micro=1), at(9, micro=999_999), at(9, micro=1_000_000), at(8), at(9, day=5), at(23)]
        for tenant in ("alpha", "beta"):
            messages = []
            for n in range(24):
                due = rng.choice(dues)
                done = rng.choice([{}, {}, {}, {"sent_at": at(9)}, {"failed_at": at(9)}])
                messages.append(_message(f"m{n:02d}", due_at=due, created_at=at(7), **done))
            rng.shuffle(messages)
            with storage.transaction(tenant) as tx:
                tx.append_outbox(messages)
                tx.commit()

        def agrees(tx: StorageTransaction, tenant: str, when: str) -> None:
            for now in asked:
                _expect(
                    f"list_due_outbox({now.isoformat()}) in tenant {tenant!r} {when} gives the pending messages of "
                    "list_outbox(pending_only=True) due then, in the order written",
                    _due_now(tx, now),
                    tx.list_due_outbox(now),  # type: ignore[attr-defined]
                )

        for tenant in ("alpha", "beta"):
            with storage.transaction(tenant) as tx:
                agrees(tx, tenant, "after commit")
        extra = [_message("late", due_at=at(9, micro=2), created_at=at(7)), _message("early", due_at=at(6))]
        with storage.transaction("alpha") as tx:
            tx.append_outbox(extra)
            agrees(tx, "alpha", "after its own appends, before commit")
        _in(storage, "alpha", lambda tx: agrees(tx, "alpha", "after a rollback"), commit=False)
        naive = datetime(2030, 6, 3, 9)  # noqa: DTZ001 - the point of the check
        _refused(
            "list_due_outbox of a naive datetime raises NaiveDatetimeError",
            NaiveDatetimeError,
            storage,
            "alpha",
            lambda tx: tx.list_due_outbox(naive),  # type: ignore[attr-defined]
        )


@_check
def check_retention(factory: StorageFactory) -> None:
    """
    ``prune_outbox`` and ``prune_idempotency`` (optional) forget exactly what was done with, or made, before a cut.

    Messages sent, given up, or both, a microsecond either side of the cut, pending ones however old, and records
    around it; in two tenants that use the same ids. Each call deletes exactly what `finished_at` (or
    ``created_at``) puts before the cut, says how many, leaves everything else and the other tenant as it was,
    and a rollback undoes it. A storage without the capability has nothing to keep here: nothing is pruned.
    """
    with _made(factory) as storage:
        if not _in(storage, "alpha", lambda tx: isinstance(tx, Retention), commit=False):
            _not_offered("check_retention", "prune_outbox() on its transactions", "BookingEngine.prune refuses it")
            return
        cut = at(12)
        times = [at(6), at(11, 59, micro=999_999), cut, at(12, micro=1), at(18)]
        rng = random.Random(20_261_208)
        for tenant in ("alpha", "beta"):
            messages = []
            for n in range(20):
                done: dict[str, datetime] = {}
                kind = rng.choice(["pending", "sent", "failed", "both"])
                if kind in {"sent", "both"}:
                    done["sent_at"] = rng.choice(times)
                if kind in {"failed", "both"}:
                    done["failed_at"] = rng.choice(times)
                messages.append(_message(f"m{n:02d}", due_at=at(5), created_at=at(5), **done))
            records = [IdempotencyRecord(f"k{n}", "hash", "b1", "{}", rng.choice(times)) for n in range(8)]
            with storage.transaction(tenant) as tx:
                tx.append_outbox(messages)
                for record in records:
                    tx.put_idempotency(record)
                tx.commit()
        with storage.transaction("beta") as tx:
            beta = (tx.list_outbox(), [tx.get_idempotency(f"k{n}") for n in range(8)])
        with storage.transaction("alpha") as tx:
            before = tx.list_outbox()
            kept = [m for m in before if (ended := finished_at(m)) is None or ended >= cut]
            keys = [tx.get_idempotency(f"k{n}") for n in range(8)]
            with_keys = [r for r in keys if r is not None and r.created_at >= cut]
        with storage.transaction("alpha") as tx:
            tx.prune_outbox(cut)  # type: ignore[attr-defined]
            tx.prune_idempotency(cut)  # type: ignore[attr-defined]
        with storage.transaction("alpha") as tx:
            _expect("a prune rolled back deletes nothing", before, tx.list_outbox())
        with storage.transaction("alpha") as tx:
            gone = tx.prune_outbox(cut)  # type: ignore[attr-defined]
            forgotten = tx.prune_idempotency(cut)  # type: ignore[attr-defined]
            tx.commit()
        _expect("prune_outbox says how many messages it deleted", len(before) - len(kept), gone)
        _expect("prune_idempotency says how many records it deleted", 8 - len(with_keys), forgotten)
        with storage.transaction("alpha") as tx:
            _expect(
                "prune_outbox(cut) leaves the pending messages and those done with at or after the cut, in order",
                kept,
                tx.list_outbox(),
            )
            left = [r for r in (tx.get_idempotency(f"k{n}") for n in range(8)) if r is not None]
            _expect("prune_idempotency(cut) leaves the records created at or after the cut", with_keys, left)
        with storage.transaction("beta") as tx:
            _expect(
                "a prune in one tenant leaves another's messages and records",
                beta,
                (tx.list_outbox(), [tx.get_idempotency(f"k{n}") for n in range(8)]),
            )
        naive = datetime(2030, 6, 3, 12)  # noqa: DTZ001 - the point of the check
        _refused(
            "prune_outbox of a naive datetime raises NaiveDatetimeError",
            NaiveDatetimeError,
            storage,
            "alpha",
            lambda tx: tx.prune_outbox(naive),  # type: ignore[attr-defined]
        )


@_check
def check_idempotency_records(factory: StorageFactory) -> None:
    """
    An idempotency key is saved once: saving it again raises `ConcurrencyError` and keeps the first.

    Keys are compared exactly: "key" and "KEY" are two records (a case-insensitive collation would replay one
    call's result for another).
    """
    with _made(factory) as storage:
        record = IdempotencyRecord("key", "hash", "b1", '{"status": "ok"}', at(8, micro=7))
        other = IdempotencyRecord("key", "other hash", "b2", "{}", at(9))

        def first(tx: StorageTransaction) -> None:
            tx.put_idempotency(record)
            _raises(
                "put_idempotency of a key saved in the same transaction raises ConcurrencyError",
                ConcurrencyError,
                lambda: tx.put_idempotency(other),
            )
            _expect("get_idempotency returns the first record", record, tx.get_idempotency("key"))

        _in(storage, "alpha", first)
        _refused(
            "put_idempotency of a committed key raises ConcurrencyError",
            ConcurrencyError,
            storage,
            "alpha",
            lambda tx: tx.put_idempotency(other),
        )
        _in(storage, "alpha", lambda tx: tx.put_idempotency(attrs.evolve(record, key="k2")), commit=False)
        upper = attrs.evolve(other, key="KEY")

        def cased(tx: StorageTransaction) -> None:
            _expect("a key differing only in case is not saved yet", None, tx.get_idempotency("KEY"))
            try:
                tx.put_idempotency(upper)
            except ConcurrencyError as exc:
                msg = f"keys are case-sensitive: put_idempotency of 'KEY' next to 'key' raised ConcurrencyError: {exc}"
                raise AssertionError(msg) from exc

        _in(storage, "alpha", cased)
        with storage.transaction("alpha") as tx:
            _expect("a saved record round-trips exactly", record, tx.get_idempotency("key"))
            _expect("a record put without commit is not saved", None, tx.get_idempotency("k2"))
            _expect("keys are case-sensitive: 'KEY' is a record of its own", upper, tx.get_idempotency("KEY"))
            _expect("keys are case-sensitive: 'Key' was never saved", None, tx.get_idempotency("Key"))


def _rich_schedule(zone: str) -> Schedule:
    return Schedule(
        zone,
        WeeklyHours(
            {0: [TimeRange("09:00", "12:00"), TimeRange("13:00", "18:30")], "sat": TimeRange("22:00", "06:00")}
        ),
        overrides=[
            DateOverride(date(2030, 12, 24), [TimeRange("09:00", "13:00")]),
            DateOverride.closed(date(2030, 12, 25)),
        ],
        time_off=[
            TimeOff(datetime(2030, 8, 1, 12, tzinfo=UTC), datetime(2030, 8, 15, 12, tzinfo=UTC), reason="summer"),
            TimeOff.days(date(2030, 12, 31), date(2031, 1, 2), reason="new year"),
        ],
        recurring=[
            RecurringHours(
                Recurrence(  # wall times in the zone, as a recurrence keeps them
                    "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU",
                    datetime.combine(date(2030, 6, 2), wall(10)),
                    zone,
                    exdates=[datetime.combine(date(2030, 6, 16), wall(10))],
                    rdates=[datetime.combine(date(2030, 6, 19), wall(10))],
                ),
                TimeRange("10:00", "14:00"),
            ),
            RecurringHours.every(
                "FREQ=MONTHLY;BYMONTHDAY=1",
                date(2030, 7, 1),
                TimeRange("15:00", "18:00"),
                zone,
                closed=True,
                reason="inventory",
            ),
        ],
    )


def _rich_policies() -> Policies:
    return Policies(
        hold=HoldPolicy(ttl=timedelta(minutes=45, microseconds=1), accept_late_payment=False),
        # Decimals a binary float cannot hold (12.1, 0.1): an adapter that keeps them as doubles reads back others.
        confirmation=ConfirmationPolicy(mode=ConfirmationMode.ANY_ORDER, deposit_percent=Decimal("12.1")),
        cancellation=CancellationPolicy(
            tiers=[RefundTier(48 * H, 100), RefundTier(24 * H, Decimal("50.5")), RefundTier(H, Decimal("0.1"))],
            otherwise_percent=0,
            deadline=2 * H,
            no_show_fee_percent=50,
            charge_unpaid_penalty=True,
        ),
        reschedule=ReschedulePolicy(deadline=12 * H, max_times=2),
        no_show=NoShowPolicy(grace=7 * M),
        allow_override=True,
    )


def _rich_values() -> tuple[Business, list[Resource], list[Service], list[Booking]]:
    business = Business(
        "Ateliers Ünïcode & Co",
        "Europe/Paris",
        _rich_schedule("Europe/Paris"),
        _rich_policies(),
        rules=[
            NotificationRule("welcome", Template("Booked: $service", "$service at $local_time"), on=["created"]),
            NotificationRule(
                "reminder",
                Template("", "$business, $local_date: $$5 deposit, $pay_url"),
                offset=-24 * H,
                condition=Condition.CONFIRMED,
                recipient=Recipient.STAFF,
                channel="sms",
                service_ids=["course"],
                quiet_hours=False,
            ),
        ],
        quiet_hours=QuietHours(wall(22), wall(7, 30)),
        links={"pay": "https://example.com/pay/$booking_id?a=1&b=%20"},
        agent="manager:ann",
        language="fr-CA",
    )
    resources = [
        Resource(
            "room-1",
            "Salle Ⅰ",
            kind=ResourceKind.RESOURCE,
            type="room",
            capacity=12,
            attributes={
                "city": "Lyon",
                "seats": 12,
                "accessible": True,
                "ratio": Decimal("0.1"),
                "share": Decimal("12.1"),
                "price": Money("49.90", "EUR"),
                "most": Money(MAX_AMOUNT - Decimal("0.01"), "EUR"),
            },
            schedule=_rich_schedule("America/New_York"),
        ),
        Resource("ann", "Ann", kind=ResourceKind.USER, type="coach", role=ResourceRole.AUXILIARY, zone="Asia/Kolkata"),
        Resource("hall", "Hall", capacity=UNLIMITED),
    ]
    services = [
        Service(
            "course",
            "Course",
            needs=[
                Need(resource_ids=["room-1"], units=3, label="room"),
                Need(type="coach", attributes={"city": "Lyon"}, count=2, label="coach"),
            ],
            duration=90 * M,
            min_duration=30 * M,
            max_duration=3 * H,
            slot_step=15 * M,
            buffer_before=5 * M,
            buffer_after=10 * M,
            buffers_outside_hours=True,
            price=Money("120.00", "EUR"),
            min_notice=2 * H,
            horizon=timedelta(days=90),
        ),
        Service(
            "night",
            "Night",
            needs=[Need(resource_ids=["hall"])],
            duration=timedelta(days=1),
            unit=ServiceUnit.NIGHTS,
            check_in=wall(15),
            check_out=wall(11),
            price=Money("12.345", "KWD"),
        ),
    ]
    paris = datetime(2030, 6, 3, 12, 0, 0, 1, tzinfo=ZoneInfo("Europe/Paris"))  # kept as the same instant in UTC
    bookings = [
        Booking(
            "course-1",
            "course",
            paris,
            paris + 90 * M,
            (Assignment(0, "room", ("room-1",)), Assignment(1, "coach", ("ann",))),
            (3, 1),
            BookingStatus.PAID,
            at(7, micro=999_999),
            policies=_rich_policies(),
            buffer_before=5 * M,
            buffer_after=10 * M,
            customer_id="cust-42",
            source="partner",
            notes="Allergies: none.\nParking: yes — «côté cour»",
            external_ref="ext-9",
            price=Money("120.00", "EUR"),
            payments=(
                Payment("pay-1", PaymentKind.PAYMENT, Money("100.00", "EUR"), at(8), actor="cust-42"),
                Payment("pay-2", PaymentKind.PAYMENT, Money("20.00", "EUR"), at(8, 1)),
                Payment("fee-1", PaymentKind.FEE, Money("0.01", "EUR"), at(8, 2), actor="manager:ann"),
                Payment("ref-1", PaymentKind.REFUND, Money("5.50", "EUR"), at(8, 3)),
            ),
            reschedules=2,
            checked_in_at=at(9, 58, micro=3),
            version=7,
            customer_zone="America/St_Johns",
            customer_language="pt-BR",
        ),
        _booking(
            "hold-1",
            at(0, day=1),
            at(0, day=2),
            resources=["hall"],
            status=BookingStatus.PRE_BOOKING,
            hold_until=at(8, micro=5),
            service_id="night",
            price=Money("1000", "JPY"),
        ),
        # Money a double cannot hold: the largest amount with cents, and a currency with three decimals.
        _booking(
            "big-1",
            at(14),
            at(15),
            resources=["hall"],
            price=Money(MAX_AMOUNT - Decimal("0.01"), "EUR"),
            payments=(Payment("pay-big", PaymentKind.PAYMENT, Money("123456789012345678.91", "EUR"), at(8)),),
        ),
        _booking(
            "kwd-1",
            at(16),
            at(17),
            resources=["hall"],
            price=Money("12.345", "KWD"),
            payments=(Payment("pay-kwd", PaymentKind.PAYMENT, Money("0.001", "KWD"), at(8)),),
        ),
    ]
    return business, resources, services, bookings


@_check
def check_values_round_trip(factory: StorageFactory) -> None:
    """Every value comes back equal to what was written: bookings with money and policies, schedules, logs."""
    business, resources, services, bookings = _rich_values()
    records = [
        _record("course-1", Action.HOLD, at=at(7, micro=999_999), actor="cust-42", reason="web"),
        _record("course-1", Action.PAY_FULL, at=at(8), actor="manager:ann", reason="x" * 2_000),
    ]
    message = _message(
        "msg-1",
        topic="booking.paid",
        booking_id="course-1",
        created_at=at(8, micro=1),
        due_at=at(9, day=1),
        dedupe_key="course-1:paid:1",
        payload='{"booking_id": "course-1", "amount": ["120.00", "EUR"], "note": "\\u00e9"}',
        attempts=3,
        last_error="SMTP 451 — try again",
    )
    failed = _message("msg-2", booking_id=None, failed_at=at(10), sent_at=None, attempts=9)
    key = IdempotencyRecord("key", "sha256:" + "f" * 64, "course-1", '{"id": "course-1"}', at(8, micro=999_999))
    with _made(factory) as storage:

        def write(tx: StorageTransaction) -> None:
            tx.put_business(business)
            for resource in resources:
                tx.put_resource(resource)
            for service in services:
                tx.put_service(service)
            for booking in bookings:
                tx.reserve(booking, now=at(8))
            tx.append_transitions(records)
            tx.append_outbox([message, failed])
            tx.put_idempotency(key)

        _in(storage, "alpha", write)
        with storage.transaction("alpha") as tx:
            _expect("a Business round-trips exactly", business, tx.get_business())
            _expect("Resources round-trip exactly, in order", resources, tx.list_resources())
            for resource in resources:
                _expect(f"get_resource({resource.id!r}) round-trips exactly", resource, tx.get_resource(resource.id))
            _expect("Services round-trip exactly, in order", services, tx.list_services())
            _expect("a Service round-trips exactly", services[0], tx.get_service("course"))
            for booking in bookings:
                _expect(f"Booking {booking.id!r} round-trips exactly", booking, tx.get_booking(booking.id))
            _expect(
                "find_bookings returns exact Bookings",
                sorted(bookings, key=lambda b: (b.start, b.id)),
                tx.find_bookings(BookingQuery()),
            )
            _expect("TransitionRecords round-trip exactly", records, tx.list_transitions())
            _expect("OutboxMessages round-trip exactly", [message, failed], tx.list_outbox())
            _expect("an IdempotencyRecord round-trips exactly", key, tx.get_idempotency("key"))
            stored = [tx.get_booking(booking_id) for booking_id in ("course-1", "big-1", "kwd-1")]
            amounts = [
                str(money.amount)
                for booking in stored
                for money in (booking.price, *(p.amount for p in booking.payments))
                if money is not None
            ]
            _expect(
                "money keeps every digit and its decimal places",
                [
                    *("120.00", "100.00", "20.00", "0.01", "5.50"),
                    *("999999999999999999.99", "123456789012345678.91", "12.345", "0.001"),
                ],
                amounts,
            )


@_check
def check_hostile_strings_round_trip(factory: StorageFactory) -> None:
    """Hostile strings round-trip verbatim in every field and find exactly their own rows (research note S3)."""
    with _made(factory) as storage:
        for index, text in enumerate(HOSTILE_STRINGS):
            tenant = text
            booking = _booking(
                text,
                at(10),
                at(11),
                resources=[text],
                status=BookingStatus.PRE_BOOKING,
                hold_until=at(9),
                service_id=text,
                customer_id=text,
                source=text,
                notes=text,
                external_ref=text,
            )
            record = _record(text, actor=text, reason=text)
            message = _message(text, topic=text, booking_id=text, dedupe_key=text, payload=text, last_error=text)
            key = IdempotencyRecord(text, text, text, text, at(8))

            def write(
                tx: StorageTransaction,
                text: str = text,
                booking: Booking = booking,
                record: TransitionRecord = record,
                message: OutboxMessage = message,
                key: IdempotencyRecord = key,
            ) -> None:
                tx.put_business(_business(text))
                tx.put_resource(Resource(text, text, type=text))
                tx.put_service(Service(text, text, needs=[Need(type=text, label=text)], duration=30 * M))
                tx.lock_resources([text])
                tx.reserve(booking, now=at(8))
                tx.append_transitions([record])
                tx.append_outbox([message])
                tx.put_idempotency(key)

            _in(storage, tenant, write)
            clause = f"hostile string #{index} {text!r}, written as the tenant and in every field,"
            with storage.transaction(tenant) as tx:
                _expect(f"{clause} round-trips as a tenant and business name", _business(text), tx.get_business())
                _expect(
                    f"{clause} round-trips in a resource (another resource here is another tenant's, whose name "
                    "this tenant's was made to match: encode tenant names, never sanitize or case-fold them)",
                    [Resource(text, text, type=text)],
                    tx.list_resources(),
                )
                _expect(
                    f"{clause} round-trips in a service",
                    Service(text, text, needs=[Need(type=text, label=text)], duration=30 * M),
                    tx.get_service(text),
                )
                _expect(f"{clause} round-trips in a booking", booking, tx.get_booking(text))
                for field in ("resource_id", "customer_id", "source", "external_ref", "service_id"):
                    _expect(
                        f"{clause} finds its booking by {field}",
                        [booking],
                        tx.find_bookings(_query(field, text)),
                    )
                    _expect(
                        f"{clause} with a space added finds nothing by {field}",
                        [],
                        tx.find_bookings(_query(field, text + " ")),
                    )
                    _expect(
                        f"{clause} uppercased finds nothing by {field} unless unchanged",
                        [booking] if text.upper() == text else [],
                        tx.find_bookings(_query(field, text.upper())),
                    )
                _expect(f"{clause} round-trips in the log", [record], tx.list_transitions(text))
                _expect(f"{clause} round-trips in the outbox", [message], tx.list_outbox())
                _expect(f"{clause} round-trips as an idempotency key", key, tx.get_idempotency(text))
                _expect(f"{clause} loads its booking", booking.loads(), tx.loads([text], Interval(at(0), at(24))))
                _expect(f"{clause} lists its due hold", [booking], tx.due_holds(at(12)))
        with storage.transaction("a_c") as tx:
            _expect(
                "a tenant whose name is a LIKE pattern sees nothing of the tenants it would match",
                dict(_EMPTY),
                _snapshot(tx),
            )
        # LIKE metacharacters in every text filter of find_bookings: each value finds its own booking only, and a
        # pattern stored nowhere finds nothing (a\c is ac to a LIKE whose escape is a backslash)
        values = ["a_c", "abc", "a%c", "axyzc", "a\\c", "ac", "a\\\\c", "a\\%c", "A_C"]
        like = [
            _booking(f"like-{i}", at(10), at(11), source=v, external_ref=v, service_id=v, customer_id=v)
            for i, v in enumerate(values)
        ]
        _setup(storage, "like", {"r1": UNLIMITED})
        _in(storage, "like", _reserving_all(like, now=at(8)))
        with storage.transaction("like") as tx:
            for field in ("customer_id", "source", "external_ref", "service_id"):
                for value in [*values, "a%", "%", "_bc", "a\\_c", "a__c", "a\\"]:
                    _expect(
                        f"find_bookings by {field} {value!r} finds exactly the bookings whose {field} is that text "
                        "(LIKE metacharacters %, _ and \\ are plain characters)",
                        [b for b in like if getattr(b, field) == value],
                        tx.find_bookings(_query(field, value)),
                    )
        long_id = "x" * 200
        long_notes = "é" * 10_000

        def long(tx: StorageTransaction) -> None:
            tx.put_resource(Resource(long_id, long_id))
            tx.reserve(
                _booking(long_id, at(10), at(11), resources=[long_id], notes=long_notes, customer_id=long_id), now=at(8)
            )

        _in(storage, long_id, long)
        with storage.transaction(long_id) as tx:
            _expect(
                "the longest id and the longest notes round-trip",
                (long_id, long_notes),
                (tx.get_booking(long_id).id, tx.get_booking(long_id).notes),
            )


@_check
def check_lone_surrogates_round_trip(factory: StorageFactory) -> None:
    r"""
    A guard: text with a lone surrogate (``"\\ud800"``) is either refused by the domain or kept verbatim.

    The domain refuses it today (`slotengine.model.check_text`), so no adapter sees it and this check passes
    at once; it fails only if the domain starts accepting such text and the adapter cannot keep it.
    """
    text = "lone \ud800 surrogate"
    try:
        resource = Resource(text, text)
    except InvalidInputError:
        return  # the domain refuses it before any storage sees it: nothing to agree on
    with _made(factory) as storage:
        try:
            _in(storage, "alpha", lambda tx: tx.put_resource(resource))
        except SlotEngineError as exc:
            msg = (
                f"text the domain accepts is stored verbatim (model.check_text): put_resource of {text!r} raised "
                f"{type(exc).__name__}: {exc}"
            )
            raise AssertionError(msg) from exc
        _expect("text with a lone surrogate round-trips verbatim", [resource], _state(storage, "alpha")["resources"])


@_check
def check_naive_instants_are_refused(factory: StorageFactory) -> None:
    """
    An instant without a time zone is refused with `InvalidInputError`, never stored or leaked as a raw error.

    Every value of the domain, `IdempotencyRecord` included, refuses a naive datetime when it is built
    (`NaiveDatetimeError`), and then this check passes at once; a storage that receives one anyway (from a
    record built another way) must refuse it the same way.
    """
    naive = datetime(2030, 6, 3, 8)  # noqa: DTZ001 - the point of the check
    try:
        record = IdempotencyRecord("key", "hash", "b1", "{}", naive)
    except InvalidInputError:
        return
    with _made(factory) as storage:
        _refused(
            "put_idempotency of a record whose created_at has no time zone raises InvalidInputError "
            "(NaiveDatetimeError, as every value of the domain does)",
            InvalidInputError,
            storage,
            "alpha",
            lambda tx: tx.put_idempotency(record),
        )


_NAIVE: Final = datetime(2030, 6, 3, 8)  # noqa: DTZ001 - an instant without a time zone, to be refused
_NOT_INSTANTS: Final[tuple[object, ...]] = (_NAIVE, date(2030, 6, 3), None, "2030-06-03T08:00:00+00:00", 0)
"""What a port method must refuse where it takes an instant (``now``): `InvalidInputError`, never a raw error."""
_SHIFTABLE_NOT_INSTANTS: Final = _NOT_INSTANTS[:2]
"""
Those of them a wrapper may shift by a timedelta on its way to the adapter (a naive datetime and a date stay such).

`reserve` is checked with these only, so that a test double that shifts ``now`` (``now - timedelta(...)``) fails the
clause it breaks, not this one.
"""


def _bad(value: object) -> Any:
    """*value*, typed as anything, so that a check can hand a port method what its signature does not allow."""
    return value


@_check
def check_reserve_checks_its_arguments_first(factory: StorageFactory) -> None:
    """
    `reserve` refuses a bad argument with `InvalidInputError` before it looks for a resource, writing nothing.

    A ``now`` that is no aware datetime (naive, None, text), a *booking* that is no `Booking`, an *exclude* that is
    no collection of booking ids: refused whatever else is wrong with the call (a missing resource is
    `NotFoundError` only once the arguments are good), so every adapter names the same fault. A naive ``now``
    written anyway counted holds against the wrong instant. `reserve_and_record` (optional) checks its arguments
    the same way, and its records and catalogue version too.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        fits = _booking("b1", at(10), at(11))
        nowhere = _booking("b2", at(12), at(13), resources=["ghost"])
        refusals: list[tuple[str, Callable[[StorageTransaction], object]]] = [
            *(
                (f"reserve with now={now!r}", functools.partial(_reserving_bad_now, fits, now))
                for now in _SHIFTABLE_NOT_INSTANTS
            ),
            *(
                (f"reserve on a missing resource with now={now!r}", functools.partial(_reserving_bad_now, nowhere, now))
                for now in _SHIFTABLE_NOT_INSTANTS
            ),
            ("reserve of a booking id, not a Booking", lambda tx: tx.reserve(_bad("b1"), now=at(8))),
            ("reserve of None", lambda tx: tx.reserve(_bad(None), now=at(8))),
            ("reserve with exclude=5", lambda tx: tx.reserve(fits, now=at(8), exclude=_bad(5))),
            ("reserve with exclude='b1' (one text)", lambda tx: tx.reserve(fits, now=at(8), exclude="b1")),
            ("reserve with exclude=[1]", lambda tx: tx.reserve(fits, now=at(8), exclude=_bad([1]))),
            (
                "reserve on a missing resource with exclude=5",
                lambda tx: tx.reserve(nowhere, now=at(8), exclude=_bad(5)),
            ),
        ]
        for what, work in refusals:
            _refused(f"{what} raises InvalidInputError", InvalidInputError, storage, "alpha", work)
        _reserve(storage, "alpha", fits, now=at(8), clause="reserve with good arguments after refused ones is accepted")

        if not isinstance(storage, ReserveAndRecord):
            return
        version = _version(storage, "alpha")
        free = _booking("b3", at(14), at(15))
        good: dict[str, Any] = {
            "now": at(8),
            "transitions": [_record("b3", Action.BOOK)],
            "outbox": [_message("m1", booking_id="b3")],
            "catalogue_version": version,
        }
        calls: list[tuple[str, Booking, dict[str, Any]]] = [
            *((f"now={now!r}", free, {"now": now}) for now in _NOT_INSTANTS),
            *((f"now={now!r} on a missing resource", nowhere, {"now": now}) for now in _SHIFTABLE_NOT_INSTANTS),
            *(
                (f"catalogue_version={v!r}", free, {"catalogue_version": v})
                for v in (str(version), float(version), version == 1, None, 2**70)
            ),
            ("a stale catalogue_version given as text", free, {"catalogue_version": str(version + 1)}),
            ("catalogue_version as text on a missing resource", nowhere, {"catalogue_version": str(version)}),
            ("transitions=['junk']", free, {"transitions": ["junk"]}),
            ("transitions holding a record and junk", free, {"transitions": [_record("b3"), "junk"]}),
            ("outbox='m1' (one text)", free, {"outbox": "m1"}),
            ("outbox holding a message and a record", free, {"outbox": [_message("m1"), _record("b3")]}),
            ("idempotency='k1'", free, {"idempotency": "k1"}),
        ]
        for what, booking, changes in calls:
            before = _state(storage, "alpha")
            arguments = {**good, **changes}
            _raises(
                f"reserve_and_record with {what} raises InvalidInputError",
                InvalidInputError,
                functools.partial(storage.reserve_and_record, "alpha", booking, **arguments),
            )
            _expect(f"reserve_and_record with {what} writes nothing", before, _state(storage, "alpha"))
        _raises(
            "reserve_and_record of a booking id, not a Booking, raises InvalidInputError",
            InvalidInputError,
            functools.partial(storage.reserve_and_record, "alpha", _bad("b3"), **good),
        )


def _reserving_bad_now(booking: Booking, now: object, tx: StorageTransaction) -> None:
    tx.reserve(booking, now=_bad(now))


@_check
def check_values_of_the_wrong_kind_are_refused(factory: StorageFactory) -> None:
    """
    A write given a value of the wrong kind raises `InvalidInputError` and keeps nothing, on every adapter.

    A storage that keeps whatever it is given (a `Service` among the resources, None as the business, a text in
    the log) breaks every later read; one that fails inside with an `AttributeError` leaks a raw error. Appends are
    all or nothing: a list whose last item is wrong appends none of the others (seen in the same transaction,
    which goes on). Version numbers are an `int`: ``True``, ``1.0`` and ``"1"`` are refused, not compared (a
    text compared with a number is a concurrent change that never happened, which the engine retries).
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        stored = _booking("b1", at(10), at(11))
        _reserve(storage, "alpha", stored, now=at(8))
        _in(storage, "alpha", lambda tx: tx.append_outbox([_message("m1")]))
        changed = attrs.evolve(stored, status=BookingStatus.PAID, version=2)
        message = _message("m1", attempts=1)
        refusals: list[tuple[str, Callable[[StorageTransaction], object]]] = [
            ("put_business(None)", lambda tx: tx.put_business(_bad(None))),
            ("put_business of a Resource", lambda tx: tx.put_business(_bad(Resource("r9", "Box")))),
            ("put_resource of a Service", lambda tx: tx.put_resource(_bad(_service("s9")))),
            ("put_resource of an id", lambda tx: tx.put_resource(_bad("r9"))),
            ("put_service of a Resource", lambda tx: tx.put_service(_bad(Resource("r9", "Box")))),
            ("put_service(None)", lambda tx: tx.put_service(_bad(None))),
            ("update_booking of an id", lambda tx: tx.update_booking(_bad("b1"), expected_version=1)),
            (
                "update_booking of a missing booking's id",
                lambda tx: tx.update_booking(_bad("nope"), expected_version=1),
            ),
            *(
                (
                    f"update_booking with expected_version={v!r}",
                    functools.partial(_updating_bad_version, changed, v),
                )
                for v in (True, 1.0, "1", None, 2**70)
            ),
            (
                "update_booking of a missing booking with expected_version='1'",
                functools.partial(_updating_bad_version, attrs.evolve(changed, id="nope"), "1"),
            ),
            ("find_bookings(None)", lambda tx: tx.find_bookings(_bad(None))),
            ("find_bookings of a dict", lambda tx: tx.find_bookings(_bad({"customer_id": "c1"}))),
            ("append_transitions(['junk'])", lambda tx: tx.append_transitions(_bad(["junk"]))),
            ("append_transitions of a record", lambda tx: tx.append_transitions(_bad(_record("b1")))),
            ("append_outbox('m2') (one text)", lambda tx: tx.append_outbox(_bad("m2"))),
            ("append_outbox of a transition record", lambda tx: tx.append_outbox(_bad([_record("b1")]))),
            ("update_outbox of an id", lambda tx: tx.update_outbox(_bad("m1"))),
            ("put_idempotency of a key", lambda tx: tx.put_idempotency(_bad("k1"))),
        ]
        for what, work in refusals:
            _refused(f"{what} raises InvalidInputError", InvalidInputError, storage, "alpha", work)

        before = _state(storage, "alpha")

        def all_or_nothing(tx: StorageTransaction) -> None:
            appends: list[tuple[str, Callable[[], object]]] = [
                (
                    "append_transitions of a record and then junk",
                    lambda: tx.append_transitions(_bad([_record("b1"), "junk"])),
                ),
                (
                    "append_transitions of records and then None",
                    lambda: tx.append_transitions(_bad([_record("b1"), _record("b1", Action.CONFIRM), None])),
                ),
                (
                    "append_outbox of a new message and then junk",
                    lambda: tx.append_outbox(_bad([_message("m2"), "junk"])),
                ),
            ]
            for what, call in appends:
                _raises(f"{what} raises InvalidInputError", InvalidInputError, call)
                _expect(f"{what} appends nothing (seen in the same transaction)", before, _snapshot(tx))
            if isinstance(tx, OutboxClaims):
                _raises(
                    "swap_outbox of ids raises InvalidInputError",
                    InvalidInputError,
                    lambda: tx.swap_outbox(_bad("m1"), _bad("m1")),
                )
            tx.append_transitions([_record("b1")])
            tx.update_outbox(message)
            tx.commit()

        _in(storage, "alpha", all_or_nothing, commit=False)
        after = _state(storage, "alpha")
        _expect(
            "after refused appends the transaction goes on and commits its later writes",
            ([_record("b1")], [message]),
            (after["transitions"], after["outbox"]),
        )


def _updating_bad_version(booking: Booking, version: object, tx: StorageTransaction) -> None:
    tx.update_booking(booking, expected_version=_bad(version))


@_check
def check_every_collection_is_read_once(factory: StorageFactory) -> None:
    """
    A generator is as good as a list wherever the port takes a collection: it is read once, to the end.

    An adapter that reads it twice (checks the ids, then writes) finds it empty the second time and reports
    success having written nothing: a booking committed without its messages.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 1})
        made = _booking("b1", at(10), at(11), resources=["r1", "r2"])
        records = [_record("b1"), _record("b1", Action.CONFIRM)]
        messages = [_message("m1"), _message("m2", booking_id="b2")]

        def work(tx: StorageTransaction) -> dict[str, object]:
            tx.lock_resources(_bad(rid for rid in ("r2", "r1")))
            tx.reserve(made, now=at(8), exclude=_bad(b for b in ("x", "y")))
            tx.append_transitions(_bad(r for r in records))
            tx.append_outbox(_bad(m for m in messages))
            return {
                "loads": _sorted_loads(tx.loads(_bad(r for r in ("r1", "r2")), Interval(at(9), at(12)))),
                "log": _transitions_of(tx, _bad(b for b in ("b1", "b2"))),
            }

        seen = _in(storage, "alpha", work)
        state = _state(storage, "alpha")
        _expect("append_transitions of a generator appends every record", records, state["transitions"])
        _expect("append_outbox of a generator appends every message", messages, state["outbox"])
        _expect(
            "loads and list_transitions_of read a generator of ids whole",
            {"loads": _sorted_loads(made.loads()), "log": records},
            seen,
        )
        if not isinstance(storage, ReserveAndRecord):
            return
        later = _booking("b2", at(12), at(13))
        at_once_records = [_record("b2", Action.BOOK)]
        at_once_messages = [_message("m3", booking_id="b2"), _message("m4", booking_id="b2")]
        storage.reserve_and_record(
            "alpha",
            later,
            now=at(8),
            transitions=_bad(r for r in at_once_records),
            outbox=_bad(m for m in at_once_messages),
            catalogue_version=_version(storage, "alpha"),
        )
        state = _state(storage, "alpha")
        _expect(
            "reserve_and_record of generators writes the booking with every record and message",
            ([made, later], [*records, *at_once_records], [*messages, *at_once_messages]),
            (state["bookings"], state["transitions"], state["outbox"]),
        )


@_check
def check_reads_check_their_arguments(factory: StorageFactory) -> None:
    """
    A read given a bad id, one text for a collection of ids, or a naive instant raises `InvalidInputError`.

    On every adapter alike. Ids are checked as every value's ids are (`slotengine.model.check_id`): not empty,
    without NUL or a lone surrogate (which SQL storages cannot even compare), text and nothing else. A text given
    where a collection of ids is expected is refused, not read as a set of its letters (``"bb"`` naming ``"b"``).
    `list_transitions_of` (optional) is held to it where the storage offers it.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        _reserve(storage, "alpha", _booking("b", at(10), at(11)), now=at(8))
        _in(storage, "alpha", lambda tx: tx.append_transitions([_record("b"), _record("bb")]))
        offers_transitions_of = _in(storage, "alpha", lambda tx: isinstance(tx, TransitionsOf), commit=False)
        window = Interval(at(9), at(12))
        bad_ids: tuple[object, ...] = ("", "a\x00", "\ud800", [1], None, 7)
        refusals: list[tuple[str, Callable[[StorageTransaction], object]]] = []
        for bad in bad_ids:
            refusals += [
                (f"get_booking({bad!r})", functools.partial(_call, "get_booking", bad)),
                (f"get_resource({bad!r})", functools.partial(_call, "get_resource", bad)),
                (f"get_service({bad!r})", functools.partial(_call, "get_service", bad)),
                (f"get_idempotency({bad!r})", functools.partial(_call, "get_idempotency", bad)),
                (f"loads([{bad!r}], window)", functools.partial(_loads_of, [bad], window)),
            ]
            if bad is not None:
                refusals += [
                    (f"list_transitions({bad!r})", functools.partial(_call, "list_transitions", bad)),
                    (f"list_outbox(booking_id={bad!r})", functools.partial(_outbox_of, bad)),
                ]
            if offers_transitions_of:
                refusals.append((f"list_transitions_of([{bad!r}])", functools.partial(_transitions_of_bad, [bad])))
        if offers_transitions_of:
            refusals += [
                ("list_transitions_of('bb') (one text)", functools.partial(_transitions_of_bad, "bb")),
                ("list_transitions_of(['b', 1])", functools.partial(_transitions_of_bad, ["b", 1])),
                ("list_transitions_of(5)", functools.partial(_transitions_of_bad, 5)),
            ]
        refusals += [
            ("loads('r1', window) (one text)", functools.partial(_loads_of, "r1", window)),
            ("loads(['r1', 1], window)", functools.partial(_loads_of, ["r1", 1], window)),
            ("loads(['r1'], a tuple of instants)", functools.partial(_loads_of, ["r1"], (at(9), at(12)))),
            ("lock_resources('r1') (one text)", lambda tx: tx.lock_resources("r1")),
            ("lock_resources(['a\x00'])", lambda tx: tx.lock_resources(["a\x00"])),
            ("lock_resources(['\ud800'])", lambda tx: tx.lock_resources(["\ud800"])),
            *((f"due_holds({now!r})", functools.partial(_due_holds_at, now)) for now in _NOT_INSTANTS),
        ]
        for what, work in refusals:
            _refused(f"{what} raises InvalidInputError", InvalidInputError, storage, "alpha", work)


def _call(method: str, value: object, tx: StorageTransaction) -> object:
    return getattr(tx, method)(value)


def _loads_of(resource_ids: object, window: object, tx: StorageTransaction) -> object:
    return tx.loads(_bad(resource_ids), _bad(window))


def _transitions_of_bad(booking_ids: object, tx: StorageTransaction) -> object:
    return tx.list_transitions_of(_bad(booking_ids))  # type: ignore[attr-defined]


def _outbox_of(booking_id: object, tx: StorageTransaction) -> object:
    return tx.list_outbox(booking_id=_bad(booking_id))


def _due_holds_at(now: object, tx: StorageTransaction) -> object:
    return tx.due_holds(_bad(now))


@_check
def check_update_booking_never_takes_time_again(factory: StorageFactory) -> None:
    """
    `update_booking` refuses to make a booking take time it did not (`InvalidInputError`): only `reserve` may.

    A cancelled or expired booking made live, a hold made firm, a hold kept longer: the time may be another
    booking's now (a hold counts only until it lapses, and a booking may have taken its place since), and an
    update checks no capacity. A change that takes less time (a hold cancelled, or held shorter) is an update.
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1, "r2": 1})
        pre = BookingStatus.PRE_BOOKING
        lapsed = _booking("h1", at(10), at(11), status=pre, hold_until=at(9, 30))
        _reserve(storage, "alpha", lapsed, now=at(9))
        _reserve(storage, "alpha", _booking("b2", at(10), at(11)), now=at(9, 45), clause="a lapsed hold's time is free")
        cancelled = _booking("c1", at(12), at(13), status=BookingStatus.CANCELLED)
        expired = _booking("e1", at(12), at(13), status=BookingStatus.EXPIRED)
        held = _booking("h3", at(14), at(15), resources=["r2"], status=pre, hold_until=at(12))
        _in(storage, "alpha", _reserving_all([cancelled, expired], now=at(9)))
        _reserve(storage, "alpha", _booking("b4", at(12), at(13)), now=at(9))
        _reserve(storage, "alpha", held, now=at(9))
        takes_more: list[tuple[str, Booking, dict[str, Any]]] = [
            ("a lapsed hold made confirmed", lapsed, {"status": BookingStatus.CONFIRMED, "hold_until": None}),
            ("a lapsed hold made paid", lapsed, {"status": BookingStatus.PAID, "hold_until": None}),
            ("a lapsed hold held again", lapsed, {"hold_until": at(23)}),
            ("a cancelled booking made confirmed", cancelled, {"status": BookingStatus.CONFIRMED}),
            ("a cancelled booking made a hold", cancelled, {"status": pre, "hold_until": at(23)}),
            ("an expired booking made a hold", expired, {"status": pre, "hold_until": at(23)}),
            ("an expired booking made paid", expired, {"status": BookingStatus.PAID}),
            ("a hold made firm before it lapses", held, {"status": BookingStatus.CONFIRMED, "hold_until": None}),
            ("a hold kept a microsecond longer", held, {"hold_until": at(12) + US}),
        ]
        for what, stored, changed in takes_more:
            _refused(
                f"update_booking of {what} raises InvalidInputError (use reserve, which checks capacity)",
                InvalidInputError,
                storage,
                "alpha",
                _updating(attrs.evolve(stored, version=2, **changed), expected_version=1),
            )
        latest = held
        takes_no_more: list[tuple[str, dict[str, Any]]] = [
            ("a hold kept as long, with other notes", {"notes": "called"}),
            ("a hold made shorter", {"hold_until": at(11)}),
            ("a hold cancelled", {"status": BookingStatus.CANCELLED, "hold_until": None}),
        ]
        for what, changed in takes_no_more:
            following = attrs.evolve(latest, version=latest.version + 1, **changed)
            _update(
                storage,
                "alpha",
                following,
                expected_version=latest.version,
                clause=f"update_booking of {what} (it takes no more time) is accepted",
            )
            latest = following
        _update(
            storage,
            "alpha",
            attrs.evolve(cancelled, notes="refunded", version=2),
            expected_version=1,
            clause="update_booking of a cancelled booking that stays cancelled is accepted",
        )


@_check
def check_close_inside_a_transaction_is_refused(factory: StorageFactory) -> None:
    """
    `close` inside one of the storage's transactions (same thread) raises `StorageError`; the transaction goes on.

    A storage closed under an open transaction would lose it, or have its commit bring a tenant back into a
    closed storage. Closed after the transaction's block, the storage refuses new transactions.
    """
    with _made(factory) as storage:
        kept = [Resource("r1", "Box"), Resource("r2", "Later")]
        with storage.transaction("alpha") as tx:
            tx.put_resource(kept[0])
            _raises("close inside a transaction raises StorageError", StorageError, storage.close)
            tx.put_resource(kept[1])
            tx.commit()
        _expect(
            "the transaction goes on after a refused close, and commits", kept, _state(storage, "alpha")["resources"]
        )
        storage.close()
        _raises(
            "a transaction of a closed storage raises StorageError",
            StorageError,
            lambda: _in(storage, "alpha", lambda tx: tx.list_resources()),
        )


@_check
def check_update_booking_keeps_blocked_time(factory: StorageFactory) -> None:
    """
    `update_booking` refuses to change a booking's buffers (`InvalidInputError`): they are time it blocks.

    Buffers widen the time a booking keeps its resources busy, and only `reserve` checks capacity; an update
    that widened them would overbook without a check (or, with a database constraint as a backstop, fail
    with `ConflictError` on one adapter and pass on another).
    """
    with _made(factory) as storage:
        _setup(storage, "alpha", {"r1": 1})
        stored = _booking("a", at(10), at(11))
        _reserve(storage, "alpha", stored, now=at(8))
        _reserve(storage, "alpha", _booking("b", at(11), at(12)), now=at(8))
        for what, changed in [
            ("widening its buffer after into another booking", attrs.evolve(stored, buffer_after=30 * M, version=2)),
            ("widening its buffer before", attrs.evolve(stored, buffer_before=5 * M, version=2)),
        ]:
            _refused(
                f"update_booking {what} raises InvalidInputError (buffers are blocked time: use reserve)",
                InvalidInputError,
                storage,
                "alpha",
                _updating(changed, expected_version=1),
            )


@_check
def check_documents(factory: StorageFactory) -> None:
    """Documents are kept per tenant and kind, replaced by key, listed by key, rolled back with the rest."""
    with _made(factory) as storage:
        hostile = "'; DROP TABLE documents; -- %s _ \\ \u202e\U0001f600"
        big = "x" * 100_000

        def write(tx: StorageTransaction) -> None:
            tx.put_document("event", "b", '{"v": 1}')
            tx.put_document("event", "a", hostile)
            tx.put_document("event", "B", "")
            tx.put_document("event", "\u00e9", big)
            tx.put_document("waitlist", "a", "other kind")
            tx.put_document("event.template", "a", "longer kind")
            tx.put_document("even", "z", "shorter kind")
            tx.put_document("even_", "y", "a kind that is a LIKE pattern of event")
            _expect("a transaction reads its own document", hostile, tx.get_document("event", "a"))

        _in(storage, "alpha", write)
        _in(storage, "beta", lambda tx: tx.put_document("event", "a", "beta's"))
        with storage.transaction("alpha") as tx:
            _expect("get_document returns the body exactly", hostile, tx.get_document("event", "a"))
            _expect("an empty body is kept", "", tx.get_document("event", "B"))
            _expect("a missing document is None", None, tx.get_document("event", "zz"))
            _expect("the same key of another kind is another document", None, tx.get_document("other", "b"))
            _expect(
                "list_documents lists one kind of one tenant by key, in code point order",
                [("B", ""), ("a", hostile), ("b", '{"v": 1}'), ("\u00e9", big)],
                tx.list_documents("event"),
            )
            _expect(
                "list_documents lists its kind exactly, not the kinds it is a prefix of",
                ([("z", "shorter kind")], [("a", "longer kind")], [("y", "a kind that is a LIKE pattern of event")]),
                (tx.list_documents("even"), tx.list_documents("event.template"), tx.list_documents("even_")),
            )
        with storage.transaction("beta") as tx:
            _expect("documents are scoped by tenant", [("a", "beta's")], tx.list_documents("event"))
            _expect("another tenant's document is not seen", None, tx.get_document("event", "b"))

        def replace(tx: StorageTransaction) -> None:
            tx.put_document("event", "b", '{"v": 2}')

        _in(storage, "alpha", replace)
        _in(storage, "alpha", lambda tx: tx.put_document("event", "c", "rolled back"), commit=False)
        with storage.transaction("alpha") as tx:
            _expect("put_document replaces by key", '{"v": 2}', tx.get_document("event", "b"))
            _expect("an uncommitted document is not kept", None, tx.get_document("event", "c"))
        for what, call in [
            ("an empty kind", lambda tx: tx.put_document("", "k", "{}")),
            ("an empty key", lambda tx: tx.put_document("event", "", "{}")),
            ("a NUL in the body", lambda tx: tx.put_document("event", "k", "a\x00b")),
            ("a body longer than MAX_DOCUMENT_LENGTH", lambda tx: tx.put_document("event", "k", "x" * 1_000_001)),
        ]:
            _refused(f"put_document with {what} raises InvalidInputError", InvalidInputError, storage, "alpha", call)
        with storage.transaction("alpha") as tx:
            _expect("a refused document is not written", None, tx.get_document("event", "k"))


CHECKS: Final[Mapping[str, _Check]] = MappingProxyType(dict(_REGISTRY))
"""Every check of `check_storage`, by name, in the order they run; each takes a `StorageFactory`."""


@attrs.frozen
class CheckFailure:
    """One failed check of `run_checks`: its name, what it said, and the exception it raised."""

    name: str
    message: str
    error: BaseException = attrs.field(eq=False, repr=False)

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def run_checks(factory: StorageFactory, *, skip: Collection[str] = ()) -> list[CheckFailure]:
    """
    Run every check in `CHECKS` (except those named in *skip*) against storages made by *factory*.

    A check fails by raising `AssertionError`; any other exception (a raw driver error leaking, say) is a
    failure too, reported with its class. A check of an optional capability the storage does not offer
    warns `CapabilityNotOffered` and passes.

    Returns:
        The failures, in the order the checks ran; an empty list means the adapter passed.

    Raises:
        KeyError: *skip* names a check that does not exist.
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise KeyError(unknown)
    failures = []
    for name, check in CHECKS.items():
        if name in skip:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", CapabilityNotOffered)  # shown, never a failure, whatever the filters
                check(factory)
        except AssertionError as exc:
            failures.append(CheckFailure(name, str(exc), exc))
        except Exception as exc:  # noqa: BLE001 - every crash of a check is a reported failure
            failures.append(CheckFailure(name, f"raised {type(exc).__name__}: {exc}", exc))
    return failures


def check_storage(factory: StorageFactory, *, skip: Collection[str] = ()) -> None:
    """
    Check that storages made by *factory* keep the `Storage` contract, running every check in `CHECKS`.

    Each check makes its own storage with *factory* (which must return a fresh, empty one) and closes it.

    Args:
        factory: A zero-argument callable returning a fresh, empty `Storage`.
        skip: Names of checks not to run (for a known, documented deviation).

    Raises:
        AssertionError: some checks failed; the message lists each one with the clause it broke.
    """
    failures = run_checks(factory, skip=skip)
    if failures:
        lines = "\n\n".join(str(f) for f in failures)
        msg = f"{len(failures)} of {len(CHECKS) - len(skip)} storage checks failed:\n\n{lines}"
        raise AssertionError(msg)


# --- concurrency -------------------------------------------------------------------------------------------------


@attrs.frozen
class ConcurrencyReport:
    """
    What `check_concurrency` saw: trials per race, racers, wins, refusals and retried concurrency errors.

    ``wins`` and ``conflicts`` count the races for capacity (a racer that won a slot, or got `ConflictError`);
    ``retries`` counts every `ConcurrencyError` retried in any race.
    """

    trials: int
    racers: int
    wins: int
    conflicts: int
    retries: int
    seconds: float


@attrs.define
class _Race:
    """One contested trial: what each racer got, and the retries it needed."""

    outcomes: list[str] = attrs.Factory(list)
    errors: list[BaseException] = attrs.Factory(list)
    retries: int = 0
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def add(self, outcome: str, retries: int, error: BaseException | None = None) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            self.retries += retries
            if error is not None:
                self.errors.append(error)


def _attempt(
    storage: Storage, tenant: str, work: Callable[[StorageTransaction], None], *, retries: int
) -> tuple[str, int, BaseException | None]:
    """Run *work* in its own committed transaction, retrying `ConcurrencyError` as the engine does."""
    return _attempt_call(lambda: _in(storage, tenant, work), retries=retries)


def _attempt_call(call: Callable[[], object], *, retries: int) -> tuple[str, int, BaseException | None]:
    """Make *call* (a whole committed write), retrying `ConcurrencyError` as the engine does."""
    for attempt in range(retries + 1):
        try:
            call()
        except ConflictError:
            return "conflict", attempt, None
        except ConcurrencyError as exc:
            if attempt == retries:
                return "exhausted", attempt, exc
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))  # jittered backoff
            continue
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the race
            return "error", attempt, exc
        return "won", attempt, None
    raise AssertionError  # pragma: no cover - the loop always returns


def _race(
    pool: ThreadPoolExecutor,
    racers: Sequence[Callable[[], tuple[str, int, BaseException | None]]],
    *,
    timeout: float,
    clause: str,
) -> _Race:
    """Release every racer at once (one barrier) and collect what each got."""
    race = _Race()
    barrier = threading.Barrier(len(racers), timeout=timeout)

    def run(racer: Callable[[], tuple[str, int, BaseException | None]]) -> None:
        barrier.wait()
        race.add(*racer())

    futures = [pool.submit(run, racer) for racer in racers]
    deadline = time.monotonic() + timeout
    for future in futures:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, threading.BrokenBarrierError):
            msg = f"{clause}: racers did not finish within {timeout} s (a deadlock, or a lock never released)"
            raise AssertionError(msg) from None
    unexpected = [e for e in race.errors if not isinstance(e, ConcurrencyError)]
    if unexpected:
        shown = "; ".join(f"{type(e).__name__}: {e}" for e in unexpected[:3])
        msg = f"{clause}: racers may only win or get ConflictError (ConcurrencyError is retried), got {shown}"
        raise AssertionError(msg) from unexpected[0]
    exhausted = race.outcomes.count("exhausted")
    if exhausted:
        msg = f"{clause}: {exhausted} racers still got ConcurrencyError after every retry (a deadlock surfaced?)"
        raise AssertionError(msg)
    return race


def _peak(bookings: Sequence[Booking], resource_id: str) -> int:
    loads = [ld for b in bookings if b.status in LIVE_STATUSES for ld in b.loads() if ld.resource_id == resource_id]
    return CapacityProfile((ld.blocked, ld.units) for ld in loads).peak


_SWITCH_INTERVAL: Final = 1e-6
"""Seconds between the interpreter's thread switches while `check_concurrency` races (its default is 5 ms)."""


def check_concurrency(
    factory: StorageFactory,
    *,
    threads: int = 8,
    trials: int = 50,
    retries: int = 50,
    timeout: float = 60.0,
    switch_interval: float | None = _SWITCH_INTERVAL,
) -> ConcurrencyReport:
    """
    Race *threads* racers through separate transactions of one storage, *trials* times for each race.

    1. **The same slot** (research note C1, C2): every racer reserves the same hour on a fresh resource of
       capacity 1, 2 or 3 (half of them call ``lock_resources`` first). Exactly ``min(capacity, threads)``
       win; the others get `ConflictError`; the stored bookings are the winners' and never exceed capacity.
    2. **Two needs in opposite orders** (C5): each racer books two fresh resources at once, half of them
       naming (and locking) them in the opposite order. No racer fails for a deadlock: an adapter locks in
       sorted order (a `ConcurrencyError` is retried, as `BookingEngine` does, up to *retries* times).
    3. **One idempotency key** (I1): every racer saves the same key; exactly one succeeds, the others get
       `ConcurrencyError` and then find the winner's record.
    4. **One-call writes** (only for a storage with `slotengine.ports.ReserveAndRecord`, which the engine uses
       for every new hold or booking once it has read its catalogue): every racer calls ``reserve_and_record``
       (two trials in four), or half of them do and the others reserve in a transaction, on the same slot
       (even trials) or on two resources named in opposite orders (odd trials). Exactly
       ``min(capacity, threads)`` win, and each winner's transition record and outbox message are stored with
       its booking, no loser's.
    5. **One booking, one version** (lost updates): every racer updates the same booking with
       ``update_booking(expected_version=v)``, v being the version they all read before the race. Exactly one
       wins; the others get `ConcurrencyError` (a racer that retries finds the winner's version and gives up),
       and the stored booking is the winner's. An adapter that checks the version it read but writes without
       comparing it again (an ``UPDATE`` without ``AND version = ...`` under row-level concurrency) lets
       several win, each overwriting the others.
    6. **One outbox message claimed** (only for a storage whose transactions have
       `slotengine.ports.OutboxClaims`): every racer swaps the same message it read for a claim of its own.
       Exactly one ``swap_outbox`` returns True and commits; the others return False (`ConcurrencyError` is
       retried), and the stored message is the winner's claim.

    The interpreter switches threads every *switch_interval* seconds during the races (restored afterwards):
    with its default 5 ms, racers in pure Python (an adapter in memory) rarely interleave between a check and
    a write, so a missing lock goes unseen. The races run with the process's local zone set as the battery's
    checks are.

    Args:
        factory: A zero-argument callable returning a fresh, empty `Storage` that threads may share.
        threads: Racers per trial.
        trials: Trials of each race.
        retries: How often a racer retries after `ConcurrencyError` before that counts as a failure.
        timeout: Seconds a trial may take before it counts as a deadlock.
        switch_interval: Seconds between thread switches during the races (`sys.setswitchinterval`), or None
            to leave the interpreter's setting alone.

    Returns:
        The figures of the run.

    Raises:
        AssertionError: a race went wrong; the message names the race, the trial and the clause.
    """
    if threads < 2 or trials < 1:
        msg = "check_concurrency needs at least 2 threads and 1 trial"
        raise ValueError(msg)
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="racer")
    try:
        with _in_process_zone(), _switching_every(switch_interval), _made(factory) as storage:
            wins, conflicts, retried = _run_races(
                storage, pool, threads=threads, trials=trials, retries=retries, timeout=timeout
            )
    finally:
        # A racer stuck in a deadlock must not hang the test run: do not wait for the pool's threads.
        pool.shutdown(wait=False, cancel_futures=True)
    return ConcurrencyReport(trials, threads, wins, conflicts, retried, time.perf_counter() - started)


@contextmanager
def _switching_every(interval: float | None) -> Iterator[None]:
    """Make the interpreter switch threads every *interval* seconds (None: leave it), and restore it afterwards."""
    if interval is None:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _run_races(  # noqa: C901, PLR0915 - the races written out, each with its own checks
    storage: Storage, pool: ThreadPoolExecutor, *, threads: int, trials: int, retries: int, timeout: float
) -> tuple[int, int, int]:
    wins = conflicts = retried = 0
    tenant = "race"
    _in(storage, tenant, lambda tx: tx.put_business(_business()))
    contested = _booking("contested", at(10), at(11), resources=["contested"])
    _in(storage, tenant, _cataloguing({"contested": 1}))
    _in(storage, tenant, _reserving(contested, now=at(8)))
    claims = _in(storage, tenant, lambda tx: isinstance(tx, OutboxClaims), commit=False)
    for trial in range(trials):
        capacity = 1 + trial % 3
        expected = min(capacity, threads)

        # 1. the same slot
        rid = f"slot-{trial}"
        _in(storage, tenant, _cataloguing({rid: capacity}))

        def same_slot(
            index: int, rid: str = rid, trial: int = trial
        ) -> Callable[[], tuple[str, int, BaseException | None]]:
            booking = _booking(f"t{trial}-{index}", at(10), at(11), resources=[rid])

            def work(tx: StorageTransaction) -> None:
                if index % 2:
                    tx.lock_resources([rid])
                tx.reserve(booking, now=at(8))

            return lambda: _attempt(storage, tenant, work, retries=retries)

        clause = f"same slot, trial {trial}, capacity {capacity}"
        race = _race(pool, [same_slot(i) for i in range(threads)], timeout=timeout, clause=clause)
        _expect(f"{clause}: exactly min(capacity, racers) racers win", expected, race.outcomes.count("won"))
        stored = _in(storage, tenant, _finding(BookingQuery(resource_id=rid)))
        _expect(f"{clause}: every winner's booking is stored, and nothing else", expected, len(stored))
        if _peak(stored, rid) > capacity:
            msg = f"{clause}: the stored bookings exceed capacity (oversold)"
            raise AssertionError(msg)
        wins += expected
        conflicts += race.outcomes.count("conflict")
        retried += race.retries

        # 2. two needs, locked in opposite orders
        first, second = f"a-{trial}", f"b-{trial}"
        _in(storage, tenant, _cataloguing({second: capacity, first: capacity}))

        def two_needs(
            index: int, first: str = first, second: str = second, trial: int = trial
        ) -> Callable[[], tuple[str, int, BaseException | None]]:
            order = (first, second) if index % 2 == 0 else (second, first)
            booking = Booking(
                f"n{trial}-{index}",
                "s1",
                at(10),
                at(11),
                (Assignment(0, "one", (order[0],)), Assignment(1, "two", (order[1],))),
                (1, 1),
                BookingStatus.CONFIRMED,
                CREATED,
            )

            def work(tx: StorageTransaction) -> None:
                if index % 4 < 2:
                    tx.lock_resources(order)
                tx.reserve(booking, now=at(8))

            return lambda: _attempt(storage, tenant, work, retries=retries)

        clause = f"two needs in opposite orders, trial {trial}, capacity {capacity}"
        race = _race(pool, [two_needs(i) for i in range(threads)], timeout=timeout, clause=clause)
        _expect(f"{clause}: exactly min(capacity, racers) racers win", expected, race.outcomes.count("won"))
        stored = _in(storage, tenant, _finding(BookingQuery(resource_id=first)))
        _expect(f"{clause}: every winner's booking is stored, and nothing else", expected, len(stored))
        for resource_id in (first, second):
            if _peak(stored, resource_id) > capacity:
                msg = f"{clause}: the stored bookings exceed the capacity of {resource_id} (oversold)"
                raise AssertionError(msg)
        wins += expected
        conflicts += race.outcomes.count("conflict")
        retried += race.retries

        # 3. one idempotency key
        key = f"key-{trial}"
        saved: list[IdempotencyRecord] = []
        saved_lock = threading.Lock()

        def keyed(
            index: int, key: str = key, saved: list[IdempotencyRecord] = saved, saved_lock: threading.Lock = saved_lock
        ) -> Callable[[], tuple[str, int, BaseException | None]]:
            record = IdempotencyRecord(key, f"hash-{index}", f"k{index}", "{}", at(8))

            def run() -> tuple[str, int, BaseException | None]:
                try:
                    _in(storage, tenant, lambda tx: tx.put_idempotency(record))
                except ConcurrencyError:
                    found = _in(storage, tenant, lambda tx: tx.get_idempotency(key), commit=False)
                    return ("replayed" if found is not None else "lost"), 0, None
                except Exception as exc:  # noqa: BLE001 - reported as a failure of the race
                    return "error", 0, exc
                with saved_lock:
                    saved.append(record)
                return "won", 0, None

            return run

        clause = f"one idempotency key, trial {trial}"
        race = _race(pool, [keyed(i) for i in range(threads)], timeout=timeout, clause=clause)
        _expect(f"{clause}: exactly one racer saves the key", 1, race.outcomes.count("won"))
        _expect(
            f"{clause}: every loser gets ConcurrencyError and then finds the record",
            threads - 1,
            race.outcomes.count("replayed"),
        )
        found = _in(storage, tenant, _key_reader(key), commit=False)
        _expect(f"{clause}: the stored record is the winner's", saved, [found])

        # 4. one-call writes against transactions
        if isinstance(storage, ReserveAndRecord):
            race = _one_call_race(storage, pool, tenant, trial, threads=threads, retries=retries, timeout=timeout)
            wins += expected
            conflicts += race.outcomes.count("conflict")
            retried += race.retries

        # 5. one booking updated at one version
        race = _lost_update_race(storage, pool, tenant, trial, threads=threads, retries=retries, timeout=timeout)
        retried += race.retries

        # 6. one outbox message claimed
        if claims:
            race = _claim_race(storage, pool, tenant, trial, threads=threads, retries=retries, timeout=timeout)
            retried += race.retries
    return wins, conflicts, retried


_Racer: TypeAlias = Callable[[], tuple[str, int, BaseException | None]]


def _lost_update_race(
    storage: Storage,
    pool: ThreadPoolExecutor,
    tenant: str,
    trial: int,
    *,
    threads: int,
    retries: int,
    timeout: float,
) -> _Race:
    """Race 5 of `check_concurrency`: every racer updates the booking ``contested`` at the version read before."""
    read = _in(storage, tenant, lambda tx: tx.get_booking("contested"), commit=False)

    def racer(index: int) -> _Racer:
        mine = attrs.evolve(read, notes=f"trial {trial}, racer {index}", version=read.version + 1)

        def update(tx: StorageTransaction) -> None:
            tx.get_booking("contested")  # as the engine reads before it writes (what it reads is not used here)
            tx.update_booking(mine, expected_version=read.version)

        def run() -> tuple[str, int, BaseException | None]:
            for attempt in range(retries + 1):
                try:
                    _in(storage, tenant, update)
                except ConcurrencyError as exc:
                    # Stale (another racer's update is in), or in another's way (retry, as the engine would).
                    now = _in(storage, tenant, lambda tx: tx.get_booking("contested"), commit=False)
                    if now.version != read.version:
                        return "stale", attempt, None
                    if attempt == retries:
                        return "exhausted", attempt, exc
                    time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
                except Exception as exc:  # noqa: BLE001 - reported as a failure of the race
                    return "error", attempt, exc
                else:
                    return "won", attempt, None
            raise AssertionError  # pragma: no cover - the loop always returns

        return run

    clause = f"one booking updated at one version (v{read.version}), trial {trial}"
    race = _race(pool, [racer(i) for i in range(threads)], timeout=timeout, clause=clause)
    stored = _in(storage, tenant, lambda tx: tx.get_booking("contested"), commit=False)
    won = race.outcomes.count("won")
    if won != 1:
        msg = (
            f"{clause}: exactly one racer's update_booking(expected_version={read.version}) wins, the others get "
            f"ConcurrencyError: {won} of {threads} won, and the stored booking says {stored.notes!r} (an update "
            "that checks the version it read but does not compare it again when it writes loses the others' updates)"
        )
        raise AssertionError(msg)
    _expect(f"{clause}: the stored booking is the winner's update", read.version + 1, stored.version)
    if not stored.notes.startswith(f"trial {trial}, racer "):
        msg = f"{clause}: the stored booking is the winner's update, but it says {stored.notes!r}"
        raise AssertionError(msg)
    return race


def _claim_race(
    storage: Storage,
    pool: ThreadPoolExecutor,
    tenant: str,
    trial: int,
    *,
    threads: int,
    retries: int,
    timeout: float,
) -> _Race:
    """Race 6 of `check_concurrency`: every racer claims the same outbox message with ``swap_outbox``."""
    first = _message(f"claim-{trial}", booking_id="contested")
    _in(storage, tenant, lambda tx: tx.append_outbox([first]))
    claims = [attrs.evolve(first, attempts=1, last_error=f"claimed by racer {index}") for index in range(threads)]

    def racer(index: int) -> _Racer:
        def swap(tx: StorageTransaction) -> bool:
            tx.list_outbox(pending_only=True, booking_id="contested")  # as a dispatcher reads what is due first
            return tx.swap_outbox(first, claims[index])  # type: ignore[attr-defined, no-any-return]

        def run() -> tuple[str, int, BaseException | None]:
            for attempt in range(retries + 1):
                try:
                    swapped = _in(storage, tenant, swap)
                except ConcurrencyError as exc:
                    if attempt == retries:
                        return "exhausted", attempt, exc
                    time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
                except Exception as exc:  # noqa: BLE001 - reported as a failure of the race
                    return "error", attempt, exc
                else:
                    return ("won" if swapped else "refused"), attempt, None
            raise AssertionError  # pragma: no cover - the loop always returns

        return run

    clause = f"one outbox message claimed (swap_outbox), trial {trial}"
    race = _race(pool, [racer(i) for i in range(threads)], timeout=timeout, clause=clause)
    stored = [m for m in _in(storage, tenant, lambda tx: tx.list_outbox(booking_id="contested")) if m.id == first.id]
    won = race.outcomes.count("won")
    if won != 1:
        msg = (
            f"{clause}: of racers swapping the same message, exactly one succeeds (True), the others get False: "
            f"{won} of {threads} got True, so {won} dispatchers would send it (a swap that compares the message "
            "it read, then writes by id alone, is no compare-and-set)"
        )
        raise AssertionError(msg)
    if len(stored) != 1 or stored[0] not in claims:
        msg = f"{clause}: the stored message is the winner's claim, got {stored!r}"
        raise AssertionError(msg)
    return race


def _one_call_race(
    storage: Storage,
    pool: ThreadPoolExecutor,
    tenant: str,
    trial: int,
    *,
    threads: int,
    retries: int,
    timeout: float,
) -> _Race:
    """Race 4 of `check_concurrency`: ``reserve_and_record`` against transactions; check what was stored."""
    capacity = 1 + trial % 3
    expected = min(capacity, threads)
    first, second = f"once-{trial}", f"once-{trial}-b"
    rids = (first,) if trial % 2 == 0 else (first, second)
    _in(storage, tenant, _cataloguing(dict.fromkeys(rids, capacity)))
    version = _version(storage, tenant)
    write_at_once = storage.reserve_and_record  # type: ignore[attr-defined]
    mixed = trial % 4 >= 2  # every racer writes at once (as engines do), or half of them in a transaction

    def racer(index: int) -> Callable[[], tuple[str, int, BaseException | None]]:
        order = rids if index % 4 < 2 else rids[::-1]
        booking_id = f"o{trial}-{index}"
        assignments = tuple(Assignment(i, f"need-{i}", (rid,)) for i, rid in enumerate(order))
        booking = Booking(
            booking_id, "s1", at(10), at(11), assignments, (1,) * len(order), BookingStatus.CONFIRMED, CREATED
        )
        records = [_record(booking_id, Action.BOOK)]
        messages = [_message(booking_id, booking_id=booking_id)]
        if not mixed or index % 2 == 0:
            return lambda: _attempt_call(
                lambda: write_at_once(
                    tenant, booking, now=at(8), transitions=records, outbox=messages, catalogue_version=version
                ),
                retries=retries,
            )

        def work(tx: StorageTransaction) -> None:
            tx.reserve(booking, now=at(8))
            tx.append_transitions(records)
            tx.append_outbox(messages)

        return lambda: _attempt(storage, tenant, work, retries=retries)

    where = "the same slot" if len(rids) == 1 else "two resources named in opposite orders"
    against = " against transactions" if mixed else ""
    clause = f"one-call writes (reserve_and_record){against} on {where}, trial {trial}, capacity {capacity}"
    race = _race(pool, [racer(i) for i in range(threads)], timeout=timeout, clause=clause)
    won = race.outcomes.count("won")
    stored = _in(storage, tenant, _finding(BookingQuery(resource_id=first)), commit=False)
    if won != expected:
        msg = (
            f"{clause}: exactly min(capacity, racers) racers win: expected {expected}, actual {won}; "
            f"{len(stored)} of their bookings are stored (a check and a write in separate transactions, or a lock "
            "that does not reach every writer, lets several racers see the slot free)"
        )
        raise AssertionError(msg)
    _expect(f"{clause}: every winner's booking is stored, and nothing else", expected, len(stored))
    for resource_id in rids:
        if _peak(stored, resource_id) > capacity:
            msg = f"{clause}: the stored bookings exceed the capacity of {resource_id} (oversold)"
            raise AssertionError(msg)
    _check_winners_records(storage, tenant, f"o{trial}-", sorted(b.id for b in stored), clause)
    return race


def _check_winners_records(storage: Storage, tenant: str, prefix: str, winners: list[str], clause: str) -> None:
    """The racers' transition records and outbox messages (ids starting *prefix*) are the winners' alone."""

    def records_of(tx: StorageTransaction) -> tuple[list[str], list[str]]:
        logged = sorted(r.booking_id for r in tx.list_transitions() if r.booking_id.startswith(prefix))
        queued = sorted(m.id for m in tx.list_outbox() if m.id.startswith(prefix))
        return logged, queued

    logged, queued = _in(storage, tenant, records_of, commit=False)
    _expect(f"{clause}: the winners' transition records are stored with their bookings, no loser's", winners, logged)
    _expect(f"{clause}: the winners' outbox messages are stored with their bookings, no loser's", winners, queued)


# --- concurrency across processes ------------------------------------------------------------------------------------


@attrs.frozen
class _Role:
    """What one racing process does in one trial of `check_concurrency_across_processes`."""

    order: tuple[str, ...]
    at_once: bool
    lock: bool


_SPAWN_WAIT: Final = 30.0
"""Seconds the racing processes get to start, on top of the first trial's *timeout*."""


def _cross_resources(trial: int) -> tuple[str, ...]:
    """The resources a trial races for: one slot (even trials) or two resources (odd trials)."""
    return (f"xp-{trial}",) if trial % 2 == 0 else (f"xp-{trial}", f"xp-{trial}-b")


def _cross_role(trial: int, index: int, *, one_call: bool) -> _Role:
    """
    The role of racer *index* in *trial*, from the two numbers alone (the main process needs no message for it).

    Roles turn every two trials: a one-call write (or, without `ReserveAndRecord`, a transaction that locks
    first) naming the resources in order, a locking transaction naming them backwards, a one-call write (or a
    plain transaction) naming them backwards, and a plain transaction naming them in order.
    """
    role = (index + trial // 2) % 4
    rids = _cross_resources(trial)
    order = rids[::-1] if role in {1, 2} else rids
    return _Role(order, one_call and role in {0, 2}, role in {0, 1})


def _cross_booking(trial: int, index: int, order: Sequence[str]) -> Booking:
    """The booking racer *index* asks for in *trial*: 10:00 to 11:00, one unit of each resource in *order*."""
    assignments = tuple(Assignment(i, f"need-{i}", (rid,)) for i, rid in enumerate(order))
    return Booking(
        f"x{trial}-{index}", "s1", at(10), at(11), assignments, (1,) * len(order), BookingStatus.CONFIRMED, CREATED
    )


def _told(exc: BaseException) -> str:
    """An exception as text, for the queue (an adapter's exception may not pickle)."""
    return f"{type(exc).__name__}: {exc}"


def _cross_call(storage: Storage, tenant: str, trial: int, index: int) -> Callable[[], object]:
    """The whole write racer *index* makes in *trial*, its booking with a transition record and an outbox message."""
    role = _cross_role(trial, index, one_call=isinstance(storage, ReserveAndRecord))
    booking = _cross_booking(trial, index, role.order)
    records = [_record(booking.id, Action.BOOK)]
    messages = [_message(booking.id, booking_id=booking.id)]
    if role.at_once and isinstance(storage, ReserveAndRecord):
        version = _version(storage, tenant)
        write_at_once = storage.reserve_and_record
        return lambda: write_at_once(
            tenant, booking, now=at(8), transitions=records, outbox=messages, catalogue_version=version
        )

    def work(tx: StorageTransaction) -> None:
        if role.lock:
            tx.lock_resources(role.order)
        tx.reserve(booking, now=at(8))
        tx.append_transitions(records)
        tx.append_outbox(messages)

    return lambda: _in(storage, tenant, work)


def _process_racer(
    opener: StorageFactory,
    tenant: str,
    index: int,
    trials: int,
    retries: int,
    timeout: float,
    barrier: Any,
    outcomes: Any,
) -> None:
    """
    One racing process of `check_concurrency_across_processes` (a module-level function, so ``spawn`` finds it).

    For each trial it waits at *barrier* until the trial's resources exist, reads the catalogue version, waits
    again for the start, makes its write and puts ``(trial, "booking", index, outcome, retries, error)`` on
    *outcomes*; then it waits for the start of the key race, saves the trial's idempotency key and puts
    ``(trial, "key", ...)``. A failure outside the races (the opener, a broken barrier) is put with trial -1, and
    breaks the barrier.
    """
    try:
        storage = opener()
    except BaseException as exc:  # noqa: BLE001 - reported to the main process, which fails the check
        outcomes.put((-1, "", index, "error", 0, f"opening the storage raised {_told(exc)}"))
        barrier.abort()
        return
    try:
        for trial in range(trials):
            barrier.wait(timeout + (_SPAWN_WAIT if trial == 0 else 0.0))  # the trial's resources exist
            call = _cross_call(storage, tenant, trial, index)
            barrier.wait(timeout)  # go
            outcome, retried, error = _attempt_call(call, retries=retries)
            outcomes.put((trial, "booking", index, outcome, retried, None if error is None else _told(error)))
            barrier.wait(timeout)  # the bookings are checked: go for the key
            outcome, retried, error = _save_key(storage, tenant, _cross_key(trial, index), retries=retries)
            outcomes.put((trial, "key", index, outcome, retried, None if error is None else _told(error)))
    except BaseException as exc:  # noqa: BLE001 - reported to the main process, which fails the check
        outcomes.put((-1, "", index, "error", 0, _told(exc)))
        barrier.abort()
    finally:
        storage.close()


def _cross_key(trial: int, index: int) -> IdempotencyRecord:
    """The idempotency record racer *index* saves in *trial* (every racer of a trial saves the same key)."""
    return IdempotencyRecord(f"xkey-{trial}", f"hash-{index}", f"x{trial}-{index}", f'"{index}"', at(8))


def _save_key(
    storage: Storage, tenant: str, record: IdempotencyRecord, *, retries: int
) -> tuple[str, int, BaseException | None]:
    """
    Save *record*, as a keyed engine call does: "won", or "replayed" if the key was taken and is now found.

    A `ConcurrencyError` after which the key is not found yet (a writer in the way, not the winner) is retried.
    """
    for attempt in range(retries + 1):
        try:
            _in(storage, tenant, lambda tx: tx.put_idempotency(record))
        except ConcurrencyError as exc:
            if _in(storage, tenant, _key_reader(record.key), commit=False) is not None:
                return "replayed", attempt, None
            if attempt == retries:
                return "exhausted", attempt, exc
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the race
            return "error", attempt, exc
        else:
            return "won", attempt, None
    raise AssertionError  # pragma: no cover - the loop always returns


def check_concurrency_across_processes(
    opener: StorageFactory,
    *,
    processes: int = 4,
    trials: int = 10,
    retries: int = 50,
    timeout: float = 60.0,
) -> ConcurrencyReport:
    """
    Race *processes* processes, each with its own storage on the same database, *trials* times.

    `check_concurrency` races threads sharing one storage object, so a storage that serializes its transactions
    with a lock of its own process (a ``threading.Lock``) passes it, and still oversells as soon as two
    processes (two web workers) open the same database. Here every racer is a ``spawn``ed process that calls
    *opener* once. Each trial races for a fresh resource of capacity 1, 2 or 3 (even trials) or two resources
    named in opposite orders (odd trials); half the racers write in a transaction (locking first or not), the
    others with ``reserve_and_record`` if the storage has `slotengine.ports.ReserveAndRecord` (else in
    transactions too). Exactly ``min(capacity, processes)`` win, the others get `ConflictError`
    (`ConcurrencyError` is retried up to *retries* times); the stored bookings are the winners' and never
    exceed capacity, and every winner's transition record and outbox message are stored, no loser's. Then, in
    each trial, every process saves the same idempotency key: exactly one succeeds, the others get
    `ConcurrencyError` and find the winner's record. The run uses a tenant of its own (``xproc-<random>``), so
    the database may hold other data, and the processes start with the process zone the battery's checks use.

    Args:
        opener: A picklable zero-argument callable that opens a `Storage` on the same database every time (a
            module-level function, or ``functools.partial(SQLiteStorage, path)``,
            ``functools.partial(PostgresStorage, dsn, schema=name)``): it is sent to the racing processes. A
            storage that lives in one process (`MemoryStorage`) cannot take part.
        processes: Racing processes (a ``spawn`` costs about a second, paid once per run).
        trials: Races run by those processes.
        retries: How often a racer retries after `ConcurrencyError` before that counts as a failure.
        timeout: Seconds to wait for the racers at each start and for their answers in each trial (the first
            start waits 30 s more, for the processes to start).

    Returns:
        The figures of the run (``racers`` is *processes*).

    Raises:
        AssertionError: a race went wrong; the message names the trial and what happened to the data.
        TypeError: *opener* does not pickle.
        ValueError: fewer than 2 processes or 1 trial, or *opener* opens a `MemoryStorage`.
    """
    if processes < 2 or trials < 1:
        msg = "check_concurrency_across_processes needs at least 2 processes and 1 trial"
        raise ValueError(msg)
    try:
        pickle.dumps(opener)
    except Exception as exc:
        msg = (
            f"the opener must pickle, to be sent to the racing processes (a module-level function, or a "
            f"functools.partial of a class): {_told(exc)}"
        )
        raise TypeError(msg) from exc
    started = time.perf_counter()
    tenant = f"xproc-{uuid.uuid4().hex[:12]}"
    context = multiprocessing.get_context("spawn")
    with _in_process_zone(), _made(opener) as storage:  # spawned processes inherit TZ
        if type(storage) is MemoryStorage:
            msg = "a MemoryStorage lives in one process: racing processes cannot share it"
            raise ValueError(msg)
        _in(storage, tenant, lambda tx: tx.put_business(_business()))
        barrier = context.Barrier(processes + 1)
        outcomes = context.Queue()
        racers = [
            context.Process(
                target=_process_racer,
                args=(opener, tenant, index, trials, retries, timeout, barrier, outcomes),
                name=f"slotengine-racer-{index}",
                daemon=True,
            )
            for index in range(processes)
        ]
        finished = False
        try:
            for racer in racers:
                racer.start()
            wins = conflicts = retried = 0
            for trial in range(trials):
                won, refused, again = _process_trial(storage, tenant, trial, racers, barrier, outcomes, timeout)
                wins, conflicts, retried = wins + won, conflicts + refused, retried + again
            finished = True
        finally:
            _stop_racers(racers, barrier, outcomes, grace=10.0 if finished else 1.0)
    return ConcurrencyReport(trials, processes, wins, conflicts, retried, time.perf_counter() - started)


def _stop_racers(racers: Sequence[Any], barrier: Any, outcomes: Any, *, grace: float) -> None:
    """Release racers waiting at the barrier, give them *grace* seconds to end, then end the rest."""
    barrier.abort()
    deadline = time.monotonic() + grace
    for racer in racers:
        if racer.pid is not None:
            racer.join(max(0.0, deadline - time.monotonic()))
    for racer in racers:
        if racer.is_alive():
            racer.terminate()
            racer.join(5.0)
        if racer.is_alive():  # pragma: no cover - a racer that ignores SIGTERM
            racer.kill()
            racer.join(5.0)
    outcomes.close()
    outcomes.join_thread()


def _racer_failures(racers: Sequence[Any], outcomes: Any) -> str:
    """What the racers said went wrong outside the race, or how they ended, for a failure message."""
    said: list[str] = []
    with suppress(queue.Empty, OSError, ValueError):
        while True:
            trial, _, index, outcome, _, error = outcomes.get(timeout=0.2)
            if outcome == "error":
                said.append(f"process {index}{'' if trial < 0 else f' (trial {trial})'}: {error}")
    ended = [f"process {i} exited with code {r.exitcode}" for i, r in enumerate(racers) if r.exitcode not in {None, 0}]
    return "; ".join(said + ended) or "no racer said why"


def _process_trial(
    storage: Storage, tenant: str, trial: int, racers: Sequence[Any], barrier: Any, outcomes: Any, timeout: float
) -> tuple[int, int, int]:
    """One trial of `check_concurrency_across_processes`: set up, release the racers, check what is stored."""
    processes = len(racers)
    capacity = 1 + trial % 3
    expected = min(capacity, processes)
    rids = _cross_resources(trial)
    where = "the same slot" if len(rids) == 1 else "two resources named in opposite orders"
    clause = f"trial {trial}, capacity {capacity}"
    _in(storage, tenant, _cataloguing(dict.fromkeys(rids, capacity)))
    for moment, wait in (("ready", timeout + (_SPAWN_WAIT if trial == 0 else 0.0)), ("start", timeout)):
        try:
            barrier.wait(wait)
        except threading.BrokenBarrierError:
            msg = (
                f"{clause}: the racing processes did not all reach the {moment} within {wait} s (a racer stuck in a "
                f"transaction, or one that failed: {_racer_failures(racers, outcomes)})"
            )
            raise AssertionError(msg) from None
    got = _collect(racers, outcomes, trial, "booking", timeout, clause)
    errors = [f"process {index}: {error}" for index, (outcome, _, error) in got.items() if outcome == "error"]
    if errors:
        hint = ""
        if any("NotFoundError" in e for e in errors):
            hint = " (does every opener() open the same database? a storage of one process only cannot take part)"
        msg = f"{clause}: racers may only win or get ConflictError, got {'; '.join(errors[:3])}{hint}"
        raise AssertionError(msg)
    exhausted = [index for index, (outcome, _, _) in got.items() if outcome == "exhausted"]
    if exhausted:
        msg = (
            f"{clause}: {len(exhausted)} racing processes still got ConcurrencyError after every retry (a deadlock "
            "between processes surfaced?)"
        )
        raise AssertionError(msg)
    winners = sorted(f"x{trial}-{index}" for index, (outcome, _, _) in got.items() if outcome == "won")
    stored = _in(storage, tenant, _finding(BookingQuery(resource_id=rids[0])), commit=False)
    held = f"{len(stored)} booking{'' if len(stored) == 1 else 's'} {'is' if len(stored) == 1 else 'are'} stored"
    if len(winners) > expected:
        msg = (
            f"{clause}: {len(winners)} processes were told they won {where}; {held} (a lock that serializes one "
            "process only, or commits that overwrite each other)"
        )
        raise AssertionError(msg)
    if len(winners) < expected:
        msg = (
            f"{clause}: only {len(winners)} of {processes} processes won {where} with room for {expected}; {held} "
            "(racers were refused room that was free)"
        )
        raise AssertionError(msg)
    if winners != sorted(b.id for b in stored):
        msg = (
            f"{clause}: the processes told they won are {winners}, but the stored bookings are "
            f"{sorted(b.id for b in stored)} (a commit that overwrote another process's, or a refused write that "
            "was kept)"
        )
        raise AssertionError(msg)
    for rid in rids:
        peak = _peak(stored, rid)
        if peak > capacity:
            msg = f"{clause}: the stored bookings take {peak} units of {rid} at once, over its capacity (oversold)"
            raise AssertionError(msg)

    _check_winners_records(storage, tenant, f"x{trial}-", winners, clause)
    refused = sum(1 for outcome, _, _ in got.values() if outcome == "conflict")
    retried = sum(again for _, again, _ in got.values()) + _process_key_race(
        storage, tenant, trial, racers, barrier, outcomes, timeout
    )
    return expected, refused, retried


def _process_key_race(
    storage: Storage, tenant: str, trial: int, racers: Sequence[Any], barrier: Any, outcomes: Any, timeout: float
) -> int:
    """The key race of a trial of `check_concurrency_across_processes`: exactly one process saves the key."""
    clause = f"trial {trial}, one idempotency key"
    try:
        barrier.wait(timeout)
    except threading.BrokenBarrierError:
        msg = f"{clause}: the racing processes did not all reach the start within {timeout} s"
        msg += f" ({_racer_failures(racers, outcomes)})"
        raise AssertionError(msg) from None
    got = _collect(racers, outcomes, trial, "key", timeout, clause)
    failed = [f"process {i}: {outcome} {error or ''}" for i, (outcome, _, error) in got.items() if outcome == "error"]
    failed += [f"process {i}: {outcome}" for i, (outcome, _, _) in got.items() if outcome == "exhausted"]
    if failed:
        msg = f"{clause}: racers may only save the key or find it saved, got {'; '.join(failed[:3])}"
        raise AssertionError(msg)
    winners = sorted(index for index, (outcome, _, _) in got.items() if outcome == "won")
    if len(winners) != 1:
        msg = (
            f"{clause}: exactly one process saves the key, the others get ConcurrencyError and find it, but "
            f"processes {winners} were told they saved it (a uniqueness check that one process's lock guards, or a "
            "key checked on a snapshot without a unique index)"
        )
        raise AssertionError(msg)
    found = _in(storage, tenant, _key_reader(f"xkey-{trial}"), commit=False)
    _expect(f"{clause}: the stored record is the winner's", _cross_key(trial, winners[0]), found)
    return sum(again for _, again, _ in got.values())


def _collect(
    racers: Sequence[Any], outcomes: Any, trial: int, race: str, timeout: float, clause: str
) -> dict[int, tuple[str, int, str | None]]:
    """Every racer's answer to *race* of *trial*, by racer; a racer silent for *timeout* fails the check."""
    got: dict[int, tuple[str, int, str | None]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(racers):
        left = deadline - time.monotonic()
        if left <= 0:
            missing = sorted(set(range(len(racers))) - set(got))
            msg = (
                f"{clause}: {len(missing)} of {len(racers)} racing processes did not answer within {timeout} s "
                f"(processes {missing}: a deadlock, or a lock never released)"
            )
            raise AssertionError(msg)
        try:
            answer_trial, answer_race, index, outcome, again, error = outcomes.get(timeout=min(left, 0.5))
        except queue.Empty:
            dead = [i for i, racer in enumerate(racers) if i not in got and not racer.is_alive()]
            if dead:
                msg = f"{clause}: racing processes {dead} ended without answering ({_racer_failures(racers, outcomes)})"
                raise AssertionError(msg) from None
            continue
        if (answer_trial, answer_race) != (trial, race):
            msg = f"{clause}: process {index} failed outside the race: {error}"
            raise AssertionError(msg)
        got[index] = (outcome, again, error)
    return got


# --- the agreement machine -----------------------------------------------------------------------------------------
#
# Steps are plain data (the ops below) so that hypothesis prints a failing example as a readable script, and so
# that the same step runs on both storages: each op is applied to each storage in turn, in its own transaction.

_TENANTS: Final = ("alpha", "beta")
_RESOURCES: Final = ("r1", "r2", "r3")
_BOOKING_IDS: Final = ("b1", "b2", "b3", "b4")
_MESSAGE_IDS: Final = ("m1", "m2", "m3", "m4")
_KEYS: Final = ("k1", "k2", "k3")
_GRID: Final = at(9)
"""Start of the machine's booking grid; its clock starts an hour earlier."""
_EDGES: Final = tuple((source, action) for source, actions in TRANSITIONS.items() for action in actions)
_CONTINUABLE: Final = (NotFoundError, ConflictError, ConcurrencyError, InvalidInputError)
"""Refusals after which a transaction goes on (their contract says nothing was written)."""


def _outcome(call: Callable[[], object]) -> object:
    """What a call returned, or the class of what it raised: the unit of agreement."""
    try:
        return ("ok", call())
    except Exception as exc:  # noqa: BLE001 - any exception is an answer to compare
        return ("raised", type(exc).__name__)


def _end(tx: StorageTransaction, end: str) -> None:
    """End a machine step's transaction: commit it, leave it without commit, or raise out of it."""
    if end == "commit":
        tx.commit()
    elif end == "raise":
        raise _Abort(end)


@attrs.frozen
class PutResource:
    """Create or replace a resource."""

    resource_id: str
    capacity: int | None
    """None for UNLIMITED."""
    name: str = "Box"

    def run(self, tx: StorageTransaction, now: datetime) -> object:  # noqa: ARG002 - every op takes now
        """Apply the step."""
        capacity: Capacity = UNLIMITED if self.capacity is None else self.capacity
        tx.put_resource(Resource(self.resource_id, self.name, capacity=capacity))
        return None


@attrs.frozen
class PutService:
    """Create or replace a service."""

    service_id: str
    name: str = "Wash"

    def run(self, tx: StorageTransaction, now: datetime) -> object:  # noqa: ARG002
        """Apply the step."""
        tx.put_service(_service(self.service_id, self.name))
        return None


@attrs.frozen
class PutBusiness:
    """Create or replace the business."""

    name: str

    def run(self, tx: StorageTransaction, now: datetime) -> object:  # noqa: ARG002
        """Apply the step."""
        tx.put_business(_business(self.name))
        return None


@attrs.frozen
class Reserve:
    """Reserve a booking on the grid (minutes after 09:00); a hold expires *hold* minutes after now."""

    booking_id: str
    start: int
    minutes: int
    resources: tuple[str, ...]
    units: int = 1
    status: BookingStatus = BookingStatus.CONFIRMED
    hold: int = 30
    buffer_before: int = 0
    buffer_after: int = 0
    micro: int = 0
    version: int = 1
    exclude: tuple[int, ...] = ()
    """Picks among the stored bookings (see `Update`) that the capacity check must ignore."""
    customer_id: str | None = None
    paid: bool = False
    split: bool = False
    """One need per resource (a car *and* a driver) instead of one need served by all of them."""

    def booking(self, now: datetime) -> Booking:
        """The booking this step reserves at *now*."""
        start = _GRID + self.start * M + self.micro * US
        price = Money("20.00", "EUR") if self.paid else None
        payments = (Payment("p1", PaymentKind.PAYMENT, Money("20.00", "EUR"), now),) if self.paid else ()
        return Booking(
            self.booking_id,
            "s1",
            start,
            start + self.minutes * M,
            self.assignments(),
            (self.units,) * len(self.assignments()),
            self.status,
            now,
            hold_until=now + self.hold * M if self.status is BookingStatus.PRE_BOOKING else None,
            buffer_before=self.buffer_before * M,
            buffer_after=self.buffer_after * M,
            customer_id=self.customer_id,
            price=price,
            payments=payments,
            version=self.version,
        )

    def assignments(self) -> tuple[Assignment, ...]:
        """The booking's assignments: one for all its resources, or one per resource."""
        if self.split:
            return tuple(Assignment(i, f"need {i}", (rid,)) for i, rid in enumerate(self.resources))
        return (Assignment(0, "", self.resources),)

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        ids = [b.id for b in tx.find_bookings(BookingQuery())] if self.exclude else []
        tx.reserve(self.booking(now), now=now, exclude=[_pick(ids, p, "b0") for p in self.exclude])
        return None


def _pick(ids: Sequence[str], pick: int, default: str) -> str:
    """The *pick*-th of *ids* (cyclically), so that a step names an existing row whenever there is one."""
    return sorted(ids)[pick % len(ids)] if ids else default


@attrs.frozen
class Update:
    """Update the *pick*-th stored booking to *status* with a version off by *stale* (0: right), maybe moved."""

    pick: int
    status: BookingStatus
    stale: int = 0
    move: bool = False
    customer_id: str | None = "keep"

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        stored = tx.get_booking(_pick([b.id for b in tx.find_bookings(BookingQuery())], self.pick, "b1"))
        hold = now + 30 * M if self.status is BookingStatus.PRE_BOOKING else None
        new = attrs.evolve(
            stored, status=self.status, hold_until=hold, version=stored.version + 1, notes=f"v{stored.version + 1}"
        )
        if self.move:
            new = attrs.evolve(new, start=new.start + 15 * M, end=new.end + 15 * M)
        if self.customer_id != "keep":
            new = attrs.evolve(new, customer_id=self.customer_id)
        tx.update_booking(new, expected_version=stored.version + self.stale)
        return None


@attrs.frozen
class AppendTransition:
    """Append one record of the *edge*-th transition of the table to the log."""

    booking_id: str
    edge: int

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        source, action = _EDGES[self.edge % len(_EDGES)]
        record = TransitionRecord(self.booking_id, source, TRANSITIONS[source][action], action, now, "system")
        tx.append_transitions([record])
        return None


@attrs.frozen
class AppendOutbox:
    """Append messages with these ids (an id already there is refused)."""

    message_ids: tuple[str, ...]
    booking_id: str | None = None

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        tx.append_outbox(
            [_message(m, booking_id=self.booking_id, created_at=now, due_at=now) for m in self.message_ids]
        )
        return None


@attrs.frozen
class ReserveAtOnce:
    """`ReserveAndRecord.reserve_and_record` of *reserve*'s booking, its records and messages, in one call."""

    reserve: Reserve
    edges: tuple[int, ...] = ()
    message_ids: tuple[str, ...] = ()
    stale: bool = False
    """Name a catalogue version that is not the current one (the call must then write nothing)."""
    key: str | None = None
    """Save an idempotency record under this key with the booking (a key used before refuses the call)."""

    def run(self, storage: ReserveAndRecord, tenant: str, now: datetime, version: int) -> None:
        """Apply the step (outside any transaction: the call is one)."""
        booking = self.reserve.booking(now)
        records = []
        for edge in self.edges:
            source, action = _EDGES[edge % len(_EDGES)]
            records.append(TransitionRecord(booking.id, source, TRANSITIONS[source][action], action, now, "system"))
        messages = [_message(m, booking_id=booking.id, created_at=now, due_at=now) for m in self.message_ids]
        saved = None if self.key is None else IdempotencyRecord(self.key, "hash", booking.id, f'"{booking.id}"', now)
        storage.reserve_and_record(
            tenant,
            booking,
            now=now,
            transitions=records,
            outbox=messages,
            catalogue_version=version,
            idempotency=saved,
        )


@attrs.frozen
class UpdateOutbox:
    """Mark the *pick*-th stored message sent, failed, or retried (a missing one is refused)."""

    pick: int
    state: str

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        sent = now if self.state == "sent" else None
        failed = now if self.state == "failed" else None
        message_id = _pick([m.id for m in tx.list_outbox()], self.pick, "m0")
        message = _message(message_id, attempts=1, sent_at=sent, failed_at=failed, last_error=self.state)
        tx.update_outbox(message)
        return None


@attrs.frozen
class PutIdempotency:
    """Save an idempotency key (a key already there is refused)."""

    key: str
    booking_id: str

    def run(self, tx: StorageTransaction, now: datetime) -> object:
        """Apply the step."""
        tx.put_idempotency(IdempotencyRecord(self.key, f"hash-{self.booking_id}", self.booking_id, "{}", now))
        return None


@attrs.frozen
class Lock:
    """Lock resources (unknown ones are refused)."""

    resource_ids: tuple[str, ...]

    def run(self, tx: StorageTransaction, now: datetime) -> object:  # noqa: ARG002
        """Apply the step."""
        tx.lock_resources(self.resource_ids)
        return None


@attrs.frozen
class Read:
    """A read: *what* names the port method; the other fields are its arguments."""

    what: str
    booking_id: str = "b1"
    key: str = "k1"
    query: BookingQuery = attrs.field(factory=BookingQuery)
    resource_ids: tuple[str, ...] = _RESOURCES
    window: tuple[int, int] = (0, 240)
    """Minutes after 09:00."""
    offset: int = 0
    """Minutes after now, for due_holds."""
    pending_only: bool = True
    """For list_outbox: only the pending messages."""
    by_booking: bool = False
    """For list_outbox: only *booking_id*'s messages."""
    booking_ids: tuple[str, ...] = ()
    """For list_transitions_of: the bookings named."""

    def run(self, tx: StorageTransaction, now: datetime) -> object:  # noqa: PLR0911 - one branch per method
        """Apply the step."""
        match self.what:
            case "find_bookings":
                return tx.find_bookings(self.query)
            case "loads":
                window = Interval(_GRID + self.window[0] * M, _GRID + self.window[1] * M)
                return _sorted_loads(tx.loads(self.resource_ids, window))
            case "due_holds":
                return tx.due_holds(now + self.offset * M)
            case "get_booking":
                return tx.get_booking(self.booking_id)
            case "get_idempotency":
                return tx.get_idempotency(self.key)
            case "list_transitions":
                return tx.list_transitions(self.booking_id)
            case "list_transitions_of":
                return _transitions_of(tx, self.booking_ids)
            case "list_outbox":
                booking_id = self.booking_id if self.by_booking else None
                return tx.list_outbox(pending_only=self.pending_only, booking_id=booking_id)
            case "get_resource":
                return tx.get_resource(self.resource_ids[0])
            case _:
                return tx.get_service("s1")


Op: TypeAlias = (
    PutResource
    | PutService
    | PutBusiness
    | Reserve
    | Update
    | AppendTransition
    | AppendOutbox
    | UpdateOutbox
    | PutIdempotency
    | Lock
    | Read
)

_rids = st.sampled_from([*_RESOURCES, *_RESOURCES, "r1", "ghost"])
_bids = st.sampled_from(_BOOKING_IDS)
_capacities = st.sampled_from([1, 1, 1, 2, 3, None])
_picks = st.integers(0, 3)

_put_resources = st.builds(
    PutResource, st.sampled_from([*_RESOURCES, "r4"]), _capacities, st.sampled_from(["Box", "Renamed"])
)
_catalogue_ops = (
    _put_resources
    | st.builds(PutService, st.sampled_from(["s1", "s2"]), st.sampled_from(["Wash", "Renamed"]))
    | st.builds(PutBusiness, st.sampled_from(["Car wash", "Renamed"]))
)


@st.composite
def _reserves(draw: st.DrawFn, status: BookingStatus | None = None) -> Reserve:
    if status is None:
        status = draw(
            st.sampled_from(
                [*[BookingStatus.CONFIRMED] * 3, BookingStatus.PRE_BOOKING, BookingStatus.PAID, BookingStatus.CANCELLED]
            )
        )
    resources = tuple(draw(st.lists(_rids, min_size=1, max_size=2, unique=True)))
    split = draw(st.booleans())
    if split and len(resources) == 1 and draw(st.integers(0, 3)) == 0:
        resources *= 2  # one resource serving both needs: their units add up there
    return Reserve(
        draw(_bids),
        draw(st.integers(0, 6)) * 15,
        draw(st.sampled_from([15, 30, 60, 90])),
        resources,
        units=draw(st.sampled_from([1, 1, 1, 2])),
        status=status,
        hold=draw(st.sampled_from([-15, 0, 15, 15, 30])),
        buffer_before=draw(st.sampled_from([0, 0, 0, 15])),
        buffer_after=draw(st.sampled_from([0, 0, 10, 15])),
        micro=draw(st.sampled_from([0, 0, 0, 1, -1])),
        version=draw(st.integers(1, 3)),
        exclude=tuple(draw(st.lists(_picks, max_size=1))),
        customer_id=draw(st.sampled_from([None, "c1", "c2"])),
        paid=draw(st.booleans()),
        split=split,
    )


@st.composite
def _reserves_at_once(draw: st.DrawFn) -> ReserveAtOnce:
    return ReserveAtOnce(
        draw(_reserves()),
        tuple(draw(st.lists(st.integers(0, len(_EDGES) - 1), max_size=2))),
        tuple(draw(st.lists(st.sampled_from(_MESSAGE_IDS), max_size=2))),
        draw(st.sampled_from([False] * 5 + [True])),
        draw(st.sampled_from([None, None, None, *_KEYS])),
    )


_statuses = st.sampled_from(list(BookingStatus))
_updates = st.builds(
    Update,
    _picks,
    _statuses,
    st.sampled_from([0, 0, 0, 0, -1, 1]),
    st.sampled_from([False] * 5 + [True]),
    st.sampled_from(["keep", "keep", None, "c1", "c2"]),
)
_log_ops = (
    st.builds(AppendTransition, _bids, st.integers(0, len(_EDGES) - 1))
    | st.builds(
        AppendOutbox, st.lists(st.sampled_from(_MESSAGE_IDS), min_size=1, max_size=2).map(tuple), st.none() | _bids
    )
    | st.builds(UpdateOutbox, _picks, st.sampled_from(["sent", "failed", "retry"]))
    | st.builds(PutIdempotency, st.sampled_from(_KEYS), _bids)
    | st.builds(Lock, st.lists(_rids, max_size=3).map(tuple))
)
_minutes = st.integers(-4, 12).map(lambda q: q * 15)


@st.composite
def _windows(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(_minutes)
    return start, start + draw(st.sampled_from([1, 15, 30, 60, 240]))


_queries = st.builds(
    BookingQuery,
    resource_id=st.none() | _rids,
    customer_id=st.sampled_from([None, None, "c1", "c2"]),
    statuses=st.none() | st.frozensets(_statuses, min_size=1, max_size=3),
    period=st.none() | _windows().map(lambda w: Interval(_GRID + w[0] * M, _GRID + w[1] * M)),
    service_id=st.sampled_from([None, None, "s1", "s2"]),
    created=st.none() | _windows().map(lambda w: Interval(_GRID + w[0] * M, _GRID + w[1] * M)),
    blocked=st.none() | _windows().map(lambda w: Interval(_GRID + w[0] * M, _GRID + w[1] * M)),
)
_named_bookings = st.lists(_bids | st.just("ghost"), max_size=5).map(tuple)
_reads = st.one_of(
    st.builds(Read, st.just("find_bookings"), query=_queries),
    st.builds(Read, st.just("loads"), resource_ids=st.lists(_rids, max_size=3).map(tuple), window=_windows()),
    st.builds(Read, st.just("due_holds"), offset=st.sampled_from([-30, -15, 0, 15, 30, 60])),
    st.builds(Read, st.sampled_from(["get_booking", "list_transitions"]), booking_id=_bids),
    st.builds(Read, st.just("list_transitions_of"), booking_ids=_named_bookings),
    st.builds(Read, st.just("get_idempotency"), key=st.sampled_from(_KEYS)),
    st.builds(Read, st.just("get_resource"), resource_ids=st.tuples(_rids)),
    st.builds(Read, st.just("list_outbox"), booking_id=_bids, pending_only=st.booleans(), by_booking=st.booleans()),
    st.builds(Read, st.just("get_service")),
)
_any_op: st.SearchStrategy[Op] = st.one_of(_reserves(), _updates, _log_ops, _catalogue_ops, _reads)
_ends = st.sampled_from(["commit"] * 6 + ["rollback", "raise"])
_tenants = st.sampled_from([_TENANTS[0], _TENANTS[0], _TENANTS[1]])


class StorageAgreement(RuleBasedStateMachine):
    """
    The same random steps on the storage under test and on a reference storage; both must answer alike.

    Build a concrete machine with `agreement_machine`. Each step runs one to five operations (reserve, update,
    catalogue puts, log and outbox appends, idempotency keys, locks and reads) in one transaction of one of two
    tenants that use the same ids, then commits, leaves without commit, or raises. After each operation both
    storages must have returned equal values or raised the same exception class; after every step both must
    hold the same data. The clock moves forward between steps, so holds expire, also exactly at their instant.
    """

    factory: StorageFactory | None = None
    reference: StorageFactory = MemoryStorage

    def __init__(self) -> None:
        super().__init__()
        factory = type(self).factory
        if factory is None:
            msg = "build the machine with agreement_machine(factory)"
            raise TypeError(msg)
        self.now = _GRID - H
        self.dirty = set(_TENANTS)
        """Tenants written since the last invariant check (the others cannot have changed, if isolated)."""
        self._cleanup = ExitStack()
        """Undoes what the example set up: the process zone, then the storages (closed first)."""
        with ExitStack() as setting_up:
            setting_up.enter_context(_in_process_zone())  # as the battery's checks run
            self.expected: Storage = type(self).reference()
            setting_up.callback(self.expected.close)
            self.actual: Storage = factory()
            setting_up.callback(self.actual.close)
            self._cleanup = setting_up.pop_all()

    def teardown(self) -> None:
        """Close both storages, and give the process its zone back."""
        self._cleanup.close()

    def _apply(self, storage: Storage, tenant: str, ops: Sequence[Op], end: str) -> list[object]:
        answers: list[object] = []
        try:
            with storage.transaction(tenant) as tx:
                for op in ops:
                    try:
                        answers.append(("ok", op.run(tx, self.now)))
                    except _CONTINUABLE as exc:
                        answers.append(("raised", type(exc).__name__))
                _end(tx, end)
        except _Abort:
            answers.append("aborted")
        except Exception as exc:  # noqa: BLE001 - a failure that ends the transaction is an answer too
            answers.append(("ended by", type(exc).__name__))
        return answers

    def _both(self, tenant: str, ops: Sequence[Op], end: str) -> None:
        self.dirty.add(tenant)
        expected = self._apply(self.expected, tenant, ops, end)
        actual = self._apply(self.actual, tenant, ops, end)
        if expected != actual:
            lines = [
                f"    {op!r}\n        reference: {e!r}\n        adapter:   {a!r}"
                for op, e, a in zip(ops, expected, actual, strict=False)
                if e != a
            ]
            tail = "" if len(expected) == len(actual) == len(ops) else f"\n    whole answers: {expected!r} / {actual!r}"
            msg = (
                f"the adapter answers differently from the reference in tenant {tenant!r}:\n" + "\n".join(lines) + tail
            )
            raise AssertionError(msg)

    @initialize(capacities=st.tuples(_capacities, _capacities, _capacities))
    def set_up(self, capacities: tuple[int | None, ...]) -> None:
        """Both tenants get a business, a service and three resources with the same ids."""
        ops: list[Op] = [PutBusiness("Car wash"), PutService("s1")]
        ops += [PutResource(rid, capacity) for rid, capacity in zip(_RESOURCES, capacities, strict=True)]
        for tenant in _TENANTS:
            self._both(tenant, ops, "commit")

    @rule(tenant=_tenants, op=_reserves(), end=_ends)
    def reserve(self, tenant: str, op: Reserve, end: str) -> None:
        """Reserve one booking."""
        self._both(tenant, [op], end)

    @rule(tenant=_tenants, op=_updates, end=_ends)
    def update(self, tenant: str, op: Update, end: str) -> None:
        """Update one booking's status."""
        self._both(tenant, [op], end)

    @rule(tenant=_tenants, op=_log_ops | _catalogue_ops, end=_ends)
    def write(self, tenant: str, op: Op, end: str) -> None:
        """Write to the log, the outbox, idempotency keys or the catalogue, or take locks."""
        self._both(tenant, [op], end)

    @rule(tenant=_tenants, op=_reserves(BookingStatus.PRE_BOOKING), end=_ends)
    def hold(self, tenant: str, op: Reserve, end: str) -> None:
        """Reserve one pre-booking, whose hold expires soon."""
        self._both(tenant, [op], end)

    @rule(tenant=_tenants, ops=st.lists(_any_op, min_size=2, max_size=5), end=_ends)
    def batch(self, tenant: str, ops: list[Op], end: str) -> None:
        """Several operations in one transaction, reads seeing the writes before them."""
        self._both(tenant, ops, end)

    def _at_once(self, storage: Storage, tenant: str, op: ReserveAtOnce) -> object:
        if not isinstance(storage, ReserveAndRecord):
            return "no such capability"
        with storage.transaction(tenant) as tx:
            version = tx.catalogue_version() if isinstance(tx, CatalogueVersions) else 0
        try:
            op.run(storage, tenant, self.now, version + 10**6 if op.stale else version)
        except SlotEngineError as exc:
            return ("raised", type(exc).__name__)
        return "ok"

    @rule(tenant=_tenants, op=_reserves_at_once())
    def reserve_and_record(self, tenant: str, op: ReserveAtOnce) -> None:
        """A booking with its records in one call (`ReserveAndRecord`), at the current or a stale version."""
        if not isinstance(self.actual, ReserveAndRecord):
            return
        self.dirty.add(tenant)
        expected = self._at_once(self.expected, tenant, op)
        actual = self._at_once(self.actual, tenant, op)
        _expect(f"reserve_and_record of {op!r} answers as the reference", expected, actual)

    @rule(minutes=st.sampled_from([1, 15, 15, 15, 30]), micro=st.sampled_from([0, 0, 0, 1, -1]))
    def advance(self, minutes: int, micro: int) -> None:
        """Move the clock forward (holds expire, at their instant or a microsecond around it)."""
        self.now += minutes * M + micro * US

    @rule(tenant=_tenants, pick=_picks, micro=st.sampled_from([0, 0, -1, 1]))
    def expire(self, tenant: str, pick: int, micro: int) -> None:
        """Move the clock to a stored hold's expiry, or a microsecond around it (if that is still ahead)."""
        with self.expected.transaction(tenant) as tx:
            holds = tx.find_bookings(BookingQuery(statuses=frozenset({BookingStatus.PRE_BOOKING})))
        ahead = sorted(
            {b.hold_until + micro * US for b in holds if b.hold_until and b.hold_until + micro * US > self.now}
        )
        if ahead:
            self.now = ahead[pick % len(ahead)]

    @invariant()
    def same_data(self) -> None:
        """Both storages hold the same data in every tenant written since the last check; due holds in all."""
        for tenant in _TENANTS:
            answers: list[dict[str, object]] = []
            for storage in (self.expected, self.actual):
                with storage.transaction(tenant) as tx:
                    answer: dict[str, object] = {"due_holds": tx.due_holds(self.now)}
                    if tenant in self.dirty:
                        answer |= _snapshot(tx, _KEYS)  # loads of every resource included
                        answer["pending"] = tx.list_outbox(pending_only=True)
                    answers.append(answer)
            _expect(f"the adapter holds the same data as the reference in tenant {tenant!r}", answers[0], answers[1])
        self.dirty.clear()


def agreement_machine(factory: StorageFactory, *, reference: StorageFactory = MemoryStorage) -> type[StorageAgreement]:
    """
    Return a `StorageAgreement` machine comparing storages made by *factory* with *reference* ones.

    Run it as hypothesis runs any state machine, with the settings you can afford::

        from hypothesis import settings
        from hypothesis.stateful import run_state_machine_as_test

        run_state_machine_as_test(agreement_machine(my_factory), settings=settings(max_examples=100))

    or expose ``agreement_machine(my_factory).TestCase`` to pytest. *factory* is called once per example.

    Args:
        factory: A zero-argument callable returning a fresh, empty `Storage` (the adapter under test).
        reference: The same for the storage it is compared with; `MemoryStorage` by default.
    """
    name = getattr(factory, "__name__", "Adapter")
    name = name if name.isidentifier() and name != "<lambda>" else "Adapter"
    return type(
        f"{name}Agreement",
        (StorageAgreement,),
        {"factory": staticmethod(factory), "reference": staticmethod(reference), "__module__": __name__},
    )
