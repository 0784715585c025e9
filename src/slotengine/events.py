"""
Recurring events with tickets: templates, dated occurrences, ticket quotas, staff roles, sync, waiting lists.

The seeds' events business has a *template* (the description) and dated *occurrences* of it; tickets are sold for
one occurrence, a speaker and an administrator are assigned to it, and the month closes with a financial report per
occurrence. `EventDesk` builds all of that on a `BookingEngine`, with no second booking mechanism:

* an occurrence is a **seat resource** of its capacity, open only during the occurrence (and one resource per
  pretix-style `Quota`, a seat pool shared by several ticket types);
* a ticket sale is an ordinary engine **booking** of a service that takes N units of those resources, so tickets
  go through hold, payment, expiry, cancellation and refund like every booking, and the storage's atomic capacity
  check is the only protection against overselling, on every adapter and under any concurrency;
* a **staff role** (speaker, administrator, the venue) books that person's or room's time over the occurrence
  through the storage's same check, so a person cannot hold two overlapping occurrences;
* templates, occurrences and waiting lists are JSON documents of the storage port, written in the same
  transaction as the resources and bookings they change and the outbox events (``occurrence.created``,
  ``occurrence.moved``, ``occurrence.staff_changed``, ``occurrence.cancelled``, ...) that tell a site or a CRM.

Upserts are idempotent: the same template or occurrence upserted twice changes and emits nothing the second
time. A sale that names an unknown occurrence raises `UnknownOccurrenceError`; it is never attached to nothing.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo

import attrs

from slotengine._checks import tuple_of
from slotengine._time import check_day_range, days_span, get_zone, is_ambiguous, local_date, to_utc
from slotengine.authorization import Actor, Permission, Role
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.codec import dumps, loads
from slotengine.errors import (
    ConcurrencyError,
    ConflictError,
    CurrencyMismatchError,
    InvalidInputError,
    PermissionDeniedError,
    SalesClosedError,
    SoldOutError,
    StaffConflictError,
    UnknownOccurrenceError,
    UnknownTemplateError,
)
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, Action, BookingStatus, next_status
from slotengine.model import Customer, Need, Resource, ResourceKind, Service, check_id, check_text
from slotengine.money import Money
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery
from slotengine.recurrence import Recurrence
from slotengine.reports import OccurrenceFinance, occurrence_finance
from slotengine.schedule import DateOverride, Schedule, TimeOff, TimeRange

if TYPE_CHECKING:
    from slotengine.engine import BookingEngine
    from slotengine.ports import StorageTransaction

__all__ = [
    "EventDesk",
    "EventTemplate",
    "Occurrence",
    "OccurrenceStatus",
    "Quota",
    "TicketType",
    "WaitingEntry",
    "WaitingState",
]

_T = TypeVar("_T")
_MAX_DURATION: Final = timedelta(hours=24)
_MAX_SCHEDULED: Final = 10_000  # occurrences per `EventDesk.schedule` call: an hourly tour for a year is 8,760
_SCHEDULE_CHUNK: Final = timedelta(days=31)
_TEMPLATE: Final = "event-template"
_OCCURRENCE: Final = "event-occurrence"
_REF: Final = "event-ref"
_WAITLIST: Final = "waitlist"
_SEATS: Final = "#seats"


def _id(field: str) -> Any:
    return lambda value: check_id(value, field)


def _optional_ref(value: object) -> str | None:
    return None if value is None else check_id(value, "external_ref")


def _optional_id(field: str) -> Any:
    return lambda value: None if value is None else check_id(value, field)


def _positive(field: str) -> Any:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{field} must be a whole number of at least 1, got {value!r}"
            raise InvalidInputError(msg, field=field)
        return value

    return convert


def _optional_positive(field: str) -> Any:
    check = _positive(field)
    return lambda value: None if value is None else check(value)


def _duration(value: object) -> timedelta:
    if not isinstance(value, timedelta) or not timedelta(0) < value <= _MAX_DURATION:
        msg = f"an event lasts more than nothing and at most {_MAX_DURATION}, got {value!r}"
        raise InvalidInputError(msg, field="duration")
    return value


def _optional_duration(value: object) -> timedelta | None:
    return None if value is None else _duration(value)


def _money(value: object) -> Money:
    if not isinstance(value, Money):
        msg = f"a price is Money, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="price")
    return value


def _optional_instant(field: str) -> Any:
    return lambda value: None if value is None else to_utc(value, field)


def _ticket_id(value: object) -> str:
    return check_id(value, "ticket type id")


def _ticket_name(value: object) -> str:
    return check_text(value, "ticket type name")


def _quota_id(value: object) -> str | None:
    return None if value is None else check_id(value, "quota id")


def _quota_pool_id(value: object) -> str:
    return check_id(value, "quota id")


def _quota_size(value: object) -> int:
    return int(_positive("quota size")(value))


def _template_id(value: object) -> str:
    return check_id(value, "template id")


def _occurrence_id(value: object) -> str:
    return check_id(value, "occurrence id")


def _title(value: object) -> str:
    return check_text(value, "title")


def _description(value: object) -> str:
    return check_text(value, "description", max_length=100_000, allow_empty=True)


def _zone(value: object) -> str:
    return get_zone(value).key


def _capacity(value: object) -> int:
    return int(_positive("capacity")(value))


def _optional_capacity(value: object) -> int | None:
    return None if value is None else _capacity(value)


def _venue(value: object) -> str | None:
    return None if value is None else check_id(value, "venue")


def _ticket_types(value: object) -> tuple[TicketType, ...]:
    return tuple_of(value, TicketType, "ticket_types", single=True)


def _quotas(value: object) -> tuple[Quota, ...]:
    return tuple_of(value, Quota, "quotas", single=True)


def _start(value: object) -> datetime:
    return to_utc(value, "start")


def _sales_start(value: object) -> datetime | None:
    return None if value is None else to_utc(value, "sales_start")


def _sales_end(value: object) -> datetime | None:
    return None if value is None else to_utc(value, "sales_end")


def _status(value: object) -> OccurrenceStatus:
    if isinstance(value, str) and value in _OCCURRENCE_STATUSES:
        return OccurrenceStatus(value)
    msg = f"status must be one of {', '.join(_OCCURRENCE_STATUSES)}, not {value!r}"
    raise InvalidInputError(msg, field="status")


def _pairs(value: object, field: str, what: str) -> list[tuple[object, object]]:
    """The (key, value) pairs of a mapping, or of a sequence of pairs; anything else is refused."""
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        msg = f"{field} must map {what}"
        raise InvalidInputError(msg, field=field)
    pairs = []
    for item in items:
        if isinstance(item, str | bytes) or not isinstance(item, tuple | list) or len(item) != 2:
            msg = f"{field} must map {what}; {item!r} is not a (key, value) pair"
            raise InvalidInputError(msg, field=field)
        pairs.append((item[0], item[1]))
    return pairs


def _ref_owner(tx: StorageTransaction, kind: str, ref: str) -> str | None:
    """
    The id of the template or occurrence (*kind*) whose external ref is *ref*, or None.

    The storage keeps a ref document per ref it was ever given, and has no way to delete one; so a ref is
    believed only while its owner still carries it. A ref the owner gave up (re-linked to another deal) names
    nothing, and is free for another template or occurrence.
    """
    owner = tx.get_document(_REF, f"{kind}:{ref}")
    if owner is None:
        return None
    body = tx.get_document(_OCCURRENCE if kind == "occurrence" else _TEMPLATE, owner)
    if body is None or loads(body).get("external_ref") != ref:
        return None
    return owner


def _check_prices(occurrence: Occurrence, template: EventTemplate) -> None:
    """Refuse price overrides for ticket types the template does not sell, or in another currency."""
    tickets = {t.id: t for t in template.ticket_types}
    for ticket_id, price in occurrence.prices:
        ticket = tickets.get(ticket_id)
        if ticket is None:
            msg = (
                f"occurrence {occurrence.id!r} overrides the price of {ticket_id!r}, which template "
                f"{template.id!r} does not sell; its ticket types are {', '.join(sorted(tickets))}"
            )
            raise InvalidInputError(msg, field="prices", ticket_type=ticket_id)
        if price.currency != ticket.price.currency:
            msg = f"the price of {ticket_id!r} is in {ticket.price.currency}; an override of {price} cannot replace it"
            raise CurrencyMismatchError(msg, currencies=(ticket.price.currency, price.currency))


def _occ(body: str) -> Occurrence:
    return occurrence_from_doc(loads(body))


def _check_overrides(template: EventTemplate, occurrences: Iterable[Occurrence]) -> None:
    """
    Refuse a template edit that would leave one of its occurrences overriding a price it cannot override.

    Such an occurrence could no longer be changed, cancelled or staffed (`upsert_occurrence` refuses its
    overrides), so the template edit is refused instead, naming the occurrence to change first.
    """
    for occurrence in occurrences:
        if occurrence.template_id != template.id:
            continue
        try:
            _check_prices(occurrence, template)
        except CurrencyMismatchError as exc:
            msg = f"template {template.id!r} cannot change so: {exc.message} (occurrence {occurrence.id!r})"
            raise CurrencyMismatchError(msg, **{**exc.details, "occurrence_id": occurrence.id}) from None
        except InvalidInputError as exc:
            msg = (
                f"template {template.id!r} cannot change so: {exc.message}; "
                "remove that price override from the occurrence first"
            )
            raise InvalidInputError(msg, **{**exc.details, "occurrence_id": occurrence.id}) from None


def _prices(value: object) -> tuple[tuple[str, Money], ...]:
    pairs = _pairs(value, "prices", "ticket type ids to Money")
    return tuple(sorted((check_id(k, "ticket type id"), _money(v)) for k, v in pairs))


def _staff(value: object) -> tuple[tuple[str, str], ...]:
    pairs = _pairs(value, "staff", "role names to the ids of the people (USER resources) who take them")
    return tuple(sorted((check_id(k, "role"), check_id(v, "staff id")) for k, v in pairs))


@attrs.frozen
class TicketType:
    """A kind of ticket (adult, child, workshop seat) with its price, and the `Quota` it draws from, if any."""

    id: str = attrs.field(converter=_ticket_id)
    name: str = attrs.field(converter=_ticket_name)
    price: Money = attrs.field(converter=_money)
    quota_id: str | None = attrs.field(default=None, converter=_quota_id)


@attrs.frozen
class Quota:
    """A seat pool shared by several ticket types (pretix: a quota spanning products), on top of the capacity."""

    id: str = attrs.field(converter=_quota_pool_id)
    size: int = attrs.field(converter=_quota_size)


@attrs.frozen
class EventTemplate:
    """
    What an event is, once for all its dates: title, description, length, seats, ticket types and quotas.

    Args:
        id: Unique within the business.
        title, description: What the site shows.
        duration: How long each occurrence lasts (an occurrence may override it), at most 24 hours.
        zone: The IANA zone its dates are given in.
        capacity: Seats per occurrence (an occurrence may override it).
        ticket_types: What is sold; ids unique.
        quotas: Seat pools that ticket types may draw from; every `TicketType.quota_id` must name one.
        venue: The id of a resource (a room) booked over every occurrence, or None.
        external_ref: The id of the template on the site or in the CRM.

    Raises:
        InvalidInputError: a bad field, duplicate ids, no ticket types, or a ticket type naming an unknown quota.
    """

    id: str = attrs.field(converter=_template_id)
    title: str = attrs.field(converter=_title)
    duration: timedelta = attrs.field(converter=_duration)
    zone: str = attrs.field(converter=_zone)
    capacity: int = attrs.field(converter=_capacity)
    ticket_types: tuple[TicketType, ...] = attrs.field(converter=_ticket_types)
    quotas: tuple[Quota, ...] = attrs.field(default=(), converter=_quotas)
    description: str = attrs.field(default="", converter=_description)
    venue: str | None = attrs.field(default=None, converter=_venue)
    external_ref: str | None = attrs.field(default=None, converter=_optional_ref)

    def __attrs_post_init__(self) -> None:
        if not self.ticket_types:
            msg = f"template {self.id!r} sells no ticket type"
            raise InvalidInputError(msg, field="ticket_types")
        for what, ids in (("ticket type", [t.id for t in self.ticket_types]), ("quota", [q.id for q in self.quotas])):
            if len(set(ids)) != len(ids):
                msg = f"template {self.id!r} names a {what} id twice: {sorted(ids)}"
                raise InvalidInputError(msg, field=what)
        quotas = {q.id for q in self.quotas}
        for ticket in self.ticket_types:
            if ticket.quota_id is not None and ticket.quota_id not in quotas:
                msg = f"ticket type {ticket.id!r} draws from quota {ticket.quota_id!r}, which {self.id!r} does not have"
                raise InvalidInputError(msg, field="quota_id")

    def ticket_type(self, ticket_type_id: str) -> TicketType:
        """Return one ticket type. Raises `InvalidInputError` for an id the template does not sell."""
        for ticket in self.ticket_types:
            if ticket.id == ticket_type_id:
                return ticket
        msg = f"{self.title!r} sells no ticket type {ticket_type_id!r}; it sells {[t.id for t in self.ticket_types]}"
        raise InvalidInputError(msg, field="ticket_type")


class OccurrenceStatus(enum.StrEnum):
    """Whether an occurrence takes place."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


_OCCURRENCE_STATUSES: Final = tuple(s.value for s in OccurrenceStatus)


@attrs.frozen
class Occurrence:
    """
    One dated instance of a template, with what it overrides.

    Args:
        id: Unique within the business.
        template_id: The template it is an instance of.
        start: When it begins (aware; kept in UTC, shown in the template's zone).
        duration, capacity, venue: Overrides of the template's (None: the template's).
        prices: Overrides of ticket type prices, by ticket type id.
        sales_start, sales_end: The sales window (None: from now on; until the start, which also ends a later one).
        staff: Who takes which role, ``{"speaker": "anna", "administrator": "ivan"}`` (ids of USER resources).
        external_ref: Its id on the site or in the CRM (the deal of the event).
        status: `OccurrenceStatus.SCHEDULED` or `OccurrenceStatus.CANCELLED`.
    """

    id: str = attrs.field(converter=_occurrence_id)
    template_id: str = attrs.field(converter=_template_id)
    start: datetime = attrs.field(converter=_start)
    duration: timedelta | None = attrs.field(default=None, converter=_optional_duration)
    capacity: int | None = attrs.field(default=None, converter=_optional_capacity)
    prices: tuple[tuple[str, Money], ...] = attrs.field(default=(), converter=_prices)
    sales_start: datetime | None = attrs.field(default=None, converter=_sales_start)
    sales_end: datetime | None = attrs.field(default=None, converter=_sales_end)
    venue: str | None = attrs.field(default=None, converter=_venue)
    staff: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_staff)
    external_ref: str | None = attrs.field(default=None, converter=_optional_ref)
    status: OccurrenceStatus = attrs.field(default=OccurrenceStatus.SCHEDULED, converter=_status)

    def __attrs_post_init__(self) -> None:
        roles = [role for role, _ in self.staff]
        if "venue" in roles:
            msg = "'venue' is not a staff role: set Occurrence.venue (or the template's venue)"
            raise InvalidInputError(msg, field="staff")
        if self.sales_start and self.sales_end and self.sales_end <= self.sales_start:
            msg = "the sales window ends before it starts"
            raise InvalidInputError(msg, field="sales_end")

    @property
    def seats_id(self) -> str:
        """The id of the resource whose units are this occurrence's seats."""
        return f"{self.id}{_SEATS}"

    def roles(self) -> dict[str, str]:
        """Return ``{role: staff id}``."""
        return dict(self.staff)


class WaitingState(enum.StrEnum):
    """Where a person on a waiting list stands."""

    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    CLOSED = "closed"
    """The occurrence was cancelled while the person still waited: no seat will come (``waitlist.closed``)."""


@attrs.frozen
class WaitingEntry:
    """One person on a waiting list, in the order they joined, and the offer (a hold) they were made, if any."""

    id: str
    list_key: str
    customer_id: str
    quantity: int
    joined_at: datetime
    state: WaitingState = WaitingState.WAITING
    ticket_type: str | None = None
    booking_id: str | None = None

    def to_doc(self) -> dict[str, object]:
        """Return the entry as JSON-ready values."""
        return {
            "id": self.id,
            "list_key": self.list_key,
            "customer_id": self.customer_id,
            "quantity": self.quantity,
            "joined_at": self.joined_at.isoformat(),
            "state": self.state.value,
            "ticket_type": self.ticket_type,
            "booking_id": self.booking_id,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> WaitingEntry:
        """Build an entry from `to_doc`'s values; a damaged document is an `InvalidInputError`."""
        with _stored("waiting-list entry"):
            return cls._from_doc(doc)

    @classmethod
    def _from_doc(cls, doc: Mapping[str, Any]) -> WaitingEntry:
        return cls(
            doc["id"],
            doc["list_key"],
            doc["customer_id"],
            int(doc["quantity"]),
            datetime.fromisoformat(doc["joined_at"]),
            WaitingState(doc["state"]),
            doc.get("ticket_type"),
            doc.get("booking_id"),
        )


# --- documents -----------------------------------------------------------------------------------------------


def _m(value: Money) -> list[str]:
    return [str(value.amount), value.currency]


def _from_m(value: list[str]) -> Money:
    return Money(value[0], value[1])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _from_seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


@contextmanager
def _stored(kind: str) -> Iterator[None]:
    """Turn what a damaged stored document raises (a key missing, a wrong type) into an `InvalidInputError`."""
    try:
        yield
    except InvalidInputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        msg = f"malformed stored {kind}: {type(exc).__name__}: {exc}"
        raise InvalidInputError(msg, field=kind) from None


def _document_of(value: object, kind: type) -> None:
    if not isinstance(value, kind):
        msg = f"expected {kind.__name__}, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=kind.__name__)


def template_to_doc(template: EventTemplate) -> dict[str, Any]:
    """Return *template* as JSON-ready values (what the storage keeps)."""
    _document_of(template, EventTemplate)
    return {
        "id": template.id,
        "title": template.title,
        "description": template.description,
        "duration": template.duration.total_seconds(),
        "zone": template.zone,
        "capacity": template.capacity,
        "ticket_types": [[t.id, t.name, _m(t.price), t.quota_id] for t in template.ticket_types],
        "quotas": [[q.id, q.size] for q in template.quotas],
        "venue": template.venue,
        "external_ref": template.external_ref,
    }


def template_from_doc(doc: Mapping[str, Any]) -> EventTemplate:
    """Build a template from `template_to_doc`'s values; a damaged document is an `InvalidInputError`."""
    with _stored("event template"):
        return _template_from_doc(doc)


def _template_from_doc(doc: Mapping[str, Any]) -> EventTemplate:
    return EventTemplate(
        doc["id"],
        doc["title"],
        timedelta(seconds=doc["duration"]),
        doc["zone"],
        doc["capacity"],
        [TicketType(i, n, _from_m(p), q) for i, n, p, q in doc["ticket_types"]],
        [Quota(i, s) for i, s in doc["quotas"]],
        doc["description"],
        doc["venue"],
        doc["external_ref"],
    )


def occurrence_to_doc(occurrence: Occurrence) -> dict[str, Any]:
    """Return *occurrence* as JSON-ready values."""
    _document_of(occurrence, Occurrence)
    return {
        "id": occurrence.id,
        "template_id": occurrence.template_id,
        "start": occurrence.start.isoformat(),
        "duration": _seconds(occurrence.duration),
        "capacity": occurrence.capacity,
        "prices": [[k, _m(v)] for k, v in occurrence.prices],
        "sales_start": _iso(occurrence.sales_start),
        "sales_end": _iso(occurrence.sales_end),
        "venue": occurrence.venue,
        "staff": [list(pair) for pair in occurrence.staff],
        "external_ref": occurrence.external_ref,
        "status": occurrence.status.value,
    }


def occurrence_from_doc(doc: Mapping[str, Any]) -> Occurrence:
    """Build an occurrence from `occurrence_to_doc`'s values; a damaged document is an `InvalidInputError`."""
    with _stored("occurrence"):
        return _occurrence_from_doc(doc)


def _occurrence_from_doc(doc: Mapping[str, Any]) -> Occurrence:
    return Occurrence(
        doc["id"],
        doc["template_id"],
        datetime.fromisoformat(doc["start"]),
        _from_seconds(doc["duration"]),
        doc["capacity"],
        [(k, _from_m(v)) for k, v in doc["prices"]],
        _from_iso(doc["sales_start"]),
        _from_iso(doc["sales_end"]),
        doc["venue"],
        [tuple(pair) for pair in doc["staff"]],
        doc["external_ref"],
        doc["status"],
    )


# --- the desk ------------------------------------------------------------------------------------------------


@attrs.frozen
class _Resolved:
    """An occurrence with its template and the effective values of its overrides."""

    occurrence: Occurrence
    template: EventTemplate

    @property
    def interval(self) -> Interval:
        start = self.occurrence.start
        return Interval(start, start + (self.occurrence.duration or self.template.duration))

    @property
    def capacity(self) -> int:
        return self.occurrence.capacity or self.template.capacity

    @property
    def venue(self) -> str | None:
        return self.occurrence.venue or self.template.venue

    def price(self, ticket: TicketType) -> Money:
        return dict(self.occurrence.prices).get(ticket.id, ticket.price)

    def assignments(self) -> dict[str, str]:
        """Every role booked over the occurrence (its staff, and the venue under the role ``"venue"``)."""
        roles = self.occurrence.roles()
        if self.venue is not None:
            roles["venue"] = self.venue
        return roles

    def schedule(self) -> Schedule:
        """
        Open exactly during the occurrence, to the instant, and closed at every other time (template's zone).

        Wall-time hours cannot always say when that is: an end in the second pass of an autumn fold (01:30 + 2 h
        ends at the second 02:30), a start there, or 24 real hours that are 25 on the clock across a spring
        gap. So the local days the occurrence touches are opened whole, and the instants before its start and
        from its end are taken off them as exact instants; the result is the occurrence's interval, whatever
        its length and whatever DST does meanwhile.
        """
        zone = get_zone(self.template.zone)
        interval = self.interval
        first, last = local_date(interval.start, zone), local_date(interval.end, zone)
        days = (last - first).days + 1
        opened, closed = days_span(first, days, zone)
        whole_day = [TimeRange(time(0), time(0))]
        off = []
        if opened < interval.start:
            off.append(TimeOff(opened, interval.start, reason="before the occurrence"))
        if interval.end < closed:
            off.append(TimeOff(interval.end, closed, reason="after the occurrence"))
        return Schedule(
            self.template.zone,
            overrides=[DateOverride(first + timedelta(days=i), whole_day) for i in range(days)],
            time_off=off,
        )

    def when(self) -> str:
        """The occurrence's time as people where it happens read it (see `_local`)."""
        return _local(self.interval, self.template.zone)

    def resources(self) -> list[Resource]:
        """The seat resource and one resource per quota, all open during the occurrence only."""
        occurrence, template = self.occurrence, self.template
        schedule = self.schedule()
        local = self.interval.start.astimezone(get_zone(template.zone))
        name = f"{template.title}, {local:%Y-%m-%d %H:%M}"
        attributes = {"occurrence": occurrence.id, "template": template.id}
        out = [
            Resource(
                occurrence.seats_id,
                name,
                type="event-seats",
                capacity=self.capacity,
                schedule=schedule,
                attributes=attributes,
            )
        ]
        out += [
            Resource(
                _quota_resource(occurrence.id, q.id),
                f"{name} ({q.id})",
                type="event-quota",
                capacity=q.size,
                schedule=schedule,
                attributes=attributes,
            )
            for q in template.quotas
        ]
        return out

    def ticket_service(self, ticket: TicketType, quantity: int) -> Service:
        """The service a sale of *quantity* tickets of *ticket* books: N seats (and N units of its quota)."""
        needs = [Need(resource_ids=[self.occurrence.seats_id], units=quantity, label="seats")]
        if ticket.quota_id is not None:
            needs.append(
                Need(resource_ids=[_quota_resource(self.occurrence.id, ticket.quota_id)], units=quantity, label="quota")
            )
        return Service(
            f"{self.occurrence.id}#{ticket.id}x{quantity}",
            f"{self.template.title}: {quantity} × {ticket.name}",
            needs=needs,
            duration=self.interval.end - self.interval.start,
            price=self.price(ticket) * quantity,
        )

    def staff_service(self, role: str, person: str) -> Service:
        """The service a role's booking is of: the person's time over the occurrence."""
        return Service(
            f"{self.occurrence.id}#staff:{role}",
            f"{self.template.title}: {role}",
            needs=[Need(resource_ids=[person], label=role)],
            duration=self.interval.end - self.interval.start,
        )

    def payload(self) -> dict[str, Any]:
        occurrence = self.occurrence
        return {
            "occurrence_id": occurrence.id,
            "external_ref": occurrence.external_ref,
            "template_id": self.template.id,
            "template_ref": self.template.external_ref,
            "start": self.interval.start.isoformat(),
            "end": self.interval.end.isoformat(),
            "capacity": self.capacity,
            "staff": self.assignments(),
            "status": occurrence.status.value,
        }


class _Uncommitted:
    """A transaction seen through `_Joined`: everything but `commit`, which belongs to whoever opened it."""

    def __init__(self, tx: StorageTransaction) -> None:
        self._inner = tx

    def commit(self) -> None:
        """Do nothing: the unit of work is committed by the desk that opened it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Joined:
    """A storage whose every transaction is one already open (see `EventDesk._engine_in`)."""

    def __init__(self, tx: StorageTransaction) -> None:
        self._tx = cast("StorageTransaction", _Uncommitted(tx))

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[StorageTransaction]:
        """Yield the open transaction; leaving the block neither commits nor rolls back."""
        if tenant != self._tx.tenant:  # pragma: no cover - the desk's engine has one tenant
            msg = f"a transaction of {self._tx.tenant!r} cannot serve {tenant!r}"
            raise InvalidInputError(msg)
        yield self._tx

    def close(self) -> None:
        """Nothing to release: the transaction belongs to the desk."""

    def __repr__(self) -> str:
        return f"<joined transaction of {self._tx.tenant!r}>"


_MAX_TICKETS: Final = 10_000


def _actor(value: object) -> Actor:
    """Return *value* if it is an `Actor` (a name alone says nothing of the role it acts in)."""
    if not isinstance(value, Actor):
        msg = f"actor must be an Actor, such as Actor.manager('desk'), not {value!r}"
        raise InvalidInputError(msg, field="actor")
    return value


class EventDesk:
    """
    The events façade over a `BookingEngine`: templates, occurrences, tickets, staff roles and waiting lists.

    Who acts: a call made on someone's behalf (every method that takes ``actor=``: selling, cancelling,
    reading tickets, waiting lists or finance, joining a list, changing the catalogue) acts as its *actor*;
    without one, as the desk's *actor* if one was given to the desk, else as the engine's ``default_actor``;
    without any of them it is refused with `PermissionDeniedError`, as the engine refuses anonymous calls. The
    desk never lends its own implicit system actor to a caller.

    Args:
        engine: The engine whose storage, clock, tenant and authorization the desk uses.
        actor: Who the desk acts as for its own writes (ticket services, staff bookings, waiting-list offers),
            and, when given, for calls that name no actor. Not given: the desk's own writes are made as
            ``Actor.system("events")``, and calls that name no actor fall back on the engine's default actor.
        max_tickets: The most tickets one sale may take.
    """

    def __init__(self, engine: BookingEngine, *, actor: Actor | None = None, max_tickets: int = 10) -> None:
        from slotengine.engine import BookingEngine as Engine  # at run time only: the engine imports nothing of this

        if not isinstance(cast("object", engine), Engine):
            msg = f"an EventDesk works over a BookingEngine, not {type(engine).__name__} {engine!r}"
            raise InvalidInputError(msg, field="engine")
        self.engine = engine
        self._given: Actor | None = None if actor is None else _actor(actor)  # the caller's fallback, if any
        self.actor = Actor.system("events") if self._given is None else self._given
        self.max_tickets = _positive("max_tickets")(max_tickets)
        if self.max_tickets > _MAX_TICKETS:
            msg = f"max_tickets is at most {_MAX_TICKETS:,} (one sale is one booking of its seats), not {max_tickets}"
            raise InvalidInputError(msg, field="max_tickets")

    def __repr__(self) -> str:
        return f"<EventDesk(tenant={self.engine.tenant!r})>"

    # --- plumbing ------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return to_utc(self.engine.clock.now(), "clock.now()")

    def _read(self, work: Any) -> Any:
        with self.engine.storage.transaction(self.engine.tenant) as tx:
            return work(tx)

    def _write(self, work: Any) -> Any:
        """Run *work* in one transaction and commit it; on `ConcurrencyError` run all of it again (as the engine)."""
        attempt = 0
        while True:
            try:
                with self.engine.storage.transaction(self.engine.tenant) as tx:
                    result = work(tx)
                    tx.commit()
                    return result
            except ConcurrencyError:
                attempt += 1
                if attempt > self.engine.max_retries:
                    raise

    def _engine_in(self, tx: StorageTransaction, *, late_payments: bool = True) -> BookingEngine:
        """
        The desk's engine, working inside *tx*: its use cases join the desk's unit of work.

        A sale or an offer is decided from what the desk read under the occurrence's locks (its waiting
        list) and written with it, in one transaction. The desk commits; the engine does not retry on its own
        (a `ConcurrencyError` ends the whole unit, which `_write` runs again). Without *late_payments*, its
        holds refuse a late payment from the start.
        """
        return self.engine._joined(_Joined(tx), late_payments=late_payments)

    def _caller(self, actor: Actor | None) -> Actor:
        """
        Return who a call made on someone's behalf acts as; refuse a call that names nobody.

        *actor*, else the actor given to the desk, else the engine's default actor. The desk's implicit system
        actor is for its own writes only: lending it to callers would let anyone act as the system.
        """
        if actor is not None:
            return _actor(actor)
        if self._given is not None:
            return self._given
        if self.engine.default_actor is not None:
            return _actor(self.engine.default_actor)
        msg = (
            "no actor: pass actor=Actor.customer(...) (or staff, manager, system), "
            "or give the desk an actor (EventDesk(engine, actor=...)) or the engine a default_actor"
        )
        raise PermissionDeniedError(msg)

    def _authorize(self, actor: Actor | None) -> Actor:
        who = self._caller(actor)
        self.engine.authorization.authorize(who, Permission.SETUP, None)
        return who

    def _allow(self, actor: Actor | None, permission: Permission, *, for_customer: str | None = None) -> Actor:
        """
        Authorize a call that reads or changes what belongs to customers (who acts: see `_caller`).

        A customer may act only for themselves (*for_customer*), and may not read what names other customers.
        """
        who = self._caller(actor)
        self.engine.authorization.authorize(who, permission, None)
        if who.role is Role.CUSTOMER and (for_customer is None or for_customer != who.customer_id):
            what = "for another customer" if for_customer is not None else "what names other customers"
            msg = f"{who} may not {permission.value.replace('_', ' ')} {what}"
            raise PermissionDeniedError(msg, actor=str(who), permission=permission.value)
        return who

    @staticmethod
    def _template_in(tx: StorageTransaction, template_id: str) -> EventTemplate:
        body = tx.get_document(_TEMPLATE, template_id)
        if body is None:
            msg = f"no event template {template_id!r}"
            raise UnknownTemplateError(msg, template_id=template_id)
        return template_from_doc(loads(body))

    @staticmethod
    def _occurrence_in(tx: StorageTransaction, occurrence_id: str) -> Occurrence | None:
        body = tx.get_document(_OCCURRENCE, occurrence_id)
        return None if body is None else occurrence_from_doc(loads(body))

    def _resolve_in(self, tx: StorageTransaction, ref: str) -> _Resolved:
        """The occurrence named by id or by external ref; `UnknownOccurrenceError` if neither names one."""
        check_id(ref, "occurrence")
        occurrence = self._occurrence_in(tx, ref)
        if occurrence is None:
            by_ref = _ref_owner(tx, "occurrence", ref)
            occurrence = None if by_ref is None else self._occurrence_in(tx, by_ref)
        if occurrence is None:
            msg = f"no occurrence {ref!r} (by id or external ref)"
            raise UnknownOccurrenceError(msg, occurrence=ref)
        return _Resolved(occurrence, self._template_in(tx, occurrence.template_id))

    def _message(self, tx: StorageTransaction, now: datetime, topic: str, payload: Mapping[str, Any]) -> None:
        message_id = uuid.uuid4().hex
        tx.append_outbox([OutboxMessage(message_id, topic, None, now, now, message_id, dumps(dict(payload)))])

    # --- templates -------------------------------------------------------------------------------------------

    def upsert_template(self, template: EventTemplate, *, actor: Actor | None = None) -> bool:
        """
        Create or replace a template, by id (or by its external ref when one is stored under it).

        Returns whether anything changed: the same template upserted again writes and emits nothing. A changed
        template emits ``event_template.changed``; its occurrences take its new values from then on.

        Raises:
            InvalidInputError: the external ref already names another template, or the new template no longer
                sells a ticket type whose price one of its occurrences overrides; nothing changed.
            CurrencyMismatchError: an occurrence overrides a price in another currency than the new template's
                price of that ticket type; nothing changed (change or drop the override first).
            ConflictError: an occurrence has more tickets sold than the new capacity or quota; nothing changed.
        """
        if not isinstance(cast("object", template), EventTemplate):
            msg = f"expected EventTemplate, got {type(template).__name__}"
            raise InvalidInputError(msg)
        who = self._authorize(actor)

        def upsert(tx: StorageTransaction) -> bool:
            if template.external_ref is not None:
                owner = _ref_owner(tx, "template", template.external_ref)
                if owner is not None and owner != template.id:
                    msg = f"external ref {template.external_ref!r} already names template {owner!r}"
                    raise InvalidInputError(msg, field="external_ref")
            body = dumps(template_to_doc(template))
            before = tx.get_document(_TEMPLATE, template.id)
            if before == body:
                return False
            if before is not None:
                _check_overrides(template, (_occ(doc) for _, doc in tx.list_documents(_OCCURRENCE)))
            tx.put_document(_TEMPLATE, template.id, body)
            if template.external_ref is not None:
                tx.put_document(_REF, f"template:{template.external_ref}", template.id)
            topic = "event_template.created" if before is None else "event_template.changed"
            self._message(
                tx,
                self._now(),
                topic,
                {"template_id": template.id, "external_ref": template.external_ref, "by": str(who)},
            )
            if before is not None:
                previous = template_from_doc(loads(before))
                for _, occurrence_body in tx.list_documents(_OCCURRENCE):
                    occurrence = occurrence_from_doc(loads(occurrence_body))
                    if occurrence.template_id == template.id:
                        self._upsert(tx, occurrence, str(who), previous=previous)
            return True

        return bool(self._write(upsert))

    def template(self, template_id: str) -> EventTemplate:
        """Return a template by id or external ref. Raises `UnknownTemplateError`."""

        def find(tx: StorageTransaction) -> EventTemplate:
            if tx.get_document(_TEMPLATE, template_id) is None:
                by_ref = _ref_owner(tx, "template", template_id)
                return self._template_in(tx, by_ref or template_id)
            return self._template_in(tx, template_id)

        return find_result(self._read(find), EventTemplate)

    # --- occurrences -----------------------------------------------------------------------------------------

    def upsert_occurrence(self, occurrence: Occurrence, *, actor: Actor | None = None) -> Occurrence:
        """
        Create or change an occurrence, found by its external ref if it has one, else by id; return it as stored.

        Everything happens in one transaction: the seat and quota resources, moved ticket and staff bookings,
        new staff bookings (refused with `StaffConflictError` if the person is busy), the document, and one outbox
        event per kind of change (``occurrence.created``, ``.moved``, ``.changed``, ``.staff_changed``,
        ``.cancelled``). The same occurrence upserted twice changes and emits nothing the second time.
        Cancelling cancels its live tickets too, by the business (refunding everything), in the same
        transaction; a hold that has lapsed is left to expire.

        Raises:
            UnknownTemplateError: the template does not exist.
            StaffConflictError: a staff member or the venue is booked elsewhere then; nothing changed.
            ConflictError: the new capacity or quota is below the tickets already sold; nothing changed.
        """
        if not isinstance(cast("object", occurrence), Occurrence):
            msg = f"expected Occurrence, got {type(occurrence).__name__}"
            raise InvalidInputError(msg)
        who = self._authorize(actor)
        return cast("Occurrence", self._write(lambda tx: self._upsert_whole(tx, occurrence, who)))

    def _upsert_whole(self, tx: StorageTransaction, occurrence: Occurrence, who: Actor) -> Occurrence:
        """`upsert_occurrence` inside *tx*: the occurrence and what follows from it, its tickets' cancellation too."""
        # The catalogue writes in it change the storage's catalogue version, so the engine's cache sees them.
        stored = self._upsert(tx, occurrence, str(who))
        if stored.status is OccurrenceStatus.CANCELLED:
            self._cancel_tickets(tx, stored, who)
            self._close_waiting_list(tx, stored)
        return stored

    def _close_waiting_list(self, tx: StorageTransaction, occurrence: Occurrence) -> None:
        """Tell everyone still waiting for a cancelled occurrence that no seat will come, and close their entries."""
        key = _occurrence_list(occurrence.id)
        entries = self._entries(tx, key)
        waiting = [e for e in entries if e.state is WaitingState.WAITING]
        if not waiting:
            return
        now = self._now()
        self._save(tx, key, [attrs.evolve(e, state=WaitingState.CLOSED) if e in waiting else e for e in entries])
        for entry in waiting:
            payload = {"occurrence_id": occurrence.id, "entry_id": entry.id, "customer_id": entry.customer_id}
            self._message(tx, now, "waitlist.closed", payload)

    def _upsert(  # noqa: C901, PLR0912, PLR0915 - one branch per kind of change, read top to bottom
        self, tx: StorageTransaction, incoming: Occurrence, actor: str, *, previous: EventTemplate | None = None
    ) -> Occurrence:
        """
        Write *incoming* and everything that follows from it.

        *previous* is the template as it was, when the template itself is what changed: the occurrence is the
        same, but its seats, length or quotas may not be.
        """
        now = self._now()
        before: Occurrence | None = None
        if incoming.external_ref is not None:
            owner = _ref_owner(tx, "occurrence", incoming.external_ref)
            if owner is not None:
                before = self._occurrence_in(tx, owner)
                incoming = attrs.evolve(incoming, id=owner)
        if before is None:
            before = self._occurrence_in(tx, incoming.id)
        if before == incoming and previous is None:
            return incoming
        template = self._template_in(tx, incoming.template_id)
        if previous is None:
            _check_prices(incoming, template)
        new = _Resolved(incoming, template)
        old = None
        if before is not None:
            old = _Resolved(before, previous or self._template_in(tx, before.template_id))
            same = (old.interval, old.resources(), old.assignments()) == (
                new.interval,
                new.resources(),
                new.assignments(),
            )
            if previous is not None and same:
                return incoming  # a new description or price list: the stored occurrence is unchanged
        resources = new.resources()
        if old is not None:
            tx.lock_resources([r.id for r in old.resources()])
        for resource in resources:
            tx.put_resource(resource)
        topics: list[str] = []
        cancelled = incoming.status is OccurrenceStatus.CANCELLED
        wanted = {} if cancelled else new.assignments()
        had = {} if old is None or old.occurrence.status is OccurrenceStatus.CANCELLED else old.assignments()
        if old is None:
            topics.append("occurrence.created")
        else:
            self._check_capacity(tx, now, old, resources)
            if old.interval != new.interval:
                if not cancelled:  # cancelled too: its bookings do not move
                    # Only the roles that keep their holder move; `_restaff` frees the others where they are.
                    kept = {role: person for role, person in had.items() if wanted.get(role) == person}
                    self._move(tx, now, old, new, kept, actor)
                topics.append("occurrence.moved")
            if (old.capacity, old.occurrence.prices, old.occurrence.sales_start, old.occurrence.sales_end) != (
                new.capacity,
                new.occurrence.prices,
                new.occurrence.sales_start,
                new.occurrence.sales_end,
            ):
                topics.append("occurrence.changed")
        self._restaff(tx, now, new, had, wanted, actor)
        if had != wanted:
            topics.append("occurrence.staff_changed")
        if cancelled and (old is None or old.occurrence.status is not OccurrenceStatus.CANCELLED):
            topics.append("occurrence.cancelled")
        if old is not None and not topics:
            topics.append("occurrence.changed")
        tx.put_document(_OCCURRENCE, incoming.id, dumps(occurrence_to_doc(incoming)))
        if incoming.external_ref is not None:
            tx.put_document(_REF, f"occurrence:{incoming.external_ref}", incoming.id)
        payload = {**new.payload(), "by": actor}
        if old is not None and "occurrence.moved" in topics:
            payload["previous_start"] = old.interval.start.isoformat()
        for topic in topics:
            self._message(tx, now, topic, payload)
        return incoming

    @staticmethod
    def _sold(tx: StorageTransaction, now: datetime, resource_id: str, interval: Interval) -> int:
        """Units taken on *resource_id* during *interval* by live bookings (holds while they last)."""
        return sum(
            load.units for load in tx.loads([resource_id], interval) if load.hold_until is None or load.hold_until > now
        )

    def _check_capacity(self, tx: StorageTransaction, now: datetime, old: _Resolved, resources: list[Resource]) -> None:
        for resource in resources:
            sold = self._sold(tx, now, resource.id, old.interval)
            if isinstance(resource.capacity, int) and sold > resource.capacity:
                msg = f"{resource.name}: {sold} seats are taken, more than the new capacity {resource.capacity}"
                raise ConflictError(msg, resource_id=resource.id, sold=sold)

    def _move(
        self, tx: StorageTransaction, now: datetime, old: _Resolved, new: _Resolved, kept: dict[str, str], actor: str
    ) -> None:
        """
        Move every live ticket, and the staff bookings of the *kept* roles, to the occurrence's new time.

        Each goes under the storage's check. A ticket hold that has lapsed (swept or not) holds no seat and is
        not moved; it stays where it was, so it no longer takes a late payment, which would revive it at a
        time the occurrence left (and sell a seat twice): every live ticket lies at the occurrence's time.
        """
        delta_start = new.interval.start - old.interval.start
        length = new.interval.end - new.interval.start
        seat_ids = [r.id for r in old.resources()]
        tx.lock_resources(sorted({*seat_ids, *kept.values()}))
        moving = {b.id: b for rid in seat_ids for b in self._live_on(tx, rid, old.interval) if not _lapsed(b, now)}
        for role, person in kept.items():
            service_id = f"{old.occurrence.id}#staff:{role}"
            moving |= {b.id: b for b in self._live_on(tx, person, old.interval) if b.service_id == service_id}
        for booking in sorted(moving.values(), key=lambda b: b.id):
            start = booking.start + delta_start
            moved = attrs.evolve(booking, start=start, end=start + length, version=booking.version + 1)
            try:
                tx.reserve(moved, now=now)
            except ConflictError as exc:
                busy = str(exc.details.get("resource_id", ""))
                held = next((r for r, p in new.assignments().items() if p == busy), None)
                raise self._staff_conflict(tx, new, held, busy, exc) from None
            next_status(booking.status, Action.RESCHEDULE)
            # Through the engine's record, so the ticket's messages follow it: reminders re-planned, events out.
            self.engine._record(tx, now, moved, booking.status, Action.RESCHEDULE, actor, "occurrence moved")
        for booking in tx.find_bookings(BookingQuery(resource_id=old.occurrence.seats_id)):
            if booking.id not in moving and _lapsed(booking, now):
                _refuse_late_payment(tx, booking)

    @staticmethod
    def _live_on(tx: StorageTransaction, resource_id: str, interval: Interval) -> list[Booking]:
        return tx.find_bookings(BookingQuery(resource_id=resource_id, statuses=LIVE_STATUSES, period=interval))

    def _restaff(
        self,
        tx: StorageTransaction,
        now: datetime,
        new: _Resolved,
        had: dict[str, str],
        wanted: dict[str, str],
        actor: str,
    ) -> None:
        """Cancel the bookings of roles that changed hands or ended, and book the new holders' time."""
        business = tx.get_business()
        for role in sorted(set(had) | set(wanted)):
            if had.get(role) == wanted.get(role):
                continue
            service_id = f"{new.occurrence.id}#staff:{role}"
            # Through the holder's own bookings (an index serves them; none serves a service's bookings), or
            # the service's where the holder has none of them (a role whose booking lies elsewhere).
            query = BookingQuery(resource_id=had.get(role), service_id=service_id, statuses=LIVE_STATUSES)
            found = tx.find_bookings(query)
            if not found and query.resource_id is not None:
                found = tx.find_bookings(attrs.evolve(query, resource_id=None))
            for booking in found:
                after = next_status(booking.status, Action.CANCEL)
                cancelled = attrs.evolve(booking, status=after, hold_until=None, version=booking.version + 1)
                tx.update_booking(cancelled, expected_version=booking.version)
                self.engine._record(tx, now, cancelled, booking.status, Action.CANCEL, actor, f"{role} reassigned")
            person = wanted.get(role)
            if person is None:
                continue
            holder = tx.get_resource(person)
            if role != "venue" and holder.kind is not ResourceKind.USER:
                msg = f"{person!r} is not staff (a USER resource), so it cannot be the {role}"
                raise InvalidInputError(msg, field="staff")
            service = new.staff_service(role, person)
            tx.put_service(service)
            status = next_status(None, Action.BOOK)
            booking = Booking(
                uuid.uuid4().hex,
                service.id,
                new.interval.start,
                new.interval.end,
                (Assignment(0, role, (person,)),),
                (1,),
                status,
                now,
                policies=business.policies,
                source="events",
                notes=f"{role} of {new.occurrence.id}",
                external_ref=new.occurrence.external_ref,
            )
            tx.lock_resources([person])
            try:
                tx.reserve(booking, now=now)
            except ConflictError as exc:
                raise self._staff_conflict(tx, new, role, person, exc) from None
            self.engine._record(tx, now, booking, None, Action.BOOK, actor, role)

    def _staff_conflict(
        self, tx: StorageTransaction, new: _Resolved, role: str | None, person: str, exc: ConflictError
    ) -> StaffConflictError:
        """
        Say why *person* cannot take *role* in *new*: who, which occurrence when, and what is in the way when.

        Times are local: the occurrence's in its template's zone, the booking in the way in its occurrence's
        zone (or the business's, for an ordinary booking).
        """
        try:
            name = tx.get_resource(person).name
        except LookupError:
            name = person
        as_what = f"be the {role} of" if role is not None else "be booked for"
        refused = f"{name} cannot {as_what} {new.template.title} on {_local(new.interval, new.template.zone)}"
        blocking: Booking | None = None
        for booking_id in exc.details.get("booking_ids", ()):
            try:
                blocking = tx.get_booking(booking_id)
            except LookupError:
                continue
            break
        if blocking is None:
            return StaffConflictError(
                f"{refused}: {exc}", staff_id=person, role=role, occurrence_id=new.occurrence.id, **exc.details
            )
        staffed = self._staff_of(tx, blocking)
        seats = next((rid for rid in blocking.resource_ids if rid.endswith(_SEATS)), None)
        other, task = staffed if staffed is not None else (None, "")
        if other is None and seats is not None:
            other = self._occurrence_in(tx, seats[: -len(_SEATS)])
        if other is not None:
            there = _Resolved(other, self._template_in(tx, other.template_id))
            what = f"the {task} of " if task else ""
            because = f"{what}{there.template.title} on {_local(blocking.interval, there.template.zone)}"
            because += f" (occurrence {other.id!r}, booking {blocking.id!r})"
        else:
            zone = tx.get_business().zone
            because = f"booking {blocking.id!r} ({blocking.service_id}) on {_local(blocking.interval, zone)}"
        return StaffConflictError(
            f"{refused}: {name} is already {because}",
            staff_id=person,
            role=role,
            occurrence_id=new.occurrence.id,
            conflicting_booking_id=blocking.id,
            conflicting_occurrence_id=None if other is None else other.id,
            conflicting_start=blocking.start,
            conflicting_end=blocking.end,
        )

    def assign(self, occurrence: str, role: str, person: str | None, *, actor: Actor | None = None) -> Occurrence:
        """
        Give *role* of an occurrence to *person* (a USER resource id), or take it away with None.

        The person's time is booked over the occurrence; an overlap is refused with `StaffConflictError`.
        """
        check_id(role, "role")
        current = find_result(self._read(lambda tx: self._resolve_in(tx, occurrence)), _Resolved).occurrence
        staff = current.roles()
        if person is None:
            staff.pop(role, None)
        else:
            staff[role] = check_id(person, "staff id")
        return self.upsert_occurrence(attrs.evolve(current, staff=staff), actor=actor)

    def occurrence(self, occurrence: str) -> Occurrence:
        """Return an occurrence by id or external ref. Raises `UnknownOccurrenceError`."""
        return find_result(self._read(lambda tx: self._resolve_in(tx, occurrence)), _Resolved).occurrence

    def occurrences(self, template_id: str | None = None) -> list[Occurrence]:
        """Return every occurrence (of one template, if named), by start."""
        if template_id is not None:
            check_id(template_id, "template_id")
        docs = self._read(lambda tx: tx.list_documents(_OCCURRENCE))
        found = [occurrence_from_doc(loads(body)) for _key, body in docs]
        return sorted(
            (o for o in found if template_id is None or o.template_id == template_id), key=lambda o: (o.start, o.id)
        )

    def schedule(
        self,
        template_id: str,
        recurrence: Recurrence,
        first: date,
        last: date,
        *,
        staff: Mapping[str, str] | None = None,
        actor: Actor | None = None,
    ) -> list[Occurrence]:
        """
        Upsert one occurrence per date of *recurrence* from local day *first* to *last* (both included).

        Their ids are ``"<template id>@<local start>"`` (``"kremlin@2026-05-02T11:00"``), so scheduling the same
        month again is idempotent. Exceptions are the recurrence's exdates. All the dates are written in one
        transaction: a date refused (a staff member busy then) leaves none of them written.

        *staff* (``{"speaker": "anna"}``) gives those roles on every date: to the new occurrences, and to the
        ones already scheduled, whose other roles are kept.

        Raises:
            UnknownTemplateError: the template does not exist.
            StaffConflictError: a staff member or the venue is booked elsewhere on one of the dates.
            InvalidInputError: *first* or *last* is not a date, *last* is before *first*, *recurrence* is not a
                `Recurrence`, or it makes more than 10,000 occurrences in the span (schedule less at a time).
        """
        who = self._authorize(actor)
        for name, day in (("first", first), ("last", last)):
            if not isinstance(day, date) or isinstance(day, datetime):
                msg = f"{name} must be a date (a local day), not {day!r}"
                raise InvalidInputError(msg, field=name)
            check_day_range(day, name)
        if not isinstance(cast("object", recurrence), Recurrence):
            msg = f"recurrence must be a Recurrence, not {type(recurrence).__name__}"
            raise InvalidInputError(msg, field="recurrence")
        if last < first:
            msg = f"last ({last}) is before first ({first}): nothing to schedule"
            raise InvalidInputError(msg, field="last")
        roles = dict(_staff({} if staff is None else staff))
        template = self.template(template_id)
        zone = get_zone(template.zone)
        wanted = []
        # A month at a time, so that a rule far too dense for one call is refused before it is all expanded.
        day = first
        while day <= last:
            until = min(day + _SCHEDULE_CHUNK, last + timedelta(days=1))
            lo, hi = datetime.combine(day, time(0), zone), datetime.combine(until, time(0), zone)
            for start in recurrence.between(lo, hi, inc=True):
                if start >= hi:
                    continue
                local = start.astimezone(zone)
                wanted.append(Occurrence(f"{template.id}@{local:%Y-%m-%dT%H:%M}", template.id, start, staff=roles))
            if len(wanted) > _MAX_SCHEDULED:
                msg = (
                    f"{recurrence.to_ical()!r} from {first} to {last} makes more than {_MAX_SCHEDULED:,} occurrences "
                    "in one call; schedule a shorter span at a time"
                )
                raise InvalidInputError(msg, field="recurrence")
            day = until

        def schedule(tx: StorageTransaction) -> list[Occurrence]:
            return [self._upsert_whole(tx, self._scheduled(tx, o, roles), who) for o in wanted]

        return cast("list[Occurrence]", self._write(schedule))

    def _scheduled(self, tx: StorageTransaction, occurrence: Occurrence, roles: dict[str, str]) -> Occurrence:
        """What `schedule` upserts for one date: a new occurrence, or the stored one with the roles *staff* names."""
        stored = self._occurrence_in(tx, occurrence.id)
        if stored is None:
            return occurrence
        if not roles or stored.status is OccurrenceStatus.CANCELLED:
            return stored
        return attrs.evolve(stored, staff={**stored.roles(), **roles})

    def cancel_occurrence(self, occurrence: str, *, actor: Actor | None = None) -> Occurrence:
        """
        Cancel an occurrence: emit ``occurrence.cancelled``, free its staff, cancel its tickets by the business.

        The actor needs `Permission.SETUP` (the catalogue) and, for the tickets cancelled on the business's terms
        (a full refund), `Permission.CANCEL` and `Permission.REFUND`: under `RolePolicy`, an admin or the system.
        A refusal of any ticket leaves the occurrence and every ticket as they were.
        """
        current = self.occurrence(occurrence)
        return self.upsert_occurrence(attrs.evolve(current, status=OccurrenceStatus.CANCELLED), actor=actor)

    def _cancel_tickets(self, tx: StorageTransaction, occurrence: Occurrence, who: Actor) -> None:
        """
        Cancel the live tickets of a cancelled occurrence by the business, as *who*, in the occurrence's transaction.

        All of them or none: a refusal (the authorization policy's too) undoes the occurrence's cancellation.
        A hold that has lapsed (swept or not) holds no seat and is left to expire, but no longer takes a late
        payment, which would revive it into a paid ticket for an occurrence that will not take place.
        """
        engine, now = self._engine_in(tx), self._now()
        for booking in tx.find_bookings(BookingQuery(resource_id=occurrence.seats_id)):
            if _lapsed(booking, now):
                _refuse_late_payment(tx, booking)
            elif booking.status in LIVE_STATUSES:
                engine.cancel(booking.id, by_business=True, reason="occurrence cancelled", actor=who)

    # --- tickets ---------------------------------------------------------------------------------------------

    def tickets(self, occurrence: str, *, actor: Actor | None = None) -> list[Booking]:
        """Return the ticket bookings of an occurrence, in any status, by start then id (a customer sees theirs)."""
        who = self._caller(actor)
        resolved = find_result(self._read(lambda tx: self._resolve_in(tx, occurrence)), _Resolved)
        return self.engine.list(resource_id=resolved.occurrence.seats_id, actor=who)

    def seats_left(self, occurrence: str) -> int:
        """How many seats an occurrence has free now (holds count while they last); 0 once it is cancelled."""

        def count(tx: StorageTransaction) -> int:
            resolved = self._resolve_in(tx, occurrence)
            if resolved.occurrence.status is OccurrenceStatus.CANCELLED:
                return 0  # none will be sold
            return resolved.capacity - self._sold(tx, self._now(), resolved.occurrence.seats_id, resolved.interval)

        return int(self._read(count))

    def sell(
        self,
        occurrence: str,
        ticket_type: str,
        quantity: int = 1,
        *,
        customer_id: str | None = None,
        customer: Customer | None = None,
        confirm: bool = False,
        external_ref: str | None = None,
        idempotency_key: str | None = None,
        source: str = "site",
        actor: Actor | None = None,
    ) -> Booking:
        """
        Sell *quantity* tickets of *ticket_type* for an occurrence named by id or external ref.

        The sale is a hold (checkout; pay it with `BookingEngine.pay`), or a confirmed booking with
        ``confirm=True`` (back office). The engine's capacity check under lock decides; a full occurrence or
        quota raises `SoldOutError`, saying which. While people wait on the occurrence's waiting list, seats they
        could use go to them first (the rule is stated on the module's reference page and in the excursions
        recipe): the list is read under the occurrence's locks, in the sale's own transaction.

        Raises:
            UnknownOccurrenceError: no occurrence has that id or external ref (nothing is sold).
            SalesClosedError: the occurrence is cancelled, over, or outside its sales window.
            SoldOutError: not enough seats (or quota) left, or people waiting could use them.
            ConflictError: the engine refused the seats for another reason (the business closed then, say).
            InvalidInputError: an unknown ticket type or a quantity outside 1..max_tickets.
        """
        _positive("quantity")(quantity)
        if quantity > self.max_tickets:
            msg = f"one sale takes at most {self.max_tickets} tickets, not {quantity}"
            raise InvalidInputError(msg, field="quantity")
        flag: object = confirm
        if not isinstance(flag, bool):  # "no" is truthy: it would confirm
            msg = f"confirm must be True or False, got {flag!r}"
            raise InvalidInputError(msg, field="confirm")
        check_id(occurrence, "occurrence")
        check_id(ticket_type, "ticket type")
        if idempotency_key is not None:
            check_id(idempotency_key, "idempotency key")
        who = self._caller(actor)

        def sale(tx: StorageTransaction) -> Booking:
            resolved = self._locked(tx, occurrence)
            ticket = resolved.template.ticket_type(ticket_type)
            # A retried call with its idempotency key gets its first answer, whatever happened since.
            fresh = idempotency_key is None or tx.get_idempotency(idempotency_key) is None
            waiting = False
            if fresh:
                now = self._now()
                self._check_on_sale(resolved, now)
                self._check_waiting_list(tx, resolved, ticket, quantity, now)
                waiting = self._anyone_waiting(tx, resolved)
            sold = self._take_seats(
                tx,
                resolved,
                ticket,
                quantity,
                confirm=confirm,
                customer_id=customer_id,
                customer=customer,
                source=source,
                external_ref=external_ref,
                idempotency_key=idempotency_key,
                actor=who,
                late_payments=not waiting,
            )
            if waiting:
                self._no_late_payments(tx, resolved)
            return sold

        return find_result(self._write(sale), Booking)

    def _anyone_waiting(self, tx: StorageTransaction, resolved: _Resolved) -> bool:
        """Whether someone waits on the occurrence's list for a ticket type it still sells (so for a seat)."""
        entries = self._entries(tx, _occurrence_list(resolved.occurrence.id))
        return _waits(entries, {t.id for t in resolved.template.ticket_types})

    def _no_late_payments(self, tx: StorageTransaction, resolved: _Resolved) -> None:
        """
        Switch off the late payment of an occurrence's ticket holds, as is due while someone waits for a seat.

        A hold that lapses then frees its seats for the people waiting (`process_waiting_lists` offers them in
        order), so its holder's late payment must not revive it first and take them back: that would be a sale
        of a seat someone on the list could use, which `sell` refuses. The switch stays off once the list is
        empty again (the hold's own policies say so; its holder pays in time, or buys again).
        """
        query = BookingQuery(
            resource_id=resolved.occurrence.seats_id,
            statuses=frozenset({BookingStatus.PRE_BOOKING, BookingStatus.EXPIRED}),
        )
        for booking in tx.find_bookings(query):
            if booking.status is BookingStatus.EXPIRED or booking.hold_until is not None:
                _refuse_late_payment(tx, booking)

    def _check_waiting_list(
        self, tx: StorageTransaction, resolved: _Resolved, ticket: TicketType, quantity: int, now: datetime
    ) -> None:
        """
        Refuse a sale that would take a seat (or a quota unit) that someone on the waiting list could use.

        The rule: walk the list as `process_waiting_lists` would, in join order. The people it would offer
        seats to now have those seats set aside; from the first who does not fit on, everyone still waits. The
        sale goes through if, in each pool it draws from (the seats, its quota), it leaves at least as much
        as the largest request still waiting on that pool. So a sale that cannot compete with anyone waiting
        (a full-price seat while people wait for a full quota, with seats to spare) is not held up, and one
        that would leave a waiting person further from their seats is refused with `SoldOutError`.
        """
        listed = self._entries(tx, _occurrence_list(resolved.occurrence.id))
        entries = [e for e in listed if e.state is WaitingState.WAITING]
        if not entries:
            return
        free = self._free(tx, resolved, now)
        tickets = {t.id: t for t in resolved.template.ticket_types}
        wanted: dict[str, int] = {}
        blocked = False
        for entry in entries:
            wants = tickets.get(entry.ticket_type or "")
            if wants is None:
                continue  # a ticket type no longer sold: the next walk closes the entry; it waits for nothing
            needs = _pools(resolved, wants, entry.quantity)
            if not blocked and all(free[rid] >= units for rid, units in needs.items()):
                for rid, units in needs.items():
                    free[rid] -= units
                continue
            blocked = True
            for rid, units in needs.items():
                wanted[rid] = max(wanted.get(rid, 0), units)
        for rid, units in _pools(resolved, ticket, quantity).items():
            if free[rid] - units < wanted.get(rid, 0):
                msg = (
                    f"{resolved.template.title} on {resolved.when()}: the seats left are set aside for "
                    f"the people on its waiting list ({len(entries)} waiting)"
                )
                raise SoldOutError(msg, occurrence_id=resolved.occurrence.id, reasons=["waiting_list"])

    def _locked(self, tx: StorageTransaction, occurrence: str) -> _Resolved:
        """
        Resolve an occurrence and take the locks of its seats and quotas (what its sales and its list share).

        The occurrence is read again under the locks: a cancel or a move that held them meanwhile has committed,
        and a sale must see it. If its resources changed, the unit of work is run again (`ConcurrencyError`).
        """
        ids = sorted(r.id for r in self._resolve_in(tx, occurrence).resources())
        tx.lock_resources(ids)
        resolved = self._resolve_in(tx, occurrence)
        if sorted(r.id for r in resolved.resources()) != ids:
            msg = f"occurrence {occurrence!r} changed its seats or quotas while this waited for their locks"
            raise ConcurrencyError(msg)
        return resolved

    @staticmethod
    def _check_on_sale(resolved: _Resolved, now: datetime) -> None:
        """
        Refuse a sale (or a place on the waiting list) of an occurrence that is not on sale at *now*.

        Sales close at the end of the sales window, and never later than the occurrence's start, whatever the
        window says: a ticket is a booking of the occurrence's whole time, which cannot begin in the past.
        """
        occ, zone = resolved.occurrence, resolved.template.zone
        title, when = resolved.template.title, resolved.when()
        if occ.status is OccurrenceStatus.CANCELLED:
            msg = f"{title} on {when} was cancelled: its tickets are no longer on sale"
            raise SalesClosedError(msg, rule="occurrence_cancelled", occurrence_id=occ.id)
        if now >= resolved.interval.end:
            msg = f"{title} on {when} is over: its tickets are no longer on sale"
            raise SalesClosedError(msg, rule="occurrence_over", deadline=resolved.interval.end, occurrence_id=occ.id)
        closes = min(occ.sales_end or resolved.interval.start, resolved.interval.start)
        if occ.sales_start is not None and now < occ.sales_start:
            msg = (
                f"tickets for {title} on {when} go on sale at {_local_instant(occ.sales_start, zone)}, "
                f"until {_local_instant(closes, zone)}"
            )
            raise SalesClosedError(msg, rule="sales_window", deadline=closes, occurrence_id=occ.id)
        if now >= closes:
            msg = f"tickets for {title} on {when} were on sale until {_local_instant(closes, zone)}"
            raise SalesClosedError(msg, rule="sales_window", deadline=closes, occurrence_id=occ.id)

    def _take_seats(
        self,
        tx: StorageTransaction,
        resolved: _Resolved,
        ticket: TicketType,
        quantity: int,
        *,
        confirm: bool,
        customer_id: str | None,
        customer: Customer | None,
        source: str,
        external_ref: str | None,
        idempotency_key: str | None,
        actor: Actor | None,
        late_payments: bool = True,
    ) -> Booking:
        """Book *quantity* seats (and quota) through the engine, inside *tx*; a full occurrence is `SoldOutError`."""
        engine = self._engine_in(tx, late_payments=late_payments)
        service = resolved.ticket_service(ticket, quantity)
        try:
            same = tx.get_service(service.id) == service
        except LookupError:
            same = False
        if not same:
            engine.add_service(service, actor=self.actor)
        book = engine.book if confirm else engine.hold
        try:
            return book(
                service.id,
                resolved.interval.start,
                customer_id=customer_id,
                customer=customer,
                source=source,
                external_ref=external_ref,
                idempotency_key=idempotency_key,
                actor=actor,
            )
        except SoldOutError:
            raise
        except ConflictError as exc:
            raise self._why_not(tx, resolved, ticket, quantity, exc) from None

    def _free(self, tx: StorageTransaction, resolved: _Resolved, now: datetime) -> dict[str, int]:
        """Units free now on the occurrence's seat resource and on each of its quota resources, by resource id."""
        sizes = {resolved.occurrence.seats_id: resolved.capacity}
        sizes |= {_quota_resource(resolved.occurrence.id, q.id): q.size for q in resolved.template.quotas}
        return {rid: size - self._sold(tx, now, rid, resolved.interval) for rid, size in sizes.items()}

    def _why_not(
        self, tx: StorageTransaction, resolved: _Resolved, ticket: TicketType, quantity: int, exc: ConflictError
    ) -> ConflictError:
        """
        Say why the engine refused a sale: too few seats, a full quota (`SoldOutError`), or something else.

        Something else (the business closed that day, say) is a `ConflictError` with the engine's own reason:
        the occurrence is not sold out, and a waiting list would wait for nothing.
        """
        title, when, occurrence_id = resolved.template.title, resolved.when(), resolved.occurrence.id
        codes = [str(getattr(r, "code", r)) for r in exc.details.get("reasons", ())]  # the engine's, after ours
        free = self._free(tx, resolved, self._now())
        seats = max(free[resolved.occurrence.seats_id], 0)
        if seats < quantity:
            left = f"only {_seats(seats)} left" if seats > 0 else "no seats left"
            msg = f"{title} on {when} has {left}, not {quantity}"
            return SoldOutError(msg, occurrence_id=occurrence_id, reasons=["seats", *codes], seats_left=seats)
        if ticket.quota_id is not None:
            quota = max(free[_quota_resource(occurrence_id, ticket.quota_id)], 0)
            if quota < quantity:
                left = f"only {quota} of them are left" if quota > 0 else "that quota is full"
                msg = (
                    f"{title} on {when}: {ticket.name} tickets draw from the quota {ticket.quota_id!r}, and {left} "
                    f"({quantity} asked for; {_seats(seats)} left for other ticket types)"
                )
                return SoldOutError(
                    msg,
                    occurrence_id=occurrence_id,
                    reasons=["quota", *codes],
                    quota_id=ticket.quota_id,
                    quota_left=quota,
                )
        msg = f"{title} on {when} cannot be sold: {exc.message}"
        return ConflictError(msg, **{**exc.details, "occurrence_id": occurrence_id})

    def cancel_ticket(self, booking_id: str, *, actor: Actor | None = None, reason: str = "") -> Booking:
        """
        Cancel a ticket (refund per the policy) and offer the freed seats to the waiting list, in order.

        Both happen in one transaction, under the occurrence's locks: the cancellation is never committed
        without the offers it frees.

        Raises:
            InvalidInputError: the booking is not a ticket of an occurrence (a staff role's booking is changed
                with `assign`; an ordinary booking is cancelled with `BookingEngine.cancel`).
            NotFoundError: no booking has that id.
            PolicyViolationError: on the client's terms, the deadline passed or the occurrence began; the business
                cancels then with `BookingEngine.cancel(by_business=True)` (a full refund; the seats are then not
                offered to the waiting list).
        """
        check_id(booking_id, "booking id")
        who = self._caller(actor)

        def cancel(tx: StorageTransaction) -> Booking:
            booking = tx.get_booking(booking_id)
            occurrence = self._ticket_occurrence(tx, booking)
            key = _occurrence_list(occurrence)
            exists = self._occurrence_in(tx, occurrence) is not None
            if exists:
                self._lock_list(tx, key)
            cancelled = self._engine_in(tx).cancel(booking_id, actor=who, reason=reason)
            if exists:
                self._advance_in(tx, key, self._now())
            return cancelled

        return find_result(self._write(cancel), Booking)

    def _ticket_occurrence(self, tx: StorageTransaction, booking: Booking) -> str:
        """The id of the occurrence *booking* is a ticket of (the one whose seats it takes), or a refusal."""
        for rid in booking.resource_ids:
            if rid.endswith(_SEATS):
                return rid[: -len(_SEATS)]
        found = self._staff_of(tx, booking)
        if found is not None:
            occurrence, role = found
            msg = (
                f"booking {booking.id!r} is not a ticket: it books the {role} of occurrence {occurrence.id!r}; "
                f"change the role with EventDesk.assign({occurrence.id!r}, {role!r}, ...)"
            )
        else:
            msg = (
                f"booking {booking.id!r} ({booking.service_id}) is not a ticket of an occurrence; "
                "cancel it with BookingEngine.cancel"
            )
        raise InvalidInputError(msg, field="booking_id", booking_id=booking.id)

    def _staff_of(self, tx: StorageTransaction, booking: Booking) -> tuple[Occurrence, str] | None:
        """
        The occurrence and the role a staff booking is of, or None for any other booking.

        Its service id is ``"<occurrence id>#staff:<role>"``, and ids may hold ``#`` themselves, so every way
        of reading it is tried: the occurrence must exist, and preferably give that role to the booked person.
        """
        marker = "#staff:"
        found: tuple[Occurrence, str] | None = None
        at = booking.service_id.find(marker)
        while at > 0:
            occurrence = self._occurrence_in(tx, booking.service_id[:at])
            role = booking.service_id[at + len(marker) :]
            if occurrence is not None:
                holder = _Resolved(occurrence, self._template_in(tx, occurrence.template_id)).assignments().get(role)
                if holder in booking.resource_ids:
                    return occurrence, role
                found = found or (occurrence, role)
            at = booking.service_id.find(marker, at + 1)
        return found

    def finance(
        self, month: date, *, zone: str | None = None, actor: Actor | None = None
    ) -> tuple[OccurrenceFinance, ...]:
        """Return the month-end report per occurrence held in *month* (tickets only; staff bookings excluded)."""
        who = self._allow(actor, Permission.READ)
        occurrences = {o.seats_id: o for o in self.occurrences()}
        capacities = {}
        starts = {}
        for o in occurrences.values():
            capacities[o.id] = o.capacity or self.template(o.template_id).capacity
            starts[o.id] = o.start

        def group(booking: Booking) -> str | None:
            for rid in booking.resource_ids:
                if rid in occurrences:
                    return occurrences[rid].id
            return None

        return occurrence_finance(
            self.engine.list(actor=who),
            group_by=group,
            capacity_of=capacities.get,
            start_of=starts.get,
            month=month,
            zone=self.engine.business().zone if zone is None else zone,
        )

    # --- waiting lists ----------------------------------------------------------------------------------------
    #
    # Rule: a waiting list is read and written only under the locks of what it waits for (an occurrence's seats
    # and quotas, a slot's resource pool), and an offer is made in the same transaction that records it. So
    # racing joins, sales, cancellations and `process_waiting_lists` calls run one after the other on a list:
    # no update is lost, and nobody is offered a seat that someone else's offer holds.

    @staticmethod
    def _entries(tx: StorageTransaction, key: str) -> list[WaitingEntry]:
        body = tx.get_document(_WAITLIST, key)
        return [] if body is None else [WaitingEntry.from_doc(d) for d in loads(body)["entries"]]

    @staticmethod
    def _save(tx: StorageTransaction, key: str, entries: list[WaitingEntry]) -> None:
        tx.put_document(_WAITLIST, key, dumps({"entries": [e.to_doc() for e in entries]}))

    def _lock_list(self, tx: StorageTransaction, key: str) -> None:
        """Take the locks of what the list *key* waits for (see the rule above)."""
        if key.startswith("slot:"):
            service = tx.get_service(key[len("slot:") :].rsplit("@", 1)[0])
            tx.lock_resources(sorted(r.id for r in tx.list_resources() if any(n.matches(r) for n in service.needs)))
        else:
            self._locked(tx, key[len("occurrence:") :])

    def join_waiting_list(
        self, occurrence: str, customer_id: str, *, ticket_type: str, quantity: int = 1, actor: Actor | None = None
    ) -> WaitingEntry:
        """
        Put a customer on an occurrence's waiting list, last in line (a customer puts only themselves).

        The list is walked at once, in the same transaction: if the seats they ask for are free and nobody
        waits ahead of them, the entry comes back already `WaitingState.OFFERED`, with a hold in their name.

        Raises:
            SalesClosedError: the occurrence is cancelled, over, or outside its sales window (as `sell`).
            InvalidInputError: an unknown ticket type, or a quantity outside 1..max_tickets.
        """
        self._allow(actor, Permission.HOLD, for_customer=customer_id)
        _positive("quantity")(quantity)
        if quantity > self.max_tickets:
            msg = f"one sale takes at most {self.max_tickets} tickets, not {quantity}"
            raise InvalidInputError(msg, field="quantity")
        check_id(occurrence, "occurrence")
        check_id(ticket_type, "ticket type")

        def join(tx: StorageTransaction) -> WaitingEntry:
            resolved = self._locked(tx, occurrence)
            resolved.template.ticket_type(ticket_type)
            now = self._now()
            self._check_on_sale(resolved, now)
            key = _occurrence_list(resolved.occurrence.id)
            joined = self._join(tx, key, customer_id, quantity, ticket_type)
            self._advance_in(tx, key, now)  # seats free for them now are offered now; if they wait, holds lapse to them
            return next(e for e in self._entries(tx, key) if e.id == joined.id)

        return find_result(self._write(join), WaitingEntry)

    def join_slot_waiting_list(
        self, service_id: str, start: datetime, customer_id: str, *, actor: Actor | None = None
    ) -> WaitingEntry:
        """Put a customer on the waiting list of a full time slot of an ordinary service (a customer: themselves)."""
        self._allow(actor, Permission.HOLD, for_customer=customer_id)
        start = to_utc(start, "start")
        key = f"slot:{service_id}@{start.isoformat()}"

        def join(tx: StorageTransaction) -> WaitingEntry:
            self._lock_list(tx, key)
            return self._join(tx, key, customer_id, 1, None)

        return find_result(self._write(join), WaitingEntry)

    def _join(
        self, tx: StorageTransaction, key: str, customer_id: str, quantity: int, ticket: str | None
    ) -> WaitingEntry:
        entries = self._entries(tx, key)
        entry = WaitingEntry(
            f"{key}#{len(entries) + 1}",
            key,
            check_id(customer_id, "customer id"),
            quantity,
            self._now(),
            ticket_type=ticket,
        )
        self._save(tx, key, [*entries, entry])
        return entry

    def waiting_list(self, key: str, *, actor: Actor | None = None) -> list[WaitingEntry]:
        """Return a waiting list (an occurrence id or external ref, or a slot key), in the order people joined."""
        check_id(key, "waiting list key")
        self._allow(actor, Permission.READ)

        def read(tx: StorageTransaction) -> list[WaitingEntry]:
            if not key.startswith("slot:"):
                return self._entries(tx, _occurrence_list(self._resolve_in(tx, key).occurrence.id))
            return self._entries(tx, key)

        return list(self._read(read))

    def process_waiting_lists(self, *, actor: Actor | None = None) -> list[Booking]:
        """
        Expire lapsed holds, then walk every open waiting list: record accepted and lapsed offers, make offers.

        An offer is a hold for the next waiting person, in the order they joined; it expires after the
        business's hold time (`HoldPolicy.ttl`), refuses a late payment, and then passes on to the next.
        Return the offers made. Safe to run from several processes at once (each list is walked under its locks).
        *actor* must be allowed to expire holds (staff or the system); the offers are made as the desk's actor.
        """
        self.engine.expire_due(actor=self._allow(actor, Permission.EXPIRE))
        offers: list[Booking] = []
        for key, body in self._read(lambda tx: tx.list_documents(_WAITLIST)):
            states = {d["state"] for d in loads(body)["entries"]}
            if states & {WaitingState.WAITING.value, WaitingState.OFFERED.value}:
                offers += self._advance(key)
        return offers

    def _advance(self, key: str) -> list[Booking]:
        """Record what became of the list's offers and offer freed seats in order: one transaction, under lock."""

        def advance(tx: StorageTransaction) -> list[Booking]:
            self._lock_list(tx, key)
            return self._advance_in(tx, key, self._now())

        return list(self._write(advance))

    def _advance_in(self, tx: StorageTransaction, key: str, now: datetime) -> list[Booking]:
        """
        `_advance` inside *tx*, whose caller holds the list's locks.

        An entry for a ticket type the template no longer sells can never be served: it is closed
        (`WaitingState.CLOSED`, a ``waitlist.closed`` message with the reason) and holds nobody up.
        """
        before = self._entries(tx, key)
        entries = list(before)
        offers: list[Booking] = []
        blocked = False
        sold = self._ticket_types_sold(tx, key)
        for i, entry in enumerate(entries):
            if entry.state is WaitingState.OFFERED and entry.booking_id is not None:
                entries[i] = attrs.evolve(entry, state=_outcome(tx.get_booking(entry.booking_id), now))
            elif entry.state is WaitingState.WAITING and sold is not None and entry.ticket_type not in sold:
                entries[i] = attrs.evolve(entry, state=WaitingState.CLOSED)
                payload = {
                    "occurrence_id": key[len("occurrence:") :],
                    "entry_id": entry.id,
                    "customer_id": entry.customer_id,
                    "reason": "ticket_type_withdrawn",
                    "ticket_type": entry.ticket_type,
                }
                self._message(tx, now, "waitlist.closed", payload)
            elif entry.state is WaitingState.WAITING and not blocked:
                try:
                    offer = self._offer_in(tx, entry, now)
                except (ConflictError, SalesClosedError):
                    blocked = True  # strictly in order: nobody behind the first who does not fit goes first
                    continue
                offers.append(offer)
                entries[i] = attrs.evolve(entry, state=WaitingState.OFFERED, booking_id=offer.id)
        if entries != before:
            self._save(tx, key, entries)
        if sold is not None and _waits(entries, sold):
            # Whoever still waits has the holds' seats once they lapse (holds made before this rule, too).
            self._no_late_payments(tx, self._resolve_in(tx, key[len("occurrence:") :]))
        return offers

    def _ticket_types_sold(self, tx: StorageTransaction, key: str) -> frozenset[str] | None:
        """The ticket type ids an occurrence's list may wait for (None for a slot's list, which has none)."""
        if key.startswith("slot:"):
            return None
        occurrence = self._occurrence_in(tx, key[len("occurrence:") :])
        if occurrence is None:
            return None
        return frozenset(t.id for t in self._template_in(tx, occurrence.template_id).ticket_types)

    def _offer_in(self, tx: StorageTransaction, entry: WaitingEntry, now: datetime) -> Booking:
        """
        Hold seats (or the slot) for *entry*, inside *tx*; the hold refuses a late payment.

        An offer that lapsed is passed on to the next person, so it must not be revived by a payment that comes
        later (`HoldPolicy.accept_late_payment` is off in the offer's own policies from its first version; an
        offer an older slotengine made and saved under the same key has it switched off here).
        """
        key = f"waitlist-offer:{entry.id}"[:200]
        if entry.list_key.startswith("slot:"):
            service_id, start = entry.list_key[len("slot:") :].rsplit("@", 1)
            offer = self._engine_in(tx, late_payments=False).hold(
                service_id,
                datetime.fromisoformat(start),
                customer_id=entry.customer_id,
                source="waitlist",
                external_ref=entry.id[:200],
                idempotency_key=key,
                actor=self.actor,
            )
        else:
            resolved = self._resolve_in(tx, entry.list_key[len("occurrence:") :])
            self._check_on_sale(resolved, now)
            offer = self._take_seats(
                tx,
                resolved,
                resolved.template.ticket_type(entry.ticket_type or ""),
                entry.quantity,
                confirm=False,
                customer_id=entry.customer_id,
                customer=None,
                source="waitlist",
                external_ref=entry.id[:200],
                idempotency_key=key,
                actor=self.actor,
                late_payments=False,
            )
        if not offer.policies.hold.accept_late_payment:
            return offer
        _refuse_late_payment(tx, offer)
        return tx.get_booking(offer.id)


def _clock(local: datetime) -> str:
    """``02:30``, or ``02:30 CET`` for a time a DST fold shows twice (which of the two it is)."""
    tz = local.tzinfo
    if isinstance(tz, ZoneInfo) and is_ambiguous(local.replace(tzinfo=None), tz):
        return f"{local:%H:%M %Z}"
    return f"{local:%H:%M}"


def _local(interval: Interval, zone: str) -> str:
    """``2026-03-05 11:00–13:00 (Europe/Paris)``: an interval as people there read it."""
    tz = get_zone(zone)
    start, end = interval.start.astimezone(tz), interval.end.astimezone(tz)
    until = _clock(end) if end.date() == start.date() else f"{end:%Y-%m-%d} {_clock(end)}"
    return f"{start:%Y-%m-%d} {_clock(start)}–{until} ({zone})"


def _local_instant(instant: datetime, zone: str) -> str:
    """``2026-03-05 11:00 (Europe/Paris)``: an instant as people there read it."""
    local = instant.astimezone(get_zone(zone))
    return f"{local:%Y-%m-%d} {_clock(local)} ({zone})"


def _lapsed(booking: Booking, now: datetime) -> bool:
    """Whether *booking* is a hold that has lapsed: swept (EXPIRED), or a pre-booking past its hold."""
    held_until = booking.hold_until
    return booking.status is BookingStatus.EXPIRED or (
        booking.status is BookingStatus.PRE_BOOKING and held_until is not None and held_until <= now
    )


def _waits(entries: Iterable[WaitingEntry], sold: Collection[str]) -> bool:
    """Whether one of *entries* waits for a ticket type in *sold* (one no longer sold waits for nothing)."""
    return any(e.state is WaitingState.WAITING and e.ticket_type in sold for e in entries)


def _refuse_late_payment(tx: StorageTransaction, booking: Booking) -> None:
    """Switch off the late payment of a lapsed hold that must never come back (its seat or its time is gone)."""
    hold = booking.policies.hold
    if hold.accept_late_payment:
        policies = attrs.evolve(booking.policies, hold=attrs.evolve(hold, accept_late_payment=False))
        tx.update_booking(
            attrs.evolve(booking, policies=policies, version=booking.version + 1), expected_version=booking.version
        )


def _outcome(booking: Booking, now: datetime) -> WaitingState:
    """What became of an offer: accepted once confirmed or paid; expired once lapsed, cancelled or expired."""
    if booking.status in (BookingStatus.CONFIRMED, BookingStatus.PAID, BookingStatus.COMPLETED, BookingStatus.NO_SHOW):
        return WaitingState.ACCEPTED
    if booking.status is BookingStatus.PRE_BOOKING and (booking.hold_until is None or booking.hold_until > now):
        return WaitingState.OFFERED
    return WaitingState.EXPIRED


def _seats(count: int) -> str:
    return f"{count} seat" if count == 1 else f"{count} seats"


def _pools(resolved: _Resolved, ticket: TicketType, quantity: int) -> dict[str, int]:
    """What *quantity* tickets of *ticket* take: units by resource id (the seats, and its quota if any)."""
    pools = {resolved.occurrence.seats_id: quantity}
    if ticket.quota_id is not None:
        pools[_quota_resource(resolved.occurrence.id, ticket.quota_id)] = quantity
    return pools


def _quota_resource(occurrence_id: str, quota_id: str) -> str:
    """The id of the resource whose units are an occurrence's seats of one `Quota`."""
    return f"{occurrence_id}#quota:{quota_id}"


def _occurrence_list(occurrence_id: str) -> str:
    return f"occurrence:{occurrence_id}"


def find_result(value: object, kind: type[_T]) -> _T:
    """Return *value*, checked to be a *kind* (the desk's reads come back untyped from a transaction)."""
    if not isinstance(value, kind):  # pragma: no cover - a programming error
        msg = f"expected {kind.__name__}, got {type(value).__name__}"
        raise TypeError(msg)
    return value
