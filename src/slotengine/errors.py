"""
The one exception tree of slotengine.

Every error the library raises on purpose is a `SlotEngineError`. Each class carries a stable ``code`` for
programs (log it, switch on it, translate it) and a message written for people. Errors that resemble a
built-in also subclass it, so ``except ValueError`` keeps working for input errors and ``except LookupError``
for missing things.

A rule the whole library keeps: when one of these is raised, nothing was changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from slotengine.businessfile import Problem

__all__ = [
    "AmbiguousLocalTimeError",
    "BusinessFileError",
    "CatalogueChangedError",
    "ConcurrencyError",
    "ConflictError",
    "CurrencyMismatchError",
    "IdempotencyKeyMismatchError",
    "IllegalTransitionError",
    "InvalidInputError",
    "InvalidIntervalError",
    "InvalidMoneyError",
    "NaiveDatetimeError",
    "NonexistentLocalTimeError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PolicyViolationError",
    "QuoteChangedError",
    "SalesClosedError",
    "SlotEngineError",
    "SoldOutError",
    "StaffConflictError",
    "StorageError",
    "UnknownOccurrenceError",
    "UnknownTemplateError",
    "UnknownTimeZoneError",
]


class SlotEngineError(Exception):
    """
    The root of every error slotengine raises on purpose.

    It is abstract: only its subclasses are ever raised, so that a caller can always tell *what kind* of
    failure happened from the class and its ``code``.
    """

    code: ClassVar[str] = "slotengine_error"

    def __init__(self, message: str, **details: Any) -> None:
        if type(self) is SlotEngineError:
            msg = "SlotEngineError is abstract: raise one of its subclasses"
            raise TypeError(msg)
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details)

    def __str__(self) -> str:
        return self.message


# --- bad input -------------------------------------------------------------------------------------------


class InvalidInputError(SlotEngineError, ValueError):
    """A value given to slotengine is not acceptable; nothing was built or changed."""

    code: ClassVar[str] = "invalid_input"


class NaiveDatetimeError(InvalidInputError):
    """A datetime without a time zone reached the public API, where only aware datetimes are accepted."""

    code: ClassVar[str] = "naive_datetime"


class InvalidIntervalError(InvalidInputError):
    """An interval whose end is not after its start, or whose bounds are of the wrong kind."""

    code: ClassVar[str] = "invalid_interval"


class NonexistentLocalTimeError(InvalidInputError):
    """A local wall time that the clocks skip (a DST gap) was given where an exact time was required."""

    code: ClassVar[str] = "nonexistent_local_time"


class AmbiguousLocalTimeError(InvalidInputError):
    """A local wall time that happens twice (a DST fold) was given where an exact time was required."""

    code: ClassVar[str] = "ambiguous_local_time"


class OutOfRangeError(InvalidInputError):
    """An instant or a duration lies outside the range slotengine accepts (years 1970 to 2200 by default)."""

    code: ClassVar[str] = "out_of_range"


class UnknownTimeZoneError(InvalidInputError):
    """A time zone name that is not an IANA zone key known to ``zoneinfo``."""

    code: ClassVar[str] = "unknown_time_zone"


class InvalidMoneyError(InvalidInputError):
    """An amount of money that is a float, not a number, infinite, or too precise for its currency."""

    code: ClassVar[str] = "invalid_money"


class IdempotencyKeyMismatchError(InvalidInputError):
    """An idempotency key was reused for a different request; nothing was done."""

    code: ClassVar[str] = "idempotency_key_mismatch"


class CurrencyMismatchError(InvalidInputError):
    """Two amounts in different currencies were combined; slotengine never converts currencies."""

    code: ClassVar[str] = "currency_mismatch"


class BusinessFileError(InvalidInputError):
    """
    A business file cannot be used: it is unreadable, not valid TOML, or it describes something invalid.

    ``problems`` lists every problem found (`slotengine.businessfile.Problem`: a location in the file and a
    message), not only the first; ``source`` names the file. Nothing was built or written.
    """

    code: ClassVar[str] = "business_file"

    def __init__(self, message: str, *, problems: Iterable[Problem] = (), source: str = "", **details: Any) -> None:
        found = tuple(problems)
        super().__init__(message, problems=found, source=source, **details)
        self.problems: tuple[Problem, ...] = found
        self.source = source


# --- missing things --------------------------------------------------------------------------------------


class NotFoundError(SlotEngineError, LookupError):
    """
    A resource, service, booking or other record does not exist (for this tenant).

    A record of another tenant is reported exactly like one that does not exist.
    """

    code: ClassVar[str] = "not_found"


class UnknownTemplateError(NotFoundError):
    """An event template named by id or external ref does not exist (for this tenant)."""

    code: ClassVar[str] = "unknown_template"


class UnknownOccurrenceError(NotFoundError):
    """A sale or a change names an occurrence that does not exist: refused, never attached to nothing."""

    code: ClassVar[str] = "unknown_occurrence"


# --- refusals --------------------------------------------------------------------------------------------


class ConflictError(SlotEngineError):
    """
    The requested time cannot be booked: it is taken, held, full, or otherwise unavailable.

    ``details`` carries what is known: ``resource_id``, ``start``, ``end`` and ``reasons``. A subclass's ``code``
    says what kind of conflict it is; `QuoteChangedError` concerns money, not time, and has no ``reasons``.
    """

    code: ClassVar[str] = "conflict"


class SoldOutError(ConflictError):
    """An occurrence (or a ticket quota of it) has no seats left for the tickets asked for; join its waiting list."""

    code: ClassVar[str] = "sold_out"


class QuoteChangedError(ConflictError):
    """
    A cancellation's terms changed since the quote shown to the client (``expected_quote``): nothing was cancelled.

    A tier boundary passed, or a payment or refund came in. ``details["quote"]`` holds the terms now (there are
    no ``reasons``: no time is in question, and the code says what happened). Show the new quote and ask again.
    """

    code: ClassVar[str] = "quote_changed"


class StaffConflictError(ConflictError):
    """
    A person (or the venue) cannot take a role in an occurrence: their time is already booked then.

    The message says who, which role, and what is in the way and when (in local time). The same as values:
    ``staff_id``, ``role``, ``occurrence_id`` (the occurrence refused), ``conflicting_booking_id``, and
    ``conflicting_occurrence_id`` (None when the booking in the way is not an occurrence's), each None when
    unknown; ``details`` carries them too.
    """

    code: ClassVar[str] = "staff_conflict"

    def __init__(
        self,
        message: str,
        *,
        staff_id: str | None = None,
        role: str | None = None,
        occurrence_id: str | None = None,
        conflicting_booking_id: str | None = None,
        conflicting_occurrence_id: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(
            message,
            staff_id=staff_id,
            role=role,
            occurrence_id=occurrence_id,
            conflicting_booking_id=conflicting_booking_id,
            conflicting_occurrence_id=conflicting_occurrence_id,
            **details,
        )
        self.staff_id = staff_id
        self.role = role
        self.occurrence_id = occurrence_id
        self.conflicting_booking_id = conflicting_booking_id
        self.conflicting_occurrence_id = conflicting_occurrence_id


class IllegalTransitionError(SlotEngineError):
    """An action that the booking lifecycle does not allow from the booking's current status."""

    code: ClassVar[str] = "illegal_transition"

    def __init__(self, message: str, *, status: object, action: object, **details: Any) -> None:
        super().__init__(message, status=status, action=action, **details)
        self.status = status
        self.action = action


class PolicyViolationError(SlotEngineError):
    """
    An allowed action that the business's policy refuses now (a deadline passed, a limit reached).

    ``details`` names the rule, and the deadline where there is one.
    """

    code: ClassVar[str] = "policy_violation"

    def __init__(self, message: str, *, rule: str, deadline: datetime | None = None, **details: Any) -> None:
        super().__init__(message, rule=rule, deadline=deadline, **details)
        self.rule = rule
        self.deadline = deadline


class SalesClosedError(PolicyViolationError):
    """Tickets of an occurrence are not on sale now: outside its sales window, or the occurrence was cancelled."""

    code: ClassVar[str] = "sales_closed"


class PermissionDeniedError(SlotEngineError):
    """The actor is not allowed to do this; nothing was changed."""

    code: ClassVar[str] = "permission_denied"


# --- storage ---------------------------------------------------------------------------------------------


class StorageError(SlotEngineError):
    """The storage failed in a way that is not the caller's fault; the transaction was rolled back."""

    code: ClassVar[str] = "storage_error"


class ConcurrencyError(StorageError):
    """
    A concurrent writer got in the way, or the storage could not serve the call for a moment; nothing was written.

    A serialization failure, a deadlock or a lock timeout; no pooled connection free in time, or a connection
    lost before the transaction committed. Retrying the same call is safe and usually succeeds; the engine
    retries a bounded number of times.
    """

    code: ClassVar[str] = "concurrency"
    retryable: ClassVar[bool] = True


class CatalogueChangedError(ConcurrencyError):
    """
    The catalogue (business, resources, services) changed after the caller read it; nothing was written.

    Raised by `slotengine.ports.ReserveAndRecord.reserve_and_record` when the catalogue is no longer at the
    version the engine decided with. The engine reads the catalogue again and decides again.
    """

    code: ClassVar[str] = "catalogue_changed"
