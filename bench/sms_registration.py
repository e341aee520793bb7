"""What a whole registration costs over SMS, both ways, from a scripted run.

Usage: python -m bench.sms_registration [--show]   (run by `make bench-sms`;
--show prints every SMS the person got)

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
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def wait_idle(site: object) -> None:
    """Until every inbound message is handled, no reply is waiting in the
    outbox, and the fake Twilio API has every reply that was stored."""
    import time

    from sqlalchemy import func, select

    from bot.db import make_engine, make_sessionmaker
    from bot.messages.models import (
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
            sent = len(site.api.sent)  # type: ignore[attr-defined]
            if not busy and sent >= (stored or 0):
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise RuntimeError("the gateway did not finish sending within 120 s")


@dataclass(frozen=True)
class Applicant:
    """A test person of the local population, and how they answer."""

    phone: str
    name: str
    email: str
    nik: str
    kk: str
    born: str


# Two verified test people (README "Test people"): one answers the NIK question
# with all three values in one SMS, the other one value at a time, as before.
TOGETHER = Applicant(
    "+6281234500002", "Siti Rahayu", "siti.rahayu@gmail.com",
    "3273054302950002", "3273051203180003", "03-02-1995",
)  # fmt: skip
ONE_BY_ONE = Applicant(
    "+6281234500003", "Made Wirawan", "made.wirawan@gmail.com",
    "5171022111870003", "5171020505100004", "21-11-1987",
)  # fmt: skip


def register(
    site: object, transcript: Any, person: Applicant, together: bool
) -> list[Turn]:
    """Script one registration through ``transcript`` (one for the run: it
    numbers the provider's message ids); the turns in order."""
    from tests.integration.test_registration_sms import emailed_code

    sent: list[tuple[str, int]] = []  # what the person sent, replies before it
    phone = person.phone

    def say(text: str, marker: str, what: str) -> str:
        before = transcript.send(phone, text)
        sent.append((text, before))
        return transcript.wait_for(phone, marker, before, what)

    say("daftar", "setuju", "the consent question")
    say("setuju", "nama lengkap", "the name question")
    say(person.name, "email", "the e-mail question")
    say(person.email, "Kode 6 angka", "the code question")
    outbox = site.outbox  # type: ignore[attr-defined]
    say(emailed_code(outbox, person.email), "NIK", "the NIK question")
    if together:
        say(f"{person.nik} {person.kk} {person.born}", "Cek NIK", "the NIK result")
    else:
        say(person.nik, "Kartu Keluarga", "the KK question")
        say(person.kk, "tanggal lahir", "the birth date question")
        say(person.born, "Cek NIK", "the NIK check result")
    say("1", "Berhasil", "the joined batch")
    wait_idle(site)
    bodies = transcript.bodies_to(phone)
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
        from tests.integration.test_registration_sms import SmsTranscript

        transcript = SmsTranscript(site)  # type: ignore[arg-type]
        runs = {
            "NIK, KK and birth date in one SMS": register(
                site, transcript, TOGETHER, True
            ),
            "NIK, KK and birth date one by one": register(
                site, transcript, ONE_BY_ONE, False
            ),
        }
    for title, turns in runs.items():
        print(f"\n### {title}\n\n{report(turns)}")
    if "--show" in sys.argv:
        for turn in runs["NIK, KK and birth date in one SMS"]:
            print(f"\n> {DIGITS.sub('(digits)', turn.said)}")
            for body in turn.replies:
                info = segment_info(body)
                print(f"< [{info.segments} seg, {len(body)} chars] {body!r}")


if __name__ == "__main__":
    main()
