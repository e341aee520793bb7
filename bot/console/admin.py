"""Command line for console accounts (`python -m bot.console.admin`).

    create-supervisor NAME [--display-name "Nama"]   the first supervisor
    create-agent NAME [--display-name "Nama"]        an agent
    set-password NAME                                new password, logs out everywhere
    deactivate NAME / activate NAME                  block or allow logging in
    list                                             every account
    batch-...                                        batches: `admin_batches`

The password is read from the environment variable CONSOLE_PASSWORD when set
(automation), otherwise asked twice without echo, and must be hard to guess
(`bot.console.password_policy`). Every change is audited as made by
`cli:<operating-system user>`. The database is the one in
DATABASE_URL (migrated first). Exit status: 0 done, 1 refused, 2 bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from bot.console import admin_batches
from bot.console.agents import (
    AgentExists,
    AgentNotFound,
    create_agent,
    list_agents,
    set_active,
    set_password,
)
from bot.console.labels import ROLES, wib
from bot.console.models import ROLE_AGENT, ROLE_SUPERVISOR
from bot.console.password_policy import check_password_rules
from bot.db import make_engine, make_sessionmaker
from bot.schema import upgrade
from bot.selection.errors import LifecycleError
from bot.settings import load_settings

PASSWORD_ENV = "CONSOLE_PASSWORD"  # noqa: S105 (a variable name)


def operator() -> str:
    """Who runs the command, for the audit log: `cli:` and the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    clean = re.sub(r"[^a-z0-9._-]+", ".", user.lower()).strip(".")[:32]
    return f"cli:{clean or 'unknown'}"


class CommandError(Exception):
    """A refusal to show the operator (exit status 1)."""


def read_password(
    env: dict[str, str] | None = None, ask: Callable[[str], str] = getpass.getpass
) -> str:
    """The new password: from CONSOLE_PASSWORD, or typed twice without echo."""
    environment = os.environ if env is None else env
    given = environment.get(PASSWORD_ENV)
    if given:
        check_password_rules(given)
        return given
    first = ask("Kata sandi baru: ")
    check_password_rules(first)
    if ask("Ulangi kata sandi: ") != first:
        raise CommandError("Kedua kata sandi tidak sama.")
    return first


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.console.admin", description="Akun konsol petugas."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("create-supervisor", "buat akun supervisor"),
        ("create-agent", "buat akun petugas"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("username")
        command.add_argument("--display-name", default=None)
    for name, text in (
        ("set-password", "ganti kata sandi (hapus jeda login, keluar dari semua sesi)"),
        ("deactivate", "blokir akun"),
        ("activate", "aktifkan lagi akun"),
    ):
        commands.add_parser(name, help=text).add_argument("username")
    commands.add_parser("list", help="daftar akun")
    admin_batches.add_commands(commands)
    return parser


def run(args: argparse.Namespace, session: Session, password: Callable[[], str]) -> str:
    """Carry out one command in `session` (the caller commits); the message."""
    via = operator()
    if args.command in admin_batches.COMMANDS:
        return admin_batches.run_command(args, session, via)
    if args.command in ("create-supervisor", "create-agent"):
        role = ROLE_SUPERVISOR if args.command == "create-supervisor" else ROLE_AGENT
        try:
            agent = create_agent(
                session, args.username, password(), role, args.display_name, via=via
            )
        except AgentExists as exc:
            raise CommandError(
                f"Nama pengguna {args.username!r} sudah dipakai."
            ) from exc
        return f"{ROLES[role]} {agent.username!r} dibuat (id {agent.id})."
    if args.command == "set-password":
        agent = set_password(session, args.username, password(), via=via)
        return f"Kata sandi {agent.username!r} diganti; semua sesinya diakhiri."
    if args.command in ("deactivate", "activate"):
        agent = set_active(
            session, args.username, args.command == "activate", via=via
        )
        state = "aktif" if agent.active else "diblokir"
        return f"Akun {agent.username!r} sekarang {state}."
    lines = [
        f"{agent.id:>4}  {agent.username:<24} {ROLES[agent.role]:<11} "
        f"{'aktif' if agent.active else 'diblokir':<9} "
        f"terakhir {wib(agent.last_seen_at)}"
        for agent in list_agents(session)
    ]
    return "\n".join(lines) or "Belum ada akun."


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, migrate the database, run the command."""
    args = _parser().parse_args(argv)
    settings = load_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            message = run(args, session, read_password)
            session.commit()
    except AgentNotFound:
        print("Gagal: akun tidak ditemukan.", file=sys.stderr)
        return 1
    except LifecycleError as exc:
        print(f"Gagal: {exc.message}", file=sys.stderr)
        return 1
    except (CommandError, ValueError) as exc:
        print(f"Gagal: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
