"""
Notification rules and templates: the outbox's brain, pure and clock-free.

A `NotificationRule` says *when* a message is due (on an event such as "confirmed", or at an offset from the
start such as 24 hours before), *whether* it still applies at that moment (a `Condition`, evaluated when the
message is sent, so a reminder to confirm is not sent to someone who has confirmed meanwhile), *to whom*
(the client, the responsible agent, the staff serving the booking), on which *channel*, and with which
`Template`.

The engine plans messages in the same transaction as the booking change and writes them to the outbox;
rescheduling, cancelling or expiring a booking withdraws its pending reminders and plans new ones. The relay
(`BookingEngine.dispatch_due`) renders them when they are due and hands them to a `Notifier`.

**Templates** use `string.Template` (``$service at $local_time``), from the standard library, so the core needs
no template engine. Every placeholder is checked when the rule is built: a misspelt one is an error at rule
creation, never at send time. `PLACEHOLDERS` lists them.

**Quiet hours** are kept in the recipient's zone (the client's zone when the booking knows it, else the
business's): a message due inside them waits until they end, unless its rule says ``quiet_hours=False``.

**Dates for people** are written in the recipient's zone and language with a small built-in table of month
and weekday names (English, French, Russian, German, Spanish; English otherwise).
"""

from __future__ import annotations

import enum
import string
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Final, cast
from zoneinfo import ZoneInfo

import attrs

from slotengine._time import get_zone, localize, to_utc
from slotengine.booking import Booking
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import Action, BookingStatus, action_of, status_of
from slotengine.model import check_id, check_text

__all__ = [
    "BITRIX24_RULES",
    "PLACEHOLDERS",
    "Condition",
    "Event",
    "NotificationRule",
    "QuietHours",
    "Recipient",
    "Template",
    "format_local",
    "quiet_begin",
    "quiet_shift",
]


class Event(enum.StrEnum):
    """What happened to a booking, as notification rules name it."""

    CREATED = "created"
    CONFIRMED = "confirmed"
    PAID = "paid"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    EXPIRED = "expired"
    NO_SHOW = "no_show"
    COMPLETED = "completed"


EVENT_OF_ACTION: Final[Mapping[Action, Event]] = {
    Action.HOLD: Event.CREATED,
    Action.BOOK: Event.CREATED,
    Action.CONFIRM: Event.CONFIRMED,
    Action.CONFIRM_PAID: Event.CONFIRMED,
    Action.DEPOSIT: Event.CONFIRMED,
    Action.PAY_FULL: Event.PAID,
    Action.CANCEL: Event.CANCELLED,
    Action.RESCHEDULE: Event.RESCHEDULED,
    Action.EXPIRE: Event.EXPIRED,
    Action.MARK_NO_SHOW: Event.NO_SHOW,
    Action.COMPLETE: Event.COMPLETED,
}
"""Which lifecycle actions raise which event (actions absent here raise none); see `events_of`."""


def events_of(action: Action, before: BookingStatus | None) -> frozenset[Event]:
    """
    The events one step raises.

    A step that makes a pre-booking paid at once (paid in full, or confirmed when already paid) is both
    ``confirmed`` and ``paid``: a rule on either hears of it.
    """
    action = action_of(action)
    before = None if before is None else status_of(before, "before")
    event = EVENT_OF_ACTION.get(action)
    if event is None:
        return frozenset()
    if action is Action.CONFIRM_PAID or (action is Action.PAY_FULL and before is BookingStatus.PRE_BOOKING):
        return frozenset({Event.CONFIRMED, Event.PAID})
    return frozenset({event})


_LIVE_EVENTS: Final = frozenset({Event.CREATED, Event.CONFIRMED, Event.PAID, Event.RESCHEDULED})


class Condition(enum.StrEnum):
    """When a due message still applies, judged at the moment it is sent."""

    ALWAYS = "always"
    """While the booking is live (pre-booking, confirmed or paid), for offset rules; always for events."""
    UNCONFIRMED = "unconfirmed"
    """Only while the booking is still a pre-booking (nobody confirmed it)."""
    CONFIRMED = "confirmed"
    """Only once the booking is confirmed or paid."""
    NOT_CHECKED_IN = "not_checked_in"
    """Only if the client has not checked in (the "client is late" message)."""


class Recipient(enum.StrEnum):
    """Who a message is for."""

    CLIENT = "client"
    AGENT = "agent"
    """The business's responsible agent (its manager on duty)."""
    STAFF = "staff"
    """The staff (resources of kind "user") serving the booking."""


PLACEHOLDERS: Final = frozenset(
    {
        "business",
        "service",
        "resources",
        "local_start",
        "local_date",
        "local_time",
        "local_end",
        "zone",
        "price",
        "status",
        "booking_id",
        "confirm_url",
        "cancel_url",
        "pay_url",
    }
)
"""The fields a template may use. ``*_url`` are built from link templates the application supplies."""


def _template_text(value: object) -> str:
    text = check_text(value, "template", max_length=5_000, allow_empty=True)
    try:
        names = {
            m.group("named") or m.group("braced")
            for m in string.Template.pattern.finditer(text)
            if m.group("invalid") is None and (m.group("named") or m.group("braced"))
        }
        invalid = [m for m in string.Template.pattern.finditer(text) if m.group("invalid") is not None]
    except (TypeError, ValueError) as exc:  # pragma: no cover - the pattern is the stdlib's
        raise InvalidInputError(str(exc)) from None
    if invalid:
        msg = f"template has a stray '$' at position {invalid[0].start()}: write '$$' for a dollar sign"
        raise InvalidInputError(msg, field="template")
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        msg = f"unknown placeholder(s) {', '.join('$' + n for n in unknown)}; known: {', '.join(sorted(PLACEHOLDERS))}"
        raise InvalidInputError(msg, field="template")
    return text


@attrs.frozen
class Template:
    """A message's subject and body, with ``$placeholders`` from `PLACEHOLDERS`, checked when built."""

    subject: str = attrs.field(converter=_template_text)
    body: str = attrs.field(converter=_template_text)

    def render(self, fields: Mapping[str, str]) -> tuple[str, str]:
        """
        Return subject and body with every placeholder filled from *fields*.

        Raises:
            InvalidInputError: *fields* is not a mapping, or lacks a placeholder's value (named).
        """
        if not isinstance(cast("object", fields), Mapping):
            msg = f"a template is filled from a mapping of placeholder values, not {type(fields).__name__}"
            raise InvalidInputError(msg, field="fields")
        try:
            return string.Template(self.subject).substitute(fields), string.Template(self.body).substitute(fields)
        except KeyError as missing:
            msg = f"the template's placeholder ${missing.args[0]} has no value"
            raise InvalidInputError(msg, field=str(missing.args[0])) from None


def _check_booking(booking: object, method: str) -> None:
    if not isinstance(booking, Booking):
        msg = f"{method} judges a Booking, not {type(booking).__name__}"
        raise InvalidInputError(msg, field="booking")


def _rule_id(value: object) -> str:
    return check_id(value, "rule id")


def _events(value: object, field: str = "on") -> frozenset[Event]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = f"{field} must be a collection of events, such as ['created', 'confirmed']"
        raise InvalidInputError(msg, field=field)
    try:
        return frozenset(Event(str(v)) for v in value)
    except ValueError:
        msg = f"{field} names an unknown event; events are {', '.join(e.value for e in Event)}"
        raise InvalidInputError(msg, field=field) from None


_MAX_OFFSET: Final = timedelta(days=366)


def _offset(value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or not -_MAX_OFFSET <= value <= _MAX_OFFSET:
        got = f"{value.days:,} days" if isinstance(value, timedelta) else repr(value)
        msg = (
            f"offset must be a timedelta of at most {_MAX_OFFSET.days} days either way (negative: before the start), "
            f"got {got}"
        )
        raise InvalidInputError(msg, field="offset")
    return value


def _condition(value: object) -> Condition:
    try:
        return Condition(str(value))
    except ValueError:
        msg = f"condition must be one of {', '.join(c.value for c in Condition)}, got {value!r}"
        raise InvalidInputError(msg, field="condition") from None


def _recipient(value: object) -> Recipient:
    try:
        return Recipient(str(value))
    except ValueError:
        msg = f"recipient must be one of {', '.join(r.value for r in Recipient)}, got {value!r}"
        raise InvalidInputError(msg, field="recipient") from None


def _channel(value: object) -> str:
    return check_id(value, "channel")


def _template(value: object) -> Template:
    if not isinstance(value, Template):
        msg = f"template must be a Template, not {type(value).__name__}"
        raise InvalidInputError(msg, field="template")
    return value


def _services(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = "service_ids must be a collection of service ids, or None for every service"
        raise InvalidInputError(msg, field="service_ids")
    return frozenset(check_id(v, "service id") for v in value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"quiet_hours must be True or False, not {value!r}"
        raise InvalidInputError(msg, field="quiet_hours")
    return value


@attrs.frozen
class NotificationRule:
    """
    One message a business sends: on an event or at an offset from the start, if a condition holds.

    Give *on* (events) or *offset* (``-timedelta(hours=24)`` is a day before the start, ``+10 minutes`` is
    ten minutes after it), not both.

    Raises:
        InvalidInputError: neither or both of *on* and *offset*, an unknown event, condition, recipient or
            placeholder.
    """

    id: str = attrs.field(converter=_rule_id)
    template: Template = attrs.field(converter=_template)
    on: frozenset[Event] = attrs.field(factory=frozenset, converter=_events)
    offset: timedelta | None = attrs.field(default=None, converter=_offset)
    condition: Condition = attrs.field(default=Condition.ALWAYS, converter=_condition)
    recipient: Recipient = attrs.field(default=Recipient.CLIENT, converter=_recipient)
    channel: str = attrs.field(default="email", converter=_channel)
    service_ids: frozenset[str] | None = attrs.field(default=None, converter=_services)
    quiet_hours: bool = attrs.field(default=True, converter=_flag)

    def __attrs_post_init__(self) -> None:
        if bool(self.on) == (self.offset is not None):
            msg = f"rule {self.id!r} needs either events (on=...) or an offset from the start, not both"
            raise InvalidInputError(msg, field="on")

    def applies_to(self, booking: Booking) -> bool:
        """Whether this rule concerns *booking*'s service."""
        _check_booking(booking, "applies_to")
        return self.service_ids is None or booking.service_id in self.service_ids

    def holds(self, booking: Booking, now: datetime, *, events: Collection[Event] | None = None) -> bool:
        """
        Whether the rule's condition holds for *booking* at *now* (judged when sending).

        A pre-booking whose hold has lapsed counts as dead even before a sweep marks it expired. A message
        about a booking being made, confirmed, paid or moved is not sent once the booking is no longer live, nor
        one planned before the start (a negative offset) once the start has come. *events* are the events that
        planned the message (a rule may listen to others too, such as ``cancelled``); None means all of ``on``.
        """
        _check_booking(booking, "holds")
        events = None if events is None else _events(events, "events")  # "created" is not c, r, e, a, ...
        live = booking.takes_time(now)
        if self.offset is not None and (not live or (self.offset < timedelta(0) and now >= booking.start)):
            return False  # a reminder of a start that has come is no reminder (a retry, or a relay that was down)
        fired = self.on if events is None else events
        if self.offset is None and fired and set(fired) <= _LIVE_EVENTS and not live:
            # "Your booking is confirmed, here is how to cancel" must not reach someone whose booking
            # ended before the message went out (it waited for quiet hours, or the relay was down).
            return False
        if self.condition is Condition.UNCONFIRMED:
            return booking.status is BookingStatus.PRE_BOOKING and live
        if self.condition is Condition.CONFIRMED:
            return booking.status in {BookingStatus.CONFIRMED, BookingStatus.PAID}
        if self.condition is Condition.NOT_CHECKED_IN:
            return booking.checked_in_at is None
        return True


def _quiet_time(value: object) -> time:
    if not isinstance(value, time) or value.tzinfo is not None:
        msg = f"quiet hours are local wall times (naive datetime.time), got {value!r}"
        raise InvalidInputError(msg, field="quiet_hours")
    return value


@attrs.frozen
class QuietHours:
    """Local hours when no message is sent, such as 21:00 to 08:00 (crossing midnight is fine)."""

    start: time = attrs.field(converter=_quiet_time)
    end: time = attrs.field(converter=_quiet_time)

    def __attrs_post_init__(self) -> None:
        if self.start == self.end:
            msg = "quiet hours must not start and end at the same time"
            raise InvalidInputError(msg, field="quiet_hours")


def quiet_shift(due: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """
    Return *due*, or the end of the quiet hours it falls in, in *zone*.

    The end is resolved by the wall-time rule (`slotengine._time.localize`), or, where that instant is not after
    *due* (an end wall time the clocks show twice, *due* in the second pass), the end's second occurrence; a
    message is never moved earlier, and one due exactly at the end of quiet hours is not moved.
    """
    due, zone = to_utc(due, "due"), get_zone(zone)
    if quiet is None:
        return due
    quiet = _quiet_hours(quiet)
    local = due.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    day = local.date()
    if quiet.start < quiet.end:
        inside = quiet.start <= wall < quiet.end
        end_day = day
    else:
        inside = wall >= quiet.start or wall < quiet.end
        end_day = day + timedelta(days=1) if wall >= quiet.start else day
    if not inside:
        return due
    wall_end = datetime.combine(end_day, quiet.end)
    end = localize(wall_end, zone)
    if end <= due:
        end = to_utc(wall_end.replace(tzinfo=zone, fold=1), "end")
    return max(end, due)


def _quiet_hours(value: object) -> QuietHours:
    if not isinstance(value, QuietHours):
        msg = f"quiet hours are QuietHours(start, end), not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="quiet_hours")
    return value


def quiet_begin(due: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """
    Return when the quiet hours that *due* falls in began in *zone*: the first instant showing their start time.

    That is their start by the wall-time rule, except when the start time falls in a spring-forward gap: then
    they began when the clocks jumped over it (the rule's instant, after the gap, could come after *due*).
    """
    zone, quiet = get_zone(zone), _quiet_hours(quiet)
    local = to_utc(due, "due").astimezone(zone)
    day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) < quiet.end:
        day -= timedelta(days=1)  # the night began the evening before
    wall = datetime.combine(day, quiet.start)
    begun = localize(wall, zone)
    before = to_utc(wall.replace(tzinfo=zone, fold=1), "start")  # in a gap, the instant as if the clocks had jumped
    if before >= begun:
        return begun
    # In the gap: the jump is the one instant in (before, begun] where the wall clock passes the start time
    # (zones change their offsets on whole seconds).
    low, high = 0, int((begun - before).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if (before + timedelta(seconds=middle)).astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return before + timedelta(seconds=high)


_MONTHS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
           "ноября", "декабря"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
}  # fmt: skip
_DAYS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}


def format_local(instant: datetime, zone: ZoneInfo, language: str = "en") -> tuple[str, str]:
    """Return ``(date, time)`` of *instant* in *zone*, the date written out in *language* (English if unknown)."""
    local = to_utc(instant, "instant").astimezone(get_zone(zone))
    tag: object = language
    if not isinstance(tag, str):
        msg = f"language must be a language tag such as 'fr' or 'es-MX', not {tag!r}"
        raise InvalidInputError(msg, field="language")
    lang = language.split("-", maxsplit=1)[0].lower() if language else "en"
    if lang not in _MONTHS:
        lang = "en"
    day, month = _DAYS[lang][local.weekday()], _MONTHS[lang][local.month - 1]
    if lang == "en":
        text = f"{day} {local.day} {month} {local.year}"
    elif lang == "de":
        text = f"{day}, {local.day}. {month} {local.year}"
    elif lang == "es":
        text = f"{day}, {local.day} de {month} de {local.year}"
    elif lang == "ru":
        text = f"{day}, {local.day} {month} {local.year} г."
    else:
        text = f"{day} {local.day} {month} {local.year}"
    return text, local.strftime("%H:%M")


def _template_set(subject: str, body: str) -> Template:
    return Template(subject, body)


BITRIX24_RULES: Final[tuple[NotificationRule, ...]] = (
    NotificationRule(
        "booking-info",
        _template_set(
            "Your booking at $business",
            "$service on $local_date at $local_time ($zone) with $resources. Price: $price. Cancel: $cancel_url",
        ),
        on=[Event.CREATED],
        channel="whatsapp",
    ),
    NotificationRule(
        "confirm-request",
        _template_set(
            "Please confirm your visit",
            "$service tomorrow, $local_date at $local_time. Confirm: $confirm_url  Cancel: $cancel_url",
        ),
        offset=-timedelta(days=1),
        condition=Condition.UNCONFIRMED,
        channel="whatsapp",
    ),
    NotificationRule(
        "agent-alert-unconfirmed",
        _template_set(
            "Unconfirmed booking in 3 hours",
            "Booking $booking_id ($service, $local_time, $resources) is not confirmed yet: call the client.",
        ),
        offset=-timedelta(hours=3),
        condition=Condition.UNCONFIRMED,
        recipient=Recipient.AGENT,
        channel="task",
        quiet_hours=False,
    ),
    NotificationRule(
        "reminder",
        _template_set("See you soon at $business", "$service today at $local_time with $resources."),
        offset=-timedelta(hours=2),
        condition=Condition.CONFIRMED,
        channel="whatsapp",
    ),
    NotificationRule(
        "client-late",
        _template_set("We are waiting for you", "Your $service started at $local_time. Are you on your way?"),
        offset=timedelta(minutes=10),
        condition=Condition.NOT_CHECKED_IN,
        channel="whatsapp",
        quiet_hours=False,
    ),
)
"""The seeds' Bitrix24 sequence, ready made: booking info at once, a confirmation request the day before,
an alert to the agent 3 hours before if still unconfirmed, a reminder 2 hours before, and a "client is late"
message 10 minutes after the start if the client has not checked in."""
