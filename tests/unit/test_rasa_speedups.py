"""Rasa's own overheads cut inside the Rasa server (`bot.rasa_graph_runner`,
`bot.rasa_slot_copy`, `bot.rasa_empty_domain`, ...) give exactly what Rasa's
own code gives."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_action_connections as kept
from bot import rasa_empty_domain
from bot import rasa_past_states as past_states_kept
from bot.rasa_graph_runner import RASA_RUN, run_in_order, run_order
from bot.rasa_slot_copy import copy_slot
from tests.conftest import MODEL, ROOT, require

CONVERSATIONS = [
    ["halo", "gmn cara daftar", "makasih ya"],
    ["mau daftar", "iya setuju", "budi.santoso@gmail.com"],
    ["cek status pendaftaran", "nik sy gk kebaca", "tolong hubungkan ke cs"],
    ["apa syarat prakerja", "mahasiswa boleh daftar?", "berapa insentifnya"],
    ["cek kelayakan saya", "25", "tidak", "STOP"],
]


def _all_subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_no_slot_class_copies_itself_otherwise() -> None:
    """The short copy is the generic one only for classes with no copy hooks."""
    hooks = {"__slots__", "__reduce__", "__reduce_ex__", "__getstate__",
             "__setstate__", "__copy__"}  # fmt: skip
    for cls in [Slot, *_all_subclasses(Slot)]:
        own = hooks & set(vars(cls)) - ({"__copy__"} if cls is Slot else set())
        assert not own, (cls, own)


def test_a_slot_copied_the_short_way_is_the_generic_copy() -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    assert domain.slots
    for slot in domain.slots:
        slot.value = "x" if slot.type_name in {"text", "any"} else slot.value
        generic, short = copy.copy(slot), copy_slot(slot)
        assert type(short) is type(generic) is type(slot)
        assert short.__dict__ == generic.__dict__ == slot.__dict__
        assert short is not slot
        short.value = None if slot.value is not None else "y"
        assert slot.value != short.value  # the copy has its own value


@pytest.fixture(scope="module")
def agent() -> Any:
    """The trained model (loaded once)."""
    from rasa.core.agent import Agent

    return Agent.load(str(require(MODEL, "run `make train` first")))


def _run_with(runner: Any, monkeypatch: pytest.MonkeyPatch, agent: Any,
              turns: list[str]) -> list[tuple[Any, ...]]:  # fmt: skip
    """Parse each turn and predict after it, with `runner` as the graph's run."""
    monkeypatch.setattr(DaskGraphRunner, "run", runner)
    processor = agent.processor
    loop = asyncio.new_event_loop()
    tracker = DialogueStateTracker.from_events(
        "speed", [ActionExecuted("action_listen")], agent.domain.slots
    )
    seen: list[tuple[Any, ...]] = []
    try:
        for text in turns:
            parsed = loop.run_until_complete(
                processor.parse_message(UserMessage(text, sender_id="speed"), tracker)
            )
            tracker.update(UserUttered(text, parsed["intent"], parsed["entities"],
                                       parsed))  # fmt: skip
            prediction = processor._predict_next_with_tracker(tracker)
            action = agent.domain.action_names_or_texts[prediction.max_confidence_index]
            seen.append((parsed, prediction.probabilities, prediction.policy_name,
                         prediction.events, action))  # fmt: skip
            tracker.update(ActionExecuted(action))
            tracker.update(ActionExecuted("action_listen"))
    finally:
        loop.close()
    return seen


@pytest.mark.parametrize("turns", CONVERSATIONS, ids=lambda t: t[0])
def test_the_graph_run_in_order_parses_and_predicts_as_dask(
    agent: Any, monkeypatch: pytest.MonkeyPatch, turns: list[str]
) -> None:
    by_dask = _run_with(RASA_RUN, monkeypatch, agent, turns)
    in_order = _run_with(run_in_order, monkeypatch, agent, turns)
    assert in_order == by_dask
    assert len(in_order) == len(turns)


def test_the_order_puts_every_node_after_what_it_needs(agent: Any) -> None:
    runner = agent.processor.graph_runner
    for target in (agent.processor.model_metadata.nlu_target,
                   agent.processor.model_metadata.core_target):  # fmt: skip
        plan = run_order(runner, [target])
        names = [name for name, _ in plan]
        assert names[-1] == target and len(names) == len(set(names))
        nodes = runner._graph_schema.nodes
        for index, (name, needs) in enumerate(plan):
            assert needs == tuple(nodes[name].needs.values())
            assert all(n not in nodes or names.index(n) < index for n in needs)


def test_an_input_named_like_a_node_is_refused_as_by_dask(agent: Any) -> None:
    runner = agent.processor.graph_runner
    target = agent.processor.model_metadata.core_target
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        run_in_order(runner, inputs={"x": target}, targets=[target])
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        RASA_RUN(runner, inputs={"x": target}, targets=[target])


async def _count_connections(
    endpoint_calls: int, restart_after: int | None = None
) -> tuple[list[Any], set[Any]]:
    """Answers and client ports of `endpoint_calls` POSTs made as Rasa makes
    its action calls, to a local server (restarted on the same port once)."""
    peers: set[Any] = set()

    async def answer(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport
                  else None)  # fmt: skip
        return web.json_response({"echo": (await request.json())["n"]})

    app = web.Application()
    app.router.add_post("/webhook", answer)

    async def serve(port: int) -> web.AppRunner:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = await serve(0)
    port = runner.addresses[0][1]
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    answers = []
    try:
        for n in range(endpoint_calls):
            if n == restart_after:
                await runner.cleanup()
                runner = await serve(port)
            answers.append(await endpoint.request(json={"n": n}, method="post"))
    finally:
        await kept.close_kept_sessions()
        await runner.cleanup()
    return answers, peers


def test_rasa_opens_a_connection_per_action_call_and_the_kept_session_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(EndpointConfig, "session", kept._RASA_SESSION)
    answers, peers = asyncio.run(_count_connections(5))
    assert answers == [{"echo": n} for n in range(5)] and len(peers) == 5
    kept.install()
    answers, peers = asyncio.run(_count_connections(5))
    assert answers == [{"echo": n} for n in range(5)] and len(peers) == 1


def test_a_kept_session_connects_anew_after_the_server_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(EndpointConfig, "session", kept.kept_session)
    answers, peers = asyncio.run(_count_connections(6, restart_after=3))
    assert answers == [{"echo": n} for n in range(6)] and len(peers) == 2


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(-9, 99), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
"""JSON-like values, with integers beyond 64 bits and keys that are integers."""


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_a_body_written_by_the_kept_session_reads_as_rasas(value: Any) -> None:
    """orjson's text (ujson's where orjson refuses) reads back as the standard
    library's, Rasa's writer: integers beyond 64 bits exact, keys as strings."""
    import json

    assert json.loads(kept.body_text(value)) == json.loads(json.dumps(value))


def test_a_body_beyond_orjson_is_written_by_ujson() -> None:
    import json

    import numpy as np

    big = {"id": 2**70, "score": 0.5}
    assert json.loads(kept.body_text(big)) == big  # exact: ujson's
    numbers = {"scores": [np.float64(0.5), np.int64(3)]}
    assert json.loads(kept.body_text(numbers)) == {"scores": [0.5, 3]}
    assert kept.body_text({1: "satu", "kota": "Bandung/Jawa Barat é"}) == (
        '{"1":"satu","kota":"Bandung/Jawa Barat é"}'
    )


def test_the_kept_session_writes_bodies_with_orjson() -> None:
    async def serializer() -> Any:
        session = kept._new_session(EndpointConfig("http://127.0.0.1:1/webhook"))
        try:
            return session._json_serialize
        finally:
            await session.close()

    assert asyncio.run(serializer()) is kept.body_text


@pytest.fixture
def rasas_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa's own past states and their debug text, restored after the test."""
    from rasa.core.policies.policy import Policy

    rasas = past_states_kept._RASA_PAST_STATES
    monkeypatch.setattr(DialogueStateTracker, "past_states", rasas)
    rasas_format = Policy.__dict__["format_tracker_states"]
    monkeypatch.setattr(RulePolicy, "format_tracker_states", rasas_format)


@pytest.mark.parametrize("turns", CONVERSATIONS, ids=lambda t: t[0])
def test_past_states_built_once_predict_as_rasas(
    agent: Any, monkeypatch: pytest.MonkeyPatch, turns: list[str], rasas_states: None
) -> None:
    by_rasa = _run_with(run_in_order, monkeypatch, agent, turns)
    past_states_kept.install()
    kept = _run_with(run_in_order, monkeypatch, agent, turns)
    assert kept == by_rasa and len(kept) == len(turns)


def test_kept_states_are_rasas_for_the_events_and_callers_cannot_change_them(
    agent: Any, rasas_states: None
) -> None:
    domain = agent.domain
    tracker = DialogueStateTracker.from_events(
        "kept",
        [ActionExecuted("action_listen"),
         UserUttered("mau daftar", {"name": "register", "confidence": 1.0}),
         ActionExecuted("utter_greet"), ActionExecuted("action_listen")],
        domain.slots,
    )  # fmt: skip

    def rasas() -> Any:
        return past_states_kept._RASA_PAST_STATES(tracker, domain, False, True)

    first = past_states_kept.past_states(tracker, domain, False, True)
    assert first == rasas()
    for _ in range(2):  # built, then kept: neither hands out what it keeps
        changed = past_states_kept.past_states(tracker, domain, False, True)
        changed[-1].clear()
        changed[0].get("prev_action", {}).clear()
        assert past_states_kept.past_states(tracker, domain, False, True) == rasas()
    tracker.update(
        UserUttered("cek status", {"name": "check_status", "confidence": 1.0})
    )
    longer = past_states_kept.past_states(tracker, domain, False, True)
    assert longer == rasas() and longer != first
    assert past_states_kept.past_states(tracker, domain, False, False) == (
        past_states_kept._RASA_PAST_STATES(tracker, domain, False, False)
    )


def test_states_are_formatted_only_for_a_debug_log() -> None:
    import logging

    from rasa.core.policies.policy import Policy

    states = [
        {"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}
    ]
    log = logging.getLogger("rasa.core.policies.rule_policy")
    level = log.level
    try:
        log.setLevel(logging.INFO)
        assert past_states_kept.format_tracker_states(states) == ""
        log.setLevel(logging.DEBUG)
        assert past_states_kept.format_tracker_states(states) == (
            Policy.format_tracker_states(states)
        )
    finally:
        log.setLevel(level)


def test_the_gateway_channel_builds_past_states_once(rasas_states: None) -> None:
    from bot.rasa_channel import GatewayInput

    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    assert DialogueStateTracker.past_states is past_states_kept.past_states
    assert RulePolicy.format_tracker_states is past_states_kept.format_tracker_states


@pytest.mark.parametrize(
    ("build", "empty"),
    [
        (lambda: Domain.load(str(ROOT / "domain.yml")), False),
        (Domain.empty, True),
        (lambda: Domain.from_dict({}), True),
        (lambda: Domain.from_dict({"intents": ["greet"]}), False),
        (lambda: Domain.from_dict({"responses": {"utter_x": [{"text": "x"}]}}), False),
    ],
    ids=["project", "empty", "from {}", "one intent", "one response"],
)
def test_a_domain_is_empty_as_rasa_says(build: Any, empty: bool) -> None:
    domain = build()
    assert rasa_empty_domain._RASA_IS_EMPTY(domain) is empty
    assert rasa_empty_domain.is_empty(domain) is empty


def test_the_gateway_channel_compares_with_one_empty_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.rasa_channel import GatewayInput

    monkeypatch.setattr(Domain, "is_empty", rasa_empty_domain._RASA_IS_EMPTY)
    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    assert Domain.is_empty is rasa_empty_domain.is_empty
