"""Tests for FAQ answers rendered from the policy, and for text hygiene."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from bot.policy.answers import (
    FAQ_INTENTS,
    call_center_text,
    detect_topic,
    next_opening,
    render_answer,
)
from bot.policy.eligibility import QUESTIONS, EligibilityAnswers, assess, question_text
from bot.policy.programme import ENV_VAR, WIB, format_rupiah, load_policy
from bot.policy.texts import load_texts, render_text, section
from bot.policy.validation import validate_email, validate_kk, validate_nik

VERSIONS = ("2020", "2020-10", "2021", "2023")
MAX_LEN = 450

# GSM 03.38 default alphabet and its extension table (extension chars cost 2).
GSM7_BASIC = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df"
    "\u00c9 !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "\u00c4\u00d6\u00d1\u00dc\u00a7\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1"
    "\u00fc\u00e0"
)
GSM7_EXTENSION = "^{}\\[~]|\u20ac\f"


def gsm7_septets(text: str) -> int | None:
    """Length in GSM-7 septets, or None if ``text`` is not GSM-7 encodable."""
    length = 0
    for char in text:
        if char in GSM7_BASIC:
            length += 1
        elif char in GSM7_EXTENSION:
            length += 2
        else:
            return None
    return length


def test_gsm7_helper() -> None:
    assert gsm7_septets("Rp3.550.000 @ ok") == 16
    assert gsm7_septets("{x}") == 5
    for bad in ("\u2013", "\u201chai\u201d", "\U0001f600", "`"):
        assert gsm7_septets(bad) is None


def assert_sms_safe(text: str) -> None:
    assert text.strip() == text and text
    assert text.isascii(), text
    assert gsm7_septets(text) is not None, text
    assert len(text) <= MAX_LEN, (len(text), text)
    assert "{" not in text and "}" not in text, text
    assert "  " not in text and " ." not in text and " ," not in text, text
    assert "/ " not in text and "()" not in text, text


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _intent_texts() -> Iterator[tuple[str, str | None, str]]:
    """(intent, topic, sample text) for every general answer and topic."""
    for intent, entry in load_texts()["intents"].items():
        yield intent, None, ""
        for topic, spec in (entry.get("topics") or {}).items():
            sample = next(k for k in spec["keywords"] if not k.startswith("re:"))
            yield intent, topic, sample


ALL_TEXTS = list(_intent_texts())


def test_faq_intents_exact() -> None:
    expected = {
        "ask_program_info", "ask_eligibility", "ask_benefits", "ask_how_to_register",
        "ask_test", "ask_batch", "ask_selection_result", "ask_training",
        "ask_incentive", "ask_survey", "report_scam", "email_problem", "nik_problem",
        "photo_problem", "otp_problem", "account_problem", "start_registration",
        "check_status",
    }  # fmt: skip
    assert expected == FAQ_INTENTS


def test_texts_file_covers_exactly_the_faq_intents() -> None:
    assert set(load_texts()["intents"]) == FAQ_INTENTS


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("intent", "topic", "sample"), ALL_TEXTS)
def test_every_answer_renders_sms_safe(
    version: str, intent: str, topic: str | None, sample: str
) -> None:
    assert detect_topic(intent, sample) == topic
    answer = render_answer(intent, load_policy(version), sample)
    assert_sms_safe(answer)


@pytest.mark.parametrize("intent", sorted(FAQ_INTENTS))
def test_plain_question_gets_general_answer(intent: str) -> None:
    policy = load_policy("2020")
    general = load_texts()["intents"][intent]["general"]
    assert render_answer(intent, policy) == render_text(general, policy)


def test_unknown_intent_rejected() -> None:
    with pytest.raises(ValueError, match="greet"):
        render_answer("greet", load_policy("2020"))


# --- no hard-coded facts in templates -----------------------------------------


def _template_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("keywords", "exclude", "questions"):
                continue  # matching data and date examples, not answers
            yield from _template_strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _template_strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


TEMPLATES = list(_template_strings(load_texts.__wrapped__()))


@pytest.mark.parametrize(("where", "template"), TEMPLATES)
def test_templates_hold_no_numbers_or_contacts(where: str, template: str) -> None:
    assert not re.search(r"\d", template), where
    assert "prakerja.go.id" not in template.lower(), where
    assert "rp" not in re.findall(r"[a-z]+", template.lower()), where


# --- switching the policy changes what the bot says ----------------------------


def test_benefit_total_follows_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    totals = {}
    for version in ("2020", "2023"):
        monkeypatch.setenv(ENV_VAR, version)
        policy = load_policy()
        answer = render_answer("ask_benefits", policy, "totalnya dapat berapa?")
        assert format_rupiah(policy.benefits.total) in answer
        totals[version] = answer
    assert "Rp3.550.000" in totals["2020"] and "Rp4.200.000" in totals["2023"]
    assert "Rp4.200.000" not in totals["2020"]


@pytest.mark.parametrize(
    ("version", "expected", "absent"),
    [
        ("2020", ["Rp1.000.000", "Rp600.000", "4 bulan", "Rp150.000"], ["sekali"]),
        ("2023", ["Rp3.500.000", "Rp600.000 (sekali)", "Rp100.000"], ["4 bulan"]),
    ],
)
def test_benefit_breakdown(
    version: str, expected: list[str], absent: list[str]
) -> None:
    answer = render_answer("ask_benefits", load_policy(version), "manfaatnya apa")
    for part in expected:
        assert part in answer
    for part in absent:
        assert part not in answer


@pytest.mark.parametrize(("version", "days"), [("2020", "30"), ("2023", "15")])
def test_training_deadline_follows_policy(version: str, days: str) -> None:
    answer = render_answer("ask_training", load_policy(version), "batas waktunya?")
    assert f"{days} hari" in answer


def test_age_and_kk_rules_follow_policy() -> None:
    p2020, p2021, p2023 = (load_policy(v) for v in ("2020", "2021", "2023"))
    assert "tanpa batas usia maksimal" in render_answer(
        "ask_eligibility", p2020, "umur"
    )
    assert "18-64" in render_answer("ask_eligibility", p2023, "batas umur?")
    assert "gelombang 18" in render_answer("ask_eligibility", p2021, "usia maks?")
    assert "tidak ada batas" in render_answer("ask_eligibility", p2020, "satu kk")
    assert "maksimal 2" in render_answer("ask_eligibility", p2023, "satu kk")
    general_2020 = render_answer("ask_eligibility", p2020, "syaratnya apa?")
    general_2023 = render_answer("ask_eligibility", p2023, "syaratnya apa?")
    assert "minimal 18" in general_2020 and "KK" not in general_2020
    assert "18-64" in general_2023 and "2 orang per KK" in general_2023


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("2020", "tidak diprioritaskan"),
        ("2021", "tidak bisa ikut"),
        ("2023", "tetap boleh ikut"),
    ],
)
def test_social_aid_answer_follows_policy(version: str, fragment: str) -> None:
    answer = render_answer("ask_eligibility", load_policy(version), "penerima bansos?")
    assert fragment in answer


def test_test_answer_numbers_only_when_known() -> None:
    assert "18 soal" in render_answer("ask_test", load_policy("2020"))
    assert "soal" not in render_answer("ask_test", load_policy("2023"))


def test_batch_answer_uses_wave_data() -> None:
    answer = render_answer("ask_batch", load_policy("2020"), "kuotanya berapa")
    assert "164.000" in answer
    general = render_answer("ask_batch", load_policy("2020"))
    assert "11 April 2020 pukul 19.00 WIB" in general
    assert "16 April 2020 pukul 16.00 WIB" in general
    assert "164.000" not in render_answer("ask_batch", load_policy("2021"), "kuota")


# --- specific questions get specific answers -----------------------------------


@pytest.mark.parametrize(
    ("intent", "text", "topic"),
    [
        ("ask_eligibility", "mahasiswa boleh daftar?", "student"),
        ("ask_eligibility", "MAHASISWA BOLEH DAFTAR??", "student"),
        ("ask_eligibility", "sy msh kuliah, bisa ikut gk", "student"),
        ("ask_eligibility", "anak sma bisa?", "student"),
        ("ask_eligibility", "kalau PNS boleh ikut?", "civil_servant"),
        ("ask_eligibility", "sy perangkat desa min", "civil_servant"),
        ("ask_eligibility", "istri polisi boleh?", "civil_servant"),
        ("ask_eligibility", "umur 17 bisa daftar?", "age"),
        ("ask_eligibility", "batas usia berapa", "age"),
        ("ask_eligibility", "saya 60 thn masih bisa?", "age"),
        ("ask_eligibility", "penerima bansos boleh?", "social_aid"),
        ("ask_eligibility", "sy dapat bsu, bisa daftar?", "social_aid"),
        (
            "ask_eligibility",
            "sudah pernah jadi peserta boleh daftar lagi?",
            "prior_participant",
        ),
        ("ask_eligibility", "kepesertaan saya dicabut", "prior_participant"),
        ("ask_eligibility", "suami sudah daftar, saya boleh?", "kk"),
        ("ask_eligibility", "satu kartu keluarga boleh berapa orang", "kk"),
        ("ask_eligibility", "wna bisa ikut?", "citizenship"),
        ("ask_eligibility", "karyawan swasta boleh?", "employed"),
        ("ask_eligibility", "saya korban phk", "employed"),
        ("ask_eligibility", "syaratnya apa?", None),
        ("ask_eligibility", "belum pernah daftar, syaratnya apa", None),
        ("ask_benefits", "insentifnya berapa", "incentive"),
        ("ask_benefits", "saldo pelatihannya berapa", "training_balance"),
        ("ask_benefits", "survei dapat berapa", "survey"),
        ("ask_benefits", "totalnya berapa", "total"),
        ("ask_benefits", "dapat apa aja", "total"),
        ("ask_benefits", "manfaatnya apa", None),
        ("ask_incentive", "insentif belum cair", "not_paid"),
        ("ask_incentive", "insentif ovo blm masuk", "not_paid"),
        ("ask_incentive", "cara sambungkan gopay", "ewallet"),
        ("ask_incentive", "dana tertahan", "held"),
        ("ask_incentive", "status gagal transfer", "held"),
        ("ask_training", "sertifikat belum muncul", "certificate"),
        ("ask_training", "berapa hari batas beli pelatihan", "deadline"),
        ("ask_training", "sisa saldo bisa dicairkan?", "balance"),
        ("ask_training", "cara beli pelatihan", "buy"),
        ("ask_batch", "kapan gelombang berikutnya dibuka", "next"),
        ("ask_batch", "kuotanya berapa", "quota"),
        ("ask_batch", "gelombang tidak ditemukan", "not_found"),
        (
            "ask_batch",
            "kok tulisannya gelombang tidak ditemukan, kapan buka?",
            "not_found",
        ),
        ("ask_batch", "cara gabung gelombang", "join"),
        ("account_problem", "lupa password", "forgot_password"),
        ("account_problem", "lupa pw gak bisa login", "forgot_password"),
        ("account_problem", "akun saya diblokir", "blocked"),
        ("account_problem", "akun keblokir gak bisa login", "blocked"),
        ("account_problem", "mau ganti nomor hp", "change_phone"),
        ("account_problem", "ganti email gimana", "change_email"),
        ("account_problem", "gagal login terus", "login"),
        ("ask_program_info", "daftarnya bayar gak?", "cost"),
        ("ask_program_info", "bisa daftar lewat disnaker?", "offline"),
        ("ask_program_info", "web resminya apa", "official_site"),
        ("ask_program_info", "kartunya dikirim ke rumah?", "physical_card"),
        ("ask_program_info", "apa itu kartu prakerja", None),
        ("ask_selection_result", "kenapa saya tidak lolos", "why_failed"),
        ("ask_selection_result", "udah 3 kali gagal", "failed_three"),
        ("ask_selection_result", "kapan pengumuman", "when"),
        ("nik_problem", "nik tidak terdaftar", None),
        ("nik_problem", "nik sudah digunakan", "already_used"),
        ("nik_problem", "tanggal lahir tidak sesuai", "mismatch"),
        ("nik_problem", "nomor kk gagal", "kk"),
        ("email_problem", "email verifikasi belum masuk", None),
        ("email_problem", "emailnya tidak valid", "invalid"),
        ("otp_problem", "otp gak masuk", None),
    ],
)
def test_detect_topic(intent: str, text: str, topic: str | None) -> None:
    assert detect_topic(intent, text) == topic


def test_detect_topic_unknown_intent_or_empty() -> None:
    assert detect_topic("greet", "mahasiswa") is None
    assert detect_topic("ask_eligibility", "") is None
    assert detect_topic("ask_eligibility", "?!") is None


@pytest.mark.parametrize("version", VERSIONS)
def test_students_answer_is_about_students_only(version: str) -> None:
    answer = render_answer("ask_eligibility", load_policy(version), "mahasiswa boleh?")
    assert "mahasiswa" in answer.lower()
    assert "KK" not in answer and "Kartu Keluarga" not in answer
    assert "bansos" not in answer.lower()


@pytest.mark.parametrize("version", VERSIONS)
def test_general_eligibility_lists_all_rules(version: str) -> None:
    policy = load_policy(version)
    answer = render_answer("ask_eligibility", policy, "syaratnya apa?")
    for part in ("WNI", "18", "sekolah", "ASN", "belum pernah menerima"):
        assert part in answer
    assert ("KK" in answer) is (policy.eligibility.kk_cap is not None)
    assert "bansos" in answer


@pytest.mark.parametrize("version", VERSIONS)
def test_scam_answer_has_the_four_safety_points(version: str) -> None:
    policy = load_policy(version)
    answer = render_answer("report_scam", policy, "ada yang nawarin joki")
    assert "GRATIS" in answer
    assert policy.contacts.site_url in answer
    assert f"@{policy.contacts.email_domain}" in answer
    assert "OTP" in answer
    assert "menjamin lolos" in answer


@pytest.mark.parametrize("version", VERSIONS)
def test_otp_photo_nik_answers_use_policy(version: str) -> None:
    policy = load_policy(version)
    otp = render_answer("otp_problem", policy)
    if policy.otp.max_resends is None:
        assert "kali" not in otp and "jam" not in otp.replace("(", " ").split("WIB")[-1]
    else:
        assert f"{policy.otp.max_resends} kali" in otp
        assert f"{policy.otp.wait_hours} jam" in otp
    photo = render_answer("photo_problem", policy)
    assert "JPG/PNG" in photo and f"{policy.photo.max_mb} MB" in photo
    assert policy.contacts.halo_dukcapil in render_answer("nik_problem", policy)


# --- call center ------------------------------------------------------------------


def test_call_center_2020_phone_weekdays() -> None:
    text = call_center_text(load_policy("2020"))
    assert "021-25541246" in text and "info@prakerja.go.id" in text
    assert "Senin-Jumat" in text and "08.00-19.00 WIB" in text
    assert "telepon" in text
    assert_sms_safe(text)


@pytest.mark.parametrize("version", ["2020-10", "2021"])
def test_call_center_daily(version: str) -> None:
    text = call_center_text(load_policy(version))
    assert "0800-150-3001" in text
    assert "setiap hari" in text and "08.00-20.00 WIB" in text
    assert "live chat" in text
    assert_sms_safe(text)


def test_call_center_2023_is_the_complaint_form_without_hours() -> None:
    # The sources give no call-center hours after 2021 (facts.md 7).
    text = call_center_text(load_policy("2023"), now=datetime(2023, 5, 7, 23, 0))
    assert "Formulir Pengaduan" in text and "WIB" not in text and "tutup" not in text
    assert_sms_safe(text)


@pytest.mark.parametrize(
    ("version", "now", "fragment"),
    [
        ("2020", datetime(2020, 4, 18, 10, 0), "buka lagi Senin pukul 08.00 WIB"),
        ("2020", datetime(2020, 4, 16, 21, 0), "buka lagi besok pukul 08.00 WIB"),
        ("2020", datetime(2020, 4, 16, 6, 0), "buka lagi hari ini pukul 08.00 WIB"),
        ("2021", datetime(2021, 5, 1, 22, 0), "buka lagi besok pukul 08.00 WIB"),
        ("2021", datetime(2021, 5, 1, 15, 0, tzinfo=WIB), None),
    ],
)
def test_call_center_now(version: str, now: datetime, fragment: str | None) -> None:
    text = call_center_text(load_policy(version), now=now)
    if fragment is None:
        assert "tutup" not in text
    else:
        assert fragment in text
    assert_sms_safe(text)


def test_next_opening() -> None:
    cc = load_policy("2020").contacts.call_center
    assert next_opening(cc, datetime(2020, 4, 17, 19, 30)) == datetime(
        2020, 4, 20, 8, 0, tzinfo=WIB
    )


# --- every other user-facing text is SMS safe ---------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_eligibility_texts_sms_safe(version: str) -> None:
    policy = load_policy(version)
    for question in QUESTIONS:
        assert_sms_safe(question_text(question, policy))
    texts = section("eligibility")
    extra = {"age": 17, "kk_count": 2, "question": "?", "eligible_date": "1 Mei 2021"}
    for group in ("reasons", "next_steps"):
        for template in texts[group].values():
            assert_sms_safe(render_text(template, policy, extra))
    verdict = assess(policy, EligibilityAnswers(), datetime(2021, 1, 1).date())
    assert_sms_safe(verdict.next_step)


@pytest.mark.parametrize(
    "message",
    [
        validate_nik("").error,
        validate_nik("123").error,
        validate_nik("12a4").error,
        validate_nik("0074091508900001").error,
        validate_nik("3100091508900001").error,
        validate_nik("3174093102900001").error,
        validate_nik("3174091508900000").error,
        validate_kk("123").error,
        validate_kk("0074010101200005").error,
        validate_email("budi_s@gmail.com").error,
        validate_email("budi@@gmail.com").error,
        validate_email(".budi@gmail.com").error,
        validate_email("budi@gmail").error,
        validate_email("budi@yahoo.co").warning,
        validate_email("budi@gmial.com").warning,
    ],
)
def test_validation_messages_sms_safe(message: str | None) -> None:
    assert message is not None
    assert_sms_safe(message)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_answer_fits_the_first_sms_page(version: str) -> None:
    """No answer is paged on a feature phone, so a closing question ("Mau saya
    cek syaratmu?") is always on the page the person sees."""
    from bot.channels.base import Reply
    from bot.channels.sms import SmsChannel

    channel = SmsChannel()
    policy = load_policy(version)
    for intent, topic, sample in ALL_TEXTS:
        answer = render_answer(intent, policy, sample)
        rendered = channel.render([Reply(text=answer)], {})
        assert not rendered.state.get("pages"), (intent, topic, answer)
        assert len(rendered.bodies) == 1
