"""`python -m bench.soak`: run the soak (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.gateway import (
    clean_env,
    database,
    log_summary,
    machine,
)
from bench.soak.checks import (
    PLANTS,
    analyse,
    database_rows,
    latencies,
    mail_counts,
    plant_live,
    plant_observed,
)
from bench.soak.people import (
    SEED,
    Person,
    build_people,
)
from bench.soak.stack import (
    MODEL,
    ROOT,
    TELEGRAM_LATENCY,
    Deliveries,
    Delivery,
    gateway_urls,
    make_fakes,
    make_services,
    seed,
)
from bench.soak.traffic import (
    DRAIN_TIMEOUT,
    Driver,
    Traffic,
    drain,
    inject_faults,
)

RESULTS = ROOT / "results" / "soak"
DESCRIPTION = "The assistant under traffic while its processes are killed with SIGKILL."

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


async def soak(
    args: argparse.Namespace, work: Path, db_url: str, deliveries: Deliveries,
    twilio: Any, telegram: Any, people: list[Person],
) -> tuple[Traffic, dict[str, float]]:  # fmt: skip
    """Start the stack, drive the traffic with the faults, drain, stop."""
    services = make_services(
        work, db_url, args.redis_url, twilio, telegram,
        rasa_servers=args.rasa, action_servers=args.rasa,
    )  # fmt: skip
    rng = random.Random(SEED + 1)  # noqa: S311 (a schedule, not a secret)
    try:
        print(f"starting {args.rasa} action server(s), {args.rasa} Rasa server(s) "
              "and two gateways...", flush=True)  # fmt: skip
        for service in services.values():  # action servers, Rasa, gateways
            service.start()
        await asyncio.gather(*(s.ready() for s in services.values()))
        deadline = time.monotonic() + args.timeout
        driver = Driver(gateway_urls(services), deliveries, work / "email-outbox",
                        random.Random(SEED + 2), deadline,  # noqa: S311
                        telegram=telegram)  # fmt: skip
        done = asyncio.Event()
        total = sum(len(p.steps) + sum(1 for s in p.steps if s.pair) for p in people)
        print(f"traffic: {total} messages from {len(people)} people", flush=True)
        faults = asyncio.create_task(
            inject_faults(services, driver, total, args.kills, rng, done)
        )
        traffic = await driver.run(people, args.concurrency)
        done.set()
        await faults
        await drain(db_url, min(DRAIN_TIMEOUT, max(10.0, deadline - time.monotonic())))
        return traffic, latencies(traffic, deliveries)
    finally:
        for service in services.values():
            service.stop()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Fakes, database, seed, the soak itself, then the analysis."""
    rng = random.Random(SEED)  # noqa: S311 (synthetic traffic)
    people = build_people(args.people, args.messages, rng)
    deliveries = Deliveries()
    twilio, telegram = make_fakes(deliveries, telegram_latency=TELEGRAM_LATENCY)
    (work / "email-outbox").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for fake in (twilio, telegram):
            fake.start()
            stack.callback(fake.stop)
        db_url, db_kind = stack.enter_context(database(args.database_url, work))
        env = {
            **clean_env(),
            "PRAKERJA_ENV": "test",
            "DATABASE_URL": db_url,
            "PRAKERJA_VAR_DIR": str(work / "var"),
            "PRAKERJA_POLICY": "2020",
        }
        seed(env, db_url, people)
        where = machine(db_kind)
        traffic, latency = asyncio.run(
            soak(args, work, db_url, deliveries, twilio, telegram, people)
        )
        before_plants = len(deliveries.all)
        planted = [
            plant_live(kind, deliveries, twilio, telegram, work / "email-outbox",
                       db_url, rng)
            for kind in args.plant or ()
        ]  # fmt: skip
        rows = database_rows(db_url)
    observed = list(deliveries.all)
    if args.keep:
        write_transcripts(work / "transcripts.txt", people, traffic, observed)
    touched = {d.address for d in observed[before_plants:]}
    for kind in args.plant or ():
        planted.append(plant_observed(observed, kind, rng, touched))
    result = analyse(traffic, observed, rows, mail_counts(work / "email-outbox"))
    callbacks = Counter(
        "answered 200" if code == 200 else "not answered (a gateway down)"
        for _, _, code in twilio.callbacks
    )
    result["details"]["sms_status_callbacks"] = dict(callbacks)
    result["details"]["sms_delivery_statuses"] = dict(
        Counter(
            r.delivery_status or "none"
            for r in rows["outbox"]
            if rows["conversations"].get(r.conversation_id, ("", ""))[0] == "sms"
        )
    )
    result["throughput"]["post_to_first_reply_p50_ms"] = latency["p50_ms"]
    result["throughput"]["post_to_first_reply_p95_ms"] = latency["p95_ms"]
    result["planted"] = [what for what in planted if what]
    result["logs"] = {
        name: log_summary(work / f"{name}.log")
        for name in sorted(p.stem for p in work.glob("*.log"))
        if name.startswith(("gateway", "rasa", "actions"))
    }
    where["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = where
    result["parameters"] = {
        "messages": args.messages, "people": args.people,
        "concurrency": args.concurrency, "kills_per_kind": args.kills,
        "rasa_servers": args.rasa,
        "flows": dict(Counter(p.flow for p in people)),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    return result


def write_transcripts(
    path: Path, people: list[Person], traffic: Traffic, observed: list[Delivery]
) -> None:
    """Both directions of every conversation in time order (for --keep)."""
    events: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for s in traffic.sent:
        events[s.address].append((s.posted_at, f"  >> {s.text} [{s.status}]"))
    for d in observed:
        events[d.address].append((d.at, "  << " + d.text.replace("\n", "\n     ")))
    with path.open("w", encoding="utf-8") as out:
        for person in people:
            out.write(f"person {person.index} ({person.channel}, {person.flow})\n")
            start = traffic.started
            for at, line in sorted(events[person.address]):
                out.write(f"{at - start:8.2f} {line}\n")


def report(result: dict[str, Any]) -> str:
    """The summary printed at the end (and pasted into docs/benchmarks.md)."""
    p, m, c = result["parameters"], result["machine"], result["checks"]
    d, t = result["details"], result["throughput"]
    lines = [
        f"Soak: {d['messages_sent']} messages from {p['people']} people "
        f"({p['flows']}), {p['concurrency']} at once, {p['kills_per_kind']} kill(s) "
        f"of each kind; {p.get('rasa_servers', 1)} Rasa and action server(s), two "
        f"gateways; {m['database']}; {m['nproc']} x {m['cpu_model']}; load "
        f"{m['load_average_at_start'][0]} -> {m['load_average_at_end'][0]}; "
        f"{p['date']}",
    ]
    for what in result["planted"]:
        lines.append(f"PLANTED DEFECT: {what}")
    lines += ["", "| Check | Count |", "| --- | ---: |"]
    lines += [f"| {name.replace('_', ' ')} | {'' if n == 0 else '**'}{n}"
              f"{'' if n == 0 else '**'} |" for name, n in c.items()]  # fmt: skip
    lines += ["", "| Kill | Target | At (s) | Waiting | Restarted (s) | "
              "First reply (s) | Worst (s) | Never answered |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    worst: dict[str, float] = {}
    for kind, kills in result["recovery"].items():
        for k in kills:
            lines.append(
                f"| {kind} | {k['target']} | {k['at_s']} | {k['waiting']} | "
                f"{k['restart_ready_s']} | {k['first_s']} | {k['worst_s']} | "
                f"{k['never_answered']} |"
            )
            if k["worst_s"] is not None:
                worst[kind] = max(worst.get(kind, 0.0), k["worst_s"])
    for kind, kills in result["recovery"].items():
        for k in kills:
            if (k["worst_s"] or 0.0) > SLOW_RECOVERY_S and k.get("worst_timeline"):
                lines += ["", f"Slowest answer after the {kind} kill at {k['at_s']} s "
                          "(seconds from the kill):"]  # fmt: skip
                lines += [f"    {line}" for line in k["worst_timeline"]]
    lines += [
        "",
        "Worst recovery: " + (", ".join(f"{k} {v:g} s" for k, v in worst.items())
                              or "no kill"),
        f"Throughput: {t['messages_per_s']:g} messages/s, {t['replies_per_s']:g} "
        f"replies/s over {t['window_s']:g} s; post to first reply p50 "
        f"{t['post_to_first_reply_p50_ms']:g} ms, p95 "
        f"{t['post_to_first_reply_p95_ms']:g} ms",
        "Details: "
        + json.dumps({k: v for k, v in d.items() if k != "lost_first"}),
        "PASSED" if result["passed"] else "FAILED",
    ]  # fmt: skip
    return "\n".join(lines)


SLOW_RECOVERY_S = 5.0
"""A recovery slower than this (issue 9's target after a gateway kill) is
shown with its conversation's rows."""


def main() -> None:
    """Parse the arguments, run once, write the JSON, print the report."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=DESCRIPTION
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="500 messages, 50 people, one kill of each kind",
    )
    parser.add_argument("--people", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--kills", type=int, help="kills of each kind (default 3)")
    parser.add_argument("--no-kills", action="store_true", help="a calibration run")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server: a fresh database is made and dropped",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument(
        "--rasa",
        type=int,
        default=1,
        help="Rasa servers and as many action servers, laid out as `make "
        "run-scaled` lays them out (one tracker store, Redis locks)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep logs and files")
    parser.add_argument(
        "--out", type=Path, help=f"the results' JSON (default {RESULTS}/soak.json)"
    )
    parser.add_argument(
        "--plant", choices=PLANTS, action="append", help="plant a defect (repeatable)"
    )
    args = parser.parse_args()  # fmt: skip
    args.people = args.people or (50 if args.short else 1000)
    args.messages = args.messages or (500 if args.short else 10_000)
    args.kills = 0 if args.no_kills else (args.kills or (1 if args.short else 3))
    if not (0 < args.people <= args.messages and args.concurrency > 0):
        parser.error("need 0 < --people <= --messages and --concurrency > 0")
    if args.rasa < 1:
        parser.error("need --rasa 1 or more")
    if not MODEL.exists():
        raise SystemExit(f"{MODEL} is missing: run `make train` first")
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        result = run(args, work)
    finally:
        if args.keep:
            print(f"Logs and files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    out = args.out or RESULTS / "soak.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(report(result))
    if not result["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
