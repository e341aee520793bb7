"""Deliver e-mail (one-time codes): over SMTP, or into a local outbox folder.

``make_email_sender(settings)`` picks SMTP when ``SMTP_URL`` is set
(``smtp://[user:password@]host[:port][?starttls=true]`` or ``smtps://...`` for
implicit TLS), else writes ``.eml`` files into ``EMAIL_OUTBOX_DIR`` for
``python -m bot.notify.mailbox`` to show. Sending never blocks the event loop
(smtplib and file writes run in a thread). Recipients are only logged masked,
and :class:`EmailDeliveryError` never carries an address or server reply text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
import stat
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.policy.validation import mask_email
from bot.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_SMTP_TIMEOUT = 10.0  # seconds, on every socket operation
SMTP_PORT = 25
SMTPS_PORT = 465
OUTBOX_DIR_MODE = 0o700
EML_SUFFIX = ".eml"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class EmailDeliveryError(Exception):
    """An e-mail could not be delivered. The message names no person.

    ``smtp_code`` is the server's reply code when it answered with one;
    ``permanent`` is true for 5xx replies (retrying will not help).
    """

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code
        self.permanent = smtp_code is not None and 500 <= smtp_code < 600


class EmailSender(Protocol):
    """Anything that delivers a plain-text e-mail to one recipient."""

    async def send(self, to: str, subject: str, body: str) -> None:
        """Deliver the message or raise :class:`EmailDeliveryError`."""
        ...


def build_message(
    email_from: str, to: str, subject: str, body: str, *, now: datetime
) -> EmailMessage:
    """A UTF-8 plain-text message with From, To, Subject, Date and Message-ID."""
    for name, value in (("recipient", to), ("subject", subject)):
        if "\r" in value or "\n" in value:
            raise ValueError(f"The {name} must be a single line")
    message = EmailMessage()
    message["From"] = email_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(timezone.utc))
    message["Message-ID"] = make_msgid(domain=_domain_of(email_from))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


def _domain_of(email_from: str) -> str:
    """The domain of the From address (for Message-IDs, no DNS lookup)."""
    address = parseaddr(email_from)[1]
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise ValueError("email_from must contain an address like name@domain")
    return domain


# --- SMTP ---------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the SMTP server (parsed from ``SMTP_URL``)."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port``, safe to log and print (no credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``smtp[s]://[user:password@]host[:port][?starttls=true]``.

    Raises ValueError (never quoting the password) when the URL is not usable.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(
            f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    try:
        explicit_port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL has an invalid port") from None
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP_URL must not have a path or fragment")
    implicit_tls = parts.scheme == "smtps"
    starttls = False
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key != "starttls":
            raise ValueError(f"SMTP_URL has an unknown option {key!r}")
        if value.lower() not in _TRUE | _FALSE:
            raise ValueError("SMTP_URL option starttls must be true or false")
        starttls = value.lower() in _TRUE
    if implicit_tls and starttls:
        raise ValueError("smtps:// is already TLS; starttls=true is for smtp://")
    return SmtpConfig(
        host=parts.hostname,
        port=explicit_port or (SMTPS_PORT if implicit_tls else SMTP_PORT),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _delivery_error(exc: Exception, address: str) -> EmailDeliveryError:
    """An error naming the server and the SMTP code, never reply text
    (replies often quote the recipient's address)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        code = codes[0] if codes else None
        return EmailDeliveryError(
            f"SMTP server {address} refused the recipient ({code})", smtp_code=code
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return EmailDeliveryError(
            f"SMTP server {address} answered {exc.smtp_code} ({type(exc).__name__})",
            smtp_code=exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPException):
        return EmailDeliveryError(f"SMTP with {address} failed ({type(exc).__name__})")
    return EmailDeliveryError(
        f"Cannot talk to SMTP server {address} ({type(exc).__name__}: {exc})"
    )


class SmtpEmailSender:
    """:class:`EmailSender` over SMTP with the standard library, in a thread."""

    def __init__(
        self,
        smtp_url: str,
        *,
        email_from: str,
        timeout: float = DEFAULT_SMTP_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``smtp_url`` as for :func:`parse_smtp_url` (ValueError if unusable).
        ``ssl_context`` defaults to the system's verifying context;
        ``local_hostname`` is sent in EHLO (default: this machine's FQDN)."""
        self.config = parse_smtp_url(smtp_url)
        _domain_of(email_from)
        self.email_from = email_from
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._clock = clock

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send one message; raise :class:`EmailDeliveryError` if it fails."""
        message = build_message(self.email_from, to, subject, body, now=self._clock())
        try:
            await asyncio.to_thread(self._deliver, message)
        except (smtplib.SMTPException, OSError) as exc:
            error = _delivery_error(exc, self.config.address)
            logger.warning("E-mail to %s not delivered: %s", mask_email(to), error)
            # Not chained: the SMTP exception's text can hold the address.
            raise error from None
        logger.info("E-mail to %s handed to %s", mask_email(to), self.config.address)

    def _deliver(self, message: EmailMessage) -> None:
        """Blocking: connect, secure, log in, send, quit."""
        config = self.config
        context = self._ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if config.implicit_tls:
            client = smtplib.SMTP_SSL(
                config.host,
                config.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                config.host,
                config.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout,
            )
        with client:
            if config.starttls:
                client.starttls(context=context)
            if config.username is not None:
                client.login(config.username, config.password or "")
            # One recipient: a refusal raises SMTPRecipientsRefused.
            client.send_message(message)


# --- Local outbox folder --------------------------------------------------------


def outbox_file_name(sent_at: datetime) -> str:
    """``20261127T230102.123456Z-1a2b3c4d.eml``: sorts by UTC time, unique."""
    utc = sent_at.astimezone(timezone.utc)
    return f"{utc:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:8]}{EML_SUFFIX}"


class FolderEmailSender:
    """:class:`EmailSender` that writes each message as an ``.eml`` file.

    Files are RFC 5322 as on the wire (CRLF line endings), 0600, written to a
    hidden temporary file and renamed, so readers never see half a message.
    The folder is made private (0700) when created.
    """

    def __init__(
        self, directory: Path, *, email_from: str, clock: Clock = utc_now
    ) -> None:
        """``directory`` is created on the first send if missing."""
        _domain_of(email_from)
        self.directory = Path(directory)
        self.email_from = email_from
        self._clock = clock

    async def send(self, to: str, subject: str, body: str) -> None:
        """Write one message; raise :class:`EmailDeliveryError` if it fails."""
        now = self._clock()
        message = build_message(self.email_from, to, subject, body, now=now)
        try:
            path = await asyncio.to_thread(self._write, message, now)
        except OSError as exc:
            error = EmailDeliveryError(
                f"Cannot write to the e-mail outbox ({type(exc).__name__})"
            )
            logger.warning("E-mail to %s not written: %s", mask_email(to), error)
            raise error from exc
        logger.info("E-mail to %s written to %s", mask_email(to), path)

    def _write(self, message: EmailMessage, now: datetime) -> Path:
        """Blocking: write the message atomically; return its path."""
        self._ensure_directory()
        data = message.as_bytes(policy=policy.SMTP)
        target = self.directory / outbox_file_name(now)
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temp_name, stat.S_IRUSR | stat.S_IWUSR)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return target

    def _ensure_directory(self) -> None:
        """Create the folder (and parents) if missing; a new folder is 0700."""
        if self.directory.is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=OUTBOX_DIR_MODE)
        self.directory.chmod(OUTBOX_DIR_MODE)


def make_email_sender(settings: Settings) -> EmailSender:
    """SMTP when ``settings.smtp_url`` is set, else the local outbox folder."""
    if settings.smtp_url:
        return SmtpEmailSender(settings.smtp_url, email_from=settings.email_from)
    return FolderEmailSender(settings.email_outbox_dir, email_from=settings.email_from)
