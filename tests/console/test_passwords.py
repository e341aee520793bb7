"""Password strength (zxcvbn): common, repeated and guessable passwords are
refused wherever a password is set, with an Indonesian reason."""

from __future__ import annotations

import pytest

from bot.console.password_policy import check_password_rules

WEAK = (
    "aaaaaaaaaa",
    "password12",
    "1234567890",
    "qwertyuiop",
    "P@ssw0rd2024",
    "prakerja2024",
)
STRONG = (
    "kata-sandi-uji-yang-panjang",
    "kuda-hijau-makan-bakso",
    "uji-konsol-petugas-2020",
)


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_refused_with_a_reason(password: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_password_rules(password)
    message = str(refused.value)
    assert message.startswith("Kata sandi terlalu mudah ditebak")
    assert password not in message  # the password itself is never repeated


@pytest.mark.parametrize("password", STRONG)
def test_long_unusual_passwords_are_accepted(password: str) -> None:
    check_password_rules(password)


def test_the_username_and_display_name_count_against_a_password() -> None:
    check_password_rules("wulandari1987")
    with pytest.raises(ValueError, match="mudah ditebak"):
        check_password_rules(
            "wulandari1987", user_inputs=("sari", "Sari Wulandari")
        )


def test_the_length_limits_still_hold() -> None:
    with pytest.raises(ValueError, match="minimal 10"):
        check_password_rules("Xq7#pL2!")
    with pytest.raises(ValueError, match="maksimal 256"):
        check_password_rules("kuda-hijau-" * 30)
