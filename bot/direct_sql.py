"""Hot statements compiled once by SQLAlchemy and run on the driver's cursor.

Under load, `Session.execute` of a statement built once still costs the gateway
three to four times the statement itself (measured: about 150 µs a statement
against 20-80 µs in SQLite's `cursor.execute`): a cache key, the parameters
constructed, an execution context and a result object, per call. A
`DirectStatement` does that work once per dialect (SQLAlchemy compiles the
statement; its bind and result processors are looked up) and then runs the
SQL on the session's own connection, in its transaction, as SQLAlchemy itself
would (`cursor.execute`): the same SQL, the same parameter and result
conversions, the same errors (raised through SQLAlchemy's handler, which
wraps them and notices a lost connection), and the engine's cursor events
still fired when a listener is there.

Only plain statements qualify, checked when compiled: no literal parameters,
and column defaults (or `onupdate` values) that are constants or functions of
nothing (`utcnow`), called here as SQLAlchemy calls them. An `IN` list given
at run time is compiled once for each length it comes with (an empty one goes
through SQLAlchemy). Anything else stays on `Session.execute`. On PostgreSQL
each plan is also prepared on the server, once per connection
(`bot.prepared_statements`).
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, cast, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, visitors
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter

from bot.prepared_statements import PreparedForm, note_if_stale, prepared_form

log = logging.getLogger(__name__)

_REQUIRED = object()

MANY_ROWS = 16
"""Rows in one multi-row INSERT at most (a plan, and a prepared statement on
PostgreSQL, for each number of rows up to it)."""


@dataclass(frozen=True)
class _Bind:
    """One parameter of the compiled SQL: where its value comes from."""

    key: str
    name: str
    fixed: Any
    callable_: Callable[[], Any] | None
    process: Callable[[Any], Any] | None
    item: int | None = None
    """For an `IN` list given at run time: the place of this value in it."""


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one dialect, with its conversions."""

    sql: str
    binds: tuple[_Bind, ...]
    positional: bool
    row_type: Any
    result_processors: tuple[Callable[[Any], Any] | None, ...]
    returning: bool
    """Whether the SQL returns rows it writes (RETURNING, also the primary key
    SQLAlchemy adds to an INSERT on PostgreSQL)."""
    prepared: PreparedForm | None = None
    """On PostgreSQL with psycopg2: the SQL prepared on each connection."""

    def parameters(self, given: Mapping[str, Any]) -> Any:
        """The driver's parameters (a tuple or a dict) for the caller's values."""
        values = []
        for bind in self.binds:
            if bind.item is not None:
                value = given[bind.key][bind.item]
            elif bind.key in given:
                value = given[bind.key]
            elif bind.name in given:
                value = given[bind.name]
            elif bind.callable_ is not None:
                value = bind.callable_()
            elif bind.fixed is _REQUIRED:
                raise KeyError(f"a value is required for bind parameter {bind.key!r}")
            else:
                value = bind.fixed
            values.append(value if bind.process is None else bind.process(value))
        if self.positional:
            return tuple(values)
        return {
            bind.name: value for bind, value in zip(self.binds, values, strict=True)
        }

    def row(self, raw: Sequence[Any]) -> Any:
        """One result row, converted as SQLAlchemy converts it."""
        return self.row_type._make(
            value if process is None or value is None else process(value)
            for process, value in zip(self.result_processors, raw, strict=True)
        )


def _plan(
    statement: ClauseElement,
    dialect: Dialect,
    column_keys: list[str] | None,
    lengths: Mapping[str, int],
) -> _Plan:
    compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
    if compiled.literal_execute_params:
        raise ValueError(f"literal parameters: {compiled.string.split()[0]} ...")
    computed = {
        column.key: _default_of(column.default) for column in compiled.insert_prefetch
    }
    computed.update(
        (column.key, _default_of(column.onupdate))
        for column in compiled.update_prefetch
    )
    processors = compiled._bind_processors
    escaped = compiled.escaped_bind_names
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    order = compiled.positiontup if compiled.positional else list(by_name)
    sql = compiled.string
    binds = []
    for name in order:
        bind = by_name[name]
        if bind in compiled.post_compile_params:
            expanded, sql = _expand(compiled, dialect, bind, name, sql, lengths)
            binds.extend(expanded)
            continue
        binds.append(
            _Bind(
                key=bind.key,
                name=escaped.get(name, name) if escaped else name,
                fixed=_REQUIRED if bind.required else bind.value,
                callable_=computed.get(bind.key, bind.callable),
                process=processors.get(name),
            )
        )
    columns = [(column[0], column[3]) for column in compiled._result_columns]
    selected = getattr(statement, "selected_columns", None)
    if selected is not None and len(selected) < len(columns):
        # the RETURNING of a data-modifying WITH query adds its own columns
        columns = [(column.key, column.type) for column in selected]
    names = [name for name, _type in columns]
    row_type = namedtuple("Row", names, rename=True)  # type: ignore[misc]
    result_processors = tuple(
        type_._cached_result_processor(dialect, None) for _name, type_ in columns
    )
    return _Plan(
        sql,
        tuple(binds),
        compiled.positional,
        row_type,
        result_processors,
        bool(compiled.returning),
        prepared_form(sql)
        if dialect.name == "postgresql"
        and dialect.driver == "psycopg2"
        and not compiled.positional
        else None,
    )


def _expand(
    compiled: Any,
    dialect: Dialect,
    bind: Any,
    name: str,
    sql: str,
    lengths: Mapping[str, int],
) -> tuple[list[_Bind], str]:
    """An `IN` list: one parameter for each of its values, as SQLAlchemy renders
    it for each call; a list given when the statement was built (a constant)
    or at run time (`lengths`: how long it is in this plan). ValueError for an
    empty list (SQLAlchemy renders an expression of its own for it)."""
    process = bind.type._cached_bind_processor(dialect)
    if bind.required:
        count = lengths.get(bind.key, 0)
        names = [f"{name}_{index}" for index in range(1, count + 1)]
        binds = [
            _Bind(bind.key, each, _REQUIRED, None, process, item)
            for item, each in enumerate(names)
        ]
    elif bind.callable is None:
        names = [f"{name}_{index}" for index in range(1, len(bind.value or ()) + 1)]
        binds = [
            _Bind(key=each, name=each, fixed=value, callable_=None, process=process)
            for each, value in zip(names, bind.value or (), strict=True)
        ]
    else:
        raise ValueError(f"an IN list computed at run time: {bind.key!r}")
    if not names:
        raise ValueError(f"an empty IN list: {bind.key!r}")
    placeholders = ", ".join(compiled.bindtemplate % {"name": each} for each in names)
    token = f"__[POSTCOMPILE_{name}]"
    if sql.count(token) != 1:
        raise ValueError(f"IN list {bind.key!r} not rendered once")
    return binds, sql.replace(token, placeholders)


def _default_of(default: Any) -> Callable[[], Any]:
    """A column's Python-side default as a function of nothing (a constant or a
    plain function such as `utcnow`); ValueError for SQL or context defaults."""
    if default is not None and default.is_scalar:
        value = default.arg
        return lambda: value
    # SQLAlchemy wraps a function of nothing to take the execution context,
    # keeping the function as `__wrapped__`; one that reads the context is not.
    function = getattr(getattr(default, "arg", None), "__wrapped__", None)
    if default is not None and default.is_callable and function is not None:
        return function
    raise ValueError(f"not a constant nor a function of nothing: {default!r}")


class DirectResult:
    """The rows (converted) and row count of one run; SQLAlchemy's names."""

    __slots__ = ("rowcount", "_rows", "_inserted_id")

    def __init__(self, rows: list[Any], rowcount: int, inserted_id: Any) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self._inserted_id = inserted_id

    @property
    def inserted_id(self) -> int:
        """The primary key of the one row an INSERT wrote (a single-column key)."""
        if self._inserted_id is None:
            raise ValueError("no row inserted")
        return int(self._inserted_id)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        """Every row."""
        return list(self._rows)

    def first(self) -> Any:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        """The only row; NoResultFound or MultipleResultsFound otherwise."""
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound(
                "Multiple rows were found when exactly one was required"
            )
        return self._rows[0]

    def one_or_none(self) -> Any:
        """The only row, or None; MultipleResultsFound for more."""
        if len(self._rows) > 1:
            raise MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        """The first column of the only row, or None."""
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in self._rows]


class DirectStatement:
    """A statement built once, run on the session's connection without
    SQLAlchemy's per-call work; compiled on first use for each dialect. One
    that is not plain there runs through `Session.execute`, with the same
    result type.

    `values_from_parameters`: an INSERT or UPDATE whose columns to set are the
    parameters not named by the statement's own bind parameters (as
    `Session.execute(update(table).where(...), {"column": value, ...})` reads
    them); it is compiled once for each set of parameter names.
    """

    def __init__(
        self, statement: ClauseElement, *, values_from_parameters: bool = False
    ) -> None:
        self.statement = statement
        self._by_names = values_from_parameters
        self._lists = tuple(
            sorted(
                {
                    element.key
                    for element in visitors.iterate(statement)
                    if isinstance(element, BindParameter)
                    and element.expanding
                    and element.required
                }
            )
        )
        """The parameters that are `IN` lists given at run time."""
        self._plans: dict[Any, _Plan | None] = {}
        self._many: dict[Any, DirectStatement | None] = {}
        """Multi-row INSERTs by their columns and number of rows."""

    def plan(
        self, dialect: Dialect, parameters: Mapping[str, Any] | None = None
    ) -> _Plan | None:
        """The compiled form for `dialect` and what it depends on in these
        `parameters` (their names for `values_from_parameters`, the lengths of
        the `IN` lists given at run time); None when it is not plain there."""
        given = parameters or {}
        names = frozenset(given) if self._by_names else None
        lengths = tuple(len(given.get(name) or ()) for name in self._lists)
        key = (dialect.name, dialect.driver, names, lengths)
        try:
            return self._plans[key]
        except KeyError:
            pass
        try:
            plan: _Plan | None = _plan(
                self.statement,
                dialect,
                None if names is None else sorted(names),
                dict(zip(self._lists, lengths, strict=True)),
            )
        except ValueError as reason:
            log.info("statement run through SQLAlchemy: %s", reason)
            plan = None
        self._plans[key] = plan
        return plan

    def execute(
        self, runner: Session | Connection, parameters: Mapping[str, Any] | None = None
    ) -> DirectResult:
        """Run in a session's transaction (begun if need be) or on a Core
        connection (in its transaction, if one is begun)."""
        given = parameters or {}
        connection = runner.connection() if isinstance(runner, Session) else runner
        plan = self.plan(connection.dialect, given)
        if plan is None:
            return _through_sqlalchemy(runner, self.statement, given)
        return _run(connection, plan, plan.parameters(given))

    def execute_rows(
        self, runner: Session | Connection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run once for each of `rows` (an insert's rows): one row directly;
        up to `MANY_ROWS` rows with the same columns as one multi-row INSERT,
        compiled once for each number of rows and run directly; others as one
        executemany through SQLAlchemy."""
        if len(rows) == 1:
            self.execute(runner, rows[0])
        elif rows:
            many = self._many_rows(rows)
            if many is None:
                runner.execute(self.statement, list(rows))
                return
            many.execute(
                runner,
                {
                    f"{key}__row{index}": value
                    for index, row in enumerate(rows)
                    for key, value in row.items()
                },
            )

    def _many_rows(self, rows: Sequence[Mapping[str, Any]]) -> DirectStatement | None:
        """The multi-row INSERT for these rows, or None where it does not fit
        (not an insert of the parameters' columns, more than `MANY_ROWS` rows,
        rows with other columns, a column left to a Python-side default; a
        key from a sequence, as Rasa's events have, is filled in by the
        database for each row)."""
        if not (self._by_names and isinstance(self.statement, Insert)):
            return None
        columns = frozenset(rows[0])
        if len(rows) > MANY_ROWS or any(frozenset(row) != columns for row in rows):
            return None
        key = (columns, len(rows))
        if key not in self._many:
            table = self.statement.table
            fits = (
                str(self.statement) == str(insert(table))  # nothing added to it
                and columns <= set(table.c.keys())
                and not any(  # a Sequence or a server default is the database's
                    column.key not in columns and _python_side(column.default)
                    for column in table.c
                )
            )
            self._many[key] = (
                DirectStatement(
                    insert(table).values(
                        [
                            {
                                name: bindparam(
                                    f"{name}__row{index}", type_=table.c[name].type
                                )
                                for name in sorted(columns)
                            }
                            for index in range(len(rows))
                        ]
                    )
                )
                if fits
                else None
            )
        return self._many[key]


def _python_side(default: Any) -> bool:
    """Whether a column's default is computed in Python (a constant or a
    function), which a multi-row INSERT's plan would not call for each row."""
    return bool(
        getattr(default, "is_scalar", False) or getattr(default, "is_callable", False)
    )


def typed_parameter(name: str, type_: Any) -> Any:
    """A bound parameter cast to its type: in a SELECT's columns (as in
    `INSERT ... SELECT`) or a CASE's results PostgreSQL takes an untyped
    parameter for text, where the VALUES of an insert would take the column's
    type (JSON, timestamps); a prepared statement's parameter keeps that type."""
    return cast(bindparam(name, type_=type_), type_)


def _through_sqlalchemy(
    runner: Session | Connection,
    statement: ClauseElement,
    parameters: Mapping[str, Any],
) -> DirectResult:
    result: Any = runner.execute(statement, dict(parameters))
    rows = result.all() if result.returns_rows else []
    inserted = None
    if getattr(result.context, "isinsert", False):
        key = result.inserted_primary_key
        inserted = None if key is None else key[0]
    return DirectResult(rows, result.rowcount, inserted)


def _run(connection: Connection, plan: _Plan, parameters: Any) -> DirectResult:
    events = connection._has_events or connection.engine._has_events
    sql = plan.sql
    cursor = None
    fairy = connection.connection
    try:
        cursor = fairy.cursor()
        if events:
            sql, parameters = _before(connection, cursor, sql, parameters)
        run = sql
        if plan.prepared is not None and sql == plan.sql:
            error_type = connection.dialect.dbapi.Error
            run = plan.prepared.sql_for(fairy, cursor, error_type) or sql
        cursor.execute(run, parameters)
        if events:
            connection.dispatch.after_cursor_execute(
                connection, cursor, sql, parameters, None, False
            )
        raw = cursor.fetchall() if cursor.description is not None else []
        rowcount = cursor.rowcount
        if plan.returning:
            inserted_id = raw[0][0] if raw else None
        else:
            inserted_id = getattr(cursor, "lastrowid", None)
    except BaseException as error:  # wrapped and raised as SQLAlchemy does
        if plan.prepared is not None:
            note_if_stale(fairy, error)
        connection._handle_dbapi_exception(error, sql, parameters, cursor, None)
        raise
    finally:
        if cursor is not None:
            cursor.close()
    return DirectResult([plan.row(row) for row in raw], rowcount, inserted_id)


def _before(
    connection: Connection, cursor: Any, sql: str, parameters: Any
) -> tuple[str, Any]:
    for listener in connection.dispatch.before_cursor_execute:
        returned = listener(connection, cursor, sql, parameters, None, False)
        if returned is not None:  # a `retval=True` listener may rewrite them
            sql, parameters = returned
    return sql, parameters
