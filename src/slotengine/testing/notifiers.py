"""`RecordingNotifier`: a notifier that keeps what it was asked to send, and can be told to fail."""

from __future__ import annotations

from slotengine.outbox import OutboxMessage

__all__ = ["NotifierDown", "RecordingNotifier"]


class NotifierDown(Exception):  # noqa: N818 - it names the situation a test simulates
    """Raised by a `RecordingNotifier` told to fail, as a real channel's outage would."""


class RecordingNotifier:
    """
    Keeps every message it "sends", in order; `fail_next` makes the next sends raise `NotifierDown`.

    ``delivered`` is what a person would see after deduplication by ``dedupe_key``; ``sent`` has every call.
    """

    def __init__(self) -> None:
        self.sent: list[OutboxMessage] = []
        self._failures = 0

    def fail_next(self, times: int = 1) -> None:
        """Make the next *times* calls to `send` fail."""
        self._failures += times

    def send(self, message: OutboxMessage) -> None:
        """Record *message*, or raise `NotifierDown` if told to fail."""
        if self._failures:
            self._failures -= 1
            msg = "the channel is down (simulated)"
            raise NotifierDown(msg)
        self.sent.append(message)

    @property
    def delivered(self) -> list[OutboxMessage]:
        """The messages a person would see: the first of each dedupe key."""
        seen: set[str] = set()
        out = []
        for message in self.sent:
            if message.dedupe_key not in seen:
                seen.add(message.dedupe_key)
                out.append(message)
        return out

    def __repr__(self) -> str:
        return f"<RecordingNotifier(sent={len(self.sent)})>"
