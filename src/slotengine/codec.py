"""
Plain, JSON-ready forms of slotengine's values, and back.

Storage adapters keep catalogues and bookings as JSON documents made by these functions, and the engine
saves the first result of an idempotent call the same way. Every ``*_from_dict`` goes back through the
values' own constructors, so a stored document is validated again when it is read: a corrupt row raises an
`InvalidInputError`, never yields a broken value. Instants are ISO 8601 strings in UTC, durations whole
microseconds, money a ``[amount, currency]`` pair of strings.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from slotengine._time import to_utc
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment
from slotengine.business import Business
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import TransitionRecord
from slotengine.model import UNLIMITED, Need, Resource, Service
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
    "service_from_dict",
    "service_to_dict",
    "transition_from_dict",
    "transition_to_dict",
]

Doc = dict[str, Any]
_US = timedelta(microseconds=1)


_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps(doc: Doc) -> str:
    """Return *doc* as compact, key-sorted JSON (stable text, so equal values give equal rows)."""
    return _ENCODER.encode(doc)


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


def _guard(build: Any, doc: Any, what: str) -> Any:
    """Call *build* on *doc*, turning a structural mistake in a stored document into an input error."""
    try:
        return build(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        msg = f"malformed stored {what}: {type(exc).__name__}: {exc}"
        raise InvalidInputError(msg) from None


# --- scalars ---------------------------------------------------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    return None if value is None else to_utc(value).isoformat()


def _from_instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _instant_required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _duration(value: timedelta | None) -> int | None:
    return None if value is None else value // _US


def _from_duration(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(microseconds=value)


def _money(value: Money | None) -> list[str] | None:
    return None if value is None else [str(value.amount), value.currency]


def _from_money(value: list[str] | None) -> Money | None:
    return None if value is None else Money(value[0], value[1])


def _time(value: time | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_time(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


def _attribute(value: Any) -> Any:
    if isinstance(value, Money):
        return {"money": _money(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _from_attribute(value: Any) -> Any:
    if isinstance(value, dict):
        if "money" in value:
            return _from_money(value["money"])
        return Decimal(value["decimal"])
    return value


# --- schedules -----------------------------------------------------------------------------------------------


def _range(value: TimeRange) -> list[str]:
    return [value.start.isoformat(), value.end.isoformat()]


def _from_range(value: list[str]) -> TimeRange:
    return TimeRange(time.fromisoformat(value[0]), time.fromisoformat(value[1]))


def _recurrence(value: Recurrence) -> Doc:
    return {
        "rule": value.rule,
        "dtstart": value.dtstart.isoformat(),
        "zone": value.zone,
        "exdates": [d.isoformat() for d in value.exdates],
        "rdates": [d.isoformat() for d in value.rdates],
    }


def _from_recurrence(doc: Doc) -> Recurrence:
    return Recurrence(
        doc["rule"],
        datetime.fromisoformat(doc["dtstart"]),
        doc["zone"],
        exdates=tuple(datetime.fromisoformat(d) for d in doc["exdates"]),
        rdates=tuple(datetime.fromisoformat(d) for d in doc["rdates"]),
    )


def _time_off(value: TimeOff) -> Doc:
    return {
        "start": _instant(value.start),
        "end": _instant(value.end),
        "first_day": None if value.first_day is None else value.first_day.isoformat(),
        "last_day": None if value.last_day is None else value.last_day.isoformat(),
        "reason": value.reason,
    }


def _from_time_off(doc: Doc) -> TimeOff:
    if doc["first_day"] is not None:
        last = None if doc["last_day"] is None else date.fromisoformat(doc["last_day"])
        return TimeOff.days(date.fromisoformat(doc["first_day"]), last, reason=doc["reason"])
    return TimeOff(_from_instant(doc["start"]), _from_instant(doc["end"]), reason=doc["reason"])


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
        return Schedule(
            d["zone"],
            WeeklyHours(tuple(tuple(_from_range(r) for r in day) for day in d["weekly"])),
            overrides=tuple(
                DateOverride(date.fromisoformat(o["day"]), tuple(_from_range(r) for r in o["ranges"]))
                for o in d["overrides"]
            ),
            time_off=tuple(_from_time_off(t) for t in d["time_off"]),
            recurring=tuple(
                RecurringHours(
                    _from_recurrence(r["recurrence"]), _from_range(r["hours"]), closed=r["closed"], reason=r["reason"]
                )
                for r in d["recurring"]
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


def _from_policies(doc: Doc) -> Policies:
    c = doc["cancellation"]
    return Policies(
        hold=HoldPolicy(_from_duration(doc["hold"]["ttl"]), doc["hold"]["accept_late_payment"]),
        confirmation=ConfirmationPolicy(doc["confirmation"]["mode"], Decimal(doc["confirmation"]["deposit_percent"])),
        cancellation=CancellationPolicy(
            tiers=tuple(RefundTier(_from_duration(b), Decimal(p)) for b, p in c["tiers"]),
            otherwise_percent=Decimal(c["otherwise_percent"]),
            deadline=_from_duration(c["deadline"]),
            no_show_fee_percent=Decimal(c["no_show_fee_percent"]),
            charge_unpaid_penalty=c["charge_unpaid_penalty"],
        ),
        reschedule=ReschedulePolicy(_from_duration(doc["reschedule"]["deadline"]), doc["reschedule"]["max_times"]),
        no_show=NoShowPolicy(_from_duration(doc["no_show"]["grace"])),
        allow_override=doc.get("allow_override", False),
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


def _from_rule(doc: Doc) -> NotificationRule:
    return NotificationRule(
        doc["id"],
        Template(doc["subject"], doc["body"]),
        on=doc["on"],
        offset=_from_duration(doc["offset"]),
        condition=doc["condition"],
        recipient=doc["recipient"],
        channel=doc["channel"],
        service_ids=doc["service_ids"],
        quiet_hours=doc["quiet_hours"],
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
        quiet = d.get("quiet_hours")
        return Business(
            d["name"],
            d["zone"],
            schedule_from_dict(d["hours"]),
            _from_policies(d["policies"]),
            rules=tuple(_from_rule(r) for r in d.get("rules", ())),
            quiet_hours=None
            if quiet is None
            else QuietHours(time.fromisoformat(quiet[0]), time.fromisoformat(quiet[1])),
            links=d.get("links", {}),
            agent=d.get("agent"),
            language=d.get("language", "en"),
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
        return Resource(
            d["id"],
            d["name"],
            kind=d["kind"],
            type=d["type"],
            role=d["role"],
            capacity=UNLIMITED if d["capacity"] == "unlimited" else d["capacity"],
            attributes={k: _from_attribute(v) for k, v in d["attributes"].items()},
            schedule=None if d["schedule"] is None else schedule_from_dict(d["schedule"]),
            zone=d["zone"],
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


def _from_need(doc: Doc) -> Need:
    return Need(
        resource_ids=doc["resource_ids"],
        type=doc["type"],
        attributes={k: _from_attribute(v) for k, v in doc["attributes"].items()},
        count=doc["count"],
        units=doc["units"],
        label=doc["label"],
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
        return Service(
            d["id"],
            d["name"],
            needs=tuple(_from_need(n) for n in d["needs"]),
            duration=_from_duration(d["duration"]),
            min_duration=_from_duration(d["min_duration"]),
            max_duration=_from_duration(d["max_duration"]),
            unit=d["unit"],
            slot_step=_from_duration(d["slot_step"]),
            buffer_before=_from_duration(d["buffer_before"]),
            buffer_after=_from_duration(d["buffer_after"]),
            buffers_outside_hours=d["buffers_outside_hours"],
            price=_from_money(d["price"]),
            min_notice=_from_duration(d["min_notice"]),
            horizon=_from_duration(d["horizon"]),
            check_in=_from_time(d["check_in"]),
            check_out=_from_time(d["check_out"]),
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


def booking_from_dict(doc: Doc) -> Booking:
    """Build a `Booking` from `booking_to_dict`'s document."""

    def build(d: Doc) -> Booking:
        return Booking(
            d["id"],
            d["service_id"],
            _instant_required(d["start"]),
            _instant_required(d["end"]),
            tuple(Assignment(n, label, tuple(ids)) for n, label, ids in d["assignments"]),
            tuple(d["units"]),
            d["status"],
            _instant_required(d["created_at"]),
            policies=_from_policies(d["policies"]),
            hold_until=_from_instant(d["hold_until"]),
            buffer_before=_from_duration(d["buffer_before"]),
            buffer_after=_from_duration(d["buffer_after"]),
            customer_id=d["customer_id"],
            source=d["source"],
            notes=d["notes"],
            external_ref=d["external_ref"],
            price=_from_money(d["price"]),
            payments=tuple(
                Payment(pid, kind, _from_money(amount), _instant_required(at), actor)
                for pid, kind, amount, at, actor in d["payments"]
            ),
            reschedules=d["reschedules"],
            checked_in_at=_from_instant(d["checked_in_at"]),
            version=d["version"],
            customer_zone=d.get("customer_zone"),
            customer_language=d.get("customer_language", ""),
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
        return TransitionRecord(
            d["booking_id"],
            d["from_status"],
            d["to_status"],
            d["action"],
            _instant_required(d["at"]),
            d["actor"],
            d["reason"],
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
        return OutboxMessage(
            d["id"],
            d["topic"],
            d["booking_id"],
            _instant_required(d["created_at"]),
            _instant_required(d["due_at"]),
            d["dedupe_key"],
            d["payload"],
            d["attempts"],
            _from_instant(d["sent_at"]),
            _from_instant(d["failed_at"]),
            d["last_error"],
        )

    return _guard(build, doc, "outbox message")  # type: ignore[no-any-return]
