"""Real HTTP servers on 127.0.0.1 for tests: a receiver that records every POST, can fail
on purpose and serves files for GET; and ingest's key check (`GET /v1/whoami`) as the
contract describes it, for services that ask it whose a key is."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Served:
    """Serves `Handler` on a free port of 127.0.0.1 for the time of a `with` block."""

    def _serve(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver(_Served):
    def __init__(self, port: int = 0):
        self.requests: list[dict] = []
        self.failures: dict[str, int] = {}   # path -> how many more POSTs to refuse (-1: always)
        self.files: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    left = receiver.failures.get(self.path, 0)
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "refused": left != 0})
                    if left > 0:
                        receiver.failures[self.path] = left - 1
                self.send_response(503 if left != 0 else 204)
                self.end_headers()

            def do_GET(self):
                content_type, content = receiver.files.get(self.path, ("text/plain", b""))
                _reply(self, 200 if self.path in receiver.files else 404, content_type, content)

            def log_message(self, *args):
                pass

        self._serve(Handler, port)

    def posts(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]


class KeyServer(_Served):
    """Ingest's `GET /v1/whoami`: a known key gets `{"unit", "key_id"}`, anything else a 401
    problem document. `asked` counts the questions, per key."""

    def __init__(self, keys: dict[str, str]):
        self.keys = keys                 # key -> unit
        self.asked: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                key = self.headers.get("authorization", "").removeprefix("Bearer ")
                server.asked[key] = server.asked.get(key, 0) + 1
                unit = server.keys.get(key) if self.path == "/v1/whoami" else None
                if unit:
                    _reply(self, 200, "application/json", json.dumps({"unit": unit, "key_id": f"dev-{unit}"}).encode())
                else:
                    _reply(self, 401, "application/problem+json",
                           json.dumps({"status": 401, "title": "Invalid API key"}).encode())

            def log_message(self, *args):
                pass

        self._serve(Handler)


def _reply(handler: BaseHTTPRequestHandler, status: int, content_type: str, content: bytes) -> None:
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(content)))
    handler.end_headers()
    handler.wfile.write(content)
