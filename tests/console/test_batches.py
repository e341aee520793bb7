"""The supervisors' batch page and the batch commands: each step through the
form, audited, refused when repeated or out of order, for supervisors only;
the registration panel shows the result, the deadline and the messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.console import audit
from bot.console.admin import main
from bot.console.models import AuditEvent
from bot.db import utcnow
from bot.registry import join_batch, set_step
from bot.registry.models import STEP_DONE, STEP_NIK
from tests.console.conftest import PASSWORD, Console
from tests.gateway.conftest import wait_until


def _wib(moment: datetime) -> str:
    return (moment + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M")


def _actions(console: Console) -> list[str]:
    return list(
        console.run(
            lambda s: s.execute(
                select(AuditEvent.action)
                .where(AuditEvent.action.like("batch_%"))
                .order_by(AuditEvent.id)
            ).scalars()
        )
    )


def test_a_supervisor_runs_a_batch_from_the_page(console: Console) -> None:
    boss = console.login(console.agent("sari", "supervisor"))
    agent = console.login(console.agent("andi"))
    now = utcnow()
    assert console.get(agent, "/console/batches").status_code == 403
    form = {
        "number": "41",
        "opens": _wib(now - timedelta(hours=1)),
        "closes": _wib(now + timedelta(days=3)),
        "quota": "10",
        "places": "1",
    }
    assert console.post(agent, "/console/batches", form).status_code == 403
    assert console.post(boss, "/console/batches", form, csrf=None).status_code == 403
    created = console.post(boss, "/console/batches", form)
    assert created.headers["location"].startswith("/console/batches?msg=scheduled")
    applicant_id = console.applicant()
    batch_id = console.run(
        lambda s: (
            s.execute(
                select(AuditEvent.id).where(AuditEvent.action == audit.BATCH_SCHEDULED)
            ).scalar_one()
            and _join(s, applicant_id)
        )
    )
    page = console.get(boss, "/console/batches")
    assert "Gelombang 41" in page.text and "Tutup gelombang" in page.text
    early = console.post(boss, f"/console/batches/{batch_id}/publish")
    assert "msg=not_selected" in early.headers["location"]
    assert (
        "msg=closed"
        in console.post(boss, f"/console/batches/{batch_id}/close").headers["location"]
    )
    again = console.post(boss, f"/console/batches/{batch_id}/close")
    assert "msg=already_closed" in again.headers["location"]
    over = console.post(boss, f"/console/batches/{batch_id}/select", {"places": "2"})
    assert "msg=over_places" in over.headers["location"]
    chosen = console.post(boss, f"/console/batches/{batch_id}/select", {"places": "1"})
    assert "msg=selected" in chosen.headers["location"]
    assert "Umumkan hasil" in console.get(boss, "/console/batches").text
    published = console.post(boss, f"/console/batches/{batch_id}/publish")
    assert "msg=published" in published.headers["location"]
    assert _actions(console) == [
        audit.BATCH_SCHEDULED,
        audit.BATCH_CLOSED,
        audit.BATCH_SELECTED,
        audit.BATCH_PUBLISHED,
    ]
    # the gateway's announcement sender hands the result to the outbox
    wait_until(
        lambda: any("Selamat! Kamu lolos" in t for t in console.sms.texts()),
        what="the result SMS",
    )

    def progress() -> dict[str, object]:
        data: dict[str, object] = console.get(
            boss, f"/console/api/batches/{batch_id}/progress"
        ).json()
        return data

    done = wait_until(lambda: (p := progress())["sent"] == 1 and p, what="settled")
    assert (done["total"], done["remaining"], done["paused"]) == (1, 0, False)
    assert (
        console.get(agent, f"/console/api/batches/{batch_id}/progress").status_code
        == 403
    )
    page = console.get(boss, "/console/batches").text
    assert "Pengiriman hasil" in page and 'data-field="sent">1<' in page
    ticket = console.ticket(applicant_id=applicant_id)
    panel = console.get(boss, f"/console/tickets/{ticket.id}").text
    assert "Gelombang 41: lolos, beli pelatihan sebelum" in panel
    assert "Pesan hasil seleksi: SMS: terkirim" in panel
    assert "7 hari sebelum batas" in panel
    paused = console.post(boss, f"/console/batches/{batch_id}/pause")
    assert "msg=paused" in paused.headers["location"]
    assert progress()["paused"] is True
    twice = console.post(boss, f"/console/batches/{batch_id}/pause")
    assert "msg=already_paused" in twice.headers["location"]
    resumed = console.post(boss, f"/console/batches/{batch_id}/resume")
    assert "msg=resumed" in resumed.headers["location"]
    assert _actions(console)[-2:] == [audit.BATCH_PAUSED, audit.BATCH_RESUMED]


def _join(session: object, applicant_id: int) -> int:
    from bot.registry import batch_by_number

    batch = batch_by_number(session, 41)  # type: ignore[arg-type]
    assert batch is not None
    set_step(session, applicant_id, STEP_NIK, STEP_DONE)  # type: ignore[arg-type]
    join_batch(session, applicant_id, batch.id)  # type: ignore[arg-type]
    return batch.id


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database in the environment the command reads."""
    url = f"sqlite:///{tmp_path}/admin.db"
    monkeypatch.setenv("PRAKERJA_ENV", "test")
    monkeypatch.setenv("PRAKERJA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONSOLE_PASSWORD", PASSWORD)
    return url


def test_the_batch_commands_refuse_what_the_state_forbids(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    opened = [
        "batch-open",
        "9",
        "--opens",
        _wib(now - timedelta(hours=2)),
        "--closes",
        _wib(now + timedelta(days=1)),
        "--quota",
        "5",
    ]
    assert main(opened) == 0
    assert main(opened) == 0  # the same request again: unchanged
    assert "tidak berubah" in capsys.readouterr().out
    assert main(["batch-publish", "9"]) == 1
    assert "Jalankan seleksi dulu" in capsys.readouterr().err
    assert main(["batch-pause", "9"]) == 1  # nothing published to pause
    assert "setelah hasil diumumkan" in capsys.readouterr().err
    assert main(["batch-select", "9"]) == 1
    assert main(["batch-close", "9"]) == 0
    assert main(["batch-close", "9"]) == 1
    assert main(["batch-select", "9", "--seed", "abc"]) == 0
    assert "seed abc" in capsys.readouterr().out
    assert main(["batch-select", "9"]) == 1
    assert main(["batch-publish", "9"]) == 0
    assert main(["batch-figures", "9"]) == 0
    assert "hasil diumumkan" in capsys.readouterr().out
    assert main(["batch-pause", "9"]) == 0
    assert main(["batch-pause", "9"]) == 1
    assert main(["batch-figures", "9"]) == 0
    assert "pengiriman hasil dijeda" in capsys.readouterr().out
    assert main(["batch-resume", "9"]) == 0
    assert "dilanjutkan" in capsys.readouterr().out
    assert main(["batch-close", "99"]) == 1
