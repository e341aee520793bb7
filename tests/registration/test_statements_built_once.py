"""The registry's statements are built once, not at every call.

Building a SQLAlchemy statement (`select(...).where(column == value)`) and its
cache key at every call cost the action server more than running it
(docs/benchmarks.md, "Statements built once"). A whole registration through the
desk (the caller, consent, an e-mail code, submit, the NIK check's end, a batch
joined, the standing read) and a value kept in the token vault and revealed
run once to warm up; a second person's then must
not build a single SELECT, INSERT, UPDATE or DELETE in our code.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.base import Generative
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.selectable import Select

from bot.messages.models import Conversation
from bot.privacy.detect import EMAIL
from bot.privacy.vault import Vault
from bot.registration.desk import RegistrationDesk
from bot.registry.identities import unlink_identity
from tests.registration.conftest import (
    START,
    add_batch,
    caller_of,
    finish_nik_check,
    register,
)

OURS = str(Path(__file__).resolve().parents[2] / "bot")


def _builder() -> str | None:
    """Where in our code the statement being built was asked for, if there."""
    frame = sys._getframe(2)
    while frame is not None and (
        "sqlalchemy" in frame.f_code.co_filename
        or frame.f_code.co_filename.startswith("<")  # SQLAlchemy's generated code
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or not frame.f_code.co_filename.startswith(OURS):
        return None
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


@contextmanager
def statements_built() -> Iterator[Counter[str]]:
    """Count the statements our code builds (new ones, and each `.where`,
    `.values`, ... on one), by where it builds them."""
    built: Counter[str] = Counter()
    originals: list[tuple[Any, str, Any]] = []

    def watch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name]
        originals.append((owner, name, original))
        setattr(owner, name, wrap(original))

    def counted(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            where = _builder()
            if where is not None:
                built[where] += 1
            return function(*args, **kwargs)

        return call

    watch(Generative, "_generate", counted)
    for dml in (Insert, Update, Delete):
        watch(dml, "__init__", counted)
    watch(
        Select,
        "_create_future_select",
        lambda method: classmethod(counted(method.__func__)),
    )
    try:
        yield built
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _one_registration(
    desk: RegistrationDesk,
    sessions: sessionmaker,
    converse: Callable[[str, str], str],
    serial: int,
) -> None:
    alias = converse("telegram", str(4200 + serial))
    caller = caller_of(desk, alias)
    assert desk.has_consent(caller) is False
    submission = register(desk, caller, serial)
    assert submission.outcome == "queued" and submission.applicant_id is not None
    finish_nik_check(sessions, submission.applicant_id, START)
    caller = caller_of(desk, alias)
    assert desk.join(caller).outcome == "joined"
    assert desk.standing(caller) is not None
    vault = Vault(sessions)  # what the actions keep and reveal on most turns
    token = vault.keep(alias, EMAIL, f"orang{serial}@gmail.com")
    assert token is not None
    assert vault.reveal(alias, f"ini {token}") == f"ini orang{serial}@gmail.com"


def test_a_registration_builds_no_statement_once_warm(
    desk: RegistrationDesk,
    sessions: sessionmaker,
    converse: Callable[[str, str], str],
) -> None:
    add_batch(sessions, 1, START - timedelta(days=1), START + timedelta(days=7))
    _one_registration(desk, sessions, converse, 1)  # warm: the variants built
    with statements_built() as built:
        _one_registration(desk, sessions, converse, 2)
    assert dict(built) == {}


def test_the_counter_sees_a_statement_built_at_the_call(
    desk: RegistrationDesk,
    sessions: sessionmaker,
    converse: Callable[[str, str], str],
) -> None:
    """The check above can fail: unlinking an identity (rare: built at the
    call) is counted where `bot` builds it, and a test's own statement is not."""
    caller = caller_of(desk, converse("telegram", "4242"))
    with statements_built() as built, sessions() as session:
        unlink_identity(session, caller.identity_id)
        select(Conversation.id).where(Conversation.id == 1)
    assert sum(built.values()) >= 3  # update(), .where(), .values()
    assert {where.split(":")[0] for where in built} == {"identities.py"}
