"""All configuration, from the environment, in one typed place.

With nothing else set, everything runs on the embedded default: a SQLite file
under var/, the simulator channel, no provider accounts. `PRAKERJA_ENV` defaults
to "production" (fail closed: no simulator, real secrets required); `make run`
and the tests set "development"/"test". Outside development the process stops
at start unless PSEUDONYM_KEY (and TELEGRAM_SECRET_TOKEN, when Telegram is
configured) are 32 or more random bytes and PUBLIC_BASE_URL is https.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from datetime import time
from pathlib import Path

from bot.policy.programme import load_policy
from bot.secret_strength import secret_problem

DEV_ENVIRONMENTS = {"development", "test"}
DEFAULT_EMAIL_FROM = "Kartu Prakerja <noreply@prakerja.localhost>"
DEFAULT_AGENT_HOURS = (time(8, 0), time(20, 0))
"""Agents work 08:00-20:00 WIB unless AGENT_HOURS says otherwise."""
DEFAULT_RETENTION_DAYS = 365
"""Personal data and conversations are kept this many days after the last
activity. A person who is not selected joins the next batches without typing
their data again, and batches opened through the year; a year of silence means
the registration is no longer pursued."""
DEFAULT_TELEGRAM_PER_SECOND = 30
"""Telegram's limit for one bot (more needs Telegram's paid broadcasts)."""
DEFAULT_TELEGRAM_CHAT_PER_SECOND = 1
"""Telegram's limit for one chat, after a short burst."""
DEFAULT_AGENT_DAYS = frozenset(range(1, 8))
"""Agents work every day (ISO weekdays 1-7) unless AGENT_DAYS says otherwise."""
_CLOCK = r"([01]?\d|2[0-3])[:.]([0-5]\d)"
_END_OF_DAY = r"(24)[:.](00)"
_HOURS = re.compile(rf"\s*{_CLOCK}\s*-\s*(?:{_CLOCK}|{_END_OF_DAY})\s*")
_DAYS = re.compile(r"\s*([1-7])\s*(?:-\s*([1-7])\s*)?")


class SettingsError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    """Runtime settings of the gateway and its workers."""

    environment: str
    database_url: str
    public_base_url: str
    rasa_url: str
    actions_url: str
    pseudonym_key: str
    telegram_token: str | None
    telegram_secret_token: str | None
    telegram_api_url: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_from_number: str | None
    twilio_api_url: str
    gateway_host: str
    gateway_port: int
    smtp_url: str | None
    email_from: str
    email_outbox_dir: Path
    nik_verifier_url: str | None
    agent_hours: tuple[time, time] = DEFAULT_AGENT_HOURS
    """When agents work (WIB): opening (inclusive) and closing (exclusive) time."""
    agent_days: frozenset[int] = DEFAULT_AGENT_DAYS
    """ISO weekdays (Monday 1 ... Sunday 7) on which agents work."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose X-Forwarded-For counts."""
    retention_days: int = DEFAULT_RETENTION_DAYS
    """Days after the last activity that conversations and personal data are kept."""
    tracker_store_url: str = "sqlite:///var/rasa_tracker.db"
    """Rasa's SQL tracker store (as in endpoints.yml), for erasure and retention."""
    redis_url: str | None = None
    """Redis shared by the gateway processes for the providers' pacing; None:
    each process paces on its own (one process, e.g. `make run`)."""
    telegram_per_second: int = DEFAULT_TELEGRAM_PER_SECOND
    """Messages a second the Telegram bot may send, all processes together."""
    telegram_chat_per_second: int = DEFAULT_TELEGRAM_CHAT_PER_SECOND
    """Messages a second the bot may send to one chat after a short burst
    (Telegram's rule: one; raised only by benchmarks, against a fake Telegram)."""
    twilio_per_second: int | None = None
    """Messages a second the Twilio sender number may send, all processes
    together (that number's MPS); None: not paced (Twilio queues the excess)."""

    def secret_for(self, purpose: str) -> bytes:
        """A key derived from the pseudonym key for one purpose (e.g. e-mail
        codes), so one secret in the environment serves every HMAC."""
        return hmac.new(
            self.pseudonym_key.encode(), purpose.encode(), hashlib.sha256
        ).digest()

    @property
    def telegram_enabled(self) -> bool:
        """A real Telegram bot is configured."""
        return bool(self.telegram_token)

    @property
    def twilio_enabled(self) -> bool:
        """A real Twilio account is configured."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def is_development(self) -> bool:
        """Running on a developer's machine or in tests."""
        return self.environment in DEV_ENVIRONMENTS


def _get(env: dict[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def policy_agent_hours(version: str | None) -> tuple[str, str]:
    """AGENT_HOURS and AGENT_DAYS defaults: the call center's hours in the
    policy version (so the bot never promises other hours than the call center
    it names), or 08:00-20:00 every day when the version gives no hours."""
    call_center = load_policy(version).contacts.call_center
    if not call_center.has_hours or not call_center.opens or not call_center.closes:
        return "08:00-20:00", "1-7"
    days = ",".join(str(day + 1) for day in sorted(call_center.weekdays))
    return f"{call_center.opens}-{call_center.closes}", days


def parse_agent_hours(value: str) -> tuple[time, time]:
    """AGENT_HOURS as (opens, closes): "HH:MM-HH:MM" (or "08.00-20.00") in WIB,
    opening before closing on the same day ("00:00-24:00": all day);
    SettingsError otherwise."""
    match = _HOURS.fullmatch(value)
    if match is None:
        raise SettingsError(
            f"AGENT_HOURS must look like 08:00-20:00 (WIB), not {value!r}"
        )
    hour1, minute1, *ends = match.groups()
    opens = time(int(hour1), int(minute1))
    end_of_day = ends[2] is not None  # 24:00
    closes = time.max if end_of_day else time(int(ends[0]), int(ends[1]))
    if not opens < closes:
        raise SettingsError(
            f"AGENT_HOURS must open before it closes on the same day: {value!r}"
        )
    return opens, closes


def parse_agent_days(value: str) -> frozenset[int]:
    """AGENT_DAYS as ISO weekdays: ranges and single days separated by commas,
    e.g. "1-7", "1-5", "1-5,7" (Monday is 1); SettingsError otherwise."""
    days: set[int] = set()
    for part in value.split(","):
        match = _DAYS.fullmatch(part)
        if match is None:
            raise SettingsError(
                "AGENT_DAYS must be ISO weekdays 1-7 (Monday is 1) such as 1-7, "
                f"1-5 or 1-5,7, not {value!r}"
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first:
            raise SettingsError(f"AGENT_DAYS range {part.strip()!r} runs backwards")
        days.update(range(first, last + 1))
    return frozenset(days)


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """TRUSTED_PROXIES as addresses and networks (CIDR), separated by commas or
    spaces, e.g. "10.0.0.0/8, 192.168.1.5"; SettingsError otherwise."""
    proxies = []
    for part in value.replace(",", " ").split():
        try:
            proxies.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise SettingsError(
                f"TRUSTED_PROXIES must be IP addresses or networks such as "
                f"10.0.0.0/8, not {part!r}"
            ) from exc
    return tuple(proxies)


def parse_retention_days(value: str | None) -> int:
    """RETENTION_DAYS as a whole number of days of at least 1 (unset: the
    default); SettingsError otherwise."""
    if value is None:
        return DEFAULT_RETENTION_DAYS
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(
            f"RETENTION_DAYS must be a whole number of days, at least 1: {value!r}"
        )
    return int(value)


def parse_per_second(name: str, value: str | None) -> int | None:
    """A rate in messages a second, a whole number of at least 1 (unset: None);
    SettingsError otherwise."""
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(
            f"{name} must be a whole number of messages a second, at least 1: "
            f"{value!r}"
        )
    return int(value)


def _dev_key(var_dir: Path) -> str:
    """A per-checkout random key, kept in var/ so pseudonyms stay stable."""
    path = var_dir / "pseudonym.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key, encoding="utf-8")
    path.chmod(0o600)
    return key


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or a given mapping)."""
    env = dict(os.environ if env is None else env)
    environment = _get(env, "PRAKERJA_ENV") or "production"
    var_dir = Path(_get(env, "PRAKERJA_VAR_DIR") or "var")
    policy_name = _get(env, "PRAKERJA_POLICY")
    settings = Settings(
        environment=environment,
        database_url=_get(env, "DATABASE_URL") or f"sqlite:///{var_dir}/prakerja.db",
        public_base_url=(
            _get(env, "PUBLIC_BASE_URL") or "http://localhost:8000"
        ).rstrip("/"),
        rasa_url=(_get(env, "RASA_URL") or "http://localhost:5005").rstrip("/"),
        actions_url=(_get(env, "ACTIONS_URL") or "http://localhost:5055").rstrip("/"),
        pseudonym_key=_get(env, "PSEUDONYM_KEY")
        or (_dev_key(var_dir) if environment in DEV_ENVIRONMENTS else ""),
        telegram_token=_get(env, "TELEGRAM_TOKEN"),
        telegram_secret_token=_get(env, "TELEGRAM_SECRET_TOKEN"),
        telegram_api_url=(
            _get(env, "TELEGRAM_API_URL") or "https://api.telegram.org"
        ).rstrip("/"),
        twilio_account_sid=_get(env, "TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_get(env, "TWILIO_AUTH_TOKEN"),
        twilio_from_number=_get(env, "TWILIO_FROM_NUMBER"),
        twilio_api_url=(_get(env, "TWILIO_API_URL") or "https://api.twilio.com").rstrip(
            "/"
        ),
        gateway_host=_get(env, "GATEWAY_HOST") or "127.0.0.1",
        gateway_port=int(_get(env, "GATEWAY_PORT") or "8000"),
        smtp_url=_get(env, "SMTP_URL"),
        email_from=_get(env, "EMAIL_FROM") or DEFAULT_EMAIL_FROM,
        email_outbox_dir=Path(
            _get(env, "EMAIL_OUTBOX_DIR") or str(var_dir / "email-outbox")
        ),
        nik_verifier_url=_get(env, "NIK_VERIFIER_URL"),
        agent_hours=parse_agent_hours(
            _get(env, "AGENT_HOURS") or policy_agent_hours(policy_name)[0]
        ),
        agent_days=parse_agent_days(
            _get(env, "AGENT_DAYS") or policy_agent_hours(policy_name)[1]
        ),
        trusted_proxies=parse_trusted_proxies(_get(env, "TRUSTED_PROXIES") or ""),
        retention_days=parse_retention_days(_get(env, "RETENTION_DAYS")),
        tracker_store_url=_get(env, "TRACKER_STORE_URL")
        or (
            f"sqlite:///{var_dir}/rasa_tracker.db"
            if environment in DEV_ENVIRONMENTS
            else ""
        ),
        redis_url=_get(env, "REDIS_URL"),
        telegram_per_second=parse_per_second(
            "TELEGRAM_MESSAGES_PER_SECOND", _get(env, "TELEGRAM_MESSAGES_PER_SECOND")
        )
        or DEFAULT_TELEGRAM_PER_SECOND,
        telegram_chat_per_second=parse_per_second(
            "TELEGRAM_CHAT_MESSAGES_PER_SECOND",
            _get(env, "TELEGRAM_CHAT_MESSAGES_PER_SECOND"),
        )
        or DEFAULT_TELEGRAM_CHAT_PER_SECOND,
        twilio_per_second=parse_per_second(
            "TWILIO_MESSAGES_PER_SECOND", _get(env, "TWILIO_MESSAGES_PER_SECOND")
        ),
    )
    check(settings)
    return settings


def check(settings: Settings) -> None:
    """Refuse unsafe settings outside development: weak secrets, an http public
    URL, a channel or service configured by half."""
    if settings.is_development:
        return
    problems = [
        problem
        for problem in (
            secret_problem("PSEUDONYM_KEY", settings.pseudonym_key),
            secret_problem(
                "TELEGRAM_SECRET_TOKEN", settings.telegram_secret_token, telegram=True
            )
            if settings.telegram_enabled or settings.telegram_secret_token
            else None,
        )
        if problem
    ]
    if settings.twilio_enabled and not settings.twilio_from_number:
        problems.append("TWILIO_FROM_NUMBER must be set when Twilio is configured")
    if not settings.public_base_url.startswith("https://"):
        problems.append(
            "PUBLIC_BASE_URL must be the gateway's public https URL (the console's "
            "cookies are Secure only then; Twilio signs it; Telegram needs https)"
        )
    if (settings.twilio_enabled or settings.telegram_enabled) and (
        not settings.redis_url
    ):
        problems.append(
            "REDIS_URL must be set when a real channel is configured: the "
            "providers' rate limits are shared by every gateway process"
        )
    if not settings.smtp_url:
        problems.append(
            "SMTP_URL must be set outside development (codes would only be "
            "written to a local folder)"
        )
    if not settings.tracker_store_url:
        problems.append(
            "TRACKER_STORE_URL must name Rasa's tracker store outside development "
            "(erasure and retention remove tracker events there)"
        )
    if not settings.nik_verifier_url:
        problems.append(
            "NIK_VERIFIER_URL must be set outside development (the local "
            "population is synthetic)"
        )
    if problems:
        raise SettingsError("; ".join(problems))
