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
from slotengine.intervals import CapacityProfile, Interval
from slotengine.model import UNLIMITED, Resource

__all__ = ["capacity_conflict", "check_capacity"]


def check_capacity(
    booking: Booking, resources: Mapping[str, Resource], loads: Iterable[Load], *, now: datetime
) -> None:
    """
    Raise unless *booking* fits on its resources next to *loads* at *now*.

    *loads* may hold anything near the booking; loads of the booking itself, expired holds and loads of
    other resources are ignored here. Units the booking itself puts on one resource (for several needs)
    add up.

    Raises:
        NotFoundError: a resource of the booking is not in *resources*.
        ConflictError: some resource would exceed its capacity; ``details`` names it, the interval and the
            bookings in the way.
    """
    by_resource: dict[str, list[Load]] = {}
    for load in loads:
        if load.booking_id != booking.id and load.is_live(now):
            by_resource.setdefault(load.resource_id, []).append(load)
    blocked = Interval(booking.start - booking.buffer_before, booking.end + booking.buffer_after)
    for resource_id, units in booking.units_by_resource().items():
        resource = resources.get(resource_id)
        if resource is None:
            msg = f"no resource {resource_id!r}"
            raise NotFoundError(msg, resource_id=resource_id)
        if resource.capacity is UNLIMITED:
            continue
        others = [ld for ld in by_resource.get(resource_id, ()) if ld.blocked.overlaps(blocked)]
        peak = CapacityProfile((ld.blocked, ld.units) for ld in others).max_load(blocked)
        if peak + units > resource.capacity:
            raise capacity_conflict(
                booking, resource.id, resource.name, resource.capacity, peak, units, [ld.booking_id for ld in others]
            )


def capacity_conflict(
    booking: Booking,
    resource_id: str,
    name: str,
    capacity: int,
    peak: int,
    units: int,
    in_the_way: Iterable[str],
) -> ConflictError:
    """
    Return the refusal of *booking*: a resource has *peak* of *capacity* units taken and it asks *units* more.

    *in_the_way* are the ids of the bookings taking them. Storages that check capacity themselves (in SQL,
    say) build their refusal here, so every adapter refuses in the same words and with the same details.
    """
    ids = tuple(sorted(in_the_way))
    msg = (
        f"{name} is taken at that time: {peak} of {capacity} units are booked "
        f"({', '.join(ids)}) and {units} more were asked for"
    )
    return ConflictError(msg, resource_id=resource_id, start=booking.start, end=booking.end, booking_ids=ids)
