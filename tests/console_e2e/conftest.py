"""Fixtures for the console's browser test: the running stack and Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.console_e2e.site import (
    ConsoleSite,
    launched_chromium,
    require_chromium,
    running_console_site,
)


@pytest.fixture()
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (skipped without it, failed under CI)."""
    with launched_chromium(require_chromium()) as launched:
        yield launched


@pytest.fixture()
def console_site(tmp_path: Path, browser: Browser) -> Iterator[ConsoleSite]:
    """Seeded database, console accounts, Rasa + actions + gateway, fake Twilio.

    Depends on `browser` so a missing Chromium skips before anything starts.
    """
    with running_console_site(tmp_path) as site:
        yield site
