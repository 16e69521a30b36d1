"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared import accepted, kafka, metrics
from shared.events import InvalidEvent
from shared.runtime import Runtime

from services.programs.service import HELD, ProgramsService
from services.programs.store import ProgramsStore

log = logging.getLogger("nqt.programs")


def service_for(runtime: Runtime) -> ProgramsService:
    return ProgramsService(ProgramsStore(runtime.db), hold_seconds=runtime.settings.programs_hold_seconds)


async def publish_outcomes(runtime: Runtime, outcomes: list[dict]) -> None:
    """Changes first, then the outcome: whoever sees "applied" can already see its effect."""
    broker: KafkaBroker = runtime.broker
    topics = runtime.settings.topics
    sends = []
    for outcome in outcomes:
        for change in outcome["changes"]:
            key = (change["programme"] or change["id"]).encode()
            sends.append(await broker.publish(kafka.dumps(change), topics.changes, key=key, no_confirm=True))
    await asyncio.gather(*sends)
    sends = []
    for outcome in outcomes:
        body = {k: v for k, v in outcome.items() if k not in ("_id", "changes", "held")}
        sends.append(await broker.publish(kafka.dumps(body), topics.outcomes, key=outcome["source"].encode(),
                                          no_confirm=True))
        metrics.EVENTS.labels(service="programs", type=outcome["type"], outcome=outcome["outcome"]).inc()
    await asyncio.gather(*sends)


def register(runtime: Runtime, group_id: str) -> None:
    @runtime.broker.subscriber(runtime.settings.topics.accepted, group_id=group_id,
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_accepted(msg: KafkaMessage) -> None:
        try:
            event, accepted_at, accept_id = accepted.read(msg.body)
        except (ValueError, InvalidEvent) as err:
            raise kafka.Poison(str(err)) from err
        with metrics.HANDLER_SECONDS.labels(service="programs", handler="accepted").time():
            service = service_for(runtime)
            outcomes = await service.process(event=event, accepted_at=accepted_at, accept_id=accept_id)
            if not outcomes:
                metrics.EVENTS.labels(service="programs", type=event.type, outcome=HELD).inc()
            await publish_outcomes(runtime, outcomes)
            await service.forget_held(outcomes)


async def sweep_held(runtime: Runtime) -> None:
    """Apply held updates whose task appeared; reject those that waited too long. Nothing is
    lost while held: a failed sweep is simply tried again."""
    service = service_for(runtime)
    decided = await service.sweep(now=datetime.now(timezone.utc))
    if decided:
        await publish_outcomes(runtime, decided)
        await service.forget_held(decided)
