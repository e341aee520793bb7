"""Logging in to the console, with password guessing limited.

- Per client address: 20 refused logins within 15 minutes refuse every further
  login from it until the window ends. The address is the direct peer's, or the
  one a trusted proxy passes on (TRUSTED_PROXIES, see `bot.__main__`); an IPv6
  address counts per /64, as one host usually holds the whole /64.
- Per (username, client address): after 3 failed passwords, each further one
  makes that pair wait twice as long before its next try (1 s, 2 s, 4 s, ...,
  at most 15 minutes); a try while it waits is refused without checking the
  password. Failures from other addresses never make the real agent wait, so
  strangers cannot lock an account.
- Per account: 10 failed passwords within 15 minutes, from anywhere, alert the
  supervisors (their page lists the account, one `login_alert` audit event per
  window, a warning in the log); nothing is locked.

Refused logins are counted in `login_throttle` (`bot.console.throttle`, shared
by every gateway process), not audited one by one, so strangers cannot flush
the audit log. An attempt is counted before its password is checked (`admit`,
committed on its own) and the counts are taken back when the password is right,
so simultaneous guesses get no more tries than guesses one after another.

Every refusal looks the same to the person logging in (a generic message);
the reason is only in the result, for the log and the tests. An unknown
username costs one argon2 verification too, so timing does not tell which
usernames exist.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.console import audit, throttle
from bot.console.agents import AgentInfo, agents_table, get_agent, normalize_username
from bot.console.password_policy import MAX_PASSWORD_LENGTH
from bot.console.passwords import (
    burn_verification,
    hash_password,
    needs_rehash,
    verify_password,
)
from bot.db import utcnow

log = logging.getLogger(__name__)

CLIENT_FAILURE_LIMIT = 20
CLIENT_WINDOW = timedelta(minutes=15)
FREE_FAILURES = 3
"""Failed passwords of one (username, address) pair before it backs off."""
BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_MAX = timedelta(minutes=15)
PAIR_WINDOW = timedelta(minutes=15)
ALERT_FAILURES = 10
ACCOUNT_WINDOW = timedelta(minutes=15)
IPV6_PREFIX = 64

OK = "ok"
BAD_CREDENTIALS = "bad_credentials"
BACKING_OFF = "backing_off"
CLIENT_LIMITED = "client_limited"


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login: the agent when `outcome` is ok."""

    outcome: str
    agent: AgentInfo | None = None

    @property
    def ok(self) -> bool:
        """The password was right and nothing refuses the login."""
        return self.outcome == OK


def client_address(address: str) -> str:
    """The address a client is counted by: IPv4 as is, IPv6 as its /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def client_target(secret: bytes, address: str) -> str:
    """A client address's name in counters: `ip:` and a keyed hash."""
    counted = client_address(address).encode()
    digest = hmac.new(secret, counted, hashlib.sha256).hexdigest()
    return f"ip:{digest[:32]}"


def backoff(failures: int) -> timedelta:
    """How long a pair waits after its `failures`-th failed password."""
    extra = failures - FREE_FAILURES
    if extra <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * 2 ** min(extra - 1, 20), BACKOFF_MAX)


@dataclass(frozen=True)
class Admission:
    """A login attempt counted before its password is checked: `refusal` says
    why it stops here, None lets `check_password` go on."""

    client: str
    pair: str
    name: str
    refusal: str | None = None


def admit(
    session: Session, username: str, client: str, now: datetime | None = None
) -> Admission:
    """Count an attempt in advance, as if it failed: once for its client (refused
    past the limit) and once for its (username, client) pair (refused while the
    pair waits; otherwise the pair's next wait is set now and lifted if the
    password is right). Commit this before checking the password, so that
    simultaneous attempts count each other and no lock is held meanwhile."""
    moment = now or utcnow()
    name = normalize_username(username)[:64]
    pair = throttle.pair_key(client, name)
    counted = throttle.count_failure(
        session, throttle.client_key(client), CLIENT_WINDOW, moment
    )
    if counted.failures == 1:  # a new window: a good moment to tidy up
        throttle.purge(session, moment)
    if counted.failures > CLIENT_FAILURE_LIMIT:
        return Admission(client, pair, name, CLIENT_LIMITED)
    agent_id = session.execute(
        select(agents_table.c.id).where(
            agents_table.c.username == name, agents_table.c.active.is_(True)
        )
    ).scalar_one_or_none()
    attempt = throttle.count_failure(session, pair, PAIR_WINDOW, moment, agent_id)
    if attempt.blocked_until is not None and attempt.blocked_until > moment:
        throttle.uncount(session, pair)
        return Admission(client, pair, name, BACKING_OFF)
    wait = backoff(attempt.failures)
    if wait:
        throttle.block(session, pair, moment + wait)
    return Admission(client, pair, name)


def _alert_on_failure(session: Session, agent_id: int, now: datetime) -> None:
    account = throttle.count_failure(
        session, throttle.account_key(agent_id), ACCOUNT_WINDOW, now, agent_id
    )
    if account.failures == ALERT_FAILURES:
        audit.record(
            session, audit.LOGIN_ALERT, None, target=f"agent:{agent_id}", now=now
        )
        log.warning(
            "console: %d failed logins for agent %d within %d minutes",
            account.failures,
            agent_id,
            ACCOUNT_WINDOW.total_seconds() // 60,
        )


def check_password(
    session: Session, admission: Admission, password: str, now: datetime | None = None
) -> LoginResult:
    """Check the password of an admitted attempt: a wrong one counts for its
    account (alerting supervisors past `ALERT_FAILURES`); a right one takes back
    the attempt's advance counts. The caller commits either way."""
    moment = now or utcnow()
    if admission.refusal is not None:
        return LoginResult(admission.refusal)
    row = session.execute(
        select(agents_table).where(agents_table.c.username == admission.name)
    ).one_or_none()
    if row is None or not row.active or len(password) > MAX_PASSWORD_LENGTH:
        burn_verification(password[:MAX_PASSWORD_LENGTH])
        return LoginResult(BAD_CREDENTIALS)
    if not verify_password(row.password_hash, password):
        _alert_on_failure(session, row.id, moment)
        return LoginResult(BAD_CREDENTIALS)
    throttle.forget(session, admission.pair)
    throttle.uncount(session, throttle.client_key(admission.client))
    if needs_rehash(row.password_hash):
        session.execute(
            update(agents_table)
            .where(agents_table.c.id == row.id)
            .values(password_hash=hash_password(password))
        )
    audit.record(session, audit.LOGIN, row.id, now=moment)
    return LoginResult(OK, AgentInfo.from_row(row))


def authenticate(
    session: Session,
    username: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> LoginResult:
    """`admit` and `check_password` in one transaction (`client`: the name from
    `client_target`); the caller commits either way. The login route commits
    between the two instead, so no row stays locked while argon2 runs."""
    admission = admit(session, username, client, now)
    return check_password(session, admission, password, now)


@dataclass(frozen=True)
class LoginAlert:
    """An account with many failed passwords lately, for the supervisors."""

    agent: AgentInfo
    failures: int
    addresses: int
    since: datetime


def login_alerts(session: Session, now: datetime | None = None) -> list[LoginAlert]:
    """Accounts with `ALERT_FAILURES` failed passwords or more in their open
    window, with from how many client addresses."""
    found = []
    for alert in throttle.account_alerts(
        session, ACCOUNT_WINDOW, ALERT_FAILURES, now or utcnow()
    ):
        agent = get_agent(session, alert.agent_id)
        if agent is not None:
            found.append(
                LoginAlert(agent, alert.failures, alert.addresses, alert.since)
            )
    return found


def refused_logins(
    session: Session, now: datetime | None = None
) -> throttle.RefusedLogins:
    """Refused logins in the client windows still open."""
    return throttle.refused_logins(
        session, CLIENT_WINDOW, CLIENT_FAILURE_LIMIT, now or utcnow()
    )
