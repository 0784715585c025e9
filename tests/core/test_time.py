"""The time rules: aware instants only, IANA zones only, one rule for DST gaps and folds."""

from datetime import UTC, date, datetime, time, timedelta, timezone
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine._time import (
    day_span,
    days_span,
    from_micros,
    get_zone,
    is_ambiguous,
    is_nonexistent,
    local_date,
    localize,
    require_aware,
    spoken,
    to_micros,
    to_utc,
)
from slotengine.errors import (
    AmbiguousLocalTimeError,
    InvalidInputError,
    NaiveDatetimeError,
    NonexistentLocalTimeError,
    OutOfRangeError,
    UnknownTimeZoneError,
)
from slotengine.testing.strategies import DST_ZONES, aware_datetimes

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


class TestRequireAware:
    def test_accepts_aware(self):
        """An aware datetime passes through unchanged."""
        value = datetime(2026, 3, 1, 9, tzinfo=PARIS)

        assert value is require_aware(value)

    def test_rejects_naive(self):
        """A naive datetime raises NaiveDatetimeError naming the field and showing the fix."""
        with pytest.raises(NaiveDatetimeError, match=r"start .* has no time zone") as info:
            require_aware(datetime(2026, 3, 1, 9), "start")

        assert "naive_datetime" == info.value.code
        assert isinstance(info.value, ValueError)

    def test_rejects_a_date(self):
        """A date is not an instant and is refused with an input error."""
        with pytest.raises(InvalidInputError, match="not date"):
            require_aware(date(2026, 3, 1))

    def test_rejects_tzinfo_without_offset(self):
        """A tzinfo whose utcoffset() is None counts as naive."""

        class NoOffset(timezone.__base__):  # type: ignore[misc,name-defined]
            def utcoffset(self, dt):
                return None

        with pytest.raises(NaiveDatetimeError):
            require_aware(datetime(2026, 1, 1, tzinfo=NoOffset()))

    @pytest.mark.parametrize(
        "value",
        [
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
            datetime(2200, 1, 1, 0, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 30, tzinfo=NEW_YORK),
            datetime(1, 1, 1, tzinfo=UTC),
        ],
    )
    def test_rejects_absurd_instants(self, value):
        """Instants before 1970 or after 2200 raise OutOfRangeError instead of overflowing later."""
        with pytest.raises(OutOfRangeError):
            require_aware(value)

    @given(aware_datetimes())
    def test_to_utc_keeps_the_instant(self, value):
        """to_utc returns the same instant, in UTC (compared in UTC: Python never equates fold=1 across zones)."""
        result = to_utc(value)

        assert value.astimezone(UTC) == result
        assert UTC is result.tzinfo


class TestMicros:
    @given(aware_datetimes(minute_resolution=False))
    def test_round_trip(self, value):
        """Microseconds since the epoch convert back to the same instant, exactly."""
        assert value.astimezone(UTC) == from_micros(to_micros(value))

    def test_epoch_is_zero(self):
        """The Unix epoch is 0 and one second later is a million."""
        assert 0 == to_micros(datetime(1970, 1, 1, tzinfo=UTC))
        assert 1_000_000 == to_micros(datetime(1970, 1, 1, 1, tzinfo=ZoneInfo("Europe/Paris")) + timedelta(seconds=1))


class TestGetZone:
    def test_known_zone(self):
        """An IANA key gives its ZoneInfo."""
        assert PARIS == get_zone("Europe/Paris")

    @pytest.mark.parametrize(
        "name", ["Mars/Olympus", "europe/paris", "../../etc/passwd", "", "/etc/localtime", None, 3, [], {"a": 1}]
    )
    def test_unknown_zone(self, name):
        """Unknown, mis-cased, path-like and non-string names raise UnknownTimeZoneError."""
        with pytest.raises(UnknownTimeZoneError, match="unknown time zone"):
            get_zone(name)

    def test_a_huge_name_is_quoted_short(self):
        """The message quotes at most 80 characters of a name, not all 100,000 of one."""
        with pytest.raises(UnknownTimeZoneError) as refused:
            get_zone("x" * 100_000)

        assert len(str(refused.value)) < 200

    def test_a_zoneinfo_of_a_known_key_is_itself(self):
        """A ZoneInfo is accepted where a zone name is (a zone read from a file, without a key, is not)."""
        assert PARIS is get_zone(PARIS)
        with (files("tzdata.zoneinfo") / "Europe" / "Paris").open("rb") as tzif, pytest.raises(UnknownTimeZoneError):
            get_zone(ZoneInfo.from_file(tzif))

    def test_legacy_keys_are_accepted(self):
        """Legacy keys that the tz database still ships, such as EST and UTC, are accepted."""
        assert "EST" == get_zone("EST").key
        assert "UTC" == get_zone("UTC").key


class TestLocalize:
    def test_gap_moves_forward(self):
        """02:30 on the night Paris springs forward is read as 03:30 CEST (offset before the gap)."""
        result = localize(datetime(2026, 3, 29, 2, 30), PARIS)

        assert datetime(2026, 3, 29, 1, 30, tzinfo=UTC) == result
        assert "03:30" == result.astimezone(PARIS).strftime("%H:%M")

    def test_fold_takes_first_occurrence(self):
        """02:30 on the night Paris falls back is its first occurrence, 02:30 CEST = 00:30 UTC."""
        assert datetime(2026, 10, 25, 0, 30, tzinfo=UTC) == localize(datetime(2026, 10, 25, 2, 30), PARIS)

    def test_lord_howe_half_hour_gap(self):
        """Lord Howe skips 02:00-02:30; 02:15 moves forward by the 30-minute gap, to 02:45."""
        result = localize(datetime(2026, 10, 4, 2, 15), LORD_HOWE)

        assert "02:45" == result.astimezone(LORD_HOWE).strftime("%H:%M")

    def test_strict_refuses_gap(self):
        """In strict mode a time in a gap raises NonexistentLocalTimeError."""
        with pytest.raises(NonexistentLocalTimeError, match="does not exist in America/New_York"):
            localize(datetime(2025, 3, 9, 2, 30), NEW_YORK, strict=True)

    def test_strict_refuses_fold(self):
        """In strict mode a time in a fold raises AmbiguousLocalTimeError."""
        with pytest.raises(AmbiguousLocalTimeError, match="happens twice"):
            localize(datetime(2025, 10, 26, 2, 30), ZoneInfo("Europe/Berlin"), strict=True)

    def test_zone_by_name_and_bad_arguments(self):
        """A zone may be named; a date or a bad zone is a typed input error, not a TypeError."""
        assert localize(datetime(2026, 1, 1, 9), PARIS) == localize(datetime(2026, 1, 1, 9), "Europe/Paris")
        with pytest.raises(InvalidInputError, match="naive datetime, not date"):
            localize(date(2026, 1, 1), PARIS)
        with pytest.raises(UnknownTimeZoneError):
            localize(datetime(2026, 1, 1, 9), "Paris")

    def test_aware_input_is_refused(self):
        """A wall time must be naive; an aware one is an input error, not silently re-read."""
        with pytest.raises(InvalidInputError):
            localize(datetime(2026, 1, 1, tzinfo=UTC), PARIS)

    @given(aware_datetimes())
    def test_existing_unique_wall_times_round_trip(self, instant):
        """A wall time that exists once localizes back to the instant it came from."""
        zone = instant.tzinfo
        wall = instant.replace(tzinfo=None)
        if is_nonexistent(wall, zone) or is_ambiguous(wall, zone):
            return

        assert instant.astimezone(UTC) == localize(wall, zone, strict=True)

    @given(st.sampled_from(DST_ZONES), st.datetimes(datetime(2010, 1, 1), datetime(2030, 1, 1)))
    def test_rule(self, name, wall):
        """Every wall time maps to an instant: gaps shift forward by the gap, folds pick the earlier instant."""
        zone = ZoneInfo(name)
        result = localize(wall, zone)
        seen = result.astimezone(zone).replace(tzinfo=None)

        if is_nonexistent(wall, zone):
            gap = wall.replace(tzinfo=zone, fold=1).utcoffset() - wall.replace(tzinfo=zone, fold=0).utcoffset()
            assert wall + gap == seen
        elif is_ambiguous(wall, zone):
            later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
            assert wall == seen
            assert result < later
        else:
            assert wall == seen


class TestLocalDays:
    def test_spring_forward_day_is_23_hours(self):
        """The local day 2025-03-30 in Berlin lasts 23 hours."""
        start, end = day_span(date(2025, 3, 30), ZoneInfo("Europe/Berlin"))

        assert timedelta(hours=23) == end - start

    def test_fall_back_day_is_25_hours(self):
        """The local day 2025-10-26 in Berlin lasts 25 hours."""
        start, end = day_span(date(2025, 10, 26), ZoneInfo("Europe/Berlin"))

        assert timedelta(hours=25) == end - start

    def test_midnight_gap(self):
        """Santiago skips midnight on 2024-09-08; that day starts at 01:00 local and lasts 23 hours."""
        zone = ZoneInfo("America/Santiago")
        start, end = day_span(date(2024, 9, 8), zone)

        assert time(1) == start.astimezone(zone).time()
        assert timedelta(hours=23) == end - start

    @given(st.sampled_from(DST_ZONES), st.dates(date(2010, 1, 1), date(2029, 12, 1)), st.integers(1, 40))
    def test_days_are_contiguous(self, name, first, days):
        """N whole days end exactly where day N+1 starts and cover every local date once."""
        zone = ZoneInfo(name)
        start, end = days_span(first, days, zone)
        next_start, _ = day_span(first + timedelta(days=days), zone)

        assert end == next_start
        assert first == local_date(start, zone)
        assert first + timedelta(days=days - 1) == local_date(end - timedelta(microseconds=1), zone)

    @pytest.mark.parametrize("days", [0, -1, True, 1.5])
    def test_bad_day_count(self, days):
        """A non-positive or non-integer number of days is an input error."""
        with pytest.raises(InvalidInputError):
            days_span(date(2026, 1, 1), days, PARIS)


class TestSpoken:
    @pytest.mark.parametrize(
        ("length", "words"),
        [
            (timedelta(hours=2), "2 hours"),
            (timedelta(minutes=1), "1 minute"),
            (timedelta(days=1, minutes=30), "1 day 30 minutes"),
            (timedelta(days=3, hours=1, seconds=5), "3 days 1 hour 5 seconds"),
            (timedelta(0), "no time"),
            (timedelta(hours=-1), "minus 1 hour"),
            (timedelta(milliseconds=1500), "0:00:01.500000"),
        ],
    )
    def test_lengths_are_said_as_people_say_them(self, length, words):
        """Reasons name lengths in words; a fraction of a second is said exactly rather than rounded away."""
        assert words == spoken(length)
