"""Canned answers for agents, rendered from the active programme policy.

The FAQ answers are the bot's own (`bot.policy.answers.render_answer`), so an
agent quotes exactly the figures, dates and contacts of the policy in force;
the call-center text gives the hours. A few fixed phrases open and close a
conversation. Registration and status answers are left out: over chat the bot
does those itself (the agent tells the person to type DAFTAR or STATUS).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.policy.answers import FAQ_INTENTS, call_center_text, render_answer
from bot.policy.catalogue import say
from bot.policy.programme import Policy

INTENT_LABELS = {
    "ask_program_info": "Tentang program",
    "ask_eligibility": "Syarat peserta",
    "ask_benefits": "Manfaat",
    "ask_how_to_register": "Cara daftar",
    "ask_test": "Tes online",
    "ask_batch": "Gelombang",
    "ask_selection_result": "Hasil seleksi",
    "ask_training": "Pelatihan",
    "ask_incentive": "Insentif",
    "ask_survey": "Survei",
    "report_scam": "Waspada penipuan",
    "email_problem": "Masalah email",
    "nik_problem": "Masalah NIK",
    "photo_problem": "Masalah foto KTP",
    "otp_problem": "Masalah kode OTP",
    "account_problem": "Masalah akun",
}
"""FAQ intents offered, in the order shown (labels are Indonesian)."""

FIXED_PHRASES = (
    ("greeting", "Salam pembuka", "console.greeting"),
    ("next_steps", "Lanjut di chat", "console.next_steps"),
    ("closing", "Salam penutup", "console.closing"),
)
"""(key, label for the agent, the text's key in the catalogue)."""


@dataclass(frozen=True)
class CannedAnswer:
    """One answer an agent can insert into the reply box."""

    key: str
    label: str
    text: str


_CACHE: dict[str, tuple[CannedAnswer, ...]] = {}


def canned_answers(policy: Policy) -> tuple[CannedAnswer, ...]:
    """The fixed phrases, the FAQ answers and the call-center hours (rendered
    once per policy version)."""
    cached = _CACHE.get(policy.version)
    if cached is None:
        cached = _CACHE[policy.version] = _render(policy)
    return cached


def _render(policy: Policy) -> tuple[CannedAnswer, ...]:
    answers = [
        CannedAnswer(key, label, say(text, policy))
        for key, label, text in FIXED_PHRASES
    ]
    for intent, label in INTENT_LABELS.items():
        if intent in FAQ_INTENTS:
            answers.append(CannedAnswer(intent, label, render_answer(intent, policy)))
    answers.append(CannedAnswer("call_center", "Call center", call_center_text(policy)))
    return tuple(answers)
