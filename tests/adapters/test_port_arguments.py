"""
The shared argument checks of `slotengine.ports`, which every storage adapter calls before it reads or writes.

The adapters are held to them by the conformance kit (``check_reserve_checks_its_arguments_first``,
``check_values_of_the_wrong_kind_are_refused``, ``check_reads_check_their_arguments``,
``check_update_booking_never_takes_time_again``...); these tests pin the checks themselves: `BookingQuery`'s
fields, version numbers, the order in which `check_reserve` names a fault, and the rule of `check_update` that an
update never makes a booking take time it did not.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from slotengine import ports
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.availability import Assignment
from slotengine.booking import Booking, Source
from slotengine.errors import (
    ConcurrencyError,
    InvalidInputError,
    NaiveDatetimeError,
    NotFoundError,
    OutOfRangeError,
)
from slotengine.intervals import Interval
from slotengine.lifecycle import LIVE_STATUSES, Action, BookingStatus, TransitionRecord
from slotengine.model import Resource
from slotengine.outbox import OutboxMessage
from slotengine.ports import BookingQuery, Storage

# The checks are read from the module when a test runs (not imported by name), so that each test says for itself
# what it finds missing.

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
T0 = datetime(2030, 6, 3, 8, tzinfo=UTC)
H = timedelta(hours=1)
NAIVE = datetime(2030, 6, 3, 8)


def booking(booking_id: str = "b1", **fields: Any) -> Booking:
    status = fields.pop("status", BookingStatus.CONFIRMED)
    hold = fields.pop("hold_until", T0 + 4 * H if status is BookingStatus.PRE_BOOKING else None)
    return Booking(
        booking_id,
        "s1",
        fields.pop("start", T0 + 2 * H),
        fields.pop("end", T0 + 3 * H),
        (Assignment(0, "", tuple(fields.pop("resources", ("r1",)))),),
        (1,),
        status,
        T0,
        hold_until=hold,
        **fields,
    )


def record(booking_id: str = "b1") -> TransitionRecord:
    return TransitionRecord(booking_id, None, BookingStatus.CONFIRMED, Action.BOOK, T0, "system")


def message(message_id: str = "m1") -> OutboxMessage:
    return OutboxMessage(message_id, "booking.booked", "b1", T0, T0, f"dedupe-{message_id}")


# --- what ports exports -------------------------------------------------------------------------------------------


def test_every_shared_check_is_exported() -> None:
    """resource_ids_to_lock and excluded_ids are public (adapters outside slotengine call them), and so are the new checks."""
    shared = {
        "resource_ids_to_lock",
        "excluded_ids",
        "check_kind",
        "check_version",
        "check_ids",
        "check_id_or_none",
        "check_instant",
        "check_records",
        "check_messages",
        "check_reserve",
        "check_reserve_and_record",
        "check_update",
    }

    assert shared <= set(ports.__all__)
    assert all(hasattr(ports, name) for name in ports.__all__)


# --- BookingQuery ---------------------------------------------------------------------------------------------------


class TestBookingQuery:
    @pytest.mark.parametrize(
        "given",
        [
            "confirmed",
            BookingStatus.CONFIRMED,
            frozenset({"confirmed"}),
            ["confirmed", BookingStatus.CONFIRMED],
            (s for s in ["confirmed"]),
        ],
    )
    def test_statuses_are_read_as_statuses(self, given: object) -> None:
        """A status's text is the status, one status alone is a set of one, and any collection becomes a frozenset."""
        query = BookingQuery(statuses=given)  # type: ignore[arg-type]

        assert frozenset({BookingStatus.CONFIRMED}) == query.statuses

    def test_no_statuses_and_every_status_are_kept(self) -> None:
        assert BookingQuery().statuses is None
        assert frozenset() == BookingQuery(statuses=[]).statuses
        assert LIVE_STATUSES == BookingQuery(statuses=LIVE_STATUSES).statuses

    @pytest.mark.parametrize(
        "fields",
        [
            {"statuses": "confirmd"},
            {"statuses": ["confirmed", "nope"]},
            {"statuses": [None]},
            {"statuses": 5},
            {"statuses": b"confirmed"},
            {"statuses": {"confirmed": True}},
            {"customer_id": ["c1"]},
            {"customer_id": ""},
            {"customer_id": "c\x00"},
            {"resource_id": 7},
            {"resource_id": "\ud800"},
            {"service_id": ("s1",)},
            {"source": 1},
            {"external_ref": "x" * 201},
            {"period": (T0, T0 + H)},
            {"created": "2030-06-03"},
            {"blocked": [T0, T0 + H]},
        ],
    )
    def test_a_field_of_another_kind_is_refused(self, fields: dict[str, object]) -> None:
        """Every field is checked when the query is made: a query the SQL adapters could not read is not made."""
        with pytest.raises(InvalidInputError):
            BookingQuery(**fields)  # type: ignore[arg-type]

    def test_good_fields_are_kept_as_given(self) -> None:
        window = Interval(T0, T0 + H)
        query = BookingQuery("r1", "c1", None, window, Source.PARTNER, "x1", "s1", window, window)

        assert (query.resource_id, query.customer_id, query.source, query.period) == ("r1", "c1", "partner", window)
        assert type(query.source) is str


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        made: Storage = MemoryStorage()
    elif request.param == "sqlite":
        made = SQLiteStorage(Path(tempfile.mkdtemp()) / "s.db", synchronous="NORMAL")
    else:
        if not DSN:
            pytest.skip("set SLOTENGINE_TEST_POSTGRES_DSN to run the PostgreSQL tests")
        import psycopg

        from slotengine.adapters.postgres import PostgresStorage

        schema = f"slotengine_args_{uuid.uuid4().hex[:10]}"
        made = PostgresStorage(DSN, schema=schema, max_size=2)
    try:
        yield made
    finally:
        made.close()
        if request.param == "postgres":
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_statuses_given_as_texts_find_the_same_bookings_everywhere(storage: Storage) -> None:
    """statuses={"confirmed"} worked on memory and raised AttributeError on SQLite and PostgreSQL."""
    with storage.transaction("t") as tx:
        tx.put_resource(Resource("r1", "Box", capacity=2))
        tx.reserve(booking("b1"), now=T0)
        tx.reserve(booking("b2", status=BookingStatus.PRE_BOOKING), now=T0)
        tx.commit()
    with storage.transaction("t") as tx:
        by_text = [b.id for b in tx.find_bookings(BookingQuery(statuses=frozenset({"confirmed"})))]  # type: ignore[arg-type]
        one = [b.id for b in tx.find_bookings(BookingQuery(statuses="pre_booking"))]  # type: ignore[arg-type]
        by_member = [b.id for b in tx.find_bookings(BookingQuery(statuses=frozenset({BookingStatus.CONFIRMED})))]

    assert (["b1"], ["b2"]) == (by_text, one)
    assert by_text == by_member


# --- versions, ids, records ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [True, False, 1.0, "1", None, 2**63, -(2**63) - 1, pytest.param(10**5000, id="10**5000"), [1]]
)
def test_a_version_is_an_int_of_64_bits(value: object) -> None:
    """Anything but a plain int is refused (bool too): a text "1" compared with 1 was a retryable ConcurrencyError."""
    with pytest.raises(InvalidInputError, match="expected_version"):
        ports.check_version(value, "expected_version")


@pytest.mark.parametrize("value", [0, 1, -3, 2**63 - 1, -(2**63)])
def test_any_int_of_64_bits_is_a_version(value: int) -> None:
    assert value == ports.check_version(value, "catalogue_version")


def test_ids_are_read_once_and_a_text_is_not_a_collection_of_ids() -> None:
    assert ["a", "b"] == ports.check_ids((i for i in ["b", "a", "b"]), "booking id")
    for bad in ("bb", b"bb", 5, ["b", 1], ["b", ""], ["a\x00"], None):
        with pytest.raises(InvalidInputError):
            ports.check_ids(bad, "booking id")


def test_resource_ids_to_lock_refuses_text_that_is_no_id_before_looking_for_resources() -> None:
    """An id no storage can keep is bad input (InvalidInputError); an id that is not text still names no resource."""
    with pytest.raises(InvalidInputError):
        ports.resource_ids_to_lock(["zz", "a\x00"])
    with pytest.raises(InvalidInputError):
        ports.resource_ids_to_lock(["\ud800"])
    with pytest.raises(NotFoundError):
        ports.resource_ids_to_lock(["r1", 7])  # type: ignore[list-item]
    assert ["a", "b"] == ports.resource_ids_to_lock(i for i in ("b", "a"))  # type: ignore[arg-type]


def test_records_and_messages_are_read_once_and_checked_whole() -> None:
    assert (record(),) == ports.check_records(r for r in [record()])
    assert (message(),) == ports.check_messages(m for m in [message()])
    for bad in ("junk", [record(), "junk"], [message()], record()):
        with pytest.raises(InvalidInputError):
            ports.check_records(bad)
    for bad in ("m1", [message(), None], [record()], message()):
        with pytest.raises(InvalidInputError):
            ports.check_messages(bad)


# --- reserve ----------------------------------------------------------------------------------------------------------


class TestCheckReserve:
    def test_the_checked_values(self) -> None:
        paris = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
        made = booking(buffer_before=timedelta(minutes=15))

        checked, blocked, now, excluded = ports.check_reserve(made, paris, (b for b in ["y", "x", "y"]))

        assert (checked, now, now.tzinfo, excluded) == (made, T0, UTC, ["x", "y"])
        assert Interval(made.start - timedelta(minutes=15), made.end) == blocked

    @pytest.mark.parametrize(
        ("arguments", "error"),
        [
            (("b1", NAIVE, 5), InvalidInputError),  # the booking first
            ((booking(), NAIVE, 5), NaiveDatetimeError),  # then now
            ((booking(), None, ()), InvalidInputError),
            ((booking(), "2030-06-03T08:00:00+00:00", ()), InvalidInputError),
            ((booking(), T0, 5), InvalidInputError),  # then exclude
            ((booking(), T0, "b1"), InvalidInputError),
            ((booking(), T0, [1]), InvalidInputError),
        ],
    )
    def test_a_bad_argument_is_named_in_order(self, arguments: tuple[object, object, object], error: type) -> None:
        with pytest.raises(error) as raised:
            ports.check_reserve(*arguments)

        assert type(raised.value) is error

    def test_buffers_out_of_range_come_before_now(self) -> None:
        made = booking(start=datetime(1970, 1, 1, tzinfo=UTC), end=datetime(1970, 1, 1, 1, tzinfo=UTC))
        object.__setattr__(made, "buffer_before", timedelta(minutes=10))  # past Booking's own check

        with pytest.raises(OutOfRangeError):
            ports.check_reserve(made, NAIVE)

    def test_reserve_and_record_arguments(self) -> None:
        given = ports.check_reserve_and_record(
            booking(),
            now=T0,
            transitions=(r for r in [record()]),
            outbox=(m for m in [message("m1"), message("m2")]),
            catalogue_version=3,
        )

        assert (given.transitions, given.outbox, given.catalogue_version) == (
            (record(),),
            (message("m1"), message("m2")),
            3,
        )
        for bad in ({"catalogue_version": "3"}, {"catalogue_version": 3.0}, {"idempotency": "k1"}, {"outbox": "m1"}):
            arguments: dict[str, Any] = {"now": T0, "transitions": (), "outbox": (), "catalogue_version": 3, **bad}
            with pytest.raises(InvalidInputError):
                ports.check_reserve_and_record(booking(), **arguments)


# --- update_booking's rule ----------------------------------------------------------------------------------------

PRE = BookingStatus.PRE_BOOKING
LATER = T0 + 6 * H


def _changed(stored: Booking, **changes: Any) -> Callable[[], None]:
    return lambda: ports.check_update(stored, attrs.evolve(stored, version=2, **changes), 1)


@pytest.mark.parametrize(
    ("stored", "changes"),
    [
        (booking(status=PRE), {"status": BookingStatus.CONFIRMED, "hold_until": None}),
        (booking(status=PRE), {"status": BookingStatus.PAID, "hold_until": None}),
        (booking(status=PRE), {"hold_until": LATER}),
        (booking(status=BookingStatus.CANCELLED), {"status": BookingStatus.CONFIRMED}),
        (booking(status=BookingStatus.EXPIRED), {"status": PRE, "hold_until": LATER}),
        (booking(status=BookingStatus.COMPLETED), {"status": BookingStatus.PAID}),
        (booking(status=BookingStatus.NO_SHOW), {"status": PRE, "hold_until": LATER}),
    ],
)
def test_an_update_that_takes_time_again_is_refused(stored: Booking, changes: dict[str, Any]) -> None:
    """Two bookings on a capacity of one: a lapsed hold made firm by update_booking over the booking in its place."""
    with pytest.raises(InvalidInputError, match="use reserve"):
        _changed(stored, **changes)()


@pytest.mark.parametrize(
    ("stored", "changes"),
    [
        (booking(status=PRE), {"notes": "called"}),
        (booking(status=PRE), {"hold_until": T0 + 3 * H}),
        (booking(status=PRE), {"status": BookingStatus.CANCELLED, "hold_until": None}),
        (booking(status=PRE), {"status": BookingStatus.EXPIRED, "hold_until": None}),
        (booking(), {"status": BookingStatus.PAID}),
        (booking(), {"status": PRE, "hold_until": LATER}),
        (booking(status=BookingStatus.PAID), {"status": BookingStatus.COMPLETED}),
        (booking(status=BookingStatus.CANCELLED), {"notes": "refunded"}),
    ],
)
def test_an_update_that_takes_no_more_time_is_allowed(stored: Booking, changes: dict[str, Any]) -> None:
    _changed(stored, **changes)()


def test_a_stale_version_is_reported_before_the_time_rule() -> None:
    stored = booking(status=BookingStatus.CANCELLED)

    with pytest.raises(ConcurrencyError):
        ports.check_update(stored, attrs.evolve(stored, status=BookingStatus.CONFIRMED, version=3), 2)
