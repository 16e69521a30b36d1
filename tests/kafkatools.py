"""Small real-Kafka helpers for tests: read a topic from the beginning until enough arrived;
sign a record for `inbound.events` as a unit's system does; end offsets and consumer groups' progress."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime, timezone
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks import Webhook

from shared import kafka


def signature(value: bytes, secret: str, *, msg_id: str | None = None,
              at: datetime | None = None) -> list[tuple[str, bytes]]:
    """The Standard Webhooks headers of a record on inbound.events, signed over its value."""
    msg_id, at = msg_id or f"msg-{secrets.token_hex(8)}", at or datetime.now(timezone.utc)
    signed = Webhook(secret).sign(msg_id, at, value.decode("utf-8", "replace"))
    return [("webhook-id", msg_id.encode()), ("webhook-timestamp", str(int(at.timestamp())).encode()),
            ("webhook-signature", signed.encode())]


async def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_many(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], **options) -> None:
    """Produce many (key, value) records, waiting for all acknowledgements at the end."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                **options)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, *, until: Callable[[list], bool], timeout: float = 30.0,
                     decode: bool = True) -> list:
    """All records of `topic` (values, JSON-decoded by default) once `until(records)` holds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part in batch.values():
                records += [orjson.loads(r.value) if decode else r for r in part]
            if until(records):
                return records
        raise AssertionError(f"timed out after {timeout}s on {topic}; got {len(records)} record(s): "
                             f"{records[-5:]}")
    finally:
        await consumer.stop()


async def eventually(fetch, done: Callable = bool, *, timeout: float = 30.0, interval: float = 0.2):
    """Await `fetch()` until `done(value)`; return that value, or fail showing the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fetch()
        if done(last):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def programme_status(reports, code: str) -> dict | None:
    """Programme `code` as `GET /v1/status` shows it now; None until the status lists it (the status
    is made again after batches, so a request may see the one made before the latest batch)."""
    return next((p for p in (await reports.get("/v1/status")).json()["programmes"] if p["code"] == code), None)


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of `topics` (no group, nothing read)."""
    return await kafka.end_offsets({"bootstrap_servers": bootstrap}, topics)


async def drained(bootstrap: str, groups: dict[str, str]) -> bool:
    """True when every consumer group (-> its topic) has committed the end of its topic."""
    return await kafka.drained({"bootstrap_servers": bootstrap}, groups)
