"""
Sync with a site or a CRM: upserts by external ref are idempotent, as a property over generated call sequences.

A CRM that resends its batch must change nothing: after any history of upserts (moves, capacity changes, new
staff, cancellations, template edits), a batch applied once and then again leaves documents, resources,
services, bookings, the transition log and the outbox exactly as the first pass left them; and every single
call made twice in a row changes and emits nothing the second time.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events import WALK

from conftest import at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.errors import ConflictError
from slotengine.events import EventDesk, EventTemplate, Occurrence, OccurrenceStatus
from slotengine.model import Resource, ResourceKind
from slotengine.testing.clock import FrozenClock

NIGHTLY = os.environ.get("SLOTENGINE_NIGHTLY") == "1"
IDS = ("a", "b", "c")
STAFF = ("anna", "ivan", "zoe")  # zoe is new staff: nobody gives her a role before the generated calls
TEMPLATES = (WALK, attrs.evolve(WALK, capacity=6), attrs.evolve(WALK, title="Old town walk, new route"))
Call = EventTemplate | Occurrence


def occurrences(ids: tuple[str, ...] = IDS) -> st.SearchStrategy[Occurrence]:
    """An occurrence of the walk: one of *ids*, its ref always the same function of its id (or none)."""
    return st.sampled_from(ids).flatmap(
        lambda oid: st.builds(
            Occurrence,
            id=st.just(oid),
            template_id=st.just("walk"),
            start=st.sampled_from([at(5, 11), at(5, 12), at(6, 11)]),
            capacity=st.sampled_from([None, 1, 3, 6]),
            staff=st.dictionaries(st.sampled_from(["speaker", "admin"]), st.sampled_from(STAFF), max_size=2),
            external_ref=st.sampled_from([None, f"crm-{oid}"]),
            status=st.sampled_from(
                [OccurrenceStatus.SCHEDULED, OccurrenceStatus.SCHEDULED, OccurrenceStatus.CANCELLED]
            ),
        )
    )


calls: st.SearchStrategy[Call] = st.one_of(st.sampled_from(TEMPLATES), occurrences())


@st.composite
def batches(draw: st.DrawFn) -> list[Call]:
    """What a CRM sends at once: at most one value per template and per occurrence, in any order."""
    chosen = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=3))
    batch: list[Call] = [draw(occurrences((oid,))) for oid in chosen]
    if draw(st.booleans()):
        batch.append(draw(st.sampled_from(TEMPLATES)))
    return list(draw(st.permutations(batch)))


def stored(engine: BookingEngine) -> tuple[Any, ...]:
    """Everything the desk and the engine keep for the tenant, outbox and transition log included."""
    kinds = ("event-template", "event-occurrence", "event-ref", "waitlist")
    bookings = engine.list()
    with engine.storage.transaction(engine.tenant) as tx:  # after engine.list(): transactions do not nest
        return (
            {kind: tx.list_documents(kind) for kind in kinds},
            tx.list_resources(),
            tx.list_services(),
            bookings,
            tx.list_transitions(),
            tx.list_outbox(),
        )


def new_desk() -> tuple[BookingEngine, EventDesk]:
    """A desk whose occurrence "a" has two tickets sold, so moves and capacity changes have something to carry."""
    counter = iter(range(1, 1_000_000))
    engine = BookingEngine(
        MemoryStorage(),
        clock=FrozenClock(at(2, 8)),
        tenant="walks",
        default_actor=Actor.system("t"),
        new_id=lambda: f"id{next(counter)}",
    )
    engine.setup(business())
    for person in STAFF:
        engine.add_resource(Resource(person, person.title(), kind=ResourceKind.USER))
    desk = EventDesk(engine)
    desk.upsert_template(WALK)
    desk.upsert_occurrence(Occurrence("a", "walk", at(5, 11), external_ref="crm-a"))
    desk.sell("a", "adult", 2, customer_id="olga", confirm=True)
    return engine, desk


def upsert(engine: BookingEngine, desk: EventDesk, call: Call) -> bool:
    """Apply one call, then the same call again at once: the second changes and emits nothing. Accepted?"""
    try:
        if isinstance(call, EventTemplate):
            desk.upsert_template(call)
        else:
            desk.upsert_occurrence(call)
    except ConflictError:  # a busy speaker, a capacity below the tickets sold: refused, nothing changed
        return False
    once = stored(engine)

    again = desk.upsert_template(call) if isinstance(call, EventTemplate) else desk.upsert_occurrence(call)

    assert not isinstance(call, EventTemplate) or again is False
    assert once == stored(engine)
    return True


class TestUpsertIdempotency:
    @settings(max_examples=1_500 if NIGHTLY else 150, deadline=None)
    @given(history=st.lists(calls, max_size=6), batch=batches())
    def test_a_batch_sent_twice_changes_nothing_the_second_time(self, history: list[Call], batch: list[Call]) -> None:
        """
        After any history, a batch applied again leaves the stored state and the outbox as they were.

        The calls refused the first time are left out of the second pass: a refused call may rightly succeed
        later, once what was in its way has moved (the batch itself may free a speaker it asked for earlier).
        """
        engine, desk = new_desk()
        for call in history:
            upsert(engine, desk, call)
        accepted = [call for call in batch if upsert(engine, desk, call)]
        first = stored(engine)

        for call in accepted:
            upsert(engine, desk, call)

        assert first == stored(engine)
