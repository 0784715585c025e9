"""The lifecycle table: only its edges exist, and every step is recorded."""

from datetime import UTC, datetime, timedelta

import pytest

from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.errors import IllegalTransitionError, InvalidInputError, NaiveDatetimeError, OutOfRangeError
from slotengine.lifecycle import LIVE_STATUSES, TRANSITIONS, Action, BookingStatus, TransitionRecord, next_status

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ALL_STATUSES = [None, *BookingStatus]


class TestTable:
    @pytest.mark.parametrize("status", ALL_STATUSES)
    @pytest.mark.parametrize("action", list(Action))
    def test_every_pair(self, status, action):
        """Every status × action pair either follows the table or raises IllegalTransitionError (M2)."""
        allowed = TRANSITIONS[status]

        if action in allowed:
            assert allowed[action] == next_status(status, action)
        else:
            with pytest.raises(IllegalTransitionError) as info:
                next_status(status, action)
            assert (status, action) == (info.value.status, info.value.action)

    @pytest.mark.parametrize(
        ("status", "action"),
        [
            (BookingStatus.PAID, Action.HOLD),
            (BookingStatus.COMPLETED, Action.CANCEL),
            (BookingStatus.EXPIRED, Action.CONFIRM),
            (BookingStatus.CANCELLED, Action.PAY_FULL),
            (BookingStatus.PAID, Action.CONFIRM),
            (BookingStatus.NO_SHOW, Action.COMPLETE),
        ],
    )
    def test_forbidden_examples(self, status, action):
        """The forbidden moves of table B14 are refused with a message naming what is allowed."""
        with pytest.raises(IllegalTransitionError, match="allowed:"):
            next_status(status, action)

    @pytest.mark.parametrize(
        ("status", "action", "words"),
        [
            (BookingStatus.PAID, Action.CONFIRM_PAID, "cannot confirm a paid booking"),
            (BookingStatus.PAID, Action.PAY_FULL, "cannot take a payment on a paid booking"),
            (BookingStatus.EXPIRED, Action.CHECK_IN, "cannot check in an expired booking"),
            (BookingStatus.COMPLETED, Action.CHARGE_FEE, "cannot charge a fee on a completed booking"),
        ],
    )
    def test_refusals_read_as_sentences(self, status, action, words):
        """An action whose name is not a verb is said as one ("cannot pay full a paid booking" was the old text)."""
        with pytest.raises(IllegalTransitionError, match=f"^{words};"):
            next_status(status, action)

    def test_terminal_statuses_allow_only_money(self):
        """Completed, cancelled and no-show bookings only take refunds, fees and fee payments."""
        money = {Action.REFUND, Action.CHARGE_FEE, Action.PAY_PARTIAL}
        for status in (BookingStatus.COMPLETED, BookingStatus.CANCELLED, BookingStatus.NO_SHOW):
            assert set(TRANSITIONS[status]) <= money

    def test_live_statuses(self):
        """Only pre-bookings, confirmed and paid bookings take time."""
        assert {BookingStatus.PRE_BOOKING, BookingStatus.CONFIRMED, BookingStatus.PAID} == LIVE_STATUSES

    def test_every_status_is_reachable(self):
        """Every status can be reached from creation."""
        seen, frontier = set(), [None]
        while frontier:
            status = frontier.pop()
            for target in TRANSITIONS[status].values():
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)

        assert set(BookingStatus) == seen


class TestTransitionRecord:
    def test_records_a_table_edge(self):
        """A record keeps from, to, action, when, who and why."""
        record = TransitionRecord("b1", BookingStatus.PRE_BOOKING, BookingStatus.CONFIRMED, Action.CONFIRM, NOW, "manager:ann", "called the client")

        assert ("pre_booking", "confirmed", "confirm") == (record.from_status, record.to_status, record.action)

    def test_refuses_an_edge_not_in_the_table(self):
        """A record of a transition the table does not have cannot be built."""
        with pytest.raises(IllegalTransitionError):
            TransitionRecord("b1", BookingStatus.PAID, BookingStatus.PRE_BOOKING, Action.HOLD, NOW, "x")

    def test_refuses_a_wrong_target(self):
        """A record whose target disagrees with the table cannot be built."""
        with pytest.raises(IllegalTransitionError, match="must end in"):
            TransitionRecord("b1", BookingStatus.PRE_BOOKING, BookingStatus.PAID, Action.CONFIRM, NOW, "x")

    def test_refuses_naive_time_and_empty_actor(self):
        """Records are validated like every value."""
        with pytest.raises(NaiveDatetimeError):
            TransitionRecord("b1", None, BookingStatus.PRE_BOOKING, Action.HOLD, datetime(2026, 1, 1), "x")
        with pytest.raises(InvalidInputError):
            TransitionRecord("b1", None, BookingStatus.PRE_BOOKING, Action.HOLD, NOW, "")


class TestBookingValue:
    @pytest.mark.parametrize(
        ("start", "before", "after"),
        [
            (datetime(1970, 1, 1, tzinfo=UTC), timedelta(minutes=10), timedelta(0)),
            (datetime(2199, 12, 31, 23, tzinfo=UTC), timedelta(0), timedelta(hours=2)),
            (datetime(2026, 3, 2, 9, tzinfo=UTC), timedelta(days=100_000), timedelta(0)),
        ],
    )
    def test_buffers_stay_inside_the_range_of_instants(self, start, before, after):
        """A booking whose buffers reach outside 1970-2200 is refused when built, so no storage can keep it."""
        with pytest.raises(OutOfRangeError):
            Booking(
                "b", "s", start, start + timedelta(minutes=30), (Assignment(0, "room", ("r",)),), (1,),
                BookingStatus.CONFIRMED, start, buffer_before=before, buffer_after=after,
            )

    @pytest.mark.parametrize("units", [(0,), (1_000_000_001,), (2**31,)])
    def test_units_are_bounded(self, units):
        """Units run from 1 to MAX_UNITS, so every adapter stores them and their sums."""
        start = datetime(2026, 3, 2, 9, tzinfo=UTC)
        with pytest.raises(InvalidInputError, match="units"):
            Booking("b", "s", start, start + timedelta(minutes=30), (Assignment(0, "room", ("r",)),), units,
                    BookingStatus.CONFIRMED, start)
