"""Baselines for the ingest benchmark, each run as its own process:

    python bench/bare.py fastapi --port P   # a bare FastAPI endpoint that only answers 202,
                                            # served exactly as the services are (shared.runtime.serve's
                                            # uvicorn settings): the framework's own ceiling
    python bench/bare.py raw --port P       # canned bytes from a plain asyncio protocol: the
                                            # load generator's own ceiling
    python bench/bare.py static --port P --body FILE   # GET of any path answers FILE's bytes (JSON),
                                            # from a one-route ASGI app served as the services are:
                                            # the floor of a made status's answer (bench/statusprobe.py)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

ANSWER = b'{"accepted":1,"ids":["bare"]}'


def fastapi_app() -> FastAPI:
    app = FastAPI(title="bare")

    @app.post("/v1/events", status_code=202)
    async def post_events(request: Request) -> dict:
        return {"accepted": 1, "ids": ["bare"]}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


class _Canned(asyncio.Protocol):
    RESPONSE = (b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)

    def connection_made(self, transport) -> None:
        self.transport, self.buffer = transport, bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[:end + 4 + length]
            self.transport.write(self.RESPONSE)


def static_app(body: bytes):
    """A raw ASGI app answering every GET with `body`, as `shared.lanes.Lanes` answers a made status."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def raw_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Canned, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("fastapi", "raw", "static"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, help="static: the file whose bytes every GET answers")
    args = parser.parse_args()
    if args.kind == "raw":
        asyncio.run(raw_server(args.port))
        return 0
    if args.kind == "static" and args.body is None:
        parser.error("static needs --body FILE")
    app, lifespan = (static_app(args.body.read_bytes()), "off") if args.kind == "static" else (fastapi_app(), "auto")
    # The very settings of shared.runtime.serve: one process, no access log, default loop and parser.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=20, log_config=None, lifespan=lifespan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
