"""Run a side effect once per turn; a repeated turn gets the recorded outcome.

`once(sessions, key, name, work, kind)` runs `work(session)` in one transaction
that first claims the row (key, name) of the `effect` table and then stores
`work`'s result in it, so the effect and its record commit together or not at
all. A repeated turn (the gateway re-sent the message after a crash) finds the
row and gets the recorded outcome back without acting again. Two runs at the
same instant: the second one's claim waits on the primary key until the first
commits (PostgreSQL), or on the database lock (SQLite), and then reads the first
one's outcome. Without a key (Rasa's REST channel, `make shell`, tests) the work
simply runs.

Outcomes are (frozen) dataclasses stored as JSON with pydantic (already a Rasa
dependency), which also reads them back into the same types; `stored` gives the
version to record, without personal data in clear.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import parse_obj_as
from pydantic.json import pydantic_encoder
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import read_session, utcnow
from bot.direct_sql import DirectStatement
from bot.effects.models import KEY_MAX, NAME_MAX, Effect

log = logging.getLogger(__name__)

T = TypeVar("T")
effects = Effect.__table__
KEEP = timedelta(days=7)
"""How long outcomes are kept: far longer than any turn is retried."""
_CLAIMED = ""  # claimed in an open transaction, not yet recorded
# Built once (every action with a side effect runs through the ledger):
# building a statement cost more than running it.
_THIS = (
    effects.c.idempotency_key == bindparam("effect_key"),
    effects.c.name == bindparam("effect_name"),
)
RECORDED = DirectStatement(select(effects.c.outcome).where(*_THIS))
CLAIM = DirectStatement(insert(effects), values_from_parameters=True)
RECORD = DirectStatement(
    update(effects).where(*_THIS).values(outcome=bindparam("new_outcome"))
)


class EffectTakenError(Exception):
    """Another run of the same turn claimed the effect first."""


def _check(key: str, name: str) -> None:
    if not 0 < len(key) <= KEY_MAX or not 0 < len(name) <= NAME_MAX:
        raise ValueError("an effect needs a key and a name of at most 64 characters")


def recorded(session: Session, key: str, name: str) -> dict[str, Any] | None:
    """The record of an effect (`{"outcome": decoded JSON}`), None when not
    done."""
    found = RECORDED.execute(
        session, {"effect_key": key, "effect_name": name}
    ).scalar_one_or_none()
    if not found:
        return None
    loaded: dict[str, Any] = json.loads(found)
    return loaded


def claim(session: Session, key: str, name: str, now: datetime) -> None:
    """Claim the effect first thing in the caller's transaction; EffectTakenError
    if it is recorded already (the caller must roll back)."""
    _check(key, name)
    try:  # the transaction's first write: no savepoint needed (nor reliable on
        # pysqlite), the whole transaction is rolled back on EffectTakenError
        CLAIM.execute(
            session,
            {
                "idempotency_key": key,
                "name": name,
                "outcome": _CLAIMED,
                "created_at": now,
            },
        )
    except IntegrityError:
        raise EffectTakenError(name) from None


def record(session: Session, key: str, name: str, outcome: Any) -> None:
    """Store the outcome of a claimed effect (same transaction as the claim)."""
    RECORD.execute(
        session,
        {
            "effect_key": key,
            "effect_name": name,
            "new_outcome": json.dumps({"outcome": outcome}, default=pydantic_encoder),
        },
    )


def once(
    sessions: Callable[[], Session],
    key: str | None,
    name: str,
    work: Callable[[Session], T],
    kind: Any,
    *,
    stored: Callable[[T], T] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> T:
    """`work(session)` in one transaction, once per (`key`, `name`).

    `kind` is the type `work` returns (to read a recorded outcome back);
    `stored(result)` the version recorded (default: the result itself). A
    repeated call returns the recorded version.
    """
    if key is None:
        with sessions() as session, session.begin():
            return work(session)
    for _ in range(2):
        found, outcome = replay(sessions, key, name, kind)
        if found:
            return outcome
        try:
            with sessions() as session, session.begin():
                claim(session, key, name, clock())
                result = work(session)
                record(session, key, name, (stored or _same)(result))
                return result
        except EffectTakenError:
            continue  # recorded meanwhile by a parallel run: read it
    raise RuntimeError(f"effect {name} of turn {key} is claimed but not recorded")


def replay(
    sessions: Callable[[], Session], key: str | None, name: str, kind: Any
) -> tuple[bool, Any]:
    """(True, the recorded outcome as a `kind`) when the effect was done for
    `key`, else (False, None)."""
    if key is None:
        return False, None
    with read_session(sessions) as session:
        found = recorded(session, key, name)
    if found is None:
        return False, None
    log.info("effect %s of turn %s replayed", name, key)
    return True, parse_obj_as(kind, found["outcome"])


def _same(result: T) -> T:
    return result


def purge(session: Session, now: datetime, keep: timedelta = KEEP) -> int:
    """Delete outcomes older than `keep`; how many."""
    result = session.execute(delete(effects).where(effects.c.created_at < now - keep))
    return int(result.rowcount or 0)
