"""Refusals of a batch's lifecycle, each with a code and an Indonesian message."""

from __future__ import annotations

MESSAGES = {
    "not_found": "Gelombang tidak ditemukan.",
    "exists": "Gelombang dengan nomor itu sudah ada dengan jadwal atau kuota lain.",
    "bad_window": "Waktu tutup harus setelah waktu buka, dan belum lewat.",
    "bad_quota": "Kuota dan jumlah tempat harus lebih dari 0.",
    "places_over_quota": "Jumlah yang dipilih tidak boleh melebihi kuota gelombang.",
    "not_open_yet": "Gelombang belum dibuka, jadi belum bisa ditutup.",
    "already_closed": "Gelombang sudah ditutup.",
    "not_closed": "Tutup gelombang dulu sebelum seleksi.",
    "already_selected": "Seleksi gelombang ini sudah dijalankan; hasilnya tetap.",
    "not_selected": "Jalankan seleksi dulu sebelum mengumumkan hasil.",
    "already_published": "Hasil gelombang ini sudah diumumkan.",
    "over_places": "Jumlah yang dipilih melebihi tempat gelombang ini.",
    "not_published": "Pengiriman hasil baru bisa dijeda setelah hasil diumumkan.",
    "already_paused": "Pengiriman hasil gelombang ini sudah dijeda.",
    "not_paused": "Pengiriman hasil gelombang ini tidak sedang dijeda.",
}


class LifecycleError(Exception):
    """A step the policy or the batch's state forbids; nothing was written."""

    def __init__(self, code: str) -> None:
        """`code` is one of `MESSAGES`."""
        super().__init__(MESSAGES[code])
        self.code = code

    @property
    def message(self) -> str:
        """What to show the operator."""
        return MESSAGES[self.code]
