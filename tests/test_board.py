"""The scheduling board: its geometry as properties, its HTML as a document, and its picture in real Chromium."""

import html
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slotengine import (
    Actor,
    BookingEngine,
    Business,
    Interval,
    Money,
    Need,
    Policies,
    Resource,
    ResourceRole,
    Schedule,
    Service,
    TimeRange,
    WeeklyHours,
)
from slotengine._time import day_span
from slotengine.adapters.memory import MemoryStorage
from slotengine.board import BOARD_STATUSES, HOUR_HEIGHT, Span, layout, render_board
from slotengine.errors import InvalidInputError
from slotengine.testing import FrozenClock

PARIS = ZoneInfo("Europe/Paris")
M = timedelta(minutes=1)
DAY = date(2026, 3, 3)
CHROMIUM = shutil.which("chromium")

HOSTILE_BUSINESS = '</title><script>alert("business")</script> & Co'
HOSTILE_RESOURCE = '<script>alert("column")</script> "Box" & 1'
HOSTILE_SERVICE = "Wash & <b>wax</b>"
HOSTILE_CUSTOMER = '"><img src=x onerror=alert(1)>'


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def workshop() -> tuple[BookingEngine, FrozenClock]:
    """A car wash open 09:00-12:00 and 13:00-18:00 with two boxes, a 3-seat hall and an auxiliary vacuum."""
    clock = FrozenClock(at(8))
    engine = BookingEngine(MemoryStorage(), clock=clock, default_actor=Actor.admin("owner"))
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange("09:00", "12:00"), TimeRange("13:00", "18:00")))
    engine.setup(Business(HOSTILE_BUSINESS, "Europe/Paris", hours, Policies(allow_override=True)))
    engine.add_resource(Resource("box-1", HOSTILE_RESOURCE, type="box"))
    engine.add_resource(Resource("box-2", "Box 2", type="box"))
    engine.add_resource(Resource("hall", "Hall", type="hall", capacity=3))
    engine.add_resource(Resource("vacuum", "Vacuum", type="vacuum", role=ResourceRole.AUXILIARY))
    engine.add_service(
        Service("wash", HOSTILE_SERVICE, needs=[Need(type="box")], duration=30 * M, price=Money("20", "EUR"))
    )
    engine.add_service(
        Service("deep", "Deep clean", needs=[Need(type="box"), Need(type="vacuum")], duration=90 * M, slot_step=30 * M)
    )
    engine.add_service(Service("seat", "Seat", needs=[Need(type="hall")], duration=60 * M, slot_step=15 * M))
    return engine, clock


def busy_day() -> tuple[BookingEngine, dict[str, str]]:
    """The workshop with bookings in every board status on 3 March, the clock at 12:30; ids by name."""
    engine, clock = workshop()
    ids = {}
    ids["done"] = engine.book("wash", at(9), customer_id="ann").id
    ids["no_show"] = engine.book("wash", at(9), customer_id="ben").id
    ids["deep"] = engine.book("deep", at(10), customer_id=HOSTILE_CUSTOMER, pin=["box-2"]).id
    ids["paid"] = engine.book("wash", at(14), customer_id="cleo").id
    engine.pay(ids["paid"], Money("20", "EUR"), payment_id="psp-1")
    for number in range(3):
        ids[f"seat-{number}"] = engine.book("seat", at(10, 15 * number), customer_id=f"guest-{number}").id
    ids["late"] = engine.book("wash", at(17, 30), customer_id="dora").id
    clock.set(at(12, 30))
    engine.complete(ids["done"])
    engine.mark_no_show(ids["no_show"])
    ids["held"] = engine.hold("wash", at(15), customer_id="eve").id
    return engine, ids


class _Elements(HTMLParser):
    """Collects every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if name in (a.get("class") or "").split()]


def parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


# --- geometry --------------------------------------------------------------------------------------------

WINDOW = Interval(datetime(2026, 3, 3, 8, tzinfo=UTC), datetime(2026, 3, 3, 18, tzinfo=UTC))
HEIGHT = 10 * HOUR_HEIGHT


@st.composite
def spans(draw: st.DrawFn, resources: tuple[str, ...] = ("a", "b", "c")) -> list[Span]:
    """Spans around the window: some before, inside, across its edges, and after it."""
    count = draw(st.integers(0, 12))
    out = []
    for number in range(count):
        start = WINDOW.start + draw(st.integers(-180, 11 * 60)) * M
        duration = draw(st.integers(1, 8 * 60)) * M
        out.append(Span(f"b{number}", draw(st.sampled_from(resources)), Interval(start, start + duration)))
    return out


@st.composite
def back_to_back(draw: st.DrawFn) -> list[Span]:
    """Spans on one resource of capacity 1 that never overlap (what a storage allows), touching or not."""
    out = []
    start = WINDOW.start - draw(st.integers(0, 120)) * M
    for number in range(draw(st.integers(0, 10))):
        start += draw(st.integers(0, 90)) * M
        end = start + draw(st.integers(1, 120)) * M
        out.append(Span(f"b{number}", "box", Interval(start, end)))
        start = end
    return out


def _covers(a, b) -> bool:
    """Whether two blocks of one column cover some of the same pixels."""
    vertical = a.top < b.bottom and b.top < a.bottom
    horizontal = a.lane / a.lanes < (b.lane + 1) / b.lanes and b.lane / b.lanes < (a.lane + 1) / a.lanes
    return vertical and horizontal


class TestLayout:
    @given(spans())
    def test_blocks_lie_inside_the_column(self, drawn):
        """Every block lies inside the day column and in one of its lanes; spans off the window are left out."""
        blocks = layout(drawn, WINDOW)

        assert sum(1 for s in drawn if s.interval.overlaps(WINDOW)) == len(blocks)
        for block in blocks:
            assert 0 <= block.top < block.bottom <= HEIGHT
            assert 0 <= block.lane < block.lanes
            assert block.clipped_start == (block.span.interval.start < WINDOW.start)
            assert block.clipped_end == (block.span.interval.end > WINDOW.end)

    @given(spans())
    def test_top_follows_start_and_height_follows_duration(self, drawn):
        """A later start is never drawn higher; an unclipped block is exactly as tall as it lasts."""
        blocks = layout(drawn, WINDOW)

        for a in blocks:
            for b in blocks:
                if a.span.interval.start <= b.span.interval.start:
                    assert a.top <= b.top
                unclipped = not (a.clipped_start or a.clipped_end or b.clipped_start or b.clipped_end)
                if unclipped and a.span.interval.duration <= b.span.interval.duration:
                    assert a.height <= b.height + 1e-9
            if not (a.clipped_start or a.clipped_end):
                assert a.span.interval.duration / timedelta(hours=1) * HOUR_HEIGHT == pytest.approx(a.height)

    @given(spans())
    def test_blocks_of_one_resource_never_cover_each_other(self, drawn):
        """Bookings of one resource that overlap in time are drawn side by side, never on top of each other."""
        blocks = layout(drawn, WINDOW)

        for i, a in enumerate(blocks):
            for b in blocks[i + 1 :]:
                if a.span.resource_id == b.span.resource_id:
                    assert not _covers(a, b), (a, b)

    @given(spans(resources=("a",)))
    def test_lanes_are_as_few_as_the_overlap_needs(self, drawn):
        """A block shares its column with as many lanes as bookings overlap at its busiest moment, no more."""
        blocks = layout(drawn, WINDOW)
        starts = [s.interval.start for s in drawn]

        deepest = max((sum(1 for s in drawn if s.interval.contains(t)) for t in starts), default=0)
        for block in blocks:
            assert 1 <= block.lanes <= deepest

    @given(back_to_back())
    def test_a_capacity_one_resource_gets_whole_width_blocks(self, drawn):
        """Bookings of a resource of capacity 1 never overlap, so each takes the whole width, in time order."""
        blocks = layout(drawn, WINDOW)

        assert all((0, 1) == (b.lane, b.lanes) for b in blocks)
        for a, b in itertools.pairwise(blocks):
            assert a.bottom <= b.top

    def test_back_to_back_blocks_touch(self):
        """A booking that starts as another ends is drawn from the exact pixel where the other stops."""
        first = Span("x", "box", Interval(WINDOW.start + 10 * M, WINDOW.start + 37 * M))
        second = Span("y", "box", Interval(WINDOW.start + 37 * M, WINDOW.start + 50 * M))

        a, b = layout([second, first], WINDOW)

        assert ("x", "y") == (a.span.booking_id, b.span.booking_id)
        assert a.bottom == b.top
        assert 37 / 60 * HOUR_HEIGHT == pytest.approx(b.top)


# --- the document ----------------------------------------------------------------------------------------


class TestRenderBoard:
    def test_one_block_per_booking_and_primary_resource(self):
        """Each booking is a block in the column of every primary resource it takes, with its data."""
        engine, _ = busy_day()
        page = parse(render_board(engine, DAY))

        blocks = page.with_class("block")
        found = {(b["data-booking-id"], b["data-resource-id"]) for b in blocks}
        bookings = {b.id: b for b in engine.list()}
        expected = {
            (bid, rid)
            for bid, booking in bookings.items()
            if booking.status in BOARD_STATUSES
            for rid in booking.resource_ids
            if rid != "vacuum"
        }
        assert expected == found
        for block in blocks:
            booking = bookings[block["data-booking-id"]]
            assert booking.status.value == block["data-status"]
            assert booking.start == datetime.fromisoformat(block["data-start"])
            assert booking.end == datetime.fromisoformat(block["data-end"])

    def test_columns_are_the_primary_resources(self):
        """Primary resources are the columns, in order; auxiliary ones are listed under the board instead."""
        engine, _ = busy_day()
        page = parse(render_board(engine, DAY))

        assert ["box-1", "box-2", "hall"] == [t["data-resource-id"] for t in page.with_class("track")]
        assert ["box-1", "box-2", "hall"] == [h["data-resource-id"] for h in page.with_class("head")]
        listed = [a for _, a in page.tags if a.get("data-resource-id") == "vacuum"]
        assert 1 == len(listed)

    def test_auxiliary_resources_are_named_with_their_booking(self):
        """A booking that takes an auxiliary resource says so on its block and in the auxiliary list."""
        engine, ids = busy_day()
        html = render_board(engine, DAY)

        block = html.split(f'data-booking-id="{ids["deep"]}"', 1)[1].split("</div>", 1)[0]
        assert "with Vacuum" in block
        aux = html.split('class="auxiliary"', 1)[1]
        assert f'data-booking-id="{ids["deep"]}"' in aux
        assert "10:00–11:30 Deep clean" in aux

    def test_every_status_has_its_class_and_a_legend_entry(self):
        """Blocks are coloured by status and the legend counts the bookings of each status."""
        engine, ids = busy_day()
        page = parse(render_board(engine, DAY))

        statuses = {b["data-booking-id"]: b["data-status"] for b in page.with_class("block")}
        assert "completed" == statuses[ids["done"]]
        assert "no_show" == statuses[ids["no_show"]]
        assert "paid" == statuses[ids["paid"]]
        assert "pre_booking" == statuses[ids["held"]]
        assert "confirmed" == statuses[ids["deep"]]
        legend = [a["data-status"] for _, a in page.tags if a.get("data-status") and not a.get("class")]
        assert [s.value for s in BOARD_STATUSES] == legend[: len(BOARD_STATUSES)]
        for block in page.with_class("block"):
            assert f"status-{block['data-status']}" in (block["class"] or "")

    def test_hostile_text_is_escaped_everywhere(self):
        """Names and ids are text, never markup: no script or image element appears, and each reads as written."""
        engine, _ = busy_day()
        html = render_board(engine, DAY)
        page = parse(html)

        tags = {tag for tag, _ in page.tags}
        assert "script" not in tags
        assert "img" not in tags
        assert "b" not in tags
        text = "".join(page.text)
        for hostile in (HOSTILE_BUSINESS, HOSTILE_RESOURCE, HOSTILE_SERVICE, HOSTILE_CUSTOMER):
            assert hostile in text
        assert HOSTILE_CUSTOMER not in html

    def test_the_page_is_self_contained(self):
        """The page loads nothing: no scripts, stylesheets, images or fonts from elsewhere."""
        engine, _ = busy_day()
        html = render_board(engine, DAY)

        page = parse(html)

        assert set() == {tag for tag, _ in page.tags} & {"script", "link", "img", "iframe", "object", "embed"}
        assert [] == [a for _, a in page.tags if {"src", "href", "srcset"} & set(a)]
        css = html.split("<style>", 1)[1].split("</style>", 1)[0]
        assert "url(" not in css
        assert "@import" not in css
        assert html.startswith("<!DOCTYPE html>")
        assert html.rstrip().endswith("</html>")

    def test_the_now_line_shows_only_on_its_day(self):
        """The now-line is drawn when now falls on the day shown, and not on another day."""
        engine, _ = busy_day()

        today = parse(render_board(engine, DAY, now=at(11, 15)))
        tomorrow = parse(render_board(engine, DAY + timedelta(days=1), now=at(11, 15)))

        (line,) = today.with_class("now-line")
        assert at(11, 15) == datetime.fromisoformat(line["data-now"])
        assert f"top:{(2 + 15 / 60) * HOUR_HEIGHT:.3f}px" in (line["style"] or "")
        assert [] == tomorrow.with_class("now-line")

    def test_an_expired_hold_is_marked(self):
        """A hold whose time ran out (not yet swept) stays on the board, faded and marked, until it is expired."""
        engine, ids = busy_day()

        later = render_board(engine, DAY, now=at(17))

        block = later.split(f'data-booking-id="{ids["held"]}"', 1)[0].rsplit("<div", 1)[1]
        assert "lapsed" in block
        assert "hold expired" in later

    def test_the_window_is_the_business_hours(self):
        """The side runs from opening to closing, in whole hours, with the lunch break shaded in each column."""
        engine, _ = workshop()
        page = parse(render_board(engine, DAY, now=at(8, 30, DAY - timedelta(days=1))))

        (board,) = [a for tag, a in page.tags if tag == "main"]
        assert at(9) == datetime.fromisoformat(board["data-window-start"])
        assert at(18) == datetime.fromisoformat(board["data-window-end"])
        ticks = [d for d in page.text if d[:2].isdigit() and d[2:3] == ":"]
        assert [f"{h:02}:00" for h in range(9, 18)] == ticks
        shades = page.with_class("closed")
        assert 3 == len(shades)
        assert f"top:{3 * HOUR_HEIGHT:.3f}px;height:{HOUR_HEIGHT:.3f}px" == shades[0]["style"]

    def test_the_window_widens_to_bookings_and_now(self):
        """A booking or the present moment outside the hours widens the board to whole hours around them."""
        engine, _ = workshop()
        engine.book("wash", at(19, 10), customer_id="night-owl", override=True)
        page = parse(render_board(engine, DAY, now=at(7, 40)))

        (board,) = [a for tag, a in page.tags if tag == "main"]
        assert at(7) == datetime.fromisoformat(board["data-window-start"])
        assert at(20) == datetime.fromisoformat(board["data-window-end"])

    def test_the_zone_moves_the_day(self):
        """The same bookings read in another zone fall on that zone's day and hours."""
        engine, _ = busy_day()
        page = parse(render_board(engine, DAY, zone="America/New_York"))

        (board,) = [a for tag, a in page.tags if tag == "main"]
        start = datetime.fromisoformat(board["data-window-start"])
        assert at(9) == start  # 09:00 in Paris is 03:00 in New York
        assert timedelta(hours=-5) == start.utcoffset()
        ticks = [d for d in page.text if d[:2].isdigit() and d[2:3] == ":"]
        assert "03:00" == ticks[0]
        assert any("America/New_York" in d for d in page.text)

    def test_render_board_is_not_imported_by_the_package(self):
        """`import slotengine` leaves the board module alone."""
        code = "import slotengine, sys; print('slotengine.board' in sys.modules)"

        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

        assert "False" == out.strip()


# --- days the clocks make odd ----------------------------------------------------------------------------

LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
TRICKY_ZONES = (
    "Australia/Lord_Howe",  # half-hour shifts: the whole hours leave the UTC hour grid
    "Pacific/Apia",  # skipped 30 December 2011
    "Pacific/Kiritimati",  # skipped 31 December 1994
    "Antarctica/Troll",  # goes back two hours
    "Asia/Magadan",  # went back two hours in 2014
    "America/Santiago",  # changes at midnight
    "Asia/Kathmandu",  # +05:45, once +05:30
    "Africa/Monrovia",  # -00:44:30 until 1972
    "Europe/Paris",
)


def ticks_of(board: str) -> list[tuple[str, str]]:
    """The hour ticks of a board's HTML as (style, label), top to bottom."""
    return re.findall(r'<div class="tick" style="([^"]*)">([^<]*)</div>', board)


def window_of(page: _Elements) -> Interval:
    (board,) = [a for tag, a in page.tags if tag == "main"]
    start, end = board["data-window-start"], board["data-window-end"]
    assert start is not None
    assert end is not None
    return Interval(datetime.fromisoformat(start), datetime.fromisoformat(end))


def on_the_hour(instant: datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz)
    return local.minute == local.second == local.microsecond == 0


def whole_hours(window: Interval, tz: ZoneInfo) -> list[datetime]:
    """Every instant of *window* whose wall clock shows HH:00:00, found wall time by wall time (both folds)."""
    first = window.start.astimezone(tz).date() - timedelta(days=1)
    found = set()
    for hour in range(24 * 4):
        wall = datetime.combine(first, datetime.min.time()) + timedelta(hours=hour)
        for fold in (0, 1):
            instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
            if instant.astimezone(tz).replace(tzinfo=None) == wall and window.contains(instant):
                found.add(instant)
    return sorted(found)


def shop(zone: str, hours: WeeklyHours, now: datetime) -> BookingEngine:
    """A business in *zone* with *hours* and one box for ten cars at once, its clock at *now*."""
    engine = BookingEngine(MemoryStorage(), clock=FrozenClock(now), default_actor=Actor.admin("owner"))
    engine.setup(Business("Shop", zone, Schedule(zone, hours), Policies(allow_override=True)))
    engine.add_resource(Resource("box", "Box", type="box", capacity=10))
    engine.add_service(
        Service("wash", "Wash", needs=[Need(type="box")], duration=60 * M, min_duration=15 * M, max_duration=4 * 60 * M)
    )
    return engine


HOURS = {
    "weekdays": WeeklyHours.weekdays(TimeRange("09:00", "17:00")),
    "always": WeeklyHours.every_day(TimeRange("00:00", "00:00")),
    "never": WeeklyHours({}),
}


def _offset_at(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def next_change(after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant within a year after *after* where *tz* changes offset (*after* itself if none)."""
    before = _offset_at(after, tz)
    lo = after
    for days in range(1, 367):
        hi = after + timedelta(days=days)
        if _offset_at(hi, tz) != before:
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if _offset_at(mid, tz) == before else (lo, mid)
            return hi
        lo = hi
    return after


@st.composite
def odd_days(draw: st.DrawFn) -> tuple[str, date, str, list[tuple[datetime, int]], datetime]:
    """A zone, a local day around one of its changes of offset, hours, bookings and a now near that change."""
    # "localtime", "Factory" and "posixrules" are files of the tz database, not zones slotengine accepts
    zones = st.timezone_keys(allow_prefix=False).filter(lambda key: key not in {"localtime", "Factory", "posixrules"})
    zone = draw(st.sampled_from(TRICKY_ZONES) | zones)
    tz = ZoneInfo(zone)
    start = datetime(1971, 1, 1, tzinfo=UTC) + draw(st.integers(0, 130 * 365)) * timedelta(days=1)
    change = next_change(start, tz).replace(microsecond=0)
    day = change.astimezone(tz).date() + timedelta(days=draw(st.integers(-1, 1)))
    near = st.integers(-30 * 4, 30 * 4).map(lambda quarters: change + quarters * 15 * M)
    bookings = draw(st.lists(st.tuples(near, st.integers(1, 4 * 4)), max_size=4))
    now = draw(near | st.integers(-30 * 60, 30 * 60).map(lambda minutes: change + minutes * M))
    return zone, day, draw(st.sampled_from(sorted(HOURS))), [(s, q * 15) for s, q in bookings], now


class TestOddDays:
    def test_a_closed_day_today_draws_the_whole_day(self):
        """On a closed day with nothing booked, now alone is no span: the board shows the day and the now-line."""
        now = at(10, 17, date(2026, 3, 8))  # a Sunday
        engine = shop("Europe/Paris", HOURS["weekdays"], now)

        page = parse(render_board(engine, date(2026, 3, 8), now=now))

        assert Interval(at(0, 0, date(2026, 3, 8)), at(0, 0, date(2026, 3, 9))) == window_of(page)
        (line,) = page.with_class("now-line")
        assert now == datetime.fromisoformat(line["data-now"] or "")

    def test_the_now_line_is_drawn_at_closing_time(self):
        """Now at the very end of the board (closing time to the minute) is on the board's bottom edge."""
        engine, _ = workshop()

        page = parse(render_board(engine, DAY, now=at(18)))

        assert at(18) == window_of(page).end
        (line,) = page.with_class("now-line")
        assert f"top:{9 * HOUR_HEIGHT:.3f}px" == line["style"]

    def test_a_day_the_zone_skipped_is_refused(self):
        """Samoa skipped 30 December 2011: the board says so, instead of an error about an empty interval."""
        engine = shop("Pacific/Apia", HOURS["always"], datetime(2011, 12, 1, tzinfo=UTC))

        with pytest.raises(InvalidInputError) as caught:
            render_board(engine, date(2011, 12, 30))

        assert "invalid_input" == caught.value.code
        assert "2011-12-30 does not exist in Pacific/Apia: its clocks skipped that whole day" == str(caught.value)

    def test_the_window_reaches_the_repeated_half_hour(self):
        """Lord Howe goes back from 02:00 to 01:30: a booking and now in the second 01:30-02:00 stay on the board."""
        sunday = date(2026, 4, 5)
        engine = shop("Australia/Lord_Howe", HOURS["weekdays"], datetime(2026, 3, 1, tzinfo=UTC))
        booking = engine.book("wash", datetime(2026, 4, 4, 14, 15, tzinfo=UTC), customer_id="x", override=True)
        now = datetime(2026, 4, 4, 15, 10, tzinfo=UTC)  # 01:40, the second time round

        page = parse(render_board(engine, sunday, now=now))

        window = window_of(page)
        assert datetime(2026, 4, 5, 2, tzinfo=LORD_HOWE, fold=1) == window.end  # 02:00 +10:30, not 01:30 +10:30
        assert window.contains(booking.interval)
        (block,) = page.with_class("block")
        assert "clipped-end" not in (block["class"] or "")
        assert 1 == len(page.with_class("now-line"))

    def test_ticks_stay_on_whole_hours_after_a_half_hour_shift(self):
        """Lord Howe springs from 02:00 to 02:30: the ticks and grid lines go on at 03:00, 04:00, not at 03:30."""
        engine = shop("Australia/Lord_Howe", HOURS["always"], datetime(2026, 9, 1, tzinfo=UTC))

        board = render_board(engine, date(2026, 10, 4))
        page = parse(board)

        ticks = ticks_of(board)
        assert ["00:00", "01:00", *(f"{h:02}:00" for h in range(3, 24))] == [label for _, label in ticks]
        assert f"top:{2.5 * HOUR_HEIGHT:.3f}px" == ticks[2][0]  # 03:00 comes 90 minutes after 01:00
        lines = [a["style"] for a in page.with_class("hour")]
        assert [style for style, _ in ticks] == lines  # one column, one grid line per tick

    @given(odd_days())
    @example(
        (
            "Australia/Lord_Howe",
            date(2026, 4, 5),
            "weekdays",
            [(datetime(2026, 4, 4, 14, 15, tzinfo=UTC), 60)],
            datetime(2026, 4, 4, 15, 10, tzinfo=UTC),
        )
    )
    @example(("Australia/Lord_Howe", date(2026, 10, 4), "always", [], datetime(2000, 1, 1, tzinfo=UTC)))
    @example(("Pacific/Apia", date(2011, 12, 30), "always", [], datetime(2011, 12, 30, 10, tzinfo=UTC)))
    @example(("Europe/Paris", date(2026, 3, 8), "weekdays", [], datetime(2026, 3, 8, 9, 17, tzinfo=UTC)))
    @settings(max_examples=60, deadline=None)
    def test_any_zone_and_day(self, case):
        """
        In any zone, on any day (around a change of offset above all), the board draws every booking whole
        inside its window, the now-line when now is on the day, and a tick at each whole hour of the wall clock.
        """
        zone, day, hours, bookings, now = case
        tz = ZoneInfo(zone)
        engine = shop(zone, HOURS[hours], datetime(1970, 1, 2, tzinfo=UTC))
        booked = [engine.book("wash", start, duration=minutes * M, override=True) for start, minutes in bookings]
        day_start, day_end = day_span(day, tz)
        if day_end <= day_start:
            with pytest.raises(InvalidInputError, match="its clocks skipped that whole day"):
                render_board(engine, day, now=now)
            return

        board = render_board(engine, day, now=now)
        page = parse(board)

        window = window_of(page)
        assert day_start <= window.start < window.end <= day_end
        assert window.start == day_start or on_the_hour(window.start, tz)
        assert window.end == day_end or on_the_hour(window.end, tz)
        height = (window.end - window.start) / timedelta(hours=1) * HOUR_HEIGHT
        blocks = {b["data-booking-id"]: b for b in page.with_class("block")}
        on_day = [b for b in booked if b.start < day_end and day_start < b.end]
        assert {b.id for b in on_day} == set(blocks)
        for booking in on_day:
            shown = Interval(max(booking.start, day_start), min(booking.end, day_end))
            assert window.contains(shown)
            block = blocks[booking.id]
            assert ("clipped-start" in (block["class"] or "")) == (booking.start < day_start)
            assert ("clipped-end" in (block["class"] or "")) == (booking.end > day_end)
            top = (shown.start - window.start) / timedelta(hours=1) * HOUR_HEIGHT
            bottom = (shown.end - window.start) / timedelta(hours=1) * HOUR_HEIGHT
            assert f"top:{top:.3f}px;height:{bottom - top:.3f}px;" in (block["style"] or "")
            assert 0 <= top < bottom <= height + 1e-9
        assert (day_start <= now < day_end) == bool(page.with_class("now-line"))
        expected = [
            (f"top:{(mark - window.start) / timedelta(hours=1) * HOUR_HEIGHT:.3f}px", f"{mark.astimezone(tz):%H:%M}")
            for mark in whole_hours(window, tz)
        ]
        assert expected == ticks_of(board)
        assert [style for style, _ in expected] == [a["style"] for a in page.with_class("hour")]


# --- in a real browser -----------------------------------------------------------------------------------

MEASURE = """
<script>
(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const out = {tracks: {}, heads: {}, blocks: [], now: null};
  for (const t of document.querySelectorAll(".track")) out.tracks[t.dataset.resourceId] = box(t);
  for (const h of document.querySelectorAll(".head")) out.heads[h.dataset.resourceId] = box(h);
  for (const b of document.querySelectorAll(".block")) {
    out.blocks.push({id: b.dataset.bookingId, resource: b.dataset.resourceId, start: b.dataset.start,
                     end: b.dataset.end, rect: box(b), visible: getComputedStyle(b).display !== "none"});
  }
  const line = document.querySelector(".now-line");
  if (line) out.now = box(line);
  const pre = document.createElement("pre");
  pre.id = "board-measures";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def chromium_args(profile: Path) -> list[str]:
    assert CHROMIUM is not None
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def measure(page: str, tmp_path: Path) -> dict:
    """Open *page* plus the measuring script in headless Chromium and return what the script wrote."""
    path = tmp_path / "measured.html"
    path.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [*chromium_args(tmp_path / "profile"), "--window-size=1280,1200", "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stderr[-2000:]
    dom = parse(result.stdout)
    start = result.stdout.index('<pre id="board-measures">') + len('<pre id="board-measures">')
    raw = result.stdout[start : result.stdout.index("</pre>", start)]
    assert dom.tags, "Chromium printed no DOM"
    return json.loads(html.unescape(raw))


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")


@needs_chromium
class TestInChromium:
    def test_blocks_appear_where_the_bookings_are(self, tmp_path):
        """In a real browser, each block lies in its resource's column, as high and as tall as its booking."""
        engine, _ = busy_day()
        window_start = at(9)
        per_minute = HOUR_HEIGHT / 60

        seen = measure(render_board(engine, DAY), tmp_path)

        bookings = {b.id: b for b in engine.list()}
        assert sum(len(b.resource_ids) for b in bookings.values()) - 1 == len(seen["blocks"])  # the vacuum: no column
        assert {"box-1", "box-2", "hall"} == set(seen["tracks"])
        for resource, track in seen["tracks"].items():
            head = seen["heads"][resource]
            assert head["left"] == pytest.approx(track["left"], abs=1)
            assert head["right"] == pytest.approx(track["right"], abs=1)
            assert track["right"] - track["left"] > 50
        for block in seen["blocks"]:
            booking = bookings[block["id"]]
            rect, column = block["rect"], seen["tracks"][block["resource"]]
            assert block["resource"] in booking.resource_ids
            assert column["left"] - 1 <= rect["left"] < rect["right"] <= column["right"] + 1, block
            expected_top = (booking.start - window_start) / M * per_minute
            expected_height = (booking.end - booking.start) / M * per_minute
            assert expected_top == pytest.approx(rect["top"] - column["top"], abs=1.5), block
            assert expected_height == pytest.approx(rect["bottom"] - rect["top"], abs=1.5), block
            assert rect["bottom"] <= column["bottom"] + 1

    def test_overlapping_seats_sit_side_by_side(self, tmp_path):
        """The hall's three overlapping seat bookings share its column without covering one another."""
        engine, _ = busy_day()

        seen = measure(render_board(engine, DAY), tmp_path)

        seats = [b["rect"] for b in seen["blocks"] if b["resource"] == "hall"]
        assert 3 == len(seats)
        for i, a in enumerate(seats):
            for b in seats[i + 1 :]:
                assert a["right"] <= b["left"] + 0.5 or b["right"] <= a["left"] + 0.5

    def test_the_now_line_is_at_now(self, tmp_path):
        """The now-line crosses the board at the present moment's height."""
        engine, _ = busy_day()

        seen = measure(render_board(engine, DAY, now=at(11, 15)), tmp_path)

        column = seen["tracks"]["box-1"]
        assert (2 + 15 / 60) * HOUR_HEIGHT == pytest.approx(seen["now"]["top"] - column["top"], abs=1.5)
        assert seen["now"]["left"] <= column["left"]
        assert seen["now"]["right"] >= seen["tracks"]["hall"]["right"] - 1

    def test_a_screenshot_is_taken(self, tmp_path):
        """Chromium draws the board to a PNG (what docs/_tools/board_screenshot.py does for the docs)."""
        engine, _ = busy_day()
        page = tmp_path / "board.html"
        page.write_text(render_board(engine, DAY), encoding="utf-8")
        shot = tmp_path / "board.png"

        subprocess.run(
            [*chromium_args(tmp_path / "profile"), f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )

        assert b"\x89PNG\r\n\x1a\n" == shot.read_bytes()[:8]


# --- the screenshot in the docs --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "docs" / "_tools" / "board_screenshot.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("board_screenshot", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestScreenshotTool:
    def test_it_draws_the_demos_busiest_day(self, tmp_path):
        """The docs' picture is the board of the demo tenant with the most bookings on one day."""
        tool = _load_tool()

        page, tenant, day = tool.demo_board(tmp_path)

        assert ("congress", date(2026, 3, 5)) == (tenant, day)
        assert 9 == parse(page).text.count("10:00–12:00") + parse(page).text.count("10:00–11:00")
        assert (ROOT / "docs" / "images" / "board.png").read_bytes().startswith(b"\x89PNG")
