"""Gathers the history of a scenario once it settled (the topics, each service's records,
what the publishers read back from ingest, the mail received) and has `judge` hold it to
what the load generator was acknowledged; and counts what was delivered again.

Redeliveries are counted from what can be observed: records a consumer received more often
than its topic holds them, and copies on `events.accepted` beyond the acknowledgements."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.programs.store import ProgramsStore
from shared import mongo
from tests.faults.harness import Deployment
from tests.faults.judge import ACCEPT_ID, History, Verdict, judge
from tests.faults.load import Load

FINAL = ("applied", "rejected", "duplicate")


# --- Kafka: whole topics, offsets, groups -------------------------------------------

async def _assigned(consumer: AIOKafkaConsumer, topics: list[str], timeout: float = 30) -> list[TopicPartition]:
    """The partitions of `topics`, once a group-less consumer subscribed to them has them all."""
    async with asyncio.timeout(timeout):
        while {tp.topic for tp in consumer.assignment()} != set(topics):
            await asyncio.sleep(0.05)
    return sorted(consumer.assignment())


async def read_all(bootstrap: str, topic: str, timeout: float = 60) -> dict[int, list]:
    """Every record of `topic` up to its end as of now, per partition in offset order."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=2 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = await _assigned(consumer, [topic])
        ends = await consumer.end_offsets(partitions)
        records: dict[int, list] = {tp.partition: [] for tp in partitions}
        async with asyncio.timeout(timeout):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=300)
                for tp, part in batch.items():
                    records[tp.partition] += [r for r in part if r.offset < ends[tp]]
        return records
    finally:
        await consumer.stop()


class Offsets:
    """End offsets of topics and committed offsets of consumer groups, for lag and catch-up."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        topics = sorted(set(topics))
        consumer = AIOKafkaConsumer(*topics, bootstrap_servers=self.bootstrap, group_id=None,
                                    request_timeout_ms=10_000)
        await consumer.start()
        try:
            return await consumer.end_offsets(await _assigned(consumer, topics))
        finally:
            await consumer.stop()

    async def committed(self, groups: list[str]) -> dict[tuple[str, TopicPartition], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            out = {}
            for group in groups:
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                    out[(group, tp)] = meta.offset
            return out
        finally:
            await admin.close()

    async def lag(self, deployment: Deployment, ends: dict[TopicPartition, int]) -> dict[str, int]:
        """Per consumer group, the records of `ends` it has not committed yet (only those behind)."""
        committed = await self.committed([g for g, _ in deployment.groups()])
        lag: Counter = Counter()
        for group, topic in deployment.groups():
            for tp, end in ends.items():
                if tp.topic == topic:
                    lag[group] += max(0, end - max(committed.get((group, tp), 0), 0))
        return {g: n for g, n in lag.items() if n}


# --- the check -------------------------------------------------------------------------

async def reread(deployment: Deployment, services: list[str] | None = None) -> int:
    """Records the consumers (of `services`, default all) received beyond what their topics
    hold: read again after a crash, a failed write or a rebalance. Processes are scraped now
    (dead ones were when they died). A lower bound at any moment: a backlog not yet read hides
    re-reads until it is, and nothing is ever counted that was not received."""
    await deployment.scrape_all()
    sizes = await Offsets(deployment.kafka).ends([t for _, t in deployment.groups()])
    per_topic = Counter()
    for tp, end in sizes.items():
        per_topic[tp.topic] += end  # topics are never truncated here: end offset = records held
    return sum(max(0, int(received) - per_topic.get(topic, 0))
               for (service, topic), received in deployment.received().items()
               if services is None or service in services)


async def check(deployment: Deployment, load: Load) -> Verdict:
    """The verdict on the scenario so far, with the records read again up to now."""
    verdict = judge(await gather(deployment, load), load)
    verdict.redeliveries["reread"] = await reread(deployment)
    return verdict


async def gather(deployment: Deployment, load: Load) -> History:
    """What the system shows now: events.accepted, programs' and notify's records, each
    acknowledged event as its publisher reads it back, the live status, the mail received."""
    accepted = {partition: [raw for raw in map(_stamped, records) if raw is not None]
                for partition, records in (await read_all(deployment.kafka, deployment.topics.accepted)).items()}
    client = mongo.connect(deployment.mongo)
    try:
        programs = client[f"{deployment.prefix}_programs"]
        outcomes = await ProgramsStore(programs).all_outcomes()
        tasks = {d["_id"]: d for d in await ProgramsStore(programs).current_tasks()}
        held = {d["_id"] async for d in programs.held.find({}, {"_id": 1})}
        deliveries: dict[str, str] = {}
        async for d in client[f"{deployment.prefix}_notify"].deliveries.find({"kind": "rejected"}, {"body": 0}):
            key = d["_id"].split("|")[1]  # rejected|<event key>|<recipient>|<day>
            deliveries[key] = "; ".join(filter(None, [deliveries.get(key), f"{d['status']}, created "
                                                      f"{d.get('created_at')}, attempts {d.get('attempts')}"]))
    finally:
        await client.close()
    sent = {f"{r['source']}:{r['id']}" for records in accepted.values() for r in records}
    keys = sorted(set(load.accepted) | (sent & set(load.events)))
    status = (await deployment.http.get(f"{deployment.url('reports')}/v1/status", timeout=30)).json()
    return History(accepted=accepted, outcomes=outcomes, tasks=tasks, held=held,
                   statuses=await _statuses(deployment, keys), status=status,
                   notices=[mail["X-NQT-Notification"] or "" for mail in deployment.mailbox.snapshot()],
                   deliveries=deliveries)


def _stamped(record) -> dict | None:
    """A record of events.accepted as ingest stamped it; None for what is not an event sent
    (poison on purpose, dead-lettered and checked by its scenario; the registry's entries)."""
    try:
        raw = orjson.loads(record.value)
    except ValueError:
        return None
    if not isinstance(raw, dict) or ACCEPT_ID not in raw or str(raw.get("type")).startswith("registry."):
        return None
    return raw


async def _statuses(deployment: Deployment, keys: list[str]) -> dict[str, dict]:
    """`GET /v1/events/{id}` of each event, with its unit's key, as the publisher reads it."""
    gate = asyncio.Semaphore(8)

    async def read(key: str) -> tuple[str, dict | None]:
        source, event_id = key.split(":", 1)
        async with gate:
            response = await deployment.http.get(f"{deployment.url('ingest')}/v1/events/{event_id}", timeout=30,
                                                 headers={"Authorization": f"Bearer {deployment.keys[source]}"})
        if response.status_code == 404:
            return key, None
        response.raise_for_status()
        return key, response.json()

    return {key: status for key, status in await asyncio.gather(*map(read, keys)) if status is not None}
