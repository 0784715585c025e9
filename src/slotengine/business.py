"""
The business: its name, its zone, its hours, and its policies.

One `Business` per tenant. Resources without a schedule of their own inherit its hours; its time off
(company-wide holidays) closes every resource; its `Policies` are copied onto each booking when it is made.
"""

from __future__ import annotations

import attrs

from slotengine._time import get_zone
from slotengine.errors import InvalidInputError
from slotengine.model import check_text
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


@attrs.frozen
class Business:
    """
    A business (a tenant): what it is called, where it is, when it is open, and the rules it sets.

    Raises:
        InvalidInputError: a field is invalid, or the hours are kept in another zone than the business's.
    """

    name: str = attrs.field(converter=_name)
    zone: str = attrs.field(converter=_zone)
    hours: Schedule = attrs.field(converter=_hours)
    policies: Policies = attrs.field(factory=Policies, converter=_policies)

    def __attrs_post_init__(self) -> None:
        if self.hours.zone != self.zone:
            msg = f"the business is in {self.zone} but its hours are kept in {self.hours.zone}"
            raise InvalidInputError(msg, field="hours")
