"""
`BookingEngine`: the one façade that takes a booking from pre-booking to completed.

Every public method is one use case run inside one storage transaction: read what it needs, let the pure
core decide (the solver, the lifecycle table, the policies), then write the booking, its transition records
and its outbox messages together and commit. If anything raises, the transaction rolls back and nothing has
changed. The solver advises; the storage's atomic `reserve` decides, under the resources' locks.

A call may carry an ``idempotency_key``: the first result is saved in the same transaction, a retry with the
same key and the same request returns it, and the same key with a different request is refused.
Concurrency failures (a serialization conflict, a deadlock, a lock timeout) are retried a bounded number of
times before `ConcurrencyError` reaches the caller.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import inspect
import json
import os
import string
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import attrs

from slotengine._time import MAX_INSTANT, MIN_INSTANT, check_duration_range, get_zone, spoken, to_utc
from slotengine.authorization import Actor, AllowAll, AuthorizationPolicy, Permission, Role, RolePolicy
from slotengine.availability import Availability, Explanation, Load, Slot, Strategy, whole_days
from slotengine.booking import Booking, Payment, PaymentKind, Source
from slotengine.business import Business
from slotengine.codec import _dumps_made, booking_from_dict, booking_to_dict, dumps, loads
from slotengine.errors import (
    ConcurrencyError,
    ConflictError,
    CurrencyMismatchError,
    IdempotencyKeyMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
    QuoteChangedError,
    SlotEngineError,
    StorageError,
)
from slotengine.intervals import Interval, IntervalSet
from slotengine.lifecycle import LIVE_STATUSES, Action, BookingStatus, TransitionRecord, next_status
from slotengine.model import (
    MAX_ID_LENGTH,
    Customer,
    Resource,
    ResourceKind,
    Service,
    ServiceUnit,
    check_id,
    check_text,
)
from slotengine.money import Money
from slotengine.notifications import (
    EVENT_OF_ACTION,
    Event,
    NotificationRule,
    Recipient,
    events_of,
    format_local,
    quiet_begin,
    quiet_shift,
)
from slotengine.outbox import MAX_ATTEMPTS, OutboxMessage
from slotengine.policies import CancellationQuote, Policies
from slotengine.ports import (
    BookingQuery,
    Clock,
    DueOutbox,
    IdempotencyRecord,
    Notifier,
    Retention,
    Storage,
    StorageTransaction,
    TransitionsOf,
)
from slotengine.schedule import effective_hours, time_off_within

__all__ = ["BookingEngine", "DispatchReport", "IdempotencyKeyMismatchError", "PruneReport"]

_T = TypeVar("_T")
_MARGIN: Final = timedelta(days=2)
_ONE_MINUTE: Final = timedelta(minutes=1)
_FIRM: Final = frozenset({BookingStatus.CONFIRMED, BookingStatus.PAID})
_ONE_DAY: Final = timedelta(days=1)
_US: Final = timedelta(microseconds=1)
_HOURS_KEPT: Final = 4096
"""How many (schedule, zone, span) opening hours a catalogue snapshot keeps (`_Catalogue.opening`)."""
_BLOCK: Final = timedelta(days=28)
"""The opening hours a catalogue snapshot works out at once (`_Catalogue.opening`): four weeks, from 1970."""
_BLOCKS_KEPT: Final = 512
_FULL_KEPT: Final = 1024
"""How many starts found full a catalogue snapshot remembers (`_Catalogue.full`)."""
_FULL_FOR: Final = timedelta(seconds=60)
"""How long a start found full skips the one-call write (a hint for speed: the usual way is always right)."""
_BOOKING_BLIND: Final = (RolePolicy, AllowAll)
"""Policies whose READ answer for anyone but a customer (who never reads the whole log) ignores the booking."""
_REPLAN: Final = frozenset(
    {
        Action.HOLD,
        Action.BOOK,
        Action.RESCHEDULE,
        Action.CANCEL,
        Action.EXPIRE,
        Action.REVIVE,
        Action.MARK_NO_SHOW,
        Action.COMPLETE,
    }
)
"""Steps after which a booking's reminders are withdrawn and planned again."""


@attrs.frozen
class DispatchReport:
    """What one `BookingEngine.dispatch_due` run did: sent, retried later, given up, withdrawn."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    withdrawn: int = 0


@attrs.frozen
class PruneReport:
    """What one `BookingEngine.prune` run forgot: outbox messages done with, and idempotency records."""

    messages: int = 0
    keys: int = 0


def _digest(request: dict[str, Any]) -> str:
    """The hash an idempotency record keeps of the request it answered."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _new_id() -> str:
    """A random (version 4) UUID as 32 hex digits: ``uuid.uuid4().hex`` without building a `uuid.UUID`."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class _Cache:
    """
    Where an engine keeps its newest versioned catalogue snapshot, with the tenant and storage it was read from.

    One entry, replaced whole (one assignment, so a thread never sees the parts of two). Shared with the engine's
    joined copies (`BookingEngine._joined`), whose transactions are its storage's.
    """

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[str, object, _Catalogue] | None = None


@attrs.frozen
class _Catalogue:
    """
    One tenant's business, resources and services, decoded once and shared by the transactions that see them.

    A snapshot labelled with the storage's catalogue version (`slotengine.ports.CatalogueVersions`) is kept by
    the engine and reused while a transaction reads the same version; without a version (an adapter that has
    none) a snapshot serves one transaction only. Lookups raise the storage's own `NotFoundError`s.
    """

    version: int | None
    business: Business | None
    resources: tuple[Resource, ...]
    by_id: Mapping[str, Resource]
    services: Mapping[str, Service]
    pools: dict[str, tuple[Resource, ...]] = attrs.field(factory=dict, eq=False, repr=False)
    hours: dict[tuple[int, str | None, datetime, datetime], tuple[IntervalSet, IntervalSet]] = attrs.field(
        factory=dict, eq=False, repr=False
    )
    blocks: dict[tuple[int, str | None, datetime, datetime], tuple[IntervalSet, IntervalSet]] = attrs.field(
        factory=dict, eq=False, repr=False
    )
    """Opening hours and time off over whole `_BLOCK`s, which `opening` cuts its spans from."""
    full: dict[tuple[str, datetime, timedelta | None], datetime] = attrs.field(factory=dict, eq=False, repr=False)
    """When the one-call write last found (service, start, duration) full (`BookingEngine._create_at_once`)."""

    def found_full(self, asked: tuple[str, datetime, timedelta | None], now: datetime) -> bool:
        """Whether (service, start, duration) was found full less than `_FULL_FOR` ago (a hint, never a verdict)."""
        when = self.full.get(asked)
        return when is not None and now - when < _FULL_FOR

    @classmethod
    def read(cls, tx: StorageTransaction, version: int | None) -> _Catalogue:
        """Read the whole catalogue through *tx* (read its version first: the content is then no older)."""
        try:
            business: Business | None = tx.get_business()
        except NotFoundError:
            business = None
        resources = tuple(tx.list_resources())
        services = {s.id: s for s in tx.list_services()}
        return cls(version, business, resources, {r.id: r for r in resources}, services)

    def _block_hours(
        self, resource: Resource, business: Business, own_key: int, block: Interval
    ) -> tuple[IntervalSet, IntervalSet]:
        """The opening hours and time off of *resource* over one whole `_BLOCK` (memoized, see `opening`)."""
        key = (own_key, resource.zone, block.start, block.end)
        whole = self.blocks.get(key)
        if whole is None:
            opened = effective_hours(resource.schedule, business.hours, block)
            own = resource.schedule.time_off if resource.schedule is not None else ()
            # Whole days off are days where the hours are kept, as `effective_hours` applies them: the resource's
            # own schedule's zone, or the business's for a resource that inherits its hours.
            zone = (resource.schedule or business.hours).tz
            entries = (*own, *business.hours.time_off)
            if len(self.blocks) >= _BLOCKS_KEPT:
                self.blocks.clear()
            whole = self.blocks[key] = (opened, time_off_within(entries, zone, block))
        return whole

    def get_business(self, tenant: str) -> Business:
        if self.business is None:
            msg = f"business {tenant!r} is not set up"
            raise NotFoundError(msg, tenant=tenant)
        return self.business

    def get_resource(self, resource_id: str) -> Resource:
        try:
            return self.by_id[resource_id]
        except (KeyError, TypeError):
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id) from None

    def get_service(self, service_id: str) -> Service:
        try:
            return self.services[service_id]
        except (KeyError, TypeError):
            msg = f"no service {service_id!r}"
            raise NotFoundError(msg, service_id=service_id) from None

    def opening(self, resource: Resource, business: Business, span: Interval) -> tuple[IntervalSet, IntervalSet]:
        """
        When *resource* (of this catalogue) is open within *span*, and its time off there (memoized).

        Both depend on the catalogue alone (the resource's schedule and zone, the business's hours), so a
        snapshot keeps them for the spans it was asked about (whole days, `_span`: every question about one
        day shares one), at most `_HOURS_KEPT`; then it starts again. A span is cut from the hours of the
        whole `_BLOCK`s around it, worked out once: expanding a schedule costs mostly per call and per day
        visited (two days before a window, one after), and the spans of neighbouring days overlap by days.
        What a window holds does not depend on the window around it (expansion is additive: property-tested).
        """
        # Resources without hours of their own share the business's: one entry serves them all.
        own_key = id(resource.schedule) if resource.schedule is not None else 0
        key = (own_key, resource.zone, span.start, span.end)
        found = self.hours.get(key)
        if found is None:
            parts = [self._block_hours(resource, business, own_key, block) for block in _blocks(span)]
            opened, off = [whole[0].clip(span) for whole in parts], [whole[1].clip(span) for whole in parts]
            if len(self.hours) >= _HOURS_KEPT:
                self.hours.clear()
            found = self.hours[key] = (opened[0].union(*opened[1:]), off[0].union(*off[1:]))
        return found

    def preferred(self, service: Service, ids: Sequence[str]) -> tuple[str, ...]:
        """
        The preferred *ids* that serve *service*, in their order; an id that is no resource at all is refused.

        One list of favourites may be used for every service: a resource that serves others is passed over,
        but a typo is not.
        """
        for rid in ids:
            if rid not in self.by_id:
                msg = f"preferred resource {rid!r} is not a resource of this business"
                raise InvalidInputError(msg, resource_id=rid)
        pool = {r.id for r in self.pool(service)}
        return tuple(rid for rid in ids if rid in pool)

    def check_pins(self, service: Service, pins: Collection[str]) -> None:
        """
        Refuse a pinned id that is no resource of this business, or a resource that serves no need of *service*.

        The solver is given the service's pool only, so it could not tell the two apart from a typo.
        """
        pool = {r.id for r in self.pool(service)}
        for rid in sorted(pins):
            if rid in pool:
                continue
            if rid not in self.by_id:
                msg = f"pinned resource {rid!r} is not a resource of this business"
            else:
                msg = f"pinned resource {rid!r} does not match any need of service {service.id!r}"
            raise InvalidInputError(msg, resource_id=rid)

    def screened(self, service: Service, pins: Collection[str], preferred: Sequence[str]) -> tuple[str, ...]:
        """Refuse bad *pins* (`check_pins`); return the *preferred* ids that serve *service* (`preferred`)."""
        self.check_pins(service, pins)
        return self.preferred(service, preferred) if preferred else ()

    def pool(self, service: Service) -> tuple[Resource, ...]:
        """The resources that can serve some need of *service*, in catalogue order (memoized per service)."""
        pool = self.pools.get(service.id)
        if pool is None or self.services.get(service.id) is not service:
            needs = service.needs
            candidates: Iterable[Resource] = self.resources
            if all(n.resource_ids for n in needs):
                # Only the resources a need names can match it: test those alone, in catalogue order.
                named = frozenset().union(*(n.resource_ids for n in needs))
                candidates = [r for r in self.resources if r.id in named]
            pool = tuple(r for r in candidates if any(n.matches(r) for n in needs))
            if self.services.get(service.id) is service:
                self.pools[service.id] = pool
        return pool



def _dedupe(key: str) -> str:
    """A message's dedupe key: as written while it is short enough for an id, else its SHA-256 (still one per key)."""
    return key if len(key) <= MAX_ID_LENGTH else f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


_CANCEL_REFUND: Final = "refund:{}:cancel"
_CANCEL_FEE: Final = "fee:{}:cancel"
_NO_SHOW_FEE: Final = "fee:{}:no_show"
"""The ids of the ledger entries the engine writes itself, by booking id."""


def _replayed(booking: Booking, payment_id: str, kind: PaymentKind, amount: Money) -> bool:
    """Whether *payment_id* is already in the ledger as this very entry (a replay); refuse it as any other."""
    if payment_id in {own.format(booking.id) for own in (_CANCEL_REFUND, _CANCEL_FEE, _NO_SHOW_FEE)}:
        msg = f"{payment_id!r} is the id of an entry slotengine writes itself; use the payment provider's id"
        raise InvalidInputError(msg, payment_id=payment_id)
    for entry in booking.payments:
        if entry.id == payment_id:
            if entry.kind is not kind or entry.amount != amount:
                msg = (
                    f"{kind.value} {payment_id!r} cannot be recorded: that id is already in the ledger "
                    f"as a {entry.kind.value} of {entry.amount}"
                )
                raise InvalidInputError(msg, payment_id=payment_id)
            return True
    return False

class BookingEngine:
    """
    The booking engine for one business (tenant) on one storage.

    Args:
        storage: Where everything is kept (`slotengine.ports.Storage`).
        clock: Where the time comes from (`slotengine.ports.Clock`).
        tenant: The business this engine works for; every read and write is scoped to it.
        authorization: Who may do what (`RolePolicy` by default; see `slotengine.authorization`).
        default_actor: The actor of calls that name none (e.g. ``Actor.system("importer")`` in a script).
            Without it, every mutating call must name its actor.
        max_retries: How many times a use case is retried after a `ConcurrencyError`.
        new_id: Makes booking and message ids (random UUIDs by default). Its ids must be unique across all the
            tenants that share a notifier or a webhook receiver, not only within this one: outbox dedupe keys
            (``"<booking id>:<rule id>:v<version>"``) and e-mail Message-IDs are built from booking ids and carry
            no tenant, so two tenants counting ``b1``, ``b2``... make messages that a receiver dropping the keys
            it has seen takes for duplicates. Put the tenant in the id (``f"{tenant}-{n}"``) or keep the UUIDs.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Clock,
        tenant: str = "default",
        authorization: AuthorizationPolicy | None = None,
        default_actor: Actor | None = None,
        max_retries: int = 5,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        _check_ports(storage, clock)
        self.storage = storage
        self.clock = clock
        self._tenant = check_id(tenant, "tenant")
        self.authorization: AuthorizationPolicy = RolePolicy() if authorization is None else authorization
        self.default_actor = None if default_actor is None else _require(default_actor, Actor)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= 100:
            msg = f"max_retries must be a whole number from 0 to 100, got {max_retries!r}"
            raise InvalidInputError(msg, field="max_retries")
        self.max_retries = max_retries
        for name, port in (("new_id", new_id), ("clock.now", getattr(clock, "now", None))):
            if not callable(port):
                msg = f"{name} must be callable, got {port!r}"
                raise InvalidInputError(msg, field=name)
        self._new_id = new_id
        self._cache = _Cache()  # the newest versioned snapshot seen, of (tenant, storage)
        self._cache_of: object = None  # a joined copy's: the storage its transactions belong to (`_joined`)
        self._late_payments = True  # a joined copy's holds may refuse late payments from the start (`_joined`)
        self._local = threading.local()  # .current: (this thread's open transaction, its snapshot)

    @property
    def tenant(self) -> str:
        """
        The business this engine works for, fixed for the engine's life.

        Read-only: the engine's catalogue cache and every write it makes belong to that tenant, so serving another
        tenant is the work of another `BookingEngine` (which costs no more than this one).
        """
        return self._tenant

    @tenant.setter
    def tenant(self, value: str) -> None:
        msg = (
            f"an engine works for one tenant ({self._tenant!r}) for life: make a BookingEngine(storage, "
            f"tenant={value!r}, ...) for another instead of reassigning tenant"
        )
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return f"<BookingEngine(tenant={self.tenant!r}, storage={self.storage!r})>"

    # --- plumbing ----------------------------------------------------------------------------------------

    def _who(self, actor: Actor | None) -> Actor:
        """Return the acting party: the call's, or the engine's default; refuse a call with neither."""
        if actor is None:
            actor = self.default_actor
        if actor is None:
            msg = "no actor: pass actor=Actor.customer(...) (or staff, manager, system), or set default_actor"
            raise PermissionDeniedError(msg)
        return _require(actor, Actor)

    def _allow(self, actor: Actor, permission: Permission, booking: Booking | None = None) -> None:
        self.authorization.authorize(actor, permission, booking)

    def _readable(self, actor: Actor, bookings: Iterable[Booking]) -> builtins.list[Booking]:
        """
        Keep the bookings the policy lets *actor* read, asking it about each one.

        A list-style read is allowed as a whole first (``booking=None``), and then filtered, so a policy whose
        rule depends on the booking (a barber's own clients) holds for lists as it does for `get`. Only a
        `PermissionDeniedError` drops a booking; any other error of the policy propagates.
        """
        kept = []
        for booking in bookings:
            try:
                self.authorization.authorize(actor, Permission.READ, booking)
            except PermissionDeniedError:
                continue
            kept.append(booking)
        return kept

    def _now(self) -> datetime:
        return to_utc(self.clock.now(), "clock.now()")

    def _catalogue(self, tx: StorageTransaction) -> _Catalogue:
        """
        Return the catalogue as *tx* sees it: the cached snapshot if the storage's version is unchanged.

        The version is read in *tx* before anything else of the catalogue, so a snapshot is never older than
        its label; a catalogue change made anywhere (another engine, process or host) changes the version and
        the next transaction reads the catalogue again. One transaction reads the version once.
        """
        current: tuple[StorageTransaction, _Catalogue] | None = getattr(self._local, "current", None)
        if current is not None and current[0] is tx:
            return current[1]
        reader = getattr(tx, "catalogue_version", None)
        if reader is None:
            snapshot = _Catalogue.read(tx, None)
        else:
            version = int(reader())
            cached = self._snapshot()
            if cached is not None and cached.version == version:
                snapshot = cached
            else:
                snapshot = _Catalogue.read(tx, version)
                self._cache.entry = (self._tenant, self._source(), snapshot)
        self._local.current = (tx, snapshot)
        return snapshot

    def _source(self) -> object:
        """The storage this engine's transactions belong to: its own, or for a joined copy its original's."""
        return self.storage if self._cache_of is None else self._cache_of

    def _snapshot(self) -> _Catalogue | None:
        """
        The cached snapshot, if it was read from this engine's tenant and storage; None otherwise.

        A version labels a catalogue within one tenant of one storage only (SQLite counts per tenant), so a
        snapshot is never offered to another tenant or another storage, even one at the same version.
        """
        entry = self._cache.entry
        if entry is None or entry[0] != self._tenant or entry[1] is not self._source():
            return None
        return entry[2]

    def _joined(self, storage: Storage, *, late_payments: bool = True) -> BookingEngine:
        """
        A copy of this engine whose transactions are *storage*'s: one open transaction of this engine's storage.

        `slotengine.events.EventDesk` joins its unit of work this way. The copy shares this engine's catalogue
        cache (its transactions are this storage's, for this tenant) and never retries on its own: a
        `ConcurrencyError` ends the whole unit, which its owner runs again. Without *late_payments*, the holds
        it makes refuse a late payment from their first version (a waiting list's offers and the holds sold
        while people wait), so the answer an idempotency key keeps is the booking as stored.
        """
        joined = copy.copy(self)
        joined.storage = storage
        joined._cache_of = self._source()
        joined.max_retries = 0
        joined._late_payments = late_payments
        return joined

    def _policies_of_new(self, policies: Policies) -> Policies:
        """The business's *policies* as a new booking keeps them: without late payments in a copy made so."""
        if self._late_payments or not policies.hold.accept_late_payment:
            return policies
        return attrs.evolve(policies, hold=attrs.evolve(policies.hold, accept_late_payment=False))

    @contextmanager
    def _tx(self) -> Iterator[StorageTransaction]:
        with self.storage.transaction(self.tenant) as tx:
            try:
                yield tx
            finally:
                self._local.current = None

    def _run(self, use_case: Callable[[StorageTransaction, datetime], _T]) -> _T:
        """Run *use_case* in one transaction that it commits, retrying on concurrency failures."""
        attempt = 0
        while True:
            now = self._now()
            try:
                with self._tx() as tx:
                    result = use_case(tx, now)
                    tx.commit()
                    return result
            except ConcurrencyError:
                attempt += 1
                if attempt > self.max_retries:
                    raise

    def _keyed(
        self,
        key: str | None,
        request: dict[str, Any],
        use_case: Callable[[StorageTransaction, datetime], Booking],
        allow: tuple[Actor, Permission] | None = None,
    ) -> Booking:
        """
        Run a booking-returning use case, saving or replaying its first result under *key*.

        A replay is authorized like the call itself (*allow*: the actor and the permission), since the use case,
        which checks them, does not run again: a key does not open another customer's booking.
        """
        if key is None:
            return self._run(use_case)
        check_id(key, "idempotency key")
        digest = _digest(request)

        def replay(tx: StorageTransaction, _now: datetime) -> Booking | None:
            saved = tx.get_idempotency(key)
            if saved is None:
                return None
            if saved.request_hash != digest:
                msg = f"idempotency key {key!r} was already used for a different request"
                raise IdempotencyKeyMismatchError(msg, key=key)
            replayed = booking_from_dict(loads(saved.result))
            if allow is not None:
                self._allow(*allow, replayed)
            return replayed

        def keyed(tx: StorageTransaction, now: datetime) -> Booking:
            replayed = replay(tx, now)
            if replayed is not None:
                return replayed
            booking = use_case(tx, now)
            tx.put_idempotency(IdempotencyRecord(key, digest, booking.id, _dumps_made(booking_to_dict(booking)), now))
            return booking

        try:
            return self._run(keyed)
        except ConflictError:
            # A twin request with the same key may have taken the time while this one waited for the locks (its
            # key unseen when this transaction looked): then this is a retry, and gets the twin's answer.
            replayed = self._run(replay)
            if replayed is None:
                raise
            return replayed

    def _record(
        self,
        tx: StorageTransaction,
        now: datetime,
        booking: Booking,
        before: BookingStatus | None,
        action: Action,
        actor: str,
        reason: str = "",
        *,
        reviving: bool = False,
    ) -> TransitionRecord:
        """Append the transition record and the outbox messages of one effective step, re-planning reminders."""
        catalogue = self._catalogue(tx)
        record, messages = self._facts(catalogue, now, booking, before, action, actor, reason, reviving=reviving)
        tx.append_transitions([record])
        if before is not None and action in _REPLAN and self._rules(catalogue, booking):
            # The booking's pending reminders are withdrawn (never sent); `_facts` planned them anew.
            withdrawn = f"withdrawn: the booking was {EVENT_OF_ACTION.get(action, action).value}"
            for pending in tx.list_outbox(pending_only=True, booking_id=booking.id):
                if pending.booking_id == booking.id and pending.topic.startswith("remind."):
                    tx.update_outbox(attrs.evolve(pending, failed_at=now, last_error=withdrawn))
        tx.append_outbox(messages)
        return record

    def _rules(self, catalogue: _Catalogue, booking: Booking) -> builtins.list[NotificationRule]:
        """The business's notification rules that apply to *booking*."""
        business = catalogue.get_business(self.tenant)
        return [rule for rule in business.rules if rule.applies_to(booking)]

    def _facts(
        self,
        catalogue: _Catalogue,
        now: datetime,
        booking: Booking,
        before: BookingStatus | None,
        action: Action,
        actor: str,
        reason: str,
        *,
        reviving: bool = False,
    ) -> tuple[TransitionRecord, builtins.list[OutboxMessage]]:
        """
        Return the transition record of one step and the outbox messages it makes due.

        The messages: the step's event, then what the business's rules send (event rules now or when quiet
        hours end; reminders of a live booking, planned for its time after a step that moves it or starts
        its life).
        """
        record = TransitionRecord(booking.id, before, booking.status, action, now, actor, reason)
        payload: dict[str, object] = {
            "booking_id": booking.id,
            "action": action.value,
            "from": None if before is None else before.value,
            "to": booking.status.value,
            "start": booking.start.isoformat(),
            "end": booking.end.isoformat(),
            "resource_ids": list(booking.resource_ids),
            "service_id": booking.service_id,
        }
        if booking.payments:
            payload.update(_money_facts(booking, action, reviving=reviving))
        message_id = self._new_id()
        messages = [
            OutboxMessage(
                message_id,
                f"booking.{action.value}",
                booking.id,
                now,
                now,
                message_id,
                _dumps_made({**payload, "channel": "event"}),
            )
        ]
        rules = self._rules(catalogue, booking)
        if not rules:
            return record, messages
        business = catalogue.get_business(self.tenant)
        # An expiry on the way to a revival is no news to the client: the late payment brings the booking back.
        events = frozenset() if reviving else events_of(action, before)
        for rule in rules:
            fired = rule.on & events
            if fired:
                key = f"{booking.id}:{rule.id}:v{booking.version}"
                messages += self._messages(catalogue, business, booking, rule, "notify", now, now, key, fired)
        if action in _REPLAN and booking.status in LIVE_STATUSES:
            for rule in rules:
                if rule.offset is not None and booking.start + rule.offset > now:
                    key = f"{booking.id}:{rule.id}:{booking.start.isoformat()}:v{booking.version}"
                    due = booking.start + rule.offset
                    messages += self._messages(catalogue, business, booking, rule, "remind", due, now, key)
        return record, messages

    def _messages(
        self,
        catalogue: _Catalogue,
        business: Business,
        booking: Booking,
        rule: NotificationRule,
        kind: str,
        due: datetime,
        now: datetime,
        key: str,
        events: frozenset[Event] = frozenset(),
    ) -> builtins.list[OutboxMessage]:
        """
        One outbox message per recipient of *rule* for *booking*, due at *due* (after quiet hours).

        *events*: the events of the rule that this step fired (a notice), which the message keeps so that
        `NotificationRule.holds` judges it by them rather than by every event the rule listens to.
        """
        recipients: builtins.list[tuple[str, ZoneInfo]] = []
        business_zone = get_zone(business.zone)
        if rule.recipient is Recipient.CLIENT:
            if booking.customer_id is not None:
                zone = get_zone(booking.customer_zone) if booking.customer_zone else business_zone
                recipients.append((f"client:{booking.customer_id}", zone))
        elif rule.recipient is Recipient.AGENT:
            if business.agent is not None:
                recipients.append((f"agent:{business.agent}", business_zone))
        else:
            for rid in booking.resource_ids:
                resource = catalogue.get_resource(rid)
                if resource.kind is ResourceKind.USER:
                    recipients.append((f"staff:{rid}", get_zone(resource.zone) if resource.zone else business_zone))
        out = []
        for recipient, zone in recipients:
            at = quiet_shift(due, business.quiet_hours, zone) if rule.quiet_hours else due
            if kind == "remind" and due < booking.start <= at and business.quiet_hours is not None:
                # Waiting for the quiet hours to end would remind after the start: remind before they begin.
                # (A notice of what happened is never dropped: it goes when they end, even after the start.)
                at = quiet_begin(due, business.quiet_hours, zone) - _ONE_MINUTE
                if at <= now:
                    continue  # too late for that too; nobody is woken for it
            message_id = self._new_id()
            payload: dict[str, object] = {
                "rule": rule.id,
                "recipient": recipient,
                "channel": rule.channel,
                "booking_id": booking.id,
                "start": booking.start.isoformat(),
                "zone": zone.key,
            }
            if events:
                payload["events"] = sorted(events)
            out.append(
                OutboxMessage(
                    message_id, f"{kind}.{rule.id}", booking.id, now, at, _dedupe(f"{key}:{recipient}"), dumps(payload)
                )
            )
        return out

    def _step(
        self,
        tx: StorageTransaction,
        now: datetime,
        booking: Booking,
        action: Action,
        actor: str,
        reason: str = "",
        *,
        reviving: bool = False,
        **changes: Any,
    ) -> Booking:
        """
        Take one table edge on a stored booking whose time does not change, and record it.

        *reviving*: an expiry recorded on the way to reviving the booking in the same transaction (a late
        payment), whose event must not ask for the prepayment back.

        A step that takes time again is checked under its resources' locks, like a new booking: a hold made firm
        (a hold counts only until it lapses, and a writer whose clock says it has may have taken its time
        already), and an expired booking revived.
        """
        after = next_status(booking.status, action)
        if after is not BookingStatus.PRE_BOOKING and "hold_until" not in changes:
            changes["hold_until"] = None
        new = attrs.evolve(booking, status=after, version=booking.version + 1, **changes)
        firm_from_hold = booking.status is BookingStatus.PRE_BOOKING and after in _FIRM
        revived = booking.status is BookingStatus.EXPIRED and after in LIVE_STATUSES
        if firm_from_hold or revived:
            tx.lock_resources(booking.resource_ids)
            tx.reserve(new, now=now)
        else:
            tx.update_booking(new, expected_version=booking.version)
        self._record(tx, now, new, booking.status, action, actor, reason, reviving=reviving)
        return new

    # --- the catalogue -------------------------------------------------------------------------------------

    def setup(self, business: Business, *, actor: Actor | None = None) -> None:
        """Create or replace the business (its zone, hours and policies)."""
        checked, who = _require(business, Business), self._who(actor)
        self._allow(who, Permission.SETUP)
        self._run(lambda tx, _now: tx.put_business(checked))

    def add_resource(self, resource: Resource, *, actor: Actor | None = None) -> None:
        """Create or replace a resource."""
        checked, who = _require(resource, Resource), self._who(actor)
        self._allow(who, Permission.SETUP)
        self._run(lambda tx, _now: tx.put_resource(checked))

    def add_service(self, service: Service, *, actor: Actor | None = None) -> None:
        """Create or replace a service."""
        checked, who = _require(service, Service), self._who(actor)
        self._allow(who, Permission.SETUP)
        self._run(lambda tx, _now: tx.put_service(checked))

    def business(self) -> Business:
        """Return the business. Raises `NotFoundError` before `setup`."""
        return self._run(lambda tx, _now: tx.get_business())

    def resources(self) -> list[Resource]:
        """Return every resource."""
        return self._run(lambda tx, _now: tx.list_resources())

    def services(self) -> list[Service]:
        """Return every service."""
        return self._run(lambda tx, _now: tx.list_services())

    # --- availability ----------------------------------------------------------------------------------------

    def _availability(
        self,
        tx: StorageTransaction,
        now: datetime,
        service: Service,
        window: Interval,
        *,
        ignore: Collection[str] = (),
        reach: Interval | None = None,
        catalogue: _Catalogue | None = None,
    ) -> Availability:
        """
        Build the solver's view of *service*'s pools around *window*, from storage.

        *reach*: the only time whose loads the questions asked of it depend on (see `_reach`); without it, the
        loads of the whole span around *window* are read. *catalogue*: a snapshot known to be current, used
        instead of the one *tx* reads.
        """
        if catalogue is None:
            catalogue = self._catalogue(tx)
        span = _span(service, window)
        pool = catalogue.pool(service)
        found = [ld for ld in tx.loads([r.id for r in pool], reach or span) if ld.booking_id not in ignore]
        return self._view(catalogue, now, service, span, found)

    def _view(
        self, catalogue: _Catalogue, now: datetime, service: Service, span: Interval, loads: Sequence[Load]
    ) -> Availability:
        """The solver's view of *service*'s pools over *span* (see `_span`) with *loads* on them."""
        business = catalogue.get_business(self.tenant)
        pool = catalogue.pool(service)
        hours: dict[str, IntervalSet] = {}
        time_off: dict[str, IntervalSet] = {}
        for resource in pool:
            hours[resource.id], time_off[resource.id] = catalogue.opening(resource, business, span)
        return Availability(pool, hours, loads, now=now, time_off=time_off, zone=business.zone)

    def find_slots(
        self,
        service_id: str,
        window: Interval,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Slot]:
        """
        Return the bookable slots of a service in *window* (see `Availability.slots`).

        Raises:
            NotFoundError: no such service.
            InvalidInputError: a bad duration, pin or window.
        """
        check_id(service_id, "service id")
        _check_window(window)
        strategy = _check_choice(duration, pin, strategy, preferred)

        def query(tx: StorageTransaction, now: datetime) -> list[Slot]:
            catalogue = self._catalogue(tx)
            service = catalogue.get_service(service_id)
            ranked = catalogue.screened(service, pin, preferred)
            availability = self._availability(tx, now, service, window)
            return availability.slots(
                service, window, duration=duration, pin=pin, strategy=strategy, preferred=ranked, limit=limit
            )

        return self._run(query)

    def explain(
        self,
        service_id: str,
        start: datetime,
        *,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
    ) -> Explanation:
        """Say whether *start* is bookable for a service, and every reason it is not."""
        check_id(service_id, "service id")
        start = to_utc(start, "start")
        _check_duration(duration)
        _check_ids(pin, "pin")

        def query(tx: StorageTransaction, now: datetime) -> Explanation:
            catalogue = self._catalogue(tx)
            service = catalogue.get_service(service_id)
            catalogue.check_pins(service, pin)
            window = Interval(start, start + (service.duration if duration is None else duration))
            reach = _reach(service, window, Strategy.FIRST_AVAILABLE)
            availability = self._availability(tx, now, service, window, reach=reach)
            return availability.explain(service, start, duration=duration, pin=pin)

        return self._run(query)

    # --- creating bookings -------------------------------------------------------------------------------------

    def hold(
        self,
        service_id: str,
        start: datetime,
        *,
        customer_id: str | None = None,
        customer: Customer | None = None,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
        source: str = Source.SITE,
        notes: str = "",
        external_ref: str | None = None,
        actor: Actor | None = None,
        idempotency_key: str | None = None,
    ) -> Booking:
        """
        Pre-book *start*: the booking holds its time until its hold expires (`HoldPolicy.ttl`).

        Raises:
            ConflictError: the time is not bookable; ``details["reasons"]`` says why. Nothing was written.
            NotFoundError: no such service.
            InvalidInputError: a bad value (naive start, disallowed duration, unknown pin, ...).
        """
        check_id(service_id, "service id")
        return self._create(
            Action.HOLD,
            service_id,
            start,
            customer_id,
            duration,
            pin,
            source,
            notes,
            external_ref,
            actor,
            idempotency_key,
            customer=customer,
            strategy=strategy,
            preferred=preferred,
        )

    def book(
        self,
        service_id: str,
        start: datetime,
        *,
        customer_id: str | None = None,
        customer: Customer | None = None,
        duration: timedelta | None = None,
        pin: Collection[str] = (),
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
        source: str = Source.MANAGER,
        notes: str = "",
        external_ref: str | None = None,
        actor: Actor | None = None,
        idempotency_key: str | None = None,
        override: bool = False,
    ) -> Booking:
        """
        Book *start* confirmed at once (back office: a hold and its confirmation in one step).

        With ``override=True`` a manager books outside the offered times (closed hours, off the grid, inside
        the minimum notice), where the business allows overrides (`Policies.allow_override`). Capacity is
        never overridden: a resource that is full stays full.

        Raises:
            PermissionDeniedError: the actor may not book, or not override.
            PolicyViolationError: overrides are not allowed by this business.
            ConflictError: the time is not bookable (with an override: some resource is full).
        """
        check_id(service_id, "service id")
        return self._create(
            Action.BOOK,
            service_id,
            start,
            customer_id,
            duration,
            pin,
            source,
            notes,
            external_ref,
            actor,
            idempotency_key,
            override=override,
            customer=customer,
            strategy=strategy,
            preferred=preferred,
        )

    def _create(
        self,
        action: Action,
        service_id: str,
        start: datetime,
        customer_id: str | None,
        duration: timedelta | None,
        pin: Collection[str],
        source: str,
        notes: str,
        external_ref: str | None,
        actor: Actor | None,
        idempotency_key: str | None,
        *,
        override: bool = False,
        customer: Customer | None = None,
        strategy: Strategy = Strategy.FIRST_AVAILABLE,
        preferred: Sequence[str] = (),
    ) -> Booking:
        start = to_utc(start, "start")
        strategy, pins = _check_choice(duration, pin, strategy, preferred), tuple(sorted(pin))
        who = self._who(actor)
        zone, language = None, ""
        if customer is not None:
            customer = _require(customer, Customer)
            if customer_id is not None and customer_id != customer.id:
                msg = f"customer_id {customer_id!r} and customer {customer.id!r} disagree"
                raise InvalidInputError(msg, field="customer_id")
            customer_id, zone, language = customer.id, customer.zone, customer.language
        if who.role is Role.CUSTOMER:
            if customer_id is not None and customer_id != who.customer_id:
                msg = f"{who} may not book for another customer"
                raise PermissionDeniedError(msg, actor=str(who))
            customer_id = who.customer_id
        self._allow(who, Permission.HOLD if action is Action.HOLD else Permission.BOOK)
        if _flag(override, "override"):
            self._allow(who, Permission.OVERRIDE)
        check_text(notes, "notes", max_length=10_000, allow_empty=True)

        def build(catalogue: _Catalogue, now: datetime, service: Service, slot: Slot) -> Booking:
            business = catalogue.get_business(self.tenant)
            status, policies = next_status(None, action), self._policies_of_new(business.policies)
            return Booking(
                self._new_id(),
                service.id,
                slot.start,
                slot.end,
                slot.assignments,
                tuple(service.needs[a.need].units for a in slot.assignments),
                status,
                now,
                policies=policies,
                hold_until=now + policies.hold.ttl if status is BookingStatus.PRE_BOOKING else None,
                buffer_before=service.buffer_before,
                buffer_after=service.buffer_after,
                customer_id=customer_id,
                source=source,
                notes=notes,
                external_ref=external_ref,
                price=_price(service, service.duration if duration is None else duration),
                customer_zone=zone,
                customer_language=language,
            )

        request: dict[str, Any] = {}
        keyed: tuple[str, str] | None = None
        if idempotency_key is not None:
            check_id(idempotency_key, "idempotency key")
            request = {
                "call": action.value,
                "service_id": service_id,
                "start": start.isoformat(),
                "customer_id": customer_id,
                "duration": None if duration is None else duration.total_seconds(),
                "pin": pins,
                "source": str(source),
                "notes": notes,
                "external_ref": external_ref,
                "override": override,
                "customer_zone": zone,
                "customer_language": language,
                "strategy": str(strategy),
                "preferred": list(preferred),
            }
            keyed = (idempotency_key, _digest(request))
        if not override and strategy is not Strategy.LEAST_LOADED:
            made = self._create_at_once(
                action, service_id, start, duration, pins, strategy, preferred, build, who, keyed
            )
            if made is not None:
                return made

        def create(tx: StorageTransaction, now: datetime) -> Booking:
            catalogue = self._catalogue(tx)
            service = catalogue.get_service(service_id)
            business, ranked = catalogue.get_business(self.tenant), catalogue.screened(service, pins, preferred)
            chosen = service.duration if duration is None else duration
            window = Interval(start, start + chosen)
            if not override and catalogue.found_full((service_id, start, duration), now):
                # A start found full a moment ago is checked without the locks first: a refusal needs none
                # (the load it reads is a state the resources were in), so the refusals of a contested slot
                # neither wait for each other's locks nor hold up a booking. What passes is checked again below.
                self._availability(tx, now, service, window, reach=_reach(service, window, strategy)).check(
                    service, start, duration=duration, pin=pins, strategy=strategy, preferred=ranked
                )
            tx.lock_resources([r.id for r in catalogue.pool(service)])
            if override:
                if not business.policies.allow_override:
                    msg = f"{business.name} does not allow managers to book outside the offered times"
                    raise PolicyViolationError(msg, rule="override")
                slot = self._override_slot(tx, now, service, start, duration, pins, strategy, ranked)
            else:
                slot = self._availability(tx, now, service, window, reach=_reach(service, window, strategy)).check(
                    service, start, duration=duration, pin=pins, strategy=strategy, preferred=ranked
                )
            booking = build(catalogue, now, service, slot)
            tx.reserve(booking, now=now)
            self._record(tx, now, booking, None, action, str(who), "override" if override else "")
            return booking

        # A replay hands back a booking made earlier, perhaps for someone else: the actor must be allowed to read it.
        return self._keyed(idempotency_key, request, create, (who, Permission.READ))

    def _create_at_once(
        self,
        action: Action,
        service_id: str,
        start: datetime,
        duration: timedelta | None,
        pins: tuple[str, ...],
        strategy: Strategy,
        preferred: Sequence[str],
        build: Callable[[_Catalogue, datetime, Service, Slot], Booking],
        who: Actor,
        keyed: tuple[str, str] | None,
    ) -> Booking | None:
        """
        Hold or book in one storage call, or return None to go the usual way (`_create`'s transaction).

        With a storage that has `slotengine.ports.ReserveAndRecord` and a cached, versioned catalogue, the
        solver answers from the catalogue alone (hours, grid, notice, pins: everything but the load) and the
        storage writes the booking, its record and its messages at once, after checking under the resources'
        locks that the catalogue is unchanged and the booking fits. For the strategies that do not look at
        the load (first available, preferred), a booking that fits is exactly the one the usual way would
        choose: the first candidate in the strategy's order that is free. A full resource is explained at once
        from the load read without locks (`_refuse_at_once`), unless the start fits another candidate. Anything
        else (a start the solver refuses, a changed catalogue, a concurrent writer) goes the usual way, which
        reads the load under the locks, explains a refusal and retries; a start found full goes the usual way
        straight away for a minute (`_FULL_FOR`), so a contested slot costs one round trip less per refusal.
        A keyed call (*keyed*: the idempotency key and the request's hash) saves its record in the same call;
        a key the storage has already goes the usual way, which replays its first result or refuses.
        """
        writer = getattr(self.storage, "reserve_and_record", None)
        snapshot = self._snapshot()
        if writer is None or snapshot is None or snapshot.version is None or snapshot.business is None:
            return None
        service = snapshot.services.get(service_id)
        now = self._now()
        if service is None or snapshot.found_full((service_id, start, duration), now):
            # A start found full a moment ago goes the usual way, which reads the load and explains.
            return None
        try:
            chosen = service.duration if duration is None else duration
            span = _span(service, Interval(start, start + chosen))
            ranked = snapshot.screened(service, pins, preferred)
            slot = self._view(snapshot, now, service, span, ()).check(
                service, start, duration=duration, pin=pins, strategy=strategy, preferred=ranked
            )
            booking = build(snapshot, now, service, slot)
            record, messages = self._facts(snapshot, now, booking, None, action, str(who), "")
            saved = (
                None
                if keyed is None
                else IdempotencyRecord(keyed[0], keyed[1], booking.id, _dumps_made(booking_to_dict(booking)), now)
            )
        except SlotEngineError:
            return None
        try:
            writer(
                self.tenant,
                booking,
                now=now,
                transitions=[record],
                outbox=messages,
                catalogue_version=snapshot.version,
                idempotency=saved,
            )
        except ConflictError as refused:
            if len(snapshot.full) >= _FULL_KEPT:
                snapshot.full.clear()
            snapshot.full[service_id, start, duration] = now
            # A keyed call goes the usual way, which looks its key up first.
            told = refused.details.get("loads")
            if keyed is None and self._refuse_at_once(
                snapshot, now, service, start, duration, pins, strategy, ranked, told if type(told) is tuple else None
            ):
                del snapshot.full[service_id, start, duration]  # it fits: the usual way goes straight to the locks
            return None
        except (NotFoundError, ConcurrencyError):
            return None
        return booking

    def _refuse_at_once(
        self,
        snapshot: _Catalogue,
        now: datetime,
        service: Service,
        start: datetime,
        duration: timedelta | None,
        pins: tuple[str, ...],
        strategy: Strategy,
        ranked: Sequence[str],
        told: tuple[Load, ...] | None = None,
    ) -> bool:
        """
        Raise the refusal of a start the one-call write just found full, explained from the load read now.

        As the usual way refuses a start found full (without the resources' locks: a refusal needs none), but
        against *snapshot* without reading the catalogue's version again: the storage checks the version before
        capacity (`ReserveAndRecord`), so its refusal said the snapshot was current. Return True if the start
        fits after all (another resource of the pool, a booking gone meanwhile), False if the read failed: the
        usual way then books it under the locks, or reads again.

        *told*: the loads the refusal came with (``details["loads"]``: the refused resource's, over the
        booking's blocked time, read under its lock), if the storage gives them. When that resource is the
        whole pool and that time is all a check reads (`_reach`), they are what the read would return, and
        nothing is read.
        """
        chosen = service.duration if duration is None else duration
        window = Interval(start, start + chosen)
        reach = _reach(service, window, strategy)
        pool = snapshot.pool(service)
        if told is not None and reach is not None and len(pool) == 1 and len(service.needs) == 1:
            found = [ld for ld in told if ld.resource_id == pool[0].id]
            view = self._view(snapshot, now, service, _span(service, window), found)
        else:
            try:
                with self._tx() as tx:
                    view = self._availability(tx, now, service, window, reach=reach, catalogue=snapshot)
            except ConcurrencyError:
                return False  # the usual way reads it again, and retries
        view.check(service, start, duration=duration, pin=pins, strategy=strategy, preferred=ranked)
        return True

    def _override_slot(
        self,
        tx: StorageTransaction,
        now: datetime,
        service: Service,
        start: datetime,
        duration: timedelta | None,
        pin: Collection[str],
        strategy: Strategy,
        preferred: Sequence[str],
    ) -> Slot:
        """
        Check *start* with every pool resource open around it and no notice or horizon: capacity only.

        Resources are chosen as without an override: *pin*, then *strategy* (with the *preferred* ids of the pool).
        """
        relaxed = attrs.evolve(service, min_notice=timedelta(0), horizon=None, buffers_outside_hours=False)
        chosen = service.duration if duration is None else duration
        longest = chosen + _ONE_DAY if service.unit is not ServiceUnit.MINUTES else chosen
        span = Interval(start - service.buffer_before, start + longest + service.buffer_after + _MARGIN)
        catalogue = self._catalogue(tx)
        pool = catalogue.pool(service)
        opened = {r.id: IntervalSet.of(span.start, span.end) for r in pool}
        found = tx.loads([r.id for r in pool], span)
        business = catalogue.get_business(self.tenant)
        availability = Availability(pool, opened, found, now=now, zone=business.zone)
        return availability.check(relaxed, start, duration=duration, pin=pin, strategy=strategy, preferred=preferred)

    # --- moving through the lifecycle ----------------------------------------------------------------------

    def confirm(self, booking_id: str, *, actor: Actor | None = None, idempotency_key: str | None = None) -> Booking:
        """
        Confirm a pre-booking (a manager's confirmation). Fully prepaid pre-bookings become paid.

        A pre-booking whose hold has lapsed is refused, swept or not (its time is no longer held: hold it
        again), as `cancel` and `reschedule` refuse it, so the answer does not hang on the sweep's timing.

        Raises:
            IllegalTransitionError: the booking is not a live pre-booking (its hold lapsed, or it is firm).
        """
        check_id(booking_id, "booking id")
        who = self._who(actor)

        def confirm(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.CONFIRM, booking)
            _refuse_lapsed(booking, now, Action.CONFIRM, "hold the time again and confirm that")
            action = booking.policies.confirmation.confirm_action(booking.net_paid, booking.due)
            return self._step(tx, now, booking, action, str(who))

        request = {"call": "confirm", "booking_id": booking_id}
        return self._keyed(idempotency_key, request, confirm, (who, Permission.CONFIRM))

    def pay(
        self,
        booking_id: str,
        amount: Money,
        *,
        payment_id: str,
        actor: Actor | None = None,
    ) -> Booking:
        """
        Record a payment. It confirms, completes payment, or waits, as the booking's `ConfirmationPolicy` says.

        *payment_id* is the payment provider's id: the same payment delivered again (a replayed webhook)
        changes nothing and returns the booking. A payment on an expired pre-booking revives it if the
        business accepts late payments and its time is still free.

        Raises:
            PolicyViolationError: overpayment, manager-first, or late payments refused.
            CurrencyMismatchError: the payment is in another currency than the price.
            ConflictError: a late payment whose time was taken meanwhile (nothing recorded; refund it).
            IllegalTransitionError: the booking takes no payment in its status.
        """
        check_id(booking_id, "booking id")
        check_id(payment_id, "payment id")
        amount = _require(amount, Money)
        who = self._who(actor)
        actor_label = str(who)

        def pay(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.PAY, booking)
            if _replayed(booking, payment_id, PaymentKind.PAYMENT, amount):
                return booking
            _same_currency(booking, amount, "a payment")
            if _lapsed(booking, now):
                booking = self._revive(tx, now, booking, actor_label)
            due = booking.price if booking.price is not None else Money.zero(amount.currency)
            if booking.status in {BookingStatus.NO_SHOW, BookingStatus.CANCELLED}:
                due = booking.due  # only an owed fee can be paid
                if booking.net_paid + amount > due:
                    owed = due - booking.net_paid
                    msg = (
                        f"this booking is {booking.status.value.replace('_', ' ')}: only its unpaid fees can be paid, "
                        f"{owed} now; a payment of {amount} is more than that"
                    )
                    raise PolicyViolationError(msg, rule="overpayment", due=due, paid=booking.net_paid)
            action = booking.policies.confirmation.payment_action(booking.status, booking.net_paid, amount, due)
            entry = Payment(payment_id, PaymentKind.PAYMENT, amount, now, actor_label)
            return self._step(tx, now, booking, action, actor_label, payments=(*booking.payments, entry))

        return self._run(pay)

    def _revive(self, tx: StorageTransaction, now: datetime, booking: Booking, actor: str) -> Booking:
        """Bring a lapsed hold back to a live pre-booking with a new hold, for a late payment, if its time is free."""
        if not booking.policies.hold.accept_late_payment:
            msg = (
                "this pre-booking expired and takes no late payment (the business does not accept them, or "
                "its seats were set aside for a waiting list or passed on)"
            )
            raise PolicyViolationError(msg, rule="late_payment", deadline=booking.hold_until)
        if booking.start <= now:
            msg = (
                f"this pre-booking expired and its time began at {booking.start.isoformat()}: a late payment "
                "cannot revive it; refund the payment"
            )
            raise PolicyViolationError(msg, rule="late_payment", start=booking.start)
        tx.lock_resources(booking.resource_ids)  # before the first write, as every writer of these resources
        # Checked like a new booking of the same time and resources: hours, days off and notice as they are now
        # (the business may have closed that day since), and capacity without the hold itself.
        service = self._catalogue(tx).get_service(booking.service_id)
        own = _length(booking, service, self._zone_of(tx, booking))
        window = Interval(booking.start, booking.start + own)
        reach = _reach(service, window, Strategy.FIRST_AVAILABLE)
        view = self._availability(tx, now, service, window, ignore={booking.id}, reach=reach)
        view.check(service, booking.start, duration=own, pin=booking.resource_ids)
        if booking.status is BookingStatus.PRE_BOOKING:
            # Lapsed but not yet swept: record the expiry first, so the log tells what happened.
            booking = self._step(
                tx, now, booking, Action.EXPIRE, "system", "hold lapsed", reviving=True, hold_until=None
            )
        hold = now + booking.policies.hold.ttl
        return self._step(tx, now, booking, Action.REVIVE, actor, hold_until=hold)

    def refund(
        self,
        booking_id: str,
        amount: Money,
        *,
        payment_id: str,
        actor: Actor | None = None,
        reason: str = "",
    ) -> Booking:
        """
        Record money given back.

        A replayed *payment_id* changes nothing; the same id with another amount, or a payment's id, is refused.

        Raises:
            PolicyViolationError: more than the client has paid, net.
            IllegalTransitionError: the booking's status takes no refund.
            InvalidInputError: *payment_id* is already in the ledger as another entry.
        """
        check_id(booking_id, "booking id")
        check_id(payment_id, "payment id")
        if not isinstance(amount, Money) or amount.amount <= 0:
            msg = f"a refund must be a positive amount of Money, got {amount!r}"
            raise InvalidInputError(msg, field="amount")

        who = self._who(actor)

        def refund(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.REFUND, booking)
            if _replayed(booking, payment_id, PaymentKind.REFUND, amount):
                return booking
            next_status(booking.status, Action.REFUND)
            _same_currency(booking, amount, "a refund")
            if amount > booking.net_paid:
                msg = f"cannot refund {amount}: the client has paid {booking.net_paid} net"
                raise PolicyViolationError(msg, rule="refund_exceeds_paid")
            entry = Payment(payment_id, PaymentKind.REFUND, amount, now, str(who))
            return self._step(tx, now, booking, Action.REFUND, str(who), reason, payments=(*booking.payments, entry))

        return self._run(refund)

    def cancellation_quote(
        self, booking_id: str, *, by_business: bool = False, actor: Actor | None = None
    ) -> CancellationQuote:
        """
        Return what cancelling the booking now would refund and cost, without changing anything.

        Raises:
            PolicyViolationError: on the client's terms (``by_business=False``, whoever asks), the deadline passed
                or the booking has begun; with ``by_business=True`` it can still be cancelled (a full refund).
            IllegalTransitionError: the booking cannot be cancelled in its status.
        """
        check_id(booking_id, "booking id")
        _check_flag(by_business, "by_business")
        who = self._who(actor)

        def quote(tx: StorageTransaction, now: datetime) -> CancellationQuote:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.READ, booking)
            next_status(booking.status, Action.CANCEL)
            _refuse_lapsed(booking, now, Action.CANCEL, "it expires by itself and costs nothing")
            return self._quote(tx, booking, now, by_business)

        return self._run(quote)

    def _quote(self, tx: StorageTransaction, booking: Booking, now: datetime, by_business: bool) -> CancellationQuote:
        price = booking.price if booking.price is not None else Money.zero(booking.currency or "EUR")
        # A pre-booking binds nobody yet (letting its hold lapse costs nothing): withdrawing it is free.
        by_business = by_business or booking.status is BookingStatus.PRE_BOOKING
        return booking.policies.cancellation.quote(
            price=price,
            paid=booking.net_paid,
            start=booking.start,
            now=now,
            zone=self._zone_of(tx, booking),
            by_business=by_business,
        )

    def _zone_of(self, tx: StorageTransaction, booking: Booking) -> ZoneInfo:
        catalogue = self._catalogue(tx)
        business = catalogue.get_business(self.tenant)
        first = booking.resource_ids[0]
        try:
            zone = catalogue.get_resource(first).zone
        except LookupError:
            zone = None
        return get_zone(zone or business.zone)

    def cancel(
        self,
        booking_id: str,
        *,
        actor: Actor | None = None,
        by_business: bool = False,
        reason: str = "",
        expected_quote: CancellationQuote | None = None,
        idempotency_key: str | None = None,
    ) -> Booking:
        """
        Cancel a live booking: its time is freed and the quoted refund (and fee) is recorded.

        The fee is recorded only if the policy charges unpaid penalties.

        Pass the quote shown to the client as *expected_quote*: if the money changed since (a tier boundary
        passed), the cancellation is refused rather than surprising anyone.

        Raises:
            IllegalTransitionError: the booking is not live (a pre-booking whose hold lapsed is not).
            PolicyViolationError: on the client's terms (``by_business=False``, whoever asks), the deadline passed
                or the booking has begun; cancel with ``by_business=True`` instead (a full refund).
            QuoteChangedError: the quote changed since *expected_quote* (a `ConflictError`).
            PermissionDeniedError: the actor may not cancel the booking; or, with ``by_business=True``, may not
                also refund (`Permission.REFUND`: a cancellation on the business's terms refunds in full), or is
                a customer. Nothing was written.
        """
        check_id(booking_id, "booking id")
        _check_flag(by_business, "by_business")
        shown: object = expected_quote
        if shown is not None and not isinstance(shown, CancellationQuote):
            msg = f"expected_quote must be the CancellationQuote shown to the client, not {shown!r}"
            raise InvalidInputError(msg, field="expected_quote")
        who = self._who(actor)
        actor_label = str(who)

        def cancel(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.CANCEL, booking)
            if by_business and who.role is Role.CUSTOMER:
                raise PermissionDeniedError(f"{who} cannot cancel on behalf of the business", actor=actor_label)
            if by_business:
                # The business's terms refund in full: whoever may not refund may not cancel that way either.
                self._allow(who, Permission.REFUND, booking)
            next_status(booking.status, Action.CANCEL)
            _refuse_lapsed(booking, now, Action.CANCEL, "it expires by itself and costs nothing")
            quote = self._quote(tx, booking, now, by_business)
            if expected_quote is not None and quote != expected_quote:
                msg = f"the cancellation terms changed since they were quoted: now {quote.refund} back"
                raise QuoteChangedError(msg, quote=quote)
            cancelled = self._step(tx, now, booking, Action.CANCEL, actor_label, reason)
            if quote.refund.amount > 0:
                entry = Payment(_CANCEL_REFUND.format(booking.id), PaymentKind.REFUND, quote.refund, now, actor_label)
                cancelled = self._step(
                    tx,
                    now,
                    cancelled,
                    Action.REFUND,
                    actor_label,
                    "cancellation refund",
                    payments=(*cancelled.payments, entry),
                )
            if quote.owed.amount > 0 and booking.policies.cancellation.charge_unpaid_penalty:
                entry = Payment(_CANCEL_FEE.format(booking.id), PaymentKind.FEE, quote.owed, now, actor_label)
                cancelled = self._step(
                    tx,
                    now,
                    cancelled,
                    Action.CHARGE_FEE,
                    actor_label,
                    "cancellation fee",
                    payments=(*cancelled.payments, entry),
                )
            return cancelled

        request = {"call": "cancel", "booking_id": booking_id, "by_business": by_business, "reason": reason}
        return self._keyed(idempotency_key, request, cancel, (who, Permission.CANCEL))

    def reschedule(
        self,
        booking_id: str,
        new_start: datetime,
        *,
        duration: timedelta | None = None,
        actor: Actor | None = None,
        idempotency_key: str | None = None,
    ) -> Booking:
        """
        Move a live booking to *new_start*, keeping its payments, atomically.

        A confirmed booking whose payments cover a new, lower price becomes paid; a check-in is forgotten (it was
        for the old time). A booking that has ended cannot be moved, nor one that has begun by a customer (staff
        may move a late client until the end).

        The new time is checked like a new booking (on the same resources if they are free, otherwise on
        any that serve it); the old time is released only if the new one is taken.

        Raises:
            PolicyViolationError: past the reschedule deadline, moved too many times already, the booking has ended
                (``reschedule_ended``) or, for a customer, begun (``reschedule_started``), or a new *duration* whose
                price would change a paid booking's, or fall below what the client paid.
            ConflictError: the new time is not bookable; the booking stays where it was.
            IllegalTransitionError: the booking is not live (a pre-booking whose hold lapsed is not).

        A move to the time the booking already has changes nothing and is not counted as a reschedule.
        """
        check_id(booking_id, "booking id")
        new_start = to_utc(new_start, "new_start")
        _check_duration(duration)
        who = self._who(actor)

        def move(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.RESCHEDULE, booking)
            next_status(booking.status, Action.RESCHEDULE)
            _refuse_lapsed(booking, now, Action.RESCHEDULE, "hold the new time instead")
            _refuse_begun(booking, now, client=who.role is Role.CUSTOMER)
            catalogue = self._catalogue(tx)
            service = catalogue.get_service(booking.service_id)
            zone = self._zone_of(tx, booking)
            own = _length(booking, service, zone)  # elapsed time, or whole days or nights, as the service counts
            length = None if duration == own else duration  # its own length again is no new length
            if new_start == booking.start and length is None:
                return booking  # already there: no move, nothing counted against the reschedule limit
            booking.policies.reschedule.check(
                start=booking.start, now=now, zone=zone, times_so_far=booking.reschedules
            )
            pool_ids = [r.id for r in catalogue.pool(service)]
            tx.lock_resources(pool_ids)
            chosen = own if length is None else length
            window = Interval(new_start, new_start + chosen)
            reach = _reach(service, window, Strategy.FIRST_AVAILABLE)
            availability = self._availability(tx, now, service, window, ignore={booking.id}, reach=reach)
            try:
                slot = availability.check(service, new_start, duration=chosen, pin=booking.resource_ids)
            except (ConflictError, InvalidInputError):
                slot = availability.check(service, new_start, duration=chosen)
            price = booking.price if length is None else _price(service, chosen)
            _check_new_price(booking, price)
            moved = attrs.evolve(
                booking,
                start=slot.start,
                end=slot.end,
                assignments=slot.assignments,
                reschedules=booking.reschedules + 1,
                version=booking.version + 1,
                price=price,
                checked_in_at=None,  # a check-in was for the old time
            )
            tx.reserve(moved, now=now)
            self._record(
                tx, now, moved, booking.status, Action.RESCHEDULE, str(who), f"from {booking.start.isoformat()}"
            )
            confirmation = moved.policies.confirmation
            settled = None if price is None else confirmation.repriced_action(moved.status, moved.net_paid, price)
            if settled is not None:
                # A shorter length whose price what the client paid already covers (or whose deposit it does).
                why = "paid in full" if settled is Action.PAY_FULL else "deposit covered"
                moved = self._step(tx, now, moved, settled, str(who), f"{why} at the new price")
            return moved

        request = {
            "call": "reschedule",
            "booking_id": booking_id,
            "start": new_start.isoformat(),
            "duration": None if duration is None else duration.total_seconds(),
        }
        return self._keyed(idempotency_key, request, move, (who, Permission.RESCHEDULE))

    def check_in(
        self, booking_id: str, *, actor: Actor | None = None, idempotency_key: str | None = None
    ) -> Booking:
        """
        Record that the client arrived (before the booking ends).

        Raises:
            IllegalTransitionError: the booking is not confirmed or paid.
            PolicyViolationError: the booking is over.
        """
        check_id(booking_id, "booking id")
        who = self._who(actor)

        def check_in(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.CHECK_IN, booking)
            next_status(booking.status, Action.CHECK_IN)
            if booking.checked_in_at is not None:
                return booking
            if now >= booking.end:
                msg = "the booking is over; it can no longer be checked in"
                raise PolicyViolationError(msg, rule="check_in_after_end", deadline=booking.end)
            return self._step(tx, now, booking, Action.CHECK_IN, str(who), checked_in_at=now)

        request = {"call": "check_in", "booking_id": booking_id}
        return self._keyed(idempotency_key, request, check_in, (who, Permission.CHECK_IN))

    def mark_no_show(
        self, booking_id: str, *, actor: Actor | None = None, idempotency_key: str | None = None
    ) -> Booking:
        """
        Mark a confirmed or paid booking a no-show, after its grace period, and charge the no-show fee.

        The fee (a share of the price, `CancellationPolicy.no_show_fee_percent`) is recorded as owed only
        for the part not already covered by payments.

        Raises:
            PolicyViolationError: too early, or the client checked in.
            IllegalTransitionError: the booking is not confirmed or paid.
        """
        check_id(booking_id, "booking id")
        who = self._who(actor)
        actor_label = str(who)

        def no_show(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.MARK_NO_SHOW, booking)
            next_status(booking.status, Action.MARK_NO_SHOW)
            checked_in, zone = booking.checked_in_at is not None, self._zone_of(tx, booking)
            booking.policies.no_show.check(start=booking.start, now=now, checked_in=checked_in, zone=zone)
            marked = self._step(tx, now, booking, Action.MARK_NO_SHOW, actor_label)
            if booking.price is not None:
                fee = booking.policies.cancellation.no_show_fee(booking.price)
                owed = fee - booking.net_paid if fee > booking.net_paid else Money.zero(fee.currency)
                if owed.amount > 0:
                    entry = Payment(_NO_SHOW_FEE.format(booking.id), PaymentKind.FEE, owed, now, actor_label)
                    marked = self._step(
                        tx,
                        now,
                        marked,
                        Action.CHARGE_FEE,
                        actor_label,
                        "no-show fee",
                        payments=(*marked.payments, entry),
                    )
            return marked

        request = {"call": "mark_no_show", "booking_id": booking_id}
        return self._keyed(idempotency_key, request, no_show, (who, Permission.MARK_NO_SHOW))

    def complete(
        self, booking_id: str, *, actor: Actor | None = None, idempotency_key: str | None = None
    ) -> Booking:
        """
        Mark a confirmed or paid booking completed, once it has ended.

        Raises:
            PolicyViolationError: it has not ended yet.
            IllegalTransitionError: the booking is not confirmed or paid.
        """
        check_id(booking_id, "booking id")
        who = self._who(actor)

        def complete(tx: StorageTransaction, now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.COMPLETE, booking)
            next_status(booking.status, Action.COMPLETE)
            if now < booking.end:
                zone = self._zone_of(tx, booking)
                ends = f"{booking.end.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"
                msg = f"a booking can be completed once it has ended, at {ends}"
                raise PolicyViolationError(msg, rule="complete_before_end", deadline=booking.end)
            return self._step(tx, now, booking, Action.COMPLETE, str(who))

        request = {"call": "complete", "booking_id": booking_id}
        return self._keyed(idempotency_key, request, complete, (who, Permission.COMPLETE))

    def _recheck(
        self, tx: StorageTransaction, now: datetime, claimed: OutboxMessage, outgoing: OutboxMessage, lease: timedelta
    ) -> tuple[OutboxMessage, OutboxMessage] | DispatchReport:
        """
        A claimed message read again just before its send: its stored claim and what to send, or what became of it.

        A batch is claimed and rendered at once and sent one message after another, so by a message's turn its
        booking may have been cancelled or moved (its reminders withdrawn), or its claim may have run out and
        another dispatcher taken it. The stored message must still be the claim; a message for a person is
        rendered again from the booking as it is now, and withdrawn if it no longer applies. A claim past half
        its *lease* is renewed for a whole one (a slow channel). What this wrote instead of sending is counted
        in the report returned; an empty report means another writer settled the message (nothing to count).
        """
        planned = attrs.evolve(claimed, due_at=outgoing.due_at)  # as listed: a claim moves due_at to its lease end
        if _for_a_person(claimed):  # (only those are withdrawn; an event's claim is all that guards it)
            if _current(tx, claimed) != claimed:
                return DispatchReport()  # withdrawn, sent or given up meanwhile, or taken over once its claim ran out
            try:
                fresh = self._render(tx, planned, now)
            except (KeyError, ValueError, LookupError) as exc:
                error = _storable(f"cannot render: {type(exc).__name__}")
                gave_up = _rewrite(tx, claimed, attrs.evolve(planned, failed_at=now, last_error=error))
                return DispatchReport(failed=int(gave_up))
            if fresh is None:
                withdrawal = attrs.evolve(planned, failed_at=now, last_error="withdrawn: no longer applies")
                return DispatchReport(withdrawn=int(_rewrite(tx, claimed, withdrawal)))
            outgoing = fresh
        if _renewal_due(claimed, outgoing, lease, now):
            renewed = _claim(tx, claimed, now + lease)
            if renewed is None:
                return DispatchReport()
            claimed = renewed
        return claimed, outgoing

    def expire_due(self, *, actor: Actor | None = None) -> list[Booking]:
        """
        Mark every pre-booking whose hold has lapsed EXPIRED (a sweep), and return them.

        Their time was already free from the expiry instant on; this only records it.
        """
        who = self._who(actor)
        self._allow(who, Permission.EXPIRE)

        def sweep(tx: StorageTransaction, now: datetime) -> list[Booking]:
            return [
                self._step(tx, now, booking, Action.EXPIRE, str(who), "hold lapsed") for booking in tx.due_holds(now)
            ]

        return self._run(sweep)

    # --- notifications -----------------------------------------------------------------------------------------

    def dispatch_due(
        self,
        notifier: Notifier,
        *,
        limit: int = 100,
        max_attempts: int = 5,
        backoff: timedelta = timedelta(minutes=1),
        lease: timedelta = timedelta(minutes=5),
        actor: Actor | None = None,
    ) -> DispatchReport:
        """
        Hand every outbox message due now to *notifier*, at least once, and record what happened.

        Messages for people are rendered first, and withdrawn instead if their rule's condition no longer
        holds (the client confirmed, the booking moved or was cancelled). Sending happens outside any storage
        transaction: a notifier failure never rolls back a booking. A failed send is retried after
        ``backoff × 2^(attempts − 1)`` (at most 30 days); after *max_attempts* the message is given up and that is
        recorded. A crash between sending and recording sends the message again later, with the same
        ``dedupe_key``.

        Where the storage can claim messages (`slotengine.ports.OutboxClaims`: all three adapters), each message
        is claimed for *lease* before it is sent, so dispatchers running at once send it once between them, and
        one that dies holding a claim lets the message go again when the lease ends. A claim is renewed before
        its send once half the lease has gone by (a slow channel), so only a single send longer than that, or a
        crash between sending and recording, sends a message twice.

        A batch is claimed at once and sent one message after another: just before each send, the stored message
        (and, for a person, the booking, rendered again) is read once more, so a reminder withdrawn meanwhile (its
        booking cancelled or moved while earlier messages went out) is not sent. A failed send's error is
        recorded as text every storage keeps (control characters escaped, at most 2,000 characters). The report
        counts only what this call wrote: a record another writer got to first is theirs.

        Raises:
            InvalidInputError: a notifier without ``send``, or a notifier class instead of a notifier made of it;
                *limit* or *max_attempts* below 1; a *lease* not above 0 or longer than a day; a *backoff* below 0
                or longer than a day. Nothing was sent or changed.
        """
        who = self._who(actor)
        self._allow(who, Permission.DISPATCH)
        _check_dispatch(notifier, limit, max_attempts, backoff, lease)

        def claim(
            tx: StorageTransaction, now: datetime
        ) -> tuple[builtins.list[tuple[OutboxMessage, OutboxMessage]], int, int]:
            ready: builtins.list[tuple[OutboxMessage, OutboxMessage]] = []
            withdrawn = given_up = 0
            for message in _due_outbox(tx, now):
                if len(ready) >= limit:
                    break
                person = message.topic.startswith(("notify.", "remind."))
                try:
                    outgoing = self._render(tx, message, now) if person else message
                except (KeyError, ValueError, LookupError) as exc:
                    # A message that cannot be rendered is given up alone; the others still go.
                    error = _storable(f"cannot render: {type(exc).__name__}")
                    given_up += _rewrite(tx, message, attrs.evolve(message, failed_at=now, last_error=error))
                    continue
                if outgoing is None:
                    withdrawal = attrs.evolve(message, failed_at=now, last_error="withdrawn: no longer applies")
                    withdrawn += _rewrite(tx, message, withdrawal)
                    continue
                claimed = _claim(tx, message, now + lease)
                if claimed is not None:  # else another dispatcher claimed it since this one listed it
                    ready.append((claimed, outgoing))
            return ready, withdrawn, given_up

        ready, withdrawn, given_up = self._run(claim)
        report = DispatchReport(withdrawn=withdrawn, failed=given_up)
        for claimed, listed in ready:
            done = self._send_one(notifier, claimed, listed, max_attempts=max_attempts, backoff=backoff, lease=lease)
            report = DispatchReport(*(a + b for a, b in zip(attrs.astuple(report), attrs.astuple(done), strict=True)))
        return report

    def _send_one(
        self,
        notifier: Notifier,
        claimed: OutboxMessage,
        listed: OutboxMessage,
        *,
        max_attempts: int,
        backoff: timedelta,
        lease: timedelta,
    ) -> DispatchReport:
        """
        Send one claimed message (*listed*: as rendered when claimed) and record what happened; say what it did.

        The stored message is read again just before the send (`_recheck`), so a reminder withdrawn while earlier
        messages of the batch were sent is not sent. Only what this dispatcher wrote is counted.
        """
        checked: tuple[OutboxMessage, OutboxMessage] | DispatchReport
        if not _for_a_person(claimed) and not _renewal_due(claimed, listed, lease, self._now()):
            checked = (claimed, listed)  # an event is never withdrawn, and the claim holds: nothing to look at
        else:
            checked = self._run(lambda tx, now: self._recheck(tx, now, claimed, listed, lease))
        if isinstance(checked, DispatchReport):  # not sent: withdrawn, given up, or settled by another writer
            return checked
        stored, outgoing = checked
        planned = outgoing.due_at
        try:
            notifier.send(outgoing)
        except Exception as exc:  # noqa: BLE001 - any failure of a channel means "not delivered"
            error = _failure_text(exc)  # text every storage keeps, so the attempt always counts
            # (at most MAX_ATTEMPTS, the most a message records, whatever *max_attempts* allows)
            last = stored.attempts + 1 >= min(max_attempts, MAX_ATTEMPTS)
            give_up = last or bool(getattr(exc, "permanent", False))

            def retry(tx: StorageTransaction, now: datetime) -> bool:
                attempts = stored.attempts + 1
                if give_up:  # due as planned, not at the end of the claim's lease
                    record = attrs.evolve(stored, attempts=attempts, due_at=planned, failed_at=now, last_error=error)
                else:
                    later = self._quiet(tx, stored, now + _retry_delay(backoff, attempts))
                    record = attrs.evolve(stored, attempts=attempts, due_at=later, last_error=error)
                return _rewrite(tx, stored, record)

            if not self._run(retry):
                return DispatchReport()  # another writer settled it meanwhile (a withdrawal): nothing of ours to count
            return DispatchReport(failed=1) if give_up else DispatchReport(retried=1)
        self._run(lambda tx, now: _record_sent(tx, now, stored, planned))
        return DispatchReport(sent=1)

    def _quiet(self, tx: StorageTransaction, message: OutboxMessage, due: datetime) -> datetime:
        """Move a retried person-facing message out of its recipient's quiet hours, as when it was planned."""
        if not message.topic.startswith(("notify.", "remind.")):
            return due
        payload = loads(message.payload)
        business = self._catalogue(tx).get_business(self.tenant)
        rule = next((r for r in business.rules if r.id == payload.get("rule")), None)
        if rule is None or not rule.quiet_hours:
            return due
        return quiet_shift(due, business.quiet_hours, get_zone(payload.get("zone") or business.zone))

    def _render(self, tx: StorageTransaction, message: OutboxMessage, now: datetime) -> OutboxMessage | None:
        """Fill a person-facing message's template from the booking as it is now; None if it no longer applies."""
        payload = loads(message.payload)
        catalogue = self._catalogue(tx)
        business = catalogue.get_business(self.tenant)
        rule = next((r for r in business.rules if r.id == payload.get("rule")), None)
        if rule is None or message.booking_id is None:
            return None
        booking = tx.get_booking(message.booking_id)
        if not rule.applies_to(booking):
            return None  # the rule was narrowed to other services since the message was planned
        fired = payload.get("events")
        if not rule.holds(booking, now, events=None if fired is None else frozenset(map(Event, fired))):
            return None
        if message.topic.startswith("remind.") and payload.get("start") != booking.start.isoformat():
            return None
        zone = get_zone(payload.get("zone") or business.zone)
        language = booking.customer_language if str(payload["recipient"]).startswith("client:") else ""
        language = language or business.language
        service = catalogue.get_service(booking.service_id)
        names = []
        for rid in booking.resource_ids:
            try:
                names.append(catalogue.get_resource(rid).name)
            except LookupError:
                names.append(rid)
        day, clock = format_local(booking.start, zone, language)
        _, end_clock = format_local(booking.end, zone, language)
        fields = {
            "business": business.name,
            "service": service.name,
            "resources": ", ".join(names),
            "local_start": f"{day} {clock}",
            "local_date": day,
            "local_time": clock,
            "local_end": end_clock,
            "zone": zone.key,
            "price": str(booking.price) if booking.price is not None else "",
            "status": booking.status.value,
            "booking_id": booking.id,
        }
        for link in ("confirm", "cancel", "pay"):
            template = business.links.get(link)
            fields[f"{link}_url"] = (
                string.Template(str(template)).substitute(booking_id=booking.id) if template is not None else ""
            )
        subject, body = rule.template.render(fields)
        rendered = {**payload, "subject": subject, "body": body, "language": language}
        return attrs.evolve(message, payload=dumps(rendered))

    # --- reading ----------------------------------------------------------------------------------------------

    def get(self, booking_id: str, *, actor: Actor | None = None) -> Booking:
        """Return one booking. Raises `NotFoundError`, or `PermissionDeniedError` for another's booking."""
        check_id(booking_id, "booking id")
        who = self._who(actor)

        def get(tx: StorageTransaction, _now: datetime) -> Booking:
            booking = tx.get_booking(booking_id)
            self._allow(who, Permission.READ, booking)
            return booking

        return self._run(get)

    def list(
        self,
        *,
        resource_id: str | None = None,
        customer_id: str | None = None,
        status: BookingStatus | Collection[BookingStatus] | None = None,
        period: Interval | None = None,
        source: str | None = None,
        external_ref: str | None = None,
        service_id: str | None = None,
        created: Interval | None = None,
        blocked: Interval | None = None,
        actor: Actor | None = None,
    ) -> builtins.list[Booking]:
        """
        Return the bookings that match every given filter, ordered by start (a customer sees only theirs).

        *period* keeps the bookings whose time overlaps it, *blocked* those whose time with its buffers overlaps
        it, *created* those made during it (``created_at``).
        The policy is asked once for the list (``booking=None``), then about each booking: those it refuses to
        the actor are left out.
        """
        filters: dict[str, object] = {"resource_id": resource_id, "source": source, "external_ref": external_ref}
        for name, value in {**filters, "service_id": service_id, "customer_id": customer_id}.items():
            if value is not None and not isinstance(value, str):  # an id is text: 5 matches nothing, silently
                msg = f"{name} must be text (or None for any), not {type(value).__name__} {value!r}"
                raise InvalidInputError(msg, field=name)
        who = self._who(actor)
        self._allow(who, Permission.READ)
        if who.role is Role.CUSTOMER:
            if customer_id is not None and customer_id != who.customer_id:
                return []
            customer_id = who.customer_id
        statuses = _statuses(status)
        if period is not None:
            _check_window(period, "period")
        if created is not None:
            _check_window(created, "created")
        if blocked is not None:
            _check_window(blocked, "blocked")
        query = BookingQuery(
            resource_id, customer_id, statuses, period, source, external_ref, service_id, created, blocked
        )
        return self._run(lambda tx, _now: self._readable(who, tx.find_bookings(query)))

    def agenda(self, period: Interval, *, actor: Actor | None = None) -> builtins.list[Booking]:
        """
        Return the bookings on the board during *period* (live, completed, no-show), ordered by start.

        A hold that lapsed but that no sweep has marked expired yet is still in it, as a pre-booking whose
        `Booking.takes_time` is False: its time is already free (the board shows it faded, "hold expired").
        """
        statuses = LIVE_STATUSES | {BookingStatus.COMPLETED, BookingStatus.NO_SHOW}
        return self.list(status=statuses, period=_check_window(period, "period"), actor=actor)  # None: every one

    def transitions(
        self, booking_id: str | None = None, *, actor: Actor | None = None
    ) -> builtins.list[TransitionRecord]:
        """
        Return the transition log of one booking, or of all (not for customers), in order.

        The whole log keeps only the records of bookings the policy lets the actor read (asked per booking, as
        `list` does). To ask, it reads every booking of the tenant in the same transaction (one query, no more
        rows than the log has); with `RolePolicy` or `AllowAll`, whose answer for a non-customer does not
        depend on the booking, that read is skipped.
        """
        if booking_id is not None:
            check_id(booking_id, "booking id")
        who = self._who(actor)

        def log(tx: StorageTransaction, _now: datetime) -> builtins.list[TransitionRecord]:
            booking = tx.get_booking(booking_id) if booking_id is not None else None
            self._allow(who, Permission.READ, booking)
            if booking is None and who.role is Role.CUSTOMER:
                raise PermissionDeniedError(f"{who} may read the history of their own bookings only")
            records = tx.list_transitions(booking_id)
            if booking_id is not None or type(self.authorization) in _BOOKING_BLIND:
                return records
            readable = {b.id for b in self._readable(who, tx.find_bookings(BookingQuery()))}
            return [r for r in records if r.booking_id in readable]

        return self._run(log)

    def transitions_of(
        self, booking_ids: Iterable[str], *, actor: Actor | None = None
    ) -> builtins.list[TransitionRecord]:
        """
        Return the transition log of the bookings *booking_ids* names, each booking's records in order.

        A list-style read, as `list`: the policy is asked once (``booking=None``), then about each booking as
        `transitions` of that one booking asks (a customer may read their own bookings only), and the bookings
        it refuses are left out, as are ids no booking has and repeats. One transaction. With a storage whose
        transactions have `slotengine.ports.TransitionsOf` (the shipped adapters) the log is read once for all
        and comes in the order written; otherwise one booking after another, in the order of *booking_ids*.
        With `RolePolicy` or `AllowAll`, whose answer for a non-customer does not depend on the booking, the
        bookings themselves are not read.

        Raises:
            InvalidInputError: *booking_ids* is a string or not iterable, or holds something not a booking id.
            PermissionDeniedError: no actor, or the policy refuses the actor READ.
        """
        ids = _booking_ids(booking_ids)
        who = self._who(actor)
        self._allow(who, Permission.READ)
        blind = type(self.authorization) in _BOOKING_BLIND and who.role is not Role.CUSTOMER

        def log(tx: StorageTransaction, _now: datetime) -> builtins.list[TransitionRecord]:
            wanted = ids if blind else [b.id for b in self._readable(who, _found(tx, ids))]
            if not wanted:
                return []
            if isinstance(tx, TransitionsOf):
                return tx.list_transitions_of(wanted)
            return [record for booking_id in wanted for record in tx.list_transitions(booking_id)]

        return self._run(log)

    def prune(
        self,
        *,
        keep_messages: timedelta = timedelta(days=90),
        keep_keys: timedelta = timedelta(days=30),
        actor: Actor | None = None,
    ) -> PruneReport:
        """
        Forget outbox messages done with long ago, and the idempotency records of old calls.

        Messages sent, given up or withdrawn more than *keep_messages* ago go, and records of calls made more
        than *keep_keys* ago: a call retried with a key forgotten so runs again, as a new call, so keep keys
        longer than your clients retry. Bookings, their transition log and pending messages are never pruned.
        Run it from the background worker, once a day say (docs/how-to/run-the-background-jobs.md).

        Raises:
            InvalidInputError: a *keep_messages* or *keep_keys* that is not a timedelta of at least zero.
            StorageError: the storage cannot forget (its transactions lack `slotengine.ports.Retention`).
        """
        who = self._who(actor)
        self._allow(who, Permission.PRUNE)
        _check_keep(keep_messages, "keep_messages")
        _check_keep(keep_keys, "keep_keys")

        def prune(tx: StorageTransaction, now: datetime) -> PruneReport:
            if not isinstance(tx, Retention):
                msg = f"{type(self.storage).__name__} cannot forget old messages and keys (no prune_outbox)"
                raise StorageError(msg)
            messages = tx.prune_outbox(max(now - keep_messages, MIN_INSTANT))
            return PruneReport(messages=messages, keys=tx.prune_idempotency(max(now - keep_keys, MIN_INSTANT)))

        return self._run(prune)

    def outbox(self, *, pending_only: bool = False, actor: Actor | None = None) -> builtins.list[OutboxMessage]:
        """Return the outbox, in order (asks the policy for READ; never for customers, whatever it says)."""
        _check_flag(pending_only, "pending_only")
        who = self._who(actor)
        self._allow(who, Permission.READ)
        if who.role is Role.CUSTOMER:
            raise PermissionDeniedError(f"{who} may not read the outbox")
        return self._run(lambda tx, _now: tx.list_outbox(pending_only=pending_only))


def _booking_ids(values: object) -> list[str]:
    """The booking ids of *values* (an iterable of ids, not one id), each once, in the order first given."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        msg = f"booking_ids must be an iterable of booking ids, not {type(values).__name__} {values!r}"
        raise InvalidInputError(msg, field="booking_ids")
    return list(dict.fromkeys(check_id(value, "booking id") for value in values))


def _found(tx: StorageTransaction, booking_ids: Iterable[str]) -> Iterator[Booking]:
    """The bookings of *booking_ids* that exist in *tx*'s tenant (the others are skipped)."""
    for booking_id in booking_ids:
        try:
            yield tx.get_booking(booking_id)
        except NotFoundError:
            continue


def _failure_text(exc: BaseException) -> str:
    """
    What the outbox records about a failed send: text every storage keeps (`_storable`), whatever the channel said.

    slotengine's own errors name ids only, so their message is kept; a third-party exception's text may quote
    an address or a phone number (smtplib's refused-recipient error does), so only its class is kept (N4).
    """
    if isinstance(exc, SlotEngineError):
        try:
            said = str(exc)
        except Exception:  # noqa: BLE001 - a message that is not text (DeliveryError(42)) fails str(); the class stays
            said = "(a message that is not text)"
        return _storable(f"{type(exc).__name__}: {said}")
    return _storable(f"{type(exc).__module__}.{type(exc).__name__}")


_MAX_ERROR_TEXT: Final = 2_000
"""The longest ``last_error`` an outbox message keeps (`slotengine.outbox.OutboxMessage`)."""


def _storable(text: str) -> str:
    r"""
    *text* as every storage keeps it: control characters and lone surrogates escaped, at most 2,000 characters.

    A channel's error text may hold a NUL or a lone surrogate (a gateway's raw bytes), which no storage keeps: the
    write recording the failure was refused, so the attempt never counted and the message was retried forever.
    They are written as Python escapes (``\x00``, ``\ud800``); a longer text is cut, ending in "…".
    """
    head = text[: _MAX_ERROR_TEXT + 1]  # escapes only lengthen it: no need to look further
    shown = "".join(_escaped(c) if unicodedata.category(c) in {"Cc", "Cs"} else c for c in head)
    return shown if len(shown) <= _MAX_ERROR_TEXT else shown[: _MAX_ERROR_TEXT - 1] + "…"


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _require(value: object, cls: type[_T]) -> _T:
    if not isinstance(value, cls):
        msg = f"expected {cls.__name__}, got {type(value).__name__}"
        raise InvalidInputError(msg)
    return value


_MAX_LEASE: Final = timedelta(days=1)
_MAX_BACKOFF: Final = timedelta(days=1)
_MAX_RETRY_DELAY: Final = timedelta(days=30)


_CLASS_LEVEL: Final = (staticmethod, classmethod)
"""How a class itself can be a notifier: its ``send`` needs no instance."""


def _check_notifier(notifier: object) -> None:
    """Refuse what cannot send a message: no ``send(message)`` method, or a notifier class instead of one made of it."""
    if isinstance(notifier, type) and not isinstance(inspect.getattr_static(notifier, "send", None), _CLASS_LEVEL):
        # The parentheses forgotten: send(message) would be called without its self, and every message given up.
        name = notifier.__name__
        msg = f"notifier must be a notifier, not the class {name}: make one first, such as {name}(...)"
        raise InvalidInputError(msg, field="notifier")
    if not callable(getattr(notifier, "send", None)):
        msg = f"notifier must have a send(message) method, got {notifier!r} (see slotengine.adapters.notifiers)"
        raise InvalidInputError(msg, field="notifier")


def _check_dispatch(notifier: object, limit: object, max_attempts: object, backoff: object, lease: object) -> None:
    """Refuse a notifier that cannot send (every message would be given up), and counts or times out of reason."""
    _check_notifier(notifier)
    for name, count in (("limit", limit), ("max_attempts", max_attempts)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            msg = f"{name} must be a whole number of at least 1, got {count!r}"
            raise InvalidInputError(msg, field=name)
    if not isinstance(lease, timedelta) or not timedelta(0) < lease <= _MAX_LEASE:
        msg = f"lease must be a timedelta longer than 0 and at most {_MAX_LEASE}, got {lease!r}"
        raise InvalidInputError(msg, field="lease")
    if not isinstance(backoff, timedelta) or not timedelta(0) <= backoff <= _MAX_BACKOFF:
        msg = f"backoff must be a timedelta from 0 to {_MAX_BACKOFF}, got {backoff!r}"
        raise InvalidInputError(msg, field="backoff")


def _retry_delay(backoff: timedelta, attempts: int) -> timedelta:
    """``backoff × 2^(attempts − 1)``, at most `_MAX_RETRY_DELAY`: a long run of failures waits a month, not forever."""
    factor: int = 2 ** min(attempts - 1, 20)
    return min(backoff * factor, _MAX_RETRY_DELAY)


def _due_outbox(tx: StorageTransaction, now: datetime) -> builtins.list[OutboxMessage]:
    """The pending messages due at *now*, in order: from the storage's `DueOutbox` where it has one."""
    if isinstance(tx, DueOutbox):
        return tx.list_due_outbox(now)
    return [m for m in tx.list_outbox(pending_only=True) if m.due_at <= now]


def _claim(tx: StorageTransaction, message: OutboxMessage, until: datetime) -> OutboxMessage | None:
    """Claim *message* for sending until *until* (`OutboxClaims`); None if another dispatcher changed it first."""
    swap = getattr(tx, "swap_outbox", None)
    if swap is None:
        return message  # the storage cannot claim: one dispatcher at a time (see `OutboxClaims`)
    claimed = attrs.evolve(message, due_at=until)
    return claimed if swap(message, claimed) else None


def _rewrite(tx: StorageTransaction, seen: OutboxMessage, record: OutboxMessage) -> bool:
    """Record what became of a message this dispatcher saw as *seen*, unless another changed it since; say if so."""
    swap = getattr(tx, "swap_outbox", None)
    if swap is not None:
        return bool(swap(seen, record))
    # A storage that cannot claim runs one dispatcher at a time, but a booking step may still have withdrawn a
    # booking's message since: compare with what is stored now, in this transaction.
    if seen.booking_id is not None and _current(tx, seen) != seen:
        return False
    tx.update_outbox(record)
    return True


def _record_sent(tx: StorageTransaction, now: datetime, stored: OutboxMessage, planned: datetime) -> None:
    """
    Record a message that went out: *stored* (this dispatcher's claim) sent at *now*, due as *planned*.

    Never lost: the message was delivered. If another writer changed it since the claim, the record says so too.
    """
    record = attrs.evolve(stored, attempts=stored.attempts + 1, due_at=planned, sent_at=now, last_error="")
    if _rewrite(tx, stored, record):
        return
    current = _current(tx, stored, pending_only=False)
    if current is None or current.sent_at is not None:
        return  # recorded sent already: another dispatcher sent it too, once this claim ran out
    if current.failed_at is not None:
        # Withdrawn (a cancellation, a move) or given up by another dispatcher after this one's last look before
        # the send, and before the send returned: the recipient has it all the same. Both facts are kept, so the
        # record is true and the withdrawal not erased: failed_at and last_error say when and why it was withdrawn,
        # sent_at that it went out anyway. It is finished either way: never sent again, not pending.
        tx.update_outbox(attrs.evolve(current, attempts=current.attempts + 1, sent_at=now))
        return
    # Still pending: another dispatcher claimed it once this claim ran out, or recorded a failed try of its own.
    # Sent is the last word (that dispatcher, finding it sent when it records, leaves this record alone).
    tx.update_outbox(attrs.evolve(current, attempts=current.attempts + 1, due_at=planned, sent_at=now, last_error=""))


def _current(tx: StorageTransaction, message: OutboxMessage, *, pending_only: bool = True) -> OutboxMessage | None:
    """
    *message* as stored now (by its id), or None: not found, or with *pending_only*, sent or given up or withdrawn.

    A booking's messages are read through the booking (one indexed read); a message of no booking among them all.
    """
    found = tx.list_outbox(pending_only=pending_only, booking_id=message.booking_id)
    return next((m for m in found if m.id == message.id), None)


def _for_a_person(message: OutboxMessage) -> bool:
    """Whether *message* is rendered for a person from its booking (and withdrawn once it no longer applies)."""
    return message.booking_id is not None and message.topic.startswith(("notify.", "remind."))


def _renewal_due(claimed: OutboxMessage, listed: OutboxMessage, lease: timedelta, now: datetime) -> bool:
    """
    Whether a claim about to be sent has run past half its *lease* (renewed then for a whole one, `_recheck`).

    A storage that cannot claim leaves the message as listed (``due_at`` unchanged): nothing to renew.
    """
    return claimed.due_at > listed.due_at and now >= claimed.due_at - lease / 2


def _same_currency(booking: Booking, amount: Money, what: str) -> None:
    currency = booking.currency
    if currency is not None and amount.currency != currency:
        msg = f"this booking is in {currency}: {what} of {amount} cannot be recorded (slotengine never converts)"
        raise CurrencyMismatchError(msg, currencies=(currency, amount.currency))


def _check_flag(value: object, name: str) -> None:
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {value!r}"
        raise InvalidInputError(msg, field=name)


def _flag(value: object, name: str) -> bool:
    """*value*, checked to be True or False: a string such as "no" is truthy, and would do what it refuses."""
    _check_flag(value, name)
    return value is True


def _refuse_begun(booking: Booking, now: datetime, *, client: bool) -> None:
    """Refuse to move a booking that has ended, or that has begun when a client asks (staff may move a late client)."""
    if booking.end <= now:
        msg = (
            f"cannot reschedule: this booking ended at {booking.end.isoformat()}; mark it completed or a no-show, "
            "and book the new time"
        )
        raise PolicyViolationError(msg, rule="reschedule_ended", end=booking.end)
    if client and booking.start <= now:
        msg = (
            f"cannot reschedule: this booking began at {booking.start.isoformat()}; ask the business to move it"
        )
        raise PolicyViolationError(msg, rule="reschedule_started", start=booking.start)


def _lapsed(booking: Booking, now: datetime) -> bool:
    """Whether *booking* is a hold that lapsed: expired by the sweep, or a pre-booking past its hold, not yet swept."""
    return booking.status is BookingStatus.EXPIRED or (
        booking.status is BookingStatus.PRE_BOOKING and booking.hold_until is not None and booking.hold_until <= now
    )


def _refuse_lapsed(booking: Booking, now: datetime, action: Action, instead: str) -> None:
    """
    Refuse *action* on a pre-booking whose hold lapsed but is not yet swept, as it would be refused once swept.

    Its time is already free (another client may hold it), so it is no longer a live booking to act on.
    """
    if booking.hold_until is not None and booking.hold_until <= now:
        msg = (
            f"cannot {action.value}: this pre-booking's hold lapsed at {booking.hold_until.isoformat()} and its "
            f"time is no longer held; {instead}"
        )
        raise IllegalTransitionError(msg, status=booking.status, action=action, hold_until=booking.hold_until)


def _check_ports(storage: object, clock: object) -> None:
    """Refuse a storage or clock that is a class (the parentheses forgotten), a datetime, or a path."""
    if isinstance(storage, type) or not callable(getattr(storage, "transaction", None)):
        what = f"the class {storage.__name__}" if isinstance(storage, type) else repr(storage)
        msg = (
            "storage must be a storage object such as MemoryStorage(), SQLiteStorage(path) or "
            f"PostgresStorage(dsn), not {what}"
        )
        raise InvalidInputError(msg, field="storage")
    if isinstance(clock, (type, datetime)) or not callable(getattr(clock, "now", None)):
        what = f"the class {clock.__name__}" if isinstance(clock, type) else repr(clock)
        msg = (
            "clock must be a clock object with now(), such as SystemClock() or FrozenClock(at) "
            f"(slotengine.testing.clock), not {what}"
        )
        raise InvalidInputError(msg, field="clock")


def _check_window(window: object, field: str = "window") -> Interval:
    if not isinstance(window, Interval):
        msg = f"{field} must be an Interval, not {type(window).__name__} {window!r}"
        raise InvalidInputError(msg, field=field)
    return window


def _check_duration(duration: object) -> None:
    if duration is not None and not isinstance(duration, timedelta):
        msg = f"duration must be a timedelta (or None for the service's own), not {duration!r}"
        raise InvalidInputError(msg, field="duration")
    if duration is not None:
        if duration <= timedelta(0):
            msg = f"duration must be longer than zero, got {spoken(duration)}"
            raise InvalidInputError(msg, field="duration")
        check_duration_range(duration, "duration")  # start + duration must stay computable


def _check_keep(value: object, field: str) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        msg = f"{field} must be a timedelta of at least zero (how long to keep), not {value!r}"
        raise InvalidInputError(msg, field=field)
    check_duration_range(value, field)


def _check_ids(value: object, field: str) -> None:
    """Refuse what is not a collection of ids; a lone string would be read letter by letter."""
    if isinstance(value, str) or not isinstance(value, Collection) or not all(isinstance(v, str) for v in value):
        msg = f"{field} must be a collection of resource ids, such as ['r1'], not {value!r}"
        raise InvalidInputError(msg, field=field)


_STRATEGIES: Final = tuple(s.value for s in Strategy)


def _money_facts(booking: Booking, action: Action, *, reviving: bool = False) -> dict[str, object]:
    """
    What a booking event says about money once money has moved: what the business holds and the fees unpaid.

    On expiry it repeats what the business holds as ``refund_due``: a lapsed hold keeps its prepayment until
    someone refunds it (`BookingEngine.refund`) or a late payment revives it.
    """
    net = booking.net_paid
    facts: dict[str, object] = {
        "net_paid": {"amount": str(net.amount), "currency": net.currency},
        "fees_outstanding": {"amount": str(booking.outstanding_fees.amount), "currency": net.currency},
    }
    if action is Action.EXPIRE and net.amount > 0 and not reviving:
        facts["refund_due"] = facts["net_paid"]
    return facts


def _check_choice(duration: object, pin: object, strategy: object, preferred: object) -> Strategy:
    """Check a slot query's arguments at the engine's door; return the strategy as a `Strategy`."""
    _check_duration(duration)
    _check_ids(pin, "pin")
    _check_ids(preferred, "preferred")
    if not isinstance(strategy, str) or strategy not in _STRATEGIES:
        msg = f"strategy must be a Strategy or one of {', '.join(_STRATEGIES)}, not {strategy!r}"
        raise InvalidInputError(msg, field="strategy")
    chosen = Strategy(strategy)
    if preferred and chosen is not Strategy.PREFERRED:
        # Refused here, whatever the ids: the solver only sees those of the service's pool (`_Catalogue.preferred`),
        # so it would refuse a list of favourites in the pool and silently ignore one outside it.
        msg = f"preferred resources are only used with strategy 'preferred', not {str(chosen)!r}"
        raise InvalidInputError(msg, field="preferred")
    return chosen


def _statuses(status: object) -> frozenset[BookingStatus] | None:
    """A `list` filter's statuses: one status (or its name), a collection of them, or None for all."""
    if status is None:
        return None
    given = [status] if isinstance(status, str) else status
    if not isinstance(given, Collection):
        msg = f"status must be a BookingStatus, its name, or a collection of them, not {status!r}"
        raise InvalidInputError(msg, field="status")
    try:
        return frozenset(BookingStatus(s) for s in given)
    except ValueError:
        allowed = ", ".join(s.value for s in BookingStatus)
        msg = f"unknown booking status in {status!r}; the statuses are {allowed}"
        raise InvalidInputError(msg, field="status") from None


def _span(service: Service, window: Interval) -> Interval:
    """
    The time around *window* that decides whether *service* can start in it (lengths, buffers, a margin).

    Whole UTC days, so that the questions about one day share one span (and the catalogue's memo of hours).
    """
    longest = service.max_duration or service.duration
    if service.unit is not ServiceUnit.MINUTES:
        longest += _ONE_DAY
    margin = service.buffer_before + service.buffer_after + _MARGIN
    start = to_utc(window.start) - margin
    end = to_utc(window.end) + longest + margin
    first = max(start.replace(hour=0, minute=0, second=0, microsecond=0), MIN_INSTANT)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return Interval(first, min(last if last == end else last + _ONE_DAY, MAX_INSTANT))


def _blocks(span: Interval) -> Iterator[Interval]:
    """The whole `_BLOCK`s (counted from 1970, within the accepted range of instants) that *span* overlaps."""
    first = MIN_INSTANT + ((span.start - MIN_INSTANT) // _BLOCK) * _BLOCK
    while first < span.end:
        last = min(first + _BLOCK, MAX_INSTANT)
        yield Interval(first, last)
        first = last


def _reach(service: Service, window: Interval, strategy: Strategy) -> Interval | None:
    """
    The time whose loads decide whether *service* can take *window* (one start): that time with its buffers.

    A load outside it changes neither the answer nor the resources chosen (property-tested), so a booking reads
    its neighbours, not every booking of the days around it. None where more is read: least-loaded ranks by a
    local day's booked time, and a service counted in days or nights ends at a local hour, not at *window*'s end.
    """
    if strategy is Strategy.LEAST_LOADED or service.unit is not ServiceUnit.MINUTES:
        return None
    start = max(to_utc(window.start) - service.buffer_before, MIN_INSTANT)
    return Interval(start, min(to_utc(window.end) + service.buffer_after, MAX_INSTANT))


def _length(booking: Booking, service: Service, zone: ZoneInfo) -> timedelta:
    """A booking's own length, as a duration its service takes: elapsed time, or whole local days (nights)."""
    if service.unit is ServiceUnit.MINUTES:
        return booking.end - booking.start
    days = whole_days(service, booking.start, booking.end, zone)
    if days is None:  # not on the service's day grid (booked before the service changed): its calendar dates
        return booking.end.astimezone(zone).date() - booking.start.astimezone(zone).date()
    return days * _ONE_DAY


def _check_new_price(booking: Booking, price: Money | None) -> None:
    """Refuse a new length whose price leaves a paid booking unpaid, or the client's money above the price."""
    if price == booking.price or price is None:
        return
    if booking.status is BookingStatus.PAID:
        msg = (
            f"a paid booking keeps its price ({booking.price}); its new length would cost {price}. "
            "Move it keeping its length, or cancel it and book the new length"
        )
        raise PolicyViolationError(msg, rule="reschedule_paid_price")
    if booking.net_paid > price:
        msg = f"the new length costs {price}, less than the {booking.net_paid} paid: refund the difference first"
        raise PolicyViolationError(msg, rule="reschedule_below_paid")


def _price(service: Service, duration: timedelta) -> Money | None:
    """The price of *service* for *duration*: its price, scaled when the client chose another length."""
    if service.price is None:
        return None
    if duration == service.duration:
        return service.price
    return service.price.scaled(duration // _US, service.duration // _US)
