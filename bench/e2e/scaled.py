"""The whole path against `make run-scaled` (python -m bot.scaled): one launcher
with G gateways, R Rasa servers and R action servers on a fresh PostgreSQL
database and Redis, driven by the same people; CPU per kind of process."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.e2e import drive
from bench.gateway import database, log_summary, telegram_pacing_env
from bench.proc_cpu import BackendCpu, group_cpu, own_cpu
from bench.soak.people import SEED, build_people
from bench.soak.stack import (
    START_TIMEOUT,
    Deliveries,
    Service,
    make_fakes,
    make_services,
    seed,
)


def _lock_prefix(prefix: str) -> str:
    """A RedisLockStore key prefix of our own (Rasa takes letters and digits only,
    else it silently uses its default)."""
    return "".join(ch for ch in prefix if ch.isalnum()) + uuid.uuid4().hex[:8]


def children(pid: int) -> dict[int, str]:
    """The launcher's children (each leads its own process group) by kind."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii")
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if "actions" in words:
            found[int(entry.name)] = "actions"
        elif "run" in words:
            found[int(entry.name)] = "rasa"
        elif "bot" in words:
            found[int(entry.name)] = "gateway"
    return found


def cpu_by_kind(pid: int) -> dict[str, float]:
    """CPU seconds so far of the launcher's gateways, Rasa and action servers."""
    totals: dict[str, float] = defaultdict(float)
    for child, kind in children(pid).items():
        totals[kind] += group_cpu(child)
    return dict(totals)


async def _all_ready(launcher: Service, urls: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        for url in urls:
            while True:
                if launcher.proc is None or launcher.proc.poll() is not None:
                    raise RuntimeError("the scaled launcher exited")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} not ready in {START_TIMEOUT:g}s")
                try:
                    if (await client.get(url)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)


def run_scaled(
    args: argparse.Namespace, servers: int, port: Any, work: Path
) -> dict[str, Any]:
    """The whole path with `servers` Rasa servers (and as many action servers)."""
    rng = random.Random(SEED)  # noqa: S311 (synthetic traffic)
    count = args.people[0]
    people = build_people(count, count * args.per_person, rng)
    deliveries = Deliveries()
    # a bot of its own: the gateways' pacing state in Redis is keyed by bot id
    bot_id = random.Random().randrange(10**8, 10**9)  # noqa: S311
    twilio, telegram = make_fakes(deliveries, f"{bot_id}:bench-e2e-scaled")
    (work / "email-outbox").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for fake in (twilio, telegram):
            fake.start(port=port())
            stack.callback(fake.stop)
        db_url, db_kind = stack.enter_context(
            database(args.postgres_url, work, args.db_prefix)
        )
        # the environment the bench's own stack gives a gateway (fakes, secrets)
        env = make_services(work, db_url, args.redis_url, twilio, telegram,
                            gateways=1, port=port)["gateway1"].env  # fmt: skip
        seed(env, db_url, people)
        gateways, first = args.scaled_gateways, port.block(args.scaled_gateways)
        rasa_port, actions_port = port.block(servers), port.block(servers)
        env = {**env, **telegram_pacing_env(args),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{first}"}  # fmt: skip
        command = [
            sys.executable, "-m", "bot.scaled", "--gateways", str(gateways),
            "--rasa", str(servers), "--actions", str(servers),
            "--gateway-port", str(first), "--rasa-port", str(rasa_port),
            "--actions-port", str(actions_port),
            "--lock-prefix", _lock_prefix(args.db_prefix),
            str(args.model),
        ]  # fmt: skip
        launcher = Service("scaled", command, env, "", work / "scaled.log")
        stack.callback(launcher.stop)
        print(
            f"[{db_kind}, {count} people] make run-scaled: {gateways} gateways, "
            f"{servers} Rasa and {servers} action servers...",
            flush=True,
        )
        started = time.monotonic()
        launcher.start()
        urls = [f"http://127.0.0.1:{first + i}" for i in range(gateways)]
        ready = [f"http://127.0.0.1:{rasa_port + j}/" for j in range(servers)]
        asyncio.run(_all_ready(launcher, ready + [u + "/healthz" for u in urls]))
        ready_s = round(time.monotonic() - started, 1)
        assert launcher.proc is not None
        pid = launcher.proc.pid
        before, bench = cpu_by_kind(pid), own_cpu()
        backends = BackendCpu(args.postgres_url, db_url.rsplit("/", 1)[1])
        backends.start()
        mail = work / "email-outbox"
        outcome = asyncio.run(
            drive.through_gateway(
                urls, deliveries, mail, db_url, people, args.timeout, args.in_flight
            )
        )
        after = cpu_by_kind(pid)
        cpu = {kind: after.get(kind, 0.0) - before.get(kind, 0.0) for kind in after}
        cpu["database"] = backends.stop()
        cpu["bench (load and fakes)"] = own_cpu() - bench
        result = outcome.summary()
        n = max(outcome.messages, 1)
        result["cpu_ms_per_message"] = {
            k: round(v * 1000 / n, 2) for k, v in cpu.items()
        }
        return {
            "database": db_kind, "people": count, "rasa_servers": servers,
            "gateways": gateways, "ready_s": ready_s, "whole_path": result,
            "log": log_summary(work / "scaled.log"),
        }  # fmt: skip
