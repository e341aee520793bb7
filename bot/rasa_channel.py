"""Rasa's input channel for the gateway: the replies, whether the turn completed,
and a repeated turn replayed instead of run again.

Rasa 3.6 hides a failed custom action from its REST channel. `RemoteAction.run`
turns every failure of the action server (connection refused, the connection
dropped mid-request, a timeout, HTTP 500 or 404) into an exception;
`MessageProcessor._run_action` catches it, logs it, records the action on the
tracker as if it ran (with none of its events) and goes on predicting, and
`ActionExtractSlots` only logs a failed custom slot mapping. The REST channel then
answers 200 with whatever was said before, so the gateway would mark the message
done and the person would get half an answer or nothing.

This channel (`POST /webhooks/gateway/webhook`, configured in credentials.yml)
takes the same request as Rasa's REST channel and answers
`{"replies": [...], "complete": bool, "failed_actions": [...], "replayed": bool}`.
It learns of the
failures where every call to the action server passes: the processor's action
endpoint (`EndpointConfig.request`, used by custom actions, form validation and
custom slot mappings) is replaced once by `ReportingEndpoint`, which notes each
failed call in a context variable that belongs to the turn's task. A refusal by a
form validator (HTTP 400, `ActionExecutionRejection`) is Rasa's normal flow, not
a failure. The failed turn stays in the tracker as Rasa recorded it (the action
without its events); the gateway retries the whole turn. Undoing it with Rasa's
`UserUtteranceReverted` was tried and rejected: Rasa 3.6 then answers the
repeated message with `action_listen` at once, without predicting.

Why here, by the numbers (measured on the 2-core development machine, shared):
the note costs a context-variable set and reset per turn, 0.4 microseconds
(timeit), and nothing on the wire; a whole FAQ turn through Rasa takes about
250 ms either way. The alternatives cost a round trip per turn: the gateway
reading the tracker after each turn (`GET /conversations/{id}/tracker` took
70-80 ms and 147 kB for a 60-turn conversation, growing with it, and a failed
action looks there exactly like one that returned no events), or the action
server reporting each action to a shared store (a write per action, and the
gateway still would not know which actions Rasa meant to run).

A message whose `idempotency_key` already had a complete turn (the gateway sends
it again after a crash) is answered with that turn's replies and not run again
(`"replayed": true`); a turn that did not complete runs again whole. How, and
why there: `bot.rasa_replay`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    UserMessage,
)
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.gc_freeze import freeze_after_start
from bot.http_writes import install as install_headers_with_body
from bot.rasa_action_connections import close_kept_sessions
from bot.rasa_action_connections import install as install_kept_connections
from bot.rasa_answer_check import install as install_answer_check
from bot.rasa_applied_events import install as install_applied_events
from bot.rasa_count_vectors import install as install_count_vectors
from bot.rasa_debug_copies import install as install_debug_copies
from bot.rasa_empty_domain import install as install_empty_domain
from bot.rasa_graph_runner import install as install_graph_runner
from bot.rasa_nlg import NLG_TYPE, ProgrammeAnswers
from bot.rasa_past_states import install as install_past_states
from bot.rasa_replay import (
    KeyedTurn,
    TurnAlreadyCompleted,
    idempotency_key,
    install_replay,
    keyed_turn,
)
from bot.rasa_rule_keys import install as install_rule_keys
from bot.rasa_session_resume import install as install_session_resume
from bot.rasa_slot_copy import install as install_slot_copy

log = logging.getLogger(__name__)

REJECTED_STATUS = 400
"""The action server's answer when a form validator rejects the form's run."""

_failures: ContextVar[list[str] | None] = ContextVar(
    "prakerja_turn_failures", default=None
)
"""The actions whose call failed in the current turn (None outside a turn)."""


def note_failure(action: str) -> None:
    """Record that a call to the action server failed during the current turn."""
    failures = _failures.get()
    if failures is not None:
        failures.append(action)


def _action_name(kwargs: dict[str, Any]) -> str:
    body = kwargs.get("json")
    name = body.get("next_action") if isinstance(body, dict) else None
    return str(name) if name else "unknown"


class ReportingEndpoint(EndpointConfig):
    """The action endpoint that notes each failed call in the current turn."""

    @classmethod
    def wrapping(cls, endpoint: EndpointConfig) -> ReportingEndpoint:
        """A copy of `endpoint` (same URL, token, headers...) that reports."""
        reporting = cls.__new__(cls)
        reporting.__dict__.update(endpoint.__dict__)
        return reporting

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        """Call the action server; note the failure before re-raising it."""
        try:
            return await super().request(*args, **kwargs)
        except ClientResponseError as exc:
            if exc.status != REJECTED_STATUS:
                note_failure(_action_name(kwargs))
            raise
        except BaseException:  # refused, dropped, timed out, cancelled
            note_failure(_action_name(kwargs))
            raise


WRONG_GENERATOR = f"Rasa's endpoints file must set nlg: type: {NLG_TYPE}"


def unready_reason(agent: Any) -> str | None:
    """Why this Rasa server cannot answer the gateway yet, or None when it can:
    its model is loaded and it renders the programme answers."""
    processor = getattr(agent, "processor", None)
    if processor is None:
        return "no model loaded"
    if not isinstance(getattr(processor, "nlg", None), ProgrammeAnswers):
        return WRONG_GENERATOR
    return None


def require_programme_answers(agent: Any) -> None:
    """Refuse to answer when Rasa runs without the assistant's response
    generator (`bot.rasa_nlg`): programme questions would get the domain's
    placeholder. The endpoints file names it (`nlg: type: ...`)."""
    if unready_reason(agent) == WRONG_GENERATOR:
        raise RuntimeError(WRONG_GENERATOR)


async def ready(request: Request) -> HTTPResponse:
    """Readiness (`GET /webhooks/gateway/`): 503 and the reason until this
    server can answer the gateway."""
    reason = unready_reason(getattr(request.app.ctx, "agent", None))
    if reason is not None:
        return response.json({"status": "unready", "reason": reason}, 503)
    return response.json({"status": "ok"})


async def report_unready(app: Any, *_: Any) -> None:
    """Say at start, as an error, what keeps this server from answering (the
    readiness route says it too, `GET /webhooks/gateway/`)."""
    reason = unready_reason(getattr(app.ctx, "agent", None))
    if reason is not None:
        log.error("Rasa cannot answer the gateway: %s", reason)


def install_reporting(agent: Any) -> None:
    """Make the agent's processor report failed action calls (idempotent; a
    model loaded later gets a new processor, which is wrapped on its first turn)."""
    processor: Any = getattr(agent, "processor", None)
    endpoint = getattr(processor, "action_endpoint", None)
    if isinstance(endpoint, EndpointConfig) and not isinstance(
        endpoint, ReportingEndpoint
    ):
        processor.action_endpoint = ReportingEndpoint.wrapping(endpoint)


@dataclass
class TurnOutcome:
    """How a turn went: the actions that failed, and whether it was replayed."""

    failed: list[str]
    replayed: bool = False


async def run_turn(
    on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage
) -> TurnOutcome:
    """Handle one message: the actions whose calls failed during it, or, for a
    key whose turn completed already, its replies sent again (`bot.rasa_replay`)."""
    failures: list[str] = []
    key = idempotency_key(message.metadata)
    token = _failures.set(failures)
    try:
        if key is None:
            await on_new_message(message)
        else:
            with keyed_turn(KeyedTurn(message.sender_id, key, failures)):
                await on_new_message(message)
    except TurnAlreadyCompleted as done:
        for reply in done.replies:
            await message.output_channel.send_response(message.sender_id, reply)
        log.info("turn %s replayed: it completed before", done.key)
        return TurnOutcome([], replayed=True)
    finally:
        _failures.reset(token)
    return TurnOutcome(failures)


def turn_answer(
    replies: list[dict[str, Any]], failed: list[str], replayed: bool = False
) -> dict[str, Any]:
    """The webhook's answer: the replies, whether every action ran, and whether
    they are a complete turn's replies sent again (`bot.rasa_replay`)."""
    return {
        "replies": replies,
        "complete": not failed,
        "failed_actions": failed,
        "replayed": replayed,
    }


async def answer_turn(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    message: UserMessage,
    agent: Any = None,
) -> dict[str, Any]:
    """Handle one message for the gateway; the webhook's answer.

    `message.output_channel` must be a `CollectingOutputChannel`; `agent` is
    Rasa's agent (`app.ctx.agent`), whose processor is made to report failed
    action calls and to replay complete turns."""
    require_programme_answers(agent)
    install_reporting(agent)
    install_replay(agent)
    collector = message.output_channel
    if not isinstance(collector, CollectingOutputChannel):
        raise TypeError("the gateway's turns are collected")
    outcome = await run_turn(on_new_message, message)
    if outcome.failed:
        log.warning("turn incomplete: failed actions %s", ", ".join(outcome.failed))
    return turn_answer(collector.messages, outcome.failed, outcome.replayed)


class GatewayInput(InputChannel):
    """Rasa's REST channel plus the turn's outcome, for the gateway."""

    @classmethod
    def name(cls) -> str:
        """The channel's name: its URL is /webhooks/gateway/webhook."""
        return "gateway"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """The webhook: one turn per request, replies and completeness; its
        readiness (`GET /webhooks/gateway/`: 503 and the reason until the model
        is loaded and the programme answers are rendered here). Also
        cuts Rasa's own overheads for every channel of this server: action
        answers checked by a validator built once (`bot.rasa_answer_check`),
        the model's graph run in a cached order (`bot.rasa_graph_runner`),
        slots copied the short way (`bot.rasa_slot_copy`), connections to the
        action server kept open (`bot.rasa_action_connections`), a tracker's
        past states built once per events (`bot.rasa_past_states`), applied
        events folded on from the last call (`bot.rasa_applied_events`),
        count-vector features with each token counted once
        (`bot.rasa_count_vectors`), deep copies
        for debug log lines made only when logged (`bot.rasa_debug_copies`),
        the empty domain built once (`bot.rasa_empty_domain`), rules that
        cannot match left out before RulePolicy checks them
        (`bot.rasa_rule_keys`), requests to the action server sent with their
        headers and body in one write (`bot.http_writes`), and the started
        server's objects (the model's included) left out of garbage
        collections (`bot.gc_freeze`). And a change to Rasa's behaviour: a
        form left open when a session expired is open again in the next
        (`bot.rasa_session_resume`)."""
        install_answer_check()
        install_graph_runner()
        install_slot_copy()
        install_kept_connections()
        install_past_states()
        install_applied_events()
        install_count_vectors()
        install_debug_copies()
        install_empty_domain()
        install_rule_keys()
        install_session_resume()
        install_headers_with_body()
        hook = Blueprint("prakerja_gateway_webhook", __name__)

        # the model is loaded before the server starts (Rasa's own listener)
        hook.listener("after_server_start")(freeze_after_start)

        @hook.listener("after_server_stop")
        async def close_connections(*_: Any) -> None:
            await close_kept_sessions()

        hook.listener("after_server_start")(report_unready)

        hook.route("/", methods=["GET"])(ready)

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            message = UserMessage(
                body.get("message"),
                CollectingOutputChannel(),
                body.get("sender"),
                input_channel=self.name(),
                metadata=body.get("metadata"),
            )
            agent = getattr(request.app.ctx, "agent", None)
            return response.json(await answer_turn(on_new_message, message, agent))

        return hook
