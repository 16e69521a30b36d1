"""Kafka helpers: the broker every service uses (idempotent producer, acks=all, the
consumers' failure handling of `shared.consumer`), topic creation, JSON (de)serialisation."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from prometheus_client import REGISTRY

from shared.consumer import DeadLetters, LetGoOfBatch, Poison, attach, dead_letter_middleware
from shared.settings import CommonSettings

log = logging.getLogger("nqt.kafka")

# Commit only after the handler has written its effects; on error rewind so the record
# is read again (`shared.consumer` decides when a record is given up).
COMMIT_AFTER_WRITE = AckPolicy.NACK_ON_ERROR


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def record(body: bytes, *, required: tuple[str, ...] = ()) -> dict:
    """A record value that must be a JSON object with the `required` keys; Poison otherwise."""
    try:
        value = loads(body)
    except ValueError as err:
        raise Poison(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise Poison("not a JSON object")
    missing = [k for k in required if value.get(k) in (None, "")]
    if missing:
        raise Poison(f"missing {', '.join(missing)}")
    return value


def _ssl_context(settings: CommonSettings):
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    return create_ssl_context(cafile=settings.kafka_ssl_cafile)


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """Connection and authentication options for any raw aiokafka client (consumer, producer, admin)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_username,
                       sasl_plain_password=settings.kafka_password.get_secret_value())
    if settings.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = _ssl_context(settings)
    return options


def broker_security(settings: CommonSettings) -> BaseSecurity | None:
    """The same authentication as `client_options`, in FastStream's terms (KafkaBroker(security=...))."""
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return None
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(settings.kafka_username, settings.kafka_password.get_secret_value(),
                 ssl_context=_ssl_context(settings), use_ssl=settings.kafka_security_protocol == "SASL_SSL")


def make_broker(settings: CommonSettings, *, service: str, max_attempts: int = 5) -> KafkaBroker:
    """The broker of one service: idempotent producer with acks=all, Prometheus and dead letters."""
    letters = DeadLetters(service)
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        security=broker_security(settings),
        client_id=f"nqt-{service}",
        enable_idempotence=True,
        acks="all",
        # A consumer publishes a batch's changes and outcomes at once (megabytes): in batches of
        # 16 KB, the default, each partition waits a round trip per 16 KB; measured here, 512 KB
        # batches send 1.5-2 times as many records/s (a batch is sent as soon as it is ready: no linger).
        max_batch_size=512 * 1024,
        allow_auto_create_topics=False,
        request_timeout_ms=30_000,
        graceful_timeout=20.0,
        middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"nqt-{service}"),
                     dead_letter_middleware(letters, max_attempts=max_attempts), LetGoOfBatch],
        # A plain logger (no handler of its own): its lines go through the JSON root handler.
        logger=logging.getLogger(f"nqt.{service}.broker"),
        log_level=logging.DEBUG,
    )
    attach(broker, letters)
    return broker


def producer(broker: KafkaBroker):
    """The aiokafka producer under FastStream's broker (started with it). Its `send` gathers
    records into per-partition batches by itself, without FastStream's per-message middleware:
    the path for a consumer that publishes hundreds of records per batch."""
    return broker.config.producer._producer.producer


async def send_all(broker: KafkaBroker, records: list[tuple[str, bytes, bytes]]) -> None:
    """Send every (topic, key, value), then wait until the broker acknowledged them all (acks=all,
    idempotent: a partition keeps their order). The records go in one batch per partition (more
    when they outgrow `max_batch_size`), placed as the producer's default partitioner places a
    key: a `send` per record cost a future and a metadata lookup each, a seventh of programs' time."""
    kafka_producer = producer(broker)
    by_partition: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    counts: dict[str, int] = {}
    for topic, key, value in records:
        if topic not in counts:
            counts[topic] = len(await kafka_producer.partitions_for(topic))
        by_partition.setdefault((topic, partition_of(key, counts[topic])), []).append((key, value))
    acks = []
    for (topic, partition), pairs in by_partition.items():
        acks += await _send_batches(kafka_producer, topic, partition, pairs)
    await asyncio.gather(*acks)


async def _send_batches(kafka_producer, topic: str, partition: int, pairs: list[tuple[bytes, bytes]]) -> list:
    """Hand a partition's records to the producer in as few batches as its batch size allows."""
    acks, batch = [], None
    for key, value in pairs:
        if batch is not None and batch.append(key=key, value=value, timestamp=None) is not None:
            continue
        if batch is not None:
            acks.append(await kafka_producer.send_batch(batch, topic, partition=partition))
        batch = kafka_producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # larger than a batch: alone
            acks.append(await kafka_producer.send(topic, value, key=key, partition=partition))
            batch = None
    if batch is not None:
        acks.append(await kafka_producer.send_batch(batch, topic, partition=partition))
    return acks


@functools.lru_cache(maxsize=4096)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producer's default partitioner gives a key (murmur2, as Kafka's Java client).
    Remembered: keys are few (programmes, units) and aiokafka's murmur2 is pure Python, a few
    microseconds a key, paid twice per event by programs (its change and its outcome)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# What the consumer fetches ahead, per partition, while a batch is applied: aiokafka's default
# (1 MB) over 12 partitions keeps some 12 MB of records waiting; a quarter of it still holds a few
# thousand changes, more than a batch takes.
FETCH_PARTITION_BYTES = 256 * 1024

# How long the broker may hold a fetch that finds nothing new. aiokafka sends one fetch per broker at
# a time, and while a partition's records wait for a handler slower than its prefetch backoff (100 ms)
# it fetches only the other partitions: under load the idle ones, which the broker then holds for
# this long while new records of the busy partitions wait behind it. At aiokafka's default (500 ms)
# that was the largest part of the freshness p99 at 500 events/s (programs and reports each waited
# 0.4-0.6 s several times a run). What it costs: an idle consumer's fetch comes back empty ten times
# a second instead of twice.
FETCH_MAX_WAIT_MS = 100


def batch_subscriber(runtime, topic: str, *, group_id: str, max_records: int, listener=None):
    """A subscriber that reads up to `max_records` at a time and commits them after the
    handler's writes; on an outage the whole batch is read again (after a pause). The
    handler decides what to do with records that fail otherwise (`apply_batch`). `listener`
    (an aiokafka ConsumerRebalanceListener) hears which partitions the replica gets and loses.
    The handler reads the records themselves (`msg.raw_message`, each value decoded once by its
    reader), so FastStream does not decode their bodies first."""
    return runtime.broker.subscriber(topic, group_id=group_id, batch=True, max_records=max_records,
                                     batch_timeout_ms=100, ack_policy=COMMIT_AFTER_WRITE,
                                     auto_offset_reset="earliest", listener=listener, decoder=_undecoded,
                                     max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
                                     fetch_max_wait_ms=FETCH_MAX_WAIT_MS)


def _undecoded(message) -> None:
    """A batch's decoded body, which no handler reads: FastStream's own decoder made a message
    object (a uuid4 each) and parsed every record's value as JSON (5% of programs' time, 13% of
    reports' in the pipeline), in one stretch that held the event loop, and every request the
    process serves, for tens of ms per batch."""
    return None


async def ensure_topics(settings: CommonSettings, names: list[str] | None = None) -> None:
    """Create the topics if they do not exist (idempotent; safe with several replicas).
    Nothing to do when NQT_KAFKA_CREATE_TOPICS is false: the operator created them."""
    if not settings.kafka_create_topics:
        return
    names = names or settings.topics.all()
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="nqt-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(n, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication,
                          topic_configs=settings.topics.config(n)) for n in missing])
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


async def end_offsets(options: dict[str, Any], topics: list[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of `topics` (no group, nothing read); `options` as
    `client_options` gives them."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        parts = [TopicPartition(d["topic"], p["partition"]) for d in await admin.describe_topics(topics)
                 for p in d["partitions"]]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return {(tp.topic, tp.partition): end for tp, end in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()


async def drained(options: dict[str, Any], groups: dict[str, str]) -> bool:
    """True when every consumer group (-> its topic) has committed the end of its topic."""
    ends = await end_offsets(options, sorted(set(groups.values())))
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        for group, topic in groups.items():
            committed = {(tp.topic, tp.partition): meta.offset
                         for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
            if any(end > committed.get(where, 0) for where, end in ends.items() if where[0] == topic):
                return False
        return True
    finally:
        await admin.close()
