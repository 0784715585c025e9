"""
Hypothesis strategies for slotengine's values: the public door of the test kit's strategies.

Instants are drawn in real IANA zones and pulled towards real DST transitions, because that is where time code
breaks. Every strategy returns valid values; tests that want invalid ones build them by hand.
"""

# `Name as Name` marks a re-export for type checkers (STYLE habit 1).
from slotengine.testing._interval_strategies import INTERVAL_WINDOW as INTERVAL_WINDOW
from slotengine.testing._interval_strategies import interval_lists as interval_lists
from slotengine.testing._interval_strategies import interval_sets as interval_sets
from slotengine.testing._interval_strategies import intervals as intervals
from slotengine.testing._interval_strategies import weighted_loads as weighted_loads
from slotengine.testing._model_strategies import customers as customers
from slotengine.testing._model_strategies import money as money
from slotengine.testing._model_strategies import needs as needs
from slotengine.testing._model_strategies import resources as resources
from slotengine.testing._model_strategies import services as services
from slotengine.testing._schedule_strategies import schedule_windows as schedule_windows
from slotengine.testing._schedule_strategies import schedules as schedules
from slotengine.testing._schedule_strategies import time_ranges as time_ranges
from slotengine.testing._schedule_strategies import weekly_hours as weekly_hours
from slotengine.testing._solver_strategies import Scenario as Scenario
from slotengine.testing._solver_strategies import scenarios as scenarios
from slotengine.testing._time_strategies import DST_ZONES as DST_ZONES
from slotengine.testing._time_strategies import aware_datetimes as aware_datetimes
from slotengine.testing._time_strategies import dst_transitions as dst_transitions
from slotengine.testing._time_strategies import zone_names as zone_names
from slotengine.testing.scripts import booking_scripts as booking_scripts

__all__ = [
    "DST_ZONES",
    "INTERVAL_WINDOW",
    "Scenario",
    "aware_datetimes",
    "booking_scripts",
    "customers",
    "dst_transitions",
    "interval_lists",
    "interval_sets",
    "intervals",
    "money",
    "needs",
    "resources",
    "scenarios",
    "schedule_windows",
    "schedules",
    "services",
    "time_ranges",
    "weekly_hours",
    "weighted_loads",
    "zone_names",
]
