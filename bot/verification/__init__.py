"""NIK verification adapters: a Dukcapil-style HTTP client and a local registry.

Both implement :class:`NikVerifier`; callers see only :class:`NikCheckResult`.
"""

from bot.verification.breaker import CircuitBreaker
from bot.verification.http_client import HttpNikVerifier
from bot.verification.nik import (
    OUTCOMES,
    NikCheckResult,
    NikRequest,
    NikVerifier,
    result_for,
)
from bot.verification.population import TEST_PEOPLE, LocalPopulationVerifier

__all__ = [
    "OUTCOMES",
    "TEST_PEOPLE",
    "CircuitBreaker",
    "HttpNikVerifier",
    "LocalPopulationVerifier",
    "NikCheckResult",
    "NikRequest",
    "NikVerifier",
    "result_for",
]
