"""A small HTTP/1.1 load generator: many keep-alive connections on asyncio protocols, each
sending a prepared request as soon as the previous answer is read (closed loop), or at a
fixed overall rate (open loop). It does no HTTP parsing beyond the status line and
Content-Length, so one process drives several thousand requests/s; `bench/ingest.py`
measures its ceiling against a server that answers with canned bytes.

Run as a process (the bench scripts do, so that it does not share a core's GIL with them):

    python bench/loadgen.py --port 8081 --path /v1/events --header 'Authorization: Bearer K' \
        --body-file event.json --id-placeholder __ID__ --connections 64 --duration 10

prints one JSON line: requests, seconds, statuses, latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Result:
    started: float = 0.0
    ended: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, of every answered request
    errors: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> dict:
        lat = sorted(self.latencies)
        pick = (lambda q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000 if lat else None)
        seconds = self.ended - self.started
        return {"requests": self.requests, "seconds": seconds, "rps": self.requests / seconds if seconds else 0,
                "statuses": {str(k): v for k, v in self.statuses.items()}, "errors": self.errors,
                "latency_ms": {"p50": pick(50), "p90": pick(90), "p99": pick(99), "max": lat[-1] * 1000 if lat else None}}


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        self.waiter.set_result((int(head[9:12]), body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def build_request(method: str, path: str, headers: list[str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_maker(method: str, path: str, headers: list[str], body: bytes,
                  placeholder: bytes | None) -> Callable[[int], bytes]:
    """Request n: the body with every placeholder replaced by a tag unique to request n (so that
    every event is a new one: a batch template writes `PLACEHOLDER.0`, `PLACEHOLDER.1`, ...),
    or the very same bytes every time."""
    if not placeholder or placeholder not in body:
        fixed = build_request(method, path, headers, body)
        return lambda n: fixed
    tag = f"{os.getpid()}-{time.time_ns() % 10**9}-".encode()
    return lambda n: build_request(method, path, headers, body.replace(placeholder, tag + str(n).encode()))


async def _connect(host: str, port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, host, port)
    return conn


async def closed_loop(host: str, port: int, make: Callable[[int], bytes], *, connections: int,
                      duration: float, warmup: float = 1.0) -> Result:
    """Every connection sends its next request when the previous answer arrived; only what is
    answered between warm-up and the end counts."""
    conns = [await _connect(host, port) for _ in range(connections)]
    counter = itertools.count()
    result = Result()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    measure_from, stop_at = begin + warmup, begin + warmup + duration

    async def drive(conn: _Connection) -> None:
        while True:
            sent = loop.time()
            if sent >= stop_at:
                return
            try:
                status, _ = await conn.request(make(next(counter)))
            except ConnectionError:
                result.errors += 1
                return
            done = loop.time()
            if sent >= measure_from and done <= stop_at:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.latencies.append(done - sent)

    result.started, result.ended = measure_from, stop_at
    await asyncio.gather(*(drive(c) for c in conns))
    for conn in conns:
        conn.transport.close()
    return result


async def main_async(args) -> dict:
    headers = list(args.header or [])
    body = open(args.body_file, "rb").read() if args.body_file else b""
    placeholder = args.id_placeholder.encode() if args.id_placeholder else None
    make = request_maker(args.method, args.path, headers, body, placeholder)
    if args.start_at:  # several processes start together
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    result = await closed_loop("127.0.0.1", args.port, make, connections=args.connections,
                               duration=args.duration, warmup=args.warmup)
    return result.as_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", default="/v1/events")
    parser.add_argument("--header", action="append")
    parser.add_argument("--body-file")
    parser.add_argument("--id-placeholder")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--start-at", type=float, default=0.0, help="wall-clock time to start at")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
