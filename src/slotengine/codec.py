"""
Plain, JSON-ready forms of slotengine's values, and back.

Storage adapters keep catalogues and bookings as JSON documents made by these functions, and the engine
saves the first result of an idempotent call the same way. Every ``*_from_dict`` goes back through the
values' own constructors, so a stored document is validated again when it is read: a corrupt row raises an
`InvalidInputError`, never yields a broken value. Instants are ISO 8601 strings in UTC, durations whole
microseconds, money a ``[amount, currency]`` pair of strings, decimals strings. Documents are read back with
exactly the JSON types written: a ``true`` is not the number 1, a float is never a duration or an amount, a
string is not a list of ids, and a pair has two items; anything else is refused, never loaded another way.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from slotengine._time import to_utc
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment
from slotengine.business import Business
from slotengine.errors import InvalidInputError, SlotEngineError
from slotengine.lifecycle import TransitionRecord
from slotengine.model import UNLIMITED, Need, Resource, Service, check_id
from slotengine.money import Money
from slotengine.notifications import NotificationRule, QuietHours, Template
from slotengine.outbox import OutboxMessage
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationPolicy,
    HoldPolicy,
    NoShowPolicy,
    Policies,
    RefundTier,
    ReschedulePolicy,
)
from slotengine.recurrence import Recurrence
from slotengine.schedule import DateOverride, RecurringHours, Schedule, TimeOff, TimeRange, WeeklyHours

__all__ = [
    "booking_from_dict",
    "booking_to_dict",
    "business_from_dict",
    "business_to_dict",
    "dumps",
    "loads",
    "outbox_from_dict",
    "outbox_to_dict",
    "resource_from_dict",
    "resource_to_dict",
    "schedule_from_dict",
    "schedule_to_dict",
    "service_from_dict",
    "service_to_dict",
    "transition_from_dict",
    "transition_to_dict",
]

Doc = dict[str, Any]
_V = TypeVar("_V")
_US = timedelta(microseconds=1)


_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(doc: Doc) -> str:
    """
    Return *doc* as compact, key-sorted JSON (stable text, so equal values give equal rows).

    Only what `loads` gives back unchanged is written: a NaN or infinite float (not JSON), an integer too long
    for Python to write, a value JSON has no type for, a circular document, or a key that is not a string
    (JSON would write ``1`` as ``"1"``, and it would read back as another key) raise `InvalidInputError`.
    The values' own checks keep every document made by the ``*_to_dict`` functions within these bounds.

    Raises:
        InvalidInputError: *doc* holds something JSON cannot write and read back as it was.
    """
    text = _dumps_made(doc)
    _check_keys(doc)
    return text


def _dumps_made(doc: Doc) -> str:
    """
    `dumps` for a document a ``*_to_dict`` function made, whose keys are string literals: no walk over its keys.

    The walk is a sixth of a booking's Python on the way to storage; what it guards against cannot be in these
    documents (a property test holds the functions to it).

    Raises:
        InvalidInputError: *doc* holds something JSON cannot write (as `dumps`).
    """
    try:
        return _ENCODER.encode(doc)
    except (TypeError, ValueError) as exc:  # ValueError: NaN, circular, or an int beyond Python's digit limit
        msg = "cannot store this document as JSON: "
        with contextlib.suppress(ValueError):  # str() of an error about an enormous integer can fail too
            msg += str(exc)[:300]
        raise InvalidInputError(msg) from None
    except RecursionError:
        msg = "cannot store this document as JSON: nested too deeply"
        raise InvalidInputError(msg) from None


def _check_keys(doc: object) -> None:
    """Refuse a mapping key that is not a string in *doc* (encoded, so free of cycles), where it is."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    msg = (
                        f"cannot store this document as JSON: the key {_show(key)} is not a string "
                        "(JSON would write it as one, read back as another key)"
                    )
                    raise InvalidInputError(msg, field="key")
                if isinstance(value, dict | list | tuple):
                    stack.append(value)
        elif isinstance(node, list | tuple):
            stack.extend(v for v in node if isinstance(v, dict | list | tuple))


def loads(text: str) -> Doc:
    """Parse JSON text made by `dumps`."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        msg = f"not a stored slotengine document: {exc}"
        raise InvalidInputError(msg) from None
    except RecursionError:  # slotengine never nests that deep: a damaged or foreign document
        msg = "not a stored slotengine document: nested too deeply"
        raise InvalidInputError(msg) from None
    if not isinstance(doc, dict):
        msg = "a stored slotengine document must be a JSON object"
        raise InvalidInputError(msg)
    return doc


_DECODING_ERRORS: Final = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError)
"""What a damaged document can make Python raise while it is rebuilt (decimal.InvalidOperation is arithmetic)."""


def _guard(build: Any, doc: Any, what: str) -> Any:
    """
    Call *build* on *doc*, turning any mistake in a stored document into an `InvalidInputError`.

    The decoders below check every JSON type themselves; this is the net under them, so that a damaged row
    never escapes as a raw ``IndexError``, ``OverflowError`` or ``decimal.InvalidOperation``.
    """
    try:
        return build(doc)
    except InvalidInputError:
        raise
    except SlotEngineError as exc:  # a value's own rule, such as a transition record's lifecycle edge
        msg = f"malformed stored {what}: {exc}"
        raise InvalidInputError(msg) from None
    except KeyError as exc:  # the decoders read every key by name: a damaged document lacks one
        key = exc.args[0] if exc.args else "?"
        msg = f"malformed stored {what}: the field {_show(key)} is missing"
        raise InvalidInputError(msg, field=str(key)) from None
    except _DECODING_ERRORS as exc:
        msg = f"malformed stored {what}: {type(exc).__name__}"
        with contextlib.suppress(ValueError):  # str() of an error about an enormous integer can fail too
            msg = f"{msg}: {exc}"[:300]
        raise InvalidInputError(msg) from None


# --- strict JSON types -------------------------------------------------------------------------------------------
#
# A stored document is read back with the types `*_to_dict` wrote and nothing else: a JSON true is not the
# number 1, a float is never a duration or an amount, a string is not a list of ids. Anything else raises
# InvalidInputError naming the field, so a damaged row is reported rather than loaded with another value.

_MAX_US: Final = timedelta.max // _US
_DECIMAL: Final = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:E[+-]?\d+)?", re.IGNORECASE | re.ASCII)
"""A decimal as `Decimal.__str__` writes it, in ASCII digits: ``\\d`` alone takes ``"１０"`` and ``"٥٠"``."""


def _show(value: Any) -> str:
    """Describe *value* for a message, briefly (never the repr of a huge integer, which Python refuses)."""
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"a number of about {value.bit_length() * 3 // 10} digits"
    if isinstance(value, float | str):
        text = repr(value)
        return text if len(text) <= 60 else f"{text[:57]}..."
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def _wrong(field: str, expected: str, value: Any) -> InvalidInputError:
    return InvalidInputError(f"stored {field} must be {expected}, got {_show(value)}", field=field)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _wrong(field, "a string", value)
    return value


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _whole(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(field, "a whole number", value)
    return value


def _optional_whole(value: Any, field: str) -> int | None:
    return None if value is None else _whole(value, field)


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(field, "true or false", value)
    return value


def _list(value: Any, field: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong(field, "a list", value)
    if length is not None and len(value) != length:
        msg = f"stored {field} must be a list of {length} items, got {len(value)}"
        raise InvalidInputError(msg, field=field)
    return value


def _object(value: Any, field: str) -> Doc:
    if not isinstance(value, dict):
        raise _wrong(field, "an object", value)
    return value


def _decimal(value: Any, field: str) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise _wrong(field, "a decimal number written as a string", value)
    try:
        return Decimal(value)
    except ArithmeticError:  # decimal.InvalidOperation: an exponent beyond what Decimal holds
        raise _wrong(field, "a decimal number Python can hold", value) from None


def _iso(parse: Callable[[str], _V], value: Any, field: str, expected: str) -> _V:
    """*value* read by *parse* (a ``fromisoformat``), or an `InvalidInputError` naming *field* if it cannot be."""
    text = _text(value, field)
    try:
        return parse(text)
    except ValueError:
        raise _wrong(field, expected, value) from None


def _instant(value: datetime | None) -> str | None:
    return None if value is None else to_utc(value).isoformat()


def _from_instant(value: Any, field: str = "instant") -> datetime | None:
    return None if value is None else _instant_required(value, field)


def _instant_required(value: Any, field: str = "instant") -> datetime:
    instant = _iso(datetime.fromisoformat, value, field, "an ISO 8601 instant")
    if instant.tzinfo is None:
        raise _wrong(field, "an instant with its UTC offset", value)
    return instant


def _from_date(value: Any, field: str) -> date:
    return _iso(date.fromisoformat, value, field, "an ISO 8601 date")


def _duration(value: timedelta | None) -> int | None:
    return None if value is None else value // _US


def _from_duration(value: Any, field: str = "duration") -> timedelta | None:
    if value is None:
        return None
    micros = _whole(value, field)
    if not -_MAX_US <= micros <= _MAX_US:
        raise _wrong(field, f"a number of microseconds within ±{_MAX_US}", value)
    return timedelta(microseconds=micros)


def _money(value: Money | None) -> list[str] | None:
    return None if value is None else [str(value.amount), value.currency]


def _from_money(value: Any, field: str = "money") -> Money | None:
    if value is None:
        return None
    amount, currency = _list(value, field, 2)
    return Money(_decimal(amount, f"{field} amount"), _text(currency, f"{field} currency"))


def _time(value: time | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_time(value: Any, field: str = "time") -> time | None:
    return None if value is None else _iso(time.fromisoformat, value, field, "an ISO 8601 time of day")


def _attribute(value: Any) -> Any:
    if isinstance(value, Money):
        return {"money": _money(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _from_attribute(value: Any, field: str) -> Any:
    if isinstance(value, dict):
        if list(value) == ["money"]:
            return _from_money(value["money"], field)
        if list(value) == ["decimal"]:
            return _decimal(value["decimal"], field)
        msg = f"stored {field} must hold one key, 'money' or 'decimal', got {sorted(map(str, value))!r}"
        raise InvalidInputError(msg, field=field)
    if isinstance(value, float) or not isinstance(value, str | int):  # bool is an int
        raise _wrong(field, "a string, a whole number, true or false, or a money or decimal object", value)
    return value


def _from_attributes(value: Any, field: str) -> dict[str, Any]:
    return {k: _from_attribute(v, f"{field} {k!r}") for k, v in _object(value, field).items()}


def _ids(value: Any, field: str) -> tuple[str, ...]:
    return tuple(_text(v, field) for v in _list(value, field))


# --- schedules -----------------------------------------------------------------------------------------------


def _range(value: TimeRange) -> list[str]:
    return [value.start.isoformat(), value.end.isoformat()]


def _from_range(value: Any, field: str = "hours") -> TimeRange:
    start, end = _list(value, field, 2)
    return TimeRange(
        _iso(time.fromisoformat, start, f"{field} start", "an ISO 8601 time of day"),
        _iso(time.fromisoformat, end, f"{field} end", "an ISO 8601 time of day"),
    )


def _recurrence(value: Recurrence) -> Doc:
    return {
        "rule": value.rule,
        "dtstart": value.dtstart.isoformat(),
        "zone": value.zone,
        "exdates": [d.isoformat() for d in value.exdates],
        "rdates": [d.isoformat() for d in value.rdates],
    }


def _wall(value: Any, field: str) -> datetime:
    return _iso(datetime.fromisoformat, value, field, "an ISO 8601 date and time")


def _from_recurrence(value: Any) -> Recurrence:
    doc = _object(value, "recurrence")
    return Recurrence(
        _text(doc["rule"], "rule"),
        _wall(doc["dtstart"], "dtstart"),
        _text(doc["zone"], "zone"),
        exdates=tuple(_wall(d, "exdate") for d in _list(doc["exdates"], "exdates")),
        rdates=tuple(_wall(d, "rdate") for d in _list(doc["rdates"], "rdates")),
    )


def _time_off(value: TimeOff) -> Doc:
    return {
        "start": _instant(value.start),
        "end": _instant(value.end),
        "first_day": None if value.first_day is None else value.first_day.isoformat(),
        "last_day": None if value.last_day is None else value.last_day.isoformat(),
        "reason": value.reason,
    }


def _from_time_off(value: Any) -> TimeOff:
    doc = _object(value, "time off")
    reason = _text(doc["reason"], "reason")
    if doc["first_day"] is not None:
        if doc["start"] is not None or doc["end"] is not None:
            msg = "stored time off must hold either days or instants, not both"
            raise InvalidInputError(msg, field="time_off")
        last = None if doc["last_day"] is None else _from_date(doc["last_day"], "last_day")
        return TimeOff.days(_from_date(doc["first_day"], "first_day"), last, reason=reason)
    if doc["last_day"] is not None:
        raise _wrong("first_day", "set with last_day", None)
    return TimeOff(_from_instant(doc["start"], "start"), _from_instant(doc["end"], "end"), reason=reason)


def schedule_to_dict(value: Schedule) -> Doc:
    """Return a `Schedule` as a plain document."""
    return {
        "zone": value.zone,
        "weekly": [[_range(r) for r in day] for day in value.weekly.days],
        "overrides": [{"day": o.day.isoformat(), "ranges": [_range(r) for r in o.ranges]} for o in value.overrides],
        "time_off": [_time_off(t) for t in value.time_off],
        "recurring": [
            {
                "recurrence": _recurrence(r.recurrence),
                "hours": _range(r.hours),
                "closed": r.closed,
                "reason": r.reason,
            }
            for r in value.recurring
        ],
    }


def schedule_from_dict(doc: Doc) -> Schedule:
    """Build a `Schedule` from `schedule_to_dict`'s document."""

    def build(d: Doc) -> Schedule:
        d = _object(d, "schedule")
        overrides = [_object(o, "override") for o in _list(d["overrides"], "overrides")]
        recurring = [_object(r, "recurring hours") for r in _list(d["recurring"], "recurring")]
        return Schedule(
            _text(d["zone"], "zone"),
            WeeklyHours(tuple(tuple(_from_range(r) for r in _list(w, "day")) for w in _list(d["weekly"], "weekly"))),
            overrides=tuple(
                DateOverride(_from_date(o["day"], "day"), tuple(_from_range(r) for r in _list(o["ranges"], "ranges")))
                for o in overrides
            ),
            time_off=tuple(_from_time_off(t) for t in _list(d["time_off"], "time_off")),
            recurring=tuple(
                RecurringHours(
                    _from_recurrence(r["recurrence"]),
                    _from_range(r["hours"]),
                    closed=_flag(r["closed"], "closed"),
                    reason=_text(r["reason"], "reason"),
                )
                for r in recurring
            ),
        )

    return _guard(build, doc, "schedule")  # type: ignore[no-any-return]


# --- policies and the business ---------------------------------------------------------------------------------


def _policies(value: Policies) -> Doc:
    c = value.cancellation
    return {
        "hold": {"ttl": _duration(value.hold.ttl), "accept_late_payment": value.hold.accept_late_payment},
        "confirmation": {
            "mode": value.confirmation.mode.value,
            "deposit_percent": str(value.confirmation.deposit_percent),
        },
        "cancellation": {
            "tiers": [[_duration(t.before), str(t.refund_percent)] for t in c.tiers],
            "otherwise_percent": str(c.otherwise_percent),
            "deadline": _duration(c.deadline),
            "no_show_fee_percent": str(c.no_show_fee_percent),
            "charge_unpaid_penalty": c.charge_unpaid_penalty,
        },
        "reschedule": {"deadline": _duration(value.reschedule.deadline), "max_times": value.reschedule.max_times},
        "no_show": {"grace": _duration(value.no_show.grace)},
        "allow_override": value.allow_override,
    }


def _from_tier(value: Any) -> RefundTier:
    before, percent = _list(value, "refund tier", 2)
    return RefundTier(_from_duration(before, "tier before"), _decimal(percent, "refund_percent"))


def _from_policies(value: Any) -> Policies:
    doc = _object(value, "policies")
    hold = _object(doc["hold"], "hold")
    confirmation = _object(doc["confirmation"], "confirmation")
    c = _object(doc["cancellation"], "cancellation")
    reschedule = _object(doc["reschedule"], "reschedule")
    return Policies(
        hold=HoldPolicy(
            _from_duration(hold["ttl"], "ttl"), _flag(hold["accept_late_payment"], "accept_late_payment")
        ),
        confirmation=ConfirmationPolicy(
            _text(confirmation["mode"], "mode"), _decimal(confirmation["deposit_percent"], "deposit_percent")
        ),
        cancellation=CancellationPolicy(
            tiers=tuple(_from_tier(t) for t in _list(c["tiers"], "tiers")),
            otherwise_percent=_decimal(c["otherwise_percent"], "otherwise_percent"),
            deadline=_from_duration(c["deadline"], "deadline"),
            no_show_fee_percent=_decimal(c["no_show_fee_percent"], "no_show_fee_percent"),
            charge_unpaid_penalty=_flag(c["charge_unpaid_penalty"], "charge_unpaid_penalty"),
        ),
        reschedule=ReschedulePolicy(
            _from_duration(reschedule["deadline"], "deadline"), _optional_whole(reschedule["max_times"], "max_times")
        ),
        no_show=NoShowPolicy(_from_duration(_object(doc["no_show"], "no_show")["grace"], "grace")),
        allow_override=_flag(doc.get("allow_override", False), "allow_override"),
    )


def _rule(value: NotificationRule) -> Doc:
    return {
        "id": value.id,
        "subject": value.template.subject,
        "body": value.template.body,
        "on": sorted(e.value for e in value.on),
        "offset": _duration(value.offset),
        "condition": value.condition.value,
        "recipient": value.recipient.value,
        "channel": value.channel,
        "service_ids": None if value.service_ids is None else sorted(value.service_ids),
        "quiet_hours": value.quiet_hours,
    }


def _from_rule(value: Any) -> NotificationRule:
    doc = _object(value, "rule")
    return NotificationRule(
        _text(doc["id"], "rule id"),
        Template(_text(doc["subject"], "subject"), _text(doc["body"], "body")),
        on=_ids(doc["on"], "on"),
        offset=_from_duration(doc["offset"], "offset"),
        condition=_text(doc["condition"], "condition"),
        recipient=_text(doc["recipient"], "recipient"),
        channel=_text(doc["channel"], "channel"),
        service_ids=None if doc["service_ids"] is None else _ids(doc["service_ids"], "service_ids"),
        quiet_hours=_flag(doc["quiet_hours"], "quiet_hours"),
    )


def business_to_dict(value: Business) -> Doc:
    """Return a `Business` as a plain document."""
    return {
        "name": value.name,
        "zone": value.zone,
        "hours": schedule_to_dict(value.hours),
        "policies": _policies(value.policies),
        "rules": [_rule(r) for r in value.rules],
        "quiet_hours": None
        if value.quiet_hours is None
        else [value.quiet_hours.start.isoformat(), value.quiet_hours.end.isoformat()],
        "links": dict(value.links),
        "agent": value.agent,
        "language": value.language,
    }


def business_from_dict(doc: Doc) -> Business:
    """Build a `Business` from `business_to_dict`'s document."""

    def build(d: Doc) -> Business:
        d = _object(d, "business")
        quiet = None if d.get("quiet_hours") is None else _list(d["quiet_hours"], "quiet_hours", 2)
        links = _object(d.get("links", {}), "links")
        return Business(
            _text(d["name"], "name"),
            _text(d["zone"], "zone"),
            schedule_from_dict(d["hours"]),
            _from_policies(d["policies"]),
            rules=tuple(_from_rule(r) for r in _list(d.get("rules", []), "rules")),
            quiet_hours=None
            if quiet is None
            else QuietHours(_from_time(quiet[0], "quiet_hours"), _from_time(quiet[1], "quiet_hours")),
            links={k: _text(v, f"link {k!r}") for k, v in links.items()},
            agent=_optional_text(d.get("agent"), "agent"),
            language=_text(d.get("language", "en"), "language"),
        )

    return _guard(build, doc, "business")  # type: ignore[no-any-return]


# --- catalogue ---------------------------------------------------------------------------------------------------


def resource_to_dict(value: Resource) -> Doc:
    """Return a `Resource` as a plain document."""
    return {
        "id": value.id,
        "name": value.name,
        "kind": value.kind.value,
        "type": value.type,
        "role": value.role.value,
        "capacity": "unlimited" if value.capacity is UNLIMITED else value.capacity,
        "attributes": {k: _attribute(v) for k, v in value.attributes.items()},
        "schedule": None if value.schedule is None else schedule_to_dict(value.schedule),
        "zone": value.zone,
    }


def resource_from_dict(doc: Doc) -> Resource:
    """Build a `Resource` from `resource_to_dict`'s document."""

    def build(d: Doc) -> Resource:
        d = _object(d, "resource")
        return Resource(
            _text(d["id"], "id"),
            _text(d["name"], "name"),
            kind=_text(d["kind"], "kind"),
            type=_text(d["type"], "type"),
            role=_text(d["role"], "role"),
            capacity=UNLIMITED if d["capacity"] == "unlimited" else _whole(d["capacity"], "capacity"),
            attributes=_from_attributes(d["attributes"], "attribute"),
            schedule=None if d["schedule"] is None else schedule_from_dict(d["schedule"]),
            zone=_optional_text(d["zone"], "zone"),
        )

    return _guard(build, doc, "resource")  # type: ignore[no-any-return]


def _need(value: Need) -> Doc:
    return {
        "resource_ids": sorted(value.resource_ids),
        "type": value.type,
        "attributes": {k: _attribute(v) for k, v in value.attributes.items()},
        "count": value.count,
        "units": value.units,
        "label": value.label,
    }


def _from_need(value: Any) -> Need:
    doc = _object(value, "need")
    return Need(
        resource_ids=_ids(doc["resource_ids"], "resource_ids"),
        type=_optional_text(doc["type"], "type"),
        attributes=_from_attributes(doc["attributes"], "attribute"),
        count=_whole(doc["count"], "count"),
        units=_whole(doc["units"], "units"),
        label=_text(doc["label"], "label"),
    )


def service_to_dict(value: Service) -> Doc:
    """Return a `Service` as a plain document."""
    return {
        "id": value.id,
        "name": value.name,
        "needs": [_need(n) for n in value.needs],
        "duration": _duration(value.duration),
        "min_duration": _duration(value.min_duration),
        "max_duration": _duration(value.max_duration),
        "unit": value.unit.value,
        "slot_step": _duration(value.slot_step),
        "buffer_before": _duration(value.buffer_before),
        "buffer_after": _duration(value.buffer_after),
        "buffers_outside_hours": value.buffers_outside_hours,
        "price": _money(value.price),
        "min_notice": _duration(value.min_notice),
        "horizon": _duration(value.horizon),
        "check_in": _time(value.check_in),
        "check_out": _time(value.check_out),
    }


def service_from_dict(doc: Doc) -> Service:
    """Build a `Service` from `service_to_dict`'s document."""

    def build(d: Doc) -> Service:
        d = _object(d, "service")
        return Service(
            _text(d["id"], "id"),
            _text(d["name"], "name"),
            needs=tuple(_from_need(n) for n in _list(d["needs"], "needs")),
            duration=_from_duration(d["duration"], "duration"),
            min_duration=_from_duration(d["min_duration"], "min_duration"),
            max_duration=_from_duration(d["max_duration"], "max_duration"),
            unit=_text(d["unit"], "unit"),
            slot_step=_from_duration(d["slot_step"], "slot_step"),
            buffer_before=_from_duration(d["buffer_before"], "buffer_before"),
            buffer_after=_from_duration(d["buffer_after"], "buffer_after"),
            buffers_outside_hours=_flag(d["buffers_outside_hours"], "buffers_outside_hours"),
            price=_from_money(d["price"], "price"),
            min_notice=_from_duration(d["min_notice"], "min_notice"),
            horizon=_from_duration(d["horizon"], "horizon"),
            check_in=_from_time(d["check_in"], "check_in"),
            check_out=_from_time(d["check_out"], "check_out"),
        )

    return _guard(build, doc, "service")  # type: ignore[no-any-return]


# --- bookings, the log, the outbox -------------------------------------------------------------------------------


def booking_to_dict(value: Booking) -> Doc:
    """Return a `Booking` as a plain document."""
    return {
        "id": value.id,
        "service_id": value.service_id,
        "start": _instant(value.start),
        "end": _instant(value.end),
        "assignments": [[a.need, a.label, list(a.resource_ids)] for a in value.assignments],
        "units": list(value.units),
        "status": value.status.value,
        "created_at": _instant(value.created_at),
        "policies": _policies(value.policies),
        "hold_until": _instant(value.hold_until),
        "buffer_before": _duration(value.buffer_before),
        "buffer_after": _duration(value.buffer_after),
        "customer_id": value.customer_id,
        "source": value.source,
        "notes": value.notes,
        "external_ref": value.external_ref,
        "price": _money(value.price),
        "payments": [[p.id, p.kind.value, _money(p.amount), _instant(p.at), p.actor] for p in value.payments],
        "reschedules": value.reschedules,
        "checked_in_at": _instant(value.checked_in_at),
        "version": value.version,
        "customer_zone": value.customer_zone,
        "customer_language": value.customer_language,
    }


def _from_assignment(value: Any) -> Assignment:
    need, label, ids = _list(value, "assignment", 3)
    index = _whole(need, "assignment need")
    if index < 0:
        raise _wrong("assignment need", "a need's index, 0 or more", need)
    return Assignment(index, _text(label, "assignment label"), _ids(ids, "assignment resource ids"))


def _from_payment(value: Any) -> Payment:
    pid, kind, amount, at, actor = _list(value, "payment", 5)
    return Payment(
        _text(pid, "payment id"),
        _text(kind, "payment kind"),
        _from_money(amount, "payment amount"),
        _instant_required(at, "payment at"),
        _text(actor, "payment actor"),
    )


def booking_from_dict(doc: Doc) -> Booking:
    """Build a `Booking` from `booking_to_dict`'s document."""

    def build(d: Doc) -> Booking:
        d = _object(d, "booking")
        return Booking(
            _text(d["id"], "id"),
            _text(d["service_id"], "service_id"),
            _instant_required(d["start"], "start"),
            _instant_required(d["end"], "end"),
            tuple(_from_assignment(a) for a in _list(d["assignments"], "assignments")),
            tuple(_whole(u, "units") for u in _list(d["units"], "units")),
            _text(d["status"], "status"),
            _instant_required(d["created_at"], "created_at"),
            policies=_from_policies(d["policies"]),
            hold_until=_from_instant(d["hold_until"], "hold_until"),
            buffer_before=_from_duration(d["buffer_before"], "buffer_before"),
            buffer_after=_from_duration(d["buffer_after"], "buffer_after"),
            customer_id=_optional_text(d["customer_id"], "customer_id"),
            source=_text(d["source"], "source"),
            notes=_text(d["notes"], "notes"),
            external_ref=_optional_text(d["external_ref"], "external_ref"),
            price=_from_money(d["price"], "price"),
            payments=tuple(_from_payment(p) for p in _list(d["payments"], "payments")),
            reschedules=_whole(d["reschedules"], "reschedules"),
            checked_in_at=_from_instant(d["checked_in_at"], "checked_in_at"),
            version=_whole(d["version"], "version"),
            customer_zone=_optional_text(d.get("customer_zone"), "customer_zone"),
            customer_language=_text(d.get("customer_language", ""), "customer_language"),
        )

    return _guard(build, doc, "booking")  # type: ignore[no-any-return]


def transition_to_dict(value: TransitionRecord) -> Doc:
    """Return a `TransitionRecord` as a plain document."""
    return {
        "booking_id": value.booking_id,
        "from_status": None if value.from_status is None else value.from_status.value,
        "to_status": value.to_status.value,
        "action": value.action.value,
        "at": _instant(value.at),
        "actor": value.actor,
        "reason": value.reason,
    }


def transition_from_dict(doc: Doc) -> TransitionRecord:
    """Build a `TransitionRecord` from `transition_to_dict`'s document."""

    def build(d: Doc) -> TransitionRecord:
        d = _object(d, "transition")
        return TransitionRecord(
            check_id(_text(d["booking_id"], "booking_id"), "booking id"),
            _optional_text(d["from_status"], "from_status"),
            _text(d["to_status"], "to_status"),
            _text(d["action"], "action"),
            _instant_required(d["at"], "at"),
            _text(d["actor"], "actor"),
            _text(d["reason"], "reason"),
        )

    return _guard(build, doc, "transition")  # type: ignore[no-any-return]


def outbox_to_dict(value: OutboxMessage) -> Doc:
    """Return an `OutboxMessage` as a plain document."""
    return {
        "id": value.id,
        "topic": value.topic,
        "booking_id": value.booking_id,
        "created_at": _instant(value.created_at),
        "due_at": _instant(value.due_at),
        "dedupe_key": value.dedupe_key,
        "payload": value.payload,
        "attempts": value.attempts,
        "sent_at": _instant(value.sent_at),
        "failed_at": _instant(value.failed_at),
        "last_error": value.last_error,
    }


def outbox_from_dict(doc: Doc) -> OutboxMessage:
    """Build an `OutboxMessage` from `outbox_to_dict`'s document."""

    def build(d: Doc) -> OutboxMessage:
        d = _object(d, "outbox message")
        return OutboxMessage(
            _text(d["id"], "id"),
            _text(d["topic"], "topic"),
            _optional_text(d["booking_id"], "booking_id"),
            _instant_required(d["created_at"], "created_at"),
            _instant_required(d["due_at"], "due_at"),
            _text(d["dedupe_key"], "dedupe_key"),
            _text(d["payload"], "payload"),
            _whole(d["attempts"], "attempts"),
            _from_instant(d["sent_at"], "sent_at"),
            _from_instant(d["failed_at"], "failed_at"),
            _text(d["last_error"], "last_error"),
        )

    return _guard(build, doc, "outbox message")  # type: ignore[no-any-return]
