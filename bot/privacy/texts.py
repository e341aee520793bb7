"""What people read about their data: short, "kamu", GSM-7 (no emoji, no curly
quotes), every personal value masked. The consent text states the retention
period, so it is built from the setting."""

from __future__ import annotations

from bot.privacy.desk import HeldData

PURPOSE = "hanya untuk pendaftaran dan seleksi Kartu Prakerja"


def consent_text(days: int) -> str:
    """The consent question of the registration, in one SMS segment: what is
    kept, why, for how long, how to withdraw, and the question."""
    return (
        "Kami simpan nama, email, NIK, KK, tgl lahir dan no HP-mu hanya untuk "
        f"daftar Prakerja, dihapus {days} hari setelah kamu tak aktif. Tarik: "
        "ketik HAPUS DATA. Setuju?"
    )


def held_text(held: HeldData) -> str:
    """What is held about a registered person, masked, why and how long (2 SMS
    segments for usual names and addresses)."""
    values = ", ".join(f"{label} {value}" for label, value in held.fields)
    return (
        f"Kami simpan: {values} dan chat ini, {PURPOSE}, dihapus "
        f"{held.retention_days} hari setelah kamu terakhir aktif. Ketik HAPUS DATA "
        "untuk menghapus."
    )


def nothing_registered_text(days: int) -> str:
    """What is held about someone not registered from this chat."""
    return (
        "Chat ini tidak terhubung dengan pendaftaran, jadi kami hanya menyimpan "
        f"riwayat chat ini, dihapus {days} hari setelah kamu terakhir aktif. "
        "Ketik HAPUS DATA untuk menghapusnya sekarang."
    )


ERASURE_QUESTION = (
    "Yakin mau hapus semua datamu? Pendaftaran Kartu Prakerja kamu berhenti dan "
    "tidak bisa dikembalikan. Balas YA atau TIDAK."
)
ERASURE_QUESTION_UNREGISTERED = "Yakin mau hapus riwayat chat ini? Balas YA atau TIDAK."
ERASURE_KEPT = "Oke, datamu tidak dihapus."
ERASURE_UNCLEAR = 'Jawab "ya" atau "tidak" ya.'
ERASED = (
    "Datamu sudah dihapus: pendaftaran, riwayat chat dan email kode. Kami hanya "
    "mencatat bahwa penghapusan ini terjadi, tanpa data pribadimu."
)
ERASED_UNREGISTERED = "Riwayat chat ini sudah dihapus."
ERASURE_STOPPED = "Datamu belum dihapus. Ketik HAPUS DATA untuk mencoba lagi nanti."
NO_EMAIL = (
    "Kode tidak bisa dikirim ke email pendaftaranmu saat ini. Datamu belum "
    "dihapus; coba lagi nanti atau ketik PETUGAS."
)


def code_sent_text(masked_email: str) -> str:
    """The code was mailed to the registered address (masked)."""
    return f"Kami kirim kode ke email {masked_email}."


def wait_text(minutes: int) -> str:
    """Too many codes were sent lately."""
    return (
        f"Sudah terlalu banyak kode dikirim. Coba lagi {minutes} menit lagi. "
        "Datamu belum dihapus."
    )


def wrong_code_text(attempts_left: int) -> str:
    """A wrong code, with the tries left."""
    return f"Kodenya salah. Sisa {attempts_left} kali coba."


CODE_REFUSED = {
    "expired": "Kodenya sudah kedaluwarsa.",
    "too_many_attempts": "Terlalu banyak kode salah.",
    "used": "Kode itu sudah dipakai.",
    "no_code": "Belum ada kode untuk penghapusan.",
}

WITHDRAWN = (
    "Persetujuanmu sudah ditarik. Kami berhenti memproses datamu, jadi "
    "pendaftaranmu tidak bisa dilanjutkan. Mau sekalian hapus datamu? Ketik "
    "HAPUS DATA."
)
WITHDRAWN_NOTHING = (
    "Kamu belum memberi persetujuan, jadi tidak ada data pendaftaran yang kami "
    "proses. Ketik HAPUS DATA untuk menghapus riwayat chat ini."
)
NO_CALLER = (
    "Data pribadi hanya bisa dilihat atau dihapus lewat Telegram atau SMS ke "
    "nomor resmi kami, dari akun yang mendaftar."
)
