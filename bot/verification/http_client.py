"""A client for a Dukcapil-style NIK service (``NIK_VERIFIER_URL``).

``POST {base_url}/nik/verify`` with ``{"nik", "kk_number", "name", "birth_date"}``
answers ``{"status": <outcome>}``. Timeouts, connection errors, 5xx and 429 are
retried with exponential backoff and jitter; other 4xx are not. A circuit breaker
stops calls while the service keeps failing. NIKs are only logged masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import httpx

from bot.policy.validation import mask_nik
from bot.verification.breaker import CircuitBreaker
from bot.verification.nik import (
    OUTCOMES,
    NikCheckResult,
    NikRequest,
    result_for,
)

logger = logging.getLogger(__name__)

VERIFY_PATH = "/nik/verify"
ANSWER_STATUSES = frozenset(OUTCOMES) - {"unavailable"}


class _RetryableError(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After header, else None."""
    try:
        return max(float(response.headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        return None


class HttpNikVerifier:
    """:class:`~bot.verification.nik.NikVerifier` over HTTP, with retries."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.2,
        max_backoff: float = 5.0,
        breaker: CircuitBreaker | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """A ``client`` passed in is used as is and not closed by :meth:`aclose`;
        otherwise one is made with ``timeout`` (seconds) on every phase."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.url = base_url.rstrip("/") + VERIFY_PATH
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpNikVerifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, jittered
        down to half, capped at ``max_backoff``."""
        delay = min(self.backoff_base * 2 ** (attempt - 1), self.max_backoff)
        return delay * (0.5 + random.random() / 2)  # noqa: S311 (not crypto)

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Ask the service; "unavailable" (retryable) when it cannot answer."""
        masked = mask_nik(request.nik)
        payload = {
            "nik": request.nik,
            "kk_number": request.kk_number,
            "name": request.full_name,
            "birth_date": request.birth_date.isoformat(),
        }
        for attempt in range(1, self.max_attempts + 1):
            if not self.breaker.allow():
                logger.warning("NIK check %s skipped: circuit open", masked)
                return result_for("unavailable")
            try:
                result = await self._attempt(payload, masked)
            except _RetryableError as failure:
                self.breaker.record_failure()
                if attempt == self.max_attempts:
                    logger.warning(
                        "NIK check %s unavailable after %d attempts: %s",
                        masked,
                        attempt,
                        failure.why,
                    )
                    return result_for("unavailable")
                delay = self.backoff(attempt)
                if failure.retry_after is not None:
                    delay = max(delay, min(failure.retry_after, self.max_backoff))
                logger.info(
                    "NIK check %s attempt %d failed (%s); retry in %.2fs",
                    masked,
                    attempt,
                    failure.why,
                    delay,
                )
                await self._sleep(delay)
                continue
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, payload: dict[str, str], masked: str) -> NikCheckResult:
        """One request; raises :class:`_RetryableError` when worth retrying."""
        try:
            response = await self._client.post(self.url, json=payload)
        except httpx.TimeoutException as exc:
            raise _RetryableError(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _RetryableError(f"connection error ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableError(f"HTTP {status}", _retry_after(response))
        if status >= 400:
            # The service is up but refuses our request: retrying cannot help.
            self.breaker.record_success()
            logger.error("NIK check %s refused: HTTP %d", masked, status)
            return result_for("unavailable", retryable=False)
        try:
            answer = response.json().get("status")
        except (ValueError, AttributeError):
            answer = None
        if answer not in ANSWER_STATUSES:
            self.breaker.record_failure()
            logger.error("NIK check %s: unreadable answer (HTTP %d)", masked, status)
            return result_for("unavailable", retryable=False)
        self.breaker.record_success()
        logger.info("NIK check %s: %s", masked, answer)
        return result_for(answer)
