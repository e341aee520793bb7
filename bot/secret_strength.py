"""Whether a configured secret looks like 32 or more random bytes.

Outside development PSEUDONYM_KEY and TELEGRAM_SECRET_TOKEN must be generated,
not typed: hex of at least 64 characters (`secrets.token_hex(32)`) or base64 /
base64url of at least 43 (`secrets.token_urlsafe(32)`). Passphrases, short
values and obvious patterns (one character, a repeated block, hex without
letters, base64 without both cases: a random value of that length has them all
but with negligible chance) are refused. Telegram takes only A-Z, a-z, 0-9, `_`
and `-` in its secret token, so base64's `+`, `/` and `=` are refused there.
"""

from __future__ import annotations

import re

MAKE_ONE = 'python -c "import secrets;print(secrets.token_urlsafe(32))"'
"""The command the refusal tells the operator to run."""
RANDOM_BYTES = 32
HEX_LENGTH = 2 * RANDOM_BYTES
BASE64_LENGTH = 43  # ceil(32 * 8 / 6)
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_TELEGRAM = re.compile(r"[A-Za-z0-9_-]{1,256}")
MIN_DISTINCT = {"hex": 10, "base64": 16}


def _repeats_a_block(value: str) -> bool:
    """The value is a shorter block repeated (e.g. "abc123abc123")."""
    size = len(value)
    return any(
        value == (value[:block] * (size // block + 1))[:size]
        for block in range(1, size // 2 + 1)
    )


def _form(value: str) -> str | None:
    """"hex", "base64", or None for anything else (or too short for 32 bytes)."""
    if _HEX.fullmatch(value) and len(value) >= HEX_LENGTH:
        mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        return "hex" if mixed else None
    if _BASE64.fullmatch(value) and len(value.rstrip("=")) >= BASE64_LENGTH:
        cases = any(c.isupper() for c in value) and any(c.islower() for c in value)
        return "base64" if cases else None
    return None


def looks_random(value: str) -> bool:
    """Hex or base64 of at least 32 bytes, with no sign of being made by hand."""
    form = _form(value)
    return (
        form is not None
        and len(set(value)) >= MIN_DISTINCT[form]
        and not _repeats_a_block(value)
    )


def secret_problem(name: str, value: str | None, telegram: bool = False) -> str | None:
    """Why `value` cannot be the secret `name` outside development, or None."""
    if telegram and value and not _TELEGRAM.fullmatch(value):
        return (
            f"{name} may only contain A-Z, a-z, 0-9, _ and - (Telegram's rule); "
            f"make one with {MAKE_ONE}"
        )
    if not value or not looks_random(value):
        return (
            f"{name} must be at least {RANDOM_BYTES} random bytes (hex of "
            f"{HEX_LENGTH} or base64 of {BASE64_LENGTH}+ characters); make one "
            f"with {MAKE_ONE}"
        )
    return None
