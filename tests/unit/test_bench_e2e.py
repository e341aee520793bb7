"""bench/e2e's own logic: ports from the given range, when a person's turn is
over, Rasa's timings per part, and the Markdown report."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

import bench.e2e.__main__ as e2e
from bench.e2e import stock
from bench.e2e.__main__ import Ports, _delta, _with_total
from bench.e2e.drive import Outcome, TurnWatch, _person_seconds
from bench.e2e.report import _by_turn, markdown
from bench.soak.stack import Deliveries, Delivery
from bench.soak.traffic import Sent


def test_ports_come_from_the_range_and_skip_one_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(e2e, "_free", lambda port: port != 18502)
    ports = Ports(18500, size=6)
    assert ports() == 18500
    assert ports.block(2) == 18503  # 18501-18502 is not whole: 18502 is in use
    assert ports() == 18505
    with pytest.raises(SystemExit):
        ports()


def test_a_free_port_is_one_nobody_listens_on() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        assert not e2e._free(busy.getsockname()[1])


def test_a_turn_is_over_once_a_later_read_shows_nothing_pending_and_all_delivered(
) -> None:  # fmt: skip
    watch = TurnWatch("sqlite://")
    watch.read_at, watch.state = 10.0, {"+62811": (0, 2)}
    assert not watch.settled("+62811", acked_at=10.5, delivered=2)  # read too old
    assert not watch.settled("+62811", acked_at=9.0, delivered=1)  # one not sent
    assert watch.settled("+62811", acked_at=9.0, delivered=2)
    watch.state = {"+62811": (1, 2)}
    assert not watch.settled("+62811", acked_at=9.0, delivered=2)  # still pending
    watch.engine.dispose()


def test_rasa_timings_per_phase_and_the_action_server_total() -> None:
    before = {"nlu": {"count": 2, "wall_s": 0.02, "cpu_s": 0.02}}
    after = {
        "nlu": {"count": 5, "wall_s": 0.05, "cpu_s": 0.04},
        "action_server.request.action_a": {"count": 2, "wall_s": 0.4, "cpu_s": 0.1},
        "action_server.request.action_b": {"count": 1, "wall_s": 0.1, "cpu_s": 0.0},
    }
    found = _with_total(_delta(after, before), "action_server.request")
    assert found["nlu"]["count"] == 3
    assert found["action_server.request"]["count"] == 3
    assert round(found["action_server.request"]["wall_s"], 3) == 0.5


def _phase(rate: float) -> dict[str, object]:
    outcome = Outcome(messages=10, window_s=10 / rate, to_reply_s=[0.1] * 10,
                      texts=["halo"] * 10)  # fmt: skip
    return {
        **outcome.summary(),
        "cpu_ms_per_message": {"gateway1": 20.0, "rasa": 40.0, "actions": 5.0},
        "rasa_ms_per_message": {
            "nlu": {"calls": 1.0, "wall_ms": 9.0, "cpu_ms": 8.0},
            "nlu.node.run_X0": {"calls": 1.0, "wall_ms": 5.0, "cpu_ms": 4.0},
        },
    }


def test_the_report_has_the_ratio_to_stock_and_the_breakdown() -> None:
    report = {
        "machine": {"nproc": 2, "cpu_model": "cpu", "python": "3.10",
                    "load_average_at_start": [1.0], "load_average_at_end": [2.0]},
        "command": "python -m bench.e2e", "date": "today",
        "runs": [{"database": "SQLite", "people": 50, "ready_s": 9.0,
                  "whole_path": _phase(30.0), "ours_rest": _phase(45.0),
                  "stock_rest": _phase(10.0)}],
    }  # fmt: skip
    text = markdown(report)
    assert "Whole path / stock Rasa (REST): **3.00×** msg/s" in text
    assert "Our Rasa (REST) / stock Rasa (REST): **4.50×** msg/s" in text
    assert "| NLU (whole graph) | 8 cpu (1×) | 8 cpu (1×) |" in text
    assert "`run_X0`" in text
    assert "Python 3.10;" in text  # nothing said of a binary not recorded
    report["machine"]["python_binary"] = "/usr/bin/python3.10, libpython linked in"
    assert "Python 3.10 at /usr/bin/python3.10, libpython linked in;" in markdown(
        report
    )


def test_the_rounds_of_history_come_first_in_the_report() -> None:
    report = {
        "machine": {"nproc": 2, "cpu_model": "cpu", "python": "3.10",
                    "load_average_at_start": [1.0], "load_average_at_end": [2.0]},
        "command": "python -m bench.e2e --history 2", "date": "today",
        "runs": [{"database": "PostgreSQL", "people": 50, "ready_s": 9.0,
                  "history": [_phase(31.0), _phase(32.0)],
                  "whole_path": _phase(30.0), "ours_rest": _phase(45.0)}],
    }  # fmt: skip
    lines = markdown(report).splitlines()
    rows = [line for line in lines if line.startswith(("| history", "| whole path"))]

    assert [row.split(" | ")[:2] for row in rows[:3]] == [
        ["| history 1 of 2: whole path, other people", "31"],
        ["| history 2 of 2: whole path, other people", "32"],
        ["| whole path (webhooks → gateway → Rasa → actions → fakes)", "30"],
    ]


def test_crowds_built_apart_share_no_address_e_mail_or_identity() -> None:
    """The rounds of history must not continue the measured people's chats."""
    import random

    from bench.soak.people import build_people

    measured = build_people(40, 240, random.Random(1))
    earlier = build_people(40, 240, random.Random(2), first=40)

    def keys(crowd: list[Any]) -> set[str]:
        found = {person.address for person in crowd}
        for person in crowd:
            if person.identity is not None:
                found |= {person.identity.email, person.identity.nik}
        return found

    assert len(keys(measured)) > 40 and len(keys(earlier)) > 40
    assert keys(measured).isdisjoint(keys(earlier))


def test_a_second_driver_never_repeats_a_telegram_update_id(tmp_path: Path) -> None:
    """A repeated update id is a redelivery to the gateway: the message would
    be acknowledged and never answered (found with a round of history)."""
    import random

    from bench.soak.people import build_people
    from bench.soak.traffic import Driver

    person = next(p for p in build_people(4, 8, random.Random(1)) if p.channel != "sms")
    ids = [
        Driver(["http://127.0.0.1:1"], Deliveries(), tmp_path, random.Random(0), 0.0)
        ._new(person, seq, "halo", "")
        .provider_id
        for seq in range(3)
        for _ in range(2)
    ]

    assert len(set(ids)) == len(ids) == 6


def test_the_report_calls_a_run_with_tracebacks_a_failing_one() -> None:
    """A broken NLU answered everyone with apologies: 0 errors, 0 timeouts."""

    def report(rasa_tracebacks: int) -> str:
        logs = {name: {"by_level": {}, "tracebacks": 0, "most_common": []}
                for name in ("gateway1", "rasa", "actions")}  # fmt: skip
        logs["rasa"] = {"by_level": {"ERROR": 3}, "tracebacks": rasa_tracebacks}
        return markdown({
            "machine": {"nproc": 2, "cpu_model": "cpu", "python": "3.10",
                        "load_average_at_start": [1.0],
                        "load_average_at_end": [2.0]},
            "command": "python -m bench.e2e", "date": "today",
            "runs": [{"database": "SQLite", "people": 50, "ready_s": 9.0,
                      "whole_path": _phase(30.0), "logs": logs}],
        })  # fmt: skip

    assert "rasa 2 tracebacks, 3 errors, 0 warnings" in report(2)
    assert "**2 tracebacks: these figures are of a failing run.**" in report(2)
    assert "failing run" not in report(0)


def test_the_stock_model_is_keyed_by_the_configs_content_not_its_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training writes Rasa's defaults into the config as comments."""
    config = tmp_path / "stock.yml"
    monkeypatch.setattr(stock, "CONFIG", config)
    config.write_text("recipe: default.v1\nlanguage: id\npipeline:\npolicies:\n")
    before = stock.data_hash()
    config.write_text("recipe: default.v1\nlanguage: id\npipeline:\n"
                      "#   - name: DIETClassifier\npolicies:\n")  # fmt: skip
    assert stock.data_hash() == before
    config.write_text("recipe: default.v1\nlanguage: en\npipeline:\npolicies:\n")
    assert stock.data_hash() != before
    assert stock.model_path().name == f"stock-{stock.data_hash()}.tar.gz"


def test_the_whole_answer_ends_before_the_persons_next_message() -> None:
    from bench.e2e.drive import _next_posts
    from bench.soak.traffic import Sent

    def sent(address: str, seq: int, at: float) -> Sent:
        return Sent(0, seq, "sms", address, "halo", "SM1", "", posted_at=at)

    found = _next_posts([sent("a", 0, 1.0), sent("a", 0, 1.01), sent("b", 0, 1.5),
                         sent("a", 1, 5.0)])  # fmt: skip
    assert found == [5.0, 5.0, float("inf"), float("inf")]


def test_recorded_conversations_are_cut_into_turns_at_each_user_message(
    tmp_path: Path,
) -> None:
    import json
    import sqlite3

    from bench.e2e.tracker_stores import conversations

    path = tmp_path / "rasa_tracker.db"
    kinds = {"a": ["action", "session_started", "action", "user", "bot", "action",
                   "user", "action"], "b": ["user", "action"]}  # fmt: skip
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, "
                           "sender_id TEXT, data TEXT)")  # fmt: skip
        for sender, events in kinds.items():
            for kind in events:
                connection.execute(
                    "INSERT INTO events (sender_id, data) VALUES (?, ?)",
                    (sender, json.dumps({"event": kind})),
                )
    found = conversations(path)
    assert [[e["event"] for e in turn] for turn in found["a"]] == [
        ["action", "session_started", "action"],
        ["user", "bot", "action"],
        ["user", "action"],
    ]
    assert [[e["event"] for e in turn] for turn in found["b"]] == [["user", "action"]]


def test_people_in_flight_count_each_person_from_first_post_to_last_reply() -> None:
    deliveries = Deliveries()
    deliveries.all = [
        Delivery(3.0, "sms", "a", "x"),
        Delivery(7.5, "sms", "a", "y"),
        Delivery(1.0, "sms", "b", "before b wrote"),
    ]
    for delivery in deliveries.all:
        deliveries._by_address[delivery.address].append(delivery)
    sent = [
        Sent(1, 0, "sms", "a", "halo", "p1", "text", posted_at=1.0),
        Sent(1, 1, "sms", "a", "daftar", "p2", "text", posted_at=5.0),
        Sent(2, 0, "sms", "b", "halo", "p3", "text", posted_at=2.0),  # no reply
    ]
    assert _person_seconds(sent, deliveries) == (7.5 - 1.0) + 0.0
    outcome = Outcome(messages=3, window_s=2.0, person_s=5.0)
    assert outcome.summary()["in_flight_mean"] == 2.5


def test_the_tail_is_told_by_turn_and_the_report_lists_the_largest_share_first() -> (
    None
):
    fast, slow = [0.1] * 18, [0.5, 0.6]
    outcome = Outcome(
        messages=20, window_s=1.0, to_reply_s=fast + slow,
        turns=["faq"] * 18 + ["registration: code"] * 2, texts=["t"] * 20,
    )  # fmt: skip
    by_turn = outcome.summary()["by_turn"]
    assert by_turn["faq"] == {"count": 18, "p50_ms": 100.0, "p95_ms": 100.0,
                              "tail_share": 0.0}  # fmt: skip
    assert by_turn["registration: code"]["count"] == 2
    assert by_turn["registration: code"]["tail_share"] == 1.0
    rows = _by_turn({"by_turn": by_turn})
    assert rows[0].startswith("| registration: code | 2 |")
    assert rows[0].endswith("| 100 % |")
    assert Outcome(messages=1, window_s=1.0, to_reply_s=[0.1]).by_turn() == {}
    with pytest.raises(ValueError):
        Outcome(
            messages=2, window_s=1.0, to_reply_s=[0.1, 0.2], turns=["faq"]
        ).by_turn()


def test_the_interpreters_speed_flags_are_told_as_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sysconfig

    from bench.gateway import python_build

    def config(args: str) -> None:
        monkeypatch.setattr(sysconfig, "get_config_var", lambda name: args)

    config("'--prefix=/root/.pyenv/versions/3.10.13' '--enable-shared'")
    assert python_build() == ("without --enable-optimizations, without --with-lto")
    config("'--enable-optimizations' '--with-lto' '--enable-shared'")
    assert python_build() == "with --enable-optimizations, with --with-lto"
    config('"--enable-optimizations" "--with-lto=full"')
    assert python_build() == "with --enable-optimizations, with --with-lto"
    config("'--with-lto=no'")
    assert python_build() == ("without --enable-optimizations, without --with-lto")


def test_the_interpreters_binary_tells_whether_libpython_is_shared(
    tmp_path: Path,
) -> None:
    from bench.gateway import python_binary

    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 0 08:01 1 /root/.pyenv/versions/3.10.13/lib/"
        "libpython3.10.so.1.0\n7f02-7f03 r-xp 0 08:01 2 /usr/lib/libc.so.6\n"
    )
    assert python_binary(maps).endswith(", libpython shared")
    maps.write_text("7f02-7f03 r-xp 0 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert python_binary(maps).endswith(", libpython linked in")
    assert python_binary(tmp_path / "absent").endswith(", libpython unknown")
