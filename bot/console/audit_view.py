"""The supervisor's audit log as a page: filters read from the query string
(event, agent, ticket, WIB dates from/to) and server-side paging, so a plain
GET form and plain links do everything, without JavaScript.

A value that does not parse is ignored (and the page says so) rather than
refused: a supervisor with a typo still sees the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from bot.console import audit
from bot.console.labels import AUDIT_ACTIONS, WIB_OFFSET

PAGE_SIZE = 50
PATH = "/console/supervisor"
ANCHOR = "#audit"
FIELDS = ("event", "agent", "ticket", "from", "to")
MAX_ID_DIGITS = 9


@dataclass(frozen=True)
class AuditLog:
    """One page of the filtered log, with what the filter form shows."""

    events: list[audit.AuditRecord]
    form: dict[str, str]
    invalid: bool
    total: int
    page: int
    pages: int
    previous: str | None
    next: str | None


def _number(value: str) -> int | None:
    if value.isdigit() and len(value) <= MAX_ID_DIGITS:
        return int(value)
    return None


def _day(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _wib_midnight(day: date) -> datetime:
    """00:00 WIB of `day`, as naive UTC."""
    return datetime.combine(day, time()) - WIB_OFFSET


def parse(params: Mapping[str, str]) -> tuple[audit.AuditQuery, dict[str, str], bool]:
    """The query, the form's values (the valid ones), whether any was invalid."""
    values = {name: params.get(name, "").strip() for name in FIELDS}
    action = values["event"] if values["event"] in AUDIT_ACTIONS else None
    since_day, until_day = _day(values["from"]), _day(values["to"])
    kept: dict[str, object] = {
        "event": action,
        "agent": _number(values["agent"]),
        "ticket": _number(values["ticket"]),
        "from": since_day,
        "to": until_day,
    }
    form = {name: str(value) for name, value in kept.items() if value is not None}
    invalid = any(values[name] and kept[name] is None for name in FIELDS)
    query = audit.AuditQuery(
        action=action,
        agent_id=_number(values["agent"]),
        ticket_id=_number(values["ticket"]),
        since=_wib_midnight(since_day) if since_day else None,
        until=_wib_midnight(until_day + timedelta(days=1)) if until_day else None,
    )
    return query, form, invalid


def link(form: Mapping[str, str], page: int) -> str:
    """The page's URL for these filters and this page number."""
    params = [(name, form[name]) for name in FIELDS if form.get(name)]
    if page > 1:
        params.append(("page", str(page)))
    query = urlencode(params)
    return PATH + (f"?{query}" if query else "") + ANCHOR


def audit_log(session: Session, params: Mapping[str, str]) -> AuditLog:
    """The page of the log the query string asks for (the last page at most)."""
    query, form, invalid = parse(params)
    raw_page = params.get("page", "").strip() or "1"
    wanted = _number(raw_page) or 0
    if wanted < 1:
        wanted, invalid = 1, True
    total = audit.count(session, query)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(wanted, pages)
    events = audit.search(session, query, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return AuditLog(
        events=events,
        form=form,
        invalid=invalid,
        total=total,
        page=page,
        pages=pages,
        previous=link(form, page - 1) if page > 1 else None,
        next=link(form, page + 1) if page < pages else None,
    )
