"""PostgreSQL's statement log grouped into transactions: which statements end
in a commit or a rollback, and how often, to find a count's call sites.

With `log_statement = all` (for one run: `ALTER SYSTEM SET log_statement =
'all'; SELECT pg_reload_conf();`, and `ALTER SYSTEM RESET log_statement`
after), the server logs each statement with its backend's process id
(Debian's packaged `log_line_prefix`, `%m [%p] %q%u@%d `; PostgreSQL's own
default, `%m [%p] `, names no database: set Debian's). `python -m bench.pg_statements
LOG --database NAME` reads that log, follows each backend of the database from
`BEGIN` to `COMMIT` or `ROLLBACK` (a statement outside a transaction is
counted on its own), names each transaction by its first statements (a
prepared statement's `EXECUTE` by the SQL it was prepared with on that
backend), and prints the most frequent. The log holds statement text and so
parameters that may be personal: only for benchmark databases, never for a
database of real people.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

LINE = re.compile(
    r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] (?P<user>\S*)@(?P<database>\S*) "
    r"(?P<level>[A-Z]+):\s+(?P<text>.*)$"
)
STATEMENT = "statement: "
EXECUTE = re.compile(r"EXECUTE (\w+)")
PREPARE = re.compile(r"PREPARE (\w+) AS (.*)", re.DOTALL)
ENDS = ("COMMIT", "ROLLBACK")
UNNAMED = ("BEGIN", "SAVEPOINT", "RELEASE", "PREPARE")
"""Statements a transaction is not named by (and `ROLLBACK TO SAVEPOINT`,
which does not end it)."""
TO_SAVEPOINT = re.compile(r"ROLLBACK\s+TO\b", re.IGNORECASE)
NAMED_BY = 3  # statements that name a transaction
NAME_CHARS = 90  # of each statement in a name


@dataclass
class Backend:
    """One backend's open transaction and what it prepared."""

    statements: list[str] = field(default_factory=list)
    prepared: dict[str, str] = field(default_factory=dict)


@dataclass
class Transactions:
    """Transactions counted by (end, name); statements outside one by name."""

    ended: Counter[tuple[str, str]] = field(default_factory=Counter)
    alone: Counter[str] = field(default_factory=Counter)


def statements(lines: Iterable[str], database: str) -> Iterable[tuple[str, str]]:
    """(backend pid, statement) of `database`, continuation lines joined."""
    pid: str | None = None
    text: list[str] = []
    for line in lines:
        found = LINE.match(line.rstrip("\n"))
        if found is None:
            if pid is not None and line.startswith("\t"):
                text.append(line.strip())
            continue
        if pid is not None:
            yield pid, " ".join(text)
        pid, text = None, []
        kept = found["database"] == database and found["level"] == "LOG"
        if kept and found["text"].startswith(STATEMENT):
            pid, text = found["pid"], [found["text"][len(STATEMENT) :]]
    if pid is not None:
        yield pid, " ".join(text)


def _named_by(statement: str) -> bool:
    words = statement.split(None, 1)
    if not words or TO_SAVEPOINT.match(statement):
        return False
    return words[0].upper() not in UNNAMED


def _name(backend: Backend, statement: str) -> str:
    executed = EXECUTE.match(statement)
    if executed and executed[1] in backend.prepared:
        statement = "[prepared] " + backend.prepared[executed[1]]
    return " ".join(statement.split())[:NAME_CHARS]


def count(lines: Iterable[str], database: str) -> Transactions:
    """The transactions of `database` in the log's `lines`."""
    backends: dict[str, Backend] = {}
    counted = Transactions()
    for pid, statement in statements(lines, database):
        backend = backends.setdefault(pid, Backend())
        word = statement.split(None, 1)[0].upper() if statement.strip() else ""
        prepared = PREPARE.match(statement)
        if prepared:
            backend.prepared[prepared[1]] = prepared[2]
        if word in ENDS and not TO_SAVEPOINT.match(statement):
            named = [s for s in backend.statements if _named_by(s)]
            name = " || ".join(_name(backend, s) for s in named[:NAMED_BY])
            counted.ended[(word, f"({len(named)}) {name}")] += 1
            backend.statements = []
        elif backend.statements or word == "BEGIN":
            backend.statements.append(statement)
        elif _named_by(statement):
            counted.alone[_name(backend, statement)] += 1
    return counted


def main() -> None:
    """Print the most frequent transactions of a database in a log."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("log", type=Path)
    parser.add_argument("--database", required=True)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with args.log.open(errors="replace") as lines:
        counted = count(lines, args.database)
    ends = Counter(end for end, _ in counted.ended.elements())
    if not ends and not counted.alone:
        raise SystemExit(
            f"no statement of {args.database} in {args.log}: is log_statement "
            "'all', and the log_line_prefix Debian's (%m [%p] %q%u@%d )?"
        )
    print(
        f"{ends['COMMIT']:,} commits, {ends['ROLLBACK']:,} rollbacks, "
        f"{sum(counted.alone.values()):,} statements outside a transaction\n"
    )
    print("| transactions | end | (statements) the first statements |")
    print("| ---: | --- | --- |")
    for (end, name), times in counted.ended.most_common(args.top):
        print(f"| {times:,} | {end} | {name} |")
    print("\n| statements | outside a transaction |")
    print("| ---: | --- |")
    for name, times in counted.alone.most_common(args.top):
        print(f"| {times:,} | {name} |")


if __name__ == "__main__":
    main()
