"""
The scheduling board: one local day of bookings as a self-contained HTML page.

The seeds' planning board (le tableau de planification) shows each primary resource as a column and time
down the side; a booking is a block in the column of every primary resource it takes, as tall as it lasts
and coloured by its status. Auxiliary resources get no column: they are named on the blocks of the
bookings that take them and listed under the board. A line marks the present moment.

`render_board` reads the engine and writes the page; `layout` is the geometry alone, a pure function from
time spans to positioned blocks, so it can be tested without a browser. The page needs no script and no
external file: its CSS is inline, and every text taken from the data is HTML-escaped.

Importing this module is never needed for ``import slotengine``; the command's ``board`` subcommand and
applications import it when they draw a board.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import attrs

from slotengine._time import day_span, get_zone, to_utc
from slotengine.authorization import Actor
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError
from slotengine.intervals import Interval, IntervalSet
from slotengine.lifecycle import BookingStatus
from slotengine.model import Resource, ResourceKind, ResourceRole
from slotengine.schedule import effective_hours

__all__ = ["BOARD_STATUSES", "HOUR_HEIGHT", "Block", "Span", "layout", "render_board"]

HOUR_HEIGHT: Final = 64
"""How many CSS pixels one hour takes on the board (a 30-minute booking is 32 pixels tall)."""

BOARD_STATUSES: Final = (
    BookingStatus.PRE_BOOKING,
    BookingStatus.CONFIRMED,
    BookingStatus.PAID,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
)
"""The statuses a board shows, in legend order: those of `BookingEngine.agenda` (cancelled and expired
bookings hold no time, so they are left off)."""

_LABELS: Final = {
    BookingStatus.PRE_BOOKING: "Pre-booking (held)",
    BookingStatus.CONFIRMED: "Confirmed",
    BookingStatus.PAID: "Paid",
    BookingStatus.COMPLETED: "Completed",
    BookingStatus.NO_SHOW: "No-show",
    BookingStatus.CANCELLED: "Cancelled",
    BookingStatus.EXPIRED: "Expired",
}
_HOUR: Final = timedelta(hours=1)


@attrs.frozen
class Span:
    """One booking's time on one resource: what `layout` places."""

    booking_id: str
    resource_id: str
    interval: Interval


@attrs.frozen
class Block:
    """
    Where a span is drawn in its resource's column.

    ``top`` and ``bottom`` are pixels from the top of the column; ``lane`` of ``lanes`` is the vertical strip
    of the column it takes (a resource with capacity shows overlapping bookings side by side).
    ``clipped_start`` and ``clipped_end`` say the booking runs on before or after the board's window.
    """

    span: Span
    top: float
    bottom: float
    lane: int
    lanes: int
    clipped_start: bool
    clipped_end: bool

    @property
    def height(self) -> float:
        """The block's height in pixels."""
        return self.bottom - self.top


def _offset(instant: datetime, window: Interval, hour_height: float) -> float:
    return (instant - window.start) / _HOUR * hour_height


def layout(spans: Iterable[Span], window: Interval, *, hour_height: float = HOUR_HEIGHT) -> list[Block]:
    """
    Place *spans* in a column that shows *window*, *hour_height* pixels per hour.

    A span is clipped to the window (and left out if it does not reach it). Its top grows with its start
    and its height with its duration. Spans of one resource that overlap in time share the width: each
    group of overlapping spans is split into lanes, and a span takes the first lane free at its start, so
    no two blocks of a resource ever cover the same pixels.

    Returns:
        One block per span that reaches the window, ordered by resource, then start.
    """
    by_resource: dict[str, list[Span]] = {}
    for span in spans:
        if span.interval.overlaps(window):
            by_resource.setdefault(span.resource_id, []).append(span)
    blocks: list[Block] = []
    for resource_id in sorted(by_resource):
        ordered = sorted(by_resource[resource_id], key=lambda s: (s.interval.start, s.interval.end, s.booking_id))
        for group in _groups(ordered):
            blocks.extend(_place_group(group, window, hour_height))
    return blocks


def _groups(ordered: Sequence[Span]) -> list[list[Span]]:
    """Split spans sorted by start into runs that overlap one another (transitively)."""
    groups: list[list[Span]] = []
    reach: datetime | None = None
    for span in ordered:
        if reach is None or span.interval.start >= reach:
            groups.append([])
            reach = span.interval.end
        groups[-1].append(span)
        reach = max(reach, span.interval.end)
    return groups


def _place_group(group: Sequence[Span], window: Interval, hour_height: float) -> list[Block]:
    lane_ends: list[datetime] = []
    lanes: list[int] = []
    for span in group:
        for number, end in enumerate(lane_ends):
            if end <= span.interval.start:
                lane_ends[number] = span.interval.end
                lanes.append(number)
                break
        else:
            lanes.append(len(lane_ends))
            lane_ends.append(span.interval.end)
    placed = []
    for span, lane in zip(group, lanes, strict=True):
        start = max(span.interval.start, window.start)
        end = min(span.interval.end, window.end)
        placed.append(
            Block(
                span,
                top=_offset(start, window, hour_height),
                bottom=_offset(end, window, hour_height),
                lane=lane,
                lanes=len(lane_ends),
                clipped_start=span.interval.start < window.start,
                clipped_end=span.interval.end > window.end,
            )
        )
    return placed


# --- reading the engine ----------------------------------------------------------------------------------


def _hour_marks(instant: datetime, tz: ZoneInfo) -> list[datetime]:
    """
    The instants within two hours of *instant* at which a clock in *tz* shows a whole hour, in order.

    Under one UTC offset those are an hour apart, so a few per offset in force around *instant* give them all,
    wherever a change of offset falls: a skipped or repeated half hour (Lord Howe) moves the whole hours off
    the UTC hour grid, and one hour after a whole hour is then no whole hour at all. The offsets are sampled
    two hours either side, which misses none as long as a zone changes offset at most once in four hours:
    since 1970 the tz database never does so twice within six days.
    """
    marks: set[datetime] = set()
    for probe in (instant - 2 * _HOUR, instant, instant + 2 * _HOUR):
        offset = probe.astimezone(tz).utcoffset()
        assert offset is not None  # a ZoneInfo always knows its offset  # noqa: S101
        wall = (instant.astimezone(UTC) + offset).replace(minute=0, second=0, microsecond=0)
        for hours in (-2, -1, 0, 1, 2):
            mark = wall - offset + hours * _HOUR
            local = mark.astimezone(tz)
            if local.minute == local.second == local.microsecond == 0:
                marks.add(mark)
    return sorted(marks)


def _floor_hour(instant: datetime, tz: ZoneInfo) -> datetime:
    """The latest instant on or before *instant* at which the clock in *tz* shows a whole hour."""
    return max((m for m in _hour_marks(instant, tz) if m <= instant), default=instant)


def _ceil_hour(instant: datetime, tz: ZoneInfo) -> datetime:
    """
    The earliest instant on or after *instant* at which the clock in *tz* shows a whole hour.

    It is not always the floor plus an hour: where Lord Howe's clocks go back half an hour at 02:00, the
    floor of 01:40 (the second time round) is 01:00, an hour and a half before the next whole hour, 02:00.
    """
    return min((m for m in _hour_marks(instant, tz) if m >= instant), default=instant)


def _next_hour(instant: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after *instant* at which the clock in *tz* shows a whole hour (the next tick)."""
    return min((m for m in _hour_marks(instant, tz) if m > instant), default=instant + _HOUR)


def _hours(window: Interval, tz: ZoneInfo) -> tuple[datetime, ...]:
    """The instants of *window* at which the clock in *tz* shows a whole hour: the board's ticks and grid lines."""
    marks = []
    mark = _ceil_hour(window.start, tz)
    while mark < window.end:
        marks.append(mark)
        mark = _next_hour(mark, tz)
    return tuple(marks)


def _window(day: Interval, opened: IntervalSet, bookings: Sequence[Booking], now: datetime) -> Interval:
    """
    The span the board must show: the opening hours and the bookings on *day*, and *now* if it falls on it.

    With no hours and no booking (a closed day) it is the whole day, so *now* alone never makes an empty span.
    """
    starts: list[datetime] = []
    ends: list[datetime] = []
    for part in opened:
        starts.append(max(part.start, day.start))
        ends.append(min(part.end, day.end))
    for booking in bookings:
        starts.append(max(booking.start, day.start))
        ends.append(min(booking.end, day.end))
    if not starts or min(starts) >= max(ends):
        return day
    if day.contains(now):
        starts.append(now)
        ends.append(now)
    return Interval(min(starts), max(ends))


def _clock(instant: datetime, tz: ZoneInfo, day: date) -> str:
    local = instant.astimezone(tz)
    return f"{local:%H:%M}" if local.date() == day else f"{local:%d %b %H:%M}"


def render_board(
    engine: BookingEngine,
    day: date,
    *,
    zone: str | None = None,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> str:
    """
    Return the scheduling board of local *day* as a complete HTML document.

    Primary resources are columns and the business hours of the day run down the side (widened to show
    any booking or *now* that falls outside them). Each booking on the board (`BookingEngine.agenda`) is a
    block in the column of every primary resource it takes, carrying ``data-booking-id``,
    ``data-resource-id``, ``data-status``, ``data-start`` and ``data-end`` (ISO 8601 with the offset).

    Args:
        engine: The business to draw.
        day: The local date.
        zone: The zone the day and the times are read in; the business's zone by default.
        now: Where the now-line is drawn, and the instant a hold is judged expired at; the engine's clock
            by default.
        actor: Who reads the bookings; the engine's default actor by default.

    Raises:
        NotFoundError: the business was never set up.
        PermissionDeniedError: no actor, or one who may not read bookings.
        UnknownTimeZoneError: *zone* is not a known IANA zone.
        InvalidInputError: *day* does not exist in the zone, whose clocks skipped that whole day (30 December
            2011 in Pacific/Apia), so there is no time to draw.
    """
    business = engine.business()
    tz = get_zone(business.zone if zone is None else zone)
    moment = to_utc(engine.clock.now() if now is None else now, "now")
    day_start, day_end = day_span(day, tz)
    if day_end <= day_start:
        msg = f"{day} does not exist in {tz.key}: its clocks skipped that whole day"
        raise InvalidInputError(msg, field="day")
    whole_day = Interval(day_start, day_end)
    bookings = engine.agenda(whole_day, actor=actor)
    resources = engine.resources()
    services = {s.id: s.name for s in engine.services()}
    primary = [r for r in resources if r.role is ResourceRole.PRIMARY]
    primary_ids = {r.id for r in primary}
    names = {r.id: r.name for r in resources}

    opened = IntervalSet(
        part for resource in primary for part in effective_hours(resource.schedule, business.hours, whole_day)
    )
    if not primary:
        opened = business.hours.expand(whole_day)
    hull = _window(whole_day, opened, bookings, moment)
    window = Interval(max(_floor_hour(hull.start, tz), day_start), min(_ceil_hour(hull.end, tz), day_end))
    if window.start >= window.end:
        window = whole_day

    spans = [
        Span(booking.id, resource_id, booking.interval)
        for booking in bookings
        for resource_id in booking.resource_ids
        if resource_id in primary_ids
    ]
    blocks = layout(spans, window)
    by_id = {b.id: b for b in bookings}
    height = _offset(window.end, window, HOUR_HEIGHT)

    page = _Page(tz, day, window, _hours(window, tz), moment, names, services)
    columns = [
        page.column(
            number,
            resource,
            [b for b in blocks if b.span.resource_id == resource.id],
            by_id,
            effective_hours(resource.schedule, business.hours, window),
        )
        for number, resource in enumerate(primary, 2)
    ]
    counts = {status: sum(1 for b in bookings if b.status is status) for status in BOARD_STATUSES}
    auxiliary = [r for r in resources if r.role is ResourceRole.AUXILIARY]
    long_day = f"{day:%A} {day.day} {day:%B %Y}"
    title = f"{business.name}: {long_day}"
    return _DOCUMENT.format(
        title=_esc(title),
        css=_CSS,
        name=_esc(business.name),
        when=_esc(f"{long_day} · {tz.key} · {len(bookings)} booking{'s' * (len(bookings) != 1)}"),
        legend="".join(
            f'<li data-status="{status.value}"><span class="swatch status-{status.value}"></span>'
            f'{_esc(_LABELS[status])} <span class="count">{counts[status]}</span></li>'
            for status in BOARD_STATUSES
        ),
        window_start=_esc(window.start.astimezone(tz).isoformat()),
        window_end=_esc(window.end.astimezone(tz).isoformat()),
        hour_height=HOUR_HEIGHT,
        columns_css=f"4.5rem repeat({max(len(primary), 1)}, minmax(10rem, 1fr))",
        heads="".join(page.head(number, resource) for number, resource in enumerate(primary, 2))
        or '<div class="head empty">No resources</div>',
        height=f"{height:.3f}",
        axis=page.axis(),
        tracks="".join(columns) or '<div class="track empty"></div>',
        now_line=page.now_line(),
        auxiliary=page.auxiliary(auxiliary, bookings),
    )


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


@attrs.frozen
class _Page:
    """What every fragment of one board needs to know: the zone, the day, the window, its hours and the names."""

    tz: ZoneInfo
    day: date
    window: Interval
    hours: tuple[datetime, ...]
    now: datetime
    names: dict[str, str]
    services: dict[str, str]

    def iso(self, instant: datetime) -> str:
        return instant.astimezone(self.tz).isoformat()

    def head(self, number: int, resource: Resource) -> str:
        kind = "staff" if resource.kind is ResourceKind.USER else (resource.type or "resource")
        capacity = "unlimited" if resource.unlimited else f"capacity {resource.capacity}"
        detail = kind if resource.capacity == 1 else f"{kind} · {capacity}"
        return (
            f'<div class="head" style="grid-column:{number}" data-resource-id="{_esc(resource.id)}">'
            f"<strong>{_esc(resource.name)}</strong><small>{_esc(detail)}</small></div>"
        )

    def axis(self) -> str:
        ticks = []
        for tick in self.hours:
            top = _offset(tick, self.window, HOUR_HEIGHT)
            ticks.append(f'<div class="tick" style="top:{top:.3f}px">{tick.astimezone(self.tz):%H:%M}</div>')
        return "".join(ticks)

    def column(
        self,
        number: int,
        resource: Resource,
        blocks: Sequence[Block],
        bookings: dict[str, Booking],
        opened: IntervalSet,
    ) -> str:
        lines = "".join(
            f'<div class="hour" style="top:{_offset(mark, self.window, HOUR_HEIGHT):.3f}px"></div>'
            for mark in self.hours
        )
        closed = IntervalSet.of(self.window.start, self.window.end) - opened
        shades = "".join(
            f'<div class="closed" style="top:{b.top:.3f}px;height:{b.height:.3f}px"></div>'
            for b in layout((Span("closed", resource.id, part) for part in closed), self.window)
        )
        return (
            f'<div class="track" style="grid-column:{number}" data-resource-id="{_esc(resource.id)}">'
            f"{lines}{shades}{''.join(self.block(b, bookings[b.span.booking_id]) for b in blocks)}</div>"
        )

    def block(self, block: Block, booking: Booking) -> str:
        service = self.services.get(booking.service_id, booking.service_id)
        customer = booking.customer_id or "no customer"
        times = f"{_clock(booking.start, self.tz, self.day)}–{_clock(booking.end, self.tz, self.day)}"
        classes = [f"block status-{booking.status.value}"]
        note = ""
        if booking.status is BookingStatus.PRE_BOOKING and not booking.takes_time(self.now):
            classes.append("lapsed")
            note = '<span class="note">hold expired</span>'
        if block.clipped_start:
            classes.append("clipped-start")
        if block.clipped_end:
            classes.append("clipped-end")
        units = dict(zip((rid for a in booking.assignments for rid in a.resource_ids), _units(booking), strict=True))
        count = units.get(block.span.resource_id, 1)
        with_ = [self.names.get(rid, rid) for rid in booking.resource_ids if rid != block.span.resource_id]
        extra = f'<span class="with">with {_esc(", ".join(with_))}</span>' if with_ else ""
        width = 100 / block.lanes
        style = (
            f"top:{block.top:.3f}px;height:{block.height:.3f}px;"
            f"left:calc({block.lane * width:.4f}% + 2px);width:calc({width:.4f}% - 4px)"
        )
        tip = f"{service} · {customer} · {times} · {_LABELS[booking.status]}"
        return (
            f'<div class="{" ".join(classes)}" style="{style}" title="{_esc(tip)}" '
            f'data-booking-id="{_esc(booking.id)}" data-resource-id="{_esc(block.span.resource_id)}" '
            f'data-status="{booking.status.value}" data-start="{self.iso(booking.start)}" '
            f'data-end="{self.iso(booking.end)}">'
            f'<strong class="service">{_esc(service)}{f" ×{count}" if count > 1 else ""}</strong> '
            f'<span class="customer">{_esc(customer)}</span> <span class="time">{_esc(times)}</span>'
            f"{extra}{note}</div>"
        )

    def now_line(self) -> str:
        # On the day shown, now is always in the window, which may end on it (a closing time to the minute).
        on_day = self.now.astimezone(self.tz).date() == self.day
        if not (on_day and self.window.start <= self.now <= self.window.end):
            return ""
        top = _offset(self.now, self.window, HOUR_HEIGHT)
        return (
            f'<div class="now-line" style="top:{top:.3f}px" data-now="{self.iso(self.now)}">'
            f"<span>{self.now.astimezone(self.tz):%H:%M}</span></div>"
        )

    def auxiliary(self, resources: Sequence[Resource], bookings: Sequence[Booking]) -> str:
        if not resources:
            return ""
        items = []
        for resource in resources:
            taken = [b for b in bookings if resource.id in b.resource_ids]
            rows = "".join(
                f'<li data-booking-id="{_esc(b.id)}" data-status="{b.status.value}">'
                f'<span class="swatch status-{b.status.value}"></span>'
                f"{_esc(_clock(b.start, self.tz, self.day))}–{_esc(_clock(b.end, self.tz, self.day))} "
                f"{_esc(self.services.get(b.service_id, b.service_id))} · {_esc(b.customer_id or 'no customer')}"
                f" · with {_esc(', '.join(self.names.get(r, r) for r in b.resource_ids if r != resource.id))}</li>"
                for b in taken
            )
            rows = rows or '<li class="idle">not booked this day</li>'
            items.append(
                f'<li data-resource-id="{_esc(resource.id)}"><strong>{_esc(resource.name)}</strong><ul>{rows}</ul></li>'
            )
        return f'<section class="auxiliary"><h2>Auxiliary resources</h2><ul>{"".join(items)}</ul></section>'


def _units(booking: Booking) -> list[int]:
    return [units for a, units in zip(booking.assignments, booking.units, strict=True) for _ in a.resource_ids]


_CSS: Final = """
:root { color-scheme: light; font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; padding: 16px 20px 24px; background: #f6f7f9; color: #1d2330; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 2px 0 10px; color: #556; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 0 0 12px; padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend .count { font-weight: 700; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; border: 2px solid;
  box-sizing: border-box; }
.board { display: grid; background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; }
.corner, .head { position: sticky; top: 0; z-index: 3; background: #fff; border-bottom: 1px solid #d5d9e0;
  padding: 6px 8px; min-height: 34px; }
.head { border-left: 1px solid #e3e6eb; display: flex; flex-direction: column; }
.head small { color: #667; }
.axis, .track { position: relative; height: var(--height); }
.axis { grid-row: 2; grid-column: 1; }
.tick { position: absolute; right: 8px; transform: translateY(-1px); font-size: 11px; color: #667;
  font-variant-numeric: tabular-nums; }
.track { grid-row: 2; border-left: 1px solid #e3e6eb; overflow: hidden; }
.hour { position: absolute; left: 0; right: 0; height: 0; border-top: 1px solid #e9ecf0; }
.closed { position: absolute; left: 0; right: 0;
  background: repeating-linear-gradient(135deg, #eef0f3 0 6px, #f7f8fa 6px 12px); }
.block { position: absolute; box-sizing: border-box; overflow: hidden; padding: 2px 5px; border-radius: 4px;
  border: 1px solid; border-left-width: 4px; font-size: 11px; line-height: 1.3; z-index: 1; }
.block .service { font-weight: 600; }
.block .time, .block .with, .block .note { display: block; color: #3b4252; }
.block .with { font-style: italic; }
.block.lapsed { opacity: .55; }
.block.clipped-start { border-top-style: dashed; }
.block.clipped-end { border-bottom-style: dashed; }
.status-pre_booking { background: #fff4d4; border-color: #d99a00; }
.block.status-pre_booking { border-style: dashed; border-left-style: solid; }
.status-confirmed { background: #dce8ff; border-color: #2f6fdb; }
.status-paid { background: #d8f3e2; border-color: #1f8a4c; }
.status-completed { background: #ececec; border-color: #7d7d7d; }
.status-no_show { background: #fde0e0; border-color: #c93434; }
.status-cancelled { background: #f3f3f3; border-color: #b0b0b0; }
.status-expired { background: #f7f1e3; border-color: #b59a5a; }
.now-line { position: absolute; left: 0; right: 0; height: 0; border-top: 2px solid #e0245e; z-index: 2;
  pointer-events: none; }
.now-line span { position: absolute; left: 4px; top: -9px; background: #e0245e; color: #fff;
  font-size: 10px; padding: 0 4px; border-radius: 3px; }
.body { grid-row: 2; grid-column: 1 / -1; position: relative; pointer-events: none; }
.auxiliary { margin-top: 16px; }
.auxiliary h2 { font-size: 15px; margin: 0 0 6px; }
.auxiliary > ul { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 8px 32px; }
.auxiliary ul ul { padding-left: 0; list-style: none; margin: 4px 0 0; }
.auxiliary ul ul li { display: flex; align-items: center; gap: 6px; }
.idle { color: #778; }
"""

_DOCUMENT: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{name}</h1><p>{when}</p></header>
<ul class="legend">{legend}</ul>
<main class="board" data-window-start="{window_start}" data-window-end="{window_end}" \
data-hour-height="{hour_height}" style="grid-template-columns:{columns_css};--height:{height}px">
<div class="corner"></div>{heads}
<div class="axis">{axis}</div>{tracks}
<div class="body">{now_line}</div>
</main>
{auxiliary}
</body>
</html>
"""
