"""
The domain values: resources and staff, what a service needs, services, customers.

All are frozen, slotted attrs classes validated at construction, so an invalid value cannot exist: a bad field
raises an `InvalidInputError` subclass and nothing is built. Collections inside them are tuples, frozensets or
read-only mappings. Their reprs are written for people (and for hypothesis' failure reports); a customer's
repr shows only its id, never personal data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from datetime import time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, TypeVar

import attrs

from slotengine._checks import shown, tuple_of
from slotengine._time import check_duration_range, get_zone
from slotengine.errors import InvalidInputError
from slotengine.money import Money

if TYPE_CHECKING:
    from slotengine.schedule import Schedule

__all__ = [
    "UNLIMITED",
    "AttributeValue",
    "Capacity",
    "Customer",
    "FrozenMap",
    "Need",
    "Resource",
    "ResourceKind",
    "ResourceRole",
    "Service",
    "ServiceUnit",
]

MAX_ID_LENGTH: Final = 200
MAX_NAME_LENGTH: Final = 500
MAX_TEXT_LENGTH: Final = 10_000


def check_text(value: object, field: str, *, max_length: int = MAX_NAME_LENGTH, allow_empty: bool = False) -> str:
    """
    Return *value* if it is an acceptable string for *field*.

    Strings are stored verbatim, with three exceptions every adapter must agree on: NUL characters (which
    PostgreSQL cannot store), lone surrogates (which neither SQL storage can) and over-long values are refused.

    Raises:
        InvalidInputError: not a string, empty where a value is needed, too long, or containing NUL or a
            lone surrogate.
    """
    if not isinstance(value, str):
        msg = f"{field} must be a string, not {type(value).__name__} {shown(value)}"
        raise InvalidInputError(msg, field=field)
    if not allow_empty and (not value or value.isspace()):  # blank: what strip() would leave empty
        msg = f"{field} must not be empty"
        raise InvalidInputError(msg, field=field)
    if len(value) > max_length:
        msg = f"{field} is {len(value)} characters long; at most {max_length} are allowed"
        raise InvalidInputError(msg, field=field)
    if "\x00" in value:
        msg = f"{field} contains a NUL character, which no storage keeps the same way"
        raise InvalidInputError(msg, field=field)
    if not value.isascii():  # ASCII text cannot hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            msg = f"{field} is not valid Unicode text (it holds a lone surrogate), which no storage can keep"
            raise InvalidInputError(msg, field=field) from None
    return value


def check_id(value: object, field: str = "id") -> str:
    """Return *value* if it is a valid identifier (a non-empty string of at most 200 characters)."""
    return check_text(value, field, max_length=MAX_ID_LENGTH)


def _optional_zone(value: object) -> str | None:
    if value is None:
        return None
    return get_zone(value).key


def _duration(value: object, field: str, *, allow_zero: bool = False) -> timedelta:
    if not isinstance(value, timedelta):
        msg = f"{field} must be a timedelta, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field=field)
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        rule = "must not be negative" if allow_zero else "must be longer than zero"
        msg = f"{field} {rule}, got {value}"
        raise InvalidInputError(msg, field=field)
    return check_duration_range(value, field)


AttributeValue: TypeAlias = str | int | bool | Decimal | Money
"""What a resource attribute may hold: text, a whole number, a flag, an exact decimal or a price."""

MAX_ATTRIBUTE_INT: Final = 2**63 - 1
"""The largest whole number (and, negated, the smallest) an attribute holds: a signed 64-bit integer in SQL."""


def _check_attribute(key: str, value: object) -> None:
    """
    Refuse an attribute value the codec could not write and read back as the same value.

    Floats are inexact (use Decimal); a NaN or infinite Decimal has no stored form that reads back as a number
    (and a NaN equals nothing, so it would match no need); a whole number beyond 64 bits fits no SQL column.
    """
    field = f"attribute {key!r}"
    if isinstance(value, float) or not isinstance(value, str | int | bool | Decimal | Money):
        msg = f"{field} must be a str, int, bool, Decimal or Money, not {type(value).__name__} {shown(value)}"
        raise InvalidInputError(msg, field=key)
    if isinstance(value, str):
        check_text(value, field, max_length=MAX_TEXT_LENGTH, allow_empty=True)
    elif isinstance(value, Decimal) and not value.is_finite():
        msg = f"{field} must be a finite number, not {value!r}"
        raise InvalidInputError(msg, field=key)
    elif isinstance(value, int) and not -MAX_ATTRIBUTE_INT <= value <= MAX_ATTRIBUTE_INT:  # a bool is 0 or 1
        msg = (
            f"{field} must be a whole number within ±{MAX_ATTRIBUTE_INT:,} (a 64-bit integer, as SQL keeps it), "
            f"got {shown(value)}"
        )
        raise InvalidInputError(msg, field=key)


class FrozenMap(Mapping[str, AttributeValue]):
    """A read-only, hashable mapping of attribute names to values (a resource's city, its price, ...)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, AttributeValue] | Iterable[tuple[str, AttributeValue]] = ()) -> None:
        data = dict(items.items() if isinstance(items, Mapping) else items)
        for key, value in data.items():
            _check_attribute(check_id(key, "attribute name"), value)
        self._data: dict[str, AttributeValue] = dict(sorted(data.items()))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> AttributeValue:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k!r}: {v!r}' for k, v in self._data.items())}}}"


def _frozen_map(value: object) -> FrozenMap:
    if isinstance(value, FrozenMap):
        return value
    if isinstance(value, Mapping):
        return FrozenMap(value)
    msg = f"attributes must be a mapping, not {type(value).__name__}"
    raise InvalidInputError(msg)


class ResourceKind(enum.StrEnum):
    """Whether a bookable thing is a thing (a room, a box, a car) or a person who renders the service."""

    RESOURCE = "resource"
    USER = "user"


class ResourceRole(enum.StrEnum):
    """A primary resource is booked on its own; an auxiliary one only together with a primary one."""

    PRIMARY = "primary"
    AUXILIARY = "auxiliary"


_E = TypeVar("_E", bound=enum.StrEnum)


class _Unlimited(enum.Enum):
    """The type of `UNLIMITED`: a capacity that never refuses a booking on load."""

    UNLIMITED = "unlimited"

    def __repr__(self) -> str:
        return "UNLIMITED"


UNLIMITED: Final = _Unlimited.UNLIMITED
"""The capacity of a resource that never refuses on load (the seeds' "allow booking busy resources")."""

Capacity: TypeAlias = int | Literal[_Unlimited.UNLIMITED]


MAX_UNITS: Final = 1_000_000_000
"""The largest capacity, units or count: a sum of two still fits every adapter's 32-bit integer columns."""


def _capacity(value: object) -> Capacity:
    if value is UNLIMITED:
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNITS:
        msg = (
            f"capacity must be a whole number from 1 to {MAX_UNITS:,}, or UNLIMITED, got {shown(value)}; "
            "to close a resource, give it no working hours"
        )
        raise InvalidInputError(msg, field="capacity")
    return value


def _to_enum(cls: type[_E], value: object, field: str) -> _E:
    try:
        return cls(str(value)) if isinstance(value, str) else cls(value)  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        msg = f"{field} must be one of {allowed}, got {value!r}"
        raise InvalidInputError(msg, field=field) from None


def _schedule(value: object) -> Schedule | None:
    if value is None:
        return None
    from slotengine.schedule import Schedule

    if isinstance(value, Schedule):
        return value
    msg = f"schedule must be a Schedule or None (inherit the business hours), not {type(value).__name__}"
    raise InvalidInputError(msg, field="schedule")


def _resource_id(value: object) -> str:
    return check_id(value, "resource id")


def _resource_name(value: object) -> str:
    return check_text(value, "resource name")


def _resource_type(value: object) -> str:
    return check_text(value, "resource type", allow_empty=True)


def _kind(value: object) -> ResourceKind:
    return _to_enum(ResourceKind, value, "kind")


def _role(value: object) -> ResourceRole:
    return _to_enum(ResourceRole, value, "role")


def _unit(value: object) -> ServiceUnit:
    return _to_enum(ServiceUnit, value, "unit")


def _need_label(value: object) -> str:
    return check_text(value, "need label", allow_empty=True)


def _count(value: object) -> int:
    return _positive_int(value, "count")


def _units(value: object) -> int:
    return _positive_int(value, "units")


def _service_id(value: object) -> str:
    return check_id(value, "service id")


def _service_name(value: object) -> str:
    return check_text(value, "service name")


def _service_duration(value: object) -> timedelta:
    return _duration(value, "duration")


def _min_duration(value: object) -> timedelta | None:
    return None if value is None else _duration(value, "min_duration")


def _max_duration(value: object) -> timedelta | None:
    return None if value is None else _duration(value, "max_duration")


def _slot_step(value: object) -> timedelta | None:
    return None if value is None else _duration(value, "slot_step")


def _horizon(value: object) -> timedelta | None:
    return None if value is None else _duration(value, "horizon")


def _buffer_before(value: object) -> timedelta:
    return _duration(value, "buffer_before", allow_zero=True)


def _buffer_after(value: object) -> timedelta:
    return _duration(value, "buffer_after", allow_zero=True)


def _min_notice(value: object) -> timedelta:
    return _duration(value, "min_notice", allow_zero=True)


def _check_in(value: object) -> time | None:
    return _optional_time(value, "check_in")


def _check_out(value: object) -> time | None:
    return _optional_time(value, "check_out")


def _buffers_outside_hours(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"buffers_outside_hours must be True or False, not {value!r}"
        raise InvalidInputError(msg, field="buffers_outside_hours")
    return value


def _customer_id(value: object) -> str:
    return check_id(value, "customer id")


def _customer_name(value: object) -> str:
    return check_text(value, "customer name", allow_empty=True)


def _language(value: object) -> str:
    return check_text(value, "language", allow_empty=True)


@attrs.frozen(repr=False)
class Resource:
    """
    Something bookable: a room, a box, a car, a seat block, or a member of staff (``kind="user"``).

    Args:
        id: Unique within the business.
        name: What people see.
        kind: `ResourceKind.RESOURCE` for things, `ResourceKind.USER` for staff.
        type: A free label that needs can match on (``"box"``, ``"dentist"``, ``"car"``).
        role: `ResourceRole.AUXILIARY` if it is only ever booked together with a primary resource.
        capacity: How many units may be booked at once (1 for a chair, 20 for a room's seats), or
            `UNLIMITED` for a resource that accepts any overlap (a conference hall).
        attributes: Free facts that needs may filter on (``{"city": "Lyon", "seats": 5}``): text, flags, whole
            numbers within a signed 64-bit integer, finite Decimals and Money.
        schedule: Its own working hours, or None to inherit the business hours.
        zone: Its time zone; defaults to its schedule's zone (None with no schedule: the business zone).

    Raises:
        InvalidInputError: any field is invalid (capacity 0, negative, a float or a bool; an unknown zone;
            a zone that disagrees with the schedule's).
    """

    id: str = attrs.field(converter=_resource_id)
    name: str = attrs.field(converter=_resource_name)
    kind: ResourceKind = attrs.field(default=ResourceKind.RESOURCE, converter=_kind)
    type: str = attrs.field(default="", converter=_resource_type)
    role: ResourceRole = attrs.field(default=ResourceRole.PRIMARY, converter=_role)
    capacity: Capacity = attrs.field(default=1, converter=_capacity)
    attributes: FrozenMap = attrs.field(factory=FrozenMap, converter=_frozen_map)
    schedule: Schedule | None = attrs.field(default=None, converter=_schedule)
    zone: str | None = attrs.field(default=None, converter=_optional_zone)

    def __attrs_post_init__(self) -> None:
        if self.schedule is not None:
            if self.zone is None:
                object.__setattr__(self, "zone", self.schedule.zone)
            elif self.zone != self.schedule.zone:
                msg = (
                    f"resource {self.id!r} is in {self.zone} but its schedule is in {self.schedule.zone}; "
                    "a resource's hours are kept in its own zone"
                )
                raise InvalidInputError(msg, field="zone")

    @property
    def unlimited(self) -> bool:
        """Whether this resource never refuses a booking on load."""
        return self.capacity is UNLIMITED

    def __repr__(self) -> str:
        parts = [f"{self.id!r}"]
        if self.kind is not ResourceKind.RESOURCE:
            parts.append(f"kind={self.kind.value!r}")
        if self.type:
            parts.append(f"type={self.type!r}")
        if self.role is not ResourceRole.PRIMARY:
            parts.append(f"role={self.role.value!r}")
        if self.capacity != 1:
            parts.append(f"capacity={self.capacity!r}")
        if self.zone:
            parts.append(f"zone={self.zone!r}")
        return f"Resource({', '.join(parts)})"


def _id_set(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = f"resource_ids must be a collection of ids, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="resource_ids")
    return frozenset(check_id(v, "resource id") for v in value)


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNITS:
        msg = f"{field} must be a whole number from 1 to {MAX_UNITS:,}, got {shown(value)}"
        raise InvalidInputError(msg, field=field)
    return value


def _kind_of(value: AttributeValue) -> type:
    """The kind an attribute value is compared as (`Need.matches`): an int and a Decimal are both numbers."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | Decimal):
        return Decimal
    return str if isinstance(value, str) else Money


def _same_attribute(wanted: AttributeValue, found: AttributeValue) -> bool:
    """Whether *found* is *wanted*: the same kind and an equal value (see `Need.matches`)."""
    if _kind_of(wanted) is not _kind_of(found):
        return False
    return wanted == found  # never a NaN: `FrozenMap` refuses them


@attrs.frozen(repr=False)
class Need:
    """
    What a service needs: *count* distinct resources chosen from a pool, each taking *units* of capacity.

    The pool is every resource whose id is in *resource_ids* (when given), whose type is *type* (when
    given) and whose attributes include all of *attributes*. "Any free dentist" is
    ``Need(type="dentist")``; "2 of these 5 instructors" is ``Need(resource_ids=[...], count=2)``; "3 seats
    in the hall" is ``Need(resource_ids=["hall"], units=3)``. A service with several needs takes one choice
    for every need, all free for the whole interval (a car **and** a driver).

    Raises:
        InvalidInputError: the pool is not named at all, or count/units are not positive integers.
    """

    resource_ids: frozenset[str] = attrs.field(factory=frozenset, converter=_id_set)
    type: str | None = attrs.field(default=None)
    attributes: FrozenMap = attrs.field(factory=FrozenMap, converter=_frozen_map)
    count: int = attrs.field(default=1, converter=_count)
    units: int = attrs.field(default=1, converter=_units)
    label: str = attrs.field(default="", converter=_need_label)

    def __attrs_post_init__(self) -> None:
        if self.type is not None:
            check_text(self.type, "need type")
        if not self.resource_ids and self.type is None and not self.attributes:
            msg = "a need must name its pool: resource_ids, a type, or attributes to match"
            raise InvalidInputError(msg)
        if self.resource_ids and len(self.resource_ids) < self.count:
            msg = f"a need for {self.count} resources names only {len(self.resource_ids)} of them"
            raise InvalidInputError(msg, field="count")

    def matches(self, resource: Resource) -> bool:
        """
        Return whether *resource* belongs to this need's pool.

        An attribute matches when the resource has it with a value of the same kind, equal to the wanted one.
        The kinds are text, true/false, numbers (`int` and `Decimal` alike: ``4`` matches ``Decimal("4.0")``)
        and `Money`. A flag is not a number, though Python counts ``True == 1``:
        ``covered=True`` does not match ``covered=1``, nor ``seats=1`` match ``seats=True``.
        """
        given: object = resource
        if not isinstance(given, Resource):
            msg = f"a need matches a Resource, not {type(given).__name__} {given!r}"
            raise InvalidInputError(msg, field="resource")
        if self.resource_ids and resource.id not in self.resource_ids:
            return False
        if self.type is not None and resource.type != self.type:
            return False
        found = resource.attributes
        return all(key in found and _same_attribute(wanted, found[key]) for key, wanted in self.attributes.items())

    def __repr__(self) -> str:
        parts = []
        if self.label:
            parts.append(f"label={self.label!r}")
        if self.resource_ids:
            parts.append(f"resource_ids={sorted(self.resource_ids)!r}")
        if self.type is not None:
            parts.append(f"type={self.type!r}")
        if self.attributes:
            parts.append(f"attributes={self.attributes!r}")
        if self.count != 1:
            parts.append(f"count={self.count}")
        if self.units != 1:
            parts.append(f"units={self.units}")
        return f"Need({', '.join(parts)})"


class ServiceUnit(enum.StrEnum):
    """How a service is measured: in minutes on the clock, in whole local days, or in nights."""

    MINUTES = "minutes"
    DAYS = "days"
    NIGHTS = "nights"


def _needs(value: object) -> tuple[Need, ...]:
    needs = tuple_of(value, Need, "needs", single=True)
    if not needs:
        msg = "a service needs at least one Need (which resources or staff it takes)"
        raise InvalidInputError(msg, field="needs")
    return needs


def _price(value: object) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money):
        msg = f"price must be Money or None, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="price")
    if value.amount < 0:
        msg = f"price must not be negative, got {value}; a free service costs Money(0, ...)"
        raise InvalidInputError(msg, field="price")
    return value


def _optional_time(value: object, field: str) -> time | None:
    if value is None:
        return None
    if not isinstance(value, time) or value.tzinfo is not None:
        msg = f"{field} must be a local wall time (a naive datetime.time), got {value!r}"
        raise InvalidInputError(msg, field=field)
    return value


_ONE_DAY: Final = timedelta(days=1)


@attrs.frozen(repr=False)
class Service:
    """
    What a customer books: a duration, a price, buffers, and what it needs.

    Args:
        id: Unique within the business.
        name: What people see.
        needs: One `Need` per pool it takes from (a car and a driver are two needs).
        duration: The default length. For ``unit=DAYS``/``NIGHTS`` a whole number of days.
        min_duration, max_duration: The range a client may choose from (default: only *duration*).
        unit: `ServiceUnit.MINUTES` (clock time), `ServiceUnit.DAYS` (whole local days) or
            `ServiceUnit.NIGHTS` (check-in to check-out).
        slot_step: The distance between offered starts; independent of the duration (default: duration).
        buffer_before, buffer_after: Time kept free before and after every booking of this service.
        buffers_outside_hours: Whether the buffers may fall outside working hours (cleaning after closing).
        price: The price of the default duration, or None.
        min_notice: How long before its start a booking must be made.
        horizon: How far ahead bookings are taken (None: no limit).
        check_in, check_out: For ``unit=NIGHTS``, the local times a stay starts and ends: both required
            then, and refused for the other units.

    Raises:
        InvalidInputError: any field is invalid (a non-positive duration, a negative buffer, a step that
            is not whole days for day services, min > default > max, a check time missing for nights or given
            for another unit; ``field`` names it).
    """

    id: str = attrs.field(converter=_service_id)
    name: str = attrs.field(converter=_service_name)
    needs: tuple[Need, ...] = attrs.field(converter=_needs)
    duration: timedelta = attrs.field(converter=_service_duration)
    min_duration: timedelta | None = attrs.field(default=None, converter=_min_duration)
    max_duration: timedelta | None = attrs.field(default=None, converter=_max_duration)
    unit: ServiceUnit = attrs.field(default=ServiceUnit.MINUTES, converter=_unit)
    slot_step: timedelta | None = attrs.field(default=None, converter=_slot_step)
    buffer_before: timedelta = attrs.field(default=timedelta(0), converter=_buffer_before)
    buffer_after: timedelta = attrs.field(default=timedelta(0), converter=_buffer_after)
    buffers_outside_hours: bool = attrs.field(default=False, converter=_buffers_outside_hours)
    price: Money | None = attrs.field(default=None, converter=_price)
    min_notice: timedelta = attrs.field(default=timedelta(0), converter=_min_notice)
    horizon: timedelta | None = attrs.field(default=None, converter=_horizon)
    check_in: time | None = attrs.field(default=None, converter=_check_in)
    check_out: time | None = attrs.field(default=None, converter=_check_out)

    def __attrs_post_init__(self) -> None:
        low = self.min_duration or self.duration
        high = self.max_duration or self.duration
        if not low <= self.duration <= high:
            msg = (
                f"service {self.id!r}: the default duration {self.duration} must lie between "
                f"min_duration {low} and max_duration {high}"
            )
            raise InvalidInputError(msg, field="duration")
        if self.unit is not ServiceUnit.MINUTES:
            for field in ("duration", "min_duration", "max_duration", "slot_step"):
                value = getattr(self, field)
                if value is not None and value % _ONE_DAY:
                    msg = f"service {self.id!r} is booked in whole {self.unit.value}: {field} {value} is not"
                    raise InvalidInputError(msg, field=field)
        # Both times for nights, neither otherwise: a lone time, or one on a service that never reads it, would
        # be kept, stored and written out while meaning nothing.
        nights = self.unit is ServiceUnit.NIGHTS
        for field in ("check_in", "check_out"):
            given = getattr(self, field) is not None
            if nights and not given:
                msg = f"service {self.id!r}: check_in and check_out times are required for nights; {field} is missing"
                raise InvalidInputError(msg, field=field)
            if given and not nights:
                msg = (
                    f"service {self.id!r}: check_in and check_out only apply to unit 'nights', "
                    f"and this service is in {self.unit.value}; remove {field}"
                )
                raise InvalidInputError(msg, field=field)
        if nights and self.check_out is not None and self.check_in is not None and self.check_out > self.check_in:
            msg = (
                f"service {self.id!r}: check_out {self.check_out:%H:%M} is after check_in {self.check_in:%H:%M}, "
                "so one stay would still hold the room when the next one arrives; check out at or before check-in"
            )
            raise InvalidInputError(msg, field="check_out")
        if self.horizon is not None and self.horizon <= self.min_notice:
            msg = f"service {self.id!r}: the horizon {self.horizon} leaves nothing after min_notice {self.min_notice}"
            raise InvalidInputError(msg, field="horizon")

    @property
    def step(self) -> timedelta:
        """
        The distance between offered starts.

        The slot step when one is set; otherwise the duration for services in minutes (back-to-back fixed
        slots) and one day for whole-day services (a stay may start any day).
        """
        if self.slot_step is not None:
            return self.slot_step
        return self.duration if self.unit is ServiceUnit.MINUTES else _ONE_DAY

    def allows_duration(self, duration: timedelta) -> bool:
        """Return whether a client may book this service for *duration*."""
        low = self.min_duration or self.duration
        high = self.max_duration or self.duration
        if self.unit is not ServiceUnit.MINUTES and duration % _ONE_DAY:
            return False
        return low <= duration <= high

    def __repr__(self) -> str:
        parts = [f"{self.id!r}", f"duration={self.duration}"]
        if self.unit is not ServiceUnit.MINUTES:
            parts.append(f"unit={self.unit.value!r}")
        if self.slot_step is not None:
            parts.append(f"slot_step={self.slot_step}")
        if self.buffer_before or self.buffer_after:
            parts.append(f"buffers=({self.buffer_before}, {self.buffer_after})")
        parts.append(f"needs={list(self.needs)!r}")
        return f"Service({', '.join(parts)})"


def _contacts(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = "contacts must be a sequence of strings (e-mail addresses, phone numbers, handles)"
        raise InvalidInputError(msg, field="contacts")
    return tuple(check_text(v, "contact") for v in value)


@attrs.frozen(repr=False)
class Customer:
    """
    Someone who books: an id, a name, how to reach them, and their time zone and language.

    Its repr shows the id only, so personal data never lands in logs or test reports.

    Raises:
        InvalidInputError: an empty id, a NUL character or an over-long field, or an unknown zone.
    """

    id: str = attrs.field(converter=_customer_id)
    name: str = attrs.field(default="", converter=_customer_name)
    contacts: tuple[str, ...] = attrs.field(default=(), converter=_contacts)
    zone: str | None = attrs.field(default=None, converter=_optional_zone)
    language: str = attrs.field(default="", converter=_language)

    def __repr__(self) -> str:
        return f"Customer({self.id!r})"
