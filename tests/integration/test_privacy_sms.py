"""A person registers over SMS, asks what is held, erases it with the e-mailed
code; afterwards no row, no Rasa tracker event and no e-mail file holds their
NIK, KK, e-mail, phone, birth date or name. Every real process runs (Rasa with
its SQL tracker store, the action server, the gateway); Twilio is a local fake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from bot.db import make_engine
from tests.integration.test_registration_sms import (
    BIRTH_DATE,
    EMAIL,
    KK,
    NAME,
    NIK,
    PHONE,
    POLL,
    RegistrationSite,
    SmsTranscript,
    check_bodies,
    emailed_code,
    running_sms_site,
    transcript_on_failure,
)

PERSONAL = (NIK, KK, EMAIL, PHONE, NAME, BIRTH_DATE, "1990-08-15", "15/08/1990")
SIMULATED_DUKCAPIL = "population_person"
"""The seeded stand-in for Dukcapil's records, not data the assistant keeps."""
PURGE_WAIT = 120.0  # the purge runs PURGE_DELAY (30 s) after the erasure


@pytest.fixture()
def privacy_site(tmp_path: Path) -> Iterator[RegistrationSite]:
    """As `registration_site`, with Rasa's tracker in a SQLite file the gateway
    knows (TRACKER_STORE_URL)."""
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    tracker_db = tmp_path / "rasa_tracker.db"
    shared = {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "TRACKER_STORE_URL": f"sqlite:///{tracker_db}",
        "EMAIL_OUTBOX_DIR": str(tmp_path / "email-outbox"),
        "PSEUDONYM_KEY": "privacy-sms-test-key",
        "SMTP_URL": "",
        "NIK_VERIFIER_URL": "",
    }
    with running_sms_site(tmp_path, shared) as (site, _):
        yield site


def leftovers(engine: Engine, skip: tuple[str, ...] = ()) -> list[str]:
    """`table: value` for each personal value found in any row of any table."""
    found = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            if table in skip:
                continue
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()  # noqa: S608
            for row in rows:
                line = " ".join(str(value) for value in row).lower()
                found.extend(
                    f"{table}: {value}" for value in PERSONAL if value.lower() in line
                )
    return sorted(set(found))


def mail_leftovers(outbox: Path) -> list[str]:
    """The outbox files that still name the person."""
    return [
        path.name
        for path in sorted(outbox.glob("*.eml"))
        if any(
            value.lower() in path.read_text(errors="replace").lower()
            for value in PERSONAL
        )
    ]


def everything_left(site: RegistrationSite) -> list[str]:
    """Personal data still held anywhere: database, tracker store, mail."""
    database = make_engine(site.database_url)
    tracker = make_engine(f"sqlite:///{site.work}/rasa_tracker.db")
    try:
        return [
            *leftovers(database, skip=(SIMULATED_DUKCAPIL,)),
            *(f"tracker {item}" for item in leftovers(tracker)),
            *(f"mail {name}" for name in mail_leftovers(site.outbox)),
        ]
    finally:
        database.dispose()
        tracker.dispose()


def test_register_see_and_erase_my_data_over_sms(
    privacy_site: RegistrationSite,
) -> None:
    site = privacy_site
    transcript = SmsTranscript(site)
    with transcript_on_failure(transcript):
        consent = transcript.say(PHONE, "daftar", "setuju", "the consent question")
        assert "365 hari" in consent
        transcript.say(PHONE, "setuju", "nama lengkap", "the name question")
        transcript.say(PHONE, NAME, "email", "the e-mail question")
        transcript.say(PHONE, EMAIL, "Kode 6 angka", "the code question")
        code = emailed_code(site.outbox, EMAIL)
        transcript.say(PHONE, code, "NIK", "the NIK question")
        transcript.say(PHONE, NIK, "Kartu Keluarga", "the KK question")
        transcript.say(PHONE, KK, "tanggal lahir", "the birth date question")
        submitted = transcript.send(PHONE, BIRTH_DATE)
        transcript.wait_for(PHONE, "Cek NIK selesai", submitted, "the NIK result")
        before = everything_left(site)
        assert any(item.startswith("tracker") for item in before), before

        held = transcript.say(
            PHONE, "data saya apa saja yang disimpan", "Kami simpan", "held"
        )
        assert f"{NIK[:4]}********{NIK[-4:]}" in held
        for value in PERSONAL:
            assert value.lower() not in held.lower(), f"{value} told in clear"

        transcript.say(PHONE, "hapus data saya", "YA atau TIDAK", "the question")
        transcript.say(PHONE, "ya", "kirim kode", "the erasure code sent")
        erase_code = emailed_code(site.outbox, EMAIL)
        assert erase_code != code
        transcript.say(PHONE, erase_code, "sudah dihapus", "the erasure done")

        deadline = time.monotonic() + PURGE_WAIT
        left = everything_left(site)
        while left and time.monotonic() < deadline:
            time.sleep(POLL * 5)
            left = everything_left(site)
        assert left == [], f"personal data left after the erasure: {left}"

        check_bodies(
            transcript,
            lambda body: "a code in an SMS" if erase_code in body else None,
        )
    print(transcript.render(logs=False))  # shown by `pytest -rP`
