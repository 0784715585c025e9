"""
slotengine: a booking engine for Python.

It models resources, staff, services and schedules, answers "when can this be booked, and with whom or
what", and takes bookings through their lifecycle without ever double-booking. slotengine's core contains
no I/O: storage, clocks and notifications come in through ports (see `slotengine.ports`).
"""

from importlib.metadata import PackageNotFoundError, version

from slotengine import errors as errors
from slotengine._time import localize as localize
from slotengine.intervals import CapacityProfile as CapacityProfile
from slotengine.intervals import Interval as Interval
from slotengine.intervals import IntervalSet as IntervalSet
from slotengine.money import Money as Money

try:
    __version__ = version("slotengine")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "CapacityProfile",
    "Interval",
    "IntervalSet",
    "Money",
    "errors",
    "localize",
]
