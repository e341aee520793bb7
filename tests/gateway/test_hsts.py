"""HSTS on every response when the gateway's public URL is https (issue 12,
finding 7): browsers then never talk to it over plain http again."""

from __future__ import annotations

from pathlib import Path

from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import make_settings, running

PATHS = ("/healthz", "/console/login", "/simulator", "/nowhere")


def test_every_response_has_hsts_when_the_public_url_is_https(
    settings: Settings,
) -> None:
    assert settings.public_base_url.startswith("https://")
    with running(settings, senders={}) as client:
        for path in PATHS:
            response = client.get(path)
            assert response.headers["strict-transport-security"] == (
                "max-age=31536000"
            ), path
        posted = client.post("/telegram/webhook", content=b"{}")
        assert "strict-transport-security" in posted.headers


def test_no_hsts_over_a_plain_http_development_url(
    tmp_path: Path, rasa: FakeRasa
) -> None:
    settings = make_settings(tmp_path, rasa.url, PUBLIC_BASE_URL="http://localhost:8000")
    with running(settings, senders={}) as client:
        for path in PATHS:
            assert "strict-transport-security" not in client.get(path).headers
