"""
slotengine's public test kit.

- `slotengine.testing.strategies`: hypothesis strategies for every value, drawn in real zones near real DST
  transitions, and whole availability scenarios;
- `slotengine.testing.oracle`: brute-force oracles (minute grids, every combination) that are slow but
  obviously right, to test fast code against;
- `slotengine.testing.conformance`: the storage conformance kit (`check_storage`, `agreement_machine`,
  `check_concurrency`) that any adapter runs from its own pytest with a storage factory;
- `slotengine.testing.scripts`: booking scripts (random sequences of engine calls) and a runner;
- `FrozenClock`: a clock that moves only when told; `RecordingNotifier`: a notifier that keeps what it sent.

Its strategies, oracles and conformance kit import hypothesis and pytest (``slotengine[testing]``), so they are
for test suites only; ``import slotengine`` never imports this package.
"""

from slotengine.testing.clock import FrozenClock as FrozenClock
from slotengine.testing.notifiers import NotifierDown as NotifierDown
from slotengine.testing.notifiers import RecordingNotifier as RecordingNotifier

__all__ = ["FrozenClock", "NotifierDown", "RecordingNotifier"]
