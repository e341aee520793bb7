"""The trained model understands unseen informal messages and ignores unrelated text.

These messages are not in data/nlu (a test below checks that), so they measure
generalisation. Thresholds are floors that the current model clears with margin;
docs/benchmarks.md has the full measurement (make bench-nlu-compare; make bench-nlu
for the held-out set).
"""

import asyncio
import csv
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from bot.privacy.detect import DATE, EMAIL, find_personal_data
from bot.privacy.detect import NIK as NIK_KIND
from bot.privacy.vault import new_token
from tests.conftest import MODEL, ROOT, SHARED, require
from tests.nlu.test_training_data import training_data

# Unseen phrasings, as people type them, with the intent each must get.
UNSEEN: list[tuple[str, str]] = [
    ("gmn cara daftar", "ask_how_to_register"),
    ("nik sy gk kebaca", "nik_problem"),
    # The plainest question of all, which fell back before 2026-12-05 (found
    # trying `make run`): neither phrasing is in the training data.
    ("apa syarat prakerja", "ask_eligibility"),
    ("syarat buat ikut prakerja apa sih", "ask_eligibility"),
    ("mahasiswa boleh daftar?", "ask_eligibility"),
    ("selamat siang kak", "greet"),
    ("oke makasih banyak ya min", "thank"),
    ("ini yang bales robot bukan sih", "bot_challenge"),
    ("tolong hubungkan saya dengan cs manusia", "request_human"),
    ("resep rendang padang gimana", "out_of_scope"),
    ("prakerja itu program apa sih", "ask_program_info"),
    ("pns bisa ikut prakerja ga", "ask_eligibility"),
    ("bisa tolong dicek apa aku masuk kriteria", "check_eligibility"),
    ("dapet duit berapa kalo ikut prakerja", "ask_benefits"),
    ("daftarin saya prakerja sekarang juga", "start_registration"),
    ("status pendaftaran saya udah sampe mana", "check_status"),
    ("email verifikasinya ga nyampe2", "email_problem"),
    ("foto ktp ditolak terus", "photo_problem"),
    ("kode otp ga masuk ke hp saya", "otp_problem"),
    ("lupa kata sandi akun prakerja", "account_problem"),
    ("tes kemampuan dasarnya susah ga", "ask_test"),
    ("gelombang selanjutnya kapan dibuka min", "ask_batch"),
    ("kenapa aku gak lolos terus", "ask_selection_result"),
    ("sertifikat pelatihan saya belum keluar", "ask_training"),
    ("insentif bulan ini belum cair", "ask_incentive"),
    ("survei evaluasinya dimana ya", "ask_survey"),
    ("ada orang nawarin jasa joki biar lolos", "report_scam"),
    ("kecewa banget sama layanan prakerja", "complaint"),
    ("budi.santoso@gmail.com", "inform"),
    ("kode yg masuk 482913", "inform"),  # the e-mail code, asked for
    ("STOP", "stop"),
    ("halo", "greet"),
    ("P", "greet"),
    ("iya", "affirm"),
    ("tidak", "deny"),
    ("dadah sampai nanti", "goodbye"),
    ("iya bener", "affirm"),
    ("ngga deh", "deny"),
    ("data pribadi apa aja sih yg kalian simpen dr aku", "ask_my_data"),
    ("tolong hapusin semua dataku dong min", "request_erasure"),
    ("sy mau narik persetujuan data sy", "withdraw_consent"),
]


def _threshold() -> float:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            return float(component["threshold"])
    raise AssertionError("config.yml has no FallbackClassifier")


@pytest.fixture(scope="module")
def parse() -> Callable[[str], dict[str, Any]]:
    """Parse text with the trained model (loaded once)."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(require(MODEL, "run `make train` first")))
    loop = asyncio.new_event_loop()

    def run(text: str) -> dict[str, Any]:
        return loop.run_until_complete(agent.parse_message(text))

    return run


def test_unseen_messages_are_not_training_examples() -> None:
    ours = {m.get("text").strip().lower() for m in training_data().intent_examples}
    assert [t for t, _ in UNSEEN if t.lower() in ours] == []


def test_unseen_informal_messages_get_the_right_intent(
    parse: Callable[[str], dict[str, Any]],
) -> None:
    wrong = [
        (text, want, parse(text)["intent"]["name"])
        for text, want in UNSEEN
        if parse(text)["intent"]["name"] != want
    ]
    # At most 10% may miss (or fall back); the issue's own examples must all pass.
    assert len(wrong) <= len(UNSEEN) // 10, wrong
    must = {
        "gmn cara daftar",
        "nik sy gk kebaca",
        "mahasiswa boleh daftar?",
        "apa syarat prakerja",
    }
    assert [w for w in wrong if w[0] in must] == []


def test_entities_are_extracted(parse: Callable[[str], dict[str, Any]]) -> None:
    result = parse("email saya siti.rahma88@yahoo.co.id")
    assert ("email", "siti.rahma88@yahoo.co.id") in {
        (e["entity"], e["value"]) for e in result["entities"]
    }
    result = parse("no hp saya 0812-3456-7890")
    assert "phone" in {e["entity"] for e in result["entities"]}


def test_unrelated_indonesian_text_is_not_answered_as_prakerja(
    parse: Callable[[str], dict[str, Any]],
) -> None:
    """Held-out NusaX test sentences: few may get a Prakerja intent above threshold."""
    path = require(SHARED / "data" / "nusax-senti-id" / "test.csv", "held-out text")
    with path.open(newline="", encoding="utf-8") as handle:
        sentences = [" ".join(r["text"].split()) for r in csv.DictReader(handle)]
    threshold = _threshold()
    fired = []
    for sentence in sentences:
        intent = parse(sentence)["intent"]
        related = intent["name"] not in {"out_of_scope", "nlu_fallback"}
        if related and intent["confidence"] >= threshold:
            fired.append((sentence, intent["name"]))
    assert len(fired) / len(sentences) <= 0.06, fired[:20]


@pytest.mark.parametrize(
    ("typed", "intent"),
    [
        ("nik sy 3174011508900001 gk kebaca", "nik_problem"),
        ("email budi.santoso@gmail.com belum dapet kode", "email_problem"),
        ("kode verifikasi ga masuk ke budi.santoso@gmail.com", "email_problem"),
        # and the same values given as a form's answer stay answers (a problem
        # intent is no answer: the registration form would not take it)
        ("yang ini kak budi.santoso@gmail.com", "inform"),
        ("email yg biasa sy buka budi.santoso@gmail.com", "inform"),
        ("nomor induk kependudukan sy 3174011508900001", "inform"),
    ],
)
def test_a_nik_or_email_in_a_message_keeps_its_intent(
    parse: Callable[[str], dict[str, Any]], typed: str, intent: str
) -> None:
    """People paste their NIK or e-mail into a complaint: the answer is the
    problem's, typed and as the gateway hands it to Rasa (tokens), never the
    personal-data notice or the fallback (found trying `make run`); given as
    an answer, it is an answer."""
    tokenized = typed
    for span in reversed(find_personal_data(typed)):
        token = new_token(span.kind)
        tokenized = tokenized[: span.start] + token + tokenized[span.end :]
    assert tokenized != typed
    assert parse(typed)["intent"]["name"] == intent
    assert parse(tokenized)["intent"]["name"] == intent, tokenized


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("3174011508900001", NIK_KIND),
        ("nik saya 3174011508900001", NIK_KIND),
        ("3174010101150001", NIK_KIND),
        ("15-08-1990", DATE),
        ("lahir 15 agustus 1990", DATE),
        ("budi.santoso@gmail.com", EMAIL),
        ("email saya budi.santoso@gmail.com", EMAIL),
        ("cek syarat saya lahir 15-08-1990", DATE),
    ],
)
def test_tokens_read_like_the_values_they_stand_for(
    parse: Callable[[str], dict[str, Any]], typed: str, kind: str
) -> None:
    """The gateway hands Rasa tokens (bot.privacy.vault): the intent is the
    one of the real value, and birth dates and e-mails are still entities."""
    spans = find_personal_data(typed)
    tokenized = typed
    for span in reversed(spans):
        token = new_token(span.kind)
        tokenized = tokenized[: span.start] + token + tokenized[span.end :]
    real, handed = parse(typed), parse(tokenized)
    assert handed["intent"]["name"] == real["intent"]["name"], tokenized
    entities = {e["entity"] for e in handed["entities"]}
    if kind == DATE:
        assert "birth_date" in entities, handed["entities"]
    if kind == EMAIL:
        assert "email" in entities, handed["entities"]
