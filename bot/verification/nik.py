"""The NIK check contract: request, result and the verifier protocol.

Outcomes follow the reasons a 2020 NIK check could fail (see docs/domain.md).
Reasons are Indonesian, GSM-7 safe and carry no personal data, so they can be
sent to the user and stored as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, get_args

Outcome = Literal[
    "verified",
    "unknown_nik",
    "data_mismatch",
    "student",
    "civil_servant",
    "already_participant",
    "kk_full",
    "unavailable",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

REASONS: dict[str, str] = {
    "verified": "NIK kamu sudah cocok dengan data Dukcapil.",
    "unknown_nik": (
        "NIK tidak ditemukan di data Dukcapil. Cek lagi NIK di KTP kamu; jika "
        "sudah benar, hubungi Halo Dukcapil 1500537 atau Disdukcapil setempat."
    ),
    "data_mismatch": (
        "Nama, tanggal lahir atau nomor KK tidak sama dengan data Dukcapil. "
        "Tulis persis seperti di KTP dan KK kamu; jika datanya memang salah, "
        "perbaiki di Disdukcapil setempat."
    ),
    "student": (
        "Kamu masih tercatat sebagai pelajar atau mahasiswa di data Kemendikbud, "
        "jadi belum bisa ikut Kartu Prakerja. Jika sudah lulus atau keluar, minta "
        "sekolah atau kampus memperbarui datamu."
    ),
    "civil_servant": (
        "Kamu tercatat sebagai ASN/PNS, TNI, Polri, pejabat negara atau perangkat "
        "desa. Mereka tidak boleh menjadi peserta Kartu Prakerja."
    ),
    "already_participant": (
        "NIK ini sudah pernah menjadi penerima Kartu Prakerja. Kartu Prakerja "
        "hanya bisa diterima sekali seumur hidup."
    ),
    "kk_full": (
        "Kuota peserta untuk nomor KK ini sudah penuh, jadi NIK ini tidak bisa "
        "didaftarkan."
    ),
    "unavailable": (
        "Layanan pengecekan NIK di Dukcapil sedang sibuk. NIK kamu tidak ditolak; "
        "pengecekan akan dicoba lagi nanti."
    ),
}
# A fault on our side (bad request, unreadable answer): retrying will not help.
REASON_BROKEN = (
    "Pengecekan NIK gagal karena gangguan di sistem kami, bukan karena data kamu. "
    "Tim kami akan memperbaikinya; coba lagi nanti."
)


@dataclass(frozen=True)
class NikRequest:
    """What the applicant typed: NIK, KK number, full name and birth date."""

    nik: str
    kk_number: str
    full_name: str
    birth_date: date


@dataclass(frozen=True)
class NikCheckResult:
    """The verdict of a NIK check, with a reason to show the user."""

    outcome: str
    reason: str
    retryable: bool = False

    def __post_init__(self) -> None:
        """Refuse outcomes outside :data:`OUTCOMES`."""
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown NIK check outcome {self.outcome!r}")

    @property
    def verified(self) -> bool:
        """True when the NIK passed every check."""
        return self.outcome == "verified"


def result_for(outcome: str, *, retryable: bool | None = None) -> NikCheckResult:
    """The standard result for an outcome; only "unavailable" is retryable."""
    if retryable is None:
        retryable = outcome == "unavailable"
    reason = REASONS[outcome] if retryable or outcome != "unavailable" else None
    return NikCheckResult(outcome, reason or REASON_BROKEN, retryable)


class NikVerifier(Protocol):
    """Checks a NIK against a population registry (Dukcapil or a local stand-in)."""

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Check one applicant's NIK, KK, name and birth date."""
        ...
