"""`FrozenClock`: a clock that moves only when a test says so."""

from __future__ import annotations

from datetime import datetime, timedelta

from slotengine._time import to_utc
from slotengine.errors import InvalidInputError

__all__ = ["FrozenClock"]


class FrozenClock:
    """
    A settable, advanceable clock for tests (trio's ``MockClock`` idea).

    Raises:
        NaiveDatetimeError: it is given a naive datetime.
        InvalidInputError: it is asked to go backwards by `advance`.
    """

    def __init__(self, now: datetime) -> None:
        self._now = to_utc(now, "now")

    def now(self) -> datetime:
        """Return the frozen instant."""
        return self._now

    def set(self, now: datetime) -> None:
        """Jump to *now* (forwards or backwards)."""
        self._now = to_utc(now, "now")

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by *delta* and return the new instant."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            msg = f"a clock advances by a non-negative timedelta, got {delta!r}"
            raise InvalidInputError(msg)
        self._now += delta
        return self._now

    def __repr__(self) -> str:
        return f"<FrozenClock({self._now.isoformat()})>"
