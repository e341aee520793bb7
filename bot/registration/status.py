"""Short Indonesian texts about a registration: status, next action, results.

Every text is GSM-7 and sized for one or two SMS. The commands it tells people
to type (DAFTAR, GABUNG, STATUS, PETUGAS) are understood by the NLU model.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.policy.programme import (
    format_date,
    format_number,
    load_policy,
)
from bot.registration.desk import JoinResult, Standing, Submission
from bot.registration.results import revoked_next, selected_next, when
from bot.registry import BatchInfo
from bot.registry.models import (
    APPLICANT_REVOKED,
    RESULT_NOT_SELECTED,
    RESULT_PENDING,
    RESULT_SELECTED,
    STEP_DONE,
    STEP_EMAIL,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
)
from bot.verification.nik import REASONS

SHORT_REASONS = {
    "unknown_nik": "NIK tidak ditemukan di data Dukcapil",
    "data_mismatch": "nama, tanggal lahir atau KK tidak cocok dengan Dukcapil",
    "student": "masih tercatat pelajar/mahasiswa",
    "civil_servant": "tercatat ASN/PNS, TNI, Polri atau perangkat desa",
    "already_participant": "sudah pernah menerima Kartu Prakerja",
    "kk_full": "kuota peserta untuk KK ini sudah penuh",
    "unavailable": "layanan Dukcapil belum bisa dihubungi",
}
FINAL_REASONS = frozenset(
    {"student", "civil_servant", "already_participant", "kk_full"}
)
VERIFIED_SHORT = "cocok dengan Dukcapil."
REGISTER_AGAIN = "ketik DAFTAR untuk memperbaiki NIK, KK, nama atau tanggal lahir."


def batch_line(batch: BatchInfo) -> str:
    """``Gelombang 12: tutup 30 November 2026 pukul 23.59 WIB, sisa 40 tempat``."""
    return (
        f"Gelombang {batch.number}: tutup {when(batch.closes_at)}, "
        f"sisa {format_number(batch.places_left)} tempat"
    )


def _nik_state(standing: Standing) -> str:
    step = standing.steps[STEP_NIK]
    if step.status == STEP_DONE:
        return "cocok dengan Dukcapil"
    if step.status == STEP_PENDING:
        return "sedang dicek"
    if step.status == STEP_FAILED:
        return "gagal, " + SHORT_REASONS.get(step.failure_reason or "", "lihat alasan")
    return "belum dicek"


def _batch_state(standing: Standing) -> tuple[str, str]:
    membership = standing.current_membership
    if membership is None:
        return "belum ikut", "-"
    number = membership.batch_number
    if standing.now is not None and membership.card_revoked(standing.now):
        return f"Gelombang {number}", "lolos, lalu dicabut"
    result = {
        RESULT_PENDING: "menunggu pengumuman",
        RESULT_SELECTED: "lolos",
        RESULT_NOT_SELECTED: "belum lolos",
    }[membership.announced_result]
    return f"Gelombang {number}", result


def first_training_deadline(decided_at: datetime | None) -> str:
    """When the first training must be bought (the active policy's days after
    selection), and what happens otherwise."""
    days = load_policy().training.first_purchase_days
    if decided_at is None:
        by = f"dalam {days} hari setelah lolos"
    else:
        local = decided_at.replace(tzinfo=timezone.utc) + timedelta(hours=7)
        by = f"paling lambat {format_date((local + timedelta(days=days)).date())}"
    return (
        f"beli pelatihan pertamamu di dashboard Prakerja {by}. Lewat dari itu, "
        "kepesertaan dicabut dan saldo hangus."
    )


def next_action(standing: Standing) -> str:
    """The single next thing to do, as one sentence."""
    if standing.applicant.status == APPLICANT_REVOKED:
        return (
            "persetujuanmu sudah ditarik, jadi pendaftaran berhenti. Ketik HAPUS "
            "DATA untuk menghapus datamu."
        )
    nik = standing.steps[STEP_NIK]
    if nik.status == STEP_PENDING:
        return "tunggu hasil cek NIK, kami kabari di sini."
    if nik.status == STEP_FAILED:
        reason = nik.failure_reason or ""
        if reason == "unavailable":
            return "ketik DAFTAR untuk mengulang cek NIK."
        if reason in FINAL_REASONS:
            return "pendaftaran tidak bisa lanjut. Jika datamu salah, ketik PETUGAS."
        return REGISTER_AGAIN
    if nik.status != STEP_DONE:
        return "ketik DAFTAR untuk melanjutkan pendaftaran."
    membership = standing.current_membership
    result = membership.announced_result if membership is not None else None
    if membership is not None and result == RESULT_PENDING:
        return f"tunggu pengumuman seleksi Gelombang {membership.batch_number}."
    if membership is not None and result == RESULT_SELECTED:
        deadline = membership.purchase_deadline
        revoked = standing.now is not None and membership.card_revoked(standing.now)
        if deadline is None:  # recorded by hand, not by a publication
            return first_training_deadline(membership.decided_at)
        if revoked:
            return revoked_next(deadline)
        return selected_next(deadline)
    if standing.open_batches:
        batch = standing.open_batches[0]
        return (
            f"ketik GABUNG untuk ikut Gelombang {batch.number} "
            f"(tutup {when(batch.closes_at)})."
        )
    if standing.upcoming is not None:
        upcoming = standing.upcoming
        return (
            f"tunggu Gelombang {upcoming.number}, dibuka {when(upcoming.opens_at)}. "
            "Ketik GABUNG saat sudah dibuka."
        )
    return "tunggu pengumuman gelombang berikutnya."


def status_text(standing: Standing) -> str:
    """Each step with its state, then the next action (fits two SMS)."""
    email = (
        "terverifikasi"
        if standing.steps[STEP_EMAIL].status == STEP_DONE
        or standing.applicant.email_verified_at is not None
        else "belum"
    )
    batch, selection = _batch_state(standing)
    return "\n".join(
        [
            "Status pendaftaran Prakerja:",
            f"Email: {email}",
            f"NIK: {_nik_state(standing)}",
            f"Gelombang: {batch}",
            f"Seleksi: {selection}",
            f"Berikutnya: {next_action(standing)}",
        ]
    )


GAVE_UP = (
    "Layanan pengecekan NIK di Dukcapil belum bisa dihubungi setelah beberapa "
    "kali dicoba. NIK kamu tidak ditolak."
)


def failure_reason_text(reason: str | None) -> str:
    """The full reason of a failed NIK check (an "unavailable" failure means
    the retries were used up)."""
    if reason == "unavailable":
        return GAVE_UP
    return REASONS.get(reason or "", "")


def nik_result_text(standing: Standing) -> str:
    """The NIK check's result, told when it completes."""
    step = standing.steps[STEP_NIK]
    then = f"\nBerikutnya: {next_action(standing)}"
    if step.status == STEP_DONE:
        membership = standing.current_membership
        if standing.open_batches and membership is None:
            # One SMS with the numbered menu of the batch to join.
            batch = standing.open_batches[0]
            return (
                f"Cek NIK selesai: {VERIFIED_SHORT} Gelombang {batch.number} buka "
                f"sampai {when(batch.closes_at)}."
            )
        return f"Cek NIK selesai: {VERIFIED_SHORT}{then}"
    if step.status == STEP_FAILED:
        reason = failure_reason_text(step.failure_reason)
        return f"Cek NIK belum berhasil. {reason}{then}"
    return f"NIK kamu masih dicek. Berikutnya: {next_action(standing)}"


def nik_problem_text(standing: Standing) -> str:
    """What went wrong with the NIK (full reason) and what to do."""
    step = standing.steps[STEP_NIK]
    if step.status == STEP_FAILED:
        reason = failure_reason_text(step.failure_reason)
        return f"{reason}\nBerikutnya: {next_action(standing)}"
    return f"NIK kamu {_nik_state(standing)}. Berikutnya: {next_action(standing)}"


def submission_text(submission: Submission) -> str:
    """What to tell after the form was sent."""
    outcome = submission.outcome
    if outcome in ("queued", "corrected"):
        head = "Data diterima." if outcome == "queued" else "Perbaikan data diterima."
        return (
            f"{head} NIK kamu sedang dicek ke Dukcapil. Kami kabari di sini begitu "
            "selesai. Ketik STATUS kapan saja untuk melihat posisimu."
        )
    if outcome == "nik_taken":
        return (
            "NIK ini sudah terdaftar: satu NIK hanya untuk satu pendaftaran. Cek "
            "lagi NIK-mu; jika benar dan bukan kamu yang mendaftar, ketik PETUGAS."
        )
    if outcome == "kk_full":
        return REASONS["kk_full"] + " Ketik PETUGAS jika menurutmu ini salah."
    if outcome == "not_eligible":
        return " ".join(("Maaf, kamu belum bisa mendaftar.", *submission.reasons))
    if outcome == "email_unproven":
        return "Email kamu belum terverifikasi. Ketik DAFTAR untuk mengulang."
    if outcome == "no_consent":
        return "Pendaftaran butuh persetujuanmu dulu. Ketik DAFTAR untuk mulai."
    return "Kamu sudah terdaftar. Ketik STATUS untuk melihat posisimu."


JOIN_TEXTS = {
    "joined": (
        "Berhasil! Kamu ikut Gelombang {number}. Hasil seleksi diumumkan setelah "
        "gelombang ditutup. Ketik STATUS kapan saja."
    ),
    "already_joined": (
        "Kamu sudah ikut Gelombang {number}. Tunggu pengumuman seleksinya ya."
    ),
    "waiting": (
        "Kamu sedang ikut Gelombang {number}. Tunggu hasilnya dulu sebelum ikut "
        "gelombang lain."
    ),
    "full": "Maaf, kuota Gelombang {number} sudah penuh.{instead}",
    "closed": "Gelombang {number} sudah ditutup.{instead}",
    "not_open": "Gelombang {number} belum dibuka.{instead}",
    "no_batch": "Gelombang itu tidak ada.{instead}",
    "none_open": "Belum ada gelombang yang dibuka.{instead}",
    "selected": (
        "Kamu sudah lolos seleksi dan menjadi peserta. Selamat!\n"
        "Berikutnya: {deadline}"
    ),
    "revoked": (
        "Kartu Prakerja-mu sudah dicabut karena pelatihan pertama tidak dibeli "
        "tepat waktu. Kepesertaan yang dicabut tidak bisa ikut gelombang lagi."
    ),
    "not_ready": (
        "Belum bisa ikut gelombang: email dan NIK kamu harus terverifikasi dulu. "
        "Ketik STATUS untuk melihat posisimu."
    ),
    "not_registered": "Kamu belum terdaftar di sini. Ketik DAFTAR untuk mendaftar.",
    "not_eligible": "Maaf, kamu tidak bisa ikut gelombang.{reasons}",
}


def join_text(result: JoinResult) -> str:
    """What to tell after "gabung"."""
    if result.outcome == "choose":
        lines = [batch_line(choice) for choice in result.choices]
        return "\n".join(["Pilih gelombang (ketik GABUNG dan nomornya):", *lines])
    alternative = result.alternative
    if alternative is None:
        instead = ""
        if result.outcome == "none_open":
            instead = " Kami kabari saat gelombang baru dibuka."
    elif result.alternative_open:
        instead = (
            f" Gelombang {alternative.number} masih dibuka: ketik "
            f"GABUNG {alternative.number}."
        )
    else:
        instead = (
            f" Gelombang {alternative.number} dibuka {when(alternative.opens_at)}."
        )
    return JOIN_TEXTS[result.outcome].format(
        number=result.batch.number if result.batch else "",
        instead=instead,
        reasons="".join(f" {reason}" for reason in result.reasons),
        deadline=first_training_deadline(None) if result.outcome == "selected" else "",
    )
