"""The e-mails the registration sends: one-time codes, in Indonesian."""

from __future__ import annotations

from bot.registry.email_codes import CODE_TTL

MINUTES = int(CODE_TTL.total_seconds() // 60)

SUBJECTS = {
    "register": "Kode verifikasi email Kartu Prakerja",
    "link": "Kode untuk menghubungkan akun chat Kartu Prakerja",
    "erase": "Kode untuk menghapus data Kartu Prakerja kamu",
}
PURPOSES = {
    "register": "memverifikasi email pendaftaran Kartu Prakerja kamu",
    "link": "menghubungkan akun chat baru dengan pendaftaran Kartu Prakerja kamu",
    "erase": "menghapus semua data pendaftaran Kartu Prakerja kamu",
}


def code_mail(code: str, purpose: str) -> tuple[str, str]:
    """Subject and body of a code mail; `purpose` is "register", "link" or "erase"."""
    body = (
        f"Halo,\n\nKode untuk {PURPOSES[purpose]}: {code}\n\n"
        f"Ketik kode ini di chat dengan asisten Kartu Prakerja. Kode berlaku "
        f"{MINUTES} menit dan hanya bisa dipakai sekali.\n\n"
        "Jangan berikan kode ini kepada siapa pun, termasuk yang mengaku petugas. "
        "Jika kamu tidak meminta kode ini, abaikan email ini.\n\n"
        "Kartu Prakerja (layanan ini gratis)\n"
    )
    return SUBJECTS[purpose], body
