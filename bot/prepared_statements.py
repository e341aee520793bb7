"""The hot statements prepared once on each PostgreSQL connection.

psycopg2 sends every statement as text, and PostgreSQL parses, analyses and
plans it on every call: for the gateway's statements that is about half of
the server's CPU a statement (measured: a lookup by a unique key 90 µs as
text, 55-65 µs prepared; a data-modifying `WITH` query of three parts 200 µs,
85-105 µs prepared). psycopg2 has no prepared statements of its own, so a
`DirectStatement`'s plan carries its SQL twice more: `PREPARE name AS ...`
with PostgreSQL's `$n` parameters, and `EXECUTE name(...)` with the same
driver parameters as the text. Each connection runs the `PREPARE` the first
time it runs the statement, and remembers that in its pool record's `info`
(which SQLAlchemy empties when it replaces the connection); a prepared
statement outlives a rollback and lasts as long as the connection.

The first `PREPARE` of a statement in a process runs in a savepoint: a
statement PostgreSQL cannot prepare (a parameter whose type it cannot infer)
leaves the caller's transaction as it was and runs as text from then on.
A migration that changes the type of a column a prepared statement returns
makes PostgreSQL refuse that statement ("cached plan must not change result
type"): that call fails, and the connection prepares its statements anew at
its next use. Like `LISTEN`, this needs session-level connections: not
through a connection pooler in transaction mode.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_PARAMETER = re.compile(r"%%|%\(([^)]+)\)s")
_PREPARED = "direct_sql_prepared"
"""The key, in a pool record's `info`, of the names prepared on it."""
_STALE = "direct_sql_stale"
"""The key, in a pool record's `info`, set when a prepared plan went stale."""
_STALE_PLAN = "cached plan must not change result type"
_names = itertools.count(1)


@dataclass
class PreparedForm:
    """A statement's SQL as PostgreSQL's `PREPARE` and `EXECUTE`."""

    name: str
    prepare_sql: str
    execute_sql: str
    usable: bool | None = field(default=None, compare=False)
    """Whether PostgreSQL prepared it; None until this process tried."""

    def sql_for(
        self, fairy: Any, cursor: Any, error_type: type[Exception]
    ) -> str | None:
        """`execute_sql` once the statement is prepared on this connection
        (a pooled DBAPI connection, whose `cursor` runs it), preparing it if
        need be; None when it runs as text. `error_type`: the driver's base
        error."""
        prepared: set[str] = fairy.info.setdefault(_PREPARED, set())
        if fairy.info.pop(_STALE, False):
            cursor.execute("DEALLOCATE ALL")
            prepared.clear()
        if self.name in prepared:
            return self.execute_sql
        if self.usable is False or not self._prepare(fairy, cursor, error_type):
            return None
        prepared.add(self.name)
        return self.execute_sql

    def _prepare(self, fairy: Any, cursor: Any, error_type: type[Exception]) -> bool:
        if self.usable:
            cursor.execute(self.prepare_sql)
            return True
        # the first try in this process: in a transaction, a savepoint keeps a
        # failure from aborting it
        guarded = not fairy.dbapi_connection.autocommit
        if guarded:
            cursor.execute("SAVEPOINT direct_sql_prepare")
        try:
            cursor.execute(self.prepare_sql)
        except error_type as error:
            if guarded:
                cursor.execute("ROLLBACK TO SAVEPOINT direct_sql_prepare")
            log.warning(
                "statement %s not prepared (%s): run as text",
                self.name,
                type(error).__name__,
            )
            self.usable = False
            return False
        if guarded:
            cursor.execute("RELEASE SAVEPOINT direct_sql_prepare")
        self.usable = True
        return True


def note_if_stale(fairy: Any, error: BaseException) -> None:
    """After `error` from a prepared statement: when its plan went stale (a
    migration changed the type of a column it returns, which PostgreSQL
    refuses to re-plan), the connection drops what it prepared at its next
    use and prepares each statement again; this call only failed."""
    if getattr(error, "pgcode", None) == "0A000" and _STALE_PLAN in str(error):
        log.warning("prepared statements went stale: prepared again")
        fairy.info[_STALE] = True


def prepared_form(sql: str) -> PreparedForm:
    """The `PREPARE` and `EXECUTE` of SQL in psycopg2's style (`%(name)s`
    parameters, `%%` for a percent sign): each name becomes one `$n`."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    statement = f"direct_sql_{next(_names)}"
    body = _PARAMETER.sub(number, sql)
    arguments = ", ".join(f"%({name})s" for name in names)
    return PreparedForm(
        statement,
        f"PREPARE {statement} AS {body}",
        f"EXECUTE {statement}({arguments})" if names else f"EXECUTE {statement}",
    )
