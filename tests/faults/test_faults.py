"""Fault injection: under a steady load of mixed events, break one thing on purpose, many
times, and hold the history to the promise: every acknowledged event decided once, every
rejection told once by identity, the state and counters as the reference model has them.

Short versions run in `make test`; `make faults` runs the long ones (NQT_FAULTS=long),
prints the summary table and writes out/faults.json."""

from __future__ import annotations

import asyncio
import signal
from typing import Awaitable, Callable

import pytest

from deploy.local import infra
from tests.faults import checker, poison, scenarios
from tests.faults.harness import Broker, Mongo
from tests.faults.proxy import Proxy
from tests.faults.scenarios import Run

pytestmark = pytest.mark.faults

DOWN_AT_MOST_S = 60.0  # a crashed server stays down at most this long waiting for a client to feel it
Measure = Callable[[Run], Awaitable[float] | float]


def kill(service: str):
    """kill -9 of `service` at random moments, each time while it has a record (or, for
    ingest, a request) in hand, then started again; then more kills until one is seen to have
    made something be delivered again: a record read again, or (ingest) a request retried."""
    async def once(run: Run) -> None:
        await run.pause()
        if service == "ingest":
            busy = bool(await scenarios.poll(lambda: run.load.in_flight > 0, 3, every=0.005))
        else:
            busy = await run.deployment.wait_busy(service)
        # right after the scrape that saw a record in hand, before it can be committed
        await run.deployment.stop(service, 0, signal.SIGKILL, scraped=busy and service != "ingest")
        run.fault_done()
        run.notes.setdefault("killed_busy", []).append(busy)
        await run.deployment.start(service, 0)
        run.fault_over()

    async def redelivered(run: Run) -> int:
        retried = run.load.retried if service == "ingest" else 0
        return retried + await checker.reread(run.deployment, [service])

    async def inject(run: Run) -> None:
        for _ in range(run.intensity.faults):
            await once(run)
        await run.prove(once, lambda: redelivered(run), what=f"record read again by {service}"
                        + (" nor request retried" if service == "ingest" else ""))
    return inject


@pytest.mark.parametrize("service", ["programs", "reports", "notify", "ingest"])
async def test_kill_service(infra_stack, tmp_path, service):
    # Reports, notify and ingest (its outcomes, read in batches) handle records in a few
    # milliseconds, so a kill seldom finds one in hand: they reach MongoDB over a slow link
    # (10 ms each way), as across a network. Programs needs no help (over that link it would
    # fall behind the load).
    slow = slow_link(infra_stack.mongo)
    try:
        await scenarios.run(f"kill-{service}", kill(service), kafka=infra_stack.kafka, mongo_url=infra_stack.mongo,
                            prefix=f"{infra_stack.prefix}k{service[:3]}", logs=tmp_path,
                            service_mongo={service: f"mongodb://127.0.0.1:{slow.port}"}
                            if service in ("reports", "notify", "ingest") else None)
    finally:
        slow.stop()


def slow_link(mongo_url: str) -> Proxy:
    """A link to MongoDB that takes 10 ms each way, so a batch stays in hand long enough for
    a kill to cut into it."""
    slow = Proxy(int(mongo_url.rsplit(":", 1)[1]), infra.free_port(), "mongo").start()
    slow.latency_s = 0.01
    return slow


# --- the infrastructure under fault -------------------------------------------------------

async def test_kill_kafka(infra_stack, tmp_path):
    """kill -9 of the broker's JVM while clients keep posting (they retry on 503), then a
    restart on the same ports and data: a 202 must have meant durable."""
    broker = await asyncio.to_thread(Broker(tmp_path / "kafka", infra.free_port(), infra.free_port()).start)
    # A client felt the outage once a request may have reached ingest and failed (a 503 after
    # the publish timeout, a timeout of its own): it sends the same ids again.
    inject = crash_and_restart(broker, felt=lambda run: run.load.retried, redelivered=lambda run: run.load.retried,
                               what="request retried after the broker went down")
    try:
        await scenarios.run("kill-kafka", inject, kafka=broker.bootstrap, mongo_url=infra_stack.mongo,
                            prefix=f"{infra_stack.prefix}kkafka", logs=tmp_path / "logs")
    finally:
        await asyncio.to_thread(broker.stop)


def crash_and_restart(server, *, felt: Measure, redelivered: Measure, what: str):
    """kill -9 of `server` (a Broker or Mongo of the scenario's own), down for at least the
    outage and until `felt` has grown (a client or consumer failed for want of it), then a
    restart on the same ports and data; as many times as the scenario's intensity asks, and
    more until `redelivered` shows something was delivered again."""
    async def once(run: Run) -> None:
        await run.pause()
        before = await scenarios.poll(lambda: felt(run), 0)
        await asyncio.to_thread(server.kill)
        run.fault_done()
        await asyncio.sleep(run.intensity.outage_s)

        async def grew() -> bool:
            return await scenarios.poll(lambda: felt(run), 0) > before
        run.notes.setdefault("felt", []).append(bool(await scenarios.poll(grew, DOWN_AT_MOST_S)))
        await asyncio.to_thread(server.start)
        run.fault_over()

    async def inject(run: Run) -> None:
        for _ in range(run.intensity.faults):
            await once(run)
        await run.prove(once, lambda: redelivered(run), what=what)
    return inject


async def test_kill_mongo(infra_stack, tmp_path):
    """kill -9 of FerretDB while the consumers write, then a restart on the same port and
    data: the writes in hand fail, the records are read again, none is lost or applied twice."""
    database = await asyncio.to_thread(Mongo(tmp_path / "ferretdb", infra.free_port()).start)

    # A consumer felt the outage once a handler failed: its records are handed back, read again.
    inject = crash_and_restart(database, felt=lambda run: run.deployment.handler_failures(),
                               redelivered=lambda run: checker.reread(run.deployment),
                               what="record read again after the database went down")
    try:
        await scenarios.run("kill-mongo", inject, kafka=infra_stack.kafka, mongo_url=database.url,
                            prefix=f"{infra_stack.prefix}kmongo", logs=tmp_path / "logs")
    finally:
        await asyncio.to_thread(database.stop)


def misbehave(proxy: Proxy):
    """Rounds of latency, dropped connections and a blackhole on `proxy`, and more rounds
    until clients are seen coming back over new connections."""
    async def round_(run: Run) -> None:
        await run.pause()
        proxy.set_latency(0.05)
        await asyncio.sleep(run.intensity.outage_s)
        proxy.set_latency(0.0)
        run.fault_done()
        await run.pause()
        run.notes["dropped"] = run.notes.get("dropped", 0) + proxy.drop()
        run.fault_done()
        await run.pause()
        await asyncio.to_thread(proxy.blackhole, run.intensity.outage_s)
        run.fault_done()
        await asyncio.sleep(1.0)
        run.notes["dropped"] += proxy.drop()  # what the blackhole left hanging
        run.fault_done()

    async def inject(run: Run) -> None:
        for _ in range(run.intensity.faults):
            await round_(run)
        await run.prove(round_, lambda: proxy.stats.reconnects, what="client reconnecting through the proxy")
        run.extra_redeliveries["reconnects"] = proxy.stats.reconnects
        run.notes["connections"] = proxy.stats.connections
    return inject


async def test_proxy_mongo(infra_stack, tmp_path):
    """The services reach MongoDB through a proxy that adds latency, drops connections and
    blackholes for a while."""
    proxy = Proxy(int(infra_stack.mongo.rsplit(":", 1)[1]), infra.free_port(), "mongo").start()
    try:
        await scenarios.run("proxy-mongo", misbehave(proxy), kafka=infra_stack.kafka, mongo_url=infra_stack.mongo,
                            service_mongo=f"mongodb://127.0.0.1:{proxy.port}",
                            prefix=f"{infra_stack.prefix}pmongo", logs=tmp_path)
    finally:
        proxy.stop()


async def test_proxy_kafka(infra_stack, tmp_path):
    """Every Kafka client (the services and the load's own producer) reaches the broker
    through a proxy, which the broker advertises: clients reconnect to the advertised
    listener, so a proxy that was not advertised would be bypassed after the first metadata."""
    proxy = Proxy(infra.free_port(), infra.free_port(), "kafka")
    broker = Broker(tmp_path / "kafka", proxy.target_port, infra.free_port(), advertised_port=proxy.port)
    proxy.start()
    await asyncio.to_thread(broker.start)
    try:
        await scenarios.run("proxy-kafka", misbehave(proxy), kafka=broker.bootstrap, mongo_url=infra_stack.mongo,
                            prefix=f"{infra_stack.prefix}pkafka", logs=tmp_path / "logs")
    finally:
        await asyncio.to_thread(broker.stop)
        proxy.stop()


# --- bad records, moving partitions ----------------------------------------------------------

async def test_poison(infra_stack, tmp_path):
    """Random bytes, JSON of the wrong shape and a huge record on every topic a service
    consumes, between valid records of the same partition: each is dead-lettered with its
    reason by every consumer that cannot process it, and the valid records after it are
    processed (the checker finds none lost). A record over the broker's limit never gets in."""
    injected: list[poison.Injected] = []

    async def inject(run: Run) -> None:
        # Nothing here hangs on timing (every consumer meets every poison record): no more rounds.
        for _ in range(run.intensity.faults):
            await run.pause()
            injected.extend(await poison.inject(run.deployment))
            run.faults = len(injected)
            run.fault_over()
        run.notes["refused_by_broker"] = await poison.over_the_limit(run.deployment)

    async def verify(run: Run) -> None:
        # A bad record that fails in the handler is tried again in the consumer (once it failed the
        # same way twice it is decided), not read again from Kafka: those tries are this scenario's
        # redeliveries. One refused at the door (every consumer now reads through a model) is not.
        run.notes["dead_letters"], run.extra_redeliveries["tried_again"] = await poison.verify(run.deployment,
                                                                                               injected)

    await scenarios.run("poison", inject, kafka=infra_stack.kafka, mongo_url=infra_stack.mongo,
                        prefix=f"{infra_stack.prefix}poison", logs=tmp_path, verify=verify)


async def test_rebalance(infra_stack, tmp_path):
    """Two replicas of programs, reports and notify in one group each; every few seconds
    one replica leaves (kill -9 while busy, then SIGTERM, in turn) or joins again, so
    partitions move between the replicas."""
    moving = ("programs", "notify", "reports")
    batched = ("programs", "reports")  # read in batches, long enough for a kill to cut into one

    async def move(run: Run, service: str, index: int, sig: signal.Signals, busy: bool) -> None:
        await run.deployment.stop(service, index, sig, scraped=busy)
        run.fault_done()
        if sig == signal.SIGKILL:
            run.notes.setdefault("killed_busy", []).append(busy)
        await run.pause()
        await run.deployment.start(service, index)
        run.fault_done()

    async def kill_a_busy_one(run: Run) -> None:
        """kill -9 of whichever replica is first seen with a batch in hand, and back."""
        await run.pause()
        found = await run.deployment.wait_any_busy([(s, r.index) for s in batched for r in run.deployment.replicas[s]])
        service, index = found or (run.rng.choice(batched), 1)
        await move(run, service, index, signal.SIGKILL, busy=found is not None)

    async def inject(run: Run) -> None:
        for i in range(2 * run.intensity.faults):
            service, graceful = moving[i % 3], i % 2 == 1
            await run.pause()
            busy = not graceful and await run.deployment.wait_busy(service, 1)
            await move(run, service, 1, signal.SIGTERM if graceful else signal.SIGKILL, busy)
        # A clean leave commits its batch first, and a kill may land just after a commit: so
        # more kills until records were read again (by the survivor, or the replica back again).
        await run.prove(kill_a_busy_one, lambda: checker.reread(run.deployment, list(moving)),
                        what="batch read again after a replica left")

    # Reports handles a batch in a few milliseconds: over a slow link to MongoDB (10 ms each
    # way) it stays in hand long enough for a kill to cut into it.
    slow = slow_link(infra_stack.mongo)
    try:
        await scenarios.run("rebalance", inject, kafka=infra_stack.kafka, mongo_url=infra_stack.mongo,
                            prefix=f"{infra_stack.prefix}rebal", logs=tmp_path, replicas={s: 2 for s in moving},
                            service_mongo={"reports": f"mongodb://127.0.0.1:{slow.port}"})
    finally:
        slow.stop()
