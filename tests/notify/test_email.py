"""E-mail delivery: the outbox folder, SMTP against a local server, the mailbox CLI."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from typing import cast

import pytest

from bot.clock import WIB
from bot.notify import mailbox
from bot.notify.email import (
    EmailDeliveryError,
    EmailSender,
    FolderEmailSender,
    SmtpConfig,
    SmtpEmailSender,
    make_email_sender,
    parse_smtp_url,
    utc_now,
)
from bot.settings import load_settings
from tests.fakes.smtp_server import FakeSmtpServer

EMAIL_FROM = "Kartu Prakerja <noreply@prakerja.localhost>"
TO = "budi.santoso@example.com"
SUBJECT = "Kode verifikasi Prakerja"
BODY = "Halo!\nKode verifikasi kamu: 482913\nBerlaku 10 menit."
T0 = datetime(2026, 11, 27, 23, 1, 2, 123456, tzinfo=timezone.utc)
NAME_PATTERN = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.eml$")
CLIENT_HOSTNAME = "client.localhost"  # EHLO name: skips the FQDN lookup
FAST_TIMEOUT = 2.0


class StepClock:
    """Returns the given times in turn."""

    def __init__(self, *times: datetime) -> None:
        self._times = list(times)

    def __call__(self) -> datetime:
        return self._times.pop(0)


def parse_eml(path: Path) -> EmailMessage:
    """Parse a written .eml file."""
    return cast(
        EmailMessage, BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    )


def smtp_sender(
    url: str,
    *,
    timeout: float = FAST_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> SmtpEmailSender:
    """An SMTP sender with a short timeout and a fixed EHLO name."""
    return SmtpEmailSender(
        url,
        email_from=EMAIL_FROM,
        timeout=timeout,
        ssl_context=ssl_context,
        local_hostname=CLIENT_HOSTNAME,
        clock=clock,
    )


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    """A plain local SMTP server."""
    with FakeSmtpServer() as server:
        yield server


# --- Outbox folder --------------------------------------------------------------


async def test_folder_sender_writes_a_parseable_message(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "email-outbox"
    sender: EmailSender = FolderEmailSender(
        outbox, email_from=EMAIL_FROM, clock=StepClock(T0)
    )

    await sender.send(TO, SUBJECT, BODY)

    [path] = list(outbox.iterdir())
    message = parse_eml(path)
    assert message["From"] == EMAIL_FROM
    assert message["To"] == TO
    assert message["Subject"] == SUBJECT
    assert message["Date"] == format_datetime(T0)
    assert re.fullmatch(r"<[^<>@]+@prakerja\.localhost>", message["Message-ID"])
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().splitlines() == BODY.splitlines()


async def test_folder_sender_keeps_non_ascii_text(tmp_path: Path) -> None:
    subject = "Kode verifikasi — Kartu Prakerja"
    body = "Halo Budi, kode kamu 482913 ✓"
    sender = FolderEmailSender(tmp_path, email_from=EMAIL_FROM, clock=StepClock(T0))

    await sender.send(TO, subject, body)

    [path] = list(tmp_path.iterdir())
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # RFC 5322
    assert subject.encode() not in raw  # encoded as RFC 2047, not raw UTF-8
    message = parse_eml(path)
    assert message["Subject"] == subject
    assert message.get_content().splitlines() == [body]


async def test_folder_sender_makes_a_private_folder_and_files(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    sender = FolderEmailSender(outbox, email_from=EMAIL_FROM)

    await sender.send(TO, SUBJECT, BODY)

    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    [path] = list(outbox.iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_folder_sender_leaves_no_temporary_files(tmp_path: Path) -> None:
    sender = FolderEmailSender(tmp_path, email_from=EMAIL_FROM)

    for _ in range(3):
        await sender.send(TO, SUBJECT, BODY)

    names = [path.name for path in tmp_path.iterdir()]
    assert len(names) == 3
    assert all(NAME_PATTERN.match(name) for name in names), names


async def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_replace(source: str, target: object) -> None:
        """os.replace on a full disk."""
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    sender = FolderEmailSender(tmp_path, email_from=EMAIL_FROM)

    with pytest.raises(EmailDeliveryError):
        await sender.send(TO, SUBJECT, BODY)

    assert list(tmp_path.iterdir()) == []


async def test_file_names_sort_by_time_not_by_writing_order(tmp_path: Path) -> None:
    times = [
        T0,
        T0 + timedelta(microseconds=1),
        T0 + timedelta(seconds=9),
        T0 + timedelta(hours=1),  # the next day in UTC
        T0 + timedelta(days=40),
    ]
    sender = FolderEmailSender(
        tmp_path, email_from=EMAIL_FROM, clock=StepClock(*reversed(times))
    )
    for index in range(len(times)):
        await sender.send(TO, f"message {index}", BODY)

    subjects = [parse_eml(path)["Subject"] for path in sorted(tmp_path.iterdir())]
    assert subjects == [f"message {index}" for index in reversed(range(len(times)))]


async def test_file_names_are_in_utc_and_unique(tmp_path: Path) -> None:
    wib_morning = datetime(2026, 11, 28, 6, 1, 2, 123456, tzinfo=WIB)
    sender = FolderEmailSender(
        tmp_path, email_from=EMAIL_FROM, clock=StepClock(*[wib_morning] * 4)
    )
    for _ in range(4):
        await sender.send(TO, SUBJECT, BODY)

    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 4
    assert all(name.startswith("20261127T230102.123456Z-") for name in names)


async def test_header_injection_is_refused(tmp_path: Path) -> None:
    sender = FolderEmailSender(tmp_path, email_from=EMAIL_FROM)

    with pytest.raises(ValueError):
        await sender.send(TO, "Kode\r\nBcc: someone@example.com", BODY)
    with pytest.raises(ValueError):
        await sender.send(f"{TO}\nBcc: someone@example.com", SUBJECT, BODY)

    assert list(tmp_path.iterdir()) == []


async def test_folder_sender_logs_the_recipient_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = FolderEmailSender(tmp_path, email_from=EMAIL_FROM)

    with caplog.at_level(logging.DEBUG, logger="bot.notify"):
        await sender.send(TO, SUBJECT, BODY)

    assert "bu***@example.com" in caplog.text
    assert TO not in caplog.text and "482913" not in caplog.text


def test_a_from_without_an_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FolderEmailSender(tmp_path, email_from="Kartu Prakerja")


# --- SMTP -----------------------------------------------------------------------


async def test_smtp_sender_delivers_to_the_server(
    smtp_server: FakeSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    sender: EmailSender = smtp_sender(smtp_server.url, clock=StepClock(T0))

    with caplog.at_level(logging.DEBUG, logger="bot.notify"):
        await sender.send(TO, SUBJECT, BODY)

    [mail] = smtp_server.messages
    assert mail.mail_from == "noreply@prakerja.localhost"
    assert mail.rcpt_tos == (TO,)
    assert not mail.over_tls and mail.login is None
    message = mail.message()
    assert message["From"] == EMAIL_FROM
    assert message["To"] == TO
    assert message["Subject"] == SUBJECT
    assert message["Date"] == format_datetime(T0)
    assert message["Message-ID"].endswith("@prakerja.localhost>")
    assert message.get_content().splitlines() == BODY.splitlines()
    assert TO not in caplog.text and "bu***@example.com" in caplog.text


async def test_smtp_sender_logs_in_with_the_url_credentials() -> None:
    with FakeSmtpServer(credentials=("mailer", "p@ss:w/rd")) as server:
        url = f"smtp://mailer:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}"

        await smtp_sender(url).send(TO, SUBJECT, BODY)

        [mail] = server.messages
        assert mail.login == "mailer"


async def test_wrong_credentials_are_a_permanent_failure() -> None:
    with FakeSmtpServer(credentials=("mailer", "right")) as server:
        url = f"smtp://mailer:wrong-secret@127.0.0.1:{server.port}"

        with pytest.raises(EmailDeliveryError) as caught:
            await smtp_sender(url).send(TO, SUBJECT, BODY)

        assert caught.value.smtp_code == 535 and caught.value.permanent
        assert "wrong-secret" not in str(caught.value)
        assert server.messages == []


async def test_a_server_that_is_down_is_a_delivery_error() -> None:
    sender = smtp_sender(f"smtp://127.0.0.1:{free_port()}")

    with pytest.raises(EmailDeliveryError) as caught:
        await sender.send(TO, SUBJECT, BODY)

    assert caught.value.smtp_code is None and not caught.value.permanent


async def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sender = smtp_sender(f"smtp://127.0.0.1:{port}", timeout=0.2)

        with pytest.raises(EmailDeliveryError):
            await sender.send(TO, SUBJECT, BODY)


@pytest.mark.parametrize(("code", "permanent"), [(550, True), (450, False)])
async def test_a_refused_recipient_is_a_delivery_error_without_the_address(
    smtp_server: FakeSmtpServer,
    caplog: pytest.LogCaptureFixture,
    code: int,
    permanent: bool,
) -> None:
    smtp_server.rcpt_reply = (
        f"{code} {code // 100}.1.1 <{TO}>: Recipient address rejected"
    )

    with (
        caplog.at_level(logging.DEBUG, logger="bot.notify"),
        pytest.raises(EmailDeliveryError) as caught,
    ):
        await smtp_sender(smtp_server.url).send(TO, SUBJECT, BODY)

    error = caught.value
    assert error.smtp_code == code and error.permanent is permanent
    assert TO not in "".join(traceback.format_exception(error))
    assert TO not in caplog.text
    assert smtp_server.messages == []


async def test_starttls_required_but_not_offered_sends_nothing(
    smtp_server: FakeSmtpServer,
) -> None:
    sender = smtp_sender(f"{smtp_server.url}?starttls=true")

    with pytest.raises(EmailDeliveryError):
        await sender.send(TO, SUBJECT, BODY)

    assert smtp_server.messages == []


# --- SMTP over TLS (needs the openssl command for a throwaway certificate) -------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_contexts(
    certificate: tuple[Path, Path],
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only the test certificate)."""
    cert, key = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_starttls_upgrades_before_sending(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_contexts
    with FakeSmtpServer(tls_context=server_context) as server:
        sender = smtp_sender(f"{server.url}?starttls=true", ssl_context=client_context)

        await sender.send(TO, SUBJECT, BODY)

        [mail] = server.messages
        assert mail.over_tls and mail.rcpt_tos == (TO,)


async def test_smtps_uses_implicit_tls(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_contexts
    with FakeSmtpServer(tls_context=server_context, implicit_tls=True) as server:
        assert server.url.startswith("smtps://")
        sender = smtp_sender(server.url, ssl_context=client_context)

        await sender.send(TO, SUBJECT, BODY)

        [mail] = server.messages
        assert mail.over_tls


async def test_an_untrusted_certificate_is_a_delivery_error(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls_contexts
    with FakeSmtpServer(tls_context=server_context, implicit_tls=True) as server:
        sender = smtp_sender(server.url)  # the system's CAs do not know it

        with pytest.raises(EmailDeliveryError):
            await sender.send(TO, SUBJECT, BODY)

        assert server.messages == []


# --- SMTP_URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.internal:2525", SmtpConfig("mail.internal", 2525)),
        ("smtp://mail.internal", SmtpConfig("mail.internal", 25)),
        (
            "smtp://mail.internal:587?starttls=true",
            SmtpConfig("mail.internal", 587, starttls=True),
        ),
        ("smtp://h?starttls=0", SmtpConfig("h", 25, starttls=False)),
        (
            "smtps://user:pa%40ss@mail.internal",
            SmtpConfig(
                "mail.internal",
                465,
                implicit_tls=True,
                username="user",
                password="pa@ss",
            ),
        ),  # fmt: skip
        ("smtp://[::1]:1025", SmtpConfig("::1", 1025)),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.internal:25",
        "mail.internal:25",
        "smtp://:25",
        "smtp://mail.internal:port",
        "smtp://mail.internal:25/path",
        "smtps://mail.internal?starttls=true",
        "smtp://user:s3cret-pw@mail.internal?starttls=maybe",
        "smtp://user:s3cret-pw@mail.internal?tls=true",
    ],
)
def test_unusable_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_smtp_url(url)
    assert "s3cret-pw" not in str(caught.value)


def test_the_password_is_not_in_the_config_repr() -> None:
    config = parse_smtp_url("smtp://user:s3cret-pw@mail.internal")
    assert config.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(config)
    assert config.address == "mail.internal:25"


# --- make_email_sender ------------------------------------------------------------


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A test environment with its var/ under tmp_path."""
    return {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def test_without_smtp_url_mail_goes_to_the_outbox_folder(tmp_path: Path) -> None:
    settings = load_settings(settings_env(tmp_path))

    sender = make_email_sender(settings)

    assert isinstance(sender, FolderEmailSender)
    assert sender.directory == tmp_path / "var" / "email-outbox"
    assert sender.email_from == settings.email_from


def test_with_smtp_url_mail_goes_to_the_server(tmp_path: Path) -> None:
    settings = load_settings(
        settings_env(
            tmp_path,
            SMTP_URL="smtp://mail.internal:2525?starttls=true",
            EMAIL_FROM="Prakerja <otp@prakerja.go.id>",
        )
    )

    sender = make_email_sender(settings)

    assert isinstance(sender, SmtpEmailSender)
    assert sender.config == SmtpConfig("mail.internal", 2525, starttls=True)
    assert sender.email_from == "Prakerja <otp@prakerja.go.id>"


def test_a_bad_smtp_url_fails_when_the_sender_is_made(tmp_path: Path) -> None:
    settings = load_settings(settings_env(tmp_path, SMTP_URL="mailto://x"))

    with pytest.raises(ValueError):
        make_email_sender(settings)


# --- python -m bot.notify.mailbox ----------------------------------------------------


@pytest.fixture
def mailbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's environment: outbox under tmp_path, no SMTP; returns the outbox."""
    outbox = tmp_path / "outbox"
    for name, value in settings_env(tmp_path, EMAIL_OUTBOX_DIR=str(outbox)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SMTP_URL", raising=False)
    return outbox


async def fill_outbox(outbox: Path, count: int) -> None:
    """Write `count` messages, an hour apart, subjects "Pesan 0", "Pesan 1"..."""
    sender = FolderEmailSender(
        outbox,
        email_from=EMAIL_FROM,
        clock=StepClock(*(T0 + timedelta(hours=i) for i in range(count))),
    )
    for index in range(count):
        await sender.send(f"user{index}@example.com", f"Pesan {index}", f"Kode {index}")


RunMailbox = Callable[..., str]


@pytest.fixture
def run_mailbox(capsys: pytest.CaptureFixture[str]) -> RunMailbox:
    """Run the CLI's main() with arguments; return what it printed."""

    def run(*argv: str) -> str:
        """main(argv) must succeed; its output."""
        assert mailbox.main(list(argv)) == 0
        return capsys.readouterr().out

    return run


async def test_mailbox_prints_the_newest_message(
    mailbox_env: Path, run_mailbox: RunMailbox
) -> None:
    await fill_outbox(mailbox_env, 3)

    out = run_mailbox("--last", "1")

    assert "To:      user2@example.com" in out
    assert "Subject: Pesan 2" in out
    assert "Kode 2" in out
    assert "2026-11-28 01:01:02 UTC" in out
    assert "Pesan 1" not in out and "Pesan 0" not in out


async def test_mailbox_prints_the_last_n_newest_last(
    mailbox_env: Path, run_mailbox: RunMailbox
) -> None:
    await fill_outbox(mailbox_env, 7)

    out = run_mailbox()

    shown = re.findall(r"Subject: (Pesan \d)", out)
    assert shown == [f"Pesan {i}" for i in range(2, 7)]
    assert "the newest 5 of 7" in out


def test_mailbox_says_when_the_outbox_is_empty(
    mailbox_env: Path, run_mailbox: RunMailbox
) -> None:
    out = run_mailbox()

    assert "empty" in out and str(mailbox_env) in out


def test_mailbox_points_to_the_smtp_server_when_configured(
    mailbox_env: Path, monkeypatch: pytest.MonkeyPatch, run_mailbox: RunMailbox
) -> None:
    monkeypatch.setenv("SMTP_URL", "smtp://mailer:s3cret-pw@mail.internal:2525")

    out = run_mailbox()

    assert "mail.internal:2525" in out
    assert "s3cret-pw" not in out


async def test_mailbox_defaults_to_development(
    mailbox_env: Path, monkeypatch: pytest.MonkeyPatch, run_mailbox: RunMailbox
) -> None:
    # Production would refuse to start without SMTP_URL and PSEUDONYM_KEY.
    # (setenv first so monkeypatch restores "unset" after main() sets it.)
    monkeypatch.setenv("PRAKERJA_ENV", "test")
    monkeypatch.delenv("PRAKERJA_ENV")
    await fill_outbox(mailbox_env, 1)

    out = run_mailbox()

    assert "Subject: Pesan 0" in out
    assert os.environ["PRAKERJA_ENV"] == "development"


def test_mailbox_refuses_a_non_positive_count(mailbox_env: Path) -> None:
    with pytest.raises(SystemExit):
        mailbox.main(["--last", "0"])
