"""`python -m bot.seed`: bring the database up to date and give it what a demo needs.

Run by `make run` (bot/launcher.py) before the services start:
1. the migrations (`alembic upgrade head`);
2. in one transaction:
   - development only: the synthetic NIK population (`population_person`, see
     bot/verification/population.py); elsewhere it is refused with a log line,
     production checks NIKs at NIK_VERIFIER_URL;
   - the batches of the active policy's schedule (PRAKERJA_POLICY, else the
     default of bot/policy/programme.yml);
   - development only: a demo batch open now with places left and the batch after
     it, so "which batch is open" and "which one is next" both have an answer.

3. where Rasa's tracker store is PostgreSQL and its `events` table exists, the
   index it needs beyond Rasa's own (`bot.tracker_index`), so that no Rasa
   server builds it as it starts.
Idempotent: a second run creates nothing. Prints a one-line summary.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.clock import WIB
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.policy.programme import Policy, load_policy
from bot.registry import BatchInfo, ensure_batch, ensure_policy_batches, next_batch
from bot.registry import open_batches as open_batches_at
from bot.registry.models import Batch
from bot.schema import upgrade
from bot.settings import Settings, SettingsError, load_settings
from bot.tracker_index import ensure_sender_events_index
from bot.verification.population import seed_population

logger = logging.getLogger(__name__)

DEMO_BATCH_DAYS = 14
DEMO_BATCH_QUOTA = 1000
DEMO_OPENED_BEFORE = timedelta(hours=1)

batches = Batch.__table__


@dataclass(frozen=True)
class SeedSummary:
    """What a seed run left in the database."""

    environment: str
    policy_version: str
    population: int | None  # people ensured; None when not seeded (not development)
    policy_batches: int  # batches in the policy's schedule
    batches_created: int  # batches this run created
    batch_count: int  # batches in the database after the run
    open_batch: BatchInfo | None  # the lowest-numbered batch open now with places
    next_batch: BatchInfo | None  # the batch after it

    def line(self) -> str:
        """One line for the console (no personal data)."""
        population = "not seeded" if self.population is None else self.population
        if self.open_batch is None:
            batch = "no batch open now"
        else:
            batch = (
                f"batch {self.open_batch.number} open until "
                f"{_wib(self.open_batch.closes_at)}"
            )
            if self.next_batch is not None:
                batch += f", next batch {self.next_batch.number}"
        return (
            f"seed ({self.environment}, policy {self.policy_version}): population "
            f"{population}; {self.batch_count} batches ({self.batches_created} new, "
            f"{self.policy_batches} from the policy); {batch}"
        )


def _wib(moment: datetime) -> str:
    """A stored (naive UTC) moment as WIB for display."""
    local = moment.replace(tzinfo=timezone.utc).astimezone(WIB)
    return f"{local:%d-%m-%Y %H:%M} WIB"


def _naive_utc(moment: datetime | None) -> datetime:
    """``moment`` (aware, or naive UTC) as naive UTC; the current time if None."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _batch_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(batches)).scalar_one())


def _highest_number(session: Session) -> int:
    found = session.execute(select(func.max(batches.c.number))).scalar_one_or_none()
    return int(found or 0)


def ensure_demo_batches(
    session: Session, now: datetime | None = None
) -> tuple[BatchInfo, BatchInfo]:
    """A batch open at ``now`` with places left, and the batch after it.

    Creates them only when missing: a batch numbered after the highest one,
    opened an hour ago and closing 14 days after it opened (quota 1000), then,
    if no batch follows the open one, a next batch opening when it closes, for
    14 days. Development only. The caller commits.
    """
    moment = _naive_utc(now).replace(second=0, microsecond=0)
    open_now = open_batches_at(session, moment)
    if open_now:
        current = open_now[0]
    else:
        opens = moment - DEMO_OPENED_BEFORE
        current = ensure_batch(
            session,
            _highest_number(session) + 1,
            opens,
            opens + timedelta(days=DEMO_BATCH_DAYS),
            DEMO_BATCH_QUOTA,
        )
    following = next_batch(session, current.number)
    if following is None:
        following = ensure_batch(
            session,
            _highest_number(session) + 1,
            current.closes_at,
            current.closes_at + timedelta(days=DEMO_BATCH_DAYS),
            DEMO_BATCH_QUOTA,
        )
    return current, following


def seed(
    settings: Settings, *, policy: Policy | None = None, now: datetime | None = None
) -> SeedSummary:
    """Migrate the database, then seed it in one transaction (see the module).

    ``policy`` None means the active one (PRAKERJA_POLICY, else the default);
    ``now`` None means the current time.
    """
    active = policy or load_policy()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            before = _batch_count(session)
            population: int | None = None
            if settings.is_development:
                population = seed_population(session)
            else:
                logger.warning(
                    "not seeding the synthetic NIK population: PRAKERJA_ENV=%s is "
                    "not development (production checks NIKs at NIK_VERIFIER_URL)",
                    settings.environment,
                )
            scheduled = ensure_policy_batches(session, active)
            current: BatchInfo | None
            following: BatchInfo | None
            if settings.is_development:
                current, following = ensure_demo_batches(session, now)
            else:
                found = open_batches_at(session, _naive_utc(now))
                current = found[0] if found else None
                following = (
                    None if current is None else next_batch(session, current.number)
                )
            after = _batch_count(session)
    finally:
        engine.dispose()
    _index_tracker_store(settings.tracker_store_url)
    return SeedSummary(
        environment=settings.environment,
        policy_version=active.version,
        population=population,
        policy_batches=len(scheduled),
        batches_created=after - before,
        batch_count=after,
        open_batch=current,
        next_batch=following,
    )


def _index_tracker_store(url: str) -> None:
    """`ensure_sender_events_index` on a PostgreSQL tracker store (on SQLite the
    one Rasa server makes it at start, at no cost worth a step)."""
    if not url or make_url(url).get_backend_name() != "postgresql":
        return
    engine = make_engine(url)
    try:
        ensure_sender_events_index(engine)
    finally:
        engine.dispose()


def main() -> int:
    """Seed the database named by the environment; the process exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        summary = seed(load_settings())
    except (SettingsError, ValueError) as exc:  # bad settings or policy version
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    print(summary.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
