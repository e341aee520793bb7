"""Tuning of the gateway's loops; the defaults suit production, tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.leases import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT
from bot.loops import SHUTDOWN_MARGIN
from bot.verification.options import NikCheckOptions


@dataclass(frozen=True)
class GatewayOptions:
    """Intervals, leases, timeouts, retries and concurrency of the gateway."""

    poll_interval: float = 0.5
    """Seconds between looks for work when nothing wakes the loops: SQLite, or
    PostgreSQL while this process's listener is not connected."""
    listen_poll_interval: float = 2.0
    """The same while the listener is connected (`bot.gateway.wakeups`): other
    processes' work wakes the loops at once, work put off by this process
    (retries, paced sends) wakes them when it falls due, and a peer's stale
    heartbeat wakes them when it goes stale; this look is only the fallback."""
    lease_seconds: float = 120.0
    """The backstop of every lease: a live process whose task is stuck loses it
    after this long. A dead process loses its leases sooner: see below."""
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    """Seconds between this process's heartbeats (`bot.leases`)."""
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    """Seconds of silence after which another process takes over what this one
    holds (conversations, replies, NIK checks)."""
    worker_concurrency: int = 16
    """Conversations handed to Rasa at the same time."""
    rasa_timeout: float = 30.0
    rasa_backoff_base: float = 1.0
    rasa_backoff_cap: float = 60.0
    max_turn_attempts: int = 3
    """Rasa turns that time out or fail (500, 504) before the message is given up
    and the person gets an apology; Rasa or the action server being unreachable
    is waited out without limit."""
    actions_health_ttl: float = 5.0
    """Seconds a successful action server health check is trusted."""
    actions_health_timeout: float = 2.0
    outbox_concurrency: int = 16
    """Sends in flight per channel (Telegram, SMS and the simulator each)."""
    send_timeout: float = 30.0
    """Last-resort limit on one send; above the senders' own HTTP timeouts."""
    send_backoff_base: float = 2.0
    send_backoff_cap: float = 600.0
    max_send_attempts: int = 8
    shutdown_grace: float = 35.0
    """Seconds work in flight may take to finish at stop (>= rasa_timeout + 5)."""
    simulator: bool = True
    """Serve /simulator (only ever in development: False turns it off there)."""
    nik_checks: NikCheckOptions = field(default_factory=NikCheckOptions)
    handoff_interval: float = 30.0
    """Seconds between looks at the agents' queue for expected waits that grew
    (`bot.handoff.monitor.HandoffMonitor`)."""
    backlog_interval: float = 1.0
    """Seconds between measurements of the backlog (`bot.gateway.backlog`)."""
    rate_window: float = 60.0
    """Seconds of busy time over which the processing rate is measured."""
    notice_wait: float = 30.0
    """A person whose messages are expected to wait at least this long gets one
    notice with the expected wait (`bot.gateway.wait_notice`)."""
    stale_after: float = 30.0
    """A message that waited this long before its turn is stale: with more of the
    person's messages behind it, their answers go out as one (`bot.gateway.burst`)."""
    max_pending_per_conversation: int = 10
    """Messages of one person waiting at once; more are stored but not answered."""
    max_pending: int = 100_000
    """Messages waiting in all; above it Telegram is asked to deliver again later."""

    def __post_init__(self) -> None:
        if self.shutdown_grace < self.rasa_timeout + SHUTDOWN_MARGIN:
            raise ValueError(
                "shutdown_grace must be at least rasa_timeout + "
                f"{SHUTDOWN_MARGIN:g} s, so a stop does not abandon a Rasa turn"
            )
        if self.worker_concurrency < 1 or self.outbox_concurrency < 1:
            raise ValueError("worker and outbox concurrency must be at least 1")
        if self.max_turn_attempts < 1:
            raise ValueError("max_turn_attempts must be at least 1")
        if self.poll_interval <= 0 or self.listen_poll_interval <= 0:
            raise ValueError("poll intervals must be positive")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if self.heartbeat_timeout < 2 * self.heartbeat_interval:
            raise ValueError(
                "heartbeat_timeout must be at least twice heartbeat_interval, so one "
                "late heartbeat does not hand a live process's work to another"
            )
        if self.handoff_interval <= 0:
            raise ValueError("handoff_interval must be positive")
        if min(self.backlog_interval, self.rate_window, self.notice_wait) <= 0:
            raise ValueError("backlog_interval, rate_window, notice_wait: positive")
        if self.stale_after < 0:
            raise ValueError("stale_after must not be negative")
        if self.max_pending_per_conversation < 1 or self.max_pending < 1:
            raise ValueError("max_pending_per_conversation, max_pending: at least 1")
