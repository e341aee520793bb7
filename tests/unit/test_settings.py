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


PRODUCTION = {
    "PRAKERJA_ENV": "production",
    "PSEUDONYM_KEY": "0123456789abcdef0123456789abcdef",
    "PUBLIC_BASE_URL": "https://prakerja-bot.example.id/",
}


def test_production_with_real_secrets_starts() -> None:
    settings = load_settings(
        PRODUCTION
        | {"TELEGRAM_TOKEN": "123:abc", "TELEGRAM_SECRET_TOKEN": "s3cr3t-token"}
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
        ({"PSEUDONYM_KEY": "changeme"}, "PSEUDONYM_KEY"),
    ],
)
def test_production_refuses_unsafe_settings(
    extra: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(PRODUCTION | extra)
