"""The console's web plumbing: security headers, templates, JSON, login guards.

Every console response gets `Cache-Control: no-store`, a strict CSP (scripts
and styles only from the console's own files: no inline script or style
anywhere), `nosniff`, `Referrer-Policy: same-origin` and no framing. Every
route but the login page and the static files is wrapped by `guard`, which
loads the agent's session from the cookie and, for a POST, checks the origin
and the CSRF token before the handler runs. JSON escapes `<`, `>` and `&`, so
even a response read as HTML shows hostile text inert.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.console import csrf, labels
from bot.console.agents import AgentInfo
from bot.console.sessions import COOKIE_NAME, COOKIE_PATH, load_session
from bot.hosting import host, run_in_session
from bot.policy.programme import format_number

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
HOME_PATH = f"{PREFIX}/queue"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

PAGE = "page"
API = "api"
ACTION = "action"
MAX_ROW_ID = 2**31 - 1
"""The largest id an Integer column holds (PostgreSQL's int4); a larger id in a
path is a 404 before any query (SQLite cannot even bind one past 2**63)."""


class SecurityHeaders:
    """ASGI middleware for the whole app: the console's security headers on every
    response under /console, its 404s and 405s included (those are made by the
    app's exception handling, outside the console's own routes)."""

    def __init__(self, app: ASGIApp, prefix: str = PREFIX) -> None:
        """Wrap `app`; only paths under `prefix` get the headers."""
        self.app = app
        self.prefix = prefix

    def applies(self, path: str) -> bool:
        """Whether `path` is the console's."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http" or not self.applies(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["wib"] = labels.wib
    env.filters["duration"] = labels.duration
    env.filters["wib_day"] = labels.wib_day
    env.filters["number"] = format_number
    return env


TEMPLATE_ENV = _environment()


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from `templates/` (autoescaped)."""
    html = TEMPLATE_ENV.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status)


class SafeJSONResponse(JSONResponse):
    """JSON with `<`, `>` and `&` escaped as \\u003c etc. (inert even as HTML)."""

    def render(self, content: Any) -> bytes:
        """Serialise like JSONResponse, then escape the HTML-significant chars."""
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        text = text.replace("<", "\\u003c").replace(">", "\\u003e")
        return text.replace("&", "\\u0026").encode("utf-8")


def wants_json(request: Request) -> bool:
    """The caller is the page's script (fetch), not a form or a navigation."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or csrf.HEADER.lower() in request.headers


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the gateway's public URL is https."""
    return host(request).settings.public_base_url.startswith("https://")


@dataclass(frozen=True)
class Visit:
    """A request by a logged-in agent: who, and the session's CSRF token."""

    agent: AgentInfo
    csrf_token: str = field(repr=False)


Handler = Callable[[Request, Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(
    request: Request, status: int, code: str, message: str, visit: Visit | None = None
) -> Response:
    """A refusal: JSON for the page's script, an HTML page otherwise."""
    if wants_json(request):
        return SafeJSONResponse({"error": code, "message": message}, status_code=status)
    return render(
        "error.html",
        status=status,
        message=message,
        agent=visit.agent if visit else None,
        csrf=visit.csrf_token if visit else "",
        role_label=labels.label(labels.ROLES, visit.agent.role) if visit else "",
        page_kind="error",
    )


def ids_in_range(request: Request) -> bool:
    """Every integer in the path is an id a row can have."""
    return all(
        0 <= value <= MAX_ROW_ID
        for value in request.path_params.values()
        if isinstance(value, int)
    )


def guard(handler: Handler, kind: str, supervisor: bool = False) -> Endpoint:
    """Wrap a handler: a live session is required (pages redirect to the login,
    the rest get 401); an id in the path that no row can have is a 404; a POST
    must come from this site and carry the CSRF token (403); `supervisor`
    routes refuse agents (403)."""

    async def endpoint(request: Request) -> Response:
        settings = host(request).settings
        if kind == ACTION and not csrf.same_origin(request, settings.public_base_url):
            return error_response(
                request, 403, "cross_origin", "Permintaan dari situs lain ditolak."
            )
        token = request.cookies.get(COOKIE_NAME)
        activity = kind != API or request.query_params.get("active") == "1"
        session = await run_in_session(
            request, lambda db: load_session(db, token, activity=activity)
        )
        if session is None:
            if kind == PAGE:
                return RedirectResponse(LOGIN_PATH, status_code=303)
            return error_response(
                request, 401, "login", "Sesi berakhir. Silakan masuk lagi."
            )
        visit = Visit(session.agent, session.csrf_token)
        if not ids_in_range(request):
            return error_response(request, 404, "not_found", "Tidak ditemukan.", visit)
        if kind == ACTION:
            given = await csrf.submitted_token(request)
            if not csrf.tokens_match(session.csrf_token, given):
                return error_response(
                    request,
                    403,
                    "csrf",
                    "Formulir kedaluwarsa. Muat ulang halaman lalu coba lagi.",
                    visit,
                )
        if supervisor and not session.agent.is_supervisor:
            return error_response(
                request, 403, "supervisor_only", "Halaman ini khusus supervisor.", visit
            )
        return await handler(request, visit)

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    return endpoint


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Path=/console, Secure on
    https; no Max-Age (gone when the browser closes; the server ends it anyway)."""
    response.set_cookie(
        COOKIE_NAME,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    """Delete a console cookie (same flags as when it was set)."""
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
