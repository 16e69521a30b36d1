"""Two event loops in one service: HTTP on a thread of its own, the application on the main one.

A consumer applying a batch keeps its event loop busy for tens of milliseconds at a time; a
request served on that loop waits for it. For answers that are already made (reports' status:
bytes made after each batch), `serve` puts uvicorn on a thread with its own loop, which answers
those paths itself, without the application's loop, and hands every other request, and the
lifespan (the broker, the jobs), to the application on the main loop: their `receive` and `send`
cross back to the HTTP loop. The two threads still share the GIL, which a busy thread hands over
every `SWITCH_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from shared import metrics

SWITCH_INTERVAL_S = 0.001  # the interpreter's default is 5 ms: a ready answer would wait that long

Answer = Callable[[], bytes | None]  # the JSON of a path, or None when it is not made (the app makes it)


class Lanes:
    """The ASGI app uvicorn runs on the HTTP thread: GET of a path in `ready` is answered at once
    when its bytes are made; anything else runs in `app` on `loop`."""

    def __init__(self, app, ready: dict[str, Answer], loop: asyncio.AbstractEventLoop, *, service: str):
        self.app, self.ready, self.loop, self.service = app, ready, loop, service

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in self.ready:
            started = time.perf_counter()
            body = self.ready[scope["path"]]()
            if body is not None:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                metrics.HTTP_REQUESTS.labels(service=self.service, route=scope["path"], status="200").inc()
                metrics.HTTP_SECONDS.labels(service=self.service, route=scope["path"]).observe(
                    time.perf_counter() - started)
                return
        here = asyncio.get_running_loop()

        async def receive_here():
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(receive(), here))

        async def send_here(message):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send(message), here))

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.app(scope, receive_here, send_here),
                                                                   self.loop))


def serve(app, ready: dict[str, Answer], *, service: str, **config) -> None:
    """Run `app` (uvicorn.Config's other options in `config`) until SIGTERM/SIGINT, with the
    paths of `ready` answered on the HTTP thread; uvicorn then runs the lifespan's shutdown."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    loop = asyncio.new_event_loop()
    server = uvicorn.Server(uvicorn.Config(Lanes(app, ready, loop, service=service), lifespan="on", **config))
    http = threading.Thread(target=server.run, name="http", daemon=True)

    def stop() -> None:  # as uvicorn's own handler: a second SIGINT does not wait for requests
        server.force_exit = server.should_exit
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    http.start()
    try:
        loop.run_until_complete(asyncio.to_thread(http.join))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)  # as uvicorn.run: the lifespan failed, the port was taken...
