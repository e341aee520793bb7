"""Rasa's gateway channel notices an action server call that failed in a turn.

The agent here is a stand-in that does what Rasa's processor does with a failed
call (it catches the error and goes on); the action server is a real aiohttp
server, reached through Rasa's own `EndpointConfig`. The integration test
`tests/integration/test_action_failure.py` runs the real Rasa.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_channel import (
    ReportingEndpoint,
    install_reporting,
    run_turn,
    turn_answer,
)


async def _action(request: web.Request) -> web.Response:
    body = await request.json()
    name = body["next_action"]
    if name == "action_crash":
        return web.json_response({"error": "boom"}, status=500)
    if name == "validate_form":  # a validator rejecting the form's run
        return web.json_response({"error": "no", "action_name": name}, status=400)
    return web.json_response({"events": [], "responses": []})


@pytest.fixture()
async def action_url() -> AsyncIterator[str]:
    """A small action server: action_crash fails, validate_form rejects."""
    app = web.Application()
    app.router.add_post("/webhook", _action)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/webhook"
    await runner.cleanup()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhook"


class FakeProcessor:
    """Calls the action server as Rasa's processor does: errors are swallowed."""

    def __init__(self, endpoint: EndpointConfig, actions: list[str]) -> None:
        self.action_endpoint = endpoint
        self.actions = actions

    async def handle_message(self, message: UserMessage) -> None:
        """Run each action; utter its name when it ran."""
        for name in self.actions:
            try:
                await self.action_endpoint.request(
                    json={"next_action": name}, method="post", timeout=5
                )
            except Exception:  # noqa: S112 - what Rasa does
                continue
            await message.output_channel.send_text_message("me", name)


class FakeAgent:
    """An agent with a processor (as `request.app.ctx.agent` in Rasa)."""

    def __init__(self, processor: FakeProcessor) -> None:
        self.processor = processor


async def _turn(url: str, actions: list[str]) -> dict[str, Any]:
    agent = FakeAgent(FakeProcessor(EndpointConfig(url, token="t"), actions))
    install_reporting(agent)
    install_reporting(agent)  # idempotent
    endpoint = agent.processor.action_endpoint
    assert isinstance(endpoint, ReportingEndpoint)
    assert (endpoint.url, endpoint.token) == (url, "t")
    collector = CollectingOutputChannel()
    message = UserMessage("halo", collector, "someone")
    outcome = await run_turn(agent.processor.handle_message, message)
    return turn_answer(collector.messages, outcome.failed)


async def test_a_turn_whose_actions_ran_is_complete(action_url: str) -> None:
    answer = await _turn(action_url, ["action_one", "validate_form", "action_two"])
    assert answer["complete"] is True
    assert answer["failed_actions"] == []
    assert [r["text"] for r in answer["replies"]] == ["action_one", "action_two"]


async def test_an_action_answering_500_makes_the_turn_incomplete(
    action_url: str,
) -> None:
    answer = await _turn(action_url, ["action_one", "action_crash"])
    assert answer["complete"] is False
    assert answer["failed_actions"] == ["action_crash"]
    assert [r["text"] for r in answer["replies"]] == ["action_one"]


async def test_an_unreachable_action_server_makes_the_turn_incomplete() -> None:
    answer = await _turn(_closed_port_url(), ["action_one"])
    assert (answer["complete"], answer["failed_actions"]) == (False, ["action_one"])


async def test_failures_outside_a_turn_are_not_kept() -> None:
    endpoint = ReportingEndpoint.wrapping(EndpointConfig(_closed_port_url()))
    with pytest.raises(Exception):  # noqa: B017 - aiohttp's connection error
        await endpoint.request(json={"next_action": "a"}, method="post", timeout=5)
    agent = FakeAgent(FakeProcessor(endpoint, []))
    collector = CollectingOutputChannel()
    outcome = await run_turn(
        agent.processor.handle_message, UserMessage("x", collector, "s")
    )
    assert outcome.failed == []
