"""Hypothesis strategies for the fuzz test: hostile bodies for every edge.

Each body is built around a value shaped like personal data (NIK, phone,
e-mail), returned beside it, so the test can look for it in the logs. Bodies
range from the provider's real shape with odd fields, through JSON of any shape,
to raw bytes. Hypothesis draws the skeleton (which shape, the personal value,
one free text) and a seeded `random.Random` for the many small odd details:
drawing each detail through Hypothesis costs about a millisecond apiece on a
busy machine, and 10,000 bodies must fit in about a minute.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

REGIONS = ("31", "32", "33", "35", "51", "64", "73")
NIK = st.builds(
    "{}{:014d}".format, st.sampled_from(REGIONS), st.integers(0, 10**14 - 1)
)
PHONE = st.builds(
    "{}{}".format, st.sampled_from(("+628", "08")), st.integers(10**8, 10**11 - 1)
)
EMAIL = st.builds(
    "{}{}@{}".format,
    st.sampled_from(("budi", "siti.r", "made_w", "yusuf")),
    st.integers(10, 10**6),
    st.sampled_from(("gmail.com", "yahoo.co.id", "mail.id")),
)
PERSONAL = st.one_of(NIK, PHONE, EMAIL)
"""Values shaped like personal data (built, not drawn from a regex: faster)."""
RNG = st.builds(random.Random, st.integers(0, 2**64 - 1))
"""A seeded generator for the details (one draw, unlike `st.randoms()`, which
draws each call it answers)."""
FORM_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
"""Text an HTTP form can carry (no lone surrogates)."""
ANY_TEXT = st.text(max_size=40)
"""Any text, NUL and lone surrogates included (sent as JSON escapes)."""

ODD_CHARACTERS = (
    "\x00",
    "\ud800",
    "\udfff",
    "\n",
    "\r",
    '"',
    "\\",
    "/",
    "%",
    "&",
    "=",
    "+",
    "<",
    "\u202e",
    "\ufeff",
    "\U0001f600",
    "é",
    "ÿ",
    "a",
    "Z",
    "0",
    " ",
    "'",
    "{",
)


def odd_text(rng: random.Random, form: bool = False) -> str:
    """A short string of awkward characters (no surrogates for a form)."""
    pool = [c for c in ODD_CHARACTERS if not (form and "\ud800" <= c <= "\udfff")]
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))


def odd_number(rng: random.Random) -> Any:
    """An int or float anywhere from zero to far past 64 bits."""
    return rng.choice(
        (0, -1, 2**31, 2**63, -(2**64), 10**23, rng.randint(-(2**70), 2**70), 1e308)
    )


def odd_json(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any shape, a few levels deep."""
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return odd_number(rng)
    if kind in (3, 4):
        return odd_text(rng)
    if kind == 5:
        return [odd_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {odd_text(rng): odd_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def odd_bytes(rng: random.Random) -> bytes:
    """Up to 200 random bytes."""
    return rng.randbytes(rng.randint(0, 200))


def maybe(rng: random.Random, usual: Any, chance: float = 0.2) -> Any:
    """Usually `usual`; sometimes an odd JSON value instead."""
    return odd_json(rng) if rng.random() < chance else usual


@dataclass
class Case:
    """One request body and the personal data put into it."""

    body: bytes
    personal: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    """Form fields (SMS, login) before encoding, when the body is a form."""


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=True).encode("utf-8")  # surrogates escaped


@st.composite
def telegram_bodies(draw: Any) -> Case:
    """Telegram updates: real shapes with odd fields, any JSON, raw bytes."""
    kind = draw(st.sampled_from(["message", "callback", "edited", "json", "bytes"]))
    value, free, rng = draw(PERSONAL), draw(ANY_TEXT), draw(RNG)
    text = f"{free} {value} {odd_text(rng)}"
    if kind == "bytes":
        return Case(odd_bytes(rng) + value.encode() + odd_bytes(rng), [value])
    if kind == "json":
        odd = {odd_text(rng): odd_json(rng) for _ in range(3)}
        return Case(_json({"update_id": rng.randint(0, 99), "t": text, **odd}), [value])
    user = {
        "id": maybe(rng, rng.randint(1, 2**40)),
        "is_bot": maybe(rng, False),
        "first_name": maybe(rng, rng.choice((value, free, "Andi"))),
    }
    chat = {
        "id": maybe(rng, rng.randint(-(2**40), 2**40)),
        "type": maybe(rng, rng.choice(("private", "private", "group", "channel"))),
    }
    message: dict[str, Any] = {
        "message_id": maybe(rng, rng.randint(1, 2**31)),
        "date": maybe(rng, rng.randint(0, 2**31)),
        "from": maybe(rng, user, 0.1),
        "text": maybe(rng, text, 0.1),
    }
    if rng.random() < 0.8:
        message["chat"] = maybe(rng, chat, 0.1)
    if rng.random() < 0.2:
        message["contact"] = {"phone_number": value, "first_name": odd_text(rng)}
    if rng.random() < 0.2:
        message["photo"] = maybe(rng, [{"file_id": free, "width": 1, "height": 1}])
    if rng.random() < 0.2:
        message[odd_text(rng)] = odd_json(rng)
    update_id = maybe(rng, rng.randint(0, 2**40), 0.1)
    if kind == "callback":
        query = {
            "id": maybe(rng, free),
            "from": user,
            "chat_instance": odd_text(rng),
            "data": maybe(rng, rng.choice((text, f"1:{value}", "0:/affirm"))),
            "message": maybe(rng, message, 0.1),
        }
        return Case(_json({"update_id": update_id, "callback_query": query}), [value])
    key = "edited_message" if kind == "edited" else "message"
    return Case(_json({"update_id": update_id, key: message}), [value])


@st.composite
def sms_forms(draw: Any, status: bool = False) -> Case:
    """Twilio's parameters with odd values, missing keys and extra keys."""
    value, free, rng = draw(PERSONAL), draw(FORM_TEXT), draw(RNG)
    real_sender = rng.random() < 0.6
    sender = draw(PHONE) if real_sender else odd_text(rng, form=True)
    sid = f"SM{rng.getrandbits(128):032x}"
    fields = {
        "MessageSid": sid if rng.random() < 0.8 else odd_text(rng, form=True),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15550001111",
    }
    if status:
        fields["MessageStatus"] = rng.choice(
            ("delivered", "failed", "sent", "undelivered", free)
        )
        fields["ErrorCode"] = rng.choice(("", "30003", free))
    else:
        fields["Body"] = f"{free} {value} {odd_text(rng, form=True)}"
        fields["NumMedia"] = rng.choice(("0", "1", "-1", "10" * 20, free))
        if rng.random() < 0.3:
            fields["MediaUrl0"] = rng.choice(("https://api.twilio.com/x", free))
            fields["MediaContentType0"] = rng.choice(("image/jpeg", free))
    for _ in range(rng.randint(0, 2)):
        fields[odd_text(rng, form=True) or "x"] = odd_text(rng, form=True)
    if rng.random() < 0.15:
        del fields[rng.choice(sorted(fields))]
    personal = [sender] if real_sender else []
    if not status:
        personal.append(value)
    return Case(b"", personal, fields)


@st.composite
def login_forms(draw: Any) -> Case:
    """A login form: names and passwords with personal data, odd characters."""
    value, free, rng = draw(PERSONAL), draw(FORM_TEXT), draw(RNG)
    personal_name = rng.random() < 0.5
    username = draw(PERSONAL) if personal_name else free
    fields = {
        "username": username,
        "password": f"{odd_text(rng, form=True)} {value} {free}",
    }
    if rng.random() < 0.2:
        fields[odd_text(rng, form=True) or "x"] = odd_text(rng, form=True)
    personal = [value, username] if personal_name else [value]
    return Case(b"", personal, fields)


@st.composite
def raw_forms(draw: Any) -> Case:
    """A body no form parser expects, with a personal value in it."""
    value, rng = draw(PERSONAL), draw(RNG)
    return Case(odd_bytes(rng) + value.encode() + odd_bytes(rng), [value])


@st.composite
def simulator_bodies(draw: Any) -> Case:
    """What the simulator page posts, with odd fields, any JSON, raw bytes."""
    kind = draw(st.sampled_from(["text", "text", "payload", "json", "bytes"]))
    value, free, rng = draw(PERSONAL), draw(ANY_TEXT), draw(RNG)
    text = f"{free} {value} {odd_text(rng)}"
    if kind == "bytes":
        return Case(odd_bytes(rng) + value.encode(), [value])
    if kind == "json":
        return Case(_json(odd_json(rng)) + value.encode(), [value])
    phone_user = rng.random() < 0.3
    user = draw(PHONE) if phone_user else maybe(rng, rng.choice(("andi", free)))
    body: dict[str, Any] = {
        "channel": maybe(rng, rng.choice(("telegram", "sms"))),
        "user": user,
        kind: maybe(rng, text),
    }
    return Case(_json(body), [value, user] if phone_user else [value])
