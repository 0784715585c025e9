"""Values and policies take what they document and refuse the rest with slotengine's errors (a newcomer's review)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine._time import localize
from slotengine.authorization import Actor, DenyAll, Permission, RolePolicy
from slotengine.availability import Assignment, Load, Slot
from slotengine.booking import Booking, Payment, PaymentKind
from slotengine.businessfile import dumps_business_file
from slotengine.errors import InvalidInputError, InvalidMoneyError, SlotEngineError
from slotengine.events import (
    EventDesk,
    WaitingEntry,
    occurrence_from_doc,
    occurrence_to_doc,
    template_from_doc,
    template_to_doc,
)
from slotengine.ical import booking_event, booking_uid
from slotengine.intervals import CapacityProfile, Interval, IntervalSet
from slotengine.jobs import run_jobs
from slotengine.lifecycle import Action, BookingStatus, TransitionRecord, next_status
from slotengine.model import Need
from slotengine.money import CURRENCY_MINOR_UNITS, Money
from slotengine.notifications import (
    Event,
    NotificationRule,
    QuietHours,
    Template,
    events_of,
    format_local,
    quiet_begin,
    quiet_shift,
)
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationMode,
    ConfirmationPolicy,
    NoShowPolicy,
    RefundTier,
    ReschedulePolicy,
)
from slotengine.recurrence import Recurrence
from slotengine.reports import Grain, funnel, periods, split_evenly
from slotengine.schedule import RecurringHours, TimeRange, time_off_within
from slotengine.testing.notifiers import RecordingNotifier

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 3, 9, tzinfo=PARIS)
NOW = datetime(2026, 3, 1, 9, tzinfo=PARIS)
H = timedelta(hours=1)


def booking(**fields: Any) -> Booking:
    values: dict[str, Any] = {
        "id": "b1",
        "service_id": "s1",
        "start": START,
        "end": START + H,
        "assignments": (Assignment(0, "box", ("box1",)),),
        "units": (1,),
        "status": BookingStatus.PRE_BOOKING,
        "created_at": NOW,
        "hold_until": NOW + H,
    }
    return Booking(**{**values, **fields})


class TestGeneratorsAreReadOnce:
    def test_refund_tiers_from_a_generator_are_the_same_tiers(self) -> None:
        """A generator of tiers was emptied by the type check: no tiers, and otherwise_percent 100 went unnoticed."""
        tiers = [RefundTier(72 * H, 80), RefundTier(24 * H, 40)]

        given_once = CancellationPolicy(tiers=(t for t in tiers), otherwise_percent=0)

        assert CancellationPolicy(tiers=tiers, otherwise_percent=0) == given_once
        with pytest.raises(InvalidInputError, match="otherwise_percent"):
            CancellationPolicy(tiers=(t for t in tiers))

    def test_payments_and_assignments_from_generators_are_kept(self) -> None:
        """A booking given its ledger or its assignments as generators keeps them (the ledger was lost)."""
        paid = Payment("p1", PaymentKind.PAYMENT, Money("20", "EUR"), NOW, "site")
        made = booking(
            payments=(p for p in [paid]), assignments=(a for a in [Assignment(0, "box", ("box1",))]), price=Money("20", "EUR")
        )

        assert (paid,) == made.payments
        assert Money("20", "EUR") == made.net_paid
        assert ("box1",) == made.resource_ids


class TestScaledMoney:
    @given(
        minor=st.integers(-(10**15), 10**15),
        currency=st.sampled_from(sorted(CURRENCY_MINOR_UNITS)),
        numerator=st.integers(0, 10**6),
        denominator=st.integers(1, 10**6),
    )
    def test_scaled_is_the_exact_product_rounded_once_half_to_even(
        self, minor: int, currency: str, numerator: int, denominator: int
    ) -> None:
        """Money.scaled(n, d) is amount × n / d computed exactly, then rounded half to even to the minor unit."""
        places = CURRENCY_MINOR_UNITS[currency]
        amount = Money(Decimal(minor).scaleb(-places), currency)
        exact = Fraction(minor * numerator, denominator)
        rounded = Decimal(round(exact)).scaleb(-places)  # Python's round of a Fraction is half to even

        try:
            result = amount.scaled(numerator, denominator)
        except InvalidMoneyError:
            assert abs(rounded) >= Decimal(10) ** 18
            return

        assert rounded.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) == result.amount

    def test_the_callers_decimal_context_changes_nothing(self) -> None:
        """An application's precision of 6 does not round the price (123,456.78 became 123,457.00)."""
        with localcontext() as context:
            context.prec = 6
            half, whole = Money("123456.78", "EUR").scaled(1, 2), Money("123456.78", "EUR").scaled(1, 1)

        assert (Money("61728.39", "EUR"), Money("123456.78", "EUR")) == (half, whole)

    def test_the_reviewers_price(self) -> None:
        """13.50 EUR for 3 hours, booked for 75 minutes: 5.625 EUR, so 5.62 (a decimal share made it 5.63)."""
        assert Money("5.62", "EUR") == Money("13.50", "EUR").scaled(75, 180)

    @pytest.mark.parametrize(("numerator", "denominator"), [(1, 0), (1, -2), (1.5, 2), (True, 2), (1, "2")])
    def test_bad_factors_are_refused(self, numerator: object, denominator: object) -> None:
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR").scaled(numerator, denominator)  # type: ignore[arg-type]


class TestStatusesGivenAsText:
    @given(
        status=st.sampled_from(list(BookingStatus)),
        paid=st.integers(0, 100),
        amount=st.integers(1, 100),
        mode=st.sampled_from(list(ConfirmationMode)),
    )
    def test_payment_action_of_the_text_is_that_of_the_status(
        self, status: BookingStatus, paid: int, amount: int, mode: ConfirmationMode
    ) -> None:
        """"pre_booking" is BookingStatus.PRE_BOOKING (a str enum): the same answer or the same refusal."""
        policy = ConfirmationPolicy(mode=mode, deposit_percent=30)
        args = (Money(paid, "EUR"), Money(amount, "EUR"), Money(100, "EUR"))

        def answer(given: object) -> object:
            try:
                return policy.payment_action(given, *args)  # type: ignore[arg-type]
            except SlotEngineError as error:
                return type(error), str(error)

        assert answer(status) == answer(status.value)
        assert policy.repriced_action(status, args[0], args[2]) == policy.repriced_action(status.value, args[0], args[2])  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "make",
        [
            lambda: booking(status="bogus"),
            lambda: TransitionRecord("b1", None, BookingStatus.CONFIRMED, "bogus", NOW, "system"),
            lambda: TransitionRecord("b1", "bogus", BookingStatus.CONFIRMED, Action.CONFIRM, NOW, "system"),
            lambda: TransitionRecord("b1", None, 3, Action.BOOK, NOW, "system"),
            lambda: ConfirmationPolicy().payment_action("paid-ish", Money(0, "EUR"), Money(1, "EUR"), Money(2, "EUR")),
        ],
    )
    def test_an_unknown_status_or_action_is_an_input_error(self, make: Any) -> None:
        with pytest.raises(InvalidInputError, match="must be one of"):
            make()


NAIVE = datetime(2026, 3, 3, 9)
RULE = NotificationRule("r", Template("s", "b"), on=[Event.CREATED])
CANCEL = CancellationPolicy(tiers=[RefundTier(24 * H, 50)], otherwise_percent=0)
LOAD = Load("b1", "box1", Interval(START, START + H), hold_until=NOW + H)
EUR = Money("10", "EUR")

BAD_CALLS: dict[str, Any] = {
    "quote with a naive start": lambda: CANCEL.quote(
        price=EUR, paid=EUR, start=NAIVE, now=NOW, zone=PARIS, by_business=False
    ),
    "quote in no zone": lambda: CANCEL.quote(price=EUR, paid=EUR, start=START, now=NOW, zone=5, by_business=False),
    "quote with a price of 10": lambda: CANCEL.quote(
        price=10, paid=EUR, start=START, now=NOW, zone=PARIS, by_business=False
    ),
    "quote by_business 'no'": lambda: CANCEL.quote(
        price=EUR, paid=EUR, start=START, now=NOW, zone=PARIS, by_business="no"
    ),
    "no-show check with a naive start": lambda: NoShowPolicy().check(start=NAIVE, now=NOW, checked_in=False),
    "no-show fee of 40": lambda: CANCEL.no_show_fee(40),
    "takes_time at a naive now": lambda: booking().takes_time(NAIVE),
    "is_live at a naive now": lambda: LOAD.is_live(NAIVE),
    "is_live at a text now": lambda: LOAD.is_live("2026-03-01"),
    "holds at a naive now": lambda: RULE.holds(booking(), NAIVE),
    "quiet_shift in Mars/Base": lambda: quiet_shift(START, QuietHours(time(8), time(10)), "Mars/Base"),
    "format_local in Mars/Base": lambda: format_local(START, "Mars/Base"),
    "format_local in language 7": lambda: format_local(START, PARIS, 7),
    "overlaps a text": lambda: Interval(START, START + H).overlaps("x"),
    "a slot of naive times": lambda: Slot(NAIVE, NAIVE + H, ()),
    "a slot of one assignment": lambda: Slot(START, START + H, Assignment(0, "b", ("x",))),
    "a slot ending before it starts": lambda: Slot(START + H, START, ()),
    "quiet_begin in Mars/Base": lambda: quiet_begin(START, QuietHours(time(8), time(10)), "Mars/Base"),
    "quiet_begin with text hours": lambda: quiet_begin(START, "22:00-07:00", PARIS),
    "quiet_shift with text hours": lambda: quiet_shift(START, "22:00-07:00", PARIS),
    "reschedule check after '1' moves": lambda: ReschedulePolicy(max_times=2).check(
        start=START, now=NOW, zone=PARIS, times_so_far="1"
    ),
    "localize strict 'no'": lambda: localize(datetime(2026, 3, 29, 2, 30), PARIS, strict="no"),
    "between inc 'no'": lambda: Recurrence("FREQ=DAILY", datetime(2026, 3, 1, 9), "Europe/Paris").between(
        NOW, START, inc="no"
    ),
    "booking_event cancelled 'no'": lambda: booking_event(
        booking(status=BookingStatus.CONFIRMED, hold_until=None), business="B", service_name="S", organizer="desk@shop.example", zone="Europe/Paris", cancelled="no"
    ),
    "booking_event for business None": lambda: booking_event(
        booking(status=BookingStatus.CONFIRMED, hold_until=None), business=None, service_name="S", organizer="desk@shop.example", zone="Europe/Paris"
    ),
    "booking_uid of tenant None": lambda: booking_uid("b1", None),
}


class TestBadInputIsTyped:
    @pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
    def test_a_public_value_method_refuses_with_slotengines_error(self, call: Any) -> None:
        """Each escaped as TypeError, AttributeError or ValueError; now an InvalidInputError naming the field."""
        with pytest.raises(InvalidInputError):
            call()

    def test_what_the_zone_name_means_is_what_the_zone_does(self) -> None:
        """A zone given by name works as the ZoneInfo does (it raised TypeError)."""
        quiet = QuietHours(time(8), time(10))
        names = format_local(START, "Europe/Paris"), quiet_shift(START, quiet, "Europe/Paris")  # type: ignore[arg-type]
        zones = format_local(START, PARIS), quiet_shift(START, quiet, PARIS)

        assert zones == names

    def test_a_slot_is_kept_in_utc_and_shown_so(self) -> None:
        """A slot made from Paris times holds the same instants in UTC; its repr says 08:00Z for 09:00 Paris."""
        slot = Slot(START, START + H, [Assignment(0, "b", ("x",))])

        assert (START, START + H) == (slot.start, slot.end)
        assert UTC is slot.start.tzinfo
        assert "08:00Z" in repr(slot)


@st.composite
def interval_sets(draw: st.DrawFn) -> IntervalSet:
    points = sorted(set(draw(st.lists(st.integers(0, 48), max_size=8))))
    pieces = [Interval(START + a * H / 2, START + b * H / 2) for a, b in zip(points[::2], points[1::2], strict=False)]
    return IntervalSet(pieces)


class TestIntervalOverlapsASet:
    @given(pieces=interval_sets(), a=st.integers(0, 47), length=st.integers(1, 6))
    def test_an_interval_overlaps_a_set_exactly_when_the_set_overlaps_it(self, pieces: IntervalSet, a: int, length: int) -> None:
        """Interval.overlaps(IntervalSet) is IntervalSet.overlaps(Interval): an interval in a gap does not overlap."""
        interval = Interval(START + a * H / 2, START + (a + length) * H / 2)

        assert pieces.overlaps(interval) == interval.overlaps(pieces)
        assert interval.overlaps(pieces) == any(interval.overlaps(piece) for piece in pieces)


class TestTheSweep:
    """A sweep of the public names for the defects above found these; each failed before its fix."""

    def test_split_evenly_ignores_the_callers_decimal_context(self) -> None:
        with localcontext() as context:
            context.prec = 6
            halves = split_evenly(Money("123456.78", "EUR"), 2)

        assert (Money("61728.39", "EUR"), Money("61728.39", "EUR")) == halves

    def test_a_funnel_stage_named_by_its_text(self) -> None:
        """stage("paid") is stage(BookingStatus.PAID) (it was refused as no stage)."""
        window = periods(date(2026, 3, 1), date(2026, 3, 31), "Europe/Paris", Grain.MONTH)
        [row] = funnel([booking()], [], window, dimensions=["total"])

        assert row.stage(BookingStatus.PAID) == row.stage("paid")  # type: ignore[arg-type]

    @pytest.mark.parametrize("action", list(Action))
    @pytest.mark.parametrize("before", [None, *BookingStatus])
    def test_events_of_the_texts_are_the_events_of_the_members(self, action: Action, before: BookingStatus | None) -> None:
        """events_of("pay_full", "pre_booking") is confirmed and paid, as with the members (it said paid only)."""
        text = None if before is None else before.value

        assert events_of(action, before) == events_of(action.value, text)  # type: ignore[arg-type]

    def test_holds_reads_events_as_events_not_letters(self) -> None:
        """events="created" was read letter by letter (and matched nothing); now it is refused, a list is read."""
        rule = NotificationRule("r", Template("s", "b"), on=[Event.CREATED, Event.CANCELLED])
        cancelled = booking(status=BookingStatus.CANCELLED, hold_until=None)

        with pytest.raises(InvalidInputError, match="events must be a collection"):
            rule.holds(cancelled, NOW, events="created")  # type: ignore[arg-type]
        assert not rule.holds(cancelled, NOW, events=["created"])

    def test_a_template_missing_a_value_names_it(self) -> None:
        with pytest.raises(InvalidInputError, match=r"\$service has no value") as info:
            Template("Hi $service", "at $local_time").render({})

        assert "service" == info.value.details["field"]


SWEEP_CALLS: dict[str, Any] = {
    "authorize a text permission": lambda: RolePolicy().authorize(Actor.manager("m"), "zzz", None),
    "authorize no actor": lambda: RolePolicy().authorize("x", Permission.READ, None),
    "authorize about a text booking": lambda: RolePolicy().authorize(Actor.customer("ann"), Permission.READ, "x"),
    "deny all a text permission": lambda: DenyAll().authorize(Actor.manager("m"), "zzz", None),
    "instants of a text day": lambda: TimeRange(time(9), time(18)).instants("2026-03-03", PARIS),
    "every except_days None": lambda: RecurringHours.every(
        "FREQ=WEEKLY", date(2026, 3, 2), TimeRange(time(9), time(10)), "Europe/Paris", except_days=None
    ),
    "overlapping a pair": lambda: IntervalSet([Interval(START, START + H)]).overlapping((START, START + H)),
    "widen by 5": lambda: IntervalSet([Interval(START, START + H)]).widen(5),
    "max_load of a text": lambda: CapacityProfile().max_load("x"),
    "where_fits a pair": lambda: CapacityProfile().where_fits(1, 3, (START, START + H)),
    "confirm_action of texts": lambda: ConfirmationPolicy.confirm_action("x", 5),
    "takes_same_time_as None": lambda: booking().takes_same_time_as(None),
    "matches None": lambda: Need(type="box").matches(None),
    "render None": lambda: Template("a", "b").render(None),
    "next_status of texts": lambda: next_status("zzz", "cancel"),
    "run_jobs of no engine": lambda: run_jobs(None, RecordingNotifier()),
    "an events desk over no engine": lambda: EventDesk(None),
    "time off within a pair": lambda: time_off_within([], PARIS, (START, START + H)),
    "from_portion of a text": lambda: IntervalSet.from_portion("x"),
    "dump no business file": lambda: dumps_business_file(None),
    "a waiting entry from {}": lambda: WaitingEntry.from_doc({}),
    "a template from {}": lambda: template_from_doc({}),
    "an occurrence from {}": lambda: occurrence_from_doc({"id": "o1"}),
    "no template to a document": lambda: template_to_doc(None),
    "no occurrence to a document": lambda: occurrence_to_doc(None),
}


@pytest.mark.parametrize("call", list(SWEEP_CALLS.values()), ids=list(SWEEP_CALLS))
def test_the_sweeps_bad_calls_are_typed_refusals(call: Any) -> None:
    with pytest.raises(InvalidInputError):
        call()


HUGE = 10**5000  # more digits than Python prints (4,300): a message quoting it raised a bare ValueError


@pytest.mark.parametrize(
    "call",
    [
        lambda: Money(HUGE, "EUR"),
        lambda: Money("1", "EUR") * HUGE,
        lambda: Money("1", "EUR").percent(HUGE),
        lambda: Money("1", "EUR").scaled(1, -HUGE),
        lambda: booking(version=HUGE),
    ],
    ids=["amount", "times", "percent", "denominator", "version"],
)
def test_a_number_too_long_to_print_is_refused_with_the_librarys_error(call: Any) -> None:
    """The refusal's own message printed the number, and Python's ValueError replaced the InvalidInputError."""
    with pytest.raises(InvalidInputError, match="whole number of 16,610 bits"):
        call()


def test_units_too_long_to_print_are_refused_with_the_librarys_error() -> None:
    with pytest.raises(InvalidInputError, match="units must be whole numbers from 1"):
        booking(units=(HUGE,))
