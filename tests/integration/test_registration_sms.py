"""Registration over SMS, from "halo" to a joined batch, through every real process.

The gateway, Rasa (the trained model), the action server and one SQLite database
run for real; only Twilio's REST API is a local fake. Inbound SMS are signed the
way Twilio signs them. The e-mail code is read from the local e-mail outbox, and
the NIK check runs in the gateway, which tells the person by SMS when it is done.
Every wait polls with a deadline; a failure prints the whole SMS transcript.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from bot.channels.sms.gsm7 import GSM7, is_gsm7, segment_info
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.registry import open_batches
from bot.registry.models import (
    STEP_BATCH,
    STEP_DONE,
    STEP_EMAIL,
    STEP_NIK,
    STEP_PENDING,
    STEP_SELECTION,
    Applicant,
    Batch,
    ChannelIdentity,
    EmailCode,
    RegistrationStep,
)
from tests.conftest import ROOT
from tests.fakes.twilio_api import FakeTwilioApi
from tests.integration.conftest import RasaStack, running_rasa_stack

PHONE = "+6281234500002"
STRANGER = "+6281299900077"
TWILIO_NUMBER = "+15005550006"
# A test person whose birth date is not the example the bot's questions show
# (15-08-1990), so the tracker store check below means something.
EMAIL = "siti.rahayu@gmail.com"
NAME = "Siti Rahayu"
NIK = "3273054302950002"
KK = "3273051203180003"
BIRTH_DATE = "03-02-1995"
MAX_SEGMENTS = 2
WAIT = 90.0  # seconds for one expected SMS (the first Rasa turn is the slowest)
POLL = 0.3
LOG_TAIL = 30  # lines of each process log added to a failure
CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class RegistrationSite:
    """The running stack: the gateway's URL, the fake Twilio API, the shared
    database and e-mail outbox, and the batch open now."""

    base: str
    api: FakeTwilioApi
    database_url: str
    outbox: Path
    open_batch: int
    work: Path
    tracker_db: Path | None = None  # Rasa's SQL tracker store (None: in memory)
    stack: RasaStack | None = None


def seed_database(env: dict[str, str]) -> None:
    """`python -m bot.seed` against the test database, as `make run` does."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.seed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"bot.seed failed:\n{done.stdout}\n{done.stderr}")


def open_batch_number(database_url: str) -> int:
    """The lowest-numbered batch open now with places left."""
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            found = open_batches(session, utcnow())
    finally:
        engine.dispose()
    if not found:
        pytest.fail("bot.seed left no batch open")
    return found[0].number


@pytest.fixture()
def registration_site(tmp_path: Path) -> Iterator[RegistrationSite]:
    """Seeded database, Rasa + action server and gateway sharing its settings
    (seeded while Rasa loads; all three start at once)."""
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    outbox = tmp_path / "email-outbox"
    shared = {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "EMAIL_OUTBOX_DIR": str(outbox),
        "PSEUDONYM_KEY": "registration-sms-test-key",
        "SMTP_URL": "",  # codes go to the outbox folder
        "NIK_VERIFIER_URL": "",  # NIKs are checked against the seeded population
    }
    with running_sms_site(tmp_path, shared) as (site, _):
        yield site


@contextmanager
def running_sms_site(
    work: Path,
    shared: dict[str, str],
    tracker: bool = True,
    prepare: Callable[[], None] | None = None,
) -> Iterator[tuple[RegistrationSite, RasaStack]]:
    """Rasa (its tracker in `work`/rasa_tracker.db, or in memory without
    `tracker`), the action server and the gateway with a fake Twilio API, all
    with the settings `shared`, until exit. The database (`DATABASE_URL`) is
    seeded, then `prepare` runs, while Rasa loads its model; the three processes
    start at once."""
    database_url = shared["DATABASE_URL"]

    def seed() -> None:
        seed_database({**os.environ, **shared})
        if prepare is not None:
            prepare()

    tracker_db = work / "rasa_tracker.db" if tracker else None
    with (
        FakeTwilioApi() as api,
        running_rasa_stack(
            work, shared, tracker_db, prepare=seed, gateway=twilio_settings(api)
        ) as stack,
    ):
        assert stack.gateway_url is not None
        site = RegistrationSite(
            stack.gateway_url,
            api,
            database_url,
            Path(shared["EMAIL_OUTBOX_DIR"]),
            open_batch_number(database_url),
            work,
            tracker_db,
            stack,
        )
        yield site, stack


def twilio_settings(api: FakeTwilioApi) -> dict[str, str]:
    """The gateway's settings for the fake Twilio API."""
    return {
        "TWILIO_ACCOUNT_SID": api.account_sid,
        "TWILIO_AUTH_TOKEN": api.auth_token,
        "TWILIO_FROM_NUMBER": TWILIO_NUMBER,
        "TWILIO_API_URL": api.url,
    }


@dataclass
class SmsTranscript:
    """Both directions of the SMS traffic in order, for waits and failures."""

    site: RegistrationSite
    lines: list[str] = field(default_factory=list)
    _seen: int = 0
    _sids: int = 0

    def collect(self) -> None:
        """Add the SMS the fake Twilio API accepted since the last look."""
        sent = self.site.api.sent
        for call in sent[self._seen :]:
            body = call.params.get("Body", "").replace("\n", "\n      | ")
            self.lines.append(f"BOT -> {call.params.get('To')}:\n      | {body}")
        self._seen = len(sent)

    def bodies_to(self, phone: str) -> list[str]:
        """Bodies of the SMS sent to ``phone``, in order."""
        return [
            call.params.get("Body", "")
            for call in self.site.api.sent
            if call.params.get("To") == phone
        ]

    def send(self, phone: str, text: str) -> int:
        """Deliver a signed inbound SMS; the count of replies to ``phone`` before."""
        self.collect()
        before = len(self.bodies_to(phone))
        self._sids += 1
        self.lines.append(f"{phone} -> BOT: {text}")
        params = {
            "MessageSid": f"SM{self._sids:032d}",
            "SmsSid": f"SM{self._sids:032d}",
            "AccountSid": self.site.api.account_sid,
            "From": phone,
            "To": TWILIO_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        url = self.site.base + "/sms/inbound"
        signature = RequestValidator(self.site.api.auth_token).compute_signature(
            url, params
        )
        response = httpx.post(
            url,
            content=urllib.parse.urlencode(params),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            timeout=10,
        )
        assert response.status_code == 200, f"webhook answered {response.status_code}"
        return before

    def wait_for(self, phone: str, marker: str, after: int, what: str) -> str:
        """The first SMS to ``phone`` after the ``after``-th one that contains
        ``marker`` (case-insensitive); polls until WAIT seconds have passed."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.collect()
            for body in self.bodies_to(phone)[after:]:
                if marker.lower() in body.lower():
                    return body
            time.sleep(POLL)
        raise AssertionError(f"no SMS with {marker!r} ({what}) within {WAIT:g} s")

    def say(self, phone: str, text: str, marker: str, what: str) -> str:
        """Send ``text`` and wait for a reply containing ``marker``."""
        return self.wait_for(phone, marker, self.send(phone, text), what)

    def render(self, logs: bool = True) -> str:
        """The transcript, then (``logs``) the end of each process log."""
        self.collect()
        parts = ["--- SMS transcript ---", *self.lines]
        for name in ("gateway.log", "actions.log", "rasa.log") if logs else ():
            log = self.site.work / name
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
                parts += [f"--- last lines of {name} ---", *tail]
        return "\n".join(parts)


@contextmanager
def transcript_on_failure(transcript: SmsTranscript) -> Iterator[None]:
    """Re-raise a failed assertion with the whole SMS transcript appended."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{transcript.render()}") from None


def emailed_code(outbox: Path, to: str) -> str:
    """The 6-digit code of the newest .eml in the outbox addressed to ``to``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml"), reverse=True):
            with path.open("rb") as file:
                message = cast(
                    EmailMessage, BytesParser(policy=policy.default).parse(file)
                )
            if message["To"] != to:
                continue
            part = message.get_body(preferencelist=("plain",))
            found = CODE.search(part.get_content() if part is not None else "")
            assert found is not None, f"no 6-digit code in {path.name}"
            return found.group(1)
        time.sleep(POLL)
    raise AssertionError(f"no e-mail to {to} in {outbox} within {WAIT:g} s")


def away_for_hours(site: RegistrationSite, hours: int) -> None:
    """The person went away: every event in Rasa's tracker store made `hours`
    older (its column and its JSON), with Rasa stopped meanwhile so that it
    forgets the trackers it kept, and every e-mail code as much older. Rasa's
    session expiry (domain.yml) then starts a new session at the next message,
    and the codes have expired."""
    assert site.tracker_db is not None and site.stack is not None
    tracker_db = site.tracker_db
    engine = make_engine(site.database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            for code in session.scalars(select(EmailCode)):
                code.created_at -= timedelta(hours=hours)
                code.expires_at -= timedelta(hours=hours)
    finally:
        engine.dispose()

    def age_events() -> None:
        engine = make_engine(f"sqlite:///{tracker_db}")
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE events SET timestamp = timestamp - :s, data = "
                        "json_set(data, '$.timestamp', "
                        "json_extract(data, '$.timestamp') - :s)"
                    ),
                    {"s": hours * 3600},
                )
        finally:
            engine.dispose()

    site.stack.restart_rasa(while_stopped=age_events)


def sessions_started(site: RegistrationSite) -> int:
    """How many sessions Rasa's tracker store holds (every conversation's)."""
    assert site.tracker_db is not None
    engine = make_engine(f"sqlite:///{site.tracker_db}")
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM events WHERE type_name = :t"),
                    {"t": "session_started"},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def mails_to(outbox: Path, to: str) -> int:
    """How many e-mails the outbox holds for `to`."""
    count = 0
    for path in outbox.glob("*.eml"):
        with path.open("rb") as file:
            if BytesParser(policy=policy.default).parse(file)["To"] == to:
                count += 1
    return count


def check_registry(site: RegistrationSite) -> None:
    """One applicant with the sender's phone, its steps, and the batch count."""
    engine = make_engine(site.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            applicants = session.execute(
                select(Applicant.id, Applicant.phone, Applicant.full_name).where(
                    Applicant.nik == NIK
                )
            ).all()
            assert len(applicants) == 1, f"{len(applicants)} applicants with the NIK"
            applicant = applicants[0]
            assert applicant.phone == PHONE
            assert applicant.full_name == NAME.upper()
            steps = dict(
                session.execute(
                    select(RegistrationStep.step, RegistrationStep.status).where(
                        RegistrationStep.applicant_id == applicant.id
                    )
                ).all()
            )
            expected = {
                STEP_EMAIL: STEP_DONE,
                STEP_NIK: STEP_DONE,
                STEP_BATCH: STEP_DONE,
                STEP_SELECTION: STEP_PENDING,
            }
            assert {step: steps.get(step) for step in expected} == expected
            joined = session.execute(
                select(Batch.joined_count).where(Batch.number == site.open_batch)
            ).scalar_one()
            assert joined == 1
            total = session.execute(
                select(func.count()).select_from(Applicant)
            ).scalar_one()
            assert total == 1, f"{total} applicants in the registry"
            stranger = session.execute(
                select(ChannelIdentity.applicant_id).where(
                    ChannelIdentity.external_id == STRANGER
                )
            ).all()
            assert all(row.applicant_id is None for row in stranger)
    finally:
        engine.dispose()


def check_tracker_store(site: RegistrationSite) -> None:
    """Rasa's tracker store holds the whole conversation, and none of the
    person's NIK, KK, e-mail, birth date or phone in any form (also with the
    separators and spaces taken out)."""
    assert site.tracker_db is not None, "Rasa keeps its trackers in memory"
    engine = make_engine(f"sqlite:///{site.tracker_db}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT type_name, intent_name, action_name, data FROM events")
            ).all()
    finally:
        engine.dispose()
    assert len(rows) > 50, f"only {len(rows)} events in the tracker store"
    assert any(row.action_name == "action_submit_registration" for row in rows)
    stored = "\n".join(" ".join(str(part) for part in row) for row in rows).lower()
    squeezed = re.sub(r"[^0-9a-z@]", "", stored)
    day, month, year = BIRTH_DATE.split("-")
    forms = {
        "NIK": [NIK],
        "KK": [KK],
        "e-mail": [EMAIL, EMAIL.split("@")[0], EMAIL.replace(".", "")],
        "birth date": [day + month + year, year + month + day, f"{year}-{month}-"],
        "phone": [PHONE[1:], PHONE[3:]],
    }
    for what, values in forms.items():
        for value in values:
            found = value.lower() in stored or value.lower() in squeezed
            assert not found, f"the {what} is in Rasa's tracker store as {value!r}"


def check_bodies(
    transcript: SmsTranscript, forbidden: Callable[[str], str | None]
) -> None:
    """Every SMS accepted, GSM-7, at most two segments, and free of ``forbidden``
    (a function naming what a body must not carry, or None)."""
    calls = transcript.site.api.calls
    refused = [call.status for call in calls if call.status != 201]
    assert not refused, f"the fake Twilio API refused sends: {refused}"
    for call in calls:
        body = call.params.get("Body", "")
        info = segment_info(body)
        assert is_gsm7(body) and info.encoding == GSM7, f"not GSM-7: {body!r}"
        assert info.segments <= MAX_SEGMENTS, f"{info.segments} segments: {body!r}"
        problem = forbidden(body)
        assert problem is None, f"{problem}: {body!r}"


def test_register_over_sms_and_join_a_batch(
    registration_site: RegistrationSite,
) -> None:
    site = registration_site
    batch = site.open_batch
    transcript = SmsTranscript(site)
    with transcript_on_failure(transcript):
        greeting = transcript.say(PHONE, "halo", "Prakerja", "the greeting")
        assert "1." in greeting
        transcript.say(PHONE, "daftar", "setuju", "the consent question")
        transcript.say(PHONE, "setuju", "nama lengkap", "the name question")
        # Stopped and started again: the consent is kept, the start is said.
        transcript.say(PHONE, "batal", "hentikan", "the registration stopped")
        again = transcript.send(PHONE, "daftar")
        transcript.wait_for(PHONE, "bantu daftar", again, "the start")
        transcript.wait_for(PHONE, "nama lengkap", again, "the name question again")
        starts = [b for b in transcript.bodies_to(PHONE) if "bantu daftar" in b]
        assert len(starts) == 1, "the start said more than once"
        transcript.say(PHONE, NAME, "email", "the e-mail question")
        transcript.say(PHONE, EMAIL, "Kode 6 angka", "the code question")
        code = emailed_code(site.outbox, EMAIL)
        # Back two hours later with the code: a new Rasa session, the code
        # expired, and the registration goes on where it was (not the "do not
        # send personal data" of a message out of any form): a new code mailed.
        away_for_hours(site, 2)
        back = transcript.send(PHONE, code)
        transcript.wait_for(PHONE, "Kita lanjutkan", back, "the registration resumed")
        transcript.wait_for(PHONE, "tidak berlaku", back, "the code expired")
        transcript.wait_for(PHONE, "Kode 6 angka", back, "a new code mailed")
        assert sessions_started(site) == 2, "no new session after two hours"
        assert mails_to(site.outbox, EMAIL) == 2, "no new code mailed"
        code = emailed_code(site.outbox, EMAIL)
        verified = transcript.say(PHONE, code, "NIK", "the NIK question")
        assert "terverifikasi" in verified
        transcript.say(PHONE, NIK, "Kartu Keluarga", "the KK question")
        transcript.say(PHONE, KK, "tanggal lahir", "the birth date question")
        submitted = transcript.send(PHONE, BIRTH_DATE)
        transcript.wait_for(PHONE, "sedang dicek", submitted, "the NIK check queued")

        # Nobody writes: the gateway's NIK check runner tells the result by SMS.
        result = transcript.wait_for(
            PHONE, "Cek NIK selesai", submitted, "the NIK check result"
        )
        assert "cocok" in result
        assert f"1. Gabung gelombang {batch}" in result

        joined = transcript.say(PHONE, "1", "Berhasil", "the joined batch")
        assert f"Gelombang {batch}" in joined

        status = transcript.say(PHONE, "status", "Status pendaftaran", "the status")
        for line in (
            "Email: terverifikasi",
            "NIK: cocok",
            f"Gelombang: Gelombang {batch}",
            "Seleksi: menunggu pengumuman",
        ):
            assert line in status

        transcript.say(STRANGER, "status", "belum terdaftar", "the stranger's status")
        to_stranger = "\n".join(transcript.bodies_to(STRANGER))
        for secret in (NIK, KK, "SITI", "RAHAYU", EMAIL, f"Gelombang {batch}"):
            assert secret.lower() not in to_stranger.lower(), f"{secret} leaked"

        check_bodies(
            transcript,
            lambda body: "the e-mail code in an SMS" if code in body else None,
        )
        check_registry(site)
        check_tracker_store(site)
    print(transcript.render(logs=False))  # shown by `pytest -rP`
