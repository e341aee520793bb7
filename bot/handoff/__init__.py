"""Handoff to call-center agents: tickets, the queue, hours and what the person is
told.

Tables are in `models` (migrated by Alembic, revision 0300); the functions in
`tickets` take a SQLAlchemy `Session`, return frozen dataclasses (`records`) and
never commit. While a conversation has an active ticket the gateway's worker
keeps the person's messages away from Rasa (`commands.is_cancel_command` lets
them go back); agents' replies, queue updates and the end of the handoff reach
the conversation as internal events (`events`), and `monitor.HandoffMonitor`
tells people waiting when their expected wait grows.
"""

from bot.handoff.commands import CANCEL_PAYLOAD, CANCEL_WORDS, is_cancel_command
from bot.handoff.errors import (
    ConversationNotFound,
    HandoffError,
    TicketClosed,
    TicketNotFound,
    TicketTaken,
)
from bot.handoff.events import agent_reply_key, queue_update_key, resolved_key
from bot.handoff.hours import WIB, AgentHours, in_wib
from bot.handoff.models import (
    ACTIVE_STATUSES,
    REASONS,
    TICKET_ASSIGNED,
    TICKET_CANCELLED,
    TICKET_OPEN,
    TICKET_RESOLVED,
    TICKET_STATUSES,
)
from bot.handoff.records import NoteInfo, QueuedTicket, QueueStats, TicketInfo, Turn
from bot.handoff.texts import (
    agents_back_text,
    cancelled_text,
    out_of_hours_text,
    queued_text,
    wait_grew_text,
)
from bot.handoff.tickets import (
    DEFAULT_HANDLING,
    AgentsOnline,
    active_ticket,
    add_note,
    assign,
    body_text,
    cancel,
    claim,
    conversation_for_pseudonym,
    expected_wait,
    get_ticket,
    mean_handling_time,
    notes_of,
    notify_ticket,
    open_queue,
    open_ticket,
    open_tickets,
    queue_position,
    queue_stats,
    recent_agents,
    record_reply,
    record_wait_told,
    resolve,
    transcript,
    update_wait_told,
)
from bot.messages.events import AGENT_REPLY, HANDOFF_RESOLVED, QUEUE_UPDATE

__all__ = [
    "ACTIVE_STATUSES",
    "AGENT_REPLY",
    "cancelled_text",
    "CANCEL_PAYLOAD",
    "CANCEL_WORDS",
    "DEFAULT_HANDLING",
    "HANDOFF_RESOLVED",
    "QUEUE_UPDATE",
    "REASONS",
    "TICKET_ASSIGNED",
    "TICKET_CANCELLED",
    "TICKET_OPEN",
    "TICKET_RESOLVED",
    "TICKET_STATUSES",
    "WIB",
    "AgentHours",
    "AgentsOnline",
    "ConversationNotFound",
    "HandoffError",
    "NoteInfo",
    "QueueStats",
    "QueuedTicket",
    "TicketClosed",
    "TicketInfo",
    "TicketNotFound",
    "TicketTaken",
    "Turn",
    "active_ticket",
    "add_note",
    "agent_reply_key",
    "assign",
    "body_text",
    "cancel",
    "claim",
    "conversation_for_pseudonym",
    "expected_wait",
    "get_ticket",
    "in_wib",
    "is_cancel_command",
    "mean_handling_time",
    "notes_of",
    "notify_ticket",
    "open_queue",
    "open_ticket",
    "open_tickets",
    "agents_back_text",
    "out_of_hours_text",
    "queue_position",
    "queue_stats",
    "queue_update_key",
    "queued_text",
    "recent_agents",
    "record_reply",
    "record_wait_told",
    "resolve",
    "resolved_key",
    "transcript",
    "update_wait_told",
    "wait_grew_text",
]
