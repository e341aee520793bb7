"""`INSERT ... ON CONFLICT DO NOTHING` that SQLAlchemy can cache (SQLite and
PostgreSQL).

SQLAlchemy 1.4's dialect `insert().on_conflict_do_nothing()` has no cache key,
so such a statement is compiled again on every execution: on the gateway's hot
path (every inbound message) that was about a twentieth of its CPU. Here the
clause is a stateless element with a cache key (its class), put where the
dialects put theirs (the insert's post-values clause: after VALUES, before
PostgreSQL's RETURNING) and rendered through SQLAlchemy's compiler extension,
so the statement is compiled once. It has no conflict target: a clash on any
unique key skips the row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement


class OnConflictDoNothing(ClauseElement):
    """`ON CONFLICT DO NOTHING` without a target."""

    __visit_name__ = "on_conflict_do_nothing_any_key"
    _traverse_internals: list[Any] = []
    """No state: the class alone is the cache key."""


@compiles(OnConflictDoNothing, "sqlite")
@compiles(OnConflictDoNothing, "postgresql")
def _render(element: OnConflictDoNothing, compiler: Any, **kw: Any) -> str:
    return "ON CONFLICT DO NOTHING"


@compiles(OnConflictDoNothing)
def _unsupported(element: OnConflictDoNothing, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"ON CONFLICT DO NOTHING on {compiler.dialect.name}")


def insert_ignoring(table: Any) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for `table`: a row whose unique key
    (any of them) is taken is skipped and the transaction goes on. Pass the
    values as execution parameters."""
    statement = insert(table)
    statement._post_values_clause = OnConflictDoNothing()  # as the dialects do
    return statement
