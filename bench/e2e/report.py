"""The Markdown summary of an end-to-end run (for docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

PHASES = (
    ("whole_path", "whole path (webhooks → gateway → Rasa → actions → fakes)"),
    ("ours_rest", "our Rasa, REST webhook"),
    ("stock_rest", "stock Rasa 3.6, REST webhook"),
)
CPU_COLUMNS = ("gateway1", "rasa", "actions", "database", "bench (load and fakes)")
RASA_PARTS = (
    ("nlu", "NLU (whole graph)"),
    ("policies", "policies (whole graph)"),
    ("tracker.retrieve", "tracker store: load"),
    ("tracker.save", "tracker store: save"),
    ("tracker.copy", "tracker copy before each action (event replay)"),
    ("tracker.current_state", "tracker as JSON (action server bodies)"),
    ("action_response.validate", "action server answer checked by jsonschema"),
    ("action_server.request", "action server round trips (wall)"),
    ("action.in_rasa", "actions run in Rasa: responses, forms, listen (wall)"),
    ("turn", "whole turn in the processor (wall)"),
)


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value:g}"


def _phases(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, summary) of the rounds of history, then of each phase run."""
    past = run.get("history") or []
    return [
        (f"history {number} of {len(past)}: whole path, other people", phase)
        for number, phase in enumerate(past, 1)
    ] + [(label, run[key]) for key, label in PHASES if run.get(key)]


def _throughput(run: dict[str, Any]) -> list[str]:
    """A row per phase, after the rounds of history that came before them."""
    return [_row(label, phase) for label, phase in _phases(run)]


def _row(label: str, phase: dict[str, Any]) -> str:
    """One phase's row of the throughput table."""
    cpu = phase["cpu_ms_per_message"]
    rasa = cpu.get("rasa", cpu.get("stock rasa"))
    failed = phase.get("failed_action_calls", 0)
    cells = [label, _cell(phase["messages_per_s"]),
             _cell(phase.get("in_flight_mean")),
             f"{phase['p50_ms']:g} / {phase['p95_ms']:g} / {phase['p99_ms']:g}"
             + (f" (whole answer {phase['answer_p50_ms']:g} / "
                f"{phase['answer_p95_ms']:g} / {phase['answer_p99_ms']:g})"
                if "answer_p50_ms" in phase else ""),
             _cell(cpu.get("gateway1")), _cell(rasa), _cell(cpu.get("actions")),
             _cell(cpu.get("database")), _cell(cpu.get("bench (load and fakes)")),
             f"{phase['messages']} ({phase['timeouts']} t/o, "
             f"{phase['errors']} err, "
             f"{failed} failed action calls)"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _by_turn(phase: dict[str, Any]) -> list[str]:
    """Time to reply per kind of turn, the largest share of the tail first."""
    turns = sorted(phase.get("by_turn", {}).items(),
                   key=lambda item: (-item[1]["tail_share"], item[0]))  # fmt: skip
    return [
        f"| {turn} | {t['count']} | {t['p50_ms']:g} / {t['p95_ms']:g} | "
        f"{t['tail_share'] * 100:.0f} % |"
        for turn, t in turns
    ]


def _breakdown(run: dict[str, Any]) -> list[str]:
    rows = []
    phases = [(k, run[k]) for k, _ in PHASES if run.get(k)]
    for key, label in RASA_PARTS:
        cells = [label]
        for _, phase in phases:
            part = phase["rasa_ms_per_message"].get(key)
            if part is None:
                cells.append("–")
            elif key in ("nlu", "policies", "action_response.validate") or (
                key.startswith("tracker.")
            ):
                cells.append(f"{part['cpu_ms']:g} cpu ({part['calls']:g}×)")
            else:
                cells.append(f"{part['wall_ms']:g} ({part['calls']:g}×)")
        rows.append("| " + " | ".join(cells) + " |")
    rows.append("| Rasa process CPU, all | " + " | ".join(
        _cell(p["cpu_ms_per_message"].get("rasa", p["cpu_ms_per_message"].get(
            "stock rasa"))) for _, p in phases) + " |")  # fmt: skip
    return rows


def _nodes(phase: dict[str, Any], top: int = 12) -> list[str]:
    nodes = sorted(
        ((k.split(".node.", 1)[0], k.split(".node.", 1)[1], v)
         for k, v in phase["rasa_ms_per_message"].items() if ".node." in k),
        key=lambda item: -item[2]["cpu_ms"],
    )[:top]  # fmt: skip
    return [f"| {region} | `{name}` | {v['cpu_ms']:g} | {v['calls']:g} |"
            for region, name, v in nodes]  # fmt: skip


def _requests(phase: dict[str, Any], top: int = 6) -> list[str]:
    prefix = "action_server.request."
    found = sorted(
        ((k[len(prefix):], v) for k, v in phase["rasa_ms_per_message"].items()
         if k.startswith(prefix)),
        key=lambda item: -item[1]["wall_ms"],
    )[:top]  # fmt: skip
    return [f"| `{name}` | {v['wall_ms']:g} | {v['calls']:g} |" for name, v in found]


def _profile(profile: dict[str, Any]) -> list[str]:
    if "error" in profile:
        return ["", f"Profile: {profile['error']}."]
    lines = [
        "",
        "cProfile of our Rasa during the whole path (CPU clock, profiler overhead "
        f"included): {profile['profiled_cpu_ms_per_message']:g} ms per message.",
        "",
        "| own time by package | ms/msg |",
        "| --- | ---: |",
        *(f"| {k} | {v:g} |" for k, v in profile["by_package_ms"].items() if v >= 0.1),
        "",
        "| step of a turn (cumulative, nested) | ms/msg |",
        "| --- | ---: |",
        *(f"| {k} | {v:g} |" for k, v in profile["steps_ms"].items()),
    ]
    return lines


def _ratios_to_stock(run: dict[str, Any]) -> list[str]:
    """The whole path's and our Rasa's msg/s against stock Rasa's (REST)."""
    stock = run.get("stock_rest")
    if not stock or not stock["messages_per_s"]:
        return []
    lines = []
    for key, name in (("whole_path", "Whole path"), ("ours_rest", "Our Rasa (REST)")):
        if run.get(key):
            ratio = run[key]["messages_per_s"] / stock["messages_per_s"]
            lines += ["", f"{name} / stock Rasa (REST): **{ratio:.2f}×** msg/s."]
    return lines


def _logs(run: dict[str, Any]) -> list[str]:
    """What the processes logged in the run: a traceback is a failed turn or
    call, so a run with any is not a measure of a working assistant (its
    people may all have been answered, with apologies)."""
    logs = run.get("logs") or {}
    if not logs:
        return []
    parts = []
    for name, summary in logs.items():
        levels = summary.get("by_level", {})
        parts.append(
            f"{name} {summary.get('tracebacks', 0)} tracebacks, "
            f"{levels.get('ERROR', 0)} errors, {levels.get('WARNING', 0)} warnings"
        )
    failing = sum(summary.get("tracebacks", 0) for summary in logs.values())
    warning = (
        f" **{failing} tracebacks: these figures are of a failing run.**"
        if failing
        else ""
    )
    return ["", "Logs: " + "; ".join(parts) + "." + warning]


def _database_activity(run: dict[str, Any]) -> list[str]:
    """PostgreSQL's own counts per message in each phase (`bench.pg_activity`):
    a table read whole on every message shows here long before it is large."""
    rows = []
    for label, phase in _phases(run):
        activity = phase.get("database_activity")
        if not activity:
            continue
        scans = ", ".join(
            f"{s['table']} {s['scans']:,} ({s['rows_read']:,} rows)"
            for s in activity["sequential_scans"]
        )
        lookups = ", ".join(
            f"{s['table']} {s['scans']:,} ({s['entries_read']:,} entries)"
            for s in activity.get("index_reads", ())
        )
        rows.append(
            f"| {label} | {activity['commits']:g} / {activity['rollbacks']:g} | "
            f"{activity['rows_read']:,.1f} | {scans or 'none'} | {lookups or '–'} |"
        )
    if not rows:
        return []
    return [
        "",
        "PostgreSQL per message (its statistics views, before and after each "
        "phase; the scans and entries include the load generator's turn "
        "watcher's, about twenty reads a second of `conversation`, "
        "`inbox_message` and `outbox_message`):",
        "",
        "| phase | commits / rollbacks | rows read | sequential scans in the phase: "
        "table, scans (rows read) | index scans in the phase: table, scans "
        "(index entries read) |",
        "| --- | ---: | ---: | --- | --- |",
        *rows,
    ]


def markdown(report: dict[str, Any]) -> str:
    """Tables per database and number of people, then Rasa's time per message."""
    m = report["machine"]
    lines = [
        f"Command: `{report['command']}`"
        + (f" ({report['load']})" if report.get("load") else "")
        + f"; {m['nproc']} × {m['cpu_model']}, Python "
        f"{m['python']}"
        + (f" (configured {m['python_build']})" if m.get("python_build") else "")
        + (f" at {m['python_binary']}" if m.get("python_binary") else "")
        + f"; load average {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end; {report['date']}.",
    ]
    for run in report["runs"]:
        phases = [label for k, label in PHASES if run.get(k)]
        lines += [
            "",
            f"#### {run['database']}, {run['people']} people "
            f"(ready in {run['ready_s']:g} s"
            + (f"; stock Rasa ready in {run['stock_ready_s']:g} s" if run.get(
                "stock_ready_s") else "") + ")",
            "",
            "| phase | msg/s | people in flight, mean | time to reply p50 / p95 / "
            "p99 (ms) | CPU ms/msg: gateway | Rasa | actions | database | "
            "load+fakes | messages |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *_throughput(run),
        ]  # fmt: skip
        lines += _ratios_to_stock(run)
        lines += _logs(run)
        lines += _database_activity(run)
        lines += [
            "",
            "Rasa per message (ms; NLU, policies and tracker store in CPU of "
            "Rasa's event loop, the rest wall time):",
            "",
            "| part | " + " | ".join(phases) + " |",
            "| --- |" + " ---: |" * len(phases),
            *_breakdown(run),
        ]
        if run.get("whole_path", {}).get("by_turn"):
            lines += ["", "Time to reply by turn, whole path (where its p95 comes "
                      "from):", "", "| turn | messages | p50 / p95 (ms) | of the "
                      "messages over the phase's p95 |", "| --- | ---: | ---: | ---: |",
                      *_by_turn(run["whole_path"])]  # fmt: skip
        if run.get("whole_path", {}).get("profile"):
            lines += _profile(run["whole_path"]["profile"])
        for key, label in PHASES:
            if run.get(key) and key != "ours_rest":
                lines += ["", f"Costliest graph nodes, {label} (CPU ms per message):",
                          "", "| graph | node | CPU ms | calls |",
                          "| --- | --- | ---: | ---: |", *_nodes(run[key]),
                          "", f"Slowest action server calls, {label} (wall ms per "
                          "message):", "", "| action | wall ms | calls |",
                          "| --- | ---: | ---: |", *_requests(run[key])]  # fmt: skip
    if report.get("scaled"):
        lines += [
            "",
            "#### make run-scaled (PostgreSQL, Redis), whole path",
            "",
            "| gateways | Rasa servers (+ as many action servers) | people | msg/s | "
            "time to reply p50 / p95 / p99 (ms) | CPU ms/msg: gateways | Rasa | "
            "actions | database | messages |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in report["scaled"]:
            p, cpu = run["whole_path"], run["whole_path"]["cpu_ms_per_message"]
            lines.append(
                f"| {run['gateways']} | {run['rasa_servers']} | {run['people']} | "
                f"{p['messages_per_s']:g} | {p['p50_ms']:g} / {p['p95_ms']:g} / "
                f"{p['p99_ms']:g} | {_cell(cpu.get('gateway'))} | "
                f"{_cell(cpu.get('rasa'))} | {_cell(cpu.get('actions'))} | "
                f"{_cell(cpu.get('database'))} | {p['messages']} "
                f"({p['timeouts']} t/o, {p['errors']} err) |"
            )
    return "\n".join(lines)
