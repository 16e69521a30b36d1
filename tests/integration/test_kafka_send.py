"""Publishing many records at once (`shared.kafka.send_all`) against the real Kafka."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from services.programs.settings import ProgramsSettings
from shared import kafka
from tests import kafkatools


async def test_records_sent_together_land_where_their_key_says_in_order_a_large_one_too(isolated):
    """Every record on its key's partition (as the producer places a key, which is what a
    consumer owning a programme's partition relies on), in the order sent, none lost, one
    larger than a producer batch among them."""
    settings = isolated.settings(ProgramsSettings)
    topic = settings.topics.changes
    await kafka.ensure_topics(settings, [topic])
    broker = kafka.make_broker(settings, service="programs")
    records = [(topic, f"P{n % 7}".encode(), kafka.dumps({"n": n, "pad": "x" * 900})) for n in range(1_500)]
    records.insert(700, (topic, b"P3", kafka.dumps({"n": -1, "pad": "y" * 600_000})))
    await broker.start()
    try:
        await kafka.send_all(broker, records)
    finally:
        await broker.stop()
    got = await kafkatools.read_topic(isolated.kafka, topic, until=lambda rs: len(rs) >= len(records), decode=False)
    place = DefaultPartitioner()
    assert all(r.partition == place(r.key, [0, 1, 2], [0, 1, 2]) for r in got)
    sent = {key: [kafka.loads(v)["n"] for _, k, v in records if k == key] for key in {k for _, k, _ in records}}
    assert {key: [kafka.loads(r.value)["n"] for r in got if r.key == key] for key in sent} == sent
