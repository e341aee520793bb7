"""A local fake of a Dukcapil-style NIK service for tests.

``POST /nik/verify`` answers ``{"status": <outcome>}`` as the local synthetic
population decides. It records every call and can be told to misbehave on the
next calls: hang past the client's timeout, answer an HTTP error status, or send
an unreadable body. The population lives in a SQLite file of its own (seeded
from POPULATION; KK cap 2; the slow person answers at once).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.db import Base, make_engine, make_sessionmaker
from bot.verification.nik import NikRequest
from bot.verification.population import LocalPopulationVerifier, seed_population
from tests.fakes.server import BackgroundServer

TIMEOUT = "timeout"  # hang for `hang` seconds before answering
GARBAGE = "garbage"  # 200 with a body that is not JSON
RETRY_AFTER = "0.05"  # seconds, sent with every 429
KK_CAP = 2  # NIKs per KK (policies 2021 and 2023), so the kk_full person is full
POPULATION_TABLES = ("population_person", "applicant", "kk_count")


def population_engine(directory: str) -> Engine:
    """An engine on a new SQLite file in ``directory`` holding the seeded
    population and the (empty) registry tables the verifier reads."""
    engine = make_engine(f"sqlite:///{directory}/population.db")
    tables = [Base.metadata.tables[name] for name in POPULATION_TABLES]
    Base.metadata.create_all(engine, tables=tables)
    with make_sessionmaker(engine).begin() as session:
        seed_population(session)
    return engine


class FakeDukcapil(BackgroundServer):
    """The NIK verification endpoint, locally."""

    def __init__(self, hang: float = 1.0) -> None:
        self.hang = hang
        self._directory = tempfile.TemporaryDirectory(prefix="fake_dukcapil_")
        self._engine = population_engine(self._directory.name)
        self.population = LocalPopulationVerifier(
            make_sessionmaker(self._engine), kk_cap=KK_CAP, slow_delay=0.0
        )
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self._script: list[str | int] = []
        app = Starlette(routes=[Route("/nik/verify", self._verify, methods=["POST"])])
        super().__init__(app, name="FakeDukcapil", force_exit=True)

    def fail_next(self, *failures: str | int) -> None:
        """Misbehave on the next calls, in order: TIMEOUT, GARBAGE or a status."""
        with self._lock:
            self._script.extend(failures)

    def stop(self) -> None:
        """Stop serving and close the population's connections (a restart
        reopens them)."""
        super().stop()
        self._engine.dispose()

    def reset(self) -> None:
        """Forget calls and pending failures."""
        with self._lock:
            self.calls.clear()
            self._script.clear()

    @property
    def call_count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.calls)

    async def _verify(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.calls.append(body)
            failure = self._script.pop(0) if self._script else None
        if failure == TIMEOUT:
            await asyncio.sleep(self.hang)
        elif failure == GARBAGE:
            return PlainTextResponse("<html>Bad gateway</html>")
        elif isinstance(failure, int):
            headers = {"Retry-After": RETRY_AFTER} if failure == 429 else None
            return JSONResponse(
                {"error": "simulated"}, status_code=failure, headers=headers
            )
        result = await self.population.verify(
            NikRequest(
                body["nik"],
                body["kk_number"],
                body["name"],
                date.fromisoformat(body["birth_date"]),
            )
        )
        return JSONResponse({"status": result.outcome})
