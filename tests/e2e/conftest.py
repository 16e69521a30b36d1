"""The four services as separate processes on the real Kafka and FerretDB, with a real SMTP server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local import infra, mailsink, stack

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    ports: dict[str, int]
    env: dict[str, str]
    keys: dict[str, str]  # unit -> API key
    mailbox: mailsink.Mailbox
    logs: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def nqt(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nqt.cli", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def deployment(request, infra_stack, tmp_path_factory) -> Deployment:
    """A deployment per test module, on topics and databases of that module alone: one module's
    registry, plans and users must not show in another's numbers."""
    label = f"e2e{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}"
    with deployed(infra_stack, tmp_path_factory.mktemp("e2e-logs"), label) as running:
        yield running


@contextmanager
def deployed(infra_stack, logs: Path, label: str):
    """The four services as processes on topics and databases of their own (`label`)."""
    smtp_port = infra.free_port()
    controller, mailbox = mailsink.serve(smtp_port, None)
    ports = {name: infra.free_port() for name in stack.SERVICES}
    keys = {unit: f"e2e-{unit.lower()}-{secrets.token_hex(6)}" for unit in ("SO-KHDT", "SO-TC", "VPTU")}
    prefix = f"{infra_stack.prefix}{label}"
    env = stack.service_env(kafka=infra_stack.kafka, mongo=infra_stack.mongo, smtp_port=smtp_port, ports=ports,
                            dev_keys={key: unit for unit, key in keys.items()},
                            extra={"NQT_TOPIC_PREFIX": f"{prefix}.", "NQT_DB_PREFIX": prefix,
                                   "NQT_TOPIC_PARTITIONS": "4", "NQT_ENV": "test",
                                   "NQT_CLOCK_FIXED": "2021-04-05T09:00:00+07:00",
                                   # the web view reads units' notifications from notify, as the Office
                                   "NQT_UI_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
                                   "NQT_UI_NOTIFY_KEY": keys["VPTU"]})
    procs = {name: stack.start_service(name, env, logs / f"{name}.log") for name in stack.SERVICES}
    try:
        for name, proc in procs.items():
            stack.wait_ready(name, ports[name], proc, logs / f"{name}.log", timeout=90)
        yield Deployment(ports=ports, env=env, keys=keys, mailbox=mailbox, logs=logs)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        controller.stop()
        if os.environ.get("NQT_E2E_SHOW_LOGS"):
            for log in sorted(logs.glob("*.log")):
                print(f"==== {log.name}\n{log.read_text(errors='replace')[-4000:]}")


def starter(name: str, env: dict[str, str], port: int, log: Path):
    """A function that starts service `name` as a process and returns it once ready: for tests
    that stop a service and start it again."""
    def start() -> subprocess.Popen:
        proc = stack.start_service(name, env, log)
        stack.wait_ready(name, port, proc, log, timeout=90)
        return proc
    return start
