"""Password hashing for console agents: argon2id (argon2-cffi's PasswordHasher).

The parameters are argon2-cffi's defaults (RFC 9106's low-memory profile:
argon2id, t=3, m=64 MiB, p=4); a stored hash made with other parameters is
upgraded at the next successful login (`needs_rehash`). `DUMMY_HASH` lets a
login for an unknown username take as long as one for a known username.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()
"""The hasher in use (tests may swap in cheaper argon2id parameters)."""


def hash_password(password: str) -> str:
    """The argon2id hash of a password (`$argon2id$v=19$...`)."""
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches the stored hash (False for a malformed hash)."""
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=4)
def _dummy_hash(hasher_id: int) -> str:
    return HASHER.hash("not-a-password-of-anyone")


def burn_verification(password: str) -> None:
    """Spend the time of one verification (login of an unknown username)."""
    verify_password(_dummy_hash(id(HASHER)), password)
