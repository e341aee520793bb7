"""TRUSTED_PROXIES: forwarded headers count only from the proxies named there."""

from pathlib import Path

import pytest

from bot.__main__ import forwarding
from bot.settings import Settings, SettingsError, load_settings


def settings(tmp_path: Path, value: str | None = None) -> Settings:
    env = {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    if value is not None:
        env["TRUSTED_PROXIES"] = value
    return load_settings(env)


def test_no_proxy_is_trusted_by_default(tmp_path: Path) -> None:
    found = settings(tmp_path)
    assert found.trusted_proxies == ()
    assert forwarding(found) == {"proxy_headers": False, "forwarded_allow_ips": None}


def test_addresses_and_networks_are_read(tmp_path: Path) -> None:
    found = settings(tmp_path, "10.0.0.0/8, 192.168.1.5 2001:db8::/32")
    assert found.trusted_proxies == ("10.0.0.0/8", "192.168.1.5/32", "2001:db8::/32")
    assert forwarding(found) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "192.168.1.5/32", "2001:db8::/32"],
    }


@pytest.mark.parametrize("value", ["*", "proxy.local", "10.0.0.0/33", "10.0.0.1;"])
def test_anything_else_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        settings(tmp_path, value)
