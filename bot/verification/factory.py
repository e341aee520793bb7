"""Choose the NIK verifier from the settings: Dukcapil over HTTP, or the local one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from bot.policy.programme import Policy
from bot.settings import Settings
from bot.verification.http_client import HttpNikVerifier
from bot.verification.nik import NikVerifier


def make_nik_verifier(
    settings: Settings, sessions: Callable[[], Session], policy: Policy
) -> NikVerifier:
    """`HttpNikVerifier` when NIK_VERIFIER_URL is set, else the local synthetic
    population (read through `sessions`) with the policy's per-KK cap."""
    if settings.nik_verifier_url:
        return HttpNikVerifier(settings.nik_verifier_url)
    from bot.verification.population import LocalPopulationVerifier

    return LocalPopulationVerifier(sessions, kk_cap=policy.eligibility.kk_cap)
