"""
Calendar files (iCalendar, RFC 5545) for bookings: an invitation to attach to an e-mail, or a feed to subscribe to.

- `booking_calendar` makes one ``.ics`` file for one booking, with ``METHOD:REQUEST`` (a new or changed
  booking) or ``METHOD:CANCEL`` (RFC 5546), ready for `slotengine.adapters.notifiers.SMTPNotifier`'s ``ics``.
- `booking_event` makes the booking's VEVENT alone, to add to a calendar of your own.
- `agenda_feed` makes a whole agenda (a resource's, a staff member's) one calendar, to publish at a URL.

Every event is written in the zone you give (``DTSTART;TZID=Europe/Paris:...``), and the calendar carries a
VTIMEZONE for that zone generated from the tz database, so a calendar that knows no IANA names still places
it right across daylight-saving changes. The UID is derived from the tenant and the booking id
(``<booking_id>@<tenant>.slotengine``) and SEQUENCE is the booking's version, so an update or a cancellation
replaces the event a calendar already has instead of adding a second one.

Names are written as given, except that control characters (other than tabs and line breaks), which RFC 5545
text cannot hold, are written as spaces: a name holding an escape (U+001B) or a form feed (U+000C) shows a
space in its place. The stored values keep them; only the file leaves them out. Addresses (organizer,
attendee) are URIs and are refused with a control character, as is any text holding a lone surrogate, which
UTF-8 cannot write: `InvalidInputError` names the argument.

This module needs the ``icalendar`` package (``pip install slotengine[ical]``). Importing it works without;
calling its functions then raises `ImportError` saying what to install.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from slotengine._checks import shown, tuple_of
from slotengine._time import check_flag, get_zone, to_utc
from slotengine.booking import Booking
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import BookingStatus

if TYPE_CHECKING:
    import icalendar

__all__ = ["PRODID", "agenda_feed", "booking_calendar", "booking_event", "booking_uid", "event_status"]

PRODID: Final = "-//slotengine//slotengine//EN"
"""The product identifier written in every calendar slotengine makes."""

_MISSING: Final = "install slotengine[ical] to make calendar files (in a clone of slotengine: pip install -e '.[ical]')"

_STATUS: Final = {
    BookingStatus.PRE_BOOKING: "TENTATIVE",
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.PAID: "CONFIRMED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.EXPIRED: "CANCELLED",
}
_METHODS: Final = frozenset({"REQUEST", "CANCEL", "PUBLISH"})


# C0 controls other than tab and line breaks, DEL, and the C1 controls: RFC 5545 TEXT and parameter values
# cannot hold them (3.1, 3.3.11), and a calendar that meets one may refuse the whole file.
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _text(value: str) -> str:
    """
    *value* as calendar text: each control character (tab and line breaks aside) becomes a space.

    Names are stored verbatim (`slotengine.model.check_text`), so the file, not the model, is where a stray
    escape or form feed is dropped; line breaks stay (icalendar escapes them in text, and writes ``^n`` in a
    parameter, RFC 6868), a lone carriage return becoming a line break.
    """
    return _CONTROLS.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))


def _require() -> None:
    try:
        import icalendar  # noqa: F401
    except ImportError:
        raise ImportError(_MISSING) from None


def _unicode(value: str, field: str) -> str:
    """
    Return *value* if it is text UTF-8 can write, else refuse it naming *field*.

    A lone surrogate (left by a bad decode, or ``surrogateescape``) has no UTF-8 form, so the file could not
    be written: say which argument holds it rather than let a bare UnicodeEncodeError out.
    """
    given: object = value
    if not isinstance(given, str):
        msg = f"{field} must be text, not {type(given).__name__} {shown(given)}"
        raise InvalidInputError(msg, field=field)
    if not value.isascii():  # ASCII text cannot hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            msg = (
                f"{field} is not valid Unicode text: it holds a lone surrogate ({value[exc.start]!r} at position "
                f"{exc.start}), which a calendar file (UTF-8) cannot hold"
            )
            raise InvalidInputError(msg, field=field) from None
    return value


def _booking(value: object, field: str = "booking") -> Booking:
    """*value* if it is a `Booking`, else an `InvalidInputError` naming *field* (not an AttributeError later)."""
    if not isinstance(value, Booking):
        msg = f"{field} must be a Booking, not {type(value).__name__}"
        raise InvalidInputError(msg, field=field)
    return value


def _names(value: object, field: str) -> Mapping[str, str]:
    """*value* if it is a mapping of ids to names (each checked as text), else an `InvalidInputError` naming *field*."""
    if not isinstance(value, Mapping):
        msg = f"{field} must be a mapping of ids to names, such as {{'box1': 'Box 1'}}, not {type(value).__name__}"
        raise InvalidInputError(msg, field=field)
    for text in value.values():
        _unicode(text, field)
    return value


def booking_uid(booking_id: str, tenant: str = "default") -> str:
    """
    The booking's stable UID, ``<booking_id>@<tenant>.slotengine``, the same for every version of it.

    Characters other than letters, digits and ``-._~`` are percent-encoded, so any id makes a plain UID.

    Raises:
        InvalidInputError: the id or the tenant holds a lone surrogate, which has no UTF-8 form to encode.
    """
    _unicode(booking_id, "booking_id")
    _unicode(tenant, "tenant")
    return f"{urllib.parse.quote(booking_id, safe='-._~')}@{urllib.parse.quote(tenant, safe='-._~')}.slotengine"


def event_status(booking: Booking) -> str:
    """
    The VEVENT STATUS of *booking*.

    TENTATIVE for a pre-booking, CANCELLED for a cancelled or expired one, CONFIRMED otherwise (a completed
    or no-show booking did hold its time).
    """
    return _STATUS[booking.status]


# Every C0 control (tab and line breaks too), DEL and the C1 controls: an address is a URI, which holds none.
_ADDRESS_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _address(value: str, field: str) -> str:
    """
    A calendar user address: ``mailto:`` added to a bare e-mail address, other URIs kept.

    An address is a URI value, which cannot hold a control character; unlike a name, it is refused rather
    than written with a space, which would make it another address.
    """
    text = _unicode(value, field).strip(" \t\r\n")  # stray spaces and line ends around it, not other controls
    control = _ADDRESS_CONTROLS.search(text)
    if control is not None:
        msg = f"{field} holds the control character U+{ord(control.group()):04X}, which an address cannot hold"
        raise InvalidInputError(msg, field=field)
    if not text:
        msg = f"{field} must be an e-mail address or a URI such as mailto:desk@shop.example"
        raise InvalidInputError(msg, field=field)
    return text if ":" in text else f"mailto:{text}"


def _second_occurrence(instant: datetime, tz: ZoneInfo) -> bool:
    """Whether *instant* is the second of two instants with the same wall time on *tz*'s clock."""
    local = instant.astimezone(tz)
    return bool(local.fold) and local.replace(fold=0).utcoffset() != local.utcoffset()


def _walls(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """
    *start* and *end* on *tz*'s clock, or both in UTC if either is the second occurrence of a wall time.

    RFC 5545 (3.3.5) reads a repeated local time with a TZID as its first occurrence, so an instant in the
    second pass of the hour the clocks go back (02:30 CET after 02:30 CEST) can only be written in UTC.
    """
    if _second_occurrence(start, tz) or _second_occurrence(end, tz):
        return start.astimezone(UTC), end.astimezone(UTC)
    return start.astimezone(tz), end.astimezone(tz)


_SCAN_STEP: Final = 6 * 3600
"""Seconds between the samples that look for a change of offset; shorter periods between two changes are missed.

The tz database has none shorter than six days since 1970 (Brazil's 2000 changes, Gaza's planned ones), so
six hours leaves a wide margin, while icalendar's own ``Timezone.from_tzinfo`` steps 64 days at first and
drops short periods such as Morocco's Ramadan changes (Africa/Casablanca 2013, 2014, 2019, 2027)."""


def _observance(tz: ZoneInfo, at: int) -> tuple[timedelta, bool, str]:
    """The UTC offset, whether it is daylight time, and the abbreviation of *tz* at POSIX second *at*."""
    local = datetime.fromtimestamp(at, UTC).astimezone(tz)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None  # a ZoneInfo always knows its offset  # noqa: S101
    return offset, bool(dst), local.tzname() or _offset_name(offset)


def _offset_name(offset: timedelta) -> str:
    sign, rest = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, minutes = divmod(int(rest.total_seconds()) // 60, 60)
    return f"{sign}{hours:02d}{minutes:02d}"


@functools.lru_cache(maxsize=256)
def _changes(zone: str, first: int, last: int) -> tuple[tuple[int, tuple[timedelta, bool, str]], ...]:
    """
    Every change of *zone*'s offset, daylight flag or abbreviation from POSIX second *first* to *last*.

    Each is ``(second, observance from then on)``, the first entry being the observance at *first*. The tz
    database's changes are found by sampling every `_SCAN_STEP` and bisecting to the second where the sample
    differs, so each is exact: the offsets come from `zoneinfo`, the same data every instant is placed with.
    """
    tz = ZoneInfo(zone)
    current = _observance(tz, first)
    out = [(first, current)]
    at = first
    while at < last:
        probe = min(at + _SCAN_STEP, last)
        seen = _observance(tz, probe)
        if seen == current:
            at = probe
            continue
        lo, hi = at, probe  # current at lo, something else at hi: find the first second that differs
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _observance(tz, mid) == current:
                lo = mid
            else:
                hi = mid
        current = _observance(tz, hi)
        out.append((hi, current))
        at = hi
    return tuple(out)


def _vtimezone(zone: str, instants: Iterable[datetime]) -> icalendar.Timezone:
    """
    A VTIMEZONE for *zone* that covers *instants* with a year or more to spare on either side.

    Every change of offset in those years is in it (see `_changes`), each observance written as RFC 5545
    says: its DTSTART is the onset on the clock of the offset before it (TZOFFSETFROM), and observances that
    repeat (the same offsets, name and kind) are one component with an RDATE per further onset.
    """
    import icalendar

    years = [i.year for i in instants] or [2000]
    first, last = date(max(min(years) - 1, 1970), 1, 1), date(max(years) + 2, 1, 1)
    start = int(datetime(first.year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(last.year, 1, 1, tzinfo=UTC).timestamp())
    onsets: dict[tuple[bool, timedelta, timedelta, str], list[datetime]] = {}
    before: timedelta | None = None
    for at, (offset, dst, name) in _changes(zone, start, end):
        before = offset if before is None else before
        wall = datetime.fromtimestamp(at, UTC).replace(tzinfo=None) + before
        onsets.setdefault((dst, before, offset, name), []).append(wall)
        before = offset
    vtimezone = icalendar.Timezone()
    vtimezone.add("TZID", zone)
    vtimezone.add("COMMENT", f"This timezone only works from {first} to {last}.")
    for (dst, offset_from, offset_to, name), walls in onsets.items():
        component = icalendar.TimezoneDaylight() if dst else icalendar.TimezoneStandard()
        component.add("DTSTART", walls[0])
        if walls[1:]:
            component.add("RDATE", walls[1:])
        component.add("TZNAME", name)
        component.add("TZOFFSETFROM", offset_from)
        component.add("TZOFFSETTO", offset_to)
        vtimezone.add_component(component)
    return vtimezone


def booking_event(
    booking: Booking,
    *,
    business: str,
    service_name: str,
    resource_names: Iterable[str] = (),
    organizer: str,
    attendee: str | None = None,
    zone: str,
    tenant: str = "default",
    stamp: datetime | None = None,
    location: str | None = None,
    cancelled: bool = False,
) -> icalendar.Event:
    """
    The VEVENT for *booking*, its times in *zone*.

    Args:
        booking: The booking, as it is now.
        business: The business's name (in the SUMMARY and as the organizer's name).
        service_name: What was booked (the SUMMARY).
        resource_names: Who or what serves it (in the DESCRIPTION): a collection of names, read once (a
            generator will do; a single string is refused, not written letter by letter).
        organizer: The business's address (``bookings@shop.example`` or a ``mailto:`` URI).
        attendee: The client's address, or None to name no attendee (a feed for staff should not).
        zone: The IANA zone to write the times in (the business's, or the client's).
        tenant: The tenant, part of the UID.
        stamp: When this version was made (DTSTAMP, UTC); the booking's creation by default, since the
            library reads no clock: pass your clock's now.
        location: Where, if you want it shown.
        cancelled: Write STATUS:CANCELLED whatever the booking's status (for a METHOD:CANCEL message).

    Raises:
        ImportError: icalendar is not installed.
        InvalidInputError: *booking* is not a `Booking`, *resource_names* not a collection of text, an unknown
            zone, an empty address or one with a control character, a naive *stamp*, text holding a lone
            surrogate (the error names the argument).
    """
    _require()
    import icalendar

    booking = _booking(booking)
    tz = get_zone(zone)
    for field, text in (("business", business), ("service_name", service_name), ("location", location or "")):
        _unicode(text, field)
    names = tuple_of(resource_names, str, "resource_names")
    for name in names:
        _unicode(name, "resource_names")
    event = icalendar.Event()
    event.add("uid", booking_uid(booking.id, tenant))
    event.add("dtstamp", to_utc(stamp if stamp is not None else booking.created_at, "stamp"))
    start, end = _walls(booking.start, booking.end, tz)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("sequence", booking.version)
    event.add("status", "CANCELLED" if check_flag(cancelled, "cancelled") else event_status(booking))
    event.add("summary", _text(f"{service_name} – {business}"))
    lines = [service_name]
    if names:
        lines.append("With " + ", ".join(names))
    lines.append(f"Booking {booking.id}")
    event.add("description", _text("\n".join(lines)))
    if location:
        event.add("location", _text(location))
    event.add("transp", "OPAQUE")
    event.add("organizer", icalendar.vCalAddress(_address(organizer, "organizer"), params={"CN": _text(business)}))
    if attendee is not None:
        partstat = "NEEDS-ACTION" if booking.status is BookingStatus.PRE_BOOKING else "ACCEPTED"
        event.add(
            "attendee",
            icalendar.vCalAddress(
                _address(attendee, "attendee"),
                params={"ROLE": "REQ-PARTICIPANT", "PARTSTAT": partstat, "RSVP": "FALSE"},
            ),
        )
    return event


def booking_calendar(
    booking: Booking,
    *,
    business: str,
    service_name: str,
    resource_names: Iterable[str] = (),
    organizer: str,
    attendee: str | None = None,
    zone: str,
    tenant: str = "default",
    method: str | None = None,
    stamp: datetime | None = None,
    location: str | None = None,
) -> bytes:
    """
    One booking as a complete ``.ics`` file: VCALENDAR with PRODID, VERSION, METHOD, a VTIMEZONE, one VEVENT.

    *method* is ``"REQUEST"`` (a new or changed booking) or ``"CANCEL"`` (its STATUS is then CANCELLED);
    by default it is CANCEL for a cancelled or expired booking and REQUEST otherwise. The other arguments are
    `booking_event`'s.

    Raises:
        ImportError: icalendar is not installed.
        InvalidInputError: *booking* is not a `Booking`, an unknown method or zone, an empty address or one
            with a control character, text holding a lone surrogate (the error names the argument).
    """
    _require()
    booking = _booking(booking)
    given: object = method
    if given is not None and not isinstance(given, str):
        msg = f"method must be REQUEST, CANCEL or PUBLISH as text, or None, got {type(given).__name__} {shown(given)}"
        raise InvalidInputError(msg, field="method")
    chosen = (method or ("CANCEL" if event_status(booking) == "CANCELLED" else "REQUEST")).upper()
    if chosen not in _METHODS:
        msg = f"method must be REQUEST or CANCEL (or PUBLISH), got {method!r}"
        raise InvalidInputError(msg, field="method")
    event = booking_event(
        booking,
        business=business,
        service_name=service_name,
        resource_names=resource_names,
        organizer=organizer,
        attendee=attendee,
        zone=zone,
        tenant=tenant,
        stamp=stamp,
        location=location,
        cancelled=chosen == "CANCEL",
    )
    calendar = _calendar(chosen)
    calendar.add_component(_vtimezone(get_zone(zone).key, [booking.start, booking.end]))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def _calendar(method: str, name: str | None = None) -> icalendar.Calendar:
    import icalendar

    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", icalendar.vText(_text(name)))  # TEXT, escaped like SUMMARY
    return calendar


def agenda_feed(
    bookings: Iterable[Booking],
    *,
    business: str,
    service_names: Mapping[str, str],
    resource_names: Mapping[str, str],
    organizer: str,
    zone: str,
    tenant: str = "default",
    name: str | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """
    An agenda (such as ``engine.agenda(period)`` filtered to one resource) as one calendar to subscribe to.

    Each booking is one VEVENT (`booking_event`, without attendee: a feed names no client), in booking start
    order; include cancelled bookings for a while so that subscribed calendars drop them (STATUS:CANCELLED).
    *service_names* and *resource_names* map ids to the names shown (an id stands for itself if missing).
    METHOD is PUBLISH; *name* becomes the calendar's display name (X-WR-CALNAME).

    Raises:
        ImportError: icalendar is not installed.
        InvalidInputError: *bookings* is not a collection of `Booking` values, *service_names* or
            *resource_names* not a mapping of ids to text, an unknown zone, an empty organizer or one with a
            control character, text holding a lone surrogate (the error names the argument).
    """
    _require()
    chosen = sorted(tuple_of(bookings, Booking, "bookings"), key=lambda b: (b.start, b.id))
    key = get_zone(zone).key
    _unicode(name or "", "name")
    service_names = _names(service_names, "service_names")
    resource_names = _names(resource_names, "resource_names")
    calendar = _calendar("PUBLISH", name)
    calendar.add_component(_vtimezone(key, [i for b in chosen for i in (b.start, b.end)]))
    for booking in chosen:
        calendar.add_component(
            booking_event(
                booking,
                business=business,
                service_name=service_names.get(booking.service_id, booking.service_id),
                resource_names=[resource_names.get(rid, rid) for rid in booking.resource_ids],
                organizer=organizer,
                zone=key,
                tenant=tenant,
                stamp=stamp,
            )
        )
    return bytes(calendar.to_ical())
