"""
The business: its name, its zone, its hours, and its policies.

One `Business` per tenant. Resources without a schedule of their own inherit its hours; its time off
(company-wide holidays) closes every resource; its `Policies` are copied onto each booking when it is made.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

import attrs

from slotengine._checks import tuple_of
from slotengine._time import get_zone
from slotengine.errors import InvalidInputError
from slotengine.model import FrozenMap, check_id, check_text
from slotengine.notifications import NotificationRule, QuietHours
from slotengine.policies import Policies
from slotengine.schedule import Schedule

__all__ = ["Business"]


def _name(value: object) -> str:
    return check_text(value, "business name")


def _zone(value: object) -> str:
    return get_zone(value).key


def _hours(value: object) -> Schedule:
    if not isinstance(value, Schedule):
        msg = f"business hours must be a Schedule, not {type(value).__name__}"
        raise InvalidInputError(msg, field="hours")
    return value


def _policies(value: object) -> Policies:
    if not isinstance(value, Policies):
        msg = f"policies must be Policies, not {type(value).__name__}"
        raise InvalidInputError(msg, field="policies")
    return value


def _rules(value: object) -> tuple[NotificationRule, ...]:
    rules = tuple_of(value, NotificationRule, "rules", label="notification rules")
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        msg = "two notification rules have the same id"
        raise InvalidInputError(msg, field="rules")
    return rules


def _quiet(value: object) -> QuietHours | None:
    if value is None or isinstance(value, QuietHours):
        return value
    msg = f"quiet_hours must be QuietHours or None, not {type(value).__name__}"
    raise InvalidInputError(msg, field="quiet_hours")


_LINKS = frozenset({"confirm", "cancel", "pay"})


def _links(value: object) -> FrozenMap:
    if not isinstance(value, Mapping):
        msg = "links must be a mapping such as {'cancel': 'https://shop.example/cancel/$booking_id'}"
        raise InvalidInputError(msg, field="links")
    unknown = sorted(repr(key) for key in set(value) - _LINKS)
    if unknown:
        msg = f"unknown link(s) {', '.join(unknown)}; links are {', '.join(sorted(_LINKS))}"
        raise InvalidInputError(msg, field="links")
    out = {}
    for key, text in value.items():
        check_text(text, f"link {key!r}", max_length=2_000)
        pattern = string.Template(text)
        if not pattern.is_valid() or set(pattern.get_identifiers()) - {"booking_id"}:
            msg = f"link {key!r} may use $booking_id only (write $$ for a dollar sign), got {text!r}"
            raise InvalidInputError(msg, field="links")
        if "booking_id" not in pattern.get_identifiers():
            msg = f"link {key!r} must contain $booking_id so that each booking gets its own"
            raise InvalidInputError(msg, field="links")
        out[key] = text
    return FrozenMap(out)


def _agent(value: object) -> str | None:
    return None if value is None else check_id(value, "agent")


def _language(value: object) -> str:
    return check_text(value, "language", max_length=35)


@attrs.frozen
class Business:
    """
    A business (a tenant): what it is called, where it is, when it is open, and the rules it sets.

    Args:
        name: What clients see.
        zone: Its IANA zone; hours, deadlines and reports are local to it.
        hours: Business hours (resources without their own inherit them); their time off is company-wide.
        policies: The rules copied onto each booking when it is made.
        rules: Notification rules (see `slotengine.notifications`).
        quiet_hours: When no message is sent to a person, in the recipient's zone.
        links: Link templates the application serves (``confirm``, ``cancel``, ``pay``), each with
            ``$booking_id``; templates use them as ``$confirm_url`` and so on.
        agent: Who receives agent alerts (an id your notifier understands).
        language: The language of messages to staff and agents, and to clients who set none.

    Raises:
        InvalidInputError: a field is invalid, or the hours are kept in another zone than the business's.
    """

    name: str = attrs.field(converter=_name)
    zone: str = attrs.field(converter=_zone)
    hours: Schedule = attrs.field(converter=_hours)
    policies: Policies = attrs.field(factory=Policies, converter=_policies)
    rules: tuple[NotificationRule, ...] = attrs.field(default=(), converter=_rules)
    quiet_hours: QuietHours | None = attrs.field(default=None, converter=_quiet)
    links: FrozenMap = attrs.field(factory=FrozenMap, converter=_links)
    agent: str | None = attrs.field(default=None, converter=_agent)
    language: str = attrs.field(default="en", converter=_language)

    def __attrs_post_init__(self) -> None:
        if self.hours.zone != self.zone:
            msg = f"the business is in {self.zone} but its hours are kept in {self.hours.zone}"
            raise InvalidInputError(msg, field="hours")
