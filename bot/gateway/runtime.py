"""The gateway's running parts: engine, sessions, worker, outbox, NIK check,
handoff monitor, backlog monitor, privacy, mail queue and announcement loops.

Started by the app's lifespan (`Gateway.start`) and stopped on shutdown. Routes
reach it through `runtime(request)` (the console through `bot.hosting.host`) and
open one session per request with `bot.hosting.run_in_session`. Database calls
run in the loop's default executor, sized at start for every worker and send in
flight; Twilio's blocking sends have their own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from starlette.requests import Request

from bot import leases
from bot.channels.base import SMS, TELEGRAM, Channel, InboundMessage, Sender
from bot.channels.pacing import PacingStore, bot_id, make_pacer
from bot.channels.simulator import SimulatorSender
from bot.channels.sms import SmsChannel, TwilioSender
from bot.channels.telegram import TelegramChannel, TelegramSender
from bot.db import make_engine, make_sessionmaker
from bot.gateway.announce import LANES as ANNOUNCE_LANES
from bot.gateway.announce import AnnouncementSender
from bot.gateway.backlog import BacklogMonitor
from bot.gateway.health import ActionServerHealth
from bot.gateway.heartbeat import Heartbeat
from bot.gateway.options import GatewayOptions
from bot.gateway.outbox import LANES, OutboxSender
from bot.gateway.rasa_client import RasaClient
from bot.gateway.send_marks import SendMarks
from bot.gateway.wakeups import INBOX, NIK_CHECKS, OUTBOX, Wakeups
from bot.gateway.worker import ConversationWorker
from bot.group_commit import GroupCommit
from bot.handoff.hours import AgentHours
from bot.handoff.monitor import MONITOR_CONCURRENCY, HandoffMonitor
from bot.handoff.tickets import AgentsOnline, recent_agents
from bot.http_writes import install as install_headers_with_body
from bot.loops import describe_error
from bot.messages.inbox import lock_order, store_inbound
from bot.notify.email import make_email_sender
from bot.notify.queue import MailQueue
from bot.policy.programme import load_policy
from bot.policy.warm import warm_up
from bot.privacy.janitor import PrivacyJanitor
from bot.registration.desk import CODE_SECRET_PURPOSE
from bot.schema import upgrade
from bot.settings import Settings
from bot.verification.factory import make_nik_verifier
from bot.verification.nik import NikVerifier
from bot.verification.queue import NikCheckRunner

log = logging.getLogger(__name__)

REQUEST_THREADS = 8
"""Threads for the requests' database calls, beside the loops' ones."""


def default_channels() -> dict[str, Channel]:
    """The real channels: Telegram and SMS (simulated chats use them too)."""
    return {TELEGRAM: TelegramChannel(), SMS: SmsChannel()}


TELEGRAM_BURST = 5
"""Sends the bot's overall limit lets through at once."""


def default_senders(
    settings: Settings, options: GatewayOptions, pacing: PacingStore | None = None
) -> dict[str, Sender]:
    """A sender for each channel whose provider account is configured, paced
    through `pacing` (Redis, shared by every process) or within this process."""
    senders: dict[str, Sender] = {}
    if settings.telegram_enabled and settings.telegram_token:
        limiter = make_pacer(
            pacing,
            f"telegram:{bot_id(settings.telegram_token)}",
            settings.telegram_per_second,
            TELEGRAM_BURST,
            chat_per_second=settings.telegram_chat_per_second,
        )
        senders[TELEGRAM] = TelegramSender(
            settings, pool_size=options.outbox_concurrency, limiter=limiter
        )
    if settings.twilio_enabled and settings.twilio_from_number:
        rate = settings.twilio_per_second
        sms_limiter = (
            make_pacer(pacing, f"twilio:{settings.twilio_from_number}", rate, rate)
            if rate
            else None
        )
        senders[SMS] = TwilioSender(settings, limiter=sms_limiter)
    return senders


def database_threads(options: GatewayOptions) -> int:
    """Threads for blocking database calls: one per worker and send in flight, and
    some for requests, so no call waits behind another for a thread."""
    sends = options.outbox_concurrency * len(LANES)
    checks = options.nik_checks.concurrency
    return (
        options.worker_concurrency
        + sends
        + checks
        + MONITOR_CONCURRENCY
        + REQUEST_THREADS
        + 2  # the heartbeat and the backlog monitor
        + len(ANNOUNCE_LANES)
        + 1  # the announcement sender's lanes and its reminders
    )


async def _close(resource: object, method: str = "close") -> None:
    close = getattr(resource, method, None)
    if close is None:
        return
    result = close()
    if inspect.isawaitable(result):
        await result


WORKER_TASK = "gateway-worker"
HANDOFF_MONITOR_TASK = "gateway-handoff-monitor"


@dataclass
class Gateway:
    """Everything the routes and loops share while the app runs."""

    settings: Settings
    options: GatewayOptions
    engine: Engine
    sessions: sessionmaker
    writes: GroupCommit
    """The hot path's writes (intake, turn results, send results, delivery
    statuses), several in one transaction under load (`bot.group_commit`):
    one group commit for all of them, handed to the worker and the outbox, so
    the writes of one moment share one transaction and one thread, whatever
    their kind (three group commits, one per kind, cost a quarter more CPU a
    message: docs/benchmarks.md, "One group commit for the hot path")."""
    worker: ConversationWorker
    outbox: OutboxSender
    rasa: RasaClient
    actions: ActionServerHealth
    senders: Mapping[str, Sender]
    nik_checks: NikCheckRunner
    verifier: NikVerifier
    handoff_monitor: HandoffMonitor
    privacy: PrivacyJanitor
    tracker: Engine
    mail: MailQueue
    heartbeat: Heartbeat
    backlog: BacklogMonitor
    wakeups: Wakeups
    announcer: AnnouncementSender
    pacing: PacingStore | None = None
    """The Redis the providers' pacing shares (REDIS_URL), None without it."""
    marks: SendMarks | None = None
    """Where sends are marked as leaving (REDIS_URL), None without it."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    beating: asyncio.Task[None] | None = None
    """The heartbeat's task: stopped last, after the loops drained."""

    @classmethod
    async def start(
        cls,
        settings: Settings,
        options: GatewayOptions,
        channels: Mapping[str, Channel] | None = None,
        senders: Mapping[str, Sender] | None = None,
        verifier: NikVerifier | None = None,
        agents_online: AgentsOnline | None = None,
    ) -> Gateway:
        """Migrate the database and read the texts, then start the worker,
        outbox, NIK check and handoff monitor loops. `verifier` replaces the
        one the settings choose (tests); the gateway closes it at stop either
        way. `agents_online` counts the agents online for expected waits
        (default: estimated from the tickets). Its HTTP clients send each
        request's headers with its body (`bot.http_writes`)."""
        install_headers_with_body()
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(
                max_workers=database_threads(options), thread_name_prefix="gateway-db"
            )
        )
        await asyncio.to_thread(upgrade, settings.database_url)
        await asyncio.to_thread(warm_up)  # the texts, before the first turn
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        owner = leases.owner_id()
        writes = GroupCommit(sessions)
        wakeups = Wakeups(engine, options.listen_poll_interval)
        heartbeat = Heartbeat(
            sessions,
            owner,
            options.heartbeat_interval,
            options.heartbeat_timeout,
            on_peer_lost=wakeups.wake_all,
        )
        await asyncio.to_thread(heartbeat.register)  # before anything is claimed
        rasa = RasaClient(settings.rasa_url, timeout=options.rasa_timeout)
        actions = ActionServerHealth(
            settings.actions_url,
            ttl=options.actions_health_ttl,
            timeout=options.actions_health_timeout,
        )
        pacing = PacingStore(settings.redis_url) if settings.redis_url else None
        marks = SendMarks(settings.redis_url) if settings.redis_url else None
        if marks is not None:
            await marks.start()
        if senders is None:
            senders = default_senders(settings, options, pacing)
        outbox = OutboxSender(
            sessions,
            senders,
            SimulatorSender(),
            owner,
            options,
            marks=marks,
            writes=writes,
        )
        if channels is None:
            channels = default_channels()
        worker = ConversationWorker(
            sessions,
            channels,
            rasa,
            owner,
            options,
            on_outbox=outbox.notify,
            actions=actions,
            writes=writes,
            sends=outbox,
        )
        if verifier is None:
            verifier = make_nik_verifier(settings, sessions, load_policy())
        nik_checks = NikCheckRunner(
            sessions,
            verifier,
            owner,
            options.nik_checks,
            grace=options.shutdown_grace,
            on_notification=worker.notify,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        handoff_monitor = HandoffMonitor(
            sessions,
            AgentHours.from_settings(settings),
            options.handoff_interval,
            options.shutdown_grace,
            on_notification=worker.notify,
            agents_online=agents_online or recent_agents,
        )
        wakeups.attach(worker, INBOX)
        wakeups.attach(outbox, OUTBOX)
        wakeups.attach(nik_checks, NIK_CHECKS, relax=False)  # retries fall due
        tracker = make_engine(settings.tracker_store_url)
        privacy = PrivacyJanitor(
            sessions,
            settings.secret_for(CODE_SECRET_PURPOSE),
            retention_days=settings.retention_days,
            tracker=tracker,
            outbox_dir=None if settings.smtp_url else settings.email_outbox_dir,
        )
        mail = MailQueue(
            sessions,
            make_email_sender(settings),
            owner=owner,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        backlog = BacklogMonitor(sessions, channels, options, on_outbox=outbox.notify)
        announcer = AnnouncementSender(
            sessions,
            channels,
            senders,
            settings,
            pacing,
            on_outbox=outbox.notify,
            grace=options.shutdown_grace,
        )
        gateway = cls(
            settings=settings,
            options=options,
            engine=engine,
            sessions=sessions,
            writes=writes,
            worker=worker,
            outbox=outbox,
            rasa=rasa,
            actions=actions,
            senders=dict(senders),
            nik_checks=nik_checks,
            verifier=verifier,
            handoff_monitor=handoff_monitor,
            privacy=privacy,
            tracker=tracker,
            mail=mail,
            heartbeat=heartbeat,
            backlog=backlog,
            wakeups=wakeups,
            announcer=announcer,
            pacing=pacing,
            marks=marks,
        )
        gateway.beating = asyncio.create_task(heartbeat.run(), name="gateway-heartbeat")
        gateway.tasks = [
            asyncio.create_task(worker.run(), name=WORKER_TASK),
            asyncio.create_task(outbox.run(), name="gateway-outbox"),
            asyncio.create_task(nik_checks.run(), name="gateway-nik-checks"),
            asyncio.create_task(handoff_monitor.run(), name=HANDOFF_MONITOR_TASK),
            asyncio.create_task(privacy.run(), name="gateway-privacy"),
            asyncio.create_task(mail.run(), name="gateway-mail"),
            asyncio.create_task(backlog.run(), name="gateway-backlog"),
            asyncio.create_task(announcer.run(), name="gateway-announce"),
        ]
        if wakeups.enabled:
            gateway.tasks.append(
                asyncio.create_task(wakeups.run(), name="gateway-wakeups")
            )
        log.info("gateway started as %s", owner)
        return gateway

    async def stop(self) -> None:
        """Stop claiming, let work in flight finish, release leases, retire the
        heartbeat (what is left is free at once), close. The outbox stops after
        the worker's last turns: the replies they lease for themselves are sent
        (and the turns' other replies claimed) before it does."""
        self.worker.stop()
        self.nik_checks.stop()
        self.handoff_monitor.stop()
        self.privacy.stop()
        self.mail.stop()
        self.backlog.stop()
        self.announcer.stop()
        self.wakeups.stop()
        turns = [task for task in self.tasks if task.get_name() == WORKER_TASK]
        await asyncio.gather(*turns, return_exceptions=True)
        self.outbox.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        log.info(
            "group commit: %d writes in %d transactions",
            self.writes.jobs,
            self.writes.batches,
        )
        self.heartbeat.stop()
        if self.beating is not None:
            await asyncio.gather(self.beating, return_exceptions=True)
        try:
            await asyncio.to_thread(self.heartbeat.retire)
        except Exception as exc:  # the leases left run out with the heartbeat
            log.error("heartbeat not retired: %s", describe_error(exc))
        await self.rasa.aclose()
        await self.actions.aclose()
        await _close(self.verifier, "aclose")
        for sender in self.senders.values():
            await _close(sender)
        if self.pacing is not None:
            await _close(self.pacing, "aclose")
        if self.marks is not None:
            await _close(self.marks, "aclose")
        self.engine.dispose()
        self.tracker.dispose()
        log.info("gateway stopped")

    async def store(self, message: InboundMessage) -> bool:
        """Store an inbound message (False: a duplicate) and wake the worker;
        it is committed when this returns (with other writes of this moment)."""
        stored = await self.writes.run(
            functools.partial(
                store_inbound,
                message=message,
                key=self.settings.pseudonym_key,
                max_pending=self.options.max_pending_per_conversation,
            ),
            order=lock_order(message.channel, message.address),
        )
        if stored:
            self.worker.notify()
        log.debug(
            "%s message %s %s",
            message.channel,
            message.provider_id,
            "stored" if stored else "was a duplicate",
        )
        return stored


def runtime(request: Request) -> Gateway:
    """The running gateway of the app serving this request."""
    gateway: Gateway = request.app.state.gateway
    return gateway
