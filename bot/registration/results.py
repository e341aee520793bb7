"""Texts about a batch's result: the announcement, reminders, what status says.

One SMS segment or two at most, GSM-7 only, in the member's policy version
(site, training balance, purchase deadline, the "failed n times" statement).
Facts: the 2020 announcement SMS (check the account, note the card number and
keep it secret), the purchase deadline (30 days, 15 from 2023) after which
participation is revoked, joining the next batch without registering again
(`/work/shared/docs/facts.md` 2.10-2.12, FAQ 26-28 and 35).
"""

from __future__ import annotations

from datetime import datetime, timezone

from bot.policy.programme import Policy, format_datetime, format_rupiah

EXCLUSION_REASONS = {
    "nik_unverified": "NIK kamu belum cocok dengan data Dukcapil",
    "already_participant": (
        "kamu sudah pernah menerima Kartu Prakerja (hanya sekali seumur hidup)"
    ),
    "kk_full": "kuota {cap} NIK per KK untuk KK kamu sudah terpakai",
    "consent_withdrawn": "persetujuan datamu sudah ditarik",
}
def when(moment: datetime) -> str:
    """A stored naive-UTC moment as Indonesian WIB text."""
    return format_datetime(moment.replace(tzinfo=timezone.utc))


NEXT_BATCH = "Gabung gelombang berikutnya tanpa daftar ulang: ketik GABUNG."


def exclusion_reason(reason: str | None, policy: Policy) -> str:
    """Why the re-check left a member out, as a short clause ("" if unknown)."""
    text = EXCLUSION_REASONS.get(reason or "", "")
    return text.format(cap=policy.eligibility.kk_cap or 2)


def statement_hint(policy: Policy) -> str:
    """What to do after failing the selection `failures_for_statement` times."""
    times = policy.selection.failures_for_statement
    return (
        f"Sudah {times} kali belum lolos? Kirim surat pernyataan 'gagal {times} "
        f"kali' ke email kepesertaan resmi (@{policy.contacts.email_domain})."
    )


def announcement_text(
    text_key: str,
    policy: Policy,
    batch_number: int,
    deadline: datetime | None = None,
    reason: str | None = None,
) -> str:
    """The result message of one member (`text_key` from the announcement row)."""
    head = f"Hasil seleksi Kartu Prakerja Gelombang {batch_number}:"
    if text_key == "selected":
        if deadline is None:
            raise ValueError("a selected member's message needs the deadline")
        balance = format_rupiah(policy.benefits.training_balance)
        return (
            f"Selamat! Kamu lolos Kartu Prakerja Gelombang {batch_number}, saldo "
            f"pelatihan {balance}. Cek akunmu di {policy.contacts.site}, catat "
            "nomor Kartu Prakerja-mu dan rahasiakan. Beli pelatihan pertama "
            f"sebelum {when(deadline)}; lewat dari itu kepesertaan dicabut."
        )
    if text_key == "excluded":
        why = exclusion_reason(reason, policy)
        if reason in ("already_participant", "consent_withdrawn"):
            return f"{head} kamu belum lolos karena {why}. Ketik STATUS."
        return f"{head} kamu belum lolos karena {why}. {NEXT_BATCH}"
    if text_key == "not_selected_again":
        return f"{head} kamu belum lolos. {NEXT_BATCH} {statement_hint(policy)}"
    if text_key == "not_selected":
        return f"{head} kamu belum lolos kali ini. {NEXT_BATCH}"
    raise ValueError(f"unknown announcement text {text_key!r}")


def reminder_text(deadline: datetime, days_before: int) -> str:
    """A reminder `days_before` days before the purchase deadline."""
    return (
        f"Pengingat Prakerja: {days_before} hari lagi batas beli pelatihan "
        f"pertamamu ({when(deadline)}). Beli di mitra resmi dengan nomor Kartu "
        "Prakerja-mu agar kepesertaan tidak dicabut."
    )


def selected_next(deadline: datetime | None) -> str:
    """Status: what a selected member does next."""
    if deadline is None:
        return "pilih dan beli pelatihan pertamamu di dashboard Prakerja."
    return (
        f"beli pelatihan pertamamu sebelum {when(deadline)} dengan nomor Kartu "
        "Prakerja di akunmu. Lewat dari itu, kepesertaan dicabut dan saldo hangus."
    )


def revoked_next(deadline: datetime) -> str:
    """Status: the card was revoked at the purchase deadline."""
    return (
        f"Kartu Prakerja-mu dicabut karena pelatihan pertama tidak dibeli sampai "
        f"{when(deadline)}. Kepesertaan yang dicabut tidak bisa ikut lagi."
    )
