"""A minimal local SMTP server for tests, in a background thread on 127.0.0.1.

Speaks enough of RFC 5321 for ``smtplib``: EHLO/HELO, optional STARTTLS or
implicit TLS, optional AUTH PLAIN, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT.
Records every accepted message and can be told to refuse recipients. Same shape
as :class:`tests.fakes.server.BackgroundServer`::

    with FakeSmtpServer() as server:
        ... server.url ... server.messages ...
"""

from __future__ import annotations

import base64
import binascii
import socketserver
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TypeVar, cast

_Fake = TypeVar("_Fake", bound="FakeSmtpServer")

SERVER_NAME = "fake-smtp.localhost"
CONNECTION_TIMEOUT = 10.0  # seconds a client may stay silent
STOP_TIMEOUT = 10.0  # seconds to wait for the server thread to end
MAX_LINE = 65536


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    over_tls: bool
    login: str | None

    def message(self) -> EmailMessage:
        """The message parsed with the default (modern) policy."""
        return cast(
            EmailMessage, BytesParser(policy=policy.default).parsebytes(self.data)
        )


def _address(argument: str, keyword: str) -> str | None:
    """``FROM:<a@b> SIZE=1`` -> ``a@b`` (None when malformed)."""
    head, _, rest = argument.partition(":")
    if head.strip().upper() != keyword:
        return None
    rest = rest.strip()
    if not rest.startswith("<") or ">" not in rest:
        return None
    return rest[1 : rest.index(">")]


class _SmtpSession(socketserver.StreamRequestHandler):
    """One client connection."""

    timeout = CONNECTION_TIMEOUT
    server: _SmtpTcpServer
    over_tls: bool
    greeted: bool
    login: str | None
    mail_from: str | None
    rcpt_tos: list[str]

    def handle(self) -> None:
        """Greet, then answer commands until QUIT or disconnect."""
        fake = self.server.fake
        self.over_tls = False
        self.greeted = False
        self.login = None
        self._reset()
        if fake.implicit_tls and not self._upgrade_to_tls():
            return
        self._reply(f"220 {SERVER_NAME} ESMTP FakeSmtpServer")
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return
            verb, _, argument = (
                line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            )
            if not self._command(verb.upper(), argument):
                return

    def finish(self) -> None:
        """Close the files, and the TLS socket the server does not know of."""
        super().finish()
        if self.over_tls:
            self.connection.close()

    def _command(self, verb: str, argument: str) -> bool:
        """Answer one command; False ends the session."""
        fake = self.server.fake
        if verb == "QUIT":
            self._reply("221 2.0.0 Bye")
            return False
        if verb in ("EHLO", "HELO"):
            self.greeted = True
            self._reset()
            if verb == "HELO":
                self._reply(f"250 {SERVER_NAME}")
            else:
                self._reply_lines(250, [SERVER_NAME, *self._extensions()])
        elif verb == "STARTTLS":
            if not self._tls_offered():
                self._reply("502 5.5.1 STARTTLS not offered")
            else:
                self._reply("220 2.0.0 Ready to start TLS")
                if not self._upgrade_to_tls():
                    return False
                self.greeted = False
                self._reset()
        elif verb == "AUTH":
            self._auth(argument)
        elif verb == "MAIL":
            address = _address(argument, "FROM")
            if not self.greeted:
                self._reply("503 5.5.1 Say EHLO first")
            elif fake.credentials is not None and self.login is None:
                self._reply("530 5.7.0 Authentication required")
            elif address is None:
                self._reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            else:
                self.mail_from = address
                self._reply("250 2.1.0 OK")
        elif verb == "RCPT":
            address = _address(argument, "TO")
            if self.mail_from is None:
                self._reply("503 5.5.1 MAIL first")
            elif address is None:
                self._reply("501 5.5.4 Syntax: RCPT TO:<address>")
            elif fake.rcpt_reply is not None:
                self._reply(fake.rcpt_reply)
            else:
                self.rcpt_tos.append(address)
                self._reply("250 2.1.5 OK")
        elif verb == "DATA":
            if not self.rcpt_tos or self.mail_from is None:
                self._reply("503 5.5.1 RCPT first")
            else:
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    return False
                fake._record(
                    ReceivedMail(
                        self.mail_from,
                        tuple(self.rcpt_tos),
                        data,
                        self.over_tls,
                        self.login,
                    )
                )
                self._reset()
                self._reply("250 2.0.0 OK queued")
        elif verb == "RSET":
            self._reset()
            self._reply("250 2.0.0 OK")
        elif verb == "NOOP":
            self._reply("250 2.0.0 OK")
        else:
            self._reply("500 5.5.2 Command not recognised")
        return True

    def _extensions(self) -> list[str]:
        """The EHLO keywords on offer now."""
        extensions = ["8BITMIME"]
        if self._tls_offered():
            extensions.append("STARTTLS")
        if self.server.fake.credentials is not None:
            extensions.append("AUTH PLAIN")
        return extensions

    def _tls_offered(self) -> bool:
        """STARTTLS is configured and the session is not TLS yet."""
        fake = self.server.fake
        return fake.tls_context is not None and not self.over_tls

    def _auth(self, argument: str) -> None:
        """AUTH PLAIN, with the initial response or after a 334 prompt."""
        credentials = self.server.fake.credentials
        mechanism, _, initial = argument.partition(" ")
        if credentials is None or mechanism.upper() != "PLAIN":
            self._reply("504 5.5.4 Mechanism not supported")
            return
        if not initial:
            self._reply("334 ")
            initial = self.rfile.readline(MAX_LINE).decode("ascii", "replace").strip()
        try:
            _, user, password = base64.b64decode(initial).decode().split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self._reply("501 5.5.2 Cannot decode the response")
            return
        if (user, password) != credentials:
            self._reply("535 5.7.8 Authentication credentials invalid")
            return
        self.login = user
        self._reply("235 2.7.0 Authentication successful")

    def _read_data(self) -> bytes | None:
        """The message up to the lone dot, un-dot-stuffed (None on disconnect)."""
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)

    def _upgrade_to_tls(self) -> bool:
        """Wrap the connection in TLS (server side); False if the handshake fails."""
        context = self.server.fake.tls_context
        assert context is not None
        try:
            self.connection = context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return False
        self.rfile.close()
        self.rfile = self.connection.makefile("rb")
        self.over_tls = True
        return True

    def _reset(self) -> None:
        """Forget the current transaction (sender and recipients)."""
        self.mail_from = None
        self.rcpt_tos = []

    def _reply(self, line: str) -> None:
        """Send one reply line."""
        self.connection.sendall(line.encode() + b"\r\n")

    def _reply_lines(self, code: int, lines: list[str]) -> None:
        """A multi-line reply: ``250-first`` ... ``250 last``."""
        text = "".join(
            f"{code}{' ' if i == len(lines) - 1 else '-'}{line}\r\n"
            for i, line in enumerate(lines)
        )
        self.connection.sendall(text.encode())


class _SmtpTcpServer(socketserver.ThreadingTCPServer):
    """A threading TCP server that knows its fake."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSmtpServer, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _SmtpSession)


class FakeSmtpServer:
    """A recording SMTP server in a daemon thread on 127.0.0.1."""

    def __init__(
        self,
        *,
        name: str = "FakeSmtpServer",
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        """credentials: (user, password) required by AUTH PLAIN before MAIL.
        tls_context: a server-side context; offered via STARTTLS, or used from
        the first byte when implicit_tls."""
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self._name = name
        self.credentials = credentials
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.rcpt_reply: str | None = None
        """When set (e.g. ``"550 5.1.1 User unknown"``), every RCPT gets it."""
        self._messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._port = 0
        self._server: _SmtpTcpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of the messages accepted so far, in order."""
        with self._lock:
            return list(self._messages)

    @property
    def port(self) -> int:
        """The port served on (0 before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT`` (``smtps://`` with implicit TLS)."""
        if not self._port:
            raise RuntimeError(f"{self._name} is not started")
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://127.0.0.1:{self._port}"

    def _record(self, mail: ReceivedMail) -> None:
        """Keep an accepted message (called from session threads)."""
        with self._lock:
            self._messages.append(mail)

    def start(self: _Fake) -> _Fake:
        """Listen on a free port and serve in a background thread; returns self."""
        self._server = _SmtpTcpServer(self, 0)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self._name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting connections and wait for the server thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)
        self._server = self._thread = None

    def __enter__(self: _Fake) -> _Fake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
