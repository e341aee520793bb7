"""The token vault on both databases: tokens per conversation, revealed only
in it and only until they expire, deleted with their conversation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.db import make_engine, make_sessionmaker
from bot.messages.models import Conversation
from bot.privacy.models import PersonalToken
from bot.privacy.vault import TOKEN_PATTERN, TOKEN_TTL, Vault
from bot.schema import upgrade
from tests.postgres import BACKENDS, fresh_database

START = datetime(2026, 12, 5, 8, 0)
TEXT = "nik 3174 0115 0890 0001 lahir 15-08-1990 email budi@gmail.com"


@pytest.mark.parametrize("backend", BACKENDS)
def test_tokens_live_in_their_conversation_until_they_expire(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path, "vault_test") as url:
        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        now = [START]
        try:
            with sessions() as session, session.begin():
                for name in ("a", "b"):
                    session.add(
                        Conversation(
                            channel="sms", address=f"+62812{name}", pseudonym=name
                        )
                    )
            with sessions() as session:
                ids = dict(
                    session.execute(
                        select(Conversation.pseudonym, Conversation.id)
                    ).all()
                )
            vault = Vault(sessions, clock=lambda: now[0])

            handed, metadata = vault.tokenize_turn(
                ids["a"], TEXT, {"x": ["+6281234567890"]}
            )
            assert len(TOKEN_PATTERN.findall(handed)) == 3
            assert (
                "3174" not in handed
                and "1990-08" not in handed
                and "budi" not in handed
            )
            assert TOKEN_PATTERN.fullmatch(metadata["x"][0])
            assert vault.reveal("a", handed) == TEXT
            assert vault.reveal("b", handed) == handed  # another conversation's
            assert vault.tokenize_turn(ids["a"], "halo", {}) == ("halo", {})

            kept = vault.keep("a", "nik", "3174011508900001")
            assert kept and vault.reveal("a", kept) == "3174011508900001"
            assert vault.keep("nobody", "nik", "3174011508900001") is None

            now[0] = START + TOKEN_TTL + timedelta(seconds=1)
            assert vault.reveal("a", handed) == handed
            vault.keep("b", "date", "1990-08-15")  # b's turn leaves a's rows be
            assert vault.purge() == 5  # the privacy loop's purge
            with sessions() as session, session.begin():
                session.execute(delete(Conversation).where(Conversation.id == ids["b"]))
            with sessions() as session:
                left = session.execute(select(func.count()).select_from(PersonalToken))
                assert left.scalar_one() == 0
        finally:
            engine.dispose()
