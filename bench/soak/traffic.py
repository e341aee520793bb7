"""The closed-loop traffic through the two gateways, and the SIGKILLs meanwhile."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.gateway import (
    SMS,
    SMS_PATH,
    TELEGRAM_PATH,
    Message,
    _sms_params,
    _telegram_update,
)
from bench.http_client import client_session, post_status
from bench.soak.people import (
    Person,
)
from bench.soak.stack import (
    TELEGRAM_SECRET,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    Deliveries,
    Service,
)

POST_TIMEOUT = 10.0  # one webhook request
POST_DEADLINE = 90.0  # a webhook retried (on the other gateway) for this long
REPLY_TIMEOUT = 180.0  # a person waits this long for an answer (lease is 120 s)
MARKER_TIMEOUT = 45.0  # extra wait for an expected later message (NIK result)
PAIR_EXTRA = 20.0  # a pair answered as one (a burst): wait this long for more
SETTLE = 0.5  # quiet time after a reply before the person types again
SETTLE_MAX = 3.0
THINK = (0.1, 0.8)  # seconds a person takes to type the next message
DRAIN_TIMEOUT = 120.0  # after the traffic: wait for the outbox to empty
AFTER_DRAIN = 5.0  # then listen for late duplicates
KILL_GAP = 5.0  # at least this long between a restart being ready and a kill
POLL = 0.05
CODE = re.compile(r"\b(\d{6})\b")
TELEGRAM_UPDATE_IDS = itertools.count(80_000_000)
"""Telegram's update ids: one series per process, as a bot's are; a second
driver of the same run (a round of history before the measured phase) must
not repeat the first's, or the gateway takes each for a redelivery."""
KINDS = ("gateway", "rasa", "actions")
IN_FLIGHT_WAIT = 10.0  # a gateway kill waits this long at most for a send in flight
IN_FLIGHT_POLL = 0.01


@dataclass
class Sent:
    """One inbound message posted, and what happened to its webhook."""

    person: int
    seq: int
    channel: str
    address: str
    text: str
    provider_id: str
    kind: str
    posted_at: float = 0.0
    status: int = 0
    attempts: int = 0


@dataclass
class Kill:
    """One SIGKILL: what, when, who was waiting for an answer then."""

    kind: str
    target: str
    at: float
    waiting: dict[str, float]  # address -> when that person posted
    ready_after_s: float = 0.0
    wall: float = field(default_factory=time.time)
    """The kill's wall-clock time (the database's times are wall-clock UTC)."""


@dataclass
class Traffic:
    """What the people did, and the faults injected meanwhile."""

    sent: list[Sent] = field(default_factory=list)
    waiting: dict[str, float] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    email_requests: Counter[str] = field(default_factory=Counter)
    handoff_requests: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    unsent: int = 0
    """Messages of the scripts never sent because the run's deadline passed."""
    missing_codes: int = 0
    started: float = 0.0
    ended: float = 0.0


class Driver:
    """People typing, closed loop, through the two gateways."""

    def __init__(
        self,
        urls: list[str],
        deliveries: Deliveries,
        mail: Path,
        rng: random.Random,
        deadline: float,
        think: tuple[float, float] = THINK,
        telegram: Any = None,
    ) -> None:
        """`telegram`: the fake Bot API, which gives each Telegram message its id
        in the chat (`person_writes`: one count per chat for both sides, as the
        outbox's lookup of a send in doubt expects)."""
        from twilio.request_validator import RequestValidator

        self.urls = urls
        self.public = urls[0]
        self.deliveries = deliveries
        self.mail = mail
        self.rng = rng
        self.deadline = deadline
        self.think = think
        self.telegram = telegram
        self.traffic = Traffic()
        self.validator = RequestValidator(TWILIO_TOKEN)
        self._ids = 0
        self._client: aiohttp.ClientSession | None = None

    @property
    def client(self) -> aiohttp.ClientSession:
        """The webhooks' HTTP session, made in the running loop on first use."""
        if self._client is None:
            self._client = client_session(POST_TIMEOUT)
        return self._client

    def _request(self, sent: Sent) -> tuple[str, bytes, dict[str, str]]:
        self._ids += 1
        message = Message(
            index=self._ids, user=sent.person, seq=sent.seq, channel=sent.channel,
            address=sent.address, text=sent.text, provider_id=sent.provider_id,
        )  # fmt: skip
        if sent.channel == SMS:
            params = _sms_params(message)
            params["AccountSid"] = TWILIO_SID
            params["To"] = TWILIO_FROM
            signature = self.validator.compute_signature(self.public + SMS_PATH, params)
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            }
            return SMS_PATH, urlencode(params).encode("ascii"), headers
        chat_message_id = (
            None
            if self.telegram is None
            else self.telegram.person_writes(sent.address, sent.text)
        )
        update = _telegram_update(message, chat_message_id)
        body = json.dumps(update).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        }
        return TELEGRAM_PATH, body, headers

    async def post(self, sent: Sent, first: int) -> None:
        """POST as the provider does: retried (on the other gateway) while the
        answer is a transport error or 5xx, for at most POST_DEADLINE seconds."""
        path, body, headers = self._request(sent)
        sent.posted_at = time.monotonic()
        stop = sent.posted_at + POST_DEADLINE
        target = first
        while True:
            sent.attempts += 1
            sent.status = await post_status(
                self.client, self.urls[target] + path, data=body, headers=headers
            )
            if 200 <= sent.status < 500 or time.monotonic() > stop:
                return
            target = (target + 1) % len(self.urls)
            await asyncio.sleep(min(0.2 * sent.attempts, 2.0))

    def _new(self, person: Person, seq: int, text: str, kind: str) -> Sent:
        sms = person.channel == SMS
        provider_id = f"SM{uuid.uuid4().hex}" if sms else str(next(TELEGRAM_UPDATE_IDS))
        sent = Sent(person.index, seq, person.channel, person.address, text,
                    provider_id, kind)  # fmt: skip
        self.traffic.sent.append(sent)
        return sent

    async def _code(self, email: str) -> str:
        """The newest 6-digit code e-mailed to `email` (waits a little)."""
        from bot.notify.mailbox import outbox_files, read_message, text_body

        stop = time.monotonic() + 20.0
        while time.monotonic() < stop:
            for path in reversed(outbox_files(self.mail)):
                message = read_message(path)
                if message["To"] == email:
                    found = CODE.search(text_body(message))
                    if found:
                        return found.group(1)
            await asyncio.sleep(0.3)
        self.traffic.missing_codes += 1
        return "000000"

    async def _wait(self, address: str, before: int, replies: int, expect: str) -> None:
        """Until `replies` new answers arrived (wait notices are not answers; a
        pair answered as one gets `PAIR_EXTRA` s for a second answer), and one
        containing `expect`, then a moment of quiet; bounded."""
        start = time.monotonic()
        first: float | None = None
        while time.monotonic() - start < REPLY_TIMEOUT:
            got = len(self.deliveries.answers(address)) - before
            if got >= replies:
                break
            if got > 0:
                first = first or time.monotonic()
                if time.monotonic() - first >= PAIR_EXTRA:
                    break
            await asyncio.sleep(POLL)
        else:
            self.traffic.timeouts += 1
            return
        if expect:
            stop = time.monotonic() + MARKER_TIMEOUT
            while time.monotonic() < stop and not any(
                expect.lower() in d.text.lower()
                for d in self.deliveries.answers(address)[before:]
            ):
                await asyncio.sleep(POLL * 4)
        self.traffic.waiting.pop(address, None)  # answered: no longer waiting
        quiet_until = time.monotonic() + SETTLE
        stop = time.monotonic() + SETTLE_MAX
        seen = self.deliveries.count(address)
        while time.monotonic() < min(quiet_until, stop):
            await asyncio.sleep(POLL * 2)
            if self.deliveries.count(address) != seen:
                seen = self.deliveries.count(address)
                quiet_until = time.monotonic() + SETTLE

    async def person(self, person: Person) -> None:
        """One person's script, each message after the answer to the last."""
        for seq, step in enumerate(person.steps):
            if time.monotonic() > self.deadline:
                self.traffic.unsent += len(person.steps) - seq
                return
            text = step.text
            if step.kind == "code":
                assert person.identity is not None
                text = await self._code(person.identity.email)
            elif step.kind == "email":
                self.traffic.email_requests[text] += 1
            elif step.kind == "handoff":
                self.traffic.handoff_requests[person.address] += 1
            before = len(self.deliveries.answers(person.address))
            first = self.rng.randrange(len(self.urls))
            sent = [self._new(person, seq, text, step.kind)]
            if step.pair:
                sent.append(self._new(person, seq, step.pair, "pair"))
            self.traffic.waiting[person.address] = time.monotonic()
            await asyncio.gather(
                *(
                    self.post(s, (first + i) % len(self.urls))
                    for i, s in enumerate(sent)
                )
            )
            await self._wait(person.address, before, len(sent), step.expect)
            self.traffic.waiting.pop(person.address, None)
            await asyncio.sleep(self.rng.uniform(*self.think))

    async def run(self, people: list[Person], concurrency: int) -> Traffic:
        """Everyone's script, at most `concurrency` people at once."""
        gate = asyncio.Semaphore(concurrency)

        async def one(person: Person) -> None:
            async with gate:
                await self.person(person)

        self.traffic.started = time.monotonic()
        try:
            await asyncio.gather(*(one(p) for p in people))
        finally:
            self.traffic.ended = time.monotonic()
            if self._client is not None:
                await self._client.close()
        return self.traffic


async def inject_faults(
    services: dict[str, Service],
    driver: Driver,
    total: int,
    per_kind: int,
    rng: random.Random,
    done: asyncio.Event,
) -> None:
    """SIGKILL each kind `per_kind` times at random points of the traffic (by
    messages sent, plus a random fraction of a second), restarting each at once;
    one at a time, each after the last restart is ready. A gateway is killed
    while the fake Bot API holds a send in flight (`IN_FLIGHT_WAIT` at most),
    so the kill may cut it off: the hardest case for the outbox's lookup."""
    plan = [kind for kind in KINDS for _ in range(per_kind)]
    rng.shuffle(plan)
    slots = len(plan)
    points = [
        int(total * (0.15 + 0.7 * (i + rng.random() * 0.8) / max(slots, 1)))
        for i in range(slots)
    ]
    traffic = driver.traffic
    for kind, point in zip(plan, points, strict=True):
        while len(traffic.sent) < point and not done.is_set():
            await asyncio.sleep(0.1)
        if done.is_set():
            return
        await asyncio.sleep(rng.random())
        if kind == "gateway":
            await _send_in_flight(driver)
        name = rng.choice(sorted(n for n in services if n.startswith(kind)))
        service = services[name]
        at = time.monotonic()
        service.kill()
        kill = Kill(kind, name, at, dict(traffic.waiting))
        traffic.kills.append(kill)
        print(f"  killed {name} at {at - traffic.started:.1f}s "
              f"({len(kill.waiting)} people waiting)", flush=True)  # fmt: skip
        service.start()
        await service.ready()
        kill.ready_after_s = round(time.monotonic() - at, 2)
        await asyncio.sleep(KILL_GAP)


async def _send_in_flight(driver: Driver) -> None:
    """Until the fake Bot API is in the middle of a send (or `IN_FLIGHT_WAIT`
    seconds passed, or there is no such fake)."""
    stop = time.monotonic() + IN_FLIGHT_WAIT
    while driver.telegram is not None and time.monotonic() < stop:
        if driver.telegram.sends_in_flight > 0:
            return
        await asyncio.sleep(IN_FLIGHT_POLL)


async def drain(db_url: str, timeout: float) -> None:
    """Wait until no inbox or outbox row is pending (bounded), then a while more
    for late duplicates."""
    from sqlalchemy import func, select

    from bot.db import make_engine
    from bot.messages.models import (
        INBOX_PENDING,
        OUTBOX_PENDING,
        InboxMessage,
        OutboxMessage,
    )

    engine = make_engine(db_url)

    def pending() -> int:
        with engine.connect() as c:
            inbox = c.execute(select(func.count()).where(
                InboxMessage.status == INBOX_PENDING)).scalar_one()  # fmt: skip
            outbox = c.execute(select(func.count()).where(
                OutboxMessage.status == OUTBOX_PENDING)).scalar_one()  # fmt: skip
        return int(inbox) + int(outbox)

    stop = time.monotonic() + timeout
    try:
        while time.monotonic() < stop and await asyncio.to_thread(pending) > 0:
            await asyncio.sleep(1.0)
    finally:
        engine.dispose()
    await asyncio.sleep(AFTER_DRAIN)
