"""Reports: periods, utilization against a minute-grid oracle, money to the cent, cancellations, the funnel."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine import reports
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment, PaymentKind
from slotengine.errors import InvalidInputError, OutOfRangeError
from slotengine.intervals import Interval
from slotengine.lifecycle import TRANSITIONS, Action, BookingStatus, TransitionRecord
from slotengine.model import UNLIMITED, Resource
from slotengine.money import CURRENCY_MINOR_UNITS, Money
from slotengine.reports import Dimension, Grain, Period
from slotengine.schedule import Schedule, TimeOff, TimeRange, WeeklyHours, effective_hours
from slotengine.testing._report_oracle import local_day_bounds, utilization_minutes
from slotengine.testing.strategies import DST_ZONES, schedule_windows, schedules

S = BookingStatus
H = timedelta(hours=1)
M = timedelta(minutes=1)
PARIS = "Europe/Paris"
MOSCOW = "Europe/Moscow"
ALWAYS = Schedule(PARIS, WeeklyHours.every_day(TimeRange(time(0), time(0))))
NINE_TO_SIX = Schedule(PARIS, WeeklyHours.every_day(TimeRange(time(9), time(18))))


def paris(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo(PARIS))


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def booking(
    bid: str,
    start: datetime,
    end: datetime,
    *,
    resources: tuple[tuple[str, ...], ...] = (("r1",),),
    units: tuple[int, ...] | None = None,
    status: BookingStatus = S.CONFIRMED,
    payments: tuple[Payment, ...] = (),
    service: str = "s",
    source: str = "site",
    created_at: datetime | None = None,
    buffer_before: timedelta = timedelta(0),
    buffer_after: timedelta = timedelta(0),
    external_ref: str | None = None,
) -> Booking:
    created = created_at if created_at is not None else start - 24 * H
    return Booking(
        bid,
        service,
        start,
        end,
        tuple(Assignment(i, f"need{i}", rids) for i, rids in enumerate(resources)),
        units if units is not None else (1,) * len(resources),
        status,
        created,
        hold_until=created + H if status is S.PRE_BOOKING else None,
        buffer_before=buffer_before,
        buffer_after=buffer_after,
        source=source,
        payments=payments,
        external_ref=external_ref,
    )


MARCH_1 = datetime(2026, 3, 1, tzinfo=ZoneInfo(PARIS))


def pay(pid: str, kind: PaymentKind, amount: Money, at: datetime = MARCH_1) -> Payment:
    return Payment(pid, kind, amount, at)


def record(bid: str, before: BookingStatus | None, action: Action, at: datetime) -> TransitionRecord:
    return TransitionRecord(bid, before, TRANSITIONS[before][action], action, at, "tests")


def rows_by(rows, dimension):
    return {r.key: r for r in rows if r.dimension == dimension}


# --- periods ---------------------------------------------------------------------------------------------------


class TestPeriods:
    @pytest.mark.parametrize("grain", ["day", "week", "month"])
    def test_days_outside_the_range_are_refused(self, grain):
        """Days before 1970 or after 2199 raise OutOfRangeError (month arithmetic at year 9999 overflowed)."""
        with pytest.raises(OutOfRangeError, match="9999-12-31"):
            reports.periods(date(9999, 12, 31), date(9999, 12, 31), "UTC", grain)
        with pytest.raises(OutOfRangeError, match="1969-12-31"):
            reports.periods(date(1969, 12, 31), date(1970, 1, 2), "UTC", grain)

    def test_a_moscow_day_is_not_a_utc_day(self):
        """A Moscow day runs from 21:00 UTC the evening before to 21:00 UTC."""
        [day] = reports.periods(date(2026, 3, 2), date(2026, 3, 2), MOSCOW)

        assert (datetime(2026, 3, 1, 21, tzinfo=UTC), datetime(2026, 3, 2, 21, tzinfo=UTC)) == (day.start, day.end)

    def test_dst_days_last_23_and_25_hours(self):
        """The local days when the clocks change last 23 hours (spring) and 25 hours (autumn)."""
        spring = reports.periods(date(2026, 3, 29), date(2026, 3, 29), PARIS)[0]
        autumn = reports.periods(date(2026, 10, 25), date(2026, 10, 25), PARIS)[0]

        assert 23 * H == spring.end - spring.start
        assert 25 * H == autumn.end - autumn.start

    def test_weeks_start_on_monday_and_are_cut_to_the_window(self):
        """Weeks run Monday to Sunday; the first and last are cut to the window and keep their ISO labels."""
        weeks = reports.periods(date(2026, 3, 4), date(2026, 3, 17), PARIS, grain="week")

        assert [
            ("2026-W10", date(2026, 3, 4), date(2026, 3, 8)),
            ("2026-W11", date(2026, 3, 9), date(2026, 3, 15)),
            ("2026-W12", date(2026, 3, 16), date(2026, 3, 17)),
        ] == [(w.label, w.first_day, w.last_day) for w in weeks]

    def test_months_are_calendar_months(self):
        """Months are calendar months, December rolls into January, and the window cuts the ends."""
        months = reports.periods(date(2025, 12, 15), date(2026, 2, 10), PARIS, grain=Grain.MONTH)

        assert ["2025-12", "2026-01", "2026-02"] == [m.label for m in months]
        assert (date(2026, 1, 1), date(2026, 1, 31)) == (months[1].first_day, months[1].last_day)
        assert date(2026, 2, 10) == months[-1].last_day

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            ((date(2026, 3, 2), date(2026, 3, 1), PARIS), "last_day"),
            ((datetime(2026, 3, 1, tzinfo=UTC), date(2026, 3, 1), PARIS), "day"),
            ((date(2026, 3, 1), date(2026, 3, 1), PARIS, "year"), "grain"),
        ],
    )
    def test_bad_windows_are_refused(self, args, field):
        """A window that ends before it starts, a datetime for a date, or an unknown grain is refused."""
        with pytest.raises(InvalidInputError) as caught:
            reports.periods(*args)

        assert field == caught.value.details["field"]

    @given(
        zone=st.sampled_from(DST_ZONES),
        first=st.dates(date(2010, 1, 1), date(2030, 12, 1)),
        days=st.integers(0, 80),
        grain=st.sampled_from(list(Grain)),
    )
    def test_periods_tile_the_window_at_local_midnights(self, zone, first, days, grain):
        """Periods tile the window with no gap or overlap, each from a local midnight to a local midnight."""
        last = first + timedelta(days=days)
        cut = reports.periods(first, last, zone, grain)

        assert (first, last) == (cut[0].first_day, cut[-1].last_day)
        for before, after in itertools.pairwise(cut):
            assert before.end == after.start
            assert before.last_day + timedelta(days=1) == after.first_day
        for period in cut:
            assert local_day_bounds(period.first_day, period.last_day, zone) == (period.start, period.end)
            if grain is Grain.WEEK:
                assert period.first_day.isocalendar()[:2] == period.last_day.isocalendar()[:2]
            if grain is Grain.MONTH:
                assert (period.first_day.year, period.first_day.month) == (period.last_day.year, period.last_day.month)
            if grain is Grain.DAY:
                assert period.first_day == period.last_day


# --- utilization -----------------------------------------------------------------------------------------------

_CAPACITIES = st.one_of(st.integers(1, 3), st.just(UNLIMITED))


@st.composite
def utilization_cases(draw):
    """Two resources of one type near a DST change, day periods in some zone, and bookings on whole minutes."""
    zone = draw(st.sampled_from(DST_ZONES))
    own, window = draw(schedule_windows(st.just(zone), max_days=1))
    anchor = window.start.astimezone(ZoneInfo(zone)).date()
    business_zone = draw(st.sampled_from(DST_ZONES))
    business = draw(schedules(st.just(business_zone), around=anchor))
    other = draw(st.one_of(st.none(), schedules(st.just(zone), around=anchor)))
    resources = [
        Resource("r1", "R1", type="t", capacity=draw(_CAPACITIES), schedule=own if draw(st.booleans()) else None),
        Resource("r2", "R2", type="t", capacity=draw(_CAPACITIES), schedule=other),
    ]
    report_zone = draw(st.sampled_from(DST_ZONES))
    first = window.start.astimezone(ZoneInfo(report_zone)).date()
    cut = reports.periods(first, first + timedelta(days=draw(st.integers(0, 1))), report_zone)
    origin, span = cut[0].start, int((cut[-1].end - cut[0].start) / M)
    bookings = []
    hull = Interval(cut[0].start, cut[-1].end)
    opened = {r.id: list(effective_hours(r.schedule, business, hull)) for r in resources}
    for n in range(draw(st.sampled_from(range(9)))):
        on = draw(st.sampled_from([(("r1",),), (("r2",),), (("r1", "r2"),), (("r1",), ("r2",))]))
        pieces = opened[on[0][0]]
        if pieces and draw(st.booleans()):  # most often where the resource is open, so that time gets booked
            piece = draw(st.sampled_from(pieces))
            start = piece.start + draw(st.integers(0, int(piece.duration / M) - 1)) * M
        else:
            start = origin + draw(st.integers(-300, span)) * M
        length = draw(st.integers(1, 900)) * M
        bookings.append(
            booking(
                f"b{n}",
                start,
                start + length,
                resources=on,
                units=tuple(draw(st.integers(1, 2)) for _ in on),
                status=draw(
                    st.one_of(st.sampled_from(list(BookingStatus)), st.sampled_from(sorted(reports.BOOKED_STATUSES)))
                ),
                buffer_before=draw(st.integers(0, 30)) * M,
                buffer_after=draw(st.integers(0, 30)) * M,
            )
        )
    return resources, business, cut, bookings, draw(st.booleans())


class TestUtilizationOracle:
    @settings(max_examples=200)
    @given(utilization_cases())
    def test_utilization_equals_the_minute_grid_oracle(self, case):
        """Open, available and booked time per resource and period equal a minute-by-minute count."""
        resources, business, cut, bookings, buffers = case

        rows = reports.utilization(bookings, resources, business, cut, include_buffers=buffers)

        windows = [Interval(*local_day_bounds(p.first_day, p.last_day, p.zone)) for p in cut]
        for resource in resources:
            expected = utilization_minutes(
                bookings, resource, business, windows, reports.BOOKED_STATUSES, include_buffers=buffers
            )
            actual = [r for r in rows if r.dimension == Dimension.RESOURCE and r.key == resource.id]
            assert [p.label for p in cut] == [r.period.label for r in actual]
            for oracle, row in zip(expected, actual, strict=True):
                assert oracle.open_minutes * M == row.open_time
                assert oracle.booked_unit_minutes * M == row.booked
                if resource.unlimited:
                    assert (None, None) == (row.available, row.utilization)
                else:
                    assert oracle.open_minutes * resource.capacity * M == row.available
                    if oracle.open_minutes:
                        assert Fraction(oracle.booked_unit_minutes, oracle.open_minutes * resource.capacity) == (
                            row.utilization
                        )
                    else:
                        assert row.utilization is None
                    if oracle.peak_load <= resource.capacity:
                        assert 0 <= (row.utilization or 0) <= 1

    @settings(max_examples=100)
    @given(utilization_cases())
    def test_types_sum_their_resources_and_days_sum_to_the_window(self, case):
        """
        A type's row is Σ booked ÷ Σ available over its resources (None when one is unlimited); and cut into days
        or taken whole, the same window has the same booked and open time: time is split, never lost.
        """
        resources, business, cut, bookings, _ = case
        whole = Period(Grain.DAY, cut[0].first_day, cut[-1].last_day, cut[0].zone)

        rows = reports.utilization(bookings, resources, business, cut)
        at_once = reports.utilization(bookings, resources, business, [whole])

        for period in cut:
            mine = [r for r in rows if r.period == period and r.dimension == Dimension.RESOURCE]
            [kind] = [r for r in rows if r.period == period and r.dimension == Dimension.TYPE]
            assert (len(resources), "t") == (kind.resources, kind.key)
            assert sum((r.booked for r in mine), timedelta(0)) == kind.booked
            assert sum((r.open_time for r in mine), timedelta(0)) == kind.open_time
            if any(r.unlimited for r in resources):
                assert (None, None, None) == (kind.available, kind.capacity, kind.utilization)
            else:
                assert sum((r.available for r in mine), timedelta(0)) == kind.available
        for row in at_once:
            parts = [r for r in rows if (r.dimension, r.key) == (row.dimension, row.key)]
            assert row.booked == sum((r.booked for r in parts), timedelta(0))
            assert row.open_time == sum((r.open_time for r in parts), timedelta(0))


class TestUtilization:
    def test_a_booking_across_midnight_is_split_by_time(self):
        """A booking from 22:00 to 02:00 puts two hours in each local day."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 3), PARIS)
        late = booking("b", paris(2, 22), paris(3, 2))

        rows = reports.utilization([late], [Resource("r1", "R1")], ALWAYS, cut)

        assert [2 * H, 2 * H] == [r.booked for r in rows if r.dimension == Dimension.RESOURCE]
        assert [Fraction(1, 12), Fraction(1, 12)] == [r.utilization for r in rows if r.dimension == Dimension.RESOURCE]

    def test_dst_days_offer_23_and_25_hours(self):
        """A resource open around the clock has 23 hours on the spring DST day and 25 on the autumn one."""
        spring = reports.periods(date(2026, 3, 29), date(2026, 3, 29), PARIS)
        autumn = reports.periods(date(2026, 10, 25), date(2026, 10, 25), PARIS)
        whole_day = booking("b", paris(25, month=10), paris(26, month=10))

        [r_spring, _] = reports.utilization([], [Resource("r1", "R1")], ALWAYS, spring)
        [r_autumn, _] = reports.utilization([whole_day], [Resource("r1", "R1")], ALWAYS, autumn)

        assert 23 * H == r_spring.available
        assert (25 * H, 25 * H, Fraction(1)) == (r_autumn.available, r_autumn.booked, r_autumn.utilization)

    def test_statuses_that_count_as_booked_time(self):
        """Confirmed, paid, completed and no-show bookings are booked time; holds, cancellations, expiries are not."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        bookings = [booking(f"b{i}", paris(2, 9 + i), paris(2, 10 + i), status=s) for i, s in enumerate(BookingStatus)]
        capacious = Resource("r1", "R1", capacity=10)

        [row, _] = reports.utilization(bookings, [capacious], NINE_TO_SIX, cut)
        [held, _] = reports.utilization(bookings, [capacious], NINE_TO_SIX, cut, statuses=[S.PRE_BOOKING])

        assert 4 * H == row.booked
        assert 1 * H == held.booked

    def test_buffers_count_only_when_asked(self):
        """Buffers are not booked time, unless include_buffers=True."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        wash = booking("b", paris(2, 10), paris(2, 11), buffer_before=15 * M, buffer_after=30 * M)

        [plain, _] = reports.utilization([wash], [Resource("r1", "R1")], NINE_TO_SIX, cut)
        [buffered, _] = reports.utilization([wash], [Resource("r1", "R1")], NINE_TO_SIX, cut, include_buffers=True)

        assert (H, H + 45 * M) == (plain.booked, buffered.booked)

    def test_time_off_and_holidays_are_not_available(self):
        """Working hours exclude the resource's time off and the business's holidays."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 3), PARIS)
        business = NINE_TO_SIX.with_time_off(TimeOff.days(date(2026, 3, 3)))
        own = NINE_TO_SIX.with_time_off(TimeOff(paris(2, 9), paris(2, 12)))

        rows = reports.utilization([], [Resource("r1", "R1", schedule=own)], business, cut)

        assert [6 * H, 0 * H] == [r.open_time for r in rows if r.dimension == Dimension.RESOURCE]
        assert None is rows[-1].utilization

    def test_bookings_outside_working_hours_add_nothing(self):
        """An override booked at night is outside available time and adds no booked time."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        night = booking("b", paris(2, 17), paris(2, 20))

        [row, _] = reports.utilization([night], [Resource("r1", "R1")], NINE_TO_SIX, cut)

        assert (H, Fraction(1, 9)) == (row.booked, row.utilization)

    def test_capacity_and_units_weigh_booked_time(self):
        """Booked time is units × time: 2 seats of 3 for 9 hours is two thirds of the day."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        seats = booking("b", paris(2, 9), paris(2, 18), units=(2,))

        [row, _] = reports.utilization([seats], [Resource("r1", "R1", capacity=3)], NINE_TO_SIX, cut)

        assert (27 * H, 18 * H, Fraction(2, 3)) == (row.available, row.booked, row.utilization)

    def test_overbooking_is_reported_above_one(self):
        """Two overlapping bookings on a capacity-1 resource (an override) give a utilization above 1."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        twice = [booking("a", paris(2, 9), paris(2, 18)), booking("b", paris(2, 9), paris(2, 18))]

        [row, _] = reports.utilization(twice, [Resource("r1", "R1")], NINE_TO_SIX, cut)

        assert Fraction(2) == row.utilization

    def test_unlimited_resources_report_booked_time_only(self):
        """An unlimited resource has booked time but no available capacity-time, and so no utilization."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        hall = Resource("hall", "Hall", type="room", capacity=UNLIMITED)
        room = Resource("r1", "Room", type="room")
        talks = [booking("b", paris(2, 10), paris(2, 12), resources=(("hall",),), units=(40,))]

        rows = reports.utilization(talks, [hall, room], NINE_TO_SIX, cut)

        assert (80 * H, 9 * H, None, None) == (
            rows[0].booked,
            rows[0].open_time,
            rows[0].available,
            rows[0].utilization,
        )
        assert (Dimension.TYPE, None) == (rows[-1].dimension, rows[-1].utilization)

    def test_overlapping_periods_are_refused(self):
        """Periods must be in order and disjoint."""
        day = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)[0]

        with pytest.raises(InvalidInputError):
            reports.utilization([], [], NINE_TO_SIX, [day, day])


# --- money -----------------------------------------------------------------------------------------------------

_CURRENCIES = ("EUR", "JPY", "KWD")


def _money(draw, currency: str, most: int = 100_000) -> Money:
    return Money(Decimal(draw(st.integers(1, most))).scaleb(-CURRENCY_MINOR_UNITS[currency]), currency)


@st.composite
def ledgered_bookings(draw):
    """Bookings in three currencies with random ledgers, on one to four resources, around a Moscow week."""
    out = []
    origin = datetime(2026, 3, 1, 21, tzinfo=UTC)  # 2 March, 00:00 in Moscow
    for n in range(draw(st.integers(0, 10))):
        currency = draw(st.sampled_from(_CURRENCIES))
        start = origin + draw(st.integers(-1440, 8 * 1440)) * M
        on = tuple(
            tuple(draw(st.lists(st.sampled_from(["r1", "r2", "r3", "r4"]), min_size=1, max_size=3, unique=True)))
            for _ in range(draw(st.integers(1, 2)))
        )
        payments = tuple(
            pay(f"p{n}-{k}", draw(st.sampled_from(list(PaymentKind))), _money(draw, currency))
            for k in range(draw(st.integers(0, 4)))
        )
        out.append(
            booking(
                f"b{n}",
                start,
                start + H,
                resources=on,
                status=draw(st.sampled_from(list(BookingStatus))),
                payments=payments,
                service=draw(st.sampled_from(["wash", "polish"])),
                source=draw(st.sampled_from(["site", "partner", "manager"])),
            )
        )
    return out


def _ledger_sum(bookings, kind):
    total = defaultdict(lambda: Decimal(0))
    for b in bookings:
        for p in b.payments:
            if p.kind is kind:
                total[p.amount.currency] += p.amount.amount
    return {c: Money(a, c) for c, a in total.items()}


MOSCOW_WEEK = reports.periods(date(2026, 3, 2), date(2026, 3, 8), MOSCOW)


class TestRevenue:
    @settings(max_examples=200)
    @given(ledgered_bookings())
    def test_the_total_is_the_ledger_per_currency(self, bookings):
        """The total's paid, refunded and fees equal the sums of the ledgers, currency by currency."""
        inside = [b for b in bookings if MOSCOW_WEEK[0].start <= b.start < MOSCOW_WEEK[-1].end]
        whole = Period(Grain.WEEK, date(2026, 3, 2), date(2026, 3, 8), MOSCOW)

        [*rows] = reports.revenue(bookings, [whole], dimensions=[Dimension.TOTAL])

        expected = {k: _ledger_sum(inside, k) for k in PaymentKind}
        if not any(b.payments for b in inside):
            assert [] == rows
            return
        [total] = rows
        assert expected[PaymentKind.PAYMENT] == dict(total.paid)
        assert expected[PaymentKind.REFUND] == dict(total.refunded)
        assert expected[PaymentKind.FEE] == dict(total.fees)
        assert sum(1 for b in inside if b.payments) == total.bookings
        for currency, net in total.net.items():
            paid = expected[PaymentKind.PAYMENT].get(currency, Money.zero(currency))
            assert paid - expected[PaymentKind.REFUND].get(currency, Money.zero(currency)) == net

    @settings(max_examples=200)
    @given(ledgered_bookings())
    def test_every_breakdown_adds_up_to_the_total_to_the_minor_unit(self, bookings):
        """Per resource (split), per service and per source, the rows add up exactly to the total, per period."""
        rows = reports.revenue(bookings, MOSCOW_WEEK)

        for period in MOSCOW_WEEK:
            mine = [r for r in rows if r.period == period]
            totals = [r for r in mine if r.dimension == Dimension.TOTAL]
            for dimension in (Dimension.RESOURCE, Dimension.SERVICE, Dimension.SOURCE):
                parts = [r for r in mine if r.dimension == dimension]
                for field in ("paid", "refunded", "fees", "net"):
                    summed = reports.Amounts()
                    for part in parts:
                        summed += getattr(part, field)
                    expected = getattr(totals[0], field) if totals else reports.Amounts()
                    assert expected == summed

    @settings(max_examples=200)
    @given(ledgered_bookings())
    def test_periods_add_up_to_the_whole_window(self, bookings):
        """Money is attributed to one period each: day rows add up to the week's row."""
        whole = Period(Grain.WEEK, date(2026, 3, 2), date(2026, 3, 8), MOSCOW)

        by_day = reports.revenue(bookings, MOSCOW_WEEK, dimensions=["total"])
        at_once = reports.revenue(bookings, [whole], dimensions=["total"])

        summed = reports.Amounts()
        for row in by_day:
            summed += row.net
        assert (dict(at_once[0].net) if at_once else {}) == dict(summed)

    @given(
        currency=st.sampled_from((*_CURRENCIES, "CLF")),
        minor=st.integers(-(10**9), 10**9),
        parts=st.integers(1, 7),
    )
    def test_split_evenly_adds_up_and_is_fair(self, currency, minor, parts):
        """Shares add up exactly, differ by at most one minor unit, and the larger ones come first."""
        places = CURRENCY_MINOR_UNITS[currency]
        amount = Money(Decimal(minor).scaleb(-places), currency)

        shares = reports.split_evenly(amount, parts)

        assert parts == len(shares)
        assert amount == sum(shares[1:], shares[0])
        units = [int(s.amount.scaleb(places)) for s in shares]
        assert max(units) - min(units) <= 1
        assert sorted(units, key=abs, reverse=True) == units

    def test_split_remainder_goes_to_the_first_resources(self):
        """100 EUR among three resources is 33.34, 33.33, 33.33."""
        assert (eur("33.34"), eur("33.33"), eur("33.33")) == reports.split_evenly(eur("100"), 3)

    def test_split_refuses_zero_parts(self):
        """Money cannot be split into no parts."""
        with pytest.raises(InvalidInputError):
            reports.split_evenly(eur("1"), 0)

    def test_a_combined_need_splits_per_resource_in_booking_order(self):
        """A car-with-driver booking's money is split between the car and the driver, remainder to the car."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        ride = booking(
            "b",
            paris(2, 10),
            paris(2, 11),
            resources=(("car",), ("driver",)),
            payments=(pay("p", PaymentKind.PAYMENT, eur("100.01")),),
        )

        rows = rows_by(reports.revenue([ride], cut), Dimension.RESOURCE)

        assert ({"EUR": eur("50.01")}, {"EUR": eur("50.00")}) == (rows["car"].net, rows["driver"].net)

    def test_money_belongs_to_the_period_of_the_start_whatever_its_status(self):
        """A deposit paid in February for a March booking, kept after cancellation, is March's revenue."""
        cut = reports.periods(date(2026, 2, 1), date(2026, 3, 31), PARIS, grain="month")
        kept = booking(
            "b",
            paris(2, 10),
            paris(2, 11),
            status=S.CANCELLED,
            payments=(
                pay("p", PaymentKind.PAYMENT, eur("40"), paris(10, month=2)),
                pay("r", PaymentKind.REFUND, eur("30"), paris(1)),
                pay("f", PaymentKind.FEE, eur("5"), paris(1)),
            ),
        )

        [row] = reports.revenue([kept], cut, dimensions=["total"])

        assert ("2026-03", {"EUR": eur("10")}, {"EUR": eur("5")}) == (row.period.label, row.net, row.fees)

    def test_currencies_are_never_added_together(self):
        """Bookings in two currencies give two entries, each its own sum."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        bookings = [
            booking("a", paris(2, 10), paris(2, 11), payments=(pay("p1", PaymentKind.PAYMENT, eur("10")),)),
            booking("b", paris(2, 12), paris(2, 13), payments=(pay("p2", PaymentKind.PAYMENT, Money("1500", "RUB")),)),
        ]

        [row] = reports.revenue(bookings, cut, dimensions=["total"])

        assert {"EUR": eur("10"), "RUB": Money("1500", "RUB")} == row.net

    def test_unknown_dimensions_are_refused(self):
        """Revenue is broken down by total, resource, service or source only."""
        with pytest.raises(InvalidInputError):
            reports.revenue([], MOSCOW_WEEK, dimensions=["type"])


# --- lifecycle histories ---------------------------------------------------------------------------------------


@st.composite
def histories(draw):
    """Bookings with a random walk through the transition table, recorded step by step, and their log."""
    bookings, log = [], []
    origin = datetime(2026, 3, 1, 21, tzinfo=UTC)
    for n in range(draw(st.integers(0, 12))):
        bid = f"b{n}"
        created = origin + draw(st.integers(-1440, 8 * 1440)) * M
        at = created
        status = None
        steps = []
        for _ in range(draw(st.integers(1, 7))):
            allowed = sorted(TRANSITIONS[status], key=str)
            if not allowed:
                break
            action = draw(st.sampled_from(allowed))
            steps.append(record(bid, status, action, at))
            status = TRANSITIONS[status][action]
            at += draw(st.integers(1, 600)) * M
        start = created + draw(st.integers(60, 3 * 1440)) * M
        bookings.append(
            booking(
                bid,
                start,
                start + H,
                resources=draw(st.sampled_from([(("r1",),), (("r1", "r2"),)])),
                status=status,
                created_at=created,
                source=draw(st.sampled_from(["site", "partner"])),
            )
        )
        if draw(st.integers(0, 5)):  # now and then a booking whose log was not passed in
            log.extend(steps)
    return bookings, log


class TestCancellations:
    def test_counts_rates_lead_times_and_penalties(self):
        """Counts, rates, lead times from the CANCEL step, and what was kept of cancelled and no-show bookings."""
        cut = reports.periods(date(2026, 3, 1), date(2026, 3, 31), PARIS, grain="month")
        paid_late = (pay("p", PaymentKind.PAYMENT, eur("100")), pay("r", PaymentKind.REFUND, eur("50")))
        bookings = [
            booking("c1", paris(5, 14), paris(5, 15), status=S.CANCELLED, payments=paid_late),
            booking("c2", paris(6, 14), paris(6, 15), status=S.CANCELLED),  # no log: no lead time
            booking(
                "n1",
                paris(7, 10),
                paris(7, 11),
                status=S.NO_SHOW,
                payments=(pay("f", PaymentKind.FEE, eur("30")), pay("p2", PaymentKind.PAYMENT, eur("10"))),
            ),
            booking("d1", paris(8, 10), paris(8, 11), status=S.COMPLETED),
            booking("x1", paris(9, 10), paris(9, 11), status=S.EXPIRED),
            booking("h1", paris(9, 12), paris(9, 13), status=S.PRE_BOOKING),
        ]
        log = [record("c1", S.PAID, Action.CANCEL, paris(4, 8))]

        [row] = reports.cancellations(bookings, log, cut, dimensions=["total"])

        assert (5, 2, 1, 1) == (row.bookings, row.cancelled, row.no_shows, row.completed)
        assert (Fraction(2, 5), Fraction(1, 2)) == (row.cancellation_rate, row.no_show_rate)
        assert (30 * H,) == row.lead_times
        assert {"EUR": eur("60")} == row.kept
        assert ({"EUR": eur("30")}, {"EUR": eur("20")}) == (row.fees, row.fees_outstanding)

    def test_rates_are_none_without_bookings(self):
        """With nothing to divide by, rates and lead times are None."""
        cut = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)
        held = booking("h", paris(1, 10), paris(1, 11), status=S.PRE_BOOKING)

        [row] = reports.cancellations([held], [], cut, dimensions=["total"])

        assert (Fraction(0), None, None, None) == (
            row.cancellation_rate,
            row.no_show_rate,
            row.lead_time_median,
            row.lead_time_mean,
        )

    @settings(max_examples=200)
    @given(histories())
    def test_counts_agree_with_the_statuses_and_the_log(self, history):
        """Counts equal a recount of statuses; each lead time is a CANCEL step's distance to the start."""
        bookings, log = history
        week = [Period(Grain.WEEK, date(2026, 2, 23), date(2026, 3, 22), MOSCOW)]
        inside = [b for b in bookings if week[0].contains(b.start) and b.status is not S.EXPIRED]
        cancels = {r.booking_id: r.at for r in log if r.action is Action.CANCEL}

        rows = reports.cancellations(bookings, log, week)

        totals = [r for r in rows if r.dimension == Dimension.TOTAL]
        if not inside:
            assert [] == totals
            return
        [total] = totals
        statuses = Counter(b.status for b in inside)
        assert (len(inside), statuses[S.CANCELLED], statuses[S.NO_SHOW], statuses[S.COMPLETED]) == (
            total.bookings,
            total.cancelled,
            total.no_shows,
            total.completed,
        )
        assert sorted(b.start - cancels[b.id] for b in inside if b.status is S.CANCELLED and b.id in cancels) == list(
            total.lead_times
        )
        for row in rows:
            for rate in (row.cancellation_rate, row.no_show_rate):
                assert rate is None or 0 <= rate <= 1
        per_source = [r for r in rows if r.dimension == Dimension.SOURCE]
        assert total.cancelled == sum(r.cancelled for r in per_source)
        assert total.bookings == sum(r.bookings for r in per_source)


class TestFunnel:
    @settings(max_examples=200)
    @given(histories())
    def test_stages_never_grow_and_drop_offs_account_for_everyone(self, history):
        """Each stage holds at most the one before; what a stage loses is its expired + cancelled + no-show + pending."""
        bookings, log = history
        cut = reports.periods(date(2026, 2, 27), date(2026, 3, 12), MOSCOW, grain="week")

        rows = reports.funnel(bookings, log, cut)

        for row in rows:
            reached = [s.reached for s in row.stages]
            assert sorted(reached, reverse=True) == reached
            for stage, following in zip(row.stages, row.stages[1:], strict=False):
                assert stage.reached - following.reached == stage.dropped
            assert 0 == row.stages[-1].dropped
            assert row.conversion is None or 0 <= row.conversion <= 1

    @settings(max_examples=200)
    @given(histories())
    def test_a_booking_counts_for_every_stage_it_reached(self, history):
        """The stage counts equal a recount: reached a stage = the log or the status shows it or a later one."""
        bookings, log = history
        window = Period(Grain.MONTH, date(2026, 2, 20), date(2026, 3, 20), MOSCOW)
        visited = defaultdict(set)
        for r in log:
            visited[r.booking_id] |= {r.from_status, r.to_status}
        later = {
            S.PRE_BOOKING: set(reports.FUNNEL_STAGES),
            S.CONFIRMED: {S.CONFIRMED, S.PAID, S.COMPLETED},
            S.PAID: {S.PAID, S.COMPLETED},
            S.COMPLETED: {S.COMPLETED},
        }
        created = [b for b in bookings if window.contains(b.created_at)]

        rows = reports.funnel(bookings, log, [window])

        if not created:
            assert () == rows
            return
        total = next(r for r in rows if r.dimension == Dimension.TOTAL)
        for stage in reports.FUNNEL_STAGES:
            expected = sum(1 for b in created if stage is S.PRE_BOOKING or (visited[b.id] | {b.status}) & later[stage])
            assert expected == total.stage(stage).reached
        by_source = [r for r in rows if r.dimension == Dimension.SOURCE]
        for k in range(len(reports.FUNNEL_STAGES)):
            assert total.stages[k].reached == sum(r.stages[k].reached for r in by_source)

    def test_direct_bookings_and_on_site_payments_pass_their_stages(self):
        """A booking made confirmed passes the pre-booking stage; one completed unpaid passes the paid stage."""
        cut = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)
        made = paris(1, 9)
        direct = booking("d", paris(2, 10), paris(2, 11), status=S.COMPLETED, created_at=made)
        log = [record("d", None, Action.BOOK, made), record("d", S.CONFIRMED, Action.COMPLETE, paris(2, 12))]

        [total, _] = reports.funnel([direct], log, cut)

        assert [1, 1, 1, 1] == [s.reached for s in total.stages]
        assert () == total.times_to_payment  # never a pre-booking

    def test_drop_offs_and_time_to_payment(self):
        """Expired and cancelled holds drop at the first stage; times to payment run from creation to PAID."""
        cut = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)
        made = paris(1, 9)
        bookings = [
            booking("e", paris(5, 10), paris(5, 11), status=S.EXPIRED, created_at=made),
            booking("c", paris(5, 10), paris(5, 11), status=S.CANCELLED, created_at=made),
            booking("p", paris(5, 10), paris(5, 11), status=S.PAID, created_at=made),
            booking("q", paris(5, 10), paris(5, 11), status=S.PAID, created_at=made),
        ]
        log = [
            record("e", None, Action.HOLD, made),
            record("e", S.PRE_BOOKING, Action.EXPIRE, paris(1, 10)),
            record("c", None, Action.HOLD, made),
            record("c", S.PRE_BOOKING, Action.CANCEL, paris(1, 9, 30)),
            record("p", None, Action.HOLD, made),
            record("p", S.PRE_BOOKING, Action.PAY_FULL, paris(1, 9, 10)),
            record("q", None, Action.HOLD, made),
            record("q", S.PRE_BOOKING, Action.DEPOSIT, paris(1, 9, 20)),
            record("q", S.CONFIRMED, Action.PAY_FULL, paris(1, 10)),
        ]

        [total, _] = reports.funnel(bookings, log, cut)

        first = total.stage(S.PRE_BOOKING)
        assert (4, 1, 1, 0) == (first.reached, first.expired, first.cancelled, first.pending)
        assert [4, 2, 2, 0] == [s.reached for s in total.stages]
        assert (2, 0, 2) == (total.stage(S.PAID).dropped, total.stage(S.PAID).cancelled, total.stage(S.PAID).pending)
        assert (10 * M, H) == total.times_to_payment
        assert 35 * M == total.median_time_to_payment
        assert Fraction(1, 2) == total.conversion

    def test_only_funnel_stages_have_a_stage(self):
        """Asking a funnel for a status that is not a stage is refused."""
        cut = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)
        [total] = reports.funnel(
            [booking("a", paris(2, 1), paris(2, 2), created_at=paris(1, 9))], [], cut, dimensions=["total"]
        )

        with pytest.raises(InvalidInputError):
            total.stage(S.CANCELLED)


class TestOccurrenceFinance:
    def test_the_month_end_report_per_occurrence(self):
        """Tickets sold, cancelled and refunded, seat fill and revenue per occurrence held in the local month."""
        tickets = [
            booking(
                "t1",
                paris(13, 10),
                paris(13, 12),
                resources=(("tour-13",),),
                units=(2,),
                status=S.COMPLETED,
                payments=(pay("p1", PaymentKind.PAYMENT, eur("70")),),
            ),
            booking(
                "t2",
                paris(13, 10),
                paris(13, 12),
                resources=(("tour-13",),),
                status=S.NO_SHOW,
                payments=(pay("p2", PaymentKind.PAYMENT, eur("35")),),
            ),
            booking(
                "t3",
                paris(13, 10),
                paris(13, 12),
                resources=(("tour-13",),),
                status=S.CANCELLED,
                payments=(pay("p3", PaymentKind.PAYMENT, eur("35")), pay("r3", PaymentKind.REFUND, eur("35"))),
            ),
            booking("t4", paris(13, 10), paris(13, 12), resources=(("tour-13",),), status=S.EXPIRED),
            booking("t5", paris(20, 10), paris(20, 12), resources=(("tour-20",),), status=S.PAID),
            booking("x", paris(20, 10), paris(20, 12), resources=(("car",),), status=S.PAID),
            booking("t6", paris(1, 10, month=4), paris(1, 12, month=4), resources=(("tour-0401",),), status=S.PAID),
        ]

        rows = reports.occurrence_finance(
            tickets,
            group_by=lambda b: b.resource_ids[0] if b.resource_ids[0].startswith("tour") else None,
            capacity_of={"tour-13": 10}.get,
            month=date(2026, 3, 31),
            zone=PARIS,
        )

        assert ["tour-13", "tour-20"] == [r.key for r in rows]
        tour = rows[0]
        assert (4, 3, 1, 1) == (tour.bookings, tour.tickets_sold, tour.tickets_cancelled, tour.tickets_refunded)
        assert (10, Fraction(3, 10)) == (tour.capacity, tour.fill_rate)
        assert {"EUR": eur("105")} == tour.net
        assert (None, None) == (rows[1].capacity, rows[1].fill_rate)

    def test_the_month_is_local(self):
        """An occurrence at 22:30 UTC on 31 March is held on 1 April in Moscow."""
        late = booking(
            "t",
            datetime(2026, 3, 31, 22, 30, tzinfo=UTC),
            datetime(2026, 4, 1, 0, 30, tzinfo=UTC),
            external_ref="evt-1",
        )
        kwargs = {"group_by": lambda b: b.external_ref, "capacity_of": lambda _key: None, "zone": MOSCOW}

        assert () == reports.occurrence_finance([late], month=date(2026, 3, 1), **kwargs)
        assert ["evt-1"] == [r.key for r in reports.occurrence_finance([late], month=date(2026, 4, 1), **kwargs)]
        assert "2026-04" == reports.occurrence_finance([late], month=date(2026, 4, 15), **kwargs)[0].month

    def test_tickets_can_be_counted_another_way(self):
        """tickets_of decides how many tickets a booking holds."""
        seats = booking("t", paris(13, 10), paris(13, 12), resources=(("tour",), ("guide",)), units=(3, 1))

        [row] = reports.occurrence_finance(
            [seats],
            group_by=lambda b: "tour",
            capacity_of=lambda _k: 6,
            month=date(2026, 3, 1),
            zone=PARIS,
            tickets_of=lambda b: b.units[0] * 2,
        )

        assert (6, Fraction(1)) == (row.tickets_sold, row.fill_rate)


# --- output ----------------------------------------------------------------------------------------------------


def _scalar(value):
    return value is None or isinstance(value, (str, int, float, bool))


class TestOutput:
    def _all_rows(self):
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        bookings = [
            booking(
                "a",
                paris(2, 10),
                paris(2, 11),
                status=S.CANCELLED,
                payments=(pay("p1", PaymentKind.PAYMENT, eur("10")), pay("f1", PaymentKind.FEE, eur("2"))),
            ),
            booking(
                "b",
                paris(2, 12),
                paris(2, 13),
                status=S.COMPLETED,
                created_at=paris(2, 8),
                payments=(pay("p2", PaymentKind.PAYMENT, Money("1500", "RUB")),),
            ),
        ]
        log = [record("a", None, Action.BOOK, paris(1, 8)), record("a", S.CONFIRMED, Action.CANCEL, paris(1, 9))]
        return [
            *reports.utilization(bookings, [Resource("r1", "R1")], NINE_TO_SIX, cut),
            *reports.revenue(bookings, cut),
            *reports.cancellations(bookings, log, cut),
            *reports.funnel(bookings, log, cut),
            *reports.occurrence_finance(
                bookings, group_by=lambda b: b.id, capacity_of=lambda _k: 5, month=date(2026, 3, 1), zone=PARIS
            ),
        ]

    def test_rows_are_flat_json_ready_scalars(self):
        """to_row() is a flat dict of str, int, float, bool or None: ready for JSON and CSV."""
        for row in self._all_rows():
            flat = row.to_row()

            assert all(isinstance(k, str) and _scalar(v) for k, v in flat.items()), flat
            assert flat == json.loads(json.dumps(flat))

    def test_dicts_are_json_ready(self):
        """to_dict() survives a JSON round trip unchanged."""
        for row in self._all_rows():
            full = row.to_dict()

            assert full == json.loads(json.dumps(full))

    def test_csv_has_a_column_per_currency(self):
        """to_csv writes a header with every column seen, one per currency, and leaves missing cells empty."""
        cut = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        rows = [r for r in self._all_rows() if isinstance(r, reports.Revenue) and r.dimension == Dimension.RESOURCE]
        stream = io.StringIO()

        written = reports.to_csv(rows, stream)

        table = list(csv.DictReader(io.StringIO(stream.getvalue())))
        assert written == len(table) == 1
        assert {"paid_EUR": "10.00", "paid_RUB": "1500.00", "fees_EUR": "2.00", "period": cut[0].label} == {
            k: table[0][k] for k in ("paid_EUR", "paid_RUB", "fees_EUR", "period")
        }

    def test_amounts_is_an_immutable_mapping_per_currency(self):
        """Amounts adds per currency, subtracts, compares with dicts, and never mixes currencies."""
        a = reports.Amounts([eur("1.50"), Money("3", "USD"), eur("2")])
        b = reports.Amounts([eur("0.50")])

        assert {"EUR": eur("3.50"), "USD": Money("3", "USD")} == a
        assert {"EUR": eur("3.00"), "USD": Money("3", "USD")} == a - b
        assert {"EUR": "3.50", "USD": "3.00"} == a.to_dict()
        assert hash(a) == hash(reports.Amounts([eur("3.5"), Money("3", "USD")]))
        assert "Amounts(3.50 EUR, 3.00 USD)" == repr(a)
        with pytest.raises(InvalidInputError):
            reports.Amounts([Decimal(1)])
