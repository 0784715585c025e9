"""Recurrence: RFC 5545 rules expanded in local wall time, each occurrence made an instant by the wall-time rule."""

import contextlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine._time import is_nonexistent
from slotengine.errors import InvalidInputError, NaiveDatetimeError, UnknownTimeZoneError
from slotengine.recurrence import Recurrence, occurrence_days
from slotengine.testing.strategies import DST_ZONES, dst_transitions

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestConstruction:
    def test_canonical_rule_text(self):
        """The rule is stored upper-cased and without its RRULE: prefix, so equal rules compare equal."""
        a = Recurrence("rrule:freq=weekly;byday=sa", datetime(2025, 1, 4, 10), "Europe/Paris")
        b = Recurrence("FREQ=WEEKLY;BYDAY=SA", datetime(2025, 1, 4, 10), "Europe/Paris")

        assert "FREQ=WEEKLY;BYDAY=SA" == a.rule
        assert b == a
        assert hash(b) == hash(a)

    def test_repr_is_readable(self):
        """The repr shows the rule, the wall dtstart, the zone and any exdates."""
        rec = Recurrence(
            "FREQ=WEEKLY;BYDAY=SA", datetime(2025, 1, 4, 10), "Europe/Paris", exdates=[datetime(2025, 1, 11, 10)]
        )

        assert (
            "Recurrence('FREQ=WEEKLY;BYDAY=SA', dtstart=2025-01-04 10:00, zone='Europe/Paris', "
            "exdates=[2025-01-11 10:00])"
        ) == repr(rec)

    def test_exdates_are_sorted_and_deduplicated(self):
        """Exdates and rdates become sorted tuples without duplicates."""
        rec = Recurrence(
            "FREQ=DAILY",
            datetime(2025, 1, 1, 9),
            "UTC",
            exdates=[datetime(2025, 1, 3, 9), datetime(2025, 1, 2, 9), datetime(2025, 1, 3, 9)],
        )

        assert (datetime(2025, 1, 2, 9), datetime(2025, 1, 3, 9)) == rec.exdates

    def test_date_only_until_includes_that_day(self):
        """A date-only UNTIL keeps the occurrence on that day, instead of cutting at its midnight."""
        rec = Recurrence("FREQ=DAILY;UNTIL=20250103", datetime(2025, 1, 1, 10), "UTC")

        assert "FREQ=DAILY;UNTIL=20250103T235959" == rec.rule
        assert 3 == len(rec.between(utc(2025, 1, 1), utc(2025, 2, 1)))

    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ("", "FREQ is missing"),
            ("garbage", "not a KEY=VALUE part"),
            ("FREQ=FORTNIGHTLY", "FREQ must be one of"),
            ("FREQ=WEEKLY;BYDAY=XX", "BYDAY takes weekdays"),
            ("FREQ=WEEKLY;FOO=1", "unknown parameter"),
            ("FREQ=WEEKLY;COUNT=3;UNTIL=20250301T000000", "COUNT and UNTIL cannot be combined"),
            ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL must be a whole number of at least 1"),
            ("FREQ=WEEKLY;COUNT=-1", "COUNT must be a whole number of at least 1"),
            ("FREQ=WEEKLY;FREQ=DAILY", "FREQ is given twice"),
            ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY values must be in"),
            ("FREQ=YEARLY;BYMONTH=13", "BYMONTH values must be in 1..12"),
            ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never happens"),
            ("FREQ=WEEKLY;UNTIL=20250301T000000Z", "without 'Z'"),
            ("FREQ=WEEKLY;UNTIL=20250231", "not a real date"),
            ("FREQ=DAILY;BYHOUR=25", "hour must be in 0..23"),
            ("DTSTART=20250101T000000;FREQ=DAILY", "DTSTART is not part of an RRULE"),
            ("FREQ=DAILY\nRRULE:FREQ=WEEKLY", "from_ical"),
        ],
    )
    def test_bad_rule_text(self, rule, message):
        """Rule text that is not a valid RRULE raises InvalidInputError saying what is wrong."""
        with pytest.raises(InvalidInputError, match=message):
            Recurrence(rule, datetime(2025, 1, 1, 10), "Europe/Paris")

    def test_rule_must_be_text(self):
        """A rule that is not a string is refused."""
        with pytest.raises(InvalidInputError, match="RRULE text"):
            Recurrence(7, datetime(2025, 1, 1, 10), "Europe/Paris")

    def test_dtstart_is_required(self):
        """A missing dtstart is refused, because dateutil would quietly use the current time."""
        with pytest.raises(InvalidInputError, match="explicit dtstart"):
            Recurrence("FREQ=DAILY", None, "Europe/Paris")

    @pytest.mark.parametrize(
        ("dtstart", "message"),
        [
            (datetime(2025, 1, 1, 10, tzinfo=PARIS), "naive local wall time"),
            (date(2025, 1, 1), "naive datetime"),
            ("2025-01-01T10:00", "naive datetime"),
            (datetime(1969, 12, 31, 10), "outside the accepted years"),
        ],
    )
    def test_bad_dtstart(self, dtstart, message):
        """A dtstart that is aware, a date, text or out of range raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match=message):
            Recurrence("FREQ=DAILY", dtstart, "Europe/Paris")

    def test_unknown_zone(self):
        """An unknown zone raises UnknownTimeZoneError."""
        with pytest.raises(UnknownTimeZoneError):
            Recurrence("FREQ=DAILY", datetime(2025, 1, 1, 10), "Mars/Olympus")

    def test_aware_exdates_and_rdates_are_instants(self):
        """An aware exdate or rdate is an instant: kept as its wall time when one names it, else in UTC (a fold's second pass)."""
        second_pass = datetime(2025, 10, 26, 2, 30, tzinfo=PARIS, fold=1)
        rec = Recurrence(
            "FREQ=DAILY",
            datetime(2025, 10, 24, 2, 30),
            "Europe/Paris",
            exdates=[utc(2025, 10, 25, 0, 30), second_pass],
            rdates=[second_pass, datetime(2025, 10, 26, 2, 30)],
        )

        assert (datetime(2025, 10, 25, 2, 30), utc(2025, 10, 26, 1, 30)) == rec.exdates
        assert (datetime(2025, 10, 26, 2, 30), utc(2025, 10, 26, 1, 30)) == rec.rdates
        assert (
            "Recurrence('FREQ=DAILY', dtstart=2025-10-24 02:30, zone='Europe/Paris', "
            "exdates=[2025-10-25 02:30, 2025-10-26 01:30 UTC], rdates=[2025-10-26 02:30, 2025-10-26 01:30 UTC])"
        ) == repr(rec)

    def test_exdates_not_a_collection(self):
        """Exdates given as something that is not a collection are refused."""
        with pytest.raises(InvalidInputError, match="collection of datetimes"):
            Recurrence("FREQ=DAILY", datetime(2025, 1, 1, 10), "UTC", exdates=5)


class TestIcal:
    @given(minutes=st.integers(-180, 180), zone=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]))
    def test_a_utc_until_is_inclusive_of_instants_even_in_a_fold(self, minutes, zone):
        """A UTC UNTIL keeps exactly the occurrences at or before its instant, in the fall-back fold too."""
        fold_day = {"Europe/Paris": datetime(2025, 10, 26), "America/New_York": datetime(2025, 11, 2),
                    "Australia/Lord_Howe": datetime(2025, 4, 6)}[zone]
        every = Recurrence("FREQ=MINUTELY;INTERVAL=10", fold_day - timedelta(hours=1), zone)
        window = ((fold_day - timedelta(days=1)).replace(tzinfo=UTC), (fold_day + timedelta(days=1)).replace(tzinfo=UTC))
        first = every.between(*window)[6]
        until = first + timedelta(minutes=minutes + 60)
        stamp = until.strftime("%Y%m%dT%H%M%SZ")
        start = (fold_day - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S")

        bounded = Recurrence.from_ical(f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=MINUTELY;INTERVAL=10;UNTIL={stamp}")

        assert [t for t in every.between(*window) if t <= until][:60] == list(bounded.between(*window))[:60]

    @pytest.mark.parametrize(
        ("zone", "start", "exdate", "first_pass"),
        [
            # Paris falls back at 03:00 CEST: 02:30 is 00:30 UTC (CEST), then 01:30 UTC (CET).
            ("Europe/Paris", "20251024T023000", "20251026T013000Z", utc(2025, 10, 26, 0, 30)),
            # New York falls back at 02:00 EDT: 01:30 is 05:30 UTC (EDT), then 06:30 UTC (EST).
            ("America/New_York", "20251031T013000", "20251102T063000Z", utc(2025, 11, 2, 5, 30)),
        ],
    )
    def test_a_utc_exdate_in_a_folds_second_pass_keeps_the_first_pass(self, zone, start, exdate, first_pass):
        """A UTC EXDATE naming the second pass of a fold removes no occurrence: the rule's is at the first pass."""
        plain = Recurrence.from_ical(f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=DAILY")
        rec = Recurrence.from_ical(f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=DAILY\nEXDATE:{exdate}")
        window = (first_pass - timedelta(days=2), first_pass + timedelta(days=2))

        assert first_pass in rec.between(*window)
        assert plain.between(*window) == rec.between(*window)

    @pytest.mark.parametrize(
        ("zone", "start", "exdate", "left"),
        [
            # Paris springs forward at 02:00 CET: 02:30 is read as 02:30 CET, 01:30 UTC (03:30 CEST).
            ("Europe/Paris", "20250329T023000", "20250330T013000Z", (utc(2025, 3, 29, 1, 30), utc(2025, 3, 31, 0, 30))),
            # New York springs forward at 02:00 EST: 02:30 is read as 02:30 EST, 07:30 UTC (03:30 EDT).
            ("America/New_York", "20250308T023000", "20250309T073000Z", (utc(2025, 3, 8, 7, 30), utc(2025, 3, 10, 6, 30))),
        ],
    )
    def test_a_utc_exdate_removes_a_gap_occurrence_at_its_instant(self, zone, start, exdate, left):
        """A UTC EXDATE naming the instant a gap's wall time is moved to removes that occurrence."""
        rec = Recurrence.from_ical(f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:{exdate}")

        assert left == rec.between(utc(2025, 3, 1), utc(2025, 4, 1))

    @pytest.mark.parametrize(
        ("zone", "start", "rdate", "second_pass"),
        [
            ("Europe/Paris", "20251025T100000", "20251026T013000Z", utc(2025, 10, 26, 1, 30)),
            ("America/New_York", "20251101T100000", "20251102T063000Z", utc(2025, 11, 2, 6, 30)),
        ],
    )
    def test_a_utc_rdate_in_a_folds_second_pass_adds_the_second_pass(self, zone, start, rdate, second_pass):
        """A UTC RDATE naming the second pass of a fold adds that instant, not the first pass; to_ical keeps it in UTC."""
        text = f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=DAILY;COUNT=1\nRDATE:{rdate}"
        rec = Recurrence.from_ical(text)

        assert second_pass == rec.between(second_pass - timedelta(hours=3), second_pass + timedelta(hours=3), inc=True)[0]
        assert 2 == len(rec.between(utc(2025, 10, 1), utc(2025, 12, 1)))
        assert text.replace("\n", "\r\n") + "\r\n" == rec.to_ical()
        assert rec == Recurrence.from_ical(rec.to_ical())

    def test_a_utc_exdate_removes_a_second_pass_rdate(self):
        """EXDATE and RDATE in UTC match as instants: the second pass is removed, the rule's first pass stays."""
        rec = Recurrence.from_ical(
            "DTSTART;TZID=Europe/Paris:20251025T023000\nRRULE:FREQ=DAILY;COUNT=3\n"
            "RDATE:20251026T013000Z\nEXDATE:20251026T013000Z"
        )

        assert (utc(2025, 10, 25, 0, 30), utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)) == rec.between(
            utc(2025, 10, 24), utc(2025, 10, 28)
        )
        assert utc(2025, 10, 27, 1, 30) == rec.after(utc(2025, 10, 26, 0, 30))
        assert utc(2025, 10, 26, 0, 30) == rec.before(utc(2025, 10, 27, 1, 30))

    @given(zone=st.sampled_from(DST_ZONES), data=st.data())
    def test_utc_exdates_and_rdates_match_occurrences_as_instants(self, zone, data):
        """Near real transitions, a UTC EXDATE removes exactly the occurrence at its instant, if any, and a UTC RDATE adds exactly its instant."""
        tz = ZoneInfo(zone)
        transitions = dst_transitions(zone)
        around = data.draw(st.sampled_from(transitions)) if transitions else datetime(2020, 6, 1, tzinfo=UTC)
        # Clock times from just before to just after the change, so they land in its gap or fold.
        clock = (around.astimezone(tz).replace(tzinfo=None) + timedelta(minutes=data.draw(st.integers(-90, 90)))).time()
        start = datetime.combine(around.astimezone(tz).date() - timedelta(days=3), clock)
        lo, hi = around - timedelta(days=2), around + timedelta(days=2)
        head = f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY"
        found = Recurrence.from_ical(head).between(lo, hi, inc=True)
        # The same instant, or one a transition's length away: the other pass of a fold, or a gap's other side.
        before, after = ((around + timedelta(hours=h)).astimezone(tz).utcoffset() for h in (-1, 1))
        change = abs(after - before) or timedelta(hours=1)
        shift = data.draw(st.sampled_from([timedelta(0), change, -change]))
        excluded = data.draw(st.sampled_from(found)) + shift
        added = around + timedelta(minutes=data.draw(st.integers(-180, 180)))

        rec = Recurrence.from_ical(f"{head}\nEXDATE:{excluded:%Y%m%dT%H%M%SZ}\nRDATE:{added:%Y%m%dT%H%M%SZ}")

        expected = sorted(({*found} - {excluded}) | ({added} - {excluded}))
        assert expected == list(rec.between(lo, hi, inc=True))
        assert expected[1:] == [rec.after(t) for t in expected[:-1]]
        assert expected[:-1] == [rec.before(t) for t in expected[1:]]
        again = Recurrence.from_ical(rec.to_ical())
        assert rec == again
        assert rec.between(lo, hi, inc=True) == again.between(lo, hi, inc=True)

    @given(zone=st.sampled_from(DST_ZONES), data=st.data())
    def test_a_utc_dtstart_is_the_first_occurrence_at_its_instant(self, zone, data):
        """A UTC DTSTART, in a fold's second pass too, is the first occurrence, at its own instant, never before it."""
        transitions = dst_transitions(zone)
        around = data.draw(st.sampled_from(transitions)) if transitions else datetime(2020, 6, 1, tzinfo=UTC)
        start = around + timedelta(minutes=data.draw(st.integers(-90, 90)))
        rule = data.draw(st.sampled_from(["FREQ=DAILY;COUNT=3", "FREQ=HOURLY;COUNT=4", "FREQ=WEEKLY;INTERVAL=2"]))

        rec = Recurrence.from_ical(f"DTSTART:{start:%Y%m%dT%H%M%SZ}\nRRULE:{rule}", zone=zone)

        assert start == rec.after(start - timedelta(days=1))
        assert rec.before(start) is None
        lo, hi = start - timedelta(days=1), start + timedelta(days=4)
        assert rec.between(lo, hi) == Recurrence.from_ical(rec.to_ical()).between(lo, hi)
        if rule.endswith("COUNT=3"):
            assert 3 == len(rec.between(lo, hi))

    def test_a_utc_dtstart_in_a_fold_the_rule_does_not_name_adds_nothing(self):
        """A UTC DTSTART in a fold's second pass on a day the rule skips is no occurrence, as any DTSTART."""
        rec = Recurrence.from_ical("DTSTART:20251026T013000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2", zone="Europe/Paris")

        assert (utc(2025, 10, 27, 1, 30), utc(2025, 11, 3, 1, 30)) == rec.between(utc(2025, 10, 1), utc(2025, 12, 1))

    def test_round_trip(self):
        """to_ical writes DTSTART with TZID, RRULE, EXDATE and RDATE, and from_ical reads them back."""
        rec = Recurrence(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
            datetime(2025, 1, 4, 10),
            "Europe/Paris",
            exdates=[datetime(2025, 2, 1, 10)],
            rdates=[datetime(2025, 2, 9, 10)],
        )

        text = rec.to_ical()

        assert (
            "DTSTART;TZID=Europe/Paris:20250104T100000\r\n"
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA\r\n"
            "EXDATE;TZID=Europe/Paris:20250201T100000\r\n"
            "RDATE;TZID=Europe/Paris:20250209T100000\r\n"
        ) == text
        assert rec == Recurrence.from_ical(text)

    def test_utc_until_becomes_local(self):
        """A UTC UNTIL, as calendar exports write it, is converted to local wall time in the zone."""
        rec = Recurrence.from_ical(
            "DTSTART;TZID=America/New_York:20250104T100000\nRRULE:FREQ=WEEKLY;UNTIL=20250301T150000Z"
        )

        assert "FREQ=WEEKLY;UNTIL=20250301T100000" == rec.rule

    def test_folded_lines_and_zone_argument(self):
        """Folded lines are unfolded, and a DTSTART without TZID takes the zone argument."""
        rec = Recurrence.from_ical("DTSTART:20250104T100000\nRRULE:FREQ=WEEKLY;\n BYDAY=SA", zone="UTC")

        assert Recurrence("FREQ=WEEKLY;BYDAY=SA", datetime(2025, 1, 4, 10), "UTC") == rec

    @pytest.mark.parametrize(
        ("text", "zone", "message"),
        [
            ("RRULE:FREQ=DAILY", "UTC", "needs a DTSTART"),
            ("DTSTART:20250104T100000\nRRULE:FREQ=DAILY", None, "say which zone"),
            ("DTSTART;TZID=Europe/Paris:20250104T100000\nRRULE:FREQ=DAILY", "UTC", "must agree"),
            ("DTSTART;VALUE=DATE:20250104\nRRULE:FREQ=DAILY", "UTC", "without a time"),
            ("DTSTART:20250104T100000", "UTC", "exactly one DTSTART and one RRULE"),
            ("DTSTART:20250104T100000\nRRULE:FREQ=DAILY\nBEGIN:VEVENT", "UTC", "unsupported iCalendar line"),
            ("DTSTART:20250104T100000\nRRULE:FREQ=DAILY\nSUMMARY:x", "UTC", "unsupported iCalendar line"),
            ("DTSTART:2025-01-04\nRRULE:FREQ=DAILY", "UTC", "without a time"),
            ("DTSTART:20250104T1000\nRRULE:FREQ=DAILY", "UTC", "not a date-time"),
            ("DTSTART;TZID:20250104T100000\nRRULE:FREQ=DAILY", "UTC", "malformed parameter"),
            ("DTSTART:20250104T100000\nRRULE:FREQ=DAILY\nEXDATE;TZID=Asia/Tokyo:20250105T100000", "UTC", "agree"),
        ],
    )
    def test_bad_ical(self, text, zone, message):
        """iCalendar text without DTSTART, with a contradicting zone or other lines raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match=message):
            Recurrence.from_ical(text, zone)

    def test_ical_must_be_text(self):
        """from_ical refuses a value that is not a string."""
        with pytest.raises(InvalidInputError, match="must be a string"):
            Recurrence.from_ical(b"DTSTART:20250104T100000", "UTC")


class TestWallTimeRule:
    def test_weekly_ten_oclock_stays_at_ten_across_both_changes(self):
        """A weekly 10:00 rule is at 10:00 local in winter and in summer, across both DST changes."""
        rec = Recurrence("FREQ=WEEKLY;BYDAY=SU", datetime(2025, 1, 5, 10), "Europe/Paris")

        found = rec.between(utc(2025, 1, 1), utc(2026, 1, 1))

        assert 52 == len(found)
        assert {10} == {o.astimezone(PARIS).hour for o in found}
        assert {timedelta(hours=1), timedelta(hours=2)} == {o.astimezone(PARIS).utcoffset() for o in found}
        assert utc(2025, 3, 23, 9) in found  # last Sunday of winter time
        assert utc(2025, 3, 30, 8) in found  # the spring-forward Sunday
        assert utc(2025, 10, 26, 9) in found  # the fall-back Sunday

    def test_gap_time_moves_forward(self):
        """An occurrence at 02:30 on the spring-forward night is read with the winter offset: 03:30 CEST."""
        rec = Recurrence("FREQ=DAILY", datetime(2025, 3, 29, 2, 30), "Europe/Paris")

        found = rec.between(utc(2025, 3, 29), utc(2025, 4, 1))

        assert [
            datetime(2025, 3, 29, 2, 30, tzinfo=PARIS),
            datetime(2025, 3, 30, 3, 30, tzinfo=PARIS),
            datetime(2025, 3, 31, 2, 30, tzinfo=PARIS),
        ] == list(found)
        assert utc(2025, 3, 30, 1, 30) == found[1]

    def test_fold_time_is_the_first(self):
        """An occurrence at 02:30 on the fall-back night is the first 02:30 (CEST, 00:30 UTC)."""
        rec = Recurrence("FREQ=DAILY", datetime(2025, 10, 25, 2, 30), "Europe/Paris")

        found = rec.between(utc(2025, 10, 26), utc(2025, 10, 27))

        assert (utc(2025, 10, 26, 0, 30),) == found

    def test_instants_are_reported_once(self):
        """Two wall times that land on one instant (02:30 moved to 03:30, and 03:30) are one occurrence."""
        rec = Recurrence(
            "FREQ=DAILY;COUNT=1", datetime(2025, 3, 30, 2, 30), "Europe/Paris", rdates=[datetime(2025, 3, 30, 3, 30)]
        )

        assert (utc(2025, 3, 30, 1, 30),) == rec.between(utc(2025, 3, 29), utc(2025, 3, 31))

    @given(
        zone=st.sampled_from(DST_ZONES),
        clock=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
        data=st.data(),
    )
    def test_daily_occurrences_follow_the_rule_near_transitions(self, zone, clock, data):
        """Near real transitions, each daily occurrence is its wall time read with fold=0 (the documented rule)."""
        tz = ZoneInfo(zone)
        transitions = dst_transitions(zone)
        around = data.draw(st.sampled_from(transitions)) if transitions else datetime(2020, 6, 1, tzinfo=UTC)
        first_day = around.astimezone(tz).date() - timedelta(days=3)
        rec = Recurrence("FREQ=DAILY", datetime.combine(first_day, clock), zone)
        lo, hi = around - timedelta(days=2), around + timedelta(days=2)

        found = rec.between(lo, hi, inc=True)

        walls = [datetime.combine(first_day + timedelta(days=k), clock) for k in range(8)]
        instants = {w.replace(tzinfo=tz, fold=0).astimezone(UTC) for w in walls}
        assert sorted(i for i in instants if lo <= i <= hi) == list(found)
        for occurrence in found:
            local = occurrence.astimezone(tz)
            written = datetime.combine(local.date(), clock)
            moved = is_nonexistent(written, tz) or is_nonexistent(written - timedelta(days=1), tz)
            assert clock == local.time() or moved


class TestSkipRule:
    def test_monthly_on_the_31st_skips_short_months(self):
        """A monthly rule on the 31st happens only in months that have a 31st (never clamped to the 30th)."""
        rec = Recurrence("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2025, 1, 31, 9), "Europe/Paris")

        found = rec.between(utc(2025, 1, 1), utc(2026, 1, 1))

        assert [1, 3, 5, 7, 8, 10, 12] == [o.month for o in found]
        assert {31} == {o.day for o in found}

    def test_monthly_from_the_31st_skips_short_months(self):
        """FREQ=MONTHLY from a dtstart on the 31st takes its day from dtstart and skips the same months."""
        rec = Recurrence("FREQ=MONTHLY;COUNT=4", datetime(2025, 1, 31, 9), "UTC")

        assert [utc(2025, 1, 31, 9), utc(2025, 3, 31, 9), utc(2025, 5, 31, 9), utc(2025, 7, 31, 9)] == list(
            rec.between(utc(2025, 1, 1), utc(2026, 1, 1))
        )

    def test_last_day_of_month(self):
        """BYMONTHDAY=-1 is the way to say "the last day of every month"."""
        rec = Recurrence("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2025, 1, 31, 9), "UTC")

        found = rec.between(utc(2025, 1, 1), utc(2025, 5, 1))

        assert [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)] == [o.date() for o in found]

    def test_yearly_on_february_29_only_in_leap_years(self):
        """A yearly rule from 29 February happens only in leap years."""
        rec = Recurrence("FREQ=YEARLY", datetime(2024, 2, 29, 12), "America/New_York")

        found = rec.between(utc(2024, 1, 1), utc(2033, 1, 1))

        assert [2024, 2028, 2032] == [o.year for o in found]
        assert {(2, 29)} == {(o.month, o.day) for o in found}


class TestQueries:
    REC = Recurrence("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", datetime(2025, 1, 4, 10), "Europe/Paris")

    def test_between_excludes_bounds_unless_inc(self):
        """between() leaves out occurrences on its bounds, and keeps them with inc=True."""
        first = datetime(2025, 1, 4, 10, tzinfo=PARIS)
        third = datetime(2025, 2, 1, 10, tzinfo=PARIS)

        assert (datetime(2025, 1, 18, 10, tzinfo=PARIS),) == self.REC.between(first, third)
        assert 3 == len(self.REC.between(first, third, inc=True))

    def test_between_reversed_bounds_is_empty(self):
        """A window whose end is before its start holds no occurrence."""
        assert () == self.REC.between(utc(2025, 3, 1), utc(2025, 1, 1))

    def test_after_and_before(self):
        """after() and before() return the neighbouring occurrences, and honour inc."""
        at = datetime(2025, 1, 18, 10, tzinfo=PARIS)

        assert datetime(2025, 2, 1, 10, tzinfo=PARIS) == self.REC.after(at)
        assert at == self.REC.after(at, inc=True)
        assert datetime(2025, 1, 4, 10, tzinfo=PARIS) == self.REC.before(at)
        assert at == self.REC.before(at, inc=True)

    def test_none_beyond_the_ends(self):
        """before() the first occurrence and after() the last one are None."""
        rec = Recurrence("FREQ=DAILY;COUNT=2", datetime(2025, 1, 1, 9), "UTC")

        assert rec.before(utc(2025, 1, 1, 9)) is None
        assert rec.after(utc(2025, 1, 2, 9)) is None

    def test_after_crossing_a_gap(self):
        """after() finds the gap-shifted occurrence by its instant, not by its wall time."""
        rec = Recurrence("FREQ=DAILY", datetime(2025, 3, 28, 2, 30), "Europe/Paris")

        assert datetime(2025, 3, 30, 3, 30, tzinfo=PARIS) == rec.after(utc(2025, 3, 29, 2))

    def test_queries_need_aware_datetimes(self):
        """Naive bounds raise NaiveDatetimeError."""
        with pytest.raises(NaiveDatetimeError):
            self.REC.between(datetime(2025, 1, 1), datetime(2025, 2, 1))
        with pytest.raises(NaiveDatetimeError):
            self.REC.after(datetime(2025, 1, 1))

    def test_between_walls_is_the_raw_wall_answer(self):
        """between_walls() returns dateutil's naive wall times, before the wall-time rule."""
        rec = Recurrence("FREQ=DAILY", datetime(2025, 3, 29, 2, 30), "Europe/Paris")

        assert (datetime(2025, 3, 30, 2, 30),) == rec.between_walls(datetime(2025, 3, 30), datetime(2025, 3, 31))

    def test_between_walls_refuses_aware_bounds(self):
        """between_walls() takes naive wall times only."""
        with pytest.raises(InvalidInputError):
            self.REC.between_walls(utc(2025, 1, 1), utc(2025, 2, 1))

    def test_occurrence_days(self):
        """occurrence_days() names the local dates on which the rule happens, both ends included."""
        assert frozenset({date(2025, 1, 4), date(2025, 1, 18)}) == occurrence_days(
            self.REC, date(2025, 1, 4), date(2025, 1, 18)
        )
        assert frozenset() == occurrence_days(self.REC, date(2025, 1, 18), date(2025, 1, 4))

    def test_properties(self):
        """freq, parts and tz expose the rule's pieces."""
        assert "WEEKLY" == self.REC.freq
        assert {"FREQ": "WEEKLY", "INTERVAL": "2", "BYDAY": "SA"} == self.REC.parts
        assert PARIS == self.REC.tz

    def test_dtstart_counts_only_when_it_matches(self):
        """A dtstart that does not match the rule is not an occurrence (dateutil's reading)."""
        rec = Recurrence("FREQ=WEEKLY;BYDAY=SA;COUNT=2", datetime(2025, 1, 1, 10), "UTC")  # a Wednesday

        assert (utc(2025, 1, 4, 10), utc(2025, 1, 11, 10)) == rec.between(utc(2025, 1, 1), utc(2025, 2, 1))


FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class TestRfc5545Constraints:
    @pytest.mark.parametrize(
        ("rule", "part"),
        [
            ("FREQ=WEEKLY;BYDAY=1SA", "BYDAY=1SA"),
            ("FREQ=WEEKLY;BYDAY=MO,-1FR", "BYDAY=-1FR"),
            ("FREQ=DAILY;BYDAY=-1FR", "BYDAY=-1FR"),
            ("FREQ=HOURLY;BYDAY=+2TU", "BYDAY=\\+2TU"),
            ("FREQ=YEARLY;BYWEEKNO=10;BYDAY=1MO", "BYDAY=1MO"),
            ("FREQ=WEEKLY;BYMONTHDAY=15", "BYMONTHDAY"),
            ("FREQ=MONTHLY;BYWEEKNO=10", "BYWEEKNO"),
            ("FREQ=WEEKLY;BYWEEKNO=10", "BYWEEKNO"),
            ("FREQ=DAILY;BYWEEKNO=10", "BYWEEKNO"),
            ("FREQ=DAILY;BYYEARDAY=100", "BYYEARDAY"),
            ("FREQ=WEEKLY;BYYEARDAY=100", "BYYEARDAY"),
            ("FREQ=MONTHLY;BYYEARDAY=100", "BYYEARDAY"),
            ("FREQ=MONTHLY;BYDAY=6FR", "at most 5"),
            ("FREQ=YEARLY;BYMONTH=1;BYDAY=6FR", "at most 5"),
            ("FREQ=YEARLY;BYDAY=60FR", "at most 53"),
            ("FREQ=MONTHLY;BYDAY=0FR", "numbered from 1"),
            ("FREQ=MONTHLY;BYSETPOS=-1", "BYSETPOS"),
            ("FREQ=YEARLY;INTERVAL=2;BYSETPOS=1,2", "BYSETPOS"),
        ],
    )
    def test_parts_the_rfc_forbids_are_refused_by_name(self, rule, part):
        """A BYxxx part RFC 5545 (3.3.10) forbids with the FREQ raises InvalidInputError naming that part."""
        with pytest.raises(InvalidInputError, match=part):
            Recurrence(rule, datetime(2026, 1, 5, 10), "Europe/Paris")

    @pytest.mark.parametrize(
        "rule",
        [
            "FREQ=MONTHLY;BYDAY=1SA",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=YEARLY;BYDAY=20MO",
            "FREQ=YEARLY;BYMONTH=1;BYDAY=-1SU",
            "FREQ=YEARLY;BYWEEKNO=10;BYDAY=MO",
            "FREQ=YEARLY;BYYEARDAY=100",
            "FREQ=HOURLY;BYYEARDAY=100",
            "FREQ=MONTHLY;BYMONTHDAY=15",
            "FREQ=WEEKLY;BYDAY=MO,FR",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1,15;BYSETPOS=1",
        ],
    )
    def test_parts_the_rfc_allows_are_kept(self, rule):
        """The same parts with a FREQ that allows them build a recurrence."""
        assert rule == Recurrence(rule, datetime(2026, 1, 5, 10), "Europe/Paris").rule

    @given(
        freq=st.sampled_from(FREQS),
        number=st.integers(-60, 60).filter(bool),
        day=st.sampled_from(WEEKDAYS),
        weekno=st.booleans(),
        bymonth=st.booleans(),
    )
    def test_a_numbered_weekday_is_read_as_the_rfc_says_or_refused(self, freq, number, day, weekno, bymonth):
        """A numbered BYDAY builds only in MONTHLY or YEARLY rules without BYWEEKNO, and only when it can happen."""
        rule = f"FREQ={freq};BYDAY={number}{day}" + (";BYWEEKNO=10" if weekno else "") + (";BYMONTH=3" if bymonth else "")
        most = 5 if freq == "MONTHLY" or bymonth else 53
        allowed = freq in {"MONTHLY", "YEARLY"} and not weekno and abs(number) <= most

        try:
            rec = Recurrence(rule, datetime(2026, 1, 5, 10), "Europe/Paris")
        except InvalidInputError:
            built = False
        else:
            built = True
            found = rec.between(utc(2026, 1, 1), utc(2028, 1, 1))
            assert all(d.astimezone(PARIS).strftime("%a")[:2].upper() == day for d in found)

        assert allowed == built

    @pytest.mark.parametrize(
        "rule",
        ["FREQ=DAILY;COUNT=" + "9" * 5000, "FREQ=DAILY;INTERVAL=" + "1" * 5000, "FREQ=DAILY;COUNT=1_0", "FREQ=DAILY;COUNT=²"],
    )
    def test_a_count_that_is_not_a_plain_number_is_refused(self, rule):
        """COUNT or INTERVAL of thousands of digits, or not ASCII digits, raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="at least 1"):
            Recurrence(rule, datetime(2026, 1, 5, 10), "Europe/Paris")

    @pytest.mark.parametrize("value", ["1_0", "+ 1", "1" * 5000, "١"])
    def test_a_by_number_that_is_not_plain_digits_is_refused(self, value):
        """BYMONTHDAY=1_0 is not read as 10, and thousands of digits are refused without a raw ValueError."""
        with pytest.raises(InvalidInputError, match="whole numbers"):
            Recurrence(f"FREQ=MONTHLY;BYMONTHDAY={value}", datetime(2026, 1, 5, 10), "Europe/Paris")


class TestIcalExtremes:
    @pytest.mark.parametrize(
        "text",
        [
            "DTSTART;TZID=Asia/Tokyo:20250106T100000\nRRULE:FREQ=DAILY;UNTIL=99991231T235959Z",
            "DTSTART:99991231T235959Z\nRRULE:FREQ=DAILY",
            "DTSTART;TZID=Asia/Tokyo:20250106T100000\nRRULE:FREQ=DAILY\nEXDATE:99991231T235959Z",
            "DTSTART;TZID=America/New_York:20250106T100000\nRRULE:FREQ=DAILY\nRDATE:00010101T000000Z",
            "DTSTART;TZID=America/New_York:20250106T100000\nRRULE:FREQ=DAILY;UNTIL=00010101T000000Z",
        ],
    )
    def test_values_at_the_ends_of_the_calendar_are_read_or_refused(self, text):
        """UTC values in years 1 and 9999 never escape as OverflowError: they are read or refused."""
        try:
            rec = Recurrence.from_ical(text, None if "TZID" in text else "Asia/Tokyo")
        except InvalidInputError as exc:
            assert "OverflowError" not in str(exc)
        else:
            assert rec == Recurrence.from_ical(rec.to_ical())

    def test_a_far_until_keeps_every_occurrence(self):
        """UNTIL=99991231T235959Z, which some calendars write for "forever", ends nothing the library can reach."""
        rec = Recurrence.from_ical("DTSTART;TZID=Asia/Tokyo:20250106T100000\nRRULE:FREQ=YEARLY;UNTIL=99991231T235959Z")

        assert utc(2199, 1, 6, 1) == rec.before(utc(2200, 1, 1))

    @pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Tokyo"])
    def test_an_until_in_year_1_is_written_with_four_digits(self, zone):
        """UNTIL=00010101T000000Z is read as a rule with no occurrences, never as another rule in the message."""
        rec = Recurrence.from_ical(f"DTSTART;TZID={zone}:20250106T100000\nRRULE:FREQ=DAILY;UNTIL=00010101T000000Z")

        assert rec.rule.startswith("FREQ=DAILY;UNTIL=0001")
        assert () == rec.between(utc(2025, 1, 1), utc(2026, 1, 1))

    def test_an_error_shows_the_rule_as_written(self):
        """A refused rule with a UTC UNTIL is quoted as the user wrote it, not with the converted UNTIL."""
        text = "DTSTART;TZID=Europe/Paris:20250106T100000\nRRULE:FREQ=WEEKLY;BYDAY=1SA;UNTIL=20250110T090000Z"

        with pytest.raises(InvalidInputError, match="'FREQ=WEEKLY;BYDAY=1SA;UNTIL=20250110T090000Z'"):
            Recurrence.from_ical(text)

    @given(
        prop=st.sampled_from(["UNTIL", "DTSTART", "EXDATE", "RDATE"]),
        year=st.sampled_from([1, 2, 1969, 1970, 2199, 2200, 9998, 9999]),
        month=st.integers(1, 12),
        day=st.integers(1, 28),
        hour=st.integers(0, 23),
        zone=st.sampled_from(["Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Paris", "UTC"]),
    )
    def test_any_utc_value_is_read_or_refused(self, prop, year, month, day, hour, zone):
        """A UTC value of any year from 1 to 9999 builds a recurrence or raises InvalidInputError, nothing else."""
        value = f"{year:04d}{month:02d}{day:02d}T{hour:02d}0000Z"
        lines = {"DTSTART": f"DTSTART;TZID={zone}:20250106T100000", "RRULE": "RRULE:FREQ=DAILY"}
        if prop == "UNTIL":
            lines["RRULE"] += f";UNTIL={value}"
        elif prop == "DTSTART":
            lines["DTSTART"] = f"DTSTART:{value}"
        else:
            lines[prop] = f"{prop}:{value}"

        with contextlib.suppress(InvalidInputError):  # anything else fails the test
            Recurrence.from_ical("\n".join(lines.values()), zone)


class TestToIcalUntil:
    def test_until_is_written_in_utc(self):
        """Next to DTSTART;TZID=, UNTIL is written in UTC (RFC 5545 3.3.10), and reads back the same."""
        rec = Recurrence.from_ical("DTSTART;TZID=Europe/Paris:20250106T100000\nRRULE:FREQ=DAILY;UNTIL=20250110T090000Z")

        text = rec.to_ical()

        assert "RRULE:FREQ=DAILY;UNTIL=20250110T090000Z" == text.splitlines()[1]
        assert rec == Recurrence.from_ical(text)

    @given(
        zone=st.sampled_from(DST_ZONES),
        until=st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31)).map(lambda d: d.replace(microsecond=0)),
    )
    def test_a_local_until_round_trips_through_utc(self, zone, until):
        """Any local UNTIL outside a gap is written as its UTC instant and read back as the same recurrence."""
        tz = ZoneInfo(zone)
        if is_nonexistent(until, tz):
            return
        rec = Recurrence(f"FREQ=DAILY;UNTIL={until:%Y%m%dT%H%M%S}", datetime(2000, 1, 1, 10), zone)

        text = rec.to_ical()
        written = text.splitlines()[1].rpartition("UNTIL=")[2]

        assert written.endswith("Z")
        assert rec == Recurrence.from_ical(text)


# --- UNTIL as an instant, iCalendar text that a file can hold, whole seconds (review of recurrence) ---------

_MINUTES = st.sets(st.sampled_from([0, 5, 10, 15, 20, 30, 40, 45, 50, 55]), min_size=1, max_size=3)


@st.composite
def rules_near_a_change(draw):
    """
    A rule without UNTIL, its zone, its dtstart and one of the zone's changes of offset near that dtstart.

    Zones are `DST_ZONES` and rules repeat weekly to every few minutes, often at the small hours where the
    gaps and folds are, so that UNTIL and occurrences meet them; a rule may start years before the change.
    """
    zone = draw(st.sampled_from(DST_ZONES))
    transitions = dst_transitions(zone)
    around = draw(st.sampled_from(transitions)) if transitions else utc(2020, 6, 1)
    wall = around.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    freq = draw(st.sampled_from(["WEEKLY", "DAILY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]))
    parts = [f"FREQ={freq}"]
    interval = {
        "WEEKLY": st.integers(1, 3),
        "DAILY": st.integers(1, 3),
        "HOURLY": st.integers(1, 5),
        "MINUTELY": st.sampled_from([1, 5, 15, 20, 25, 45]),
        "SECONDLY": st.sampled_from([300, 450, 900, 1500]),
    }[freq]
    every = draw(interval)
    if every > 1:
        parts.append(f"INTERVAL={every}")
    if freq in {"WEEKLY", "DAILY"} and draw(st.booleans()):
        parts.append("BYHOUR=" + ",".join(map(str, sorted(draw(st.sets(st.integers(0, 4), min_size=1, max_size=3))))))
        parts.append("BYMINUTE=" + ",".join(map(str, sorted(draw(_MINUTES)))))
    if freq == "HOURLY" and draw(st.booleans()):
        parts.append("BYMINUTE=" + ",".join(map(str, sorted(draw(_MINUTES)))))
    # Close before the change, so the walk from dtstart stays short; sometimes years before (coarse rules).
    back = timedelta(minutes=draw(st.integers(0, 6 * 60)), seconds=draw(st.sampled_from([0, 0, 0, 30])))
    if freq in {"WEEKLY", "DAILY"}:
        back += timedelta(days=draw(st.sampled_from([0, 1, 3, 10, 400, 3000])))
    return zone, wall.replace(second=0) - back, ";".join(parts), around


def _window(around):
    return around - timedelta(days=9), around + timedelta(days=3)


def _rfc_reader(text, lo, hi):
    """The occurrences python-icalendar and dateutil (zone aware, independent of slotengine) read in *text*."""
    icalendar = pytest.importorskip("icalendar")
    from dateutil.rrule import rrulestr

    calendar = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n{text}END:VEVENT\r\nEND:VCALENDAR\r\n")
    event = calendar.walk("VEVENT")[0]
    rule = rrulestr(event["RRULE"].to_ical().decode(), dtstart=event["DTSTART"].dt, forceset=True)
    return sorted({t.astimezone(UTC) for t in rule.between(lo, hi, inc=True)})


class TestUntilIsAnInstant:
    def test_a_utc_until_after_a_gap_keeps_no_later_occurrence(self):
        """UNTIL=...011500Z is 03:15 CEST: the 02:45 of the night Paris springs forward is 03:45 CEST, so it goes."""
        text = "DTSTART;TZID=Europe/Paris:20260325T024500\nRRULE:FREQ=DAILY;UNTIL=20260329T011500Z"

        rec = Recurrence.from_ical(text)

        assert [utc(2026, 3, d, 1, 45) for d in (25, 26, 27, 28)] == list(rec.between(utc(2026, 3, 20), utc(2026, 4, 5)))

    def test_an_occurrence_kept_after_one_the_gap_moved_makes_an_exdate(self):
        """Every 25 minutes from 01:00, UNTIL at 03:10 CEST: 02:15 and 02:40 (03:15, 03:40 CEST) go, 03:05 stays."""
        text = "DTSTART;TZID=Europe/Paris:20260329T010000\nRRULE:FREQ=MINUTELY;INTERVAL=25;UNTIL=20260329T011000Z"

        rec = Recurrence.from_ical(text)

        assert [utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 25), utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 5)] == list(
            rec.between(utc(2026, 3, 28), utc(2026, 3, 30), inc=True)
        )
        assert (datetime(2026, 3, 29, 2, 15), datetime(2026, 3, 29, 2, 40)) == rec.exdates

    def test_an_rdate_after_until_is_kept(self):
        """UNTIL bounds the rule, not the RDATEs (RFC 5545): an RDATE at an instant UNTIL cut is an occurrence."""
        text = (
            "DTSTART;TZID=Europe/Paris:20260325T024500\nRRULE:FREQ=DAILY;UNTIL=20260329T011500Z\n"
            "RDATE:20260329T014500Z"
        )

        rec = Recurrence.from_ical(text)

        assert utc(2026, 3, 29, 1, 45) == rec.before(utc(2026, 4, 1))

    @settings(max_examples=150, deadline=None)
    @given(rules_near_a_change(), st.integers(-180, 180), st.data())
    def test_a_utc_until_keeps_exactly_the_occurrences_at_or_before_it(self, drawn, minutes, data):
        """Near real changes, from_ical's occurrences are the rule's whose instant is at or before UNTIL, plus RDATEs."""
        zone, start, rule, around = drawn
        bound = around + timedelta(minutes=minutes)
        rdate = around + timedelta(minutes=data.draw(st.integers(-120, 120)))
        lo, hi = _window(around)
        head = f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}\nRRULE:{rule}"
        rdates = data.draw(st.sampled_from(["", f"\nRDATE:{rdate:%Y%m%dT%H%M%SZ}"]))

        rec = Recurrence.from_ical(f"{head};UNTIL={bound:%Y%m%dT%H%M%SZ}{rdates}")

        kept = {t for t in Recurrence(rule, start, zone).between(lo, hi, inc=True) if t <= bound}
        assert sorted(kept | ({rdate} if rdates else set())) == list(rec.between(lo, hi, inc=True))


class TestToIcalKeepsTheOccurrences:
    def test_an_until_after_a_moved_occurrence_keeps_it(self):
        """Daily at 02:30 until 03:00: the last one is 03:30 CEST, so UNTIL is written at that instant, not 03:00 CEST."""
        rec = Recurrence("FREQ=DAILY;UNTIL=20260329T030000", datetime(2026, 3, 25, 2, 30), "Europe/Paris")
        window = (utc(2026, 3, 20), utc(2026, 4, 5))

        text = rec.to_ical()

        assert "RRULE:FREQ=DAILY;UNTIL=20260329T013000Z" == text.splitlines()[1]
        assert utc(2026, 3, 29, 1, 30) == rec.between(*window)[-1]
        assert rec.between(*window) == Recurrence.from_ical(text).between(*window)
        assert list(rec.between(*window)) == _rfc_reader(text, *window)

    def test_an_until_in_a_gap_round_trips(self):
        """Every 15 minutes until 02:00, a wall time the clocks skip: 03:00 CEST is the last, before and after."""
        rec = Recurrence("FREQ=MINUTELY;INTERVAL=15;UNTIL=20260329T020000", datetime(2026, 3, 29, 1), "Europe/Paris")
        window = (utc(2026, 3, 28), utc(2026, 3, 30))

        back = Recurrence.from_ical(rec.to_ical())

        assert utc(2026, 3, 29, 1) == rec.between(*window)[-1]
        assert rec.between(*window) == back.between(*window)

    def test_an_occurrence_no_utc_until_can_leave_out_is_written_as_an_exdate(self):
        """Every 25 minutes from 01:00 until 02:40 keeps 03:40 CEST, not 03:05 and 03:30 CEST: the text has EXDATEs."""
        rec = Recurrence("FREQ=MINUTELY;INTERVAL=25;UNTIL=20260329T024000", datetime(2026, 3, 29, 1), "Europe/Paris")
        window = (utc(2026, 3, 28), utc(2026, 3, 30))

        text = rec.to_ical()

        assert [
            "RRULE:FREQ=MINUTELY;INTERVAL=25;UNTIL=20260329T014000Z",
            "EXDATE:20260329T010500Z,20260329T013000Z",
        ] == text.splitlines()[1:]
        assert utc(2026, 3, 29, 1, 40) == rec.between(*window)[-1]
        assert rec.between(*window) == Recurrence.from_ical(text).between(*window)

    @settings(max_examples=150, deadline=None)
    @given(rules_near_a_change(), st.integers(-180, 180), st.sampled_from([0, 0, 30, 59]))
    def test_any_rule_reads_back_with_the_same_occurrences(self, drawn, minutes, seconds):
        """For rules with a local UNTIL near real changes, from_ical(to_ical(r)) has exactly r's occurrences."""
        zone, start, rule, around = drawn
        until = around.astimezone(ZoneInfo(zone)).replace(tzinfo=None, second=seconds) + timedelta(minutes=minutes)
        rec = Recurrence(f"{rule};UNTIL={until:%Y%m%dT%H%M%S}", start, zone)
        lo, hi = _window(around)

        text = rec.to_ical()

        # (dateutil is no oracle here: it stops at the first wall time past UNTIL, even one a gap moved.)
        assert rec.between(lo, hi, inc=True) == Recurrence.from_ical(text).between(lo, hi, inc=True)

    @settings(max_examples=150, deadline=None)
    @given(rules_near_a_change(), st.integers(-3 * 1440, 3 * 1440), st.sampled_from([0, 1, 2, 400, 3000]))
    def test_a_walk_started_whole_periods_later_makes_the_same_wall_times(self, drawn, minutes, days):
        """The UNTIL checks walk a rule from a later dtstart, a whole number of periods on: the wall times are dateutil's own."""
        from slotengine.recurrence import _build, _walls_near

        zone, start, rule, around = drawn
        start -= timedelta(days=days) if "MINUTELY" not in rule and "SECONDLY" not in rule else timedelta(0)
        at = around.astimezone(ZoneInfo(zone)).replace(tzinfo=None) + timedelta(minutes=minutes)
        lo, hi = at - timedelta(hours=3), at + timedelta(hours=3)

        assert tuple(_build(rule, start, (), ()).between(lo, hi, inc=True)) == _walls_near(rule, start, lo, hi)

    def test_a_far_until_of_a_minutely_rule_is_quick_to_read_and_write(self):
        """A minutely rule from 2026 with UNTIL on the 2199 spring-forward night does not walk 90 million minutes."""
        text = "DTSTART;TZID=Europe/Paris:20260101T000000\nRRULE:FREQ=MINUTELY;UNTIL=21990331T013000Z"

        rec = Recurrence.from_ical(text)

        assert "FREQ=MINUTELY;UNTIL=21990331T023059" == rec.rule  # 02:31 to 02:59 are 03:31 to 03:59 CEST
        assert "RRULE:FREQ=MINUTELY;UNTIL=21990331T013000Z" == rec.to_ical().splitlines()[1]


class TestIcalText:
    def test_lines_end_in_crlf_and_are_folded_at_75_octets(self):
        """to_ical is file-ready (RFC 5545, 3.1): CRLF line ends, long lines folded, and it reads back the same."""
        rec = Recurrence(
            "FREQ=DAILY;COUNT=30",
            datetime(2026, 1, 1, 10),
            "America/Argentina/ComodRivadavia",
            exdates=[datetime(2026, 1, d, 10) for d in range(2, 12)],
        )

        text = rec.to_ical()

        assert text.endswith("\r\n")
        assert "\n" not in text.replace("\r\n", "")
        assert max(len(line.encode()) for line in text.split("\r\n")) <= 75
        assert rec == Recurrence.from_ical(text)

    @settings(max_examples=50, deadline=None)
    @given(zone=st.sampled_from(DST_ZONES), days=st.lists(st.integers(1, 300), max_size=40), data=st.data())
    def test_any_recurrence_is_written_in_short_lines_an_ical_reader_accepts(self, zone, days, data):
        """Whatever its exdates, no line is over 75 octets, and icalendar reads every exdate back."""
        icalendar = pytest.importorskip("icalendar")
        exdates = [datetime(2026, 1, 1, 10) + timedelta(days=d) for d in days]
        rec = Recurrence("FREQ=DAILY", datetime(2026, 1, 1, 10), zone, exdates=exdates)

        text = rec.to_ical()
        event = icalendar.Event.from_ical(f"BEGIN:VEVENT\r\n{text}END:VEVENT\r\n")
        read = event.get("EXDATE", [])

        assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
        assert len(set(days)) == sum(len(e.dts) for e in (read if isinstance(read, list) else [read]))
        assert rec == Recurrence.from_ical(text)

    @given(cuts=st.lists(st.integers(1, 60), max_size=6))
    def test_lines_folded_anywhere_read_the_same(self, cuts):
        """A line folded at any points, with CRLF or LF and a space or a tab, is one line (RFC 5545, 3.1)."""
        line = 'DTSTART;TZID="Europe/Paris":20260105T100000'
        for cut in sorted(set(cuts), reverse=True):
            if cut < len(line):
                line = line[:cut] + ("\r\n " if cut % 2 else "\n\t") + line[cut:]

        rec = Recurrence.from_ical(f"{line}\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n")

        assert Recurrence("FREQ=WEEKLY;COUNT=3", datetime(2026, 1, 5, 10), "Europe/Paris") == rec

    @pytest.mark.parametrize(
        "text",
        [
            'DTSTART;TZID="Europe/Paris":20260105T100000\nRRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID="Europe/Paris":20260112T100000',
            (
                'DTSTART;X-NOTE="at 10:00; weekly, on Monday";TZID=Europe/Paris:20260105T100000\n'
                "RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID=Europe/Paris:20260112T100000"
            ),
            (
                'DTSTART;TZID="Europe/Paris";VALUE="DATE-TIME":20260105T100000\n'
                "RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID=Europe/Paris:20260112T100000"
            ),
        ],
    )
    def test_quoted_parameter_values_are_read(self, text):
        """TZID="Europe/Paris" is Europe/Paris, and ; : , inside quotes do not split the line (RFC 5545, 3.1)."""
        expected = Recurrence(
            "FREQ=WEEKLY;COUNT=3", datetime(2026, 1, 5, 10), "Europe/Paris", exdates=[datetime(2026, 1, 12, 10)]
        )

        assert expected == Recurrence.from_ical(text)

    @pytest.mark.parametrize(
        "line",
        [
            'DTSTART;TZID="Europe/Paris:20260105T100000',
            'DTSTART;TZID=Europe"/Paris":20260105T100000',
            'DTSTART;TZID="Europe/Paris"x:20260105T100000',
        ],
    )
    def test_a_broken_quote_is_refused(self, line):
        """A quote that does not close, or is not around the whole value, is refused as malformed."""
        with pytest.raises(InvalidInputError, match=r"not an iCalendar line|malformed"):
            Recurrence.from_ical(f"{line}\nRRULE:FREQ=WEEKLY;COUNT=3")


class TestWholeSeconds:
    @pytest.mark.parametrize(
        ("field", "arguments"),
        [
            ("dtstart", {"dtstart": datetime(2026, 1, 1, 10, 0, 0, 500000)}),
            ("exdates", {"exdates": [datetime(2026, 1, 2, 10, 0, 0, 500000)]}),
            ("exdates", {"exdates": [datetime(2026, 1, 2, 9, 0, 0, 1, tzinfo=UTC)]}),
            ("rdates", {"rdates": [datetime(2026, 1, 5, 10, 0, 0, 999999)]}),
            ("rdates", {"rdates": [datetime(2026, 1, 5, 10, 0, 0, 1, tzinfo=PARIS)]}),
        ],
    )
    def test_a_fraction_of_a_second_is_refused_by_name(self, field, arguments):
        """dateutil drops a fraction of a second (and iCalendar has none), so an exdate would miss: it is refused."""
        options = {"dtstart": datetime(2026, 1, 1, 10), **arguments}

        with pytest.raises(InvalidInputError, match="fraction of a second") as caught:
            Recurrence("FREQ=DAILY;COUNT=5", zone="Europe/Paris", **options)

        assert field == caught.value.details["field"]
        assert field in str(caught.value)

    def test_queries_still_take_any_bounds(self):
        """Only the recurrence's own values count whole seconds: query bounds may have fractions."""
        rec = Recurrence("FREQ=DAILY;COUNT=2", datetime(2026, 1, 1, 10), "UTC")

        assert (datetime(2026, 1, 1, 10),) == rec.between_walls(
            datetime(2026, 1, 1, 9, 59, 59, 999999), datetime(2026, 1, 1, 10, 0, 0, 1)
        )
        assert (utc(2026, 1, 2, 10),) == rec.between(utc(2026, 1, 1, 10, 0, 0, 1), utc(2026, 1, 3))
