"""Twilio webhooks: signature check, inbound messages and delivery statuses.

Twilio signs each request with HMAC-SHA1 over the full URL it called and every
POST parameter (X-Twilio-Signature); the URL must be the public one
(``PUBLIC_BASE_URL`` + path), not what a proxy in front of the gateway saw.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twilio.request_validator import RequestValidator

from bot.channels.base import SMS, InboundMessage, Unauthorized
from bot.policy.validation import normalize_phone
from bot.settings import Settings


class MalformedRequestError(ValueError):
    """A correctly signed request lacks a field we need (answer 400)."""


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status callback for a message we sent."""

    message_sid: str
    status: str
    error_code: str | None = None


def verify_signature(
    settings: Settings, url: str, params: Mapping[str, str], signature: str | None
) -> None:
    """Raise `Unauthorized` unless Twilio signed ``url`` and ``params``."""
    token = settings.twilio_auth_token
    if not token or not signature:
        raise Unauthorized("missing Twilio signature or auth token")
    validator = _validator(token)
    fields = dict(params)
    # Twilio signs the webhook's URL as configured: checked first, one HMAC;
    # `validate` (the URL with and without its port, two HMACs) only when that
    # does not match.
    signed = validator.compute_signature(url, fields)
    if hmac.compare_digest(signed.encode(), signature.encode()):
        return
    if not validator.validate(url, fields, signature):
        raise Unauthorized("invalid Twilio signature")


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def normalise_address(raw: str) -> str:
    """E.164 for the sender: Indonesian numbers normalised, others kept."""
    value = raw.strip()
    indonesian = normalize_phone(value)
    if indonesian:
        return indonesian
    return value


def _sid(params: Mapping[str, str]) -> str:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid:
        raise MalformedRequestError("MessageSid is missing")
    return sid


def _media_event(params: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        count = int(params.get("NumMedia") or "0")
    except ValueError:
        count = 0
    url = params.get("MediaUrl0")
    if count < 1 or not url:
        return None
    content_type = params.get("MediaContentType0") or ""
    kind = "photo" if content_type.startswith("image/") else "media"
    return {"type": kind, "url": url, "content_type": content_type}


def parse_inbound(
    settings: Settings, url: str, params: Mapping[str, str], signature: str | None
) -> InboundMessage:
    """An authenticated inbound SMS/MMS as the gateway stores it.

    Raises `Unauthorized` for a bad or missing signature (or no auth token
    configured) and `MalformedRequestError` when MessageSid or From is missing.
    """
    verify_signature(settings, url, params, signature)
    sender = params.get("From") or ""
    if not sender:
        raise MalformedRequestError("From is missing")
    return InboundMessage(
        channel=SMS,
        provider_id=_sid(params),
        address=normalise_address(sender),
        text=params.get("Body") or "",
        event=_media_event(params),
    )


def parse_status(
    settings: Settings, url: str, params: Mapping[str, str], signature: str | None
) -> StatusUpdate:
    """An authenticated delivery status callback (queued, sent, delivered...)."""
    verify_signature(settings, url, params, signature)
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if not status:
        raise MalformedRequestError("MessageStatus is missing")
    return StatusUpdate(
        message_sid=_sid(params),
        status=status,
        error_code=params.get("ErrorCode") or None,
    )
