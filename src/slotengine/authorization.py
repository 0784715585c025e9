"""
Who may do what: the `Actor` on every engine call, and the pluggable policy that decides.

The engine asks its `AuthorizationPolicy` inside the use case's transaction, after loading the booking and
before writing anything, so a denial raises `PermissionDeniedError` and changes nothing. There is no implicit
allow: an engine has an explicit policy (`RolePolicy` unless you pass another), and a call without an actor
(and no default actor set on the engine) is refused.

`RolePolicy`, the default, encodes the usual shop rules:

* a **customer** may hold, pay, cancel and reschedule *their own* bookings and read them;
* **staff** may also book for anyone, confirm, check in, mark no-shows and complete;
* a **manager** may also refund (cancelling on the business's terms, a full refund, needs it too) and override
  (book outside the offered times, where the business allows overrides; never beyond capacity);
* an **admin** may also change the business, its resources and services, and prune old messages and keys;
* the **system** (sweepers, payment webhooks, imports) may do everything.
"""

from __future__ import annotations

import enum
from typing import Final, Protocol

import attrs

from slotengine.booking import Booking
from slotengine.errors import InvalidInputError, PermissionDeniedError
from slotengine.model import check_id

__all__ = [
    "ROLE_PERMISSIONS",
    "Actor",
    "AllowAll",
    "AuthorizationPolicy",
    "DenyAll",
    "Permission",
    "Role",
    "RolePolicy",
]


class Role(enum.StrEnum):
    """What kind of party acts."""

    CUSTOMER = "customer"
    STAFF = "staff"
    MANAGER = "manager"
    ADMIN = "admin"
    SYSTEM = "system"


class Permission(enum.StrEnum):
    """What an engine call needs."""

    READ = "read"
    HOLD = "hold"
    BOOK = "book"
    CONFIRM = "confirm"
    PAY = "pay"
    REFUND = "refund"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    CHECK_IN = "check_in"
    MARK_NO_SHOW = "mark_no_show"
    COMPLETE = "complete"
    EXPIRE = "expire"
    OVERRIDE = "override"
    SETUP = "setup"
    DISPATCH = "dispatch"
    PRUNE = "prune"


def _actor_id(value: object) -> str:
    return check_id(value, "actor id")


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        msg = f"role must be one of {', '.join(r.value for r in Role)}, got {value!r}"
        raise InvalidInputError(msg, field="role") from None


def _optional_customer(value: object) -> str | None:
    return None if value is None else check_id(value, "customer id")


@attrs.frozen
class Actor:
    """
    Who is calling: an id, a role, and for customers the customer id they act as.

    Its string form (``"manager:ines"``) is what the transition log records.
    """

    id: str = attrs.field(converter=_actor_id)
    role: Role = attrs.field(converter=_role)
    customer_id: str | None = attrs.field(default=None, converter=_optional_customer)

    @classmethod
    def customer(cls, customer_id: str) -> Actor:
        """A customer acting for themselves."""
        return cls(customer_id, Role.CUSTOMER, customer_id)

    @classmethod
    def staff(cls, staff_id: str) -> Actor:
        """A member of staff."""
        return cls(staff_id, Role.STAFF)

    @classmethod
    def manager(cls, manager_id: str) -> Actor:
        """A manager."""
        return cls(manager_id, Role.MANAGER)

    @classmethod
    def admin(cls, admin_id: str) -> Actor:
        """An administrator of the business."""
        return cls(admin_id, Role.ADMIN)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The application itself: sweepers, payment webhooks, imports."""
        return cls(name, Role.SYSTEM)

    def __attrs_post_init__(self) -> None:
        if self.role is Role.CUSTOMER and self.customer_id is None:
            msg = f"a customer actor acts as a customer: give customer_id (Actor.customer({self.id!r}))"
            raise InvalidInputError(msg, field="customer_id")

    def __str__(self) -> str:
        return f"{self.role.value}:{self.id}"


class AuthorizationPolicy(Protocol):
    """Decides whether an actor may do something, to a booking or in general."""

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        """
        Return if *actor* may take *permission* (on *booking*, when there is one); raise otherwise.

        Raises:
            PermissionDeniedError: the actor may not. The engine has written nothing yet.
        """
        ...


_P = Permission
_CUSTOMER: Final = frozenset({_P.READ, _P.HOLD, _P.PAY, _P.CANCEL, _P.RESCHEDULE})
_STAFF: Final = _CUSTOMER | {_P.BOOK, _P.CONFIRM, _P.CHECK_IN, _P.MARK_NO_SHOW, _P.COMPLETE, _P.EXPIRE, _P.DISPATCH}
_MANAGER: Final = _STAFF | {_P.REFUND, _P.OVERRIDE}
_ADMIN: Final = _MANAGER | {_P.SETUP, _P.PRUNE}

ROLE_PERMISSIONS: Final = {
    Role.CUSTOMER: _CUSTOMER,
    Role.STAFF: _STAFF,
    Role.MANAGER: _MANAGER,
    Role.ADMIN: _ADMIN,
    Role.SYSTEM: frozenset(Permission),
}
"""What each role may do under `RolePolicy`."""


def _asked(actor: object, permission: object, booking: object) -> tuple[Actor, Permission]:
    """The actor and permission of an `AuthorizationPolicy.authorize` call, checked (a permission by its text too)."""
    if not isinstance(actor, Actor):
        msg = f"the actor must be an Actor, such as Actor.customer('ann'), not {type(actor).__name__} {actor!r}"
        raise InvalidInputError(msg, field="actor")
    if booking is not None and not isinstance(booking, Booking):
        msg = f"the booking asked about must be a Booking or None, not {type(booking).__name__}"
        raise InvalidInputError(msg, field="booking")
    if isinstance(permission, Permission):
        return actor, permission
    try:
        return actor, Permission(str(permission) if isinstance(permission, str) else "")
    except ValueError:
        known = ", ".join(p.value for p in Permission)
        msg = f"unknown permission {permission!r}; permissions are {known}"
        raise InvalidInputError(msg, field="permission") from None


def _deny(actor: Actor, permission: Permission, why: str) -> PermissionDeniedError:
    msg = f"{actor} may not {permission.value.replace('_', ' ')}: {why}"
    return PermissionDeniedError(msg, actor=str(actor), permission=permission.value)


class RolePolicy:
    """The default policy: permissions by role, and customers only on their own bookings (see the module)."""

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        """Allow by `ROLE_PERMISSIONS`; a customer acts only on bookings with their customer id."""
        actor, permission = _asked(actor, permission, booking)
        if permission not in ROLE_PERMISSIONS[actor.role]:
            raise _deny(actor, permission, f"a {actor.role.value} cannot")
        if actor.role is not Role.CUSTOMER or booking is None:
            return
        if actor.customer_id is None or booking.customer_id != actor.customer_id:
            raise _deny(actor, permission, "it is not their booking")

    def __repr__(self) -> str:
        return "RolePolicy()"


class AllowAll:
    """Allow everything: for scripts and tests that act as the business itself."""

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        """Allow."""

    def __repr__(self) -> str:
        return "AllowAll()"


class DenyAll:
    """Deny everything (to prove that a denial changes nothing)."""

    def authorize(self, actor: Actor, permission: Permission, booking: Booking | None) -> None:
        """Deny."""
        actor, permission = _asked(actor, permission, booking)
        raise _deny(actor, permission, "this engine allows nothing")

    def __repr__(self) -> str:
        return "DenyAll()"
