"""Baselines for the ingest benchmark, each run as its own process:

    python bench/bare.py fastapi --port P   # a bare FastAPI endpoint that only answers 202,
                                            # served exactly as the services are (shared.runtime.serve's
                                            # uvicorn settings): the framework's own ceiling
    python bench/bare.py raw --port P       # canned bytes from a plain asyncio protocol: the
                                            # load generator's own ceiling
"""

from __future__ import annotations

import argparse
import asyncio
import sys

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


async def raw_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Canned, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("fastapi", "raw"))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.kind == "raw":
        asyncio.run(raw_server(args.port))
        return 0
    # The very settings of shared.runtime.serve: one process, no access log, default loop and parser.
    uvicorn.run(fastapi_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=20, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
