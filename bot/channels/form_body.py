"""Form fields as one urlencoded body, encoded once.

Given a dict, aiohttp builds a `FormData`, and with it a multipart writer and a
random boundary (`uuid4`), even when the body it sends is urlencoded: a fifth of
the gateway's CPU for a Twilio send in a py-spy profile of `make bench-gateway`
(docs/benchmarks.md, eighth session). The senders hand aiohttp these bytes and
the header instead: the same body on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def urlencoded(fields: Mapping[str, object]) -> bytes:
    """The fields as aiohttp would encode them (a list value repeats its name)."""
    return urlencode(fields, doseq=True).encode("utf-8")
