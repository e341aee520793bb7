"""What people read about their data: short, "kamu", GSM-7 (no emoji, no curly
quotes), every personal value masked. The texts are in the catalogue
(``privacy.*``); the consent text states the retention period, so it is built
from the setting."""

from __future__ import annotations

from bot.policy.catalogue import module_texts, say, says
from bot.privacy.desk import HeldData

__getattr__ = module_texts(
    {
        "ERASURE_QUESTION": "privacy.erasure_question",
        "ERASURE_QUESTION_UNREGISTERED": "privacy.erasure_question_unregistered",
        "ERASURE_KEPT": "privacy.erasure_kept",
        "ERASURE_UNCLEAR": "privacy.erasure_unclear",
        "ERASED": "privacy.erased",
        "ERASED_UNREGISTERED": "privacy.erased_unregistered",
        "ERASURE_STOPPED": "privacy.erasure_stopped",
        "NO_EMAIL": "privacy.no_email",
        "WITHDRAWN": "privacy.withdrawn",
        "WITHDRAWN_NOTHING": "privacy.withdrawn_nothing",
        "NO_CALLER": "privacy.no_caller",
    }
)


def consent_text(days: int) -> str:
    """The consent question of the registration, in one SMS segment: what is
    kept, why, for how long, how to withdraw, and the question."""
    return say("privacy.consent", days=days)


def held_text(held: HeldData) -> str:
    """What is held about a registered person, masked, why and how long (2 SMS
    segments for usual names and addresses)."""
    labels = says("privacy.held_labels")
    values = ", ".join(f"{labels.get(key, key)} {value}" for key, value in held.fields)
    return say("privacy.held", values=values, days=held.retention_days)


def nothing_registered_text(days: int) -> str:
    """What is held about someone not registered from this chat."""
    return say("privacy.nothing_registered", days=days)


def code_sent_text(masked_email: str) -> str:
    """The code was mailed to the registered address (masked)."""
    return say("privacy.code_sent", email=masked_email)


def wait_text(minutes: int) -> str:
    """Too many codes were sent lately."""
    return say("privacy.wait", minutes=minutes)


def wrong_code_text(attempts_left: int) -> str:
    """A wrong code, with the tries left."""
    return say("privacy.wrong_code", attempts_left=attempts_left)


def code_refused_text(outcome: str) -> str:
    """Why a code was refused (expired, too many attempts, used, none)."""
    refused = says("privacy.code_refused")
    return refused.get(outcome, refused["no_code"])
