"""`make run-scaled` (`python -m bot.scaled`): several gateways, Rasa servers and
action servers on one machine, sharing PostgreSQL and Redis.

Gateway i listens on gateway_port + i and talks to Rasa server i mod R; Rasa
server j listens on rasa_port + j and calls action server j mod A. Every Rasa
server reads `endpoints-scaled.yml`: one SQL tracker store (TRACKER_STORE_URL,
default DATABASE_URL) and Rasa's RedisLockStore (REDIS_URL), so a conversation
is handled by one server at a time whichever gateway sent it. PostgreSQL and
Redis are required: SQLite serves one process only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.launcher import (
    ACTIONS_ENV,
    LOOPBACK,
    RASA_ENV,
    RASA_READY_PATH,
    Service,
    seed_database,
    supervise,
)

ENDPOINTS = "endpoints-scaled.yml"


@dataclass(frozen=True)
class Layout:
    """How many of each process, and their first ports."""

    gateways: int = 2
    rasa: int = 2
    actions: int = 2
    gateway_port: int = 8000
    rasa_port: int = 5005
    actions_port: int = 5055
    lock_prefix: str = "prakerja"


def parse(argv: list[str]) -> tuple[Layout, Path]:
    """`[--gateways N] [--rasa N] [--actions N] [--*-port P] [MODEL]`."""
    parser = argparse.ArgumentParser(prog="python -m bot.scaled")
    parser.add_argument("model", nargs="?", default="models/prakerja.tar.gz")
    for name, default in (("gateways", 2), ("rasa", 2), ("actions", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    for name, default in (("gateway", 8000), ("rasa", 5005), ("actions", 5055)):
        parser.add_argument(f"--{name}-port", type=int, default=default)
    parser.add_argument("--lock-prefix", default="prakerja")
    args = parser.parse_args(argv)
    if min(args.gateways, args.rasa, args.actions) < 1:
        parser.error("at least one of each process")
    if not args.lock_prefix.isalnum():  # else Rasa silently uses its default
        parser.error("--lock-prefix takes letters and digits only")
    layout = Layout(args.gateways, args.rasa, args.actions, args.gateway_port,
                    args.rasa_port, args.actions_port, args.lock_prefix)  # fmt: skip
    return layout, Path(args.model)


def store_env(env: Mapping[str, str], lock_prefix: str) -> dict[str, str]:
    """The variables endpoints-scaled.yml reads, from the URLs in `env`; raises
    ValueError when PostgreSQL or Redis is not configured."""
    database = env.get("TRACKER_STORE_URL") or env.get("DATABASE_URL") or ""
    redis = env.get("REDIS_URL") or ""
    db = urlsplit(database)
    if not db.scheme.startswith("postgresql"):
        raise ValueError("scaled mode needs DATABASE_URL on PostgreSQL "
                         "(postgresql://user@host/db)")  # fmt: skip
    if not redis.startswith("redis://"):
        raise ValueError("scaled mode needs REDIS_URL (redis://host:6379/0)")
    lock = urlsplit(redis)
    return {
        "TRACKER_STORE_URL": database,
        "TRACKER_DB_HOST": db.hostname or "127.0.0.1",
        "TRACKER_DB_PORT": str(db.port or 5432),
        "TRACKER_DB_NAME": db.path.lstrip("/"),
        "TRACKER_DB_USER": unquote(db.username or "postgres"),
        "TRACKER_DB_PASSWORD": unquote(db.password or ""),
        "REDIS_HOST": lock.hostname or "127.0.0.1",
        "REDIS_PORT": str(lock.port or 6379),
        "REDIS_PASSWORD": unquote(lock.password or ""),
        "REDIS_DB": lock.path.strip("/") or "0",
        "REDIS_KEY_PREFIX": lock_prefix,
    }


def scaled_services(
    model: Path, bin_dir: Path, layout: Layout, env: Mapping[str, str]
) -> list[Service]:
    """Action servers, then Rasa servers, then gateways (start order)."""
    stores = store_env(env, layout.lock_prefix)
    rasa_bin = str(bin_dir / "rasa")
    found: list[Service] = []
    for i in range(layout.actions):
        port = layout.actions_port + i
        found.append(Service(
            f"actions{i + 1}",
            [rasa_bin, "run", "actions", "--port", str(port), "--actions", "actions"],
            f"http://{LOOPBACK}:{port}/health",
            {**ACTIONS_ENV, **stores},
        ))  # fmt: skip
    for j in range(layout.rasa):
        port = layout.rasa_port + j
        actions = f"http://{LOOPBACK}:{layout.actions_port + j % layout.actions}"
        found.append(Service(
            f"rasa{j + 1}",
            [rasa_bin, "run", "--interface", LOOPBACK, "--port", str(port),
             "--model", str(model), "--endpoints", ENDPOINTS,
             "--credentials", "credentials.yml"],
            f"http://{LOOPBACK}:{port}{RASA_READY_PATH}",
            {**stores, **RASA_ENV, "SCALED_ACTIONS_URL": actions},
        ))  # fmt: skip
    for i in range(layout.gateways):
        port = layout.gateway_port + i
        j = i % layout.rasa
        found.append(Service(
            f"gateway{i + 1}",
            [str(bin_dir / "python"), "-m", "bot"],
            f"http://{LOOPBACK}:{port}/healthz",
            {**stores, "GATEWAY_PORT": str(port),
             "RASA_URL": f"http://{LOOPBACK}:{layout.rasa_port + j}",
             "ACTIONS_URL": f"http://{LOOPBACK}:"
                            f"{layout.actions_port + j % layout.actions}"},
        ))  # fmt: skip
    return found


def ready_text(layout: Layout) -> str:
    """What `make run-scaled` prints once every process answers."""
    last = layout.gateway_port + layout.gateways - 1
    return (
        f"\nPrakerja assistant is running, scaled: {layout.gateways} gateways "
        f"(ports {layout.gateway_port}-{last}), {layout.rasa} Rasa servers (from "
        f"{layout.rasa_port}), {layout.actions} action servers (from "
        f"{layout.actions_port}), on PostgreSQL and Redis.\n"
        f"  Simulator   http://localhost:{layout.gateway_port}/simulator\n"
        "Put a reverse proxy in front of the gateway ports for the providers' "
        "webhooks. Stop with Ctrl-C.\n"
    )


def main(argv: list[str]) -> int:
    """Check the stores, seed the database, run every process until stopped."""
    layout, model = parse(argv)
    bin_dir = Path(sys.executable).parent
    try:
        wanted = scaled_services(model, bin_dir, layout, os.environ)
    except ValueError as exc:
        print(f"run-scaled: {exc}")
        return 2
    os.environ["TRACKER_STORE_URL"] = wanted[0].env["TRACKER_STORE_URL"]
    if not seed_database(bin_dir):  # also scrubs that tracker store
        return 1
    return supervise(wanted, lambda: print(ready_text(layout), flush=True))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
