"""Client CPU of an aiohttp request, its headers and body in two writes or one.

Usage: python -m bench.http_writes [--requests N] [--in-flight C] [--rounds R]

Starts a raw asyncio HTTP server (`AnswerEachRequest`) in another process on
a free 127.0.0.1 port (it answers each complete request with a 2-byte 200),
then posts N requests (C in flight, on kept connections, uvloop as in our
servers) with a 300-byte and a 25 kB body (the size of a tracker Rasa sends
to the action server), alternately with aiohttp's own writer and with
`bot.http_writes`'s (the order switching each round), and prints the
client's CPU (`process_time`) a request and the requests a second, as
Markdown. Traffic stays on 127.0.0.1;
every loop is bounded by N and R.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from statistics import mean
from typing import Any

import aiohttp
import aiohttp.client_reqrep
import uvloop

from bench.gateway import ROOT, cpu_model, free_port
from bot.http_writes import install

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class AnswerEachRequest(asyncio.Protocol):
    """A server's side of a connection: answers 200 to each request once its
    headers and its body (by Content-Length) are in; records what came in
    each read when given a list."""

    def __init__(self, reads: list[bytes] | None = None) -> None:
        self.reads = reads
        self.buffer = b""
        self.transport: Any = None  # uvloop's is not an asyncio.Transport

    def connection_made(self, transport: Any) -> None:
        """Keep the connection's transport to answer on."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Buffer; answer every complete request."""
        if self.reads is not None:
            self.reads.append(data)
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self.transport.write(OK)


async def serve(port: int) -> None:
    """Answer requests on 127.0.0.1:`port` until killed."""
    server = await asyncio.get_running_loop().create_server(
        AnswerEachRequest, "127.0.0.1", port
    )
    print("ready", flush=True)
    await server.serve_forever()


BODIES = {"300 B": b"x" * 300, "25 kB": b"x" * 25_000}
START_TIMEOUT = 10.0


async def post_all(url: str, body: bytes, requests: int, in_flight: int) -> None:
    """Post `body` `requests` times, `in_flight` at once."""
    gate = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with gate, session.post(url, data=body) as response:
                await response.read()

        await asyncio.gather(*(one() for _ in range(requests)))


def measure(
    url: str, body: bytes, requests: int, in_flight: int
) -> tuple[float, float]:
    """Client CPU µs a request and requests a second, for one series."""
    cpu, wall = time.process_time(), time.monotonic()
    uvloop.run(post_all(url, body, requests, in_flight))
    spent = time.monotonic() - wall
    return 1e6 * (time.process_time() - cpu) / requests, requests / spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve))
        return 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.http_writes", "--serve", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    own = aiohttp.client_reqrep.StreamWriter
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the server did not start")
        url = f"http://127.0.0.1:{port}/webhook"
        for label, body in BODIES.items():
            for round_ in range(args.rounds):
                order = (
                    ("plain", "one write")
                    if round_ % 2 == 0
                    else ("one write", "plain")
                )
                for writer in order:
                    aiohttp.client_reqrep.StreamWriter = own  # type: ignore[misc]
                    if writer == "one write":
                        install()
                    results.setdefault((label, writer), []).append(
                        measure(url, body, args.requests, args.in_flight)
                    )
    finally:
        aiohttp.client_reqrep.StreamWriter = own  # type: ignore[misc]
        server.kill()
        server.wait(timeout=START_TIMEOUT)
    print(
        f"`python -m bench.http_writes --requests {args.requests} --in-flight "
        f"{args.in_flight} --rounds {args.rounds}`; {os.cpu_count()} × {cpu_model()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}\n"
    )
    print("| body | writer | client CPU µs a request, each round | mean | requests/s |")
    print("| --- | --- | --- | ---: | ---: |")
    for (label, writer), series in results.items():
        cpus = [cpu for cpu, _ in series]
        rates = [rate for _, rate in series]
        print(
            f"| {label} | {writer} | {' / '.join(f'{c:.0f}' for c in cpus)} "
            f"| {mean(cpus):.0f} | {mean(rates):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
