"""The system under fault: the four services as processes (one or more replicas each) on
topics and databases of their own, a real SMTP receiver, and what the scenarios need to
break it and to see what happened: kill/stop/start of a replica, and the messages each
process received per topic, read from its /metrics (FastStream's counter) just before it
is killed, so a record read again after a crash is counted as a redelivery."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local import infra, mailsink, stack
from shared import accepted
from shared.events import parse_event
from tests import kafkatools
from tests.programs_model import REGISTRY, UNITS

from services.ingest.domain import new_signing_secret

SERVICES = tuple(stack.SERVICES)  # ingest, reports, notify, programs
CONSUMERS = {  # what each service reads, by the Topics attribute and the consumer group's suffix
    "ingest": (("outcomes", ""), ("inbound", ".inbound"), ("changes", ".registry"), ("due", ".due")),
    "programs": (("accepted", ""),),
    "reports": (("changes", ""),),
    "notify": (("changes", ".changes"), ("outcomes", ".outcomes"), ("due", ".due"), ("generated", ".generated")),
}
RECEIVED = "faststream_received_messages_total"      # counter: records received, per topic ("handler")
IN_PROCESS = "faststream_received_messages_in_process"  # gauge: records in hand
FAILED = "faststream_received_processed_messages_exceptions_total"  # counter: handlers that raised


@dataclass
class Replica:
    service: str
    index: int
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    past: list[dict[str, float]] = field(default_factory=list)  # received per topic, of processes gone
    last: dict[str, float] = field(default_factory=dict)        # of the running process, last scraped
    busy: dict[str, float] = field(default_factory=dict)        # records in hand per topic, last scraped
    failed: float = 0                                           # handler failures of the running process

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start_blocking(self) -> None:
        self.proc = stack.start_service(self.service, self.env, self.log)
        stack.wait_ready(f"{self.service}[{self.index}]", self.port, self.proc, self.log, timeout=120)

    def gone(self) -> None:
        self.past.append(self.last)
        self.last, self.busy, self.failed, self.proc = {}, {}, 0, None


@dataclass
class Deployment:
    kafka: str                 # bootstrap the test itself uses (direct to the broker)
    mongo: str                 # MongoDB URL the test itself uses (direct)
    prefix: str
    keys: dict[str, str]       # unit -> API key
    mailbox: mailsink.Mailbox
    replicas: dict[str, list[Replica]]
    env: dict[str, str]
    logs: Path
    # Idle connections are dropped well before the services' own keep-alive (uvicorn: 5 s) ends
    # them: at equal timeouts a request can leave on a connection the server is closing (ReadError).
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(
        timeout=5, limits=httpx.Limits(keepalive_expiry=1)))
    signing_secrets: dict[str, str] = field(default_factory=dict)  # unit -> what it signs inbound records with

    @property
    def topics(self):
        from shared.topics import Topics
        return Topics(f"{self.prefix}.")

    def url(self, service: str, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.replicas[service][index].port}"

    def ingest_urls(self) -> list[str]:
        return [self.url("ingest", r.index) for r in self.replicas["ingest"]]

    def group(self, service: str, suffix: str = "") -> str:
        return f"{self.prefix}-{service}{suffix}"

    def groups(self) -> list[tuple[str, str]]:
        """(consumer group, topic) of every subscriber of the deployment."""
        return [(self.group(service, suffix), getattr(self.topics, attr))
                for service, subs in CONSUMERS.items() for attr, suffix in subs]

    # --- processes ---
    async def start(self, service: str, index: int = 0) -> None:
        await asyncio.to_thread(self.replicas[service][index].start_blocking)

    async def stop(self, service: str, index: int = 0, sig: signal.Signals = signal.SIGKILL,
                   scraped: bool = False) -> None:
        """Scrape the replica's counters (unless just `scraped`), then signal it at once
        and wait until it is gone."""
        replica = self.replicas[service][index]
        if not scraped:
            await self.scrape(replica)
        replica.proc.send_signal(sig)
        await asyncio.to_thread(replica.proc.wait, 60)
        replica.gone()

    async def wait_busy(self, service: str, index: int = 0, timeout: float = 3.0) -> bool:
        """Wait (a little) until the replica has a record in hand, so a kill cuts into it."""
        return await self.wait_any_busy([(service, index)], timeout) is not None

    async def wait_any_busy(self, candidates: list[tuple[str, int]], timeout: float = 3.0) -> tuple[str, int] | None:
        """The first of the (service, index) replicas seen with a record in hand within
        `timeout`, just scraped (so a kill right now cuts into it); None if none was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service, index in candidates:
                replica = self.replicas[service][index]
                await self.scrape(replica)
                if any(replica.busy.values()):
                    return service, index
            await asyncio.sleep(0.01)
        return None

    async def scrape(self, replica: Replica) -> None:
        if not replica.alive:
            return
        try:
            text = (await self.http.get(f"http://127.0.0.1:{replica.port}/metrics")).text
        except httpx.HTTPError:
            return
        # Only these samples are read, with no full parse of every family, so that a kill
        # decided on what this scrape saw follows it at once.
        received, busy, failed = {}, {}, 0.0
        for line in text.splitlines():
            name, _, rest = line.partition("{")
            if name not in (RECEIVED, IN_PROCESS, FAILED):
                continue
            labels, _, value = rest.rpartition("} ")
            if name == FAILED:
                failed += float(value)
                continue
            topic = labels.partition('handler="')[2].partition('"')[0]
            target = received if name == RECEIVED else busy
            target[topic] = target.get(topic, 0) + float(value)
        replica.last, replica.busy, replica.failed = received, busy, failed

    async def scrape_all(self) -> None:
        await asyncio.gather(*(self.scrape(r) for rs in self.replicas.values() for r in rs))

    async def handler_failures(self) -> float:
        """Handler failures (a record or batch handed back to be read again) of the running
        processes, scraped now."""
        await self.scrape_all()
        return sum(r.failed for rs in self.replicas.values() for r in rs if r.alive)

    def received(self) -> dict[tuple[str, str], float]:
        """Records received per (service, topic), over every process that ran."""
        totals: dict[tuple[str, str], float] = {}
        for service, replicas in self.replicas.items():
            for replica in replicas:
                for counts in [*replica.past, replica.last]:
                    for topic, n in counts.items():
                        totals[(service, topic)] = totals.get((service, topic), 0) + n
        return totals


async def _scraping(deployment: Deployment, every: float = 1.0) -> None:
    while True:
        await deployment.scrape_all()
        await asyncio.sleep(every)


@asynccontextmanager
async def deployed(*, kafka: str, mongo: str, prefix: str, logs: Path, replicas: dict[str, int] | None = None,
                   service_kafka: dict[str, str] | None = None, service_mongo: str | dict[str, str] | None = None,
                   extra: dict[str, str] | None = None):
    """The four services (replicas as asked) on `kafka` and `mongo`; services may reach
    them through other addresses (a proxy): `service_kafka` per service, `service_mongo`
    for all or per service."""
    per_service_mongo = service_mongo if isinstance(service_mongo, dict) else {}
    service_mongo = None if isinstance(service_mongo, dict) else service_mongo
    replicas = {s: 1 for s in SERVICES} | (replicas or {})
    smtp_port = infra.free_port()
    controller, mailbox = mailsink.serve(smtp_port, None)
    keys = {unit: f"faults-{unit.lower()}-{prefix}" for unit in UNITS}
    signing_secrets = {unit: new_signing_secret() for unit in UNITS}
    ports = {s: infra.free_port() for s in SERVICES}
    groups = {f"NQT_{s.upper()}_GROUP": f"{prefix}-{s}" for s in SERVICES}
    env = stack.service_env(kafka=kafka, mongo=service_mongo or mongo, smtp_port=smtp_port, ports=ports,
                            dev_keys={key: unit for unit, key in keys.items()},
                            extra={"NQT_TOPIC_PREFIX": f"{prefix}.", "NQT_DB_PREFIX": prefix,
                                   "NQT_TOPIC_PARTITIONS": "4", "NQT_ENV": "test",
                                   "NQT_CLOCK_FIXED": "2021-04-05T09:00:00+07:00",
                                   "NQT_INGEST_RATE_LIMIT": "100000/minute",
                                   "NQT_INGEST_DEV_SIGNING_SECRETS": json.dumps(signing_secrets),
                                   # no cycles and no report rendering: the load is the events
                                   "NQT_REPORTS_SCHEDULER": "false",
                                   "NQT_NOTIFY_LEASE_SECONDS": "5", "NQT_NOTIFY_RETRY_SECONDS": "1",
                                   **groups, **(extra or {})})
    fleet: dict[str, list[Replica]] = {}
    for service in SERVICES:
        fleet[service] = []
        for index in range(replicas[service]):
            port = ports[service] if index == 0 else infra.free_port()
            own = {**env, f"NQT_{service.upper()}_PORT": str(port)}
            if service_kafka and service in service_kafka:
                own["NQT_KAFKA_BOOTSTRAP"] = service_kafka[service]
            if service in per_service_mongo:
                own["NQT_MONGO_URL"] = per_service_mongo[service]
            fleet[service].append(Replica(service, index, port, own, logs / f"{service}-{index}.log"))
    deployment = Deployment(kafka=kafka, mongo=mongo, prefix=prefix, keys=keys, mailbox=mailbox, replicas=fleet,
                            env=env, logs=logs, signing_secrets=signing_secrets)
    scraper = None
    try:
        await asyncio.gather(*(deployment.start(s, r.index) for s, rs in fleet.items() for r in rs))
        await load_registry(deployment)
        scraper = asyncio.create_task(_scraping(deployment))
        yield deployment
    finally:
        if scraper:
            scraper.cancel()
        for replica in [r for rs in fleet.values() for r in rs if r.alive]:
            replica.proc.terminate()
        for replica in [r for rs in fleet.values() for r in rs if r.proc is not None]:
            try:
                await asyncio.to_thread(replica.proc.wait, 30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
        await deployment.http.aclose()
        controller.stop()


async def load_registry(deployment: Deployment) -> None:
    """The reference model's units and programmes, as `nqt registry load` would publish them;
    then wait until every consumer of the registry knows the units."""
    topic = deployment.topics.accepted
    for raw in REGISTRY:
        key, value = accepted.stamp(parse_event(raw))
        await kafkatools.produce(deployment.kafka, topic, [value], key=key.encode())
    from shared import mongo as shared_mongo
    client = shared_mongo.connect(deployment.mongo)
    try:
        async def known() -> list[int]:
            return [await client[f"{deployment.prefix}_{s}"].units.count_documents({})
                    for s in ("programs", "ingest", "notify", "reports")]
        await kafkatools.eventually(known, lambda n: all(c >= len(UNITS) for c in n), timeout=90, interval=0.3)
    finally:
        await client.close()


# --- infrastructure of a scenario's own ---------------------------------------------

class _Restartable:
    server: infra.Server | None

    def kill(self) -> None:
        self.server.stop(kill=True)

    def stop(self) -> None:
        if self.server:
            self.server.stop()


@dataclass
class Broker(_Restartable):
    """A Kafka broker of one scenario's own, killed and started again on the same ports and data."""
    workdir: Path
    port: int
    controller_port: int
    advertised_port: int | None = None
    server: infra.Server | None = None

    def start(self) -> "Broker":
        self.server = infra.start_kafka(self.workdir, self.port, self.controller_port, heap="384m",
                                        advertised_port=self.advertised_port)
        return self

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Mongo(_Restartable):
    """A FerretDB of one scenario's own, killed and started again on the same port and data."""
    workdir: Path
    port: int
    server: infra.Server | None = None

    def start(self) -> "Mongo":
        self.server = infra.start_ferretdb(self.workdir, self.port)
        return self

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"
