"""Settings come from the environment and fail closed outside development."""

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def test_defaults_are_production_and_need_a_pseudonym_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PSEUDONYM_KEY"):
        load_settings({"PRAKERJA_VAR_DIR": str(tmp_path)})


def test_development_runs_with_nothing_configured(tmp_path: Path) -> None:
    settings = load_settings(
        {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    )
    assert settings.database_url == f"sqlite:///{tmp_path}/prakerja.db"
    assert settings.rasa_url == "http://localhost:5005"
    assert settings.actions_url == "http://localhost:5055"
    assert not settings.telegram_enabled and not settings.twilio_enabled
    key_file = tmp_path / "pseudonym.key"
    assert key_file.read_text() == settings.pseudonym_key
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = load_settings(
        {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    )
    assert again.pseudonym_key == settings.pseudonym_key


STRONG_KEY = "N8ZxQv3kR2mW7pLb0TsYc5Hd9EuJf4Ag6KiOq1VnXr8"  # token_urlsafe(32)
STRONG_TELEGRAM_SECRET = (  # token_hex(32)
    "f3a91c07d2b84e56a0c9e1d7b36f5a28c4e09b71d6a3f8e25b0c7d94e1a6f3b8"
)
PRODUCTION = {
    "PRAKERJA_ENV": "production",
    "PSEUDONYM_KEY": STRONG_KEY,
    "PUBLIC_BASE_URL": "https://prakerja-bot.example.id/",
    "SMTP_URL": "smtp://mail.internal:25",
    "NIK_VERIFIER_URL": "https://dukcapil.example.id",
    "TRACKER_STORE_URL": "postgresql://rasa@db.internal/rasa_tracker",
}


def test_production_with_real_secrets_starts() -> None:
    settings = load_settings(
        PRODUCTION
        | {
            "TELEGRAM_TOKEN": "123:abc",
            "TELEGRAM_SECRET_TOKEN": STRONG_TELEGRAM_SECRET,
            "REDIS_URL": "redis://redis.internal:6379/0",
        }
    )
    assert settings.public_base_url == "https://prakerja-bot.example.id"
    assert settings.telegram_enabled


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"TELEGRAM_TOKEN": "123:abc"}, "TELEGRAM_SECRET_TOKEN"),
        (
            {"TELEGRAM_TOKEN": "123:abc", "TELEGRAM_SECRET_TOKEN": "changeme"},
            "TELEGRAM_SECRET_TOKEN",
        ),
        (
            {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"},
            "TWILIO_FROM_NUMBER",
        ),
        (
            {
                "TWILIO_ACCOUNT_SID": "AC1",
                "TWILIO_AUTH_TOKEN": "tok",
                "TWILIO_FROM_NUMBER": "+15005550006",
                "PUBLIC_BASE_URL": "http://localhost:8000",
            },
            "https",
        ),
        (
            {"TELEGRAM_TOKEN": "123:abc", "TELEGRAM_SECRET_TOKEN": "s3cr3t-token"},
            "REDIS_URL",
        ),
        (
            {
                "TWILIO_ACCOUNT_SID": "AC1",
                "TWILIO_AUTH_TOKEN": "tok",
                "TWILIO_FROM_NUMBER": "+15005550006",
            },
            "REDIS_URL",
        ),
        ({"PSEUDONYM_KEY": "changeme"}, "PSEUDONYM_KEY"),
        ({"PSEUDONYM_KEY": "x"}, "PSEUDONYM_KEY"),
        ({"PSEUDONYM_KEY": "0123456789abcdef0123456789abcdef"}, "PSEUDONYM_KEY"),
        ({"PSEUDONYM_KEY": "a" * 64}, "PSEUDONYM_KEY"),
        ({"PSEUDONYM_KEY": "0123456789abcdef" * 4}, "PSEUDONYM_KEY"),
        ({"PSEUDONYM_KEY": "kunci-rahasia-kita-bersama-yang-panjang-sekali"}, "KEY"),
        ({"PSEUDONYM_KEY": "Matahari terbit di ufuk timur tujuh kali!"}, "KEY"),
        (
            {"TELEGRAM_TOKEN": "123:abc", "TELEGRAM_SECRET_TOKEN": "x"},
            "TELEGRAM_SECRET_TOKEN",
        ),
        (
            {"TELEGRAM_TOKEN": "123:abc", "TELEGRAM_SECRET_TOKEN": "s3cr3t-token"},
            "TELEGRAM_SECRET_TOKEN",
        ),
        (  # Telegram only takes A-Z, a-z, 0-9, _ and -
            {"TELEGRAM_SECRET_TOKEN": "N8ZxQv3kR2mW7pLb0TsYc5Hd9EuJf4Ag6KiOq1VnXr8+/="},
            "TELEGRAM_SECRET_TOKEN",
        ),
        ({"TELEGRAM_SECRET_TOKEN": "x"}, "TELEGRAM_SECRET_TOKEN"),
        ({"PUBLIC_BASE_URL": "http://prakerja-bot.example.id"}, "https"),
        ({"PUBLIC_BASE_URL": "prakerja-bot.example.id"}, "https"),
        ({"SMTP_URL": ""}, "SMTP_URL"),
        ({"NIK_VERIFIER_URL": ""}, "NIK_VERIFIER_URL"),
    ],
)
def test_production_refuses_unsafe_settings(
    extra: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(PRODUCTION | extra)


@pytest.mark.parametrize(
    "key",
    [
        STRONG_KEY,
        STRONG_TELEGRAM_SECRET,
        "q0Ue1w+2R/3tY4u5I6o7P8a9S0d1F2g3H4j5K6l7Z8x=",  # base64 of 32 bytes
        STRONG_TELEGRAM_SECRET.upper(),
    ],
)
def test_production_takes_a_key_of_32_random_bytes(key: str) -> None:
    settings = load_settings(PRODUCTION | {"PSEUDONYM_KEY": key})
    assert settings.pseudonym_key == key


def test_the_refusal_says_how_to_make_a_key() -> None:
    with pytest.raises(SettingsError, match="secrets.token_urlsafe"):
        load_settings(PRODUCTION | {"PSEUDONYM_KEY": "x"})


def test_development_takes_any_key(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PRAKERJA_ENV": "development",
            "PRAKERJA_VAR_DIR": str(tmp_path),
            "PSEUDONYM_KEY": "x",
            "TELEGRAM_SECRET_TOKEN": "y",
        }
    )
    assert settings.pseudonym_key == "x"


def test_email_and_verifier_settings(tmp_path: Path) -> None:
    dev = {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    settings = load_settings(dev)
    assert settings.smtp_url is None and settings.nik_verifier_url is None
    assert settings.email_outbox_dir == tmp_path / "email-outbox"
    configured = load_settings(
        dev
        | {
            "SMTP_URL": "smtp://127.0.0.1:1025",
            "NIK_VERIFIER_URL": "http://dukcapil.local",
        }
    )
    assert configured.smtp_url == "smtp://127.0.0.1:1025"
    assert configured.nik_verifier_url == "http://dukcapil.local"


def test_derived_secrets_differ_by_purpose(tmp_path: Path) -> None:
    settings = load_settings(
        {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    )
    assert settings.secret_for("email-code") != settings.secret_for("link-code")
    assert settings.secret_for("email-code") == settings.secret_for("email-code")


def test_production_needs_the_tracker_store_for_erasure() -> None:
    without = {k: v for k, v in PRODUCTION.items() if k != "TRACKER_STORE_URL"}
    with pytest.raises(SettingsError, match="TRACKER_STORE_URL"):
        load_settings(without)


def test_provider_rates(tmp_path: Path) -> None:
    dev = {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    settings = load_settings(dev)
    assert settings.telegram_per_second == 30
    assert settings.twilio_per_second is None, "unset: SMS not paced"
    assert settings.redis_url is None, "unset: each process paces on its own"
    configured = load_settings(
        dev
        | {
            "TELEGRAM_MESSAGES_PER_SECOND": "25",
            "TWILIO_MESSAGES_PER_SECOND": "1",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert (configured.telegram_per_second, configured.twilio_per_second) == (25, 1)
    assert configured.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "lots"])
def test_provider_rates_are_whole_positive_numbers(tmp_path: Path, value: str) -> None:
    dev = {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="TWILIO_MESSAGES_PER_SECOND"):
        load_settings(dev | {"TWILIO_MESSAGES_PER_SECOND": value})
