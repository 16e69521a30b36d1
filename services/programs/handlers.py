"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.programs.service import HELD, ProgramsService
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
    @runtime.broker.subscriber(runtime.settings.topics.accepted, group_id=group_id,
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_accepted(msg: KafkaMessage) -> None:
        try:
            event, accepted_at, accept_id = accepted.read(msg.body)
        except (ValueError, InvalidEvent) as err:
            raise kafka.Poison(str(err)) from err
        metrics.event("programs", event.type, "received")
        with (metrics.HANDLER_SECONDS.labels(service="programs", handler="accepted").time(),
              logs.about_event(event_id=event.id, unit=event.source, type=event.type)):
            service = service_for(runtime)
            outcomes = await service.process(event=event, accepted_at=accepted_at, accept_id=accept_id)
            for outcome in outcomes:
                log.info("event decided", outcome=outcome["outcome"], code=outcome.get("code"),
                         decided_event=outcome["event_key"])
            if not outcomes:
                metrics.event("programs", event.type, HELD)
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
