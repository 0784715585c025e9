"""
Business files: a whole business (hours, resources, staff, services, policies, messages) in one TOML file.

An operator describes a business in the words they use ("Monday to Friday 09:00-18:00, closed on 24
December, a wash takes 30m"), and `load_business_file` turns it into the library's values: a `Business`,
its `Resource` values and its `Service` values, all checked. The file is checked **whole**: every problem is
collected with its location (``resources[3].schedule.monday: 18:00-09:00 ends before it starts``) and raised
together in one `BusinessFileError`, so that one run shows everything to fix. Nothing is written anywhere;
storing the result is the caller's job (``slotengine init`` does it).

`dumps_business_file` writes the values back as a file `load_business_file` reads to equal values, so a
business built in code can be handed to an operator. The schema is documented in ``docs/cli.md``.

The conventions of the format, so that nobody has to guess them:

* **Hours** are ``"09:00-18:00"``; a day with a break is a list, ``["09:00-12:00", "13:00-18:00"]``; a
  closed day is ``"closed"`` (or left out). A range that ends before it starts is an error, unless it says
  ``"22:00-06:00 next day"``; ``"24:00"`` is the midnight at the end of the day (``"00:00-24:00"`` is the
  whole day).
* **Durations** are ``"30m"``, ``"1h30m"``, ``"2d"``, ``"45s"`` (days, hours, minutes, seconds).
* **Money** is ``"25.00 EUR"``, or a bare amount (``"25"``, ``25``) in the file's ``currency``; floats are
  refused, because ``0.1`` is not exact.
* **Percentages** are whole numbers or decimal text (``50``, ``"12.5"``).
* **Dates** are TOML dates (``2026-12-24``) or the same as text; instants are TOML date-times, read in the
  schedule's zone when they carry no offset.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar, cast

import attrs

from slotengine._checks import tuple_of
from slotengine._time import MAX_DURATION, MAX_INSTANT, MIN_INSTANT, get_zone, localize, to_utc
from slotengine.business import Business
from slotengine.errors import BusinessFileError, InvalidInputError, SlotEngineError
from slotengine.model import UNLIMITED, Capacity, Need, Resource, ResourceKind, ResourceRole, Service
from slotengine.money import Money
from slotengine.notifications import BITRIX24_RULES, NotificationRule, QuietHours, Template
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationPolicy,
    HoldPolicy,
    NoShowPolicy,
    Policies,
    RefundTier,
    ReschedulePolicy,
)
from slotengine.recurrence import Recurrence
from slotengine.schedule import WEEKDAYS, DateOverride, RecurringHours, Schedule, TimeOff, TimeRange, WeeklyHours

__all__ = [
    "PRESETS",
    "BusinessFile",
    "Problem",
    "dumps_business_file",
    "load_business_file",
    "loads_business_file",
]

_T = TypeVar("_T")
Path_: TypeAlias = tuple[str | int, ...]
_DAY: Final = timedelta(days=1)
_DAY_US: Final = 24 * 3600 * 1_000_000
_FIRST_DAY: Final = MIN_INSTANT.date()
_LAST_DAY: Final = MAX_INSTANT.date() - timedelta(days=1)
_TOML_POSITION: Final = re.compile(r"^(?P<message>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)
_TOML_END: Final = re.compile(r"^(?P<message>.*?)\s*\(at end of document\)$", re.DOTALL)
_DURATION: Final = re.compile(
    r"^\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m(?:in)?)?\s*(?:(?P<s>\d+)\s*s)?\s*$"
)
_RANGE: Final = re.compile(r"^\s*(?P<start>[0-9:.]+)\s*[-–]\s*(?P<end>[0-9:.]+)\s*(?P<next>next day)?\s*$")
_CLOCK: Final = re.compile(r"^\s*\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?\s*$")
"""HH:MM, HH:MM:SS or HH:MM:SS.ffffff; not the other forms `time.fromisoformat` takes ("08.5", "0830", "T08")."""
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
"""A key TOML reads unquoted; matched whole (`re.fullmatch`): ``$`` would also match before a final newline."""

PRESETS: Final[Mapping[str, tuple[NotificationRule, ...]]] = {"bitrix24": BITRIX24_RULES}
"""Ready-made notification rules a file can name in ``notification_presets``."""


@attrs.frozen
class Problem:
    """
    One thing wrong in a business file, and where: ``resources[3].schedule.monday`` or ``line 4, column 9``.

    A file is checked whole, so a `BusinessFileError` carries every problem at once, not only the first.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def _tuple_of_resources(value: Iterable[Resource]) -> tuple[Resource, ...]:
    return tuple_of(value, Resource, "resources")


def _tuple_of_services(value: Iterable[Service]) -> tuple[Service, ...]:
    return tuple_of(value, Service, "services")


@attrs.frozen
class BusinessFile:
    """What a business file describes: the business, its resources and staff, and its services."""

    business: Business
    resources: tuple[Resource, ...] = attrs.field(default=(), converter=_tuple_of_resources)
    services: tuple[Service, ...] = attrs.field(default=(), converter=_tuple_of_services)


# --- locations and problems -------------------------------------------------------------------------------


def _where(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += part if not out else f".{part}"
    return out


class _Bad(Exception):  # noqa: N818 - internal signal, never escapes this module
    """A value that cannot be read; its message is the problem."""


class _Walker:
    """Walks the parsed document, collecting every problem with its location instead of stopping at one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(_where(path), message))

    def table(self, doc: Mapping[str, Any], key: str, path: Path_) -> Mapping[str, Any] | None:
        """The sub-table *key* of *doc*, None if absent; a problem if it is not a table."""
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add((*path, key), f"must be a table ([{_where((*path, key))}]), not {_kind(value)}")
            return None
        return value

    def tables(self, doc: Mapping[str, Any], key: str, path: Path_) -> list[Mapping[str, Any]]:
        """The array of tables *key* of *doc* (``[[key]]``); problems for entries that are not tables."""
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add((*path, key), f"must be an array of tables ([[{key}]]), not {_kind(value)}")
            return []
        good = []
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                good.append(item)
            else:
                self.add((*path, key, index), f"must be a table, not {_kind(item)}")
                good.append({})
        return good

    def keys(self, doc: Mapping[str, Any], path: Path_, allowed: Iterable[str]) -> None:
        """A problem for every key of *doc* that is not in *allowed* (a typo is never silently ignored)."""
        known = list(allowed)
        for key in doc:
            if key not in known:
                hint = _closest(key, known)
                suggestion = f"did you mean {hint!r}?" if hint else f"known keys: {', '.join(known)}"
                self.add((*path, key), f"unknown key; {suggestion}")

    def get(
        self,
        doc: Mapping[str, Any],
        key: str,
        path: Path_,
        read: Callable[[Any], _T],
        default: _T | None = None,
        *,
        required: bool = False,
        example: str = "",
    ) -> _T | None:
        """Read *key* of *doc* with *read*; a problem (and None) if it is missing and required, or unreadable."""
        if key not in doc:
            if required:
                hint = f", such as {key} = {example}" if example else ""
                self.add((*path, key), f"missing{hint}")
            return default
        return self.read(doc[key], (*path, key), read)

    def read(self, value: Any, path: Path_, read: Callable[[Any], _T]) -> _T | None:
        """Apply *read* to *value*; a problem at *path* (and None) if it fails."""
        try:
            return read(value)
        except (_Bad, SlotEngineError) as exc:
            self.add(path, str(exc))
            return None

    def build(self, path: Path_, make: Callable[[], _T], fields: Mapping[str, str] | None = None) -> _T | None:
        """Build a domain value; its own validation error becomes a problem at *path* (or the field it names)."""
        try:
            return make()
        except SlotEngineError as exc:
            field = exc.details.get("field")
            where = path
            if isinstance(field, str) and fields is not None and field in fields:
                where = (*path, fields[field])
            self.add(where, str(exc))
            return None


def _kind(value: object) -> str:
    names = {str: "text", int: "a number", float: "a number", bool: "true/false", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _closest(key: str, known: Sequence[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return found[0] if found else None


# --- readers: one per kind of value; each raises _Bad with a message for people ----------------------------


def _text(value: object) -> str:
    if not isinstance(value, str):
        msg = f"must be text in quotes, not {_kind(value)} {value!r}"
        raise _Bad(msg)
    return value


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f'must be a list of text such as ["a", "b"], not {_kind(value)} {value!r}'
        raise _Bad(msg)
    return tuple(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"must be true or false, not {_kind(value)} {value!r}"
        raise _Bad(msg)
    return value


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"must be a whole number, not {_kind(value)} {value!r}"
        raise _Bad(msg)
    return value


def _zone(value: object) -> str:
    return get_zone(_text(value)).key


def _duration(value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str):
        whole = isinstance(value, int) and not isinstance(value, bool)
        hint = f' such as "{value}m"' if whole else ' such as "30m", "1h30m" or "2d"'
        msg = f"a duration is text{hint}, not {_kind(value)} {value!r}"
        raise _Bad(msg)
    match = _DURATION.match(value)
    if match is None or not any(match.groupdict().values()):
        msg = f'{value!r} is not a duration such as "30m", "1h30m", "2d" or "45s"'
        raise _Bad(msg)
    digits = {k: (v or "0").lstrip("0") or "0" for k, v in match.groupdict().items()}
    if any(len(v) > 12 for v in digits.values()):  # more than any duration in range, and int() refuses 4,300+
        msg = f"{_shorten(value)!r} is longer than the 1970-2200 range of instants slotengine accepts"
        raise _Bad(msg)
    parts = {k: int(v) for k, v in digits.items()}
    try:
        duration = timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    except OverflowError:
        duration = None
    if duration is None or duration > MAX_DURATION:
        msg = f"{value!r} is longer than the 1970-2200 range of instants slotengine accepts"
        raise _Bad(msg)
    return duration


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:37]}..."


def _clock(text: str, *, allow_24: bool = False) -> time:
    """A time of day such as ``09:00``; ``24:00`` (the end of the day) becomes 00:00 when allowed."""
    if allow_24 and text.strip() in {"24:00", "24:00:00"}:
        return time(0)
    parsed = None
    if _CLOCK.match(text) is not None:
        with contextlib.suppress(ValueError):  # 25:00, 09:61
            parsed = time.fromisoformat(text.strip())
    if parsed is None:
        msg = f'{text!r} is not a time of day such as "09:00" (or "09:00:30")'
        raise _Bad(msg)
    return parsed


def _time_of_day(value: object) -> time:
    if isinstance(value, time):
        return value
    return _clock(_text(value))


def _range(value: object) -> TimeRange:
    text = _text(value)
    match = _RANGE.match(text)
    if match is None:
        msg = f'{text!r} is not a range of hours such as "09:00-18:00" (or "22:00-06:00 next day")'
        raise _Bad(msg)
    start = _clock(match["start"])
    end_text = match["end"]
    next_day = match["next"] is not None
    if end_text.strip() in {"24:00", "24:00:00"}:
        if next_day:
            msg = f'{text}: write "24:00" without "next day" (24:00 is already the end of the day)'
            raise _Bad(msg)
        return TimeRange(start, time(0))
    end = _clock(end_text)
    if next_day and end > start:
        msg = f"{text}: a range that runs into the next day must end at or before its start time (at most 24h)"
        raise _Bad(msg)
    if not next_day and end < start:
        msg = f'{text} ends before it starts; write "{match["start"]}-{end_text} next day" for a night shift'
        raise _Bad(msg)
    if not next_day and end == start:
        msg = f'{text} is empty; write "00:00-24:00" for a whole day'
        raise _Bad(msg)
    return TimeRange(start, end)


def _day(value: object) -> date:
    if isinstance(value, datetime):
        msg = f"must be a date such as 2026-12-24, not a date and time {value.isoformat()}"
        raise _Bad(msg)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    msg = f"must be a date such as 2026-12-24, not {_kind(value)} {value!r}"
    raise _Bad(msg)


def _days(value: object) -> tuple[date, ...]:
    if not isinstance(value, list):
        msg = f"must be a list of dates such as [2026-12-24, 2026-12-31], not {_kind(value)} {value!r}"
        raise _Bad(msg)
    return tuple(_day(v) for v in value)


def _percent(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        msg = f'a percentage is a number such as 50 or "12.5", not {_kind(value)} {value!r}'
        raise _Bad(msg)
    try:
        percent = Decimal(str(value).strip().removesuffix("%"))
    except InvalidOperation:
        msg = f'{value!r} is not a percentage such as 50 or "12.5"'
        raise _Bad(msg) from None
    if not percent.is_finite() or not 0 <= percent <= 100:
        msg = f"a percentage is between 0 and 100, not {value!r}"
        raise _Bad(msg)
    return percent


def _money_reader(currency: str | None) -> Callable[[object], Money]:
    def money(value: object) -> Money:
        if isinstance(value, float):
            msg = f'write money as text such as "{value} EUR" (a TOML float such as {value} is not exact)'
            raise _Bad(msg)
        if isinstance(value, bool) or not isinstance(value, int | str):
            msg = f'money is text such as "25.00 EUR", not {_kind(value)} {value!r}'
            raise _Bad(msg)
        parts = str(value).split()
        if len(parts) == 2:
            return Money(parts[0], parts[1])
        if len(parts) == 1 and currency is not None:
            return Money(parts[0], currency)
        if len(parts) == 1:
            msg = f'{value!r} has no currency: write "{value} EUR", or set currency = "EUR" at the top'
            raise _Bad(msg)
        msg = f'{value!r} is not an amount of money such as "25.00 EUR"'
        raise _Bad(msg)

    return money


def _capacity(value: object) -> Capacity:
    if value == "unlimited":
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f'capacity is a whole number or "unlimited", not {_kind(value)} {value!r}'
        raise _Bad(msg)
    return value


def _attributes(value: object) -> dict[str, str | int | bool]:
    if not isinstance(value, Mapping):
        msg = f'attributes are a table such as {{ city = "Nice", seats = 4 }}, not {_kind(value)}'
        raise _Bad(msg)
    out: dict[str, str | int | bool] = {}
    for key, item in value.items():
        if not isinstance(item, str | int | bool) or isinstance(item, float):
            msg = f"attribute {key!r} must be text, a whole number or true/false, not {_kind(item)} {item!r}"
            raise _Bad(msg)
        out[key] = item
    return out


def _quiet(value: object) -> QuietHours:
    text = _text(value)
    parts = re.split(r"\s*[-–]\s*", text.strip())
    if len(parts) != 2:
        msg = f'{text!r} is not a range such as "21:00-08:00"'
        raise _Bad(msg)
    return QuietHours(_clock(parts[0]), _clock(parts[1], allow_24=True))


# --- schedules --------------------------------------------------------------------------------------------

_SHORTCUTS: Final = {"every_day": range(7), "weekdays": range(5), "weekend": range(5, 7)}
_SCHEDULE_KEYS: Final = ("zone", *_SHORTCUTS, *WEEKDAYS, "breaks", "dates", "time_off", "recurring")


def _day_hours(value: object, path: Path_, walk: _Walker) -> tuple[TimeRange, ...] | None:
    if value in ("closed", []):
        return ()
    items = value if isinstance(value, list) else [value]
    ranges: list[TimeRange] = []
    ok = True
    for index, item in enumerate(items):
        where = (*path, index) if isinstance(value, list) else path
        found = walk.read(item, where, _range)
        if found is None:
            ok = False
        else:
            ranges.append(found)
    return tuple(ranges) if ok else None


def _offsets(hours: TimeRange) -> tuple[int, int]:
    return hours._offsets()


def _from_offsets(start: int, end: int) -> TimeRange:
    def at(micros: int) -> time:
        seconds, us = divmod(micros % _DAY_US, 1_000_000)
        return time(seconds // 3600, seconds // 60 % 60, seconds % 60, us)

    return TimeRange(at(start), at(end))


_Cut: TypeAlias = tuple[tuple[TimeRange, ...], tuple[TimeRange, ...]]
"""A day's ranges with the breaks cut out: the pieces that start on the day, and those that start after midnight."""


def _without_breaks(ranges: tuple[TimeRange, ...], breaks: tuple[TimeRange, ...], used: set[int]) -> _Cut:
    """
    *ranges* of one day with every break cut out of every day they cover, in wall time.

    A break is a time of day, so it is cut from the day a range starts on and, for a night shift, from the
    next morning too: ``22:00-06:00 next day`` less ``02:00-02:30`` is open 22:00-02:00 and 02:30-06:00.
    A piece that starts after midnight belongs to the next day (a `TimeRange` belongs to the day it starts
    on), so it is returned apart, as a range of the next day. The index of every break that overlaps one of
    *ranges* as written is added to *used*.
    """
    pieces = [_offsets(r) for r in ranges]
    written = list(pieces)
    for index, cut in enumerate(breaks):
        low, high = _offsets(cut)
        for lo, hi in ((low, high), (low + _DAY_US, high + _DAY_US)):
            if any(lo < end and start < hi for start, end in written):
                used.add(index)
            kept = []
            for start, end in pieces:
                if hi <= start or lo >= end:
                    kept.append((start, end))
                    continue
                if start < lo:
                    kept.append((start, lo))
                if hi < end:
                    kept.append((hi, end))
            pieces = kept
    today = tuple(_from_offsets(s, e) for s, e in pieces if s < _DAY_US)
    tomorrow = tuple(_from_offsets(s - _DAY_US, e - _DAY_US) for s, e in pieces if s >= _DAY_US)
    return today, tomorrow


def _same_hours(one: tuple[TimeRange, ...], other: tuple[TimeRange, ...]) -> bool:
    return sorted(map(_offsets, one)) == sorted(map(_offsets, other))


def _schedule(doc: Mapping[str, Any], path: Path_, zone: str | None, walk: _Walker) -> Schedule | None:
    """Read a schedule table; None (with problems recorded) if any part of it is wrong."""
    before = len(walk.problems)
    walk.keys(doc, path, _SCHEDULE_KEYS)
    own_zone = walk.get(doc, "zone", path, _zone)
    zone = own_zone or zone
    week: dict[int, tuple[TimeRange, ...]] = {}
    for shortcut, days in _SHORTCUTS.items():
        if shortcut in doc:
            hours = _day_hours(doc[shortcut], (*path, shortcut), walk)
            for day in days:
                week[day] = hours or ()
    for index, name in enumerate(WEEKDAYS):
        if name in doc:
            week[index] = _day_hours(doc[name], (*path, name), walk) or ()
    dates = _override_hours(doc, path, walk)
    # A break that cuts nothing is only worth a problem when the hours it was meant for were read.
    hours_read = len(walk.problems) == before
    breaks: tuple[TimeRange, ...] = ()
    used: set[int] = set()
    if "breaks" in doc:
        breaks = _day_hours(doc["breaks"], (*path, "breaks"), walk) or ()
        for index, cut in enumerate(breaks):
            if cut.crosses_midnight:
                walk.add((*path, "breaks", index), "a break ends on the day it starts, before midnight")
            if cut.start.microsecond or cut.end.microsecond:  # a piece of recurring hours would start there
                walk.add((*path, "breaks", index), f"a break starts and ends on whole seconds, not {_fmt_range(cut)}")
        breaks = tuple(cut for cut in breaks if not (cut.start.microsecond or cut.end.microsecond))
        week, dates = _cut_breaks(week, dates, breaks, used)
    overrides = [
        found
        for day, (where, hours) in dates.items()
        if (found := walk.build(where, partial(DateOverride, day, hours))) is not None
    ]
    time_off = _time_off(doc, path, zone, walk)
    reading = len(walk.problems)
    entries = _recurring(doc, path, zone, walk)
    hours_read = hours_read and len(walk.problems) == reading
    recurring = [piece for where, rule in entries for piece in _cut_recurring(rule, where, breaks, used, walk)]
    for index, cut in enumerate(breaks):
        if hours_read and index not in used and not cut.crosses_midnight:
            msg = f"the break {_fmt_range(cut)} cuts nothing: it lies outside every range of hours of this schedule"
            walk.add((*path, "breaks", index), msg)
    if zone is None or len(walk.problems) > before:
        return None
    return walk.build(
        path,
        lambda: Schedule(zone, WeeklyHours(week), overrides=overrides, time_off=time_off, recurring=recurring),
        {"overrides": "dates", "recurring": "recurring", "time_off": "time_off"},
    )


_Dates: TypeAlias = dict[date, tuple[Path_, tuple[TimeRange, ...]]]
"""The hours of each date of a ``dates`` table, and where the date is written."""


def _override_hours(doc: Mapping[str, Any], path: Path_, walk: _Walker) -> _Dates:
    """The ``dates`` table of a schedule: each date's hours, as written."""
    dates = walk.table(doc, "dates", path)
    out: _Dates = {}
    for key, value in (dates or {}).items():
        where = (*path, "dates", key)
        day = walk.read(key, where, _day)
        hours = _day_hours(value, where, walk)
        if day is not None and day in out:  # "2026-12-24" and " 2026-12-24" are two TOML keys
            msg = f"two overrides for {day.isoformat()}; give each date one override with all its hours"
            walk.add((*path, "dates"), msg)
        elif day is not None and hours is not None:
            out[day] = (where, hours)
    return out


def _cut_breaks(
    week: Mapping[int, tuple[TimeRange, ...]],
    dates: _Dates,
    breaks: tuple[TimeRange, ...],
    used: set[int],
) -> tuple[dict[int, tuple[TimeRange, ...]], _Dates]:
    """
    The weekly hours and the dates' hours with the breaks cut out of every day (docs/cli.md).

    The part of a night shift after a break past midnight becomes a range of the next day: of the next
    weekday for weekly hours. That part still belongs to the night, whatever the next day's own hours say
    (a closed 25 December does not cut short the night shift of the 24th). So a date gets the end of the
    night before it, and the day after a date whose night ends otherwise than its weekday's night gets
    hours of its own: its weekday's, and that night's end. The index of every break that cuts some range
    is added to *used*: a break that cuts nothing from any range of the schedule is a problem.
    """
    cut_week = {day: _without_breaks(week.get(day, ()), breaks, used) for day in range(7)}
    cut_dates = {day: (path, _without_breaks(hours, breaks, used)) for day, (path, hours) in dates.items()}
    if not any(after for _, after in cut_week.values()) and not any(after for _, (_, after) in cut_dates.values()):
        # No piece starts after midnight (the usual case): every day keeps its own hours, less the breaks.
        kept = {day: (path, today) for day, (path, (today, _)) in cut_dates.items()}
        return {day: cut_week[day][0] for day in week}, kept

    def night_before(day: date) -> tuple[TimeRange, ...]:
        if day == date.min:
            return ()
        previous = day - _DAY
        return cut_dates[previous][1][1] if previous in cut_dates else cut_week[previous.weekday()][1]

    weekly = {day: cut_week[day][0] + cut_week[(day - 1) % 7][1] for day in range(7)}
    out = {day: (path, today + night_before(day)) for day, (path, (today, _)) in cut_dates.items()}
    for day, (path, (_, after)) in cut_dates.items():
        following = day + _DAY if _FIRST_DAY <= day < _LAST_DAY else None  # a day outside is a problem already
        if following is None or following in cut_dates or _same_hours(after, cut_week[day.weekday()][1]):
            continue
        out[following] = (path, cut_week[following.weekday()][0] + after)
    return weekly, out


def _instant(value: object, zone: str | None) -> datetime:
    if not isinstance(value, datetime):
        msg = f"must be a date-time such as 2026-03-06T12:00, not {_kind(value)} {value!r}"
        raise _Bad(msg)
    if value.tzinfo is not None:
        return to_utc(value, "time off")
    if zone is None:
        msg = "a date-time without an offset needs a zone to be read in"
        raise _Bad(msg)
    return localize(value, get_zone(zone))


def _time_off(doc: Mapping[str, Any], path: Path_, zone: str | None, walk: _Walker) -> list[TimeOff]:
    out = []
    for index, entry in enumerate(walk.tables(doc, "time_off", path)):
        where = (*path, "time_off", index)
        walk.keys(entry, where, ("day", "from", "to", "reason"))
        reason = walk.get(entry, "reason", where, _text, "") or ""
        if "day" in entry:
            if "from" in entry or "to" in entry:
                walk.add(where, "give either day = ... or from = ... and to = ..., not both")
                continue
            day = walk.get(entry, "day", where, _day)
            if day is not None:
                found = walk.build(where, partial(TimeOff.days, day, reason=reason))
                if found is not None:
                    out.append(found)
            continue
        if "from" not in entry or "to" not in entry:
            walk.add(where, "time off needs day = 2026-12-24, or from = ... and to = ... (dates or date-times)")
            continue
        first, last = entry["from"], entry["to"]
        if isinstance(first, datetime) or isinstance(last, datetime):
            start = walk.read(first, (*where, "from"), lambda v: _instant(v, zone))
            end = walk.read(last, (*where, "to"), lambda v: _instant(v, zone))
            if start is not None and end is not None:
                found = walk.build(where, partial(TimeOff, start, end, reason=reason))
                if found is not None:
                    out.append(found)
            continue
        first_day = walk.read(first, (*where, "from"), _day)
        last_day = walk.read(last, (*where, "to"), _day)
        if first_day is not None and last_day is not None:
            if last_day < first_day:
                walk.add((*where, "to"), f"{last_day} is before from = {first_day}")
                continue
            found = walk.build(where, partial(TimeOff.days, first_day, last_day, reason=reason))
            if found is not None:
                out.append(found)
    return out


def _recurring(
    doc: Mapping[str, Any], path: Path_, zone: str | None, walk: _Walker
) -> list[tuple[Path_, RecurringHours]]:
    """The ``recurring`` tables of a schedule as written (breaks not cut yet), each with where it is."""
    out = []
    for index, entry in enumerate(walk.tables(doc, "recurring", path)):
        where = (*path, "recurring", index)
        walk.keys(entry, where, ("rule", "first", "hours", "closed", "except", "reason"))
        rule = walk.get(entry, "rule", where, _text, required=True, example='"FREQ=WEEKLY;INTERVAL=2;BYDAY=SA"')
        first = walk.get(entry, "first", where, _day, required=True, example="2026-03-07")
        hours = walk.get(entry, "hours", where, _range, required=True, example='"10:00-14:00"')
        closed = walk.get(entry, "closed", where, _flag, False)
        skipped = walk.get(entry, "except", where, _days) or ()
        reason = walk.get(entry, "reason", where, _text, "") or ""
        if rule is None or first is None or hours is None or closed is None or zone is None:
            continue
        found = walk.build(
            where,
            partial(RecurringHours.every, rule, first, hours, zone, except_days=skipped, closed=closed, reason=reason),
            {"recurrence": "rule", "first_day": "first", "except_days": "except"},
        )
        if found is not None:
            out.append((where, found))
    return out


def _cut_recurring(
    rule: RecurringHours, where: Path_, breaks: tuple[TimeRange, ...], used: set[int], walk: _Walker
) -> list[RecurringHours]:
    """
    A recurring opening with the breaks cut out of its hours: one opening per piece left (docs/cli.md).

    Breaks are cut out of every day of a schedule, so out of the hours a rule adds too (the schedule adds
    them whole, on top of the day's own hours). Each piece recurs on the same days (`_moved`). A closure
    is not cut: it opens nothing. The part of a night opening after a break past midnight would belong to
    the day after each occurrence, which the rule does not name: that is a problem at ``hours``. The index
    of every break that cuts the hours is added to *used*.
    """
    if rule.closed or not breaks:
        return [rule]
    cut: set[int] = set()
    today, tomorrow = _without_breaks((rule.hours,), breaks, cut)
    if not cut:
        return [rule]
    used |= cut
    if tomorrow:
        msg = (
            f"a break cuts these night hours after midnight, where recurring hours cannot be cut: the part from "
            f"{_fmt_clock(tomorrow[0].start)} would be on the day after each occurrence, which the rule does not "
            "name; end these hours at the break, and write the rest as recurring hours of their own"
        )
        walk.add((*where, "hours"), msg)
        return []
    pieces = []
    for hours in today:
        piece = walk.build(where, partial(_moved, rule, hours))
        if piece is not None:
            pieces.append(piece)
    return pieces


def _moved(rule: RecurringHours, hours: TimeRange) -> RecurringHours:
    """
    *rule* with other *hours*, on the same local days.

    A `RecurringHours` occurs at the start of its hours, so the recurrence moves to ``hours.start``: the same
    rule from the same first day, except the same days, and an ``UNTIL`` that keeps the same last day.
    """
    recurrence = rule.recurrence
    text = recurrence.rule if hours.start == rule.hours.start else _until_at(recurrence, rule.hours.start, hours.start)
    first = datetime.combine(recurrence.dtstart.date(), hours.start)
    walls = [d if d.tzinfo is None else d.astimezone(recurrence.tz) for d in recurrence.exdates]
    skipped = [datetime.combine(wall.date(), hours.start) for wall in walls]
    return RecurringHours(Recurrence(text, first, recurrence.zone, exdates=skipped), hours, reason=rule.reason)


def _until_at(recurrence: Recurrence, start: time, other: time) -> str:
    """
    The rule of *recurrence*, whose occurrences are at *start*, for occurrences at *other* on the same days.

    Only ``UNTIL`` changes, to keep the same last day: ``UNTIL=20260301T190000`` includes 1 March at 18:00,
    and would not at 19:30, so it becomes ``UNTIL=20260301T193000``.
    """
    parts = recurrence.parts
    if "UNTIL" not in parts:
        return recurrence.rule
    until = datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%S")  # noqa: DTZ007 - a wall time, as in the rule
    last = until.date() if until.time() >= start else until.date() - _DAY
    end = datetime.combine(last, other)
    if end.microsecond:  # UNTIL counts whole seconds; the next occurrence is a day later at the earliest
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    parts["UNTIL"] = end.strftime("%Y%m%dT%H%M%S")
    return ";".join(f"{key}={value}" for key, value in parts.items())


# --- policies and notifications ------------------------------------------------------------------------------

_POLICY_KEYS: Final = ("hold", "confirmation", "cancellation", "reschedule", "no_show", "allow_override")


def _policies(doc: Mapping[str, Any] | None, walk: _Walker) -> Policies | None:
    path: Path_ = ("policies",)
    if doc is None:
        return Policies()
    walk.keys(doc, path, _POLICY_KEYS)
    parts: dict[str, Any] = {}
    for name, (policy, fields) in _FLAT_POLICIES.items():
        table = walk.table(doc, name, path)
        if table is not None:
            parts[name] = _flat_policy(table, (*path, name), policy, fields, walk)
    cancellation = walk.table(doc, "cancellation", path)
    if cancellation is not None:
        parts["cancellation"] = _cancellation(cancellation, (*path, "cancellation"), walk)
    parts["allow_override"] = walk.get(doc, "allow_override", path, _flag, False)
    if any(value is None for value in parts.values()):
        return None
    return walk.build(path, lambda: Policies(**parts))


_FLAT_POLICIES: Final[Mapping[str, tuple[Callable[..., Any], Mapping[str, Callable[[Any], Any]]]]] = {
    "hold": (HoldPolicy, {"ttl": _duration, "accept_late_payment": _flag}),
    "confirmation": (ConfirmationPolicy, {"mode": _text, "deposit_percent": _percent}),
    "reschedule": (ReschedulePolicy, {"deadline": _duration, "max_times": _whole}),
    "no_show": (NoShowPolicy, {"grace": _duration}),
}
"""The policies whose TOML table is one key per field, each read by its converter (cancellation has tiers)."""


def _flat_policy(
    doc: Mapping[str, Any],
    where: Path_,
    policy: Callable[..., Any],
    fields: Mapping[str, Callable[[Any], Any]],
    walk: _Walker,
) -> Any:
    walk.keys(doc, where, tuple(fields))
    kwargs = _some(**{key: walk.get(doc, key, where, read) for key, read in fields.items()})
    return walk.build(where, lambda: policy(**kwargs), _same(*fields))


def _cancellation(doc: Mapping[str, Any], where: Path_, walk: _Walker) -> CancellationPolicy | None:
    walk.keys(
        doc,
        where,
        ("tiers", "otherwise_refund_percent", "deadline", "no_show_fee_percent", "charge_unpaid_penalty"),
    )
    tiers: list[RefundTier] = []
    ok = True
    for index, entry in enumerate(walk.tables(doc, "tiers", where)):
        at = (*where, "tiers", index)
        walk.keys(entry, at, ("before", "refund_percent"))
        before = walk.get(entry, "before", at, _duration, required=True, example='"48h"')
        percent = walk.get(entry, "refund_percent", at, _percent, required=True, example="100")
        tier = None
        if before is not None and percent is not None:
            tier = walk.build(at, partial(RefundTier, before, percent), _same("before", "refund_percent"))
        if tier is None:
            ok = False
        else:
            tiers.append(tier)
    kwargs = _some(
        otherwise_percent=walk.get(doc, "otherwise_refund_percent", where, _percent),
        deadline=walk.get(doc, "deadline", where, _duration),
        no_show_fee_percent=walk.get(doc, "no_show_fee_percent", where, _percent),
        charge_unpaid_penalty=walk.get(doc, "charge_unpaid_penalty", where, _flag),
    )
    if not ok:
        return None
    fields = {
        "tiers": "tiers",
        "otherwise_percent": "otherwise_refund_percent",
        "deadline": "deadline",
        "no_show_fee_percent": "no_show_fee_percent",
        "charge_unpaid_penalty": "charge_unpaid_penalty",
    }
    return walk.build(where, lambda: CancellationPolicy(tiers=tiers, **kwargs), fields)


def _some(**values: Any) -> dict[str, Any]:
    """Keyword arguments for the values that were given (None: absent or unreadable, keep the default)."""
    return {k: v for k, v in values.items() if v is not None}


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


_RULE_KEYS: Final = (
    "id",
    "on",
    "before",
    "after",
    "condition",
    "recipient",
    "channel",
    "services",
    "quiet_hours",
    "subject",
    "body",
)


def _rules(doc: Mapping[str, Any], service_ids: set[str], walk: _Walker) -> list[NotificationRule]:
    out: list[NotificationRule] = []
    presets = walk.get(doc, "notification_presets", (), _texts) or ()
    for index, name in enumerate(presets):
        if name in PRESETS:
            out.extend(PRESETS[name])
        else:
            walk.add(("notification_presets", index), f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    for index, entry in enumerate(walk.tables(doc, "notifications", ())):
        where: Path_ = ("notifications", index)
        start = len(walk.problems)
        walk.keys(entry, where, _RULE_KEYS)
        rule_id = walk.get(entry, "id", where, _text, required=True, example='"reminder"')
        subject = walk.get(entry, "subject", where, _text, required=True, example='"See you soon at $business"')
        body = walk.get(entry, "body", where, _text, required=True, example='"$service at $local_time"')
        before = walk.get(entry, "before", where, _duration)
        after = walk.get(entry, "after", where, _duration)
        if before is not None and after is not None:
            walk.add(where, "give before = ... or after = ... (an offset from the start), not both")
            continue
        offset = -before if before is not None else after
        services = walk.get(entry, "services", where, _texts)
        for position, sid in enumerate(services or ()):
            if sid not in service_ids:
                walk.add((*where, "services", position), f"no service has the id {sid!r}")
        kwargs = _some(
            on=walk.get(entry, "on", where, _texts),
            condition=walk.get(entry, "condition", where, _text),
            recipient=walk.get(entry, "recipient", where, _text),
            channel=walk.get(entry, "channel", where, _text),
            quiet_hours=walk.get(entry, "quiet_hours", where, _flag),
            service_ids=services,
            offset=offset,
        )
        if rule_id is None or subject is None or body is None:
            continue
        # Each text checked on its own, so that a problem is reported at the key that has it.
        subject_ok = walk.build(where, partial(Template, subject, ""), {"template": "subject"})
        body_ok = walk.build(where, partial(Template, "", body), {"template": "body"})
        if subject_ok is None or body_ok is None or len(walk.problems) > start:
            # A rule built from what was read of a wrong entry would add problems that are not in the file
            # (an unreadable before = ... is not "neither events nor an offset").
            continue
        offset_key = "before" if before is not None else "after"
        found = walk.build(
            where,
            partial(NotificationRule, rule_id, Template(subject, body), **kwargs),
            {
                "on": "on",
                "offset": offset_key,
                "condition": "condition",
                "recipient": "recipient",
                "channel": "channel",
            },
        )
        if found is not None:
            out.append(found)
    seen: set[str] = set()
    for rule in out:
        if rule.id in seen:
            walk.add(("notifications",), f"two notification rules have the id {rule.id!r}")
        seen.add(rule.id)
    return out


# --- resources and services ------------------------------------------------------------------------------------

_RESOURCE_KEYS: Final = ("id", "name", "kind", "type", "role", "capacity", "attributes", "zone", "schedule")


def _resource(
    entry: Mapping[str, Any], where: Path_, kind: ResourceKind | None, zone: str | None, walk: _Walker
) -> Resource | None:
    walk.keys(entry, where, [k for k in _RESOURCE_KEYS if kind is None or k != "kind"])
    before = len(walk.problems)
    rid = walk.get(entry, "id", where, _text, required=True, example='"box-1"')
    name = walk.get(entry, "name", where, _text, rid)
    own_zone = walk.get(entry, "zone", where, _zone)
    kwargs = _some(
        kind=kind if kind is not None else walk.get(entry, "kind", where, _text),
        type=walk.get(entry, "type", where, _text),
        role=walk.get(entry, "role", where, _text),
        capacity=walk.get(entry, "capacity", where, _capacity),
        attributes=walk.get(entry, "attributes", where, _attributes),
    )
    table = walk.table(entry, "schedule", where)
    schedule = None
    if table is not None:
        schedule = _schedule(table, (*where, "schedule"), own_zone or zone, walk)
    if rid is None or len(walk.problems) > before:
        return None
    fields = {k: k for k in _RESOURCE_KEYS} | {"resource id": "id", "resource name": "name", "resource type": "type"}
    return walk.build(where, lambda: Resource(rid, name or rid, schedule=schedule, zone=own_zone, **kwargs), fields)


_SERVICE_KEYS: Final = (
    "id",
    "name",
    "needs",
    "duration",
    "min_duration",
    "max_duration",
    "unit",
    "slot_step",
    "buffer_before",
    "buffer_after",
    "buffers_outside_hours",
    "price",
    "min_notice",
    "horizon",
    "check_in",
    "check_out",
)
_DURATION_KEYS: Final = ("min_duration", "max_duration", "slot_step", "buffer_before", "buffer_after", "min_notice",
                         "horizon")  # fmt: skip


def _need(value: object, where: Path_, resources: Sequence[Resource], walk: _Walker) -> Need | None:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        walk.add(where, f'a need is a type such as "box" or a table such as {{ type = "box" }}, not {_kind(value)}')
        return None
    walk.keys(value, where, ("type", "resources", "attributes", "count", "units", "label"))
    before = len(walk.problems)
    ids = walk.get(value, "resources", where, _texts)
    known = {r.id for r in resources}
    for position, rid in enumerate(ids or ()):
        if rid not in known:
            walk.add((*where, "resources", position), f"no resource or user has the id {rid!r}")
    kwargs = _some(
        resource_ids=ids,
        type=walk.get(value, "type", where, _text),
        attributes=walk.get(value, "attributes", where, _attributes),
        count=walk.get(value, "count", where, _whole),
        units=walk.get(value, "units", where, _whole),
        label=walk.get(value, "label", where, _text),
    )
    if len(walk.problems) > before:
        return None
    fields = {"resource_ids": "resources", "count": "count", "units": "units", "type": "type", "need type": "type"}
    need = walk.build(where, lambda: Need(**kwargs), fields)
    if need is not None and resources:
        pool = [r for r in resources if need.matches(r)]
        if not pool:
            walk.add(where, f"no resource or user matches this need ({need!r})")
        elif len(pool) < need.count:
            walk.add((*where, "count"), f"needs {need.count} resources but only {len(pool)} match")
    return need


def _service(
    entry: Mapping[str, Any], where: Path_, currency: str | None, resources: Sequence[Resource], walk: _Walker
) -> Service | None:
    walk.keys(entry, where, _SERVICE_KEYS)
    before = len(walk.problems)
    sid = walk.get(entry, "id", where, _text, required=True, example='"wash"')
    name = walk.get(entry, "name", where, _text, sid)
    duration = walk.get(entry, "duration", where, _duration, required=True, example='"30m"')
    raw_needs = entry.get("needs")
    needs: list[Need] = []
    if raw_needs is None:
        walk.add((*where, "needs"), 'missing: what the service takes, such as needs = ["box"]')
    else:
        items = raw_needs if isinstance(raw_needs, list) else [raw_needs]
        if not items:
            walk.add((*where, "needs"), 'a service needs at least one resource, such as needs = ["box"]')
        for index, item in enumerate(items):
            at = (*where, "needs", index) if isinstance(raw_needs, list) else (*where, "needs")
            need = _need(item, at, resources, walk)
            if need is not None:
                needs.append(need)
    kwargs = _some(
        unit=walk.get(entry, "unit", where, _text),
        buffers_outside_hours=walk.get(entry, "buffers_outside_hours", where, _flag),
        price=walk.get(entry, "price", where, _money_reader(currency)),
        check_in=walk.get(entry, "check_in", where, _time_of_day),
        check_out=walk.get(entry, "check_out", where, _time_of_day),
        **{key: walk.get(entry, key, where, _duration) for key in _DURATION_KEYS},
    )
    if sid is None or duration is None or len(walk.problems) > before:
        return None
    fields = _same(*_SERVICE_KEYS) | {"service id": "id", "service name": "name"}
    return walk.build(where, lambda: Service(sid, name or sid, needs=needs, duration=duration, **kwargs), fields)


# --- the whole file ------------------------------------------------------------------------------------------

_TOP_KEYS: Final = (
    "name",
    "zone",
    "currency",
    "language",
    "agent",
    "quiet_hours",
    "links",
    "hours",
    "policies",
    "resources",
    "users",
    "services",
    "notification_presets",
    "notifications",
)


def _shadow(entry: Mapping[str, Any]) -> Resource | None:
    """What a need can match of a declared resource (id, type, attributes), even if the rest of it is wrong."""
    try:
        return Resource(entry.get("id"), "-", type=entry.get("type", ""), attributes=entry.get("attributes", {}))
    except SlotEngineError:
        return None


def _resources(doc: Mapping[str, Any], zone: str | None, walk: _Walker) -> tuple[list[Resource], list[Resource]]:
    """The resources and users that were built, and every one declared (for needs to match against)."""
    resources: list[Resource] = []
    declared: list[Resource] = []
    seen: dict[str, str] = {}
    for key, kind in (("resources", None), ("users", ResourceKind.USER)):
        for index, entry in enumerate(walk.tables(doc, key, ())):
            raw_id = entry.get("id")
            if isinstance(raw_id, str) and raw_id in seen:
                walk.add((key, index, "id"), f"{raw_id!r} is already the id of {seen[raw_id]}")
                continue
            if isinstance(raw_id, str):
                seen[raw_id] = _where((key, index))
            found = _resource(entry, (key, index), kind, zone, walk)
            if found is not None:
                resources.append(found)
            shadow = _shadow(entry)
            if shadow is not None:
                declared.append(shadow)
    for resource in resources:
        if resource.role is ResourceRole.AUXILIARY and not any(r.role is ResourceRole.PRIMARY for r in resources):
            walk.add(("resources",), "auxiliary resources are booked with a primary one, and there is none")
            break
    return resources, declared


def _services(
    doc: Mapping[str, Any], currency: str | None, resources: Sequence[Resource], walk: _Walker
) -> tuple[list[Service], dict[str, str]]:
    services: list[Service] = []
    service_ids: dict[str, str] = {}
    for index, entry in enumerate(walk.tables(doc, "services", ())):
        raw_id = entry.get("id")
        if isinstance(raw_id, str) and raw_id in service_ids:
            walk.add(("services", index, "id"), f"{raw_id!r} is already the id of {service_ids[raw_id]}")
            continue
        if isinstance(raw_id, str):
            service_ids[raw_id] = _where(("services", index))
        found_service = _service(entry, ("services", index), currency, resources, walk)
        if found_service is not None:
            services.append(found_service)
    return services, service_ids


def _document(doc: Mapping[str, Any], walk: _Walker) -> BusinessFile | None:
    walk.keys(doc, (), _TOP_KEYS)
    name = walk.get(doc, "name", (), _text, required=True, example='"Sparkle car wash"')
    zone = walk.get(doc, "zone", (), _zone, required=True, example='"Europe/Paris"')
    currency = walk.get(doc, "currency", (), _text)
    if currency is not None:
        walk.read(currency, ("currency",), Money.zero)
    hours_doc = walk.table(doc, "hours", ())
    hours = None
    if hours_doc is None:
        if "hours" not in doc:
            walk.add(("hours",), 'missing: the business hours, such as [hours] weekdays = "09:00-18:00"')
    else:
        hours = _schedule(hours_doc, ("hours",), zone, walk)
        if hours is not None and zone is not None and hours.zone != zone:
            walk.add(("hours", "zone"), f"business hours are kept in the business's zone {zone}")
    policies = _policies(walk.table(doc, "policies", ()), walk)

    resources, declared = _resources(doc, zone, walk)
    services, service_ids = _services(doc, currency, declared, walk)
    if "services" not in doc:
        walk.add(("services",), "missing: at least one [[services]] table (what clients book)")
    elif doc["services"] == []:
        walk.add(("services",), "an empty list: give at least one [[services]] table (what clients book)")

    rules = _rules(doc, set(service_ids), walk)
    extras = _some(
        quiet_hours=walk.get(doc, "quiet_hours", (), _quiet),
        links=walk.get(doc, "links", (), _links),
        agent=walk.get(doc, "agent", (), _text),
        language=walk.get(doc, "language", (), _text),
    )
    if walk.problems or name is None or zone is None or hours is None or policies is None:
        return None
    fields = {"name": "name", "business name": "name", "hours": "hours", "rules": "notifications"} | _same(
        "quiet_hours", "links", "agent", "language"
    )
    business = walk.build((), lambda: Business(name, zone, hours, policies, rules=rules, **extras), fields)
    if business is None:
        return None
    return BusinessFile(business, resources, services)


def _links(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        msg = 'links are a table of text such as { cancel = "https://shop.example/cancel/$booking_id" }'
        raise _Bad(msg)
    return dict(value)


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    text = str(exc)
    match = _TOML_POSITION.match(text)
    if match is not None:
        return Problem(f"line {match['line']}, column {match['column']}", f"not valid TOML: {match['message']}")
    match = _TOML_END.match(text)
    if match is not None:
        return Problem("end of file", f"not valid TOML: {match['message']}")
    return Problem("", f"not valid TOML: {text}")


def loads_business_file(text: str, *, source: str = "<business file>") -> BusinessFile:
    """
    Read a business from the TOML *text* of a business file, checking all of it.

    Raises:
        BusinessFileError: the text is not valid TOML (the problem names its line and column), or it
            describes something invalid; ``problems`` lists every problem found with its location.
    """
    if not isinstance(cast("object", text), str):
        problem = Problem("", f"a business file is read from text (str), not {type(text).__name__}")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=str(source))
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = _syntax_problem(exc)
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    except ValueError:  # tomllib's int() of a number with more than 4,300 digits (Python's limit)
        problem = Problem("", "not valid TOML: a number has more digits than Python reads (4,300)")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    except RecursionError:
        problem = Problem("", "not valid TOML: arrays or tables are nested too deeply")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    walk = _Walker()
    try:
        found = _document(doc, walk)
    except RecursionError:  # a value nested just below tomllib's own limit, in a message or a check
        problem = Problem("", "arrays or tables are nested too deeply")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    if found is None or walk.problems:
        count = len(walk.problems)
        lines = "".join(f"\n  {p}" for p in walk.problems)
        msg = f"{source}: {count} problem{'s' if count != 1 else ''}{lines}"
        raise BusinessFileError(msg, problems=walk.problems, source=source)
    return found


def load_business_file(path: str | Path) -> BusinessFile:
    """
    Read the business file at *path* (see `loads_business_file`).

    Raises:
        BusinessFileError: the file cannot be read or is not UTF-8 text, or `loads_business_file` refuses it.
    """
    source = str(path)
    if not isinstance(cast("object", path), str | Path):
        problem = Problem("", f"a business file is named by a path (str or Path), not {type(path).__name__}")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source)
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        problem = Problem("", f"cannot be read: {reason}")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is no TOML
    except UnicodeDecodeError as exc:
        problem = Problem(f"byte {exc.start}", "not UTF-8 text")
        raise BusinessFileError(f"{source}: {problem}", problems=[problem], source=source) from None
    return loads_business_file(text, source=source)


# --- writing a business file -------------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: object) -> str:  # noqa: PLR0911 - one branch per TOML type
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    msg = f"cannot write {type(value).__name__} {value!r} in a business file"
    raise InvalidInputError(msg)


def _fmt_duration(value: timedelta) -> str:
    if value % timedelta(seconds=1):
        msg = f"a business file counts durations in whole seconds, not {value}"
        raise InvalidInputError(msg)
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n)
    return text or "0m"


def _fmt_clock(value: time) -> str:
    if value.microsecond:
        return value.isoformat(timespec="microseconds")
    return value.isoformat(timespec="seconds" if value.second else "minutes")


def _fmt_range(hours: TimeRange) -> str:
    start = _fmt_clock(hours.start)
    if not hours.crosses_midnight:
        return f"{start}-{_fmt_clock(hours.end)}"
    if hours.end == time(0):
        return f"{start}-24:00"
    return f"{start}-{_fmt_clock(hours.end)} next day"


def _fmt_percent(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else str(value)


def _fmt_money(value: Money) -> str:
    return f"{value.amount} {value.currency}"


class _Out:
    """Collects TOML lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def set(self, key: str, value: object) -> None:
        self.lines.append(f"{_toml_key(key)} = {_toml_value(value)}")

    def header(self, name: str, *, array: bool = False) -> None:
        if self.lines:
            self.lines.append("")
        self.lines.append(f"[[{name}]]" if array else f"[{name}]")


def _write_schedule(out: _Out, schedule: Schedule, prefix: str, *, zone: bool) -> None:
    out.header(prefix)
    if zone:
        out.set("zone", schedule.zone)
    for name, ranges in zip(WEEKDAYS, schedule.weekly.days, strict=True):
        if ranges:
            out.set(name, [_fmt_range(r) for r in ranges])
    if schedule.overrides:
        out.header(f"{prefix}.dates")
        for override in schedule.overrides:
            out.set(override.day.isoformat(), [_fmt_range(r) for r in override.ranges] or "closed")
    _write_time_off(out, schedule.time_off, prefix)
    _write_recurring(out, schedule.recurring, prefix)


def _write_time_off(out: _Out, time_off: Sequence[TimeOff], prefix: str) -> None:
    for entry in time_off:
        out.header(f"{prefix}.time_off", array=True)
        if entry.first_day is not None and entry.last_day is not None:
            out.set("from", entry.first_day)
            out.set("to", entry.last_day)
        else:
            assert entry.start is not None  # noqa: S101 - a TimeOff is whole days or two instants
            assert entry.end is not None  # noqa: S101
            out.set("from", entry.start)
            out.set("to", entry.end)
        if entry.reason:
            out.set("reason", entry.reason)


def _write_recurring(out: _Out, recurring: Sequence[RecurringHours], prefix: str) -> None:
    for rule in recurring:
        recurrence = rule.recurrence
        if recurrence.rdates or any(d.time() != rule.hours.start for d in recurrence.exdates):
            msg = "a business file writes recurring hours without rdates, with exdates at the hours' start"
            raise InvalidInputError(msg)
        out.header(f"{prefix}.recurring", array=True)
        out.set("rule", recurrence.rule)
        out.set("first", recurrence.dtstart.date())
        out.set("hours", _fmt_range(rule.hours))
        if rule.closed:
            out.set("closed", value=True)
        if recurrence.exdates:
            out.set("except", [d.date() for d in recurrence.exdates])
        if rule.reason:
            out.set("reason", rule.reason)


def _write_policies(out: _Out, policies: Policies) -> None:
    out.header("policies")
    out.set("allow_override", policies.allow_override)
    out.header("policies.hold")
    out.set("ttl", _fmt_duration(policies.hold.ttl))
    out.set("accept_late_payment", policies.hold.accept_late_payment)
    out.header("policies.confirmation")
    out.set("mode", policies.confirmation.mode.value)
    out.set("deposit_percent", _fmt_percent(policies.confirmation.deposit_percent))
    cancellation = policies.cancellation
    out.header("policies.cancellation")
    out.set("otherwise_refund_percent", _fmt_percent(cancellation.otherwise_percent))
    if cancellation.deadline is not None:
        out.set("deadline", _fmt_duration(cancellation.deadline))
    out.set("no_show_fee_percent", _fmt_percent(cancellation.no_show_fee_percent))
    out.set("charge_unpaid_penalty", cancellation.charge_unpaid_penalty)
    if cancellation.tiers:
        out.set(
            "tiers",
            [
                {"before": _fmt_duration(t.before), "refund_percent": _fmt_percent(t.refund_percent)}
                for t in cancellation.tiers
            ],
        )
    out.header("policies.reschedule")
    if policies.reschedule.deadline is not None:
        out.set("deadline", _fmt_duration(policies.reschedule.deadline))
    if policies.reschedule.max_times is not None:
        out.set("max_times", policies.reschedule.max_times)
    out.header("policies.no_show")
    out.set("grace", _fmt_duration(policies.no_show.grace))


def _attribute_values(resource_or_need: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in resource_or_need.items():
        if not isinstance(value, str | int | bool):
            msg = f"a business file keeps text, whole-number and true/false attributes, not {value!r}"
            raise InvalidInputError(msg)
        out[key] = value
    return out


def _write_resource(out: _Out, resource: Resource, *, users_apart: bool) -> None:
    """One resource; users under ``[[users]]`` if they all come after the others, else in place, with their kind."""
    user = resource.kind is ResourceKind.USER
    table = "users" if user and users_apart else "resources"
    out.header(table, array=True)
    out.set("id", resource.id)
    out.set("name", resource.name)
    if user and not users_apart:
        out.set("kind", resource.kind.value)  # in its place: the order of resources is the order needs try them
    if resource.type:
        out.set("type", resource.type)
    if resource.role is not ResourceRole.PRIMARY:
        out.set("role", resource.role.value)
    if resource.capacity != 1:
        out.set("capacity", "unlimited" if resource.capacity is UNLIMITED else resource.capacity)
    if resource.attributes:
        out.set("attributes", _attribute_values(resource.attributes))
    if resource.schedule is None:
        if resource.zone is not None:
            out.set("zone", resource.zone)
    else:
        _write_schedule(out, resource.schedule, f"{table}.schedule", zone=True)


def _need_table(need: Need) -> dict[str, object]:
    item: dict[str, object] = {}
    if need.type is not None:
        item["type"] = need.type
    if need.resource_ids:
        item["resources"] = sorted(need.resource_ids)
    if need.attributes:
        item["attributes"] = _attribute_values(need.attributes)
    if need.count != 1:
        item["count"] = need.count
    if need.units != 1:
        item["units"] = need.units
    if need.label:
        item["label"] = need.label
    return item


def _write_service(out: _Out, service: Service) -> None:
    out.header("services", array=True)
    out.set("id", service.id)
    out.set("name", service.name)
    out.set("duration", _fmt_duration(service.duration))
    if service.unit.value != "minutes":
        out.set("unit", service.unit.value)
    for key in _DURATION_KEYS:
        value = getattr(service, key)
        if value is not None and (value or key not in {"buffer_before", "buffer_after", "min_notice"}):
            out.set(key, _fmt_duration(value))
    if service.buffers_outside_hours:
        out.set("buffers_outside_hours", value=True)
    if service.price is not None:
        out.set("price", _fmt_money(service.price))
    for key in ("check_in", "check_out"):  # each that is set: the file says what the service says
        value = getattr(service, key)
        if value is not None:
            out.set(key, _fmt_clock(value))
    out.set("needs", [_need_table(need) for need in service.needs])


def _write_rule(out: _Out, rule: NotificationRule) -> None:
    out.header("notifications", array=True)
    out.set("id", rule.id)
    if rule.on:
        out.set("on", sorted(e.value for e in rule.on))
    elif rule.offset is not None:
        if rule.offset < timedelta(0):
            out.set("before", _fmt_duration(-rule.offset))
        else:
            out.set("after", _fmt_duration(rule.offset))
    out.set("condition", rule.condition.value)
    out.set("recipient", rule.recipient.value)
    out.set("channel", rule.channel)
    if rule.service_ids is not None:
        out.set("services", sorted(rule.service_ids))
    out.set("quiet_hours", rule.quiet_hours)
    out.set("subject", rule.template.subject)
    out.set("body", rule.template.body)


def dumps_business_file(value: BusinessFile) -> str:
    """
    Return *value* as the text of a business file that `loads_business_file` reads back to an equal value.

    Raises:
        InvalidInputError: something a business file cannot say: a duration with fractions of a second, an
            attribute that is a Decimal or Money, recurring hours with rdates; *value* is not a `BusinessFile`.
    """
    if not isinstance(cast("object", value), BusinessFile):
        msg = f"dumps_business_file writes a BusinessFile, not {type(value).__name__} {value!r}"
        raise InvalidInputError(msg, field="value")
    business = value.business
    out = _Out()
    out.set("name", business.name)
    out.set("zone", business.zone)
    out.set("language", business.language)
    if business.agent is not None:
        out.set("agent", business.agent)
    if business.quiet_hours is not None:
        quiet = business.quiet_hours
        out.set("quiet_hours", f"{_fmt_clock(quiet.start)}-{_fmt_clock(quiet.end)}")
    if business.links:
        out.header("links")
        for key, link in business.links.items():
            out.set(key, link)
    _write_schedule(out, business.hours, "hours", zone=False)
    _write_policies(out, business.policies)
    kinds = [r.kind is ResourceKind.USER for r in value.resources]
    users_apart = kinds == sorted(kinds)  # every user after every other resource: TOML keeps their order
    for resource in value.resources:
        _write_resource(out, resource, users_apart=users_apart)
    for service in value.services:
        _write_service(out, service)
    for rule in business.rules:
        _write_rule(out, rule)
    return "\n".join(out.lines) + "\n"
