"""Hostile input to the console gets a clear 4xx, never a 500 (issue 12,
finding 6): a NUL in the login name or password (PostgreSQL refuses NUL in a
query parameter; a form cannot carry a lone surrogate: Starlette decodes it with
replacement), and ticket ids no database column holds.
Both backends; the app's exceptions are raised in the test."""

from __future__ import annotations

import pytest

from tests.console.conftest import PASSWORD, Console, concrete, guarded

HUGE_IDS = (10**23, 2**63, 2**31)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both database backends."""
    return str(request.param)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ad\x00min", PASSWORD),
        ("admin", "kata\x00sandi"),
        ("\x00", "\x00"),
    ],
    ids=["nul-name", "nul-password", "nul-both"],
)
def test_a_login_with_nul_is_refused_not_crashed(
    console: Console, username: str, password: str
) -> None:
    console.agent("admin", "supervisor")
    _, response = console.post_login(username, password)
    assert response.status_code in (400, 401)
    assert "Nama pengguna atau kata sandi salah" in response.text
    browser = console.login(console.agent("petugas"))  # the console still works
    assert console.get(browser, "/console/queue").status_code == 200


@pytest.mark.parametrize("ticket_id", HUGE_IDS, ids=["1e23", "2^63", "2^31"])
def test_a_ticket_id_no_column_holds_is_a_404_on_every_route(
    console: Console, ticket_id: int
) -> None:
    browser = console.login(console.agent("spv", "supervisor"))
    for path, method in guarded(console.client.app):
        if "{ticket_id" not in path:
            continue
        url = concrete(path, ticket_id)
        if method == "GET":
            response = console.get(browser, url)
        else:
            response = console.post(browser, url, {"text": "halo", "field": "nik"})
        assert response.status_code == 404, (path, method, response.status_code)
