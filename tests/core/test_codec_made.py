"""
The documents of bookings, transition records and outbox messages skip `codec.dumps`' walk over their keys.

`codec._dumps_made` writes them without it (a sixth of a booking's Python on its way to storage); that is only
right if no value of these kinds can make a document with a key that is not a string. These properties hold the
``*_to_dict`` functions to it over values built from any fields their checks accept.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine import codec
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment, PaymentKind
from slotengine.errors import InvalidInputError, SlotEngineError
from slotengine.lifecycle import TRANSITIONS, BookingStatus, TransitionRecord
from slotengine.money import Money
from slotengine.outbox import OutboxMessage
from slotengine.policies import CancellationPolicy, HoldPolicy, Policies, RefundTier

BASE = datetime(2030, 6, 3, 8, tzinfo=UTC)
US = timedelta(microseconds=1)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
IDS = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and "\x00" not in s)
INSTANTS = st.integers(0, 10**15).map(lambda n: BASE + n * US)
STEPS = [(before, action, after) for before, moves in TRANSITIONS.items() for action, after in moves.items()]


def _keys_are_strings(doc: Any) -> bool:
    if isinstance(doc, dict):
        return all(isinstance(k, str) and _keys_are_strings(v) for k, v in doc.items())
    if isinstance(doc, list | tuple):
        return all(_keys_are_strings(v) for v in doc)
    return True


@st.composite
def bookings(draw: st.DrawFn) -> Booking:
    start = draw(INSTANTS)
    needs = draw(st.integers(1, 3))
    status = draw(st.sampled_from(list(BookingStatus)))
    currency = draw(st.sampled_from(["EUR", "USD", "JPY"]))
    tiers = draw(st.lists(st.integers(1, 10**6), max_size=3, unique=True))
    policies = Policies(
        hold=HoldPolicy(draw(st.integers(1, 10**6)) * timedelta(seconds=1), draw(st.booleans())),
        cancellation=CancellationPolicy(
            tuple(RefundTier(t * timedelta(minutes=1), Decimal(draw(st.integers(0, 100)))) for t in tiers),
            Decimal(draw(st.integers(0, 100))),
        ),
    )
    payments = tuple(
        Payment(pid, kind, Money(Decimal(amount), currency), draw(INSTANTS), draw(IDS))
        for pid, kind, amount in draw(
            st.lists(st.tuples(IDS, st.sampled_from(list(PaymentKind)), st.integers(1, 10**9)), max_size=3)
        )
    )
    return Booking(
        draw(IDS),
        draw(IDS),
        start,
        start + draw(st.integers(1, 10**11)) * US,
        [Assignment(i, draw(ANY_TEXT), tuple(draw(st.lists(IDS, min_size=1, max_size=3)))) for i in range(needs)],
        tuple(draw(st.integers(1, 5)) for _ in range(needs)),
        status,
        draw(INSTANTS),
        policies=policies,
        hold_until=draw(INSTANTS) if status is BookingStatus.PRE_BOOKING else None,
        customer_id=draw(st.none() | IDS),
        notes=draw(ANY_TEXT),
        external_ref=draw(st.none() | IDS),
        price=draw(st.none() | st.integers(1, 10**9).map(lambda n: Money(Decimal(n), currency))),
        payments=payments,
        customer_zone=draw(st.sampled_from([None, "Europe/Paris", "Asia/Kolkata"])),
    )


@given(st.data())
def test_a_booking_document_has_string_keys_only(data: st.DataObject) -> None:
    """Any booking that can be built is written by `_dumps_made` exactly as `dumps` writes it, keys and all."""
    try:
        booking = data.draw(bookings())
    except SlotEngineError:  # fields the value's own checks refuse: nothing to store
        return
    doc = codec.booking_to_dict(booking)

    assert _keys_are_strings(doc)
    assert codec._dumps_made(doc) == codec.dumps(doc)


@given(st.sampled_from(STEPS), INSTANTS, IDS, IDS, ANY_TEXT)
def test_a_transition_document_has_string_keys_only(
    step: tuple[Any, Any, Any], at: datetime, booking_id: str, actor: str, reason: str
) -> None:
    """Every step the lifecycle has, recorded with any texts, is written by `_dumps_made` as by `dumps`."""
    before, action, after = step
    try:
        record = TransitionRecord(booking_id, before, after, action, at, actor, reason)
    except InvalidInputError:
        return
    doc = codec.transition_to_dict(record)

    assert _keys_are_strings(doc)
    assert codec._dumps_made(doc) == codec.dumps(doc)


@given(IDS, IDS, st.none() | IDS, INSTANTS, INSTANTS, ANY_TEXT, st.none() | INSTANTS, ANY_TEXT)
def test_an_outbox_document_has_string_keys_only(
    message_id: str,
    topic: str,
    booking_id: str | None,
    created: datetime,
    due: datetime,
    payload_text: str,
    sent: datetime | None,
    error: str,
) -> None:
    """Any outbox message that can be built is written by `_dumps_made` as by `dumps`."""
    try:
        message = OutboxMessage(
            message_id,
            topic,
            booking_id,
            created,
            due,
            message_id,
            codec.dumps({"text": payload_text}),
            sent_at=sent,
            last_error=error,
        )
    except InvalidInputError:
        return
    doc = codec.outbox_to_dict(message)

    assert _keys_are_strings(doc)
    assert codec._dumps_made(doc) == codec.dumps(doc)


@pytest.mark.parametrize("doc", [{1: "a"}, {"a": [{None: 1}]}, {"a": ({True: 1},)}])
def test_dumps_still_refuses_a_key_that_is_not_a_string(doc: dict[Any, Any]) -> None:
    """`dumps`, which any document may reach, keeps its walk: JSON would write 1 as "1" and read back another key."""
    with pytest.raises(InvalidInputError, match="not a string"):
        codec.dumps(doc)


def _floats_in(doc: Any) -> bool:
    if isinstance(doc, float):
        return True
    if isinstance(doc, dict):
        return any(_floats_in(v) for v in doc.values())
    if isinstance(doc, list | tuple):
        return any(_floats_in(v) for v in doc)
    return False


def test_the_postgres_request_carries_the_documents_dumps_writes() -> None:
    """
    PostgreSQL's request, written by orjson, reads back as the documents `dumps` writes, whatever they hold.

    orjson writes a NaN float as null where `dumps` refuses it: the documents hold no float at all.
    """
    postgres = pytest.importorskip("slotengine.adapters.postgres", reason="needs slotengine[postgres]")

    @given(st.data(), st.sampled_from(STEPS), ANY_TEXT, ANY_TEXT, st.none() | IDS)
    def check(data: st.DataObject, step: tuple[Any, Any, Any], reason: str, payload: str, key: str | None) -> None:
        try:
            booking = data.draw(bookings())
            before, action, after = step
            record = TransitionRecord(booking.id, before, after, action, booking.created_at, booking.id, reason)
            message = OutboxMessage(
                booking.id, "booking.book", booking.id, BASE, BASE, booking.id, codec.dumps({"text": payload})
            )
            keyed = None if key is None else postgres.IdempotencyRecord(key, "h", booking.id, reason, BASE)
        except SlotEngineError:  # fields the values' own checks refuse: nothing to store
            return
        docs = [codec.booking_to_dict(booking), codec.transition_to_dict(record), codec.outbox_to_dict(message)]
        assert not any(_floats_in(doc) for doc in docs)
        text = postgres._reserve_request(booking, now=BASE, transitions=[record], outbox=[message], idempotency=keyed)
        request = json.loads(text)

        assert [json.loads(codec.dumps(doc)) for doc in docs] == [
            request["doc"],
            request["transitions"][0]["doc"],
            request["outbox"][0]["doc"],
        ]
        assert (request["id"], request["outbox"][0]["id"]) == (booking.id, message.id)
        assert request["idempotency"] == (
            None
            if keyed is None
            else {"key": key, "hash": "h", "booking_id": booking.id, "result": reason, "created_at": BASE.isoformat()}
        )

    check()


def test_the_postgres_request_falls_back_to_dumps_for_what_orjson_refuses() -> None:
    """An integer beyond 64 bits, which orjson refuses, is written as `dumps` writes it; a circular one refused."""
    postgres = pytest.importorskip("slotengine.adapters.postgres", reason="needs slotengine[postgres]")
    big = {"n": 2**70, "m": [-(2**64)]}
    circular: dict[str, Any] = {}
    circular["self"] = circular

    assert json.loads(postgres._request_text(big)) == big
    with pytest.raises(InvalidInputError, match="cannot store"):
        postgres._request_text(circular)
