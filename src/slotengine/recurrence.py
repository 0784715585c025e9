"""
Recurrence rules (RFC 5545 RRULE, EXDATE, RDATE) in a zone's local wall time.

`Recurrence` is a frozen value over `dateutil.rrule`: dateutil expands the rule in *naive local wall time*
(so a weekly 10:00 rule stays at 10:00 on the clock across DST changes, the behaviour calendar users expect),
and slotengine turns each occurrence into an instant with `slotengine._time.localize`, the library's one
wall-time rule.

dateutil is untyped in places, calls ``datetime.now()`` when no ``dtstart`` is given, and loops forever on
some inputs (``INTERVAL=0``); all of that stays inside this module: ``dtstart`` is always explicit, the rule
text is checked here before dateutil sees it, and dateutil is imported only when a rule is built, so that
``import slotengine`` stays cheap.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final, cast

import attrs

from slotengine._time import (
    MAX_INSTANT,
    MIN_INSTANT,
    check_flag,
    get_zone,
    is_ambiguous,
    is_nonexistent,
    localize,
    to_utc,
)
from slotengine.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from zoneinfo import ZoneInfo

    from dateutil.rrule import rruleset

__all__ = ["FREQUENCIES", "Recurrence", "occurrence_days"]

FREQUENCIES: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
"""The RRULE ``FREQ`` values, from the coarsest to the finest."""

# Occurrences are found in wall time and then localized; a gap can move a wall time forward by its length
# (one hour, half an hour, once a whole day: Pacific/Apia skipped 2011-12-30), so queries look this far
# beyond their bounds in wall time and then filter on the exact instants.
_MARGIN: Final = timedelta(days=2)
_MIN_YEAR: Final = MIN_INSTANT.year
_MAX_YEAR: Final = MAX_INSTANT.year
_ICAL_DATETIME: Final = "%Y%m%dT%H%M%S"
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_INT_RANGES: Final = {
    "BYMONTH": (1, 12),
    "BYMONTHDAY": (1, 31),
    "BYYEARDAY": (1, 366),
    "BYWEEKNO": (1, 53),
}
_UNTIL_RE: Final = re.compile(r"^(\d{8})(T\d{6})?(Z)?$", re.ASCII)
_WHOLE_RE: Final = re.compile(r"\d{1,18}", re.ASCII)
_SIGNED_RE: Final = re.compile(r"[+-]?\d{1,3}", re.ASCII)
_BYDAY_RE: Final = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)
_NOT_WITH: Final = {
    # RFC 5545, section 3.3.10: which BYxxx parts a FREQ forbids.
    "BYMONTHDAY": ("WEEKLY",),
    "BYYEARDAY": ("DAILY", "WEEKLY", "MONTHLY"),
    "BYWEEKNO": ("MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"),
}
_ICAL_VALUE_RE: Final = re.compile(r"^\d{8}T\d{6}Z?$")


def _rule_error(rule: str, why: str) -> InvalidInputError:
    shown = repr(rule) if len(rule) <= 200 else f"{rule[:100]!r}... ({len(rule):,} characters)"
    return InvalidInputError(f"invalid RRULE {shown}: {why}", field="rule", rule=rule)


def _split_rule(rule: str) -> list[tuple[str, str]]:
    """Split RRULE text into ``(KEY, VALUE)`` pairs, upper-cased, refusing anything that is not one rule."""
    body = rule.strip()
    if body[:6].upper() == "RRULE:":
        body = body[6:]
    if "\n" in body or "\r" in body:
        raise _rule_error(rule, "give one RRULE value; use Recurrence.from_ical() for iCalendar text")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in body.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not sep or not key or not value:
            raise _rule_error(rule, f"{item!r} is not a KEY=VALUE part (for example FREQ=WEEKLY)")
        if key in seen:
            raise _rule_error(rule, f"{key} is given twice")
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _positive_int(rule: str, key: str, value: str) -> int:
    # ASCII digits only, and few enough for int() (which refuses more than 4,300 digits, and reads "1_0").
    if not _WHOLE_RE.fullmatch(value) or int(value) < 1:
        shown = value if len(value) <= 20 else f"{value[:20]}... ({len(value):,} characters)"
        raise _rule_error(rule, f"{key} must be a whole number of at least 1 (at most 18 digits), got {shown!r}")
    return int(value)


def _check_int_list(rule: str, key: str, value: str) -> list[int]:
    low, high = _INT_RANGES[key]
    numbers: list[int] = []
    for text in value.split(","):
        if not _SIGNED_RE.fullmatch(text):
            shown = text if len(text) <= 20 else f"{text[:20]}..."
            raise _rule_error(rule, f"{key} takes whole numbers, got {shown!r}")
        number = int(text)
        allowed = low <= number <= high or (key != "BYMONTH" and -high <= number <= -low)
        if not allowed:
            span = f"{low}..{high}" if key == "BYMONTH" else f"{low}..{high} or -{high}..-{low}"
            raise _rule_error(rule, f"{key} values must be in {span}, got {number}")
        numbers.append(number)
    return numbers


def _check_forbidden_parts(rule: str, parts: dict[str, str]) -> None:
    """Refuse the BYxxx parts RFC 5545 (section 3.3.10) forbids with the rule's FREQ, naming the part."""
    for key, freqs in _NOT_WITH.items():
        if key in parts and parts["FREQ"] in freqs:
            raise _rule_error(rule, f"{key} cannot be used with FREQ={parts['FREQ']} (RFC 5545, section 3.3.10)")
    if "BYSETPOS" in parts and not any(key.startswith("BY") and key != "BYSETPOS" for key in parts):
        # dateutil would pick from the one date FREQ gives (dtstart's day), not the "last day" the writer meant.
        raise _rule_error(
            rule,
            "BYSETPOS picks from the dates the other BYxxx parts make, so RFC 5545 (section 3.3.10) allows it "
            "only with another BYxxx part: for the last weekday of the month write "
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        )
    if "BYDAY" in parts:
        _check_byday(rule, parts)


def _check_byday(rule: str, parts: dict[str, str]) -> None:
    """
    Check BYDAY's weekdays and their numbers against RFC 5545, section 3.3.10.

    A numbered weekday (``1SA``, ``-1FR``) means "the nth one in the month or year", so it belongs to MONTHLY
    and YEARLY rules only, and not to a YEARLY rule with BYWEEKNO; dateutil would otherwise read ``1SA`` in a
    WEEKLY rule as every Saturday.
    """
    freq = parts["FREQ"]
    # "within a MONTHLY rule, or a YEARLY rule with BYMONTH, the number is of the weekday within the month"
    most = 5 if freq == "MONTHLY" or (freq == "YEARLY" and "BYMONTH" in parts) else 53
    for item in parts["BYDAY"].split(","):
        match = _BYDAY_RE.fullmatch(item)
        if match is None:
            shown = item if len(item) <= 20 else f"{item[:20]}..."
            raise _rule_error(rule, f"BYDAY takes weekdays such as MO or 1MO or -1FR, got {shown!r}")
        number = match.group(2)
        if number is None:
            continue
        if freq not in {"MONTHLY", "YEARLY"}:
            raise _rule_error(
                rule,
                f"BYDAY={item} is numbered, which RFC 5545 allows only with FREQ=MONTHLY or FREQ=YEARLY, "
                f"not FREQ={freq}; write BYDAY={match.group(3)} for every {match.group(3)}",
            )
        if "BYWEEKNO" in parts:
            raise _rule_error(rule, f"BYDAY={item} is numbered, which RFC 5545 forbids together with BYWEEKNO")
        if not int(number):
            raise _rule_error(rule, f"BYDAY={item}: weekdays are numbered from 1, or from -1 counting from the end")
        if int(number) > most:
            within = "month" if most == 5 else "year"
            raise _rule_error(rule, f"BYDAY={item}: a {within} has at most {most} of each weekday")


def _canonical_until(rule: str, value: str) -> str:
    match = _UNTIL_RE.match(value)
    if match is None:
        raise _rule_error(rule, f"UNTIL must look like 20251231 or 20251231T235959, got {value!r}")
    day, clock, utc = match.groups()
    if utc:
        raise _rule_error(
            rule,
            "UNTIL must be a local wall time like dtstart, without 'Z' (for example UNTIL=20251231T235959); "
            "Recurrence.from_ical() converts a UTC UNTIL for you",
        )
    try:
        parsed = datetime.strptime(day + (clock or "T235959"), _ICAL_DATETIME)  # noqa: DTZ007 - a wall time
    except ValueError:
        raise _rule_error(rule, f"UNTIL {value!r} is not a real date and time") from None
    # A date-only UNTIL means "up to and including that day", which is what people mean by it; dateutil would
    # read it as midnight and silently drop the last day's occurrence.
    return _ical_text(parsed)


def _canonical_rule(value: object) -> str:
    """
    Check RRULE text and return it in a canonical spelling (upper case, no ``RRULE:`` prefix).

    The checks are the ones dateutil does not make, or makes by hanging or by warning: ``FREQ`` is present and
    known, ``INTERVAL`` and ``COUNT`` are positive, ``COUNT`` and ``UNTIL`` are not mixed (RFC 5545 forbids
    it), numeric ``BY*`` lists are in range, and ``BYMONTHDAY`` can happen in at least one ``BYMONTH`` month
    (``FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30`` would make dateutil search until the year 9999). The parts
    RFC 5545 (section 3.3.10) forbids with a frequency are refused, because dateutil reads them another way:
    ``BYMONTHDAY`` with WEEKLY, ``BYYEARDAY`` with DAILY, WEEKLY or MONTHLY, ``BYWEEKNO`` without YEARLY,
    a numbered ``BYDAY`` (``1SA``) outside MONTHLY and YEARLY or with ``BYWEEKNO``, and ``BYSETPOS`` without
    another ``BYxxx`` part.
    """
    if not isinstance(value, str):
        msg = f"a recurrence rule is RRULE text such as 'FREQ=WEEKLY;BYDAY=MO', not {type(value).__name__}"
        raise InvalidInputError(msg, field="rule")
    pairs = _split_rule(value)
    parts = dict(pairs)
    if "FREQ" not in parts:
        raise _rule_error(value, "FREQ is missing (for example FREQ=WEEKLY)")
    if parts["FREQ"] not in FREQUENCIES:
        raise _rule_error(value, f"FREQ must be one of {', '.join(FREQUENCIES)}, got {parts['FREQ']!r}")
    if "DTSTART" in parts:
        raise _rule_error(value, "DTSTART is not part of an RRULE; pass dtstart= to Recurrence")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _rule_error(value, "COUNT and UNTIL cannot be combined (RFC 5545); keep one of them")
    for key in ("INTERVAL", "COUNT"):
        if key in parts:
            _positive_int(value, key, parts[key])
    _check_forbidden_parts(value, parts)
    numbers = {key: _check_int_list(value, key, parts[key]) for key in _INT_RANGES if key in parts}
    if "BYMONTH" in numbers and "BYMONTHDAY" in numbers:
        longest = max(_DAYS_IN_MONTH[month - 1] for month in numbers["BYMONTH"])
        if all(abs(day) > longest for day in numbers["BYMONTHDAY"]):
            raise _rule_error(value, "no BYMONTHDAY exists in any BYMONTH month, so the rule never happens")
    if "UNTIL" in parts:
        pairs = [(k, _canonical_until(value, v) if k == "UNTIL" else v) for k, v in pairs]
    return ";".join(f"{k}={v}" for k, v in pairs)


def _check_wall(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        msg = (
            f"{name} must be a naive datetime in local wall time (for example datetime(2025, 1, 4, 10, 0)), "
            f"not {type(value).__name__} {value!r}"
        )
        raise InvalidInputError(msg, field=name)
    if value.tzinfo is not None:
        msg = (
            f"{name} {value.isoformat()} must be a naive local wall time: the recurrence's zone says where "
            "it is read, and an aware datetime would pin it to one UTC offset across DST changes"
        )
        raise InvalidInputError(msg, field=name)
    if not _MIN_YEAR <= value.year < _MAX_YEAR:
        msg = f"{name} {value.isoformat()} is outside the accepted years {_MIN_YEAR} to {_MAX_YEAR - 1}"
        raise InvalidInputError(msg, field=name)
    return value.replace(fold=0)


def _whole_seconds(value: datetime, name: str) -> datetime:
    """
    Return *value* if it has no fraction of a second, else refuse it naming *name*.

    dateutil drops a dtstart's microseconds and iCalendar date-times have none, so a fraction would make an
    exdate miss the occurrence it names and change the recurrence on its way through `Recurrence.to_ical`.
    """
    if value.microsecond:
        msg = (
            f"{name} {value.isoformat()} has a fraction of a second: recurrences count whole seconds, "
            f"as iCalendar does; give {value.replace(microsecond=0).isoformat()} or the next second"
        )
        raise InvalidInputError(msg, field=name)
    return value


def _dtstart(value: object) -> datetime:
    if value is None:
        msg = (
            "a recurrence needs an explicit dtstart (its first local wall time); "
            "dateutil would silently use the current time"
        )
        raise InvalidInputError(msg, field="dtstart")
    return _whole_seconds(_check_wall(value, "dtstart"), "dtstart")


def _check_date(value: object, name: str) -> datetime:
    """An exdate or rdate: a naive wall time, or an aware datetime, which names one instant (kept in UTC)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _whole_seconds(to_utc(value, name), name)
    return _whole_seconds(_check_wall(value, name), name)


def _walls(values: Iterable[datetime], name: str) -> tuple[datetime, ...]:
    if isinstance(values, (str, bytes, datetime)):
        values = (values,)
    try:
        items = list(values)
    except TypeError:
        msg = f"{name} must be a collection of datetimes (wall times or aware instants), not {type(values).__name__}"
        raise InvalidInputError(msg, field=name) from None
    return tuple(_check_date(item, name) for item in items)


def _exact(values: tuple[datetime, ...], tz: ZoneInfo, name: str) -> tuple[datetime, ...]:
    """
    Return exdates or rdates sorted, without duplicates, each instant as the wall time that names it.

    An instant no wall time names by the wall-time rule (the second pass of a fold) stays in UTC, after the
    wall times of its clock time, so that it keeps its meaning.
    """
    out: set[datetime] = set()
    for value in values:
        if value.tzinfo is None:
            out.add(value)
        else:
            wall = _wall_of(value, tz)
            out.add(_check_wall(wall, name) if localize(wall, tz) == value else value)
    return tuple(sorted(out, key=lambda d: (d, False) if d.tzinfo is None else (_wall_of(d, tz), True)))


def _exdates(values: Iterable[datetime]) -> tuple[datetime, ...]:
    return _walls(values, "exdates")


def _rdates(values: Iterable[datetime]) -> tuple[datetime, ...]:
    return _walls(values, "rdates")


def _zone_name(value: object) -> str:
    return get_zone(value).key


def _fmt_wall(wall: datetime) -> str:
    text = wall.strftime("%Y-%m-%d %H:%M")
    text = text + wall.strftime(":%S") if wall.second or wall.microsecond else text
    return text if wall.tzinfo is None else text + " UTC"


@attrs.frozen(repr=False)
class Recurrence:
    """
    An RFC 5545 recurrence (RRULE with optional EXDATEs and RDATEs) read in one zone's local wall time.

    Occurrences are generated by dateutil in **naive local wall time** from ``dtstart``, so they keep their
    clock time across DST changes (a weekly 10:00 rule is at 10:00 in winter and in summer). Each one then
    becomes an instant by the wall-time rule of `slotengine._time.localize` (RFC 5545):

    * a wall time in a DST **gap** is read with the UTC offset before the gap, so it moves forward by the
      gap's length (02:30 on the night Paris springs forward is 03:30 CEST);
    * a wall time in a DST **fold** means its **first** occurrence (02:30 on the night Paris falls back is
      02:30 CEST, the earlier of the two).

    Two wall times that land on the same instant (02:30 moved to 03:30, and 03:30 itself) are one occurrence.

    **Invalid dates are skipped, never clamped** (dateutil and RFC 5545): a monthly rule on the 31st
    (``FREQ=MONTHLY;BYMONTHDAY=31``, or ``FREQ=MONTHLY`` from a dtstart on the 31st) happens only in months
    that have a 31st, and a yearly rule from February 29 only in leap years. For "the last day of every
    month" use ``BYMONTHDAY=-1``. ``dtstart`` counts as an occurrence only when it matches the rule
    (dateutil's reading; ``COUNT`` counts the occurrences actually produced).

    Args:
        rule: the RRULE value, such as ``"FREQ=WEEKLY;INTERVAL=2;BYDAY=SA"`` (``RRULE:`` may prefix it).
            ``UNTIL`` is a local wall time; a date-only ``UNTIL`` includes that whole day.
        dtstart: the first local wall time, a naive `datetime`. Always required.
        zone: the IANA zone the wall times are read in.
        exdates: wall times removed from the occurrences. Each is read by the wall-time rule and removes the
            occurrence at that instant (RFC 5545 matches instants: 02:30 on the night Paris springs forward
            removes an occurrence written 02:30 or 03:30). An aware datetime names its instant exactly; it is
            kept as its wall time, or in UTC when it is the second pass of a fold, which no wall time names.
        rdates: wall times added to the occurrences, or aware instants, kept like exdates.

    Raises:
        InvalidInputError: the rule text is not a valid RRULE (unknown FREQ, ``INTERVAL=0``, COUNT mixed with
            UNTIL, out-of-range ``BY*`` values, ...), ``dtstart`` is missing, aware or not a datetime, or an
            exdate/rdate is not a datetime, or ``dtstart``, an exdate or an rdate has a fraction of a second
            (iCalendar and dateutil count whole seconds; the error names the argument).
        UnknownTimeZoneError: *zone* is not a known IANA zone.
    """

    rule: str = attrs.field(converter=_canonical_rule)
    dtstart: datetime = attrs.field(converter=_dtstart)
    zone: str = attrs.field(converter=_zone_name)
    exdates: tuple[datetime, ...] = attrs.field(default=(), converter=_exdates)
    rdates: tuple[datetime, ...] = attrs.field(default=(), converter=_rdates)
    _rset: rruleset = attrs.field(init=False, eq=False, hash=False, repr=False)
    _excluded: frozenset[datetime] = attrs.field(init=False, eq=False, hash=False, repr=False)
    _added: tuple[datetime, ...] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        tz = self.tz
        object.__setattr__(self, "exdates", _exact(self.exdates, tz, "exdates"))
        object.__setattr__(self, "rdates", _exact(self.rdates, tz, "rdates"))
        object.__setattr__(self, "_rset", _build(self.rule, self.dtstart, self.exdates, self.rdates))
        # dateutil matches exdates on wall times; queries for instants also drop every occurrence at an
        # exdate's instant, and add the rdates that only an instant names.
        excluded = frozenset(d if d.tzinfo is not None else localize(d, tz) for d in self.exdates)
        object.__setattr__(self, "_excluded", excluded)
        object.__setattr__(self, "_added", tuple(d for d in self.rdates if d.tzinfo is not None))

    # --- construction from iCalendar text ---------------------------------------------------------------

    @classmethod
    def from_ical(cls, text: str, zone: str | None = None) -> Recurrence:
        """
        Build a recurrence from iCalendar lines: ``DTSTART``, one ``RRULE``, and any ``EXDATE``/``RDATE``.

        ``DTSTART`` is required (a rule without one has no first occurrence, and dateutil would use the
        current time). Its ``TZID`` gives the zone when *zone* is not passed; when both are given they must
        agree. Values in UTC (ending in ``Z``), as calendar exports write them, are converted to local wall
        time in the zone; an EXDATE or RDATE in the second pass of a fold, which no wall time names, is kept
        as its UTC instant (EXDATE and RDATE match occurrences as instants, RFC 5545). A UTC ``DTSTART`` in
        the second pass of a fold keeps its instant too: its wall time becomes an exdate and the instant an
        rdate, so the first occurrence is not an hour early (later wall times inside that fold, of a rule
        that repeats more than hourly, still take the first pass, by the wall-time rule).

        A UTC ``UNTIL`` bounds the occurrences' instants, inclusively (RFC 5545): it becomes the local wall time
        that keeps exactly the occurrences at or before it. Next to a DST gap a wall time is moved past later
        ones (02:45 on the night Paris springs forward is 03:45 CEST, after an UNTIL at 03:15 CEST), so the
        local ``UNTIL`` then ends before such an occurrence, or, when a kept one follows it, the occurrence
        becomes an exdate.

        Lines may end in CRLF or LF and may be folded (RFC 5545, section 3.1), and parameter values may be
        quoted (``TZID="Europe/Paris"``).

        Raises:
            InvalidInputError: a line is not one of those properties, DTSTART is missing or date-only, the
                zone is missing or contradicts TZID, or a value is malformed.
            UnknownTimeZoneError: the zone is not a known IANA zone.
        """
        if not isinstance(cast("object", text), str):
            msg = f"iCalendar text must be a string, not {type(text).__name__}"
            raise InvalidInputError(msg)
        lines = _unfold(text)
        props: dict[str, list[tuple[dict[str, str], str]]] = {}
        for line in lines:
            name, params, value = _content_line(line)
            if name not in {"DTSTART", "RRULE", "EXDATE", "RDATE"}:
                msg = f"unsupported iCalendar line {line!r}: a Recurrence reads DTSTART, RRULE, EXDATE, RDATE"
                raise InvalidInputError(msg)
            props.setdefault(name, []).append((params, value))
        if "DTSTART" not in props:
            msg = "an RRULE needs a DTSTART line (for example DTSTART;TZID=Europe/Paris:20250104T100000)"
            raise InvalidInputError(msg, field="dtstart")
        if len(props["DTSTART"]) > 1 or len(props.get("RRULE", ())) != 1:
            msg = "iCalendar text for a Recurrence needs exactly one DTSTART and one RRULE line"
            raise InvalidInputError(msg)
        start_params, start_value = props["DTSTART"][0]
        zone_name = _agree_zone(zone, start_params.get("TZID"))
        tz = get_zone(zone_name)
        dtstart = _ical_wall(start_value, start_params, tz, "DTSTART")
        written = props["RRULE"][0][1]
        rule = local = _rule_with_local_until(written, tz)
        exdates = [_ical_date(v, p, tz, "EXDATE") for p, vs in props.get("EXDATE", ()) for v in vs.split(",")]
        rdates = [_ical_date(v, p, tz, "RDATE") for p, vs in props.get("RDATE", ()) for v in vs.split(",")]
        start = _ical_date(start_value, start_params, tz, "DTSTART")
        try:
            plain = cls(local, dtstart, zone_name, rdates=rdates)  # checks the rule before dateutil walks it
            added = {d if d.tzinfo is not None else localize(d, tz) for d in plain.rdates}
            # A UTC DTSTART in the second pass of a fold, which its wall time does not name: the first
            # occurrence, if the rule has one there, is that instant and not the wall time's first pass.
            second_pass = start.tzinfo is not None and localize(dtstart, tz) != start
            if second_pass and dtstart in plain.between_walls(dtstart, dtstart, inc=True):
                exdates.append(dtstart)
                rdates.append(start)
                added.add(start)
            bound = _utc_until_value(written)
            if bound is not None:  # RFC 5545: a UTC UNTIL bounds the occurrences' instants
                rule, cut = _cut_at(plain, bound, frozenset(added))
                exdates += cut
            return cls(rule, dtstart, zone_name, exdates=exdates, rdates=rdates)
        except InvalidInputError as exc:
            if local == written or exc.details.get("rule") != local:
                raise
            # The rule the user wrote, not the one with UNTIL converted to local time.
            msg = str(exc).replace(repr(local), repr(written), 1)
            raise type(exc)(msg, **{**exc.details, "rule": written}) from None

    def to_ical(self) -> str:
        """
        Return the recurrence as iCalendar content lines: DTSTART with TZID, RRULE, then any EXDATE and RDATE.

        The text is ready for a file (RFC 5545, section 3.1): each line ends in CRLF, the last one too, and
        lines longer than 75 octets are folded (CRLF, then a space); put it inside a VEVENT as it is.
        `from_ical` reads it back, and `str.splitlines` gives the lines of a short recurrence.

        Exdates and rdates kept as instants (a fold's second pass) are written in UTC, so they read back the same.
        ``UNTIL`` is written in UTC too (RFC 5545, section 3.3.10: with a ``DTSTART`` that has a ``TZID``,
        ``UNTIL`` must be UTC), an instant that keeps exactly the rule's occurrences: the local wall time's, or
        the last occurrence's when a DST gap moved it later. In the rare case where that instant would keep
        another occurrence too (one just after a gap, before a later one the gap moved), that occurrence is
        written as an EXDATE in UTC, so that the text means the same occurrences.
        """
        rule, cut = _utc_until(self)
        lines = [f"DTSTART;TZID={self.zone}:{_ical_text(self.dtstart)}", f"RRULE:{rule}"]
        for prop, dates, more in (("EXDATE", self.exdates, cut), ("RDATE", self.rdates, ())):
            walls = ",".join(_ical_text(d) for d in dates if d.tzinfo is None)
            exact = sorted({d for d in dates if d.tzinfo is not None}.union(more))
            instants = ",".join(f"{_ical_text(d.replace(tzinfo=None))}Z" for d in exact)
            lines += [f"{prop};TZID={self.zone}:{walls}"] if walls else []
            lines += [f"{prop}:{instants}"] if instants else []
        return "".join(f"{_fold(line)}\r\n" for line in lines)

    # --- queries -----------------------------------------------------------------------------------------

    @property
    def freq(self) -> str:
        """The rule's ``FREQ`` value, such as ``"WEEKLY"``."""
        return dict(_split_rule(self.rule))["FREQ"]

    @property
    def parts(self) -> dict[str, str]:
        """The rule's parts as a new ``{KEY: VALUE}`` dictionary, such as ``{"FREQ": "WEEKLY"}``."""
        return dict(_split_rule(self.rule))

    @property
    def tz(self) -> ZoneInfo:
        """The `ZoneInfo` of `zone`."""
        return get_zone(self.zone)

    def between_walls(self, after: datetime, before: datetime, inc: bool = False) -> tuple[datetime, ...]:
        """
        Return the occurrences, as naive local wall times, between two wall times (on them too with *inc*).

        This is the raw dateutil answer, before the wall-time rule (exdates match wall times here), plus the
        wall times of rdates kept as instants: schedules use it to find the local days a rule touches.

        Raises:
            InvalidInputError: a bound is not a naive datetime.
        """
        check_flag(inc, "inc")
        lo = _check_wall(after, "after")
        hi = _check_wall(before, "before")
        walls = self._rset.between(lo, hi, inc=inc)
        if self._added:  # rdates kept as instants are not in dateutil's set
            extra = (_wall_of(i, self.tz) for i in self._added)
            walls = sorted({*walls, *(w for w in extra if lo < w < hi or (inc and lo <= w <= hi))})
        return tuple(walls)

    def between(self, after: datetime, before: datetime, inc: bool = False) -> tuple[datetime, ...]:
        """
        Return the occurrences that fall strictly between two instants (or on them, with *inc*), in order.

        Occurrences are found by the wall-time rule of the class docstring and returned as aware UTC
        datetimes, like every instant slotengine returns (a local datetime inside a fold compares unequal to
        every datetime of another zone, PEP 495); equal instants are reported once.

        Raises:
            NaiveDatetimeError: a bound has no time zone.
        """
        check_flag(inc, "inc")
        lo = to_utc(after, "after")
        hi = to_utc(before, "before")
        if hi < lo:
            return ()
        tz = self.tz
        walls = self._rset.between(_wall_of(lo, tz) - _MARGIN, _wall_of(hi, tz) + _MARGIN, inc=True)
        found = {localize(w, tz) for w in walls}.union(self._added) - self._excluded
        chosen = (i for i in found if lo <= i <= hi) if inc else (i for i in found if lo < i < hi)
        return tuple(sorted(chosen))

    def after(self, instant: datetime, inc: bool = False) -> datetime | None:
        """
        Return the first occurrence after *instant* (or at it, with *inc*) in UTC, or None when there is none.

        Raises:
            NaiveDatetimeError: *instant* has no time zone.
        """
        check_flag(inc, "inc")
        at = to_utc(instant, "instant")
        tz = self.tz
        best: datetime | None = None
        stop: datetime | None = None
        limit = _wall_of(MAX_INSTANT, tz) + _MARGIN
        for wall in self._rset.xafter(_wall_of(at, tz) - _MARGIN, inc=True):
            if wall > limit or (stop is not None and wall > stop):
                break
            moment = localize(wall, tz)
            later = moment > at or (inc and moment == at)
            if later and (best is None or moment < best) and moment not in self._excluded:
                best = moment
                # Wall order and instant order differ only inside a gap, by less than the margin.
                stop = wall + _MARGIN
        added = (i for i in self._added if (i > at or (inc and i == at)) and i not in self._excluded)
        return min(filter(None, (best, *added)), default=None)

    def before(self, instant: datetime, inc: bool = False) -> datetime | None:
        """
        Return the last occurrence before *instant* (or at it, with *inc*) in UTC, or None when there is none.

        Like dateutil's ``before``, this walks the rule from ``dtstart``.

        Raises:
            NaiveDatetimeError: *instant* has no time zone.
        """
        check_flag(inc, "inc")
        at = to_utc(instant, "instant")
        tz = self.tz
        best: datetime | None = None
        stop = _wall_of(at, tz) + _MARGIN
        for wall in self._rset:
            if wall > stop:
                break
            moment = localize(wall, tz)
            earlier = moment < at or (inc and moment == at)
            if earlier and (best is None or moment > best) and moment not in self._excluded:
                best = moment
        added = (i for i in self._added if (i < at or (inc and i == at)) and i not in self._excluded)
        return max(filter(None, (best, *added)), default=None)

    def __repr__(self) -> str:
        text = f"Recurrence({self.rule!r}, dtstart={_fmt_wall(self.dtstart)}, zone={self.zone!r}"
        if self.exdates:
            text += f", exdates=[{', '.join(_fmt_wall(d) for d in self.exdates)}]"
        if self.rdates:
            text += f", rdates=[{', '.join(_fmt_wall(d) for d in self.rdates)}]"
        return text + ")"


def _wall_of(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _build(rule: str, dtstart: datetime, exdates: Iterable[datetime], rdates: Iterable[datetime]) -> rruleset:
    """Build dateutil's rruleset (imported here, so that importing slotengine does not import dateutil)."""
    import warnings

    from dateutil.rrule import rrulestr

    try:
        with warnings.catch_warnings():
            # dateutil warns (and may later raise) on some inputs; we refuse those ourselves before this.
            warnings.simplefilter("error")
            rset = rrulestr(f"RRULE:{rule}", dtstart=dtstart, forceset=True)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, Warning) as exc:
        raise _rule_error(rule, str(exc) or type(exc).__name__) from None
    for wall in exdates:
        if wall.tzinfo is None:
            rset.exdate(wall)
    for wall in rdates:
        if wall.tzinfo is None:
            rset.rdate(wall)
    return rset


# --- iCalendar text ---------------------------------------------------------------------------------------


def _unfold(text: str) -> list[str]:
    """
    Split iCalendar text into its content lines, unfolding them first (RFC 5545, section 3.1).

    Lines may end in CRLF, as the RFC says, or in LF; a line that starts with a space or a tab continues the
    previous one, that one character removed. Each content line is stripped, and blank ones are dropped.
    """
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in {" ", "\t"} and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return [line.strip() for line in lines]


_FOLD_OCTETS: Final = 75


def _fold(line: str) -> str:
    """
    Fold one content line at 75 octets, as RFC 5545 (section 3.1) asks, never inside a UTF-8 character.

    Each further part starts with the space that `_unfold` removes, and is at most 75 octets with it.
    """
    parts: list[str] = []
    part, size, limit = "", 0, _FOLD_OCTETS
    for char in line:
        octets = len(char.encode())
        if size + octets > limit:
            parts.append(part)
            part, size, limit = "", 0, _FOLD_OCTETS - 1
        part += char
        size += octets
    parts.append(part)
    return "\r\n ".join(parts)


def _unquoted_split(text: str, separator: str) -> list[str]:
    """Split *text* at each *separator* outside double quotes (a quoted parameter value may hold ``;:,``)."""
    pieces: list[str] = []
    start, quoted = 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return pieces


def _param_value(raw: str, line: str) -> str:
    """
    Read a parameter's value: each comma-separated part plain, or in double quotes, which are removed.

    RFC 5545 (section 3.1) allows quotes around any parameter value (``TZID="Europe/Paris"``), and requires
    them around one that holds ``;``, ``:`` or ``,``; a quote elsewhere is malformed.
    """
    values: list[str] = []
    for piece in _unquoted_split(raw.strip(), ","):
        text = piece.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
            text = text[1:-1]
        elif '"' in text:
            msg = f"malformed quoted parameter value {raw.strip()!r} in {line!r}"
            raise InvalidInputError(msg)
        values.append(text)
    return ",".join(values)


def _content_line(line: str) -> tuple[str, dict[str, str], str]:
    """
    Split a content line into its upper-case name, its parameters and its value (RFC 5545, section 3.1).

    The value starts after the first colon outside double quotes, and parameters are split at semicolons
    outside them, so ``TZID="Europe/Paris"`` is read as ``Europe/Paris``.
    """
    heads = _unquoted_split(line, ":")
    head, value = heads[0], ":".join(heads[1:])
    if len(heads) < 2 or not value:
        msg = f"{line!r} is not an iCalendar line of the form NAME;PARAM=VALUE:VALUE"
        raise InvalidInputError(msg)
    name, *raw_params = _unquoted_split(head, ";")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, eq, val = raw.partition("=")
        if not eq or '"' in key:
            msg = f"malformed parameter {raw!r} in {line!r}"
            raise InvalidInputError(msg)
        params[key.strip().upper()] = _param_value(val, line)
    return name.strip().upper(), params, value.strip()


def _agree_zone(zone: str | None, tzid: str | None) -> str:
    if zone is None and tzid is None:
        msg = "say which zone the recurrence is in: pass zone= or write DTSTART;TZID=<zone>:..."
        raise InvalidInputError(msg, field="zone")
    if zone is not None and tzid is not None and zone != tzid:
        msg = f"DTSTART says TZID={tzid} but zone={zone!r} was passed; they must agree"
        raise InvalidInputError(msg, field="zone")
    name = zone if zone is not None else tzid
    return get_zone(name).key


def _ical_wall(value: str, params: dict[str, str], tz: ZoneInfo, prop: str) -> datetime:
    if params.get("VALUE", "DATE-TIME").upper() != "DATE-TIME" or "T" not in value.upper():
        msg = f"{prop} {value!r} is a date without a time; schedules recur at a time of day"
        raise InvalidInputError(msg, field=prop.lower())
    tzid = params.get("TZID")
    if tzid is not None and tzid != tz.key:
        msg = f"{prop} is in TZID={tzid} but the recurrence is in {tz.key}; they must agree"
        raise InvalidInputError(msg, field=prop.lower())
    text = value.strip().upper()
    utc = text.endswith("Z")
    if _ICAL_VALUE_RE.match(text) is None:
        msg = f"{prop} value {value!r} is not a date-time like 20250104T100000"
        raise InvalidInputError(msg, field=prop.lower())
    try:
        parsed = datetime.strptime(text.rstrip("Z"), _ICAL_DATETIME)  # noqa: DTZ007 - a wall time, or UTC below
    except ValueError:
        msg = f"{prop} value {value!r} is not a date-time like 20250104T100000"
        raise InvalidInputError(msg, field=prop.lower()) from None
    if utc:
        try:
            return parsed.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None, fold=0)
        except OverflowError:  # 99991231T235959Z east of UTC, or 00010101T000000Z west of it
            msg = f"{prop} value {value!r} is not a date-time that exists in {tz.key} (it is beyond year 1 to 9999)"
            raise InvalidInputError(msg, field=prop.lower()) from None
    return parsed


def _utc_value(value: str) -> datetime:
    """The instant of an iCalendar value in UTC (``20251026T013000Z``), already checked by `_ical_wall`."""
    return datetime.strptime(value.strip().upper().rstrip("Z"), _ICAL_DATETIME).replace(tzinfo=UTC)


def _ical_date(value: str, params: dict[str, str], tz: ZoneInfo, prop: str) -> datetime:
    """Read an EXDATE or RDATE value: a wall time, or its instant when in UTC (the constructor keeps it exact)."""
    wall = _ical_wall(value, params, tz, prop)
    return _utc_value(value) if value.strip().upper().endswith("Z") else wall


_ONE_MINUTE: Final = timedelta(minutes=1)
_FIRST_WALL: Final = datetime(1, 1, 1)  # noqa: DTZ001 - the first wall time, or UTC value, Python has
_LAST_WALL: Final = datetime(9999, 12, 31, 23, 59, 59)  # noqa: DTZ001 - the last one, in whole seconds


def _ical_text(wall: datetime) -> str:
    """A wall time as an iCalendar value, the year always four digits (``strftime("%Y")`` writes year 1 as "1")."""
    return f"{wall.year:04d}{wall:%m%dT%H%M%S}"


def _rule_with_local_until(rule: str, tz: ZoneInfo) -> str:
    """
    Return *rule* with a UTC ``UNTIL`` written as the wall time that keeps every occurrence up to its instant.

    Outside a gap that is the whole story; next to one, `_cut_at` then drops what this wall time keeps too much.
    """
    pairs = _split_rule(rule)
    out: list[str] = []
    for key, value in pairs:
        if key == "UNTIL" and value.endswith("Z") and _ICAL_VALUE_RE.match(value):
            instant = _utc_value(value)
            try:
                wall = _wall_of(instant, tz)
            except OverflowError:
                # Beyond the last (or before the first) wall time Python has: every wall time of the zone is
                # before (after) the instant, so the last (first) one says the same.
                wall = _LAST_WALL if instant.year > 1 else _FIRST_WALL
            else:
                if localize(wall, tz) != instant:
                    # The instant is in the second pass of a fold, where occurrences take the first pass: every
                    # wall time up to the fold's end comes before it (RFC 5545: UNTIL is inclusive, of instants).
                    while is_ambiguous(wall + _ONE_MINUTE, tz):
                        wall += _ONE_MINUTE
                    wall = wall.replace(second=59)
            out.append(f"UNTIL={_ical_text(wall)}")
        else:
            out.append(f"{key}={value}")
    return ";".join(out)


_ONE_SECOND: Final = timedelta(seconds=1)
_SCAN_STEP: Final = timedelta(minutes=30)
_PERIODS: Final = {
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}


def _utc_until_value(rule: str) -> datetime | None:
    """The instant of a rule's UTC ``UNTIL`` (``UNTIL=20260329T011500Z``), or None when it has none."""
    value = dict(_split_rule(rule)).get("UNTIL", "")
    return _utc_value(value) if value.endswith("Z") and _ICAL_VALUE_RE.match(value) else None


def _until_wall(rule: str) -> datetime | None:
    """The local wall time of a canonical rule's ``UNTIL``, or None when it has none."""
    value = dict(_split_rule(rule)).get("UNTIL")
    return None if value is None else datetime.strptime(value, _ICAL_DATETIME)  # noqa: DTZ007 - a wall time


def _with_until(rule: str, until: str | None) -> str:
    """*rule* with its ``UNTIL`` value replaced by *until*, or removed when *until* is None."""
    pairs = [(k, until if k == "UNTIL" else v) for k, v in _split_rule(rule)]
    return ";".join(f"{k}={v}" for k, v in pairs if v is not None)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _gap_spans(instant: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """
    Return the wall-time span around each gap of *tz* within `_MARGIN` of *instant*.

    A span runs from the gap's length before it to its length after its end (01:00 to 04:00 on the night Paris
    skips 02:00 to 03:00).

    Only a gap makes wall order and instant order differ (it moves a wall time past later ones: 02:45 on the
    night Paris springs forward is 03:45 CEST, after 03:15 CEST), and only there, so a wall-time UNTIL and an
    instant UNTIL can keep different occurrences only in these spans. Offsets are compared every half hour, a
    shorter time than any between two changes in the tz database, and a change is found to the second.
    """
    if not MIN_INSTANT - _MARGIN <= instant <= MAX_INSTANT + _MARGIN:
        return []  # no query reaches there
    spans: list[tuple[datetime, datetime]] = []
    at = instant - _MARGIN
    before = _offset(at, tz)
    while at < instant + _MARGIN:
        lo, hi = at, at + _SCAN_STEP
        after = _offset(hi, tz)
        if after > before:
            while hi - lo > _ONE_SECOND:
                mid = lo + timedelta(seconds=(hi - lo) // _ONE_SECOND // 2)
                lo, hi = (mid, hi) if _offset(mid, tz) == before else (lo, mid)
            jump = after - before
            skipped = (hi + before).replace(tzinfo=None)  # the first wall time the clocks skip
            spans.append((skipped - jump, skipped + 2 * jump))
        at, before = at + _SCAN_STEP, after
    return spans


def _walls_near(rule: str, dtstart: datetime, lo: datetime, hi: datetime) -> tuple[datetime, ...]:
    """
    Return the wall times *rule* makes from *dtstart* from *lo* to *hi* (both included), before exdates.

    dateutil walks every occurrence from dtstart, which takes minutes for a MINUTELY rule over decades; a rule
    with a fixed period (WEEKLY to SECONDLY) and no COUNT makes the same wall times from a dtstart a whole
    number of periods later (its weekday and time of day, which default its BYxxx parts, are the same), so the
    walk starts just before *lo*.
    """
    parts = dict(_split_rule(rule))
    period = _PERIODS.get(parts["FREQ"])
    if period is not None and "COUNT" not in parts:
        try:
            period *= int(parts.get("INTERVAL", "1"))
            skipped = (lo - dtstart) // period - 1  # a whole period before lo, where the walk is the same
            if skipped > 0:
                dtstart += period * skipped
        except OverflowError:  # an INTERVAL of centuries: nothing to skip
            pass
    return tuple(_build(rule, dtstart, (), ()).between(lo, hi, inc=True))


def _cut_at(plain: Recurrence, bound: datetime, kept: frozenset[datetime]) -> tuple[str, tuple[datetime, ...]]:
    """
    Return a rule and exdates that make *plain*'s occurrences exactly those at or before the instant *bound*.

    *plain*'s ``UNTIL`` is *bound*'s wall time (`_rule_with_local_until`), which keeps every occurrence up to
    *bound* and, right after a gap, also wall times the gap moves past it: an UNTIL at 03:15 CEST keeps 02:45 on
    the night Paris springs forward, which is 03:45 CEST. RFC 5545 bounds instants, so those go: ``UNTIL`` moves
    back before the first of them when no occurrence it keeps comes after it, and otherwise they become exdates
    (but for an instant an rdate adds, in *kept*: an rdate is not bounded by UNTIL).
    """
    tz = plain.tz
    until = _until_wall(plain.rule)
    spans = _gap_spans(bound, tz)
    if until is None or not spans:
        return plain.rule, ()
    walls = sorted({w for lo, hi in spans for w in _walls_near(plain.rule, plain.dtstart, lo, hi)})
    late = [w for w in walls if localize(w, tz) > bound]
    if not late:
        return plain.rule, ()
    last = min(late) - _ONE_SECOND
    earlier = {localize(w, tz) for w in walls if w <= last}
    if all(w in late or localize(w, tz) in earlier for w in _walls_near(plain.rule, plain.dtstart, min(late), until)):
        return _with_until(plain.rule, _ical_text(last)), ()
    return plain.rule, tuple(w for w in late if localize(w, tz) not in kept)


def _utc_until(recurrence: Recurrence) -> tuple[str, tuple[datetime, ...]]:
    """
    Return the rule with ``UNTIL`` in UTC, as RFC 5545 requires next to ``DTSTART;TZID=``, and exdates it needs.

    A UTC ``UNTIL`` keeps the occurrences at or before its instant (RFC 5545); the rule's local one keeps those
    whose wall time is at or before it. The instant is the local UNTIL's (one in a gap: its reading before
    the gap), or later, the last kept occurrence's, when a gap moved that one past it (02:30 on the night Paris
    springs forward is 03:30 CEST). An occurrence the rule does not keep but that instant would (03:05 CEST,
    after a kept 02:40 moved to 03:40 CEST) is returned as an exdate, in UTC, so that the text means exactly the
    recurrence. An UNTIL past the instants Python has keeps the last one.
    """
    rule = recurrence.rule
    wall = _until_wall(rule)
    if wall is None:
        return rule, ()
    tz = recurrence.tz
    try:
        # In a gap, fold=1 reads the wall time with the offset after it: the instant before the gap.
        bound = wall.replace(tzinfo=tz, fold=int(is_nonexistent(wall, tz))).astimezone(UTC)
    except OverflowError:  # a wall time whose instant Python cannot hold
        return _with_until(rule, f"{_ical_text(_LAST_WALL if wall.year > 1 else _FIRST_WALL)}Z"), ()
    free = _with_until(rule, None)
    walls = {w for lo, hi in _gap_spans(bound, tz) for w in _walls_near(free, recurrence.dtstart, lo, hi)}
    own = {localize(w, tz) for w in walls if w <= wall}
    bound = max(own | {bound})
    added = {d if d.tzinfo is not None else localize(d, tz) for d in recurrence.rdates}
    others = {localize(w, tz) for w in walls if w > wall} - own - added - recurrence._excluded
    late = tuple(sorted(i for i in others if i <= bound))
    return _with_until(rule, f"{_ical_text(bound.replace(tzinfo=None))}Z"), late


def occurrence_days(recurrence: Recurrence, first: date, last: date) -> frozenset[date]:
    """
    Return the local dates from *first* to *last* (inclusive) on which *recurrence* has an occurrence.

    This reads the rule in wall time, before the wall-time rule is applied: it answers "which local days does
    the rule name", which is what schedules need.
    """
    # Callers look a day or two beyond their window; stay inside the years a wall time may have.
    first = max(first, date(_MIN_YEAR, 1, 1))
    last = min(last, date(_MAX_YEAR - 1, 12, 31))
    if last < first:
        return frozenset()
    lo = datetime.combine(first, time())
    hi = datetime.combine(last, time.max)
    return frozenset(w.date() for w in recurrence.between_walls(lo, hi, inc=True))
