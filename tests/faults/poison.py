"""Poison records for every topic a service consumes, and the proof they were handled:
each dead-lettered, bytes unchanged, to `<topic>.dlq` with headers naming the error,
by every consumer that could not process it; the partition kept moving."""

from __future__ import annotations

import os
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from shared import kafka
from tests import kafkatools
from tests.faults import checker, harness
from tests.faults.harness import Deployment

HUGE = 1_000_000          # under the broker's message.max.bytes (1,048,588 by default): it gets in
OVER_THE_LIMIT = 1_100_000  # over it: the broker refuses it, nothing to dead-letter
# (Topics attribute, key: the partition of valid records that follow, consumers that must dead-letter it)
TOPICS = (("inbound", b"SO-KHDT", {"ingest"}), ("accepted", b"01", {"programs"}),
          ("outcomes", b"SO-KHDT", {"ingest", "notify"}), ("changes", b"01", {"ingest", "reports", "notify"}),
          ("due", b"2021-Q1", {"notify"}), ("generated", b"2021-Q1", {"notify"}))
HEADERS = ("error-class", "error-message", "attempts", "first-failure", "original-topic", "original-partition",
           "original-offset", "service")


@dataclass(frozen=True)
class Injected:
    topic: str
    partition: int
    offset: int
    kind: str
    consumers: frozenset[str]
    size: int


def records() -> list[tuple[str, bytes, set[str] | None]]:
    """(kind, value, consumers that must dead-letter it; None: every consumer of the topic)."""
    return [("random bytes", os.urandom(300), None),
            ("wrong schema", kafka.dumps({"unexpected": True, "n": 1}), None),
            ("huge", kafka.dumps({"pad": "x" * (HUGE - 20)}), None)]


async def inject(deployment: Deployment) -> list[Injected]:
    """One of each poison on every consumed topic, keyed like the valid records around it."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.kafka, acks="all", max_request_size=2 * HUGE)
    await producer.start()
    out = []
    try:
        for attr, key, consumers in TOPICS:
            topic = getattr(deployment.topics, attr)
            poisons = records()
            if attr == "changes":  # well-formed but unusable: a task change without its seq (refused at once
                # by the change's model, so that it cannot stall its batch)
                poisons.append(("unusable", kafka.dumps({"kind": "task", "id": "poison", "state": {}}),
                                {"reports", "notify"}))
            for kind, value, who in poisons:
                # Signed like the unit's valid records around it, so each meets the check it is about
                # (not the signature's): ingest refuses it as malformed, invalid or too large.
                headers = kafkatools.signature(value, deployment.signing_secrets["SO-KHDT"]) if attr == "inbound" else []
                meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
                out.append(Injected(topic, meta.partition, meta.offset, kind, frozenset(who or consumers), len(value)))
    finally:
        await producer.stop()
    return out


async def over_the_limit(deployment: Deployment) -> int:
    """A record over the broker's size limit is refused at the door: the producer is told."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.kafka, acks="all", max_request_size=2 * OVER_THE_LIMIT)
    await producer.start()
    refused = 0
    try:
        for attr, key, _ in TOPICS:
            try:
                await producer.send_and_wait(getattr(deployment.topics, attr), b"x" * OVER_THE_LIMIT, key=key)
            except MessageSizeTooLargeError:
                refused += 1
    finally:
        await producer.stop()
    assert refused == len(TOPICS), f"the broker took a record over its limit ({refused} of {len(TOPICS)} refused)"
    return refused


async def verify(deployment: Deployment, injected: list[Injected]) -> tuple[int, int]:
    """Every poison record dead-lettered by each consumer that had to, with its reason, and
    the valid records after it on its partition processed (the consumer groups moved past it).
    How many, and how often they were tried again before they were decided."""
    by_topic: dict[str, dict] = {}
    for topic in {i.topic for i in injected}:
        letters = await checker.read_all(deployment.kafka, topic + ".dlq")
        by_topic[topic] = {}
        for record in (r for part in letters.values() for r in part):
            headers = {k: v.decode() for k, v in record.headers or ()}
            where = (headers.get("nqt-dlq-original-partition"), headers.get("nqt-dlq-original-offset"),
                     headers.get("nqt-dlq-service"))
            by_topic[topic][where] = (record, headers)
    committed = await checker.Offsets(deployment.kafka).committed([g for g, _ in deployment.groups()])
    group_of = {(getattr(deployment.topics, attr), service): deployment.group(service, suffix)
                for service, subs in harness.CONSUMERS.items() for attr, suffix in subs}
    count = tried_again = 0
    for poison in injected:
        for service in poison.consumers:
            found = by_topic[poison.topic].get((str(poison.partition), str(poison.offset), service))
            assert found, f"{service} did not dead-letter the {poison.kind} record {poison.topic}/{poison.partition}" \
                          f"@{poison.offset}"
            record, headers = found
            missing = [h for h in HEADERS if not headers.get(f"nqt-dlq-{h}")]
            assert not missing, f"dead letter of {poison.kind} on {poison.topic} lacks headers {missing}"
            assert len(record.value) == poison.size, "the dead letter's bytes are not the original's"
            if poison.kind == "unusable":  # every change's fields are checked before any is applied
                assert headers["nqt-dlq-error-class"] == "Poison", headers
            tried_again += int(headers["nqt-dlq-attempts"]) - 1
            group = group_of[(poison.topic, service)]
            tp = next(tp for (g, tp) in committed if g == group and tp.partition == poison.partition
                      and tp.topic == poison.topic)
            assert committed[(group, tp)] > poison.offset, f"{group} stalled at {poison.topic}/{tp.partition}"
            count += 1
    return count, tried_again
