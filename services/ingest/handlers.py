"""Subscribers of ingest: the outcomes of the events it accepted."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import kafka, metrics
from shared.runtime import Runtime

from services.ingest import domain, service
from services.ingest.store import IngestStore

REQUIRED = ("event_key", "source", "id", "outcome", "accept_id")


def _outcome(msg: KafkaMessage) -> dict:
    outcome = kafka.record(msg.body, required=REQUIRED)
    if outcome["outcome"] not in domain.FINAL:
        raise kafka.Poison(f"unknown outcome {outcome['outcome']!r}")
    return outcome


def register(runtime: Runtime, group_id: str) -> None:
    @runtime.broker.subscriber(runtime.settings.topics.outcomes, group_id=group_id,
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_outcome(msg: KafkaMessage) -> None:
        outcome = _outcome(msg)
        with metrics.HANDLER_SECONDS.labels(service="ingest", handler="outcomes").time():
            await service.record_outcome(store=IngestStore(runtime.db), outcome=outcome)
