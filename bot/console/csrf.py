"""Cross-site request forgery defences for every console POST.

Two independent checks:
- the request must come from this gateway's own pages: an `Origin` naming
  another site, or `Sec-Fetch-Site: cross-site`, is refused (browsers always
  send one of them on a cross-site POST);
- it must carry the session's CSRF token (form field `csrf` or header
  `X-CSRF-Token`), compared in constant time. Before login there is no session:
  the login form is protected by a double-submit token (a random value in the
  `console_login` cookie that the form repeats).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

FORM_FIELD = "csrf"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "console_login"
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Whether `given` equals `expected`, in constant time (None never matches)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_base_url: str) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    allowed = {_origin(str(request.base_url)), _origin(public_base_url)}
    return _origin(origin) in allowed


async def submitted_token(request: Request) -> str | None:
    """The CSRF token the request carries (header first, then the form field)."""
    header = request.headers.get(HEADER)
    if header:
        return header
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
    if media_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    form = await request.form()
    value = form.get(FORM_FIELD)
    return value if isinstance(value, str) else None
