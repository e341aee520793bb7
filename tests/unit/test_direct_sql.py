"""`bot.direct_sql`: statements compiled once and run on the driver's cursor give
what `Session.execute` gives (rows, conversions, counts, keys, errors, events),
on SQLite and PostgreSQL; the gateway's hot statements all qualify."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session

from bot.direct_sql import MANY_ROWS, DirectStatement
from bot.messages.models import JsonType
from tests.postgres import BACKENDS, engine_with_tables, migrated_sessions

FIXED = datetime(2026, 1, 1, 10, 0, 0)

metadata = MetaData()
items = Table(
    "direct_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(32), nullable=False, unique=True),
    Column("flag", Boolean, nullable=False, default=False),
    Column("data", JsonType, nullable=False, default=dict),
    Column("seen_at", DateTime, nullable=True),
    Column("kind", String(16), nullable=False, default="plain"),
    Column(
        "updated_at",
        DateTime,
        nullable=False,
        default=lambda: FIXED,
        onupdate=lambda: FIXED + timedelta(days=1),
    ),
)

sequenced = Table(
    "direct_sequenced",
    metadata,
    Column(
        "id", Integer, Sequence("direct_sequenced_seq", optional=True), primary_key=True
    ),
    Column("name", String(32), nullable=False),
)
"""A key from a sequence, as Rasa's `events` table has."""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of each backend with the `direct_items` table."""
    with engine_with_tables(request.param, tmp_path, metadata, "direct_sql") as made:
        yield made


def _both(
    engine: Engine, statement: Any, parameters: dict[str, Any]
) -> tuple[Any, Any]:
    """The statement run directly and through `Session.execute`, each in a
    transaction rolled back afterwards: (rows and count) of each."""
    direct = DirectStatement(statement)
    results = []
    for run in (
        lambda s: direct.execute(s, parameters),
        lambda s: s.execute(statement, parameters),
    ):
        with Session(engine) as session:
            result = run(session)
            rows = [tuple(row) for row in result] if _returns_rows(result) else []
            results.append((rows, result.rowcount))
            session.rollback()
    return results[0], results[1]


def _returns_rows(result: Any) -> bool:
    return getattr(result, "returns_rows", True)


def _seed(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for row in (
            {"name": "a", "flag": True, "data": {"x": 1}, "seen_at": FIXED},
            {"name": "b", "data": {}, "seen_at": FIXED.replace(microsecond=5)},
            {"name": "c", "kind": "rare"},
        ):
            session.execute(insert(items), row)


def test_selects_give_sqlalchemys_rows_with_conversions(engine: Engine) -> None:
    _seed(engine)
    statement = (
        select(items.c.id, items.c.name, items.c.flag, items.c.data, items.c.seen_at)
        .where(items.c.kind == bindparam("kind"))
        .order_by(items.c.id)
    )
    direct, through = _both(engine, statement, {"kind": "plain"})
    assert direct[0] == through[0]
    assert [type(v) for v in direct[0][0]] == [int, str, bool, dict, datetime]
    counted = select(func.count(items.c.id).label("n")).where(
        items.c.seen_at >= bindparam("since", type_=DateTime())
    )
    assert _both(engine, counted, {"since": FIXED})[0][0] == [(2,)]


def test_rows_are_named_and_the_result_methods_agree(engine: Engine) -> None:
    _seed(engine)
    by_kind = DirectStatement(
        select(items.c.name, items.c.flag)
        .where(items.c.kind == bindparam("kind"))
        .order_by(items.c.id)
    )
    with Session(engine) as session:
        plain = by_kind.execute(session, {"kind": "plain"})
        assert [row.name for row in plain] == ["a", "b"]
        assert plain.scalars() == ["a", "b"]
        assert plain.first() == ("a", True)
        assert plain.scalar() == "a"
        with pytest.raises(MultipleResultsFound):
            plain.one()
        with pytest.raises(MultipleResultsFound):
            plain.scalar_one_or_none()
        rare = by_kind.execute(session, {"kind": "rare"})
        assert rare.one().name == "c" and rare.scalar_one() == "c"
        none = by_kind.execute(session, {"kind": "none"})
        assert none.first() is None and none.scalar_one_or_none() is None
        with pytest.raises(NoResultFound):
            none.one()


def test_updates_set_parameters_and_onupdate_values(engine: Engine) -> None:
    _seed(engine)
    statement = DirectStatement(
        update(items).where(items.c.name == bindparam("b_name")),
        values_from_parameters=True,
    )
    with Session(engine) as session, session.begin():
        changed = statement.execute(
            session, {"b_name": "a", "kind": "done", "flag": False}
        )
        missed = statement.execute(session, {"b_name": "zz", "kind": "done"})
        other_keys = statement.execute(session, {"b_name": "b", "data": {"y": [1]}})
    assert (changed.rowcount, missed.rowcount, other_keys.rowcount) == (1, 0, 1)
    with engine.connect() as connection:
        rows = {r.name: r for r in connection.execute(select(items))}
    assert (rows["a"].kind, rows["a"].flag) == ("done", False)
    assert rows["a"].updated_at == FIXED + timedelta(days=1)  # onupdate, as SQLAlchemy
    assert rows["b"].data == {"y": [1]} and rows["b"].kind == "plain"
    assert rows["c"].updated_at == FIXED  # untouched


def test_inserts_apply_defaults_and_give_the_new_key(engine: Engine) -> None:
    _seed(engine)
    statement = DirectStatement(insert(items), values_from_parameters=True)
    with Session(engine) as session, session.begin():
        new_id = statement.execute(session, {"name": "d"}).inserted_id
        sqlalchemy_id = session.execute(
            insert(items), {"name": "e"}
        ).inserted_primary_key[0]
    assert sqlalchemy_id == new_id + 1
    with engine.connect() as connection:
        row = connection.execute(select(items).where(items.c.id == new_id)).one()
    assert (row.name, row.flag, row.data, row.kind, row.updated_at) == (
        "d",
        False,
        {},
        "plain",
        FIXED,
    )


def test_rows_go_in_one_by_one_or_as_one_executemany(engine: Engine) -> None:
    statement = DirectStatement(insert(items), values_from_parameters=True)
    with engine.begin() as connection:  # a Core connection, as Rasa's store has
        statement.execute_rows(connection, [])
        statement.execute_rows(connection, [{"name": "one"}])
        statement.execute_rows(connection, [{"name": f"n{i}"} for i in range(3)])
    with Session(engine) as session, session.begin():
        statement.execute_rows(session, [{"name": "s1"}, {"name": "s2"}])
    with engine.connect() as connection:
        rows = connection.execute(
            select(items.c.name, items.c.kind).order_by(items.c.id)
        )
        assert [tuple(row) for row in rows] == [
            (name, "plain") for name in ("one", "n0", "n1", "n2", "s1", "s2")
        ]


def test_rows_with_the_same_columns_go_in_as_one_multi_row_insert(
    engine: Engine,
) -> None:
    """Rows that give every defaulted column go in as one statement; more
    than MANY_ROWS rows, or rows that leave a default to Python, go through
    SQLAlchemy's executemany; the same rows are stored."""
    statement = DirectStatement(insert(items), values_from_parameters=True)
    whole = {"flag": True, "data": {"k": 1}, "kind": "k", "updated_at": FIXED}
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with engine.begin() as connection:
        statement.execute_rows(
            connection, [{"name": f"m{i}", **whole} for i in range(3)]
        )
        assert len(seen) == 1 and seen[0].count("), (") == 2  # three rows
        statement.execute_rows(
            connection, [{"name": f"m{i}", **whole} for i in range(3, 6)]
        )  # the plan for three rows again
        statement.execute_rows(
            connection, [{"name": "x0", "kind": "k"}, {"name": "x1", "kind": "k"}]
        )
        statement.execute_rows(
            connection, [{"name": f"y{i}", **whole} for i in range(MANY_ROWS + 1)]
        )
    assert len([sql for sql in seen if "VALUES" in sql]) == 4
    with engine.connect() as connection:
        rows = connection.execute(
            select(items.c.name, items.c.flag, items.c.data, items.c.kind)
            .where(items.c.name.like("m%"))
            .order_by(items.c.id)
        )
        assert [tuple(row) for row in rows] == [
            (f"m{i}", True, {"k": 1}, "k") for i in range(6)
        ]
        count = connection.execute(select(func.count()).select_from(items))
        assert count.scalar() == 6 + 2 + MANY_ROWS + 1
    keyed = DirectStatement(insert(sequenced), values_from_parameters=True)
    seen.clear()
    with engine.begin() as connection:
        keyed.execute_rows(connection, [{"name": "k0"}, {"name": "k1"}])
        assert len(seen) == 1 and seen[0].count("), (") == 1
        rows = connection.execute(select(sequenced).order_by(sequenced.c.id))
        assert [row.name for row in rows] == ["k0", "k1"]


def test_in_lists_constant_or_given_at_run_time_are_expanded(engine: Engine) -> None:
    _seed(engine)
    constant = (
        select(items.c.name)
        .where(items.c.kind.not_in(["rare", "x"]))
        .order_by(items.c.name)
    )
    assert DirectStatement(constant).plan(engine.dialect) is not None
    direct, through = _both(engine, constant, {})
    assert direct[0] == through[0] == [("a",), ("b",)]
    at_run_time = (
        select(items.c.name)
        .where(
            items.c.name.in_(bindparam("names", expanding=True)),
            items.c.kind != bindparam("kind"),
        )
        .order_by(items.c.name)
    )
    statement = DirectStatement(at_run_time)
    for names, expected in ((["a", "c", "zz"], [("a",)]), (["b"], [("b",)]), ([], [])):
        given = {"names": names, "kind": "rare"}
        direct, through = _both(engine, at_run_time, given)
        assert direct[0] == through[0] == expected
        assert (statement.plan(engine.dialect, given) is None) == (not names)
    deleting = DirectStatement(
        delete(items).where(items.c.name.in_(bindparam("names", expanding=True)))
    )
    with Session(engine) as session, session.begin():
        assert deleting.execute(session, {"names": ["a", "c"]}).rowcount == 2
        assert deleting.execute(session, {"names": []}).rowcount == 0


def test_a_missing_parameter_is_refused(engine: Engine) -> None:
    statement = DirectStatement(
        select(items.c.id).where(items.c.name == bindparam("name"))
    )
    with Session(engine) as session, pytest.raises(KeyError, match="name"):
        statement.execute(session, {})


def test_errors_are_sqlalchemys_and_the_transaction_is_the_sessions(
    engine: Engine,
) -> None:
    _seed(engine)
    statement = DirectStatement(insert(items), values_from_parameters=True)
    with Session(engine) as session:
        statement.execute(session, {"name": "new"})
        with pytest.raises(IntegrityError):
            statement.execute(session, {"name": "a"})
        session.rollback()  # the first insert went with it: one transaction
    with engine.connect() as connection:
        names = connection.execute(select(items.c.name)).scalars().all()
    assert "new" not in names


def test_cursor_events_fire_as_for_sqlalchemys_own_statements(engine: Engine) -> None:
    seen: list[str] = []

    def before(
        conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        seen.append(f"before {sql.split()[0]}")

    def after(
        conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        seen.append(f"after {sql.split()[0]}")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    statement = DirectStatement(
        select(items.c.id).where(items.c.name == bindparam("name"))
    )
    with Session(engine) as session:
        statement.execute(session, {"name": "a"})
    assert seen == ["before SELECT", "after SELECT"]


_TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=5,
)
"""PostgreSQL's JSON takes no NUL and no lone surrogate (`"\\ud800"`), whoever
writes it (hypothesis draws lone surrogates about once in 500 characters)."""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    data=st.dictionaries(_TEXT, st.integers() | _TEXT, max_size=3),
    flag=st.booleans(),
)
def test_values_written_directly_read_back_as_sqlalchemy_wrote_them(
    engine: Engine, when: datetime, data: dict[str, Any], flag: bool
) -> None:
    """Dates (whole seconds too: SQLite stores them as text, compared as text),
    JSON and booleans round-trip both ways, and compare in SQL alike."""
    write = DirectStatement(insert(items), values_from_parameters=True)
    read = DirectStatement(
        select(items.c.name, items.c.seen_at, items.c.data, items.c.flag)
        .where(items.c.seen_at <= bindparam("until", type_=DateTime()))
        .order_by(items.c.name)
    )
    values = {"seen_at": when, "data": data, "flag": flag}
    with Session(engine) as session:
        write.execute(session, {"name": "direct", **values})
        session.execute(insert(items), {"name": "sqlalchemy", **values})
        expected = [("direct", when, data, flag), ("sqlalchemy", when, data, flag)]
        assert [tuple(r) for r in read.execute(session, {"until": when})] == expected
        assert [
            tuple(r) for r in session.execute(read.statement, {"until": when})
        ] == expected
        assert (
            read.execute(session, {"until": when - timedelta(microseconds=1)}).all()
            == []
        )
        session.rollback()


def test_a_data_modifying_with_query_gives_its_own_columns(tmp_path: Path) -> None:
    """The RETURNING of a data-modifying WITH query (PostgreSQL's) adds columns
    to what SQLAlchemy compiles; the rows are the statement's own columns."""
    with engine_with_tables("postgresql", tmp_path, metadata, "direct_cte") as engine:
        _data_modifying_with_query(engine)


def _data_modifying_with_query(engine: Engine) -> None:
    _seed(engine)
    flagged = (
        update(items)
        .where(items.c.kind == bindparam("kind"))
        .values(flag=True)
        .returning(items.c.id, items.c.name)
        .cte("flagged")
    )
    statement = DirectStatement(
        select(
            select(func.count()).select_from(flagged).scalar_subquery().label("n"),
            select(func.max(flagged.c.name)).scalar_subquery().label("last"),
        )
    )
    with Session(engine) as session:
        row = statement.execute(session, {"kind": "plain"}).one()
        assert (row.n, row.last) == (2, "b")
        assert session.execute(select(func.count()).where(items.c.flag)).scalar() == 2


HOT_MODULES = (
    "bot.messages.inbox",
    "bot.gateway.claims",
    "bot.gateway.results",
    "bot.gateway.outbox",
    "bot.gateway.statuses",
    "bot.registration.desk",
    "bot.registry.applicants",
    "bot.registry.batches",
    "bot.registry.jobs",
    "bot.registry.steps",
    "bot.privacy.vault",
    "bot.registry.identities",
    "bot.effects.ledger",
)
"""Modules whose statements run on every message (gateway) or most actions."""


POSTGRES_HOT_MODULES = ("bot.gateway.result_statement",)
"""Modules of statements that run on PostgreSQL only."""
POSTGRES_ONLY = {
    "bot.messages.inbox._COUNT_AND_INSERT",
    "bot.gateway.claims.CLAIM_IN_ONE",
}
"""Statements of the hot modules that run on PostgreSQL only."""


def _direct_statements(dialect_name: str) -> list[tuple[str, DirectStatement]]:
    found = []
    only_here = POSTGRES_HOT_MODULES if dialect_name == "postgresql" else ()
    for name in HOT_MODULES + only_here:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            values = value.values() if isinstance(value, dict) else [value]
            found.extend(
                (f"{name}.{attribute}", each)
                for each in values
                if isinstance(each, DirectStatement)
                and (
                    dialect_name == "postgresql"
                    or f"{name}.{attribute}" not in POSTGRES_ONLY
                )
            )
    outbox = importlib.import_module("bot.gateway.outbox")
    claim = outbox.ClaimStatements()
    found.extend(
        (f"outbox claim {name}", getattr(claim, name))
        for name in ("drop", "take", "taken")
    )

    class _Session:  # what `ClaimStatements.due` asks of a session
        def get_bind(self) -> Any:
            return _Bind()

    class _Bind:
        class dialect:  # noqa: N801 - the attribute's name
            name = dialect_name

    found.extend(
        (f"outbox due {lane}", claim.due(lane, _Session()))  # type: ignore[arg-type]
        for lane in outbox.LANES
    )
    consents = importlib.import_module("bot.registry.consents")
    found.extend(
        (f"active consent {kind}", consents._active(kind))
        for kind in ((True, False), (False, True), (True, True))
    )
    statuses = importlib.import_module("bot.gateway.statuses")
    for new_status in (None, "delivered"):
        for returning in (False, dialect_name == "postgresql"):
            found.append(
                (
                    f"statuses by provider id {new_status} {returning}",
                    statuses._set_status_by_provider_id(new_status, returning),
                )
            )
    return found


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_every_hot_statement_of_the_gateway_runs_directly(dialect_name: str) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = (
        sqlite.pysqlite.dialect()
        if dialect_name == "sqlite"
        else postgresql.psycopg2.dialect()
    )
    statements = _direct_statements(dialect_name)
    assert len(statements) >= 30
    for name, statement in statements:
        if statement._by_names:
            continue  # compiled per set of parameter names: run in the gateway tests
        lists = {name: [1, 2] for name in statement._lists}
        assert statement.plan(dialect, lists) is not None, name


def test_every_hot_statement_is_prepared_on_postgresql(tmp_path: Path) -> None:
    """PostgreSQL infers the type of every parameter of every hot statement, so
    each is prepared on the server (`bot.prepared_statements`), none left to
    run as text."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.psycopg2.dialect()
    with migrated_sessions("postgresql", tmp_path, "direct_prepare") as sessions:
        for name, statement in _direct_statements("postgresql"):
            if statement._by_names:
                continue
            lists = {name: [1, 2] for name in statement._lists}
            plan = statement.plan(dialect, lists)
            assert plan is not None and plan.prepared is not None, name
            with sessions() as session:
                session.execute(text(plan.prepared.prepare_sql))
                session.rollback()


def test_each_driver_of_a_database_gets_its_own_plan() -> None:
    """psycopg2 (`%(name)s`) and pg8000 (`%s`) share PostgreSQL's dialect name
    (as an operator's DATABASE_URL and TRACKER_STORE_URL may, in one process):
    a plan compiled for one is never run on the other."""
    from sqlalchemy.dialects import postgresql

    statement = DirectStatement(
        select(items.c.name).where(items.c.kind == bindparam("kind"))
    )
    psycopg2 = statement.plan(postgresql.psycopg2.dialect())
    pg8000 = statement.plan(postgresql.pg8000.dialect())
    assert psycopg2 is not None and pg8000 is not None
    assert "%(kind)s" in psycopg2.sql and not psycopg2.positional
    assert "%s" in pg8000.sql and pg8000.positional
