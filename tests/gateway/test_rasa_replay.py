"""Rasa's gateway channel replays a turn repeated with the key of a complete turn.

Rasa's own agent runs the trained model (in-memory tracker and lock stores); the
action server is a small aiohttp server that numbers its status answers, so a turn
that runs again shows a new number where a replay repeats the first. The real
processes are in `tests/integration/test_turn_replay.py`.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import RedisLockStore
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_channel import GatewayInput, answer_turn
from bot.rasa_nlg import NLG_TYPE
from bot.rasa_replay import (
    COMPLETE,
    GatewayProcessor,
    install_replay,
    mark_complete,
    recorded_replies,
)
from bot.rasa_tracker_store import TurnSQLTrackerStore
from tests.conftest import MODEL, require
from tests.deploy.test_rasa_stores import redis_or_skip
from tests.postgres import postgres_database

STATUS = "/check_status"
"""Answered by a custom action (programme questions are answered in Rasa)."""
STATUS_ACTION = "action_registration_status"


@dataclass
class FakeActions:
    """What the fake action server did, and what it is told to do."""

    url: str = ""
    calls: list[str] = field(default_factory=list)
    fail_next: int = 0
    """How many status calls to answer with HTTP 500."""
    delay: float = 0.0

    def status_runs(self) -> int:
        """How many times the status action ran."""
        return self.calls.count(STATUS_ACTION)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    """The trained model in Rasa's own agent (loaded once: it takes seconds)."""
    model = str(require(MODEL, "run `make train` first"))
    yield Agent.load(model, generator=EndpointConfig(type=NLG_TYPE))


@pytest.fixture()
async def actions(agent: Agent) -> AsyncIterator[FakeActions]:
    """The action server, as the agent's action endpoint."""
    state = FakeActions()

    async def run(request: web.Request) -> web.Response:
        name = (await request.json())["next_action"]
        if name != STATUS_ACTION:
            return web.json_response({"events": [], "responses": []})
        await asyncio.sleep(state.delay)
        if state.fail_next > 0:
            state.fail_next -= 1
            return web.json_response({"error": "boom"}, status=500)
        state.calls.append(name)
        text = f"Jawaban nomor {state.status_runs()}"
        return web.json_response({"events": [], "responses": [{"text": text}]})

    app = web.Application()
    app.router.add_post("/webhook", run)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/webhook"
    agent.action_endpoint = EndpointConfig(state.url)
    assert agent.processor is not None
    agent.processor.action_endpoint = agent.action_endpoint
    yield state
    await runner.cleanup()


async def _post(
    agent: Agent, sender: str, text: str, key: str | None
) -> dict[str, Any]:
    """One request to the channel, as the blueprint makes it."""
    metadata = {"channel": "telegram"} | ({"idempotency_key": key} if key else {})
    message = UserMessage(
        text,
        CollectingOutputChannel(),
        sender,
        input_channel=GatewayInput.name(),
        metadata=metadata,
    )
    return await answer_turn(agent.handle_message, message, agent)


async def _keyed_turns(agent: Agent, sender: str, key: str) -> list[UserUttered]:
    """The tracker's UserUttered events that carry `key`."""
    tracker = await agent.tracker_store.retrieve(sender)
    assert tracker is not None
    return [
        event
        for event in tracker.events
        if isinstance(event, UserUttered)
        and (event.metadata or {}).get("idempotency_key") == key
    ]


def _texts(answer: dict[str, Any]) -> list[str]:
    return [reply.get("text", "") for reply in answer["replies"]]


def _sender() -> str:
    return uuid.uuid4().hex


async def test_a_repeated_complete_turn_is_replayed_not_run(
    agent: Agent, actions: FakeActions
) -> None:
    sender = _sender()
    first = await _post(agent, sender, STATUS, "101")
    again = await _post(agent, sender, STATUS, "101")
    assert _texts(first) == ["Jawaban nomor 1"], first
    assert again["replies"] == first["replies"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["complete"] is True
    assert actions.status_runs() == 1
    turns = await _keyed_turns(agent, sender, "101")
    assert len(turns) == 1
    assert turns[0].metadata[COMPLETE] is True


async def test_the_replay_repeats_buttons_and_the_next_key_runs(
    agent: Agent, actions: FakeActions
) -> None:
    sender = _sender()
    first = await _post(agent, sender, "halo", "201")
    assert first["replies"] and first["replies"][0].get("buttons"), first
    again = await _post(agent, sender, "halo", "201")
    assert again["replies"] == first["replies"]
    assert again["replayed"] is True
    status = await _post(agent, sender, STATUS, "202")
    assert (_texts(status), status["replayed"]) == (["Jawaban nomor 1"], False)
    # A late copy of an older turn (a paused gateway process) is replayed too,
    # with its own replies, and leaves the tracker as it was.
    late = await _post(agent, sender, "halo", "201")
    assert late["replies"] == first["replies"]
    assert len(await _keyed_turns(agent, sender, "201")) == 1
    assert actions.status_runs() == 1


async def test_a_turn_whose_action_failed_runs_again_whole(
    agent: Agent, actions: FakeActions
) -> None:
    sender = _sender()
    actions.fail_next = 1
    failed = await _post(agent, sender, STATUS, "301")
    assert (failed["complete"], failed["failed_actions"]) == (False, [STATUS_ACTION])
    retried = await _post(agent, sender, STATUS, "301")
    assert (retried["complete"], retried["replayed"]) == (True, False)
    assert _texts(retried) == ["Jawaban nomor 1"]
    again = await _post(agent, sender, STATUS, "301")
    assert (again["replies"], again["replayed"]) == (retried["replies"], True)
    turns = await _keyed_turns(agent, sender, "301")
    assert [COMPLETE in turn.metadata for turn in turns] == [True]
    assert actions.status_runs() == 1


async def test_a_failed_attempt_leaves_no_trace_in_the_tracker(
    agent: Agent, actions: FakeActions
) -> None:
    """The repeat of a turn whose action failed runs on the tracker as it was
    before the failed attempt: the same events as a turn that never failed."""
    clean, failing = _sender(), _sender()
    await _post(agent, clean, "halo", "401")
    await _post(agent, clean, STATUS, "402")
    await _post(agent, failing, "halo", "401")
    actions.fail_next = 1
    assert (await _post(agent, failing, STATUS, "402"))["complete"] is False
    assert (await _post(agent, failing, STATUS, "402"))["complete"] is True

    async def shape(sender: str) -> list[tuple[str, str | None]]:
        tracker = await agent.tracker_store.retrieve(sender)
        assert tracker is not None
        return [
            (type(event).__name__, getattr(event, "action_name", None))
            for event in tracker.events
        ]

    assert await shape(failing) == await shape(clean)


async def test_two_copies_at_once_run_the_turn_once(
    agent: Agent, actions: FakeActions
) -> None:
    sender = _sender()
    actions.delay = 0.3  # the second copy arrives while the first one runs
    one, two = await asyncio.gather(
        _post(agent, sender, STATUS, "401"), _post(agent, sender, STATUS, "401")
    )
    assert one["replies"] == two["replies"]
    assert sorted([one["replayed"], two["replayed"]]) == [False, True]
    assert actions.status_runs() == 1
    assert len(await _keyed_turns(agent, sender, "401")) == 1


async def test_messages_without_a_key_run_every_time(
    agent: Agent, actions: FakeActions
) -> None:
    sender = _sender()
    first = await _post(agent, sender, STATUS, None)
    again = await _post(agent, sender, STATUS, None)
    assert (_texts(first), _texts(again)) == (["Jawaban nomor 1"], ["Jawaban nomor 2"])
    tracker = await agent.tracker_store.retrieve(sender)
    assert tracker is not None
    assert not any(
        COMPLETE in (event.metadata or {})
        for event in tracker.events
        if isinstance(event, UserUttered)
    )


def _server(agent: Agent, tracker_db: str, redis: tuple[str, int]) -> Agent:
    """Another Rasa server: the same model, its own clients of the shared stores
    (PostgreSQL tracker store, Redis lock store), as in production."""
    parts = urlsplit(tracker_db)
    store = TurnSQLTrackerStore(
        agent.domain,
        dialect="postgresql",
        host=parts.hostname,
        port=parts.port,
        db=parts.path.lstrip("/"),
        username=parts.username,
        password=parts.password,
    )
    server = copy.copy(agent)
    server.processor = copy.copy(agent.processor)
    server.tracker_store = server.processor.tracker_store = store
    server.lock_store = server.processor.lock_store = RedisLockStore(*redis, db=1)
    return server


async def test_two_rasa_servers_sharing_the_stores_run_a_copy_once(
    agent: Agent, actions: FakeActions
) -> None:
    redis = redis_or_skip()
    sender = _sender()
    actions.delay = 0.3
    with postgres_database("rasa_replay") as url:
        one, two = _server(agent, url, redis), _server(agent, url, redis)
        try:
            first, second = await asyncio.gather(
                _post(one, sender, STATUS, "501"), _post(two, sender, STATUS, "501")
            )
            turns = await _keyed_turns(one, sender, "501")
        finally:
            for server in (one, two):
                assert isinstance(server.tracker_store, TurnSQLTrackerStore)
                server.tracker_store.engine.dispose()
    assert first["replies"] == second["replies"]
    assert sorted([first["replayed"], second["replayed"]]) == [False, True]
    assert actions.status_runs() == 1
    assert len(turns) == 1 and turns[0].metadata[COMPLETE] is True


def test_installing_twice_keeps_one_replaying_processor(agent: Agent) -> None:
    install_replay(agent)
    install_replay(agent)
    assert type(agent.processor) is GatewayProcessor


def _user(key: str | None, complete: bool = False) -> UserUttered:
    metadata: dict[str, Any] = {"idempotency_key": key} if key else {}
    if complete:
        metadata[COMPLETE] = True
    return UserUttered("x", metadata=metadata)


def test_recorded_replies_belong_to_the_latest_turn_with_the_key() -> None:
    events = [
        _user("1", complete=True),
        BotUttered("a"),
        BotUttered("b"),
        _user("2", complete=True),
        BotUttered("c"),
        _user(None),
        BotUttered("d"),
    ]
    assert [r["text"] for r in recorded_replies(events, "1") or []] == ["a", "b"]
    assert [r["text"] for r in recorded_replies(events, "2") or []] == ["c"]
    assert recorded_replies(events, "3") is None
    retried = [_user("1"), BotUttered("half"), _user("1")]  # failed, then running
    assert recorded_replies(retried, "1") is None
    assert mark_complete(retried, "1") is True
    assert retried[0].metadata.get(COMPLETE) is None
    assert recorded_replies(retried, "1") == []
    assert mark_complete(retried, "9") is False
