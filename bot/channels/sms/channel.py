"""The SMS channel as the gateway uses it (`bot.channels.base.Channel`)."""

from __future__ import annotations

from typing import Any

from bot.channels.base import (
    SMS,
    InboundMessage,
    Interpretation,
    RenderedReplies,
    Reply,
)
from bot.channels.sms.interpret import interpret_sms
from bot.channels.sms.render import render_sms


class SmsChannel:
    """Feature-phone SMS: GSM-7 bodies, numbered menus, paging, STOP/MULAI."""

    name = SMS

    def interpret(
        self, message: InboundMessage, state: dict[str, Any], opted_out: bool
    ) -> Interpretation:
        """Opt-out keywords, next page, menu numbers, or text for Rasa."""
        return interpret_sms(message, state, opted_out)

    def render(self, replies: list[Reply], state: dict[str, Any]) -> RenderedReplies:
        """GSM-7 bodies of at most two segments; menu and pages in the state."""
        bodies, new_state = render_sms(replies, state)
        return RenderedReplies(bodies=bodies, state=new_state)
