"""aiohttp client requests written in one piece (`bot.http_writes`)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import aiohttp.client_reqrep
import pytest
from aiohttp.http_writer import StreamWriter
from multidict import CIMultiDict

from bench.http_writes import AnswerEachRequest
from bot.http_writes import HeadersWithBodyWriter, install


class FakeTransport:
    """Records each `write` of the writer."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


class FakeProtocol:
    connected = True

    def __init__(self) -> None:
        self.transport = FakeTransport()

    async def _drain_helper(self) -> None:
        return None


def writer() -> tuple[HeadersWithBodyWriter, FakeTransport]:
    protocol = FakeProtocol()
    loop = asyncio.get_running_loop()
    return HeadersWithBodyWriter(protocol, loop), protocol.transport  # type: ignore[arg-type]


HEADERS = CIMultiDict({"Host": "x", "Content-Length": "4"})


async def test_the_headers_leave_with_the_body_in_one_write() -> None:
    w, transport = writer()
    await w.write_headers("POST / HTTP/1.1", HEADERS)
    assert transport.writes == []
    await w.write(b"body")
    await w.write_eof()
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST / HTTP/1.1\r\n") and b"Content-Length: 4" in head
    assert body == b"body"


async def test_a_request_without_a_body_sends_its_headers_at_its_end() -> None:
    w, transport = writer()
    await w.write_headers("GET / HTTP/1.1", CIMultiDict({"Host": "x"}))
    await w.write_eof()
    assert transport.writes == [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]


async def test_a_drain_sends_the_headers_at_once() -> None:
    """As before a body that waits for `100 Continue`."""
    w, transport = writer()
    await w.write_headers("POST / HTTP/1.1", HEADERS)
    await w.drain()
    assert len(transport.writes) == 1
    await w.write(b"body")
    await w.write_eof()
    assert transport.writes[1] == b"body"


async def test_the_last_chunk_given_to_write_eof_carries_the_headers() -> None:
    w, transport = writer()
    await w.write_headers("POST / HTTP/1.1", HEADERS)
    await w.write_eof(b"body")
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\nbody")


@pytest.fixture()
def installed() -> Any:
    before = aiohttp.client_reqrep.StreamWriter
    install()
    yield
    aiohttp.client_reqrep.StreamWriter = before  # type: ignore[misc]


async def test_a_real_client_request_is_one_write_on_its_socket(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: AnswerEachRequest(chunks), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_writes: list[bytes] = []
    write = StreamWriter._write  # what reaches the socket, whatever the loop

    def counted(self: StreamWriter, chunk: bytes) -> None:
        client_writes.append(bytes(chunk))
        write(self, chunk)

    monkeypatch.setattr(StreamWriter, "_write", counted)
    sent_headers: list[str] = []

    async def on_headers(_s: Any, _c: Any, params: Any) -> None:
        sent_headers.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            for attempt in range(3):  # on a kept connection too
                async with session.post(
                    f"http://127.0.0.1:{port}/webhook", json={"n": attempt}
                ) as response:
                    assert response.status == 200 and await response.text() == "ok"
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
    finally:
        server.close()
        await server.wait_closed()
    assert len(client_writes) == 6, client_writes  # one write per request
    assert b"".join(client_writes) == b"".join(chunks)
    for chunk in client_writes[0::2]:
        assert chunk.startswith(b"POST /webhook HTTP/1.1\r\n")
        assert chunk.rstrip(b"}").endswith((b'{"n": 0', b'{"n": 1', b'{"n": 2'))
    assert sent_headers == ["POST", "GET"] * 3


def test_install_is_idempotent_and_refuses_a_foreign_writer(installed: None) -> None:
    install()
    assert aiohttp.client_reqrep.StreamWriter is HeadersWithBodyWriter
    aiohttp.client_reqrep.StreamWriter = object  # type: ignore[misc]
    with pytest.raises(RuntimeError):
        install()


def test_rasas_gateway_channel_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.http_writes import StreamWriter
    from bot.rasa_channel import GatewayInput

    monkeypatch.setattr(aiohttp.client_reqrep, "StreamWriter", StreamWriter)
    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    assert aiohttp.client_reqrep.StreamWriter is HeadersWithBodyWriter
