"""
The full ``slotengine`` command, on click and rich (the ``[cli]`` extra); `slotengine.cli.main` runs it.

It reads arguments, opens the storage, calls `BookingEngine`, and prints: tables for people, ``--json`` for
programs. It never decides anything the library decides. Times typed on the command line are local wall times
of ``--tz`` (default: the business's zone); an explicit offset (``2026-03-03T09:00+01:00``) is taken as given.
The start of one booking is read strictly (docs/time.md): a wall time in a DST gap or fold is refused, not
guessed, and the offset says which pass through a fold is meant. Days (``--date``) follow the wall-time rule.
"""

from __future__ import annotations

import json
import math
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slotengine._time import check_day_range, days_span, get_zone, is_ambiguous, is_nonexistent, localize, to_utc
from slotengine.authorization import Actor, Permission, Role, RolePolicy
from slotengine.booking import Booking
from slotengine.engine import BookingEngine
from slotengine.errors import (
    AmbiguousLocalTimeError,
    InvalidInputError,
    NonexistentLocalTimeError,
    NotFoundError,
    OutOfRangeError,
)
from slotengine.intervals import Interval
from slotengine.model import ServiceUnit
from slotengine.money import Money
from slotengine.ports import Storage

__all__ = ["cli"]


# --- the context every command shares -----------------------------------------------------------------------


class _App:
    """The global options, and the engine opened from them on first use."""

    def __init__(self, db: str, tenant: str, tz: str | None, actor: str, schema: str, debug: bool) -> None:
        self.db, self.tenant, self.tz, self.actor_text = db, tenant, tz, actor
        self.schema, self.debug = schema, debug
        self._storage: Storage | None = None
        self._engine: BookingEngine | None = None

    @property
    def postgres(self) -> bool:
        return self.db.startswith(("postgresql://", "postgres://"))

    @property
    def shown_db(self) -> str:
        """The database as printed: a PostgreSQL URL without its passwords (user part, password=, sslpassword=)."""
        if not self.postgres:
            return self.db
        # libpq reads the password up to the last "@" of the authority, unencoded "#", "?" or "/" included;
        # hiding too much is harmless, showing any of it is not.
        shown = re.sub(r"^(postgres(?:ql)?://[^:@/?#]*:).*@", r"\1***@", self.db)
        return re.sub(r"([?&](?:ssl)?password=)[^&]*", r"\1***", shown)

    def storage(self, *, create: bool = False) -> Storage:
        if self._storage is None:
            if self.postgres:
                from slotengine.adapters.postgres import PostgresStorage

                self._storage = PostgresStorage(self.db, schema=self.schema, max_size=2)
            else:
                from slotengine.adapters.sqlite import SQLiteStorage

                path = Path(self.db.removeprefix("sqlite:///"))
                if not create and not path.exists():
                    msg = f"no database at {path}; create one with 'slotengine --db {path} init BUSINESS.toml'"
                    raise click.UsageError(msg)
                self._storage = SQLiteStorage(path)
        return self._storage

    def engine(self, *, create: bool = False) -> BookingEngine:
        if self._engine is None:
            from slotengine.adapters.clock import SystemClock

            self._engine = BookingEngine(
                self.storage(create=create), clock=SystemClock(), tenant=self.tenant, default_actor=self.actor()
            )
        return self._engine

    def actor(self) -> Actor:
        role, _, name = self.actor_text.partition(":")
        if not name:
            msg = f"--as takes ROLE:ID such as manager:sofia or customer:anna, not {self.actor_text!r}"
            raise click.BadParameter(msg, param_hint="--as")
        try:
            if Role(role) is Role.CUSTOMER:
                return Actor.customer(name)
            return Actor(name, role)
        except (ValueError, InvalidInputError):
            roles = ", ".join(r.value for r in Role)
            msg = f"unknown role {role!r}; roles are {roles}"
            raise click.BadParameter(msg, param_hint="--as") from None

    def zone(self) -> ZoneInfo:
        """The viewer's zone: ``--tz``, or the business's."""
        return get_zone(self.tz) if self.tz else get_zone(self.engine().business().zone)

    def close(self) -> None:
        close = getattr(self._storage, "close", None)
        if close is not None:
            close()


pass_app = click.make_pass_decorator(_App)


def _console(stream: TextIO | None = None) -> Console:
    out = stream or sys.stdout
    console = Console(file=out)
    if not console.is_terminal:
        console = Console(file=out, width=200)
    return console


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- reading values typed on the command line ----------------------------------------------------------------


def _day(text: str) -> date:
    try:
        return check_day_range(date.fromisoformat(text), "date")
    except OutOfRangeError as error:
        raise click.BadParameter(str(error)) from None
    except ValueError:
        msg = f"{text!r} is not a date such as 2026-03-03"
        raise click.BadParameter(msg) from None


def _instant(text: str, zone: ZoneInfo) -> datetime:
    """
    The instant a person typed for one booking: a wall time of *zone*, or a date and time with an offset.

    A guess would book the wrong hour (docs/time.md, "Strict mode for exact times"), so a wall time that the
    clocks skip, or pass twice, is refused with what to type instead; an offset says which pass is meant.

    Raises:
        click.BadParameter: *text* is not a date and time, or is a wall time in a DST gap or fold of *zone*.
    """
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text.strip() else text)
    except ValueError:
        msg = f"{text!r} is not a date and time such as 2026-03-03T09:00"
        raise click.BadParameter(msg) from None
    if value.tzinfo is not None:
        return to_utc(value)
    try:
        return localize(value, zone, strict=True)
    except NonexistentLocalTimeError:
        start, end = _gap(value, zone)
        with_date = not start.date() == end.date() == value.date()
        start_text, end_text = _wall(start, with_date=with_date), _wall(end, with_date=with_date)
        msg = (
            f"{_wall(value)} does not exist in {zone.key}: the clocks jump from {start_text} to {end_text}; "
            f"give a time before {start_text} or from {end_text}"
        )
        raise click.BadParameter(msg) from None
    except AmbiguousLocalTimeError:
        first, second = (value.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
        msg = (
            f"{_wall(value)} happens twice in {zone.key} (the clocks go back): give its offset, "
            f"{_typed(first)} for the first time ({first.tzname()}) "
            f"or {_typed(second)} for the second ({second.tzname()})"
        )
        raise click.BadParameter(msg) from None


def _gap(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The naive wall times that start and end the gap *wall* falls in: the clocks jump from the one to the other."""
    before, after = (wall.replace(tzinfo=zone, fold=fold).utcoffset() or timedelta(0) for fold in (0, 1))
    # The clocks change at a whole second of (wall - after, wall - before], the first one in force of *after*.
    low = math.floor((wall - after).replace(tzinfo=UTC).timestamp())
    high = math.ceil((wall - before).replace(tzinfo=UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    change = datetime.fromtimestamp(high, UTC).replace(tzinfo=None)
    return change + before, change + after


def _wall(value: datetime, *, with_date: bool = True) -> str:
    """A naive wall time as one types it, ``2027-03-28 02:30``; with seconds only when it has some."""
    shown = f"{value:%H:%M:%S}" if value.second or value.microsecond else f"{value:%H:%M}"
    return f"{value:%Y-%m-%d} {shown}" if with_date else shown


def _typed(value: datetime) -> str:
    """An aware datetime as one types it on the command line, with its offset: ``2027-10-31T02:30+01:00``."""
    return value.isoformat(timespec="minutes" if not value.second and not value.microsecond else "auto")


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    from slotengine.businessfile import _Bad
    from slotengine.businessfile import _duration as read

    try:
        return read(text)
    except _Bad as exc:
        raise click.BadParameter(str(exc)) from None


def _money(text: str, currency: str | None) -> Money:
    parts = text.split()
    if len(parts) == 2:
        return Money(parts[0], parts[1])
    if currency is None:
        msg = f"{text!r} has no currency; write it as '25.00 EUR'"
        raise click.BadParameter(msg)
    return Money(text, currency)


def _end_text(booking: Booking, zone: ZoneInfo) -> str:
    """A booking's local end: the time alone on its start's day, else with its date (a stay ends days later)."""
    end = booking.end.astimezone(zone)
    if end.date() != booking.start.astimezone(zone).date():
        return _local(end, zone)
    return f"{end:%H:%M}{_which_pass(end, zone)}"


def _local(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as a local date and time; a wall time the clocks pass twice says which pass (``CEST``)."""
    local = instant.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M}{_which_pass(local, zone)}"


def _which_pass(local: datetime, zone: ZoneInfo) -> str:
    return f" {local:%Z}" if is_ambiguous(local.replace(tzinfo=None), zone) else ""


def _booking_json(booking: Booking, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": booking.id,
        "service_id": booking.service_id,
        "status": booking.status.value,
        "start": booking.start.astimezone(zone).isoformat(),
        "end": booking.end.astimezone(zone).isoformat(),
        "resource_ids": list(booking.resource_ids),
        "customer_id": booking.customer_id,
        "source": booking.source,
        "external_ref": booking.external_ref,
        "price": None if booking.price is None else str(booking.price),
        "paid": str(booking.net_paid) if booking.currency else None,
        "refunded": str(booking.refunded) if booking.currency else None,
        "hold_until": None if booking.hold_until is None else booking.hold_until.astimezone(zone).isoformat(),
        "reschedules": booking.reschedules,
        "version": booking.version,
    }


def _show_booking(booking: Booking, zone: ZoneInfo, as_json: bool, verb: str = "") -> None:
    if as_json:
        _print_json(_booking_json(booking, zone))
        return
    price = f", price {booking.price}" if booking.price is not None else ""
    paid = f", paid {booking.net_paid}" if booking.currency and booking.net_paid.amount else ""
    who = f" for {booking.customer_id}" if booking.customer_id else ""
    click.echo(
        f"{verb + ' ' if verb else ''}{booking.id}: {booking.service_id} {_local(booking.start, zone)}"
        f"-{_end_text(booking, zone)} ({zone.key}) on {'+'.join(booking.resource_ids)}{who}: "
        f"{booking.status.value}{price}{paid}"
    )


def _days_window(first: date, days: int, zone: ZoneInfo) -> Interval:
    """The local days *first* onwards in *zone*; a single day the zone skipped (Samoa, 30 December 2011) is none."""
    start, end = days_span(first, days, zone)
    if end <= start:
        msg = f"{first} does not exist in {zone.key}: its clocks skipped that whole day"
        raise click.BadParameter(msg)
    return Interval(start, end)


def _today(zone: ZoneInfo) -> date:
    from slotengine.adapters.clock import SystemClock

    return SystemClock().now().astimezone(zone).date()


# --- the group -------------------------------------------------------------------------------------------------

_JSON = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="SLOTENGINE_DB",
    show_envvar=True,
    default="slotengine.db",
    show_default=True,
    help="A SQLite file, or a postgresql://... URL for PostgreSQL.",
)
@click.option(
    "--tenant", envvar="SLOTENGINE_TENANT", show_envvar=True, default="default", show_default=True, help="The business."
)
@click.option("--tz", help="Your time zone, for times shown and typed (default: the business's zone).")
@click.option(
    "--as",
    "actor",
    envvar="SLOTENGINE_ACTOR",
    show_envvar=True,
    default="admin:cli",
    show_default=True,
    help="Who acts, as ROLE:ID (customer:anna, staff:desk, manager:sofia, admin:owner, system:cron).",
)
@click.option("--schema", default="slotengine", show_default=True, help="The PostgreSQL schema to use.")
@click.option("--debug", is_flag=True, envvar="SLOTENGINE_DEBUG", help="Show tracebacks on errors.")
@click.version_option(package_name="slotengine")
@click.pass_context
def cli(ctx: click.Context, db: str, tenant: str, tz: str | None, actor: str, schema: str, debug: bool) -> None:
    """slotengine: a booking engine that never double-books."""
    if tz is not None:
        try:
            get_zone(tz)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint="--tz") from None
    app = _App(db, tenant, tz, actor, schema, debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.command()
@click.argument("business_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only check the file; write nothing.")
@pass_app
def init(app: _App, business_file: Path, check: bool) -> None:
    """Create or update the database from BUSINESS_FILE: the business, its resources and its services."""
    from slotengine.businessfile import load_business_file

    loaded = load_business_file(business_file)
    summary = (
        f"{loaded.business.name}: {len(loaded.resources)} resources and staff, {len(loaded.services)} services, "
        f"{len(loaded.business.rules)} notification rules"
    )
    if check:
        click.echo(f"{business_file}: ok ({summary})")
        return
    RolePolicy().authorize(app.actor(), Permission.SETUP, None)  # as the engine will, before a file is made
    engine = app.engine(create=True)
    engine.setup(loaded.business)
    for resource in loaded.resources:
        engine.add_resource(resource)
    for service in loaded.services:
        engine.add_service(service)
    click.echo(f"{summary}; written to {app.shown_db} (tenant {app.tenant!r})")


def _length(duration: timedelta) -> str:
    """A duration as a business file writes it: ``30m``, ``1h30m``, ``1d`` (``str`` gives ``1 day, 0:00:00``)."""
    seconds = int(duration.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0m"


def _iso_duration(duration: timedelta) -> str:
    """
    *duration* as an ISO 8601 duration for JSON: ``PT30M``, ``PT1H30M``, ``P1D``, ``PT45S``, ``PT0S``.

    A day is 24 hours here, as in the business file's ``1d``; seconds keep their fraction (``PT0.5S``).
    """
    sign, rest = ("-", -duration) if duration < timedelta(0) else ("", duration)
    days, seconds, micros = rest.days, rest.seconds, rest.microseconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or micros:
        clock += (f"{seconds}.{micros:06d}".rstrip("0") if micros else f"{seconds}") + "S"
    text = (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return f"{sign}P{text or 'T0S'}"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")
@pass_app
def info(app: _App, as_json: bool) -> None:
    """Show the business, its resources and staff, and its services."""
    engine = app.engine()
    business, resources, services = engine.business(), engine.resources(), engine.services()
    if as_json:
        _print_json(
            {
                "name": business.name,
                "zone": business.zone,
                "resources": [
                    {"id": r.id, "name": r.name, "kind": r.kind.value, "type": r.type, "role": r.role.value}
                    for r in resources
                ],
                "services": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "duration": _iso_duration(s.duration),
                        "price": None if s.price is None else str(s.price),
                    }
                    for s in services
                ],
            }
        )
        return
    console = _console()
    console.print(f"[bold]{escape(business.name)}[/bold] ({business.zone})")
    table = Table("id", "name", "kind", "type", "role", "capacity", title="Resources and staff")
    for r in resources:
        capacity = "unlimited" if r.unlimited else str(r.capacity)
        table.add_row(*map(escape, (r.id, r.name, r.kind.value, r.type, r.role.value)), capacity)
    console.print(table)
    services_table = Table("id", "name", "duration", "unit", "price", title="Services")
    for s in services:
        price = "" if s.price is None else str(s.price)  # a free service's 0.00 is not "no price"
        services_table.add_row(escape(s.id), escape(s.name), _length(s.duration), s.unit.value, price)
    console.print(services_table)


@cli.command()
@click.argument("service")
@click.option("--date", "day", help="The first local day (default: today).")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 366), help="How many days to search.")
@click.option("--duration", help="A length other than the service's default, such as 1h30m.")
@click.option("--pin", multiple=True, help="Only slots on this resource (repeatable).")
@click.option("--limit", type=click.IntRange(0), help="At most this many slots.")
@_JSON
@pass_app
def slots(
    app: _App,
    service: str,
    day: str | None,
    days: int,
    duration: str | None,
    pin: Sequence[str],
    limit: int | None,
    as_json: bool,
) -> None:
    """List the free slots of SERVICE, from today or --date, for --days days."""
    engine = app.engine()
    zone = app.zone()
    first = _day(day) if day else _today(zone)
    found = engine.find_slots(
        service, _days_window(first, days, zone), duration=_duration(duration), pin=pin, limit=limit
    )
    if as_json:
        _print_json(
            [
                {
                    "start": s.start.astimezone(zone).isoformat(),
                    "end": s.end.astimezone(zone).isoformat(),
                    "resource_ids": list(s.resource_ids),
                }
                for s in found
            ]
        )
        return
    if not found:
        click.echo(f"no free slots for {service} from {first} for {days} day(s)")
        return
    table = Table("start", "end", "resources", title=escape(f"{service}: {len(found)} free slots ({zone.key})"))
    for s in found:
        table.add_row(_local(s.start, zone), _local(s.end, zone), escape(" + ".join(s.resource_ids)))
    _console().print(table)


def _start(app: _App, engine: BookingEngine, service_id: str, text: str) -> datetime:
    """
    A start typed as a date and time (in the viewer's zone), or as a date alone for a day or night service.

    A date alone means the day's start or check-in in the zone whose days the service counts (its resources'
    zone where they share one, else the business's), whatever ``--tz`` says.
    """
    if "T" in text or " " in text.strip() or ":" in text:
        return _instant(text, app.zone())
    day = _day(text)
    service = next((s for s in engine.services() if s.id == service_id), None)
    if service is None or service.unit is ServiceUnit.MINUTES:
        if service is None:  # the engine names the unknown service
            return localize(datetime.combine(day, time(0)), app.zone())
        msg = f"{text} is a date; {service.name} is booked at a time: give one, such as {text}T09:00"
        raise click.BadParameter(msg)
    business = engine.business()
    serving = {r.zone or business.zone for r in engine.resources() if any(n.matches(r) for n in service.needs)}
    zone = get_zone(serving.pop() if len(serving) == 1 else business.zone)
    first = service.check_in if service.unit is ServiceUnit.NIGHTS and service.check_in is not None else time(0)
    return localize(datetime.combine(day, first), zone)


def _create_options(command: Any) -> Any:
    for option in reversed(
        [
            click.argument("service"),
            click.argument("start"),
            click.option("--customer", help="The customer's id."),
            click.option("--duration", help="A length other than the service's default, such as 3h or 2d."),
            click.option("--pin", multiple=True, help="Book on this resource (repeatable)."),
            click.option("--source", default=None, help="Where the booking comes from (site, manager, partner...)."),
            click.option("--notes", default="", help="Free notes."),
            click.option("--ref", "external_ref", help="An external id (a CRM deal, an order)."),
            click.option("--key", "idempotency_key", help="An idempotency key: a retry with it books nothing twice."),
            _JSON,
        ]
    ):
        command = option(command)
    return command


@cli.command()
@_create_options
@click.option("--override", is_flag=True, help="Book outside the offered times (managers, where allowed).")
@pass_app
def book(app: _App, /, service: str, start: str, override: bool, as_json: bool, **options: Any) -> None:
    """Book SERVICE at START (a local time such as 2026-03-03T09:00), confirmed at once."""
    engine = app.engine()
    kwargs = _booking_kwargs(options)
    booking = engine.book(service, _start(app, engine, service, start), override=override, **kwargs)
    _show_booking(booking, app.zone(), as_json, "booked")


@cli.command()
@_create_options
@pass_app
def hold(app: _App, /, service: str, start: str, as_json: bool, **options: Any) -> None:
    """Pre-book SERVICE at START: the time is held until the hold expires."""
    engine = app.engine()
    booking = engine.hold(service, _start(app, engine, service, start), **_booking_kwargs(options))
    _show_booking(booking, app.zone(), as_json, "held")


def _booking_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "customer_id": options["customer"],
        "duration": _duration(options["duration"]),
        "pin": options["pin"],
        "notes": options["notes"],
        "external_ref": options["external_ref"],
        "idempotency_key": options["idempotency_key"],
    }
    if options["source"] is not None:
        kwargs["source"] = options["source"]
    return kwargs


@cli.command()
@click.argument("booking_id")
@_JSON
@pass_app
def show(app: _App, booking_id: str, as_json: bool) -> None:
    """Show one booking and its history."""
    engine = app.engine()
    booking = engine.get(booking_id)
    zone = app.zone()
    history = engine.transitions(booking_id)
    if as_json:
        doc = _booking_json(booking, zone)
        doc["history"] = [
            {"at": t.at.astimezone(zone).isoformat(), "action": t.action.value, "to": t.to_status.value, "by": t.actor}
            for t in history
        ]
        _print_json(doc)
        return
    _show_booking(booking, zone, as_json=False)
    for t in history:
        click.echo(f"  {_local(t.at, zone)}  {t.action.value:<14} -> {t.to_status.value:<12} by {t.actor}")


@cli.command()
@click.argument("booking_id")
@click.option("--key", "idempotency_key", help="An idempotency key.")
@_JSON
@pass_app
def confirm(app: _App, booking_id: str, idempotency_key: str | None, as_json: bool) -> None:
    """Confirm a pre-booking (a manager's confirmation)."""
    booking = app.engine().confirm(booking_id, idempotency_key=idempotency_key)
    _show_booking(booking, app.zone(), as_json, "confirmed")


@cli.command()
@click.argument("booking_id")
@click.argument("amount", required=False)
@click.option("--payment-id", help="The payment provider's id (a replay with it records nothing twice).")
@_JSON
@pass_app
def pay(app: _App, booking_id: str, amount: str | None, payment_id: str | None, as_json: bool) -> None:
    """Record a payment of AMOUNT ('25.00 EUR', or '25' in the booking's currency; default: what is due)."""
    engine = app.engine()
    booking = engine.get(booking_id)
    if amount is None:
        due = booking.due - booking.net_paid if booking.price is not None else None
        if due is None or due.amount <= 0:
            msg = "nothing is due on this booking; give the AMOUNT"
            raise click.UsageError(msg)
        money = due
    else:
        money = _money(amount, booking.currency)
    paid = engine.pay(booking_id, money, payment_id=payment_id or f"cli-{uuid.uuid4().hex}")
    _show_booking(paid, app.zone(), as_json, "paid")


@cli.command()
@click.argument("booking_id")
@click.option("--yes", "-y", is_flag=True, help="Cancel without asking.")
@click.option("--by-business", is_flag=True, help="The business cancels (a full refund).")
@click.option("--reason", default="", help="Why.")
@_JSON
@pass_app
def cancel(app: _App, booking_id: str, yes: bool, by_business: bool, reason: str, as_json: bool) -> None:
    """Cancel a booking: the quote (refund, penalty) is shown first, and asked about unless --yes."""
    engine = app.engine()
    quote = engine.cancellation_quote(booking_id, by_business=by_business)
    text = (
        f"cancelling {booking_id} now: {quote.refund_percent}% refund = {quote.refund} back, "
        f"penalty {quote.penalty}" + (f", {quote.owed} owed" if quote.owed.amount else "")
    )
    if not as_json:
        click.echo(text)
    elif not yes:
        click.echo(text, err=True)
    if not yes:
        click.confirm("Cancel this booking?", abort=True, err=as_json)
    cancelled = engine.cancel(booking_id, by_business=by_business, reason=reason, expected_quote=quote)
    if as_json:
        doc = _booking_json(cancelled, app.zone())
        doc["quote"] = {
            "refund_percent": str(quote.refund_percent),
            "refund": str(quote.refund),
            "penalty": str(quote.penalty),
            "owed": str(quote.owed),
        }
        _print_json(doc)
        return
    _show_booking(cancelled, app.zone(), as_json=False, verb="cancelled")


@cli.command()
@click.argument("booking_id")
@click.argument("new_start")
@click.option("--duration", help="A new length, such as 1h30m.")
@_JSON
@pass_app
def reschedule(app: _App, booking_id: str, new_start: str, duration: str | None, as_json: bool) -> None:
    """Move a booking to NEW_START (a local time), keeping its payments (refused once it has ended)."""
    engine = app.engine()
    booking = engine.get(booking_id)
    moved = engine.reschedule(
        booking_id, _start(app, engine, booking.service_id, new_start), duration=_duration(duration)
    )
    _show_booking(moved, app.zone(), as_json, "moved")


# --- agenda --------------------------------------------------------------------------------------------------

_STATUS_STYLE = {
    "pre_booking": "yellow",
    "confirmed": "cyan",
    "paid": "green",
    "completed": "dim",
    "no_show": "red",
}


@cli.command()
@click.option("--date", "day", help="The local day (default: today); with --week, any day of the week.")
@click.option("--week", is_flag=True, help="Show the whole ISO week (Monday to Sunday).")
@click.option("--resource", help="Only this resource.")
@click.option("--step", default="30m", show_default=True, help="The day grid's row length.")
@_JSON
@pass_app
def agenda(app: _App, day: str | None, week: bool, resource: str | None, step: str, as_json: bool) -> None:
    """Show the bookings of a day (a time grid) or a week (a grid of days) in the terminal."""
    row = _row_length(step)
    engine = app.engine()
    zone = app.zone()
    first = _day(day) if day else _today(zone)
    if week:
        first -= timedelta(days=first.weekday())
    days = 7 if week else 1
    window = _days_window(first, days, zone)
    resources = [r for r in engine.resources() if resource is None or r.id == resource]
    if not resources and resource is not None:
        msg = f"no resource {resource!r}; 'slotengine info' lists them"
        raise NotFoundError(msg, resource_id=resource)
    bookings = engine.agenda(window)
    if resource is not None:
        bookings = [b for b in bookings if resource in b.resource_ids]
    if as_json:
        _print_json([_booking_json(b, zone) for b in bookings])
        return
    console = _console()
    if week:
        console.print(_week_grid(bookings, resources, first, zone))
    else:
        console.print(_day_grid(bookings, resources, window, zone, row))


def _row_length(text: str) -> timedelta:
    """The day grid's row length: whole minutes, from one minute to a day (``0m`` or ``1s`` is no grid)."""
    step = _duration(text) or timedelta(0)
    if not timedelta(minutes=1) <= step <= timedelta(days=1) or step % timedelta(minutes=1):
        msg = f"a row lasts whole minutes, from 1m to 24h, not {text!r}"
        raise click.BadParameter(msg, param_hint="--step")
    return step


def _label(booking: Booking) -> str:
    """A booking as a grid names it, styled by its status; its ids are text, never markup."""
    who = escape(booking.customer_id or "-")
    style = _STATUS_STYLE.get(booking.status.value, "")
    service = escape(booking.service_id)
    return f"[{style}]{service} {who} ({booking.status.value})[/{style}]" if style else service


def _by_start(booking: Booking) -> tuple[datetime, str]:
    return booking.start, booking.customer_id or ""


def _day_grid(
    bookings: Sequence[Booking], resources: Sequence[Any], window: Interval, zone: ZoneInfo, step: timedelta
) -> Table:
    """
    Rows of *step* down the day, from the first to the last hour with a booking (08:00-20:00 at least).

    Rows follow the wall clock, so every day shows the same hours, DST days too (docs/time.md): a row the clocks
    skip is left out (the row before it lasts until the jump), and a row they pass twice is shown twice, each
    with the abbreviation of its offset.
    """
    table = Table(
        "time", *[escape(r.name) for r in resources], title=f"{window.start.astimezone(zone):%A %Y-%m-%d} ({zone.key})"
    )
    midnight = datetime.combine(window.start.astimezone(zone).date(), time(0))
    # The hours the bookings reach on this day's clock; one that runs past midnight reaches 24:00.
    today = [b for b in bookings if b.start < window.end and window.start < b.end]
    starts = [max(b.start, window.start).astimezone(zone).hour for b in today]
    ends = [24 if b.end >= window.end else b.end.astimezone(zone).hour + 1 for b in today]
    wall, last = midnight + timedelta(hours=min([8, *starts])), midnight + timedelta(hours=max([20, *ends]))
    rows: list[tuple[datetime, str]] = []
    while wall < last:
        if not is_nonexistent(wall, zone):
            passes = sorted({wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)})
            for at in passes:
                label = f"{wall:%H:%M}" if len(passes) == 1 else f"{wall:%H:%M} {at.astimezone(zone):%Z}"
                rows.append((at, label))
        wall += step
    rows.sort()  # the second pass through a fold comes after the first
    # The last row runs to the end of its hour: the later of the two instants that wall time can mean.
    end = min(window.end, max(last.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)))
    rows = [(at, label) for at, label in rows if window.start <= at < end]
    for index, (at, label) in enumerate(rows):
        until = rows[index + 1][0] if index + 1 < len(rows) else end
        cells = [label]
        for r in resources:
            # Every booking that starts in the row is named (a resource with capacity takes several at once), and
            # in the first row those that began before it; a row that only continues bookings gets a bar.
            here = [b for b in bookings if r.id in b.resource_ids and b.start < until and b.end > at]
            starting = [_label(b) for b in sorted(here, key=_by_start) if at <= b.start or index == 0]
            cells.append("\n".join(starting) if starting else "[dim]│[/dim]" if here else "")
        table.add_row(*cells)
    return table


def _week_grid(bookings: Sequence[Booking], resources: Sequence[Any], monday: date, zone: ZoneInfo) -> Table:
    """One row per resource, one column per day; each cell lists that day's bookings."""
    days = [monday + timedelta(days=i) for i in range(7)]
    table = Table("resource", *[f"{d:%a %d %b}" for d in days], title=f"Week of {monday} ({zone.key})", show_lines=True)
    for r in resources:
        cells = []
        for d in days:
            lines = [
                f"{b.start.astimezone(zone):%H:%M} {_label(b)}"
                for b in bookings
                if r.id in b.resource_ids and b.start.astimezone(zone).date() == d
            ]
            cells.append("\n".join(lines))
        table.add_row(escape(r.name), *cells)
    return table


# --- reports, notifications, calendars, board, demo -------------------------------------------------------------

_REPORTS = ("revenue", "utilization", "cancellations", "funnel")


@cli.command()
@click.argument("kind", type=click.Choice(_REPORTS), default="revenue")
@click.option("--from", "first", help="The first local day (default: the first of this month).")
@click.option("--to", "last", help="The last local day, included (default: today).")
@click.option("--grain", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option(
    "--by", "dimensions", multiple=True, help="Rows per total, resource, type, service or source (not for utilization)."
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@_JSON
@pass_app
def report(
    app: _App,
    kind: str,
    first: str | None,
    last: str | None,
    grain: str,
    dimensions: Sequence[str],
    as_csv: bool,
    as_json: bool,
) -> None:
    """Print a report (revenue, utilization, cancellations, funnel) as a table, CSV or JSON."""
    from slotengine import reports

    engine = app.engine()
    zone = app.zone()
    today = _today(zone)
    start_day = _day(first) if first else today.replace(day=1)
    end_day = _day(last) if last else today
    common: dict[str, Any] = {"grain": grain, "zone": zone.key}
    if dimensions and kind == "utilization":
        msg = "utilization is reported per resource; --by applies to revenue, cancellations and funnel"
        raise click.UsageError(msg)
    if dimensions:
        common["dimensions"] = dimensions
    rows: Sequence[Any]
    if kind == "revenue":
        rows = reports.revenue_report(engine, start_day, end_day, **common)
    elif kind == "utilization":
        rows = reports.utilization_report(engine, start_day, end_day, **common)
    elif kind == "cancellations":
        rows = reports.cancellation_report(engine, start_day, end_day, **common)
    else:
        rows = reports.funnel_report(engine, start_day, end_day, **common)
    if as_json:
        _print_json([row.to_dict() for row in rows])
        return
    if as_csv:
        reports.to_csv(rows, sys.stdout)
        return
    if not rows:
        click.echo(f"nothing to report: no {kind} figures from {start_day} to {end_day} ({zone.key})")
        return
    flat = [row.to_row() for row in rows]
    columns: dict[str, None] = {}
    for row in flat:
        columns.update(dict.fromkeys(row))
    table = Table(*map(escape, columns), title=f"{kind} {start_day} to {end_day} ({zone.key})")
    for row in flat:
        table.add_row(*[escape(_cell(row.get(c))) for c in columns])
    _console().print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@cli.command()
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1), help="At most this many messages.")
@click.option("--no-sweep", is_flag=True, help="Do not mark lapsed holds expired first.")
@_JSON
@pass_app
def notify(app: _App, limit: int, no_sweep: bool, as_json: bool) -> None:
    """Send every message due now with a console notifier (one line each), after sweeping lapsed holds."""
    from slotengine.adapters.notifiers import ConsoleNotifier

    engine = app.engine()
    expired = [] if no_sweep else engine.expire_due()
    stream = sys.stderr if as_json else sys.stdout
    done = engine.dispatch_due(ConsoleNotifier(stream), limit=limit)
    result = {
        "expired": len(expired),
        "sent": done.sent,
        "retried": done.retried,
        "failed": done.failed,
        "withdrawn": done.withdrawn,
    }
    if as_json:
        _print_json(result)
        return
    click.echo(", ".join(f"{k} {v}" for k, v in result.items()))


@cli.command()
@click.option("--keep-messages", default="90d", show_default=True, help="Keep messages done with this recently.")
@click.option("--keep-keys", default="30d", show_default=True, help="Keep idempotency keys used this recently.")
@_JSON
@pass_app
def prune(app: _App, keep_messages: str, keep_keys: str, as_json: bool) -> None:
    """Forget outbox messages done with long ago and old idempotency keys (never bookings or their history)."""
    # Both options have defaults, so neither reads as None; a zero duration keeps nothing.
    messages, keys = _duration(keep_messages) or timedelta(0), _duration(keep_keys) or timedelta(0)
    done = app.engine().prune(keep_messages=messages, keep_keys=keys)
    result = {"messages": done.messages, "keys": done.keys}
    if as_json:
        _print_json(result)
        return
    click.echo(f"forgot {done.messages} messages and {done.keys} idempotency keys")


@cli.command()
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="A business to serve; repeat it for several (default: the global --tenant).",
)
@click.option("--every", default="1m", show_default=True, help="Time from one pass's start to the next.")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron or a systemd timer); as --passes 1.")
@click.option("--passes", type=click.IntRange(1), help="Stop after this many passes (default: run until stopped).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="Messages per batch.")
@click.option("--prune-every", default="1d", show_default=True, help="How often to forget old messages and keys.")
@click.option("--no-prune", is_flag=True, help="Never prune (another worker does).")
@click.option("--keep-messages", default="90d", show_default=True, help="Keep messages done with this recently.")
@click.option("--keep-keys", default="30d", show_default=True, help="Keep idempotency keys used this recently.")
@click.option(
    "--webhook",
    metavar="URL",
    help="POST each message, signed, to this URL (secret in $SLOTENGINE_WEBHOOK_SECRET) instead of printing it.",
)
@_JSON
@pass_app
def worker(
    app: _App,
    tenants: tuple[str, ...],
    every: str,
    once: bool,
    passes: int | None,
    limit: int,
    prune_every: str,
    no_prune: bool,
    keep_messages: str,
    keep_keys: str,
    webhook: str | None,
    as_json: bool,
) -> None:
    """
    Run the background jobs of businesses until stopped (SIGTERM or Ctrl-C: once the business in hand is done).

    Each pass, for each business: mark lapsed holds expired, walk the events' waiting lists, and send every
    message due (the console prints them, one line each, or --webhook posts them); and once per --prune-every
    of a run, from its first pass, forget messages and idempotency keys done with long ago (from cron: run
    'worker --once --no-prune' every minute and 'slotengine prune' daily). The businesses and the actor's
    rights are checked at start: an unknown business, a database out of reach or an actor who may not run the
    jobs stops it at once. A business whose pass fails later is reported (on stderr; with --json, as a line
    with an "error" key) and tried again next pass. Prints one line per business and pass that did something
    (every pass with --once or --passes); exits 1 if the last pass of any business failed.
    """
    import signal
    import time as clock

    period = _duration(every) or timedelta(0)
    if period < timedelta(seconds=1):
        raise click.BadParameter("a pass runs at most every second; give 1s or more", param_hint="--every")
    prune_period = _duration(prune_every) or timedelta(0)
    if not no_prune and prune_period < timedelta(minutes=1):
        raise click.BadParameter("prune at most every minute; give 1m or more", param_hint="--prune-every")
    keep = (_duration(keep_messages) or timedelta(0), _duration(keep_keys) or timedelta(0))
    limited = 1 if once else passes
    stream = sys.stderr if as_json else sys.stdout
    served = tuple(dict.fromkeys(tenants or (app.tenant,)))
    several = len(served) > 1
    jobs = _Jobs(app, served, lambda t: _worker_notifier(webhook, stream, t, several=several), prunes=not no_prune)
    stopping: list[int] = []  # a signal's number; a plain list, as a handler must take no lock

    def stop(number: int, _frame: object) -> None:
        stopping.append(number)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    done = 0
    try:
        while not stopping and (limited is None or done < limited):
            began = clock.monotonic()
            done += 1
            for tenant in jobs.desks:
                if stopping:
                    break
                result = jobs.run(tenant, limit, None if no_prune else (prune_period, *keep))
                if "error" not in result and result.pop("idle") and limited is None:
                    continue
                result.pop("idle", None)
                if as_json:
                    click.echo(json.dumps({"pass": done, **result}, ensure_ascii=False))
                else:
                    click.echo(f"pass {done} {_worker_line(result)}", err="error" in result)
            until = began + period.total_seconds()
            while (limited is None or done < limited) and not stopping and clock.monotonic() < until:
                clock.sleep(min(0.25, max(0.0, until - clock.monotonic())))  # a signal ends the wait within 0.25 s
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if jobs.failing:
        click.get_current_context().exit(1)


class _Jobs:
    """The businesses a worker serves, each with its engine and events desk, and when each was last pruned."""

    def __init__(self, app: _App, tenants: Sequence[str], notifier: Callable[[str], Any], *, prunes: bool) -> None:
        from slotengine.adapters.clock import SystemClock
        from slotengine.errors import PermissionDeniedError
        from slotengine.events import EventDesk

        self.notifiers = {tenant: notifier(tenant) for tenant in tenants}
        self.desks: dict[str, EventDesk] = {}
        self.failing: set[str] = set()
        self._pruned: dict[str, float] = {}
        storage, actor = app.storage(), app.actor()
        for tenant in tenants:
            engine = BookingEngine(storage, clock=SystemClock(), tenant=tenant, default_actor=actor)
            try:
                engine.business()
            except NotFoundError:
                setup = f"slotengine --tenant {tenant} init FILE"
                msg = f"no business {tenant!r} in {app.shown_db}; set it up with '{setup}'"
                raise click.UsageError(msg) from None
            wanted = (Permission.EXPIRE, Permission.DISPATCH, *((Permission.PRUNE,) if prunes else ()))
            try:
                for permission in wanted:  # refused now, not after a pass has done half its work
                    engine.authorization.authorize(actor, permission, None)
            except PermissionDeniedError as error:
                hint = " (or --no-prune)" if permission is Permission.PRUNE else ""
                msg = f"{error}; run the worker as an admin or the system, --as system:worker{hint}"
                raise click.UsageError(msg) from None
            self.desks[tenant] = EventDesk(engine, actor=actor)

    def run(self, tenant: str, limit: int, prune: tuple[timedelta, timedelta, timedelta] | None) -> dict[str, Any]:
        """One pass for *tenant*: its figures, ``idle``, or its ``error``; a failure is kept until a pass succeeds."""
        import time as clock

        from slotengine.errors import SlotEngineError
        from slotengine.jobs import run_jobs

        desk = self.desks[tenant]
        result: dict[str, Any] = {"tenant": tenant}
        try:
            report = run_jobs(desk.engine, self.notifiers[tenant], desk=desk, batch=limit)
        except SlotEngineError as error:
            self.failing.add(tenant)
            return {"tenant": tenant, "error": f"{type(error).__name__}: {error}"}
        result.update(report.to_dict(), idle=report.idle)
        self.failing.discard(tenant)
        last = self._pruned.get(tenant)
        if prune is not None and (last is None or clock.monotonic() - last >= prune[0].total_seconds()):
            self._pruned[tenant] = clock.monotonic()  # tried: the next try is a period away, whatever happens
            try:
                forgot = desk.engine.prune(keep_messages=prune[1], keep_keys=prune[2])
            except SlotEngineError as error:  # the jobs above are done and counted; only the pruning failed
                self.failing.add(tenant)
                result.update(error=f"pruning failed: {type(error).__name__}: {error}", idle=False)
                return result
            result.update(pruned_messages=forgot.messages, pruned_keys=forgot.keys)
            result["idle"] = report.idle and not (forgot.messages or forgot.keys)
        return result


def _worker_notifier(webhook: str | None, stream: TextIO, tenant: str, *, several: bool) -> Any:
    """
    The console notifier, or a webhook one signed with $SLOTENGINE_WEBHOOK_SECRET.

    A worker serving several businesses names the business in each console line; a webhook always does.
    """
    import os

    from slotengine.adapters.notifiers import ConsoleNotifier, WebhookNotifier

    if webhook is None:
        return ConsoleNotifier(stream, tenant=tenant if several else None)
    secret = os.environ.get("SLOTENGINE_WEBHOOK_SECRET", "")
    if not secret:
        msg = "set SLOTENGINE_WEBHOOK_SECRET to the secret the receiver checks signatures with"
        raise click.UsageError(msg)
    try:
        # the variable's own bytes: os.environ keeps bytes that are not UTF-8 as surrogates, which encode() refuses
        return WebhookNotifier(webhook, secret=os.fsencode(secret), tenant=tenant)
    except InvalidInputError as error:
        raise click.BadParameter(str(error), param_hint="--webhook") from None


def _worker_line(result: dict[str, Any]) -> str:
    head = f"{result['tenant']}: "
    names = ("expired", "offers", "sent", "retried", "failed", "withdrawn", "pruned_messages", "pruned_keys")
    done = ", ".join(f"{name.replace('_', ' ')} {result[name]}" for name in names if name in result)
    if "error" in result:
        return f"{head}{done + '; ' if done else ''}failed, {result['error']}; trying again next pass"
    return head + done


@cli.command("export-ics")
@click.option("--from", "first", help="The first local day (default: today).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660), help="How many days.")
@click.option("--resource", help="Only this resource's bookings.")
@click.option("--organizer", default="bookings@slotengine.invalid", show_default=True, help="The ORGANIZER.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@pass_app
def export_ics(app: _App, first: str | None, days: int, resource: str | None, organizer: str, out: Path | None) -> None:
    """Write the agenda as an iCalendar feed (.ics), to import or subscribe to (needs slotengine[ical])."""
    from slotengine.ical import agenda_feed

    try:
        import icalendar  # noqa: F401
    except ImportError:
        msg = (
            "export-ics needs the icalendar package: install slotengine[cli,ical] "
            "(in a clone of slotengine: pip install -e '.[cli,ical]')"
        )
        raise click.UsageError(msg) from None

    engine = app.engine()
    zone = app.zone()
    start = _day(first) if first else _today(zone)
    resources = engine.resources()
    if resource is not None and resource not in {r.id for r in resources}:
        msg = f"no resource {resource!r}; 'slotengine info' lists them"  # as agenda says, not an empty calendar
        raise NotFoundError(msg, resource_id=resource)
    bookings = engine.agenda(_days_window(start, days, zone))
    if resource is not None:
        bookings = [b for b in bookings if resource in b.resource_ids]
    business = engine.business()
    data = agenda_feed(
        bookings,
        business=business.name,
        service_names={s.id: s.name for s in engine.services()},
        resource_names={r.id: r.name for r in resources},
        organizer=organizer,
        zone=zone.key,
        tenant=app.tenant,
        name=business.name if resource is None else f"{business.name}: {resource}",
    )
    if out is None:
        sys.stdout.buffer.write(data) if hasattr(sys.stdout, "buffer") else click.echo(data.decode())
        sys.stdout.flush()
    else:
        out.write_bytes(data)
        click.echo(f"{len(bookings)} bookings written to {out}", err=True)


@cli.command()
@click.option("--date", "day", required=True, help="The local day to draw, such as 2026-03-03.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@pass_app
def board(app: _App, day: str, out: Path | None) -> None:
    """Draw the scheduling board of a day as a self-contained HTML page."""
    try:
        from slotengine.board import render_board
    except ImportError:  # pragma: no cover - the board ships with slotengine
        msg = "this slotengine has no scheduling board (slotengine.board)"
        raise click.UsageError(msg) from None
    engine = app.engine()
    page = render_board(engine, _day(day), zone=app.tz)
    if out is None:
        click.echo(page)
    else:
        out.write_text(page, encoding="utf-8")
        click.echo(f"board of {day} written to {out}", err=True)


@cli.command()
@click.option(
    "--db",
    "db",
    help="Create and keep the SQLite file here (default: the global --db, else a temporary file, then deleted).",
)
@click.pass_context
def demo(ctx: click.Context, db: str | None) -> None:
    """Tell the whole story on a fresh SQLite file (six businesses, one tenant each, a simulated clock)."""
    from slotengine.cli import demo_at

    parent = ctx.parent
    if db is None and parent is not None and parent.get_parameter_source("db") is not ParameterSource.DEFAULT:
        db = parent.params["db"]
        if str(db).startswith(("postgresql://", "postgres://")):
            msg = "the demo runs on a fresh SQLite file; give a file name with --db"
            raise click.UsageError(msg)
    code = demo_at(db)
    if code:
        click.get_current_context().exit(code)


def run(argv: Sequence[str] | None) -> int:
    """Run the click command with *argv*; return the exit code (errors are handled by `slotengine.cli.main`)."""
    result = cli.main(args=list(argv) if argv is not None else None, prog_name="slotengine", standalone_mode=False)
    return result if isinstance(result, int) else 0
