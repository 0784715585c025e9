"""
The background jobs of one business, in one pass: what a worker runs every minute or so.

slotengine reads no clock and starts no thread, so nothing happens between calls unless something calls:
`run_jobs` records lapsed holds, walks the events' waiting lists, and drains the outbox through a notifier.
The ``slotengine worker`` command runs it in a loop for several businesses; an app with its own scheduler
(cron, Celery beat, a systemd timer) calls it directly (docs/how-to/run-the-background-jobs.md).
"""

from __future__ import annotations

import attrs

from slotengine.authorization import Actor, Permission
from slotengine.engine import BookingEngine, _check_notifier
from slotengine.errors import InvalidInputError
from slotengine.events import EventDesk
from slotengine.ports import Notifier

__all__ = ["JobsReport", "run_jobs"]

_MAX_BATCH = 10_000


@attrs.frozen
class JobsReport:
    """What one `run_jobs` pass did: holds recorded expired, waiting-list offers made, messages handled."""

    expired: int = 0
    offers: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    withdrawn: int = 0

    @property
    def idle(self) -> bool:
        """True when the pass found nothing to do."""
        return not any(attrs.astuple(self))

    def to_dict(self) -> dict[str, int]:
        """The figures by name, for JSON."""
        return attrs.asdict(self)


def run_jobs(
    engine: BookingEngine,
    notifier: Notifier,
    *,
    desk: EventDesk | None = None,
    batch: int = 100,
    actor: Actor | None = None,
) -> JobsReport:
    """
    One pass of *engine*'s business's jobs: expire lapsed holds, walk waiting lists, send what is due.

    The outbox is drained: `BookingEngine.dispatch_due` is called again while a whole *batch* went out, and the
    pass stops at the first batch that did not (the backlog is gone, or the channel fails and the next pass
    goes on). Each step is its own transaction and is safe beside other workers; a pass that dies part-way
    leaves nothing half done. With *desk* (the business sells event tickets) its waiting lists are walked
    after the sweep. *actor* must be allowed to expire holds and dispatch (staff, admin or system).

    Raises:
        InvalidInputError: *batch* is not a whole number from 1 to 10,000, *notifier* has no ``send`` (or is a
            notifier class, not a notifier), or *desk* serves another engine (nothing is done).
        PermissionDeniedError: *actor* may not run the jobs: expire holds, dispatch, or (with *desk*) walk the
            waiting lists. Asked before anything is done, so a refusal changes nothing.
        StorageError: the storage failed; what earlier steps did stays done.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= _MAX_BATCH:
        msg = f"batch must be a whole number from 1 to {_MAX_BATCH:,}, got {batch!r}"
        raise InvalidInputError(msg, field="batch")
    given: tuple[object, object] = (engine, desk)
    if not isinstance(given[0], BookingEngine):
        msg = f"run_jobs runs a BookingEngine's jobs, not {type(given[0]).__name__} {given[0]!r}"
        raise InvalidInputError(msg, field="engine")
    if given[1] is not None and not isinstance(given[1], EventDesk):
        msg = f"desk must be the business's EventDesk or None, not {type(given[1]).__name__} {given[1]!r}"
        raise InvalidInputError(msg, field="desk")
    _check_notifier(notifier)  # before the sweep: a refusal changes nothing
    if desk is not None and desk.engine is not engine:
        msg = "the events desk given serves another engine; give the desk made for this business's engine"
        raise InvalidInputError(msg, field="desk")
    # Every permission the pass needs is asked for first: a refusal must not come after holds were expired.
    who = engine._who(actor)
    for permission in (Permission.EXPIRE, Permission.DISPATCH):
        engine._allow(who, permission)
    if desk is not None:
        desk._allow(actor, Permission.EXPIRE)  # whom the desk walks the lists as (actor, the desk's, the engine's)
    expired = len(engine.expire_due(actor=actor))
    offers = 0 if desk is None else len(desk.process_waiting_lists(actor=actor))
    sent = retried = failed = withdrawn = 0
    while True:
        done = engine.dispatch_due(notifier, limit=batch, actor=actor)
        sent, retried = sent + done.sent, retried + done.retried
        failed, withdrawn = failed + done.failed, withdrawn + done.withdrawn
        if done.sent < batch:  # a batch is *batch* messages handed over: fewer sent, and the backlog is gone or failing
            return JobsReport(expired, offers, sent, retried, failed, withdrawn)
