"""action_media_received acknowledges photos and shared contacts from the policy."""

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.media import ActionMediaReceived
from bot.policy.answers import media_text
from bot.policy.programme import load_policy


def tracker_with(entity: str, value: str) -> Tracker:
    latest: dict[str, Any] = {
        "intent": {"name": "inform", "confidence": 1.0},
        "entities": [{"entity": entity, "value": value}],
        "text": f'/inform{{"{entity}": "{value}"}}',
    }
    return Tracker("sender", {}, latest, [], False, None, {}, "action_listen")


@pytest.mark.parametrize(
    ("entity", "kind"),
    [("photo_file_id", "photo"), ("photo_url", "photo"), ("contact_phone", "contact")],
)
async def test_media_is_acknowledged(entity: str, kind: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionMediaReceived().run(dispatcher, tracker_with(entity, "x"), {})
    assert events == []
    assert [m["text"] for m in dispatcher.messages] == [media_text(kind, load_policy())]


def test_photo_text_names_the_policy_limits() -> None:
    policy = load_policy()
    text = media_text("photo", policy)
    assert str(policy.photo.max_mb) in text
