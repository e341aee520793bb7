"""kill -9 of a gateway in the middle of an announcement: nothing lost, nothing
repeated, nothing sent to an opted-out member.

Runs `bench.announce` small: 800 members on PostgreSQL, two real gateway
processes with the real python-telegram-bot and twilio clients against the
local fakes, a person chatting meanwhile. The fakes answer each request 0.3 s
after taking it, so when 30% of the messages have reached them and one gateway
is SIGKILLed, the sends it has in flight have arrived but their ids are not
stored (each such row is looked up, found and adopted, not sent again); it is
started again, and the run ends when every announcement row is finished. The
fakes then hold exactly one message per reachable member.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import announce
from tests.postgres import postgres_database

MEMBERS = 800


def test_an_announcement_survives_a_killed_gateway_exactly_once(
    tmp_path: Path,
) -> None:
    with postgres_database("announce_kill") as url:
        args = argparse.Namespace(
            members=MEMBERS,
            opted_out=0.1,
            telegram_rate=100,
            sms_rate=100,
            chatters=1,
            baseline=1.0,
            kill_at=0.3,
            no_kill=False,
            answer_delay=0.3,
            database_url=url,
            redis_url=None,
            timeout=300.0,
        )
        result = announce.run(args, tmp_path)
    once = result["exactly_once"]
    expected = once["expected"]
    assert result["duplicates"] == [], result["duplicates"]  # who, when, which rows
    assert result["finished"], result
    assert result["kill"] is not None and result["kill"]["sent"] < expected
    assert once == {
        "expected": expected,
        "opted_out": MEMBERS - expected,
        "lost": 0,
        "duplicated": 0,
        "sent_to_opted_out": 0,
        "to_strangers": 0,
    }
    assert result["counts"] == {"sent": expected, "skipped": MEMBERS - expected}
    assert result["chat"]["unanswered"] == 0
