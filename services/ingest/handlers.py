"""Subscribers of ingest: the outcomes of the events it accepted, events published
straight to Kafka (`inbound.events`) and the registry's units they are checked against."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import kafka, metrics
from shared.runtime import Runtime

from services.ingest import domain, intake, service
from services.ingest.store import IngestStore

REQUIRED = ("event_key", "source", "id", "outcome", "accept_id")


def _outcome(value: bytes) -> dict:
    outcome = kafka.record(value, required=REQUIRED)
    if outcome["outcome"] not in domain.FINAL:
        raise kafka.Poison(f"unknown outcome {outcome['outcome']!r}")
    return outcome


def register(runtime: Runtime, group_id: str) -> None:
    topics = runtime.settings.topics

    @kafka.batch_subscriber(runtime, topics.outcomes, group_id=group_id,
                            max_records=runtime.settings.ingest_outcomes_batch)
    async def on_outcomes(msg: KafkaMessage) -> None:
        outcomes = await kafka.read_batch(runtime.broker, msg.raw_message, _outcome, service="ingest")
        with metrics.HANDLER_SECONDS.labels(service="ingest", handler="outcomes").time():
            store = IngestStore(runtime.db)
            for outcome in outcomes:  # each write guarded by status: any order, any repeat
                await service.record_outcome(store=store, outcome=outcome)

    # One consumer group per topic: members of one group on several topics rebalance each other.
    @runtime.broker.subscriber(topics.inbound, group_id=f"{group_id}.inbound",
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_inbound(msg: KafkaMessage) -> None:
        with metrics.HANDLER_SECONDS.labels(service="ingest", handler="inbound").time():
            await intake.take_in(broker=runtime.broker, topic=topics.accepted, db=runtime.db,
                                 body=msg.body or b"", max_bytes=runtime.settings.ingest_max_body_bytes)

    @runtime.broker.subscriber(topics.changes, group_id=f"{group_id}.registry",
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_change(msg: KafkaMessage) -> None:
        change = kafka.record(msg.body, required=("kind", "id", "state"))
        if change["kind"] == "unit":
            await intake.remember_unit(db=runtime.db, state=change["state"])
