"""The closed-loop people: through the gateway's signed webhooks (a person types
again once the whole answer is delivered), or straight to a Rasa REST webhook."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gateway import percentile
from bench.http_client import client_session, post_status
from bench.soak.people import Person
from bench.soak.stack import Deliveries
from bench.soak.traffic import MARKER_TIMEOUT, REPLY_TIMEOUT, Driver, Sent

WATCH_INTERVAL = 0.05  # how often the turn watcher looks at the database


@functools.cache
def _turns_query() -> Any:
    """Per address: its messages waiting and its replies not failed (built once:
    the watcher asks twenty times a second). The channels are named so that the
    database finds each address by its unique index (channel, address), not by
    reading every conversation: on PostgreSQL each read was a sequential scan,
    the load generator's cost counted as the database's."""
    from sqlalchemy import and_, bindparam, func, select

    from bot.channels.base import SMS, TELEGRAM
    from bot.messages.models import (
        INBOX_PENDING,
        OUTBOX_FAILED,
        Conversation,
        InboxMessage,
        OutboxMessage,
    )

    pending = (
        select(func.count())
        .where(and_(InboxMessage.conversation_id == Conversation.id,
                    InboxMessage.status == INBOX_PENDING))
        .scalar_subquery()
    )  # fmt: skip
    replies = (
        select(func.count())
        .where(and_(OutboxMessage.conversation_id == Conversation.id,
                    OutboxMessage.status != OUTBOX_FAILED))
        .scalar_subquery()
    )  # fmt: skip
    return select(Conversation.address, pending, replies).where(
        Conversation.channel.in_((SMS, TELEGRAM)),
        Conversation.address.in_(bindparam("addresses", expanding=True)),
    )


REST_CODE = "123456"  # the REST channel registers nobody: no mail is sent
REST_TIMEOUT = 120.0


@dataclass
class Outcome:
    """What one phase measured: the window and each message's time to reply."""

    messages: int = 0
    window_s: float = 0.0
    to_reply_s: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0
    texts: list[str] = field(default_factory=list)  # of each time in to_reply_s
    to_answer_s: list[float] = field(default_factory=list)
    """To the last reply before the person's next message: the whole answer (the
    first reply may be the gateway's notice of a long wait)."""
    turns: list[str] = field(default_factory=list)
    """What each message of `to_reply_s` was (`Step.turn`), where known."""
    watcher_reads: int = 0
    """The load generator's own reads of the database (the turn watcher's): a
    transaction each, left out of the database's counts."""
    person_s: float = 0.0
    """Seconds each person was in the run (first post to last reply), summed:
    over the window, how many people were in flight on average (fewer than
    `--in-flight` while the run fills and while its last scripts end)."""

    def summary(self) -> dict[str, Any]:
        """Messages per second and time to reply p50/p95/p99 (ms)."""
        replies = self.to_reply_s
        return {
            "messages": self.messages,
            "window_s": round(self.window_s, 2),
            "messages_per_s": round(self.messages / self.window_s, 1)
            if self.window_s
            else 0.0,
            **{
                f"p{q}_ms": round(percentile(replies, q) * 1000, 1)
                for q in (50, 95, 99)
            },
            **{
                f"answer_p{q}_ms": round(percentile(self.to_answer_s, q) * 1000, 1)
                for q in (50, 95, 99)
                if self.to_answer_s
            },
            "in_flight_mean": round(self.person_s / self.window_s, 1)
            if self.window_s
            else 0.0,
            "answered": len(replies),
            "by_turn": self.by_turn(),
            "slowest": [
                (round(t * 1000), text)
                for t, text in sorted(zip(replies, self.texts, strict=True))[-5:][::-1]
            ],
            "timeouts": self.timeouts,
            "errors": self.errors,
        }

    def by_turn(self) -> dict[str, dict[str, float]]:
        """Per kind of turn: how many, time to reply p50/p95 (ms) and its share
        of the messages over the phase's p95 (where the tail comes from)."""
        if not self.turns:
            return {}
        if len(self.turns) != len(self.to_reply_s):
            raise ValueError("a turn kind for every time to reply, or none")
        tail = percentile(self.to_reply_s, 95)
        groups: dict[str, list[float]] = {}
        for turn, seconds in zip(self.turns, self.to_reply_s, strict=True):
            groups.setdefault(turn, []).append(seconds)
        over = sum(1 for t in self.to_reply_s if t > tail) or 1
        return {
            turn: {
                "count": len(times),
                "p50_ms": round(percentile(times, 50) * 1000, 1),
                "p95_ms": round(percentile(times, 95) * 1000, 1),
                "tail_share": round(sum(1 for t in times if t > tail) / over, 3),
            }
            for turn, times in sorted(groups.items())
        }


class TurnWatch:
    """Per waiting address: the inbox messages still pending and the replies the
    gateway stored, read from the database every WATCH_INTERVAL (one query)."""

    def __init__(self, db_url: str) -> None:
        from bot.db import make_engine

        self.engine = make_engine(db_url)
        self.waiting: set[str] = set()
        self.read_at = 0.0  # when the last completed read started
        self.state: dict[str, tuple[int, int]] = {}  # address -> (pending, replies)
        self.reads = 0

    def _read(self, addresses: list[str]) -> dict[str, tuple[int, int]]:
        with self.engine.connect() as connection:
            return {
                row[0]: (int(row[1]), int(row[2]))
                for row in connection.execute(_turns_query(), {"addresses": addresses})
            }

    async def run(self, stop: asyncio.Event, on_read: Callable[[], None]) -> None:
        """Read while the traffic runs; `on_read` after each read."""
        while not stop.is_set():
            if self.waiting:
                started = time.monotonic()
                self.state = await asyncio.to_thread(self._read, list(self.waiting))
                self.read_at = started
                self.reads += 1
                on_read()
            await asyncio.sleep(WATCH_INTERVAL)
        self.engine.dispose()

    def settled(self, address: str, acked_at: float, delivered: int) -> bool:
        """Every message of `address` handled and every stored reply delivered,
        in a read that started after the last message was stored."""
        if self.read_at <= acked_at or address not in self.state:
            return False
        pending, replies = self.state[address]
        return pending == 0 and delivered >= replies


class GatewayDriver(Driver):
    """The soak's people without think time and without the soak's quiet wait: a
    person types again as soon as the turn is handled and its replies delivered."""

    def __init__(
        self, urls: list[str], deliveries: Deliveries, mail: Path, watch: TurnWatch,
        deadline: float,
    ) -> None:  # fmt: skip
        import random

        rng = random.Random(2027)  # noqa: S311 (which gateway gets a post)
        super().__init__(urls, deliveries, mail, rng, deadline, think=(0.0, 0.0))
        self.watch = watch
        self.acked: dict[str, float] = {}
        self._changed: dict[str, asyncio.Event] = {}
        """Per waiting address: set when a reply came or the watcher read."""

    def listen(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Wake a waiting person when a reply to them is recorded (the fakes
        record in their own threads); returns the function that stops it."""
        return self.deliveries.listen(
            lambda address: loop.call_soon_threadsafe(self._wake, address)
        )

    def _wake(self, address: str) -> None:
        changed = self._changed.get(address)
        if changed is not None:
            changed.set()

    def wake_all(self) -> None:
        """The watcher read: everyone waiting looks again."""
        for changed in self._changed.values():
            changed.set()

    async def post(self, sent: Sent, first: int) -> None:
        """Post, and note when the gateway stored it (for the turn watcher)."""
        self.watch.waiting.add(sent.address)
        await super().post(sent, first)
        self.acked[sent.address] = time.monotonic()

    async def _wait(self, address: str, before: int, replies: int, expect: str) -> None:
        start = time.monotonic()
        acked = self.acked.get(address, start)
        changed = self._changed.setdefault(address, asyncio.Event())
        try:
            while True:
                changed.clear()
                if self.watch.settled(address, acked, self.deliveries.count(address)):
                    break
                left = REPLY_TIMEOUT - (time.monotonic() - start)
                if left <= 0:
                    self.traffic.timeouts += 1
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
            if expect:
                stop = time.monotonic() + MARKER_TIMEOUT
                while time.monotonic() < stop and not any(
                    expect.lower() in d.text.lower()
                    for d in self.deliveries.to(address)[before:]
                ):
                    await asyncio.sleep(0.05)
        finally:
            self.watch.waiting.discard(address)


async def through_gateway(
    urls: list[str], deliveries: Deliveries, mail: Path, db_url: str,
    people: list[Person], timeout: float, in_flight: int | None = None,
) -> Outcome:  # fmt: skip
    """Everyone through the gateways, `in_flight` people at once (default: all;
    a person whose script ends is replaced by the next); time to the first
    reply."""
    watch = TurnWatch(db_url)
    stop = asyncio.Event()
    driver = GatewayDriver(urls, deliveries, mail, watch, time.monotonic() + timeout)
    unlisten = driver.listen(asyncio.get_running_loop())
    watcher = asyncio.create_task(watch.run(stop, driver.wake_all))
    try:
        traffic = await driver.run(people, in_flight or len(people))
    finally:
        unlisten()
        stop.set()
        await watcher
    outcome = Outcome(len(traffic.sent), traffic.ended - traffic.started)
    following = _next_posts(traffic.sent)
    steps = {p.index: p.steps for p in people}
    for index, sent in enumerate(traffic.sent):
        after = [d.at for d in deliveries.to(sent.address) if d.at >= sent.posted_at]
        if after and sent.status == 200:
            outcome.to_reply_s.append(after[0] - sent.posted_at)
            turn = [at for at in after if at < following[index]]
            outcome.to_answer_s.append((turn or after[:1])[-1] - sent.posted_at)
            outcome.texts.append(f"{sent.kind or 'text'}: {sent.text[:30]}")
            outcome.turns.append(steps[sent.person][sent.seq].turn)
        elif sent.status != 200:
            outcome.errors += 1
    outcome.timeouts = traffic.timeouts
    outcome.watcher_reads = watch.reads
    outcome.person_s = _person_seconds(traffic.sent, deliveries)
    return outcome


def _person_seconds(sent: list[Sent], deliveries: Deliveries) -> float:
    """Each person's first post to the last reply to them (or their last post,
    if none came after it), summed."""
    spans: dict[str, tuple[float, float]] = {}
    for s in sent:
        first, last = spans.get(s.address, (s.posted_at, s.posted_at))
        spans[s.address] = (min(first, s.posted_at), max(last, s.posted_at))
    total = 0.0
    for address, (first, last) in spans.items():
        replies = [d.at for d in deliveries.to(address) if d.at >= last]
        total += max(replies, default=last) - first
    return total


def _next_posts(sent: list[Sent]) -> list[float]:
    """For each message, when its person posted the next step (infinity if none;
    the two messages of a pair are one step)."""
    steps: dict[str, list[tuple[int, float]]] = {}
    for s in sent:
        steps.setdefault(s.address, []).append((s.seq, s.posted_at))
    return [
        min((t for seq, t in steps[s.address] if seq > s.seq), default=math.inf)
        for s in sent
    ]


async def through_rest(
    rasa_url: str, tag: str, people: list[Person], timeout: float,
    in_flight: int | None = None,
) -> Outcome:  # fmt: skip
    """Everyone to Rasa's REST webhook, `in_flight` people at once (default:
    all); the answer is the HTTP response."""
    outcome = Outcome()
    deadline = time.monotonic() + timeout
    async with client_session(REST_TIMEOUT, rasa_url) as client:

        async def one(sender: str, text: str, turn: str) -> None:
            outcome.messages += 1
            started = time.monotonic()
            status = await post_status(
                client,
                "/webhooks/rest/webhook",
                json={"sender": sender, "message": text},
            )
            if not 200 <= status < 300:
                outcome.errors += 1
                return
            outcome.to_reply_s.append(time.monotonic() - started)
            outcome.texts.append(text[:30])
            outcome.turns.append(turn)

        slots = asyncio.Semaphore(in_flight or len(people))

        async def person(p: Person) -> None:
            async with slots:
                began = time.monotonic()
                await script(p)
                outcome.person_s += time.monotonic() - began

        async def script(p: Person) -> None:
            sender = f"{tag}-{p.channel}-{p.address}"
            for step in p.steps:
                if time.monotonic() > deadline:
                    outcome.timeouts += 1
                    return
                text = REST_CODE if step.kind == "code" else step.text
                texts = [text, step.pair] if step.pair else [text]
                await asyncio.gather(*(one(sender, t, step.turn) for t in texts))

        started = time.monotonic()
        await asyncio.gather(*(person(p) for p in people))
        outcome.window_s = time.monotonic() - started
    return outcome
