"""A real HTTP receiver on 127.0.0.1 for tests: records every POST, can fail on purpose,
and serves files for GET."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
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
                self.send_response(200 if self.path in receiver.files else 404)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]
