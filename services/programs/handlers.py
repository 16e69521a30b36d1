"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared import accepted, kafka, metrics
from shared.events import InvalidEvent
from shared.runtime import Runtime

from services.programs.service import ProgramsService
from services.programs.store import ProgramsStore


def register(runtime: Runtime, group_id: str) -> None:
    broker: KafkaBroker = runtime.broker
    topics = runtime.settings.topics

    @broker.subscriber(topics.accepted, group_id=group_id, ack_policy=kafka.COMMIT_AFTER_WRITE,
                       auto_offset_reset="earliest")
    async def on_accepted(msg: KafkaMessage) -> None:
        try:
            event, accepted_at, accept_id = accepted.read(msg.body)
        except (ValueError, InvalidEvent) as err:
            raise kafka.Poison(str(err)) from err
        with metrics.HANDLER_SECONDS.labels(service="programs", handler="accepted").time():
            service = ProgramsService(ProgramsStore(runtime.db))
            outcome = await service.decide(event=event, accepted_at=accepted_at, accept_id=accept_id)
            # Changes first, then the outcome: whoever sees "applied" can already see its effect.
            sends = [await broker.publish(kafka.dumps(c), topics.changes, key=(c["programme"] or c["id"]).encode(),
                                          no_confirm=True) for c in outcome["changes"]]
            await asyncio.gather(*sends)
            body = {k: v for k, v in outcome.items() if k not in ("_id", "changes")}
            await broker.publish(kafka.dumps(body), topics.outcomes, key=event.source.encode())
        metrics.EVENTS.labels(service="programs", type=event.type, outcome=outcome["outcome"]).inc()
