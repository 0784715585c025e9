"""
Booking scripts: random sequences of engine calls and clock moves, and a runner that plays them.

A script is a tuple of steps (`Create`, `Confirm`, `Pay`, `Cancel`, `Reschedule`, `CheckIn`, `NoShow`,
`Complete`, `Advance`, `Sweep`). Steps name bookings by the order they were created in, modulo how many exist
(``booking=2`` is the third booking the script created, or the first of two), so a script means the same
thing on every engine and adapter. The
runner returns what happened at each step (the booking, or the class of the refusal), which is what
agreement and notification tests compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
from hypothesis import strategies as st

from slotengine.engine import BookingEngine
from slotengine.errors import SlotEngineError
from slotengine.money import Money
from slotengine.testing.clock import FrozenClock

__all__ = [
    "Advance",
    "Cancel",
    "CheckIn",
    "Complete",
    "Confirm",
    "Create",
    "NoShow",
    "Pay",
    "Reschedule",
    "Step",
    "Sweep",
    "booking_scripts",
    "run_script",
]


@attrs.frozen
class Create:
    """Hold (or, with ``firm``, book) *service_id* at *start* for *customer_id*."""

    service_id: str
    start: datetime
    firm: bool = False
    customer_id: str | None = None


@attrs.frozen
class Confirm:
    """Confirm the *booking*-th booking."""

    booking: int


@attrs.frozen
class Pay:
    """Pay *amount* on the *booking*-th booking."""

    booking: int
    amount: Money


@attrs.frozen
class Cancel:
    """Cancel the *booking*-th booking, as the business or not."""

    booking: int
    by_business: bool = False


@attrs.frozen
class Reschedule:
    """Move the *booking*-th booking to *start*."""

    booking: int
    start: datetime


@attrs.frozen
class CheckIn:
    """Check in the *booking*-th booking."""

    booking: int


@attrs.frozen
class NoShow:
    """Mark the *booking*-th booking a no-show."""

    booking: int


@attrs.frozen
class Complete:
    """Complete the *booking*-th booking."""

    booking: int


@attrs.frozen
class Advance:
    """Move the clock forward by *by*."""

    by: timedelta


@attrs.frozen
class Sweep:
    """Run `BookingEngine.expire_due`."""


Step = Create | Confirm | Pay | Cancel | Reschedule | CheckIn | NoShow | Complete | Advance | Sweep


def booking_scripts(
    service_id: str,
    starts: Sequence[datetime],
    *,
    amounts: Sequence[Money] = (Money("10", "EUR"), Money("20", "EUR")),
    max_steps: int = 25,
) -> st.SearchStrategy[tuple[Step, ...]]:
    """Draw scripts of up to *max_steps* steps over *starts*, with clock moves from a minute to a day."""
    index = st.integers(0, 7)
    start = st.sampled_from(list(starts))
    customer = st.sampled_from(["ann", "bob", None])
    create = st.builds(Create, st.just(service_id), start, st.booleans(), customer)
    step: st.SearchStrategy[Step] = st.one_of(
        create,
        create,
        st.builds(Confirm, index),
        st.builds(Pay, index, st.sampled_from(list(amounts))),
        st.builds(Cancel, index, st.booleans()),
        st.builds(Reschedule, index, start),
        st.builds(CheckIn, index),
        st.builds(NoShow, index),
        st.builds(Complete, index),
        st.builds(Advance, st.sampled_from([1, 10, 30, 60, 180, 24 * 60]).map(lambda m: timedelta(minutes=m))),
        st.just(Sweep()),
    )
    return st.lists(step, min_size=min(3, max_steps), max_size=max_steps).map(tuple)


def run_script(engine: BookingEngine, clock: FrozenClock, script: Sequence[Step]) -> list[object]:  # noqa: PLR0912
    """
    Play *script* on *engine*; return, per step, the resulting booking(s) or the refusal's error class.

    Steps that name a booking before the script created any are skipped (recorded as None).
    """
    made: list[str] = []
    results: list[object] = []
    payments = 0
    for step in script:
        if isinstance(step, Advance):
            clock.advance(step.by)
            results.append(clock.now())
            continue
        if isinstance(step, Sweep):
            results.append(tuple(b.id for b in engine.expire_due()))
            continue
        if not isinstance(step, Create) and not made:
            results.append(None)
            continue
        target = "" if isinstance(step, Create) else made[step.booking % len(made)]
        try:
            if isinstance(step, Create):
                call = engine.book if step.firm else engine.hold
                booking = call(step.service_id, step.start, customer_id=step.customer_id)
                made.append(booking.id)
                results.append(booking)
            elif isinstance(step, Confirm):
                results.append(engine.confirm(target))
            elif isinstance(step, Pay):
                payments += 1
                results.append(engine.pay(target, step.amount, payment_id=f"script-{payments}"))
            elif isinstance(step, Cancel):
                results.append(engine.cancel(target, by_business=step.by_business))
            elif isinstance(step, Reschedule):
                results.append(engine.reschedule(target, step.start))
            elif isinstance(step, CheckIn):
                results.append(engine.check_in(target))
            elif isinstance(step, NoShow):
                results.append(engine.mark_no_show(target))
            else:
                results.append(engine.complete(target))
        except SlotEngineError as error:
            results.append(type(error))
    return results
