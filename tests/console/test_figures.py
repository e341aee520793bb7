"""The supervisor's figures on SQLite and PostgreSQL: the registration funnel
(and its chart), agent activity today; canned answers from the policy; the SMS
estimate the reply box shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.sms.gsm7 import is_gsm7, segment_info
from bot.console import audit
from bot.console.agents import create_agent
from bot.console.canned import canned_answers
from bot.console.chart import funnel_chart, percent
from bot.console.models import Agent, AgentSession, AuditEvent
from bot.console.sms import estimate
from bot.console.stats import agent_activity, registration_funnel
from bot.db import Base, make_engine, make_sessionmaker
from bot.policy.answers import call_center_text
from bot.policy.programme import format_rupiah, load_policy
from bot.registry import ensure_batch, join_batch, record_selection, register_applicant
from bot.registry.models import STEP_DONE, STEP_EMAIL, STEP_NIK
from bot.registry.steps import set_step
from tests.console.conftest import PASSWORD, Console
from tests.postgres import BACKENDS, fresh_database
from tests.registry.conftest import REGISTRY_TABLES, nik, upgrade

T0 = datetime(2026, 11, 30, 3, 0)  # Monday 10:00 WIB


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The module's database on each backend, built by the migrations."""
    directory: Path = tmp_path_factory.mktemp("figures")
    with fresh_database(str(request.param), directory, "console_test") as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on empty registry and console tables."""
    with engine.begin() as connection:
        for model in (AuditEvent, AgentSession, Agent):
            connection.execute(delete(model))
        for table in REGISTRY_TABLES:
            connection.execute(delete(Base.metadata.tables[table]))
    sessions: sessionmaker = make_sessionmaker(engine)
    with sessions() as session:
        yield session


def applicant(session: Session, serial: int) -> int:
    """A registered applicant (each with their own KK number)."""
    return register_applicant(
        session,
        nik=nik(serial),
        kk_number=f"31740101012{serial:05d}",
        full_name=f"Pelamar {serial}",
        birth_date=date(1990, 8, 15),
        policy_version="2020",
    ).id


def test_the_funnel_counts_who_got_how_far(session: Session) -> None:
    batch = ensure_batch(session, 1, T0 - timedelta(days=1), T0 + timedelta(days=3), 10)
    ids = [applicant(session, serial) for serial in range(1, 11)]  # 10 registered
    for person in ids[:8]:
        set_step(session, person, STEP_EMAIL, STEP_DONE, now=T0)
    for person in ids[:5]:
        set_step(session, person, STEP_NIK, STEP_DONE, now=T0)
    for person in ids[:3]:
        join_batch(session, person, batch.id, now=T0)
    record_selection(session, ids[0], batch.id, "selected", now=T0)
    record_selection(session, ids[1], batch.id, "not_selected", now=T0)
    session.commit()
    stages = registration_funnel(session)
    assert [(s.key, s.count) for s in stages] == [
        ("registered", 10),
        ("email_verified", 8),
        ("nik_verified", 5),
        ("joined_batch", 3),
        ("selected", 1),
    ]
    assert [round(s.share_of_registered, 2) for s in stages] == [
        1.0,
        0.8,
        0.5,
        0.3,
        0.1,
    ]
    assert round(stages[3].share_of_previous, 2) == 0.6
    chart = funnel_chart(stages)
    widths = [bar.width for bar in chart.bars]
    assert widths[0] == chart.track_width
    assert widths == sorted(widths, reverse=True)
    assert widths[2] == round(chart.track_width / 2)
    assert chart.bars[4].value_text == "1 (10,00%)"
    assert "Lolos seleksi: 1 (10,00%)" in chart.summary


def test_an_empty_registry_draws_empty_bars(session: Session) -> None:
    stages = registration_funnel(session)
    assert [s.count for s in stages] == [0] * 5
    assert [bar.width for bar in funnel_chart(stages).bars] == [0] * 5


def test_percentages_are_written_the_indonesian_way() -> None:
    assert percent(0.0543) == "5,43%"
    assert percent(1.0) == "100,00%"


def test_agent_activity_counts_today_only(session: Session) -> None:
    andi = create_agent(session, "andi", PASSWORD, "agent")
    budi = create_agent(session, "budi", PASSWORD, "agent")
    yesterday = T0 - timedelta(days=1)
    for action, moment in (
        (audit.CLAIM, T0),
        (audit.CLAIM, T0),
        (audit.REPLY, T0),
        (audit.RESOLVE, T0),
        (audit.CLAIM, yesterday),
        (audit.REVEAL, T0),
    ):
        audit.record(session, action, andi.id, ticket_id=1, now=moment)
    audit.record(session, audit.REPLY, budi.id, ticket_id=2, now=T0)
    session.commit()
    rows = {row.agent.username: row for row in agent_activity(session, T0)}
    assert (rows["andi"].claimed, rows["andi"].replied, rows["andi"].resolved) == (
        2,
        1,
        1,
    )
    assert (rows["budi"].claimed, rows["budi"].replied, rows["budi"].resolved) == (
        0,
        1,
        0,
    )


def test_canned_answers_come_from_the_policy() -> None:
    for version in ("2020", "2023"):
        policy = load_policy(version)
        answers = {answer.key: answer for answer in canned_answers(policy)}
        assert answers["call_center"].text == call_center_text(policy)
        benefits = answers["ask_benefits"].text
        assert format_rupiah(policy.benefits.training_balance) in benefits
        assert "start_registration" not in answers
        assert all(is_gsm7(answer.text) for answer in answers.values())
        assert len({answer.label for answer in answers.values()}) == len(answers)
    old, new = (
        {a.key: a.text for a in canned_answers(load_policy(v))}
        for v in ("2020", "2023")
    )
    assert old["ask_benefits"] != new["ask_benefits"]


SAMPLES = (
    "",
    "Halo",
    "x" * 160,
    "x" * 161,
    "[" * 80,
    "[" * 81,
    "Harga \u20ac5 {ok}",
    "\u201cKutipan\u201d dan \u2013 tanda",
    "Terima kasih \U0001f60a",
    "\u0645\u0631\u062d\u0628\u0627" * 20,
    "Kalimat yang cukup panjang untuk dibagi. " * 12,
)


@pytest.mark.parametrize("text", SAMPLES)
def test_the_sms_estimate_agrees_with_the_channel(text: str) -> None:
    info = estimate(text)
    typed = segment_info(text)
    assert (info.typed_encoding, info.typed_segments, info.typed_units) == (
        typed.encoding,
        typed.segments,
        typed.units,
    )
    assert bool(info.replaced) == (not is_gsm7(text))
    if is_gsm7(text) and typed.segments <= 2:
        assert (info.pages, info.segments) == ((1, typed.segments) if text else (0, 0))
    if typed.segments > 2 and is_gsm7(text):
        assert info.pages > 1 and "bagian" in info.label


def test_the_segments_route_answers_like_the_python_side(console: Console) -> None:
    browser = console.login(console.agent("andi"))
    for text in SAMPLES:
        response = console.post_json(browser, "/console/api/segments", {"text": text})
        assert response.status_code == 200
        data = response.json()
        info = estimate(text)
        assert data["encoding"] == info.typed_encoding
        assert data["segments"] == info.typed_segments
        assert data["sent_segments"] == info.segments
        assert data["pages"] == info.pages
        assert data["label"] == info.label
    refused = console.post_json(browser, "/console/api/segments", {"text": 5})
    assert refused.status_code == 400
