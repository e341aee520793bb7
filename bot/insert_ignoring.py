"""`INSERT ... ON CONFLICT DO NOTHING` that SQLAlchemy can cache (SQLite and
PostgreSQL).

SQLAlchemy 1.4's dialect `insert().on_conflict_do_nothing()` has no cache key,
so such a statement is compiled again on every execution: on the gateway's hot
path (every inbound message) that was about a twentieth of its CPU. Here the
clause is a stateless element with a cache key (its class), put where the
dialects put theirs (the insert's post-values clause: after VALUES, before
PostgreSQL's RETURNING) and rendered through SQLAlchemy's compiler extension,
so the statement is compiled once. Without a conflict target a clash on any
unique key skips the row; with one (column names), only a clash on that key
does, and a clash on another raises as a plain insert would.

`insert_ignoring_conflict` is the one helper every module uses to insert a
row once (the gateway's inbox and conversations, the registry, the
population table, the effect ledger's neighbours).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal

from bot.direct_sql import DirectStatement


class OnConflictDoNothing(ClauseElement):
    """`ON CONFLICT [(target columns)] DO NOTHING`."""

    __visit_name__ = "on_conflict_do_nothing_any_key"
    _traverse_internals = [("target", InternalTraversal.dp_string_list)]
    """The target is the only state: with the class, the cache key."""

    def __init__(self, target: tuple[str, ...] = ()) -> None:
        self.target = target


@compiles(OnConflictDoNothing, "sqlite")
@compiles(OnConflictDoNothing, "postgresql")
def _render(element: OnConflictDoNothing, compiler: Any, **kw: Any) -> str:
    if not element.target:
        return "ON CONFLICT DO NOTHING"
    columns = ", ".join(compiler.preparer.quote(name) for name in element.target)
    return f"ON CONFLICT ({columns}) DO NOTHING"


@compiles(OnConflictDoNothing)
def _unsupported(element: OnConflictDoNothing, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"ON CONFLICT DO NOTHING on {compiler.dialect.name}")


@functools.lru_cache(maxsize=128)
def insert_ignoring(table: Any, target: tuple[str, ...] = ()) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for `table`: a row whose unique key
    (any of them, or the `target` columns') is taken is skipped and the
    transaction goes on. Pass the values as execution parameters. Built once
    per table and target."""
    statement = insert(table)
    statement._post_values_clause = OnConflictDoNothing(target)  # as dialects do
    return statement


def insert_ignoring_conflict(
    session: Session,
    table: Any,
    values: dict[str, Any],
    conflict: Sequence[str] | None = None,
) -> bool:
    """Insert one row; False when its key is taken: any unique key (partial
    ones included: when two processes create one conversation at once,
    PostgreSQL may find the clash on its pseudonym's index first), or the
    `conflict` columns' key only. A concurrent insert of the same key waits for
    the other transaction and then does nothing; the caller's transaction is
    never aborted by the clash."""
    statement = _direct(table, tuple(conflict or ()))
    return bool(statement.execute(session, values).rowcount == 1)


@functools.lru_cache(maxsize=128)
def _direct(table: Any, target: tuple[str, ...]) -> DirectStatement:
    """`insert_ignoring` run past SQLAlchemy's per-call work (`bot.direct_sql`)."""
    return DirectStatement(insert_ignoring(table, target), values_from_parameters=True)
