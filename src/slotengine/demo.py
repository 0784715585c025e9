"""
`slotengine demo`: the whole story on a fresh SQLite file, in plain text.

Six businesses from the booking scenarios the project was built from, each its own tenant in one database
(`BUSINESSES`): a car wash with boxes, a clinic with doctors and rooms, a car rental with drivers, a daily
apartment, a conference centre and a barbershop. The demo shows free slots, books, shows a conflicting attempt
refused with its reasons, takes bookings through confirmation, payment, a cancellation with a quoted refund, a
reschedule, an expired hold and a no-show, sends a barbershop's reminders, and prints the agenda. It runs on a
simulated clock (a `FrozenClock` it moves forward, saying so each time), so its output is the same every time.
It ends with the tenant ids, which the other `slotengine` commands need (``--tenant``) to open a kept file.
"""

from __future__ import annotations

import itertools
import json
import shlex
import textwrap
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import SlotEngineError
from slotengine.intervals import Interval
from slotengine.model import UNLIMITED, Customer, Need, Resource, ResourceRole, Service, ServiceUnit
from slotengine.money import Money
from slotengine.notifications import BITRIX24_RULES
from slotengine.outbox import OutboxMessage
from slotengine.policies import (
    CancellationPolicy,
    ConfirmationMode,
    ConfirmationPolicy,
    HoldPolicy,
    Policies,
    RefundTier,
)
from slotengine.schedule import Schedule, TimeOff, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

__all__ = ["TENANTS", "run_demo"]

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
M = timedelta(minutes=1)
# Monday 2 March 2026, 08:00 in Paris: the simulated "now" the demo starts from.
START = datetime(2026, 3, 2, 8, tzinfo=PARIS)
EUR = "EUR"
SOFIA = Actor.manager("sofia")
SITE = Actor.system("website")


def _eur(amount: str) -> Money:
    return Money(amount, EUR)


def _local(instant: datetime, zone: ZoneInfo = PARIS) -> str:
    """A local time as the library writes it in its messages (2026-03-03 11:00), with the weekday in front."""
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def _day(instant: datetime, zone: ZoneInfo = PARIS) -> str:
    return instant.astimezone(zone).strftime("%a %Y-%m-%d")


def _until(start: datetime, end: datetime, zone: ZoneInfo = PARIS) -> str:
    """The end after a start: the time alone on the same local day, else with its date."""
    same_day = start.astimezone(zone).date() == end.astimezone(zone).date()
    return _local(end, zone)[-5:] if same_day else _local(end, zone)


class _Story:
    """Prints the demo as numbered sections with indented lines."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.section = 0

    def title(self, text: str) -> None:
        self.section += 1
        self.out("")
        self.out(f"{self.section}. {text}")

    def line(self, text: str) -> None:
        self.out(f"   {text}")

    def move_clock(self, clock: FrozenClock, to: datetime) -> None:
        """Set the simulated clock and say so, so that no time printed later comes as a surprise."""
        clock.set(to)
        self.line(f"[clock moves to {_local(to)}]")


def _car_wash(engine: BookingEngine) -> None:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(18))))
    policies = Policies(
        hold=HoldPolicy(ttl=15 * M),
        cancellation=CancellationPolicy(
            tiers=[RefundTier(48 * H, 100), RefundTier(24 * H, 50)], otherwise_percent=0, no_show_fee_percent=50
        ),
    )
    engine.setup(Business("Sparkle car wash", "Europe/Paris", hours, policies))
    for number in (1, 2):
        engine.add_resource(Resource(f"box-{number}", f"Box {number}", type="box"))
    engine.add_service(
        Service(
            "wash",
            "Full wash",
            needs=[Need(type="box", label="box")],
            duration=30 * M,
            buffer_after=10 * M,
            price=_eur("25"),
        )
    )


def _clinic(engine: BookingEngine) -> None:
    hours = Schedule(
        "Europe/Paris",
        WeeklyHours.weekdays(TimeRange(time(8), time(12)), TimeRange(time(13), time(19))),
        time_off=(TimeOff.days(date(2026, 3, 6), reason="staff training"),),
    )
    policies = Policies(confirmation=ConfirmationPolicy(mode=ConfirmationMode.MANAGER_FIRST))
    engine.setup(Business("Rive Gauche clinic", "Europe/Paris", hours, policies))
    engine.add_resource(Resource("dr-martin", "Dr Martin", kind="user", type="dentist"))
    engine.add_resource(Resource("dr-roux", "Dr Roux", kind="user", type="dentist"))
    engine.add_resource(Resource("room-a", "Room A", type="room"))
    engine.add_resource(Resource("xray", "X-ray unit", type="xray", role=ResourceRole.AUXILIARY))
    engine.add_service(
        Service(
            "checkup",
            "Check-up with X-ray",
            needs=[
                Need(type="dentist", label="dentist"),
                Need(type="room", label="room"),
                Need(type="xray", label="x-ray"),
            ],
            duration=45 * M,
            slot_step=15 * M,
            price=_eur("60"),
        )
    )


def _car_rental(engine: BookingEngine) -> None:
    hours = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange(time(7), time(22))))
    engine.setup(Business("Riviera cars", "Europe/Paris", hours))
    for plate in ("AB-123", "CD-456"):
        engine.add_resource(Resource(plate, f"Sedan {plate}", type="car", attributes={"city": "Nice"}))
    engine.add_resource(Resource("driver-lea", "Léa", kind="user", type="driver"))
    engine.add_service(
        Service(
            "ride",
            "Car with driver",
            needs=[Need(type="car", label="car"), Need(type="driver", label="driver")],
            duration=2 * H,
            min_duration=H,
            max_duration=8 * H,
            slot_step=H,
            buffer_after=30 * M,
            price=_eur("120"),
        )
    )


def _apartment(engine: BookingEngine) -> None:
    hours = Schedule("Europe/Paris", WeeklyHours.every_day(TimeRange(time(0), time(0))))
    engine.setup(Business("Old Port apartments", "Europe/Paris", hours))
    engine.add_resource(Resource("apt-3", "Apartment 3, sea view", type="apartment"))
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
            price=_eur("90"),
        )
    )


def _conference(engine: BookingEngine) -> None:
    hours = Schedule("Europe/Berlin", WeeklyHours.weekdays(TimeRange(time(8), time(20))))
    engine.setup(Business("Spree congress centre", "Europe/Berlin", hours))
    engine.add_resource(Resource("hall", "Great hall", type="hall", capacity=UNLIMITED))
    engine.add_resource(Resource("room-12", "Seminar room 12", type="seminar", capacity=12))
    engine.add_service(
        Service("seats", "Seminar seats", needs=[Need(type="seminar", units=3)], duration=2 * H, price=_eur("30"))
    )
    engine.add_service(Service("talk", "Talk in the great hall", needs=[Need(type="hall")], duration=H))


def _barbershop(engine: BookingEngine) -> None:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(10), time(20))))
    engine.setup(
        Business(
            "Figaro barbers",
            "Europe/Paris",
            hours,
            Policies(hold=HoldPolicy(ttl=timedelta(days=3))),
            rules=BITRIX24_RULES,
            agent="front-desk",
            links={"confirm": "https://figaro.example/c/$booking_id", "cancel": "https://figaro.example/x/$booking_id"},
            language="en",
        )
    )
    engine.add_resource(Resource("tom", "Tom", kind="user", type="barber"))
    engine.add_service(Service("cut", "Haircut", needs=[Need(type="barber")], duration=30 * M, price=_eur("30")))


# The demo's businesses, one tenant each, in the order the story visits them: tenant id -> setup.
_SETUP: Final[dict[str, Callable[[BookingEngine], None]]] = {
    "wash": _car_wash,
    "clinic": _clinic,
    "cars": _car_rental,
    "flat": _apartment,
    "congress": _conference,
    "barber": _barbershop,
}
TENANTS: Final[tuple[str, ...]] = tuple(_SETUP)
"""The tenant ids of the demo's businesses; the other ``slotengine`` commands open one with ``--tenant``."""

_NUMBERS: Final = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(number: int) -> str:
    return _NUMBERS[number] if number < len(_NUMBERS) else str(number)


class _Printer:
    """A notifier for the demo: prints what a person would receive (the outbox's event feed is left out)."""

    def __init__(self, story: _Story, clock: FrozenClock) -> None:
        self.story, self.clock = story, clock

    def send(self, message: OutboxMessage) -> None:
        payload = json.loads(message.payload)
        if payload.get("channel") == "event":
            return
        when = _local(self.clock.now())
        self.story.line(f"{when} -> {payload['recipient']} by {payload['channel']}: {payload['subject']}")
        self.story.line(f"{'':{len(when)}} {payload['body']}")


def _ids(tenant: str) -> Callable[[], str]:
    """Ids ``wash-0001``, ``wash-0002``...: the same story every run, and unique across the file's tenants."""
    counter = itertools.count(1)
    return lambda: f"{tenant}-{next(counter):04d}"


def run_demo(db_path: str, out: Callable[[str], None] = print, *, temporary: bool = False) -> None:
    """
    Build the demo businesses in a fresh SQLite file at *db_path* and tell their story through *out*.

    The story ends with the tenant ids. Unless *temporary* (the caller deletes the file afterwards), it also
    prints a command that opens the kept file.
    """
    storage = SQLiteStorage(db_path)
    clock = FrozenClock(START)
    story = _Story(out)
    try:
        engines = {
            name: BookingEngine(storage, clock=clock, tenant=name, default_actor=SITE, new_id=_ids(name))
            for name in TENANTS
        }
        for name, setup in _SETUP.items():
            setup(engines[name])
        where = "a temporary SQLite file, deleted at the end" if temporary else f"one SQLite file ({db_path})"
        out(f"slotengine demo: {_count(len(engines))} businesses in {where}, one tenant each")
        out(f"Simulated clock: starts at {_local(START)} (Paris); each time it moves, the demo says so")
        _wash_story(engines["wash"], clock, story)
        _clinic_story(engines["clinic"], clock, story)
        _cars_story(engines["cars"], story)
        _flat_story(engines["flat"], story)
        _congress_story(engines["congress"], story)
        _barber_story(engines["barber"], clock, story)
        _agenda(engines, story)
        _tenants(engines, db_path, out, temporary=temporary)
    finally:
        storage.close()


def _tenants(engines: dict[str, BookingEngine], db_path: str, out: Callable[[str], None], *, temporary: bool) -> None:
    out("")
    out("Each business is a tenant of the file; other slotengine commands choose one with --tenant:")
    names = ", ".join(f"{name} ({engine.business().name})" for name, engine in engines.items())
    out(textwrap.fill(names, width=100, initial_indent="   ", subsequent_indent="   ", break_on_hyphens=False))
    look = "--tenant congress agenda --date 2026-03-05"
    if temporary:
        out(f"To keep the file and look again: slotengine demo --db demo.db, then slotengine --db demo.db {look}")
    else:
        out(f"Look again, for example: slotengine --db {shlex.quote(db_path)} {look}")


def _wash_story(engine: BookingEngine, clock: FrozenClock, story: _Story) -> None:
    tuesday = Interval(datetime(2026, 3, 3, tzinfo=PARIS), datetime(2026, 3, 4, tzinfo=PARIS))
    story.title("Car wash: free slots on Tuesday morning (30-minute wash, 10-minute cleaning after each)")
    slots = engine.find_slots("wash", tuesday, limit=6)
    story.line(", ".join(f"{_local(s.start)[-5:]} {s.resource_ids[0]}" for s in slots))

    story.title("Car wash: two clients book 09:00, a third is refused with the reasons")
    first = engine.book("wash", datetime(2026, 3, 3, 9, tzinfo=PARIS), customer_id="anna", source="site")
    second = engine.hold("wash", datetime(2026, 3, 3, 9, tzinfo=PARIS), customer_id="boris")
    story.line(
        f"Anna: {first.status.value} on {first.resource_ids[0]}; "
        f"Boris: {second.status.value} on {second.resource_ids[0]}"
    )
    try:
        engine.hold("wash", datetime(2026, 3, 3, 9, tzinfo=PARIS), customer_id="chloe")
    except SlotEngineError as error:
        story.line(f"Chloé is refused ({error.code}):")
        for reason in error.details.get("reasons", ()):
            story.line(f"  - {reason.code.value}: {reason.message}")

    story.title("Car wash: Anna pays online; then she cancels 25 hours ahead and gets the quoted refund")
    paid = engine.pay(first.id, _eur("25"), payment_id="psp-1001")
    story.line(f"paid {paid.net_paid} -> {paid.status.value}")
    quote = engine.cancellation_quote(first.id)
    story.line(f"quote: {quote.refund_percent}% back = {quote.refund}, penalty {quote.penalty}")
    cancelled = engine.cancel(first.id, expected_quote=quote, actor=Actor.customer("anna"), reason="car sold")
    story.line(f"cancelled: refunded {cancelled.refunded}, kept {cancelled.net_paid}; its box is free again")

    story.title("Car wash: Boris's hold expires after 15 minutes; nobody swept it, yet its box is free")
    story.move_clock(clock, clock.now() + 16 * M)
    story.line(f"09:00 bookable again: {engine.explain('wash', datetime(2026, 3, 3, 9, tzinfo=PARIS)).bookable}")
    swept = engine.expire_due()
    story.line(f"sweep marked {len(swept)} hold(s) expired: {', '.join(b.customer_id or '?' for b in swept)}")

    story.title("Car wash: a walk-in books 10:00 and moves to 11:00; later, a no-show")
    walk_in = engine.book("wash", datetime(2026, 3, 3, 10, tzinfo=PARIS), customer_id="dmitri", source="manager")
    moved = engine.reschedule(walk_in.id, datetime(2026, 3, 3, 11, tzinfo=PARIS), actor=SOFIA)
    story.line(f"moved to {_local(moved.start)}, still {moved.status.value}, moves: {moved.reschedules}")
    story.move_clock(clock, datetime(2026, 3, 3, 11, 20, tzinfo=PARIS))
    no_show = engine.mark_no_show(walk_in.id, actor=SOFIA)
    story.line(f"Dmitri never came: {no_show.status.value}, no-show fee owed {no_show.outstanding_fees}")
    story.line("history: " + " -> ".join(t.action.value for t in engine.transitions(walk_in.id)))


def _clinic_story(engine: BookingEngine, clock: FrozenClock, story: _Story) -> None:
    story.title("Clinic: a check-up needs a dentist AND a room AND the X-ray unit (auxiliary), all free at once")
    start = datetime(2026, 3, 4, 8, tzinfo=PARIS)
    booked = engine.hold("checkup", start, customer_id="elena", source="partner")
    story.line(
        "held "
        + _local(booked.start)
        + ": "
        + ", ".join(f"{a.label}={'+'.join(a.resource_ids)}" for a in booked.assignments)
    )
    if booked.hold_until is not None:
        held_for = (booked.hold_until - clock.now()) // M
        story.line(f"the clock still says {_local(clock.now())}; the hold lasts {held_for} minutes from now")
    explanation = engine.explain("checkup", start)
    story.line(f"same time for another patient: bookable={explanation.bookable}")
    for reason in explanation.reasons[:3]:
        story.line(f"  - {reason.code.value}: {reason.message}")
    try:
        engine.pay(booked.id, _eur("60"), payment_id="psp-2001")
    except SlotEngineError as error:
        story.line(f"payment before confirmation refused ({error.code}): {error}")
    engine.confirm(booked.id, actor=Actor.manager("ines"))
    paid = engine.pay(booked.id, _eur("60"), payment_id="psp-2001")
    story.line(f"manager confirms, then payment accepted -> {paid.status.value}")
    friday = Interval(datetime(2026, 3, 6, tzinfo=PARIS), datetime(2026, 3, 7, tzinfo=PARIS))
    story.line(f"Friday (staff training): {len(engine.find_slots('checkup', friday))} slots")


def _cars_story(engine: BookingEngine, story: _Story) -> None:
    story.title("Car rental: a car with a driver; one driver means one ride at a time")
    start = datetime(2026, 3, 4, 9, tzinfo=PARIS)
    ride = engine.book("ride", start, duration=3 * H, customer_id="farid", external_ref="crm-deal-77")
    story.line(
        f"booked {_local(ride.start)}-{_until(ride.start, ride.end)}: "
        f"{' + '.join(ride.resource_ids)}, price {ride.price}"
    )
    later = engine.find_slots("ride", Interval(start, start + 8 * H), limit=3)
    story.line(
        "next rides (driver busy until 12:30 with the cleaning buffer): "
        + ", ".join(_local(s.start)[-5:] for s in later)
    )


def _flat_story(engine: BookingEngine, story: _Story) -> None:
    story.title("Apartment: nightly stays, check-in 15:00, check-out 11:00, across the clocks going forward")
    stay = engine.book("stay", datetime(2026, 3, 28, 15, tzinfo=PARIS), duration=timedelta(days=2), customer_id="greta")
    story.line(
        f"stay {_local(stay.start)} -> {_local(stay.end)}: {(stay.end - stay.start) / H:g} hours elapsed "
        "(the night of 29 March is an hour short)"
    )
    window = Interval(datetime(2026, 3, 26, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))
    nights = engine.find_slots("stay", window)
    story.line("free check-ins: " + ", ".join(_day(s.start) for s in nights))


def _congress_story(engine: BookingEngine, story: _Story) -> None:
    story.title("Congress centre: seats in a 12-seat room (3 per booking) and an unlimited hall")
    start = datetime(2026, 3, 5, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    for name in ("hugo", "iris", "jon", "kim"):
        engine.book("seats", start, customer_id=name)
    try:
        engine.book("seats", start, customer_id="lou")
    except SlotEngineError as error:
        story.line(f"4 groups of 3 fill the room; a fifth is refused ({error.code})")
    for talk in range(5):
        engine.book("talk", start, customer_id=f"speaker-{talk}")
    story.line("the great hall takes 5 overlapping talks: its capacity is unlimited")


def _barber_story(engine: BookingEngine, clock: FrozenClock, story: _Story) -> None:
    story.title(
        "Barbershop: the reminders Bitrix24 (a CRM with a booking module) sends, from the outbox as the clock moves"
    )
    printer = _Printer(story, clock)
    booking = engine.hold(
        "cut", datetime(2026, 3, 5, 15, tzinfo=PARIS), customer=Customer("mia", zone="Europe/Paris", language="en")
    )
    story.line(f"{_local(clock.now())}: Mia holds a haircut on Thursday at 15:00 (this shop holds for three days)")
    for moment in (
        datetime(2026, 3, 3, 11, 30, tzinfo=PARIS),
        datetime(2026, 3, 4, 15, tzinfo=PARIS),
        datetime(2026, 3, 5, 12, tzinfo=PARIS),
    ):
        clock.set(moment)
        engine.dispatch_due(printer)
    engine.confirm(booking.id, actor=Actor.system("confirm-link"))
    story.line(f"{_local(clock.now())}    Mia confirms with the link")
    for moment in (datetime(2026, 3, 5, 13, tzinfo=PARIS), datetime(2026, 3, 5, 15, 10, tzinfo=PARIS)):
        clock.set(moment)
        engine.dispatch_due(printer)


def _agenda(engines: dict[str, BookingEngine], story: _Story) -> None:
    story.title("Agenda for March (live, completed and no-show bookings), in each business's zone")
    week = Interval(datetime(2026, 3, 2, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))
    for engine in engines.values():
        business = engine.business()
        zone = ZoneInfo(business.zone)
        for booking in sorted(engine.agenda(week), key=lambda b: (b.start, b.resource_ids, b.customer_id or "")):
            who = booking.customer_id or "-"
            story.line(
                f"{business.name[:22]:<22} {_local(booking.start, zone)}-{_until(booking.start, booking.end, zone)} "
                f"{booking.status.value:<11} {'+'.join(booking.resource_ids):<28} {who}"
            )
