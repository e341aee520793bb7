"""Indonesian labels for codes shown in the console, and time formatting (WIB).

Codes (reasons, channels, statuses, steps) are stored in English; agents read
Indonesian. An unknown code is shown as the code itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.registration.status import short_reasons

WIB_OFFSET = timedelta(hours=7)

CHANNELS = {"telegram": "Telegram", "sms": "SMS"}
TICKET_REASONS = {
    "request_human": "Minta petugas",
    "fallback": "Bot tidak paham",
    "complaint": "Keluhan",
    "unfixable": "Masalah data",
}
TICKET_STATUSES = {
    "open": "Antre",
    "assigned": "Ditangani",
    "resolved": "Selesai",
    "cancelled": "Dibatalkan",
}
ROLES = {"agent": "Petugas", "supervisor": "Supervisor"}
AUTHORS = {
    "user": "Pengguna",
    "bot": "Asisten",
    "agent": "Petugas",
    "system": "Sistem",
}
DELIVERY = {
    "pending": "menunggu dikirim",
    "sent": "terkirim",
    "delivered": "diterima",
    "failed": "gagal dikirim",
    "undelivered": "tidak sampai",
    "unknown": "mungkin terkirim",
}
STEPS = {
    "email": "Email",
    "nik": "NIK (Dukcapil)",
    "photo": "Foto KTP",
    "test": "Tes online",
    "batch": "Gelombang",
    "selection": "Seleksi",
}
STEP_STATUSES = {
    "not_started": "belum",
    "pending": "sedang diproses",
    "done": "selesai",
    "failed": "gagal",
}
# A pending step told as the person experiences it (default: STEP_STATUSES).
PENDING_STEPS = {
    "nik": "sedang dicek",
    "selection": "menunggu pengumuman",
}
MEMBERSHIP_RESULTS = {
    "pending": "menunggu pengumuman",
    "selected": "lolos",
    "not_selected": "belum lolos",
}
APPLICANT_STATUSES = {
    "registered": "terdaftar",
    "participant": "peserta",
    "revoked": "dicabut",
}
AUDIT_ACTIONS = {
    "login": "masuk",
    "login_failed": "gagal masuk",
    "login_alert": "banyak gagal masuk",
    "logout": "keluar",
    "claim": "ambil tiket",
    "assign": "tugaskan tiket",
    "reply": "balas",
    "note": "catatan",
    "resolve": "selesaikan tiket",
    "reveal": "buka data pribadi",
    "agent_created": "petugas dibuat",
    "agent_activated": "akun diaktifkan",
    "agent_deactivated": "akun diblokir",
    "password_set": "kata sandi diganti",
    "batch_scheduled": "gelombang dibuka/dijadwalkan",
    "batch_closed": "gelombang ditutup",
    "batch_selected": "seleksi dijalankan",
    "batch_published": "hasil diumumkan",
    "batch_announce_paused": "pengiriman hasil dijeda",
    "batch_announce_resumed": "pengiriman hasil dilanjutkan",
}
RUN_STAGES = {
    "scheduled": "dijadwalkan",
    "open": "dibuka",
    "ended": "waktu habis, belum ditutup",
    "closed": "ditutup",
    "selecting": "seleksi berjalan",
    "selected": "seleksi selesai, belum diumumkan",
    "published": "hasil diumumkan",
}
EXCLUDED_REASONS = {
    "nik_unverified": "NIK belum terverifikasi",
    "already_participant": "sudah pernah menerima",
    "kk_full": "kuota KK penuh",
    "consent_withdrawn": "persetujuan ditarik",
}
NOTICE_STATUSES = {
    "pending": "terjadwal",
    "sent": "terkirim",
    "cancelled": "dibatalkan",
}
MESSAGE_STATUSES = {
    "pending": "menunggu dikirim",
    "queued": "di antrean kirim",
    "sent": "terkirim",
    "delivered": "diterima",
    "failed": "gagal",
    "skipped": "dilewati (berhenti langganan)",
}


def __getattr__(name: str) -> dict[str, str]:
    """``FAILURE_REASONS``: the applicant's short reasons (text catalogue) and
    the selection's."""
    if name == "FAILURE_REASONS":
        return {**short_reasons(), "not_selected": "belum lolos seleksi"}
    raise AttributeError(name)


def label(table: dict[str, str], code: str | None) -> str:
    """The Indonesian label of a code ("-" for none)."""
    if code is None:
        return "-"
    return table.get(code, code)


def wib(moment: datetime | None) -> str:
    """A naive-UTC moment as `dd/mm HH.MM` WIB ("-" for none)."""
    if moment is None:
        return "-"
    return (moment + WIB_OFFSET).strftime("%d/%m %H.%M")


def wib_day(moment: datetime | None) -> str:
    """A naive-UTC moment as `dd/mm/yyyy HH.MM` WIB ("-" for none)."""
    if moment is None:
        return "-"
    return (moment + WIB_OFFSET).strftime("%d/%m/%Y %H.%M")


def duration(span: timedelta | None) -> str:
    """A waiting time: `45 dtk`, `12 mnt`, `2 j 05 mnt` ("-" for none)."""
    if span is None:
        return "-"
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} dtk"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} mnt"
    return f"{minutes // 60} j {minutes % 60:02d} mnt"


def start_of_day_wib(now: datetime) -> datetime:
    """00:00 WIB of the WIB day of `now`, as naive UTC (both naive UTC)."""
    local = now + WIB_OFFSET
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - WIB_OFFSET
