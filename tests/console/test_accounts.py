"""Accounts, passwords, login limits and sessions, on SQLite and PostgreSQL.

The database is built by the migrations (so revision 0310 is exercised too);
moments are passed explicitly, so expiry and locks are tested without waiting.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import bot.console.auth as auth
import bot.console.passwords as passwords
from bot.console import audit
from bot.console.agents import (
    AgentExists,
    create_agent,
    find_agent,
    set_active,
    set_password,
)
from bot.console.auth import (
    ACCOUNT_WINDOW,
    ALERT_FAILURES,
    BACKING_OFF,
    BAD_CREDENTIALS,
    CLIENT_LIMITED,
    FREE_FAILURES,
    OK,
    authenticate,
    backoff,
    client_target,
)
from bot.console.models import Agent, AgentSession, AuditEvent, LoginThrottle
from bot.console.presence import agents_online
from bot.console.sessions import (
    IDLE_TIMEOUT,
    LIFETIME,
    load_session,
    open_session,
    purge_expired,
)
from bot.console.throttle import account_alerts, purge
from bot.db import make_engine, make_sessionmaker
from tests.console.conftest import PASSWORD
from tests.postgres import BACKENDS, fresh_database
from tests.registry.conftest import upgrade

T0 = datetime(2026, 11, 30, 3, 0)
CLIENT = client_target(b"test-secret", "203.0.113.7")
OTHER_CLIENT = client_target(b"test-secret", "203.0.113.8")


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The module's database on each backend, built by the migrations."""
    directory: Path = tmp_path_factory.mktemp("console")
    with fresh_database(str(request.param), directory, "console_test") as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty console tables."""
    with engine.begin() as connection:
        for model in (AuditEvent, AgentSession, LoginThrottle, Agent):
            connection.execute(delete(model))
    return make_sessionmaker(engine)


@pytest.fixture
def session(sessions: sessionmaker) -> Iterator[Session]:
    """One session for the test's sequential steps."""
    with sessions() as session:
        yield session


def test_passwords_are_stored_as_argon2id(session: Session) -> None:
    agent = create_agent(session, "Andi", PASSWORD, "agent", "Andi Wijaya")
    session.commit()
    stored = session.execute(select(Agent.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert agent.username == "andi" and agent.display_name == "Andi Wijaya"


def test_the_production_hasher_is_argon2id_with_rfc_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.undo()  # the real hasher, not the tests' cheap one
    assert passwords.HASHER.type is Type.ID
    hashed = passwords.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(hashed, PASSWORD)
    assert not passwords.verify_password(hashed, PASSWORD + "x")
    assert not passwords.verify_password("not-a-hash", PASSWORD)


def test_a_hash_with_old_parameters_is_upgraded_at_login(session: Session) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    session.execute(update(Agent).values(password_hash=weak.hash(PASSWORD)))
    session.commit()
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).ok
    stored = session.execute(select(Agent.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "m=512" not in stored


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("a", PASSWORD),
        ("andi wijaya", PASSWORD),
        ("x" * 33, PASSWORD),
        ("andi", "pendek"),
    ],
)
def test_bad_usernames_and_short_passwords_are_refused(
    session: Session, username: str, password: str
) -> None:
    with pytest.raises(ValueError):
        create_agent(session, username, password, "agent")


def test_a_username_is_taken_once(session: Session) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    session.commit()
    with pytest.raises(AgentExists):
        create_agent(session, "ANDI", PASSWORD, "supervisor")


def test_backoff_doubles_after_three_failures_up_to_fifteen_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [
        0,
        0,
        0,
        1,
        2,
        4,
        8,
        16,
    ]
    assert backoff(14) == timedelta(minutes=15) == backoff(1000)


def test_failures_back_off_one_pair_and_never_lock_the_account(
    session: Session,
) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    session.commit()
    moment = T0
    for number in range(8):  # each try waits out the previous backoff
        moment += backoff(number) + timedelta(seconds=1)
        result = authenticate(session, "ANDI", "salah-salah-salah", CLIENT, now=moment)
        session.commit()
        assert result.outcome == BAD_CREDENTIALS
    waiting = authenticate(session, "andi", PASSWORD, CLIENT, now=moment)
    assert waiting.outcome == BACKING_OFF and waiting.agent is None
    # the same account from another address: no wait at all
    elsewhere = authenticate(session, "andi", PASSWORD, OTHER_CLIENT, now=moment)
    assert elsewhere.outcome == OK and elsewhere.agent is not None
    later = moment + backoff(8)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=later).ok


def test_a_success_resets_the_pair(session: Session) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    for _ in range(3):
        authenticate(session, "andi", "salah-salah-salah", CLIENT, now=T0)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).ok
    for _ in range(3):
        authenticate(session, "andi", "salah-salah-salah", CLIENT, now=T0)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).ok


def test_many_failures_for_one_account_alert_supervisors_once_per_window(
    session: Session,
) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    for number in range(ALERT_FAILURES * 2):
        attacker = client_target(b"test-secret", f"198.51.100.{number}")
        moment = T0 + timedelta(seconds=number)
        authenticate(session, "andi", "salah-salah-salah", attacker, now=moment)
    session.commit()
    alerts = session.execute(
        select(AuditEvent).where(AuditEvent.action == audit.LOGIN_ALERT)
    ).scalars()
    assert [(e.agent_id, e.target) for e in alerts] == [(None, f"agent:{agent.id}")]
    [alert] = account_alerts(
        session, ACCOUNT_WINDOW, ALERT_FAILURES, T0 + timedelta(minutes=1)
    )
    assert (alert.agent_id, alert.failures) == (agent.id, ALERT_FAILURES * 2)
    assert alert.addresses == ALERT_FAILURES * 2
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).ok
    over = T0 + ACCOUNT_WINDOW + timedelta(seconds=1)
    assert account_alerts(session, ACCOUNT_WINDOW, ALERT_FAILURES, over) == []


def test_ipv6_clients_count_per_64() -> None:
    first = client_target(b"k", "2001:db8:1:2::1")
    assert client_target(b"k", "2001:db8:1:2:ffff::9") == first
    assert client_target(b"k", "2001:db8:1:3::1") != first
    assert client_target(b"k", "::ffff:203.0.113.7") == client_target(
        b"k", "203.0.113.7"
    )


def test_idle_counters_are_purged(session: Session) -> None:
    authenticate(session, "siapa", "salah-salah-salah", CLIENT, now=T0)
    assert purge(session, T0 + timedelta(hours=23)) == 0
    assert purge(session, T0 + timedelta(days=1, seconds=1)) == 2


def test_twenty_failures_per_client_in_fifteen_minutes(session: Session) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    for number in range(20):
        result = authenticate(
            session,
            f"orang{number}",
            "salah",
            CLIENT,
            now=T0 + timedelta(seconds=number),
        )
        assert result.outcome == BAD_CREDENTIALS
    refused = authenticate(
        session, "andi", PASSWORD, CLIENT, now=T0 + timedelta(minutes=1)
    )
    assert refused.outcome == CLIENT_LIMITED
    assert authenticate(session, "andi", PASSWORD, OTHER_CLIENT, now=T0).ok
    after_window = T0 + timedelta(minutes=16, seconds=30)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=after_window).ok


def test_a_deactivated_agent_cannot_log_in(session: Session) -> None:
    create_agent(session, "andi", PASSWORD, "agent")
    set_active(session, "andi", False)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).outcome == (
        BAD_CREDENTIALS
    )


def test_refused_logins_are_counted_without_personal_data(session: Session) -> None:
    authenticate(session, "siapa.saja", "rahasia-sekali", CLIENT, now=T0)
    assert session.execute(select(AuditEvent)).all() == []
    rows = session.execute(select(LoginThrottle)).scalars().all()
    assert sorted(row.key.split(":")[0] for row in rows) == ["client", "pair"]
    for row in rows:
        assert row.failures == 1
        assert "203.0.113" not in row.key and "siapa" not in row.key


def test_a_session_stores_only_the_token_hash(session: Session) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    token, opened = open_session(session, agent, now=T0)
    row = session.execute(select(AgentSession)).scalar_one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.expires_at == T0 + LIFETIME
    assert len(opened.csrf_token) >= 43 and opened.csrf_token != token
    loaded = load_session(session, token, now=T0 + timedelta(minutes=1))
    assert loaded is not None and loaded.agent.id == agent.id
    assert load_session(session, token[:-1] + "x", now=T0) is None
    assert load_session(session, None, now=T0) is None


def test_a_session_ends_after_thirty_idle_minutes(session: Session) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    token, _ = open_session(session, agent, now=T0)
    moment = T0
    for _ in range(3):  # activity keeps it alive
        moment += IDLE_TIMEOUT - timedelta(minutes=1)
        assert load_session(session, token, now=moment) is not None
    # polls of an unattended page do not count as activity
    quiet = moment + timedelta(minutes=10)
    assert load_session(session, token, now=quiet, activity=False) is not None
    assert load_session(session, token, now=moment + IDLE_TIMEOUT) is None
    assert session.execute(select(AgentSession)).all() == []


def test_a_session_ends_after_eight_hours_whatever_the_activity(
    session: Session,
) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    token, _ = open_session(session, agent, now=T0)
    moment = T0
    while moment + timedelta(minutes=20) < T0 + LIFETIME:
        moment += timedelta(minutes=20)
        assert load_session(session, token, now=moment) is not None
    assert load_session(session, token, now=T0 + LIFETIME) is None


def test_a_new_password_clears_the_backoff_and_ends_sessions(session: Session) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    token, _ = open_session(session, agent, now=T0)
    for _ in range(5):
        authenticate(session, "andi", "salah", CLIENT, now=T0)
    assert authenticate(session, "andi", PASSWORD, CLIENT, now=T0).outcome == (
        BACKING_OFF
    )
    set_password(session, "andi", "kata-sandi-baru-yang-panjang")
    assert load_session(session, token, now=T0) is None
    assert authenticate(
        session, "andi", "kata-sandi-baru-yang-panjang", CLIENT, now=T0
    ).ok


def test_deactivating_ends_sessions(session: Session) -> None:
    agent = create_agent(session, "andi", PASSWORD, "agent")
    token, _ = open_session(session, agent, now=T0)
    set_active(session, "andi", False)
    assert load_session(session, token, now=T0) is None
    reactivated = set_active(session, "andi", True)
    assert reactivated.active and find_agent(session, "andi") == reactivated


def test_agents_online_counts_logged_in_agents_seen_lately(session: Session) -> None:
    andi = create_agent(session, "andi", PASSWORD, "agent")
    budi = create_agent(session, "budi", PASSWORD, "agent")
    sari = create_agent(session, "sari", PASSWORD, "supervisor")
    assert agents_online(session, T0) == 0
    open_session(session, andi, now=T0)
    budi_token, _ = open_session(session, budi, now=T0 - timedelta(minutes=10))
    open_session(session, sari, now=T0 - timedelta(minutes=1))
    assert agents_online(session, T0) == 2  # Budi was last seen 10 minutes ago
    load_session(session, budi_token, now=T0, activity=False)
    assert agents_online(session, T0) == 3
    purge_expired(session, T0 + LIFETIME)
    assert agents_online(session, T0 + timedelta(minutes=1)) == 0


def test_account_changes_are_audited_with_who_made_them(session: Session) -> None:
    sari = create_agent(session, "sari", PASSWORD, "supervisor", now=T0)
    andi = create_agent(
        session, "andi", PASSWORD, "agent", created_by=sari.id, now=T0
    )
    set_password(session, "andi", "kuda-hijau-makan-bakso", changed_by=sari.id)
    set_active(session, "andi", False, changed_by=sari.id)
    set_active(session, "andi", True, via="cli:operator")
    events = [(e.action, e.agent_id, e.target) for e in audit.latest(session)]
    assert events[::-1] == [
        ("agent_created", None, f"agent:{sari.id}"),
        ("agent_created", sari.id, f"agent:{andi.id}"),
        ("password_set", sari.id, f"agent:{andi.id}"),
        ("agent_deactivated", sari.id, f"agent:{andi.id}"),
        ("agent_activated", None, f"agent:{andi.id} by:cli:operator"),
    ]


def test_simultaneous_guesses_get_no_more_tries_than_one_after_another(
    sessions: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session:
        create_agent(session, "andi", PASSWORD, "agent")
        session.commit()
    checked = []
    real = auth.verify_password

    def slow_verify(password_hash: str, password: str) -> bool:
        checked.append(password)
        time.sleep(0.2)  # every guess is in flight before the first is counted
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow_verify)

    def guess(number: int) -> str:
        with sessions() as session:
            result = authenticate(session, "andi", f"salah-{number}", CLIENT, now=T0)
            session.commit()
            return result.outcome

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(guess, range(12)))
    assert len(checked) == FREE_FAILURES + 1  # then the pair waits 1 s
    assert sorted(set(outcomes)) == [BACKING_OFF, BAD_CREDENTIALS]
    with sessions() as session:
        client = session.execute(
            select(LoginThrottle.failures).where(LoginThrottle.key.like("client:%"))
        ).scalar_one()
    assert client == 12
