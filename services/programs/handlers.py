"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import structlog
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.programs.service import HELD, Accepted, ProgramsService
from services.programs.store import ProgramsStore
from shared import accepted, consumer, kafka, logs, metrics
from shared.events import InvalidEvent
from shared.runtime import Runtime

log = structlog.get_logger("nqt.programs")


def service_for(runtime: Runtime) -> ProgramsService:
    return ProgramsService(ProgramsStore(runtime.db), hold_seconds=runtime.settings.programs_hold_seconds)


async def publish_outcomes(runtime: Runtime, outcomes: list[dict]) -> None:
    """Changes first, then the outcome: whoever sees "applied" can already see its effect."""
    topics = runtime.settings.topics
    changes = [change for outcome in outcomes for change in outcome["changes"]]
    await _publish_all(runtime.broker, topics.changes, [((c["programme"] or c["id"]), c) for c in changes])
    _count(Counter((f"change.{c['kind']}", "published", "") for c in changes))
    await _publish_all(runtime.broker, topics.outcomes,
                       [(o["source"], {k: v for k, v in o.items() if k not in ("_id", "changes", "held")})
                        for o in outcomes])
    _count(Counter((o["type"], o["outcome"], o.get("code", "")) for o in outcomes)
           + Counter((o["type"], "published", "") for o in outcomes))


def _count(counts: Counter) -> None:
    """A batch's event counts in a few increments rather than one per event."""
    for (type_, outcome, code), n in counts.items():
        metrics.event("programs", type_, outcome, code, n=n)


async def _publish_all(broker: KafkaBroker, topic: str, records: list[tuple[str, dict]]) -> None:
    """Send every record, then wait until the broker acknowledged them all."""
    sends = [await broker.publish(kafka.dumps(body), topic, key=key.encode(), no_confirm=True)
             for key, body in records]
    await asyncio.gather(*sends)


def register(runtime: Runtime, group_id: str) -> None:
    @kafka.batch_subscriber(runtime, runtime.settings.topics.accepted, group_id=group_id,
                            max_records=runtime.settings.programs_batch)
    async def on_accepted(msg: KafkaMessage) -> None:
        await consumer.apply_batch(runtime.broker, msg.raw_message, read=read_accepted,
                                apply=lambda batch: decide_batch(runtime, batch),
                                decide=lambda record, item, error: refuse(runtime, item, error))


async def decide_batch(runtime: Runtime, batch: list[Accepted]) -> None:
    """Decide the records, publish their outcomes and changes, then forget the held updates they settled."""
    for item in batch:
        metrics.event("programs", item.event.type, "received")
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


async def refuse(runtime: Runtime, item: Accepted, error: Exception) -> None:
    """An accepted event that failed the same way twice: it is `rejected` as `invalid_event`,
    with the reason, so that its publisher is told and the partition moves on."""
    outcome = await service_for(runtime).refuse(item, reason=f"{type(error).__name__}: {error}")
    with logs.about_event(event_id=outcome["id"], unit=outcome["source"], type=outcome["type"]):
        log.error("event refused", code=outcome.get("code"), reason=str(error)[:500])
    await publish_outcomes(runtime, [outcome])


def read_accepted(value: bytes) -> Accepted:
    try:
        return Accepted(*accepted.read(value))
    except (ValueError, InvalidEvent) as err:
        raise consumer.Poison(str(err)) from err


async def sweep_held(runtime: Runtime) -> None:
    """Apply held updates whose task appeared; reject those that waited too long. Nothing is
    lost while held: a failed sweep is simply tried again."""
    service = service_for(runtime)
    decided = await service.sweep(now=datetime.now(timezone.utc))
    if decided:
        await publish_outcomes(runtime, decided)
        await service.forget_held(decided)
