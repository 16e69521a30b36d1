"""A real SMTP server for development and tests (aiosmtpd): every message it
receives is kept in memory and, with --dir, written there as an .eml file."""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


class Mailbox:
    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._last = 0  # the number of the last .eml file in `directory`, kept by earlier runs too
        if directory:
            directory.mkdir(parents=True, exist_ok=True)
            self._last = max((int(p.stem) for p in directory.glob("*.eml") if p.stem.isdigit()), default=0)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            if self.directory:
                self._keep(envelope.content)
        return "250 Message accepted for delivery"

    def _keep(self, content: bytes) -> None:
        """Write the message to the next free number: never over one kept before (exclusive create)."""
        while True:
            self._last += 1
            try:
                with open(self.directory / f"{self._last:05d}.eml", "xb") as out:
                    out.write(content)
                return
            except FileExistsError:
                continue

    def snapshot(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


def serve(port: int, directory: Path | None, host: str = "127.0.0.1") -> tuple[Controller, Mailbox]:
    mailbox = Mailbox(directory)
    controller = Controller(mailbox, hostname=host, port=port)
    controller.start()
    return controller, mailbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container, for the other containers")
    args = parser.parse_args()
    controller, _ = serve(args.port, args.dir, args.host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"mail sink listening on {args.host}:{args.port}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
