"""Reports, after a review: per-resource money split once per booking, buffers of any length, refused inputs, 0-hour days."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine import reports
from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.availability import Assignment
from slotengine.booking import Booking, Payment, PaymentKind
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError, NaiveDatetimeError
from slotengine.lifecycle import BookingStatus
from slotengine.model import Need, Resource, Service
from slotengine.money import CURRENCY_MINOR_UNITS, Money
from slotengine.reports import Dimension, Grain, Period
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing import FrozenClock

S = BookingStatus
H = timedelta(hours=1)
PARIS = "Europe/Paris"
APIA = "Pacific/Apia"
MARCH_1 = datetime(2026, 3, 1, tzinfo=ZoneInfo(PARIS))
ALL_DAY = Schedule(PARIS, WeeklyHours.every_day(TimeRange(time(0), "24:00")))


def paris(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=ZoneInfo(PARIS))


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def ledger_booking(
    resources: tuple[tuple[str, ...], ...],
    entries: tuple[tuple[PaymentKind, Money], ...],
    status: BookingStatus = S.PAID,
) -> Booking:
    """A one-hour booking on 2 March in Paris with the given ledger."""
    return Booking(
        "b",
        "transfer",
        paris(2, 9),
        paris(2, 10),
        tuple(Assignment(i, f"need{i}", rids) for i, rids in enumerate(resources)),
        (1,) * len(resources),
        status,
        MARCH_1,
        hold_until=MARCH_1 + H if status is S.PRE_BOOKING else None,
        payments=tuple(Payment(f"p{i}", kind, money, MARCH_1) for i, (kind, money) in enumerate(entries)),
    )


DAY = reports.periods(date(2026, 3, 2), date(2026, 3, 2), PARIS)


def minor(money: Money) -> int:
    return int(money.amount.scaleb(CURRENCY_MINOR_UNITS[money.currency]))


def per_resource(rows, field: str, keys: list[str], currency: str) -> list[int]:
    """Each resource's *field* in minor units, in the order of *keys* (0 where its row has no such money)."""
    by_key = {r.key: r for r in rows if r.dimension == Dimension.RESOURCE}
    return [minor(getattr(by_key[k], field).get(currency, Money.zero(currency))) for k in keys]


# --- money: a booking's totals are split once ------------------------------------------------------------------


@st.composite
def ledgers(draw):
    """A booking on one to four distinct resources (some needs repeat one) with a ledger of small amounts."""
    currency = draw(st.sampled_from(["EUR", "JPY", "KWD"]))
    places = CURRENCY_MINOR_UNITS[currency]
    pool = ["car", "ann", "bob", "van"]
    resources = tuple(
        tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)))
        for _ in range(draw(st.integers(1, 3)))
    )
    entries = tuple(
        (draw(st.sampled_from(list(PaymentKind))), Money(Decimal(draw(st.integers(1, 999))).scaleb(-places), currency))
        for _ in range(draw(st.integers(1, 6)))
    )
    return ledger_booking(resources, entries, draw(st.sampled_from(list(BookingStatus))))


class TestMoneySplitOncePerBooking:
    def test_two_payments_of_50_01_split_50_01_each(self):
        """A car-and-driver booking paid in two instalments of 50.01 gives each resource 50.01, not 50.02 / 50.00."""
        paid = ledger_booking(
            (("car",), ("ann",)),
            ((PaymentKind.PAYMENT, eur("50.01")), (PaymentKind.PAYMENT, eur("50.01"))),
        )

        rows = reports.revenue([paid], DAY, dimensions=["resource"])

        assert [("car", eur("50.01"), eur("50.01")), ("ann", eur("50.01"), eur("50.01"))] == sorted(
            ((r.key, r.paid["EUR"], r.net["EUR"]) for r in rows), key=lambda t: t[0] != "car"
        )

    def test_revenue_net_and_cancellation_kept_agree_per_resource(self):
        """Of a cancelled booking paid 100.02 and refunded 50.01, each resource's net is its part of what was kept."""
        cancelled = ledger_booking(
            (("car",), ("ann",)),
            ((PaymentKind.PAYMENT, eur("100.02")), (PaymentKind.REFUND, eur("50.01"))),
            S.CANCELLED,
        )

        revenue = reports.revenue([cancelled], DAY, dimensions=["resource"])
        kept = reports.cancellations([cancelled], [], DAY, dimensions=["resource"])

        expected = [eur("25.01"), eur("25.00")]
        assert expected == [next(r.net["EUR"] for r in revenue if r.key == k) for k in ("car", "ann")]
        assert expected == [next(r.kept["EUR"] for r in kept if r.key == k) for k in ("car", "ann")]

    @settings(max_examples=300)
    @given(ledgers())
    def test_each_total_is_split_evenly_and_both_reports_agree(self, booking):
        """
        Per resource, paid, refunded, net, fees, kept and fees outstanding each add up to the booking's figure and
        differ by at most one minor unit; the net is `split_evenly` of the booking's net, and equals what the
        cancellation report says was kept.
        """
        keys = list(dict.fromkeys(booking.resource_ids))
        currency = booking.currency
        assert currency is not None

        revenue = reports.revenue([booking], DAY, dimensions=["resource"])
        stats = reports.cancellations([booking], [], DAY, dimensions=["resource"])

        figures = {
            "paid": booking.paid,
            "refunded": booking.refunded,
            "fees": booking.fees,
            "net": booking.net_paid,
        }
        for field, whole in figures.items():
            shares = per_resource(revenue, field, keys, currency)
            assert minor(whole) == sum(shares), field
            assert max(shares) - min(shares) <= 1, (field, shares)
        nets = per_resource(revenue, "net", keys, currency)
        assert [minor(m) for m in reports.split_evenly(booking.net_paid, len(keys))] == nets
        if booking.status in {S.CANCELLED, S.NO_SHOW}:
            assert nets == per_resource(stats, "kept", keys, currency)
            assert per_resource(revenue, "fees", keys, currency) == per_resource(stats, "fees", keys, currency)
            outstanding = per_resource(stats, "fees_outstanding", keys, currency)
            assert minor(booking.outstanding_fees) == sum(outstanding)
            assert max(outstanding) - min(outstanding) <= 1


# --- utilization: buffers of any length, and include_buffers as a flag ---------------------------------------


def van_engine(buffer_before: timedelta = timedelta(0), buffer_after: timedelta = timedelta(0)) -> BookingEngine:
    engine = BookingEngine(MemoryStorage(), clock=FrozenClock(MARCH_1), default_actor=Actor.system("tests"))
    engine.setup(Business("Vans", PARIS, ALL_DAY))
    engine.add_resource(Resource("van", "Van"))
    engine.add_service(
        Service(
            "rent",
            "Rent",
            needs=[Need(resource_ids={"van"})],
            duration=H,
            buffer_before=buffer_before,
            buffer_after=buffer_after,
        )
    )
    return engine


def van_rows(rows):
    return [r for r in rows if r.dimension == Dimension.RESOURCE]


class TestBuffersOfAnyLength:
    @pytest.mark.parametrize(
        ("start", "buffers"),
        [
            (paris(25, 8), {"buffer_after": 40 * H}),  # cleaned until 27 March, 01:00
            (paris(29, 8), {"buffer_before": 32 * H}),  # prepared from 27 March, 23:00 (the clocks go forward)
        ],
    )
    def test_a_buffer_longer_than_a_day_reaching_the_window_counts(self, start, buffers):
        """utilization_report(include_buffers=True) counts the hour of a buffer that began or ends days away."""
        engine = van_engine(**buffers)
        engine.book("rent", start)
        day = date(2026, 3, 27)

        [row] = van_rows(reports.utilization_report(engine, day, day, include_buffers=True))

        assert H == row.booked

    @settings(max_examples=100)
    @given(
        offset=st.integers(-5 * 24, 5 * 24),
        before=st.integers(0, 80),
        after=st.integers(0, 80),
        days=st.integers(0, 2),
        buffers=st.booleans(),
    )
    def test_the_report_counts_what_utilization_counts_over_every_booking(self, offset, before, after, days, buffers):
        """Over the engine, the report equals `utilization` of all the engine's bookings, buffers or not."""
        engine = van_engine(before * H, after * H)
        engine.book("rent", paris(15) + offset * H)
        first = date(2026, 3, 14)
        last = first + timedelta(days=days)
        cut = reports.periods(first, last, PARIS)

        report = reports.utilization_report(engine, first, last, include_buffers=buffers)

        everything = reports.utilization(
            engine.list(), engine.resources(), engine.business().hours, cut, include_buffers=buffers
        )
        assert [r.booked for r in everything] == [r.booked for r in report]


class TestIncludeBuffersIsAFlag:
    @pytest.mark.parametrize("flag", ["no", "false", "", 0, 1, None])
    def test_anything_but_true_or_false_is_refused(self, flag):
        """include_buffers="no" is refused by utilization and utilization_report (it used to mean yes)."""
        engine = van_engine(buffer_after=2 * H)
        day = date(2026, 3, 25)

        with pytest.raises(InvalidInputError, match="include_buffers must be True or False") as pure:
            reports.utilization([], [Resource("van", "Van")], ALL_DAY, DAY, include_buffers=flag)
        with pytest.raises(InvalidInputError, match="include_buffers must be True or False") as report:
            reports.utilization_report(engine, day, day, include_buffers=flag)

        assert ("include_buffers", "include_buffers") == (pure.value.details["field"], report.value.details["field"])


# --- refused inputs --------------------------------------------------------------------------------------------

_HELPERS = [
    lambda engine, zone: reports.utilization_report(engine, date(2026, 3, 2), date(2026, 3, 2), zone=zone),
    lambda engine, zone: reports.revenue_report(engine, date(2026, 3, 2), date(2026, 3, 2), zone=zone),
    lambda engine, zone: reports.cancellation_report(engine, date(2026, 3, 2), date(2026, 3, 2), zone=zone),
    lambda engine, zone: reports.funnel_report(engine, date(2026, 3, 2), date(2026, 3, 2), zone=zone),
    lambda engine, zone: reports.occurrence_report(
        engine, date(2026, 3, 2), group_by=lambda b: b.resource_ids[0], zone=zone
    ),
]


def seats() -> Booking:
    """Two seats of the tour of 13 March, paid."""
    return Booking(
        "t",
        "tour",
        paris(13, 10),
        paris(13, 12),
        (Assignment(0, "seat", ("tour",)),),
        (2,),
        S.PAID,
        MARCH_1,
        payments=(Payment("p", PaymentKind.PAYMENT, eur("70"), MARCH_1),),
    )


def finance(**changes):
    arguments = {
        "group_by": lambda b: b.resource_ids[0],
        "capacity_of": lambda _key: 10,
        "month": date(2026, 3, 1),
        "zone": PARIS,
        "tickets_of": lambda b: b.units[0],
    }
    return reports.occurrence_finance([seats()], **{**arguments, **changes})


class TestRefusedInputs:
    @pytest.mark.parametrize("helper", _HELPERS, ids=["utilization", "revenue", "cancellation", "funnel", "occurrence"])
    @pytest.mark.parametrize("engine", [None, "engine", MemoryStorage()])
    @pytest.mark.parametrize("zone", [None, PARIS])
    def test_the_report_helpers_need_an_engine(self, helper, engine, zone):
        """A report helper given something else than a BookingEngine raises InvalidInputError, not AttributeError."""
        with pytest.raises(InvalidInputError, match="BookingEngine") as caught:
            helper(engine, zone)

        assert "engine" == caught.value.details["field"]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"group_by": lambda _b: 7}, "group_by"),
            ({"group_by": lambda _b: b"tour"}, "group_by"),
            ({"capacity_of": lambda _k: "10"}, "capacity_of"),
            ({"capacity_of": lambda _k: -1}, "capacity_of"),
            ({"capacity_of": lambda _k: True}, "capacity_of"),
            ({"capacity_of": lambda _k: 2.5}, "capacity_of"),
            ({"tickets_of": lambda _b: "1"}, "tickets_of"),
            ({"tickets_of": lambda _b: None}, "tickets_of"),
            ({"tickets_of": lambda _b: -2}, "tickets_of"),
            ({"tickets_of": lambda _b: False}, "tickets_of"),
        ],
    )
    def test_what_the_callers_functions_return_is_checked(self, changes, field):
        """group_by must give a str or None, capacity_of a whole number or None, tickets_of a whole number."""
        with pytest.raises(InvalidInputError, match=f"^{field} must return") as caught:
            finance(**changes)

        assert field == caught.value.details["field"]

    def test_good_returns_are_accepted(self):
        """A capacity of None, or 0 tickets, are answers, not errors."""
        [unknown] = finance(capacity_of=lambda _k: None)
        [free] = finance(tickets_of=lambda _b: 0)

        assert (None, 2) == (unknown.capacity, unknown.tickets_sold)
        assert (0, 10) == (free.tickets_sold, free.capacity)

    @pytest.mark.parametrize("rows", [[1, 2], "rows", None, [object()]])
    def test_to_csv_writes_report_rows_only(self, rows):
        """to_csv refuses what is not a collection of report rows, and writes nothing."""
        stream = io.StringIO()

        with pytest.raises(InvalidInputError, match="rows") as caught:
            reports.to_csv(rows, stream)

        assert ("rows", "") == (caught.value.details["field"], stream.getvalue())

    @pytest.mark.parametrize("stream", [None, "out.csv", object()])
    def test_to_csv_writes_to_a_stream(self, stream):
        """to_csv refuses a stream without a write method."""
        rows = reports.revenue([seats()], reports.periods(date(2026, 3, 13), date(2026, 3, 13), PARIS))

        with pytest.raises(InvalidInputError, match="text stream") as caught:
            reports.to_csv(rows, stream)

        assert "stream" == caught.value.details["field"]


class TestPeriodContains:
    def test_a_naive_datetime_is_refused(self):
        """Period.contains(naive) raises NaiveDatetimeError: a wall time is not an instant."""
        [day] = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)

        with pytest.raises(NaiveDatetimeError):
            day.contains(datetime(2026, 3, 1, 12))

    def test_a_date_is_refused(self):
        """Period.contains(date) raises InvalidInputError."""
        [day] = reports.periods(date(2026, 3, 1), date(2026, 3, 1), PARIS)

        with pytest.raises(InvalidInputError):
            day.contains(date(2026, 3, 1))

    def test_aware_instants_in_any_zone(self):
        """An aware instant is compared as an instant, whatever its zone."""
        [day] = reports.periods(date(2026, 3, 2), date(2026, 3, 2), "Europe/Moscow")

        assert (True, False) == (
            day.contains(datetime(2026, 3, 1, 21, tzinfo=UTC)),
            day.contains(datetime(2026, 3, 1, 20, 59, tzinfo=UTC)),
        )


# --- a local day that never happened ---------------------------------------------------------------------------


APIA_HOURS = Schedule(APIA, WeeklyHours.every_day(TimeRange("09:00", "17:00")))


class TestSkippedDay:
    def test_utilization_gives_a_zero_hour_row_for_a_day_the_zone_skipped(self):
        """Samoa skipped 30 December 2011: utilization over 29-31 December gives it a row with 0 hours open."""
        cut = reports.periods(date(2011, 12, 29), date(2011, 12, 31), APIA)

        rows = reports.utilization([], [Resource("r", "R", type="x")], APIA_HOURS, cut)

        mine = [r for r in rows if r.dimension == Dimension.RESOURCE]
        assert ["2011-12-29", "2011-12-30", "2011-12-31"] == [r.period.label for r in mine]
        assert [8 * H, timedelta(0), 8 * H] == [r.open_time for r in mine]
        assert (timedelta(0), None) == (mine[1].available, mine[1].utilization)

    def test_a_window_of_only_the_skipped_day_holds_nothing(self):
        """A report over 30 December 2011 in Apia alone has 0-hour rows and no money, and raises nothing."""
        engine = van_engine()
        skipped = date(2011, 12, 30)
        [period] = reports.periods(skipped, skipped, APIA)
        booked = ledger_booking((("van",),), ((PaymentKind.PAYMENT, eur("10")),))

        pure = reports.utilization([booked], engine.resources(), APIA_HOURS, [period], include_buffers=True)
        helpers = [
            reports.utilization_report(engine, skipped, skipped, zone=APIA),
            reports.utilization_report(engine, skipped, skipped, zone=APIA, include_buffers=True),
            reports.revenue_report(engine, skipped, skipped, zone=APIA),
            reports.cancellation_report(engine, skipped, skipped, zone=APIA),
        ]

        assert [(timedelta(0), timedelta(0))] == [(r.open_time, r.booked) for r in van_rows(pure)]
        assert [1, 1, 0, 0] == [len(van_rows(rows)) for rows in helpers]
        assert timedelta(0) == period.end - period.start
        assert Period(Grain.DAY, skipped, skipped, APIA) == period
