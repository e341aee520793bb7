"""Reading Rasa's answer: the gateway channel's completeness, REST's plain list."""

from __future__ import annotations

import asyncio

import pytest

from bot.gateway.rasa_client import (
    IncompleteTurnError,
    RasaClient,
    RasaRejectedError,
    RasaTurnError,
    parse_turn,
)
from tests.fakes.rasa import FakeRasa


def test_a_complete_turn_gives_its_replies() -> None:
    answer = {"replies": [{"text": "halo"}], "complete": True, "failed_actions": []}
    assert [r.text for r in parse_turn(answer)] == ["halo"]


def test_an_incomplete_turn_is_a_turn_error_naming_the_actions() -> None:
    answer = {
        "replies": [{"text": "sebagian"}],
        "complete": False,
        "failed_actions": ["action_submit_registration"],
    }
    with pytest.raises(IncompleteTurnError) as caught:
        parse_turn(answer)
    assert isinstance(caught.value, RasaTurnError)
    assert caught.value.failed_actions == ["action_submit_registration"]
    assert str(caught.value) == "actions failed: action_submit_registration"


def test_an_answer_without_completeness_is_not_trusted() -> None:
    with pytest.raises(IncompleteTurnError):
        parse_turn({"replies": []})


def test_rasas_rest_list_is_read_as_before() -> None:
    assert [r.text for r in parse_turn([{"text": "a"}, {"text": "b"}])] == ["a", "b"]
    with pytest.raises(RasaRejectedError):
        parse_turn("nonsense")


def test_reachable_tells_a_running_rasa_from_a_dead_one(rasa: FakeRasa) -> None:
    async def probe(url: str) -> bool:
        client = RasaClient(url)
        try:
            return await client.reachable(timeout=1.0)
        finally:
            await client.aclose()

    assert asyncio.run(probe(rasa.url)), "any HTTP answer: the server is up"
    rasa.ready_status = 503
    assert not asyncio.run(probe(rasa.url)), "its model still loading: not ready"
    rasa.ready_status = 200
    rasa.down()
    assert not asyncio.run(probe(rasa.url)), "connection refused: it is down"


async def test_idle_connections_are_closed_before_rasas_server_closes_them() -> None:
    """Sanic (Rasa's server) closes an idle connection after 5 s; the client
    must let it go first, or a turn can be sent on a connection being closed."""
    from sanic.config import DEFAULT_CONFIG

    client = RasaClient("http://127.0.0.1:9")
    try:
        connector = client._client.connector
        assert connector is not None
        assert connector._keepalive_timeout < DEFAULT_CONFIG["KEEP_ALIVE_TIMEOUT"]
    finally:
        await client.aclose()
