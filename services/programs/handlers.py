"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.programs.service import HELD, Accepted, ProgramsService
from services.programs.store import ProgramsStore
from shared import accepted, kafka, logs, metrics
from shared.events import InvalidEvent
from shared.runtime import Runtime

log = structlog.get_logger("nqt.programs")


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
    for outcome in outcomes:
        for change in outcome["changes"]:
            metrics.event("programs", f"change.{change['kind']}", "published")
    sends = []
    for outcome in outcomes:
        body = {k: v for k, v in outcome.items() if k not in ("_id", "changes", "held")}
        sends.append(await broker.publish(kafka.dumps(body), topics.outcomes, key=outcome["source"].encode(),
                                          no_confirm=True))
    await asyncio.gather(*sends)
    for outcome in outcomes:
        metrics.event("programs", outcome["type"], outcome["outcome"], outcome.get("code", ""))
        metrics.event("programs", outcome["type"], "published")


def register(runtime: Runtime, group_id: str) -> None:
    @kafka.batch_subscriber(runtime, runtime.settings.topics.accepted, group_id=group_id,
                            max_records=runtime.settings.programs_batch)
    async def on_accepted(msg: KafkaMessage) -> None:
        batch = []
        for record in msg.raw_message:
            try:
                event, accepted_at, accept_id = accepted.read(record.value)
            except (ValueError, InvalidEvent) as err:
                await kafka.dead_letter(runtime.broker, record, kafka.Poison(str(err)), service="programs")
                continue
            metrics.event("programs", event.type, "received")
            batch.append(Accepted(event, accepted_at, accept_id))
        with metrics.HANDLER_SECONDS.labels(service="programs", handler="accepted").time():
            service = service_for(runtime)
            outcomes = await service.process_batch(batch)
            for outcome in outcomes:
                with logs.about_event(event_id=outcome["id"], unit=outcome["source"], type=outcome["type"]):
                    log.info("event decided", outcome=outcome["outcome"], code=outcome.get("code"),
                             decided_event=outcome["event_key"])
            decided = {o["_id"] for o in outcomes}
            for item in batch:
                if item.event.key not in decided:
                    metrics.event("programs", item.event.type, HELD)
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
