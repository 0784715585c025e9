"""
Notifiers: where the outbox's messages go (`slotengine.ports.Notifier`), on the standard library alone.

`BookingEngine.dispatch_due` hands each due message to one notifier. A message for a person carries a JSON
payload with ``channel`` (``"email"``, ``"whatsapp"``, ...), ``recipient`` (an id such as ``"client:ann"``,
``"agent:desk"`` or ``"staff:dr-martin"``), ``subject``, ``body``, ``zone``, ``language``, ``booking_id`` and
``rule``; a booking event (topic ``booking.<action>``) has ``channel: "event"`` and the booking's ids and times.

- `ConsoleNotifier` and `LogNotifier`: one line per message, naming the recipient id, channel and subject
  only (never the body, never an address), for development and audit logs.
- `SMTPNotifier`: e-mail through `smtplib`, the recipient's address looked up by the application, a
  ``Message-ID`` derived from the message's dedupe key, and an optional ``.ics`` invitation.
- `WebhookNotifier`: an HMAC-signed JSON POST (`verify_signature` checks it on the receiving side).
- `RoutingNotifier`: picks one of the above by the payload's ``channel``.
- `AppriseNotifier`: SMS, Telegram, WhatsApp and the rest through `apprise` (``pip install slotengine[notify]``).

Every failure raises: a `DeliveryError` (the relay retries it with backoff), or a `PermanentDeliveryError`
when retrying cannot help (no address, a channel nobody handles); its name is recorded in the outbox's
``last_error`` so an operator sees it. Error messages name ids, never addresses, phone numbers or URLs.

Importing this module imports the standard library only; apprise is imported when an `AppriseNotifier` is made.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import io
import ipaddress
import json
import logging
import re
import smtplib
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any, ClassVar, Final, TextIO

from slotengine.errors import InvalidInputError, SlotEngineError
from slotengine.outbox import OutboxMessage
from slotengine.ports import Notifier

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "SIGNATURE_HEADER",
    "AppriseNotifier",
    "ConsoleNotifier",
    "DeliveryError",
    "LogNotifier",
    "PermanentDeliveryError",
    "RoutingNotifier",
    "SMTPNotifier",
    "WebhookNotifier",
    "message_line",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Slotengine-Signature"
"""The header carrying ``sha256=<hex HMAC of the raw body>`` on every webhook POST."""
DEDUPE_HEADER: Final = "X-Slotengine-Dedupe-Key"
"""The header carrying the message's dedupe key (percent-encoded to ASCII; the body has it verbatim)."""


class DeliveryError(SlotEngineError):
    """A message was not delivered; the relay records the attempt and tries again later, with backoff."""

    code: ClassVar[str] = "delivery_failed"
    permanent: ClassVar[bool] = False
    """Whether trying again can help (False here: a timeout, a server error, a refused connection)."""


class PermanentDeliveryError(DeliveryError):
    """
    A message that no retry can deliver: no address for the recipient, a channel nobody handles, a refusal.

    The relay records it like any failure but gives the message up at once, without spending the rest of
    ``max_attempts``; the class name in ``last_error`` tells an operator it will not heal by itself.
    """

    code: ClassVar[str] = "delivery_refused"
    permanent: ClassVar[bool] = True


def _payload(message: OutboxMessage) -> dict[str, Any]:
    """The message's payload as a dict; a payload that is not a JSON object cannot be delivered."""
    try:
        data = json.loads(message.payload or "{}")
    except ValueError:
        msg = f"message {message.id} has a payload that is not JSON"
        raise PermanentDeliveryError(msg, message_id=message.id) from None
    if not isinstance(data, dict):
        msg = f"message {message.id} has a payload that is not a JSON object"
        raise PermanentDeliveryError(msg, message_id=message.id)
    return data


def _channel(payload: Mapping[str, Any]) -> str:
    return str(payload.get("channel") or "")


def _one_line(text: object) -> str:
    """*text* with every run of whitespace (line breaks included) made one space, for headers and log lines."""
    return " ".join(str(text).split())


_MAX_TIMEOUT: Final = 3600
"""The longest a notifier may wait for its server, in seconds: a longer wait only holds the relay up."""


def _timeout(timeout: object, owner: str) -> float:
    """*timeout* as seconds, refused unless a finite number above 0 and at most an hour (not a bool or text)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        msg = f"the {owner} timeout must be a number of seconds such as 10, not {type(timeout).__name__}"
        raise InvalidInputError(msg)
    if not 0 < timeout <= _MAX_TIMEOUT:  # NaN fails both comparisons
        msg = f"the {owner} timeout must be more than 0 and at most {_MAX_TIMEOUT} seconds (got {timeout!r})"
        raise InvalidInputError(msg)
    return float(timeout)


def _tenant(tenant: object, owner: str) -> str | None:
    """*tenant*, refused unless None or a non-empty string (the id every line or body is labelled with)."""
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        msg = f"the {owner} tenant must be a non-empty string (a business id), or None"
        raise InvalidInputError(msg)
    return tenant


def message_line(message: OutboxMessage) -> str:
    """
    One line describing *message* for a console or a log: topic, channel, recipient id, subject, ids.

    It never includes the body (which may quote links or names) nor any address: a recipient is named by
    its id only (``client:ann``), as the payload names it.
    """
    try:
        payload = _payload(message)
    except PermanentDeliveryError:
        payload = {}
    parts = [message.topic, f"channel={_one_line(_channel(payload) or '-')}"]
    if "recipient" in payload:
        parts.append(f"to={_one_line(payload['recipient'])}")
    if message.booking_id is not None:
        parts.append(f"booking={_one_line(message.booking_id)}")
    if "subject" in payload:
        parts.append(f"subject={json.dumps(_one_line(payload['subject']), ensure_ascii=False)}")
    parts.append(f"id={message.id}")
    return " ".join(parts)


class ConsoleNotifier:
    """
    Prints one line per message (`message_line`) to *stream* (standard output by default).

    For development: it shows what would be sent without sending it, and never prints a body or an address.
    With *tenant*, each line starts ``tenant=<id>``: one console serving several businesses tells them apart.

    Raises:
        InvalidInputError: *tenant* is not None nor a non-empty string.
    """

    def __init__(self, stream: TextIO | None = None, *, tenant: str | None = None) -> None:
        self.stream = stream
        self.tenant = _tenant(tenant, "console's")

    def send(self, message: OutboxMessage) -> None:
        """Print *message*'s line."""
        stream = sys.stdout if self.stream is None else self.stream
        head = "" if self.tenant is None else f"tenant={_one_line(self.tenant)} "
        stream.write(head + message_line(message) + "\n")
        stream.flush()

    def __repr__(self) -> str:
        return "<ConsoleNotifier>" if self.tenant is None else f"<ConsoleNotifier(tenant={self.tenant!r})>"


class LogNotifier:
    """Logs one record per message (`message_line`) on *logger* at *level*: an audit trail without personal data."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logging.getLogger("slotengine.notifications") if logger is None else logger
        self.level = level

    def send(self, message: OutboxMessage) -> None:
        """Log *message*'s line."""
        self.logger.log(self.level, "outbox message %s", message_line(message))

    def __repr__(self) -> str:
        return f"<LogNotifier(logger={self.logger.name!r})>"


def _person_message(message: OutboxMessage, payload: Mapping[str, Any], notifier: str) -> tuple[str, str, str]:
    """Recipient, subject and body of a rendered person-facing message; refuse anything else."""
    recipient = payload.get("recipient")
    if not isinstance(recipient, str) or not recipient or "subject" not in payload or "body" not in payload:
        msg = (
            f"{notifier} sends rendered messages for people; message {message.id} ({message.topic}) has no "
            "recipient, subject and body: route booking events to a webhook or a log"
        )
        raise PermanentDeliveryError(msg, message_id=message.id)
    return recipient, str(payload["subject"]), str(payload["body"])


def _message_id(dedupe_key: str, domain: str) -> str:
    """An RFC 5322 Message-ID that is the same for every copy of one message (same dedupe key)."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def _ics_method(ics: bytes) -> str:
    """The METHOD of a calendar file (REQUEST if it names none)."""
    for raw in ics.splitlines():
        line = raw.strip().upper()
        if line.startswith(b"METHOD:"):
            method = line.removeprefix(b"METHOD:").decode("ascii", "replace").strip()
            if method.isalpha():
                return method
    return "REQUEST"


def _plain_address(address: str) -> bool:
    """Whether *address* is one bare e-mail address, with nothing a header could be tricked with."""
    if any(c in address for c in '\r\n<>,;"()\\ \t') or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    return bool(local) and "." in domain.strip(".") and not domain.startswith(".")


class SMTPNotifier:
    """
    Sends person-facing messages of the ``"email"`` channel through an SMTP server (`smtplib`).

    Args:
        host, port: The SMTP server (port 587 with ``starttls=True`` or port 465 with ``ssl=True`` usually).
        sender: The From address, optionally with a display name (``"Shop <bookings@shop.example>"``).
        resolve_address: Maps a recipient id (``"client:ann"``, ``"staff:dr-martin"``, ``"agent:desk"``) to
            an e-mail address, or None if there is none (a permanent failure: `PermanentDeliveryError`).
        username, password: Log in with these if given.
        starttls: Upgrade the connection with STARTTLS (certificate checked against the system's store).
        ssl: Connect with TLS from the start (SMTPS) instead.
        ics: Makes the calendar file (``.ics``) to attach to a message, or None for none, such as
            ``lambda m: booking_calendar(...)`` from `slotengine.ical`; its METHOD (REQUEST, CANCEL) is
            passed on in the attachment's content type.
        timeout: Seconds to wait for the server (more than 0, at most an hour).
        ssl_context: The TLS context for ``starttls``/``ssl`` (the system's defaults if None).

    Every copy of one message (the relay may send twice after a crash) has the same ``Message-ID``, derived
    from its dedupe key, so a mail system that deduplicates drops the copy.

    Raises:
        InvalidInputError: a *host* that is not a host name, a *port* not from 1 to 65535, a *timeout* that is
            not a number of seconds above 0, a *sender* that is not an address, both *starttls* and *ssl*,
            or a *username* or *password* that is not ASCII text (smtplib cannot log in with any other).
        PermanentDeliveryError: from `send`, for a message of another channel, without an address, or with an
            address that is not one plain e-mail address, or refused by the server for good (5xx).
        DeliveryError: from `send`, when the server is unreachable or answers with a temporary error.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        resolve_address: Callable[[str], str | None],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        ics: Callable[[OutboxMessage], bytes | None] | None = None,
        timeout: float = 10,
        ssl_context: Any = None,
    ) -> None:
        if not isinstance(host, str) or not host or any(c.isspace() or not c.isprintable() for c in host):
            msg = "the SMTP host must be a host name or address, such as 'smtp.shop.example'"
            raise InvalidInputError(msg)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            msg = "the SMTP port must be a whole number from 1 to 65535, such as 25, 465 or 587"
            raise InvalidInputError(msg)
        for name, value in (("user name", username), ("password", password)):
            if value is not None and (not isinstance(value, str) or not value.isascii()):
                msg = f"the SMTP {name} must be ASCII text: smtplib cannot log in with any other"
                raise InvalidInputError(msg)
        envelope = parseaddr(sender)[1] if isinstance(sender, str) else ""
        if not _plain_address(envelope):
            msg = "sender must be an e-mail address, optionally with a name: 'Shop <bookings@shop.example>'"
            raise InvalidInputError(msg)
        if starttls and ssl:
            msg = "choose starttls (upgrade a plain connection) or ssl (TLS from the start), not both"
            raise InvalidInputError(msg)
        seconds = _timeout(timeout, "SMTP")
        self.host = host
        self.port = port
        self.sender = sender
        self.envelope_sender = envelope
        self.resolve_address = resolve_address
        self.username = username
        self._password = password
        self.starttls = starttls
        self.ssl = ssl
        self.ics = ics
        self.timeout = seconds
        self.ssl_context = ssl_context
        self.domain = envelope.rsplit("@", 1)[1]

    def __repr__(self) -> str:
        return f"<SMTPNotifier({self.host}:{self.port})>"

    def build(self, message: OutboxMessage) -> tuple[EmailMessage, str]:
        """
        Return the e-mail for *message* and the address it goes to, without sending anything.

        Raises:
            PermanentDeliveryError: the message is not of the ``"email"`` channel, or has no usable address.
        """
        payload = _payload(message)
        channel = _channel(payload)
        if channel != "email":
            msg = (
                f"SMTPNotifier sends the 'email' channel only; message {message.id} ({message.topic}) is for "
                f"channel {channel!r}: route it elsewhere (RoutingNotifier)"
            )
            raise PermanentDeliveryError(msg, message_id=message.id, channel=channel)
        recipient, subject, body = _person_message(message, payload, "SMTPNotifier")
        address = self.resolve_address(recipient)
        if address is None:
            msg = f"no e-mail address for {recipient} (message {message.id})"
            raise PermanentDeliveryError(msg, message_id=message.id, recipient=recipient)
        if not isinstance(address, str) or not _plain_address(address.strip()):
            msg = f"the e-mail address for {recipient} is not one plain address (message {message.id})"
            raise PermanentDeliveryError(msg, message_id=message.id, recipient=recipient)
        address = address.strip()
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address
        mail["Subject"] = _one_line(subject)
        mail["Date"] = formatdate(message.created_at.timestamp(), usegmt=True)
        mail["Message-ID"] = _message_id(message.dedupe_key, self.domain)
        # quoted-printable keeps a non-ASCII body 7-bit clean for servers without 8BITMIME
        mail.set_content(body, cte=None if body.isascii() else "quoted-printable")
        language = payload.get("language")
        if isinstance(language, str) and language.isascii() and language.replace("-", "").isalnum():
            mail["Content-Language"] = language  # after set_content, which clears Content-* headers
        ics = self.ics(message) if self.ics is not None else None
        if ics:
            method = _ics_method(ics)
            mail.add_attachment(
                ics,
                maintype="text",
                subtype="calendar",
                filename="invite.ics" if method != "CANCEL" else "cancel.ics",
                params={"method": method, "charset": "utf-8"},
            )
        return mail, address

    def send(self, message: OutboxMessage) -> None:
        """Send *message* by e-mail, or raise (see the class)."""
        mail, address = self.build(message)
        try:
            with self._connect() as smtp:
                smtp.send_message(mail, from_addr=self.envelope_sender, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error: type[DeliveryError] = (
                PermanentDeliveryError if codes and all(500 <= c < 600 for c in codes) else DeliveryError
            )
            msg = f"the SMTP server refused the address of the recipient (codes {codes}; message {message.id})"
            raise error(msg, message_id=message.id) from None
        except smtplib.SMTPNotSupportedError:
            msg = f"the SMTP server cannot take this message (an internationalized address?) (message {message.id})"
            raise PermanentDeliveryError(msg, message_id=message.id) from None
        except smtplib.SMTPResponseException as exc:
            error = PermanentDeliveryError if 500 <= exc.smtp_code < 600 else DeliveryError
            msg = f"the SMTP server answered {exc.smtp_code} (message {message.id})"
            raise error(msg, message_id=message.id, smtp_code=exc.smtp_code) from None
        except (smtplib.SMTPException, OSError, ValueError) as exc:  # ValueError: a UnicodeError, say
            msg = f"SMTP delivery failed: {type(exc).__name__} (message {message.id})"
            raise DeliveryError(msg, message_id=message.id) from None

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context
        if self.ssl:
            context = context or _ssl_default()
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=context or _ssl_default())
            if self.username is not None:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _ssl_default() -> ssl.SSLContext:
    return ssl.create_default_context()


def _sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _secret(secret: object) -> bytes:
    """*secret*, refused unless non-empty bytes: the one rule for signing (`WebhookNotifier`) and checking."""
    if not isinstance(secret, bytes) or not secret:
        msg = "the webhook secret must be non-empty bytes, such as secrets.token_bytes(32) (encode a text secret)"
        raise InvalidInputError(msg)
    return secret


_SIGNATURE: Final = re.compile(r"sha256=([0-9a-fA-F]{64})")


def verify_signature(body: bytes, header: str | bytes | None, secret: bytes) -> bool:
    """
    Whether *header* (the ``X-Slotengine-Signature`` value) signs the raw request *body* with *secret*.

    Compare before parsing the body, in constant time (this does). A header that is not ``sha256=`` and 64 hex
    digits (missing, non-ASCII, another scheme, cut short) is False, never an error: a forged request gets a
    refusal, not a crash. A receiver should also drop a message whose ``dedupe_key`` it has already processed:
    the relay delivers at least once, and a replayed request carries a key already seen.

    Raises:
        InvalidInputError: *secret* is not non-empty bytes, as `WebhookNotifier` requires (the receiver is
            misconfigured whatever the request, so this raises rather than answering False).
    """
    key = _secret(secret)
    if isinstance(header, bytes | bytearray):
        header = bytes(header).decode("latin-1")  # as http.server decodes headers; non-ASCII fails the pattern
    if not isinstance(header, str) or not isinstance(body, bytes | bytearray):
        return False
    found = _SIGNATURE.fullmatch(header.strip())
    if found is None:
        return False
    return hmac.compare_digest(hmac.new(key, bytes(body), hashlib.sha256).hexdigest(), found[1].lower())


_URL_SHAPE: Final = "the webhook URL must be an http:// or https:// URL, such as https://hooks.example/slotengine"
_NETLOC: Final = re.compile(r"(\[[^\[\]]*\]|[^\[\]:]*)(:[0-9]*)?")
"""A URL's host and port, once a user name or password is ruled out: a name or a bracketed IPv6 address."""
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def _webhook_url(url: object) -> str:
    """
    *url*, refused unless an http(s) URL that a request can go to (`WebhookNotifier` says what is refused).

    The messages quote no part of the URL: a user name, password, port or path may hold a token.
    """
    if not isinstance(url, str):
        raise InvalidInputError(_URL_SHAPE)
    if any(c <= " " or c == "\x7f" for c in url):  # http.client refuses them; urlsplit drops some silently
        msg = "the webhook URL must not contain spaces or control characters: percent-encode them"
        raise InvalidInputError(msg)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        msg = "the webhook URL's host is malformed (an IPv6 address goes in brackets: http://[2001:db8::1]/hook)"
        raise InvalidInputError(msg) from None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InvalidInputError(_URL_SHAPE)
    if "@" in parts.netloc:
        msg = "the webhook URL must not hold a user name or password: the receiver checks the signature instead"
        raise InvalidInputError(msg)
    netloc = _NETLOC.fullmatch(parts.netloc)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if netloc is None or port == 0:
        msg = "the webhook URL's host or port is malformed: a port is a number from 1 to 65535 (http://host:8080/)"
        raise InvalidInputError(msg)
    if not _valid_host(parts.hostname, bracketed=netloc[1].startswith("[")):
        msg = "the webhook URL's host is malformed: give a host name, an IPv4 address or a bracketed IPv6 address"
        raise InvalidInputError(msg)
    if not (parts.path + parts.query + parts.fragment).isascii():
        msg = "the webhook URL's path and query must be ASCII: percent-encode other characters"
        raise InvalidInputError(msg)
    return url


def _valid_host(host: str | None, *, bracketed: bool) -> bool:
    """Whether *host* (from a URL, brackets removed) is an IPv6 address if *bracketed*, else a host name."""
    if not host:
        return False
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    try:
        name = host.encode("idna").decode("ascii")  # an internationalized name, as the request sends it
    except UnicodeError:  # an empty or overlong label
        return False
    return _HOST_NAME.fullmatch(name.lower()) is not None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a POST must not silently become a GET elsewhere, and a 3xx is not a delivery."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_MAX_ANSWER: Final = 64 * 1024
"""How much of a webhook's answer is read, at most: only its status matters, and a receiver may send a lot."""


class _Deadline:
    """The moment one webhook request must be over by: every read and write waits only for the time left."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """The seconds left; a `TimeoutError` once there are none."""
        left = self.end - time.monotonic()
        if left <= 0:
            msg = "the webhook request ran out of time"
            raise TimeoutError(msg)
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, each read waiting only for the time its request has left: a trickled answer stops."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # holds the socket open until the answer is closed
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        self._sock.settimeout(self._deadline.left())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket as http.client uses it (send, read, close), every operation bounded by a deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: ReadableBuffer, /) -> None:
        self._sock.settimeout(self._deadline.left())
        self._sock.sendall(data)

    def makefile(self, *_: object, **__: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()


def _addresses(host: str, port: int, deadline: _Deadline) -> list[Any]:
    """
    *host*'s addresses for a TCP connection to *port*, looked up within *deadline*.

    The system's resolver has no timeout of its own (a resolver that does not answer held a send for as long as
    it liked), so the lookup runs in a daemon thread that is waited for only until the deadline; a lookup that
    is still running then is left to finish on its own. An IP address needs no lookup and gets no thread.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Any] = []
    failed: list[OSError] = []

    def look_up() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    lookup = threading.Thread(target=look_up, name="slotengine-webhook-lookup", daemon=True)
    lookup.start()
    lookup.join(deadline.left())
    if lookup.is_alive():
        msg = "the webhook's host name was not looked up in time"
        raise TimeoutError(msg)
    if failed:
        raise failed[0]
    return found


def _connect_within(
    address: tuple[str, int], timeout: object = None, source_address: Any = None, *, deadline: _Deadline
) -> socket.socket:
    """`socket.create_connection` with the name lookup and every connection attempt bounded by *deadline*."""
    del timeout  # the deadline's time left replaces it, attempt by attempt
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in _addresses(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            if isinstance(exc, TimeoutError):
                raise
        else:
            return sock
    raise last if last is not None else OSError("the webhook's host name has no address")


class _BoundedHTTP(http.client.HTTPConnection):
    """An HTTP connection whose whole request, from looking its host up to reading the answer, has one deadline."""

    def __init__(self, host: str, *, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.deadline = deadline
        self._create_connection = functools.partial(_connect_within, deadline=deadline)

    def connect(self) -> None:
        self.timeout = self.deadline.left()  # connecting (and TLS) wait at most the time left, each step
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _BoundedHTTPS(_BoundedHTTP, http.client.HTTPSConnection):
    """The same over TLS: the deadline takes over the socket once TLS is set up."""


def _deadline(request: urllib.request.Request) -> _Deadline:
    """A deadline *request*'s timeout from now (`WebhookNotifier` always gives one)."""
    return _Deadline(request.timeout if isinstance(request.timeout, int | float) else _MAX_TIMEOUT)


class _BoundedHTTPHandler(urllib.request.HTTPHandler):
    """Opens http:// URLs with `_BoundedHTTP`: the request's timeout bounds all of it, not each read."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_BoundedHTTP, deadline=_deadline(req)), req)


class _BoundedHTTPSHandler(urllib.request.HTTPSHandler):
    """Opens https:// URLs with `_BoundedHTTPS` (and Python's default TLS context: certificates checked)."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_BoundedHTTPS, deadline=_deadline(req)), req)


def _read_answer(response: http.client.HTTPResponse) -> None:
    """Read the answer's body, `_MAX_ANSWER` bytes at most; one cut short is an `http.client.IncompleteRead`."""
    answer = response.read(_MAX_ANSWER)
    if len(answer) < _MAX_ANSWER and response.length:
        raise http.client.IncompleteRead(answer, response.length)


_RETRYABLE_4XX: Final = frozenset({408, 425, 429})


class WebhookNotifier:
    """
    POSTs every message as signed JSON to *url*; any answer other than 2xx is a failure.

    The body is the message's payload plus ``id``, ``topic`` and ``dedupe_key`` (UTF-8 JSON, keys sorted), and
    ``tenant`` when the notifier is given one: a receiver serving several businesses knows whose message it is.
    Headers: ``X-Slotengine-Signature: sha256=<hex HMAC-SHA256 of the raw body with secret>`` and
    ``X-Slotengine-Dedupe-Key``. Redirects are not followed. Receivers check the signature with
    `verify_signature` and drop a dedupe key they have seen (the relay delivers at least once).

    *timeout* (seconds, more than 0 and at most an hour) bounds each request as a whole, from looking up the
    host name to the end of the answer, so neither a resolver that does not answer nor a receiver that trickles
    its answer can hold the relay up; at most 64 KiB of the answer is read (only its status matters).

    Raises:
        InvalidInputError: the URL is not http(s), holds a user name or password, or has a malformed host or
            port; the secret is not non-empty bytes; *timeout* is not a number of seconds as above; or
            *tenant* is an empty string. The message quotes no part of the URL.
        DeliveryError: from `send`, on a network error, a timeout, an answer that is not HTTP or is cut short,
            a redirect, or a 5xx, 408, 425 or 429; it names no part of the URL.
        PermanentDeliveryError: from `send`, on any other 4xx.
    """

    def __init__(self, url: str, *, secret: bytes, timeout: float = 10, tenant: str | None = None) -> None:
        self.url = _webhook_url(url)
        self._secret = _secret(secret)
        self.timeout = _timeout(timeout, "webhook")
        self.tenant = _tenant(tenant, "webhook's")
        self._opener = urllib.request.build_opener(_NoRedirect, _BoundedHTTPHandler, _BoundedHTTPSHandler)

    def __repr__(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"<WebhookNotifier({parts.scheme}://{parts.hostname})>"

    def body(self, message: OutboxMessage) -> bytes:
        """The exact bytes POSTed for *message*."""
        document = {**_payload(message), "id": message.id, "topic": message.topic, "dedupe_key": message.dedupe_key}
        if self.tenant is not None:
            document["tenant"] = self.tenant
        return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, message: OutboxMessage) -> None:
        """POST *message*, or raise (see the class)."""
        body = self.body(message)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "slotengine-webhook",
                SIGNATURE_HEADER: _sign(body, self._secret),
                DEDUPE_HEADER: urllib.parse.quote(message.dedupe_key, safe=":@+-._~"),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                _read_answer(response)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            exc.close()
        except (http.client.HTTPException, OSError, ValueError) as exc:  # URLError is an OSError
            raise self._failure(exc, message) from None
        if 200 <= status < 300:
            return
        permanent = 400 <= status < 500 and status not in _RETRYABLE_4XX
        error = PermanentDeliveryError if permanent else DeliveryError
        msg = f"the webhook answered HTTP {status} (message {message.id})"
        raise error(msg, message_id=message.id, status=status)

    def _failure(self, exc: Exception, message: OutboxMessage) -> DeliveryError:
        """The retryable error for a request that got no usable answer, naming its cause's class, never the URL."""
        cause = exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, Exception) else exc
        if isinstance(cause, TimeoutError):
            msg = f"the webhook did not answer within {self.timeout:g} s (message {message.id})"
        else:
            msg = f"webhook delivery failed: {type(cause).__name__} (message {message.id})"
        return DeliveryError(msg, message_id=message.id)


class RoutingNotifier:
    """
    Sends each message through the notifier of its payload's ``channel``; ``"*"`` catches the rest.

    ``RoutingNotifier({"email": smtp, "event": webhook, "*": console})`` e-mails the e-mail channel, posts
    booking events (channel ``"event"``) to a webhook, and prints everything else. A message whose channel
    has no route and no ``"*"`` raises `PermanentDeliveryError`.
    """

    def __init__(self, routes: Mapping[str, Notifier]) -> None:
        if not routes:
            msg = "a RoutingNotifier needs at least one route, such as {'*': ConsoleNotifier()}"
            raise InvalidInputError(msg)
        for channel, notifier in routes.items():
            if not callable(getattr(notifier, "send", None)):
                msg = f"the route for {channel!r} is not a notifier (it has no send(message) method)"
                raise InvalidInputError(msg)
        self.routes = dict(routes)

    def __repr__(self) -> str:
        return f"<RoutingNotifier({', '.join(sorted(self.routes))})>"

    def route(self, message: OutboxMessage) -> Notifier:
        """The notifier that *message* goes to."""
        channel = _channel(_payload(message))
        notifier = self.routes.get(channel, self.routes.get("*"))
        if notifier is None:
            msg = (
                f"no route for channel {channel!r} (message {message.id}, {message.topic}); "
                f"routes: {', '.join(sorted(self.routes))}"
            )
            raise PermanentDeliveryError(msg, message_id=message.id, channel=channel)
        return notifier

    def send(self, message: OutboxMessage) -> None:
        """Send *message* through its channel's notifier (whatever that raises, this raises)."""
        self.route(message).send(message)


_APPRISE_MISSING: Final = (
    "install slotengine[notify] to use AppriseNotifier (in a clone of slotengine: pip install -e '.[notify]')"
)


class AppriseNotifier:
    """
    Sends person-facing messages through apprise: SMS, Telegram, WhatsApp, Signal, Slack and the rest.

    Each service is addressed by an apprise URL (https://github.com/caronc/apprise lists them).

    Args:
        urls_by_recipient: Maps a recipient id (``"client:ann"``) to the apprise URLs that reach that person
            (``["tgram://bot-token/chat-id"]``), or to one URL as a string (taken as that one URL, never as a
            sequence of characters); None or an empty list is a permanent failure. The URLs hold tokens and
            phone numbers: keep them in your application, not in the outbox.

    The subject is sent as the title and the body as the body. Booking events (channel ``"event"``) are
    refused: route them elsewhere.

    Raises:
        ImportError: apprise is not installed (``pip install slotengine[notify]``).
        PermanentDeliveryError: from `send`, for a recipient without URLs, *urls_by_recipient* giving
            something that is not URLs (the error names the recipient, never a URL), a URL apprise does not
            understand, or a message that is not for a person.
        DeliveryError: from `send`, when a service did not accept the message.
    """

    def __init__(self, urls_by_recipient: Callable[[str], str | Iterable[str] | None]) -> None:
        try:
            import apprise  # noqa: F401
        except ImportError:
            raise ImportError(_APPRISE_MISSING) from None
        self.urls_by_recipient = urls_by_recipient

    def __repr__(self) -> str:
        return "<AppriseNotifier>"

    def send(self, message: OutboxMessage) -> None:
        """Send *message* to every URL of its recipient, or raise (see the class)."""
        import apprise

        payload = _payload(message)
        recipient, subject, body = _person_message(message, payload, "AppriseNotifier")
        urls = _apprise_urls(self.urls_by_recipient(recipient), recipient, message)
        if not urls:
            msg = f"no apprise URL for {recipient} (message {message.id})"
            raise PermanentDeliveryError(msg, message_id=message.id, recipient=recipient)
        sender = apprise.Apprise()
        for number, url in enumerate(urls, 1):
            if not sender.add(url):
                msg = f"apprise does not understand URL #{number} of {recipient} (message {message.id})"
                raise PermanentDeliveryError(msg, message_id=message.id, recipient=recipient)
        if not sender.notify(body=body, title=_one_line(subject)):
            msg = f"apprise could not deliver to {recipient} (message {message.id})"
            raise DeliveryError(msg, message_id=message.id, recipient=recipient)


def _apprise_urls(found: object, recipient: str, message: OutboxMessage) -> list[str]:
    """The URLs *found* for *recipient*: one string is one URL; anything but strings is refused for good."""
    if not found:
        return []
    if isinstance(found, str):
        return [found]
    what = type(found).__name__
    if isinstance(found, Iterable) and not isinstance(found, bytes | bytearray | Mapping):
        urls = list(found)
        if all(isinstance(url, str) and url for url in urls):
            return urls
        what = f"a {what} holding something other than URL strings"
    msg = f"urls_by_recipient gave {what} for {recipient}, not a list of apprise URLs (message {message.id})"
    raise PermanentDeliveryError(msg, message_id=message.id, recipient=recipient)
