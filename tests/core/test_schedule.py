"""Schedules: local opening hours, overrides, time off and recurring rules, expanded to instants DST-correctly."""

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine.errors import (
    InvalidInputError,
    InvalidIntervalError,
    NaiveDatetimeError,
    UnknownTimeZoneError,
)
from slotengine.intervals import Interval, IntervalSet
from slotengine.recurrence import Recurrence
from slotengine.schedule import (
    DateOverride,
    RecurringHours,
    Schedule,
    TimeOff,
    TimeRange,
    WeeklyHours,
    effective_hours,
    time_off_within,
    weekday_index,
)
from slotengine.testing._schedule_oracle import schedule_open_minutes
from slotengine.testing._schedule_strategies import schedule_windows, time_ranges, weekly_hours

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
MINUTE_US = 60_000_000


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def day_window(day: date, zone: ZoneInfo, days: int = 1) -> Interval:
    """The local days from *day*, plus a day's margin each side, so night shifts show whole."""
    start = datetime.combine(day - timedelta(days=1), time(), tzinfo=zone)
    return Interval(start, start + timedelta(days=days + 2))


def every_day(zone: str, *ranges: TimeRange) -> Schedule:
    return Schedule(zone, WeeklyHours.every_day(*ranges))


def minutes_of(intervals: IntervalSet) -> frozenset[int]:
    out: set[int] = set()
    for start, end in intervals.to_micros():
        assert 0 == start % MINUTE_US
        assert 0 == end % MINUTE_US
        out.update(range(start // MINUTE_US, end // MINUTE_US))
    return frozenset(out)


class TestTimeRange:
    def test_accepts_times_and_text(self):
        """A range takes datetime.time values or text such as '09:00', and shows itself in that text."""
        by_time = TimeRange(time(9), time(17, 30))
        by_text = TimeRange("09:00", "17:30")

        assert by_time == by_text
        assert "TimeRange('09:00', '17:30')" == repr(by_text)

    @pytest.mark.parametrize("start", ["00:00", "09:00", "23:59"])
    def test_an_end_of_24_00_is_the_midnight_that_ends_the_day(self, start):
        """'24:00' as an end, as business files write it, ends the range at the next midnight; not as a start."""
        assert TimeRange(start, "00:00") == TimeRange(start, "24:00") == TimeRange(start, " 24:00:00 ")
        with pytest.raises(InvalidInputError):
            TimeRange("24:00", "06:00")

    def test_end_before_start_is_a_night_shift(self):
        """end <= start means the range ends on the next day."""
        night = TimeRange("22:00", "06:00")

        assert night.crosses_midnight
        assert (datetime(2025, 1, 6, 22), datetime(2025, 1, 7, 6)) == night.walls(date(2025, 1, 6))
        assert timedelta(hours=8) == night.wall_duration

    def test_start_equal_to_end_is_24_hours(self):
        """start == end is 24 hours of wall time from start, by the same rule."""
        whole = TimeRange("09:00", "09:00")

        assert timedelta(hours=24) == whole.wall_duration
        assert (datetime(2025, 1, 6, 9), datetime(2025, 1, 7, 9)) == whole.walls(date(2025, 1, 6))

    def test_instants_of_a_range_in_a_gap_are_not_ordered(self):
        """A range wholly inside a gap gives instants whose end is not after their start: no time at all."""
        start, end = TimeRange("02:00", "03:00").instants(date(2025, 3, 30), PARIS)

        assert start == end

    def test_seconds_show_in_repr(self):
        """Seconds and microseconds are kept and shown."""
        assert "TimeRange('09:00:30', '10:00:00.000001')" == repr(TimeRange(time(9, 0, 30), time(10, 0, 0, 1)))

    @pytest.mark.parametrize(
        ("start", "message"),
        [
            (time(9, tzinfo=UTC), "must be a naive time of day"),
            (time(9, tzinfo=timezone(timedelta(hours=2))), "must be a naive time of day"),
            (time(9, fold=1), "fold=1"),
            ("9 o'clock", "not a time of day"),
            (datetime(2025, 1, 1, 9), "must be a datetime.time"),
            (9, "must be a datetime.time"),
        ],
    )
    def test_bad_bounds(self, start, message):
        """A bound with a tzinfo, fold=1, unreadable text or another type raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match=message):
            TimeRange(start, time(17))


class TestWeekdayIndex:
    @pytest.mark.parametrize(
        ("value", "expected"), [(0, 0), (6, 6), ("monday", 0), ("Sun", 6), ("SA", 5), (" Friday ", 4)]
    )
    def test_numbers_and_names(self, value, expected):
        """Weekdays are numbers 0 (Monday) to 6 (Sunday), or English names, short names or RRULE codes."""
        assert expected == weekday_index(value)

    @pytest.mark.parametrize("value", [7, -1, True, "funday", 1.0, None])
    def test_bad_weekday(self, value):
        """Anything else, weekday 7 included, raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="a weekday is 0"):
            weekday_index(value)


class TestWeeklyHours:
    def test_keys_by_name_or_number(self):
        """Weekdays may be given by number or by name; missing weekdays are closed."""
        by_name = WeeklyHours({"mon": TimeRange("09:00", "17:00"), "friday": [TimeRange("10:00", "12:00")]})
        by_number = WeeklyHours({0: [TimeRange("09:00", "17:00")], 4: TimeRange("10:00", "12:00")})

        assert by_number == by_name
        assert () == by_name.on("tue")
        assert (TimeRange("10:00", "12:00"),) == by_name.on(4)

    def test_overlapping_ranges_are_merged(self):
        """Overlapping ranges of one day merge into one (Mon 9–12 and 11–14 become 9–14)."""
        hours = WeeklyHours({"mon": [TimeRange("11:00", "14:00"), TimeRange("09:00", "12:00")]})

        assert (TimeRange("09:00", "14:00"),) == hours.on("mon")
        assert WeeklyHours({"mon": TimeRange("09:00", "14:00")}) == hours

    def test_touching_ranges_are_merged_and_breaks_kept(self):
        """Touching ranges merge; a break between two ranges stays a break."""
        hours = WeeklyHours(
            {0: [TimeRange("09:00", "12:00"), TimeRange("12:00", "13:00"), TimeRange("14:00", "18:00")]}
        )

        assert (TimeRange("09:00", "13:00"), TimeRange("14:00", "18:00")) == hours.on(0)

    def test_night_shift_merges_with_a_later_evening_range(self):
        """An evening range merges with the night shift it overlaps, in wall time on the start day."""
        hours = WeeklyHours({"sat": [TimeRange("20:00", "23:00"), TimeRange("22:00", "04:00")]})

        assert (TimeRange("20:00", "04:00"),) == hours.on("sat")

    def test_unions_longer_than_a_day_are_kept_apart(self):
        """Two ranges whose union would exceed 24 hours stay separate (a range is at most a day long)."""
        hours = WeeklyHours({"mon": [TimeRange("08:00", "08:00"), TimeRange("20:00", "10:00")]})

        assert (TimeRange("08:00", "08:00"), TimeRange("20:00", "10:00")) == hours.on("mon")

    def test_every_day_and_weekdays(self):
        """every_day() opens all seven days; weekdays() Monday to Friday."""
        nine_to_five = TimeRange("09:00", "17:00")

        assert 7 == sum(1 for day in WeeklyHours.every_day(nine_to_five).days if day)
        assert [True] * 5 + [False] * 2 == [bool(day) for day in WeeklyHours.weekdays(nine_to_five).days]

    def test_seven_day_sequence(self):
        """A sequence of seven days is read Monday first."""
        hours = WeeklyHours([[TimeRange("09:00", "10:00")], [], [], [], [], [], [TimeRange("11:00", "12:00")]])

        assert WeeklyHours({"mon": TimeRange("09:00", "10:00"), "sun": TimeRange("11:00", "12:00")}) == hours

    def test_repr(self):
        """The repr lists the open days and their hours."""
        hours = WeeklyHours({"mon": [TimeRange("09:00", "12:00"), TimeRange("13:00", "18:00")]})

        assert "WeeklyHours(mon=09:00–12:00, 13:00–18:00)" == repr(hours)
        assert "WeeklyHours(closed)" == repr(WeeklyHours())

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ({7: TimeRange("09:00", "17:00")}, "a weekday is 0"),
            ({"mon": "09:00-17:00"}, "TimeRange values"),
            ({"mon": ["09:00"]}, "TimeRange values"),
            ({"mon": 9}, "TimeRange values"),
            ([[]] * 6, "sequence of 7 days"),
            ("mon 9-17", "sequence of 7 days"),
        ],
    )
    def test_bad_values(self, value, message):
        """Weekday 7, or hours that are not TimeRange values, raise InvalidInputError."""
        with pytest.raises(InvalidInputError, match=message):
            WeeklyHours(value)


class TestDateOverride:
    def test_closed_and_special_hours(self):
        """An override holds the date's own ranges, merged; closed() holds none."""
        special = DateOverride(date(2025, 12, 24), [TimeRange("09:00", "11:00"), TimeRange("10:00", "13:00")])

        assert (TimeRange("09:00", "13:00"),) == special.ranges
        assert () == DateOverride.closed(date(2025, 12, 25)).ranges
        assert "DateOverride(2025-12-24: 09:00–13:00)" == repr(special)
        assert "DateOverride(2025-12-25: closed)" == repr(DateOverride.closed(date(2025, 12, 25)))

    @pytest.mark.parametrize("day", [datetime(2025, 12, 24), "2025-12-24", date(1969, 12, 31)])
    def test_bad_day(self, day):
        """A day that is a datetime, text or out of range raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="day"):
            DateOverride(day)


class TestTimeOff:
    def test_instants_are_stored_in_utc(self):
        """Instant time off keeps its bounds in UTC and shows them so."""
        off = TimeOff(paris(2025, 6, 2, 14), paris(2025, 6, 2, 16), reason="dentist")

        assert utc(2025, 6, 2, 12) == off.start
        assert "TimeOff(2025-06-02 12:00Z – 2025-06-02 14:00Z, 'dentist')" == repr(off)
        assert not off.is_whole_days

    def test_whole_days_last_23_and_25_hours_on_dst_days(self):
        """Whole local days run midnight to midnight in the zone: 23 h and 25 h on the DST days."""
        spring = TimeOff.days(date(2025, 3, 30)).interval("Europe/Paris")
        autumn = TimeOff.days(date(2025, 10, 26)).interval(PARIS)
        week = TimeOff.days(date(2025, 3, 29), date(2025, 4, 4), reason="holiday").interval(PARIS)

        assert timedelta(hours=23) == spring.duration
        assert timedelta(hours=25) == autumn.duration
        assert timedelta(days=7) - timedelta(hours=1) == week.duration
        assert "TimeOff(days 2025-03-29 – 2025-04-04, 'holiday')" == repr(
            TimeOff.days(date(2025, 3, 29), date(2025, 4, 4), "holiday")
        )

    def test_naive_datetimes(self):
        """Naive datetimes raise NaiveDatetimeError."""
        with pytest.raises(NaiveDatetimeError):
            TimeOff(datetime(2025, 6, 2, 14), datetime(2025, 6, 2, 16))

    def test_end_before_start(self):
        """An end that is not after the start raises InvalidIntervalError."""
        with pytest.raises(InvalidIntervalError, match="must end after it starts"):
            TimeOff(paris(2025, 6, 2, 16), paris(2025, 6, 2, 14))
        with pytest.raises(InvalidIntervalError):
            TimeOff(paris(2025, 6, 2, 16), paris(2025, 6, 2, 16))

    def test_last_day_before_first(self):
        """Days whose last day is before the first raise InvalidIntervalError."""
        with pytest.raises(InvalidIntervalError, match="first day to a last day"):
            TimeOff.days(date(2025, 6, 2), date(2025, 6, 1))

    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"start": utc(2025, 1, 1)},
            {
                "start": utc(2025, 1, 1),
                "end": utc(2025, 1, 2),
                "first_day": date(2025, 1, 1),
                "last_day": date(2025, 1, 1),
            },
            {"first_day": date(2025, 1, 1)},
        ],
    )
    def test_one_shape_exactly(self, kwargs):
        """Time off is instants or days, with both bounds; anything else raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="either TimeOff"):
            TimeOff(**kwargs)

    def test_bad_reason_and_days(self):
        """A reason that is not text, and days that are datetimes, raise InvalidInputError."""
        with pytest.raises(InvalidInputError, match="reason"):
            TimeOff.days(date(2025, 1, 1), reason=3)
        with pytest.raises(InvalidInputError, match="first_day"):
            TimeOff.days(datetime(2025, 1, 1))


class TestRecurringHours:
    def test_every_other_saturday(self):
        """Every other Saturday 10:00–14:00 opens on alternate Saturdays only, at 10:00 local."""
        saturdays = RecurringHours.every(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", date(2025, 1, 4), TimeRange("10:00", "14:00"), "Europe/Paris"
        )
        schedule = Schedule("Europe/Paris", recurring=[saturdays])

        opened = schedule.expand(Interval(paris(2025, 1, 1), paris(2025, 2, 1)))

        assert [
            Interval(paris(2025, 1, 4, 10), paris(2025, 1, 4, 14)),
            Interval(paris(2025, 1, 18, 10), paris(2025, 1, 18, 14)),
        ] == list(opened)

    def test_hours_starting_within_a_second_are_refused_as_hours(self):
        """Recurrences count whole seconds: hours from 09:00:00.0005 are refused at ``hours``, not at a dtstart."""
        with pytest.raises(InvalidInputError, match="whole second") as info:
            RecurringHours.every("FREQ=WEEKLY", date(2026, 3, 2), TimeRange(time(9, 0, 0, 500), time(10)), "Europe/Paris")

        assert "hours" == info.value.details["field"]

    def test_a_recurrence_from_ical_with_a_utc_instant_in_a_fold(self):
        """An RDATE or DTSTART in UTC in a fold's second pass is at the hours' start in wall time: accepted."""
        night = TimeRange("02:00", "04:00")
        for text in (
            "DTSTART;TZID=Europe/Paris:20251019T020000\nRRULE:FREQ=WEEKLY;COUNT=3\nRDATE:20251026T010000Z",
            "DTSTART:20251026T010000Z\nRRULE:FREQ=WEEKLY;COUNT=3",
        ):
            hours = RecurringHours(Recurrence.from_ical(text, zone="Europe/Paris"), night)
            opened = Schedule("Europe/Paris", recurring=[hours]).expand(Interval(utc(2025, 10, 25), utc(2025, 10, 27)))

            assert utc(2025, 10, 26, 0) == next(iter(opened)).start  # 02:00, the day's opening from its first pass

    def test_every_other_saturday_across_spring_forward(self):
        """The recurring opening stays 10:00–14:00 local across the DST change."""
        saturdays = RecurringHours.every(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", date(2025, 3, 22), TimeRange("10:00", "14:00"), "Europe/Paris"
        )

        opened = Schedule("Europe/Paris", recurring=[saturdays]).expand(
            Interval(paris(2025, 3, 20), paris(2025, 4, 10))
        )

        assert [
            Interval(utc(2025, 3, 22, 9), utc(2025, 3, 22, 13)),
            Interval(utc(2025, 4, 5, 8), utc(2025, 4, 5, 12)),
        ] == list(opened)

    def test_except_days(self):
        """except_days removes single occurrences."""
        saturdays = RecurringHours.every(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
            date(2025, 1, 4),
            TimeRange("10:00", "14:00"),
            "Europe/Paris",
            except_days=[date(2025, 1, 18)],
        )

        opened = Schedule("Europe/Paris", recurring=[saturdays]).expand(Interval(paris(2025, 1, 1), paris(2025, 2, 1)))

        assert [Interval(paris(2025, 1, 4, 10), paris(2025, 1, 4, 14))] == list(opened)

    def test_recurring_closure(self):
        """A recurring closure (every Friday 15:00–18:00) cuts the weekly hours on those days."""
        closure = RecurringHours.every(
            "FREQ=WEEKLY;BYDAY=FR", date(2025, 1, 3), TimeRange("15:00", "18:00"), "Europe/Paris", closed=True
        )
        schedule = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "18:00")), recurring=[closure])

        friday = schedule.expand(Interval(paris(2025, 1, 10), paris(2025, 1, 11)))
        thursday = schedule.expand(Interval(paris(2025, 1, 9), paris(2025, 1, 10)))

        assert IntervalSet.of(paris(2025, 1, 10, 9), paris(2025, 1, 10, 15)) == friday
        assert IntervalSet.of(paris(2025, 1, 9, 9), paris(2025, 1, 9, 18)) == thursday

    def test_closure_wins_over_an_override(self):
        """Recurring closures are removed after every opening, overrides included."""
        closure = RecurringHours.every(
            "FREQ=WEEKLY;BYDAY=FR", date(2025, 1, 3), TimeRange("15:00", "18:00"), "Europe/Paris", closed=True
        )
        schedule = Schedule(
            "Europe/Paris",
            overrides=[DateOverride(date(2025, 1, 10), [TimeRange("12:00", "20:00")])],
            recurring=[closure],
        )

        opened = schedule.expand(Interval(paris(2025, 1, 10), paris(2025, 1, 11)))

        assert [
            Interval(paris(2025, 1, 10, 12), paris(2025, 1, 10, 15)),
            Interval(paris(2025, 1, 10, 18), paris(2025, 1, 10, 20)),
        ] == list(opened)

    def test_repr(self):
        """The repr says whether it opens or closes, the hours, and the rule."""
        closure = RecurringHours.every(
            "FREQ=WEEKLY;BYDAY=FR", date(2025, 1, 3), TimeRange("15:00", "18:00"), "UTC", closed=True, reason="meeting"
        )

        assert (
            "RecurringHours(closed 15:00–18:00 on Recurrence('FREQ=WEEKLY;BYDAY=FR', dtstart=2025-01-03 15:00, "
            "zone='UTC'), 'meeting')"
        ) == repr(closure)

    @pytest.mark.parametrize(
        ("rule", "dtstart", "message"),
        [
            ("FREQ=HOURLY", datetime(2025, 1, 3, 15), "daily or less often"),
            ("FREQ=DAILY;BYHOUR=9,15", datetime(2025, 1, 3, 15), "remove BYHOUR"),
            ("FREQ=DAILY", datetime(2025, 1, 3, 9), "at the hours' start 15:00"),
        ],
    )
    def test_ambiguous_recurrences(self, rule, dtstart, message):
        """A sub-daily rule, a rule naming hours, or a dtstart away from the hours' start is refused."""
        with pytest.raises(InvalidInputError, match=message):
            RecurringHours(Recurrence(rule, dtstart, "UTC"), TimeRange("15:00", "18:00"))

    def test_bad_parts(self):
        """A recurrence, hours or closed flag of the wrong type raises InvalidInputError."""
        rec = Recurrence("FREQ=DAILY", datetime(2025, 1, 3, 15), "UTC")
        with pytest.raises(InvalidInputError, match="need a Recurrence"):
            RecurringHours("FREQ=DAILY", TimeRange("15:00", "18:00"))
        with pytest.raises(InvalidInputError, match="need a TimeRange"):
            RecurringHours(rec, (time(15), time(18)))
        with pytest.raises(InvalidInputError, match="closed must be True or False"):
            RecurringHours(rec, TimeRange("15:00", "18:00"), closed="yes")
        with pytest.raises(InvalidInputError, match="first_day"):
            RecurringHours.every("FREQ=DAILY", datetime(2025, 1, 3), TimeRange("15:00", "18:00"), "UTC")


class TestScheduleDst:
    """The wall-time rule applied at both ends of each range, on real DST nights."""

    def test_range_across_the_paris_gap_lasts_two_hours(self):
        """01:00–04:00 on the night Paris springs forward (2025-03-30) lasts 2 hours."""
        opened = every_day("Europe/Paris", TimeRange("01:00", "04:00")).expand(
            Interval(paris(2025, 3, 30), paris(2025, 3, 30, 12))
        )

        assert IntervalSet.of(utc(2025, 3, 30, 0), utc(2025, 3, 30, 2)) == opened
        assert timedelta(hours=2) == opened.total_duration

    def test_range_across_the_paris_fold_lasts_four_hours(self):
        """01:00–04:00 on the night Paris falls back (2025-10-26) lasts 4 hours, both passes included."""
        opened = every_day("Europe/Paris", TimeRange("01:00", "04:00")).expand(
            Interval(paris(2025, 10, 26), paris(2025, 10, 26, 12))
        )

        assert IntervalSet.of(utc(2025, 10, 25, 23), utc(2025, 10, 26, 3)) == opened

    def test_range_inside_the_gap_vanishes(self):
        """02:00–03:00 on the spring-forward night does not exist and opens nothing."""
        schedule = Schedule("Europe/Paris", WeeklyHours({"sun": TimeRange("02:00", "03:00")}))

        assert IntervalSet.empty() == schedule.expand(day_window(date(2025, 3, 30), PARIS))
        assert timedelta(hours=1) == schedule.expand(day_window(date(2025, 3, 23), PARIS)).total_duration

    def test_whole_day_ranges_last_23_and_25_hours(self):
        """00:00–00:00 (24 h of wall time) lasts 23 h on the spring-forward day and 25 h on the fall-back day."""
        schedule = Schedule("Europe/Paris", WeeklyHours({"sun": TimeRange("00:00", "00:00")}))

        spring = schedule.expand(day_window(date(2025, 3, 30), PARIS))
        autumn = schedule.expand(day_window(date(2025, 10, 26), PARIS))

        assert timedelta(hours=23) == spring.total_duration
        assert timedelta(hours=25) == autumn.total_duration

    def test_office_day_is_unchanged_by_a_night_change(self):
        """09:00–18:00 lasts 9 h on a DST day, since the clocks change at night, at 09:00 local each time."""
        schedule = every_day("America/New_York", TimeRange("09:00", "18:00"))

        spring = schedule.expand(
            Interval(datetime(2025, 3, 9, tzinfo=NEW_YORK), datetime(2025, 3, 10, tzinfo=NEW_YORK))
        )

        assert IntervalSet.of(utc(2025, 3, 9, 13), utc(2025, 3, 9, 22)) == spring

    def test_night_shift_across_midnight_and_spring_forward(self):
        """Saturday 22:00–06:00 across the Paris spring-forward night lasts 7 hours, and 9 across fall-back."""
        schedule = Schedule("Europe/Paris", WeeklyHours({"sat": TimeRange("22:00", "06:00")}))

        spring = schedule.expand(day_window(date(2025, 3, 29), PARIS))
        autumn = schedule.expand(day_window(date(2025, 10, 25), PARIS))

        assert IntervalSet.of(utc(2025, 3, 29, 21), utc(2025, 3, 30, 4)) == spring
        assert IntervalSet.of(utc(2025, 10, 25, 20), utc(2025, 10, 26, 5)) == autumn

    def test_new_york_night_shift(self):
        """In New York, 22:00–06:00 over 2025-03-09 (spring forward at 02:00) lasts 7 hours."""
        schedule = Schedule("America/New_York", WeeklyHours({"sat": TimeRange("22:00", "06:00")}))

        opened = schedule.expand(day_window(date(2025, 3, 8), NEW_YORK))

        assert timedelta(hours=7) == opened.total_duration

    def test_lord_howe_half_hour_gap(self):
        """On Lord Howe (a 30-minute DST), 01:00–04:00 lasts 2 h 30 on the spring-forward night (2025-10-05)."""
        schedule = every_day("Australia/Lord_Howe", TimeRange("01:00", "04:00"))

        opened = schedule.expand(
            Interval(datetime(2025, 10, 5, tzinfo=LORD_HOWE), datetime(2025, 10, 5, 12, tzinfo=LORD_HOWE))
        )

        assert timedelta(hours=2, minutes=30) == opened.total_duration

    def test_kathmandu_offset(self):
        """Asia/Kathmandu's +05:45 offset is applied: 09:00 local is 03:15 UTC."""
        schedule = every_day("Asia/Kathmandu", TimeRange("09:00", "10:00"))

        opened = schedule.expand(Interval(utc(2025, 1, 1), utc(2025, 1, 2)))

        assert IntervalSet.of(utc(2025, 1, 1, 3, 15), utc(2025, 1, 1, 4, 15)) == opened

    def test_moscow_changes_of_2011_and_2014(self):
        """Moscow's 09:00 was 05:00 UTC in winter 2010/11, 05:00 UTC from 2011 to 2014 (+4), then 06:00 (+3)."""
        schedule = every_day("Europe/Moscow", TimeRange("09:00", "10:00"))

        def start_on(day: date) -> datetime | None:
            return schedule.expand(
                Interval(
                    datetime.combine(day, time(), tzinfo=UTC),
                    datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC),
                )
            ).start

        assert utc(2011, 1, 10, 6) == start_on(date(2011, 1, 10))  # +03:00 winter time
        assert utc(2012, 1, 10, 5) == start_on(date(2012, 1, 10))  # +04:00 all year
        assert utc(2015, 1, 10, 6) == start_on(date(2015, 1, 10))  # +03:00 since 2014-10-26


class TestScheduleExpand:
    def test_override_closes_a_day_but_not_the_night_shift_before_it(self):
        """A closed override empties its date, but the previous day's night shift still runs into it."""
        schedule = Schedule(
            "Europe/Paris",
            WeeklyHours.every_day(TimeRange("09:00", "12:00"), TimeRange("22:00", "02:00")),
            overrides=[DateOverride.closed(date(2025, 12, 25))],
        )

        opened = schedule.expand(Interval(paris(2025, 12, 25), paris(2025, 12, 26)))

        assert IntervalSet.of(paris(2025, 12, 25), paris(2025, 12, 25, 2)) == opened

    def test_override_special_hours(self):
        """An override's ranges replace the weekday's hours on its date only."""
        schedule = Schedule(
            "Europe/Paris",
            WeeklyHours.weekdays(TimeRange("09:00", "18:00")),
            overrides=[DateOverride(date(2025, 12, 24), [TimeRange("09:00", "13:00")])],
        )

        opened = schedule.expand(Interval(paris(2025, 12, 23), paris(2025, 12, 25)))

        assert [
            Interval(paris(2025, 12, 23, 9), paris(2025, 12, 23, 18)),
            Interval(paris(2025, 12, 24, 9), paris(2025, 12, 24, 13)),
        ] == list(opened)
        assert (TimeRange("09:00", "13:00"),) == schedule.hours_on(date(2025, 12, 24))
        assert (TimeRange("09:00", "18:00"),) == schedule.hours_on(date(2025, 12, 23))

    def test_time_off_instants_and_days(self):
        """Time off removes its instants, and whole days from local midnight to local midnight."""
        schedule = Schedule(
            "Europe/Paris",
            WeeklyHours.every_day(TimeRange("09:00", "18:00")),
            time_off=[TimeOff(paris(2025, 6, 2, 14), paris(2025, 6, 2, 16)), TimeOff.days(date(2025, 6, 3))],
        )

        opened = schedule.expand(Interval(paris(2025, 6, 2), paris(2025, 6, 4)))

        assert [
            Interval(paris(2025, 6, 2, 9), paris(2025, 6, 2, 14)),
            Interval(paris(2025, 6, 2, 16), paris(2025, 6, 2, 18)),
        ] == list(opened)

    def test_clipped_to_the_window(self):
        """The result never reaches outside the window."""
        schedule = every_day("UTC", TimeRange("09:00", "18:00"))

        assert IntervalSet.of(utc(2025, 1, 1, 10), utc(2025, 1, 1, 11)) == schedule.expand(
            Interval(utc(2025, 1, 1, 10), utc(2025, 1, 1, 11))
        )

    def test_a_year_in_one_call(self):
        """A year of weekday hours with a break expands to two ranges per weekday."""
        schedule = Schedule(
            "Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "12:00"), TimeRange("13:00", "18:00"))
        )

        opened = schedule.expand(Interval(paris(2025, 1, 1), paris(2026, 1, 1)))

        assert 2 * 261 == len(opened)
        assert timedelta(hours=8 * 261) == opened.total_duration

    def test_with_time_off(self):
        """with_time_off() returns a new schedule with the time off added; the original is unchanged."""
        schedule = every_day("UTC", TimeRange("09:00", "18:00"))

        closed = schedule.with_time_off(TimeOff.days(date(2025, 1, 1), reason="New Year"))

        assert () == schedule.time_off
        assert IntervalSet.empty() == closed.expand(Interval(utc(2025, 1, 1), utc(2025, 1, 2)))

    def test_equality_and_repr(self):
        """Schedules compare by value and show every part in their repr."""
        a = Schedule("UTC", {"mon": TimeRange("09:00", "12:00")}, [DateOverride.closed(date(2025, 1, 6))])
        b = Schedule("UTC", WeeklyHours({0: [TimeRange("09:00", "12:00")]}), (DateOverride.closed(date(2025, 1, 6)),))

        assert b == a
        assert hash(b) == hash(a)
        assert (
            "Schedule('UTC', weekly=WeeklyHours(mon=09:00–12:00), overrides=[DateOverride(2025-01-06: closed)])"
        ) == repr(a)

    def test_unknown_zone(self):
        """An unknown zone raises UnknownTimeZoneError."""
        with pytest.raises(UnknownTimeZoneError):
            Schedule("Europe/Atlantis")
        with pytest.raises(UnknownTimeZoneError):
            Schedule("europe/paris")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"weekly": "9-5"}, "weekly must be WeeklyHours"),
            (
                {"overrides": [DateOverride.closed(date(2025, 1, 1)), DateOverride.closed(date(2025, 1, 1))]},
                "two overrides",
            ),
            ({"overrides": [date(2025, 1, 1)]}, "DateOverride values"),
            ({"time_off": "holiday"}, "collection of TimeOff"),
            ({"recurring": [None]}, "RecurringHours values"),
        ],
    )
    def test_bad_parts(self, kwargs, message):
        """Parts of the wrong type, or two overrides for one date, raise InvalidInputError."""
        with pytest.raises(InvalidInputError, match=message):
            Schedule("Europe/Paris", **kwargs)

    def test_recurring_rule_in_another_zone(self):
        """A recurring rule in another zone than the schedule's is refused."""
        rule = RecurringHours.every("FREQ=DAILY", date(2025, 1, 1), TimeRange("10:00", "11:00"), "UTC")

        with pytest.raises(InvalidInputError, match="build the Recurrence in the schedule's zone"):
            Schedule("Europe/Paris", recurring=[rule])

    def test_window_must_be_an_interval(self):
        """expand() takes an Interval."""
        with pytest.raises(InvalidInputError, match="a window is an Interval"):
            every_day("UTC", TimeRange("09:00", "18:00")).expand((utc(2025, 1, 1), utc(2025, 1, 2)))

    def test_a_single_value_is_a_collection_of_one(self):
        """A single TimeOff, DateOverride or RecurringHours is accepted where a collection is expected."""
        schedule = Schedule("UTC", time_off=TimeOff.days(date(2025, 1, 1)))

        assert (TimeOff.days(date(2025, 1, 1)),) == schedule.time_off


class TestEffectiveHours:
    BUSINESS = Schedule(
        "Europe/Paris",
        WeeklyHours.weekdays(TimeRange("09:00", "18:00")),
        time_off=[TimeOff.days(date(2025, 12, 25), reason="Christmas")],
    )

    def test_none_inherits_the_business_hours(self):
        """A resource without its own schedule has exactly the business's hours, holidays included."""
        window = Interval(paris(2025, 12, 22), paris(2025, 12, 27))

        assert self.BUSINESS.expand(window) == effective_hours(None, self.BUSINESS, window)
        assert 4 == len(effective_hours(None, self.BUSINESS, window))

    def test_company_holiday_applies_to_own_hours(self):
        """A resource with its own hours (even on weekends) still gets the company-wide holiday off."""
        own = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange("07:00", "12:00")))
        window = Interval(paris(2025, 12, 24), paris(2025, 12, 27))

        hours = effective_hours(own, self.BUSINESS, window)

        assert [
            Interval(paris(2025, 12, 24, 7), paris(2025, 12, 24, 12)),
            Interval(paris(2025, 12, 26, 7), paris(2025, 12, 26, 12)),
        ] == list(hours)

    def test_company_holiday_is_the_resources_local_day(self):
        """The business's whole-day holiday closes the resource's own local day, in the resource's zone."""
        own = Schedule("America/New_York", WeeklyHours.every_day(TimeRange("00:00", "00:00")))
        window = Interval(utc(2025, 12, 24), utc(2025, 12, 28))

        closed = window_minus(window, effective_hours(own, self.BUSINESS, window))

        ny_christmas = Interval(datetime(2025, 12, 25, tzinfo=NEW_YORK), datetime(2025, 12, 26, tzinfo=NEW_YORK))
        assert IntervalSet([ny_christmas]) == closed

    def test_business_weekly_hours_do_not_apply_to_own_hours(self):
        """Only the business's time off reaches a resource with its own hours, not its weekly hours."""
        own = Schedule("Europe/Paris", WeeklyHours({"sun": TimeRange("10:00", "11:00")}))
        window = Interval(paris(2025, 12, 28), paris(2025, 12, 29))

        assert own.expand(window) == effective_hours(own, self.BUSINESS, window)

    def test_bad_arguments(self):
        """Values that are not schedules raise InvalidInputError."""
        window = Interval(utc(2025, 1, 1), utc(2025, 1, 2))
        with pytest.raises(InvalidInputError, match="effective_hours takes Schedule"):
            effective_hours("own", self.BUSINESS, window)
        with pytest.raises(InvalidInputError, match="effective_hours takes Schedule"):
            effective_hours(None, None, window)
        with pytest.raises(InvalidInputError, match="a window is an Interval"):
            effective_hours(self.BUSINESS, self.BUSINESS, None)


def window_minus(window: Interval, hours: IntervalSet) -> IntervalSet:
    return IntervalSet([window]) - hours


class TestScheduleProperties:
    @given(schedule_windows())
    def test_expand_equals_the_minute_oracle(self, schedule_and_window):
        """expand() opens exactly the minutes the brute-force oracle finds, in every DST zone we test."""
        schedule, window = schedule_and_window

        assert schedule_open_minutes(schedule, window) == minutes_of(schedule.expand(window))

    @given(schedule_windows(max_days=2), st.data())
    def test_expansion_is_additive(self, schedule_and_window, data):
        """Expanding [a, c) equals expanding [a, b) and [b, c) and joining the results."""
        schedule, window = schedule_and_window
        total = int(window.duration / timedelta(minutes=1))
        split = window.start + timedelta(minutes=data.draw(st.integers(1, max(1, total - 1))))
        if not window.start < split < window.end:
            return

        left = schedule.expand(Interval(window.start, split))
        right = schedule.expand(Interval(split, window.end))

        assert schedule.expand(window) == left | right

    @given(weekly_hours())
    def test_merged_weekly_hours_are_stable(self, hours):
        """Merging is idempotent: rebuilding weekly hours from their own days changes nothing."""
        assert hours == WeeklyHours(list(hours.days))

    @given(time_ranges())
    def test_time_range_wall_duration(self, hours):
        """Every range lasts more than nothing and at most 24 hours of wall time."""
        assert timedelta(0) < hours.wall_duration <= timedelta(hours=24)


class TestScheduleRangeEdges:
    def test_windows_at_the_ends_of_the_accepted_range(self):
        """Windows at 1970 and at 2200 expand, recurring rules included, without looking outside the range."""
        rule = RecurringHours.every("FREQ=DAILY", date(1970, 1, 1), TimeRange("10:00", "14:00"), "Europe/Paris")
        schedule = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange("22:00", "06:00")), recurring=[rule])

        first = schedule.expand(Interval(utc(1970, 1, 1), utc(1970, 1, 2)))
        last = schedule.expand(Interval(utc(2199, 12, 31), utc(2200, 1, 1)))

        assert (
            IntervalSet(
                [
                    (utc(1970, 1, 1), utc(1970, 1, 1, 5)),
                    (utc(1970, 1, 1, 9), utc(1970, 1, 1, 13)),
                    (utc(1970, 1, 1, 21), utc(1970, 1, 2)),
                ]
            )
            == first
        )
        assert utc(2200, 1, 1) == last.end


class TestTimeOffWithin:
    @settings(max_examples=60)  # the whole expansion is property-tested above; this holds one cut to the old one
    @given(schedule_windows())
    def test_it_is_the_entries_intervals_cut_to_the_window(self, drawn):
        """Where every entry is a valid interval, `time_off_within` is their union cut to the window."""
        schedule, window = drawn
        tz = ZoneInfo(schedule.zone)
        expected = IntervalSet(t.interval(tz) for t in schedule.time_off) & IntervalSet.of(window.start, window.end)

        assert expected == time_off_within(schedule.time_off, tz, window)

    @pytest.mark.parametrize(
        ("zone", "day", "window", "hours"),
        [
            ("Pacific/Apia", date(2011, 12, 30), (datetime(2011, 12, 29, tzinfo=UTC), datetime(2012, 1, 2, tzinfo=UTC)), 0),
            ("America/New_York", date(2199, 12, 31), (datetime(2199, 12, 31, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)), 19),
            ("Asia/Tokyo", date(1970, 1, 1), (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)), 15),
        ],
    )
    def test_a_day_that_is_no_interval_takes_its_part_of_the_window(self, zone, day, window, hours):
        """A skipped day, or days past the range of instants, raise nothing: they take what of them lies inside."""
        tz = ZoneInfo(zone)
        entries = [TimeOff.days(day)]
        june = Interval(datetime(2026, 6, 2, tzinfo=tz), datetime(2026, 6, 3, tzinfo=tz))

        assert IntervalSet.empty() == time_off_within(entries, tz, june)
        assert timedelta(hours=hours) == time_off_within(entries, tz, Interval(*window)).total_duration
