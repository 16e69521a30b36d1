"""Subscribers and scheduled jobs of notify.

Each topic is read in batches (`consumer.apply_batch`): a record that cannot be handled is
decided (dead-lettered) once it failed the same way twice, an outage is waited out, and
the handlers below take one record at a time, so a batch read again sends nothing twice
(every notice is sent once, by its identity)."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import httpx
from faststream.kafka.annotations import KafkaMessage

from shared import consumer, kafka, metrics
from shared.clock import Clock
from shared.runtime import Runtime

from services.notify.service import Notifier, know

log = logging.getLogger("nqt.notify")
Handle = Callable[[Notifier, dict], Awaitable[None]]
# What a record must carry (a record without it is dead-lettered).
CHANGE_FIELDS = ("kind", "id", "state")
DUE_FIELDS = ("cycle", "due_date", "expected_units", "window")


def register(runtime: Runtime, group_id: str, notifier_for, clock: Clock) -> None:
    topics = runtime.settings.topics

    def subscribe(topic: str, role: str, required: tuple[str, ...], handle: Handle):
        # A group per topic: consumers of one group on several topics rebalance each other on every join.
        async def on_records(msg: KafkaMessage) -> None:
            await consumer.apply_batch(runtime.broker, msg.raw_message,
                                    read=lambda value: kafka.record(value, required=required),
                                    apply=lambda values: handle_each(notifier_for(runtime), role, values, handle))
        on_records.__name__ = on_records.__qualname__ = f"on_{role}"  # names the subscriber (logs, AsyncAPI)
        kafka.batch_subscriber(runtime, topic, group_id=f"{group_id}.{role}",
                               max_records=runtime.settings.notify_batch)(on_records)

    subscribe(topics.changes, "changes", CHANGE_FIELDS, lambda n, change: on_change(n, change, clock))
    subscribe(topics.outcomes, "outcomes", ("outcome", "source", "event_key"), on_outcome)
    subscribe(topics.due, "due", DUE_FIELDS, lambda n, event: on_due(n, event, clock))
    subscribe(topics.generated, "generated", ("cycle", "number", "formats"),
              lambda n, event: on_generated(n, event, clock))


async def handle_each(notifier: Notifier, role: str, values: list[dict], handle: Handle) -> None:
    with metrics.HANDLER_SECONDS.labels(service="notify", handler=role).time():
        for value in values:
            await handle(notifier, value)


async def on_change(notifier: Notifier, change: dict, clock: Clock) -> None:
    """Keep what notify needs to know; a unit just known gets the notices that waited for it."""
    metrics.event("notify", f"change.{change['kind']}", "received")
    await know(store=notifier.store, change=change)
    if change["kind"] == "unit":
        async with httpx.AsyncClient(timeout=60) as fetch:
            await notifier.recipient_known(change["state"]["code"], clock.today(), fetch)


async def on_outcome(notifier: Notifier, outcome: dict) -> None:
    metrics.event("notify", outcome.get("type"), outcome["outcome"], outcome.get("code", ""))
    if outcome["outcome"] == "rejected":
        await notifier.rejection(outcome)


async def on_due(notifier: Notifier, event: dict, clock: Clock) -> None:
    metrics.event("notify", "report.due", "received")
    await notifier.cycle_opened(event, clock.today())


async def on_generated(notifier: Notifier, event: dict, clock: Clock) -> None:
    metrics.event("notify", "report.generated", "received")
    async with httpx.AsyncClient(timeout=60) as fetch:
        await notifier.report_generated(event, clock.today(), fetch)
