"""`SystemClock`: the real clock. It is the only place in slotengine that reads the time."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["SystemClock"]


class SystemClock:
    """The computer's clock, in UTC."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "<SystemClock>"
