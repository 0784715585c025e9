"""
Stored documents are read back strictly: a damaged document raises InvalidInputError or loads as what it says.

The property: any mutation of a valid stored document either decodes to the value the original held, or to a
value that writes back as exactly the mutated document, or raises `InvalidInputError`. A value loaded any other
way (a JSON ``true`` read as 1 %, a float as a rounded duration, the string ``"box1"`` as four ids) is silent
corruption, and a raw ``IndexError`` or ``decimal.InvalidOperation`` is a crash of ``slotengine show``.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine import codec
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment
from slotengine.businessfile import load_business_file
from slotengine.errors import InvalidInputError, StorageError
from slotengine.lifecycle import Action, BookingStatus, TransitionRecord
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.outbox import OutboxMessage
from slotengine.policies import CancellationPolicy, Policies, RefundTier

EXAMPLES = Path(__file__).parents[2] / "examples"
CREATED = datetime(2026, 3, 1, 9, tzinfo=UTC)

Decode = Callable[[dict[str, Any]], Any]
Encode = Callable[[Any], dict[str, Any]]


def _booking() -> Booking:
    policies = Policies(
        cancellation=CancellationPolicy(tiers=(RefundTier(timedelta(days=1), Decimal(50)),), otherwise_percent=Decimal(100))
    )
    return Booking(
        "b1",
        "wash",
        datetime(2026, 6, 1, 8, tzinfo=UTC),
        datetime(2026, 6, 1, 9, tzinfo=UTC),
        [Assignment(0, "box", ("box1",))],
        (1,),
        BookingStatus.CONFIRMED,
        CREATED,
        policies=policies,
        buffer_after=timedelta(minutes=5),
        customer_id="c1",
        notes="gate code 12",
        price=Money("25.00", "EUR"),
        payments=(Payment("p1", "payment", Money("25.00", "EUR"), CREATED, "site"),),
        reschedules=1,
        version=3,
        customer_zone="Europe/Paris",
    )


def _documents() -> list[tuple[str, dict[str, Any], Encode, Decode]]:
    out: list[tuple[str, dict[str, Any], Encode, Decode]] = [
        ("booking", codec.booking_to_dict(_booking()), codec.booking_to_dict, codec.booking_from_dict),
        (
            "transition",
            codec.transition_to_dict(
                TransitionRecord("b1", BookingStatus.PRE_BOOKING, BookingStatus.CONFIRMED, Action.CONFIRM, CREATED, "system")
            ),
            codec.transition_to_dict,
            codec.transition_from_dict,
        ),
        (
            "outbox",
            codec.outbox_to_dict(OutboxMessage("m1", "booking.confirmed", "b1", CREATED, CREATED, "k1", "{}", 2)),
            codec.outbox_to_dict,
            codec.outbox_from_dict,
        ),
    ]
    for name in ("car-wash", "excursions", "clinic", "apartment"):
        bf = load_business_file(EXAMPLES / f"{name}.toml")
        out.append((f"{name} business", codec.business_to_dict(bf.business), codec.business_to_dict, codec.business_from_dict))
        out.extend((f"{name} {r.id}", codec.resource_to_dict(r), codec.resource_to_dict, codec.resource_from_dict) for r in bf.resources)
        out.extend((f"{name} {s.id}", codec.service_to_dict(s), codec.service_to_dict, codec.service_from_dict) for s in bf.services)
    # every document goes through JSON, as a storage keeps it
    return [(label, codec.loads(codec.dumps(doc)), enc, dec) for label, doc, enc, dec in out]


DOCUMENTS = _documents()

# Keys a document written by an earlier version may lack: the decoders read them with a default.
OPTIONAL_KEYS = frozenset({"customer_zone", "customer_language", "allow_override", "rules", "links", "agent", "language", "quiet_hours"})

HOSTILE: list[Any] = [
    True, False, None, 0, -1, 1, 1.5, 0.1, 10**30, 1e300, "", "x", "box1", "NaN", "Infinity", "1e400", "30 %",
    "1_000", " 1", [], ["x"], [1, 2, 3], {}, {"decimal": "x"}, {"money": ["1.00", "EUR"]}, {"money": ["1.00"]},
]  # fmt: skip


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _nudges(value: Any) -> list[Any]:
    """Values of the same JSON type close to *value*: the damage most likely to pass a loose check."""
    if isinstance(value, bool):
        return [not value, int(value)]
    if isinstance(value, int):
        return [value + 1, value - 1, -value, float(value), str(value), value != 0]
    if isinstance(value, str):
        return [value + "x", value[:-1], value.upper(), [value], list(value)]
    if isinstance(value, list):
        # not reversed: a schedule's ranges are a set, merged on construction (a valid, equal value)
        return [[*value, value[0]] if value else [None], value[:-1], *([value[0]] if value else [])]
    if isinstance(value, dict):
        return [{**value, "extra": 1}]
    return []


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any], Encode, Decode]:
    label, original, encode, decode = draw(st.sampled_from(DOCUMENTS))
    path = draw(st.sampled_from(list(_paths(original))[1:]))
    mutated = copy.deepcopy(original)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    old = parent[path[-1]]
    how = draw(st.sampled_from(["replace", "delete"] if isinstance(parent, dict) else ["replace"]))
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(HOSTILE + _nudges(old))))
    return f"{label} {how} {path}", original, mutated, encode, decode


def _in_the_models_order(doc: Any) -> Any:
    """*doc* with its refund tiers latest first: a policy keeps its tiers in that order, whatever order it was given."""
    if isinstance(doc, dict):
        out = {k: _in_the_models_order(v) for k, v in doc.items()}
        tiers = out.get("tiers")
        if isinstance(tiers, list) and all(isinstance(t, list) and t and isinstance(t[0], int) for t in tiers):
            out["tiers"] = sorted(tiers, key=lambda t: t[0], reverse=True)
        return out
    if isinstance(doc, list):
        return [_in_the_models_order(v) for v in doc]
    return doc


def _without_added_defaults(written: Any, mutated: Any) -> Any:
    """*written* less the keys older documents may lack, where *mutated* lacks them (they decode to defaults)."""
    if isinstance(written, dict) and isinstance(mutated, dict):
        return {
            k: _without_added_defaults(v, mutated.get(k))
            for k, v in written.items()
            if k in mutated or k not in OPTIONAL_KEYS
        }
    if isinstance(written, list) and isinstance(mutated, list) and len(written) == len(mutated):
        return [_without_added_defaults(w, m) for w, m in zip(written, mutated, strict=True)]
    return written


class TestDamagedDocuments:
    @settings(max_examples=400, deadline=None)
    @given(mutations())
    def test_a_damaged_document_loads_as_written_or_is_refused(
        self, case: tuple[str, dict[str, Any], dict[str, Any], Encode, Decode]
    ) -> None:
        """Any mutation of a stored document decodes to the same value, or to what it says, or raises InvalidInputError."""
        _label, original, mutated, encode, decode = case
        try:
            value = decode(mutated)
        except InvalidInputError:
            return

        written = codec.loads(codec.dumps(encode(value)))
        said = _in_the_models_order(mutated)
        assert value == decode(original) or said == _without_added_defaults(written, said)

    def test_tiers_stored_out_of_order_load_in_the_models_order(self) -> None:
        """A document whose refund tiers are not latest first (a tier's time damaged, say) loads as the same tiers."""
        _label, original, encode, decode = next(d for d in DOCUMENTS if d[0] == "apartment business")
        doc = copy.deepcopy(original)
        tiers = doc["policies"]["cancellation"]["tiers"]
        assert len(tiers) > 1
        doc["policies"]["cancellation"]["tiers"] = [[0, tiers[0][1]], *tiers[1:]]

        written = codec.loads(codec.dumps(encode(decode(doc))))

        assert written["policies"]["cancellation"]["tiers"] == [*tiers[1:], [0, tiers[0][1]]]
        assert _in_the_models_order(doc) == _without_added_defaults(written, doc)

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("policies", "confirmation", "deposit_percent"), True),
            (("policies", "confirmation", "deposit_percent"), 0.1),
            (("policies", "confirmation", "deposit_percent"), 30),
            (("policies", "confirmation", "deposit_percent"), "x"),
            (("policies", "confirmation", "deposit_percent"), "1_0"),
            (("policies", "hold", "ttl"), True),
            (("policies", "hold", "ttl"), 1e400),
            (("policies", "hold", "ttl"), 10**30),
            (("buffer_after",), 1.5),
            (("assignments",), [[0, "box", "box1"]]),
            (("assignments",), [[True, "box", ["box1"]]]),
            (("units",), "1"),
            (("price",), ["25.00", "EUR", 9]),
            (("price",), ["25.00"]),
            (("price",), [25, "EUR"]),
            (("payments", 0, 2), ["25.00", "EUR", "x"]),
            (("start",), "2026-06-01T08:00:00"),
            (("version",), True),
        ],
    )
    def test_the_reviewers_damaged_bookings_are_refused(self, path: tuple[Any, ...], value: Any) -> None:
        """A true, a float, a bare string or an extra element where the codec writes something else is refused."""
        doc = codec.loads(codec.dumps(codec.booking_to_dict(_booking())))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value

        with pytest.raises(InvalidInputError):
            codec.booking_from_dict(doc)

    def test_damaged_catalogue_documents_are_refused(self) -> None:
        """A one-element quiet_hours pair or a decimal attribute that is not a number raises InvalidInputError."""
        bf = load_business_file(EXAMPLES / "car-wash.toml")
        business = codec.business_to_dict(bf.business)
        business["quiet_hours"] = ["21:00"]
        resource = codec.resource_to_dict(bf.resources[0])
        resource["attributes"] = {"h": {"decimal": "x"}}

        with pytest.raises(InvalidInputError):
            codec.business_from_dict(business)
        with pytest.raises(InvalidInputError):
            codec.resource_from_dict(resource)

    def test_a_transition_against_the_lifecycle_is_an_input_error(self) -> None:
        """A stored transition whose statuses the lifecycle forbids is a damaged document, not an IllegalTransitionError."""
        record = TransitionRecord("b1", BookingStatus.PRE_BOOKING, BookingStatus.CONFIRMED, Action.CONFIRM, CREATED, "system")
        doc = codec.transition_to_dict(record)
        doc["from_status"] = "paid"

        with pytest.raises(InvalidInputError, match="malformed stored transition"):
            codec.transition_from_dict(doc)

    def test_a_bad_version_names_the_version(self) -> None:
        """A negative version is reported as the version, not as the reschedules."""
        doc = codec.booking_to_dict(_booking())
        doc["version"] = -1

        with pytest.raises(InvalidInputError, match=r"^version") as info:
            codec.booking_from_dict(doc)

        assert "version" == info.value.details["field"]


class TestCorruptRows:
    def test_a_damaged_booking_row_is_a_storage_error(self, tmp_path: Path) -> None:
        """SQLiteStorage.get_booking reports a percent that is not a number as a corrupt row, not a raw error."""
        path = tmp_path / "bad.db"
        storage = SQLiteStorage(path)
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("box1", "Box 1"))
            tx.reserve(_booking(), now=CREATED)
            tx.commit()
        storage.close()
        doc = codec.booking_to_dict(_booking())
        doc["policies"]["confirmation"]["deposit_percent"] = "30 %"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("UPDATE bookings SET doc = ? WHERE id = 'b1'", (codec.dumps(doc),))
            conn.commit()

        storage = SQLiteStorage(path)
        try:
            with storage.transaction("t") as tx, pytest.raises(StorageError, match="deposit_percent"):
                tx.get_booking("b1")
        finally:
            storage.close()
