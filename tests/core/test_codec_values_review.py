"""
A value that exists can be stored and read back: the codec review's reproducers, and properties over them.

Bad input is refused when a value is built, with `InvalidInputError`; whatever is built round-trips exactly
through ``codec.*_to_dict``, `codec.dumps`, `codec.loads` and ``codec.*_from_dict``. A damaged stored document is
refused with a message that names the field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from slotengine import codec
from slotengine._checks import shown
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import Action, BookingStatus, TransitionRecord
from slotengine.model import MAX_ATTRIBUTE_INT, Need, Resource, check_text
from slotengine.money import Money
from slotengine.outbox import MAX_ATTEMPTS, OutboxMessage
from slotengine.policies import MAX_RESCHEDULES, ConfirmationPolicy, Policies, ReschedulePolicy
from slotengine.recurrence import Recurrence
from slotengine.schedule import DateOverride, RecurringHours, Schedule, TimeOff, TimeRange, WeeklyHours

CREATED = datetime(2026, 3, 1, 9, tzinfo=UTC)
HUGE = 10**5000  # more digits than Python prints: repr() and json.dumps raise ValueError on it


def huge_id(value: object) -> str | None:
    """A test id for 10**5000 (pytest would print it, and fail); None lets pytest name the other values."""
    if isinstance(value, int) and abs(value) == HUGE:
        return "-10**5000" if value < 0 else "10**5000"
    return None


def booking(assignments: Any = None, **fields: Any) -> Booking:
    given_assignments = [Assignment(0, "box", ("box1",))] if assignments is None else assignments
    return Booking(
        "b1",
        "wash",
        datetime(2026, 6, 1, 8, tzinfo=UTC),
        datetime(2026, 6, 1, 9, tzinfo=UTC),
        given_assignments,
        fields.pop("units", (1,) * len(given_assignments)),
        BookingStatus.CONFIRMED,
        CREATED,
        **fields,
    )


def stored(encode: Callable[[Any], dict[str, Any]], decode: Callable[[dict[str, Any]], Any], value: Any) -> Any:
    """*value* written as a storage keeps it (JSON text) and read back."""
    return decode(codec.loads(codec.dumps(encode(value))))


# Text of every kind, lone surrogates and NUL included (hypothesis' default text has no surrogates).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=8)


class TestAssignment:
    def test_a_string_of_ids_is_refused_not_read_as_letters(self) -> None:
        """Assignment(0, "box", "box1") held the ids ('b', 'o', 'x', '1'); a string is refused."""
        with pytest.raises(InvalidInputError, match="resource_ids"):
            Assignment(0, "box", "box1")

    @pytest.mark.parametrize(
        ("need", "label", "resource_ids", "field"),
        [
            (True, "box", ("box1",), "need"),
            (-1, "box", ("box1",), "need"),
            (0.5, "box", ("box1",), "need"),
            (HUGE, "box", ("box1",), "need"),
            (0, None, ("box1",), "assignment label"),
            (0, "x\x00", ("box1",), "assignment label"),
            (0, "box", (1,), "resource_ids"),
            (0, "box", ("",), "resource id"),
            (0, "box", ("b\x00",), "resource id"),
            (0, "box", None, "resource_ids"),
            (0, "box", {"box1": 1}, "resource_ids"),
        ],
        ids=huge_id,
    )
    def test_bad_fields_are_refused_by_name(self, need: Any, label: Any, resource_ids: Any, field: str) -> None:
        """A flag, a negative or fractional need, a non-text label, a non-id or a non-collection is refused."""
        with pytest.raises(InvalidInputError, match=field):
            Assignment(need, label, resource_ids)

    def test_a_list_or_a_generator_is_kept_as_a_tuple(self) -> None:
        """Any collection of ids is read once into a tuple, so the assignment equals the one built from a tuple."""
        expected = Assignment(0, "", ("a", "b"))

        assert expected == Assignment(0, "", ["a", "b"])
        assert expected == Assignment(0, "", (rid for rid in ["a", "b"]))

    def test_the_reviewers_bookings_are_refused_before_they_are_stored(self) -> None:
        """The reproducers' bookings (stored, then unreadable; or a repr raising TypeError) cannot be made."""
        for fields in [(True, "box", ("box1",)), (0, None, ("box1",)), (0, "box", (1,))]:
            with pytest.raises(InvalidInputError):
                booking([Assignment(*fields)])

    @given(
        st.one_of(st.integers(-2, 2**40), st.booleans(), st.floats(), st.none()),
        st.one_of(ANY_TEXT, st.none(), st.integers()),
        st.one_of(
            st.lists(st.one_of(ANY_TEXT, st.integers()), max_size=3).flatmap(
                lambda ids: st.sampled_from([tuple(ids), list(ids), iter(ids)])
            ),
            ANY_TEXT,
            st.none(),
        ),
    )
    def test_any_assignment_built_is_stored_and_read_back(self, need: Any, label: Any, resource_ids: Any) -> None:
        """An assignment is refused with InvalidInputError, or a booking holding it round-trips exactly."""
        try:
            assignment = Assignment(need, label, resource_ids)
        except InvalidInputError:
            return
        assume(assignment.resource_ids)
        value = booking([assignment])

        assert repr(value)
        assert value == stored(codec.booking_to_dict, codec.booking_from_dict, value)


class TestAttributes:
    @pytest.mark.parametrize("number", ["NaN", "sNaN", "Infinity", "-Infinity", "-NaN"])
    def test_a_decimal_that_is_no_number_is_refused(self, number: str) -> None:
        """A NaN or an infinity could be stored but never read back (the codec refuses it): it is refused first."""
        with pytest.raises(InvalidInputError, match="finite"):
            Resource("r1", "Room", attributes={"x": Decimal(number)})
        with pytest.raises(InvalidInputError, match="finite"):
            Need(attributes={"x": Decimal(number)})

    @pytest.mark.parametrize("number", [HUGE, -HUGE, MAX_ATTRIBUTE_INT + 1, -MAX_ATTRIBUTE_INT - 1], ids=huge_id)
    def test_a_whole_number_beyond_64_bits_is_refused(self, number: int) -> None:
        """10**5000 made codec.dumps raise a bare ValueError; beyond a signed 64-bit integer is refused."""
        with pytest.raises(InvalidInputError, match="64-bit"):
            Resource("r1", "Room", attributes={"n": number})

    @given(
        st.dictionaries(
            st.sampled_from(["a", "b"]),
            st.one_of(
                st.decimals(allow_nan=True, allow_infinity=True),
                st.integers(-(2**70), 2**70),
                st.sampled_from([MAX_ATTRIBUTE_INT, -MAX_ATTRIBUTE_INT, HUGE]),
                st.booleans(),
            ),
        )
    )
    def test_any_resource_built_is_stored_and_read_back(self, attributes: dict[str, Any]) -> None:
        """A resource is refused with InvalidInputError, or it round-trips exactly through the codec and JSON."""
        try:
            resource = Resource("r1", "Room", attributes=attributes)
        except InvalidInputError:
            return

        assert resource == stored(codec.resource_to_dict, codec.resource_from_dict, resource)


class TestBounds:
    def test_attempts_are_bounded(self) -> None:
        """An outbox message's attempts stop at MAX_ATTEMPTS; 10**5000 is an InvalidInputError, not a ValueError."""
        message = OutboxMessage("m1", "t", None, CREATED, CREATED, "k", "{}", MAX_ATTEMPTS)

        assert message == stored(codec.outbox_to_dict, codec.outbox_from_dict, message)
        for attempts in (MAX_ATTEMPTS + 1, HUGE):
            with pytest.raises(InvalidInputError, match="attempts"):
                OutboxMessage("m1", "t", None, CREATED, CREATED, "k", "{}", attempts)

    def test_max_times_is_bounded(self) -> None:
        """A reschedule limit stops at MAX_RESCHEDULES (None is no limit); 10**5000 is an InvalidInputError."""
        value = booking(policies=Policies(reschedule=ReschedulePolicy(max_times=MAX_RESCHEDULES)))

        assert value == stored(codec.booking_to_dict, codec.booking_from_dict, value)
        for times in (MAX_RESCHEDULES + 1, HUGE):
            with pytest.raises(InvalidInputError, match="max_times"):
                ReschedulePolicy(max_times=times)

    @pytest.mark.parametrize(
        "build",
        [
            lambda: Need(type="seat", count=HUGE),
            lambda: Resource("r1", "Room", capacity=HUGE),
            lambda: check_text(HUGE, "name"),
            lambda: Need(type="seat", attributes={"x": [HUGE]}),
            lambda: ConfirmationPolicy(deposit_percent=HUGE),
        ],
    )
    def test_a_number_too_long_to_print_is_refused_with_the_librarys_error(self, build: Callable[[], Any]) -> None:
        """The message of a refusal describes 10**5000 by its size: printing it would raise a bare ValueError."""
        with pytest.raises(InvalidInputError, match=r"bits|too long to print"):
            build()

    def test_shown_prints_what_it_can(self) -> None:
        """shown() is repr, except for a number Python will not print."""
        assert "12" == shown(12)
        assert "'x'" == shown("x")
        assert "a whole number of 16,610 bits" == shown(HUGE)


class TestDumps:
    @pytest.mark.parametrize(
        "doc",
        [
            {"n": HUGE},
            {"n": float("nan")},
            {"n": [float("inf")]},
            {"n": {1: "x"}},
            {"n": [{"a": {None: 1}}]},
            {"n": object()},
            {"n": Decimal(1)},
        ],
    )
    def test_what_json_cannot_hold_is_an_input_error(self, doc: dict[str, Any]) -> None:
        """NaN, an unprintable integer, a non-string key (read back as another key), a non-JSON type: refused."""
        with pytest.raises(InvalidInputError, match="cannot store"):
            codec.dumps(doc)

    def test_a_circular_document_is_an_input_error(self) -> None:
        """A document holding itself is refused (and the key check never loops on it)."""
        doc: dict[str, Any] = {}
        doc["self"] = doc

        with pytest.raises(InvalidInputError, match="cannot store"):
            codec.dumps(doc)

    def test_a_plain_document_is_written_as_before(self) -> None:
        """Compact, key-sorted JSON, unchanged."""
        assert '{"a":[1,{"b":null,"c":"é"}],"z":true}' == codec.dumps({"z": True, "a": [1, {"c": "é", "b": None}]})


class TestTransitionRecord:
    @pytest.mark.parametrize("booking_id", ["", " ", 123, None, "x\x00", "x" * 201])
    def test_the_booking_id_is_checked_when_built(self, booking_id: Any) -> None:
        """A record the decoder would refuse (an empty, non-text or NUL id) cannot be made."""
        with pytest.raises(InvalidInputError, match="booking id"):
            TransitionRecord(booking_id, None, BookingStatus.CONFIRMED, Action.BOOK, CREATED, "system")

    @given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
    def test_any_record_built_is_stored_and_read_back(self, booking_id: str, actor: str, reason: str) -> None:
        """A record is refused with InvalidInputError, or it round-trips exactly."""
        try:
            record = TransitionRecord(booking_id, None, BookingStatus.CONFIRMED, Action.BOOK, CREATED, actor, reason)
        except InvalidInputError:
            return

        assert record == stored(codec.transition_to_dict, codec.transition_from_dict, record)


class TestScheduleReasons:
    @pytest.mark.parametrize("reason", ["a\x00b", "a\ud800", "x" * 1_000_000, None, 5])
    def test_a_reason_no_storage_keeps_is_refused(self, reason: Any) -> None:
        """NUL, a lone surrogate or a megabyte of text made a schedule whose stored form could not be written."""
        rule = Recurrence("FREQ=WEEKLY", datetime(2026, 3, 2, 9), "Europe/Paris")
        for build in (
            lambda: TimeOff.days(date(2026, 12, 25), reason=reason),
            lambda: TimeOff(CREATED, CREATED + timedelta(hours=1), reason=reason),
            lambda: RecurringHours(rule, TimeRange(time(9), time(12)), reason=reason),
        ):
            with pytest.raises(InvalidInputError, match="reason"):
                build()

    def test_a_long_reason_within_bounds_round_trips(self) -> None:
        """A 2,000-character reason with any other text is kept, and stored as it is."""
        reason = "Fermé – " + "x" * 1_992
        schedule = Schedule("Europe/Paris", WeeklyHours(), time_off=[TimeOff.days(date(2026, 12, 25), reason=reason)])

        assert schedule == stored(codec.schedule_to_dict, codec.schedule_from_dict, schedule)


class TestStoredDocuments:
    @pytest.fixture
    def doc(self) -> dict[str, Any]:
        value = booking(price=Money("10.00", "EUR"), policies=Policies(confirmation=ConfirmationPolicy()))
        return codec.loads(codec.dumps(codec.booking_to_dict(value)))

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("price", 0), "１０.００"),
            (("policies", "confirmation", "deposit_percent"), "٥٠"),
            (("policies", "cancellation", "otherwise_percent"), "1٠٠"),
        ],
    )
    def test_digits_other_than_ascii_are_refused(self, doc: dict[str, Any], path: tuple[Any, ...], value: str) -> None:
        """The codec writes ASCII digits only; "１０.００" and "٥٠" loaded as 10.00 and 50."""
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value

        with pytest.raises(InvalidInputError, match="decimal number"):
            codec.booking_from_dict(doc)

    def test_a_decimal_attribute_in_other_digits_is_refused(self) -> None:
        """The same for a resource's decimal attribute."""
        doc = codec.resource_to_dict(Resource("r1", "Room", attributes={"x": Decimal("1.5")}))
        doc["attributes"]["x"] = {"decimal": "١.٥"}

        with pytest.raises(InvalidInputError, match="attribute 'x'"):
            codec.resource_from_dict(doc)

    @pytest.mark.parametrize(
        ("path", "value", "field"),
        [
            (("policies", "confirmation", "deposit_percent"), "1E99999999999999999999", "deposit_percent"),
            (("start",), "2026-13-01T08:00:00+00:00", "start"),
            (("hold_until",), "tomorrow", "hold_until"),
            (("payments",), [["p1", "payment", ["1.00", "EUR"], "yesterday", "site"]], "payment at"),
        ],
    )
    def test_a_value_that_does_not_parse_is_named(
        self, doc: dict[str, Any], path: tuple[Any, ...], value: Any, field: str
    ) -> None:
        """A decimal, date or instant that does not parse names its field (not "InvalidOperation: [<class ...>]")."""
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value

        with pytest.raises(InvalidInputError, match=field) as info:
            codec.booking_from_dict(doc)

        assert "InvalidOperation" not in str(info.value)
        assert "ValueError" not in str(info.value)

    @pytest.mark.parametrize("key", ["notes", "start", "assignments"])
    def test_a_missing_key_is_named(self, doc: dict[str, Any], key: str) -> None:
        """A missing key says which one is missing, not "KeyError: 'notes'"."""
        del doc[key]

        with pytest.raises(InvalidInputError, match=f"'{key}' is missing") as info:
            codec.booking_from_dict(doc)

        assert key == info.value.details["field"]

    @pytest.mark.parametrize(
        ("damage", "field"),
        [
            (lambda d: d["time_off"][0].update(first_day="25 December"), "first_day"),
            (lambda d: d["weekly"][0][0].__setitem__(0, "nine"), "hours start"),
            (lambda d: d["recurring"][0]["recurrence"].update(dtstart="Monday"), "dtstart"),
            (lambda d: d["recurring"][0]["recurrence"].update(exdates=["never"]), "exdate"),
            (lambda d: d["overrides"][0].update(day="2026-02-30"), "day"),
        ],
    )
    def test_a_schedule_value_that_does_not_parse_is_named(self, damage: Callable[[Any], None], field: str) -> None:
        """Dates, wall times and ranges of a stored schedule that do not parse name their field."""
        rule = RecurringHours.every(
            "FREQ=WEEKLY", date(2026, 3, 2), TimeRange(time(9), time(12)), "Europe/Paris", except_days=[date(2026, 3, 9)]
        )
        schedule = Schedule(
            "Europe/Paris",
            WeeklyHours.weekdays(TimeRange(time(9), time(17))),
            overrides=[DateOverride(date(2026, 3, 3), [])],
            time_off=[TimeOff.days(date(2026, 12, 25))],
            recurring=[rule],
        )
        doc = copy.deepcopy(codec.schedule_to_dict(schedule))
        damage(doc)

        with pytest.raises(InvalidInputError, match=field) as info:
            codec.schedule_from_dict(doc)

        assert "ValueError" not in str(info.value)

    def test_schedule_functions_are_public(self) -> None:
        """schedule_to_dict and schedule_from_dict are documented public functions, so they are in __all__."""
        assert {"schedule_to_dict", "schedule_from_dict"} <= set(codec.__all__)
