"""What a whole registration costs over SMS, both ways, from a scripted run.

Usage: python -m bench.sms_registration   (run by `make bench-sms`)

Starts the real processes (Rasa with models/prakerja.tar.gz, the action server
and the gateway, on a seeded SQLite database, with the fake Twilio API), then
registers one test person over SMS exactly as a feature-phone user would:
"daftar", consent, name, e-mail, the code from the mail, then the NIK, KK
number and birth date in one SMS (as the NIK question suggests), then joins the
open batch with the numbered menu. Prints each turn with the
segments of the SMS in and out, and the totals (issue 10 asks for at most 15).

Ports come from BENCH_PORTS ("first-last", default 18200-18299), so a shared
machine's other users are not disturbed.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.channels.sms.gsm7 import segment_info

TARGET = 15  # segments, both ways (issue 10, point 6)
DIGITS = re.compile(r"\b\d{6,}\b")  # codes, NIK and KK are not printed


def port_range(spec: str) -> Iterator[int]:
    """Free ports of ``spec`` ("18200-18299"), in order."""
    first, last = (int(part) for part in spec.split("-"))
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port


@dataclass(frozen=True)
class Turn:
    """One message in and the replies it got."""

    said: str
    replies: tuple[str, ...]

    @property
    def segments_in(self) -> int:
        """Segments of the inbound SMS (0 for a reply nobody asked for)."""
        return segment_info(self.said).segments if self.said else 0

    @property
    def segments_out(self) -> int:
        """Segments of the replies."""
        return sum(segment_info(body).segments for body in self.replies)


@contextmanager
def stack(work: Path, ports: Iterator[int]) -> Iterator[object]:
    """The running stack of the SMS registration test, on ``ports``."""
    import tests.integration.conftest as processes
    from tests.fakes.twilio_api import FakeTwilioApi
    from tests.integration import test_registration_sms as site_module

    processes.free_port = lambda: next(ports)
    api = FakeTwilioApi()
    api._port, api._same_port = next(ports), True  # listen inside the range
    site_module.FakeTwilioApi = lambda: api  # type: ignore[assignment,misc]
    fixture = site_module.registration_site.__wrapped__  # type: ignore[attr-defined]
    yield from fixture(work)


def wait_idle(site: object, transcript: object, phone: str) -> None:
    """Until every inbound message is handled, no reply is waiting in the
    outbox, and the fake Twilio API has every reply that was sent."""
    import time

    from sqlalchemy import func, select

    from bot.db import make_engine, make_sessionmaker
    from bot.gateway.models import (
        INBOX_PENDING,
        OUTBOX_PENDING,
        InboxMessage,
        OutboxMessage,
    )

    engine = make_engine(site.database_url)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            with make_sessionmaker(engine)() as session:
                busy = session.scalar(
                    select(func.count()).select_from(InboxMessage)
                    .where(InboxMessage.status == INBOX_PENDING)
                ) or session.scalar(
                    select(func.count()).select_from(OutboxMessage)
                    .where(OutboxMessage.status == OUTBOX_PENDING)
                )  # fmt: skip
                stored = session.scalar(select(func.count()).select_from(OutboxMessage))
            sent = len(transcript.bodies_to(phone))  # type: ignore[attr-defined]
            if not busy and sent >= (stored or 0):
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise RuntimeError("the gateway did not finish sending within 120 s")


def register(site: object) -> list[Turn]:
    """Script one registration; the turns in order."""
    from tests.integration.test_registration_sms import (
        BIRTH_DATE,
        EMAIL,
        KK,
        NAME,
        NIK,
        PHONE,
        SmsTranscript,
        emailed_code,
    )

    transcript = SmsTranscript(site)  # type: ignore[arg-type]
    sent: list[tuple[str, int]] = []  # what the person sent, replies before it

    def say(text: str, marker: str, what: str) -> str:
        before = transcript.send(PHONE, text)
        sent.append((text, before))
        return transcript.wait_for(PHONE, marker, before, what)

    say("daftar", "setuju", "the consent question")
    say("setuju", "nama lengkap", "the name question")
    say(NAME, "email", "the e-mail question")
    say(EMAIL, "Kode 6 angka", "the code question")
    say(emailed_code(site.outbox, EMAIL), "NIK", "the NIK question")  # type: ignore[attr-defined]
    say(f"{NIK} {KK} {BIRTH_DATE}", "Cek NIK selesai", "the NIK check result")
    say("1", "Berhasil", "the joined batch")
    wait_idle(site, transcript, PHONE)
    bodies = transcript.bodies_to(PHONE)
    ends = [before for _, before in sent[1:]] + [len(bodies)]
    # Every reply counts for the message it answered, late ones included.
    return [
        Turn(text, tuple(bodies[before:end]))
        for (text, before), end in zip(sent, ends, strict=True)
    ]


def report(turns: list[Turn]) -> str:
    """The turns and totals as Markdown."""
    rows = [
        "| turn | person sends | segments in | replies | segments out |",
        "|---|---|---|---|---|",
    ]
    for number, turn in enumerate(turns, start=1):
        said = DIGITS.sub("(digits)", turn.said)
        rows.append(
            f"| {number} | {said} | {turn.segments_in} | {len(turn.replies)} "
            f"| {turn.segments_out} |"
        )
    total_in = sum(t.segments_in for t in turns)
    total_out = sum(t.segments_out for t in turns)
    rows.append(
        f"| **total** | {len(turns)} turns | {total_in} | "
        f"{sum(len(t.replies) for t in turns)} | {total_out} |"
    )
    verdict = "within" if total_in + total_out <= TARGET else "OVER"
    rows.append("")
    rows.append(
        f"Whole registration over SMS: {total_in + total_out} segments both ways "
        f"({total_in} in, {total_out} out); target <= {TARGET}: {verdict}."
    )
    return "\n".join(rows)


def main() -> None:
    """Run the scripted registration and print the report."""
    ports = iter(list(itertools.islice(
        port_range(os.environ.get("BENCH_PORTS", "18200-18299")), 8
    )))  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bench-sms-") as tmp,
        stack(Path(tmp), ports) as site,
    ):
        turns = register(site)
    print(report(turns))


if __name__ == "__main__":
    main()
