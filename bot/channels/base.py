"""The contract every channel follows (Telegram, SMS, simulator).

Inbound: a provider webhook is authenticated and parsed into an `InboundMessage`,
which the gateway stores (deduplicated on `(channel, provider_id)`) before it
acknowledges the provider. Outbound: the assistant's replies (`Reply`) are rendered
by the channel into JSON-serialisable bodies, stored in the outbox, and later sent
by the channel's `Sender`, which reports a `SendResult`. A send whose outcome is
unknown (`SendResult.unknown`: the request may have reached the provider) is
looked up with the sender's `lookup` before it is repeated, when the provider has
a way to list what it sent (`Lookup`); otherwise it is not repeated. Right
before a provider request's bytes are written (its connection obtained, after
pacing) the senders' HTTP transports await `request_may_leave`, which lets the
outbox mark the request as leaving (`bot.gateway.send_marks`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

_LEADING_COMMAND = re.compile(r"^[\s/]+")

TELEGRAM = "telegram"
SMS = "sms"
CHANNELS = (TELEGRAM, SMS)


@dataclass(frozen=True)
class InboundMessage:
    """One message from a person, as the gateway stores it.

    `address` is where replies go (Telegram chat id, or E.164 phone number); it is
    personal data: store it, never log it. `payload` is set when the person chose a
    button the assistant sent (Telegram callback data, or an SMS menu number
    already mapped back by the SMS channel). `event` carries non-text input, e.g.
    {"type": "photo", "file_id": "...", "width": 1280, "height": 960} or
    {"type": "contact", "phone": "+62812..."}. `chat_message_id` is Telegram's
    id of the person's message in the chat (of a button's message, for a button
    press): replies sent later get higher ids (`bot.gateway.chat_anchor`).
    """

    channel: str
    provider_id: str
    address: str
    text: str = ""
    payload: str | None = None
    event: dict[str, Any] | None = None
    simulated: bool = False
    user_name: str | None = None
    chat_message_id: int | None = None


@dataclass(frozen=True)
class Button:
    """A choice offered to the person; `payload` is what choosing it sends back."""

    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """One message of the assistant, before channel rendering."""

    text: str
    buttons: tuple[Button, ...] = ()
    image_url: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What happened when a rendered body was handed to the provider.

    ok: accepted by the provider. retry_after: seconds the provider asked us to
    wait (rate limit), or None. permanent: retrying cannot help (blocked bot,
    invalid number). provider_message_id: the provider's id, for status callbacks.
    unknown: the request may have reached the provider but no answer came (a
    timeout while waiting for the response, a connection dropped mid-response):
    sending again could deliver it twice. A failure that is not `unknown` means
    the provider provably did not take the message (connection refused, an error
    answer).
    """

    ok: bool
    provider_message_id: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    error: str | None = None
    unknown: bool = False


@dataclass(frozen=True)
class LookupResult:
    """What a provider holds of a send whose outcome was unknown.

    `ids`: provider ids of messages to this address with this body, sent since
    the attempt started (oldest first; empty: the provider provably has none).
    `error`: the lookup itself failed (try again later), else None.
    `undecidable`: the provider cannot tell (e.g. Telegram, without a known
    message to count from): the send is given up as unknown, not repeated.
    """

    ids: tuple[str, ...] = ()
    error: str | None = None
    undecidable: bool = False


class Sender(Protocol):
    """Delivers rendered bodies of one channel to its provider."""

    channel: str

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Send one rendered body to an address."""
        ...


REQUEST_IN_FLIGHT = 30.0
"""Seconds after a request left during which it may still land at its provider
(three times the senders' HTTP timeout): a provider's "no such message" counts
only after that."""

REQUEST_MARK: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "request_mark", default=None
)
"""What the send in this task awaits right before its provider request (set by
the outbox around `Sender.send`; None: nothing)."""


async def request_may_leave() -> None:
    """Awaited by the providers' HTTP transports once a request's connection is
    obtained, right before its bytes are written (`bot.channels.request_tracing`):
    the outbox's mark (`REQUEST_MARK`) runs here, and may raise
    `RequestNotMarkedError` (the request must not be made)."""
    mark = REQUEST_MARK.get()
    if mark is not None:
        await mark()


class Lookup(Protocol):
    """A sender that can ask its provider what it sent (Twilio's message list).

    `request_in_flight`: seconds after a request left during which it may
    still land at the provider (`REQUEST_IN_FLIGHT` for a provider over the
    network; 0 for one in this process, the simulator's): until then the
    outbox takes no fresh message found as proof that none came, and looks
    again."""

    request_in_flight: float

    async def lookup(
        self,
        address: str,
        body: dict[str, Any],
        since: datetime,
        after: str | None = None,
    ) -> LookupResult:
        """Messages the provider holds to `address` with `body`, sent at or after
        `since` (UTC, naive), oldest first; `after`: the provider id of the last
        message known to have reached `address` before this one, if any."""
        ...


@dataclass
class RenderedReplies:
    """Bodies to store in the outbox, plus conversation state the channel keeps.

    `state` is the channel's per-conversation state after these replies (for SMS:
    the numbered menu's payloads and the pages still to send); the gateway stores
    it on the conversation and passes it back to `parse`/`render` next time.
    """

    bodies: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Interpretation:
    """What the gateway does with one stored inbound message.

    rasa_text: the text to hand to Rasa (already safe: a leading "/" is only kept
    for payloads of buttons the assistant sent), or None to not call Rasa.
    rasa_metadata: extra data for Rasa's tracker (e.g. the photo/contact event).
    local_bodies: rendered bodies to send at once without Rasa (SMS next page,
    opt-out confirmation, Telegram callback answer), in order, before any reply.
    state: the conversation's channel state after this message.
    opted_out: True/False when this message changes the opt-out, else None.
    """

    rasa_text: str | None
    rasa_metadata: dict[str, Any] = field(default_factory=dict)
    local_bodies: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    opted_out: bool | None = None


class Channel(Protocol):
    """A channel as the gateway uses it: interpret inbound, render outbound."""

    name: str

    def interpret(
        self, message: InboundMessage, state: dict[str, Any], opted_out: bool
    ) -> Interpretation:
        """Decide what an inbound message means, given the conversation state."""
        ...

    def render(self, replies: list[Reply], state: dict[str, Any]) -> RenderedReplies:
        """Turn the assistant's replies into stored bodies and the new state."""
        ...


def neutralise_command(text: str, allowed_payloads: list[str]) -> str:
    """Stop users steering Rasa: a leading "/" is dropped unless it is a payload
    of a button the assistant itself sent to this conversation."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped in allowed_payloads:
        return stripped
    # Drop every leading slash and space (Unicode spaces too), so that
    # "/ /intent" or "/\u3000/intent" cannot leave a new leading "/".
    return _LEADING_COMMAND.sub("", stripped)


class Unauthorized(Exception):  # noqa: N818 (reads as an HTTP status)
    """A webhook request failed authentication (bad signature or secret token)."""
