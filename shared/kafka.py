"""Kafka helpers: the broker every service uses (idempotent producer, acks=all),
topic creation, JSON (de)serialisation and the dead-letter middleware."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream import AckPolicy
from faststream._internal.middlewares import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from prometheus_client import REGISTRY

from shared import metrics
from shared.settings import CommonSettings
from shared.topics import Topics

log = logging.getLogger("nqt.kafka")

# Commit only after the handler has written its effects; on error rewind so the
# record is read again (the dead-letter middleware bounds how often).
COMMIT_AFTER_WRITE = AckPolicy.NACK_ON_ERROR


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


class Poison(Exception):
    """A record that can never be processed (bad bytes, wrong schema): dead-letter it at once."""


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
    dead_letter = dead_letter_middleware(service=service, max_attempts=max_attempts)
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        security=broker_security(settings),
        client_id=f"nqt-{service}",
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        request_timeout_ms=30_000,
        graceful_timeout=20.0,
        middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"nqt-{service}"), dead_letter],
        # A plain logger (no handler of its own): its lines go through the JSON root handler.
        logger=logging.getLogger(f"nqt.{service}.broker"),
        log_level=logging.DEBUG,
    )
    dead_letter.broker = broker
    return broker


def dead_letter_middleware(*, service: str, max_attempts: int, backoff_s: float = 0.2):
    """Retry a failing record with backoff (the subscriber rewinds on error), then move
    its bytes unchanged to `<topic>.dlq` with headers naming the failure, so the
    partition keeps moving. Poison records go there on the first failure."""
    first_failures: OrderedDict[tuple[str, int, int], tuple[int, str]] = OrderedDict()

    class DeadLetter(BaseMiddleware):
        broker: KafkaBroker | None = None

        async def consume_scope(self, call_next, msg):
            try:
                return await call_next(msg)
            except Exception as exc:
                record = msg.raw_message
                if isinstance(record, tuple):  # batch: pause, then let the subscriber rewind it
                    log.warning("retrying a batch of %d after %s: %s", len(record), type(exc).__name__, exc)
                    await asyncio.sleep(backoff_s * 5)
                    raise
                where = (record.topic, record.partition, record.offset)
                attempts, first = first_failures.pop(where, (0, _now()))
                attempts += 1
                if not isinstance(exc, Poison) and attempts < max_attempts:
                    first_failures[where] = (attempts, first)
                    while len(first_failures) > 10_000:
                        first_failures.popitem(last=False)
                    log.warning("retrying %s/%s@%s after %s (attempt %d)", *where, type(exc).__name__, attempts)
                    await asyncio.sleep(backoff_s * 2 ** (attempts - 1))
                    raise
                await _send_to_dlq(DeadLetter.broker, record, exc, attempts, first, service)
                return None

    return DeadLetter


def batch_subscriber(runtime, topic: str, *, group_id: str, max_records: int):
    """A subscriber that reads up to `max_records` at a time and commits them after the
    handler's writes; on an error the whole batch is read again (after a pause).
    Records that can never be processed are for the handler to `dead_letter` one by one."""
    return runtime.broker.subscriber(topic, group_id=group_id, batch=True, max_records=max_records,
                                     batch_timeout_ms=100, ack_policy=COMMIT_AFTER_WRITE,
                                     auto_offset_reset="earliest")


async def read_batch(broker, records, read: Callable[[bytes], Any], *, service: str) -> list:
    """`read` each record's value; a record it refuses (Poison) goes to `<topic>.dlq` at once,
    so one bad record does not fail, and so stall, the batch. The others, in order."""
    values = []
    for record in records:
        try:
            values.append(read(record.value))
        except Poison as err:
            await dead_letter(broker, record, err, service=service)
    return values


async def dead_letter(broker, record, exc: Poison, *, service: str) -> None:
    """Move one record of a batch to `<topic>.dlq` at once (Poison: retrying cannot help)."""
    await _send_to_dlq(broker, record, exc, 1, _now(), service)


async def _send_to_dlq(broker, record, exc: Exception, attempts: int, first: str, service: str) -> None:
    headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ()) if not k.startswith("nqt-dlq-")}
    headers.update({
        "nqt-dlq-error-class": type(exc).__name__,
        "nqt-dlq-error-message": str(exc)[:2000],
        "nqt-dlq-attempts": str(attempts),
        "nqt-dlq-first-failure": first,
        "nqt-dlq-original-topic": record.topic,
        "nqt-dlq-original-partition": str(record.partition),
        "nqt-dlq-original-offset": str(record.offset),
        "nqt-dlq-service": service,
    })
    await broker.publish(record.value or b"", Topics.dlq(record.topic), key=record.key, headers=headers)
    metrics.DEAD_LETTERS.labels(topic=record.topic, error=type(exc).__name__).inc()
    log.error("dead-lettered %s/%s@%s: %s: %s", record.topic, record.partition, record.offset,
              type(exc).__name__, exc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


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
