"""shared/lanes.py: a service whose made answers are served on an HTTP thread of their own, while
the application (its lifespan, every other request) runs on the main thread's loop. Run as a
process, as a service runs: uvicorn, signals and all."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]

SERVICE = textwrap.dedent('''
    import sys, threading
    from contextlib import asynccontextmanager
    from fastapi import FastAPI, Request
    from shared import lanes

    blocking, released = threading.Event(), threading.Event()
    made = {}

    @asynccontextmanager
    async def lifespan(app):
        print("started on", threading.current_thread().name, flush=True)
        yield
        print("stopped on", threading.current_thread().name, flush=True)

    app = FastAPI(lifespan=lifespan)

    @app.get("/v1/status")
    async def status():
        return {"made": "per request", "thread": threading.current_thread().name}

    @app.post("/echo")
    async def echo(request: Request):
        return {"echo": (await request.body()).decode(), "thread": threading.current_thread().name}

    @app.post("/make")
    async def make():
        made["body"] = b"made"

    @app.post("/block")
    async def block():  # holds the application's loop, as a long batch does
        blocking.set()
        released.wait(30)
        return {"released": released.is_set()}

    def answer():
        if "body" not in made:
            return None
        seen = blocking.is_set()
        if seen:
            released.set()
        return (b'{"made": "ahead", "while_blocked": %s, "thread": "%s"}'
                % (b"true" if seen else b"false", threading.current_thread().name.encode()))

    lanes.serve(app, {"/v1/status": answer}, service="test", host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning", log_config=None)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_made_answers_come_from_the_http_thread_while_the_application_loop_is_held(tmp_path):
    script, port = tmp_path / "service.py", free_port()
    script.write_text(SERVICE)
    proc = subprocess.Popen([sys.executable, str(script), str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=20) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    first = client.get("/v1/status")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
                    time.sleep(0.1)
            # not made yet: the application answers, on its own (main) thread; bodies cross both ways
            assert first.json() == {"made": "per request", "thread": "MainThread"}
            assert client.post("/echo", content="hello").json() == {"echo": "hello", "thread": "MainThread"}
            assert client.post("/make").status_code == 200
            with httpx.Client(base_url=url, timeout=40) as other:
                held = {}
                blocker = threading.Thread(target=lambda: held.update(other.post("/block").json()))
                blocker.start()
                # each answer while the loop is held would never come if the application's loop made it
                while not (body := client.get("/v1/status").json())["while_blocked"]:
                    pass
                blocker.join(40)
            assert body == {"made": "ahead", "while_blocked": True, "thread": "http"}
            assert held == {"released": True}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "started on MainThread" in out and "stopped on MainThread" in out, out

