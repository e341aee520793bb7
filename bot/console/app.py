"""The console's routes under /console: login, queue, tickets, supervisor view.

Pages are server-rendered (Jinja, autoescaped) and work as plain forms; the
page's script (`static/console.js`) polls the JSON routes every few seconds to
show new tickets and messages, counts SMS segments as the agent types, inserts
canned answers and reveals masked fields. Every route but the login page and
the static files requires a session (`web.guard`); every POST also needs this
site's origin and the session's CSRF token (the login form: a double-submit
token). Replies and the end of a ticket reach the person through the gateway
inbox as internal events (`agent_reply`, `handoff_resolved`), and the
conversation worker is woken after the commit.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.channels.storable import storable_text
from bot.console import audit, batch_pages, csrf, labels
from bot.console.access import can_assign, can_reply, can_resolve, can_reveal
from bot.console.agents import get_agent, list_agents
from bot.console.audit_view import audit_log
from bot.console.auth import (
    admit,
    check_password,
    client_target,
    login_alerts,
    refused_logins,
)
from bot.console.canned import canned_answers
from bot.console.chart import funnel_chart, percent
from bot.console.panel import (
    REVEALABLE,
    registration_panel,
    reveal_value,
)
from bot.console.password_policy import MAX_PASSWORD_LENGTH
from bot.console.sessions import COOKIE_NAME, close_session, load_session, open_session
from bot.console.sms import MAX_REPLY_LENGTH, estimate
from bot.console.stats import agent_activity, backlog_view, registration_funnel
from bot.console.views import (
    FORBIDDEN,
    Refusal,
    queue_items,
    ticket_state,
    visible_ticket,
)
from bot.console.web import (
    ACTION,
    API,
    HOME_PATH,
    LOGIN_PATH,
    PAGE,
    STATIC,
    SafeJSONResponse,
    SecurityHeaders,
    Visit,
    clear_cookie,
    error_response,
    guard,
    render,
    secure_cookies,
    set_session_cookie,
)
from bot.db import utcnow
from bot.handoff import tickets
from bot.handoff.errors import TicketClosed, TicketNotFound, TicketTaken
from bot.handoff.events import agent_reply_key, resolved_key
from bot.handoff.models import MAX_NOTE_LENGTH, TICKET_OPEN
from bot.handoff.records import TicketInfo
from bot.hosting import host, run_in_session
from bot.messages.events import AGENT_REPLY, HANDOFF_RESOLVED
from bot.messages.failures import recent_failed
from bot.policy.programme import load_policy

log = logging.getLogger(__name__)

R = TypeVar("R")

PUBLIC_PATHS = frozenset({"/login", "/static"})
"""Paths inside /console reachable without a session (tests check the rest)."""
LOGIN_TOKEN_MAX_AGE = 3600
REPLY_KEY = re.compile(r"[0-9a-f]{32}")
NOTICES = {
    "sent": "Balasan disimpan dan sedang dikirim.",
    "claimed": "Tiket sudah kamu ambil.",
    "assigned": "Tiket sudah ditugaskan.",
    "noted": "Catatan disimpan.",
    "resolved": "Tiket selesai. Asisten otomatis melanjutkan percakapan.",
    "empty": "Tulis balasan atau catatan dulu.",
    "too_long": "Teks terlalu panjang.",
    "taken": "Tiket sudah diambil petugas lain.",
    "closed": "Tiket sudah selesai atau dibatalkan.",
    "no_agent": "Petugas tujuan tidak ditemukan atau tidak aktif.",
}
GENERIC_LOGIN_ERROR = (
    "Nama pengguna atau kata sandi salah, atau terlalu banyak percobaan. "
    "Tunggu sebentar lalu coba lagi, atau hubungi supervisor."
)


async def _db(request: Request, work: Callable[[Session], R]) -> R:
    """Run `work` in this request's own session (committed when it returns)."""
    return await run_in_session(request, work)


def _base_context(visit: Visit, page_kind: str) -> dict[str, Any]:
    return {
        "agent": visit.agent,
        "csrf": visit.csrf_token,
        "role_label": labels.label(labels.ROLES, visit.agent.role),
        "page_kind": page_kind,
    }


def _notice(request: Request) -> str:
    return NOTICES.get(request.query_params.get("msg", ""), "")


def _redirect(path: str, notice: str | None = None, anchor: str = "") -> Response:
    target = path + (f"?msg={notice}" if notice else "") + anchor
    return RedirectResponse(target, status_code=303)


def _ticket_path(ticket_id: int) -> str:
    return f"/console/tickets/{ticket_id}"


def _refused(request: Request, visit: Visit, refusal: Refusal) -> Response:
    return error_response(request, refusal.status, refusal.code, refusal.message, visit)


async def _form_text(request: Request, name: str) -> str:
    form = await request.form()
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- login and logout --------------------------------------------------------------


def _login_page(
    request: Request, token: str, error: str = "", status: int = 200
) -> Response:
    response = render(
        "login.html",
        status=status,
        login_token=token,
        error=error,
        agent=None,
        csrf="",
        role_label="",
        page_kind="login",
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_MAX_AGE,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


async def login_form(request: Request) -> Response:
    """The login page (straight to the queue when already logged in)."""
    token = request.cookies.get(COOKIE_NAME)
    session = await _db(request, lambda db: load_session(db, token))
    if session is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    existing = request.cookies.get(csrf.LOGIN_COOKIE, "")
    login_token = existing if 20 <= len(existing) <= 100 else csrf.new_token()
    return _login_page(request, login_token)


async def login(request: Request) -> Response:
    """Check the password; on success start a session and set its cookie."""
    settings = host(request).settings
    if not csrf.same_origin(request, settings.public_base_url):
        return error_response(request, 403, "cross_origin", "Permintaan ditolak.")
    form = await request.form()
    given = form.get(csrf.FORM_FIELD)
    expected = request.cookies.get(csrf.LOGIN_COOKIE)
    if not csrf.tokens_match(expected, given if isinstance(given, str) else None):
        return error_response(
            request, 403, "csrf", "Formulir kedaluwarsa. Muat ulang halaman."
        )
    username = form.get("username")
    password = form.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return _login_page(request, str(expected), GENERIC_LOGIN_ERROR, 401)
    if not (storable_text(username) and storable_text(password)):  # NUL, surrogate
        return _login_page(request, str(expected), GENERIC_LOGIN_ERROR, 400)
    address = request.client.host if request.client else "unknown"
    client = client_target(settings.secret_for("console-login-client"), address)

    # Counted and committed first, so simultaneous guesses see each other.
    admission = await _db(request, lambda db: admit(db, username[:64], client))

    def attempt(db: Session) -> tuple[str, str] | None:
        result = check_password(
            db, admission, password[: MAX_PASSWORD_LENGTH + 1]
        )
        if not result.ok or result.agent is None:
            log.info("console login refused (%s)", result.outcome)
            return None
        token, session = open_session(db, result.agent)
        return token, session.agent.username

    opened = await _db(request, attempt)
    if opened is None:
        return _login_page(request, str(expected), GENERIC_LOGIN_ERROR, 401)
    token, _ = opened
    response = RedirectResponse(HOME_PATH, status_code=303)
    set_session_cookie(request, response, token)
    clear_cookie(request, response, csrf.LOGIN_COOKIE)
    return response


async def logout(request: Request, visit: Visit) -> Response:
    """End the session and drop its cookie."""
    token = request.cookies.get(COOKIE_NAME)

    def end(db: Session) -> None:
        close_session(db, token)
        audit.record(db, audit.LOGOUT, visit.agent.id)

    await _db(request, end)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_cookie(request, response, COOKIE_NAME)
    return response


# --- pages --------------------------------------------------------------------------


async def home(request: Request, visit: Visit) -> Response:
    """/console/: the queue."""
    return RedirectResponse(HOME_PATH, status_code=303)


async def queue_page(request: Request, visit: Visit) -> Response:
    """The queue on the left, nothing chosen on the right."""
    now = utcnow()
    items = await _db(request, lambda db: queue_items(db, visit.agent, now))
    return render(
        "queue.html",
        **_base_context(visit, "queue"),
        queue=items,
        current_id=None,
        notice=_notice(request),
    )


async def ticket_page(request: Request, visit: Visit) -> Response:
    """The queue on the left, the ticket on the right."""
    ticket_id = int(request.path_params["ticket_id"])
    now = utcnow()
    policy = load_policy()

    def build(db: Session) -> dict[str, Any]:
        ticket = visible_ticket(db, ticket_id, visit.agent)
        # fixed when the ticket was opened; none once the person's data is erased
        applicant_id = None if ticket.erased_at is not None else ticket.applicant_id
        return {
            "queue": queue_items(db, visit.agent, now),
            "ticket": ticket_state(db, ticket, visit.agent, now),
            "panel": registration_panel(db, applicant_id, now)
            if applicant_id
            else None,
            "agents": list_agents(db, active_only=True),
        }

    try:
        context = await _db(request, build)
    except Refusal as refusal:
        return _refused(request, visit, refusal)
    return render(
        "ticket.html",
        **_base_context(visit, "ticket"),
        **context,
        current_id=ticket_id,
        canned=canned_answers(policy),
        reply_key=uuid.uuid4().hex,
        max_reply=MAX_REPLY_LENGTH,
        max_note=MAX_NOTE_LENGTH,
        notice=_notice(request),
    )


async def supervisor_page(request: Request, visit: Visit) -> Response:
    """Queue figures, the message backlog, messages the gateway gave up on, agent
    activity, the registration funnel, accounts under password guessing, and the
    audit log (filtered and paged by the query)."""
    now = utcnow()
    monitor = host(request).backlog
    backlog = backlog_view(
        monitor.figures, monitor.counts(), monitor.over_capacity()
    )
    params = dict(request.query_params)

    def build(db: Session) -> dict[str, Any]:
        stages = registration_funnel(db)
        return {
            "stats": tickets.queue_stats(db, now),
            "activity": agent_activity(db, now),
            "funnel": stages,
            "chart": funnel_chart(stages),
            "log": audit_log(db, params),
            "login_alerts": login_alerts(db, now),
            "refused": refused_logins(db, now),
            "all_agents": list_agents(db),
            "queue": queue_items(db, visit.agent, now),
            "failed": recent_failed(db, now),
        }

    context = await _db(request, build)
    return render(
        "supervisor.html",
        **_base_context(visit, "supervisor"),
        **context,
        labels=labels,
        percent=percent,
        current_id=None,
        notice="",
        backlog=backlog,
    )


# --- JSON the page polls -------------------------------------------------------------


async def queue_api(request: Request, visit: Visit) -> Response:
    """The tickets this agent may see, for the queue list."""
    now = utcnow()
    items = await _db(request, lambda db: queue_items(db, visit.agent, now))
    return SafeJSONResponse({"tickets": items})


async def ticket_api(request: Request, visit: Visit) -> Response:
    """The ticket's state; just its version when `v` says nothing changed."""
    ticket_id = int(request.path_params["ticket_id"])
    now = utcnow()

    def build(db: Session) -> dict[str, Any]:
        return ticket_state(
            db, visible_ticket(db, ticket_id, visit.agent), visit.agent, now
        )

    try:
        state = await _db(request, build)
    except Refusal as refusal:
        return _refused(request, visit, refusal)
    if request.query_params.get("v") == state["version"]:
        return SafeJSONResponse(
            {
                "version": state["version"],
                "unchanged": True,
                "waiting": state["waiting"],
            }
        )
    return SafeJSONResponse(state)


async def _json_body(request: Request) -> dict[str, Any] | None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
    if media_type != "application/json":
        return None
    try:
        data = json.loads(await request.body())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def segments_api(request: Request, visit: Visit) -> Response:
    """Encoding and SMS segments of the reply being typed."""
    data = await _json_body(request)
    text = data.get("text") if data else None
    if not isinstance(text, str):
        return error_response(request, 400, "bad_request", "Body harus JSON {text}.")
    info = estimate(text[: MAX_REPLY_LENGTH * 2])
    return SafeJSONResponse(
        {
            "encoding": info.typed_encoding,
            "segments": info.typed_segments,
            "units": info.typed_units,
            "sent_segments": info.segments,
            "pages": info.pages,
            "replaced": list(info.replaced),
            "label": info.label,
            "too_long": len(text) > MAX_REPLY_LENGTH,
        }
    )


# --- actions on a ticket -------------------------------------------------------------


def _ticket_id(request: Request) -> int:
    return int(request.path_params["ticket_id"])


def _handoff_refusal(exc: Exception) -> Refusal:
    if isinstance(exc, TicketTaken):
        return Refusal(409, "taken", NOTICES["taken"])
    if isinstance(exc, TicketClosed):
        return Refusal(409, "closed", NOTICES["closed"])
    return Refusal(404, "not_found", "Tiket tidak ditemukan.")


def _require_active(ticket: TicketInfo) -> None:
    """Refuse an action on a resolved or cancelled ticket (409)."""
    if not ticket.active:
        raise _handoff_refusal(TicketClosed(ticket.id, ticket.status))


async def _act(
    request: Request, visit: Visit, work: Callable[[Session], R]
) -> R | Response:
    """Run a ticket action; a refusal becomes its error response."""
    try:
        return await _db(request, work)
    except Refusal as refusal:
        return _refused(request, visit, refusal)
    except (TicketTaken, TicketClosed, TicketNotFound) as exc:
        return _refused(request, visit, _handoff_refusal(exc))


async def claim_ticket(request: Request, visit: Visit) -> Response:
    """Take an open ticket."""
    ticket_id = _ticket_id(request)

    def work(db: Session) -> None:
        visible_ticket(db, ticket_id, visit.agent)
        tickets.claim(db, ticket_id, visit.agent.id)
        audit.record(db, audit.CLAIM, visit.agent.id, ticket_id=ticket_id)

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    return _redirect(_ticket_path(ticket_id), "claimed")


async def assign_ticket(request: Request, visit: Visit) -> Response:
    """A supervisor gives a ticket to an agent (form field `agent_id`)."""
    ticket_id = _ticket_id(request)
    raw = await _form_text(request, "agent_id")
    target = int(raw) if raw.isdigit() and len(raw) < 10 else 0

    def work(db: Session) -> bool:
        ticket = visible_ticket(db, ticket_id, visit.agent)
        _require_active(ticket)
        if not can_assign(visit.agent, ticket):
            raise FORBIDDEN
        agent = get_agent(db, target) if target else None
        if agent is None or not agent.active:
            return False
        tickets.assign(db, ticket_id, agent.id)
        audit.record(
            db,
            audit.ASSIGN,
            visit.agent.id,
            ticket_id=ticket_id,
            target=f"agent:{agent.id}",
        )
        return True

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    return _redirect(_ticket_path(ticket_id), "assigned" if result else "no_agent")


async def reply_ticket(request: Request, visit: Visit) -> Response:
    """Send the agent's reply to the person (claims an open ticket first)."""
    ticket_id = _ticket_id(request)
    text = await _form_text(request, "text")
    key = await _form_text(request, "key")
    if not REPLY_KEY.fullmatch(key):
        key = uuid.uuid4().hex
    if not text:
        return _redirect(_ticket_path(ticket_id), "empty", "#reply")
    if len(text) > MAX_REPLY_LENGTH:
        return _redirect(_ticket_path(ticket_id), "too_long", "#reply")

    def work(db: Session) -> None:
        ticket = visible_ticket(db, ticket_id, visit.agent)
        _require_active(ticket)
        if ticket.status == TICKET_OPEN:
            tickets.claim(db, ticket_id, visit.agent.id)
            audit.record(db, audit.CLAIM, visit.agent.id, ticket_id=ticket_id)
        elif not can_reply(visit.agent, ticket):
            raise FORBIDDEN
        stored = tickets.notify_ticket(
            db,
            ticket_id,
            AGENT_REPLY,
            key=agent_reply_key(ticket_id, key),
            text=text,
            data={"agent_id": visit.agent.id, "ticket_id": ticket_id},
        )
        if not stored:
            raise Refusal(409, "no_conversation", "Percakapan tidak ditemukan.")
        tickets.record_reply(db, ticket_id, visit.agent.id)
        audit.record(db, audit.REPLY, visit.agent.id, ticket_id=ticket_id)

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    host(request).worker.notify()
    return _redirect(_ticket_path(ticket_id), "sent", "#reply")


async def note_ticket(request: Request, visit: Visit) -> Response:
    """Add an internal note (never sent to the person)."""
    ticket_id = _ticket_id(request)
    text = await _form_text(request, "text")
    if not text:
        return _redirect(_ticket_path(ticket_id), "empty", "#notes")
    if len(text) > MAX_NOTE_LENGTH:
        return _redirect(_ticket_path(ticket_id), "too_long", "#notes")

    def work(db: Session) -> None:
        visible_ticket(db, ticket_id, visit.agent)
        tickets.add_note(db, ticket_id, visit.agent.id, text)
        audit.record(db, audit.NOTE, visit.agent.id, ticket_id=ticket_id)

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    return _redirect(_ticket_path(ticket_id), "noted", "#notes")


async def resolve_ticket(request: Request, visit: Visit) -> Response:
    """Close the ticket; the bot re-reads the status and says what is next."""
    ticket_id = _ticket_id(request)

    def work(db: Session) -> None:
        ticket = visible_ticket(db, ticket_id, visit.agent)
        _require_active(ticket)
        if not can_resolve(visit.agent, ticket):
            raise FORBIDDEN
        tickets.resolve(db, ticket_id, visit.agent.id)
        tickets.notify_ticket(
            db, ticket_id, HANDOFF_RESOLVED, key=resolved_key(ticket_id)
        )
        audit.record(db, audit.RESOLVE, visit.agent.id, ticket_id=ticket_id)

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    host(request).worker.notify()
    return _redirect(HOME_PATH, "resolved")


async def reveal_field(request: Request, visit: Visit) -> Response:
    """The clear value of one masked field (JSON); audited."""
    ticket_id = _ticket_id(request)
    data = await _json_body(request)
    field = data.get("field") if data else None
    if field not in REVEALABLE:
        return error_response(request, 400, "bad_request", "Kolom tidak dikenal.")
    name = str(field)

    def work(db: Session) -> str | None:
        ticket = visible_ticket(db, ticket_id, visit.agent)
        if not can_reveal(visit.agent, ticket):
            raise Refusal(403, "claim_first", "Ambil tiket dulu untuk melihat data.")
        if ticket.erased_at is not None:
            raise Refusal(410, "erased", "Data dihapus.")
        applicant_id = ticket.applicant_id  # fixed when the ticket was opened
        if applicant_id is None:
            raise Refusal(404, "no_applicant", "Belum terhubung ke pendaftaran.")
        value = reveal_value(db, applicant_id, name)
        audit.record(
            db,
            audit.REVEAL,
            visit.agent.id,
            ticket_id=ticket_id,
            target=f"applicant:{applicant_id} field:{name}",
        )
        return value

    result = await _act(request, visit, work)
    if isinstance(result, Response):
        return result
    return SafeJSONResponse({"field": name, "value": result or ""})


def _route(path: str, handler: Any, kind: str, supervisor: bool = False) -> Route:
    methods = ["POST"] if kind == ACTION else ["GET"]
    return Route(path, guard(handler, kind, supervisor), methods=methods)


def routes() -> list[BaseRoute]:
    """The console, mounted at /console (add `middleware()` to the app too)."""
    inner: list[BaseRoute] = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        _route("/", home, PAGE),
        _route("/queue", queue_page, PAGE),
        _route("/tickets/{ticket_id:int}", ticket_page, PAGE),
        _route("/supervisor", supervisor_page, PAGE, supervisor=True),
        _route("/batches", batch_pages.batches_page, PAGE, supervisor=True),
        _route("/batches", batch_pages.schedule_batch, ACTION, supervisor=True),
        _route(
            "/batches/{batch_id:int}/close",
            batch_pages.close_batch,
            ACTION,
            supervisor=True,
        ),
        _route(
            "/batches/{batch_id:int}/select",
            batch_pages.select_batch,
            ACTION,
            supervisor=True,
        ),
        _route(
            "/batches/{batch_id:int}/publish",
            batch_pages.publish_and_wake,
            ACTION,
            supervisor=True,
        ),
        _route(
            "/batches/{batch_id:int}/pause",
            batch_pages.pause_batch,
            ACTION,
            supervisor=True,
        ),
        _route(
            "/batches/{batch_id:int}/resume",
            batch_pages.resume_batch,
            ACTION,
            supervisor=True,
        ),
        _route(
            "/api/batches/{batch_id:int}/progress",
            batch_pages.progress_api,
            API,
            supervisor=True,
        ),
        _route("/logout", logout, ACTION),
        _route("/tickets/{ticket_id:int}/claim", claim_ticket, ACTION),
        _route(
            "/tickets/{ticket_id:int}/assign", assign_ticket, ACTION, supervisor=True
        ),
        _route("/tickets/{ticket_id:int}/reply", reply_ticket, ACTION),
        _route("/tickets/{ticket_id:int}/notes", note_ticket, ACTION),
        _route("/tickets/{ticket_id:int}/resolve", resolve_ticket, ACTION),
        _route("/tickets/{ticket_id:int}/reveal", reveal_field, ACTION),
        _route("/api/queue", queue_api, API),
        _route("/api/tickets/{ticket_id:int}", ticket_api, API),
        _route("/api/segments", segments_api, ACTION),
    ]
    return [Mount("/console", routes=inner)]


def middleware() -> list[Middleware]:
    """App-wide middleware the console needs: its security headers."""
    return [Middleware(SecurityHeaders)]
