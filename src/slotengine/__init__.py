"""
slotengine: a booking engine for Python.

It models resources, staff, services and schedules, answers "when can this be booked, and with whom or
what", and takes bookings through their lifecycle without ever double-booking. slotengine's core contains
no I/O: storage, clocks and notifications come in through ports (`slotengine.ports`), and adapters
(`slotengine.adapters`) live at the edge.
"""

from importlib.metadata import PackageNotFoundError, version

from slotengine import errors as errors
from slotengine import reports as reports
from slotengine._time import localize as localize
from slotengine.authorization import Actor as Actor
from slotengine.authorization import AllowAll as AllowAll
from slotengine.authorization import AuthorizationPolicy as AuthorizationPolicy
from slotengine.authorization import DenyAll as DenyAll
from slotengine.authorization import Permission as Permission
from slotengine.authorization import Role as Role
from slotengine.authorization import RolePolicy as RolePolicy
from slotengine.availability import Assignment as Assignment
from slotengine.availability import Availability as Availability
from slotengine.availability import Explanation as Explanation
from slotengine.availability import Load as Load
from slotengine.availability import Reason as Reason
from slotengine.availability import ReasonCode as ReasonCode
from slotengine.availability import Slot as Slot
from slotengine.availability import Strategy as Strategy
from slotengine.booking import Booking as Booking
from slotengine.booking import Payment as Payment
from slotengine.booking import PaymentKind as PaymentKind
from slotengine.booking import Source as Source
from slotengine.business import Business as Business
from slotengine.engine import BookingEngine as BookingEngine
from slotengine.events import EventDesk as EventDesk
from slotengine.events import EventTemplate as EventTemplate
from slotengine.events import Occurrence as Occurrence
from slotengine.events import OccurrenceStatus as OccurrenceStatus
from slotengine.events import Quota as Quota
from slotengine.events import TicketType as TicketType
from slotengine.events import WaitingEntry as WaitingEntry
from slotengine.events import WaitingState as WaitingState
from slotengine.intervals import CapacityProfile as CapacityProfile
from slotengine.intervals import Interval as Interval
from slotengine.intervals import IntervalSet as IntervalSet
from slotengine.lifecycle import TRANSITIONS as TRANSITIONS
from slotengine.lifecycle import Action as Action
from slotengine.lifecycle import BookingStatus as BookingStatus
from slotengine.lifecycle import TransitionRecord as TransitionRecord
from slotengine.model import UNLIMITED as UNLIMITED
from slotengine.model import Customer as Customer
from slotengine.model import Need as Need
from slotengine.model import Resource as Resource
from slotengine.model import ResourceKind as ResourceKind
from slotengine.model import ResourceRole as ResourceRole
from slotengine.model import Service as Service
from slotengine.model import ServiceUnit as ServiceUnit
from slotengine.money import Money as Money
from slotengine.outbox import OutboxMessage as OutboxMessage
from slotengine.policies import CancellationPolicy as CancellationPolicy
from slotengine.policies import CancellationQuote as CancellationQuote
from slotengine.policies import ConfirmationMode as ConfirmationMode
from slotengine.policies import ConfirmationPolicy as ConfirmationPolicy
from slotengine.policies import HoldPolicy as HoldPolicy
from slotengine.policies import NoShowPolicy as NoShowPolicy
from slotengine.policies import Policies as Policies
from slotengine.policies import RefundTier as RefundTier
from slotengine.policies import ReschedulePolicy as ReschedulePolicy
from slotengine.ports import Clock as Clock
from slotengine.ports import Notifier as Notifier
from slotengine.ports import Storage as Storage
from slotengine.ports import StorageTransaction as StorageTransaction
from slotengine.recurrence import Recurrence as Recurrence
from slotengine.schedule import DateOverride as DateOverride
from slotengine.schedule import RecurringHours as RecurringHours
from slotengine.schedule import Schedule as Schedule
from slotengine.schedule import TimeOff as TimeOff
from slotengine.schedule import TimeRange as TimeRange
from slotengine.schedule import WeeklyHours as WeeklyHours
from slotengine.schedule import effective_hours as effective_hours

try:
    __version__ = version("slotengine")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "TRANSITIONS",
    "UNLIMITED",
    "Action",
    "Actor",
    "AllowAll",
    "Assignment",
    "AuthorizationPolicy",
    "Availability",
    "Booking",
    "BookingEngine",
    "BookingStatus",
    "Business",
    "CancellationPolicy",
    "CancellationQuote",
    "CapacityProfile",
    "Clock",
    "ConfirmationMode",
    "ConfirmationPolicy",
    "Customer",
    "DateOverride",
    "DenyAll",
    "EventDesk",
    "EventTemplate",
    "Explanation",
    "HoldPolicy",
    "Interval",
    "IntervalSet",
    "Load",
    "Money",
    "Need",
    "NoShowPolicy",
    "Notifier",
    "Occurrence",
    "OccurrenceStatus",
    "OutboxMessage",
    "Payment",
    "PaymentKind",
    "Permission",
    "Policies",
    "Quota",
    "Reason",
    "ReasonCode",
    "Recurrence",
    "RecurringHours",
    "RefundTier",
    "ReschedulePolicy",
    "Resource",
    "ResourceKind",
    "ResourceRole",
    "Role",
    "RolePolicy",
    "Schedule",
    "Service",
    "ServiceUnit",
    "Slot",
    "Source",
    "Storage",
    "StorageTransaction",
    "Strategy",
    "TicketType",
    "TimeOff",
    "TimeRange",
    "TransitionRecord",
    "WaitingEntry",
    "WaitingState",
    "WeeklyHours",
    "effective_hours",
    "errors",
    "localize",
    "reports",
]
