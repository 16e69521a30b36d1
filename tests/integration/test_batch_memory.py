"""What a consumer keeps of the batches it applied: nothing, even when applying one started
something that lives on (a database client opened during the batch, with its monitors and
connections), against the real Kafka and FerretDB."""

from __future__ import annotations

import gc

from aiokafka.structs import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage

from services.reports.settings import ReportsSettings
from shared import consumer, kafka, mongo
from shared.runtime import Runtime
from tests import kafkatools


async def records_held(topic: str) -> int:
    """How many of `topic`'s records the process still holds (after a full collection)."""
    gc.collect()
    return sum(isinstance(o, ConsumerRecord) and o.topic == topic for o in gc.get_objects())


async def test_a_batch_is_let_go_once_applied_though_it_opened_a_client_that_stays(isolated):
    """A timer started while a batch is in hand (the client's, the commit's) keeps the context it
    started in, with the consumer's message in it: the message must not keep the records."""
    settings = isolated.settings(ReportsSettings)
    topic = settings.topics.changes
    await kafka.ensure_topics(settings, [topic])
    runtime = Runtime("reports", settings, kafka.make_broker(settings, service="reports"))
    clients, applied = [], []

    async def apply(values: list[dict]) -> None:
        client = mongo.connect(settings.mongo_url)  # as a pool opens a connection when a batch needs one
        await client.admin.command("ping")
        clients.append(client)
        applied.extend(values)

    subscriber = kafka.batch_subscriber(runtime, topic, group_id=f"{isolated.prefix}-memory", max_records=100)

    @subscriber
    async def on_batch(msg: KafkaMessage) -> None:
        await consumer.apply_batch(runtime.broker, msg.raw_message, read=kafka.loads, apply=apply)

    await kafkatools.produce(settings.kafka_bootstrap, topic, [kafka.dumps({"n": n}) for n in range(300)])
    await runtime.broker.start()
    try:
        async def applied_count() -> int:
            return len(applied)
        await kafkatools.eventually(applied_count, lambda n: n == 300)
        # fails showing how many records were kept after their batches were applied and committed
        await kafkatools.eventually(lambda: records_held(topic), lambda n: n == 0, timeout=20)
    finally:
        await runtime.broker.stop()
        for client in clients:
            await client.close()
