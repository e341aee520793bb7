"""Which passwords the console accepts: 10 to 256 characters, and not easy to
guess, as judged by zxcvbn (Dropbox's estimator, offline, with its own lists of
common passwords, names and words, keyboard patterns, repeats, sequences and
dates). A password must reach `MIN_SCORE` on its 0-4 scale; the account's
username and display name and the programme's own words count as known to an
attacker. A refusal says why in Indonesian, never repeating the password.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_SCORE = 3
"""zxcvbn's "safely unguessable" (about 10^8 guesses and more)."""
CHECKED_LENGTH = 72
"""zxcvbn judges at most this many characters: the start of a longer password."""
KNOWN_WORDS = ("prakerja", "kartu", "kartuprakerja", "konsol", "petugas")
"""Words an attacker tries first against this console."""

REASONS = {
    "repeat": 'berisi pengulangan seperti "aaa" atau "abcabc"',
    "sequence": 'berisi urutan seperti "abcd" atau "1234"',
    "spatial": 'berisi pola papan ketik seperti "qwerty"',
    "date": "berisi tanggal atau tahun",
    "regex": "berisi tahun",
    "user_inputs": "memuat nama pengguna, nama kamu atau kata Prakerja",
    "dictionary": "memakai kata sandi atau kata yang umum",
}
GENERIC_REASON = "terlalu pendek untuk ditebak dengan aman"
ADVICE = "Pakai 3-4 kata acak yang tidak berhubungan, misalnya kuda-hijau-makan-bakso."


def _words(inputs: Iterable[str]) -> list[str]:
    words = list(KNOWN_WORDS)
    for given in inputs:
        words.append(given.lower())
        words.extend(part for part in given.lower().split() if len(part) > 2)
    return words


def _reason(result: dict[str, object]) -> str:
    matches = result.get("sequence")
    patterns: list[str] = []
    for match in matches if isinstance(matches, list) else []:
        pattern = str(match.get("pattern", ""))
        if pattern == "dictionary" and match.get("dictionary_name") == "user_inputs":
            pattern = "user_inputs"
        patterns.append(pattern)
    for pattern in REASONS:
        if pattern in patterns:
            return REASONS[pattern]
    return GENERIC_REASON


def check_password_rules(password: str, user_inputs: Iterable[str] = ()) -> None:
    """Refuse a password too short, too long or too easy to guess (ValueError
    with an Indonesian reason); `user_inputs`: the account's own names."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Kata sandi minimal {MIN_PASSWORD_LENGTH} karakter.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"Kata sandi maksimal {MAX_PASSWORD_LENGTH} karakter.")
    result = zxcvbn(
        password[:CHECKED_LENGTH],
        user_inputs=_words(user_inputs),
        max_length=CHECKED_LENGTH,
    )
    if int(result["score"]) < MIN_SCORE:
        raise ValueError(
            f"Kata sandi terlalu mudah ditebak: {_reason(result)}. {ADVICE}"
        )
