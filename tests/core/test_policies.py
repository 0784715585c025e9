"""Policies: which action a request becomes, deadlines on the local wall clock, and quoted money."""

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine._time import is_ambiguous
from slotengine.errors import CurrencyMismatchError, InvalidInputError, PolicyViolationError
from slotengine.lifecycle import Action, BookingStatus
from slotengine.money import Money
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationMode,
    ConfirmationPolicy,
    HoldPolicy,
    NoShowPolicy,
    Policies,
    RefundTier,
    ReschedulePolicy,
    wall_clock_before,
)

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
EUR = lambda amount: Money(amount, "EUR")  # noqa: E731
TIERED = CancellationPolicy(tiers=[RefundTier(48 * H, 100), RefundTier(24 * H, 50)], otherwise_percent=0)
# Monday 30 March 2026, 10:00 in Paris; the clocks sprang forward on Sunday 29 March.
START = datetime(2026, 3, 30, 10, tzinfo=PARIS)


ZONES = [PARIS, *map(ZoneInfo, ["America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kathmandu"])]


@functools.cache
def _offset_changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """The instants of *year* at which *zone*'s UTC offset changes (found hour by hour, then minute by minute)."""
    hour = datetime(year, 1, 1, tzinfo=UTC)
    changes = []
    while hour.year == year:
        if hour.astimezone(zone).utcoffset() != (hour + H).astimezone(zone).utcoffset():
            minute = hour
            while minute.astimezone(zone).utcoffset() == hour.astimezone(zone).utcoffset():
                minute += MINUTE
            changes.append(minute)
        hour += H
    return changes


class TestWallClock:
    def test_before_across_dst(self):
        """48 hours before Monday 10:00 is Saturday 10:00 local, 47 hours of elapsed time across the change."""
        deadline = wall_clock_before(START, 48 * H, PARIS)

        assert datetime(2026, 3, 28, 10, tzinfo=PARIS) == deadline
        assert 47 * H == START - deadline

    def test_before_into_the_gap(self):
        """A deadline in the spring-forward gap is not moved past the start: 30 min before 03:15 is 01:45 CET."""
        start = datetime(2025, 3, 30, 3, 15, tzinfo=PARIS)

        deadline = wall_clock_before(start, 30 * MINUTE, PARIS)

        assert datetime(2025, 3, 30, 0, 45, tzinfo=UTC) == deadline
        assert 30 * MINUTE == start - deadline
        quote = CancellationPolicy(tiers=[RefundTier(30 * MINUTE, 100)], otherwise_percent=0).quote(
            price=EUR(40), paid=EUR(40), start=start, now=start.astimezone(UTC) - 25 * MINUTE, zone=PARIS, by_business=False
        )
        assert 0 == quote.refund_percent

    @given(
        zone=st.sampled_from(ZONES),
        year=st.integers(1985, 2035),
        which=st.integers(0, 3),
        after=st.timedeltas(-6 * H, 6 * H),
        before=st.one_of(st.timedeltas(timedelta(0), 4 * H), st.timedeltas(timedelta(0), 72 * H)),
    )
    def test_deadline_never_after_start(self, zone, year, which, after, before):
        """Whatever the zone's DST rules, a deadline comes before the start, on the wall clock where it exists."""
        changes = _offset_changes(zone, year) or [datetime(year, 6, 1, tzinfo=UTC)]
        start = changes[which % len(changes)] + after

        deadline = wall_clock_before(start, before, zone)

        assert deadline <= start
        assert deadline < start or not before
        wall = start.astimezone(zone).replace(tzinfo=None) - before
        if deadline != start - before:  # a DST change lies between them: the wall clock decides
            assert wall == deadline.astimezone(zone).replace(tzinfo=None)
        if is_ambiguous(wall, zone):  # of the wall time's two instants, the one nearer the elapsed reading
            passes = [wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)]
            assert deadline == min((p for p in passes if p <= start), key=lambda p: abs(p - (start - before)))

    def test_a_deadline_in_the_fold_is_the_pass_nearer_the_elapsed_time(self):
        """An hour before 02:15 EST on New York's fall-back night is 01:15 EST, not 01:15 EDT two hours before."""
        new_york = ZoneInfo("America/New_York")
        start = datetime(2026, 11, 1, 7, 15, tzinfo=UTC)  # 02:15 EST, after the clocks went back
        first_pass = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)  # 01:50 EDT, before they did

        assert start - H == wall_clock_before(start, H, new_york)
        assert first_pass - 30 * MINUTE == wall_clock_before(first_pass, 30 * MINUTE, new_york)
        quote = CancellationPolicy(tiers=[RefundTier(H, 100)], otherwise_percent=0).quote(
            price=EUR(40), paid=EUR(40), start=start, now=start - 65 * MINUTE, zone=new_york, by_business=False
        )
        assert 100 == quote.refund_percent


class TestConfirmation:
    @pytest.mark.parametrize(
        ("mode", "status", "paid", "amount", "expected"),
        [
            (ConfirmationMode.PAYMENT_CONFIRMS, BookingStatus.PRE_BOOKING, "0", "100", Action.PAY_FULL),
            (ConfirmationMode.PAYMENT_CONFIRMS, BookingStatus.PRE_BOOKING, "0", "30", Action.PREPAY),
            (ConfirmationMode.ANY_ORDER, BookingStatus.PRE_BOOKING, "0", "100", Action.PREPAY),
            (ConfirmationMode.MANAGER_FIRST, BookingStatus.CONFIRMED, "0", "40", Action.PAY_PARTIAL),
            (ConfirmationMode.MANAGER_FIRST, BookingStatus.CONFIRMED, "60", "40", Action.PAY_FULL),
        ],
    )
    def test_payment_action(self, mode, status, paid, amount, expected):
        """A payment becomes the action its policy and the amounts say."""
        policy = ConfirmationPolicy(mode=mode)

        assert expected == policy.payment_action(status, EUR(paid), EUR(amount), EUR("100"))

    def test_deposit_confirms(self):
        """With a 30 % deposit, paying 30 of 100 confirms a pre-booking."""
        policy = ConfirmationPolicy(deposit_percent=30)

        assert Action.DEPOSIT == policy.payment_action(BookingStatus.PRE_BOOKING, EUR(0), EUR(30), EUR(100))
        assert Action.PREPAY == policy.payment_action(BookingStatus.PRE_BOOKING, EUR(0), EUR("29.99"), EUR(100))

    def test_manager_first_refuses_payment(self):
        """Under manager-first, paying a pre-booking is a policy violation."""
        with pytest.raises(PolicyViolationError, match="only after a manager") as info:
            ConfirmationPolicy(mode="manager_first").payment_action(BookingStatus.PRE_BOOKING, EUR(0), EUR(10), EUR(100))
        assert "manager_first" == info.value.rule

    def test_overpayment_and_currency(self):
        """Overpayment is refused; a payment in another currency is a mismatch; zero is no payment."""
        policy = ConfirmationPolicy()

        with pytest.raises(PolicyViolationError, match="more than"):
            policy.payment_action(BookingStatus.CONFIRMED, EUR(90), EUR(20), EUR(100))
        with pytest.raises(CurrencyMismatchError):
            policy.payment_action(BookingStatus.CONFIRMED, EUR(0), Money(10, "USD"), EUR(100))
        with pytest.raises(InvalidInputError):
            policy.payment_action(BookingStatus.CONFIRMED, EUR(0), EUR(0), EUR(100))

    @given(
        st.sampled_from(ConfirmationMode),
        st.sampled_from([BookingStatus.PRE_BOOKING, BookingStatus.CONFIRMED]),
        st.integers(0, 100),
        st.integers(1, 20_000),
        st.integers(1, 20_000),
    )
    def test_a_new_price_treats_what_was_paid_as_paid_against_it(self, mode, status, deposit, paid, due):
        """
        After a price change, a booking is where the same payment at the new price would have put it.

        A payment that would have made the booking firmer (paid in full, or confirmed by its deposit) is that
        action; one that would have waited (a prepayment; manager-first) is nothing. Amounts in cents, paid ≤ due.
        """
        paid, due = min(paid, due), max(paid, due)
        policy = ConfirmationPolicy(mode=mode, deposit_percent=deposit)
        cents = lambda n: EUR(Decimal(n) / 100)  # noqa: E731
        try:
            as_payment = policy.payment_action(status, EUR(0), cents(paid), cents(due))
        except PolicyViolationError:
            as_payment = None
        expected = as_payment if as_payment in {Action.PAY_FULL, Action.DEPOSIT} else None

        assert expected == policy.repriced_action(status, cents(paid), cents(due))

    def test_a_new_price_without_a_payment_changes_nothing(self):
        """Nothing paid, or a free booking: no step, whatever the mode."""
        for mode in ConfirmationMode:
            policy = ConfirmationPolicy(mode=mode, deposit_percent=0)
            for status in BookingStatus:
                assert policy.repriced_action(status, EUR(0), EUR(10)) is None
                assert policy.repriced_action(status, EUR(0), EUR(0)) is None

    def test_confirm_action(self):
        """Confirming a booking already paid in full makes it paid."""
        assert Action.CONFIRM_PAID == ConfirmationPolicy.confirm_action(EUR(100), EUR(100))
        assert Action.CONFIRM == ConfirmationPolicy.confirm_action(EUR(50), EUR(100))
        assert Action.CONFIRM == ConfirmationPolicy.confirm_action(EUR(0), EUR(0))

    @pytest.mark.parametrize("kwargs", [{"mode": "first"}, {"deposit_percent": 101}, {"deposit_percent": 0.5}])
    def test_bad_policy(self, kwargs):
        """Invalid policies are refused at construction."""
        with pytest.raises(InvalidInputError):
            ConfirmationPolicy(**kwargs)


class TestCancellation:
    @pytest.mark.parametrize(
        ("now", "refund", "penalty"),
        [
            (datetime(2026, 3, 28, 9, tzinfo=PARIS), "100.00", "0.00"),
            (datetime(2026, 3, 28, 10, tzinfo=PARIS), "100.00", "0.00"),  # exactly at the tier boundary
            (datetime(2026, 3, 28, 11, tzinfo=PARIS), "50.00", "50.00"),
            (datetime(2026, 3, 29, 10, tzinfo=PARIS), "50.00", "50.00"),
            (datetime(2026, 3, 29, 10, 1, tzinfo=PARIS), "0.00", "100.00"),
        ],
    )
    def test_tiers(self, now, refund, penalty):
        """> 48 h: everything back; 24-48 h: half; < 24 h: nothing (boundaries on the local wall clock)."""
        quote = TIERED.quote(price=EUR(100), paid=EUR(100), start=START, now=now, zone=PARIS, by_business=False)

        assert (EUR(refund), EUR(penalty), EUR(0)) == (quote.refund, quote.penalty, quote.owed)

    def test_tiers_must_say_what_a_later_cancellation_refunds(self):
        """Tiers without otherwise_percent are refused (its old default, 100, refunded a late cancellation in full)."""
        with pytest.raises(InvalidInputError, match="must say otherwise_percent") as info:
            CancellationPolicy(tiers=[RefundTier(48 * H, 100), RefundTier(24 * H, 50)])

        assert "otherwise_percent" == info.value.details["field"]
        assert Decimal(100) == CancellationPolicy().otherwise_percent  # no tiers: cancelling is free
        evolved = attrs.evolve(CancellationPolicy(), tiers=[RefundTier(48 * H, 100)])  # given: the 100 it had
        assert Decimal(100) == evolved.otherwise_percent

    def test_business_cancellation_refunds_everything(self):
        """When the business cancels, the client gets everything back."""
        quote = TIERED.quote(price=EUR(100), paid=EUR(60), start=START, now=START, zone=PARIS, by_business=True)

        assert (EUR(60), EUR(0)) == (quote.refund, quote.penalty)

    def test_deposit_smaller_than_penalty(self):
        """With 30 paid and a 50 penalty, nothing is refunded and 20 is owed."""
        quote = TIERED.quote(
            price=EUR(100), paid=EUR(30), start=START, now=datetime(2026, 3, 29, 9, tzinfo=PARIS), zone=PARIS, by_business=False
        )

        assert (EUR(0), EUR(50), EUR(20)) == (quote.refund, quote.penalty, quote.owed)

    def test_deadline(self):
        """After the client deadline, cancelling is refused with the deadline in the error."""
        policy = CancellationPolicy(deadline=2 * H)

        with pytest.raises(PolicyViolationError, match="accepted until") as info:
            policy.quote(price=EUR(10), paid=EUR(0), start=START, now=START - H, zone=PARIS, by_business=False)
        assert START - 2 * H == info.value.deadline

    @given(
        st.integers(0, 10**6), st.integers(0, 100), st.integers(0, 100), st.integers(1, 200)
    )
    def test_money_balances(self, cents, paid_share, percent, hours_before):
        """Refund + kept = paid, penalty = kept + owed, and nothing is negative, for any amounts."""
        price = Money(Decimal(cents).scaleb(-2), "EUR")
        paid = Money((Decimal(cents) * paid_share // 100).scaleb(-2), "EUR")
        policy = CancellationPolicy(tiers=[RefundTier(24 * H, percent)], otherwise_percent=0)
        quote = policy.quote(price=price, paid=paid, start=START, now=START - hours_before * H, zone=PARIS, by_business=False)
        kept = paid - quote.refund

        assert not quote.refund.is_negative
        assert not quote.owed.is_negative
        assert not kept.is_negative
        assert quote.penalty == kept + quote.owed

    @given(st.timedeltas(timedelta(0), 30 * 24 * H))
    def test_no_client_cancellation_once_begun(self, after):
        """From the start on, a client can no longer cancel on the policy's terms; the business still can, refunding all."""
        policy = CancellationPolicy(tiers=[RefundTier(24 * H, 100)], otherwise_percent=100)
        now = START.astimezone(UTC) + after

        with pytest.raises(PolicyViolationError, match="began at") as info:
            policy.quote(price=EUR(40), paid=EUR(40), start=START, now=now, zone=PARIS, by_business=False)
        assert "cancellation_started" == info.value.rule
        quote = policy.quote(price=EUR(40), paid=EUR(40), start=START, now=now, zone=PARIS, by_business=True)
        assert EUR(40) == quote.refund

    def test_no_show_fee(self):
        """The no-show fee is a share of the price."""
        assert EUR(25) == CancellationPolicy(no_show_fee_percent=25).no_show_fee(EUR(100))

    def test_bad_tiers(self):
        """Two tiers at the same point, or a non-tier, are refused."""
        with pytest.raises(InvalidInputError):
            CancellationPolicy(tiers=[RefundTier(H, 10), RefundTier(H, 20)])
        with pytest.raises(InvalidInputError):
            CancellationPolicy(tiers=[(H, 10)])


class TestRescheduleAndNoShow:
    def test_reschedule_limit_and_deadline(self):
        """Moving is refused after N times or past the deadline."""
        policy = ReschedulePolicy(deadline=24 * H, max_times=1)

        policy.check(start=START, now=START - 25 * H, zone=PARIS, times_so_far=0)
        with pytest.raises(PolicyViolationError, match="at most 1"):
            policy.check(start=START, now=START - 25 * H, zone=PARIS, times_so_far=1)
        with pytest.raises(PolicyViolationError, match="can be moved until"):
            policy.check(start=START, now=START - 23 * H, zone=PARIS, times_so_far=0)

    def test_no_show_after_grace(self):
        """A no-show may be marked only after the grace period and only if not checked in."""
        policy = NoShowPolicy(grace=timedelta(minutes=10))

        policy.check(start=START, now=START + timedelta(minutes=10), checked_in=False)
        with pytest.raises(PolicyViolationError, match="from"):
            policy.check(start=START, now=START + timedelta(minutes=9), checked_in=False)
        with pytest.raises(PolicyViolationError, match="checked in"):
            policy.check(start=START, now=START + H, checked_in=True)


class TestPolicies:
    def test_defaults(self):
        """The defaults: 30-minute holds, payment confirms, free cancellation, 15-minute grace."""
        policies = Policies()

        assert timedelta(minutes=30) == policies.hold.ttl
        assert ConfirmationMode.PAYMENT_CONFIRMS == policies.confirmation.mode
        assert Decimal(100) == policies.cancellation.otherwise_percent

    @pytest.mark.parametrize(
        "build",
        [
            lambda: HoldPolicy(ttl=timedelta(0)),
            lambda: HoldPolicy(accept_late_payment="yes"),
            lambda: Policies(hold="30m"),
            lambda: ReschedulePolicy(max_times=-1),
            lambda: NoShowPolicy(grace=-H),
            lambda: RefundTier(-H, 10),
            lambda: HoldPolicy(ttl=timedelta.max),
            lambda: NoShowPolicy(grace=timedelta(days=10**8)),
            lambda: RefundTier(timedelta(days=10**6), 10),
            lambda: ReschedulePolicy(deadline=timedelta.max),
        ],
    )
    def test_bad_values(self, build):
        """Each bad policy value raises InvalidInputError."""
        with pytest.raises(InvalidInputError):
            build()
