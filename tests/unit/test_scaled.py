"""`make run-scaled` (bot/scaled.py): the processes, their ports and wiring, and
the shared stores every Rasa server reads from endpoints-scaled.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.utils.endpoints import read_endpoint_config

from bot.launcher import LOOPBACK
from bot.scaled import ENDPOINTS, Layout, parse, scaled_services, store_env

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "DATABASE_URL": "postgresql://prakerja:s%40cret@db.local:5433/prakerja",
    "REDIS_URL": "redis://:pw@cache.local:6380/3",
}


def test_the_default_layout_is_two_of_each_from_the_usual_ports() -> None:
    layout, model = parse([])
    assert layout == Layout(2, 2, 2, 8000, 5005, 5055, "prakerja")
    assert model == Path("models/prakerja.tar.gz")


def test_the_lock_prefix_is_one_rasa_accepts() -> None:
    assert parse(["--lock-prefix", "h5run2"])[0].lock_prefix == "h5run2"
    with pytest.raises(SystemExit):
        parse(["--lock-prefix", "h5_run"])


def test_scaled_mode_refuses_sqlite_and_a_missing_redis() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        store_env({"DATABASE_URL": "sqlite:///var/prakerja.db", "REDIS_URL":
                   "redis://127.0.0.1:6379/0"}, "p")  # fmt: skip
    with pytest.raises(ValueError, match="REDIS_URL"):
        store_env({"DATABASE_URL": ENV["DATABASE_URL"]}, "p")


def test_each_gateway_talks_to_a_rasa_server_and_each_rasa_to_an_action_server(
) -> None:  # fmt: skip
    layout = Layout(gateways=3, rasa=2, actions=1, gateway_port=18000,
                    rasa_port=15000, actions_port=15500)  # fmt: skip
    found = {s.name: s for s in scaled_services(Path("m.tar.gz"), Path("/v"),
                                                 layout, ENV)}  # fmt: skip
    assert list(found) == ["actions1", "rasa1", "rasa2", "gateway1", "gateway2",
                           "gateway3"]  # fmt: skip
    assert [found[f"gateway{i}"].env["RASA_URL"] for i in (1, 2, 3)] == [
        f"http://{LOOPBACK}:15000", f"http://{LOOPBACK}:15001",
        f"http://{LOOPBACK}:15000",
    ]  # fmt: skip
    assert {found[f"rasa{j}"].env["SCALED_ACTIONS_URL"] for j in (1, 2)} == {
        f"http://{LOOPBACK}:15500"
    }
    for j, port in ((1, "15000"), (2, "15001")):
        command = found[f"rasa{j}"].command
        assert command[command.index("--port") + 1] == port
        assert command[command.index("--interface") + 1] == LOOPBACK
        assert command[command.index("--endpoints") + 1] == ENDPOINTS
    assert found["actions1"].env["SANIC_HOST"] == LOOPBACK
    assert found["gateway3"].env["GATEWAY_PORT"] == "18002"


def test_every_rasa_server_shares_the_sql_tracker_store_and_redis_locks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rasa = next(s for s in scaled_services(Path("m"), Path("/v"), Layout(), ENV)
                if s.name == "rasa1")  # fmt: skip
    for name, value in rasa.env.items():
        monkeypatch.setenv(name, value)
    tracker = read_endpoint_config(str(ROOT / ENDPOINTS), "tracker_store")
    locks = read_endpoint_config(str(ROOT / ENDPOINTS), "lock_store")
    actions = read_endpoint_config(str(ROOT / ENDPOINTS), "action_endpoint")
    assert tracker is not None and locks is not None and actions is not None
    assert actions.url == "http://127.0.0.1:5055/webhook"
    assert tracker.kwargs["dialect"] == "postgresql"
    assert (tracker.url, str(tracker.kwargs["port"]), tracker.kwargs["db"]) == (
        "db.local", "5433", "prakerja")  # fmt: skip
    assert (tracker.kwargs["username"], tracker.kwargs["password"]) == (
        "prakerja", "s@cret")  # fmt: skip
    assert (locks.url, str(locks.kwargs["port"]), str(locks.kwargs["db"])) == (
        "cache.local", "6380", "3")  # fmt: skip
    assert locks.kwargs["password"] == "pw"
    assert locks.kwargs["key_prefix"] == "prakerja"
    assert locks.type == "redis"
    assert tracker.type == "bot.rasa_tracker_store.TurnSQLTrackerStore"
