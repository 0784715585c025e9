"""
The capacity check every storage runs inside its lock before writing a booking.

It is the storage's half of the no-double-booking guarantee (the solver's answer is only advice): given the
booking, its resources and the live load already on them, it says whether adding the booking keeps every
resource within capacity at every instant of the booking's interval widened by its buffers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from slotengine.availability import Load
from slotengine.booking import Booking
from slotengine.errors import ConflictError, NotFoundError
from slotengine.intervals import CapacityProfile
from slotengine.model import UNLIMITED, Resource

__all__ = ["check_capacity"]


def check_capacity(
    booking: Booking, resources: Mapping[str, Resource], loads: Iterable[Load], *, now: datetime
) -> None:
    """
    Raise unless *booking* fits on its resources next to *loads* at *now*.

    *loads* may hold anything near the booking; loads of the booking itself, expired holds and loads of
    other resources are ignored here.

    Raises:
        NotFoundError: a resource of the booking is not in *resources*.
        ConflictError: some resource would exceed its capacity; ``details`` names it, the interval and the
            bookings in the way.
    """
    by_resource: dict[str, list[Load]] = {}
    for load in loads:
        if load.booking_id != booking.id and load.is_live(now):
            by_resource.setdefault(load.resource_id, []).append(load)
    for mine in booking.loads():
        resource = resources.get(mine.resource_id)
        if resource is None:
            msg = f"no resource {mine.resource_id!r}"
            raise NotFoundError(msg, resource_id=mine.resource_id)
        if resource.capacity is UNLIMITED:
            continue
        blocked = mine.blocked
        others = [ld for ld in by_resource.get(mine.resource_id, ()) if ld.blocked.overlaps(blocked)]
        peak = CapacityProfile((ld.blocked, ld.units) for ld in others).max_load(blocked)
        if peak + mine.units > resource.capacity:
            ids = ", ".join(sorted(ld.booking_id for ld in others))
            msg = (
                f"{resource.name} is taken at that time: {peak} of {resource.capacity} units are booked "
                f"({ids}) and {mine.units} more were asked for"
            )
            raise ConflictError(
                msg,
                resource_id=resource.id,
                start=booking.start,
                end=booking.end,
                booking_ids=tuple(sorted(ld.booking_id for ld in others)),
            )
