"""Calendar files: DST-correct times with a VTIMEZONE, stable UIDs, statuses, stays and feeds (RFC 5545)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotengine.adapters.memory import MemoryStorage
from slotengine.authorization import Actor
from slotengine.availability import Assignment
from slotengine.booking import Booking
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import BookingStatus
from slotengine.model import Need, Resource, Service, ServiceUnit
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing import FrozenClock

icalendar = pytest.importorskip("icalendar", reason="install slotengine[ical] (icalendar) to test calendar files")

from slotengine.ical import agenda_feed, booking_calendar, booking_event, booking_uid, event_status  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
CREATED = datetime(2026, 3, 1, 9, tzinfo=UTC)


def booking(start: datetime, end: datetime, status: BookingStatus = BookingStatus.CONFIRMED, **fields) -> Booking:
    hold = {"hold_until": CREATED + timedelta(minutes=30)} if status is BookingStatus.PRE_BOOKING else {}
    return Booking(
        fields.pop("id", "b1"),
        "wash",
        start,
        end,
        [Assignment(0, "box", ("box1",))],
        (1,),
        status,
        CREATED,
        **hold,
        **fields,
    )


def calendar(b: Booking, **kwargs) -> icalendar.Calendar:
    options = {
        "business": "Car wash",
        "service_name": "Wash",
        "resource_names": ["Box 1"],
        "organizer": "bookings@wash.example",
        "attendee": "ann@client.example",
        "zone": "Europe/Paris",
        "tenant": "wash",
        **kwargs,
    }
    return icalendar.Calendar.from_ical(booking_calendar(b, **options))


def instants(event) -> tuple[datetime, datetime]:
    return event.decoded("DTSTART").astimezone(UTC), event.decoded("DTEND").astimezone(UTC)


class FileZone:
    """
    A VTIMEZONE read from its own STANDARD and DAYLIGHT components, never from the tz database.

    icalendar's ``to_tz()`` returns zoneinfo's zone for a TZID it knows and ignores the components, so it
    cannot tell a wrong VTIMEZONE from a right one. Each onset is its DTSTART or an RDATE (or an RRULE
    occurrence), a wall time on the clock of TZOFFSETFROM (RFC 5545, 3.6.5); TZOFFSETTO holds from it on.
    """

    def __init__(self, vtimezone) -> None:
        from dateutil.rrule import rrulestr

        onsets: list[tuple[datetime, timedelta, timedelta]] = []
        for part in vtimezone.subcomponents:
            assert part.name in {"STANDARD", "DAYLIGHT"}
            offset_from, offset_to = part.decoded("TZOFFSETFROM"), part.decoded("TZOFFSETTO")
            start = part.decoded("DTSTART")
            walls = [start]
            rdates = part.get("RDATE", [])
            for value in rdates if isinstance(rdates, list) else [rdates]:
                walls += [d.dt for d in value.dts]
            if "RRULE" in part:
                rule = rrulestr(part["RRULE"].to_ical().decode(), dtstart=start)
                walls += list(rule.between(start, datetime(2300, 1, 1), inc=True))
            onsets += [((w - offset_from).replace(tzinfo=UTC), offset_from, offset_to) for w in walls]
        self.onsets = sorted(onsets)

    def offset_at(self, instant: datetime) -> timedelta | None:
        """The offset in force at *instant* by the file, or None before its first onset."""
        found = None
        for onset, _, offset_to in self.onsets:
            if onset > instant:
                break
            found = offset_to
        return found

    def instant_of(self, wall: datetime) -> datetime:
        """The first instant whose wall time on the file's clock is *wall* (RFC 5545 reads a fold's first pass)."""
        candidates = sorted({(wall - o).replace(tzinfo=UTC) for _, a, b in self.onsets for o in (a, b)})
        matching = [c for c in candidates if c + self.offset_at(c) == wall.replace(tzinfo=UTC)]
        assert matching, f"{wall} is not on the file's clock"
        return matching[0]


def offsets_by_vtimezone(cal, event) -> tuple[timedelta, timedelta]:
    """The UTC offsets of DTSTART and DTEND computed from the file's own VTIMEZONE, not from the tz database."""
    [vtimezone] = cal.walk("VTIMEZONE")
    zone = FileZone(vtimezone)
    out = []
    for key in ("DTSTART", "DTEND"):
        instant = zone.instant_of(event.decoded(key).replace(tzinfo=None))
        out.append(zone.offset_at(instant))
    return out[0], out[1]


class TestTimes:
    def test_across_the_march_change_in_paris(self):
        """A booking from Saturday 23:00 to Sunday 04:00 on 28-29 March 2026 lasts 4 hours, not 5."""
        start = datetime(2026, 3, 28, 23, tzinfo=PARIS)
        end = datetime(2026, 3, 29, 4, tzinfo=PARIS)
        cal = calendar(booking(start, end))
        [event] = cal.walk("VEVENT")

        assert timedelta(hours=4) == end.astimezone(UTC) - start.astimezone(UTC)
        assert (start, end) == instants(event)
        assert ("Europe/Paris", "Europe/Paris") == (event["DTSTART"].params["TZID"], event["DTEND"].params["TZID"])
        assert b"DTSTART;TZID=Europe/Paris:20260328T230000" in cal.to_ical()
        assert b"DTEND;TZID=Europe/Paris:20260329T040000" in cal.to_ical()
        assert (timedelta(hours=1), timedelta(hours=2)) == offsets_by_vtimezone(cal, event)

    def test_vtimezone_is_present_and_names_the_zone(self):
        """The calendar carries a VTIMEZONE for the zone of its TZIDs, with the 2026 switch to summer time."""
        cal = calendar(booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS)))
        [vtimezone] = cal.walk("VTIMEZONE")
        text = vtimezone.to_ical()

        assert "Europe/Paris" == str(vtimezone["TZID"])
        assert b"TZOFFSETTO:+0200" in text
        assert b"20260329T020000" in text  # the onset on the clock before it (RFC 5545, 3.6.5)
        assert [c.name for c in cal.subcomponents] == ["VTIMEZONE", "VEVENT"]

    def test_calendar_header(self):
        """PRODID, VERSION 2.0 and METHOD are there."""
        cal = calendar(booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS)))

        assert ("2.0", "REQUEST") == (str(cal["VERSION"]), str(cal["METHOD"]))
        assert "slotengine" in str(cal["PRODID"])

    def test_the_repeated_hour_in_october(self):
        """The second 02:30 of 25 October 2026 (CET) cannot be written with a TZID, so it is written in UTC."""
        first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
        second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, an hour later
        for start in (first, second):
            cal = calendar(booking(start, start + timedelta(minutes=45)))
            [event] = cal.walk("VEVENT")

            assert (start, start + timedelta(minutes=45)) == instants(event)
        # the first 02:30 keeps its TZID; an end in the second pass puts both in UTC
        assert (
            b"DTSTART;TZID=Europe/Paris:20261025T023000"
            in calendar(booking(first, first + timedelta(minutes=20))).to_ical()
        )
        assert b"DTSTART:20261025T003000Z" in calendar(booking(first, first + timedelta(hours=1))).to_ical()

    def test_another_zone_for_the_client(self):
        """Written in the client's zone (New York), the instants are the same."""
        start = datetime(2026, 3, 10, 9, tzinfo=PARIS)  # New York is already on summer time, Paris not yet
        cal = calendar(booking(start, start + timedelta(hours=1)), zone="America/New_York")
        [event] = cal.walk("VEVENT")

        assert (start, start + timedelta(hours=1)) == instants(event)
        assert b"DTSTART;TZID=America/New_York:20260310T040000" in cal.to_ical()
        assert (timedelta(hours=-4), timedelta(hours=-4)) == offsets_by_vtimezone(cal, event)

    def test_unknown_zone(self):
        with pytest.raises(InvalidInputError):
            calendar(booking(CREATED, CREATED + timedelta(hours=1)), zone="Mars/Olympus")


class TestStay:
    def test_a_nightly_stay_across_the_change(self):
        """A two-night stay booked through the engine, 28-30 March: check-in 15:00, check-out 11:00, 43 hours."""
        clock = FrozenClock(datetime(2026, 3, 2, 8, tzinfo=PARIS))
        engine = BookingEngine(MemoryStorage(), clock=clock, tenant="flats", default_actor=Actor.system("tests"))
        hours = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange(time(0), time(0))))
        engine.setup(Business("Old Port apartments", "Europe/Paris", hours))
        engine.add_resource(Resource("apt-3", "Apartment 3", type="apartment"))
        engine.add_service(
            Service(
                "stay",
                "Nightly stay",
                needs=[Need(type="apartment")],
                duration=timedelta(days=1),
                max_duration=timedelta(days=14),
                unit=ServiceUnit.NIGHTS,
                check_in=time(15),
                check_out=time(11),
            )
        )
        stay = engine.book("stay", datetime(2026, 3, 28, 15, tzinfo=PARIS), duration=timedelta(days=2))

        cal = calendar(stay, business="Old Port apartments", service_name="Nightly stay", tenant=engine.tenant)
        [event] = cal.walk("VEVENT")

        assert timedelta(hours=43) == stay.end - stay.start
        assert (stay.start, stay.end) == instants(event)
        assert datetime(2026, 3, 28, 15) == event.decoded("DTSTART").replace(tzinfo=None)
        assert datetime(2026, 3, 30, 11) == event.decoded("DTEND").replace(tzinfo=None)
        assert (timedelta(hours=1), timedelta(hours=2)) == offsets_by_vtimezone(cal, event)
        assert f"{stay.id}@flats.slotengine" == str(event["UID"])


class TestIdentityAndStatus:
    def test_uid_is_stable_and_sequence_is_the_version(self):
        """Every version of a booking has one UID; SEQUENCE follows its version."""
        start = datetime(2026, 3, 30, 9, tzinfo=PARIS)
        v1 = booking(start, start + timedelta(hours=1), version=1)
        v3 = booking(start + timedelta(hours=2), start + timedelta(hours=3), version=3)
        [e1] = calendar(v1).walk("VEVENT")
        [e3] = calendar(v3).walk("VEVENT")

        assert str(e1["UID"]) == str(e3["UID"]) == "b1@wash.slotengine"
        assert (1, 3) == (int(e1["SEQUENCE"]), int(e3["SEQUENCE"]))

    def test_uid_of_unusual_ids(self):
        """Ids with spaces, @ or non-ASCII still make one plain UID, different per tenant."""
        assert "a%20b%40c@t%C3%A9.slotengine" == booking_uid("a b@c", "té")
        assert booking_uid("x", "one") != booking_uid("x", "two")

    @pytest.mark.parametrize(
        ("status", "expected", "method"),
        [
            (BookingStatus.PRE_BOOKING, "TENTATIVE", "REQUEST"),
            (BookingStatus.CONFIRMED, "CONFIRMED", "REQUEST"),
            (BookingStatus.PAID, "CONFIRMED", "REQUEST"),
            (BookingStatus.COMPLETED, "CONFIRMED", "REQUEST"),
            (BookingStatus.NO_SHOW, "CONFIRMED", "REQUEST"),
            (BookingStatus.CANCELLED, "CANCELLED", "CANCEL"),
            (BookingStatus.EXPIRED, "CANCELLED", "CANCEL"),
        ],
    )
    def test_status_and_default_method(self, status, expected, method):
        """A cancelled booking's file is a CANCEL with STATUS:CANCELLED; a pre-booking is TENTATIVE."""
        b = booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS), status)
        cal = calendar(b)
        [event] = cal.walk("VEVENT")

        assert (expected, method) == (str(event["STATUS"]), str(cal["METHOD"]))
        assert expected == event_status(b)

    def test_cancel_method_forces_cancelled(self):
        """METHOD:CANCEL for a live booking (the business withdraws it) still says STATUS:CANCELLED."""
        b = booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS))
        cal = calendar(b, method="cancel")

        assert ("CANCEL", "CANCELLED") == (str(cal["METHOD"]), str(cal.walk("VEVENT")[0]["STATUS"]))
        with pytest.raises(InvalidInputError, match="method"):
            calendar(b, method="REFRESH")

    def test_organizer_attendee_and_text(self):
        """ORGANIZER and ATTENDEE are mailto: addresses; SUMMARY and DESCRIPTION name the service and who serves."""
        b = booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS))
        [event] = calendar(b, location="12 rue de la Paix").walk("VEVENT")

        assert "mailto:bookings@wash.example" == str(event["ORGANIZER"])
        assert "Car wash" == event["ORGANIZER"].params["CN"]
        assert "mailto:ann@client.example" == str(event["ATTENDEE"])
        assert "Wash – Car wash" == str(event["SUMMARY"])
        assert "With Box 1" in str(event["DESCRIPTION"])
        assert "12 rue de la Paix" == str(event["LOCATION"])
        assert CREATED == event.decoded("DTSTAMP")
        with pytest.raises(InvalidInputError):
            calendar(b, organizer=" ")

    def test_event_alone(self):
        """booking_event gives the VEVENT to put in a calendar of one's own; no attendee if none is given."""
        b = booking(datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS))
        stamp = datetime(2026, 3, 5, 12, tzinfo=UTC)
        event = booking_event(
            b, business="Car wash", service_name="Wash", organizer="mailto:desk@wash.example", zone="UTC", stamp=stamp
        )

        assert "ATTENDEE" not in event
        assert "b1@default.slotengine" == str(event["UID"])
        assert stamp == event.decoded("DTSTAMP")
        assert (b.start, b.end) == instants(event)


class TestFeed:
    def test_a_resource_agenda_as_one_feed(self):
        """Several bookings, sorted, one VTIMEZONE, METHOD:PUBLISH, no attendee, names looked up by id."""
        day = datetime(2026, 3, 30, 9, tzinfo=PARIS)
        later = booking(day + timedelta(hours=3), day + timedelta(hours=4), id="b2")
        earlier = booking(day, day + timedelta(hours=1), id="b1")
        gone = booking(day + timedelta(hours=5), day + timedelta(hours=6), BookingStatus.CANCELLED, id="b3")

        feed = icalendar.Calendar.from_ical(
            agenda_feed(
                [later, gone, earlier],
                business="Car wash",
                service_names={"wash": "Wash"},
                resource_names={"box1": "Box 1"},
                organizer="bookings@wash.example",
                zone="Europe/Paris",
                tenant="wash",
                name="Box 1",
            )
        )
        events = feed.walk("VEVENT")

        assert ("PUBLISH", "Box 1") == (str(feed["METHOD"]), str(feed["X-WR-CALNAME"]))
        assert 1 == len(feed.walk("VTIMEZONE"))
        assert ["b1@wash.slotengine", "b2@wash.slotengine", "b3@wash.slotengine"] == [str(e["UID"]) for e in events]
        assert ["CONFIRMED", "CONFIRMED", "CANCELLED"] == [str(e["STATUS"]) for e in events]
        assert not any("ATTENDEE" in e for e in events)
        assert all("With Box 1" in str(e["DESCRIPTION"]) for e in events)

    def test_an_empty_feed_is_valid(self):
        feed = icalendar.Calendar.from_ical(
            agenda_feed(
                [], business="Car wash", service_names={}, resource_names={}, organizer="b@wash.example", zone="UTC"
            )
        )

        assert [] == feed.walk("VEVENT")
        assert "2.0" == str(feed["VERSION"])


def test_without_icalendar_it_says_what_to_install(monkeypatch):
    """`import slotengine.ical` works without icalendar; using it says to install slotengine[ical]."""
    monkeypatch.setitem(sys.modules, "icalendar", None)
    b = booking(CREATED, CREATED + timedelta(hours=1))

    with pytest.raises(ImportError, match=r"slotengine\[ical\]"):
        booking_calendar(b, business="x", service_name="y", organizer="a@b.example", zone="UTC")
    with pytest.raises(ImportError, match=r"slotengine\[ical\]"):
        agenda_feed([b], business="x", service_names={}, resource_names={}, organizer="a@b.example", zone="UTC")


def test_importing_the_module_needs_no_icalendar():
    import subprocess

    code = "import sys; sys.modules['icalendar'] = None; import slotengine.ical; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert "ok" == out.strip()


def _zoneinfo_changes(zone: str, first: datetime, last: datetime) -> list[datetime]:
    """Every instant *zone*'s offset changes from *first* to *last*: an hourly scan bisected to the second."""
    tz = ZoneInfo(zone)
    out: list[datetime] = []
    at = first
    while at < last:
        probe = at + timedelta(hours=1)
        if probe.astimezone(tz).utcoffset() != at.astimezone(tz).utcoffset():
            lo, hi = at, probe
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(tz).utcoffset() == at.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
        at = probe
    return out


def _check_vtimezone(zone: str, year: int) -> None:
    """The file's VTIMEZONE gives zoneinfo's offset on both sides of every change, its own and zoneinfo's."""
    tz = ZoneInfo(zone)
    start = datetime(year, 6, 1, 12, tzinfo=UTC)
    cal = calendar(booking(start, start + timedelta(hours=1)), zone=zone)
    [vtimezone] = cal.walk("VTIMEZONE")
    file_zone = FileZone(vtimezone)
    first, last = datetime(max(year - 1, 1970), 1, 1, tzinfo=UTC), datetime(year + 2, 1, 1, tzinfo=UTC)
    breaks = {*_zoneinfo_changes(zone, first, last), *(o for o, _, _ in file_zone.onsets if first <= o < last)}

    wrong = [
        (at.isoformat(), file_zone.offset_at(at), at.astimezone(tz).utcoffset())
        for moment in sorted(breaks | {first})
        for at in (moment, moment - timedelta(seconds=1))
        if first <= at and file_zone.offset_at(at) != at.astimezone(tz).utcoffset()
    ]

    assert [] == wrong
    [event] = cal.walk("VEVENT")
    assert start == file_zone.instant_of(event.decoded("DTSTART").replace(tzinfo=None))


# Less the files of the tz database that get_zone refuses: this host's zone, and two that are no place's zone.
ZONES = sorted(
    z for z in available_timezones() if not z.startswith(("posix/", "right/")) and z not in {"localtime", "Factory", "posixrules"}
)


class TestVtimezone:
    @pytest.mark.parametrize("zone", ["Africa/Casablanca", "Africa/El_Aaiun"])
    @pytest.mark.parametrize("year", [2013, 2014, 2019, 2027])
    def test_short_ramadan_periods_are_kept(self, zone, year):
        """Morocco's month-long Ramadan changes are in the VTIMEZONE, so a booking then is placed right."""
        _check_vtimezone(zone, year)

    def test_a_ramadan_booking_is_placed_by_the_file(self):
        """10:00 on 1 March 2027 in Casablanca (+00 during Ramadan) is 10:00 UTC by the file's own VTIMEZONE."""
        start = datetime(2027, 3, 1, 10, tzinfo=ZoneInfo("Africa/Casablanca"))
        cal = calendar(booking(start, start + timedelta(hours=1)), zone="Africa/Casablanca")
        [event] = cal.walk("VEVENT")

        assert (timedelta(0), timedelta(0)) == offsets_by_vtimezone(cal, event)

    @settings(max_examples=60, deadline=None)
    @given(zone=st.sampled_from(ZONES), year=st.integers(2000, 2040))
    def test_every_zone_matches_zoneinfo_at_every_change(self, zone, year):
        """For any IANA zone and year 2000-2040, the file's offsets equal zoneinfo's around every change."""
        _check_vtimezone(zone, year)


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=12).filter(str.strip)
CONTROL_BYTES = frozenset(range(0x20)) - {0x09} | {0x7F}


class TestControlCharacters:
    def test_the_reviewers_names_make_a_valid_file(self):
        """An escape sequence, vertical tab, DEL and form feed in names are written as spaces."""
        raw = booking_calendar(
            booking(datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC)),
            business="Shop\x1b[31m\x0b\x7f",
            service_name="Wash\x0cX",
            organizer="o@x.example",
            zone="Europe/Paris",
        )
        [event] = icalendar.Calendar.from_ical(raw).walk("VEVENT")

        assert set() == {c for c in raw.replace(b"\r\n", b"") if c in CONTROL_BYTES}
        assert "Wash X – Shop [31m  " == str(event["SUMMARY"])
        assert "Shop [31m  " == event["ORGANIZER"].params["CN"]

    @settings(max_examples=50, deadline=None)
    @given(business=NAMES, service=NAMES, resource=NAMES, calname=NAMES, location=NAMES)
    def test_any_names_make_a_file_without_control_characters(self, business, service, resource, calname, location):
        """Whatever names hold, the .ics has no raw control character and reads back with one VEVENT each."""
        b = booking(datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC))
        one = booking_calendar(
            b, business=business, service_name=service, resource_names=[resource], organizer="o@x.example",
            zone="Europe/Paris", location=location,
        )
        feed = agenda_feed(
            [b], business=business, service_names={"wash": service}, resource_names={"box1": resource},
            organizer="o@x.example", zone="Europe/Paris", name=calname,
        )

        for raw in (one, feed):
            assert set() == {c for c in raw.replace(b"\r\n", b"") if c in CONTROL_BYTES}
            assert 1 == len(icalendar.Calendar.from_ical(raw).walk("VEVENT"))


BOOKED = (datetime(2026, 10, 26, 9, tzinfo=UTC), datetime(2026, 10, 26, 10, tzinfo=UTC))


class TestRefusedInput:
    @pytest.mark.parametrize("field", ["organizer", "attendee"])
    @pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x85", "\t", "\n", "\x1f"])
    def test_an_address_with_a_control_character_is_refused_by_name(self, field, control):
        """An address is a URI, which holds no control character: it is refused, not written with a space."""
        with pytest.raises(InvalidInputError, match=field) as caught:
            calendar(booking(*BOOKED), **{field: f"desk@shop.exa{control}mple"})

        assert field == caught.value.details["field"]

    def test_an_address_with_a_control_character_at_its_end_is_refused(self):
        """A control character is refused at an end too; only spaces and line ends around the address are trimmed."""
        with pytest.raises(InvalidInputError, match=r"U\+0000"):
            calendar(booking(*BOOKED), organizer="desk@shop.example\x00")
        [event] = calendar(booking(*BOOKED), organizer=" desk@shop.example\n").walk("VEVENT")

        assert "mailto:desk@shop.example" == str(event["ORGANIZER"])

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("business", "Shop \ud800"),
            ("service_name", "Wash \udfff"),
            ("location", "Hall \ud800"),
            ("resource_names", ["Box \udc80"]),
            ("organizer", "desk\udc80@shop.example"),
            ("attendee", "ann\ud800@client.example"),
            ("tenant", "wash\ud800"),
        ],
    )
    def test_a_lone_surrogate_is_refused_by_name(self, field, value):
        """Text UTF-8 cannot write (a lone surrogate) raises InvalidInputError naming the argument, not UnicodeEncodeError."""
        with pytest.raises(InvalidInputError, match=field) as caught:
            calendar(booking(*BOOKED), **{field: value})

        assert field == caught.value.details["field"]

    @pytest.mark.parametrize(
        ("field", "options"),
        [
            ("name", {"name": "Agenda \ud800"}),
            ("service_names", {"service_names": {"wash": "Wash \ud800"}}),
            ("resource_names", {"resource_names": {"box1": "Box \ud800"}}),
            ("organizer", {"organizer": "desk@shop.example\x07"}),
        ],
    )
    def test_a_feed_refuses_them_too(self, field, options):
        """agenda_feed refuses a lone surrogate in its names and a control character in its organizer, by name."""
        arguments = {
            "business": "Car wash",
            "service_names": {},
            "resource_names": {},
            "organizer": "bookings@wash.example",
            "zone": "Europe/Paris",
            **options,
        }

        with pytest.raises(InvalidInputError, match=field) as caught:
            agenda_feed([booking(*BOOKED)], **arguments)

        assert field == caught.value.details["field"]

    @settings(max_examples=100, deadline=None)
    @given(
        text=st.text(st.characters(exclude_categories=()) | st.sampled_from("\x00\t\n\x1b\x85\ud800 a@"), max_size=8),
        field=st.sampled_from(["business", "location", "organizer", "attendee"]),
    )
    def test_any_text_makes_a_file_or_is_refused_by_name(self, text, field):
        """Text with a lone surrogate, or an address with a control character, is refused by name; the rest is written."""
        arguments = {"business": "Shop", "service_name": "Wash", "organizer": "o@x.example", "zone": "UTC", field: text}
        address = text.strip(" \t\r\n") if field in {"organizer", "attendee"} else "x"
        refused = any(0xD800 <= ord(c) <= 0xDFFF for c in text) or not address
        refused = refused or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in address)

        try:
            raw = booking_calendar(booking(*BOOKED), **arguments)
        except InvalidInputError as exc:
            assert refused
            assert field == exc.details["field"]
        else:
            assert not refused
            assert 1 == len(icalendar.Calendar.from_ical(raw).walk("VEVENT"))


FEED = {"business": "Car wash", "organizer": "bookings@wash.example", "zone": "Europe/Paris"}
EVENT = {**FEED, "service_name": "Wash"}


class TestWrongTypes:
    """The codec review: the wrong type of argument raised AttributeError or TypeError, or wrote letters."""

    @pytest.mark.parametrize("method", [5, b"REQUEST", ["REQUEST"]])
    def test_a_method_that_is_not_text_is_refused(self, method):
        """booking_calendar(method=5) raised AttributeError ('int' has no 'upper'); its docstring promised this."""
        with pytest.raises(InvalidInputError, match="method") as caught:
            booking_calendar(booking(*BOOKED), method=method, **EVENT)

        assert "method" == caught.value.details["field"]

    @pytest.mark.parametrize("make", [booking_event, booking_calendar])
    @pytest.mark.parametrize("value", [None, "b1", {"id": "b1"}])
    def test_a_booking_that_is_not_a_booking_is_refused(self, make, value):
        """booking_event(None) and booking_calendar(None) raised AttributeError."""
        with pytest.raises(InvalidInputError, match="booking") as caught:
            make(value, **EVENT)

        assert "booking" == caught.value.details["field"]

    @pytest.mark.parametrize("names", [None, "Anna", 5, {"box1": "Box 1"}, ["Box 1", None]])
    def test_resource_names_that_are_not_a_collection_of_text_are_refused(self, names):
        """None raised TypeError; "Anna" was written "With A, n, n, a"."""
        with pytest.raises(InvalidInputError, match="resource_names") as caught:
            booking_event(booking(*BOOKED), resource_names=names, **EVENT)

        assert "resource_names" == caught.value.details["field"]

    def test_resource_names_are_read_once(self):
        """A generator of names was read twice (checked, then written), so the event said "With " and nobody."""
        event = booking_event(booking(*BOOKED), resource_names=(n for n in ["Anna", "Box 1"]), **EVENT)
        via_calendar = icalendar.Calendar.from_ical(
            booking_calendar(booking(*BOOKED), resource_names=iter(["Anna", "Box 1"]), **EVENT)
        ).walk("VEVENT")[0]

        assert "Wash\nWith Anna, Box 1\nBooking b1" == str(event["DESCRIPTION"])
        assert str(event["DESCRIPTION"]) == str(via_calendar["DESCRIPTION"])

    @pytest.mark.parametrize(
        ("field", "options"),
        [
            ("service_names", {"service_names": ["x"]}),
            ("service_names", {"service_names": None}),
            ("resource_names", {"resource_names": [("box1", "Box 1")]}),
            ("resource_names", {"resource_names": {"box1": 1}}),
        ],
    )
    def test_a_feed_needs_mappings_of_names(self, field, options):
        """agenda_feed(service_names=["x"]) raised AttributeError ('list' has no 'values')."""
        arguments = {"service_names": {}, "resource_names": {}, **FEED, **options}

        with pytest.raises(InvalidInputError, match=field) as caught:
            agenda_feed([booking(*BOOKED)], **arguments)

        assert field == caught.value.details["field"]

    @pytest.mark.parametrize("bookings", [None, booking(*BOOKED), "b1", [booking(*BOOKED), None]])
    def test_a_feed_needs_a_collection_of_bookings(self, bookings):
        """agenda_feed(None) raised TypeError, and a None among the bookings AttributeError."""
        with pytest.raises(InvalidInputError, match="bookings") as caught:
            agenda_feed(bookings, service_names={}, resource_names={}, **FEED)

        assert "bookings" == caught.value.details["field"]

    def test_a_feed_reads_a_generator_of_bookings(self):
        """Any collection of bookings will do, a generator too."""
        day = datetime(2026, 3, 30, 9, tzinfo=PARIS)
        made = (booking(day + timedelta(hours=h), day + timedelta(hours=h + 1), id=f"b{h}") for h in (2, 1))
        feed = icalendar.Calendar.from_ical(agenda_feed(made, service_names={}, resource_names={}, **FEED))

        assert ["b1@default.slotengine", "b2@default.slotengine"] == [str(e["UID"]) for e in feed.walk("VEVENT")]
