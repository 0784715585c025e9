"""Notifier adapters on real loopback servers: SMTP with .ics, signed webhooks, routing, console, apprise."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import http.server
import io
import json
import logging
import math
import socket
import socketserver
import sys
import threading
import time as timer
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import attrs
import pytest

from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.notifiers import (
    AppriseNotifier,
    ConsoleNotifier,
    DeliveryError,
    LogNotifier,
    PermanentDeliveryError,
    RoutingNotifier,
    SMTPNotifier,
    WebhookNotifier,
    message_line,
    verify_signature,
)
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine
from slotengine.errors import InvalidInputError
from slotengine.model import Customer, Need, Resource, ResourceKind, Service
from slotengine.money import Money
from slotengine.notifications import BITRIX24_RULES, Event, NotificationRule, Template
from slotengine.outbox import OutboxMessage
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing import FrozenClock, RecordingNotifier

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
M = timedelta(minutes=1)
SECRET = b"webhook-test-secret"
CANARY_EMAIL = "pii-canary-7f3a@example.invalid"
CANARY_PHONE = "+33 6 12 34 56 78"
CANARY_NAME = "Canary Pii-Person"
CANARY = Customer("ann", name=CANARY_NAME, contacts=(CANARY_EMAIL, CANARY_PHONE), zone="Europe/Paris", language="fr")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant on day *day* of March 2026, Paris time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


# --- a business with the Bitrix24 rules, plus messages on moves and cancellations ---------------------------

MOVED = NotificationRule(
    "moved",
    Template("Your booking at $business has moved", "$service is now on $local_date at $local_time ($zone)."),
    on=[Event.RESCHEDULED],
)
CANCELLED = NotificationRule(
    "cancelled",
    Template("Booking cancelled", "Your $service on $local_date at $local_time is cancelled."),
    on=["cancelled"],
)


def email_rules() -> list[NotificationRule]:
    """Bitrix24's rules with the client's messages by e-mail (the agent's alert stays a task), plus two more."""
    rules = [r if r.channel == "task" else attrs.evolve(r, channel="email") for r in BITRIX24_RULES]
    return [*rules, MOVED, CANCELLED]


def make_engine(rules: list[NotificationRule] | tuple[NotificationRule, ...]) -> tuple[BookingEngine, FrozenClock]:
    clock = FrozenClock(at(2, 8))
    counter = iter(range(1, 1_000_000))
    engine = BookingEngine(
        MemoryStorage(),
        clock=clock,
        tenant="wash",
        new_id=lambda: f"id{next(counter)}",
        default_actor=Actor.system("tests"),
    )
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(18))))
    engine.setup(
        Business(
            "Car wash",
            "Europe/Paris",
            hours,
            rules=rules,
            agent="desk",
            links={
                "cancel": "https://wash.example/cancel/$booking_id",
                "confirm": "https://wash.example/ok/$booking_id",
            },
        )
    )
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_resource(Resource("anna", "Anna", kind=ResourceKind.USER, type="washer"))
    engine.add_service(
        Service(
            "wash",
            "Wash",
            needs=[Need(type="box"), Need(type="washer")],
            duration=30 * M,
            price=Money("20", "EUR"),
        )
    )
    return engine, clock


# --- a minimal SMTP server on loopback (stdlib socketserver) -------------------------------------------------


class SMTPInbox(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP (RFC 5321) to receive messages; keeps them in order."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SMTPSession)
        self.received: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply = "250 OK"
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(data, policy=email.policy.default) for _, _, data in self.received]  # type: ignore[misc]


class SMTPSession(socketserver.StreamRequestHandler):
    server: SMTPInbox

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                self.reply("250-localhost")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip().split()[0].strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                reply = self.server.rcpt_reply
                if reply.startswith("250"):
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply(reply)
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in {b".\r\n", b".\n", b""}:
                        break
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                with self.server.lock:
                    self.server.received.append((sender, rcpts, b"".join(lines)))
                self.reply("250 queued")
            elif verb == "RSET":
                sender, rcpts = "", []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_inbox() -> Iterator[SMTPInbox]:
    server = SMTPInbox()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


ADDRESSES = {"client:ann": "ann@client.example", "agent:desk": "desk@wash.example", "staff:anna": "anna@wash.example"}


# --- a webhook receiver on loopback (stdlib http.server) ----------------------------------------------------


class HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.location: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/slotengine"


class HookHandler(http.server.BaseHTTPRequestHandler):
    server: HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # a followed redirect would arrive here
        self.server.received.append(({"method": "GET"}, b""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class RawReceiver(socketserver.ThreadingTCPServer):
    """A webhook receiver that reads the request, then writes *parts*, *pause* seconds before each; None hangs up."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, parts: list[bytes | None], pause: float) -> None:
        super().__init__(("127.0.0.1", 0), RawAnswer)
        self.parts, self.pause = parts, pause
        self.done = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/secret-path"


class RawAnswer(socketserver.StreamRequestHandler):
    server: RawReceiver

    def handle(self) -> None:
        length = 0
        while (line := self.rfile.readline()) not in {b"\r\n", b""}:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.rfile.read(length)
        try:
            for part in self.server.parts:
                self.server.done.wait(self.server.pause)
                if part is None:
                    return
                self.wfile.write(part)
                self.wfile.flush()
            self.server.done.wait(5)  # hold the connection open: the notifier must not wait for more
        except OSError:
            pass  # the notifier hung up, as it should


@contextmanager
def raw_receiver(parts: list[bytes | None], pause: float = 0) -> Iterator[RawReceiver]:
    server = RawReceiver(parts, pause)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.done.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def event(
    payload: dict[str, object], *, topic: str = "notify.booking-info", key: str = "b1:booking-info:v1:client:ann"
) -> OutboxMessage:
    now = datetime(2026, 3, 2, 7, tzinfo=UTC)
    return OutboxMessage("m1", topic, "b1", now, now, key, json.dumps(payload))


PERSON = {
    "channel": "email",
    "recipient": "client:ann",
    "subject": "Your booking",
    "body": "Wash on Tuesday at 09:00",
    "zone": "Europe/Paris",
    "language": "fr",
    "booking_id": "b1",
    "rule": "booking-info",
}


class TestSMTP:
    def ics_for(self, engine: BookingEngine, clock: FrozenClock):
        icalendar_module = pytest.importorskip("icalendar", reason="install slotengine[ical] for calendar files")
        from slotengine.ical import booking_calendar

        def ics(message: OutboxMessage) -> bytes | None:
            payload = json.loads(message.payload)
            if not str(payload["recipient"]).startswith("client:"):
                return None
            booking = engine.get(message.booking_id)
            business = engine.business()
            return booking_calendar(
                booking,
                business=business.name,
                service_name="Wash",
                resource_names=["Box 1", "Anna"],
                organizer="bookings@wash.example",
                attendee=ADDRESSES[payload["recipient"]],
                zone=payload["zone"],
                tenant=engine.tenant,
                stamp=clock.now(),
            )

        return ics, icalendar_module

    def test_round_trip_booking_move_and_cancellation(self, smtp_inbox):
        """A booking's e-mails arrive with the rendered text and an .ics whose UID stays, SEQUENCE grows."""
        engine, clock = make_engine(email_rules())
        ics, icalendar = self.ics_for(engine, clock)
        smtp = SMTPNotifier(
            "127.0.0.1",
            smtp_inbox.port,
            sender="Car wash <bookings@wash.example>",
            resolve_address=ADDRESSES.get,
            ics=ics,
        )
        tasks = RecordingNotifier()
        events = RecordingNotifier()
        notifier = RoutingNotifier({"email": smtp, "task": tasks, "event": events})

        booking = engine.hold("wash", at(3, 10), customer=CANARY)
        first = engine.dispatch_due(notifier)
        engine.confirm(booking.id)
        clock.advance(H)
        moved = engine.reschedule(booking.id, at(3, 11))
        second = engine.dispatch_due(notifier)
        clock.advance(H)
        cancelled = engine.cancel(booking.id)
        third = engine.dispatch_due(notifier)

        assert (1, 1, 1) == (first.sent - 1, second.sent - 2, third.sent - 1)  # one e-mail each; the rest are events
        info, move, cancel = smtp_inbox.messages()
        assert [r for _, r, _ in smtp_inbox.received] == [["ann@client.example"]] * 3
        assert {s for s, _, _ in smtp_inbox.received} == {"bookings@wash.example"}
        assert "Your booking at Car wash" == info["Subject"]
        assert "ann@client.example" == info["To"]
        text = info.get_body(("plain",)).get_content()
        assert "mardi 3 mars 2026 at 10:00 (Europe/Paris) with Box 1, Anna" in text
        assert f"https://wash.example/cancel/{booking.id}" in text
        assert "Your booking at Car wash has moved" == move["Subject"]
        assert "11:00" in move.get_body(("plain",)).get_content()
        assert "Booking cancelled" == cancel["Subject"]

        calendars = []
        for mail in (info, move, cancel):
            [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
            method = part.get_param("method")
            calendars.append((method, icalendar.Calendar.from_ical(part.get_content().encode())))
        events_ = [(m, cal.walk("VEVENT")[0]) for m, cal in calendars]
        assert ["REQUEST", "REQUEST", "CANCEL"] == [m for m, _ in events_]
        assert all(cal.walk("VTIMEZONE") for _, cal in calendars)
        assert {str(ev["UID"]) for _, ev in events_} == {f"{booking.id}@wash.slotengine"}
        sequences = [int(ev["SEQUENCE"]) for _, ev in events_]
        assert sequences == sorted(set(sequences))
        assert sequences[-1] == cancelled.version
        assert ["TENTATIVE", "CONFIRMED", "CANCELLED"] == [str(ev["STATUS"]) for _, ev in events_]
        # the instants are the booking's, whatever zone they are written in
        assert (booking.start, booking.end) == tuple(
            events_[0][1].decoded(k).astimezone(UTC) for k in ("DTSTART", "DTEND")
        )
        assert (moved.start, moved.end) == tuple(events_[1][1].decoded(k).astimezone(UTC) for k in ("DTSTART", "DTEND"))
        assert "Europe/Paris" == events_[0][1]["DTSTART"].params["TZID"]
        assert "mailto:ann@client.example" == str(events_[0][1]["ATTENDEE"])
        # each e-mail's Message-ID is derived from its dedupe key: distinct messages, distinct ids
        assert len({m["Message-ID"] for m in (info, move, cancel)}) == 3
        assert {m.topic for m in events.sent} >= {
            "booking.hold",
            "booking.confirm",
            "booking.reschedule",
            "booking.cancel",
        }

    def test_same_dedupe_key_same_message_id(self, smtp_inbox):
        """A message sent twice (a crash before it was recorded) carries the same Message-ID both times."""
        smtp = SMTPNotifier("127.0.0.1", smtp_inbox.port, sender="bookings@wash.example", resolve_address=ADDRESSES.get)
        message = event(PERSON)

        smtp.send(message)
        smtp.send(attrs.evolve(message, id="m2"))
        smtp.send(event(PERSON, key="another-key"))

        first, again, other = smtp_inbox.messages()
        assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
        assert first["Message-ID"].endswith("@wash.example>")
        assert first.get_body(("plain",))["Content-Language"] == "fr"
        assert not list(first.iter_attachments())

    def test_non_ascii_and_header_injection(self, smtp_inbox):
        """Accents survive; a line break in a subject cannot add a header."""
        smtp = SMTPNotifier("127.0.0.1", smtp_inbox.port, sender="bookings@wash.example", resolve_address=ADDRESSES.get)

        smtp.send(event({**PERSON, "subject": "Réservation\r\nBcc: evil@example.invalid", "body": "À bientôt, Zoë"}))

        [mail] = smtp_inbox.messages()
        assert "Réservation Bcc: evil@example.invalid" == mail["Subject"]
        assert mail["Bcc"] is None
        assert "À bientôt, Zoë" in mail.get_content()

    def test_no_address_is_permanent_and_recorded(self, smtp_inbox):
        """A recipient without an address: a PermanentDeliveryError, recorded in the outbox; nothing is sent."""
        engine, _ = make_engine([attrs.evolve(BITRIX24_RULES[0], channel="email")])
        smtp = SMTPNotifier(
            "127.0.0.1", smtp_inbox.port, sender="bookings@wash.example", resolve_address=lambda _: None
        )
        notifier = RoutingNotifier({"email": smtp, "event": RecordingNotifier()})

        engine.hold("wash", at(3, 10), customer=CANARY)
        report = engine.dispatch_due(notifier, max_attempts=1)

        [failed] = [m for m in engine.outbox() if m.topic.startswith("notify.")]
        assert (1, 1) == (report.sent, report.failed)
        assert failed.failed_at is not None
        assert failed.last_error.startswith("PermanentDeliveryError: no e-mail address for client:ann")
        assert [] == smtp_inbox.received

    def test_other_channels_are_refused(self):
        """The SMTP notifier sends e-mail only: a WhatsApp message or a booking event is refused, clearly."""
        smtp = SMTPNotifier("127.0.0.1", 9, sender="bookings@wash.example", resolve_address=ADDRESSES.get)

        with pytest.raises(PermanentDeliveryError, match=r"'email' channel only.*'whatsapp'.*RoutingNotifier"):
            smtp.send(event({**PERSON, "channel": "whatsapp"}))
        with pytest.raises(PermanentDeliveryError, match="'event'"):
            smtp.send(event({"channel": "event", "booking_id": "b1"}, topic="booking.hold"))

    def test_bad_addresses_are_refused(self):
        """An address that is not one plain address (a list, a header trick) is refused before connecting."""
        for bad in ("a@x.example, b@y.example", "a@x.example\r\nBcc: c@z.example", "not-an-address", "<a@x.example>"):
            smtp = SMTPNotifier("127.0.0.1", 9, sender="bookings@wash.example", resolve_address=lambda _, b=bad: b)
            with pytest.raises(PermanentDeliveryError, match="not one plain address") as info:
                smtp.send(event(PERSON))
            assert bad not in str(info.value)
        with pytest.raises(InvalidInputError, match="sender"):
            SMTPNotifier("127.0.0.1", 9, sender="nobody", resolve_address=ADDRESSES.get)

    def test_server_refusals(self, smtp_inbox):
        """A 4xx for the recipient is worth retrying, a 5xx is not; neither error names the address."""
        smtp = SMTPNotifier("127.0.0.1", smtp_inbox.port, sender="bookings@wash.example", resolve_address=ADDRESSES.get)

        smtp_inbox.rcpt_reply = "451 try later"
        with pytest.raises(DeliveryError) as temporary:
            smtp.send(event(PERSON))
        smtp_inbox.rcpt_reply = "550 no such user"
        with pytest.raises(PermanentDeliveryError) as permanent:
            smtp.send(event(PERSON))

        assert not temporary.value.permanent
        assert permanent.value.permanent
        assert "ann@client.example" not in str(temporary.value) + str(permanent.value)

    def test_unreachable_server_is_retried(self):
        """A server that is not there: a DeliveryError, so dispatch_due retries later."""
        with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as probe:
            port = probe.server_address[1]
        smtp = SMTPNotifier("127.0.0.1", port, sender="bookings@wash.example", resolve_address=ADDRESSES.get, timeout=2)

        with pytest.raises(DeliveryError) as info:
            smtp.send(event(PERSON))

        assert not info.value.permanent


class TestWebhook:
    def test_events_are_posted_signed(self, hook):
        """Booking events reach the receiver; the signature verifies; the dedupe key is in a header and the body."""
        engine, _ = make_engine(())
        webhook = WebhookNotifier(hook.url, secret=SECRET)

        booking = engine.hold("wash", at(3, 10), customer_id="ann")
        report = engine.dispatch_due(RoutingNotifier({"event": webhook}))

        [(headers, body)] = hook.received
        [message] = engine.outbox()
        document = json.loads(body)
        assert 1 == report.sent
        assert verify_signature(body, headers["x-slotengine-signature"], SECRET)
        assert not verify_signature(body, headers["x-slotengine-signature"], b"another secret")
        assert not verify_signature(body.replace(b"hold", b"book"), headers["x-slotengine-signature"], SECRET)
        assert not verify_signature(body, None, SECRET)
        assert message.dedupe_key == headers["x-slotengine-dedupe-key"] == document["dedupe_key"]
        assert ("booking.hold", message.id, booking.id, "event") == (
            document["topic"],
            document["id"],
            document["booking_id"],
            document["channel"],
        )
        assert headers["content-type"].startswith("application/json")
        assert "tenant" not in document

    def test_a_webhook_with_a_tenant_names_it_in_the_signed_body(self, hook):
        """One receiver serving several businesses tells their messages apart: ``tenant`` is in the signed body."""
        engine, _ = make_engine(())
        webhook = WebhookNotifier(hook.url, secret=SECRET, tenant="north")

        engine.hold("wash", at(3, 10), customer_id="ann")
        engine.dispatch_due(webhook)

        [(headers, body)] = hook.received
        assert "north" == json.loads(body)["tenant"]
        assert verify_signature(body, headers["x-slotengine-signature"], SECRET)
        assert body == webhook.body(engine.outbox()[0])

    def test_a_non_2xx_is_retried_by_dispatch(self, hook):
        """A 500 makes send raise; dispatch_due records a retry with backoff, then delivers."""
        engine, clock = make_engine(())
        webhook = WebhookNotifier(hook.url, secret=SECRET)
        engine.hold("wash", at(3, 10), customer_id="ann")
        hook.status = 500

        with pytest.raises(DeliveryError, match="HTTP 500"):
            webhook.send(engine.outbox()[0])
        report = engine.dispatch_due(webhook, backoff=timedelta(minutes=1))
        [pending] = engine.outbox(pending_only=True)
        hook.status = 200
        too_soon = engine.dispatch_due(webhook)
        clock.advance(timedelta(minutes=1))
        later = engine.dispatch_due(webhook)

        assert (0, 1) == (report.sent, report.retried)
        assert (1, "DeliveryError: the webhook answered HTTP 500") == (
            pending.attempts,
            pending.last_error.split(" (")[0],
        )
        assert pending.due_at == at(2, 8) + timedelta(minutes=1)
        assert 0 == too_soon.sent
        assert 1 == later.sent
        assert [] == engine.outbox(pending_only=True)
        assert 3 == len(hook.received)
        assert len({h["x-slotengine-dedupe-key"] for h, _ in hook.received}) == 1

    def test_redirects_are_not_followed_and_4xx_is_permanent(self, hook):
        """A 302 is a failure (the POST is not replayed as a GET elsewhere); a 404 will not heal."""
        webhook = WebhookNotifier(hook.url, secret=SECRET)
        hook.status, hook.location = 302, hook.url + "/elsewhere"
        with pytest.raises(DeliveryError, match="HTTP 302") as redirect:
            webhook.send(event({"channel": "event"}))
        hook.status, hook.location = 404, None
        with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
            webhook.send(event({"channel": "event"}))
        hook.status = 429
        with pytest.raises(DeliveryError) as busy:
            webhook.send(event({"channel": "event"}))

        assert not redirect.value.permanent
        assert not busy.value.permanent
        assert all("method" not in h for h, _ in hook.received)

    def test_configuration_is_checked(self):
        """Only http(s) URLs and a non-empty secret; the repr shows no path or query (they may hold tokens)."""
        with pytest.raises(InvalidInputError, match="http"):
            WebhookNotifier("file:///etc/passwd", secret=SECRET)
        with pytest.raises(InvalidInputError, match="secret"):
            WebhookNotifier("https://hooks.example/x", secret=b"")
        with pytest.raises(InvalidInputError, match="tenant"):
            WebhookNotifier("https://hooks.example/x", secret=SECRET, tenant="")
        assert "token" not in repr(WebhookNotifier("https://hooks.example/x?token=abc", secret=SECRET))

    @pytest.mark.parametrize(
        "url",
        [
            "http://user:TOPSECRET@127.0.0.1/hook",
            "https://TOPSECRET@hooks.example/hook",
            "http://hooks.example:TOPSECRET/x",
            "http://hooks.example:99999/TOPSECRET",
            "http://hooks.example:0/TOPSECRET",
            "http://[::1/TOPSECRET",
            "http://[::1]TOPSECRET/x",
            "http://[not-ipv6]/TOPSECRET",
            "http://hooks..example/TOPSECRET",
            "http://hooks.example/TOPSECRET path",
            "http://hooks.example/TOPSECRET\r\nX-Injected: 1",
            "http://hooks.example/TOPSECRET-caf\u00e9",
            b"http://hooks.example/TOPSECRET",
        ],
    )
    def test_a_url_with_a_password_or_a_bad_host_or_port_is_refused_quoting_none_of_it(self, url):
        """Refused when made, as invalid input, not at every send as an untyped error quoting the URL's secret."""
        with pytest.raises(InvalidInputError) as info:
            WebhookNotifier(url, secret=SECRET)

        assert "TOPSECRET" not in str(info.value)
        assert "webhook URL" in str(info.value)

    def test_good_urls_are_still_taken(self):
        """IPv6 addresses, internationalized host names, ports and an empty port are fine."""
        for url in (
            "http://[::1]:8080/hook",
            "https://b\u00fccher.example/hook?x=1",
            "http://hooks.example:/hook",
            "https://HOOKS.example.:443/a%20b",
        ):
            assert WebhookNotifier(url, secret=SECRET).url == url

    @pytest.mark.parametrize(
        ("answer", "cause"),
        [
            ([b"HELLO THERE\r\n\r\n"], "BadStatusLine"),  # not HTTP
            ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", None], "IncompleteRead"),  # cut short
            ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "IncompleteRead"),  # bad chunk
            ([b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"], "LineTooLong"),
        ],
        ids=["not-http", "cut-short", "bad-chunk", "long-header"],
    )
    def test_a_broken_answer_is_a_retryable_failure(self, answer, cause):
        """Whatever breaks in the answer is a DeliveryError, retried, naming its cause and no part of the URL."""
        with raw_receiver(answer) as receiver:
            webhook = WebhookNotifier(receiver.url, secret=SECRET, timeout=5)
            began = timer.monotonic()
            with pytest.raises(DeliveryError, match=f"webhook delivery failed: {cause} ") as info:
                webhook.send(event({"channel": "event"}))

        assert timer.monotonic() - began < 4  # seen at once, not waited out
        assert not info.value.permanent
        assert "secret-path" not in str(info.value)
        assert "127.0.0.1" not in str(info.value)

    @pytest.mark.parametrize(
        "answer",
        [
            [b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n", *[b"x"] * 30],
            [b"HTTP/1.1 200 OK\r\n", *[b"X"] * 30, b": y\r\nContent-Length: 0\r\n\r\n"],
        ],
        ids=["body", "headers"],
    )
    def test_the_timeout_bounds_the_whole_request(self, answer):
        """A receiver trickling its answer a byte at a time is cut off at the timeout, not served for seconds."""
        with raw_receiver(answer, pause=0.1) as receiver:
            webhook = WebhookNotifier(receiver.url, secret=SECRET, timeout=0.5)
            began = timer.monotonic()
            with pytest.raises(DeliveryError, match=r"did not answer within 0\.5 s") as info:
                webhook.send(event({"channel": "event"}))
            took = timer.monotonic() - began

        assert took < 2  # three seconds of trickle
        assert not info.value.permanent

    def test_only_the_start_of_a_long_answer_is_read(self):
        """A 2xx with a huge body is a delivery as soon as its start is read: the body does not matter."""
        answer = [b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n", b"x" * 200_000]
        with raw_receiver(answer) as receiver:
            webhook = WebhookNotifier(receiver.url, secret=SECRET, timeout=2)
            began = timer.monotonic()
            webhook.send(event({"channel": "event"}))

            assert timer.monotonic() - began < 2

    def test_a_resolver_that_does_not_answer_is_cut_off_at_the_timeout(self, monkeypatch):
        """The name lookup counts in the timeout: a resolver that hangs held a send for as long as it liked."""
        real, release = socket.getaddrinfo, threading.Event()

        def hanging(host, *args, **kwargs):
            if host == "hooks.example":
                release.wait(10)
                raise socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution")
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", hanging)
        webhook = WebhookNotifier("http://hooks.example:8080/secret-path", secret=SECRET, timeout=0.5)
        began = timer.monotonic()
        try:
            with pytest.raises(DeliveryError, match=r"did not answer within 0\.5 s") as info:
                webhook.send(event({"channel": "event"}))
            took = timer.monotonic() - began
        finally:
            release.set()

        assert took < 3  # the resolver would have taken ten seconds
        assert not info.value.permanent
        assert "secret-path" not in str(info.value)

    def test_a_name_that_cannot_be_looked_up_is_a_retryable_failure(self, monkeypatch):
        """A resolver's refusal is a DeliveryError naming its kind, retried later; no part of the URL is quoted."""

        def refusing(*_args, **_kwargs):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", refusing)
        webhook = WebhookNotifier("https://hooks.example/secret-path", secret=SECRET, timeout=2)

        with pytest.raises(DeliveryError, match="webhook delivery failed: gaierror") as info:
            webhook.send(event({"channel": "event"}))

        assert not info.value.permanent
        assert "hooks.example" not in str(info.value)

    def test_a_host_name_is_looked_up_and_each_of_its_addresses_tried(self, monkeypatch):
        """A name with an address nobody listens on first, then the receiver's: the message is delivered."""
        real, looked_up = socket.getaddrinfo, []
        with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as probe:
            closed_port = probe.server_address[1]
        with raw_receiver([b"HTTP/1.1 204 No Content\r\n\r\n"]) as receiver:
            port = receiver.server_address[1]

            def two_addresses(host, wanted, *args, **kwargs):
                if host != "hooks.example":
                    return real(host, wanted, *args, **kwargs)
                looked_up.append(wanted)
                nobody = real("127.0.0.1", closed_port, *args, **kwargs)
                return nobody + real("127.0.0.1", port, *args, **kwargs)

            monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
            webhook = WebhookNotifier(f"http://hooks.example:{port}/hook", secret=SECRET, timeout=5)

            webhook.send(event({"channel": "event"}))  # a 204: delivered, after a refused first address

        assert looked_up == [port]

    def test_unreachable_receiver(self):
        """Nobody listening: a DeliveryError naming no URL."""
        with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as probe:
            port = probe.server_address[1]
        webhook = WebhookNotifier(f"http://127.0.0.1:{port}/secret-path", secret=SECRET, timeout=2)

        with pytest.raises(DeliveryError) as info:
            webhook.send(event({"channel": "event"}))

        assert "secret-path" not in str(info.value)


class TestSignatures:
    BODY = b'{"id":"m1"}'

    def good(self) -> str:
        return "sha256=" + hmac.new(SECRET, self.BODY, hashlib.sha256).hexdigest()

    @pytest.mark.parametrize(
        "header",
        [
            b"sha256=\xff\xfe",
            "sha256=\xff\xfe",
            "sha256=\u0663" * 10,
            "sha1=" + "0" * 40,
            "sha256=" + "0" * 63,
            "sha256=" + "g" * 64,
            "sha256=",
            "",
            b"",
            None,
            42,
        ],
    )
    def test_a_malformed_header_is_not_a_signature(self, header):
        """An unauthenticated client's header of any shape is False: the receiver refuses it, it does not crash."""
        assert verify_signature(self.BODY, header, SECRET) is False

    def test_a_good_signature_in_any_form(self):
        """The header as text or bytes, with spaces around it or upper-case hex, signs the body."""
        good = self.good()

        assert verify_signature(self.BODY, good, SECRET)
        assert verify_signature(bytearray(self.BODY), f" {good.upper().replace('SHA256=', 'sha256=')} ", SECRET)
        assert verify_signature(self.BODY, good.encode(), SECRET)
        assert not verify_signature(self.BODY + b" ", good, SECRET)

    @pytest.mark.parametrize("secret", ["TOPSECRET-text", b"", bytearray(b"k"), None])
    def test_a_secret_that_is_not_bytes_is_refused(self, secret):
        """The receiver's secret follows the notifier's rule (non-empty bytes), whatever the request carries."""
        with pytest.raises(InvalidInputError, match="secret") as info:
            verify_signature(self.BODY, self.good(), secret)
        with pytest.raises(InvalidInputError, match="secret"):
            WebhookNotifier("https://hooks.example/x", secret=secret)

        assert "TOPSECRET" not in str(info.value)


BAD_TIMEOUTS = [-1, 0, "10", None, math.nan, math.inf, True, 3601, 10**400]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
def test_a_bad_timeout_is_refused_when_made(timeout):
    """A timeout is a number of seconds, above 0, at most an hour: checked when the notifier is made."""
    with pytest.raises(InvalidInputError, match="timeout"):
        WebhookNotifier("https://hooks.example/x", secret=SECRET, timeout=timeout)
    with pytest.raises(InvalidInputError, match="timeout"):
        SMTPNotifier("smtp.example", sender="b@wash.example", resolve_address=ADDRESSES.get, timeout=timeout)


@pytest.mark.parametrize(
    ("port", "host", "credentials"),
    [
        (-5, "smtp.example", {}),
        ("x", "smtp.example", {}),
        (70000, "smtp.example", {}),
        (0, "smtp.example", {}),
        (True, "smtp.example", {}),
        (587, "", {}),
        (587, "smtp.example\r\nRCPT", {}),
        (587, None, {}),
        (587, "smtp.example", {"username": "bookings", "password": "p\u00e4ss-TOPSECRET"}),
        (587, "smtp.example", {"username": "b\u00f6okings"}),
        (587, "smtp.example", {"password": 1234}),
    ],
)
def test_a_bad_smtp_server_or_login_is_refused_when_made(port, host, credentials):
    """Port 1 to 65535 (not a bool), a host name, ASCII credentials: smtplib cannot use anything else."""
    with pytest.raises(InvalidInputError, match="SMTP") as info:
        SMTPNotifier(host, port, sender="b@wash.example", resolve_address=ADDRESSES.get, **credentials)

    assert "TOPSECRET" not in str(info.value)


def test_good_timeouts_are_taken():
    assert 0.25 == WebhookNotifier("https://hooks.example/x", secret=SECRET, timeout=0.25).timeout
    assert (
        3600
        == SMTPNotifier(
            "smtp.example", 465, sender="b@wash.example", resolve_address=ADDRESSES.get, timeout=3600
        ).timeout
    )


class TestRouting:
    def test_routes_by_channel_with_a_default(self):
        """Each message goes to its channel's notifier; the rest to '*'."""
        mail, hooks, rest = RecordingNotifier(), RecordingNotifier(), RecordingNotifier()
        router = RoutingNotifier({"email": mail, "event": hooks, "*": rest})

        router.send(event(PERSON))
        router.send(event({"channel": "event"}, topic="booking.hold"))
        router.send(event({**PERSON, "channel": "whatsapp"}))

        assert (["email"], ["event"], ["whatsapp"]) == tuple(
            [json.loads(m.payload)["channel"] for m in n.sent] for n in (mail, hooks, rest)
        )

    def test_no_route_is_permanent(self):
        """Without a route or a '*', a message is refused as undeliverable, naming the channel."""
        router = RoutingNotifier({"email": RecordingNotifier()})

        with pytest.raises(PermanentDeliveryError, match="no route for channel 'sms'"):
            router.send(event({**PERSON, "channel": "sms"}))
        with pytest.raises(InvalidInputError, match="at least one route"):
            RoutingNotifier({})
        with pytest.raises(InvalidInputError, match="not a notifier"):
            RoutingNotifier({"email": object()})  # type: ignore[dict-item]

    def test_failures_pass_through(self):
        """A route's failure is the router's failure, so dispatch_due retries it."""
        failing = RecordingNotifier()
        failing.fail_next()
        router = RoutingNotifier({"*": failing})

        with pytest.raises(Exception, match="down"):
            router.send(event(PERSON))


class TestConsoleAndLogs:
    def test_one_line_per_message_without_personal_data(self, caplog):
        """N4: the console and log lines name ids, channel and subject; never the canary's e-mail, phone or name."""
        engine, clock = make_engine(BITRIX24_RULES)
        stream = io.StringIO()
        console = ConsoleNotifier(stream)
        log = LogNotifier(logging.getLogger("slotengine.test.notifications"))
        both = RecordingNotifier()
        router = RoutingNotifier({"*": console})

        booking = engine.hold("wash", at(3, 10), customer=CANARY, notes=f"call {CANARY_PHONE} / {CANARY_EMAIL}")
        with caplog.at_level(logging.INFO, logger="slotengine.test.notifications"):
            engine.dispatch_due(router)
            clock.advance(timedelta(hours=22))  # the confirmation request, the agent's alert
            for message in engine.outbox():
                log.send(message)
                both.send(message)
            engine.dispatch_due(router)
        expired = engine.expire_due()  # the hold lapsed meanwhile: it expires (cancel refuses a lapsed hold)
        engine.dispatch_due(router)

        printed = stream.getvalue()
        lines = printed.splitlines()
        everything = printed + caplog.text + "".join(m.payload + m.last_error for m in engine.outbox())
        assert [booking.id] == [b.id for b in expired]
        assert len(lines) == sum(1 for m in engine.outbox() if m.sent_at is not None)
        assert any(
            "to=client:ann" in line and "channel=whatsapp" in line and "Your booking at Car wash" in line
            for line in lines
        )
        assert any(line.startswith("booking.hold channel=event") for line in lines)
        for canary in (CANARY_EMAIL, CANARY_PHONE, CANARY_NAME, "pii-canary"):
            assert canary not in everything
            assert canary not in repr(console) + repr(log) + repr(both)
        assert "Price:" not in printed  # bodies are not printed

    def test_message_line_survives_a_bad_payload(self):
        """A payload that is not JSON still gives a line (and no crash)."""
        now = datetime(2026, 3, 2, tzinfo=UTC)
        line = message_line(OutboxMessage("m9", "booking.hold", None, now, now, "k", "not json"))

        assert "booking.hold channel=- id=m9" == line

    def test_a_console_with_a_tenant_names_it_first(self):
        """One console serving several businesses starts each line with the business it is for."""
        stream = io.StringIO()

        ConsoleNotifier(stream, tenant="north").send(event(PERSON))
        ConsoleNotifier(stream).send(event(PERSON))

        first, second = stream.getvalue().splitlines()
        assert first == f"tenant=north {second}"

    @pytest.mark.parametrize("tenant", ["", 5, b"north"])
    def test_a_console_tenant_is_checked(self, tenant):
        """As for a webhook: a tenant is a non-empty string (or None)."""
        with pytest.raises(InvalidInputError, match="tenant"):
            ConsoleNotifier(io.StringIO(), tenant=tenant)

    def test_console_defaults_to_stdout(self, capsys):
        ConsoleNotifier().send(event(PERSON))

        assert 'subject="Your booking"' in capsys.readouterr().out


@pytest.fixture(scope="module")
def services():
    pytest.importorskip("apprise", reason="apprise is not installable here: pip install slotengine[notify]")
    from apprise.decorators import notify

    inbox: list[tuple[str, str, str]] = []

    @notify(on="slotenginetest")
    def ok(body, title, notify_type, meta, *args, **kwargs):
        inbox.append((meta["url"], title, body))
        return True

    @notify(on="slotenginedown")
    def down(body, title, notify_type, *args, **kwargs):
        return False

    return inbox


class TestApprise:
    pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

    def test_whatsapp_messages_through_apprise(self, services):
        """The Bitrix24 WhatsApp message reaches the client's apprise URL with the rendered subject and body."""
        engine, _ = make_engine(BITRIX24_RULES)
        urls = {"client:ann": ["slotenginetest://whatsapp/ann"]}
        notifier = RoutingNotifier(
            {"whatsapp": AppriseNotifier(lambda r: urls.get(r, [])), "event": RecordingNotifier()}
        )
        services.clear()

        booking = engine.hold("wash", at(3, 10), customer=CANARY)
        report = engine.dispatch_due(notifier)

        [(url, title, body)] = services
        assert 2 == report.sent
        assert ("slotenginetest://whatsapp/ann", "Your booking at Car wash") == (url, title)
        assert f"https://wash.example/cancel/{booking.id}" in body

    def test_failures(self, services):
        """A service that fails is retried; no URL or a URL apprise does not know is permanent."""
        down = AppriseNotifier(lambda _: ["slotenginedown://x"])
        none = AppriseNotifier(lambda _: [])
        unknown = AppriseNotifier(lambda _: ["nosuchservice://secret-token"])

        with pytest.raises(DeliveryError) as failed:
            down.send(event({**PERSON, "channel": "whatsapp"}))
        with pytest.raises(PermanentDeliveryError, match="no apprise URL for client:ann"):
            none.send(event(PERSON))
        with pytest.raises(PermanentDeliveryError, match="URL #1") as bad:
            unknown.send(event(PERSON))
        with pytest.raises(PermanentDeliveryError, match="events"):
            down.send(event({"channel": "event"}, topic="booking.hold"))

        assert not failed.value.permanent
        assert "secret-token" not in str(bad.value)

    def test_one_url_as_a_string_is_that_url(self, services):
        """A resolver giving one URL as a string reaches it: the string is not taken as a list of characters."""
        services.clear()

        AppriseNotifier(lambda _: "slotenginetest://whatsapp/ann").send(event(PERSON))

        assert ["slotenginetest://whatsapp/ann"] == [url for url, _, _ in services]

    @pytest.mark.parametrize("found", [42, [b"slotenginetest://x"], ["slotenginetest://x", None], b"bytes://x"])
    def test_urls_that_are_not_strings_are_refused_naming_the_recipient(self, services, found):
        """Anything but URL strings is a permanent failure that says so and names the recipient, not a URL."""
        with pytest.raises(PermanentDeliveryError, match=r"urls_by_recipient gave .* for client:ann") as info:
            AppriseNotifier(lambda _: found).send(event(PERSON))

        assert "slotenginetest" not in str(info.value)


def test_apprise_missing_says_what_to_install(monkeypatch):
    """Without apprise, making an AppriseNotifier says to install slotengine[notify]."""
    monkeypatch.setitem(sys.modules, "apprise", None)

    with pytest.raises(ImportError, match=r"slotengine\[notify\]"):
        AppriseNotifier(lambda _: [])


def test_importing_the_adapters_imports_no_extra():
    """The notifier adapters import the standard library only."""
    import subprocess

    code = "import slotengine.adapters.notifiers, sys; print(sorted(m.split('.')[0] for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert not {"apprise", "icalendar", "requests"} & set(eval(out))  # noqa: S307
