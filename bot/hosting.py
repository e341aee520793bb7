"""What the web apps served by a gateway process get from it: the `Host`.

The gateway (`bot.gateway.runtime.Gateway`) is one; the console
(`bot.console`) reads the host of the app serving a request through `host`,
so it imports nothing of the gateway, which mounts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session
from starlette.requests import Request

from bot.messages.backlog import Figures
from bot.settings import Settings

R = TypeVar("R")


class Backlog(Protocol):
    """The backlog's latest look (`bot.gateway.backlog.BacklogMonitor`)."""

    figures: Figures

    def counts(self) -> dict[str, int]:
        """Messages skipped and notices told by this process."""

    def over_capacity(self) -> bool:
        """Whether intake is full."""


class Wakeable(Protocol):
    """A loop that looks for work at once when told (`bot.loops.ClaimLoop`)."""

    def notify(self) -> None:
        """Look for work now."""


class Host(Protocol):
    """Everything a route may use of the process serving it."""

    @property
    def settings(self) -> Settings:
        """The process's settings."""

    @property
    def sessions(self) -> Callable[[], Session]:
        """A factory of database sessions."""

    @property
    def backlog(self) -> Backlog:
        """The message backlog."""

    @property
    def worker(self) -> Wakeable:
        """The conversation worker (woken after an agent's reply is stored)."""

    @property
    def announcer(self) -> Wakeable:
        """The announcement sender (woken after a publication or a resume)."""


def host(request: Request) -> Host:
    """The host of the app serving this request (set at its start)."""
    found: Host = request.app.state.gateway
    return found


async def run_in_session(request: Request, work: Callable[[Session], R]) -> R:
    """Run `work` with this request's own session in a thread, then commit."""
    sessions = host(request).sessions

    def run() -> R:
        with sessions() as session:
            result = work(session)
            session.commit()
            return result

    return await asyncio.get_running_loop().run_in_executor(None, run)
