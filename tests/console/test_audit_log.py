"""The supervisor's audit log: filters (event, agent, ticket, WIB dates) and
server-side paging that work as a plain GET form, and the notice of accounts
under password guessing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.console import audit
from bot.console.agents import AgentInfo
from bot.console.audit_view import PAGE_SIZE
from bot.console.auth import ALERT_FAILURES, authenticate, client_target
from bot.console.labels import WIB_OFFSET
from tests.console.conftest import Console

T0 = datetime(2026, 11, 30, 3, 0)  # 10.00 WIB


def audit_rows(html: str) -> list[str]:
    """The rows of the audit table, as text."""
    table = re.search(r'<table class="audit">(.*?)</table>', html, re.S)
    if table is None:
        assert "Tidak ada kejadian yang cocok" in html
        return []
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), re.S)
    assert body
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def seed(console: Console) -> dict[str, AgentInfo]:
    agents = {
        name: console.agent(name, role)
        for name, role in (("sari", "supervisor"), ("andi", "agent"), ("budi", "agent"))
    }
    ids = {name: agent.id for name, agent in agents.items()}

    def work(db: Session) -> None:
        for day in range(3):
            moment = T0 + timedelta(days=day)
            audit.record(db, audit.CLAIM, ids["andi"], ticket_id=5, now=moment)
            audit.record(
                db,
                audit.REVEAL,
                ids["andi"],
                ticket_id=5,
                target=f"applicant:9 field:nik day:{day}",
                now=moment,
            )
            audit.record(db, audit.REPLY, ids["budi"], ticket_id=6, now=moment)

    console.run(work)
    return agents


def test_the_audit_log_filters_by_event_agent_ticket_and_dates(
    console: Console,
) -> None:
    agents = seed(console)
    ids = {name: agent.id for name, agent in agents.items()}
    sari = console.login(agents["sari"])

    def rows(query: str) -> list[str]:
        page = console.get(sari, f"/console/supervisor?{query}")
        assert page.status_code == 200, page.text
        return audit_rows(page.text)

    reveals = rows("event=reveal")
    assert len(reveals) == 3 and all("buka data pribadi" in r for r in reveals)
    assert [r.split("day:")[1] for r in reveals] == ["2", "1", "0"]  # newest first
    budi = rows(f"agent={ids['budi']}")
    assert len(budi) == 3 and all("budi" in r and "#6" in r for r in budi)
    assert len(rows("ticket=5")) == 6
    first_day = (T0 + WIB_OFFSET).date().isoformat()
    second_day = (T0 + WIB_OFFSET + timedelta(days=1)).date().isoformat()
    assert len(rows(f"from={second_day}&ticket=5")) == 4
    assert len(rows(f"to={first_day}&ticket=5")) == 2
    both = rows(f"event=reveal&agent={ids['andi']}&from={first_day}&to={second_day}")
    assert [r.split("day:")[1] for r in both] == ["1", "0"]
    assert rows(f"event=reveal&agent={ids['budi']}") == []


def test_bad_filters_are_ignored_with_a_notice(console: Console) -> None:
    sari = console.login(seed(console)["sari"])
    page = console.get(
        sari, "/console/supervisor?event=drop+table&ticket=abc&from=31-12-2026&page=x"
    )
    assert page.status_code == 200
    assert "Filter tidak valid diabaikan" in page.text
    # everything: the seed, three accounts created and sari's login
    assert len(audit_rows(page.text)) == 9 + 3 + 1


def test_the_audit_log_pages_without_javascript(console: Console) -> None:
    agents = seed(console)

    def many(db: Session) -> None:
        for number in range(PAGE_SIZE * 2 + 5):
            audit.record(
                db,
                audit.NOTE,
                agents["budi"].id,
                ticket_id=7,
                now=T0 + timedelta(days=5, seconds=number),
            )

    console.run(many)
    sari = console.login(agents["sari"])
    first = console.get(sari, "/console/supervisor?ticket=7")
    assert len(audit_rows(first.text)) == PAGE_SIZE
    assert "Halaman 1 dari 3" in first.text
    assert 'href="/console/supervisor?ticket=7&amp;page=2#audit"' in first.text
    last = console.get(sari, "/console/supervisor?ticket=7&page=3")
    assert len(audit_rows(last.text)) == 5
    assert "Halaman 3 dari 3" in last.text
    beyond = console.get(sari, "/console/supervisor?ticket=7&page=9")
    assert len(audit_rows(beyond.text)) == 5  # the last page


def test_supervisors_see_accounts_under_password_guessing(console: Console) -> None:
    andi = console.agent("andi")
    sari = console.login(console.agent("sari", "supervisor"))
    page = console.get(sari, "/console/supervisor")
    assert 'id="login-alerts"' not in page.text

    def guess(db: Session) -> None:
        for number in range(ALERT_FAILURES + 2):
            client = client_target(b"k", f"198.51.100.{number}")
            authenticate(db, andi.username, "salah-salah-salah", client)

    console.run(guess)
    page = console.get(sari, "/console/supervisor")
    alerts = re.search(r'id="login-alerts"(.*?)</section>', page.text, re.S)
    assert alerts, page.text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", alerts.group(1)))
    assert "andi" in text and f"{ALERT_FAILURES + 2} kali" in text
    assert f"dari {ALERT_FAILURES + 2} alamat" in text
    assert "banyak gagal masuk" in "\n".join(audit_rows(page.text))
