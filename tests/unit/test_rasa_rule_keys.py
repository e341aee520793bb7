"""RulePolicy's rules that cannot match left out first (`bot.rasa_rule_keys`):
the rules found, in Rasa's order, on every prediction of the trained model."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, USER
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import rasa_rule_keys
from tests.conftest import MODEL, require

RASAS = rasa_rule_keys._RASA_GET_POSSIBLE_KEYS
CONVERSATIONS = [
    ["halo", "gmn cara daftar", "makasih ya"],
    ["mau daftar", "iya setuju", "budi.santoso@gmail.com", "cek status"],
    ["cek status pendaftaran", "nik sy gk kebaca", "tolong hubungkan ke cs"],
    ["apa syarat prakerja", "mahasiswa boleh daftar?", "berapa insentifnya"],
    ["cek kelayakan saya", "25", "tidak", "STOP", "halo"],
]


@pytest.fixture(scope="module")
def asked() -> list[tuple[RulePolicy, dict[str, str], list[Any]]]:
    """Every (policy, lookup, states) RulePolicy asked about while the trained
    model talked through the conversations, with Rasa's own code."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(require(MODEL, "run `make train` first")))
    seen: list[tuple[RulePolicy, dict[str, str], list[Any]]] = []

    def recording(self: RulePolicy, lookup: dict[str, str], states: list[Any]) -> Any:
        seen.append((self, lookup, copy.deepcopy(states)))
        return RASAS(self, lookup, states)

    patch = pytest.MonkeyPatch()
    patch.setattr(RulePolicy, "_get_possible_keys", recording)
    loop = asyncio.new_event_loop()
    names = agent.domain.action_names_or_texts
    try:
        for number, texts in enumerate(CONVERSATIONS):
            tracker = DialogueStateTracker.from_events(
                f"rules{number}", [ActionExecuted("action_listen")], agent.domain.slots
            )
            for text in texts:
                message = UserMessage(text, sender_id=tracker.sender_id)
                parsed = loop.run_until_complete(
                    agent.processor.parse_message(message, tracker)
                )
                tracker.update(
                    UserUttered(text, parsed["intent"], parsed["entities"], parsed)
                )
                for _ in range(2):
                    prediction = agent.processor._predict_next_with_tracker(tracker)
                    tracker.update(
                        ActionExecuted(names[prediction.max_confidence_index])
                    )
                tracker.update(ActionExecuted("action_listen"))
    finally:
        loop.close()
        patch.undo()
    assert len(seen) > 40
    return seen


def test_the_rules_found_are_rasas_in_rasas_order(
    asked: list[tuple[RulePolicy, dict[str, str], list[Any]]],
) -> None:
    found_some = False
    for policy, lookup, states in asked:
        ours = list(rasa_rule_keys.get_possible_keys(policy, lookup, states))
        assert ours == list(RASAS(policy, lookup, states))
        found_some = found_some or bool(ours)
    assert found_some


def test_with_other_latest_actions_and_intents_too(
    asked: list[tuple[RulePolicy, dict[str, str], list[Any]]],
) -> None:
    policy, lookup, _ = asked[0]
    needs = rasa_rule_keys.rule_index(policy, lookup).by_needs  # (action, intent)
    actions: list[str | None] = [None]  # None: a conversation's first state
    actions += sorted({action for action, _ in needs if action} | {"action_listen"})
    intents = sorted({intent for _, intent in needs if intent})
    for (policy, lookup, states), action, intent in itertools.product(
        asked[::7], actions[:7], [None, *intents[:6]]
    ):
        changed = copy.deepcopy(states)
        if not changed:
            continue
        if action is None:
            changed[-1].pop(PREVIOUS_ACTION, None)
        else:
            changed[-1][PREVIOUS_ACTION] = {"action_name": action}
        if intent is None:
            changed[-1].pop(USER, None)
        else:
            changed[-1][USER] = {"intent": intent}
        assert list(rasa_rule_keys.get_possible_keys(policy, lookup, changed)) == (
            list(RASAS(policy, lookup, changed))
        )


def test_most_rules_are_left_out_before_rasas_check(
    asked: list[tuple[RulePolicy, dict[str, str], list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, lookup, states = next(
        (p, lookup, s) for p, lookup, s in asked if len(lookup) > 50 and s
    )
    checked: list[str] = []
    rasas_check = RulePolicy._is_rule_applicable

    def counted(self: RulePolicy, key: str, index: int, state: Any) -> bool:
        checked.append(key)
        return rasas_check(self, key, index, state)

    monkeypatch.setattr(RulePolicy, "_is_rule_applicable", counted)
    rasa_rule_keys.get_possible_keys(policy, lookup, states[-1:])
    assert len(checked) < len(lookup) / 2


def test_the_gateway_channel_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.rasa_channel import GatewayInput

    monkeypatch.setattr(RulePolicy, "_get_possible_keys", RASAS)
    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    assert RulePolicy._get_possible_keys is rasa_rule_keys.get_possible_keys


def test_a_conversation_start_rule_is_left_to_rasa(
    asked: list[tuple[RulePolicy, dict[str, str], list[Any]]],
) -> None:
    """Rasa accepts a rule without a previous action at a conversation's first
    state whatever its intent: such a rule is never left out first."""
    policy = asked[0][0]
    starts = [{USER: {"intent": "greet"}}]
    after_listen = [{PREVIOUS_ACTION: {"action_name": "action_listen"}, **starts[0]}]
    lookup = {
        json.dumps(starts): "utter_greet",
        json.dumps(after_listen): "utter_greet",
    }
    for latest in (
        {USER: {"intent": "goodbye"}},
        {USER: {"intent": "greet"}},
        {PREVIOUS_ACTION: {"action_name": "action_listen"}, USER: {"intent": "bye"}},
        {PREVIOUS_ACTION: {"action_name": "action_listen"}, **starts[0]},
    ):
        ours = rasa_rule_keys.get_possible_keys(policy, lookup, [latest])
        assert ours == RASAS(policy, lookup, [latest])
    assert rasa_rule_keys.get_possible_keys(policy, lookup, [{USER: {"intent": "x"}}])
