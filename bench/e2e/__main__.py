"""`python -m bench.e2e`: run the end-to-end benchmark (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import pg_activity
from bench.e2e import drive
from bench.e2e.profile import hot_spots
from bench.e2e.report import markdown
from bench.e2e.scaled import run_scaled
from bench.e2e.stock import ensure_model, model_path
from bench.gateway import database, log_summary, machine, telegram_pacing_env
from bench.proc_cpu import BackendCpu, group_cpu, own_cpu
from bench.soak.people import SEED, Person, build_people
from bench.soak.stack import (
    BIN,
    MODEL,
    ROOT,
    Deliveries,
    Service,
    gateway_urls,
    make_fakes,
    make_services,
    seed,
)
from bot.launcher import RASA_READY_PATH

RESULTS = ROOT / "results" / "bench"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TIMINGS_SETTLE = 1.5  # rasa_timed writes its totals every second
IN_FLIGHT = 50  # issue 13's targets: 50 people in flight
UNPACED = 1000
"""Telegram's pace for the runs: the people write again the instant their answer
comes, which Telegram's one message a second per chat would hold; the bench
measures our processes, not the provider's pace."""


class Ports:
    """Ports handed out in order from a range, skipping any in use."""

    def __init__(self, base: int, size: int = 100) -> None:
        self._next, self._end = base, base + size

    def __call__(self) -> int:
        """The next free port of the range."""
        return self.block(1)

    def block(self, count: int) -> int:
        """The first of the next `count` consecutive free ports of the range."""
        while self._next + count <= self._end:
            first = self._next
            if all(_free(first + i) for i in range(count)):
                self._next = first + count
                return first
            self._next += 1
        raise SystemExit("no free port left in the range given by --port-base")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Meters:
    """The CPU of each measured process, taken before and after a phase."""

    services: dict[str, Service]
    backends: Callable[[], BackendCpu] | None
    timings: Path
    rasa_log: Path
    database_url: str | None = None
    """PostgreSQL: the run's database, whose statistics views are read before
    and after each phase (`bench.pg_activity`)."""

    def measure(self, phase: Callable[[], drive.Outcome]) -> dict[str, Any]:
        """Run `phase`, return its summary with CPU and Rasa's timings per message."""
        counts = None
        if self.database_url:  # every backend has reported what came before
            time.sleep(pg_activity.SETTLE_SECONDS)
            counts = pg_activity.snapshot(self.database_url)
        before = {name: group_cpu(s.proc.pid) for name, s in self._live()}
        rasa_before = self._timings()
        failed_before = _failed_actions(self.rasa_log)
        bench_before = own_cpu()
        watcher = self.backends() if self.backends else None
        if watcher:
            watcher.start()
        outcome = phase()
        cpu = {name: group_cpu(s.proc.pid) - before[name] for name, s in self._live()}
        cpu["bench (load and fakes)"] = own_cpu() - bench_before
        if watcher:
            cpu["database"] = watcher.stop()
        time.sleep(TIMINGS_SETTLE)
        rasa = _with_total(_delta(self._timings(), rasa_before),
                           "action_server.request")  # fmt: skip
        result = outcome.summary()
        result["failed_action_calls"] = _failed_actions(self.rasa_log) - failed_before
        if self.database_url and counts:
            time.sleep(pg_activity.SETTLE_SECONDS - TIMINGS_SETTLE)
            result["database_activity"] = pg_activity.per_message(
                counts,
                pg_activity.snapshot(self.database_url),
                outcome.messages,
                harness_reads=outcome.watcher_reads,
            )
        n = max(outcome.messages, 1)
        result["cpu_ms_per_message"] = {
            k: round(v * 1000 / n, 2) for k, v in cpu.items()
        }
        result["rasa_ms_per_message"] = {
            key: {"calls": round(v["count"] / n, 2),
                  "wall_ms": round(v["wall_s"] * 1000 / n, 2),
                  "cpu_ms": round(v["cpu_s"] * 1000 / n, 2)}
            for key, v in sorted(rasa.items()) if v["count"]
        }  # fmt: skip
        return result

    def _live(self) -> Iterator[tuple[str, Any]]:
        for name, service in self.services.items():
            if service.proc is not None and service.proc.poll() is None:
                yield name, service

    def _timings(self) -> dict[str, dict[str, float]]:
        try:
            found: dict[str, dict[str, float]] = json.loads(self.timings.read_text())
            return found
        except (OSError, ValueError):
            return {}


def _failed_actions(log: Path) -> int:
    """Action server calls Rasa logged as failed so far."""
    try:
        return log.read_text(errors="replace").count("Failed to run custom action")
    except OSError:
        return 0


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    zero = {"count": 0, "wall_s": 0.0, "cpu_s": 0.0}
    return {
        key: {f: value[f] - before.get(key, zero)[f] for f in zero}
        for key, value in after.items()
    }


def _with_total(timings: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Add `prefix` as the sum of every `prefix.*` key."""
    parts = [v for k, v in timings.items() if k.startswith(prefix + ".")]
    total = {f: sum(p[f] for p in parts) for f in ("count", "wall_s", "cpu_s")}
    return {**timings, prefix: total}


def stock_service(
    services: dict[str, Service], work: Path, model: Path, port: int, timings: Path
) -> Service:
    """Stock Rasa on our action server and database, with Rasa's own SQL tracker
    store, on its REST channel; its endpoints keep our response generator
    (`bot.rasa_nlg`: the model's programme answers are its responses)."""
    import yaml

    rasa = services["rasa"]
    config = yaml.safe_load((work / "endpoints.yml").read_text(encoding="utf-8"))
    config["tracker_store"]["type"] = "SQL"
    endpoints = work / "stock-endpoints.yml"
    endpoints.write_text(yaml.safe_dump(config), encoding="utf-8")
    credentials = work / "stock-credentials.yml"  # Rasa's REST channel only: our
    credentials.write_text("rest:\n", encoding="utf-8")  # channel's cuts stay out
    command = [sys.executable, "-m", "bench.e2e.rasa_timed", "run", "--port",
               str(port), "--model", str(model), "--endpoints",
               str(endpoints), "--credentials", str(credentials)]  # fmt: skip
    env = {**rasa.env, "RASA_TIMINGS_FILE": str(timings)}
    return Service("stock rasa", command, env, f"http://127.0.0.1:{port}/status",
                   work / "stock-rasa.log")  # fmt: skip


async def _ready(*services: Service) -> None:
    await asyncio.gather(*(s.ready() for s in services))


def run_combination(
    args: argparse.Namespace, kind: str, count: int, ports: Ports, work: Path
) -> dict[str, Any]:
    """One database and one number of people: the three phases."""
    rng = random.Random(SEED)  # noqa: S311 (synthetic traffic)
    people: list[Person] = build_people(count, count * args.per_person, rng)
    history = [
        build_people(count, count * args.per_person,
                     random.Random(SEED + round_number),  # noqa: S311
                     first=round_number * count)
        for round_number in range(1, args.history + 1)
    ]  # fmt: skip
    deliveries = Deliveries()
    twilio, telegram = make_fakes(deliveries)
    (work / "email-outbox").mkdir(parents=True, exist_ok=True)
    url = None if kind == "sqlite" else args.postgres_url
    with ExitStack() as stack:
        for fake in (twilio, telegram):
            fake.start(port=ports())
            stack.callback(fake.stop)
        db_url, db_kind = stack.enter_context(database(url, work, args.db_prefix))
        tracker = f"sqlite:///{work}/rasa_tracker.db" if kind == "sqlite" else db_url
        env = {
            "PRAKERJA_ENV": "test",
            "DATABASE_URL": db_url,
            "PRAKERJA_VAR_DIR": str(work / "var"),
            "PRAKERJA_POLICY": "2020",
        }
        everyone = [person for crowd in (people, *history) for person in crowd]
        seed({**_base_env(), **env}, db_url, everyone)
        timings = work / "rasa-timings.json"
        services = make_services(
            work, db_url, "", twilio, telegram, gateways=1, port=ports,
            tracker_url=tracker,
            rasa=[sys.executable, "-m", "bench.e2e.rasa_timed"], model=args.model,
        )  # fmt: skip
        services["rasa"].env = {
            **services["rasa"].env,
            "RASA_TIMINGS_FILE": str(timings),
        }
        services["gateway1"].env.update(telegram_pacing_env(args))
        services["gateway1"].env.update(dict(args.gateway_env))
        profile = work / "rasa.prof"
        if args.profile_rasa:
            services["rasa"].env["RASA_PROFILE_FILE"] = str(profile)
        for service in services.values():
            stack.callback(service.stop)
        print(f"[{db_kind}, {count} people] starting the action server, Rasa and "
              f"the gateway...", flush=True)  # fmt: skip
        started = time.monotonic()
        for service in services.values():
            service.start()
        asyncio.run(_ready(*services.values()))
        ready_s = round(time.monotonic() - started, 1)
        backends = None
        if kind == "postgresql":
            name = db_url.rsplit("/", 1)[1]
            backends = lambda: BackendCpu(args.postgres_url, name)  # noqa: E731
        meters = Meters(services, backends, timings, services["rasa"].log,
                        db_url if kind == "postgresql" else None)  # fmt: skip
        past = []
        for round_number, crowd in enumerate(history, 1):
            print(f"  history {round_number}/{len(history)}: the whole path, "
                  f"{count} other people", flush=True)  # fmt: skip

            def earlier(crowd: list[Person] = crowd) -> drive.Outcome:
                return asyncio.run(drive.through_gateway(
                    gateway_urls(services), deliveries, work / "email-outbox",
                    db_url, crowd, args.timeout, args.in_flight))  # fmt: skip

            past.append(meters.measure(earlier))
            print(f"  {_line(past[-1])}", flush=True)
            forget_mail(work / "email-outbox")
            if kind == "postgresql":
                analyze(db_url)
        total = sum(len(p.steps) + sum(1 for s in p.steps if s.pair) for p in people)
        print(f"  whole path: {total} messages from {count} people", flush=True)
        rasa_pid = services["rasa"].proc.pid if services["rasa"].proc else 0
        if args.profile_rasa:
            os.kill(rasa_pid, signal.SIGUSR1)
        whole = meters.measure(lambda: asyncio.run(drive.through_gateway(
            gateway_urls(services), deliveries, work / "email-outbox", db_url,
            people, args.timeout, args.in_flight)))  # fmt: skip
        if args.profile_rasa:
            os.kill(rasa_pid, signal.SIGUSR2)
            whole["profile"] = hot_spots(profile, whole["messages"])
        print(f"  {_line(whole)}\n  our Rasa, REST channel", flush=True)
        rasa_url = services["rasa"].ready_url.removesuffix(RASA_READY_PATH)
        ours = meters.measure(lambda: asyncio.run(drive.through_rest(
            rasa_url, "ours", people, args.timeout, args.in_flight)))  # fmt: skip
        print(f"  {_line(ours)}", flush=True)
        result: dict[str, Any] = {
            "database": db_kind, "people": count, "messages_planned": total,
            "ready_s": ready_s, "whole_path": whole, "ours_rest": ours,
            "history": past,
        }  # fmt: skip
        services["gateway1"].stop()
        if args.stock_model:
            stock_timings = work / "stock-timings.json"
            stock = stock_service(services, work, args.stock_model, ports(),
                                  stock_timings)  # fmt: skip
            stack.callback(stock.stop)
            services["rasa"].stop()
            print("  stock Rasa, REST channel (starting...)", flush=True)
            started = time.monotonic()
            stock.start()
            asyncio.run(_ready(stock))
            result["stock_ready_s"] = round(time.monotonic() - started, 1)
            stock_meters = Meters({"actions": services["actions"], "rasa": stock},
                                  backends, stock_timings, stock.log,
                                  meters.database_url)  # fmt: skip
            stock_url = stock.ready_url.rsplit("/", 1)[0]
            result["stock_rest"] = stock_meters.measure(
                lambda: asyncio.run(
                    drive.through_rest(
                        stock_url, "stock", people, args.timeout, args.in_flight
                    )
                )
            )
            print(f"  {_line(result['stock_rest'])}", flush=True)
        result["logs"] = {
            name: log_summary(work / f"{name}.log")
            for name in ("gateway1", "rasa", "actions")
        }
    return result


def forget_mail(outbox: Path) -> None:
    """Delete a round's mails: the load generator reads the whole folder for
    each code it looks up, so the next round's would cost it more."""
    from bot.notify.mailbox import outbox_files

    for mail in outbox_files(outbox):
        mail.unlink()


def analyze(db_url: str) -> None:
    """ANALYZE every table of the run's PostgreSQL database, as autovacuum does
    when a tenth of a table has changed (this machine's server runs without
    it); the statements prepared on the services' connections are planned
    again at their next use."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def _base_env() -> dict[str, str]:
    from bench.gateway import clean_env

    return clean_env()


def _line(summary: dict[str, Any]) -> str:
    return (
        f"{summary['messages_per_s']} msg/s, p50 {summary['p50_ms']} ms, "
        f"p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms "
        f"({summary['timeouts']} timeouts, {summary['errors']} errors)"
    )


def _load(args: argparse.Namespace) -> str:
    """The load the command ran, its defaults included."""
    people = ", ".join(f"{n:,}" for n in args.people)
    return (
        f"{people} people, {args.in_flight or 'all'} in flight, Telegram paced "
        f"at {args.telegram_per_second or 'its own'} a second"
    )


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name, value


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="SQLite, 20 people, 3 messages each")  # fmt: skip
    parser.add_argument("--people", type=int, nargs="+", default=[1000],
                        help="people in all, per run (default 1,000: enough to "
                        "keep --in-flight people typing to the end)")  # fmt: skip
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help="people typing at once, each replaced by the next "
                        f"when its script ends (default {IN_FLIGHT}, issue 13's "
                        "load; 0: all --people at once, and then the last long "
                        "scripts run nearly alone)")  # fmt: skip
    parser.add_argument("--per-person", type=int, default=6,
                        help="messages per person on average (registrations send "
                        "their whole script)")  # fmt: skip
    parser.add_argument("--databases", nargs="*", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])  # fmt: skip
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--db-prefix", default="bench_e2e_",
                        help="prefix of the PostgreSQL databases created")  # fmt: skip
    parser.add_argument("--history", type=int, default=0, metavar="ROUNDS",
                        help="rounds of a like load (the same mix, drawn anew, "
                        "other people: no test people), run "
                        "through the whole path before the measured phases, "
                        "PostgreSQL's tables analyzed after each as autovacuum "
                        "would: the phases then meet tables that hold others' "
                        "past (default 0: a new, empty database)")  # fmt: skip
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--stock-model", type=Path,
                        help="stock Rasa model (default: trained once and cached, "
                        "bench/e2e/stock.py)")  # fmt: skip
    parser.add_argument("--no-stock", action="store_true")
    parser.add_argument("--scaled", type=int, nargs="*", default=[],
                        help="also the whole path through `make run-scaled` with "
                        "these numbers of Rasa servers (PostgreSQL, Redis; the "
                        "first --people)")  # fmt: skip
    parser.add_argument("--scaled-gateways", type=int, default=2)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--port-base", type=int, default=18500)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds per phase")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep logs and files")
    parser.add_argument("--telegram-per-second", type=int, default=UNPACED,
                        help="the gateway's overall Telegram pace (default "
                        f"{UNPACED}; 0: the gateway's own, Telegram's 30 a second "
                        "for one bot)")  # fmt: skip
    parser.add_argument("--telegram-chat-per-second", type=int, default=UNPACED,
                        help="the gateway's pace for one chat after its burst "
                        f"(default {UNPACED}; 0: Telegram's one a second, which "
                        "would hold people who write again at once, as here, to "
                        "it); the fake Bot API enforces neither")  # fmt: skip
    parser.add_argument("--gateway-env", type=_setting, action="append",
                        default=[], metavar="NAME=VALUE",
                        help="a setting of the gateway for the run, e.g. "
                        "GATEWAY_WORKERS=64 (repeatable)")  # fmt: skip
    parser.add_argument("--profile-rasa", action="store_true",
                        help="cProfile our Rasa during the whole-path phase "
                        "(slows it: read the shares per part)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.people, args.per_person, args.in_flight = [20], 3, 0
        args.databases = [] if args.scaled else ["sqlite"]
    if args.no_stock:
        args.stock_model = None
    elif args.stock_model is None and args.quick and not model_path().exists():
        print(
            "--quick: no stock model cached (training takes ~18 min), so no "
            "stock phase; `python -m bench.e2e.stock` trains it",
            flush=True,
        )
    elif args.stock_model is None:
        args.stock_model = ensure_model()
    return args


def main() -> None:
    """Every combination, then the JSON and the Markdown summary."""
    args = parse()
    ports = Ports(args.port_base)
    where = machine(", ".join(args.databases))
    results = []
    for kind in args.databases:
        for count in args.people:
            work = Path(tempfile.mkdtemp(prefix=f"bench-e2e-{kind}-{count}-"))
            try:
                results.append(run_combination(args, kind, count, ports, work))
            finally:
                if args.keep:
                    print(f"Logs and files kept in {work}", file=sys.stderr)
                else:
                    shutil.rmtree(work, ignore_errors=True)
    scaled = []
    for servers in args.scaled:
        work = Path(tempfile.mkdtemp(prefix=f"bench-e2e-scaled-{servers}-"))
        try:
            scaled.append(run_scaled(args, servers, ports, work))
            print(f"  {_line(scaled[-1]['whole_path'])}", flush=True)
        finally:
            if args.keep:
                print(f"Logs and files kept in {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
    where["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "machine": where,
        "command": " ".join(["python -m bench.e2e", *sys.argv[1:]]),
        "load": _load(args),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(args.model),
        "stock_model": str(args.stock_model) if args.stock_model else None,
        "rasa_bin": str(BIN / "rasa"),
        "runs": results,
        "scaled": scaled,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e2e.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
