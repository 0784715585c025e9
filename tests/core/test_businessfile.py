"""Business files: TOML in, checked values out; every problem reported with its location; dump and load agree."""

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slotengine import (
    UNLIMITED,
    Business,
    CancellationPolicy,
    ConfirmationPolicy,
    DateOverride,
    HoldPolicy,
    Interval,
    IntervalSet,
    Money,
    Need,
    Policies,
    RefundTier,
    Resource,
    Schedule,
    Service,
    TimeOff,
    TimeRange,
    WeeklyHours,
)
from slotengine.businessfile import (
    BusinessFile,
    Problem,
    _toml_key,
    _toml_value,
    dumps_business_file,
    load_business_file,
    loads_business_file,
)
from slotengine.errors import BusinessFileError, InvalidInputError
from slotengine.notifications import NotificationRule, Template
from slotengine.schedule import WEEKDAYS

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))
MINIMAL = """
name = "Shop"
zone = "Europe/Paris"
currency = "EUR"
[hours]
weekdays = "09:00-18:00"
[[resources]]
id = "chair"
[[services]]
id = "cut"
duration = "30m"
needs = [{ resources = ["chair"] }]
"""


def problems_of(text):
    with pytest.raises(BusinessFileError) as caught:
        loads_business_file(text, source="test.toml")
    return caught.value.problems


def toml_value(value):
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return _toml_value(value)


def doc_text(doc):
    """A parsed document written back as TOML (inline tables), to mutate documents in tests."""
    return "\n".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in doc.items()) + "\n"


class TestExamples:
    def test_seven_seed_businesses_are_shipped(self):
        """examples/ holds one file per seed business."""
        names = {p.stem for p in EXAMPLES}

        assert {"car-wash", "clinic", "barbershop", "apartment", "car-with-driver", "conference", "excursions"} <= names

    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
    def test_each_example_loads_and_round_trips(self, path):
        """Every shipped example is valid, and writing it back gives a file that loads to the same values."""
        loaded = load_business_file(path)

        assert loaded == loads_business_file(dumps_business_file(loaded))
        assert loaded.services

    def test_clinic_reads_as_written(self):
        """Users, auxiliary resources, breaks and manager-first confirmation come out as the file says."""
        clinic = load_business_file(Path(__file__).parents[2] / "examples" / "clinic.toml")
        roux = next(r for r in clinic.resources if r.id == "dr-roux")
        xray = next(r for r in clinic.resources if r.id == "xray")

        assert "user" == roux.kind.value
        assert (TimeRange("08:00", "10:30"), TimeRange("10:45", "13:00")) == roux.schedule.weekly.on("monday")
        assert "auxiliary" == xray.role.value
        assert "manager_first" == clinic.business.policies.confirmation.mode.value
        assert Money("60.00", "EUR") == clinic.services[0].price


class TestReading:
    def test_minimal_file(self):
        """A name, a zone, hours, one resource and one service make a business."""
        loaded = loads_business_file(MINIMAL)

        assert Business("Shop", "Europe/Paris", Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "18:00")))) == loaded.business
        assert (Resource("chair", "chair"),) == loaded.resources
        assert Need(resource_ids=["chair"]) == loaded.services[0].needs[0]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('"22:00-06:00 next day"', TimeRange("22:00", "06:00")),
            ('"18:00-24:00"', TimeRange("18:00", "00:00")),
            ('"00:00-24:00"', TimeRange("00:00", "00:00")),
            ('"09:00 – 12:30"', TimeRange("09:00", "12:30")),
        ],
    )
    def test_hours_spelling(self, text, expected):
        """Night shifts say 'next day'; 24:00 is the end of the day; an en dash is a dash."""
        loaded = loads_business_file(MINIMAL.replace('weekdays = "09:00-18:00"', f"monday = {text}"))

        assert (expected,) == loaded.business.hours.weekly.on("monday")

    def test_dates_time_off_and_recurring(self):
        """Date overrides, whole-day and timed time off, and recurring hours all read in the business zone."""
        extra = """
[hours.dates]
2026-12-24 = "09:00-12:00"
2026-12-25 = "closed"
[[hours.time_off]]
day = 2026-05-01
[[hours.time_off]]
from = 2026-08-01
to = 2026-08-15
reason = "summer"
[[hours.time_off]]
from = 2026-03-06T12:00:00
to = 2026-03-06T14:00:00+00:00
[[hours.recurring]]
rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA"
first = 2026-03-07
hours = "10:00-14:00"
"""
        text = MINIMAL.replace('weekdays = "09:00-18:00"\n', 'weekdays = "09:00-18:00"\n' + extra)
        hours = loads_business_file(text).business.hours

        assert (DateOverride(date(2026, 12, 24), [TimeRange("09:00", "12:00")]), DateOverride.closed(date(2026, 12, 25))) == hours.overrides
        assert TimeOff.days(date(2026, 5, 1)) == hours.time_off[0]
        assert TimeOff.days(date(2026, 8, 1), date(2026, 8, 15), reason="summer") == hours.time_off[1]
        assert TimeOff(datetime(2026, 3, 6, 11, tzinfo=UTC), datetime(2026, 3, 6, 14, tzinfo=UTC)) == hours.time_off[2]
        assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA" == hours.recurring[0].recurrence.rule

    def test_policies_and_notifications(self):
        """Policies and rules read from their tables; offsets are 'before' or 'after' the start."""
        extra = """
[policies.hold]
ttl = "1h30m"
[policies.confirmation]
mode = "any_order"
deposit_percent = "12.5"
[policies.cancellation]
tiers = [{ before = "2d", refund_percent = 100 }]
otherwise_refund_percent = 10
[[notifications]]
id = "reminder"
before = "2h"
subject = "See you at $business"
body = "$service at $local_time"
services = ["cut"]
"""
        business = loads_business_file(MINIMAL + extra).business

        assert HoldPolicy(ttl=timedelta(minutes=90)) == business.policies.hold
        assert ConfirmationPolicy("any_order", Decimal("12.5")) == business.policies.confirmation
        assert CancellationPolicy(tiers=[RefundTier(timedelta(days=2), 100)], otherwise_percent=10) == business.policies.cancellation
        assert -timedelta(hours=2) == business.rules[0].offset
        assert frozenset({"cut"}) == business.rules[0].service_ids


class TestProblems:
    def test_tiers_without_a_later_refund_are_a_problem(self):
        """A file with refund tiers must say what a later cancellation refunds; it is never taken as 100 % silently."""
        extra = """
[policies.cancellation]
tiers = [{ before = "2d", refund_percent = 100 }]
"""
        [problem] = problems_of(MINIMAL + extra)

        assert "policies.cancellation.otherwise_refund_percent" == problem.location
        assert "must say otherwise_percent" in str(problem)

    def test_every_problem_is_reported_with_its_location(self):
        """A file with many mistakes reports all of them at once, each where it is."""
        text = """
name = "Broken"
zone = "Europe/Paris"
colour = "red"
[hours]
monday = "18:00-09:00"
[[resources]]
id = "box-1"
capacity = 0
[[resources]]
id = "box-1"
[[resources]]
id = "box-3"
[resources.schedule]
tuesday = "9:00-noon"
[[services]]
id = "wash"
duration = 30
price = 25.5
needs = ["boat"]
[[services]]
duration = "1h"
needs = [{ resources = ["ghost"] }]
"""
        found = problems_of(text)
        where = [p.location for p in found]

        assert sorted([
            "colour",
            "hours.monday",
            "resources[0].capacity",
            "resources[1].id",
            "resources[2].schedule.tuesday",
            "services[0].duration",
            "services[0].price",
            "services[0].needs[0]",
            "services[1].id",
            "services[1].needs[0].resources[0]",
        ]) == sorted(where)
        assert "hours.monday: 18:00-09:00 ends before it starts" in [str(p)[: len("hours.monday: 18:00-09:00 ends before it starts")] for p in found]
        assert 10 == len(found)

    @pytest.mark.parametrize(
        ("old", "new", "location", "message"),
        [
            ('duration = "30m"', 'duration = "99999999999d"', "services[0].duration", "longer than the 1970-2200"),
            ('duration = "30m"', 'duration = "30m"\nmin_notice = "99999999999999d"', "services[0].min_notice",
             "longer than the 1970-2200"),
            ('duration = "30m"', 'duration = "30m"\nprice = "1E+30 EUR"', "services[0].price", "too large"),
            ('"09:00-18:00"', '"08.5-18:00"', "hours.weekdays", "not a time of day"),
            ('"09:00-18:00"', '"0900-1800"', "hours.weekdays", "not a time of day"),
            ('"09:00-18:00"', '"09-18"', "hours.weekdays", "not a time of day"),
        ],
    )
    def test_values_out_of_range_or_form_are_located_problems(self, old, new, location, message):
        """A duration past every instant, or a time of day in a form other than HH:MM, is a located problem."""
        found = problems_of(MINIMAL.replace(old, new))

        assert [location] == [p.location for p in found]
        assert message in str(found[0])

    @pytest.mark.parametrize(
        ("old", "new", "location", "message"),
        [
            ('duration = "30m"', 'duration = "' + "9" * 5000 + 'm"', "services[0].duration", "longer than the 1970-2200"),
            ('duration = "30m"', 'duration = "' + "0" * 5000 + '30m"', None, None),
            ('id = "chair"', 'id = "chair"\ncapacity = ' + "9" * 5000, "", "more digits than Python reads"),
            ('id = "chair"', 'id = "chair"\nx = ' + "[" * 5000 + "]" * 5000, "", "nested too deeply"),
            ('id = "chair"', 'id = "chair"\nx = ' + "{a=" * 5000 + "1" + "}" * 5000, "", "nested too deeply"),
            (
                'weekdays = "09:00-18:00"',
                'weekdays = "09:00-18:00"\n[[hours.recurring]]\nrule = "FREQ=DAILY;COUNT=' + "9" * 5000 + '"\nfirst = 2026-01-01\nhours = "10:00-11:00"',
                "hours.recurring[0]",
                "at most 18 digits",
            ),
            (
                'weekdays = "09:00-18:00"',
                'weekdays = "09:00-18:00"\n[[hours.recurring]]\nrule = "FREQ=WEEKLY;BYDAY=1SA"\nfirst = 2026-01-03\nhours = "18:00-22:00"',
                "hours.recurring[0]",
                "BYDAY=1SA is numbered",
            ),
        ],
    )
    def test_huge_or_deep_values_are_problems_not_crashes(self, old, new, location, message):
        """Thousands of digits or of nested brackets give a BusinessFileError, never a raw ValueError or RecursionError."""
        text = MINIMAL.replace(old, new)
        if location is None:  # leading zeros are only zeros
            assert timedelta(minutes=30) == loads_business_file(text).services[0].duration
            return

        found = problems_of(text)

        assert [location] == [p.location for p in found]
        assert message in str(found[0])
        assert len(str(found[0])) < 300

    def test_the_error_lists_every_problem(self):
        """The error's message names the file and every problem, one per line."""
        with pytest.raises(BusinessFileError) as caught:
            loads_business_file(MINIMAL.replace('"30m"', '"soon"').replace('"Europe/Paris"', '"Mars/Olympus"'), source="shop.toml")

        assert caught.value.source == "shop.toml"
        assert str(caught.value).startswith("shop.toml: 2 problems\n")
        assert isinstance(caught.value, InvalidInputError)

    def test_syntax_errors_name_line_and_column(self):
        """TOML that does not parse is reported at its line and column."""
        found = problems_of('name = "x"\nzone = \n')

        assert [Problem("line 2, column 8", "not valid TOML: Invalid value")] == list(found)

    def test_missing_file(self, tmp_path):
        """A file that cannot be read is a BusinessFileError too."""
        with pytest.raises(BusinessFileError, match="cannot be read"):
            load_business_file(tmp_path / "nope.toml")

    def test_typos_get_a_suggestion(self):
        """An unknown key close to a known one is reported with the likely intended key."""
        found = problems_of(MINIMAL.replace('duration = "30m"', 'duraton = "30m"\nduration = "30m"'))

        assert ["services[0].duraton: unknown key; did you mean 'duration'?"] == [str(p) for p in found]

    def test_domain_errors_keep_their_location(self):
        """The library's own validation (min > default duration) is reported at the service, with its text."""
        found = problems_of(MINIMAL.replace('duration = "30m"', 'duration = "30m"\nmin_duration = "1h"'))

        assert 1 == len(found)
        assert found[0].location == "services[0].duration"
        assert "must lie between" in found[0].message


MUTATIONS = [
    (("services", 0, "duration"), 30, "services[0].duration"),
    (("services", 1, "price"), 1.5, "services[1].price"),
    (("resources", 1, "capacity"), 0, "resources[1].capacity"),
    (("hours", "monday"), "18:00-09:00", "hours.monday"),
    (("policies", "hold", "ttl"), "soon", "policies.hold.ttl"),
    (("resources", 2, "schedule", "tuesday"), "25:00-26:00", "resources[2].schedule.tuesday"),
    (("services", 0, "slot_step"), "-5m", "services[0].slot_step"),
    (("policies", "cancellation", "no_show_fee_percent"), 120, "policies.cancellation.no_show_fee_percent"),
    (("services", 1, "needs", 0), "boat", "services[1].needs[0]"),
    (("resources", 0, "kind"), "robot", "resources[0].kind"),
    (("services", 0, "bufer_after"), "10m", "services[0].bufer_after"),
]


class TestProperties:
    @settings(max_examples=40, deadline=None)
    @given(st.sets(st.sampled_from(range(len(MUTATIONS))), min_size=1))
    def test_each_bad_field_yields_one_located_problem(self, chosen):
        """However many fields are spoiled at once, each one is reported, at its own location, and nothing else."""
        doc = tomllib.loads((Path(__file__).parents[2] / "examples" / "car-wash.toml").read_text())
        for index in chosen:
            path, value, _ = MUTATIONS[index]
            target = doc
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value

        found = problems_of(doc_text(doc))

        assert sorted(MUTATIONS[i][2] for i in chosen) == sorted(p.location for p in found)

    @settings(max_examples=60, deadline=None)
    @given(st.data())
    def test_dump_then_load_is_the_identity(self, data):
        """A business built in code, written as a business file and read back, is equal to what was written."""
        value = data.draw(business_files())

        assert value == loads_business_file(dumps_business_file(value))


ZONES = ["Europe/Paris", "Europe/Moscow", "America/New_York", "Asia/Tokyo", "UTC"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=12).filter(str.strip)
IDS = st.text("abcdefghij-0123456789", min_size=1, max_size=8)
MINUTES = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@st.composite
def ranges(draw):
    start, end = draw(MINUTES), draw(MINUTES)
    return TimeRange(start, end)


@st.composite
def schedules(draw, zone):
    weekly = {day: draw(st.lists(ranges(), max_size=2)) for day in draw(st.sets(st.integers(0, 6)))}
    days = draw(st.sets(st.dates(date(2025, 1, 1), date(2030, 12, 31)), max_size=2))
    overrides = [DateOverride(d, draw(st.lists(ranges(), max_size=2))) for d in days]
    time_off = []
    for _ in range(draw(st.integers(0, 2))):
        first = draw(st.dates(date(2025, 1, 1), date(2030, 12, 31)))
        if draw(st.booleans()):
            time_off.append(TimeOff.days(first, first + timedelta(days=draw(st.integers(0, 5))), reason=draw(st.just("") | TEXT)))
        else:
            start = datetime.combine(first, draw(MINUTES), UTC)
            time_off.append(TimeOff(start, start + timedelta(minutes=draw(st.integers(1, 5000)))))
    return Schedule(zone, WeeklyHours(weekly), overrides=overrides, time_off=time_off)


DURATIONS = st.integers(1, 600).map(lambda m: timedelta(minutes=m))


@st.composite
def business_files(draw):
    zone = draw(st.sampled_from(ZONES))
    rules = []
    if draw(st.booleans()):
        rules.append(NotificationRule("info", Template("Hello $business", draw(TEXT).replace("$", "$$")), on=["created"]))
    if draw(st.booleans()):
        rules.append(NotificationRule("remind", Template("Soon", "$service"), offset=-draw(DURATIONS), channel="sms"))
    policies = Policies(
        hold=HoldPolicy(ttl=draw(DURATIONS)),
        cancellation=CancellationPolicy(
            tiers=[RefundTier(timedelta(hours=h), p) for h, p in draw(st.dictionaries(st.integers(0, 96), st.integers(0, 100), max_size=3)).items()],
            otherwise_percent=draw(st.integers(0, 100)),
        ),
        allow_override=draw(st.booleans()),
    )
    business = Business(draw(TEXT), zone, draw(schedules(zone)), policies, rules=rules, language=draw(st.sampled_from(["en", "fr"])))
    resources = []
    for kind in ("resource", "user"):
        for rid in draw(st.lists(IDS, min_size=kind == "resource", max_size=3, unique=True)):
            if any(r.id == rid for r in resources):
                continue
            own = draw(st.none() | st.sampled_from(ZONES).flatmap(schedules))
            resources.append(
                Resource(
                    rid,
                    draw(TEXT),
                    kind=kind,
                    type=draw(st.sampled_from(["box", "barber", ""])),
                    capacity=draw(st.integers(1, 20) | st.just(UNLIMITED)),
                    attributes=draw(st.dictionaries(st.sampled_from(["city", "seats", "vip"]), st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), max_size=5) | st.integers(-5, 99) | st.booleans(), max_size=2)),
                    schedule=own,
                    zone=None if own is not None else draw(st.none() | st.sampled_from(ZONES)),
                )
            )
    resources = list(draw(st.permutations(resources)))  # users and resources interleaved: their order is kept
    services = []
    if resources:  # a business file describes at least one service
        for sid in draw(st.lists(IDS, min_size=1, max_size=3, unique=True)):
            duration = draw(DURATIONS)
            services.append(
                Service(
                    sid,
                    draw(TEXT),
                    needs=[Need(resource_ids=[draw(st.sampled_from(resources)).id], label=draw(st.just("") | TEXT))],
                    duration=duration,
                    slot_step=draw(st.none() | DURATIONS),
                    buffer_after=draw(st.just(timedelta(0)) | DURATIONS),
                    price=draw(st.none() | st.integers(0, 10_000).map(lambda c: Money(Decimal(c).scaleb(-2), "EUR"))),
                )
            )
    return BusinessFile(business, resources, services)


NIGHT_DESK = """
name = "Night desk"
zone = "Europe/Paris"
currency = "EUR"
[hours]
{hours}
[[resources]]
id = "desk"
[[services]]
id = "slot"
duration = "30m"
needs = [{{ resources = ["desk"] }}]
"""


def expand_file(text, first, last):
    """The instants a business file's hours are open from local midnight on *first* to local midnight on *last*."""
    schedule = loads_business_file(text).business.hours
    return schedule.expand(Interval(datetime.combine(first, time(0), schedule.tz), datetime.combine(last, time(0), schedule.tz)))


def clock(minutes):
    return "24:00" if minutes == 24 * 60 else f"{minutes // 60:02}:{minutes % 60:02}"


HALF_HOURS = st.integers(0, 47).map(lambda n: n * 30)


@st.composite
def hours_texts(draw):
    """A range of hours as a business file writes it: same day, up to 24:00, or into the next day."""
    start = draw(HALF_HOURS)
    if draw(st.booleans()):
        return f"{clock(start)}-{clock(draw(st.integers(start // 30 + 1, 48)) * 30)}"
    return f"{clock(start)}-{clock(draw(st.integers(0, start // 30)) * 30)} next day"


@st.composite
def break_texts(draw):
    """A break: a range of the day that ends before midnight."""
    start = draw(st.integers(0, 46)) * 30
    return f"{clock(start)}-{clock(draw(st.integers(start // 30 + 1, 47)) * 30)}"


class TestBreaks:
    def test_a_break_after_midnight_is_cut_from_every_night(self):
        """A night shift's break after midnight is cut from every night (it was ignored: open 02:00-02:30)."""
        text = NIGHT_DESK.format(hours='every_day = "22:00-06:00 next day"\nbreaks = ["02:00-02:30", "23:00-23:30"]')
        paris = ZoneInfo("Europe/Paris")

        opened = expand_file(text, date(2027, 10, 25), date(2027, 11, 2))  # through the fall-back night
        pieces = (((0, time(22)), (0, time(23))), ((0, time(23, 30)), (1, time(2))), ((1, time(2, 30)), (1, time(6))))
        nights = IntervalSet(
            Interval(
                datetime.combine(night + timedelta(days=start_day), start, paris),
                datetime.combine(night + timedelta(days=end_day), end, paris),
            )
            for night in (date(2027, 10, 24) + timedelta(days=n) for n in range(9))
            for (start_day, start), (end_day, end) in pieces
        )
        window = Interval(datetime(2027, 10, 25, tzinfo=paris), datetime(2027, 11, 2, tzinfo=paris))

        assert nights & IntervalSet([window]) == opened

    def test_the_end_of_the_night_belongs_to_the_night(self):
        """With a break after midnight, a closed date keeps the end of the night before, and loses its own night's end."""
        text = NIGHT_DESK.format(
            hours='every_day = "22:00-06:00 next day"\nbreaks = ["02:00-02:30"]\n[hours.dates]\n2026-12-25 = "closed"'
        )
        paris = ZoneInfo("Europe/Paris")

        opened = expand_file(text, date(2026, 12, 25), date(2026, 12, 27))

        assert IntervalSet.of(datetime(2026, 12, 25, 0, tzinfo=paris), datetime(2026, 12, 25, 2, tzinfo=paris)) | IntervalSet.of(
            datetime(2026, 12, 25, 2, 30, tzinfo=paris), datetime(2026, 12, 25, 6, tzinfo=paris)
        ) | IntervalSet.of(datetime(2026, 12, 26, 22, tzinfo=paris), datetime(2026, 12, 27, tzinfo=paris)) == opened

    def test_a_break_that_cuts_nothing_is_a_problem(self):
        """A break outside every range of hours is reported where it is written (it was silently ignored)."""
        found = problems_of(NIGHT_DESK.format(hours='weekdays = "09:00-18:00"\nbreaks = ["12:30-13:00", "19:00-19:30"]'))

        assert ["hours.breaks[1]"] == [p.location for p in found]
        assert "19:00-19:30 cuts nothing" in found[0].message

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.lists(hours_texts(), max_size=2), min_size=7, max_size=7),
        st.dictionaries(st.dates(date(2026, 6, 8), date(2026, 6, 14)), st.lists(hours_texts(), max_size=2), max_size=3),
        st.lists(break_texts(), min_size=1, max_size=3),
    )
    def test_breaks_are_cut_from_every_day(self, week, dates, breaks):
        """
        The hours with breaks are the hours without them, less every break on every day, night shifts' mornings included.

        In UTC wall time and instants agree, so the cut is checked exactly (DST is the schedule's own rule). A break
        that cuts nothing from the hours of any day is the only problem, and it is reported.
        """
        days = "\n".join(f"{name} = {toml_value(ranges or 'closed')}" for name, ranges in zip(WEEKDAYS, week, strict=True))
        overrides = "\n".join(f"{day} = {toml_value(ranges or 'closed')}" for day, ranges in dates.items())
        plain = NIGHT_DESK.replace("Europe/Paris", "UTC").format(hours=f"{days}\n[hours.dates]\n{overrides}")
        with_breaks = plain.replace("[hours.dates]", f"breaks = {toml_value(breaks)}\n[hours.dates]")
        first, last = date(2026, 5, 25), date(2026, 6, 29)  # five weeks around the dates
        cuts = [
            IntervalSet(
                Interval(datetime.combine(first + timedelta(days=n), time.fromisoformat(b[:5]), UTC),
                         datetime.combine(first + timedelta(days=n), time.fromisoformat(b[6:]), UTC))
                for n in range(-1, (last - first).days + 1)
            )
            for b in breaks
        ]

        without = expand_file(plain, first, last)
        idle = [f"hours.breaks[{i}]" for i, cut in enumerate(cuts) if not without & cut]
        if idle:
            assert idle == [p.location for p in problems_of(with_breaks)]
        else:
            expected = without
            for cut in cuts:
                expected -= cut
            assert expected == expand_file(with_breaks, first, last)


def opened_on(text, day):
    """The ranges a business file's hours are open on local *day*, as ("HH:MM", "HH:MM") pairs."""
    schedule = loads_business_file(text).business.hours
    start = datetime.combine(day, time(0), schedule.tz)
    spans = schedule.expand(Interval(start, start + timedelta(days=1)))
    return [(s.start.astimezone(schedule.tz).strftime("%H:%M"), s.end.astimezone(schedule.tz).strftime("%H:%M")) for s in spans]


FIRST_SATURDAYS = 'every_day = "09:00-20:00"\nbreaks = ["19:00-19:30"]\n[[hours.recurring]]\nrule = "FREQ=MONTHLY;BYDAY=1SA"\nfirst = 2026-01-03\nhours = "18:00-22:00"'


class TestBreaksInRecurringHours:
    def test_a_break_is_cut_from_recurring_openings(self):
        """A break is cut from the hours a recurring rule adds, as from every day's (the evening was open through it)."""
        text = NIGHT_DESK.format(hours=FIRST_SATURDAYS)

        assert [("09:00", "19:00"), ("19:30", "22:00")] == opened_on(text, date(2026, 1, 3))
        assert [("09:00", "19:00"), ("19:30", "20:00")] == opened_on(text, date(2026, 1, 10))

    def test_a_break_meant_for_recurring_hours_cuts_something(self):
        """A break that only recurring hours reach is cut from them, not reported as lying outside every range."""
        text = NIGHT_DESK.format(
            hours='weekdays = "09:00-17:00"\nbreaks = ["19:00-19:30"]\n[[hours.recurring]]\nrule = "FREQ=WEEKLY;BYDAY=SA"\n'
            'first = 2026-01-03\nhours = "18:00-22:00"'
        )

        assert [("18:00", "19:00"), ("19:30", "22:00")] == opened_on(text, date(2026, 1, 10))

    def test_the_pieces_recur_on_the_same_days(self):
        """Every piece keeps the rule's days: its except days, and the last day of a timed UNTIL (19:30 is after 19:00)."""
        text = NIGHT_DESK.format(
            hours='weekdays = "09:00-17:00"\nbreaks = ["19:00-19:30"]\n[[hours.recurring]]\n'
            'rule = "FREQ=WEEKLY;BYDAY=SA;UNTIL=20260124T190000"\nfirst = 2026-01-03\nhours = "18:00-22:00"\nexcept = [2026-01-10]'
        )
        loaded = loads_business_file(text)

        assert [[], [("18:00", "19:00"), ("19:30", "22:00")], []] == [opened_on(text, date(2026, 1, d)) for d in (10, 24, 31)]
        assert loaded == loads_business_file(dumps_business_file(loaded))

    def test_a_break_after_midnight_of_recurring_night_hours_is_a_problem(self):
        """The morning of a recurring night cannot be cut (it is on days the rule does not name): a problem at its hours."""
        found = problems_of(
            NIGHT_DESK.format(
                hours='weekdays = "09:00-17:00"\nbreaks = ["02:00-02:30"]\n[[hours.recurring]]\nrule = "FREQ=WEEKLY;BYDAY=SA"\n'
                'first = 2026-01-03\nhours = "22:00-06:00 next day"'
            )
        )

        assert ["hours.recurring[0].hours"] == [p.location for p in found]
        assert "after midnight" in found[0].message

    def test_closures_are_not_cut_and_do_not_use_a_break(self):
        """A recurring closure opens nothing: a break that only a closure reaches cuts nothing."""
        found = problems_of(
            NIGHT_DESK.format(
                hours='weekdays = "09:00-17:00"\nbreaks = ["19:00-19:30"]\n[[hours.recurring]]\nrule = "FREQ=WEEKLY;BYDAY=SA"\n'
                'first = 2026-01-03\nhours = "18:00-22:00"\nclosed = true'
            )
        )

        assert ["hours.breaks[0]"] == [p.location for p in found]

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.lists(hours_texts(), max_size=1), min_size=7, max_size=7),
        st.lists(
            st.tuples(
                st.sampled_from(["FREQ=WEEKLY;BYDAY=SA", "FREQ=DAILY;INTERVAL=3", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"]),
                st.integers(0, 6),
                hours_texts(),
            ),
            min_size=1,
            max_size=2,
        ),
        st.lists(break_texts(), min_size=1, max_size=2),
    )
    def test_no_open_minute_falls_in_a_break(self, week, rules, breaks):
        """
        With recurring hours, the hours with breaks are the hours without them less every break on every day.

        The problems are exactly the breaks that cut nothing and the recurring nights a break cuts after midnight,
        and a file that loads writes back to itself.
        """
        days = "\n".join(f"{name} = {toml_value(ranges or 'closed')}" for name, ranges in zip(WEEKDAYS, week, strict=True))
        first, last = date(2026, 5, 25), date(2026, 6, 29)
        recurring = "".join(
            f'\n[[hours.recurring]]\nrule = "{rule}"\nfirst = {first + timedelta(days=shift)}\nhours = "{hours}"'
            for rule, shift, hours in rules
        )
        plain = NIGHT_DESK.replace("Europe/Paris", "UTC").format(hours=f"{days}{recurring}")
        with_breaks = plain.replace(recurring, f"\nbreaks = {toml_value(breaks)}{recurring}", 1)
        minutes = [(int(b[:2]) * 60 + int(b[3:5]), int(b[6:8]) * 60 + int(b[9:11])) for b in breaks]
        cuts = [
            IntervalSet(
                Interval(datetime.combine(first + timedelta(days=n), time(0), UTC) + timedelta(minutes=lo),
                         datetime.combine(first + timedelta(days=n), time(0), UTC) + timedelta(minutes=hi))
                for n in range(-1, (last - first).days + 1)
            )
            for lo, hi in minutes
        ]

        without = expand_file(plain, first, last)
        problems = [f"hours.breaks[{i}]" for i, cut in enumerate(cuts) if not without & cut]
        problems += [f"hours.recurring[{j}].hours" for j, (_, _, hours) in enumerate(rules) if _morning_is_cut(hours, minutes)]
        if problems:
            assert sorted(problems) == sorted(p.location for p in problems_of(with_breaks))
        else:
            expected = without
            for cut in cuts:
                expected -= cut
            assert expected == expand_file(with_breaks, first, last)
            loaded = loads_business_file(with_breaks)
            assert loaded == loads_business_file(dumps_business_file(loaded))


def _morning_is_cut(hours, breaks):
    """Whether *breaks* (minutes of the day) leave a piece of the range *hours* that starts after midnight."""
    start = int(hours[:2]) * 60 + int(hours[3:5])
    end = int(hours[6:8]) * 60 + int(hours[9:11]) + (24 * 60 if "next day" in hours else 0)
    opened = set(range(start, end))
    for lo, hi in breaks:
        opened -= set(range(lo, hi)) | set(range(lo + 24 * 60, hi + 24 * 60))
    starts = [m for m in opened if m - 1 not in opened]
    return any(m >= 24 * 60 for m in starts)


class TestNotificationProblems:
    @pytest.mark.parametrize(
        ("offset", "location"),
        [("before = 30", "notifications[0].before"), ('after = "2 hours"', "notifications[0].after")],
    )
    def test_an_unreadable_offset_is_the_only_problem(self, offset, location):
        """An offset that cannot be read is reported where it is, without a false 'neither events nor offset' at 'on'."""
        found = problems_of(MINIMAL + f'[[notifications]]\nid = "r"\nsubject = "s"\nbody = "b"\n{offset}\n')

        assert [location] == [p.location for p in found]


class TestCheckTimes:
    @pytest.mark.parametrize(
        ("extra", "location"),
        [
            ('check_in = "14:00"', "services[0].check_in"),
            ('check_out = "11:00"', "services[0].check_out"),
            ('unit = "nights"\ncheck_in = "15:00"', "services[0].check_out"),
            ('unit = "nights"\ncheck_out = "11:00"', "services[0].check_in"),
        ],
    )
    def test_check_times_are_both_given_and_only_for_nights(self, extra, location):
        """A check-in or check-out time on a service in minutes, or one without the other, is a problem at that key."""
        text = MINIMAL.replace('duration = "30m"', f'duration = "30m"\n{extra}').replace('"30m"\nunit = "nights"', '"1d"\nunit = "nights"')

        assert [location] == [p.location for p in problems_of(text)]

    @settings(max_examples=50, deadline=None)
    @given(
        st.times().map(lambda t: t.replace(fold=0)),
        st.times().map(lambda t: t.replace(fold=0)),
        st.integers(1, 14),
    )
    def test_dump_then_load_keeps_check_times(self, check_in, check_out, nights):
        """A stay's check-in and check-out times, to the microsecond, are written and read back unchanged."""
        check_out, check_in = sorted((check_in, check_out))  # out at or before in: stays must not overlap
        stay = Service("stay", "Stay", needs=[Need(resource_ids=["flat"])], duration=timedelta(days=nights), unit="nights",
                       check_in=check_in, check_out=check_out)
        hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "18:00")))
        value = BusinessFile(Business("Flats", "Europe/Paris", hours), [Resource("flat", "Flat")], [stay])

        back = loads_business_file(dumps_business_file(value))

        assert value == back
        assert (check_in, check_out) == (back.services[0].check_in, back.services[0].check_out)


class TestKeys:
    @settings(max_examples=200, deadline=None)
    @given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12))
    @example("seats\n")
    @example("a-b_C9")
    def test_every_key_is_written_as_toml_reads_it(self, key):
        """A key is written bare only when TOML reads it bare ('seats\\n' was written bare, and the file did not parse)."""
        assert {key: 1} == tomllib.loads(f"{_toml_key(key)} = 1\n")

    def test_an_attribute_name_ending_in_a_newline_round_trips(self):
        """A resource and a need whose attribute name ends in a newline are written as a file that reads back equal."""
        hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "18:00")))
        box = Resource("box", "Box", type="box", attributes={"seats\n": 4})
        wash = Service("wash", "Wash", needs=[Need(type="box", attributes={"seats\n": 4})], duration=timedelta(minutes=30))
        shop = BusinessFile(Business("Shop", "Europe/Paris", hours), [box], [wash])

        assert shop == loads_business_file(dumps_business_file(shop))


class TestAttributeKinds:
    @pytest.mark.parametrize(
        ("resource", "need"),
        [("1", "true"), ("true", "1"), ('"yes"', "true"), ('"1"', "1"), ("0", "false")],
    )
    def test_a_need_matches_only_a_value_of_its_own_kind(self, resource, need):
        """covered = true matches no box whose covered is 1 (Python counts True == 1), nor the reverse."""
        text = MINIMAL.replace('id = "chair"', f'id = "chair"\nattributes = {{ covered = {resource} }}').replace(
            '{ resources = ["chair"] }', f'{{ resources = ["chair"], attributes = {{ covered = {need} }} }}'
        )

        found = problems_of(text)

        assert ["services[0].needs[0]"] == [p.location for p in found]
        assert "no resource or user matches" in found[0].message


class TestServicesList:
    def test_an_empty_list_of_services_is_a_problem(self):
        """services = [] describes no service: a problem at services, as a missing [[services]] table is."""
        text = "services = []\n" + MINIMAL[: MINIMAL.index("[[services]]")]

        found = problems_of(text)

        assert ["services"] == [p.location for p in found]


def test_a_break_within_a_second_is_refused_at_the_break():
    """A break ending at 12:30:00.5 is refused at hours.breaks[0] (it was blamed on a 'dtstart' the file never had)."""
    text = MINIMAL.replace('weekdays = "09:00-18:00"', 'weekdays = "09:00-18:00"\nbreaks = ["12:00-12:30:00.5"]')

    [problem] = problems_of(text)

    assert "hours.breaks[0]" == problem.location
    assert "whole seconds" in problem.message
