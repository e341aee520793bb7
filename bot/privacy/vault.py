"""Tokens for personal data, so that Rasa's tracker store never holds it.

The gateway replaces every span the detector finds (`bot.privacy.detect`) in a
person's text and message metadata with an opaque token before Rasa sees it,
and keeps the typed text under that token, tied to the conversation, for
`TOKEN_TTL`. The actions reveal tokens back to the typed text before they
validate it (so validation is exactly as before), and keep what they validated
(NIK, KK, birth date, e-mail) in slots as new tokens, revealed again only when
they are used.

Tokens keep the shape the NLU was trained on, so intents come out as with the
real values (measured on the trained model), and no validator accepts one: 16
digits for a number (`0000` then 12 random digits: province 00, never a NIK, KK
or phone), a date `DD-MM-YYYY` with a month from 13 to 99 (never a date), and
`t_` plus 10 random characters `@gmail.com` for an e-mail (the underscore is
allowed neither by Gmail nor by `validate_email`). An unknown or expired token
is left as it is, so it fails validation and the person is asked again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from bot.db import read_session, utcnow
from bot.direct_sql import DirectStatement
from bot.messages.models import Conversation
from bot.privacy.detect import (
    DATE,
    EMAIL,
    find_personal_data,
    replace_personal_data,
)
from bot.privacy.models import PersonalToken

# As long as a registration in the chat may reasonably take (the e-mail code,
# a pause overnight); afterwards the person types the value again.
TOKEN_TTL = timedelta(days=7)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_DIGITS = "0123456789"
TOKEN_PATTERN = re.compile(
    r"(?<!\d)0000\d{12}(?!\d)"
    r"|(?<![\d-])\d\d-(?:1[3-9]|[2-9]\d)-(?:19|20)\d\d(?![\d-])"
    r"|(?<![\w.+-])t_[a-z0-9]{10}@gmail\.com(?![\w-])"
)


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_token(kind: str) -> str:
    """A fresh token for a value of `kind`, shaped like such a value."""
    if kind == DATE:
        day, month = 1 + secrets.randbelow(28), 13 + secrets.randbelow(87)
        return f"{day:02d}-{month:02d}-{1950 + secrets.randbelow(56)}"
    if kind == EMAIL:
        return "t_" + _random(_ALPHABET, 10) + "@gmail.com"
    return "0000" + _random(_DIGITS, 12)


# Each statement is built once: the actions keep and reveal tokens on most
# turns, and building one per call cost more than running it (docs/benchmarks.md).
_tokens, _conversations = PersonalToken.__table__, Conversation.__table__
CONVERSATION_OF = DirectStatement(
    select(_conversations.c.id).where(
        _conversations.c.pseudonym == bindparam("pseudonym")
    )
)
EXPIRED = DirectStatement(
    delete(_tokens).where(_tokens.c.expires_at <= bindparam("now"))
)
TAKEN = DirectStatement(
    select(_tokens.c.token).where(
        _tokens.c.conversation_id == bindparam("conversation_id")
    )
)
INSERT_TOKEN = DirectStatement(insert(_tokens), values_from_parameters=True)
VALUES_OF = DirectStatement(
    select(_tokens.c.token, _tokens.c.value)
    .join(_conversations, _conversations.c.id == _tokens.c.conversation_id)
    .where(
        _conversations.c.pseudonym == bindparam("pseudonym"),
        _tokens.c.token.in_(bindparam("tokens", expanding=True)),
        _tokens.c.expires_at > bindparam("now"),
    )
)
"""The values of some tokens of the conversation Rasa knows under a pseudonym."""


def conversation_of(session: Session, pseudonym: str) -> int | None:
    """The conversation Rasa knows under `pseudonym`."""
    found = CONVERSATION_OF.execute(
        session, {"pseudonym": pseudonym}
    ).scalar_one_or_none()
    return None if found is None else int(found)


def purge_expired(session: Session, now: datetime) -> int:
    """Delete the expired tokens; how many there were. The gateway's privacy
    loop and the retention sweep run it (`bot.privacy.janitor`), not a
    person's turn: the vault's writes in a turn touch only that conversation's
    rows, and expired values go within the loop's interval whether or not
    anyone is typing."""
    result = EXPIRED.execute(session, {"now": now})
    return int(result.rowcount or 0)


class _Keeper:
    """Mints tokens for one conversation inside one transaction."""

    def __init__(self, session: Session, conversation_id: int, now: datetime):
        self._session = session
        self._conversation = conversation_id
        self._now = now
        self._taken: set[str] | None = None

    def keep(self, kind: str, value: str) -> str:
        """Store `value` under a new token of the conversation; the token."""
        if self._taken is None:
            self._taken = set(
                TAKEN.execute(
                    self._session, {"conversation_id": self._conversation}
                ).scalars()
            )
        token = new_token(kind)
        while token in self._taken:
            token = new_token(kind)
        self._taken.add(token)
        INSERT_TOKEN.execute(
            self._session,
            {
                "conversation_id": self._conversation,
                "token": token,
                "kind": kind,
                "value": value,
                "created_at": self._now,
                "expires_at": self._now + TOKEN_TTL,
            },
        )
        return token

    def tokenize(self, text: str) -> str:
        """`text` with each span of personal data replaced by a new token."""
        return replace_personal_data(
            text, lambda span, typed: self.keep(span.kind, typed)
        )

    def tokenize_data(self, data: Any) -> Any:
        """`data` (JSON-like) with every string in it tokenized."""
        if isinstance(data, str):
            return self.tokenize(data)
        if isinstance(data, Mapping):
            return {key: self.tokenize_data(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.tokenize_data(item) for item in data]
        return data


def _has_personal_data(data: Any) -> bool:
    if isinstance(data, str):
        return bool(find_personal_data(data))
    if isinstance(data, Mapping):
        return any(_has_personal_data(value) for value in data.values())
    if isinstance(data, (list, tuple)):
        return any(_has_personal_data(item) for item in data)
    return False


def reveal_text(session: Session, pseudonym: str, text: str, now: datetime) -> str:
    """`text` with the tokens of the conversation Rasa knows under `pseudonym`
    replaced by their values (unknown or expired ones, and every token of an
    unknown conversation, stay as they are). One statement."""
    tokens = set(TOKEN_PATTERN.findall(text))
    if not tokens:
        return text
    values = dict(
        VALUES_OF.execute(
            session,
            {"pseudonym": pseudonym, "tokens": sorted(tokens), "now": now},
        ).all()
    )
    return TOKEN_PATTERN.sub(
        lambda match: str(values.get(match.group(), match.group())), text
    )


class Vault:
    """The token vault over a session factory (the gateway's and the actions')."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    @staticmethod
    def needs_tokens(text: str, metadata: Mapping[str, Any]) -> bool:
        """Whether `tokenize_turn` would change anything (no database: call it
        first and skip the transaction and the thread when it is False)."""
        return _has_personal_data(text) or _has_personal_data(metadata)

    def tokenize_turn(
        self, conversation_id: int, text: str, metadata: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A person's text and its metadata as Rasa may see them (one
        transaction; nothing is written when they hold no personal data)."""
        if not _has_personal_data(text) and not _has_personal_data(metadata):
            return text, dict(metadata)
        with self._sessions() as session, session.begin():
            keeper = _Keeper(session, conversation_id, self._clock())
            return keeper.tokenize(text), dict(keeper.tokenize_data(metadata))

    def keep(self, pseudonym: str, kind: str, value: str) -> str | None:
        """A token for a validated `value` of the conversation `pseudonym`
        (None outside the gateway: no such conversation)."""
        with self._sessions() as session, session.begin():
            conversation = conversation_of(session, pseudonym)
            if conversation is None:
                return None
            return _Keeper(session, conversation, self._clock()).keep(kind, value)

    def reveal(self, pseudonym: str, text: str) -> str:
        """`text` with the tokens of the conversation `pseudonym` revealed."""
        if not TOKEN_PATTERN.search(text):
            return text
        with read_session(self._sessions) as session:
            return reveal_text(session, pseudonym, text, self._clock())

    def purge(self) -> int:
        """Delete every expired token; how many."""
        with self._sessions() as session, session.begin():
            return purge_expired(session, self._clock())
