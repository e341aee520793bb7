"""The topics that had no useful answer: each gets one that says what to do next,
right for every policy version (issue 10, point 5)."""

from __future__ import annotations

import pytest

from bot.policy.answers import asks_for_contact, detect_topic, render_answer
from bot.policy.programme import known_versions, load_policy

VERSIONS = known_versions()

# (intent, a message written the way people post, the sub-topic, words of the
# next step every version's answer must hold)
CASES = [
    ("nik_problem", "lho nik saya katanya sudah terdaftar, belum pernah daftar kok",
     "already_used", ("Lupa Password", "NIK")),
    ("ask_incentive", "status insentifku belum diproses dari minggu lalu",
     "status", ("Belum diproses", "rating dan ulasan", "rekening")),
    ("ask_incentive", "insentif gagal cair ke gopay, gimana",
     "held", ("Perbaiki", "dijadwalkan ulang")),
    ("ask_incentive", "insentif cair berapa hari kerja sih setelah syarat lengkap",
     "not_paid", ("hari kerja",)),
    ("ask_selection_result", "arti tulisan sedang dievaluasi di dashboard apa",
     "dashboard_status", ("Riwayat Gelombang", "gelombang berikutnya")),
    ("ask_training", "mau refund pelatihan bisa?", "refund", ("CS platform",)),
    ("ask_training", "video pelatihan tidak bisa diputar", "cannot_open",
     ("CS platform", "browser lain")),
    ("ask_training", "ngasih bintang sama ulasan pelatihan dimana", "review",
     ("rating dan ulasan", "insentif")),
    ("ask_training", "kartu saya dicabut kenapa", "revoked",
     ("hari setelah lolos", "bukti pembelian")),
    ("ask_test", "tes error gak bisa submit", "submit_failed", ("Refresh",)),
    ("ask_eligibility", "umur 65 tahun bisa daftar?", "age", ("tahun",)),
    ("ask_eligibility", "saya guru honorer boleh ikut?", "honorary",
     ("boleh daftar",)),
    ("photo_problem", "verifikasi wajah gagal terus", "face", ("kacamata",)),
    ("account_problem", "cara hapus akun prakerja", "delete", ("HAPUS DATA",)),
    ("account_problem", "akun saya dibuatin orang lain", "someone_else",
     ("Lupa Password", "OTP")),
    ("account_problem", "lupa email buat login prakerja", "forgot_email",
     ("Lupa Password", "NIK", "info@prakerja.go.id")),
]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("intent", "text", "topic", "words"), CASES)
def test_each_gap_gets_an_answer_with_the_next_step(
    version: str, intent: str, text: str, topic: str, words: tuple[str, ...]
) -> None:
    assert detect_topic(intent, text) == topic
    answer = render_answer(intent, load_policy(version), text)
    for word in words:
        assert word in answer, (word, answer)
    assert "?" in answer or "." in answer


# (intent, message, version, what that version's answer says)
PER_VERSION = [
    ("ask_eligibility", "umur 65 tahun", "2020", "tanpa batas usia maksimal"),
    ("ask_eligibility", "umur 65 tahun", "2021", "sejak gelombang 18"),
    ("ask_eligibility", "umur 65 tahun", "2023",
     "Sudah lewat 64 tahun? Sayangnya tidak bisa ikut"),
    ("account_problem", "ganti nomor hp", "2020", "call center 021-25541246"),
    ("account_problem", "ganti nomor hp", "2021", "call center 0800-150-3001"),
    ("account_problem", "ganti nomor hp", "2023", "Profil > Ubah Nomor Handphone"),
    ("photo_problem", "verifikasi wajah", "2020", "tidak ada verifikasi wajah"),
    ("photo_problem", "verifikasi wajah", "2023", "kedipkan mata"),
    ("ask_training", "ulasan", "2020", "sesuai petunjuk di akunmu"),
    ("ask_training", "ulasan", "2021", "diberikan di dashboard"),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "text", "version", "said"), PER_VERSION)
def test_the_answer_follows_the_version(
    intent: str, text: str, version: str, said: str
) -> None:
    assert said in render_answer(intent, load_policy(version), text)


def test_failing_three_times_names_the_address_only_from_2021() -> None:
    text = "sudah 3 kali tidak lolos"
    assert "kepesertaan@" not in render_answer(
        "ask_selection_result", load_policy("2020"), text
    )
    assert "kepesertaan@prakerja.go.id" in render_answer(
        "ask_selection_result", load_policy("2021"), text
    )


@pytest.mark.parametrize(
    ("text", "contact"),
    [
        ("nomor call center prakerja berapa", True),
        ("minta no telp cs", True),
        ("jam buka cs prakerja", True),
        ("email pengaduan prakerja apa", True),
        ("sambungkan ke petugas", False),
        ("mau ngobrol sama orang", False),
        ("tolong hubungkan ke cs", False),
    ],
)
def test_a_request_for_the_contact_is_told_apart(text: str, contact: bool) -> None:
    assert asks_for_contact(text) is contact
