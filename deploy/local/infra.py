"""Start the real Kafka (KRaft, one node) and FerretDB on 127.0.0.1 as child processes.

Used by `make up` (deploy/local/stack.py) and by the test fixtures, so the stack
the tests see is the stack a developer runs.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from deploy.local import provision

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
"""

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{advertised_port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=12
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(name: str, port: int, proc: subprocess.Popen | None, log: Path | None,
                  timeout: float = 60.0) -> None:
    """Wait until `port` accepts connections; fail naming the process and its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening on "
                               f"127.0.0.1:{port}; log {log}:\n{tail}")
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f}s; see {log}")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(cmd: list[str], log: Path, detach: bool) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach)


def start_kafka(workdir: Path, port: int, controller_port: int, *, heap: str = "512m",
                detach: bool = False, log_level: str = "WARN", advertised_port: int | None = None) -> Server:
    """Format (first time only) and start a single-node KRaft broker+controller. Clients are
    told to connect to `advertised_port` (default `port`): a proxy in front of the broker
    must be advertised, or clients reconnect around it. Started again on the same
    `workdir` it keeps its data (a restart after a crash)."""
    libs = provision.provision_kafka()
    provision.require("java")
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    props = workdir / "server.properties"
    props.write_text(_SERVER.format(port=port, controller_port=controller_port, data=data,
                                     advertised_port=advertised_port or port))
    (workdir / "log4j2.properties").write_text(_LOG4J2.format(level=log_level))
    java = ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
            "-cp", f"{libs}/*"]
    log = workdir / "kafka.log"
    if not (data / "meta.properties").exists():
        cluster_id = _cluster_id()
        fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", "--standalone",
                                     "-t", cluster_id, "-c", str(props)],
                             capture_output=True, text=True)
        if fmt.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed: {fmt.stdout}{fmt.stderr}")
    return _listening(Server("Kafka", port, _spawn(java + ["kafka.Kafka", str(props)], log, detach), log), 90)


def _cluster_id() -> str:
    """A Kafka cluster id (URL-safe base64 of a UUID). Like Kafka's own, never one starting
    with '-', which the storage tool's argument parser would take for an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start_ferretdb(workdir: Path, port: int, *, detach: bool = False, binary: Path | None = None) -> Server:
    """Start FerretDB with its SQLite backend in `workdir` (the provisioned build unless `binary`).
    WAL flushed at checkpoints, not at each commit (`synchronous(normal)`): a FerretDB killed
    loses nothing committed, a machine that loses power may lose the last commits, as
    MongoDB's default (a journal flushed every 100 ms) would.
    NQT_FERRETDB_DEBUG_ADDR (e.g. 127.0.0.1:8089) serves its Go profiles (/debug/pprof/) there."""
    binary = binary or provision.provision_ferretdb()
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = workdir / "ferretdb.log"
    proc = _spawn([str(binary), "--handler=sqlite", f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
                   f"--listen-addr=127.0.0.1:{port}", "--telemetry=disable",
                   f"--debug-addr={os.environ.get('NQT_FERRETDB_DEBUG_ADDR') or '-'}", "--state-dir=-", "--log-level=warn"], log, detach)
    return _listening(Server("FerretDB", port, proc, log), 30)


def _listening(server: Server, timeout: float) -> Server:
    """The server once its port accepts connections; killed if it never does."""
    try:
        wait_for_port(server.name, server.port, server.proc, server.log, timeout=timeout)
    except Exception:
        server.stop(kill=True)
        raise
    return server
