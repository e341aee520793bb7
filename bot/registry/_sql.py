"""Small SQL helpers shared by the registry modules (SQLite and PostgreSQL only)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.db import utcnow

SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def dialect_of(session: Session) -> str:
    """The session's database dialect; ValueError unless SQLite or PostgreSQL."""
    name = str(session.get_bind().dialect.name)
    if name not in SUPPORTED_DIALECTS:
        raise ValueError(f"the registry supports SQLite and PostgreSQL, not {name}")
    return name


def upsert_statement(session: Session, table: Any) -> Any:
    """`INSERT` for `table` with the dialect's `ON CONFLICT` methods."""
    return dialect_insert(dialect_of(session), table)


SubjectKind = tuple[bool, bool]
"""Whether a subject names an identity, and whether it names an applicant."""


def subject(
    identity_id: int | None, applicant_id: int | None, missing: str
) -> tuple[SubjectKind, dict[str, Any]]:
    """The kind of a subject (an identity, an applicant or both: consents and
    e-mail codes belong to one) and its bind parameters for `subject_clauses`;
    ValueError(`missing`) when it names neither."""
    if identity_id is None and applicant_id is None:
        raise ValueError(missing)
    kind = (identity_id is not None, applicant_id is not None)
    return kind, {"subject_identity": identity_id, "subject_applicant": applicant_id}


def subject_clauses(table: Any, kind: SubjectKind) -> list[Any]:
    """The clauses matching a subject of this kind in `table` (its
    `identity_id` and `applicant_id` columns), for statements built once."""
    by_identity, by_applicant = kind
    clauses = []
    if by_identity:
        clauses.append(table.c.identity_id == bindparam("subject_identity"))
    if by_applicant:
        clauses.append(table.c.applicant_id == bindparam("subject_applicant"))
    return clauses


def dialect_insert(dialect: str, table: Any) -> Any:
    """`INSERT` for `table` with the `ON CONFLICT` methods of `dialect` (one of
    `SUPPORTED_DIALECTS`), for statements built once per dialect."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def naive_utc(moment: datetime) -> datetime:
    """A datetime as stored: naive UTC (aware values are converted, naive kept)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def now_or(moment: datetime | None) -> datetime:
    """`moment` as naive UTC, or the current time."""
    return utcnow() if moment is None else naive_utc(moment)


def allow_long_statements(session: Session, seconds: int = 600) -> None:
    """Lift PostgreSQL's statement timeout for the rest of this transaction (a
    batch's selection or publication touches every member; the hot paths keep
    the engine's short timeout). Nothing to do on SQLite."""
    if dialect_of(session) == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {int(seconds) * 1000}"))
