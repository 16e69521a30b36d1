"""Subscribers of ingest: the outcomes of the events it accepted, events published
straight to Kafka (`inbound.events`) and what ingest keeps of the registry: the units
that may publish there and the term that bounds when events may have happened; and what
a unit's spreadsheet templates are pre-filled with (its tasks, the open cycle)."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import consumer, kafka, metrics, records
from shared.runtime import Runtime

from services.ingest import access, domain, intake, service
from services.ingest.store import IngestStore

REQUIRED = ("event_key", "source", "id", "outcome", "accept_id")
CHANGE_FIELDS = ("kind", "id", "state")


def read_outcome(value: bytes) -> dict:
    """A `programs.outcomes` record ingest can keep; Poison otherwise."""
    outcome = kafka.record(value, required=REQUIRED)
    if outcome["outcome"] not in domain.FINAL:
        raise consumer.Poison(f"unknown outcome {outcome['outcome']!r}")
    return outcome


async def record_outcomes(store: IngestStore, outcomes: list[dict]) -> None:
    with metrics.HANDLER_SECONDS.labels(service="ingest", handler="outcomes").time():
        for outcome in outcomes:  # each write guarded by status: any order, any repeat
            await service.record_outcome(store=store, outcome=outcome)


def register(runtime: Runtime, group_id: str, term: service.Term | None = None,
             guard: access.Guard | None = None) -> None:
    """The subscribers; `term` and `guard` are shared with the HTTP routes (one per process)."""
    settings, term = runtime.settings, term or service.Term()
    topics = settings.topics
    door = intake.Door(bounds=domain.Bounds.of(settings), term=term,
                       guard=guard or access.Guard(settings.ingest_rate_limit),
                       dev_secrets=settings.ingest_dev_signing_secrets)

    @kafka.batch_subscriber(runtime, topics.outcomes, group_id=group_id,
                            max_records=runtime.settings.ingest_outcomes_batch)
    async def on_outcomes(msg: KafkaMessage) -> None:
        await consumer.apply_batch(runtime.broker, msg.raw_message, read=read_outcome,
                                   apply=lambda outcomes: record_outcomes(IngestStore(runtime.db), outcomes))

    # One consumer group per topic: members of one group on several topics rebalance each other.
    @runtime.broker.subscriber(topics.inbound, group_id=f"{group_id}.inbound",
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_inbound(msg: KafkaMessage) -> None:
        with metrics.HANDLER_SECONDS.labels(service="ingest", handler="inbound").time():
            await intake.take_in(broker=runtime.broker, topic=topics.accepted, store=IngestStore(runtime.db),
                                 door=door, record=intake.Record.of(msg.raw_message))

    @runtime.broker.subscriber(topics.changes, group_id=f"{group_id}.registry",
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_change(msg: KafkaMessage) -> None:
        change = kafka.record(msg.body, required=CHANGE_FIELDS)
        await service.keep_change(store=IngestStore(runtime.db), term=term, change=change)

    @runtime.broker.subscriber(topics.due, group_id=f"{group_id}.due",
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_due(msg: KafkaMessage) -> None:
        due = records.read_due(msg.body)
        await service.keep_cycle(store=IngestStore(runtime.db), due=due.model_dump())
